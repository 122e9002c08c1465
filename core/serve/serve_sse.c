/* serve's Server-Sent Events streams (see serve_sse.h).
 *
 * libmicrohttpd asks the content reader for more body whenever the connection can take it.
 * With nothing to send, the reader suspends the connection and returns 0, the pattern
 * microhttpd.h prescribes ("returning zero should only be used in conjunction with
 * MHD_suspend_connection() to avoid busy waiting"); the writer resumes it when it appends.
 * Suspending and resuming both happen under the stream's lock, so a resume always follows
 * the suspend it answers.  libmicrohttpd takes no lock of ours and calls the reader with
 * none of its connection-list locks held, so that order cannot deadlock.
 *
 * MHD_stop_daemon refuses to stop while a connection is suspended, so every open stream is
 * on a list that fr__sse_shutdown walks. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/bytebuf.h"
#include "serve/serve_sse.h"

struct fr_sse {
    pthread_mutex_t mu;
    fr_bytebuf buf; /* the events not yet taken by the response */
    size_t sent;    /* how much of buf the response has taken */
    int done;       /* the writer closed the stream */
    int suspended;  /* the reader suspended the connection: the next event resumes it */
    struct MHD_Connection *conn; /* NULL once the response is done with the stream */
    int refs;                    /* the writer and the response */
    fr_sse *prev, *next;         /* in the list of open streams */
};

/* Open streams (those whose response is alive), for the shutdown. */
static pthread_mutex_t streams_mu = PTHREAD_MUTEX_INITIALIZER;
static fr_sse *streams;
static atomic_int shutting_down;

static void sse_unref(fr_sse *s)
{
    pthread_mutex_lock(&s->mu);
    int last = --s->refs == 0;
    pthread_mutex_unlock(&s->mu);
    if (last) {
        pthread_mutex_destroy(&s->mu);
        free(s->buf.data);
        free(s);
    }
}

/* Resumes the connection if the reader suspended it (s->mu held). */
static void wake(fr_sse *s)
{
    if (s->suspended) {
        s->suspended = 0;
        MHD_resume_connection(s->conn);
    }
}

static ssize_t sse_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    fr_sse *s = cls;
    ssize_t n = 0;
    pthread_mutex_lock(&s->mu);
    if (s->sent < s->buf.len) {
        size_t k = s->buf.len - s->sent < max ? s->buf.len - s->sent : max;
        memcpy(out, s->buf.data + s->sent, k);
        s->sent += k;
        if (s->sent == s->buf.len)
            s->buf.len = s->sent = 0; /* everything went out: reuse the buffer */
        n = (ssize_t)k;
    } else if (s->done || atomic_load(&shutting_down)) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        /* Nothing yet: park the connection; the request thread serves others meanwhile. */
        s->suspended = 1;
        MHD_suspend_connection(s->conn);
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* The response is done with the stream (sent, or the client went away). */
static void sse_free(void *cls)
{
    fr_sse *s = cls;
    pthread_mutex_lock(&streams_mu);
    if (s->prev)
        s->prev->next = s->next;
    else
        streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    pthread_mutex_unlock(&streams_mu);
    pthread_mutex_lock(&s->mu);
    s->conn = NULL;
    s->suspended = 0;
    pthread_mutex_unlock(&s->mu);
    sse_unref(s);
}

fr_sse *fr__sse_open(struct MHD_Connection *conn, struct MHD_Response **resp)
{
    *resp = NULL;
    fr_sse *s = conn ? calloc(1, sizeof *s) : NULL;
    if (!s)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    s->conn = conn;
    s->refs = 2;
    *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, s, sse_free);
    if (!*resp) {
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    pthread_mutex_lock(&streams_mu);
    s->next = streams;
    if (streams)
        streams->prev = s;
    streams = s;
    pthread_mutex_unlock(&streams_mu);
    return s;
}

void fr__sse_event(fr_sse *s, const char *event, const char *data)
{
    pthread_mutex_lock(&s->mu);
    fr_bytebuf *b = &s->buf;
    size_t el = event ? strlen(event) : 0, dl = strlen(data);
    /* "event: E\n" when there is one, "data: D\n\n" (appends, not sprintf: a streamed
     * token is one event). */
    if (!s->done && fr__bytebuf_reserve(b, el + dl + 32)) {
        if (event) {
            fr__bytebuf_append(b, "event: ", 7);
            fr__bytebuf_append(b, event, el);
            fr__bytebuf_append(b, "\n", 1);
        }
        fr__bytebuf_append(b, "data: ", 6);
        fr__bytebuf_append(b, data, dl);
        fr__bytebuf_append(b, "\n\n", 2);
    }
    wake(s);
    pthread_mutex_unlock(&s->mu);
}

void fr__sse_close(fr_sse *s)
{
    pthread_mutex_lock(&s->mu);
    s->done = 1;
    wake(s);
    pthread_mutex_unlock(&s->mu);
    sse_unref(s);
}

void fr__sse_shutdown(void)
{
    atomic_store(&shutting_down, 1);
    pthread_mutex_lock(&streams_mu);
    for (fr_sse *s = streams; s; s = s->next) {
        pthread_mutex_lock(&s->mu);
        wake(s); /* the reader, called again, sees shutting_down and ends the stream */
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_unlock(&streams_mu);
    /* MHD_stop_daemon closes connections without sending what they still hold: give the
     * streams (whose runs have finished: their reports are queued) up to 2 s to go out.
     * A stream leaves the list when its response is freed. */
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&streams_mu);
        int open = streams != NULL;
        pthread_mutex_unlock(&streams_mu);
        if (!open)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}
