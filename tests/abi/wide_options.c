/* Test plugin: an ABI 1.1 agent whose option rows are larger than this host's fr_option,
 * as a plugin built against a later minor that appended a field to fr_option would
 * declare them.  option_size gives the row size; a host that stepped by
 * sizeof(fr_option) instead would read the trailing field of row 0 as the name of row 1
 * and refuse the plugin ("invalid name").  invoke() returns the filled config:
 *     {"greeting": "...", "times": N, "loud": true|false}
 * and, when `url` is set, GETs it through host->http_ex into a response followed by
 * guard bytes, and adds
 *     "status": HTTP status, "bytes": body length, "guard": "intact"|"overwritten"
 * Built with -DBAD_OPTION_SIZE as bad_option_size.so: option_size is smaller than the
 * ABI 1.0 row, which the loader refuses. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <fluxroute/plugin.h>

typedef struct wide_config {
    const char *greeting;
    int64_t times;
    int loud;
    const char *url;
} wide_config;

/* A row of a later minor: the ABI 1.0 fields, then one appended field. */
typedef struct wide_option {
    fr_option v1_0;
    const char *appended; /* what a later minor might add (an example, say) */
} wide_option;

static const wide_option wide_options_table[] = {
    {{"greeting", FR_OPT_STRING, "hello", 0, 0, "the word to repeat",
      offsetof(wide_config, greeting)},
     "NOT AN OPTION NAME"},
    {{"times", FR_OPT_INT, NULL, 1, 0, "how many times", offsetof(wide_config, times)},
     "NOT AN OPTION NAME EITHER"},
    {{"loud", FR_OPT_BOOL, "false", 0, 0, "shout", offsetof(wide_config, loud)}, "NOR THIS"},
    {{"url", FR_OPT_STRING, NULL, 0, 0, "when set, GET it through host->http_ex",
      offsetof(wide_config, url)},
     "NOR THAT"},
    {{NULL, 0, NULL, 0, 0, NULL, 0}, NULL},
};

typedef struct wide_state {
    const fr_host_api *host;
    const wide_config *cfg;
} wide_state;

static fr_status wide_init(const fr_host_api *host, const void *config, void **state)
{
    wide_state *s = host->alloc(NULL, sizeof *s);
    if (!s)
        return FR_E_NOMEM;
    s->host = host;
    s->cfg = config;
    *state = s;
    return FR_OK;
}

static void wide_fini(void *state)
{
    wide_state *s = state;
    if (s)
        s->host->free_mem(s);
}

#define WIDE_GUARD 0xA5

/* GETs cfg->url with http_ex into a response struct followed by guard bytes; appends
 * ,"status":N,"bytes":N,"guard":"..." to tail[size]. */
static fr_status wide_fetch(const wide_state *s, fr_call *call, char *tail, size_t size)
{
    if (!FR_HOST_HAS(s->host, http_ex)) {
        s->host->set_error(call, "wide_options: the host has no http_ex");
        return FR_E_CONFIG;
    }
    struct {
        fr_http_response resp;
        unsigned char guard[16];
    } r;
    memset(&r, WIDE_GUARD, sizeof r);
    fr_http_request req = {.struct_size = sizeof req, .method = "GET", .url = s->cfg->url};
    fr_status st = s->host->http_ex(call, &req, &r.resp, sizeof r.resp);
    if (st != FR_OK)
        return st;
    int intact = 1;
    for (size_t i = 0; i < sizeof r.guard; i++)
        intact &= r.guard[i] == WIDE_GUARD;
    snprintf(tail, size, ",\"status\":%d,\"bytes\":%zu,\"guard\":\"%s\"", r.resp.status,
             r.resp.body_len, intact ? "intact" : "overwritten");
    return FR_OK;
}

static fr_status wide_invoke(void *state, fr_call *call, const char *input, size_t input_len,
                             char **output, size_t *output_len)
{
    (void)input;
    (void)input_len;
    const wide_state *s = state;
    fr_status st = s->host->check_cancel(call);
    if (st != FR_OK)
        return st;
    char tail[128] = "";
    if (s->cfg->url && (st = wide_fetch(s, call, tail, sizeof tail)) != FR_OK)
        return st;
    const char *fmt = "{\"greeting\":\"%s\",\"times\":%lld,\"loud\":%s%s}";
    const char *greeting = s->cfg->greeting ? s->cfg->greeting : "";
    long long times = (long long)s->cfg->times;
    const char *loud = s->cfg->loud ? "true" : "false";
    int n = snprintf(NULL, 0, fmt, greeting, times, loud, tail);
    char *out = n < 0 ? NULL : s->host->alloc(call, (size_t)n + 1);
    if (!out) {
        s->host->set_error(call, "wide_options: out of memory");
        return FR_E_NOMEM;
    }
    snprintf(out, (size_t)n + 1, fmt, greeting, times, loud, tail);
    *output = out;
    *output_len = (size_t)n;
    return FR_OK;
}

static const fr_plugin descriptor = {
    .abi_version = FR_ABI_MAKE(1, 1),
    .struct_size = sizeof(fr_plugin),
    .kind = FR_PLUGIN_AGENT,
#ifdef BAD_OPTION_SIZE
    .name = "bad_option_size",
    .option_size = sizeof(fr_option) - sizeof(size_t),
#else
    .name = "wide_options",
    .option_size = sizeof(wide_option),
#endif
    .version = "1.1.0",
    .description = "an ABI 1.1 agent with option rows larger than fr_option",
    .options = &wide_options_table[0].v1_0,
    .config_size = sizeof(wide_config),
    .init = wide_init,
    .fini = wide_fini,
    .invoke = wide_invoke,
};

FR_PLUGIN_EXPORT const fr_plugin *fluxroute_plugin_v1(void)
{
    return &descriptor;
}
