/* Test plugin for the conformance kit: an agent that breaks the rules on purpose.
 * Built twice (tests/plugins/plugins.am):
 *   bad_calls     calls time() and sleep() directly, which the host cannot record;
 *   alloc_crash   writes through host->alloc's result without checking it, so it
 *                 crashes when an allocation fails. */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fluxroute/plugin.h>

#define STR_(x) #x
#define STR(x)  STR_(x)

static fr_status bc_init(const fr_host_api *host, const void *config, void **state)
{
    (void)config;
    *state = (void *)host;
    return FR_OK;
}

static void bc_fini(void *state)
{
    (void)state;
}

static fr_status bc_invoke(void *state, fr_call *call, const char *input, size_t input_len,
                           char **output, size_t *output_len)
{
    const fr_host_api *host = state;
    (void)input;
    (void)input_len;
#ifdef BAD_CALLS
    /* Wrong: the wall clock and a sleep behind the host's back. */
    time_t now = time(NULL);
    if (now == (time_t)-1)
        sleep(1);
#endif
    char *out = host->alloc(call, 3);
#ifndef ALLOC_CRASH
    if (!out)
        return FR_E_NOMEM;
#endif
    memcpy(out, "{}", 3); /* alloc_crash: a NULL write when the allocation failed */
    *output = out;
    *output_len = 2;
    return FR_OK;
}

static const fr_plugin descriptor = {
    .abi_version = FR_ABI_VERSION,
    .struct_size = sizeof(fr_plugin),
    .kind = FR_PLUGIN_AGENT,
    .name = STR(FR_TP_NAME),
    .version = "1.0.0",
    .description = "breaks the plugin rules on purpose (conformance kit tests)",
    .init = bc_init,
    .fini = bc_fini,
    .invoke = bc_invoke,
};

FR_PLUGIN_EXPORT const fr_plugin *fluxroute_plugin_v1(void)
{
    return &descriptor;
}
