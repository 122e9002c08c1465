/* Parsing a whole JSON text that a person wrote (a request body, `run --input`), with the
 * place of the first problem, so that the error can say where it is.  Cold paths; the hot
 * path checks plugin outputs with json_check.h instead.  Also fr__json_tree, json-c's tree
 * of a text already checked, for the hot path (a provider call's recorded effect).
 * Thread-safe. */
#ifndef FR_CORE_JSON_PARSE_H
#define FR_CORE_JSON_PARSE_H

#include <stddef.h>

struct json_object;

/* How deep a run's input may nest: json-c's default, which plugins that parse their input
 * with json-c also have. */
#define FR_INPUT_MAX_DEPTH 32

/* Parses s[0..len) as exactly one JSON value (whitespace around it allowed) nested at
 * most max_depth deep.  Returns 0 with the value in *out (release it with json_object_put;
 * NULL for the text `null`), or -1 with *err_at set to the byte offset of the problem and
 * *why to a static description ("unexpected end of input", "trailing data after the
 * value", or json-c's words). */
int fr__json_parse_whole(const char *s, size_t len, int max_depth, struct json_object **out,
                         size_t *err_at, const char **why);

/* The tree json_tokener_parse(s) gives (json-c's defaults: nesting at most 32 deep, not
 * strict), or NULL for the text `null` and for what json-c cannot parse, built at less
 * cost: objects and arrays of strings, integers and literals are built directly in one
 * pass; anything else is parsed by this thread's json-c tokener (kept between parses).
 * `s` is NUL-terminated.  Release the tree with json_object_put.  Thread-safe. */
struct json_object *fr__json_tree(const char *s);

/* The tree of s when fr__json_tree builds it directly (one object or array of those shapes,
 * nested less than FR_INPUT_MAX_DEPTH deep), else NULL: never the tokener.  For text that
 * the caller has checked already (json_check.h).  `s` is NUL-terminated. */
struct json_object *fr__json_tree_direct(const char *s);

/* The 1-based line and column of byte offset `at` in s (columns count bytes). */
void fr__json_line_col(const char *s, size_t at, int *line, int *col);

#endif
