/* serve's run store: the runs of a server by id, running and finished, with admission and
 * retention per tenant as well as for the whole server.
 *
 * Admission: at most `max_running` runs in flight on the server and `max_running_per_tenant`
 * for any one tenant (admit/leave count any request kind that executes a pipeline).
 *
 * Retention: a finished run keeps its report and trace until one of these drops it,
 * always its tenant's oldest finished run first:
 *   - it is older than `retention_us` (every tenant);
 *   - its tenant holds more than `retention_per_tenant` finished runs;
 *   - the server holds more than `retention_count`: taken from the tenant holding the most
 *     finished runs;
 *   - the server's finished runs hold more than `retention_bytes` (the entry, its report and
 *     its trace, counted in bytes as allocated): taken from the tenant holding the most bytes.
 * So one tenant's runs can never push out those of a tenant that holds less than it does.
 *
 * Lookup, insertion and age eviction are O(1) per run; admission is O(1) on average (tenants
 * are hashed); eviction by the server's count or bytes scans the tenants holding finished
 * runs.  Not locked: the caller holds its own lock around every call. */
#ifndef FR_CORE_RUN_STORE_H
#define FR_CORE_RUN_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

typedef struct fr_run_tenant fr_run_tenant;

typedef struct fr_run_entry {
    char id[40];
    char tenant[72];
    char namespace_[40];
    int done;
    int writing; /* answered; its record is being written (a gateway run: serve_writer.h) */
    fr_run_status status;
    int64_t finished_mono;
    char *report;          /* JSON text when done (owned) */
    char *trace;           /* JSON text when recorded (owned) */
    char *input;           /* the run's input, JSON text (owned), or NULL */
    char *graph;           /* its manifest's graph (manifest_graph.h), JSON text (owned), or NULL */
    int trace_refused;     /* recorded, but dropped over --max-run-bytes */
    char manifest[208];    /* the named manifest, or "" for inline YAML */
    int64_t started_at_us; /* wall clock, set by the caller */
    int64_t finished_at_us;             /* wall clock, when done */
    uint64_t seq;                       /* order of addition (set by the store; from 1) */
    struct fr_pipeline *p;              /* while running: for cancellation */
    size_t bytes;                       /* when done: what it holds (entry, report, trace) */
    fr_run_tenant *owner;               /* its tenant's record (set by the store) */
    struct fr_run_entry *hash_next;     /* same bucket */
    struct fr_run_entry *prev, *next;   /* in the running or the finished list */
    struct fr_run_entry *tprev, *tnext; /* in its tenant's finished list */
} fr_run_entry;

typedef struct fr_run_limits {
    size_t max_running;            /* runs in flight on the server (admission) */
    size_t max_running_per_tenant; /* and per tenant */
    int64_t retention_us;          /* 0: no age limit */
    size_t retention_count;        /* finished runs kept on the server */
    size_t retention_per_tenant;   /* and per tenant */
    size_t retention_bytes;        /* bytes finished runs may hold on the server */
} fr_run_limits;

typedef struct fr_run_store fr_run_store;

/* NULL on OOM.  Every limit must be at least 1 (retention_us may be 0). */
fr_run_store *fr__run_store_new(const fr_run_limits *limits);
/* Frees the store and every entry in it. */
void fr__run_store_free(fr_run_store *s);

/* Why admission failed. */
typedef enum fr_admit_result {
    FR_ADMIT_OK = 0,
    FR_ADMIT_SERVER_FULL = -1, /* max_running reached */
    FR_ADMIT_TENANT_FULL = -2, /* max_running_per_tenant reached for this tenant */
    FR_ADMIT_NO_MEMORY = -3,
} fr_admit_result;

/* Counts one run in flight for `tenant` (borrowed) unless a cap is reached.  Every
 * FR_ADMIT_OK is matched by one fr__run_store_leave for the same tenant. */
fr_admit_result fr__run_store_admit(fr_run_store *s, const char *tenant);
/* The run admitted for `tenant` is over (finished, refused or never started). */
void fr__run_store_leave(fr_run_store *s, const char *tenant);
/* Runs in flight on the server, and for `tenant`. */
size_t fr__run_store_in_flight(const fr_run_store *s);
size_t fr__run_store_tenant_in_flight(fr_run_store *s, const char *tenant);

/* Adds a running entry (calloc'ed by the caller, id and tenant set); the store owns it.
 * Returns 0, or -1 on OOM (the entry is not added and stays the caller's). */
int fr__run_store_add(fr_run_store *s, fr_run_entry *e);
/* Marks `e` finished at `now` (report, trace and status already set), counts its bytes and
 * evicts. */
void fr__run_store_finish(fr_run_store *s, fr_run_entry *e, int64_t now);
/* Drops finished runs past the limits. */
void fr__run_store_evict(fr_run_store *s, int64_t now);
/* The entry with this id, or NULL.  Valid until the next finish or evict call. */
fr_run_entry *fr__run_store_find(fr_run_store *s, const char *id);
/* Calls fn for each entry of `tenant` (borrowed), running or finished, in no particular
 * order (sort by seq).  The entries are valid only during the call. */
void fr__run_store_each(fr_run_store *s, const char *tenant,
                        void (*fn)(void *ud, const fr_run_entry *e), void *ud);
/* Calls fn for each running entry of every tenant (the watcher of --state redis polls
 * their cancellation).  The entries are valid only during the call. */
void fr__run_store_each_running(fr_run_store *s, void (*fn)(void *ud, fr_run_entry *e), void *ud);
/* What the finished runs hold: runs and bytes, on the server or (tenant not NULL) for one
 * tenant.  For tests and metrics. */
void fr__run_store_retained(fr_run_store *s, const char *tenant, size_t *runs, size_t *bytes);

#endif
