/* The engine's observability hooks (core/engine/run_observe.c): one call each, at the
 * marked points of sched.c and step.c.  They translate a run into the sinks of
 * core/observe/.  Thread-safe. */
#ifndef FR_CORE_RUN_OBSERVE_H
#define FR_CORE_RUN_OBSERVE_H

struct fr_run;
struct fr_breaker_transition;

/* Start of a run (sched.c fr__pipeline_run, after run id and options are set).  Returns
 * the run's observability state (owned by the run; freed by fr__obs_run_end), or NULL
 * on OOM (every other hook accepts a run whose obs is NULL). */
struct fr_obs_run *fr__obs_run_begin(struct fr_run *run);

/* End of a run (sched.c fr__pipeline_run, once its status is known): run metric, log
 * line, run span.  Frees run->obs. */
void fr__obs_run_end(struct fr_run *run);

/* End of an attempt, once its record is complete (step.c fr__step_drive): normal
 * attempts, circuit_open rejections, attempts the watchdog declared hung, replayed
 * abandoned attempts.  `agent` is the agent's manifest index. */
void fr__obs_attempt_end(struct fr_run *run, int step, int agent);

/* End of a step (sched.c settle; pool lock held: metrics and span only). */
void fr__obs_step_end(struct fr_run *run, int step);

/* A breaker changed state (step.c fr__run_note_transition). */
void fr__obs_breaker_transition(struct fr_run *run, const char *breaker,
                                const struct fr_breaker_transition *tr);

#endif
