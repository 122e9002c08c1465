/* Replay: re-executing a pipeline with every effect served from a recorded trace, and
 * finding where behaviour diverges.
 *
 * During a replayed attempt the host answers each plugin request (clock, sleep, random,
 * HTTP, provider call, cancellation check) with the next recorded effect of that
 * attempt.  A request of another kind, with another payload, or beyond the recording
 * is a divergence: the first one is kept (with the request the plugin tried to make)
 * and the run is cancelled.  After the run, the replayed trace is compared with the
 * recorded one, timing fields aside.
 *
 * Thread-safety: attempts of different steps replay concurrently; each cursor is used
 * by one thread; the divergence record is locked. */
#ifndef FR_CORE_REPLAY_H
#define FR_CORE_REPLAY_H

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

/* ---- comparing traces ----------------------------------------------------------------- */

/* Compares two trace documents field by field, ignoring timing fields (run_id,
 * started_at, finished_at, every *_us except backoff_us) and any top-level key listed
 * in `skip` (NULL-terminated; may be NULL).  Appends each divergence as
 * {path, step, attempt, expected, actual} to `out` (a JSON array), stopping after the
 * first unless `all`.  Returns the number found. */
size_t fr__trace_diff(json_object *expected, json_object *actual, const char *const *skip,
                      int ignore_effects, int all, json_object *out);

/* Prints one divergence in the CLI's format, with values truncated sensibly.
 * `a_name`/`b_name` label the two sides ("recorded"/"replayed", "expected"/"actual"). */
void fr__divergence_print(FILE *out, json_object *div, const char *a_name, const char *b_name);

/* ---- replaying a whole run ------------------------------------------------------------- */

struct fr_pipeline;

/* Notes on what changed since the recording (manifest text, plugin builds), appended to
 * `notes` as strings. */
void fr__replay_notes(json_object *trace, const char *manifest_text, const struct fr_pipeline *p,
                      json_object *notes);

/* Replays `trace` (checked by fr__trace_parse) on `p`, a pipeline built from its
 * manifest with fr__host_set_replay_mode(1) on the building thread.  Returns FR_OK and
 * sets *divergence (NULL when identical; caller releases) and *n_steps; FR_E_INVALID
 * when the recorded input is not JSON. */
fr_status fr__replay_execute(struct fr_pipeline *p, json_object *trace, json_object **divergence,
                             size_t *n_steps);
/* The same, stopped at `stop_at_mono` (monotonic us, 0: never; see fr_run_options) with
 * the reason `stop_why` (borrowed): steps still running are cancelled with class
 * deadline_exceeded, and the replay diverges from there.  `max_output_bytes` bounds the
 * replayed steps' outputs together (0: no bound; fr_run_options.max_output_bytes). */
fr_status fr__replay_execute_until(struct fr_pipeline *p, json_object *trace, int64_t stop_at_mono,
                                   const char *stop_why, size_t max_output_bytes,
                                   json_object **divergence, size_t *n_steps);

#endif
