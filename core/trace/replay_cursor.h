/* The replay cursor: a trace's recorded effects served back to a replayed run.  It
 * implements the replay seam (core/host/replay_source.h), through which the host and the
 * engine consult it; what is declared here is for the layers above (the replay executor,
 * the CLI's plugin conformance check).
 *
 * Thread-safety: attempts of different steps replay concurrently; each cursor is used
 * by one thread; the divergence record is locked. */
#ifndef FR_CORE_REPLAY_CURSOR_H
#define FR_CORE_REPLAY_CURSOR_H

#include <stddef.h>

#include <json-c/json.h>

#include "host/host.h"
#include "host/replay_source.h"

/* A replay over a parsed trace document (borrowed; must outlive it), firing
 * `cancel_on_divergence` (may be NULL; see fr__replay_set_cancel) on the first
 * divergence.  NULL on OOM.  Freed with fr__replay_free. */
fr_replay *fr__replay_new(json_object *trace, struct fr_cancel *cancel_on_divergence);
void fr__replay_free(fr_replay *rp);

/* A resume over the trace a journal rebuilds (trace/journal.h; borrowed): settled steps
 * keep their outcome, an attempt marked "in_flight" and attempts it lacks go live after
 * their recorded effects.  Freed with fr__replay_free. */
fr_replay *fr__replay_new_resume(json_object *journal_trace);

/* Where a resume went live first, {step, attempt, effect} (borrowed), or NULL. */
json_object *fr__replay_resumed_from(fr_replay *rp);

/* Positions `c` on recorded attempt `index` of `step` (borrowed, as `agent` is), without
 * the checks of fr__replay_attempt_begin. */
void fr__replay_cursor_init(fr_replay_cursor *c, fr_replay *rp, const char *step, size_t index,
                            int attempt, const char *agent);

/* Checks that every recorded effect of the attempt was consumed (else a divergence). */
void fr__replay_attempt_done(fr_replay_cursor *c);

/* The first divergence as JSON {step, attempt, agent, path, recorded, replayed, note},
 * or NULL when none.  Borrowed. */
json_object *fr__replay_divergence(fr_replay *rp);

#endif
