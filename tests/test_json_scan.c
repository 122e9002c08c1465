/* Unit tests of plugins/json_scan.h, the plugins' fast JSON path, held against json-c:
 * every document json-c reads must scan (pj_scan_any) and write back (pj_put_value) to
 * exactly json-c's own compact text, look-ups must find what json-c finds, and strict
 * scanning (pj_scan) must refuse what RFC 8259 refuses.  Besides hand-picked cases, a
 * seeded generator makes thousands of documents with the awkward parts (escapes,
 * surrogates, -0, big integers, exponents, repeated keys, whitespace).
 *
 * Exit status: 0 when every assertion held, 1 otherwise. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "kit/json.h"
#include "plugin_util.h"

#include "test_assert.h"

/* json-c's text of `text` (NULL when json-c cannot read it); caller frees. */
static char *jsonc_text(const char *text, size_t len)
{
    char err[200];
    json_object *o = pu_json_parse(text, len, err, sizeof err);
    if (!o)
        return NULL;
    const char *w = json_object_to_json_string_ext(o, PU_JSON_FLAGS);
    char *copy = strdup(w);
    json_object_put(o);
    return copy;
}

/* pj's text of `text` (NULL when it cannot read it); caller frees. */
static char *pj_text(const char *text, size_t len)
{
    pj_doc d;
    char err[200];
    if (pj_scan_any(&d, text, len, err, sizeof err) != 0)
        return NULL;
    pu_buf b = {0};
    pj_put_value(&b, &d, 0);
    pj_free(&d);
    if (b.oom) {
        pu_buf_free(&b);
        return NULL;
    }
    return b.data;
}

static int n_compared;

/* Both read it the same way and write the same bytes. */
static void same_as_jsonc(const char *doc)
{
    /* In an array: json-c reads a number at the very end of its input as unfinished. */
    size_t len = strlen(doc) + 2;
    char *text = malloc(len + 1);
    snprintf(text, len + 1, "[%s]", doc);
    char *want = jsonc_text(text, len), *got = pj_text(text, len);
    n_compared++;
    pj_doc d;
    if (!want) {
        /* json-c refuses it: strict scanning must too. */
        int scanned = pj_scan(&d, text, len) == 0;
        pj_free(&d);
        if (scanned)
            fprintf(stderr, "pj scans what json-c refuses: %s\n", text);
        CU_ASSERT(!scanned);
    } else if (pj_scan(&d, want, strlen(want)) != 0) {
        /* json-c reads NaN or Infinity and writes them back: no JSON, refused. */
        pj_free(&d);
        CU_ASSERT_PTR_NULL(got);
    } else {
        pj_free(&d);
        if (!got || strcmp(want, got) != 0)
            fprintf(stderr, "differs for %s\n  json-c: %s\n  pj:     %s\n", text, want,
                    got ? got : "(refused)");
        CU_ASSERT_PTR_NOT_NULL(got);
        if (got)
            CU_ASSERT_STRING_EQUAL(got, want);
    }
    free(want);
    free(got);
    free(text);
}

static void test_hand_picked(void)
{
    static const char *const docs[] = {
        "{}",
        "[]",
        "0",
        "-0",
        "-0.0",
        "1",
        "-1",
        "12345678901234567",
        "123456789012345678",
        "1234567890123456789",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "18446744073709551615",
        "18446744073709551616",
        "1.5",
        "1e5",
        "1E+05",
        "-2.50e-3",
        "0.1000",
        "true",
        "false",
        "\"\"",
        "\"a/b\"",
        "\"a\\/b\"",
        "\"\\u00e9\\u20AC\"",
        "\"\\ud83d\\ude00\"",
        "\"\\ud83d\"",
        "\"\\ude00x\"",
        "\"\\ud83dx\\ude00\"",
        "\"a\\u0000b\"",
        "\"\\b\\f\\n\\r\\t\\\"\\\\\"",
        "\"\\u001f\\u0001\\u007f\"",
        "\"caf\xc3\xa9\"",
        "\"\x7f\"",
        " { \"a\" : [ 1 , 2 ] , \"b\" : { } } ",
        "{\"a\":1,\"b\":2,\"a\":3}",
        "{\"a\":1,\"a\":2,\"a\":{\"x\":[1,{\"a\":1,\"a\":2}]}}",
        "{\"\\u0061\":1,\"a\":2}",
        "{\"k\\n\":true}",
        "[[[[[]]]]]",
        "[1,[2,[3,[4]]],{\"a\":[]}]",
        "{\"x\":null,\"y\":[null,true,false]}",
        /* json-c reads these, strict JSON does not: pj_scan_any must agree with json-c */
        "[1,]",
        "{\"a\":1,}",
        "NaN",
        "[Infinity]",
        "'single'",
        "[01]",
        "/* c */ 1",
        "\"raw\ttab\"",
        "[1 2]",
        "{\"a\" 1}",
        "tru",
        "nul",
        "[",
        "{\"a\":",
        "\"abc",
        "1.",
        ".5",
        "-",
        "+1",
        "1e",
        "[1]x",
        "{\"a\":1}}",
        "\"\\x\"",
        "\"\\u12\"",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++)
        same_as_jsonc(docs[i]);
}

static void test_strict_refuses(void)
{
    static const char *const bad[] = {
        "",           " ",         "[1,]",  "{\"a\":1,}", "NaN",    "[01]",    "\"raw\ttab\"",
        "[1 2]",      "{\"a\" 1}", "{1:2}", "tru",        "[",      "\"abc",   "1.",
        ".5",         "-",         "+1",    "1e",         "[1]x",   "\"\\x\"", "\"\\u12\"",
        "{\"a\":1}}", "]",         "[,1]",  "{,}",        "[1,,2]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pj_doc d;
        int rc = pj_scan(&d, bad[i], strlen(bad[i]));
        pj_free(&d);
        if (rc == 0)
            fprintf(stderr, "strict scan accepted %s\n", bad[i]);
        CU_ASSERT_EQUAL(rc, -1);
    }
    /* Lenient text json-c reads and strict JSON cannot hold: refused with a reason. */
    pj_doc nan;
    char err[200] = "";
    CU_ASSERT_EQUAL(pj_scan_any(&nan, "{\"x\":NaN}", 9, err, sizeof err), -1);
    ASSERT_CONTAINS(err, "NaN or Infinity");
    CU_ASSERT_EQUAL(pj_scan_any(&nan, "{\"x\":", 5, err, sizeof err), -1);
    ASSERT_CONTAINS(err, "unexpected end of document");
    /* ...and what json-c reads leniently and can write as JSON is read alike. */
    CU_ASSERT_EQUAL_FATAL(pj_scan_any(&nan, "{\"x\":[1,],}", 11, err, sizeof err), 0);
    CU_ASSERT_EQUAL(pj_count(&nan, pj_get(&nan, 0, "x", PJ_ARRAY)), 1);
    pj_free(&nan);
    /* Nesting deeper than the limit is refused, not a crash. */
    char deep[2 * PJ_MAX_DEPTH + 8];
    memset(deep, '[', PJ_MAX_DEPTH + 1);
    memset(deep + PJ_MAX_DEPTH + 1, ']', PJ_MAX_DEPTH + 1);
    pj_doc d;
    CU_ASSERT_EQUAL(pj_scan(&d, deep, 2 * PJ_MAX_DEPTH + 2), -1);
    pj_free(&d);
}

/* ---- generated documents ---------------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static void gen_string(pu_buf *b)
{
    static const char *const parts[] = {
        "a",       "Z",       " ",       "/",        "\\/",
        "\\\"",    "\\\\",    "\\n",     "\\t",      "\\b",
        "\\f",     "\\r",     "\\u0041", "\\u00e9",  "\\u20ac",
        "\\u0001", "\\u001F", "\\u001f", "\\u0010",  "\\u001a",
        "\\u0008", "\\u000a", "\\u000D", "\\u0020",  "\\ud83d\\ude00",
        "\\ud800", "\\udc00", "\\u0000", "\xc3\xa9", "\xe2\x82\xac",
        "\x7f",    "key",     "{",       "}",        "[",
        ",",
    };
    pu_buf_append(b, "\"", 1);
    for (unsigned n = rnd(5); n > 0; n--) {
        const char *p = parts[rnd(sizeof parts / sizeof parts[0])];
        pu_buf_append(b, p, strlen(p));
    }
    pu_buf_append(b, "\"", 1);
}

static void gen_ws(pu_buf *b)
{
    static const char *const ws[] = {"", "", "", " ", "\n  ", "\t"};
    const char *w = ws[rnd(6)];
    pu_buf_append(b, w, strlen(w));
}

static void gen_value(pu_buf *b, int depth)
{
    static const char *const scalars[] = {
        "0",
        "-0",
        "7",
        "-42",
        "123456789012345678",
        "1234567890123456789",
        "99999999999999999999",
        "-9223372036854775808",
        "3.25",
        "1e3",
        "-1.5E-7",
        "0.0",
        "true",
        "false",
        "null",
        "-0.0",
        "1E400",
    };
    unsigned kind = depth > 4 ? rnd(2) : rnd(4);
    gen_ws(b);
    if (kind == 0) {
        const char *s = scalars[rnd(sizeof scalars / sizeof scalars[0])];
        pu_buf_append(b, s, strlen(s));
    } else if (kind == 1) {
        gen_string(b);
    } else if (kind == 2) {
        pu_buf_append(b, "[", 1);
        for (unsigned n = rnd(4), i = 0; i < n; i++) {
            if (i)
                pu_buf_append(b, ",", 1);
            gen_value(b, depth + 1);
        }
        gen_ws(b);
        pu_buf_append(b, "]", 1);
    } else {
        static const char *const keys[] = {"\"a\"",       "\"b\"", "\"text\"",
                                           "\"\\u0061\"", "\"\"",  "\"k/\\n\""};
        pu_buf_append(b, "{", 1);
        for (unsigned n = rnd(5), i = 0; i < n; i++) {
            if (i)
                pu_buf_append(b, ",", 1);
            gen_ws(b);
            if (rnd(3) == 0) {
                gen_string(b);
            } else {
                const char *k = keys[rnd(6)];
                pu_buf_append(b, k, strlen(k));
            }
            gen_ws(b);
            pu_buf_append(b, ":", 1);
            gen_value(b, depth + 1);
        }
        gen_ws(b);
        pu_buf_append(b, "}", 1);
    }
    gen_ws(b);
}

static void test_generated(void)
{
    for (int i = 0; i < 20000; i++) {
        pu_buf b = {0};
        gen_value(&b, 0);
        CU_ASSERT_FALSE(b.oom);
        same_as_jsonc(b.data);
        pu_buf_free(&b);
    }
    CU_ASSERT(n_compared > 20000);
}

/* ---- reading ------------------------------------------------------------------------------ */

static void test_lookups(void)
{
    const char *text = "{\"choices\":[{\"message\":{\"content\":\"hi \\u00e9\\n\",\"n\":-12}},"
                       "{\"x\":1}],\"usage\":{\"prompt_tokens\":9,\"f\":1.5},\"a\":1,\"a\":2,"
                       "\"\\u006b\":\"escaped key\"}";
    pj_doc d;
    CU_ASSERT_EQUAL_FATAL(pj_scan(&d, text, strlen(text)), 0);
    int choices = pj_get(&d, 0, "choices", PJ_ARRAY);
    CU_ASSERT(choices > 0);
    CU_ASSERT_EQUAL(pj_count(&d, choices), 2);
    CU_ASSERT_EQUAL(pj_count(&d, 0), 5);
    int msg = pj_get(&d, pj_at(&d, choices, 0), "message", PJ_OBJECT);
    char *content = pj_strdup(&d, pj_member(&d, msg, "content"));
    CU_ASSERT_STRING_EQUAL(content, "hi \xc3\xa9\n");
    free(content);
    CU_ASSERT_EQUAL(pj_int64(&d, pj_get(&d, msg, "n", PJ_INT)), -12);
    CU_ASSERT_EQUAL(pj_at(&d, choices, 2), -1);
    int usage = pj_get(&d, 0, "usage", PJ_OBJECT);
    CU_ASSERT_EQUAL(pj_int64(&d, pj_get(&d, usage, "prompt_tokens", PJ_INT)), 9);
    CU_ASSERT_EQUAL(pj_get(&d, usage, "f", PJ_INT), -1); /* a double is not an int */
    CU_ASSERT_EQUAL(pj_type_of(&d, pj_member(&d, usage, "f")), PJ_DOUBLE);
    CU_ASSERT_EQUAL(pj_int64(&d, pj_member(&d, 0, "a")), 2); /* the last one, as json-c */
    char *k = pj_strdup(&d, pj_member(&d, 0, "k"));
    CU_ASSERT_STRING_EQUAL(k, "escaped key");
    free(k);
    CU_ASSERT_EQUAL(pj_member(&d, 0, "missing"), -1);
    CU_ASSERT_EQUAL(pj_member(&d, choices, "x"), -1); /* not an object */
    CU_ASSERT_PTR_NULL(pj_strdup(&d, usage));         /* not a string */
    pj_free(&d);

    /* Many tokens: past the inline array, into the heap. */
    pu_buf big = {0};
    pu_buf_append(&big, "[", 1);
    for (int i = 0; i < 1000; i++)
        pu_buf_append(&big, i ? ",{\"i\":[1]}" : "{\"i\":[1]}", i ? 10 : 9);
    pu_buf_append(&big, "]", 1);
    CU_ASSERT_EQUAL_FATAL(pj_scan(&d, big.data, big.len), 0);
    CU_ASSERT_EQUAL(pj_count(&d, 0), 1000);
    CU_ASSERT(pj_get(&d, pj_at(&d, 0, 999), "i", PJ_ARRAY) > 0);
    pj_free(&d);
    pu_buf_free(&big);
}

static void test_put_string(void)
{
    pu_buf b = {0};
    const char s[] = "a\"b\\c/d\x01\x1f\n\t\b\f\r\x7f\xc3\xa9";
    pj_put_string(&b, s, sizeof s - 1);
    json_object *o = json_object_new_string_len(s, (int)(sizeof s - 1));
    CU_ASSERT_STRING_EQUAL(b.data, json_object_to_json_string_ext(o, PU_JSON_FLAGS));
    json_object_put(o);
    pu_buf_free(&b);
}

static void test_put_int64(void)
{
    static const int64_t values[] = {0, 1, -1, 9, 10, -10, 1234567890123LL, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        pu_buf b = {0};
        char want[32];
        snprintf(want, sizeof want, "%lld", (long long)values[i]);
        pj_put_int64(&b, values[i]);
        CU_ASSERT_STRING_EQUAL(b.data, want);
        pu_buf_free(&b);
    }
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("json_scan", NULL, NULL);
    CU_add_test(s, "hand-picked documents equal json-c", test_hand_picked);
    CU_add_test(s, "strict scanning refuses non-JSON", test_strict_refuses);
    CU_add_test(s, "generated documents equal json-c", test_generated);
    CU_add_test(s, "look-ups", test_lookups);
    CU_add_test(s, "string escaping equals json-c", test_put_string);
    CU_add_test(s, "integers as printf writes them", test_put_int64);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
