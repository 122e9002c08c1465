/* Process isolation: `isolation: process` agents run their attempts in a helper
 * process (a hidden worker mode of the fluxroute executable, started with posix_spawn,
 * never fork of the threaded host).  The helper loads the plugin and proxies every host
 * API call back to the parent over a socketpair, so the parent still enforces deadlines
 * and cancellation and records every effect.  A helper that dies on a signal gives class
 * `crashed`; one still running past its deadline is killed (SIGKILL) and gives `timeout`.
 * Helpers are pooled per agent and reused after clean attempts.
 *
 * Thread-safety: fr__isolated_invoke may run concurrently for one instance (each call
 * takes its own helper). */
#ifndef FR_CORE_ISOLATE_H
#define FR_CORE_ISOLATE_H

#include <stdint.h>

#include "host/instance.h"
#include "host/host.h"

/* Runs one attempt of `call->inst` in a helper.  Same contract as fr__invoke_agent. */
fr_status fr__isolated_invoke(fr_call *call, const char *input, size_t input_len, char **out,
                              size_t *out_len);

/* Process-wide limits (serve --max-helpers, --helper-memory): at most `max_helpers` live
 * helper processes (0: no cap; idle ones give their slot up, else a call waits for one
 * until its deadline, 5 s without one, then fails with class `overloaded`), each under an
 * address-space limit of `memory_bytes` (0: none).  Call before runs start. */
void fr__isolation_configure(size_t max_helpers, uint64_t memory_bytes);

/* Stops the instance's idle helpers (called when the pipeline is freed). */
void fr__isolation_shutdown(fr_instance *inst);

/* The helper process's main: serves one plugin instance over file descriptor 3.
 * Returns the process exit code. */
int fr__helper_main(void);

#endif
