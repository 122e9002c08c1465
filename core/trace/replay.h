/* Replaying a whole run: re-executing a pipeline with every effect served from a
 * recorded trace (the cursor: trace/replay_cursor.h), then comparing the replayed trace
 * with the recorded one (trace/diff.h). */
#ifndef FR_CORE_REPLAY_H
#define FR_CORE_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include <fluxroute/status.h>

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
