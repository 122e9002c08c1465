/* The loop server: the HTTP server of http.h whose request threads are event loops.
 *
 * Each of its threads runs one loop (epoll) that drives a libmicrohttpd daemon in external
 * mode and a libcurl multi handle together, and implements the calling thread's fr_async
 * (base/async.h) for the handlers that run on it: a handler may suspend its connection,
 * start a transfer or a timer on its loop, and answer when it ends, without holding the
 * thread meanwhile.  The daemons share one listening socket, as libmicrohttpd's own thread
 * pool does: a connection is served by the loop that accepted it.
 *
 * Handlers see what they see on fr__http_start's threads: the same options, suspending,
 * resuming from any thread (through fr__http_resume).  Internal. */
#ifndef FR_CORE_HTTP_LOOP_H
#define FR_CORE_HTTP_LOOP_H

#include <stddef.h>

#include "http/http.h"

typedef struct fr_http_loops fr_http_loops;

/* Starts cfg->threads loops (at least one) on cfg->addr, each with a daemon of cfg's
 * options (suspend/resume always allowed, cfg->connection_limit shared out among the loops,
 * rounded up); the threads take no signal the caller has blocked.  cfg and what it points
 * to are borrowed for the call.  NULL when the address cannot be bound, the TLS files are
 * invalid or resources run out.  Stop with fr__http_loops_stop; call from one thread. */
fr_http_loops *fr__http_loops_start(const fr_http_server_config *cfg);
/* "http://HOST:PORT" or "https://..." of s, started on a, with the port it bound (a's
 * port 0: the one the kernel picked).  Thread-safe. */
void fr__http_loops_url(const fr_http_loops *s, const fr_http_addr *a, int tls, char *buf,
                        size_t size);
/* Stops accepting connections: the listening socket is closed on return (a new connection
 * is refused), and each daemon stops accepting at its loop's next turn, even while another
 * loop is held by a handler.  Connections already accepted, transfers and timers go on
 * being served until fr__http_loops_stop.  Idempotent; call from the thread that started
 * s. */
void fr__http_loops_quiesce(fr_http_loops *s);
/* Ends every loop and frees s.  Each loop stops its daemon on its own thread (completion
 * callbacks run there) and drops what is still pending on it: a transfer's handle is
 * removed from the multi handle and its done is not called (the easy handle stays its
 * owner's), a timer's fn is not called.  No connection may still be suspended (the daemons
 * would not stop).  NULL is a no-op; call from the thread that started s, never from a
 * loop. */
void fr__http_loops_stop(fr_http_loops *s);
/* MHD_resume_connection(c), and when c is a loop's connection, wakes that loop so that it
 * serves c now: a loop in external mode learns of a resume only this way (the one
 * exception: a transfer's done or a timer's fn may resume its own loop's connections with
 * MHD_resume_connection, since the loop runs its daemon after them).  Resume a suspended
 * connection of any server with it, from any thread (a connection of fr__http_start's
 * servers is only resumed).  c must be suspended. */
void fr__http_resume(struct MHD_Connection *c);

#endif
