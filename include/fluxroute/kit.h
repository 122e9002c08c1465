/* The FluxRoute plugin kit: vendor-neutral helpers for plugin authors, the same code the
 * built-in plugins use.
 *
 *   - frk_buf:        a growable byte buffer;
 *   - frk_json_*:     a JSON scanner (flat tokens pointing into the text, no tree) and a
 *                     writer (string quoting, integers, scanned values), in json-c's exact
 *                     compact form;
 *   - frk_sse_next:   a server-sent-events parser, whole bodies or incremental;
 *   - frk_retry_after, frk_http_date, frk_http_header: Retry-After values (delta-seconds
 *                     and HTTP-dates, measured from the host's clock) and header look-up;
 *   - frk_http_status and frk_status_*: error classification by HTTP status, and what
 *                     the engine does with a status (retry, circuit breaker).
 *
 * Linking: a static library with its own pkg-config name,
 *     cc -fPIC -shared -fvisibility=hidden $(pkg-config --cflags fluxroute-kit) \
 *        my_plugin.c -o my_plugin.so $(pkg-config --libs fluxroute-kit)
 * Every kit symbol starts with frk_ and has hidden visibility (FRK_API), so a plugin that
 * links the kit still exports only fluxroute_plugin_v1 and never interposes with the
 * host's fr_ symbols.  The kit calls nothing of the host library; the JSON part uses
 * json-c for the rare texts it hands over (lenient input, unusual numbers and strings).
 *
 * Time: nothing here reads a clock of its own.  HTTP-dates are measured from a "now" the
 * caller passes in, taken from host->clock_us(call), so recorded runs replay exactly.
 *
 * Thread-safety: every function is safe to call from any thread on different objects; an
 * frk_buf or frk_json_doc must not be used by two threads at once.  No function keeps
 * global mutable state (json-c's parser, used by frk_json_scan_any, is kept per thread).
 *
 * Memory: frk_buf and frk_json_doc use the plugin's own heap (malloc), never the host's
 * arena: they are scratch space.  Copy a result to host->alloc(call, ...) to return it.
 * Since FluxRoute 0.1 (ABI 1.0). */
#ifndef FLUXROUTE_KIT_H
#define FLUXROUTE_KIT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <fluxroute/plugin.h>
#include <fluxroute/status.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FRK_API __attribute__((visibility("hidden")))
#else
#define FRK_API
#endif

/* ---- Growable buffer ------------------------------------------------------------------ */

/* A growable byte buffer on the plugin's heap.  Zero-initialize it (frk_buf b = {0});
 * after any append, data is NUL-terminated (data[len] == '\0').  `oom` is sticky: after a
 * failed allocation the buffer stops growing, so a caller appends freely and checks oom
 * once at the end.  The buffer owns data; release it with frk_buf_free(). */
typedef struct frk_buf {
    char *data;
    size_t len;
    size_t cap;
    int oom;
} frk_buf;

/* Makes room for n more bytes and the NUL.  Returns 0, or -1 (and sets b->oom) when the
 * allocation fails or b->oom was set.  Used by frk_buf_append. */
FRK_API int frk_buf_grow(frk_buf *b, size_t n);

/* Appends n bytes of s (borrowed for the call; may be NULL when n is 0).  On allocation
 * failure sets b->oom and appends nothing, then or later. */
static inline void frk_buf_append(frk_buf *b, const char *s, size_t n)
{
    if (b->oom || (b->len + n + 1 > b->cap && frk_buf_grow(b, n) != 0))
        return;
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* Appends a string literal (literals only: its size is taken with sizeof). */
#define frk_buf_lit(b, lit) frk_buf_append((b), "" lit, sizeof(lit) - 1)

/* Frees the buffer's data and empties it (oom is kept).  b may be reused afterwards. */
FRK_API void frk_buf_free(frk_buf *b);

/* ---- JSON scanner ---------------------------------------------------------------------
 * A document is scanned once into a flat array of tokens that point into its text (no
 * tree, no allocation for documents of up to FRK_JSON_INLINE_TOKENS values), then read
 * with member and index look-ups.  Tokens are addressed by index: 0 is the document's
 * value; an object's members are key, value token pairs; -1 means "none" and is accepted
 * by every reader (a missing member reads as JSON null, an empty string...).
 *
 * Reading: frk_json_scan() accepts strict JSON (RFC 8259) only; frk_json_scan_any() also
 * reads what json-c reads leniently (NaN, comments, raw control characters) by having
 * json-c rewrite such a text first, so both read the same values.
 *
 * Ownership: an frk_json_doc borrows its text, which must outlive it, and owns its tokens:
 * release it with frk_json_free(), also after a failed scan. */

typedef enum frk_json_type {
    FRK_JSON_NULL,
    FRK_JSON_FALSE,
    FRK_JSON_TRUE,
    FRK_JSON_INT,    /* a number without fraction or exponent */
    FRK_JSON_DOUBLE, /* a number with either */
    FRK_JSON_STRING,
    FRK_JSON_ARRAY,
    FRK_JSON_OBJECT,
} frk_json_type;

#define FRK_JSON_ESCAPED  1u /* string: holds backslash escapes */
#define FRK_JSON_UNUSUAL  2u /* number or string json-c writes in a form of its own */
#define FRK_JSON_DUP_KEYS 4u /* object: some key appears twice */
#define FRK_JSON_REWRITE  8u /* string: holds an escape json-c writes differently (\/, \u00e9) */

/* One value of a scanned document. */
typedef struct frk_json_tok {
    uint32_t start, len; /* strings: the raw text between the quotes; others: the value */
    uint32_t next;       /* index of the token after this value (and its members) */
    uint16_t type;       /* frk_json_type */
    uint16_t flags;      /* FRK_JSON_ESCAPED... */
} frk_json_tok;

#define FRK_JSON_INLINE_TOKENS 64
#define FRK_JSON_MAX_DEPTH     512 /* deeper nesting is refused */

/* A scanned document.  Declare it on the stack; its fields are read-only for callers. */
typedef struct frk_json_doc {
    const char *text; /* borrowed (or `owned`) */
    size_t len;
    frk_json_tok *tok; /* tok[0] is the document's value */
    uint32_t n, cap;
    char *owned; /* text rewritten by json-c (frk_json_scan_any), freed by frk_json_free */
    frk_json_tok inline_tok[FRK_JSON_INLINE_TOKENS];
} frk_json_doc;

/* Scans len bytes of strict JSON (whitespace around the value allowed) into d.  text is
 * borrowed: it must outlive d.  Returns 0, or -1 when the text is not one JSON value or
 * on OOM.  Either way release d with frk_json_free(). */
FRK_API int frk_json_scan(frk_json_doc *d, const char *text, size_t len);

/* frk_json_scan, or, for text json-c reads but strict JSON does not, json-c's rewrite of
 * it (owned by d).  Returns 0, or -1 when json-c cannot read it either, with the reason
 * in err (errlen bytes, NUL-terminated).  Release d with frk_json_free(). */
FRK_API int frk_json_scan_any(frk_json_doc *d, const char *text, size_t len, char *err,
                              size_t errlen);

/* Releases what d holds (tokens, a rewritten text); d may be scanned again. */
FRK_API void frk_json_free(frk_json_doc *d);

/* The type of token i; FRK_JSON_NULL for i < 0. */
static inline frk_json_type frk_json_type_of(const frk_json_doc *d, int i)
{
    return i < 0 ? FRK_JSON_NULL : (frk_json_type)d->tok[i].type;
}

/* Walking an array's elements in order:
 *   for (int e = frk_json_first(d, arr); e >= 0; e = frk_json_next(d, arr, e)) ...
 * frk_json_first is -1 for an empty array or a token that is not an array. */
static inline int frk_json_first(const frk_json_doc *d, int arr)
{
    if (arr < 0 || d->tok[arr].type != FRK_JSON_ARRAY || d->tok[arr].next == (uint32_t)arr + 1)
        return -1;
    return arr + 1;
}

static inline int frk_json_next(const frk_json_doc *d, int arr, int e)
{
    uint32_t k = d->tok[e].next;
    return k < d->tok[arr].next ? (int)k : -1;
}

/* Walking an object's members in order: key token k (a string), value token k + 1:
 *   for (int k = frk_json_first_key(d, obj); k >= 0; k = frk_json_next_key(d, obj, k)) ...
 * frk_json_first_key is -1 for an empty object or a token that is not an object. */
static inline int frk_json_first_key(const frk_json_doc *d, int obj)
{
    if (obj < 0 || d->tok[obj].type != FRK_JSON_OBJECT || d->tok[obj].next == (uint32_t)obj + 1)
        return -1;
    return obj + 1;
}

static inline int frk_json_next_key(const frk_json_doc *d, int obj, int k)
{
    uint32_t next = d->tok[k + 1].next;
    return next < d->tok[obj].next ? (int)next : -1;
}

/* The number of elements of an array token, or of members of an object token; 0 for
 * anything else. */
FRK_API size_t frk_json_count(const frk_json_doc *d, int arr);

/* Element idx of array token arr, or -1. */
FRK_API int frk_json_at(const frk_json_doc *d, int arr, size_t idx);

/* The value of member `key` of object token obj (the last one when a key repeats, as
 * json-c keeps), or -1.  key is borrowed for the call. */
FRK_API int frk_json_member(const frk_json_doc *d, int obj, const char *key);

/* Member `key` when it has type `type`, else -1. */
static inline int frk_json_get(const frk_json_doc *d, int obj, const char *key, frk_json_type type)
{
    int v = frk_json_member(d, obj, key);
    return v >= 0 && d->tok[v].type == type ? v : -1;
}

/* Appends the decoded text of string token i to out (escapes resolved, UTF-8).  Returns
 * 0, or -1 when i is not a string.  OOM is reported in out->oom. */
FRK_API int frk_json_str(const frk_json_doc *d, int i, frk_buf *out);

/* Appends string token i decoded and cut at its first NUL, as C code reading json-c's
 * strings sees it. */
FRK_API void frk_json_cstr(const frk_json_doc *d, int i, frk_buf *out);

/* Copies string token i (as frk_json_cstr reads it) into dst (size bytes, cut to fit,
 * NUL-terminated).  Returns 1, or 0 (dst untouched) when i is not a string or on OOM. */
FRK_API int frk_json_copy(const frk_json_doc *d, int i, char *dst, size_t size);

/* The decoded string token i as a new NUL-terminated string from malloc (the caller
 * frees it with free()), or NULL when i is not a string or on OOM. */
FRK_API char *frk_json_strdup(const frk_json_doc *d, int i);

/* Integer token i as int64 (what json-c's json_object_get_int64 gives), 0 when i is not
 * an integer. */
FRK_API int64_t frk_json_int64(const frk_json_doc *d, int i);

/* ---- JSON writer ---------------------------------------------------------------------
 * Appends JSON text to an frk_buf, byte for byte as json-c writes it compactly without
 * slash escapes (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE).  A writer
 * composes an object with literals: frk_buf_lit(b, "{\"a\":"), a value, ... OOM is
 * reported in out->oom. */

/* Appends s (n bytes, borrowed; may hold NULs) as a quoted JSON string. */
FRK_API void frk_json_put_string(frk_buf *out, const char *s, size_t n);

/* Appends the C string s as a quoted JSON string, or null when s is NULL. */
FRK_API void frk_json_put_cstr(frk_buf *out, const char *s);

/* Appends v in decimal. */
FRK_API void frk_json_put_int64(frk_buf *out, int64_t v);

/* Appends value token i of d as json-c writes it once parsed: strings re-escaped,
 * integers as int64, doubles in their original spelling, repeated keys once (first
 * place, last value). */
FRK_API void frk_json_put_value(frk_buf *out, const frk_json_doc *d, int i);

/* frk_json_put_value, or null for a missing value (i < 0). */
FRK_API void frk_json_put_value_or_null(frk_buf *out, const frk_json_doc *d, int i);

/* Appends string token i decoded and quoted again; with cut, only up to its first NUL
 * (as json-c writes a C string read out of it). */
FRK_API void frk_json_put_decoded(frk_buf *out, const frk_json_doc *d, int i, int cut);

/* ---- Server-sent events --------------------------------------------------------------- */

/* Reads the next event from [*pos, end) (the text/event-stream format): `event` gets the
 * event name ("" when none, cut to event_size), `data` the data lines joined with '\n'
 * (data is emptied first).  Comment lines and other fields are skipped.  Returns 1 for an
 * event (*pos then points after it); 0 when no complete event is left: *pos then points
 * at the start of the unconsumed bytes (an event not yet closed by a blank line), which
 * an incremental reader keeps and reads again with the bytes that follow (at the end of a
 * stream they are discarded, as the SSE standard says); -1 when `data` ran out of memory.
 * A lone '\r' ending the bytes counts as a line end; its '\n', when it follows later,
 * reads as a blank line outside any event, which is skipped, so the events do not depend
 * on where the bytes were split.  Typical use, in host->http's on_body callback:
 *   frk_buf_append(&pending, bytes, len);
 *   const char *pos = pending.data, *end = pos + pending.len;
 *   while ((rc = frk_sse_next(&pos, end, event, sizeof event, &data)) > 0) ...handle...
 *   then keep [pos, end) in pending for the next call. */
FRK_API int frk_sse_next(const char **pos, const char *end, char *event, size_t event_size,
                         frk_buf *data);

/* ---- HTTP: headers, Retry-After, dates ------------------------------------------------- */

/* Finds header `name` (case-insensitive) in a raw header block (fr_http_response.headers),
 * in the last response head when there were several (100 Continue, redirects).  Sets *val
 * and *len to its value, borrowed from block (not NUL-terminated, leading whitespace
 * skipped).  Returns 1 when found, else 0. */
FRK_API int frk_http_header(const char *block, size_t block_len, const char *name, const char **val,
                            size_t *len);

/* Parses an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", RFC 9110 5.6.7) of n bytes into
 * seconds since the epoch.  The obsolete RFC 850 and asctime forms are not accepted.
 * Returns 0, or -1 when the text is not such a date. */
FRK_API int frk_http_date(const char *v, size_t n, int64_t *epoch_s);

#define FRK_RETRY_AFTER_MAX_US (86400LL * 1000000) /* larger delays are capped: one day */

/* Parses a Retry-After value of n bytes: delta-seconds ("120", fractions accepted) or an
 * HTTP-date, measured from now_us (microseconds since the epoch: pass
 * host->clock_us(call), never time(), so replays see the recorded clock; a past date
 * gives 0).  Surrounding whitespace is ignored.  Returns 0 and sets *delay_us (capped at
 * FRK_RETRY_AFTER_MAX_US), or -1 when the value is neither. */
FRK_API int frk_retry_after(const char *v, size_t n, int64_t now_us, int64_t *delay_us);

/* frk_retry_after for a response: the Retry-After header of resp, an HTTP-date measured
 * from host->clock_us(call) (read only when the value is a date).  Returns 0 and sets
 * *delay_us, or -1 when resp has no usable Retry-After.  Hand the delay to the engine
 * with host->set_retry_after(call, *delay_us). */
FRK_API int frk_retry_after_response(const fr_host_api *host, fr_call *call,
                                     const fr_http_response *resp, int64_t *delay_us);

/* ---- Error classification ------------------------------------------------------------- */

/* The status a plugin returns for a failed HTTP exchange with HTTP status `http`, which
 * decides the retry and breaker class (include/fluxroute/status.h):
 *   400, 404, 413, 422 and other 4xx: FR_E_BAD_REQUEST (not retried);
 *   401, 403: FR_E_AUTH;  408: FR_E_REQUEST_TIMEOUT;  429: FR_E_RATE_LIMITED;
 *   503, 529: FR_E_OVERLOADED;  500, 502, 504 and other 5xx: FR_E_UNAVAILABLE.
 * FR_OK for anything below 400 (not a failure by its status). */
FRK_API fr_status frk_http_status(int http);

/* The symbolic name of a status ("RATE_LIMITED"), static, never NULL ("UNKNOWN"). */
FRK_API const char *frk_status_name(fr_status status);

/* 1 when the engine retries an attempt that failed with `status`, else 0 (as
 * fr_status_retried() in the host library). */
FRK_API int frk_status_retried(fr_status status);

/* 1 when a failure with `status` counts toward opening the circuit breaker, else 0 (as
 * fr_status_counts_for_breaker()). */
FRK_API int frk_status_counts_for_breaker(fr_status status);

/* Sets *out to the status to return to fail with the class named `name` ("unavailable",
 * as in manifests and reports): the first status of that class (FR_OK for "none").
 * Returns 0, or -1 for an unknown or NULL name. */
FRK_API int frk_class_status(const char *name, fr_status *out);

/* The class names, comma-separated ("none, timeout, ..."), for messages: at most size
 * bytes into out, NUL-terminated when size > 0. */
FRK_API void frk_class_names(char *out, size_t size);

#ifdef __cplusplus
}
#endif
#endif /* FLUXROUTE_KIT_H */
