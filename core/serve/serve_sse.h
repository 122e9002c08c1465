/* serve's Server-Sent Events streams.  A stream is written by its run's thread and read
 * by libmicrohttpd through a content-reader callback; while the run has nothing new to
 * say, the reader suspends the HTTP connection (MHD_suspend_connection) instead of
 * waiting, so a waiting stream holds no request thread and costs no CPU.  The next
 * event, or the end of the run, resumes it. */
#ifndef FR_CORE_SERVE_SSE_H
#define FR_CORE_SERVE_SSE_H

#include <microhttpd.h>

typedef struct fr_sse fr_sse;

/* A stream that answers on `conn` (borrowed: libmicrohttpd's connection of the request,
 * which must have been started with MHD_ALLOW_SUSPEND_RESUME and MHD_USE_ITC).  *resp
 * gets the response to queue for it (the caller queues and destroys it as any other).
 * Returns NULL on OOM or without a connection.  The stream is freed once both the writer
 * (fr__sse_close) and the response are done with it. */
fr_sse *fr__sse_open(struct MHD_Connection *conn, struct MHD_Response **resp);

/* Appends `event: EVENT\ndata: DATA\n\n` (`data: DATA\n\n` when EVENT is NULL, as
 * OpenAI's streams are) and wakes the connection.  DATA must hold no newline (JSON text
 * as json-c writes it).  Thread-safe. */
void fr__sse_event(fr_sse *s, const char *event, const char *data);

/* Ends the stream after what was written and gives up the writer's reference: `s` must
 * not be used afterwards.  Thread-safe. */
void fr__sse_close(fr_sse *s);

/* At shutdown, before MHD_stop_daemon (which must not find a suspended connection): ends
 * every open stream, resuming those that wait.  Streams opened afterwards end at once.
 * Thread-safe. */
void fr__sse_shutdown(void);

#endif
