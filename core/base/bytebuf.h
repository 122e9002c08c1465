/* Internal: a growable, NUL-terminated byte buffer (report text, HTTP bodies and headers,
 * server-sent events).  `oom` is sticky: after a failed growth nothing more is appended
 * and the owner checks it once.  Owned by one thread at a time; release with free(data). */
#ifndef FR_CORE_BYTEBUF_H
#define FR_CORE_BYTEBUF_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/str.h"

typedef struct fr_bytebuf {
    char *data; /* NUL-terminated once anything was appended; owned */
    size_t len, cap;
    int oom;
} fr_bytebuf;

/* Makes room for n more bytes and a NUL.  Returns 1, or 0 (and sets oom) when memory runs
 * out or it already had. */
static inline int fr__bytebuf_reserve(fr_bytebuf *b, size_t n)
{
    if (b->oom)
        return 0;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->oom = 1;
            return 0;
        }
        b->data = d;
        b->cap = cap;
    }
    return 1;
}

static inline void fr__bytebuf_append(fr_bytebuf *b, const char *s, size_t n)
{
    if (!fr__bytebuf_reserve(b, n))
        return;
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* Appends the C string s. */
static inline void fr__bytebuf_puts(fr_bytebuf *b, const char *s)
{
    fr__bytebuf_append(b, s, strlen(s));
}

/* Appends v in decimal (what printf's %llu writes, without printf's cost). */
static inline void fr__bytebuf_put_uint(fr_bytebuf *b, uint64_t v)
{
    char d[FR_STR_INT_SIZE];
    fr__bytebuf_append(b, d, fr__str_uint(d, v));
}

/* Appends v in decimal (%lld). */
static inline void fr__bytebuf_put_int(fr_bytebuf *b, int64_t v)
{
    char d[FR_STR_INT_SIZE];
    fr__bytebuf_append(b, d, fr__str_int(d, v));
}

#endif
