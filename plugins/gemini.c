/* gemini: the Gemini API (POST {base_url}/v1beta/models/{model}:generateContent, or
 * :streamGenerateContent?alt=sse when streaming) with the key in `x-goog-api-key`.
 *
 * Wire mapping: `system` and system-role messages become systemInstruction; user turns
 * are role "user", assistant turns role "model"; assistant tool_calls become functionCall
 * parts and tool results functionResponse parts (named after the call they answer);
 * max_tokens, temperature, stop and response_format go into generationConfig; tools
 * become one functionDeclarations tool.  usageMetadata gives the usage; a prompt blocked
 * by safety settings (promptFeedback.blockReason, no candidates) fails with class
 * content_policy.  Gemini returns no tool-call ids: they are "call_N" (N from 1, in
 * order) unless the answer carries its own.  A stream ends with the chunk carrying
 * finishReason. */
#include <stddef.h>
#include <stdint.h>

#include <fluxroute/plugin.h>

#define FR_PLUGIN_UTIL_JSON
#include "plugin_util.h"
#include "provider_util.h"

typedef struct gemini_config {
    pv_config common;
} gemini_config;

static const fr_option gemini_options[] = {
    PV_COMMON_OPTIONS(gemini_config, "https://generativelanguage.googleapis.com", "GEMINI_API_KEY"),
    {NULL, 0, NULL, 0, 0, NULL, 0},
};

static json_object *text_part(const char *text)
{
    int bad = 0;
    json_object *p = json_object_new_object();
    pv_add(&bad, p, "text", json_object_new_string(text));
    if (bad) {
        json_object_put(p);
        return NULL;
    }
    return p;
}

/* The function name of the tool call `id` among the request's earlier messages. */
static const char *call_name(json_object *msgs, size_t before, const char *id)
{
    for (size_t i = before; i-- > 0;) {
        json_object *tcs =
            pv_get(json_object_array_get_idx(msgs, i), "tool_calls", json_type_array);
        for (size_t j = 0; tcs && j < json_object_array_length(tcs); j++) {
            json_object *tc = json_object_array_get_idx(tcs, j);
            if (strcmp(pv_str(tc, "id"), id) == 0)
                return pv_str(tc, "name");
        }
    }
    return id;
}

/* The parts of one normalized message. */
static json_object *message_parts(json_object *msgs, size_t i, int *bad)
{
    json_object *m = json_object_array_get_idx(msgs, i);
    json_object *parts = json_object_new_array();
    const char *role = pv_str(m, "role");
    if (strcmp(role, "tool") == 0) {
        /* functionResponse.response must be an object: a JSON object result as is,
         * anything else wrapped as {"content": text}. */
        const char *text = pv_content(m);
        char err[200];
        json_object *resp = pu_json_parse(text, strlen(text), err, sizeof err);
        if (!json_object_is_type(resp, json_type_object)) {
            json_object_put(resp);
            resp = json_object_new_object();
            pv_add(bad, resp, "content", json_object_new_string(text));
        }
        json_object *fr = json_object_new_object(), *p = json_object_new_object();
        pv_add(bad, fr, "name", pv_string(call_name(msgs, i, pv_str(m, "tool_call_id"))));
        pv_add(bad, fr, "response", resp);
        pv_add(bad, p, "functionResponse", fr);
        pv_append(bad, parts, p);
        return parts;
    }
    const char *text = pv_str(m, "content");
    json_object *tcs = pv_get(m, "tool_calls", json_type_array);
    size_t ncalls = tcs ? json_object_array_length(tcs) : 0;
    if ((text && *text) || ncalls == 0)
        pv_append(bad, parts, text_part(text ? text : ""));
    for (size_t j = 0; !*bad && j < ncalls; j++) {
        json_object *tc = json_object_array_get_idx(tcs, j), *args = NULL, *fc, *p;
        json_object_object_get_ex(tc, "arguments", &args);
        char err[200];
        json_object *a =
            json_object_is_type(args, json_type_string)
                ? pu_json_parse(json_object_get_string(args),
                                (size_t)json_object_get_string_len(args), err, sizeof err)
                : json_object_get(args);
        if (!json_object_is_type(a, json_type_object)) {
            json_object_put(a);
            a = json_object_new_object();
        }
        fc = json_object_new_object();
        p = json_object_new_object();
        pv_add(bad, fc, "name", pv_string(pv_str(tc, "name")));
        pv_add(bad, fc, "args", a);
        pv_add(bad, p, "functionCall", fc);
        pv_append(bad, parts, p);
    }
    return parts;
}

/* Model names go into the URL path: letters, digits and ".-_" only. */
static int model_ok(const char *m)
{
    return *m && strspn(m, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") ==
                     strlen(m);
}

static fr_status gemini_build(const pv_state *s, fr_call *call, json_object *req, const char *model,
                              int stream, json_object **body, char *path, size_t path_size)
{
    if (strncmp(model, "models/", 7) == 0)
        model += 7;
    if (!model_ok(model))
        return pv_fail(s, call, FR_E_BAD_REQUEST,
                       "model name \"%.80s\" may hold only letters, digits, '.', '-' and '_'",
                       model);
    int bad = 0;
    json_object *b = json_object_new_object(), *contents = json_object_new_array();
    json_object *msgs = pv_get(req, "messages", json_type_array);
    json_object *sys_parts = json_object_new_array();
    const char *sys = pv_str(req, "system");
    if (sys)
        pv_append(&bad, sys_parts, text_part(sys));
    for (size_t i = 0; !bad && i < json_object_array_length(msgs); i++) {
        json_object *m = json_object_array_get_idx(msgs, i);
        const char *role = pv_str(m, "role");
        if (strcmp(role, "system") == 0) {
            pv_append(&bad, sys_parts, text_part(pv_content(m)));
            continue;
        }
        json_object *c = json_object_new_object();
        pv_add(&bad, c, "role",
               json_object_new_string(strcmp(role, "assistant") == 0 ? "model" : "user"));
        pv_add(&bad, c, "parts", message_parts(msgs, i, &bad));
        pv_append(&bad, contents, c);
    }
    pv_add(&bad, b, "contents", contents);
    if (sys_parts && json_object_array_length(sys_parts) > 0) {
        json_object *si = json_object_new_object();
        pv_add(&bad, si, "parts", sys_parts);
        pv_add(&bad, b, "systemInstruction", si);
    } else {
        json_object_put(sys_parts);
    }
    json_object *gc = json_object_new_object();
    pv_copy(&bad, gc, "maxOutputTokens", req, "max_tokens");
    pv_copy(&bad, gc, "temperature", req, "temperature");
    json_object *stop = pv_stop_array(req);
    if (stop)
        pv_add(&bad, gc, "stopSequences", stop);
    if (pv_wants_json(req))
        pv_add(&bad, gc, "responseMimeType", json_object_new_string("application/json"));
    if (gc && json_object_object_length(gc) > 0)
        pv_add(&bad, b, "generationConfig", gc);
    else
        json_object_put(gc);
    json_object *tools = pv_get(req, "tools", json_type_array);
    if (tools && json_object_array_length(tools) > 0) {
        json_object *decls = json_object_new_array(), *tool = json_object_new_object();
        json_object *list = json_object_new_array();
        for (size_t i = 0; !bad && i < json_object_array_length(tools); i++) {
            json_object *t = json_object_array_get_idx(tools, i);
            json_object *d = json_object_new_object();
            pv_copy(&bad, d, "name", t, "name");
            pv_copy(&bad, d, "description", t, "description");
            pv_copy(&bad, d, "parameters", t, "parameters");
            pv_append(&bad, decls, d);
        }
        pv_add(&bad, tool, "functionDeclarations", decls);
        pv_append(&bad, list, tool);
        pv_add(&bad, b, "tools", list);
    }
    if (bad) {
        json_object_put(b);
        return pv_nomem(s, call);
    }
    snprintf(path, path_size, "/v1beta/models/%s:%s", model,
             stream ? "streamGenerateContent?alt=sse" : "generateContent");
    *body = b;
    return FR_OK;
}

static void gemini_finish(pv_result *res, const char *reason)
{
    static const char *const map[][2] = {
        {"STOP", "stop"},
        {"MAX_TOKENS", "length"},
        {"SAFETY", "content_filter"},
        {"RECITATION", "content_filter"},
        {"BLOCKLIST", "content_filter"},
        {"PROHIBITED_CONTENT", "content_filter"},
        {"SPII", "content_filter"},
        {"IMAGE_SAFETY", "content_filter"},
        {"MALFORMED_FUNCTION_CALL", "error"},
    };
    if (!reason || strcmp(reason, "FINISH_REASON_UNSPECIFIED") == 0)
        return;
    char low[32];
    size_t n = 0;
    for (; reason[n] && n + 1 < sizeof low; n++)
        low[n] = (char)tolower((unsigned char)reason[n]);
    low[n] = '\0';
    const char *to = low;
    for (size_t i = 0; i < PU_COUNT(map); i++)
        if (strcmp(reason, map[i][0]) == 0)
            to = map[i][1];
    pv_set(res->finish, sizeof res->finish, to);
}

/* Reads one GenerateContentResponse (a whole answer, or one stream chunk).  Text goes
 * through pv_delta when streaming.  Sets *final when the chunk has a finishReason. */
static fr_status gemini_chunk(const pv_state *s, fr_call *call, json_object *wire, pv_result *res,
                              int stream, int *final)
{
    json_object *cands = pv_get(wire, "candidates", json_type_array);
    json_object *um = pv_get(wire, "usageMetadata", json_type_object);
    pv_set(res->model, sizeof res->model, pv_str(wire, "modelVersion"));
    if (um) {
        res->in_tokens = pv_int(um, "promptTokenCount");
        res->out_tokens = pv_int(um, "candidatesTokenCount");
    }
    if (!cands || json_object_array_length(cands) == 0) {
        const char *block = pv_str(pv_get(wire, "promptFeedback", json_type_object), "blockReason");
        if (block)
            return pv_fail(s, call, FR_E_CONTENT_POLICY, "prompt blocked (blockReason %s)", block);
        if (stream && um)
            return FR_OK; /* a usage-only chunk */
        return pv_fail(s, call, FR_E_BAD_RESPONSE, "answer has no candidates");
    }
    json_object *c0 = json_object_array_get_idx(cands, 0);
    json_object *parts = pv_get(pv_get(c0, "content", json_type_object), "parts", json_type_array);
    const char *finish = pv_str(c0, "finishReason");
    if (!parts && !finish)
        return pv_fail(s, call, FR_E_BAD_RESPONSE,
                       "candidates[0] has neither content.parts nor finishReason");
    fr_status st = FR_OK;
    for (size_t i = 0; st == FR_OK && parts && i < json_object_array_length(parts); i++) {
        json_object *p = json_object_array_get_idx(parts, i), *fc;
        const char *text = pv_str(p, "text");
        json_object *thought = pv_get(p, "thought", json_type_boolean);
        if (thought && json_object_get_boolean(thought))
            continue; /* thought summaries are not part of the answer */
        if (text && stream)
            st = pv_delta(s, call, res, text, strlen(text));
        else if (text)
            pv_text(res, text, strlen(text));
        else if ((fc = pv_get(p, "functionCall", json_type_object))) {
            json_object *args = pv_get(fc, "args", json_type_object), *empty = NULL;
            char id[32];
            size_t n = res->tool_calls ? json_object_array_length(res->tool_calls) : 0;
            snprintf(id, sizeof id, "call_%zu", n + 1);
            if (!pv_str(fc, "name"))
                return pv_fail(s, call, FR_E_BAD_RESPONSE, "functionCall without a name");
            if (!args)
                args = empty = json_object_new_object();
            json_object *tc = pv_tool_call(res, pv_str(fc, "id") ? pv_str(fc, "id") : id,
                                           pv_str(fc, "name"), args, NULL);
            json_object_put(empty);
            if (!tc)
                return pv_nomem(s, call);
        }
    }
    if (finish) {
        gemini_finish(res, finish);
        *final = 1;
        /* Gemini says STOP after function calls; the normalized reason is tool_calls. */
        if (strcmp(res->finish, "stop") == 0 && res->tool_calls &&
            json_object_array_length(res->tool_calls) > 0)
            pv_set(res->finish, sizeof res->finish, "tool_calls");
    }
    return st;
}

static fr_status gemini_parse(const pv_state *s, fr_call *call, const pj_doc *w, pv_result *res)
{
    /* A whole answer is one stream chunk's shape: read through the same code. */
    char err[200];
    json_object *wire = pu_json_parse(w->text, w->len, err, sizeof err);
    if (!wire)
        return pv_nomem(s, call);
    int final = 0;
    fr_status st = gemini_chunk(s, call, wire, res, 0, &final);
    json_object_put(wire);
    return st;
}

static fr_status gemini_event(const pv_state *s, fr_call *call, pv_result *res, const char *event,
                              const char *raw, json_object *data)
{
    (void)event;
    if (!data)
        return pv_fail(s, call, FR_E_BAD_RESPONSE, "stream chunk %zu is not JSON: \"%.40s\"",
                       res->chunks, raw);
    if (pv_get(data, "error", json_type_object))
        return pv_error_object(s, call, data, 0);
    return gemini_chunk(s, call, data, res, 1, &res->done);
}

static const pv_vendor gemini_vendor = {
    .name = "gemini",
    .build = gemini_build,
    .parse = gemini_parse,
    .event = gemini_event,
};

static fr_status gemini_init(const fr_host_api *host, const void *config, void **state)
{
    const gemini_config *cfg = config;
    return pv_init(host, &gemini_vendor, &cfg->common, "x-goog-api-key: %s", NULL, state);
}

static const fr_plugin gemini_plugin = {
    .abi_version = FR_ABI_VERSION,
    .struct_size = sizeof(fr_plugin),
    .kind = FR_PLUGIN_PROVIDER,
    .name = "gemini",
    .version = "1.0.0",
    .description = "Google Gemini API (generateContent)",
    .options = gemini_options,
    .config_size = sizeof(gemini_config),
    .init = gemini_init,
    .fini = pv_fini,
    .complete = pv_complete_whole,
    .complete_stream = pv_complete_stream,
};

FR_PLUGIN_EXPORT const fr_plugin *fluxroute_plugin_v1(void)
{
    return &gemini_plugin;
}
