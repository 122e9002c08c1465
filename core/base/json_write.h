/* Writing JSON text straight into a byte buffer, without json-c trees and their print
 * buffers: the run report, traces and journal entries are written this way.  The bytes are
 * json-c's compact form without escaping '/' (JSON_C_TO_STRING_PLAIN |
 * JSON_C_TO_STRING_NOSLASHESCAPE).  Thread-safe: no shared state. */
#ifndef FR_CORE_JSON_WRITE_H
#define FR_CORE_JSON_WRITE_H

#include <stddef.h>

#include <json-c/json.h>

#include "base/bytebuf.h"

/* Appends the n bytes at s as a quoted JSON string. */
void fr__json_write_string(fr_bytebuf *b, const char *s, size_t n);

/* Appends the C string s as a quoted JSON string, or null when s is NULL. */
void fr__json_write_cstr(fr_bytebuf *b, const char *s);

/* fr__json_write_cstr, with s scrubbed of secrets first when `scrub` (fr__secret_scrub:
 * what fr__secret_scrub_json does to each string of a tree). */
void fr__json_write_cstr_scrub(fr_bytebuf *b, const char *s, int scrub);

/* Appends a json-c value (NULL: null), as json-c would write it.  A string value whose
 * userdata is `raw_marker` (non-NULL) holds JSON text and is appended as it is.  Past
 * FR_JSON_WRITE_MAX_DEPTH the rest of a value is written by json-c itself. */
#define FR_JSON_WRITE_MAX_DEPTH 256
void fr__json_write_value(fr_bytebuf *b, json_object *o, const void *raw_marker);

#endif
