/* Diagnostics: a list of located messages (file:line:col: message), reported in file
 * order.  Used by manifest validation, option checking and plugin resolution.
 * Not thread-safe: one list per validation. */
#ifndef FR_CORE_DIAG_H
#define FR_CORE_DIAG_H

#include <stddef.h>
#include <stdio.h>

typedef struct fr_diag {
    int line;      /* 1-based; 0 when the message is not tied to a place */
    int col;       /* 1-based */
    char *message; /* owned */
} fr_diag;

typedef struct fr_diags {
    char *file; /* owned copy of the file name used in messages */
    fr_diag *items;
    size_t n, cap;
    int notes_only; /* unused by callers; kept 0 */
} fr_diags;

/* Initialises an empty list for `file` (copied). */
void fr__diags_init(fr_diags *d, const char *file);
/* Appends a message at line:col (printf-style).  Out of memory is silently dropped
 * after the first failure (the list is still usable). */
void fr__diag_add(fr_diags *d, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Sorts by (line, col), stable, so messages come in file order. */
void fr__diags_sort(fr_diags *d);
/* Prints every message as "file:line:col: message\n" (or "file: message"). */
void fr__diags_print(const fr_diags *d, FILE *out);
/* Frees the messages and the file name; the struct may be re-initialised. */
void fr__diags_free(fr_diags *d);

#endif
