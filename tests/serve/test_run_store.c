/* serve's run store (core/serve/run_store.c): admission per tenant and for the server, and
 * retention that takes from the tenant over its share, never from a smaller holder; and
 * the byte sizes of the command line (core/base/size.c). */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "fr_test.h"
#include "serve/run_store.h"
#include "base/size.h"

static const fr_run_limits roomy = {.max_running = 100,
                                    .max_running_per_tenant = 100,
                                    .retention_count = 100,
                                    .retention_per_tenant = 100,
                                    .retention_bytes = (size_t)1 << 30};

/* Adds a run of `tenant` and finishes it at `now` with a report of `report_len` bytes. */
static void finished_run(fr_run_store *s, const char *tenant, const char *id, size_t report_len,
                         int64_t now)
{
    fr_run_entry *e = calloc(1, sizeof *e);
    CU_ASSERT_FATAL(e != NULL);
    snprintf(e->id, sizeof e->id, "%s", id);
    snprintf(e->tenant, sizeof e->tenant, "%s", tenant);
    CU_ASSERT_EQUAL_FATAL(fr__run_store_admit(s, tenant), FR_ADMIT_OK);
    CU_ASSERT_EQUAL_FATAL(fr__run_store_add(s, e), 0);
    e->report = malloc(report_len + 1);
    CU_ASSERT_FATAL(e->report != NULL);
    memset(e->report, 'r', report_len);
    e->report[report_len] = '\0';
    fr__run_store_finish(s, e, now);
    fr__run_store_leave(s, tenant);
}

static size_t retained_bytes(fr_run_store *s, const char *tenant)
{
    size_t runs, bytes;
    fr__run_store_retained(s, tenant, &runs, &bytes);
    return bytes;
}

/* n runs of `tenant` ("a" makes a1, a2...), finished at t0 + 1, t0 + 2...; after each, the
 * store holds at most `budget` bytes. */
static void finished_runs(fr_run_store *s, const char *tenant, int n, size_t report_len, int64_t t0,
                          size_t budget)
{
    for (int i = 1; i <= n; i++) {
        char id[16];
        snprintf(id, sizeof id, "%s%d", tenant, i);
        finished_run(s, tenant, id, report_len, t0 + i);
        CU_ASSERT(retained_bytes(s, NULL) <= budget);
    }
}

static int kept(fr_run_store *s, const char *id)
{
    return fr__run_store_find(s, id) != NULL;
}

static size_t retained_runs(fr_run_store *s, const char *tenant)
{
    size_t runs, bytes;
    fr__run_store_retained(s, tenant, &runs, &bytes);
    return runs;
}

static void test_admission(void)
{
    fr_run_limits lim = roomy;
    lim.max_running = 3;
    lim.max_running_per_tenant = 2;
    fr_run_store *s = fr__run_store_new(&lim);
    CU_ASSERT_EQUAL(fr__run_store_admit(s, "a"), FR_ADMIT_OK);
    CU_ASSERT_EQUAL(fr__run_store_admit(s, "a"), FR_ADMIT_OK);
    CU_ASSERT_EQUAL(fr__run_store_admit(s, "a"), FR_ADMIT_TENANT_FULL);
    CU_ASSERT_EQUAL(fr__run_store_admit(s, "b"), FR_ADMIT_OK);
    CU_ASSERT_EQUAL(fr__run_store_admit(s, "c"), FR_ADMIT_SERVER_FULL);
    CU_ASSERT_EQUAL(fr__run_store_in_flight(s), 3);
    CU_ASSERT_EQUAL(fr__run_store_tenant_in_flight(s, "a"), 2);
    /* A refused admission counts nothing; leaving gives the slot back. */
    fr__run_store_leave(s, "a");
    CU_ASSERT_EQUAL(fr__run_store_tenant_in_flight(s, "a"), 1);
    CU_ASSERT_EQUAL(fr__run_store_admit(s, "c"), FR_ADMIT_OK);
    /* Leaving more often than admitted, or for a stranger, changes nothing. */
    fr__run_store_leave(s, "c");
    fr__run_store_leave(s, "c");
    fr__run_store_leave(s, "nobody");
    CU_ASSERT_EQUAL(fr__run_store_in_flight(s), 2);
    fr__run_store_leave(s, "a");
    fr__run_store_leave(s, "b");
    CU_ASSERT_EQUAL(fr__run_store_in_flight(s), 0);
    CU_ASSERT_EQUAL(fr__run_store_tenant_in_flight(s, "a"), 0);
    fr__run_store_free(s);
}

static void test_per_tenant_retention(void)
{
    fr_run_limits lim = roomy;
    lim.retention_per_tenant = 2;
    fr_run_store *s = fr__run_store_new(&lim);
    finished_run(s, "b", "b1", 10, 1);
    finished_runs(s, "a", 4, 10, 1, SIZE_MAX);
    CU_ASSERT(!kept(s, "a1") && !kept(s, "a2"));
    CU_ASSERT(kept(s, "a3") && kept(s, "a4") && kept(s, "b1"));
    CU_ASSERT_EQUAL(retained_runs(s, "a"), 2);
    CU_ASSERT_EQUAL(retained_runs(s, NULL), 3);
    fr__run_store_free(s);
}

static void test_server_count_takes_from_largest(void)
{
    fr_run_limits lim = roomy;
    lim.retention_count = 4;
    fr_run_store *s = fr__run_store_new(&lim);
    finished_run(s, "b", "b1", 10, 1);
    finished_run(s, "c", "c1", 10, 2);
    finished_runs(s, "a", 6, 10, 2, SIZE_MAX);
    /* b and c, the oldest runs, stay: a holds the most and gives way. */
    CU_ASSERT(kept(s, "b1") && kept(s, "c1"));
    CU_ASSERT(!kept(s, "a4") && kept(s, "a5") && kept(s, "a6"));
    CU_ASSERT_EQUAL(retained_runs(s, NULL), 4);
    /* Among equal largest holders the one with the oldest run gives way: a and c hold
     * 2 each once c2 is in, and c1 is older than a5. */
    finished_run(s, "c", "c2", 10, 20);
    CU_ASSERT(!kept(s, "c1") && kept(s, "c2") && kept(s, "a5") && kept(s, "a6") && kept(s, "b1"));
    /* Then a and b hold 2 each: b1 is the oldest. */
    finished_run(s, "b", "b2", 10, 21);
    CU_ASSERT(!kept(s, "b1") && kept(s, "b2") && kept(s, "a5") && kept(s, "a6") && kept(s, "c2"));
    CU_ASSERT_EQUAL(retained_runs(s, NULL), 4);
    fr__run_store_free(s);
}

static void test_bytes_take_from_largest(void)
{
    fr_run_limits lim = roomy;
    lim.retention_bytes = 100000;
    fr_run_store *s = fr__run_store_new(&lim);
    finished_run(s, "b", "b1", 30000, 1);
    size_t b_bytes = retained_bytes(s, "b");
    CU_ASSERT(b_bytes >= 30000 + sizeof(fr_run_entry));
    finished_runs(s, "a", 5, 25000, 1, lim.retention_bytes);
    /* b (30 KB) stays; a keeps what is left, its newest: two runs of 25 KB. */
    CU_ASSERT(kept(s, "b1"));
    CU_ASSERT_EQUAL(retained_runs(s, "a"), 2);
    CU_ASSERT(kept(s, "a4") && kept(s, "a5"));
    CU_ASSERT_EQUAL(retained_bytes(s, NULL), b_bytes + retained_bytes(s, "a"));
    /* Age empties the store and its byte count. */
    lim.retention_us = 10;
    fr__run_store_free(s);
    s = fr__run_store_new(&lim);
    finished_run(s, "a", "old", 1000, 1);
    finished_run(s, "b", "new", 1000, 100);
    fr__run_store_evict(s, 105);
    CU_ASSERT(!kept(s, "old") && kept(s, "new"));
    fr__run_store_evict(s, 1000);
    CU_ASSERT_EQUAL(retained_runs(s, NULL), 0);
    CU_ASSERT_EQUAL(retained_bytes(s, NULL), 0);
    fr__run_store_free(s);
}

static void test_sizes(void)
{
    static const struct {
        const char *text;
        unsigned long long bytes; /* 0: an error */
        const char *why;
    } cases[] = {
        {"1048576", 1048576, NULL},
        {"512K", 512ULL << 10, NULL},
        {"256MiB", 256ULL << 20, NULL},
        {"4g", 4ULL << 30, NULL},
        {"2T", 2ULL << 40, NULL},
        {"7b", 7, NULL},
        {"", 0, "empty"},
        {"M", 0, "not a whole number"},
        {"-1", 0, "not a whole number"},
        {"1.5G", 0, "not a whole number"},
        {"12X", 0, "unknown unit (use K, M, G or T)"},
        {"10 M", 0, "unknown unit (use K, M, G or T)"},
        {"99999999999999999999", 0, "overflow"},
        {"17179869184G", 0, "overflow"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t v = 0;
        const char *why = NULL;
        int rc = fr__size_parse(cases[i].text, &v, &why);
        if (cases[i].why) {
            CU_ASSERT_EQUAL(rc, -1);
            CU_ASSERT_STRING_EQUAL(why ? why : "(none)", cases[i].why);
        } else {
            CU_ASSERT_EQUAL(rc, 0);
            CU_ASSERT_EQUAL(v, cases[i].bytes);
        }
    }
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("run_store", NULL, NULL);
    CU_add_test(s, "admission per tenant and for the server", test_admission);
    CU_add_test(s, "a tenant over its share loses its oldest", test_per_tenant_retention);
    CU_add_test(s, "the server's count takes from the largest holder",
                test_server_count_takes_from_largest);
    CU_add_test(s, "the byte budget takes from the largest holder", test_bytes_take_from_largest);
    CU_add_test(s, "byte sizes", test_sizes);
    return fr_test_run_all();
}
