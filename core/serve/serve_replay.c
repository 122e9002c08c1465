/* serve: replays (POST /v1/replay): a trace, uploaded or a run's by its id, replayed
 * against a pipeline built from the trace's own manifest, on a thread of its own while the
 * connection waits, bounded by the manifest's run_timeout or REPLAY_DEADLINE_US.
 * (internal header: serve_runs_impl.h) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/duration.h"
#include "serve/serve_runs_impl.h"
#include "trace/replay.h"
#include "trace/trace.h"

/* ---- replays ---------------------------------------------------------------------------- */

/* Replays of traces without a run_timeout are stopped after this long. */
#define REPLAY_DEADLINE_US (60 * 1000000LL)

typedef struct replay_job {
    fr_runs *r;
    fr_identity who;
    json_object *trace; /* owned */
    fr_pipeline *p;     /* owned */
    int64_t stop_at;    /* the request's deadline (monotonic us) */
    char stop_why[160];
    fr_deferred *defer; /* answered from the replay's own thread */
} replay_job;

/* Replays j's trace and fills `out`; frees j and leaves the runs in flight. */
static void replay_answer(replay_job *j, fr_reply *out)
{
    fr_pipeline *p = j->p;
    const char *text = json_object_get_string(json_object_object_get(j->trace, "manifest"));
    json_object *notes = json_object_new_array(), *div = NULL;
    fr__replay_notes(j->trace, text, p, notes);
    const fr_manifest *pm = fr__pipeline_manifest(p);
    for (size_t i = 0; i < pm->n_notes; i++)
        json_object_array_add(notes, json_object_new_string(pm->notes[i]));
    size_t n_steps = 0;
    fr_status st = fr__replay_execute_until(p, j->trace, j->stop_at, j->stop_why,
                                            (size_t)j->r->cfg.limits.value[FR_LIMIT_MAX_RUN_BYTES],
                                            &div, &n_steps);
    if (fr__mono_us() >= j->stop_at)
        json_object_array_add(notes, json_object_new_string(j->stop_why));
    fr__runs_audit(&j->who, FR_ACTION_REPLAY, "trace", fr__pipeline_manifest(p), NULL, "allowed",
                   st != FR_OK ? "error"
                   : div       ? "diverged"
                               : "identical",
                   NULL);
    if (st != FR_OK) {
        fr__reply_error(out, FR_HE_INVALID_TRACE, "the recorded input cannot be replayed: %s",
                        fr_strerror(st));
    } else {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "identical", json_object_new_boolean(div == NULL));
        json_object_object_add(o, "steps", json_object_new_int64((int64_t)n_steps));
        json_object_object_add(o, "notes", notes);
        notes = NULL;
        json_object_object_add(o, "divergence", div);
        div = NULL;
        fr__reply_json(out, 200, o);
    }
    out->route = "/v1/replay";
    json_object_put(div);
    json_object_put(notes);
    fr__pipeline_free(p);
    json_object_put(j->trace);
    fr__runs_leave(j->r, &j->who);
    free(j);
}

static void *replay_main(void *arg)
{
    pthread_setname_np(pthread_self(), "fr-replay");
    replay_job *j = arg;
    fr_deferred *d = j->defer;
    fr_reply reply = {0};
    replay_answer(j, &reply);
    d->complete(d, &reply);
    return NULL;
}

void fr__runs_handle_replay(fr_runs *r, const fr_identity *who, json_object *body,
                            fr_deferred *defer, fr_reply *out)
{
    static const char *const fields[] = {"trace", "run_id", "trace_path", NULL};
    if (fr__runs_only_fields(body, fields, out) != 0)
        return;
    json_object *v;
    char err[512];
    json_object *trace = NULL;
    int inline_trace = 0;
    if (json_object_object_get_ex(body, "trace_path", NULL)) {
        fr__reply_error(out, FR_HE_TRACE_PATH_REFUSED,
                        "the server reads no paths: upload the trace as \"trace\" or name a run "
                        "with \"run_id\"");
        return;
    }
    if (json_object_object_get_ex(body, "trace", &v)) {
        const char *text = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
        trace = fr__trace_parse(text, strlen(text), err, sizeof err);
        inline_trace = 1;
    } else if (json_object_object_get_ex(body, "run_id", &v) &&
               json_object_is_type(v, json_type_string)) {
        char *text = fr__runs_trace_text(r, who, json_object_get_string(v), out);
        if (!text)
            return;
        trace = fr__trace_parse(text, strlen(text), err, sizeof err);
        free(text);
    } else {
        fr__reply_error(out, FR_HE_BAD_REQUEST, "give \"trace\" (a trace document) or \"run_id\"");
        return;
    }
    if (!trace) {
        fr__reply_error(out, FR_HE_INVALID_TRACE, "%s", err);
        return;
    }
    /* Admission first, as for runs: a full server or a tenant at its share answers 429
     * before the pipeline is built. */
    replay_job *j = calloc(1, sizeof *j);
    if (!j || fr__runs_admit(r, who, out) != 0) {
        if (!j)
            fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
        free(j);
        json_object_put(trace);
        return;
    }
    const char *text = json_object_get_string(json_object_object_get(trace, "manifest"));
    fr_pipeline *p =
        fr__runs_build_pipeline(r, "trace manifest", text, strlen(text), inline_trace, 1, out);
    if (!p || fr__runs_authorize(who, fr__pipeline_manifest(p), NULL, FR_ACTION_REPLAY, out) != 0 ||
        fr__policy_check_quarantine(p, out) != 0) {
        fr__pipeline_free(p);
        json_object_put(trace);
        fr__runs_leave(r, who);
        free(j);
        return;
    }
    j->r = r;
    j->who = *who;
    j->trace = trace;
    j->p = p;
    /* A replay keeps no deadlines of its own (it runs on recorded time): the request's
     * deadline is its manifest's run_timeout, or REPLAY_DEADLINE_US. */
    const fr_manifest *m = fr__pipeline_manifest(p);
    char d[32];
    int64_t bound = m->run_timeout_us ? m->run_timeout_us : REPLAY_DEADLINE_US;
    j->stop_at = fr__mono_us() + bound;
    snprintf(j->stop_why, sizeof j->stop_why, "the replay reached its deadline (%s %s)",
             m->run_timeout_us ? "router.run_timeout"
                               : "serve's bound on replays without a "
                                 "run_timeout,",
             fr__duration_format(bound, d, sizeof d));
    if (!defer) {
        replay_answer(j, out);
        return;
    }
    /* On a thread of its own while the connection waits: a replayed plugin may hang. */
    j->defer = defer;
    defer->suspend(defer);
    out->deferred = 1;
    fr__runs_spawn_or_run(replay_main, j);
}
