/* Test agent for billing: makes `calls` provider calls through the host in every attempt
 * (each prompt names the attempt and the call), fails attempts 1..fail_attempts after
 * making them, and outputs a forged usage claim ({"usage": {"input_tokens": claim, ...}},
 * 10^12 by default) that billing must ignore: only what the host saw the provider report counts.
 * For durable runs: with `idempotency` each prompt also carries host->idempotency_key, and
 * with `crash_once: FILE` the process raises SIGSEGV after call `crash_after` when FILE does
 * not exist (creating it first). */
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

#include <fluxroute/plugin.h>

typedef struct twocalls_config {
    int64_t calls;
    int64_t fail_attempts;
    int64_t claim;
    int idempotency;
    const char *crash_once;
    int64_t crash_after;
} twocalls_config;

static const fr_host_api *host;

static const fr_option twocalls_options[] = {
    {"calls", FR_OPT_INT, "2", 0, 0, "provider calls per attempt",
     offsetof(twocalls_config, calls)},
    {"fail_attempts", FR_OPT_INT, "0", 0, 0, "attempts 1..N fail after their calls",
     offsetof(twocalls_config, fail_attempts)},
    {"claim", FR_OPT_INT, "1000000000000", 0, 0, "tokens its output claims it used",
     offsetof(twocalls_config, claim)},
    {"idempotency", FR_OPT_BOOL, "false", 0, 0, "each prompt carries the call's idempotency key",
     offsetof(twocalls_config, idempotency)},
    {"crash_once", FR_OPT_STRING, NULL, 0, 0,
     "crash (SIGSEGV) after call crash_after when this file does not exist, creating it",
     offsetof(twocalls_config, crash_once)},
    {"crash_after", FR_OPT_INT, "1", 0, 0, "the call after which crash_once crashes",
     offsetof(twocalls_config, crash_after)},
    {NULL, 0, NULL, 0, 0, NULL, 0},
};

static fr_status twocalls_init(const fr_host_api *api, const void *config, void **state)
{
    host = api;
    *state = (void *)config;
    return FR_OK;
}

static fr_status twocalls_invoke(void *state, fr_call *call, const char *input, size_t len,
                                 char **out, size_t *out_len)
{
    (void)input, (void)len;
    const twocalls_config *cfg = state;
    int attempt = host->attempt(call);
    for (int64_t i = 0; i < cfg->calls; i++) {
        char req[200];
        const char *key = cfg->idempotency && FR_HOST_HAS(host, idempotency_key)
                              ? host->idempotency_key(call)
                              : NULL;
        snprintf(req, sizeof req,
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"attempt %d call %lld%s%s\"}]}",
                 attempt, (long long)i + 1, key ? " key " : "", key ? key : "");
        char *resp = NULL;
        size_t resp_len = 0;
        fr_status st = host->provider_call(call, req, strlen(req), &resp, &resp_len);
        if (st != FR_OK)
            return st;
        if (cfg->crash_once && i + 1 == cfg->crash_after) {
            int fd = open(cfg->crash_once, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (fd >= 0) {
                close(fd);
                raise(SIGSEGV);
            }
        }
    }
    if (attempt <= cfg->fail_attempts) {
        host->set_error(call, "twocalls: attempt %d fails on purpose", attempt);
        return FR_E_UNAVAILABLE;
    }
    char *o = host->alloc(call, 160);
    if (!o)
        return FR_E_NOMEM;
    int n = snprintf(o, 160,
                     "{\"provider\":\"forged\",\"model\":\"forged-model\",\"usage\":"
                     "{\"input_tokens\":%lld,\"output_tokens\":%lld}}",
                     (long long)cfg->claim, (long long)cfg->claim);
    *out = o;
    *out_len = (size_t)n;
    return FR_OK;
}

static const fr_plugin twocalls_plugin = {
    .abi_version = FR_ABI_VERSION,
    .struct_size = sizeof(fr_plugin),
    .kind = FR_PLUGIN_AGENT,
    .name = "twocalls",
    .version = "1.0.0",
    .description = "test agent: several provider calls per attempt, forged usage in its output",
    .options = twocalls_options,
    .config_size = sizeof(twocalls_config),
    .init = twocalls_init,
    .invoke = twocalls_invoke,
};

FR_PLUGIN_EXPORT const fr_plugin *fluxroute_plugin_v1(void)
{
    return &twocalls_plugin;
}
