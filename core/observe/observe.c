/* Observability set-up and the per-run state the hooks share: configuration from the
 * environment (once), shutdown, span ids and series caching.  The hooks themselves are the
 * engine's (core/engine/run_observe.c) and the host's (core/host/call_observe.c).
 *
 * Span ids are derived, not stored: a traced run draws a trace id and a 64-bit seed, and
 * the span id of a step or an attempt is a hash of the seed with the step id, agent id
 * and attempt number. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "observe/obs_impl.h"

/* ---- configuration ------------------------------------------------------------------- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_all(void)
{
    fr__oblog_init();
    fr__otel_init();
    fr__audit_init();
    atexit(fr__obs_shutdown);
}

void fr__obs_init(void)
{
    pthread_once(&init_once, init_all);
}

void fr__obs_shutdown(void)
{
    fr__otel_shutdown();
    fr__audit_shutdown();
}

/* ---- per-run state ------------------------------------------------------------------ */

/* What provider calls told during the attempt running on this thread (for its log line),
 * and the provider span in progress (for traceparent). */
_Thread_local fr_obs_thread fr__obs_tl;

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return z ? z : 1; /* span ids are never zero */
}

static uint64_t fnv(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

uint64_t fr__obs_run_span(const struct fr_obs_run *o)
{
    return mix64(o->seed ^ 0x72756e0000000001ULL);
}

uint64_t fr__obs_step_span(const struct fr_obs_run *o, const char *step)
{
    return mix64(o->seed ^ (fnv(step) * 0x9e3779b97f4a7c15ULL) ^ 0x5354455000000002ULL);
}

uint64_t fr__obs_attempt_span(const struct fr_obs_run *o, const char *step, const char *agent,
                              int attempt)
{
    return mix64(o->seed ^ (fnv(step) * 0x9e3779b97f4a7c15ULL) ^
                 (fnv(agent) * 0xd1b54a32d192ed03ULL) ^ ((uint64_t)attempt << 40) ^ 3);
}

/* Per-run metric series of one agent, resolved on first use (racing threads resolve the
 * same pointer: the registry returns one series per label set). */
fr_metric_series *fr__obs_cached(fr_metric_series **slot, fr_metric_id id,
                                 const char *const *labels)
{
    fr_metric_series *s = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (!s) {
        s = fr__metric_series(id, labels);
        __atomic_store_n(slot, s, __ATOMIC_RELEASE);
    }
    return s;
}
