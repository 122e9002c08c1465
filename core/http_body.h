/* Internal: collecting an HTTP request body under a size limit, shared by the two
 * libmicrohttpd servers (serve.c, controlplane.c).  One body per request; not shared
 * between threads. */
#ifndef FR_CORE_HTTP_BODY_H
#define FR_CORE_HTTP_BODY_H

#include "bytebuf.h"

typedef struct fr_http_body {
    fr_bytebuf buf; /* NUL-terminated, owned */
    int too_big;    /* the limit was passed: the rest is discarded */
} fr_http_body;

/* Appends n bytes unless that would pass `max` (then too_big is set and the body kept as
 * it was).  Returns 0, or -1 when memory runs out. */
static inline int fr__http_body_append(fr_http_body *b, const char *data, size_t n, size_t max)
{
    if (b->too_big || b->buf.len + n > max) {
        b->too_big = 1;
        return 0;
    }
    fr__bytebuf_append(&b->buf, data, n);
    return b->buf.oom ? -1 : 0;
}

#endif
