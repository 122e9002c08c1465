/* Internal: collecting an HTTP request body under a size limit, shared by the two
 * libmicrohttpd servers (serve.c, controlplane.c).  One body per request; not shared
 * between threads. */
#ifndef FR_CORE_HTTP_BODY_H
#define FR_CORE_HTTP_BODY_H

#include <stdlib.h>
#include <string.h>

typedef struct fr_http_body {
    char *data; /* NUL-terminated, owned */
    size_t len, cap;
    int too_big; /* the limit was passed: the rest is discarded */
} fr_http_body;

/* Appends n bytes unless that would pass `max` (then too_big is set and the body kept as
 * it was).  Returns 0, or -1 when memory runs out. */
static inline int fr__http_body_append(fr_http_body *b, const char *data, size_t n, size_t max)
{
    if (b->too_big || b->len + n > max) {
        b->too_big = 1;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *nb = realloc(b->data, cap);
        if (!nb)
            return -1;
        b->data = nb;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

#endif
