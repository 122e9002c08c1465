/* Diagnostics: located messages, sorted into file order and printed as
 * "file:line:col: message". */
#include "base/diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void fr__diags_init(fr_diags *d, const char *file)
{
    memset(d, 0, sizeof *d);
    d->file = strdup(file ? file : "");
}

void fr__diag_add(fr_diags *d, int line, int col, const char *fmt, ...)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        fr_diag *items = realloc(d->items, cap * sizeof *items);
        if (!items)
            return; /* dropped: the list stays usable */
        d->items = items;
        d->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    int rc = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (rc < 0)
        return;
    d->items[d->n].line = line < 0 ? 0 : line;
    d->items[d->n].col = col < 0 ? 0 : col;
    d->items[d->n].message = msg;
    d->n++;
}

static int diag_before(const fr_diag *a, const fr_diag *b)
{
    return a->line < b->line || (a->line == b->line && a->col < b->col);
}

void fr__diags_sort(fr_diags *d)
{
    /* Insertion sort: stable, and lists are short (one per manifest problem). For long
     * lists it degrades, so fall back to a merge pass via a temporary when large. */
    if (d->n > 64) {
        fr_diag *tmp = malloc(d->n * sizeof *tmp);
        if (tmp) {
            for (size_t width = 1; width < d->n; width *= 2) {
                for (size_t lo = 0; lo < d->n; lo += 2 * width) {
                    size_t mid = lo + width < d->n ? lo + width : d->n;
                    size_t hi = lo + 2 * width < d->n ? lo + 2 * width : d->n;
                    size_t i = lo, j = mid, k = lo;
                    while (i < mid && j < hi)
                        tmp[k++] =
                            diag_before(&d->items[j], &d->items[i]) ? d->items[j++] : d->items[i++];
                    while (i < mid)
                        tmp[k++] = d->items[i++];
                    while (j < hi)
                        tmp[k++] = d->items[j++];
                }
                memcpy(d->items, tmp, d->n * sizeof *tmp);
            }
            free(tmp);
            return;
        }
    }
    for (size_t i = 1; i < d->n; i++) {
        fr_diag x = d->items[i];
        size_t j = i;
        while (j > 0 && diag_before(&x, &d->items[j - 1])) {
            d->items[j] = d->items[j - 1];
            j--;
        }
        d->items[j] = x;
    }
}

void fr__diags_print(const fr_diags *d, FILE *out)
{
    const char *file = d->file ? d->file : "";
    for (size_t i = 0; i < d->n; i++) {
        const fr_diag *g = &d->items[i];
        if (g->line > 0)
            fprintf(out, "%s:%d:%d: %s\n", file, g->line, g->col, g->message);
        else
            fprintf(out, "%s: %s\n", file, g->message);
    }
}

void fr__diags_free(fr_diags *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->items[i].message);
    free(d->items);
    free(d->file);
    memset(d, 0, sizeof *d);
}
