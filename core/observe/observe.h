/* Observability: the hooks the engine calls at a few single points, and the functions
 * `serve` and the CLI use (metrics exposition, audit log, shutdown).
 *
 *   invocation log   core/observe/logging.c   one JSON line per attempt (LOG_PATH, LOG_LEVEL)
 *   audit log        core/observe/audit.c     hash-chained JSONL (AUDIT_LOG_PATH, AUDIT_FSYNC)
 *   metrics          core/observe/metrics.c   registry + Prometheus text (METRICS_*)
 *   OpenTelemetry    core/observe/otel.c      spans over OTLP/HTTP JSON (TRACE_ENABLED, TRACE_ENDPOINT)
 *   dispatch         core/observe/observe.c   the hooks below fan out to the four
 *
 * Configuration is read from the environment once, on first use (a run, an audit line,
 * a render).  Every hook is thread-safe and cheap when its outputs are off: metrics are
 * always counted (atomic adds on series resolved once per agent and run), log lines and
 * spans are built only when enabled.  Strings that come from plugins or providers pass
 * through fr__secret_scrub before they reach a log line, an audit line or a span. */
#ifndef FR_CORE_OBSERVE_H
#define FR_CORE_OBSERVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "engine/engine.h"
#include "manifest/rbac.h"

struct fr_run;
struct fr_breaker_transition;

/* ---- engine hooks (one call each, at the marked points) ----------------------------- */

/* Start of a run (sched.c fr__pipeline_run, after run id and options are set).  Returns
 * the run's observability state (owned by the run; freed by fr__obs_run_end), or NULL
 * on OOM (every other hook accepts a run whose obs is NULL). */
struct fr_obs_run *fr__obs_run_begin(struct fr_run *run);

/* End of a run (sched.c fr__pipeline_run, once its status is known): run metric, log
 * line, run span.  Frees run->obs. */
void fr__obs_run_end(struct fr_run *run);

/* End of an attempt, once its record is complete (step.c fr__step_drive): normal
 * attempts, circuit_open rejections, attempts the watchdog declared hung, replayed
 * abandoned attempts.  `agent` is the agent's manifest index. */
void fr__obs_attempt_end(struct fr_run *run, int step, int agent);

/* End of a step (sched.c settle; pool lock held: metrics and span only). */
void fr__obs_step_end(struct fr_run *run, int step);

/* A breaker changed state (sched.c fr__run_note_transition). */
void fr__obs_breaker_transition(struct fr_run *run, const char *breaker,
                                const struct fr_breaker_transition *tr);

/* A provider call (host.c host_provider_call): begin returns a token that end takes. */
typedef struct fr_obs_provider_token {
    int64_t t0_us;         /* monotonic */
    uint64_t span_id;      /* 0 when the run is not traced */
    uint64_t prev_span_id; /* the thread's previous provider span (nesting) */
} fr_obs_provider_token;
fr_obs_provider_token fr__obs_provider_begin(fr_call *call);
/* `response` is the provider's JSON answer (model, usage) or NULL on failure. */
void fr__obs_provider_end(fr_call *call, const fr_obs_provider_token *tok, const char *provider_id,
                          const char *system, fr_status st, const char *response,
                          size_t response_len);

/* W3C traceparent for an outgoing HTTP request made during `call`, when its run is
 * traced: writes "00-<trace>-<span>-01" (55 chars + NUL) into out and returns 1; 0
 * otherwise.  The parent span is the current provider call, else the attempt. */
int fr__obs_traceparent(fr_call *call, char out[56]);

/* ---- metrics (for `serve`) ------------------------------------------------------------ */

/* The whole registry in the Prometheus text exposition format (0.0.4).  Caller frees
 * with free().  NULL on OOM.  Thread-safe. */
char *fr__metrics_render(void);

/* Counts one HTTP request served: fluxroute_http_requests_total{route,code}.  `route`
 * should be the route pattern ("/v1/run"), not the raw path, to bound cardinality. */
void fr__metrics_http_request(const char *route, int code);

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

/* CLI: one audit line per command invocation (the first call wins, so a denial written
 * by fr__cli_authorize is not followed by a second line).  `m` may be NULL. */
/* The CLI's lease for the run being audited (key borrowed until the next call). */
void fr__audit_cli_lease(const char *key, uint64_t fencing_token);
void fr__audit_cli(fr_action action, const char *manifest_path, const fr_manifest *m,
                   const char *run_id, const char *decision, const char *result, const char *error);

/* Flushes pending spans (bounded wait) and audit fsyncs, stops background threads.
 * Registered with atexit on first use; `serve` may call it earlier.  Idempotent. */
void fr__obs_shutdown(void);

/* ---- commands ------------------------------------------------------------------------- */

struct cli_command;
int fr__cmd_audit_verify(const struct cli_command *cmd, int argc, char **argv);
int fr__cmd_audit_export(const struct cli_command *cmd, int argc, char **argv);

#endif
