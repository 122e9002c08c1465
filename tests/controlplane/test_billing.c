/* Billing math: half-even rounding per line, rate-card changes mid-month, large
 * quantities without overflow, CSV and JSON invoices that agree, calls with unknown
 * usage, calendar parsing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <json-c/json.h>

#include "controlplane/billing.h"
#include "base/csv.h"
#include "fr_test.h"

#define USD 10000 /* micro-units per cent */

static int64_t amount(int64_t q, int64_t price, int64_t per)
{
    int64_t a = -1;
    CU_ASSERT_EQUAL_FATAL(fr__bill_amount(q, price, per, USD, &a), FR_OK);
    return a;
}

static void test_half_even(void)
{
    static const struct {
        int64_t qty, price, per, want;
    } cases[] = {
        {5000, 1, 1, 0},                     /* 0.5 cent -> 0 (even) */
        {15000, 1, 1, 20000},                /* 1.5 cents -> 2 */
        {25000, 1, 1, 20000},                /* 2.5 cents -> 2 */
        {25001, 1, 1, 30000},                /* just above the tie -> 3 */
        {24999, 1, 1, 20000},                /* just below -> 2 */
        {35000, 1, 1, 40000},                /* 3.5 -> 4 */
        {1, 15000000, 1000000, 0},           /* one token at 15 USD/M = 0.0015 cents */
        {333333, 3000000, 1000000, 1000000}, /* 99.9999 cents -> 1.00 USD */
        {500, 10000000, 1000000, 0},         /* 5000 micro = half a cent -> 0 */
        {1500, 10000000, 1000000, 20000},    /* 1.5 cents -> 2 */
        {0, 123456, 1, 0},
        {7, 0, 1, 0},             /* explicit zero price */
        {3, 1234567, 1, 3700000}, /* 3.703701 USD -> 3.70 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t a = amount(cases[i].qty, cases[i].price, cases[i].per);
        if (a != cases[i].want)
            fprintf(stderr, "case %zu: got %lld want %lld\n", i, (long long)a,
                    (long long)cases[i].want);
        CU_ASSERT_EQUAL(a, cases[i].want);
    }
    /* The rounding primitive itself, including exact ties on both parities. */
    CU_ASSERT_EQUAL(fr__div_round_half_even(1, 2), 0);
    CU_ASSERT_EQUAL(fr__div_round_half_even(3, 2), 2);
    CU_ASSERT_EQUAL(fr__div_round_half_even(5, 2), 2);
    CU_ASSERT_EQUAL(fr__div_round_half_even(7, 2), 4);
    CU_ASSERT_EQUAL(fr__div_round_half_even(10, 4), 2);
    CU_ASSERT_EQUAL(fr__div_round_half_even(11, 4), 3);
    /* Yen: the minor unit is one whole yen. */
    int64_t a;
    CU_ASSERT_EQUAL(fr__bill_amount(3, 500000, 1, 1000000, &a), FR_OK);
    CU_ASSERT_EQUAL(a, 2000000); /* 1.5 yen -> 2 */
    /* Negative inputs are refused. */
    CU_ASSERT_EQUAL(fr__bill_amount(-1, 1, 1, USD, &a), FR_E_INVALID);
    CU_ASSERT_EQUAL(fr__bill_amount(1, -1, 1, USD, &a), FR_E_INVALID);
}

static void test_large(void)
{
    /* 1e15 tokens at 100 USD per million: 1e17 micro-units (1e11 USD), exact. */
    CU_ASSERT_EQUAL(amount(1000000000000000LL, 100000000, 1000000), 100000000000000000LL);
    /* INT64_MAX tokens at 1 micro per million: INT64_MAX / 1e6 micro, rounded to cents. */
    int64_t want =
        (INT64_MAX / 1000000 + 5000) / 10000 * 10000; /* 9223372036854.775807 -> ...0000 */
    CU_ASSERT_EQUAL(amount(INT64_MAX, 1, 1000000), want);
    /* A product far beyond 64 bits that still fits once divided. */
    CU_ASSERT_EQUAL(amount(4000000000000LL, 2000000000LL, 1000000), 8000000000000000LL);
    /* Beyond INT64_MAX micro-units: refused, never wrapped. */
    int64_t a;
    CU_ASSERT_EQUAL(fr__bill_amount(INT64_MAX, INT64_MAX, 1, USD, &a), FR_E_INVALID);
    CU_ASSERT_EQUAL(fr__bill_amount(INT64_MAX / 2, 3, 1, USD, &a), FR_E_INVALID);

    /* The invoice total overflowing is refused too. */
    fr_price p = {.model = "*", .price = {0, 0, 4000000000000000000LL}};
    fr_rate_card card = {
        .version = 1, .effective_day = 0, .currency = "USD", .prices = &p, .n_prices = 1};
    fr_usage_agg u[] = {{.day = 1, .model = "a", .qty = {0, 0, 2}},
                        {.day = 1, .model = "b", .qty = {0, 0, 2}}};
    fr_invoice inv;
    char err[200];
    CU_ASSERT_EQUAL(fr__bill_invoice(&card, 1, u, 1, &inv, err, sizeof err), FR_OK);
    CU_ASSERT_EQUAL(inv.total, 8000000000000000000LL);
    fr__invoice_clear(&inv);
    CU_ASSERT_EQUAL(fr__bill_invoice(&card, 1, u, 2, &inv, err, sizeof err), FR_E_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "overflow"));
    /* Quantities summed across days overflow: refused. */
    fr_usage_agg big[] = {{.day = 1, .model = "a", .qty = {INT64_MAX, 0, 0}},
                          {.day = 2, .model = "a", .qty = {1, 0, 0}}};
    CU_ASSERT_EQUAL(fr__bill_invoice(&card, 1, big, 2, &inv, err, sizeof err), FR_E_INVALID);
}

static int32_t day(const char *s)
{
    int32_t d = 0;
    CU_ASSERT_EQUAL_FATAL(fr__date_parse(s, &d), 0);
    return d;
}

static void test_mid_month_change(void)
{
    fr_price p1[] = {{.model = "gpt", .price = {1000000, 2000000, 0}},
                     {.model = "*", .price = {0, 0, 1000}}};
    fr_price p2[] = {{.model = "gpt", .price = {3000000, 2000000, 0}},
                     {.model = "*", .price = {0, 0, 2000}}};
    fr_price p3[] = {{.model = "gpt", .price = {9, 9, 9}}, {.model = "*", .price = {9, 9, 9}}};
    fr_rate_card cards[] = {
        {.version = 1,
         .effective_day = day("2024-01-01"),
         .currency = "USD",
         .prices = p1,
         .n_prices = 2},
        {.version = 2,
         .effective_day = day("2024-01-15"),
         .currency = "USD",
         .prices = p2,
         .n_prices = 2},
        /* Same day as version 2 but older: version 2 wins on 2024-01-15. */
        {.version = 0,
         .effective_day = day("2024-01-15"),
         .currency = "USD",
         .prices = p3,
         .n_prices = 2},
    };
    fr_usage_agg u[] = {
        {.day = day("2024-01-10"), .model = "gpt", .qty = {400000, 100000, 0}},
        {.day = day("2024-01-14"), .model = "gpt", .qty = {100000, 0, 0}},
        {.day = day("2024-01-14"), .model = "", .qty = {0, 0, 3}},
        {.day = day("2024-01-15"), .model = "gpt", .qty = {1000000, 0, 0}},
        {.day = day("2024-01-31"), .model = "", .qty = {0, 0, 7}},
    };
    CU_ASSERT_EQUAL(fr__bill_card_for_day(cards, 3, day("2024-01-14"))->version, 1);
    CU_ASSERT_EQUAL(fr__bill_card_for_day(cards, 3, day("2024-01-15"))->version, 2);
    CU_ASSERT_PTR_NULL(fr__bill_card_for_day(cards, 3, day("2023-12-31")));
    fr_invoice inv;
    char err[200];
    CU_ASSERT_EQUAL_FATAL(fr__bill_invoice(cards, 3, u, 5, &inv, err, sizeof err), FR_OK);
    /* v1 "" runs 3 @1000 = 0.003 USD -> 0; v1 gpt input 500k @1 USD/M = 0.50; v1 gpt
     * output 100k @2 USD/M = 0.20; v2 "" runs 7 @2000 = 0.014 -> 0.01; v2 gpt input 1M
     * @3 USD/M = 3.00. */
    CU_ASSERT_EQUAL_FATAL(inv.n_lines, 5);
    static const struct {
        int64_t v;
        const char *model;
        int kind;
        int64_t qty, price, amount;
    } want[] = {
        {1, "", FR_BILL_RUNS, 3, 1000, 0},
        {1, "gpt", FR_BILL_INPUT, 500000, 1000000, 500000},
        {1, "gpt", FR_BILL_OUTPUT, 100000, 2000000, 200000},
        {2, "", FR_BILL_RUNS, 7, 2000, 10000},
        {2, "gpt", FR_BILL_INPUT, 1000000, 3000000, 3000000},
    };
    for (size_t i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(inv.lines[i].card_version, want[i].v);
        CU_ASSERT_STRING_EQUAL(inv.lines[i].model, want[i].model);
        CU_ASSERT_EQUAL(inv.lines[i].kind, want[i].kind);
        CU_ASSERT_EQUAL(inv.lines[i].quantity, want[i].qty);
        CU_ASSERT_EQUAL(inv.lines[i].unit_price, want[i].price);
        CU_ASSERT_EQUAL(inv.lines[i].amount, want[i].amount);
    }
    CU_ASSERT_EQUAL(inv.total, 3710000);
    fr__invoice_clear(&inv);

    /* Usage before the first card, or a model without price and no "*": errors. */
    fr_usage_agg early[] = {{.day = day("2023-12-31"), .model = "gpt", .qty = {1, 0, 0}}};
    CU_ASSERT_EQUAL(fr__bill_invoice(cards, 3, early, 1, &inv, err, sizeof err), FR_E_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no rate card"));
    fr_rate_card only = {
        .version = 5, .effective_day = 0, .currency = "USD", .prices = p1, .n_prices = 1};
    fr_usage_agg other[] = {{.day = day("2024-02-01"), .model = "claude", .qty = {1, 0, 0}}};
    CU_ASSERT_EQUAL(fr__bill_invoice(&only, 1, other, 1, &inv, err, sizeof err), FR_E_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "claude"));
}

static void test_total_is_sum_of_rounded_lines(void)
{
    /* Two lines of half a cent each: each rounds to 0, so the total is 0, not 1 cent. */
    fr_price p = {.model = "*", .price = {0, 0, 5000}};
    fr_rate_card card = {
        .version = 1, .effective_day = 0, .currency = "USD", .prices = &p, .n_prices = 1};
    fr_usage_agg u[] = {{.day = 3, .model = "a", .qty = {0, 0, 1}},
                        {.day = 3, .model = "b", .qty = {0, 0, 1}}};
    fr_invoice inv;
    char err[100];
    CU_ASSERT_EQUAL_FATAL(fr__bill_invoice(&card, 1, u, 2, &inv, err, sizeof err), FR_OK);
    CU_ASSERT_EQUAL(inv.n_lines, 2);
    CU_ASSERT_EQUAL(inv.total, 0);
    fr__invoice_clear(&inv);
    /* Three of them on the same model merge into one line of 1.5 cents -> 2 cents. */
    fr_usage_agg same[] = {{.day = 3, .model = "a", .qty = {0, 0, 1}},
                           {.day = 4, .model = "a", .qty = {0, 0, 1}},
                           {.day = 5, .model = "a", .qty = {0, 0, 1}}};
    CU_ASSERT_EQUAL_FATAL(fr__bill_invoice(&card, 1, same, 3, &inv, err, sizeof err), FR_OK);
    CU_ASSERT_EQUAL(inv.n_lines, 1);
    CU_ASSERT_EQUAL(inv.total, 20000);
    fr__invoice_clear(&inv);
}

static void test_unknown_usage_calls(void)
{
    /* Calls whose provider reported no usage need no card and no price: one line per
     * model, amount 0, after the priced lines, whatever the day. */
    fr_invoice inv;
    char err[100];
    fr_usage_agg only[] = {{.day = 3, .model = "m", .unknown_calls = 2},
                           {.day = 4, .model = "m", .unknown_calls = 1}};
    CU_ASSERT_EQUAL_FATAL(fr__bill_invoice(NULL, 0, only, 2, &inv, err, sizeof err), FR_OK);
    CU_ASSERT_EQUAL_FATAL(inv.n_lines, 1);
    CU_ASSERT_EQUAL(inv.lines[0].kind, FR_BILL_UNKNOWN_USAGE);
    CU_ASSERT_EQUAL(inv.lines[0].quantity, 3);
    CU_ASSERT_EQUAL(inv.lines[0].amount, 0);
    CU_ASSERT_EQUAL(inv.total, 0);
    snprintf(inv.tenant, sizeof inv.tenant, "acme");
    snprintf(inv.period, sizeof inv.period, "1970-01");
    char *js = fr__invoice_json(&inv), *csv = fr__invoice_csv(&inv);
    CU_ASSERT_STRING_EQUAL(js, "{\"tenant_id\":\"acme\",\"period\":\"1970-01\",\"status\":"
                               "\"open\",\"currency\":\"USD\",\"lines\":[{\"rate_card_version\":"
                               "null,\"model\":\"m\",\"kind\":\"unknown_usage_calls\",\"quantity\":"
                               "3,\"unit\":\"call\",\"unit_price_micros\":0,\"amount_micros\":0,"
                               "\"amount\":\"0.00\"}],\"total_micros\":0,\"total\":\"0.00\"}");
    CU_ASSERT_PTR_NOT_NULL(strstr(csv,
                                  "\r\nacme,1970-01,open,USD,,m,unknown_usage_calls,3,call,0,0,"
                                  "0.00\r\n"));
    free(js);
    free(csv);
    fr__invoice_clear(&inv);

    /* Beside priced usage: last, and the total is the priced lines'. */
    fr_price p = {.model = "*", .price = {1000000, 0, 0}};
    fr_rate_card card = {
        .version = 1, .effective_day = 0, .currency = "USD", .prices = &p, .n_prices = 1};
    fr_usage_agg mixed[] = {{.day = 3, .model = "z", .qty = {0, 0, 0}, .unknown_calls = 4},
                            {.day = 3, .model = "a", .qty = {20000, 0, 0}, .unknown_calls = 1}};
    CU_ASSERT_EQUAL_FATAL(fr__bill_invoice(&card, 1, mixed, 2, &inv, err, sizeof err), FR_OK);
    CU_ASSERT_EQUAL_FATAL(inv.n_lines, 3);
    CU_ASSERT_EQUAL(inv.lines[0].kind, FR_BILL_INPUT);
    CU_ASSERT_STRING_EQUAL(inv.lines[1].model, "a");
    CU_ASSERT_EQUAL(inv.lines[1].kind, FR_BILL_UNKNOWN_USAGE);
    CU_ASSERT_EQUAL(inv.lines[1].quantity, 1);
    CU_ASSERT_STRING_EQUAL(inv.lines[2].model, "z");
    CU_ASSERT_EQUAL(inv.lines[2].quantity, 4);
    CU_ASSERT_EQUAL(inv.total, 20000); /* 20000 tokens at 1 USD per million: 2 cents */
    fr__invoice_clear(&inv);
}

/* Splits one CSV record (RFC 4180) into fields; returns the count. */
static int csv_fields(const char **p, char f[16][160])
{
    int n = 0;
    size_t len = 0;
    int quoted = 0;
    memset(f, 0, 16 * 160);
    for (;; (*p)++) {
        char ch = **p;
        if (quoted) {
            if (ch == '"' && (*p)[1] == '"') {
                f[n][len++] = '"';
                (*p)++;
            } else if (ch == '"') {
                quoted = 0;
            } else {
                f[n][len++] = ch;
            }
            continue;
        }
        if (ch == '"') {
            quoted = 1;
        } else if (ch == ',') {
            n++;
            len = 0;
        } else if (ch == '\r' && (*p)[1] == '\n') {
            *p += 2;
            return n + 1;
        } else if (ch == '\0') {
            return len || n ? n + 1 : 0;
        } else {
            f[n][len++] = ch;
        }
    }
}

static void test_csv_json_agree(void)
{
    fr_price p[] = {{.model = "we,ird \"model\"", .price = {2500000, 10000000, 0}},
                    {.model = "*", .price = {0, 0, 1234}}};
    fr_rate_card card = {.version = 4,
                         .effective_day = day("2024-03-01"),
                         .currency = "USD",
                         .prices = p,
                         .n_prices = 2};
    fr_usage_agg u[] = {
        {.day = day("2024-03-02"), .model = "we,ird \"model\"", .qty = {123457, 98765, 0}},
        {.day = day("2024-03-09"), .model = "", .qty = {0, 0, 4321}}};
    fr_invoice inv;
    char err[100];
    CU_ASSERT_EQUAL_FATAL(fr__bill_invoice(&card, 1, u, 2, &inv, err, sizeof err), FR_OK);
    snprintf(inv.tenant, sizeof inv.tenant, "acme");
    snprintf(inv.period, sizeof inv.period, "2024-03");
    char *js = fr__invoice_json(&inv), *csv = fr__invoice_csv(&inv);
    CU_ASSERT_PTR_NOT_NULL_FATAL(js);
    CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
    json_object *o = json_tokener_parse(js), *lines, *v;
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_FATAL(json_object_object_get_ex(o, "lines", &lines));
    const char *cp = csv;
    char f[16][160];
    CU_ASSERT_EQUAL(csv_fields(&cp, f), 12); /* header */
    CU_ASSERT_STRING_EQUAL(f[10], "amount_micros");
    size_t n = json_object_array_length(lines);
    CU_ASSERT_EQUAL(n, 3);
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *l = json_object_array_get_idx(lines, i);
        CU_ASSERT_EQUAL_FATAL(csv_fields(&cp, f), 12);
        CU_ASSERT_STRING_EQUAL(f[0], "acme");
        CU_ASSERT_STRING_EQUAL(f[1], "2024-03");
        json_object_object_get_ex(l, "model", &v);
        CU_ASSERT_STRING_EQUAL(f[5], json_object_get_string(v));
        json_object_object_get_ex(l, "kind", &v);
        CU_ASSERT_STRING_EQUAL(f[6], json_object_get_string(v));
        json_object_object_get_ex(l, "quantity", &v);
        CU_ASSERT_EQUAL(atoll(f[7]), json_object_get_int64(v));
        json_object_object_get_ex(l, "unit_price_micros", &v);
        CU_ASSERT_EQUAL(atoll(f[9]), json_object_get_int64(v));
        json_object_object_get_ex(l, "amount_micros", &v);
        CU_ASSERT_EQUAL(atoll(f[10]), json_object_get_int64(v));
        sum += json_object_get_int64(v);
        json_object_object_get_ex(l, "amount", &v);
        CU_ASSERT_STRING_EQUAL(f[11], json_object_get_string(v));
    }
    CU_ASSERT_EQUAL_FATAL(csv_fields(&cp, f), 12); /* total row */
    CU_ASSERT_STRING_EQUAL(f[6], "total");
    json_object_object_get_ex(o, "total_micros", &v);
    CU_ASSERT_EQUAL(atoll(f[10]), json_object_get_int64(v));
    CU_ASSERT_EQUAL(sum, json_object_get_int64(v));
    json_object_object_get_ex(o, "total", &v);
    CU_ASSERT_STRING_EQUAL(f[11], json_object_get_string(v));
    CU_ASSERT_EQUAL(csv_fields(&cp, f), 0);
    /* 123457 in @2.5/M = 0.3086425 -> 0.31; 98765 out @10/M = 0.98765 -> 0.99;
     * 4321 runs @0.001234 = 5.332114 -> 5.33. */
    CU_ASSERT_EQUAL(sum, 310000 + 990000 + 5330000);
    /* Bit for bit: the same invoice renders the same bytes. */
    char *js2 = fr__invoice_json(&inv), *csv2 = fr__invoice_csv(&inv);
    CU_ASSERT_STRING_EQUAL(js, js2);
    CU_ASSERT_STRING_EQUAL(csv, csv2);
    free(js2);
    free(csv2);
    json_object_put(o);
    free(js);
    free(csv);
    fr__invoice_clear(&inv);
}

static void test_calendar(void)
{
    int32_t a, b;
    CU_ASSERT_EQUAL(fr__period_parse("2024-02", &a, &b), 0);
    CU_ASSERT_EQUAL(b - a, 29); /* leap year */
    CU_ASSERT_EQUAL(fr__period_parse("2023-12", &a, &b), 0);
    CU_ASSERT_EQUAL(b, day("2024-01-01"));
    CU_ASSERT_EQUAL(fr__period_parse("2024-13", &a, &b), -1);
    CU_ASSERT_EQUAL(fr__period_parse("2024-1", &a, &b), -1);
    CU_ASSERT_EQUAL(fr__date_parse("2023-02-29", &a), -1);
    CU_ASSERT_EQUAL(day("1970-01-01"), 0);
    int64_t t;
    CU_ASSERT_EQUAL(fr__rfc3339_parse("2024-05-01T12:00:00Z", &t), 0);
    CU_ASSERT_EQUAL(t, 1714564800);
    CU_ASSERT_EQUAL(fr__rfc3339_parse("2024-05-01T14:30:00.123+02:30", &t), 0);
    CU_ASSERT_EQUAL(t, 1714564800);
    CU_ASSERT_EQUAL(fr__rfc3339_parse("2024-05-01 12:00:00", &t), -1);
    CU_ASSERT_EQUAL(fr__rfc3339_parse("2024-05-01T12:00:00", &t), -1);
    char out[21];
    fr__rfc3339_format(1714564800, out);
    CU_ASSERT_STRING_EQUAL(out, "2024-05-01T12:00:00Z");
    for (int32_t d = -1000; d < 200000; d += 37) {
        int y;
        unsigned m, dd;
        fr__civil_from_days(d, &y, &m, &dd);
        CU_ASSERT_EQUAL(fr__days_from_civil(y, m, dd), d);
    }
    char money[48];
    fr__money_format(3710000, USD, money, sizeof money);
    CU_ASSERT_STRING_EQUAL(money, "3.71");
    fr__money_format(50000, USD, money, sizeof money);
    CU_ASSERT_STRING_EQUAL(money, "0.05");
    fr__money_format(2000000, 1000000, money, sizeof money);
    CU_ASSERT_STRING_EQUAL(money, "2");
    CU_ASSERT_EQUAL(fr__currency_minor_micros("USD"), 10000);
    CU_ASSERT_EQUAL(fr__currency_minor_micros("XYZ"), 0);
}

/* OWASP CSV injection: a cell a spreadsheet would run as a formula is prefixed with a
 * quote and quoted; our own numbers (negative ones included) are never altered. */
static void test_csv_formulas_neutralised(void)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"=HYPERLINK(\"http://x\",\"y\")", "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""},
        {"+1", "\"'+1\""},
        {"-2+3", "\"'-2+3\""},
        {"@SUM(A1)", "\"'@SUM(A1)\""},
        {"\tx", "\"'\tx\""},
        {"\rx", "\"'\rx\""},
        {"\xef\xbc\x9d"
         "1+1",
         "\"'\xef\xbc\x9d"
         "1+1\""}, /* full-width = */
        {"gpt-4o", "gpt-4o"},
        {"a=b", "a=b"},
        {"", ""},
        {"x,y", "\"x,y\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fr_bytebuf b = {0};
        fr__csv_cell(&b, cases[i].in);
        CU_ASSERT_STRING_EQUAL(b.data ? b.data : "", cases[i].out);
        free(b.data);
    }
    fr_bytebuf b = {0};
    fr__csv_plain(&b, "-5");
    CU_ASSERT_STRING_EQUAL(b.data, "-5");
    free(b.data);

    /* An invoice line for a model named like a formula. */
#define EVIL "=HYPERLINK(\"http://evil.example/\",\"click\")"
    fr_price p[] = {{.model = "*", .price = {1000000, 0, 0}}};
    fr_rate_card card = {.version = 1,
                         .effective_day = day("2024-03-01"),
                         .currency = "USD",
                         .prices = p,
                         .n_prices = 1};
    fr_usage_agg u[] = {{.day = day("2024-03-02"), .model = EVIL, .qty = {1000000, 0, 0}}};
    fr_invoice inv;
    char err[100];
    CU_ASSERT_EQUAL_FATAL(fr__bill_invoice(&card, 1, u, 1, &inv, err, sizeof err), FR_OK);
    snprintf(inv.tenant, sizeof inv.tenant, "@acme");
    snprintf(inv.period, sizeof inv.period, "2024-03");
    char *csv = fr__invoice_csv(&inv);
    CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
    const char *cp = csv;
    char f[16][160];
    CU_ASSERT_EQUAL(csv_fields(&cp, f), 12); /* header */
    CU_ASSERT_EQUAL_FATAL(csv_fields(&cp, f), 12);
    CU_ASSERT_STRING_EQUAL(f[0], "'@acme");
    CU_ASSERT_EQUAL(f[5][0], '\'');
    CU_ASSERT_STRING_EQUAL(f[5] + 1, EVIL);
    CU_ASSERT_STRING_EQUAL(f[10], "1000000");
    free(csv);
    fr__invoice_clear(&inv);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("billing", NULL, NULL);
    CU_add_test(s, "half-even rounding to the minor unit", test_half_even);
    CU_add_test(s, "large quantities: exact or refused, never wrapped", test_large);
    CU_add_test(s, "rate card change mid-month", test_mid_month_change);
    CU_add_test(s, "total is the sum of rounded lines", test_total_is_sum_of_rounded_lines);
    CU_add_test(s, "CSV and JSON invoices agree", test_csv_json_agree);
    CU_add_test(s, "calls with unknown usage: a line of amount 0", test_unknown_usage_calls);
    CU_add_test(s, "CSV cells are never spreadsheet formulas", test_csv_formulas_neutralised);
    CU_add_test(s, "calendar and time parsing", test_calendar);
    return fr_test_run_all();
}
