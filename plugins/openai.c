/* openai: chat completions over the OpenAI API (POST {base_url}/chat/completions with
 * `Authorization: Bearer KEY`).  Works as is with compatible servers (Ollama's
 * http://localhost:11434/v1, vLLM, LiteLLM...): set base_url, and api_key_env: "" when
 * the server wants no key.
 *
 * Wire mapping: the normalized request's `system` becomes a leading system message;
 * developer messages, content parts (text, image_url with data: or https URLs and
 * detail), top_p, seed, user, response_format (json_object, json_schema) and tool_choice
 * ({"name"} as {type: function, function: {name}}) go as OpenAI has them (ABI 1.2);
 * assistant tool_calls become {id, type: function, function: {name, arguments: JSON
 * text}}; tool results are role "tool" messages; tools become function tools.
 * Streaming asks for `stream: true` with stream_options.include_usage and reads
 * `data: {...}` chunks up to `data: [DONE]`. */
#include <stddef.h>
#include <stdint.h>

#include <fluxroute/plugin.h>

#include "plugin_util.h"
#include "provider_util.h"

typedef struct openai_config {
    pv_config common;
} openai_config;

static const fr_option openai_options[] = {
    PV_COMMON_OPTIONS(openai_config, "https://api.openai.com/v1", "OPENAI_API_KEY"),
    {NULL, 0, NULL, 0, 0, NULL, 0},
};

/* Writes content parts token content (checked: text and image_url parts) as OpenAI's
 * content array, each part with only the members OpenAI documents. */
static void openai_parts(frk_buf *o, const frk_json_doc *d, int content)
{
    frk_buf_lit(o, "[");
    for (int p = frk_json_first(d, content); p >= 0; p = frk_json_next(d, content, p)) {
        pv_sep(o);
        if (pv_is(d, frk_json_get(d, p, "type", FRK_JSON_STRING), "text")) {
            pv_put_text_block(o, d, p);
            continue;
        }
        int iu = frk_json_get(d, p, "image_url", FRK_JSON_OBJECT);
        frk_buf_lit(o, "{\"type\":\"image_url\",\"image_url\":{\"url\":");
        pv_put_text(o, d, frk_json_get(d, iu, "url", FRK_JSON_STRING));
        pv_put_member(o, "detail", d, iu, "detail");
        frk_buf_lit(o, "}}");
    }
    frk_buf_lit(o, "]");
}

/* Writes message content token c: parts as parts, a string as is, else `otherwise`. */
static void openai_content(frk_buf *o, const frk_json_doc *d, int c, const char *otherwise)
{
    if (pv_has_parts(d, c))
        openai_parts(o, d, c);
    else if (frk_json_type_of(d, c) == FRK_JSON_STRING && c >= 0)
        pv_put_text(o, d, c);
    else
        frk_buf_append(o, otherwise, strlen(otherwise));
}

/* Writes normalized message m as an OpenAI message (developer stays developer: OpenAI
 * has the role). */
static void openai_message(frk_buf *o, const frk_json_doc *d, int m)
{
    int role = frk_json_get(d, m, "role", FRK_JSON_STRING),
        tcs = frk_json_get(d, m, "tool_calls", FRK_JSON_ARRAY);
    pv_sep(o);
    frk_buf_lit(o, "{\"role\":");
    pv_put_text(o, d, role);
    if (pv_is(d, role, "assistant") && frk_json_first(d, tcs) >= 0) {
        /* content may be null next to tool calls */
        frk_buf_lit(o, ",\"content\":");
        openai_content(o, d, frk_json_member(d, m, "content"), "null");
        frk_buf_lit(o, ",\"tool_calls\":[");
        for (int tc = frk_json_first(d, tcs); tc >= 0; tc = frk_json_next(d, tcs, tc)) {
            pv_sep(o);
            frk_buf_lit(o, "{\"id\":");
            pv_put_text(o, d, frk_json_get(d, tc, "id", FRK_JSON_STRING));
            frk_buf_lit(o, ",\"type\":\"function\",\"function\":{\"name\":");
            pv_put_text(o, d, frk_json_get(d, tc, "name", FRK_JSON_STRING));
            /* arguments travel as JSON text: a string is taken as that text already */
            int args = frk_json_member(d, tc, "arguments");
            frk_buf_lit(o, ",\"arguments\":");
            if (frk_json_type_of(d, args) == FRK_JSON_STRING) {
                frk_json_put_value(o, d, args);
            } else if (args < 0 || frk_json_type_of(d, args) == FRK_JSON_NULL) {
                frk_buf_lit(o, "\"{}\"");
            } else {
                frk_buf text = {0};
                frk_json_put_value(&text, d, args);
                if (text.oom)
                    o->oom = 1;
                frk_json_put_string(o, text.data ? text.data : "", text.len);
                frk_buf_free(&text);
            }
            frk_buf_lit(o, "}}");
        }
        frk_buf_lit(o, "]");
    } else {
        frk_buf_lit(o, ",\"content\":");
        openai_content(o, d, frk_json_member(d, m, "content"), "\"\"");
    }
    if (pv_is(d, role, "tool")) {
        frk_buf_lit(o, ",\"tool_call_id\":");
        pv_put_text(o, d, frk_json_get(d, m, "tool_call_id", FRK_JSON_STRING));
    }
    frk_buf_lit(o, "}");
}

static fr_status openai_build(const pv_state *s, fr_call *call, const frk_json_doc *req,
                              const char *model, int stream, frk_buf *b, char *path,
                              size_t path_size)
{
    (void)s, (void)call;
    frk_buf_lit(b, "{\"model\":");
    frk_json_put_cstr(b, model);
    frk_buf_lit(b, ",\"messages\":[");
    int system = frk_json_get(req, 0, "system", FRK_JSON_STRING);
    if (system >= 0) {
        frk_buf_lit(b, "{\"role\":\"system\",\"content\":");
        pv_put_text(b, req, system);
        frk_buf_lit(b, "}");
    }
    int msgs = frk_json_get(req, 0, "messages", FRK_JSON_ARRAY);
    for (int m = frk_json_first(req, msgs); m >= 0; m = frk_json_next(req, msgs, m))
        openai_message(b, req, m);
    frk_buf_lit(b, "]");
    pv_put_member(b, "max_tokens", req, 0, "max_tokens");
    pv_put_member(b, "temperature", req, 0, "temperature");
    pv_put_member(b, "top_p", req, 0, "top_p");
    pv_put_member(b, "seed", req, 0, "seed");
    pv_put_stop(b, "stop", req);
    int schema;
    if (pv_wants_json(req)) {
        pv_put_member(b, "response_format", req, 0, "response_format");
    } else if (pv_wants_schema(req, &schema)) {
        /* the normalized form is OpenAI's: written member by member */
        frk_buf_lit(b, ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{");
        pv_put_member(b, "name", req, schema, "name");
        pv_put_member(b, "description", req, schema, "description");
        pv_put_member(b, "schema", req, schema, "schema");
        pv_put_member(b, "strict", req, schema, "strict");
        frk_buf_lit(b, "}}");
    }
    pv_put_tools(b, req, ",\"tools\":[", "{\"type\":\"function\",\"function\":{", "}}", "]");
    int tc = pv_tool_choice(req);
    if (frk_json_type_of(req, tc) == FRK_JSON_OBJECT && tc >= 0) {
        frk_buf_lit(b, ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":");
        pv_put_text(b, req, frk_json_get(req, tc, "name", FRK_JSON_STRING));
        frk_buf_lit(b, "}}");
    } else if (tc >= 0) {
        pv_put_member(b, "tool_choice", req, 0, "tool_choice");
    }
    pv_put_member(b, "user", req, 0, "user");
    if (stream)
        frk_buf_lit(b, ",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
    frk_buf_lit(b, "}");
    pv_set(path, path_size, "/chat/completions");
    return FR_OK;
}

static void openai_finish(pv_result *res, const char *finish)
{
    if (!finish)
        return;
    /* The legacy function_call is a tool call too. */
    pv_set(res->finish, sizeof res->finish,
           strcmp(finish, "function_call") == 0 ? "tool_calls" : finish);
}

/* The usage object of a chunk or answer, when it has one. */
static void openai_usage(pv_result *res, const frk_json_doc *d)
{
    pv_usage(res, d, frk_json_get(d, 0, "usage", FRK_JSON_OBJECT), "prompt_tokens",
             "completion_tokens");
}

static fr_status openai_parse(const pv_state *s, fr_call *call, const frk_json_doc *w,
                              pv_result *res)
{
    int c0 = frk_json_first(w, frk_json_get(w, 0, "choices", FRK_JSON_ARRAY));
    int msg = frk_json_get(w, c0, "message", FRK_JSON_OBJECT);
    if (msg < 0)
        return pv_fail(s, call, FR_E_BAD_RESPONSE, "answer has no choices[0].message");
    int text = frk_json_get(w, msg, "content", FRK_JSON_STRING);
    int refusal = frk_json_get(w, msg, "refusal", FRK_JSON_STRING);
    pv_text(res, w, text >= 0 ? text : refusal);
    int tcs = frk_json_get(w, msg, "tool_calls", FRK_JSON_ARRAY);
    size_t i = 0;
    for (int tc = frk_json_first(w, tcs); tc >= 0; tc = frk_json_next(w, tcs, tc), i++) {
        int fn = frk_json_get(w, tc, "function", FRK_JSON_OBJECT);
        int name = frk_json_get(w, fn, "name", FRK_JSON_STRING),
            args = frk_json_get(w, fn, "arguments", FRK_JSON_STRING);
        if (name < 0 || args < 0)
            return pv_fail(s, call, FR_E_BAD_RESPONSE,
                           "tool_calls[%zu] lacks function.name or function.arguments", i);
        int64_t k = pv_tool_call(res, w, frk_json_get(w, tc, "id", FRK_JSON_STRING), name);
        if (k < 0 || pv_tool_args(res, k, w, args, 1) != 0)
            return pv_nomem(s, call);
    }
    char finish[32];
    if (frk_json_copy(w, frk_json_get(w, c0, "finish_reason", FRK_JSON_STRING), finish,
                      sizeof finish))
        openai_finish(res, finish);
    if (refusal >= 0 && text < 0)
        pv_set(res->finish, sizeof res->finish, "content_filter");
    openai_usage(res, w);
    frk_json_copy(w, frk_json_get(w, 0, "model", FRK_JSON_STRING), res->model, sizeof res->model);
    return FR_OK;
}

static fr_status openai_event(const pv_state *s, fr_call *call, pv_result *res, const char *event,
                              const char *raw, const frk_json_doc *d)
{
    (void)event;
    if (!d) {
        if (strcmp(raw, "[DONE]") == 0) {
            res->done = 1;
            return FR_OK;
        }
        return pv_fail(s, call, FR_E_BAD_RESPONSE, "stream chunk %zu is not JSON: \"%.40s\"",
                       res->chunks, raw);
    }
    if (frk_json_get(d, 0, "error", FRK_JSON_OBJECT) >= 0)
        return pv_error_object(s, call, d, 0);
    frk_json_copy(d, frk_json_get(d, 0, "model", FRK_JSON_STRING), res->model, sizeof res->model);
    openai_usage(res, d); /* the last chunk (include_usage) carries it, with no choices */
    int c0 = frk_json_first(d, frk_json_get(d, 0, "choices", FRK_JSON_ARRAY));
    if (c0 < 0)
        return FR_OK;
    char finish[32];
    if (frk_json_copy(d, frk_json_get(d, c0, "finish_reason", FRK_JSON_STRING), finish,
                      sizeof finish))
        openai_finish(res, finish);
    int delta = frk_json_get(d, c0, "delta", FRK_JSON_OBJECT);
    fr_status st =
        pv_delta_text(s, call, res, d, frk_json_get(d, delta, "content", FRK_JSON_STRING));
    /* Tool calls arrive as fragments keyed by index: the first names the call, the
     * following ones carry pieces of the arguments text. */
    int tcs = frk_json_get(d, delta, "tool_calls", FRK_JSON_ARRAY);
    for (int tc = frk_json_first(d, tcs); st == FR_OK && tc >= 0; tc = frk_json_next(d, tcs, tc)) {
        int fn = frk_json_get(d, tc, "function", FRK_JSON_OBJECT);
        int64_t index = frk_json_int64(d, frk_json_get(d, tc, "index", FRK_JSON_INT)), k;
        if (index >= 0 && (size_t)index < res->n_tools)
            k = index;
        else if (index == (int64_t)res->n_tools)
            k = pv_tool_call(res, d, frk_json_get(d, tc, "id", FRK_JSON_STRING),
                             frk_json_get(d, fn, "name", FRK_JSON_STRING));
        else
            return pv_fail(s, call, FR_E_BAD_RESPONSE,
                           "stream chunk %zu: tool call index %lld out of order", res->chunks,
                           (long long)index);
        if (k < 0 ||
            pv_tool_args(res, k, d, frk_json_get(d, fn, "arguments", FRK_JSON_STRING), 1) != 0)
            return pv_nomem(s, call);
    }
    return st;
}

static const pv_vendor openai_vendor = {
    .name = "openai",
    .build = openai_build,
    .parse = openai_parse,
    .event = openai_event,
};

static fr_status openai_init(const fr_host_api *host, const void *config, void **state)
{
    const openai_config *cfg = config;
    return pv_init(host, &openai_vendor, &cfg->common, "Authorization: Bearer %s", NULL, state);
}

static const fr_plugin openai_plugin = {
    .abi_version = FR_ABI_VERSION,
    .struct_size = sizeof(fr_plugin),
    .kind = FR_PLUGIN_PROVIDER,
    .name = "openai",
    .version = "1.0.0",
    .description = "OpenAI chat completions (and compatible servers such as Ollama)",
    .options = openai_options,
    .option_size = sizeof(fr_option), /* ABI 1.1: the row size, so rows may grow */
    .config_size = sizeof(openai_config),
    .init = openai_init,
    .fini = pv_fini,
    .complete = pv_complete_whole,
    .complete_stream = pv_complete_stream,
};

FR_PLUGIN_EXPORT const fr_plugin *fluxroute_plugin_v1(void)
{
    return &openai_plugin;
}
