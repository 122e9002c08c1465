/* echo: an agent whose output is its input, copied into the call's arena.  The default
 * agent of manifests that name no plugin.  No options. */
#include <fluxroute/plugin.h>

#include "plugin_util.h"

static fr_status echo_init(const fr_host_api *host, const void *config, void **state)
{
    (void)config;
    /* The only per-instance state is the host table (for alloc and set_error). */
    *state = (void *)host;
    return FR_OK;
}

static void echo_fini(void *state)
{
    (void)state;
}

static fr_status echo_invoke(void *state, fr_call *call, const char *input, size_t input_len,
                             char **output, size_t *output_len)
{
    return pu_output_copy(state, call, input, input_len, output, output_len);
}

static const fr_plugin echo_plugin = {
    .abi_version = FR_ABI_VERSION,
    .struct_size = sizeof(fr_plugin),
    .kind = FR_PLUGIN_AGENT,
    .name = "echo",
    .version = "1.0.0",
    .description = "Returns its step input unchanged",
    .options = NULL,
    .config_size = 0,
    .init = echo_init,
    .fini = echo_fini,
    .invoke = echo_invoke,
};

FR_PLUGIN_EXPORT const fr_plugin *fluxroute_plugin_v1(void)
{
    return &echo_plugin;
}
