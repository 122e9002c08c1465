/* The limit document (limits_doc.h): one reader for the keys file, the control plane and
 * serve's HTTP routes, so that they cannot accept different things. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "base/json_parse.h"
#include "manifest/limits_doc.h"

static const char *const field_names[FR_LIMIT_FIELDS] = {
    "requests_per_minute", "tokens_per_minute", "concurrent_runs", "monthly_budget_micros"};

/* Which fields a model entry takes (see the header: the model is known per call). */
static const int per_model[FR_LIMIT_FIELDS] = {0, 1, 0, 1};

const char *fr__limit_field_name(int i)
{
    return i >= 0 && i < FR_LIMIT_FIELDS ? field_names[i] : "?";
}

static int64_t *member(fr_limit_set *s, int i)
{
    switch (i) {
    case 0: return &s->requests_per_minute;
    case 1: return &s->tokens_per_minute;
    case 2: return &s->concurrent_runs;
    default: return &s->monthly_budget_micros;
    }
}

int64_t fr__limit_set_get(const fr_limit_set *s, int i)
{
    return *member((fr_limit_set *)s, i);
}

static void set_none(fr_limit_set *s)
{
    for (int i = 0; i < FR_LIMIT_FIELDS; i++)
        *member(s, i) = FR_NO_LIMIT;
}

void fr__limits_doc_init(fr_limits_doc *d)
{
    memset(d, 0, sizeof *d);
    set_none(&d->all);
}

void fr__limits_doc_clear(fr_limits_doc *d)
{
    if (!d)
        return;
    free(d->models);
    fr__limits_doc_init(d);
}

int fr__limits_doc_copy(fr_limits_doc *dst, const fr_limits_doc *src)
{
    fr__limits_doc_init(dst);
    dst->all = src->all;
    if (src->n_models) {
        dst->models = malloc(src->n_models * sizeof *dst->models);
        if (!dst->models)
            return -1;
        memcpy(dst->models, src->models, src->n_models * sizeof *dst->models);
        dst->n_models = src->n_models;
    }
    return 0;
}

/* Reads one integer field.  Returns 0 (value in *v; FR_NO_LIMIT for null), or -1. */
static int read_value(const json_object *v, const char *label, const char *path, int64_t *out,
                      char *err, size_t errlen)
{
    if (!v) {
        *out = FR_NO_LIMIT;
        return 0;
    }
    if (!json_object_is_type(v, json_type_int)) {
        snprintf(err, errlen, "%s: field \"%s\": expected a non-negative integer, got %s", label,
                 path, json_type_to_name(json_object_get_type(v)));
        return -1;
    }
    int64_t x = json_object_get_int64(v);
    if (x < 0) {
        snprintf(err, errlen, "%s: field \"%s\": must not be negative (got %lld)", label, path,
                 (long long)x);
        return -1;
    }
    if (x == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX) {
        snprintf(err, errlen, "%s: field \"%s\": too large (at most %lld)", label, path,
                 (long long)INT64_MAX);
        return -1;
    }
    *out = x;
    return 0;
}

/* Reads a set from object `o`; `prefix` is the path of `o` ("" or "models.NAME."). */
static int read_set(const json_object *o, const char *label, const char *prefix, int model,
                    fr_limit_set *s, char *err, size_t errlen)
{
    set_none(s);
    json_object_object_foreach((json_object *)o, key, val)
    {
        char path[320];
        snprintf(path, sizeof path, "%s%s", prefix, key);
        int i = 0;
        while (i < FR_LIMIT_FIELDS && strcmp(key, field_names[i]) != 0)
            i++;
        if (i == FR_LIMIT_FIELDS) {
            if (!model && strcmp(key, "models") == 0)
                continue;
            snprintf(err, errlen,
                     "%s: unknown field \"%s\" (expected requests_per_minute, tokens_per_minute, "
                     "concurrent_runs, monthly_budget_micros%s)",
                     label, path, model ? "" : " or models");
            return -1;
        }
        if (model && !per_model[i]) {
            snprintf(err, errlen,
                     "%s: field \"%s\": not available per model (a model entry takes "
                     "tokens_per_minute and monthly_budget_micros)",
                     label, path);
            return -1;
        }
        if (read_value(val, label, path, member(s, i), err, errlen) != 0)
            return -1;
    }
    return 0;
}

int fr__limits_doc_from_json(const json_object *o, const char *label, fr_limits_doc *out, char *err,
                             size_t errlen)
{
    fr__limits_doc_init(out);
    if (!label)
        label = "limits";
    if (!o)
        return 0;
    if (!json_object_is_type(o, json_type_object)) {
        snprintf(err, errlen, "%s: expected an object, got %s", label,
                 json_type_to_name(json_object_get_type(o)));
        return -1;
    }
    if (read_set(o, label, "", 0, &out->all, err, errlen) != 0)
        return -1;
    json_object *models = NULL;
    if (!json_object_object_get_ex(o, "models", &models) || !models)
        return 0;
    if (!json_object_is_type(models, json_type_object)) {
        snprintf(err, errlen, "%s: field \"models\": expected an object of model names, got %s",
                 label, json_type_to_name(json_object_get_type(models)));
        return -1;
    }
    size_t n = (size_t)json_object_object_length(models);
    if (n > FR_LIMITS_MAX_MODELS) {
        snprintf(err, errlen, "%s: field \"models\": %zu entries, at most %d", label, n,
                 FR_LIMITS_MAX_MODELS);
        return -1;
    }
    out->models = calloc(n ? n : 1, sizeof *out->models);
    if (!out->models) {
        snprintf(err, errlen, "%s: out of memory", label);
        return -1;
    }
    json_object_object_foreach(models, name, entry)
    {
        char prefix[200];
        snprintf(prefix, sizeof prefix, "models.%s.", name);
        fr_model_limits *m = &out->models[out->n_models];
        if (name[0] == '\0' || strlen(name) >= sizeof m->model) {
            snprintf(err, errlen, "%s: field \"models\": a model name must have 1 to %zu bytes",
                     label, sizeof m->model - 1);
            goto fail;
        }
        if (!entry || !json_object_is_type(entry, json_type_object)) {
            snprintf(err, errlen, "%s: field \"models.%s\": expected an object, got %s", label,
                     name, json_type_to_name(json_object_get_type(entry)));
            goto fail;
        }
        if (read_set(entry, label, prefix, 1, &m->set, err, errlen) != 0)
            goto fail;
        snprintf(m->model, sizeof m->model, "%s", name);
        out->n_models++;
    }
    return 0;
fail:
    fr__limits_doc_clear(out);
    return -1;
}

int fr__limits_doc_parse(const char *text, size_t len, fr_limits_doc *out, char *err, size_t errlen)
{
    fr__limits_doc_init(out);
    json_object *o = NULL;
    size_t at = 0;
    const char *why = NULL;
    if (fr__json_parse_whole(text, len, 8, &o, &at, &why) != 0) {
        snprintf(err, errlen, "limits: malformed JSON at byte %zu: %s", at, why);
        return -1;
    }
    if (!o) {
        snprintf(err, errlen, "limits: expected an object, got null");
        return -1;
    }
    int rc = fr__limits_doc_from_json(o, NULL, out, err, errlen);
    json_object_put(o);
    return rc;
}

static void put_set(json_object *o, const fr_limit_set *s)
{
    for (int i = 0; i < FR_LIMIT_FIELDS; i++) {
        int64_t v = fr__limit_set_get(s, i);
        if (v != FR_NO_LIMIT)
            json_object_object_add(o, field_names[i], json_object_new_int64(v));
    }
}

json_object *fr__limits_doc_to_json(const fr_limits_doc *d)
{
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    put_set(o, &d->all);
    if (d->n_models) {
        json_object *ms = json_object_new_object();
        for (size_t i = 0; i < d->n_models; i++) {
            json_object *m = json_object_new_object();
            put_set(m, &d->models[i].set);
            json_object_object_add(ms, d->models[i].model, m);
        }
        json_object_object_add(o, "models", ms);
    }
    return o;
}

int fr__limits_doc_has_budget(const fr_limits_doc *d)
{
    if (d->all.monthly_budget_micros != FR_NO_LIMIT)
        return 1;
    for (size_t i = 0; i < d->n_models; i++)
        if (d->models[i].set.monthly_budget_micros != FR_NO_LIMIT)
            return 1;
    return 0;
}

int fr__limits_doc_empty(const fr_limits_doc *d)
{
    for (int i = 0; i < FR_LIMIT_FIELDS; i++)
        if (fr__limit_set_get(&d->all, i) != FR_NO_LIMIT)
            return 0;
    for (size_t k = 0; k < d->n_models; k++)
        for (int i = 0; i < FR_LIMIT_FIELDS; i++)
            if (fr__limit_set_get(&d->models[k].set, i) != FR_NO_LIMIT)
                return 0;
    return 1;
}

const fr_model_limits *fr__limits_doc_model(const fr_limits_doc *d, const char *model)
{
    const fr_model_limits *any = NULL;
    for (size_t i = 0; i < d->n_models; i++) {
        if (model && strcmp(d->models[i].model, model) == 0)
            return &d->models[i];
        if (strcmp(d->models[i].model, "*") == 0)
            any = &d->models[i];
    }
    return any;
}
