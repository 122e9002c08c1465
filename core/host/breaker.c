/* Circuit breakers and their process-wide registry; the in-process state, or a store's
 * (host/breaker.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/breaker.h"
#include "base/duration.h"

struct fr_breaker {
    fr_breaker *next; /* registry list */
    char *key;        /* namespace \x1f kind:id */
    const char *name; /* points into key: "kind:id" */
    char *ns;         /* the namespace */
    fr_breaker_cfg cfg;
    const fr_breaker_store *store; /* NULL: the state below */
    void *store_data;
    pthread_mutex_t mu;
    fr_breaker_state state;
    int consecutive_failures;
    int64_t opened_at;
    int probe_in_flight;
};

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static fr_breaker *registry;
static const fr_breaker_store *store; /* under registry_mu */

void fr__breaker_store_install(const fr_breaker_store *s)
{
    pthread_mutex_lock(&registry_mu);
    store = s;
    pthread_mutex_unlock(&registry_mu);
}

fr_breaker *fr__breaker_get(const char *namespace_, const char *kind, const char *id,
                            const fr_breaker_cfg *cfg)
{
    size_t len = strlen(namespace_) + strlen(kind) + strlen(id) + 3;
    char *key = malloc(len);
    if (!key)
        return NULL;
    snprintf(key, len, "%s\x1f%s:%s", namespace_, kind, id);
    pthread_mutex_lock(&registry_mu);
    fr_breaker *b = registry;
    while (b && strcmp(b->key, key) != 0)
        b = b->next;
    if (b) {
        free(key);
    } else if ((b = calloc(1, sizeof *b)) != NULL && (b->ns = strdup(namespace_)) != NULL) {
        b->key = key;
        b->name = strchr(key, '\x1f') + 1;
        b->cfg = *cfg;
        if (b->cfg.failure_threshold < 1)
            b->cfg.failure_threshold = 1;
        pthread_mutex_init(&b->mu, NULL);
        if (store && (b->store_data = store->attach(store->ud, b)) != NULL)
            b->store = store;
        b->next = registry;
        registry = b;
    } else {
        free(b);
        b = NULL;
        free(key);
    }
    pthread_mutex_unlock(&registry_mu);
    return b;
}

void fr__breaker_registry_reset(void)
{
    pthread_mutex_lock(&registry_mu);
    while (registry) {
        fr_breaker *b = registry;
        registry = b->next;
        if (b->store)
            b->store->detach(b->store->ud, b->store_data);
        pthread_mutex_destroy(&b->mu);
        free(b->ns);
        free(b->key);
        free(b);
    }
    pthread_mutex_unlock(&registry_mu);
}

const char *fr__breaker_name(const fr_breaker *b)
{
    return b->name;
}

const char *fr__breaker_namespace(const fr_breaker *b)
{
    return b->ns;
}

const fr_breaker_cfg *fr__breaker_cfg(const fr_breaker *b)
{
    return &b->cfg;
}

const char *fr__breaker_state_name(fr_breaker_state s)
{
    switch (s) {
    case FR_BREAKER_OPEN: return "open";
    case FR_BREAKER_HALF_OPEN: return "half_open";
    case FR_BREAKER_CLOSED: break;
    }
    return "closed";
}

fr_breaker_state fr__breaker_state(fr_breaker *b)
{
    if (b->store)
        return b->store->state(b->store->ud, b->store_data);
    pthread_mutex_lock(&b->mu);
    fr_breaker_state s = b->state;
    pthread_mutex_unlock(&b->mu);
    return s;
}

static void set_state(fr_breaker *b, fr_breaker_state to, const char *reason,
                      fr_breaker_transition *tr)
{
    if (tr) {
        tr->from = b->state;
        tr->to = to;
        tr->reason = reason;
    }
    b->state = to;
}

fr_admission fr__breaker_admit(fr_breaker *b, int64_t now, fr_breaker_transition *tr, int *changed,
                               char *why, size_t why_size)
{
    *changed = 0;
    if (b->store)
        return b->store->admit(b->store->ud, b->store_data, b, now, tr, changed, why, why_size);
    pthread_mutex_lock(&b->mu);
    fr_admission a = FR_ADMIT_ALLOW;
    if (b->state == FR_BREAKER_OPEN) {
        if (now - b->opened_at >= b->cfg.reset_timeout_us) {
            set_state(b, FR_BREAKER_HALF_OPEN, "reset_timeout elapsed; admitting one probe", tr);
            *changed = 1;
            b->probe_in_flight = 1;
            a = FR_ADMIT_PROBE;
        } else {
            a = FR_ADMIT_REJECT;
        }
    } else if (b->state == FR_BREAKER_HALF_OPEN) {
        if (b->probe_in_flight) {
            a = FR_ADMIT_REJECT;
        } else {
            b->probe_in_flight = 1;
            a = FR_ADMIT_PROBE;
        }
    }
    pthread_mutex_unlock(&b->mu);
    return a;
}

int fr__breaker_counts(fr_status outcome)
{
    return outcome != FR_OK && fr_status_counts_for_breaker(outcome) && outcome != FR_E_CANCELLED &&
           outcome != FR_E_DEADLINE_EXCEEDED;
}

int fr__breaker_record(fr_breaker *b, fr_admission how, fr_status outcome, int64_t now,
                       fr_breaker_transition *tr)
{
    if (!fr__breaker_admitted(how))
        return 0;
    int counts = fr__breaker_counts(outcome);
    if (b->store)
        return b->store->record(b->store->ud, b->store_data, b, how, outcome, counts, now, tr);
    int changed = 0;
    pthread_mutex_lock(&b->mu);
    if (how == FR_ADMIT_PROBE) {
        b->probe_in_flight = 0;
        if (outcome == FR_OK) {
            b->consecutive_failures = 0;
            set_state(b, FR_BREAKER_CLOSED, "probe succeeded", tr);
            changed = 1;
        } else if (counts) {
            b->opened_at = now;
            set_state(b, FR_BREAKER_OPEN, "probe failed", tr);
            changed = 1;
        }
        /* A probe that failed without counting (429, 408, cancel) leaves the breaker
         * half-open: the next call probes again. */
    } else if (b->state == FR_BREAKER_CLOSED) {
        if (outcome == FR_OK) {
            b->consecutive_failures = 0;
        } else if (counts && ++b->consecutive_failures >= b->cfg.failure_threshold) {
            b->opened_at = now;
            set_state(b, FR_BREAKER_OPEN, "failure_threshold consecutive failures", tr);
            changed = 1;
        }
    }
    pthread_mutex_unlock(&b->mu);
    return changed;
}

/* Reads a positive duration from the environment; 0 when unset. */
static int env_duration(const char *name, int64_t *out, const char **why)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return 0;
    if (fr__duration_parse(v, out, why) != 0 || *out <= 0) {
        if (!*why || *out <= 0)
            *why = "must be a positive duration";
        return -1;
    }
    return 1;
}

int fr__breaker_cfg_from_env(fr_breaker_cfg *cfg, const char **why)
{
    *why = NULL;
    const char *t = getenv("CIRCUIT_FAILURE_THRESHOLD");
    fr_breaker_cfg c = {.enabled = 1,
                        .failure_threshold = 5,
                        .reset_timeout_us = 60LL * 1000000,
                        .probe_timeout_us = 5LL * 1000000};
    int any = 0;
    if (t && *t) {
        char *end;
        long v = strtol(t, &end, 10);
        if (*end || v < 0) {
            *why = "CIRCUIT_FAILURE_THRESHOLD must be an integer >= 0";
            return -1;
        }
        if (v == 0)
            return 0;
        c.failure_threshold = (int)v;
        any = 1;
    }
    int r = env_duration("CIRCUIT_RESET_TIMEOUT", &c.reset_timeout_us, why);
    if (r < 0) {
        *why = "CIRCUIT_RESET_TIMEOUT must be a positive duration";
        return -1;
    }
    any |= r;
    r = env_duration("CIRCUIT_PROBE_TIMEOUT", &c.probe_timeout_us, why);
    if (r < 0) {
        *why = "CIRCUIT_PROBE_TIMEOUT must be a positive duration";
        return -1;
    }
    any |= r;
    if (any)
        *cfg = c;
    return any;
}
