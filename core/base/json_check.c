/* JSON syntax check without building a tree: one pass, a bit stack for nesting. */
#include <stdint.h>
#include <string.h>

#include "base/json_check.h"

typedef struct cursor {
    const unsigned char *p, *end;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int is_digit(unsigned char ch)
{
    return ch >= '0' && ch <= '9';
}

static int is_hex(unsigned char ch)
{
    return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* One UTF-8 sequence starting at a byte >= 0x80 (no overlongs, no surrogates). */
static int utf8_seq(cursor *c)
{
    unsigned char b = *c->p;
    int n;
    uint32_t cp;
    if (b >= 0xc2 && b <= 0xdf) {
        n = 1;
        cp = b & 0x1f;
    } else if (b >= 0xe0 && b <= 0xef) {
        n = 2;
        cp = b & 0x0f;
    } else if (b >= 0xf0 && b <= 0xf4) {
        n = 3;
        cp = b & 0x07;
    } else {
        return 0;
    }
    if (c->end - c->p <= n)
        return 0;
    for (int i = 1; i <= n; i++) {
        if ((c->p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (c->p[i] & 0x3f);
    }
    if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    c->p += n + 1;
    return 1;
}

/* Bytes that need no attention inside a string: printable ASCII except '"' and '\\'. */
static const unsigned char plain[256] = {
#define R8(v) v, v, v, v, v, v, v, v
    R8(0), R8(0), R8(0), R8(0),                                  /* 0x00-0x1f */
    1,     1,     0,     1,     1, 1, 1, 1, R8(1), R8(1), R8(1), /* 0x20-0x3f: '"' is 0x22 */
    R8(1), R8(1), R8(1), 1,     1, 1, 1, 0, 1,     1,     1,     /* 0x40-0x5f: '\\' is 0x5c */
    R8(1), R8(1), R8(1), R8(1),                                  /* 0x60-0x7f */
#undef R8
};

static int string(cursor *c)
{
    c->p++; /* opening quote */
    while (c->p < c->end) {
        /* The common case: a run of plain ASCII. */
        const unsigned char *p = c->p, *end = c->end;
        while (p < end && plain[*p])
            p++;
        c->p = p;
        if (p >= end)
            break;
        unsigned char ch = *c->p;
        if (ch == '"') {
            c->p++;
            return 1;
        }
        if (ch < 0x20)
            return 0;
        if (ch == '\\') {
            if (++c->p >= c->end)
                return 0;
            ch = *c->p++;
            if (ch == 'u') {
                if (c->end - c->p < 4 || !is_hex(c->p[0]) || !is_hex(c->p[1]) || !is_hex(c->p[2]) ||
                    !is_hex(c->p[3]))
                    return 0;
                c->p += 4;
            } else if (!(ch == '"' || ch == '\\' || ch == '/' || ch == 'b' || ch == 'f' ||
                         ch == 'n' || ch == 'r' || ch == 't')) {
                return 0;
            }
        } else if (ch >= 0x80) {
            if (!utf8_seq(c))
                return 0;
        } else {
            c->p++;
        }
    }
    return 0;
}

static int number(cursor *c)
{
    if (c->p < c->end && *c->p == '-')
        c->p++;
    if (c->p >= c->end)
        return 0;
    if (*c->p == '0')
        c->p++;
    else if (is_digit(*c->p))
        while (c->p < c->end && is_digit(*c->p))
            c->p++;
    else
        return 0;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (c->p >= c->end || !is_digit(*c->p))
            return 0;
        while (c->p < c->end && is_digit(*c->p))
            c->p++;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (c->p >= c->end || !is_digit(*c->p))
            return 0;
        while (c->p < c->end && is_digit(*c->p))
            c->p++;
    }
    return 1;
}

static int literal(cursor *c, const char *word, size_t n)
{
    if ((size_t)(c->end - c->p) < n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (c->p[i] != (unsigned char)word[i])
            return 0;
    c->p += n;
    return 1;
}

size_t fr__json_check(const char *s, size_t len)
{
    /* On a problem: where the cursor stopped, at or just after it. */
#define FAIL return (size_t)(c.p - (const unsigned char *)s)
    cursor c = {(const unsigned char *)s, (const unsigned char *)s + len};
    /* Nesting: bit i set = level i is an object (else an array). */
    unsigned char stack[FR_JSON_MAX_DEPTH / 8];
    int depth = 0;
    skip_ws(&c);
    for (;;) {
        /* Expect a value. */
        if (c.p >= c.end)
            FAIL;
        unsigned char ch = *c.p;
        if (ch == '{' || ch == '[') {
            if (depth >= FR_JSON_MAX_DEPTH)
                FAIL;
            int obj = ch == '{';
            if (obj)
                stack[depth / 8] |= (unsigned char)(1u << (depth % 8));
            else
                stack[depth / 8] &= (unsigned char)~(1u << (depth % 8));
            depth++;
            c.p++;
            skip_ws(&c);
            if (c.p < c.end && *c.p == (obj ? '}' : ']')) {
                c.p++;
                depth--;
                goto after_value;
            }
            if (obj) {
                if (c.p >= c.end || *c.p != '"' || !string(&c))
                    FAIL;
                skip_ws(&c);
                if (c.p >= c.end || *c.p != ':')
                    FAIL;
                c.p++;
                skip_ws(&c);
            }
            continue;
        }
        if (ch == '"') {
            if (!string(&c))
                FAIL;
        } else if (ch == '-' || is_digit(ch)) {
            if (!number(&c))
                FAIL;
        } else if (!(literal(&c, "true", 4) || literal(&c, "false", 5) || literal(&c, "null", 4))) {
            FAIL;
        }
    after_value:
        for (;;) {
            skip_ws(&c);
            if (depth == 0)
                return c.p == c.end ? FR_JSON_VALID : (size_t)(c.p - (const unsigned char *)s);
            if (c.p >= c.end)
                FAIL;
            int obj = (stack[(depth - 1) / 8] >> ((depth - 1) % 8)) & 1;
            if (*c.p == ',') {
                c.p++;
                skip_ws(&c);
                if (obj) {
                    if (c.p >= c.end || *c.p != '"' || !string(&c))
                        FAIL;
                    skip_ws(&c);
                    if (c.p >= c.end || *c.p != ':')
                        FAIL;
                    c.p++;
                    skip_ws(&c);
                }
                break; /* next value */
            }
            if (*c.p != (obj ? '}' : ']'))
                FAIL;
            c.p++;
            depth--;
        }
    }
}
#undef FAIL

int fr__json_valid(const char *s, size_t len)
{
    return fr__json_check(s, len) == FR_JSON_VALID;
}

/* Skips one value (syntax checked as far as skipped).  1, or 0 on a syntax error. */
static int skip_value(cursor *c, int depth)
{
    skip_ws(c);
    if (c->p >= c->end || depth > FR_JSON_MAX_DEPTH)
        return 0;
    unsigned char ch = *c->p;
    if (ch == '"')
        return string(c);
    if (ch == '-' || is_digit(ch))
        return number(c);
    if (ch != '{' && ch != '[')
        return literal(c, "true", 4) || literal(c, "false", 5) || literal(c, "null", 4);
    unsigned char close = ch == '{' ? '}' : ']';
    c->p++;
    skip_ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return 1;
    }
    for (;;) {
        if (close == '}') {
            skip_ws(c);
            if (c->p >= c->end || *c->p != '"' || !string(c))
                return 0;
            skip_ws(c);
            if (c->p >= c->end || *c->p++ != ':')
                return 0;
        }
        if (!skip_value(c, depth + 1))
            return 0;
        skip_ws(c);
        if (c->p >= c->end)
            return 0;
        if (*c->p == ',') {
            c->p++;
            continue;
        }
        if (*c->p++ != close)
            return 0;
        return 1;
    }
}

/* fr__json_members; with `only`, a member not among `keys` is -1. */
static int members(const char *s, size_t len, const char *const *keys, size_t n,
                   const char **values, size_t *value_lens, int only)
{
    cursor c = {(const unsigned char *)s, (const unsigned char *)s + len};
    int found = 0;
    for (size_t i = 0; i < n; i++)
        values[i] = NULL, value_lens[i] = 0;
    skip_ws(&c);
    if (c.p >= c.end || *c.p++ != '{')
        return -1;
    skip_ws(&c);
    if (c.p < c.end && *c.p == '}') {
        c.p++;
        skip_ws(&c);
        return c.p == c.end ? 0 : -1;
    }
    for (;;) {
        skip_ws(&c);
        const unsigned char *k = c.p + 1;
        if (c.p >= c.end || *c.p != '"' || !string(&c))
            return -1;
        size_t kn = (size_t)(c.p - 1 - k);
        if (memchr(k, '\\', kn))
            return -1; /* an escaped key could spell one of `keys`: the caller must parse */
        skip_ws(&c);
        if (c.p >= c.end || *c.p++ != ':')
            return -1;
        skip_ws(&c);
        const unsigned char *v = c.p;
        if (!skip_value(&c, 1))
            return -1;
        size_t i = 0;
        /* The first byte first: most names differ there (a hot path: answers, requests). */
        while (i < n && !((kn == 0 || keys[i][0] == (char)k[0]) &&
                          strncmp((const char *)k, keys[i], kn) == 0 && keys[i][kn] == '\0'))
            i++;
        if (i < n) { /* the last duplicate wins, as in json-c: keep looking */
            found += !values[i];
            values[i] = (const char *)v;
            value_lens[i] = (size_t)(c.p - v);
        } else if (only) {
            return -1;
        }
        skip_ws(&c);
        if (c.p >= c.end)
            return -1;
        if (*c.p == ',') {
            c.p++;
            continue;
        }
        if (*c.p++ != '}')
            return -1;
        skip_ws(&c);
        return c.p == c.end ? found : -1;
    }
}

int fr__json_members(const char *s, size_t len, const char *const *keys, size_t n,
                     const char **values, size_t *value_lens)
{
    return members(s, len, keys, n, values, value_lens, 0);
}

int fr__json_members_only(const char *s, size_t len, const char *const *keys, size_t n,
                          const char **values, size_t *value_lens)
{
    return members(s, len, keys, n, values, value_lens, 1);
}

int fr__json_array_next(const char *s, size_t len, size_t *at, const char **value,
                        size_t *value_len)
{
    cursor c = {(const unsigned char *)s + (*at < len ? *at : len), (const unsigned char *)s + len};
    if (*at == SIZE_MAX)
        return 0;
    if (*at == 0) {
        skip_ws(&c);
        if (c.p >= c.end || *c.p++ != '[')
            return -1;
        skip_ws(&c);
        if (c.p < c.end && *c.p == ']') {
            c.p++;
            skip_ws(&c);
            *at = SIZE_MAX;
            return c.p == c.end ? 0 : -1;
        }
    }
    skip_ws(&c);
    const unsigned char *v = c.p;
    if (!skip_value(&c, 1))
        return -1;
    *value = (const char *)v;
    *value_len = (size_t)(c.p - v);
    skip_ws(&c);
    if (c.p < c.end && *c.p == ',') {
        *at = (size_t)(c.p + 1 - (const unsigned char *)s);
        return 1;
    }
    if (c.p >= c.end || *c.p++ != ']')
        return -1;
    skip_ws(&c);
    *at = SIZE_MAX;
    return c.p == c.end ? 1 : -1;
}

int fr__json_member(const char *s, size_t len, const char *key, const char **value,
                    size_t *value_len)
{
    const char *v;
    size_t vn;
    int rc = fr__json_members(s, len, &key, 1, &v, &vn);
    if (rc > 0)
        *value = v, *value_len = vn;
    return rc;
}

char *fr__json_put_string(char *p, const char *s)
{
    return fr__json_put_string_len(p, s, strlen(s));
}

/* Whether one of the 8 bytes in v needs an escape: below 0x20, '"' or '\\' (exact: the
 * classic "has a byte less than" and "has a zero byte" tests). */
static inline int any_to_escape(uint64_t v)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t q = v ^ (ones * '"'), b = v ^ (ones * '\\');
    return (((v - ones * 0x20) & ~v) | ((q - ones) & ~q) | ((b - ones) & ~b)) & high ? 1 : 0;
}

/* How a byte is written in a JSON string: 0 as it is, 'u' as \u00XX, else '\\' and that
 * character (json-c's short forms, so that text written here is the bytes json-c
 * writes). */
static const char escape_as[256] =
    {
        ['\0'] = 'u', 'u',          'u',          'u',           'u',          'u',
        'u',          'u',          ['\b'] = 'b', ['\t'] = 't',  ['\n'] = 'n', ['\v'] = 'u',
        ['\f'] = 'f', ['\r'] = 'r', 'u',          'u',           'u',          'u',
        'u',          'u',          'u',          'u',           'u',          'u',
        'u',          'u',          'u',          'u',           'u',          'u',
        'u',          'u',          ['"'] = '"',  ['\\'] = '\\',
};

/* One byte as a JSON string holds it (escape_as). */
static char *put_escaped(char *p, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    char esc = escape_as[c];
    if (!esc) {
        *p++ = (char)c;
    } else if (esc != 'u') {
        *p++ = '\\';
        *p++ = esc;
    } else {
        memcpy(p, "\\u00", 4);
        p[4] = hex[c >> 4];
        p[5] = hex[c & 15];
        p += 6;
    }
    return p;
}

char *fr__json_put_string_len(char *p, const char *s, size_t n)
{
    const char *end = s + n;
    *p++ = '"';
    while (s < end) {
        /* Eight bytes at a time while none needs an escape (journals and traces hold whole
         * provider bodies), else byte by byte up to the next such block. */
        uint64_t v;
        if (end - s >= 8) {
            memcpy(&v, s, 8);
            if (!any_to_escape(v)) {
                memcpy(p, &v, 8);
                p += 8, s += 8;
                continue;
            }
        }
        const char *stop = end - s > 8 ? s + 8 : end;
        for (; s < stop; s++)
            p = put_escaped(p, (unsigned char)*s);
    }
    *p++ = '"';
    return p;
}

static unsigned hex4(const char *s)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

static char *put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xc0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xe0 | cp >> 12);
        *o++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *o++ = (char)(0xf0 | cp >> 18);
        *o++ = (char)(0x80 | (cp >> 12 & 0x3f));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    return o;
}

size_t fr__json_get_string(const char *s, size_t n, char *out)
{
    const char *end = s + n;
    char *o = out;
    while (s < end) {
        const char *bs = memchr(s, '\\', (size_t)(end - s));
        if (!bs) {
            memcpy(o, s, (size_t)(end - s));
            o += end - s;
            break;
        }
        memcpy(o, s, (size_t)(bs - s));
        o += bs - s;
        if (bs + 1 >= end)
            break; /* not valid JSON: a string cannot end with its escape */
        char c = bs[1];
        s = bs + 2;
        switch (c) {
        case 'n': *o++ = '\n'; break;
        case 't': *o++ = '\t'; break;
        case 'r': *o++ = '\r'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'u': {
            if (end - s < 4)
                return (size_t)(o - out);
            unsigned cp = hex4(s);
            s += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && end - s >= 6 && s[0] == '\\' && s[1] == 'u') {
                unsigned lo = hex4(s + 2);
                if (lo >= 0xdc00 && lo < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    s += 6;
                }
            }
            if (cp >= 0xd800 && cp < 0xe000)
                cp = 0xfffd; /* a lone surrogate */
            o = put_utf8(o, cp);
            break;
        }
        default: *o++ = c; break; /* \" \\ \/ */
        }
    }
    return (size_t)(o - out);
}

char *fr__json_recode_string(char *p, const char *tok, size_t n)
{
    cursor c = {(const unsigned char *)tok, (const unsigned char *)tok + n};
    if (n < 2 || *tok != '"' || !string(&c) || c.p != c.end)
        return NULL; /* not exactly one string token */
    const char *s = tok + 1, *end = tok + n - 1;
    *p++ = '"';
    while (s < end) {
        const char *r = memchr(s, '\\', (size_t)(end - s));
        if (!r)
            r = end;
        memcpy(p, s, (size_t)(r - s)); /* string() let no raw '"' or control byte through */
        p += r - s;
        if (r == end)
            break;
        unsigned char e = (unsigned char)r[1];
        s = r + 2;
        if (e != 'u') {
            static const unsigned char plain_of[128] = {
                ['"'] = '"',  ['\\'] = '\\', ['/'] = '/',  ['b'] = '\b',
                ['f'] = '\f', ['n'] = '\n',  ['r'] = '\r', ['t'] = '\t'};
            p = put_escaped(p, plain_of[e & 127]);
            continue;
        }
        unsigned cp = hex4(s);
        s += 4;
        if (cp >= 0xd800 && cp <= 0xdfff)
            return NULL; /* surrogates: json-c's own reading decides (pairs, lone ones) */
        if (cp < 0x80)
            p = put_escaped(p, (unsigned char)cp);
        else
            p = put_utf8(p, cp);
    }
    *p++ = '"';
    return p;
}

int fr__json_int_token(const char *v, size_t n, int64_t *out)
{
    size_t i = n && v[0] == '-';
    if (i == n || v[i] < '0' || v[i] > '9')
        return 0;
    uint64_t u = 0;
    int past = 0;
    for (; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 0; /* a fraction or an exponent: json-c reads a double */
        if (u > (UINT64_MAX - 9) / 10)
            past = 1;
        else
            u = u * 10 + (uint64_t)(v[i] - '0');
    }
    if (past || u > (uint64_t)INT64_MAX)
        return -1;
    *out = v[0] == '-' ? -(int64_t)u : (int64_t)u;
    return 1;
}
