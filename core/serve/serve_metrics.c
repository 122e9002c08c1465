/* serve's metrics: /metrics on serve's own address (a key with the admin or metrics
 * role), and the separate --metrics-addr listener (no authentication: /metrics, /healthz
 * and /readyz for Prometheus and probes inside a private network; anything else 404). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "http/metrics_endpoint.h"
#include "observe/observe.h"
#include "serve/serve.h"

void fr__serve_metrics_route(const fr_identity *who, const char *url, const char *method,
                             fr_reply *out)
{
    if (strcmp(url, "/metrics") != 0) {
        /* A metrics key reads metrics, nothing else: not even which routes exist. */
        fr__reply_error(out, FR_HE_FORBIDDEN, "role %s may only read /metrics",
                        fr__role_name(who->role));
        return;
    }
    if (!fr__auth_may_scrape(who->role)) {
        out->route = "/metrics";
        fr__reply_error(out, FR_HE_FORBIDDEN,
                        "role %s may not read /metrics (it needs the admin or metrics role)",
                        fr__role_name(who->role));
        return;
    }
    fr__metrics_reply(method, out);
}

void fr__serve_readyz(int ready, fr_reply *out)
{
    /* Ready even while the shared state is unreachable: what needs it fails alone (async
     * submissions, shared breakers), and orchestrators keep the replica for the rest. */
    json_object *o = json_object_new_object();
    json_object_object_add(o, "status", json_object_new_string(ready ? "ready" : "starting"));
    json_object_object_add(o, "state", json_object_new_string(fr__serve_state_health()));
    fr__reply_json(out, ready ? 200 : 503, o);
}

/* ---- the --metrics-addr listener (core/http/metrics_endpoint.c) ---------------------- */

struct fr_metrics_listener {
    fr_probe_listener *l;
    const atomic_int *ready; /* the server's readiness (borrowed) */
};

static void listener_readyz(void *cls, fr_reply *out)
{
    const fr_metrics_listener *ml = cls;
    fr__serve_readyz(atomic_load(ml->ready), out);
}

fr_metrics_listener *fr__metrics_listener_start(const char *addr, const atomic_int *ready,
                                                char *err, size_t errlen)
{
    fr_metrics_listener *ml = calloc(1, sizeof *ml);
    if (!ml) {
        snprintf(err, errlen, "--metrics-addr %s: out of memory", addr);
        return NULL;
    }
    ml->ready = ready;
    if (!(ml->l = fr__probe_listener_start(addr, listener_readyz, ml, err, errlen))) {
        free(ml);
        return NULL;
    }
    return ml;
}

const char *fr__metrics_listener_url(const fr_metrics_listener *ml)
{
    return ml ? fr__probe_listener_url(ml->l) : "";
}

void fr__metrics_listener_stop(fr_metrics_listener *ml)
{
    if (!ml)
        return;
    fr__probe_listener_stop(ml->l);
    free(ml);
}
