/* The metrics endpoints (core/http/metrics_endpoint.c): the METRICS_ENABLED endpoint of
 * `fluxroute run`, and the unauthenticated --metrics-addr probe listener that serve,
 * worker and controlplane start (/metrics, /healthz, /readyz). */
#ifndef FR_CORE_HTTP_METRICS_ENDPOINT_H
#define FR_CORE_HTTP_METRICS_ENDPOINT_H

#include <stddef.h>

#include "http/http.h"

/* The METRICS_ENABLED endpoint used by `run`: when METRICS_ENABLED is truthy, serves
 * /metrics on METRICS_ADDR (default :2112; TLS/mTLS via METRICS_TLS_*) until
 * fr__metrics_server_stop.  Returns 0 (started or disabled) or -1 after printing why to
 * stderr (bad address, port in use, unreadable certificate). */
int fr__metrics_server_start_from_env(void);
void fr__metrics_server_stop(void);

/* GET or HEAD /metrics: the registry's exposition into *out (405 for another method, 500
 * when out of memory).  Sets out->route. */
void fr__metrics_reply(const char *method, fr_reply *out);

/* The --metrics-addr listener: plain HTTP, no authentication (bind it to a private
 * network), one thread.  It answers /metrics, /healthz (always 200 {"status":"ok"}) and
 * /readyz (what `readyz(cls, out)` puts in out; called on the listener's thread, so it
 * must be thread-safe), also under /v1/; anything else 404.  `addr` is borrowed.  Returns
 * the listener, or NULL with err set ("--metrics-addr ADDR: why").  Stop it with
 * fr__probe_listener_stop (NULL is ignored). */
typedef struct fr_probe_listener fr_probe_listener;
typedef void (*fr_probe_readyz)(void *cls, fr_reply *out);
fr_probe_listener *fr__probe_listener_start(const char *addr, fr_probe_readyz readyz, void *cls,
                                            char *err, size_t errlen);
/* http://HOST:PORT, the port the kernel chose for port 0 ("" for NULL).  Borrowed. */
const char *fr__probe_listener_url(const fr_probe_listener *l);
void fr__probe_listener_stop(fr_probe_listener *l);

#endif
