/* serve's bounds on the work one request may cause: steps per manifest, threads per
 * pipeline, run deadlines, bytes kept per run, and the size of YAML documents.  A request
 * over a limit is refused with 400 limit_exceeded naming the limit (fr__reply_limit);
 * a worker_pool_size over --max-threads is clamped instead, with a note in the report.
 * The limits are read once at start-up and read-only afterwards (thread-safe). */
#ifndef FR_CORE_SERVE_LIMITS_H
#define FR_CORE_SERVE_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#include "http/http.h"
#include "manifest/manifest.h"

/* The limits, by their names in limit_exceeded errors. */
typedef enum fr_limit_id {
    FR_LIMIT_MAX_STEPS = 0,
    FR_LIMIT_MAX_THREADS,
    FR_LIMIT_MAX_RUN_TIMEOUT,
    FR_LIMIT_MAX_RUN_BYTES,
    FR_LIMIT_MAX_YAML_NODES,
    FR_LIMIT_MAX_YAML_ALIASES,
    FR_LIMIT_MAX_BODY, /* serve's --max-body: request bodies (413) and named manifest files */
    FR_LIMIT_COUNT_
} fr_limit_id;

typedef struct fr_serve_limits {
    int64_t value[FR_LIMIT_COUNT_]; /* counts, bytes, or microseconds (max_run_timeout) */
} fr_serve_limits;

/* Fills in the documented defaults. */
void fr__serve_limits_defaults(fr_serve_limits *l);

/* The command-line flag of a limit ("--max-steps") and its name ("max_steps"). */
const char *fr__limit_flag(fr_limit_id id);
const char *fr__limit_name(fr_limit_id id);

/* Sets limit `id` from its flag's text (a positive count, a SIZE such as 8MiB, or a
 * duration such as 10m).  Returns 0, or -1 with a message naming the flag in err. */
int fr__serve_limits_set(fr_serve_limits *l, fr_limit_id id, const char *text, char *err,
                         size_t errlen);

/* The value of a limit as limit_exceeded's "max" reports it: the count, the bytes, or
 * for max_run_timeout milliseconds. */
int64_t fr__limit_max(const fr_serve_limits *l, fr_limit_id id);

/* The YAML bounds for parsing a request's manifest (out members zeroed). */
fr_yaml_limits fr__serve_yaml_limits(const fr_serve_limits *l);

/* Maps a limit that stopped the YAML parser ("max_yaml_nodes") to its id; -1 if none. */
int fr__limit_by_name(const char *name);

/* Checks a parsed manifest against the limits and adapts it: a worker_pool_size above
 * --max-threads is clamped (with a note in m), and a manifest without run_timeout gets
 * --max-run-timeout as its run deadline.  Returns -1 with the limit's id in *which and a
 * message in msg when a limit is exceeded (the request must be refused); 0 otherwise,
 * also when only a clamp note could not be allocated. */
int fr__serve_limits_apply(const fr_serve_limits *l, fr_manifest *m, fr_limit_id *which, char *msg,
                           size_t msglen);

/* Keeps what one finished run stores within --max-run-bytes.  *report (a JSON object's
 * text) and *trace (or NULL) are owned and may be replaced: when both together pass the
 * limit the trace is dropped (*trace_refused set) and the report notes it; a report that
 * alone passes the limit is replaced by a short one with the run's id, status and a
 * note.  Returns 0, or -1 on OOM (then *report is NULL). */
int fr__serve_limits_fit_run(const fr_serve_limits *l, const char *run_id, const char *status,
                             char **report, char **trace, int *trace_refused);

/* Fills `out` with 400 {"error": {"code": "limit_exceeded", "limit": NAME, "max": MAX,
 * "message": ...}} for limit `id` (its name and its fr__limit_max value). */
void fr__reply_limit(fr_reply *out, const fr_serve_limits *l, fr_limit_id id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#endif
