/* fluxroute: the command-line interface, a thin layer over the engine.  Commands are a
 * table; each has its own help text. */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include <fluxroute/version.h>

#include "cli/cli.h"
#include "host/host.h"
#include "host/http_client.h"
#include "lease/lease.h"
#include "plugin/isolate.h"
#include "observe/observe.h"

static int cmd_version(const cli_command *cmd, int argc, char **argv)
{
    const char *pos[1];
    size_t n_pos;
    int json = 0;
    const cli_opt opts[] = {{"--json", 0, NULL, NULL, &json}, {NULL, 0, NULL, NULL, NULL}};
    int rc = fr__cli_parse(cmd, argc, argv, opts, pos, 0, &n_pos);
    if (rc != 0)
        return rc > 0 ? FR_EXIT_OK : FR_EXIT_USAGE;
    if (json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "version", json_object_new_string(FR_VERSION_STRING));
        char abi[16];
        snprintf(abi, sizeof abi, "%d.%d", FR_ABI_MAJOR, FR_ABI_MINOR);
        json_object_object_add(o, "abi", json_object_new_string(abi));
        fr__cli_print_json(o);
    } else {
        printf("fluxroute %s (plugin ABI %d.%d)\n", FR_VERSION_STRING, FR_ABI_MAJOR, FR_ABI_MINOR);
    }
    return FR_EXIT_OK;
}

static const cli_command commands[] = {
    {"run", fr__cmd_run, "run a pipeline manifest",
     "usage: fluxroute run MANIFEST [--input JSON|@FILE] [--json] [--stream] [--seed N]\n"
     "                     [--trace FILE] [--journal FILE] [--journal-sync effect|step|off]\n"
     "                     [--plugin-dir DIR]...\n"
     "\n"
     "Runs the pipeline once.  Text mode prints one line per step (status, attempts,\n"
     "duration), then the outputs of the final steps; --json prints the run report.\n"
     "On a terminal, live progress goes to stderr.  Ctrl-C cancels the run.\n"
     "\n"
     "  --input JSON|@FILE  the run input (default: the manifest's `input:`)\n"
     "  --json              print the JSON run report\n"
     "  --stream            print streamed LLM text (llm `stream: true`) as it arrives\n"
     "  --seed N            seed for the per-step random streams (default: random)\n"
     "  --lease-wait D      with COORDINATION_ENABLED, wait up to D for the run's lease\n"
     "                      (default: fail at once with exit 4, naming the holder)\n"
     "  --trace FILE        record the run (every effect) to FILE for replay/debug\n"
     "                      (default: $TRACE_OUTPUT when set)\n"
     "  --journal FILE      journal the run to FILE (a new file) as it goes, so that\n"
     "                      `fluxroute resume FILE` can finish it if the process dies\n"
     "                      (default: $FLUXROUTE_JOURNAL_DIR/RUN_ID.journal when set)\n"
     "  --journal-sync S    when an entry is durable: effect (each one on disk), step\n"
     "                      (default: each written at once, each step's outcome flushed\n"
     "                      on a syncer thread; the run's end waits for it),\n"
     "                      off (written at step ends, never synced)\n"
     "  --plugin-dir DIR    search DIR for plugins first (repeatable)\n"
     "\n"
     "Exit: 0 all steps succeeded, 1 a step failed, 2 usage/manifest/input error,\n"
     "3 permission denied (REQUEST_ROLE), 130 interrupted.\n"},
    {"resume", fr__cmd_resume, "finish a journaled run whose process died",
     "usage: fluxroute resume JOURNAL [--allow-changed] [--manifest M] [--json]\n"
     "                        [--trace FILE] [--journal-sync effect|step|off]\n"
     "                        [--plugin-dir DIR]...\n"
     "\n"
     "Continues the run a journal (`run --journal`) recorded, with the same run id, seed\n"
     "and input.  Steps the journal settled keep their outcome and are not run again;\n"
     "the recorded effects of a step in flight are served from the journal (no network,\n"
     "no sleeping), and the run goes live at the first effect the journal lacks.  A call\n"
     "that had started but whose answer was not journaled is made again.  The journal\n"
     "goes on being appended to.  The report gains `resumed_from` and per step\n"
     "`from_journal`; `executions` counts this execution.\n"
     "\n"
     "  --manifest M        the manifest to load (default: the path the run used)\n"
     "  --allow-changed     resume even if the manifest or a plugin differs from the\n"
     "                      journal's (sha256); otherwise that is a divergence (exit 1)\n"
     "  --json              print the JSON run report\n"
     "  --trace FILE        write the whole run's trace (default: $TRACE_OUTPUT)\n"
     "  --journal-sync S    as for run (default: step)\n"
     "  --plugin-dir DIR    search DIR for plugins first (repeatable)\n"
     "\n"
     "A half-written last entry is dropped; a corrupted entry is refused with its\n"
     "position.  Exit: as run; 1 also when the build or the replayed prefix diverges\n"
     "from the journal; 2 unreadable, corrupted or foreign journal.\n"},
    {"validate", fr__cmd_validate, "check a manifest and its plugins",
     "usage: fluxroute validate MANIFEST [--json] [--plugin-dir DIR]...\n"
     "\n"
     "Checks the manifest, resolves its plugins and checks each `config:` against the\n"
     "plugin's options.  Every error is printed as file:line:col: message, in file order.\n"
     "\n"
     "Exit: 0 valid, 2 invalid, 3 permission denied.\n"},
    {"replay", fr__cmd_replay, "re-execute a recorded trace offline and check it matches",
     "usage: fluxroute replay TRACE [--manifest M] [--plugin-dir DIR]... [--json]\n"
     "                        [--trust-trace-plugin-dirs]\n"
     "\n"
     "Re-executes the pipeline recorded in TRACE (its embedded manifest, or M to test a\n"
     "changed manifest) with every effect served from the trace: no network, no real\n"
     "clock, no sleeping, no API keys.  Checks that every step's attempts and outputs\n"
     "match the recording.  Changed manifest or plugin files are noted up front.\n"
     "\n"
     "Plugins come from your own search path (--plugin-dir, FLUXROUTE_PLUGIN_PATH, the\n"
     "built-in dir).  The plugins.dirs of the manifest embedded in TRACE are ignored, and\n"
     "the report says so, unless --trust-trace-plugin-dirs is given: a trace from\n"
     "someone else must not choose the code that runs.\n"
     "\n"
     "Exit: 0 identical, 1 diverged (the first divergence is printed: step, attempt,\n"
     "field path, recorded and replayed values), 2 unreadable or invalid trace.\n"},
    {"debug", fr__cmd_debug, "compare two traces and show where they diverge",
     "usage: fluxroute debug EXPECTED ACTUAL [--all] [--json]\n"
     "\n"
     "Compares two traces field by field, ignoring timing fields (run_id, started_at,\n"
     "finished_at, executions and every *_us field except backoff_us).  Prints the first\n"
     "divergence, or all of them with --all.\n"
     "\n"
     "Exit: 0 the same, 1 divergent, 2 unreadable or invalid trace.\n"},
    {"bench", fr__cmd_bench, "run a pipeline repeatedly and report latency",
     "usage: fluxroute bench MANIFEST [--runs N] [--warmup N] [--input JSON|@FILE] [--json]\n"
     "                       [--journal-dir DIR | --journal-redis URL\n"
     "                        [--journal-sync effect|step|off]] [--plugin-dir DIR]...\n"
     "\n"
     "Loads the pipeline once and runs it N times in-process (default 1000, after 100\n"
     "warm-up runs).  Prints mean/p50/p95/p99 per run, runs per second and peak RSS\n"
     "(JSON keys: runs, mean_us, p50_us, p95_us, p99_us, runs_per_sec, peak_rss_kb).\n"
     "With --journal-dir, each run is journaled to a new file in DIR (as run --journal\n"
     "does, timed with the run): the cost of durable runs.  With --journal-redis\n"
     "redis://..., each run is journaled to the Redis stream a queued run of `worker\n"
     "--journal` would have (tenant \"bench\", kept 1h).\n"},
    {"graph", fr__cmd_graph, "print the pipeline DAG (dot or mermaid)",
     "usage: fluxroute graph MANIFEST [--format dot|mermaid]\n"
     "\n"
     "Prints the DAG as Graphviz DOT (default) or a Mermaid flowchart.\n"},
    {"plugins", fr__cmd_plugins, "list plugins or show one plugin's options",
     "usage: fluxroute plugins list [--json] [--plugin-dir DIR]...\n"
     "       fluxroute plugins info NAME|PATH.so [--json] [--plugin-dir DIR]...\n"
     "       fluxroute plugins test PATH.so [--json] [--config YAML]\n"
     "\n"
     "list: every plugin file along the search path (--plugin-dir, FLUXROUTE_PLUGIN_PATH,\n"
     "then the built-in dir), with refusals and shadowed files.\n"
     "info: kind, version, ABI, path and the option table.\n"
     "test: the conformance kit (descriptor, options, forbidden direct calls, init/fini,\n"
     "sample calls, cancellation, deadlines, record/replay, allocation failures).\n"},
    {"serve", fr__cmd_serve, "serve the router HTTP API", fr__serve_usage},
    {"worker", fr__cmd_worker, "execute queued runs of serve replicas (--state redis)",
     fr__worker_usage},
    {"scaffold", fr__cmd_scaffold, "create a plugin project to start from",
     "usage: fluxroute scaffold DIR --name NAME [--kind agent|provider] [--sdk DIR] [--force]\n"
     "\n"
     "Creates DIR with NAME.c (a working plugin with comments, using the plugin kit), a\n"
     "Makefile building NAME.so (headers and kit from `pkg-config fluxroute-kit`),\n"
     "manifest.yaml using it, and a README.\n"
     "Then: make -C DIR && fluxroute run DIR/manifest.yaml --plugin-dir DIR\n"
     "\n"
     "  --name NAME       plugin name, [a-z][a-z0-9_]* (the file is NAME.so)\n"
     "  --kind KIND       agent (default) or provider\n"
     "  --sdk DIR         take headers and kit from a built FluxRoute source tree or an\n"
     "                    installation prefix instead of pkg-config\n"
     "  --force           write into a non-empty DIR (overwriting the generated files)\n"
     "\n"
     "Exit: 0 created, 1 I/O error, 2 usage error (bad name or kind, DIR not empty).\n"},
    {"controlplane", fr__cmd_controlplane,
     "serve the control plane (tenants, keys, usage, billing)",
     "usage: fluxroute controlplane [--db PATH] [--addr ADDR] [--metrics-addr ADDR]\n"
     "       fluxroute controlplane create-admin-key [--db PATH]\n"
     "\n"
     "Serves the control-plane API (tenants, API keys, usage metering, rate cards,\n"
     "invoices, SLA) over SQLite.  The first stdout line is `listening on URL`.\n"
     "create-admin-key prints a new admin API key (shown only once).\n"
     "\n"
     "  --db PATH    the SQLite database (default $CONTROLPLANE_DB or\n"
     "               ./fluxroute-controlplane.db); created and migrated on start\n"
     "  --addr ADDR  HOST:PORT or :PORT to listen on (default $CONTROLPLANE_ADDR or :8081)\n"
     "\n"
     "  --metrics-addr ADDR  a second, plain-HTTP listener WITHOUT authentication for\n"
     "               /metrics, /healthz and /readyz (default $CONTROLPLANE_METRICS_ADDR;\n"
     "               none when unset): bind it to a private network only.  The second\n"
     "               stdout line is then `metrics listening on URL`.  /metrics on the API\n"
     "               address needs an admin or service key\n"
     "\n"
     "Environment:\n"
     "  CONTROLPLANE_DB, CONTROLPLANE_ADDR, CONTROLPLANE_METRICS_ADDR  as above\n"
     "  CONTROLPLANE_API_KEY  an admin key to accept (stored hashed)\n"
     "  CONTROLPLANE_TLS_ENABLED, CONTROLPLANE_TLS_CERT_FILE, CONTROLPLANE_TLS_KEY_FILE,\n"
     "  CONTROLPLANE_TLS_CA_FILE, CONTROLPLANE_TLS_REQUIRE_CLIENT_CERT  TLS and mTLS of the\n"
     "                        API address\n"
     "  LOG_PATH, LOG_LEVEL   the invocation log (unused by the control plane itself)\n"
     "\n"
     "Exit: 0 stopped by SIGINT/SIGTERM, 1 cannot listen or open the database,\n"
     "2 usage error or a database written by a newer version.\n"},
    {"probe", fr__cmd_probe, "GET a URL, exit 0 on 2xx (health checks without curl)",
     fr__probe_usage},
    {"keys", fr__cmd_keys, "make an API key for serve's keys file",
     "usage: fluxroute keys new --tenant T [--namespace N] [--role R] [--id ID]\n"
     "\n"
     "Draws a new API key (frk_ and 48 hex digits, from getrandom) and prints it once on\n"
     "the first line, then the line to add under keys: in serve's keys file, which holds\n"
     "the key's sha256, never the key.  serve reloads the file on SIGHUP.\n"
     "\n"
     "  --tenant T     the tenant the key acts for (required)\n"
     "  --namespace N  its namespace (default: the tenant's id, if it is a valid one)\n"
     "  --role R       viewer, operator (default), admin or metrics\n"
     "  --id ID        the key's id in logs and audit lines (default TENANT-ROLE-XXXXXX)\n"
     "\n"
     "Exit: 0 printed, 1 no randomness, 2 usage error.\n"},
    {"audit-verify", fr__cmd_audit_verify, "check an audit log's hash chain",
     "usage: fluxroute audit-verify FILE [--json]\n\nChecks every line's hash and the chain (each "
     "line's prev is the sha256 of the line\nbefore it; the first line's is 64 zeros).  Reports "
     "the first broken line.\n\nExit: 0 intact, 1 broken (line number and reason), 2 "
     "unreadable.\n"},
    {"audit-export", fr__cmd_audit_export, "write an audit log as CSV (RFC 4180)",
     "usage: fluxroute audit-export FILE [-o OUT.csv]\n\nOne row per audit line, CRLF line ends, "
     "columns: time, actor, role, tenant,\nnamespace, action, manifest, manifest_sha256, run_id, "
     "decision, result, error, prev,\nhash.  Writes to stdout, or to OUT.csv (replaced only when "
     "the export succeeds).\n\nExit: 0 written, 2 unreadable input or a line that is not JSON.\n"},
    {"version", cmd_version, "print the version", "usage: fluxroute version [--json]\n"},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: fluxroute COMMAND [ARGS]...\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-12s  %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`fluxroute COMMAND --help` describes a command.\n");
}

int main(int argc, char **argv)
{
    /* The Redis lease backend is not part of the engine (libfluxroute): the command has it. */
    fr__lease_backend_register("redis", fr__lease_redis_open);
    if (argc < 2) {
        usage(stderr);
        return FR_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return FR_EXIT_OK;
    }
    /* Hidden: the helper process of `isolation: process` agents (see core/plugin/isolate.c). */
    if (strcmp(argv[1], "__plugin-helper") == 0)
        return fr__helper_main();
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(&commands[N_COMMANDS - 1], 1, argv);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            fr__log_init_from_env();
            fr__http_global_init();
            return commands[i].run(&commands[i], argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "fluxroute: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return FR_EXIT_USAGE;
}
