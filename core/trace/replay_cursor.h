/* The replay cursor: what a replayed run consults instead of the outside world.
 *
 * During a replayed attempt the host answers each plugin request (clock, sleep, random,
 * HTTP, provider call, cancellation check) with the next recorded effect of that
 * attempt.  A request of another kind, with another payload, or beyond the recording
 * is a divergence: the first one is kept (with the request the plugin tried to make)
 * and the run is cancelled.  After the run, the replayed trace is compared with the
 * recorded one, timing fields aside (trace/diff.h).
 *
 * Thread-safety: attempts of different steps replay concurrently; each cursor is used
 * by one thread; the divergence record is locked. */
#ifndef FR_CORE_REPLAY_CURSOR_H
#define FR_CORE_REPLAY_CURSOR_H

#include <stddef.h>

#include <json-c/json.h>

#include "host/host.h"

typedef struct fr_replay fr_replay;

/* The recorded effects of one attempt, and how far the replay has consumed them. */
typedef struct fr_replay_cursor {
    fr_replay *rp;
    const char *step; /* step id */
    int attempt;      /* 1-based, per agent */
    const char *agent;
    size_t attempt_index; /* index in the step's attempts[] */
    json_object *effects; /* borrowed; NULL when the recording has no such attempt */
    size_t pos;
} fr_replay_cursor;

/* A replay context over a parsed trace document (borrowed; must outlive it). */
fr_replay *fr__replay_new(json_object *trace, struct fr_cancel *cancel_on_divergence);
void fr__replay_free(fr_replay *rp);
/* The cancellation context to fire on the first divergence (set once the run starts). */
void fr__replay_set_cancel(fr_replay *rp, struct fr_cancel *cancel);

/* The recorded step object for a step id, or NULL. */
json_object *fr__replay_step(fr_replay *rp, const char *step);

/* Positions `c` on recorded attempt `index` of `step`. */
void fr__replay_cursor_init(fr_replay_cursor *c, fr_replay *rp, const char *step, size_t index,
                            int attempt, const char *agent);

/* The next recorded effect when it is of `kind`; else records a divergence (describing
 * `request`, borrowed, when given) and returns NULL.  When `request` is given it must
 * equal the recorded effect's "request" (or `compare_key` member, when not NULL). */
json_object *fr__replay_take(fr_replay_cursor *c, const char *kind, json_object *request,
                             const char *compare_key);

/* Peeks at the next effect's kind without consuming it ("" when none). */
const char *fr__replay_peek(const fr_replay_cursor *c);

/* Whether the recorded attempt ended without the plugin returning ("hung"/"killed"),
 * in which case its outcome is taken from the recording. */
int fr__replay_attempt_abandoned(const fr_replay_cursor *c);

/* Records a divergence at the cursor (path relative to the attempt), unless one is
 * already recorded.  `recorded`/`replayed` are borrowed. */
void fr__replay_diverge(fr_replay_cursor *c, const char *path, json_object *recorded,
                        json_object *replayed, const char *note);

/* Checks that every recorded effect of the attempt was consumed. */
void fr__replay_attempt_done(fr_replay_cursor *c);

/* The first divergence as JSON {step, attempt, agent, path, recorded, replayed, note},
 * or NULL when none.  Borrowed. */
json_object *fr__replay_divergence(fr_replay *rp);

#endif
