/* The scheduler: a fixed pool of worker threads runs steps as soon as their
 * dependencies have succeeded (no level barriers).  A failed step skips its descendants;
 * independent branches finish.  Results are stored per step, so the report's order
 * (topological, manifest order breaking ties) never depends on thread timing.
 *
 * The thread that starts a run also watches for hung in-process plugins: an attempt
 * still running FR_HANG_GRACE_US after its deadline is recorded as a timeout, its worker
 * is abandoned (left to return whenever it does) and replaced, and the step carries on
 * (retries, fallbacks) on another worker. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>

#include <json-c/json.h>

#include "base/duration.h"
#include "host/effects.h"
#include "host/journal_sink.h"
#include "base/json_check.h"
#include "base/json_parse.h"
#include "engine/run_observe.h"
#include "engine/pipeline.h"
#include "plugin/quarantine.h"

/* ---- settling results (pool lock held) ------------------------------------------------ */

static void push_job(fr_pipeline *p, int s, fr_step_exec *resume)
{
    /* The ring holds one job per step at most: a step is queued once, or resumed once
     * per hung attempt while it is not queued. */
    if (p->q_len == p->q_cap)
        return;
    fr_job *j = &p->queue[(p->q_head + p->q_len) % p->q_cap];
    j->step = s;
    j->resume = resume;
    p->q_len++;
}

static void skip_descendants(fr_run *run, int failed, int from)
{
    fr_pipeline *p = run->p;
    for (size_t i = 0; i < p->n_children[from]; i++) {
        int c = p->children[from][i];
        fr_step_result *cr = &run->res->steps[c];
        if (cr->state != FR_STEP_PENDING)
            continue;
        cr->state = FR_STEP_SKIPPED;
        cr->status = FR_E_SKIPPED;
        cr->message = fr__xasprintf("ancestor \"%s\" failed", p->m->steps[failed].id);
        run->remaining--;
        skip_descendants(run, failed, c);
    }
}

static void settle(fr_run *run, int s)
{
    fr_pipeline *p = run->p;
    fr_step_result *r = &run->res->steps[s];
    if (!r->from_journal)
        r->duration_us = fr__mono_us() - r->started_us;
    fr__obs_step_end(run, s); /* observability: the step is settled */
    run->remaining--;
    if (r->state == FR_STEP_SUCCEEDED) {
        for (size_t i = 0; i < p->n_children[s]; i++) {
            int c = p->children[s][i];
            if (run->res->steps[c].state == FR_STEP_PENDING && --run->pending[c] == 0)
                push_job(p, c, NULL);
        }
    } else {
        skip_descendants(run, s, s);
    }
    if (run->remaining == 0)
        pthread_cond_broadcast(&p->done_cv);
}

static void report_progress(fr_run *run, int s)
{
    if (!run->opts->progress)
        return;
    pthread_mutex_lock(&run->p->progress_mu);
    run->opts->progress(run->opts->progress_ud, run->p, s, &run->res->steps[s]);
    pthread_mutex_unlock(&run->p->progress_mu);
}

/* ---- the pool ----------------------------------------------------------------------- */

static void *worker_main(void *arg);

/* Starts one more worker.  p->mu held (or the pool not yet running). */
static int add_worker(fr_pipeline *p)
{
    if (p->n_workers == p->cap_workers) {
        size_t cap = p->cap_workers ? p->cap_workers * 2 : 8;
        fr_worker **ws = realloc(p->workers, cap * sizeof *ws);
        if (!ws)
            return -1;
        p->workers = ws;
        p->cap_workers = cap;
    }
    fr_worker *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    w->p = p;
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        free(w);
        return -1;
    }
    p->workers[p->n_workers++] = w;
    return 0;
}

/* A settled step's outcome, the boundary `--journal-sync step` makes durable. */
static void journal_step(fr_run *run, int s)
{
    if (!run->journal)
        return;
    const fr_step_cfg *st = &run->p->m->steps[s];
    const fr_step_result *r = &run->res->steps[s];
    json_object *j = fr__journal_entry("step", st->id, -1);
    if (j) {
        json_object_object_add(j, "status", json_object_new_string(fr__step_state_name(r->state)));
        json_object_object_add(j, "answered_by",
                               r->answered_by ? json_object_new_string(r->answered_by) : NULL);
        json_object_object_add(j, "output",
                               r->state == FR_STEP_SUCCEEDED && r->output
                                   ? fr__journal_raw_json(r->output, r->output_len)
                                   : NULL);
        if (r->state != FR_STEP_SUCCEEDED) {
            json_object *e = json_object_new_object();
            json_object_object_add(
                e, "class", json_object_new_string(fr_class_name(fr_status_class(r->status))));
            json_object_object_add(
                e, "message",
                json_object_new_string(r->message ? r->message : fr_strerror(r->status)));
            json_object_object_add(j, "error", e);
        }
        json_object_object_add(j, "duration_us",
                               json_object_new_int64(fr__mono_us() - r->started_us));
    }
    fr__journal_put(run->journal, run->cancel, j, FR_JOURNAL_STEP);
}

/* Runs one job on worker `w` (a pool thread or the run's own thread).  Called and
 * returns with p->mu held.  Returns 1 when `w` was abandoned while hung (the run has moved
 * on without it; it must not touch the run again). */
static int run_job(fr_worker *w, fr_run *run, fr_job job)
{
    fr_pipeline *p = run->p;
    fr_step_result *r = &run->res->steps[job.step];
    if (!job.resume) {
        r->state = FR_STEP_RUNNING;
        r->started_us = fr__mono_us();
    }
    /* More ready work than this worker: wake another one. */
    if (p->q_len > 0)
        pthread_cond_signal(&p->work_cv);
    pthread_mutex_unlock(&p->mu);

    fr_step_exec *x = job.resume;
    json_object *settled =
        x ? NULL : fr__replay_settled_step(run->replay, p->m->steps[job.step].id);
    if (settled) {
        /* Resumed: the journal has the step's outcome; it is not run again. */
        if (fr__step_restore(p->m, settled, r) != 0) {
            r->state = FR_STEP_FAILED;
            r->status = FR_E_INVALID;
            free(r->message);
            r->message = fr__xasprintf("the journal's record of step \"%s\" is incomplete",
                                       p->m->steps[job.step].id);
        }
        report_progress(run, job.step);
        pthread_mutex_lock(&p->mu);
        settle(run, job.step);
        return 0;
    }
    if (!x) {
        report_progress(run, job.step);
        x = fr__step_exec_new(run, job.step);
    }
    if (!x) {
        r->state = FR_STEP_FAILED;
        r->status = FR_E_NOMEM;
        r->message = strdup("out of memory building the step input");
    } else if (fr__step_drive(w, run, x)) {
        fr__step_exec_free(x);
        pthread_mutex_lock(&p->mu);
        return 1;
    }
    fr__step_exec_free(x);
    journal_step(run, job.step);
    report_progress(run, job.step);
    pthread_mutex_lock(&p->mu);
    settle(run, job.step);
    return 0;
}

static fr_job pop_job(fr_pipeline *p)
{
    fr_job job = p->queue[p->q_head];
    p->q_head = (p->q_head + 1) % p->q_cap;
    p->q_len--;
    return job;
}

static void *worker_main(void *arg)
{
    pthread_setname_np(pthread_self(), "fr-worker");
    fr_worker *w = arg;
    fr_pipeline *p = w->p;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stopping && p->q_len == 0)
            pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->stopping)
            break;
        if (run_job(w, p->current, pop_job(p))) {
            /* Abandoned while hung; the run has moved on.  Leave quietly. */
            w->exited = 1;
            p->n_hung--;
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
    }
    w->exited = 1;
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---- plugins that have hung (never run inline again) ---------------------------------- */

static pthread_mutex_t hung_mu = PTHREAD_MUTEX_INITIALIZER;
static char **hung_paths;
static size_t n_hung_paths;
static _Atomic size_t any_hung;
static _Atomic size_t callers_held; /* inline callers still inside an abandoned call */

size_t fr__pipeline_callers_held(void)
{
    return callers_held;
}

static void note_hung_plugin(const fr_loaded_plugin *pl)
{
    if (!pl || !pl->path)
        return;
    pthread_mutex_lock(&hung_mu);
    size_t i = 0;
    while (i < n_hung_paths && strcmp(hung_paths[i], pl->path) != 0)
        i++;
    char **grown = i == n_hung_paths ? realloc(hung_paths, (i + 1) * sizeof *grown) : NULL;
    if (grown && (grown[i] = strdup(pl->path)) != NULL) {
        hung_paths = grown;
        n_hung_paths++;
        any_hung = n_hung_paths;
    } else if (grown) {
        hung_paths = grown;
    }
    pthread_mutex_unlock(&hung_mu);
    fprintf(stderr,
            "fluxroute: plugin %s hung past its deadline; its steps no longer run on the "
            "calling thread\n",
            pl->path);
}

/* May this pipeline's runs run steps on the calling thread? */
static int may_run_inline(const fr_pipeline *p)
{
    if (any_hung == 0)
        return 1;
    int ok = 1;
    pthread_mutex_lock(&hung_mu);
    for (size_t a = 0; ok && a < p->m->n_agents; a++)
        for (size_t i = 0; ok && i < n_hung_paths; i++)
            if (p->agents[a].plugin && strcmp(p->agents[a].plugin->path, hung_paths[i]) == 0)
                ok = 0;
    pthread_mutex_unlock(&hung_mu);
    return ok;
}

/* A run handed to the driver (FR_RUN_ON_DRIVER), on its caller's stack. */
typedef struct fr_driver_job {
    const fr_run_options *opts;
    fr_run_result *out;
    fr_status status;
    fr_run *run;  /* the driver's run once it started (p->mu) */
    int done;     /* the driver has returned the run (driver_mu) */
    int held;     /* the driver is held in a hung plugin: the caller finishes (driver_mu) */
    int detached; /* the caller left (opts->detach_after_us): whoever completes the run
                   * calls opts->on_done and frees the job (driver_mu) */
    fr_pipeline *p;
} fr_driver_job;

static void finish_held_run(fr_pipeline *p, fr_driver_job *job);

/* A detached caller's run whose driver is held: finished on a thread of its own. */
static void *finisher_main(void *arg)
{
    pthread_setname_np(pthread_self(), "fr-finisher");
    fr_driver_job *job = arg;
    finish_held_run(job->p, job);
    job->opts->on_done(job->opts->detach_ud, FR_OK);
    free(job);
    return NULL;
}

/* The driver is held inside a plugin the watchdog abandoned: its caller takes the run
 * over.  Until the driver returns, its thread counts as hung, so the pipeline is kept.
 * p->mu held (lock order: p->mu, then driver_mu). */
static void hand_over(fr_pipeline *p, fr_run *run)
{
    p->n_hung++;
    pthread_mutex_lock(&p->driver_mu);
    fr_driver_job *job = run->handover;
    job->held = 1;
    pthread_cond_broadcast(&p->driver_cv);
    if (job->detached) {
        /* Nobody waits for the run: a thread of its own finishes it. */
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, finisher_main, job) != 0)
            fprintf(stderr, "fluxroute: cannot start a thread to finish a run whose driver "
                            "hung; its reply is lost\n");
        pthread_attr_destroy(&attr);
    }
    pthread_mutex_unlock(&p->driver_mu);
}

/* Cancels `run` (p->mu held).  A call without a deadline could otherwise hang the
 * cancelled run for good: past the grace period it counts as hung, and the watchdog
 * abandons it. */
static void cancel_locked(fr_pipeline *p, fr_run *run, fr_status reason, const char *message)
{
    fr__cancel_fire_with(run->cancel, reason, message);
    int64_t hang_at = fr__mono_us() + FR_HANG_GRACE_US;
    for (size_t i = 0; i <= p->n_workers; i++) {
        fr_worker *w = i < p->n_workers ? p->workers[i] : p->inline_worker;
        if (w && w->busy && !w->abandoned && w->run == run && (!w->hang_at || w->hang_at > hang_at))
            w->hang_at = hang_at;
    }
}

/* Abandons workers stuck in a plugin past their deadline (p->mu held). */
static void watch_for_hangs(fr_pipeline *p, fr_run *run, int64_t now)
{
    if (run->opts->stop_at_mono && now >= run->opts->stop_at_mono && !run->cancel->cancelled)
        cancel_locked(p, run, FR_E_DEADLINE_EXCEEDED,
                      run->opts->stop_why ? run->opts->stop_why : "the caller's deadline passed");
    size_t n = p->n_workers;
    for (size_t i = 0; i <= n; i++) {
        fr_worker *w = i < n ? p->workers[i] : p->inline_worker;
        if (!w)
            continue;
        if (!w->busy || w->abandoned || w->run != run || !w->hang_at || now < w->hang_at)
            continue;
        fr_step_exec *x = w->exec;
        fr_step_result *r = &run->res->steps[x->step];
        fr_attempt_result *a = &r->attempts[w->attempt_index];
        /* The hung thread keeps its exec (and input) and the cancel context; the step
         * carries on from a copy. */
        fr_step_exec *copy = calloc(1, sizeof *copy);
        char *input = malloc(x->input_len + 1);
        if (!copy || !input) {
            free(copy);
            free(input);
            continue; /* try again on the next tick */
        }
        memcpy(input, x->input, x->input_len + 1);
        *copy = *x;
        copy->input = input;
        copy->resume = 1;
        w->abandoned = 1;
        fr__abandoned_note(w->plugin ? w->plugin->path : NULL);
        if (w->inline_caller) {
            /* The run's own thread: it returns when the plugin does; a pool worker takes
             * the step over meanwhile.  That plugin never runs inline again. */
            note_hung_plugin(w->plugin);
            callers_held++;
            if (run->handover)
                hand_over(p, run);
        } else {
            p->n_hung++;
            pthread_detach(w->thread);
        }
        fr__cancel_ref(run->cancel);
        a->status = FR_E_TIMEOUT;
        a->duration_us = now - (r->started_us > 0 ? r->started_us : now);
        if (a->effects) {
            json_object *hung = fr__effect_new("hung");
            json_object_array_add(a->effects, hung);
            if (run->journal && hung) {
                json_object *j =
                    fr__journal_entry("effect", p->m->steps[x->step].id, (long)w->attempt_index);
                if (j)
                    json_object_object_add(j, "effect", json_object_get(hung));
                fr__journal_put(run->journal, run->cancel, j, FR_JOURNAL_EFFECT);
            }
        }
        a->message = fr__xasprintf("agent \"%s\" hung: still running %dms after its deadline "
                                   "and ignoring cancellation; abandoned (its worker thread was "
                                   "replaced)",
                                   a->agent, FR_HANG_GRACE_US / 1000);
        push_job(p, x->step, copy);
        pthread_cond_signal(&p->work_cv);
        if (!w->inline_caller && add_worker(p) != 0)
            fprintf(stderr, "fluxroute: cannot start a replacement worker; the pool shrinks\n");
    }
}

/* ---- the watchdog of inline runs ------------------------------------------------------ */

/* While a run's own thread is inside a plugin nobody else looks for hangs in that
 * pipeline: one process-wide thread does, for every pipeline with an inline run. */
static pthread_mutex_t watch_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watch_cv = PTHREAD_COND_INITIALIZER;
static fr_pipeline *watched;
static int watchdog_running;

static void *watchdog_main(void *arg)
{
    pthread_setname_np(pthread_self(), "fr-watchdog");
    (void)arg;
    pthread_mutex_lock(&watch_mu);
    for (;;) {
        while (!watched)
            pthread_cond_wait(&watch_cv, &watch_mu);
        int64_t now = fr__mono_us();
        /* Lock order: watch_mu, then a pipeline's mu. */
        for (fr_pipeline *p = watched; p; p = p->watch_next) {
            pthread_mutex_lock(&p->mu);
            if (p->current)
                watch_for_hangs(p, p->current, now);
            pthread_mutex_unlock(&p->mu);
        }
        pthread_mutex_unlock(&watch_mu);
        struct timespec tick = {0, 20 * 1000 * 1000};
        nanosleep(&tick, NULL);
        pthread_mutex_lock(&watch_mu);
    }
    return NULL;
}

/* Adds p to the watchdog's list (starting the watchdog once).  0, or -1 when the
 * watchdog cannot run (then the run must not be inline). */
static int watch_inline(fr_pipeline *p)
{
    pthread_mutex_lock(&watch_mu);
    if (!watchdog_running) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        watchdog_running = pthread_create(&t, &attr, watchdog_main, NULL) == 0;
        pthread_attr_destroy(&attr);
        if (!watchdog_running) {
            pthread_mutex_unlock(&watch_mu);
            return -1;
        }
    }
    p->watch_prev = NULL;
    p->watch_next = watched;
    if (watched)
        watched->watch_prev = p;
    else
        pthread_cond_signal(&watch_cv);
    watched = p;
    pthread_mutex_unlock(&watch_mu);
    return 0;
}

static void unwatch_inline(fr_pipeline *p)
{
    pthread_mutex_lock(&watch_mu);
    if (p->watch_prev)
        p->watch_prev->watch_next = p->watch_next;
    else
        watched = p->watch_next;
    if (p->watch_next)
        p->watch_next->watch_prev = p->watch_prev;
    p->watch_prev = p->watch_next = NULL;
    pthread_mutex_unlock(&watch_mu);
}

int fr__pool_start(fr_pipeline *p)
{
    size_t n = p->m->worker_pool_size > 0 ? (size_t)p->m->worker_pool_size : 1;
    /* More workers than steps can never be busy at once. */
    if (n > p->m->n_steps && p->m->n_steps > 0)
        n = p->m->n_steps;
    p->pool_size = n;
    p->q_cap = p->m->n_steps ? p->m->n_steps : 1;
    p->queue = calloc(p->q_cap, sizeof *p->queue);
    if (!p->queue)
        return -1;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->progress_mu, NULL);
    pthread_mutex_init(&p->driver_mu, NULL);
    pthread_cond_init(&p->driver_cv, &attr);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_lock(&p->mu);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = add_worker(p);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

size_t fr__pool_stop(fr_pipeline *p)
{
    if (!p->queue)
        return 0;
    pthread_mutex_lock(&p->driver_mu);
    p->driver_stop = 1;
    pthread_cond_broadcast(&p->driver_cv);
    int driver = p->driver_running;
    pthread_mutex_unlock(&p->driver_mu);
    if (driver)
        pthread_join(p->driver, NULL);
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < p->n_workers; i++)
        if (!p->workers[i]->abandoned)
            pthread_join(p->workers[i]->thread, NULL);
    pthread_mutex_lock(&p->mu);
    size_t hung = p->n_hung;
    pthread_mutex_unlock(&p->mu);
    if (hung)
        return hung; /* their threads still use the pool's lock: keep everything */
    for (size_t i = 0; i < p->n_workers; i++)
        free(p->workers[i]);
    free(p->workers);
    free(p->queue);
    p->workers = NULL;
    p->queue = NULL;
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->done_cv);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->progress_mu);
    pthread_cond_destroy(&p->driver_cv);
    pthread_mutex_destroy(&p->driver_mu);
    return 0;
}

/* ---- runs ---------------------------------------------------------------------------- */

static void make_run_id(char *out, size_t size, uint64_t a, uint64_t b)
{
    /* A version-4 UUID. */
    a = (a & 0xffffffffffff0fffULL) | 0x4000ULL;
    b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
    snprintf(out, size, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(a >> 32),
             (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xffff, (unsigned)(b >> 48),
             (unsigned long long)(b & 0xffffffffffffULL));
}

/* Validates and compacts the run input: one JSON value. */
static char *normalise_input(const char *text)
{
    size_t len = strlen(text), at;
    const char *why;
    /* Strictly valid text of the shapes the direct builder takes has the tree the tokener
     * gives, without the tokener's cost per parse (a gateway request's input: about 12k
     * instructions).  Anything else, and every error, takes the whole parse. */
    json_object *o = fr__json_check(text, len) == FR_JSON_VALID ? fr__json_tree_direct(text) : NULL;
    if (!o && fr__json_parse_whole(text, len, FR_INPUT_MAX_DEPTH, &o, &at, &why) != 0)
        return NULL;
    char *out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return out;
}

/* Completes a run whose steps have all settled: status, observability, cleanup.  Called
 * with p->mu held by the run's own thread (or, after a hand-over, by the driver's
 * caller); releases it. */
static void finish_run(fr_run *run)
{
    fr_pipeline *p = run->p;
    fr_run_result *out = run->res;
    p->current = NULL;
    p->inline_worker = NULL;
    pthread_mutex_unlock(&p->mu);
    if (run->watched)
        unwatch_inline(p);

    out->finished_at_us = fr__wall_us();
    out->status = FR_RUN_SUCCEEDED;
    for (size_t i = 0; i < p->m->n_steps; i++)
        if (out->steps[i].state != FR_STEP_SUCCEEDED)
            out->status = FR_RUN_FAILED;
    if (run->cancel->cancelled && fr__cancel_reason(run->cancel) == FR_E_CANCELLED)
        out->status = FR_RUN_CANCELLED;
    fr__obs_run_end(run); /* observability: run metric, log line, run span */
    if (run->replay)
        fr__replay_set_cancel(run->replay, NULL);
    fr__cancel_unref(run->cancel);
    free(run->pending);
    run->pending = NULL;
}

/* Waits until every step of `run` has settled, watching for hung workers (p->mu held). */
static void wait_for_steps(fr_pipeline *p, fr_run *run)
{
    while (run->remaining > 0) {
        /* Wake now and then to look for hung plugins. */
        int64_t tick = fr__mono_us() + 50000;
        struct timespec ts = {.tv_sec = tick / 1000000, .tv_nsec = (tick % 1000000) * 1000};
        pthread_cond_timedwait(&p->done_cv, &p->mu, &ts);
        if (run->remaining > 0)
            watch_for_hangs(p, run, fr__mono_us());
    }
}

/* Runs the pipeline on this thread's terms (opts->run_inline: workers or caller).  `job`:
 * this thread is the driver serving that caller; *handed_over becomes 1 when it was held
 * in a hung plugin and its caller finished the run (the result is the caller's). */
static fr_status run_pipeline(fr_pipeline *p, const fr_run_options *opts, fr_run_result *out,
                              fr_driver_job *job, int *handed_over)
{
    const fr_manifest *m = p->m;
    memset(out, 0, sizeof *out);
    /* The manifest's input is already compact JSON; only a caller's input is parsed. */
    out->input_json = opts->input_json ? normalise_input(opts->input_json)
                                       : strdup(m->input_json ? m->input_json : "{}");
    if (!out->input_json)
        return FR_E_INVALID;
    /* Drawn seeds fit in 53 bits, so every JSON tool reads them back exactly. */
    out->seed = opts->has_seed ? opts->seed : fr__os_random() & ((1ULL << 53) - 1);
    out->lease_key = opts->lease_key ? strdup(opts->lease_key) : NULL;
    out->fencing_token = opts->fencing_token;
    out->executions = opts->executions ? opts->executions : 1;
    if (opts->run_id)
        snprintf(out->run_id, sizeof out->run_id, "%s", opts->run_id);
    else
        make_run_id(out->run_id, sizeof out->run_id, fr__os_random(), fr__os_random());
    out->n_steps = m->n_steps;
    out->steps = calloc(m->n_steps ? m->n_steps : 1, sizeof *out->steps);

    fr_run run = {.p = p, .res = out, .seed = out->seed, .opts = opts, .handover = job};
    run.pending = calloc(m->n_steps ? m->n_steps : 1, sizeof *run.pending);
    run.cancel = fr__cancel_new();
    if (!out->steps || !run.pending || !run.cancel) {
        free(run.pending);
        fr__cancel_unref(run.cancel);
        fr__run_result_free(out);
        return FR_E_NOMEM;
    }
    run.record = opts->record;
    run.cancel->max_effects = opts->max_effects;
    run.replay = opts->replay;
    run.journal = opts->journal;
    out->resumed = run.replay && run.replay->resume;
    fr__run_restore_transitions(&run, fr__replay_transitions(run.replay));
    if (run.replay)
        fr__replay_set_cancel(run.replay, run.cancel);
    run.input = out->input_json;
    run.input_len = strlen(out->input_json);
    run.remaining = m->n_steps;
    out->started_at_us = fr__wall_us();
    run.obs = fr__obs_run_begin(&run); /* observability: run state, trace id */
    int64_t t0 = fr__mono_us();
    run.started_mono = t0;
    /* A replay runs on recorded time: no deadlines of its own (a resumed run has). */
    if (m->run_timeout_us && (!run.replay || run.replay->resume))
        run.cancel->run_deadline_mono = t0 + m->run_timeout_us;

    /* Inline: this thread runs ready steps itself (no hand-off); the workers take the
     * rest of a parallel wave. */
    fr_worker self = {.p = p, .inline_caller = 1};
    int run_inline =
        opts->run_inline != FR_RUN_ON_WORKERS && may_run_inline(p) && watch_inline(p) == 0;
    run.watched = run_inline;
    pthread_mutex_lock(&p->mu);
    p->current = &run;
    if (job)
        job->run = &run;
    p->q_head = p->q_len = 0;
    for (size_t i = 0; i < m->n_steps; i++) {
        run.pending[i] = m->steps[i].n_deps;
        if (run.pending[i] == 0)
            push_job(p, (int)i, NULL);
    }
    if (run_inline) {
        p->inline_worker = &self;
        while (p->q_len > 0 && !self.abandoned)
            run_job(&self, &run, pop_job(p));
    }
    if (self.abandoned && job) {
        /* Back from the hung plugin: the caller has finished the run (or is finishing it)
         * from this thread's frame; leave only after that. */
        while (!run.finalized)
            pthread_cond_wait(&p->done_cv, &p->mu);
        pthread_mutex_unlock(&p->mu);
        callers_held--;
        *handed_over = 1;
        return FR_OK;
    }
    if (p->q_len > 0)
        pthread_cond_signal(&p->work_cv);
    /* Most runs finish within microseconds: yield to the workers for a moment before
     * sleeping, which spares a wake-up per run on a busy machine. */
    for (int64_t until = fr__mono_us() + 50; run.remaining > 0 && fr__mono_us() < until;) {
        pthread_mutex_unlock(&p->mu);
        sched_yield();
        pthread_mutex_lock(&p->mu);
    }
    wait_for_steps(p, &run);
    finish_run(&run);
    if (self.abandoned)
        callers_held--;
    return FR_OK;
}

/* ---- the driver (FR_RUN_ON_DRIVER) ------------------------------------------------------ */

/* A caller due to leave (detach_after_us) within this long leaves at once: a timed sleep
 * that short costs more (a futex call, a wake-up, the driver's mutex fought over) than it
 * can save. */
#define MIN_SLEEP_US 20

/* How long the caller and the driver yield before sleeping at a hand-off (driver_mu held):
 * 50 us while the driver's runs average under 200 us, else not at all. */
static int64_t handoff_yield_us(const fr_pipeline *p)
{
    return p->driver_run_us < 200 ? 50 : 0;
}

static void *driver_main(void *arg)
{
    pthread_setname_np(pthread_self(), "fr-driver");
    fr_pipeline *p = arg;
    pthread_mutex_lock(&p->driver_mu);
    for (;;) {
        /* In a loop of short runs the next one usually comes within 50 us: yield until
         * then rather than be woken, perhaps on the other CPU. */
        for (int64_t until = fr__mono_us() + handoff_yield_us(p);
             !p->driver_job && !p->driver_stop && fr__mono_us() < until;) {
            pthread_mutex_unlock(&p->driver_mu);
            sched_yield();
            pthread_mutex_lock(&p->driver_mu);
        }
        while (!p->driver_job && !p->driver_stop)
            pthread_cond_wait(&p->driver_cv, &p->driver_mu);
        if (!p->driver_job)
            break;
        fr_driver_job *job = p->driver_job;
        p->driver_job = NULL;
        pthread_mutex_unlock(&p->driver_mu);
        fr_run_options o = *job->opts;
        o.run_inline = FR_RUN_ON_CALLER;
        int handed_over = 0;
        fr_status st = run_pipeline(p, &o, job->out, job, &handed_over);
        if (handed_over) {
            /* Replaced; the caller has gone on without this thread (job is gone too). */
            pthread_mutex_lock(&p->mu);
            p->n_hung--;
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        pthread_mutex_lock(&p->driver_mu);
        job->status = st;
        job->done = 1;
        if (job->detached) {
            /* Its caller left: answer it from here (no waiter but, perhaps, a hand-over). */
            pthread_cond_broadcast(&p->driver_cv);
            pthread_mutex_unlock(&p->driver_mu);
            job->opts->on_done(job->opts->detach_ud, st);
            free(job);
        } else {
            /* The waiting caller is woken after the mutex is free, so that it does not wake
             * only to wait for it.  job may be gone once driver_mu is released; p is not (it
             * is freed only after this thread is joined). */
            pthread_mutex_unlock(&p->driver_mu);
            pthread_cond_broadcast(&p->driver_cv);
        }
        pthread_mutex_lock(&p->driver_mu);
    }
    pthread_mutex_unlock(&p->driver_mu);
    return NULL;
}

/* The caller's part of a run whose driver is held in a hung plugin: finish the run without
 * it; the next run gets a new driver. */
static void finish_held_run(fr_pipeline *p, fr_driver_job *job)
{
    pthread_mutex_lock(&p->driver_mu);
    pthread_t held = p->driver;
    p->driver_running = 0;
    pthread_mutex_unlock(&p->driver_mu);
    pthread_detach(held);
    pthread_mutex_lock(&p->mu);
    fr_run *run = job->run;
    wait_for_steps(p, run);
    finish_run(run);
    pthread_mutex_lock(&p->mu);
    run->finalized = 1; /* the driver's frame may go */
    pthread_cond_broadcast(&p->done_cv);
    pthread_mutex_unlock(&p->mu);
}

static fr_status run_on_driver(fr_pipeline *p, const fr_run_options *opts, fr_run_result *out)
{
    /* On the heap: a detached caller leaves before the run is complete. */
    fr_driver_job *job = calloc(1, sizeof *job);
    if (!job)
        return FR_E_NOMEM;
    job->opts = opts;
    job->out = out;
    job->p = p;
    pthread_mutex_lock(&p->driver_mu);
    if (!p->driver_running && !p->driver_stop)
        p->driver_running = pthread_create(&p->driver, NULL, driver_main, p) == 0;
    if (!p->driver_running) {
        pthread_mutex_unlock(&p->driver_mu);
        free(job);
        fr_run_options o = *opts;
        o.run_inline = FR_RUN_ON_WORKERS; /* no thread for a driver: still run */
        o.detach_after_us = 0;
        return run_pipeline(p, &o, out, NULL, NULL);
    }
    p->driver_job = job;
    pthread_cond_signal(&p->driver_cv);
    int64_t start = fr__mono_us();
    /* A short run is often done within 50 us: yield until then before sleeping, which
     * spares the wake-up of a thread that may be on the other CPU.  Not for longer runs:
     * the yielding thread would hold a CPU the run and its servers need. */
    for (int64_t until = start + handoff_yield_us(p);
         !job->done && !job->held && fr__mono_us() < until;) {
        pthread_mutex_unlock(&p->driver_mu);
        sched_yield();
        pthread_mutex_lock(&p->driver_mu);
    }
    int64_t leave_at = opts->detach_after_us > 0 ? start + opts->detach_after_us : 0;
    while (!job->done && !job->held) {
        if (!leave_at) {
            pthread_cond_wait(&p->driver_cv, &p->driver_mu);
            continue;
        }
        if (fr__mono_us() + MIN_SLEEP_US > leave_at) {
            /* Under driver_mu, so neither the driver nor a hand-over can complete the run
             * before the caller has prepared for on_done. */
            opts->on_detach(opts->detach_ud);
            job->detached = 1;
            pthread_mutex_unlock(&p->driver_mu);
            return FR_OK;
        }
        struct timespec ts = {.tv_sec = leave_at / 1000000, .tv_nsec = (leave_at % 1000000) * 1000};
        pthread_cond_timedwait(&p->driver_cv, &p->driver_mu, &ts);
    }
    if (job->done) {
        p->driver_run_us += (fr__mono_us() - start - p->driver_run_us) / 8;
        fr_status st = job->status;
        pthread_mutex_unlock(&p->driver_mu);
        free(job);
        return st;
    }
    /* The driver is held inside a hung plugin; its step carries on on a worker. */
    pthread_mutex_unlock(&p->driver_mu);
    finish_held_run(p, job);
    free(job);
    return FR_OK;
}

fr_status fr__pipeline_run(fr_pipeline *p, const fr_run_options *opts, fr_run_result *out)
{
    if (opts->run_inline == FR_RUN_ON_DRIVER)
        return run_on_driver(p, opts, out);
    return run_pipeline(p, opts, out, NULL, NULL);
}

void fr__pipeline_cancel(fr_pipeline *p)
{
    fr__pipeline_cancel_with(p, FR_E_CANCELLED, NULL);
}

void fr__pipeline_cancel_with(fr_pipeline *p, fr_status reason, const char *message)
{
    pthread_mutex_lock(&p->mu);
    fr_run *run = p->current;
    if (run)
        cancel_locked(p, run, reason, message);
    pthread_mutex_unlock(&p->mu);
}

void fr__run_result_free(fr_run_result *r)
{
    for (size_t i = 0; r->steps && i < r->n_steps; i++) {
        fr_step_result *s = &r->steps[i];
        for (size_t j = 0; j < s->n_attempts; j++) {
            free(s->attempts[j].message);
            json_object_put(s->attempts[j].effects);
            free(s->attempts[j].provider_calls);
            free(s->attempts[j].note);
        }
        free(s->attempts);
        free(s->output);
        free(s->message);
    }
    free(r->steps);
    free(r->input_json);
    for (size_t i = 0; i < r->n_transitions; i++)
        free(r->transitions[i].journaled);
    free(r->transitions);
    free(r->lease_key);
    json_object_put(r->resumed_from);
    memset(r, 0, sizeof *r);
}

void fr__run_result_set_executions(fr_run_result *r, unsigned executions)
{
    r->executions = executions ? executions : 1;
}
