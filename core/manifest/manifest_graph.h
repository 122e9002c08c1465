/* A manifest's steps as a graph for drawing (serve's web console, issue 28).
 * Pure; thread-safe. */
#ifndef FR_CORE_MANIFEST_GRAPH_H
#define FR_CORE_MANIFEST_GRAPH_H

#include <json-c/json.h>

#include "manifest/manifest.h"

/* {nodes: [{id, agent, level, depends_on}], edges: [{from, to}]} of `m` (borrowed): nodes
 * in the manifest's topological order, `level` 0 for a step without dependencies, else one
 * more than its deepest dependency; one edge per dependency, from it to its dependent.
 * Both arrays are empty when `m` is NULL.  Returns a new object (json_object_put). */
json_object *fr__manifest_graph(const fr_manifest *m);

/* The same as compact JSON text (caller frees), or NULL on OOM. */
char *fr__manifest_graph_text(const fr_manifest *m);

#endif
