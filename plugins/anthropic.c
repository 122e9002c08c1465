/* anthropic: the Anthropic Messages API (POST {base_url}/v1/messages).
 *
 * Headers: the key in `x-api-key` (or `Authorization: Bearer` with auth: bearer, for
 * gateways), `anthropic-version` from the option `version`.  Wire mapping: `system` and
 * system-role messages join into the top-level `system`; max_tokens is always sent
 * (default_max_tokens when the request has none); stop becomes stop_sequences; assistant
 * tool_calls become tool_use blocks; tool results become tool_result blocks in a user
 * turn (consecutive results share one turn); tools carry input_schema.  Anthropic has
 * no JSON mode: response_format is not sent.  Streaming reads message_start,
 * content_block_start/delta/stop, message_delta and message_stop events. */
#include <stddef.h>
#include <stdint.h>

#include <fluxroute/plugin.h>

#define FR_PLUGIN_UTIL_JSON
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

/* A text block {type: text, text}. */
static json_object *text_block(const char *text)
{
    int bad = 0;
    json_object *b = json_object_new_object();
    pv_add(&bad, b, "type", json_object_new_string("text"));
    pv_add(&bad, b, "text", json_object_new_string(text));
    if (bad) {
        json_object_put(b);
        return NULL;
    }
    return b;
}

/* The content of an assistant message with tool calls: optional text, then tool_use
 * blocks whose input is the arguments object. */
static json_object *tool_use_content(json_object *m, int *bad)
{
    json_object *content = json_object_new_array(), *tcs = pv_get(m, "tool_calls", json_type_array);
    const char *text = pv_str(m, "content");
    if (text && *text)
        pv_append(bad, content, text_block(text));
    for (size_t i = 0; !*bad && i < json_object_array_length(tcs); i++) {
        json_object *tc = json_object_array_get_idx(tcs, i), *args = NULL, *input;
        json_object_object_get_ex(tc, "arguments", &args);
        char err[200];
        if (json_object_is_type(args, json_type_string)) /* JSON text: the object it holds */
            input = pu_json_parse(json_object_get_string(args),
                                  (size_t)json_object_get_string_len(args), err, sizeof err);
        else
            input = json_object_get(args);
        if (!json_object_is_type(input, json_type_object)) {
            json_object_put(input);
            input = json_object_new_object();
        }
        json_object *b = json_object_new_object();
        pv_add(bad, b, "type", json_object_new_string("tool_use"));
        pv_add(bad, b, "id", pv_string(pv_str(tc, "id")));
        pv_add(bad, b, "name", pv_string(pv_str(tc, "name")));
        pv_add(bad, b, "input", input);
        pv_append(bad, content, b);
    }
    return content;
}

static fr_status anthropic_build(const pv_state *s, fr_call *call, json_object *req,
                                 const char *model, int stream, json_object **body, char *path,
                                 size_t path_size)
{
    const anthropic_config *cfg = (const anthropic_config *)s->cfg;
    int bad = 0;
    json_object *b = json_object_new_object(), *msgs = json_object_new_array();
    json_object *in = pv_get(req, "messages", json_type_array);
    pu_buf system = {0};
    const char *sys = pv_str(req, "system");
    if (sys)
        pu_buf_append(&system, sys, strlen(sys));
    json_object *tool_turn = NULL; /* the user turn collecting consecutive tool results */
    for (size_t i = 0; !bad && i < json_object_array_length(in); i++) {
        json_object *m = json_object_array_get_idx(in, i);
        const char *role = pv_str(m, "role");
        if (strcmp(role, "system") == 0) {
            if (system.len)
                pu_buf_append(&system, "\n\n", 2);
            pu_buf_append(&system, pv_content(m), strlen(pv_content(m)));
            continue;
        }
        if (strcmp(role, "tool") == 0) {
            json_object *r = json_object_new_object();
            pv_add(&bad, r, "type", json_object_new_string("tool_result"));
            pv_add(&bad, r, "tool_use_id", pv_string(pv_str(m, "tool_call_id")));
            pv_add(&bad, r, "content", json_object_new_string(pv_content(m)));
            if (!tool_turn) {
                json_object *turn = json_object_new_object();
                tool_turn = json_object_new_array();
                pv_add(&bad, turn, "role", json_object_new_string("user"));
                pv_add(&bad, turn, "content", tool_turn);
                pv_append(&bad, msgs, turn);
            }
            pv_append(&bad, tool_turn, r);
            continue;
        }
        tool_turn = NULL;
        json_object *o = json_object_new_object();
        pv_add(&bad, o, "role", json_object_new_string(role));
        json_object *tcs = pv_get(m, "tool_calls", json_type_array);
        if (strcmp(role, "assistant") == 0 && tcs && json_object_array_length(tcs) > 0)
            pv_add(&bad, o, "content", tool_use_content(m, &bad));
        else
            pv_add(&bad, o, "content", json_object_new_string(pv_content(m)));
        pv_append(&bad, msgs, o);
    }
    pv_add(&bad, b, "model", json_object_new_string(model));
    if (system.len || system.oom)
        pv_add(&bad, b, "system", system.oom ? NULL : json_object_new_string(system.data));
    pu_buf_free(&system);
    pv_add(&bad, b, "messages", msgs);
    json_object *mt = pv_get(req, "max_tokens", json_type_int);
    pv_add(&bad, b, "max_tokens",
           mt ? json_object_get(mt) : json_object_new_int64(cfg->default_max_tokens));
    pv_copy(&bad, b, "temperature", req, "temperature");
    json_object *stop = pv_stop_array(req);
    if (stop)
        pv_add(&bad, b, "stop_sequences", stop);
    json_object *tools = pv_get(req, "tools", json_type_array);
    if (tools && json_object_array_length(tools) > 0) {
        json_object *out = json_object_new_array();
        for (size_t i = 0; !bad && i < json_object_array_length(tools); i++) {
            json_object *t = json_object_array_get_idx(tools, i), *schema;
            json_object *tool = json_object_new_object();
            pv_copy(&bad, tool, "name", t, "name");
            pv_copy(&bad, tool, "description", t, "description");
            if (json_object_object_get_ex(t, "parameters", &schema) && schema)
                pv_add(&bad, tool, "input_schema", json_object_get(schema));
            else /* the API requires a schema */
                pv_add(&bad, tool, "input_schema",
                       json_tokener_parse("{\"type\":\"object\",\"properties\":{}}"));
            pv_append(&bad, out, tool);
        }
        pv_add(&bad, b, "tools", out);
    }
    if (stream)
        pv_add(&bad, b, "stream", json_object_new_boolean(1));
    if (bad) {
        json_object_put(b);
        return pv_nomem(s, call);
    }
    snprintf(path, path_size, "/v1/messages");
    *body = b;
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

static void anthropic_usage(pv_result *res, json_object *u)
{
    json_object *v;
    if ((v = pv_get(u, "input_tokens", json_type_int)))
        res->in_tokens = json_object_get_int64(v);
    if ((v = pv_get(u, "output_tokens", json_type_int)))
        res->out_tokens = json_object_get_int64(v);
}

static fr_status anthropic_parse(const pv_state *s, fr_call *call, const pj_doc *w, pv_result *res)
{
    int content = pj_get(w, 0, "content", PJ_ARRAY);
    if (content < 0)
        return pv_fail(s, call, FR_E_BAD_RESPONSE, "answer has no \"content\" array");
    for (size_t i = 0, n = pj_count(w, content); i < n; i++) {
        int b = pj_at(w, content, i);
        char type[32];
        if (!pj_copy(w, pj_get(w, b, "type", PJ_STRING), type, sizeof type))
            return pv_fail(s, call, FR_E_BAD_RESPONSE, "content[%zu] has no type", i);
        if (strcmp(type, "text") == 0) {
            int t = pj_get(w, b, "text", PJ_STRING);
            if (t < 0)
                return pv_fail(s, call, FR_E_BAD_RESPONSE, "content[%zu] has no text", i);
            pj_cstr(w, t, &res->text);
        } else if (strcmp(type, "tool_use") == 0) {
            int id = pj_get(w, b, "id", PJ_STRING), name = pj_get(w, b, "name", PJ_STRING);
            int input = pj_get(w, b, "input", PJ_OBJECT);
            if (id < 0 || name < 0 || input < 0)
                return pv_fail(s, call, FR_E_BAD_RESPONSE,
                               "content[%zu] (tool_use) lacks id, name or input", i);
            /* The input travels as its JSON text (pv_result_json reads it back). */
            pu_buf args = {0};
            pj_put_value(&args, w, input);
            char *id_s = pj_strdup(w, id), *name_s = pj_strdup(w, name);
            json_object *tc = id_s && name_s && !args.oom
                                  ? pv_tool_call(res, id_s, name_s, NULL, args.data)
                                  : NULL;
            free(id_s);
            free(name_s);
            pu_buf_free(&args);
            if (!tc)
                return pv_nomem(s, call);
        } /* thinking and other blocks are not part of the answer */
    }
    char reason[64];
    if (pj_copy(w, pj_get(w, 0, "stop_reason", PJ_STRING), reason, sizeof reason))
        anthropic_finish(res, reason);
    int u = pj_get(w, 0, "usage", PJ_OBJECT), v;
    if ((v = pj_get(w, u, "input_tokens", PJ_INT)) >= 0)
        res->in_tokens = pj_int64(w, v);
    if ((v = pj_get(w, u, "output_tokens", PJ_INT)) >= 0)
        res->out_tokens = pj_int64(w, v);
    pj_copy(w, pj_get(w, 0, "model", PJ_STRING), res->model, sizeof res->model);
    return FR_OK;
}

static fr_status anthropic_event(const pv_state *s, fr_call *call, pv_result *res,
                                 const char *event, const char *raw, json_object *data)
{
    (void)raw;
    const char *type = data ? pv_str(data, "type") : NULL;
    if (!type)
        type = event; /* the data's own type names the event; the event line as fallback */
    if (strcmp(type, "ping") == 0)
        return FR_OK;
    if (!data)
        return pv_fail(s, call, FR_E_BAD_RESPONSE, "stream event %zu (%s) has no JSON data",
                       res->chunks, type);
    if (strcmp(type, "error") == 0)
        return pv_error_object(s, call, data, 0);
    if (strcmp(type, "message_start") == 0) {
        json_object *m = pv_get(data, "message", json_type_object);
        pv_set(res->model, sizeof res->model, pv_str(m, "model"));
        anthropic_usage(res, pv_get(m, "usage", json_type_object));
    } else if (strcmp(type, "content_block_start") == 0) {
        json_object *b = pv_get(data, "content_block", json_type_object);
        const char *bt = pv_str(b, "type");
        res->cur = -1;
        if (bt && strcmp(bt, "tool_use") == 0) {
            if (!pv_tool_call(res, pv_str(b, "id"), pv_str(b, "name"), NULL, ""))
                return pv_nomem(s, call);
            res->cur = (int64_t)json_object_array_length(res->tool_calls) - 1;
        } else if (bt && strcmp(bt, "text") == 0 && pv_str(b, "text")) {
            return pv_delta(s, call, res, pv_str(b, "text"), strlen(pv_str(b, "text")));
        }
    } else if (strcmp(type, "content_block_delta") == 0) {
        json_object *d = pv_get(data, "delta", json_type_object);
        const char *dt = pv_str(d, "type");
        if (dt && strcmp(dt, "text_delta") == 0) {
            const char *t = pv_str(d, "text");
            return t ? pv_delta(s, call, res, t, strlen(t)) : FR_OK;
        }
        if (dt && strcmp(dt, "input_json_delta") == 0) {
            const char *frag = pv_str(d, "partial_json");
            if (res->cur < 0)
                return pv_fail(s, call, FR_E_BAD_RESPONSE,
                               "stream event %zu: input_json_delta outside a tool_use block",
                               res->chunks);
            json_object *tc = json_object_array_get_idx(res->tool_calls, (size_t)res->cur);
            if (frag && pv_tool_args_append(tc, frag, strlen(frag)) != 0)
                return pv_nomem(s, call);
        }
    } else if (strcmp(type, "content_block_stop") == 0) {
        res->cur = -1;
    } else if (strcmp(type, "message_delta") == 0) {
        anthropic_finish(res, pv_str(pv_get(data, "delta", json_type_object), "stop_reason"));
        anthropic_usage(res, pv_get(data, "usage", json_type_object));
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
