/* The memory lease backend: one table for the whole process, so every run of a `serve`
 * or `bench` process (and every plugin) excludes the others.  Entries are never removed:
 * a key's fencing counter must keep growing for the process's whole life. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "lease/lease.h"

typedef struct mem_entry {
    struct mem_entry *next;
    char *key;
    uint64_t counter;                 /* last token handed out for the key */
    char holder[FR_LEASE_HOLDER_MAX]; /* "" when free */
    uint64_t token;
    int64_t expires_mono;
} mem_entry;

static pthread_mutex_t mem_mu = PTHREAD_MUTEX_INITIALIZER;
static mem_entry *mem_table;

/* Finds (or with `create`, adds) the key's entry.  Called with mem_mu held. */
static mem_entry *mem_find(const char *key, int create)
{
    for (mem_entry *e = mem_table; e; e = e->next)
        if (!strcmp(e->key, key))
            return e;
    if (!create)
        return NULL;
    mem_entry *e = calloc(1, sizeof *e);
    if (!e || !(e->key = strdup(key))) {
        free(e);
        return NULL;
    }
    e->next = mem_table;
    mem_table = e;
    return e;
}

/* Describes the current holder into *held; 1 when the entry is held and not expired. */
static int mem_held(const mem_entry *e, int64_t now, fr_lease_info *held)
{
    memset(held, 0, sizeof *held);
    if (!e || !e->holder[0] || e->expires_mono <= now)
        return 0;
    memcpy(held->holder, e->holder, sizeof held->holder);
    held->token = e->token;
    held->expires_in_us = e->expires_mono - now;
    return 1;
}

static int mem_is_holder(const mem_entry *e, int64_t now, const char *holder, uint64_t token)
{
    return e && e->holder[0] && e->expires_mono > now && e->token == token &&
           !strcmp(e->holder, holder);
}

static fr_status mem_acquire(fr_lease_backend *b, fr_lease_conn *c, const char *key,
                             const char *holder, int64_t ttl_us, uint64_t *token,
                             fr_lease_info *held, char *err, size_t err_size)
{
    (void)b, (void)c, (void)err, (void)err_size;
    pthread_mutex_lock(&mem_mu);
    int64_t now = fr__mono_us();
    mem_entry *e = mem_find(key, 1);
    fr_status st = FR_OK;
    if (!e)
        st = FR_E_NOMEM;
    else if (mem_held(e, now, held))
        st = FR_E_UNAVAILABLE;
    else {
        snprintf(e->holder, sizeof e->holder, "%s", holder);
        e->token = *token = ++e->counter;
        e->expires_mono = now + ttl_us;
    }
    pthread_mutex_unlock(&mem_mu);
    return st;
}

/* Renew (ttl_us > 0) or release (ttl_us == 0) if (holder, token) hold the key. */
static fr_status mem_update(const char *key, const char *holder, uint64_t token, int64_t ttl_us,
                            fr_lease_info *held)
{
    pthread_mutex_lock(&mem_mu);
    int64_t now = fr__mono_us();
    mem_entry *e = mem_find(key, 0);
    fr_status st = FR_OK;
    if (!mem_is_holder(e, now, holder, token)) {
        mem_held(e, now, held);
        st = FR_E_LEASE_LOST;
    } else if (ttl_us > 0) {
        e->expires_mono = now + ttl_us;
    } else {
        e->holder[0] = '\0';
        e->expires_mono = 0;
    }
    pthread_mutex_unlock(&mem_mu);
    return st;
}

static fr_status mem_renew(fr_lease_backend *b, fr_lease_conn *c, const char *key,
                           const char *holder, uint64_t token, int64_t ttl_us, fr_lease_info *held,
                           char *err, size_t err_size)
{
    (void)b, (void)c, (void)err, (void)err_size;
    return mem_update(key, holder, token, ttl_us > 0 ? ttl_us : 1, held);
}

static fr_status mem_release(fr_lease_backend *b, fr_lease_conn *c, const char *key,
                             const char *holder, uint64_t token, fr_lease_info *held, char *err,
                             size_t err_size)
{
    (void)b, (void)c, (void)err, (void)err_size;
    return mem_update(key, holder, token, 0, held);
}

static const fr_lease_ops mem_ops = {
    .acquire = mem_acquire,
    .renew = mem_renew,
    .release = mem_release,
};

fr_status fr__lease_memory_open(fr_lease_backend *b, char *err, size_t err_size)
{
    b->ops = &mem_ops;
    b->describe = strdup("memory");
    if (!b->describe) {
        snprintf(err, err_size, "out of memory");
        return FR_E_NOMEM;
    }
    return FR_OK;
}
