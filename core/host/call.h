/* The call context every plugin callback receives (fr_call): the step, attempt, deadlines,
 * cancellation, random stream, arena and error message of one invocation.  The engine
 * creates it on the worker's stack; it is used only by the thread running the callback.
 * The host API (core/host/host.h) and the HTTP client work on it. */
#ifndef FR_CORE_CALL_H
#define FR_CORE_CALL_H

#include <stddef.h>
#include <stdint.h>

#include <fluxroute/plugin.h>

#include "base/cancel.h"
#include "base/clock.h"
#include "host/instance.h"

struct fr_breaker_transition;

/* Per-invocation arena: plugin outputs and host answers live here until the call ends. */
typedef struct fr_arena_block fr_arena_block;
typedef struct fr_arena {
    fr_arena_block *head;
} fr_arena;
void *fr__arena_alloc(fr_arena *a, size_t size);
void fr__arena_free(fr_arena *a);

/* The provider calls of one attempt, filled by host->provider_call (see
 * fr_provider_use).  Lives on the stack of the thread running the attempt; nested calls
 * (a provider's own fr_call) point to the same one. */
typedef struct fr_call_usage {
    fr_provider_use *calls; /* malloc'd; handed to the attempt result; never in replays */
    size_t n, cap;
    int ordinal; /* provider calls made so far, failed ones included */
    /* malloc'd; handed to the attempt result: what the report notes of the calls (a
     * provider that reported no token usage), or NULL.  Also in replays. */
    char *note;
} fr_call_usage;

struct fr_call {
    fr_cancel *cancel;
    const fr_instance *inst;  /* the plugin instance being called */
    const fr_instance *agent; /* the agent on whose behalf (== inst for agents) */
    const char *step_id;
    int attempt;
    int64_t attempt_deadline_mono; /* 0 = none */
    uint64_t rng;                  /* splitmix64 state */
    fr_arena *arena;
    char *error; /* malloc'd message from set_error */
    int64_t retry_after_us;
    struct fr_call *parent;                                   /* agent call, for provider calls */
    void (*on_chunk)(void *ud, const char *text, size_t len); /* stream sink or NULL */
    void *chunk_ud;
    struct fr_run *run; /* the engine's run (opaque here); NULL outside runs */
    /* Where the run keeps its observability state (core/observe/obs_impl.h), read through
     * (the run sets it and clears it when it ends); NULL outside runs. */
    struct fr_obs_run *const *obs;
    /* Breaker transitions of provider calls are reported here with `run` (set by the
     * engine with run; NULL: not reported). */
    void (*note_transition)(struct fr_run *run, const char *step, int attempt, const char *breaker,
                            const struct fr_breaker_transition *tr);
    struct json_object *effects;     /* recording: the attempt's effects (array), else NULL */
    struct fr_replay_cursor *replay; /* replaying: where the recorded effects are served from */
    int chunks;                      /* streamed chunks passed on to the run's token sink */
    fr_call_usage *usage;            /* the attempt's provider calls, or NULL: not recorded */
    /* What provider calls are charged against (core/host/call_quota.h; the run's, set by
     * the engine), or NULL: no limits. */
    const struct fr_call_quota *quota;
    /* Durable runs: the run's journal (host/journal_sink.h), or NULL; the attempt's index
     * in its step's attempts (what journal entries name); the run id (borrowed), which
     * host->idempotency_key derives keys from; and the keys handed out so far in the
     * attempt (shared by its nested provider calls through `parent`). */
    struct fr_journal *journal;
    size_t attempt_index;
    const char *run_id;
    int idempotency_keys;
};

/* How long after its deadline a call that has not returned is declared hung: an in-process
 * attempt is then abandoned (core/engine/sched.c), a helper process killed
 * (core/plugin/isolate.c). */
#define FR_HANG_GRACE_US 100000

/* Initialises a call.  `seed` is the run seed; the random stream is derived from it, the
 * step id and the attempt. */
void fr__call_init(fr_call *c, fr_cancel *cancel, const fr_instance *inst, const char *step_id,
                   int attempt, int64_t attempt_deadline_mono, uint64_t seed, fr_arena *arena);
/* Frees the call's error message (not the arena). */
void fr__call_done(fr_call *c);

/* Microseconds left before the call's deadline (INT64_MAX when none), for the host's own
 * use: unlike host->deadline_us this is not an effect and is not recorded. */
int64_t fr__call_remaining_us(fr_call *c);

/* The status a call must stop with now (cancel, attempt timeout, run deadline), or FR_OK. */
fr_status fr__call_check(fr_call *c);

/* The earlier of the attempt and run deadlines (monotonic us, 0: none), and in *why which
 * status passing it means. */
static inline int64_t fr__call_deadline(const fr_call *c, fr_status *why)
{
    int64_t att = c->attempt_deadline_mono, run = c->cancel->run_deadline_mono;
    if (run && (!att || run <= att)) {
        *why = FR_E_DEADLINE_EXCEEDED;
        return run;
    }
    *why = FR_E_TIMEOUT;
    return att;
}

/* Sets the call's error message (printf-style), replacing an earlier one: what
 * host->set_error does.  With call == NULL (a plugin's init()) the message is kept for
 * fr__host_take_init_error on this thread. */
void fr__call_set_error(fr_call *call, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The message a plugin gave with set_error(NULL, ...) during init() on this thread, or
 * NULL.  Caller frees. */
char *fr__host_take_init_error(void);

#endif
