/* Shared breakers in Redis: two Lua scripts and a short local cache (state/breaker_redis.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/breaker_redis.h"
#include "base/clock.h"
#include "observe/obs_impl.h"

/* The hash's fields: st (0 closed, 1 open, 2 half_open: the order of fr_breaker_state),
 * fails, opened (Redis time, us), probe (the probe's slot ends, us), gen (the last probe
 * admitted).  A key unused for a day expires: the breaker is closed again. */
#define LUA_PRELUDE                                                                             \
    "if redis.replicate_commands then redis.replicate_commands() end "                          \
    "local t = redis.call('TIME') "                                                             \
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2]) "                                    \
    "local h = redis.call('HMGET', KEYS[1], 'st', 'fails', 'opened', 'probe', 'gen') "          \
    "local st, fails = tonumber(h[1]) or 0, tonumber(h[2]) or 0 "                               \
    "local opened, probe, gen = tonumber(h[3]) or 0, tonumber(h[4]) or 0, tonumber(h[5]) or 0 " \
    "local function keep() redis.call('PEXPIRE', KEYS[1], 86400000) end "

/* ARGV: reset_timeout_us, probe slot (us).
 * Returns {admission (0 allow, 1 probe, 2 reject), changed, state, fails, cooldown left, gen}. */
static fr_redis_script ADMIT = {
    .lua = LUA_PRELUDE
    "if st == 0 then return {0, 0, 0, fails, 0, gen} end "
    "if st == 1 then "
    "  local left = opened + tonumber(ARGV[1]) - now "
    "  if left > 0 then return {2, 0, 1, fails, left, gen} end "
    "  gen = gen + 1 "
    "  redis.call('HSET', KEYS[1], 'st', 2, 'probe', now + tonumber(ARGV[2]), 'gen', gen) "
    "  keep() "
    "  return {1, 1, 2, fails, 0, gen} "
    "end "
    "if probe > now then return {2, 0, 2, fails, 0, gen} end "
    "gen = gen + 1 "
    "redis.call('HSET', KEYS[1], 'probe', now + tonumber(ARGV[2]), 'gen', gen) "
    "keep() "
    "return {1, 0, 2, fails, 0, gen}"};

/* ARGV: how (0 allowed, 1 the probe), outcome (0 success, 1 counted failure, 2 a failure
 * that does not count), failure_threshold, the probe's gen, reset_timeout_us.
 * Returns {changed, from, state, fails, cooldown left}. */
static fr_redis_script RECORD = {
    .lua = LUA_PRELUDE
    "local how, out = tonumber(ARGV[1]), tonumber(ARGV[2]) "
    "local reset = tonumber(ARGV[5]) "
    "local function left() if st == 1 then return opened + reset - now end return 0 end "
    "if how == 1 then "
    "  if st ~= 2 or gen ~= tonumber(ARGV[4]) then return {0, st, st, fails, left()} end "
    "  if out == 0 then "
    "    redis.call('HSET', KEYS[1], 'st', 0, 'fails', 0, 'probe', 0) keep() "
    "    return {1, 2, 0, 0, 0} "
    "  end "
    "  if out == 1 then "
    "    redis.call('HSET', KEYS[1], 'st', 1, 'opened', now, 'probe', 0) keep() "
    "    return {1, 2, 1, fails, reset} "
    "  end "
    "  redis.call('HSET', KEYS[1], 'probe', 0) "
    "  return {0, 2, 2, fails, 0} "
    "end "
    "if st ~= 0 then return {0, st, st, fails, left()} end "
    "if out == 0 then "
    "  if fails > 0 then redis.call('HSET', KEYS[1], 'fails', 0) keep() end "
    "  return {0, 0, 0, 0, 0} "
    "end "
    "if out == 2 then return {0, 0, 0, fails, 0} end "
    "fails = redis.call('HINCRBY', KEYS[1], 'fails', 1) "
    "if fails >= tonumber(ARGV[3]) then "
    "  redis.call('HSET', KEYS[1], 'st', 1, 'opened', now) keep() "
    "  return {1, 0, 1, fails, reset} "
    "end "
    "keep() "
    "return {0, 0, 0, fails, 0}"};

/* The probe's slot: long enough for the probe (its attempt ends by probe_timeout), short
 * enough that a replica dying while probing frees it. */
static long long probe_slot_us(const fr_breaker_cfg *cfg)
{
    return 2 * (long long)cfg->probe_timeout_us + 1000000;
}

/* Runs `s` on `key` and checks the reply is an array of at least `n` integers. */
static redisReply *run_script(fr_redis_pool *pool, fr_redis_script *s, const char *key, int argc,
                              const char **args, size_t n, char *err, size_t err_size)
{
    const char *argv[8] = {key};
    for (int i = 0; i < argc && i < 7; i++)
        argv[i + 1] = args[i];
    char why[400];
    redisReply *r = fr__redis_eval(pool, s, 1, argc + 1, argv, NULL, why, sizeof why);
    if (r && (r->type != REDIS_REPLY_ARRAY || r->elements < n)) {
        snprintf(why, sizeof why, "redis %s: unexpected reply to a breaker script",
                 fr__redis_pool_url(pool));
        freeReplyObject(r);
        r = NULL;
    }
    for (size_t i = 0; r && i < n; i++) {
        if (r->element[i]->type != REDIS_REPLY_INTEGER) {
            snprintf(why, sizeof why, "redis %s: unexpected reply to a breaker script",
                     fr__redis_pool_url(pool));
            freeReplyObject(r);
            r = NULL;
        }
    }
    if (!r)
        snprintf(err, err_size, "breaker state unreachable: %s", why);
    return r;
}

static fr_breaker_state state_of(long long v)
{
    return v == 1 ? FR_BREAKER_OPEN : v == 2 ? FR_BREAKER_HALF_OPEN : FR_BREAKER_CLOSED;
}

fr_status fr__breaker_redis_admit(fr_redis_pool *pool, const char *key, const fr_breaker_cfg *cfg,
                                  fr_admission *adm, int *changed, long long *probe_gen,
                                  fr_breaker_redis_view *view, char *err, size_t err_size)
{
    char reset[24], slot[24];
    snprintf(reset, sizeof reset, "%lld", (long long)cfg->reset_timeout_us);
    snprintf(slot, sizeof slot, "%lld", probe_slot_us(cfg));
    const char *args[] = {reset, slot};
    redisReply *r = run_script(pool, &ADMIT, key, 2, args, 6, err, err_size);
    if (!r)
        return FR_E_STATE_UNAVAILABLE;
    long long a = r->element[0]->integer;
    *adm = a == 1 ? FR_ADMIT_PROBE : a == 2 ? FR_ADMIT_REJECT : FR_ADMIT_ALLOW;
    *changed = r->element[1]->integer != 0;
    view->state = state_of(r->element[2]->integer);
    view->failures = r->element[3]->integer;
    view->left_us = r->element[4]->integer;
    *probe_gen = r->element[5]->integer;
    freeReplyObject(r);
    return FR_OK;
}

fr_status fr__breaker_redis_record(fr_redis_pool *pool, const char *key, const fr_breaker_cfg *cfg,
                                   fr_admission how, int outcome_kind, long long probe_gen,
                                   int *changed, fr_breaker_state *from,
                                   fr_breaker_redis_view *view, char *err, size_t err_size)
{
    char thr[16], gen[24], reset[24];
    snprintf(thr, sizeof thr, "%d", cfg->failure_threshold < 1 ? 1 : cfg->failure_threshold);
    snprintf(gen, sizeof gen, "%lld", probe_gen);
    snprintf(reset, sizeof reset, "%lld", (long long)cfg->reset_timeout_us);
    const char *args[] = {how == FR_ADMIT_PROBE ? "1" : "0",
                          outcome_kind == 0   ? "0"
                          : outcome_kind == 1 ? "1"
                                              : "2",
                          thr, gen, reset};
    redisReply *r = run_script(pool, &RECORD, key, 5, args, 5, err, err_size);
    if (!r)
        return FR_E_STATE_UNAVAILABLE;
    *changed = r->element[0]->integer != 0;
    *from = state_of(r->element[1]->integer);
    view->state = state_of(r->element[2]->integer);
    view->failures = r->element[3]->integer;
    view->left_us = r->element[4]->integer;
    freeReplyObject(r);
    return FR_OK;
}

/* ---- the store ------------------------------------------------------------------------ */

/* Per breaker: its key and what this process last saw. */
typedef struct shared_breaker {
    pthread_mutex_t mu;
    char *key;
    int64_t fresh_until; /* monotonic; the cache below holds until then */
    fr_breaker_redis_view seen;
    long long probe_gen; /* of the probe this process holds */
} shared_breaker;

/* The installed state: read-locked by every use, so uninstall waits for them. */
static pthread_rwlock_t installed_lock = PTHREAD_RWLOCK_INITIALIZER;
static fr_state *installed;

static void *store_attach(void *ud, fr_breaker *b)
{
    fr_state *s = ud;
    size_t n =
        strlen(s->prefix) + strlen(fr__breaker_namespace(b)) + strlen(fr__breaker_name(b)) + 16;
    shared_breaker *sb = calloc(1, sizeof *sb);
    if (!sb || !(sb->key = malloc(n))) {
        free(sb);
        return NULL;
    }
    pthread_mutex_init(&sb->mu, NULL);
    fr__state_key(s, sb->key, n, "breaker:{n:%s}:%s", fr__breaker_namespace(b),
                  fr__breaker_name(b));
    return sb;
}

static void store_detach(void *ud, void *data)
{
    (void)ud;
    shared_breaker *sb = data;
    pthread_mutex_destroy(&sb->mu);
    free(sb->key);
    free(sb);
}

static fr_breaker_state store_state(void *ud, void *data)
{
    (void)ud;
    shared_breaker *sb = data;
    pthread_mutex_lock(&sb->mu);
    fr_breaker_state st = sb->seen.state;
    pthread_mutex_unlock(&sb->mu);
    return st;
}

/* Caches `v`, seen at `now`: an open breaker no longer than its cooldown left. */
static void remember(shared_breaker *sb, const fr_breaker_redis_view *v, int64_t now)
{
    int64_t ttl = FR_BREAKER_CACHE_US;
    if (v->state == FR_BREAKER_OPEN && v->left_us < ttl)
        ttl = v->left_us > 0 ? v->left_us : 0;
    sb->seen = *v;
    sb->fresh_until = now + ttl;
}

static void set_transition(fr_breaker_transition *tr, fr_breaker_state from, fr_breaker_state to,
                           const char *reason)
{
    if (tr) {
        tr->from = from;
        tr->to = to;
        tr->reason = reason;
    }
}

/* fluxroute_state_errors_total{op}: an operation on the shared state that failed. */
static void count_error(const char *op)
{
    const char *labels[] = {op};
    fr__metric_count(FR_M_STATE_ERRORS, labels, 1);
}

static fr_admission store_admit(void *ud, void *data, fr_breaker *b, int64_t now,
                                fr_breaker_transition *tr, int *changed, char *why, size_t why_size)
{
    (void)ud;
    shared_breaker *sb = data;
    pthread_mutex_lock(&sb->mu);
    if (now < sb->fresh_until) {
        fr_breaker_state st = sb->seen.state;
        pthread_mutex_unlock(&sb->mu);
        return st == FR_BREAKER_CLOSED ? FR_ADMIT_ALLOW : FR_ADMIT_REJECT;
    }
    pthread_mutex_unlock(&sb->mu);

    char err[512];
    fr_admission adm = FR_ADMIT_UNAVAILABLE;
    long long gen = 0;
    fr_breaker_redis_view v;
    pthread_rwlock_rdlock(&installed_lock);
    fr_status st = installed
                       ? fr__breaker_redis_admit(installed->redis, sb->key, fr__breaker_cfg(b),
                                                 &adm, changed, &gen, &v, err, sizeof err)
                       : FR_E_STATE_UNAVAILABLE;
    if (!installed)
        snprintf(err, sizeof err, "breaker state unreachable: redis: the shared state is closed");
    pthread_rwlock_unlock(&installed_lock);
    if (st != FR_OK) {
        count_error("breaker_admit");
        if (why)
            snprintf(why, why_size, "%s", err);
        *changed = 0;
        return FR_ADMIT_UNAVAILABLE;
    }
    pthread_mutex_lock(&sb->mu);
    remember(sb, &v, fr__mono_us());
    if (adm == FR_ADMIT_PROBE)
        sb->probe_gen = gen;
    pthread_mutex_unlock(&sb->mu);
    if (*changed)
        set_transition(tr, FR_BREAKER_OPEN, FR_BREAKER_HALF_OPEN,
                       "reset_timeout elapsed; admitting one probe");
    return adm;
}

static int store_record(void *ud, void *data, fr_breaker *b, fr_admission how, fr_status outcome,
                        int counts, int64_t now, fr_breaker_transition *tr)
{
    (void)ud;
    shared_breaker *sb = data;
    int kind = outcome == FR_OK ? 0 : counts ? 1 : 2;
    pthread_mutex_lock(&sb->mu);
    long long gen = sb->probe_gen;
    /* Nothing to change: a failure that does not count on a closed breaker, or a success
     * while this process sees it closed with no failures. */
    int idle = how == FR_ADMIT_ALLOW &&
               (kind == 2 || (kind == 0 && now < sb->fresh_until &&
                              sb->seen.state == FR_BREAKER_CLOSED && sb->seen.failures == 0));
    pthread_mutex_unlock(&sb->mu);
    if (idle)
        return 0;

    char err[512];
    int changed = 0;
    fr_breaker_state from = FR_BREAKER_CLOSED;
    fr_breaker_redis_view v;
    pthread_rwlock_rdlock(&installed_lock);
    fr_status st =
        installed ? fr__breaker_redis_record(installed->redis, sb->key, fr__breaker_cfg(b), how,
                                             kind, gen, &changed, &from, &v, err, sizeof err)
                  : FR_E_STATE_UNAVAILABLE;
    pthread_rwlock_unlock(&installed_lock);
    pthread_mutex_lock(&sb->mu);
    if (st == FR_OK)
        remember(sb, &v, fr__mono_us());
    else
        sb->fresh_until = 0; /* the next admission asks Redis (and says it is unreachable) */
    pthread_mutex_unlock(&sb->mu);
    if (st != FR_OK)
        count_error("breaker_record");
    if (st != FR_OK || !changed)
        return 0;
    set_transition(tr, from, v.state,
                   from == FR_BREAKER_HALF_OPEN
                       ? (v.state == FR_BREAKER_CLOSED ? "probe succeeded" : "probe failed")
                       : "failure_threshold consecutive failures");
    return 1;
}

static fr_breaker_store redis_store = {.name = "redis",
                                       .attach = store_attach,
                                       .admit = store_admit,
                                       .record = store_record,
                                       .state = store_state,
                                       .detach = store_detach};

void fr__breaker_redis_install(fr_state *state)
{
    if (!state || state->kind != FR_STATE_REDIS || !state->redis)
        return;
    pthread_rwlock_wrlock(&installed_lock);
    installed = state;
    redis_store.ud = state;
    pthread_rwlock_unlock(&installed_lock);
    fr__breaker_store_install(&redis_store);
}

void fr__breaker_redis_uninstall(void)
{
    fr__breaker_store_install(NULL);
    pthread_rwlock_wrlock(&installed_lock);
    installed = NULL;
    pthread_rwlock_unlock(&installed_lock);
}
