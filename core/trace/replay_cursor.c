/* The replay cursor: serving a trace's recorded effects back to a replayed run's
 * attempts, and recording the first divergence.  The host and the engine reach it only
 * through the seam's operations (core/host/replay_source.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/effects.h"
#include "host/host.h"
#include "trace/diff.h"
#include "trace/replay_cursor.h"

typedef struct trace_replay {
    fr_replay base;     /* the seam's view: first */
    json_object *trace; /* borrowed */
    json_object *steps; /* trace.steps (borrowed) */
    fr_cancel *cancel;
    pthread_mutex_t mu;
    json_object *divergence;   /* owned, first one */
    json_object *resumed_from; /* owned: resume, where the run went live first */
} trace_replay;

static const fr_replay_ops trace_replay_ops;

fr_replay *fr__replay_new(json_object *trace, fr_cancel *cancel)
{
    trace_replay *rp = calloc(1, sizeof *rp);
    if (!rp)
        return NULL;
    rp->base.ops = &trace_replay_ops;
    rp->trace = trace;
    json_object_object_get_ex(trace, "steps", &rp->steps);
    rp->cancel = cancel;
    pthread_mutex_init(&rp->mu, NULL);
    return &rp->base;
}

static void set_cancel(fr_replay *base, fr_cancel *cancel)
{
    trace_replay *rp = (trace_replay *)base;
    pthread_mutex_lock(&rp->mu);
    rp->cancel = cancel;
    pthread_mutex_unlock(&rp->mu);
}

void fr__replay_free(fr_replay *base)
{
    if (!base)
        return;
    trace_replay *rp = (trace_replay *)base;
    json_object_put(rp->divergence);
    json_object_put(rp->resumed_from);
    pthread_mutex_destroy(&rp->mu);
    free(rp);
}

/* The recorded step object for a step id, or NULL. */
static json_object *recorded_step(fr_replay *base, const char *step)
{
    trace_replay *rp = (trace_replay *)base;
    size_t n = rp->steps ? json_object_array_length(rp->steps) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *s = json_object_array_get_idx(rp->steps, i), *id;
        if (json_object_object_get_ex(s, "step", &id) &&
            strcmp(json_object_get_string(id), step) == 0)
            return s;
    }
    return NULL;
}

/* The recorded attempt object at `index` of a step, or NULL. */
static json_object *recorded_attempt(fr_replay *rp, const char *step, size_t index)
{
    json_object *s = recorded_step(rp, step), *atts;
    if (!s || !json_object_object_get_ex(s, "attempts", &atts) ||
        index >= json_object_array_length(atts))
        return NULL;
    return json_object_array_get_idx(atts, index);
}

void fr__replay_cursor_init(fr_replay_cursor *c, fr_replay *rp, const char *step, size_t index,
                            int attempt, const char *agent)
{
    memset(c, 0, sizeof *c);
    c->rp = rp;
    c->step = step;
    c->attempt = attempt;
    c->agent = agent;
    c->attempt_index = index;
    json_object *a = recorded_attempt(rp, step, index), *v;
    if (a)
        json_object_object_get_ex(a, "effects", &c->effects);
    c->n_recorded = c->effects && json_object_is_type(c->effects, json_type_array)
                        ? json_object_array_length(c->effects)
                        : 0;
    /* A resume goes live after what the journal has of an attempt it did not see end. */
    c->live_after =
        rp->resume &&
        (!a || (json_object_object_get_ex(a, "in_flight", &v) && json_object_get_boolean(v)));
}

static size_t n_effects(const fr_replay_cursor *c)
{
    return c->n_recorded;
}

static void diverge(fr_replay_cursor *c, const char *path, json_object *recorded,
                    json_object *replayed, const char *note)
{
    trace_replay *rp = (trace_replay *)c->rp;
    pthread_mutex_lock(&rp->mu);
    if (!rp->divergence) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "step", json_object_new_string(c->step));
        json_object_object_add(d, "attempt", json_object_new_int(c->attempt));
        json_object_object_add(d, "agent", c->agent ? json_object_new_string(c->agent) : NULL);
        char full[512];
        snprintf(full, sizeof full, "attempts[%zu].%s", c->attempt_index, path);
        json_object_object_add(d, "path", json_object_new_string(full));
        json_object_object_add(d, "recorded", recorded ? json_object_get(recorded) : NULL);
        json_object_object_add(d, "replayed", replayed ? json_object_get(replayed) : NULL);
        json_object_object_add(d, "note", note ? json_object_new_string(note) : NULL);
        rp->divergence = d;
        /* Stop the replay: what follows would only be noise. */
        if (rp->cancel)
            fr__cancel_fire(rp->cancel);
    }
    pthread_mutex_unlock(&rp->mu);
}

static json_object *take(fr_replay_cursor *c, const char *kind, json_object *request,
                         const char *compare_key)
{
    char path[64], note[256];
    size_t n = n_effects(c);
    snprintf(path, sizeof path, "effects[%zu]", c->pos);
    if (c->pos >= n) {
        json_object *want = json_object_new_object();
        json_object_object_add(want, "kind", json_object_new_string(kind));
        if (request)
            json_object_object_add(want, compare_key ? compare_key : "request",
                                   json_object_get(request));
        snprintf(note, sizeof note, "the plugin made a %s call that the recording does not have",
                 kind);
        diverge(c, path, NULL, want, note);
        json_object_put(want);
        return NULL;
    }
    json_object *e = json_object_array_get_idx(c->effects, c->pos), *k;
    const char *rk = json_object_object_get_ex(e, "kind", &k) ? json_object_get_string(k) : "";
    if (strcmp(rk, kind) != 0) {
        json_object *want = json_object_new_object();
        json_object_object_add(want, "kind", json_object_new_string(kind));
        if (request)
            json_object_object_add(want, compare_key ? compare_key : "request",
                                   json_object_get(request));
        snprintf(note, sizeof note, "the plugin made a %s call where the recording has %s", kind,
                 rk);
        diverge(c, path, e, want, note);
        json_object_put(want);
        return NULL;
    }
    if (request) {
        json_object *rv = NULL;
        json_object_object_get_ex(e, compare_key ? compare_key : "request", &rv);
        if (!json_object_equal(rv, request)) {
            char p2[96];
            snprintf(p2, sizeof p2, "%s.%s", path, compare_key ? compare_key : "request");
            snprintf(note, sizeof note, "the plugin's %s call differs from the recording", kind);
            diverge(c, p2, rv, request, note);
            return NULL;
        }
    }
    c->pos++;
    return e;
}

static const char *peek(const fr_replay_cursor *c)
{
    if (c->pos >= n_effects(c))
        return "";
    json_object *k;
    return json_object_object_get_ex(json_object_array_get_idx(c->effects, c->pos), "kind", &k)
               ? json_object_get_string(k)
               : "";
}

/* Whether the recorded attempt ended without the plugin returning ("hung"/"killed"). */
static int recorded_abandoned(const fr_replay_cursor *c)
{
    for (size_t i = 0; i < n_effects(c); i++) {
        json_object *k;
        if (!json_object_object_get_ex(json_object_array_get_idx(c->effects, i), "kind", &k))
            continue;
        const char *kind = json_object_get_string(k);
        if (strcmp(kind, "hung") == 0 || strcmp(kind, "killed") == 0)
            return 1;
    }
    return 0;
}

/* An attempt that never returned: status and message as recorded. */
static int attempt_abandoned(fr_replay_cursor *c, fr_status *status, char **message)
{
    if (!recorded_abandoned(c))
        return 0;
    json_object *ra = recorded_attempt(c->rp, c->step, c->attempt_index);
    const char *cls = fr__trace_member_string(ra, "class");
    const char *msg = fr__trace_member_string(ra, "message");
    fr_error_class ec;
    *status = cls && fr_class_from_name(cls, &ec) == FR_OK ? fr_class_status(ec) : FR_E_TIMEOUT;
    if (cls && strcmp(cls, "timeout") == 0)
        *status = FR_E_TIMEOUT;
    *message = msg ? strdup(msg) : NULL;
    return 1;
}

void fr__replay_attempt_done(fr_replay_cursor *c)
{
    size_t n = n_effects(c);
    if (c->pos < n) {
        char path[64], note[160];
        snprintf(path, sizeof path, "effects[%zu]", c->pos);
        snprintf(note, sizeof note, "the recording has %zu effect(s) the replay did not ask for",
                 n - c->pos);
        diverge(c, path, json_object_array_get_idx(c->effects, c->pos), NULL, note);
    }
}

/* A plugin that returned after its deadline has still missed it: as recorded. */
static fr_status attempt_end(fr_replay_cursor *c, fr_status rc)
{
    fr_status late = FR_OK;
    if (rc == FR_OK && strcmp(peek(c), "late") == 0) {
        json_object *e = take(c, "late", NULL, NULL), *v;
        late = e && json_object_object_get_ex(e, "status", &v) ? fr__status_from_json(v)
                                                               : FR_E_TIMEOUT;
    }
    fr__replay_attempt_done(c);
    return late;
}

/* Does the recording stop the step before this attempt?  Either the recorded run stopped
 * it there (deadline, cancel, lease lost: repeat that), or the replay diverges. */
static int attempt_begin(fr_replay *rp, fr_replay_cursor *c, const char *step, size_t index,
                         int attempt, const char *agent, fr_status *stop, char **message)
{
    fr__replay_cursor_init(c, rp, step, index, attempt, agent);
    json_object *rs = recorded_step(rp, step), *atts = NULL, *err = NULL;
    size_t recorded =
        rs && json_object_object_get_ex(rs, "attempts", &atts) ? json_object_array_length(atts) : 0;
    if (index < recorded || rp->resume)
        return 0; /* a resume runs the attempts the journal does not have live */
    json_object_object_get_ex(rs, "error", &err);
    const char *cls = fr__trace_member_string(err, "class");
    const char *msg = fr__trace_member_string(err, "message");
    fr_error_class ec;
    if (cls && fr_class_from_name(cls, &ec) == FR_OK &&
        (ec == FR_CLASS_DEADLINE_EXCEEDED || ec == FR_CLASS_CANCELLED ||
         ec == FR_CLASS_LEASE_LOST)) {
        *stop = fr_class_status(ec);
        *message = msg ? strdup(msg) : NULL;
        return 1;
    }
    json_object *want = json_object_new_string(agent);
    diverge(c, "agent", NULL, want,
            "the replay starts an attempt that the recording does not have");
    json_object_put(want);
    *stop = FR_E_CANCELLED;
    *message = strdup("replay diverged: see the divergence report");
    return 1;
}

static void going_live(fr_replay_cursor *c)
{
    trace_replay *rp = (trace_replay *)c->rp;
    pthread_mutex_lock(&rp->mu);
    if (!rp->resumed_from) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "step", json_object_new_string(c->step));
        json_object_object_add(o, "attempt", json_object_new_int(c->attempt));
        json_object_object_add(o, "effect", json_object_new_int64((int64_t)c->pos));
        rp->resumed_from = o;
    }
    pthread_mutex_unlock(&rp->mu);
}

static json_object *settled_step(fr_replay *base, const char *step)
{
    json_object *s = recorded_step(base, step);
    const char *st = fr__trace_member_string(s, "status");
    return st && (strcmp(st, "succeeded") == 0 || strcmp(st, "failed") == 0) ? s : NULL;
}

static json_object *transitions(fr_replay *base)
{
    json_object *t;
    return json_object_object_get_ex(((trace_replay *)base)->trace, "breaker_transitions", &t) &&
                   json_object_is_type(t, json_type_array)
               ? t
               : NULL;
}

fr_replay *fr__replay_new_resume(json_object *journal_trace)
{
    fr_replay *rp = fr__replay_new(journal_trace, NULL);
    if (rp)
        rp->resume = 1;
    return rp;
}

json_object *fr__replay_resumed_from(fr_replay *base)
{
    return ((trace_replay *)base)->resumed_from;
}

json_object *fr__replay_divergence(fr_replay *base)
{
    return ((trace_replay *)base)->divergence;
}

static const fr_replay_ops trace_replay_ops = {
    .set_cancel = set_cancel,
    .attempt_begin = attempt_begin,
    .attempt_abandoned = attempt_abandoned,
    .attempt_end = attempt_end,
    .take = take,
    .diverge = diverge,
    .going_live = going_live,
    .settled_step = settled_step,
    .transitions = transitions,
};
