/* The Redis journal backend (core/state/journal_redis.h). */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "state/journal_redis.h"

/* Entries buffered (STEP, OFF) before a write even without a boundary: a long attempt's
 * effects do not pile up in memory. */
#define MAX_PENDING 256

typedef struct journal_redis {
    fr_journal base; /* the seam's view: first */
    pthread_mutex_t mu;
    fr_state *s;
    fr_journal_sync sync;
    uint64_t token;
    char token_text[24], ttl_ms[24];
    char key[256], fence[256], run_id[40];
    char **pending; /* lines not yet written */
    size_t *pending_len;
    size_t n_pending;
    fr_status failed; /* the first failure; appends after it fail too */
    char error[1024];
} journal_redis;

/* KEYS: the journal, the run's fencing counter.  ARGV: token, ttl ms, lines...
 * -> {entries added, or -1 when a newer token holds the run; the newer token} */
static fr_redis_script APPEND = {
    .lua = "local tok = tonumber(ARGV[1])\n"
           "local f = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
           "if f > tok then return {-1, f} end\n"
           "local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)\n"
           "if last[1] then\n"
           "  local lt = tonumber(last[1][2][2]) or 0\n"
           "  if lt > tok then return {-1, lt} end\n"
           "end\n"
           "for i = 3, #ARGV do\n"
           "  redis.call('XADD', KEYS[1], '*', 'k', ARGV[1], 'e', ARGV[i])\n"
           "end\n"
           "local ttl = tonumber(ARGV[2])\n"
           "if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end\n"
           "return {#ARGV - 2, f}\n"};

static void keys_of(fr_state *s, const char *tenant, const char *run_id, char *key, char *fence,
                    size_t size)
{
    fr__state_key(s, key, size, "{t:%s}:journal:%s", tenant, run_id);
    if (fence)
        fr__state_key(s, fence, size, "{t:%s}:run:%s:fence", tenant, run_id);
}

/* Writes the buffered lines in one round trip (mu held). */
static fr_status flush(journal_redis *j)
{
    if (j->failed != FR_OK || j->n_pending == 0)
        return j->failed;
    size_t argc = 4 + j->n_pending;
    const char **argv = calloc(argc, sizeof *argv);
    size_t *lens = calloc(argc, sizeof *lens);
    fr_status st = FR_OK;
    if (!argv || !lens) {
        snprintf(j->error, sizeof j->error, "journal %s: out of memory", j->key);
        st = FR_E_NOMEM;
        goto out;
    }
    argv[0] = j->key, argv[1] = j->fence, argv[2] = j->token_text, argv[3] = j->ttl_ms;
    for (size_t i = 0; i < 4; i++)
        lens[i] = strlen(argv[i]);
    for (size_t i = 0; i < j->n_pending; i++)
        argv[4 + i] = j->pending[i], lens[4 + i] = j->pending_len[i];
    char err[512];
    redisReply *r = fr__redis_eval(j->s->redis, &APPEND, 2, (int)argc, argv, lens, err, sizeof err);
    if (!r) {
        snprintf(j->error, sizeof j->error, "journal %s: %s", j->key, err);
        st = FR_E_NETWORK;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
               r->element[0]->type == REDIS_REPLY_INTEGER) {
        if (r->element[0]->integer < 0) {
            snprintf(j->error, sizeof j->error,
                     "run %s: journal append refused: its fencing token %" PRIu64
                     " is older than the run's newest (%lld): another execution took the run "
                     "over (lease_lost)",
                     j->run_id, j->token, r->element[1]->integer);
            st = FR_E_LEASE_LOST;
        }
    } else {
        snprintf(j->error, sizeof j->error, "journal %s: redis %s: %.200s", j->key,
                 fr__redis_pool_url(j->s->redis), r->str ? r->str : "unexpected reply");
        st = FR_E_NETWORK;
    }
    if (r)
        freeReplyObject(r);
out:
    free(argv);
    free(lens);
    for (size_t i = 0; i < j->n_pending; i++)
        free(j->pending[i]);
    j->n_pending = 0;
    j->failed = st;
    return st;
}

static fr_status redis_append(fr_journal *base, json_object *entry, int boundary, char *err,
                              size_t errlen)
{
    journal_redis *j = (journal_redis *)base;
    size_t len = 0;
    char *line = fr__journal_line(entry, &len);
    pthread_mutex_lock(&j->mu);
    fr_status st = j->failed;
    if (st == FR_OK && !line) {
        snprintf(j->error, sizeof j->error, "journal %s: out of memory", j->key);
        st = j->failed = FR_E_NOMEM;
    }
    if (st == FR_OK) {
        j->pending[j->n_pending] = line;
        j->pending_len[j->n_pending++] = len;
        line = NULL;
        if (j->sync == FR_JOURNAL_SYNC_EFFECT || boundary == FR_JOURNAL_STEP ||
            j->n_pending == MAX_PENDING)
            st = flush(j);
    }
    if (st != FR_OK)
        snprintf(err, errlen, "%s", j->error);
    pthread_mutex_unlock(&j->mu);
    free(line);
    return st;
}

static const fr_journal_ops redis_ops = {.append = redis_append};

fr_journal *fr__journal_redis_open(fr_state *s, const char *tenant, const char *run_id,
                                   uint64_t token, int64_t ttl_us, fr_journal_sync sync)
{
    journal_redis *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->pending = calloc(MAX_PENDING, sizeof *j->pending);
    j->pending_len = calloc(MAX_PENDING, sizeof *j->pending_len);
    if (!j->pending || !j->pending_len) {
        free(j->pending);
        free(j->pending_len);
        free(j);
        return NULL;
    }
    j->base.ops = &redis_ops;
    j->s = s;
    j->sync = sync;
    j->token = token;
    snprintf(j->token_text, sizeof j->token_text, "%" PRIu64, token);
    snprintf(j->ttl_ms, sizeof j->ttl_ms, "%" PRId64, ttl_us > 0 ? (ttl_us + 999) / 1000 : 0);
    snprintf(j->run_id, sizeof j->run_id, "%s", run_id);
    keys_of(s, tenant, run_id, j->key, j->fence, sizeof j->key);
    pthread_mutex_init(&j->mu, NULL);
    return &j->base;
}

fr_status fr__journal_redis_close(fr_journal *base, char *err, size_t errlen)
{
    if (!base)
        return FR_OK;
    journal_redis *j = (journal_redis *)base;
    pthread_mutex_lock(&j->mu);
    fr_status st = flush(j);
    pthread_mutex_unlock(&j->mu);
    if (st != FR_OK)
        snprintf(err, errlen, "%s", j->error);
    for (size_t i = 0; i < j->n_pending; i++)
        free(j->pending[i]);
    free(j->pending);
    free(j->pending_len);
    pthread_mutex_destroy(&j->mu);
    free(j);
    return st;
}

fr_status fr__journal_redis_read(fr_state *s, const char *tenant, const char *run_id,
                                 fr_journal_doc *doc, int *found, char *err, size_t errlen)
{
    char key[256], why[800];
    keys_of(s, tenant, run_id, key, NULL, sizeof key);
    memset(doc, 0, sizeof *doc);
    *found = 0;
    const char *argv[] = {"XRANGE", key, "-", "+"};
    redisReply *r = fr__redis_command(s->redis, 4, argv, NULL, why, sizeof why);
    if (!r) {
        snprintf(err, errlen, "journal %s: %s", key, why);
        return FR_E_NETWORK;
    }
    fr_status st = FR_OK;
    if (r->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "journal %s: XRANGE: unexpected reply", key);
        st = FR_E_NETWORK;
    } else if (r->elements > 0) {
        /* The entries' lines, in order, are the journal file's text. */
        size_t total = 0;
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *it = r->element[i], *f;
            if (it->type != REDIS_REPLY_ARRAY || it->elements != 2 ||
                (f = it->element[1])->type != REDIS_REPLY_ARRAY || f->elements != 4 ||
                f->element[3]->type != REDIS_REPLY_STRING) {
                snprintf(err, errlen, "journal %s: stream entry %zu is not a journal entry {k, e}",
                         key, i + 1);
                st = FR_E_INVALID;
                break;
            }
            total += f->element[3]->len;
        }
        char *text = st == FR_OK ? malloc(total + 1) : NULL;
        if (st == FR_OK && !text) {
            snprintf(err, errlen, "journal %s: out of memory", key);
            st = FR_E_NOMEM;
        }
        if (text) {
            size_t at = 0;
            for (size_t i = 0; i < r->elements; i++) {
                const redisReply *e = r->element[i]->element[1]->element[3];
                memcpy(text + at, e->str, e->len);
                at += e->len;
            }
            if (fr__journal_parse(text, total, doc, why, sizeof why) != 0) {
                snprintf(err, errlen, "journal %s: %s", key, why);
                st = FR_E_INVALID;
            } else {
                *found = 1;
            }
            free(text);
        }
    }
    freeReplyObject(r);
    return st;
}
