/* Circuit breakers, per agent and per provider instance.
 *
 * closed --(failure_threshold consecutive counted failures)--> open
 * open --(reset_timeout elapsed; the next call is the one probe)--> half_open
 * half_open --(probe succeeds)--> closed;  --(probe fails)--> open
 * While open, and while a probe is in flight, calls are rejected (circuit_open).
 * rate_limited (429) and request timeout (408) never count toward opening.
 *
 * Breakers live in a process-wide registry keyed by namespace, kind and id, so their
 * state is shared across runs (bench, serve).  Thread-safe.
 *
 * Where the state lives is a breaker store (fr_breaker_store below): by default this
 * process (the code in breaker.c); `serve --state redis://` and `fluxroute worker` install
 * the shared store of core/state/breaker_redis.c at start, so that replicas share each
 * breaker (one opened anywhere is open everywhere within 100 ms, one probe cluster-wide).
 * A store that cannot be reached answers FR_ADMIT_UNAVAILABLE: the call fails with class
 * state_unavailable and is not counted.  A replay never reaches the store: it takes the
 * recorded admissions (host/replay_source.h, fr__replay_admission). */
#ifndef FR_CORE_BREAKER_H
#define FR_CORE_BREAKER_H

#include <stdint.h>

#include <fluxroute/status.h>

#include "manifest/manifest.h"

typedef enum fr_breaker_state {
    FR_BREAKER_CLOSED = 0,
    FR_BREAKER_OPEN,
    FR_BREAKER_HALF_OPEN
} fr_breaker_state;

typedef enum fr_admission {
    FR_ADMIT_ALLOW = 0,  /* closed: go ahead */
    FR_ADMIT_PROBE,      /* the single half-open probe: go ahead with probe_timeout */
    FR_ADMIT_REJECT,     /* open (or probe in flight): fail fast with circuit_open */
    FR_ADMIT_UNAVAILABLE /* the shared store is unreachable: fail with state_unavailable */
} fr_admission;

typedef struct fr_breaker fr_breaker;

/* A state change, for the run report. */
typedef struct fr_breaker_transition {
    fr_breaker_state from, to;
    const char *reason; /* static text */
} fr_breaker_transition;

/* The breaker for (namespace, kind, id), created with `cfg` on first use.  `kind` is
 * "agent" or "provider".  Returns NULL on OOM.  The breaker lives until process exit. */
fr_breaker *fr__breaker_get(const char *namespace_, const char *kind, const char *id,
                            const fr_breaker_cfg *cfg);

/* The breaker's display name ("agent:summarize"); static for its life. */
const char *fr__breaker_name(const fr_breaker *b);
const fr_breaker_cfg *fr__breaker_cfg(const fr_breaker *b);

/* The namespace the breaker belongs to; static for its life. */
const char *fr__breaker_namespace(const fr_breaker *b);

/* Decides whether a call may go ahead at monotonic time `now`.  When the decision
 * changes the state (open -> half_open), *tr is filled and 1 returned in *changed.
 * FR_ADMIT_UNAVAILABLE (a shared store only) fills `why` ("breaker state unreachable:
 * redis ..."). */
fr_admission fr__breaker_admit(fr_breaker *b, int64_t now, fr_breaker_transition *tr, int *changed,
                               char *why, size_t why_size);

/* 1 when `how` let the call go ahead (allow or probe): its outcome is then recorded. */
static inline int fr__breaker_admitted(fr_admission how)
{
    return how == FR_ADMIT_ALLOW || how == FR_ADMIT_PROBE;
}

/* Does `outcome` count toward opening a breaker?  The class table's answer, except that
 * a cancelled or out-of-time run says nothing about the service. */
int fr__breaker_counts(fr_status outcome);

/* Records the outcome of an admitted call.  Returns 1 and fills *tr when the state
 * changed.  A shared store that cannot be reached loses the outcome (0): the call's
 * result stands, and the next admission asks the store again. */
int fr__breaker_record(fr_breaker *b, fr_admission how, fr_status outcome, int64_t now,
                       fr_breaker_transition *tr);

fr_breaker_state fr__breaker_state(fr_breaker *b);
const char *fr__breaker_state_name(fr_breaker_state s);

/* The breaker settings the original's CIRCUIT_* variables give, for agents and providers
 * without `circuit_breaker:`.  Returns 1 and fills *cfg when at least one variable is
 * set explicitly (CIRCUIT_FAILURE_THRESHOLD=0 disables: returns 0); -1 with *why set
 * when a value is invalid. */
int fr__breaker_cfg_from_env(fr_breaker_cfg *cfg, const char **why);

/* Forgets every breaker (tests). */
void fr__breaker_registry_reset(void);

/* ---- breaker stores -------------------------------------------------------------------
 * A store keeps the state of the breakers made while it is installed (a breaker keeps the
 * store it was made with).  Its functions are called without any lock of breaker.c held,
 * from any thread; `data` is what attach returned for the breaker. */
typedef struct fr_breaker_store {
    const char *name; /* "redis", for messages */
    void *ud;
    /* The breaker `b` is made: its per-breaker data (NULL on OOM: the breaker then stays
     * in-process).  Called under the registry lock: no blocking I/O. */
    void *(*attach)(void *ud, fr_breaker *b);
    /* As fr__breaker_admit. */
    fr_admission (*admit)(void *ud, void *data, fr_breaker *b, int64_t now,
                          fr_breaker_transition *tr, int *changed, char *why, size_t why_size);
    /* As fr__breaker_record, for an admitted call; `counts` is fr__breaker_counts(outcome). */
    int (*record)(void *ud, void *data, fr_breaker *b, fr_admission how, fr_status outcome,
                  int counts, int64_t now, fr_breaker_transition *tr);
    /* The state as last seen (no I/O): for the metrics gauge. */
    fr_breaker_state (*state)(void *ud, void *data);
    /* Frees the per-breaker data (fr__breaker_registry_reset). */
    void (*detach)(void *ud, void *data);
} fr_breaker_store;

/* Installs `s` (borrowed until replaced; NULL: in-process) for the breakers made from now
 * on.  Install before the first pipeline is made (process start-up). */
void fr__breaker_store_install(const fr_breaker_store *s);

#endif
