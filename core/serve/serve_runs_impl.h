/* serve's runs, internal: what serve_pipelines.c (manifests into pooled pipelines, access
 * checks), serve_runs.c (running runs; the run endpoints, listing, the durable queue's
 * runs), serve_replay.c (replays) and serve_gateway_run.c (the OpenAI gateway's runs)
 * share, and nothing else includes.  The public side is serve.h ("serve_runs.c").
 *
 * Locks: r->mu guards r->pools (and every pool's fields), r->runs (and the entries'
 * fields while they run), r->idle_threads; r->idle_cv is signalled on it when a run
 * leaves.  Every function declared here takes r->mu itself where it needs it: call them
 * without it. */
#ifndef FR_SERVE_RUNS_IMPL_H
#define FR_SERVE_RUNS_IMPL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "engine/pipeline.h"
#include "serve/run_queue.h"
#include "serve/run_store.h"
#include "serve/serve.h"
#include "serve/serve_journal.h"
#include "serve/serve_quota.h"
#include "serve/serve_records.h"
#include "serve/serve_sse.h"
#include "serve/serve_writer.h"

/* ---- pipelines -------------------------------------------------------------------------- */

typedef struct idle_pipeline {
    struct idle_pipeline *next;
    fr_pipeline *p;
} idle_pipeline;

/* Built pipelines of one named manifest (a given file version), ready for reuse, and
 * the namespace that version declares (the server's own reading, never the caller's). */
typedef struct manifest_pool {
    struct manifest_pool *next;
    char *name;
    struct stat version; /* device, inode, size, mtime of the file the pool was built from */
    int ns_read;         /* namespace_ is this version's */
    char *namespace_;    /* NULL when ns_read and the file declares none we can read */
    int64_t checked_us;  /* when the file was last stat'ed (monotonic) */
    int64_t run_us;      /* moving average of its runs' wall time; -1: none yet */
    idle_pipeline *idle;
    size_t n_idle;
    char *text; /* a gateway pool: the synthesised text its pipelines were built from */
} manifest_pool;

#define MAX_IDLE_PER_MANIFEST 32
#define MANIFEST_RECHECK_US   1000000
/* Synchronous runs of a manifest whose runs take longer than this on average (they wait
 * on providers) get a thread of their own; faster ones run on the request thread. */
#define SLOW_RUN_US 10000
/* What a traced run may record (effects of every attempt together): each is a small JSON
 * object, so this bounds a trace's record in memory while the run goes. */
#define FR_SERVE_MAX_RUN_EFFECTS 100000
/* A quick run still going after this long leaves its request thread: the connection is
 * suspended and the reply comes from the thread that completes the run.  So no plugin,
 * hung or slow, holds a request thread longer. */
#define QUICK_HOLD_US 50000
/* How long a GET of a run waits for the record of a run already answered (a gateway run's,
 * written by r->writer after the answer): a client that has its answer finds the run
 * finished. */
#define RECORD_WAIT_US 5000000

typedef fr_run_entry run_entry;

struct fr_runs {
    fr_runs_config cfg;
    pthread_mutex_t mu;
    pthread_cond_t idle_cv; /* in_flight dropped */
    manifest_pool *pools;
    fr_run_store *runs;  /* runs and admission, by tenant */
    size_t idle_threads; /* worker threads of all idle pipelines (under --max-threads x 8) */
    fr_records *records; /* --state redis: records any replica reads (serve_records.c) */
    fr_writer *writer;   /* gateway runs' records, after their answer (serve_writer.h) */
    atomic_int held;     /* a request thread runs a gateway run itself (fr__runs_gateway) */
};

typedef struct run_job {
    fr_runs *r;
    fr_identity who; /* copied: async runs outlive the request */
    fr_pipeline *p;
    manifest_pool *pool;
    run_entry *entry;
    char *input; /* owned, NULL: the manifest's input */
    int record;
    uint64_t seed;
    int has_seed;
    fr_sse *sse;        /* the writer's reference, or NULL */
    int sync;           /* a synchronous request on the request thread */
    fr_deferred *defer; /* a synchronous request answered from the run's own thread */
    int *detached;      /* the request thread's flag: set when a quick run left it (set on
                         * that thread; read there, after the run, through the caller's own
                         * variable: by then j may be gone) */
    fr_status status;   /* ... and how its fr__pipeline_run ended */
    fr_run_options ro;  /* the run's options and result: on the heap, so that a run */
    fr_run_result res;  /* that leaves its request thread can finish elsewhere */
    int64_t t0;
    const fr_queued_run *queued; /* a run from the durable queue: its finish hook */
    fr_quota_run quota;          /* issue 26: its provider calls' limits */
    fr_gateway_exec gw;          /* a gateway request's hooks (all NULL otherwise) */
    fr_run_journal journal;      /* a queued run's journal (--journal), or none */
    int64_t hold_us;             /* how long a quick run holds its request thread (0:
                                  * QUICK_HOLD_US) */
    int suspended;               /* its connection is suspended already */
    int64_t ended;               /* a gateway run: when it ended (monotonic) */
    int left;                    /* ... and it gave its slot back then (gateway_answer) */
    int on_caller;               /* a gateway run on its request thread (fr__runs_gateway) */
    /* A gateway run's answer once it returned (serve_gateway_run.c; NULL otherwise): a quick
     * run that left its request thread is handed to it by the driver (on_driver 1). */
    void (*deliver)(struct run_job *j, fr_status rs, int on_driver);
} run_job;

/* What a request names: a manifest file, or inline YAML. */
typedef struct manifest_ref {
    const char *name; /* in the manifest directory */
    const char *yaml; /* inline */
} manifest_ref;

/* ---- serve_pipelines.c: manifests into pooled pipelines, and the access checks ---- */

/* Reads a request's manifest_ref ("manifest", "manifest_path" or "manifest_yaml"); 0, or -1
 * with `out` filled.  No lock. */
int fr__runs_manifest_ref_from(json_object *body, manifest_ref *ref, fr_reply *out);

/* Parses and builds a pipeline of `text` (no pool), under the server's limits, policy and
 * providers; NULL with `out` filled.  No lock. */
fr_pipeline *fr__runs_build_pipeline(fr_runs *r, const char *label, const char *text, size_t len,
                                     int inline_manifest, int replay, fr_reply *out);

/* A pipeline for the request (a named manifest's from its pool, checked against the
 * caller's namespace; inline YAML built), *pool set when it goes back to one; NULL with
 * `out` filled.  Takes r->mu itself. */
fr_pipeline *fr__runs_acquire(fr_runs *r, const fr_identity *who, fr_action action,
                              const manifest_ref *ref, manifest_pool **pool, fr_reply *out);

/* A pipeline of the gateway's synthesised `text` for `who`'s namespace, from the pool of its
 * route while the text stays the same, else built; *pool as for fr__runs_acquire.  Takes
 * r->mu itself. */
fr_pipeline *fr__runs_acquire_text(fr_runs *r, const fr_identity *who, const char *label,
                                   const char *text, manifest_pool **pool, fr_reply *out);

/* Gives p back to its pool (if it has one and there is room), else frees it; p may be
 * NULL.  Takes r->mu itself. */
void fr__runs_release(fr_runs *r, manifest_pool *pool, fr_pipeline *p);

/* Frees every pool and its idle pipelines (fr__runs_free: no other thread left, no lock). */
void fr__runs_pools_free(fr_runs *r);

/* One audit line for a request (nothing when AUDIT_LOG_PATH is unset).  No lock. */
void fr__runs_audit(const fr_identity *who, fr_action action, const char *manifest,
                    const fr_manifest *m, const char *run_id, const char *decision,
                    const char *result, const char *error);

/* Namespace, then RBAC, of `who` for manifest m (`name`: the named manifest, else inline);
 * 0, or -1 with `out` filled and the denial audited.  No lock. */
int fr__runs_authorize(const fr_identity *who, const fr_manifest *m, const char *name,
                       fr_action action, fr_reply *out);

/* ---- serve_runs.c: running ---- */

/* Refuses a request body with a field not in `allowed` (NULL-terminated): 0, or -1 with
 * `out` filled.  No lock. */
int fr__runs_only_fields(json_object *body, const char *const *allowed, fr_reply *out);

/* Runs fn(arg) on a detached thread of its own, or here when no thread can start. */
void fr__runs_spawn_or_run(void *(*fn)(void *), void *arg);

/* Runs the job (a quick run that leaves its request thread is only started: then
 * *j->detached is set and the run ends elsewhere).  Returns how fr__pipeline_run ended.
 * Takes no lock. */
fr_status fr__runs_execute_run(run_job *j);

/* The time a run spent in plugins: its attempts' durations. */
int64_t fr__runs_plugin_time(const fr_run_result *res);

/* Completes a run that returned `st`: report, trace, record, usage, its entry finished, its
 * slot left (unless j->left), its pipeline released; a copy of the report in *report_out
 * when given.  Returns the plugin time.  Takes r->mu itself. */
int64_t fr__runs_execute_end(run_job *j, fr_status st, fr_run_status *status, char **report_out);

/* Frees a job (its journal, stream, input; not its pipeline or entry).  No lock. */
void fr__runs_job_free(run_job *j);

/* Undoes an admitted run that cannot start: its pipeline back to the pool, the job freed
 * (j may be NULL), the tenant's slot left.  Returns -1.  Takes r->mu itself. */
int fr__runs_job_refuse(fr_runs *r, run_job *j, const fr_identity *who);

/* Whether the pool's runs have been quick enough (under SLOW_RUN_US on average) to run on
 * the request thread (never for inline YAML: pool NULL).  Takes r->mu itself. */
int fr__runs_quickly(fr_runs *r, const manifest_pool *pool);

/* Adds a running entry of run `id` to the run store (for GET and cancel); NULL on OOM.
 * Takes r->mu itself. */
run_entry *fr__runs_entry_add(fr_runs *r, const char *id, const fr_identity *who,
                              const char *manifest, fr_pipeline *p, const char *input);

#endif
