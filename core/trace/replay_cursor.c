/* The replay cursor: serving a trace's recorded effects back to a replayed run's
 * attempts, and recording the first divergence. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace/replay_cursor.h"

struct fr_replay {
    json_object *trace; /* borrowed */
    json_object *steps; /* trace.steps (borrowed) */
    fr_cancel *cancel;
    pthread_mutex_t mu;
    json_object *divergence; /* owned, first one */
};

fr_replay *fr__replay_new(json_object *trace, fr_cancel *cancel)
{
    fr_replay *rp = calloc(1, sizeof *rp);
    if (!rp)
        return NULL;
    rp->trace = trace;
    json_object_object_get_ex(trace, "steps", &rp->steps);
    rp->cancel = cancel;
    pthread_mutex_init(&rp->mu, NULL);
    return rp;
}

void fr__replay_set_cancel(fr_replay *rp, fr_cancel *cancel)
{
    pthread_mutex_lock(&rp->mu);
    rp->cancel = cancel;
    pthread_mutex_unlock(&rp->mu);
}

void fr__replay_free(fr_replay *rp)
{
    if (!rp)
        return;
    json_object_put(rp->divergence);
    pthread_mutex_destroy(&rp->mu);
    free(rp);
}

json_object *fr__replay_step(fr_replay *rp, const char *step)
{
    size_t n = rp->steps ? json_object_array_length(rp->steps) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *s = json_object_array_get_idx(rp->steps, i), *id;
        if (json_object_object_get_ex(s, "step", &id) &&
            strcmp(json_object_get_string(id), step) == 0)
            return s;
    }
    return NULL;
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
    json_object *s = fr__replay_step(rp, step), *atts, *a;
    if (s && json_object_object_get_ex(s, "attempts", &atts) &&
        index < json_object_array_length(atts) &&
        (a = json_object_array_get_idx(atts, index)) != NULL)
        json_object_object_get_ex(a, "effects", &c->effects);
}

static size_t n_effects(const fr_replay_cursor *c)
{
    return c->effects && json_object_is_type(c->effects, json_type_array)
               ? json_object_array_length(c->effects)
               : 0;
}

void fr__replay_diverge(fr_replay_cursor *c, const char *path, json_object *recorded,
                        json_object *replayed, const char *note)
{
    fr_replay *rp = c->rp;
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

json_object *fr__replay_take(fr_replay_cursor *c, const char *kind, json_object *request,
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
        fr__replay_diverge(c, path, NULL, want, note);
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
        fr__replay_diverge(c, path, e, want, note);
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
            fr__replay_diverge(c, p2, rv, request, note);
            return NULL;
        }
    }
    c->pos++;
    return e;
}

const char *fr__replay_peek(const fr_replay_cursor *c)
{
    if (c->pos >= n_effects(c))
        return "";
    json_object *k;
    return json_object_object_get_ex(json_object_array_get_idx(c->effects, c->pos), "kind", &k)
               ? json_object_get_string(k)
               : "";
}

int fr__replay_attempt_abandoned(const fr_replay_cursor *c)
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

void fr__replay_attempt_done(fr_replay_cursor *c)
{
    size_t n = n_effects(c);
    if (c->pos < n) {
        char path[64], note[160];
        snprintf(path, sizeof path, "effects[%zu]", c->pos);
        snprintf(note, sizeof note, "the recording has %zu effect(s) the replay did not ask for",
                 n - c->pos);
        fr__replay_diverge(c, path, json_object_array_get_idx(c->effects, c->pos), NULL, note);
    }
}

json_object *fr__replay_divergence(fr_replay *rp)
{
    return rp->divergence;
}
