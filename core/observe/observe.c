/* The observability hooks: the engine calls them at single points (end of an attempt,
 * a step, a run; breaker transitions; provider calls) and they fan out to the metrics
 * registry, the invocation log and the span exporter.
 *
 * Span ids are derived, not stored: a traced run draws a trace id and a 64-bit seed, and
 * the span id of a step or an attempt is a hash of the seed with the step id, agent id
 * and attempt number.  A provider call (a child of its attempt) and an HTTP request's
 * traceparent (made while the attempt runs) therefore know their parent without the
 * attempt having to exist as an object first.  Spans are built when they end. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "host/breaker.h"
#include "base/secret.h"
#include "observe/obs_impl.h"
#include "engine/pipeline.h"

/* ---- configuration ------------------------------------------------------------------- */

int fr__obs_env_truthy(const char *name)
{
    static const char *const yes[] = {"1", "true", "yes", "on", NULL};
    const char *v = getenv(name);
    if (!v)
        return 0;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\n'))
        n--;
    for (int i = 0; yes[i]; i++)
        if (strlen(yes[i]) == n && strncasecmp(v, yes[i], n) == 0)
            return 1;
    return 0;
}

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

void fr__obs_timestamp(char out[32])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char buf[96];
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
    size_t n = strlen(buf) < 31 ? strlen(buf) : 31;
    memcpy(out, buf, n);
    out[n] = '\0';
}

char *fr__obs_scrub(const char *text)
{
    if (!text)
        return NULL;
    char *s = fr__secret_scrub(text);
    return s ? s : strdup(text);
}

/* ---- scanning an output for model and usage ----------------------------------------- */

/* The end of the JSON string starting at p[0] == '"', or NULL. */
static const char *string_end(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p;
    }
    return NULL;
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static int hexval(char c);

/* The UTF-8 of JSON string contents s[0..n) into out (truncated at a character boundary
 * to fit `size`). */
static void json_unescape(const char *s, size_t n, char *out, size_t size)
{
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        char buf[4];
        size_t k = 1;
        unsigned cp = 0;
        if (s[i] != '\\') {
            buf[0] = s[i++];
        } else if (i + 1 < n && s[i + 1] != 'u') {
            switch (s[i + 1]) {
            case 'b': buf[0] = '\b'; break;
            case 'f': buf[0] = '\f'; break;
            case 'n': buf[0] = '\n'; break;
            case 'r': buf[0] = '\r'; break;
            case 't': buf[0] = '\t'; break;
            default: buf[0] = s[i + 1]; break; /* \" \\ \/ */
            }
            i += 2;
        } else {
            for (int j = 0; j < 4 && i + 2 + (size_t)j < n; j++)
                cp = cp << 4 | (unsigned)(hexval((char)(s[i + 2 + j] | 0x20)) & 15);
            i += 6;
            if (cp >= 0xd800 && cp < 0xdc00 && i + 5 < n && s[i] == '\\' && s[i + 1] == 'u') {
                unsigned lo = 0;
                for (int j = 0; j < 4; j++)
                    lo = lo << 4 | (unsigned)(hexval((char)(s[i + 2 + j] | 0x20)) & 15);
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                i += 6;
            }
            if (cp < 0x80) {
                buf[0] = (char)cp;
            } else if (cp < 0x800) {
                buf[0] = (char)(0xc0 | cp >> 6), buf[1] = (char)(0x80 | (cp & 63)), k = 2;
            } else if (cp < 0x10000) {
                buf[0] = (char)(0xe0 | cp >> 12), buf[1] = (char)(0x80 | ((cp >> 6) & 63));
                buf[2] = (char)(0x80 | (cp & 63)), k = 3;
            } else {
                buf[0] = (char)(0xf0 | cp >> 18), buf[1] = (char)(0x80 | ((cp >> 12) & 63));
                buf[2] = (char)(0x80 | ((cp >> 6) & 63)), buf[3] = (char)(0x80 | (cp & 63)), k = 4;
            }
        }
        if (w + k >= size)
            break;
        memcpy(out + w, buf, k);
        w += k;
    }
    out[w] = '\0';
}

static int key_is(const char *k, size_t n, const char *want)
{
    return strlen(want) == n && memcmp(k, want, n) == 0;
}

void fr__obs_scan_usage(const char *json, size_t len, fr_obs_usage *u)
{
    const char *p = json, *end = json + len;
    int depth = 0, usage_depth = 0;
    while (p && p < end) {
        char c = *p;
        if (c == '{' || c == '[') {
            depth++;
            p++;
        } else if (c == '}' || c == ']') {
            if (depth == usage_depth)
                usage_depth = 0;
            depth--;
            p++;
        } else if (c == '"') {
            const char *k = p + 1, *ke = string_end(p, end);
            if (!ke)
                return;
            const char *v = skip_ws(ke + 1, end);
            if (v >= end || *v != ':') {
                p = ke + 1; /* a value */
                continue;
            }
            v = skip_ws(v + 1, end);
            size_t kn = (size_t)(ke - k);
            if (depth == 1 && v < end && *v == '"' &&
                (key_is(k, kn, "model") || key_is(k, kn, "provider"))) {
                const char *ve = string_end(v, end);
                if (!ve)
                    return;
                if (key_is(k, kn, "model"))
                    json_unescape(v + 1, (size_t)(ve - v - 1), u->model, sizeof u->model);
                else
                    json_unescape(v + 1, (size_t)(ve - v - 1), u->provider, sizeof u->provider);
                p = ve + 1;
                continue;
            }
            if (depth == 1 && key_is(k, kn, "usage") && v < end && *v == '{')
                usage_depth = depth + 1;
            else if (usage_depth && depth == usage_depth && v < end &&
                     (*v == '-' || (*v >= '0' && *v <= '9'))) {
                long long n = strtoll(v, NULL, 10);
                if (key_is(k, kn, "input_tokens"))
                    u->input_tokens = n;
                else if (key_is(k, kn, "output_tokens"))
                    u->output_tokens = n;
            }
            p = v;
        } else {
            p++;
        }
    }
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

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "00-<32 hex trace>-<16 hex span>-<2 hex flags>" (lower case, non-zero ids). */
int fr__obs_traceparent_parse(const char *tp, uint8_t trace[16], uint64_t *span)
{
    if (!tp || strlen(tp) < 55 || strncmp(tp, "00-", 3) != 0 || tp[35] != '-' || tp[52] != '-')
        return -1;
    int nonzero = 0;
    for (int i = 0; i < 16; i++) {
        int hi = hexval(tp[3 + 2 * i]), lo = hexval(tp[4 + 2 * i]);
        if (hi < 0 || lo < 0)
            return -1;
        trace[i] = (uint8_t)(hi << 4 | lo);
        nonzero |= trace[i];
    }
    uint64_t s = 0;
    for (int i = 0; i < 16; i++) {
        int v = hexval(tp[36 + i]);
        if (v < 0)
            return -1;
        s = s << 4 | (uint64_t)v;
    }
    if (!nonzero || !s || hexval(tp[53]) < 0 || hexval(tp[54]) < 0)
        return -1;
    *span = s;
    return 0;
}

void fr__obs_traceparent_format(const uint8_t trace[16], uint64_t span, char out[56])
{
    char *w = out + 3;
    memcpy(out, "00-", 3);
    for (int i = 0; i < 16; i++)
        w += sprintf(w, "%02x", trace[i]);
    sprintf(w, "-%016llx-01", (unsigned long long)span);
}

void fr__obs_hex_id(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
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

/* ---- provider calls ----------------------------------------------------------------- */

static int traced_call(const fr_call *call)
{
    return call->run && call->run->obs && call->run->obs->traced;
}

fr_obs_provider_token fr__obs_provider_begin(fr_call *call)
{
    fr_obs_provider_token t = {.t0_us = fr__mono_us()};
    if (traced_call(call) && !call->replay) {
        t.prev_span_id = fr__obs_tl.provider_span;
        t.span_id = fr__os_random();
        fr__obs_tl.provider_span = t.span_id;
    }
    return t;
}

static void copy_n(char *dst, size_t size, const char *src, size_t n)
{
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void fr__obs_provider_end(fr_call *call, const fr_obs_provider_token *tok, const char *provider_id,
                          const char *system, fr_status st, const char *response,
                          size_t response_len)
{
    if (tok->span_id)
        fr__obs_tl.provider_span = tok->prev_span_id;
    if (call->replay)
        return; /* a replay calls no provider: nothing to count */
    int64_t latency = fr__mono_us() - tok->t0_us;
    fr_obs_usage u = {.input_tokens = -1, .output_tokens = -1};
    if (st == FR_OK && response)
        fr__obs_scan_usage(response, response_len, &u);
    const char *model = u.model[0] ? u.model : "unknown";
    fr_error_class cls = st == FR_OK ? FR_CLASS_NONE : fr_status_class(st);
    /* The provider metrics have no namespace label; their model and provider labels
     * still count against the run's namespace. */
    const char *ns = call->run && call->run->obs ? call->run->obs->ns : NULL;
    const char *rl[] = {provider_id, model, st == FR_OK ? "succeeded" : "failed",
                        fr_class_name(cls)};
    fr__metric_add(fr__metric_series_in(FR_M_PROVIDER_REQUESTS, ns, rl), 1);
    const char *ll[] = {provider_id, model};
    fr__metric_observe_us(fr__metric_series_in(FR_M_PROVIDER_LATENCY, ns, ll), latency);
    if (u.input_tokens > 0) {
        const char *tl_[] = {provider_id, model, "input"};
        fr__metric_add(fr__metric_series_in(FR_M_PROVIDER_TOKENS, ns, tl_),
                       (uint64_t)u.input_tokens);
    }
    if (u.output_tokens > 0) {
        const char *tl_[] = {provider_id, model, "output"};
        fr__metric_add(fr__metric_series_in(FR_M_PROVIDER_TOKENS, ns, tl_),
                       (uint64_t)u.output_tokens);
    }
    /* For the attempt's log line. */
    fr_obs_usage *acc = &fr__obs_tl.usage;
    if (!fr__obs_tl.has_call) {
        memset(acc, 0, sizeof *acc);
        acc->input_tokens = acc->output_tokens = -1;
        fr__obs_tl.has_call = 1;
    }
    copy_n(acc->provider, sizeof acc->provider, provider_id, strlen(provider_id));
    if (u.model[0] || !acc->model[0])
        copy_n(acc->model, sizeof acc->model, model, strlen(model));
    if (u.input_tokens >= 0)
        acc->input_tokens = (acc->input_tokens > 0 ? acc->input_tokens : 0) + u.input_tokens;
    if (u.output_tokens >= 0)
        acc->output_tokens = (acc->output_tokens > 0 ? acc->output_tokens : 0) + u.output_tokens;

    if (tok->span_id && traced_call(call) && fr__span_wanted()) {
        const struct fr_obs_run *o = call->run->obs;
        const char *agent = call->agent ? call->agent->id : "";
        int64_t end = fr__wall_us();
        char name[128];
        snprintf(name, sizeof name, "chat %s", model);
        fr_span *s = fr__span_new(o->trace_id, tok->span_id,
                                  fr__obs_attempt_span(o, call->step_id, agent, call->attempt),
                                  name, 3, end - latency, end);
        fr__span_attr_str(s, "gen_ai.system", system);
        fr__span_attr_str(s, "gen_ai.operation.name", "chat");
        fr__span_attr_str(s, "gen_ai.request.model", model);
        if (u.model[0])
            fr__span_attr_str(s, "gen_ai.response.model", model);
        if (u.input_tokens >= 0)
            fr__span_attr_int(s, "gen_ai.usage.input_tokens", u.input_tokens);
        if (u.output_tokens >= 0)
            fr__span_attr_int(s, "gen_ai.usage.output_tokens", u.output_tokens);
        fr__span_attr_str(s, "fluxroute.provider", provider_id);
        if (st != FR_OK)
            fr__span_attr_str(s, "error.type", fr_class_name(cls));
        fr__span_status(s, st != FR_OK, call->error);
        fr__span_submit(s);
    }
}

int fr__obs_traceparent(fr_call *call, char out[56])
{
    if (!call || !traced_call(call))
        return 0;
    const struct fr_obs_run *o = call->run->obs;
    uint64_t span = call->parent && fr__obs_tl.provider_span
                        ? fr__obs_tl.provider_span
                        : fr__obs_attempt_span(o, call->step_id, call->agent ? call->agent->id : "",
                                               call->attempt);
    fr__obs_traceparent_format(o->trace_id, span, out);
    return 1;
}
