/* A YAML document loaded into a tree of nodes that remember where they came from
 * (line and column), with YAML 1.2 core-schema typing of plain scalars: so `yes`, `on`
 * and `07` are strings, `true`/`false` booleans, `0o17`/`0x1f` integers.
 *
 * Anchors and aliases are resolved by copying references (aliases point at the anchored
 * node; the tree owns each node once).  Only the first document of a stream is read.
 * Not thread-safe while loading; a finished tree is read-only and may be shared. */
#ifndef FR_CORE_YAML_TREE_H
#define FR_CORE_YAML_TREE_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "base/diag.h"

typedef enum fr_ynode_kind { FR_Y_SCALAR = 1, FR_Y_MAP = 2, FR_Y_SEQ = 3 } fr_ynode_kind;

/* Core-schema type of a scalar. */
typedef enum fr_yscalar_type {
    FR_YS_STRING = 1, /* anything else, and every quoted scalar */
    FR_YS_NULL,       /* ~, null, Null, NULL, empty plain */
    FR_YS_BOOL,       /* true/True/TRUE/false/False/FALSE */
    FR_YS_INT,        /* [-+]?[0-9]+, 0o[0-7]+, 0x[0-9a-fA-F]+ */
    FR_YS_FLOAT       /* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, .inf, .nan */
} fr_yscalar_type;

typedef struct fr_ynode fr_ynode;
struct fr_ynode {
    fr_ynode_kind kind;
    int line, col; /* 1-based position of the node's start */
    /* scalars */
    char *value; /* NUL-terminated text (may contain NULs: use len) */
    size_t len;
    fr_yscalar_type type;
    int64_t ival; /* FR_YS_INT, FR_YS_BOOL (0/1) */
    double dval;  /* FR_YS_FLOAT and FR_YS_INT */
    /* maps: keys[i] -> values[i]; sequences: values[i] */
    fr_ynode **keys;
    fr_ynode **values;
    size_t n;
    /* Nodes this one stands for once aliases are expanded (itself and everything under
     * it, each alias counting as its target's weight); what a full walk of it costs. */
    size_t weight;
};

typedef struct fr_ydoc {
    fr_ynode *root; /* NULL for an empty document */
    /* private: every node, for freeing */
    fr_ynode **all;
    size_t n_all, cap_all;
} fr_ydoc;

/* Parses `text` (len bytes).  Returns 0 and fills *doc, or -1 after adding a located
 * message to `diags` (syntax errors, duplicate keys, non-scalar keys).  The caller frees
 * the document with fr__ydoc_free in both cases.  After a syntax error (or OOM) the
 * partial tree is dropped and doc->root is NULL; after duplicate or non-scalar keys the
 * tree is complete (root set) so callers can go on validating.  A plain integer outside
 * the int64 range is typed FR_YS_FLOAT.  Aliases to anchors whose node is not complete
 * yet (recursive aliases) are errors, so the tree is acyclic. */
int fr__ydoc_parse(fr_ydoc *doc, const char *text, size_t len, fr_diags *diags);

/* Bounds on what one document may cost.  The tree is shared, never expanded: an alias is
 * a reference to its anchor's node, so parsing is linear in the text (anchors are found
 * through a hash table).  But every walk of the tree (validation, conversion to JSON)
 * visits an aliased node once per alias, so nodes are counted as a walk would see them:
 * an alias counts as every node it repeats.  That bounds alias bombs ("billion laughs")
 * at the alias that passes the limit.  Exceeding a limit is a fatal parse error whose
 * diagnostic names the limit at the line and column where it was passed. */
typedef struct fr_yaml_limits {
    size_t max_nodes;   /* nodes, aliases expanded; 0: FR_YAML_DEFAULT_MAX_NODES */
    size_t max_aliases; /* alias uses; 0: FR_YAML_DEFAULT_MAX_ALIASES */
    /* out: "max_yaml_nodes" or "max_yaml_aliases" when parsing stopped at that limit
     * (static string), else NULL; `exceeded_max` is the limit's value then. */
    const char *exceeded;
    size_t exceeded_max;
    size_t anchor_probes; /* out: anchor table slots looked at (a cost measure for tests) */
} fr_yaml_limits;

/* Generous bounds for documents the user gives their own tools (fluxroute validate/run):
 * far beyond any real manifest, still finite.  `serve` passes its own, lower ones. */
#define FR_YAML_DEFAULT_MAX_NODES   10000000
#define FR_YAML_DEFAULT_MAX_ALIASES 1000000

/* As fr__ydoc_parse, under `limits` (NULL: the defaults above; its out members are
 * written).  Not thread-safe for a shared `limits`. */
int fr__ydoc_parse_ex(fr_ydoc *doc, const char *text, size_t len, fr_yaml_limits *limits,
                      fr_diags *diags);
void fr__ydoc_free(fr_ydoc *doc);

/* Map lookup by key text; NULL when absent or when `map` is not a mapping. */
const fr_ynode *fr__ymap_get(const fr_ynode *map, const char *key);

/* Converts a node to a json-c value (maps -> objects, seqs -> arrays, scalars typed by
 * the core schema).  Caller owns the result (json_object_put).  NULL on OOM, and also for
 * a null node (json-c represents JSON null as NULL): use fr__ynode_to_json_ex to tell
 * them apart.  Conversion stops (failure) after 250,000 nodes, so alias bombs cannot
 * blow up; non-finite floats (.inf, .nan) become their text. */
struct json_object *fr__ynode_to_json(const fr_ynode *node);
/* As fr__ynode_to_json: returns 0 and sets *out (NULL for JSON null), or -1 on failure. */
int fr__ynode_to_json_ex(const fr_ynode *node, struct json_object **out);
/* Compact JSON text of a node ("null" for NULL or a null scalar).  Caller frees with
 * free().  NULL on failure. */
char *fr__ynode_to_json_text(const fr_ynode *node);

/* A short name of the node's type for messages: "string", "integer", "boolean",
 * "number", "null", "mapping", "list". */
const char *fr__ynode_type_name(const fr_ynode *node);

#endif
