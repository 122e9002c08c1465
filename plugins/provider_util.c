/* provider_util.c: helpers shared by the HTTP provider plugins (provider_util.h). */
#include "provider_util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Substrings (lower case) that mark a refused request as too long for the model, or as
 * refused by a content policy.  Checked in the vendor's code, type and message. */
static const char *const *context_marks(void)
{
    static const char *const marks[] = {"context_length_exceeded",
                                        "context length",
                                        "context window",
                                        "context_window",
                                        "too long",
                                        "token limit",
                                        "maximum number of tokens",
                                        "input token count",
                                        "maximum context",
                                        "too many tokens",
                                        NULL};
    return marks;
}

static const char *const *policy_marks(void)
{
    static const char *const marks[] = {
        "content_policy",      "content policy",    "content_filter",
        "content filter",      "content filtering", "safety system",
        "responsibleaipolicy", "blocked by",        NULL};
    return marks;
}

/* 1 when the lower-cased text contains one of marks. */
static int has_mark(const char *text, const char *const *marks)
{
    if (!text)
        return 0;
    char low[512];
    size_t n = 0;
    for (; text[n] && n + 1 < sizeof low; n++)
        low[n] = (char)tolower((unsigned char)text[n]);
    low[n] = '\0';
    for (size_t i = 0; marks[i]; i++)
        if (strstr(low, marks[i]))
            return 1;
    return 0;
}

fr_status pv_classify(int http, const char *code, const char *type, const char *message)
{
    static const struct {
        const char *name; /* vendor error type/code/status, compared case-sensitively */
        fr_status st;
    } by_name[] = {
        {"overloaded_error", FR_E_OVERLOADED},
        {"rate_limit_error", FR_E_RATE_LIMITED},
        {"rate_limit_exceeded", FR_E_RATE_LIMITED},
        {"RESOURCE_EXHAUSTED", FR_E_RATE_LIMITED},
        {"authentication_error", FR_E_AUTH},
        {"permission_error", FR_E_AUTH},
        {"UNAUTHENTICATED", FR_E_AUTH},
        {"PERMISSION_DENIED", FR_E_AUTH},
        {"invalid_request_error", FR_E_BAD_REQUEST},
        {"INVALID_ARGUMENT", FR_E_BAD_REQUEST},
        {"UNAVAILABLE", FR_E_OVERLOADED},
        {"timeout_error", FR_E_REQUEST_TIMEOUT},
        {"DEADLINE_EXCEEDED", FR_E_UNAVAILABLE},
    };
    fr_status st = frk_http_status(http); /* FR_OK below 400, and without one (0) */
    for (size_t i = 0; !st && i < PU_COUNT(by_name); i++)
        if ((code && strcmp(code, by_name[i].name) == 0) ||
            (type && strcmp(type, by_name[i].name) == 0))
            st = by_name[i].st;
    if (!st)
        st = FR_E_UNAVAILABLE; /* an unexplained in-stream failure: the service's fault */
    if (st == FR_E_BAD_REQUEST) {
        const char *texts[] = {code, type, message};
        for (size_t i = 0; i < 3 && st == FR_E_BAD_REQUEST; i++)
            if (has_mark(texts[i], context_marks()))
                st = FR_E_CONTEXT_WINDOW;
        for (size_t i = 0; i < 3 && st == FR_E_BAD_REQUEST; i++)
            if (has_mark(texts[i], policy_marks()))
                st = FR_E_CONTENT_POLICY;
    }
    return st;
}

int pv_is(const frk_json_doc *d, int tok, const char *lit)
{
    if (frk_json_type_of(d, tok) != FRK_JSON_STRING)
        return 0;
    const frk_json_tok *t = &d->tok[tok];
    size_t n = strlen(lit);
    if (!(t->flags & FRK_JSON_ESCAPED))
        return t->len == n && memcmp(d->text + t->start, lit, n) == 0;
    frk_buf b = {0};
    frk_json_cstr(d, tok, &b);
    int eq = !b.oom && b.len == n && (n == 0 || memcmp(b.data, lit, n) == 0);
    frk_buf_free(&b);
    return eq;
}

void pv_sep(frk_buf *o)
{
    if (o->len && o->data[o->len - 1] != '{' && o->data[o->len - 1] != '[')
        frk_buf_lit(o, ",");
}

void pv_key(frk_buf *o, const char *key)
{
    pv_sep(o);
    frk_buf_lit(o, "\"");
    frk_buf_append(o, key, strlen(key));
    frk_buf_lit(o, "\":");
}

void pv_put_text(frk_buf *o, const frk_json_doc *d, int tok)
{
    if (frk_json_type_of(d, tok) != FRK_JSON_STRING) {
        frk_buf_lit(o, "\"\"");
        return;
    }
    const frk_json_tok *t = &d->tok[tok];
    if (!(t->flags &
          (FRK_JSON_REWRITE | FRK_JSON_UNUSUAL))) { /* json-c would write it as it came */
        frk_buf_append(o, d->text + t->start - 1, t->len + 2);
        return;
    }
    frk_json_put_decoded(o, d, tok, 1);
}

void pv_put_member(frk_buf *o, const char *as, const frk_json_doc *d, int obj, const char *key)
{
    int v = frk_json_member(d, obj, key);
    if (v >= 0 && frk_json_type_of(d, v) != FRK_JSON_NULL) {
        pv_key(o, as);
        frk_json_put_value(o, d, v);
    }
}

/* Writes `text` (a C string holding JSON text) as the JSON object it holds, or {} when
 * it holds anything else (tool arguments sent as objects). */
static inline void pv_put_object_text(frk_buf *o, const char *text, size_t len)
{
    frk_json_doc doc;
    char err[200];
    if (frk_json_scan_any(&doc, text, len, err, sizeof err) == 0 &&
        frk_json_type_of(&doc, 0) == FRK_JSON_OBJECT)
        frk_json_put_value(o, &doc, 0);
    else
        frk_buf_lit(o, "{}");
    frk_json_free(&doc);
}

void pv_put_args_object(frk_buf *o, const frk_json_doc *d, int tok)
{
    if (frk_json_type_of(d, tok) == FRK_JSON_OBJECT && tok >= 0) {
        frk_json_put_value(o, d, tok);
    } else if (frk_json_type_of(d, tok) == FRK_JSON_STRING && tok >= 0) {
        frk_buf text = {0};
        frk_json_str(d, tok, &text);
        if (text.oom)
            o->oom = 1;
        pv_put_object_text(o, text.data ? text.data : "", text.len);
        frk_buf_free(&text);
    } else {
        frk_buf_lit(o, "{}");
    }
}

void pv_put_stop(frk_buf *o, const char *as, const frk_json_doc *req)
{
    int v = frk_json_member(req, 0, "stop");
    if (v < 0 || frk_json_type_of(req, v) == FRK_JSON_NULL)
        return;
    pv_key(o, as);
    if (frk_json_type_of(req, v) != FRK_JSON_ARRAY)
        frk_buf_lit(o, "[");
    frk_json_put_value(o, req, v);
    if (frk_json_type_of(req, v) != FRK_JSON_ARRAY)
        frk_buf_lit(o, "]");
}

void pv_put_tools(frk_buf *b, const frk_json_doc *req, const char *head, const char *open,
                  const char *close, const char *tail)
{
    int tools = frk_json_get(req, 0, "tools", FRK_JSON_ARRAY);
    if (frk_json_first(req, tools) < 0)
        return;
    frk_buf_append(b, head, strlen(head));
    for (int t = frk_json_first(req, tools); t >= 0; t = frk_json_next(req, tools, t)) {
        pv_sep(b);
        frk_buf_append(b, open, strlen(open));
        pv_put_member(b, "name", req, t, "name");
        pv_put_member(b, "description", req, t, "description");
        pv_put_member(b, "parameters", req, t, "parameters");
        frk_buf_append(b, close, strlen(close));
    }
    frk_buf_append(b, tail, strlen(tail));
}

int pv_wants_json(const frk_json_doc *req)
{
    int rf = frk_json_get(req, 0, "response_format", FRK_JSON_OBJECT);
    return pv_is(req, frk_json_get(req, rf, "type", FRK_JSON_STRING), "json_object");
}

int pv_has_parts(const frk_json_doc *d, int tok)
{
    return frk_json_type_of(d, tok) == FRK_JSON_ARRAY && tok >= 0;
}

void pv_content_text(frk_buf *out, const frk_json_doc *d, int tok, const char *sep)
{
    if (frk_json_type_of(d, tok) == FRK_JSON_STRING && tok >= 0) {
        frk_json_cstr(d, tok, out);
        return;
    }
    int first = 1;
    for (int p = pv_has_parts(d, tok) ? frk_json_first(d, tok) : -1; p >= 0;
         p = frk_json_next(d, tok, p)) {
        int text = frk_json_get(d, p, "text", FRK_JSON_STRING);
        if (!pv_is(d, frk_json_get(d, p, "type", FRK_JSON_STRING), "text") || text < 0)
            continue;
        if (!first)
            frk_buf_append(out, sep, strlen(sep));
        first = 0;
        frk_json_cstr(d, text, out);
    }
}

void pv_put_content_text(frk_buf *o, const frk_json_doc *d, int tok, const char *sep)
{
    if (frk_json_type_of(d, tok) == FRK_JSON_STRING && tok >= 0) {
        pv_put_text(o, d, tok); /* byte for byte as before ABI 1.2 */
        return;
    }
    frk_buf text = {0};
    frk_buf_lit(&text, "");
    pv_content_text(&text, d, tok, sep);
    o->oom |= text.oom;
    frk_json_put_string(o, text.data ? text.data : "", text.len);
    frk_buf_free(&text);
}

int pv_image_read(const frk_json_doc *d, int part, pv_image *img)
{
    memset(img, 0, sizeof *img);
    int iu = frk_json_get(d, part, "image_url", FRK_JSON_OBJECT);
    int detail = frk_json_member(d, iu, "detail");
    img->detail_ok =
        detail < 0 || frk_json_type_of(d, detail) == FRK_JSON_NULL || pv_is(d, detail, "auto");
    frk_buf_lit(&img->url, "");
    frk_json_cstr(d, frk_json_get(d, iu, "url", FRK_JSON_STRING), &img->url);
    if (img->url.oom)
        return -1;
    char *u = img->url.data;
    if (strncasecmp(u, "data:", 5) != 0)
        return 0;
    img->is_data = 1;
    char *comma = strchr(u, ',');
    if (!comma)
        return 0;
    /* "data:MIME;param...;base64,": base64 must be the last parameter */
    const char *b64 = comma - 7;
    if (b64 < u + 5 || strncasecmp(b64, ";base64", 7) != 0)
        return 0;
    size_t mime_len = strcspn(u + 5, ";,");
    if (mime_len == 0)
        return 0;
    img->mime = u + 5;
    img->mime_len = mime_len;
    img->data = comma + 1;
    return 0;
}

void pv_image_free(pv_image *img)
{
    frk_buf_free(&img->url);
}

fr_status pv_unsupported(const pv_state *s, fr_call *call, const char *field, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    s->host->set_error(call, "unsupported field '%s': %s", field, why);
    return FR_E_BAD_REQUEST;
}

fr_status pv_each_image(const pv_state *s, fr_call *call, const frk_json_doc *req,
                        pv_image_check check)
{
    int msgs = frk_json_get(req, 0, "messages", FRK_JSON_ARRAY);
    size_t i = 0;
    for (int m = frk_json_first(req, msgs); m >= 0; m = frk_json_next(req, msgs, m), i++) {
        int c = frk_json_get(req, m, "content", FRK_JSON_ARRAY);
        size_t j = 0;
        for (int p = frk_json_first(req, c); p >= 0; p = frk_json_next(req, c, p), j++) {
            if (!pv_is(req, frk_json_get(req, p, "type", FRK_JSON_STRING), "image_url"))
                continue;
            pv_image img;
            char field[96];
            fr_status st = FR_OK;
            if (pv_image_read(req, p, &img) != 0) {
                st = pv_nomem(s, call);
            } else if (!img.detail_ok) {
                snprintf(field, sizeof field, "messages[%zu].content[%zu].image_url.detail", i, j);
                st = pv_unsupported(s, call, field, "%s takes no image detail (only auto)",
                                    s->vendor->name);
            } else if (img.is_data && !img.data) {
                snprintf(field, sizeof field, "messages[%zu].content[%zu].image_url", i, j);
                st = pv_unsupported(
                    s, call, field,
                    "%s takes data: URLs in base64 only (data:MEDIA_TYPE;base64,...)",
                    s->vendor->name);
            } else {
                st = check(s, call, &img, i, j);
            }
            pv_image_free(&img);
            if (st != FR_OK)
                return st;
        }
    }
    return FR_OK;
}

void pv_put_image(frk_buf *o, const frk_json_doc *d, int p, const char *inline_head,
                  const char *url_head)
{
    pv_image img;
    if (pv_image_read(d, p, &img) != 0) {
        o->oom = 1;
    } else if (img.data) {
        frk_buf_append(o, inline_head, strlen(inline_head));
        frk_json_put_string(o, img.mime, img.mime_len);
        frk_buf_lit(o, ",\"data\":");
        frk_json_put_cstr(o, img.data);
        frk_buf_lit(o, "}}");
    } else {
        frk_buf_append(o, url_head, strlen(url_head));
        frk_json_put_string(o, img.url.data, img.url.len);
        frk_buf_lit(o, "}}");
    }
    pv_image_free(&img);
}

void pv_put_text_block(frk_buf *o, const frk_json_doc *d, int p)
{
    frk_buf_lit(o, "{\"type\":\"text\",\"text\":");
    pv_put_text(o, d, frk_json_get(d, p, "text", FRK_JSON_STRING));
    frk_buf_lit(o, "}");
}

int pv_tool_choice(const frk_json_doc *req)
{
    int tc = frk_json_member(req, 0, "tool_choice");
    if (tc < 0 || frk_json_type_of(req, tc) == FRK_JSON_NULL)
        return -1;
    int tools = frk_json_get(req, 0, "tools", FRK_JSON_ARRAY);
    if (frk_json_first(req, tools) < 0 && (pv_is(req, tc, "auto") || pv_is(req, tc, "none")))
        return -1;
    return tc;
}

int pv_wants_schema(const frk_json_doc *req, int *schema)
{
    int rf = frk_json_get(req, 0, "response_format", FRK_JSON_OBJECT);
    *schema = frk_json_get(req, rf, "json_schema", FRK_JSON_OBJECT);
    return pv_is(req, frk_json_get(req, rf, "type", FRK_JSON_STRING), "json_schema");
}

fr_status pv_fail(const pv_state *s, fr_call *call, fr_status st, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* A vendor may echo the credential it refused: never let it through. */
    char clean[1100];
    size_t klen = s->key ? strlen(s->key) : 0, o = 0;
    for (const char *p = msg; *p && o + 12 < sizeof clean;) {
        if (klen >= 4 && strncmp(p, s->key, klen) == 0) {
            memcpy(clean + o, "[REDACTED]", 10);
            o += 10;
            p += klen;
        } else {
            clean[o++] = *p++;
        }
    }
    clean[o] = '\0';
    s->host->set_error(call, "%s: %s", s->vendor->name, clean);
    return st;
}

fr_status pv_nomem(const pv_state *s, fr_call *call)
{
    return pv_fail(s, call, FR_E_NOMEM, "out of memory");
}

/* Reads the vendor error object out of a scanned body: {"error": {message, code|type|
 * status}} (openai, gemini) or {"type": "error", "error": {type, message}} (anthropic).
 * Fills code/type/message (empty when absent).  Returns 1 when the body had an error
 * object. */
static inline int pv_error_fields(const frk_json_doc *body, char *code, size_t code_size,
                                  char *type, size_t type_size, char *message, size_t message_size)
{
    code[0] = type[0] = message[0] = '\0';
    int e = frk_json_get(body, 0, "error", FRK_JSON_OBJECT);
    if (e < 0)
        return 0;
    int c = frk_json_get(body, e, "code", FRK_JSON_STRING);
    if (c < 0)
        c = frk_json_get(body, e, "status",
                         FRK_JSON_STRING); /* gemini: its "code" is the HTTP code */
    frk_json_copy(body, frk_json_get(body, e, "message", FRK_JSON_STRING), message, message_size);
    frk_json_copy(body, frk_json_get(body, e, "type", FRK_JSON_STRING), type, type_size);
    frk_json_copy(body, c, code, code_size);
    return 1;
}

fr_status pv_error_object(const pv_state *s, fr_call *call, const frk_json_doc *body, int http)
{
    char code[64], type[64], message[600];
    pv_error_fields(body, code, sizeof code, type, sizeof type, message, sizeof message);
    fr_status st = pv_classify(http, code, type, message);
    return pv_fail(s, call, st, "%s%s%s%s", message[0] ? message : "error without a message",
                   code[0] || type[0] ? " (" : "", code[0] ? code : type,
                   code[0] || type[0] ? ")" : "");
}

/* Reports the vendor's requested delay (retry-after-ms, else Retry-After) to the host. */
static inline void pv_retry_after(const pv_state *s, fr_call *call, const fr_http_response *resp)
{
    const char *v;
    size_t n;
    int64_t us;
    if (frk_http_header(resp->headers, resp->headers_len, "retry-after-ms", &v, &n) &&
        frk_retry_after(v, n, 0, &us) == 0) {
        s->host->set_retry_after(call, us / 1000);
        return;
    }
    if (frk_http_header(resp->headers, resp->headers_len, "retry-after", &v, &n) &&
        frk_retry_after(v, n, s->host->clock_us(call), &us) == 0)
        s->host->set_retry_after(call, us);
}

/* Fails the call for a non-2xx answer: class from the status and the vendor's error
 * body, message "HTTP 429: <vendor message>", Retry-After passed on. */
static inline fr_status pv_http_error(const pv_state *s, fr_call *call,
                                      const fr_http_response *resp)
{
    char code[64] = "", type[64] = "", message[600] = "", err[200];
    frk_json_doc body;
    int scanned = frk_json_scan_any(&body, resp->body, resp->body_len, err, sizeof err) == 0;
    if (!scanned ||
        !pv_error_fields(&body, code, sizeof code, type, sizeof type, message, sizeof message)) {
        /* Not the vendor's JSON (a proxy's HTML page, an empty body): show its start. */
        size_t n = resp->body_len < 200 ? resp->body_len : 200, o = 0;
        for (size_t i = 0; i < n && o + 1 < sizeof message; i++)
            message[o++] = isprint((unsigned char)resp->body[i]) ? resp->body[i] : ' ';
        message[o] = '\0';
        if (!o)
            snprintf(message, sizeof message, "(empty body)");
    }
    frk_json_free(&body);
    fr_status st = pv_classify(resp->status, code, type, message);
    if (resp->status == 429 || resp->status == 503 || resp->status == 529)
        pv_retry_after(s, call, resp);
    return pv_fail(s, call, st, "HTTP %d: %s%s%s%s", resp->status, message,
                   code[0] || type[0] ? " (" : "", code[0] ? code : type,
                   code[0] || type[0] ? ")" : "");
}

static inline void pv_result_free(pv_result *r)
{
    frk_buf_free(&r->text);
    for (size_t i = 0; i < r->n_tools; i++) {
        frk_buf_free(&r->tools[i].id);
        frk_buf_free(&r->tools[i].name);
        frk_buf_free(&r->tools[i].args);
    }
    free(r->tools);
    r->tools = NULL;
    r->n_tools = r->cap_tools = 0;
}

void pv_text(pv_result *r, const frk_json_doc *d, int tok)
{
    if (frk_json_type_of(d, tok) == FRK_JSON_STRING)
        frk_json_cstr(d, tok, &r->text);
}

fr_status pv_delta(const pv_state *s, fr_call *call, pv_result *r, const char *t, size_t n)
{
    if (n == 0)
        return FR_OK;
    frk_buf_append(&r->text, t, n);
    fr_status st = s->host->stream_chunk(call, t, n);
    if (st != FR_OK)
        return pv_fail(s, call, st, "streaming stopped after %zu chunks (%s)", r->chunks,
                       frk_status_name(st));
    return FR_OK;
}

fr_status pv_delta_text(const pv_state *s, fr_call *call, pv_result *r, const frk_json_doc *d,
                        int tok)
{
    if (frk_json_type_of(d, tok) != FRK_JSON_STRING)
        return FR_OK;
    const frk_json_tok *t = &d->tok[tok];
    if (!(t->flags & FRK_JSON_ESCAPED))
        return pv_delta(s, call, r, d->text + t->start, t->len);
    frk_buf b = {0};
    frk_json_cstr(d, tok, &b);
    fr_status st = b.oom ? pv_nomem(s, call) : pv_delta(s, call, r, b.data, b.len);
    frk_buf_free(&b);
    return st;
}

void pv_set(char *dst, size_t size, const char *src)
{
    if (!src || size == 0)
        return;
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

int64_t pv_tool_call(pv_result *r, const frk_json_doc *d, int id, int name)
{
    if (r->n_tools == r->cap_tools) {
        size_t cap = r->cap_tools ? r->cap_tools * 2 : 4;
        pv_tool *t = realloc(r->tools, cap * sizeof *t);
        if (!t)
            return -1;
        r->tools = t;
        r->cap_tools = cap;
    }
    pv_tool *t = &r->tools[r->n_tools++];
    memset(t, 0, sizeof *t);
    frk_buf_lit(&t->id, "");
    frk_buf_lit(&t->name, "");
    frk_buf_lit(&t->args, "");
    if (frk_json_type_of(d, id) == FRK_JSON_STRING)
        frk_json_cstr(d, id, &t->id);
    if (frk_json_type_of(d, name) == FRK_JSON_STRING)
        frk_json_cstr(d, name, &t->name);
    r->oom |= t->id.oom || t->name.oom || t->args.oom;
    return r->oom ? -1 : (int64_t)(r->n_tools - 1);
}

int pv_tool_args(pv_result *r, int64_t i, const frk_json_doc *d, int tok, int as_text)
{
    frk_buf *a = &r->tools[i].args;
    if (as_text && frk_json_type_of(d, tok) == FRK_JSON_STRING)
        frk_json_cstr(d, tok, a);
    else if (!as_text && tok >= 0)
        frk_json_put_value(a, d, tok);
    r->oom |= a->oom;
    return r->oom ? -1 : 0;
}

/* Serializes the normalized response {text, tool_calls, finish_reason, usage, model}
 * into the call's arena, in json-c's compact form.  Arguments texts become values here
 * ({} when empty; kept as a string when the model produced text that is not JSON). */
static inline fr_status pv_result_json(const pv_state *s, fr_call *call, pv_result *r, char **out,
                                       size_t *out_len)
{
    if (r->text.oom || r->oom)
        return pv_nomem(s, call);
    if (!r->finish[0])
        snprintf(r->finish, sizeof r->finish, "%s", r->n_tools ? "tool_calls" : "stop");
    frk_buf o = {0};
    frk_buf_lit(&o, "{\"text\":");
    frk_json_put_string(&o, r->text.data ? r->text.data : "", r->text.len);
    frk_buf_lit(&o, ",\"tool_calls\":[");
    for (size_t i = 0; i < r->n_tools; i++) {
        const pv_tool *t = &r->tools[i];
        if (i)
            frk_buf_lit(&o, ",");
        frk_buf_lit(&o, "{\"id\":");
        frk_json_put_string(&o, t->id.data, t->id.len);
        frk_buf_lit(&o, ",\"name\":");
        frk_json_put_string(&o, t->name.data, t->name.len);
        frk_buf_lit(&o, ",\"arguments\":");
        frk_json_doc args;
        char err[200];
        if (t->args.len == 0) {
            frk_buf_lit(&o, "{}");
        } else if (frk_json_scan_any(&args, t->args.data, t->args.len, err, sizeof err) != 0) {
            frk_json_put_string(&o, t->args.data, t->args.len); /* not JSON: the text itself */
        } else {
            if (frk_json_type_of(&args, 0) != FRK_JSON_NULL)
                frk_json_put_value(&o, &args, 0);
            else /* json-c read "null" as no document: kept as text, as before */
                frk_json_put_string(&o, t->args.data, t->args.len);
            frk_json_free(&args);
        }
        frk_buf_lit(&o, "}");
    }
    frk_buf_lit(&o, "],\"finish_reason\":");
    frk_json_put_cstr(&o, r->finish);
    if (r->has_usage) {
        frk_buf_lit(&o, ",\"usage\":{\"input_tokens\":");
        frk_json_put_int64(&o, r->in_tokens);
        frk_buf_lit(&o, ",\"output_tokens\":");
        frk_json_put_int64(&o, r->out_tokens);
        frk_buf_lit(&o, "},\"model\":");
    } else { /* the vendor said nothing: unknown, which 0 would hide */
        frk_buf_lit(&o, ",\"usage\":null,\"model\":");
    }
    frk_json_put_cstr(&o, r->model);
    frk_buf_lit(&o, "}");
    fr_status st =
        o.oom ? pv_nomem(s, call) : pu_output_copy(s->host, call, o.data, o.len, out, out_len);
    frk_buf_free(&o);
    return st;
}

/* Checks the parts of a normalized request every vendor relies on: messages is a
 * non-empty array of objects with a known role and a string (or null) content; tool
 * calls have string ids and names; tool messages name their call.  Returns FR_OK or
 * FR_E_BAD_REQUEST with the call's error set. */
/* Checks content parts (ABI 1.2): an array of {"type":"text","text":string} and, in user
 * messages only, {"type":"image_url","image_url":{"url": data: or https URL, "detail"?:
 * "auto"|"low"|"high"}}. */
static inline fr_status pv_check_parts(const pv_state *s, fr_call *call, const frk_json_doc *req,
                                       int content, size_t i, int user)
{
    size_t j = 0;
    for (int p = frk_json_first(req, content); p >= 0; p = frk_json_next(req, content, p), j++) {
        int type = frk_json_get(req, p, "type", FRK_JSON_STRING);
        if (pv_is(req, type, "text")) {
            if (frk_json_get(req, p, "text", FRK_JSON_STRING) < 0)
                return pv_fail(s, call, FR_E_BAD_REQUEST,
                               "messages[%zu].content[%zu].text must be a string", i, j);
            continue;
        }
        if (!pv_is(req, type, "image_url"))
            return pv_fail(s, call, FR_E_BAD_REQUEST,
                           "messages[%zu].content[%zu] must be an object whose type is text or "
                           "image_url",
                           i, j);
        if (!user)
            return pv_fail(s, call, FR_E_BAD_REQUEST,
                           "messages[%zu].content[%zu]: image parts are allowed in user messages "
                           "only",
                           i, j);
        int iu = frk_json_get(req, p, "image_url", FRK_JSON_OBJECT);
        int url = frk_json_get(req, iu, "url", FRK_JSON_STRING);
        frk_buf u = {0};
        frk_json_cstr(req, url, &u);
        int ok = url >= 0 && u.data &&
                 (strncasecmp(u.data, "data:image/", 11) == 0 ||
                  strncasecmp(u.data, "https://", 8) == 0);
        frk_buf_free(&u);
        if (!ok)
            return pv_fail(s, call, FR_E_BAD_REQUEST,
                           "messages[%zu].content[%zu].image_url.url must be an image's data: URL "
                           "(data:image/...) or an https:// URL",
                           i, j);
        int detail = frk_json_member(req, iu, "detail");
        if (detail >= 0 && frk_json_type_of(req, detail) != FRK_JSON_NULL &&
            !pv_is(req, detail, "auto") && !pv_is(req, detail, "low") &&
            !pv_is(req, detail, "high"))
            return pv_fail(s, call, FR_E_BAD_REQUEST,
                           "messages[%zu].content[%zu].image_url.detail must be auto, low or high",
                           i, j);
    }
    return FR_OK;
}

/* A number token's value; 0 with *ok = 0 for anything else. */
static inline double pv_number(const frk_json_doc *d, int tok, int *ok)
{
    frk_json_type t = frk_json_type_of(d, tok);
    *ok = tok >= 0 && (t == FRK_JSON_INT || t == FRK_JSON_DOUBLE);
    if (!*ok)
        return 0;
    char num[64];
    size_t n = d->tok[tok].len < sizeof num - 1 ? d->tok[tok].len : sizeof num - 1;
    memcpy(num, d->text + d->tok[tok].start, n);
    num[n] = '\0';
    return strtod(num, NULL);
}

/* Checks the top-level fields ABI 1.2 added: top_p, seed, user, tool_choice and the
 * json_schema response format. */
static inline fr_status pv_check_fields_1_2(const pv_state *s, fr_call *call,
                                            const frk_json_doc *req)
{
    int v = frk_json_member(req, 0, "top_p"), ok;
    if (v >= 0 && frk_json_type_of(req, v) != FRK_JSON_NULL) {
        double p = pv_number(req, v, &ok);
        if (!ok || !(p >= 0 && p <= 1))
            return pv_fail(s, call, FR_E_BAD_REQUEST, "\"top_p\" must be a number from 0 to 1");
    }
    v = frk_json_member(req, 0, "seed");
    if (v >= 0 && frk_json_type_of(req, v) != FRK_JSON_NULL &&
        frk_json_type_of(req, v) != FRK_JSON_INT)
        return pv_fail(s, call, FR_E_BAD_REQUEST, "\"seed\" must be an integer");
    v = frk_json_member(req, 0, "user");
    if (v >= 0 && frk_json_type_of(req, v) != FRK_JSON_NULL &&
        frk_json_type_of(req, v) != FRK_JSON_STRING)
        return pv_fail(s, call, FR_E_BAD_REQUEST, "\"user\" must be a string");
    v = frk_json_member(req, 0, "tool_choice");
    if (v >= 0 && frk_json_type_of(req, v) != FRK_JSON_NULL) {
        int tools = frk_json_get(req, 0, "tools", FRK_JSON_ARRAY), name = -1;
        if (frk_json_type_of(req, v) == FRK_JSON_OBJECT)
            name = frk_json_get(req, v, "name", FRK_JSON_STRING);
        if (!pv_is(req, v, "auto") && !pv_is(req, v, "none") && !pv_is(req, v, "required") &&
            name < 0)
            return pv_fail(s, call, FR_E_BAD_REQUEST,
                           "\"tool_choice\" must be \"auto\", \"none\", \"required\" or "
                           "{\"name\": \"FUNCTION\"}");
        if ((name >= 0 || pv_is(req, v, "required")) && frk_json_first(req, tools) < 0)
            return pv_fail(s, call, FR_E_BAD_REQUEST,
                           "\"tool_choice\" asks for a tool call but the request has no tools");
        if (name >= 0) {
            frk_buf want = {0};
            frk_json_cstr(req, name, &want);
            int found = 0;
            for (int t = frk_json_first(req, tools); t >= 0 && !found && want.data;
                 t = frk_json_next(req, tools, t))
                found = pv_is(req, frk_json_get(req, t, "name", FRK_JSON_STRING), want.data);
            fr_status st = found ? FR_OK
                                 : pv_fail(s, call, FR_E_BAD_REQUEST,
                                           "\"tool_choice\" names \"%s\", which is not among tools",
                                           want.data ? want.data : "");
            frk_buf_free(&want);
            if (st != FR_OK)
                return st;
        }
    }
    int rf = frk_json_get(req, 0, "response_format", FRK_JSON_OBJECT);
    int type = frk_json_get(req, rf, "type", FRK_JSON_STRING);
    if (pv_is(req, type, "json_schema")) {
        int js = frk_json_get(req, rf, "json_schema", FRK_JSON_OBJECT);
        int schema = frk_json_member(req, js, "schema");
        if (js < 0 || frk_json_get(req, js, "name", FRK_JSON_STRING) < 0)
            return pv_fail(s, call, FR_E_BAD_REQUEST,
                           "response_format json_schema needs a json_schema object with a string "
                           "name");
        if (schema >= 0 && frk_json_type_of(req, schema) != FRK_JSON_OBJECT)
            return pv_fail(s, call, FR_E_BAD_REQUEST,
                           "response_format.json_schema.schema must be an object");
    }
    return FR_OK;
}

static inline fr_status pv_check_request(const pv_state *s, fr_call *call, const frk_json_doc *req)
{
    static const char *const roles[] = {"system", "developer", "user", "assistant", "tool"};
    if (frk_json_type_of(req, 0) != FRK_JSON_OBJECT)
        return pv_fail(s, call, FR_E_BAD_REQUEST, "request is not a JSON object");
    int msgs = frk_json_get(req, 0, "messages", FRK_JSON_ARRAY), v;
    if (frk_json_first(req, msgs) < 0)
        return pv_fail(s, call, FR_E_BAD_REQUEST, "request needs a non-empty \"messages\" array");
    size_t i = 0;
    for (int m = frk_json_first(req, msgs); m >= 0; m = frk_json_next(req, msgs, m), i++) {
        int role = frk_json_get(req, m, "role", FRK_JSON_STRING);
        int known = 0;
        for (size_t r = 0; r < PU_COUNT(roles); r++)
            known |= pv_is(req, role, roles[r]);
        if (!known)
            return pv_fail(s, call, FR_E_BAD_REQUEST,
                           "messages[%zu].role must be system, developer, user, assistant or "
                           "tool",
                           i);
        v = frk_json_member(req, m, "content");
        if (v >= 0 && frk_json_type_of(req, v) != FRK_JSON_NULL &&
            frk_json_type_of(req, v) != FRK_JSON_STRING && !pv_has_parts(req, v))
            return pv_fail(s, call, FR_E_BAD_REQUEST,
                           "messages[%zu].content must be a string, null or an array of content "
                           "parts",
                           i);
        if (pv_has_parts(req, v) && frk_json_first(req, v) < 0)
            return pv_fail(s, call, FR_E_BAD_REQUEST,
                           "messages[%zu].content must not be an empty array", i);
        if (pv_has_parts(req, v)) {
            fr_status st = pv_check_parts(s, call, req, v, i, pv_is(req, role, "user"));
            if (st != FR_OK)
                return st;
        }
        if (pv_is(req, role, "tool") && frk_json_get(req, m, "tool_call_id", FRK_JSON_STRING) < 0)
            return pv_fail(s, call, FR_E_BAD_REQUEST, "messages[%zu] (tool) needs a tool_call_id",
                           i);
        int tcs = frk_json_get(req, m, "tool_calls", FRK_JSON_ARRAY);
        size_t j = 0;
        for (int tc = frk_json_first(req, tcs); tc >= 0; tc = frk_json_next(req, tcs, tc), j++) {
            if (frk_json_get(req, tc, "id", FRK_JSON_STRING) < 0 ||
                frk_json_get(req, tc, "name", FRK_JSON_STRING) < 0)
                return pv_fail(s, call, FR_E_BAD_REQUEST,
                               "messages[%zu].tool_calls[%zu] needs string id and name", i, j);
        }
    }
    int tools = frk_json_member(req, 0, "tools");
    if (tools >= 0 && frk_json_type_of(req, tools) != FRK_JSON_NULL) {
        if (frk_json_type_of(req, tools) != FRK_JSON_ARRAY)
            return pv_fail(s, call, FR_E_BAD_REQUEST, "\"tools\" must be an array");
        size_t j = 0;
        for (int t = frk_json_first(req, tools); t >= 0; t = frk_json_next(req, tools, t), j++)
            if (frk_json_get(req, t, "name", FRK_JSON_STRING) < 0)
                return pv_fail(s, call, FR_E_BAD_REQUEST, "tools[%zu] needs a string name", j);
    }
    v = frk_json_member(req, 0, "max_tokens");
    if (v >= 0 && frk_json_type_of(req, v) != FRK_JSON_NULL &&
        (frk_json_type_of(req, v) != FRK_JSON_INT || frk_json_int64(req, v) <= 0))
        return pv_fail(s, call, FR_E_BAD_REQUEST, "\"max_tokens\" must be a positive integer");
    v = frk_json_member(req, 0, "stop");
    if (v >= 0 && frk_json_type_of(req, v) != FRK_JSON_NULL) {
        int ok = frk_json_type_of(req, v) == FRK_JSON_STRING ||
                 frk_json_type_of(req, v) == FRK_JSON_ARRAY;
        for (int e = frk_json_first(req, v); ok && e >= 0; e = frk_json_next(req, v, e))
            ok = frk_json_type_of(req, e) == FRK_JSON_STRING;
        if (!ok)
            return pv_fail(s, call, FR_E_BAD_REQUEST,
                           "\"stop\" must be a string or an array of strings");
    }
    return pv_check_fields_1_2(s, call, req);
}

fr_status pv_init(const fr_host_api *host, const pv_vendor *vendor, const pv_config *cfg,
                  const char *key_fmt, const char *const *extra, void **state)
{
    if (!cfg->model || !*cfg->model) {
        host->set_error(NULL, "%s: option model is required", vendor->name);
        return FR_E_CONFIG;
    }
    const char *base = cfg->base_url ? cfg->base_url : "";
    if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0) {
        host->set_error(NULL,
                        "%s: option base_url must start with http:// or https:// (got \"%s\")",
                        vendor->name, base);
        return FR_E_CONFIG;
    }
    if (cfg->timeout < 0) {
        host->set_error(NULL, "%s: option timeout must not be negative", vendor->name);
        return FR_E_CONFIG;
    }
    const char *env = cfg->api_key_env ? cfg->api_key_env : "";
    const char *key = NULL;
    if (*env) {
        key = host->secret_env(NULL, env);
        if (!key || !*key) {
            host->set_error(NULL, "%s: environment variable %s is not set (api_key_env)",
                            vendor->name, env);
            return FR_E_CONFIG;
        }
        for (const char *k = key; *k; k++) {
            if ((unsigned char)*k < 0x21 || *k == 0x7f) {
                /* A header cannot carry it; do not show the value. */
                host->set_error(NULL, "%s: the key in %s contains whitespace or control characters",
                                vendor->name, env);
                return FR_E_CONFIG;
            }
        }
    }
    pv_state *s = host->alloc(NULL, sizeof *s);
    if (!s)
        return FR_E_NOMEM;
    memset(s, 0, sizeof *s);
    s->host = host;
    s->vendor = vendor;
    s->cfg = cfg;
    s->key = key;
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    int bad = !(s->base = host->alloc(NULL, blen + 1));
    if (!bad) {
        memcpy(s->base, base, blen);
        s->base[blen] = '\0';
    }
    if (!bad && key) {
        size_t n = strlen(key_fmt) + strlen(key) + 1;
        bad = !(s->key_header = host->alloc(NULL, n));
        if (!bad)
            snprintf(s->key_header, n, key_fmt, key);
    }
    for (size_t i = 0; !bad && extra && extra[i] && i < PV_MAX_EXTRA_HEADERS; i++) {
        size_t n = strlen(extra[i]) + 1;
        bad = !(s->extra_owned[i] = host->alloc(NULL, n));
        if (!bad) {
            memcpy(s->extra_owned[i], extra[i], n);
            s->extra_headers[s->n_extra++] = s->extra_owned[i];
        }
    }
    if (bad) {
        host->free_mem(s->base);
        host->free_mem(s->key_header);
        for (size_t i = 0; i < PV_MAX_EXTRA_HEADERS; i++)
            host->free_mem(s->extra_owned[i]);
        host->free_mem(s);
        return FR_E_NOMEM;
    }
    *state = s;
    return FR_OK;
}

void pv_fini(void *state)
{
    pv_state *s = state;
    if (!s)
        return;
    const fr_host_api *host = s->host;
    if (s->key_header) {
        volatile char *p = s->key_header; /* not optimized away */
        while (*p)
            *p++ = '\0';
    }
    host->free_mem(s->key_header);
    host->free_mem(s->base);
    for (size_t i = 0; i < PV_MAX_EXTRA_HEADERS; i++)
        host->free_mem(s->extra_owned[i]);
    host->free_mem(s);
}

/* Handles one SSE event: its data, when it looks like JSON, is scanned, and the vendor's
 * handler gets it.  FR_OK or an error with the call's error set. */
static inline fr_status pv_sse_event(const pv_state *s, fr_call *call, pv_result *res,
                                     const char *event, const frk_buf *data)
{
    char err[200];
    res->chunks++;
    const char *raw = data->data ? data->data : "";
    if (raw[0] != '{')
        return s->vendor->event(s, call, res, event, raw, NULL);
    frk_json_doc doc;
    fr_status st;
    if (frk_json_scan_any(&doc, raw, data->len, err, sizeof err) != 0)
        st = pv_fail(s, call, FR_E_BAD_RESPONSE, "stream chunk %zu is not valid JSON: %s",
                     res->chunks, err);
    else
        st = s->vendor->event(s, call, res, event, raw, &doc);
    frk_json_free(&doc);
    return st;
}

static inline void pv_feed_free(pv_feed *f)
{
    frk_buf_free(&f->pending);
    frk_buf_free(&f->data);
}

/* Takes the next piece of the body: every event it completes goes to the vendor's
 * handler, in order, until the terminator; the rest waits for the next piece.  Returns
 * FR_OK, or the failure that must stop the stream (the call's error set). */
static inline fr_status pv_feed_body(void *ud, const char *bytes, size_t len)
{
    pv_feed *f = ud;
    f->fed += len;
    if (f->st != FR_OK || f->res->done)
        return f->st; /* what follows the terminator is ignored */
    frk_buf_append(&f->pending, bytes, len);
    if (f->pending.oom)
        return f->st = pv_nomem(f->s, f->call);
    const char *pos = f->pending.data, *end = pos + f->pending.len;
    char event[64];
    int rc;
    while (f->st == FR_OK && !f->res->done &&
           (rc = frk_sse_next(&pos, end, event, sizeof event, &f->data)) != 0)
        f->st =
            rc < 0 ? pv_nomem(f->s, f->call) : pv_sse_event(f->s, f->call, f->res, event, &f->data);
    size_t used = (size_t)(pos - f->pending.data);
    memmove(f->pending.data, pos, f->pending.len - used);
    f->pending.len -= used;
    f->pending.data[f->pending.len] = '\0';
    return f->st;
}

/* Ends a stream after host->http returned `st` with `resp`.  A stream cut by the network
 * (or a timeout) after events arrived is FR_E_STREAM_TRUNCATED, as is one that ended
 * without its terminator; a non-2xx answer is classified as an error document. */
static inline fr_status pv_feed_end(pv_feed *f, fr_status st, const fr_http_response *resp)
{
    const pv_state *s = f->s;
    pv_result *res = f->res;
    if (st != FR_OK) {
        if ((st == FR_E_NETWORK || st == FR_E_TIMEOUT) && f->st == FR_OK && res->chunks)
            return pv_fail(s, f->call, FR_E_STREAM_TRUNCATED,
                           "stream cut after %zu chunks: %s mid-stream", res->chunks,
                           st == FR_E_NETWORK ? "the connection failed (network error)"
                                              : "the request timed out");
        return st; /* network, timeout, cancellation, on_body's status: message set */
    }
    if (resp->status < 200 || resp->status > 299)
        return pv_http_error(s, f->call, resp);
    /* A host that did not stream the body (or not all of it): parse the rest now. */
    if (f->fed < resp->body_len && f->st == FR_OK)
        pv_feed_body(f, resp->body + f->fed, resp->body_len - f->fed);
    if (f->st != FR_OK)
        return f->st;
    if (!res->done)
        return pv_fail(s, f->call, FR_E_STREAM_TRUNCATED, "stream cut after %zu chunks",
                       res->chunks);
    return FR_OK;
}

/* Parses a whole SSE body event by event through the vendor's handler. */
static inline fr_status pv_stream(const pv_state *s, fr_call *call, const fr_http_response *resp,
                                  pv_result *res)
{
    pv_feed f = {.s = s, .call = call, .res = res};
    fr_status st = pv_feed_end(&f, FR_OK, resp);
    pv_feed_free(&f);
    return st;
}

/* Completes one normalized request: builds the vendor's request, sends it through
 * host->http, classifies failures and returns the normalized response in the arena. */
static inline fr_status pv_complete(void *state, fr_call *call, const char *request,
                                    size_t request_len, int stream, char **response,
                                    size_t *response_len)
{
    const pv_state *s = state;
    const fr_host_api *host = s->host;
    char err[200], path[512];
    frk_json_doc req;
    if (frk_json_scan_any(&req, request, request_len, err, sizeof err) != 0)
        return pv_fail(s, call, FR_E_BAD_REQUEST, "request is not valid JSON: %s", err);
    fr_status st = pv_check_request(s, call, &req);
    frk_buf model = {0}, body = {0};
    int mt = st == FR_OK ? frk_json_get(&req, 0, "model", FRK_JSON_STRING) : -1;
    if (mt >= 0)
        frk_json_cstr(&req, mt, &model);
    else
        frk_buf_append(&model, s->cfg->model, strlen(s->cfg->model));
    if (st == FR_OK && model.oom)
        st = pv_nomem(s, call);
    if (st == FR_OK)
        st = s->vendor->build(s, call, &req, model.data, stream, &body, path, sizeof path);
    if (st == FR_OK && body.oom)
        st = pv_nomem(s, call);
    pv_result res = {.cur = -1};
    pv_set(res.model, sizeof res.model, model.data);
    frk_buf_free(&model);
    frk_json_free(&req);
    if (st != FR_OK) {
        frk_buf_free(&body);
        return st;
    }

    size_t url_len = strlen(s->base) + strlen(path) + 1;
    char *url = host->alloc(call, url_len);
    if (!url) {
        frk_buf_free(&body);
        return pv_nomem(s, call);
    }
    size_t base_len = strlen(s->base);
    memcpy(url, s->base, base_len);
    memcpy(url + base_len, path, url_len - base_len); /* with its NUL */
    const char *headers[4 + PV_MAX_EXTRA_HEADERS];
    size_t nh = 0, nsecret = 0;
    if (s->key_header) {
        headers[nh++] = s->key_header; /* first: the host never records secret headers */
        nsecret = 1;
    }
    headers[nh++] = "Content-Type: application/json";
    headers[nh++] = stream ? "Accept: text/event-stream" : "Accept: application/json";
    headers[nh++] = "Expect:"; /* no 100-continue round trip for larger bodies */
    for (size_t i = 0; i < s->n_extra; i++)
        headers[nh++] = s->extra_headers[i];
    fr_http_request hr = {
        .struct_size = sizeof hr,
        .method = "POST",
        .url = url,
        .headers = headers,
        .n_headers = nh,
        .body = body.data,
        .body_len = body.len,
        .timeout_us = s->cfg->timeout,
        .n_secret_headers = nsecret,
        .ca_file = s->cfg->ca_file,
    };
    /* Streams are parsed while they arrive: each delta reaches host->stream_chunk then. */
    pv_feed feed = {.s = s, .call = call, .res = &res};
    if (stream) {
        hr.on_body = pv_feed_body;
        hr.on_body_ud = &feed;
    }
    fr_http_response resp = {0};
    st = host->http(call, &hr, &resp);
    frk_buf_free(&body);
    if (stream) {
        st = pv_feed_end(&feed, st, &resp);
        pv_feed_free(&feed);
    } else if (st != FR_OK) {
        pv_result_free(&res);
        return st; /* network, timeout, cancellation: the host set the message */
    } else if (resp.status < 200 || resp.status > 299) {
        pv_result_free(&res);
        return pv_http_error(s, call, &resp);
    } else {
        /* Scanned, not parsed into a tree: the answer is read once, in place. */
        frk_json_doc wire;
        if (frk_json_scan_any(&wire, resp.body, resp.body_len, err, sizeof err) != 0) {
            st = pv_fail(s, call, FR_E_BAD_RESPONSE,
                         "HTTP %d with a body that is not valid JSON: %s", resp.status, err);
        } else if (frk_json_type_of(&wire, 0) != FRK_JSON_OBJECT) {
            st = pv_fail(s, call, FR_E_BAD_RESPONSE, "HTTP %d: the answer is not a JSON object",
                         resp.status);
        } else if (frk_json_get(&wire, 0, "error", FRK_JSON_OBJECT) >= 0) {
            st = pv_error_object(s, call, &wire, 0);
        } else {
            st = s->vendor->parse(s, call, &wire, &res);
        }
        frk_json_free(&wire);
    }
    if (st == FR_OK)
        st = pv_result_json(s, call, &res, response, response_len);
    pv_result_free(&res);
    return st;
}

fr_status pv_complete_whole(void *state, fr_call *call, const char *request, size_t request_len,
                            char **response, size_t *response_len)
{
    return pv_complete(state, call, request, request_len, 0, response, response_len);
}

fr_status pv_complete_stream(void *state, fr_call *call, const char *request, size_t request_len,
                             char **response, size_t *response_len)
{
    return pv_complete(state, call, request, request_len, 1, response, response_len);
}

int64_t pv_int(const frk_json_doc *d, int obj, const char *key)
{
    return frk_json_int64(d, frk_json_get(d, obj, key, FRK_JSON_INT));
}

void pv_usage(pv_result *res, const frk_json_doc *d, int u, const char *in, const char *out)
{
    if (u < 0)
        return;
    res->has_usage = 1;
    res->in_tokens = pv_int(d, u, in);
    res->out_tokens = pv_int(d, u, out);
}
