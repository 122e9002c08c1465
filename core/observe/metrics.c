/* Metrics: one process-wide registry and its Prometheus text exposition (the endpoints
 * that serve it are in core/http/metrics_endpoint.c and core/serve/serve_metrics.c).
 *
 * The metrics are a table (name, type, help, labels, buckets).  A series (one label set)
 * is created under the registry lock and never freed, so callers resolve it once and
 * then update it with atomic adds: the hot path formats no strings and takes no lock.
 * Plugin counters (host->metric) are families created on demand.
 *
 * Label values that tenants choose (agent ids, breaker names, provider ids, models) are
 * bounded: each namespace may create a number of series (fr__metrics_set_series_cap);
 * beyond it, new series carry "other" in those labels, so a tenant with ever new ids
 * grows the "other" series' counts, not the exposition; so does a value longer than
 * TENANT_VALUE_MAX bytes (ids have no length limit).  Namespaces themselves come from
 * the server's keys (serve refuses a manifest of another namespace): not folded. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/str.h"
#include "observe/obs_impl.h"

/* Latency buckets in microseconds (rendered in seconds). */
static const int64_t duration_buckets[] = {100,     500,      1000,     5000,    10000,   25000,
                                           50000,   100000,   250000,   500000,  1000000, 2500000,
                                           5000000, 10000000, 30000000, 60000000};
#define N_BUCKETS (sizeof duration_buckets / sizeof duration_buckets[0])

typedef enum metric_type { COUNTER, GAUGE, HISTOGRAM } metric_type;

typedef struct metric_def {
    const char *name, *help;
    metric_type type;
    const char *labels[5]; /* NULL-terminated */
} metric_def;

static const metric_def defs[FR_M_COUNT_] = {
    [FR_M_RUNS] = {"fluxroute_runs_total",
                   "Pipeline runs finished, by outcome.",
                   COUNTER,
                   {"namespace", "status"}},
    [FR_M_STEP_ATTEMPTS] = {"fluxroute_step_attempts_total",
                            "Step attempts finished (circuit_open rejections and hung attempts "
                            "included), by agent, outcome and error class.",
                            COUNTER,
                            {"namespace", "agent", "status", "class"}},
    [FR_M_STEP_DURATION] = {"fluxroute_step_duration_seconds",
                            "Step duration, retries, backoff and fallbacks included.",
                            HISTOGRAM,
                            {"namespace", "agent", "status"}},
    [FR_M_RETRIES] = {"fluxroute_retries_total",
                      "Attempts that retried the same agent.",
                      COUNTER,
                      {"namespace", "agent"}},
    [FR_M_CIRCUIT_STATE] = {"fluxroute_circuit_state",
                            "Circuit breaker state: 0 closed, 1 half_open, 2 open.",
                            GAUGE,
                            {"namespace", "breaker"}},
    [FR_M_CIRCUIT_TRANSITIONS] = {"fluxroute_circuit_transitions_total",
                                  "Circuit breaker state changes.",
                                  COUNTER,
                                  {"namespace", "breaker", "from", "to"}},
    [FR_M_PROVIDER_REQUESTS] = {"fluxroute_provider_requests_total",
                                "Provider calls, by provider, model and outcome.",
                                COUNTER,
                                {"provider", "model", "status", "class"}},
    [FR_M_PROVIDER_TOKENS] = {"fluxroute_provider_tokens_total",
                              "Tokens reported by providers, by direction (input|output).",
                              COUNTER,
                              {"provider", "model", "direction"}},
    [FR_M_PROVIDER_LATENCY] = {"fluxroute_provider_latency_seconds",
                               "Provider call latency.",
                               HISTOGRAM,
                               {"provider", "model"}},
    [FR_M_HTTP_REQUESTS] = {"fluxroute_http_requests_total",
                            "HTTP requests served, by route and status code.",
                            COUNTER,
                            {"route", "code"}},
    [FR_M_PLUGINS_LOADED] = {"fluxroute_plugins_loaded",
                             "Plugins loaded by the last pipeline built.",
                             GAUGE,
                             {NULL}},
    [FR_M_SPANS_EXPORTED] = {"fluxroute_otel_spans_exported_total",
                             "Spans accepted by the OTLP endpoint.",
                             COUNTER,
                             {NULL}},
    [FR_M_SPANS_DROPPED] = {"fluxroute_otel_spans_dropped_total",
                            "Spans dropped: queue full or export failed.",
                            COUNTER,
                            {"reason"}},
    [FR_M_SPAN_EXPORT_FAILURES] = {"fluxroute_otel_export_failures_total",
                                   "Failed OTLP export requests.",
                                   COUNTER,
                                   {NULL}},
    [FR_M_AUDIT_WRITE_ERRORS] = {"fluxroute_audit_write_errors_total",
                                 "Audit lines that could not be written.",
                                 COUNTER,
                                 {NULL}},
    [FR_M_LOG_WRITE_ERRORS] = {"fluxroute_log_write_errors_total",
                               "Invocation log lines that could not be written.",
                               COUNTER,
                               {NULL}},
    [FR_M_USAGE_REJECTED] = {"fluxroute_usage_rejected_total",
                             "Usage events the control plane refused as invalid (kept in "
                             "<spool>.rejected for an operator).",
                             COUNTER,
                             {NULL}},
    [FR_M_QUEUE_DEPTH] = {"fluxroute_queue_depth",
                          "Runs in the durable queue (--state redis), waiting or executing, "
                          "as this process last saw it.",
                          GAUGE,
                          {NULL}},
    [FR_M_QUEUE_CLAIMED] = {"fluxroute_queue_claimed_total",
                            "Queued runs this process claimed from a consumer that held them "
                            "past the visibility timeout.",
                            COUNTER,
                            {NULL}},
    [FR_M_RUN_EXECUTIONS] = {"fluxroute_run_executions_total",
                             "Executions of queued runs this process started (a run claimed "
                             "again counts again).",
                             COUNTER,
                             {NULL}},
    [FR_M_STATE_ERRORS] = {"fluxroute_state_errors_total",
                           "Operations on the shared state (serve --state redis) that failed, "
                           "by operation.",
                           COUNTER,
                           {"op"}},
    [FR_M_STATE_REACHABLE] = {"fluxroute_state_reachable",
                              "1 while the shared state (serve --state redis) is reachable, 0 "
                              "while it is not.",
                              GAUGE,
                              {NULL}},
    [FR_M_STATE_ROUND_TRIPS] = {"fluxroute_state_round_trips_total",
                                "Round trips to the shared state (serve --state redis).",
                                COUNTER,
                                {NULL}},
    [FR_M_LIMIT_REJECTIONS] = {"fluxroute_limit_rejections_total",
                               "Requests and provider calls refused by a tenant or key limit, by "
                               "tenant and limit (requests_per_minute, concurrent_runs, "
                               "tokens_per_minute, monthly_budget_micros).",
                               COUNTER,
                               {"tenant", "limit"}},
    [FR_M_BUDGET_USED] = {"fluxroute_budget_used_micros",
                          "A tenant's spend this calendar month (UTC) as serve counts it, in "
                          "micro-units of the rate card's currency.",
                          GAUGE,
                          {"tenant"}},
    [FR_M_USAGE_SPOOL_EVENTS] = {"fluxroute_usage_spool_events_total",
                                 "Usage events for the control plane, by state: queued (reported "
                                 "by a run), sent (acknowledged on the first try), spooled "
                                 "(written to the spool while the control plane could not be "
                                 "reached), replayed (spooled, acknowledged later), rejected "
                                 "(refused as invalid, kept in <spool>.rejected).",
                                 COUNTER,
                                 {"state"}},
    [FR_M_USAGE_SPOOL_DEPTH] = {"fluxroute_usage_spool_depth",
                                "Usage events in the spool file waiting for the control plane.",
                                GAUGE,
                                {NULL}},
    [FR_M_CP_REQUESTS] = {"fluxroute_cp_requests_total",
                          "Control-plane HTTP requests answered, by route pattern and status "
                          "code.",
                          COUNTER,
                          {"route", "code"}},
    [FR_M_CP_USAGE_EVENTS] = {"fluxroute_cp_usage_events_total",
                              "Usage events the control plane received, by result: accepted "
                              "(stored), duplicate (idempotency key already stored), rejected "
                              "(invalid or unknown tenant: nothing of the request stored), error "
                              "(storage failed; the sender retries).",
                              COUNTER,
                              {"result"}},
    [FR_M_CP_SQLITE_BUSY_RETRIES] = {"fluxroute_cp_sqlite_busy_retries_total",
                                     "Times the control plane found its SQLite database locked "
                                     "by another connection and waited to retry.",
                                     COUNTER,
                                     {NULL}},
    [FR_M_GATEWAY_REQUESTS] = {"fluxroute_gateway_requests_total",
                               "OpenAI gateway chat completions answered, by model route (the "
                               "routes file's name; \"other\" for unknown models) and HTTP "
                               "status.",
                               COUNTER,
                               {"model_route", "code"}},
};

struct fr_metric_series {
    struct fr_metric_series *next;
    char **labels;               /* owned label values */
    atomic_uint_fast64_t value;  /* counter / gauge (int64 bits) / double bits (plugins) */
    atomic_uint_fast64_t sum_us; /* histograms */
    atomic_uint_fast64_t buckets[N_BUCKETS + 1]; /* histograms: per bucket, last = +Inf */
};

typedef struct family {
    const char *name, *help; /* plugin families: owned */
    metric_type type;
    const char *const *label_names;
    size_t n_labels;
    unsigned tenant_mask; /* bit i: label i is tenant-chosen */
    int ns_label;         /* index of "namespace", or -1 */
    int is_double;
    fr_metric_series *series, **tail;
    struct family *next; /* plugin families */
} family;

/* Labels whose values tenants choose; series with them count against a namespace. */
static const char *const tenant_labels[] = {"agent", "breaker", "provider", "model", NULL};
static const char other_value[] = "other";
#define TENANT_VALUE_MAX 64

/* Series a namespace has created with tenant-chosen labels (reg_mu; never freed: the
 * namespaces are the server's). */
typedef struct ns_budget {
    struct ns_budget *next;
    size_t used;
    char ns[];
} ns_budget;

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static ns_budget *budgets;
static size_t series_cap = FR_METRICS_SERIES_PER_NAMESPACE_DEFAULT;
static family fams[FR_M_COUNT_];
static int fams_ready;
static family *plugin_fams;
static const char *const plugin_labels[] = {"plugin", NULL};

/* reg_mu held. */
static void fams_init(void)
{
    if (fams_ready)
        return;
    for (int i = 0; i < FR_M_COUNT_; i++) {
        family *f = &fams[i];
        f->name = defs[i].name;
        f->help = defs[i].help;
        f->type = defs[i].type;
        f->label_names = defs[i].labels;
        f->ns_label = -1;
        for (; f->n_labels < 5 && defs[i].labels[f->n_labels]; f->n_labels++) {
            const char *l = defs[i].labels[f->n_labels];
            for (int t = 0; tenant_labels[t]; t++)
                if (strcmp(l, tenant_labels[t]) == 0)
                    f->tenant_mask |= 1u << f->n_labels;
            if (strcmp(l, "namespace") == 0)
                f->ns_label = (int)f->n_labels;
        }
        f->tail = &f->series;
    }
    fams_ready = 1;
}

/* reg_mu held. */
static fr_metric_series *find_series(const family *f, const char *const *labels)
{
    for (fr_metric_series *s = f->series; s; s = s->next) {
        size_t i = 0;
        while (i < f->n_labels && strcmp(s->labels[i], labels[i] ? labels[i] : "") == 0)
            i++;
        if (i == f->n_labels)
            return s;
    }
    return NULL;
}

/* reg_mu held.  The budget of namespace `ns`, created on first use; NULL on OOM. */
static ns_budget *budget_of(const char *ns)
{
    ns_budget *b = budgets;
    while (b && strcmp(b->ns, ns) != 0)
        b = b->next;
    if (!b && (b = calloc(1, sizeof *b + strlen(ns) + 1)) != NULL) {
        strcpy(b->ns, ns);
        b->next = budgets;
        budgets = b;
    }
    return b;
}

/* reg_mu held.  A new series (labels copied); NULL on OOM. */
static fr_metric_series *new_series(family *f, const char *const *labels)
{
    fr_metric_series *s = calloc(1, sizeof *s);
    char **vals = calloc(f->n_labels + 1, sizeof *vals);
    if (!s || !vals) {
        free(s);
        free(vals);
        return NULL;
    }
    for (size_t i = 0; i < f->n_labels; i++) {
        if (!(vals[i] = strdup(labels[i] ? labels[i] : ""))) {
            while (i > 0)
                free(vals[--i]);
            free(vals);
            free(s);
            return NULL;
        }
    }
    s->labels = vals;
    *f->tail = s;
    f->tail = &s->next;
    return s;
}

/* reg_mu held.  The series with these labels; a new one with tenant-chosen labels counts
 * against the budget of namespace `ns` (NULL: the family's namespace label, else ""),
 * and past the cap is the series with "other" in their place. */
static fr_metric_series *family_series(family *f, const char *ns, const char *const *labels)
{
    fr_metric_series *s = find_series(f, labels);
    if (s || !f->tenant_mask)
        return s ? s : new_series(f, labels);
    if (!ns)
        ns = f->ns_label >= 0 && labels[f->ns_label] ? labels[f->ns_label] : "";
    int too_long = 0;
    for (size_t i = 0; i < f->n_labels; i++)
        too_long |= (f->tenant_mask & (1u << i)) && labels[i] &&
                    strnlen(labels[i], TENANT_VALUE_MAX + 1) > TENANT_VALUE_MAX;
    ns_budget *b = too_long ? NULL : budget_of(ns);
    if (b && b->used < series_cap) {
        if ((s = new_series(f, labels)) != NULL)
            b->used++;
        return s;
    }
    const char *folded[5];
    for (size_t i = 0; i < f->n_labels; i++)
        folded[i] = f->tenant_mask & (1u << i) ? other_value : labels[i];
    s = find_series(f, folded);
    return s ? s : new_series(f, folded);
}

fr_metric_series *fr__metric_series_in(fr_metric_id id, const char *ns, const char *const *labels)
{
    if ((unsigned)id >= FR_M_COUNT_)
        return NULL;
    static const char *const none[1] = {NULL};
    pthread_mutex_lock(&reg_mu);
    fams_init();
    fr_metric_series *s = family_series(&fams[id], ns, labels ? labels : none);
    pthread_mutex_unlock(&reg_mu);
    return s;
}

fr_metric_series *fr__metric_series(fr_metric_id id, const char *const *labels)
{
    return fr__metric_series_in(id, NULL, labels);
}

void fr__metrics_set_series_cap(size_t per_namespace)
{
    pthread_mutex_lock(&reg_mu);
    series_cap = per_namespace;
    pthread_mutex_unlock(&reg_mu);
}

void fr__metric_add(fr_metric_series *s, uint64_t n)
{
    if (s)
        atomic_fetch_add_explicit(&s->value, n, memory_order_relaxed);
}

void fr__metric_set(fr_metric_series *s, int64_t v)
{
    if (s)
        atomic_store_explicit(&s->value, (uint64_t)v, memory_order_relaxed);
}

void fr__metric_observe_us(fr_metric_series *s, int64_t us)
{
    if (!s)
        return;
    if (us < 0)
        us = 0;
    size_t b = 0;
    while (b < N_BUCKETS && us > duration_buckets[b])
        b++;
    atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum_us, (uint64_t)us, memory_order_relaxed);
}

void fr__metric_count(fr_metric_id id, const char *const *labels, uint64_t n)
{
    fr__metric_add(fr__metric_series(id, labels), n);
}

void fr__metrics_http_request(const char *route, int code)
{
    char c[FR_STR_INT_SIZE];
    fr__str_int(c, code);
    const char *labels[] = {route ? route : "", c};
    fr__metric_count(FR_M_HTTP_REQUESTS, labels, 1);
}

void fr__metrics_gateway_request(const char *model_route, int code)
{
    char c[FR_STR_INT_SIZE];
    fr__str_int(c, code);
    const char *labels[] = {model_route ? model_route : "other", c};
    fr__metric_count(FR_M_GATEWAY_REQUESTS, labels, 1);
}

/* ---- plugin counters ------------------------------------------------------------------ */

void fr__metrics_plugin_add(const char *plugin, const char *name, double value)
{
    /* Counters only go up; the name is [a-z_]+ (checked by the host). */
    if (!name || !*name || !(value > 0) || !isfinite(value))
        return;
    size_t n = strlen(name);
    if (n > 6 && strcmp(name + n - 6, "_total") == 0)
        n -= 6; /* "requests_total" -> fluxroute_plugin_requests_total */
    pthread_mutex_lock(&reg_mu);
    fams_init();
    family *f = plugin_fams;
    char *full = NULL;
    if (asprintf(&full, "fluxroute_plugin_%.*s_total", (int)n, name) < 0)
        full = NULL;
    while (f && full && strcmp(f->name, full) != 0)
        f = f->next;
    if (!f && full && (f = calloc(1, sizeof *f)) != NULL) {
        f->name = full;
        full = NULL;
        f->help = "Counter reported by plugins through host->metric.";
        f->type = COUNTER;
        f->label_names = plugin_labels;
        f->n_labels = 1;
        f->is_double = 1;
        f->tail = &f->series;
        family **pp = &plugin_fams; /* keep them sorted by name: stable output */
        while (*pp && strcmp((*pp)->name, f->name) < 0)
            pp = &(*pp)->next;
        f->next = *pp;
        *pp = f;
    }
    free(full);
    const char *labels[] = {plugin ? plugin : "unknown"};
    fr_metric_series *s = f ? family_series(f, NULL, labels) : NULL;
    if (s) {
        double d;
        uint64_t bits = atomic_load(&s->value);
        memcpy(&d, &bits, sizeof d);
        d += value;
        memcpy(&bits, &d, sizeof d);
        atomic_store(&s->value, bits); /* under reg_mu: no lost update */
    }
    pthread_mutex_unlock(&reg_mu);
}

/* ---- exposition ------------------------------------------------------------------------ */

static void put_escaped(FILE *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            fputs("\\\\", out);
        else if (*v == '"')
            fputs("\\\"", out);
        else if (*v == '\n')
            fputs("\\n", out);
        else
            fputc(*v, out);
    }
}

/* {a="x",b="y"[,le="..."]} or nothing. */
static void put_labels(FILE *out, const family *f, const fr_metric_series *s, const char *le)
{
    if (f->n_labels == 0 && !le)
        return;
    fputc('{', out);
    for (size_t i = 0; i < f->n_labels; i++) {
        fprintf(out, "%s%s=\"", i ? "," : "", f->label_names[i]);
        put_escaped(out, s->labels[i]);
        fputc('"', out);
    }
    if (le)
        fprintf(out, "%sle=\"%s\"", f->n_labels ? "," : "", le);
    fputc('}', out);
}

static void put_family(FILE *out, const family *f)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, types[f->type]);
    for (const fr_metric_series *s = f->series; s; s = s->next) {
        uint64_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
        if (f->type == HISTOGRAM) {
            uint64_t cum = 0;
            char le[32];
            for (size_t b = 0; b <= N_BUCKETS; b++) {
                cum += atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
                if (b < N_BUCKETS)
                    snprintf(le, sizeof le, "%g", (double)duration_buckets[b] / 1e6);
                else
                    strcpy(le, "+Inf");
                fprintf(out, "%s_bucket", f->name);
                put_labels(out, f, s, le);
                fprintf(out, " %llu\n", (unsigned long long)cum);
            }
            fprintf(out, "%s_sum", f->name);
            put_labels(out, f, s, NULL);
            fprintf(out, " %.6f\n", (double)atomic_load(&s->sum_us) / 1e6);
            fprintf(out, "%s_count", f->name);
            put_labels(out, f, s, NULL);
            fprintf(out, " %llu\n", (unsigned long long)cum);
        } else {
            fputs(f->name, out);
            put_labels(out, f, s, NULL);
            if (f->is_double) {
                double d;
                memcpy(&d, &v, sizeof d);
                fprintf(out, " %.17g\n", d);
            } else if (f->type == GAUGE) {
                fprintf(out, " %lld\n", (long long)(int64_t)v);
            } else {
                fprintf(out, " %llu\n", (unsigned long long)v);
            }
        }
    }
}

char *fr__metrics_render(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out)
        return NULL;
    pthread_mutex_lock(&reg_mu);
    fams_init();
    for (int i = 0; i < FR_M_COUNT_; i++)
        put_family(out, &fams[i]);
    for (const family *f = plugin_fams; f; f = f->next)
        put_family(out, f);
    pthread_mutex_unlock(&reg_mu);
    if (fclose(out) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
