/* serve's record writer: one thread that does, in order, work queued after a request was
 * answered (a gateway run's report, trace and record: core/serve/serve_gateway_run.c), so that
 * this work is not on the request's path.  While tasks keep coming it is not woken per
 * task: it looks for new ones every millisecond (serve_writer.c), so a task starts at most
 * about 1 ms after it was queued unless someone kicks the writer.
 *
 * The queue is bounded: when `bound` tasks wait already, fr__writer_push refuses and the
 * caller does the work itself, before it answers.  So a writer that falls behind slows
 * the requests down instead of holding more and more finished runs in memory. */
#ifndef FR_CORE_SERVE_SERVE_WRITER_H
#define FR_CORE_SERVE_SERVE_WRITER_H

#include <stddef.h>

/* The bound serve uses: at most this many finished runs wait for their record. */
#define FR_SERVE_WRITER_BOUND 256

typedef struct fr_writer fr_writer;

/* A writer with its thread, taking at most `bound` (at least 1) waiting tasks.  Returns
 * NULL when it cannot start (no memory, no thread). */
fr_writer *fr__writer_new(size_t bound);
/* Queues fn(arg) to run on the writer's thread.  Returns 0, or -1 when `bound` tasks wait
 * already or w is NULL or stopping: then nothing is queued and the caller runs fn(arg)
 * itself.  Thread-safe. */
int fr__writer_push(fr_writer *w, void (*fn)(void *arg), void *arg);
/* Tasks waiting (not counting the one running).  Thread-safe. */
size_t fr__writer_waiting(fr_writer *w);
/* Starts the waiting tasks now (someone waits for one: a GET of a run whose record is
 * being written).  Thread-safe. */
void fr__writer_kick(fr_writer *w);
/* Waits until no task waits or runs.  Thread-safe. */
void fr__writer_flush(fr_writer *w);
/* Runs every queued task, stops the thread and frees w (NULL: nothing). */
void fr__writer_free(fr_writer *w);

#endif
