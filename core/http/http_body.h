/* Internal, shared by the libmicrohttpd servers (serve, the control plane): collecting
 * a request body under a size limit (one body per request; not shared between threads). */
#ifndef FR_CORE_HTTP_BODY_H
#define FR_CORE_HTTP_BODY_H

#include <stdlib.h>

#include <microhttpd.h>

#include "base/bytebuf.h"

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

/* For MHD's access handler: collects an upload (*upload_size bytes of `upload`) into b
 * under `max` and marks it consumed.  Returns 1 when there was one (the handler answers
 * MHD_YES and waits for more), 0 when the body is complete (the handler answers), -1 when
 * memory runs out (the handler answers MHD_NO). */
static inline int fr__http_body_collect(fr_http_body *b, const char *upload, size_t *upload_size,
                                        size_t max)
{
    if (!*upload_size)
        return 0;
    if (fr__http_body_append(b, upload, *upload_size, max) != 0)
        return -1;
    *upload_size = 0;
    return 1;
}

/* Whether the request's Content-Length announces more than `max` bytes (the body can be
 * refused before it is read). */
static inline int fr__http_body_announced_over(struct MHD_Connection *c, size_t max)
{
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    return cl && strtoull(cl, NULL, 10) > max;
}

#endif
