/* serve's tenant and key limits with memory state (core/serve/serve_quota.c), on an
 * injected clock: the sliding log's exact semantics and Retry-After, concurrent runs,
 * tokens per minute reserve-then-settle, budgets and their month rollover, and what an
 * admission costs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "controlplane/billing.h"
#include "serve/serve_quota.h"

static int64_t fake_now;
static int64_t clock_fn(void)
{
    return fake_now;
}
#define S 1000000LL

static int64_t run_cost; /* the card's per_run */
static int price_fn(void *ud, const char *model, int64_t *in, int64_t *out, int64_t *per_run)
{
    (void)ud, (void)model;
    *in = *out = 1000000; /* 1 micro-unit per token */
    *per_run = run_cost;
    return 0;
}

static fr_quota *fresh(const char *tenant_doc, const char *key_doc)
{
    fr_quota *q = fr__quota_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    fr__quota_set_clock(q, clock_fn);
    fr__quota_set_prices(q, price_fn, NULL);
    CU_ASSERT_EQUAL(fr__quota_set_remote_text(q, 1, "acme", tenant_doc), 0);
    CU_ASSERT_EQUAL(fr__quota_set_remote_text(q, 0, "k1", key_doc), 0);
    return q;
}

static const fr_identity who = {.id = "k1", .tenant = "acme", .namespace_ = "acme"};

static int admit(fr_quota *q, int *retry_after, char *code, size_t n)
{
    fr_reply out = {0};
    int rc = fr__quota_admit(q, &who, &out);
    *retry_after = out.retry_after;
    code[0] = '\0';
    if (out.body) {
        const char *c = strstr(out.body, "\"code\":\"");
        if (c)
            snprintf(code, n, "%.*s", (int)strcspn(c + 8, "\""), c + 8);
    }
    free(out.body);
    return rc;
}

static void test_sliding_log(void)
{
    fake_now = 1700000000 * S;
    fr_quota *q = fresh("{}", "{\"requests_per_minute\": 5}");
    int ra;
    char code[64];
    /* A burst of N at once, then nothing until the first leaves the window. */
    for (int i = 0; i < 5; i++) {
        fake_now += S; /* one a second: t0+1 .. t0+5 */
        CU_ASSERT_EQUAL(admit(q, &ra, code, sizeof code), 0);
        fr__quota_leave(q, &who);
    }
    CU_ASSERT_EQUAL(admit(q, &ra, code, sizeof code), -1);
    CU_ASSERT_STRING_EQUAL(code, "rate_limited");
    CU_ASSERT_EQUAL(ra, 56);     /* the first (t0+1) leaves at t0+61; now t0+5 */
    fake_now += 55 * S + 500000; /* t0+60.5: still 5 in the last 60 s */
    CU_ASSERT_EQUAL(admit(q, &ra, code, sizeof code), -1);
    CU_ASSERT_EQUAL(ra, 1);
    fake_now += 500001; /* just past t0+61 */
    CU_ASSERT_EQUAL(admit(q, &ra, code, sizeof code), 0);
    fr__quota_leave(q, &who);
    CU_ASSERT_EQUAL(admit(q, &ra, code, sizeof code), -1); /* the second leaves at t0+62 */
    /* Never more than N in any rolling 60 s, whatever the pattern. */
    fr__quota_free(q);
    q = fresh("{}", "{\"requests_per_minute\": 7}");
    int64_t times[2000];
    size_t n = 0;
    srand(7);
    for (int i = 0; i < 2000; i++) {
        fake_now += (rand() % 4000) * 1000; /* 0..4 s apart */
        if (admit(q, &ra, code, sizeof code) == 0) {
            times[n++] = fake_now;
            fr__quota_leave(q, &who);
        }
    }
    int worst = 0;
    for (size_t i = 0; i < n; i++) {
        int c = 0;
        for (size_t j = i; j < n && times[j] - times[i] < 60 * S; j++)
            c++;
        worst = c > worst ? c : worst;
    }
    CU_ASSERT_EQUAL(worst, 7);
    fr__quota_free(q);
}

static void test_concurrent_runs(void)
{
    fr_quota *q = fresh("{\"concurrent_runs\": 2}", "{}");
    int ra;
    char code[64];
    CU_ASSERT_EQUAL(admit(q, &ra, code, sizeof code), 0);
    CU_ASSERT_EQUAL(admit(q, &ra, code, sizeof code), 0);
    CU_ASSERT_EQUAL(admit(q, &ra, code, sizeof code), -1);
    CU_ASSERT_STRING_EQUAL(code, "too_many_runs");
    CU_ASSERT_EQUAL(ra, 1);
    fr__quota_leave(q, &who);
    CU_ASSERT_EQUAL(admit(q, &ra, code, sizeof code), 0);
    fr__quota_free(q);
}

static const char req[] = "{\"model\":\"m\",\"messages\":[],\"max_tokens\":100}"; /* 44 bytes */

static fr_status reserve(fr_quota_run *qr, void **t, int64_t *retry)
{
    char msg[512];
    *retry = 0;
    return qr->iface.reserve(qr->iface.ud, "p", req, strlen(req), t, retry, msg, sizeof msg);
}

static void test_tokens(void)
{
    fake_now = 1700000000 * S;
    fr_quota *q = fresh("{}", "{\"tokens_per_minute\": 200}");
    fr_quota_run qr;
    fr__quota_run_init(&qr, q, &who);
    void *t1, *t2;
    int64_t retry;
    CU_ASSERT_EQUAL(reserve(&qr, &t1, &retry), FR_OK); /* reserves 44 + 100 */
    fake_now += 10 * S;
    CU_ASSERT_EQUAL(reserve(&qr, &t2, &retry), FR_E_RATE_LIMITED);
    CU_ASSERT_EQUAL(retry, 50 * S);                    /* when the first leaves the window */
    qr.iface.settle(qr.iface.ud, t1, 1, "m", 5, 5, 0); /* it used 10 */
    CU_ASSERT_EQUAL(reserve(&qr, &t2, &retry), FR_OK);
    qr.iface.settle(qr.iface.ud, t2, 0, "", 0, 0, 0); /* failed: released */
    CU_ASSERT_EQUAL(reserve(&qr, &t2, &retry), FR_OK);
    qr.iface.settle(qr.iface.ud, t2, 0, "", 0, 0, 0);
    fr__quota_free(q);
}

static int count_lines(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return n;
}

static void test_budget_month_rollover(void)
{
    char audit[] = "/tmp/fr-quota-audit.XXXXXX";
    int fd = mkstemp(audit);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    setenv("AUDIT_LOG_PATH", audit, 1);
    /* 2026-01-31T23:59:00Z */
    fake_now = ((int64_t)fr__days_from_civil(2026, 1, 31) * 86400 + 86340) * S;
    fr_quota *q = fresh("{\"monthly_budget_micros\": 1000}", "{}");
    fr_quota_run qr;
    fr__quota_run_init(&qr, q, &who);
    void *t;
    int64_t retry;
    int calls = 0;
    while (reserve(&qr, &t, &retry) == FR_OK) {
        qr.iface.settle(qr.iface.ud, t, 1, "m", 100, 100, 0); /* 200 each */
        calls++;
    }
    /* Each reserves 144 against what is left: 4 fit (800 spent, 800 + 144 <= 1000), the
     * fifth (800 + 144 + ... ) too, then 1000 + 144 > 1000. */
    CU_ASSERT_EQUAL(calls, 5);
    CU_ASSERT_EQUAL(reserve(&qr, &t, &retry), FR_E_BUDGET_EXCEEDED);
    CU_ASSERT_EQUAL(retry, 60 * S); /* the month ends in a minute */
    fake_now += 61 * S;             /* February */
    CU_ASSERT_EQUAL(reserve(&qr, &t, &retry), FR_OK);
    qr.iface.settle(qr.iface.ud, t, 1, "m", 1, 1, 0);
    /* Concurrent reservations never pass the budget together. */
    void *many[16];
    int ok = 0;
    for (int i = 0; i < 16; i++)
        if (reserve(&qr, &many[ok], &retry) == FR_OK)
            ok++;
    CU_ASSERT_EQUAL(ok, 6); /* (1000 - 2) / 144 */
    for (int i = 0; i < ok; i++)
        qr.iface.settle(qr.iface.ud, many[i], 1, "m", 72, 72, 0);
    /* One audit line per threshold crossed: 80% and 100% in January, 80% in February. */
    CU_ASSERT_EQUAL(count_lines(audit, "\"budget_threshold\""), 3);
    CU_ASSERT_EQUAL(count_lines(audit, "budget_spent"), 1);
    unsetenv("AUDIT_LOG_PATH");
    unlink(audit);
    fr__quota_free(q);
}

/* The rate card's per_run is charged to budgets at admission, as invoices charge each run:
 * a run whose price would pass the tenant's or the key's budget is refused. */
static void test_run_price(void)
{
    fake_now = ((int64_t)fr__days_from_civil(2026, 3, 10) * 86400) * S;
    run_cost = 300;
    fr_quota *q = fresh("{\"monthly_budget_micros\": 1000}", "{\"monthly_budget_micros\": 700}");
    int ra;
    char code[32];
    CU_ASSERT_EQUAL(admit(q, &ra, code, sizeof code), 0);
    fr__quota_leave(q, &who);
    CU_ASSERT_EQUAL(admit(q, &ra, code, sizeof code), 0);
    fr__quota_leave(q, &who);
    /* The key has spent 600 of 700: a third run (300) passes it. */
    CU_ASSERT_EQUAL(admit(q, &ra, code, sizeof code), -1);
    CU_ASSERT_STRING_EQUAL(code, "budget_exceeded");
    CU_ASSERT(ra > 0);
    /* The spend shows in GET /v1/limits, and calls' reservations see it. */
    fr_reply out = {0};
    fr__quota_handle_get(q, &who, &out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out.body);
    CU_ASSERT_PTR_NOT_NULL(strstr(out.body, "\"used\":600"));
    free(out.body);
    fr_quota_run qr;
    fr__quota_run_init(&qr, q, &who);
    void *t;
    int64_t retry;
    CU_ASSERT_EQUAL(reserve(&qr, &t, &retry), FR_E_BUDGET_EXCEEDED); /* 600 + 144 > 700 */
    run_cost = 0;
    fr__quota_free(q);
}

static void test_cost(void)
{
    fr_quota *q = fresh("{\"concurrent_runs\": 100}", "{\"requests_per_minute\": 1000000}");
    struct timespec a, b;
    int ra;
    char code[8];
    const int n = 200000;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < n; i++) {
        fake_now += 100;
        if (admit(q, &ra, code, sizeof code) == 0)
            fr__quota_leave(q, &who);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / n;
    printf("\n  limit checks, memory: %.0f ns per admission + leave\n", ns);
    CU_ASSERT(ns < 50000); /* the target is 5 us; this only catches a gross regression */
    fr__quota_free(q);
}

/* Queued runs: the entry's documents (fr__quota_limits_text at submission) applied by a
 * consumer that has none of its own; its own win; without a rate card a budget says why. */
static void test_queued(void)
{
    fake_now = 1700000000 * S;
    fr_quota *a = fresh("{\"concurrent_runs\": 1}", "{\"tokens_per_minute\": 200}");
    char *lt = fr__quota_limits_text(a, 1, "acme"), *lk = fr__quota_limits_text(a, 0, "k1");
    char *none = fr__quota_limits_text(a, 1, "other");
    CU_ASSERT_PTR_NOT_NULL_FATAL(lt);
    CU_ASSERT_PTR_NOT_NULL_FATAL(lk);
    CU_ASSERT_STRING_EQUAL(none, "");
    CU_ASSERT_EQUAL(fr__quota_limits_text(NULL, 1, "acme"), NULL);

    fr_quota *b = fr__quota_new(); /* a worker: no keys file, no lookups */
    fr__quota_set_clock(b, clock_fn);
    CU_ASSERT_EQUAL(fr__quota_set_queued_text(b, 1, "acme", NULL, lt), 0);
    CU_ASSERT_EQUAL(fr__quota_set_queued_text(b, 0, "k1", "acme", lk), 0);
    CU_ASSERT_EQUAL(fr__quota_set_queued_text(b, 0, "k1", "acme", "{\"bogus\": 1}"), -1);
    int ra;
    char code[64];
    CU_ASSERT_EQUAL(admit(b, &ra, code, sizeof code), 0);
    CU_ASSERT_EQUAL(admit(b, &ra, code, sizeof code), -1); /* concurrent_runs 1 */
    CU_ASSERT_STRING_EQUAL(code, "too_many_runs");
    fr__quota_leave(b, &who);
    fr_quota_run qr;
    fr__quota_run_init(&qr, b, &who);
    void *t1, *t2;
    int64_t retry;
    CU_ASSERT_EQUAL(reserve(&qr, &t1, &retry), FR_OK);             /* 144 of 200 */
    CU_ASSERT_EQUAL(reserve(&qr, &t2, &retry), FR_E_RATE_LIMITED); /* the entry's limit */
    qr.iface.settle(qr.iface.ud, t1, 0, "", 0, 0, 0);

    /* This process's own document wins over any entry's, whichever came first. */
    CU_ASSERT_EQUAL(fr__quota_set_remote_text(b, 0, "k1", "{\"tokens_per_minute\": 100000}"), 0);
    CU_ASSERT_EQUAL(fr__quota_set_queued_text(b, 0, "k1", "acme", lk), 0);
    CU_ASSERT_EQUAL(reserve(&qr, &t1, &retry), FR_OK);
    CU_ASSERT_EQUAL(reserve(&qr, &t2, &retry), FR_OK);
    qr.iface.settle(qr.iface.ud, t1, 0, "", 0, 0, 0);
    qr.iface.settle(qr.iface.ud, t2, 0, "", 0, 0, 0);
    char *again = fr__quota_limits_text(b, 0, "k1");
    CU_ASSERT_PTR_NOT_NULL(strstr(again, "100000"));
    free(again);

    /* A budget with no rate card (a worker without --controlplane): refused, saying so. */
    fr_quota *c = fr__quota_new();
    fr__quota_set_clock(c, clock_fn);
    fr__quota_set_queued_text(c, 0, "k1", "acme", "{\"monthly_budget_micros\": 1000000}");
    fr__quota_run_init(&qr, c, &who);
    char msg[512] = "";
    CU_ASSERT_EQUAL(
        qr.iface.reserve(qr.iface.ud, "p", req, strlen(req), &t1, &retry, msg, sizeof msg),
        FR_E_BUDGET_EXCEEDED);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "without --controlplane"));
    free(lt);
    free(lk);
    free(none);
    fr__quota_free(a);
    fr__quota_free(b);
    fr__quota_free(c);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite("quota", NULL, NULL);
    CU_add_test(s, "sliding_log", test_sliding_log);
    CU_add_test(s, "concurrent_runs", test_concurrent_runs);
    CU_add_test(s, "tokens", test_tokens);
    CU_add_test(s, "budget_month_rollover", test_budget_month_rollover);
    CU_add_test(s, "run_price", test_run_price);
    CU_add_test(s, "cost", test_cost);
    CU_add_test(s, "queued", test_queued);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures ? 1 : 0;
}
