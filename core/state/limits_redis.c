/* Tenant and key limits in Redis (limits_redis.h): the scripts and their calls. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/limits_redis.h"

/* Requests per minute (a sliding log), runs in flight (entries that expire) and the run's
 * per_run price against monthly budgets, checked for both scopes before either is counted:
 * a refused run counts nowhere. */
static fr_redis_script ADMIT = {
    .lua =
        "local now = tonumber(ARGV[1]); local W = 60000\n"
        "local lease = tonumber(ARGV[6]); local m = ARGV[7]; local pr = tonumber(ARGV[10])\n"
        "local function counts(out)\n"
        "  for i = 1, 2 do\n"
        "    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - W)\n"
        "    local o = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')\n"
        "    out[4 + 2 * i - 1] = redis.call('ZCARD', KEYS[i])\n"
        "    out[4 + 2 * i] = 0\n"
        "    if o[2] then out[4 + 2 * i] = tonumber(o[2]) end\n"
        "  end\n"
        "  return out\n"
        "end\n"
        "for i = 1, 2 do\n"
        "  local rpm = tonumber(ARGV[1 + i]); local conc = tonumber(ARGV[3 + i])\n"
        "  if rpm >= 0 then\n"
        "    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - W)\n"
        "    local n = redis.call('ZCARD', KEYS[i])\n"
        "    if n >= rpm then\n"
        "      local o = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')\n"
        "      local reset = now + W\n"
        "      if o[2] then reset = tonumber(o[2]) + W end\n"
        "      return counts({1, i - 1, n, reset})\n"
        "    end\n"
        "  end\n"
        "  if conc >= 0 then\n"
        "    redis.call('ZREMRANGEBYSCORE', KEYS[2 + i], '-inf', now)\n"
        "    local c = redis.call('ZCARD', KEYS[2 + i])\n"
        "    if c >= conc then return counts({2, i - 1, c, 0}) end\n"
        "  end\n"
        "  local bud = tonumber(ARGV[7 + i])\n"
        "  if bud >= 0 and pr > 0 then\n"
        "    local spent = tonumber(redis.call('HGET', KEYS[4 + i], 'spent') or '0')\n"
        "    local res = tonumber(redis.call('HGET', KEYS[4 + i], 'reserved') or '0')\n"
        "    if spent + res + pr > bud then return counts({3, i - 1, spent, res}) end\n"
        "  end\n"
        "end\n"
        "for i = 1, 2 do\n"
        "  if tonumber(ARGV[1 + i]) >= 0 then\n"
        "    redis.call('ZADD', KEYS[i], now, m)\n"
        "    redis.call('PEXPIRE', KEYS[i], W + 1000)\n"
        "  end\n"
        "  redis.call('ZADD', KEYS[2 + i], now + lease, m)\n"
        "  redis.call('PEXPIRE', KEYS[2 + i], lease + 1000)\n"
        "end\n"
        "local out = counts({0, 0, 0, 0})\n"
        "for i = 1, 2 do\n"
        "  local bud = tonumber(ARGV[7 + i]); out[8 + 2 * i - 1] = -1; out[8 + 2 * i] = 0\n"
        "  if bud >= 0 and pr > 0 then\n"
        "    local spent = redis.call('HINCRBY', KEYS[4 + i], 'spent', pr)\n"
        "    redis.call('PEXPIRE', KEYS[4 + i], 3456000000)\n"
        "    out[8 + 2 * i - 1] = spent\n"
        "    if bud > 0 and spent >= bud then\n"
        "      redis.call('HSETNX', KEYS[4 + i], 'w80', '1')\n"
        "      if redis.call('HSETNX', KEYS[4 + i], 'w100', '1') == 1 then out[8 + 2 * i] = 100 "
        "end\n"
        "    elseif bud > 0 and spent * 100 >= bud * 80 then\n"
        "      if redis.call('HSETNX', KEYS[4 + i], 'w80', '1') == 1 then out[8 + 2 * i] = 80 end\n"
        "    end\n"
        "  end\n"
        "end\n"
        "return out\n"};

/* A run ended: the entry leaves the runs in flight of both scopes. */
static fr_redis_script LEAVE = {.lua = "redis.call('ZREM', KEYS[1], ARGV[1])\n"
                                       "redis.call('ZREM', KEYS[2], ARGV[1])\n"
                                       "return 0\n"};

/* Tokens (per-second buckets, the 61 newest count) and budgets (spent + reserved), checked
 * for every scope before any is charged. */
static fr_redis_script RESERVE = {
    .lua = "local now = tonumber(ARGV[1]); local tokens = tonumber(ARGV[2])\n"
           "local micros = tonumber(ARGV[3]); local n = #KEYS / 2\n"
           "local sec = math.floor(now / 1000); local out = {0, 0, 0, 0, 0, 0}\n"
           "for i = 1, n do out[5 + 2 * i] = -1; out[6 + 2 * i] = 0 end\n"
           "for i = 1, n do\n"
           "  local tpm = tonumber(ARGV[2 + 2 * i]); local bud = tonumber(ARGV[3 + 2 * i])\n"
           "  if tpm >= 0 then\n"
           "    local h = redis.call('HGETALL', KEYS[2 * i - 1]); local sum = 0; local old = nil\n"
           "    for j = 1, #h, 2 do\n"
           "      local s = tonumber(h[j])\n"
           "      if s < sec - 60 then redis.call('HDEL', KEYS[2 * i - 1], h[j])\n"
           "      else\n"
           "        local v = tonumber(h[j + 1]); sum = sum + v\n"
           "        if v > 0 and (old == nil or s < old) then old = s end\n"
           "      end\n"
           "    end\n"
           "    out[5 + 2 * i] = sum; out[6 + 2 * i] = old or sec\n"
           "    if sum + tokens > tpm then\n"
           "      local reset = 0\n"
           "      if tokens <= tpm and old then reset = (old + 61) * 1000 end\n"
           "      out[1] = 1; out[2] = i - 1; out[3] = sum; out[4] = reset\n"
           "      return out\n"
           "    end\n"
           "  end\n"
           "  if bud >= 0 then\n"
           "    local spent = tonumber(redis.call('HGET', KEYS[2 * i], 'spent') or '0')\n"
           "    local res = tonumber(redis.call('HGET', KEYS[2 * i], 'reserved') or '0')\n"
           "    if spent + res + micros > bud then\n"
           "      out[1] = 2; out[2] = i - 1; out[3] = spent; out[5] = spent; out[6] = res\n"
           "      return out\n"
           "    end\n"
           "  end\n"
           "end\n"
           "for i = 1, n do\n"
           "  if tonumber(ARGV[2 + 2 * i]) >= 0 then\n"
           "    redis.call('HINCRBY', KEYS[2 * i - 1], tostring(sec), ARGV[2])\n"
           "    redis.call('PEXPIRE', KEYS[2 * i - 1], 62000)\n"
           "    out[5 + 2 * i] = out[5 + 2 * i] + tokens\n"
           "  end\n"
           "  if tonumber(ARGV[3 + 2 * i]) >= 0 then\n"
           "    redis.call('HINCRBY', KEYS[2 * i], 'reserved', ARGV[3])\n"
           "    redis.call('PEXPIRE', KEYS[2 * i], 3456000000)\n"
           "  end\n"
           "end\n"
           "return out\n"};

/* Replaces a reservation by the usage reported.  ARGV: the bucket's second, the token
 * difference, minus the reserved micros, the micros spent, then per scope "1"/"0" for its
 * tokens and its budget (-1: none), then the second now.  Returns per scope the month's
 * spent (-1: no budget) and the threshold (80, 100) this settlement crossed first in the
 * cluster, or 0; then per scope the tokens in its 61 newest buckets (-1: no tokens limit)
 * and the oldest such bucket's second (0: none). */
static fr_redis_script SETTLE = {
    .lua =
        "local n = #KEYS / 2; local out = {}; local sec = tonumber(ARGV[5 + 2 * n])\n"
        "for i = 1, n do\n"
        "  out[2 * n + 2 * i - 1] = -1; out[2 * n + 2 * i] = 0\n"
        "  if ARGV[3 + 2 * i] == '1' then\n"
        "    if redis.call('HEXISTS', KEYS[2 * i - 1], ARGV[1]) == 1 then\n"
        "      redis.call('HINCRBY', KEYS[2 * i - 1], ARGV[1], ARGV[2])\n"
        "    end\n"
        "    local h = redis.call('HGETALL', KEYS[2 * i - 1]); local sum = 0; local old = 0\n"
        "    for j = 1, #h, 2 do\n"
        "      local s = tonumber(h[j]); local v = tonumber(h[j + 1])\n"
        "      if s >= sec - 60 then\n"
        "        sum = sum + v\n"
        "        if v > 0 and (old == 0 or s < old) then old = s end\n"
        "      end\n"
        "    end\n"
        "    out[2 * n + 2 * i - 1] = sum; out[2 * n + 2 * i] = old\n"
        "  end\n"
        "  local b = tonumber(ARGV[4 + 2 * i])\n"
        "  out[2 * i - 1] = -1; out[2 * i] = 0\n"
        "  if b >= 0 then\n"
        "    redis.call('HINCRBY', KEYS[2 * i], 'reserved', ARGV[3])\n"
        "    local spent = redis.call('HINCRBY', KEYS[2 * i], 'spent', ARGV[4])\n"
        "    redis.call('PEXPIRE', KEYS[2 * i], 3456000000)\n"
        "    out[2 * i - 1] = spent\n"
        "    if b > 0 and spent >= b then\n"
        "      redis.call('HSETNX', KEYS[2 * i], 'w80', '1')\n"
        "      if redis.call('HSETNX', KEYS[2 * i], 'w100', '1') == 1 then out[2 * i] = 100 end\n"
        "    elseif b > 0 and spent * 100 >= b * 80 then\n"
        "      if redis.call('HSETNX', KEYS[2 * i], 'w80', '1') == 1 then out[2 * i] = 80 end\n"
        "    end\n"
        "  end\n"
        "end\n"
        "return out\n"};

/* What a scope has used.  KEYS: requests log, runs, tokens, budget; ARGV: now (ms). */
static fr_redis_script USAGE = {
    .lua = "local now = tonumber(ARGV[1]); local sec = math.floor(now / 1000)\n"
           "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)\n"
           "redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)\n"
           "local r = redis.call('ZCARD', KEYS[1]); local ro = 0\n"
           "local o = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')\n"
           "if o[2] then ro = tonumber(o[2]) end\n"
           "local h = redis.call('HGETALL', KEYS[3]); local sum = 0; local old = 0\n"
           "for j = 1, #h, 2 do\n"
           "  local s = tonumber(h[j])\n"
           "  if s >= sec - 60 then\n"
           "    sum = sum + tonumber(h[j + 1])\n"
           "    if old == 0 or s < old then old = s end\n"
           "  end\n"
           "end\n"
           "local spent = tonumber(redis.call('HGET', KEYS[4], 'spent') or '0')\n"
           "local res = tonumber(redis.call('HGET', KEYS[4], 'reserved') or '0')\n"
           "return {r, ro, redis.call('ZCARD', KEYS[2]), sum, old * 1000, spent, res}\n"};

static fr_redis_script SEED = {
    .lua = "if redis.call('HSETNX', KEYS[1], 'seeded', '1') == 1 then\n"
           "  local s = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')\n"
           "  if tonumber(ARGV[1]) > s then redis.call('HSET', KEYS[1], 'spent', ARGV[1]) end\n"
           "  redis.call('PEXPIRE', KEYS[1], 3456000000)\n"
           "end\n"
           "return 0\n"};

#define KEYLEN 512

static void key_of(const fr_state *st, char *out, const char *tenant, const char *what,
                   const fr_rl_scope *s, const char *month)
{
    char model[200] = "";
    if (s->model && s->model[0])
        snprintf(model, sizeof model, ":m:%s", s->model);
    fr__state_key(st, out, KEYLEN, "{t:%s}:%s:%s:%s%s%s%s", tenant, what, s->kind, s->id, model,
                  month ? ":" : "", month ? month : "");
}

static int64_t elem(const redisReply *r, size_t i)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        return 0;
    const redisReply *e = r->element[i];
    if (e->type == REDIS_REPLY_INTEGER)
        return e->integer;
    if (e->type == REDIS_REPLY_STRING)
        return strtoll(e->str, NULL, 10);
    return 0;
}

/* Runs a script; NULL with err set when Redis failed or answered an error. */
static redisReply *run(fr_state *st, fr_redis_script *s, int nkeys, int argc, const char **argv,
                       char *err, size_t errlen)
{
    if (!st || st->kind != FR_STATE_REDIS) {
        snprintf(err, errlen, "limits: no Redis state");
        return NULL;
    }
    return fr__redis_eval(st->redis, s, nkeys, argc, argv, NULL, err, errlen);
}

int fr__limits_redis_admit(fr_state *st, const char *tenant, const fr_rl_scope s[2],
                           const int64_t rpm[2], const int64_t conc[2], const int64_t budget[2],
                           const char *month, int64_t per_run, int64_t now_ms, int64_t lease_ms,
                           const char *member, fr_rl_verdict *v, char *err, size_t errlen)
{
    char k[6][KEYLEN], num[6][24], tail[3][24];
    key_of(st, k[0], tenant, "req", &s[0], NULL);
    key_of(st, k[1], tenant, "req", &s[1], NULL);
    key_of(st, k[2], tenant, "run", &s[0], NULL);
    key_of(st, k[3], tenant, "run", &s[1], NULL);
    key_of(st, k[4], tenant, "bud", &s[0], month);
    key_of(st, k[5], tenant, "bud", &s[1], month);
    int64_t nums[6] = {now_ms, rpm[0], rpm[1], conc[0], conc[1], lease_ms};
    for (int i = 0; i < 6; i++)
        snprintf(num[i], sizeof num[i], "%" PRId64, nums[i]);
    int64_t tails[3] = {budget[0], budget[1], per_run};
    for (int i = 0; i < 3; i++)
        snprintf(tail[i], sizeof tail[i], "%" PRId64, tails[i]);
    const char *argv[] = {k[0],   k[1],   k[2],   k[3],   k[4],   k[5],    num[0],  num[1],
                          num[2], num[3], num[4], num[5], member, tail[0], tail[1], tail[2]};
    redisReply *r = run(st, &ADMIT, 6, 16, argv, err, errlen);
    if (!r)
        return -1;
    memset(v, 0, sizeof *v);
    v->refused = (int)elem(r, 0);
    v->scope = (int)elem(r, 1);
    v->used = elem(r, 2);
    v->reset_ms = elem(r, 3);
    for (int i = 0; i < 2; i++) {
        v->after[i] = elem(r, 4 + 2 * (size_t)i);
        v->after_oldest_ms[i] = elem(r, 5 + 2 * (size_t)i);
        v->run_spent[i] = v->refused ? -1 : elem(r, 8 + 2 * (size_t)i);
        v->run_crossed[i] = v->refused ? 0 : (int)elem(r, 9 + 2 * (size_t)i);
    }
    freeReplyObject(r);
    return 0;
}

int fr__limits_redis_leave(fr_state *st, const char *tenant, const fr_rl_scope s[2],
                           const char *member, char *err, size_t errlen)
{
    char k[2][KEYLEN];
    key_of(st, k[0], tenant, "run", &s[0], NULL);
    key_of(st, k[1], tenant, "run", &s[1], NULL);
    const char *argv[] = {k[0], k[1], member};
    redisReply *r = run(st, &LEAVE, 2, 3, argv, err, errlen);
    freeReplyObject(r);
    return r ? 0 : -1;
}

int fr__limits_redis_reserve(fr_state *st, const char *tenant, const fr_rl_scope *s, size_t n,
                             const int64_t *tpm, const int64_t *budget, int64_t now_ms,
                             const char *month, int64_t tokens, int64_t micros, fr_rl_verdict *v,
                             char *err, size_t errlen)
{
    if (n > 4)
        n = 4;
    char k[8][KEYLEN], num[11][24];
    const char *argv[19];
    int a = 0;
    for (size_t i = 0; i < n; i++) {
        key_of(st, k[2 * i], tenant, "tok", &s[i], NULL);
        key_of(st, k[2 * i + 1], tenant, "bud", &s[i], month);
        argv[a++] = k[2 * i];
        argv[a++] = k[2 * i + 1];
    }
    int64_t head[3] = {now_ms, tokens, micros < 0 ? 0 : micros};
    int m = 0;
    for (int i = 0; i < 3; i++) {
        snprintf(num[m], sizeof num[m], "%" PRId64, head[i]);
        argv[a++] = num[m++];
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(num[m], sizeof num[m], "%" PRId64, tpm[i]);
        argv[a++] = num[m++];
        snprintf(num[m], sizeof num[m], "%" PRId64, budget[i]);
        argv[a++] = num[m++];
    }
    redisReply *r = run(st, &RESERVE, (int)(2 * n), a, argv, err, errlen);
    if (!r)
        return -1;
    memset(v, 0, sizeof *v);
    v->refused = (int)elem(r, 0);
    v->scope = (int)elem(r, 1);
    v->used = elem(r, 2);
    v->reset_ms = elem(r, 3);
    v->spent = elem(r, 4);
    v->reserved = elem(r, 5);
    for (size_t i = 0; i < n; i++) {
        v->tokens[i] = elem(r, 6 + 2 * i);
        v->tokens_oldest_s[i] = elem(r, 7 + 2 * i);
    }
    freeReplyObject(r);
    return 0;
}

int fr__limits_redis_settle(fr_state *st, const char *tenant, const fr_rl_scope *s, size_t n,
                            const int64_t *tpm, const int64_t *budget, int64_t reserved_ms,
                            int64_t now_ms, const char *month, int64_t est_tokens, int64_t tokens,
                            int64_t est_micros, int64_t micros, fr_rl_settled *out, char *err,
                            size_t errlen)
{
    if (n > 4)
        n = 4;
    char k[8][KEYLEN], num[5][24], bud[4][24];
    const char *argv[21];
    int a = 0;
    for (size_t i = 0; i < n; i++) {
        key_of(st, k[2 * i], tenant, "tok", &s[i], NULL);
        key_of(st, k[2 * i + 1], tenant, "bud", &s[i], month);
        argv[a++] = k[2 * i];
        argv[a++] = k[2 * i + 1];
    }
    int64_t head[4] = {reserved_ms / 1000, tokens - est_tokens, -(est_micros < 0 ? 0 : est_micros),
                       micros < 0 ? 0 : micros};
    for (int i = 0; i < 4; i++) {
        snprintf(num[i], sizeof num[i], "%" PRId64, head[i]);
        argv[a++] = num[i];
    }
    for (size_t i = 0; i < n; i++) {
        argv[a++] = tpm[i] >= 0 ? "1" : "0";
        snprintf(bud[i], sizeof bud[i], "%" PRId64, budget[i] >= 0 ? budget[i] : -1);
        argv[a++] = bud[i];
    }
    snprintf(num[4], sizeof num[4], "%" PRId64, now_ms / 1000);
    argv[a++] = num[4];
    redisReply *r = run(st, &SETTLE, (int)(2 * n), a, argv, err, errlen);
    for (size_t i = 0; i < n; i++) {
        out->spent[i] = r ? elem(r, 2 * i) : -1;
        out->crossed[i] = r ? (int)elem(r, 2 * i + 1) : 0;
        out->tokens[i] = r ? elem(r, 2 * n + 2 * i) : -1;
        out->tokens_oldest_s[i] = r ? elem(r, 2 * n + 2 * i + 1) : 0;
    }
    freeReplyObject(r);
    return r ? 0 : -1;
}

int fr__limits_redis_usage(fr_state *st, const char *tenant, const fr_rl_scope *s, int64_t now_ms,
                           const char *month, fr_rl_usage *u, char *err, size_t errlen)
{
    char k[4][KEYLEN], now[24];
    key_of(st, k[0], tenant, "req", s, NULL);
    key_of(st, k[1], tenant, "run", s, NULL);
    key_of(st, k[2], tenant, "tok", s, NULL);
    key_of(st, k[3], tenant, "bud", s, month);
    snprintf(now, sizeof now, "%" PRId64, now_ms);
    const char *argv[] = {k[0], k[1], k[2], k[3], now};
    redisReply *r = run(st, &USAGE, 4, 5, argv, err, errlen);
    if (!r)
        return -1;
    u->requests = elem(r, 0);
    u->requests_oldest_ms = elem(r, 1);
    u->runs = elem(r, 2);
    u->tokens = elem(r, 3);
    u->tokens_oldest_ms = elem(r, 4);
    u->spent = elem(r, 5);
    u->reserved = elem(r, 6);
    freeReplyObject(r);
    return 0;
}

int fr__limits_redis_seed(fr_state *st, const char *tenant, const fr_rl_scope *s, const char *month,
                          int64_t micros, char *err, size_t errlen)
{
    char k[KEYLEN], num[24];
    key_of(st, k, tenant, "bud", s, month);
    snprintf(num, sizeof num, "%" PRId64, micros);
    const char *argv[] = {k, num};
    redisReply *r = run(st, &SEED, 1, 2, argv, err, errlen);
    freeReplyObject(r);
    return r ? 0 : -1;
}
