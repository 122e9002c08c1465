/* Unit tests of the plugin kit (include/fluxroute/kit.h) through its public header only:
 * the buffer, the JSON scanner and writer, the SSE parser, Retry-After values and
 * HTTP-dates measured from an injected clock, and classification by HTTP status and
 * status class, held against the host library's own answers (fr_status_retried...), which
 * this test links beside the kit: the frk_ names never collide with the host's. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include <fluxroute/kit.h>
#include <fluxroute/status.h>

#include "fr_test.h"

/* ---- buffer --------------------------------------------------------------------------- */

static void test_buf(void)
{
    frk_buf b = {0};
    frk_buf_lit(&b, "ab");
    for (int i = 0; i < 100; i++)
        frk_buf_append(&b, "0123456789", 10);
    CU_ASSERT_EQUAL(b.len, 1002);
    CU_ASSERT_EQUAL(b.data[b.len], '\0');
    CU_ASSERT(b.cap >= b.len + 1);
    CU_ASSERT_EQUAL(memcmp(b.data, "ab0123", 6), 0);
    CU_ASSERT_EQUAL(b.oom, 0);
    frk_buf_free(&b);
    CU_ASSERT_PTR_NULL(b.data);
    CU_ASSERT_EQUAL(b.len, 0);
    /* oom is sticky: nothing is appended after it */
    b.oom = 1;
    frk_buf_lit(&b, "x");
    CU_ASSERT_PTR_NULL(b.data);
    CU_ASSERT_EQUAL(frk_buf_grow(&b, 1), -1);
}

/* ---- JSON ----------------------------------------------------------------------------- */

/* The compact JSON the writer gives for value token 0 of text. */
static char *rewrite(const char *text)
{
    frk_json_doc d;
    char err[200];
    frk_buf out = {0};
    if (frk_json_scan_any(&d, text, strlen(text), err, sizeof err) == 0)
        frk_json_put_value(&out, &d, 0);
    frk_json_free(&d);
    return out.data;
}

static void test_json_scan_read(void)
{
    const char *text = " {\"name\": \"caf\\u00e9 \\\"x\\\"\", \"n\": -42, \"pi\": 3.25,"
                       " \"list\": [1, \"two\", null, true, {\"k\": []}], \"name\": \"last\"} ";
    frk_json_doc d;
    CU_ASSERT_EQUAL_FATAL(frk_json_scan(&d, text, strlen(text)), 0);
    CU_ASSERT_EQUAL(frk_json_type_of(&d, 0), FRK_JSON_OBJECT);
    CU_ASSERT_EQUAL(frk_json_count(&d, 0), 5);
    /* a repeated key reads as its last value, as json-c keeps it */
    char name[32];
    CU_ASSERT_EQUAL(frk_json_copy(&d, frk_json_member(&d, 0, "name"), name, sizeof name), 1);
    ASSERT_STR(name, "last");
    CU_ASSERT_EQUAL(frk_json_int64(&d, frk_json_get(&d, 0, "n", FRK_JSON_INT)), -42);
    CU_ASSERT_EQUAL(frk_json_type_of(&d, frk_json_member(&d, 0, "pi")), FRK_JSON_DOUBLE);
    CU_ASSERT_EQUAL(frk_json_get(&d, 0, "pi", FRK_JSON_INT), -1);
    CU_ASSERT_EQUAL(frk_json_member(&d, 0, "missing"), -1);
    CU_ASSERT_EQUAL(frk_json_type_of(&d, -1), FRK_JSON_NULL);
    int list = frk_json_get(&d, 0, "list", FRK_JSON_ARRAY);
    CU_ASSERT_EQUAL(frk_json_count(&d, list), 5);
    const frk_json_type want[] = {FRK_JSON_INT, FRK_JSON_STRING, FRK_JSON_NULL, FRK_JSON_TRUE,
                                  FRK_JSON_OBJECT};
    size_t i = 0;
    for (int e = frk_json_first(&d, list); e >= 0; e = frk_json_next(&d, list, e), i++)
        CU_ASSERT_EQUAL(frk_json_type_of(&d, e), want[i]);
    CU_ASSERT_EQUAL(i, 5);
    CU_ASSERT_EQUAL(frk_json_at(&d, list, 4), frk_json_at(&d, list, 3) + 1);
    CU_ASSERT_EQUAL(frk_json_at(&d, list, 5), -1);
    /* members in order, keys included */
    frk_buf keys = {0};
    for (int k = frk_json_first_key(&d, 0); k >= 0; k = frk_json_next_key(&d, 0, k)) {
        frk_json_str(&d, k, &keys);
        frk_buf_lit(&keys, ",");
    }
    ASSERT_STR(keys.data, "name,n,pi,list,name,");
    frk_buf_free(&keys);
    frk_json_free(&d);

    /* the first "name", decoded */
    CU_ASSERT_EQUAL_FATAL(frk_json_scan(&d, text, 36), -1); /* cut: not one value */
    frk_json_free(&d);
    const char *one = "{\"name\":\"caf\\u00e9 \\\"x\\\"\"}";
    CU_ASSERT_EQUAL_FATAL(frk_json_scan(&d, one, strlen(one)), 0);
    char *s = frk_json_strdup(&d, frk_json_member(&d, 0, "name"));
    ASSERT_STR(s, "caf\xc3\xa9 \"x\"");
    free(s);
    CU_ASSERT_PTR_NULL(frk_json_strdup(&d, 0)); /* not a string */
    frk_json_free(&d);
}

static void test_json_strict_and_lenient(void)
{
    static const char *const bad[] = {"",    "{",        "[1,]",  "{\"a\" 1}", "01", "1.",
                                      "nul", "\"\x01\"", "[1] 2", "{'a': 1}",  "NaN"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        frk_json_doc d;
        CU_ASSERT_EQUAL(frk_json_scan(&d, bad[i], strlen(bad[i])), -1);
        frk_json_free(&d);
    }
    /* json-c reads raw control characters and comments; scan_any reads them too */
    char *w = rewrite("{\"a\": \"x\ty\" /* note */}");
    ASSERT_STR(w, "{\"a\":\"x\\ty\"}");
    free(w);
    frk_json_doc d;
    char err[200] = "";
    CU_ASSERT_EQUAL(frk_json_scan_any(&d, "{\"a\":", 5, err, sizeof err), -1);
    CU_ASSERT(err[0] != '\0');
    frk_json_free(&d);
}

static void test_json_write(void)
{
    frk_buf b = {0};
    frk_buf_lit(&b, "{\"s\":");
    frk_json_put_string(&b, "q\"b\\s/\n\x01\xc3\xa9", 10);
    frk_buf_lit(&b, ",\"nul\":");
    frk_json_put_string(&b, "a\0b", 3);
    frk_buf_lit(&b, ",\"c\":");
    frk_json_put_cstr(&b, NULL);
    frk_buf_lit(&b, ",\"i\":[");
    frk_json_put_int64(&b, 0);
    frk_buf_lit(&b, ",");
    frk_json_put_int64(&b, INT64_MIN);
    frk_buf_lit(&b, ",");
    frk_json_put_int64(&b, INT64_MAX);
    frk_buf_lit(&b, "]}");
    ASSERT_STR(b.data, "{\"s\":\"q\\\"b\\\\s/\\n\\u0001\xc3\xa9\",\"nul\":\"a\\u0000b\",\"c\":null,"
                       "\"i\":[0,-9223372036854775808,9223372036854775807]}");
    CU_ASSERT_EQUAL(b.oom, 0);
    frk_buf_free(&b);
    /* scanned values written back as json-c writes them */
    static const char *const cases[][2] = {
        {"{ \"a\" : [ 1 , 2.50 , \"\\/x\" ] }", "{\"a\":[1,2.50,\"/x\"]}"},
        {"{\"k\":1,\"j\":2,\"k\":3}", "{\"k\":3,\"j\":2}"},
        {"\"\\u00e9\"", "\"\xc3\xa9\""},
        {"[true,false,null,-0.0e1]", "[true,false,null,-0.0e1]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *w = rewrite(cases[i][0]);
        ASSERT_STR(w, cases[i][1]);
        free(w);
    }
    frk_json_doc d;
    CU_ASSERT_EQUAL_FATAL(frk_json_scan(&d, "{}", 2), 0);
    frk_buf n = {0};
    frk_json_put_value_or_null(&n, &d, frk_json_member(&d, 0, "x"));
    ASSERT_STR(n.data, "null");
    frk_buf_free(&n);
    frk_json_free(&d);
}

/* ---- SSE ------------------------------------------------------------------------------ */

/* The events of a stream fed in pieces of `step` bytes, as "event|data;" lines. */
static void sse_events(const char *stream, size_t step, frk_buf *got)
{
    frk_buf pending = {0}, data = {0};
    size_t n = strlen(stream);
    for (size_t at = 0; at < n; at += step) {
        frk_buf_append(&pending, stream + at, at + step <= n ? step : n - at);
        const char *pos = pending.data, *end = pos + pending.len;
        char event[16];
        while (frk_sse_next(&pos, end, event, sizeof event, &data) > 0) {
            frk_buf_append(got, event, strlen(event));
            frk_buf_lit(got, "|");
            frk_buf_append(got, data.data, data.len);
            frk_buf_lit(got, ";");
        }
        size_t used = (size_t)(pos - pending.data);
        memmove(pending.data, pos, pending.len - used);
        pending.len -= used;
    }
    frk_buf_free(&pending);
    frk_buf_free(&data);
}

static void test_sse(void)
{
    const char *stream = ": a comment\r\n"
                         "data: {\"a\":1}\r\n\r\n"
                         "event: delta\n"
                         "data: one\n"
                         "data:two\n"
                         "id: 7\n\n"
                         "event: a-very-long-event-name\ndata: [DONE]\n\n"
                         "data: unfinished";
    const char *want =
        "|{\"a\":1};delta|one\ntwo;a-very-long-eve|[DONE];"; /* the name cut to 15 bytes */
    /* the same events whatever the pieces the bytes arrive in */
    for (size_t step = 1; step <= strlen(stream); step++) {
        frk_buf got = {0};
        sse_events(stream, step, &got);
        ASSERT_STR(got.data, want);
        frk_buf_free(&got);
    }
}

/* ---- Retry-After and HTTP-dates --------------------------------------------------------- */

#define NOW_US (784111777LL * 1000000) /* Sun, 06 Nov 1994 08:49:37 GMT */

static void test_retry_after(void)
{
    int64_t s = 0, us = -1;
    CU_ASSERT_EQUAL(frk_http_date("Sun, 06 Nov 1994 08:49:37 GMT", 29, &s), 0);
    CU_ASSERT_EQUAL(s, 784111777);
    CU_ASSERT_EQUAL(frk_http_date("Sunday, 06-Nov-94 08:49:37 GMT", 30, &s), -1); /* RFC 850 */
    CU_ASSERT_EQUAL(frk_http_date("Sun, 06 Foo 1994 08:49:37 GMT", 29, &s), -1);

    CU_ASSERT_EQUAL(frk_retry_after(" 120 ", 5, NOW_US, &us), 0);
    CU_ASSERT_EQUAL(us, 120000000);
    CU_ASSERT_EQUAL(frk_retry_after("1.5", 3, NOW_US, &us), 0);
    CU_ASSERT_EQUAL(us, 1500000);
    CU_ASSERT_EQUAL(frk_retry_after("99999999", 8, NOW_US, &us), 0);
    CU_ASSERT_EQUAL(us, FRK_RETRY_AFTER_MAX_US);
    /* a date, measured from the injected now: 90 s later, earlier (0), never the wall clock */
    CU_ASSERT_EQUAL(frk_retry_after("Sun, 06 Nov 1994 08:51:07 GMT", 29, NOW_US, &us), 0);
    CU_ASSERT_EQUAL(us, 90000000);
    CU_ASSERT_EQUAL(frk_retry_after("Sun, 06 Nov 1994 08:51:07 GMT", 29, NOW_US + 30000000, &us),
                    0);
    CU_ASSERT_EQUAL(us, 60000000);
    CU_ASSERT_EQUAL(frk_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", 29, NOW_US, &us), 0);
    CU_ASSERT_EQUAL(us, 0);
    CU_ASSERT_EQUAL(frk_retry_after("soon", 4, NOW_US, &us), -1);
    CU_ASSERT_EQUAL(frk_retry_after("12s", 3, NOW_US, &us), -1);
    CU_ASSERT_EQUAL(frk_retry_after("", 0, NOW_US, &us), -1);

    const char *hdrs = "HTTP/1.1 100 Continue\r\nRetry-After: 1\r\n\r\n"
                       "HTTP/1.1 429 Too Many Requests\r\nretry-after:   7\r\nX: y\r\n\r\n";
    const char *v;
    size_t n;
    CU_ASSERT_EQUAL(frk_http_header(hdrs, strlen(hdrs), "Retry-After", &v, &n), 1);
    CU_ASSERT(n == 1 && v[0] == '7');
    CU_ASSERT_EQUAL(frk_http_header(hdrs, strlen(hdrs), "Missing", &v, &n), 0);
}

/* A host whose clock is a counter: frk_retry_after_response reads it through the table. */
static int clock_reads;

static int64_t fake_clock(fr_call *call)
{
    (void)call;
    clock_reads++;
    return NOW_US;
}

static void test_retry_after_response(void)
{
    fr_host_api host;
    memset(&host, 0, sizeof host);
    host.clock_us = fake_clock;
    fr_http_response resp;
    memset(&resp, 0, sizeof resp);
    resp.status = 503;
    int64_t us = -1;
    resp.headers = "HTTP/1.1 503 x\r\nRetry-After: Sun, 06 Nov 1994 08:50:37 GMT\r\n\r\n";
    resp.headers_len = strlen(resp.headers);
    clock_reads = 0;
    CU_ASSERT_EQUAL(frk_retry_after_response(&host, NULL, &resp, &us), 0);
    CU_ASSERT_EQUAL(us, 60000000);
    CU_ASSERT_EQUAL(clock_reads, 1);
    resp.headers = "HTTP/1.1 429 x\r\nRetry-After: 3\r\n\r\n";
    resp.headers_len = strlen(resp.headers);
    clock_reads = 0;
    CU_ASSERT_EQUAL(frk_retry_after_response(&host, NULL, &resp, &us), 0);
    CU_ASSERT_EQUAL(us, 3000000);
    CU_ASSERT_EQUAL(clock_reads, 0); /* delta-seconds need no clock */
    resp.headers = "HTTP/1.1 429 x\r\n\r\n";
    resp.headers_len = strlen(resp.headers);
    CU_ASSERT_EQUAL(frk_retry_after_response(&host, NULL, &resp, &us), -1);
}

/* ---- classification --------------------------------------------------------------------- */

static void test_http_status(void)
{
    static const struct {
        int http;
        fr_status st;
    } cases[] = {
        {200, FR_OK},
        {302, FR_OK},
        {0, FR_OK},
        {400, FR_E_BAD_REQUEST},
        {401, FR_E_AUTH},
        {403, FR_E_AUTH},
        {404, FR_E_BAD_REQUEST},
        {408, FR_E_REQUEST_TIMEOUT},
        {409, FR_E_BAD_REQUEST},
        {413, FR_E_BAD_REQUEST},
        {422, FR_E_BAD_REQUEST},
        {429, FR_E_RATE_LIMITED},
        {500, FR_E_UNAVAILABLE},
        {502, FR_E_UNAVAILABLE},
        {503, FR_E_OVERLOADED},
        {504, FR_E_UNAVAILABLE},
        {529, FR_E_OVERLOADED},
        {599, FR_E_UNAVAILABLE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fr_status st = frk_http_status(cases[i].http);
        if (st != cases[i].st)
            fprintf(stderr, "\nHTTP %d: %d, want %d\n", cases[i].http, st, cases[i].st);
        CU_ASSERT_EQUAL(st, cases[i].st);
    }
    /* what the engine does with them: a 429 is retried but spares the breaker, a 503
     * counts toward it, a 400 is not retried, a 408 is retried and spares the breaker */
    CU_ASSERT(frk_status_retried(frk_http_status(429)));
    CU_ASSERT(!frk_status_counts_for_breaker(frk_http_status(429)));
    CU_ASSERT(frk_status_retried(frk_http_status(503)));
    CU_ASSERT(frk_status_counts_for_breaker(frk_http_status(503)));
    CU_ASSERT(!frk_status_retried(frk_http_status(400)));
    CU_ASSERT(frk_status_retried(frk_http_status(408)));
    CU_ASSERT(!frk_status_counts_for_breaker(frk_http_status(408)));
}

/* The kit answers as the host library does, for every status and class. */
static void test_status_tables_match_host(void)
{
    static const fr_status all[] = {
#define X_(name, value, cls, brk, text) value,
        FR_STATUS_LIST(X_)
#undef X_
        - 999};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        CU_ASSERT_EQUAL(frk_status_retried(all[i]), fr_status_retried(all[i]));
        CU_ASSERT_EQUAL(frk_status_counts_for_breaker(all[i]),
                        fr_status_counts_for_breaker(all[i]));
        if (all[i] != -999)
            ASSERT_STR(frk_status_name(all[i]), fr_status_name(all[i]));
    }
    ASSERT_STR(frk_status_name(-999), "UNKNOWN");
    for (int c = 0; c < FR_CLASS_COUNT_; c++) {
        fr_status st = 1;
        CU_ASSERT_EQUAL(frk_class_status(fr_class_name((fr_error_class)c), &st), 0);
        CU_ASSERT_EQUAL(st, fr_class_status((fr_error_class)c));
    }
    fr_status st = 1;
    CU_ASSERT_EQUAL(frk_class_status("no_such_class", &st), -1);
    CU_ASSERT_EQUAL(frk_class_status(NULL, &st), -1);
    CU_ASSERT_EQUAL(st, 1);
    char names[512];
    frk_class_names(names, sizeof names);
    ASSERT_CONTAINS(names, "none, timeout, rate_limited");
    frk_class_names(names, 8);
    CU_ASSERT(strlen(names) < 8);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("kit", NULL, NULL);
    CU_add_test(s, "growable buffer", test_buf);
    CU_add_test(s, "JSON scanner: reading", test_json_scan_read);
    CU_add_test(s, "JSON scanner: strict and lenient", test_json_strict_and_lenient);
    CU_add_test(s, "JSON writer", test_json_write);
    CU_add_test(s, "SSE parser, in pieces of every size", test_sse);
    CU_add_test(s, "Retry-After and HTTP-dates with an injected now", test_retry_after);
    CU_add_test(s, "Retry-After of a response, from the host clock", test_retry_after_response);
    CU_add_test(s, "classification by HTTP status", test_http_status);
    CU_add_test(s, "status tables match the host's", test_status_tables_match_host);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
