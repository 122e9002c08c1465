/* gemini: the Gemini API (POST {base_url}/v1beta/models/{model}:generateContent, or
 * :streamGenerateContent?alt=sse when streaming) with the key in `x-goog-api-key`.
 *
 * Wire mapping: `system` and system-role messages become systemInstruction; user turns
 * are role "user", assistant turns role "model"; assistant tool_calls become functionCall
 * parts and tool results functionResponse parts (named after the call they answer);
 * max_tokens, temperature, stop and response_format go into generationConfig; tools
 * become one functionDeclarations tool.  ABI 1.2: developer messages join
 * systemInstruction; content parts become text parts, inlineData (base64 data: URLs) and
 * fileData (Files API URIs); top_p and seed go into generationConfig (topP, seed);
 * response_format json_schema sets responseMimeType and responseJsonSchema; tool_choice
 * becomes toolConfig.functionCallingConfig (auto AUTO, none NONE, required ANY, {name} ANY
 * with allowedFunctionNames).  Refused per the unsupported-field convention: user (no
 * such field), image detail other than auto, other image URLs.  usageMetadata gives the usage; a
 * prompt blocked by safety settings (promptFeedback.blockReason, no candidates) fails with class
 * content_policy.  Gemini returns no tool-call ids: they are "call_N" (N from 1, in
 * order) unless the answer carries its own.  A stream ends with the chunk carrying
 * finishReason. */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <strings.h>

#include <fluxroute/plugin.h>

#include "plugin_util.h"
#include "provider_util.h"

typedef struct gemini_config {
    pv_config common;
} gemini_config;

static const fr_option gemini_options[] = {
    PV_COMMON_OPTIONS(gemini_config, "https://generativelanguage.googleapis.com", "GEMINI_API_KEY"),
    {NULL, 0, NULL, 0, 0, NULL, 0},
};

/* Writes a text part {text} of string token tok ("" when tok is -1). */
static void text_part(frk_buf *o, const frk_json_doc *d, int tok)
{
    pv_sep(o);
    frk_buf_lit(o, "{\"text\":");
    pv_put_text(o, d, tok);
    frk_buf_lit(o, "}");
}

/* The function name (a string token) of the tool call `id` (a string token) among the
 * messages before message `before`; id itself when none matches. */
static int call_name(const frk_json_doc *d, int msgs, int before, int id)
{
    frk_buf want = {0};
    frk_json_cstr(d, id, &want);
    int name = id;
    /* the latest message before wins; within it, the first call with that id */
    for (int m = frk_json_first(d, msgs); m >= 0 && m < before; m = frk_json_next(d, msgs, m)) {
        int tcs = frk_json_get(d, m, "tool_calls", FRK_JSON_ARRAY);
        for (int tc = frk_json_first(d, tcs); tc >= 0; tc = frk_json_next(d, tcs, tc)) {
            if (pv_is(d, frk_json_get(d, tc, "id", FRK_JSON_STRING), want.data ? want.data : "")) {
                name = frk_json_get(d, tc, "name", FRK_JSON_STRING);
                break;
            }
        }
    }
    frk_buf_free(&want);
    return name;
}

/* Where Gemini reads files by URI: the Files API (an https URL under its host). */
#define GEMINI_FILES "https://generativelanguage.googleapis.com/"

/* The images generateContent cannot read: URLs outside the Files API. */
static fr_status gemini_image(const pv_state *s, fr_call *call, const pv_image *img, size_t i,
                              size_t j)
{
    if (img->is_data || strncasecmp(img->url.data, GEMINI_FILES, strlen(GEMINI_FILES)) == 0)
        return FR_OK;
    char field[96];
    snprintf(field, sizeof field, "messages[%zu].content[%zu].image_url", i, j);
    return pv_unsupported(s, call, field,
                          "gemini takes images inline (base64 data: URLs) or as Files API URIs "
                          "(" GEMINI_FILES "...), not other URLs");
}

/* Refuses what generateContent cannot take (ABI 1.2 fields): user, image detail other
 * than auto, data: URLs not in base64, https image URLs outside the Files API.  FR_OK or
 * FR_E_BAD_REQUEST per the unsupported-field convention. */
static fr_status gemini_check(const pv_state *s, fr_call *call, const frk_json_doc *req)
{
    int v = frk_json_member(req, 0, "user");
    if (v >= 0 && frk_json_type_of(req, v) != FRK_JSON_NULL)
        return pv_unsupported(s, call, "user",
                              "the gemini generateContent API has no end-user identifier");
    return pv_each_image(s, call, req, gemini_image);
}

/* Writes the parts of content token c (a string, or content parts checked by
 * gemini_check): text parts, inlineData for data: URLs, fileData for Files API URIs. */
static void content_parts(frk_buf *o, const frk_json_doc *d, int c)
{
    if (!pv_has_parts(d, c)) {
        text_part(o, d, frk_json_type_of(d, c) == FRK_JSON_STRING ? c : -1);
        return;
    }
    for (int p = frk_json_first(d, c); p >= 0; p = frk_json_next(d, c, p)) {
        if (pv_is(d, frk_json_get(d, p, "type", FRK_JSON_STRING), "text")) {
            text_part(o, d, frk_json_get(d, p, "text", FRK_JSON_STRING));
            continue;
        }
        pv_sep(o);
        pv_put_image(o, d, p, "{\"inlineData\":{\"mimeType\":", "{\"fileData\":{\"fileUri\":");
    }
}

/* System and developer messages become systemInstruction (Gemini has neither role). */
static int system_role(const frk_json_doc *d, int role)
{
    return pv_is(d, role, "system") || pv_is(d, role, "developer");
}

/* Writes the parts of normalized message m. */
static void message_parts(frk_buf *o, const frk_json_doc *d, int msgs, int m)
{
    int role = frk_json_get(d, m, "role", FRK_JSON_STRING),
        content = frk_json_member(d, m, "content");
    frk_buf_lit(o, "[");
    if (pv_is(d, role, "tool")) {
        /* functionResponse.response must be an object: a JSON object result as is,
         * anything else wrapped as {"content": text}. */
        frk_buf_lit(o, "{\"functionResponse\":{\"name\":");
        pv_put_text(o, d,
                    call_name(d, msgs, m, frk_json_get(d, m, "tool_call_id", FRK_JSON_STRING)));
        frk_buf_lit(o, ",\"response\":");
        frk_buf text = {0};
        frk_buf_lit(&text, "");
        pv_content_text(&text, d, content, "\n\n");
        frk_json_doc resp;
        char err[200];
        if (text.oom) {
            o->oom = 1;
        } else if (frk_json_scan_any(&resp, text.data, text.len, err, sizeof err) == 0 &&
                   frk_json_type_of(&resp, 0) == FRK_JSON_OBJECT) {
            frk_json_put_value(o, &resp, 0);
        } else {
            frk_buf_lit(o, "{\"content\":");
            frk_json_put_string(o, text.data, text.len);
            frk_buf_lit(o, "}");
        }
        frk_json_free(&resp);
        frk_buf_free(&text);
        frk_buf_lit(o, "}}]");
        return;
    }
    int tcs = frk_json_get(d, m, "tool_calls", FRK_JSON_ARRAY);
    if (pv_has_parts(d, content) ||
        (frk_json_type_of(d, content) == FRK_JSON_STRING && !pv_is(d, content, "")) ||
        frk_json_first(d, tcs) < 0)
        content_parts(o, d, content);
    for (int tc = frk_json_first(d, tcs); tc >= 0; tc = frk_json_next(d, tcs, tc)) {
        pv_sep(o);
        frk_buf_lit(o, "{\"functionCall\":{\"name\":");
        pv_put_text(o, d, frk_json_get(d, tc, "name", FRK_JSON_STRING));
        frk_buf_lit(o, ",\"args\":");
        pv_put_args_object(o, d, frk_json_member(d, tc, "arguments"));
        frk_buf_lit(o, "}}");
    }
    frk_buf_lit(o, "]");
}

/* Model names go into the URL path: letters, digits and ".-_" only. */
static int model_ok(const char *m)
{
    return *m && strspn(m, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") ==
                     strlen(m);
}

static fr_status gemini_build(const pv_state *s, fr_call *call, const frk_json_doc *req,
                              const char *model, int stream, frk_buf *b, char *path,
                              size_t path_size)
{
    if (strncmp(model, "models/", 7) == 0)
        model += 7;
    if (!model_ok(model))
        return pv_fail(s, call, FR_E_BAD_REQUEST,
                       "model name \"%.80s\" may hold only letters, digits, '.', '-' and '_'",
                       model);
    fr_status st = gemini_check(s, call, req);
    if (st != FR_OK)
        return st;
    int msgs = frk_json_get(req, 0, "messages", FRK_JSON_ARRAY), any_system = 0;
    frk_buf_lit(b, "{\"contents\":[");
    for (int m = frk_json_first(req, msgs); m >= 0; m = frk_json_next(req, msgs, m)) {
        int role = frk_json_get(req, m, "role", FRK_JSON_STRING);
        if (system_role(req, role)) {
            any_system = 1;
            continue;
        }
        pv_sep(b);
        if (pv_is(req, role, "assistant"))
            frk_buf_lit(b, "{\"role\":\"model\",\"parts\":");
        else
            frk_buf_lit(b, "{\"role\":\"user\",\"parts\":");
        message_parts(b, req, msgs, m);
        frk_buf_lit(b, "}");
    }
    frk_buf_lit(b, "]");
    /* `system` and every system message become systemInstruction's parts. */
    int sys = frk_json_get(req, 0, "system", FRK_JSON_STRING);
    if (sys >= 0 || any_system) {
        frk_buf_lit(b, ",\"systemInstruction\":{\"parts\":[");
        if (sys >= 0)
            text_part(b, req, sys);
        for (int m = frk_json_first(req, msgs); m >= 0; m = frk_json_next(req, msgs, m))
            if (system_role(req, frk_json_get(req, m, "role", FRK_JSON_STRING)))
                content_parts(b, req, frk_json_member(req, m, "content"));
        frk_buf_lit(b, "]}");
    }
    size_t gc_at = b->len;
    frk_buf_lit(b, ",\"generationConfig\":{");
    size_t gc_empty = b->len;
    pv_put_member(b, "maxOutputTokens", req, 0, "max_tokens");
    pv_put_member(b, "temperature", req, 0, "temperature");
    pv_put_member(b, "topP", req, 0, "top_p");
    pv_put_member(b, "seed", req, 0, "seed");
    pv_put_stop(b, "stopSequences", req);
    int schema, wants_schema = pv_wants_schema(req, &schema);
    if (pv_wants_json(req) || wants_schema) {
        pv_key(b, "responseMimeType");
        frk_buf_lit(b, "\"application/json\"");
    }
    if (wants_schema) /* JSON Schema as is (responseJsonSchema, not the OpenAPI subset) */
        pv_put_member(b, "responseJsonSchema", req, schema, "schema");
    if (b->len == gc_empty && !b->oom) /* nothing to configure: no generationConfig */
        b->len = gc_at;
    else
        frk_buf_lit(b, "}");
    pv_put_tools(b, req, ",\"tools\":[{\"functionDeclarations\":[", "{", "}", "]}]");
    /* tool_choice: auto AUTO, none NONE, required ANY, {"name"} ANY limited to it */
    int tc = pv_tool_choice(req);
    if (tc >= 0) {
        frk_buf_lit(b, ",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":");
        if (frk_json_type_of(req, tc) == FRK_JSON_OBJECT) {
            frk_buf_lit(b, "\"ANY\",\"allowedFunctionNames\":[");
            pv_put_text(b, req, frk_json_get(req, tc, "name", FRK_JSON_STRING));
            frk_buf_lit(b, "]");
        } else if (pv_is(req, tc, "required")) {
            frk_buf_lit(b, "\"ANY\"");
        } else if (pv_is(req, tc, "none")) {
            frk_buf_lit(b, "\"NONE\"");
        } else {
            frk_buf_lit(b, "\"AUTO\"");
        }
        frk_buf_lit(b, "}}");
    }
    frk_buf_lit(b, "}");
    snprintf(path, path_size, "/v1beta/models/%s:%s", model,
             stream ? "streamGenerateContent?alt=sse" : "generateContent");
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

/* Reads one GenerateContentResponse (a whole answer, or one stream chunk), scanned.  Text
 * goes through pv_delta when streaming.  Sets *final when the chunk has a finishReason. */
static fr_status gemini_chunk(const pv_state *s, fr_call *call, const frk_json_doc *w,
                              pv_result *res, int stream, int *final)
{
    int cands = frk_json_get(w, 0, "candidates", FRK_JSON_ARRAY);
    int um = frk_json_get(w, 0, "usageMetadata", FRK_JSON_OBJECT);
    frk_json_copy(w, frk_json_get(w, 0, "modelVersion", FRK_JSON_STRING), res->model,
                  sizeof res->model);
    pv_usage(res, w, um, "promptTokenCount", "candidatesTokenCount");
    int c0 = frk_json_first(w, cands);
    if (c0 < 0) {
        int block = frk_json_get(w, frk_json_get(w, 0, "promptFeedback", FRK_JSON_OBJECT),
                                 "blockReason", FRK_JSON_STRING);
        if (block >= 0) {
            frk_buf why = {0};
            frk_json_cstr(w, block, &why);
            fr_status st = why.oom ? pv_nomem(s, call)
                                   : pv_fail(s, call, FR_E_CONTENT_POLICY,
                                             "prompt blocked (blockReason %s)", why.data);
            frk_buf_free(&why);
            return st;
        }
        if (stream && um >= 0)
            return FR_OK; /* a usage-only chunk */
        return pv_fail(s, call, FR_E_BAD_RESPONSE, "answer has no candidates");
    }
    int parts =
        frk_json_get(w, frk_json_get(w, c0, "content", FRK_JSON_OBJECT), "parts", FRK_JSON_ARRAY);
    int finish = frk_json_get(w, c0, "finishReason", FRK_JSON_STRING);
    if (parts < 0 && finish < 0)
        return pv_fail(s, call, FR_E_BAD_RESPONSE,
                       "candidates[0] has neither content.parts nor finishReason");
    fr_status st = FR_OK;
    for (int p = frk_json_first(w, parts); st == FR_OK && p >= 0; p = frk_json_next(w, parts, p)) {
        int text = frk_json_get(w, p, "text", FRK_JSON_STRING), fc;
        if (frk_json_type_of(w, frk_json_member(w, p, "thought")) == FRK_JSON_TRUE)
            continue; /* thought summaries are not part of the answer */
        if (text >= 0 && stream) {
            st = pv_delta_text(s, call, res, w, text);
        } else if (text >= 0) {
            pv_text(res, w, text);
        } else if ((fc = frk_json_get(w, p, "functionCall", FRK_JSON_OBJECT)) >= 0) {
            int name = frk_json_get(w, fc, "name", FRK_JSON_STRING),
                id = frk_json_get(w, fc, "id", FRK_JSON_STRING);
            if (name < 0)
                return pv_fail(s, call, FR_E_BAD_RESPONSE, "functionCall without a name");
            int64_t k = pv_tool_call(res, w, id, name);
            if (k >= 0 && id < 0) { /* Gemini gives no ids: call_N, N from 1 */
                char gen[32];
                int n = snprintf(gen, sizeof gen, "call_%lld", (long long)k + 1);
                frk_buf_append(&res->tools[k].id, gen, (size_t)n);
                res->oom |= res->tools[k].id.oom;
            }
            if (k < 0 ||
                pv_tool_args(res, k, w, frk_json_get(w, fc, "args", FRK_JSON_OBJECT), 0) != 0)
                return pv_nomem(s, call);
        }
    }
    char reason[64];
    if (frk_json_copy(w, finish, reason, sizeof reason)) {
        gemini_finish(res, reason);
        *final = 1;
        /* Gemini says STOP after function calls; the normalized reason is tool_calls. */
        if (strcmp(res->finish, "stop") == 0 && res->n_tools > 0)
            pv_set(res->finish, sizeof res->finish, "tool_calls");
    }
    return st;
}

static fr_status gemini_parse(const pv_state *s, fr_call *call, const frk_json_doc *w,
                              pv_result *res)
{
    int final = 0; /* a whole answer is one stream chunk's shape */
    return gemini_chunk(s, call, w, res, 0, &final);
}

static fr_status gemini_event(const pv_state *s, fr_call *call, pv_result *res, const char *event,
                              const char *raw, const frk_json_doc *d)
{
    (void)event;
    if (!d)
        return pv_fail(s, call, FR_E_BAD_RESPONSE, "stream chunk %zu is not JSON: \"%.40s\"",
                       res->chunks, raw);
    if (frk_json_get(d, 0, "error", FRK_JSON_OBJECT) >= 0)
        return pv_error_object(s, call, d, 0);
    return gemini_chunk(s, call, d, res, 1, &res->done);
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
    .option_size = sizeof(fr_option), /* ABI 1.1: the row size, so rows may grow */
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
