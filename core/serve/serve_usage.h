/* What serve bills: usage events for the control plane built only from what the host
 * observed during a run (fr_attempt_result.provider_calls), never from step output, under
 * fixed-length idempotency keys.
 *
 * Thread-safety: both functions are pure or only call fr__cp_report_usage (thread-safe);
 * call them from any thread. */
#ifndef FR_CORE_SERVE_USAGE_H
#define FR_CORE_SERVE_USAGE_H

#include <stddef.h>

#include "controlplane/cp_client.h"
#include "engine/engine.h"

/* The idempotency key of a usage event: 64 lowercase hex digits, the sha256 of a
 * NUL-separated, versioned encoding of (tenant, run id) for the run event (`step` NULL),
 * or of (tenant, run id, step, attempt, ordinal) for a provider call, where `attempt` is
 * the attempt's 1-based position among the step's attempts (fallbacks included) and
 * `ordinal` the call's 1-based position within the attempt.  Never longer than the control
 * plane's 128-byte limit whatever the step id; distinct inputs give distinct keys.  Strings
 * are borrowed for the call. */
void fr__usage_key(const char *tenant, const char *run_id, const char *step, size_t attempt,
                   int ordinal, char out[65]);

/* Queues a finished run's usage for tenant `tenant` on `cp`: one "run" event, and one
 * "provider_call" event per provider call the host made that the provider completed, in
 * every attempt, failed attempts included (the vendor charged for a completed call even
 * when the step failed afterwards), with the tokens the provider reported.  Nothing comes
 * from a step's output.  Each event names `key_id`, the caller's API key (NULL: none), so
 * a key's budget can be seeded from the control plane.  `p` and `res` are borrowed.  A NULL
 * `cp` does nothing. */
void fr__usage_report_run(fr_cp_client *cp, const char *tenant, const char *key_id,
                          const fr_pipeline *p, const fr_run_result *res);

#endif
