/* A fast, allocation-free JSON syntax check (RFC 8259) for plugin outputs and run
 * inputs on the hot path.  Thread-safe. */
#ifndef FR_CORE_JSON_CHECK_H
#define FR_CORE_JSON_CHECK_H

#include <stddef.h>
#include <stdint.h>

/* Maximum nesting depth accepted. */
#define FR_JSON_MAX_DEPTH 512

/* Returns 1 when s[0..len) is exactly one JSON value (surrounding whitespace allowed),
 * with valid UTF-8 in strings and nesting at most FR_JSON_MAX_DEPTH; else 0. */
int fr__json_valid(const char *s, size_t len);

/* The same check, saying where it failed: FR_JSON_VALID, or the byte offset at (or just
 * after) the first problem. */
#define FR_JSON_VALID ((size_t)-1)
size_t fr__json_check(const char *s, size_t len);

/* Writes `s` as a quoted JSON string at `dst` as json-c writes it without escaping '/'
 * ('"' and '\\' escaped, \n \t \r \b \f in their short forms, other control characters
 * as \u00XX, everything else as it is) and returns the end.  `dst` must have room for
 * 6 * strlen(s) + 2 bytes.  Not NUL-terminated. */
char *fr__json_put_string(char *dst, const char *s);

/* The same for the `n` bytes at `s` (NUL bytes included, as \u0000); room for 6 * n + 2. */
char *fr__json_put_string_len(char *dst, const char *s, size_t n);

/* Decodes the body of a JSON string (the n bytes between its quotes, valid JSON) into
 * `out`, which has room for n bytes (a decoded string is never longer), and returns the
 * decoded length.  \uXXXX becomes UTF-8; a lone surrogate becomes U+FFFD.  Not
 * NUL-terminated. */
size_t fr__json_get_string(const char *s, size_t n, char *out);

/* Writes the JSON string token tok[0..n) (quotes included) as json-c would write the
 * string it reads from it (fr__json_put_string_len of the decoded bytes), without
 * decoding it into a buffer first.  Returns the end (room for n bytes: never longer), or
 * NULL when tok is not exactly one valid string token or escapes a UTF-16 surrogate
 * (whose reading json-c decides: parse it for real). */
char *fr__json_recode_string(char *dst, const char *tok, size_t n);

/* The JSON number token v[0..n) that json-c reads as an integer (no fraction or exponent):
 * 1 with *out when it is within int64, -1 past int64 (json-c's own reading decides), 0
 * when v is no such token (a double, another value). */
int fr__json_int_token(const char *v, size_t n, int64_t *out);

/* Finds member `key` of the JSON object s[0..len) without building a tree: returns 1 and
 * sets *value / *value_len to the member's raw value text (the last one when the key is
 * repeated), 0 when the object has no such member, -1 when s is not one JSON object or a
 * member name uses escapes (then parse it for real). */
int fr__json_member(const char *s, size_t len, const char *key, const char **value,
                    size_t *value_len);

/* The same for the `n` members `keys` in one pass: values[i] / value_lens[i] is member
 * keys[i]'s raw value text, or NULL / 0 when absent.  Returns how many of `keys` are
 * there, or -1 as fr__json_member does. */
int fr__json_members(const char *s, size_t len, const char *const *keys, size_t n,
                     const char **values, size_t *value_lens);

/* The same, but a member not among `keys` is -1 too. */
int fr__json_members_only(const char *s, size_t len, const char *const *keys, size_t n,
                          const char **values, size_t *value_lens);

/* The elements of the JSON array s[0..len), one per call, without building a tree: start
 * with *at = 0.  Returns 1 with the next element's raw text in *value / *value_len, 0
 * after the last, or -1 when s is not one JSON array (whitespace around it allowed; the
 * last element's call checks the end, so a caller acts on what it read only after 0). */
int fr__json_array_next(const char *s, size_t len, size_t *at, const char **value,
                        size_t *value_len);

#endif
