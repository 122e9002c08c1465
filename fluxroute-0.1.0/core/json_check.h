/* A fast, allocation-free JSON syntax check (RFC 8259) for plugin outputs and run
 * inputs on the hot path.  Thread-safe. */
#ifndef FR_CORE_JSON_CHECK_H
#define FR_CORE_JSON_CHECK_H

#include <stddef.h>

/* Maximum nesting depth accepted. */
#define FR_JSON_MAX_DEPTH 512

/* Returns 1 when s[0..len) is exactly one JSON value (surrounding whitespace allowed),
 * with valid UTF-8 in strings and nesting at most FR_JSON_MAX_DEPTH; else 0. */
int fr__json_valid(const char *s, size_t len);

#endif
