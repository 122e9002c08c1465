/* CUnit assertions that print what differed (strings, substrings, statuses).  Shared by
 * the unit tests; include after <CUnit/Basic.h>. */
#ifndef FR_TEST_ASSERT_H
#define FR_TEST_ASSERT_H

#include <stdio.h>
#include <string.h>

#define ASSERT_STR(got, want)                                                     \
    do {                                                                          \
        const char *g_ = (got), *w_ = (want);                                     \
        int ok_ = g_ && strcmp(g_, w_) == 0;                                      \
        if (!ok_)                                                                 \
            fprintf(stderr, "\n%s:%d: got  %s\n%*swant %s\n", __FILE__, __LINE__, \
                    g_ ? g_ : "(null)", (int)strlen(__FILE__) + 8, "", w_);       \
        CU_ASSERT(ok_);                                                           \
    } while (0)

#define ASSERT_CONTAINS(got, want)                                                           \
    do {                                                                                     \
        const char *g_ = (got), *w_ = (want);                                                \
        int ok_ = g_ && strstr(g_, w_) != NULL;                                              \
        if (!ok_)                                                                            \
            fprintf(stderr, "\n%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__, \
                    g_ ? g_ : "(null)", w_);                                                 \
        CU_ASSERT(ok_);                                                                      \
    } while (0)

#define ASSERT_STATUS(got, want)                                                          \
    do {                                                                                  \
        int g_ = (got), w_ = (want);                                                      \
        if (g_ != w_)                                                                     \
            fprintf(stderr, "\n%s:%d: status %d, want %d\n", __FILE__, __LINE__, g_, w_); \
        CU_ASSERT_EQUAL(g_, w_);                                                          \
    } while (0)

#endif
