/* YAML cost bounds (core/base/yaml_tree.c): anchors are found in linear time overall, and the
 * node and alias limits stop parsing at the place they are passed, naming the limit.
 * Alias bombs are counted as they would expand, so they stop during parsing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/Basic.h>

#include "base/diag.h"
#include "fr_test.h"
#include "manifest/manifest.h"
#include "base/yaml_tree.h"

#define N_ANCHORS 70000

/* N_ANCHORS anchored scalars, then as many aliases, all to the first anchor (the worst
 * case of a search from the end).  Caller frees. */
static char *anchors_doc(size_t *len)
{
    size_t cap = (size_t)N_ANCHORS * 40, w = 0;
    char *t = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    for (int i = 0; i < N_ANCHORS; i++)
        w += (size_t)snprintf(t + w, cap - w, "a%d: &n%d v\n", i, i);
    for (int i = 0; i < N_ANCHORS; i++)
        w += (size_t)snprintf(t + w, cap - w, "b%d: *n0\n", i);
    *len = w;
    return t;
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A linear search made this take 20 to 34 s of CPU; linear time takes well under 0.5 s
 * (ASan included), so 2.5 s is generous and still a tenth of the quadratic time.  The
 * cost in operations says the same without a clock: a hash table looks at about one slot
 * per anchor defined or used, a linear search at N_ANCHORS per alias (4.9 billion). */
static void test_linear_anchors(void)
{
    size_t len;
    char *text = anchors_doc(&len);
    fr_diags d;
    fr_ydoc doc;
    fr__diags_init(&d, "anchors.yaml");
    fr_yaml_limits lim = {0};
    double t0 = cpu_seconds();
    int rc = fr__ydoc_parse_ex(&doc, text, len, &lim, &d);
    double took = cpu_seconds() - t0;
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NULL(lim.exceeded);
    if (took > 2.5 || lim.anchor_probes > 8 * 2 * (size_t)N_ANCHORS)
        fprintf(stderr, "    %d anchors and aliases: %.2f s of CPU, %zu anchor probes\n", N_ANCHORS,
                took, lim.anchor_probes);
    CU_ASSERT(took <= 2.5);
    CU_ASSERT(lim.anchor_probes >= 2 * (size_t)N_ANCHORS);
    CU_ASSERT(lim.anchor_probes <= 8 * 2 * (size_t)N_ANCHORS);
    char key[32];
    snprintf(key, sizeof key, "b%d", N_ANCHORS - 1);
    const fr_ynode *v = fr__ymap_get(doc.root, key);
    CU_ASSERT(v && v->kind == FR_Y_SCALAR && !strcmp(v->value, "v"));
    fr__ydoc_free(&doc);
    fr__diags_free(&d);
    free(text);
}

/* Parses `text` under the limits; returns the parse result and leaves the first
 * diagnostic's place in *line, *col (0 when none). */
static int parse_limited(const char *text, size_t max_nodes, size_t max_aliases,
                         fr_yaml_limits *lim, int *line, int *col, char *msg, size_t msglen)
{
    fr_diags d;
    fr_ydoc doc;
    fr__diags_init(&d, "t.yaml");
    *lim = (fr_yaml_limits){.max_nodes = max_nodes, .max_aliases = max_aliases};
    int rc = fr__ydoc_parse_ex(&doc, text, strlen(text), lim, &d);
    *line = d.n ? d.items[0].line : 0;
    *col = d.n ? d.items[0].col : 0;
    snprintf(msg, msglen, "%s", d.n ? d.items[0].message : "");
    if (rc != 0 || lim->exceeded)
        CU_ASSERT_PTR_NULL(doc.root); /* fatal: the partial tree is gone */
    fr__ydoc_free(&doc);
    fr__diags_free(&d);
    return rc;
}

static void test_limits_at_and_over(void)
{
    static const struct {
        const char *text;
        size_t max_nodes, max_aliases;
        const char *limit; /* NULL: parses */
        int line, col;
    } cases[] = {
        /* map, k, list, 1, 2, 3: six nodes. */
        {"k: [1, 2, 3]\n", 6, 10, NULL, 0, 0},
        {"k: [1, 2, 3]\n", 5, 10, "max_yaml_nodes", 1, 11},
        /* Each alias counts as the three nodes of its target: 13 in all. */
        {"a: &a [x, x]\nb: [*a, *a]\n", 13, 10, NULL, 0, 0},
        {"a: &a [x, x]\nb: [*a, *a]\n", 12, 10, "max_yaml_nodes", 2, 9},
        {"a: &x 1\nb: *x\nc: *x\n", 100, 2, NULL, 0, 0},
        {"a: &x 1\nb: *x\nc: *x\n", 100, 1, "max_yaml_aliases", 3, 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        fr_yaml_limits lim;
        int line, col;
        char msg[256];
        int rc = parse_limited(cases[i].text, cases[i].max_nodes, cases[i].max_aliases, &lim, &line,
                               &col, msg, sizeof msg);
        if (!cases[i].limit) {
            CU_ASSERT_EQUAL(rc, 0);
            CU_ASSERT_PTR_NULL(lim.exceeded);
            continue;
        }
        if (line != cases[i].line || col != cases[i].col || !lim.exceeded)
            fprintf(stderr, "    case %zu: %d:%d %s\n", i, line, col, msg);
        CU_ASSERT_EQUAL(rc, -1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(lim.exceeded);
        CU_ASSERT_STRING_EQUAL(lim.exceeded, cases[i].limit);
        CU_ASSERT_EQUAL(lim.exceeded_max, strcmp(cases[i].limit, "max_yaml_nodes")
                                              ? cases[i].max_aliases
                                              : cases[i].max_nodes);
        CU_ASSERT_EQUAL(line, cases[i].line);
        CU_ASSERT_EQUAL(col, cases[i].col);
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, cases[i].limit));
    }
}

/* "Billion laughs": 30 levels of doubled aliases stand for 2^32 nodes.  The tree is
 * shared, but anything walking it would visit them all: parsing stops at the level that
 * passes the node limit, whether the limit is serve's or the CLI's default. */
static void test_alias_bomb_stops(void)
{
    char text[4096];
    size_t w = (size_t)snprintf(text, sizeof text, "l0: &l0 [x, x]\n");
    for (int i = 1; i <= 30; i++)
        w += (size_t)snprintf(text + w, sizeof text - w, "l%d: &l%d [*l%d, *l%d]\n", i, i, i - 1,
                              i - 1);
    fr_yaml_limits lim;
    int line, col;
    char msg[256];
    double t0 = cpu_seconds();
    CU_ASSERT_EQUAL(parse_limited(text, 100000, 10000, &lim, &line, &col, msg, sizeof msg), -1);
    CU_ASSERT(cpu_seconds() - t0 < 1.0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(lim.exceeded);
    CU_ASSERT_STRING_EQUAL(lim.exceeded, "max_yaml_nodes");
    /* Level k weighs 2^(k+2) - 1 nodes: the second alias of level 14 passes 100,000. */
    CU_ASSERT_EQUAL(line, 15);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "max_yaml_nodes"));
    CU_ASSERT_EQUAL(parse_limited(text, 0, 0, &lim, &line, &col, msg, sizeof msg), -1);
    CU_ASSERT(lim.exceeded && !strcmp(lim.exceeded, "max_yaml_nodes"));
    CU_ASSERT_EQUAL(lim.exceeded_max, FR_YAML_DEFAULT_MAX_NODES);
}

/* A redefined anchor shadows the earlier one (the table replaces, never appends). */
static void test_anchor_redefinition(void)
{
    const char *text = "a: &x 1\nb: *x\nc: &x 2\nd: *x\n";
    fr_diags d;
    fr_ydoc doc;
    fr__diags_init(&d, "t.yaml");
    CU_ASSERT_EQUAL_FATAL(fr__ydoc_parse(&doc, text, strlen(text), &d), 0);
    CU_ASSERT_EQUAL(fr__ymap_get(doc.root, "b")->ival, 1);
    CU_ASSERT_EQUAL(fr__ymap_get(doc.root, "d")->ival, 2);
    fr__ydoc_free(&doc);
    fr__diags_free(&d);
}

/* The manifest parser passes the limits through and reports the one that stopped it. */
static void test_manifest_limits(void)
{
    const char *text = "agents: [{id: e, plugin: echo}]\npipeline: [{step: e}]\n";
    fr_diags d;
    fr__diags_init(&d, "m.yaml");
    fr_yaml_limits lim = {.max_nodes = 5};
    fr_manifest *m = fr__manifest_parse_ex("m.yaml", text, strlen(text), NULL, &lim, &d);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT(lim.exceeded && !strcmp(lim.exceeded, "max_yaml_nodes"));
    CU_ASSERT_EQUAL(d.n, 1);
    fr__diags_free(&d);
    fr__diags_init(&d, "m.yaml");
    lim = (fr_yaml_limits){.max_nodes = 100};
    m = fr__manifest_parse_ex("m.yaml", text, strlen(text), NULL, &lim, &d);
    CU_ASSERT_PTR_NOT_NULL(m);
    CU_ASSERT_EQUAL(d.n, 0);
    CU_ASSERT_PTR_NULL(lim.exceeded);
    fr__manifest_free(m);
    fr__diags_free(&d);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("yaml_limits", NULL, NULL);
    CU_add_test(s, "linear_anchors", test_linear_anchors);
    CU_add_test(s, "limits_at_and_over", test_limits_at_and_over);
    CU_add_test(s, "alias_bomb_stops", test_alias_bomb_stops);
    CU_add_test(s, "anchor_redefinition", test_anchor_redefinition);
    CU_add_test(s, "manifest_limits", test_manifest_limits);
    return fr_test_run_all();
}
