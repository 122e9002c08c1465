/* The limit document (core/manifest/limits_doc.h): what it accepts, and that every
 * refusal names the field. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <json-c/json.h>

#include "base/yaml_tree.h"
#include "manifest/limits_doc.h"

static void test_full_document(void)
{
    const char *t = "{\"requests_per_minute\": 600, \"tokens_per_minute\": 200000,"
                    " \"concurrent_runs\": 8, \"monthly_budget_micros\": 50000000,"
                    " \"models\": {\"gpt-4o\": {\"tokens_per_minute\": 50000},"
                    " \"*\": {\"monthly_budget_micros\": 0}}}";
    fr_limits_doc d;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(fr__limits_doc_parse(t, strlen(t), &d, err, sizeof err), 0);
    CU_ASSERT_EQUAL(d.all.requests_per_minute, 600);
    CU_ASSERT_EQUAL(d.all.tokens_per_minute, 200000);
    CU_ASSERT_EQUAL(d.all.concurrent_runs, 8);
    CU_ASSERT_EQUAL(d.all.monthly_budget_micros, 50000000);
    CU_ASSERT_EQUAL_FATAL(d.n_models, 2);
    const fr_model_limits *m = fr__limits_doc_model(&d, "gpt-4o");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(m->set.tokens_per_minute, 50000);
    CU_ASSERT_EQUAL(m->set.monthly_budget_micros, FR_NO_LIMIT);
    m = fr__limits_doc_model(&d, "other-model"); /* falls back to "*" */
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_STRING_EQUAL(m->model, "*");
    CU_ASSERT_EQUAL(m->set.monthly_budget_micros, 0);
    CU_ASSERT_TRUE(fr__limits_doc_has_budget(&d));
    CU_ASSERT_FALSE(fr__limits_doc_empty(&d));

    /* Round trip through JSON. */
    json_object *o = fr__limits_doc_to_json(&d);
    fr_limits_doc back;
    CU_ASSERT_EQUAL_FATAL(fr__limits_doc_from_json(o, NULL, &back, err, sizeof err), 0);
    CU_ASSERT_EQUAL(back.all.concurrent_runs, 8);
    CU_ASSERT_EQUAL(back.n_models, 2);
    json_object_put(o);
    fr__limits_doc_clear(&back);
    fr__limits_doc_clear(&d);
}

static void test_absent_means_no_limit(void)
{
    fr_limits_doc d;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(fr__limits_doc_parse("{}", 2, &d, err, sizeof err), 0);
    CU_ASSERT_TRUE(fr__limits_doc_empty(&d));
    CU_ASSERT_FALSE(fr__limits_doc_has_budget(&d));
    CU_ASSERT_EQUAL(d.all.requests_per_minute, FR_NO_LIMIT);
    CU_ASSERT_PTR_NULL(fr__limits_doc_model(&d, "x"));
    fr__limits_doc_clear(&d);
    /* null clears a limit; 0 is a limit (nothing allowed). */
    const char *t = "{\"requests_per_minute\": null, \"concurrent_runs\": 0}";
    CU_ASSERT_EQUAL_FATAL(fr__limits_doc_parse(t, strlen(t), &d, err, sizeof err), 0);
    CU_ASSERT_EQUAL(d.all.requests_per_minute, FR_NO_LIMIT);
    CU_ASSERT_EQUAL(d.all.concurrent_runs, 0);
    fr__limits_doc_clear(&d);
}

/* Malformed documents: each refused with the named field in the message. */
static void test_malformed_named(void)
{
    static const struct {
        const char *doc, *want;
    } cases[] = {
        {"{\"requests_per_min\": 5}", "unknown field \"requests_per_min\""},
        {"{\"requests_per_minute\": -1}", "field \"requests_per_minute\": must not be negative"},
        {"{\"tokens_per_minute\": \"100\"}", "field \"tokens_per_minute\": expected a non-negative "
                                             "integer, got string"},
        {"{\"concurrent_runs\": 1.5}", "field \"concurrent_runs\": expected a non-negative "
                                       "integer, got double"},
        {"{\"monthly_budget_micros\": true}", "field \"monthly_budget_micros\": expected"},
        {"{\"monthly_budget_micros\": 99999999999999999999}", "field \"monthly_budget_micros\""},
        {"{\"models\": []}", "field \"models\": expected an object"},
        {"{\"models\": {\"gpt-4o\": 5}}", "field \"models.gpt-4o\": expected an object"},
        {"{\"models\": {\"gpt-4o\": {\"tokens_per_minute\": -3}}}",
         "field \"models.gpt-4o.tokens_per_minute\": must not be negative"},
        {"{\"models\": {\"gpt-4o\": {\"tpm\": 3}}}", "unknown field \"models.gpt-4o.tpm\""},
        {"{\"models\": {\"gpt-4o\": {\"concurrent_runs\": 3}}}",
         "field \"models.gpt-4o.concurrent_runs\": not available per model"},
        {"{\"models\": {\"gpt-4o\": {\"models\": {}}}}", "unknown field \"models.gpt-4o.models\""},
        {"[1]", "limits: expected an object, got array"},
        {"null", "expected an object, got null"},
        {"{\"requests_per_minute\": 5", "malformed JSON at byte"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fr_limits_doc d;
        char err[512] = "";
        int rc = fr__limits_doc_parse(cases[i].doc, strlen(cases[i].doc), &d, err, sizeof err);
        if (rc != -1 || !strstr(err, cases[i].want))
            fprintf(stderr, "case %zu: %s -> rc %d, \"%s\" (want \"%s\")\n", i, cases[i].doc, rc,
                    err, cases[i].want);
        CU_ASSERT_EQUAL(rc, -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].want));
        CU_ASSERT_EQUAL(d.n_models, 0);
        fr__limits_doc_clear(&d);
    }
}

/* The keys file writes the document in YAML: the same reader through the YAML tree, with a
 * quoted number a string (refused) and the label naming where it is. */
static void test_from_yaml(void)
{
    const char *ok = "requests_per_minute: 50\nmodels:\n  gpt-4o:\n    tokens_per_minute: 7\n";
    const char *bad = "requests_per_minute: '50'\n";
    fr_ydoc doc;
    fr_diags dg;
    fr__diags_init(&dg, "k.yaml");
    CU_ASSERT_EQUAL_FATAL(fr__ydoc_parse(&doc, ok, strlen(ok), &dg), 0);
    json_object *o = fr__ynode_to_json(doc.root);
    fr_limits_doc d;
    char err[256] = "";
    CU_ASSERT_EQUAL(fr__limits_doc_from_json(o, "key \"k1\": limits", &d, err, sizeof err), 0);
    CU_ASSERT_EQUAL(d.all.requests_per_minute, 50);
    CU_ASSERT_EQUAL(fr__limits_doc_model(&d, "gpt-4o")->set.tokens_per_minute, 7);
    fr__limits_doc_clear(&d);
    json_object_put(o);
    fr__ydoc_free(&doc);

    CU_ASSERT_EQUAL_FATAL(fr__ydoc_parse(&doc, bad, strlen(bad), &dg), 0);
    o = fr__ynode_to_json(doc.root);
    CU_ASSERT_EQUAL(fr__limits_doc_from_json(o, "key \"k1\": limits", &d, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(err, "key \"k1\": limits: field \"requests_per_minute\": expected a non-negative "
                    "integer, got string"));
    json_object_put(o);
    fr__ydoc_free(&doc);
    fr__diags_free(&dg);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite("limits_doc", NULL, NULL);
    CU_add_test(s, "full_document", test_full_document);
    CU_add_test(s, "absent_means_no_limit", test_absent_means_no_limit);
    CU_add_test(s, "malformed_named", test_malformed_named);
    CU_add_test(s, "from_yaml", test_from_yaml);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures ? 1 : 0;
}
