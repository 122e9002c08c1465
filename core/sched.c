/* The scheduler: a fixed pool of worker threads runs steps as soon as their
 * dependencies have succeeded (no level barriers).  A failed step skips its descendants;
 * independent branches finish.  Results are stored per step, so the report's order
 * (topological, manifest order breaking ties) never depends on thread timing. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <json-c/json.h>

#include "duration.h"
#include "pipeline.h"

struct fr_run {
    fr_pipeline *p;
    fr_run_result *res;
    fr_cancel cancel;
    uint64_t seed;
    size_t *pending;               /* unfinished dependencies per step */
    size_t remaining;              /* steps not yet settled */
    const char *input;
    size_t input_len;
    const fr_run_options *opts;
};

/* ---- small helpers ----------------------------------------------------------------- */

typedef struct strbuf {
    char *s;
    size_t len, cap;
    int oom;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_puts(strbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* Appends `s` as a JSON string literal. */
static void sb_json_string(strbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    sb_put(b, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        sb_put(b, run, (size_t)(s - run));
        char esc[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
        if (c == '"' || c == '\\') {
            esc[1] = (char)c;
            esc[2] = 0;
        }
        sb_puts(b, esc);
        run = s + 1;
    }
    sb_put(b, run, (size_t)(s - run));
    sb_put(b, "\"", 1);
}

static char *xstrdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xstrdup_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

/* ---- step execution ------------------------------------------------------------------ */

static fr_attempt_result *add_attempt(fr_step_result *r)
{
    if (r->n_attempts == r->cap_attempts) {
        size_t cap = r->cap_attempts ? r->cap_attempts * 2 : 2;
        fr_attempt_result *a = realloc(r->attempts, cap * sizeof *a);
        if (!a)
            return NULL;
        r->attempts = a;
        r->cap_attempts = cap;
    }
    fr_attempt_result *a = &r->attempts[r->n_attempts++];
    memset(a, 0, sizeof *a);
    return a;
}

/* The step input: {"input": run input, "steps": {dep id: dep output, ...}}, built in
 * one allocation. */
static char *step_input(fr_run *run, int s, size_t *len)
{
    const fr_step_cfg *st = &run->p->m->steps[s];
    size_t need = run->input_len + 32;
    for (size_t i = 0; i < st->n_deps; i++)
        need += 6 * strlen(st->depends_on[i]) + 4 + run->res->steps[st->dep_index[i]].output_len;
    strbuf b = {.s = malloc(need), .cap = need};
    if (!b.s)
        return NULL;
    sb_puts(&b, "{\"input\":");
    sb_put(&b, run->input, run->input_len);
    sb_puts(&b, ",\"steps\":{");
    for (size_t i = 0; i < st->n_deps; i++) {
        const fr_step_result *dr = &run->res->steps[st->dep_index[i]];
        if (i)
            sb_put(&b, ",", 1);
        sb_json_string(&b, st->depends_on[i]);
        sb_put(&b, ":", 1);
        sb_put(&b, dr->output, dr->output_len);
    }
    sb_puts(&b, "}}");
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    *len = b.len;
    return b.s;
}

static void set_failure(fr_step_result *r, fr_status st, char *message)
{
    r->state = FR_STEP_FAILED;
    r->status = st;
    free(r->message);
    r->message = message;
}

/* Runs step `s` to completion (its attempts).  Called without the pool lock. */
static void execute_step(fr_run *run, int s)
{
    fr_pipeline *p = run->p;
    const fr_manifest *m = p->m;
    const fr_step_cfg *st = &m->steps[s];
    const fr_agent_cfg *ac = &m->agents[st->agent_index];
    fr_instance *agent = &p->agents[st->agent_index];
    fr_step_result *r = &run->res->steps[s];
    r->started_us = fr__mono_us();

    /* Refuse to start once the run is cancelled or past its deadline. */
    if (__atomic_load_n(&run->cancel.cancelled, __ATOMIC_ACQUIRE)) {
        set_failure(r, FR_E_CANCELLED, strdup("run cancelled before the step started"));
        return;
    }
    if (run->cancel.run_deadline_mono && r->started_us >= run->cancel.run_deadline_mono) {
        char d[32];
        set_failure(r, FR_E_DEADLINE_EXCEEDED,
                    xstrdup_printf("run deadline (router.run_timeout %s) reached before the "
                                   "step started",
                                   fr__duration_format(m->run_timeout_us, d, sizeof d)));
        return;
    }

    size_t in_len = 0;
    char *input = step_input(run, s, &in_len);
    if (!input) {
        set_failure(r, FR_E_NOMEM, strdup("out of memory building the step input"));
        return;
    }
    int64_t timeout = ac->timeout_us ? ac->timeout_us : m->default_timeout_us;
    /* Retries arrive with the resilience work; the attempt loop is already shaped for it. */
    int max_attempts = 1;
    for (int attempt = 1; attempt <= max_attempts; attempt++) {
        fr_attempt_result *a = add_attempt(r);
        if (!a) {
            set_failure(r, FR_E_NOMEM, strdup("out of memory"));
            break;
        }
        a->attempt = attempt;
        a->agent = ac->id;
        int64_t t0 = fr__mono_us();
        fr_arena arena = {0};
        fr_call call;
        fr__call_init(&call, &run->cancel, agent, st->id, attempt, timeout ? t0 + timeout : 0,
                      run->seed, &arena);
        char *out = NULL;
        size_t out_len = 0;
        fr_status rc = fr__invoke_agent(&call, input, in_len, &out, &out_len);
        /* A plugin that returns after its deadline has still missed it. */
        if (rc == FR_OK && fr__call_check(&call) != FR_OK &&
            fr__call_check(&call) != FR_E_CANCELLED) {
            rc = fr__call_check(&call);
            free(out);
            out = NULL;
        }
        a->duration_us = fr__mono_us() - t0;
        a->status = rc;
        if (rc == FR_OK) {
            r->state = FR_STEP_SUCCEEDED;
            r->status = FR_OK;
            r->output = out;
            r->output_len = out_len;
            r->answered_by = ac->id;
        } else {
            char d[32];
            const char *msg = call.error;
            char *text;
            if (rc == FR_E_TIMEOUT && !msg)
                text = xstrdup_printf("attempt exceeded its %s timeout",
                                      fr__duration_format(timeout, d, sizeof d));
            else if (rc == FR_E_DEADLINE_EXCEEDED && !msg)
                text = xstrdup_printf("run deadline (router.run_timeout %s) reached",
                                      fr__duration_format(m->run_timeout_us, d, sizeof d));
            else
                text = strdup(msg ? msg : fr_strerror(rc));
            a->message = text ? strdup(text) : NULL;
            set_failure(r, rc, text);
        }
        fr__call_done(&call);
        fr__arena_free(&arena);
        if (rc == FR_OK)
            break;
    }
    free(input);
}

/* ---- settling results (pool lock held) ------------------------------------------------ */

static void push_ready(fr_pipeline *p, int s)
{
    if (p->q_len == p->q_cap) {
        /* The ring is sized to the step count, so this cannot overflow. */
        return;
    }
    p->queue[(p->q_head + p->q_len) % p->q_cap] = s;
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
        cr->message = xstrdup_printf("skipped: ancestor \"%s\" failed", p->m->steps[failed].id);
        run->remaining--;
        skip_descendants(run, failed, c);
    }
}

static void settle(fr_run *run, int s)
{
    fr_pipeline *p = run->p;
    fr_step_result *r = &run->res->steps[s];
    r->duration_us = fr__mono_us() - r->started_us;
    run->remaining--;
    if (r->state == FR_STEP_SUCCEEDED) {
        for (size_t i = 0; i < p->n_children[s]; i++) {
            int c = p->children[s][i];
            if (run->res->steps[c].state == FR_STEP_PENDING && --run->pending[c] == 0)
                push_ready(p, c);
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

static void *worker_main(void *arg)
{
    fr_pipeline *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stopping && p->q_len == 0)
            pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->stopping)
            break;
        int s = p->queue[p->q_head];
        p->q_head = (p->q_head + 1) % p->q_cap;
        p->q_len--;
        fr_run *run = p->current;
        run->res->steps[s].state = FR_STEP_RUNNING;
        /* More ready work than this worker: wake another one. */
        if (p->q_len > 0)
            pthread_cond_signal(&p->work_cv);
        pthread_mutex_unlock(&p->mu);

        report_progress(run, s);
        execute_step(run, s);
        report_progress(run, s);

        pthread_mutex_lock(&p->mu);
        settle(run, s);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int fr__pool_start(fr_pipeline *p)
{
    size_t n = p->m->worker_pool_size > 0 ? (size_t)p->m->worker_pool_size : 1;
    /* More workers than steps can never be busy at once. */
    if (n > p->m->n_steps && p->m->n_steps > 0)
        n = p->m->n_steps;
    p->q_cap = p->m->n_steps ? p->m->n_steps : 1;
    p->queue = calloc(p->q_cap, sizeof *p->queue);
    p->threads = calloc(n, sizeof *p->threads);
    if (!p->queue || !p->threads)
        return -1;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->progress_mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, &attr);
    pthread_condattr_destroy(&attr);
    for (size_t i = 0; i < n; i++) {
        if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0)
            return -1;
        p->n_threads++;
    }
    return 0;
}

void fr__pool_stop(fr_pipeline *p)
{
    if (!p->threads) {
        free(p->queue);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
    free(p->queue);
    p->threads = NULL;
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->done_cv);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->progress_mu);
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

static uint64_t os_random(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v)
        v = (uint64_t)fr__mono_us() * 0x9e3779b97f4a7c15ULL;
    return v;
}

/* Validates and compacts the run input: one JSON value. */
static char *normalise_input(const char *text)
{
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return NULL;
    size_t len = strlen(text);
    json_object *o = json_tokener_parse_ex(tok, text, (int)len);
    size_t end = json_tokener_get_parse_end(tok);
    int ok = json_tokener_get_error(tok) == json_tokener_success;
    json_tokener_free(tok);
    while (ok && end < len && strchr(" \t\r\n", text[end]))
        end++;
    char *out = NULL;
    if (ok && end == len)
        out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return out;
}

fr_status fr__pipeline_run(fr_pipeline *p, const fr_run_options *opts, fr_run_result *out)
{
    const fr_manifest *m = p->m;
    memset(out, 0, sizeof *out);
    /* The manifest's input is already compact JSON; only a caller's input is parsed. */
    out->input_json = opts->input_json ? normalise_input(opts->input_json)
                                       : strdup(m->input_json ? m->input_json : "{}");
    if (!out->input_json)
        return FR_E_INVALID;
    out->seed = opts->has_seed ? opts->seed : os_random();
    make_run_id(out->run_id, sizeof out->run_id, os_random(), os_random());
    out->n_steps = m->n_steps;
    out->steps = calloc(m->n_steps ? m->n_steps : 1, sizeof *out->steps);

    fr_run run = {.p = p, .res = out, .seed = out->seed, .opts = opts};
    run.pending = calloc(m->n_steps ? m->n_steps : 1, sizeof *run.pending);
    if (!out->steps || !run.pending || fr__cancel_init(&run.cancel) != 0) {
        free(run.pending);
        fr__run_result_free(out);
        return FR_E_NOMEM;
    }
    run.input = out->input_json;
    run.input_len = strlen(out->input_json);
    run.remaining = m->n_steps;
    out->started_at_us = fr__wall_us();
    int64_t t0 = fr__mono_us();
    if (m->run_timeout_us)
        run.cancel.run_deadline_mono = t0 + m->run_timeout_us;

    pthread_mutex_lock(&p->mu);
    p->current = &run;
    p->q_head = p->q_len = 0;
    for (size_t i = 0; i < m->n_steps; i++) {
        run.pending[i] = m->steps[i].n_deps;
        if (run.pending[i] == 0)
            push_ready(p, (int)i);
    }
    if (p->q_len > 0)
        pthread_cond_signal(&p->work_cv);
    while (run.remaining > 0)
        pthread_cond_wait(&p->done_cv, &p->mu);
    p->current = NULL;
    pthread_mutex_unlock(&p->mu);

    out->finished_at_us = fr__wall_us();
    out->status = FR_RUN_SUCCEEDED;
    for (size_t i = 0; i < m->n_steps; i++)
        if (out->steps[i].state != FR_STEP_SUCCEEDED)
            out->status = FR_RUN_FAILED;
    if (run.cancel.cancelled)
        out->status = FR_RUN_CANCELLED;
    fr__cancel_destroy(&run.cancel);
    free(run.pending);
    return FR_OK;
}

void fr__pipeline_cancel(fr_pipeline *p)
{
    pthread_mutex_lock(&p->mu);
    fr_run *run = p->current;
    if (run)
        fr__cancel_fire(&run->cancel);
    pthread_mutex_unlock(&p->mu);
}

void fr__run_result_free(fr_run_result *r)
{
    for (size_t i = 0; r->steps && i < r->n_steps; i++) {
        fr_step_result *s = &r->steps[i];
        for (size_t j = 0; j < s->n_attempts; j++)
            free(s->attempts[j].message);
        free(s->attempts);
        free(s->output);
        free(s->message);
    }
    free(r->steps);
    free(r->input_json);
    memset(r, 0, sizeof *r);
}
