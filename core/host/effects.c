/* Effect records and the secret registry. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/effects.h"
#include "host/host.h"
#include "host/journal_sink.h"

const char fr__journal_raw_marker = 'R';

json_object *fr__effect_new(const char *kind)
{
    json_object *e = json_object_new_object();
    if (e)
        fr__effect_put(e, "kind", json_object_new_string(kind));
    return e;
}

void fr__effect_put(json_object *o, const char *key, json_object *value)
{
    if (!o ||
        json_object_object_add_ex(
            o, key, value, JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_ADD_CONSTANT_KEY) != 0)
        json_object_put(value); /* out of memory: not leaked */
}

json_object *fr__breaker_effect(const char *breaker, int admission, const char *why)
{
    static const char *const names[] = {"allow", "probe", "reject", "unavailable"};
    json_object *e = fr__effect_new("breaker");
    if (!e)
        return NULL;
    json_object_object_add(e, "breaker", json_object_new_string(breaker));
    json_object_object_add(
        e, "admission",
        json_object_new_string(names[admission >= 0 && admission < 4 ? admission : 2]));
    if (admission == 3)
        json_object_object_add(e, "error", json_object_new_string(why ? why : ""));
    return e;
}

void fr__effect_add(fr_call *call, json_object *e)
{
    if (!call || !call->effects || !e) {
        json_object_put(e);
        return;
    }
    fr_cancel *c = call->cancel;
    size_t n = c ? atomic_fetch_add(&c->n_effects, 1) + 1 : 0;
    if (c && c->max_effects && n > c->max_effects) {
        /* A plugin that reads the clock in a loop would otherwise grow the record without
         * bound until the run times out.  A record with effects missing could not be
         * replayed, so the run stops instead. */
        json_object_put(e);
        if (n == c->max_effects + 1) {
            char why[200];
            snprintf(why, sizeof why,
                     "the run recorded more than %zu effects (clock reads, random draws, "
                     "sleeps, HTTP exchanges, provider calls), this server's bound for a "
                     "traced run (max_run_effects)",
                     c->max_effects);
            fr__cancel_fire_with(c, FR_E_BAD_REQUEST, why);
        }
        return;
    }
    json_object_array_add(call->effects, e);
    if (call->journal) {
        /* As it happens: a resume serves it back instead of making it again. */
        json_object *j = fr__journal_entry("effect", call->step_id, (long)call->attempt_index);
        if (j)
            json_object_object_add(j, "effect", json_object_get(e));
        fr__journal_put(call->journal, call->cancel, j, FR_JOURNAL_EFFECT);
    }
}

json_object *fr__status_json(fr_status st)
{
    return json_object_new_string(fr_status_name(st));
}

fr_status fr__status_from_json(json_object *v)
{
    const char *name =
        v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
    for (int s = 0; s >= -64; s--) {
        const char *n = fr_status_name(s);
        if (strcmp(n, "UNKNOWN") == 0)
            break;
        if (strcmp(n, name) == 0)
            return s;
    }
    return FR_E_INVALID;
}

json_object *fr__http_request_json(const fr_http_request *req)
{
    json_object *o = json_object_new_object();
    fr__effect_put(o, "method", json_object_new_string(req->method ? req->method : ""));
    fr__effect_put(o, "url", json_object_new_string(req->url ? req->url : ""));
    size_t secret = req->struct_size >= offsetof(fr_http_request, n_secret_headers) +
                                            sizeof req->n_secret_headers
                        ? req->n_secret_headers
                        : 0;
    if (secret > req->n_headers)
        secret = req->n_headers;
    json_object *hs = json_object_new_array();
    for (size_t i = secret; i < req->n_headers; i++)
        json_object_array_add(hs, json_object_new_string(req->headers[i]));
    fr__effect_put(o, "headers", hs);
    fr__effect_put(o, "secret_headers", json_object_new_int64((int64_t)secret));
    fr__effect_put(o, "body",
                   req->body ? json_object_new_string_len(req->body, (int)req->body_len)
                             : json_object_new_string(""));
    return o;
}
