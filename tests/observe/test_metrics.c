/* Unit tests of the metrics registry's bound on label values tenants choose
 * (core/observe/metrics.c): past a namespace's series cap, agent, breaker, provider and model
 * labels read "other"; values over 64 bytes fold at once; one namespace's ids never use
 * another's budget; provider metrics count against the namespace they are given; labels
 * tenants do not choose are never folded; threads racing for the last series leave the
 * namespace with exactly the cap. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_test.h"
#include "observe/obs_impl.h"
#include "observe/observe.h"

#define CAP 10

/* How many lines of the exposition start with `prefix`. */
static int lines_with(const char *prefix)
{
    char *text = fr__metrics_render();
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        n += strncmp(p, prefix, len) == 0;
    free(text);
    return n;
}

static fr_metric_series *attempts(const char *ns, const char *agent)
{
    const char *labels[] = {ns, agent, "succeeded", "none"};
    return fr__metric_series(FR_M_STEP_ATTEMPTS, labels);
}

static void test_fold_past_cap(void)
{
    char agent[32];
    fr_metric_series *first = attempts("alpha", "a0");
    for (int i = 1; i < CAP; i++) {
        snprintf(agent, sizeof agent, "a%d", i);
        fr__metric_add(attempts("alpha", agent), 1);
    }
    fr_metric_series *over1 = attempts("alpha", "fresh-1"), *over2 = attempts("alpha", "fresh-2");
    CU_ASSERT_PTR_NOT_NULL(over1);
    CU_ASSERT_PTR_EQUAL(over1, over2);                   /* both are alpha's "other" */
    CU_ASSERT_PTR_EQUAL(attempts("alpha", "a0"), first); /* known values keep their series */
    fr__metric_add(over1, 2);
    CU_ASSERT_EQUAL(lines_with("fluxroute_step_attempts_total{namespace=\"alpha\",agent=\"a"), CAP);
    CU_ASSERT_EQUAL(lines_with("fluxroute_step_attempts_total{namespace=\"alpha\",agent=\"other\","
                               "status=\"succeeded\",class=\"none\"} 2"),
                    1);
    CU_ASSERT_EQUAL(lines_with("fluxroute_step_attempts_total{namespace=\"alpha\",agent=\"fresh"),
                    0);
    /* Another namespace has its own budget. */
    fr__metric_add(attempts("beta", "b0"), 1);
    CU_ASSERT_EQUAL(lines_with("fluxroute_step_attempts_total{namespace=\"beta\",agent=\"b0\""), 1);
}

static void test_long_value(void)
{
    char agent[80];
    memset(agent, 'x', 65);
    agent[65] = '\0';
    fr__metric_add(attempts("gamma", agent), 1);
    agent[64] = '\0'; /* 64 bytes is allowed */
    fr__metric_add(attempts("gamma", agent), 1);
    CU_ASSERT_EQUAL(lines_with("fluxroute_step_attempts_total{namespace=\"gamma\",agent=\"other\""),
                    1);
    CU_ASSERT_EQUAL(lines_with("fluxroute_step_attempts_total{namespace=\"gamma\",agent=\"xxx"), 1);
}

static void test_provider_budget(void)
{
    /* No namespace label: the caller's namespace pays. */
    char model[32];
    for (int i = 0; i < CAP + 5; i++) {
        snprintf(model, sizeof model, "model-%d", i);
        const char *labels[] = {"p", model};
        fr__metric_observe_us(fr__metric_series_in(FR_M_PROVIDER_LATENCY, "delta", labels), 10);
    }
    CU_ASSERT_EQUAL(
        lines_with("fluxroute_provider_latency_seconds_count{provider=\"p\",model=\"model-"), CAP);
    CU_ASSERT_EQUAL(
        lines_with("fluxroute_provider_latency_seconds_count{provider=\"other\",model=\""
                   "other\"} 5"),
        1);
    /* delta's spending leaves epsilon's budget whole. */
    const char *labels[] = {"p", "model-eps"};
    fr__metric_observe_us(fr__metric_series_in(FR_M_PROVIDER_LATENCY, "epsilon", labels), 10);
    CU_ASSERT_EQUAL(
        lines_with("fluxroute_provider_latency_seconds_count{provider=\"p\",model=\"model-eps\"}"),
        1);
}

static void test_untouched_labels(void)
{
    /* Routes, codes and statuses are the server's: never folded, however many. */
    for (int code = 100; code < 100 + 3 * CAP; code++)
        fr__metrics_http_request("/v1/run", code);
    CU_ASSERT_EQUAL(lines_with("fluxroute_http_requests_total{route=\"/v1/run\",code=\"1"),
                    3 * CAP);
    CU_ASSERT_EQUAL(lines_with("fluxroute_http_requests_total{route=\"other\""), 0);
}

static void *race(void *arg)
{
    char agent[32];
    for (int i = 0; i < 50; i++) {
        snprintf(agent, sizeof agent, "t%ld-%d", (long)(intptr_t)arg, i);
        fr__metric_add(attempts("zeta", agent), 1);
    }
    return NULL;
}

static void test_concurrent(void)
{
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, race, (void *)(intptr_t)i), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CU_ASSERT_EQUAL(lines_with("fluxroute_step_attempts_total{namespace=\"zeta\",agent=\"t"), CAP);
    CU_ASSERT_EQUAL(lines_with("fluxroute_step_attempts_total{namespace=\"zeta\",agent=\"other\","
                               "status=\"succeeded\",class=\"none\"} 190"),
                    1);
}

int main(void)
{
    fr__metrics_set_series_cap(CAP);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("metrics", NULL, NULL);
    if (!s || !CU_add_test(s, "past the cap, tenant labels read other", test_fold_past_cap) ||
        !CU_add_test(s, "a value over 64 bytes folds", test_long_value) ||
        !CU_add_test(s, "provider metrics count against the given namespace",
                     test_provider_budget) ||
        !CU_add_test(s, "labels the server chooses are never folded", test_untouched_labels) ||
        !CU_add_test(s, "threads racing for the last series", test_concurrent)) {
        CU_cleanup_registry();
        return 1;
    }
    return fr_test_run_all();
}
