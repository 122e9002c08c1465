/* Journaling a run from the command line (`run --journal`, FLUXROUTE_JOURNAL_DIR, and the
 * journal `resume` goes on appending to): creating it with the run's id and seed, its end,
 * --journal-sync.  core/trace/journal.h has the format. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "base/clock.h"
#include "cli/cli.h"
#include "engine/pipeline.h"
#include "host/journal_sink.h"
#include "trace/journal.h"

int fr__cli_journal_sync(const cli_command *cmd, const char *arg, int journaled, int *out)
{
    fr_journal_sync sync = FR_JOURNAL_SYNC_STEP;
    if (arg && fr__journal_sync_parse(arg, &sync) != 0) {
        fr__cli_error(cmd, "--journal-sync %s: expected effect, step or off", arg);
        return -1;
    }
    if (arg && !journaled) {
        fr__cli_error(cmd, "--journal-sync needs a journal: --journal FILE or "
                           "FLUXROUTE_JOURNAL_DIR");
        return -1;
    }
    *out = (int)sync;
    return 0;
}

/* A version-4 UUID, as the engine draws run ids. */
static void new_run_id(char out[40])
{
    uint64_t a = fr__os_random(), b = fr__os_random();
    a = (a & 0xffffffffffff0fffULL) | 0x4000ULL;
    b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
    snprintf(out, 40, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(a >> 32),
             (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xffff, (unsigned)(b >> 48),
             (unsigned long long)(b & 0xffffffffffffULL));
}

int fr__cli_journal_start(const cli_command *cmd, fr_pipeline *p, const char *file, const char *dir,
                          int sync, const char *input, char run_id[40], fr_run_options *ro,
                          fr_journal **out)
{
    const fr_manifest *m = fr__pipeline_manifest(p);
    new_run_id(run_id);
    ro->run_id = run_id;
    if (!ro->has_seed) {
        /* Drawn as the engine draws it: 53 bits, read back exactly by every JSON tool. */
        ro->seed = fr__os_random() & ((1ULL << 53) - 1);
        ro->has_seed = 1;
    }
    json_object *in = json_tokener_parse(input ? input : m->input_json ? m->input_json : "{}");
    const char *compact = json_object_to_json_string_ext(in, JSON_C_TO_STRING_PLAIN);
    char path[4096], err[1024];
    if (file)
        snprintf(path, sizeof path, "%s", file);
    else
        snprintf(path, sizeof path, "%s/%s.journal", dir, run_id);
    fr_journal *j = fr__journal_create(path, (fr_journal_sync)sync, p, run_id, ro->seed,
                                       compact ? compact : "null", err, sizeof err);
    json_object_put(in);
    if (!j) {
        fr__cli_error(cmd, "%s", err);
        return FR_EXIT_USAGE;
    }
    if (!file && strcmp(cmd->name, "bench") != 0)
        fprintf(stderr, "fluxroute %s: journal %s\n", cmd->name, path);
    ro->journal = j;
    ro->record = 1; /* the journal is made of the recorded effects */
    *out = j;
    return FR_EXIT_OK;
}

int fr__cli_journal_finish(const cli_command *cmd, fr_journal *j, const fr_run_result *res)
{
    if (!j)
        return 0;
    if (res) {
        json_object *e = fr__journal_entry("end", NULL, -1);
        if (e)
            json_object_object_add(e, "status",
                                   json_object_new_string(fr__run_status_name(res->status)));
        /* No step boundary: a journal that lost its end (the machine went down) resumes
         * to the same end without running a step. */
        fr__journal_put(j, NULL, e, FR_JOURNAL_EFFECT);
    }
    char err[1024];
    if (fr__journal_close(j, err, sizeof err) != 0) {
        fr__cli_error(cmd, "%s", err);
        return -1;
    }
    return 0;
}
