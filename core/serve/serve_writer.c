/* serve's record writer (serve_writer.h): a bounded FIFO of tasks and one thread.
 *
 * Waking a sleeping thread costs a context switch on each side (on a 2-core VM, about a
 * fifth of serve's CPU under load went to switching).  So while tasks keep coming, the
 * writer is "warm": when its queue runs empty it sleeps for LINGER_US at a time, and those
 * who queue a task do not wake it; it takes what came in the meantime when it wakes.  After
 * LINGER_ROUNDS of such sleeps without a task it goes "cold": it sleeps until woken, and the
 * next push wakes it.  A push that fills half the queue, a flush and a kick wake it
 * whatever it is.  A task thus waits at most LINGER_US before it starts; the thread wakes
 * at most LINGER_ROUNDS times for nothing after the last task. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "serve/serve_writer.h"

#define LINGER_US     1000
#define LINGER_ROUNDS 10

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
    int cold; /* sleeping until woken: a push wakes it (mu) */
    pthread_t thread;
};

/* Sleeps on work_cv for LINGER_US at most (mu held). */
static void linger(fr_writer *w)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += LINGER_US * 1000L;
    if (ts.tv_nsec >= 1000000000L)
        ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_cond_timedwait(&w->work_cv, &w->mu, &ts);
}

static void *writer_main(void *arg)
{
    pthread_setname_np(pthread_self(), "fr-writer");
    fr_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    int idle_rounds = LINGER_ROUNDS; /* cold at first: nothing came yet */
    for (;;) {
        if (!w->n && !w->stop && idle_rounds < LINGER_ROUNDS) {
            linger(w);
            if (!w->n)
                idle_rounds++;
            continue;
        }
        w->cold = 1;
        while (!w->n && !w->stop)
            pthread_cond_wait(&w->work_cv, &w->mu);
        w->cold = 0;
        if (!w->n)
            break; /* stopping, and all is done */
        idle_rounds = 0;
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
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* linger()'s clock */
    pthread_cond_init(&w->work_cv, &attr);
    pthread_condattr_destroy(&attr);
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
        if (w->cold || w->n * 2 >= w->bound)
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

void fr__writer_kick(fr_writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    if (w->n)
        pthread_cond_signal(&w->work_cv);
    pthread_mutex_unlock(&w->mu);
}

void fr__writer_flush(fr_writer *w)
{
    if (!w)
        return;
    fr__writer_kick(w); /* tasks queued while it lingers start now */
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
