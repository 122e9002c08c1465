/* The host HTTP client behind fr_host_api.http: libcurl (GnuTLS), TLS verification on,
 * one reusable connection cache per worker thread, timeouts from the call's deadline,
 * cancellation honoured while waiting. */
#ifndef FR_CORE_HTTP_CLIENT_H
#define FR_CORE_HTTP_CLIENT_H

#include <fluxroute/plugin.h>

/* Performs `req` for `call`.  Response memory comes from the call's arena.  Returns FR_OK
 * when a response arrived, else FR_E_NETWORK, FR_E_TIMEOUT, FR_E_DEADLINE_EXCEEDED,
 * FR_E_CANCELLED, FR_E_INVALID or FR_E_NOMEM (message set on the call). */
fr_status fr__http_perform(fr_call *call, const fr_http_request *req, fr_http_response *resp);

/* Process-wide libcurl set-up; call once before threads start. */
void fr__http_global_init(void);

#endif
