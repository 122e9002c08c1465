/* The tests' one helper header: CUnit assertions that print what differed (strings,
 * substrings, statuses), the CUnit runner, and for engine tests, building a pipeline from
 * manifest text and finding its steps.  Tests that do not link the engine (the built-in
 * plugins' tests) use only the assertions; the engine helpers are static inline, so they
 * cost nothing there. */
#ifndef FR_TEST_H
#define FR_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "engine/engine.h"

/* ---- assertions ---- */

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

/* ---- engine tests ---- */

/* The test plugins' directory (tests/plugins/.libs of the build tree). */
static char fr_test_plugin_dir[4096];

static inline void fr_test_init_dirs(void)
{
    const char *b = getenv("FR_BUILDDIR");
    snprintf(fr_test_plugin_dir, sizeof fr_test_plugin_dir, "%s/tests/plugins/.libs", b ? b : ".");
}

/* Builds a pipeline from manifest text; fails the current test on any diagnostic. */
static inline fr_pipeline *fr_test_build(const char *yaml)
{
    fr_diags d;
    fr__diags_init(&d, "test.yaml");
    fr_manifest *m = fr__manifest_parse("test.yaml", yaml, strlen(yaml), ".", &d);
    fr_pipeline *p = NULL;
    if (m && d.n == 0) {
        const char *dirs[] = {fr_test_plugin_dir};
        fr_build_options bo = {.plugin_dirs = dirs, .n_plugin_dirs = 1};
        p = fr__pipeline_build(m, &bo, &d);
    } else {
        fr__manifest_free(m);
    }
    if (d.n)
        fr__diags_print(&d, stderr);
    CU_ASSERT_EQUAL(d.n, 0);
    fr__diags_free(&d);
    return p;
}

static inline const fr_step_result *fr_test_step(const fr_pipeline *p, const fr_run_result *r,
                                                 const char *id)
{
    int i = fr__manifest_step_index(fr__pipeline_manifest(p), id);
    CU_ASSERT_FATAL(i >= 0);
    return &r->steps[i];
}

/* Runs the registered suites verbosely; returns the process exit code. */
static inline int fr_test_run_all(void)
{
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failures ? 1 : 0;
}

#endif
