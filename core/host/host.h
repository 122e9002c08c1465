/* The host API given to plugins (fr_host_api): the only way plugins reach the outside
 * world.  The per-invocation call context it works on (fr_call) is in core/host/call.h. */
#ifndef FR_CORE_HOST_H
#define FR_CORE_HOST_H

#include <pthread.h>
#include <stdint.h>

#include <fluxroute/plugin.h>

#include "host/call.h"
#include "host/host_lease.h"

/* The host API table handed to every plugin.  Static; thread-safe. */
const fr_host_api *fr__host_api(void);

/* host->http_ex (ABI 1.1) on top of table `api`'s http: performs the request into a
 * response of this host's size, then writes at most `resp_size` bytes at `resp` (the
 * fields that fit, zeros over a larger plugin struct's rest).  A NULL resp or a resp_size
 * below FR_HTTP_RESPONSE_SIZE_1_0 gets FR_E_INVALID, a message through api->set_error,
 * and nothing written.  Same threading as api->http. */
fr_status fr__http_sized(const fr_host_api *api, fr_call *call, const fr_http_request *req,
                         fr_http_response *resp, size_t resp_size);

/* Invokes an agent instance for one attempt.  On FR_OK *out (malloc'd, NUL-terminated,
 * validated JSON) and *out_len are set.  On failure the call's error holds the message. */
fr_status fr__invoke_agent(fr_call *c, const char *input, size_t input_len, char **out,
                           size_t *out_len);

/* Replay mode, for the calling thread (set it around building a replay pipeline):
 * secret_env answers a placeholder for unset variables, so providers start without their
 * keys (nothing reaches the network during a replay). */
void fr__host_set_replay_mode(int on);

/* Plugin log threshold from LOG_LEVEL (error|warn|info|debug; default warn). */
void fr__log_init_from_env(void);

/* Test hook: make the Nth host allocation from now fail (0 = never). */
void fr__alloc_fail_after(long n);

#endif
