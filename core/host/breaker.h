/* Circuit breakers, per agent and per provider instance.
 *
 * closed --(failure_threshold consecutive counted failures)--> open
 * open --(reset_timeout elapsed; the next call is the one probe)--> half_open
 * half_open --(probe succeeds)--> closed;  --(probe fails)--> open
 * While open, and while a probe is in flight, calls are rejected (circuit_open).
 * rate_limited (429) and request timeout (408) never count toward opening.
 *
 * Breakers live in a process-wide registry keyed by namespace, kind and id, so their
 * state is shared across runs (bench, serve).  Thread-safe. */
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
    FR_ADMIT_ALLOW = 0, /* closed: go ahead */
    FR_ADMIT_PROBE,     /* the single half-open probe: go ahead with probe_timeout */
    FR_ADMIT_REJECT     /* open (or probe in flight): fail fast with circuit_open */
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

/* Decides whether a call may go ahead at monotonic time `now`.  When the decision
 * changes the state (open -> half_open), *tr is filled and 1 returned in *changed. */
fr_admission fr__breaker_admit(fr_breaker *b, int64_t now, fr_breaker_transition *tr, int *changed);

/* Records the outcome of an admitted call.  Returns 1 and fills *tr when the state
 * changed. */
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

#endif
