/* Billing math for the control plane: rate cards, pricing usage, invoices.  Pure
 * functions over integers, no I/O, no globals; every function is thread-safe.
 *
 * Money is int64 micro-units of the card's currency (1 USD = 1,000,000).  Prices are
 * per million input tokens, per million output tokens and per run.  An invoice line is
 * (rate card version, model, kind) with kind input_tokens, output_tokens or runs; its
 * amount is quantity x unit price (exact, in 128-bit arithmetic) rounded half-even to
 * the currency's minor unit (USD: cents = 10,000 micro-units).  The total is the sum of
 * the rounded lines.  Provider calls whose provider reported no usage are not priced
 * (their tokens are unknown): they get a line of their own per model, kind
 * unknown_usage_calls, no card version, amount 0, so that an operator sees them.
 *
 * Limits: a quantity or price is at most INT64_MAX; the exact product always fits in 128
 * bits.  A line amount or the total beyond INT64_MAX micro-units (~9.2e12 USD) is
 * refused with FR_E_INVALID ("amount overflows"), never wrapped. */
#ifndef FR_CORE_BILLING_H
#define FR_CORE_BILLING_H

#include <stddef.h>
#include <stdint.h>

#include <fluxroute/status.h>

/* The priced kinds (FR_BILL_KINDS of them, the prices of a card), then the line kind that
 * is only counted. */
enum {
    FR_BILL_INPUT = 0,
    FR_BILL_OUTPUT = 1,
    FR_BILL_RUNS = 2,
    FR_BILL_KINDS = 3,
    FR_BILL_UNKNOWN_USAGE = 3, /* calls with unknown usage: counted, amount 0 */
    FR_BILL_LINE_KINDS = 4
};

/* "input_tokens", "output_tokens", "runs", "unknown_usage_calls"; static strings. */
const char *fr__bill_kind_name(int kind);

/* Minor unit of a currency in micro-units (USD, EUR, GBP...: 10000; JPY, KRW: 1000000),
 * or 0 when the ISO 4217 code is not known. */
int64_t fr__currency_minor_micros(const char *code);

/* Rounds num/den (den > 0, num >= 0) to the nearest integer, ties to even. */
__extension__ typedef __int128 fr_i128;
fr_i128 fr__div_round_half_even(fr_i128 num, fr_i128 den);

/* A line amount: quantity x price / per (per = 1,000,000 for token prices, 1 for runs),
 * rounded half-even to a multiple of `minor` micro-units.  Returns FR_OK, or FR_E_INVALID
 * for a negative input or an amount beyond INT64_MAX. */
fr_status fr__bill_amount(int64_t quantity, int64_t price, int64_t per, int64_t minor,
                          int64_t *amount);

/* One model's prices in a rate card (micro-units).  `model` "*" matches any model. */
typedef struct fr_price {
    char model[128];
    int64_t price[FR_BILL_KINDS]; /* per 1e6 input tokens, per 1e6 output tokens, per run */
} fr_price;

typedef struct fr_rate_card {
    int64_t version;
    int32_t effective_day; /* days since 1970-01-01 (UTC) */
    char currency[4];
    fr_price *prices; /* borrowed by the billing functions */
    size_t n_prices;
} fr_rate_card;

/* Usage summed over one UTC day and one model. */
typedef struct fr_usage_agg {
    int32_t day;
    char model[128];
    int64_t qty[FR_BILL_KINDS];
    int64_t unknown_calls; /* provider calls whose provider reported no usage */
} fr_usage_agg;

typedef struct fr_invoice_line {
    int64_t card_version; /* 0 for FR_BILL_UNKNOWN_USAGE (no card prices it) */
    char model[128];
    int kind; /* FR_BILL_INPUT .. FR_BILL_UNKNOWN_USAGE */
    int64_t quantity;
    int64_t unit_price; /* micro-units per unit basis (1e6 tokens or 1 run) */
    int64_t amount;     /* micro-units, a multiple of the minor unit */
} fr_invoice_line;

typedef struct fr_invoice {
    char tenant[128];
    char period[8]; /* YYYY-MM */
    char currency[4];
    int closed;
    fr_invoice_line *lines; /* owned; sorted by card version, model, kind */
    size_t n_lines;
    int64_t total;
} fr_invoice;

/* The card in force on `day`: the greatest effective_day <= day, the highest version
 * among equals.  Returns NULL when none. */
const fr_rate_card *fr__bill_card_for_day(const fr_rate_card *cards, size_t n, int32_t day);

/* Prices usage: each aggregate by the card in force on its day, the model's prices (or
 * "*").  Zero quantities give no line.  Unknown-usage calls need no card: one line per
 * model after the priced ones, amount 0.  Fills inv->lines, currency and total (tenant,
 * period and closed are left to the caller).  Returns FR_OK, or FR_E_NOT_FOUND (usage
 * with no card or no price; FR_E_INVALID for mixed currencies or overflow), with a
 * message in err.  Free with fr__invoice_clear(). */
fr_status fr__bill_invoice(const fr_rate_card *cards, size_t n_cards, const fr_usage_agg *usage,
                           size_t n_usage, fr_invoice *inv, char *err, size_t errlen);
void fr__invoice_clear(fr_invoice *inv);

/* The invoice as JSON text / CSV text (RFC 4180).  Same figures in both.  Returns a
 * malloc'd string the caller frees, or NULL when out of memory. */
char *fr__invoice_json(const fr_invoice *inv);
char *fr__invoice_csv(const fr_invoice *inv);

/* Formats micro-units as a decimal with the currency's minor digits ("12.34"). */
void fr__money_format(int64_t micros, int64_t minor, char *out, size_t size);

/* Calendar helpers (proleptic Gregorian, UTC). */
int32_t fr__days_from_civil(int y, unsigned m, unsigned d);
void fr__civil_from_days(int32_t z, int *y, unsigned *m, unsigned *d);
/* Parses "YYYY-MM" into the first day (days since epoch) of that month and of the next.
 * Returns 0, or -1 when malformed. */
int fr__period_parse(const char *s, int32_t *first_day, int32_t *next_first_day);
/* Parses "YYYY-MM-DD".  Returns 0, or -1. */
int fr__date_parse(const char *s, int32_t *day);
/* Parses RFC 3339 (2024-05-01T12:00:00Z, fractional seconds and +hh:mm offsets
 * allowed) into Unix seconds.  Returns 0, or -1. */
int fr__rfc3339_parse(const char *s, int64_t *unix_seconds);
/* Formats Unix seconds as 2024-05-01T12:00:00Z into out[21]. */
void fr__rfc3339_format(int64_t unix_seconds, char out[21]);

#endif
