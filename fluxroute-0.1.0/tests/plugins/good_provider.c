/* Test plugin: a well-formed provider without options, built against ABI 1.0 but
 * claiming a newer minor (1.7): the host must accept a newer minor of its major. */
#include <stddef.h>

#include <fluxroute/plugin.h>

static fr_status complete(void *state, fr_call *call, const char *request, size_t request_len,
                          char **response, size_t *response_len)
{
    (void)state;
    (void)call;
    *response = (char *)request; /* never called by the loader tests */
    *response_len = request_len;
    return FR_OK;
}

static const fr_plugin descriptor = {
    .abi_version = FR_ABI_MAKE(1, 7),
    .struct_size = sizeof(fr_plugin),
    .kind = FR_PLUGIN_PROVIDER,
    .name = "good_provider",
    .version = "0.0.1",
    .description = "a well-formed test provider",
    .complete = complete,
};

FR_PLUGIN_EXPORT const fr_plugin *fluxroute_plugin_v1(void)
{
    return &descriptor;
}
