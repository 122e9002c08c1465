/* Internals shared by the observability files (core/observe/observe.h describes the whole). */
#ifndef FR_CORE_OBS_IMPL_H
#define FR_CORE_OBS_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include <fluxroute/plugin.h> /* FR_LOG_* */
#include <fluxroute/status.h>

#include "observe/observe.h"

/* ---- set-up (observe.c) --------------------------------------------------------------- */

/* Reads the environment once (thread-safe) and starts what it enables. */
void fr__obs_init(void);

/* ---- helpers (obs_util.c): below the sinks and the hooks, they call none of them ----- */

/* 1 when the variable is set to 1, true, yes or on (case-insensitive, trimmed). */
int fr__obs_env_truthy(const char *name);

/* Current wall time as RFC 3339 UTC with microseconds ("2024-05-01T12:00:00.123456Z"). */
void fr__obs_timestamp(char out[32]);

/* Scrubs secrets from a string of plugin or provider origin.  Returns a new string
 * (caller frees) or NULL on OOM. */
char *fr__obs_scrub(const char *text);

/* What an attempt's output or a provider response says about the model call: top-level
 * "provider" and "model" and usage.input_tokens / usage.output_tokens.  A linear scan,
 * no parse; fields not found stay untouched.  Strings are unescaped (and truncated to
 * fit). */
typedef struct fr_obs_usage {
    char provider[64], model[128];       /* "" when absent */
    int64_t input_tokens, output_tokens; /* -1 when absent */
} fr_obs_usage;
void fr__obs_scan_usage(const char *json, size_t len, fr_obs_usage *u);

/* ---- metrics registry (metrics.c) ---------------------------------------------------- */

typedef enum fr_metric_id {
    FR_M_RUNS,
    FR_M_STEP_ATTEMPTS,
    FR_M_STEP_DURATION,
    FR_M_RETRIES,
    FR_M_CIRCUIT_STATE,
    FR_M_CIRCUIT_TRANSITIONS,
    FR_M_PROVIDER_REQUESTS,
    FR_M_PROVIDER_TOKENS,
    FR_M_PROVIDER_LATENCY,
    FR_M_HTTP_REQUESTS,
    FR_M_PLUGINS_LOADED,
    FR_M_SPANS_EXPORTED,
    FR_M_SPANS_DROPPED,
    FR_M_SPAN_EXPORT_FAILURES,
    FR_M_AUDIT_WRITE_ERRORS,
    FR_M_LOG_WRITE_ERRORS,
    FR_M_USAGE_REJECTED,
    FR_M_QUEUE_DEPTH,
    FR_M_QUEUE_CLAIMED,
    FR_M_RUN_EXECUTIONS,
    FR_M_STATE_ERRORS,
    FR_M_STATE_REACHABLE,
    FR_M_STATE_ROUND_TRIPS,
    FR_M_LIMIT_REJECTIONS, /* serve: requests and calls refused by a tenant/key limit */
    FR_M_BUDGET_USED,      /* serve: a tenant's spend this month (micro-units) */
    FR_M_GATEWAY_REQUESTS, /* serve: OpenAI gateway completions, by model route */
    FR_M_COUNT_
} fr_metric_id;

typedef struct fr_metric_series fr_metric_series;

/* The series of metric `id` with these label values (as many as the metric has labels,
 * borrowed), created on first use.  The pointer stays valid for the life of the process.
 * Takes the registry lock: resolve once, then update lock-free.  NULL on OOM. */
fr_metric_series *fr__metric_series(fr_metric_id id, const char *const *labels);

/* The same, counting a new series with tenant-chosen labels (agent, breaker, provider,
 * model) against namespace `ns` (borrowed; NULL: the metric's namespace label) rather
 * than its own label: for metrics without one, such as the provider metrics. */
fr_metric_series *fr__metric_series_in(fr_metric_id id, const char *ns, const char *const *labels);

/* Lock-free updates (NULL series are ignored). */
void fr__metric_add(fr_metric_series *s, uint64_t n);
void fr__metric_set(fr_metric_series *s, int64_t v);
void fr__metric_observe_us(fr_metric_series *s, int64_t us);

/* Shorthand for rare events: resolve and add. */
void fr__metric_count(fr_metric_id id, const char *const *labels, uint64_t n);

/* ---- per-run state shared by the hooks (observe.c) ------------------------------------ */

/* Metric series of one agent, resolved once per run. */
typedef struct fr_obs_agent_cache {
    fr_metric_series *attempts[FR_CLASS_COUNT_]; /* by class; NONE = succeeded */
    fr_metric_series *retries;
    fr_metric_series *steps[2]; /* step duration: succeeded, failed */
} fr_obs_agent_cache;

/* A run's observability state (the engine keeps it with the run; its calls point to it). */
struct fr_obs_run {
    const char *ns;
    int traced;
    uint8_t trace_id[16];
    uint64_t seed;        /* span ids derive from it */
    uint64_t parent_span; /* from an incoming traceparent, or 0 */
    size_t n_agents;
    fr_obs_agent_cache agents[];
};

/* What provider calls told during the attempt running on this thread (for its log line),
 * and the provider span in progress (for traceparent). */
typedef struct fr_obs_thread {
    uint64_t provider_span;
    int has_call;
    fr_obs_usage usage;
} fr_obs_thread;
extern _Thread_local fr_obs_thread fr__obs_tl;

/* Span ids, derived from the run's seed (never zero). */
uint64_t fr__obs_run_span(const struct fr_obs_run *o);
uint64_t fr__obs_step_span(const struct fr_obs_run *o, const char *step);
uint64_t fr__obs_attempt_span(const struct fr_obs_run *o, const char *step, const char *agent,
                              int attempt);

/* "00-<32 hex trace>-<16 hex span>-<2 hex flags>" (lower case, non-zero ids) into trace and
 * *span: 0, or -1 when tp is NULL or not one. */
int fr__obs_traceparent_parse(const char *tp, uint8_t trace[16], uint64_t *span);
/* The traceparent of a span: "00-<trace>-<span>-01" (55 chars + NUL). */
void fr__obs_traceparent_format(const uint8_t trace[16], uint64_t span, char out[56]);
/* n bytes as 2n lower-case hex digits (+ NUL). */
void fr__obs_hex_id(const uint8_t *b, size_t n, char *out);

/* The series in *slot, resolved with fr__metric_series on first use (racing threads
 * resolve the same pointer: the registry returns one series per label set). */
fr_metric_series *fr__obs_cached(fr_metric_series **slot, fr_metric_id id,
                                 const char *const *labels);

/* ---- invocation log (logging.c) ------------------------------------------------------ */

/* 1 when lines at `level` (FR_LOG_*) are written. */
int fr__oblog_enabled(int level);
/* Writes one object as a JSON line (adds "ts" and "level" first).  Takes `o`. */
void fr__oblog_write(int level, json_object *o);
void fr__oblog_init(void);

/* ---- spans (otel.c) ------------------------------------------------------------------- */

int fr__otel_enabled(void);
void fr__otel_init(void);
void fr__otel_shutdown(void);

/* 1 when a span built now would be queued; 0 (and the drop counted) while the queue is
 * full, e.g. behind a dead endpoint: then the caller does not build it. */
int fr__span_wanted(void);

typedef struct fr_span fr_span;
/* A finished span; kind 1 internal, 3 client.  ids are 64-bit span ids, trace_id 16
 * bytes.  NULL on OOM. */
fr_span *fr__span_new(const uint8_t trace_id[16], uint64_t span_id, uint64_t parent_id,
                      const char *name, int kind, int64_t start_wall_us, int64_t end_wall_us);
void fr__span_attr_str(fr_span *s, const char *key, const char *value);
void fr__span_attr_int(fr_span *s, const char *key, int64_t value);
/* error != 0: status ERROR with `message` (scrubbed); else OK. */
void fr__span_status(fr_span *s, int error, const char *message);
/* Queues the span for export (takes it); dropped and counted when the queue is full. */
void fr__span_submit(fr_span *s);

/* ---- audit (audit.c) ------------------------------------------------------------------ */

/* Reads the audit configuration once (thread-safe; the audit functions call it) and
 * registers fr__audit_shutdown with atexit. */
void fr__audit_init(void);
/* Writes and syncs what is queued and stops the audit threads.  Idempotent; a line
 * appended later is written by its own thread. */
void fr__audit_shutdown(void);

#endif
