/* serve's record writer (serve_writer.h): a bounded FIFO of tasks and one thread. */
#include <pthread.h>
#include <stdlib.h>

#include "serve/serve_writer.h"

typedef struct task {
    void (*fn)(void *arg);
    void *arg;
} task;

struct fr_writer {
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* a task was queued, or stop */
    pthread_cond_t idle_cv; /* the queue ran empty and nothing runs */
    task *ring;             /* bound slots */
    size_t bound, head, n;
    int busy, stop;
    pthread_t thread;
};

static void *writer_main(void *arg)
{
    pthread_setname_np(pthread_self(), "fr-writer");
    fr_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->n && !w->stop)
            pthread_cond_wait(&w->work_cv, &w->mu);
        if (!w->n)
            break; /* stopping, and all is done */
        task t = w->ring[w->head];
        w->head = (w->head + 1) % w->bound;
        w->n--;
        w->busy = 1;
        pthread_mutex_unlock(&w->mu);
        t.fn(t.arg);
        pthread_mutex_lock(&w->mu);
        w->busy = 0;
        if (!w->n)
            pthread_cond_broadcast(&w->idle_cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

fr_writer *fr__writer_new(size_t bound)
{
    fr_writer *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->bound = bound ? bound : 1;
    if (!(w->ring = calloc(w->bound, sizeof *w->ring))) {
        free(w);
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->work_cv, NULL);
    pthread_cond_init(&w->idle_cv, NULL);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        pthread_cond_destroy(&w->idle_cv);
        pthread_cond_destroy(&w->work_cv);
        pthread_mutex_destroy(&w->mu);
        free(w->ring);
        free(w);
        return NULL;
    }
    return w;
}

int fr__writer_push(fr_writer *w, void (*fn)(void *arg), void *arg)
{
    if (!w)
        return -1;
    pthread_mutex_lock(&w->mu);
    int full = w->n >= w->bound || w->stop;
    if (!full) {
        w->ring[(w->head + w->n) % w->bound] = (task){fn, arg};
        w->n++;
        pthread_cond_signal(&w->work_cv);
    }
    pthread_mutex_unlock(&w->mu);
    return full ? -1 : 0;
}

size_t fr__writer_waiting(fr_writer *w)
{
    if (!w)
        return 0;
    pthread_mutex_lock(&w->mu);
    size_t n = w->n;
    pthread_mutex_unlock(&w->mu);
    return n;
}

void fr__writer_flush(fr_writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    while (w->n || w->busy)
        pthread_cond_wait(&w->idle_cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

void fr__writer_free(fr_writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->work_cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->idle_cv);
    pthread_cond_destroy(&w->work_cv);
    pthread_mutex_destroy(&w->mu);
    free(w->ring);
    free(w);
}
