/* openai: chat completions over the OpenAI API (POST {base_url}/chat/completions with
 * `Authorization: Bearer KEY`).  Works as is with compatible servers (Ollama's
 * http://localhost:11434/v1, vLLM, LiteLLM...): set base_url, and api_key_env: "" when
 * the server wants no key.
 *
 * Wire mapping: the normalized request's `system` becomes a leading system message;
 * assistant tool_calls become {id, type: function, function: {name, arguments: JSON
 * text}}; tool results are role "tool" messages; tools become function tools.
 * Streaming asks for `stream: true` with stream_options.include_usage and reads
 * `data: {...}` chunks up to `data: [DONE]`. */
#include <stddef.h>
#include <stdint.h>

#include <fluxroute/plugin.h>

#define FR_PLUGIN_UTIL_JSON
#include "plugin_util.h"
#include "provider_util.h"

typedef struct openai_config {
    pv_config common;
} openai_config;

static const fr_option openai_options[] = {
    PV_COMMON_OPTIONS(openai_config, "https://api.openai.com/v1", "OPENAI_API_KEY"),
    {NULL, 0, NULL, 0, 0, NULL, 0},
};

/* One normalized message as an OpenAI message. */
static json_object *openai_message(json_object *m)
{
    int bad = 0;
    json_object *o = json_object_new_object();
    const char *role = pv_str(m, "role");
    json_object *tcs = pv_get(m, "tool_calls", json_type_array);
    pv_add(&bad, o, "role", json_object_new_string(role));
    if (strcmp(role, "assistant") == 0 && tcs && json_object_array_length(tcs) > 0) {
        /* content may be null next to tool calls */
        const char *c = pv_str(m, "content");
        if (!bad && json_object_object_add(o, "content", c ? json_object_new_string(c) : NULL) != 0)
            bad = 1;
        json_object *calls = json_object_new_array();
        for (size_t i = 0; !bad && i < json_object_array_length(tcs); i++) {
            json_object *tc = json_object_array_get_idx(tcs, i), *args = NULL;
            json_object *call = json_object_new_object(), *fn = json_object_new_object();
            json_object_object_get_ex(tc, "arguments", &args);
            pv_add(&bad, call, "id", pv_string(pv_str(tc, "id")));
            pv_add(&bad, call, "type", json_object_new_string("function"));
            pv_add(&bad, fn, "name", pv_string(pv_str(tc, "name")));
            pv_add(&bad, fn, "arguments", pv_json_as_string(args));
            pv_add(&bad, call, "function", fn);
            pv_append(&bad, calls, call);
        }
        pv_add(&bad, o, "tool_calls", calls);
    } else {
        pv_add(&bad, o, "content", json_object_new_string(pv_content(m)));
    }
    if (strcmp(role, "tool") == 0)
        pv_add(&bad, o, "tool_call_id", pv_string(pv_str(m, "tool_call_id")));
    if (bad) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static fr_status openai_build(const pv_state *s, fr_call *call, json_object *req, const char *model,
                              int stream, json_object **body, char *path, size_t path_size)
{
    int bad = 0;
    json_object *b = json_object_new_object(), *msgs = json_object_new_array();
    json_object *in = pv_get(req, "messages", json_type_array);
    pv_add(&bad, b, "model", json_object_new_string(model));
    const char *system = pv_str(req, "system");
    if (system) {
        json_object *m = json_object_new_object();
        pv_add(&bad, m, "role", json_object_new_string("system"));
        pv_add(&bad, m, "content", json_object_new_string(system));
        pv_append(&bad, msgs, m);
    }
    for (size_t i = 0; !bad && i < json_object_array_length(in); i++)
        pv_append(&bad, msgs, openai_message(json_object_array_get_idx(in, i)));
    pv_add(&bad, b, "messages", msgs);
    pv_copy(&bad, b, "max_tokens", req, "max_tokens");
    pv_copy(&bad, b, "temperature", req, "temperature");
    json_object *stop = pv_stop_array(req);
    if (stop)
        pv_add(&bad, b, "stop", stop);
    if (pv_wants_json(req))
        pv_copy(&bad, b, "response_format", req, "response_format");
    json_object *tools = pv_get(req, "tools", json_type_array);
    if (tools && json_object_array_length(tools) > 0) {
        json_object *out = json_object_new_array();
        for (size_t i = 0; !bad && i < json_object_array_length(tools); i++) {
            json_object *t = json_object_array_get_idx(tools, i);
            json_object *tool = json_object_new_object(), *fn = json_object_new_object();
            pv_add(&bad, tool, "type", json_object_new_string("function"));
            pv_copy(&bad, fn, "name", t, "name");
            pv_copy(&bad, fn, "description", t, "description");
            pv_copy(&bad, fn, "parameters", t, "parameters");
            pv_add(&bad, tool, "function", fn);
            pv_append(&bad, out, tool);
        }
        pv_add(&bad, b, "tools", out);
    }
    if (stream) {
        json_object *so = json_object_new_object();
        pv_add(&bad, b, "stream", json_object_new_boolean(1));
        pv_add(&bad, so, "include_usage", json_object_new_boolean(1));
        pv_add(&bad, b, "stream_options", so);
    }
    if (bad) {
        json_object_put(b);
        return pv_nomem(s, call);
    }
    snprintf(path, path_size, "/chat/completions");
    *body = b;
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

static void openai_usage(pv_result *res, json_object *wire)
{
    json_object *u = pv_get(wire, "usage", json_type_object);
    if (u) {
        res->in_tokens = pv_int(u, "prompt_tokens");
        res->out_tokens = pv_int(u, "completion_tokens");
    }
}

static fr_status openai_parse(const pv_state *s, fr_call *call, const pj_doc *w, pv_result *res)
{
    int c0 = pj_at(w, pj_get(w, 0, "choices", PJ_ARRAY), 0);
    int msg = pj_get(w, c0, "message", PJ_OBJECT);
    if (msg < 0)
        return pv_fail(s, call, FR_E_BAD_RESPONSE, "answer has no choices[0].message");
    int text = pj_get(w, msg, "content", PJ_STRING);
    int refusal = pj_get(w, msg, "refusal", PJ_STRING);
    if (text >= 0)
        pj_cstr(w, text, &res->text);
    else if (refusal >= 0)
        pj_cstr(w, refusal, &res->text);
    int tcs = pj_get(w, msg, "tool_calls", PJ_ARRAY);
    for (size_t i = 0, n = pj_count(w, tcs); i < n; i++) {
        int tc = pj_at(w, tcs, i), fn = pj_get(w, tc, "function", PJ_OBJECT);
        int name = pj_get(w, fn, "name", PJ_STRING), args = pj_get(w, fn, "arguments", PJ_STRING);
        if (name < 0 || args < 0)
            return pv_fail(s, call, FR_E_BAD_RESPONSE,
                           "tool_calls[%zu] lacks function.name or function.arguments", i);
        char *id_s = pj_strdup(w, pj_get(w, tc, "id", PJ_STRING));
        char *name_s = pj_strdup(w, name), *args_s = pj_strdup(w, args);
        json_object *entry =
            name_s && args_s ? pv_tool_call(res, id_s, name_s, NULL, args_s) : NULL;
        free(id_s);
        free(name_s);
        free(args_s);
        if (!entry)
            return pv_nomem(s, call);
    }
    char finish[32];
    if (pj_copy(w, pj_get(w, c0, "finish_reason", PJ_STRING), finish, sizeof finish))
        openai_finish(res, finish);
    if (refusal >= 0 && text < 0)
        pv_set(res->finish, sizeof res->finish, "content_filter");
    int u = pj_get(w, 0, "usage", PJ_OBJECT);
    if (u >= 0) {
        res->in_tokens = pj_int64(w, pj_get(w, u, "prompt_tokens", PJ_INT));
        res->out_tokens = pj_int64(w, pj_get(w, u, "completion_tokens", PJ_INT));
    }
    pj_copy(w, pj_get(w, 0, "model", PJ_STRING), res->model, sizeof res->model);
    return FR_OK;
}

static fr_status openai_event(const pv_state *s, fr_call *call, pv_result *res, const char *event,
                              const char *raw, json_object *data)
{
    (void)event;
    if (!data) {
        if (strcmp(raw, "[DONE]") == 0) {
            res->done = 1;
            return FR_OK;
        }
        return pv_fail(s, call, FR_E_BAD_RESPONSE, "stream chunk %zu is not JSON: \"%.40s\"",
                       res->chunks, raw);
    }
    if (pv_get(data, "error", json_type_object))
        return pv_error_object(s, call, data, 0);
    pv_set(res->model, sizeof res->model, pv_str(data, "model"));
    openai_usage(res, data); /* the last chunk (include_usage) carries it, with no choices */
    json_object *choices = pv_get(data, "choices", json_type_array);
    json_object *c0 = choices && json_object_array_length(choices) > 0
                          ? json_object_array_get_idx(choices, 0)
                          : NULL;
    if (!c0)
        return FR_OK;
    openai_finish(res, pv_str(c0, "finish_reason"));
    json_object *delta = pv_get(c0, "delta", json_type_object);
    const char *text = pv_str(delta, "content");
    fr_status st = text ? pv_delta(s, call, res, text, strlen(text)) : FR_OK;
    /* Tool calls arrive as fragments keyed by index: the first names the call, the
     * following ones carry pieces of the arguments text. */
    json_object *tcs = pv_get(delta, "tool_calls", json_type_array);
    for (size_t i = 0; st == FR_OK && tcs && i < json_object_array_length(tcs); i++) {
        json_object *tc = json_object_array_get_idx(tcs, i), *idx;
        json_object *fn = pv_get(tc, "function", json_type_object);
        int64_t index = (idx = pv_get(tc, "index", json_type_int)) ? json_object_get_int64(idx) : 0;
        size_t have = res->tool_calls ? json_object_array_length(res->tool_calls) : 0;
        json_object *entry = NULL;
        if (index >= 0 && (size_t)index < have)
            entry = json_object_array_get_idx(res->tool_calls, (size_t)index);
        else if (index == (int64_t)have)
            entry = pv_tool_call(res, pv_str(tc, "id"), pv_str(fn, "name"), NULL, "");
        else
            return pv_fail(s, call, FR_E_BAD_RESPONSE,
                           "stream chunk %zu: tool call index %lld out of order", res->chunks,
                           (long long)index);
        const char *frag = pv_str(fn, "arguments");
        if (!entry || (frag && pv_tool_args_append(entry, frag, strlen(frag)) != 0))
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
