/* The {{path}} template language of the built-in plugins (llm, mock): text with
 * placeholders rendered against a scanned JSON document (json_scan.h).  Pure functions,
 * thread-safe. */
#ifndef FR_PLUGIN_TEMPLATE_H
#define FR_PLUGIN_TEMPLATE_H

#include <stddef.h>

#include <fluxroute/plugin.h>

#include <fluxroute/kit.h>
#include "plugin_util.h"

/* ---- Templates -----------------------------------------------------------------------
 * Text with {{path}} placeholders; whitespace inside the braces is ignored.  A path is
 * dot-separated segments: each selects a member of an object, or (when it is all digits)
 * an element of an array, starting at a root object.  Strings are inserted as they are,
 * other values as compact JSON.  "{{" without a closing "}}" and empty paths or segments
 * are syntax errors. */

/* Checks a template's syntax and, when `first_ok` is not NULL, that each path's first
 * segment is one of the NULL-terminated names in first_ok.  Returns 0, or -1 with a
 * reason in err. */
int pu_tmpl_check(const char *tmpl, const char *const *first_ok, char *err, size_t errlen);

/* Renders tmpl against the document d (paths start at its value) into out (appended).
 * Returns FR_OK; FR_E_CONFIG for a syntax error or a path not in d (the path or the
 * reason is written to err, `*missing` set to 1 for a missing path); FR_E_NOMEM on OOM. */
fr_status pu_tmpl_render(const char *tmpl, const frk_json_doc *d, frk_buf *out, int *missing,
                         char *err, size_t errlen);

#endif /* FR_PLUGIN_TEMPLATE_H */
