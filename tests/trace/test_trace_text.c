/* The report and the trace written as text (core/engine/report.c, core/trace/trace.c) hold
 * what the json-c trees they replaced held: each case builds a run result by hand, writes
 * it both ways and compares the parsed text with the tree (json_object_equal), secrets
 * scrubbed alike.  The reference is the tree builders as they were before the text writers
 * (kept here, frozen: the code under test no longer builds trees). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "base/secret.h"
#include "engine/pipeline.h"
#include "fr_test.h"
#include "trace/trace.h"

/* ---- the reference: the tree builders as they were ------------------------------------ */

static json_object *ref_str_or_null(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

static json_object *ref_error(fr_status st, const char *message)
{
    if (st == FR_OK)
        return NULL;
    json_object *e = json_object_new_object();
    json_object_object_add(e, "class", json_object_new_string(fr_class_name(fr_status_class(st))));
    json_object_object_add(e, "message",
                           json_object_new_string(message ? message : fr_strerror(st)));
    return e;
}

static json_object *ref_attempt(const fr_attempt_result *a, int with_effects)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "attempt", json_object_new_int(a->attempt));
    json_object_object_add(o, "agent", json_object_new_string(a->agent));
    json_object_object_add(o, "status",
                           json_object_new_string(a->status == FR_OK ? "succeeded" : "failed"));
    json_object_object_add(o, "class",
                           a->status == FR_OK
                               ? NULL
                               : json_object_new_string(fr_class_name(fr_status_class(a->status))));
    json_object_object_add(o, "message", ref_str_or_null(a->message));
    json_object_object_add(o, "backoff_us", json_object_new_int64(a->backoff_us));
    json_object_object_add(o, "started_us", json_object_new_int64(a->started_us));
    json_object_object_add(o, "duration_us", json_object_new_int64(a->duration_us));
    if (a->note) {
        json_object *notes = json_object_new_array();
        json_object_array_add(notes, json_object_new_string(a->note));
        json_object_object_add(o, "notes", notes);
    }
    if (with_effects)
        json_object_object_add(o, "effects",
                               a->effects ? json_object_get(a->effects) : json_object_new_array());
    return o;
}

static json_object *ref_step(const fr_manifest *m, int i, const fr_step_result *r, int with_effects,
                             int resumed)
{
    const fr_step_cfg *st = &m->steps[i];
    json_object *o = json_object_new_object();
    json_object_object_add(o, "step", json_object_new_string(st->id));
    json_object_object_add(o, "agent", json_object_new_string(st->agent));
    json_object_object_add(o, "status", json_object_new_string(fr__step_state_name(r->state)));
    json_object_object_add(o, "answered_by", ref_str_or_null(r->answered_by));
    json_object *out = NULL;
    if (r->state == FR_STEP_SUCCEEDED && r->output)
        out = json_tokener_parse(r->output);
    json_object_object_add(o, "output", out);
    json_object_object_add(o, "error",
                           r->state == FR_STEP_SUCCEEDED ? NULL : ref_error(r->status, r->message));
    json_object_object_add(o, "duration_us", json_object_new_int64(r->duration_us));
    if (resumed)
        json_object_object_add(o, "from_journal", json_object_new_boolean(r->from_journal));
    json_object *atts = json_object_new_array();
    for (size_t j = 0; j < r->n_attempts; j++)
        json_object_array_add(atts, ref_attempt(&r->attempts[j], with_effects));
    json_object_object_add(o, "attempts", atts);
    return o;
}

/* The cases' transitions are already in report order (step position, attempt, arrival). */
static json_object *ref_transitions(const fr_manifest *m, const fr_run_result *r)
{
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < r->n_transitions; i++) {
        const fr_transition_record *t = &r->transitions[i];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "breaker", json_object_new_string(t->breaker));
        json_object_object_add(o, "from", json_object_new_string(t->from));
        json_object_object_add(o, "to", json_object_new_string(t->to));
        json_object_object_add(o, "step",
                               t->step >= 0 ? json_object_new_string(m->steps[t->step].id) : NULL);
        json_object_object_add(o, "attempt", json_object_new_int(t->attempt));
        json_object_object_add(o, "reason", json_object_new_string(t->reason));
        json_object_array_add(arr, o);
    }
    return arr;
}

static json_object *ref_report(const fr_pipeline *p, const fr_run_result *r, int with_effects)
{
    const fr_manifest *m = fr__pipeline_manifest(p);
    json_object *root = json_object_new_object();
    json_object_object_add(root, "run_id", json_object_new_string(r->run_id));
    json_object_object_add(root, "status", json_object_new_string(fr__run_status_name(r->status)));
    json_object_object_add(root, "namespace", json_object_new_string(m->namespace_));
    json_object_object_add(root, "seed", json_object_new_uint64(r->seed));
    json_object_object_add(root, "executions",
                           json_object_new_int64(r->executions ? r->executions : 1));
    json_object *steps = json_object_new_array();
    for (size_t k = 0; k < m->n_steps; k++) {
        int i = m->topo[k];
        json_object_array_add(steps, ref_step(m, i, &r->steps[i], with_effects, r->resumed));
    }
    json_object_object_add(root, "steps", steps);
    if (r->resumed)
        json_object_object_add(root, "resumed_from",
                               r->resumed_from ? json_object_get(r->resumed_from) : NULL);
    if (r->lease_key) {
        json_object *lease = json_object_new_object();
        json_object_object_add(lease, "key", json_object_new_string(r->lease_key));
        json_object_object_add(lease, "fencing_token", json_object_new_uint64(r->fencing_token));
        json_object_object_add(root, "lease", lease);
    }
    if (r->n_transitions)
        json_object_object_add(root, "breaker_transitions", ref_transitions(m, r));
    if (m->n_notes) {
        json_object *notes = json_object_new_array();
        for (size_t i = 0; i < m->n_notes; i++)
            json_object_array_add(notes, json_object_new_string(m->notes[i]));
        json_object_object_add(root, "notes", notes);
    }
    return root;
}

static json_object *ref_rfc3339(int64_t wall_us)
{
    time_t t = (time_t)(wall_us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[40];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%06dZ", (int)(wall_us % 1000000));
    return json_object_new_string(buf);
}

static json_object *ref_trace(const fr_pipeline *p, const fr_run_result *r)
{
    const fr_manifest *m = p->m;
    json_object *report = ref_report(p, r, 1);
    json_object *t = json_object_new_object();
    char sha[65];
    char *text = fr__trace_manifest_text(m, sha);
    json_object_object_add(t, "format", json_object_new_string(FR_TRACE_FORMAT));
    json_object_object_add(t, "version", json_object_new_int(FR_TRACE_VERSION));
    json_object *v;
    json_object_object_get_ex(report, "run_id", &v);
    json_object_object_add(t, "run_id", json_object_get(v));
    json_object_object_add(t, "started_at", ref_rfc3339(r->started_at_us));
    json_object_object_add(t, "finished_at", ref_rfc3339(r->finished_at_us));
    json_object_object_add(t, "manifest_name", json_object_new_string(m->path));
    json_object_object_add(t, "manifest_sha256", json_object_new_string(sha));
    json_object_object_add(t, "plugins", fr__trace_plugins(p));
    json_object_object_add(t, "providers", fr__trace_providers_build(m));
    json_object_object_add(t, "seed", json_object_new_uint64(r->seed));
    json_object_object_add(t, "input", json_tokener_parse(r->input_json));
    json_object_object_foreach(report, key, val)
    {
        if (strcmp(key, "run_id") != 0 && strcmp(key, "seed") != 0)
            json_object_object_add(t, key, json_object_get(val));
    }
    json_object_object_add(t, "manifest", json_object_new_string(text));
    free(text);
    json_object_put(report);
    fr__secret_scrub_json(t);
    return t;
}

/* ---- the cases --------------------------------------------------------------------------- */

#define SECRET_OUT   "sk-out-SECRET-1234"
#define SECRET_SLASH "tok/with/slash-9876"
#define SECRET_EFF   "eff-secret-5555"
#define SECRET_IN    "input-secret-4242"
#define SECRET_MAN   "manifest-secret-7777"
#define SECRET_QUOTE "q\"uote\\secret"

static const char manifest[] =
    "# a manifest with a secret in a comment: " SECRET_MAN "\n"
    "router: {namespace: text-writer}\n"
    "providers:\n"
    "  - {id: local, plugin: mock, config: {model: \"m/1 \\u00e9\", reply: \"ok " SECRET_MAN
    "\"}}\n"
    "agents:\n"
    "  - id: first\n    plugin: chaos\n    fallback: [second]\n"
    "  - id: second\n    plugin: chaos\n"
    "  - id: ask\n    plugin: llm\n    provider: local\n    config: {prompt: \"hi\"}\n"
    "pipeline:\n"
    "  - {step: a, agent: first}\n"
    "  - {step: b, agent: second, depends_on: [a]}\n"
    "  - {step: c, agent: ask, depends_on: [a]}\n";

/* Outputs and inputs as plugins and callers write them: spacing, escapes of every kind. */
static const char *const outputs[] = {
    "{\"text\":\"plain\",\"n\":[1,-2,3.25,1e3,null,true,false]}",
    "{ \"t\" : \"tab\\there \\u00e9 \\\"q\\\" \\/ \\u0001 \\ud83d\\ude00\" , "
    "\"deep\":[[[{\"x\":{}}]]] }",
    "\"" SECRET_OUT " in a plain string\"",
    "{\"hidden\":\"tok\\/with\\/slash-9876\",\"spelt\":\"\\u0073k-out-SECRET-1234\"}",
    "{\"" SECRET_OUT "\":\"a secret as a key stays, as in the tree\"}",
    "18446744073709551615",
    "[]",
};
#define N_OUTPUTS (sizeof outputs / sizeof *outputs)

static const char *const inputs[] = {
    "{\"q\":\"line\\nbreak \\/ slash\",\"u\":\"caf\\u00e9\"}",
    "{\"key\":\"" SECRET_IN "\",\"k2\":\"x\"}",
    "\"just a string\"",
};
#define N_INPUTS (sizeof inputs / sizeof *inputs)

static json_object *effect_tree(int variant)
{
    json_object *arr = json_object_new_array();
    json_object *e = json_object_new_object();
    json_object_object_add(e, "kind", json_object_new_string("provider"));
    json_object_object_add(e, "provider", json_object_new_string("local"));
    json_object *req = json_object_new_object();
    json_object_object_add(req, "url", json_object_new_string("http://127.0.0.1:1/v1/chat"));
    json_object_object_add(
        req, "body",
        json_object_new_string(variant ? "Bearer " SECRET_EFF " \n\t\"x\"" : "{\"a\":\"b\\n\"}"));
    json_object_object_add(e, "request", req);
    json_object_object_add(e, "status", json_object_new_string("OK"));
    json_object_object_add(e, "ratio", json_object_new_double(0.1));
    json_object_object_add(e, "big", json_object_new_uint64(UINT64_MAX));
    json_object_object_add(e, "neg", json_object_new_int64(INT64_MIN));
    json_object_array_add(arr, e);
    json_object *c = json_object_new_object();
    json_object_object_add(c, "kind", json_object_new_string("clock"));
    json_object_object_add(c, "value", json_object_new_int64(1700000000123456));
    json_object_array_add(arr, c);
    return arr;
}

static fr_attempt_result *add_attempt(fr_step_result *s, const char *agent, fr_status st,
                                      const char *message, int64_t backoff, const char *note,
                                      int effects)
{
    fr_attempt_result *a = fr__step_add_attempt(s);
    CU_ASSERT_FATAL(a != NULL);
    a->attempt = (int)s->n_attempts;
    a->agent = agent;
    a->status = st;
    a->message = message ? strdup(message) : NULL;
    a->backoff_us = backoff;
    a->started_us = 1000 * (int64_t)s->n_attempts + backoff;
    a->duration_us = 777 + (int64_t)s->n_attempts;
    a->note = note ? strdup(note) : NULL;
    a->effects = effects ? effect_tree(effects - 1) : NULL;
    return a;
}

static void set_output(fr_step_result *s, const char *json)
{
    s->output = strdup(json);
    s->output_len = strlen(json);
}

/* A run result of `m` for case k (a fresh one each call: scrubbing changes effects in
 * place). */
static fr_run_result make_result(const fr_pipeline *p, int k)
{
    const fr_manifest *m = fr__pipeline_manifest(p);
    fr_run_result r;
    memset(&r, 0, sizeof r);
    snprintf(r.run_id, sizeof r.run_id, "0b6f8a2e-1c1d-4e4e-9f9f-00000000000%d", k % 10);
    r.seed = k == 2 ? UINT64_MAX : (uint64_t)k * 1234567;
    static const int64_t times[] = {0, 951782400000001, 1709164800999999, 4107542399123456,
                                    253402300799999999};
    r.started_at_us = times[k % 5];
    r.finished_at_us = times[(k + 1) % 5];
    r.n_steps = m->n_steps;
    r.steps = calloc(m->n_steps, sizeof *r.steps);
    r.input_json = strdup(inputs[k % N_INPUTS]);
    r.executions = (unsigned)(k % 3);
    r.status = k % 2 ? FR_RUN_FAILED : FR_RUN_SUCCEEDED;
    int a = fr__manifest_step_index(m, "a"), b = fr__manifest_step_index(m, "b"),
        c = fr__manifest_step_index(m, "c");
    /* a: retried, then answered by its fallback. */
    fr_step_result *sa = &r.steps[a];
    add_attempt(sa, "first", FR_E_UNAVAILABLE, "vendor said \"no\" \\ twice\n\u00e9/", 0,
                k % 2 ? "provider reported no token usage" : NULL, k >= 3 ? 1 : 0);
    add_attempt(sa, "first", FR_E_TIMEOUT, NULL, 25000, NULL, 0);
    add_attempt(sa, "second", FR_OK, NULL, 50000, "note with " SECRET_OUT, k >= 3 ? 2 : 0);
    sa->state = FR_STEP_SUCCEEDED;
    sa->answered_by = "second";
    sa->duration_us = 123456;
    set_output(sa, outputs[k % N_OUTPUTS]);
    /* b: failed with a class and a message, or succeeded. */
    fr_step_result *sb = &r.steps[b];
    if (k % 2) {
        add_attempt(sb, "second", FR_E_BAD_REQUEST, "bad: " SECRET_QUOTE " \x01\x1f", 0, NULL, 0);
        sb->state = FR_STEP_FAILED;
        sb->status = FR_E_BAD_REQUEST;
        sb->message = strdup(k == 1 ? "the step failed: " SECRET_SLASH : "plain failure");
        /* A failed step keeps no output, even when one was left. */
    } else {
        add_attempt(sb, "second", FR_OK, NULL, 0, NULL, k >= 3 ? 1 : 0);
        sb->state = FR_STEP_SUCCEEDED;
        sb->answered_by = "second";
        set_output(sb, outputs[(k + 3) % N_OUTPUTS]);
    }
    /* c: skipped, with a message, or failed with its status's own message. */
    fr_step_result *sc = &r.steps[c];
    sc->state = k % 3 == 2 ? FR_STEP_FAILED : FR_STEP_SKIPPED;
    sc->status = k % 3 == 2 ? FR_E_NETWORK : FR_E_CANCELLED;
    sc->message = k % 3 == 2 ? NULL : strdup("skipped: dependency a failed");
    if (k >= 2) { /* resumed from a journal */
        r.resumed = 1;
        sa->from_journal = 1;
        r.resumed_from = k == 2 ? NULL
                                : json_tokener_parse("{\"step\":\"b\",\"attempt\":1,\"effect\":2,"
                                                     "\"why\":\"" SECRET_EFF "\"}");
        r.lease_key = strdup("lease/key \"" SECRET_IN "\"");
        r.fencing_token = UINT64_MAX - 1;
    }
    if (k >= 1) { /* breaker transitions, in report order */
        static fr_transition_record tr[3] = {
            {.step = -1,
             .attempt = 0,
             .breaker = "provider:local",
             .from = "closed",
             .to = "open",
             .reason = "3 failures"},
            {.step = 0,
             .attempt = 1,
             .breaker = "agent:first",
             .from = "closed",
             .to = "open",
             .reason = "failure_threshold \"1\""},
            {.step = 0,
             .attempt = 2,
             .breaker = "agent:first",
             .from = "open",
             .to = "half_open",
             .reason = "reset_timeout"},
        };
        tr[1].step = tr[2].step = a;
        int pos_a = -1;
        for (size_t i = 0; i < m->n_steps; i++)
            if (m->topo[i] == a)
                pos_a = (int)i;
        CU_ASSERT_FATAL(pos_a >= 0);
        r.n_transitions = r.cap_transitions = 3;
        r.transitions = calloc(3, sizeof *r.transitions);
        memcpy(r.transitions, tr, sizeof tr);
        for (int i = 0; i < 3; i++)
            r.transitions[i].seq = i;
    }
    return r;
}

#define N_CASES 6

static void expect_equal(const char *what, int k, const char *text, json_object *want)
{
    json_object *got = text ? json_tokener_parse(text) : NULL;
    int ok = got && json_object_equal(got, want);
    /* Keys in the same order too: json-c writes both trees alike (parsed numbers keep
     * their text, which is the text json-c wrote). */
    const int flags = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;
    char *g = got ? strdup(json_object_to_json_string_ext(got, flags)) : NULL;
    ok = ok && g && strcmp(g, json_object_to_json_string_ext(want, flags)) == 0;
    free(g);
    if (!ok)
        fprintf(stderr, "\n%s, case %d differs:\n text: %s\n tree: %s\n", what, k,
                text ? text : "(null)",
                json_object_to_json_string_ext(want, JSON_C_TO_STRING_PLAIN |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE));
    CU_ASSERT(ok);
    json_object_put(got);
}

static fr_pipeline *build(void)
{
    fr_pipeline *p = fr_test_build(manifest);
    CU_ASSERT_FATAL(p != NULL);
    return p;
}

static void test_report_text_matches_tree(void)
{
    fr__secret_reset();
    fr_pipeline *p = build();
    for (int k = 0; k < N_CASES; k++) {
        fr_run_result r = make_result(p, k);
        char *text = fr__report_json(p, &r, 0);
        json_object *want = ref_report(p, &r, 0);
        expect_equal("report", k, text, want);
        /* The tree callers get parses of the same text. */
        json_object *tree = fr__report_build(p, &r, 1), *want_fx = ref_report(p, &r, 1);
        CU_ASSERT(tree && json_object_equal(tree, want_fx));
        json_object_put(tree);
        json_object_put(want_fx);
        json_object_put(want);
        free(text);
        fr__run_result_free(&r);
    }
    fr__pipeline_free(p);
}

static const char *const all_secrets[] = {SECRET_OUT, SECRET_SLASH, SECRET_EFF,
                                          SECRET_IN,  SECRET_MAN,   SECRET_QUOTE};

/* The trace, with `secrets` remembered before it is written. */
static void check_traces(const char *const *secrets, int n_secrets)
{
    fr__secret_reset();
    for (int i = 0; i < n_secrets; i++)
        fr__secret_remember(secrets[i]);
    fr_pipeline *p = build();
    for (int k = 0; k < N_CASES; k++) {
        fr_run_result r = make_result(p, k), r2 = make_result(p, k);
        char *text = fr__trace_json(p, &r);
        json_object *want = ref_trace(p, &r2);
        expect_equal(n_secrets ? "trace with secrets" : "trace", k, text, want);
        /* No secret is left anywhere in the text, escaped or not. */
        for (int i = 0; text && i < n_secrets; i++)
            if (strcmp(secrets[i], SECRET_QUOTE) != 0 && k != 4)
                CU_ASSERT_PTR_NULL(strstr(text, secrets[i]));
        /* Twice: the second from the pipeline's memo. */
        char *again = fr__trace_json(p, &r);
        CU_ASSERT(text && again && strcmp(text, again) == 0);
        json_object *tree = fr__trace_build(p, &r);
        CU_ASSERT(tree && json_object_equal(tree, want));
        json_object_put(tree);
        free(again);
        json_object_put(want);
        free(text);
        fr__run_result_free(&r);
        fr__run_result_free(&r2);
    }
    fr__pipeline_free(p);
    fr__secret_reset();
}

static void test_trace_text_matches_tree(void)
{
    check_traces(all_secrets, 0);
}

static void test_trace_text_scrubs_like_tree(void)
{
    check_traces(all_secrets, 6);
}

/* A secret that shows only behind escapes ("tok\/with\/slash-9876" in case 3's output) is
 * found and scrubbed. */
static void test_trace_secret_behind_escapes(void)
{
    check_traces(all_secrets + 1, 1);
}

/* A secret remembered after the pipeline's memo was made is scrubbed from the next trace. */
static void test_memo_follows_secrets(void)
{
    fr__secret_reset();
    fr_pipeline *p = build();
    fr_run_result r = make_result(p, 0);
    char *before = fr__trace_json(p, &r);
    ASSERT_CONTAINS(before, SECRET_MAN);
    fr__secret_remember(SECRET_MAN);
    char *after = fr__trace_json(p, &r);
    CU_ASSERT(after && strstr(after, SECRET_MAN) == NULL);
    ASSERT_CONTAINS(after, "[REDACTED]");
    free(before);
    free(after);
    fr__run_result_free(&r);
    fr__pipeline_free(p);
    fr__secret_reset();
}

/* Secrets hidden by escapes are found; text without them is not flagged. */
static void test_secret_in_json(void)
{
    fr__secret_reset();
    static const char plain[] = "{\"a\":\"nothing here \\n \\u00e9\",\"b\":[1,2]}";
    CU_ASSERT_EQUAL(fr__secret_in_json(plain, strlen(plain)), 0);
    fr__secret_remember("abc/def");
    /* Only secrets JSON writes as they are: strings with short escapes are not decoded. */
    static const char *const plain_hit[] = {
        "{\"a\":\"line\\nabc/def\\t\"}",
        "{\"a\":\"\\u0061bc/def\"}",
        "{\"a\":\"x\\\"\",\"b\":\"abc\\/def\"}",
    };
    for (size_t i = 0; i < sizeof plain_hit / sizeof *plain_hit; i++)
        CU_ASSERT_EQUAL(fr__secret_in_json(plain_hit[i], strlen(plain_hit[i])), 1);
    static const char plain_miss[] = "{\"a\":\"abc\\ndef \\\"abc/de\\\"\",\"abc\":1}";
    CU_ASSERT_EQUAL(fr__secret_in_json(plain_miss, strlen(plain_miss)), 0);
    fr__secret_remember("x\"y\\z");
    CU_ASSERT_EQUAL(fr__secret_in_json(plain, strlen(plain)), 0);
    static const char *const hit[] = {
        "{\"a\":\"abc/def\"}",
        "{\"a\":\"abc\\/def\"}",
        "[\"\\u0061bc/def\"]",
        "{\"k\":\"x\\\"y\\\\z tail\"}",
        "{\"k\":\"\\\\\",\"b\":\"x\\\"y\\\\z\"}",
    };
    for (size_t i = 0; i < sizeof hit / sizeof *hit; i++)
        CU_ASSERT_EQUAL(fr__secret_in_json(hit[i], strlen(hit[i])), 1);
    static const char miss[] = "{\"k\":\"\\\\\",\"b\":\"x\\\"y z\",\"c\":\"abc\\/de\"}";
    CU_ASSERT_EQUAL(fr__secret_in_json(miss, strlen(miss)), 0);
    /* The length bounds the search: a backslash at its last byte, "u" just past it. */
    fr__secret_reset();
    fr__secret_remember("abc/def");
    static const char cut[] = "[\"abc/de\\u0066\"]";
    CU_ASSERT_EQUAL(fr__secret_in_json(cut, strlen(cut)), 1);
    CU_ASSERT_EQUAL(fr__secret_in_json(cut, (size_t)(strchr(cut, 'u') - cut)), 0);
    fr__secret_reset();
}

int main(void)
{
    fr_test_init_dirs();
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("trace_text", NULL, NULL);
    CU_add_test(s, "report text matches the tree", test_report_text_matches_tree);
    CU_add_test(s, "trace text matches the tree", test_trace_text_matches_tree);
    CU_add_test(s, "trace text scrubs secrets like the tree", test_trace_text_scrubs_like_tree);
    CU_add_test(s, "a secret behind escapes in an output", test_trace_secret_behind_escapes);
    CU_add_test(s, "the memo follows the secrets", test_memo_follows_secrets);
    CU_add_test(s, "secrets behind escapes", test_secret_in_json);
    return fr_test_run_all();
}
