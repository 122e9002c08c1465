/* Metrics: one process-wide registry and its Prometheus text exposition, plus the
 * METRICS_ENABLED endpoint of `fluxroute run` (libmicrohttpd, optional TLS/mTLS).
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
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

#include "base/fileio.h"
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
    char c[16];
    snprintf(c, sizeof c, "%d", code);
    const char *labels[] = {route ? route : "", c};
    fr__metric_count(FR_M_HTTP_REQUESTS, labels, 1);
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

/* ---- the METRICS_ENABLED endpoint -------------------------------------------------- */

static struct MHD_Daemon *daemon_;
static char *tls_cert, *tls_key, *tls_ca;
static int require_client_cert;

static char *read_file(const char *path)
{
    return fr__file_read(path, NULL);
}

/* mTLS: the client certificate must verify against METRICS_TLS_CA_FILE. */
static int client_cert_ok(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session)
        return 0;
    gnutls_session_t session = (gnutls_session_t)ci->tls_session;
    unsigned list_size = 0;
    if (!gnutls_certificate_get_peers(session, &list_size) || list_size == 0)
        return 0;
    unsigned status = 0;
    return gnutls_certificate_verify_peers2(session, &status) == 0 && status == 0;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **con_cls)
{
    (void)cls, (void)version, (void)upload, (void)upload_len, (void)con_cls;
    unsigned code = MHD_HTTP_OK;
    char *body = NULL;
    const char *type = "text/plain; version=0.0.4; charset=utf-8";
    if (require_client_cert && !client_cert_ok(c)) {
        code = MHD_HTTP_FORBIDDEN;
        body = strdup("client certificate required\n");
    } else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        code = MHD_HTTP_METHOD_NOT_ALLOWED;
        body = strdup("method not allowed: use GET\n");
    } else if (strcmp(url, "/metrics") != 0) {
        code = MHD_HTTP_NOT_FOUND;
        body = strdup("not found: try /metrics\n");
    } else {
        body = fr__metrics_render();
    }
    if (!body)
        return MHD_NO;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, "Allow", "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return rc;
}

int fr__metrics_parse_addr(const char *addr, struct sockaddr_storage *sa, socklen_t *len)
{
    const char *colon = strrchr(addr, ':');
    if (!colon)
        return -1;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || colon[1] == '\0' || port < 0 || port > 65535)
        return -1;
    char host[256];
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof host)
        return -1;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    memset(sa, 0, sizeof *sa);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
            return -1;
        *len = sizeof *s6;
        return 0;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)sa;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    if (hl == 0 || strcmp(host, "0.0.0.0") == 0)
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (strcmp(host, "localhost") == 0)
        s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
        return -1;
    *len = sizeof *s4;
    return 0;
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

int fr__metrics_server_start_from_env(void)
{
    if (daemon_ || !fr__obs_env_truthy("METRICS_ENABLED"))
        return 0;
    const char *addr = env_or("METRICS_ADDR", ":2112");
    struct sockaddr_storage sa;
    socklen_t salen;
    if (fr__metrics_parse_addr(addr, &sa, &salen) != 0) {
        fprintf(stderr, "fluxroute: METRICS_ADDR=\"%s\": expected HOST:PORT, :PORT or [V6]:PORT\n",
                addr);
        return -1;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (sa.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    int tls = fr__obs_env_truthy("METRICS_TLS_ENABLED");
    require_client_cert = tls && fr__obs_env_truthy("METRICS_TLS_REQUIRE_CLIENT_CERT");
    struct MHD_OptionItem o[8];
    size_t n = 0;
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &sa};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, 10, NULL};
    if (tls) {
        const char *cf = env_or("METRICS_TLS_CERT_FILE", NULL),
                   *kf = env_or("METRICS_TLS_KEY_FILE", NULL);
        const char *caf = env_or("METRICS_TLS_CA_FILE", NULL);
        if (!cf || !kf || !(tls_cert = read_file(cf)) || !(tls_key = read_file(kf))) {
            fprintf(stderr, "fluxroute: METRICS_TLS_ENABLED needs readable METRICS_TLS_CERT_FILE "
                            "and METRICS_TLS_KEY_FILE\n");
            return -1;
        }
        if (require_client_cert && (!caf || !(tls_ca = read_file(caf)))) {
            fprintf(stderr, "fluxroute: METRICS_TLS_REQUIRE_CLIENT_CERT needs a readable "
                            "METRICS_TLS_CA_FILE\n");
            return -1;
        }
        flags |= MHD_USE_TLS;
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, tls_cert};
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, tls_key};
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                         (void *)"NORMAL:-VERS-TLS1.1:-VERS-TLS1.0"};
        if (tls_ca)
            o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, tls_ca};
    }
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    daemon_ =
        MHD_start_daemon(flags, 0, NULL, NULL, answer, NULL, MHD_OPTION_ARRAY, o, MHD_OPTION_END);
    if (!daemon_) {
        fprintf(stderr,
                "fluxroute: cannot serve metrics on %s (address in use or TLS files "
                "invalid)\n",
                addr);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    if (di && sa.ss_family == AF_INET && ((struct sockaddr_in *)&sa)->sin_port == 0)
        fprintf(stderr, "fluxroute: metrics on %s://%.*s%u/metrics\n", tls ? "https" : "http",
                (int)(strrchr(addr, ':') - addr + 1), addr, (unsigned)di->port);
    return 0;
}

void fr__metrics_server_stop(void)
{
    if (daemon_)
        MHD_stop_daemon(daemon_);
    daemon_ = NULL;
    free(tls_cert);
    free(tls_key);
    free(tls_ca);
    tls_cert = tls_key = tls_ca = NULL;
}
