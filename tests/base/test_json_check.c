/* The hot-path JSON syntax check agrees with RFC 8259 on valid and invalid texts and says
 * where a text goes wrong; the whole-text parser for request bodies and --input (json_parse.h)
 * is as strict, and locates problems. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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
        {"tab\tnl\n", 7, "\"tab\\tnl\\n\""},
        {"\r\b\f\x7f", 4, "\"\\r\\b\\f\x7f\""},
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
        /* The bytes json-c writes (without escaping '/'). */
        CU_ASSERT_STRING_EQUAL(buf,
                               json_object_to_json_string_ext(
                                   o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        /* And read back by the decoder. */
        char dec[128];
        size_t n = fr__json_get_string(buf + 1, strlen(buf) - 2, dec);
        CU_ASSERT(n == cases[i].len && memcmp(dec, cases[i].in, n) == 0);
        json_object_put(o);
    }
    /* Escapes json-c does not write: \/, \u of any code point, surrogate pairs, a lone
     * surrogate (U+FFFD). */
    static const struct {
        const char *in, *out;
    } dec[] = {
        {"a\\/b", "a/b"},
        {"\\u0041\\u00e9\\u20ac", "A\xc3\xa9\xe2\x82\xac"},
        {"\\ud83d\\ude00!", "\xf0\x9f\x98\x80!"},
        {"\\ud83dx", "\xef\xbf\xbdx"},
        {"\\\"\\\\", "\"\\"},
    };
    for (size_t i = 0; i < sizeof dec / sizeof dec[0]; i++) {
        char out[64];
        size_t n = fr__json_get_string(dec[i].in, strlen(dec[i].in), out);
        CU_ASSERT(n == strlen(dec[i].out) && memcmp(out, dec[i].out, n) == 0);
    }
    /* Long runs (copied eight bytes at a time) with one byte to escape at every place,
     * and bytes at or past 0x80 around it: the bytes json-c writes. */
    static const char specials[] = {'"',        '\\', '\n', '\x01', '\x1f', '\x7f', (char)0x80,
                                    (char)0xff, ' ',  '!',  '#',    '[',    ']',    '/'};
    for (size_t len = 1; len <= 40; len++)
        for (size_t at = 0; at < len; at++)
            for (size_t k = 0; k < sizeof specials; k++) {
                char in[48], out[6 * 48 + 2];
                for (size_t i = 0; i < len; i++)
                    in[i] = (char)(i % 3 ? 'a' + i % 26 : 0xc3 ^ (i & 1));
                in[at] = specials[k];
                char *e = fr__json_put_string_len(out, in, len);
                *e = '\0';
                json_object *o = json_object_new_string_len(in, (int)len);
                const char *want = json_object_to_json_string_ext(
                    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
                if (strcmp(out, want) != 0) {
                    fprintf(stderr, "\nlen %zu at %zu byte %02x: %s, json-c %s\n", len, at,
                            (unsigned char)specials[k], out, want);
                    CU_FAIL("escaped differently from json-c");
                }
                json_object_put(o);
            }
    for (int c = 0; c < 256; c++) { /* every byte: alone, and in an eight-byte block */
        char in[12] = "xabcdefghij", out[6 * 12 + 2];
        in[1] = (char)c;
        for (size_t len = 2; len <= 11; len += 9) {
            *fr__json_put_string_len(out, in + (len == 2), len - (len == 2)) = '\0';
            json_object *o = json_object_new_string_len(in + (len == 2), (int)(len - (len == 2)));
            CU_ASSERT_STRING_EQUAL(out,
                                   json_object_to_json_string_ext(
                                       o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
            json_object_put(o);
        }
    }
    char buf[32];
    *fr__json_put_string(buf, "a\"b") = '\0';
    CU_ASSERT_STRING_EQUAL(buf, "\"a\\\"b\"");
}

/* Several members in one pass: each the last of its name, absent ones NULL, the count of
 * those present, and -1 where fr__json_member says -1. */
static void test_members(void)
{
    static const char *const keys[] = {"text", "usage", "none"};
    const char *v[3];
    size_t n[3];
    const char *s = "{\"text\": \"a\", \"usage\": {\"x\": 1}, \"text\": \"b\", \"other\": [1]}";
    CU_ASSERT_EQUAL(fr__json_members(s, strlen(s), keys, 3, v, n), 2);
    CU_ASSERT_EQUAL(n[0], 3);
    CU_ASSERT_EQUAL(strncmp(v[0], "\"b\"", 3), 0);
    CU_ASSERT_EQUAL(n[1], 8);
    CU_ASSERT_EQUAL(strncmp(v[1], "{\"x\": 1}", 8), 0);
    CU_ASSERT_PTR_NULL(v[2]);
    CU_ASSERT_EQUAL(n[2], 0);
    CU_ASSERT_EQUAL(fr__json_members("{}", 2, keys, 3, v, n), 0);
    CU_ASSERT_EQUAL(fr__json_members("{} x", 4, keys, 3, v, n), -1);
    CU_ASSERT_EQUAL(fr__json_members("{\"tex\": 1, \"texts\": 2}", 22, keys, 3, v, n), 0);
    CU_ASSERT_EQUAL(fr__json_members("{\"t\\u0065xt\": 1}", 16, keys, 3, v, n), -1);
    CU_ASSERT_EQUAL(fr__json_members("[]", 2, keys, 3, v, n), -1);
    /* _only: another member is -1 */
    CU_ASSERT_EQUAL(fr__json_members_only(s, strlen(s), keys, 3, v, n), -1);
    const char *t = "{\"usage\": 1, \"text\": 2}";
    CU_ASSERT_EQUAL(fr__json_members_only(t, strlen(t), keys, 3, v, n), 2);
    CU_ASSERT_EQUAL(fr__json_members_only("{}", 2, keys, 3, v, n), 0);
}

/* What json-c writes for the string of these bytes (JSON_C_TO_STRING_NOSLASHESCAPE). */
static char *jsonc_string(const char *s, size_t n)
{
    json_object *o = json_object_new_string_len(s, (int)n);
    char *t = strdup(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return t;
}

/* json-c's own escapes, for every byte value and a mixed text. */
static void test_put_string_as_jsonc(void)
{
    for (int c = 0; c < 256; c++) {
        char in[3] = {'a', (char)c, 'b'}, out[32];
        *fr__json_put_string_len(out, in, 3) = '\0';
        char *want = jsonc_string(in, 3);
        CU_ASSERT_STRING_EQUAL(out, want);
        free(want);
    }
    const char *mixed = "line\nnext\t\"q\" \\ / é \x01\x1f\x7f end";
    char out[256];
    *fr__json_put_string_len(out, mixed, strlen(mixed)) = '\0';
    char *want = jsonc_string(mixed, strlen(mixed));
    CU_ASSERT_STRING_EQUAL(out, want);
    free(want);
}

/* A string token written as json-c writes what it reads from it: every \u00XX escape,
 * the short escapes, multi-byte escapes and raw UTF-8; surrogates and bad tokens refused. */
static void test_recode_string(void)
{
    char tok[64], out[64];
    for (int c = 0; c < 256; c++) {
        int n = snprintf(tok, sizeof tok, "\"x\\u%04xy\"", c);
        char *end = fr__json_recode_string(out, tok, (size_t)n);
        CU_ASSERT_PTR_NOT_NULL_FATAL(end);
        CU_ASSERT(end - out <= n);
        *end = '\0';
        json_object *o = json_tokener_parse(tok);
        char *want = jsonc_string(json_object_get_string(o), (size_t)json_object_get_string_len(o));
        CU_ASSERT_STRING_EQUAL(out, want);
        free(want);
        json_object_put(o);
    }
    static const char *const toks[] = {
        "\"\"",
        "\"plain\"",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
        "\"\\u20AC \\u07ff \\uffff\"",
        "\"raw é € 😀\"",
        "\"a/b\"",
    };
    for (size_t i = 0; i < sizeof toks / sizeof toks[0]; i++) {
        char *end = fr__json_recode_string(out, toks[i], strlen(toks[i]));
        CU_ASSERT_PTR_NOT_NULL_FATAL(end);
        *end = '\0';
        json_object *o = json_tokener_parse(toks[i]);
        char *want = jsonc_string(json_object_get_string(o), (size_t)json_object_get_string_len(o));
        CU_ASSERT_STRING_EQUAL(out, want);
        free(want);
        json_object_put(o);
    }
    static const char *const refused[] = {
        "\"\\ud83d\\ude00\"", "\"\\udc00\"", "\"open", "plain", "\"a\" ", "\"\\x\"",
        "\"\x01\"",           "\"\xff\"",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        CU_ASSERT_PTR_NULL(fr__json_recode_string(out, refused[i], strlen(refused[i])));
}

/* Integers as json-c reads them: within int64, past it, or no integer at all. */
static void test_int_token(void)
{
    static const struct {
        const char *v;
        int rc;
        int64_t want;
    } cases[] = {
        {"0", 1, 0},
        {"-0", 1, 0},
        {"42", 1, 42},
        {"-17", 1, -17},
        {"9223372036854775807", 1, INT64_MAX},
        {"-9223372036854775807", 1, -INT64_MAX},
        {"9223372036854775808", -1, 0},
        {"123456789012345678901234567890", -1, 0},
        {"1.0", 0, 0},
        {"1e3", 0, 0},
        {"2E1", 0, 0},
        {"\"7\"", 0, 0},
        {"true", 0, 0},
        {"-", 0, 0},
        {"", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t got = 0;
        CU_ASSERT_EQUAL(fr__json_int_token(cases[i].v, strlen(cases[i].v), &got), cases[i].rc);
        if (cases[i].rc == 1)
            CU_ASSERT_EQUAL(got, cases[i].want);
    }
}

/* Array elements one by one, and what is not one array. */
static void test_array_next(void)
{
    const char *s = " [ 1 , {\"a\": [2]} ,\"x\" ] ";
    const char *want[] = {"1", "{\"a\": [2]}", "\"x\""};
    size_t at = 0, n, k = 0;
    const char *v;
    int rc;
    while ((rc = fr__json_array_next(s, strlen(s), &at, &v, &n)) == 1) {
        CU_ASSERT_FATAL(k < 3);
        CU_ASSERT_EQUAL(n, strlen(want[k]));
        CU_ASSERT_EQUAL(strncmp(v, want[k], n), 0);
        k++;
    }
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(k, 3);
    at = 0;
    CU_ASSERT_EQUAL(fr__json_array_next("[]", 2, &at, &v, &n), 0);
    static const char *const bad[] = {"{}", "[1,]", "[1 2]", "[1] x", "[1", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        at = 0;
        while ((rc = fr__json_array_next(bad[i], strlen(bad[i]), &at, &v, &n)) == 1)
            ;
        CU_ASSERT_EQUAL(rc, -1);
    }
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
        /* The direct builder alone (a run's input): for a strictly valid text it builds,
         * the strict whole parse gives the same text. */
        json_object *direct = fr__json_tree_direct(texts[i]), *strict = NULL;
        size_t len = strlen(texts[i]), at;
        const char *why;
        if (direct) {
            CU_ASSERT(json_object_equal(direct, got));
            if (fr__json_check(texts[i], len) == FR_JSON_VALID) {
                CU_ASSERT_EQUAL(
                    fr__json_parse_whole(texts[i], len, FR_INPUT_MAX_DEPTH, &strict, &at, &why), 0);
                CU_ASSERT_STRING_EQUAL(
                    json_object_to_json_string_ext(direct, JSON_C_TO_STRING_PLAIN),
                    json_object_to_json_string_ext(strict, JSON_C_TO_STRING_PLAIN));
            }
        }
        json_object_put(direct);
        json_object_put(strict);
        json_object_put(want);
        json_object_put(got);
    }
    /* What it does not build is NULL, never the tokener's tree. */
    static const char *const left[] = {"[0.5]", "[-0]", "5", "null", "[1,]", "{} x"};
    for (size_t i = 0; i < sizeof left / sizeof left[0]; i++)
        CU_ASSERT_PTR_NULL(fr__json_tree_direct(left[i]));
    CU_ASSERT_PTR_NULL(fr__json_tree_direct(deep[3]));  /* 25 deep */
    json_object *built = fr__json_tree_direct(deep[1]); /* 23 deep */
    CU_ASSERT_PTR_NOT_NULL(built);
    json_object_put(built);
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
    CU_add_test(s, "several members in one pass", test_members);
    CU_add_test(s, "writing strings as json-c does", test_put_string_as_jsonc);
    CU_add_test(s, "string tokens written as json-c does", test_recode_string);
    CU_add_test(s, "integers as json-c reads them", test_int_token);
    CU_add_test(s, "array elements one by one", test_array_next);
    CU_add_test(s, "trees as json-c's tokener makes them", test_tree);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures ? 1 : 0;
}
