/* Run-wide cancellation (core/base/cancel.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/cancel.h"

fr_cancel *fr__cancel_new(void)
{
    fr_cancel *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0) {
        free(c);
        return NULL;
    }
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&c->cv, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0 || pthread_mutex_init(&c->mu, NULL) != 0) {
        if (rc == 0)
            pthread_cond_destroy(&c->cv);
        free(c);
        return NULL;
    }
    c->refs = 1;
    return c;
}

void fr__cancel_ref(fr_cancel *c)
{
    __atomic_add_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
}

void fr__cancel_unref(fr_cancel *c)
{
    if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c->reason_message);
    free(c);
}

int fr__cancel_wait_until(fr_cancel *c, int64_t until)
{
    struct timespec ts = {.tv_sec = until / 1000000, .tv_nsec = (until % 1000000) * 1000};
    pthread_mutex_lock(&c->mu);
    while (!c->cancelled) {
        if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT)
            break;
    }
    int cancelled = c->cancelled;
    pthread_mutex_unlock(&c->mu);
    return cancelled;
}

void fr__cancel_fire(fr_cancel *c)
{
    fr__cancel_fire_with(c, FR_E_CANCELLED, NULL);
}

fr_status fr__cancel_reason(const fr_cancel *c)
{
    return c->reason ? c->reason : FR_E_CANCELLED;
}

void fr__cancel_fire_with(fr_cancel *c, fr_status reason, const char *message)
{
    pthread_mutex_lock(&c->mu);
    if (!c->cancelled) {
        c->reason = reason;
        c->reason_message = message ? strdup(message) : NULL;
    }
    c->cancelled = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}
