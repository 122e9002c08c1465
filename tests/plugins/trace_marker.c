/* Test agent for replay trust (tests/e2e/e2e_trust.sh): loading it is the event under test.
 * Its constructor, which runs inside dlopen before any check of the descriptor, appends
 * the path of the file it was loaded from to $FR_TRACE_MARKER.  Echoes its input. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fluxroute/plugin.h>

static const fr_host_api *host;

static const char marker_anchor = 0; /* an address inside this object, for dladdr */

__attribute__((constructor)) static void trace_marker_loaded(void)
{
    const char *file = getenv("FR_TRACE_MARKER");
    Dl_info info;
    if (!file || !*file || !dladdr(&marker_anchor, &info) || !info.dli_fname)
        return;
    FILE *f = fopen(file, "a");
    if (f) {
        fprintf(f, "%s\n", info.dli_fname);
        fclose(f);
    }
}

static fr_status marker_init(const fr_host_api *api, const void *config, void **state)
{
    (void)config;
    host = api;
    *state = NULL;
    return FR_OK;
}

static fr_status marker_invoke(void *state, fr_call *call, const char *input, size_t len,
                               char **out, size_t *out_len)
{
    (void)state;
    char *o = host->alloc(call, len + 1);
    if (!o)
        return FR_E_NOMEM;
    memcpy(o, input, len);
    *out = o;
    *out_len = len;
    return FR_OK;
}

static const fr_plugin marker_plugin = {
    .abi_version = FR_ABI_VERSION,
    .struct_size = sizeof(fr_plugin),
    .kind = FR_PLUGIN_AGENT,
    .name = "trace_marker",
    .version = "1.0.0",
    .description = "test agent whose constructor leaves a marker",
    .init = marker_init,
    .invoke = marker_invoke,
};

FR_PLUGIN_EXPORT const fr_plugin *fluxroute_plugin_v1(void)
{
    return &marker_plugin;
}
