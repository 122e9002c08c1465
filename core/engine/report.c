/* The run report (docs/reference.md, "The run report"): the JSON that `run --json`, the HTTP
 * API and traces share.  Steps come in deterministic topological order. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "base/bytebuf.h"
#include "engine/engine.h"
#include "base/json_check.h"
#include "engine/pipeline.h"

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
    json_object_object_add(e, "message",
                           json_object_new_string(message ? message : fr_strerror(st)));
    return e;
}

static json_object *attempt_object(const fr_attempt_result *a, int with_effects)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "attempt", json_object_new_int(a->attempt));
    json_object_object_add(o, "agent", json_object_new_string(a->agent));
    json_object_object_add(o, "status",
                           json_object_new_string(a->status == FR_OK ? "succeeded" : "failed"));
    json_object_object_add(o, "class",
                           a->status == FR_OK
                               ? NULL
                               : json_object_new_string(fr_class_name(fr_status_class(a->status))));
    json_object_object_add(o, "message", str_or_null(a->message));
    json_object_object_add(o, "backoff_us", json_object_new_int64(a->backoff_us));
    json_object_object_add(o, "started_us", json_object_new_int64(a->started_us));
    json_object_object_add(o, "duration_us", json_object_new_int64(a->duration_us));
    if (a->note) {
        json_object *notes = json_object_new_array();
        json_object_array_add(notes, json_object_new_string(a->note));
        json_object_object_add(o, "notes", notes);
    }
    if (with_effects)
        json_object_object_add(o, "effects",
                               a->effects ? json_object_get(a->effects) : json_object_new_array());
    return o;
}

static json_object *step_object(const fr_manifest *m, int i, const fr_step_result *r,
                                int with_effects, int resumed)
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
    json_object_object_add(
        o, "error", r->state == FR_STEP_SUCCEEDED ? NULL : error_object(r->status, r->message));
    json_object_object_add(o, "duration_us", json_object_new_int64(r->duration_us));
    if (resumed)
        json_object_object_add(o, "from_journal", json_object_new_boolean(r->from_journal));
    json_object *atts = json_object_new_array();
    for (size_t j = 0; j < r->n_attempts; j++)
        json_object_array_add(atts, attempt_object(&r->attempts[j], with_effects));
    json_object_object_add(o, "attempts", atts);
    return o;
}

/* Breaker transitions in a deterministic order: by the step's report position, then
 * attempt, then arrival. */
static int *sort_pos;

static int cmp_transition(const void *a, const void *b)
{
    const fr_transition_record *x = a, *y = b;
    int px = x->step >= 0 ? sort_pos[x->step] : -1, py = y->step >= 0 ? sort_pos[y->step] : -1;
    if (px != py)
        return px < py ? -1 : 1;
    if (x->attempt != y->attempt)
        return x->attempt < y->attempt ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static json_object *transitions_array(const fr_manifest *m, const fr_run_result *r)
{
    json_object *arr = json_object_new_array();
    int *pos = calloc(m->n_steps ? m->n_steps : 1, sizeof *pos);
    fr_transition_record *t = malloc(r->n_transitions * sizeof *t);
    if (!pos || !t) {
        free(pos);
        free(t);
        return arr;
    }
    for (size_t k = 0; k < m->n_steps; k++)
        pos[m->topo[k]] = (int)k;
    memcpy(t, r->transitions, r->n_transitions * sizeof *t);
    /* qsort has no context argument: the report is built on one thread at a time. */
    static pthread_mutex_t sort_mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&sort_mu);
    sort_pos = pos;
    qsort(t, r->n_transitions, sizeof *t, cmp_transition);
    pthread_mutex_unlock(&sort_mu);
    for (size_t i = 0; i < r->n_transitions; i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "breaker", json_object_new_string(t[i].breaker));
        json_object_object_add(o, "from", json_object_new_string(t[i].from));
        json_object_object_add(o, "to", json_object_new_string(t[i].to));
        json_object_object_add(
            o, "step", t[i].step >= 0 ? json_object_new_string(m->steps[t[i].step].id) : NULL);
        json_object_object_add(o, "attempt", json_object_new_int(t[i].attempt));
        json_object_object_add(o, "reason", json_object_new_string(t[i].reason));
        json_object_array_add(arr, o);
    }
    free(pos);
    free(t);
    return arr;
}

json_object *fr__report_build(const fr_pipeline *p, const fr_run_result *r, int with_effects)
{
    const fr_manifest *m = fr__pipeline_manifest(p);
    json_object *root = json_object_new_object();
    if (!root)
        return NULL;
    json_object_object_add(root, "run_id", json_object_new_string(r->run_id));
    json_object_object_add(root, "status", json_object_new_string(fr__run_status_name(r->status)));
    json_object_object_add(root, "namespace", json_object_new_string(m->namespace_));
    json_object_object_add(root, "seed", json_object_new_uint64(r->seed));
    json_object_object_add(root, "executions",
                           json_object_new_int64(r->executions ? r->executions : 1));
    json_object *steps = json_object_new_array();
    for (size_t k = 0; k < m->n_steps; k++) {
        int i = m->topo[k];
        json_object_array_add(steps, step_object(m, i, &r->steps[i], with_effects, r->resumed));
    }
    json_object_object_add(root, "steps", steps);
    if (r->resumed)
        json_object_object_add(root, "resumed_from",
                               r->resumed_from ? json_object_get(r->resumed_from) : NULL);
    if (r->lease_key) {
        json_object *lease = json_object_new_object();
        json_object_object_add(lease, "key", json_object_new_string(r->lease_key));
        json_object_object_add(lease, "fencing_token", json_object_new_uint64(r->fencing_token));
        json_object_object_add(root, "lease", lease);
    }
    if (r->n_transitions)
        json_object_object_add(root, "breaker_transitions", transitions_array(m, r));
    if (m->n_notes) {
        json_object *notes = json_object_new_array();
        for (size_t i = 0; i < m->n_notes; i++)
            json_object_array_add(notes, json_object_new_string(m->notes[i]));
        json_object_object_add(root, "notes", notes);
    }
    return root;
}

/* ---- the compact report, written directly --------------------------------------------- */

/* The compact report is written as text: step outputs are already-validated JSON and go
 * in as they are, without a parse and a re-serialisation each (most of a report's cost
 * when outputs are large: serve returns one per request). */
static void put(fr_bytebuf *b, const char *s)
{
    fr__bytebuf_append(b, s, strlen(s));
}

static void put_str(fr_bytebuf *b, const char *s)
{
    if (!s) {
        fr__bytebuf_append(b, "null", 4);
        return;
    }
    if (fr__bytebuf_reserve(b, 6 * strlen(s) + 2)) {
        b->len = (size_t)(fr__json_put_string(b->data + b->len, s) - b->data);
        b->data[b->len] = '\0';
    }
}

static void put_error(fr_bytebuf *b, fr_status st, const char *message)
{
    put(b, "{\"class\":");
    put_str(b, fr_class_name(fr_status_class(st)));
    put(b, ",\"message\":");
    put_str(b, message ? message : fr_strerror(st));
    put(b, "}");
}

static void put_step(fr_bytebuf *b, const fr_manifest *m, int i, const fr_step_result *r,
                     int resumed)
{
    put(b, "{\"step\":");
    put_str(b, m->steps[i].id);
    put(b, ",\"agent\":");
    put_str(b, m->steps[i].agent);
    put(b, ",\"status\":");
    put_str(b, fr__step_state_name(r->state));
    put(b, ",\"answered_by\":");
    put_str(b, r->answered_by);
    put(b, ",\"output\":");
    if (r->state == FR_STEP_SUCCEEDED && r->output)
        fr__bytebuf_append(b, r->output, r->output_len); /* validated when the step settled */
    else
        put(b, "null");
    put(b, ",\"error\":");
    if (r->state == FR_STEP_SUCCEEDED || r->status == FR_OK)
        put(b, "null");
    else
        put_error(b, r->status, r->message);
    put(b, ",\"duration_us\":");
    fr__bytebuf_put_int(b, r->duration_us);
    if (resumed)
        put(b, r->from_journal ? ",\"from_journal\":true" : ",\"from_journal\":false");
    put(b, ",\"attempts\":[");
    for (size_t j = 0; j < r->n_attempts; j++) {
        const fr_attempt_result *a = &r->attempts[j];
        put(b, j ? ",{\"attempt\":" : "{\"attempt\":");
        fr__bytebuf_put_int(b, a->attempt);
        put(b, ",\"agent\":");
        put_str(b, a->agent);
        put(b, a->status == FR_OK ? ",\"status\":\"succeeded\",\"class\":null"
                                  : ",\"status\":\"failed\",\"class\":");
        if (a->status != FR_OK)
            put_str(b, fr_class_name(fr_status_class(a->status)));
        put(b, ",\"message\":");
        put_str(b, a->message);
        put(b, ",\"backoff_us\":");
        fr__bytebuf_put_int(b, a->backoff_us);
        put(b, ",\"started_us\":");
        fr__bytebuf_put_int(b, a->started_us);
        put(b, ",\"duration_us\":");
        fr__bytebuf_put_int(b, a->duration_us);
        if (a->note) {
            put(b, ",\"notes\":[");
            put_str(b, a->note);
            put(b, "]");
        }
        put(b, "}");
    }
    put(b, "]}");
}

static char *report_compact(const fr_pipeline *p, const fr_run_result *r)
{
    const fr_manifest *m = fr__pipeline_manifest(p);
    fr_bytebuf b = {0};
    put(&b, "{\"run_id\":");
    put_str(&b, r->run_id);
    put(&b, ",\"status\":");
    put_str(&b, fr__run_status_name(r->status));
    put(&b, ",\"namespace\":");
    put_str(&b, m->namespace_);
    put(&b, ",\"seed\":");
    fr__bytebuf_put_uint(&b, r->seed);
    put(&b, ",\"executions\":");
    fr__bytebuf_put_uint(&b, r->executions ? r->executions : 1);
    put(&b, ",\"steps\":[");
    for (size_t k = 0; k < m->n_steps; k++) {
        if (k)
            put(&b, ",");
        put_step(&b, m, m->topo[k], &r->steps[m->topo[k]], r->resumed);
    }
    put(&b, "]");
    if (r->resumed) {
        put(&b, ",\"resumed_from\":");
        put(&b, r->resumed_from
                    ? json_object_to_json_string_ext(r->resumed_from, JSON_C_TO_STRING_PLAIN)
                    : "null");
    }
    if (r->lease_key) {
        put(&b, ",\"lease\":{\"key\":");
        put_str(&b, r->lease_key);
        put(&b, ",\"fencing_token\":");
        fr__bytebuf_put_uint(&b, r->fencing_token);
        put(&b, "}");
    }
    if (r->n_transitions) {
        json_object *t = transitions_array(m, r);
        put(&b, ",\"breaker_transitions\":");
        put(&b, json_object_to_json_string_ext(t, JSON_C_TO_STRING_PLAIN |
                                                      JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(t);
    }
    for (size_t i = 0; i < m->n_notes; i++) {
        put(&b, i ? "," : ",\"notes\":[");
        put_str(&b, m->notes[i]);
    }
    put(&b, m->n_notes ? "]}" : "}");
    if (b.oom) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

char *fr__report_json(const fr_pipeline *p, const fr_run_result *r, int pretty)
{
    if (!pretty)
        return report_compact(p, r);
    json_object *root = fr__report_build(p, r, 0);
    if (!root)
        return NULL;
    int flags = JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE;
    const char *text = json_object_to_json_string_ext(root, flags);
    char *copy = text ? strdup(text) : NULL;
    json_object_put(root);
    return copy;
}
