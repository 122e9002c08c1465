/* Retry delays: the backoff before attempt n+1, per kind, with jitter drawn from a
 * deterministic stream per (run seed, step, attempt).  Pure; thread-safe. */
#ifndef FR_CORE_RETRY_H
#define FR_CORE_RETRY_H

#include <stdint.h>

#include "manifest/manifest.h"

/* The delay to wait after failed attempt `attempt` (1-based) before the next one:
 *   constant:           base
 *   linear:             base * attempt
 *   exponential:        base * 2^(attempt-1)
 *   exponential_jitter: d/2 + uniform[0, d/2] with d the exponential delay
 * each capped at max_delay.  `seed`, `step` and `attempt` select the jitter stream. */
int64_t fr__backoff_delay(const fr_retry_cfg *r, int attempt, uint64_t seed, const char *step);

/* Parses a Retry-After header value: delta-seconds ("120") or an HTTP-date
 * ("Wed, 21 Oct 2015 07:28:00 GMT", also RFC 850 and asctime forms) relative to
 * `now_wall_us`.  Returns the delay in microseconds (0 for a date in the past), or -1
 * when the value is not valid. */
int64_t fr__retry_after_parse(const char *value, int64_t now_wall_us);

#endif
