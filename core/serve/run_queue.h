/* The durable queue's two ends in serve and `fluxroute worker` (--state redis):
 *
 * - submission: POST /v1/run {"async": true} stores the run's queued record and its queue
 *   entry (core/state/run_queue.h) and only then answers 202; when Redis cannot take them,
 *   503 state_unavailable, never a 202 that may be lost;
 * - consumption: every serve replica and every worker runs a consumer that takes entries
 *   with bounded concurrency and executes them through fr_runs (serve_runs.c), each
 *   execution under the run's lease with a fresh fencing token, then acknowledges them.
 *
 * README.md ("The durable queue") tells the guarantees. */
#ifndef FR_CORE_SERVE_RUN_QUEUE_H
#define FR_CORE_SERVE_RUN_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "serve/serve.h"
#include "state/run_queue.h"

/* ---- serve_runs.c: executing one queued run ---- */

/* What a consumer hands to fr_runs to execute (every pointer borrowed for the call). */
typedef struct fr_queued_run {
    const fr_identity *who; /* the submitter, as the entry recorded it */
    const char *run_id;
    const char *manifest; /* a named manifest, or NULL with: */
    const char *yaml;     /* inline text */
    const char *sha256;   /* the named manifest's sha256 when submitted */
    const char *input;    /* JSON text, or NULL */
    uint64_t seed;
    int has_seed;
    int trace;
    unsigned executions; /* how many times the run was started, this time included */
    /* Called once when the run has ended, before its usage is reported, with its status and
     * report (and trace, or NULL): stores them.  Returns 0 when this execution may report
     * usage (it still holds the run's newest fencing token), else -1. */
    int (*finish)(void *ud, fr_run_status status, const char *report, const char *trace,
                  int trace_refused);
    /* Called instead of finish when the run's journal refused an append (another
     * execution took the run over, --journal): this one writes nothing more of it. */
    void (*fenced)(void *ud);
    void *ud;
} fr_queued_run;

/* Executes `q` on the calling thread, as an asynchronous run of q->who would: the manifest
 * is acquired and authorized again (a named one must still have the sha256 it had when
 * queued), then the run goes and q->finish is called.  Returns 0 when it ran (whatever its
 * outcome), 1 when this server has no room for it now (admission: try again shortly), or
 * -1 with `out` filled when it is refused (the message says why). */
int fr__runs_execute_queued(fr_runs *r, const fr_queued_run *q, fr_reply *out);

/* ---- run_queue.c ---- */

/* POST /v1/run {"async": true} with a queue (cfg->queue): `m` is the manifest the request
 * named (already authorized), `manifest` its name or NULL for inline text.  Fills `out`:
 * 202 {run_id, status: "queued"} with Location once the run's record and its queue entry
 * are stored; 429 too_many_runs when the queue is at --max-queued; or 503
 * state_unavailable (both with Retry-After: 1). */
void fr__queue_submit(const fr_runs_config *cfg, const fr_identity *who, const char *manifest,
                      const fr_manifest *m, const char *input, uint64_t seed, int has_seed,
                      int trace, fr_reply *out);

typedef struct fr_queue_consumer fr_queue_consumer;

typedef struct fr_queue_consumer_config {
    fr_runs *runs;          /* executes the runs (borrowed) */
    fr_state *state;        /* a Redis state: records (borrowed) */
    fr_run_queue *queue;    /* the queue on it (borrowed) */
    size_t concurrency;     /* runs at once (at least 1) */
    int64_t retention_us;   /* finished records expire after it */
    const char *who;        /* the process in log lines: "serve", "worker" (static) */
    struct fr_quota *quota; /* the runs' limits: a run's entry fills in those it lacks
                             * (fr__quota_set_queued_text), or NULL */
} fr_queue_consumer_config;

/* Starts consuming with at most cfg->concurrency runs at once.  NULL on OOM or when no
 * thread can start. */
fr_queue_consumer *fr__queue_consumer_start(const fr_queue_consumer_config *cfg);
/* Stops taking entries, waits at most `grace_us` for the runs held to finish, and hands the
 * rest back to the queue (another consumer claims them at once).  Returns how many were
 * handed back.  Frees c. */
size_t fr__queue_consumer_stop(fr_queue_consumer *c, int64_t grace_us);

/* Logs (stderr) when Redis does not keep what it acknowledges across a crash (appendonly
 * and appendfsync other than yes and always), or when it cannot tell. */
void fr__queue_warn_durability(fr_state *s, const char *who);

/* The queue of a Redis state (after the durability warning), or NULL for memory (or OOM). */
fr_run_queue *fr__queue_open(fr_state *s, const fr_queue_options *o, const char *who);

/* Logs (stderr) the Redis round trips this process made, at exit: the figure per run of
 * docs/scaling.md's capacity model comes from it. */
void fr__queue_log_round_trips(fr_state *s, const char *who);

/* The consumer's default concurrency: `max_runs` shared among the cores (at least 1). */
size_t fr__queue_default_concurrency(size_t max_runs);

#endif
