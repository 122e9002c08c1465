/* Graph algorithms over the pipeline's steps.  Pure functions; thread-safe. */
#ifndef FR_CORE_DAG_H
#define FR_CORE_DAG_H

#include <stddef.h>

/* deps[i] lists the n_deps[i] step indexes step i depends on.
 * Computes a topological order: among ready steps, the lowest index (manifest order) is
 * taken first.  Writes n indexes to `order` and returns 0; returns -1 when there is a
 * cycle, and then writes one cycle to `cycle` (indexes, first repeated at the end, so
 * a -> b -> a is {a, b, a}) with its length in *cycle_len (cycle has room for n + 1). */
int fr__dag_toposort(size_t n, int *const *deps, const size_t *n_deps, int *order, int *cycle,
                     size_t *cycle_len);

#endif
