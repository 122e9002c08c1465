/* One step's execution: attempts with retries and backoff, the agent's circuit breaker,
 * fallback agents, and the run deadline bounding all of them. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/duration.h"
#include "host/effects.h"
#include "host/journal_sink.h"
#include "plugin/isolate.h"
#include "base/json_check.h"
#include "lease/lease.h"
#include "engine/run_observe.h"
#include "engine/pipeline.h"
#include "plugin/quarantine.h"
#include "engine/retry.h"

fr_attempt_result *fr__step_add_attempt(fr_step_result *r)
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

/* ---- step input ---------------------------------------------------------------------- */

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

fr_step_exec *fr__step_exec_new(fr_run *run, int step)
{
    const fr_step_cfg *st = &run->p->m->steps[step];
    /* {"input": run input, "steps": {dep id: dep output, ...}} in one allocation. */
    size_t need = run->input_len + 32;
    for (size_t i = 0; i < st->n_deps; i++)
        need += 6 * strlen(st->depends_on[i]) + 4 + run->res->steps[st->dep_index[i]].output_len;
    fr_step_exec *x = calloc(1, sizeof *x);
    char *buf = malloc(need);
    if (!x || !buf) {
        free(x);
        free(buf);
        return NULL;
    }
    char *p = put(buf, "{\"input\":", 9);
    p = put(p, run->input, run->input_len);
    p = put(p, ",\"steps\":{", 10);
    for (size_t i = 0; i < st->n_deps; i++) {
        const fr_step_result *dr = &run->res->steps[st->dep_index[i]];
        if (i)
            *p++ = ',';
        p = fr__json_put_string(p, st->depends_on[i]);
        *p++ = ':';
        p = put(p, dr->output, dr->output_len);
    }
    p = put(p, "}}", 2);
    *p = '\0';
    x->step = step;
    x->input = buf;
    x->input_len = (size_t)(p - buf);
    return x;
}

void fr__step_exec_free(fr_step_exec *x)
{
    if (x) {
        free(x->input);
        free(x);
    }
}

/* ---- attempts ------------------------------------------------------------------------- */

/* The agent at position `pos` of the step's chain (its agent, then its fallbacks), or -1. */
static int chain_agent(const fr_manifest *m, const fr_step_cfg *st, int pos)
{
    if (pos == 0)
        return st->agent_index;
    const fr_agent_cfg *a = &m->agents[st->agent_index];
    return (size_t)(pos - 1) < a->n_fallback ? a->fallback_index[pos - 1] : -1;
}

static void fail_step(fr_step_result *r, fr_status st, char *message)
{
    r->state = FR_STEP_FAILED;
    r->status = st;
    free(r->message);
    r->message = message;
}

/* Streamed provider text, passed on to the run's token sink with the step's id. */
static void forward_token(void *ud, const char *text, size_t len)
{
    fr_call *call = ud;
    const fr_run_options *o = call->run->opts;
    call->chunks++;
    o->on_token(o->token_ud, call->step_id, text, len);
}

/* ---- the journal ------------------------------------------------------------------------ */

/* An effect the engine records itself (a breaker admission, a late result). */
static void journal_effect(fr_run *run, const char *step, size_t index, json_object *e)
{
    if (!run->journal || !e)
        return;
    json_object *j = fr__journal_entry("effect", step, (long)index);
    if (j)
        json_object_object_add(j, "effect", json_object_get(e));
    fr__journal_put(run->journal, run->cancel, j, FR_JOURNAL_EFFECT);
}

static void journal_attempt_begin(fr_run *run, const char *step, size_t index,
                                  const fr_attempt_result *a)
{
    if (!run->journal)
        return;
    json_object *j = fr__journal_entry("attempt", step, (long)index);
    if (j) {
        json_object_object_add(j, "attempt", json_object_new_int(a->attempt));
        json_object_object_add(j, "agent", json_object_new_string(a->agent));
        json_object_object_add(j, "backoff_us", json_object_new_int64(a->backoff_us));
    }
    fr__journal_put(run->journal, run->cancel, j, FR_JOURNAL_EFFECT);
}

static void journal_attempt_end(fr_run *run, const char *step, size_t index,
                                const fr_attempt_result *a)
{
    if (!run->journal)
        return;
    json_object *j = fr__journal_entry("attempt_end", step, (long)index);
    if (j) {
        json_object_object_add(j, "status", fr__status_json(a->status));
        json_object_object_add(j, "message",
                               a->message ? json_object_new_string(a->message) : NULL);
        json_object_object_add(j, "duration_us", json_object_new_int64(a->duration_us));
        json_object_object_add(j, "streamed", json_object_new_int(a->streamed));
        json_object_object_add(j, "note", a->note ? json_object_new_string(a->note) : NULL);
    }
    fr__journal_put(run->journal, run->cancel, j, FR_JOURNAL_EFFECT);
}

/* Runs one attempt of `agent` (an in-process call; hang-watched).  Fills attempt record
 * r->attempts[ai].  Returns 1 when the watchdog abandoned this worker meanwhile. */
static int run_attempt(fr_worker *w, fr_run *run, fr_step_exec *x, fr_instance *agent, size_t ai,
                       int64_t timeout)
{
    fr_pipeline *p = run->p;
    const fr_step_cfg *st = &p->m->steps[x->step];
    fr_step_result *r = &run->res->steps[x->step];
    int64_t t0 = fr__mono_us();
    /* A replay runs on recorded time: timeouts come back as recorded effects. */
    int64_t deadline =
        timeout && !(run->replay && fr__replay_whole_attempt(&x->cursor)) ? t0 + timeout : 0;
    fr_arena arena = {0};
    fr_call call;
    fr__call_init(&call, run->cancel, agent, st->id, r->attempts[ai].attempt, deadline, run->seed,
                  &arena);
    call.run = run;
    call.note_transition = fr__run_note_transition;
    call.obs = &run->obs;
    call.effects = run->record ? json_object_new_array() : NULL;
    if (run->opts->on_token) {
        call.on_chunk = forward_token;
        call.chunk_ud = &call;
    }
    call.replay = run->replay ? &x->cursor : NULL;
    call.journal = run->journal;
    call.attempt_index = ai;
    call.run_id = run->res->run_id;
    /* Billing counts what the host saw the provider report (a replay reaches no vendor
     * and records no calls, only the attempt's note). */
    fr_call_usage usage = {0};
    call.usage = &usage;
    call.quota = run->opts ? run->opts->quota : NULL;

    char *out = NULL;
    size_t out_len = 0;
    fr_status rc;
    int abandoned = 0;
    const char *quarantine = NULL;
    if (agent->agent_cfg->isolation == FR_ISOLATION_PROCESS) {
        /* The helper is killed at the deadline: this thread never hangs. */
        rc = fr__isolated_invoke(&call, x->input, x->input_len, &out, &out_len);
    } else if (fr__plugin_quarantined(agent->plugin->path, &quarantine)) {
        /* Its calls have hung too often: no more threads for it in this process. */
        fr__host_api()->set_error(&call, "%s", quarantine);
        rc = FR_E_UNAVAILABLE;
    } else {
        /* Let the watchdog see this call: past its deadline plus a grace period it is
         * hung. */
        int64_t hang_at = deadline, run_dl = run->cancel->run_deadline_mono;
        if (run_dl && (!hang_at || run_dl < hang_at))
            hang_at = run_dl;
        pthread_mutex_lock(&p->mu);
        w->busy = 1;
        w->hang_at = hang_at ? hang_at + FR_HANG_GRACE_US : 0;
        w->run = run;
        w->exec = x;
        w->attempt_index = ai;
        w->plugin = agent->plugin;
        pthread_mutex_unlock(&p->mu);

        rc = fr__invoke_agent(&call, x->input, x->input_len, &out, &out_len);

        pthread_mutex_lock(&p->mu);
        abandoned = w->abandoned;
        w->busy = 0;
        pthread_mutex_unlock(&p->mu);
        if (abandoned)
            fr__abandoned_returned();
    }
    if (abandoned) {
        /* The watchdog closed this attempt without us: its calls are not billed. */
        free(out);
        free(usage.calls);
        free(usage.note);
        json_object_put(call.effects);
        fr__host_leases_end_call(&call);
        fr__call_done(&call);
        fr__arena_free(&arena);
        fr__cancel_unref(call.cancel);
        return 1;
    }

    /* A plugin that returns after its deadline has still missed it. */
    fr_status late = FR_OK;
    if (call.replay &&
        (fr__replay_whole_attempt(call.replay) || call.replay->pos < call.replay->n_recorded)) {
        late = fr__replay_attempt_end(call.replay, rc);
    } else {
        if (call.replay) /* a resumed attempt that made no effect live still went live */
            (void)fr__replay_serving(call.replay);
        late = fr__call_check(&call);
        if (late == FR_E_CANCELLED || rc != FR_OK)
            late = FR_OK;
        if (late != FR_OK && call.effects) {
            json_object *e = fr__effect_new("late");
            json_object_object_add(e, "status", fr__status_json(late));
            json_object_array_add(call.effects, e);
            journal_effect(run, st->id, ai, e);
        }
    }
    if (late != FR_OK) {
        rc = late;
        free(out);
        out = NULL;
    }
    char *too_big = NULL;
    size_t cap = run->opts ? run->opts->max_output_bytes : 0;
    if (rc == FR_OK && cap) {
        /* Outputs feed the inputs of the steps after them: a chain of steps that each
         * pass on what they were given grows quadratically without this bound. */
        size_t held = atomic_fetch_add(&run->output_bytes, out_len) + out_len;
        if (held > cap) {
            atomic_fetch_sub(&run->output_bytes, out_len);
            too_big = fr__xasprintf("the step's output of %zu bytes would bring the run's "
                                    "outputs to %zu bytes, past this server's bound of %zu "
                                    "(max_run_bytes)",
                                    out_len, held, cap);
            rc = FR_E_BAD_REQUEST;
            free(out);
            out = NULL;
        }
    }
    fr_attempt_result *a = &r->attempts[ai];
    a->streamed = call.chunks;
    a->provider_calls = usage.calls;
    a->n_provider_calls = usage.n;
    free(a->note);
    a->note = usage.note;
    if (call.effects) {
        /* After what the engine recorded before the call (its breaker admission). */
        if (!a->effects)
            a->effects = json_object_new_array();
        for (size_t i = 0; i < json_object_array_length(call.effects); i++)
            json_object_array_add(a->effects,
                                  json_object_get(json_object_array_get_idx(call.effects, i)));
        json_object_put(call.effects);
    }
    a->duration_us = fr__mono_us() - t0;
    a->status = rc;
    x->retry_after_us = call.retry_after_us;
    a->retry_after_us = call.retry_after_us;
    if (rc == FR_OK) {
        free(r->output);
        r->output = out;
        r->output_len = out_len;
    } else {
        char d[32];
        if (too_big)
            a->message = too_big, too_big = NULL;
        else if (call.error)
            a->message = strdup(call.error);
        else if (rc == FR_E_TIMEOUT)
            a->message = fr__xasprintf("attempt exceeded its %s timeout",
                                       fr__duration_format(timeout, d, sizeof d));
        else if (rc == FR_E_DEADLINE_EXCEEDED)
            a->message = fr__xasprintf("run deadline (router.run_timeout %s) reached",
                                       fr__duration_format(p->m->run_timeout_us, d, sizeof d));
        else
            a->message = strdup(fr_strerror(rc));
        /* Stopped by the run's cancellation (a lost lease, a bound): say why, whatever
         * the plugin said. */
        const char *why = run->cancel->reason_message;
        if (run->cancel->cancelled && rc == run->cancel->reason && why && a->message &&
            !strstr(a->message, why)) {
            char *m = fr__xasprintf("%s: %s", a->message, why);
            if (m) {
                free(a->message);
                a->message = m;
            }
        }
    }
    fr__host_leases_end_call(&call);
    fr__call_done(&call);
    fr__arena_free(&arena);
    return 0;
}

/* ---- breaker transitions ------------------------------------------------------------- */

void fr__run_note_transition(fr_run *run, const char *step, int attempt, const char *breaker,
                             const fr_breaker_transition *tr)
{
    if (!run)
        return;
    fr_pipeline *p = run->p;
    fr_run_result *res = run->res;
    pthread_mutex_lock(&p->mu);
    if (res->n_transitions == res->cap_transitions) {
        size_t cap = res->cap_transitions ? res->cap_transitions * 2 : 4;
        fr_transition_record *t = realloc(res->transitions, cap * sizeof *t);
        if (!t) {
            pthread_mutex_unlock(&p->mu);
            return;
        }
        res->transitions = t;
        res->cap_transitions = cap;
    }
    fr_transition_record *t = &res->transitions[res->n_transitions++];
    t->step = fr__manifest_step_index(p->m, step);
    t->attempt = attempt;
    t->breaker = breaker;
    t->from = fr__breaker_state_name(tr->from);
    t->to = fr__breaker_state_name(tr->to);
    t->reason = tr->reason;
    t->seq = run->transition_seq++;
    t->journaled = NULL;
    pthread_mutex_unlock(&p->mu);
    if (run->journal) {
        json_object *j = fr__journal_entry("transition", step, -1);
        if (j) {
            json_object_object_add(j, "attempt", json_object_new_int(attempt));
            json_object_object_add(j, "breaker", json_object_new_string(breaker));
            json_object_object_add(j, "from",
                                   json_object_new_string(fr__breaker_state_name(tr->from)));
            json_object_object_add(j, "to", json_object_new_string(fr__breaker_state_name(tr->to)));
            json_object_object_add(j, "reason", json_object_new_string(tr->reason));
        }
        fr__journal_put(run->journal, run->cancel, j, FR_JOURNAL_EFFECT);
    }
    fr__obs_breaker_transition(run, breaker, tr); /* observability */
}

/* A string member of a journaled transition ("" when absent). */
static const char *transition_member(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : "";
}

void fr__run_restore_transitions(fr_run *run, json_object *journaled)
{
    size_t n = journaled ? json_object_array_length(journaled) : 0;
    fr_run_result *res = run->res;
    if (n == 0)
        return;
    fr_transition_record *t = realloc(res->transitions, (res->n_transitions + n) * sizeof *t);
    if (!t)
        return;
    res->transitions = t;
    res->cap_transitions = res->n_transitions + n;
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(journaled, i), *v;
        const char *f[4] = {transition_member(o, "breaker"), transition_member(o, "from"),
                            transition_member(o, "to"), transition_member(o, "reason")};
        size_t len[4], total = 0;
        for (int k = 0; k < 4; k++)
            total += (len[k] = strlen(f[k])) + 1;
        char *text = malloc(total), *w = text;
        if (!text)
            return;
        fr_transition_record *r = &res->transitions[res->n_transitions++];
        const char **dst[4] = {&r->breaker, &r->from, &r->to, &r->reason};
        for (int k = 0; k < 4; k++) {
            memcpy(w, f[k], len[k] + 1);
            *dst[k] = w;
            w += len[k] + 1;
        }
        r->journaled = text;
        const char *step =
            json_object_object_get_ex(o, "step", &v) && v ? json_object_get_string(v) : NULL;
        r->step = step ? fr__manifest_step_index(run->p->m, step) : -1;
        r->attempt = json_object_object_get_ex(o, "attempt", &v) ? json_object_get_int(v) : 0;
        r->seq = run->transition_seq++; /* before the live ones */
    }
}

static void note_agent_transition(fr_run *run, const fr_step_cfg *st, int attempt,
                                  fr_instance *agent, const fr_breaker_transition *tr)
{
    fr__run_note_transition(run, st->id, attempt, fr__breaker_name(agent->breaker), tr);
}

/* The agent breaker's admission for attempt `a`: live (recorded as an effect), or from
 * the recording.  Unavailable fills why. */
static fr_admission agent_admission(fr_run *run, fr_step_exec *x, const fr_step_cfg *st,
                                    fr_instance *agent, fr_attempt_result *a, char *why,
                                    size_t why_size)
{
    if (run->replay && fr__replay_serving(&x->cursor))
        return (fr_admission)fr__replay_admission(&x->cursor, why, why_size);
    fr_breaker_transition tr;
    int changed = 0;
    fr_admission adm =
        fr__breaker_admit(agent->breaker, fr__mono_us(), &tr, &changed, why, why_size);
    if (changed)
        note_agent_transition(run, st, a->attempt, agent, &tr);
    if (a->effects) {
        json_object *e = fr__breaker_effect(fr__breaker_name(agent->breaker), adm, why);
        if (e) {
            json_object_array_add(a->effects, e);
            journal_effect(run, st->id, (size_t)(a - run->res->steps[x->step].attempts), e);
        }
    }
    return adm;
}

int fr__step_drive(fr_worker *w, fr_run *run, fr_step_exec *x)
{
    fr_pipeline *p = run->p;
    const fr_manifest *m = p->m;
    const fr_step_cfg *st = &m->steps[x->step];
    fr_step_result *r = &run->res->steps[x->step];
    char d1[32], d2[32];

    for (;;) {
        int ai = chain_agent(m, st, x->chain_pos);
        if (ai < 0)
            return 0; /* chain exhausted: r holds the last failure */
        fr_instance *agent = &p->agents[ai];
        const fr_agent_cfg *ac = &m->agents[ai];

        if (!x->resume && run->replay) {
            /* The replay's cursor moves to the recorded attempt, or the recording stops
             * the step here (or the replay diverges). */
            fr_status stop;
            char *why;
            if (fr__replay_attempt_begin(run->replay, &x->cursor, st->id, r->n_attempts,
                                         x->attempt + 1, ac->id, &stop, &why)) {
                fail_step(r, stop, why);
                return 0;
            }
        }
        if (!x->resume) {
            int64_t now = fr__mono_us();
            int64_t run_deadline = run->cancel->run_deadline_mono;
            if (__atomic_load_n(&run->cancel->cancelled, __ATOMIC_ACQUIRE)) {
                fr_status why = fr__cancel_reason(run->cancel);
                const char *rm = run->cancel->reason_message;
                fail_step(r, why,
                          fr__xasprintf("%s before the %s%s%s",
                                        why == FR_E_CANCELLED ? "run cancelled" : fr_strerror(why),
                                        r->n_attempts ? "next attempt" : "step started",
                                        rm ? ": " : "", rm ? rm : ""));
                return 0;
            }
            int64_t backoff = 0;
            if (x->attempt > 0) {
                backoff = fr__backoff_delay(&ac->retry, x->attempt, run->seed, st->id);
                if (x->retry_after_us > backoff)
                    backoff = x->retry_after_us;
                if (run_deadline && now + backoff >= run_deadline) {
                    fail_step(r, FR_E_DEADLINE_EXCEEDED,
                              fr__xasprintf("attempt %d of agent \"%s\" not started: its %s "
                                            "backoff would overrun the run deadline "
                                            "(router.run_timeout %s)",
                                            x->attempt + 1, ac->id,
                                            fr__duration_format(backoff, d1, sizeof d1),
                                            fr__duration_format(m->run_timeout_us, d2, sizeof d2)));
                    return 0;
                }
                if (backoff > 0 && !(run->replay && fr__replay_whole_attempt(&x->cursor)) &&
                    fr__cancel_wait_until(run->cancel, now + backoff)) {
                    fr_status why = fr__cancel_reason(run->cancel);
                    fail_step(r, why,
                              fr__xasprintf("%s during retry backoff", why == FR_E_CANCELLED
                                                                           ? "run cancelled"
                                                                           : fr_strerror(why)));
                    return 0;
                }
            } else if (run_deadline && now >= run_deadline) {
                fail_step(r, FR_E_DEADLINE_EXCEEDED,
                          x->chain_pos == 0
                              ? fr__xasprintf("run deadline (router.run_timeout %s) reached "
                                              "before the step started",
                                              fr__duration_format(m->run_timeout_us, d1, sizeof d1))
                              : fr__xasprintf("run deadline (router.run_timeout %s) reached "
                                              "before fallback agent \"%s\" started",
                                              fr__duration_format(m->run_timeout_us, d1, sizeof d1),
                                              ac->id));
                return 0;
            }

            fr_attempt_result *a = fr__step_add_attempt(r);
            if (!a) {
                fail_step(r, FR_E_NOMEM, strdup("out of memory"));
                return 0;
            }
            x->attempt++;
            a->attempt = x->attempt; /* numbered per agent: fallbacks start at 1 */
            a->agent = ac->id;
            a->backoff_us = backoff;
            a->started_us = fr__mono_us() - run->started_mono;
            if (run->record)
                a->effects = json_object_new_array();
            if (a->effects && run->replay && run->replay->resume && x->cursor.effects) {
                /* Resumed: the trace keeps what the journal recorded of the attempt, then
                 * what it does live. */
                for (size_t i = 0; i < x->cursor.n_recorded; i++)
                    json_object_array_add(a->effects, json_object_get(json_object_array_get_idx(
                                                          x->cursor.effects, i)));
            }
            if (!(run->replay && x->cursor.effects)) /* a recorded attempt is journaled */
                journal_attempt_begin(run, st->id, r->n_attempts - 1, a);

            x->admission = FR_ADMIT_ALLOW;
            int64_t timeout = ac->timeout_us ? ac->timeout_us : m->default_timeout_us;
            if (agent->breaker) {
                char why[512] = "";
                x->admission = agent_admission(run, x, st, agent, a, why, sizeof why);
                if (x->admission == FR_ADMIT_REJECT) {
                    a->status = FR_E_CIRCUIT_OPEN;
                    a->message = fr__xasprintf("circuit breaker %s is open; failing fast",
                                               fr__breaker_name(agent->breaker));
                } else if (x->admission == FR_ADMIT_UNAVAILABLE) {
                    /* Not retried, not counted: the store, not the agent, failed. */
                    a->status = FR_E_STATE_UNAVAILABLE;
                    a->message = fr__xasprintf("circuit breaker %s: %s",
                                               fr__breaker_name(agent->breaker), why);
                } else if (x->admission == FR_ADMIT_PROBE) {
                    int64_t probe = fr__breaker_cfg(agent->breaker)->probe_timeout_us;
                    if (probe > 0 && (!timeout || probe < timeout))
                        timeout = probe;
                }
            }
            /* A recorded attempt that never returned (hung, killed) has its outcome
             * taken from the recording rather than waited for again. */
            if (fr__breaker_admitted(x->admission) &&
                !(run->replay &&
                  fr__replay_attempt_abandoned(&x->cursor, &a->status, &a->message)) &&
                run_attempt(w, run, x, agent, r->n_attempts - 1, timeout))
                return 1;
        }
        x->resume = 0;

        fr__obs_attempt_end(run, x->step, ai); /* observability: the attempt is complete */
        fr_attempt_result *a = &r->attempts[r->n_attempts - 1];
        if (!(run->replay && fr__replay_whole_attempt(&x->cursor)))
            journal_attempt_end(run, st->id, r->n_attempts - 1, a);
        if (agent->breaker && fr__breaker_admitted(x->admission) &&
            !(run->replay && fr__replay_whole_attempt(&x->cursor))) {
            fr_breaker_transition tr;
            if (fr__breaker_record(agent->breaker, x->admission, a->status, fr__mono_us(), &tr))
                note_agent_transition(run, st, a->attempt, agent, &tr);
        }
        if (a->status == FR_OK) {
            r->state = FR_STEP_SUCCEEDED;
            r->status = FR_OK;
            free(r->message);
            r->message = NULL;
            r->answered_by = ac->id;
            return 0;
        }
        fail_step(r, a->status, a->message ? strdup(a->message) : NULL);
        if (a->status == FR_E_CANCELLED || a->status == FR_E_DEADLINE_EXCEEDED ||
            a->status == FR_E_LEASE_LOST)
            return 0;
        /* router.stream_restart: false: what was streamed stays the answer's start, so
         * neither a retry nor a fallback may follow it. */
        if (a->streamed && !m->stream_restart)
            return 0;
        int retry = fr_status_retried(a->status) && x->attempt < ac->retry.max_attempts;
        if (a->streamed && run->opts->on_token &&
            (retry || chain_agent(m, st, x->chain_pos + 1) >= 0)) {
            /* Part of an answer was already streamed: say that the next one starts over. */
            char note[160];
            snprintf(note, sizeof note,
                     "\n[fluxroute: %s after %d streamed chunk(s); the answer starts over]\n",
                     fr_class_name(fr_status_class(a->status)), a->streamed);
            run->opts->on_token(run->opts->token_ud, st->id, note, strlen(note));
        }
        if (retry)
            continue; /* retry the same agent */
        /* Retries exhausted, not retryable, or breaker open: the next fallback. */
        x->chain_pos++;
        x->attempt = 0;
        x->retry_after_us = 0;
    }
}
