/* The embedding API, linked against the shared libfluxroute (only public symbols). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include <CUnit/Basic.h>

#include <fluxroute/fluxroute.h>

static char manifest[4096], bad_manifest[4096];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

static void test_open_run_close(void)
{
    write_file(manifest, "agents: [{id: e, plugin: echo}]\n"
                         "pipeline: [{step: a, agent: e}, {step: b, agent: e, depends_on: a}]\n");
    fr_engine *e = NULL;
    char *errors = NULL;
    CU_ASSERT_EQUAL_FATAL(fr_engine_open(manifest, NULL, &e, &errors), FR_OK);
    CU_ASSERT_PTR_NULL(errors);
    for (int i = 0; i < 3; i++) {
        char *report = NULL;
        CU_ASSERT_EQUAL_FATAL(fr_engine_run(e, "{\"n\": 1}", 42, &report), FR_OK);
        CU_ASSERT_PTR_NOT_NULL(strstr(report, "\"status\":\"succeeded\""));
        CU_ASSERT_PTR_NOT_NULL(strstr(report, "\"seed\":42"));
        CU_ASSERT_PTR_NOT_NULL(strstr(report, "{\"input\":{\"n\":1},\"steps\":{\"a\":"));
        fr_free(report);
    }
    char *report = NULL;
    CU_ASSERT_EQUAL(fr_engine_run(e, "{oops", 1, &report), FR_E_INVALID);
    CU_ASSERT_PTR_NULL(report);
    fr_engine_close(e);
}

static void test_open_errors(void)
{
    write_file(bad_manifest,
               "agents: [{id: e, plugin: echo, bogus: 1}]\npipeline: [{step: a, agent: zz}]\n");
    fr_engine *e = NULL;
    char *errors = NULL;
    CU_ASSERT_EQUAL(fr_engine_open(bad_manifest, NULL, &e, &errors), FR_E_CONFIG);
    CU_ASSERT_PTR_NULL(e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(errors);
    CU_ASSERT_PTR_NOT_NULL(strstr(errors, ":1:32: unknown key \"bogus\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(errors, ":2:"));
    fr_free(errors);
    CU_ASSERT_EQUAL(fr_engine_open(NULL, NULL, &e, NULL), FR_E_INVALID);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(manifest, sizeof manifest, "%s/fr-embed-%d.yaml", tmp, (int)getpid());
    snprintf(bad_manifest, sizeof bad_manifest, "%s/fr-embed-bad-%d.yaml", tmp, (int)getpid());
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("embed", NULL, NULL);
    CU_add_test(s, "open, run, close", test_open_run_close);
    CU_add_test(s, "open reports errors", test_open_errors);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    remove(manifest);
    remove(bad_manifest);
    return failures ? 1 : 0;
}
