/* anthropic: the Anthropic Messages API (POST {base_url}/v1/messages).
 *
 * Headers: the key in `x-api-key` (or `Authorization: Bearer` with auth: bearer, for
 * gateways), `anthropic-version` from the option `version`.  Wire mapping: `system` and
 * system-role messages join into the top-level `system`; max_tokens is always sent
 * (default_max_tokens when the request has none); stop becomes stop_sequences; assistant
 * tool_calls become tool_use blocks; tool results become tool_result blocks in a user
 * turn (consecutive results share one turn); tools carry input_schema.  ABI 1.2:
 * developer messages join `system` too; content parts become text blocks and image blocks
 * (a base64 source for data: URLs, a url source for https URLs); top_p as is;
 * tool_choice auto|none|required|{name} as {type: auto|none|any|tool, name}; user as
 * metadata.user_id.  Refused per the unsupported-field convention: seed and
 * response_format json_object/json_schema (the API has neither), image detail other than
 * auto, data: URLs not in base64 or not jpeg/png/gif/webp.  Streaming reads message_start,
 * content_block_start/delta/stop, message_delta and message_stop events. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <strings.h>

#include <fluxroute/plugin.h>

#include "plugin_util.h"
#include "provider_util.h"

typedef struct anthropic_config {
    pv_config common;
    const char *version;
    const char *auth;
    int64_t default_max_tokens;
} anthropic_config;

static const fr_option anthropic_options[] = {
    PV_COMMON_OPTIONS(anthropic_config, "https://api.anthropic.com", "ANTHROPIC_API_KEY"),
    {"version", FR_OPT_STRING, "2023-06-01", 0, 0, "anthropic-version header",
     offsetof(anthropic_config, version)},
    {"auth", FR_OPT_STRING, "x-api-key", 0, 0,
     "how the key is sent: x-api-key, or bearer (Authorization: Bearer, for gateways)",
     offsetof(anthropic_config, auth)},
    {"default_max_tokens", FR_OPT_INT, "1024", 0, 0,
     "max_tokens sent when the request has none (the API requires it)",
     offsetof(anthropic_config, default_max_tokens)},
    {NULL, 0, NULL, 0, 0, NULL, 0},
};

/* The image media types the Messages API takes. */
static int media_type_ok(const pv_image *img)
{
    static const char *const types[] = {"image/jpeg", "image/png", "image/gif", "image/webp"};
    for (size_t i = 0; i < PU_COUNT(types); i++)
        if (img->mime_len == strlen(types[i]) &&
            strncasecmp(img->mime, types[i], img->mime_len) == 0)
            return 1;
    return 0;
}

/* The images the Messages API cannot read: a data: URL of another media type. */
static fr_status anthropic_image(const pv_state *s, fr_call *call, const pv_image *img, size_t i,
                                 size_t j)
{
    if (!img->is_data || media_type_ok(img))
        return FR_OK; /* https URLs go as url sources */
    char field[96];
    snprintf(field, sizeof field, "messages[%zu].content[%zu].image_url", i, j);
    return pv_unsupported(s, call, field,
                          "anthropic takes image/jpeg, image/png, image/gif and image/webp, not "
                          "%.*s",
                          (int)(img->mime_len > 64 ? 64 : img->mime_len), img->mime);
}

/* Refuses what the Messages API cannot take (ABI 1.2 fields): seed, a JSON response
 * format, image detail other than auto, data: URLs not in base64 or of another media
 * type.  FR_OK or FR_E_BAD_REQUEST per the unsupported-field convention. */
static fr_status anthropic_check(const pv_state *s, fr_call *call, const frk_json_doc *req)
{
    int v = frk_json_member(req, 0, "seed");
    if (v >= 0 && frk_json_type_of(req, v) != FRK_JSON_NULL)
        return pv_unsupported(s, call, "seed", "the anthropic Messages API has no seed");
    int schema;
    if (pv_wants_json(req) || pv_wants_schema(req, &schema))
        return pv_unsupported(s, call, "response_format",
                              "the anthropic Messages API has no JSON response format (%s)",
                              pv_wants_json(req) ? "json_object" : "json_schema");
    return pv_each_image(s, call, req, anthropic_image);
}

/* Writes content parts token c as Messages API blocks: text blocks, and image blocks
 * with a base64 source (data: URLs) or a url source (https URLs).  Checked by
 * anthropic_check. */
static void content_blocks(frk_buf *o, const frk_json_doc *d, int c)
{
    frk_buf_lit(o, "[");
    for (int p = frk_json_first(d, c); p >= 0; p = frk_json_next(d, c, p)) {
        pv_sep(o);
        if (pv_is(d, frk_json_get(d, p, "type", FRK_JSON_STRING), "text")) {
            pv_put_text_block(o, d, p);
            continue;
        }
        pv_put_image(o, d, p, "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":",
                     "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":");
    }
    frk_buf_lit(o, "]");
}

/* Writes the content of an assistant message with tool calls: optional text, then
 * tool_use blocks whose input is the arguments object. */
static void tool_use_content(frk_buf *o, const frk_json_doc *d, int m)
{
    int text = frk_json_member(d, m, "content"),
        tcs = frk_json_get(d, m, "tool_calls", FRK_JSON_ARRAY);
    frk_buf_lit(o, "[");
    if (pv_has_parts(d, text)) {
        /* the parts' blocks, without their brackets */
        frk_buf parts = {0};
        content_blocks(&parts, d, text);
        if (parts.len > 2)
            frk_buf_append(o, parts.data + 1, parts.len - 2);
        o->oom |= parts.oom;
        frk_buf_free(&parts);
    } else if (frk_json_type_of(d, text) == FRK_JSON_STRING && text >= 0 && !pv_is(d, text, "")) {
        frk_buf_lit(o, "{\"type\":\"text\",\"text\":");
        pv_put_text(o, d, text);
        frk_buf_lit(o, "}");
    }
    for (int tc = frk_json_first(d, tcs); tc >= 0; tc = frk_json_next(d, tcs, tc)) {
        pv_sep(o);
        frk_buf_lit(o, "{\"type\":\"tool_use\",\"id\":");
        pv_put_text(o, d, frk_json_get(d, tc, "id", FRK_JSON_STRING));
        frk_buf_lit(o, ",\"name\":");
        pv_put_text(o, d, frk_json_get(d, tc, "name", FRK_JSON_STRING));
        frk_buf_lit(o, ",\"input\":");
        pv_put_args_object(o, d, frk_json_member(d, tc, "arguments"));
        frk_buf_lit(o, "}");
    }
    frk_buf_lit(o, "]");
}

/* Appends the text of content token tok (a string cut at a NUL, or text parts joined
 * by a blank line) to the system prompt being joined. */
static void system_append(frk_buf *system, const frk_json_doc *d, int tok, int sep)
{
    if (sep && system->len)
        frk_buf_lit(system, "\n\n");
    if (tok >= 0)
        pv_content_text(system, d, tok, "\n\n");
}

/* System and developer messages join the top-level system (Anthropic has neither role). */
static int system_role(const frk_json_doc *d, int role)
{
    return pv_is(d, role, "system") || pv_is(d, role, "developer");
}

static fr_status anthropic_build(const pv_state *s, fr_call *call, const frk_json_doc *req,
                                 const char *model, int stream, frk_buf *b, char *path,
                                 size_t path_size)
{
    const anthropic_config *cfg = (const anthropic_config *)s->cfg;
    fr_status st = anthropic_check(s, call, req);
    if (st != FR_OK)
        return st;
    int msgs = frk_json_get(req, 0, "messages", FRK_JSON_ARRAY);
    /* `system` and every system message join into the top-level system. */
    frk_buf system = {0};
    system_append(&system, req, frk_json_get(req, 0, "system", FRK_JSON_STRING), 0);
    for (int m = frk_json_first(req, msgs); m >= 0; m = frk_json_next(req, msgs, m)) {
        int role = frk_json_get(req, m, "role", FRK_JSON_STRING);
        if (system_role(req, role))
            system_append(&system, req, frk_json_member(req, m, "content"), 1);
    }
    frk_buf_lit(b, "{\"model\":");
    frk_json_put_cstr(b, model);
    if (system.len || system.oom) {
        frk_buf_lit(b, ",\"system\":");
        frk_json_put_string(b, system.data ? system.data : "", system.len);
        b->oom |= system.oom;
    }
    frk_buf_free(&system);
    frk_buf_lit(b, ",\"messages\":[");
    int tool_turn = 0; /* inside the user turn collecting consecutive tool results */
    for (int m = frk_json_first(req, msgs); m >= 0; m = frk_json_next(req, msgs, m)) {
        int role = frk_json_get(req, m, "role", FRK_JSON_STRING);
        int content = frk_json_member(req, m, "content");
        if (system_role(req, role))
            continue;
        if (pv_is(req, role, "tool")) {
            if (!tool_turn) {
                pv_sep(b);
                frk_buf_lit(b, "{\"role\":\"user\",\"content\":[");
                tool_turn = 1;
            }
            pv_sep(b);
            frk_buf_lit(b, "{\"type\":\"tool_result\",\"tool_use_id\":");
            pv_put_text(b, req, frk_json_get(req, m, "tool_call_id", FRK_JSON_STRING));
            frk_buf_lit(b, ",\"content\":");
            if (pv_has_parts(req, content))
                content_blocks(b, req, content); /* text blocks: checked */
            else
                pv_put_text(b, req,
                            frk_json_type_of(req, content) == FRK_JSON_STRING ? content : -1);
            frk_buf_lit(b, "}");
            continue;
        }
        if (tool_turn)
            frk_buf_lit(b, "]}");
        tool_turn = 0;
        pv_sep(b);
        frk_buf_lit(b, "{\"role\":");
        pv_put_text(b, req, role);
        frk_buf_lit(b, ",\"content\":");
        if (pv_is(req, role, "assistant") &&
            frk_json_first(req, frk_json_get(req, m, "tool_calls", FRK_JSON_ARRAY)) >= 0)
            tool_use_content(b, req, m);
        else if (pv_has_parts(req, content))
            content_blocks(b, req, content);
        else
            pv_put_text(b, req, frk_json_type_of(req, content) == FRK_JSON_STRING ? content : -1);
        frk_buf_lit(b, "}");
    }
    if (tool_turn)
        frk_buf_lit(b, "]}");
    frk_buf_lit(b, "],\"max_tokens\":");
    int mt = frk_json_get(req, 0, "max_tokens", FRK_JSON_INT);
    if (mt >= 0)
        frk_json_put_value(b, req, mt);
    else
        frk_json_put_int64(b, cfg->default_max_tokens);
    pv_put_member(b, "temperature", req, 0, "temperature");
    pv_put_member(b, "top_p", req, 0, "top_p");
    pv_put_stop(b, "stop_sequences", req);
    int tools = frk_json_get(req, 0, "tools", FRK_JSON_ARRAY);
    if (frk_json_first(req, tools) >= 0) {
        frk_buf_lit(b, ",\"tools\":[");
        for (int t = frk_json_first(req, tools); t >= 0; t = frk_json_next(req, tools, t)) {
            pv_sep(b);
            frk_buf_lit(b, "{");
            pv_put_member(b, "name", req, t, "name");
            pv_put_member(b, "description", req, t, "description");
            int schema = frk_json_member(req, t, "parameters");
            frk_buf_lit(b, ",\"input_schema\":");
            if (schema >= 0 && frk_json_type_of(req, schema) != FRK_JSON_NULL)
                frk_json_put_value(b, req, schema);
            else /* the API requires a schema */
                frk_buf_lit(b, "{\"type\":\"object\",\"properties\":{}}");
            frk_buf_lit(b, "}");
        }
        frk_buf_lit(b, "]");
    }
    /* tool_choice: auto, none, required as any, {"name"} as {type: tool, name} */
    int tc = pv_tool_choice(req);
    if (tc >= 0) {
        frk_buf_lit(b, ",\"tool_choice\":{\"type\":");
        if (frk_json_type_of(req, tc) == FRK_JSON_OBJECT) {
            frk_buf_lit(b, "\"tool\",\"name\":");
            pv_put_text(b, req, frk_json_get(req, tc, "name", FRK_JSON_STRING));
        } else if (pv_is(req, tc, "required")) {
            frk_buf_lit(b, "\"any\"");
        } else {
            pv_put_text(b, req, tc);
        }
        frk_buf_lit(b, "}");
    }
    int user = frk_json_get(req, 0, "user", FRK_JSON_STRING);
    if (user >= 0) {
        frk_buf_lit(b, ",\"metadata\":{\"user_id\":");
        pv_put_text(b, req, user);
        frk_buf_lit(b, "}");
    }
    if (stream)
        frk_buf_lit(b, ",\"stream\":true");
    frk_buf_lit(b, "}");
    pv_set(path, path_size, "/v1/messages");
    return FR_OK;
}

/* Anthropic's stop_reason in the normalized vocabulary. */
static void anthropic_finish(pv_result *res, const char *reason)
{
    static const char *const map[][2] = {
        {"end_turn", "stop"},       {"stop_sequence", "stop"},     {"max_tokens", "length"},
        {"tool_use", "tool_calls"}, {"refusal", "content_filter"},
    };
    if (!reason)
        return;
    const char *to = reason;
    for (size_t i = 0; i < PU_COUNT(map); i++)
        if (strcmp(reason, map[i][0]) == 0)
            to = map[i][1];
    pv_set(res->finish, sizeof res->finish, to);
}

/* Usage object token u (of a message or message_delta), when present. */
static void anthropic_usage(pv_result *res, const frk_json_doc *d, int u)
{
    int v;
    res->has_usage |= u >= 0;
    if ((v = frk_json_get(d, u, "input_tokens", FRK_JSON_INT)) >= 0)
        res->in_tokens = frk_json_int64(d, v);
    if ((v = frk_json_get(d, u, "output_tokens", FRK_JSON_INT)) >= 0)
        res->out_tokens = frk_json_int64(d, v);
}

static fr_status anthropic_parse(const pv_state *s, fr_call *call, const frk_json_doc *w,
                                 pv_result *res)
{
    int content = frk_json_get(w, 0, "content", FRK_JSON_ARRAY);
    if (content < 0)
        return pv_fail(s, call, FR_E_BAD_RESPONSE, "answer has no \"content\" array");
    size_t i = 0;
    for (int b = frk_json_first(w, content); b >= 0; b = frk_json_next(w, content, b), i++) {
        char type[32];
        if (!frk_json_copy(w, frk_json_get(w, b, "type", FRK_JSON_STRING), type, sizeof type))
            return pv_fail(s, call, FR_E_BAD_RESPONSE, "content[%zu] has no type", i);
        if (strcmp(type, "text") == 0) {
            int t = frk_json_get(w, b, "text", FRK_JSON_STRING);
            if (t < 0)
                return pv_fail(s, call, FR_E_BAD_RESPONSE, "content[%zu] has no text", i);
            pv_text(res, w, t);
        } else if (strcmp(type, "tool_use") == 0) {
            int id = frk_json_get(w, b, "id", FRK_JSON_STRING),
                name = frk_json_get(w, b, "name", FRK_JSON_STRING);
            int input = frk_json_get(w, b, "input", FRK_JSON_OBJECT);
            if (id < 0 || name < 0 || input < 0)
                return pv_fail(s, call, FR_E_BAD_RESPONSE,
                               "content[%zu] (tool_use) lacks id, name or input", i);
            int64_t k = pv_tool_call(res, w, id, name);
            if (k < 0 || pv_tool_args(res, k, w, input, 0) != 0)
                return pv_nomem(s, call);
        } /* thinking and other blocks are not part of the answer */
    }
    char reason[64];
    if (frk_json_copy(w, frk_json_get(w, 0, "stop_reason", FRK_JSON_STRING), reason, sizeof reason))
        anthropic_finish(res, reason);
    anthropic_usage(res, w, frk_json_get(w, 0, "usage", FRK_JSON_OBJECT));
    frk_json_copy(w, frk_json_get(w, 0, "model", FRK_JSON_STRING), res->model, sizeof res->model);
    return FR_OK;
}

static fr_status anthropic_event(const pv_state *s, fr_call *call, pv_result *res,
                                 const char *event, const char *raw, const frk_json_doc *d)
{
    (void)raw;
    char type[64];
    /* the data's own type names the event; the event line as fallback */
    if (!d || !frk_json_copy(d, frk_json_get(d, 0, "type", FRK_JSON_STRING), type, sizeof type))
        snprintf(type, sizeof type, "%s", event);
    if (strcmp(type, "ping") == 0)
        return FR_OK;
    if (!d)
        return pv_fail(s, call, FR_E_BAD_RESPONSE, "stream event %zu (%s) has no JSON data",
                       res->chunks, type);
    if (strcmp(type, "error") == 0)
        return pv_error_object(s, call, d, 0);
    if (strcmp(type, "message_start") == 0) {
        int m = frk_json_get(d, 0, "message", FRK_JSON_OBJECT);
        frk_json_copy(d, frk_json_get(d, m, "model", FRK_JSON_STRING), res->model,
                      sizeof res->model);
        anthropic_usage(res, d, frk_json_get(d, m, "usage", FRK_JSON_OBJECT));
    } else if (strcmp(type, "content_block_start") == 0) {
        int b = frk_json_get(d, 0, "content_block", FRK_JSON_OBJECT);
        int bt = frk_json_get(d, b, "type", FRK_JSON_STRING);
        res->cur = -1;
        if (pv_is(d, bt, "tool_use")) {
            res->cur = pv_tool_call(res, d, frk_json_get(d, b, "id", FRK_JSON_STRING),
                                    frk_json_get(d, b, "name", FRK_JSON_STRING));
            if (res->cur < 0)
                return pv_nomem(s, call);
        } else if (pv_is(d, bt, "text")) {
            return pv_delta_text(s, call, res, d, frk_json_get(d, b, "text", FRK_JSON_STRING));
        }
    } else if (strcmp(type, "content_block_delta") == 0) {
        int delta = frk_json_get(d, 0, "delta", FRK_JSON_OBJECT);
        int dt = frk_json_get(d, delta, "type", FRK_JSON_STRING);
        if (pv_is(d, dt, "text_delta"))
            return pv_delta_text(s, call, res, d, frk_json_get(d, delta, "text", FRK_JSON_STRING));
        if (pv_is(d, dt, "input_json_delta")) {
            if (res->cur < 0)
                return pv_fail(s, call, FR_E_BAD_RESPONSE,
                               "stream event %zu: input_json_delta outside a tool_use block",
                               res->chunks);
            if (pv_tool_args(res, res->cur, d,
                             frk_json_get(d, delta, "partial_json", FRK_JSON_STRING), 1) != 0)
                return pv_nomem(s, call);
        }
    } else if (strcmp(type, "content_block_stop") == 0) {
        res->cur = -1;
    } else if (strcmp(type, "message_delta") == 0) {
        char reason[64];
        if (frk_json_copy(d,
                          frk_json_get(d, frk_json_get(d, 0, "delta", FRK_JSON_OBJECT),
                                       "stop_reason", FRK_JSON_STRING),
                          reason, sizeof reason))
            anthropic_finish(res, reason);
        anthropic_usage(res, d, frk_json_get(d, 0, "usage", FRK_JSON_OBJECT));
    } else if (strcmp(type, "message_stop") == 0) {
        res->done = 1;
    }
    return FR_OK;
}

static const pv_vendor anthropic_vendor = {
    .name = "anthropic",
    .build = anthropic_build,
    .parse = anthropic_parse,
    .event = anthropic_event,
};

static fr_status anthropic_init(const fr_host_api *host, const void *config, void **state)
{
    const anthropic_config *cfg = config;
    const char *auth = cfg->auth ? cfg->auth : "x-api-key";
    int bearer = strcmp(auth, "bearer") == 0;
    if (!bearer && strcmp(auth, "x-api-key") != 0) {
        host->set_error(NULL, "anthropic: option auth must be x-api-key or bearer, not \"%s\"",
                        auth);
        return FR_E_CONFIG;
    }
    if (cfg->default_max_tokens <= 0) {
        host->set_error(NULL, "anthropic: option default_max_tokens must be positive");
        return FR_E_CONFIG;
    }
    const char *version = cfg->version ? cfg->version : "2023-06-01";
    if (!*version || strpbrk(version, "\r\n")) {
        host->set_error(NULL, "anthropic: option version must be one non-empty line");
        return FR_E_CONFIG;
    }
    char vh[128];
    snprintf(vh, sizeof vh, "anthropic-version: %s", version);
    const char *extra[] = {vh, NULL};
    return pv_init(host, &anthropic_vendor, &cfg->common,
                   bearer ? "Authorization: Bearer %s" : "x-api-key: %s", extra, state);
}

static const fr_plugin anthropic_plugin = {
    .abi_version = FR_ABI_VERSION,
    .struct_size = sizeof(fr_plugin),
    .kind = FR_PLUGIN_PROVIDER,
    .name = "anthropic",
    .version = "1.0.0",
    .description = "Anthropic Messages API (Claude models)",
    .options = anthropic_options,
    .option_size = sizeof(fr_option), /* ABI 1.1: the row size, so rows may grow */
    .config_size = sizeof(anthropic_config),
    .init = anthropic_init,
    .fini = pv_fini,
    .complete = pv_complete_whole,
    .complete_stream = pv_complete_stream,
};

FR_PLUGIN_EXPORT const fr_plugin *fluxroute_plugin_v1(void)
{
    return &anthropic_plugin;
}
