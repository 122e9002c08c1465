/* Shared pieces of the fluxroute command line: exit codes, option parsing, loading a
 * manifest into a pipeline with diagnostics, and Ctrl-C handling. */
#ifndef FR_CORE_CLI_H
#define FR_CORE_CLI_H

#include <stddef.h>

#include "engine/engine.h"
#include "serve/serve.h"

/* Exit codes shared by every command (README.md, "Commands"; fluxroute(1), EXIT STATUS). */
enum {
    FR_EXIT_OK = 0,
    FR_EXIT_FAILED = 1, /* run failed, traces diverge */
    FR_EXIT_USAGE = 2,  /* usage, manifest or input error */
    FR_EXIT_PERMISSION = 3,
    FR_EXIT_LEASE = 4,
    FR_EXIT_INTERRUPTED = 130
};

/* A repeatable option's values (borrowed argv strings). */
typedef struct cli_list {
    const char *items[64];
    size_t n;
} cli_list;

typedef struct cli_opt {
    const char *name;   /* "--json" */
    int has_arg;        /* 1: takes a value (--x V or --x=V) */
    const char **value; /* single-valued: last one wins */
    cli_list *list;     /* repeatable */
    int *flag;          /* boolean flag */
} cli_opt;

/* A command of the table in main.c. */
typedef struct cli_command {
    const char *name;
    int (*run)(const struct cli_command *cmd, int argc, char **argv);
    const char *summary; /* one line for `fluxroute --help` */
    const char *usage;   /* full help text for `fluxroute CMD --help` */
} cli_command;

/* Parses argv[1..] (argv[0] is the command name) against `opts` (terminated by a NULL
 * name).  Positional arguments go to pos (at most max_pos).  Handles --help/-h by
 * printing the command's usage to stdout.  Returns 0 to go on, 1 when help was printed
 * (exit 0), -1 after printing a usage error (exit 2). */
int fr__cli_parse(const cli_command *cmd, int argc, char **argv, const cli_opt *opts,
                  const char **pos, size_t max_pos, size_t *n_pos);

/* Prints "fluxroute CMD: message" to stderr. */
void fr__cli_error(const cli_command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Loads and validates a manifest and builds its pipeline.  Diagnostics are printed to
 * stderr in file order.  Notes (e.g. agents defaulting to echo) are printed when
 * `notes` is set.  When `errors` is given, it receives a JSON array of {file, line,
 * col, message} (caller releases it).  Returns FR_EXIT_OK with *out set, or an exit code. */
struct json_object;
int fr__cli_load(const cli_command *cmd, const char *path, const cli_list *plugin_dirs, int notes,
                 fr_pipeline **out, struct json_object **errors);

/* Checks REQUEST_ROLE against the manifest's rbac list for `action`.  Returns FR_EXIT_OK,
 * FR_EXIT_USAGE (invalid role) or FR_EXIT_PERMISSION, printing why. */
int fr__cli_authorize(const cli_command *cmd, const fr_manifest *m, fr_action action);

/* Reads --input: inline JSON text, or @FILE, and checks that it is one JSON value.
 * Returns a malloc'd string, or NULL after printing why (for malformed JSON: where). */
char *fr__cli_read_input(const cli_command *cmd, const char *arg);

/* Parses text[0..len) that a person wrote as one JSON value (strictly, nested at most
 * FR_INPUT_MAX_DEPTH deep).  Returns 0 with *out (caller releases; NULL for `null`), or -1
 * after printing "LABEL: malformed JSON at line L, column C: why". */
int fr__cli_parse_json(const cli_command *cmd, const char *label, const char *text, size_t len,
                       struct json_object **out);

/* Ctrl-C: blocks SIGINT/SIGTERM in every thread and starts a thread that cancels the
 * pipeline's run when one arrives (a second one exits at once with 130).  Call before
 * building the pipeline so worker threads inherit the mask. */
void fr__cli_signals_block(void);
void fr__cli_signals_start(fr_pipeline *p);
/* Stops the signal thread; returns 1 when an interrupt arrived. */
int fr__cli_signals_stop(void);

/* Coordination leases (core/cli/cli_lease.c).  With COORDINATION_ENABLED and unless the
 * manifest says `router.lease: {enabled: false}`, takes the lease router.lease.key (default
 * "run:<namespace>:<manifest name without extension>") from the COORDINATION_* backend,
 * waiting up to --lease-wait (`wait_arg`, a duration; NULL: fail at once), and sets
 * ro->lease_key / fencing_token (borrowed until fr__cli_lease_end).  If the lease is lost,
 * the pipeline's run is cancelled with FR_E_LEASE_LOST.  Call after building `p` and
 * before fr__cli_signals_start (Ctrl-C stops the wait).  Returns FR_EXIT_OK (*out is NULL
 * when coordination is off), FR_EXIT_USAGE (bad --lease-wait or COORDINATION_*),
 * FR_EXIT_LEASE (held elsewhere; the message names the holder), FR_EXIT_INTERRUPTED or
 * FR_EXIT_FAILED (backend unreachable), after printing why. */
typedef struct cli_lease cli_lease;
int fr__cli_lease_begin(const cli_command *cmd, fr_pipeline *p, const char *wait_arg,
                        fr_run_options *ro, cli_lease **out);
/* 1 once the lease was lost (thread-safe; NULL gives 0). */
int fr__cli_lease_lost(const cli_lease *l);
/* Releases the lease and frees `l` (NULL is ignored).  Returns 1 when it had been lost
 * (the reason is printed), else 0. */
int fr__cli_lease_end(const cli_command *cmd, cli_lease *l);

int fr__cmd_run(const cli_command *cmd, int argc, char **argv);
/* `run`'s text report: a line per step, the final outputs, the run line. */
void fr__cli_print_text_report(const fr_pipeline *p, const fr_run_result *r);
/* Writes the run's trace to `path`.  Returns 0, or -1 after printing why. */
int fr__cli_write_trace(const cli_command *cmd, const fr_pipeline *p, const fr_run_result *r,
                        const char *path);

/* Durable runs (cli_journal.c).  Parses --journal-sync (`arg`, NULL: step) into *out;
 * `journaled` says whether a journal was asked for (--journal or FLUXROUTE_JOURNAL_DIR).
 * Returns 0, or -1 after printing why. */
struct fr_journal;
int fr__cli_journal_sync(const cli_command *cmd, const char *arg, int journaled, int *out);
/* Creates the run's journal, FILE or DIR/RUN_ID.journal (naming it on stderr), or with
 * `redis` (bench --journal-redis) the Redis stream of run RUN_ID of tenant "bench"
 * (core/state/journal_redis.h), drawing the run id (into run_id) and the seed unless
 * --seed gave one, and sets ro (run_id, seed, record, journal).  `input` is --input's text
 * or NULL.  Returns FR_EXIT_OK, or FR_EXIT_USAGE after printing why. */
struct fr_state;
int fr__cli_journal_start(const cli_command *cmd, fr_pipeline *p, const char *file, const char *dir,
                          struct fr_state *redis, int sync, const char *input, char run_id[40],
                          fr_run_options *ro, struct fr_journal **out);
/* Appends the run's end (res NULL: it did not run) and closes the journal (`redis`: one
 * fr__cli_journal_start opened in Redis).  Returns 0, or -1 after printing why. */
int fr__cli_journal_finish(const cli_command *cmd, struct fr_journal *j, int redis,
                           const fr_run_result *res);
int fr__cmd_resume(const cli_command *cmd, int argc, char **argv);
int fr__cmd_validate(const cli_command *cmd, int argc, char **argv);
int fr__cmd_bench(const cli_command *cmd, int argc, char **argv);
int fr__cmd_graph(const cli_command *cmd, int argc, char **argv);
int fr__cmd_plugins(const cli_command *cmd, int argc, char **argv);
int fr__cmd_replay(const cli_command *cmd, int argc, char **argv);
int fr__cmd_debug(const cli_command *cmd, int argc, char **argv);
int fr__cmd_scaffold(const cli_command *cmd, int argc, char **argv);
int fr__cmd_keys(const cli_command *cmd, int argc, char **argv);
/* The execution options `serve` and `worker` share (cmd_serve.c): --manifest-dir,
 * --providers, --plugin-dir, --controlplane, --metrics-addr, the limits, retention, trust
 * and containment flags, --state, --concurrency, --visibility-timeout, --journal and
 * --journal-sync.  Every string is
 * a borrowed argv value. */
#define FR_EXEC_OPTS_MAX 32
typedef struct fr_exec_args {
    const char *mdir, *providers, *max_runs, *per_tenant, *max_body, *retention, *ret_count,
        *ret_tenant, *ret_bytes, *cp_url, *metrics_addr, *series, *limit[FR_LIMIT_COUNT_],
        *max_helpers, *helper_mem, *max_abandoned, *grace, *state_url, *concurrency, *visibility,
        *journal_sync;
    int enable_chaos, journal;
    cli_list dirs, trusted;
} fr_exec_args;
/* Writes the options' table entries into opts[0..n) (room for FR_EXEC_OPTS_MAX; the
 * caller's table goes on after them and ends with a NULL name); returns n. */
size_t fr__exec_args_table(fr_exec_args *a, cli_opt *opts);
/* Applies the ROUTER_* / CONTROLPLANE_* variables and checks the values into *o (its state
 * is opened: the caller frees it with fr__state_free).  FR_EXIT_OK, or FR_EXIT_USAGE after
 * saying what is wrong. */
int fr__exec_args_resolve(const cli_command *cmd, fr_exec_args *a, fr_exec_options *o);

/* The environment serve and worker both read, for the end of their --help (tests/docs/
 * help_env.py checks that every variable the sources read is listed). */
#define FR_EXEC_ENV_HELP                                                                         \
    "  ROUTER_MANIFEST_DIR, ROUTER_PROVIDERS_FILE, ROUTER_METRICS_ADDR, ROUTER_STATE_URL,\n"     \
    "  CONTROLPLANE_URL      as the options above\n"                                             \
    "  ROUTER_STATE_PREFIX   the Redis key prefix of --state (default fluxroute)\n"              \
    "  CONTROLPLANE_SERVICE_KEY  the service key for --controlplane\n"                           \
    "  CONTROLPLANE_SPOOL    the usage spool file (default ./fluxroute-usage.spool)\n"           \
    "  FLUXROUTE_PLUGIN_PATH plugin directories searched after --plugin-dir (colon-separated)\n" \
    "  WORKER_POOL_SIZE, DEFAULT_TIMEOUT  defaults of router.worker_pool_size and\n"             \
    "                        router.default_timeout for manifests without them\n"                \
    "  CIRCUIT_FAILURE_THRESHOLD, CIRCUIT_RESET_TIMEOUT, CIRCUIT_PROBE_TIMEOUT  breaker\n"       \
    "                        defaults for agents that set none\n"                                \
    "  LOG_PATH, LOG_LEVEL   the invocation log (one JSON line per attempt)\n"                   \
    "  AUDIT_LOG_PATH, AUDIT_FSYNC  the hash-chained audit log\n"                                \
    "  TRACE_ENABLED, TRACE_ENDPOINT  OpenTelemetry spans over OTLP/HTTP\n"                      \
    "  COORDINATION_ENABLED, COORDINATION_MODE, COORDINATION_DIR, COORDINATION_REDIS_URL,\n"     \
    "  COORDINATION_REDIS_PREFIX, COORDINATION_TTL  leases plugins take (host->lease); TMPDIR\n" \
    "                        is where COORDINATION_DIR defaults\n"                               \
    "  FLUXROUTE_TESTING_CLOCK_OFFSET_FILE  testing only: moves the limits' clock\n"             \
    "  Providers' credentials come from the variables their manifests name (api_key_env).\n"

/* `worker` (cmd_worker.c; its help text is fr__worker_usage). */
extern const char fr__worker_usage[];
int fr__cmd_worker(const cli_command *cmd, int argc, char **argv);

/* `serve` (cmd_serve.c; its help text is fr__serve_usage) and `controlplane`
 * (cmd_controlplane.c): options parsed here, the servers in core/serve, core/controlplane. */
extern const char fr__serve_usage[];
int fr__cmd_serve(const cli_command *cmd, int argc, char **argv);
int fr__cmd_controlplane(const cli_command *cmd, int argc, char **argv);

/* `probe` (cmd_probe.c; its help text is fr__probe_usage). */
extern const char fr__probe_usage[];
int fr__cmd_probe(const cli_command *cmd, int argc, char **argv);

/* Prints `o` as pretty JSON plus a newline to stdout and releases it. */
void fr__cli_print_json(struct json_object *o);

/* ---- the audit line of a command (cli.c) ---- */

/* The CLI's lease for the run being audited (key borrowed until the next call). */
void fr__audit_cli_lease(const char *key, uint64_t fencing_token);
/* One audit line per command invocation (the first call wins, so a denial written
 * by fr__cli_authorize is not followed by a second line), when AUDIT_LOG_PATH is set.
 * The actor is $USER (else "cli"), the role REQUEST_ROLE.  `m` may be NULL. */
void fr__audit_cli(fr_action action, const char *manifest_path, const fr_manifest *m,
                   const char *run_id, const char *decision, const char *result, const char *error);

/* ---- audit commands (cmd_audit.c) ---- */

int fr__cmd_audit_verify(const cli_command *cmd, int argc, char **argv);
int fr__cmd_audit_export(const cli_command *cmd, int argc, char **argv);

#endif
