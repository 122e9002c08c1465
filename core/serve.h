/* `fluxroute serve`: the router HTTP API (libmicrohttpd, epoll, internal thread pool;
 * TLS and mTLS through GnuTLS).  Internal interfaces between serve.c (daemon, routing,
 * responses), serve_auth.c (identities, keys, mTLS, RBAC) and serve_runs.c (manifests,
 * pipelines, runs, traces, retention). */
#ifndef FR_CORE_SERVE_H
#define FR_CORE_SERVE_H

#include <pthread.h>
#include <stdint.h>

#include <json-c/json.h>
#include <microhttpd.h>

#include "engine.h"
#include "rbac.h"

/* Who is calling. */
typedef struct fr_identity {
    char id[128]; /* key id or client certificate CN (for audit lines) */
    char tenant[72];
    char namespace_[40];
    fr_role role;
    int via_cert;         /* 1: mTLS client certificate */
    char traceparent[64]; /* the request's W3C traceparent, or "" (joins the caller's trace) */
} fr_identity;

typedef struct fr_auth fr_auth;

/* Loads the keys file (YAML): keys: [{id, sha256, tenant, namespace, role}],
 * clients: [{cn, tenant, namespace, role}].  Returns NULL with a message in err. */
fr_auth *fr__auth_load(const char *path, char *err, size_t errlen);
void fr__auth_free(fr_auth *a);
/* Finds the identity for a bearer key (compared by sha256, in constant time).
 * Returns 0 when found. */
int fr__auth_key(const fr_auth *a, const char *key, fr_identity *out);
/* Finds the identity for a client certificate CN.  Returns 0 when found. */
int fr__auth_cert(const fr_auth *a, const char *cn, fr_identity *out);
/* Verifies the connection's TLS client certificate against the configured CA and puts
 * its subject CN in cn.  Returns 0 when a verified certificate is present. */
int fr__auth_verify_client_cert(struct MHD_Connection *c, char *cn, size_t cnlen);
/* The server's policy: whether `role` may perform `action` at all (a manifest's rbac
 * lists may narrow it further, never widen it). */
int fr__auth_allows(fr_role role, fr_action action);

typedef struct fr_server fr_server;

/* ---- serve_runs.c ---- */

typedef struct fr_runs fr_runs;

typedef struct fr_runs_config {
    const char *manifest_dir;       /* named manifests come only from here */
    const char *const *plugin_dirs; /* --plugin-dir */
    size_t n_plugin_dirs;
    fr_manifest *providers;  /* the server's providers (owned by the server) */
    int64_t retention_us;    /* finished runs are kept this long */
    size_t retention_count;  /* and at most this many */
    size_t max_concurrent;   /* runs in flight before 429 */
    struct fr_cp_client *cp; /* report usage to the control plane, or NULL */
} fr_runs_config;

/* An HTTP answer produced by a handler. */
typedef struct fr_reply {
    int status;
    char *body; /* owned; JSON unless content_type says otherwise */
    size_t body_len;
    const char *content_type;    /* static; NULL = application/json */
    int retry_after;             /* seconds, for 429; 0 = none */
    const char *allow;           /* static; for 405: the methods the resource takes */
    const char *challenge;       /* static; for 401: the WWW-Authenticate challenge */
    int64_t plugin_us;           /* time spent inside plugins (for the overhead header) */
    struct MHD_Response *stream; /* a streaming response (SSE), instead of body */
    const char *route;           /* route pattern for metrics ("/v1/runs/{id}") */
    int deferred;                /* the reply comes later through fr_deferred */
} fr_reply;

fr_runs *fr__runs_new(const fr_runs_config *cfg);
void fr__runs_free(fr_runs *r);
/* Waits (at most `max_wait_us`) for in-flight runs to finish.  Returns how many remain. */
size_t fr__runs_drain(fr_runs *r, int64_t max_wait_us);

/* Handlers: `body` is the parsed request JSON (borrowed). */
/* A reply a handler finishes later on another thread, while serve keeps the connection
 * suspended (the request thread serves other connections meanwhile). */
typedef struct fr_deferred {
    /* Called on the request thread before the work starts elsewhere. */
    void (*suspend)(struct fr_deferred *d);
    /* Called once from the worker with the reply (taken over: body ownership moves). */
    void (*complete)(struct fr_deferred *d, fr_reply *reply);
} fr_deferred;

/* A synchronous run whose pipeline has been slow (a run typically waits on providers for
 * milliseconds or more) goes to a thread of its own through `defer` (when not NULL), and
 * out->deferred is set; a fast one runs on the request thread. */
void fr__runs_handle_run(fr_runs *r, const fr_identity *who, json_object *body, int sse,
                         fr_deferred *defer, fr_reply *out);
void fr__runs_handle_validate(fr_runs *r, const fr_identity *who, json_object *body, fr_reply *out);
void fr__runs_handle_replay(fr_runs *r, const fr_identity *who, json_object *body, fr_reply *out);
void fr__runs_handle_get(fr_runs *r, const fr_identity *who, const char *run_id, int trace,
                         fr_reply *out);
void fr__runs_handle_cancel(fr_runs *r, const fr_identity *who, const char *run_id, fr_reply *out);

/* ---- serve.c helpers used by the handlers ---- */

/* Fills `out` with {"error": {"code": code, "message": ...}} and the status. */
void fr__reply_error(fr_reply *out, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Fills `out` with a JSON body (takes the object). */
void fr__reply_json(fr_reply *out, int status, json_object *o);

/* Parses a request body as serve's routes do: exactly one JSON object (nested at most 64
 * deep).  Returns it (caller releases with json_object_put), or NULL with `out` filled
 * (400 bad_request or malformed_json, with the byte offset).  `data` is borrowed.
 * Thread-safe; also the entry of tests/fuzz/fuzz_serve.c. */
json_object *fr__serve_parse_body(const char *data, size_t len, fr_reply *out);

/* The `serve` command. */
int fr__serve_main(int argc, char **argv);

#endif
