/* Test agent for `plugins test --sample`: needs a string input.topic and refuses any
 * input without one with FR_E_INVALID, as a well-behaved agent should; otherwise answers
 * {"text": "about TOPIC"}.  The scan is deliberately simple (no JSON library): it looks
 * for "topic":" in the input. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <fluxroute/plugin.h>

static const fr_host_api *host;

static fr_status needs_topic_init(const fr_host_api *api, const void *config, void **state)
{
    (void)config;
    host = api;
    *state = NULL;
    return FR_OK;
}

static void needs_topic_fini(void *state)
{
    (void)state;
}

static fr_status needs_topic_invoke(void *state, fr_call *call, const char *input, size_t len,
                                    char **out, size_t *out_len)
{
    (void)state;
    static const char key[] = "\"topic\":\"";
    const char *at = memmem(input, len, key, sizeof key - 1);
    const char *end =
        at ? memchr(at + sizeof key - 1, '"', len - (size_t)(at - input) - (sizeof key - 1)) : NULL;
    if (!end) {
        host->set_error(call, "input.topic is required (a string)");
        return FR_E_INVALID;
    }
    const char *topic = at + sizeof key - 1;
    size_t n = (size_t)(end - topic);
    char *o = host->alloc(call, n + 32);
    if (!o)
        return FR_E_NOMEM;
    *out_len = (size_t)snprintf(o, n + 32, "{\"text\":\"about %.*s\"}", (int)n, topic);
    *out = o;
    return FR_OK;
}

static const fr_plugin descriptor = {
    .abi_version = FR_ABI_VERSION,
    .struct_size = sizeof(fr_plugin),
    .kind = FR_PLUGIN_AGENT,
    .name = "needs_topic",
    .version = "1.0.0",
    .description = "an agent that needs input.topic",
    .init = needs_topic_init,
    .fini = needs_topic_fini,
    .invoke = needs_topic_invoke,
};

FR_PLUGIN_EXPORT const fr_plugin *fluxroute_plugin_v1(void)
{
    return &descriptor;
}
