/* The Redis lease backend (hiredis 0.14).  The lease is the key "<prefix>:<key>" whose
 * value is "<token> <holder>" and whose PX expiry is the TTL; the fencing counter is the
 * key "<prefix>-fencing:<key>", which never expires.  Acquire, renew and release are Lua
 * scripts, so each check-and-change is atomic on the server.
 *
 * hiredis connections are not thread-safe: the backend's shared connection is used under
 * a mutex, and each renewal thread gets a connection of its own.  A broken connection is
 * dropped and re-established on the next call, with exponential backoff.  Messages name
 * the URL with its password replaced by ***. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "base/clock.h"
#include "lease/lease.h"

#define CONNECT_TIMEOUT_US 500000
#define IO_TIMEOUT_US      1000000
#define BACKOFF_MIN_US     20000
#define BACKOFF_MAX_US     2000000

/* ---- URLs ------------------------------------------------------------------------------ */

/* Copies `url` into out with the password of its user info replaced by ***. */
static void redact_raw(const char *url, char *out, size_t size)
{
    const char *s = strstr(url, "://");
    const char *auth = s ? s + 3 : url;
    const char *end = auth + strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *p = auth; p < end; p++)
        if (*p == '@')
            at = p;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon)
        snprintf(out, size, "%s", url);
    else
        snprintf(out, size, "%.*s***%s", (int)(colon + 1 - url), url, at);
}

/* Percent-decodes [s, s+n) into a new string; NULL on a bad escape or OOM. */
static char *pct_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n || !isxdigit((unsigned char)s[i + 1]) ||
                !isxdigit((unsigned char)s[i + 2])) {
                free(out);
                return NULL;
            }
            char hex[3] = {s[i + 1], s[i + 2], 0};
            *o++ = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

/* Parses [s, s+n) as a decimal integer in [lo, hi]; -1 when it is not one. */
static long parse_num(const char *s, size_t n, long lo, long hi)
{
    if (n == 0 || n > 9)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v < lo || v > hi ? -1 : v;
}

fr_status fr__redis_url_parse(const char *url, fr_redis_url *out, char *err, size_t err_size)
{
    return fr__redis_url_parse_as(url, "COORDINATION_REDIS_URL", out, err, err_size);
}

fr_status fr__redis_url_parse_as(const char *url, const char *what, fr_redis_url *out, char *err,
                                 size_t err_size)
{
    memset(out, 0, sizeof *out);
    char shown[512];
    redact_raw(url ? url : "", shown, sizeof shown);
#define BAD(...)                                                 \
    do {                                                         \
        char why_[256];                                          \
        snprintf(why_, sizeof why_, __VA_ARGS__);                \
        snprintf(err, err_size, "%s %s: %s", what, shown, why_); \
        fr__redis_url_free(out);                                 \
        return FR_E_CONFIG;                                      \
    } while (0)
    if (!url || !*url) {
        snprintf(err, err_size, "%s: empty", what);
        return FR_E_CONFIG;
    }
    if (!strncasecmp(url, "rediss://", 9))
        BAD("TLS (rediss://) is not supported: this build uses hiredis 0.14, which has no TLS; "
            "use redis:// on a trusted network or through a TLS tunnel");
    if (strncasecmp(url, "redis://", 8) != 0)
        BAD("expected redis://[user:password@]host[:port][/db]");
    const char *auth = url + 8;
    size_t auth_len = strcspn(auth, "/?#");
    const char *rest = auth + auth_len;
    const char *at = NULL;
    for (const char *p = auth; p < rest; p++)
        if (*p == '@')
            at = p;
    const char *hostport = auth;
    if (at) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        size_t user_len = colon ? (size_t)(colon - auth) : (size_t)(at - auth);
        if (user_len && !(out->user = pct_decode(auth, user_len)))
            BAD("bad %%-escape in the user name");
        if (colon && !(out->password = pct_decode(colon + 1, (size_t)(at - colon - 1))))
            BAD("bad %%-escape in the password");
        hostport = at + 1;
    }
    size_t hp_len = (size_t)(rest - hostport);
    const char *port_s = NULL;
    size_t host_len;
    if (hp_len && hostport[0] == '[') {
        const char *close = memchr(hostport, ']', hp_len);
        if (!close)
            BAD("unterminated [ in the host");
        out->host = strndup(hostport + 1, (size_t)(close - hostport - 1));
        host_len = (size_t)(close - hostport - 1);
        if (close + 1 < rest) {
            if (close[1] != ':')
                BAD("unexpected text after ]");
            port_s = close + 2;
        }
    } else {
        const char *colon = memchr(hostport, ':', hp_len);
        host_len = colon ? (size_t)(colon - hostport) : hp_len;
        out->host = strndup(hostport, host_len);
        port_s = colon ? colon + 1 : NULL;
    }
    if (!out->host)
        BAD("out of memory");
    if (host_len == 0)
        BAD("missing host");
    out->port = 6379;
    if (port_s) {
        long port = parse_num(port_s, (size_t)(rest - port_s), 1, 65535);
        if (port < 0)
            BAD("port must be a number from 1 to 65535");
        out->port = (int)port;
    }
    if (*rest == '?' || *rest == '#')
        BAD("query parameters are not supported");
    if (*rest == '/' && rest[1]) {
        long db = parse_num(rest + 1, strlen(rest + 1), 0, INT_MAX);
        if (db < 0)
            BAD("database must be a non-negative number (redis://host:port/0)");
        out->db = (int)db;
    }
    char red[600];
    int v6 = strchr(out->host, ':') != NULL;
    snprintf(red, sizeof red, "redis://%s%s%s%s%s%s:%d/%d", out->user ? out->user : "",
             out->password ? ":***" : "", out->user || out->password ? "@" : "", v6 ? "[" : "",
             out->host, v6 ? "]" : "", out->port, out->db);
    if (!(out->redacted = strdup(red)))
        BAD("out of memory");
#undef BAD
    return FR_OK;
}

void fr__redis_url_free(fr_redis_url *u)
{
    free(u->host);
    free(u->user);
    free(u->password);
    free(u->redacted);
    memset(u, 0, sizeof *u);
}

/* ---- connections ------------------------------------------------------------------------- */

struct fr_lease_conn {
    const struct redis_impl *impl;
    redisContext *ctx;
    int64_t next_try_mono; /* no reconnect before then (backoff) */
    int64_t backoff_us;
    char last_err[256];
};

typedef struct redis_impl {
    fr_redis_url url;
    char *prefix;
    pthread_mutex_t mu; /* guards `shared` */
    fr_lease_conn shared;
} redis_impl;

static struct timeval tv_us(int64_t us)
{
    struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};
    return tv;
}

static void conn_drop(fr_lease_conn *c, const char *why)
{
    if (c->ctx)
        redisFree(c->ctx);
    c->ctx = NULL;
    snprintf(c->last_err, sizeof c->last_err, "%s", why);
    c->backoff_us = c->backoff_us ? c->backoff_us * 2 : BACKOFF_MIN_US;
    if (c->backoff_us > BACKOFF_MAX_US)
        c->backoff_us = BACKOFF_MAX_US;
    c->next_try_mono = fr__mono_us() + c->backoff_us;
}

/* Runs one command; on a transport failure drops the connection.  Returns the reply
 * (caller frees) or NULL with err set. */
static redisReply *conn_command(fr_lease_conn *c, int argc, const char **argv, char *err,
                                size_t err_size)
{
    redisReply *r = redisCommandArgv(c->ctx, argc, argv, NULL);
    if (!r) {
        char why[256];
        snprintf(why, sizeof why, "%s", c->ctx->errstr[0] ? c->ctx->errstr : "connection lost");
        conn_drop(c, why);
        snprintf(err, err_size, "redis %s: %s", c->impl->url.redacted, why);
    }
    return r;
}

/* Connects (AUTH, SELECT) unless connected or backing off.  FR_OK or FR_E_NETWORK /
 * FR_E_AUTH with err set. */
static fr_status conn_ensure(fr_lease_conn *c, char *err, size_t err_size)
{
    const redis_impl *im = c->impl;
    if (c->ctx)
        return FR_OK;
    if (fr__mono_us() < c->next_try_mono) {
        snprintf(err, err_size, "redis %s: unreachable (%s); retrying", im->url.redacted,
                 c->last_err);
        return FR_E_NETWORK;
    }
    c->ctx = redisConnectWithTimeout(im->url.host, im->url.port, tv_us(CONNECT_TIMEOUT_US));
    if (!c->ctx || c->ctx->err) {
        char why[256];
        snprintf(why, sizeof why, "connect: %s", c->ctx ? c->ctx->errstr : "out of memory");
        conn_drop(c, why);
        snprintf(err, err_size, "redis %s: %s", im->url.redacted, why);
        return FR_E_NETWORK;
    }
    redisSetTimeout(c->ctx, tv_us(IO_TIMEOUT_US));
    char db[16];
    snprintf(db, sizeof db, "%d", im->url.db);
    const char *auth1[] = {"AUTH", im->url.password};
    const char *auth2[] = {"AUTH", im->url.user ? im->url.user : "", im->url.password};
    const char *select[] = {"SELECT", db};
    const char *ping[] = {"PING"};
    struct {
        int argc;
        const char **argv;
        const char *what;
    } steps[] = {{im->url.user ? 3 : 2, im->url.user ? auth2 : auth1, "AUTH"},
                 {2, select, "SELECT"},
                 {1, ping, "PING"}};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        if (i == 0 && !im->url.password)
            continue;
        if (i == 1 && im->url.db == 0)
            continue;
        redisReply *r = conn_command(c, steps[i].argc, steps[i].argv, err, err_size);
        if (!r)
            return FR_E_NETWORK;
        if (r->type == REDIS_REPLY_ERROR) {
            char why[256];
            snprintf(why, sizeof why, "%s refused: %.200s", steps[i].what, r->str);
            freeReplyObject(r);
            conn_drop(c, why);
            snprintf(err, err_size, "redis %s: %s", im->url.redacted, why);
            return i == 0 ? FR_E_AUTH : FR_E_NETWORK;
        }
        freeReplyObject(r);
    }
    c->backoff_us = 0;
    return FR_OK;
}

/* ---- scripts ------------------------------------------------------------------------------ */

/* KEYS: lease, counter.  ARGV: holder, ttl ms.  -> {1, token} | {0, value, pttl} */
static const char ACQUIRE_LUA[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur then return {0, cur, redis.call('PTTL', KEYS[1])} end\n"
    "local t = redis.call('INCR', KEYS[2])\n"
    "redis.call('SET', KEYS[1], string.format('%d', t) .. ' ' .. ARGV[1], 'NX', 'PX', ARGV[2])\n"
    "return {1, t}\n";
/* KEYS: lease.  ARGV: "token holder", ttl ms.  -> {1} | {0, value, pttl} | {0} */
static const char RENEW_LUA[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return {1} end\n"
    "if cur then return {0, cur, redis.call('PTTL', KEYS[1])} end\n"
    "return {0}\n";
/* KEYS: lease.  ARGV: "token holder".  -> {1} | {0, value, pttl} | {0} */
static const char RELEASE_LUA[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur == ARGV[1] then redis.call('DEL', KEYS[1]) return {1} end\n"
    "if cur then return {0, cur, redis.call('PTTL', KEYS[1])} end\n"
    "return {0}\n";

/* Fills *held from a "{0, value, pttl}" reply: value "token holder" (or anything a
 * third party wrote, shown whole). */
static void reply_held(const redisReply *r, fr_lease_info *held)
{
    memset(held, 0, sizeof *held);
    held->expires_in_us = -1;
    if (r->elements < 2 || r->element[1]->type != REDIS_REPLY_STRING)
        return;
    const char *v = r->element[1]->str;
    char *end;
    unsigned long long t = strtoull(v, &end, 10);
    if (end != v && *end == ' ' && end[1]) {
        held->token = t;
        v = end + 1;
    }
    snprintf(held->holder, sizeof held->holder, "%s", v);
    if (r->elements >= 3 && r->element[2]->type == REDIS_REPLY_INTEGER &&
        r->element[2]->integer >= 0)
        held->expires_in_us = r->element[2]->integer * 1000;
}

/* Runs a script on conn c (NULL: the shared one, under the mutex).  Returns FR_OK with
 * *ok (first element) and *out (the reply; caller frees), or an error with err set. */
static fr_status run_script(fr_lease_backend *b, fr_lease_conn *c, const char *script, int nkeys,
                            const char **keys, int nargs, const char **args, redisReply **out,
                            char *err, size_t err_size)
{
    redis_impl *im = b->impl;
    int shared = c == NULL;
    if (shared) {
        pthread_mutex_lock(&im->mu);
        c = &im->shared;
    }
    *out = NULL;
    char nk[8];
    snprintf(nk, sizeof nk, "%d", nkeys);
    const char *argv[8] = {"EVAL", script, nk};
    int argc = 3;
    for (int i = 0; i < nkeys; i++)
        argv[argc++] = keys[i];
    for (int i = 0; i < nargs; i++)
        argv[argc++] = args[i];
    fr_status st = conn_ensure(c, err, err_size);
    redisReply *r = NULL;
    if (st == FR_OK && !(r = conn_command(c, argc, argv, err, err_size)))
        st = FR_E_NETWORK;
    if (st == FR_OK && (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
                        r->element[0]->type != REDIS_REPLY_INTEGER)) {
        snprintf(err, err_size, "redis %s: unexpected script reply: %.200s", im->url.redacted,
                 r->type == REDIS_REPLY_ERROR ? r->str : "not an array");
        freeReplyObject(r);
        st = FR_E_BAD_RESPONSE;
    } else if (st == FR_OK) {
        *out = r;
    }
    if (shared)
        pthread_mutex_unlock(&im->mu);
    return st;
}

/* "<prefix>:<key>" and "<prefix>-fencing:<key>": different prefixes, so no lease key can
 * collide with a counter. */
static int redis_keys(const redis_impl *im, const char *key, char *lease, char *counter,
                      size_t size, char *err, size_t err_size)
{
    if ((size_t)snprintf(lease, size, "%s:%s", im->prefix, key) >= size ||
        (size_t)snprintf(counter, size, "%s-fencing:%s", im->prefix, key) >= size) {
        snprintf(err, err_size, "lease key too long: %.60s...", key);
        return -1;
    }
    return 0;
}

static fr_status redis_acquire(fr_lease_backend *b, fr_lease_conn *c, const char *key,
                               const char *holder, int64_t ttl_us, uint64_t *token,
                               fr_lease_info *held, char *err, size_t err_size)
{
    char lk[1024], ck[1024], ms[32];
    if (redis_keys(b->impl, key, lk, ck, sizeof lk, err, err_size) != 0)
        return FR_E_INVALID;
    snprintf(ms, sizeof ms, "%" PRId64, ttl_us / 1000 > 0 ? ttl_us / 1000 : 1);
    const char *keys[] = {lk, ck}, *args[] = {holder, ms};
    redisReply *r;
    fr_status st = run_script(b, c, ACQUIRE_LUA, 2, keys, 2, args, &r, err, err_size);
    if (st != FR_OK)
        return st;
    if (r->element[0]->integer == 1 && r->elements >= 2 &&
        r->element[1]->type == REDIS_REPLY_INTEGER) {
        *token = (uint64_t)r->element[1]->integer;
        memset(held, 0, sizeof *held);
    } else {
        reply_held(r, held);
        st = FR_E_UNAVAILABLE;
    }
    freeReplyObject(r);
    return st;
}

/* Renew (ttl_us > 0) or release (ttl_us == 0). */
static fr_status redis_update(fr_lease_backend *b, fr_lease_conn *c, const char *key,
                              const char *holder, uint64_t token, int64_t ttl_us,
                              fr_lease_info *held, char *err, size_t err_size)
{
    char lk[1024], ck[1024], ms[32], value[FR_LEASE_HOLDER_MAX + 32];
    if (redis_keys(b->impl, key, lk, ck, sizeof lk, err, err_size) != 0)
        return FR_E_INVALID;
    snprintf(ms, sizeof ms, "%" PRId64, ttl_us / 1000 > 0 ? ttl_us / 1000 : 1);
    snprintf(value, sizeof value, "%" PRIu64 " %s", token, holder);
    const char *keys[] = {lk}, *args[] = {value, ms};
    redisReply *r;
    fr_status st = run_script(b, c, ttl_us > 0 ? RENEW_LUA : RELEASE_LUA, 1, keys,
                              ttl_us > 0 ? 2 : 1, args, &r, err, err_size);
    if (st != FR_OK)
        return st;
    memset(held, 0, sizeof *held);
    if (r->element[0]->integer != 1) {
        reply_held(r, held);
        st = FR_E_LEASE_LOST;
    }
    freeReplyObject(r);
    return st;
}

static fr_status redis_renew(fr_lease_backend *b, fr_lease_conn *c, const char *key,
                             const char *holder, uint64_t token, int64_t ttl_us,
                             fr_lease_info *held, char *err, size_t err_size)
{
    return redis_update(b, c, key, holder, token, ttl_us > 0 ? ttl_us : 1, held, err, err_size);
}

static fr_status redis_release(fr_lease_backend *b, fr_lease_conn *c, const char *key,
                               const char *holder, uint64_t token, fr_lease_info *held, char *err,
                               size_t err_size)
{
    return redis_update(b, c, key, holder, token, 0, held, err, err_size);
}

static fr_lease_conn *redis_conn_new(fr_lease_backend *b)
{
    fr_lease_conn *c = calloc(1, sizeof *c);
    if (c)
        c->impl = b->impl;
    return c;
}

static void redis_conn_free(fr_lease_conn *c)
{
    if (c && c->ctx)
        redisFree(c->ctx);
    free(c);
}

static void redis_destroy(fr_lease_backend *b)
{
    redis_impl *im = b->impl;
    if (im->shared.ctx)
        redisFree(im->shared.ctx);
    pthread_mutex_destroy(&im->mu);
    fr__redis_url_free(&im->url);
    free(im->prefix);
    free(im);
}

static const fr_lease_ops redis_ops = {
    .acquire = redis_acquire,
    .renew = redis_renew,
    .release = redis_release,
    .conn_new = redis_conn_new,
    .conn_free = redis_conn_free,
    .destroy = redis_destroy,
};

fr_status fr__lease_redis_open(fr_lease_backend *b, const fr_lease_config *cfg, char *err,
                               size_t err_size)
{
    const char *url = cfg->redis_url, *prefix = cfg->redis_prefix;
    redis_impl *im = calloc(1, sizeof *im);
    if (!im) {
        snprintf(err, err_size, "out of memory");
        return FR_E_NOMEM;
    }
    fr_status st = fr__redis_url_parse(url, &im->url, err, err_size);
    if (st == FR_OK && (!prefix || !*prefix)) {
        snprintf(err, err_size, "COORDINATION_REDIS_PREFIX: must not be empty");
        st = FR_E_CONFIG;
    }
    if (st == FR_OK &&
        (!(im->prefix = strdup(prefix)) || !(b->describe = malloc(strlen(im->url.redacted) + 8)))) {
        snprintf(err, err_size, "out of memory");
        st = FR_E_NOMEM;
    }
    if (st == FR_OK) {
        sprintf(b->describe, "redis %s", im->url.redacted);
        pthread_mutex_init(&im->mu, NULL);
        im->shared.impl = im;
        b->impl = im;
        b->ops = &redis_ops;
        /* Connect now, so a wrong URL or password is reported before any work starts. */
        st = conn_ensure(&im->shared, err, err_size);
        if (st != FR_OK) {
            redis_destroy(b);
            b->impl = NULL;
        }
        return st;
    }
    fr__redis_url_free(&im->url);
    free(im->prefix);
    free(im);
    return st;
}
