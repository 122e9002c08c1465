/* Observability: the sinks, and the functions `serve` and the CLI use (metrics
 * exposition, audit log, shutdown).  The hooks that translate a run or a call into sink
 * calls are the engine's (core/engine/run_observe.h) and the host's
 * (core/host/call_observe.h): this layer knows neither runs nor calls.
 *
 *   invocation log   core/observe/logging.c   one JSON line per attempt (LOG_PATH, LOG_LEVEL)
 *   audit log        core/observe/audit.c     hash-chained JSONL (AUDIT_LOG_PATH, AUDIT_FSYNC)
 *   metrics          core/observe/metrics.c   registry + Prometheus text (METRICS_*)
 *   OpenTelemetry    core/observe/otel.c      spans over OTLP/HTTP JSON (TRACE_ENABLED,
 *                                             TRACE_ENDPOINT)
 *   set-up           core/observe/observe.c   configuration, shutdown, per-run state
 *   helpers          core/observe/obs_util.c  env truthiness, timestamps, scrubbing
 *
 * Configuration is read from the environment once, on first use (a run, an audit line,
 * a render).  Every function is thread-safe and cheap when its outputs are off: metrics are
 * always counted (atomic adds on series resolved once per agent and run), log lines and
 * spans are built only when enabled.  Strings that come from plugins or providers pass
 * through fr__secret_scrub before they reach a log line, an audit line or a span. */
#ifndef FR_CORE_OBSERVE_H
#define FR_CORE_OBSERVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* ---- metrics (for `serve`) ------------------------------------------------------------ */

/* The whole registry in the Prometheus text exposition format (0.0.4).  Caller frees
 * with free().  NULL on OOM.  Thread-safe. */
char *fr__metrics_render(void);

/* Counts one HTTP request served: fluxroute_http_requests_total{route,code}.  `route`
 * should be the route pattern ("/v1/run"), not the raw path, to bound cardinality. */
void fr__metrics_http_request(const char *route, int code);
/* Counts one chat completion of serve's OpenAI gateway:
 * fluxroute_gateway_requests_total{model_route,code}.  `model_route` is a route name of
 * the server's routes file (bounded by the operator), or "other". */
void fr__metrics_gateway_request(const char *model_route, int code);

/* Series each namespace may create with label values its manifests choose (agent ids,
 * breaker names, provider ids, models); past it those labels read "other".  Set before
 * runs start (`serve --metrics-series-per-namespace`); thread-safe. */
#define FR_METRICS_SERIES_PER_NAMESPACE_DEFAULT 256
void fr__metrics_set_series_cap(size_t per_namespace);

/* Plugin counters (host->metric): fluxroute_plugin_<name>_total{plugin}. */
void fr__metrics_plugin_add(const char *plugin, const char *name, double value);

/* ---- audit log ---------------------------------------------------------------------- */

typedef struct fr_audit_event {
    const char *actor;           /* identity: API key name, certificate CN, $USER */
    const char *role;            /* viewer|operator|admin (or the refused text) */
    const char *tenant;          /* NULL: none (CLI) */
    const char *namespace_;      /* NULL when unknown (manifest did not load) */
    const char *action;          /* run_manifest|validate_manifest|replay_trace|admin */
    const char *manifest;        /* manifest name or path */
    const char *manifest_sha256; /* NULL when unknown */
    const char *run_id;          /* NULL when no run */
    const char *decision;        /* "allowed" | "denied" */
    const char *result;          /* succeeded|failed|cancelled|valid|invalid|identical|
                                  * diverged|error|denied */
    const char *error;           /* NULL or a message (scrubbed) */
    const char *lease_key;       /* the coordination lease protecting the run, or NULL */
    uint64_t fencing_token;      /* its fencing token (when lease_key is set) */
} fr_audit_event;

/* 1 when environment variable `name` is 1, true, yes or on (any case, spaces trimmed):
 * the original's reading of boolean variables, shared by every subsystem. */
int fr__obs_env_truthy(const char *name);

/* Appends one hash-chained line to AUDIT_LOG_PATH (no-op when unset).  Strings are
 * borrowed.  Returns 0, or -1 after printing why to stderr.  Thread- and process-safe:
 * flock around reading the last line's hash and appending. */
int fr__audit_log(const fr_audit_event *ev);

/* The same to an explicit file; err receives the reason on -1. */
int fr__audit_append(const char *path, const fr_audit_event *ev, char *err, size_t errlen);

/* 1 when AUDIT_LOG_PATH is set (the configuration is read on first use). */
int fr__audit_enabled(void);

/* Flushes pending spans (bounded wait) and audit fsyncs, stops background threads.
 * Registered with atexit on first use; `serve` may call it earlier.  Idempotent. */
void fr__obs_shutdown(void);

#endif
