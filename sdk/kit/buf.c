/* The kit's growable buffer (include/fluxroute/kit.h): the append itself is inline in
 * the header; growing happens here. */
#include <stdlib.h>

#include <fluxroute/kit.h>

int frk_buf_grow(frk_buf *b, size_t n)
{
    if (b->oom)
        return -1;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void frk_buf_free(frk_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
