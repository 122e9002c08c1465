/* The control plane's HTTP plumbing: responses, request parsing, field checks (cp_http.h). */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/cp_http.h"
#include "base/json_parse.h"

/* ---- responses ------------------------------------------------------------------------- */

static _Thread_local int last_status;

int fr__cp_take_status(void)
{
    int st = last_status;
    last_status = 0;
    return st;
}

/* Sends body (taken; NULL when memory ran out); `allow` (or NULL) is the Allow header of
 * a 405.  Every 401 carries the Bearer challenge. */
static enum MHD_Result send_owned(struct MHD_Connection *c, unsigned status, const char *type,
                                  char *body, size_t len, const char *allow)
{
    last_status = (int)status;
    if (!body)
        return MHD_NO;
    fr_reply rp = {.status = (int)status,
                   .body = body,
                   .body_len = len,
                   .content_type = type,
                   .allow = allow,
                   .challenge = status == 401 ? "Bearer realm=\"fluxroute\"" : NULL};
    return fr__http_send(c, &rp);
}

enum MHD_Result fr__cp_send_buf(struct MHD_Connection *c, unsigned status, const char *type,
                                const char *body, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy)
        memcpy(copy, body, len);
    return send_owned(c, status, type, copy, len, NULL);
}

/* Sends `o` (released) with a trailing newline. */
static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_object *o,
                                 const char *allow)
{
    size_t len;
    const char *t = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
    char *b = malloc(len + 2);
    if (b) {
        memcpy(b, t, len);
        b[len] = '\n';
    }
    json_object_put(o);
    return send_owned(c, status, "application/json", b, len + 1, allow);
}

enum MHD_Result fr__cp_send_json(struct MHD_Connection *c, unsigned status, json_object *o)
{
    return send_json(c, status, o, NULL);
}

enum MHD_Result fr__cp_method_not_allowed(struct MHD_Connection *c, const char *method,
                                          const char *allow)
{
    char msg[256];
    snprintf(msg, sizeof msg, "method %.32s is not allowed here; use %s", method, allow);
    return send_json(c, (unsigned)fr__http_error_status(FR_HE_METHOD_NOT_ALLOWED),
                     fr__http_error_body(FR_HE_METHOD_NOT_ALLOWED, msg, NULL), allow);
}

enum MHD_Result fr__cp_send_error(struct MHD_Connection *c, fr_http_error e, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fr__cp_send_json(c, (unsigned)fr__http_error_status(e),
                            fr__http_error_body(e, msg, NULL));
}

enum MHD_Result fr__cp_not_found(struct MHD_Connection *c, const char *what, const char *id)
{
    return fr__cp_send_error(c, FR_HE_NOT_FOUND, "%s \"%s\" not found", what, id);
}

enum MHD_Result fr__cp_forbidden(struct MHD_Connection *c, const caller *who)
{
    return fr__cp_send_error(c, FR_HE_FORBIDDEN, "a %s key may not do this",
                             fr__key_kind_name(who->key.kind));
}

/* ---- request parsing ------------------------------------------------------------------- */

const char *fr__cp_arg(struct MHD_Connection *c, const char *name)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    return v && *v ? v : NULL;
}

/* page / page_size as the original: bad or <= 0 gives the default, size clamped to 200. */
void fr__cp_paging(struct MHD_Connection *c, int *page, int *size)
{
    const char *p = fr__cp_arg(c, "page"), *s = fr__cp_arg(c, "page_size");
    char *end;
    long v = p ? strtol(p, &end, 10) : 0;
    *page = p && !*end && v > 0 && v < 1000000000 ? (int)v : 1;
    v = s ? strtol(s, &end, 10) : 0;
    *size = s && !*end && v > 0 ? (v > 200 ? 200 : (int)v) : 50;
}

/* Parses the body as one JSON value.  On failure sends 400 (with the position) and returns
 * NULL with *sent set. */
json_object *fr__cp_parse_body(struct MHD_Connection *c, const req *r, enum MHD_Result *sent)
{
    size_t len = r->body.buf.len;
    while (len && isspace((unsigned char)r->body.buf.data[len - 1]))
        len--;
    if (!len) {
        *sent = fr__cp_send_error(c, FR_HE_BAD_JSON, "the request body is empty; expected JSON");
        return NULL;
    }
    json_object *o;
    size_t at;
    const char *why;
    int rc = fr__json_parse_whole(r->body.buf.data, len, 64, &o, &at, &why);
    if (rc == 0 && o)
        return o;
    if (rc == 0) { /* the text `null` */
        at = 0;
        why = "expected JSON other than null";
    }
    int line, col;
    fr__json_line_col(r->body.buf.data, at, &line, &col);
    *sent =
        fr__cp_send_error(c, FR_HE_BAD_JSON, "malformed JSON at line %d, column %d (byte %zu): %s",
                          line, col, at, why);
    return NULL;
}

int fr__cp_ferr(fieldctx *f, const char *name, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(f->err, sizeof f->err, "%s%s%s %s", f->where, *f->where ? "." : "", name, msg);
    return -1;
}

/* Unknown fields are errors: a typo must not silently drop a quantity. */
int fr__cp_only_fields(fieldctx *f, json_object *o, const char *const *allowed)
{
    json_object_object_foreach(o, k, v)
    {
        (void)v;
        int ok = 0;
        for (size_t i = 0; allowed[i]; i++)
            ok |= strcmp(k, allowed[i]) == 0;
        if (!ok)
            return fr__cp_ferr(f, k, "is not a known field");
    }
    return 0;
}

/* A string member: required or defaulting to "", at most max bytes. */
int fr__cp_get_str(fieldctx *f, json_object *o, const char *name, int required, size_t max,
                   char *out, size_t size)
{
    json_object *v;
    out[0] = '\0';
    if (!json_object_object_get_ex(o, name, &v) || !v)
        return required ? fr__cp_ferr(f, name, "is required") : 0;
    if (!json_object_is_type(v, json_type_string))
        return fr__cp_ferr(f, name, "must be a string");
    size_t n = (size_t)json_object_get_string_len(v);
    if (n > max || n >= size)
        return fr__cp_ferr(f, name, "is longer than %zu bytes", max);
    if (required && n == 0)
        return fr__cp_ferr(f, name, "must not be empty");
    memcpy(out, json_object_get_string(v), n + 1);
    return 0;
}

/* An integer member in [0, max]; missing gives def, or an error when def < 0. */
int fr__cp_get_int(fieldctx *f, json_object *o, const char *name, int64_t def, int64_t max,
                   int64_t *out)
{
    json_object *v;
    if (!json_object_object_get_ex(o, name, &v) || !v) {
        if (def < 0)
            return fr__cp_ferr(f, name, "is required (give 0 explicitly for none)");
        *out = def;
        return 0;
    }
    if (!json_object_is_type(v, json_type_int))
        return fr__cp_ferr(f, name, "must be an integer");
    errno = 0;
    int64_t x = json_object_get_int64(v);
    if (x == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX)
        return fr__cp_ferr(f, name, "is too large (at most %lld)", (long long)max);
    if (x < 0)
        return fr__cp_ferr(f, name, "must not be negative");
    if (x > max)
        return fr__cp_ferr(f, name, "is too large (at most %lld)", (long long)max);
    *out = x;
    return 0;
}

int fr__cp_get_bool(fieldctx *f, json_object *o, const char *name, int *out)
{
    json_object *v;
    *out = 0;
    if (!json_object_object_get_ex(o, name, &v) || !v)
        return 0;
    if (!json_object_is_type(v, json_type_boolean))
        return fr__cp_ferr(f, name, "must be true or false, not %s",
                           json_type_to_name(json_object_get_type(v)));
    *out = json_object_get_boolean(v);
    return 0;
}

/* A tenant key may only name its own tenant; anything else looks like it does not exist. */
int fr__cp_may_see(const caller *who, const char *tenant)
{
    return who->key.kind == FR_KEY_ADMIN ||
           (who->key.kind == FR_KEY_TENANT && strcmp(who->key.tenant, tenant) == 0);
}
