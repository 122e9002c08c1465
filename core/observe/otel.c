/* OpenTelemetry spans, exported in batches over OTLP/HTTP JSON from a background thread.
 *
 * Steps never wait for the exporter: a finished span goes into a bounded queue (a full
 * queue drops it and counts the drop), and one thread posts batches with libcurl.  A
 * failed export is counted, logged (at most every 30 s) and its spans dropped; the
 * exporter then backs off (250 ms doubling to 5 s) so a dead endpoint costs nothing.
 * At exit the queue is flushed with a bounded wait.
 *
 * TRACE_ENABLED truthy turns it on; TRACE_ENDPOINT is the OTLP/HTTP traces URL (default
 * http://localhost:4318/v1/traces; "host:port" means http://host:port/v1/traces, and a
 * URL without a path gets /v1/traces). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include <fluxroute/version.h>

#include "observe/obs_impl.h"

#define MAX_ATTRS         12
#define QUEUE_CAP         4096
#define BATCH_MAX         512
#define FLUSH_INTERVAL_MS 200
#define SHUTDOWN_WAIT_MS  3000

typedef struct span_attr {
    const char *key; /* static */
    char *str;       /* owned, or NULL for an integer */
    int64_t i;
} span_attr;

struct fr_span {
    uint8_t trace_id[16];
    uint64_t span_id, parent_id;
    char *name;
    int kind;
    int64_t start_us, end_us;
    int error;
    char *message;
    size_t n_attrs;
    span_attr attrs[MAX_ATTRS];
};

static int enabled;
static char *endpoint;
static pthread_t thread;
static int thread_started;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv; /* spans queued, or stopping */
static fr_span *queue[QUEUE_CAP];
static size_t q_head, q_len;
static int stopping;
static int endpoint_down; /* the last export failed: build no spans until a probe connects */
static fr_metric_series *m_dropped_full, *m_dropped_failed, *m_exported, *m_failures;

int fr__otel_enabled(void)
{
    return enabled;
}

static void span_free(fr_span *s)
{
    if (!s)
        return;
    free(s->name);
    free(s->message);
    for (size_t i = 0; i < s->n_attrs; i++)
        free(s->attrs[i].str);
    free(s);
}

fr_span *fr__span_new(const uint8_t trace_id[16], uint64_t span_id, uint64_t parent_id,
                      const char *name, int kind, int64_t start_wall_us, int64_t end_wall_us)
{
    fr_span *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    memcpy(s->trace_id, trace_id, 16);
    s->span_id = span_id;
    s->parent_id = parent_id;
    s->name = fr__obs_scrub(name);
    s->kind = kind;
    s->start_us = start_wall_us;
    s->end_us = end_wall_us;
    if (!s->name) {
        free(s);
        return NULL;
    }
    return s;
}

void fr__span_attr_str(fr_span *s, const char *key, const char *value)
{
    if (!s || !value || s->n_attrs == MAX_ATTRS)
        return;
    char *v = fr__obs_scrub(value);
    if (v)
        s->attrs[s->n_attrs++] = (span_attr){key, v, 0};
}

void fr__span_attr_int(fr_span *s, const char *key, int64_t value)
{
    if (s && s->n_attrs < MAX_ATTRS)
        s->attrs[s->n_attrs++] = (span_attr){key, NULL, value};
}

void fr__span_status(fr_span *s, int error, const char *message)
{
    if (!s)
        return;
    s->error = error;
    free(s->message);
    s->message = error && message ? fr__obs_scrub(message) : NULL;
}

int fr__span_wanted(void)
{
    if (!enabled)
        return 0;
    /* Racy reads are fine: they only decide whether to build a span at all. */
    if (!__atomic_load_n(&endpoint_down, __ATOMIC_RELAXED) &&
        __atomic_load_n(&q_len, __ATOMIC_RELAXED) < QUEUE_CAP)
        return 1;
    fr__metric_add(m_dropped_full, 1);
    return 0;
}

void fr__span_submit(fr_span *s)
{
    if (!s)
        return;
    if (!enabled) {
        span_free(s);
        return;
    }
    pthread_mutex_lock(&mu);
    if (q_len == QUEUE_CAP || stopping) {
        pthread_mutex_unlock(&mu);
        fr__metric_add(m_dropped_full, 1);
        span_free(s);
        return;
    }
    queue[(q_head + q_len) % QUEUE_CAP] = s;
    q_len++;
    if (q_len == BATCH_MAX)
        pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

/* ---- OTLP/JSON ------------------------------------------------------------------------ */

static json_object *any_value(const span_attr *a)
{
    json_object *v = json_object_new_object();
    if (a->str) {
        json_object_object_add(v, "stringValue", json_object_new_string(a->str));
    } else {
        char n[24]; /* int64 as a decimal string (OTLP/JSON) */
        snprintf(n, sizeof n, "%lld", (long long)a->i);
        json_object_object_add(v, "intValue", json_object_new_string(n));
    }
    return v;
}

static json_object *kv(const char *key, const char *str)
{
    span_attr a = {key, (char *)str, 0};
    json_object *o = json_object_new_object();
    json_object_object_add(o, "key", json_object_new_string(key));
    json_object_object_add(o, "value", any_value(&a));
    return o;
}

static json_object *span_json(const fr_span *s)
{
    char tid[33], sid[17], pid[17], t0[24], t1[24];
    for (int i = 0; i < 16; i++)
        sprintf(tid + 2 * i, "%02x", s->trace_id[i]);
    snprintf(sid, sizeof sid, "%016llx", (unsigned long long)s->span_id);
    snprintf(pid, sizeof pid, "%016llx", (unsigned long long)s->parent_id);
    snprintf(t0, sizeof t0, "%lld", (long long)s->start_us * 1000);
    snprintf(t1, sizeof t1, "%lld", (long long)s->end_us * 1000);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "traceId", json_object_new_string(tid));
    json_object_object_add(o, "spanId", json_object_new_string(sid));
    if (s->parent_id)
        json_object_object_add(o, "parentSpanId", json_object_new_string(pid));
    json_object_object_add(o, "name", json_object_new_string(s->name));
    json_object_object_add(o, "kind", json_object_new_int(s->kind));
    json_object_object_add(o, "startTimeUnixNano", json_object_new_string(t0));
    json_object_object_add(o, "endTimeUnixNano", json_object_new_string(t1));
    json_object *attrs = json_object_new_array();
    for (size_t i = 0; i < s->n_attrs; i++) {
        json_object *a = json_object_new_object();
        json_object_object_add(a, "key", json_object_new_string(s->attrs[i].key));
        json_object_object_add(a, "value", any_value(&s->attrs[i]));
        json_object_array_add(attrs, a);
    }
    json_object_object_add(o, "attributes", attrs);
    json_object *st = json_object_new_object();
    json_object_object_add(st, "code", json_object_new_int(s->error ? 2 : 1));
    if (s->message)
        json_object_object_add(st, "message", json_object_new_string(s->message));
    json_object_object_add(o, "status", st);
    return o;
}

static char *batch_json(fr_span **spans, size_t n)
{
    json_object *list = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(list, span_json(spans[i]));
    json_object *scope = json_object_new_object();
    json_object_object_add(scope, "name", json_object_new_string("fluxroute"));
    json_object_object_add(scope, "version", json_object_new_string(FR_VERSION_STRING));
    json_object *ss = json_object_new_object();
    json_object_object_add(ss, "scope", scope);
    json_object_object_add(ss, "spans", list);
    json_object *ssa = json_object_new_array();
    json_object_array_add(ssa, ss);
    json_object *rattrs = json_object_new_array();
    json_object_array_add(rattrs, kv("service.name", "fluxroute"));
    json_object_array_add(rattrs, kv("service.version", FR_VERSION_STRING));
    json_object *res = json_object_new_object();
    json_object_object_add(res, "attributes", rattrs);
    json_object *rs = json_object_new_object();
    json_object_object_add(rs, "resource", res);
    json_object_object_add(rs, "scopeSpans", ssa);
    json_object *rsa = json_object_new_array();
    json_object_array_add(rsa, rs);
    json_object *root = json_object_new_object();
    json_object_object_add(root, "resourceSpans", rsa);
    const char *text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE);
    char *out = text ? strdup(text) : NULL;
    json_object_put(root);
    return out;
}

/* ---- the exporter thread ------------------------------------------------------------- */

static size_t discard(char *p, size_t size, size_t nmemb, void *ud)
{
    (void)p, (void)ud;
    return size * nmemb;
}

/* Posts one batch.  Returns 0 on a 2xx answer, else -1 with a reason in err. */
static int post(CURL *h, const char *body, char *err, size_t errlen)
{
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, endpoint);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hdr);
    long code = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (rc != CURLE_OK)
        snprintf(err, errlen, "%s", curl_easy_strerror(rc));
    else if (code < 200 || code > 299)
        snprintf(err, errlen, "HTTP %ld", code);
    else
        return 0;
    return -1;
}

/* Can the endpoint be connected to?  (While it is down, nothing is serialised.) */
static int reachable(CURL *h)
{
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, endpoint);
    curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    return curl_easy_perform(h) == CURLE_OK;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits on cv until `until_ms` (monotonic) or a wake-up.  mu held. */
static void wait_until(int64_t until_ms)
{
    struct timespec ts = {.tv_sec = until_ms / 1000, .tv_nsec = (until_ms % 1000) * 1000000};
    pthread_cond_timedwait(&cv, &mu, &ts);
}

static void *exporter_main(void *arg)
{
    pthread_setname_np(pthread_self(), "fr-otel");
    (void)arg;
    CURL *h = curl_easy_init();
    int64_t backoff_ms = 0, last_log_ms = -30000, failures_unlogged = 0;
    int64_t shutdown_by = 0;
    fr_span *batch[BATCH_MAX];
    /* Probe before the first batch: against an endpoint that is down, runs then build no
     * spans at all.  (Without it, the spans built before the first export failed were
     * serialized and freed on this thread, which left the runs' heap fragmented: +5%
     * instructions a run afterwards.)  The failure is logged as an export failure. */
    if (h && !reachable(h)) {
        __atomic_store_n(&endpoint_down, 1, __ATOMIC_RELAXED);
        fr__metric_add(m_failures, 1);
        fprintf(stderr, "fluxroute: otel: export to %s failed: cannot connect (spans dropped)\n",
                endpoint);
        last_log_ms = now_ms();
        backoff_ms = 250;
    }
    pthread_mutex_lock(&mu);
    for (;;) {
        if (!stopping) {
            int64_t until = now_ms() + (backoff_ms ? backoff_ms : FLUSH_INTERVAL_MS);
            while (!stopping && (backoff_ms || q_len < BATCH_MAX) && now_ms() < until)
                wait_until(until);
        }
        if (stopping && !shutdown_by)
            shutdown_by = now_ms() + SHUTDOWN_WAIT_MS;
        if (q_len == 0 && endpoint_down && !stopping && h) {
            /* Down and nothing queued (no spans are built meanwhile): probe it. */
            pthread_mutex_unlock(&mu);
            int up = reachable(h);
            pthread_mutex_lock(&mu);
            __atomic_store_n(&endpoint_down, !up, __ATOMIC_RELAXED);
            backoff_ms = up ? 0 : (backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2);
            continue;
        }
        if (q_len == 0) {
            if (stopping)
                break;
            continue;
        }
        size_t n = q_len < BATCH_MAX ? q_len : BATCH_MAX;
        for (size_t i = 0; i < n; i++)
            batch[i] = queue[(q_head + i) % QUEUE_CAP];
        q_head = (q_head + n) % QUEUE_CAP;
        q_len -= n;
        pthread_mutex_unlock(&mu);

        char err[256] = "out of memory";
        int ok = 0;
        if (h && endpoint_down && !reachable(h)) {
            snprintf(err, sizeof err, "still unreachable");
        } else {
            char *body = h ? batch_json(batch, n) : NULL;
            ok = body && post(h, body, err, sizeof err) == 0;
            free(body);
        }
        __atomic_store_n(&endpoint_down, !ok, __ATOMIC_RELAXED);
        for (size_t i = 0; i < n; i++)
            span_free(batch[i]);
        if (ok) {
            fr__metric_add(m_exported, n);
            backoff_ms = 0;
        } else {
            fr__metric_add(m_failures, 1);
            fr__metric_add(m_dropped_failed, n);
            failures_unlogged++;
            if (now_ms() - last_log_ms >= 30000) {
                fprintf(stderr,
                        "fluxroute: otel: export to %s failed: %s (%lld failure%s, "
                        "spans dropped)\n",
                        endpoint, err, (long long)failures_unlogged,
                        failures_unlogged == 1 ? "" : "s");
                last_log_ms = now_ms();
                failures_unlogged = 0;
            }
            backoff_ms = backoff_ms ? (backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2) : 250;
        }
        pthread_mutex_lock(&mu);
        if (stopping && (!ok || now_ms() >= shutdown_by)) {
            /* Shutting down against a failing endpoint: drop the rest now. */
            fr__metric_add(m_dropped_failed, q_len);
            while (q_len) {
                span_free(queue[q_head]);
                q_head = (q_head + 1) % QUEUE_CAP;
                q_len--;
            }
            break;
        }
        if (stopping)
            backoff_ms = 0;
    }
    pthread_mutex_unlock(&mu);
    if (h)
        curl_easy_cleanup(h);
    return NULL;
}

/* TRACE_ENDPOINT to a URL (caller frees). */
static char *endpoint_url(const char *v)
{
    if (!v || !*v)
        return strdup("http://localhost:4318/v1/traces");
    const char *scheme = strstr(v, "://");
    if (!scheme) {
        char *u = NULL;
        return asprintf(&u, "http://%s/v1/traces", v) < 0 ? NULL : u;
    }
    const char *path = strchr(scheme + 3, '/');
    if (!path || strcmp(path, "/") == 0) {
        char *u = NULL;
        int n = path ? (int)(path - v) : (int)strlen(v);
        return asprintf(&u, "%.*s/v1/traces", n, v) < 0 ? NULL : u;
    }
    return strdup(v);
}

void fr__otel_init(void)
{
    if (!fr__obs_env_truthy("TRACE_ENABLED"))
        return;
    endpoint = endpoint_url(getenv("TRACE_ENDPOINT"));
    const char *full[] = {"queue_full"}, *failed[] = {"export_failed"};
    m_dropped_full = fr__metric_series(FR_M_SPANS_DROPPED, full);
    m_dropped_failed = fr__metric_series(FR_M_SPANS_DROPPED, failed);
    m_exported = fr__metric_series(FR_M_SPANS_EXPORTED, NULL);
    m_failures = fr__metric_series(FR_M_SPAN_EXPORT_FAILURES, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&cv, &attr);
    pthread_condattr_destroy(&attr);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!endpoint || pthread_create(&thread, NULL, exporter_main, NULL) != 0) {
        fprintf(stderr, "fluxroute: otel: cannot start the span exporter; tracing is off\n");
        return;
    }
    thread_started = 1;
    enabled = 1;
}

void fr__otel_shutdown(void)
{
    if (!thread_started)
        return;
    pthread_mutex_lock(&mu);
    stopping = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(thread, NULL);
    thread_started = 0;
    enabled = 0;
}
