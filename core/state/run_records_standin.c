/* A STAND-IN for the run records (core/state/run_records.h) until the records helper's
 * core/state/run_records.c lands: just enough of fr__run_record_put/get for the durable
 * queue and its tests (status, fence, executions, report, trace in one hash per run).
 * Every definition is weak, so the real implementation replaces it at link time; the lead
 * deletes this file when merging the records branch (issue 25). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/run_records.h"

#define WEAK __attribute__((weak))

static const char *const status_names[] = {"queued", "running", "succeeded", "failed", "cancelled"};

WEAK const char *fr__record_status_name(fr_record_status s)
{
    return (unsigned)s < 5 ? status_names[s] : "unknown";
}

WEAK void fr__run_record_clear(fr_run_record *r)
{
    free(r->report);
    free(r->trace);
    r->report = r->trace = NULL;
}

/* KEYS: record.  ARGV: fence, ttl ms (0: none), then field, value pairs.  -> 1 | 0 (older) */
static fr_redis_script PUT = {
    .lua = "local cur = tonumber(redis.call('HGET', KEYS[1], 'fence') or '0')\n"
           "if tonumber(ARGV[1]) < cur then return 0 end\n"
           "for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end\n"
           "if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end\n"
           "return 1\n"};

WEAK fr_status fr__run_record_put(fr_state *s, const fr_run_record *r, int64_t ttl_us, char *err,
                                  size_t err_size)
{
    char key[256], fence[24], ttl[24], ex[24], sub[24], sta[24], fin[24];
    fr__state_key(s, key, sizeof key, "{t:%s}:run:%s", r->tenant, r->id);
    snprintf(fence, sizeof fence, "%" PRIu64, r->fence);
    snprintf(ttl, sizeof ttl, "%" PRId64, r->finished_at_us ? ttl_us / 1000 : 0);
    snprintf(ex, sizeof ex, "%u", r->executions);
    snprintf(sub, sizeof sub, "%" PRId64, r->submitted_at_us);
    snprintf(sta, sizeof sta, "%" PRId64, r->started_at_us);
    snprintf(fin, sizeof fin, "%" PRId64, r->finished_at_us);
    const char *argv[40] = {key, fence, ttl};
    size_t lens[40];
    int argc = 3;
#define F(name, v, n)                \
    do {                             \
        argv[argc] = name;           \
        lens[argc++] = strlen(name); \
        argv[argc] = (v);            \
        lens[argc++] = (n);          \
    } while (0)
    F("fence", fence, strlen(fence));
    F("status", fr__record_status_name(r->status), strlen(fr__record_status_name(r->status)));
    F("executions", ex, strlen(ex));
    F("namespace", r->namespace_, strlen(r->namespace_));
    F("manifest", r->manifest, strlen(r->manifest));
    F("node", r->node, strlen(r->node));
    F("submitted_at_us", sub, strlen(sub));
    F("started_at_us", sta, strlen(sta));
    F("finished_at_us", fin, strlen(fin));
    if (r->report)
        F("report", r->report, r->report_len ? r->report_len : strlen(r->report));
    if (r->trace)
        F("trace", r->trace, r->trace_len ? r->trace_len : strlen(r->trace));
#undef F
    for (int i = 0; i < 3; i++)
        lens[i] = strlen(argv[i]);
    redisReply *rep = fr__redis_eval(s->redis, &PUT, 1, argc, argv, lens, err, err_size);
    if (!rep)
        return FR_E_NETWORK;
    fr_status st = rep->type == REDIS_REPLY_INTEGER && rep->integer == 0 ? FR_E_LEASE_LOST : FR_OK;
    freeReplyObject(rep);
    return st;
}

WEAK fr_status fr__run_record_get(fr_state *s, const char *tenant, const char *id, int with_trace,
                                  fr_run_record *out, char *err, size_t err_size)
{
    char key[256];
    fr__state_key(s, key, sizeof key, "{t:%s}:run:%s", tenant, id);
    const char *argv[] = {"HGETALL", key};
    redisReply *rep = fr__redis_command(s->redis, 2, argv, NULL, err, err_size);
    if (!rep)
        return FR_E_NETWORK;
    memset(out, 0, sizeof *out);
    fr_status st = rep->type == REDIS_REPLY_ARRAY && rep->elements ? FR_OK : FR_E_NOT_FOUND;
    snprintf(out->id, sizeof out->id, "%s", id);
    snprintf(out->tenant, sizeof out->tenant, "%s", tenant);
    for (size_t i = 0; st == FR_OK && i + 1 < rep->elements; i += 2) {
        const char *k = rep->element[i]->str, *v = rep->element[i + 1]->str;
        if (!strcmp(k, "status"))
            for (int n = 0; n < 5; n++)
                if (!strcmp(v, status_names[n]))
                    out->status = (fr_record_status)n;
        if (!strcmp(k, "fence"))
            out->fence = strtoull(v, NULL, 10);
        if (!strcmp(k, "executions"))
            out->executions = (unsigned)strtoul(v, NULL, 10);
        if (!strcmp(k, "report"))
            out->report = strdup(v), out->report_len = strlen(v);
        if (!strcmp(k, "trace") && with_trace)
            out->trace = strdup(v), out->trace_len = strlen(v);
    }
    freeReplyObject(rep);
    return st;
}
