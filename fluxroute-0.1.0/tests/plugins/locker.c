/* Test agent: takes the lease "shared" through the host, reports its fencing token and
 * releases it (leases for plugins are recorded and replayed like other effects). */
#include <stddef.h>
#include <stdio.h>

#include <fluxroute/plugin.h>

static const fr_host_api *host;

static fr_status locker_init(const fr_host_api *api, const void *config, void **state)
{
    (void)config;
    host = api;
    *state = NULL;
    return FR_HOST_HAS(api, lease_acquire) ? FR_OK : FR_E_UNSUPPORTED;
}

static fr_status locker_invoke(void *state, fr_call *call, const char *input, size_t len,
                               char **out, size_t *out_len)
{
    (void)state, (void)input, (void)len;
    uint64_t token = 0;
    fr_status st = host->lease_acquire(call, "shared", 2000000, 1000000, &token);
    if (st != FR_OK) {
        host->set_error(call, "locker: cannot take the lease (status %d)", st);
        return st;
    }
    st = host->lease_release(call, "shared");
    char *o = host->alloc(call, 64);
    if (!o)
        return FR_E_NOMEM;
    int n = snprintf(o, 64, "{\"fencing_token\":%llu,\"released\":%s}", (unsigned long long)token,
                     st == FR_OK ? "true" : "false");
    *out = o;
    *out_len = (size_t)n;
    return FR_OK;
}

static const fr_plugin locker_plugin = {
    .abi_version = FR_ABI_VERSION,
    .struct_size = sizeof(fr_plugin),
    .kind = FR_PLUGIN_AGENT,
    .name = "locker",
    .version = "1.0.0",
    .description = "test agent: takes and releases a lease",
    .init = locker_init,
    .invoke = locker_invoke,
};

FR_PLUGIN_EXPORT const fr_plugin *fluxroute_plugin_v1(void)
{
    return &locker_plugin;
}
