/* Billing math: integer money, half-even rounding per line, rate cards by day, invoices
 * as JSON and CSV from one structure (see billing.h for the rules and limits). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "controlplane/billing.h"
#include "base/bytebuf.h"
#include "base/csv.h"

static const char *const kind_names[FR_BILL_LINE_KINDS] = {"input_tokens", "output_tokens", "runs",
                                                           "unknown_usage_calls"};

const char *fr__bill_kind_name(int kind)
{
    return kind >= 0 && kind < FR_BILL_LINE_KINDS ? kind_names[kind] : "?";
}

int64_t fr__currency_minor_micros(const char *code)
{
    static const struct {
        const char *code;
        int64_t minor;
    } table[] = {
        {"USD", 10000}, {"EUR", 10000}, {"GBP", 10000}, {"CHF", 10000},   {"CAD", 10000},
        {"AUD", 10000}, {"CNY", 10000}, {"INR", 10000}, {"SEK", 10000},   {"NOK", 10000},
        {"DKK", 10000}, {"PLN", 10000}, {"BRL", 10000}, {"JPY", 1000000}, {"KRW", 1000000},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(code, table[i].code) == 0)
            return table[i].minor;
    return 0;
}

fr_i128 fr__div_round_half_even(fr_i128 num, fr_i128 den)
{
    fr_i128 q = num / den, r = num % den;
    if (2 * r > den || (2 * r == den && (q & 1)))
        q++;
    return q;
}

fr_status fr__bill_amount(int64_t quantity, int64_t price, int64_t per, int64_t minor,
                          int64_t *amount)
{
    if (quantity < 0 || price < 0 || per <= 0 || minor <= 0)
        return FR_E_INVALID;
    /* Both factors are below 2^63, so the exact product is below 2^126. */
    fr_i128 units = fr__div_round_half_even((fr_i128)quantity * price, (fr_i128)per * minor);
    fr_i128 micros = units * minor;
    if (micros > INT64_MAX)
        return FR_E_INVALID;
    *amount = (int64_t)micros;
    return FR_OK;
}

const fr_rate_card *fr__bill_card_for_day(const fr_rate_card *cards, size_t n, int32_t day)
{
    const fr_rate_card *best = NULL;
    for (size_t i = 0; i < n; i++) {
        const fr_rate_card *c = &cards[i];
        if (c->effective_day > day)
            continue;
        if (!best || c->effective_day > best->effective_day ||
            (c->effective_day == best->effective_day && c->version > best->version))
            best = c;
    }
    return best;
}

static const fr_price *price_for(const fr_rate_card *c, const char *model)
{
    const fr_price *star = NULL;
    for (size_t i = 0; i < c->n_prices; i++) {
        if (strcmp(c->prices[i].model, model) == 0)
            return &c->prices[i];
        if (strcmp(c->prices[i].model, "*") == 0)
            star = &c->prices[i];
    }
    return star;
}

static int line_cmp(const void *a, const void *b)
{
    const fr_invoice_line *x = a, *y = b;
    int ux = x->kind == FR_BILL_UNKNOWN_USAGE, uy = y->kind == FR_BILL_UNKNOWN_USAGE;
    if (ux != uy) /* the unpriced lines after the priced ones */
        return ux - uy;
    if (x->card_version != y->card_version)
        return x->card_version < y->card_version ? -1 : 1;
    int c = strcmp(x->model, y->model);
    if (c)
        return c;
    return x->kind - y->kind;
}

/* The line for (version, model, kind), appended when new.  NULL when out of memory. */
static fr_invoice_line *line_get(fr_invoice *inv, size_t *cap, int64_t version, const char *model,
                                 int kind, int64_t unit_price)
{
    for (size_t i = 0; i < inv->n_lines; i++) {
        fr_invoice_line *l = &inv->lines[i];
        if (l->card_version == version && l->kind == kind && strcmp(l->model, model) == 0)
            return l;
    }
    if (inv->n_lines == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        fr_invoice_line *nl = realloc(inv->lines, nc * sizeof *nl);
        if (!nl)
            return NULL;
        inv->lines = nl;
        *cap = nc;
    }
    fr_invoice_line *l = &inv->lines[inv->n_lines++];
    memset(l, 0, sizeof *l);
    l->card_version = version;
    snprintf(l->model, sizeof l->model, "%s", model);
    l->kind = kind;
    l->unit_price = unit_price;
    return l;
}

fr_status fr__bill_invoice(const fr_rate_card *cards, size_t n_cards, const fr_usage_agg *usage,
                           size_t n_usage, fr_invoice *inv, char *err, size_t errlen)
{
    size_t cap = 0;
    inv->lines = NULL;
    inv->n_lines = 0;
    inv->total = 0;
    snprintf(inv->currency, sizeof inv->currency, "USD");
    const char *currency = NULL;
    fr_status st = FR_OK;
    for (size_t u = 0; u < n_usage && st == FR_OK; u++) {
        const fr_usage_agg *a = &usage[u];
        if (a->unknown_calls) {
            fr_invoice_line *l = line_get(inv, &cap, 0, a->model, FR_BILL_UNKNOWN_USAGE, 0);
            if (!l) {
                st = FR_E_NOMEM;
                snprintf(err, errlen, "out of memory");
                break;
            }
            if (a->unknown_calls < 0 ||
                __builtin_add_overflow(l->quantity, a->unknown_calls, &l->quantity)) {
                snprintf(err, errlen, "quantity overflows for model \"%s\"", a->model);
                st = FR_E_INVALID;
                break;
            }
        }
        if (!a->qty[0] && !a->qty[1] && !a->qty[2])
            continue;
        char date[11];
        int y;
        unsigned m, d;
        fr__civil_from_days(a->day, &y, &m, &d);
        snprintf(date, sizeof date, "%04d-%02u-%02u", y, m, d);
        const fr_rate_card *c = fr__bill_card_for_day(cards, n_cards, a->day);
        if (!c) {
            snprintf(err, errlen, "usage on %s has no rate card in force", date);
            st = FR_E_NOT_FOUND;
            break;
        }
        const fr_price *p = price_for(c, a->model);
        if (!p) {
            snprintf(err, errlen, "rate card %lld has no price for model \"%s\" (used on %s)",
                     (long long)c->version, a->model, date);
            st = FR_E_NOT_FOUND;
            break;
        }
        if (currency && strcmp(currency, c->currency) != 0) {
            snprintf(err, errlen, "the period mixes currencies %s and %s", currency, c->currency);
            st = FR_E_INVALID;
            break;
        }
        currency = c->currency;
        for (int k = 0; k < FR_BILL_KINDS; k++) {
            if (!a->qty[k])
                continue;
            fr_invoice_line *l = line_get(inv, &cap, c->version, a->model, k, p->price[k]);
            if (!l) {
                st = FR_E_NOMEM;
                snprintf(err, errlen, "out of memory");
                break;
            }
            if (a->qty[k] < 0 || __builtin_add_overflow(l->quantity, a->qty[k], &l->quantity)) {
                snprintf(err, errlen, "quantity overflows for model \"%s\"", a->model);
                st = FR_E_INVALID;
                break;
            }
        }
    }
    if (currency)
        snprintf(inv->currency, sizeof inv->currency, "%s", currency);
    int64_t minor = fr__currency_minor_micros(inv->currency);
    if (st == FR_OK && minor == 0) {
        snprintf(err, errlen, "unknown currency %s", inv->currency);
        st = FR_E_INVALID;
    }
    for (size_t i = 0; i < inv->n_lines && st == FR_OK; i++) {
        fr_invoice_line *l = &inv->lines[i];
        int64_t per = l->kind == FR_BILL_RUNS ? 1 : 1000000;
        if (fr__bill_amount(l->quantity, l->unit_price, per, minor, &l->amount) != FR_OK ||
            __builtin_add_overflow(inv->total, l->amount, &inv->total)) {
            snprintf(err, errlen, "amount overflows (limit %lld micro-units)",
                     (long long)INT64_MAX);
            st = FR_E_INVALID;
        }
    }
    if (st != FR_OK) {
        fr__invoice_clear(inv);
        return st;
    }
    if (inv->n_lines)
        qsort(inv->lines, inv->n_lines, sizeof *inv->lines, line_cmp);
    return FR_OK;
}

void fr__invoice_clear(fr_invoice *inv)
{
    free(inv->lines);
    inv->lines = NULL;
    inv->n_lines = 0;
    inv->total = 0;
}

void fr__money_format(int64_t micros, int64_t minor, char *out, size_t size)
{
    int digits = 0;
    for (int64_t m = 1000000 / (minor > 0 ? minor : 1); m > 1 && digits < 6; m /= 10)
        digits++;
    uint64_t a = micros < 0 ? (uint64_t)0 - (uint64_t)micros : (uint64_t)micros;
    uint64_t whole = a / 1000000, frac = (a % 1000000) / (uint64_t)(minor > 0 ? minor : 1);
    if (digits)
        snprintf(out, size, "%s%llu.%0*llu", micros < 0 ? "-" : "", (unsigned long long)whole,
                 digits, (unsigned long long)frac);
    else
        snprintf(out, size, "%s%llu", micros < 0 ? "-" : "", (unsigned long long)whole);
}

static const char *unit_name(int kind)
{
    return kind == FR_BILL_RUNS ? "run" : kind == FR_BILL_UNKNOWN_USAGE ? "call" : "1M tokens";
}

char *fr__invoice_json(const fr_invoice *inv)
{
    int64_t minor = fr__currency_minor_micros(inv->currency);
    char money[48];
    json_object *o = json_object_new_object();
    json_object_object_add(o, "tenant_id", json_object_new_string(inv->tenant));
    json_object_object_add(o, "period", json_object_new_string(inv->period));
    json_object_object_add(o, "status", json_object_new_string(inv->closed ? "closed" : "open"));
    json_object_object_add(o, "currency", json_object_new_string(inv->currency));
    json_object *lines = json_object_new_array();
    for (size_t i = 0; i < inv->n_lines; i++) {
        const fr_invoice_line *l = &inv->lines[i];
        json_object *j = json_object_new_object();
        json_object_object_add(
            j, "rate_card_version",
            l->kind == FR_BILL_UNKNOWN_USAGE ? NULL : json_object_new_int64(l->card_version));
        json_object_object_add(j, "model", json_object_new_string(l->model));
        json_object_object_add(j, "kind", json_object_new_string(fr__bill_kind_name(l->kind)));
        json_object_object_add(j, "quantity", json_object_new_int64(l->quantity));
        json_object_object_add(j, "unit", json_object_new_string(unit_name(l->kind)));
        json_object_object_add(j, "unit_price_micros", json_object_new_int64(l->unit_price));
        json_object_object_add(j, "amount_micros", json_object_new_int64(l->amount));
        fr__money_format(l->amount, minor, money, sizeof money);
        json_object_object_add(j, "amount", json_object_new_string(money));
        json_object_array_add(lines, j);
    }
    json_object_object_add(o, "lines", lines);
    json_object_object_add(o, "total_micros", json_object_new_int64(inv->total));
    fr__money_format(inv->total, minor, money, sizeof money);
    json_object_object_add(o, "total", json_object_new_string(money));
    const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    char *out = t ? strdup(t) : NULL;
    json_object_put(o);
    return out;
}

/* One cell and its separator: text from outside (tenant, model, currency) is neutralised
 * against spreadsheet formulas; numbers and names this file made are written as they are. */
static void sb_field(fr_bytebuf *b, const char *s, int last)
{
    fr__csv_cell(b, s);
    fr__bytebuf_append(b, last ? "\r\n" : ",", last ? 2 : 1);
}

static void sb_plain(fr_bytebuf *b, const char *s, int last)
{
    fr__csv_plain(b, s);
    fr__bytebuf_append(b, last ? "\r\n" : ",", last ? 2 : 1);
}

static void sb_int(fr_bytebuf *b, int64_t v, int last)
{
    char t[32];
    snprintf(t, sizeof t, "%lld", (long long)v);
    sb_plain(b, t, last);
}

char *fr__invoice_csv(const fr_invoice *inv)
{
    int64_t minor = fr__currency_minor_micros(inv->currency);
    char money[48];
    fr_bytebuf b = {0};
    static const char header[] = "tenant_id,period,status,currency,rate_card_version,model,kind,"
                                 "quantity,unit,unit_price_micros,amount_micros,amount\r\n";
    fr__bytebuf_append(&b, header, sizeof header - 1);
    const char *status = inv->closed ? "closed" : "open";
    for (size_t i = 0; i < inv->n_lines; i++) {
        const fr_invoice_line *l = &inv->lines[i];
        sb_field(&b, inv->tenant, 0);
        sb_field(&b, inv->period, 0);
        sb_plain(&b, status, 0);
        sb_field(&b, inv->currency, 0);
        if (l->kind == FR_BILL_UNKNOWN_USAGE) /* no card prices it */
            sb_plain(&b, "", 0);
        else
            sb_int(&b, l->card_version, 0);
        sb_field(&b, l->model, 0);
        sb_plain(&b, fr__bill_kind_name(l->kind), 0);
        sb_int(&b, l->quantity, 0);
        sb_plain(&b, unit_name(l->kind), 0);
        sb_int(&b, l->unit_price, 0);
        sb_int(&b, l->amount, 0);
        fr__money_format(l->amount, minor, money, sizeof money);
        sb_plain(&b, money, 1);
    }
    /* The total row: kind "total", the other line fields empty. */
    sb_field(&b, inv->tenant, 0);
    sb_field(&b, inv->period, 0);
    sb_plain(&b, status, 0);
    sb_field(&b, inv->currency, 0);
    fr__bytebuf_append(&b, ",,total,,,,", 11);
    sb_int(&b, inv->total, 0);
    fr__money_format(inv->total, minor, money, sizeof money);
    sb_plain(&b, money, 1);
    if (b.oom) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

/* ---- calendar ------------------------------------------------------------------------ */

/* Howard Hinnant's days_from_civil / civil_from_days. */
int32_t fr__days_from_civil(int y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int32_t)doe - 719468;
}

void fr__civil_from_days(int32_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)yoe + era * 400 + (*m <= 2);
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return dm[m - 1] + (m == 2 && leap);
}

int fr__period_parse(const char *s, int32_t *first_day, int32_t *next_first_day)
{
    int y, m;
    if (strlen(s) != 7 || s[4] != '-' || digits(s, 4, &y) || digits(s + 5, 2, &m) || m < 1 ||
        m > 12 || y < 1970)
        return -1;
    *first_day = fr__days_from_civil(y, (unsigned)m, 1);
    *next_first_day =
        m == 12 ? fr__days_from_civil(y + 1, 1, 1) : fr__days_from_civil(y, (unsigned)m + 1, 1);
    return 0;
}

int fr__date_parse(const char *s, int32_t *day)
{
    int y, m, d;
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' || digits(s, 4, &y) || digits(s + 5, 2, &m) ||
        digits(s + 8, 2, &d) || y < 1970 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
        return -1;
    *day = fr__days_from_civil(y, (unsigned)m, (unsigned)d);
    return 0;
}

int fr__rfc3339_parse(const char *s, int64_t *unix_seconds)
{
    int32_t day;
    int hh, mm, ss;
    char date[11];
    if (strlen(s) < 20)
        return -1;
    memcpy(date, s, 10);
    date[10] = '\0';
    if (fr__date_parse(date, &day) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s + 11, 2, &hh) || s[13] != ':' || digits(s + 14, 2, &mm) || s[16] != ':' ||
        digits(s + 17, 2, &ss) || hh > 23 || mm > 59 || ss > 60)
        return -1;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return -1;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    int64_t offset = 0;
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
        offset = 0;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int oh, om;
        if (digits(p + 1, 2, &oh) || digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        offset = (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
    } else {
        return -1;
    }
    if (ss == 60)
        ss = 59; /* a leap second counts in the minute it ends */
    *unix_seconds = (int64_t)day * 86400 + hh * 3600 + mm * 60 + ss - offset;
    return 0;
}

void fr__rfc3339_format(int64_t t, char out[21])
{
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t rem = t - days * 86400;
    int y;
    unsigned m, d;
    fr__civil_from_days((int32_t)days, &y, &m, &d);
    /* The bounds tell the compiler each field has its fixed width. */
    snprintf(out, 21, "%04d-%02u-%02uT%02u:%02u:%02uZ", (y % 10000 + 10000) % 10000, m % 100u,
             d % 100u, (unsigned)(rem / 3600) % 24u, (unsigned)(rem / 60 % 60) % 60u,
             (unsigned)(rem % 60) % 60u);
}
