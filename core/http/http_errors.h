/* The error codes of FluxRoute's HTTP servers (serve, the control plane, the metrics
 * listener): one list, each code with its HTTP status and its meaning.  Every error body,
 * {"error": {"code": CODE, "message": ...}}, names one of them, and the README's table of
 * error codes is this list (tests/test_http checks that they agree; `tests/test_http
 * --error-table` prints the table).  Codes are never renamed: clients match on them. */
#ifndef FR_CORE_HTTP_ERRORS_H
#define FR_CORE_HTTP_ERRORS_H

/* X(ID, "code", status, "meaning"), grouped by status. */
#define FR_HTTP_ERRORS(X)                                                                          \
    X(BAD_REQUEST, "bad_request", 400,                                                             \
      "the request is not what the route takes: no body, not a JSON object, a bad value")          \
    X(MALFORMED_JSON, "malformed_json", 400,                                                       \
      "serve: the body is not JSON; the message gives the byte offset")                            \
    X(BAD_JSON, "bad_json", 400,                                                                   \
      "control plane: the body is empty or not JSON; the message gives line, column and byte")     \
    X(UNKNOWN_FIELD, "unknown_field", 400,                                                         \
      "a member of the body the route does not take; the message names it and those it takes")     \
    X(INVALID, "invalid", 400, "control plane: a field fails its check; the message names it")     \
    X(BAD_MANIFEST_NAME, "bad_manifest_name", 400,                                                 \
      "a named manifest that is not a .yaml or .yml file name inside the manifest directory")      \
    X(INVALID_MANIFEST, "invalid_manifest", 400,                                                   \
      "the manifest does not validate; `errors` lists every diagnostic with line and column")      \
    X(INVALID_TRACE, "invalid_trace", 400,                                                         \
      "a trace to replay that cannot be read, or whose recorded input cannot be replayed")         \
    X(TRACE_PATH_REFUSED, "trace_path_refused", 400,                                               \
      "a replay names a trace by path: the server reads none; send the trace or a run_id")         \
    X(PLUGIN_DIRS_REFUSED, "plugin_dirs_refused", 400,                                             \
      "an inline manifest adds plugin directories")                                                \
    X(PLUGIN_DISABLED, "plugin_disabled", 400,                                                     \
      "the manifest uses a plugin the server disables (chaos without --enable-chaos)")             \
    X(UNKNOWN_PROVIDER, "unknown_provider", 400,                                                   \
      "the manifest names a provider the server's --providers file does not have")                 \
    X(PROVIDER_CONFLICT, "provider_conflict", 400,                                                 \
      "the manifest declares a provider the server defines, with another plugin or config")        \
    X(LIMIT_EXCEEDED, "limit_exceeded", 400,                                                       \
      "the manifest passes one of serve's limits; `limit` names it and `max` gives its value")     \
    X(BAD_INPUT, "bad_input", 400, "the run's input is not a JSON value (in an async report)")     \
    X(UNKNOWN_TENANT, "unknown_tenant", 400,                                                       \
      "a usage event names a tenant the control plane does not know; `index` says which")          \
    X(UNAUTHORIZED, "unauthorized", 401,                                                           \
      "missing, unknown or revoked key (with a WWW-Authenticate challenge)")                       \
    X(CLIENT_CERT_REQUIRED, "client_cert_required", 401,                                           \
      "serve with ROUTER_TLS_REQUIRE_CLIENT_CERT: no client certificate signed by its CA")         \
    X(FORBIDDEN, "forbidden", 403, "the caller's role or key kind may not do this")                \
    X(NAMESPACE_FORBIDDEN, "namespace_forbidden", 403,                                             \
      "an inline manifest of a namespace other than the caller's")                                 \
    X(TENANT_SUSPENDED, "tenant_suspended", 403, "the key's tenant is suspended")                  \
    X(CLIENT_CERTIFICATE_REQUIRED, "client_certificate_required", 403,                             \
      "control plane with CONTROLPLANE_TLS_REQUIRE_CLIENT_CERT: no client certificate signed "     \
      "by its CA")                                                                                 \
    X(NOT_FOUND, "not_found", 404, "no such route or resource (another tenant's is not found)")    \
    X(MANIFEST_NOT_FOUND, "manifest_not_found", 404, "no such manifest in the caller's namespace") \
    X(RUN_NOT_FOUND, "run_not_found", 404, "no such run for the caller's tenant")                  \
    X(RUN_IN_PROGRESS, "run_in_progress", 404, "the run's trace is asked for before it ends")      \
    X(TRACE_NOT_RECORDED, "trace_not_recorded", 404, "the run kept no trace")                      \
    X(METHOD_NOT_ALLOWED, "method_not_allowed", 405,                                               \
      "the route does not take this method; `Allow` lists those it takes")                         \
    X(CONFLICT, "conflict", 409, "the tenant (or its namespace) exists already")                   \
    X(RUN_FINISHED, "run_finished", 409, "a cancel of a run that has already finished")            \
    X(PERIOD_CLOSED, "period_closed", 409, "a rate card for a billing period already closed")      \
    X(PERIOD_OPEN, "period_open", 409, "closing a billing period that has not ended yet")          \
    X(UNPRICED_USAGE, "unpriced_usage", 409,                                                       \
      "closing a period with usage that no rate card prices")                                      \
    X(BILLING_ERROR, "billing_error", 409, "the period cannot be closed; the message says why")    \
    X(PAYLOAD_TOO_LARGE, "payload_too_large", 413,                                                 \
      "the request body passes the server's limit (serve's --max-body, the control plane's "       \
      "1 MiB)")                                                                                    \
    X(TOO_MANY_RUNS, "too_many_runs", 429,                                                         \
      "the server's --max-runs, the tenant's --max-runs-per-tenant or a concurrent_runs limit is " \
      "reached; Retry-After")                                                                      \
    X(RATE_LIMITED, "rate_limited", 429,                                                           \
      "a requests_per_minute or tokens_per_minute limit of the tenant or key is reached; "         \
      "Retry-After")                                                                               \
    X(BUDGET_EXCEEDED, "budget_exceeded", 429,                                                     \
      "the tenant's or key's monthly budget is spent; Retry-After (the next month)")               \
    X(INTERNAL, "internal", 500, "the server failed (out of memory, storage error)")               \
    X(CONTROLPLANE_UNAVAILABLE, "controlplane_unavailable", 503,                                   \
      "serve cannot reach the control plane to check a key; Retry-After")                          \
    X(USAGE_UNAVAILABLE, "usage_unavailable", 503,                                                 \
      "GET /v1/usage on a serve without --controlplane, or for a caller without an API key to "    \
      "ask it with")                                                                               \
    X(PLUGIN_QUARANTINED, "plugin_quarantined", 503,                                               \
      "a plugin refused until restart after hangs reached --max-abandoned")                        \
    X(STORAGE, "storage", 503, "usage not stored; retry with the same idempotency keys")           \
    X(STATE_UNAVAILABLE, "state_unavailable", 503,                                                 \
      "serve --state redis cannot reach Redis: an async run is not accepted (never a 202 that "    \
      "may be lost), what this replica does not hold is not read, a limit is not checked; "        \
      "Retry-After")

typedef enum fr_http_error {
#define FR_HTTP_ERROR_ID(id, code, status, meaning) FR_HE_##id,
    FR_HTTP_ERRORS(FR_HTTP_ERROR_ID)
#undef FR_HTTP_ERROR_ID
        FR_HE_COUNT_
} fr_http_error;

/* The code ("payload_too_large"), its HTTP status, its meaning: static, for every id
 * below FR_HE_COUNT_. */
const char *fr__http_error_code(fr_http_error e);
int fr__http_error_status(fr_http_error e);
const char *fr__http_error_meaning(fr_http_error e);

#endif
