/* The seam through which a run's provider calls are charged against the caller's limits
 * (tokens per minute, monthly budgets), defined here so that the host calls it without
 * knowing who implements it (serve: core/serve/serve_quota.c).
 *
 * Reserve-then-settle: before each provider call the host reserves an estimate of what it
 * may use (the request; the implementation estimates tokens and prices them); after the
 * call it settles with the usage the provider reported, or releases the reservation of a
 * call that failed.  A refused reservation fails the call without reaching the vendor:
 * FR_E_RATE_LIMITED (a token rate limit: *retry_after_us says when it would pass, so the
 * retry policy may wait for it) or FR_E_BUDGET_EXCEEDED (not retried, not counted by
 * breakers).  A replay reaches no vendor and is never charged.
 *
 * Thread-safety: both functions are called from any worker thread, concurrently; the
 * implementation locks what it shares.  `ud` is borrowed for the run. */
#ifndef FR_CORE_CALL_QUOTA_H
#define FR_CORE_CALL_QUOTA_H

#include <stddef.h>
#include <stdint.h>

#include <fluxroute/status.h>

typedef struct fr_call_quota {
    /* Reserves for one call to provider `provider` (its id) with the normalized request
     * (JSON, borrowed for the call).  FR_OK with *ticket set (given back to settle exactly
     * once; may be NULL when nothing was reserved), or a refusal as above with a message
     * naming the limit, its window and when it resets in msg. */
    fr_status (*reserve)(void *ud, const char *provider, const char *request, size_t request_len,
                         void **ticket, int64_t *retry_after_us, char *msg, size_t msglen);
    /* Settles `ticket`: completed 1 with the usage the provider reported (model as it
     * reported it, "" when none; usage_unknown 1 when it reported none: the estimate
     * stands), or completed 0 for a failed call (the reservation is released). */
    void (*settle)(void *ud, void *ticket, int completed, const char *model, int64_t input_tokens,
                   int64_t output_tokens, int usage_unknown);
    void *ud;
} fr_call_quota;

#endif
