/* The METRICS_ENABLED endpoint of `fluxroute run` (core/http/metrics_endpoint.c). */
#ifndef FR_CORE_HTTP_METRICS_ENDPOINT_H
#define FR_CORE_HTTP_METRICS_ENDPOINT_H

/* The METRICS_ENABLED endpoint used by `run`: when METRICS_ENABLED is truthy, serves
 * /metrics on METRICS_ADDR (default :2112; TLS/mTLS via METRICS_TLS_*) until
 * fr__metrics_server_stop.  Returns 0 (started or disabled) or -1 after printing why to
 * stderr (bad address, port in use, unreadable certificate). */
int fr__metrics_server_start_from_env(void);
void fr__metrics_server_stop(void);

#endif
