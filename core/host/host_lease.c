/* Plugins' leases (fr_host_api.lease_acquire / lease_release): leases of the
 * COORDINATION_* backend tied to a call (core/host/host_lease.h). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/call.h"
#include "host/host_lease.h"
#include "lease/lease.h"

/* ---- plugins' leases -------------------------------------------------------------------- */

/* The backend plugins use: opened from the environment on first use, kept for the
 * process's life (so fencing tokens of the memory backend keep growing). */
static pthread_mutex_t host_mu = PTHREAD_MUTEX_INITIALIZER;
static fr_lease_backend *host_backend;
static fr_lease_config host_cfg;

typedef struct host_lease {
    struct host_lease *next;
    fr_call *call;
    char *key; /* as the plugin named it */
    fr_lease *lease;
    fr_cancel *cancel; /* referenced while the lease lives */
} host_lease;
static host_lease *host_leases;

static void host_lease_lost(void *ud, const fr_lease *l, const char *message)
{
    (void)l;
    host_lease *h = ud;
    fr__cancel_fire_with(h->cancel, FR_E_LEASE_LOST, message);
}

static fr_status host_stop(void *ud)
{
    return fr__call_check(ud);
}

/* Opens the process-wide backend if needed.  Called with host_mu held. */
static fr_status host_backend_get(char *err, size_t size)
{
    if (host_backend)
        return FR_OK;
    fr_status st = fr__lease_config_from_env(&host_cfg, err, size);
    if (st == FR_OK && !host_cfg.enabled) {
        snprintf(err, size, "coordination is disabled (set COORDINATION_ENABLED=1 to use leases)");
        st = FR_E_CONFIG;
    }
    if (st == FR_OK)
        st = fr__lease_backend_open(&host_cfg, &host_backend, err, size);
    if (st != FR_OK)
        fr__lease_config_free(&host_cfg);
    return st;
}

fr_status fr__host_lease_acquire(fr_call *call, const char *key, int64_t ttl_us, int64_t wait_us,
                                 uint64_t *fencing_token)
{
    if (!call || !key || !*key || ttl_us < 0 || wait_us < 0 || !fencing_token) {
        if (call)
            fr__call_set_error(call, "lease_acquire: needs a call, a non-empty key, ttl_us >= 0, "
                                     "wait_us >= 0 and a fencing_token pointer");
        return FR_E_INVALID;
    }
    char err[512];
    pthread_mutex_lock(&host_mu);
    fr_status st = host_backend_get(err, sizeof err);
    int dup = 0;
    for (host_lease *h = host_leases; h && !dup; h = h->next)
        dup = h->call == call && !strcmp(h->key, key);
    fr_lease_backend *b = host_backend;
    int64_t ttl = ttl_us ? ttl_us : host_cfg.ttl_us;
    pthread_mutex_unlock(&host_mu);
    if (st != FR_OK) {
        fr__call_set_error(call, "lease %s: %s", key, err);
        return st;
    }
    if (dup) {
        fr__call_set_error(call, "lease %s: already held by this call", key);
        return FR_E_INVALID;
    }
    /* Never wait past the call's own deadline. */
    int64_t left = fr__call_remaining_us(call); /* the host's own read: not an effect */
    if (left != INT64_MAX && wait_us > left)
        wait_us = left > 0 ? left : 0;

    host_lease *h = calloc(1, sizeof *h);
    char full[1024];
    snprintf(full, sizeof full, "plugin:%s", key);
    if (!h || !(h->key = strdup(key))) {
        free(h);
        return FR_E_NOMEM;
    }
    h->call = call;
    h->cancel = call->cancel;
    fr_lease_acquire_opts o = {.ttl_us = ttl,
                               .wait_us = wait_us,
                               .on_lost = host_lease_lost,
                               .on_lost_ud = h,
                               .should_stop = host_stop,
                               .stop_ud = call};
    if (h->cancel)
        fr__cancel_ref(h->cancel);
    st = fr__lease_acquire(b, full, &o, &h->lease, err, sizeof err);
    if (st != FR_OK) {
        if (h->cancel)
            fr__cancel_unref(h->cancel);
        free(h->key);
        free(h);
        fr__call_set_error(call, "%s", err);
        return st;
    }
    *fencing_token = fr__lease_token(h->lease);
    pthread_mutex_lock(&host_mu);
    h->next = host_leases;
    host_leases = h;
    pthread_mutex_unlock(&host_mu);
    return FR_OK;
}

/* Unlinks the first lease of `call` (with `key`, or any when key is NULL). */
static host_lease *host_take(fr_call *call, const char *key)
{
    pthread_mutex_lock(&host_mu);
    host_lease **pp = &host_leases, *h = NULL;
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->call == call && (!key || !strcmp((*pp)->key, key))) {
            h = *pp;
            *pp = h->next;
            break;
        }
    pthread_mutex_unlock(&host_mu);
    return h;
}

static fr_status host_drop(host_lease *h, char *err, size_t size)
{
    fr_status st = fr__lease_release(h->lease, err, size);
    if (h->cancel)
        fr__cancel_unref(h->cancel);
    free(h->key);
    free(h);
    return st;
}

fr_status fr__host_lease_release(fr_call *call, const char *key)
{
    if (!call || !key)
        return FR_E_INVALID;
    host_lease *h = host_take(call, key);
    if (!h) {
        fr__call_set_error(call, "lease %s: not held by this call", key);
        return FR_E_NOT_FOUND;
    }
    char err[512];
    fr_status st = host_drop(h, err, sizeof err);
    if (st != FR_OK)
        fr__call_set_error(call, "%s", err);
    return st;
}

void fr__host_leases_end_call(fr_call *call)
{
    host_lease *h;
    while ((h = host_take(call, NULL)))
        host_drop(h, NULL, 0);
}
