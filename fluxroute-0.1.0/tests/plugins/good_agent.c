/* Test plugin: a well-formed agent with an option table.  Echoes its input. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <fluxroute/plugin.h>

typedef struct good_agent_config {
    const char *greeting;
    int64_t repeat;
    int loud;
    double ratio;
    int64_t pause;
    const char *extra;
} good_agent_config;

static const fr_option options[] = {
    {"greeting", FR_OPT_STRING, "hello", 0, 0, "text to prepend",
     offsetof(good_agent_config, greeting)},
    {"repeat", FR_OPT_INT, "1", 0, 0, "how often", offsetof(good_agent_config, repeat)},
    {"loud", FR_OPT_BOOL, "false", 0, 0, "shout", offsetof(good_agent_config, loud)},
    {"ratio", FR_OPT_DOUBLE, "0.5", 0, 0, "a ratio", offsetof(good_agent_config, ratio)},
    {"pause", FR_OPT_DURATION, "10ms", 0, 0, "a pause", offsetof(good_agent_config, pause)},
    {"extra", FR_OPT_JSON, NULL, 0, 1, "secret JSON", offsetof(good_agent_config, extra)},
    {NULL, 0, NULL, 0, 0, NULL, 0},
};

static fr_status invoke(void *state, fr_call *call, const char *input, size_t input_len,
                        char **output, size_t *output_len)
{
    (void)state;
    (void)call;
    *output = (char *)input; /* never called by the loader tests */
    *output_len = input_len;
    return FR_OK;
}

static const fr_plugin descriptor = {
    .abi_version = FR_ABI_VERSION,
    .struct_size = sizeof(fr_plugin),
    .kind = FR_PLUGIN_AGENT,
    .name = "good_agent",
    .version = "1.2.3",
    .description = "a well-formed test agent",
    .options = options,
    .config_size = sizeof(good_agent_config),
    .invoke = invoke,
};

FR_PLUGIN_EXPORT const fr_plugin *fluxroute_plugin_v1(void)
{
    return &descriptor;
}
