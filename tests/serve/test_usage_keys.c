/* Usage idempotency keys (core/serve/serve_usage.c): 64 hex digits whatever the step id, the
 * documented encoding, and distinct for every (tenant, run, step, attempt, ordinal). */
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "fr_test.h"
#include "serve/serve_usage.h"
#include "base/sha256.h"

static int is_hex64(const char *k)
{
    if (strlen(k) != 64)
        return 0;
    for (const char *p = k; *p; p++)
        if (!strchr("0123456789abcdef", *p))
            return 0;
    return 1;
}

static void test_fixed_length(void)
{
    char key[65];
    size_t n = 10000;
    char *step = malloc(n + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(step);
    memset(step, 's', n);
    step[n] = '\0';
    fr__usage_key("acme", "0b7c6a4e-1f00-4c6e-9a51-3f2d4c5b6a70", step, 1, 1, key);
    CU_ASSERT_TRUE(is_hex64(key));
    fr__usage_key("acme", "run", NULL, 0, 0, key);
    CU_ASSERT_TRUE(is_hex64(key));
    free(step);
}

/* The key is the sha256 of NUL-terminated fields, as serve_usage.h documents. */
static void test_encoding(void)
{
    static const char call[] = "fluxroute.usage.v1\0provider_call\0acme\0r1\0ask\0002\0003";
    static const char run[] = "fluxroute.usage.v1\0run\0acme\0r1";
    char key[65], want[65];
    fr__usage_key("acme", "r1", "ask", 2, 3, key);
    fr__sha256_hex(call, sizeof call, want);
    CU_ASSERT_STRING_EQUAL(key, want);
    fr__usage_key("acme", "r1", NULL, 0, 0, key);
    fr__sha256_hex(run, sizeof run, want);
    CU_ASSERT_STRING_EQUAL(key, want);
}

static void test_distinct(void)
{
    static const struct {
        const char *tenant, *run, *step;
        size_t attempt;
        int ordinal;
    } cases[] = {
        {"acme", "r1", "ask", 1, 1},  {"acme", "r1", "ask", 1, 2}, /* two calls, one attempt */
        {"acme", "r1", "ask", 2, 1},  {"acme", "r1", "ask", 1, 12}, {"acme", "r1", "ask", 11, 2},
        {"acme", "r1", "as", 1, 1},   {"acme", "r2", "ask", 1, 1},  {"globex", "r1", "ask", 1, 1},
        {"acm", "er1", "ask", 1, 1},  {"acme", "r1a", "sk", 1, 1},  {"acme", "r1", NULL, 0, 0},
        {"globex", "r1", NULL, 0, 0},
    };
    size_t n = sizeof cases / sizeof cases[0];
    char keys[sizeof cases / sizeof cases[0]][65];
    for (size_t i = 0; i < n; i++)
        fr__usage_key(cases[i].tenant, cases[i].run, cases[i].step, cases[i].attempt,
                      cases[i].ordinal, keys[i]);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            CU_ASSERT_STRING_NOT_EQUAL(keys[i], keys[j]);
    /* Stable: a re-sent event keeps its key. */
    char again[65];
    fr__usage_key("acme", "r1", "ask", 1, 2, again);
    CU_ASSERT_STRING_EQUAL(again, keys[1]);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("usage_keys", NULL, NULL);
    CU_add_test(s, "64 hex digits whatever the step id", test_fixed_length);
    CU_add_test(s, "sha256 of the documented encoding", test_encoding);
    CU_add_test(s, "distinct per tenant, run, step, attempt and call", test_distinct);
    return fr_test_run_all();
}
