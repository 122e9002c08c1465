/* Helpers shared by the built-in plugins: arena copies, json-c in and out, and word
 * counting.  The vendor-neutral pieces (buffer, JSON scanner and writer, status names and
 * classes) are the plugin kit's (include/fluxroute/kit.h).
 *
 * Built into the plugins' helper library (plugins/libfrplugin.la), which each plugin
 * links: plugins link nothing of the host library, and build with -fvisibility=hidden, so
 * they export nothing but fluxroute_plugin_v1.  Everything is thread-safe (no shared
 * mutable state): the callers keep per-call data on the stack, in their own heap buffers
 * or in the arena.
 *
 * Ownership: strings copied into the arena (pu_arena_copy, pu_json_out) belong to the
 * host and are never freed here. */
#ifndef FR_PLUGIN_UTIL_H
#define FR_PLUGIN_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include <fluxroute/kit.h>
#include <fluxroute/plugin.h>

#include "kit/jsonc.h"

#define PU_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- Memory -------------------------------------------------------------------------- */

/* Copies n bytes of s into the call's arena, NUL-terminated.  On OOM sets the call's
 * error and returns NULL (the caller returns FR_E_NOMEM). */
char *pu_arena_copy(const fr_host_api *host, fr_call *call, const char *s, size_t n);

/* Returns a copy of n bytes of s as a callback's output (*out, *out_len) from the
 * call's arena.  FR_OK, or FR_E_NOMEM with the call's error set. */
fr_status pu_output_copy(const fr_host_api *host, fr_call *call, const char *s, size_t n,
                         char **out, size_t *out_len);

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

/* Parses exactly `len` bytes of JSON text (trailing whitespace allowed, anything else
 * after the value is an error).  Returns the new object (caller puts it) or NULL with a
 * reason in err.  A JSON `null` document is reported as an error too ("null"), since
 * every caller wants a value.  (The kit's frk__jsonc_parse: one deep tokener per
 * thread.) */

json_object *pu_json_parse(const char *text, size_t len, char *err, size_t errlen);

#define PU_JSON_FLAGS FRK__JSONC_FLAGS

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
