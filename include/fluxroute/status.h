/* FluxRoute status codes and error classes.
 *
 * Every fallible function of the SDK and the engine returns an fr_status: FR_OK (0) on
 * success, a negative code otherwise.  Codes come from one X-macro list, so names, texts
 * and classes cannot drift apart, and they are never renumbered.
 *
 * Each code belongs to exactly one error class (docs/reference.md, "Error classes").  The class
 * decides whether the engine retries the attempt and whether the failure counts toward
 * opening a circuit breaker.
 *
 * Codes and classes are only ever appended (their order is ABI): FR_E_STATE_UNAVAILABLE
 * and its class `state_unavailable` (a shared breaker's state in Redis could not be
 * reached, `serve --state`) are since ABI 1.1.
 *
 * Thread-safety: every function here is pure and may be called from any thread.
 * Since ABI 1.0. */
#ifndef FLUXROUTE_STATUS_H
#define FLUXROUTE_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, class, counts_toward_breaker, text)
 * counts_toward_breaker overrides the class default only for HTTP 408 (a request timeout
 * says nothing about the health of the service). */
#define FR_STATUS_LIST(X)                                                       \
    X(OK, 0, NONE, 0, "success")                                                \
    X(TIMEOUT, -1, TIMEOUT, 1, "attempt timed out")                             \
    X(REQUEST_TIMEOUT, -2, TIMEOUT, 0, "request timeout (HTTP 408)")            \
    X(RATE_LIMITED, -3, RATE_LIMITED, 0, "rate limited")                        \
    X(OVERLOADED, -4, OVERLOADED, 1, "service overloaded")                      \
    X(UNAVAILABLE, -5, UNAVAILABLE, 1, "service unavailable")                   \
    X(NETWORK, -6, NETWORK, 1, "network failure")                               \
    X(CRASHED, -7, CRASHED, 1, "plugin crashed")                                \
    X(STREAM_TRUNCATED, -8, STREAM_TRUNCATED, 1, "stream truncated")            \
    X(BAD_RESPONSE, -9, BAD_RESPONSE, 1, "malformed response")                  \
    X(BAD_REQUEST, -10, BAD_REQUEST, 0, "bad request")                          \
    X(AUTH, -11, AUTH, 0, "authentication failed")                              \
    X(CONTENT_POLICY, -12, CONTENT_POLICY, 0, "refused by content policy")      \
    X(CONTEXT_WINDOW, -13, CONTEXT_WINDOW, 0, "context window exceeded")        \
    X(CONFIG, -14, CONFIG, 0, "configuration error")                            \
    X(CIRCUIT_OPEN, -15, CIRCUIT_OPEN, 0, "circuit breaker open")               \
    X(DEADLINE_EXCEEDED, -16, DEADLINE_EXCEEDED, 0, "run deadline exceeded")    \
    X(LEASE_LOST, -17, LEASE_LOST, 0, "lease lost")                             \
    X(CANCELLED, -18, CANCELLED, 0, "cancelled")                                \
    X(SKIPPED, -19, SKIPPED, 0, "skipped: an ancestor failed")                  \
    X(NOMEM, -20, INTERNAL, 1, "out of memory")                                 \
    X(INVALID, -21, INTERNAL, 1, "invalid argument")                            \
    X(IO, -22, INTERNAL, 1, "input/output error")                               \
    X(NOT_FOUND, -23, INTERNAL, 1, "not found")                                 \
    X(UNSUPPORTED, -24, INTERNAL, 1, "not supported")                           \
    X(PERMISSION, -25, INTERNAL, 0, "permission denied")                        \
    X(AGENT, -26, AGENT, 1, "agent failed")                                     \
    X(STATE_UNAVAILABLE, -27, STATE_UNAVAILABLE, 0, "shared state unavailable") \
    X(BUDGET_EXCEEDED, -28, BUDGET_EXCEEDED, 0, "budget exceeded")

/* Error classes: X(name, retried, counts_toward_breaker, text) */
#define FR_CLASS_LIST(X)                            \
    X(NONE, 0, 0, "none")                           \
    X(TIMEOUT, 1, 1, "timeout")                     \
    X(RATE_LIMITED, 1, 0, "rate_limited")           \
    X(OVERLOADED, 1, 1, "overloaded")               \
    X(UNAVAILABLE, 1, 1, "unavailable")             \
    X(NETWORK, 1, 1, "network")                     \
    X(CRASHED, 1, 1, "crashed")                     \
    X(STREAM_TRUNCATED, 1, 1, "stream_truncated")   \
    X(BAD_RESPONSE, 1, 1, "bad_response")           \
    X(AGENT, 1, 1, "agent_error")                   \
    X(BAD_REQUEST, 0, 0, "bad_request")             \
    X(AUTH, 0, 0, "auth")                           \
    X(CONTENT_POLICY, 0, 0, "content_policy")       \
    X(CONTEXT_WINDOW, 0, 0, "context_window")       \
    X(CONFIG, 0, 0, "config")                       \
    X(INTERNAL, 0, 1, "internal")                   \
    X(CIRCUIT_OPEN, 0, 0, "circuit_open")           \
    X(DEADLINE_EXCEEDED, 0, 0, "deadline_exceeded") \
    X(LEASE_LOST, 0, 0, "lease_lost")               \
    X(CANCELLED, 0, 0, "cancelled")                 \
    X(SKIPPED, 0, 0, "skipped")                     \
    X(STATE_UNAVAILABLE, 0, 0, "state_unavailable") \
    X(BUDGET_EXCEEDED, 0, 0, "budget_exceeded")

/* A status: FR_OK or one of the negative FR_E_* codes. */
typedef int fr_status;

enum fr_status_code {
#define FR_X_(name, value, cls, brk, text) FR_E_##name = value,
    FR_STATUS_LIST(FR_X_)
#undef FR_X_
        FR_OK = 0
};

/* An error class (docs/reference.md, "Error classes"). */
typedef enum fr_error_class {
#define FR_X_(name, retried, brk, text) FR_CLASS_##name,
    FR_CLASS_LIST(FR_X_)
#undef FR_X_
        FR_CLASS_COUNT_
} fr_error_class;

/* Human-readable text for a status ("attempt timed out").  Returns a static string, never
 * NULL; an unknown code gives "unknown status". */
const char *fr_strerror(fr_status status);

/* The code's symbolic name without prefix ("TIMEOUT"), static, never NULL. */
const char *fr_status_name(fr_status status);

/* The class a status belongs to; unknown codes are FR_CLASS_INTERNAL. */
fr_error_class fr_status_class(fr_status status);

/* The class's name as it appears in reports ("rate_limited"), static, never NULL. */
const char *fr_class_name(fr_error_class cls);

/* Parses a class name ("unavailable") into *out.  Returns FR_OK, or FR_E_NOT_FOUND for an
 * unknown name.  `name` is borrowed for the call. */
fr_status fr_class_from_name(const char *name, fr_error_class *out);

/* A representative status for a class (the status a plugin should return to fail with
 * that class).  FR_CLASS_NONE gives FR_OK. */
fr_status fr_class_status(fr_error_class cls);

/* 1 when the engine retries an attempt that failed with `status`, else 0. */
int fr_status_retried(fr_status status);

/* 1 when a failure with `status` counts toward opening a circuit breaker, else 0. */
int fr_status_counts_for_breaker(fr_status status);

#ifdef __cplusplus
}
#endif
#endif /* FLUXROUTE_STATUS_H */
