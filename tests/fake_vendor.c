/* fake_vendor: a scripted stand-in for the OpenAI, Anthropic and Gemini HTTP APIs, for
 * the provider tests.  Binds 127.0.0.1 on an ephemeral port and prints "port N" as its
 * first stdout line; exits on SIGTERM/SIGINT or when its stdin reaches end of file (so a
 * test that dies still takes the server with it when stdin is a pipe or FIFO it holds).
 *
 *   fake_vendor [--openai-key K] [--anthropic-key K] [--gemini-key K]
 *               [--delay-ms N] [--cert PEM --key PEM]
 *
 * Routes (a vendor whose key is not given answers 404):
 *   POST /v1/chat/completions                      openai (Authorization: Bearer K)
 *   POST /v1/messages                              anthropic (x-api-key: K or Bearer K,
 *                                                  anthropic-version required)
 *   POST /v1beta/models/M:generateContent          gemini (x-goog-api-key: K)
 *   POST /v1beta/models/M:streamGenerateContent?alt=sse
 *   GET  /_stats   {"connections", "vendor_connections", "requests"}
 *   POST /_reset   zeroes the counters
 *
 * Each vendor request is checked strictly (method, headers, content type, required
 * fields and their types); a wrong shape gets HTTP 400 in the vendor's error format with
 * a message starting "fake_vendor: ".  A wrong key gets 401 (the openai message echoes
 * the key it refused, as a test of the plugins' redaction).
 *
 * Behaviour is scripted by markers in the last user message:
 *   @status=N [@retry_after=V]  answer HTTP N with the vendor's error body ("scripted HTTP N")
 *   @slow=MS        wait MS milliseconds first (also --delay-ms for every request)
 *   @malformed      200 with an HTML body          @truncated  200 with JSON cut in half
 *   @missing        200 with JSON lacking fields   @stream_cut a stream without terminator
 *   @tool           answer with a tool call get_weather({"city":"Paris"})
 *   @context        the vendor's context-length error
 *   @policy         the vendor's content-policy refusal
 *   @stream_gap=MS  a stream sent event by event, MS milliseconds before each event
 *                   after the first (chunked encoding, so the client sees each one)
 *   @stream_drop    a stream cut after two words (as @stream_cut) whose connection then
 *                   breaks: the chunked body ends without its last chunk, so the client
 *                   sees a network error mid-body
 *   @no_usage       an answer (or stream) with no usage at all: no usage / usageMetadata
 *                   object anywhere, as some OpenAI-compatible servers answer
 *   @zero_usage     usage reported, with 0 input and 0 output tokens
 *   @echo           the answer's text is the request body received, as json-c writes it
 *                   compactly (whole answers; a stream's words are cut at 63 bytes), so
 *                   tests compare the wire request field by field
 * Markers are read from the text of the last user message (a string, or its text parts
 * or blocks).  The shapes checked strictly include the ABI 1.2 fields of each vendor:
 * openai content parts (text, image_url with url and detail), developer role, top_p,
 * seed, user, tool_choice (needs tools; a named function must be among them),
 * response_format text/json_object/json_schema, and no other top-level member;
 * anthropic image blocks (base64 source of jpeg/png/gif/webp, or https url source),
 * tool_choice {type: auto|any|none|tool, name iff tool}, metadata {user_id} only, top_p,
 * and no other top-level member ("Extra inputs are not permitted": seed, say); gemini
 * parts (text, inlineData, fileData, functionCall, functionResponse), generationConfig
 * members (topP, seed, responseMimeType, responseJsonSchema...), toolConfig
 * functionCallingConfig mode AUTO|ANY|NONE with allowedFunctionNames (ANY only, declared
 * functions), and no other top-level member.
 * Otherwise the answer is "fake-VENDOR heard: <first six words>" (a tool result as the
 * last message gives "tool result: <content>").  Streams send one chunk per word. */
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <microhttpd.h>

enum vendor { OPENAI, ANTHROPIC, GEMINI };
static const char *const vendor_names[] = {"openai", "anthropic", "gemini"};

static const char *keys[3];
static long delay_ms;
static pthread_mutex_t stats_mu = PTHREAD_MUTEX_INITIALIZER;
static long n_connections, n_vendor_connections, n_requests;
static volatile sig_atomic_t stop_flag;

typedef struct conn_ctx {
    int vendor_used;
} conn_ctx;

typedef struct req_ctx {
    char *body;
    size_t len;
    int too_big;
} req_ctx;

/* ---- answers ------------------------------------------------------------------------ */

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *type,
                                 const char *body, size_t len, const char *retry_after)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    if (retry_after)
        MHD_add_response_header(r, "Retry-After", retry_after);
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_object *o,
                                 const char *retry_after)
{
    size_t len;
    const char *t = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
    enum MHD_Result rc = send_text(c, status, "application/json", t, len, retry_after);
    json_object_put(o);
    return rc;
}

static const char *status_name(enum vendor v, int status)
{
    static const struct {
        int status;
        const char *anthropic, *gemini;
    } rows[] = {
        {400, "invalid_request_error", "INVALID_ARGUMENT"},
        {401, "authentication_error", "UNAUTHENTICATED"},
        {403, "permission_error", "PERMISSION_DENIED"},
        {404, "not_found_error", "NOT_FOUND"},
        {408, "timeout_error", "DEADLINE_EXCEEDED"},
        {429, "rate_limit_error", "RESOURCE_EXHAUSTED"},
        {500, "api_error", "INTERNAL"},
        {502, "api_error", "UNAVAILABLE"},
        {503, "overloaded_error", "UNAVAILABLE"},
        {504, "api_error", "DEADLINE_EXCEEDED"},
        {529, "overloaded_error", "UNAVAILABLE"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (rows[i].status == status)
            return v == ANTHROPIC ? rows[i].anthropic : rows[i].gemini;
    return v == ANTHROPIC ? "api_error" : "UNKNOWN";
}

/* An error in the vendor's format.  code: openai's "code" (NULL for null). */
static enum MHD_Result send_error(struct MHD_Connection *c, enum vendor v, int status,
                                  const char *code, const char *retry_after, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_object *o = json_object_new_object(), *e = json_object_new_object();
    json_object_object_add(e, "message", json_object_new_string(msg));
    if (v == OPENAI) {
        json_object_object_add(e, "type",
                               json_object_new_string(status >= 500   ? "server_error"
                                                      : status == 429 ? "requests"
                                                                      : "invalid_request_error"));
        json_object_object_add(e, "param", NULL);
        json_object_object_add(e, "code", code ? json_object_new_string(code) : NULL);
    } else if (v == ANTHROPIC) {
        json_object_object_add(o, "type", json_object_new_string("error"));
        json_object_object_add(e, "type", json_object_new_string(status_name(v, status)));
    } else {
        json_object_object_add(e, "code", json_object_new_int(status));
        json_object_object_add(e, "status", json_object_new_string(status_name(v, status)));
    }
    json_object_object_add(o, "error", e);
    return send_json(c, (unsigned)status, o, retry_after);
}

/* ---- request inspection ------------------------------------------------------------- */

static const char *str_member(json_object *o, const char *k)
{
    json_object *v;
    return o && json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

static json_object *member(json_object *o, const char *k, json_type t)
{
    json_object *v;
    return o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, k, &v) &&
                   json_object_is_type(v, t)
               ? v
               : NULL;
}

/* 1 when o is an object whose keys are all in the NULL-terminated list allowed; else 0
 * with the first other key in *bad. */
static int only_keys(json_object *o, const char *const *allowed, const char **bad)
{
    json_object_object_foreach(o, k, v)
    {
        (void)v;
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], k) != 0)
            i++;
        if (!allowed[i]) {
            *bad = k;
            return 0;
        }
    }
    return 1;
}

static int is_number(json_object *v)
{
    return v && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double));
}

static int str_is(json_object *o, const char *k, const char *want)
{
    const char *v = str_member(o, k);
    return v && strcmp(v, want) == 0;
}

/* 1 when array `tools` (OpenAI's, Anthropic's or Gemini's declarations) has a function
 * named name. */
static int tool_named(json_object *tools, const char *path1, const char *path2, const char *name)
{
    for (size_t i = 0; tools && i < json_object_array_length(tools); i++) {
        json_object *t = json_object_array_get_idx(tools, i);
        if (path1)
            t = member(t, path1, json_type_object);
        if (path2 && !path1) {
            json_object *decls = member(t, path2, json_type_array);
            if (tool_named(decls, NULL, NULL, name))
                return 1;
            continue;
        }
        if (str_is(t, "name", name))
            return 1;
    }
    return 0;
}

/* What the test asked for, from the last user message. */
typedef struct script {
    char text[512]; /* the last user text (or tool result) */
    int is_tool_result;
    int status;
    char retry_after[64];
    long slow_ms;
    int malformed, truncated, missing, stream_cut, tool, context, policy;
    long stream_gap_ms;
    int stream_drop;
    int no_usage, zero_usage;
    int echo;
} script;

static void read_markers(script *s)
{
    const char *p;
    s->malformed = strstr(s->text, "@malformed") != NULL;
    s->truncated = strstr(s->text, "@truncated") != NULL;
    s->missing = strstr(s->text, "@missing") != NULL;
    s->stream_cut = strstr(s->text, "@stream_cut") != NULL;
    s->tool = strstr(s->text, "@tool") != NULL;
    s->context = strstr(s->text, "@context") != NULL;
    s->policy = strstr(s->text, "@policy") != NULL;
    if ((p = strstr(s->text, "@status=")))
        s->status = atoi(p + 8);
    if ((p = strstr(s->text, "@slow=")))
        s->slow_ms = atol(p + 6);
    if ((p = strstr(s->text, "@stream_gap=")))
        s->stream_gap_ms = atol(p + 12);
    s->stream_drop = strstr(s->text, "@stream_drop") != NULL;
    s->no_usage = strstr(s->text, "@no_usage") != NULL;
    s->zero_usage = strstr(s->text, "@zero_usage") != NULL;
    s->echo = strstr(s->text, "@echo") != NULL;
    if (s->stream_drop)
        s->stream_cut = 1; /* two words, no terminator, then the connection breaks */
    if ((p = strstr(s->text, "@retry_after="))) {
        p += 13;
        size_t n = strcspn(p, " \t\n");
        snprintf(s->retry_after, sizeof s->retry_after, "%.*s", (int)n, p);
    }
}

/* "fake-openai heard: w1 w2 ..." (at most six words) or "tool result: ...". */
static void reply_text(enum vendor v, const script *s, char *out, size_t size)
{
    if (s->is_tool_result) {
        snprintf(out, size, "tool result: %s", s->text);
        return;
    }
    size_t used = (size_t)snprintf(out, size, "fake-%s heard:", vendor_names[v]);
    const char *p = s->text;
    for (int w = 0; w < 6 && *p; w++) {
        p += strspn(p, " \t\n");
        size_t n = strcspn(p, " \t\n");
        if (!n)
            break;
        used += (size_t)snprintf(out + used, size - used, " %.*s", (int)n, p);
        p += n;
        if (used >= size)
            break;
    }
}

static int count_words(const char *s)
{
    int n = 0, in = 0;
    for (; *s; s++) {
        int sp = *s == ' ' || *s == '\t' || *s == '\n';
        n += !sp && !in;
        in = !sp;
    }
    return n;
}

/* Checks the body shape per vendor and finds the last user message.  Returns NULL when
 * fine, else a diagnostic (static or in diag). */
/* OpenAI's content parts (v an array): text parts anywhere, image_url parts in user
 * messages only; the text parts' texts joined into s->text. */
static const char *check_openai_parts(json_object *v, size_t i, int user, script *s, char *diag,
                                      size_t dsize)
{
    static const char *const text_keys[] = {"type", "text", NULL};
    static const char *const image_keys[] = {"type", "image_url", NULL};
    static const char *const url_keys[] = {"url", "detail", NULL};
    const char *bad = NULL;
    if (json_object_array_length(v) == 0) {
        snprintf(diag, dsize, "messages[%zu].content must not be empty", i);
        return diag;
    }
    s->text[0] = '\0';
    for (size_t j = 0; j < json_object_array_length(v); j++) {
        json_object *p = json_object_array_get_idx(v, j), *iu;
        if (str_is(p, "type", "text") && str_member(p, "text") && only_keys(p, text_keys, &bad)) {
            size_t used = strlen(s->text);
            snprintf(s->text + used, sizeof s->text - used, "%s", str_member(p, "text"));
            continue;
        }
        if (user && str_is(p, "type", "image_url") && only_keys(p, image_keys, &bad) &&
            (iu = member(p, "image_url", json_type_object)) && only_keys(iu, url_keys, &bad) &&
            str_member(iu, "url")) {
            const char *d = str_member(iu, "detail"), *u = str_member(iu, "url");
            if (d && strcmp(d, "auto") && strcmp(d, "low") && strcmp(d, "high")) {
                snprintf(diag, dsize, "messages[%zu].content[%zu].image_url.detail: invalid", i, j);
                return diag;
            }
            if (strncmp(u, "data:image/", 11) != 0 && strncmp(u, "https://", 8) != 0) {
                snprintf(diag, dsize, "messages[%zu].content[%zu].image_url.url: invalid", i, j);
                return diag;
            }
            continue;
        }
        snprintf(diag, dsize, "messages[%zu].content[%zu]: invalid content part%s%s", i, j,
                 bad ? ", unknown member " : "", bad ? bad : "");
        return diag;
    }
    return NULL;
}

static const char *check_openai(json_object *b, int *stream, script *s, char *diag, size_t dsize)
{
    static const char *const top[] = {"model",           "messages", "max_tokens", "temperature",
                                      "top_p",           "seed",     "stop",       "tools",
                                      "tool_choice",     "user",     "stream",     "stream_options",
                                      "response_format", NULL};
    json_object *msgs = member(b, "messages", json_type_array), *v;
    const char *bad = NULL;
    if (!only_keys(b, top, &bad)) {
        snprintf(diag, dsize, "Unrecognized request argument supplied: %s", bad);
        return diag;
    }
    if (!str_member(b, "model"))
        return "\"model\" must be a string";
    if (!msgs || json_object_array_length(msgs) == 0)
        return "\"messages\" must be a non-empty array";
    for (size_t i = 0; i < json_object_array_length(msgs); i++) {
        json_object *m = json_object_array_get_idx(msgs, i);
        const char *role = str_member(m, "role");
        if (!role || (strcmp(role, "system") && strcmp(role, "developer") && strcmp(role, "user") &&
                      strcmp(role, "assistant") && strcmp(role, "tool"))) {
            snprintf(diag, dsize, "messages[%zu].role is missing or unknown", i);
            return diag;
        }
        if (!json_object_object_get_ex(m, "content", &v)) {
            snprintf(diag, dsize, "messages[%zu] has no content", i);
            return diag;
        }
        if (v && !json_object_is_type(v, json_type_string) &&
            !json_object_is_type(v, json_type_array)) {
            snprintf(diag, dsize, "messages[%zu].content must be a string, null or an array", i);
            return diag;
        }
        if (!v && strcmp(role, "assistant") != 0) {
            snprintf(diag, dsize, "messages[%zu].content may be null for assistants only", i);
            return diag;
        }
        if (strcmp(role, "tool") == 0 && !str_member(m, "tool_call_id"))
            return "a tool message needs tool_call_id";
        if (json_object_is_type(v, json_type_array)) {
            script scratch = {0};
            int user = strcmp(role, "user") == 0;
            const char *p = check_openai_parts(v, i, user, user ? s : &scratch, diag, dsize);
            if (p)
                return p;
            if (strcmp(role, "tool") == 0) {
                snprintf(s->text, sizeof s->text, "%s", scratch.text);
                s->is_tool_result = 1;
            } else if (user) {
                s->is_tool_result = 0;
            }
        } else if (strcmp(role, "user") == 0 || strcmp(role, "tool") == 0) {
            const char *c = str_member(m, "content");
            snprintf(s->text, sizeof s->text, "%s", c ? c : "");
            s->is_tool_result = strcmp(role, "tool") == 0;
        }
    }
    if (json_object_object_get_ex(b, "max_tokens", &v) && !json_object_is_type(v, json_type_int))
        return "\"max_tokens\" must be an integer";
    if (json_object_object_get_ex(b, "top_p", &v) &&
        (!is_number(v) || json_object_get_double(v) < 0 || json_object_get_double(v) > 1))
        return "\"top_p\" must be a number from 0 to 1";
    if (json_object_object_get_ex(b, "seed", &v) && !json_object_is_type(v, json_type_int))
        return "\"seed\" must be an integer";
    if (json_object_object_get_ex(b, "user", &v) && !json_object_is_type(v, json_type_string))
        return "\"user\" must be a string";
    json_object *tools = member(b, "tools", json_type_array);
    if (json_object_object_get_ex(b, "tool_choice", &v)) {
        static const char *const tc_keys[] = {"type", "function", NULL};
        const char *t = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
        json_object *fn = member(v, "function", json_type_object);
        int named = json_object_is_type(v, json_type_object) && only_keys(v, tc_keys, &bad) &&
                    str_is(v, "type", "function") && str_member(fn, "name");
        if (!named && strcmp(t, "none") && strcmp(t, "auto") && strcmp(t, "required"))
            return "\"tool_choice\" must be none, auto, required or {type: function, function: "
                   "{name}}";
        if (!tools || json_object_array_length(tools) == 0)
            return "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' "
                   "are specified.";
        if (named && !tool_named(tools, "function", NULL, str_member(fn, "name")))
            return "\"tool_choice\" names a function that is not among tools";
    }
    json_object *rf = member(b, "response_format", json_type_object);
    if (json_object_object_get_ex(b, "response_format", &v) && !rf)
        return "\"response_format\" must be an object";
    if (rf && !str_is(rf, "type", "text") && !str_is(rf, "type", "json_object") &&
        !str_is(rf, "type", "json_schema"))
        return "response_format.type must be text, json_object or json_schema";
    if (rf && str_is(rf, "type", "json_schema")) {
        static const char *const js_keys[] = {"name", "description", "schema", "strict", NULL};
        json_object *js = member(rf, "json_schema", json_type_object);
        if (!js || !str_member(js, "name") || !only_keys(js, js_keys, &bad) ||
            (json_object_object_get_ex(js, "schema", &v) &&
             !json_object_is_type(v, json_type_object)))
            return "response_format.json_schema needs a name and an object schema";
    }
    json_object *st = member(b, "stream", json_type_boolean);
    *stream = st && json_object_get_boolean(st);
    if (*stream) {
        json_object *inc = member(member(b, "stream_options", json_type_object), "include_usage",
                                  json_type_boolean);
        if (!inc || !json_object_get_boolean(inc))
            return "streaming requests must set stream_options.include_usage";
    }
    return NULL;
}

/* An Anthropic image block: {type: image, source: {type: base64, media_type, data} or
 * {type: url, url}}.  NULL when fine. */
static const char *check_anthropic_image(json_object *blk)
{
    static const char *const blk_keys[] = {"type", "source", NULL};
    static const char *const b64_keys[] = {"type", "media_type", "data", NULL};
    static const char *const url_keys[] = {"type", "url", NULL};
    static const char *const media[] = {"image/jpeg", "image/png", "image/gif", "image/webp"};
    json_object *src = member(blk, "source", json_type_object);
    const char *bad;
    if (!src || !only_keys(blk, blk_keys, &bad))
        return "image blocks need a source object (and nothing else)";
    if (str_is(src, "type", "base64")) {
        const char *mt = str_member(src, "media_type");
        int ok = 0;
        for (size_t i = 0; mt && i < 4; i++)
            ok |= strcmp(mt, media[i]) == 0;
        if (!ok || !str_member(src, "data") || !only_keys(src, b64_keys, &bad))
            return "image source base64 needs media_type image/jpeg, image/png, image/gif or "
                   "image/webp and data";
        return NULL;
    }
    if (str_is(src, "type", "url") && str_member(src, "url") && only_keys(src, url_keys, &bad) &&
        strncmp(str_member(src, "url"), "https://", 8) == 0)
        return NULL;
    return "image source must be {type: base64, media_type, data} or {type: url, url}";
}

static const char *check_anthropic(json_object *b, int *stream, script *s, char *diag, size_t dsize)
{
    static const char *const top[] = {
        "model",          "messages", "max_tokens", "system",      "temperature", "top_p", "top_k",
        "stop_sequences", "stream",   "tools",      "tool_choice", "metadata",    NULL};
    json_object *msgs = member(b, "messages", json_type_array), *v;
    const char *bad = NULL;
    if (!only_keys(b, top, &bad)) {
        snprintf(diag, dsize, "%s: Extra inputs are not permitted", bad);
        return diag;
    }
    if (json_object_object_get_ex(b, "top_p", &v) &&
        (!is_number(v) || json_object_get_double(v) < 0 || json_object_get_double(v) > 1))
        return "top_p: Input should be a number from 0 to 1";
    if (json_object_object_get_ex(b, "metadata", &v)) {
        static const char *const meta_keys[] = {"user_id", NULL};
        if (!json_object_is_type(v, json_type_object) || !only_keys(v, meta_keys, &bad) ||
            !str_member(v, "user_id"))
            return "metadata: only user_id (a string) is permitted";
    }
    json_object *tools = member(b, "tools", json_type_array);
    if (json_object_object_get_ex(b, "tool_choice", &v)) {
        static const char *const tc_keys[] = {"type", "name", "disable_parallel_tool_use", NULL};
        const char *t = str_member(v, "type");
        if (!json_object_is_type(v, json_type_object) || !only_keys(v, tc_keys, &bad) || !t ||
            (strcmp(t, "auto") && strcmp(t, "any") && strcmp(t, "none") && strcmp(t, "tool")))
            return "tool_choice: Input should be {type: auto|any|none|tool}";
        if ((strcmp(t, "tool") == 0) != (str_member(v, "name") != NULL))
            return "tool_choice: name is required for type tool and only for it";
        if (strcmp(t, "tool") == 0 && !tool_named(tools, NULL, NULL, str_member(v, "name")))
            return "tool_choice: the named tool is not among tools";
    }
    if (!str_member(b, "model"))
        return "\"model\" must be a string";
    if (!member(b, "max_tokens", json_type_int))
        return "\"max_tokens\" is required and must be an integer";
    if (json_object_object_get_ex(b, "system", &v) && !json_object_is_type(v, json_type_string))
        return "\"system\" must be a string";
    if (!msgs || json_object_array_length(msgs) == 0)
        return "\"messages\" must be a non-empty array";
    for (size_t i = 0; i < json_object_array_length(msgs); i++) {
        json_object *m = json_object_array_get_idx(msgs, i);
        const char *role = str_member(m, "role");
        if (!role || (strcmp(role, "user") && strcmp(role, "assistant"))) {
            snprintf(diag, dsize, "messages[%zu].role must be user or assistant", i);
            return diag;
        }
        if (!json_object_object_get_ex(m, "content", &v) ||
            (!json_object_is_type(v, json_type_string) &&
             !json_object_is_type(v, json_type_array))) {
            snprintf(diag, dsize, "messages[%zu].content must be a string or an array", i);
            return diag;
        }
        int user = strcmp(role, "user") == 0;
        if (user)
            s->is_tool_result = 0;
        if (json_object_is_type(v, json_type_string)) {
            if (user)
                snprintf(s->text, sizeof s->text, "%s", json_object_get_string(v));
            continue;
        }
        for (size_t j = 0; j < json_object_array_length(v); j++) {
            json_object *blk = json_object_array_get_idx(v, j), *rc;
            const char *t = str_member(blk, "type"), *problem = NULL;
            if (t && strcmp(t, "tool_result") == 0 && user) {
                if (!str_member(blk, "tool_use_id"))
                    return "tool_result needs tool_use_id";
                /* content: a string or text blocks */
                json_object_object_get_ex(blk, "content", &rc);
                s->text[0] = '\0';
                if (json_object_is_type(rc, json_type_string))
                    snprintf(s->text, sizeof s->text, "%s", json_object_get_string(rc));
                for (size_t k = 0;
                     json_object_is_type(rc, json_type_array) && k < json_object_array_length(rc);
                     k++) {
                    json_object *tb = json_object_array_get_idx(rc, k);
                    if (!str_is(tb, "type", "text") || !str_member(tb, "text"))
                        return "tool_result content blocks must be text blocks here";
                    size_t used = strlen(s->text);
                    snprintf(s->text + used, sizeof s->text - used, "%s", str_member(tb, "text"));
                }
                s->is_tool_result = 1;
            } else if (t && strcmp(t, "text") == 0) {
                if (!str_member(blk, "text"))
                    return "text blocks need text";
                if (user)
                    snprintf(s->text, sizeof s->text, "%s", str_member(blk, "text"));
            } else if (t && strcmp(t, "image") == 0 && user) {
                problem = check_anthropic_image(blk);
            } else if (!(t && strcmp(t, "tool_use") == 0 && !user)) {
                problem = "unexpected content block type";
            }
            if (problem) {
                snprintf(diag, dsize, "messages[%zu].content[%zu]: %s", i, j, problem);
                return diag;
            }
        }
    }
    json_object *st = member(b, "stream", json_type_boolean);
    *stream = st && json_object_get_boolean(st);
    return NULL;
}

/* Gemini's generationConfig and toolConfig.  NULL when fine. */
static const char *check_gemini_config(json_object *b, char *diag, size_t dsize)
{
    static const char *const gc_keys[] = {"maxOutputTokens",
                                          "temperature",
                                          "topP",
                                          "topK",
                                          "seed",
                                          "stopSequences",
                                          "responseMimeType",
                                          "responseJsonSchema",
                                          "responseSchema",
                                          "candidateCount",
                                          NULL};
    json_object *gc, *v, *tc;
    const char *bad = NULL;
    if (json_object_object_get_ex(b, "generationConfig", &gc)) {
        if (!json_object_is_type(gc, json_type_object))
            return "\"generationConfig\" must be an object";
        if (!only_keys(gc, gc_keys, &bad)) {
            snprintf(diag, dsize,
                     "Invalid JSON payload received. Unknown name \"%s\" at 'generation_config': "
                     "Cannot find field.",
                     bad);
            return diag;
        }
        if (json_object_object_get_ex(gc, "topP", &v) && !is_number(v))
            return "generationConfig.topP must be a number";
        if (json_object_object_get_ex(gc, "seed", &v) && !json_object_is_type(v, json_type_int))
            return "generationConfig.seed must be an integer";
        if (json_object_object_get_ex(gc, "responseJsonSchema", &v) &&
            (!json_object_is_type(v, json_type_object) ||
             !str_is(gc, "responseMimeType", "application/json")))
            return "generationConfig.responseJsonSchema needs an object and responseMimeType "
                   "application/json";
    }
    if (json_object_object_get_ex(b, "toolConfig", &tc)) {
        static const char *const tc_keys[] = {"functionCallingConfig", NULL};
        static const char *const fcc_keys[] = {"mode", "allowedFunctionNames", NULL};
        json_object *fcc = member(tc, "functionCallingConfig", json_type_object), *names;
        const char *mode = str_member(fcc, "mode");
        if (!fcc || !only_keys(tc, tc_keys, &bad) || !only_keys(fcc, fcc_keys, &bad) || !mode ||
            (strcmp(mode, "AUTO") && strcmp(mode, "ANY") && strcmp(mode, "NONE")))
            return "toolConfig.functionCallingConfig.mode must be AUTO, ANY or NONE";
        if (json_object_object_get_ex(fcc, "allowedFunctionNames", &names)) {
            if (strcmp(mode, "ANY") != 0 || !json_object_is_type(names, json_type_array))
                return "allowedFunctionNames is allowed with mode ANY only, as an array";
            for (size_t i = 0; i < json_object_array_length(names); i++) {
                json_object *n = json_object_array_get_idx(names, i);
                if (!json_object_is_type(n, json_type_string) ||
                    !tool_named(member(b, "tools", json_type_array), NULL, "functionDeclarations",
                                json_object_get_string(n)))
                    return "allowedFunctionNames names a function that is not declared";
            }
        }
        if (!member(b, "tools", json_type_array))
            return "toolConfig needs tools";
    }
    return NULL;
}

static const char *check_gemini(json_object *b, script *s, char *diag, size_t dsize)
{
    static const char *const top[] = {"contents", "systemInstruction", "generationConfig",
                                      "tools",    "toolConfig",        "safetySettings",
                                      NULL};
    json_object *contents = member(b, "contents", json_type_array), *si;
    const char *bad = NULL, *problem;
    if (!only_keys(b, top, &bad)) {
        snprintf(diag, dsize,
                 "Invalid JSON payload received. Unknown name \"%s\": Cannot find field.", bad);
        return diag;
    }
    if ((problem = check_gemini_config(b, diag, dsize)))
        return problem;
    if (!contents || json_object_array_length(contents) == 0)
        return "\"contents\" must be a non-empty array";
    if (json_object_object_get_ex(b, "systemInstruction", &si)) {
        json_object *parts = member(si, "parts", json_type_array);
        if (!parts || json_object_array_length(parts) == 0 ||
            !str_member(json_object_array_get_idx(parts, 0), "text"))
            return "\"systemInstruction\" must hold parts with text";
    }
    for (size_t i = 0; i < json_object_array_length(contents); i++) {
        json_object *c = json_object_array_get_idx(contents, i);
        const char *role = str_member(c, "role");
        json_object *parts = member(c, "parts", json_type_array);
        if (!role || (strcmp(role, "user") && strcmp(role, "model"))) {
            snprintf(diag, dsize, "contents[%zu].role must be user or model", i);
            return diag;
        }
        if (!parts || json_object_array_length(parts) == 0) {
            snprintf(diag, dsize, "contents[%zu].parts must be a non-empty array", i);
            return diag;
        }
        if (strcmp(role, "user") != 0)
            continue;
        for (size_t j = 0; j < json_object_array_length(parts); j++) {
            json_object *p = json_object_array_get_idx(parts, j), *fr;
            if (str_member(p, "text")) {
                snprintf(s->text, sizeof s->text, "%s", str_member(p, "text"));
                s->is_tool_result = 0;
            } else if ((fr = member(p, "functionResponse", json_type_object))) {
                json_object *resp = member(fr, "response", json_type_object);
                if (!str_member(fr, "name") || !resp)
                    return "functionResponse needs name and an object response";
                const char *t = str_member(resp, "content");
                snprintf(s->text, sizeof s->text, "%s", t ? t : json_object_to_json_string(resp));
                s->is_tool_result = 1;
            } else if ((fr = member(p, "inlineData", json_type_object))) {
                static const char *const keys[] = {"mimeType", "data", NULL};
                if (!str_member(fr, "mimeType") || !str_member(fr, "data") ||
                    !only_keys(fr, keys, &bad))
                    return "inlineData needs mimeType and data (base64)";
            } else if ((fr = member(p, "fileData", json_type_object))) {
                static const char *const keys[] = {"mimeType", "fileUri", NULL};
                if (!str_member(fr, "fileUri") || !only_keys(fr, keys, &bad))
                    return "fileData needs fileUri";
            } else {
                snprintf(diag, dsize,
                         "contents[%zu].parts[%zu] has neither text, inlineData, fileData nor "
                         "functionResponse",
                         i, j);
                return diag;
            }
        }
    }
    return NULL;
}

/* ---- success bodies ----------------------------------------------------------------- */

static json_object *jparse(const char *t)
{
    return json_tokener_parse(t);
}

/* The whole (non-streamed) answer. */
static json_object *answer(enum vendor v, const char *model, const script *s, const char *text,
                           int in_tokens, int out_tokens)
{
    json_object *o = json_object_new_object();
    if (v == OPENAI) {
        json_object *msg = json_object_new_object(), *choice = json_object_new_object();
        json_object *choices = json_object_new_array(), *usage = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string("chatcmpl-fake"));
        json_object_object_add(o, "object", json_object_new_string("chat.completion"));
        json_object_object_add(o, "model", json_object_new_string(model));
        json_object_object_add(msg, "role", json_object_new_string("assistant"));
        if (s->tool) {
            json_object_object_add(msg, "content", NULL);
            json_object_object_add(
                msg, "tool_calls",
                jparse(
                    "[{\"id\":\"call_fake1\",\"type\":\"function\",\"function\":"
                    "{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]"));
        } else {
            json_object_object_add(msg, "content", json_object_new_string(text));
        }
        json_object_object_add(choice, "index", json_object_new_int(0));
        json_object_object_add(choice, "message", msg);
        json_object_object_add(choice, "finish_reason",
                               json_object_new_string(s->tool ? "tool_calls" : "stop"));
        json_object_array_add(choices, choice);
        json_object_object_add(o, "choices", choices);
        json_object_object_add(usage, "prompt_tokens", json_object_new_int(in_tokens));
        json_object_object_add(usage, "completion_tokens", json_object_new_int(out_tokens));
        json_object_object_add(usage, "total_tokens", json_object_new_int(in_tokens + out_tokens));
        json_object_object_add(o, "usage", usage);
    } else if (v == ANTHROPIC) {
        json_object *content = json_object_new_array(), *usage = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string("msg_fake"));
        json_object_object_add(o, "type", json_object_new_string("message"));
        json_object_object_add(o, "role", json_object_new_string("assistant"));
        json_object_object_add(o, "model", json_object_new_string(model));
        if (s->tool) {
            json_object_array_add(content,
                                  jparse("{\"type\":\"text\",\"text\":\"Let me check.\"}"));
            json_object_array_add(
                content, jparse("{\"type\":\"tool_use\",\"id\":\"toolu_fake1\","
                                "\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"}}"));
        } else {
            json_object *blk = json_object_new_object();
            json_object_object_add(blk, "type", json_object_new_string("text"));
            json_object_object_add(blk, "text", json_object_new_string(text));
            json_object_array_add(content, blk);
        }
        json_object_object_add(o, "content", content);
        json_object_object_add(o, "stop_reason",
                               json_object_new_string(s->tool ? "tool_use" : "end_turn"));
        json_object_object_add(o, "stop_sequence", NULL);
        json_object_object_add(usage, "input_tokens", json_object_new_int(in_tokens));
        json_object_object_add(usage, "output_tokens", json_object_new_int(out_tokens));
        json_object_object_add(o, "usage", usage);
    } else {
        json_object *cand = json_object_new_object(), *content = json_object_new_object();
        json_object *parts = json_object_new_array(), *cands = json_object_new_array();
        json_object *um = json_object_new_object();
        char version[160];
        if (s->tool) {
            json_object_array_add(parts, jparse("{\"functionCall\":{\"name\":\"get_weather\","
                                                "\"args\":{\"city\":\"Paris\"}}}"));
        } else {
            json_object *p = json_object_new_object();
            json_object_object_add(p, "text", json_object_new_string(text));
            json_object_array_add(parts, p);
        }
        json_object_object_add(content, "parts", parts);
        json_object_object_add(content, "role", json_object_new_string("model"));
        json_object_object_add(cand, "content", content);
        json_object_object_add(cand, "finishReason", json_object_new_string("STOP"));
        json_object_object_add(cand, "index", json_object_new_int(0));
        json_object_array_add(cands, cand);
        json_object_object_add(o, "candidates", cands);
        json_object_object_add(um, "promptTokenCount", json_object_new_int(in_tokens));
        json_object_object_add(um, "candidatesTokenCount", json_object_new_int(out_tokens));
        json_object_object_add(um, "totalTokenCount", json_object_new_int(in_tokens + out_tokens));
        json_object_object_add(o, "usageMetadata", um);
        snprintf(version, sizeof version, "%s-001", model);
        json_object_object_add(o, "modelVersion", json_object_new_string(version));
    }
    if (s->no_usage) {
        json_object_object_del(o, "usage");
        json_object_object_del(o, "usageMetadata");
    }
    return o;
}

typedef struct sse {
    char *data;
    size_t len, cap;
    size_t ends[80]; /* where each event ends (the first 80) */
    size_t n_ends;
} sse;

static void sse_add(sse *b, const char *event, const char *fmt, ...)
{
    char chunk[4096];
    int n = 0;
    if (event)
        n = snprintf(chunk, sizeof chunk, "event: %s\n", event);
    va_list ap;
    va_start(ap, fmt);
    n += snprintf(chunk + n, sizeof chunk - (size_t)n, "data: ");
    n += vsnprintf(chunk + n, sizeof chunk - (size_t)n, fmt, ap);
    va_end(ap);
    n += snprintf(chunk + n, sizeof chunk - (size_t)n, "\n\n");
    if (b->len + (size_t)n + 1 > b->cap) {
        b->cap = (b->cap + (size_t)n + 1) * 2;
        b->data = realloc(b->data, b->cap);
        if (!b->data)
            abort();
    }
    memcpy(b->data + b->len, chunk, (size_t)n);
    b->len += (size_t)n;
    if (b->n_ends < sizeof b->ends / sizeof b->ends[0])
        b->ends[b->n_ends++] = b->len;
}

/* A stream sent event by event (@stream_gap=MS: MS milliseconds before each event after
 * the first; @stream_drop: the connection breaks after the last event, the stream being
 * cut after two words as with @stream_cut). */
typedef struct paced {
    sse body;
    size_t next; /* index in body.ends of the event being sent */
    long gap_ms;
    int drop;
} paced;

static ssize_t paced_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    paced *p = cls;
    if (pos >= p->body.len) /* a drop: the body ends without its last chunk */
        return p->drop ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
    while (p->next < p->body.n_ends && p->body.ends[p->next] <= pos)
        p->next++;
    size_t start = p->next ? p->body.ends[p->next - 1] : 0;
    if (pos == start && p->next > 0 && p->gap_ms > 0) {
        struct timespec ts = {p->gap_ms / 1000, (p->gap_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
    }
    size_t stop = p->next < p->body.n_ends ? p->body.ends[p->next] : p->body.len;
    size_t n = stop - (size_t)pos < max ? stop - (size_t)pos : max;
    memcpy(buf, p->body.data + pos, n);
    return (ssize_t)n;
}

static void paced_free(void *cls)
{
    paced *p = cls;
    free(p->body.data);
    free(p);
}

/* Sends `body` (taken over) as a paced stream of unknown length (chunked encoding). */
static enum MHD_Result send_paced(struct MHD_Connection *c, sse *body, long gap_ms, int drop)
{
    paced *p = calloc(1, sizeof *p);
    if (!p) {
        free(body->data);
        return MHD_NO;
    }
    p->body = *body;
    p->gap_ms = gap_ms;
    p->drop = drop;
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 256, paced_read, p, paced_free);
    if (!r) {
        paced_free(p);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    enum MHD_Result rc = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return rc;
}

/* JSON string literal of s (for hand-built chunks). */
static const char *jstr(json_object **hold, const char *s)
{
    json_object_put(*hold);
    *hold = json_object_new_string(s);
    return json_object_to_json_string_ext(*hold, JSON_C_TO_STRING_PLAIN);
}

/* A streamed answer: one chunk per word; @stream_cut stops after two words without the
 * terminator. */
static void stream_answer(enum vendor v, const char *model, const script *s, const char *text,
                          int in_tokens, int out_tokens, sse *b)
{
    json_object *hold = NULL;
    char words[64][64];
    int nw = 0;
    for (const char *p = text; *p && nw < 64;) {
        size_t n = strcspn(p, " ");
        size_t sp = strspn(p + n, " ");
        snprintf(words[nw++], sizeof words[0], "%.*s", (int)(n + sp), p);
        p += n + sp;
    }
    int limit = s->stream_cut ? 2 : nw;
    if (v == OPENAI) {
        sse_add(b, NULL,
                "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":%s,\"choices\":"
                "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_"
                "reason\":null}]}",
                jstr(&hold, model));
        if (s->tool) {
            sse_add(
                b, NULL,
                "{\"model\":%s,\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
                "\"id\":\"call_fake1\",\"type\":\"function\",\"function\":{\"name\":\"get_"
                "weather\","
                "\"arguments\":\"\"}}]},\"finish_reason\":null}]}",
                jstr(&hold, model));
            sse_add(
                b, NULL,
                "{\"model\":%s,\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
                "\"function\":{\"arguments\":\"{\\\"city\\\":\"}}]},\"finish_reason\":null}]}",
                jstr(&hold, model));
            sse_add(
                b, NULL,
                "{\"model\":%s,\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
                "\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}]},\"finish_reason\":null}]}",
                jstr(&hold, model));
        }
        for (int i = 0; i < limit && !s->tool; i++)
            sse_add(b, NULL,
                    "{\"model\":\"%s\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%s},"
                    "\"finish_reason\":null}]}",
                    model, jstr(&hold, words[i]));
        if (!s->stream_cut) {
            sse_add(
                b, NULL,
                "{\"model\":%s,\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"%s\"}]}",
                jstr(&hold, model), s->tool ? "tool_calls" : "stop");
            if (!s->no_usage) /* as servers that ignore include_usage */
                sse_add(b, NULL,
                        "{\"model\":%s,\"choices\":[],\"usage\":{\"prompt_tokens\":%d,"
                        "\"completion_tokens\":%d,\"total_tokens\":%d}}",
                        jstr(&hold, model), in_tokens, out_tokens, in_tokens + out_tokens);
            sse_add(b, NULL, "[DONE]");
        }
    } else if (v == ANTHROPIC) {
        char usage[96] = "";
        if (!s->no_usage)
            snprintf(usage, sizeof usage, ",\"usage\":{\"input_tokens\":%d,\"output_tokens\":1}",
                     in_tokens);
        sse_add(b, "message_start",
                "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_fake\",\"type\":"
                "\"message\",\"role\":\"assistant\",\"model\":%s,\"content\":[],"
                "\"stop_reason\":null%s}}",
                jstr(&hold, model), usage);
        sse_add(b, "ping", "{\"type\":\"ping\"}");
        if (s->tool) {
            sse_add(b, "content_block_start",
                    "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
                    "{\"type\":\"tool_use\",\"id\":\"toolu_fake1\",\"name\":\"get_weather\","
                    "\"input\":{}}}");
            sse_add(b, "content_block_delta",
                    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                    "{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \"}}");
            sse_add(b, "content_block_delta",
                    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                    "{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"Paris\\\"}\"}}");
        } else {
            sse_add(b, "content_block_start",
                    "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
                    "{\"type\":\"text\",\"text\":\"\"}}");
            for (int i = 0; i < limit; i++)
                sse_add(b, "content_block_delta",
                        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                        "{\"type\":\"text_delta\",\"text\":%s}}",
                        jstr(&hold, words[i]));
        }
        if (!s->stream_cut) {
            sse_add(b, "content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}");
            if (!s->no_usage)
                snprintf(usage, sizeof usage, ",\"usage\":{\"output_tokens\":%d}", out_tokens);
            sse_add(b, "message_delta",
                    "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"%s\","
                    "\"stop_sequence\":null}%s}",
                    s->tool ? "tool_use" : "end_turn", usage);
            sse_add(b, "message_stop", "{\"type\":\"message_stop\"}");
        }
    } else {
        char version[160], um[128] = "";
        snprintf(version, sizeof version, "%s-001", model);
        if (s->tool) {
            if (!s->no_usage)
                snprintf(um, sizeof um,
                         "\"usageMetadata\":{\"promptTokenCount\":%d,\"candidatesTokenCount\":%d},",
                         in_tokens, out_tokens);
            sse_add(
                b, NULL,
                "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"get_"
                "weather\","
                "\"args\":{\"city\":\"Paris\"}}}],\"role\":\"model\"},\"finishReason\":\"STOP\"}],"
                "%s\"modelVersion\":%s}",
                um, jstr(&hold, version));
        }
        for (int i = 0; i < limit && !s->tool; i++) {
            int last = i == nw - 1 && !s->stream_cut;
            if (!s->no_usage)
                snprintf(um, sizeof um,
                         "\"usageMetadata\":{\"promptTokenCount\":%d,\"candidatesTokenCount\":%d},",
                         in_tokens, last ? out_tokens : i + 1);
            sse_add(b, NULL,
                    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":%s}],\"role\":"
                    "\"model\"}%s}],%s\"modelVersion\":\"%s\"}",
                    jstr(&hold, words[i]), last ? ",\"finishReason\":\"STOP\"" : "", um, version);
        }
    }
    json_object_put(hold);
}

/* ---- the handler -------------------------------------------------------------------- */

static void mark_vendor_connection(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_ctx *cc = ci ? ci->socket_context : NULL;
    pthread_mutex_lock(&stats_mu);
    n_requests++;
    if (cc && !cc->vendor_used) {
        cc->vendor_used = 1;
        n_vendor_connections++;
    }
    pthread_mutex_unlock(&stats_mu);
}

static int header_is(struct MHD_Connection *c, const char *name, const char *want)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    return v && strcmp(v, want) == 0;
}

static enum MHD_Result vendor_answer(struct MHD_Connection *c, enum vendor v, const char *model,
                                     const script *sc, int stream, const char *echo);

static enum MHD_Result vendor_request(struct MHD_Connection *c, enum vendor v, const char *url,
                                      const req_ctx *rc)
{
    char want[512], diag[256], err_model[128] = "";
    int stream = 0;
    script s = {0};
    mark_vendor_connection(c);
    if (!keys[v])
        return send_error(c, v, 404, NULL, NULL, "fake_vendor: %s is not enabled", vendor_names[v]);

    /* Credentials. */
    const char *auth_name = v == OPENAI      ? "Authorization"
                            : v == ANTHROPIC ? "x-api-key"
                                             : "x-goog-api-key";
    if (v == OPENAI)
        snprintf(want, sizeof want, "Bearer %s", keys[v]);
    else
        snprintf(want, sizeof want, "%s", keys[v]);
    int auth_ok = header_is(c, auth_name, want);
    if (v == ANTHROPIC && !auth_ok &&
        !MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-api-key")) {
        snprintf(want, sizeof want, "Bearer %s", keys[v]);
        auth_ok = header_is(c, "Authorization", want);
    }
    if (!auth_ok) {
        const char *got = MHD_lookup_connection_value(c, MHD_HEADER_KIND, auth_name);
        if (v == OPENAI)
            return send_error(c, v, 401, "invalid_api_key", NULL,
                              "Incorrect API key provided: %s. You can find your API key at "
                              "https://platform.openai.com/account/api-keys.",
                              got ? (strncmp(got, "Bearer ", 7) == 0 ? got + 7 : got) : "(none)");
        return send_error(c, v, v == ANTHROPIC ? 401 : 403, NULL, NULL,
                          v == ANTHROPIC ? "invalid x-api-key"
                                         : "API key not valid. Please pass a valid API key.");
    }
    /* Headers every vendor wants. */
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    if (!ct || strncasecmp(ct, "application/json", 16) != 0)
        return send_error(c, v, 400, NULL, NULL,
                          "fake_vendor: Content-Type must be application/json, not %s",
                          ct ? ct : "(none)");
    if (v == ANTHROPIC && !MHD_lookup_connection_value(c, MHD_HEADER_KIND, "anthropic-version"))
        return send_error(c, v, 400, NULL, NULL,
                          "fake_vendor: anthropic-version header is required");

    json_object *b = rc->body ? json_tokener_parse(rc->body) : NULL;
    if (!b || !json_object_is_type(b, json_type_object)) {
        json_object_put(b);
        return send_error(c, v, 400, NULL, NULL, "fake_vendor: body is not a JSON object");
    }
    const char *problem;
    char model[128];
    /* @echo answers with the body received, as json-c writes it compactly */
    char *echo = strdup(json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN));
    if (v == GEMINI) {
        /* /v1beta/models/{model}:generateContent or :streamGenerateContent */
        const char *m = url + strlen("/v1beta/models/"), *colon = strchr(m, ':');
        snprintf(model, sizeof model, "%.*s", colon ? (int)(colon - m) : 0, m);
        stream = colon && strcmp(colon, ":streamGenerateContent") == 0;
        const char *alt = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "alt");
        if (!colon || !model[0] || (!stream && strcmp(colon, ":generateContent") != 0))
            problem = "path must be /v1beta/models/MODEL:generateContent or :streamGenerateContent";
        else if (stream && (!alt || strcmp(alt, "sse") != 0))
            problem = "streamGenerateContent needs ?alt=sse";
        else
            problem = check_gemini(b, &s, diag, sizeof diag);
    } else {
        problem = v == OPENAI ? check_openai(b, &stream, &s, diag, sizeof diag)
                              : check_anthropic(b, &stream, &s, diag, sizeof diag);
        snprintf(model, sizeof model, "%s", str_member(b, "model") ? str_member(b, "model") : "");
    }
    json_object_put(b);
    (void)err_model;
    if (problem) {
        free(echo);
        return send_error(c, v, 400, NULL, NULL, "fake_vendor: %s", problem);
    }
    read_markers(&s);
    enum MHD_Result r = vendor_answer(c, v, model, &s, stream, echo);
    free(echo);
    return r;
}

/* Answers a request that passed the checks, as its markers ask. */
static enum MHD_Result vendor_answer(struct MHD_Connection *c, enum vendor v, const char *model,
                                     const script *sc, int stream, const char *echo)
{
    script s = *sc;

    long wait = delay_ms + s.slow_ms;
    if (wait > 0) {
        struct timespec ts = {wait / 1000, (wait % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
    }
    const char *retry = s.retry_after[0] ? s.retry_after : NULL;
    if (s.status)
        return send_error(c, v, s.status, s.status == 429 ? "rate_limit_exceeded" : NULL, retry,
                          "fake %s error: scripted HTTP %d", vendor_names[v], s.status);
    if (s.context) {
        if (v == OPENAI)
            return send_error(
                c, v, 400, "context_length_exceeded", NULL,
                "This model's maximum context length is 8192 tokens. However, your "
                "messages resulted in 9001 tokens. Please reduce the length of the messages.");
        if (v == ANTHROPIC)
            return send_error(c, v, 400, NULL, NULL,
                              "prompt is too long: 210000 tokens > 200000 maximum");
        return send_error(c, v, 400, NULL, NULL,
                          "The input token count (1200000) exceeds the maximum number of tokens "
                          "allowed (1048576).");
    }
    if (s.policy) {
        if (v == OPENAI)
            return send_error(c, v, 400, "content_policy_violation", NULL,
                              "Your request was rejected as a result of our safety system.");
        if (v == ANTHROPIC)
            return send_error(c, v, 400, NULL, NULL, "Output blocked by content filtering policy");
        return send_json(
            c, 200,
            jparse("{\"promptFeedback\":{\"blockReason\":\"SAFETY\"},\"usageMetadata\":"
                   "{\"promptTokenCount\":7,\"totalTokenCount\":7}}"),
            NULL);
    }
    if (s.malformed)
        return send_text(c, 200, "text/html", "<html><body>502 upstream hiccup</body></html>", 45,
                         NULL);
    if (s.missing)
        return send_json(c, 200, jparse("{\"id\":\"fake-without-the-answer\"}"), NULL);

    char reply[700];
    reply_text(v, &s, reply, sizeof reply);
    const char *text = s.echo && echo ? echo : reply;
    int in_tokens = count_words(s.text) + 3, out_tokens = s.tool ? 5 : count_words(text);
    if (s.zero_usage)
        in_tokens = out_tokens = 0;
    if (stream) {
        sse body = {0};
        stream_answer(v, model, &s, text, in_tokens, out_tokens, &body);
        if (s.stream_gap_ms > 0 || s.stream_drop)
            return send_paced(c, &body, s.stream_gap_ms, s.stream_drop);
        enum MHD_Result r =
            send_text(c, 200, "text/event-stream", body.data ? body.data : "", body.len, NULL);
        free(body.data);
        return r;
    }
    json_object *o = answer(v, model, &s, text, in_tokens, out_tokens);
    if (s.truncated) {
        size_t len;
        const char *t = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
        enum MHD_Result r = send_text(c, 200, "application/json", t, len / 2, NULL);
        json_object_put(o);
        return r;
    }
    return send_json(c, 200, o, NULL);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    (void)cls, (void)version;
    req_ctx *rc = *con_cls;
    if (!rc) {
        rc = calloc(1, sizeof *rc);
        if (!rc)
            return MHD_NO;
        *con_cls = rc;
        return MHD_YES;
    }
    if (*upload_size) {
        if (rc->len + *upload_size > (8u << 20)) {
            rc->too_big = 1;
        } else {
            char *p = realloc(rc->body, rc->len + *upload_size + 1);
            if (!p)
                return MHD_NO;
            memcpy(p + rc->len, upload, *upload_size);
            rc->body = p;
            rc->len += *upload_size;
            rc->body[rc->len] = '\0';
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/_stats") == 0 && strcmp(method, "GET") == 0) {
        char out[200];
        pthread_mutex_lock(&stats_mu);
        int n = snprintf(out, sizeof out,
                         "{\"connections\":%ld,\"vendor_connections\":%ld,\"requests\":%ld}\n",
                         n_connections, n_vendor_connections, n_requests);
        pthread_mutex_unlock(&stats_mu);
        return send_text(c, 200, "application/json", out, (size_t)n, NULL);
    }
    if (strcmp(url, "/_reset") == 0 && strcmp(method, "POST") == 0) {
        pthread_mutex_lock(&stats_mu);
        n_connections = n_vendor_connections = n_requests = 0;
        pthread_mutex_unlock(&stats_mu);
        return send_text(c, 200, "application/json", "{}\n", 3, NULL);
    }
    enum vendor v;
    if (strcmp(url, "/v1/chat/completions") == 0)
        v = OPENAI;
    else if (strcmp(url, "/v1/messages") == 0)
        v = ANTHROPIC;
    else if (strncmp(url, "/v1beta/models/", 15) == 0)
        v = GEMINI;
    else
        return send_text(c, 404, "text/plain", "not found\n", 10, NULL);
    if (strcmp(method, "POST") != 0)
        return send_error(c, v, 405, NULL, NULL, "fake_vendor: method must be POST, not %s",
                          method);
    if (rc->too_big)
        return send_error(c, v, 413, NULL, NULL, "fake_vendor: body too large");
    return vendor_request(c, v, url, rc);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    req_ctx *rc = *con_cls;
    if (rc) {
        free(rc->body);
        free(rc);
        *con_cls = NULL;
    }
}

static void notify_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                              enum MHD_ConnectionNotificationCode code)
{
    (void)cls, (void)c;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = calloc(1, sizeof(conn_ctx));
        pthread_mutex_lock(&stats_mu);
        n_connections++;
        pthread_mutex_unlock(&stats_mu);
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        free(*socket_context);
        *socket_context = NULL;
    }
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[4096];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *p = realloc(buf, cap);
            if (!p) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: fake_vendor [--openai-key K] [--anthropic-key K] [--gemini-key K] "
                    "[--delay-ms N] [--cert PEM --key PEM]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *cert_path = NULL, *key_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            return usage();
        const char *a = argv[i], *val = argv[++i];
        if (strcmp(a, "--openai-key") == 0)
            keys[OPENAI] = val;
        else if (strcmp(a, "--anthropic-key") == 0)
            keys[ANTHROPIC] = val;
        else if (strcmp(a, "--gemini-key") == 0)
            keys[GEMINI] = val;
        else if (strcmp(a, "--delay-ms") == 0)
            delay_ms = atol(val);
        else if (strcmp(a, "--cert") == 0)
            cert_path = val;
        else if (strcmp(a, "--key") == 0)
            key_path = val;
        else
            return usage();
    }
    if (!!cert_path != !!key_path)
        return usage();

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: the stdin read below returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char *cert = NULL, *key = NULL;
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    if (cert_path) {
        cert = slurp(cert_path);
        key = slurp(key_path);
        if (!cert || !key) {
            fprintf(stderr, "fake_vendor: cannot read %s or %s\n", cert_path, key_path);
            return 1;
        }
        flags |= MHD_USE_TLS;
    }
    struct MHD_Daemon *d;
    if (cert)
        d = MHD_start_daemon(flags, 0, NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &addr,
                             MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                             MHD_OPTION_NOTIFY_CONNECTION, notify_connection, NULL,
                             MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_HTTPS_MEM_KEY, key,
                             MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_END);
    else
        d = MHD_start_daemon(flags, 0, NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &addr,
                             MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                             MHD_OPTION_NOTIFY_CONNECTION, notify_connection, NULL,
                             MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "fake_vendor: cannot start the server\n");
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("port %u\n", info ? (unsigned)info->port : 0u);
    fflush(stdout);

    char buf[256];
    while (!stop_flag) {
        ssize_t n = read(0, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EINTR))
            break;
    }
    MHD_stop_daemon(d);
    free(cert);
    free(key);
    return 0;
}
