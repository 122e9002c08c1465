/* Plugins' leases: the host API entries fr_host_api.lease_acquire / lease_release, on
 * the leases of core/lease/lease.h.  Thread-safe. */
#ifndef FR_CORE_HOST_LEASE_H
#define FR_CORE_HOST_LEASE_H

#include <stdint.h>

#include <fluxroute/plugin.h>

/* Host API entries: see fr_host_api in include/fluxroute/plugin.h.  The key is taken as
 * "plugin:<key>" on the process-wide backend the COORDINATION_* environment selects;
 * the lease is tied to `call` and must be dropped by fr__host_leases_end_call. */
fr_status fr__host_lease_acquire(fr_call *call, const char *key, int64_t ttl_us, int64_t wait_us,
                                 uint64_t *fencing_token);
fr_status fr__host_lease_release(fr_call *call, const char *key);
/* Releases every lease `call` still holds.  The engine must call it when an invocation
 * ends (before fr__call_done), including abandoned (hung) calls when they are reaped. */
void fr__host_leases_end_call(fr_call *call);

#endif
