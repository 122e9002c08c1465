/* The run report (DESIGN.md, "Report and trace"): the JSON that `run --json`, the HTTP
 * API and traces share.  Steps come in deterministic topological order. */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "engine.h"

const char *fr__step_state_name(fr_step_state s)
{
    switch (s) {
    case FR_STEP_SUCCEEDED: return "succeeded";
    case FR_STEP_FAILED: return "failed";
    case FR_STEP_SKIPPED: return "skipped";
    case FR_STEP_RUNNING: return "running";
    case FR_STEP_PENDING: break;
    }
    return "pending";
}

const char *fr__run_status_name(fr_run_status s)
{
    switch (s) {
    case FR_RUN_SUCCEEDED: return "succeeded";
    case FR_RUN_FAILED: return "failed";
    case FR_RUN_CANCELLED: return "cancelled";
    }
    return "failed";
}

static json_object *str_or_null(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

static json_object *error_object(fr_status st, const char *message)
{
    if (st == FR_OK)
        return NULL;
    json_object *e = json_object_new_object();
    json_object_object_add(e, "class", json_object_new_string(fr_class_name(fr_status_class(st))));
    json_object_object_add(e, "message", json_object_new_string(message ? message : fr_strerror(st)));
    return e;
}

static json_object *attempt_object(const fr_attempt_result *a)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "attempt", json_object_new_int(a->attempt));
    json_object_object_add(o, "agent", json_object_new_string(a->agent));
    json_object_object_add(o, "status", json_object_new_string(a->status == FR_OK ? "succeeded" : "failed"));
    json_object_object_add(o, "class", a->status == FR_OK ? NULL
                                        : json_object_new_string(fr_class_name(fr_status_class(a->status))));
    json_object_object_add(o, "message", str_or_null(a->message));
    json_object_object_add(o, "backoff_us", json_object_new_int64(a->backoff_us));
    json_object_object_add(o, "duration_us", json_object_new_int64(a->duration_us));
    return o;
}

static json_object *step_object(const fr_manifest *m, int i, const fr_step_result *r)
{
    const fr_step_cfg *st = &m->steps[i];
    json_object *o = json_object_new_object();
    json_object_object_add(o, "step", json_object_new_string(st->id));
    json_object_object_add(o, "agent", json_object_new_string(st->agent));
    json_object_object_add(o, "status", json_object_new_string(fr__step_state_name(r->state)));
    json_object_object_add(o, "answered_by", str_or_null(r->answered_by));
    json_object *out = NULL;
    if (r->state == FR_STEP_SUCCEEDED && r->output)
        out = json_tokener_parse(r->output);
    json_object_object_add(o, "output", out);
    json_object_object_add(o, "error", r->state == FR_STEP_SUCCEEDED ? NULL
                                                                      : error_object(r->status, r->message));
    json_object_object_add(o, "duration_us", json_object_new_int64(r->duration_us));
    json_object *atts = json_object_new_array();
    for (size_t j = 0; j < r->n_attempts; j++)
        json_object_array_add(atts, attempt_object(&r->attempts[j]));
    json_object_object_add(o, "attempts", atts);
    return o;
}

char *fr__report_json(const fr_pipeline *p, const fr_run_result *r, int pretty)
{
    const fr_manifest *m = fr__pipeline_manifest(p);
    json_object *root = json_object_new_object();
    if (!root)
        return NULL;
    json_object_object_add(root, "run_id", json_object_new_string(r->run_id));
    json_object_object_add(root, "status", json_object_new_string(fr__run_status_name(r->status)));
    json_object_object_add(root, "namespace", json_object_new_string(m->namespace_));
    json_object_object_add(root, "seed", json_object_new_uint64(r->seed));
    json_object *steps = json_object_new_array();
    for (size_t k = 0; k < m->n_steps; k++) {
        int i = m->topo[k];
        json_object_array_add(steps, step_object(m, i, &r->steps[i]));
    }
    json_object_object_add(root, "steps", steps);
    int flags = pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED : JSON_C_TO_STRING_PLAIN;
    flags |= JSON_C_TO_STRING_NOSLASHESCAPE;
    const char *text = json_object_to_json_string_ext(root, flags);
    char *copy = text ? strdup(text) : NULL;
    json_object_put(root);
    return copy;
}
