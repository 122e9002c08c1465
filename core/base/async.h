/* Waiting without blocking the thread: the event loop the calling thread runs, and the
 * coroutines (base/coro.h) that wait through it.
 *
 * serve's request threads are event loops (core/http/http_loop.c): each drives its
 * libmicrohttpd daemon and a libcurl multi handle from one epoll set.  A gateway run goes
 * on such a thread as a coroutine; where it would block (an HTTP transfer to a vendor, a
 * back-off sleep), it hands the wait to the loop and yields, and the loop resumes it when
 * the wait is over.  So one thread serves many runs in flight, with no hand-off to another
 * thread and back.
 *
 * The interface is defined here, low, and implemented high (core/http): the HTTP client
 * (core/host) and the engine's sleeps reach the loop only through fr__async_current().
 * Everything here is per thread: a loop is used only from its own thread. */
#ifndef FR_CORE_ASYNC_H
#define FR_CORE_ASYNC_H

#include <stdint.h>

typedef struct fr_async {
    void *ctx; /* the loop's, passed back to its functions */
    /* Starts `easy` (a CURL *, fully set up, in no multi handle) on the loop.  When the
     * transfer ends, the loop removes the handle from its multi handle and calls
     * done(ud, rc) (rc: the transfer's CURLcode) on this thread, from the loop itself,
     * never from within this call.  0, or -1 when nothing was started (done is not
     * called). */
    int (*transfer)(void *ctx, void *easy, void (*done)(void *ud, int rc), void *ud);
    /* Calls fn(ud) on this thread, from the loop, once fr__mono_us() >= at_us.  0, or -1
     * when it cannot (fn is not called). */
    int (*timer)(void *ctx, int64_t at_us, void (*fn)(void *ud), void *ud);
} fr_async;

/* The loop the calling thread runs, or NULL (not a loop's thread).  Borrowed: valid while
 * the loop runs. */
const fr_async *fr__async_current(void);
/* Sets (a loop's thread, when it starts) or clears (NULL, when it ends) the calling
 * thread's loop.  a is borrowed for as long as it is set. */
void fr__async_set_current(const fr_async *a);

#endif
