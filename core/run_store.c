/* serve's run store (see run_store.h): a hash table by id over two lists, the running
 * runs and the finished ones in finishing order, so the oldest finished run is always
 * at the tail and eviction never scans. */
#include <stdlib.h>
#include <string.h>

#include "run_store.h"

typedef struct run_list {
    fr_run_entry *head, *tail; /* newest at the head */
    size_t n;
} run_list;

struct fr_run_store {
    fr_run_entry **buckets;
    size_t mask;
    run_list running, finished;
    size_t retention_count;
    int64_t retention_us;
};

static size_t hash_id(const char *id)
{
    /* FNV-1a: ids are random UUIDs, any mixing will do. */
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 0x100000001b3ULL;
    return (size_t)(h ^ (h >> 32));
}

fr_run_store *fr__run_store_new(size_t retention_count, int64_t retention_us)
{
    fr_run_store *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    /* About two buckets per retained run, within bounds. */
    size_t n = 64;
    while (n < 2 * retention_count && n < ((size_t)1 << 20))
        n <<= 1;
    s->buckets = calloc(n, sizeof *s->buckets);
    if (!s->buckets) {
        free(s);
        return NULL;
    }
    s->mask = n - 1;
    s->retention_count = retention_count;
    s->retention_us = retention_us;
    return s;
}

static void entry_free(fr_run_entry *e)
{
    free(e->report);
    free(e->trace);
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
    free(s->buckets);
    free(s);
}

static void list_push(run_list *l, fr_run_entry *e)
{
    e->prev = NULL;
    e->next = l->head;
    if (l->head)
        l->head->prev = e;
    else
        l->tail = e;
    l->head = e;
    l->n++;
}

static void list_remove(run_list *l, fr_run_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        l->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        l->tail = e->prev;
    e->prev = e->next = NULL;
    l->n--;
}

void fr__run_store_add(fr_run_store *s, fr_run_entry *e)
{
    fr_run_entry **b = &s->buckets[hash_id(e->id) & s->mask];
    e->hash_next = *b;
    *b = e;
    list_push(&s->running, e);
}

static void unhash(fr_run_store *s, fr_run_entry *e)
{
    fr_run_entry **pp = &s->buckets[hash_id(e->id) & s->mask];
    while (*pp && *pp != e)
        pp = &(*pp)->hash_next;
    if (*pp)
        *pp = e->hash_next;
}

void fr__run_store_evict(fr_run_store *s, int64_t now)
{
    for (fr_run_entry *e = s->finished.tail; e; e = s->finished.tail) {
        int too_old = s->retention_us && now - e->finished_mono > s->retention_us;
        if (!too_old && s->finished.n <= s->retention_count)
            break;
        list_remove(&s->finished, e);
        unhash(s, e);
        entry_free(e);
    }
}

void fr__run_store_finish(fr_run_store *s, fr_run_entry *e, int64_t now)
{
    list_remove(&s->running, e);
    e->done = 1;
    e->p = NULL;
    e->finished_mono = now;
    list_push(&s->finished, e);
    fr__run_store_evict(s, now);
}

fr_run_entry *fr__run_store_find(fr_run_store *s, const char *id)
{
    fr_run_entry *e = s->buckets[hash_id(id) & s->mask];
    while (e && strcmp(e->id, id) != 0)
        e = e->hash_next;
    return e;
}
