/* Replies of the HTTP servers: JSON bodies, the error body, and the table of error codes
 * (core/http/http.h, core/http/http_errors.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

/* ---- the error codes --------------------------------------------------------------------- */

static const struct {
    const char *code;
    int status;
    const char *meaning;
} errors[FR_HE_COUNT_] = {
#define FR_HTTP_ERROR_ROW(id, code, status, meaning) [FR_HE_##id] = {code, status, meaning},
    FR_HTTP_ERRORS(FR_HTTP_ERROR_ROW)
#undef FR_HTTP_ERROR_ROW
};

const char *fr__http_error_code(fr_http_error e)
{
    return errors[e].code;
}

int fr__http_error_status(fr_http_error e)
{
    return errors[e].status;
}

const char *fr__http_error_meaning(fr_http_error e)
{
    return errors[e].meaning;
}

/* ---- replies ------------------------------------------------------------------------------ */

void fr__reply_json(fr_reply *out, int status, json_object *o)
{
    const char *text =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    out->status = status;
    out->body = text ? strdup(text) : NULL;
    out->body_len = out->body ? strlen(out->body) : 0;
    json_object_put(o);
}

json_object *fr__http_error_body(fr_http_error e, const char *message, json_object **error)
{
    json_object *o = json_object_new_object(), *inner = json_object_new_object();
    json_object_object_add(inner, "code", json_object_new_string(errors[e].code));
    json_object_object_add(inner, "message", json_object_new_string(message));
    json_object_object_add(o, "error", inner);
    if (error)
        *error = inner;
    return o;
}

json_object *fr__http_error_body_v(fr_http_error e, json_object **error, const char *fmt,
                                   va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    return fr__http_error_body(e, msg, error);
}

void fr__reply_error(fr_reply *out, fr_http_error e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_object *o = fr__http_error_body_v(e, NULL, fmt, ap);
    va_end(ap);
    free(out->body);
    fr__reply_json(out, errors[e].status, o);
}
