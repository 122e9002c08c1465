/* The limit document: one JSON/YAML object that says what a tenant or an API key may use,
 * the same wherever it is written (serve's keys file, the control plane's
 * PUT /v1/tenants/ID/limits and PUT /v1/keys/KEY_ID/limits):
 *
 *     {"requests_per_minute": 600, "tokens_per_minute": 200000, "concurrent_runs": 8,
 *      "monthly_budget_micros": 50000000,
 *      "models": {"gpt-4o": {"tokens_per_minute": 50000}}}
 *
 * Every field is optional; an absent field (or null) means no limit.  Values are
 * non-negative integers (0 allows nothing).  A model entry (its key is the vendor model as
 * the provider reports it, "*" for any model) takes tokens_per_minute and
 * monthly_budget_micros only: a run's model is known at its provider calls, not when the
 * run is admitted.  Unknown fields, negative values and wrong types are refused with a
 * message naming the field ("models.gpt-4o.tokens_per_minute").
 *
 * Pure functions over their arguments: thread-safe. */
#ifndef FR_CORE_LIMITS_DOC_H
#define FR_CORE_LIMITS_DOC_H

#include <stddef.h>
#include <stdint.h>

struct json_object;

/* "No limit" in an fr_limit_set member. */
#define FR_NO_LIMIT (-1)

/* Most model entries one document may hold. */
#define FR_LIMITS_MAX_MODELS 64

/* One set of limits; FR_NO_LIMIT where none. */
typedef struct fr_limit_set {
    int64_t requests_per_minute;
    int64_t tokens_per_minute;
    int64_t concurrent_runs;
    int64_t monthly_budget_micros;
} fr_limit_set;

typedef struct fr_model_limits {
    char model[128];
    fr_limit_set set; /* requests_per_minute and concurrent_runs are always FR_NO_LIMIT */
} fr_model_limits;

typedef struct fr_limits_doc {
    fr_limit_set all;
    fr_model_limits *models; /* owned (fr__limits_doc_clear), n_models of them */
    size_t n_models;
} fr_limits_doc;

/* A document with no limit at all. */
void fr__limits_doc_init(fr_limits_doc *d);
void fr__limits_doc_clear(fr_limits_doc *d);
/* Deep copy; returns 0, or -1 on OOM (dst is then empty). */
int fr__limits_doc_copy(fr_limits_doc *dst, const fr_limits_doc *src);

/* Reads the document `o` (borrowed; NULL or JSON null: no limits).  Returns 0 and fills
 * *out (clear it with fr__limits_doc_clear), or -1 with a message naming the field in
 * err, prefixed with "limits" or with `label` when given (e.g. `tenant "acme": limits`);
 * *out is then empty. */
int fr__limits_doc_from_json(const struct json_object *o, const char *label, fr_limits_doc *out,
                             char *err, size_t errlen);

/* The same from JSON text (a request body): syntax errors are refused with their byte
 * offset. */
int fr__limits_doc_parse(const char *text, size_t len, fr_limits_doc *out, char *err,
                         size_t errlen);

/* The document as JSON (only the limits set, models as an object).  Caller releases it with
 * json_object_put; NULL on OOM. */
struct json_object *fr__limits_doc_to_json(const fr_limits_doc *d);

/* 1 when some limit of the document is a monthly budget. */
int fr__limits_doc_has_budget(const fr_limits_doc *d);
/* 1 when the document sets no limit at all. */
int fr__limits_doc_empty(const fr_limits_doc *d);

/* The model entry for `model`: its own, else "*", else NULL. */
const fr_model_limits *fr__limits_doc_model(const fr_limits_doc *d, const char *model);

/* The field names of a set, in the order of fr_limit_set ("requests_per_minute", ...). */
const char *fr__limit_field_name(int i);
#define FR_LIMIT_FIELDS 4
/* Member i of a set (0..FR_LIMIT_FIELDS-1). */
int64_t fr__limit_set_get(const fr_limit_set *s, int i);

#endif
