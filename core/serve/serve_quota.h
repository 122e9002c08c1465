/* serve: the limits of tenants and API keys (issue 26), enforced before money is spent.
 *
 * Limits come from limit documents (core/manifest/limits_doc.h) set for a tenant and for a
 * key: in the keys file (fr__quota_load_file, again on SIGHUP) or the control plane.  A
 * request or call must pass both its tenant's and its key's limits.
 *
 * - requests_per_minute and concurrent_runs are checked when a run (or replay) is admitted
 *   (fr__quota_admit; fr__quota_leave when it ends).  Requests per minute is a sliding
 *   log: the admission times of the last N runs are kept, and a run is admitted when fewer
 *   than N were admitted in the 60 s before it.  So at most N are admitted in any rolling
 *   60 s, and a burst of N is admitted at once: exactly the documented semantics, which a
 *   GCRA (N at once, then one every 60/N s: N+1 in some 60 s) or a windowed counter (up to
 *   2N across a window edge) would not give.  It costs 8 bytes per allowed request of each
 *   limited tenant or key.
 * - tokens_per_minute (also per model) and monthly_budget_micros (also per model) are
 *   charged per provider call, reserve-then-settle (core/host/call_quota.h): the estimate
 *   is the request's size in bytes (no tokenizer gives more tokens than bytes) plus its
 *   max_tokens (FR_QUOTA_DEFAULT_MAX_TOKENS when absent), priced with the rate card.  A
 *   call whose reservation would pass a limit is refused; its settle replaces the estimate
 *   by the usage the vendor reported.  Tokens per minute: at most N tokens (reserved or
 *   used) in any rolling 60 s.  Budgets: spent + reserved never passes the budget when a
 *   call is reserved, so the spend passes it only by what calls use beyond their estimate
 *   (none, when the vendor honours max_tokens: the documented bound).  A budget is per
 *   calendar month (UTC) and starts again at 0 on the 1st.
 * - The rate card's per_run price (model "" or "*", as invoices price run events) is
 *   charged to the tenant's and key's monthly budgets when a run is admitted: a run that
 *   would pass either is refused 429 budget_exceeded.  (Per-model budgets do not count it:
 *   a run has no model.)
 *
 * With `memory` state every count lives in this process, under one mutex.
 *
 * Thread-safety: every function may be called from any thread, except fr__quota_free. */
#ifndef FR_CORE_SERVE_QUOTA_H
#define FR_CORE_SERVE_QUOTA_H

#include <stdint.h>

#include <json-c/json.h>
#include <microhttpd.h>

#include "host/call_quota.h"
#include "manifest/limits_doc.h"
#include "serve/serve.h"

/* The completion a provider call is reserved for when its request names no max_tokens. */
#define FR_QUOTA_DEFAULT_MAX_TOKENS 4096

typedef struct fr_quota fr_quota;

/* Prices of a model, micro-units per million input and output tokens, and per run.
 * Returns 0 with prices filled, or -1 when the model has none (a budgeted call of an
 * unpriced model is refused: it could not be charged).  Runs are priced as model "" (a
 * run event's model): that entry's or the "*" entry's per_run. */
typedef int (*fr_quota_price_fn)(void *ud, const char *model, int64_t *per_m_input,
                                 int64_t *per_m_output, int64_t *per_run);

/* A new set of counters, with none of the limits set.  NULL on OOM. */
fr_quota *fr__quota_new(void);
void fr__quota_free(fr_quota *q);

struct fr_state;
/* Keeps the counters in Redis when `st` is a Redis state (core/state/limits_redis.h);
 * `lease_us` is the longest a run may take (--max-run-timeout): a run entry of a replica
 * that died leaves the runs in flight a minute after it.  Call before any request. */
void fr__quota_set_state(fr_quota *q, struct fr_state *st, int64_t lease_us);

/* The clock (Unix microseconds) the counters read, for tests that move time (month
 * rollover); NULL: the wall clock. */
void fr__quota_set_clock(fr_quota *q, int64_t (*now_us)(void));

/* A testing hook (serve's FLUXROUTE_TESTING_CLOCK_OFFSET_FILE): fr__quota_offset_clock is
 * the wall clock plus the whole seconds the file `path` holds (0 when it cannot be read),
 * read at each call.  Set once, before any request (the path is copied). */
void fr__quota_use_offset_clock(const char *path);
int64_t fr__quota_offset_clock(void);
/* The rate card's prices (borrowed until replaced). */
void fr__quota_set_prices(fr_quota *q, fr_quota_price_fn fn, void *ud);

/* Replaces every limit the keys file sets with those of `a` (NULL: none).  Counts (runs in
 * flight, requests, tokens, spend) are kept. */
void fr__quota_load_file(fr_quota *q, const fr_auth *a);

/* Sets the limits the control plane gives tenant `tenant` (tenant 1) or key `id` (tenant
 * 0); NULL: none.  They override the keys file's for that tenant or key. */
void fr__quota_set_remote(fr_quota *q, int tenant, const char *id, const fr_limits_doc *d);

/* The same from the document's JSON text as the control plane's key lookup sends it ("":
 * none), parsed only when it differs from the last text for that tenant or key.  Returns
 * 0, or -1 when it does not parse (the previous limits are kept, a line on stderr). */
int fr__quota_set_remote_text(fr_quota *q, int tenant, const char *id, const char *text);

/* Queued runs (--state redis, core/serve/run_queue.h): fr__quota_limits_text is the JSON
 * text of the limit document in force for tenant `tenant` (tenant 1) or key `id` (tenant
 * 0) — the control plane's as it sent it, else the keys file's, else a queued run's; ""
 * when none — for the queue entry (caller frees; NULL when q is NULL or on OOM).  The
 * consumer that executes the run gives it back with fr__quota_set_queued_text (`owner`:
 * the key's tenant), which, unlike fr__quota_set_remote_text, never overrides what this
 * process knows itself: its keys file's or control plane's document for that tenant or key
 * wins, and the queued one applies only when it has neither (the last one received).
 * Returns 0, or -1 when the text does not parse (a line on stderr). */
char *fr__quota_limits_text(fr_quota *q, int tenant, const char *id);
int fr__quota_set_queued_text(fr_quota *q, int tenant, const char *id, const char *owner,
                              const char *text);

/* Spend seeding, once per tenant (tenant 1: `id` is the tenant) or key (tenant 0: `id` is
 * the key of tenant `owner`) and process: fr__quota_seed_begin returns 1 when it has a
 * monthly budget and has not been seeded (it is then marked: the caller fetches the spend
 * and calls fr__quota_seed_spend, or fr__quota_seed_failed to try again later). */
int fr__quota_seed_begin(fr_quota *q, int tenant, const char *id, const char *owner);
void fr__quota_seed_failed(fr_quota *q, int tenant, const char *id, const char *owner);

/* Adds spend already made this month (micro-units, seeded at start from the control plane)
 * to the tenant's or key's budget count (with --state redis: once per month, the larger
 * figure wins). */
void fr__quota_seed_spend(fr_quota *q, int tenant, const char *id, const char *owner,
                          int64_t micros);

/* Admission of one run of `who`: 0 (then fr__quota_leave once when it ends), or -1 with
 * `out` filled: 429 rate_limited (requests_per_minute) or too_many_runs (concurrent_runs),
 * Retry-After, and a message naming the limit, whose it is, its window and when it resets.
 * A NULL q admits everything. */
int fr__quota_admit(fr_quota *q, const fr_identity *who, fr_reply *out);
void fr__quota_leave(fr_quota *q, const fr_identity *who);

/* The provider-call seam of one run of `who` (fill it before the run, keep it until the
 * run ends; fr_run_options.quota = &qr->iface). */
typedef struct fr_quota_run {
    fr_call_quota iface;
    fr_quota *q;
    char tenant[72];
    char key[128];
} fr_quota_run;
void fr__quota_run_init(fr_quota_run *qr, fr_quota *q, const fr_identity *who);

/* Adds x-ratelimit-{limit,remaining,reset}-{requests,tokens} to `resp` when `who` (tenant
 * or key) has such a limit: the tighter of the two. */
void fr__quota_headers(fr_quota *q, const fr_identity *who, struct MHD_Response *resp);

/* GET /v1/limits: the caller's tenant and key, each with its limits, used, remaining and
 * reset time. */
void fr__quota_handle_get(fr_quota *q, const fr_identity *who, fr_reply *out);

#endif
