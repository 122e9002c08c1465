/* Shared breakers: the breaker store (host/breaker.h) of `--state redis://`, so that serve
 * replicas and workers share each breaker (docs/scaling.md).
 *
 * - One hash per breaker, "<prefix>:breaker:{n:NAMESPACE}:KIND:ID" (the namespace is the
 *   manifest's router.namespace: breakers are per namespace, as in one process), holding
 *   state, consecutive failures, when it opened, the probe's slot and its generation.  It
 *   changes only through two Lua scripts (admit, record), on Redis's clock, so replicas
 *   agree on the cooldown and exactly one half-open probe is admitted cluster-wide.  The
 *   probe's slot expires after twice probe_timeout plus 1 s, so a replica that died while
 *   probing does not keep the breaker half-open for ever.
 * - Each process caches what it last saw for at most FR_BREAKER_CACHE_US (50 ms): a closed
 *   breaker admits, and an open one rejects, without a round trip while the cache is
 *   fresh, and a success on a closed breaker with no failures counted is not sent.  So a
 *   breaker opened on one replica is open on every other within 50 ms plus a round trip,
 *   and a healthy guarded call costs no round trip while traffic keeps the cache fresh
 *   (at most one admission per breaker per 50 ms).  The price: a success seen through a
 *   fresh cache does not reset failures counted meanwhile on another replica.
 * - Redis unreachable: admissions it must decide answer FR_ADMIT_UNAVAILABLE ("breaker state
 *   unreachable: redis URL: ..."; the attempt fails with class state_unavailable, not
 *   retried, not counted); an outcome that cannot be recorded is dropped, with the cache.
 *
 * Thread-safe. */
#ifndef FR_CORE_STATE_BREAKER_REDIS_H
#define FR_CORE_STATE_BREAKER_REDIS_H

#include <fluxroute/status.h>

#include "host/breaker.h"
#include "state/state.h"

#define FR_BREAKER_CACHE_US 50000

/* With a Redis state (state->kind == FR_STATE_REDIS), installs the shared store for the
 * breakers made from now on: call once at start-up, before any pipeline is made (serve,
 * worker).  A memory state changes nothing.  `state` is borrowed until
 * fr__breaker_redis_uninstall. */
void fr__breaker_redis_install(fr_state *state);
/* Stops using `state` (before it is freed): breakers made with the store answer
 * FR_ADMIT_UNAVAILABLE from now on, and new ones are in-process. */
void fr__breaker_redis_uninstall(void);

/* The shared store's scripts, for tests: one admission or one record on the breaker hash
 * `key`, at Redis's clock.  Return FR_OK with the outputs set, or FR_E_STATE_UNAVAILABLE
 * with err set.  *probe_gen is in (record) and out (admit). */
typedef struct fr_breaker_redis_view {
    fr_breaker_state state;
    long long failures;
    long long left_us; /* open: cooldown left */
} fr_breaker_redis_view;
fr_status fr__breaker_redis_admit(fr_redis_pool *pool, const char *key, const fr_breaker_cfg *cfg,
                                  fr_admission *adm, int *changed, long long *probe_gen,
                                  fr_breaker_redis_view *view, char *err, size_t err_size);
fr_status fr__breaker_redis_record(fr_redis_pool *pool, const char *key, const fr_breaker_cfg *cfg,
                                   fr_admission how, int outcome_kind, long long probe_gen,
                                   int *changed, fr_breaker_state *from,
                                   fr_breaker_redis_view *view, char *err, size_t err_size);

#endif
