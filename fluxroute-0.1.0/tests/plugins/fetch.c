/* Test agent: makes one HTTP request through the host (so it is recorded and replayed)
 * and returns {"status": HTTP status, "body": the body as text}. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <fluxroute/plugin.h>

typedef struct fetch_config {
    const char *url;
    const char *method;
} fetch_config;

static const fr_host_api *host;

static const fr_option fetch_options[] = {
    {"url", FR_OPT_STRING, NULL, 1, 0, "the URL to request", offsetof(fetch_config, url)},
    {"method", FR_OPT_STRING, "GET", 0, 0, "HTTP method", offsetof(fetch_config, method)},
    {NULL, 0, NULL, 0, 0, NULL, 0},
};

static fr_status fetch_init(const fr_host_api *api, const void *config, void **state)
{
    host = api;
    *state = (void *)config;
    return FR_OK;
}

static fr_status fetch_invoke(void *state, fr_call *call, const char *input, size_t len, char **out,
                              size_t *out_len)
{
    (void)input, (void)len;
    const fetch_config *cfg = state;
    const char *headers[] = {"Accept: application/json"};
    fr_http_request req = {.struct_size = sizeof req,
                           .method = cfg->method,
                           .url = cfg->url,
                           .headers = headers,
                           .n_headers = 1};
    fr_http_response resp = {0};
    fr_status st = host->http(call, &req, &resp);
    if (st != FR_OK)
        return st;
    /* {"status":N,"bytes":N}: the body itself may not be JSON. */
    char *o = host->alloc(call, 64);
    if (!o)
        return FR_E_NOMEM;
    int n = snprintf(o, 64, "{\"status\":%d,\"bytes\":%zu}", resp.status, resp.body_len);
    *out = o;
    *out_len = (size_t)n;
    return FR_OK;
}

static const fr_plugin fetch_plugin = {
    .abi_version = FR_ABI_VERSION,
    .struct_size = sizeof(fr_plugin),
    .kind = FR_PLUGIN_AGENT,
    .name = "fetch",
    .version = "1.0.0",
    .description = "test agent: one HTTP request through the host",
    .options = fetch_options,
    .config_size = sizeof(fetch_config),
    .init = fetch_init,
    .invoke = fetch_invoke,
};

FR_PLUGIN_EXPORT const fr_plugin *fluxroute_plugin_v1(void)
{
    return &fetch_plugin;
}
