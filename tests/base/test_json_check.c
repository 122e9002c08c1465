/* The hot-path JSON syntax check agrees with RFC 8259 on valid and invalid texts and says
 * where a text goes wrong; the whole-text parser for request bodies and --input (json_parse.h)
 * is as strict, and locates problems. */
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include <json-c/json.h>

#include "base/json_check.h"
#include "base/json_parse.h"

static void test_valid(void)
{
    static const char *const ok[] = {
        "{}",
        "[]",
        "0",
        "-0",
        "1.5e10",
        "-2E-3",
        "\"\"",
        "true",
        "false",
        "null",
        " { \"a\" : [1, 2, {\"b\": null}], \"c\": \"x\\n\\u00e9\\\"\" } ",
        "[[[[[]]]]]",
        "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
        "{\"a\":{}}",
        "[1,[2,[3]]]",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        CU_ASSERT_EQUAL_FATAL(fr__json_valid(ok[i], strlen(ok[i])), 1);
}

static void test_invalid(void)
{
    static const char *const bad[] = {
        "",          " ",         "{",       "}",        "[1,]",         "{\"a\":1,}",
        "{a:1}",     "01",        "1.",      ".5",       "+1",           "1e",
        "tru",       "nul",       "\"abc",   "\"\\x\"",  "\"\\u12\"",    "[1 2]",
        "{\"a\" 1}", "1 2",       "{}{}",    "\"\x01\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"",
        "\"\xff\"",  "[\"a\":1]", "{\"a\"}", "NaN",      "[-]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (fr__json_valid(bad[i], strlen(bad[i])))
            fprintf(stderr, "accepted: %s\n", bad[i]);
        CU_ASSERT_EQUAL(fr__json_valid(bad[i], strlen(bad[i])), 0);
    }
    /* Embedded NUL and length bounds. */
    CU_ASSERT_EQUAL(fr__json_valid("\"a\0b\"", 5), 0);
    CU_ASSERT_EQUAL(fr__json_valid("[1]xyz", 3), 1);
}

static void test_where(void)
{
    static const struct {
        const char *text;
        size_t at;
    } cases[] = {
        {"{\"a\":1}", FR_JSON_VALID},
        {"{", 1},
        {"{\"a\" 1}", 5},
        {"[1,]", 3},
        {"[1, NaN]", 4},
        {"{'a':1}", 1},
        {"1 2", 2},
        {"{}\n{}", 3},
        {"[\"\x01\"]", 2},
        {"\"abc", 4},
        {"[1,\n 2,\n x]", 9},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t at = fr__json_check(cases[i].text, strlen(cases[i].text));
        if (at != cases[i].at)
            fprintf(stderr, "%s: at %zu, want %zu\n", cases[i].text, at, cases[i].at);
        CU_ASSERT_EQUAL(at, cases[i].at);
    }
}

static void test_parse_whole(void)
{
    json_object *o;
    size_t at;
    const char *why;
    CU_ASSERT_EQUAL(fr__json_parse_whole(" {\"a\": [1, 2.5]} \n", 17, 32, &o, &at, &why), 0);
    CU_ASSERT_STRING_EQUAL(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
                           "{\"a\":[1,2.5]}");
    json_object_put(o);
    /* Scalars at the very end, which json-c alone leaves waiting for a delimiter. */
    CU_ASSERT_EQUAL(fr__json_parse_whole("5", 1, 32, &o, &at, &why), 0);
    CU_ASSERT_EQUAL(json_object_get_int(o), 5);
    json_object_put(o);
    CU_ASSERT_EQUAL(fr__json_parse_whole("null", 4, 32, &o, &at, &why), 0);
    CU_ASSERT_PTR_NULL(o);
    /* What json-c would let through, refused where it is. */
    static const struct {
        const char *text;
        size_t at;
    } bad[] = {{"[1, NaN]", 4},     {"{'a': 1}", 1}, {"[1,]", 3},    {"{\"a\":1,}", 7},
               {"{\"a\": 1} x", 9}, {"{\"a\":", 5},  {"// c\n{}", 0}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_EQUAL(fr__json_parse_whole(bad[i].text, strlen(bad[i].text), 32, &o, &at, &why),
                        -1);
        CU_ASSERT_PTR_NULL(o);
        CU_ASSERT_PTR_NOT_NULL(why);
        if (at != bad[i].at)
            fprintf(stderr, "%s: at %zu, want %zu (%s)\n", bad[i].text, at, bad[i].at, why);
        CU_ASSERT_EQUAL(at, bad[i].at);
    }
    /* The depth limit is the caller's. */
    CU_ASSERT_EQUAL(fr__json_parse_whole("[[[1]]]", 7, 2, &o, &at, &why), -1);
    int line, col;
    fr__json_line_col("[1,\n 2,\n x]", 9, &line, &col);
    CU_ASSERT_EQUAL(line, 3);
    CU_ASSERT_EQUAL(col, 2);
}

static void test_depth(void)
{
    char deep[2 * FR_JSON_MAX_DEPTH + 4];
    size_t n = FR_JSON_MAX_DEPTH;
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    CU_ASSERT_EQUAL(fr__json_valid(deep, 2 * n), 1);
    char deeper[2 * FR_JSON_MAX_DEPTH + 4];
    memset(deeper, '[', n + 1);
    memset(deeper + n + 1, ']', n + 1);
    CU_ASSERT_EQUAL(fr__json_valid(deeper, 2 * (n + 1)), 0);
}

/* Returns the member's raw text ("" when absent or on -1), and its result code. */
static int member(const char *doc, const char *key, char *out, size_t size)
{
    const char *v = NULL;
    size_t n = 0;
    int rc = fr__json_member(doc, strlen(doc), key, &v, &n);
    snprintf(out, size, "%.*s", rc == 1 ? (int)n : 0, rc == 1 ? v : "");
    return rc;
}

static void test_member(void)
{
    char v[128];
    CU_ASSERT_EQUAL(member("{\"model\":\"m\",\"stream\":true}", "stream", v, sizeof v), 1);
    CU_ASSERT_STRING_EQUAL(v, "true");
    CU_ASSERT_EQUAL(
        member(" { \"a\" : [1, {\"stream\": 1}], \"stream\" : false } ", "stream", v, sizeof v), 1);
    CU_ASSERT_STRING_EQUAL(v, "false"); /* nested members do not count */
    CU_ASSERT_EQUAL(member("{\"a\": {\"stream\": true}}", "stream", v, sizeof v), 0);
    CU_ASSERT_EQUAL(member("{\"m\": \"\\\"stream\\\": true\"}", "stream", v, sizeof v), 0);
    CU_ASSERT_EQUAL(
        member("{\"stream\": true, \"stream\": {\"x\": [null]}}", "stream", v, sizeof v), 1);
    CU_ASSERT_STRING_EQUAL(v, "{\"x\": [null]}"); /* the last duplicate wins */
    CU_ASSERT_EQUAL(member("{}", "stream", v, sizeof v), 0);
    CU_ASSERT_EQUAL(member("{\"\\u0073tream\": true}", "stream", v, sizeof v), -1);
    CU_ASSERT_EQUAL(member("[\"stream\", true]", "stream", v, sizeof v), -1);
    CU_ASSERT_EQUAL(member("{\"stream\": tru}", "stream", v, sizeof v), -1);
    CU_ASSERT_EQUAL(member("{\"stream\": true", "stream", v, sizeof v), -1);
    CU_ASSERT_EQUAL(member("{\"stream\": true} x", "stream", v, sizeof v), -1);
    CU_ASSERT_EQUAL(
        member("{\"a\": -1.5e3, \"b\": \"\\u00e9\", \"stream\": \"yes\"}", "stream", v, sizeof v),
        1);
    CU_ASSERT_STRING_EQUAL(v, "\"yes\"");
}

/* Writing strings: escapes where JSON needs them, runs copied as they are, NUL bytes kept
 * (the length-taking form), and what it writes parses back to the same bytes. */
static void test_put_string(void)
{
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {"", 0, "\"\""},
        {"plain text / é", 15, "\"plain text / é\""},
        {"a\"b\\c", 5, "\"a\\\"b\\\\c\""},
        {"tab\tnl\n", 7, "\"tab\\u0009nl\\u000a\""},
        {"\"", 1, "\"\\\"\""},
        {"x\0y", 3, "\"x\\u0000y\""},
        {"end\x1f", 4, "\"end\\u001f\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[128];
        char *end = fr__json_put_string_len(buf, cases[i].in, cases[i].len);
        *end = '\0';
        CU_ASSERT_STRING_EQUAL(buf, cases[i].out);
        json_object *o = json_tokener_parse(buf);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        CU_ASSERT_EQUAL((size_t)json_object_get_string_len(o), cases[i].len);
        CU_ASSERT_EQUAL(memcmp(json_object_get_string(o), cases[i].in, cases[i].len), 0);
        json_object_put(o);
    }
    char buf[32];
    *fr__json_put_string(buf, "a\"b") = '\0';
    CU_ASSERT_STRING_EQUAL(buf, "\"a\\\"b\"");
}

/* fr__json_tree gives json_tokener_parse's tree: the same value and the same text when
 * written again, for the shapes it builds itself and for those it leaves to json-c. */
static void test_tree(void)
{
    static char deep[8][200];
    static const int depths[] = {1, 23, 24, 25, 31, 32, 33, 40};
    for (size_t d = 0; d < 8; d++) {
        int n = depths[d], o = 0;
        for (int i = 0; i < n; i++)
            deep[d][o++] = i % 2 ? '[' : '{', o += i % 2 ? 0 : sprintf(deep[d] + o, "\"k\":");
        o += sprintf(deep[d] + o, "1");
        for (int i = n - 1; i >= 0; i--)
            deep[d][o++] = i % 2 ? ']' : '}';
        deep[d][o] = '\0';
    }
    char long_string[700], long_key[600];
    snprintf(long_string, sizeof long_string, "{\"s\":\"%0300d\\n%0300d\"}", 7, 8);
    snprintf(long_key, sizeof long_key, "{\"%0200d\\t%0150d\":[1,\"%0130d\"]}", 1, 2, 3);
    const char *texts[] = {
        "{}",
        "[]",
        " \n{ \"a\" : [ 1 , 2 ] }\r\n\t ",
        "{\"a\":1}",
        "{\"a\":1,\"a\":2}",
        "{\"a\":{\"b\":[1,2,{\"c\":null}]},\"d\":true,\"a\":false}",
        "[true,false,null,[],{}]",
        "{\"s\":\"plain\",\"e\":\"\"}",
        "{\"s\":\"q\\\"b\\\\s\\/n\\nr\\rt\\tb\\bf\\f\"}",
        "{\"u\":\"\\u00e9\\u4e2d\\u0041\\u007f\\u0080\\u07ff\\u0800\\uffff\"}",
        "{\"z\":\"\\u0000x\"}",
        "{\"k\\u0000\":1}",
        "{\"sur\":\"\\ud83d\\ude00\"}",
        "{\"lone\":\"\\ud800\"}",
        "{\"low\":\"\\udc00x\"}",
        "{\"raw\":\"\xc3\xa9\xe4\xb8\xad\"}",
        "{\"k\\u00e9\":\"v\"}",
        "[\"\\u0041\\u00\"]",
        "[0,-1,7,123456789012345678,-123456789012345678,1234567890123456789,"
        "9223372036854775807,9223372036854775808,18446744073709551616,-9223372036854775808,"
        "-9223372036854775809]",
        "[-0]",
        "[0.5]",
        "[1e3]",
        "[1E-2]",
        "[-0.0]",
        "[1.0]",
        "[01]",
        "[2.50]",
        long_string,
        long_key,
        deep[0],
        deep[1],
        deep[2],
        deep[3],
        deep[4],
        deep[5],
        deep[6],
        deep[7],
        "5",
        "\"x\"",
        "null",
        "true",
        "{} x",
        "{}{}",
        "{\"a\":}",
        "{\"a\" 1}",
        "[1,]",
        "{\"a\":1,}",
        "{'a':1}",
        "[1 2]",
        "{\"a\":tru}",
        "{\"a\":nul}",
        "\"unterminated",
        "{\"a\":\"\x01\"}",
        "{\"a\":\"x\\q\"}",
        "[1",
        "{\"a\"",
        "",
        "[Infinity]",
        "{\"a\":[1,{\"b\":\"c\"}],\"n\":-42}"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        json_object *want = json_tokener_parse(texts[i]);
        json_object *got = fr__json_tree(texts[i]);
        const char *ws = want ? json_object_to_json_string_ext(want, JSON_C_TO_STRING_PLAIN) : "";
        const char *gs = got ? json_object_to_json_string_ext(got, JSON_C_TO_STRING_PLAIN) : "";
        int same =
            (want == NULL) == (got == NULL) && json_object_equal(want, got) && strcmp(ws, gs) == 0;
        if (!same)
            fprintf(stderr, "text %zu %.60s: json-c %s, fr__json_tree %s\n", i, texts[i],
                    want ? ws : "NULL", got ? gs : "NULL");
        CU_ASSERT(same);
        json_object_put(want);
        json_object_put(got);
    }
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("json_check", NULL, NULL);
    CU_add_test(s, "valid texts", test_valid);
    CU_add_test(s, "invalid texts", test_invalid);
    CU_add_test(s, "depth limit", test_depth);
    CU_add_test(s, "where a text goes wrong", test_where);
    CU_add_test(s, "whole-text parsing with a located error", test_parse_whole);
    CU_add_test(s, "top-level member lookup", test_member);
    CU_add_test(s, "writing strings", test_put_string);
    CU_add_test(s, "trees as json-c's tokener makes them", test_tree);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures ? 1 : 0;
}
