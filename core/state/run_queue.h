/* The durable run queue (--state redis): asynchronous runs accepted by any serve replica
 * wait in the Redis Stream "<prefix>:queue", read by the consumer group "runs" that every
 * replica and every `fluxroute worker` joins (README.md, "The durable queue").
 *
 * - An entry is stored (XADD) before the submission is answered 202: acknowledged means
 *   durable as far as Redis is (appendonly yes, appendfsync always).
 * - A consumer reads entries with XREADGROUP (bounded COUNT, BLOCK), and an entry left
 *   pending by a consumer that died is claimed by another after the visibility timeout
 *   (XAUTOCLAIM).  A consumer holding a long run keeps its entries' idle time low
 *   (fr__run_queue_touch) so nobody claims them while it works.
 * - Each execution starts with fr__run_queue_start: the run's lease "{t:TENANT}:run:ID" is
 *   taken with a fresh fencing token from the run's counter.  The token is also how many
 *   times the run was started (its report's `executions`), and the delivery count: one
 *   counter, bumped atomically with the lease in the same script, costs no round trip of
 *   its own (XPENDING would cost one per claimed entry, and counts deliveries to consumers
 *   that died before starting, which never ran anything).
 * - A finished run is acknowledged and deleted (XACK + XDEL) with its lease, in one
 *   round trip; so the stream's length is the queue's depth (waiting and executing), which
 *   every take reads in the same round trip.
 *
 * Thread-safe: a queue is shared by the threads of a process (the state's pool is). */
#ifndef FR_CORE_STATE_RUN_QUEUE_H
#define FR_CORE_STATE_RUN_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include <fluxroute/status.h>

#include "state/state.h"

/* An entry is started more than this many times: a poison run, failed with class crashed. */
#define FR_QUEUE_MAX_EXECUTIONS 3

/* One queued run: what a consumer needs to execute it as the submitter would have. */
typedef struct fr_queue_entry {
    char stream_id[48]; /* the entry's id in the stream (set by push and take) */
    char run_id[40];
    char tenant[72];
    char namespace_[40];
    char actor[128];      /* the key id or certificate CN (audit lines) */
    char role[24];        /* the caller's role name (policy is checked again) */
    char traceparent[64]; /* or "" */
    char manifest[208];   /* a named manifest, or "" for inline text */
    char sha256[65];      /* the named manifest's sha256 when submitted */
    char *yaml;           /* inline manifest text, or NULL (owned) */
    char *input;          /* the run's input as JSON text, or NULL (owned) */
    /* The limit documents (JSON, "": none) in force for the tenant and for the key
     * (`actor`) on the replica that accepted the run, so that any consumer enforces them
     * (core/serve/serve_quota.h); NULL: not sent (owned). */
    char *limits_tenant;
    char *limits_key;
    uint64_t seed;
    int has_seed;
    int trace;               /* record a trace */
    int64_t submitted_at_us; /* wall clock */
} fr_queue_entry;

/* Frees what an entry owns (yaml, input); the entry itself is the caller's. */
void fr__queue_entry_clear(fr_queue_entry *e);

typedef struct fr_run_queue fr_run_queue;

/* A queue on `s` (a Redis state; borrowed for the queue's life).  `visibility_us` (0: 30 s)
 * is how long an entry may stay pending with a consumer that does not touch it before
 * another claims it.  Connects nothing (the group is made on first use, again after Redis
 * lost it).  NULL on OOM. */
fr_run_queue *fr__run_queue_new(fr_state *s, int64_t visibility_us);
void fr__run_queue_free(fr_run_queue *q);
int64_t fr__run_queue_visibility(const fr_run_queue *q);
/* At most `max_depth` entries (0: no cap): a push past it is refused.  Set before use. */
void fr__run_queue_set_max(fr_run_queue *q, size_t max_depth);

/* Stores `e` at the end of the queue (XADD, in a script that checks the cap first); sets
 * e->stream_id.  FR_OK; FR_E_OVERLOADED when the queue is at its cap (err says so); or
 * FR_E_NETWORK with err naming Redis (password masked) and why. */
fr_status fr__run_queue_push(fr_run_queue *q, fr_queue_entry *e, char *err, size_t err_size);

/* Takes at most `max` entries for consumer `consumer` into out[0..*n), in one round trip:
 * those another consumer left pending past the visibility timeout (XAUTOCLAIM, at most
 * every half timeout, 2 s at most, per queue) and new ones (XREADGROUP, waiting at most
 * `block_ms` when it claims nothing: keep it under the pool's 2 s I/O timeout); *claimed is how
 * many were claimed from another consumer, *depth the queue's length (XLEN; -1 when unknown). FR_OK
 * (possibly *n == 0), or FR_E_NETWORK with err set.  Entries that cannot be read (not
 * FluxRoute's) are acknowledged and dropped, with a line on stderr. */
fr_status fr__run_queue_take(fr_run_queue *q, const char *consumer, size_t max, int block_ms,
                             fr_queue_entry *out, size_t *n, size_t *claimed, long long *depth,
                             char *err, size_t err_size);

/* Starts an execution of `e` by `holder`: takes the run's lease with a fresh fencing token
 * (*token; also the number of times the run was started, this one included), and reads
 * whether a cancel was asked for it meanwhile (*cancelled: DELETE /v1/runs/{id} of a
 * queued run, fr__run_record_cancel).  The lease
 * is taken over from a holder that did not give it back (its entry was claimed: it is
 * taken for dead, and its writes are fenced off by the newer token).  FR_OK or
 * FR_E_NETWORK. */
fr_status fr__run_queue_start(fr_run_queue *q, const fr_queue_entry *e, const char *holder,
                              uint64_t *token, int *cancelled, char *err, size_t err_size);

/* The run is over (whatever its outcome): acknowledges and deletes its entry, and gives its
 * lease back, in one round trip.  FR_OK or FR_E_NETWORK. */
fr_status fr__run_queue_done(fr_run_queue *q, const fr_queue_entry *e, char *err, size_t err_size);

/* Keeps entries held by `consumer` from being claimed (resets their idle time, and renews
 * their leases), in one round trip.  Entries another consumer claimed meanwhile (this one
 * was taken for dead) stay with it.  FR_OK or FR_E_NETWORK. */
fr_status fr__run_queue_touch(fr_run_queue *q, const char *consumer, const fr_queue_entry *const *e,
                              size_t n, char *err, size_t err_size);

/* Gives entries held by `consumer` back (a graceful stop): they stay pending but look idle
 * past the visibility timeout, so the next consumer to look claims them at once.  FR_OK or
 * FR_E_NETWORK. */
fr_status fr__run_queue_hand_back(fr_run_queue *q, const char *consumer,
                                  const fr_queue_entry *const *e, size_t n, char *err,
                                  size_t err_size);

#endif
