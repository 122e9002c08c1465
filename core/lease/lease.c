/* Coordination leases: configuration, held leases with their renewal thread, and the
 * plugins' host API entries.  The backends live in lease_memory.c, lease_file.c and
 * lease_redis.c. */
#include "lease/lease.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/duration.h"

#define DEFAULT_TTL_US (2LL * 60 * 1000000)

/* ---- configuration ------------------------------------------------------------------ */

/* Trimmed, lower-cased copy of an environment value ("" when unset). */
static void env_word(const char *name, char *out, size_t size)
{
    const char *v = getenv(name);
    size_t n = 0;
    if (!v)
        v = "";
    while (isspace((unsigned char)*v))
        v++;
    for (; *v && n + 1 < size; v++)
        out[n++] = (char)tolower((unsigned char)*v);
    while (n > 0 && isspace((unsigned char)out[n - 1]))
        n--;
    out[n] = '\0';
}

static fr_status set_err(char *err, size_t size, fr_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static fr_status set_err(char *err, size_t size, fr_status st, const char *fmt, ...)
{
    if (err && size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, size, fmt, ap);
        va_end(ap);
    }
    return st;
}

static char *env_dup(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return strdup(v && *v ? v : dflt);
}

fr_status fr__lease_config_from_env(fr_lease_config *cfg, char *err, size_t err_size)
{
    memset(cfg, 0, sizeof *cfg);
    char w[64];
    env_word("COORDINATION_ENABLED", w, sizeof w);
    if (!strcmp(w, "1") || !strcmp(w, "true") || !strcmp(w, "yes") || !strcmp(w, "on"))
        cfg->enabled = 1;
    else if (*w && strcmp(w, "0") && strcmp(w, "false") && strcmp(w, "no") && strcmp(w, "off"))
        return set_err(err, err_size, FR_E_CONFIG,
                       "COORDINATION_ENABLED: expected 1, true, yes, on, 0, false, no or off, "
                       "got \"%.40s\"",
                       getenv("COORDINATION_ENABLED"));
    cfg->ttl_us = DEFAULT_TTL_US;
    if (!cfg->enabled)
        return FR_OK;

    env_word("COORDINATION_MODE", w, sizeof w);
    if (!*w || !strcmp(w, "file"))
        cfg->mode = FR_LEASE_FILE;
    else if (!strcmp(w, "memory"))
        cfg->mode = FR_LEASE_MEMORY;
    else if (!strcmp(w, "redis"))
        cfg->mode = FR_LEASE_REDIS;
    else
        return set_err(err, err_size, FR_E_CONFIG,
                       "COORDINATION_MODE: unknown mode \"%.40s\" (expected memory, file or redis)",
                       getenv("COORDINATION_MODE"));

    const char *ttl = getenv("COORDINATION_TTL");
    if (ttl && *ttl) {
        const char *why = NULL;
        if (fr__duration_parse(ttl, &cfg->ttl_us, &why) != 0)
            return set_err(err, err_size, FR_E_CONFIG,
                           "COORDINATION_TTL: invalid duration \"%.40s\": %s", ttl, why);
        if (cfg->ttl_us < 3000)
            return set_err(err, err_size, FR_E_CONFIG,
                           "COORDINATION_TTL: must be at least 3ms, got \"%.40s\"", ttl);
    }

    const char *tmp = getenv("TMPDIR");
    char dflt[4096];
    snprintf(dflt, sizeof dflt, "%s/fluxroute-coordination", tmp && *tmp ? tmp : "/tmp");
    cfg->dir = env_dup("COORDINATION_DIR", dflt);
    cfg->redis_prefix = env_dup("COORDINATION_REDIS_PREFIX", "fluxroute");
    const char *url = getenv("COORDINATION_REDIS_URL");
    cfg->redis_url = url && *url ? strdup(url) : NULL;
    if (!cfg->dir || !cfg->redis_prefix || (url && *url && !cfg->redis_url)) {
        fr__lease_config_free(cfg);
        return set_err(err, err_size, FR_E_NOMEM, "out of memory");
    }
    if (cfg->mode == FR_LEASE_REDIS && !cfg->redis_url) {
        fr__lease_config_free(cfg);
        return set_err(err, err_size, FR_E_CONFIG,
                       "COORDINATION_REDIS_URL: required when COORDINATION_MODE is redis");
    }
    return FR_OK;
}

void fr__lease_config_free(fr_lease_config *cfg)
{
    free(cfg->dir);
    free(cfg->redis_url);
    free(cfg->redis_prefix);
    cfg->dir = cfg->redis_url = cfg->redis_prefix = NULL;
}

const char *fr__lease_mode_name(fr_lease_mode mode)
{
    switch (mode) {
    case FR_LEASE_MEMORY: return "memory";
    case FR_LEASE_FILE: return "file";
    case FR_LEASE_REDIS: return "redis";
    }
    return "?";
}

/* ---- backends ------------------------------------------------------------------------- */

static fr_status open_memory(fr_lease_backend *b, const fr_lease_config *cfg, char *err,
                             size_t err_size)
{
    (void)cfg;
    return fr__lease_memory_open(b, err, err_size);
}

static fr_status open_file(fr_lease_backend *b, const fr_lease_config *cfg, char *err,
                           size_t err_size)
{
    return fr__lease_file_open(b, cfg->dir, err, err_size);
}

/* The backend registry, indexed by mode: memory and file built in, the others (redis)
 * registered by the program that links them (fr__lease_backend_register). */
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static fr_lease_backend_open_fn registry[FR_LEASE_REDIS + 1] = {
    [FR_LEASE_MEMORY] = open_memory,
    [FR_LEASE_FILE] = open_file,
};

fr_status fr__lease_backend_register(const char *name, fr_lease_backend_open_fn open)
{
    for (size_t m = 0; m < sizeof registry / sizeof registry[0]; m++) {
        if (name && !strcmp(name, fr__lease_mode_name((fr_lease_mode)m))) {
            pthread_mutex_lock(&registry_mu);
            registry[m] = open;
            pthread_mutex_unlock(&registry_mu);
            return FR_OK;
        }
    }
    return FR_E_INVALID;
}

fr_status fr__lease_backend_open(const fr_lease_config *cfg, fr_lease_backend **out, char *err,
                                 size_t err_size)
{
    *out = NULL;
    if ((unsigned)cfg->mode >= sizeof registry / sizeof registry[0])
        return set_err(err, err_size, FR_E_CONFIG, "unknown coordination mode");
    pthread_mutex_lock(&registry_mu);
    fr_lease_backend_open_fn open = registry[cfg->mode];
    pthread_mutex_unlock(&registry_mu);
    if (!open)
        return set_err(err, err_size, FR_E_CONFIG,
                       "lease backend '%s' is not available in this library; use "
                       "COORDINATION_MODE=memory or file (the fluxroute command and server "
                       "have '%s')",
                       fr__lease_mode_name(cfg->mode), fr__lease_mode_name(cfg->mode));
    fr_lease_backend *b = calloc(1, sizeof *b);
    if (!b)
        return set_err(err, err_size, FR_E_NOMEM, "out of memory");
    b->mode = cfg->mode;
    fr_status st = open(b, cfg, err, err_size);
    if (st != FR_OK) {
        free(b->describe);
        free(b);
        return st;
    }
    *out = b;
    return FR_OK;
}

void fr__lease_backend_close(fr_lease_backend *b)
{
    if (!b)
        return;
    if (b->ops->destroy)
        b->ops->destroy(b);
    free(b->describe);
    free(b);
}

const char *fr__lease_backend_describe(const fr_lease_backend *b)
{
    return b->describe;
}

fr_status fr__lease_try_acquire(fr_lease_backend *b, const char *key, const char *holder,
                                int64_t ttl_us, uint64_t *token, fr_lease_info *held, char *err,
                                size_t err_size)
{
    fr_lease_info scratch;
    return b->ops->acquire(b, NULL, key, holder, ttl_us, token, held ? held : &scratch, err,
                           err_size);
}

fr_status fr__lease_renew_as(fr_lease_backend *b, const char *key, const char *holder,
                             uint64_t token, int64_t ttl_us, fr_lease_info *held, char *err,
                             size_t err_size)
{
    fr_lease_info scratch;
    return b->ops->renew(b, NULL, key, holder, token, ttl_us, held ? held : &scratch, err,
                         err_size);
}

fr_status fr__lease_release_as(fr_lease_backend *b, const char *key, const char *holder,
                               uint64_t token, fr_lease_info *held, char *err, size_t err_size)
{
    fr_lease_info scratch;
    return b->ops->release(b, NULL, key, holder, token, held ? held : &scratch, err, err_size);
}

void fr__lease_info_format(const fr_lease_info *info, char *out, size_t size)
{
    if (!info->holder[0]) {
        snprintf(out, size, "free");
        return;
    }
    char d[32] = "?";
    if (info->expires_in_us >= 0)
        fr__duration_format(info->expires_in_us, d, sizeof d);
    snprintf(out, size, "held by %s (fencing token %" PRIu64 ", expires in %s)", info->holder,
             info->token, d);
}

/* ---- held leases ------------------------------------------------------------------------ */

struct fr_lease {
    fr_lease_backend *b;
    char *key;
    char holder[FR_LEASE_HOLDER_MAX];
    uint64_t token;
    int64_t ttl_us;
    fr_lease_lost_fn on_lost;
    void *on_lost_ud;

    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    int stop;          /* set by release */
    atomic_int lost;   /* read by any thread */
    atomic_long renewals;
    int64_t valid_until_mono; /* the lease is surely ours until then */
};

/* "host:pid:8 hex digits": unique per lease, readable in messages. */
static void make_holder(char *out, size_t size)
{
    char host[64] = "localhost";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (uint32_t)fr__mono_us() ^ (uint32_t)(uintptr_t)out;
    snprintf(out, size, "%.60s:%ld:%08" PRIx32, host, (long)getpid(), r);
}

static struct timespec mono_ts(int64_t us)
{
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    return ts;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static void *renew_main(void *arg)
{
    pthread_setname_np(pthread_self(), "fr-lease");
    fr_lease *l = arg;
    fr_lease_conn *conn = l->b->ops->conn_new ? l->b->ops->conn_new(l->b) : NULL;
    int64_t period = l->ttl_us / 3;
    int64_t retry = clamp64(l->ttl_us / 20, 5000, 1000000);
    char msg[512] = "";
    pthread_mutex_lock(&l->mu);
    int64_t next = fr__mono_us() + period;
    while (!l->stop) {
        struct timespec ts = mono_ts(next);
        if (fr__mono_us() < next) {
            pthread_cond_timedwait(&l->cv, &l->mu, &ts);
            continue;
        }
        pthread_mutex_unlock(&l->mu);
        char err[384] = "";
        fr_lease_info held;
        int64_t t0 = fr__mono_us();
        fr_status st = l->b->ops->renew(l->b, conn, l->key, l->holder, l->token, l->ttl_us, &held,
                                        err, sizeof err);
        int64_t now = fr__mono_us();
        pthread_mutex_lock(&l->mu);
        if (st == FR_OK) {
            l->valid_until_mono = t0 + l->ttl_us;
            atomic_fetch_add(&l->renewals, 1);
            next = t0 + period;
        } else if (st == FR_E_LEASE_LOST) {
            if (held.holder[0])
                snprintf(msg, sizeof msg, "lease %s: renewal refused (held by %s)", l->key,
                         held.holder);
            else
                snprintf(msg, sizeof msg, "lease %s: renewal refused (it expired or was deleted)",
                         l->key);
            break;
        } else if (now >= l->valid_until_mono) {
            snprintf(msg, sizeof msg,
                     "lease %s: coordination backend unreachable for longer than the TTL (%s)",
                     l->key, err);
            break;
        } else {
            next = now + retry < l->valid_until_mono ? now + retry : l->valid_until_mono;
        }
    }
    if (msg[0])
        atomic_store(&l->lost, 1);
    pthread_mutex_unlock(&l->mu);
    if (msg[0] && l->on_lost)
        l->on_lost(l->on_lost_ud, l, msg);
    if (conn)
        l->b->ops->conn_free(conn);
    return NULL;
}

static void lease_free(fr_lease *l)
{
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l->key);
    free(l);
}

fr_status fr__lease_acquire(fr_lease_backend *b, const char *key, const fr_lease_acquire_opts *opts,
                            fr_lease **out, char *err, size_t err_size)
{
    *out = NULL;
    if (!key || !*key || opts->ttl_us <= 0)
        return set_err(err, err_size, FR_E_INVALID, "lease: empty key or TTL not positive");
    fr_lease *l = calloc(1, sizeof *l);
    if (!l || !(l->key = strdup(key))) {
        free(l);
        return set_err(err, err_size, FR_E_NOMEM, "out of memory");
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&l->mu, NULL);
    l->b = b;
    l->ttl_us = opts->ttl_us;
    l->on_lost = opts->on_lost;
    l->on_lost_ud = opts->on_lost_ud;
    make_holder(l->holder, sizeof l->holder);

    int64_t start = fr__mono_us();
    int64_t poll = 10000;
    for (;;) {
        fr_lease_info held;
        char berr[384] = "";
        int64_t t0 = fr__mono_us();
        fr_status st = b->ops->acquire(b, NULL, key, l->holder, l->ttl_us, &l->token, &held, berr,
                                       sizeof berr);
        if (st == FR_OK) {
            l->valid_until_mono = t0 + l->ttl_us;
            break;
        }
        int64_t now = fr__mono_us();
        int waiting = opts->wait_us < 0 || now - start < opts->wait_us;
        if (st == FR_E_UNAVAILABLE && !waiting) {
            char h[FR_LEASE_HOLDER_MAX + 96];
            fr__lease_info_format(&held, h, sizeof h);
            lease_free(l);
            return set_err(err, err_size, FR_E_UNAVAILABLE, "lease %s is %s", key, h);
        }
        if (st != FR_E_UNAVAILABLE && (!waiting || st == FR_E_NOMEM || st == FR_E_INVALID)) {
            lease_free(l);
            return set_err(err, err_size, st, "%s", berr);
        }
        fr_status stop = opts->should_stop ? opts->should_stop(opts->stop_ud) : FR_OK;
        if (stop != FR_OK) {
            lease_free(l);
            return set_err(err, err_size, stop, "lease %s: wait interrupted", key);
        }
        /* Poll with a growing interval (10ms .. 200ms), never past the end of the wait. */
        int64_t d = poll;
        if (opts->wait_us >= 0 && start + opts->wait_us - now < d)
            d = start + opts->wait_us - now;
        if (d > 0) {
            struct timespec ts = {(time_t)(d / 1000000), (long)(d % 1000000) * 1000};
            nanosleep(&ts, NULL);
        }
        poll = poll * 3 / 2 > 200000 ? 200000 : poll * 3 / 2;
    }
    if (pthread_create(&l->thread, NULL, renew_main, l) != 0) {
        b->ops->release(b, NULL, key, l->holder, l->token, &(fr_lease_info){0}, NULL, 0);
        lease_free(l);
        return set_err(err, err_size, FR_E_NOMEM, "lease %s: cannot start renewal thread", key);
    }
    l->thread_started = 1;
    *out = l;
    return FR_OK;
}

fr_status fr__lease_release(fr_lease *l, char *err, size_t err_size)
{
    if (!l)
        return FR_OK;
    if (l->thread_started) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_signal(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    fr_lease_info held;
    char berr[384] = "";
    /* Even a lost lease is released: the token check makes it a no-op unless it is
     * still ours (e.g. it was lost only through an unreachable backend). */
    fr_status st =
        l->b->ops->release(l->b, NULL, l->key, l->holder, l->token, &held, berr, sizeof berr);
    if (st == FR_OK && atomic_load(&l->lost))
        st = FR_E_LEASE_LOST;
    if (st == FR_E_LEASE_LOST)
        set_err(err, err_size, st, "lease %s was lost before its release", l->key);
    else if (st != FR_OK)
        set_err(err, err_size, st, "%s", berr);
    lease_free(l);
    return st;
}

const char *fr__lease_key(const fr_lease *l)
{
    return l->key;
}

const char *fr__lease_holder(const fr_lease *l)
{
    return l->holder;
}

uint64_t fr__lease_token(const fr_lease *l)
{
    return l->token;
}

int fr__lease_is_lost(const fr_lease *l)
{
    return atomic_load(&((fr_lease *)l)->lost);
}

long fr__lease_renewals(const fr_lease *l)
{
    return atomic_load(&((fr_lease *)l)->renewals);
}
