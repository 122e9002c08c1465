/* Resilience: backoff sequences, Retry-After, circuit breakers, the run deadline over
 * retries, fallback chains and the hung-plugin watchdog. */
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include <json-c/json.h>

#include "host/breaker.h"
#include "fr_test.h"
#include "host/host.h"
#include "engine/retry.h"

#define MS 1000LL

/* ---- backoff ------------------------------------------------------------------------- */

static void test_backoff_sequences(void)
{
    fr_retry_cfg r = {.max_attempts = 10, .base_delay_us = 100 * MS, .max_delay_us = 1000 * MS};
    static const struct {
        fr_backoff kind;
        int64_t want[6];
    } cases[] = {
        {FR_BACKOFF_CONSTANT, {100, 100, 100, 100, 100, 100}},
        {FR_BACKOFF_LINEAR, {100, 200, 300, 400, 500, 600}},
        {FR_BACKOFF_EXPONENTIAL, {100, 200, 400, 800, 1000, 1000}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        r.backoff = cases[c].kind;
        for (int a = 1; a <= 6; a++)
            CU_ASSERT_EQUAL(fr__backoff_delay(&r, a, 42, "s"), cases[c].want[a - 1] * MS);
    }
    /* Jitter: within [d/2, d] of the exponential delay, the same for the same seed and
     * step, different across seeds. */
    r.backoff = FR_BACKOFF_EXPONENTIAL_JITTER;
    int differs = 0;
    for (int a = 1; a <= 6; a++) {
        int64_t d = cases[2].want[a - 1] * MS;
        int64_t j = fr__backoff_delay(&r, a, 42, "s");
        CU_ASSERT(j >= d / 2 && j <= d);
        CU_ASSERT_EQUAL(j, fr__backoff_delay(&r, a, 42, "s"));
        differs |= j != fr__backoff_delay(&r, a, 43, "s");
        differs |= j != fr__backoff_delay(&r, a, 42, "t");
    }
    CU_ASSERT(differs);
    /* Large attempt numbers never overflow. */
    r.backoff = FR_BACKOFF_EXPONENTIAL;
    CU_ASSERT_EQUAL(fr__backoff_delay(&r, 200, 1, "s"), 1000 * MS);
    r.backoff = FR_BACKOFF_LINEAR;
    r.max_delay_us = INT64_MAX;
    CU_ASSERT(fr__backoff_delay(&r, 1 << 30, 1, "s") > 0);
}

static void test_retry_after_parse(void)
{
    /* 2015-10-21 07:28:00 GMT */
    int64_t now = 1445412480LL * 1000000;
    CU_ASSERT_EQUAL(fr__retry_after_parse("120", now), 120 * 1000000LL);
    CU_ASSERT_EQUAL(fr__retry_after_parse(" 0 ", now), 0);
    CU_ASSERT_EQUAL(fr__retry_after_parse("Wed, 21 Oct 2015 07:28:30 GMT", now), 30 * 1000000LL);
    CU_ASSERT_EQUAL(fr__retry_after_parse("Wednesday, 21-Oct-15 07:29:00 GMT", now),
                    60 * 1000000LL);
    CU_ASSERT_EQUAL(fr__retry_after_parse("Wed Oct 21 07:28:05 2015", now), 5 * 1000000LL);
    CU_ASSERT_EQUAL(fr__retry_after_parse("Wed, 21 Oct 2015 07:00:00 GMT", now), 0);
    CU_ASSERT_EQUAL(fr__retry_after_parse("soon", now), -1);
    CU_ASSERT_EQUAL(fr__retry_after_parse("-5", now), -1);
    CU_ASSERT_EQUAL(fr__retry_after_parse("", now), -1);
    CU_ASSERT_EQUAL(fr__retry_after_parse("Wed, 21 Foo 2015 07:28:30 GMT", now), -1);
    CU_ASSERT_EQUAL(fr__retry_after_parse("Wed, 21 Oct 2015 07:28:30 PST", now), -1);
}

/* ---- breaker state machine -------------------------------------------------------------- */

static fr_breaker_cfg cfg3 = {.enabled = 1,
                              .failure_threshold = 3,
                              .reset_timeout_us = 1000 * MS,
                              .probe_timeout_us = 100 * MS};

static fr_admission admit(fr_breaker *b, int64_t now)
{
    fr_breaker_transition tr;
    int changed;
    return fr__breaker_admit(b, now, &tr, &changed, NULL, 0);
}

static void test_breaker_transitions(void)
{
    fr__breaker_registry_reset();
    fr_breaker *b = fr__breaker_get("t", "agent", "x", &cfg3);
    CU_ASSERT_PTR_EQUAL(b, fr__breaker_get("t", "agent", "x", &cfg3));
    CU_ASSERT_PTR_NOT_EQUAL(b, fr__breaker_get("u", "agent", "x", &cfg3));
    CU_ASSERT_STRING_EQUAL(fr__breaker_name(b), "agent:x");
    fr_breaker_transition tr;
    /* Two failures, then a success: the count starts over. */
    for (int i = 0; i < 2; i++)
        CU_ASSERT_EQUAL(fr__breaker_record(b, admit(b, 0), FR_E_UNAVAILABLE, 0, &tr), 0);
    fr__breaker_record(b, admit(b, 0), FR_OK, 0, &tr);
    for (int i = 0; i < 2; i++)
        fr__breaker_record(b, admit(b, 0), FR_E_UNAVAILABLE, 0, &tr);
    CU_ASSERT_EQUAL(fr__breaker_state(b), FR_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(fr__breaker_record(b, admit(b, 10), FR_E_UNAVAILABLE, 10, &tr), 1);
    CU_ASSERT_EQUAL(tr.from, FR_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(tr.to, FR_BREAKER_OPEN);
    /* Open: fail fast until reset_timeout has passed. */
    CU_ASSERT_EQUAL(admit(b, 500 * MS), FR_ADMIT_REJECT);
    int changed;
    CU_ASSERT_EQUAL(fr__breaker_admit(b, 1000 * MS + 10, &tr, &changed, NULL, 0), FR_ADMIT_PROBE);
    CU_ASSERT(changed && tr.to == FR_BREAKER_HALF_OPEN);
    CU_ASSERT_EQUAL(admit(b, 1000 * MS + 20), FR_ADMIT_REJECT); /* one probe only */
    /* A failed probe re-opens; the next probe after another reset_timeout succeeds. */
    CU_ASSERT_EQUAL(fr__breaker_record(b, FR_ADMIT_PROBE, FR_E_TIMEOUT, 1100 * MS, &tr), 1);
    CU_ASSERT_EQUAL(tr.to, FR_BREAKER_OPEN);
    CU_ASSERT_EQUAL(admit(b, 1500 * MS), FR_ADMIT_REJECT);
    CU_ASSERT_EQUAL(admit(b, 2100 * MS), FR_ADMIT_PROBE);
    CU_ASSERT_EQUAL(fr__breaker_record(b, FR_ADMIT_PROBE, FR_OK, 2150 * MS, &tr), 1);
    CU_ASSERT_EQUAL(tr.to, FR_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(admit(b, 2200 * MS), FR_ADMIT_ALLOW);
}

static void test_breaker_ignores_429_and_408(void)
{
    fr__breaker_registry_reset();
    fr_breaker *b = fr__breaker_get("t", "provider", "p", &cfg3);
    fr_breaker_transition tr;
    for (int i = 0; i < 20; i++) {
        fr__breaker_record(b, admit(b, 0), FR_E_RATE_LIMITED, 0, &tr);
        fr__breaker_record(b, admit(b, 0), FR_E_REQUEST_TIMEOUT, 0, &tr);
        fr__breaker_record(b, admit(b, 0), FR_E_AUTH, 0, &tr);
    }
    CU_ASSERT_EQUAL(fr__breaker_state(b), FR_BREAKER_CLOSED);
}

typedef struct race {
    fr_breaker *b;
    int64_t now;
    pthread_barrier_t *start;
    int probes;
} race;

static void *racer(void *arg)
{
    race *r = arg;
    pthread_barrier_wait(r->start);
    for (int i = 0; i < 100; i++)
        if (admit(r->b, r->now) == FR_ADMIT_PROBE)
            r->probes++;
    return NULL;
}

static void test_breaker_single_probe_under_concurrency(void)
{
    fr__breaker_registry_reset();
    fr_breaker *b = fr__breaker_get("t", "agent", "race", &cfg3);
    fr_breaker_transition tr;
    for (int i = 0; i < 3; i++)
        fr__breaker_record(b, admit(b, 0), FR_E_NETWORK, 0, &tr);
    CU_ASSERT_EQUAL_FATAL(fr__breaker_state(b), FR_BREAKER_OPEN);
    enum { N = 8 };
    pthread_t t[N];
    race r[N];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, N);
    for (int i = 0; i < N; i++) {
        r[i] = (race){.b = b, .now = 5000 * MS, .start = &start};
        pthread_create(&t[i], NULL, racer, &r[i]);
    }
    int probes = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        probes += r[i].probes;
    }
    pthread_barrier_destroy(&start);
    CU_ASSERT_EQUAL(probes, 1);
}

/* ---- the engine ---------------------------------------------------------------------- */

static fr_run_result run_once(fr_pipeline *p, uint64_t seed)
{
    fr_run_options ro = {.has_seed = 1, .seed = seed};
    fr_run_result r;
    CU_ASSERT_EQUAL(fr__pipeline_run(p, &ro, &r), FR_OK);
    return r;
}

static void test_retries_then_success(void)
{
    fr_pipeline *p =
        fr_test_build("router: {namespace: retries}\n"
                      "agents:\n"
                      "  - id: flaky\n    plugin: chaos\n    config: {fail_attempts: 2}\n"
                      "    retry: {max_attempts: 4, backoff: exponential_jitter, base_delay: 2ms}\n"
                      "pipeline: [{step: s, agent: flaky}]\n");
    CU_ASSERT_FATAL(p != NULL);
    fr_run_result r = run_once(p, 99);
    const fr_step_result *s = fr_test_step(p, &r, "s");
    CU_ASSERT_EQUAL(s->state, FR_STEP_SUCCEEDED);
    CU_ASSERT_EQUAL_FATAL(s->n_attempts, 3);
    const fr_agent_cfg *ac = &fr__pipeline_manifest(p)->agents[0];
    CU_ASSERT_EQUAL(s->attempts[0].backoff_us, 0);
    CU_ASSERT_EQUAL(s->attempts[1].backoff_us, fr__backoff_delay(&ac->retry, 1, 99, "s"));
    CU_ASSERT_EQUAL(s->attempts[2].backoff_us, fr__backoff_delay(&ac->retry, 2, 99, "s"));
    CU_ASSERT_EQUAL(fr_status_class(s->attempts[0].status), FR_CLASS_UNAVAILABLE);
    CU_ASSERT_EQUAL(s->attempts[2].status, FR_OK);
    /* The same seed gives the same delays. */
    fr_run_result r2 = run_once(p, 99);
    CU_ASSERT_EQUAL(fr_test_step(p, &r2, "s")->attempts[2].backoff_us, s->attempts[2].backoff_us);
    fr__run_result_free(&r2);
    fr__run_result_free(&r);
    fr__pipeline_free(p);
}

static void test_non_retryable_stops(void)
{
    fr_pipeline *p = fr_test_build(
        "router: {namespace: nonretry}\n"
        "agents:\n"
        "  - id: denied\n    plugin: chaos\n    config: {fail_attempts: 9, error: auth}\n"
        "    retry: {max_attempts: 5, base_delay: 1ms}\n"
        "pipeline: [{step: s, agent: denied}]\n");
    CU_ASSERT_FATAL(p != NULL);
    fr_run_result r = run_once(p, 1);
    const fr_step_result *s = fr_test_step(p, &r, "s");
    CU_ASSERT_EQUAL(s->state, FR_STEP_FAILED);
    CU_ASSERT_EQUAL(s->n_attempts, 1);
    CU_ASSERT_EQUAL(fr_status_class(s->status), FR_CLASS_AUTH);
    fr__run_result_free(&r);
    fr__pipeline_free(p);
}

static void test_retry_after_honoured(void)
{
    fr_pipeline *p =
        fr_test_build("router: {namespace: retryafter}\n"
                      "agents:\n"
                      "  - id: limited\n    plugin: ratelimit\n    config: {fail_attempts: 1, "
                      "retry_after: 30ms}\n"
                      "    retry: {max_attempts: 3, backoff: constant, base_delay: 1ms}\n"
                      "pipeline: [{step: s, agent: limited}]\n");
    CU_ASSERT_FATAL(p != NULL);
    fr_run_result r = run_once(p, 1);
    const fr_step_result *s = fr_test_step(p, &r, "s");
    CU_ASSERT_EQUAL(s->state, FR_STEP_SUCCEEDED);
    CU_ASSERT_EQUAL_FATAL(s->n_attempts, 2);
    CU_ASSERT_EQUAL(fr_status_class(s->attempts[0].status), FR_CLASS_RATE_LIMITED);
    CU_ASSERT_EQUAL(s->attempts[1].backoff_us, 30 * MS);
    fr__run_result_free(&r);
    fr__pipeline_free(p);
}

static void test_deadline_stops_retries(void)
{
    fr_pipeline *p =
        fr_test_build("router: {namespace: deadline, run_timeout: 600ms}\n"
                      "agents:\n"
                      "  - id: down\n    plugin: chaos\n    config: {fail_attempts: 99}\n"
                      "    retry: {max_attempts: 10, backoff: constant, base_delay: 250ms}\n"
                      "pipeline: [{step: s, agent: down}]\n");
    CU_ASSERT_FATAL(p != NULL);
    int64_t t0 = fr__mono_us();
    fr_run_result r = run_once(p, 1);
    int64_t took = fr__mono_us() - t0;
    const fr_step_result *s = fr_test_step(p, &r, "s");
    CU_ASSERT_EQUAL(s->state, FR_STEP_FAILED);
    CU_ASSERT_EQUAL(fr_status_class(s->status), FR_CLASS_DEADLINE_EXCEEDED);
    CU_ASSERT_EQUAL(s->n_attempts, 3); /* at 0, 250 and 500 ms; the 4th would be at 750 */
    CU_ASSERT_PTR_NOT_NULL(strstr(s->message, "attempt 4 of agent \"down\" not started"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s->message, "run deadline"));
    CU_ASSERT(took < 600 * MS); /* gave up without sleeping into the deadline */
    fr__run_result_free(&r);
    fr__pipeline_free(p);
}

static void test_breaker_opens_and_fails_fast_across_runs(void)
{
    fr__breaker_registry_reset();
    fr_pipeline *p = fr_test_build(
        "router: {namespace: breaker}\n"
        "agents:\n"
        "  - id: down\n    plugin: chaos\n    config: {fail_attempts: 99, error: unavailable}\n"
        "    retry: {max_attempts: 2, backoff: constant, base_delay: 1ms}\n"
        "    circuit_breaker: {failure_threshold: 2, reset_timeout: 10s}\n"
        "pipeline: [{step: s, agent: down}]\n");
    CU_ASSERT_FATAL(p != NULL);
    fr_run_result r = run_once(p, 1);
    const fr_step_result *s = fr_test_step(p, &r, "s");
    CU_ASSERT_EQUAL(s->n_attempts, 2);
    CU_ASSERT_EQUAL_FATAL(r.n_transitions, 1);
    CU_ASSERT_STRING_EQUAL(r.transitions[0].breaker, "agent:down");
    CU_ASSERT_STRING_EQUAL(r.transitions[0].from, "closed");
    CU_ASSERT_STRING_EQUAL(r.transitions[0].to, "open");
    CU_ASSERT_EQUAL(r.transitions[0].attempt, 2);
    char *report = fr__report_json(p, &r, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(report, "\"breaker_transitions\":[{\"breaker\":\"agent:down\""));
    free(report);
    fr__run_result_free(&r);
    /* The next run fails fast: circuit_open, not retried. */
    r = run_once(p, 1);
    s = fr_test_step(p, &r, "s");
    CU_ASSERT_EQUAL(s->n_attempts, 1);
    CU_ASSERT_EQUAL(fr_status_class(s->status), FR_CLASS_CIRCUIT_OPEN);
    CU_ASSERT_EQUAL(s->attempts[0].duration_us, 0);
    fr__run_result_free(&r);
    fr__pipeline_free(p);
}

static void test_429_never_opens(void)
{
    fr__breaker_registry_reset();
    fr_pipeline *p =
        fr_test_build("router: {namespace: ratelimited}\n"
                      "agents:\n"
                      "  - id: limited\n    plugin: ratelimit\n    config: {fail_attempts: 99}\n"
                      "    retry: {max_attempts: 3, backoff: constant, base_delay: 1ms}\n"
                      "    circuit_breaker: {failure_threshold: 1}\n"
                      "pipeline: [{step: s, agent: limited}]\n");
    CU_ASSERT_FATAL(p != NULL);
    for (int i = 0; i < 2; i++) {
        fr_run_result r = run_once(p, 1);
        CU_ASSERT_EQUAL(fr_test_step(p, &r, "s")->n_attempts, 3);
        CU_ASSERT_EQUAL(r.n_transitions, 0);
        fr__run_result_free(&r);
    }
    fr__pipeline_free(p);
}

static void test_fallback_order(void)
{
    fr__breaker_registry_reset();
    fr_pipeline *p = fr_test_build(
        "router: {namespace: fallback}\n"
        "agents:\n"
        "  - id: primary\n    plugin: chaos\n    config: {fail_attempts: 9, error: auth}\n"
        "    fallback: [second, third, fourth]\n"
        "  - id: second\n    plugin: chaos\n    config: {fail_attempts: 9, error: overloaded}\n"
        "    retry: {max_attempts: 2, base_delay: 1ms}\n"
        "  - id: third\n    plugin: chaos\n    config: {output: {from: third}}\n"
        "  - id: fourth\n    plugin: echo\n"
        "  - id: e\n    plugin: echo\n"
        "pipeline:\n  - {step: s, agent: primary}\n  - {step: t, agent: e, depends_on: s}\n");
    CU_ASSERT_FATAL(p != NULL);
    fr_run_result r = run_once(p, 1);
    const fr_step_result *s = fr_test_step(p, &r, "s");
    CU_ASSERT_EQUAL(s->state, FR_STEP_SUCCEEDED);
    CU_ASSERT_STRING_EQUAL(s->answered_by, "third");
    CU_ASSERT_STRING_EQUAL(s->output, "{\"from\":\"third\"}");
    const char *agents[] = {"primary", "second", "second", "third"};
    const int numbers[] = {1, 1, 2, 1};
    CU_ASSERT_EQUAL_FATAL(s->n_attempts, 4);
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_STRING_EQUAL(s->attempts[i].agent, agents[i]);
        CU_ASSERT_EQUAL(s->attempts[i].attempt, numbers[i]);
    }
    CU_ASSERT_EQUAL(fr_test_step(p, &r, "t")->state, FR_STEP_SUCCEEDED);
    fr__run_result_free(&r);
    fr__pipeline_free(p);
}

/* A chain whose middle step hangs in chaos (past a 50 ms timeout, for 1.5 s) and falls
 * back to echo. */
#define HANG_CHAIN_YAML(ns)                                          \
    "router: {namespace: " ns ", worker_pool_size: 1}\n"             \
    "agents:\n"                                                      \
    "  - id: stuck\n    plugin: chaos\n    timeout: 50ms\n"          \
    "    config: {hang: true, hang_for: 1500ms, fail_attempts: 1}\n" \
    "    fallback: [rescue]\n"                                       \
    "  - id: rescue\n    plugin: echo\n"                             \
    "  - id: plain\n    plugin: echo\n"                              \
    "pipeline:\n  - {step: a, agent: plain}\n"                       \
    "  - {step: b, agent: stuck, depends_on: [a]}\n"                 \
    "  - {step: c, agent: plain, depends_on: [b]}\n"

static void test_hung_plugin_abandoned(void)
{
    fr_pipeline *p = fr_test_build(
        "router: {namespace: hang, worker_pool_size: 2}\n"
        "agents:\n"
        "  - id: stuck\n    plugin: chaos\n    timeout: 50ms\n    config: {hang: true}\n"
        "    fallback: [rescue]\n"
        "  - id: rescue\n    plugin: echo\n"
        "pipeline:\n  - {step: a, agent: stuck}\n  - {step: b, agent: stuck}\n"
        "  - {step: c, agent: rescue, depends_on: [a, b]}\n");
    CU_ASSERT_FATAL(p != NULL);
    int64_t t0 = fr__mono_us();
    fr_run_result r = run_once(p, 1);
    CU_ASSERT(fr__mono_us() - t0 < 2000 * MS);
    CU_ASSERT_EQUAL(r.status, FR_RUN_SUCCEEDED);
    for (const char *id = "a"; *id <= 'b'; id = *id == 'a' ? "b" : "z") {
        const fr_step_result *s = fr_test_step(p, &r, id);
        CU_ASSERT_STRING_EQUAL(s->answered_by, "rescue");
        CU_ASSERT_EQUAL_FATAL(s->n_attempts, 2);
        CU_ASSERT_EQUAL(fr_status_class(s->attempts[0].status), FR_CLASS_TIMEOUT);
        CU_ASSERT_PTR_NOT_NULL(strstr(s->attempts[0].message, "hung"));
    }
    /* Both workers were replaced: the pool still runs a second run. */
    fr__run_result_free(&r);
    r = run_once(p, 2);
    CU_ASSERT_EQUAL(r.status, FR_RUN_SUCCEEDED);
    fr__run_result_free(&r);
    /* Hung threads still inside the plugin: the pipeline is kept (by design). */
    fr__pipeline_free(p);
}

/* Runs on the pipeline's driver thread (`fluxroute run`, the embedding API): a plugin
 * that hangs there is abandoned, the step carries on on a worker, and the caller gets the
 * run back at the deadline while the driver is still held; the next run gets a new
 * driver. */
static void test_driver_run_and_hang(void)
{
    /* A plugin that hung on a run's own thread never runs there again in this process
     * (test_inline_run_and_hang does that to chaos): the plugins are named by another path
     * here, so this test does not depend on the order. */
    const char *build = getenv("FR_BUILDDIR") ? getenv("FR_BUILDDIR") : ".";
    char target[2048], dir[2048], link[2100];
    snprintf(target, sizeof target, "%s/plugins/chaos.so", build);
    char *real = realpath(target, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(real);
    snprintf(dir, sizeof dir, "%s/tests/tmp", build);
    mkdir(dir, 0755); /* may exist */
    snprintf(dir, sizeof dir, "%s/tests/tmp/driver-%ld", build, (long)getpid());
    snprintf(link, sizeof link, "%s/chaos.so", dir);
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0755), 0);
    CU_ASSERT_EQUAL_FATAL(symlink(real, link), 0);
    free(real);
    char saved[sizeof fr_test_plugin_dir];
    memcpy(saved, fr_test_plugin_dir, sizeof saved);
    snprintf(fr_test_plugin_dir, sizeof fr_test_plugin_dir, "%s", dir);
    const char *yaml = HANG_CHAIN_YAML("driver");
    fr_pipeline *p = fr_test_build(yaml);
    memcpy(fr_test_plugin_dir, saved, sizeof saved);
    CU_ASSERT_FATAL(p != NULL);
    fr_run_options ro = {.has_seed = 1, .seed = 7, .run_inline = FR_RUN_ON_DRIVER};
    fr_run_result r;
    /* Runs without a hang: one driver serves them one after another. */
    fr_pipeline *quick = fr_test_build("agents:\n  - id: plain\n    plugin: echo\n"
                                       "pipeline:\n  - {step: a, agent: plain}\n"
                                       "  - {step: b, agent: plain, depends_on: [a]}\n");
    CU_ASSERT_FATAL(quick != NULL);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL_FATAL(fr__pipeline_run(quick, &ro, &r), FR_OK);
        CU_ASSERT_EQUAL(r.status, FR_RUN_SUCCEEDED);
        CU_ASSERT_EQUAL(fr_test_step(quick, &r, "b")->state, FR_STEP_SUCCEEDED);
        fr__run_result_free(&r);
    }
    fr__pipeline_free(quick); /* stops the driver */
    int64_t t0 = fr__mono_us();
    CU_ASSERT_EQUAL_FATAL(fr__pipeline_run(p, &ro, &r), FR_OK);
    int64_t took = fr__mono_us() - t0;
    /* Back at the deadline (50 ms + the hang grace), not when the plugin returns (the
     * driver is still held)... */
    CU_ASSERT(took < 1200 * MS);
    CU_ASSERT(fr__pipeline_callers_held() > 0);
    /* ...with the whole run: the fallback answered and the next step ran. */
    CU_ASSERT_EQUAL(r.status, FR_RUN_SUCCEEDED);
    const fr_step_result *b = fr_test_step(p, &r, "b");
    CU_ASSERT_STRING_EQUAL(b->answered_by, "rescue");
    CU_ASSERT_EQUAL_FATAL(b->n_attempts, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(b->attempts[0].message, "hung"));
    CU_ASSERT_EQUAL(fr_test_step(p, &r, "c")->state, FR_STEP_SUCCEEDED);
    CU_ASSERT(r.finished_at_us >= r.started_at_us && r.started_at_us > 0);
    fr__run_result_free(&r);
    /* The old driver is still held: a new one serves the next run (on the workers now,
     * as chaos has hung once). */
    t0 = fr__mono_us();
    CU_ASSERT_EQUAL_FATAL(fr__pipeline_run(p, &ro, &r), FR_OK);
    CU_ASSERT(fr__mono_us() - t0 < 1200 * MS);
    CU_ASSERT_EQUAL(r.status, FR_RUN_SUCCEEDED);
    CU_ASSERT_STRING_EQUAL(fr_test_step(p, &r, "b")->answered_by, "rescue");
    fr__run_result_free(&r);
    /* Once the held threads have returned (1.5 s), the pipeline is freed for real. */
    struct timespec wait = {2, 0};
    nanosleep(&wait, NULL);
    fr__pipeline_free(p);
    unlink(link);
    rmdir(dir);
}

/* Runs on the calling thread (serve's synchronous requests): a plugin that hangs there
 * is abandoned by the process-wide watchdog and the step carries on on a pool worker;
 * the caller returns when the plugin does, and that plugin never runs inline again. */
static void test_inline_run_and_hang(void)
{
    const char *yaml = HANG_CHAIN_YAML("inline");
    fr_pipeline *p = fr_test_build(yaml);
    CU_ASSERT_FATAL(p != NULL);
    fr_run_options ro = {.has_seed = 1, .seed = 7, .run_inline = 1};
    fr_run_result r;
    int64_t t0 = fr__mono_us();
    CU_ASSERT_EQUAL_FATAL(fr__pipeline_run(p, &ro, &r), FR_OK);
    int64_t took = fr__mono_us() - t0;
    /* The caller came back only when the plugin returned... */
    CU_ASSERT(took >= 1400 * MS);
    /* ...but the run went on without it: the hung attempt was abandoned, the fallback
     * answered and the next step ran. */
    CU_ASSERT_EQUAL(r.status, FR_RUN_SUCCEEDED);
    const fr_step_result *b = fr_test_step(p, &r, "b");
    CU_ASSERT_STRING_EQUAL(b->answered_by, "rescue");
    CU_ASSERT_EQUAL_FATAL(b->n_attempts, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(b->attempts[0].message, "hung"));
    CU_ASSERT(fr_test_step(p, &r, "c")->duration_us < 1000 * MS);
    fr__run_result_free(&r);
    fr__pipeline_free(p);

    /* chaos has hung: its pipelines no longer run inline, so the next hang costs only
     * the step's deadline, not the caller. */
    p = fr_test_build(yaml);
    CU_ASSERT_FATAL(p != NULL);
    t0 = fr__mono_us();
    CU_ASSERT_EQUAL_FATAL(fr__pipeline_run(p, &ro, &r), FR_OK);
    CU_ASSERT(fr__mono_us() - t0 < 1200 * MS);
    CU_ASSERT_EQUAL(r.status, FR_RUN_SUCCEEDED);
    CU_ASSERT_STRING_EQUAL(fr_test_step(p, &r, "b")->answered_by, "rescue");
    fr__run_result_free(&r);
    fr__pipeline_free(p); /* waits for nothing: the abandoned worker leaves in 1.5 s */
}

/* The compact report (written as text, outputs embedded as they are) says exactly what
 * the report tree says: failures, fallbacks, skipped steps, breaker transitions, odd
 * characters in messages and outputs. */
static void test_compact_report_matches_tree(void)
{
    fr_pipeline *p = fr_test_build(
        "router: {namespace: rep}\n"
        "agents:\n"
        "  - id: flaky\n    plugin: chaos\n    retry: {max_attempts: 2, backoff: constant, "
        "base_delay: 1ms}\n"
        "    circuit_breaker: {failure_threshold: 1}\n"
        "    config: {fail_attempts: 5, error: unavailable}\n"
        "    fallback: [odd]\n"
        "  - id: odd\n    plugin: chaos\n"
        "    config: {output: {\"t\": \"tab\\there \\u00e9 \\\"q\\\" / \\u0001\", \"n\": [1.5, -2, "
        "null, true]}}\n"
        "  - id: broken\n    plugin: chaos\n    config: {fail_attempts: 9, error: bad_request}\n"
        "pipeline:\n  - {step: a, agent: flaky}\n  - {step: b, agent: broken, depends_on: [a]}\n"
        "  - {step: c, agent: odd, depends_on: [b]}\n  - {step: d, agent: odd}\n"
        "input: {\"x\": \"line\\nbreak\"}\n");
    CU_ASSERT_FATAL(p != NULL);
    fr_run_result r = run_once(p, 3);
    CU_ASSERT_EQUAL(r.status, FR_RUN_FAILED);
    char *text = fr__report_json(p, &r, 0);
    CU_ASSERT_FATAL(text != NULL);
    json_object *compact = json_tokener_parse(text), *tree = fr__report_build(p, &r, 0);
    CU_ASSERT_FATAL(compact != NULL && tree != NULL);
    CU_ASSERT(json_object_equal(compact, tree));
    if (!json_object_equal(compact, tree))
        fprintf(stderr, "compact: %s\ntree:    %s\n", text,
                json_object_to_json_string_ext(tree, JSON_C_TO_STRING_PLAIN));
    /* Breaker transitions made it in. */
    json_object *bt = NULL;
    CU_ASSERT(json_object_object_get_ex(compact, "breaker_transitions", &bt) &&
              json_object_array_length(bt) > 0);
    json_object_put(compact);
    json_object_put(tree);
    free(text);
    fr__run_result_free(&r);
    fr__pipeline_free(p);
}

int main(void)
{
    fr_test_init_dirs();
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("resilience", NULL, NULL);
    CU_add_test(s, "backoff sequences", test_backoff_sequences);
    CU_add_test(s, "Retry-After parsing", test_retry_after_parse);
    CU_add_test(s, "breaker transitions", test_breaker_transitions);
    CU_add_test(s, "429 and 408 never count", test_breaker_ignores_429_and_408);
    CU_add_test(s, "one half-open probe under concurrency",
                test_breaker_single_probe_under_concurrency);
    CU_add_test(s, "retries then success", test_retries_then_success);
    CU_add_test(s, "non-retryable stops at once", test_non_retryable_stops);
    CU_add_test(s, "Retry-After honoured", test_retry_after_honoured);
    CU_add_test(s, "deadline stops retries", test_deadline_stops_retries);
    CU_add_test(s, "breaker opens, fails fast across runs",
                test_breaker_opens_and_fails_fast_across_runs);
    CU_add_test(s, "429 never opens the breaker", test_429_never_opens);
    CU_add_test(s, "fallback order", test_fallback_order);
    CU_add_test(s, "hung plugin abandoned", test_hung_plugin_abandoned);
    CU_add_test(s, "inline run, hung plugin", test_inline_run_and_hang);
    CU_add_test(s, "driver run, hung plugin", test_driver_run_and_hang);
    CU_add_test(s, "compact report matches the tree", test_compact_report_matches_tree);
    return fr_test_run_all();
}
