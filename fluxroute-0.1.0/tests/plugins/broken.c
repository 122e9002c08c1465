/* Test plugin: one source, many deliberately broken descriptors.  The build defines
 * FR_TP_NAME (the file name without .so) and one BROKEN_* macro choosing the defect;
 * everything else is a valid agent, so the loader must catch exactly that defect. */
#include <stddef.h>
#include <stdint.h>

#include <fluxroute/plugin.h>

#define FR_TP_STR_(x) #x
#define FR_TP_STR(x)  FR_TP_STR_(x)

typedef struct broken_config {
    const char *text;
    int64_t count;
} broken_config;

static const fr_option options[] = {
#if defined(BROKEN_DUP_OPTIONS)
    {"text", FR_OPT_STRING, NULL, 0, 0, "first", offsetof(broken_config, text)},
    {"text", FR_OPT_STRING, NULL, 0, 0, "again", offsetof(broken_config, text)},
#elif defined(BROKEN_OPT_NAME)
    {"Bad-Name", FR_OPT_STRING, NULL, 0, 0, "bad name", offsetof(broken_config, text)},
#elif defined(BROKEN_OPT_TYPE)
    {"text", (fr_option_type)99, NULL, 0, 0, "bad type", offsetof(broken_config, text)},
#elif defined(BROKEN_OPT_OFFSET)
    {"count", FR_OPT_INT, NULL, 0, 0, "past the end", sizeof(broken_config)},
#else
    {"text", FR_OPT_STRING, NULL, 0, 0, "fine", offsetof(broken_config, text)},
    {"count", FR_OPT_INT, "3", 0, 0, "fine", offsetof(broken_config, count)},
#endif
    {NULL, 0, NULL, 0, 0, NULL, 0},
};

static fr_status invoke(void *state, fr_call *call, const char *input, size_t input_len,
                        char **output, size_t *output_len)
{
    (void)state;
    (void)call;
    *output = (char *)input;
    *output_len = input_len;
    return FR_OK;
}

static int marker;

static const fr_plugin descriptor = {
#if defined(BROKEN_ABI)
    .abi_version = FR_ABI_MAKE(2, 0),
#else
    .abi_version = FR_ABI_VERSION,
#endif
#if defined(BROKEN_SHORT)
    .struct_size = 16,
#else
    .struct_size = sizeof(fr_plugin),
#endif
#if defined(BROKEN_KIND)
    .kind = (fr_plugin_kind)7,
#elif defined(BROKEN_NO_COMPLETE)
    .kind = FR_PLUGIN_PROVIDER,
#else
    .kind = FR_PLUGIN_AGENT,
#endif
#if defined(BROKEN_MISNAMED)
    .name = "someone_else",
#else
    .name = FR_TP_STR(FR_TP_NAME),
#endif
    .version = "0.0.0",
    .description = "a broken test plugin",
    .options = options,
    .config_size = sizeof(broken_config),
#if !defined(BROKEN_NO_INVOKE) && !defined(BROKEN_NO_COMPLETE)
    .invoke = invoke,
#endif
#if defined(BROKEN_RESERVED)
    .reserved = {NULL, NULL, &marker},
#endif
};

FR_PLUGIN_EXPORT const fr_plugin *fluxroute_plugin_v1(void)
{
    (void)marker;
    (void)invoke;
#if defined(BROKEN_NULL)
    (void)descriptor;
    return NULL;
#else
    return &descriptor;
#endif
}
