/* The engine's observability hooks: a run, its steps, attempts and breaker transitions,
 * translated into the sinks of core/observe/ (metrics, invocation log, spans).
 *
 * Span ids are derived, not stored: a traced run draws a trace id and a 64-bit seed, and
 * the span id of a step or an attempt is a hash of the seed with the step id, agent id
 * and attempt number (core/observe/observe.c).  A provider call (a child of its attempt,
 * core/host/call_observe.c) and an HTTP request's traceparent (made while the attempt
 * runs) therefore know their parent without the attempt having to exist as an object
 * first.  Spans are built when they end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/pipeline.h"
#include "engine/run_observe.h"
#include "host/breaker.h"
#include "observe/obs_impl.h"

static fr_metric_series *plugins_loaded;

static int breaker_gauge(fr_breaker_state s)
{
    return s == FR_BREAKER_OPEN ? 2 : s == FR_BREAKER_HALF_OPEN ? 1 : 0;
}

static void breaker_gauge_set(const char *ns, const fr_breaker *b, fr_breaker_state state)
{
    const char *labels[] = {ns, fr__breaker_name(b)};
    fr__metric_set(fr__metric_series(FR_M_CIRCUIT_STATE, labels), breaker_gauge(state));
}

struct fr_obs_run *fr__obs_run_begin(fr_run *run)
{
    fr__obs_init();
    const fr_pipeline *p = run->p;
    const fr_manifest *m = p->m;
    struct fr_obs_run *o = calloc(1, sizeof *o + m->n_agents * sizeof(fr_obs_agent_cache));
    if (!o)
        return NULL;
    o->ns = m->namespace_ ? m->namespace_ : "default";
    o->n_agents = m->n_agents;
    fr__metric_set(fr__obs_cached(&plugins_loaded, FR_M_PLUGINS_LOADED, NULL),
                   (int64_t)fr__loader_count(p->loader));
    for (size_t i = 0; i < m->n_agents; i++)
        if (p->agents[i].breaker)
            breaker_gauge_set(o->ns, p->agents[i].breaker, fr__breaker_state(p->agents[i].breaker));
    for (size_t i = 0; i < m->n_providers; i++)
        if (p->providers[i].breaker)
            breaker_gauge_set(o->ns, p->providers[i].breaker,
                              fr__breaker_state(p->providers[i].breaker));
    if (fr__otel_enabled()) {
        o->traced = 1;
        o->seed = fr__os_random();
        if (fr__obs_traceparent_parse(run->opts->traceparent, o->trace_id, &o->parent_span) != 0) {
            uint64_t a = fr__os_random(), b = fr__os_random();
            memcpy(o->trace_id, &a, 8);
            memcpy(o->trace_id + 8, &b, 8);
            o->parent_span = 0;
        }
    }
    return o;
}

/* Adds trace_id and span_id to a log line of a traced run. */
static void log_trace_ids(json_object *o, const struct fr_obs_run *obs, uint64_t span)
{
    if (!obs->traced)
        return;
    char t[33], s[17];
    fr__obs_hex_id(obs->trace_id, 16, t);
    snprintf(s, sizeof s, "%016llx", (unsigned long long)span);
    json_object_object_add(o, "trace_id", json_object_new_string(t));
    json_object_object_add(o, "span_id", json_object_new_string(s));
}

static void add_scrubbed(json_object *o, const char *key, const char *text)
{
    char *s = fr__obs_scrub(text);
    json_object_object_add(o, key, s ? json_object_new_string(s) : NULL);
    free(s);
}

void fr__obs_run_end(fr_run *run)
{
    struct fr_obs_run *o = run->obs;
    if (!o)
        return;
    run->obs = NULL;
    const fr_run_result *res = run->res;
    const char *status = fr__run_status_name(res->status);
    const char *labels[] = {o->ns, status};
    fr__metric_count(FR_M_RUNS, labels, 1);
    int level = res->status == FR_RUN_SUCCEEDED ? FR_LOG_INFO : FR_LOG_WARN;
    if (fr__oblog_enabled(level)) {
        json_object *l = json_object_new_object();
        json_object_object_add(l, "event", json_object_new_string("run"));
        json_object_object_add(l, "run_id", json_object_new_string(res->run_id));
        json_object_object_add(l, "namespace", json_object_new_string(o->ns));
        json_object_object_add(l, "status", json_object_new_string(status));
        json_object_object_add(l, "steps", json_object_new_int64((int64_t)res->n_steps));
        json_object_object_add(l, "duration_us",
                               json_object_new_int64(res->finished_at_us - res->started_at_us));
        log_trace_ids(l, o, fr__obs_run_span(o));
        fr__oblog_write(level, l);
    }
    if (o->traced && fr__span_wanted()) {
        fr_span *s = fr__span_new(o->trace_id, fr__obs_run_span(o), o->parent_span, "fluxroute run",
                                  1, res->started_at_us, res->finished_at_us);
        fr__span_attr_str(s, "fluxroute.run_id", res->run_id);
        fr__span_attr_str(s, "fluxroute.namespace", o->ns);
        fr__span_attr_str(s, "fluxroute.status", status);
        fr__span_attr_int(s, "fluxroute.steps", (int64_t)res->n_steps);
        if (run->replay)
            fr__span_attr_str(s, "fluxroute.replay", "true");
        fr__span_status(s, res->status != FR_RUN_SUCCEEDED, status);
        fr__span_submit(s);
    }
    free(o);
}

void fr__obs_attempt_end(fr_run *run, int step, int agent)
{
    struct fr_obs_run *o = run->obs;
    const fr_step_result *r = &run->res->steps[step];
    if (!o || r->n_attempts == 0 || agent < 0 || (size_t)agent >= o->n_agents)
        return;
    const fr_attempt_result *a = &r->attempts[r->n_attempts - 1];
    const char *step_id = run->p->m->steps[step].id;
    fr_error_class cls = a->status == FR_OK ? FR_CLASS_NONE : fr_status_class(a->status);
    if ((unsigned)cls >= FR_CLASS_COUNT_)
        cls = FR_CLASS_INTERNAL;
    const char *status = a->status == FR_OK ? "succeeded" : "failed";
    fr_obs_agent_cache *ac = &o->agents[agent];
    /* Hot path: two atomic adds on series resolved once per run and agent. */
    fr_metric_series *ms = __atomic_load_n(&ac->attempts[cls], __ATOMIC_ACQUIRE);
    if (!ms || (a->attempt > 1 && !__atomic_load_n(&ac->retries, __ATOMIC_ACQUIRE))) {
        const char *labels[] = {o->ns, a->agent, status, fr_class_name(cls)};
        ms = fr__obs_cached(&ac->attempts[cls], FR_M_STEP_ATTEMPTS, labels);
        if (a->attempt > 1)
            fr__obs_cached(&ac->retries, FR_M_RETRIES, labels);
    }
    fr__metric_add(ms, 1);
    if (a->attempt > 1)
        fr__metric_add(ac->retries, 1);

    int has_call = fr__obs_tl.has_call;
    fr__obs_tl.has_call = 0;
    int level = a->status == FR_OK ? FR_LOG_INFO : FR_LOG_WARN;
    int want_span = o->traced && fr__span_wanted(), want_log = fr__oblog_enabled(level);
    if (!want_span && !want_log)
        return;
    uint64_t span = o->traced ? fr__obs_attempt_span(o, step_id, a->agent, a->attempt) : 0;

    if (want_log) {
        /* Model and tokens: from this attempt's provider calls, else from its output. */
        fr_obs_usage u = {.input_tokens = -1, .output_tokens = -1};
        if (has_call)
            u = fr__obs_tl.usage;
        else if (a->status == FR_OK && r->output)
            fr__obs_scan_usage(r->output, r->output_len, &u);
        json_object *l = json_object_new_object();
        json_object_object_add(l, "event", json_object_new_string("attempt"));
        json_object_object_add(l, "run_id", json_object_new_string(run->res->run_id));
        json_object_object_add(l, "namespace", json_object_new_string(o->ns));
        json_object_object_add(l, "step", json_object_new_string(step_id));
        json_object_object_add(l, "agent", json_object_new_string(a->agent));
        json_object_object_add(l, "attempt", json_object_new_int(a->attempt));
        json_object_object_add(l, "status", json_object_new_string(status));
        json_object_object_add(
            l, "class", a->status == FR_OK ? NULL : json_object_new_string(fr_class_name(cls)));
        json_object_object_add(l, "duration_us", json_object_new_int64(a->duration_us));
        json_object_object_add(l, "backoff_us", json_object_new_int64(a->backoff_us));
        if (a->message)
            add_scrubbed(l, "message", a->message);
        if (u.provider[0])
            add_scrubbed(l, "provider", u.provider);
        if (u.model[0])
            add_scrubbed(l, "model", u.model);
        if (u.input_tokens >= 0 || u.output_tokens >= 0) {
            json_object *t = json_object_new_object();
            json_object_object_add(t, "input",
                                   json_object_new_int64(u.input_tokens > 0 ? u.input_tokens : 0));
            json_object_object_add(
                t, "output", json_object_new_int64(u.output_tokens > 0 ? u.output_tokens : 0));
            json_object_object_add(l, "tokens", t);
        }
        log_trace_ids(l, o, span);
        fr__oblog_write(level, l);
    }
    if (want_span) {
        int64_t end = fr__wall_us();
        char name[160];
        snprintf(name, sizeof name, "attempt %s", a->agent);
        fr_span *s = fr__span_new(o->trace_id, span, fr__obs_step_span(o, step_id), name, 1,
                                  end - a->duration_us, end);
        fr__span_attr_str(s, "fluxroute.step", step_id);
        fr__span_attr_str(s, "fluxroute.agent", a->agent);
        fr__span_attr_int(s, "fluxroute.attempt", a->attempt);
        fr__span_attr_str(s, "fluxroute.status", status);
        if (a->status != FR_OK)
            fr__span_attr_str(s, "fluxroute.error_class", fr_class_name(cls));
        fr__span_attr_int(s, "fluxroute.backoff_us", a->backoff_us);
        fr__span_status(s, a->status != FR_OK, a->message);
        fr__span_submit(s);
    }
}

void fr__obs_step_end(fr_run *run, int step)
{
    struct fr_obs_run *o = run->obs;
    if (!o)
        return;
    const fr_step_cfg *st = &run->p->m->steps[step];
    const fr_step_result *r = &run->res->steps[step];
    int ok = r->state == FR_STEP_SUCCEEDED;
    if (st->agent_index >= 0 && (size_t)st->agent_index < o->n_agents) {
        fr_obs_agent_cache *ac = &o->agents[st->agent_index];
        fr_metric_series *ms = __atomic_load_n(&ac->steps[!ok], __ATOMIC_ACQUIRE);
        if (!ms) {
            const char *labels[] = {o->ns, run->p->m->agents[st->agent_index].id,
                                    ok ? "succeeded" : "failed"};
            ms = fr__obs_cached(&ac->steps[!ok], FR_M_STEP_DURATION, labels);
        }
        fr__metric_observe_us(ms, r->duration_us);
    }
    if (o->traced && fr__span_wanted()) {
        int64_t end = fr__wall_us();
        char name[160];
        snprintf(name, sizeof name, "step %s", st->id);
        fr_span *s = fr__span_new(o->trace_id, fr__obs_step_span(o, st->id), fr__obs_run_span(o),
                                  name, 1, end - r->duration_us, end);
        fr__span_attr_str(s, "fluxroute.step", st->id);
        fr__span_attr_str(s, "fluxroute.status", fr__step_state_name(r->state));
        fr__span_attr_int(s, "fluxroute.attempts", (int64_t)r->n_attempts);
        if (r->answered_by)
            fr__span_attr_str(s, "fluxroute.answered_by", r->answered_by);
        fr__span_status(s, !ok, r->message);
        fr__span_submit(s);
    }
}

void fr__obs_breaker_transition(fr_run *run, const char *breaker, const fr_breaker_transition *tr)
{
    const char *ns = run->p->m->namespace_ ? run->p->m->namespace_ : "default";
    const char *from = fr__breaker_state_name(tr->from), *to = fr__breaker_state_name(tr->to);
    const char *gl[] = {ns, breaker};
    fr__metric_set(fr__metric_series(FR_M_CIRCUIT_STATE, gl), breaker_gauge(tr->to));
    const char *tl_[] = {ns, breaker, from, to};
    fr__metric_count(FR_M_CIRCUIT_TRANSITIONS, tl_, 1);
    if (fr__oblog_enabled(FR_LOG_WARN)) {
        json_object *l = json_object_new_object();
        json_object_object_add(l, "event", json_object_new_string("breaker"));
        json_object_object_add(l, "run_id", json_object_new_string(run->res->run_id));
        json_object_object_add(l, "namespace", json_object_new_string(ns));
        json_object_object_add(l, "breaker", json_object_new_string(breaker));
        json_object_object_add(l, "from", json_object_new_string(from));
        json_object_object_add(l, "to", json_object_new_string(to));
        json_object_object_add(l, "reason", json_object_new_string(tr->reason ? tr->reason : ""));
        fr__oblog_write(FR_LOG_WARN, l);
    }
}
