/* Run ids (core/base/secure_random.c): RFC 4122 version 4 UUIDs in their text form,
 * lower-case hex, each one new; a buffer too small for one is refused. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "base/secure_random.h"
#include "fr_test.h"

#define N_IDS 2000

static int by_text(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_uuid_form(void)
{
    static char ids[N_IDS][37];
    for (int i = 0; i < N_IDS; i++) {
        char *id = ids[i];
        memset(id, 'Z', 37);
        CU_ASSERT_EQUAL_FATAL(fr__secure_uuid(id, 37), 0);
        CU_ASSERT_EQUAL(strlen(id), 36);
        for (int k = 0; k < 36; k++) {
            int dash = k == 8 || k == 13 || k == 18 || k == 23;
            CU_ASSERT(dash ? id[k] == '-' : id[k] && strchr("0123456789abcdef", id[k]) != NULL);
        }
        CU_ASSERT_EQUAL(id[14], '4');                   /* version 4 */
        CU_ASSERT_PTR_NOT_NULL(strchr("89ab", id[19])); /* RFC 4122 variant */
    }
    qsort(ids, N_IDS, sizeof ids[0], by_text);
    for (int i = 1; i < N_IDS; i++)
        CU_ASSERT_NOT_EQUAL(strcmp(ids[i - 1], ids[i]), 0);
}

static void test_uuid_room(void)
{
    char small[36];
    errno = 0;
    CU_ASSERT_EQUAL(fr__secure_uuid(small, sizeof small), -1);
    CU_ASSERT_EQUAL(errno, EINVAL);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("secure_random", NULL, NULL);
    CU_add_test(s, "uuids: form, version, variant, all different", test_uuid_form);
    CU_add_test(s, "uuids: a buffer too small is refused", test_uuid_room);
    return fr_test_run_all();
}
