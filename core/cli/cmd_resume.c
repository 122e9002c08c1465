/* `fluxroute resume JOURNAL`: finishing a journaled run whose process died
 * (docs/reference.md, "Durable runs"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "engine/pipeline.h"
#include "host/journal_sink.h"
#include "observe/observe.h"
#include "trace/diff.h"
#include "trace/journal.h"
#include "trace/replay.h"
#include "trace/replay_cursor.h"
#include "trace/trace.h"

int fr__cmd_resume(const cli_command *cmd, int argc, char **argv)
{
    const char *manifest_arg = NULL, *trace_arg = NULL, *sync_arg = NULL, *pos[1];
    int json = 0, allow_changed = 0;
    size_t n_pos;
    cli_list dirs = {0};
    const cli_opt opts[] = {{"--manifest", 1, &manifest_arg, NULL, NULL},
                            {"--plugin-dir", 1, NULL, &dirs, NULL},
                            {"--json", 0, NULL, NULL, &json},
                            {"--trace", 1, &trace_arg, NULL, NULL},
                            {"--journal-sync", 1, &sync_arg, NULL, NULL},
                            {"--allow-changed", 0, NULL, NULL, &allow_changed},
                            {NULL, 0, NULL, NULL, NULL}};
    int rc = fr__cli_parse(cmd, argc, argv, opts, pos, 1, &n_pos);
    if (rc != 0)
        return rc > 0 ? FR_EXIT_OK : FR_EXIT_USAGE;
    if (n_pos != 1) {
        fr__cli_error(cmd, "expected a journal file (see fluxroute resume --help)");
        return FR_EXIT_USAGE;
    }
    int sync = FR_JOURNAL_SYNC_STEP;
    if (fr__cli_journal_sync(cmd, sync_arg, 1, &sync) != 0)
        return FR_EXIT_USAGE;
    if (!trace_arg && getenv("TRACE_OUTPUT") && *getenv("TRACE_OUTPUT"))
        trace_arg = getenv("TRACE_OUTPUT");
    char err[1024];
    fr_journal_doc doc;
    if (fr__journal_read(pos[0], &doc, err, sizeof err) != 0) {
        fr__cli_error(cmd, "%s", err);
        return FR_EXIT_USAGE;
    }
    if (doc.truncated)
        fprintf(stderr,
                "fluxroute resume: note: %s: the last entry was half-written; resuming from "
                "entry %zu (byte %zu)\n",
                pos[0], doc.n_entries, doc.valid_len);
    /* The manifest: where the run found it (or --manifest), checked against the journal. */
    const char *mpath =
        manifest_arg ? manifest_arg : fr__trace_member_string(doc.header, "manifest_name");
    fr__cli_signals_block();
    fr_pipeline *p = NULL;
    rc = fr__cli_load(cmd, mpath, &dirs, 0, &p, NULL);
    if (rc == FR_EXIT_OK)
        rc = fr__cli_authorize(cmd, fr__pipeline_manifest(p), FR_ACTION_RUN);
    if (rc != FR_EXIT_OK) {
        fr__pipeline_free(p);
        fr__journal_doc_free(&doc);
        return rc;
    }
    json_object *changes = json_object_new_array();
    fr__journal_compare_builds(doc.header, p, changes);
    size_t n_changes = json_object_array_length(changes);
    for (size_t i = 0; i < n_changes; i++)
        fprintf(stderr, "fluxroute resume: %s: %s\n", allow_changed ? "note" : "divergence",
                json_object_get_string(json_object_array_get_idx(changes, i)));
    json_object_put(changes);
    if (n_changes && !allow_changed) {
        fr__cli_error(cmd,
                      "%s: not resumed: the run would diverge from its journal (pass "
                      "--allow-changed to resume with the changed build)",
                      pos[0]);
        fr__pipeline_free(p);
        fr__journal_doc_free(&doc);
        return FR_EXIT_FAILED;
    }

    cli_lease *lease = NULL;
    unsigned executions = doc.executions + 1;
    fr_run_options ro = {.run_inline = FR_RUN_ON_DRIVER};
    fr_replay *rp = fr__journal_resume_options(&doc, executions, &ro);
    fr_journal *journal =
        rp ? fr__journal_reopen(pos[0], doc.valid_len, (fr_journal_sync)sync, err, sizeof err)
           : NULL;
    if (!journal) {
        fr__cli_error(cmd, "%s", rp ? err : "out of memory");
        rc = FR_EXIT_FAILED;
    } else {
        rc = fr__cli_lease_begin(cmd, p, NULL, &ro, &lease);
    }
    if (rc != FR_EXIT_OK) {
        fr__cli_journal_finish(cmd, journal, 0, NULL);
        fr__replay_free(rp);
        fr__pipeline_free(p);
        fr__journal_doc_free(&doc);
        return rc;
    }
    ro.journal = journal;
    fr__journal_mark_resume(journal, executions);

    fr__cli_signals_start(p);
    fr_run_result res;
    fr_status st = fr__pipeline_run(p, &ro, &res);
    int was_interrupted = fr__cli_signals_stop();
    int lease_lost = fr__cli_lease_end(cmd, lease);
    json_object *div = fr__replay_divergence(rp);
    if (st != FR_OK) {
        fr__cli_error(cmd, "%s: %s", pos[0], fr_strerror(st));
        rc = FR_EXIT_FAILED;
        fr__cli_journal_finish(cmd, journal, 0, NULL);
    } else {
        fr__journal_resumed_from(rp, &res);
        if (div) {
            /* The recorded prefix did not replay: nothing after it can be trusted. */
            fprintf(stderr, "fluxroute resume: %s diverges from its journal:\n", pos[0]);
            fr__divergence_print(stderr, div, "journaled", "resumed");
            rc = FR_EXIT_FAILED;
        } else if (json) {
            char *report = fr__report_json(p, &res, 1);
            if (report)
                puts(report);
            free(report);
        } else {
            fr__cli_print_text_report(p, &res);
        }
        if (!div) {
            rc = res.status == FR_RUN_SUCCEEDED ? FR_EXIT_OK : FR_EXIT_FAILED;
            if (res.status == FR_RUN_CANCELLED || was_interrupted)
                rc = FR_EXIT_INTERRUPTED;
        }
        if (trace_arg && !div && fr__cli_write_trace(cmd, p, &res, trace_arg) != 0 &&
            rc == FR_EXIT_OK)
            rc = FR_EXIT_FAILED;
        if (fr__cli_journal_finish(cmd, journal, 0, div ? NULL : &res) != 0 && rc == FR_EXIT_OK)
            rc = FR_EXIT_FAILED;
        if (lease_lost && rc == FR_EXIT_OK)
            rc = FR_EXIT_FAILED;
        fr__audit_cli(FR_ACTION_RUN, mpath, fr__pipeline_manifest(p), res.run_id, "allowed",
                      fr__run_status_name(res.status), NULL);
        fr__run_result_free(&res);
    }
    fr__replay_free(rp);
    fr__pipeline_free(p);
    fr__journal_doc_free(&doc);
    return rc;
}
