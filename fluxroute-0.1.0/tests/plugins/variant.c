/* Test agent built twice (VARIANT=1 and VARIANT=2) to prove that replay points at the
 * step where a changed plugin behaves differently.  Variant 2 changes its output only
 * when the input carries "tweak": true, so other steps still replay identically. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <fluxroute/plugin.h>

#ifndef VARIANT
#define VARIANT 1
#endif
#define STR_(x) #x
#define STR(x)  STR_(x)

static const fr_host_api *host;

static fr_status variant_init(const fr_host_api *api, const void *config, void **state)
{
    (void)config;
    host = api;
    *state = NULL;
    return FR_OK;
}

static fr_status variant_invoke(void *state, fr_call *call, const char *input, size_t len,
                                char **out, size_t *out_len)
{
    (void)state;
    int tweak = VARIANT == 2 && strstr(input, "\"tweak\":true") != NULL;
    const char *fmt = tweak ? "{\"changed\":true,\"seen\":%zu}" : "{\"seen\":%zu}";
    char *o = host->alloc(call, 64);
    if (!o)
        return FR_E_NOMEM;
    int n = snprintf(o, 64, fmt, len);
    *out = o;
    *out_len = (size_t)n;
    return FR_OK;
}

static const fr_plugin variant_plugin = {
    .abi_version = FR_ABI_VERSION,
    .struct_size = sizeof(fr_plugin),
    .kind = FR_PLUGIN_AGENT,
    .name = "variant",
    .version = "1.0." STR(VARIANT),
    .description = "test agent with two builds",
    .init = variant_init,
    .invoke = variant_invoke,
};

FR_PLUGIN_EXPORT const fr_plugin *fluxroute_plugin_v1(void)
{
    return &variant_plugin;
}
