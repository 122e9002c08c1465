/* The Redis connection pool (core/state/redis_pool.h). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "base/clock.h"
#include "lease/lease.h"
#include "state/redis_pool.h"

#define DEFAULT_SIZE       4
#define CONNECT_TIMEOUT_US 500000
#define IO_TIMEOUT_US      2000000
#define WAIT_US            1000000
#define BACKOFF_MIN_US     20000
#define BACKOFF_MAX_US     2000000

struct fr_redis_conn {
    fr_redis_pool *pool;
    redisContext *ctx;
    int broken; /* a transport failure: closed when given back */
    int in_use;
};

struct fr_redis_pool {
    fr_redis_url url;
    pthread_mutex_t mu;
    pthread_cond_t freed;
    size_t size;
    fr_redis_conn *conns;
    /* Backoff while unreachable (under mu). */
    int64_t next_try_mono;
    int64_t backoff_us;
    char last_err[256];
    atomic_int reachable;
    atomic_uint_fast64_t round_trips;
    atomic_uint_fast64_t failures;
};

static struct timeval tv_us(int64_t us)
{
    struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};
    return tv;
}

fr_status fr__redis_pool_open(const char *url, const char *what, size_t size, fr_redis_pool **out,
                              char *err, size_t err_size)
{
    *out = NULL;
    fr_redis_pool *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, err_size, "%s: out of memory", what);
        return FR_E_NOMEM;
    }
    fr_status st = fr__redis_url_parse_as(url, what, &p->url, err, err_size);
    if (st != FR_OK) {
        free(p);
        return st;
    }
    p->size = size ? size : DEFAULT_SIZE;
    p->conns = calloc(p->size, sizeof *p->conns);
    if (!p->conns) {
        fr__redis_url_free(&p->url);
        free(p);
        snprintf(err, err_size, "%s: out of memory", what);
        return FR_E_NOMEM;
    }
    for (size_t i = 0; i < p->size; i++)
        p->conns[i].pool = p;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->freed, NULL);
    atomic_init(&p->reachable, 1);
    atomic_init(&p->round_trips, 0);
    atomic_init(&p->failures, 0);
    *out = p;
    return FR_OK;
}

void fr__redis_pool_free(fr_redis_pool *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->size; i++)
        if (p->conns[i].ctx)
            redisFree(p->conns[i].ctx);
    free(p->conns);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->freed);
    fr__redis_url_free(&p->url);
    free(p);
}

const char *fr__redis_pool_url(const fr_redis_pool *p)
{
    return p->url.redacted;
}

/* Notes a failure to reach Redis: backs off (under mu). */
static void note_unreachable(fr_redis_pool *p, const char *why)
{
    snprintf(p->last_err, sizeof p->last_err, "%s", why);
    p->backoff_us = p->backoff_us ? p->backoff_us * 2 : BACKOFF_MIN_US;
    if (p->backoff_us > BACKOFF_MAX_US)
        p->backoff_us = BACKOFF_MAX_US;
    p->next_try_mono = fr__mono_us() + p->backoff_us;
    atomic_store(&p->reachable, 0);
    atomic_fetch_add(&p->failures, 1);
}

static void mark_broken(fr_redis_conn *c, const char *why, char *err, size_t err_size)
{
    c->broken = 1;
    snprintf(err, err_size, "redis %s: %s", c->pool->url.redacted, why);
    pthread_mutex_lock(&c->pool->mu);
    note_unreachable(c->pool, why);
    pthread_mutex_unlock(&c->pool->mu);
}

/* Connects c->ctx (AUTH, SELECT); called without mu.  FR_OK, or FR_E_NETWORK / FR_E_AUTH
 * with err set. */
static fr_status connect_conn(fr_redis_conn *c, char *err, size_t err_size)
{
    fr_redis_pool *p = c->pool;
    redisContext *ctx =
        redisConnectWithTimeout(p->url.host, p->url.port, tv_us(CONNECT_TIMEOUT_US));
    char why[300];
    if (!ctx || ctx->err) {
        snprintf(why, sizeof why, "connect: %s", ctx ? ctx->errstr : "out of memory");
        if (ctx)
            redisFree(ctx);
        c->ctx = NULL;
        mark_broken(c, why, err, err_size);
        c->broken = 0;
        return FR_E_NETWORK;
    }
    redisSetTimeout(ctx, tv_us(IO_TIMEOUT_US));
    c->ctx = ctx;
    char db[16];
    snprintf(db, sizeof db, "%d", p->url.db);
    const char *auth[] = {"AUTH", p->url.user ? p->url.user : p->url.password, p->url.password};
    const char *select[] = {"SELECT", db};
    int auth_argc = p->url.user ? 3 : 2;
    if (p->url.user && !p->url.password)
        auth_argc = 0; /* a user without a password: nothing to send */
    struct {
        int argc;
        const char **argv;
        const char *what;
    } steps[] = {{p->url.password ? auth_argc : 0, auth, "AUTH"},
                 {p->url.db ? 2 : 0, select, "SELECT"}};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        if (!steps[i].argc)
            continue;
        redisReply *r =
            fr__redis_conn_command(c, steps[i].argc, steps[i].argv, NULL, err, err_size);
        if (!r)
            goto fail;
        if (r->type == REDIS_REPLY_ERROR) {
            snprintf(why, sizeof why, "%s refused: %.200s", steps[i].what, r->str);
            freeReplyObject(r);
            mark_broken(c, why, err, err_size);
            redisFree(c->ctx);
            c->ctx = NULL;
            c->broken = 0;
            return i == 0 ? FR_E_AUTH : FR_E_NETWORK;
        }
        freeReplyObject(r);
    }
    pthread_mutex_lock(&p->mu);
    p->backoff_us = 0;
    p->next_try_mono = 0;
    atomic_store(&p->reachable, 1);
    pthread_mutex_unlock(&p->mu);
    return FR_OK;
fail:
    redisFree(c->ctx);
    c->ctx = NULL;
    c->broken = 0;
    return FR_E_NETWORK;
}

fr_redis_conn *fr__redis_pool_get(fr_redis_pool *p, char *err, size_t err_size)
{
    int64_t deadline = fr__mono_us() + WAIT_US;
    pthread_mutex_lock(&p->mu);
    fr_redis_conn *c = NULL;
    for (;;) {
        /* Prefer a connected one. */
        for (size_t i = 0; i < p->size && !c; i++)
            if (!p->conns[i].in_use && p->conns[i].ctx)
                c = &p->conns[i];
        for (size_t i = 0; i < p->size && !c; i++)
            if (!p->conns[i].in_use)
                c = &p->conns[i];
        if (c)
            break;
        int64_t now = fr__mono_us();
        if (now >= deadline) {
            pthread_mutex_unlock(&p->mu);
            snprintf(err, err_size, "redis %s: all %zu connections busy for 1 s", p->url.redacted,
                     p->size);
            return NULL;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t wait = deadline - now;
        ts.tv_sec += (time_t)(wait / 1000000);
        ts.tv_nsec += (long)(wait % 1000000) * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&p->freed, &p->mu, &ts);
    }
    if (!c->ctx && fr__mono_us() < p->next_try_mono) {
        snprintf(err, err_size, "redis %s: unreachable (%s); retrying", p->url.redacted,
                 p->last_err);
        pthread_mutex_unlock(&p->mu);
        return NULL;
    }
    c->in_use = 1;
    c->broken = 0;
    pthread_mutex_unlock(&p->mu);
    if (!c->ctx && connect_conn(c, err, err_size) != FR_OK) {
        fr__redis_pool_put(p, c);
        return NULL;
    }
    return c;
}

void fr__redis_pool_put(fr_redis_pool *p, fr_redis_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&p->mu);
    if (c->broken && c->ctx) {
        redisFree(c->ctx);
        c->ctx = NULL;
    }
    c->broken = 0;
    c->in_use = 0;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->mu);
}

static void transport_failed(fr_redis_conn *c, char *err, size_t err_size)
{
    char why[256];
    snprintf(why, sizeof why, "%s", c->ctx->errstr[0] ? c->ctx->errstr : "connection lost");
    mark_broken(c, why, err, err_size);
}

redisReply *fr__redis_conn_command(fr_redis_conn *c, int argc, const char **argv,
                                   const size_t *lens, char *err, size_t err_size)
{
    atomic_fetch_add(&c->pool->round_trips, 1);
    redisReply *r = redisCommandArgv(c->ctx, argc, argv, lens);
    if (!r)
        transport_failed(c, err, err_size);
    return r;
}

int fr__redis_conn_pipeline(fr_redis_conn *c, size_t n, const int *argcs,
                            const char *const *argvs[], const size_t *const *lens,
                            redisReply **replies, char *err, size_t err_size)
{
    for (size_t i = 0; i < n; i++)
        replies[i] = NULL;
    atomic_fetch_add(&c->pool->round_trips, 1);
    for (size_t i = 0; i < n; i++)
        if (redisAppendCommandArgv(c->ctx, argcs[i], (const char **)argvs[i],
                                   lens ? lens[i] : NULL) != REDIS_OK) {
            transport_failed(c, err, err_size);
            return -1;
        }
    for (size_t i = 0; i < n; i++) {
        void *r = NULL;
        if (redisGetReply(c->ctx, &r) != REDIS_OK || !r) {
            for (size_t j = 0; j < i; j++) {
                freeReplyObject(replies[j]);
                replies[j] = NULL;
            }
            transport_failed(c, err, err_size);
            return -1;
        }
        replies[i] = r;
    }
    return 0;
}

/* Loads `s` (SCRIPT LOAD) and records its sha1.  0, or -1 with err set. */
static int script_load(fr_redis_conn *c, fr_redis_script *s, char *err, size_t err_size)
{
    const char *argv[] = {"SCRIPT", "LOAD", s->lua};
    redisReply *r = fr__redis_conn_command(c, 3, argv, NULL, err, err_size);
    if (!r)
        return -1;
    int ok = r->type == REDIS_REPLY_STRING && r->len == 40;
    if (ok) {
        pthread_mutex_lock(&c->pool->mu);
        memcpy(s->sha1, r->str, 40);
        s->sha1[40] = '\0';
        pthread_mutex_unlock(&c->pool->mu);
    } else {
        snprintf(err, err_size, "redis %s: SCRIPT LOAD refused: %.200s", c->pool->url.redacted,
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }
    freeReplyObject(r);
    return ok ? 0 : -1;
}

redisReply *fr__redis_conn_eval(fr_redis_conn *c, fr_redis_script *s, int numkeys, int argc,
                                const char **argv, const size_t *lens, char *err, size_t err_size)
{
    char sha1[41];
    pthread_mutex_lock(&c->pool->mu);
    memcpy(sha1, s->sha1, sizeof sha1);
    pthread_mutex_unlock(&c->pool->mu);
    if (!sha1[0]) {
        if (script_load(c, s, err, err_size) != 0)
            return NULL;
        pthread_mutex_lock(&c->pool->mu);
        memcpy(sha1, s->sha1, sizeof sha1);
        pthread_mutex_unlock(&c->pool->mu);
    }
    enum { MAX_ARGS = 64 };
    if (argc > MAX_ARGS - 3) {
        snprintf(err, err_size, "redis: a script with %d arguments (at most %d)", argc,
                 MAX_ARGS - 3);
        return NULL;
    }
    char nk[16];
    snprintf(nk, sizeof nk, "%d", numkeys);
    const char *av[MAX_ARGS];
    size_t al[MAX_ARGS];
    av[0] = "EVALSHA";
    av[1] = sha1;
    av[2] = nk;
    al[0] = 7;
    al[1] = 40;
    al[2] = strlen(nk);
    for (int i = 0; i < argc; i++) {
        av[3 + i] = argv[i];
        al[3 + i] = lens ? lens[i] : strlen(argv[i]);
    }
    for (int attempt = 0;; attempt++) {
        redisReply *r = fr__redis_conn_command(c, argc + 3, av, al, err, err_size);
        if (!r || r->type != REDIS_REPLY_ERROR || strncmp(r->str, "NOSCRIPT", 8) != 0 || attempt)
            return r;
        /* Redis lost its scripts (a restart): load it again, once. */
        freeReplyObject(r);
        if (script_load(c, s, err, err_size) != 0)
            return NULL;
        pthread_mutex_lock(&c->pool->mu);
        memcpy(sha1, s->sha1, sizeof sha1);
        pthread_mutex_unlock(&c->pool->mu);
    }
}

/* An error reply becomes NULL with its text in err. */
static redisReply *no_error_reply(fr_redis_pool *p, redisReply *r, char *err, size_t err_size)
{
    if (r && r->type == REDIS_REPLY_ERROR) {
        snprintf(err, err_size, "redis %s: %.200s", p->url.redacted, r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

redisReply *fr__redis_command(fr_redis_pool *p, int argc, const char **argv, const size_t *lens,
                              char *err, size_t err_size)
{
    fr_redis_conn *c = fr__redis_pool_get(p, err, err_size);
    if (!c)
        return NULL;
    redisReply *r = fr__redis_conn_command(c, argc, argv, lens, err, err_size);
    fr__redis_pool_put(p, c);
    return no_error_reply(p, r, err, err_size);
}

redisReply *fr__redis_eval(fr_redis_pool *p, fr_redis_script *s, int numkeys, int argc,
                           const char **argv, const size_t *lens, char *err, size_t err_size)
{
    fr_redis_conn *c = fr__redis_pool_get(p, err, err_size);
    if (!c)
        return NULL;
    redisReply *r = fr__redis_conn_eval(c, s, numkeys, argc, argv, lens, err, err_size);
    fr__redis_pool_put(p, c);
    return no_error_reply(p, r, err, err_size);
}

int fr__redis_pool_reachable(fr_redis_pool *p)
{
    return atomic_load(&p->reachable);
}

uint64_t fr__redis_pool_round_trips(const fr_redis_pool *p)
{
    return atomic_load(&((fr_redis_pool *)p)->round_trips);
}

uint64_t fr__redis_pool_failures(const fr_redis_pool *p)
{
    return atomic_load(&((fr_redis_pool *)p)->failures);
}

/* CONFIG GET name -> its value into out; 0, or -1 with the reason in out. */
static int config_get(fr_redis_pool *p, const char *name, char *out, size_t size)
{
    const char *argv[] = {"CONFIG", "GET", name};
    char err[300];
    redisReply *r = fr__redis_command(p, 3, argv, NULL, err, sizeof err);
    if (!r) {
        snprintf(out, size, "cannot read %s: %.300s", name, err);
        return -1;
    }
    int ok = r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
             r->element[1]->type == REDIS_REPLY_STRING;
    if (ok)
        snprintf(out, size, "%s", r->element[1]->str);
    else
        snprintf(out, size, "cannot read %s: unexpected reply", name);
    freeReplyObject(r);
    return ok ? 0 : -1;
}

int fr__redis_pool_durability(fr_redis_pool *p, char *out, size_t size)
{
    char aof[400], fsync[400];
    if (config_get(p, "appendonly", aof, sizeof aof) != 0) {
        snprintf(out, size, "redis %s: durability unknown (%s)", p->url.redacted, aof);
        return -1;
    }
    if (config_get(p, "appendfsync", fsync, sizeof fsync) != 0) {
        snprintf(out, size, "redis %s: durability unknown (%s)", p->url.redacted, fsync);
        return -1;
    }
    if (!strcmp(aof, "yes") && !strcmp(fsync, "always"))
        return 0;
    snprintf(out, size,
             "redis %s has appendonly %s and appendfsync %s: an acknowledged run may be lost if "
             "Redis crashes; set appendonly yes and appendfsync always (docs/scaling.md)",
             p->url.redacted, aof, fsync);
    return 1;
}
