/* Run-wide cancellation: a flag plus a condition variable that sleeping plugins wait on,
 * so cancel and deadlines wake them at once.  Reference-counted: the run holds one
 * reference, and so does each call that may outlive it (an abandoned hung call, a lease).
 * Thread-safe. */
#ifndef FR_CORE_CANCEL_H
#define FR_CORE_CANCEL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <fluxroute/status.h>

typedef struct fr_cancel {
    pthread_mutex_t mu;
    pthread_cond_t cv;         /* CLOCK_MONOTONIC */
    int cancelled;             /* set by fr__cancel_fire */
    fr_status reason;          /* FR_E_CANCELLED, or e.g. FR_E_LEASE_LOST */
    char *reason_message;      /* why, for the report (owned) */
    int64_t run_deadline_mono; /* 0 = none */
    int refs;                  /* the run, plus each abandoned (hung) call */
    size_t max_effects;        /* recording: effects the run may record (0 = no bound) */
    _Atomic size_t n_effects;  /* recorded so far, by all of the run's calls */
} fr_cancel;
/* Creates a cancellation context with one reference.  NULL on failure. */
fr_cancel *fr__cancel_new(void);
void fr__cancel_ref(fr_cancel *c);
void fr__cancel_unref(fr_cancel *c);
void fr__cancel_fire(fr_cancel *c);
/* Cancels with another status (its class is reported) and a message (copied). */
void fr__cancel_fire_with(fr_cancel *c, fr_status reason, const char *message);
/* The status a cancelled context stops calls with. */
fr_status fr__cancel_reason(const fr_cancel *c);
/* Waits on the context until `until` (monotonic us) or cancellation.  Returns 1 when
 * cancelled. */
int fr__cancel_wait_until(fr_cancel *c, int64_t until);

#endif
