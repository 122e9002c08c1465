/* `fluxroute run`, `validate` and `bench`. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "base/duration.h"
#include "host/host.h"
#include "http/metrics_endpoint.h"
#include "observe/observe.h"
#include "state/state.h"
#include "trace/journal.h"
#include "trace/trace.h"

/* ---- text output ---------------------------------------------------------------------- */

void fr__cli_print_text_report(const fr_pipeline *p, const fr_run_result *r)
{
    const fr_manifest *m = fr__pipeline_manifest(p);
    size_t width = 4;
    for (size_t i = 0; i < m->n_steps; i++)
        if (strlen(m->steps[i].id) > width)
            width = strlen(m->steps[i].id);
    for (size_t k = 0; k < m->n_steps; k++) {
        int i = m->topo[k];
        const fr_step_result *s = &r->steps[i];
        char d[32];
        printf("%-9s %-*s  %zu attempt%s  %8s", fr__step_state_name(s->state), (int)width,
               m->steps[i].id, s->n_attempts, s->n_attempts == 1 ? " " : "s",
               fr__duration_format(s->duration_us, d, sizeof d));
        if (s->state != FR_STEP_SUCCEEDED)
            printf("  %s: %s", fr_class_name(fr_status_class(s->status)),
                   s->message ? s->message : fr_strerror(s->status));
        putchar('\n');
    }
    /* The final outputs: those of steps nothing depends on. */
    int header = 0;
    for (size_t k = 0; k < m->n_steps; k++) {
        int i = m->topo[k];
        int has_children = 0;
        for (size_t j = 0; j < m->n_steps && !has_children; j++)
            for (size_t d = 0; d < m->steps[j].n_deps; d++)
                if (m->steps[j].dep_index[d] == i)
                    has_children = 1;
        const fr_step_result *s = &r->steps[i];
        if (has_children || s->state != FR_STEP_SUCCEEDED)
            continue;
        if (!header++)
            printf("\noutputs:\n");
        json_object *o = json_tokener_parse(s->output);
        printf("%s: %s\n", m->steps[i].id,
               o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                         JSON_C_TO_STRING_SPACED |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE)
                 : s->output);
        json_object_put(o);
    }
    char d[32];
    printf("\nrun %s %s (%zu steps, %s)\n", r->run_id, fr__run_status_name(r->status), m->n_steps,
           fr__duration_format((r->finished_at_us - r->started_at_us), d, sizeof d));
}

int fr__cli_write_trace(const cli_command *cmd, const fr_pipeline *p, const fr_run_result *r,
                        const char *path)
{
    char err[1024];
    json_object *t = fr__trace_build(p, r);
    int rc = t ? fr__trace_write(t, path, err, sizeof err) : -1;
    if (rc != 0)
        fr__cli_error(cmd, "%s", t ? err : "out of memory building the trace");
    json_object_put(t);
    return rc;
}

/* Live progress on a terminal: one status line rewritten in place. */
typedef struct progress_state {
    size_t done, total;
} progress_state;

static void progress_cb(void *ud, const fr_pipeline *p, int step, const fr_step_result *r)
{
    progress_state *ps = ud;
    const fr_manifest *m = fr__pipeline_manifest(p);
    if (r->state != FR_STEP_RUNNING)
        ps->done++;
    fprintf(stderr, "\r\033[K[%zu/%zu] %s %s", ps->done, ps->total, m->steps[step].id,
            r->state == FR_STEP_RUNNING ? "running" : fr__step_state_name(r->state));
    fflush(stderr);
}

static int parse_seed(const cli_command *cmd, const char *text, uint64_t *seed)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || !*text || *end || text[0] == '-') {
        fr__cli_error(cmd, "--seed %s: expected a non-negative integer", text);
        return -1;
    }
    *seed = v;
    return 0;
}

/* --stream: provider text goes to stdout as it arrives, under a header line naming its step
 * (`==> step <==`, as tail does for several files), repeated whenever the text comes from
 * another step than the last chunk: consecutive steps are set apart, and parallel steps
 * that interleave stay readable. */
typedef struct stream_state {
    pthread_mutex_t mu; /* tokens come from the workers running the steps */
    char last[128];     /* the step of the last chunk printed, "" before any */
    int any;
} stream_state;

static void print_token(void *ud, const char *step, const char *text, size_t len)
{
    stream_state *st = ud;
    pthread_mutex_lock(&st->mu);
    if (!st->any || strncmp(st->last, step, sizeof st->last - 1) != 0) {
        printf("%s==> %s <==\n", st->any ? "\n\n" : "", step);
        snprintf(st->last, sizeof st->last, "%s", step);
        st->any = 1;
    }
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    pthread_mutex_unlock(&st->mu);
}

/* Whether any agent of the manifest streams (`config: {stream: true}`). */
static int streams(const fr_manifest *m)
{
    for (size_t i = 0; i < m->n_agents; i++) {
        const fr_ynode *v =
            m->agents[i].config ? fr__ymap_get(m->agents[i].config, "stream") : NULL;
        if (v && v->type == FR_YS_BOOL && v->ival)
            return 1;
    }
    return 0;
}

/* ---- run -------------------------------------------------------------------------------- */

int fr__cmd_run(const cli_command *cmd, int argc, char **argv)
{
    const char *input_arg = NULL, *seed_arg = NULL, *trace_arg = NULL, *lease_wait = NULL,
               *journal_arg = NULL, *sync_arg = NULL;
    const char *pos[1];
    int json = 0, stream = 0;
    size_t n_pos;
    cli_list dirs = {0};
    const cli_opt opts[] = {{"--input", 1, &input_arg, NULL, NULL},
                            {"--stream", 0, NULL, NULL, &stream},
                            {"--json", 0, NULL, NULL, &json},
                            {"--plugin-dir", 1, NULL, &dirs, NULL},
                            {"--seed", 1, &seed_arg, NULL, NULL},
                            {"--trace", 1, &trace_arg, NULL, NULL},
                            {"--lease-wait", 1, &lease_wait, NULL, NULL},
                            {"--journal", 1, &journal_arg, NULL, NULL},
                            {"--journal-sync", 1, &sync_arg, NULL, NULL},
                            {NULL, 0, NULL, NULL, NULL}};
    int rc = fr__cli_parse(cmd, argc, argv, opts, pos, 1, &n_pos);
    if (rc != 0)
        return rc > 0 ? FR_EXIT_OK : FR_EXIT_USAGE;
    if (n_pos != 1) {
        fr__cli_error(cmd, "expected a manifest path (see fluxroute run --help)");
        return FR_EXIT_USAGE;
    }
    const char *journal_dir = getenv("FLUXROUTE_JOURNAL_DIR");
    if (journal_dir && !*journal_dir)
        journal_dir = NULL;
    int sync = FR_JOURNAL_SYNC_STEP;
    if (fr__cli_journal_sync(cmd, sync_arg, journal_arg || journal_dir, &sync) != 0)
        return FR_EXIT_USAGE;
    if (!trace_arg && getenv("TRACE_OUTPUT") && *getenv("TRACE_OUTPUT"))
        trace_arg = getenv("TRACE_OUTPUT");
    fr_run_options ro = {.record = trace_arg != NULL, .run_inline = FR_RUN_ON_DRIVER};
    stream_state ss = {.mu = PTHREAD_MUTEX_INITIALIZER};
    if (stream && !json) {
        ro.on_token = print_token;
        ro.token_ud = &ss;
    }
    if (seed_arg) {
        if (parse_seed(cmd, seed_arg, &ro.seed) != 0)
            return FR_EXIT_USAGE;
        ro.has_seed = 1;
    }
    char *input = NULL;
    if (input_arg && !(input = fr__cli_read_input(cmd, input_arg)))
        return FR_EXIT_USAGE;
    ro.input_json = input;

    fr__cli_signals_block();
    fr_pipeline *p = NULL;
    cli_lease *lease = NULL;
    rc = fr__cli_load(cmd, pos[0], &dirs, 0, &p, NULL);
    if (rc == FR_EXIT_OK)
        rc = fr__cli_authorize(cmd, fr__pipeline_manifest(p), FR_ACTION_RUN);
    if (rc == FR_EXIT_OK && fr__metrics_server_start_from_env() != 0)
        rc = FR_EXIT_USAGE;
    if (rc == FR_EXIT_OK) /* leases */
        rc = fr__cli_lease_begin(cmd, p, lease_wait, &ro, &lease);
    if (rc != FR_EXIT_OK) {
        fr__audit_cli(FR_ACTION_RUN, pos[0], p ? fr__pipeline_manifest(p) : NULL, NULL, "allowed",
                      "error", NULL);
        fr__pipeline_free(p);
        free(input);
        return rc;
    }
    /* Durable runs: the journal is created (with the run's id and seed) before the run. */
    fr_journal *journal = NULL;
    char run_id[40];
    if (rc == FR_EXIT_OK && (journal_arg || journal_dir)) {
        rc = fr__cli_journal_start(cmd, p, journal_arg, journal_dir, NULL, sync, input, run_id, &ro,
                                   &journal);
        if (rc != FR_EXIT_OK) {
            fr__cli_lease_end(cmd, lease);
            fr__pipeline_free(p);
            free(input);
            return rc;
        }
    }
    if (ro.on_token && !streams(fr__pipeline_manifest(p)))
        fprintf(stderr,
                "fluxroute run: --stream: no agent of %s streams (give an llm agent "
                "`stream: true` in its config); the report follows the run\n",
                pos[0]);
    progress_state ps = {0, fr__pipeline_manifest(p)->n_steps};
    if (!json && isatty(2)) {
        ro.progress = progress_cb;
        ro.progress_ud = &ps;
    }
    fr__cli_signals_start(p);
    fr_run_result res;
    fr_status st = fr__pipeline_run(p, &ro, &res);
    int was_interrupted = fr__cli_signals_stop();
    int lease_lost = fr__cli_lease_end(cmd, lease); /* leases */
    fr__metrics_server_stop();
    if (ro.progress)
        fprintf(stderr, "\r\033[K");
    if (st == FR_E_INVALID) {
        fr__cli_error(cmd, "--input is not a single valid JSON value");
        rc = FR_EXIT_USAGE;
    } else if (st != FR_OK) {
        fr__cli_error(cmd, "%s", fr_strerror(st));
        rc = FR_EXIT_FAILED;
    } else {
        if (json) {
            char *report = fr__report_json(p, &res, 1);
            if (report)
                puts(report);
            free(report);
        } else {
            if (ss.any)
                fputs("\n\n", stdout);
            fr__cli_print_text_report(p, &res);
        }
        rc = res.status == FR_RUN_SUCCEEDED ? FR_EXIT_OK : FR_EXIT_FAILED;
        if (res.status == FR_RUN_CANCELLED || was_interrupted)
            rc = FR_EXIT_INTERRUPTED;
        /* Written for failed and interrupted runs too: that is when it is wanted. */
        if (trace_arg && fr__cli_write_trace(cmd, p, &res, trace_arg) != 0 && rc == FR_EXIT_OK)
            rc = FR_EXIT_FAILED;
        if (journal && fr__cli_journal_finish(cmd, journal, 0, &res) != 0 && rc == FR_EXIT_OK)
            rc = FR_EXIT_FAILED;
        journal = NULL;
        if (lease_lost && rc == FR_EXIT_OK) /* leases: lost outside the run's steps */
            rc = FR_EXIT_FAILED;
        fr__audit_cli_lease(ro.lease_key, ro.fencing_token);
        fr__audit_cli(FR_ACTION_RUN, pos[0], fr__pipeline_manifest(p), res.run_id, "allowed",
                      fr__run_status_name(res.status), NULL);
        fr__run_result_free(&res);
    }
    if (journal) /* the run did not start */
        fr__cli_journal_finish(cmd, journal, 0, NULL);
    fr__pipeline_free(p);
    free(input);
    return rc;
}

/* ---- validate --------------------------------------------------------------------------- */

int fr__cmd_validate(const cli_command *cmd, int argc, char **argv)
{
    const char *pos[1];
    size_t n_pos;
    int json = 0;
    cli_list dirs = {0};
    const cli_opt opts[] = {{"--json", 0, NULL, NULL, &json},
                            {"--plugin-dir", 1, NULL, &dirs, NULL},
                            {NULL, 0, NULL, NULL, NULL}};
    int rc = fr__cli_parse(cmd, argc, argv, opts, pos, 1, &n_pos);
    if (rc != 0)
        return rc > 0 ? FR_EXIT_OK : FR_EXIT_USAGE;
    if (n_pos != 1) {
        fr__cli_error(cmd, "expected a manifest path (see fluxroute validate --help)");
        return FR_EXIT_USAGE;
    }
    fr_pipeline *p = NULL;
    json_object *errors = NULL;
    rc = fr__cli_load(cmd, pos[0], &dirs, 1, &p, json ? &errors : NULL);
    if (rc == FR_EXIT_OK)
        rc = fr__cli_authorize(cmd, fr__pipeline_manifest(p), FR_ACTION_VALIDATE);
    if (rc == FR_EXIT_OK) {
        const fr_manifest *m = fr__pipeline_manifest(p);
        if (json) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "valid", json_object_new_boolean(1));
            json_object_object_add(o, "manifest", json_object_new_string(m->path));
            json_object_object_add(o, "agents", json_object_new_int64((int64_t)m->n_agents));
            json_object_object_add(o, "providers", json_object_new_int64((int64_t)m->n_providers));
            json_object_object_add(o, "steps", json_object_new_int64((int64_t)m->n_steps));
            fr__cli_print_json(o);
        } else {
            printf("manifest is valid: %s (%zu agents, %zu providers, %zu steps)\n", m->path,
                   m->n_agents, m->n_providers, m->n_steps);
        }
    } else if (json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "valid", json_object_new_boolean(0));
        json_object_object_add(o, "manifest", json_object_new_string(pos[0]));
        json_object_object_add(o, "errors", errors ? errors : json_object_new_array());
        errors = NULL;
        fr__cli_print_json(o);
    }
    json_object_put(errors);
    fr__audit_cli(FR_ACTION_VALIDATE, pos[0], p ? fr__pipeline_manifest(p) : NULL, NULL, "allowed",
                  rc == FR_EXIT_OK ? "valid" : "invalid", NULL);
    fr__pipeline_free(p);
    return rc;
}

/* ---- bench ------------------------------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int parse_count(const cli_command *cmd, const char *name, const char *text, long min,
                       long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || !*text || *end || v < min) {
        fr__cli_error(cmd, "%s %s: expected an integer >= %ld", name, text, min);
        return -1;
    }
    *out = v;
    return 0;
}

int fr__cmd_bench(const cli_command *cmd, int argc, char **argv)
{
    const char *runs_arg = NULL, *warmup_arg = NULL, *input_arg = NULL, *lease_wait = NULL, *pos[1],
               *journal_dir = NULL, *sync_arg = NULL, *journal_redis = NULL;
    int json = 0;
    size_t n_pos;
    cli_list dirs = {0};
    const cli_opt opts[] = {{"--runs", 1, &runs_arg, NULL, NULL},
                            {"--warmup", 1, &warmup_arg, NULL, NULL},
                            {"--input", 1, &input_arg, NULL, NULL},
                            {"--json", 0, NULL, NULL, &json},
                            {"--plugin-dir", 1, NULL, &dirs, NULL},
                            {"--lease-wait", 1, &lease_wait, NULL, NULL},
                            {"--journal-dir", 1, &journal_dir, NULL, NULL},
                            {"--journal-sync", 1, &sync_arg, NULL, NULL},
                            {"--journal-redis", 1, &journal_redis, NULL, NULL},
                            {NULL, 0, NULL, NULL, NULL}};
    int rc = fr__cli_parse(cmd, argc, argv, opts, pos, 1, &n_pos);
    if (rc != 0)
        return rc > 0 ? FR_EXIT_OK : FR_EXIT_USAGE;
    if (n_pos != 1) {
        fr__cli_error(cmd, "expected a manifest path (see fluxroute bench --help)");
        return FR_EXIT_USAGE;
    }
    int sync = FR_JOURNAL_SYNC_STEP;
    if (fr__cli_journal_sync(cmd, sync_arg, journal_dir || journal_redis, &sync) != 0)
        return FR_EXIT_USAGE;
    if (journal_dir && journal_redis) {
        fr__cli_error(cmd, "--journal-dir and --journal-redis: choose one");
        return FR_EXIT_USAGE;
    }
    fr_state *redis = NULL; /* --journal-redis: each run journaled to Redis */
    if (journal_redis) {
        char err[512];
        if (fr__state_open(journal_redis, "--journal-redis", getenv("ROUTER_STATE_PREFIX"), &redis,
                           err, sizeof err) != FR_OK ||
            redis->kind != FR_STATE_REDIS) {
            fr__cli_error(cmd, "%s", redis ? "--journal-redis: expected redis://..." : err);
            fr__state_free(redis);
            return FR_EXIT_USAGE;
        }
    }
    long runs = 1000, warmup = 100;
    if ((runs_arg && parse_count(cmd, "--runs", runs_arg, 1, &runs) != 0) ||
        (warmup_arg && parse_count(cmd, "--warmup", warmup_arg, 0, &warmup) != 0))
        return FR_EXIT_USAGE;
    char *input = NULL;
    if (input_arg && !(input = fr__cli_read_input(cmd, input_arg)))
        return FR_EXIT_USAGE;

    fr__cli_signals_block();
    fr_pipeline *p = NULL;
    rc = fr__cli_load(cmd, pos[0], &dirs, 0, &p, NULL);
    if (rc == FR_EXIT_OK)
        rc = fr__cli_authorize(cmd, fr__pipeline_manifest(p), FR_ACTION_RUN);
    fr_run_options ro = {
        .input_json = input, .has_seed = 1, .seed = 1, .run_inline = FR_RUN_ON_DRIVER};
    cli_lease *lease = NULL; /* leases: one for the whole bench */
    if (rc == FR_EXIT_OK)
        rc = fr__cli_lease_begin(cmd, p, lease_wait, &ro, &lease);
    int64_t *samples = calloc((size_t)runs, sizeof *samples);
    if (rc != FR_EXIT_OK || !samples) {
        fr__cli_lease_end(cmd, lease);
        free(samples);
        free(input);
        fr__pipeline_free(p);
        fr__state_free(redis);
        return rc != FR_EXIT_OK ? rc : FR_EXIT_FAILED;
    }
    fr__cli_signals_start(p);
    long failed = 0, done = 0;
    int64_t total0 = 0;
    for (long i = 0; i < warmup + runs; i++) {
        if (i == warmup)
            total0 = fr__mono_us();
        int64_t t0 = fr__mono_us();
        /* Durable runs' cost: each run journaled to a file of its own (timed with it). */
        fr_journal *journal = NULL;
        char run_id[40];
        fr_run_options jro = ro;
        if ((journal_dir || redis) &&
            fr__cli_journal_start(cmd, p, NULL, journal_dir, redis, sync, input, run_id, &jro,
                                  &journal) != FR_EXIT_OK) {
            rc = FR_EXIT_FAILED;
            break;
        }
        fr_run_result res;
        fr_status st = fr__pipeline_run(p, &jro, &res);
        int journal_failed = journal && fr__cli_journal_finish(cmd, journal, redis != NULL,
                                                               st == FR_OK ? &res : NULL) != 0;
        int64_t dt = fr__mono_us() - t0;
        if (st != FR_OK) {
            fr__cli_error(cmd, "%s",
                          st == FR_E_INVALID ? "--input is not valid JSON" : fr_strerror(st));
            rc = st == FR_E_INVALID ? FR_EXIT_USAGE : FR_EXIT_FAILED;
            break;
        }
        int cancelled = res.status == FR_RUN_CANCELLED;
        if (i >= warmup) {
            samples[done++] = dt;
            failed += res.status != FR_RUN_SUCCEEDED;
        }
        fr__run_result_free(&res);
        if (journal_failed) {
            rc = FR_EXIT_FAILED;
            break;
        }
        if (cancelled || fr__cli_lease_lost(lease))
            break;
    }
    int64_t total = fr__mono_us() - total0;
    if (fr__cli_signals_stop())
        rc = FR_EXIT_INTERRUPTED;
    if (fr__cli_lease_end(cmd, lease) && rc == FR_EXIT_OK) /* leases */
        rc = FR_EXIT_FAILED;
    if (rc == FR_EXIT_OK && done > 0) {
        int64_t sum = 0;
        for (long i = 0; i < done; i++)
            sum += samples[i];
        qsort(samples, (size_t)done, sizeof *samples, cmp_i64);
#define PCT(q) samples[(size_t)((double)(done - 1) * (q) + 0.5)]
        double mean = (double)sum / (double)done;
        double rps = total > 0 ? (double)done * 1e6 / (double)total : 0;
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        if (json)
            printf("{\"manifest\": \"%s\", \"runs\": %ld, \"warmup\": %ld, \"failed_runs\": %ld, "
                   "\"mean_us\": %.1f, \"p50_us\": %" PRId64 ", \"p95_us\": %" PRId64
                   ", \"p99_us\": %" PRId64 ", \"runs_per_sec\": %.1f, \"peak_rss_kb\": %ld}\n",
                   pos[0], done, warmup, failed, mean, PCT(0.5), PCT(0.95), PCT(0.99), rps,
                   ru.ru_maxrss);
        else
            printf("%s: %ld runs (%ld warm-up, %ld failed)\n"
                   "  mean %.1f us  p50 %" PRId64 " us  p95 %" PRId64 " us  p99 %" PRId64 " us\n"
                   "  %.1f runs/s  peak RSS %ld kB\n",
                   pos[0], done, warmup, failed, mean, PCT(0.5), PCT(0.95), PCT(0.99), rps,
                   ru.ru_maxrss);
#undef PCT
    }
    free(samples);
    free(input);
    fr__pipeline_free(p);
    fr__state_free(redis);
    return rc;
}
