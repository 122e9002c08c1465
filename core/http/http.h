/* The HTTP server module shared by serve, the control plane and the metrics endpoints:
 * replies (a handler fills an fr_reply; the server sends it).  Internal. */
#ifndef FR_CORE_HTTP_H
#define FR_CORE_HTTP_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>
#include <microhttpd.h>

/* An HTTP answer produced by a handler. */
typedef struct fr_reply {
    int status;
    char *body; /* owned; JSON unless content_type says otherwise */
    size_t body_len;
    const char *content_type;    /* static; NULL = application/json */
    int retry_after;             /* seconds, for 429; 0 = none */
    const char *allow;           /* static; for 405: the methods the resource takes */
    const char *challenge;       /* static; for 401: the WWW-Authenticate challenge */
    char location[64];           /* for 202: the Location of what was started, or "" */
    int64_t plugin_us;           /* time spent inside plugins (for the overhead header) */
    struct MHD_Response *stream; /* a streaming response (SSE), instead of body */
    const char *route;           /* route pattern for metrics ("/v1/runs/{id}") */
    int deferred;                /* the reply comes later through fr_deferred */
    const char *limit;           /* static; the limit a limit_exceeded reply names */
} fr_reply;

/* Fills `out` with {"error": {"code": code, "message": ...}} and the status. */
void fr__reply_error(fr_reply *out, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Fills `out` with a JSON body (takes the object). */
void fr__reply_json(fr_reply *out, int status, json_object *o);

/* The error body with a message formatted from fmt and ap; *error (when not NULL) gets
 * the inner object, for members a route adds.  Caller releases with json_object_put. */
json_object *fr__http_error_body_v(const char *code, json_object **error, const char *fmt,
                                   va_list ap);

#endif
