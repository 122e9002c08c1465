/* Unit tests of the plugin kit's JSON scanner and writer (sdk/kit/json.c), the plugins'
 * fast JSON path, held against json-c: every document json-c reads must scan
 * (frk_json_scan_any) and write back (frk_json_put_value) to
 * exactly json-c's own compact text, look-ups must find what json-c finds, and strict
 * scanning (frk_json_scan) must refuse what RFC 8259 refuses.  Besides hand-picked cases, a
 * seeded generator makes thousands of documents with the awkward parts (escapes,
 * surrogates, -0, big integers, exponents, repeated keys, whitespace).
 *
 * Exit status: 0 when every assertion held, 1 otherwise. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include <fluxroute/kit.h>
#include "plugin_util.h"

#include "fr_test.h"

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
static char *frk_json_text(const char *text, size_t len)
{
    frk_json_doc d;
    char err[200];
    if (frk_json_scan_any(&d, text, len, err, sizeof err) != 0)
        return NULL;
    frk_buf b = {0};
    frk_json_put_value(&b, &d, 0);
    frk_json_free(&d);
    if (b.oom) {
        frk_buf_free(&b);
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
    char *want = jsonc_text(text, len), *got = frk_json_text(text, len);
    n_compared++;
    frk_json_doc d;
    if (!want) {
        /* json-c refuses it: strict scanning must too. */
        int scanned = frk_json_scan(&d, text, len) == 0;
        frk_json_free(&d);
        if (scanned)
            fprintf(stderr, "pj scans what json-c refuses: %s\n", text);
        CU_ASSERT(!scanned);
    } else if (frk_json_scan(&d, want, strlen(want)) != 0) {
        /* json-c reads NaN or Infinity and writes them back: no JSON, refused. */
        frk_json_free(&d);
        CU_ASSERT_PTR_NULL(got);
    } else {
        frk_json_free(&d);
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
        /* json-c reads these, strict JSON does not: frk_json_scan_any must agree with json-c */
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
        frk_json_doc d;
        int rc = frk_json_scan(&d, bad[i], strlen(bad[i]));
        frk_json_free(&d);
        if (rc == 0)
            fprintf(stderr, "strict scan accepted %s\n", bad[i]);
        CU_ASSERT_EQUAL(rc, -1);
    }
    /* Lenient text json-c reads and strict JSON cannot hold: refused with a reason. */
    frk_json_doc nan;
    char err[200] = "";
    CU_ASSERT_EQUAL(frk_json_scan_any(&nan, "{\"x\":NaN}", 9, err, sizeof err), -1);
    ASSERT_CONTAINS(err, "NaN or Infinity");
    CU_ASSERT_EQUAL(frk_json_scan_any(&nan, "{\"x\":", 5, err, sizeof err), -1);
    ASSERT_CONTAINS(err, "unexpected end of document");
    /* ...and what json-c reads leniently and can write as JSON is read alike. */
    CU_ASSERT_EQUAL_FATAL(frk_json_scan_any(&nan, "{\"x\":[1,],}", 11, err, sizeof err), 0);
    CU_ASSERT_EQUAL(frk_json_count(&nan, frk_json_get(&nan, 0, "x", FRK_JSON_ARRAY)), 1);
    frk_json_free(&nan);
    /* Nesting deeper than the limit is refused, not a crash. */
    char deep[2 * FRK_JSON_MAX_DEPTH + 8];
    memset(deep, '[', FRK_JSON_MAX_DEPTH + 1);
    memset(deep + FRK_JSON_MAX_DEPTH + 1, ']', FRK_JSON_MAX_DEPTH + 1);
    frk_json_doc d;
    CU_ASSERT_EQUAL(frk_json_scan(&d, deep, 2 * FRK_JSON_MAX_DEPTH + 2), -1);
    frk_json_free(&d);
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

static void gen_string(frk_buf *b)
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
    frk_buf_append(b, "\"", 1);
    for (unsigned n = rnd(5); n > 0; n--) {
        const char *p = parts[rnd(sizeof parts / sizeof parts[0])];
        frk_buf_append(b, p, strlen(p));
    }
    frk_buf_append(b, "\"", 1);
}

static void gen_ws(frk_buf *b)
{
    static const char *const ws[] = {"", "", "", " ", "\n  ", "\t"};
    const char *w = ws[rnd(6)];
    frk_buf_append(b, w, strlen(w));
}

static void gen_value(frk_buf *b, int depth)
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
        frk_buf_append(b, s, strlen(s));
    } else if (kind == 1) {
        gen_string(b);
    } else if (kind == 2) {
        frk_buf_append(b, "[", 1);
        for (unsigned n = rnd(4), i = 0; i < n; i++) {
            if (i)
                frk_buf_append(b, ",", 1);
            gen_value(b, depth + 1);
        }
        gen_ws(b);
        frk_buf_append(b, "]", 1);
    } else {
        static const char *const keys[] = {"\"a\"",       "\"b\"", "\"text\"",
                                           "\"\\u0061\"", "\"\"",  "\"k/\\n\""};
        frk_buf_append(b, "{", 1);
        for (unsigned n = rnd(5), i = 0; i < n; i++) {
            if (i)
                frk_buf_append(b, ",", 1);
            gen_ws(b);
            if (rnd(3) == 0) {
                gen_string(b);
            } else {
                const char *k = keys[rnd(6)];
                frk_buf_append(b, k, strlen(k));
            }
            gen_ws(b);
            frk_buf_append(b, ":", 1);
            gen_value(b, depth + 1);
        }
        gen_ws(b);
        frk_buf_append(b, "}", 1);
    }
    gen_ws(b);
}

static void test_generated(void)
{
    for (int i = 0; i < 20000; i++) {
        frk_buf b = {0};
        gen_value(&b, 0);
        CU_ASSERT_FALSE(b.oom);
        same_as_jsonc(b.data);
        frk_buf_free(&b);
    }
    CU_ASSERT(n_compared > 20000);
}

/* ---- reading ------------------------------------------------------------------------------ */

static void test_lookups(void)
{
    const char *text = "{\"choices\":[{\"message\":{\"content\":\"hi \\u00e9\\n\",\"n\":-12}},"
                       "{\"x\":1}],\"usage\":{\"prompt_tokens\":9,\"f\":1.5},\"a\":1,\"a\":2,"
                       "\"\\u006b\":\"escaped key\"}";
    frk_json_doc d;
    CU_ASSERT_EQUAL_FATAL(frk_json_scan(&d, text, strlen(text)), 0);
    int choices = frk_json_get(&d, 0, "choices", FRK_JSON_ARRAY);
    CU_ASSERT(choices > 0);
    CU_ASSERT_EQUAL(frk_json_count(&d, choices), 2);
    CU_ASSERT_EQUAL(frk_json_count(&d, 0), 5);
    int msg = frk_json_get(&d, frk_json_at(&d, choices, 0), "message", FRK_JSON_OBJECT);
    char *content = frk_json_strdup(&d, frk_json_member(&d, msg, "content"));
    CU_ASSERT_STRING_EQUAL(content, "hi \xc3\xa9\n");
    free(content);
    CU_ASSERT_EQUAL(frk_json_int64(&d, frk_json_get(&d, msg, "n", FRK_JSON_INT)), -12);
    CU_ASSERT_EQUAL(frk_json_at(&d, choices, 2), -1);
    int usage = frk_json_get(&d, 0, "usage", FRK_JSON_OBJECT);
    CU_ASSERT_EQUAL(frk_json_int64(&d, frk_json_get(&d, usage, "prompt_tokens", FRK_JSON_INT)), 9);
    CU_ASSERT_EQUAL(frk_json_get(&d, usage, "f", FRK_JSON_INT), -1); /* a double is not an int */
    CU_ASSERT_EQUAL(frk_json_type_of(&d, frk_json_member(&d, usage, "f")), FRK_JSON_DOUBLE);
    CU_ASSERT_EQUAL(frk_json_int64(&d, frk_json_member(&d, 0, "a")),
                    2); /* the last one, as json-c */
    char *k = frk_json_strdup(&d, frk_json_member(&d, 0, "k"));
    CU_ASSERT_STRING_EQUAL(k, "escaped key");
    free(k);
    CU_ASSERT_EQUAL(frk_json_member(&d, 0, "missing"), -1);
    CU_ASSERT_EQUAL(frk_json_member(&d, choices, "x"), -1); /* not an object */
    CU_ASSERT_PTR_NULL(frk_json_strdup(&d, usage));         /* not a string */
    frk_json_free(&d);

    /* Many tokens: past the inline array, into the heap. */
    frk_buf big = {0};
    frk_buf_append(&big, "[", 1);
    for (int i = 0; i < 1000; i++)
        frk_buf_append(&big, i ? ",{\"i\":[1]}" : "{\"i\":[1]}", i ? 10 : 9);
    frk_buf_append(&big, "]", 1);
    CU_ASSERT_EQUAL_FATAL(frk_json_scan(&d, big.data, big.len), 0);
    CU_ASSERT_EQUAL(frk_json_count(&d, 0), 1000);
    CU_ASSERT(frk_json_get(&d, frk_json_at(&d, 0, 999), "i", FRK_JSON_ARRAY) > 0);
    frk_json_free(&d);
    frk_buf_free(&big);
}

static void test_put_string(void)
{
    frk_buf b = {0};
    const char s[] = "a\"b\\c/d\x01\x1f\n\t\b\f\r\x7f\xc3\xa9";
    frk_json_put_string(&b, s, sizeof s - 1);
    json_object *o = json_object_new_string_len(s, (int)(sizeof s - 1));
    CU_ASSERT_STRING_EQUAL(b.data, json_object_to_json_string_ext(o, PU_JSON_FLAGS));
    json_object_put(o);
    frk_buf_free(&b);
}

static void test_put_int64(void)
{
    static const int64_t values[] = {0, 1, -1, 9, 10, -10, 1234567890123LL, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        frk_buf b = {0};
        char want[32];
        snprintf(want, sizeof want, "%lld", (long long)values[i]);
        frk_json_put_int64(&b, values[i]);
        CU_ASSERT_STRING_EQUAL(b.data, want);
        frk_buf_free(&b);
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
