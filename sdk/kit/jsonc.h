/* The kit's json-c glue, shared with the built-in plugins (plugins/plugin_util.c) but not
 * installed: a plugin author's API has no json-c types.  Thread-safe. */
#ifndef FLUXROUTE_KIT_JSONC_H
#define FLUXROUTE_KIT_JSONC_H

#include <stddef.h>

#include <json-c/json.h>

#include <fluxroute/kit.h>

/* How the kit (and the plugins) have json-c write: compact, no slash escapes. */
#define FRK__JSONC_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* Parses exactly `len` bytes of JSON text (trailing whitespace allowed, anything else
 * after the value is an error) with a per-thread tokener nesting up to
 * FRK_JSON_MAX_DEPTH.  Returns the new object (the caller puts it) or NULL with a reason
 * in err.  A JSON `null` document is reported as an error too ("document is null"), since
 * every caller wants a value. */
FRK_API json_object *frk__jsonc_parse(const char *text, size_t len, char *err, size_t errlen);

#endif /* FLUXROUTE_KIT_JSONC_H */
