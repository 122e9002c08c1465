/* The per-invocation call context: its arena, deadlines, error message and identity
 * (core/host/call.h). */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/str.h"
#include "host/call.h"

/* ---- arena ------------------------------------------------------------------------ */

struct fr_arena_block {
    fr_arena_block *next;
    size_t used, cap;
    max_align_t data[];
};

#define ARENA_MIN_BLOCK 4096

/* Each thread keeps one freed block of ARENA_MIN_BLOCK for its next arena: an invocation's
 * arena nearly always needs just one, and a 4 KB malloc is a large-bin request that first
 * consolidates the thread's fast bins (about 4k instructions per invocation). */
static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
static int spare_ok;

static void spare_key_make(void)
{
    spare_ok = pthread_key_create(&spare_key, free) == 0;
}

void *fr__arena_alloc(fr_arena *a, size_t size)
{
    size_t align = sizeof(max_align_t);
    size_t need = (size + align - 1) / align * align;
    if (need < size)
        return NULL;
    fr_arena_block *b = a->head;
    if (!b || b->cap - b->used < need) {
        size_t cap = need > ARENA_MIN_BLOCK ? need : ARENA_MIN_BLOCK;
        b = NULL;
        if (cap == ARENA_MIN_BLOCK) {
            pthread_once(&spare_once, spare_key_make);
            if (spare_ok && (b = pthread_getspecific(spare_key)) != NULL)
                pthread_setspecific(spare_key, NULL);
        }
        if (!b && !(b = malloc(sizeof *b + cap)))
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += need;
    return p;
}

void fr__arena_free(fr_arena *a)
{
    fr_arena_block *b = a->head;
    if (b)
        pthread_once(&spare_once, spare_key_make);
    while (b) {
        fr_arena_block *next = b->next;
        if (b->cap == ARENA_MIN_BLOCK && spare_ok && !pthread_getspecific(spare_key) &&
            pthread_setspecific(spare_key, b) == 0)
            b = NULL;
        free(b);
        b = next;
    }
    a->head = NULL;
}

/* ---- deadlines -------------------------------------------------------------------- */

fr_status fr__call_check(fr_call *c)
{
    if (__atomic_load_n(&c->cancel->cancelled, __ATOMIC_ACQUIRE))
        return fr__cancel_reason(c->cancel);
    fr_status why;
    int64_t dl = fr__call_deadline(c, &why);
    if (dl && fr__mono_us() >= dl)
        return why;
    return FR_OK;
}

int64_t fr__call_remaining_us(fr_call *call)
{
    fr_status why;
    int64_t dl = fr__call_deadline(call, &why);
    return dl ? dl - fr__mono_us() : INT64_MAX;
}

/* ---- errors ----------------------------------------------------------------------- */

/* Messages set during init() (no call yet), read back by the pipeline builder. */
static _Thread_local char *init_error;

char *fr__host_take_init_error(void)
{
    char *e = init_error;
    init_error = NULL;
    return e;
}

void fr__call_set_error(fr_call *call, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = fr__xvasprintf(fmt, ap);
    va_end(ap);
    char **slot = call ? &call->error : &init_error;
    free(*slot);
    *slot = msg;
}

/* ---- calls ------------------------------------------------------------------------ */

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

void fr__call_init(fr_call *c, fr_cancel *cancel, const fr_instance *inst, const char *step_id,
                   int attempt, int64_t attempt_deadline_mono, uint64_t seed, fr_arena *arena)
{
    memset(c, 0, sizeof *c);
    c->cancel = cancel;
    c->inst = inst;
    c->agent = inst;
    c->step_id = step_id;
    c->attempt = attempt;
    c->attempt_deadline_mono = attempt_deadline_mono;
    /* One independent stream per (run seed, step, agent, attempt). */
    uint64_t s = seed ^ fnv1a(step_id) ^ (fnv1a(inst->id) * 0x9e3779b97f4a7c15ULL) ^
                 ((uint64_t)attempt * 0xd1b54a32d192ed03ULL);
    c->rng = fr__splitmix64(&s);
    c->arena = arena;
}

void fr__call_done(fr_call *c)
{
    free(c->error);
    c->error = NULL;
}
