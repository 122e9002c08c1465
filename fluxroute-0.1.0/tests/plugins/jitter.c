/* Test agent: sleeps a random time (0..max_delay) drawn from the host's per-step random
 * stream, then returns its input.  Used to shake thread timing in scheduler tests. */
#include <stddef.h>
#include <string.h>

#include <fluxroute/plugin.h>

typedef struct jitter_config {
    int64_t max_delay_us;
} jitter_config;

static const fr_host_api *host;

static const fr_option jitter_options[] = {
    {"max_delay", FR_OPT_DURATION, "2ms", 0, 0, "upper bound of the random sleep",
     offsetof(jitter_config, max_delay_us)},
    {NULL, 0, NULL, 0, 0, NULL, 0},
};

static fr_status jitter_init(const fr_host_api *api, const void *config, void **state)
{
    host = api;
    *state = (void *)config;
    return FR_OK;
}

static void jitter_fini(void *state)
{
    (void)state;
}

static fr_status jitter_invoke(void *state, fr_call *call, const char *input, size_t len,
                               char **out, size_t *out_len)
{
    const jitter_config *cfg = state;
    if (cfg->max_delay_us > 0) {
        fr_status st =
            host->sleep_us(call, (int64_t)(host->random_u64(call) % (uint64_t)cfg->max_delay_us));
        if (st != FR_OK)
            return st;
    }
    char *copy = host->alloc(call, len + 1);
    if (!copy)
        return FR_E_NOMEM;
    memcpy(copy, input, len);
    copy[len] = '\0';
    *out = copy;
    *out_len = len;
    return FR_OK;
}

static const fr_plugin jitter_plugin = {
    .abi_version = FR_ABI_VERSION,
    .struct_size = sizeof(fr_plugin),
    .kind = FR_PLUGIN_AGENT,
    .name = "jitter",
    .version = "1.0.0",
    .description = "test agent: random sleep, then echo",
    .options = jitter_options,
    .config_size = sizeof(jitter_config),
    .init = jitter_init,
    .fini = jitter_fini,
    .invoke = jitter_invoke,
};

FR_PLUGIN_EXPORT const fr_plugin *fluxroute_plugin_v1(void)
{
    return &jitter_plugin;
}
