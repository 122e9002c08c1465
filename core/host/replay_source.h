/* The replay seam: the one way a replay enters the host and the engine.
 *
 * A live run has no replay (its fr_run and fr_call hold NULL) and pays a predictable
 * branch where a replay would differ.  A replaying run holds an fr_replay: a trace being
 * served back, implemented above the engine (core/trace/replay_cursor.c) and reached
 * only through the operations below, so that neither the host nor the engine knows the
 * trace format or calls into trace/.
 *
 * During a replayed attempt the host answers each plugin request (clock, sleep, random,
 * HTTP, provider call, cancellation check, lease) with the next recorded effect of that
 * attempt, taken through its cursor.  A request of another kind, with another payload, or
 * beyond the recording is a divergence: the first one is kept (with the request the
 * plugin tried to make) and the run is cancelled.
 *
 * Besides the operations, a replaying run differs from a live one in what the recording
 * stands for, and only there: it runs on recorded time (no attempt or run deadline of its
 * own, no backoff sleep: timeouts come back as recorded effects), it reaches no vendor (no
 * usage is billed), and breakers answer as recorded (fr__replay_admission; no live breaker
 * is updated).  Those are the engine's only other tests of `run->replay` (step.c,
 * sched.c).
 *
 * Thread-safety: attempts of different steps replay concurrently; each cursor is used by
 * the one thread running its attempt; what attempts share (the divergence record, the
 * cancellation context) is locked by the implementation. */
#ifndef FR_CORE_REPLAY_SOURCE_H
#define FR_CORE_REPLAY_SOURCE_H

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include <fluxroute/status.h>

struct fr_cancel;
typedef struct fr_replay fr_replay;
typedef struct fr_replay_cursor fr_replay_cursor;

/* What a replay implements; the functions below call these. */
typedef struct fr_replay_ops {
    void (*set_cancel)(fr_replay *rp, struct fr_cancel *cancel);
    int (*attempt_begin)(fr_replay *rp, fr_replay_cursor *c, const char *step, size_t index,
                         int attempt, const char *agent, fr_status *stop, char **message);
    int (*attempt_abandoned)(fr_replay_cursor *c, fr_status *status, char **message);
    fr_status (*attempt_end)(fr_replay_cursor *c, fr_status rc);
    json_object *(*take)(fr_replay_cursor *c, const char *kind, json_object *request,
                         const char *compare_key);
    void (*diverge)(fr_replay_cursor *c, const char *path, json_object *recorded,
                    json_object *replayed, const char *note);
    /* Resume: notes that the attempt at `c` goes live here (the first time a run does is
     * its `resumed_from`). */
    void (*going_live)(fr_replay_cursor *c);
    /* Resume: the recorded outcome of step `step` when the recording settled it (its
     * report object with attempts and effects, borrowed for the run), else NULL. */
    json_object *(*settled_step)(fr_replay *rp, const char *step);
    /* Resume: the breaker transitions the earlier executions journaled, in their order (an
     * array of {step, attempt, breaker, from, to, reason}, borrowed for the run), or NULL. */
    json_object *(*transitions)(fr_replay *rp);
} fr_replay_ops;

/* A replay as the host and the engine see it: its operations.  The implementation
 * embeds it as its first member. */
struct fr_replay {
    const fr_replay_ops *ops;
    /* 1: a resume (`fluxroute resume`): the recording is a journal's prefix.  An attempt
     * the recording has not finished goes live after its recorded effects, an attempt it
     * does not have runs live, and steps it settled are not run again
     * (fr__replay_settled_step). */
    int resume;
};

/* The recorded effects of one attempt, and how far the replay has consumed them.  Set by
 * fr__replay_attempt_begin; the members are the implementation's.  Held by value (in the
 * step's execution state), so an attempt costs no allocation. */
struct fr_replay_cursor {
    fr_replay *rp;
    const char *step; /* step id */
    int attempt;      /* 1-based, per agent */
    const char *agent;
    size_t attempt_index; /* index in the step's attempts[] */
    json_object *effects; /* borrowed; NULL when the recording has no such attempt */
    size_t pos;
    size_t n_recorded; /* effects in `effects` */
    /* Resume only: 1 when the attempt goes live once its recorded effects are served (the
     * recording stops inside it, or before it); went_live once it has. */
    int live_after;
    int went_live;
};

/* The cancellation context to fire on the first divergence (set when the run starts,
 * NULL when it ends). */
static inline void fr__replay_set_cancel(fr_replay *rp, struct fr_cancel *cancel)
{
    rp->ops->set_cancel(rp, cancel);
}

/* Before attempt `attempt` (1-based, per agent) of agent `agent` (borrowed for the
 * attempt), the step's `index`-th (0-based): positions `c` on the recorded attempt and
 * returns 0, or returns 1 when the recording stops the step there.  Either the recorded
 * run stopped it (deadline, cancellation, lost lease: *stop and *message, malloc'd or
 * NULL, say how), or the replay diverges (recorded; *stop is FR_E_CANCELLED). */
static inline int fr__replay_attempt_begin(fr_replay *rp, fr_replay_cursor *c, const char *step,
                                           size_t index, int attempt, const char *agent,
                                           fr_status *stop, char **message)
{
    return rp->ops->attempt_begin(rp, c, step, index, attempt, agent, stop, message);
}

/* Whether the recorded attempt ended without the plugin returning ("hung"/"killed"): then
 * returns 1 with its recorded *status and *message (malloc'd or NULL), which the replay
 * takes rather than waiting for the plugin again. */
static inline int fr__replay_attempt_abandoned(fr_replay_cursor *c, fr_status *status,
                                               char **message)
{
    return c->rp->ops->attempt_abandoned(c, status, message);
}

/* After the plugin returned `rc`: the status of a recorded "late" effect (the plugin
 * returned past its deadline), else FR_OK; a divergence is recorded when effects of the
 * attempt were left unconsumed. */
static inline fr_status fr__replay_attempt_end(fr_replay_cursor *c, fr_status rc)
{
    return c->rp->ops->attempt_end(c, rc);
}

/* The next recorded effect when it is of `kind` (borrowed, valid for the run); else
 * records a divergence (describing `request`, borrowed, when given) and returns NULL.
 * When `request` is given it must equal the recorded effect's "request" member (or
 * `compare_key`'s, when not NULL). */
static inline json_object *fr__replay_take(fr_replay_cursor *c, const char *kind,
                                           json_object *request, const char *compare_key)
{
    return c->rp->ops->take(c, kind, request, compare_key);
}

/* The admission of a breaker as recorded (the next effect, of kind "breaker"): 0 allow,
 * 1 probe, 2 reject, 3 unavailable, the order of fr_admission (host/breaker.h); for
 * unavailable, the recorded `error` goes into why.  A missing or unknown admission is a
 * reject (and a divergence, recorded by take). */
static inline int fr__replay_admission(fr_replay_cursor *c, char *why, size_t why_size)
{
    static const char *const names[] = {"allow", "probe", "reject", "unavailable"};
    json_object *e = fr__replay_take(c, "breaker", NULL, NULL), *v;
    const char *name =
        e && json_object_object_get_ex(e, "admission", &v) ? json_object_get_string(v) : "";
    if (strcmp(name, names[3]) == 0) {
        const char *msg =
            json_object_object_get_ex(e, "error", &v) ? json_object_get_string(v) : NULL;
        snprintf(why, why_size, "%s", msg ? msg : "breaker state unreachable (as recorded)");
        return 3;
    }
    for (int i = 0; i < 2; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return 2;
}

/* Whether the next effect of the attempt at `c` (NULL: a live run) is served from the
 * recording (1) or made live (0).  A replay serves them all; a resume serves an attempt's
 * recorded effects and then goes live when the recording stops inside the attempt or
 * before it. */
static inline int fr__replay_serving(fr_replay_cursor *c)
{
    if (!c)
        return 0;
    if (!c->live_after || c->pos < c->n_recorded)
        return 1;
    if (!c->went_live) {
        c->went_live = 1;
        c->rp->ops->going_live(c);
    }
    return 0;
}

/* Whether the attempt at `c` is replayed through and through (a replay, or an attempt a
 * resume's recording finished): then it runs on recorded time (no deadline, no backoff
 * sleep) and updates no live breaker. */
static inline int fr__replay_whole_attempt(const fr_replay_cursor *c)
{
    return c && !c->live_after;
}

/* Resume: the recorded outcome of a step the recording settled, or NULL (see the op). */
static inline json_object *fr__replay_settled_step(fr_replay *rp, const char *step)
{
    return rp && rp->resume ? rp->ops->settled_step(rp, step) : NULL;
}

/* Resume: the journaled breaker transitions (see the op), or NULL. */
static inline json_object *fr__replay_transitions(fr_replay *rp)
{
    return rp && rp->resume && rp->ops->transitions ? rp->ops->transitions(rp) : NULL;
}

/* Records a divergence at the cursor (`path` relative to the attempt), unless one is
 * already recorded.  `recorded`/`replayed` are borrowed. */
static inline void fr__replay_diverge(fr_replay_cursor *c, const char *path, json_object *recorded,
                                      json_object *replayed, const char *note)
{
    c->rp->ops->diverge(c, path, recorded, replayed, note);
}

#endif
