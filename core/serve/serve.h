/* serve: the router HTTP API, on the HTTP module (core/http: addresses, TLS and mTLS,
 * bodies, replies, error codes).  Internal interfaces between serve.c (the server,
 * routing, sending replies), serve_auth.c (identities, keys, client certificate CNs,
 * RBAC), serve_runs.c (runs, traces, retention; with serve_pipelines.c for manifests and
 * pipelines, serve_replay.c for replays and serve_gateway_run.c for the gateway's runs)
 * and serve_metrics.c (/metrics, --metrics-addr).  `fluxroute serve` (core/cli/cmd_serve.c)
 * parses the options and calls fr__serve_main. */
#ifndef FR_CORE_SERVE_H
#define FR_CORE_SERVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <json-c/json.h>
#include <microhttpd.h>

#include "engine/engine.h"
#include "manifest/rbac.h"
#include "http/http.h"
#include "serve/serve_limits.h"

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

/* Loads the keys file (YAML): keys: [{id, sha256, tenant, namespace, role, limits}],
 * clients: [{cn, tenant, namespace, role, limits}], tenants: [{id, limits}], where each
 * `limits` is an optional limit document (core/manifest/limits_doc.h).  Unknown fields are
 * errors.  Returns NULL with a message (path:line:col, the field) in err. */
fr_auth *fr__auth_load(const char *path, char *err, size_t errlen);
struct fr_limits_doc;
/* Calls fn for every tenant (tenant 1, its id) and every key or client (tenant 0, the
 * identity's id: the key id, "cn=CN") of the file, with its limits (borrowed for the call;
 * empty when it sets none). */
void fr__auth_each_limits(const fr_auth *a,
                          void (*fn)(void *ud, int tenant, const char *id,
                                     const struct fr_limits_doc *d),
                          void *ud);
/* The first entry of the file that sets a monthly budget, named in buf ("tenant \"acme\""),
 * or NULL when none does. */
const char *fr__auth_budget_holder(const fr_auth *a, char *buf, size_t n);
void fr__auth_free(fr_auth *a);
/* Finds the identity for a bearer key (compared by sha256, in constant time).
 * Returns 0 when found. */
int fr__auth_key(const fr_auth *a, const char *key, fr_identity *out);
/* Finds the identity for a client certificate CN.  Returns 0 when found. */
int fr__auth_cert(const fr_auth *a, const char *cn, fr_identity *out);
/* The server's policy: whether `role` may perform `action` at all (a manifest's rbac
 * lists may narrow it further, never widen it). */
int fr__auth_allows(fr_role role, fr_action action);
/* Whether `role` may read /metrics on serve's address: admin and metrics.  A metrics key
 * may do nothing else (fr__auth_allows refuses it every action). */
int fr__auth_may_scrape(fr_role role);

typedef struct fr_server fr_server;

/* ---- serve_runs.c ---- */

typedef struct fr_runs fr_runs;

typedef struct fr_runs_config {
    const char *manifest_dir;       /* named manifests come only from here */
    const char *const *plugin_dirs; /* --plugin-dir */
    size_t n_plugin_dirs;
    fr_manifest *providers;      /* the server's providers (owned by the server) */
    int64_t retention_us;        /* finished runs are kept this long */
    size_t retention_count;      /* and at most this many */
    size_t retention_per_tenant; /* and this many per tenant */
    size_t retention_bytes;      /* and what they hold, in bytes */
    size_t max_concurrent;       /* runs in flight before 429 */
    size_t max_per_tenant;       /* runs in flight for one tenant before 429 */
    struct fr_cp_client *cp;     /* report usage to the control plane, or NULL */
    fr_serve_limits limits;      /* per-request bounds (core/serve/serve_limits.h) */
    /* The plugin policy (core/serve/serve_policy.c). */
    const char *const *trusted_plugins; /* --trust-plugin, besides the default set */
    size_t n_trusted_plugins;
    int enable_chaos;           /* --enable-chaos: the chaos test plugin may be used */
    struct fr_state *state;     /* --state: memory or Redis (core/state/state.h; borrowed) */
    struct fr_run_queue *queue; /* --state redis: async runs go to this durable queue
                                 * (core/serve/run_queue.h; borrowed), or NULL */
    /* With a queue: stores an async run in it and answers (fr__queue_submit, given as a
     * callback: run_queue.c calls into serve_runs.c, not the other way round). */
    void (*enqueue)(const struct fr_runs_config *cfg, const fr_identity *who, const char *manifest,
                    const fr_manifest *m, const char *input, uint64_t seed, int has_seed, int trace,
                    fr_reply *out);
    struct fr_quota *quota; /* tenant and key limits (core/serve/serve_quota.h), or NULL */
    /* --journal (with a Redis state): queued runs journal to Redis and a run claimed from
     * a consumer that died resumes from its journal (core/serve/serve_journal.h);
     * journal_sync is an fr_journal_sync (--journal-sync). */
    int journal;
    int journal_sync;
} fr_runs_config;

fr_runs *fr__runs_new(const fr_runs_config *cfg);
void fr__runs_free(fr_runs *r);
/* Waits (at most `max_wait_us`) for in-flight runs to finish, then for the records of
 * answered runs the record writer still holds.  Returns how many runs remain. */
size_t fr__runs_drain(fr_runs *r, int64_t max_wait_us);

/* Admission of one unit of work that executes a pipeline (a run, a replay) for
 * `who->tenant`: 0 when admitted, and the caller then calls fr__runs_leave once with the
 * same identity when the work is over (whatever its outcome); or -1 with `out` filled with
 * 429 too_many_runs (Retry-After: 1) naming the cap reached, the server's --max-runs or
 * the tenant's --max-runs-per-tenant (500 on OOM).  Thread-safe. */
int fr__runs_admit(fr_runs *r, const fr_identity *who, fr_reply *out);
void fr__runs_leave(fr_runs *r, const fr_identity *who);

/* Handlers: `body` is the parsed request JSON (borrowed). */
/* A reply a handler finishes later on another thread, while serve keeps the connection
 * suspended (the request thread serves other connections meanwhile). */
typedef struct fr_deferred {
    struct MHD_Connection *conn; /* the request's (an SSE stream suspends it while it waits) */
    /* Called on the request thread before the work starts elsewhere. */
    void (*suspend)(struct fr_deferred *d);
    /* Called once from the worker with the reply (taken over: body ownership moves). */
    void (*complete)(struct fr_deferred *d, fr_reply *reply);
} fr_deferred;

/* A synchronous run whose pipeline has been slow (a run typically waits on providers for
 * milliseconds or more) goes to a thread of its own through `defer` (when not NULL), and
 * out->deferred is set; a fast one runs on its pipeline's driver while the request thread
 * waits, at most 50 ms: a run still going then is answered through `defer` as well.  Runs
 * of plugins that cannot block (fr__policy_runs_inline) run on the request thread. */
void fr__runs_handle_run(fr_runs *r, const fr_identity *who, json_object *body, int sse,
                         fr_deferred *defer, fr_reply *out);
void fr__runs_handle_validate(fr_runs *r, const fr_identity *who, json_object *body, fr_reply *out);
/* A replay runs on a thread of its own through `defer` (when not NULL; out->deferred is
 * set), counted among the runs in flight, and is stopped at the request's deadline. */
void fr__runs_handle_replay(fr_runs *r, const fr_identity *who, json_object *body,
                            fr_deferred *defer, fr_reply *out);
void fr__runs_handle_get(fr_runs *r, const fr_identity *who, const char *run_id, int trace,
                         fr_reply *out);
/* The trace of run `run_id` of who's tenant, on this replica or (--state redis) in the
 * records: its text (caller frees), or NULL with `out` filled (404 run_not_found,
 * run_in_progress or trace_not_recorded; 503 state_unavailable).  Thread-safe. */
char *fr__runs_trace_text(fr_runs *r, const fr_identity *who, const char *run_id, fr_reply *out);
/* The configuration the runs were made with (borrowed for their life). */
const fr_runs_config *fr__runs_config(const fr_runs *r);
void fr__runs_handle_cancel(fr_runs *r, const fr_identity *who, const char *run_id, fr_reply *out);
/* GET /v1/runs: the caller's tenant's runs, newest first.  Every member is a query value
 * as sent (borrowed; NULL when absent). */
typedef struct fr_runs_query {
    const char *status;   /* running, succeeded, failed or cancelled */
    const char *manifest; /* a named manifest */
    const char *limit;    /* 1..200, default 50 */
    const char *cursor;   /* next_cursor of the page before */
} fr_runs_query;
void fr__runs_handle_list(fr_runs *r, const fr_identity *who, const fr_runs_query *q,
                          fr_reply *out);

/* ---- serve_gateway_run.c: the OpenAI gateway's runs (core/serve/gateway.c) ---- */

/* One gateway request to run.  Every pointer is borrowed for fr__runs_gateway's call,
 * except `ud`, which the hooks get until `deliver` returns. */
typedef struct fr_gateway_exec {
    const char *label;    /* the run's manifest name in listings ("route:NAME") */
    const char *manifest; /* a pipeline route: a named manifest of the manifest directory */
    const char *yaml;     /* or a targets route: its synthesised manifest text */
    const char *input;    /* the run input (JSON text) */
    int stream;           /* the answer is a stream (SSE): it opens from the run's thread */
    /* Streamed text as it arrives (from the thread running the step), or NULL. */
    void (*on_token)(void *ud, const char *step, const char *text, size_t len);
    /* Once, on the run's thread, when the run is over and before its record is written:
     * st is how the run went (FR_OK: it ran, whatever its outcome, and res is valid for
     * the call), p its pipeline, plugin_us the time spent in plugins.  Fills `reply`. */
    void (*on_end)(void *ud, const char *run_id, fr_status st, const fr_pipeline *p,
                   const fr_run_result *res, int64_t plugin_us, fr_reply *reply);
    /* Then: answers (d->complete with the reply, or the end of a stream already
     * answered).  `reply`'s body is taken over. */
    void (*deliver)(void *ud, fr_deferred *d, fr_reply *reply);
    void *ud;
} fr_gateway_exec;

/* Runs a gateway request as a traced run of its tenant: admission (429 with Retry-After),
 * the pipeline (a named manifest from its pool, or the synthesised text built), its
 * namespace and role (404 / 403).  Then the connection waits through `defer` (suspended
 * here; out->deferred is set) while the run goes: for a route whose runs have been quick
 * (as POST /v1/run: under 10 ms on average) on the pipeline's driver, a thread that waits
 * for runs (none is started); else on a thread of its own.  `deliver` answers from the
 * thread that ends the run (here, for a run over before the hand-off).  Except when it is
 * the server's only run in flight and not a stream: then this thread waits for the quick
 * run (at most 50 ms), and `out` is filled through `deliver` before this returns
 * (out->deferred unset).  The run leaves its tenant's slot once answered; its report,
 * trace and record are written after the answer by serve's record writer (serve_writer.h;
 * before the answer when the writer's queue is full), and a GET of the run waits for them.
 * Returns 0 with the run's id in run_id, or -1 with `out` filled (serve's error shape) and
 * no hook called. */
int fr__runs_gateway(fr_runs *r, const fr_identity *who, const fr_gateway_exec *g,
                     fr_deferred *defer, char *run_id, size_t run_id_size, fr_reply *out);

/* ---- serve_policy.c ---- */

/* Refuses a manifest that names a plugin the server disables (chaos without
 * --enable-chaos): fills `out` (400 plugin_disabled) and returns -1; else 0. */
int fr__policy_check_manifest(const fr_runs_config *cfg, const fr_manifest *m, fr_reply *out);
/* The fr_build_options.agent_policy of serve (ud: the const fr_runs_config): an agent
 * whose plugin the server does not trust runs in helper processes, with a report note. */
int fr__policy_agent(void *ud, fr_pipeline *p, fr_agent_cfg *a, const fr_loaded_plugin *pl,
                     fr_diags *diags);
/* 1 when a quick synchronous run of `p` may run its steps on the request thread itself
 * (FR_RUN_ON_CALLER): every agent is one whose code never blocks (the built-in echo).
 * Others run on the pipeline's driver, which a hung plugin may hold but the request
 * thread leaves after QUICK_HOLD_US. */
int fr__policy_runs_inline(const fr_pipeline *p);
/* 1 when a gateway run of `p` may hold a request thread that serves its connection only
 * (fr__runs_gateway): every agent is the built-in llm, in process, and every provider a
 * built-in plugin, so the run waits only on vendors, within its deadlines (a plugin of
 * the operator's, even trusted, may hang). */
int fr__policy_waits_on_vendors_only(const fr_pipeline *p);
/* Refuses a pipeline with an in-process agent whose plugin is quarantined (503
 * plugin_quarantined, naming the plugin and why).  Returns -1 when refused, else 0. */
int fr__policy_check_quarantine(const fr_pipeline *p, fr_reply *out);

/* The containment flags of serve, parsed. */
typedef struct fr_containment {
    size_t max_helpers;        /* --max-helpers (default: --max-runs) */
    uint64_t helper_memory;    /* --helper-memory, bytes (default 1G; 0: none) */
    size_t max_abandoned;      /* --max-abandoned (default 16) */
    int64_t shutdown_grace_us; /* --shutdown-grace (default 30s) */
} fr_containment;
/* Parses the flags' values (NULL: the default) into *c.  Returns 0, or -1 with a message
 * naming the flag in *why (static storage). */
int fr__containment_parse(fr_containment *c, const char *max_helpers, const char *helper_memory,
                          const char *max_abandoned, const char *grace, size_t max_runs,
                          const char **why);
/* After shutdown: how long cleaning up may take before the process leaves anyway. */
#define FR_CLEANUP_GRACE_US (10 * 1000000LL)
/* Starts a timer that ends the process (status 0) after `us`, whatever it is doing. */
void fr__exit_after(int64_t us);

/* ---- serve.c ---- */

/* Parses a request body as serve's routes do: exactly one JSON object (nested at most 64
 * deep).  Returns it (caller releases with json_object_put), or NULL with `out` filled
 * (400 bad_request or malformed_json, with the byte offset).  `data` is borrowed.
 * Thread-safe; also the entry of tests/fuzz/fuzz_serve.c. */
json_object *fr__serve_parse_body(const char *data, size_t len, fr_reply *out);

/* ---- serve_metrics.c ---- */

/* /metrics on serve's address, and any request of a metrics key (which gets 403 for
 * anything but /metrics): 403 unless who may scrape (fr__auth_may_scrape), 405 for a
 * method other than GET or HEAD, else the exposition. */
void fr__serve_metrics_route(const fr_identity *who, const char *url, const char *method,
                             fr_reply *out);

/* /readyz (serve's address and --metrics-addr): 200 {"status": "ready", "state"} once
 * `ready`, else 503 "starting"; "state" is fr__serve_state_health() (200 also while the
 * shared state is unreachable). */
void fr__serve_readyz(int ready, fr_reply *out);

/* The --metrics-addr listener: /metrics, /healthz, /readyz without authentication, 404
 * for anything else; plain HTTP on its own thread. */
typedef struct fr_metrics_listener fr_metrics_listener;
/* Starts it on `addr` (HOST:PORT, :PORT, [V6]:PORT; port 0 picks one).  `ready` is the
 * server's readiness for /readyz (borrowed for the listener's life).  NULL with the
 * reason in err when the address is malformed or cannot be bound. */
fr_metrics_listener *fr__metrics_listener_start(const char *addr, const atomic_int *ready,
                                                char *err, size_t errlen);
/* "http://HOST:PORT" with the bound port.  Borrowed from l. */
const char *fr__metrics_listener_url(const fr_metrics_listener *l);
/* Stops it (waits for its thread) and frees it.  NULL is ignored. */
void fr__metrics_listener_stop(fr_metrics_listener *l);

/* The durable queue's consumer in this process (--state redis; core/serve/run_queue.h). */
typedef struct fr_queue_options {
    size_t concurrency;    /* runs at once (--concurrency) */
    int64_t visibility_us; /* --visibility-timeout */
    size_t max_queued;     /* --max-queued: entries the queue may hold (0: no cap) */
} fr_queue_options;

/* What serve and worker execute runs with (core/cli/cmd_serve.c parses it; every pointer
 * borrowed). */
typedef struct fr_exec_options {
    fr_runs_config runs; /* without providers and cp, which the process fills */
    fr_containment containment;
    fr_queue_options queue;
    struct fr_state *state; /* opened (the caller frees it) */
    size_t max_body;
    const char *providers_file;
    const char *controlplane_url;
    const char *controlplane_service_key;
    const char *controlplane_spool;
    const char *metrics_addr;
} fr_exec_options;

/* ---- serve_records.c: the shared state's health (--state) ---- */

/* Counts a failed operation on the shared state: fluxroute_state_errors_total{op} (`op`
 * from a fixed set: "record_put", "queue_add", ...), and refreshes the
 * fluxroute_state_reachable gauge.  Thread-safe; for every user of --state in serve. */
void fr__serve_state_error(const char *op);
/* /readyz's "state": "memory", "ok" (Redis reachable at the last attempt) or
 * "unreachable".  Thread-safe. */
const char *fr__serve_state_health(void);

/* ---- serve.c: the server ---- */

/* What `fluxroute serve` is asked to do (core/cli/cmd_serve.c fills it from argv and the
 * ROUTER_* variables).  Every pointer is borrowed for the call. */
typedef struct fr_serve_options {
    const char *addr;                     /* HOST:PORT, :PORT, [V6]:PORT (fr__http_addr_parse) */
    const char *keys_file;                /* keys and client identities, or NULL with: */
    const char *controlplane_url;         /* keys and usage through the control plane, or NULL */
    const char *controlplane_service_key; /* its service key, or NULL */
    const char *controlplane_spool;       /* the usage spool file */
    const char *providers_file;           /* the providers requests may use, or NULL */
    const char *routes_file;              /* the OpenAI gateway's model routes, or NULL */
    const char *metrics_addr;             /* the --metrics-addr listener, or NULL */
    unsigned threads;                     /* request threads */
    size_t max_body;                      /* request bodies over it get 413 */
    fr_runs_config runs;                  /* without providers and cp, which serve fills */
    fr_containment containment;
    fr_queue_options queue; /* with --state redis */
} fr_serve_options;

/* Reads the --providers file `path`: the providers, or NULL after printing why (its
 * diagnostics, or the file's error) to stderr.  Caller frees with fr__manifest_free. */
fr_manifest *fr__serve_providers_load(const char *path);

/* ---- worker.c: `fluxroute worker` ---- */

/* Executes queued runs (--state redis) until SIGTERM or SIGINT, with no API listener:
 * /healthz and /metrics on o->metrics_addr when set.  The first stdout line is
 * `worker consuming URL` (the password masked), then `metrics listening on URL`.  On
 * SIGTERM it stops taking runs, lets those it holds finish within the shutdown grace and
 * hands the rest back.  FR_OK after a shutdown, FR_E_INVALID when the configuration is
 * unusable (not a Redis state, bad providers), FR_E_IO when the metrics address cannot be
 * bound; what is wrong is printed to stderr.  Call once per process. */
fr_status fr__worker_main(const fr_exec_options *o);

/* Serves until SIGTERM or SIGINT (SIGHUP re-reads the keys and routes files), then shuts down
 * gracefully.  TLS comes from the ROUTER_TLS_* variables.  The first stdout line is
 * `listening on URL` (then `metrics listening on URL` with a metrics address).  Returns
 * FR_OK after a shutdown, FR_E_INVALID when the configuration is unusable (bad address,
 * keys, providers or TLS files), FR_E_IO when it cannot listen; what is wrong is printed
 * to stderr.  Call once per process: it blocks the signals it waits for. */
fr_status fr__serve_main(const fr_serve_options *o);

#endif
