/* Shared helpers for engine tests: build a pipeline from manifest text, find steps, run
 * the CUnit registry. */
#ifndef FR_TEST_H
#define FR_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "engine/engine.h"

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
