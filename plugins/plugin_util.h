/* Helpers shared by the built-in plugins: error classes, arena copies, JSON in and out,
 * word counting, a growable buffer and the {{path}} template language.
 *
 * Header-only on purpose: plugins link nothing of the host library, and every helper
 * here is `static inline`, so each plugin gets its own private copy and exports nothing
 * but fluxroute_plugin_v1.  Everything is thread-safe (no shared mutable state): the
 * callers keep per-call data on the stack, in their own heap buffers or in the arena.
 *
 * Ownership: pu_buf memory is malloc'ed and released with pu_buf_free(); strings copied
 * into the arena (pu_arena_copy, pu_json_out) belong to the host and are never freed
 * here. */
#ifndef FR_PLUGIN_UTIL_H
#define FR_PLUGIN_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fluxroute/plugin.h>

#ifdef FR_PLUGIN_UTIL_JSON
#include <pthread.h>

#include <json-c/json.h>
#endif

/* ---- Error classes ------------------------------------------------------------------
 * The host library has fr_class_from_name()/fr_class_status(), but plugins link nothing
 * of the host, so the same X-macro lists from status.h are expanded here. */

typedef struct pu_class_row {
    fr_error_class cls;
    const char *name;
} pu_class_row;

typedef struct pu_status_row {
    fr_status code;
    fr_error_class cls;
    const char *name;
} pu_status_row;

#define PU_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The tables live in functions so a plugin that uses neither gets no unused-variable
 * warning. */
static inline const pu_class_row *pu_class_table(size_t *n)
{
    static const pu_class_row rows[] = {
#define PU_X_(name, retried, brk, text) {FR_CLASS_##name, text},
        FR_CLASS_LIST(PU_X_)
#undef PU_X_
    };
    *n = PU_COUNT(rows);
    return rows;
}

static inline const pu_status_row *pu_status_table(size_t *n)
{
    static const pu_status_row rows[] = {
#define PU_X_(name, value, cls, brk, text) {value, FR_CLASS_##cls, #name},
        FR_STATUS_LIST(PU_X_)
#undef PU_X_
    };
    *n = PU_COUNT(rows);
    return rows;
}

/* Sets *out to the status a plugin returns to fail with the class named `name`
 * ("unavailable"): the first status of that class in list order, as fr_class_status()
 * does (FR_OK for "none").  Returns 0, or -1 for an unknown (or NULL) name. */
static inline int pu_class_status(const char *name, fr_status *out)
{
    size_t nc, ns;
    const pu_class_row *classes = pu_class_table(&nc);
    const pu_status_row *statuses = pu_status_table(&ns);
    for (size_t i = 0; name && i < nc; i++) {
        if (strcmp(classes[i].name, name) != 0)
            continue;
        for (size_t j = 0; j < ns; j++) {
            if (statuses[j].cls == classes[i].cls) {
                *out = statuses[j].code;
                return 0;
            }
        }
    }
    return -1;
}

/* The known class names, comma-separated, for messages ("none, timeout, ...").
 * Writes at most `size` bytes (always NUL-terminated when size > 0). */
static inline void pu_class_names(char *out, size_t size)
{
    size_t used = 0, nc;
    const pu_class_row *classes = pu_class_table(&nc);
    if (size == 0)
        return;
    out[0] = '\0';
    for (size_t i = 0; i < nc; i++) {
        int n = snprintf(out + used, size - used, "%s%s", i ? ", " : "", classes[i].name);
        if (n < 0 || (size_t)n >= size - used)
            return;
        used += (size_t)n;
    }
}

/* Symbolic name of a status ("CANCELLED"), static, never NULL. */
static inline const char *pu_status_name(fr_status status)
{
    size_t ns;
    const pu_status_row *statuses = pu_status_table(&ns);
    for (size_t i = 0; i < ns; i++)
        if (statuses[i].code == status)
            return statuses[i].name;
    return "UNKNOWN";
}

/* ---- Memory -------------------------------------------------------------------------- */

/* Copies n bytes of s into the call's arena, NUL-terminated.  On OOM sets the call's
 * error and returns NULL (the caller returns FR_E_NOMEM). */
static inline char *pu_arena_copy(const fr_host_api *host, fr_call *call, const char *s, size_t n)
{
    char *p = host->alloc(call, n + 1);
    if (!p) {
        host->set_error(call, "out of memory (%zu bytes)", n + 1);
        return NULL;
    }
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* Returns a copy of n bytes of s as a callback's output (*out, *out_len) from the
 * call's arena.  FR_OK, or FR_E_NOMEM with the call's error set. */
static inline fr_status pu_output_copy(const fr_host_api *host, fr_call *call, const char *s,
                                       size_t n, char **out, size_t *out_len)
{
    char *copy = pu_arena_copy(host, call, s, n);
    if (!copy)
        return FR_E_NOMEM;
    *out = copy;
    *out_len = n;
    return FR_OK;
}

/* A growable byte buffer on the plugin's own heap (scratch space, never returned to the
 * host as is).  `oom` is sticky: after a failed append the buffer stops growing and the
 * caller checks it once at the end. */
typedef struct pu_buf {
    char *data;
    size_t len;
    size_t cap;
    int oom;
} pu_buf;

static inline void pu_buf_append(pu_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* Appends a string literal. */
#define pu_buf_lit(b, lit) pu_buf_append((b), "" lit, sizeof(lit) - 1) /* literals only */

static inline void pu_buf_free(pu_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- Words ---------------------------------------------------------------------------
 * Words are maximal runs of non-whitespace (ASCII space, tab, CR, LF, VT, FF); the mock
 * provider counts tokens in words. */

static inline int pu_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static inline size_t pu_count_words(const char *s, size_t n)
{
    size_t words = 0;
    for (size_t i = 0; i < n; i++)
        if (!pu_is_space(s[i]) && (i == 0 || pu_is_space(s[i - 1])))
            words++;
    return words;
}

/* Length of the prefix of s holding its first `max_words` words (without the
 * whitespace after the last one), or n when s has no more than that many words. */
static inline size_t pu_words_prefix(const char *s, size_t n, size_t max_words)
{
    size_t words = 0;
    for (size_t i = 0; i < n; i++) {
        if (!pu_is_space(s[i]) && (i == 0 || pu_is_space(s[i - 1]))) {
            if (words == max_words) {
                /* The cut: drop the whitespace before the first word that does not fit. */
                while (i > 0 && pu_is_space(s[i - 1]))
                    i--;
                return i;
            }
            words++;
        }
    }
    return n;
}

/* Length of the chunk starting at s: leading whitespace, one word, then the whitespace
 * that follows it (streaming hands text out in such chunks). */
static inline size_t pu_next_chunk(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && pu_is_space(s[i]))
        i++;
    while (i < n && !pu_is_space(s[i]))
        i++;
    while (i < n && pu_is_space(s[i]))
        i++;
    return i;
}

#ifdef FR_PLUGIN_UTIL_JSON
/* ---- JSON ---------------------------------------------------------------------------- */

#define PU_JSON_MAX_DEPTH 512

/* Parses exactly `len` bytes of JSON text (trailing whitespace allowed, anything else
 * after the value is an error).  Returns the new object (caller puts it) or NULL with a
 * reason in err.  A JSON `null` document is reported as an error too ("null"), since
 * every caller wants a value. */
/* One deep tokener per thread (freed when the thread ends; plugins are never unloaded,
 * so the destructor stays valid). */
static pthread_key_t pu_tokener_key;
static pthread_once_t pu_tokener_once = PTHREAD_ONCE_INIT;

static void pu_tokener_free(void *t)
{
    json_tokener_free(t);
}

static void pu_tokener_key_init(void)
{
    pthread_key_create(&pu_tokener_key, pu_tokener_free);
}

static inline json_tokener *pu_thread_tokener(void)
{
    pthread_once(&pu_tokener_once, pu_tokener_key_init);
    json_tokener *t = pthread_getspecific(pu_tokener_key);
    if (!t && (t = json_tokener_new_ex(PU_JSON_MAX_DEPTH)) != NULL)
        pthread_setspecific(pu_tokener_key, t);
    return t;
}

static inline json_object *pu_json_parse(const char *text, size_t len, char *err, size_t errlen)
{
    if (!text || len == 0) {
        snprintf(err, errlen, "empty document");
        return NULL;
    }
    if (len > INT32_MAX) {
        snprintf(err, errlen, "document too large (%zu bytes)", len);
        return NULL;
    }
    /* json-c's default depth (32) is too shallow for step inputs nesting earlier
     * steps' outputs; a deep tokener is costly to create, so each thread keeps one. */
    json_tokener *tok = pu_thread_tokener();
    if (!tok) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    json_object *obj = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_reset(tok);
    if (jerr != json_tokener_success) {
        snprintf(err, errlen, "%s at offset %zu",
                 jerr == json_tokener_continue ? "unexpected end of document"
                                               : json_tokener_error_desc(jerr),
                 end);
        json_object_put(obj);
        return NULL;
    }
    for (size_t i = end; i < len; i++) {
        if (!pu_is_space(text[i])) {
            snprintf(err, errlen, "unexpected text after the JSON value at offset %zu", i);
            json_object_put(obj);
            return NULL;
        }
    }
    if (!obj)
        snprintf(err, errlen, "document is null");
    return obj;
}

#define PU_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* Compact JSON text of obj (borrowed from obj, valid until it changes or is put), and its
 * length.  NULL on OOM. */
static inline const char *pu_json_text(json_object *obj, size_t *len)
{
    return json_object_to_json_string_length(obj, PU_JSON_FLAGS, len);
}

/* Serializes obj compactly into the call's arena: *out, *out_len.  Returns FR_OK or
 * FR_E_NOMEM (with the call's error set). */
static inline fr_status pu_json_out(const fr_host_api *host, fr_call *call, json_object *obj,
                                    char **out, size_t *out_len)
{
    size_t len = 0;
    const char *text = pu_json_text(obj, &len);
    if (!text) {
        host->set_error(call, "out of memory serializing JSON");
        return FR_E_NOMEM;
    }
    char *copy = pu_arena_copy(host, call, text, len);
    if (!copy)
        return FR_E_NOMEM;
    *out = copy;
    *out_len = len;
    return FR_OK;
}

/* The shortest text of d that reads back as d (0.7, not json-c's default
 * 0.69999999999999996), into text (at least 32 bytes). */
static inline void pu_double_text(double d, char *text, size_t size)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(text, size, "%.*g", prec, d);
        if (strtod(text, NULL) == d)
            break;
    }
}

/* Adds key -> val to obj; returns 0, or -1 on OOM (val is released then). */
static inline int pu_json_add(json_object *obj, const char *key, json_object *val)
{
    if (!val)
        return -1;
    if (json_object_object_add(obj, key, val) != 0) {
        json_object_put(val);
        return -1;
    }
    return 0;
}

static inline int pu_json_append(json_object *arr, json_object *val)
{
    if (!val)
        return -1;
    if (json_object_array_add(arr, val) != 0) {
        json_object_put(val);
        return -1;
    }
    return 0;
}

#include "json_scan.h" /* the fast path: scanned documents, json-c's exact output */

/* ---- Templates -----------------------------------------------------------------------
 * Text with {{path}} placeholders; whitespace inside the braces is ignored.  A path is
 * dot-separated segments: each selects a member of an object, or (when it is all digits)
 * an element of an array, starting at a root object.  Strings are inserted as they are,
 * other values as compact JSON.  "{{" without a closing "}}" and empty paths or segments
 * are syntax errors. */

/* One step of template scanning from *pos: the literal text before the next placeholder
 * (lit, lit_len) and the placeholder's path (path, path_len; path == NULL at the end of
 * the template).  Returns 0, or -1 on a syntax error with a reason in err. */
static inline int pu_tmpl_next(const char **pos, const char **lit, size_t *lit_len,
                               const char **path, size_t *path_len, char *err, size_t errlen)
{
    const char *p = *pos;
    const char *open = strstr(p, "{{");
    *lit = p;
    if (!open) {
        *lit_len = strlen(p);
        *path = NULL;
        *path_len = 0;
        *pos = p + *lit_len;
        return 0;
    }
    *lit_len = (size_t)(open - p);
    const char *close = strstr(open + 2, "}}");
    if (!close) {
        snprintf(err, errlen, "unterminated \"{{\" near \"%.24s\"", open);
        return -1;
    }
    const char *a = open + 2, *b = close;
    while (a < b && pu_is_space(*a))
        a++;
    while (b > a && pu_is_space(b[-1]))
        b--;
    if (a == b) {
        snprintf(err, errlen, "empty placeholder \"{{}}\"");
        return -1;
    }
    for (const char *c = a; c < b; c++) {
        int seg_start = c == a || c[-1] == '.';
        int seg_end = c + 1 == b || c[1] == '.';
        if (pu_is_space(*c) || (*c == '.' && (seg_start || seg_end)) || *c == '{') {
            snprintf(err, errlen, "bad placeholder path \"%.*s\"", (int)(b - a), a);
            return -1;
        }
    }
    *path = a;
    *path_len = (size_t)(b - a);
    *pos = close + 2;
    return 0;
}

/* Checks a template's syntax and, when `first_ok` is not NULL, that each path's first
 * segment is one of the NULL-terminated names in first_ok.  Returns 0, or -1 with a
 * reason in err. */
static inline int pu_tmpl_check(const char *tmpl, const char *const *first_ok, char *err,
                                size_t errlen)
{
    const char *pos = tmpl, *lit, *path;
    size_t lit_len, path_len;
    for (;;) {
        if (pu_tmpl_next(&pos, &lit, &lit_len, &path, &path_len, err, errlen) != 0)
            return -1;
        if (!path)
            return 0;
        if (!first_ok)
            continue;
        size_t seg = strcspn(path, ".");
        if (seg > path_len)
            seg = path_len;
        int ok = 0;
        for (size_t i = 0; first_ok[i] && !ok; i++)
            ok = strlen(first_ok[i]) == seg && memcmp(first_ok[i], path, seg) == 0;
        if (!ok) {
            int used = snprintf(err, errlen, "placeholder \"{{%.*s}}\" must start with ",
                                (int)path_len, path);
            for (size_t i = 0; first_ok[i] && used >= 0 && (size_t)used < errlen; i++)
                used += snprintf(err + used, errlen - (size_t)used, "%s\"%s\"",
                                 i == 0            ? ""
                                 : first_ok[i + 1] ? ", "
                                                   : " or ",
                                 first_ok[i]);
            return -1;
        }
    }
}

/* Looks up path (path_len bytes) under token root of d.  Returns the value's token (a JSON
 * null included), or -1 when the path is not there. */
static inline int pu_tmpl_lookup(const pj_doc *d, int root, const char *path, size_t path_len)
{
    int cur = root;
    size_t i = 0;
    char key[256];
    while (i <= path_len) {
        size_t j = i;
        while (j < path_len && path[j] != '.')
            j++;
        size_t n = j - i;
        if (n == 0 || n >= sizeof key)
            return -1;
        memcpy(key, path + i, n);
        key[n] = '\0';
        if (pj_type_of(d, cur) == PJ_OBJECT) {
            cur = pj_member(d, cur, key);
        } else if (pj_type_of(d, cur) == PJ_ARRAY) {
            if (strspn(key, "0123456789") != n)
                return -1;
            errno = 0;
            unsigned long long idx = strtoull(key, NULL, 10);
            cur = errno || idx > SIZE_MAX ? -1 : pj_at(d, cur, (size_t)idx);
        } else {
            return -1; /* a scalar (or null) has no members */
        }
        if (cur < 0)
            return -1;
        i = j + 1;
    }
    return cur;
}

/* Renders tmpl against the document d (paths start at its value) into out (appended).
 * Returns FR_OK; FR_E_CONFIG for a syntax error or a path not in d (the path or the
 * reason is written to err, `*missing` set to 1 for a missing path); FR_E_NOMEM on OOM. */
static inline fr_status pu_tmpl_render(const char *tmpl, const pj_doc *d, pu_buf *out, int *missing,
                                       char *err, size_t errlen)
{
    const char *pos = tmpl, *lit, *path;
    size_t lit_len, path_len;
    *missing = 0;
    for (;;) {
        if (pu_tmpl_next(&pos, &lit, &lit_len, &path, &path_len, err, errlen) != 0)
            return FR_E_CONFIG;
        pu_buf_append(out, lit, lit_len);
        if (!path)
            break;
        int val = pu_tmpl_lookup(d, 0, path, path_len);
        if (val < 0) {
            snprintf(err, errlen, "%.*s", (int)path_len, path);
            *missing = 1;
            return FR_E_CONFIG;
        }
        if (pj_type_of(d, val) == PJ_STRING)
            pj_str(d, val, out);
        else
            pj_put_value(out, d, val); /* compact JSON, as json-c writes it */
    }
    return out->oom ? FR_E_NOMEM : FR_OK;
}
#endif /* FR_PLUGIN_UTIL_JSON */

#endif /* FR_PLUGIN_UTIL_H */
