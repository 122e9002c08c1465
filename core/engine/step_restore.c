/* Resumed runs: a step the journal settled takes its recorded outcome instead of running
 * again (core/host/replay_source.h, fr__replay_settled_step).  The recording is a step
 * object of the run report with its attempts' effects (docs/reference.md, "The trace"),
 * as the journal reader rebuilds it. */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "base/str.h"
#include "engine/pipeline.h"
#include "observe/obs_impl.h"

static const char *member(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

static int64_t member_int(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

/* The manifest's copy of an agent id (reports borrow them), or NULL. */
static const char *agent_id(const fr_manifest *m, const char *id)
{
    for (size_t i = 0; id && i < m->n_agents; i++)
        if (strcmp(m->agents[i].id, id) == 0)
            return m->agents[i].id;
    return NULL;
}

/* The status an error object's class stands for (FR_E_AGENT when unknown). */
static fr_status class_status(json_object *err, const char *cls)
{
    if (!cls)
        cls = member(err, "class");
    fr_error_class ec;
    return cls && fr_class_from_name(cls, &ec) == FR_OK ? fr_class_status(ec) : FR_E_AGENT;
}

/* The provider calls a recorded attempt completed, as the host noted them when it made
 * them (core/host/host.c): so that a resumed run reports the usage of the calls its dead
 * execution made (usage is reported when a run ends), each once, under the keys it would
 * have had.  The ordinal is the call's position among the attempt's recorded provider
 * calls.  Strings are borrowed from `effects`, which the attempt holds.  0, or -1 on OOM. */
static int restore_provider_calls(json_object *effects, fr_attempt_result *a)
{
    size_t n = json_object_array_length(effects), cap = 0;
    int ordinal = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(effects, i), *resp;
        const char *kind = member(e, "kind"), *st = member(e, "status");
        if (!kind || strcmp(kind, "provider") != 0)
            continue;
        ordinal++;
        if (!st || strcmp(st, fr_status_name(FR_OK)) != 0 || !member(e, "provider") ||
            !json_object_object_get_ex(e, "response", &resp))
            continue;
        if (a->n_provider_calls == cap) {
            cap = cap ? cap * 2 : 2;
            fr_provider_use *c = realloc(a->provider_calls, cap * sizeof *c);
            if (!c)
                return -1;
            a->provider_calls = c;
        }
        const char *text = json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PLAIN);
        fr_obs_usage seen = {.input_tokens = -1, .output_tokens = -1};
        if (text)
            fr__obs_scan_usage(text, strlen(text), &seen);
        fr_provider_use *c = &a->provider_calls[a->n_provider_calls++];
        c->provider = member(e, "provider");
        memcpy(c->model, seen.model, sizeof c->model);
        c->input_tokens = seen.input_tokens > 0 ? seen.input_tokens : 0;
        c->output_tokens = seen.output_tokens > 0 ? seen.output_tokens : 0;
        c->ordinal = ordinal;
        c->usage_unknown = seen.input_tokens < 0 && seen.output_tokens < 0;
    }
    return 0;
}

int fr__step_restore(const fr_manifest *m, json_object *rec, fr_step_result *r)
{
    const char *status = member(rec, "status");
    json_object *atts = NULL, *out = NULL, *err = NULL;
    json_object_object_get_ex(rec, "attempts", &atts);
    json_object_object_get_ex(rec, "output", &out);
    json_object_object_get_ex(rec, "error", &err);
    if (!status || !json_object_is_type(atts, json_type_array))
        return -1;
    for (size_t i = 0; i < json_object_array_length(atts); i++) {
        json_object *ra = json_object_array_get_idx(atts, i), *eff = NULL;
        fr_attempt_result *a = fr__step_add_attempt(r);
        if (!a)
            return -1;
        a->attempt = (int)member_int(ra, "attempt");
        a->agent = agent_id(m, member(ra, "agent"));
        if (!a->agent)
            return -1;
        const char *as = member(ra, "status");
        a->status =
            as && strcmp(as, "succeeded") == 0 ? FR_OK : class_status(NULL, member(ra, "class"));
        const char *msg = member(ra, "message");
        a->message = msg ? strdup(msg) : NULL;
        a->backoff_us = member_int(ra, "backoff_us");
        a->duration_us = member_int(ra, "duration_us");
        json_object *notes;
        if (json_object_object_get_ex(ra, "notes", &notes) &&
            json_object_is_type(notes, json_type_array) && json_object_array_length(notes) > 0)
            a->note = strdup(json_object_get_string(json_object_array_get_idx(notes, 0)));
        if (json_object_object_get_ex(ra, "effects", &eff) &&
            json_object_is_type(eff, json_type_array)) {
            a->effects = json_object_get(eff);
            if (restore_provider_calls(eff, a) != 0)
                return -1;
        }
    }
    r->duration_us = member_int(rec, "duration_us");
    r->answered_by = agent_id(m, member(rec, "answered_by"));
    if (strcmp(status, "succeeded") == 0) {
        const char *text = json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN |
                                                                   JSON_C_TO_STRING_NOSLASHESCAPE);
        r->output = strdup(text ? text : "null");
        if (!r->output)
            return -1;
        r->output_len = strlen(r->output);
        r->state = FR_STEP_SUCCEEDED;
        r->status = FR_OK;
    } else {
        r->state = FR_STEP_FAILED;
        r->status = class_status(err, NULL);
        const char *msg = member(err, "message");
        r->message = msg ? strdup(msg) : NULL;
    }
    r->from_journal = 1;
    return 0;
}
