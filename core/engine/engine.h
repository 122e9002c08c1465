/* The engine: a pipeline built from a manifest (plugins resolved, options checked,
 * instances initialised) and runs of it on a persistent worker pool.
 *
 * Thread-safety: fr__pipeline_build and fr__pipeline_free run on one thread.  Runs of one
 * pipeline are serialised by the caller (one run at a time per pipeline: bench, CLI).
 * fr__run_cancel may be called from any thread while a run is in progress. */
#ifndef FR_CORE_ENGINE_H
#define FR_CORE_ENGINE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <fluxroute/plugin.h>

#include "base/bytebuf.h"
#include "base/diag.h"
#include "host/instance.h"
#include "plugin/loader.h"
#include "manifest/manifest.h"
#include "manifest/options.h"

typedef enum fr_step_state {
    FR_STEP_PENDING = 0,
    FR_STEP_RUNNING,
    FR_STEP_SUCCEEDED,
    FR_STEP_FAILED,
    FR_STEP_SKIPPED
} fr_step_state;

typedef struct fr_attempt_result {
    int attempt;       /* 1-based */
    const char *agent; /* borrowed from the manifest */
    fr_status status;
    char *message;      /* owned, NULL on success */
    int64_t backoff_us; /* waited before this attempt */
    int64_t started_us; /* when it started, from the run's start (after its backoff) */
    int64_t duration_us;
    struct json_object *effects; /* recorded effects (owned), NULL unless recording */
    int streamed;                /* chunks of streamed text it passed on before ending */
    int64_t retry_after_us;      /* the wait its failure asked for (a vendor's Retry-After) */
    /* Completed provider calls, in call order (owned; NULL when none).  Empty in replays
     * (they reach no vendor) and for an attempt the watchdog abandoned. */
    fr_provider_use *provider_calls;
    size_t n_provider_calls;
    /* What the host noticed of the attempt's provider calls, for the report's `notes`
     * (a provider that reported no token usage); owned, NULL when none. */
    char *note;
} fr_attempt_result;

typedef struct fr_step_result {
    fr_step_state state;
    const char *answered_by; /* agent id that produced the output */
    char *output;            /* JSON text, owned; NULL unless succeeded */
    size_t output_len;
    fr_status status; /* FR_OK or the failure */
    char *message;    /* owned failure/skip reason */
    int64_t started_us, duration_us;
    int from_journal;            /* resumed run: the outcome came from the journal, not run again */
    fr_attempt_result *attempts; /* owned */
    size_t n_attempts, cap_attempts;
} fr_step_result;

typedef enum fr_run_status {
    FR_RUN_SUCCEEDED = 0,
    FR_RUN_FAILED = 1,
    FR_RUN_CANCELLED = 2
} fr_run_status;

typedef struct fr_pipeline fr_pipeline;
typedef struct fr_run fr_run;

/* Progress events for live displays (called from worker threads, serialised). */
typedef void (*fr_progress_fn)(void *ud, const fr_pipeline *p, int step, const fr_step_result *r);

typedef struct fr_run_options {
    const char *input_json; /* NULL: the manifest's input */
    uint64_t seed;
    int has_seed;            /* 0: a random seed is drawn */
    fr_progress_fn progress; /* optional */
    void *progress_ud;
    const char *lease_key; /* recorded in the report when set */
    uint64_t fencing_token;
    int record;         /* 1: keep every attempt's effects (for a trace) */
    const char *run_id; /* use this run id (a UUID) instead of drawing one */
    /* Streamed text from providers (llm `stream: true`), as it arrives; called from the
     * worker running `step`. */
    void (*on_token)(void *ud, const char *step, const char *text, size_t len);
    void *token_ud;
    struct fr_replay *replay; /* replaying a trace: effects come from it */
    const char *traceparent;  /* W3C traceparent of the caller (serve), or NULL: the
                               * run's spans join that trace (TRACE_ENABLED) */
    /* Which thread runs the run's steps (FR_RUN_ON_*, below). */
    int run_inline;
    /* FR_RUN_ON_DRIVER only: when > 0, the caller waits at most this long.  A run still
     * going by then is left to the driver: on_detach(detach_ud) is called on the caller's
     * thread (before anything can complete), fr__pipeline_run returns FR_OK at once, and
     * on_done(detach_ud, status) is called later, from another thread, when the run is
     * complete.  These options and `out` must then stay valid until on_done.  A caller
     * within 20 us of its time leaves rather than sleep for the rest (a sleep that short
     * costs more than it can save); before that, a caller of runs that have been short
     * yields its CPU for up to 50 us, which may let the driver complete the run. */
    int64_t detach_after_us;
    /* The caller's own deadline (monotonic us, 0: none), e.g. serve's bound on a replay,
     * which keeps no deadlines of its own: a run still going then is cancelled with
     * FR_E_DEADLINE_EXCEEDED and `stop_why` (borrowed), and a call that ignores the
     * cancellation is abandoned FR_HANG_GRACE_US later. */
    int64_t stop_at_mono;
    const char *stop_why;
    /* When > 0: what the run's step outputs may hold together, in bytes (serve's
     * --max-run-bytes).  A step input is the run input and its dependencies' outputs, so
     * this also bounds every input.  An attempt whose output would pass it fails with
     * FR_E_BAD_REQUEST (not retried) naming the bound. */
    size_t max_output_bytes;
    /* When > 0 and recording: the effects the run may record, all attempts together
     * (serve: FR_SERVE_MAX_RUN_EFFECTS).  Past it the run is cancelled with
     * FR_E_BAD_REQUEST naming the bound (a record with effects missing could not be
     * replayed). */
    size_t max_effects;
    void (*on_detach)(void *ud);
    void (*on_done)(void *ud, int status);
    void *detach_ud;
    /* How many times this run has been started, this execution included (the report's
     * `executions`); 0 is taken as 1.  A durable queue that executes a run again after
     * its consumer died passes its delivery count. */
    unsigned executions;
    /* What the run's provider calls are charged against (core/host/call_quota.h: serve's
     * tenant and key limits), or NULL.  Borrowed until the run ends. */
    const struct fr_call_quota *quota;
    /* Durable runs: where the run appends its attempts, effects, step outcomes and breaker
     * transitions as they happen (core/host/journal_sink.h), or NULL.  Borrowed until the
     * run ends.  With a `replay` whose `resume` is set, the run continues a journaled one:
     * settled steps keep their recorded outcome, the rest runs live after its recorded
     * effects are served. */
    struct fr_journal *journal;
} fr_run_options;

/* fr_run_options.run_inline: which thread runs the steps.
 * FR_RUN_ON_WORKERS: the pool's workers; the caller waits.
 * FR_RUN_ON_CALLER: the calling thread runs ready steps itself instead of handing every
 *   one to a worker (serve's quick synchronous runs of plugins that cannot block: no
 *   thread hand-off per request).  A
 *   process-wide watchdog still abandons a hung in-process attempt and the step carries on
 *   on a worker, but the caller only returns once that plugin call returns; so a plugin
 *   that has hung once in this process never runs inline again.
 * FR_RUN_ON_DRIVER: the pipeline's driver thread runs the whole run as FR_RUN_ON_CALLER
 *   would while the caller waits.  When the watchdog abandons the driver inside a hung
 *   plugin, the caller finishes the run without it and returns (a new driver serves the
 *   next run).  For callers that must always return: `fluxroute run`, the embedding API.
 *   The driver is not bound to a CPU: the kernel places it (docs/benchmarks.md says why).
 *   While its runs are short (under 200 us on average) the caller and the driver yield
 *   briefly before sleeping, which spares most wake-ups in a loop of runs.  Measured as
 *   fast as FR_RUN_ON_CALLER on the ai_chain10 benchmark. */
enum { FR_RUN_ON_WORKERS = 0, FR_RUN_ON_CALLER = 1, FR_RUN_ON_DRIVER = 2 };

/* How many threads that called fr__pipeline_run with run_inline are held inside a plugin
 * call the watchdog abandoned (their runs have finished without them). */
size_t fr__pipeline_callers_held(void);

/* A breaker state change during a run. */
typedef struct fr_transition_record {
    int step; /* manifest index of the step it happened in */
    int attempt;
    const char *breaker;            /* "agent:x" / "provider:y"; static for the process */
    const char *from, *to, *reason; /* static strings */
    int seq;                        /* arrival order, to break ties */
    /* A transition an earlier execution journaled (resume): breaker, from, to and reason
     * point into this one allocation, owned; NULL for the run's own. */
    char *journaled;
} fr_transition_record;

typedef struct fr_run_result {
    char run_id[40];
    fr_run_status status;
    uint64_t seed;
    int64_t started_at_us, finished_at_us; /* wall clock */
    fr_step_result *steps;                 /* indexed by manifest step index */
    size_t n_steps;
    char *input_json; /* owned copy of the run input */
    char *lease_key;  /* owned copy, or NULL */
    uint64_t fencing_token;
    unsigned executions;               /* the report's `executions` (at least 1) */
    fr_transition_record *transitions; /* owned; sorted by step order, attempt, arrival */
    size_t n_transitions, cap_transitions;
    /* A resumed run (`fluxroute resume`): 1, and where it went live (owned JSON {step,
     * attempt, effect}, NULL when the journal held the whole run).  The report then has
     * `resumed_from` and each step `from_journal`. */
    int resumed;
    struct json_object *resumed_from;
} fr_run_result;

/* Options for building a pipeline. */
typedef struct fr_build_options {
    const char *const *plugin_dirs; /* --plugin-dir, in order */
    size_t n_plugin_dirs;
    int use_env_path; /* 1: honour FLUXROUTE_PLUGIN_PATH */
    /* Optional: called for each agent once its plugin is resolved and before its init(),
     * with the manifest's (mutable) agent entry.  It may raise the agent's isolation and
     * add report notes (fr__manifest_note on the pipeline's manifest); an agent it leaves with
     * `isolation: process` is initialised only in its helper processes, never in this process.
     * Returns 0, or -1 to refuse the agent (with a diagnostic it added). */
    int (*agent_policy)(void *ud, struct fr_pipeline *p, fr_agent_cfg *agent,
                        const fr_loaded_plugin *plugin, fr_diags *diags);
    void *policy_ud;
} fr_build_options;

/* Builds a pipeline: resolves every agent's and provider's plugin, checks `config:`
 * against option tables, initialises instances and starts the worker pool.  Problems
 * go to diags (located at the manifest node).  Takes ownership of `m` in all cases.
 * Returns NULL when diags->n > 0 or on OOM. */
fr_pipeline *fr__pipeline_build(fr_manifest *m, const fr_build_options *opts, fr_diags *diags);

/* Stops the workers, finalises instances, frees everything (plugins stay loaded). */
void fr__pipeline_free(fr_pipeline *p);

const fr_manifest *fr__pipeline_manifest(const fr_pipeline *p);
fr_loader *fr__pipeline_loader(fr_pipeline *p);

/* Runs the pipeline once and fills *out (free with fr__run_result_free).  Returns FR_OK
 * when the run executed (whatever its outcome: see out->status), or an error for an
 * invalid input (FR_E_INVALID: not JSON) or OOM. */
fr_status fr__pipeline_run(fr_pipeline *p, const fr_run_options *opts, fr_run_result *out);

/* Cancels the run in progress on `p`, if any (async-signal-unsafe; call from a thread). */
void fr__pipeline_cancel(fr_pipeline *p);
/* Cancels with another status, e.g. FR_E_LEASE_LOST: running and later steps fail with
 * its class and `message` (copied); the run's status is "failed". */
void fr__pipeline_cancel_with(fr_pipeline *p, fr_status reason, const char *message);

void fr__run_result_free(fr_run_result *r);
/* Sets the report's `executions` (0 is taken as 1): for a caller that learns the count
 * after the run, before building the report.  Not thread-safe for one result. */
void fr__run_result_set_executions(fr_run_result *r, unsigned executions);

/* The run report as a JSON tree (its text parsed); with_effects adds each attempt's
 * recorded effects (for traces).  Caller releases it (json_object_put); NULL on OOM. */
struct json_object *fr__report_build(const fr_pipeline *p, const fr_run_result *r,
                                     int with_effects);

/* The run report as JSON (docs/reference.md, "The run report").  Caller frees with free(). */
char *fr__report_json(const fr_pipeline *p, const fr_run_result *r, int pretty);

/* The report written as text (core/engine/report.c): its members, without the braces,
 * appended to `b` (b->oom when out of memory).  Flags: */
enum {
    FR_REPORT_EFFECTS = 1,  /* each attempt's recorded effects (traces) */
    FR_REPORT_IN_TRACE = 2, /* without run_id and seed, which a trace writes before */
    /* Every string scrubbed of secrets as fr__secret_scrub_json scrubs a tree (effects and
     * resumed_from in place); outputs are parsed to be scrubbed.  Slow: for the rare
     * document that holds a secret (core/trace/trace.c). */
    FR_REPORT_SCRUB = 4
};
void fr__report_write(fr_bytebuf *b, const fr_pipeline *p, const fr_run_result *r, int flags);

/* Appends JSON text of len bytes (an output or an input, valid JSON) as it is, or with
 * `scrub` parsed, scrubbed (fr__secret_scrub_json) and written again; text that does not
 * parse is written as null, as a tree held it. */
void fr__report_put_json_text(fr_bytebuf *b, const char *text, size_t len, int scrub);

/* How deep a report or a trace parsed back may nest: an output's own depth and the
 * report's around it. */
#define FR_REPORT_MAX_DEPTH 600

/* Parses report or trace text (or an output) of len bytes into a tree; NULL when it does
 * not parse.  Caller releases it. */
struct json_object *fr__report_parse_len(const char *text, size_t len);

const char *fr__step_state_name(fr_step_state s);
const char *fr__run_status_name(fr_run_status s);

#endif
