/* The durable run queue on a Redis Stream (core/state/run_queue.h). */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "state/run_queue.h"
#include "state/run_records.h"

#define GROUP                "runs"
#define DEFAULT_VISIBILITY   (30 * 1000000LL)
#define CLAIM_EVERY_MAX_US   2000000
#define FENCE_COUNTER_TTL_MS "86400000"

struct fr_run_queue {
    fr_state *s;
    int64_t visibility_us;
    size_t max_depth; /* 0: none */
    char key[128];
    pthread_mutex_t mu;
    int64_t next_claim_mono; /* under mu */
};

void fr__queue_entry_clear(fr_queue_entry *e)
{
    free(e->yaml);
    free(e->input);
    free(e->limits_tenant);
    free(e->limits_key);
    e->yaml = e->input = e->limits_tenant = e->limits_key = NULL;
}

fr_run_queue *fr__run_queue_new(fr_state *s, int64_t visibility_us)
{
    fr_run_queue *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->s = s;
    q->visibility_us = visibility_us > 0 ? visibility_us : DEFAULT_VISIBILITY;
    fr__state_key(s, q->key, sizeof q->key, "queue");
    pthread_mutex_init(&q->mu, NULL);
    return q;
}

void fr__run_queue_free(fr_run_queue *q)
{
    if (!q)
        return;
    pthread_mutex_destroy(&q->mu);
    free(q);
}

void fr__run_queue_set_max(fr_run_queue *q, size_t max_depth)
{
    q->max_depth = max_depth;
}

int64_t fr__run_queue_visibility(const fr_run_queue *q)
{
    return q->visibility_us;
}

/* The run's lease and its fencing counter, in the tenant's hash slot. */
static void lease_keys(const fr_run_queue *q, const fr_queue_entry *e, char *lease, char *fence,
                       size_t size)
{
    fr__state_key(q->s, lease, size, "{t:%s}:run:%s:lease", e->tenant, e->run_id);
    fr__state_key(q->s, fence, size, "{t:%s}:run:%s:fence", e->tenant, e->run_id);
}

/* An error reply as a message naming Redis. */
static fr_status reply_failed(const fr_run_queue *q, const char *step, const redisReply *r,
                              char *err, size_t err_size)
{
    snprintf(err, err_size, "redis %s: %s: %.200s", fr__redis_pool_url(q->s->redis), step,
             r ? r->str : "no reply");
    return FR_E_NETWORK;
}

/* XGROUP CREATE ... MKSTREAM; a group that exists already is fine. */
static fr_status ensure_group(fr_run_queue *q, fr_redis_conn *c, char *err, size_t err_size)
{
    const char *argv[] = {"XGROUP", "CREATE", q->key, GROUP, "0", "MKSTREAM"};
    redisReply *r = fr__redis_conn_command(c, 6, argv, NULL, err, err_size);
    if (!r)
        return FR_E_NETWORK;
    fr_status st = FR_OK;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0)
        st = reply_failed(q, "XGROUP CREATE", r, err, err_size);
    freeReplyObject(r);
    return st;
}

/* KEYS: the stream.  ARGV: the cap (0: none), then the entry's field/value pairs.  -> its
 * id, or nil when the queue is at its cap. */
static fr_redis_script PUSH = {
    .lua = "local max = tonumber(ARGV[1])\n"
           "if max > 0 and redis.call('XLEN', KEYS[1]) >= max then return false end\n"
           "return redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))\n"};

fr_status fr__run_queue_push(fr_run_queue *q, fr_queue_entry *e, char *err, size_t err_size)
{
    char seed[24], at[24];
    snprintf(seed, sizeof seed, "%" PRIu64, e->seed);
    snprintf(at, sizeof at, "%" PRId64, e->submitted_at_us);
    char max[24];
    snprintf(max, sizeof max, "%zu", q->max_depth);
    const char *argv[32];
    int argc = 0;
    argv[argc++] = q->key;
    argv[argc++] = max;
#define FIELD(name, value)      \
    do {                        \
        argv[argc++] = name;    \
        argv[argc++] = (value); \
    } while (0)
    FIELD("run", e->run_id);
    FIELD("tenant", e->tenant);
    FIELD("ns", e->namespace_);
    FIELD("actor", e->actor);
    FIELD("role", e->role);
    FIELD("tp", e->traceparent);
    FIELD("at", at);
    FIELD("trace", e->trace ? "1" : "0");
    if (e->has_seed)
        FIELD("seed", seed);
    if (e->yaml) {
        FIELD("yaml", e->yaml);
    } else {
        FIELD("manifest", e->manifest);
        FIELD("sha256", e->sha256);
    }
    if (e->input)
        FIELD("input", e->input);
    if (e->limits_tenant)
        FIELD("lt", e->limits_tenant);
    if (e->limits_key)
        FIELD("lk", e->limits_key);
#undef FIELD
    redisReply *r = fr__redis_eval(q->s->redis, &PUSH, 1, argc, argv, NULL, err, err_size);
    if (!r)
        return FR_E_NETWORK;
    fr_status st = FR_OK;
    if (r->type == REDIS_REPLY_STRING) {
        snprintf(e->stream_id, sizeof e->stream_id, "%s", r->str);
    } else if (r->type == REDIS_REPLY_NIL) {
        snprintf(err, err_size, "the queue holds %zu runs, its cap (--max-queued)", q->max_depth);
        st = FR_E_OVERLOADED;
    } else {
        st = reply_failed(q, "XADD", r, err, err_size);
    }
    freeReplyObject(r);
    return st;
}

/* Fills *e from a stream entry [id, [field, value, ...]].  0, or -1 when it is not one of
 * ours (a field missing). */
static int entry_from(const redisReply *it, fr_queue_entry *e)
{
    memset(e, 0, sizeof *e);
    if (it->type != REDIS_REPLY_ARRAY || it->elements != 2 ||
        it->element[0]->type != REDIS_REPLY_STRING)
        return -1;
    snprintf(e->stream_id, sizeof e->stream_id, "%s", it->element[0]->str);
    const redisReply *f = it->element[1];
    if (f->type != REDIS_REPLY_ARRAY)
        return -1;
    int have_run = 0, have_tenant = 0, have_manifest = 0;
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const char *k = f->element[i]->str, *v = f->element[i + 1]->str;
        if (!k || !v)
            continue;
#define COPY(field) snprintf(e->field, sizeof e->field, "%s", v)
        if (!strcmp(k, "run"))
            COPY(run_id), have_run = 1;
        else if (!strcmp(k, "tenant"))
            COPY(tenant), have_tenant = 1;
        else if (!strcmp(k, "ns"))
            COPY(namespace_);
        else if (!strcmp(k, "actor"))
            COPY(actor);
        else if (!strcmp(k, "role"))
            COPY(role);
        else if (!strcmp(k, "tp"))
            COPY(traceparent);
        else if (!strcmp(k, "manifest"))
            COPY(manifest), have_manifest = 1;
        else if (!strcmp(k, "sha256"))
            COPY(sha256);
        else if (!strcmp(k, "yaml"))
            e->yaml = strdup(v), have_manifest = 1;
        else if (!strcmp(k, "input"))
            e->input = strdup(v);
        else if (!strcmp(k, "lt"))
            free(e->limits_tenant), e->limits_tenant = strdup(v);
        else if (!strcmp(k, "lk"))
            free(e->limits_key), e->limits_key = strdup(v);
        else if (!strcmp(k, "seed"))
            e->seed = strtoull(v, NULL, 10), e->has_seed = 1;
        else if (!strcmp(k, "trace"))
            e->trace = !strcmp(v, "1");
        else if (!strcmp(k, "at"))
            e->submitted_at_us = strtoll(v, NULL, 10);
#undef COPY
    }
    if (!have_run || !have_tenant || !have_manifest) {
        fr__queue_entry_clear(e);
        return -1;
    }
    return 0;
}

/* Acknowledges and deletes an entry that cannot be read. */
static void drop_unreadable(fr_run_queue *q, fr_redis_conn *c, const char *id)
{
    fprintf(stderr, "fluxroute: queue %s: entry %s is not a queued run (missing fields): dropped\n",
            q->key, id);
    const char *ack[] = {"XACK", q->key, GROUP, id}, *del[] = {"XDEL", q->key, id};
    const char *const *argvs[] = {ack, del};
    int argcs[] = {4, 3};
    redisReply *rs[2];
    char err[256];
    if (fr__redis_conn_pipeline(c, 2, argcs, argvs, NULL, rs, err, sizeof err) == 0)
        freeReplyObject(rs[0]), freeReplyObject(rs[1]);
}

/* Reads the entries of list `l` into out[*n..max). */
static void read_entries(fr_run_queue *q, fr_redis_conn *c, const redisReply *l,
                         fr_queue_entry *out, size_t *n, size_t max)
{
    if (!l || l->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < l->elements && *n < max; i++) {
        const redisReply *it = l->element[i];
        /* Redis 6.2 lists entries deleted while pending as [id, nil]: nothing to run. */
        if (it->type == REDIS_REPLY_ARRAY && it->elements == 2 &&
            it->element[1]->type == REDIS_REPLY_NIL)
            continue;
        if (entry_from(it, &out[*n]) == 0)
            (*n)++;
        else if (it->type == REDIS_REPLY_ARRAY && it->elements >= 1 &&
                 it->element[0]->type == REDIS_REPLY_STRING)
            drop_unreadable(q, c, it->element[0]->str);
    }
}

/* Reads an XREADGROUP reply (nil after BLOCK with nothing new, else [[key, [entries]]]). */
static const redisReply *new_entries(const redisReply *r)
{
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2)
        return r->element[0]->element[1];
    return NULL;
}

fr_status fr__run_queue_take(fr_run_queue *q, const char *consumer, size_t max, int block_ms,
                             fr_queue_entry *out, size_t *n, size_t *claimed, long long *depth,
                             char *err, size_t err_size)
{
    *n = *claimed = 0;
    *depth = -1;
    if (max == 0)
        return FR_OK;
    char count[24], idle[24], block[24];
    snprintf(count, sizeof count, "%zu", max);
    snprintf(idle, sizeof idle, "%" PRId64, q->visibility_us / 1000);
    snprintf(block, sizeof block, "%d", block_ms);
    int64_t now = fr__mono_us();
    int64_t every =
        q->visibility_us / 2 < CLAIM_EVERY_MAX_US ? q->visibility_us / 2 : CLAIM_EVERY_MAX_US;
    pthread_mutex_lock(&q->mu);
    int claim = now >= q->next_claim_mono;
    if (claim)
        q->next_claim_mono = now + every;
    pthread_mutex_unlock(&q->mu);
    /* One round trip: what others left past the timeout (when due), the depth, and new
     * entries (waiting at most block_ms). */
    const char *autoclaim[] = {"XAUTOCLAIM", q->key, GROUP, consumer, idle, "0-0", "COUNT", count};
    const char *xlen[] = {"XLEN", q->key};
    /* With a claim, no BLOCK: claimed entries must start (and be kept from being claimed
     * again) at once, not after a wait for new ones. */
    const char *read[] = {"XREADGROUP", "GROUP", GROUP,     consumer, "COUNT", count,
                          "BLOCK",      block,   "STREAMS", q->key,   ">"};
    const char *read_now[] = {"XREADGROUP", "GROUP",   GROUP,  consumer, "COUNT",
                              count,        "STREAMS", q->key, ">"};
    const char *const *argvs[3];
    int argcs[3];
    size_t k = 0;
    if (claim)
        argvs[k] = autoclaim, argcs[k++] = 8;
    argvs[k] = xlen, argcs[k++] = 2;
    if (claim)
        argvs[k] = read_now, argcs[k++] = 9;
    else
        argvs[k] = read, argcs[k++] = 11;
    redisReply *rs[3] = {NULL, NULL, NULL};
    fr_status st = FR_OK;
    fr_redis_conn *c = fr__redis_pool_get(q->s->redis, err, err_size);
    if (!c)
        return FR_E_NETWORK;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (fr__redis_conn_pipeline(c, k, argcs, argvs, NULL, rs, err, err_size) != 0) {
            st = FR_E_NETWORK;
            goto out;
        }
        const redisReply *last = rs[k - 1];
        if (last->type != REDIS_REPLY_ERROR)
            break;
        /* A new stream, or a Redis that lost it: make the group, then once more. */
        int nogroup = strncmp(last->str, "NOGROUP", 7) == 0;
        if (!nogroup || attempt == 1 || ensure_group(q, c, err, err_size) != FR_OK) {
            if (!nogroup || attempt == 1)
                reply_failed(q, "XREADGROUP", last, err, err_size);
            st = FR_E_NETWORK;
            goto out;
        }
        for (size_t i = 0; i < k; i++)
            freeReplyObject(rs[i]), rs[i] = NULL;
    }
    if (rs[k - 2]->type == REDIS_REPLY_INTEGER)
        *depth = rs[k - 2]->integer;
    if (claim && rs[0]->type == REDIS_REPLY_ARRAY && rs[0]->elements >= 2)
        read_entries(q, c, rs[0]->element[1], out, n, max);
    *claimed = *n;
    const redisReply *fresh = new_entries(rs[k - 1]);
    read_entries(q, c, fresh, out, n, max);
    size_t fresh_n = fresh ? fresh->elements : 0, taken = *n - *claimed;
    if (fresh_n > taken) {
        /* Claimed and new entries together are more than there is room for: the new ones
         * left over go back at once, for whichever consumer looks next. */
        fr_queue_entry *extra = calloc(fresh_n - taken, sizeof *extra);
        const fr_queue_entry **ptrs = calloc(fresh_n - taken, sizeof *ptrs);
        size_t m = 0;
        for (size_t i = taken; extra && ptrs && i < fresh_n; i++) {
            const redisReply *it = fresh->element[i];
            if (it->type == REDIS_REPLY_ARRAY && it->elements >= 1 &&
                it->element[0]->type == REDIS_REPLY_STRING) {
                snprintf(extra[m].stream_id, sizeof extra[m].stream_id, "%s", it->element[0]->str);
                ptrs[m] = &extra[m];
                m++;
            }
        }
        fr__redis_pool_put(q->s->redis, c);
        c = NULL;
        char e2[256];
        if (m)
            fr__run_queue_hand_back(q, consumer, ptrs, m, e2, sizeof e2);
        free(extra);
        free(ptrs);
    }
out:
    for (size_t i = 0; i < k; i++)
        if (rs[i])
            freeReplyObject(rs[i]);
    if (c)
        fr__redis_pool_put(q->s->redis, c);
    return st;
}

/* KEYS: lease, fence counter, cancel mark.  ARGV: holder, ttl ms, counter ttl ms.
 * -> {token, 1 when a cancel was asked for} */
static fr_redis_script START = {
    .lua = "local t = redis.call('INCR', KEYS[2])\n"
           "redis.call('PEXPIRE', KEYS[2], ARGV[3])\n"
           "redis.call('SET', KEYS[1], string.format('%d', t) .. ' ' .. ARGV[1], 'PX', ARGV[2])\n"
           "return {t, redis.call('EXISTS', KEYS[3])}\n"};

fr_status fr__run_queue_start(fr_run_queue *q, const fr_queue_entry *e, const char *holder,
                              uint64_t *token, int *cancelled, char *err, size_t err_size)
{
    char lease[256], fence[256], cancel[256], ttl[24];
    lease_keys(q, e, lease, fence, sizeof lease);
    fr__run_record_cancel_key(q->s, e->tenant, e->run_id, cancel, sizeof cancel);
    snprintf(ttl, sizeof ttl, "%" PRId64,
             q->visibility_us / 1000 > 0 ? q->visibility_us / 1000 : 1);
    const char *argv[] = {lease, fence, cancel, holder, ttl, FENCE_COUNTER_TTL_MS};
    redisReply *r = fr__redis_eval(q->s->redis, &START, 3, 6, argv, NULL, err, err_size);
    if (!r)
        return FR_E_NETWORK;
    fr_status st = FR_OK;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer > 0) {
        *token = (uint64_t)r->element[0]->integer;
        *cancelled = r->element[1]->type == REDIS_REPLY_INTEGER && r->element[1]->integer == 1;
    } else
        st = reply_failed(q, "run lease", r, err, err_size);
    freeReplyObject(r);
    return st;
}

/* Sends n commands in one round trip on a borrowed connection; FR_OK when every reply is
 * not an error. */
static fr_status pipeline(fr_run_queue *q, size_t n, const int *argcs, const char *const *argvs[],
                          const char *step, char *err, size_t err_size)
{
    fr_redis_conn *c = fr__redis_pool_get(q->s->redis, err, err_size);
    if (!c)
        return FR_E_NETWORK;
    redisReply **rs = calloc(n ? n : 1, sizeof *rs);
    fr_status st = FR_OK;
    if (!rs) {
        snprintf(err, err_size, "out of memory");
        st = FR_E_NOMEM;
    } else if (fr__redis_conn_pipeline(c, n, argcs, argvs, NULL, rs, err, err_size) != 0) {
        st = FR_E_NETWORK;
    } else {
        for (size_t i = 0; i < n; i++) {
            if (st == FR_OK && rs[i]->type == REDIS_REPLY_ERROR)
                st = reply_failed(q, step, rs[i], err, err_size);
            freeReplyObject(rs[i]);
        }
    }
    free(rs);
    fr__redis_pool_put(q->s->redis, c);
    return st;
}

fr_status fr__run_queue_done(fr_run_queue *q, const fr_queue_entry *e, char *err, size_t err_size)
{
    char lease[256], fence[256];
    lease_keys(q, e, lease, fence, sizeof lease);
    const char *ack[] = {"XACK", q->key, GROUP, e->stream_id};
    const char *del[] = {"XDEL", q->key, e->stream_id};
    const char *drop[] = {"DEL", lease};
    const char *const *argvs[] = {ack, del, drop};
    int argcs[] = {4, 3, 2};
    return pipeline(q, 3, argcs, argvs, "XACK", err, err_size);
}

/* Entries still pending with ARGV[2] get their idle time reset (ARGV[3] "-") or set to
 * ARGV[3] ms; those another consumer claimed meanwhile are left alone (a consumer thought
 * dead must not take back what was given to another).  KEYS: the stream.  ARGV: group,
 * consumer, idle, ids...  -> how many were ours. */
static const char RECLAIM_LUA[] =
    "local n = 0\n"
    "for i = 4, #ARGV do\n"
    "  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)\n"
    "  if p[1] and p[1][2] == ARGV[2] then\n"
    "    if ARGV[3] == '-' then\n"
    "      redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')\n"
    "    else\n"
    "      redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'IDLE', ARGV[3], 'JUSTID')\n"
    "    end\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "return n\n";

/* RECLAIM_LUA on entries e[0..n) (idle NULL: reset), and PEXPIRE of their leases when
 * `renew`, in one round trip (EVAL in a pipeline: the script is short, and a heartbeat
 * every third of the visibility timeout is rare). */
static fr_status reclaim(fr_run_queue *q, const char *consumer, const fr_queue_entry *const *e,
                         size_t n, const char *idle, int renew, const char *step, char *err,
                         size_t err_size)
{
    if (n == 0)
        return FR_OK;
    size_t cmds = 1 + (renew ? n : 0);
    const char **claim = calloc(n + 8, sizeof *claim);
    const char **pexpire = calloc(3 * n, sizeof *pexpire);
    const char ***argvs = calloc(cmds, sizeof *argvs);
    int *argcs = calloc(cmds, sizeof *argcs);
    char(*leases)[256] = calloc(n, sizeof *leases);
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%" PRId64,
             q->visibility_us / 1000 > 0 ? q->visibility_us / 1000 : 1);
    fr_status st;
    if (!claim || !pexpire || !argvs || !argcs || !leases) {
        snprintf(err, err_size, "out of memory");
        st = FR_E_NOMEM;
        goto out;
    }
    int argc = 0;
    claim[argc++] = "EVAL";
    claim[argc++] = RECLAIM_LUA;
    claim[argc++] = "1";
    claim[argc++] = q->key;
    claim[argc++] = GROUP;
    claim[argc++] = consumer;
    claim[argc++] = idle ? idle : "-";
    for (size_t i = 0; i < n; i++)
        claim[argc++] = e[i]->stream_id;
    argvs[0] = claim;
    argcs[0] = argc;
    for (size_t i = 0; renew && i < n; i++) {
        char fence[256];
        lease_keys(q, e[i], leases[i], fence, sizeof fence);
        const char **pe = pexpire + 3 * i;
        pe[0] = "PEXPIRE";
        pe[1] = leases[i];
        pe[2] = ttl;
        argvs[1 + i] = pe;
        argcs[1 + i] = 3;
    }
    st = pipeline(q, cmds, argcs, (const char *const **)argvs, step, err, err_size);
out:
    free(claim);
    free(pexpire);
    free(argvs);
    free(argcs);
    free(leases);
    return st;
}

fr_status fr__run_queue_touch(fr_run_queue *q, const char *consumer, const fr_queue_entry *const *e,
                              size_t n, char *err, size_t err_size)
{
    return reclaim(q, consumer, e, n, NULL, 1, "touch", err, err_size);
}

fr_status fr__run_queue_hand_back(fr_run_queue *q, const char *consumer,
                                  const fr_queue_entry *const *e, size_t n, char *err,
                                  size_t err_size)
{
    char idle[24];
    snprintf(idle, sizeof idle, "%" PRId64, q->visibility_us / 1000 + 1000);
    return reclaim(q, consumer, e, n, idle, 0, "hand back", err, err_size);
}
