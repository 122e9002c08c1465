/* Deterministic topological sort (Kahn's algorithm with a min-heap on the step index, so
 * manifest order breaks ties) and cycle extraction.  O((n + e) log n). */
#include "manifest/dag.h"

#include <stdlib.h>

typedef struct heap {
    int *v;
    size_t n;
} heap;

static void heap_push(heap *h, int x)
{
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->v[p] <= x)
            break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = x;
}

static int heap_pop(heap *h)
{
    int top = h->v[0];
    int x = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->v[c + 1] < h->v[c])
            c++;
        if (h->v[c] >= x)
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0)
        h->v[i] = x;
    return top;
}

static int valid_dep(size_t n, int d)
{
    return d >= 0 && (size_t)d < n;
}

/* Called when some steps were never ready: every such step still waits on at least one
 * unfinished dependency, so walking "depends on" edges from one of them must revisit a
 * step.  The revisited stretch is the cycle; it is written in data-flow order (a -> b
 * means b depends on a), starting from its lowest index. */
static void extract_cycle(size_t n, int *const *deps, const size_t *n_deps, const int *indeg,
                          int *cycle, size_t *cycle_len, int *pos, int *path)
{
    size_t start = 0;
    while (start < n && indeg[start] == 0)
        start++;
    for (size_t i = 0; i < n; i++)
        pos[i] = -1;
    size_t len = 0;
    int cur = (int)start;
    while (pos[cur] < 0) {
        pos[cur] = (int)len;
        path[len++] = cur;
        int next = -1;
        for (size_t k = 0; k < n_deps[cur]; k++) {
            int d = deps[cur][k];
            if (valid_dep(n, d) && indeg[d] > 0) {
                next = d;
                break;
            }
        }
        if (next < 0) { /* cannot happen for a consistent graph */
            *cycle_len = 0;
            return;
        }
        cur = next;
    }
    /* path[pos[cur]..len) is the cycle in "depends on" order; reverse it. */
    size_t from = (size_t)pos[cur], clen = len - from;
    size_t low = 0;
    for (size_t i = 0; i < clen; i++) {
        cycle[i] = path[len - 1 - i];
        if (cycle[i] < cycle[low])
            low = i;
    }
    /* Rotate so the lowest index comes first, then close the loop. */
    for (size_t i = 0; i < clen; i++)
        path[i] = cycle[(low + i) % clen];
    for (size_t i = 0; i < clen; i++)
        cycle[i] = path[i];
    cycle[clen] = cycle[0];
    *cycle_len = clen + 1;
}

int fr__dag_toposort(size_t n, int *const *deps, const size_t *n_deps, int *order, int *cycle,
                     size_t *cycle_len)
{
    if (cycle_len)
        *cycle_len = 0;
    if (n == 0)
        return 0;
    int *indeg = calloc(n, sizeof *indeg);
    size_t *first = calloc(n + 1, sizeof *first);
    int *heapv = malloc(n * sizeof *heapv);
    size_t n_edges = 0;
    for (size_t i = 0; i < n; i++)
        n_edges += n_deps[i];
    int *children = malloc((n_edges ? n_edges : 1) * sizeof *children);
    if (!indeg || !first || !heapv || !children) {
        free(indeg);
        free(first);
        free(heapv);
        free(children);
        return -1;
    }
    /* Children lists in CSR form: children[first[d] .. first[d+1]) depend on d. */
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < n_deps[i]; k++)
            if (valid_dep(n, deps[i][k])) {
                first[deps[i][k] + 1]++;
                indeg[i]++;
            }
    for (size_t i = 0; i < n; i++)
        first[i + 1] += first[i];
    {
        size_t *cursor = malloc((n + 1) * sizeof *cursor);
        if (!cursor) {
            free(indeg);
            free(first);
            free(heapv);
            free(children);
            return -1;
        }
        for (size_t i = 0; i <= n; i++)
            cursor[i] = first[i];
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < n_deps[i]; k++)
                if (valid_dep(n, deps[i][k]))
                    children[cursor[deps[i][k]]++] = (int)i;
        free(cursor);
    }

    heap h = {heapv, 0};
    for (size_t i = 0; i < n; i++)
        if (indeg[i] == 0)
            heap_push(&h, (int)i);
    size_t done = 0;
    while (h.n > 0) {
        int s = heap_pop(&h);
        order[done++] = s;
        for (size_t k = first[s]; k < first[s + 1]; k++)
            if (--indeg[children[k]] == 0)
                heap_push(&h, children[k]);
    }
    int rc = 0;
    if (done < n) {
        rc = -1;
        if (cycle && cycle_len) {
            /* Reuse the heap and children buffers as scratch: n ints each suffice. */
            int *pos = heapv;
            int *path = malloc(n * sizeof *path);
            if (path) {
                extract_cycle(n, deps, n_deps, indeg, cycle, cycle_len, pos, path);
                free(path);
            }
        }
    }
    free(indeg);
    free(first);
    free(heapv);
    free(children);
    return rc;
}
