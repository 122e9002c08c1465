/* Abandoned in-process threads and quarantined plugins (core/plugin/quarantine.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include "base/str.h"
#include "plugin/quarantine.h"

typedef struct quarantined {
    struct quarantined *next;
    char *path;
    char *why;
} quarantined;

static pthread_mutex_t q_mu = PTHREAD_MUTEX_INITIALIZER;
static quarantined *q_list; /* never freed: the reasons are handed out for the process's life */
static _Atomic size_t q_any;
static _Atomic size_t abandoned;
static _Atomic size_t cap;

void fr__abandoned_set_cap(size_t n)
{
    cap = n;
}

size_t fr__abandoned_cap(void)
{
    return cap;
}

size_t fr__abandoned_count(void)
{
    return abandoned;
}

void fr__abandoned_note(const char *path)
{
    size_t now = ++abandoned, limit = cap;
    if (!limit || now < limit || !path || fr__plugin_quarantined(path, NULL))
        return;
    quarantined *q = calloc(1, sizeof *q);
    char *p = strdup(path);
    char *why = fr__xasprintf("plugin %s is quarantined until the server restarts: a call of it "
                              "hung past its deadline when %zu abandoned plugin thread(s) were "
                              "already held, the cap (--max-abandoned %zu)",
                              path, now, limit);
    if (!q || !p || !why) {
        free(q), free(p), free(why);
        return;
    }
    q->path = p;
    q->why = why;
    pthread_mutex_lock(&q_mu);
    q->next = q_list;
    q_list = q;
    q_any = 1;
    pthread_mutex_unlock(&q_mu);
    fprintf(stderr, "fluxroute: %s\n", why);
}

void fr__abandoned_returned(void)
{
    abandoned--;
}

int fr__plugin_quarantined(const char *path, const char **why)
{
    if (!q_any || !path)
        return 0;
    pthread_mutex_lock(&q_mu);
    const quarantined *q = q_list;
    while (q && strcmp(q->path, path) != 0)
        q = q->next;
    pthread_mutex_unlock(&q_mu);
    if (q && why)
        *why = q->why;
    return q != NULL;
}
