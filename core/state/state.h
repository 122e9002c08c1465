/* The shared state of serve replicas and workers (`--state URL`, ROUTER_STATE_URL):
 *
 *   memory                              one process holds everything (the default)
 *   redis://[user:password@]host[:port][/db]
 *                                       run records, the durable run queue and breakers
 *                                       live in Redis, shared by every replica and worker
 *
 * The URL follows the rules of COORDINATION_REDIS_URL (core/lease/lease.h): rediss:// is
 * refused (hiredis 0.14 has no TLS), and every message shows the password as ***.  Keys
 * are "<prefix>:..." (prefix ROUTER_STATE_PREFIX, default "fluxroute"); keys of one tenant
 * carry the tenant in a hash tag "{t:TENANT}" so a Redis Cluster keeps a tenant's keys on
 * one shard (docs/scaling.md).
 *
 * An fr_state is made once at start and shared read-only by every thread; its pool is
 * thread-safe. */
#ifndef FR_CORE_STATE_STATE_H
#define FR_CORE_STATE_STATE_H

#include <stddef.h>

#include <fluxroute/status.h>
#include "state/redis_pool.h"

typedef enum fr_state_kind { FR_STATE_MEMORY = 0, FR_STATE_REDIS = 1 } fr_state_kind;

typedef struct fr_state {
    fr_state_kind kind;
    fr_redis_pool *redis; /* FR_STATE_REDIS: the pool (owned) */
    char prefix[64];      /* key prefix */
    char node[96];        /* this process: "host:pid:random", names its queue consumer */
} fr_state;

/* Parses `url` (NULL or "" or "memory": memory) and makes the state; `what` names where
 * the URL came from in messages ("--state").  Connects nothing.  FR_OK with *out set, or
 * FR_E_CONFIG with err naming the URL (password masked) and what is wrong: an unknown
 * scheme, rediss://, a bad port or database. */
fr_status fr__state_open(const char *url, const char *what, const char *prefix, fr_state **out,
                         char *err, size_t err_size);
void fr__state_free(fr_state *s);
/* "memory", or the Redis URL with its password masked. */
const char *fr__state_describe(const fr_state *s);
/* Formats "<prefix>:<rest>" into out; returns out (truncated keys are cut at `size`). */
char *fr__state_key(const fr_state *s, char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
