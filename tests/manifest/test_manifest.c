/* Manifest subsystem tests: YAML typing, durations, DAG order, manifest validation. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "manifest/dag.h"
#include "base/diag.h"
#include "base/duration.h"
#include "manifest/manifest.h"
#include "manifest/manifest_graph.h"
#include "manifest/rbac.h"
#include "base/yaml_tree.h"

static char *data_path(const char *name)
{
    const char *src = getenv("FR_SRCDIR");
    char *p = NULL;
    if (asprintf(&p, "%s/tests/data/manifests/%s", src ? src : ".", name) < 0)
        abort();
    return p;
}

static fr_manifest *load(const char *name, fr_diags *d)
{
    char *p = data_path(name);
    fr__diags_init(d, name);
    fr_manifest *m = fr__manifest_load(p, d);
    free(p);
    fr__diags_sort(d);
    return m;
}

static void dump(const fr_diags *d)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(stderr, "    %s:%d:%d: %s\n", d->file, d->items[i].line, d->items[i].col,
                d->items[i].message);
}

/* ---- durations ---- */

static void test_duration_good(void)
{
    static const struct {
        const char *text;
        int64_t us;
    } cases[] = {
        {"0", 0},
        {"250ms", 250000},
        {"1m30s", 90000000},
        {"1.5h", 5400000000LL},
        {"10us", 10},
        {"10\xc2\xb5s", 10},
        {"10\xce\xbcs", 10},
        {"1500ns", 1},
        {"-2s", -2000000},
        {"+3s", 3000000},
        {".5s", 500000},
        {"1.s", 1000000},
        {"2h45m", 9900000000LL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int64_t us = -12345;
        const char *why = NULL;
        int rc = fr__duration_parse(cases[i].text, &us, &why);
        if (rc != 0 || us != cases[i].us)
            fprintf(stderr, "    duration %s: rc=%d us=%lld\n", cases[i].text, rc, (long long)us);
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_EQUAL(us, cases[i].us);
    }
}

static void test_duration_bad(void)
{
    static const struct {
        const char *text, *why;
    } cases[] = {
        {"10", "missing unit"},       {"", "empty"},
        {"10x", "unknown unit"},      {"s", "invalid number"},
        {"1.5", "missing unit"},      {"-", "invalid number"},
        {"99999999999h", "overflow"}, {"1e3s", "unknown unit"},
        {"..s", "invalid number"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int64_t us = 0;
        const char *why = NULL;
        CU_ASSERT_EQUAL(fr__duration_parse(cases[i].text, &us, &why), -1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(why);
        if (strstr(why, cases[i].why) == NULL)
            fprintf(stderr, "    duration %s: why=%s\n", cases[i].text, why);
        CU_ASSERT_PTR_NOT_NULL(strstr(why, cases[i].why));
    }
}

static void test_duration_format(void)
{
    static const struct {
        int64_t us;
        const char *text;
    } cases[] = {
        {0, "0s"},
        {15, "15\xc2\xb5s"},
        {1500, "1.5ms"},
        {250000, "250ms"},
        {1500000, "1.5s"},
        {120000000, "2m0s"},
        {5400000000LL, "1h30m0s"},
        {-2000000, "-2s"},
        {3723000001LL, "1h2m3.000001s"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char buf[64];
        fr__duration_format(cases[i].us, buf, sizeof buf);
        if (strcmp(buf, cases[i].text))
            fprintf(stderr, "    format %lld: %s\n", (long long)cases[i].us, buf);
        CU_ASSERT_STRING_EQUAL(buf, cases[i].text);
    }
}

/* ---- YAML tree ---- */

static void test_yaml_typing(void)
{
    static const struct {
        const char *text;
        fr_yscalar_type type;
        int64_t ival;
    } cases[] = {
        {"yes", FR_YS_STRING, 0},
        {"on", FR_YS_STRING, 0},
        {"07", FR_YS_INT, 7},
        {"no", FR_YS_STRING, 0},
        {"true", FR_YS_BOOL, 1},
        {"FALSE", FR_YS_BOOL, 0},
        {"~", FR_YS_NULL, 0},
        {"", FR_YS_NULL, 0},
        {"Null", FR_YS_NULL, 0},
        {"0x1f", FR_YS_INT, 31},
        {"0o17", FR_YS_INT, 15},
        {"-12", FR_YS_INT, -12},
        {"1.5", FR_YS_FLOAT, 0},
        {".inf", FR_YS_FLOAT, 0},
        {"1e3", FR_YS_FLOAT, 0},
        {"'true'", FR_YS_STRING, 0},
        {"\"7\"", FR_YS_STRING, 0},
        {"0x", FR_YS_STRING, 0},
        {"99999999999999999999", FR_YS_FLOAT, 0},
        {"1_000", FR_YS_STRING, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char text[64];
        snprintf(text, sizeof text, "k: %s\n", cases[i].text);
        fr_diags d;
        fr_ydoc doc;
        fr__diags_init(&d, "t");
        CU_ASSERT_EQUAL_FATAL(fr__ydoc_parse(&doc, text, strlen(text), &d), 0);
        const fr_ynode *v = fr__ymap_get(doc.root, "k");
        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
        if (v->type != cases[i].type)
            fprintf(stderr, "    yaml %s: type %d\n", cases[i].text, v->type);
        CU_ASSERT_EQUAL(v->type, cases[i].type);
        if (cases[i].type == FR_YS_INT || cases[i].type == FR_YS_BOOL)
            CU_ASSERT_EQUAL(v->ival, cases[i].ival);
        fr__ydoc_free(&doc);
        fr__diags_free(&d);
    }
}

static void test_yaml_errors(void)
{
    static const struct {
        const char *text;
        int line, col;
        const char *msg;
    } cases[] = {
        {"a: 1\nb: 2\na: 3\n", 3, 1, "duplicate key \"a\""},
        {"x:\n  - [a, b]: 1\n", 2, 5, "mapping keys must be scalars"},
        {"a: [1, 2\n", 2, 1, "did not find expected"},
        {"a: *nope\n", 1, 4, "unknown anchor \"nope\""},
        {"a: &x [1, *x]\n", 1, 11, "unknown anchor \"x\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        fr_diags d;
        fr_ydoc doc;
        fr__diags_init(&d, "t");
        CU_ASSERT_EQUAL(fr__ydoc_parse(&doc, cases[i].text, strlen(cases[i].text), &d), -1);
        CU_ASSERT_EQUAL_FATAL(d.n, 1);
        if (d.items[0].line != cases[i].line || d.items[0].col != cases[i].col)
            dump(&d);
        CU_ASSERT_EQUAL(d.items[0].line, cases[i].line);
        CU_ASSERT_EQUAL(d.items[0].col, cases[i].col);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.items[0].message, cases[i].msg));
        fr__ydoc_free(&doc);
        fr__diags_free(&d);
    }
}

static void test_yaml_alias_bomb(void)
{
    /* Each level doubles: 2^30 leaves if expanded.  Parsing refuses it by default (see
     * tests/base/test_yaml_limits.c); without limits parsing stays small and conversion to
     * JSON stops at its node budget instead of exhausting memory. */
    char text[4096];
    size_t w = (size_t)snprintf(text, sizeof text, "l0: &l0 [x, x]\n");
    for (int i = 1; i <= 30; i++)
        w += (size_t)snprintf(text + w, sizeof text - w, "l%d: &l%d [*l%d, *l%d]\n", i, i, i - 1,
                              i - 1);
    fr_diags d;
    fr_ydoc doc;
    fr__diags_init(&d, "t");
    fr_yaml_limits unlimited = {.max_nodes = SIZE_MAX, .max_aliases = SIZE_MAX};
    CU_ASSERT_EQUAL_FATAL(fr__ydoc_parse_ex(&doc, text, w, &unlimited, &d), 0);
    CU_ASSERT_TRUE(doc.n_all < 200);
    struct json_object *o = NULL;
    CU_ASSERT_EQUAL(fr__ynode_to_json_ex(doc.root, &o), -1);
    CU_ASSERT_PTR_NULL(o);
    /* A small alias is expanded. */
    const fr_ynode *l1 = fr__ymap_get(doc.root, "l1");
    char *json = fr__ynode_to_json_text(l1);
    if (strcmp(json, "[[\"x\",\"x\"],[\"x\",\"x\"]]"))
        fprintf(stderr, "    alias json: %s\n", json);
    CU_ASSERT_STRING_EQUAL(json, "[[\"x\",\"x\"],[\"x\",\"x\"]]");
    free(json);
    fr__ydoc_free(&doc);
    fr__diags_free(&d);
}

/* ---- DAG ---- */

static int run_topo(size_t n, const int *flat_deps, const size_t *n_deps, int *order, int *cycle,
                    size_t *clen)
{
    int *deps[16];
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        deps[i] = (int *)flat_deps + off;
        off += n_deps[i];
    }
    return fr__dag_toposort(n, deps, n_deps, order, cycle, clen);
}

static void test_dag_diamond_and_ties(void)
{
    /* 0:a, 1:b<-a, 2:c<-a, 3:d<-b,c ; a fifth independent step 4 comes before d. */
    static const int flat[] = {0, 0, 1, 2};
    static const size_t nd[] = {0, 1, 1, 2, 0};
    int order[5], cycle[6];
    size_t clen = 0;
    CU_ASSERT_EQUAL(run_topo(5, flat, nd, order, cycle, &clen), 0);
    static const int want[] = {0, 1, 2, 3, 4};
    CU_ASSERT_EQUAL(memcmp(order, want, sizeof want), 0);

    /* Ties by manifest order: 0 depends on 2, so 1 (ready) goes first, then 2, then 0. */
    static const int flat2[] = {2};
    static const size_t nd2[] = {1, 0, 0};
    CU_ASSERT_EQUAL(run_topo(3, flat2, nd2, order, cycle, &clen), 0);
    static const int want2[] = {1, 2, 0};
    CU_ASSERT_EQUAL(memcmp(order, want2, sizeof want2), 0);
}

static void test_dag_cycle(void)
{
    /* 0 free; 1 <- 3; 2 <- 1; 3 <- 2, 0: cycle 1 -> 2 -> 3 -> 1 in data-flow order. */
    static const int flat[] = {3, 1, 2, 0};
    static const size_t nd[] = {0, 1, 1, 2};
    int order[4], cycle[5];
    size_t clen = 0;
    CU_ASSERT_EQUAL(run_topo(4, flat, nd, order, cycle, &clen), -1);
    CU_ASSERT_EQUAL_FATAL(clen, 4);
    static const int want[] = {1, 2, 3, 1};
    CU_ASSERT_EQUAL(memcmp(cycle, want, sizeof want), 0);
}

static void test_dag_large(void)
{
    /* 10,000 steps: step i depends on steps i+1 and i+2, so the order is reversed. */
    size_t n = 10000;
    int **deps = calloc(n, sizeof *deps);
    size_t *nd = calloc(n, sizeof *nd);
    int *order = calloc(n, sizeof *order), *cycle = calloc(n + 1, sizeof *cycle);
    int *store = calloc(2 * n, sizeof *store);
    for (size_t i = 0; i < n; i++) {
        deps[i] = store + 2 * i;
        if (i + 1 < n)
            deps[i][nd[i]++] = (int)(i + 1);
        if (i + 2 < n)
            deps[i][nd[i]++] = (int)(i + 2);
    }
    size_t clen;
    CU_ASSERT_EQUAL(fr__dag_toposort(n, deps, nd, order, cycle, &clen), 0);
    CU_ASSERT_EQUAL(order[0], (int)n - 1);
    CU_ASSERT_EQUAL(order[n - 1], 0);
    /* Close a cycle across the whole chain: 9999 depends on 0. */
    deps[n - 1] = store + 2 * (n - 1);
    deps[n - 1][0] = 0;
    nd[n - 1] = 1;
    CU_ASSERT_EQUAL(fr__dag_toposort(n, deps, nd, order, cycle, &clen), -1);
    CU_ASSERT_TRUE(clen >= 3);
    CU_ASSERT_EQUAL(cycle[0], cycle[clen - 1]);
    free(deps);
    free(nd);
    free(order);
    free(cycle);
    free(store);
}

/* ---- RBAC ---- */

static void test_rbac(void)
{
    fr_role r;
    CU_ASSERT_EQUAL(fr__role_parse("  Admin ", &r), 0);
    CU_ASSERT_EQUAL(r, FR_ROLE_ADMIN);
    CU_ASSERT_EQUAL(fr__role_parse("root", &r), -1);
    CU_ASSERT_EQUAL(fr__action_default_roles(FR_ACTION_RUN),
                    FR_ROLE_BIT(FR_ROLE_OPERATOR) | FR_ROLE_BIT(FR_ROLE_ADMIN));
    CU_ASSERT_STRING_EQUAL(fr__action_key(FR_ACTION_REPLAY), "replay_roles");
    CU_ASSERT_STRING_EQUAL(fr__action_name(FR_ACTION_VALIDATE), "validate_manifest");
    unsetenv("REQUEST_ROLE");
    CU_ASSERT_EQUAL(fr__role_from_env(&r), 0);
    CU_ASSERT_EQUAL(r, FR_ROLE_OPERATOR);
    setenv("REQUEST_ROLE", "viewer", 1);
    CU_ASSERT_EQUAL(fr__role_from_env(&r), 0);
    CU_ASSERT_EQUAL(r, FR_ROLE_VIEWER);
    setenv("REQUEST_ROLE", "admn", 1);
    CU_ASSERT_EQUAL(fr__role_from_env(&r), -1);
    unsetenv("REQUEST_ROLE");
}

/* ---- manifests ---- */

static void test_manifest_valid_full(void)
{
    fr_diags d;
    fr_manifest *m = load("valid_full.yaml", &d);
    if (d.n)
        dump(&d);
    CU_ASSERT_EQUAL(d.n, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(m->worker_pool_size, 4);
    CU_ASSERT_EQUAL(m->channel_buffer, 16);
    CU_ASSERT_EQUAL(m->default_timeout_us, 10000000);
    CU_ASSERT_EQUAL(m->run_timeout_us, 120000000);
    CU_ASSERT_STRING_EQUAL(m->namespace_, "tenant-a");
    CU_ASSERT_EQUAL(m->rbac[FR_ACTION_RUN],
                    FR_ROLE_BIT(FR_ROLE_OPERATOR) | FR_ROLE_BIT(FR_ROLE_ADMIN));
    CU_ASSERT_EQUAL(m->rbac[FR_ACTION_VALIDATE], FR_ROLE_BIT(FR_ROLE_VIEWER));
    CU_ASSERT_EQUAL(m->rbac[FR_ACTION_ADMIN], FR_ROLE_BIT(FR_ROLE_ADMIN));
    CU_ASSERT_STRING_EQUAL(m->lease_key, "pipelines/main");
    CU_ASSERT_EQUAL(m->lease_enabled, 1);
    CU_ASSERT_EQUAL_FATAL(m->n_plugin_dirs, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(m->plugin_dirs[0], "tests/data/manifests/plugins"));
    CU_ASSERT_STRING_EQUAL(m->plugin_dirs[1], "/opt/fluxroute/plugins");

    CU_ASSERT_EQUAL_FATAL(m->n_providers, 1);
    CU_ASSERT_STRING_EQUAL(m->providers[0].plugin, "openai");
    CU_ASSERT_EQUAL(m->providers[0].breaker.enabled, 1);
    CU_ASSERT_EQUAL(m->providers[0].breaker.failure_threshold, 3);
    CU_ASSERT_EQUAL(m->providers[0].breaker.reset_timeout_us, 60000000);
    CU_ASSERT_PTR_NOT_NULL(fr__ymap_get(m->providers[0].config, "model"));

    CU_ASSERT_EQUAL_FATAL(m->n_agents, 3);
    const fr_agent_cfg *a = &m->agents[0];
    CU_ASSERT_STRING_EQUAL(a->plugin, "llm");
    CU_ASSERT_EQUAL(a->plugin_implicit, 0);
    CU_ASSERT_EQUAL(a->provider_index, 0);
    CU_ASSERT_EQUAL(a->timeout_us, 1500000);
    CU_ASSERT_EQUAL(a->retry.max_attempts, 3);
    CU_ASSERT_EQUAL(a->retry.backoff, FR_BACKOFF_EXPONENTIAL_JITTER);
    CU_ASSERT_EQUAL(a->retry.base_delay_us, 50000);
    CU_ASSERT_EQUAL(a->retry.max_delay_us, 2000000);
    CU_ASSERT_EQUAL(a->breaker.failure_threshold, 2);
    CU_ASSERT_EQUAL(a->breaker.probe_timeout_us, 1000000);
    CU_ASSERT_EQUAL(a->isolation, FR_ISOLATION_PROCESS);
    CU_ASSERT_EQUAL_FATAL(a->n_fallback, 1);
    CU_ASSERT_EQUAL(a->fallback_index[0], 1);
    CU_ASSERT_EQUAL(m->agents[1].fallback_index[0], 0);
    CU_ASSERT_STRING_EQUAL(m->agents[2].plugin, "echo");
    CU_ASSERT_EQUAL(m->agents[2].plugin_implicit, 1);
    CU_ASSERT_EQUAL(m->agents[2].breaker.enabled, 0);
    CU_ASSERT_EQUAL(m->agents[2].retry.backoff, FR_BACKOFF_EXPONENTIAL);

    CU_ASSERT_EQUAL_FATAL(m->n_steps, 3);
    CU_ASSERT_EQUAL(m->steps[0].agent_index, 0);
    CU_ASSERT_EQUAL(m->steps[2].agent_index, 1);
    CU_ASSERT_EQUAL(m->steps[2].n_deps, 2);
    CU_ASSERT_EQUAL(m->steps[2].dep_index[1], 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m->topo);
    CU_ASSERT_EQUAL(m->topo[0], 0);
    CU_ASSERT_EQUAL(m->topo[2], 2);
    CU_ASSERT_STRING_EQUAL(
        m->input_json, "{\"text\":\"hello\",\"n\":3,\"ok\":\"yes\",\"list\":[1,2.5,null,true]}");
    CU_ASSERT_EQUAL(fr__manifest_step_index(m, "finish"), 2);
    CU_ASSERT_EQUAL(fr__manifest_agent_index(m, "backup"), 1);
    CU_ASSERT_EQUAL(fr__manifest_provider_index(m, "nope"), -1);
    fr__manifest_free(m);
    fr__diags_free(&d);
}

static void test_manifest_original(void)
{
    fr_diags d;
    unsetenv("WORKER_POOL_SIZE");
    fr_manifest *m = load("original_example.yaml", &d);
    if (d.n)
        dump(&d);
    CU_ASSERT_EQUAL(d.n, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(m->worker_pool_size, 20);
    CU_ASSERT_EQUAL(m->n_agents, 2);
    CU_ASSERT_EQUAL(m->agents[0].plugin_implicit, 1);
    CU_ASSERT_STRING_EQUAL(m->agents[0].plugin, "echo");
    CU_ASSERT_EQUAL(m->agents[1].retry.backoff, FR_BACKOFF_LINEAR);
    CU_ASSERT_EQUAL(m->agents[0].breaker.enabled, 1);
    CU_ASSERT_EQUAL(m->steps[1].agent_index, 1);
    CU_ASSERT_EQUAL(m->steps[1].dep_index[0], 0);
    CU_ASSERT_STRING_EQUAL(m->input_json, "{}");
    fr__manifest_free(m);
    fr__diags_free(&d);
}

static void test_manifest_typing(void)
{
    fr_diags d;
    fr_manifest *m = load("typing.yaml", &d);
    CU_ASSERT_EQUAL(d.n, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_STRING_EQUAL(m->input_json, "{\"y\":\"yes\",\"o\":\"on\",\"z\":7,\"q\":\"12\","
                                          "\"t\":true,\"n\":null,\"h\":31,\"oc\":15,\"f\":1.5}");
    fr__manifest_free(m);
    fr__diags_free(&d);
}

static void test_manifest_env(void)
{
    fr_diags d;
    setenv("WORKER_POOL_SIZE", "7", 1);
    setenv("DEFAULT_TIMEOUT", "5s", 1);
    fr_manifest *m = load("typing.yaml", &d);
    CU_ASSERT_EQUAL(d.n, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(m->worker_pool_size, 7);
    CU_ASSERT_EQUAL(m->default_timeout_us, 5000000);
    fr__manifest_free(m);
    fr__diags_free(&d);

    setenv("WORKER_POOL_SIZE", "many", 1);
    setenv("DEFAULT_TIMEOUT", "5", 1);
    m = load("typing.yaml", &d);
    CU_ASSERT_EQUAL_FATAL(d.n, 2);
    CU_ASSERT_EQUAL(d.items[0].line, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.items[0].message, "WORKER_POOL_SIZE"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d.items[1].message, "DEFAULT_TIMEOUT"));
    fr__manifest_free(m);
    fr__diags_free(&d);
    /* A manifest value wins and the variable is not consulted. */
    m = load("original_example.yaml", &d);
    CU_ASSERT_EQUAL(d.n, 0);
    fr__manifest_free(m);
    fr__diags_free(&d);
    unsetenv("WORKER_POOL_SIZE");
    unsetenv("DEFAULT_TIMEOUT");
}

/* Bad manifests: every expected diagnostic, in file order (the count must match). */
typedef struct want_diag {
    int line;
    const char *msg;
} want_diag;

static const struct bad_case {
    const char *file;
    int null_manifest; /* 1: parse must return NULL (fatal) */
    want_diag diags[8];
} bad_cases[] = {
    {"bad_unknown_keys.yaml",
     0,
     {{2, "unknown key \"workers\" in router (expected: worker_pool_size,"},
      {5, "unknown key \"plugn\" in agent \"a\" (expected: id, plugin,"},
      {8, "unknown key \"needs\" in step \"a\""},
      {9, "unknown key \"extra\" in the top level"}}},
    {"bad_types.yaml",
     0,
     {{2, "router.worker_pool_size: expected an integer, got string \"ten\""},
      {4, "router.lease.enabled: expected a boolean"},
      {5, "router.stream_restart: expected a boolean"},
      {9, "agents[0].retry.max_attempts: must be between 1"},
      {10, "agents[0].retry.backoff: unknown backoff \"expo\""},
      {11, "agents[0].isolation: unknown isolation \"container\""},
      {12, "pipeline: expected a list, got mapping"}}},
    {"bad_durations.yaml",
     0,
     {{2, "router.default_timeout: invalid duration \"30\": missing unit"},
      {3, "router.run_timeout: must be >= 0"},
      {6, "agents[0].timeout: invalid duration \"10x\": unknown unit"},
      {8, "agents[0].circuit_breaker.reset_timeout: invalid duration \"1.5\""}}},
    {"bad_duplicates.yaml",
     0,
     {{4, "duplicate provider id \"p\""},
      {8, "duplicate agent id \"a\""},
      {11, "duplicate step id \"a\""}}},
    {"bad_references.yaml",
     0,
     {{3, "agent \"a\": unknown provider \"nope\""},
      {4, "agent \"a\": unknown fallback agent \"ghost\""},
      {4, "agent \"a\": cannot fall back to itself"},
      {8, "step \"b\": unknown agent \"missing\""},
      {11, "step \"c\" depends on unknown step \"zz\""},
      {11, "step \"c\" cannot depend on itself"}}},
    {"bad_cycle.yaml", 0, {{6, "cycle in pipeline: a -> b -> c -> a"}}},
    {"bad_namespace_role.yaml",
     0,
     {{2, "router.namespace: invalid namespace \"9 bad namespace\""},
      {4,
       "router.rbac.run_roles: unknown role \"superuser\" (expected: viewer, operator, admin)"}}},
    {"bad_syntax.yaml", 1, {{5, "did not find expected ',' or ']'"}}},
    {"bad_dup_key.yaml", 0, {{3, "duplicate key \"id\""}}},
    {"bad_required.yaml",
     0,
     {{1, "missing required key \"pipeline\""}, {2, "agents: must be a non-empty list"}}},
    {"empty.yaml", 0, {{0, "manifest is empty"}}},
    {"not_mapping.yaml", 0, {{1, "top level: expected a mapping"}}},
    {"does_not_exist.yaml", 1, {{0, "cannot read manifest: No such file or directory"}}},
};

static void test_manifest_bad(void)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof *bad_cases; i++) {
        const struct bad_case *bc = &bad_cases[i];
        size_t want = 0;
        while (want < 8 && bc->diags[want].msg)
            want++;
        fr_diags d;
        fr_manifest *m = load(bc->file, &d);
        int ok = d.n == want && (m == NULL) == (bc->null_manifest == 1);
        for (size_t k = 0; ok && k < want; k++)
            ok = d.items[k].line == bc->diags[k].line &&
                 strstr(d.items[k].message, bc->diags[k].msg) != NULL;
        if (!ok) {
            fprintf(stderr, "\n    %s: unexpected diagnostics:\n", bc->file);
            dump(&d);
        }
        CU_ASSERT_TRUE(ok);
        fr__manifest_free(m);
        fr__diags_free(&d);
    }
}

static void test_manifest_print(void)
{
    fr_diags d;
    fr_manifest *m = load("bad_cycle.yaml", &d);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fr__diags_print(&d, f);
    fclose(f);
    CU_ASSERT_STRING_EQUAL(buf, "bad_cycle.yaml:6:5: cycle in pipeline: a -> b -> c -> a\n");
    free(buf);
    fr__manifest_free(m);
    fr__diags_free(&d);
}

/* Arbitrary text must never crash the parser (exercised under the sanitizers). */
static void test_manifest_garbage(void)
{
    static const char *const inputs[] = {
        "agents: [1, [2], {id: {x: 1}}]\npipeline: [x, {step: [1]}, {step: a, depends_on: {}}]",
        "router: [1]\nplugins: 3\nproviders: {a: 1}\ninput: &a [*a]",
        "agents:\n  - id: a\n    fallback: {x: 1}\n    retry: 3\npipeline:\n  - step: a\n    "
        "depends_on: [~, 1]\n",
        "? [a]\n: b\n",
        "--- a\n--- b\n",
        "\x01\x02\xff",
        "agents:\n- id: \"\"\npipeline:\n- step: \"\"\n",
    };
    for (size_t i = 0; i < sizeof inputs / sizeof *inputs; i++) {
        fr_diags d;
        fr__diags_init(&d, "garbage");
        fr_manifest *m = fr__manifest_parse("garbage", inputs[i], strlen(inputs[i]), NULL, &d);
        CU_ASSERT_TRUE(d.n > 0);
        fr__manifest_free(m);
        fr__diags_free(&d);
    }
    /* Deep nesting is refused with a located message, not a stack overflow. */
    char deep[2100];
    memset(deep, '[', 2000);
    deep[2000] = '\0';
    fr_diags d;
    fr__diags_init(&d, "deep");
    CU_ASSERT_PTR_NULL(fr__manifest_parse("deep", deep, strlen(deep), NULL, &d));
    CU_ASSERT_EQUAL_FATAL(d.n, 1);
    CU_ASSERT_EQUAL(d.items[0].line, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.items[0].message, "nesting deeper than"));
    fr__diags_free(&d);
}

/* The graph memo: the same text as fr__manifest_graph_text, made once per manifest and
 * kept with it (freed with it: valgrind runs see no leak). */
static void test_graph_memo(void)
{
    const char *y = "agents: [{id: a, plugin: echo}]\n"
                    "pipeline: [{step: a}, {step: b, agent: a, depends_on: [a]}]\n";
    fr_diags d;
    fr__diags_init(&d, "memo");
    fr_manifest *m = fr__manifest_parse("memo", y, strlen(y), NULL, &d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    char *want = fr__manifest_graph_text(m);
    const char *got = fr__manifest_graph_memo(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(got, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(got, "\"depends_on\":[\"a\"]"));
    CU_ASSERT_PTR_EQUAL(fr__manifest_graph_memo(m), got); /* made once */
    free(want);
    fr__manifest_free(m);
    fr__diags_free(&d);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite("manifest", NULL, NULL);
    CU_add_test(s, "duration_good", test_duration_good);
    CU_add_test(s, "duration_bad", test_duration_bad);
    CU_add_test(s, "duration_format", test_duration_format);
    CU_add_test(s, "yaml_typing", test_yaml_typing);
    CU_add_test(s, "yaml_errors", test_yaml_errors);
    CU_add_test(s, "yaml_alias_bomb", test_yaml_alias_bomb);
    CU_add_test(s, "dag_diamond_and_ties", test_dag_diamond_and_ties);
    CU_add_test(s, "dag_cycle", test_dag_cycle);
    CU_add_test(s, "dag_large", test_dag_large);
    CU_add_test(s, "rbac", test_rbac);
    CU_add_test(s, "manifest_valid_full", test_manifest_valid_full);
    CU_add_test(s, "manifest_original", test_manifest_original);
    CU_add_test(s, "manifest_typing", test_manifest_typing);
    CU_add_test(s, "manifest_env", test_manifest_env);
    CU_add_test(s, "manifest_bad", test_manifest_bad);
    CU_add_test(s, "manifest_print", test_manifest_print);
    CU_add_test(s, "manifest_garbage", test_manifest_garbage);
    CU_add_test(s, "graph_memo", test_graph_memo);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures ? 1 : 0;
}
