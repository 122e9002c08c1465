/* Whole-text JSON parsing with a located error (json_parse.h). */
#include "base/json_parse.h"

#include "base/json_check.h"

#include <json-c/json.h>
#include <limits.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* One tokener per thread, kept between parses (making one costs more than parsing a
 * small request): json-c's tokener is reset before each use. */
typedef struct cached_tokener {
    json_tokener *tok;
    int depth;
} cached_tokener;

static pthread_key_t tok_key;
static pthread_once_t tok_once = PTHREAD_ONCE_INIT;

static void cached_free(void *p)
{
    cached_tokener *c = p;
    if (c->tok)
        json_tokener_free(c->tok);
    free(c);
}

static void tok_key_init(void)
{
    pthread_key_create(&tok_key, cached_free);
}

/* This thread's tokener for `max_depth` (reset), or NULL on OOM.  Borrowed. */
static json_tokener *thread_tokener(int max_depth)
{
    pthread_once(&tok_once, tok_key_init);
    cached_tokener *c = pthread_getspecific(tok_key);
    if (c && c->tok && c->depth == max_depth) {
        json_tokener_reset(c->tok);
        return c->tok;
    }
    if (!c && (!(c = calloc(1, sizeof *c)) || pthread_setspecific(tok_key, c) != 0)) {
        free(c);
        return NULL;
    }
    if (c->tok) /* json-c's free takes no NULL */
        json_tokener_free(c->tok);
    c->tok = json_tokener_new_ex(max_depth);
    c->depth = c->tok ? max_depth : -1; /* out of memory: tried again next time */
    return c->tok;
}

int fr__json_parse_whole(const char *s, size_t len, int max_depth, struct json_object **out,
                         size_t *err_at, const char **why)
{
    *out = NULL;
    *err_at = 0;
    *why = "the JSON text is too large";
    if (len > INT_MAX)
        return -1;
    json_tokener *tok = thread_tokener(max_depth);
    if (!tok) {
        *why = "out of memory";
        return -1;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT); /* RFC 8259: no trailing commas */
    json_object *o = json_tokener_parse_ex(tok, s, (int)len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (e == json_tokener_continue && end == len) {
        /* A number or literal at the very end waits for a delimiter: the end is one. */
        o = json_tokener_parse_ex(tok, "", 1);
        e = json_tokener_get_error(tok);
    }
    while (end < len && strchr(" \t\r\n", s[end]))
        end++;
    int json_c_ok = e == json_tokener_success && end == len;
    /* json-c lets through what RFC 8259 does not (NaN, single quotes, comments): the
     * strict check has the last word, and knows where it failed. */
    size_t bad = fr__json_check(s, len);
    if (json_c_ok && bad == FR_JSON_VALID) {
        *out = o;
        return 0;
    }
    json_object_put(o);
    *err_at = bad != FR_JSON_VALID ? bad : end;
    *why = json_c_ok                    ? "not allowed in JSON (RFC 8259)"
           : e == json_tokener_continue ? "unexpected end of input"
           : e != json_tokener_success  ? json_tokener_error_desc(e)
                                        : "trailing data after the value";
    return -1;
}

/* ---- fr__json_tree's direct builder ------------------------------------------------- *
 * It builds json-c's tree from the common shapes of JSON texts (objects and arrays of
 * strings, integers and literals) in one pass.  Whatever it is not sure to build exactly
 * as json-c's tokener does (a fraction or exponent, an integer of 19 digits or more, -0,
 * \u0000, a surrogate escape, a key with a NUL, deep nesting, a text that is not a
 * container, invalid JSON) makes it give up, and the tokener parses the text instead. */

#define TREE_MAX_DEPTH 24 /* well inside json-c's 32 */

typedef struct tree_cur {
    const char *p;
    int failed;
} tree_cur;

static void tree_ws(tree_cur *c)
{
    while (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')
        c->p++;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        v <<= 4;
        if (ch >= '0' && ch <= '9')
            v |= (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            v |= (unsigned)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            v |= (unsigned)(ch - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* The string at c->p (on its opening quote), decoded into *buf (malloc'ed when it does
 * not fit in `small`; the caller frees it when *buf != small), NUL-terminated.  Returns
 * its length, or -1 (c->failed set). */
static long tree_string(tree_cur *c, char *small, size_t small_size, char **buf)
{
    const char *b = ++c->p, *e = b;
    int escaped = 0;
    while (*e && *e != '"') {
        if ((unsigned char)*e < 0x20)
            break;
        if (*e == '\\') {
            escaped = 1;
            if (!e[1])
                break;
            e++;
        }
        e++;
    }
    if (*e != '"') {
        c->failed = 1;
        return -1;
    }
    size_t raw = (size_t)(e - b);
    char *out = raw < small_size ? small : malloc(raw + 1);
    if (!out) {
        c->failed = 1;
        return -1;
    }
    *buf = out;
    size_t n = 0;
    if (!escaped) {
        memcpy(out, b, raw);
        n = raw;
    }
    for (const char *q = b; escaped && q < e; q++) {
        if (*q != '\\') {
            out[n++] = *q;
            continue;
        }
        q++;
        unsigned cp;
        switch (*q) {
        case '"':
        case '\\':
        case '/': out[n++] = *q; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u':
            if (e - q < 5 || hex4(q + 1, &cp) != 0 || cp == 0 || (cp >= 0xd800 && cp <= 0xdfff))
                goto give_up; /* json-c's own ways with these: the tokener decides */
            q += 4;
            if (cp < 0x80) {
                out[n++] = (char)cp;
            } else if (cp < 0x800) {
                out[n++] = (char)(0xc0 | (cp >> 6));
                out[n++] = (char)(0x80 | (cp & 0x3f));
            } else {
                out[n++] = (char)(0xe0 | (cp >> 12));
                out[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                out[n++] = (char)(0x80 | (cp & 0x3f));
            }
            break;
        default: goto give_up;
        }
    }
    out[n] = '\0';
    c->p = e + 1;
    return (long)n;
give_up:
    if (out != small)
        free(out);
    *buf = NULL;
    c->failed = 1;
    return -1;
}

static json_object *tree_value(tree_cur *c, int depth);

static json_object *tree_container(tree_cur *c, int depth)
{
    int is_obj = *c->p == '{';
    json_object *o = is_obj ? json_object_new_object() : json_object_new_array();
    if (!o || depth >= TREE_MAX_DEPTH) {
        c->failed = 1;
        json_object_put(o);
        return NULL;
    }
    c->p++;
    tree_ws(c);
    char close = is_obj ? '}' : ']';
    if (*c->p == close) {
        c->p++;
        return o;
    }
    for (;;) {
        char small[128], *key = NULL;
        if (is_obj) {
            if (*c->p != '"')
                break;
            long kn = tree_string(c, small, sizeof small, &key);
            if (kn < 0)
                break;
            tree_ws(c);
            if ((size_t)kn != strlen(key) || *c->p != ':') {
                c->failed = 1; /* a NUL in the key, or not JSON */
                if (key != small)
                    free(key);
                break;
            }
            c->p++;
            tree_ws(c);
        }
        json_object *v = tree_value(c, depth + 1);
        int bad = c->failed ||
                  (is_obj ? json_object_object_add(o, key, v) : json_object_array_add(o, v)) != 0;
        if (key && key != small)
            free(key);
        if (bad) {
            json_object_put(v);
            break;
        }
        tree_ws(c);
        if (*c->p == ',') {
            c->p++;
            tree_ws(c);
            continue;
        }
        if (*c->p == close) {
            c->p++;
            return o;
        }
        break;
    }
    c->failed = 1;
    json_object_put(o);
    return NULL;
}

static json_object *tree_value(tree_cur *c, int depth)
{
    const char *p = c->p;
    if (*p == '{' || *p == '[')
        return tree_container(c, depth);
    if (*p == '"') {
        char small[256], *buf = NULL;
        long n = tree_string(c, small, sizeof small, &buf);
        json_object *v = n < 0 ? NULL : json_object_new_string_len(buf, (int)n);
        if (buf && buf != small)
            free(buf);
        if (n >= 0 && !v)
            c->failed = 1;
        return v;
    }
    if (*p == '-' || (*p >= '0' && *p <= '9')) {
        const char *d = p + (*p == '-');
        size_t nd = 0;
        while (d[nd] >= '0' && d[nd] <= '9')
            nd++;
        char after = d[nd];
        if (nd == 0 || nd > 18 || (d[0] == '0' && (nd > 1 || *p == '-')) || after == '.' ||
            after == 'e' || after == 'E') {
            c->failed = 1; /* -0, leading zeros, doubles, large integers: the tokener's */
            return NULL;
        }
        int64_t v = 0;
        for (size_t i = 0; i < nd; i++)
            v = v * 10 + (d[i] - '0');
        c->p = d + nd;
        json_object *o = json_object_new_int64(*p == '-' ? -v : v);
        if (!o)
            c->failed = 1;
        return o;
    }
    if (strncmp(p, "true", 4) == 0 || strncmp(p, "false", 5) == 0) {
        int t = *p == 't';
        c->p += t ? 4 : 5;
        json_object *o = json_object_new_boolean(t);
        if (!o)
            c->failed = 1;
        return o;
    }
    if (strncmp(p, "null", 4) == 0) {
        c->p += 4;
        return NULL;
    }
    c->failed = 1;
    return NULL;
}

/* The tree of a text holding one object or array, or *ok = 0 when the builder gives up. */
static json_object *tree_direct(const char *s, int *ok)
{
    tree_cur c = {.p = s};
    tree_ws(&c);
    json_object *o = NULL;
    if (*c.p == '{' || *c.p == '[') {
        o = tree_container(&c, 0);
        tree_ws(&c);
        if (*c.p) /* json_tokener_parse stops after the value; be sure, it decides */
            c.failed = 1;
    } else {
        c.failed = 1;
    }
    if (c.failed) {
        json_object_put(o);
        o = NULL;
    }
    *ok = !c.failed;
    return o;
}

struct json_object *fr__json_tree_direct(const char *s)
{
    int ok;
    json_object *o = tree_direct(s, &ok);
    return ok ? o : NULL;
}

struct json_object *fr__json_tree(const char *s)
{
    int ok;
    json_object *direct = tree_direct(s, &ok);
    if (ok)
        return direct;
    json_tokener *tok = thread_tokener(JSON_TOKENER_DEFAULT_DEPTH);
    if (!tok)
        return json_tokener_parse(s);
    json_tokener_set_flags(tok, 0);
    json_object *o = json_tokener_parse_ex(tok, s, -1); /* as json_tokener_parse does */
    if (json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(o);
        o = NULL;
    }
    return o;
}

void fr__json_line_col(const char *s, size_t at, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < at && s[i]; i++) {
        if (s[i] == '\n')
            ++*line, *col = 1;
        else
            ++*col;
    }
}
