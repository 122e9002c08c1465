/* The host's observability hooks (core/host/call_observe.c): provider calls and the
 * traceparent of outgoing HTTP requests, translated into the sinks of core/observe/.
 * Thread-safe. */
#ifndef FR_CORE_CALL_OBSERVE_H
#define FR_CORE_CALL_OBSERVE_H

#include <stddef.h>
#include <stdint.h>

#include <fluxroute/plugin.h>

/* A provider call (host.c host_provider_call): begin returns a token that end takes. */
typedef struct fr_obs_provider_token {
    int64_t t0_us;         /* monotonic */
    uint64_t span_id;      /* 0 when the run is not traced */
    uint64_t prev_span_id; /* the thread's previous provider span (nesting) */
} fr_obs_provider_token;
fr_obs_provider_token fr__obs_provider_begin(fr_call *call);
/* `usage` is what fr__obs_scan_usage read in the provider's answer (the caller scans it
 * once for all its consumers), or NULL on failure.  Borrowed for the call. */
struct fr_obs_usage;
void fr__obs_provider_end(fr_call *call, const fr_obs_provider_token *tok, const char *provider_id,
                          const char *system, fr_status st, const struct fr_obs_usage *usage);

/* W3C traceparent for an outgoing HTTP request made during `call`, when its run is
 * traced: writes "00-<trace>-<span>-01" (55 chars + NUL) into out and returns 1; 0
 * otherwise.  The parent span is the current provider call, else the attempt. */
int fr__obs_traceparent(fr_call *call, char out[56]);

#endif
