/* `fluxroute serve`: its options (argv and the ROUTER_* variables) into fr_serve_options,
 * then the server (core/serve/serve.c). */
#include <errno.h>
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
#include "serve/run_queue.h"
#include "serve/serve.h"
#include "state/breaker_redis.h"
#include "state/state.h"
#include "trace/journal.h"

const char fr__serve_usage[] =
    "usage: fluxroute serve [--addr HOST:PORT] --manifest-dir DIR --keys FILE\n"
    "                       [--providers FILE] [--plugin-dir DIR]... [--threads N]\n"
    "                       [--max-runs N] [--max-runs-per-tenant N] [--max-body SIZE]\n"
    "                       [--retention DURATION] [--retention-count N]\n"
    "                       [--retention-per-tenant N] [--retention-bytes SIZE]\n"
    "                       [--metrics-addr HOST:PORT] [--metrics-series-per-namespace N]\n"
    "                       [--max-steps N] [--max-threads N] [--max-run-timeout D]\n"
    "                       [--max-run-bytes SIZE] [--max-yaml-nodes N] [--max-yaml-aliases N]\n"
    "                       [--trust-plugin NAME]... [--enable-chaos] [--max-helpers N]\n"
    "                       [--helper-memory SIZE] [--max-abandoned N] [--shutdown-grace D]\n"
    "                       [--state URL] [--concurrency N] [--visibility-timeout D]\n"
    "                       [--max-queued N] [--journal [--journal-sync MODE]] [--routes FILE]\n"
    "\n"
    "Serves the router API: POST /v1/run, /v1/validate, /v1/replay; GET /v1/runs;\n"
    "POST /v1/chat/completions, GET /v1/models (the OpenAI-compatible gateway);\n"
    "GET/DELETE /v1/runs/{id}, GET /v1/runs/{id}/trace; /healthz, /readyz; /metrics (admin\n"
    "or metrics role).  With port 0 an ephemeral port is bound and `listening on http://HOST:PORT` "
    "is\n"
    "the first line printed (then `metrics listening on http://HOST:PORT` with --metrics-addr).\n"
    "The web console is at /ui (open http://HOST:PORT/ui and paste an API key).\n"
    "\n"
    "  --addr HOST:PORT     also [V6]:PORT or a host name (ROUTER_ADDR, default :8080)\n"
    "  --manifest-dir DIR   named manifests come only from here (ROUTER_MANIFEST_DIR)\n"
    "  --keys FILE          API keys and client identities (ROUTER_KEYS_FILE); SIGHUP re-reads it\n"
    "  --providers FILE     the providers requests may use (ROUTER_PROVIDERS_FILE)\n"
    "  --routes FILE        the OpenAI gateway's model routes, YAML (ROUTER_ROUTES_FILE);\n"
    "                       SIGHUP re-reads it\n"
    "  --threads N          request threads (default: one per CPU core, at least 2).\n"
    "                       Quick synchronous runs wait on them for at most 50 ms (runs\n"
    "                       of the built-in echo execute on them); slower ones (waiting\n"
    "                       on providers) get threads of their own\n"
    "  --max-runs N         runs in flight before 429 (default 64)\n"
    "  --max-runs-per-tenant N\n"
    "                       runs in flight for one tenant before 429 (default: a quarter\n"
    "                       of --max-runs, at least 1, so no tenant fills the server)\n"
    "  --max-body SIZE      request body limit (bytes, or 64KiB, 1MiB; default 1MiB);\n"
    "                       also bounds named manifest files\n"
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
    "  --concurrency N      with --state redis, queued runs this replica executes at once\n"
    "                       (default: --max-runs shared among the cores; 0: none, the\n"
    "                       replica only accepts them and leaves them to fluxroute worker)\n"
    "  --visibility-timeout D  with --state redis, how long a queued run may stay with a\n"
    "                       consumer that stopped answering before another claims it\n"
    "                       (default 30s)\n"
    "  --journal            with --state redis, queued runs journal to Redis as they go,\n"
    "                       and a run claimed from a consumer that died resumes from its\n"
    "                       journal instead of starting over (docs/reference.md, \"Durable\n"
    "                       runs\"); with --state memory nothing is durable: refused\n"
    "  --journal-sync MODE  with --journal: effect (each entry awaited), step (default:\n"
    "                       entries written at each step outcome) or off (as step)\n"
    "  --max-queued N       with --state redis, async runs the queue may hold, waiting or\n"
    "                       executing (default 10000; 0: no cap); past it, 429\n"
    "                       too_many_runs\n"
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
    "\n"
    "Environment:\n"
    "  ROUTER_ADDR, ROUTER_KEYS_FILE, ROUTER_ROUTES_FILE  as --addr, --keys and --routes\n"
    "  ROUTER_TLS_ENABLED, ROUTER_TLS_CERT_FILE, ROUTER_TLS_KEY_FILE, ROUTER_TLS_CA_FILE,\n"
    "  ROUTER_TLS_REQUIRE_CLIENT_CERT  TLS and mTLS of --addr (probe it with fluxroute probe\n"
    "                        https://... --cacert FILE)\n"
    "  SERVE_SLA_WINDOW_S    seconds per SLA window reported to the control plane "
    "(60)\n" FR_EXEC_ENV_HELP;

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

size_t fr__exec_args_table(fr_exec_args *a, cli_opt *opts)
{
    const cli_opt table[] = {
        {"--manifest-dir", 1, &a->mdir, NULL, NULL},
        {"--providers", 1, &a->providers, NULL, NULL},
        {"--plugin-dir", 1, NULL, &a->dirs, NULL},
        {"--max-runs", 1, &a->max_runs, NULL, NULL},
        {"--max-runs-per-tenant", 1, &a->per_tenant, NULL, NULL},
        {"--max-body", 1, &a->max_body, NULL, NULL},
        {"--retention", 1, &a->retention, NULL, NULL},
        {"--retention-count", 1, &a->ret_count, NULL, NULL},
        {"--retention-per-tenant", 1, &a->ret_tenant, NULL, NULL},
        {"--retention-bytes", 1, &a->ret_bytes, NULL, NULL},
        {"--controlplane", 1, &a->cp_url, NULL, NULL},
        {"--metrics-addr", 1, &a->metrics_addr, NULL, NULL},
        {"--metrics-series-per-namespace", 1, &a->series, NULL, NULL},
        {"--max-steps", 1, &a->limit[FR_LIMIT_MAX_STEPS], NULL, NULL},
        {"--max-threads", 1, &a->limit[FR_LIMIT_MAX_THREADS], NULL, NULL},
        {"--max-run-timeout", 1, &a->limit[FR_LIMIT_MAX_RUN_TIMEOUT], NULL, NULL},
        {"--max-run-bytes", 1, &a->limit[FR_LIMIT_MAX_RUN_BYTES], NULL, NULL},
        {"--max-yaml-nodes", 1, &a->limit[FR_LIMIT_MAX_YAML_NODES], NULL, NULL},
        {"--max-yaml-aliases", 1, &a->limit[FR_LIMIT_MAX_YAML_ALIASES], NULL, NULL},
        {"--trust-plugin", 1, NULL, &a->trusted, NULL},
        {"--enable-chaos", 0, NULL, NULL, &a->enable_chaos},
        {"--max-helpers", 1, &a->max_helpers, NULL, NULL},
        {"--helper-memory", 1, &a->helper_mem, NULL, NULL},
        {"--max-abandoned", 1, &a->max_abandoned, NULL, NULL},
        {"--shutdown-grace", 1, &a->grace, NULL, NULL},
        {"--state", 1, &a->state_url, NULL, NULL},
        {"--concurrency", 1, &a->concurrency, NULL, NULL},
        {"--visibility-timeout", 1, &a->visibility, NULL, NULL},
        {"--journal", 0, NULL, NULL, &a->journal},
        {"--journal-sync", 1, &a->journal_sync, NULL, NULL},
    };
    size_t n = sizeof table / sizeof table[0];
    memcpy(opts, table, sizeof table);
    return n;
}

/* Reads the count option `name` from `text` (unset: *out keeps its default).  Trailing
 * characters are refused, never dropped: "64k" is not 64.  Returns 0, or -1 after the
 * error naming the option. */
static int count_arg(const cli_command *cmd, const char *name, const char *text, long *out)
{
    if (!text)
        return 0;
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (!*text || *end || errno || v < 1) {
        fr__cli_error(cmd, "%s %s: not a positive whole number", name, text);
        return -1;
    }
    *out = v;
    return 0;
}

int fr__exec_args_resolve(const cli_command *cmd, fr_exec_args *a, fr_exec_options *o)
{
    memset(o, 0, sizeof *o);
    a->mdir = env_or(a->mdir, "ROUTER_MANIFEST_DIR", NULL);
    a->providers = env_or(a->providers, "ROUTER_PROVIDERS_FILE", NULL);
    long max_runs = 64, ret_count = 1000, per_tenant = 0, ret_tenant = 0;
    long long max_body = 1 << 20;
    if (count_arg(cmd, "--max-runs", a->max_runs, &max_runs) != 0 ||
        count_arg(cmd, "--retention-count", a->ret_count, &ret_count) != 0 ||
        count_arg(cmd, "--max-runs-per-tenant", a->per_tenant, &per_tenant) != 0 ||
        count_arg(cmd, "--retention-per-tenant", a->ret_tenant, &ret_tenant) != 0)
        return FR_EXIT_USAGE;
    if (a->max_body) { /* a size: "65536", "64KiB", "1MiB" */
        uint64_t b = 0;
        const char *bwhy = "must be positive";
        if (fr__size_parse(a->max_body, &b, &bwhy) != 0 || b == 0 || b > (1ULL << 40)) {
            fr__cli_error(cmd, "--max-body %s: %s", a->max_body,
                          b > (1ULL << 40) ? "too large" : bwhy);
            return FR_EXIT_USAGE;
        }
        max_body = (long long)b;
    }
    /* A quarter (rounded up): one tenant, even three at once, cannot take every slot from
     * the others. */
    if (!a->per_tenant)
        per_tenant = max_runs > 0 ? (max_runs - 1) / 4 + 1 : 1;
    /* Retention is fair without a per-tenant cap (eviction takes from the largest holder);
     * the cap lets an operator hold any one tenant lower. */
    if (!a->ret_tenant)
        ret_tenant = ret_count;
    char *end = NULL;
    long concurrency = a->concurrency ? strtol(a->concurrency, &end, 10) : 1;
    if (end && *end)
        concurrency = -1;
    uint64_t ret_bytes = 256ULL << 20;
    int64_t retention = 3600LL * 1000000, visibility = 30LL * 1000000;
    const char *why;
    if (a->retention &&
        (fr__duration_parse(a->retention, &retention, &why) != 0 || retention <= 0)) {
        fr__cli_error(cmd, "--retention %s: not a positive duration", a->retention);
        return FR_EXIT_USAGE;
    }
    if (a->visibility &&
        (fr__duration_parse(a->visibility, &visibility, &why) != 0 || visibility < 100000)) {
        fr__cli_error(cmd, "--visibility-timeout %s: not a duration of at least 100ms",
                      a->visibility);
        return FR_EXIT_USAGE;
    }
    if (a->ret_bytes) {
        int bad = fr__size_parse(a->ret_bytes, &ret_bytes, &why) != 0;
        if (!bad && (ret_bytes == 0 || ret_bytes > SIZE_MAX)) {
            bad = 1;
            why = ret_bytes ? "too large" : "must be positive";
        }
        if (bad) {
            fr__cli_error(cmd, "--retention-bytes %s: %s", a->ret_bytes, why);
            return FR_EXIT_USAGE;
        }
    }
    if (max_runs < 1 || max_body < 1 || ret_count < 1 || per_tenant < 1 || ret_tenant < 1) {
        fr__cli_error(cmd, "--max-runs, --max-runs-per-tenant, --max-body, --retention-count "
                           "and --retention-per-tenant must be positive");
        return FR_EXIT_USAGE;
    }
    /* A serve replica may leave the queue to workers (0); a worker must take runs. */
    int serve = strcmp(cmd->name, "serve") == 0;
    if (concurrency < (serve ? 0 : 1) || (a->concurrency && !*a->concurrency)) {
        fr__cli_error(cmd, "--concurrency %s: must be a whole number, %s", a->concurrency,
                      serve ? "0 or more" : "1 or more");
        return FR_EXIT_USAGE;
    }
    fr_serve_limits limits;
    fr__serve_limits_defaults(&limits);
    limits.value[FR_LIMIT_MAX_BODY] = max_body;
    for (int i = 0; i < FR_LIMIT_COUNT_; i++) {
        char why[256];
        if (a->limit[i] &&
            fr__serve_limits_set(&limits, (fr_limit_id)i, a->limit[i], why, sizeof why) != 0) {
            fr__cli_error(cmd, "%s", why);
            return FR_EXIT_USAGE;
        }
    }
    if (fr__containment_parse(&o->containment, a->max_helpers, a->helper_mem, a->max_abandoned,
                              a->grace, (size_t)max_runs, &why) != 0) {
        fr__cli_error(cmd, "%s", why);
        return FR_EXIT_USAGE;
    }
    a->cp_url = env_or(a->cp_url, "CONTROLPLANE_URL", NULL);
    a->metrics_addr = env_or(a->metrics_addr, "ROUTER_METRICS_ADDR", NULL);
    if (metrics_configure(cmd, a->metrics_addr, a->series) != 0)
        return FR_EXIT_USAGE;
    if (!a->mdir) {
        fr__cli_error(cmd, "--manifest-dir is required (see fluxroute %s --help)", cmd->name);
        return FR_EXIT_USAGE;
    }
    a->state_url = env_or(a->state_url, "ROUTER_STATE_URL", "memory");
    char err[512];
    if (fr__state_open(a->state_url, "--state", getenv("ROUTER_STATE_PREFIX"), &o->state, err,
                       sizeof err) != FR_OK) {
        fr__cli_error(cmd, "%s", err);
        return FR_EXIT_USAGE;
    }
    /* --journal: queued runs journal to the Redis state (docs/reference.md "Durable runs");
     * with the memory state nothing is durable, and a journal there would only pretend. */
    int sync = FR_JOURNAL_SYNC_STEP;
    if (fr__cli_journal_sync(cmd, a->journal_sync, a->journal, &sync) != 0) {
        fr__state_free(o->state);
        return FR_EXIT_USAGE;
    }
    if (a->journal && o->state->kind != FR_STATE_REDIS) {
        fr__cli_error(cmd, "--journal needs --state redis://...: with --state memory a run "
                           "lives in this process only, and nothing of it is durable");
        fr__state_free(o->state);
        return FR_EXIT_USAGE;
    }
    o->runs = (fr_runs_config){.manifest_dir = a->mdir,
                               .plugin_dirs = a->dirs.items,
                               .n_plugin_dirs = a->dirs.n,
                               .retention_us = retention,
                               .retention_count = (size_t)ret_count,
                               .retention_per_tenant = (size_t)ret_tenant,
                               .retention_bytes = (size_t)ret_bytes,
                               .max_concurrent = (size_t)max_runs,
                               .max_per_tenant = (size_t)per_tenant,
                               .limits = limits,
                               .trusted_plugins = a->trusted.items,
                               .n_trusted_plugins = a->trusted.n,
                               .enable_chaos = a->enable_chaos,
                               .state = o->state,
                               .journal = a->journal,
                               .journal_sync = sync};
    o->queue = (fr_queue_options){
        .concurrency =
            a->concurrency ? (size_t)concurrency : fr__queue_default_concurrency((size_t)max_runs),
        .visibility_us = visibility};
    o->max_body = (size_t)max_body;
    o->providers_file = a->providers;
    o->controlplane_url = a->cp_url;
    o->controlplane_service_key = getenv("CONTROLPLANE_SERVICE_KEY");
    o->controlplane_spool = env_or(NULL, "CONTROLPLANE_SPOOL", "fluxroute-usage.spool");
    o->metrics_addr = a->metrics_addr;
    return FR_EXIT_OK;
}

int fr__cmd_serve(const cli_command *cmd, int argc, char **argv)
{
    const char *addr = NULL, *keys = NULL, *threads_arg = NULL, *max_queued_arg = NULL,
               *routes = NULL;
    fr_exec_args a = {0};
    const char *pos[1];
    size_t n_pos;
    cli_opt opts[FR_EXEC_OPTS_MAX + 6] = {
        {"--addr", 1, &addr, NULL, NULL},
        {"--keys", 1, &keys, NULL, NULL},
        {"--threads", 1, &threads_arg, NULL, NULL},
        {"--max-queued", 1, &max_queued_arg, NULL, NULL},
        {"--routes", 1, &routes, NULL, NULL},
    };
    fr__exec_args_table(&a, opts + 5); /* the table ends with the zeroed entries after it */
    int rc = fr__cli_parse(cmd, argc, argv, opts, pos, 0, &n_pos);
    if (rc != 0)
        return rc > 0 ? FR_EXIT_OK : FR_EXIT_USAGE;
    addr = env_or(addr, "ROUTER_ADDR", ":8080");
    keys = env_or(keys, "ROUTER_KEYS_FILE", NULL);
    routes = env_or(routes, "ROUTER_ROUTES_FILE", NULL);
    /* Runs execute on the request threads: more of them than cores only preempt each
     * other (the p99 of short runs doubles on 2 cores with 2 threads per core). */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long threads = threads_arg ? strtol(threads_arg, NULL, 10) : cores > 2 ? cores : 2;
    if (threads < 1) {
        fr__cli_error(cmd, "--threads must be positive");
        return FR_EXIT_USAGE;
    }
    char *end = NULL;
    long long max_queued = max_queued_arg ? strtoll(max_queued_arg, &end, 10) : 10000;
    if (max_queued < 0 || (end && (*end || end == max_queued_arg))) {
        fr__cli_error(cmd, "--max-queued %s: not a count (0 or more)", max_queued_arg);
        return FR_EXIT_USAGE;
    }
    fr_exec_options x;
    if ((rc = fr__exec_args_resolve(cmd, &a, &x)) != FR_EXIT_OK)
        return rc;
    if (!keys && !x.controlplane_url) {
        fr__cli_error(cmd, "--manifest-dir and --keys (or --controlplane) are required (see "
                           "fluxroute serve --help)");
        fr__state_free(x.state);
        return FR_EXIT_USAGE;
    }
    fr__breaker_redis_install(x.state); /* breakers shared through Redis (a no-op for memory) */
    fr_serve_options o = {.addr = addr,
                          .keys_file = keys,
                          .providers_file = x.providers_file,
                          .routes_file = routes,
                          .controlplane_url = x.controlplane_url,
                          .controlplane_service_key = x.controlplane_service_key,
                          .controlplane_spool = x.controlplane_spool,
                          .metrics_addr = x.metrics_addr,
                          .threads = (unsigned)threads,
                          .max_body = x.max_body,
                          .runs = x.runs,
                          .containment = x.containment,
                          .queue = x.queue};
    o.queue.max_queued = (size_t)max_queued;
    fr_status st = fr__serve_main(&o);
    fr__breaker_redis_uninstall();
    fr__state_free(x.state);
    return st == FR_OK ? FR_EXIT_OK : st == FR_E_INVALID ? FR_EXIT_USAGE : FR_EXIT_FAILED;
}
