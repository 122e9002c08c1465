/* serve's run records with --state redis (core/state/run_records.h): what lets any replica
 * answer for a run another replica (or a worker) executed.
 *
 * - Every finished run (sync and async) writes its record: one round trip, on the thread
 *   that finishes the run, before the reply.  A run that can be cancelled from elsewhere
 *   before it ends (async, streamed) also writes a "running" record when it starts.
 * - GET /v1/runs/{id}, its trace, POST /v1/replay {run_id} and DELETE /v1/runs/{id} look
 *   in the replica's own run store first and in Redis otherwise; GET /v1/runs lists the
 *   tenant's records from Redis (and the replica's own running runs).  Records are under
 *   their tenant's keys: another tenant's run is 404 on every replica.
 * - A watcher thread polls, every 200 ms, the cancel marks of the runs this replica
 *   executes (DELETE on any replica cancels within about 200 ms plus a round trip) and
 *   the tenants' runs in flight across the cluster (--max-runs-per-tenant, cluster-wide;
 *   docs/security.md states the bound).  Idle, it pings Redis once a second so /readyz
 *   and fluxroute_state_reachable stay current.
 * - Redis down: runs go on (their records are not written: counted in
 *   fluxroute_state_errors_total{op="record_put"}); what only Redis holds is 503
 *   state_unavailable.
 *
 * All functions are thread-safe. */
#ifndef FR_CORE_SERVE_RECORDS_H
#define FR_CORE_SERVE_RECORDS_H

#include "serve/run_store.h"
#include "serve/serve.h"

typedef struct fr_records fr_records;

/* How the watcher reaches the runs it polls for (serve_runs.c gives its own). */
typedef struct fr_records_hooks {
    /* Calls fn for each running entry, under the runs' lock. */
    void (*each_running)(void *ud, void (*fn)(void *fn_ud, fr_run_entry *e), void *fn_ud);
    /* Cancels run `id` if it still runs here (a cancel asked on another replica). */
    void (*cancel)(void *ud, const char *id);
    void *ud;
} fr_records_hooks;

/* Starts the records (and the watcher thread) when cfg->state is Redis; NULL otherwise
 * (memory) or on OOM (then runs are kept locally only, with a message). */
fr_records *fr__records_start(const fr_records_hooks *hooks, const fr_runs_config *cfg);
/* Stops the watcher and frees.  NULL is ignored. */
void fr__records_stop(fr_records *rc);

/* A run of this replica started (e: its entry, borrowed for the call): writes a running
 * record so that other replicas can list and cancel it. */
void fr__records_started(fr_records *rc, const fr_run_entry *e);
/* A run finished with `status`, its report and trace (after --max-run-bytes: borrowed),
 * written with fencing token `fence` (0 for a run without a lease) and its `executions`
 * (0: 1).  A write fenced out by a newer execution is dropped (and logged). */
void fr__records_finished(fr_records *rc, const fr_run_entry *e, fr_run_status status,
                          const char *report, const char *trace, int trace_refused, uint64_t fence,
                          unsigned executions);

/* The cluster-wide share of `who`'s tenant, after the replica's own admission let it in
 * with `local` runs of the tenant in flight here (this one included): 0 when admitted, or
 * -1 with `out` filled (429 too_many_runs naming the cap and the replicas). */
int fr__records_admit(fr_records *rc, const fr_identity *who, size_t local, fr_reply *out);

/* GET /v1/runs/{id}[/trace] for a run this replica does not hold: fills `out`. */
void fr__records_get(fr_records *rc, const fr_identity *who, const char *id, int trace,
                     fr_reply *out);
/* DELETE /v1/runs/{id} for a run this replica does not hold: fills `out`. */
void fr__records_cancel(fr_records *rc, const fr_identity *who, const char *id, fr_reply *out);
/* The trace of run `id` of `who`'s tenant (POST /v1/replay {run_id}): the text (caller
 * frees), or NULL with `out` filled. */
char *fr__records_trace(fr_records *rc, const fr_identity *who, const char *id, fr_reply *out);
/* GET /v1/runs from the records (q already checked; limit and cursor parsed): 0 with
 * `out` filled, or -1 when Redis cannot answer (the caller lists the replica's own runs;
 * the error is counted).  The cursor is a submission time (us).  A synchronous run is
 * listed once it has finished. */
int fr__records_list(fr_records *rc, const fr_identity *who, const fr_runs_query *q,
                     long long limit, long long cursor, fr_reply *out);

/* Adds "manifest" (the named manifest, or null for inline YAML: `manifest` "" or NULL),
 * "input" (the run's input parsed, or null when `input` is NULL or not JSON) and "graph"
 * (the graph of the manifest the run executes, core/manifest/manifest_graph.h, or null)
 * to `o`, a GET /v1/runs/{id} answer, for the web console (issue 28).  Strings are
 * borrowed. */
void fr__run_json_add_console(json_object *o, const char *manifest, const char *input,
                              const char *graph);

/* A wall-clock time (us) as RFC 3339 UTC with microseconds, as GET /v1/runs shows it;
 * null for 0 or less. */
json_object *fr__serve_rfc3339_or_null(int64_t wall_us);

#endif
