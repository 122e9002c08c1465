/* Helpers shared by the built-in plugins: error classes, arena copies, JSON in and out,
 * word counting, a growable buffer and the {{path}} template language.
 *
 * Built into the static helper library plugins/libfrplugin.a, which each plugin links:
 * plugins link nothing of the host library, and build with -fvisibility=hidden, so they
 * export nothing but fluxroute_plugin_v1.  Everything is thread-safe (no shared mutable state): the
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

#include <json-c/json.h>

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

/* Sets *out to the status a plugin returns to fail with the class named `name`
 * ("unavailable"): the first status of that class in list order, as fr_class_status()
 * does (FR_OK for "none").  Returns 0, or -1 for an unknown (or NULL) name. */
int pu_class_status(const char *name, fr_status *out);

/* The known class names, comma-separated, for messages ("none, timeout, ...").
 * Writes at most `size` bytes (always NUL-terminated when size > 0). */
void pu_class_names(char *out, size_t size);

/* Symbolic name of a status ("CANCELLED"), static, never NULL. */
const char *pu_status_name(fr_status status);

/* ---- Memory -------------------------------------------------------------------------- */

/* Copies n bytes of s into the call's arena, NUL-terminated.  On OOM sets the call's
 * error and returns NULL (the caller returns FR_E_NOMEM). */
char *pu_arena_copy(const fr_host_api *host, fr_call *call, const char *s, size_t n);

/* Returns a copy of n bytes of s as a callback's output (*out, *out_len) from the
 * call's arena.  FR_OK, or FR_E_NOMEM with the call's error set. */
fr_status pu_output_copy(const fr_host_api *host, fr_call *call, const char *s, size_t n,
                         char **out, size_t *out_len);

/* A growable byte buffer on the plugin's own heap (scratch space, never returned to the
 * host as is).  `oom` is sticky: after a failed append the buffer stops growing and the
 * caller checks it once at the end. */
typedef struct pu_buf {
    char *data;
    size_t len;
    size_t cap;
    int oom;
} pu_buf;

void pu_buf_append(pu_buf *b, const char *s, size_t n);

/* Appends a string literal. */
#define pu_buf_lit(b, lit) pu_buf_append((b), "" lit, sizeof(lit) - 1) /* literals only */

void pu_buf_free(pu_buf *b);

/* ---- Words ---------------------------------------------------------------------------
 * Words are maximal runs of non-whitespace (ASCII space, tab, CR, LF, VT, FF); the mock
 * provider counts tokens in words. */

int pu_is_space(char c);

size_t pu_count_words(const char *s, size_t n);

/* Length of the prefix of s holding its first `max_words` words (without the
 * whitespace after the last one), or n when s has no more than that many words. */
size_t pu_words_prefix(const char *s, size_t n, size_t max_words);

/* Length of the chunk starting at s: leading whitespace, one word, then the whitespace
 * that follows it (streaming hands text out in such chunks). */
size_t pu_next_chunk(const char *s, size_t n);

/* ---- JSON ---------------------------------------------------------------------------- */

#define PU_JSON_MAX_DEPTH 512

/* Parses exactly `len` bytes of JSON text (trailing whitespace allowed, anything else
 * after the value is an error).  Returns the new object (caller puts it) or NULL with a
 * reason in err.  A JSON `null` document is reported as an error too ("null"), since
 * every caller wants a value. */

json_object *pu_json_parse(const char *text, size_t len, char *err, size_t errlen);

#define PU_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* Compact JSON text of obj (borrowed from obj, valid until it changes or is put), and its
 * length.  NULL on OOM. */
const char *pu_json_text(json_object *obj, size_t *len);

/* Serializes obj compactly into the call's arena: *out, *out_len.  Returns FR_OK or
 * FR_E_NOMEM (with the call's error set). */
fr_status pu_json_out(const fr_host_api *host, fr_call *call, json_object *obj, char **out,
                      size_t *out_len);

/* The shortest text of d that reads back as d (0.7, not json-c's default
 * 0.69999999999999996), into text (at least 32 bytes). */
void pu_double_text(double d, char *text, size_t size);

/* Adds key -> val to obj; returns 0, or -1 on OOM (val is released then). */
int pu_json_add(json_object *obj, const char *key, json_object *val);

#endif /* FR_PLUGIN_UTIL_H */
