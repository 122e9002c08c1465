/* Test agent: fails its first `fail_attempts` attempts with rate_limited and asks for
 * `retry_after` through the host, then echoes its input. */
#include <stddef.h>
#include <string.h>

#include <fluxroute/plugin.h>

typedef struct ratelimit_config {
    int64_t fail_attempts;
    int64_t retry_after_us;
} ratelimit_config;

static const fr_host_api *host;

static const fr_option ratelimit_options[] = {
    {"fail_attempts", FR_OPT_INT, "1", 0, 0, "attempts that answer 429",
     offsetof(ratelimit_config, fail_attempts)},
    {"retry_after", FR_OPT_DURATION, "0", 0, 0, "the Retry-After to ask for",
     offsetof(ratelimit_config, retry_after_us)},
    {NULL, 0, NULL, 0, 0, NULL, 0},
};

static fr_status ratelimit_init(const fr_host_api *api, const void *config, void **state)
{
    host = api;
    *state = (void *)config;
    return FR_OK;
}

static fr_status ratelimit_invoke(void *state, fr_call *call, const char *input, size_t len,
                                  char **out, size_t *out_len)
{
    const ratelimit_config *cfg = state;
    if (host->attempt(call) <= cfg->fail_attempts) {
        host->set_retry_after(call, cfg->retry_after_us);
        host->set_error(call, "ratelimit: HTTP 429 on attempt %d", host->attempt(call));
        return FR_E_RATE_LIMITED;
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

static const fr_plugin ratelimit_plugin = {
    .abi_version = FR_ABI_VERSION,
    .struct_size = sizeof(fr_plugin),
    .kind = FR_PLUGIN_AGENT,
    .name = "ratelimit",
    .version = "1.0.0",
    .description = "test agent: answers 429 with Retry-After, then echoes",
    .options = ratelimit_options,
    .config_size = sizeof(ratelimit_config),
    .init = ratelimit_init,
    .invoke = ratelimit_invoke,
};

FR_PLUGIN_EXPORT const fr_plugin *fluxroute_plugin_v1(void)
{
    return &ratelimit_plugin;
}
