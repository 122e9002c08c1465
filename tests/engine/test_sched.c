/* Scheduler tests: dependency-driven execution on the worker pool, data flow, skipping
 * after failures, no level barriers, and determinism under random thread timing. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/Basic.h>

#include "fr_test.h"
#include "host/host.h"

#define build fr_test_build
#define step  fr_test_step

static void test_diamond_dataflow(void)
{
    fr_pipeline *p = build("router: {worker_pool_size: 4}\n"
                           "agents: [{id: e, plugin: echo}]\n"
                           "pipeline:\n"
                           "  - {step: a, agent: e}\n"
                           "  - {step: b, agent: e, depends_on: a}\n"
                           "  - {step: c, agent: e, depends_on: a}\n"
                           "  - {step: d, agent: e, depends_on: [c, b]}\n"
                           "input: {k: 1}\n");
    CU_ASSERT_FATAL(p != NULL);
    fr_run_options ro = {.has_seed = 1, .seed = 1};
    fr_run_result r;
    CU_ASSERT_EQUAL_FATAL(fr__pipeline_run(p, &ro, &r), FR_OK);
    CU_ASSERT_EQUAL(r.status, FR_RUN_SUCCEEDED);
    CU_ASSERT_STRING_EQUAL(step(p, &r, "a")->output, "{\"input\":{\"k\":1},\"steps\":{}}");
    CU_ASSERT_STRING_EQUAL(
        step(p, &r, "b")->output,
        "{\"input\":{\"k\":1},\"steps\":{\"a\":{\"input\":{\"k\":1},\"steps\":{}}}}");
    /* d lists its dependencies in the order depends_on gives them. */
    const char *d = step(p, &r, "d")->output;
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\"steps\":{\"c\":"));
    CU_ASSERT(strstr(d, "\"c\":") < strstr(d, "\"b\":"));
    /* Report order: topological, manifest order breaking ties. */
    const fr_manifest *m = fr__pipeline_manifest(p);
    const char *want[] = {"a", "b", "c", "d"};
    for (int k = 0; k < 4; k++)
        CU_ASSERT_STRING_EQUAL(m->steps[m->topo[k]].id, want[k]);
    fr__run_result_free(&r);
    fr__pipeline_free(p);
}

static void test_fan_out_fan_in(void)
{
    char yaml[8192];
    int n = snprintf(yaml, sizeof yaml,
                     "router: {worker_pool_size: 4}\n"
                     "agents: [{id: e, plugin: echo}]\n"
                     "pipeline:\n  - {step: root, agent: e}\n");
    for (int i = 0; i < 20; i++)
        n += snprintf(yaml + n, sizeof yaml - (size_t)n,
                      "  - {step: w%02d, agent: e, depends_on: root}\n", i);
    n += snprintf(yaml + n, sizeof yaml - (size_t)n,
                  "  - step: join\n    agent: e\n    depends_on: [");
    for (int i = 0; i < 20; i++)
        n += snprintf(yaml + n, sizeof yaml - (size_t)n, "%sw%02d", i ? ", " : "", i);
    snprintf(yaml + n, sizeof yaml - (size_t)n, "]\n");
    fr_pipeline *p = build(yaml);
    CU_ASSERT_FATAL(p != NULL);
    fr_run_options ro = {0};
    fr_run_result r;
    CU_ASSERT_EQUAL_FATAL(fr__pipeline_run(p, &ro, &r), FR_OK);
    CU_ASSERT_EQUAL(r.status, FR_RUN_SUCCEEDED);
    const fr_step_result *j = step(p, &r, "join");
    CU_ASSERT_EQUAL(j->state, FR_STEP_SUCCEEDED);
    for (int i = 0; i < 20; i++) {
        char key[16];
        snprintf(key, sizeof key, "\"w%02d\":", i);
        CU_ASSERT_PTR_NOT_NULL(strstr(j->output, key));
    }
    fr__run_result_free(&r);
    fr__pipeline_free(p);
}

static void test_failure_skips_descendants(void)
{
    fr_pipeline *p = build("agents:\n"
                           "  - {id: e, plugin: echo}\n"
                           "  - {id: bad, plugin: chaos, config: {fail_attempts: 1, error: auth}}\n"
                           "pipeline:\n"
                           "  - {step: a, agent: e}\n"
                           "  - {step: broken, agent: bad, depends_on: a}\n"
                           "  - {step: child, agent: e, depends_on: broken}\n"
                           "  - {step: grandchild, agent: e, depends_on: [child, a]}\n"
                           "  - {step: sibling, agent: e, depends_on: a}\n"
                           "  - {step: lone, agent: e}\n");
    CU_ASSERT_FATAL(p != NULL);
    fr_run_options ro = {0};
    fr_run_result r;
    CU_ASSERT_EQUAL_FATAL(fr__pipeline_run(p, &ro, &r), FR_OK);
    CU_ASSERT_EQUAL(r.status, FR_RUN_FAILED);
    CU_ASSERT_EQUAL(step(p, &r, "broken")->state, FR_STEP_FAILED);
    CU_ASSERT_EQUAL(fr_status_class(step(p, &r, "broken")->status), FR_CLASS_AUTH);
    CU_ASSERT_EQUAL(step(p, &r, "broken")->n_attempts, 1);
    CU_ASSERT_EQUAL(step(p, &r, "child")->state, FR_STEP_SKIPPED);
    CU_ASSERT_EQUAL(step(p, &r, "child")->n_attempts, 0);
    CU_ASSERT_EQUAL(step(p, &r, "grandchild")->state, FR_STEP_SKIPPED);
    CU_ASSERT_PTR_NOT_NULL(strstr(step(p, &r, "grandchild")->message, "\"broken\""));
    CU_ASSERT_EQUAL(step(p, &r, "sibling")->state, FR_STEP_SUCCEEDED);
    CU_ASSERT_EQUAL(step(p, &r, "lone")->state, FR_STEP_SUCCEEDED);
    fr__run_result_free(&r);
    fr__pipeline_free(p);
}

/* A slow step must not hold back an unrelated chain (no level barriers). */
static void test_no_level_barrier(void)
{
    fr_pipeline *p = build("router: {worker_pool_size: 2}\n"
                           "agents:\n"
                           "  - {id: e, plugin: echo}\n"
                           "  - {id: slow, plugin: chaos, config: {delay: 300ms}}\n"
                           "pipeline:\n"
                           "  - {step: s, agent: slow}\n"
                           "  - {step: c1, agent: e}\n"
                           "  - {step: c2, agent: e, depends_on: c1}\n"
                           "  - {step: c3, agent: e, depends_on: c2}\n"
                           "  - {step: after, agent: e, depends_on: s}\n");
    CU_ASSERT_FATAL(p != NULL);
    fr_run_options ro = {0};
    fr_run_result r;
    CU_ASSERT_EQUAL_FATAL(fr__pipeline_run(p, &ro, &r), FR_OK);
    CU_ASSERT_EQUAL(r.status, FR_RUN_SUCCEEDED);
    const fr_step_result *s = step(p, &r, "s"), *c3 = step(p, &r, "c3");
    CU_ASSERT(c3->started_us + c3->duration_us < s->started_us + s->duration_us);
    CU_ASSERT(s->duration_us >= 300000);
    fr__run_result_free(&r);
    fr__pipeline_free(p);
}

/* Random delays (a different seed per run) change thread timing, never the results. */
static void test_determinism_under_jitter(void)
{
    char yaml[8192];
    int n = snprintf(yaml, sizeof yaml,
                     "router: {worker_pool_size: 4}\n"
                     "agents: [{id: j, plugin: jitter, config: {max_delay: 1ms}}]\n"
                     "pipeline:\n");
    for (int i = 0; i < 12; i++) {
        n += snprintf(yaml + n, sizeof yaml - (size_t)n, "  - {step: s%02d, agent: j", i);
        if (i >= 3)
            n += snprintf(yaml + n, sizeof yaml - (size_t)n, ", depends_on: [s%02d, s%02d]",
                          (i * 7) % i, (i * 5 + 1) % i);
        n += snprintf(yaml + n, sizeof yaml - (size_t)n, "}\n");
    }
    snprintf(yaml + n, sizeof yaml - (size_t)n, "input: {x: [1, 2, 3]}\n");
    fr_pipeline *p = build(yaml);
    CU_ASSERT_FATAL(p != NULL);
    char *first = NULL;
    for (int run = 0; run < 15; run++) {
        fr_run_options ro = {.has_seed = 1, .seed = (uint64_t)run * 7919};
        fr_run_result r;
        CU_ASSERT_EQUAL_FATAL(fr__pipeline_run(p, &ro, &r), FR_OK);
        CU_ASSERT_EQUAL(r.status, FR_RUN_SUCCEEDED);
        /* Concatenate outputs in report order. */
        const fr_manifest *m = fr__pipeline_manifest(p);
        size_t len = 0;
        for (size_t k = 0; k < m->n_steps; k++)
            len += r.steps[m->topo[k]].output_len + 1;
        char *all = calloc(1, len + 1);
        for (size_t k = 0; k < m->n_steps; k++) {
            strcat(all, r.steps[m->topo[k]].output);
            strcat(all, "\n");
        }
        if (!first)
            first = all;
        else {
            CU_ASSERT_STRING_EQUAL(all, first);
            free(all);
        }
        fr__run_result_free(&r);
    }
    free(first);
    fr__pipeline_free(p);
}

static void test_invalid_input(void)
{
    fr_pipeline *p = build("agents: [{id: e, plugin: echo}]\npipeline: [{step: a, agent: e}]\n");
    CU_ASSERT_FATAL(p != NULL);
    fr_run_result r;
    fr_run_options ro = {.input_json = "{\"a\": "};
    CU_ASSERT_EQUAL(fr__pipeline_run(p, &ro, &r), FR_E_INVALID);
    ro.input_json = "[1] [2]";
    CU_ASSERT_EQUAL(fr__pipeline_run(p, &ro, &r), FR_E_INVALID);
    ro.input_json = " \"text\" ";
    CU_ASSERT_EQUAL_FATAL(fr__pipeline_run(p, &ro, &r), FR_OK);
    CU_ASSERT_STRING_EQUAL(r.steps[0].output, "{\"input\":\"text\",\"steps\":{}}");
    fr__run_result_free(&r);
    fr__pipeline_free(p);
}

/* A run handed to the pipeline's driver (FR_RUN_ON_DRIVER). */
static pthread_mutex_t detach_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t detach_cv = PTHREAD_COND_INITIALIZER;
static int detached_on, done_calls, done_status;
static pthread_t caller;

static void on_detach(void *ud)
{
    (void)ud;
    detached_on = pthread_equal(pthread_self(), caller) ? 1 : -1; /* the caller's thread */
}

static void on_done(void *ud, int status)
{
    (void)ud;
    pthread_mutex_lock(&detach_mu);
    done_calls++;
    done_status = status;
    pthread_cond_broadcast(&detach_cv);
    pthread_mutex_unlock(&detach_mu);
}

/* Waits (at most 10 s) for on_done; returns how many times it came. */
static int wait_done(void)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&detach_mu);
    while (!done_calls && pthread_cond_timedwait(&detach_cv, &detach_mu, &until) == 0)
        ;
    int n = done_calls;
    pthread_mutex_unlock(&detach_mu);
    return n;
}

static void test_driver_detach(void)
{
    /* Steps that sleep (a few ms in all, drawn from the seed): longer than any hand-off. */
    fr_pipeline *p = build("agents: [{id: j, plugin: jitter, config: {max_delay: 4ms}}]\n"
                           "pipeline:\n"
                           "  - {step: a, agent: j}\n"
                           "  - {step: b, agent: j, depends_on: a}\n"
                           "  - {step: c, agent: j, depends_on: b}\n"
                           "input: {k: 1}\n");
    CU_ASSERT_FATAL(p != NULL);
    caller = pthread_self();
    /* A wait under 20 us is none: the caller leaves without sleeping (on_detach before
     * the driver can complete the run), and on_done comes once, from the driver, with the
     * run complete in `r`. */
    for (int k = 0; k < 5; k++) {
        detached_on = done_calls = 0;
        done_status = -1;
        fr_run_result r;
        fr_run_options ro = {.has_seed = 1,
                             .seed = 1,
                             .run_inline = FR_RUN_ON_DRIVER,
                             .detach_after_us = 1,
                             .on_detach = on_detach,
                             .on_done = on_done};
        CU_ASSERT_EQUAL_FATAL(fr__pipeline_run(p, &ro, &r), FR_OK);
        CU_ASSERT_EQUAL(detached_on, 1);
        CU_ASSERT_EQUAL_FATAL(wait_done(), 1);
        CU_ASSERT_EQUAL(done_status, FR_OK);
        CU_ASSERT_EQUAL(r.status, FR_RUN_SUCCEEDED);
        CU_ASSERT_PTR_NOT_NULL(step(p, &r, "c")->output);
        fr__run_result_free(&r);
    }
    /* A long enough wait: the caller has the run back itself, nothing detached. */
    detached_on = done_calls = 0;
    fr_run_result r;
    fr_run_options ro = {.has_seed = 1,
                         .seed = 1,
                         .run_inline = FR_RUN_ON_DRIVER,
                         .detach_after_us = 10 * 1000 * 1000,
                         .on_detach = on_detach,
                         .on_done = on_done};
    CU_ASSERT_EQUAL_FATAL(fr__pipeline_run(p, &ro, &r), FR_OK);
    CU_ASSERT_EQUAL(detached_on, 0);
    CU_ASSERT_EQUAL(done_calls, 0);
    CU_ASSERT_EQUAL(r.status, FR_RUN_SUCCEEDED);
    fr__run_result_free(&r);
    fr__pipeline_free(p);
}

static void test_status_table(void)
{
    CU_ASSERT_EQUAL(fr_status_class(FR_E_RATE_LIMITED), FR_CLASS_RATE_LIMITED);
    CU_ASSERT(fr_status_retried(FR_E_RATE_LIMITED));
    CU_ASSERT(!fr_status_counts_for_breaker(FR_E_RATE_LIMITED));
    CU_ASSERT(fr_status_retried(FR_E_REQUEST_TIMEOUT));
    CU_ASSERT(!fr_status_counts_for_breaker(FR_E_REQUEST_TIMEOUT));
    CU_ASSERT(fr_status_counts_for_breaker(FR_E_TIMEOUT));
    CU_ASSERT(!fr_status_retried(FR_E_AUTH));
    CU_ASSERT(!fr_status_retried(FR_E_CIRCUIT_OPEN));
    CU_ASSERT(!fr_status_retried(FR_E_DEADLINE_EXCEEDED));
    CU_ASSERT_STRING_EQUAL(fr_class_name(fr_status_class(FR_E_UNAVAILABLE)), "unavailable");
    fr_error_class c;
    CU_ASSERT_EQUAL(fr_class_from_name("overloaded", &c), FR_OK);
    CU_ASSERT_EQUAL(c, FR_CLASS_OVERLOADED);
    CU_ASSERT_EQUAL(fr_class_status(c), FR_E_OVERLOADED);
    CU_ASSERT_EQUAL(fr_class_from_name("nonsense", &c), FR_E_NOT_FOUND);
    CU_ASSERT_STRING_EQUAL(fr_strerror(12345), "unknown status");
    CU_ASSERT_STRING_EQUAL(fr_status_name(FR_E_LEASE_LOST), "LEASE_LOST");
    /* Every status maps to exactly one class with a name. */
    for (int s = 0; s >= FR_E_AGENT; s--)
        CU_ASSERT(strcmp(fr_class_name(fr_status_class(s)), "internal") != 0 ||
                  fr_status_class(s) == FR_CLASS_INTERNAL);
}

int main(void)
{
    fr_test_init_dirs();
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("scheduler", NULL, NULL);
    CU_add_test(s, "diamond data flow", test_diamond_dataflow);
    CU_add_test(s, "fan-out / fan-in", test_fan_out_fan_in);
    CU_add_test(s, "failure skips descendants", test_failure_skips_descendants);
    CU_add_test(s, "no level barrier", test_no_level_barrier);
    CU_add_test(s, "determinism under jitter", test_determinism_under_jitter);
    CU_add_test(s, "invalid input", test_invalid_input);
    CU_add_test(s, "status table", test_status_table);
    CU_add_test(s, "a run left to the pipeline's driver", test_driver_detach);
    return fr_test_run_all();
}
