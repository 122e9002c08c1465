/* `fluxroute serve`: the router HTTP API.
 *
 * A server of the HTTP module (core/http: an epoll thread pool, TLS 1.2+ and client
 * certificates through GnuTLS).
 * Every request but health checks is authenticated (API key or verified client
 * certificate), authorised by role, and confined to its tenant's namespace.  /metrics
 * needs the admin or metrics role; --metrics-addr serves it without a key elsewhere. */
#include <errno.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/fileio.h"
#include "controlplane/cp_client.h"
#include "observe/observe.h"
#include "base/sha256.h"
#include "base/str.h"
#include "base/duration.h"
#include "host/host.h"
#include "http/http.h"
#include "http/http_body.h"
#include "plugin/isolate.h"
#include "base/json_parse.h"
#include "plugin/quarantine.h"
#include "serve/serve.h"
#include "serve/console.h"
#include "serve/serve_console.h"
#include "serve/gateway.h"
#include "serve/run_queue.h"
#include "serve/serve_prices.h"
#include "serve/serve_quota.h"
#include "serve/serve_sse.h"

struct fr_server {
    struct MHD_Daemon *d;
    fr_runs *runs;
    fr_auth *auth;
    pthread_rwlock_t auth_lock;
    const char *keys_file;
    int tls, require_client_cert;
    size_t max_body;
    atomic_int ready;
    fr_cp_client *cp;  /* keys and usage through the control plane, or NULL */
    fr_quota *quota;   /* tenant and key limits (serve_quota.h) */
    fr_prices *prices; /* with --controlplane: its rate card, for budgets */
    fr_gateway *gw;    /* the OpenAI gateway over --routes (issue 27) */
    /* The SLA window reported to the control plane: requests, 5xx, latency buckets. */
    pthread_mutex_t sla_mu;
    int64_t sla_requests, sla_errors, sla_start;
    uint64_t sla_buckets[32]; /* latency histogram, bucket k < 2^k microseconds */
};

/* Latency in microseconds into the SLA window. */
static void sla_note(fr_server *s, int64_t us, int status)
{
    int k = 0;
    while (k < 31 && (1LL << k) <= us)
        k++;
    pthread_mutex_lock(&s->sla_mu);
    s->sla_requests++;
    s->sla_errors += status >= 500;
    s->sla_buckets[k]++;
    pthread_mutex_unlock(&s->sla_mu);
}

/* The latency (ms) under which fraction q of the window's requests fell. */
static int64_t sla_quantile(const uint64_t *b, int64_t n, double q)
{
    int64_t want = (int64_t)((double)n * q + 0.999), seen = 0;
    for (int k = 0; k < 32; k++) {
        seen += (int64_t)b[k];
        if (seen >= want && want > 0)
            return ((1LL << k) + 999) / 1000;
    }
    return 0;
}

/* Sends the finished window to the control plane and starts a new one. */
static void sla_flush(fr_server *s)
{
    pthread_mutex_lock(&s->sla_mu);
    int64_t now = fr__wall_us() / 1000000;
    fr_cp_sla_report rep = {.requests = s->sla_requests,
                            .errors = s->sla_errors,
                            .latency_ms_p50 = sla_quantile(s->sla_buckets, s->sla_requests, 0.5),
                            .latency_ms_p99 = sla_quantile(s->sla_buckets, s->sla_requests, 0.99),
                            .window_start = s->sla_start,
                            .window_end = now};
    s->sla_requests = s->sla_errors = 0;
    memset(s->sla_buckets, 0, sizeof s->sla_buckets);
    s->sla_start = now;
    pthread_mutex_unlock(&s->sla_mu);
    if (s->cp && rep.window_end > rep.window_start)
        fr__cp_report_sla(s->cp, &rep);
}

/* Per-request state (MHD's con_cls). */
typedef struct request {
    fr_deferred defer; /* first: the run's thread gets back to the request through it */
    fr_http_body body;
    int64_t t0;
    struct MHD_Connection *conn;
    fr_reply later; /* a deferred reply, once `ready` */
    _Atomic int ready;
    fr_identity who; /* the caller, once identified (who.tenant[0] set): x-ratelimit-* */
} request;

/* ---- deferred replies: the connection waits, suspended, for a run on its own thread ---- */

static void defer_suspend(fr_deferred *d)
{
    MHD_suspend_connection(((request *)d)->conn);
}

static void defer_complete(fr_deferred *d, fr_reply *reply)
{
    request *rq = (request *)d;
    rq->later = *reply;
    atomic_store(&rq->ready, 1);
    MHD_resume_connection(rq->conn); /* MHD calls on_request again, which sends it */
}

static enum MHD_Result send_reply(fr_server *s, struct MHD_Connection *c, request *rq, fr_reply *rp)
{
    struct MHD_Response *resp = fr__http_response(rp);
    if (!resp)
        return MHD_NO;
    /* Time spent in FluxRoute itself: the request's time minus plugin and provider time. */
    int64_t overhead = fr__mono_us() - rq->t0 - rp->plugin_us;
    char oh[FR_STR_INT_SIZE];
    fr__str_int(oh, overhead > 0 ? overhead : 0);
    MHD_add_response_header(resp, "X-FluxRoute-Overhead-Us", oh);
    if (rp->run_id[0])
        MHD_add_response_header(resp, "X-FluxRoute-Run-Id", rp->run_id);
    fr__quota_headers(s->quota, &rq->who, resp);
    fr__metrics_http_request(rp->route ? rp->route : "other", rp->status);
    sla_note(s, fr__mono_us() - rq->t0, rp->status);
    enum MHD_Result r = MHD_queue_response(c, (unsigned)rp->status, resp);
    MHD_destroy_response(resp);
    return r;
}

/* ---- authentication ------------------------------------------------------------------------- */

static int identify(fr_server *s, struct MHD_Connection *c, fr_identity *who, fr_reply *out)
{
    char cn[256] = "";
    int have_cert = s->tls && fr__http_client_cert(c, cn, sizeof cn) == 0;
    if (s->require_client_cert && !have_cert) {
        fr__reply_error(out, FR_HE_CLIENT_CERT_REQUIRED,
                        "a client certificate signed by the server's CA is required");
        return -1;
    }
    const char *authz = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    int bearer = authz && strncasecmp(authz, "Bearer ", 7) == 0;
    int rc = -1;
    memset(who, 0, sizeof *who);
    if (bearer && s->cp) {
        /* Keys live in the control plane (cached there for at most 5 s). */
        char hex[65];
        fr__sha256_hex(authz + 7, strlen(authz + 7), hex);
        fr_cp_identity id;
        fr_status st = fr__cp_lookup_key(s->cp, hex, &id);
        if (st == FR_OK && fr__key_role_parse(id.role, &who->role) == 0) {
            snprintf(who->id, sizeof who->id, "%s", id.key_id);
            snprintf(who->tenant, sizeof who->tenant, "%s", id.tenant);
            snprintf(who->namespace_, sizeof who->namespace_, "%s", id.namespace_);
            /* Its limits come with the lookup (cached at most 5 s): issue 26. */
            fr__quota_set_remote_text(s->quota, 1, id.tenant, id.limits_tenant);
            fr__quota_set_remote_text(s->quota, 0, id.key_id, id.limits_key);
            rc = 0;
        } else if (st != FR_OK && st != FR_E_NOT_FOUND) {
            fr__reply_error(out, FR_HE_CONTROLPLANE_UNAVAILABLE,
                            "cannot check the key: the control plane is unreachable");
            out->retry_after = 5;
            return -1;
        }
    }
    int newline_digest = 0;
    pthread_rwlock_rdlock(&s->auth_lock);
    if (rc != 0 && bearer && s->auth) {
        rc = fr__auth_key(s->auth, authz + 7, who);
        if (rc != 0) {
            /* `echo KEY | sha256sum` hashes the key and a newline: say so rather than
             * leave the operator guessing (the key itself is already known to the caller). */
            char *nl = NULL;
            fr_identity unused;
            newline_digest =
                asprintf(&nl, "%s\n", authz + 7) >= 0 && fr__auth_key(s->auth, nl, &unused) == 0;
            free(nl);
        }
    } else if (rc != 0 && !bearer && have_cert && s->auth) {
        rc = fr__auth_cert(s->auth, cn, who);
    }
    pthread_rwlock_unlock(&s->auth_lock);
    if (rc != 0 && getenv("AUDIT_LOG_PATH")) {
        fr_audit_event ev = {.actor = have_cert ? cn : "unknown",
                             .role = "none",
                             .action = "authenticate",
                             .decision = "denied",
                             .result = "unauthorized"};
        fr__audit_log(&ev);
    }
    if (rc != 0) {
        /* RFC 6750's challenge; none for client_cert_required above: no scheme names TLS. */
        out->challenge = authz ? "Bearer realm=\"fluxroute\", error=\"invalid_token\""
                               : "Bearer realm=\"fluxroute\"";
        if (authz && newline_digest)
            fr__reply_error(out, FR_HE_UNAUTHORIZED,
                            "unknown API key: the keys file holds the sha256 of this key "
                            "followed by a newline (as `echo KEY | sha256sum` makes it); store "
                            "the digest of the key alone: printf %%s KEY | sha256sum");
        else if (authz)
            fr__reply_error(out, FR_HE_UNAUTHORIZED, "unknown API key");
        else
            fr__reply_error(out, FR_HE_UNAUTHORIZED,
                            have_cert ? "client certificate \"%s\" is not a known identity"
                                      : "missing credentials: send Authorization: Bearer KEY%s",
                            cn);
        return -1;
    }
    return 0;
}

/* A tenant's and a key's budgets start from what the control plane has billed them this
 * month, so that a restart never resets them: fetched once per tenant and key (issue 26;
 * tenant 0: the key `id` of tenant `owner`). */
static void seed_one(fr_server *s, int tenant, const char *id, const char *owner)
{
    if (!fr__quota_seed_begin(s->quota, tenant, id, owner))
        return;
    char path[400];
    if (tenant)
        snprintf(path, sizeof path, "/v1/tenants/%s/spend", id);
    else
        snprintf(path, sizeof path, "/v1/tenants/%s/spend?key_id=%s", owner, id);
    json_object *o = NULL, *v;
    if (fr__cp_get_json(s->cp, path, &o) == FR_OK &&
        json_object_object_get_ex(o, "spent_micros", &v) && json_object_is_type(v, json_type_int)) {
        fr__quota_seed_spend(s->quota, tenant, id, owner, json_object_get_int64(v));
    } else {
        fprintf(stderr,
                "fluxroute serve: cannot read %s \"%s\"'s spend from the control "
                "plane (GET %s); its budget counts from now, retried on its next request\n",
                tenant ? "tenant" : "key", id, path);
        fr__quota_seed_failed(s->quota, tenant, id, owner);
    }
    json_object_put(o);
}

static void seed_spend(fr_server *s, const fr_identity *who)
{
    if (!s->cp)
        return;
    seed_one(s, 1, who->tenant, who->tenant);
    seed_one(s, 0, who->id, who->tenant);
}

/* ---- routing ----------------------------------------------------------------------------------
 */

json_object *fr__serve_parse_body(const char *data, size_t len, fr_reply *out)
{
    if (len == 0) {
        fr__reply_error(out, FR_HE_BAD_REQUEST, "the request needs a JSON body");
        return NULL;
    }
    size_t at;
    const char *why;
    json_object *o;
    if (fr__json_parse_whole(data, len, 64, &o, &at, &why) != 0) {
        fr__reply_error(out, FR_HE_MALFORMED_JSON, "malformed JSON at byte %zu: %s", at, why);
        return NULL;
    }
    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        fr__reply_error(out, FR_HE_BAD_REQUEST, "the body must be a JSON object");
        return NULL;
    }
    return o;
}

/* A route that takes only `allow`: 1 (and a 405 with Allow in `out`) unless `taken`. */
static int refused_method(int taken, const char *allow, const char *method, fr_reply *out)
{
    if (taken)
        return 0;
    out->allow = allow;
    fr__reply_error(out, FR_HE_METHOD_NOT_ALLOWED, "%s is not allowed here; use %s", method, allow);
    return 1;
}

static int is(const char *url, const char *a, const char *b)
{
    return strcmp(url, a) == 0 || (b && strcmp(url, b) == 0);
}

/* The OpenAI gateway's endpoints (issue 27): the same keys, tenants and roles as the rest
 * of serve, and every error in OpenAI's shape. */
static void route_gateway(fr_server *s, struct MHD_Connection *c, const char *url,
                          const char *method, request *rq, fr_reply *out)
{
    out->route = strcmp(url, "/v1/models") == 0 ? "/v1/models" : "/v1/chat/completions";
    fr_identity who;
    if (rq->body.too_big) {
        fr__reply_error(out, FR_HE_PAYLOAD_TOO_LARGE, "the request body exceeds %zu bytes",
                        s->max_body);
    } else if (identify(s, c, &who, out) == 0) {
        rq->who = who;
        seed_spend(s, &who);
        const char *tp = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "traceparent");
        if (tp && strlen(tp) < sizeof who.traceparent)
            snprintf(who.traceparent, sizeof who.traceparent, "%s", tp);
        /* A completion's body: the common requests are translated from their text (no
         * tree); the others are parsed, and a body that is no JSON object refused. */
        json_object *body = NULL;
        fr_gw_text pre = {0};
        fr_bytebuf input = {0};
        int chat = strcmp(url, "/v1/chat/completions") == 0 && strcmp(method, "POST") == 0;
        if (chat &&
            fr__gw_translate_text(rq->body.buf.data, rq->body.buf.len, &pre.rq, &input) == 0)
            pre.input = input.data;
        else if (chat && !(body = fr__serve_parse_body(rq->body.buf.data, rq->body.buf.len, out))) {
            fr__gw_error_from_serve(out);
            return;
        }
        fr__gateway_handle(s->gw, &who, url, method, body, pre.input ? &pre : NULL, &rq->defer,
                           out);
        json_object_put(body);
        free(input.data);
        return;
    }
    fr__gw_error_from_serve(out);
}

static void route(fr_server *s, struct MHD_Connection *c, const char *url, const char *method,
                  request *rq, fr_reply *out)
{
    int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    out->route = "other";
    if (is(url, "/healthz", "/v1/healthz")) {
        out->route = "/healthz";
        fr__reply_json(out, 200, json_tokener_parse("{\"status\":\"ok\"}"));
        return;
    }
    if (is(url, "/readyz", "/v1/readyz")) {
        out->route = "/readyz";
        int ready = atomic_load(&s->ready);
        fr__serve_readyz(ready, out);
        return;
    }
    /* -- issue 27: the OpenAI-compatible gateway (core/serve/gateway.c) -- */
    if (fr__gateway_is_url(url)) {
        route_gateway(s, c, url, method, rq, out);
        return;
    }
    /* -- end issue 27 -- */
    if (rq->body.too_big) {
        fr__reply_error(out, FR_HE_PAYLOAD_TOO_LARGE, "the request body exceeds %zu bytes",
                        s->max_body);
        return;
    }
    fr_identity who;
    if (is(url, "/metrics", NULL))
        out->route = "/metrics";
    if (identify(s, c, &who, out) != 0)
        return;
    if (is(url, "/metrics", NULL) || who.role == FR_ROLE_METRICS) {
        fr__serve_metrics_route(&who, url, method, out);
        return;
    }
    rq->who = who;
    seed_spend(s, &who);
    if (strcmp(url, "/v1/limits") == 0) {
        out->route = "/v1/limits";
        if (refused_method(get, "GET", method, out))
            return;
        fr__quota_handle_get(s->quota, &who, out);
        return;
    }
    const char *tp = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "traceparent");
    if (tp && strlen(tp) < sizeof who.traceparent)
        snprintf(who.traceparent, sizeof who.traceparent, "%s", tp);

    if (strcmp(url, "/v1/runs") == 0) {
        out->route = "/v1/runs";
        if (refused_method(get, "GET", method, out))
            return;
        fr_runs_query q = {
            .status = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "status"),
            .manifest = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "manifest"),
            .limit = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit"),
            .cursor = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "cursor")};
        fr__runs_handle_list(s->runs, &who, &q, out);
        return;
    }
    const char *runs_prefix = "/v1/runs/";
    if (strncmp(url, runs_prefix, strlen(runs_prefix)) == 0) {
        char id[64];
        const char *rest = url + strlen(runs_prefix);
        const char *slash = strchr(rest, '/');
        size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
        if (n == 0 || n >= sizeof id) {
            fr__reply_error(out, FR_HE_NOT_FOUND, "no such resource");
            return;
        }
        memcpy(id, rest, n);
        id[n] = '\0';
        int trace = slash && strcmp(slash, "/trace") == 0;
        out->route = trace ? "/v1/runs/{id}/trace" : "/v1/runs/{id}";
        if (slash && !trace) {
            fr__reply_error(out, FR_HE_NOT_FOUND, "no such resource");
        } else if (get) {
            fr__runs_handle_get(s->runs, &who, id, trace, out);
        } else if (strcmp(method, "DELETE") == 0 && !trace) {
            fr__runs_handle_cancel(s->runs, &who, id, out);
        } else {
            out->allow = trace ? "GET" : "GET, DELETE";
            fr__reply_error(out, FR_HE_METHOD_NOT_ALLOWED, "%s is not allowed here; use %s", method,
                            out->allow);
        }
        return;
    }
    /* ---- the web console's routes (issue 28; core/serve/serve_console.h) ---- */
    const char *man_prefix = "/v1/manifests/";
    if (strcmp(url, "/v1/manifests") == 0 || strncmp(url, man_prefix, strlen(man_prefix)) == 0) {
        int one = url[strlen("/v1/manifests")] == '/';
        out->route = one ? "/v1/manifests/{name}" : "/v1/manifests";
        if (refused_method(get, "GET", method, out))
            return;
        fr__console_manifests(s->runs, &who, one ? url + strlen(man_prefix) : NULL, out);
        return;
    }
    if (strcmp(url, "/v1/usage") == 0) {
        out->route = "/v1/usage";
        if (refused_method(get, "GET", method, out))
            return;
        const char *authz = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        int bearer = authz && strncasecmp(authz, "Bearer ", 7) == 0;
        fr__console_usage(s->cp, &who, bearer ? authz + 7 : NULL,
                          MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "period"), out);
        return;
    }
    if (strcmp(url, "/v1/whoami") == 0) {
        out->route = "/v1/whoami";
        if (!refused_method(get, "GET", method, out))
            fr__console_whoami(&who, out);
        return;
    }
    if (strcmp(url, "/v1/debug") == 0) {
        out->route = "/v1/debug";
        if (refused_method(post, "POST", method, out))
            return;
        json_object *body = fr__serve_parse_body(rq->body.buf.data, rq->body.buf.len, out);
        if (body)
            fr__console_debug(s->runs, &who, body, out);
        json_object_put(body);
        return;
    }
    /* ---- end of the web console's routes ---- */
    int run = is(url, "/v1/run", "/run"), validate = is(url, "/v1/validate", "/validate");
    int replay = is(url, "/v1/replay", "/replay");
    out->route = run ? "/v1/run" : validate ? "/v1/validate" : replay ? "/v1/replay" : "other";
    if (!run && !validate && !replay) {
        fr__reply_error(out, FR_HE_NOT_FOUND, "no route %s %s", method, url);
        return;
    }
    if (!post) {
        out->allow = "POST";
        fr__reply_error(out, FR_HE_METHOD_NOT_ALLOWED, "use POST for %s", url);
        return;
    }
    json_object *body = fr__serve_parse_body(rq->body.buf.data, rq->body.buf.len, out);
    if (!body)
        return;
    if (run) {
        const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept");
        int sse = accept && strstr(accept, "text/event-stream") != NULL;
        fr__runs_handle_run(s->runs, &who, body, sse, &rq->defer, out);
    } else if (validate) {
        fr__runs_handle_validate(s->runs, &who, body, out);
    } else {
        fr__runs_handle_replay(s->runs, &who, body, &rq->defer, out);
    }
    json_object_put(body);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    fr_server *s = cls;
    request *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;
        rq->t0 = fr__mono_us();
        rq->conn = c;
        rq->defer.conn = c;
        rq->defer.suspend = defer_suspend;
        rq->defer.complete = defer_complete;
        rq->body.too_big = fr__http_body_announced_over(c, s->max_body);
        *con_cls = rq;
        return MHD_YES;
    }
    int more = fr__http_body_collect(&rq->body, upload, upload_size, s->max_body);
    if (more)
        return more > 0 ? MHD_YES : MHD_NO;
    /* The web console (console.c): static assets, no key needed to load the page; where
     * client certificates are required, they are required for it too. */
    if (fr__console_is_url(url)) {
        char cn[256];
        if (!s->require_client_cert || (s->tls && fr__http_client_cert(c, cn, sizeof cn) == 0))
            return fr__console_send(c, url, method);
        fr_reply rp = {.route = "/ui"};
        fr__reply_error(&rp, FR_HE_CLIENT_CERT_REQUIRED,
                        "a client certificate signed by the server's CA is required");
        return send_reply(s, c, rq, &rp);
    }
    if (atomic_load(&rq->ready)) { /* back from a deferred run */
        atomic_store(&rq->ready, 0);
        return send_reply(s, c, rq, &rq->later);
    }
    fr_reply rp = {0};
    route(s, c, url, method, rq, &rp);
    if (rp.deferred)
        return MHD_YES; /* suspended; defer_complete resumes it */
    if (!rp.status && !rp.stream)
        fr__reply_error(&rp, FR_HE_INTERNAL, "no answer");
    return send_reply(s, c, rq, &rp);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    request *rq = *con_cls;
    if (rq) {
        if (atomic_load(&rq->ready))
            free(rq->later.body); /* the client left before its deferred reply went out */
        free(rq->body.buf.data);
        free(rq);
        *con_cls = NULL;
    }
}

/* ---- start-up ----------------------------------------------------------------------------------
 */

static char *slurp(const char *path, const char *what)
{
    char *buf = path ? fr__file_read(path, NULL) : NULL;
    if (!buf)
        fprintf(stderr, "fluxroute serve: %s %s: %s\n", what, path ? path : "(not set)",
                path ? strerror(errno) : "required");
    return buf;
}

fr_manifest *fr__serve_providers_load(const char *path)
{
    char *text = slurp(path, "--providers");
    fr_diags d;
    fr__diags_init(&d, path);
    fr_manifest *prov = text ? fr__manifest_parse_providers(path, text, strlen(text), &d) : NULL;
    free(text);
    if (!prov || d.n) {
        fr__diags_sort(&d);
        fr__diags_print(&d, stderr);
        fr__manifest_free(prov);
        prov = NULL;
    }
    fr__diags_free(&d);
    return prov;
}

/* What fr__serve_main made before a start-up failure, freed (any member may be NULL). */
static void startup_cleanup(fr_server *srv, fr_manifest *prov, fr_run_queue *queue)
{
    fr__gateway_free(srv->gw);
    if (srv->runs)
        fr__runs_free(srv->runs);
    if (queue)
        fr__run_queue_free(queue);
    if (prov)
        fr__manifest_free(prov);
    if (srv->prices)
        fr__prices_free(srv->prices);
    if (srv->cp)
        fr__cp_client_free(srv->cp);
    if (srv->quota)
        fr__quota_free(srv->quota);
    if (srv->auth)
        fr__auth_free(srv->auth);
}

int fr__serve_main(const fr_serve_options *o)
{
    fr_http_addr sa;
    const char *bad;
    if (fr__http_addr_parse(o->addr, &sa, &bad) != 0) {
        fr__http_startup_error("serve", "--addr %s: %s", o->addr, bad);
        return FR_E_INVALID;
    }

    fr_server srv = {.keys_file = o->keys_file, .max_body = o->max_body};
    char err[1024];
    if (o->keys_file && !(srv.auth = fr__auth_load(o->keys_file, err, sizeof err))) {
        fr__http_startup_error("serve", "%s", err);
        return FR_E_INVALID;
    }
    char holder[200];
    if (!o->controlplane_url && fr__auth_budget_holder(srv.auth, holder, sizeof holder)) {
        /* A budget is money: without the control plane's rate card nothing can be priced. */
        fr__http_startup_error("serve",
                               "%s: %s sets monthly_budget_micros, but budgets need prices: "
                               "start serve with --controlplane (its rate card prices calls)",
                               o->keys_file, holder);
        fr__auth_free(srv.auth);
        return FR_E_INVALID;
    }
    srv.quota = fr__quota_new();
    if (!srv.quota) {
        fr__http_startup_error("serve", "out of memory");
        fr__auth_free(srv.auth);
        return FR_E_INVALID;
    }
    fr__quota_load_file(srv.quota, srv.auth);
    fr__quota_set_state(srv.quota, o->runs.state, o->runs.limits.value[FR_LIMIT_MAX_RUN_TIMEOUT]);
    /* A testing hook (docs/reference.md): the operator's environment only, read at start. */
    const char *clock_file = getenv("FLUXROUTE_TESTING_CLOCK_OFFSET_FILE");
    if (clock_file && clock_file[0]) {
        fr__quota_use_offset_clock(clock_file);
        fr__quota_set_clock(srv.quota, fr__quota_offset_clock);
        fprintf(stderr,
                "fluxroute serve: testing hook: the limits' clock is the wall clock plus the "
                "seconds in %s (FLUXROUTE_TESTING_CLOCK_OFFSET_FILE); never set it in "
                "production\n",
                clock_file);
    }
    if (o->controlplane_url) {
        srv.cp = fr__cp_client_new(o->controlplane_url, o->controlplane_service_key,
                                   o->controlplane_spool);
        if (!srv.cp) {
            startup_cleanup(&srv, NULL, NULL);
            return FR_E_INVALID;
        }
    }
    pthread_mutex_init(&srv.sla_mu, NULL);
    srv.sla_start = fr__wall_us() / 1000000;
    pthread_rwlock_init(&srv.auth_lock, NULL);
    fr_manifest *prov = NULL;
    if (o->providers_file && !(prov = fr__serve_providers_load(o->providers_file))) {
        startup_cleanup(&srv, NULL, NULL);
        return FR_E_INVALID;
    }
    fr_runs_config rc_cfg = o->runs;
    rc_cfg.providers = prov;
    rc_cfg.cp = srv.cp;
    rc_cfg.quota = srv.quota;
    if (srv.cp) {
        srv.prices = fr__prices_new(srv.cp);
        if (srv.prices)
            fr__quota_set_prices(srv.quota, fr__prices_lookup, srv.prices);
    }
    const fr_containment *cont = &o->containment;
    fr__isolation_configure(cont->max_helpers, cont->helper_memory);
    fr__abandoned_set_cap(cont->max_abandoned);
    /* --state redis: async runs go through the durable queue, which this replica also
     * consumes (core/serve/run_queue.h). */
    fr_run_queue *queue = fr__queue_open(rc_cfg.state, &o->queue, "serve");
    rc_cfg.queue = queue;
    rc_cfg.enqueue = fr__queue_submit;
    srv.runs = fr__runs_new(&rc_cfg);
    srv.gw = fr__gateway_new(o->routes_file, srv.runs, prov, rc_cfg.manifest_dir, err, sizeof err);
    if (!srv.gw) {
        fr__http_startup_error("serve", "%s", err);
        startup_cleanup(&srv, prov, queue);
        return FR_E_INVALID;
    }

    /* TLS from the original's variables; a broken set-up fails now, clearly. */
    fr_http_tls tls;
    if (fr__http_tls_from_env(&tls, "ROUTER", err, sizeof err) != 0) {
        fr__http_startup_error("serve", "%s", err);
        startup_cleanup(&srv, prov, queue);
        return FR_E_INVALID;
    }
    tls.priorities = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
    srv.tls = tls.enabled;
    srv.require_client_cert = tls.require_client_cert;

    /* Signals are handled by this thread (sigwait), never by MHD's or the engine's. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    fr_http_server_config hc = {.addr = &sa,
                                .tls = &tls,
                                .threads = o->threads,
                                .connection_limit = 4096,
                                .connection_timeout_s = 30,
                                .suspend_resume = 1,
                                .handler = on_request,
                                .handler_cls = &srv,
                                .completed = on_completed};
    srv.d = fr__http_start(&hc);
    fr__http_tls_free(&tls);
    /* Started with the signals blocked, as the main daemon: its thread never takes them. */
    fr_metrics_listener *ml =
        srv.d && o->metrics_addr
            ? fr__metrics_listener_start(o->metrics_addr, &srv.ready, err, sizeof err)
            : NULL;
    if (!srv.d || (o->metrics_addr && !ml)) {
        if (srv.d) {
            fr__http_startup_error("serve", "%s", err);
            MHD_stop_daemon(srv.d);
        } else {
            fr__http_startup_error("serve", "cannot listen on %s%s", o->addr,
                                   srv.tls ? " (or the TLS certificate, key or CA is invalid)"
                                           : "");
        }
        startup_cleanup(&srv, prov, queue);
        return FR_E_IO;
    }
    char url[INET6_ADDRSTRLEN + 32];
    fr__http_url(srv.d, &sa, srv.tls, url, sizeof url);
    printf("listening on %s\n", url);
    if (ml)
        printf("metrics listening on %s\n", fr__metrics_listener_url(ml));
    fflush(stdout);
    atomic_store(&srv.ready, 1);
    fr_queue_consumer_config qc = {.runs = srv.runs,
                                   .state = rc_cfg.state,
                                   .queue = queue,
                                   .concurrency = o->queue.concurrency,
                                   .retention_us = rc_cfg.retention_us,
                                   .who = "serve",
                                   .quota = srv.quota};
    fr_queue_consumer *consumer =
        queue && o->queue.concurrency ? fr__queue_consumer_start(&qc) : NULL;

    int64_t last_flush = fr__mono_us();
    for (;;) {
        int sig = 0;
        /* Every SLA window (60 s, SERVE_SLA_WINDOW_S) goes to the control plane; the rate
         * card is read again every FR_PRICES_REFRESH_S. */
        const char *w = getenv("SERVE_SLA_WINDOW_S");
        long window = w && atol(w) > 0 ? atol(w) : 60;
        long wait = srv.prices && window > FR_PRICES_REFRESH_S ? FR_PRICES_REFRESH_S : window;
        struct timespec ts = {.tv_sec = wait, .tv_nsec = 0};
        sig = sigtimedwait(&set, NULL, &ts);
        if (sig < 0) {
            if (errno == EAGAIN) {
                if (srv.prices)
                    fr__prices_refresh(srv.prices);
                if (fr__mono_us() - last_flush >= (int64_t)window * 1000000 - 100000) {
                    sla_flush(&srv);
                    last_flush = fr__mono_us();
                }
            }
            continue;
        }
        if (sig == SIGHUP) {
            if (fr__gateway_reload(srv.gw, err, sizeof err) != 0)
                fprintf(stderr, "fluxroute serve: keeping the old routes: %s\n", err);
            else if (fr__gateway_path(srv.gw))
                fprintf(stderr, "fluxroute serve: reloaded %s\n", fr__gateway_path(srv.gw));
            if (!srv.keys_file)
                continue;
            fr_auth *a = fr__auth_load(srv.keys_file, err, sizeof err);
            if (a && !srv.cp && fr__auth_budget_holder(a, holder, sizeof holder)) {
                snprintf(err, sizeof err,
                         "%s: %s sets monthly_budget_micros, but budgets need prices: start "
                         "serve with --controlplane",
                         srv.keys_file, holder);
                fr__auth_free(a);
                a = NULL;
            }
            if (!a) {
                fprintf(stderr, "fluxroute serve: keeping the old keys: %s\n", err);
                continue;
            }
            fr__quota_load_file(srv.quota, a);
            pthread_rwlock_wrlock(&srv.auth_lock);
            fr_auth *old = srv.auth;
            srv.auth = a;
            pthread_rwlock_unlock(&srv.auth_lock);
            fr__auth_free(old);
            fprintf(stderr, "fluxroute serve: reloaded %s\n", srv.keys_file);
            continue;
        }
        break;
    }
    /* Graceful shutdown: stop accepting, let runs in flight finish, then stop. */
    atomic_store(&srv.ready, 0);
    fprintf(stderr, "fluxroute serve: shutting down\n");
    fr__queue_log_round_trips(rc_cfg.state, "serve");
    MHD_socket ls = MHD_quiesce_daemon(srv.d);
    int64_t t_stop = fr__mono_us();
    size_t handed = fr__queue_consumer_stop(consumer, cont->shutdown_grace_us);
    int64_t grace_left = cont->shutdown_grace_us - (fr__mono_us() - t_stop);
    size_t left = fr__runs_drain(srv.runs, handed ? 0 : grace_left > 0 ? grace_left : 0);
    size_t held = fr__abandoned_count();
    if (left || held) {
        /* Threads inside a hung plugin can never be joined, and runs still in flight
         * after the grace period are not waited for: flush what must survive and leave
         * without them. */
        char d[32];
        fprintf(stderr,
                "fluxroute serve: exiting without %zu run(s) still in flight after the grace "
                "period (--shutdown-grace %s) and %zu hung plugin thread(s)\n",
                left, fr__duration_format(cont->shutdown_grace_us, d, sizeof d), held);
        sla_flush(&srv);
        fr__cp_client_free(srv.cp);
        fr__obs_shutdown();
        fflush(NULL);
        _exit(0);
    }
    fr__exit_after(FR_CLEANUP_GRACE_US);
    /* MHD_stop_daemon must find no suspended connection: end the streams still waiting. */
    fr__sse_shutdown();
    MHD_stop_daemon(srv.d);
    fr__metrics_listener_stop(ml);
    if (ls != MHD_INVALID_SOCKET)
        close(ls);
    fr__gateway_free(srv.gw);
    fr__runs_free(srv.runs);
    fr__run_queue_free(queue);
    fr__manifest_free(prov);
    sla_flush(&srv);
    fr__cp_client_free(srv.cp);
    fr__obs_shutdown();
    pthread_mutex_destroy(&srv.sla_mu);
    pthread_rwlock_destroy(&srv.auth_lock);
    fr__auth_free(srv.auth);
    fr__quota_free(srv.quota);
    fr__prices_free(srv.prices);
    return FR_OK;
}
