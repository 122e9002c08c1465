/* `fluxroute serve`: its options (argv and the ROUTER_* variables) into fr_serve_options,
 * then the server (core/serve/serve.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/duration.h"
#include "base/size.h"
#include "cli/cli.h"
#include "http/http.h"
#include "observe/observe.h"
#include "serve/serve.h"
#include "state/breaker_redis.h"
#include "state/state.h"

const char fr__serve_usage[] =
    "usage: fluxroute serve [--addr HOST:PORT] --manifest-dir DIR --keys FILE\n"
    "                       [--providers FILE] [--plugin-dir DIR]... [--threads N]\n"
    "                       [--max-runs N] [--max-runs-per-tenant N] [--max-body BYTES]\n"
    "                       [--retention DURATION] [--retention-count N]\n"
    "                       [--retention-per-tenant N] [--retention-bytes SIZE]\n"
    "                       [--metrics-addr HOST:PORT] [--metrics-series-per-namespace N]\n"
    "                       [--max-steps N] [--max-threads N] [--max-run-timeout D]\n"
    "                       [--max-run-bytes SIZE] [--max-yaml-nodes N] [--max-yaml-aliases N]\n"
    "                       [--trust-plugin NAME]... [--enable-chaos] [--max-helpers N]\n"
    "                       [--helper-memory SIZE] [--max-abandoned N] [--shutdown-grace D]\n"
    "                       [--state URL]\n"
    "\n"
    "Serves the router API: POST /v1/run, /v1/validate, /v1/replay; GET /v1/runs;\n"
    "GET/DELETE /v1/runs/{id}, GET /v1/runs/{id}/trace; /healthz, /readyz; /metrics (admin\n"
    "or metrics role).  With port 0 an ephemeral port is bound and `listening on http://HOST:PORT` "
    "is\n"
    "the first line printed (then `metrics listening on http://HOST:PORT` with --metrics-addr).\n"
    "\n"
    "  --addr HOST:PORT     also [V6]:PORT or a host name (ROUTER_ADDR, default :8080)\n"
    "  --manifest-dir DIR   named manifests come only from here (ROUTER_MANIFEST_DIR)\n"
    "  --keys FILE          API keys and client identities (ROUTER_KEYS_FILE); SIGHUP re-reads it\n"
    "  --providers FILE     the providers requests may use (ROUTER_PROVIDERS_FILE)\n"
    "  --threads N          request threads (default: one per CPU core, at least 2).\n"
    "                       Quick synchronous runs wait on them for at most 50 ms (runs\n"
    "                       of the built-in echo execute on them); slower ones (waiting\n"
    "                       on providers) get threads of their own\n"
    "  --max-runs N         runs in flight before 429 (default 64)\n"
    "  --max-runs-per-tenant N\n"
    "                       runs in flight for one tenant before 429 (default: a quarter\n"
    "                       of --max-runs, at least 1, so no tenant fills the server)\n"
    "  --max-body BYTES     request body limit (default 1048576); also bounds named\n"
    "                       manifest files\n"
    "  --retention D        how long finished runs and traces are kept (default 1h)\n"
    "  --retention-count N  and how many at most (default 1000); past it, the tenant\n"
    "                       holding the most finished runs loses its oldest\n"
    "  --retention-per-tenant N\n"
    "                       and how many per tenant (default: --retention-count)\n"
    "  --retention-bytes SIZE\n"
    "                       and how many bytes their reports and traces hold (default\n"
    "                       256M; units K, M, G); past it, the tenant holding the most\n"
    "                       bytes loses its oldest\n"
    "  --metrics-addr HOST:PORT  a second, plain-HTTP listener WITHOUT authentication for\n"
    "                       /metrics, /healthz and /readyz (ROUTER_METRICS_ADDR): bind it to\n"
    "                       a private network only\n"
    "  --metrics-series-per-namespace N  series a namespace's agent, breaker, provider and\n"
    "                       model labels may create; past it they read \"other\" (default 256)\n"
    "  --controlplane URL   look keys up in, and report usage to, the control plane\n"
    "                       (CONTROLPLANE_URL; CONTROLPLANE_SERVICE_KEY is the service key;\n"
    "                       CONTROLPLANE_SPOOL the usage spool, default ./fluxroute-usage.spool)\n"
    "  --state URL          where runs, the async queue and breakers live (ROUTER_STATE_URL):\n"
    "                       memory (default: this process) or\n"
    "                       redis://[user:password@]host[:port][/db], shared by replicas\n"
    "                       and workers (docs/scaling.md); ROUTER_STATE_PREFIX names the\n"
    "                       key prefix (default fluxroute)\n"
    "\n"
    "Limits on what one request may cost.  A manifest over one is refused with 400\n"
    "limit_exceeded naming it (\"max\": the count, the bytes, or milliseconds), whether\n"
    "named, inline, validated or inside a replayed trace:\n"
    "  --max-steps N        steps per manifest (default 1000: ten times the largest example)\n"
    "  --max-threads N      worker threads per pipeline (default 32).  A larger\n"
    "                       router.worker_pool_size is clamped, with a note in the report;\n"
    "                       idle pipelines kept for reuse hold at most 8 N threads together\n"
    "  --max-run-timeout D  longest router.run_timeout, router.default_timeout and agent\n"
    "                       timeout (default 10m); also the run deadline of a manifest\n"
    "                       without run_timeout\n"
    "  --max-run-bytes SIZE what a run's step outputs hold together while it runs, and\n"
    "                       the report and trace kept per run (default 16MiB); beyond it\n"
    "                       the step fails (bad_request), or the trace is dropped, then the\n"
    "                       report shortened, each with a note\n"
    "  --max-yaml-nodes N   YAML nodes per document, an alias counting as every node it\n"
    "                       repeats (default 100000)\n"
    "  --max-yaml-aliases N YAML aliases per document (default 10000)\n"
    "\n"
    "Plugins: agents run in helper processes (isolation: process) unless the server trusts\n"
    "their plugin: echo, llm, mock, openai, anthropic and gemini, found on the server's own\n"
    "path (--plugin-dir or the built-in directory), not through a manifest's plugins.dirs.\n"
    "  --trust-plugin NAME  trust one more plugin (repeatable): its agents may run in this\n"
    "                       process, and `isolation: none` is honoured for them\n"
    "  --enable-chaos       allow the chaos test plugin (refused with 400 plugin_disabled\n"
    "                       otherwise; untrusted unless --trust-plugin chaos)\n"
    "  --max-helpers N      helper processes alive at once (default 64, as --max-runs);\n"
    "                       a call that finds none free waits until its deadline (5 s\n"
    "                       without one), then fails with class overloaded\n"
    "  --helper-memory SIZE address-space limit of each helper, e.g. 512M, 2G (default 1G;\n"
    "                       0: none); a helper past it fails alone (class crashed)\n"
    "  --max-abandoned N    threads left inside hung in-process plugin calls (default 16);\n"
    "                       a plugin whose hang reaches the cap is refused until restart\n"
    "                       (503 plugin_quarantined)\n"
    "  --shutdown-grace D   on SIGTERM/SIGINT, how long runs in flight may finish (default\n"
    "                       30s); then the process exits anyway (status 0), naming what it\n"
    "                       abandoned\n"
    "TLS: ROUTER_TLS_ENABLED, ROUTER_TLS_CERT_FILE, ROUTER_TLS_KEY_FILE, ROUTER_TLS_CA_FILE,\n"
    "ROUTER_TLS_REQUIRE_CLIENT_CERT.\n";

static const char *env_or(const char *v, const char *name, const char *def)
{
    const char *e = getenv(name);
    return v ? v : e && *e ? e : def;
}

/* Checks --metrics-addr (NULL: none) and applies --metrics-series-per-namespace (NULL:
 * the default).  Returns 0, or -1 after saying what is wrong. */
static int metrics_configure(const cli_command *cmd, const char *addr, const char *series)
{
    fr_http_addr sa;
    const char *why;
    if (addr && fr__http_addr_parse(addr, &sa, &why) != 0) {
        fr__cli_error(cmd, "--metrics-addr %s: %s", addr, why);
        return -1;
    }
    if (!series)
        return 0;
    char *end = NULL;
    long long n = strtoll(series, &end, 10);
    if (!*series || *end || n < 0) {
        fr__cli_error(cmd, "--metrics-series-per-namespace %s: not a count (0 or more)", series);
        return -1;
    }
    fr__metrics_set_series_cap((size_t)n);
    return 0;
}

int fr__cmd_serve(const cli_command *cmd, int argc, char **argv)
{
    const char *addr = NULL, *mdir = NULL, *keys = NULL, *providers = NULL, *threads_arg = NULL;
    const char *max_runs_arg = NULL, *max_body_arg = NULL, *ret_arg = NULL, *ret_count_arg = NULL;
    const char *cp_url = NULL, *metrics_addr = NULL, *series_arg = NULL;
    const char *per_tenant_arg = NULL, *ret_tenant_arg = NULL;
    const char *ret_bytes_arg = NULL;
    const char *limit_args[FR_LIMIT_COUNT_] = {0};
    const char *max_helpers_arg = NULL, *helper_mem_arg = NULL, *max_abandoned_arg = NULL;
    const char *grace_arg = NULL, *state_url = NULL;
    int enable_chaos = 0;
    const char *pos[1];
    size_t n_pos;
    cli_list dirs = {0}, trusted = {0};
    const cli_opt opts[] = {
        {"--addr", 1, &addr, NULL, NULL},
        {"--manifest-dir", 1, &mdir, NULL, NULL},
        {"--keys", 1, &keys, NULL, NULL},
        {"--providers", 1, &providers, NULL, NULL},
        {"--plugin-dir", 1, NULL, &dirs, NULL},
        {"--threads", 1, &threads_arg, NULL, NULL},
        {"--max-runs", 1, &max_runs_arg, NULL, NULL},
        {"--max-runs-per-tenant", 1, &per_tenant_arg, NULL, NULL},
        {"--max-body", 1, &max_body_arg, NULL, NULL},
        {"--retention", 1, &ret_arg, NULL, NULL},
        {"--retention-count", 1, &ret_count_arg, NULL, NULL},
        {"--retention-per-tenant", 1, &ret_tenant_arg, NULL, NULL},
        {"--retention-bytes", 1, &ret_bytes_arg, NULL, NULL},
        {"--controlplane", 1, &cp_url, NULL, NULL},
        {"--metrics-addr", 1, &metrics_addr, NULL, NULL},
        {"--metrics-series-per-namespace", 1, &series_arg, NULL, NULL},
        {"--max-steps", 1, &limit_args[FR_LIMIT_MAX_STEPS], NULL, NULL},
        {"--max-threads", 1, &limit_args[FR_LIMIT_MAX_THREADS], NULL, NULL},
        {"--max-run-timeout", 1, &limit_args[FR_LIMIT_MAX_RUN_TIMEOUT], NULL, NULL},
        {"--max-run-bytes", 1, &limit_args[FR_LIMIT_MAX_RUN_BYTES], NULL, NULL},
        {"--max-yaml-nodes", 1, &limit_args[FR_LIMIT_MAX_YAML_NODES], NULL, NULL},
        {"--max-yaml-aliases", 1, &limit_args[FR_LIMIT_MAX_YAML_ALIASES], NULL, NULL},
        {"--trust-plugin", 1, NULL, &trusted, NULL},
        {"--enable-chaos", 0, NULL, NULL, &enable_chaos},
        {"--max-helpers", 1, &max_helpers_arg, NULL, NULL},
        {"--helper-memory", 1, &helper_mem_arg, NULL, NULL},
        {"--max-abandoned", 1, &max_abandoned_arg, NULL, NULL},
        {"--shutdown-grace", 1, &grace_arg, NULL, NULL},
        {"--state", 1, &state_url, NULL, NULL},
        {NULL, 0, NULL, NULL, NULL}};
    int rc = fr__cli_parse(cmd, argc, argv, opts, pos, 0, &n_pos);
    if (rc != 0)
        return rc > 0 ? FR_EXIT_OK : FR_EXIT_USAGE;
    addr = env_or(addr, "ROUTER_ADDR", ":8080");
    mdir = env_or(mdir, "ROUTER_MANIFEST_DIR", NULL);
    keys = env_or(keys, "ROUTER_KEYS_FILE", NULL);
    providers = env_or(providers, "ROUTER_PROVIDERS_FILE", NULL);
    /* Runs execute on the request threads: more of them than cores only preempt each
     * other (the p99 of short runs doubles on 2 cores with 2 threads per core). */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long threads = threads_arg ? strtol(threads_arg, NULL, 10) : cores > 2 ? cores : 2;
    long max_runs = max_runs_arg ? strtol(max_runs_arg, NULL, 10) : 64;
    long long max_body = max_body_arg ? strtoll(max_body_arg, NULL, 10) : 1 << 20;
    long ret_count = ret_count_arg ? strtol(ret_count_arg, NULL, 10) : 1000;
    /* A quarter (rounded up): one tenant, even three at once, cannot take every slot from
     * the others. */
    long per_tenant = per_tenant_arg ? strtol(per_tenant_arg, NULL, 10)
                      : max_runs > 0 ? (max_runs - 1) / 4 + 1
                                     : 1;
    /* Retention is fair without a per-tenant cap (eviction takes from the largest holder);
     * the cap lets an operator hold any one tenant lower. */
    long ret_tenant = ret_tenant_arg ? strtol(ret_tenant_arg, NULL, 10) : ret_count;
    uint64_t ret_bytes = 256ULL << 20;
    int64_t retention = 3600LL * 1000000;
    const char *why;
    if (ret_arg && (fr__duration_parse(ret_arg, &retention, &why) != 0 || retention <= 0)) {
        fr__cli_error(cmd, "--retention %s: not a positive duration", ret_arg);
        return FR_EXIT_USAGE;
    }
    if (ret_bytes_arg) {
        int bad = fr__size_parse(ret_bytes_arg, &ret_bytes, &why) != 0;
        if (!bad && (ret_bytes == 0 || ret_bytes > SIZE_MAX)) {
            bad = 1;
            why = ret_bytes ? "too large" : "must be positive";
        }
        if (bad) {
            fr__cli_error(cmd, "--retention-bytes %s: %s", ret_bytes_arg, why);
            return FR_EXIT_USAGE;
        }
    }
    if (threads < 1 || max_runs < 1 || max_body < 1 || ret_count < 1 || per_tenant < 1 ||
        ret_tenant < 1) {
        fr__cli_error(cmd, "--threads, --max-runs, --max-runs-per-tenant, --max-body, "
                           "--retention-count and --retention-per-tenant must be positive");
        return FR_EXIT_USAGE;
    }
    fr_serve_limits limits;
    fr__serve_limits_defaults(&limits);
    limits.value[FR_LIMIT_MAX_BODY] = max_body;
    for (int i = 0; i < FR_LIMIT_COUNT_; i++) {
        char why[256];
        if (limit_args[i] &&
            fr__serve_limits_set(&limits, (fr_limit_id)i, limit_args[i], why, sizeof why) != 0) {
            fr__cli_error(cmd, "%s", why);
            return FR_EXIT_USAGE;
        }
    }
    fr_containment cont;
    if (fr__containment_parse(&cont, max_helpers_arg, helper_mem_arg, max_abandoned_arg, grace_arg,
                              (size_t)max_runs, &why) != 0) {
        fr__cli_error(cmd, "%s", why);
        return FR_EXIT_USAGE;
    }
    cp_url = env_or(cp_url, "CONTROLPLANE_URL", NULL);
    metrics_addr = env_or(metrics_addr, "ROUTER_METRICS_ADDR", NULL);
    if (metrics_configure(cmd, metrics_addr, series_arg) != 0)
        return FR_EXIT_USAGE;
    if (!mdir || (!keys && !cp_url)) {
        fr__cli_error(cmd, "--manifest-dir and --keys (or --controlplane) are required (see "
                           "fluxroute serve --help)");
        return FR_EXIT_USAGE;
    }
    state_url = env_or(state_url, "ROUTER_STATE_URL", "memory");
    fr_state *state = NULL;
    char err[512];
    if (fr__state_open(state_url, "--state", getenv("ROUTER_STATE_PREFIX"), &state, err,
                       sizeof err) != FR_OK) {
        fr__cli_error(cmd, "%s", err);
        return FR_EXIT_USAGE;
    }
    fr__breaker_redis_install(state); /* breakers shared through Redis (a no-op for memory) */
    fr_serve_options o = {.addr = addr,
                          .keys_file = keys,
                          .providers_file = providers,
                          .controlplane_url = cp_url,
                          .controlplane_service_key = getenv("CONTROLPLANE_SERVICE_KEY"),
                          .controlplane_spool =
                              env_or(NULL, "CONTROLPLANE_SPOOL", "fluxroute-usage.spool"),
                          .metrics_addr = metrics_addr,
                          .threads = (unsigned)threads,
                          .max_body = (size_t)max_body,
                          .runs = {.manifest_dir = mdir,
                                   .plugin_dirs = dirs.items,
                                   .n_plugin_dirs = dirs.n,
                                   .retention_us = retention,
                                   .retention_count = (size_t)ret_count,
                                   .retention_per_tenant = (size_t)ret_tenant,
                                   .retention_bytes = (size_t)ret_bytes,
                                   .max_concurrent = (size_t)max_runs,
                                   .max_per_tenant = (size_t)per_tenant,
                                   .limits = limits,
                                   .trusted_plugins = trusted.items,
                                   .n_trusted_plugins = trusted.n,
                                   .enable_chaos = enable_chaos,
                                   .state = state},
                          .containment = cont};
    fr_status st = fr__serve_main(&o);
    fr__breaker_redis_uninstall();
    fr__state_free(state);
    return st == FR_OK ? FR_EXIT_OK : st == FR_E_INVALID ? FR_EXIT_USAGE : FR_EXIT_FAILED;
}
