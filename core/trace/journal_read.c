/* Reading a run journal back into a trace (core/trace/journal.h; journal.c writes it). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "base/json_parse.h"
#include "base/sha256.h"
#include "host/effects.h"
#include "trace/diff.h"
#include "trace/journal.h"
#include "trace/trace.h"

static int is_hex16(const char *s)
{
    for (int i = 0; i < 16; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static const char *str_member(json_object *o, const char *key)
{
    return fr__trace_member_string(o, key);
}

/* The step object of `id` in trace.steps, added (status "running") when new. */
static json_object *step_of(json_object *steps, const char *id)
{
    for (size_t i = 0; i < json_object_array_length(steps); i++) {
        json_object *s = json_object_array_get_idx(steps, i);
        const char *sid = str_member(s, "step");
        if (sid && strcmp(sid, id) == 0)
            return s;
    }
    json_object *s = json_object_new_object();
    json_object_object_add(s, "step", json_object_new_string(id));
    json_object_object_add(s, "status", json_object_new_string("running"));
    json_object_object_add(s, "attempts", json_object_new_array());
    json_object_array_add(steps, s);
    return s;
}

/* Applies one entry (not the header) to the rebuilt trace.  Returns NULL, or why not. */
static const char *apply(fr_journal_doc *d, json_object *e)
{
    const char *t = str_member(e, "t"), *step = str_member(e, "step");
    json_object *steps, *v;
    json_object_object_get_ex(d->trace, "steps", &steps);
    if (!t)
        return "no entry type \"t\"";
    if (strcmp(t, "resume") == 0) {
        d->executions++;
        return NULL;
    }
    if (strcmp(t, "end") == 0) {
        d->ended = 1;
        return NULL;
    }
    if (strcmp(t, "transition") == 0) {
        json_object *tr;
        if (!json_object_object_get_ex(d->trace, "breaker_transitions", &tr)) {
            tr = json_object_new_array();
            json_object_object_add(d->trace, "breaker_transitions", tr);
        }
        json_object *c = NULL;
        json_object_deep_copy(e, &c, NULL);
        if (c)
            json_object_object_del(c, "t");
        json_object_array_add(tr, c);
        return NULL;
    }
    if (!step)
        return "no step id";
    if (strcmp(t, "step") == 0) {
        json_object *s = step_of(steps, step);
        json_object_object_foreach(e, key, val)
        {
            if (strcmp(key, "t") != 0 && strcmp(key, "step") != 0)
                json_object_object_add(s, key, val ? json_object_get(val) : NULL);
        }
        const char *st = str_member(s, "status");
        if (!st || (strcmp(st, "succeeded") != 0 && strcmp(st, "failed") != 0))
            return "a step outcome must be succeeded or failed";
        return NULL;
    }
    if (!json_object_object_get_ex(e, "index", &v) || !json_object_is_type(v, json_type_int) ||
        json_object_get_int64(v) < 0)
        return "no attempt index";
    size_t index = (size_t)json_object_get_int64(v);
    json_object *s = step_of(steps, step), *atts;
    json_object_object_get_ex(s, "attempts", &atts);
    size_t n = json_object_array_length(atts);
    if (strcmp(t, "attempt") == 0) {
        if (index < n)
            return NULL; /* journaled again by a resume */
        if (index > n)
            return "attempt index skips attempts";
        const char *agent = str_member(e, "agent");
        json_object *at;
        if (!agent || !json_object_object_get_ex(e, "attempt", &at))
            return "an attempt needs its agent and number";
        json_object *a = json_object_new_object();
        json_object_object_add(a, "attempt", json_object_get(at));
        json_object_object_add(a, "agent", json_object_new_string(agent));
        json_object_object_add(a, "status", json_object_new_string("running"));
        json_object_object_add(a, "backoff_us",
                               json_object_object_get_ex(e, "backoff_us", &v)
                                   ? json_object_get(v)
                                   : json_object_new_int(0));
        json_object_object_add(a, "duration_us", json_object_new_int(0));
        json_object_object_add(a, "effects", json_object_new_array());
        json_object_object_add(a, "in_flight", json_object_new_boolean(1));
        json_object_array_add(atts, a);
        return NULL;
    }
    if (index >= n)
        return "names an attempt that was not started";
    json_object *a = json_object_array_get_idx(atts, index), *eff;
    if (strcmp(t, "effect") == 0) {
        json_object *x;
        if (!json_object_object_get_ex(e, "effect", &x) || !str_member(x, "kind"))
            return "an effect needs its kind";
        json_object_object_get_ex(a, "effects", &eff);
        json_object_array_add(eff, json_object_get(x));
        return NULL;
    }
    if (strcmp(t, "attempt_end") == 0) {
        json_object *sv;
        if (!json_object_object_get_ex(e, "status", &sv))
            return "an attempt end needs its status";
        fr_status st = fr__status_from_json(sv);
        if (st == FR_E_INVALID && strcmp(json_object_get_string(sv), "INVALID") != 0)
            return "unknown status";
        json_object_object_add(a, "status",
                               json_object_new_string(st == FR_OK ? "succeeded" : "failed"));
        json_object_object_add(
            a, "class",
            st == FR_OK ? NULL : json_object_new_string(fr_class_name(fr_status_class(st))));
        const char *msg = str_member(e, "message"), *note = str_member(e, "note");
        json_object_object_add(a, "message", msg ? json_object_new_string(msg) : NULL);
        json_object_object_add(a, "duration_us",
                               json_object_object_get_ex(e, "duration_us", &v)
                                   ? json_object_get(v)
                                   : json_object_new_int(0));
        if (note) {
            json_object *notes = json_object_new_array();
            json_object_array_add(notes, json_object_new_string(note));
            json_object_object_add(a, "notes", notes);
        }
        json_object_object_del(a, "in_flight");
        return NULL;
    }
    return "unknown entry type";
}

/* The header's checks: format, version and the fields a resume needs. */
static const char *check_header(json_object *h)
{
    const char *t = str_member(h, "t"), *f = str_member(h, "format");
    json_object *v;
    if (!t || strcmp(t, "header") != 0 || !f || strcmp(f, FR_JOURNAL_FORMAT) != 0)
        return "not a FluxRoute journal (the first entry is not its header)";
    if (!json_object_object_get_ex(h, "version", &v) ||
        json_object_get_int(v) != FR_JOURNAL_VERSION)
        return "unsupported journal version";
    static const char *const need[] = {"run_id", "manifest_name", "manifest_sha256", "manifest",
                                       NULL};
    for (int i = 0; need[i]; i++)
        if (!str_member(h, need[i]))
            return "the header lacks run_id, manifest_name, manifest_sha256 or manifest";
    if (!json_object_object_get_ex(h, "seed", &v) || !json_object_is_type(v, json_type_int))
        return "the header lacks its seed";
    if (!json_object_object_get_ex(h, "plugins", &v) || !json_object_is_type(v, json_type_array))
        return "the header lacks its plugins";
    return NULL;
}

static json_object *trace_from_header(json_object *h)
{
    json_object *t = json_object_new_object(), *v;
    json_object_object_add(t, "format", json_object_new_string(FR_TRACE_FORMAT));
    json_object_object_add(t, "version", json_object_new_int(FR_TRACE_VERSION));
    static const char *const copy[] = {"run_id",    "manifest_name", "manifest_sha256", "plugins",
                                       "providers", "seed",          "input",           NULL};
    for (int i = 0; copy[i]; i++)
        if (json_object_object_get_ex(h, copy[i], &v))
            json_object_object_add(t, copy[i], v ? json_object_get(v) : NULL);
    json_object_object_add(t, "steps", json_object_new_array());
    json_object_object_get_ex(h, "manifest", &v);
    json_object_object_add(t, "manifest", json_object_get(v));
    return t;
}

int fr__journal_parse(const char *text, size_t len, fr_journal_doc *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->executions = 1;
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        if (!nl) {
            out->truncated = 1; /* the last entry was being written */
            break;
        }
        size_t line_len = (size_t)(nl - (text + pos)), n = out->n_entries + 1;
        const char *line = text + pos, *why = NULL;
        char hex[65];
        json_object *e = NULL;
        size_t at;
        if (line_len < 18 || !is_hex16(line) || line[16] != ' ')
            why = "not a journal entry (checksum, space, JSON)";
        else if (fr__sha256_hex(line + 17, line_len - 17, hex), memcmp(hex, line, 16) != 0)
            why = "checksum mismatch: the entry was altered or corrupted";
        else if (fr__json_parse_whole(line + 17, line_len - 17, FR_JOURNAL_MAX_DEPTH, &e, &at,
                                      &why) != 0 ||
                 !json_object_is_type(e, json_type_object))
            why = why ? why : "not a JSON object";
        else if (n == 1)
            why = check_header(e);
        else
            why = apply(out, e);
        if (why) {
            snprintf(err, errlen, "entry %zu (byte %zu) is corrupted: %s", n, pos, why);
            json_object_put(e);
            fr__journal_doc_free(out);
            return -1;
        }
        if (n == 1) {
            out->header = e;
            out->trace = trace_from_header(e);
        } else {
            json_object_put(e);
        }
        out->n_entries = n;
        pos += line_len + 1;
        out->valid_len = pos;
    }
    if (!out->header) {
        snprintf(err, errlen, "%s",
                 len ? "entry 1 (byte 0) is incomplete: no journal header"
                     : "empty: no journal header");
        fr__journal_doc_free(out);
        return -1;
    }
    return 0;
}

int fr__journal_read(const char *path, fr_journal_doc *out, char *err, size_t errlen)
{
    size_t len = 0;
    char *text = fr__file_read(path, &len);
    if (!text) {
        snprintf(err, errlen, "cannot read journal %s: %s", path, strerror(errno));
        memset(out, 0, sizeof *out);
        return -1;
    }
    char why[800];
    int rc = fr__journal_parse(text, len, out, why, sizeof why);
    if (rc != 0)
        snprintf(err, errlen, "journal %s: %s", path, why);
    free(text);
    return rc;
}

void fr__journal_doc_free(fr_journal_doc *d)
{
    json_object_put(d->header);
    json_object_put(d->trace);
    memset(d, 0, sizeof *d);
}
