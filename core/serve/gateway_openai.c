/* The gateway's OpenAI shapes (gateway.h): chat completion requests into the normalized
 * provider request (include/fluxroute/plugin.h), run outputs into chat.completion and
 * chat.completion.chunk objects, and OpenAI's error body.
 *
 * Nothing is dropped silently: a field the gateway does not carry is a 400 naming it
 * (`param`), except those SDKs send with their default values (n: 1, presence_penalty: 0,
 * frequency_penalty: 0, logprobs: false), which change nothing. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/gateway.h"

/* ---- errors ------------------------------------------------------------------------------ */

static const char *error_type(int status)
{
    switch (status) {
    case 400:
    case 404:
    case 405:
    case 413: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

static void error_body(fr_reply *out, int status, const char *param, const char *code,
                       const char *message)
{
    json_object *o = json_object_new_object(), *e = json_object_new_object();
    json_object_object_add(e, "message", json_object_new_string(message));
    json_object_object_add(e, "type", json_object_new_string(error_type(status)));
    json_object_object_add(e, "param", param ? json_object_new_string(param) : NULL);
    json_object_object_add(e, "code", code ? json_object_new_string(code) : NULL);
    json_object_object_add(o, "error", e);
    free(out->body);
    out->body = NULL;
    fr__reply_json(out, status, o);
}

void fr__gw_error(fr_reply *out, int status, const char *param, const char *code, const char *fmt,
                  ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    error_body(out, status, param, code, msg);
}

void fr__gw_error_from_serve(fr_reply *out)
{
    if (out->status < 400 || !out->body)
        return;
    json_object *o = json_tokener_parse(out->body), *e, *code, *msg;
    if (o && json_object_object_get_ex(o, "error", &e) &&
        json_object_object_get_ex(e, "code", &code) &&
        json_object_object_get_ex(e, "message", &msg) &&
        !json_object_object_get_ex(e, "type", NULL))
        error_body(out, out->status, NULL, json_object_get_string(code),
                   json_object_get_string(msg));
    json_object_put(o);
}

/* ---- requests ---------------------------------------------------------------------------- */

typedef struct tctx {
    fr_reply *out;
    int failed;
} tctx;

static void bad(tctx *t, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void bad(tctx *t, const char *param, const char *fmt, ...)
{
    if (t->failed)
        return;
    t->failed = 1;
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    error_body(t->out, 400, param, "invalid_request_error", msg);
}

static void unsupported(tctx *t, const char *param, const char *why)
{
    char msg[400];
    snprintf(msg, sizeof msg, "unsupported field '%s': %s", param, why);
    if (!t->failed) {
        t->failed = 1;
        error_body(t->out, 400, param, "unsupported_parameter", msg);
    }
}

static int is_type(json_object *v, json_type ty)
{
    return v && json_object_is_type(v, ty);
}

static int is_number(json_object *v)
{
    return is_type(v, json_type_int) || is_type(v, json_type_double);
}

/* Member k of o that is not null, or NULL. */
static json_object *get(json_object *o, const char *k)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, k, &v) ? v : NULL;
}

static void add(json_object *o, const char *k, json_object *v)
{
    json_object_object_add(o, k, json_object_get(v));
}

/* Checks that every member of o is in `known`; the first other one is unsupported. */
static int only(tctx *t, json_object *o, const char *const *known, const char *prefix)
{
    json_object_object_foreach(o, k, v)
    {
        (void)v;
        size_t i = 0;
        while (known[i] && strcmp(known[i], k) != 0)
            i++;
        if (!known[i]) {
            char param[200];
            snprintf(param, sizeof param, "%s%s", prefix, k);
            unsupported(t, param, "the gateway does not carry it");
            return -1;
        }
    }
    return 0;
}

/* Content: a string, or an array of text and image_url parts (passed on as they are;
 * the provider plugin refuses what its vendor cannot take, naming it). */
static json_object *content_of(tctx *t, json_object *c, const char *param, int null_ok)
{
    if (!c && null_ok)
        return NULL;
    if (is_type(c, json_type_string))
        return json_object_get(c);
    if (!is_type(c, json_type_array)) {
        bad(t, param, "%s must be a string or an array of content parts", param);
        return NULL;
    }
    for (size_t i = 0; i < json_object_array_length(c); i++) {
        json_object *part = json_object_array_get_idx(c, i), *type = get(part, "type");
        const char *ty = is_type(type, json_type_string) ? json_object_get_string(type) : "";
        char p[160];
        snprintf(p, sizeof p, "%s[%zu]", param, i);
        if (!is_type(part, json_type_object) ||
            (strcmp(ty, "text") != 0 && strcmp(ty, "image_url") != 0)) {
            bad(t, p, "%s must be a content part of type \"text\" or \"image_url\"", p);
            return NULL;
        }
        if (strcmp(ty, "text") == 0 && !is_type(get(part, "text"), json_type_string)) {
            bad(t, p, "%s.text must be a string", p);
            return NULL;
        }
        json_object *img = get(part, "image_url");
        if (strcmp(ty, "image_url") == 0 &&
            !(is_type(img, json_type_object) && is_type(get(img, "url"), json_type_string))) {
            bad(t, p, "%s.image_url must be {\"url\": ..., \"detail\"?}", p);
            return NULL;
        }
    }
    return json_object_get(c);
}

/* An assistant message's tool_calls into the normalized [{id, name, arguments}]; the
 * arguments text becomes its JSON value when it is JSON (kept as text otherwise). */
static json_object *tool_calls_in(tctx *t, json_object *tcs, size_t mi)
{
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(tcs); i++) {
        json_object *tc = json_object_array_get_idx(tcs, i), *fn = get(tc, "function");
        char p[120];
        snprintf(p, sizeof p, "messages[%zu].tool_calls[%zu]", mi, i);
        json_object *args = fn ? get(fn, "arguments") : NULL;
        if (!is_type(tc, json_type_object) || !is_type(get(tc, "id"), json_type_string) ||
            !is_type(fn, json_type_object) || !is_type(get(fn, "name"), json_type_string) ||
            (args && !is_type(args, json_type_string))) {
            bad(t, p, "%s must be {id, type: \"function\", function: {name, arguments}}", p);
            break;
        }
        json_object *n = json_object_new_object();
        add(n, "id", get(tc, "id"));
        add(n, "name", get(fn, "name"));
        const char *text = args ? json_object_get_string(args) : "{}";
        json_object *v = json_tokener_parse(text);
        json_object_object_add(n, "arguments", v ? v : json_object_new_string(text));
        json_object_array_add(arr, n);
    }
    return arr;
}

static json_object *messages_in(tctx *t, json_object *msgs, json_object *req)
{
    static const char *const fields[] = {"role",         "content", "tool_calls",
                                         "tool_call_id", "refusal", NULL};
    if (!is_type(msgs, json_type_array) || json_object_array_length(msgs) == 0) {
        bad(t, "messages", "messages must be a non-empty array");
        return NULL;
    }
    json_object *out = json_object_new_array();
    char *system = NULL;
    int leading = 1;
    for (size_t i = 0; !t->failed && i < json_object_array_length(msgs); i++) {
        json_object *m = json_object_array_get_idx(msgs, i), *role = get(m, "role");
        char p[80];
        snprintf(p, sizeof p, "messages[%zu].", i);
        if (!is_type(m, json_type_object) || !is_type(role, json_type_string)) {
            bad(t, "messages", "messages[%zu] must be an object with a role", i);
            break;
        }
        if (only(t, m, fields, p) != 0)
            break;
        const char *r = json_object_get_string(role);
        snprintf(p, sizeof p, "messages[%zu].content", i);
        json_object *c = get(m, "content");
        int sys = strcmp(r, "system") == 0 || strcmp(r, "developer") == 0;
        if (!sys && strcmp(r, "user") && strcmp(r, "assistant") && strcmp(r, "tool")) {
            snprintf(p, sizeof p, "messages[%zu].role", i);
            bad(t, p, "%s must be system, developer, user, assistant or tool, not \"%.40s\"", p, r);
            break;
        }
        if (get(m, "refusal") && !json_object_is_type(get(m, "refusal"), json_type_null) &&
            strcmp(r, "assistant") == 0) {
            snprintf(p, sizeof p, "messages[%zu].refusal", i);
            unsupported(t, p, "the gateway does not carry refusals back to a vendor");
            break;
        }
        /* Leading system (and developer) text becomes the request's system prompt, which
         * every vendor has; later ones stay messages of their role. */
        if (sys && leading && is_type(c, json_type_string)) {
            const char *s = json_object_get_string(c);
            char *joined = NULL;
            if (asprintf(&joined, "%s%s%s", system ? system : "", system ? "\n\n" : "", s) < 0)
                joined = NULL;
            free(system);
            system = joined;
            continue;
        }
        leading = 0;
        json_object *n = json_object_new_object();
        json_object_object_add(n, "role", json_object_new_string(r));
        json_object *tcs = get(m, "tool_calls");
        int assistant = strcmp(r, "assistant") == 0;
        if (tcs && !assistant) {
            snprintf(p, sizeof p, "messages[%zu].tool_calls", i);
            bad(t, p, "%s is for assistant messages", p);
        }
        json_object *cv = content_of(t, c, p, assistant);
        json_object_object_add(n, "content", cv);
        if (assistant && is_type(tcs, json_type_array) && json_object_array_length(tcs))
            json_object_object_add(n, "tool_calls", tool_calls_in(t, tcs, i));
        if (strcmp(r, "tool") == 0) {
            json_object *id = get(m, "tool_call_id");
            if (!is_type(id, json_type_string)) {
                snprintf(p, sizeof p, "messages[%zu].tool_call_id", i);
                bad(t, p, "%s: a tool message names the call it answers", p);
            }
            add(n, "tool_call_id", id);
        }
        json_object_array_add(out, n);
    }
    if (system)
        json_object_object_add(req, "system", json_object_new_string(system));
    free(system);
    if (!t->failed && json_object_array_length(out) == 0)
        bad(t, "messages", "messages holds only system messages: add a user message");
    return out;
}

static json_object *tools_in(tctx *t, json_object *tools)
{
    static const char *const fn_fields[] = {"name", "description", "parameters", "strict", NULL};
    if (!is_type(tools, json_type_array)) {
        bad(t, "tools", "tools must be an array");
        return NULL;
    }
    json_object *out = json_object_new_array();
    for (size_t i = 0; !t->failed && i < json_object_array_length(tools); i++) {
        json_object *tl = json_object_array_get_idx(tools, i), *fn = get(tl, "function");
        char p[80];
        snprintf(p, sizeof p, "tools[%zu]", i);
        json_object *type = get(tl, "type");
        if (!is_type(tl, json_type_object) || !is_type(type, json_type_string) ||
            strcmp(json_object_get_string(type), "function") != 0 ||
            !is_type(fn, json_type_object) || !is_type(get(fn, "name"), json_type_string)) {
            bad(t, p,
                "%s must be {type: \"function\", function: {name, description, "
                "parameters}}",
                p);
            break;
        }
        snprintf(p, sizeof p, "tools[%zu].function.", i);
        if (only(t, fn, fn_fields, p) != 0)
            break;
        json_object *strict = get(fn, "strict");
        if (strict && json_object_get_boolean(strict)) {
            snprintf(p, sizeof p, "tools[%zu].function.strict", i);
            unsupported(t, p, "strict schemas are not carried to every vendor");
            break;
        }
        json_object *n = json_object_new_object();
        add(n, "name", get(fn, "name"));
        if (get(fn, "description"))
            add(n, "description", get(fn, "description"));
        if (get(fn, "parameters"))
            add(n, "parameters", get(fn, "parameters"));
        json_object_array_add(out, n);
    }
    return out;
}

/* tool_choice: "auto" | "none" | "required" | {"type": "function", "function": {"name"}}
 * into the normalized "auto" | "none" | "required" | {"name"}. */
static json_object *tool_choice_in(tctx *t, json_object *tc)
{
    if (is_type(tc, json_type_string)) {
        const char *s = json_object_get_string(tc);
        if (!strcmp(s, "auto") || !strcmp(s, "none") || !strcmp(s, "required"))
            return json_object_get(tc);
    } else if (is_type(tc, json_type_object)) {
        json_object *fn = get(tc, "function"), *name = fn ? get(fn, "name") : NULL;
        if (is_type(name, json_type_string)) {
            json_object *o = json_object_new_object();
            add(o, "name", name);
            return o;
        }
    }
    bad(t, "tool_choice",
        "tool_choice must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", "
        "\"function\": {\"name\": ...}}");
    return NULL;
}

/* A field SDKs send with its default value: accepted at that value only. */
static void default_only(tctx *t, json_object *body, const char *k, json_object *want)
{
    json_object *v = get(body, k);
    int same = !v || json_object_is_type(v, json_type_null) ||
               (is_type(want, json_type_boolean) && is_type(v, json_type_boolean) &&
                json_object_get_boolean(v) == json_object_get_boolean(want)) ||
               (is_number(want) && is_number(v) &&
                json_object_get_double(v) == json_object_get_double(want));
    if (!same) {
        char why[160];
        snprintf(why, sizeof why, "only %s is supported",
                 json_object_to_json_string_ext(want, JSON_C_TO_STRING_PLAIN));
        if (!strcmp(k, "n"))
            bad(t, "n", "n must be 1: the gateway returns one choice per request");
        else
            unsupported(t, k, why);
    }
    json_object_put(want);
}

json_object *fr__gw_translate_request(json_object *body, fr_gw_request *rq, fr_reply *out)
{
    static const char *const fields[] = {"model",
                                         "messages",
                                         "tools",
                                         "tool_choice",
                                         "stream",
                                         "stream_options",
                                         "max_tokens",
                                         "max_completion_tokens",
                                         "temperature",
                                         "top_p",
                                         "stop",
                                         "response_format",
                                         "seed",
                                         "user",
                                         "n",
                                         "presence_penalty",
                                         "frequency_penalty",
                                         "logprobs",
                                         NULL};
    tctx t = {.out = out};
    memset(rq, 0, sizeof *rq);
    if (only(&t, body, fields, "") != 0)
        return NULL;
    json_object *model = get(body, "model");
    if (!is_type(model, json_type_string) || json_object_get_string_len(model) == 0 ||
        (size_t)json_object_get_string_len(model) >= sizeof rq->model) {
        bad(&t, "model", "model must name one of the server's routes (GET /v1/models)");
        return NULL;
    }
    snprintf(rq->model, sizeof rq->model, "%s", json_object_get_string(model));
    default_only(&t, body, "n", json_object_new_int(1));
    default_only(&t, body, "presence_penalty", json_object_new_int(0));
    default_only(&t, body, "frequency_penalty", json_object_new_int(0));
    default_only(&t, body, "logprobs", json_object_new_boolean(0));
    json_object *v = get(body, "stream");
    if (v && !is_type(v, json_type_boolean) && !json_object_is_type(v, json_type_null))
        bad(&t, "stream", "stream must be true or false");
    rq->stream = v && json_object_get_boolean(v);
    if ((v = get(body, "stream_options")) && !json_object_is_type(v, json_type_null)) {
        static const char *const so[] = {"include_usage", NULL};
        if (!is_type(v, json_type_object))
            bad(&t, "stream_options", "stream_options must be an object");
        else if (only(&t, v, so, "stream_options.") == 0)
            rq->include_usage = json_object_get_boolean(get(v, "include_usage"));
        if (!rq->stream)
            bad(&t, "stream_options", "stream_options is only allowed with stream: true");
    }
    if (t.failed)
        return NULL;

    json_object *req = json_object_new_object();
    json_object_object_add(req, "messages", messages_in(&t, get(body, "messages"), req));
    if ((v = get(body, "tools")) && !json_object_is_type(v, json_type_null))
        json_object_object_add(req, "tools", tools_in(&t, v));
    if ((v = get(body, "tool_choice")) && !json_object_is_type(v, json_type_null))
        json_object_object_add(req, "tool_choice", tool_choice_in(&t, v));
    json_object *mt = get(body, "max_completion_tokens"), *mt2 = get(body, "max_tokens");
    if (mt && mt2 && json_object_get_int64(mt) != json_object_get_int64(mt2))
        bad(&t, "max_tokens", "max_tokens and max_completion_tokens differ: give one");
    mt = mt ? mt : mt2;
    if (mt && !json_object_is_type(mt, json_type_null)) {
        if (!is_type(mt, json_type_int) || json_object_get_int64(mt) <= 0)
            bad(&t, get(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens",
                "max_tokens must be a positive integer");
        add(req, "max_tokens", mt);
    }
    static const struct {
        const char *k;
        double lo, hi;
    } nums[] = {{"temperature", 0, 2}, {"top_p", 0, 1}};
    for (size_t i = 0; i < 2; i++) {
        if (!(v = get(body, nums[i].k)) || json_object_is_type(v, json_type_null))
            continue;
        double d = json_object_get_double(v);
        if (!is_number(v) || !(d >= nums[i].lo && d <= nums[i].hi))
            bad(&t, nums[i].k, "%s must be a number from %g to %g", nums[i].k, nums[i].lo,
                nums[i].hi);
        add(req, nums[i].k, v);
    }
    if ((v = get(body, "seed")) && !json_object_is_type(v, json_type_null)) {
        if (!is_type(v, json_type_int))
            bad(&t, "seed", "seed must be an integer");
        add(req, "seed", v);
    }
    if ((v = get(body, "user")) && !json_object_is_type(v, json_type_null)) {
        if (!is_type(v, json_type_string))
            bad(&t, "user", "user must be a string");
        add(req, "user", v);
    }
    if ((v = get(body, "stop")) && !json_object_is_type(v, json_type_null)) {
        int ok = is_type(v, json_type_string) || is_type(v, json_type_array);
        for (size_t i = 0; ok && is_type(v, json_type_array) && i < json_object_array_length(v);
             i++)
            ok = is_type(json_object_array_get_idx(v, i), json_type_string);
        if (!ok)
            bad(&t, "stop", "stop must be a string or an array of strings");
        add(req, "stop", v);
    }
    if ((v = get(body, "response_format")) && !json_object_is_type(v, json_type_null)) {
        json_object *ty = get(v, "type");
        const char *s = is_type(ty, json_type_string) ? json_object_get_string(ty) : "";
        if (!strcmp(s, "json_schema") && !is_type(get(v, "json_schema"), json_type_object))
            bad(&t, "response_format.json_schema",
                "response_format json_schema needs a json_schema object");
        else if (strcmp(s, "text") && strcmp(s, "json_object") && strcmp(s, "json_schema"))
            bad(&t, "response_format.type",
                "response_format.type must be text, json_object or json_schema");
        else if (strcmp(s, "text") != 0) /* text is every vendor's default */
            add(req, "response_format", v);
    }
    json_object_object_add(req, "stream", json_object_new_boolean(rq->stream));
    if (t.failed) {
        json_object_put(req);
        return NULL;
    }
    return req;
}

/* ---- responses --------------------------------------------------------------------------- */

const char *fr__gw_finish_reason(const char *n)
{
    static const char *const known[] = {"stop", "length", "tool_calls", "content_filter"};
    for (size_t i = 0; n && i < sizeof known / sizeof known[0]; i++)
        if (strcmp(n, known[i]) == 0)
            return known[i];
    if (n && (!strcmp(n, "max_tokens") || !strcmp(n, "MAX_TOKENS")))
        return "length";
    if (n && (!strcmp(n, "tool_use") || !strcmp(n, "function_call")))
        return "tool_calls";
    return "stop";
}

json_object *fr__gw_tool_calls(json_object *resp, int indexed)
{
    json_object *tcs = get(resp, "tool_calls");
    size_t n = is_type(tcs, json_type_array) ? json_object_array_length(tcs) : 0;
    if (!n)
        return NULL;
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        json_object *tc = json_object_array_get_idx(tcs, i), *o = json_object_new_object(),
                    *fn = json_object_new_object(), *args = get(tc, "arguments");
        if (indexed)
            json_object_object_add(o, "index", json_object_new_int((int)i));
        add(o, "id", get(tc, "id"));
        json_object_object_add(o, "type", json_object_new_string("function"));
        add(fn, "name", get(tc, "name"));
        /* OpenAI's arguments are JSON text. */
        json_object_object_add(
            fn, "arguments",
            json_object_new_string(
                is_type(args, json_type_string) ? json_object_get_string(args)
                : args ? json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE)
                       : "{}"));
        json_object_object_add(o, "function", fn);
        json_object_array_add(arr, o);
    }
    return arr;
}

json_object *fr__gw_usage(json_object *usage)
{
    json_object *in = get(usage, "input_tokens"), *outt = get(usage, "output_tokens");
    if (!is_type(in, json_type_int) || !is_type(outt, json_type_int))
        return NULL;
    int64_t a = json_object_get_int64(in), b = json_object_get_int64(outt);
    json_object *u = json_object_new_object();
    json_object_object_add(u, "prompt_tokens", json_object_new_int64(a));
    json_object_object_add(u, "completion_tokens", json_object_new_int64(b));
    json_object_object_add(u, "total_tokens", json_object_new_int64(a + b));
    return u;
}

static json_object *envelope(const char *run_id, const char *object, long long created,
                             const char *model, json_object *resp)
{
    char id[80];
    snprintf(id, sizeof id, "chatcmpl-%s", run_id);
    (void)resp;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(id));
    json_object_object_add(o, "object", json_object_new_string(object));
    json_object_object_add(o, "created", json_object_new_int64(created));
    /* The name the client asked for, in completions and chunks alike (the vendor's model
     * is in the run's report). */
    json_object_object_add(o, "model", json_object_new_string(model));
    json_object_object_add(o, "system_fingerprint", NULL);
    return o;
}

json_object *fr__gw_completion(const char *run_id, long long created, const char *model,
                               json_object *resp)
{
    json_object *o = envelope(run_id, "chat.completion", created, model, resp);
    json_object *choice = json_object_new_object(), *msg = json_object_new_object();
    json_object *text = get(resp, "text"), *tcs = fr__gw_tool_calls(resp, 0);
    json_object_object_add(choice, "index", json_object_new_int(0));
    json_object_object_add(msg, "role", json_object_new_string("assistant"));
    json_object_object_add(msg, "content",
                           is_type(text, json_type_string) &&
                                   (json_object_get_string_len(text) || !tcs)
                               ? json_object_get(text)
                               : NULL);
    json_object_object_add(msg, "refusal", NULL);
    if (tcs)
        json_object_object_add(msg, "tool_calls", tcs);
    json_object_object_add(choice, "message", msg);
    json_object_object_add(choice, "logprobs", NULL);
    json_object *fin = get(resp, "finish_reason");
    json_object_object_add(
        choice, "finish_reason",
        json_object_new_string(tcs ? "tool_calls"
                                   : fr__gw_finish_reason(is_type(fin, json_type_string)
                                                              ? json_object_get_string(fin)
                                                              : NULL)));
    json_object *choices = json_object_new_array();
    json_object_array_add(choices, choice);
    json_object_object_add(o, "choices", choices);
    json_object_object_add(o, "usage", fr__gw_usage(get(resp, "usage")));
    return o;
}

json_object *fr__gw_chunk(const char *run_id, long long created, const char *model,
                          json_object *delta, const char *finish_reason)
{
    json_object *o = envelope(run_id, "chat.completion.chunk", created, model, NULL);
    json_object *choices = json_object_new_array();
    if (delta) {
        json_object *choice = json_object_new_object();
        json_object_object_add(choice, "index", json_object_new_int(0));
        json_object_object_add(choice, "delta", delta);
        json_object_object_add(choice, "logprobs", NULL);
        json_object_object_add(choice, "finish_reason",
                               finish_reason ? json_object_new_string(finish_reason) : NULL);
        json_object_array_add(choices, choice);
    }
    json_object_object_add(o, "choices", choices);
    return o;
}
