/* Internal, shared by the two libmicrohttpd servers (serve.c, controlplane.c):
 * collecting a request body under a size limit (one body per request; not shared between
 * threads), and the error body both answer with. */
#ifndef FR_CORE_HTTP_BODY_H
#define FR_CORE_HTTP_BODY_H

#include <json-c/json.h>

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

/* The error body of DESIGN.md, {"error": {"code": CODE, "message": MESSAGE}}: a new
 * object owned by the caller.  *error (when error is not NULL) gets the inner object, for
 * members a route adds. */
static inline json_object *fr__http_error_body(const char *code, const char *message,
                                               json_object **error)
{
    json_object *o = json_object_new_object(), *e = json_object_new_object();
    json_object_object_add(e, "code", json_object_new_string(code));
    json_object_object_add(e, "message", json_object_new_string(message));
    json_object_object_add(o, "error", e);
    if (error)
        *error = e;
    return o;
}

#endif
