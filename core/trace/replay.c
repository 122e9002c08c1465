/* Replaying a whole run: re-executing a pipeline with every effect served from its
 * trace, then comparing the replayed trace with the recorded one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/pipeline.h"
#include "trace/diff.h"
#include "trace/replay.h"
#include "trace/replay_cursor.h"
#include "trace/trace.h"

/* Notes on what changed since the recording: the manifest and each plugin. */
void fr__replay_notes(json_object *trace, const char *manifest_text, const fr_pipeline *p,
                      json_object *notes)
{
    char sha[65];
    fr__sha256_hex(manifest_text, strlen(manifest_text), sha);
    const char *rec = fr__trace_member_string(trace, "manifest_sha256");
    if (rec && strcmp(rec, sha) != 0) {
        char *n = fr__xasprintf("the manifest differs from the recorded one (sha256 %.12s... "
                                "recorded, %.12s... now)",
                                rec, sha);
        json_object_array_add(notes, json_object_new_string(n ? n : "manifest differs"));
        free(n);
    }
    json_object *rp = NULL;
    json_object_object_get_ex(trace, "plugins", &rp);
    const fr_manifest *m = p ? fr__pipeline_manifest(p) : NULL;
    for (size_t i = 0; m && rp && i < json_object_array_length(rp); i++) {
        json_object *pl = json_object_array_get_idx(rp, i);
        const char *name = fr__trace_member_string(pl, "name"),
                   *hash = fr__trace_member_string(pl, "sha256");
        const char *ver = fr__trace_member_string(pl, "version");
        const fr_loaded_plugin *lp = NULL;
        for (size_t k = 0; !lp && k < m->n_agents; k++)
            if (p->agents[k].plugin && name && strcmp(p->agents[k].plugin->name, name) == 0)
                lp = p->agents[k].plugin;
        for (size_t k = 0; !lp && k < m->n_providers; k++)
            if (p->providers[k].plugin && name && strcmp(p->providers[k].plugin->name, name) == 0)
                lp = p->providers[k].plugin;
        char *n = NULL;
        if (!lp)
            n = fr__xasprintf("plugin \"%s\" was recorded but is not used now", name ? name : "?");
        else if (hash && strcmp(hash, lp->sha256) != 0)
            n = fr__xasprintf("plugin \"%s\" changed: %s (version %s, sha256 %.12s...) now, "
                              "version %s (sha256 %.12s...) recorded",
                              name, lp->path, lp->desc->version, lp->sha256, ver ? ver : "?", hash);
        if (n) {
            json_object_array_add(notes, json_object_new_string(n));
            free(n);
        }
    }
}

fr_status fr__replay_execute(fr_pipeline *p, json_object *trace, json_object **divergence,
                             size_t *n_steps)
{
    return fr__replay_execute_until(p, trace, 0, NULL, 0, divergence, n_steps);
}

fr_status fr__replay_execute_until(fr_pipeline *p, json_object *trace, int64_t stop_at_mono,
                                   const char *stop_why, size_t max_output_bytes,
                                   json_object **divergence, size_t *n_steps)
{
    *divergence = NULL;
    json_object *input = NULL, *seed = NULL;
    json_object_object_get_ex(trace, "input", &input);
    json_object_object_get_ex(trace, "seed", &seed);
    fr_replay *rp = fr__replay_new(trace, NULL);
    if (!rp)
        return FR_E_NOMEM;
    fr_run_options ro = {
        .input_json = json_object_to_json_string_ext(input, JSON_C_TO_STRING_PLAIN),
        .seed = json_object_get_uint64(seed),
        .has_seed = 1,
        /* The recorded run id: what host->idempotency_key derives keys from. */
        .run_id = fr__trace_member_string(trace, "run_id"),
        .replay = rp,
        .stop_at_mono = stop_at_mono,
        .stop_why = stop_why,
        .max_output_bytes = max_output_bytes,
    };
    fr_run_result res;
    fr_status st = fr__pipeline_run(p, &ro, &res);
    if (st != FR_OK) {
        fr__replay_free(rp);
        return st;
    }
    *n_steps = res.n_steps;
    json_object *div =
        fr__replay_divergence(rp) ? json_object_get(fr__replay_divergence(rp)) : NULL;
    if (!div) {
        /* Effects matched; now the outcome of every step and attempt. */
        json_object *replayed = fr__trace_build(p, &res);
        static const char *const skip[] = {"format", "version", "manifest", "manifest_name",
                                           "manifest_sha256", "plugins", "providers",
                                           "breaker_transitions",
                                           /* the host's policy, not the run's outcome */
                                           "notes", NULL};
        json_object *found = json_object_new_array();
        if (fr__trace_diff(trace, replayed, skip, 1, 0, found) > 0) {
            json_object *d = json_object_array_get_idx(found, 0);
            div = json_object_new_object();
            json_object_object_foreach(d, key, val)
            {
                const char *k = strcmp(key, "expected") == 0 ? "recorded"
                                : strcmp(key, "actual") == 0 ? "replayed"
                                                             : key;
                json_object_object_add(div, k, json_object_get(val));
            }
        }
        json_object_put(found);
        json_object_put(replayed);
    }
    fr__run_result_free(&res);
    fr__replay_free(rp);
    *divergence = div;
    return FR_OK;
}
