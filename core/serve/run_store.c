/* serve's run store (see run_store.h): a hash table of runs by id over two lists, the
 * running runs and the finished ones in finishing order (the oldest finished run is always
 * at the tail), and a hash table of tenants, each with its own finishing-order list, its
 * runs in flight and the bytes its finished runs hold. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/run_store.h"

typedef struct run_list {
    fr_run_entry *head, *tail; /* newest at the head */
    size_t n;
} run_list;

/* A tenant with runs in flight or in the store (records of others are freed). */
struct fr_run_tenant {
    char name[72];
    size_t running;             /* admitted and not yet left */
    size_t entries;             /* its entries in the store, running or finished */
    run_list finished;          /* linked through tprev/tnext */
    size_t bytes;               /* what its finished runs hold */
    fr_run_tenant *hash_next;   /* same bucket */
    fr_run_tenant *prev, *next; /* in the store's list of tenants */
};

#define TENANT_BUCKETS 256

struct fr_run_store {
    fr_run_entry **buckets;
    size_t mask;
    run_list running, finished;
    fr_run_limits lim;
    size_t in_flight;
    size_t bytes; /* what all finished runs hold */
    uint64_t seq; /* entries added so far */
    fr_run_tenant *tenant_buckets[TENANT_BUCKETS];
    fr_run_tenant *tenants; /* every tenant record */
};

static size_t hash_str(const char *id)
{
    /* FNV-1a: run ids are random UUIDs and tenants few, any mixing will do. */
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 0x100000001b3ULL;
    return (size_t)(h ^ (h >> 32));
}

fr_run_store *fr__run_store_new(const fr_run_limits *limits)
{
    fr_run_store *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    /* About two buckets per retained run, within bounds. */
    size_t n = 64;
    while (n < 2 * limits->retention_count && n < ((size_t)1 << 20))
        n <<= 1;
    s->buckets = calloc(n, sizeof *s->buckets);
    if (!s->buckets) {
        free(s);
        return NULL;
    }
    s->mask = n - 1;
    s->lim = *limits;
    return s;
}

static void entry_free(fr_run_entry *e)
{
    free(e->report);
    free(e->trace);
    free(e->input);
    free(e->graph);
    free(e);
}

void fr__run_store_free(fr_run_store *s)
{
    if (!s)
        return;
    run_list *lists[] = {&s->running, &s->finished};
    for (int i = 0; i < 2; i++)
        for (fr_run_entry *e = lists[i]->head, *next; e; e = next) {
            next = e->next;
            entry_free(e);
        }
    for (fr_run_tenant *t = s->tenants, *next; t; t = next) {
        next = t->next;
        free(t);
    }
    free(s->buckets);
    free(s);
}

/* ---- lists ---- */

/* The server's lists link through prev/next, a tenant's through tprev/tnext. */
#define LIST_PUSH(l, e, PREV, NEXT) \
    do {                            \
        (e)->PREV = NULL;           \
        (e)->NEXT = (l)->head;      \
        if ((l)->head)              \
            (l)->head->PREV = (e);  \
        else                        \
            (l)->tail = (e);        \
        (l)->head = (e);            \
        (l)->n++;                   \
    } while (0)

#define LIST_REMOVE(l, e, PREV, NEXT)    \
    do {                                 \
        if ((e)->PREV)                   \
            (e)->PREV->NEXT = (e)->NEXT; \
        else                             \
            (l)->head = (e)->NEXT;       \
        if ((e)->NEXT)                   \
            (e)->NEXT->PREV = (e)->PREV; \
        else                             \
            (l)->tail = (e)->PREV;       \
        (e)->PREV = (e)->NEXT = NULL;    \
        (l)->n--;                        \
    } while (0)

/* ---- tenants ---- */

static fr_run_tenant *tenant_find(fr_run_store *s, const char *name)
{
    fr_run_tenant *t = s->tenant_buckets[hash_str(name) % TENANT_BUCKETS];
    while (t && strcmp(t->name, name) != 0)
        t = t->hash_next;
    return t;
}

static fr_run_tenant *tenant_get(fr_run_store *s, const char *name)
{
    fr_run_tenant *t = tenant_find(s, name);
    if (t || !(t = calloc(1, sizeof *t)))
        return t;
    snprintf(t->name, sizeof t->name, "%s", name);
    fr_run_tenant **b = &s->tenant_buckets[hash_str(t->name) % TENANT_BUCKETS];
    t->hash_next = *b;
    *b = t;
    t->next = s->tenants;
    if (s->tenants)
        s->tenants->prev = t;
    s->tenants = t;
    return t;
}

/* Forgets a tenant with nothing in flight and nothing kept: records stay bounded by the
 * runs in flight and retained, whatever tenants come and go. */
static void tenant_release(fr_run_store *s, fr_run_tenant *t)
{
    if (t->running || t->entries)
        return;
    fr_run_tenant **pp = &s->tenant_buckets[hash_str(t->name) % TENANT_BUCKETS];
    while (*pp != t)
        pp = &(*pp)->hash_next;
    *pp = t->hash_next;
    if (t->prev)
        t->prev->next = t->next;
    else
        s->tenants = t->next;
    if (t->next)
        t->next->prev = t->prev;
    free(t);
}

fr_admit_result fr__run_store_admit(fr_run_store *s, const char *tenant)
{
    if (s->in_flight >= s->lim.max_running)
        return FR_ADMIT_SERVER_FULL;
    fr_run_tenant *t = tenant_get(s, tenant);
    if (!t)
        return FR_ADMIT_NO_MEMORY;
    if (t->running >= s->lim.max_running_per_tenant) {
        tenant_release(s, t);
        return FR_ADMIT_TENANT_FULL;
    }
    t->running++;
    s->in_flight++;
    return FR_ADMIT_OK;
}

void fr__run_store_leave(fr_run_store *s, const char *tenant)
{
    fr_run_tenant *t = tenant_find(s, tenant);
    if (!t || !t->running)
        return; /* not admitted: nothing to give back */
    t->running--;
    s->in_flight--;
    tenant_release(s, t);
}

size_t fr__run_store_in_flight(const fr_run_store *s)
{
    return s->in_flight;
}

size_t fr__run_store_tenant_in_flight(fr_run_store *s, const char *tenant)
{
    fr_run_tenant *t = tenant_find(s, tenant);
    return t ? t->running : 0;
}

/* ---- runs ---- */

int fr__run_store_add(fr_run_store *s, fr_run_entry *e)
{
    fr_run_tenant *t = tenant_get(s, e->tenant);
    if (!t)
        return -1;
    t->entries++;
    e->owner = t;
    e->seq = ++s->seq;
    fr_run_entry **b = &s->buckets[hash_str(e->id) & s->mask];
    e->hash_next = *b;
    *b = e;
    LIST_PUSH(&s->running, e, prev, next);
    return 0;
}

static void unhash(fr_run_store *s, fr_run_entry *e)
{
    fr_run_entry **pp = &s->buckets[hash_str(e->id) & s->mask];
    while (*pp && *pp != e)
        pp = &(*pp)->hash_next;
    if (*pp)
        *pp = e->hash_next;
}

/* Drops a finished run. */
static void drop(fr_run_store *s, fr_run_entry *e)
{
    fr_run_tenant *t = e->owner;
    LIST_REMOVE(&s->finished, e, prev, next);
    LIST_REMOVE(&t->finished, e, tprev, tnext);
    s->bytes -= e->bytes;
    t->bytes -= e->bytes;
    t->entries--;
    unhash(s, e);
    entry_free(e);
    tenant_release(s, t);
}

/* The tenant holding the most finished runs (by_bytes 0) or bytes (1); among equals the one
 * whose oldest run is oldest, so that equal holders give way in finishing order. */
static fr_run_tenant *largest_holder(fr_run_store *s, int by_bytes)
{
    fr_run_tenant *best = NULL;
    size_t best_v = 0;
    for (fr_run_tenant *t = s->tenants; t; t = t->next) {
        size_t v = by_bytes ? t->bytes : t->finished.n;
        if (!t->finished.tail || v < best_v)
            continue;
        if (!best || v > best_v ||
            t->finished.tail->finished_mono < best->finished.tail->finished_mono) {
            best = t;
            best_v = v;
        }
    }
    return best;
}

void fr__run_store_evict(fr_run_store *s, int64_t now)
{
    for (fr_run_entry *e = s->finished.tail; e; e = s->finished.tail) {
        if (!s->lim.retention_us || now - e->finished_mono <= s->lim.retention_us)
            break;
        drop(s, e);
    }
    fr_run_tenant *t;
    while (s->finished.n > s->lim.retention_count && (t = largest_holder(s, 0)) != NULL)
        drop(s, t->finished.tail);
    while (s->bytes > s->lim.retention_bytes && (t = largest_holder(s, 1)) != NULL)
        drop(s, t->finished.tail);
}

/* Bytes as allocated, not as asked for: the budget bounds what the process holds. */
static size_t held(const void *p)
{
    return p ? malloc_usable_size((void *)p) : 0;
}

void fr__run_store_finish(fr_run_store *s, fr_run_entry *e, int64_t now)
{
    fr_run_tenant *t = e->owner;
    LIST_REMOVE(&s->running, e, prev, next);
    e->done = 1;
    e->p = NULL;
    e->finished_mono = now;
    e->bytes = held(e) + held(e->report) + held(e->trace) + held(e->input) + held(e->graph);
    LIST_PUSH(&s->finished, e, prev, next);
    LIST_PUSH(&t->finished, e, tprev, tnext);
    s->bytes += e->bytes;
    t->bytes += e->bytes;
    /* A tenant over its own share gives up its oldest runs before any server-wide limit is
     * looked at. */
    while (t->finished.n > s->lim.retention_per_tenant)
        drop(s, t->finished.tail);
    fr__run_store_evict(s, now);
}

fr_run_entry *fr__run_store_find(fr_run_store *s, const char *id)
{
    fr_run_entry *e = s->buckets[hash_str(id) & s->mask];
    while (e && strcmp(e->id, id) != 0)
        e = e->hash_next;
    return e;
}

void fr__run_store_retained(fr_run_store *s, const char *tenant, size_t *runs, size_t *bytes)
{
    fr_run_tenant *t = tenant ? tenant_find(s, tenant) : NULL;
    *runs = tenant ? (t ? t->finished.n : 0) : s->finished.n;
    *bytes = tenant ? (t ? t->bytes : 0) : s->bytes;
}

void fr__run_store_each_running(fr_run_store *s, void (*fn)(void *ud, fr_run_entry *e), void *ud)
{
    for (fr_run_entry *e = s->running.head; e; e = e->next)
        fn(ud, e);
}

void fr__run_store_each(fr_run_store *s, const char *tenant,
                        void (*fn)(void *ud, const fr_run_entry *e), void *ud)
{
    /* Running runs are few (admission caps them); the finished ones are the tenant's own
     * list. */
    for (fr_run_entry *e = s->running.head; e; e = e->next)
        if (strcmp(e->tenant, tenant) == 0)
            fn(ud, e);
    fr_run_tenant *t = tenant_find(s, tenant);
    for (fr_run_entry *e = t ? t->finished.head : NULL; e; e = e->tnext)
        fn(ud, e);
}
