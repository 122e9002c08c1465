/* `fluxroute replay` and `fluxroute debug`: re-executing a recorded trace offline, and
 * comparing two traces, reporting the first divergence. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "base/fileio.h"
#include "cli/cli.h"
#include "host/effects.h"
#include "host/host.h"
#include "observe/observe.h"
#include "trace/diff.h"
#include "trace/replay.h"
#include "engine/pipeline.h"
#include "trace/trace.h"

static const char *member_str(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

static char *read_text(const cli_command *cmd, const char *path)
{
    char *buf = fr__file_read(path, NULL);
    if (!buf)
        fr__cli_error(cmd, "%s: %s", path, strerror(errno));
    return buf;
}

static size_t count_effects(json_object *trace, size_t *attempts)
{
    json_object *steps, *atts, *eff;
    size_t n = 0;
    *attempts = 0;
    if (!json_object_object_get_ex(trace, "steps", &steps))
        return 0;
    for (size_t i = 0; i < json_object_array_length(steps); i++) {
        if (!json_object_object_get_ex(json_object_array_get_idx(steps, i), "attempts", &atts))
            continue;
        *attempts += json_object_array_length(atts);
        for (size_t j = 0; j < json_object_array_length(atts); j++)
            if (json_object_object_get_ex(json_object_array_get_idx(atts, j), "effects", &eff))
                n += json_object_array_length(eff);
    }
    return n;
}

/* Drops the plugins.dirs of a manifest that came from a trace (someone else's file: its
 * directories would choose the code we run), appends each to `ignored` and says so in
 * `notes`. */
static void ignore_trace_plugin_dirs(fr_manifest *m, json_object *notes, json_object *ignored)
{
    if (m->n_plugin_dirs == 0)
        return;
    char *list = NULL;
    for (size_t i = 0; i < m->n_plugin_dirs; i++) {
        json_object_array_add(ignored, json_object_new_string(m->plugin_dirs[i]));
        char *next = fr__xasprintf("%s%s%s", list ? list : "", list ? ", " : "", m->plugin_dirs[i]);
        free(list);
        list = next;
        free(m->plugin_dirs[i]);
    }
    m->n_plugin_dirs = 0;
    char *note =
        fr__xasprintf("ignored the trace manifest's plugins.dirs (%s): plugins come from "
                      "your own search path; pass --trust-trace-plugin-dirs to search them",
                      list ? list : "");
    json_object_array_add(notes, json_object_new_string(note ? note : "ignored plugins.dirs"));
    free(note);
    free(list);
}

int fr__cmd_replay(const cli_command *cmd, int argc, char **argv)
{
    const char *manifest_arg = NULL, *pos[1];
    int json = 0, trust_dirs = 0;
    size_t n_pos;
    cli_list dirs = {0};
    const cli_opt opts[] = {{"--manifest", 1, &manifest_arg, NULL, NULL},
                            {"--plugin-dir", 1, NULL, &dirs, NULL},
                            {"--json", 0, NULL, NULL, &json},
                            {"--trust-trace-plugin-dirs", 0, NULL, NULL, &trust_dirs},
                            {NULL, 0, NULL, NULL, NULL}};
    int rc = fr__cli_parse(cmd, argc, argv, opts, pos, 1, &n_pos);
    if (rc != 0)
        return rc > 0 ? FR_EXIT_OK : FR_EXIT_USAGE;
    if (n_pos != 1) {
        fr__cli_error(cmd, "expected a trace file (see fluxroute replay --help)");
        return FR_EXIT_USAGE;
    }
    char err[1024];
    json_object *trace = fr__trace_load(pos[0], err, sizeof err);
    if (!trace) {
        fr__cli_error(cmd, "%s", err);
        return FR_EXIT_USAGE;
    }
    /* The manifest: the one embedded in the trace, or a changed one to test. */
    char *text =
        manifest_arg ? read_text(cmd, manifest_arg) : strdup(member_str(trace, "manifest"));
    if (!text) {
        json_object_put(trace);
        return FR_EXIT_USAGE;
    }
    char *trace_dir_buf = strdup(pos[0]), *man_dir_buf = manifest_arg ? strdup(manifest_arg) : NULL;
    const char *base_dir = manifest_arg ? dirname(man_dir_buf) : dirname(trace_dir_buf);
    char label[1024];
    snprintf(label, sizeof label, "%s", manifest_arg ? manifest_arg : pos[0]);
    fr_diags diags;
    fr__diags_init(&diags, label);
    /* The providers the run used (a serve run's are the server's, not the manifest's, and
     * its manifest may name them without declaring them). */
    fr_manifest *recorded = fr__trace_providers(trace, err, sizeof err);
    fr_manifest *m = NULL;
    if (!err[0])
        m = fr__manifest_parse_with_providers(label, text, strlen(text), base_dir, NULL, recorded,
                                              &diags);
    if (err[0]) {
        fr__cli_error(cmd, "%s: %s", pos[0], err);
        fr__diags_free(&diags);
        free(text);
        free(trace_dir_buf);
        free(man_dir_buf);
        json_object_put(trace);
        return FR_EXIT_USAGE;
    }
    if (m && recorded && fr__manifest_use_providers(m, recorded, 0, err, sizeof err) != 0) {
        fr__cli_error(cmd, "%s", err);
        fr__manifest_free(m);
        m = NULL;
    }
    fr__host_set_replay_mode(1);
    fr_pipeline *p = NULL;
    json_object *notes = json_object_new_array(), *ignored = json_object_new_array();
    /* A manifest given with --manifest is the user's own; the trace's is not. */
    if (m && !manifest_arg && !trust_dirs)
        ignore_trace_plugin_dirs(m, notes, ignored);
    if (m && diags.n == 0) {
        fr_build_options bo = {
            .plugin_dirs = dirs.items, .n_plugin_dirs = dirs.n, .use_env_path = 1};
        p = fr__pipeline_build(m, &bo, &diags);
    } else {
        fr__manifest_free(m);
    }
    if (!p) {
        /* A plugin not found may be one the ignored directories held: say so first. */
        for (size_t i = 0; i < json_object_array_length(notes); i++)
            fprintf(stderr, "note: %s\n",
                    json_object_get_string(json_object_array_get_idx(notes, i)));
        json_object_put(notes);
        json_object_put(ignored);
        fr__diags_sort(&diags);
        fr__diags_print(&diags, stderr);
        fr__diags_free(&diags);
        fr__manifest_free(recorded);
        free(text);
        free(trace_dir_buf);
        free(man_dir_buf);
        json_object_put(trace);
        return FR_EXIT_USAGE;
    }
    fr__diags_free(&diags);

    fr__replay_notes(trace, text, p, notes);
    if (!json)
        for (size_t i = 0; i < json_object_array_length(notes); i++)
            fprintf(stderr, "note: %s\n",
                    json_object_get_string(json_object_array_get_idx(notes, i)));

    fr__cli_signals_block();
    fr__cli_signals_start(p);
    size_t n_steps = 0;
    json_object *div = NULL;
    fr_status st = fr__replay_execute(p, trace, &div, &n_steps);
    fr__cli_signals_stop();
    if (st != FR_OK) {
        fr__cli_error(cmd, "the recorded input cannot be replayed: %s", fr_strerror(st));
        rc = FR_EXIT_USAGE;
    } else {
        size_t attempts, effects = count_effects(trace, &attempts);
        if (json) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "identical", json_object_new_boolean(div == NULL));
            json_object_object_add(o, "steps", json_object_new_int64((int64_t)n_steps));
            json_object_object_add(o, "attempts", json_object_new_int64((int64_t)attempts));
            json_object_object_add(o, "effects", json_object_new_int64((int64_t)effects));
            json_object_object_add(o, "notes", json_object_get(notes));
            json_object_object_add(o, "ignored_plugin_dirs", json_object_get(ignored));
            json_object_object_add(o, "divergence", div ? json_object_get(div) : NULL);
            fr__cli_print_json(o);
        } else if (!div) {
            printf("replay identical: %zu steps, %zu attempts, %zu effects served from %s\n",
                   n_steps, attempts, effects, pos[0]);
        } else {
            fr__divergence_print(stdout, div, "recorded", "replayed");
        }
        rc = div ? FR_EXIT_FAILED : FR_EXIT_OK;
    }
    json_object_put(div);
    json_object_put(notes);
    json_object_put(ignored);
    fr__audit_cli(FR_ACTION_REPLAY, pos[0], fr__pipeline_manifest(p), NULL, "allowed",
                  rc == FR_EXIT_OK       ? "identical"
                  : rc == FR_EXIT_FAILED ? "diverged"
                                         : "error",
                  NULL);
    fr__pipeline_free(p);
    fr__manifest_free(recorded); /* after the pipeline: it borrowed their configs */
    free(text);
    free(trace_dir_buf);
    free(man_dir_buf);
    json_object_put(trace);
    return rc;
}

int fr__cmd_debug(const cli_command *cmd, int argc, char **argv)
{
    const char *pos[2];
    int json = 0, all = 0;
    size_t n_pos;
    const cli_opt opts[] = {{"--json", 0, NULL, NULL, &json},
                            {"--all", 0, NULL, NULL, &all},
                            {NULL, 0, NULL, NULL, NULL}};
    int rc = fr__cli_parse(cmd, argc, argv, opts, pos, 2, &n_pos);
    if (rc != 0)
        return rc > 0 ? FR_EXIT_OK : FR_EXIT_USAGE;
    if (n_pos != 2) {
        fr__cli_error(cmd, "expected two trace files (see fluxroute debug --help)");
        return FR_EXIT_USAGE;
    }
    char err[1024];
    json_object *a = fr__trace_load(pos[0], err, sizeof err);
    if (!a) {
        fr__cli_error(cmd, "%s", err);
        return FR_EXIT_USAGE;
    }
    json_object *b = fr__trace_load(pos[1], err, sizeof err);
    if (!b) {
        fr__cli_error(cmd, "%s", err);
        json_object_put(a);
        return FR_EXIT_USAGE;
    }
    json_object *o = fr__trace_debug(a, b, all);
    if (!o) {
        fr__cli_error(cmd, "out of memory");
        json_object_put(a);
        json_object_put(b);
        return FR_EXIT_USAGE;
    }
    json_object *notes = json_object_object_get(o, "notes");
    json_object *found = json_object_object_get(o, "divergences");
    size_t n = json_object_array_length(found);
    if (json) {
        fr__cli_print_json(json_object_get(o)); /* it releases what it prints */
    } else {
        for (size_t i = 0; i < json_object_array_length(notes); i++)
            fprintf(stderr, "note: %s\n",
                    json_object_get_string(json_object_array_get_idx(notes, i)));
        if (n == 0)
            printf("traces identical (timing fields aside): %s, %s\n", pos[0], pos[1]);
        for (size_t i = 0; i < json_object_array_length(found); i++) {
            if (i)
                putchar('\n');
            fr__divergence_print(stdout, json_object_array_get_idx(found, i), "expected", "actual");
        }
    }
    json_object_put(o);
    json_object_put(a);
    json_object_put(b);
    return n ? FR_EXIT_FAILED : FR_EXIT_OK;
}
