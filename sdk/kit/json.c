/* The kit's JSON scanner and writer (include/fluxroute/kit.h says what they do).
 *
 * Text produced here is byte for byte what json-c would have written (traces record
 * request bodies as bytes; replays compare them).  The rare values whose json-c form is
 * not plain to derive (-0, integers past 18 digits, lone surrogates, NULs) are handed to
 * json-c itself. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <fluxroute/kit.h>

#include "jsonc.h"

void frk_json_free(frk_json_doc *d)
{
    if (d->tok != d->inline_tok)
        free(d->tok);
    free(d->owned);
    d->tok = NULL;
    d->owned = NULL;
    d->n = d->cap = 0;
}

static inline int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline frk_json_tok *push_tok(frk_json_doc *d, frk_json_type type, size_t start)
{
    if (d->n == d->cap) {
        uint32_t cap = d->cap * 2;
        frk_json_tok *t =
            d->tok == d->inline_tok ? malloc(cap * sizeof *t) : realloc(d->tok, cap * sizeof *t);
        if (!t)
            return NULL;
        if (d->tok == d->inline_tok)
            memcpy(t, d->inline_tok, sizeof d->inline_tok);
        d->tok = t;
        d->cap = cap;
    }
    frk_json_tok *t = &d->tok[d->n++];
    t->start = (uint32_t)start;
    t->len = 0;
    t->next = 0;
    t->type = (uint16_t)type;
    t->flags = 0;
    return t;
}

static inline int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Scans the string whose opening quote is at *pos; leaves *pos after the closing quote.
 * Returns 0 or -1. */
static inline int scan_string(frk_json_doc *d, size_t *pos)
{
    const char *s = d->text;
    size_t i = *pos + 1, n = d->len;
    frk_json_tok *t = push_tok(d, FRK_JSON_STRING, i);
    if (!t)
        return -1;
        /* Bytes that end a run of plain string text: '"', '\\' and control characters. */
#define FRK_JSON_R8(v) v, v, v, v, v, v, v, v
    static const unsigned char stop[256] = {
        FRK_JSON_R8(1),
        FRK_JSON_R8(1),
        FRK_JSON_R8(1),
        FRK_JSON_R8(1), /* 0x00-0x1f */
        0,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        FRK_JSON_R8(0),
        FRK_JSON_R8(0),
        FRK_JSON_R8(0), /* 0x20-0x3f: '"' is 0x22 */
        FRK_JSON_R8(0),
        FRK_JSON_R8(0),
        FRK_JSON_R8(0),
        0,
        0,
        0,
        0,
        1,
        0,
        0,
        0, /* '\\' is 0x5c */
    };
#undef FRK_JSON_R8
    const unsigned char *u8 = (const unsigned char *)s;
    uint16_t flags = 0;
    while (i < n) {
        while (i + 4 <= n && !(stop[u8[i]] | stop[u8[i + 1]] | stop[u8[i + 2]] | stop[u8[i + 3]]))
            i += 4;
        while (i < n && !stop[u8[i]])
            i++;
        if (i >= n)
            break;
        unsigned char c = u8[i];
        if (c == '"')
            break;
        if (c < 0x20)
            return -1;
        flags |= FRK_JSON_ESCAPED;
        if (i + 1 >= n)
            return -1;
        char e = s[i + 1];
        if (e == 'u') {
            unsigned u;
            if (i + 6 > n || hex4(s + i + 2, &u) != 0)
                return -1;
            /* json-c writes \u only for control characters without a short form, in
             * lower-case hex: any other \u comes out differently */
            char h = s[i + 5];
            if (u >= 0x20 || u == '\b' || u == '\t' || u == '\n' || u == '\f' || u == '\r' ||
                s[i + 2] != '0' || s[i + 3] != '0' || (h >= 'A' && h <= 'F'))
                flags |= FRK_JSON_REWRITE;
            i += 6;
            if (u >= 0xD800 && u <= 0xDBFF) {
                unsigned lo;
                if (i + 6 <= n && s[i] == '\\' && s[i + 1] == 'u' && hex4(s + i + 2, &lo) == 0 &&
                    lo >= 0xDC00 && lo <= 0xDFFF)
                    i += 6;
                else
                    flags |= FRK_JSON_UNUSUAL; /* a lone surrogate: json-c's own business */
            } else if (u >= 0xDC00 && u <= 0xDFFF) {
                flags |= FRK_JSON_UNUSUAL;
            } else if (u == 0) {
                flags |= FRK_JSON_UNUSUAL; /* json-c ends C strings there */
            }
            continue;
        }
        switch (e) {
        case '/':
            flags |= FRK_JSON_REWRITE; /* json-c writes a plain slash */
            break;
        case '"':
        case '\\':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't': break;
        default: return -1;
        }
        i += 2;
    }
    if (i >= n)
        return -1;
    t = &d->tok[d->n - 1];
    t->len = (uint32_t)(i - t->start);
    t->flags = flags;
    t->next = d->n;
    *pos = i + 1;
    return 0;
}

static inline int scan_number(frk_json_doc *d, size_t *pos)
{
    const char *s = d->text;
    size_t i = *pos, n = d->len, digits = 0;
    frk_json_tok *t = push_tok(d, FRK_JSON_INT, i);
    if (!t)
        return -1;
    if (i < n && s[i] == '-')
        i++;
    size_t int_start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (digits == 0 || (digits > 1 && s[int_start] == '0'))
        return -1;
    int is_double = 0;
    if (i < n && s[i] == '.') {
        size_t f = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == f)
            return -1;
        is_double = 1;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t e = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == e)
            return -1;
        is_double = 1;
    }
    t->len = (uint32_t)(i - t->start);
    t->next = d->n;
    if (is_double)
        t->type = FRK_JSON_DOUBLE;
    else if (digits > 18 || (digits == 1 && s[int_start] == '0' && s[t->start] == '-'))
        t->flags = FRK_JSON_UNUSUAL; /* past int64 (json-c: uint64 or double), or -0 */
    *pos = i;
    return 0;
}

/* Marks objects with repeated keys (pairwise for small objects; a large one is assumed to
 * repeat, which only costs the slower careful write). */
static inline void mark_dups(frk_json_doc *d, uint32_t obj)
{
    frk_json_tok *t = d->tok;
    uint32_t keys[32], nk = 0;
    for (uint32_t k = obj + 1; k < t[obj].next; k = t[k + 1].next) {
        if (nk == 32 || (t[k].flags & FRK_JSON_ESCAPED)) {
            t[obj].flags |= FRK_JSON_DUP_KEYS;
            return;
        }
        for (uint32_t j = 0; j < nk; j++) {
            if (t[keys[j]].len == t[k].len &&
                memcmp(d->text + t[keys[j]].start, d->text + t[k].start, t[k].len) == 0) {
                t[obj].flags |= FRK_JSON_DUP_KEYS;
                return;
            }
        }
        keys[nk++] = k;
    }
}

int frk_json_scan(frk_json_doc *d, const char *text, size_t len)
{
    d->text = text;
    d->len = len;
    d->tok = d->inline_tok;
    d->cap = FRK_JSON_INLINE_TOKENS;
    d->n = 0;
    d->owned = NULL;
    if (!text || len >= UINT32_MAX)
        return -1;
    uint32_t stack[FRK_JSON_MAX_DEPTH];
    int depth = 0;
    size_t i = 0;
    /* expect: 0 a value, 1 a value or ']' (array start), 2 a key or '}' (object start),
     * 3 a key (after ','), then after a value: ',' or the container's end. */
    int want_value = 1, first = 0;
    for (;;) {
        while (i < len && is_ws(text[i]))
            i++;
        if (want_value) {
            if (i >= len)
                return -1;
            char c = text[i];
            if (first == 1 && c == ']') {
                /* empty array: falls to the close below */
            } else if (first == 2 && c == '}') {
                /* empty object */
            } else if (first >= 2) {
                /* a key, then ':' */
                if (c != '"' || scan_string(d, &i) != 0)
                    return -1;
                while (i < len && is_ws(text[i]))
                    i++;
                if (i >= len || text[i] != ':')
                    return -1;
                i++;
                first = 0;
                continue;
            } else if (c == '{' || c == '[') {
                if (depth == FRK_JSON_MAX_DEPTH ||
                    !push_tok(d, c == '{' ? FRK_JSON_OBJECT : FRK_JSON_ARRAY, i))
                    return -1;
                stack[depth++] = d->n - 1;
                i++;
                first = c == '{' ? 2 : 1;
                continue;
            } else if (c == '"') {
                if (scan_string(d, &i) != 0)
                    return -1;
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                if (scan_number(d, &i) != 0)
                    return -1;
            } else {
                static const struct {
                    const char *w;
                    frk_json_type t;
                } lit[] = {
                    {"null", FRK_JSON_NULL}, {"true", FRK_JSON_TRUE}, {"false", FRK_JSON_FALSE}};
                int ok = 0;
                for (size_t k = 0; k < 3 && !ok; k++) {
                    size_t wl = strlen(lit[k].w);
                    if (len - i >= wl && memcmp(text + i, lit[k].w, wl) == 0) {
                        frk_json_tok *t = push_tok(d, lit[k].t, i);
                        if (!t)
                            return -1;
                        t->len = (uint32_t)wl;
                        t->next = d->n;
                        i += wl;
                        ok = 1;
                    }
                }
                if (!ok)
                    return -1;
            }
            if (!(first == 1 && c == ']') && !(first == 2 && c == '}')) {
                want_value = 0;
                first = 0;
                continue;
            }
        }
        /* after a value (or at an empty container's end) */
        if (depth == 0) {
            while (i < len && is_ws(text[i]))
                i++;
            return i == len ? 0 : -1;
        }
        if (i >= len)
            return -1;
        frk_json_tok *top = &d->tok[stack[depth - 1]];
        char c = text[i];
        if (c == ',' && !first) {
            i++;
            want_value = 1;
            first = top->type == FRK_JSON_OBJECT ? 3 : 0;
            continue;
        }
        if (c != (top->type == FRK_JSON_OBJECT ? '}' : ']'))
            return -1;
        i++;
        top->len = (uint32_t)(i - top->start);
        top->next = d->n;
        if (top->type == FRK_JSON_OBJECT && top->next > stack[depth - 1] + 3)
            mark_dups(d, stack[depth - 1]);
        depth--;
        want_value = 0;
        first = 0;
    }
}

int frk_json_scan_any(frk_json_doc *d, const char *text, size_t len, char *err, size_t errlen)
{
    if (frk_json_scan(d, text, len) == 0)
        return 0;
    frk_json_free(d);
    json_object *o = frk__jsonc_parse(text, len, err, errlen);
    if (!o)
        return -1;
    size_t n = 0;
    const char *w = json_object_to_json_string_length(o, FRK__JSONC_FLAGS, &n);
    char *copy = w ? malloc(n + 1) : NULL;
    if (copy)
        memcpy(copy, w, n + 1);
    json_object_put(o);
    if (!copy || frk_json_scan(d, copy, n) != 0) {
        /* json-c writes NaN and Infinity back as they came: no JSON. */
        snprintf(err, errlen, "%s",
                 copy ? "holds NaN or Infinity, which JSON cannot" : "out of memory");
        free(copy);
        frk_json_free(d);
        return -1;
    }
    d->owned = copy;
    return 0;
}

size_t frk_json_count(const frk_json_doc *d, int arr)
{
    if (arr < 0 || (d->tok[arr].type != FRK_JSON_ARRAY && d->tok[arr].type != FRK_JSON_OBJECT))
        return 0;
    size_t n = 0;
    for (uint32_t k = (uint32_t)arr + 1; k < d->tok[arr].next; k = d->tok[k].next)
        n++;
    return d->tok[arr].type == FRK_JSON_OBJECT ? n / 2 : n;
}

int frk_json_at(const frk_json_doc *d, int arr, size_t idx)
{
    if (arr < 0 || d->tok[arr].type != FRK_JSON_ARRAY)
        return -1;
    for (uint32_t k = (uint32_t)arr + 1; k < d->tok[arr].next; k = d->tok[k].next)
        if (idx-- == 0)
            return (int)k;
    return -1;
}

static inline void put_utf8(frk_buf *out, unsigned u)
{
    char b[4];
    size_t n;
    if (u < 0x80) {
        b[0] = (char)u;
        n = 1;
    } else if (u < 0x800) {
        b[0] = (char)(0xC0 | (u >> 6));
        b[1] = (char)(0x80 | (u & 0x3F));
        n = 2;
    } else if (u < 0x10000) {
        b[0] = (char)(0xE0 | (u >> 12));
        b[1] = (char)(0x80 | ((u >> 6) & 0x3F));
        b[2] = (char)(0x80 | (u & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | (u >> 18));
        b[1] = (char)(0x80 | ((u >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((u >> 6) & 0x3F));
        b[3] = (char)(0x80 | (u & 0x3F));
        n = 4;
    }
    frk_buf_append(out, b, n);
}

/* json-c's own reading of token i (the unusual strings and numbers); caller puts it. */
static inline json_object *jsonc_value(const frk_json_doc *d, int i)
{
    const frk_json_tok *t = &d->tok[i];
    size_t start = t->start - (t->type == FRK_JSON_STRING),
           len = t->len + 2 * (t->type == FRK_JSON_STRING);
    /* In brackets: json-c takes a number at the very end of its input as unfinished. */
    char *text = malloc(len + 3);
    if (!text)
        return NULL;
    text[0] = '[';
    memcpy(text + 1, d->text + start, len);
    text[len + 1] = ']';
    text[len + 2] = '\0';
    json_object *arr = json_tokener_parse(text);
    free(text);
    json_object *o = json_object_get(json_object_array_get_idx(arr, 0));
    json_object_put(arr);
    return o;
}

int frk_json_str(const frk_json_doc *d, int i, frk_buf *out)
{
    if (i < 0 || d->tok[i].type != FRK_JSON_STRING)
        return -1;
    const frk_json_tok *t = &d->tok[i];
    const char *s = d->text + t->start, *end = s + t->len;
    if (!(t->flags & FRK_JSON_ESCAPED)) {
        frk_buf_append(out, s, t->len);
        return 0;
    }
    if (t->flags & FRK_JSON_UNUSUAL) {
        json_object *o = jsonc_value(d, i);
        if (!o) {
            out->oom = 1;
            return 0;
        }
        frk_buf_append(out, json_object_get_string(o), (size_t)json_object_get_string_len(o));
        json_object_put(o);
        return 0;
    }
    while (s < end) {
        const char *bs = memchr(s, '\\', (size_t)(end - s));
        if (!bs) {
            frk_buf_append(out, s, (size_t)(end - s));
            break;
        }
        frk_buf_append(out, s, (size_t)(bs - s));
        char e = bs[1], c;
        s = bs + 2;
        switch (e) {
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case 'u': {
            unsigned u = 0, lo = 0;
            hex4(bs + 2, &u);
            s = bs + 6;
            if (u >= 0xD800 && u <= 0xDBFF) {
                hex4(s + 2, &lo);
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                s += 6;
            }
            put_utf8(out, u);
            continue;
        }
        default: c = e; break; /* \" \\ \/ */
        }
        frk_buf_append(out, &c, 1);
    }
    return 0;
}

void frk_json_cstr(const frk_json_doc *d, int k, frk_buf *out)
{
    size_t at = out->len;
    frk_json_str(d, k, out);
    if (!out->oom && out->data && (d->tok[k].flags & FRK_JSON_UNUSUAL))
        out->len = at + strlen(out->data + at);
}

int frk_json_member(const frk_json_doc *d, int obj, const char *key)
{
    if (obj < 0 || d->tok[obj].type != FRK_JSON_OBJECT)
        return -1;
    size_t kl = strlen(key);
    int found = -1;
    for (uint32_t k = (uint32_t)obj + 1; k < d->tok[obj].next; k = d->tok[k + 1].next) {
        const frk_json_tok *t = &d->tok[k];
        if (t->flags & FRK_JSON_ESCAPED) {
            frk_buf b = {0};
            frk_json_cstr(d, (int)k, &b);
            if (!b.oom && b.len == kl && (kl == 0 || memcmp(b.data, key, kl) == 0))
                found = (int)k + 1;
            frk_buf_free(&b);
        } else if (t->len == kl && memcmp(d->text + t->start, key, kl) == 0) {
            found = (int)k + 1;
        }
    }
    return found;
}

int frk_json_copy(const frk_json_doc *d, int i, char *dst, size_t size)
{
    if (i < 0 || d->tok[i].type != FRK_JSON_STRING || size == 0)
        return 0;
    const frk_json_tok *t = &d->tok[i];
    if (!(t->flags & FRK_JSON_ESCAPED)) {
        size_t n = t->len < size - 1 ? t->len : size - 1;
        memcpy(dst, d->text + t->start, n);
        dst[n] = '\0';
        return 1;
    }
    frk_buf b = {0};
    frk_json_cstr(d, i, &b);
    int ok = !b.oom;
    if (ok)
        snprintf(dst, size, "%s", b.data ? b.data : "");
    frk_buf_free(&b);
    return ok;
}

char *frk_json_strdup(const frk_json_doc *d, int i)
{
    frk_buf b = {0};
    if (frk_json_str(d, i, &b) != 0 || b.oom) {
        frk_buf_free(&b);
        return NULL;
    }
    if (!b.data)
        return calloc(1, 1);
    return b.data;
}

int64_t frk_json_int64(const frk_json_doc *d, int i)
{
    if (i < 0 || d->tok[i].type != FRK_JSON_INT)
        return 0;
    if (d->tok[i].flags & FRK_JSON_UNUSUAL) {
        json_object *o = jsonc_value(d, i);
        int64_t v = o ? json_object_get_int64(o) : 0;
        json_object_put(o);
        return v;
    }
    const char *s = d->text + d->tok[i].start;
    int neg = *s == '-';
    int64_t v = 0;
    for (s += neg; *s >= '0' && *s <= '9'; s++)
        v = v * 10 + (*s - '0');
    return neg ? -v : v;
}

void frk_json_put_string(frk_buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    frk_buf_lit(out, "\"");
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        frk_buf_append(out, s + run, i - run);
        run = i + 1;
        char e[6] = {'\\', 0};
        size_t el = 2;
        switch (c) {
        case '\b': e[1] = 'b'; break;
        case '\n': e[1] = 'n'; break;
        case '\r': e[1] = 'r'; break;
        case '\t': e[1] = 't'; break;
        case '\f': e[1] = 'f'; break;
        case '"': e[1] = '"'; break;
        case '\\': e[1] = '\\'; break;
        default:
            memcpy(e + 1, "u00", 3);
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            el = 6;
        }
        frk_buf_append(out, e, el);
    }
    frk_buf_append(out, s + run, n - run);
    frk_buf_lit(out, "\"");
}

void frk_json_put_cstr(frk_buf *out, const char *s)
{
    if (s)
        frk_json_put_string(out, s, strlen(s));
    else
        frk_buf_lit(out, "null");
}

void frk_json_put_int64(frk_buf *out, int64_t v)
{
    char d[21];
    size_t n = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do
        d[sizeof d - ++n] = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        d[sizeof d - ++n] = '-';
    frk_buf_append(out, d + sizeof d - n, n);
}

static inline void put_jsonc(frk_buf *out, json_object *o)
{
    size_t n = 0;
    const char *w = o ? json_object_to_json_string_length(o, FRK__JSONC_FLAGS, &n) : "null";
    if (!w) {
        out->oom = 1;
        return;
    }
    frk_buf_append(out, w, o ? n : 4);
}

void frk_json_put_decoded(frk_buf *out, const frk_json_doc *d, int i, int cut)
{
    frk_buf s = {0};
    if (cut)
        frk_json_cstr(d, i, &s);
    else
        frk_json_str(d, i, &s);
    if (s.oom)
        out->oom = 1;
    frk_json_put_string(out, s.data ? s.data : "", s.len);
    frk_buf_free(&s);
}

void frk_json_put_value(frk_buf *out, const frk_json_doc *d, int i)
{
    const frk_json_tok *t = &d->tok[i];
    if ((t->type == FRK_JSON_INT || t->type == FRK_JSON_STRING) && (t->flags & FRK_JSON_UNUSUAL)) {
        /* -0, integers past 18 digits, lone surrogates, NULs: as json-c reads them */
        json_object *o = jsonc_value(d, i);
        if (!o)
            out->oom = 1;
        else
            put_jsonc(out, o);
        json_object_put(o);
        return;
    }
    switch ((frk_json_type)t->type) {
    case FRK_JSON_STRING:
        if (!(t->flags & FRK_JSON_REWRITE)) {
            /* no escapes in the source, or only those json-c writes: written back the same */
            frk_buf_append(out, d->text + t->start - 1, t->len + 2);
        } else {
            frk_json_put_decoded(out, d, i, 0);
        }
        break;
    default:
        if (t->type == FRK_JSON_ARRAY) {
            frk_buf_lit(out, "[");
            for (uint32_t k = (uint32_t)i + 1; k < t->next; k = d->tok[k].next) {
                if (k != (uint32_t)i + 1)
                    frk_buf_lit(out, ",");
                frk_json_put_value(out, d, (int)k);
            }
            frk_buf_lit(out, "]");
        } else if (t->type == FRK_JSON_OBJECT) {
            frk_buf_lit(out, "{");
            int any = 0;
            for (uint32_t k = (uint32_t)i + 1; k < t->next; k = d->tok[k + 1].next) {
                int v = (int)k + 1;
                if (t->flags & FRK_JSON_DUP_KEYS) {
                    /* json-c: a repeated key keeps its first place and its last value */
                    frk_buf key = {0};
                    frk_json_cstr(d, (int)k, &key);
                    int seen = 0;
                    for (uint32_t j = (uint32_t)i + 1; j < k && !seen; j = d->tok[j + 1].next) {
                        frk_buf other = {0};
                        frk_json_cstr(d, (int)j, &other);
                        seen = other.len == key.len &&
                               (key.len == 0 || memcmp(other.data, key.data, key.len) == 0);
                        frk_buf_free(&other);
                    }
                    if (!seen) {
                        for (uint32_t j = d->tok[k + 1].next; j < t->next; j = d->tok[j + 1].next) {
                            frk_buf other = {0};
                            frk_json_cstr(d, (int)j, &other);
                            if (other.len == key.len &&
                                (key.len == 0 || memcmp(other.data, key.data, key.len) == 0))
                                v = (int)j + 1;
                            frk_buf_free(&other);
                        }
                    }
                    frk_buf_free(&key);
                    if (seen)
                        continue;
                }
                if (any)
                    frk_buf_lit(out, ",");
                any = 1;
                if (d->tok[k].flags & (FRK_JSON_REWRITE | FRK_JSON_UNUSUAL)) {
                    frk_json_put_decoded(out, d, (int)k, 1); /* json-c keys are C strings */
                } else {
                    frk_json_put_value(out, d, (int)k);
                }
                frk_buf_lit(out, ":");
                frk_json_put_value(out, d, v);
            }
            frk_buf_lit(out, "}");
        } else {
            /* literals, plain integers, doubles (json-c keeps their spelling) */
            frk_buf_append(out, d->text + t->start, t->len);
        }
    }
}

void frk_json_put_value_or_null(frk_buf *out, const frk_json_doc *d, int tok)
{
    if (tok < 0)
        frk_buf_lit(out, "null");
    else
        frk_json_put_value(out, d, tok);
}
