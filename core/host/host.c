/* The host API: the only way plugins reach the outside world.  Everything a plugin can
 * observe that is not a pure function of its input (time, sleeping, randomness, HTTP,
 * provider answers) passes through here, so it can be recorded and replayed. */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <json-c/json.h>

#include "base/sha256.h"
#include "base/str.h"
#include "host/breaker.h"
#include "host/effects.h"
#include "host/call_quota.h"
#include "host/host.h"
#include "lease/lease.h"
#include "host/journal_sink.h"
#include "host/replay_source.h"
#include "host/http_client.h"
#include "host/provider_fields.h"
#include "base/json_check.h"
#include "base/json_parse.h"
#include "host/call_observe.h"
#include "observe/obs_impl.h"

/* ---- allocation ------------------------------------------------------------------ */

static atomic_long alloc_fail_countdown;

void fr__alloc_fail_after(long n)
{
    atomic_store(&alloc_fail_countdown, n);
}

/* True when an injected allocation failure is due. */
static int alloc_should_fail(void)
{
    long n = atomic_load(&alloc_fail_countdown);
    while (n > 0) {
        if (atomic_compare_exchange_weak(&alloc_fail_countdown, &n, n - 1))
            return n == 1;
    }
    return 0;
}

static void *host_alloc(fr_call *call, size_t size)
{
    if (alloc_should_fail())
        return NULL;
    if (!call)
        return malloc(size ? size : 1);
    return fr__arena_alloc(call->arena, size ? size : 1);
}

static void host_free_mem(void *ptr)
{
    free(ptr);
}

/* Replay: the value of a recorded effect's member, 0 when absent. */
static int64_t taken_int(fr_call *call, const char *kind, const char *key)
{
    json_object *e = fr__replay_take(call->replay, kind, NULL, NULL), *v;
    return e && json_object_object_get_ex(e, key, &v) ? json_object_get_int64(v) : 0;
}

static fr_status taken_status(fr_call *call, const char *kind, json_object *req, const char *cmp)
{
    json_object *e = fr__replay_take(call->replay, kind, req, cmp), *v;
    if (!e)
        return FR_E_CANCELLED; /* divergence: the run is being stopped */
    return json_object_object_get_ex(e, "status", &v) ? fr__status_from_json(v) : FR_E_INVALID;
}

/* Recording: {"kind": kind, key: value}. */
static void record_int(fr_call *call, const char *kind, const char *key, int64_t value)
{
    if (!call->effects)
        return;
    json_object *e = fr__effect_new(kind);
    json_object_object_add(e, key, json_object_new_int64(value));
    fr__effect_add(call, e);
}

static void record_status(fr_call *call, const char *kind, fr_status st)
{
    if (!call->effects)
        return;
    json_object *e = fr__effect_new(kind);
    json_object_object_add(e, "status", fr__status_json(st));
    fr__effect_add(call, e);
}

static fr_status host_check_cancel(fr_call *call)
{
    if (fr__replay_serving(call->replay))
        return taken_status(call, "check", NULL, NULL);
    fr_status st = fr__call_check(call);
    record_status(call, "check", st);
    return st;
}

static int64_t host_deadline_us(fr_call *call)
{
    if (fr__replay_serving(call->replay))
        return taken_int(call, "deadline", "value");
    fr_status why;
    int64_t dl = fr__call_deadline(call, &why);
    int64_t left = dl ? dl - fr__mono_us() : INT64_MAX;
    record_int(call, "deadline", "value", left);
    return left;
}

static fr_status sleep_real(fr_call *call, int64_t us);

static fr_status host_sleep_us(fr_call *call, int64_t us)
{
    if (fr__replay_serving(call->replay)) {
        json_object *req = json_object_new_int64(us);
        fr_status st = taken_status(call, "sleep", req, "us");
        json_object_put(req);
        return st;
    }
    fr_status st = sleep_real(call, us);
    if (call->effects) {
        json_object *e = fr__effect_new("sleep");
        json_object_object_add(e, "us", json_object_new_int64(us));
        json_object_object_add(e, "status", fr__status_json(st));
        fr__effect_add(call, e);
    }
    return st;
}

static fr_status sleep_real(fr_call *call, int64_t us)
{
    fr_status st = fr__call_check(call);
    if (st != FR_OK || us <= 0)
        return st;
    int64_t until = fr__mono_us() + us;
    fr_status why;
    int64_t dl = fr__call_deadline(call, &why);
    int cut = dl && dl < until;
    if (cut)
        until = dl;
    if (fr__cancel_wait_until(call->cancel, until))
        return fr__cancel_reason(call->cancel);
    return cut ? why : FR_OK;
}

/* ---- clock and randomness ---------------------------------------------------------- */

static int64_t host_clock_us(fr_call *call)
{
    if (call && fr__replay_serving(call->replay))
        return taken_int(call, "clock", "value");
    int64_t now = fr__wall_us();
    if (call)
        record_int(call, "clock", "value", now);
    return now;
}

static uint64_t host_random_u64(fr_call *call)
{
    /* Drawn in replay too, so the stream stays in step; checked against the recording. */
    uint64_t v = fr__splitmix64(&call->rng);
    char text[24];
    snprintf(text, sizeof text, "%llu", (unsigned long long)v);
    if (fr__replay_serving(call->replay)) {
        json_object *want = json_object_new_string(text);
        fr__replay_take(call->replay, "random", want, "value");
        json_object_put(want);
    } else if (call->effects) {
        json_object *e = fr__effect_new("random");
        json_object_object_add(e, "value", json_object_new_string(text));
        fr__effect_add(call, e);
    }
    return v;
}

/* ---- errors, logging, identity --------------------------------------------------- */

static int log_threshold = FR_LOG_WARN;

void fr__log_init_from_env(void)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    const char *v = getenv("LOG_LEVEL");
    for (int i = 0; v && i < 4; i++)
        if (strcasecmp(v, names[i]) == 0)
            log_threshold = i;
}

static void host_log(fr_call *call, fr_log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    if ((int)level > log_threshold || (unsigned)level > FR_LOG_DEBUG)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (call)
        fprintf(stderr, "fluxroute: %s: step %s attempt %d (%s): %s\n", names[level], call->step_id,
                call->attempt, call->inst->plugin->name, msg);
    else
        fprintf(stderr, "fluxroute: %s: plugin: %s\n", names[level], msg);
}

static void host_set_retry_after(fr_call *call, int64_t delay_us)
{
    call->retry_after_us = delay_us;
}

static int host_attempt(fr_call *call)
{
    return call->attempt;
}

static const char *host_step_id(fr_call *call)
{
    return call->step_id;
}

static fr_status host_stream_chunk(fr_call *call, const char *text, size_t len)
{
    fr_status st;
    if (fr__replay_serving(call->replay)) {
        json_object *want = json_object_new_int64((int64_t)len);
        st = taken_status(call, "chunk", want, "len");
        json_object_put(want);
    } else {
        st = fr__call_check(call);
        if (call->effects) {
            json_object *e = fr__effect_new("chunk");
            json_object_object_add(e, "len", json_object_new_int64((int64_t)len));
            json_object_object_add(e, "status", fr__status_json(st));
            fr__effect_add(call, e);
        }
    }
    if (st == FR_OK && call->on_chunk)
        call->on_chunk(call->chunk_ud, text, len);
    return st;
}

static _Thread_local int replay_mode; /* per thread: the one building a replay pipeline */

void fr__host_set_replay_mode(int on)
{
    replay_mode = on;
}

static const char *host_secret_env(fr_call *call, const char *name)
{
    (void)call;
    const char *v = name ? getenv(name) : NULL;
    if (v)
        fr__secret_remember(v);
    else if (replay_mode && name)
        v = "replay-placeholder-credential"; /* a replay never reaches the network */
    return v;
}

/* ---- metrics ---------------------------------------------------------------------- */

static void host_metric(fr_call *call, const char *name, double value)
{
    if (!name || !*name || strspn(name, "abcdefghijklmnopqrstuvwxyz_") != strlen(name))
        return;
    fr__metrics_plugin_add(call ? call->inst->plugin->name : "unknown", name, value);
}

/* ---- HTTP and provider calls ----------------------------------------------------- */

/* Copies a recorded string member into the call's arena. */
static const char *arena_member(fr_call *call, json_object *o, const char *key, size_t *len)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string)) {
        *len = 0;
        return "";
    }
    *len = (size_t)json_object_get_string_len(v);
    char *p = fr__arena_alloc(call->arena, *len + 1);
    if (p) {
        memcpy(p, json_object_get_string(v), *len);
        p[*len] = '\0';
    }
    return p;
}

/* The request's streaming body callback, or NULL. */
static int wants_body(const fr_http_request *req)
{
    return FR_HTTP_REQUEST_HAS(req, on_body_ud) && req->on_body;
}

/* Replay of an http effect: the recorded response (what arrived before a failure too,
 * for a streaming request), handed to on_body in one piece when the status is 2xx. */
static fr_status replay_http(fr_call *call, const fr_http_request *req, fr_http_response *resp)
{
    json_object *rq = fr__http_request_json(req);
    json_object *e = fr__replay_take(call->replay, "http", rq, "request");
    json_object_put(rq);
    if (!e)
        return FR_E_CANCELLED;
    json_object *v, *r;
    fr_status st =
        json_object_object_get_ex(e, "status", &v) ? fr__status_from_json(v) : FR_E_INVALID;
    int stream = wants_body(req);
    if ((st == FR_OK || stream) && json_object_object_get_ex(e, "response", &r) &&
        json_object_is_type(r, json_type_object)) {
        resp->status = json_object_object_get_ex(r, "status", &v) ? json_object_get_int(v) : 0;
        resp->headers = arena_member(call, r, "headers", &resp->headers_len);
        resp->body = arena_member(call, r, "body", &resp->body_len);
        if (stream && resp->body && resp->body_len && resp->status >= 200 && resp->status <= 299) {
            fr_status bs = req->on_body(req->on_body_ud, resp->body, resp->body_len);
            if (bs != FR_OK)
                return bs; /* the message is the callback's, as when recorded */
        }
    }
    if (st != FR_OK && json_object_object_get_ex(e, "error", &v) && v)
        fr__call_set_error(call, "%s", json_object_get_string(v));
    return st;
}

static fr_status host_http(fr_call *call, const fr_http_request *req, fr_http_response *resp)
{
    if (!req || !resp)
        return FR_E_INVALID;
    if (fr__replay_serving(call->replay))
        return replay_http(call, req, resp);
    /* Effects made while the body streams in (the plugin's chunks) are recorded after the
     * http effect, where a replay makes them again: it takes the http effect first and
     * then feeds the body to on_body. */
    int stream = wants_body(req);
    *resp = (fr_http_response){0};
    json_object *effects = call->effects, *during = NULL;
    fr_journal *journal = call->journal;
    if (effects && stream && (during = json_object_new_array())) {
        call->effects = during;
        call->journal = NULL; /* journaled below, in the recorded order */
    }
    fr_status st = fr__http_perform(call, req, resp);
    call->effects = effects;
    call->journal = journal;
    if (effects) {
        json_object *e = fr__effect_new("http");
        fr__effect_put(e, "request", fr__http_request_json(req));
        fr__effect_put(e, "status", fr__status_json(st));
        if (st == FR_OK || (stream && resp->body)) {
            json_object *r = json_object_new_object();
            fr__effect_put(r, "status", json_object_new_int(resp->status));
            fr__effect_put(r, "headers",
                           json_object_new_string_len(resp->headers ? resp->headers : "",
                                                      (int)resp->headers_len));
            fr__effect_put(
                r, "body",
                json_object_new_string_len(resp->body ? resp->body : "", (int)resp->body_len));
            fr__effect_put(e, "response", r);
        }
        if (st != FR_OK)
            fr__effect_put(e, "error", call->error ? json_object_new_string(call->error) : NULL);
        fr__effect_add(call, e);
        size_t n = during ? json_object_array_length(during) : 0;
        for (size_t i = 0; i < n; i++)
            fr__effect_add(call, json_object_get(json_object_array_get_idx(during, i)));
    }
    json_object_put(during);
    return st;
}

/* http writes the ABI 1.0 response: the host's struct while it has not grown.  Once a
 * later minor appends a field, http must write only FR_HTTP_RESPONSE_SIZE_1_0 bytes (as
 * fr__http_sized does). */
_Static_assert(sizeof(fr_http_response) == FR_HTTP_RESPONSE_SIZE_1_0,
               "host->http writes sizeof(fr_http_response): keep it the ABI 1.0 size");

fr_status fr__http_sized(const fr_host_api *api, fr_call *call, const fr_http_request *req,
                         fr_http_response *resp, size_t resp_size)
{
    if (!resp || resp_size < FR_HTTP_RESPONSE_SIZE_1_0) {
        api->set_error(call, "http_ex: response struct of %zu bytes, need at least %zu",
                       resp ? resp_size : (size_t)0, (size_t)FR_HTTP_RESPONSE_SIZE_1_0);
        return FR_E_INVALID;
    }
    /* The plugin's struct may be smaller than ours (built against an older minor) or
     * larger (a newer one): fill ours, hand over what fits, zero what we do not know. */
    fr_http_response full = {0};
    fr_status st = api->http(call, req, &full);
    size_t n = resp_size < sizeof full ? resp_size : sizeof full;
    memcpy(resp, &full, n);
    if (resp_size > n)
        memset((char *)resp + n, 0, resp_size - n);
    return st;
}

static fr_status host_http_ex(fr_call *call, const fr_http_request *req, fr_http_response *resp,
                              size_t resp_size)
{
    return fr__http_sized(fr__host_api(), call, req, resp, resp_size);
}

static void stream_to_parent(void *ud, const char *text, size_t len)
{
    fr_call *parent = ud;
    if (parent->on_chunk)
        parent->on_chunk(parent->chunk_ud, text, len);
}

/* The provider breaker's admission: live, or from the recording.  Unavailable fills why. */
static fr_admission provider_admission(fr_call *call, const fr_instance *prov, char *why,
                                       size_t why_size)
{
    if (fr__replay_serving(call->replay))
        return (fr_admission)fr__replay_admission(call->replay, why, why_size);
    fr_breaker_transition tr;
    int changed = 0;
    fr_admission adm =
        fr__breaker_admit(prov->breaker, fr__mono_us(), &tr, &changed, why, why_size);
    if (changed && call->note_transition)
        call->note_transition(call->run, call->step_id, call->attempt,
                              fr__breaker_name(prov->breaker), &tr);
    if (call->effects)
        fr__effect_add(call, fr__breaker_effect(fr__breaker_name(prov->breaker), adm, why));
    return adm;
}

/* `{...}` -> `{...,"provider":"ID"}` in the arena, without parsing: the response is
 * checked to be one JSON object, and a key added last wins over an earlier one. */
static char *add_provider_field(fr_call *call, const char *resp, size_t len, const char *id,
                                size_t *out_len)
{
    size_t b = 0, e = len;
    while (b < len && strchr(" \t\r\n", resp[b]))
        b++;
    while (e > b && strchr(" \t\r\n", resp[e - 1]))
        e--;
    if (e - b < 2 || resp[b] != '{' || resp[e - 1] != '}' || !fr__json_valid(resp, len))
        return NULL;
    /* Is the object empty?  Then no comma. */
    size_t k = b + 1;
    while (k < e - 1 && strchr(" \t\r\n", resp[k]))
        k++;
    int empty = k == e - 1;
    size_t idlen = strlen(id);
    size_t need = (e - b) + idlen * 6 + 16;
    char *out = fr__arena_alloc(call->arena, need + 1), *w = out;
    if (!out)
        return NULL;
    memcpy(w, resp + b, e - b - 1);
    w += e - b - 1;
    if (!empty)
        *w++ = ',';
    memcpy(w, "\"provider\":", 11);
    w += 11;
    w = fr__json_put_string(w, id);
    *w++ = '}';
    *w = '\0';
    *out_len = (size_t)(w - out);
    return out;
}

/* Does the normalized request ask for streaming?  Parsed only when it could. */
static int wants_stream(const char *request)
{
    if (!strstr(request, "\"stream\""))
        return 0;
    const char *v;
    size_t n;
    int found = fr__json_member(request, strlen(request), "stream", &v, &n);
    if (found == 0)
        return 0;
    if (found == 1 && n == 4 && memcmp(v, "true", 4) == 0)
        return 1;
    if (found == 1 && n == 5 && memcmp(v, "false", 5) == 0)
        return 0;
    /* Anything else: as json-c reads it (a non-zero number, a non-empty string...). */
    json_object *req = json_tokener_parse(request), *sv;
    int on = req && json_object_object_get_ex(req, "stream", &sv) && json_object_get_boolean(sv);
    json_object_put(req);
    return on;
}

/* Notes a completed provider call in the attempt's usage: the provider id, and the model
 * and usage `seen` in the provider plugin's own response.  On OOM the call goes
 * unrecorded (and unbilled) rather than failing a call the vendor answered. */
static void note_provider_use(fr_call_usage *u, int ordinal, const fr_instance *prov,
                              const fr_obs_usage *seen)
{
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 2;
        fr_provider_use *c = realloc(u->calls, cap * sizeof *c);
        if (!c)
            return;
        u->calls = c;
        u->cap = cap;
    }
    fr_provider_use *c = &u->calls[u->n++];
    c->provider = prov->id;
    memcpy(c->model, seen->model, sizeof c->model);
    c->input_tokens = seen->input_tokens > 0 ? seen->input_tokens : 0;
    c->output_tokens = seen->output_tokens > 0 ? seen->output_tokens : 0;
    c->ordinal = ordinal;
    c->usage_unknown = seen->input_tokens < 0 && seen->output_tokens < 0;
}

/* A provider answered with its usage null (or none): the attempt's note says so, once
 * per attempt, so that a report reading no tokens does not pass for 0 tokens. */
static void note_usage_unknown(fr_call_usage *u, const fr_instance *prov)
{
    if (!u->note)
        u->note = fr__xasprintf("provider \"%s\" reported no token usage: its tokens are "
                                "unknown (usage null), not 0",
                                prov->id);
}

static fr_status host_provider_call(fr_call *call, const char *request, size_t request_len,
                                    char **response, size_t *response_len)
{
    /* Every call gets its ordinal, so an attempt's billed calls keep distinct keys. */
    int ordinal = call->usage ? ++call->usage->ordinal : 0;
    const fr_instance *prov = call->agent ? call->agent->provider : NULL;
    if (!prov) {
        fr__call_set_error(call, "agent \"%s\" has no provider: set `provider:` in the manifest",
                           call->agent ? call->agent->id : "?");
        return FR_E_CONFIG;
    }
    if (!request || !fr__json_valid(request, request_len)) {
        fr__call_set_error(call, "provider request is not valid JSON");
        return FR_E_BAD_REQUEST;
    }
    const fr_plugin *d = prov->plugin->desc;
    /* A field newer than the plugin's ABI would be dropped silently: refuse it instead. */
    char field[64];
    if (fr__provider_field_too_new(request, request_len, FR_ABI_VERSION_MINOR(d->abi_version),
                                   field, sizeof field)) {
        fr__call_set_error(call,
                           "provider \"%s\": unsupported field '%s': provider plugin \"%s\" is "
                           "built against ABI %u.%u, and the field needs ABI 1.2 or later",
                           prov->id, field, d->name, FR_ABI_VERSION_MAJOR(d->abi_version),
                           FR_ABI_VERSION_MINOR(d->abi_version));
        return FR_E_BAD_REQUEST;
    }
    int stream = FR_PLUGIN_HAS(d, complete_stream) && d->complete_stream && wants_stream(request);

    fr_admission adm = FR_ADMIT_ALLOW;
    if (prov->breaker) {
        char why[512] = "";
        adm = provider_admission(call, prov, why, sizeof why);
        if (adm == FR_ADMIT_REJECT) {
            fr__call_set_error(call, "provider \"%s\": circuit breaker %s is open", prov->id,
                               fr__breaker_name(prov->breaker));
            return FR_E_CIRCUIT_OPEN;
        }
        if (adm == FR_ADMIT_UNAVAILABLE) {
            fr__call_set_error(call, "provider \"%s\": circuit breaker %s: %s", prov->id,
                               fr__breaker_name(prov->breaker), why);
            return FR_E_STATE_UNAVAILABLE;
        }
    }

    /* The caller's limits: reserve before the vendor is reached (never on replay). */
    void *ticket = NULL;
    const fr_call_quota *quota = fr__replay_serving(call->replay) ? NULL : call->quota;
    if (quota) {
        char msg[512] = "";
        int64_t retry_us = 0;
        fr_status qs = quota->reserve(quota->ud, prov->id, request, request_len, &ticket, &retry_us,
                                      msg, sizeof msg);
        if (qs != FR_OK) {
            if (retry_us > 0)
                call->retry_after_us = retry_us;
            fr__call_set_error(call, "provider \"%s\": %s", prov->id,
                               msg[0] ? msg : fr_strerror(qs));
            return qs;
        }
    }

    fr_call sub = *call;
    sub.inst = prov;
    sub.error = NULL;
    sub.retry_after_us = 0;
    sub.parent = call;
    sub.on_chunk = stream_to_parent;
    sub.chunk_ud = call;
    if (adm == FR_ADMIT_PROBE && !fr__replay_serving(call->replay)) {
        int64_t probe_end = fr__mono_us() + fr__breaker_cfg(prov->breaker)->probe_timeout_us;
        if (!sub.attempt_deadline_mono || probe_end < sub.attempt_deadline_mono)
            sub.attempt_deadline_mono = probe_end;
    }
    char *out = NULL;
    size_t out_len = 0;
    fr_obs_provider_token obs_tok = fr__obs_provider_begin(call); /* observability */
    fr_status st = stream
                       ? d->complete_stream(prov->state, &sub, request, request_len, &out, &out_len)
                       : d->complete(prov->state, &sub, request, request_len, &out, &out_len);
    call->rng = sub.rng;
    if (prov->breaker && !fr__replay_serving(call->replay)) {
        fr_breaker_transition tr;
        if (fr__breaker_record(prov->breaker, adm, st, fr__mono_us(), &tr) && call->note_transition)
            call->note_transition(call->run, call->step_id, call->attempt,
                                  fr__breaker_name(prov->breaker), &tr);
    }
    if (sub.retry_after_us)
        call->retry_after_us = sub.retry_after_us;

    char *full = NULL;
    size_t full_len = 0;
    if (st > 0)
        st = FR_E_BAD_RESPONSE;
    if (st != FR_OK) {
        fr__call_set_error(call, "provider \"%s\": %s", prov->id,
                           sub.error ? sub.error : fr_strerror(st));
    } else if (!out || !(full = add_provider_field(call, out, out_len, prov->id, &full_len))) {
        st = FR_E_BAD_RESPONSE;
        fr__call_set_error(call, "provider \"%s\" returned a response that is not a JSON object",
                           prov->id);
    }
    free(sub.error);
    /* The answer's model and usage, read once for observability, the quota and billing
     * (`full` is `out` with a "provider" member: the same model and usage). */
    fr_obs_usage seen = {.input_tokens = -1, .output_tokens = -1};
    if (st == FR_OK)
        fr__obs_scan_usage(out, out_len, &seen);
    fr__obs_provider_end(call, &obs_tok, prov->id, d->name, st, &seen); /* observability */
    if (quota)
        quota->settle(quota->ud, ticket, st == FR_OK, seen.model,
                      seen.input_tokens > 0 ? seen.input_tokens : 0,
                      seen.output_tokens > 0 ? seen.output_tokens : 0,
                      seen.input_tokens < 0 && seen.output_tokens < 0);
    if (st == FR_OK && call->usage) {
        if (seen.input_tokens < 0 && seen.output_tokens < 0)
            note_usage_unknown(call->usage, prov);
        /* A replay reaches no vendor: nothing to bill.  A resume serves the calls its dead
         * execution made, which nobody billed (usage is reported when a run ends): they
         * are billed now, once, under the keys they had. */
        if (!fr__replay_serving(call->replay) || call->replay->rp->resume)
            note_provider_use(call->usage, ordinal, prov, &seen);
    }

    /* The provider call as a whole is an effect too: recorded after the nested ones, and
     * checked on replay (request and response). */
    if (call->effects || fr__replay_serving(call->replay)) {
        json_object *req = fr__json_tree(request);
        json_object *obj = full ? fr__json_tree(full) : NULL;
        if (fr__replay_serving(call->replay)) {
            json_object *rec = fr__replay_take(call->replay, "provider", req, "request"),
                        *rv = NULL;
            if (rec && json_object_object_get_ex(rec, "response", &rv) && obj &&
                !json_object_equal(rv, obj))
                fr__replay_diverge(call->replay, "provider.response", rv, obj,
                                   "the provider's response differs from the recording");
            json_object_put(req);
            json_object_put(obj);
        } else {
            json_object *e = fr__effect_new("provider");
            fr__effect_put(e, "provider", json_object_new_string(prov->id));
            fr__effect_put(e, "request", req);
            fr__effect_put(e, "status", fr__status_json(st));
            fr__effect_put(e, "response", obj);
            fr__effect_put(e, "error",
                           st != FR_OK && call->error ? json_object_new_string(call->error) : NULL);
            fr__effect_put(e, "retry_after_us", json_object_new_int64(call->retry_after_us));
            fr__effect_add(call, e);
        }
    }
    if (st != FR_OK)
        return st;
    *response = full;
    *response_len = full_len;
    return FR_OK;
}

/* ---- leases (recorded and replayed like every other effect) ------------------------------ */

static fr_status host_lease_acquire(fr_call *call, const char *key, int64_t ttl_us, int64_t wait_us,
                                    uint64_t *fencing_token)
{
    if (call && fr__replay_serving(call->replay)) {
        json_object *want = json_object_new_string(key ? key : "");
        json_object *e = fr__replay_take(call->replay, "lease", want, "key"), *v;
        json_object_put(want);
        if (!e)
            return FR_E_CANCELLED;
        if (fencing_token && json_object_object_get_ex(e, "fencing_token", &v))
            *fencing_token = strtoull(json_object_get_string(v), NULL, 10);
        return json_object_object_get_ex(e, "status", &v) ? fr__status_from_json(v) : FR_E_INVALID;
    }
    uint64_t token = 0;
    fr_status st = fr__host_lease_acquire(call, key, ttl_us, wait_us, &token);
    if (fencing_token)
        *fencing_token = token;
    if (call && call->effects) {
        char text[24];
        snprintf(text, sizeof text, "%llu", (unsigned long long)token);
        json_object *e = fr__effect_new("lease");
        json_object_object_add(e, "key", json_object_new_string(key ? key : ""));
        json_object_object_add(e, "status", fr__status_json(st));
        json_object_object_add(e, "fencing_token", json_object_new_string(text));
        fr__effect_add(call, e);
    }
    return st;
}

static fr_status host_lease_release(fr_call *call, const char *key)
{
    if (call && fr__replay_serving(call->replay)) {
        json_object *want = json_object_new_string(key ? key : "");
        fr_status st = taken_status(call, "lease_release", want, "key");
        json_object_put(want);
        return st;
    }
    fr_status st = fr__host_lease_release(call, key);
    if (call && call->effects) {
        json_object *e = fr__effect_new("lease_release");
        json_object_object_add(e, "key", json_object_new_string(key ? key : ""));
        json_object_object_add(e, "status", fr__status_json(st));
        fr__effect_add(call, e);
    }
    return st;
}

/* ---- idempotency keys (ABI 1.2) ---------------------------------------------------------- */

/* sha256(run id, step, attempt, ordinal), 32 hex digits in the call's arena: the same for
 * the same call of the same run whichever execution makes it, so a vendor that honours
 * idempotency keys answers a call made again after a resume without doing it twice. */
static const char *host_idempotency_key(fr_call *call)
{
    if (!call)
        return NULL;
    fr_call *root = call;
    while (root->parent)
        root = root->parent;
    int ordinal = ++root->idempotency_keys;
    char text[512], hex[65];
    int n = snprintf(text, sizeof text, "%s\n%s\n%d\n%d", call->run_id ? call->run_id : "",
                     call->step_id ? call->step_id : "", call->attempt, ordinal);
    if (n < 0)
        return NULL;
    fr__sha256_hex(text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1, hex);
    char *key = fr__arena_alloc(call->arena, 33);
    if (!key)
        return NULL;
    memcpy(key, hex, 32);
    key[32] = '\0';
    return key;
}

/* ---- the table ---------------------------------------------------------------------- */

static const fr_host_api host_api = {
    .struct_size = sizeof(fr_host_api),
    .abi_version = FR_ABI_VERSION,
    .log = host_log,
    .alloc = host_alloc,
    .free_mem = host_free_mem,
    .clock_us = host_clock_us,
    .sleep_us = host_sleep_us,
    .random_u64 = host_random_u64,
    .http = host_http,
    .provider_call = host_provider_call,
    .metric = host_metric,
    .deadline_us = host_deadline_us,
    .check_cancel = host_check_cancel,
    .attempt = host_attempt,
    .step_id = host_step_id,
    .set_error = fr__call_set_error,
    .set_retry_after = host_set_retry_after,
    .stream_chunk = host_stream_chunk,
    .secret_env = host_secret_env,
    .lease_acquire = host_lease_acquire,
    .lease_release = host_lease_release,
    .http_ex = host_http_ex,
    .idempotency_key = host_idempotency_key,
};

const fr_host_api *fr__host_api(void)
{
    return &host_api;
}

fr_status fr__invoke_agent(fr_call *c, const char *input, size_t input_len, char **out,
                           size_t *out_len)
{
    const fr_plugin *d = c->inst->plugin->desc;
    char *res = NULL;
    size_t res_len = 0;
    fr_status st = d->invoke(c->inst->state, c, input, input_len, &res, &res_len);
    if (st > 0) {
        fr__call_set_error(c, "plugin \"%s\" returned positive status %d (statuses are <= 0)",
                           d->name, st);
        return FR_E_AGENT;
    }
    if (st != FR_OK)
        return st;
    if (!res || res_len > (size_t)INT32_MAX || !fr__json_valid(res, res_len)) {
        fr__call_set_error(c, "plugin \"%s\" returned output that is not valid JSON", d->name);
        return FR_E_BAD_RESPONSE;
    }
    char *copy = malloc(res_len + 1);
    if (!copy)
        return FR_E_NOMEM;
    memcpy(copy, res, res_len);
    copy[res_len] = '\0';
    *out = copy;
    *out_len = res_len;
    return FR_OK;
}
