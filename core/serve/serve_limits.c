/* serve's per-request limits: one table (flag, name, kind, default) drives parsing,
 * defaults and the values reported in limit_exceeded errors. */
#include "serve/serve_limits.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "base/duration.h"
#include "base/json_check.h"
#include "base/json_parse.h"
#include "base/size.h"
#include "http/http.h"

typedef enum limit_kind { LIMIT_COUNT, LIMIT_SIZE, LIMIT_DURATION } limit_kind;

static const struct {
    const char *flag, *name;
    limit_kind kind;
    const char *def; /* the documented default, in the flag's syntax */
} limits[FR_LIMIT_COUNT_] = {
    /* Ten times the largest example (manifests/bench/parallel100.yaml). */
    [FR_LIMIT_MAX_STEPS] = {"--max-steps", "max_steps", LIMIT_COUNT, "1000"},
    /* Over three times the default pool (10) and four times the largest example's. */
    [FR_LIMIT_MAX_THREADS] = {"--max-threads", "max_threads", LIMIT_COUNT, "32"},
    /* Twenty steps at the default 30 s step timeout; a slot of --max-runs comes back. */
    [FR_LIMIT_MAX_RUN_TIMEOUT] = {"--max-run-timeout", "max_run_timeout", LIMIT_DURATION, "10m"},
    /* A traced run of a 1 MiB input (the default --max-body) through a few steps. */
    [FR_LIMIT_MAX_RUN_BYTES] = {"--max-run-bytes", "max_run_bytes", LIMIT_SIZE, "16MiB"},
    /* Ten times what a manifest of --max-steps steps needs. */
    [FR_LIMIT_MAX_YAML_NODES] = {"--max-yaml-nodes", "max_yaml_nodes", LIMIT_COUNT, "100000"},
    [FR_LIMIT_MAX_YAML_ALIASES] = {"--max-yaml-aliases", "max_yaml_aliases", LIMIT_COUNT, "10000"},
    /* Parsed by serve.c with the other HTTP settings; here for files and messages. */
    [FR_LIMIT_MAX_BODY] = {"--max-body", "max_body", LIMIT_SIZE, "1MiB"},
};

const char *fr__limit_flag(fr_limit_id id)
{
    return limits[id].flag;
}

const char *fr__limit_name(fr_limit_id id)
{
    return limits[id].name;
}

int fr__limit_by_name(const char *name)
{
    for (int i = 0; name && i < FR_LIMIT_COUNT_; i++)
        if (!strcmp(limits[i].name, name))
            return i;
    return -1;
}

int fr__serve_limits_set(fr_serve_limits *l, fr_limit_id id, const char *text, char *err,
                         size_t errlen)
{
    const char *why = NULL;
    int64_t v = 0;
    int bad;
    if (limits[id].kind == LIMIT_DURATION) {
        bad = fr__duration_parse(text, &v, &why) != 0;
    } else {
        uint64_t u = 0;
        char *end;
        errno = 0;
        if (limits[id].kind == LIMIT_SIZE)
            bad = fr__size_parse(text, &u, &why) != 0;
        else
            bad = !text || *text < '0' || *text > '9' || (u = strtoull(text, &end, 10), errno) ||
                  *end;
        bad = bad || u > INT64_MAX;
        v = (int64_t)u;
    }
    if (bad || v <= 0) {
        snprintf(err, errlen, "%s %s: expected a positive %s%s%s", limits[id].flag,
                 text ? text : "",
                 limits[id].kind == LIMIT_DURATION ? "duration (e.g. 10m)"
                 : limits[id].kind == LIMIT_SIZE   ? "size (e.g. 16MiB)"
                                                   : "integer",
                 why ? ": " : "", why ? why : "");
        return -1;
    }
    l->value[id] = v;
    return 0;
}

void fr__serve_limits_defaults(fr_serve_limits *l)
{
    char err[128];
    memset(l, 0, sizeof *l);
    for (int i = 0; i < FR_LIMIT_COUNT_; i++)
        (void)fr__serve_limits_set(l, (fr_limit_id)i, limits[i].def, err, sizeof err);
}

int64_t fr__limit_max(const fr_serve_limits *l, fr_limit_id id)
{
    return limits[id].kind == LIMIT_DURATION ? l->value[id] / 1000 : l->value[id];
}

fr_yaml_limits fr__serve_yaml_limits(const fr_serve_limits *l)
{
    return (fr_yaml_limits){.max_nodes = (size_t)l->value[FR_LIMIT_MAX_YAML_NODES],
                            .max_aliases = (size_t)l->value[FR_LIMIT_MAX_YAML_ALIASES]};
}

/* The first timeout of m over `max`: its place in the manifest in *what. */
static int64_t timeout_over(const fr_manifest *m, int64_t max, char *what, size_t size)
{
    if (m->run_timeout_us > max) {
        snprintf(what, size, "router.run_timeout");
        return m->run_timeout_us;
    }
    if (m->default_timeout_us > max) {
        snprintf(what, size, "router.default_timeout");
        return m->default_timeout_us;
    }
    for (size_t i = 0; i < m->n_agents; i++)
        if (m->agents[i].timeout_us > max) {
            snprintf(what, size, "agent \"%s\": timeout", m->agents[i].id);
            return m->agents[i].timeout_us;
        }
    return 0;
}

int fr__serve_limits_apply(const fr_serve_limits *l, fr_manifest *m, fr_limit_id *which, char *msg,
                           size_t msglen)
{
    int64_t max_steps = l->value[FR_LIMIT_MAX_STEPS];
    if ((int64_t)m->n_steps > max_steps) {
        *which = FR_LIMIT_MAX_STEPS;
        snprintf(msg, msglen, "the pipeline has %zu steps; this server runs at most %lld (%s)",
                 m->n_steps, (long long)max_steps, limits[*which].flag);
        return -1;
    }
    int64_t max_to = l->value[FR_LIMIT_MAX_RUN_TIMEOUT];
    /* Only what the tenant wrote is refused: the built-in 30 s (or the operator's
     * DEFAULT_TIMEOUT) is lowered to the maximum. */
    if (m->default_timeout_us > max_to &&
        !fr__ymap_get(fr__ymap_get(m->doc.root, "router"), "default_timeout"))
        m->default_timeout_us = max_to;
    char what[160], a[32], b[32];
    int64_t over = timeout_over(m, max_to, what, sizeof what);
    if (over) {
        *which = FR_LIMIT_MAX_RUN_TIMEOUT;
        snprintf(msg, msglen, "%s %s is longer than this server allows: at most %s (%s)", what,
                 fr__duration_format(over, a, sizeof a), fr__duration_format(max_to, b, sizeof b),
                 limits[*which].flag);
        return -1;
    }
    /* Threads must not scale with what a tenant asks for: clamp, and say so. */
    int64_t max_threads = l->value[FR_LIMIT_MAX_THREADS];
    if (m->worker_pool_size > max_threads) {
        int asked = m->worker_pool_size;
        m->worker_pool_size = (int)max_threads;
        /* The built-in default (or the operator's WORKER_POOL_SIZE) goes quietly. */
        if (fr__ymap_get(fr__ymap_get(m->doc.root, "router"), "worker_pool_size"))
            (void)fr__manifest_note(m,
                                    "router.worker_pool_size %d clamped to %lld, the server's "
                                    "maximum (--max-threads)",
                                    asked, (long long)max_threads);
    }
    if (m->run_timeout_us == 0)
        m->run_timeout_us = max_to;
    return 0;
}

/* *report with `note` added to its "notes" (a new text), or NULL on failure. */
static char *with_note(const char *report, const char *note)
{
    /* Step outputs nest up to FR_JSON_MAX_DEPTH inside the report's own four levels. */
    json_object *o = NULL, *notes;
    size_t at;
    const char *why;
    if (fr__json_parse_whole(report, strlen(report), FR_JSON_MAX_DEPTH + 8, &o, &at, &why) != 0 ||
        !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return NULL;
    }
    if (!json_object_object_get_ex(o, "notes", &notes)) {
        notes = json_object_new_array();
        json_object_object_add(o, "notes", notes);
    }
    json_object_array_add(notes, json_object_new_string(note));
    const char *text =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    char *copy = text ? strdup(text) : NULL;
    json_object_put(o);
    return copy;
}

int fr__serve_limits_fit_run(const fr_serve_limits *l, const char *run_id, const char *status,
                             char **report, char **trace, int *trace_refused)
{
    size_t max = (size_t)l->value[FR_LIMIT_MAX_RUN_BYTES];
    size_t rlen = *report ? strlen(*report) : 0, tlen = *trace ? strlen(*trace) : 0;
    if (rlen + tlen <= max)
        return 0;
    char note[256];
    if (*trace) {
        snprintf(note, sizeof note,
                 "the trace was not kept: with the report it takes %zu bytes, over this "
                 "server's max_run_bytes (%zu, --max-run-bytes)",
                 rlen + tlen, max);
        free(*trace);
        *trace = NULL;
        *trace_refused = 1;
        char *noted = rlen + strlen(note) + 16 <= max ? with_note(*report, note) : NULL;
        if (noted && strlen(noted) <= max) {
            free(*report);
            *report = noted;
            return 0;
        }
        free(noted);
    }
    /* The report alone is too big: a short one says what happened to the run. */
    snprintf(note, sizeof note,
             "the report was not kept: it takes %zu bytes, over this server's max_run_bytes "
             "(%zu, --max-run-bytes)%s",
             rlen, max, *trace_refused ? "; the trace was not kept either" : "");
    json_object *o = json_object_new_object(), *notes = json_object_new_array();
    json_object_object_add(o, "run_id", json_object_new_string(run_id));
    json_object_object_add(o, "status", json_object_new_string(status));
    json_object_object_add(o, "truncated", json_object_new_boolean(1));
    json_object_array_add(notes, json_object_new_string(note));
    json_object_object_add(o, "notes", notes);
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    free(*report);
    *report = text ? strdup(text) : NULL;
    json_object_put(o);
    return *report ? 0 : -1;
}

void fr__reply_limit(fr_reply *out, const fr_serve_limits *l, fr_limit_id id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_object *e, *o = fr__http_error_body_v(FR_HE_LIMIT_EXCEEDED, &e, fmt, ap);
    va_end(ap);
    json_object_object_add(e, "limit", json_object_new_string(fr__limit_name(id)));
    json_object_object_add(e, "max", json_object_new_int64(fr__limit_max(l, id)));
    free(out->body);
    fr__reply_json(out, fr__http_error_status(FR_HE_LIMIT_EXCEEDED), o);
    out->limit = fr__limit_name(id);
}
