/* serve's metrics: /metrics on serve's own address (a key with the admin or metrics
 * role), and the separate --metrics-addr listener (no authentication: /metrics, /healthz
 * and /readyz for Prometheus and probes inside a private network; anything else 404). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "observe/observe.h"
#include "serve/serve.h"

struct fr_metrics_listener {
    struct MHD_Daemon *d;
    const atomic_int *ready; /* the server's readiness (borrowed) */
    char url[96];            /* http://HOST:PORT, the port the kernel chose for port 0 */
};

static int is_get(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

/* GET /metrics: the exposition, or 405. */
static void metrics_reply(const char *method, fr_reply *out)
{
    out->route = "/metrics";
    if (!is_get(method)) {
        out->allow = "GET, HEAD";
        fr__reply_error(out, FR_HE_METHOD_NOT_ALLOWED, "%s is not allowed here; use GET", method);
        return;
    }
    char *text = fr__metrics_render();
    if (!text) {
        fr__reply_error(out, FR_HE_INTERNAL, "cannot render the metrics: out of memory");
        return;
    }
    out->status = 200;
    out->body = text;
    out->body_len = strlen(text);
    out->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

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
    metrics_reply(method, out);
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

/* ---- the --metrics-addr listener ---------------------------------------------------- */

static void probe_reply(const fr_metrics_listener *l, const char *url, const char *method,
                        fr_reply *out)
{
    int ready = atomic_load(l->ready);
    if (strcmp(url, "/metrics") == 0) {
        metrics_reply(method, out);
    } else if (strcmp(url, "/healthz") == 0 || strcmp(url, "/v1/healthz") == 0) {
        fr__reply_json(out, 200, json_tokener_parse("{\"status\":\"ok\"}"));
    } else if (strcmp(url, "/readyz") == 0 || strcmp(url, "/v1/readyz") == 0) {
        fr__serve_readyz(ready, out);
    } else {
        fr__reply_error(out, FR_HE_NOT_FOUND,
                        "the metrics listener serves /metrics, /healthz and /readyz only");
    }
}

static enum MHD_Result on_probe(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_size, void **con_cls)
{
    (void)version, (void)upload;
    /* A body is never read: drop it as it comes, answer once it has all arrived. */
    if (!*con_cls) {
        *con_cls = (void *)1;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    fr_reply rp = {0};
    probe_reply(cls, url, method, &rp);
    if (!rp.body)
        return MHD_NO;
    return fr__http_send(c, &rp);
}

fr_metrics_listener *fr__metrics_listener_start(const char *addr, const atomic_int *ready,
                                                char *err, size_t errlen)
{
    fr_http_addr sa;
    const char *why;
    if (fr__http_addr_parse(addr, &sa, &why) != 0) {
        snprintf(err, errlen, "--metrics-addr %s: %s", addr, why);
        return NULL;
    }
    fr_metrics_listener *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "--metrics-addr %s: out of memory", addr);
        return NULL;
    }
    l->ready = ready;
    /* Scrapes and probes are few and small: one thread, few connections, short timeouts. */
    fr_http_server_config hc = {.addr = &sa,
                                .connection_limit = 64,
                                .connection_timeout_s = 10,
                                .handler = on_probe,
                                .handler_cls = l};
    l->d = fr__http_start(&hc);
    if (!l->d) {
        snprintf(err, errlen, "cannot listen on --metrics-addr %s (address in use?)", addr);
        free(l);
        return NULL;
    }
    fr__http_url(l->d, &sa, 0, l->url, sizeof l->url);
    return l;
}

const char *fr__metrics_listener_url(const fr_metrics_listener *l)
{
    return l ? l->url : "";
}

void fr__metrics_listener_stop(fr_metrics_listener *l)
{
    if (!l)
        return;
    MHD_stop_daemon(l->d);
    free(l);
}
