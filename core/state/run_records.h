/* Run records in Redis (--state redis): what any replica needs to answer GET /v1/runs/{id},
 * its trace, GET /v1/runs, POST /v1/replay {run_id} and DELETE /v1/runs/{id} for a run
 * another replica or a worker executed.  (With --state memory, serve keeps its runs in its
 * own run store, core/serve/run_store.h, and none of this is used.)
 *
 * A record belongs to its tenant: every key carries the tenant's hash tag, and every read
 * names the tenant, so another tenant's run is "not found" on every replica.  A finished
 * record expires after the retention TTL.
 *
 * Fencing: each execution of a run writes with the fencing token of the run's lease.  A
 * write whose token is older than the newest one the record has seen is refused
 * (FR_E_LEASE_LOST), so a stale executor (a worker thought dead whose run was claimed by
 * another) can never overwrite the newer execution's record.
 *
 * Thread-safe (the state's pool is). */
#ifndef FR_CORE_STATE_RUN_RECORDS_H
#define FR_CORE_STATE_RUN_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include <fluxroute/status.h>

#include "state/state.h"

typedef enum fr_record_status {
    FR_RECORD_QUEUED = 0,    /* accepted (202), waiting in the queue */
    FR_RECORD_RUNNING = 1,   /* executing somewhere (node) */
    FR_RECORD_SUCCEEDED = 2, /* finished: the status of the report */
    FR_RECORD_FAILED = 3,
    FR_RECORD_CANCELLED = 4,
} fr_record_status;

/* "queued", "running", "succeeded", "failed", "cancelled". */
const char *fr__record_status_name(fr_record_status s);

typedef struct fr_run_record {
    char id[40];
    char tenant[72];
    char namespace_[40];
    char manifest[208]; /* the named manifest, or "" for inline YAML */
    fr_record_status status;
    int64_t submitted_at_us; /* wall clock */
    int64_t started_at_us;   /* 0 while queued */
    int64_t finished_at_us;  /* 0 until finished */
    unsigned executions;     /* how many times the run was started */
    uint64_t fence;          /* the writer's fencing token (0: none, a synchronous run) */
    char node[96];           /* fr_state.node of the process executing it, or "" */
    char *report;            /* JSON when finished, or NULL (owned by a record read back) */
    size_t report_len;
    char *trace; /* JSON when recorded, or NULL (as report) */
    size_t trace_len;
    char *input; /* the run's input as JSON text, or NULL (as report; issue 28) */
    size_t input_len;
    /* Its manifest's graph as JSON text, or NULL (as report; issue 28).  A write without
     * one keeps the record's (a queued run's consumer knows none: the submitter wrote it). */
    char *graph;
    size_t graph_len;
    int trace_refused; /* recorded, but over the size limit: not stored */
    int traced;        /* read back: the record holds a trace (also without with_trace) */
} fr_run_record;

/* Frees the strings of a record read back (report, trace, input); the record itself is
 * the caller's. */
void fr__run_record_clear(fr_run_record *r);

/* Writes `r` whole (every field; report, trace and input when not NULL) with expiry `ttl_us`
 * after it finished (a record not finished does not expire), and keeps it in its tenant's
 * list, in one round trip.  FR_OK; FR_E_LEASE_LOST when r->fence is older than the
 * record's newest (the record is unchanged); FR_E_NETWORK with err set when Redis is
 * unreachable. */
fr_status fr__run_record_put(fr_state *s, const fr_run_record *r, int64_t ttl_us, char *err,
                             size_t err_size);
/* Reads the record of run `id` of `tenant` into *out (with its trace when `with_trace`).
 * FR_OK; FR_E_NOT_FOUND when there is none for this tenant; FR_E_NETWORK with err set. */
fr_status fr__run_record_get(fr_state *s, const char *tenant, const char *id, int with_trace,
                             fr_run_record *out, char *err, size_t err_size);

/* ---- extensions (records helper) ---------------------------------------------------- */

/* The budgets every put of this process enforces for the record's tenant, in the same
 * round trip (serve's --retention-per-tenant and --retention-bytes, cluster-wide): past
 * either, the tenant's oldest finished records are dropped, at most 32 per put (so a put
 * stays bounded; a tenant over budget shrinks by up to 31 records per run).  Records not
 * finished (queued, running) are never dropped.  0 leaves a budget off.  Set once at
 * start, before any put (not synchronised with puts). */
void fr__run_records_set_budget(size_t max_runs_per_tenant, size_t max_bytes_per_tenant);

/* The bytes a record counts against its tenant's byte budget: its report, its trace, its
 * input and a fixed 512 for the rest. */
size_t fr__run_record_bytes(const fr_run_record *r);

/* One row of a listing (GET /v1/runs). */
typedef struct fr_record_row {
    char id[40];
    char status[16]; /* fr__record_status_name */
    char manifest[208];
    int64_t submitted_at_us, started_at_us, finished_at_us;
} fr_record_row;

/* The records of `tenant`, newest submission first, with status `status` and manifest
 * `manifest` (NULL: any), submitted before `before_us` (0: from the newest), at most
 * `limit` rows into out[0..limit).  *n is set to the rows written and *next_us to the
 * cursor of the next page (0 when there is none).  One round trip; a call examines at
 * most 5000 records of the index (a filter that matches rarely may return a short page
 * with a cursor).  FR_OK; FR_E_NETWORK with err set. */
fr_status fr__run_records_list(fr_state *s, const char *tenant, const char *status,
                               const char *manifest, int64_t before_us, size_t limit,
                               fr_record_row *out, size_t *n, int64_t *next_us, char *err,
                               size_t err_size);

/* Asks for run `id` of `tenant` to be cancelled wherever it executes (one round trip):
 * FR_OK when the record is queued or running (a cancel mark is kept for its executor,
 * which polls it: fr__run_records_watch); FR_E_NOT_FOUND when there is no record for
 * this tenant; FR_E_INVALID when it has finished (*status says how); FR_E_NETWORK with
 * err set. */
fr_status fr__run_record_cancel(fr_state *s, const char *tenant, const char *id,
                                fr_record_status *status, char *err, size_t err_size);

/* The key of run `id`'s cancel mark (set by fr__run_record_cancel) into out: for a script
 * of another part of the state that reads it in the same round trip (the durable queue
 * checks it when a run starts). */
void fr__run_record_cancel_key(fr_state *s, const char *tenant, const char *id, char *out,
                               size_t size);

/* A run this process executes, for fr__run_records_watch. */
typedef struct fr_record_running {
    const char *tenant, *id; /* borrowed */
    int cancel;              /* out: 1 when a cancel was asked for (fr__run_record_cancel) */
} fr_record_running;

/* A tenant whose in-flight runs across the cluster this process wants to know. */
typedef struct fr_record_share {
    const char *tenant; /* borrowed */
    size_t in_flight;   /* out: runs of the tenant that some process reported running
                         * within the last `lease_us` (this one's included) */
} fr_record_share;

/* The watcher's one round trip (a pipeline): first takes `gone` (runs this process
 * reported running at its previous round trip and has finished since) out of their
 * tenants' active sets, then reports `runs` as running here for `lease_us` (each tenant's
 * set of active runs: a put of a finished record takes its run out), reads whether a
 * cancel was asked for each, and counts each share's tenant's active runs.  `gone`
 * matters because a run may finish while this round trip is in flight: its put's removal
 * can land before the report that it runs, which would leave it counted until its lease
 * expired.  With nothing to do it sends PING (so reachability stays fresh).  FR_OK;
 * FR_E_NETWORK with err set. */
fr_status fr__run_records_watch(fr_state *s, const fr_record_running *gone, size_t n_gone,
                                fr_record_running *runs, size_t n_runs, fr_record_share *shares,
                                size_t n_shares, int64_t lease_us, char *err, size_t err_size);

#endif
