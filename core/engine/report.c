/* The run report (docs/reference.md, "The run report"): the JSON that `run --json`, the HTTP
 * API and traces share.  Steps come in deterministic topological order.
 *
 * The report is written as text (core/base/json_write.h), once, for every use: step
 * outputs are already-validated JSON and go in as they are, without a parse and a
 * re-serialisation each, and no json-c tree is built (serve writes one per request, and a
 * trace holding it).  Callers that want a tree parse that text. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "base/bytebuf.h"
#include "base/json_check.h"
#include "base/json_write.h"
#include "base/secret.h"
#include "engine/engine.h"
#include "engine/pipeline.h"
#include "host/journal_sink.h"

/* A string; scrubbed of secrets when `scrub` (as fr__secret_scrub_json scrubs a tree). */
static void put_str(fr_bytebuf *b, const char *s, int scrub)
{
    fr__json_write_cstr_scrub(b, s, scrub);
}

/* A json-c value (effects, resumed_from); with `scrub`, scrubbed in place first, as the
 * trace's tree was. */
static void put_tree(fr_bytebuf *b, json_object *o, int scrub)
{
    if (scrub)
        fr__secret_scrub_json(o);
    fr__json_write_value(b, o, &fr__journal_raw_marker);
}

json_object *fr__report_parse_len(const char *text, size_t len)
{
    if (!text || len > INT32_MAX)
        return NULL;
    json_tokener *tok = json_tokener_new_ex(FR_REPORT_MAX_DEPTH);
    json_object *o = tok ? json_tokener_parse_ex(tok, text, (int)len) : NULL;
    if (tok && json_tokener_get_error(tok) == json_tokener_continue)
        o = json_tokener_parse_ex(tok, "", 1); /* a number at the end: the end ends it */
    if (tok && json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

void fr__report_put_json_text(fr_bytebuf *b, const char *text, size_t len, int scrub)
{
    if (!scrub) { /* validated when it was made (a step's output, the run's input) */
        fr__bytebuf_append(b, text, len);
        return;
    }
    json_object *o = fr__report_parse_len(text, len);
    put_tree(b, o, 1);
    json_object_put(o);
}

static void put_error(fr_bytebuf *b, fr_status st, const char *message, int scrub)
{
    fr__bytebuf_puts(b, "{\"class\":");
    put_str(b, fr_class_name(fr_status_class(st)), scrub);
    fr__bytebuf_puts(b, ",\"message\":");
    put_str(b, message ? message : fr_strerror(st), scrub);
    fr__bytebuf_puts(b, "}");
}

static void put_attempt(fr_bytebuf *b, const fr_attempt_result *a, int flags)
{
    int scrub = flags & FR_REPORT_SCRUB;
    fr__bytebuf_puts(b, "{\"attempt\":");
    fr__bytebuf_put_int(b, a->attempt);
    fr__bytebuf_puts(b, ",\"agent\":");
    put_str(b, a->agent, scrub);
    fr__bytebuf_puts(b, ",\"status\":");
    put_str(b, a->status == FR_OK ? "succeeded" : "failed", scrub);
    fr__bytebuf_puts(b, ",\"class\":");
    put_str(b, a->status == FR_OK ? NULL : fr_class_name(fr_status_class(a->status)), scrub);
    fr__bytebuf_puts(b, ",\"message\":");
    put_str(b, a->message, scrub);
    fr__bytebuf_puts(b, ",\"backoff_us\":");
    fr__bytebuf_put_int(b, a->backoff_us);
    fr__bytebuf_puts(b, ",\"started_us\":");
    fr__bytebuf_put_int(b, a->started_us);
    fr__bytebuf_puts(b, ",\"duration_us\":");
    fr__bytebuf_put_int(b, a->duration_us);
    if (a->note) {
        fr__bytebuf_puts(b, ",\"notes\":[");
        put_str(b, a->note, scrub);
        fr__bytebuf_puts(b, "]");
    }
    if (flags & FR_REPORT_EFFECTS) {
        fr__bytebuf_puts(b, ",\"effects\":");
        if (a->effects)
            put_tree(b, a->effects, scrub);
        else
            fr__bytebuf_puts(b, "[]");
    }
    fr__bytebuf_puts(b, "}");
}

static void put_step(fr_bytebuf *b, const fr_manifest *m, int i, const fr_step_result *r,
                     int resumed, int flags)
{
    int scrub = flags & FR_REPORT_SCRUB;
    fr__bytebuf_puts(b, "{\"step\":");
    put_str(b, m->steps[i].id, scrub);
    fr__bytebuf_puts(b, ",\"agent\":");
    put_str(b, m->steps[i].agent, scrub);
    fr__bytebuf_puts(b, ",\"status\":");
    put_str(b, fr__step_state_name(r->state), scrub);
    fr__bytebuf_puts(b, ",\"answered_by\":");
    put_str(b, r->answered_by, scrub);
    fr__bytebuf_puts(b, ",\"output\":");
    if (r->state == FR_STEP_SUCCEEDED && r->output)
        fr__report_put_json_text(b, r->output, r->output_len, scrub);
    else
        fr__bytebuf_puts(b, "null");
    fr__bytebuf_puts(b, ",\"error\":");
    if (r->state == FR_STEP_SUCCEEDED || r->status == FR_OK)
        fr__bytebuf_puts(b, "null");
    else
        put_error(b, r->status, r->message, scrub);
    fr__bytebuf_puts(b, ",\"duration_us\":");
    fr__bytebuf_put_int(b, r->duration_us);
    if (resumed)
        fr__bytebuf_puts(b, r->from_journal ? ",\"from_journal\":true" : ",\"from_journal\":false");
    fr__bytebuf_puts(b, ",\"attempts\":[");
    for (size_t j = 0; j < r->n_attempts; j++) {
        if (j)
            fr__bytebuf_puts(b, ",");
        put_attempt(b, &r->attempts[j], flags);
    }
    fr__bytebuf_puts(b, "]}");
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

static void put_transitions(fr_bytebuf *b, const fr_manifest *m, const fr_run_result *r, int scrub)
{
    int *pos = calloc(m->n_steps ? m->n_steps : 1, sizeof *pos);
    fr_transition_record *t = malloc(r->n_transitions * sizeof *t);
    if (!pos || !t) {
        free(pos);
        free(t);
        b->oom = 1;
        return;
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
    fr__bytebuf_puts(b, "[");
    for (size_t i = 0; i < r->n_transitions; i++) {
        fr__bytebuf_puts(b, i ? ",{\"breaker\":" : "{\"breaker\":");
        put_str(b, t[i].breaker, scrub);
        fr__bytebuf_puts(b, ",\"from\":");
        put_str(b, t[i].from, scrub);
        fr__bytebuf_puts(b, ",\"to\":");
        put_str(b, t[i].to, scrub);
        fr__bytebuf_puts(b, ",\"step\":");
        put_str(b, t[i].step >= 0 ? m->steps[t[i].step].id : NULL, scrub);
        fr__bytebuf_puts(b, ",\"attempt\":");
        fr__bytebuf_put_int(b, t[i].attempt);
        fr__bytebuf_puts(b, ",\"reason\":");
        put_str(b, t[i].reason, scrub);
        fr__bytebuf_puts(b, "}");
    }
    fr__bytebuf_puts(b, "]");
    free(pos);
    free(t);
}

void fr__report_write(fr_bytebuf *b, const fr_pipeline *p, const fr_run_result *r, int flags)
{
    const fr_manifest *m = fr__pipeline_manifest(p);
    int scrub = flags & FR_REPORT_SCRUB;
    if (!(flags & FR_REPORT_IN_TRACE)) {
        fr__bytebuf_puts(b, "\"run_id\":");
        put_str(b, r->run_id, scrub);
        fr__bytebuf_puts(b, ",");
    }
    fr__bytebuf_puts(b, "\"status\":");
    put_str(b, fr__run_status_name(r->status), scrub);
    fr__bytebuf_puts(b, ",\"namespace\":");
    put_str(b, m->namespace_, scrub);
    if (!(flags & FR_REPORT_IN_TRACE)) {
        fr__bytebuf_puts(b, ",\"seed\":");
        fr__bytebuf_put_uint(b, r->seed);
    }
    fr__bytebuf_puts(b, ",\"executions\":");
    fr__bytebuf_put_uint(b, r->executions ? r->executions : 1);
    fr__bytebuf_puts(b, ",\"steps\":[");
    for (size_t k = 0; k < m->n_steps; k++) {
        if (k)
            fr__bytebuf_puts(b, ",");
        put_step(b, m, m->topo[k], &r->steps[m->topo[k]], r->resumed, flags);
    }
    fr__bytebuf_puts(b, "]");
    if (r->resumed) {
        fr__bytebuf_puts(b, ",\"resumed_from\":");
        put_tree(b, r->resumed_from, scrub);
    }
    if (r->lease_key) {
        fr__bytebuf_puts(b, ",\"lease\":{\"key\":");
        put_str(b, r->lease_key, scrub);
        fr__bytebuf_puts(b, ",\"fencing_token\":");
        fr__bytebuf_put_uint(b, r->fencing_token);
        fr__bytebuf_puts(b, "}");
    }
    if (r->n_transitions) {
        fr__bytebuf_puts(b, ",\"breaker_transitions\":");
        put_transitions(b, m, r, scrub);
    }
    for (size_t i = 0; i < m->n_notes; i++) {
        fr__bytebuf_puts(b, i ? "," : ",\"notes\":[");
        put_str(b, m->notes[i], scrub);
    }
    if (m->n_notes)
        fr__bytebuf_puts(b, "]");
}

static char *report_text(const fr_pipeline *p, const fr_run_result *r, int flags)
{
    fr_bytebuf b = {0};
    fr__bytebuf_puts(&b, "{");
    fr__report_write(&b, p, r, flags);
    fr__bytebuf_puts(&b, "}");
    if (b.oom) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

json_object *fr__report_build(const fr_pipeline *p, const fr_run_result *r, int with_effects)
{
    char *text = report_text(p, r, with_effects ? FR_REPORT_EFFECTS : 0);
    json_object *o = text ? fr__report_parse_len(text, strlen(text)) : NULL;
    free(text);
    return o;
}

char *fr__report_json(const fr_pipeline *p, const fr_run_result *r, int pretty)
{
    if (!pretty)
        return report_text(p, r, 0);
    json_object *root = fr__report_build(p, r, 0);
    if (!root)
        return NULL;
    int flags = JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE;
    const char *text = json_object_to_json_string_ext(root, flags);
    char *copy = text ? strdup(text) : NULL;
    json_object_put(root);
    return copy;
}
