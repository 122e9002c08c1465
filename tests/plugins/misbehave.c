/* Test agent for containment in serve: a third-party plugin that misbehaves on some
 * inputs.  The run input's "do" picks what it does:
 *   "segv"    writes through a null pointer (SIGSEGV)
 *   "abort"   calls abort() (SIGABRT)
 *   "exit"    calls exit(3) in the middle of a call
 *   "stack"   recurses without end (stack overflow)
 *   "alloc"   allocates without bound, writing through a failed allocation as careless
 *             code does; it gives up (failing, not crashing) past 16 GiB of address space,
 *             so that an unlimited process shows as such rather than exhausting the host
 *   "hang"    never returns, ignoring deadlines and cancellation
 *   "slow"    waits 1 s (through the host) and answers its input
 *   "clocks"  reads the clock 300,000 times (each read is a recorded effect; it stops
 *             early when its run is stopped), then answers its input
 *   "limits"  answers {"oom_score_adj": N, "rlimit_as": BYTES or -1} of its process
 * anything else: answers its input, like echo. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fluxroute/plugin.h>

static const fr_host_api *host;

static fr_status mb_init(const fr_host_api *api, const void *config, void **state)
{
    (void)config;
    host = api;
    *state = NULL;
    return FR_OK;
}

static int wants(const char *input, const char *what)
{
    char key[48];
    snprintf(key, sizeof key, "\"do\":\"%s\"", what);
    return strstr(input, key) != NULL;
}

/* Deep recursion the compiler cannot turn into a loop; `limit` (from a volatile) keeps
 * it from being provably endless. */
static volatile int limit = 1 << 30;
static int recurse(volatile char *prev, int depth)
{
    volatile char frame[4096];
    frame[0] = (char)depth;
    frame[4095] = prev ? prev[0] : 0;
    if (depth >= limit)
        return frame[0];
    return recurse(frame, depth + 1) + frame[4095];
}

static fr_status copy_out(fr_call *call, const char *text, char **out, size_t *out_len)
{
    size_t n = strlen(text);
    char *o = host->alloc(call, n + 1);
    if (!o)
        return FR_E_NOMEM;
    memcpy(o, text, n + 1);
    *out = o;
    *out_len = n;
    return FR_OK;
}

static fr_status mb_invoke(void *state, fr_call *call, const char *input, size_t len, char **out,
                           size_t *out_len)
{
    (void)state;
    if (wants(input, "segv")) {
        volatile int *null = NULL;
        *null = 1;
    } else if (wants(input, "abort")) {
        abort();
    } else if (wants(input, "exit")) {
        exit(3);
    } else if (wants(input, "stack")) {
        return recurse(NULL, 0) ? FR_E_AGENT : FR_E_AGENT;
    } else if (wants(input, "alloc")) {
        for (size_t total = 0; total < (16ULL << 30); total += 64 << 20) {
            char *p = malloc(64 << 20);
            p[0] = 1; /* careless: no check */
        }
        host->set_error(call, "misbehave: allocated 16 GiB without meeting a limit");
        return FR_E_AGENT;
    } else if (wants(input, "hang")) {
        for (;;)
            pause();
    } else if (wants(input, "clocks")) {
        for (int i = 1; i <= 300000; i++) {
            (void)host->clock_us(call);
            /* A well-behaved loop: it stops when the run is stopped. */
            fr_status st = i % 10000 ? FR_OK : host->sleep_us(call, 0);
            if (st != FR_OK)
                return st;
        }
    } else if (wants(input, "slow")) {
        fr_status st = host->sleep_us(call, 1000000);
        if (st != FR_OK)
            return st;
    } else if (wants(input, "limits")) {
        char text[160], adj[32] = "";
        FILE *f = fopen("/proc/self/oom_score_adj", "r");
        if (!f || !fgets(adj, sizeof adj, f))
            snprintf(adj, sizeof adj, "-1");
        if (f)
            fclose(f);
        adj[strcspn(adj, "\n")] = '\0';
        struct rlimit rl;
        long long as = getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                           ? (long long)rl.rlim_cur
                           : -1;
        snprintf(text, sizeof text, "{\"oom_score_adj\": %s, \"rlimit_as\": %lld}", adj, as);
        return copy_out(call, text, out, out_len);
    }
    (void)len;
    return copy_out(call, input, out, out_len);
}

static const fr_plugin misbehave_plugin = {
    .abi_version = FR_ABI_VERSION,
    .struct_size = sizeof(fr_plugin),
    .kind = FR_PLUGIN_AGENT,
    .name = "misbehave",
    .version = "1.0.0",
    .description = "Crashes, exits, overflows, allocates or hangs on some inputs (tests)",
    .init = mb_init,
    .invoke = mb_invoke,
};

FR_PLUGIN_EXPORT const fr_plugin *fluxroute_plugin_v1(void)
{
    return &misbehave_plugin;
}
