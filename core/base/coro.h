/* Coroutines: a function run on a stack of its own that can stop part-way (yield) and be
 * taken up again later (resume) by the thread that started it.  serve's loops run a
 * gateway run as one: where it would wait, it yields to the loop (base/async.h).
 *
 * A coroutine belongs to the thread that created it: it is resumed only there, and only
 * from outside any coroutine (no nesting).  Each has a stack of FR_CORO_STACK bytes of
 * address space with an inaccessible guard page below it, so an overflow faults instead
 * of writing over memory; pages are only backed when touched, and each thread keeps a few
 * stacks for reuse.  Thread-local variables are the thread's, shared by its coroutines:
 * code that keeps state in one across a yield saves and restores it. */
#ifndef FR_CORE_CORO_H
#define FR_CORE_CORO_H

#include <stddef.h>
#include <stdint.h>

/* Address space per coroutine stack, the guard page apart (the default pthread stack). */
#define FR_CORO_STACK (8u << 20)

typedef struct fr_coro fr_coro;

/* A coroutine that will run fn(arg) when first resumed.  NULL when out of memory.  Free
 * it with fr__coro_free once it has finished (or if it never ran). */
fr_coro *fr__coro_new(void (*fn)(void *arg), void *arg);
/* Runs co until it yields or fn returns: 1 when fn has returned (co is finished), 0 when
 * it yielded.  From the thread that created co, outside any coroutine. */
int fr__coro_resume(fr_coro *co);
/* What a loop's callback does to take a waiting coroutine up again: resumes co, and frees
 * it when it has finished (its function cleans up after itself). */
void fr__coro_continue(fr_coro *co);
/* Sleeps the running coroutine until fr__mono_us() >= until, or cancellation when cancelled
 * is not NULL (looked at every FR_CORO_SLEEP_SLICE_US): the thread's loop (base/async.h)
 * wakes it.  0 when it slept; -1 when the calling thread runs no loop or no coroutine, or
 * the loop cannot take the timer: then the caller waits (what is left) its own way. */
#define FR_CORO_SLEEP_SLICE_US 10000
int fr__coro_sleep_until(int64_t until, const int *cancelled);
/* From inside a coroutine: stops it here and returns from the fr__coro_resume that ran it.
 * It goes on from here when resumed. */
void fr__coro_yield(void);
/* The coroutine running on the calling thread, or NULL (none: the thread's own stack). */
fr_coro *fr__coro_current(void);
/* Frees a finished coroutine, or one never resumed; its stack is kept for reuse by this
 * thread (a few) or unmapped.  NULL is ignored. */
void fr__coro_free(fr_coro *co);

#endif
