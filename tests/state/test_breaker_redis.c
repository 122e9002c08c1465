/* Shared breakers (core/state/breaker_redis.c): the Lua transitions against a real Redis
 * (FR_TEST_REDIS_URL, started by tests/state/test_breaker_redis.sh), exactly one probe
 * among concurrent admissions, the probe's slot freed when its holder never records, the
 * local cache's bound, and an unreachable Redis (state_unavailable, saying why). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fr_test.h"
#include "base/clock.h"
#include "host/breaker.h"
#include "state/breaker_redis.h"
#include "state/state.h"

static fr_state *st;

static fr_breaker_cfg cfg_of(int threshold, int64_t reset_us, int64_t probe_us)
{
    fr_breaker_cfg c = {.enabled = 1,
                        .failure_threshold = threshold,
                        .reset_timeout_us = reset_us,
                        .probe_timeout_us = probe_us};
    return c;
}

static void del(const char *key)
{
    const char *argv[] = {"DEL", key};
    char err[256];
    redisReply *r = fr__redis_command(st->redis, 2, argv, NULL, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL(r);
    if (r)
        freeReplyObject(r);
}

static fr_admission admit(const char *key, const fr_breaker_cfg *c, int *changed, long long *gen,
                          fr_breaker_redis_view *v)
{
    fr_admission a = FR_ADMIT_UNAVAILABLE;
    char err[256];
    ASSERT_STATUS(fr__breaker_redis_admit(st->redis, key, c, &a, changed, gen, v, err, sizeof err),
                  FR_OK);
    return a;
}

/* Records and returns changed; *from and *v filled. */
static int record(const char *key, const fr_breaker_cfg *c, fr_admission how, int kind,
                  long long gen, fr_breaker_state *from, fr_breaker_redis_view *v)
{
    int changed = -1;
    char err[256];
    ASSERT_STATUS(fr__breaker_redis_record(st->redis, key, c, how, kind, gen, &changed, from, v,
                                           err, sizeof err),
                  FR_OK);
    return changed;
}

/* Waits until an open breaker's cooldown (`left_us`, as Redis said) has passed. */
static void wait_cooldown(long long left_us)
{
    usleep((useconds_t)(left_us > 0 ? left_us : 0) + 20000);
}

static void test_transitions(void)
{
    const char *key = "fluxroute:breaker:{n:t}:agent:transitions";
    del(key);
    fr_breaker_cfg c = cfg_of(3, 200000, 1000000);
    int changed;
    long long gen = 0, g1;
    fr_breaker_redis_view v;
    fr_breaker_state from;

    CU_ASSERT_EQUAL(admit(key, &c, &changed, &gen, &v), FR_ADMIT_ALLOW);
    CU_ASSERT_EQUAL(changed, 0);
    CU_ASSERT_EQUAL(v.state, FR_BREAKER_CLOSED);
    /* A counted failure, one that does not count, a success: back to 0. */
    CU_ASSERT_EQUAL(record(key, &c, FR_ADMIT_ALLOW, 1, 0, &from, &v), 0);
    CU_ASSERT_EQUAL(v.failures, 1);
    CU_ASSERT_EQUAL(record(key, &c, FR_ADMIT_ALLOW, 2, 0, &from, &v), 0);
    CU_ASSERT_EQUAL(v.failures, 1);
    CU_ASSERT_EQUAL(record(key, &c, FR_ADMIT_ALLOW, 0, 0, &from, &v), 0);
    CU_ASSERT_EQUAL(v.failures, 0);
    /* Three consecutive counted failures open it. */
    CU_ASSERT_EQUAL(record(key, &c, FR_ADMIT_ALLOW, 1, 0, &from, &v), 0);
    CU_ASSERT_EQUAL(record(key, &c, FR_ADMIT_ALLOW, 1, 0, &from, &v), 0);
    CU_ASSERT_EQUAL(record(key, &c, FR_ADMIT_ALLOW, 1, 0, &from, &v), 1);
    CU_ASSERT_EQUAL(from, FR_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(v.state, FR_BREAKER_OPEN);
    /* Open: rejects, with the cooldown left. */
    CU_ASSERT_EQUAL(admit(key, &c, &changed, &gen, &v), FR_ADMIT_REJECT);
    CU_ASSERT(v.left_us > 0 && v.left_us <= 200000);
    /* An outcome of a call admitted before (another replica's) changes nothing now. */
    CU_ASSERT_EQUAL(record(key, &c, FR_ADMIT_ALLOW, 0, 0, &from, &v), 0);
    CU_ASSERT_EQUAL(v.state, FR_BREAKER_OPEN);
    wait_cooldown(v.left_us);
    /* The cooldown passed: one probe, the state half-open. */
    CU_ASSERT_EQUAL(admit(key, &c, &changed, &gen, &v), FR_ADMIT_PROBE);
    CU_ASSERT_EQUAL(changed, 1);
    CU_ASSERT_EQUAL(v.state, FR_BREAKER_HALF_OPEN);
    g1 = gen;
    CU_ASSERT_EQUAL(admit(key, &c, &changed, &gen, &v), FR_ADMIT_REJECT);
    /* A stale probe's outcome (another generation) is ignored. */
    CU_ASSERT_EQUAL(record(key, &c, FR_ADMIT_PROBE, 0, g1 - 1, &from, &v), 0);
    CU_ASSERT_EQUAL(v.state, FR_BREAKER_HALF_OPEN);
    /* A probe failing without counting (429) leaves it half-open: the next call probes. */
    CU_ASSERT_EQUAL(record(key, &c, FR_ADMIT_PROBE, 2, g1, &from, &v), 0);
    CU_ASSERT_EQUAL(v.state, FR_BREAKER_HALF_OPEN);
    CU_ASSERT_EQUAL(admit(key, &c, &changed, &gen, &v), FR_ADMIT_PROBE);
    CU_ASSERT_EQUAL(changed, 0);
    CU_ASSERT_EQUAL(gen, g1 + 1);
    /* A failed probe opens it again, for a whole cooldown. */
    CU_ASSERT_EQUAL(record(key, &c, FR_ADMIT_PROBE, 1, gen, &from, &v), 1);
    CU_ASSERT_EQUAL(from, FR_BREAKER_HALF_OPEN);
    CU_ASSERT_EQUAL(v.state, FR_BREAKER_OPEN);
    CU_ASSERT_EQUAL(v.left_us, 200000);
    CU_ASSERT_EQUAL(admit(key, &c, &changed, &gen, &v), FR_ADMIT_REJECT);
    wait_cooldown(v.left_us);
    /* A successful probe closes it, failures forgotten. */
    CU_ASSERT_EQUAL(admit(key, &c, &changed, &gen, &v), FR_ADMIT_PROBE);
    CU_ASSERT_EQUAL(record(key, &c, FR_ADMIT_PROBE, 0, gen, &from, &v), 1);
    CU_ASSERT_EQUAL(from, FR_BREAKER_HALF_OPEN);
    CU_ASSERT_EQUAL(v.state, FR_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(v.failures, 0);
    CU_ASSERT_EQUAL(admit(key, &c, &changed, &gen, &v), FR_ADMIT_ALLOW);
}

/* ---- one probe among concurrent admissions ------------------------------------------ */

#define RACERS 12
static pthread_barrier_t barrier;
static const char *race_key;
static fr_breaker_cfg race_cfg;
static int probes;
static pthread_mutex_t probes_mu = PTHREAD_MUTEX_INITIALIZER;

static void *racer(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&barrier);
    fr_admission a = FR_ADMIT_UNAVAILABLE;
    int changed;
    long long gen;
    fr_breaker_redis_view v;
    char err[256];
    if (fr__breaker_redis_admit(st->redis, race_key, &race_cfg, &a, &changed, &gen, &v, err,
                                sizeof err) == FR_OK &&
        a == FR_ADMIT_PROBE) {
        pthread_mutex_lock(&probes_mu);
        probes++;
        pthread_mutex_unlock(&probes_mu);
    }
    return NULL;
}

static void test_one_probe(void)
{
    race_key = "fluxroute:breaker:{n:t}:agent:race";
    del(race_key);
    race_cfg = cfg_of(1, 100000, 1000000);
    fr_breaker_state from;
    fr_breaker_redis_view v;
    CU_ASSERT_EQUAL(record(race_key, &race_cfg, FR_ADMIT_ALLOW, 1, 0, &from, &v), 1);
    wait_cooldown(v.left_us);
    pthread_t t[RACERS];
    pthread_barrier_init(&barrier, NULL, RACERS);
    for (int i = 0; i < RACERS; i++)
        pthread_create(&t[i], NULL, racer, NULL);
    for (int i = 0; i < RACERS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&barrier);
    CU_ASSERT_EQUAL(probes, 1);
}

/* A probe whose holder never records (its replica died) frees its slot after twice
 * probe_timeout plus 1 s: then another probe is admitted. */
static void test_probe_slot_expires(void)
{
    const char *key = "fluxroute:breaker:{n:t}:agent:dead-prober";
    del(key);
    fr_breaker_cfg c = cfg_of(1, 50000, 50000); /* slot: 1.1 s */
    fr_breaker_state from;
    fr_breaker_redis_view v;
    int changed;
    long long gen, g1;
    CU_ASSERT_EQUAL(record(key, &c, FR_ADMIT_ALLOW, 1, 0, &from, &v), 1);
    wait_cooldown(v.left_us);
    CU_ASSERT_EQUAL(admit(key, &c, &changed, &g1, &v), FR_ADMIT_PROBE);
    int64_t t0 = fr__mono_us();
    CU_ASSERT_EQUAL(admit(key, &c, &changed, &gen, &v), FR_ADMIT_REJECT);
    usleep(1100000 - (useconds_t)(fr__mono_us() - t0) + 50000);
    CU_ASSERT_EQUAL(admit(key, &c, &changed, &gen, &v), FR_ADMIT_PROBE);
    CU_ASSERT_EQUAL(gen, g1 + 1);
}

/* What an admission costs when it goes to Redis (printed for docs/scaling.md). */
static void test_admit_latency(void)
{
    const char *key = "fluxroute:breaker:{n:t}:agent:latency";
    del(key);
    fr_breaker_cfg c = cfg_of(3, 1000000, 1000000);
    int changed;
    long long gen;
    fr_breaker_redis_view v;
    uint64_t rt0 = fr__redis_pool_round_trips(st->redis);
    int64_t t0 = fr__mono_us();
    for (int i = 0; i < 500; i++)
        CU_ASSERT_EQUAL(admit(key, &c, &changed, &gen, &v), FR_ADMIT_ALLOW);
    int64_t us = fr__mono_us() - t0;
    uint64_t rts = fr__redis_pool_round_trips(st->redis) - rt0;
    CU_ASSERT_EQUAL(rts, 500); /* one round trip each */
    printf("\n# measured: an admission through Redis: %.1f us, %.2f round trips\n", us / 500.0,
           rts / 500.0);
}

/* ---- the store, through host/breaker.h ---------------------------------------------- */

static void test_store_cache_bound(void)
{
    fr__breaker_registry_reset();
    fr__breaker_redis_install(st);
    fr_breaker_cfg c = cfg_of(1, 60000000, 1000000);
    fr_breaker *b = fr__breaker_get("cachens", "agent", "x", &c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    const char *key = "fluxroute:breaker:{n:cachens}:agent:x";
    del(key);
    fr_breaker_transition tr;
    int changed;
    char why[256];
    CU_ASSERT_EQUAL(fr__breaker_admit(b, fr__mono_us(), &tr, &changed, why, sizeof why),
                    FR_ADMIT_ALLOW);
    /* Another replica opens it: this process sees it within FR_BREAKER_CACHE_US. */
    int64_t t_open = fr__mono_us();
    fr_breaker_state from;
    fr_breaker_redis_view v;
    CU_ASSERT_EQUAL(record(key, &c, FR_ADMIT_ALLOW, 1, 0, &from, &v), 1);
    fr_admission a;
    do
        a = fr__breaker_admit(b, fr__mono_us(), &tr, &changed, why, sizeof why);
    while (a == FR_ADMIT_ALLOW && fr__mono_us() - t_open < 1000000);
    int64_t seen_us = fr__mono_us() - t_open;
    CU_ASSERT_EQUAL(a, FR_ADMIT_REJECT);
    CU_ASSERT(seen_us <= FR_BREAKER_CACHE_US + 20000);
    printf("\n# measured: an opening by another replica seen here after %lld us (bound: %d us "
           "cache + a round trip)\n",
           (long long)seen_us, FR_BREAKER_CACHE_US);
    CU_ASSERT_EQUAL(fr__breaker_state(b), FR_BREAKER_OPEN);
    /* Its own failure through the store reports the transition. */
    const char *key2 = "fluxroute:breaker:{n:cachens}:agent:y";
    del(key2);
    fr_breaker *b2 = fr__breaker_get("cachens", "agent", "y", &c);
    CU_ASSERT_EQUAL(fr__breaker_admit(b2, fr__mono_us(), &tr, &changed, why, sizeof why),
                    FR_ADMIT_ALLOW);
    CU_ASSERT_EQUAL(fr__breaker_record(b2, FR_ADMIT_ALLOW, FR_E_UNAVAILABLE, fr__mono_us(), &tr),
                    1);
    CU_ASSERT_EQUAL(tr.from, FR_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(tr.to, FR_BREAKER_OPEN);
    ASSERT_STR(tr.reason, "failure_threshold consecutive failures");
    fr__breaker_redis_uninstall();
    fr__breaker_registry_reset();
}

static void test_store_unreachable(void)
{
    fr_state *down = NULL;
    char err[256];
    ASSERT_STATUS(
        fr__state_open("redis://:hunter2@127.0.0.1:1/0", "--state", NULL, &down, err, sizeof err),
        FR_OK);
    fr__breaker_registry_reset();
    fr__breaker_redis_install(down);
    fr_breaker_cfg c = cfg_of(1, 1000000, 1000000);
    fr_breaker *b = fr__breaker_get("downns", "provider", "p", &c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    fr_breaker_transition tr;
    int changed = 1;
    char why[512] = "";
    CU_ASSERT_EQUAL(fr__breaker_admit(b, fr__mono_us(), &tr, &changed, why, sizeof why),
                    FR_ADMIT_UNAVAILABLE);
    CU_ASSERT_EQUAL(changed, 0);
    ASSERT_CONTAINS(why, "breaker state unreachable: redis redis://:***@127.0.0.1:1/0: ");
    CU_ASSERT_PTR_NULL(strstr(why, "hunter2"));
    /* Not admitted: nothing to record. */
    CU_ASSERT_EQUAL(fr__breaker_record(b, FR_ADMIT_UNAVAILABLE, FR_OK, fr__mono_us(), &tr), 0);
    /* The class: not retried, not counted. */
    ASSERT_STR(fr_class_name(fr_status_class(FR_E_STATE_UNAVAILABLE)), "state_unavailable");
    CU_ASSERT_EQUAL(fr_status_retried(FR_E_STATE_UNAVAILABLE), 0);
    CU_ASSERT_EQUAL(fr_status_counts_for_breaker(FR_E_STATE_UNAVAILABLE), 0);
    fr__breaker_redis_uninstall();
    /* Uninstalled: breakers made with the store answer unavailable, new ones are local. */
    CU_ASSERT_EQUAL(fr__breaker_admit(b, fr__mono_us(), &tr, &changed, why, sizeof why),
                    FR_ADMIT_UNAVAILABLE);
    fr_breaker *local = fr__breaker_get("downns", "provider", "q", &c);
    CU_ASSERT_EQUAL(fr__breaker_admit(local, fr__mono_us(), &tr, &changed, why, sizeof why),
                    FR_ADMIT_ALLOW);
    fr__breaker_registry_reset();
    fr__state_free(down);
}

int main(void)
{
    const char *url = getenv("FR_TEST_REDIS_URL");
    char err[256];
    if (!url || fr__state_open(url, "FR_TEST_REDIS_URL", NULL, &st, err, sizeof err) != FR_OK) {
        fprintf(stderr, "FR_TEST_REDIS_URL: run through tests/state/test_breaker_redis.sh\n");
        return 1;
    }
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("breaker_redis", NULL, NULL);
    CU_add_test(s, "Lua transitions", test_transitions);
    CU_add_test(s, "one probe among concurrent admissions", test_one_probe);
    CU_add_test(s, "a dead prober's slot expires", test_probe_slot_expires);
    CU_add_test(s, "an admission's cost", test_admit_latency);
    CU_add_test(s, "the store: cache bound, transitions", test_store_cache_bound);
    CU_add_test(s, "the store: Redis unreachable", test_store_unreachable);
    int rc = fr_test_run_all();
    fr__state_free(st);
    return rc;
}
