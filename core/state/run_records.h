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
    int trace_refused; /* recorded, but over the size limit: not stored */
} fr_run_record;

/* Frees the strings of a record read back (report, trace); the record itself is the
 * caller's. */
void fr__run_record_clear(fr_run_record *r);

/* Writes `r` whole (every field; report and trace when not NULL) with expiry `ttl_us`
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

#endif
