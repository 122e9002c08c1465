/* `fluxroute worker`: serve's execution options (shared with cmd_serve.c) into
 * fr_exec_options, then the worker (core/serve/worker.c). */
#include <stdio.h>

#include "cli/cli.h"
#include "serve/serve.h"
#include "state/breaker_redis.h"
#include "state/state.h"

const char fr__worker_usage[] =
    "usage: fluxroute worker --state URL --manifest-dir DIR [--concurrency N]\n"
    "                        [--visibility-timeout D] [--providers FILE] [--plugin-dir DIR]...\n"
    "                        [--controlplane URL] [--metrics-addr HOST:PORT]\n"
    "                        [--metrics-series-per-namespace N] [--max-runs N]\n"
    "                        [--max-runs-per-tenant N] [--max-body BYTES] [--retention D]\n"
    "                        [--retention-count N] [--retention-per-tenant N]\n"
    "                        [--retention-bytes SIZE] [--max-steps N] [--max-threads N]\n"
    "                        [--max-run-timeout D] [--max-run-bytes SIZE]\n"
    "                        [--max-yaml-nodes N] [--max-yaml-aliases N]\n"
    "                        [--trust-plugin NAME]... [--enable-chaos] [--max-helpers N]\n"
    "                        [--helper-memory SIZE] [--max-abandoned N] [--shutdown-grace D]\n"
    "                        [--journal [--journal-sync effect|step|off]]\n"
    "\n"
    "Executes the asynchronous runs that serve replicas put in the durable queue, with no\n"
    "API listener: the same execution as serve (its providers, plugins, limits, trust and\n"
    "containment options, which mean what they mean for serve: see fluxroute serve --help).\n"
    "The first line printed is `worker consuming URL` (the password masked), then `metrics\n"
    "listening on http://HOST:PORT` with --metrics-addr.\n"
    "\n"
    "  --state URL          redis://[user:password@]host[:port][/db] (ROUTER_STATE_URL):\n"
    "                       the Redis the serve replicas use; anything else exits 2\n"
    "  --manifest-dir DIR   named manifests come from here (ROUTER_MANIFEST_DIR): the same\n"
    "                       files as serve's; a run whose manifest changed since it was\n"
    "                       queued (another sha256) fails, saying so\n"
    "  --concurrency N      runs executed at once (default: --max-runs shared among the\n"
    "                       cores)\n"
    "  --visibility-timeout D  how long a run may stay with a consumer that stopped\n"
    "                       answering before another claims it and runs it again (default\n"
    "                       30s); a run started more than 3 times fails with class crashed\n"
    "  --journal            runs journal to Redis as they go; a run claimed from a\n"
    "                       consumer that died resumes from its journal (completed steps\n"
    "                       and recorded calls are not made again) instead of starting over\n"
    "  --journal-sync MODE  effect, step (default) or off: when an entry reaches Redis\n"
    "                       (docs/reference.md, \"Durable runs\")\n"
    "  --controlplane URL   key usage, and the rate card that prices monthly budgets: the\n"
    "                       limits of a run's tenant and key come with its queue entry and\n"
    "                       are enforced here; without it a budgeted call fails\n"
    "                       (budget_exceeded), naming the missing --controlplane\n"
    "  --metrics-addr HOST:PORT  /metrics and /healthz without authentication\n"
    "                       (ROUTER_METRICS_ADDR): bind it to a private network only\n"
    "  --shutdown-grace D   on SIGTERM/SIGINT the worker takes no new runs, lets those it\n"
    "                       holds finish within D (default 30s) and hands the rest back to\n"
    "                       the queue, where another consumer takes them at once\n"
    "Warns at start when Redis does not report appendonly yes and appendfsync always:\n"
    "only then does an accepted run survive a crash of Redis (README, \"The durable queue\").\n"
    "\n"
    "Environment:\n" FR_EXEC_ENV_HELP;

int fr__cmd_worker(const cli_command *cmd, int argc, char **argv)
{
    fr_exec_args a = {0};
    cli_opt opts[FR_EXEC_OPTS_MAX + 1] = {{0}};
    fr__exec_args_table(&a, opts);
    const char *pos[1];
    size_t n_pos;
    int rc = fr__cli_parse(cmd, argc, argv, opts, pos, 0, &n_pos);
    if (rc != 0)
        return rc > 0 ? FR_EXIT_OK : FR_EXIT_USAGE;
    fr_exec_options x;
    if ((rc = fr__exec_args_resolve(cmd, &a, &x)) != FR_EXIT_OK)
        return rc;
    fr__breaker_redis_install(x.state); /* breakers shared with the replicas */
    fr_status st = fr__worker_main(&x);
    fr__breaker_redis_uninstall();
    fr__state_free(x.state);
    return st == FR_OK ? FR_EXIT_OK : st == FR_E_INVALID ? FR_EXIT_USAGE : FR_EXIT_FAILED;
}
