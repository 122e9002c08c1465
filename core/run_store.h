/* serve's run store: the runs of a server by id, running and finished, with bounded
 * retention (finished runs older than the age limit, or beyond the count limit, oldest
 * first, are dropped).  Lookup, insertion and eviction are O(1) per run.  Not locked:
 * the caller holds its own lock around every call. */
#ifndef FR_CORE_RUN_STORE_H
#define FR_CORE_RUN_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"

typedef struct fr_run_entry {
    char id[40];
    char tenant[72];
    char namespace_[40];
    int done;
    fr_run_status status;
    int64_t finished_mono;
    char *report;                     /* JSON text when done (owned) */
    char *trace;                      /* JSON text when recorded (owned) */
    int trace_refused;                /* recorded, but dropped over --max-run-bytes */
    struct fr_pipeline *p;            /* while running: for cancellation */
    struct fr_run_entry *hash_next;   /* same bucket */
    struct fr_run_entry *prev, *next; /* in the running or the finished list */
} fr_run_entry;

typedef struct fr_run_store fr_run_store;

/* retention_us 0: no age limit.  NULL on OOM. */
fr_run_store *fr__run_store_new(size_t retention_count, int64_t retention_us);
/* Frees the store and every entry in it. */
void fr__run_store_free(fr_run_store *s);
/* Adds a running entry (calloc'ed by the caller, id set); the store owns it. */
void fr__run_store_add(fr_run_store *s, fr_run_entry *e);
/* Marks `e` finished at `now` (report, trace and status already set) and evicts. */
void fr__run_store_finish(fr_run_store *s, fr_run_entry *e, int64_t now);
/* Drops finished runs past the limits. */
void fr__run_store_evict(fr_run_store *s, int64_t now);
/* The entry with this id, or NULL.  Valid until the next finish or evict call. */
fr_run_entry *fr__run_store_find(fr_run_store *s, const char *id);

#endif
