/* Run records in Redis (core/state/run_records.h).
 *
 * Keys of tenant T (all in T's hash tag, so one Redis Cluster shard holds them):
 *   <prefix>:{t:T}:run:ID      a hash: the record (meta fields, report, trace)
 *   <prefix>:{t:T}:runs        a sorted set: run ids by submission time (GET /v1/runs)
 *   <prefix>:{t:T}:run_bytes   a hash: bytes per run id, and "#total" (the byte budget)
 *   <prefix>:{t:T}:active      a sorted set: runs some process executes, by lease expiry
 *                              (the cluster-wide per-tenant share)
 *   <prefix>:{t:T}:cancel:ID   a cancel asked for run ID (polled by its executor)
 *
 * Every write is one Lua script (one round trip): fencing, the index, the byte count, the
 * budgets and the active set change with the record or not at all. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "state/run_records.h"

static const char *const status_names[] = {"queued", "running", "succeeded", "failed", "cancelled"};

const char *fr__record_status_name(fr_record_status s)
{
    return (unsigned)s < sizeof status_names / sizeof status_names[0] ? status_names[s] : "failed";
}

static fr_record_status status_from(const char *name)
{
    for (size_t i = 0; i < sizeof status_names / sizeof status_names[0]; i++)
        if (strcmp(name, status_names[i]) == 0)
            return (fr_record_status)i;
    return FR_RECORD_FAILED;
}

void fr__run_record_clear(fr_run_record *r)
{
    free(r->report);
    free(r->trace);
    free(r->input);
    free(r->graph);
    r->report = r->trace = r->input = r->graph = NULL;
    r->report_len = r->trace_len = r->input_len = r->graph_len = 0;
}

static size_t budget_runs, budget_bytes;

void fr__run_records_set_budget(size_t max_runs_per_tenant, size_t max_bytes_per_tenant)
{
    budget_runs = max_runs_per_tenant;
    budget_bytes = max_bytes_per_tenant;
}

size_t fr__run_record_bytes(const fr_run_record *r)
{
    return 512 + (r->report ? r->report_len : 0) + (r->trace ? r->trace_len : 0) +
           (r->input ? r->input_len : 0) + (r->graph ? r->graph_len : 0);
}

static void key_of(fr_state *s, char *out, size_t size, const char *tenant, const char *what,
                   const char *id)
{
    fr__state_key(s, out, size, "{t:%s}:%s%s", tenant, what, id ? id : "");
}

/* ---- put ---------------------------------------------------------------------------- */

/* KEYS: record, index, bytes, active, cancel mark.  ARGV: fence, score, ttl_ms, finished, max_runs,
 * max_bytes, record key prefix, id, bytes, then the record's field/value pairs.  Returns
 * -1 when fenced out, else how many records it dropped (budgets, expired).  A write without
 * a `graph` field keeps the record's (issue 28).  The oldest 64
 * entries of the index are looked at only over a budget, or for one put in 16 (by its
 * submission time): that sweep drops index entries whose record expired (up to 32), so
 * the index of a busy tenant keeps up with expiry while a put stays cheap. */
static fr_redis_script PUT = {
    .lua = "local old = redis.call('HGET', KEYS[1], 'fence')\n"
           "if old and tonumber(old) > tonumber(ARGV[1]) then return -1 end\n"
           "local id = ARGV[8]\n"
           "local oldbytes = tonumber(redis.call('HGET', KEYS[3], id) or '0')\n"
           "local graph = redis.call('HGET', KEYS[1], 'graph')\n"
           "redis.call('DEL', KEYS[1])\n"
           "local f = {}\n"
           "for i = 10, #ARGV do f[#f + 1] = ARGV[i] end\n"
           "redis.call('HMSET', KEYS[1], unpack(f))\n"
           "if graph and redis.call('HEXISTS', KEYS[1], 'graph') == 0 then\n"
           "  redis.call('HSET', KEYS[1], 'graph', graph)\n"
           "end\n"
           "local ttl = tonumber(ARGV[3])\n"
           "if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end\n"
           "redis.call('ZADD', KEYS[2], ARGV[2], id)\n"
           "local bytes = tonumber(ARGV[9])\n"
           "redis.call('HSET', KEYS[3], id, bytes)\n"
           "local total = redis.call('HINCRBY', KEYS[3], '#total', bytes - oldbytes)\n"
           "local keep = math.max(ttl, 86400000) * 2\n"
           "redis.call('PEXPIRE', KEYS[2], keep)\n"
           "redis.call('PEXPIRE', KEYS[3], keep)\n"
           "if ARGV[4] == '1' then\n"
           "  redis.call('ZREM', KEYS[4], id)\n"
           "  redis.call('DEL', KEYS[5])\n"
           "end\n"
           "local maxr, maxb = tonumber(ARGV[5]), tonumber(ARGV[6])\n"
           "local count = redis.call('ZCARD', KEYS[2])\n"
           "local dropped = 0\n"
           "local over = (maxr > 0 and count > maxr) or (maxb > 0 and total > maxb)\n"
           "local sweep = tonumber(string.sub(ARGV[2], -2)) % 16 == 0\n"
           "if not over and not sweep then return 0 end\n"
           "for _, o in ipairs(redis.call('ZRANGE', KEYS[2], 0, 63)) do\n"
           "  over = (maxr > 0 and count > maxr) or (maxb > 0 and total > maxb)\n"
           "  if dropped >= 32 or not (over or sweep) then break end\n"
           "  local st = redis.call('HGET', ARGV[7] .. o, 'status')\n"
           "  if (not st) or (over and o ~= id and (st == 'succeeded' or st == 'failed' or\n"
           "                                        st == 'cancelled')) then\n"
           "    if st then redis.call('DEL', ARGV[7] .. o) end\n"
           "    local b = tonumber(redis.call('HGET', KEYS[3], o) or '0')\n"
           "    redis.call('ZREM', KEYS[2], o)\n"
           "    redis.call('HDEL', KEYS[3], o)\n"
           "    total = redis.call('HINCRBY', KEYS[3], '#total', -b)\n"
           "    count = count - 1\n"
           "    dropped = dropped + 1\n"
           "  end\n"
           "end\n"
           "return dropped\n"};

#define PUT_MAX_ARGS 56

fr_status fr__run_record_put(fr_state *s, const fr_run_record *r, int64_t ttl_us, char *err,
                             size_t err_size)
{
    if (!s || s->kind != FR_STATE_REDIS) {
        snprintf(err, err_size, "run records need --state redis");
        return FR_E_INVALID;
    }
    char krec[512], kidx[400], kbytes[400], kact[400], kpre[400], kcan[512];
    key_of(s, krec, sizeof krec, r->tenant, "run:", r->id);
    key_of(s, kcan, sizeof kcan, r->tenant, "cancel:", r->id);
    key_of(s, kidx, sizeof kidx, r->tenant, "runs", NULL);
    key_of(s, kbytes, sizeof kbytes, r->tenant, "run_bytes", NULL);
    key_of(s, kact, sizeof kact, r->tenant, "active", NULL);
    key_of(s, kpre, sizeof kpre, r->tenant, "run:", NULL);
    int finished = r->status >= FR_RECORD_SUCCEEDED;
    char fence[24], score[24], ttl[24], maxr[24], maxb[24], bytes[24], sub[24], sta[24], fin[24],
        exe[16], refused[4];
    snprintf(fence, sizeof fence, "%" PRIu64, r->fence);
    snprintf(score, sizeof score, "%" PRId64, r->submitted_at_us);
    snprintf(ttl, sizeof ttl, "%" PRId64, finished && ttl_us > 0 ? (ttl_us + 999) / 1000 : 0);
    snprintf(maxr, sizeof maxr, "%zu", budget_runs);
    snprintf(maxb, sizeof maxb, "%zu", budget_bytes);
    snprintf(bytes, sizeof bytes, "%zu", fr__run_record_bytes(r));
    snprintf(sub, sizeof sub, "%" PRId64, r->submitted_at_us);
    snprintf(sta, sizeof sta, "%" PRId64, r->started_at_us);
    snprintf(fin, sizeof fin, "%" PRId64, r->finished_at_us);
    snprintf(exe, sizeof exe, "%u", r->executions ? r->executions : 1);
    snprintf(refused, sizeof refused, "%d", r->trace_refused ? 1 : 0);
    const char *argv[PUT_MAX_ARGS];
    size_t lens[PUT_MAX_ARGS];
    int n = 0;
#define ARG(v)      (argv[n] = (v), lens[n] = strlen(argv[n]), n++)
#define ARGN(v, l)  (argv[n] = (v), lens[n] = (l), n++)
#define FIELD(k, v) (ARG(k), ARG(v))
    ARG(krec), ARG(kidx), ARG(kbytes), ARG(kact), ARG(kcan);
    ARG(fence), ARG(score), ARG(ttl), ARG(finished ? "1" : "0"), ARG(maxr), ARG(maxb), ARG(kpre),
        ARG(r->id), ARG(bytes);
    FIELD("id", r->id), FIELD("tenant", r->tenant), FIELD("namespace", r->namespace_);
    FIELD("manifest", r->manifest), FIELD("status", fr__record_status_name(r->status));
    FIELD("submitted", sub), FIELD("started", sta), FIELD("finished", fin);
    FIELD("executions", exe), FIELD("fence", fence), FIELD("node", r->node);
    FIELD("trace_refused", refused), FIELD("traced", r->trace ? "1" : "0");
    if (r->input)
        ARG("input"), ARGN(r->input, r->input_len);
    if (r->graph)
        ARG("graph"), ARGN(r->graph, r->graph_len);
    if (r->report)
        ARG("report"), ARGN(r->report, r->report_len);
    if (r->trace)
        ARG("trace"), ARGN(r->trace, r->trace_len);
#undef FIELD
#undef ARGN
#undef ARG
    redisReply *rep = fr__redis_eval(s->redis, &PUT, 5, n, argv, lens, err, err_size);
    if (!rep)
        return FR_E_NETWORK;
    fr_status st = FR_OK;
    if (rep->type == REDIS_REPLY_INTEGER && rep->integer < 0) {
        snprintf(err, err_size,
                 "run %s: fencing token %" PRIu64 " is older than the record's newest; the "
                 "record was not written (another execution holds the run)",
                 r->id, r->fence);
        st = FR_E_LEASE_LOST;
    }
    freeReplyObject(rep);
    return st;
}

/* ---- get ---------------------------------------------------------------------------- */

static const char *const get_fields[] = {
    "id",      "tenant",   "namespace",  "manifest", "status", "submitted",
    "started", "finished", "executions", "fence",    "node",   "trace_refused",
    "traced",  "input",    "graph",      "report",   "trace"};
#define N_GET_FIELDS (sizeof get_fields / sizeof get_fields[0])

static int64_t to_i64(const redisReply *e)
{
    return e && e->type == REDIS_REPLY_STRING ? strtoll(e->str, NULL, 10) : 0;
}

static void copy_str(char *dst, size_t size, const redisReply *e)
{
    snprintf(dst, size, "%s", e && e->type == REDIS_REPLY_STRING ? e->str : "");
}

static char *dup_bulk(const redisReply *e, size_t *len)
{
    *len = 0;
    if (!e || e->type != REDIS_REPLY_STRING)
        return NULL;
    char *c = malloc(e->len + 1);
    if (c) {
        memcpy(c, e->str, e->len);
        c[e->len] = '\0';
        *len = e->len;
    }
    return c;
}

fr_status fr__run_record_get(fr_state *s, const char *tenant, const char *id, int with_trace,
                             fr_run_record *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    if (!s || s->kind != FR_STATE_REDIS) {
        snprintf(err, err_size, "run records need --state redis");
        return FR_E_INVALID;
    }
    char krec[512];
    key_of(s, krec, sizeof krec, tenant, "run:", id);
    const char *argv[2 + N_GET_FIELDS];
    int argc = 0;
    argv[argc++] = "HMGET";
    argv[argc++] = krec;
    for (size_t i = 0; i < N_GET_FIELDS - (with_trace ? 0 : 1); i++)
        argv[argc++] = get_fields[i];
    redisReply *rep = fr__redis_command(s->redis, argc, argv, NULL, err, err_size);
    if (!rep)
        return FR_E_NETWORK;
    redisReply **e = rep->element;
    /* A record is another tenant's only if its key says so; the field is checked too. */
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < N_GET_FIELDS - 1 ||
        e[0]->type != REDIS_REPLY_STRING || e[1]->type != REDIS_REPLY_STRING ||
        strcmp(e[1]->str, tenant) != 0) {
        freeReplyObject(rep);
        snprintf(err, err_size, "no run %s", id);
        return FR_E_NOT_FOUND;
    }
    copy_str(out->id, sizeof out->id, e[0]);
    copy_str(out->tenant, sizeof out->tenant, e[1]);
    copy_str(out->namespace_, sizeof out->namespace_, e[2]);
    copy_str(out->manifest, sizeof out->manifest, e[3]);
    out->status = e[4]->type == REDIS_REPLY_STRING ? status_from(e[4]->str) : FR_RECORD_FAILED;
    out->submitted_at_us = to_i64(e[5]);
    out->started_at_us = to_i64(e[6]);
    out->finished_at_us = to_i64(e[7]);
    out->executions = (unsigned)to_i64(e[8]);
    out->fence = e[9]->type == REDIS_REPLY_STRING ? strtoull(e[9]->str, NULL, 10) : 0;
    copy_str(out->node, sizeof out->node, e[10]);
    out->trace_refused = to_i64(e[11]) != 0;
    out->traced = to_i64(e[12]) != 0;
    out->input = dup_bulk(e[13], &out->input_len);
    out->graph = dup_bulk(e[14], &out->graph_len);
    out->report = dup_bulk(e[15], &out->report_len);
    if (with_trace)
        out->trace = dup_bulk(e[16], &out->trace_len);
    int oom = (e[13]->type == REDIS_REPLY_STRING && !out->input) ||
              (e[14]->type == REDIS_REPLY_STRING && !out->graph) ||
              (e[15]->type == REDIS_REPLY_STRING && !out->report) ||
              (with_trace && e[16]->type == REDIS_REPLY_STRING && !out->trace);
    freeReplyObject(rep);
    if (oom) {
        fr__run_record_clear(out);
        snprintf(err, err_size, "run %s: out of memory reading its record", id);
        return FR_E_NOMEM;
    }
    return FR_OK;
}

/* ---- list --------------------------------------------------------------------------- */

/* KEYS: index.  ARGV: record key prefix, max score ("+inf" or "(N"), status or "",
 * manifest or "", limit.  Returns {cursor or "", id, status, manifest, submitted, started,
 * finished, ...}. */
static fr_redis_script LIST = {
    .lua = "local prefix, maxs, st, man = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
           "local limit = tonumber(ARGV[5])\n"
           "local out = {''}\n"
           "local n, off, seen, last = 0, 0, 0, nil\n"
           "while seen < 5000 do\n"
           "  local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], maxs, '-inf', 'WITHSCORES',\n"
           "                         'LIMIT', off, 100)\n"
           "  if #ids == 0 then return out end\n"
           "  off = off + #ids / 2\n"
           "  for i = 1, #ids, 2 do\n"
           "    seen = seen + 1\n"
           "    local f = redis.call('HMGET', prefix .. ids[i], 'status', 'manifest',\n"
           "                         'submitted', 'started', 'finished')\n"
           "    if f[1] and (st == '' or st == f[1]) and (man == '' or man == f[2]) then\n"
           "      if n == limit then out[1] = last return out end\n"
           "      n = n + 1\n"
           "      for _, v in ipairs({ids[i], f[1], f[2] or '', f[3] or '0', f[4] or '0',\n"
           "                          f[5] or '0'}) do out[#out + 1] = v end\n"
           "    end\n"
           "    last = ids[i + 1]\n"
           "  end\n"
           "end\n"
           "out[1] = last\n"
           "return out\n"};

fr_status fr__run_records_list(fr_state *s, const char *tenant, const char *status,
                               const char *manifest, int64_t before_us, size_t limit,
                               fr_record_row *out, size_t *n, int64_t *next_us, char *err,
                               size_t err_size)
{
    *n = 0;
    *next_us = 0;
    if (!s || s->kind != FR_STATE_REDIS) {
        snprintf(err, err_size, "run records need --state redis");
        return FR_E_INVALID;
    }
    char kidx[400], kpre[400], maxs[32], lim[24];
    key_of(s, kidx, sizeof kidx, tenant, "runs", NULL);
    key_of(s, kpre, sizeof kpre, tenant, "run:", NULL);
    if (before_us > 0)
        snprintf(maxs, sizeof maxs, "(%" PRId64, before_us);
    else
        snprintf(maxs, sizeof maxs, "+inf");
    snprintf(lim, sizeof lim, "%zu", limit);
    const char *argv[] = {kidx, kpre, maxs, status ? status : "", manifest ? manifest : "", lim};
    redisReply *rep = fr__redis_eval(s->redis, &LIST, 1, 6, argv, NULL, err, err_size);
    if (!rep)
        return FR_E_NETWORK;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1) {
        freeReplyObject(rep);
        snprintf(err, err_size, "redis %s: unexpected answer listing runs",
                 fr__redis_pool_url(s->redis));
        return FR_E_NETWORK;
    }
    redisReply **e = rep->element;
    *next_us = e[0]->type == REDIS_REPLY_STRING ? (int64_t)strtod(e[0]->str, NULL) : 0;
    for (size_t i = 1; i + 5 < rep->elements + 0 && *n < limit; i += 6) {
        fr_record_row *row = &out[(*n)++];
        copy_str(row->id, sizeof row->id, e[i]);
        copy_str(row->status, sizeof row->status, e[i + 1]);
        copy_str(row->manifest, sizeof row->manifest, e[i + 2]);
        row->submitted_at_us = to_i64(e[i + 3]);
        row->started_at_us = to_i64(e[i + 4]);
        row->finished_at_us = to_i64(e[i + 5]);
    }
    freeReplyObject(rep);
    return FR_OK;
}

/* ---- cancel ------------------------------------------------------------------------- */

/* KEYS: record, cancel key.  ARGV: the cancel mark's lifetime (ms).  Returns the record's
 * status, or "" when there is none. */
static fr_redis_script CANCEL = {.lua = "local st = redis.call('HGET', KEYS[1], 'status')\n"
                                        "if not st then return '' end\n"
                                        "if st == 'queued' or st == 'running' then\n"
                                        "  redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])\n"
                                        "end\n"
                                        "return st\n"};

void fr__run_record_cancel_key(fr_state *s, const char *tenant, const char *id, char *out,
                               size_t size)
{
    key_of(s, out, size, tenant, "cancel:", id);
}

/* A cancel mark outlives any run that may still start: a day. */
#define CANCEL_MARK_MS "86400000"

fr_status fr__run_record_cancel(fr_state *s, const char *tenant, const char *id,
                                fr_record_status *status, char *err, size_t err_size)
{
    if (!s || s->kind != FR_STATE_REDIS) {
        snprintf(err, err_size, "run records need --state redis");
        return FR_E_INVALID;
    }
    char krec[512], kcan[512];
    key_of(s, krec, sizeof krec, tenant, "run:", id);
    key_of(s, kcan, sizeof kcan, tenant, "cancel:", id);
    const char *argv[] = {krec, kcan, CANCEL_MARK_MS};
    redisReply *rep = fr__redis_eval(s->redis, &CANCEL, 2, 3, argv, NULL, err, err_size);
    if (!rep)
        return FR_E_NETWORK;
    const char *st = rep->type == REDIS_REPLY_STRING ? rep->str : "";
    fr_status rc = FR_OK;
    if (!*st) {
        snprintf(err, err_size, "no run %s", id);
        rc = FR_E_NOT_FOUND;
    } else {
        *status = status_from(st);
        if (*status >= FR_RECORD_SUCCEEDED) {
            snprintf(err, err_size, "run %s has already finished (%s)", id, st);
            rc = FR_E_INVALID;
        }
    }
    freeReplyObject(rep);
    return rc;
}

/* ---- the watcher's round trip ------------------------------------------------------- */

fr_status fr__run_records_watch(fr_state *s, const fr_record_running *gone, size_t n_gone,
                                fr_record_running *runs, size_t n_runs, fr_record_share *shares,
                                size_t n_shares, int64_t lease_us, char *err, size_t err_size)
{
    if (!s || s->kind != FR_STATE_REDIS) {
        snprintf(err, err_size, "run records need --state redis");
        return FR_E_INVALID;
    }
    size_t n_cmds = n_gone + n_runs * 2 + n_shares * 3;
    if (n_cmds == 0) {
        const char *ping[] = {"PING"};
        redisReply *rep = fr__redis_command(s->redis, 1, ping, NULL, err, err_size);
        if (!rep)
            return FR_E_NETWORK;
        freeReplyObject(rep);
        return FR_OK;
    }
    /* Each command has at most 4 arguments, each a key (<= 512) or a number. */
    typedef struct cmd {
        const char *argv[4];
        char key[512], num[2][32];
    } cmd;
    cmd *cmds = calloc(n_cmds, sizeof *cmds);
    int *argcs = calloc(n_cmds, sizeof *argcs);
    const char *const **argvs = calloc(n_cmds, sizeof *argvs);
    redisReply **replies = calloc(n_cmds, sizeof *replies);
    if (!cmds || !argcs || !argvs || !replies) {
        free(cmds), free(argcs), free(argvs), free(replies);
        snprintf(err, err_size, "out of memory polling run records");
        return FR_E_NOMEM;
    }
    int64_t now_ms = fr__wall_us() / 1000, expiry_ms = now_ms + lease_us / 1000;
    size_t k = 0;
    for (size_t i = 0; i < n_gone; i++) {
        cmd *c = &cmds[k];
        key_of(s, c->key, sizeof c->key, gone[i].tenant, "active", NULL);
        c->argv[0] = "ZREM", c->argv[1] = c->key, c->argv[2] = gone[i].id;
        argcs[k++] = 3;
    }
    for (size_t i = 0; i < n_runs; i++) {
        cmd *c = &cmds[k];
        key_of(s, c->key, sizeof c->key, runs[i].tenant, "cancel:", runs[i].id);
        c->argv[0] = "EXISTS", c->argv[1] = c->key;
        argcs[k++] = 2;
        c = &cmds[k];
        key_of(s, c->key, sizeof c->key, runs[i].tenant, "active", NULL);
        snprintf(c->num[0], sizeof c->num[0], "%" PRId64, expiry_ms);
        c->argv[0] = "ZADD", c->argv[1] = c->key, c->argv[2] = c->num[0], c->argv[3] = runs[i].id;
        argcs[k++] = 4;
    }
    for (size_t i = 0; i < n_shares; i++) {
        cmd *c = &cmds[k];
        key_of(s, c->key, sizeof c->key, shares[i].tenant, "active", NULL);
        snprintf(c->num[0], sizeof c->num[0], "(%" PRId64, now_ms);
        c->argv[0] = "ZREMRANGEBYSCORE", c->argv[1] = c->key, c->argv[2] = "-inf",
        c->argv[3] = c->num[0];
        argcs[k++] = 4;
        cmd *z = &cmds[k];
        z->argv[0] = "ZCARD", z->argv[1] = c->key;
        argcs[k++] = 2;
        cmd *x = &cmds[k];
        snprintf(x->num[0], sizeof x->num[0], "%" PRId64, 10 * (lease_us / 1000) + 1000);
        x->argv[0] = "PEXPIRE", x->argv[1] = c->key, x->argv[2] = x->num[0];
        argcs[k++] = 3;
    }
    for (size_t i = 0; i < n_cmds; i++)
        argvs[i] = cmds[i].argv;
    fr_status rc = FR_OK;
    fr_redis_conn *conn = fr__redis_pool_get(s->redis, err, err_size);
    if (!conn) {
        rc = FR_E_NETWORK;
    } else {
        if (fr__redis_conn_pipeline(conn, n_cmds, argcs, argvs, NULL, replies, err, err_size) != 0)
            rc = FR_E_NETWORK;
        fr__redis_pool_put(s->redis, conn);
    }
    if (rc == FR_OK) {
        k = n_gone;
        for (size_t i = 0; i < n_runs; i++, k += 2)
            runs[i].cancel =
                replies[k] && replies[k]->type == REDIS_REPLY_INTEGER && replies[k]->integer > 0;
        for (size_t i = 0; i < n_shares; i++, k += 3)
            shares[i].in_flight = replies[k + 1] && replies[k + 1]->type == REDIS_REPLY_INTEGER
                                      ? (size_t)replies[k + 1]->integer
                                      : 0;
    }
    for (size_t i = 0; i < n_cmds; i++)
        if (replies[i])
            freeReplyObject(replies[i]);
    free(cmds), free(argcs), free(argvs), free(replies);
    return rc;
}
