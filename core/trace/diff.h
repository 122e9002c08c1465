/* Comparing traces field by field, timing fields aside, as replay and debug do.
 * Thread-safety: no shared state. */
#ifndef FR_CORE_TRACE_DIFF_H
#define FR_CORE_TRACE_DIFF_H

#include <stddef.h>
#include <stdio.h>

#include <json-c/json.h>

/* Compares two trace documents field by field, ignoring timing fields (run_id,
 * started_at, finished_at, every *_us except backoff_us) and any top-level key listed
 * in `skip` (NULL-terminated; may be NULL).  Appends each divergence as
 * {path, step, attempt, expected, actual} to `out` (a JSON array), stopping after the
 * first unless `all`.  Returns the number found. */
size_t fr__trace_diff(json_object *expected, json_object *actual, const char *const *skip,
                      int ignore_effects, int all, json_object *out);

/* What `fluxroute debug --json` reports for two traces (POST /v1/debug too):
 * {"identical", "notes", "divergences"}, where notes say whether the traces ran different
 * manifests, plugin builds or providers, and divergences are fr__trace_diff's (the
 * manifest, its name and digest, plugins and providers set aside), every one when `all`,
 * else the first.  `a` and `b` are borrowed.  Returns a new object (json_object_put), or
 * NULL on OOM. */
json_object *fr__trace_debug(json_object *a, json_object *b, int all);

/* Prints one divergence in the CLI's format, with values truncated sensibly.
 * `a_name`/`b_name` label the two sides ("recorded"/"replayed", "expected"/"actual"). */
void fr__divergence_print(FILE *out, json_object *div, const char *a_name, const char *b_name);

/* The string member `key` of object `o` (may be NULL), or NULL when absent or not a
 * string.  Borrowed from `o`.  Shared by the readers of traces in core/trace/. */
const char *fr__trace_member_string(json_object *o, const char *key);

#endif
