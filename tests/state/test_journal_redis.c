/* The Redis journal backend (core/state/journal_redis.c) against a real Redis
 * (FR_TEST_REDIS_URL, started by tests/state/test_journal_redis.sh): entries read back as
 * the file journal's, the fenced Lua append (a newer token in the run's fencing counter or
 * in the journal refuses it with FR_E_LEASE_LOST, and every append after), `step`
 * buffering until a step boundary, the retention TTL, and unreadable streams.  (End to
 * end, workers resuming and fencing: tests/e2e/e2e_journal_cluster.sh.) */
#include <stdlib.h>
#include <string.h>

#include "fr_test.h"
#include "state/journal_redis.h"
#include "state/state.h"

static fr_state *st;

static long long command_int(int argc, const char **argv)
{
    char err[256];
    redisReply *r = fr__redis_command(st->redis, argc, argv, NULL, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return v;
}

static long long xlen(const char *run)
{
    char key[128];
    snprintf(key, sizeof key, "fluxroute:{t:t1}:journal:%s", run);
    const char *argv[] = {"XLEN", key};
    return command_int(2, argv);
}

static void set_fence(const char *run, const char *token)
{
    char key[128], err[256];
    snprintf(key, sizeof key, "fluxroute:{t:t1}:run:%s:fence", run);
    const char *set[] = {"SET", key, token}, *del[] = {"DEL", key};
    redisReply *r =
        fr__redis_command(st->redis, token ? 3 : 2, token ? set : del, NULL, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    freeReplyObject(r);
}

static json_object *header(const char *run)
{
    json_object *h = json_tokener_parse(
        "{\"t\": \"header\", \"format\": \"fluxroute-journal\", \"version\": 1, \"seed\": 7, "
        "\"input\": {}, \"manifest_name\": \"m.yaml\", \"manifest_sha256\": \"00\", "
        "\"manifest\": \"pipeline: []\", \"plugins\": []}");
    json_object_object_add(h, "run_id", json_object_new_string(run));
    return h;
}

static json_object *attempt(void)
{
    return json_tokener_parse(
        "{\"t\": \"attempt\", \"step\": \"s1\", \"index\": 0, \"attempt\": 1, \"agent\": \"a\"}");
}

static json_object *effect(void)
{
    return json_tokener_parse("{\"t\": \"effect\", \"step\": \"s1\", \"index\": 0, "
                              "\"effect\": {\"kind\": \"clock\", \"value\": 1}}");
}

static fr_status put(fr_journal *j, json_object *e, int boundary, char *err, size_t size)
{
    fr_status s = j->ops->append(j, e, boundary, err, size);
    json_object_put(e);
    return s;
}

static void test_read_back(void)
{
    char err[1024];
    fr_journal *j = fr__journal_redis_open(st, "t1", "run-a", 1, 60000000, FR_JOURNAL_SYNC_EFFECT);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    ASSERT_STATUS(put(j, header("run-a"), FR_JOURNAL_STEP, err, sizeof err), FR_OK);
    ASSERT_STATUS(put(j, attempt(), FR_JOURNAL_EFFECT, err, sizeof err), FR_OK);
    ASSERT_STATUS(put(j, effect(), FR_JOURNAL_EFFECT, err, sizeof err), FR_OK);
    CU_ASSERT_EQUAL(xlen("run-a"), 3); /* effect: each entry written at once */
    ASSERT_STATUS(fr__journal_redis_close(j, err, sizeof err), FR_OK);
    char key[] = "fluxroute:{t:t1}:journal:run-a";
    const char *pttl[] = {"PTTL", key};
    long long ttl = command_int(2, pttl);
    CU_ASSERT(ttl > 0 && ttl <= 60000);

    fr_journal_doc d;
    int found = 0;
    ASSERT_STATUS(fr__journal_redis_read(st, "t1", "run-a", &d, &found, err, sizeof err), FR_OK);
    CU_ASSERT_EQUAL(found, 1);
    CU_ASSERT_EQUAL(d.n_entries, 3);
    json_object *steps, *s0, *atts, *a0, *eff;
    CU_ASSERT_FATAL(json_object_object_get_ex(d.trace, "steps", &steps));
    s0 = json_object_array_get_idx(steps, 0);
    CU_ASSERT_FATAL(s0 && json_object_object_get_ex(s0, "attempts", &atts));
    a0 = json_object_array_get_idx(atts, 0);
    CU_ASSERT_FATAL(a0 && json_object_object_get_ex(a0, "effects", &eff));
    CU_ASSERT_EQUAL(json_object_array_length(eff), 1); /* the attempt in flight, its effect */
    fr__journal_doc_free(&d);

    ASSERT_STATUS(fr__journal_redis_read(st, "t1", "no-such-run", &d, &found, err, sizeof err),
                  FR_OK);
    CU_ASSERT_EQUAL(found, 0);
}

static void test_fenced(void)
{
    char err[1024];
    set_fence("run-b", "1");
    fr_journal *old = fr__journal_redis_open(st, "t1", "run-b", 1, 0, FR_JOURNAL_SYNC_EFFECT);
    ASSERT_STATUS(put(old, header("run-b"), FR_JOURNAL_STEP, err, sizeof err), FR_OK);
    /* Another execution starts the run: the counter moves to 2. */
    set_fence("run-b", "2");
    ASSERT_STATUS(put(old, attempt(), FR_JOURNAL_EFFECT, err, sizeof err), FR_E_LEASE_LOST);
    ASSERT_CONTAINS(err, "run run-b: journal append refused: its fencing token 1 is older than "
                         "the run's newest (2)");
    ASSERT_CONTAINS(err, "lease_lost");
    /* Every append after a refused one is refused too, and the close says so. */
    ASSERT_STATUS(put(old, effect(), FR_JOURNAL_EFFECT, err, sizeof err), FR_E_LEASE_LOST);
    ASSERT_STATUS(fr__journal_redis_close(old, err, sizeof err), FR_E_LEASE_LOST);
    CU_ASSERT_EQUAL(xlen("run-b"), 1);

    fr_journal *newer = fr__journal_redis_open(st, "t1", "run-b", 2, 0, FR_JOURNAL_SYNC_EFFECT);
    ASSERT_STATUS(put(newer, attempt(), FR_JOURNAL_EFFECT, err, sizeof err), FR_OK);
    ASSERT_STATUS(fr__journal_redis_close(newer, err, sizeof err), FR_OK);
    /* The counter gone (expired), the journal's own last token still fences token 1. */
    set_fence("run-b", NULL);
    old = fr__journal_redis_open(st, "t1", "run-b", 1, 0, FR_JOURNAL_SYNC_EFFECT);
    ASSERT_STATUS(put(old, effect(), FR_JOURNAL_EFFECT, err, sizeof err), FR_E_LEASE_LOST);
    ASSERT_STATUS(fr__journal_redis_close(old, err, sizeof err), FR_E_LEASE_LOST);
    CU_ASSERT_EQUAL(xlen("run-b"), 2);
}

static void test_step_buffers(void)
{
    char err[1024];
    fr_journal *j = fr__journal_redis_open(st, "t1", "run-c", 1, 0, FR_JOURNAL_SYNC_STEP);
    ASSERT_STATUS(put(j, header("run-c"), FR_JOURNAL_STEP, err, sizeof err), FR_OK);
    ASSERT_STATUS(put(j, attempt(), FR_JOURNAL_EFFECT, err, sizeof err), FR_OK);
    ASSERT_STATUS(put(j, effect(), FR_JOURNAL_EFFECT, err, sizeof err), FR_OK);
    CU_ASSERT_EQUAL(xlen("run-c"), 1); /* effects wait for the step's outcome */
    json_object *step = json_tokener_parse(
        "{\"t\": \"step\", \"step\": \"s1\", \"status\": \"succeeded\", \"output\": 1}");
    ASSERT_STATUS(put(j, step, FR_JOURNAL_STEP, err, sizeof err), FR_OK);
    CU_ASSERT_EQUAL(xlen("run-c"), 4); /* written together, in order */
    ASSERT_STATUS(put(j, effect(), FR_JOURNAL_EFFECT, err, sizeof err), FR_OK);
    ASSERT_STATUS(fr__journal_redis_close(j, err, sizeof err), FR_OK);
    CU_ASSERT_EQUAL(xlen("run-c"), 5); /* the close writes what is buffered */
}

static void test_unreadable(void)
{
    char err[1024];
    const char *bad[] = {"XADD", "fluxroute:{t:t1}:journal:run-d",       "*", "k", "1",
                         "e",    "0123456789abcdef {\"t\":\"header\"}\n"};
    char id[64];
    char e2[256];
    redisReply *r = fr__redis_command(st->redis, 7, bad, NULL, e2, sizeof e2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    snprintf(id, sizeof id, "%s", r->str ? r->str : "");
    freeReplyObject(r);
    fr_journal_doc d;
    int found = 1;
    ASSERT_STATUS(fr__journal_redis_read(st, "t1", "run-d", &d, &found, err, sizeof err),
                  FR_E_INVALID);
    CU_ASSERT_EQUAL(found, 0);
    ASSERT_CONTAINS(err, "journal fluxroute:{t:t1}:journal:run-d: entry 1 (byte 0) is corrupted: "
                         "checksum mismatch");
    /* A stream entry that is not {k, e}. */
    const char *odd[] = {"XADD", "fluxroute:{t:t1}:journal:run-e", "*", "x", "1"};
    r = fr__redis_command(st->redis, 5, odd, NULL, e2, sizeof e2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    freeReplyObject(r);
    ASSERT_STATUS(fr__journal_redis_read(st, "t1", "run-e", &d, &found, err, sizeof err),
                  FR_E_INVALID);
    ASSERT_CONTAINS(err, "stream entry 1 is not a journal entry {k, e}");
}

int main(void)
{
    const char *url = getenv("FR_TEST_REDIS_URL");
    char err[256];
    if (!url || fr__state_open(url, "FR_TEST_REDIS_URL", NULL, &st, err, sizeof err) != FR_OK) {
        fprintf(stderr, "FR_TEST_REDIS_URL: run through tests/state/test_journal_redis.sh\n");
        return 1;
    }
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("journal_redis", NULL, NULL);
    CU_add_test(s, "entries read back as the file journal's, with the TTL", test_read_back);
    CU_add_test(s, "fenced appends", test_fenced);
    CU_add_test(s, "step: buffered until the step's outcome", test_step_buffers);
    CU_add_test(s, "unreadable streams", test_unreadable);
    int rc = fr_test_run_all();
    fr__state_free(st);
    return rc;
}
