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
    /* Seeds of every width come back whole (the compact report once cut 16+ digits). */
    static const struct {
        uint64_t seed;
        const char *text;
    } seeds[] = {{9007199254740991ull, "\"seed\":9007199254740991,"},
                 {18446744073709551615ull, "\"seed\":18446744073709551615,"},
                 {0, "\"seed\":0,"}};
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        char *r = NULL;
        CU_ASSERT_EQUAL_FATAL(fr_engine_run(e, NULL, seeds[i].seed, &r), FR_OK);
        CU_ASSERT_PTR_NOT_NULL(strstr(r, seeds[i].text));
        fr_free(r);
    }
    char *report = NULL;
    CU_ASSERT_EQUAL(fr_engine_run(e, "{oops", 1, &report), FR_E_INVALID);
    CU_ASSERT_PTR_NULL(report);
    fr_engine_close(e);
}

/* A report without what differs between two runs of the same seed: the run id, the
 * durations and the attempts' start times. */
static void strip_varying(char *r)
{
    char *w = r;
    for (const char *p = r; *p;) {
        if (strncmp(p, "\"duration_us\":", 14) == 0 || strncmp(p, "\"started_us\":", 13) == 0 ||
            strncmp(p, "\"run_id\":\"", 10) == 0) {
            int id = p[1] == 'r';
            size_t n = id ? 10 : p[1] == 's' ? 13 : 14;
            memmove(w, p, n);
            w += n;
            p += n;
            while (*p && (id ? *p != '"' : (*p >= '0' && *p <= '9')))
                p++;
            continue;
        }
        *w++ = *p++;
    }
    *w = '\0';
}

/* run_on_caller: the same reports as runs on the workers, parallel steps included. */
static void test_run_on_caller(void)
{
    write_file(manifest,
               "router: {worker_pool_size: 2}\n"
               "agents:\n"
               "  - {id: e, plugin: echo}\n"
               "  - {id: f, plugin: chaos, config: {fail_attempts: 1}, retry: {max_attempts: 3, "
               "base_delay: 1ms, backoff: exponential_jitter}}\n"
               "pipeline: [{step: a, agent: e}, {step: b, agent: f, depends_on: a},\n"
               "           {step: c, agent: e, depends_on: a}, {step: d, agent: e, depends_on: [b, "
               "c]}]\n");
    fr_engine_options on = {.struct_size = sizeof on, .run_on_caller = 1};
    fr_engine *workers = NULL, *caller = NULL;
    CU_ASSERT_EQUAL_FATAL(fr_engine_open(manifest, NULL, &workers, NULL), FR_OK);
    CU_ASSERT_EQUAL_FATAL(fr_engine_open(manifest, &on, &caller, NULL), FR_OK);
    for (uint64_t seed = 1; seed <= 20; seed++) {
        char *a = NULL, *b = NULL;
        CU_ASSERT_EQUAL_FATAL(fr_engine_run(workers, "{\"k\": [1, 2]}", seed, &a), FR_OK);
        CU_ASSERT_EQUAL_FATAL(fr_engine_run(caller, "{\"k\": [1, 2]}", seed, &b), FR_OK);
        CU_ASSERT_PTR_NOT_NULL(strstr(b, "\"status\":\"succeeded\""));
        strip_varying(a);
        strip_varying(b);
        CU_ASSERT_STRING_EQUAL(a, b);
        fr_free(a);
        fr_free(b);
    }
    fr_engine_close(workers);
    fr_engine_close(caller);
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

/* libfluxroute is the engine part: it has no Redis lease backend (and needs no hiredis).
 * A plugin asking for a lease under COORDINATION_MODE=redis gets a configuration error
 * (class config, FR_E_CONFIG), not a network error from trying to reach the server:
 * "lease backend 'redis' is not available in this library". */
static void test_no_redis_lease_backend(void)
{
    const char *b = getenv("FR_BUILDDIR");
    char text[8192];
    snprintf(text, sizeof text,
             "plugins: {dirs: [\"%s/tests/plugins/.libs\"]}\n"
             "agents: [{id: l, plugin: locker}]\n"
             "pipeline: [{step: a, agent: l}]\n",
             b ? b : ".");
    write_file(manifest, text);
    setenv("COORDINATION_ENABLED", "1", 1);
    setenv("COORDINATION_MODE", "redis", 1);
    setenv("COORDINATION_REDIS_URL", "redis://127.0.0.1:1/0", 1);
    fr_engine *e = NULL;
    CU_ASSERT_EQUAL_FATAL(fr_engine_open(manifest, NULL, &e, NULL), FR_OK);
    char *report = NULL;
    fr_engine_run(e, NULL, 1, &report);
    CU_ASSERT_PTR_NOT_NULL_FATAL(report);
    CU_ASSERT_PTR_NOT_NULL(strstr(report, "\"class\":\"config\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(report, "cannot take the lease (status -14)"));
    fr_free(report);
    fr_engine_close(e);
    unsetenv("COORDINATION_ENABLED");
    unsetenv("COORDINATION_MODE");
    unsetenv("COORDINATION_REDIS_URL");
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
    CU_add_test(s, "run on the caller's thread", test_run_on_caller);
    CU_add_test(s, "no Redis lease backend in the library", test_no_redis_lease_backend);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    remove(manifest);
    remove(bad_manifest);
    return failures ? 1 : 0;
}
