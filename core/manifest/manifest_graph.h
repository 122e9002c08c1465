/* A manifest's steps as a graph for drawing (serve's web console, issue 28).
 * Pure and thread-safe, but for the memo (fr__manifest_graph_memo). */
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

/* The same text, made on the first call and kept with `m` (freed with it): a manifest's
 * graph never changes, and serve stores it with every run.  Borrowed; NULL on OOM.  Not
 * thread-safe for one `m`: its caller holds `m` alone (serve: the run's pipeline). */
const char *fr__manifest_graph_memo(fr_manifest *m);

#endif
