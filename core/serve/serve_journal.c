/* Durable queued runs: journaling to Redis, and resuming a run claimed from a consumer
 * that died (core/serve/serve_journal.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "base/clock.h"
#include "engine/pipeline.h"
#include "http/http.h"
#include "state/journal_redis.h"
#include "state/state.h"
#include "serve/serve_journal.h"
#include "trace/replay_cursor.h"
#include "trace/diff.h"

/* A resume of the journal `rj->doc`: checked against `p`, then its replay.  0, or -1 with
 * out filled. */
static int resume_from(fr_run_journal *rj, const char *run_id, const fr_pipeline *p, fr_reply *out)
{
    const char *jid = fr__trace_member_string(rj->doc.header, "run_id");
    if (!jid || strcmp(jid, run_id) != 0) {
        fr__reply_error(out, FR_HE_BAD_REQUEST,
                        "not resumed: the journal of run %s names run %s: it is not this run's",
                        run_id, jid ? jid : "?");
        return -1;
    }
    json_object *changes = json_object_new_array();
    fr__journal_compare_builds(rj->doc.header, p, changes);
    size_t n = changes ? json_object_array_length(changes) : 0;
    if (n) {
        /* The first change names the sha256s; a consumer cannot --allow-changed. */
        fr__reply_error(out, FR_HE_BAD_REQUEST,
                        "not resumed: the run would diverge from its journal: %s%s",
                        json_object_get_string(json_object_array_get_idx(changes, 0)),
                        n > 1 ? " (and more)" : "");
    }
    json_object_put(changes);
    return n ? -1 : 0;
}

int fr__run_journal_open(const fr_runs_config *cfg, const fr_identity *who, const char *run_id,
                         uint64_t token, const fr_pipeline *p, const char *input, uint64_t seed,
                         int has_seed, fr_run_journal *rj, fr_reply *out)
{
    memset(rj, 0, sizeof *rj);
    if (!cfg->journal || !cfg->state || cfg->state->kind != FR_STATE_REDIS)
        return 0;
    char err[1024];
    int found = 0;
    /* Only a run started before can have a journal: a first execution costs no read. */
    if (token > 1) {
        fr_status st = fr__journal_redis_read(cfg->state, who->tenant, run_id, &rj->doc, &found,
                                              err, sizeof err);
        if (st == FR_E_NETWORK) {
            fr__reply_error(out, FR_HE_STATE_UNAVAILABLE, "cannot read the run's journal: %s", err);
            return -1;
        }
        if (st != FR_OK) {
            fr__reply_error(out, FR_HE_BAD_REQUEST, "not resumed: %s", err);
            return -1;
        }
    }
    if (found && resume_from(rj, run_id, p, out) != 0) {
        fr__journal_doc_free(&rj->doc);
        return -1;
    }
    rj->journal = fr__journal_redis_open(cfg->state, who->tenant, run_id, token, cfg->retention_us,
                                         (fr_journal_sync)cfg->journal_sync);
    if (rj->journal && found) {
        rj->resume = 1;
        fr__journal_mark_resume(rj->journal, (unsigned)token);
    } else if (rj->journal) {
        /* Drawn as the engine draws it (53 bits): the header must name it. */
        rj->seed = has_seed ? seed : fr__os_random() & ((1ULL << 53) - 1);
        const fr_manifest *m = fr__pipeline_manifest(p);
        const char *text = input ? input : m->input_json ? m->input_json : "{}";
        json_object *in = json_tokener_parse(text);
        const char *compact = json_object_to_json_string_ext(in, JSON_C_TO_STRING_PLAIN);
        json_object *h = fr__journal_header_new(p, run_id, rj->seed, compact ? compact : "null");
        json_object_put(in);
        char why[512] = "";
        fr_status st =
            h ? rj->journal->ops->append(rj->journal, h, FR_JOURNAL_STEP, why, sizeof why)
              : FR_E_NOMEM;
        json_object_put(h);
        if (st != FR_OK) {
            fr__reply_error(out, FR_HE_STATE_UNAVAILABLE, "cannot start the run's journal: %s",
                            why[0] ? why : "out of memory");
            fr__run_journal_free(rj);
            return -1;
        }
    }
    if (!rj->journal) {
        fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
        fr__run_journal_free(rj);
        return -1;
    }
    return 0;
}

void fr__run_journal_apply(fr_run_journal *rj, fr_run_options *ro)
{
    if (!rj->journal)
        return;
    ro->journal = rj->journal;
    ro->record = 1; /* the journal is made of the recorded effects */
    if (rj->resume) {
        rj->rp = fr__journal_resume_options(&rj->doc, ro->executions, ro);
    } else {
        ro->seed = rj->seed;
        ro->has_seed = 1;
    }
}

void fr__run_journal_end(fr_run_journal *rj, fr_run_result *res)
{
    if (!rj->journal)
        return;
    if (res && rj->rp)
        fr__journal_resumed_from(rj->rp, res);
    json_object *div = rj->rp ? fr__replay_divergence(rj->rp) : NULL;
    if (div) /* the journaled prefix did not replay: the run was stopped (cancelled) there */
        fprintf(stderr, "fluxroute: run %s diverges from its journal: %s\n",
                res ? res->run_id : "?",
                json_object_to_json_string_ext(div, JSON_C_TO_STRING_PLAIN));
    if (res)
        fr__journal_mark_end(rj->journal, res);
    char err[1024];
    fr_status st = fr__journal_redis_close(rj->journal, err, sizeof err);
    if (st != FR_OK)
        fprintf(stderr, "fluxroute: %s\n", err);
    rj->fenced = st == FR_E_LEASE_LOST;
    rj->journal = NULL;
}

void fr__run_journal_free(fr_run_journal *rj)
{
    if (rj->journal) {
        char err[1024];
        fr__journal_redis_close(rj->journal, err, sizeof err);
        rj->journal = NULL;
    }
    fr__replay_free(rj->rp);
    rj->rp = NULL;
    fr__journal_doc_free(&rj->doc);
}
