/* Test agent for the normalized provider request: sends its option `request` (any JSON,
 * as written in the manifest) to its provider through host->provider_call, as is, and
 * outputs the provider's normalized response.  So end-to-end tests can hand a provider
 * plugin fields no built-in agent writes (ABI 1.2's top_p, seed, tool_choice, user,
 * developer messages, content parts, json_schema) and see what the host and the plugin
 * make of them. */
#include <stddef.h>
#include <string.h>

#include <fluxroute/plugin.h>

typedef struct rawcall_config {
    const char *request;
} rawcall_config;

static const fr_host_api *host;

static const fr_option rawcall_options[] = {
    {"request", FR_OPT_JSON, NULL, 1, 0, "the normalized request sent as is",
     offsetof(rawcall_config, request)},
    {NULL, 0, NULL, 0, 0, NULL, 0},
};

static fr_status rawcall_init(const fr_host_api *api, const void *config, void **state)
{
    host = api;
    *state = (void *)config;
    return FR_OK;
}

static void rawcall_fini(void *state)
{
    (void)state;
}

static fr_status rawcall_invoke(void *state, fr_call *call, const char *input, size_t len,
                                char **out, size_t *out_len)
{
    (void)input, (void)len;
    const rawcall_config *cfg = state;
    return host->provider_call(call, cfg->request, strlen(cfg->request), out, out_len);
}

static const fr_plugin rawcall_plugin = {
    .abi_version = FR_ABI_VERSION,
    .struct_size = sizeof(fr_plugin),
    .kind = FR_PLUGIN_AGENT,
    .name = "rawcall",
    .version = "1.0.0",
    .description = "test agent: sends its option request to its provider as is",
    .options = rawcall_options,
    .option_size = sizeof(fr_option),
    .config_size = sizeof(rawcall_config),
    .init = rawcall_init,
    .fini = rawcall_fini,
    .invoke = rawcall_invoke,
};

FR_PLUGIN_EXPORT const fr_plugin *fluxroute_plugin_v1(void)
{
    return &rawcall_plugin;
}
