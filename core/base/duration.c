/* Go-syntax durations ("250ms", "1m30s", "1.5h"), kept in microseconds. */
#include "base/duration.h"

#include <stdio.h>
#include <string.h>

typedef struct unit_def {
    const char *name;
    uint64_t ns;
} unit_def;

/* Longest names first where one is a prefix of another ("ms" before "m"). */
static const unit_def units[] = {
    {"ns", 1ull},
    {"us", 1000ull},
    {"\xc2\xb5s", 1000ull}, /* U+00B5 micro sign */
    {"\xce\xbcs", 1000ull}, /* U+03BC Greek mu */
    {"ms", 1000000ull},
    {"s", 1000000000ull},
    {"m", 60000000000ull},
    {"h", 3600000000000ull},
    {NULL, 0},
};

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int fr__duration_parse(const char *text, int64_t *us, const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    if (!text || !*text) {
        *why = "empty";
        return -1;
    }
    const char *s = text;
    int neg = 0;
    if (*s == '-' || *s == '+') {
        neg = *s == '-';
        s++;
    }
    if (strcmp(s, "0") == 0) {
        *us = 0;
        return 0;
    }
    if (!*s) {
        *why = "invalid number";
        return -1;
    }
    /* Go's limit: the total in nanoseconds must fit an int64. */
    const uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t total = 0;
    while (*s) {
        uint64_t v = 0, frac = 0;
        double scale = 1;
        int pre = 0, post = 0, frac_over = 0;
        while (is_digit(*s)) {
            if (v > (UINT64_MAX - 9) / 10) {
                *why = "overflow";
                return -1;
            }
            v = v * 10 + (uint64_t)(*s - '0');
            s++;
            pre = 1;
        }
        if (*s == '.') {
            s++;
            while (is_digit(*s)) {
                /* Digits beyond what fits add nothing measurable: drop them. */
                if (!frac_over && frac <= (UINT64_MAX - 9) / 10 && scale < 1e18) {
                    frac = frac * 10 + (uint64_t)(*s - '0');
                    scale *= 10;
                } else {
                    frac_over = 1;
                }
                s++;
                post = 1;
            }
        }
        if (!pre && !post) {
            *why = "invalid number";
            return -1;
        }
        const char *u = s;
        while (*s && *s != '.' && !is_digit(*s))
            s++;
        size_t ulen = (size_t)(s - u);
        if (ulen == 0) {
            *why = "missing unit";
            return -1;
        }
        const unit_def *ud = NULL;
        for (const unit_def *k = units; k->name; k++) {
            if (strlen(k->name) == ulen && memcmp(k->name, u, ulen) == 0) {
                ud = k;
                break;
            }
        }
        if (!ud) {
            *why = "unknown unit";
            return -1;
        }
        if (v > limit / ud->ns) {
            *why = "overflow";
            return -1;
        }
        v *= ud->ns;
        if (frac) {
            double f = (double)frac * ((double)ud->ns / scale);
            if (f >= (double)limit) {
                *why = "overflow";
                return -1;
            }
            v += (uint64_t)f;
        }
        if (v > limit - total) {
            *why = "overflow";
            return -1;
        }
        total += v;
    }
    uint64_t t_us = total / 1000;
    *us = neg ? -(int64_t)t_us : (int64_t)t_us;
    return 0;
}

/* Writes the decimal digits of v with `prec` fractional digits (trailing zeros of the
 * fraction, and a bare point, trimmed) at the end of buf[0..w), returning the new start.
 * Mirrors Go's fmtFrac + fmtInt. */
static size_t fmt_frac(char *buf, size_t w, uint64_t v, int prec, uint64_t *rest)
{
    int print = 0;
    for (int i = 0; i < prec; i++) {
        unsigned digit = (unsigned)(v % 10);
        print = print || digit != 0;
        if (print)
            buf[--w] = (char)('0' + digit);
        v /= 10;
    }
    if (print)
        buf[--w] = '.';
    *rest = v;
    return w;
}

static size_t fmt_int(char *buf, size_t w, uint64_t v)
{
    if (v == 0) {
        buf[--w] = '0';
        return w;
    }
    while (v > 0) {
        buf[--w] = (char)('0' + v % 10);
        v /= 10;
    }
    return w;
}

char *fr__duration_format(int64_t us, char *buf, size_t size)
{
    if (!buf || size == 0)
        return buf;
    char tmp[64];
    size_t w = sizeof tmp;
    int neg = us < 0;
    uint64_t u = neg ? (uint64_t)0 - (uint64_t)us : (uint64_t)us;

    if (u < 1000000) {
        /* Below one second: "0s", "15µs", "1.5ms". */
        if (u == 0) {
            snprintf(buf, size, "0s");
            return buf;
        }
        tmp[--w] = 's';
        if (u < 1000) {
            w -= 2;
            memcpy(tmp + w, "\xc2\xb5", 2);
            w = fmt_int(tmp, w, u);
        } else {
            tmp[--w] = 'm';
            w = fmt_frac(tmp, w, u, 3, &u);
            w = fmt_int(tmp, w, u);
        }
    } else {
        tmp[--w] = 's';
        w = fmt_frac(tmp, w, u, 6, &u);
        w = fmt_int(tmp, w, u % 60);
        u /= 60;
        if (u > 0) {
            tmp[--w] = 'm';
            w = fmt_int(tmp, w, u % 60);
            u /= 60;
            if (u > 0) {
                tmp[--w] = 'h';
                w = fmt_int(tmp, w, u);
            }
        }
    }
    if (neg)
        tmp[--w] = '-';
    snprintf(buf, size, "%.*s", (int)(sizeof tmp - w), tmp + w);
    return buf;
}
