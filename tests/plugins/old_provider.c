/* Test provider built against ABI 1.1 (its descriptor says so): it predates the
 * normalized request's ABI 1.2 fields, so the host must refuse a request carrying any of
 * them instead of letting this plugin drop it.  Answers every request it gets with a
 * fixed normalized response. */
#include <stddef.h>
#include <string.h>

#include <fluxroute/plugin.h>

static const fr_host_api *host;

static fr_status old_init(const fr_host_api *api, const void *config, void **state)
{
    (void)config;
    host = api;
    *state = NULL;
    return FR_OK;
}

static void old_fini(void *state)
{
    (void)state;
}

static fr_status old_complete(void *state, fr_call *call, const char *request, size_t request_len,
                              char **response, size_t *response_len)
{
    (void)state, (void)request, (void)request_len;
    static const char answer[] = "{\"text\":\"old provider answered\",\"tool_calls\":[],"
                                 "\"finish_reason\":\"stop\",\"usage\":{\"input_tokens\":1,"
                                 "\"output_tokens\":2},\"model\":\"old-model\"}";
    char *o = host->alloc(call, sizeof answer);
    if (!o)
        return FR_E_NOMEM;
    memcpy(o, answer, sizeof answer);
    *response = o;
    *response_len = sizeof answer - 1;
    return FR_OK;
}

static const fr_plugin old_plugin = {
    .abi_version = FR_ABI_MAKE(1, 1),
    .struct_size = sizeof(fr_plugin),
    .kind = FR_PLUGIN_PROVIDER,
    .name = "old_provider",
    .version = "1.1.0",
    .description = "test provider built against ABI 1.1",
    .option_size = sizeof(fr_option),
    .init = old_init,
    .fini = old_fini,
    .complete = old_complete,
};

FR_PLUGIN_EXPORT const fr_plugin *fluxroute_plugin_v1(void)
{
    return &old_plugin;
}
