/* Option tables: validating a `config:` mapping against a plugin's declared options and
 * filling the plugin's config struct.  Thread-safe (no shared state). */
#ifndef FR_CORE_OPTIONS_H
#define FR_CORE_OPTIONS_H

#include <fluxroute/plugin.h>

#include "base/diag.h"
#include "base/yaml_tree.h"

/* A filled config struct plus the host-owned strings it points to. */
typedef struct fr_config {
    void *data;     /* config_size bytes (or NULL when config_size is 0) */
    char **strings; /* owned strings referenced from data */
    size_t n_strings;
} fr_config;

/* Validates `config` (a mapping node, or NULL when absent) against desc->options and
 * fills *out.  `owner` names the user in messages, e.g. `agent "summarize"`.  Each
 * problem (unknown key, with the known ones listed; wrong type; bad duration; missing
 * required option) is added to diags at the offending node's line:col (the owner's
 * `owner_node` for a missing option).  Returns 0 when there was no problem. */
int fr__options_fill(const fr_plugin *desc, const fr_ynode *config, const fr_ynode *owner_node,
                     const char *owner, fr_config *out, fr_diags *diags);

void fr__config_free(fr_config *cfg);

/* Whether two `config:` mappings (either may be NULL) give the same configuration once
 * desc's defaults are filled in: option by option, by value (a duration "1s" equals
 * "1000ms").  Returns 1 when they do, else 0 with *differs naming the first option that
 * differs (NULL when one of them does not validate, or memory ran out). */
int fr__options_same(const fr_plugin *desc, const fr_ynode *a, const fr_ynode *b,
                     const char **differs);

/* Option type name for listings ("string", "int", "bool", "double", "duration", "json"). */
const char *fr__option_type_name(fr_option_type type);

#endif
