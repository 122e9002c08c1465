/* The counters of tenant and key limits in Redis (`--state redis`, issue 26), shared by
 * every replica: each change is one atomic Lua script (EVALSHA), so replicas never race.
 *
 * Keys, all of one tenant in its hash tag (one Redis Cluster shard):
 *   <prefix>:{t:TENANT}:req:<t|k>:<ID>     requests per minute: a sliding log, a sorted
 *                                          set of admissions scored by time (ms)
 *   <prefix>:{t:TENANT}:run:<t|k>:<ID>     runs in flight: a sorted set scored by when the
 *                                          entry expires (a crashed replica's runs leave
 *                                          the count after `lease_ms`)
 *   <prefix>:{t:TENANT}:tok:<t|k>:<ID>[:m:MODEL]  tokens per minute: a hash of per-second
 *                                          buckets; the 61 newest count (conservative: a
 *                                          limit is never passed within a rolling 60 s)
 *   <prefix>:{t:TENANT}:bud:<t|k>:<ID>[:m:MODEL]:<YYYY-MM>  a month's budget: a hash of
 *                                          spent and reserved micro-units (kept 40 days)
 *
 * Round trips: one at admission, one when a run ends, one per provider call's reservation
 * and one for its settlement.  Every function is thread-safe (the pool is). */
#ifndef FR_CORE_STATE_LIMITS_REDIS_H
#define FR_CORE_STATE_LIMITS_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "state/state.h"

/* One limited scope: "t" (a tenant) or "k" (a key), its id, and a model ("" for none). */
typedef struct fr_rl_scope {
    const char *kind;
    const char *id;
    const char *model;
} fr_rl_scope;

/* What a check found: ok (refused 0), or the index of the refused scope, which limit
 * (1: requests_per_minute or tokens_per_minute, 2: concurrent_runs or the budget), its
 * count, and when (Unix ms) it frees up (0: unknown). */
typedef struct fr_rl_verdict {
    int refused;
    int scope;
    int64_t used;
    int64_t reset_ms;
    int64_t spent, reserved; /* budgets: the refused scope's month so far */
    /* admission (admitted or refused): each scope's requests in the window now, and the
     * oldest's time */
    int64_t after[2], after_oldest_ms[2];
    /* reservation: each scope's tokens in its 61 newest buckets, with this call's when it
     * was reserved (-1: not checked), and the oldest such bucket's second (Unix s) */
    int64_t tokens[4], tokens_oldest_s[4];
    /* admission, admitted: each scope's month's spent after the run's per_run (-1: not
     * charged) and the threshold (80, 100) it passed first in the cluster, or 0 */
    int64_t run_spent[2];
    int run_crossed[2];
} fr_rl_verdict;

/* Admits a run for scopes s[0..2) (tenant, key) under requests per minute rpm[i],
 * concurrent runs conc[i] and monthly budget budget[i] of `month` ("YYYY-MM"; -1: none),
 * which the run's `per_run` price is charged to (spent) at `now_ms`; `member` is unique to
 * the run.  0 with *v filled (v->refused 0: admitted, counted in every scope; 1: requests,
 * 2: runs, 3: budget, with v->used the spent and v->reset_ms the reserved), or -1 with err
 * set when Redis cannot be reached. */
int fr__limits_redis_admit(fr_state *st, const char *tenant, const fr_rl_scope s[2],
                           const int64_t rpm[2], const int64_t conc[2], const int64_t budget[2],
                           const char *month, int64_t per_run, int64_t now_ms, int64_t lease_ms,
                           const char *member, fr_rl_verdict *v, char *err, size_t errlen);
int fr__limits_redis_leave(fr_state *st, const char *tenant, const fr_rl_scope s[2],
                           const char *member, char *err, size_t errlen);

/* Reserves `tokens` and `micros` in scopes s[0..n) (n <= 4) under tpm[i] and budget[i]
 * (-1: none) at `now_ms` in month `month` ("YYYY-MM").  0 with *v (refused 1: tokens, 2:
 * budget), or -1 with err.  Reserved: the tokens in this second's bucket, the micros in
 * the month's reserved. */
int fr__limits_redis_reserve(fr_state *st, const char *tenant, const fr_rl_scope *s, size_t n,
                             const int64_t *tpm, const int64_t *budget, int64_t now_ms,
                             const char *month, int64_t tokens, int64_t micros, fr_rl_verdict *v,
                             char *err, size_t errlen);
/* What a settlement left, per scope: the month's spent (-1: no budget), 80 or 100 when
 * this settlement is the first in the cluster to pass that share of the budget this month
 * (else 0), the tokens in the 61 newest buckets at `now_ms` (-1: no tokens limit) and the
 * oldest such bucket's second (Unix s, 0: none). */
typedef struct fr_rl_settled {
    int64_t spent[4];
    int crossed[4];
    int64_t tokens[4], tokens_oldest_s[4];
} fr_rl_settled;
/* Settles a reservation made at `reserved_ms` in `month`: the bucket of that second gets
 * `tokens` instead of `est_tokens` (where tpm[i] >= 0), the month's reserved loses
 * `est_micros` and spent gains `micros` (where budget[i] >= 0).  *out is filled (also on
 * failure: nothing known).  0, or -1 with err. */
int fr__limits_redis_settle(fr_state *st, const char *tenant, const fr_rl_scope *s, size_t n,
                            const int64_t *tpm, const int64_t *budget, int64_t reserved_ms,
                            int64_t now_ms, const char *month, int64_t est_tokens, int64_t tokens,
                            int64_t est_micros, int64_t micros, fr_rl_settled *out, char *err,
                            size_t errlen);

/* What scope `s` has used at `now_ms`: requests in the window (and the oldest's time),
 * runs in flight, tokens in the window (and the oldest bucket's second, in ms), and the
 * month's spent and reserved.  One round trip.  0, or -1 with err. */
typedef struct fr_rl_usage {
    int64_t requests, requests_oldest_ms, runs, tokens, tokens_oldest_ms, spent, reserved;
} fr_rl_usage;
int fr__limits_redis_usage(fr_state *st, const char *tenant, const fr_rl_scope *s, int64_t now_ms,
                           const char *month, fr_rl_usage *u, char *err, size_t errlen);

/* Seeds scope s's (the tenant's or one of its keys') spent of `month` with the control plane's
 * figure, once (the first replica to seed it): spent becomes the larger of the two (what replicas
 * already counted this month is in the control plane's figure once reported). */
int fr__limits_redis_seed(fr_state *st, const char *tenant, const fr_rl_scope *s, const char *month,
                          int64_t micros, char *err, size_t errlen);

#endif
