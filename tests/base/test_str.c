/* String helpers (core/base/str.c): the copies that stand in for snprintf "%s" cut and
 * terminate as snprintf does; the decimal writer writes what "%lld" does. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "base/str.h"
#include "fr_test.h"

static void test_copy(void)
{
    static const char *const srcs[] = {"", "a", "exactly8", "longer than the buffer"};
    for (size_t i = 0; i < sizeof srcs / sizeof srcs[0]; i++)
        for (size_t size = 1; size <= 12; size++) {
            char got[16], want[16];
            memset(got, 'X', sizeof got);
            memset(want, 'X', sizeof want);
            size_t n = fr__str_copy(got, size, srcs[i]);
            int wn = snprintf(want, size, "%s", srcs[i]);
            CU_ASSERT_EQUAL(n, (size_t)wn);
            CU_ASSERT_EQUAL(memcmp(got, want, sizeof got), 0); /* nothing past the NUL */
        }
    char untouched = 'X';
    CU_ASSERT_EQUAL(fr__str_copy(&untouched, 0, "abc"), 3);
    CU_ASSERT_EQUAL(untouched, 'X');
}

static void test_append(void)
{
    char b[10];
    size_t len = 0;
    b[0] = '\0';
    fr__str_append(b, sizeof b, &len, "route:");
    CU_ASSERT_STRING_EQUAL(b, "route:");
    CU_ASSERT_EQUAL(len, 6);
    fr__str_append(b, sizeof b, &len, "chat-long");
    CU_ASSERT_STRING_EQUAL(b, "route:cha"); /* as snprintf(b, 10, "route:%s", ...) */
    CU_ASSERT_EQUAL(len, 9);
    fr__str_append(b, sizeof b, &len, "more");
    CU_ASSERT_STRING_EQUAL(b, "route:cha");
    CU_ASSERT_EQUAL(len, 9);
}

static void test_int(void)
{
    static const long long vals[] = {
        0, 1, -1, 9, 10, -10, 200, 503, 99999, 100000, 1234567890123LL, LLONG_MAX, LLONG_MIN};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        char got[FR_STR_INT_SIZE], want[32];
        size_t n = fr__str_int(got, vals[i]);
        int wn = snprintf(want, sizeof want, "%lld", vals[i]);
        CU_ASSERT_EQUAL(n, (size_t)wn);
        CU_ASSERT_STRING_EQUAL(got, want);
    }
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("str", NULL, NULL);
    CU_add_test(s, "fr__str_copy: snprintf's %s", test_copy);
    CU_add_test(s, "fr__str_append: cut at the end", test_append);
    CU_add_test(s, "fr__str_int: printf's %lld", test_int);
    return fr_test_run_all();
}
