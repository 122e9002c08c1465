/* Replies of the HTTP servers: JSON bodies and the error body (core/http/http.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "http/http_body.h"

/* ---- replies -------------------------------------------------------------------------------- */

void fr__reply_json(fr_reply *out, int status, json_object *o)
{
    const char *text =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    out->status = status;
    out->body = text ? strdup(text) : NULL;
    out->body_len = out->body ? strlen(out->body) : 0;
    json_object_put(o);
}

/* The error body with a formatted message; *error gets the inner object. */
json_object *fr__http_error_body_v(const char *code, json_object **error, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    return fr__http_error_body(code, msg, error);
}

void fr__reply_error(fr_reply *out, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_object *o = fr__http_error_body_v(code, NULL, fmt, ap);
    va_end(ap);
    free(out->body);
    fr__reply_json(out, status, o);
}
