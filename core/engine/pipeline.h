/* Internal layout of a pipeline and of a run, shared by pipeline.c (build), sched.c
 * (worker pool, runs, hang watchdog) and step.c (attempts, retries, fallbacks). */
#ifndef FR_CORE_PIPELINE_H
#define FR_CORE_PIPELINE_H

#include <pthread.h>

#include "base/str.h"
#include "host/breaker.h"
#include "engine/engine.h"
#include "host/host.h"
#include "host/replay_source.h"

/* Where a step's execution stands.  On the heap, so that a replacement worker can carry
 * on with a step whose in-process attempt hung. */
typedef struct fr_step_exec {
    int step;
    char *input; /* the step input JSON, owned */
    size_t input_len;
    int chain_pos;           /* 0: the step's agent; k: its k-th fallback */
    int attempt;             /* attempts made with the current agent */
    int resume;              /* 1: the last attempt was recorded by the watchdog */
    fr_replay_cursor cursor; /* replay: the recorded effects of the current attempt */
    fr_admission admission;  /* of the last attempt */
    int64_t retry_after_us;  /* asked for by the last failure */
} fr_step_exec;

/* A job for the pool: a step to start, or one to resume after a hung attempt. */
typedef struct fr_job {
    int step;
    fr_step_exec *resume;
} fr_job;

typedef struct fr_worker {
    struct fr_pipeline *p;
    pthread_t thread;
    /* Guarded by p->mu: */
    int busy;        /* inside an in-process plugin callback */
    int64_t hang_at; /* monotonic time after which it counts as hung */
    int abandoned;   /* the watchdog gave up on it */
    int exited;
    int inline_caller;              /* the run's own thread (run_inline), not a pool thread */
    const fr_loaded_plugin *plugin; /* of the call in progress */
    struct fr_run *run;
    fr_step_exec *exec;
    size_t attempt_index; /* the attempt record being filled */
} fr_worker;

struct fr_run {
    struct fr_pipeline *p;
    fr_run_result *res;
    fr_cancel *cancel;
    uint64_t seed;
    size_t *pending;  /* unfinished dependencies per step */
    size_t remaining; /* steps not yet settled */
    const char *input;
    size_t input_len;
    const fr_run_options *opts;
    int transition_seq;
    int record;                     /* keep effects */
    fr_replay *replay;              /* or serve them from a trace */
    struct fr_journal *journal;     /* appended as the run goes (opts->journal), or NULL */
    struct fr_obs_run *obs;         /* observability state (core/observe/obs_impl.h) or NULL */
    int watched;                    /* registered with the inline watchdog */
    struct fr_driver_job *handover; /* FR_RUN_ON_DRIVER: the caller that waits for it */
    int finalized;                  /* the run's result is complete (p->mu) */
    _Atomic size_t output_bytes;    /* what its succeeded steps' outputs hold together */
    int64_t started_mono;           /* when the run started (attempts' started_us) */
};

struct fr_pipeline {
    fr_manifest *m;
    fr_loader *loader;
    fr_instance *agents;    /* m->n_agents */
    fr_instance *providers; /* m->n_providers */
    int **children;         /* per step: the steps that depend on it */
    size_t *n_children;

    /* Worker pool, started by fr__pool_start. */
    fr_worker **workers; /* every worker ever started (abandoned ones too) */
    size_t n_workers, cap_workers;
    size_t pool_size;
    size_t n_hung; /* abandoned workers still inside a plugin */
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* work queued or stopping */
    pthread_cond_t done_cv; /* a run finished (CLOCK_MONOTONIC) */
    fr_job *queue;          /* ready jobs, FIFO ring */
    size_t q_head, q_len, q_cap;
    int stopping;
    struct fr_run *current;   /* the run in progress, or NULL */
    fr_worker *inline_worker; /* the run's own thread while it runs steps (run_inline) */
    struct fr_pipeline *watch_prev, *watch_next; /* in the inline watchdog's list */
    pthread_mutex_t progress_mu;
    struct fr_pipeline *kept_next; /* list of pipelines kept alive for hung threads */

    /* The driver thread of FR_RUN_ON_DRIVER runs, started on first use. */
    pthread_mutex_t driver_mu;
    pthread_cond_t driver_cv;
    struct fr_driver_job *driver_job; /* a run waiting for the driver, or NULL */
    pthread_t driver;
    int driver_running; /* a driver thread serves this pipeline */
    int driver_stop;

    /* Moving average of the driver's runs' wall time, in us (driver_mu).  While runs are
     * short the caller and the driver yield for a moment before sleeping (core/engine/sched.c). */
    int64_t driver_run_us;

    /* A memo the trace layer (core/trace/trace.c) keeps of what all its runs' traces and
     * journal headers share, opaque here; guarded by mu, freed with the pipeline. */
    void *trace_memo;
    void (*trace_memo_free)(void *);
};

int fr__pool_start(fr_pipeline *p);
/* Stops the workers.  Returns the number of hung workers left running (then the
 * pipeline must not be freed: their plugin code may still run). */
size_t fr__pool_stop(fr_pipeline *p);

/* ---- step.c ---- */

/* A new execution of step `step` (builds its input).  NULL on OOM. */
fr_step_exec *fr__step_exec_new(fr_run *run, int step);
void fr__step_exec_free(fr_step_exec *x);

/* Runs the step's attempts, retries and fallbacks until it settles (returns 0; the
 * result is in run->res->steps[x->step]) or until the worker is abandoned by the
 * watchdog (returns 1; the worker must then clean up and exit without touching the
 * run).  Called without p->mu. */
int fr__step_drive(fr_worker *w, fr_run *run, fr_step_exec *x);

/* Resumed runs (step_restore.c): fills `r` (pending, empty) with the outcome of a step as
 * recorded in `rec` (a report step object with its attempts' effects; borrowed, the
 * effects are shared), marked from_journal.  Returns 0, or -1 when the recording is
 * incomplete or names an agent `m` does not have. */
int fr__step_restore(const fr_manifest *m, json_object *rec, fr_step_result *r);

/* Appends an attempt record to a step result.  NULL on OOM. */
fr_attempt_result *fr__step_add_attempt(fr_step_result *r);

/* Records a breaker transition in the run's result and reports it to observability.  A
 * NULL run is ignored.  Thread-safe (takes p->mu).  Calls reach it through
 * fr_call.note_transition. */
void fr__run_note_transition(fr_run *run, const char *step, int attempt, const char *breaker,
                             const fr_breaker_transition *tr);

/* A resumed run: puts the transitions its earlier executions journaled (`journaled`, an
 * array as fr__replay_transitions gives; NULL: none) first in its result, in their order,
 * without journaling or reporting them again.  Called before the run's steps start. */
void fr__run_restore_transitions(fr_run *run, json_object *journaled);

#endif
