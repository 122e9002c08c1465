/* llm: an agent that renders a prompt from its step input, sends it to the provider
 * configured for the agent (host->provider_call) and returns the completion.
 *
 * Templates ({{input.text}}, {{steps.summarize.text}}, {{input.items.0}}) are paths
 * over the step input {"input": ..., "steps": {...}}: strings are inserted as they are,
 * other values as compact JSON, and a missing path fails the attempt (config class). */
#include <stddef.h>
#include <stdint.h>

#include <fluxroute/plugin.h>

#define FR_PLUGIN_UTIL_JSON
#include "plugin_util.h"

typedef struct llm_config {
    const char *prompt;
    const char *system;
    int64_t max_tokens;
    double temperature;
    int stream;
    const char *tools;
} llm_config;

static const fr_option llm_options[] = {
    {"prompt", FR_OPT_STRING, NULL, 1, 0,
     "user message template, e.g. \"Summarize: {{input.text}}\" or {{steps.ID.text}}",
     offsetof(llm_config, prompt)},
    {"system", FR_OPT_STRING, NULL, 0, 0, "system prompt template (same syntax as prompt)",
     offsetof(llm_config, system)},
    {"max_tokens", FR_OPT_INT, "0", 0, 0, "most tokens to generate; 0: the provider's default",
     offsetof(llm_config, max_tokens)},
    {"temperature", FR_OPT_DOUBLE, "-1", 0, 0,
     "sampling temperature (>= 0); negative: the provider's default",
     offsetof(llm_config, temperature)},
    {"stream", FR_OPT_BOOL, "false", 0, 0, "ask the provider to stream the completion",
     offsetof(llm_config, stream)},
    {"tools", FR_OPT_JSON, NULL, 0, 0,
     "tools the model may call: [{name, description, parameters (JSON schema)}]",
     offsetof(llm_config, tools)},
    {NULL, 0, NULL, 0, 0, NULL, 0},
};

/* What a template path may start with: the two members of the step input. */
static const char *const llm_roots[] = {"input", "steps", NULL};

typedef struct llm_state {
    const fr_host_api *host;
    const llm_config *cfg;
    json_object *tools; /* parsed once in init; read-only afterwards (NULL: none) */
} llm_state;

static fr_status llm_init(const fr_host_api *host, const void *config, void **state)
{
    const llm_config *cfg = config;
    char err[200];
    if (!cfg->prompt) {
        host->set_error(NULL, "llm: option prompt is required");
        return FR_E_CONFIG;
    }
    if (pu_tmpl_check(cfg->prompt, llm_roots, err, sizeof err) != 0) {
        host->set_error(NULL, "llm: option prompt: %s", err);
        return FR_E_CONFIG;
    }
    if (cfg->system && pu_tmpl_check(cfg->system, llm_roots, err, sizeof err) != 0) {
        host->set_error(NULL, "llm: option system: %s", err);
        return FR_E_CONFIG;
    }
    if (cfg->max_tokens < 0) {
        host->set_error(NULL, "llm: option max_tokens must be >= 0, not %lld",
                        (long long)cfg->max_tokens);
        return FR_E_CONFIG;
    }
    json_object *tools = NULL;
    if (cfg->tools && strcmp(cfg->tools, "null") != 0) {
        tools = pu_json_parse(cfg->tools, strlen(cfg->tools), err, sizeof err);
        int ok = json_object_is_type(tools, json_type_array);
        for (size_t i = 0; ok && i < json_object_array_length(tools); i++) {
            json_object *t = json_object_array_get_idx(tools, i), *name;
            ok = json_object_is_type(t, json_type_object) &&
                 json_object_object_get_ex(t, "name", &name) &&
                 json_object_is_type(name, json_type_string);
        }
        if (!ok) {
            json_object_put(tools);
            host->set_error(NULL, "llm: option tools must be a list of {name, description, "
                                  "parameters} mappings");
            return FR_E_CONFIG;
        }
    }
    llm_state *s = host->alloc(NULL, sizeof *s);
    if (!s) {
        json_object_put(tools);
        return FR_E_NOMEM;
    }
    s->host = host;
    s->cfg = cfg;
    s->tools = tools;
    *state = s;
    return FR_OK;
}

static void llm_fini(void *state)
{
    llm_state *s = state;
    if (s) {
        json_object_put(s->tools);
        s->host->free_mem(s);
    }
}

/* Renders template `which` ("prompt", "system") over the step input into a new JSON
 * string.  Returns FR_OK, FR_E_CONFIG or FR_E_NOMEM, with the call's error set. */
static fr_status render(const fr_host_api *host, fr_call *call, const char *which, const char *tmpl,
                        json_object *input, json_object **out)
{
    pu_buf buf = {0};
    char err[200];
    int missing = 0;
    fr_status st = pu_tmpl_render(tmpl, input, &buf, &missing, err, sizeof err);
    if (st == FR_OK) {
        *out = json_object_new_string_len(buf.data ? buf.data : "", (int)buf.len);
        if (!*out)
            st = FR_E_NOMEM;
    }
    pu_buf_free(&buf);
    if (st == FR_E_CONFIG && missing)
        host->set_error(call, "llm: template path \"%s\" not found in step input (%s)", err, which);
    else if (st == FR_E_CONFIG)
        host->set_error(call, "llm: option %s: %s", which, err);
    else if (st == FR_E_NOMEM)
        host->set_error(call, "llm: out of memory rendering the %s", which);
    return st;
}

/* Builds the normalized chat request.  Returns FR_OK (and *req, caller puts it) or a
 * failure with the call's error set. */
static fr_status build_request(const llm_state *s, fr_call *call, json_object *input,
                               json_object **req)
{
    const fr_host_api *host = s->host;
    const llm_config *cfg = s->cfg;
    json_object *prompt = NULL, *system = NULL;
    fr_status st = render(host, call, "prompt", cfg->prompt, input, &prompt);
    if (st == FR_OK && cfg->system)
        st = render(host, call, "system", cfg->system, input, &system);
    if (st != FR_OK) {
        json_object_put(prompt);
        return st;
    }

    json_object *r = json_object_new_object();
    json_object *messages = json_object_new_array();
    json_object *msg = json_object_new_object();
    int bad = !r || !messages || !msg;
    if (!bad && system) {
        bad = pu_json_add(r, "system", system);
        system = NULL;
    }
    bad = bad || pu_json_add(msg, "role", json_object_new_string("user"));
    if (!bad) {
        bad = pu_json_add(msg, "content", prompt);
        prompt = NULL;
    }
    if (!bad) {
        bad = pu_json_append(messages, msg);
        msg = NULL;
    }
    if (!bad) {
        bad = pu_json_add(r, "messages", messages);
        messages = NULL;
    }
    if (!bad && cfg->max_tokens > 0)
        bad = pu_json_add(r, "max_tokens", json_object_new_int64(cfg->max_tokens));
    if (!bad && cfg->temperature >= 0)
        bad = pu_json_add(r, "temperature", pu_json_double(cfg->temperature));
    /* A deep copy: json-c reference counts are not atomic, and invoke runs on several
     * threads at once. */
    if (!bad && s->tools) {
        json_object *copy = NULL;
        bad = json_object_deep_copy(s->tools, &copy, NULL) != 0 || pu_json_add(r, "tools", copy);
    }
    bad = bad || pu_json_add(r, "stream", json_object_new_boolean(cfg->stream != 0));
    json_object_put(prompt);
    json_object_put(system);
    json_object_put(msg);
    json_object_put(messages);
    if (bad) {
        json_object_put(r);
        host->set_error(call, "llm: out of memory building the request");
        return FR_E_NOMEM;
    }
    *req = r;
    return FR_OK;
}

static fr_status bad_response(const fr_host_api *host, fr_call *call, const char *what)
{
    host->set_error(call, "llm: malformed provider response: %s", what);
    return FR_E_BAD_RESPONSE;
}

/* Turns the provider's response into the step output {text, usage, model, provider,
 * tool_calls, finish_reason}.  tool_calls is [] and finish_reason null when the provider
 * does not say. */
static fr_status build_output(const fr_host_api *host, fr_call *call, const char *resp,
                              size_t resp_len, char **output, size_t *output_len)
{
    char err[200];
    json_object *r = pu_json_parse(resp, resp_len, err, sizeof err);
    if (!r) {
        host->set_error(call, "llm: malformed provider response: %s", err);
        return FR_E_BAD_RESPONSE;
    }
    json_object *text, *usage, *in, *outt, *model = NULL, *provider = NULL;
    json_object *calls = NULL, *finish = NULL;
    fr_status st = FR_OK;
    if (!json_object_is_type(r, json_type_object))
        st = bad_response(host, call, "not a JSON object");
    else if (!json_object_object_get_ex(r, "text", &text) ||
             !json_object_is_type(text, json_type_string))
        st = bad_response(host, call, "\"text\" is missing or not a string");
    else if (!json_object_object_get_ex(r, "usage", &usage) ||
             !json_object_is_type(usage, json_type_object) ||
             !json_object_object_get_ex(usage, "input_tokens", &in) ||
             !json_object_is_type(in, json_type_int) ||
             !json_object_object_get_ex(usage, "output_tokens", &outt) ||
             !json_object_is_type(outt, json_type_int))
        st = bad_response(host, call, "\"usage\" must hold integer input_tokens and output_tokens");
    else if (json_object_object_get_ex(r, "model", &model) && model &&
             !json_object_is_type(model, json_type_string))
        st = bad_response(host, call, "\"model\" is not a string");
    else if (json_object_object_get_ex(r, "provider", &provider) && provider &&
             !json_object_is_type(provider, json_type_string))
        st = bad_response(host, call, "\"provider\" is not a string");
    else if (json_object_object_get_ex(r, "tool_calls", &calls) && calls &&
             !json_object_is_type(calls, json_type_array))
        st = bad_response(host, call, "\"tool_calls\" is not an array");
    else if (json_object_object_get_ex(r, "finish_reason", &finish) && finish &&
             !json_object_is_type(finish, json_type_string))
        st = bad_response(host, call, "\"finish_reason\" is not a string");
    if (st != FR_OK) {
        json_object_put(r);
        return st;
    }

    /* Move the values over (get adds a reference; the response object keeps its own). */
    json_object *o = json_object_new_object();
    json_object *u = json_object_new_object();
    int bad = !o || !u;
    bad = bad || pu_json_add(o, "text", json_object_get(text));
    bad = bad || pu_json_add(u, "input_tokens", json_object_get(in));
    bad = bad || pu_json_add(u, "output_tokens", json_object_get(outt));
    if (!bad) {
        bad = pu_json_add(o, "usage", u);
        u = NULL;
    }
    /* A missing model or provider is reported as null so the output keeps its shape. */
    bad = bad || json_object_object_add(o, "model", json_object_get(model)) != 0;
    bad = bad || json_object_object_add(o, "provider", json_object_get(provider)) != 0;
    bad = bad ||
          pu_json_add(o, "tool_calls", calls ? json_object_get(calls) : json_object_new_array());
    bad = bad || json_object_object_add(o, "finish_reason", json_object_get(finish)) != 0;
    if (bad) {
        host->set_error(call, "llm: out of memory building the output");
        st = FR_E_NOMEM;
    } else {
        st = pu_json_out(host, call, o, output, output_len);
    }
    json_object_put(u);
    json_object_put(o);
    json_object_put(r);
    return st;
}

static fr_status llm_invoke(void *state, fr_call *call, const char *input, size_t input_len,
                            char **output, size_t *output_len)
{
    const llm_state *s = state;
    const fr_host_api *host = s->host;
    char err[200];

    json_object *in = pu_json_parse(input, input_len, err, sizeof err);
    if (!in) {
        host->set_error(call, "llm: step input is not valid JSON: %s", err);
        return FR_E_INVALID;
    }
    json_object *req = NULL;
    fr_status st = build_request(s, call, in, &req);
    json_object_put(in);
    if (st != FR_OK)
        return st;

    size_t req_len = 0;
    const char *req_text = pu_json_text(req, &req_len);
    char *resp = NULL;
    size_t resp_len = 0;
    if (!req_text) {
        host->set_error(call, "llm: out of memory serializing the request");
        st = FR_E_NOMEM;
    } else {
        /* On failure the host has already recorded the provider's message. */
        st = host->provider_call(call, req_text, req_len, &resp, &resp_len);
    }
    json_object_put(req);
    if (st != FR_OK)
        return st;
    if (!resp)
        return bad_response(host, call, "empty response");
    return build_output(host, call, resp, resp_len, output, output_len);
}

static const fr_plugin llm_plugin = {
    .abi_version = FR_ABI_VERSION,
    .struct_size = sizeof(fr_plugin),
    .kind = FR_PLUGIN_AGENT,
    .name = "llm",
    .version = "1.0.0",
    .description = "Renders a prompt from the step input and asks the agent's provider",
    .options = llm_options,
    .config_size = sizeof(llm_config),
    .init = llm_init,
    .fini = llm_fini,
    .invoke = llm_invoke,
};

FR_PLUGIN_EXPORT const fr_plugin *fluxroute_plugin_v1(void)
{
    return &llm_plugin;
}
