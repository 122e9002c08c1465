/* llm: an agent that renders a prompt from its step input, sends it to the provider
 * configured for the agent (host->provider_call) and returns the completion.
 *
 * Templates ({{input.text}}, {{steps.summarize.text}}, {{input.items.0}}) are paths
 * over the step input {"input": ..., "steps": {...}}: strings are inserted as they are,
 * other values as compact JSON, and a missing path fails the attempt (config class).
 *
 * With `passthrough: true` (the OpenAI gateway's synthesised manifests, core/serve/
 * gateway.c) there is no template: the run input is the whole normalized request
 * (messages, tools, tool_choice, ...), sent on as it is, with `model` set when the agent
 * names one. */
#include <stddef.h>
#include <stdint.h>

#include <fluxroute/plugin.h>

#include "plugin_util.h"
#include "template.h"

typedef struct llm_config {
    const char *prompt;
    const char *system;
    int64_t max_tokens;
    double temperature;
    int stream;
    const char *tools;
    int passthrough;
    const char *model;
} llm_config;

static const fr_option llm_options[] = {
    {"prompt", FR_OPT_STRING, NULL, 0, 0,
     "user message template, e.g. \"Summarize: {{input.text}}\" or {{steps.ID.text}} "
     "(required unless passthrough)",
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
    {"passthrough", FR_OPT_BOOL, "false", 0, 0,
     "the run input is a whole normalized provider request, sent on as it is (no prompt)",
     offsetof(llm_config, passthrough)},
    {"model", FR_OPT_STRING, NULL, 0, 0,
     "the model to ask for, instead of the provider's configured one", offsetof(llm_config, model)},
    {NULL, 0, NULL, 0, 0, NULL, 0},
};

/* What a template path may start with: the two members of the step input. */
static const char *const llm_roots[] = {"input", "steps", NULL};

typedef struct llm_state {
    const fr_host_api *host;
    const llm_config *cfg;
    char *tools;          /* compact JSON of the tools, checked once in init (NULL: none) */
    char temperature[40]; /* its JSON text ("" when unset) */
} llm_state;

static fr_status llm_init(const fr_host_api *host, const void *config, void **state)
{
    const llm_config *cfg = config;
    char err[200];
    if (cfg->passthrough && (cfg->prompt || cfg->system || cfg->tools)) {
        host->set_error(NULL, "llm: option passthrough takes the whole request from the run "
                              "input: prompt, system and tools cannot be set with it");
        return FR_E_CONFIG;
    }
    if (!cfg->prompt && !cfg->passthrough) {
        host->set_error(NULL, "llm: option prompt is required");
        return FR_E_CONFIG;
    }
    if (cfg->prompt && pu_tmpl_check(cfg->prompt, llm_roots, err, sizeof err) != 0) {
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
    char *tools_text = NULL;
    if (tools) {
        const char *t = pu_json_text(tools, NULL);
        tools_text = t ? strdup(t) : NULL;
    }
    json_object_put(tools);
    if (!s || (tools && !tools_text)) {
        free(tools_text);
        if (s)
            host->free_mem(s);
        return FR_E_NOMEM;
    }
    s->host = host;
    s->cfg = cfg;
    s->tools = tools_text;
    s->temperature[0] = '\0';
    if (cfg->temperature >= 0)
        pu_double_text(cfg->temperature, s->temperature, sizeof s->temperature);
    *state = s;
    return FR_OK;
}

static void llm_fini(void *state)
{
    llm_state *s = state;
    if (s) {
        free(s->tools);
        s->host->free_mem(s);
    }
}

/* Renders template `which` ("prompt", "system") over the step input into out as a JSON
 * string.  Returns FR_OK, FR_E_CONFIG or FR_E_NOMEM, with the call's error set. */
static fr_status render(const fr_host_api *host, fr_call *call, const char *which, const char *tmpl,
                        const frk_json_doc *input, frk_buf *out)
{
    frk_buf buf = {0};
    char err[200];
    int missing = 0;
    fr_status st = pu_tmpl_render(tmpl, input, &buf, &missing, err, sizeof err);
    if (st == FR_OK)
        frk_json_put_string(out, buf.data ? buf.data : "", buf.len);
    frk_buf_free(&buf);
    if (st == FR_E_CONFIG && missing)
        host->set_error(call, "llm: template path \"%s\" not found in step input (%s)", err, which);
    else if (st == FR_E_CONFIG)
        host->set_error(call, "llm: option %s: %s", which, err);
    else if (st == FR_E_NOMEM)
        host->set_error(call, "llm: out of memory rendering the %s", which);
    return st;
}

/* Writes the normalized chat request into req: {system?, messages: [{role, content}],
 * max_tokens?, temperature?, tools?, stream}.  Returns FR_OK or a failure with the call's
 * error set. */
/* passthrough: the run input (the step input's "input", an object) as the request, with
 * "model" first when the agent sets one (the gateway's input has none of its own). */
static fr_status pass_request(const llm_state *s, fr_call *call, const frk_json_doc *input,
                              frk_buf *req)
{
    int in = frk_json_get(input, 0, "input", FRK_JSON_OBJECT);
    if (in < 0) {
        s->host->set_error(call, "llm: passthrough needs the run input to be a normalized "
                                 "request object");
        return FR_E_INVALID;
    }
    frk_buf body = {0};
    frk_json_put_value(&body, input, in);
    if (s->cfg->model && body.len >= 2) {
        frk_buf_lit(req, "{\"model\":");
        frk_json_put_cstr(req, s->cfg->model);
        if (body.len > 2)
            frk_buf_lit(req, ",");
        frk_buf_append(req, body.data + 1, body.len - 1);
    } else {
        frk_buf_append(req, body.data, body.len);
    }
    int oom = body.oom;
    frk_buf_free(&body);
    if (oom || req->oom) {
        s->host->set_error(call, "llm: out of memory building the request");
        return FR_E_NOMEM;
    }
    return FR_OK;
}

static fr_status build_request(const llm_state *s, fr_call *call, const frk_json_doc *input,
                               frk_buf *req)
{
    const fr_host_api *host = s->host;
    const llm_config *cfg = s->cfg;
    if (cfg->passthrough)
        return pass_request(s, call, input, req);
    /* The prompt first: its error is the one reported when both templates fail. */
    frk_buf prompt = {0}, system = {0};
    fr_status st = render(host, call, "prompt", cfg->prompt, input, &prompt);
    if (st == FR_OK && cfg->system)
        st = render(host, call, "system", cfg->system, input, &system);
    frk_buf_lit(req, "{");
    if (cfg->model) {
        frk_buf_lit(req, "\"model\":");
        frk_json_put_cstr(req, cfg->model);
        frk_buf_lit(req, ",");
    }
    if (st == FR_OK && cfg->system) {
        frk_buf_lit(req, "\"system\":");
        frk_buf_append(req, system.data, system.len);
        frk_buf_lit(req, ",");
    }
    frk_buf_lit(req, "\"messages\":[{\"role\":\"user\",\"content\":");
    if (st == FR_OK)
        frk_buf_append(req, prompt.data, prompt.len);
    frk_buf_lit(req, "}]");
    frk_buf_free(&prompt);
    frk_buf_free(&system);
    if (st != FR_OK)
        return st;
    if (cfg->max_tokens > 0) {
        frk_buf_lit(req, ",\"max_tokens\":");
        frk_json_put_int64(req, cfg->max_tokens);
    }
    if (s->temperature[0]) {
        frk_buf_lit(req, ",\"temperature\":");
        frk_buf_append(req, s->temperature, strlen(s->temperature));
    }
    if (s->tools) {
        frk_buf_lit(req, ",\"tools\":");
        frk_buf_append(req, s->tools, strlen(s->tools));
    }
    if (cfg->stream)
        frk_buf_lit(req, ",\"stream\":true}");
    else
        frk_buf_lit(req, ",\"stream\":false}");
    if (req->oom) {
        host->set_error(call, "llm: out of memory building the request");
        return FR_E_NOMEM;
    }
    return FR_OK;
}

static fr_status bad_response(const fr_host_api *host, fr_call *call, const char *what)
{
    host->set_error(call, "llm: malformed provider response: %s", what);
    return FR_E_BAD_RESPONSE;
}

/* Member `key` of the response's top level when absent, null or of type `type`: 0 and
 * *tok (-1 or the null's token); otherwise -1. */
static int optional_member(const frk_json_doc *r, const char *key, frk_json_type type, int *tok)
{
    *tok = frk_json_member(r, 0, key);
    return *tok < 0 || frk_json_type_of(r, *tok) == FRK_JSON_NULL ||
                   frk_json_type_of(r, *tok) == type
               ? 0
               : -1;
}

/* Turns the provider's response into the step output {text, usage, model, provider,
 * tool_calls, finish_reason}.  tool_calls is [] and finish_reason null when the provider
 * does not say; usage is null when the provider's is (the vendor reported none). */
static fr_status build_output(const fr_host_api *host, fr_call *call, const char *resp,
                              size_t resp_len, char **output, size_t *output_len)
{
    char err[200];
    frk_json_doc r;
    if (frk_json_scan_any(&r, resp, resp_len, err, sizeof err) != 0) {
        host->set_error(call, "llm: malformed provider response: %s", err);
        return FR_E_BAD_RESPONSE;
    }
    int text = frk_json_get(&r, 0, "text", FRK_JSON_STRING),
        usage = frk_json_get(&r, 0, "usage", FRK_JSON_OBJECT);
    int in = frk_json_get(&r, usage, "input_tokens", FRK_JSON_INT);
    int outt = frk_json_get(&r, usage, "output_tokens", FRK_JSON_INT);
    /* null: the vendor reported no usage (unknown, which 0 would hide); the host has
     * noted it in the attempt. */
    int u_tok = frk_json_member(&r, 0, "usage");
    int unknown = u_tok >= 0 && frk_json_type_of(&r, u_tok) == FRK_JSON_NULL;
    int model, provider, calls, finish;
    fr_status st = FR_OK;
    if (frk_json_type_of(&r, 0) != FRK_JSON_OBJECT)
        st = bad_response(host, call, "not a JSON object");
    else if (text < 0)
        st = bad_response(host, call, "\"text\" is missing or not a string");
    else if (!unknown && (in < 0 || outt < 0))
        st = bad_response(host, call,
                          "\"usage\" must be null or hold integer input_tokens and output_tokens");
    else if (optional_member(&r, "model", FRK_JSON_STRING, &model) != 0)
        st = bad_response(host, call, "\"model\" is not a string");
    else if (optional_member(&r, "provider", FRK_JSON_STRING, &provider) != 0)
        st = bad_response(host, call, "\"provider\" is not a string");
    else if (optional_member(&r, "tool_calls", FRK_JSON_ARRAY, &calls) != 0)
        st = bad_response(host, call, "\"tool_calls\" is not an array");
    else if (optional_member(&r, "finish_reason", FRK_JSON_STRING, &finish) != 0)
        st = bad_response(host, call, "\"finish_reason\" is not a string");
    if (st != FR_OK) {
        frk_json_free(&r);
        return st;
    }
    /* Values are written as json-c writes them; a missing model or provider is null so
     * the output keeps its shape. */
    frk_buf o = {0};
    frk_buf_lit(&o, "{\"text\":");
    frk_json_put_value(&o, &r, text);
    if (unknown) {
        frk_buf_lit(&o, ",\"usage\":null,\"model\":");
    } else {
        frk_buf_lit(&o, ",\"usage\":{\"input_tokens\":");
        frk_json_put_value(&o, &r, in);
        frk_buf_lit(&o, ",\"output_tokens\":");
        frk_json_put_value(&o, &r, outt);
        frk_buf_lit(&o, "},\"model\":");
    }
    frk_json_put_value_or_null(&o, &r, model);
    frk_buf_lit(&o, ",\"provider\":");
    frk_json_put_value_or_null(&o, &r, provider);
    frk_buf_lit(&o, ",\"tool_calls\":");
    if (calls >= 0 && frk_json_type_of(&r, calls) == FRK_JSON_ARRAY)
        frk_json_put_value(&o, &r, calls);
    else
        frk_buf_lit(&o, "[]");
    frk_buf_lit(&o, ",\"finish_reason\":");
    frk_json_put_value_or_null(&o, &r, finish);
    frk_buf_lit(&o, "}");
    frk_json_free(&r);
    if (o.oom) {
        frk_buf_free(&o);
        host->set_error(call, "llm: out of memory building the output");
        return FR_E_NOMEM;
    }
    st = pu_output_copy(host, call, o.data, o.len, output, output_len);
    frk_buf_free(&o);
    return st;
}

static fr_status llm_invoke(void *state, fr_call *call, const char *input, size_t input_len,
                            char **output, size_t *output_len)
{
    const llm_state *s = state;
    const fr_host_api *host = s->host;
    char err[200];

    frk_json_doc in;
    if (frk_json_scan_any(&in, input, input_len, err, sizeof err) != 0) {
        host->set_error(call, "llm: step input is not valid JSON: %s", err);
        return FR_E_INVALID;
    }
    frk_buf req = {0};
    fr_status st = build_request(s, call, &in, &req);
    frk_json_free(&in);
    char *resp = NULL;
    size_t resp_len = 0;
    /* On failure the host has already recorded the provider's message. */
    if (st == FR_OK)
        st = host->provider_call(call, req.data, req.len, &resp, &resp_len);
    frk_buf_free(&req);
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
    .option_size = sizeof(fr_option), /* ABI 1.1: the row size, so rows may grow */
    .config_size = sizeof(llm_config),
    .init = llm_init,
    .fini = llm_fini,
    .invoke = llm_invoke,
};

FR_PLUGIN_EXPORT const fr_plugin *fluxroute_plugin_v1(void)
{
    return &llm_plugin;
}
