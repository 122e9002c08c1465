/* Internal layout of a pipeline, shared by pipeline.c (build) and sched.c (runs). */
#ifndef FR_CORE_PIPELINE_H
#define FR_CORE_PIPELINE_H

#include <pthread.h>

#include "engine.h"
#include "host.h"

typedef struct fr_run fr_run;

struct fr_pipeline {
    fr_manifest *m;
    fr_loader *loader;
    fr_instance *agents;            /* m->n_agents */
    fr_instance *providers;         /* m->n_providers */
    int **children;                 /* per step: the steps that depend on it */
    size_t *n_children;

    /* Worker pool, started by fr__pool_start. */
    pthread_t *threads;
    size_t n_threads;
    pthread_mutex_t mu;
    pthread_cond_t work_cv;         /* work queued or stopping */
    pthread_cond_t done_cv;         /* a run finished */
    int *queue;                     /* ready steps, FIFO ring */
    size_t q_head, q_len, q_cap;
    int stopping;
    fr_run *current;                /* the run in progress, or NULL */
    pthread_mutex_t progress_mu;
};

int fr__pool_start(fr_pipeline *p);
void fr__pool_stop(fr_pipeline *p);

#endif
