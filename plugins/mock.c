/* mock: a deterministic, offline chat-completion provider.  The reply depends only on
 * the request and the options, so manifests run without network or credentials and
 * every run replays exactly.  Tokens are counted in whitespace-separated words (with
 * usage: false, none are reported: "usage": null). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <fluxroute/plugin.h>

#include "plugin_util.h"
#include "template.h"

typedef struct mock_config {
    const char *model;
    int64_t delay_us;
    const char *reply;
    int usage;
} mock_config;

static const fr_option mock_options[] = {
    {"model", FR_OPT_STRING, "mock-1", 0, 0,
     "model name reported in responses (a request's own model takes precedence)",
     offsetof(mock_config, model)},
    {"delay", FR_OPT_DURATION, "0", 0, 0,
     "wait this long (through the host, cancellable) before answering",
     offsetof(mock_config, delay_us)},
    {"reply", FR_OPT_STRING, NULL, 0, 0,
     "reply template with {{prompt}} (last user message), {{system}} and {{model}}; "
     "default: \"mock reply to: {{prompt}}\"",
     offsetof(mock_config, reply)},
    {"usage", FR_OPT_BOOL, "true", 0, 0,
     "report token usage; false answers \"usage\": null, as servers that report none do",
     offsetof(mock_config, usage)},
    {NULL, 0, NULL, 0, 0, NULL, 0},
};

static const char *const mock_template_names[] = {"prompt", "system", "model", NULL};

typedef struct mock_state {
    const fr_host_api *host;
    const char *model;
    int64_t delay_us;
    const char *reply;
    int usage;
} mock_state;

static fr_status mock_init(const fr_host_api *host, const void *config, void **state)
{
    const mock_config *cfg = config;
    if (cfg->delay_us < 0) {
        host->set_error(NULL, "mock: delay must not be negative");
        return FR_E_CONFIG;
    }
    if (cfg->reply) {
        char err[200];
        if (pu_tmpl_check(cfg->reply, mock_template_names, err, sizeof err) != 0) {
            host->set_error(NULL, "mock: option reply: %s", err);
            return FR_E_CONFIG;
        }
    }
    mock_state *s = host->alloc(NULL, sizeof *s);
    if (!s)
        return FR_E_NOMEM;
    s->host = host;
    s->model = cfg->model && cfg->model[0] ? cfg->model : "mock-1";
    s->delay_us = cfg->delay_us;
    s->reply = cfg->reply;
    s->usage = cfg->usage;
    *state = s;
    return FR_OK;
}

static void mock_fini(void *state)
{
    mock_state *s = state;
    if (s)
        s->host->free_mem(s);
}

/* The parts of a normalized request the mock looks at, borrowed from the parsed
 * request object. */
typedef struct mock_request {
    const char *model;
    const char *system;
    size_t system_len;
    const char *prompt; /* content of the last user message ("" when there is none) */
    size_t prompt_len;
    int64_t max_tokens; /* 0: unset */
    json_object *stop;  /* string or array of strings, or NULL */
    int json_mode;      /* response_format asks for a JSON object */
    size_t input_tokens;
} mock_request;

static fr_status bad_request(const fr_host_api *host, fr_call *call, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static fr_status bad_request(const fr_host_api *host, fr_call *call, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    host->set_error(call, "mock: bad request: %s", msg);
    return FR_E_BAD_REQUEST;
}

/* Checks the request's shape and fills *r.  Returns FR_OK or FR_E_BAD_REQUEST (error
 * set). */
static fr_status parse_request(const fr_host_api *host, fr_call *call, json_object *req,
                               mock_request *r)
{
    json_object *v;
    memset(r, 0, sizeof *r);
    r->prompt = "";
    if (!json_object_is_type(req, json_type_object))
        return bad_request(host, call, "the request must be a JSON object");

    if (json_object_object_get_ex(req, "model", &v) && v) {
        if (!json_object_is_type(v, json_type_string))
            return bad_request(host, call, "\"model\" must be a string");
        r->model = json_object_get_string(v);
    }
    if (json_object_object_get_ex(req, "system", &v) && v) {
        if (!json_object_is_type(v, json_type_string))
            return bad_request(host, call, "\"system\" must be a string");
        r->system = json_object_get_string(v);
        r->system_len = (size_t)json_object_get_string_len(v);
        r->input_tokens += pu_count_words(r->system, r->system_len);
    }

    json_object *messages = NULL;
    if (!json_object_object_get_ex(req, "messages", &messages) || !messages)
        return bad_request(host, call, "\"messages\" is missing");
    if (!json_object_is_type(messages, json_type_array))
        return bad_request(host, call, "\"messages\" must be an array");
    size_t n = json_object_array_length(messages);
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(messages, i), *role, *content;
        if (!json_object_is_type(m, json_type_object))
            return bad_request(host, call, "messages[%zu] must be an object", i);
        if (!json_object_object_get_ex(m, "role", &role) ||
            !json_object_is_type(role, json_type_string))
            return bad_request(host, call, "messages[%zu].role must be a string", i);
        const char *text = "";
        size_t len = 0;
        if (json_object_object_get_ex(m, "content", &content) && content) {
            if (!json_object_is_type(content, json_type_string))
                return bad_request(host, call, "messages[%zu].content must be a string", i);
            text = json_object_get_string(content);
            len = (size_t)json_object_get_string_len(content);
        }
        r->input_tokens += pu_count_words(text, len);
        if (strcmp(json_object_get_string(role), "user") == 0) {
            r->prompt = text;
            r->prompt_len = len;
        }
    }

    if (json_object_object_get_ex(req, "max_tokens", &v) && v) {
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) <= 0)
            return bad_request(host, call, "\"max_tokens\" must be a positive integer");
        r->max_tokens = json_object_get_int64(v);
    }
    if (json_object_object_get_ex(req, "temperature", &v) && v &&
        !json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
        return bad_request(host, call, "\"temperature\" must be a number");
    if (json_object_object_get_ex(req, "stream", &v) && v &&
        !json_object_is_type(v, json_type_boolean))
        return bad_request(host, call, "\"stream\" must be a boolean");
    if (json_object_object_get_ex(req, "tools", &v) && v &&
        !json_object_is_type(v, json_type_array))
        return bad_request(host, call, "\"tools\" must be an array");
    if (json_object_object_get_ex(req, "stop", &v) && v) {
        int ok = json_object_is_type(v, json_type_string);
        if (json_object_is_type(v, json_type_array)) {
            ok = 1;
            for (size_t i = 0; i < json_object_array_length(v); i++)
                ok &= json_object_is_type(json_object_array_get_idx(v, i), json_type_string);
        }
        if (!ok)
            return bad_request(host, call, "\"stop\" must be a string or an array of strings");
        r->stop = v;
    }
    if (json_object_object_get_ex(req, "response_format", &v) && v) {
        json_object *type;
        if (!json_object_is_type(v, json_type_object) ||
            !json_object_object_get_ex(v, "type", &type) ||
            !json_object_is_type(type, json_type_string))
            return bad_request(host, call,
                               "\"response_format\" must be an object with a string \"type\"");
        const char *t = json_object_get_string(type);
        r->json_mode = strcmp(t, "json_object") == 0 || strcmp(t, "json_schema") == 0;
    }
    return FR_OK;
}

/* Cuts *len at the earliest occurrence of a stop sequence. */
static void apply_stop(json_object *stop, const char *text, size_t *len)
{
    size_t n = json_object_is_type(stop, json_type_array) ? json_object_array_length(stop) : 1;
    for (size_t i = 0; i < n; i++) {
        json_object *s =
            json_object_is_type(stop, json_type_array) ? json_object_array_get_idx(stop, i) : stop;
        const char *needle = json_object_get_string(s);
        size_t nlen = (size_t)json_object_get_string_len(s);
        if (nlen == 0 || nlen > *len)
            continue;
        for (size_t at = 0; at + nlen <= *len; at++) {
            if (memcmp(text + at, needle, nlen) == 0) {
                *len = at;
                break;
            }
        }
    }
}

/* Writes the reply (before truncation) into out. */
static fr_status render_reply(const mock_state *s, fr_call *call, const mock_request *r,
                              const char *model, frk_buf *out)
{
    const fr_host_api *host = s->host;
    if (!s->reply) {
        static const char prefix[] = "mock reply to: ";
        frk_buf_append(out, prefix, sizeof prefix - 1);
        frk_buf_append(out, r->prompt, r->prompt_len);
        return out->oom ? FR_E_NOMEM : FR_OK;
    }
    /* The variables as a JSON document: {prompt, system, model}. */
    frk_buf text = {0};
    frk_buf_lit(&text, "{\"prompt\":");
    frk_json_put_string(&text, r->prompt, r->prompt_len);
    frk_buf_lit(&text, ",\"system\":");
    frk_json_put_string(&text, r->system ? r->system : "", r->system_len);
    frk_buf_lit(&text, ",\"model\":");
    frk_json_put_cstr(&text, model);
    frk_buf_lit(&text, "}");
    frk_json_doc vars;
    if (text.oom) {
        frk_buf_free(&text);
        return FR_E_NOMEM;
    }
    if (frk_json_scan(&vars, text.data, text.len) != 0) { /* cannot happen: written above */
        frk_json_free(&vars);
        frk_buf_free(&text);
        return FR_E_NOMEM;
    }
    char err[200];
    int missing = 0;
    fr_status st = pu_tmpl_render(s->reply, &vars, out, &missing, err, sizeof err);
    frk_json_free(&vars);
    frk_buf_free(&text);
    if (st == FR_E_CONFIG) {
        if (missing)
            host->set_error(call, "mock: template path \"%s\" not found in reply variables", err);
        else
            host->set_error(call, "mock: option reply: %s", err);
    }
    return st;
}

/* Hands text to the host in word-sized chunks.  Returns FR_OK or the status that
 * stopped the stream. */
static fr_status stream_text(const fr_host_api *host, fr_call *call, const char *text, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        size_t n = pu_next_chunk(text + pos, len - pos);
        fr_status st = host->stream_chunk(call, text + pos, n);
        if (st != FR_OK) {
            host->set_error(call, "mock: streaming stopped after %zu bytes (%s)", pos,
                            frk_status_name(st));
            return st;
        }
        pos += n;
    }
    return FR_OK;
}

static fr_status build_response(const mock_state *s, fr_call *call, const mock_request *r,
                                const char *model, const char *reply, size_t reply_len,
                                const char *finish, int stream, char **response,
                                size_t *response_len)
{
    const fr_host_api *host = s->host;
    json_object *text_obj = json_object_new_string_len(reply, (int)reply_len);
    json_object *resp = json_object_new_object();
    json_object *usage = json_object_new_object();
    fr_status st = FR_E_NOMEM;
    if (!text_obj || !resp || !usage)
        goto out;
    if (r->json_mode) {
        /* The text is itself a JSON object holding the reply. */
        json_object *wrap = json_object_new_object();
        if (!wrap)
            goto out;
        if (pu_json_add(wrap, "reply", text_obj) != 0) {
            text_obj = NULL;
            json_object_put(wrap);
            goto out;
        }
        size_t n = 0;
        const char *t = pu_json_text(wrap, &n);
        text_obj = t ? json_object_new_string_len(t, (int)n) : NULL;
        json_object_put(wrap);
        if (!text_obj)
            goto out;
    }
    if (stream) {
        st = stream_text(host, call, json_object_get_string(text_obj),
                         (size_t)json_object_get_string_len(text_obj));
        if (st != FR_OK)
            goto out;
        st = FR_E_NOMEM;
    }
    json_object *tool_calls = json_object_new_array();
    int bad = pu_json_add(resp, "text", text_obj);
    text_obj = NULL;
    bad = bad || pu_json_add(resp, "tool_calls", tool_calls);
    bad = bad || pu_json_add(resp, "finish_reason", json_object_new_string(finish));
    bad =
        bad || pu_json_add(usage, "input_tokens", json_object_new_int64((int64_t)r->input_tokens));
    bad = bad || pu_json_add(usage, "output_tokens",
                             json_object_new_int64((int64_t)pu_count_words(reply, reply_len)));
    if (!bad && !s->usage) { /* "usage": null, the member kept */
        bad = json_object_object_add(resp, "usage", NULL) != 0;
    } else if (!bad) {
        bad = pu_json_add(resp, "usage", usage);
        usage = NULL;
    }
    bad = bad || pu_json_add(resp, "model", json_object_new_string(model));
    if (!bad)
        st = pu_json_out(host, call, resp, response, response_len);
out:
    if (st == FR_E_NOMEM)
        host->set_error(call, "mock: out of memory");
    json_object_put(text_obj);
    json_object_put(usage);
    json_object_put(resp);
    return st;
}

static fr_status mock_run(void *state, fr_call *call, const char *request, size_t request_len,
                          char **response, size_t *response_len, int stream)
{
    const mock_state *s = state;
    const fr_host_api *host = s->host;

    if (s->delay_us > 0) {
        fr_status st = host->sleep_us(call, s->delay_us);
        if (st != FR_OK) {
            host->set_error(call, "mock: delay interrupted (%s)", frk_status_name(st));
            return st;
        }
    }

    char err[200];
    json_object *req = pu_json_parse(request, request_len, err, sizeof err);
    if (!req)
        return bad_request(host, call, "request is not valid JSON: %s", err);
    mock_request r;
    fr_status st = parse_request(host, call, req, &r);
    if (st != FR_OK) {
        json_object_put(req);
        return st;
    }
    const char *model = r.model ? r.model : s->model;

    frk_buf reply = {0};
    st = render_reply(s, call, &r, model, &reply);
    if (st == FR_OK) {
        const char *text = reply.data ? reply.data : "";
        size_t len = reply.len;
        const char *finish = "stop";
        if (r.stop)
            apply_stop(r.stop, text, &len);
        if (r.max_tokens > 0) {
            size_t cut = pu_words_prefix(text, len, (size_t)r.max_tokens);
            if (cut < len) {
                len = cut;
                finish = "length";
            }
        }
        st = build_response(s, call, &r, model, text, len, finish, stream, response, response_len);
    } else if (st == FR_E_NOMEM) {
        host->set_error(call, "mock: out of memory");
    }
    frk_buf_free(&reply);
    json_object_put(req);
    return st;
}

static fr_status mock_complete(void *state, fr_call *call, const char *request, size_t request_len,
                               char **response, size_t *response_len)
{
    return mock_run(state, call, request, request_len, response, response_len, 0);
}

static fr_status mock_complete_stream(void *state, fr_call *call, const char *request,
                                      size_t request_len, char **response, size_t *response_len)
{
    return mock_run(state, call, request, request_len, response, response_len, 1);
}

static const fr_plugin mock_plugin = {
    .abi_version = FR_ABI_VERSION,
    .struct_size = sizeof(fr_plugin),
    .kind = FR_PLUGIN_PROVIDER,
    .name = "mock",
    .version = "1.0.0",
    .description = "Deterministic offline chat completions (no network, no credentials)",
    .options = mock_options,
    .option_size = sizeof(fr_option), /* ABI 1.1: the row size, so rows may grow */
    .config_size = sizeof(mock_config),
    .init = mock_init,
    .fini = mock_fini,
    .complete = mock_complete,
    .complete_stream = mock_complete_stream,
};

FR_PLUGIN_EXPORT const fr_plugin *fluxroute_plugin_v1(void)
{
    return &mock_plugin;
}
