/* The control-plane client (see cp_client.h): a lookup cache, and a sender thread that
 * batches usage events, spools them while the control plane is down and replays the
 * spool with the same idempotency keys. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "controlplane/billing.h"
#include "base/bytebuf.h"
#include "controlplane/cp_client.h"
#include "base/json_parse.h"
#include "observe/obs_impl.h"

#define BATCH          100
#define MAX_QUEUE      1000000
#define LINGER_MS      100
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CACHE_SLOTS    1024

typedef struct cache_entry {
    char sha[65];
    int found;
    fr_cp_identity id;
    int64_t expires_ms;
} cache_entry;

/* A queued item: one JSON line (an event, or {"sla": {...}}). */
typedef struct item {
    struct item *next;
    int is_sla;
    size_t len;
    char text[];
} item;

struct fr_cp_client {
    char *url, *auth_header, *spool_path, *rejected_path;
    int spool_fd;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    item *head, *tail;
    size_t n_queued;
    int stopping;
    pthread_t thread;
    CURL *curl; /* the sender thread's */
    /* sender state */
    int64_t next_retry_ms, backoff_ms;
    int down; /* the last attempt failed: new batches go to the spool first */
    fr_cp_client_stats stats;
    pthread_mutex_t cache_mu;
    cache_entry cache[CACHE_SLOTS];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void logf_(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "fluxroute cp_client: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
}

/* ---- HTTP -------------------------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *userp)
{
    fr_bytebuf *b = userp;
    size_t add = size * n;
    if (b->len + add > (1u << 20))
        return 0;
    fr__bytebuf_append(b, data, add);
    return b->oom ? 0 : add;
}

/* Performs one request; returns the HTTP status, or 0 when no answer arrived.  The
 * answer body (if wanted) is malloc'd into *body. */
/* `auth`: the Authorization header line to send, NULL: the service key's. */
static long http_as(fr_cp_client *c, CURL *h, const char *method, const char *path,
                    const char *data, size_t len, long timeout_ms, char **body, const char *auth)
{
    char url[2048];
    snprintf(url, sizeof url, "%s%s", c->url, path);
    struct curl_slist *hdr = curl_slist_append(NULL, auth ? auth : c->auth_header);
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, "Expect:");
    fr_bytebuf b = {0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 2000 ? timeout_ms : 2000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, data);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdr);
    if (body)
        *body = b.data;
    else
        free(b.data);
    return status;
}

static long http(fr_cp_client *c, CURL *h, const char *method, const char *path, const char *data,
                 size_t len, long timeout_ms, char **body)
{
    return http_as(c, h, method, path, data, len, timeout_ms, body, NULL);
}

long fr__cp_get_as(fr_cp_client *c, const char *path, const char *bearer, char **body)
{
    *body = NULL;
    CURL *h = c && bearer ? curl_easy_init() : NULL;
    char *auth = NULL;
    if (!h || asprintf(&auth, "Authorization: Bearer %s", bearer) < 0) {
        if (h)
            curl_easy_cleanup(h);
        return 0;
    }
    long status = http_as(c, h, "GET", path, NULL, 0, 3000, body, auth);
    curl_easy_cleanup(h);
    free(auth);
    return status;
}

/* ---- lookups ------------------------------------------------------------------------------ */

static size_t slot_of(const char *sha)
{
    size_t h = 0;
    for (int i = 0; i < 8 && sha[i]; i++)
        h = h * 16 + (size_t)(sha[i] <= '9' ? sha[i] - '0' : (sha[i] | 0x20) - 'a' + 10);
    return h % CACHE_SLOTS;
}

fr_status fr__cp_lookup_key(fr_cp_client *c, const char *sha256_hex, fr_cp_identity *out)
{
    if (!c || !sha256_hex || strlen(sha256_hex) != 64 ||
        strspn(sha256_hex, "0123456789abcdefABCDEF") != 64)
        return FR_E_INVALID;
    size_t slot = slot_of(sha256_hex);
    int64_t now = now_ms();
    pthread_mutex_lock(&c->cache_mu);
    cache_entry *e = &c->cache[slot];
    if (strcasecmp(e->sha, sha256_hex) == 0 && e->expires_ms > now) {
        int found = e->found;
        if (found)
            *out = e->id;
        pthread_mutex_unlock(&c->cache_mu);
        return found ? FR_OK : FR_E_NOT_FOUND;
    }
    pthread_mutex_unlock(&c->cache_mu);

    CURL *h = curl_easy_init();
    if (!h)
        return FR_E_NOMEM;
    char path[128], *body = NULL;
    snprintf(path, sizeof path, "/v1/keys/lookup?sha256=%s", sha256_hex);
    long status = http(c, h, "GET", path, NULL, 0, 3000, &body);
    curl_easy_cleanup(h);
    fr_status st;
    fr_cp_identity id;
    memset(&id, 0, sizeof id);
    if (status == 200) {
        json_object *o = body ? json_tokener_parse(body) : NULL, *v;
        struct {
            const char *k;
            char *dst;
            size_t size;
        } f[] = {{"tenant", id.tenant, sizeof id.tenant},
                 {"namespace", id.namespace_, sizeof id.namespace_},
                 {"role", id.role, sizeof id.role},
                 {"key_id", id.key_id, sizeof id.key_id}};
        st = o ? FR_OK : FR_E_BAD_RESPONSE;
        json_object *lim, *d;
        if (o && json_object_object_get_ex(o, "limits", &lim)) { /* issue 26 */
            if (json_object_object_get_ex(lim, "tenant", &d))
                snprintf(id.limits_tenant, sizeof id.limits_tenant, "%s",
                         json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN));
            if (json_object_object_get_ex(lim, "key", &d))
                snprintf(id.limits_key, sizeof id.limits_key, "%s",
                         json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN));
        }
        for (size_t i = 0; o && i < sizeof f / sizeof f[0]; i++) {
            if (json_object_object_get_ex(o, f[i].k, &v) &&
                json_object_is_type(v, json_type_string))
                snprintf(f[i].dst, f[i].size, "%s", json_object_get_string(v));
            else
                st = FR_E_BAD_RESPONSE;
        }
        json_object_put(o);
    } else if (status == 404) {
        st = FR_E_NOT_FOUND;
    } else {
        st = FR_E_NETWORK;
    }
    free(body);
    if (st == FR_OK || st == FR_E_NOT_FOUND) {
        pthread_mutex_lock(&c->cache_mu);
        e = &c->cache[slot];
        snprintf(e->sha, sizeof e->sha, "%s", sha256_hex);
        e->found = st == FR_OK;
        e->id = id;
        e->expires_ms = now + FR_CP_LOOKUP_TTL_MS;
        pthread_mutex_unlock(&c->cache_mu);
    }
    if (st == FR_OK)
        *out = id;
    return st == FR_E_BAD_RESPONSE ? FR_E_NETWORK : st;
}

fr_status fr__cp_get_json(fr_cp_client *c, const char *path, json_object **out)
{
    *out = NULL;
    CURL *h = c ? curl_easy_init() : NULL;
    if (!h)
        return FR_E_NOMEM;
    char *body = NULL;
    long status = http(c, h, "GET", path, NULL, 0, 3000, &body);
    curl_easy_cleanup(h);
    if (status == 200)
        *out = body ? json_tokener_parse(body) : NULL;
    free(body);
    if (*out)
        return FR_OK;
    return status == 404 ? FR_E_NOT_FOUND : FR_E_NETWORK;
}

/* ---- queueing ----------------------------------------------------------------------------- */

static fr_status enqueue(fr_cp_client *c, json_object *o, int is_sla)
{
    size_t len;
    const char *t = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
    item *it = t ? malloc(sizeof *it + len + 1) : NULL;
    if (!it) {
        json_object_put(o);
        return FR_E_NOMEM;
    }
    it->next = NULL;
    it->is_sla = is_sla;
    it->len = len;
    memcpy(it->text, t, len + 1);
    json_object_put(o);
    pthread_mutex_lock(&c->mu);
    if (c->n_queued >= MAX_QUEUE) {
        pthread_mutex_unlock(&c->mu);
        free(it);
        return FR_E_OVERLOADED;
    }
    if (c->tail)
        c->tail->next = it;
    else
        c->head = it;
    c->tail = it;
    if (++c->n_queued >= BATCH)
        pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return FR_OK;
}

static void add_str(json_object *o, const char *k, const char *v)
{
    json_object_object_add(o, k, json_object_new_string(v ? v : ""));
}

fr_status fr__cp_report_usage(fr_cp_client *c, const fr_cp_usage_event *ev)
{
    if (!c || !ev || !ev->tenant || !*ev->tenant || !ev->kind ||
        (strcmp(ev->kind, "run") && strcmp(ev->kind, "provider_call")) || ev->input_tokens < 0 ||
        ev->output_tokens < 0 || ev->runs < 0 ||
        (ev->usage_unknown &&
         (strcmp(ev->kind, "provider_call") || ev->input_tokens || ev->output_tokens)))
        return FR_E_INVALID;
    char idem[40], ts[21];
    const char *key = ev->idempotency_key;
    if (!key || !*key) {
        unsigned char r[16];
        if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
            return FR_E_IO;
        r[6] = (r[6] & 0x0f) | 0x40;
        r[8] = (r[8] & 0x3f) | 0x80;
        snprintf(idem, sizeof idem,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
                 r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
                 r[15]);
        key = idem;
    }
    fr__rfc3339_format(ev->occurred_at ? ev->occurred_at : (int64_t)time(NULL), ts);
    json_object *o = json_object_new_object();
    add_str(o, "idempotency_key", key);
    add_str(o, "tenant", ev->tenant);
    add_str(o, "occurred_at", ts);
    add_str(o, "kind", ev->kind);
    add_str(o, "provider", ev->provider);
    add_str(o, "model", ev->model);
    json_object_object_add(o, "input_tokens", json_object_new_int64(ev->input_tokens));
    json_object_object_add(o, "output_tokens", json_object_new_int64(ev->output_tokens));
    json_object_object_add(o, "runs", json_object_new_int64(ev->runs));
    if (ev->usage_unknown)
        json_object_object_add(o, "usage_unknown", json_object_new_boolean(1));
    if (ev->key_id && ev->key_id[0])
        add_str(o, "key_id", ev->key_id);
    return enqueue(c, o, 0);
}

fr_status fr__cp_report_sla(fr_cp_client *c, const fr_cp_sla_report *s)
{
    if (!c || !s || s->window_end <= s->window_start || s->requests < 0 || s->errors < 0 ||
        s->errors > s->requests)
        return FR_E_INVALID;
    char a[21], b[21];
    fr__rfc3339_format(s->window_start, a);
    fr__rfc3339_format(s->window_end, b);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "requests", json_object_new_int64(s->requests));
    json_object_object_add(o, "errors", json_object_new_int64(s->errors));
    json_object_object_add(o, "latency_ms_p50", json_object_new_int64(s->latency_ms_p50));
    json_object_object_add(o, "latency_ms_p99", json_object_new_int64(s->latency_ms_p99));
    add_str(o, "window_start", a);
    add_str(o, "window_end", b);
    json_object *w = json_object_new_object();
    json_object_object_add(w, "sla", o);
    return enqueue(c, w, 1);
}

void fr__cp_client_stats(fr_cp_client *c, fr_cp_client_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->stats;
    out->queued = c->n_queued;
    pthread_mutex_unlock(&c->mu);
}

static void count(fr_cp_client *c, uint64_t *field, size_t n)
{
    pthread_mutex_lock(&c->mu);
    *field += n;
    pthread_mutex_unlock(&c->mu);
}

/* ---- sending ------------------------------------------------------------------------------ */

/* A batch of JSON lines (events or {"sla": ...}) as one POST body. */
typedef struct line {
    const char *p;
    size_t len;
    int is_sla;
} line;

static char *batch_body(const line *l, size_t n, size_t *len)
{
    size_t cap = 32;
    for (size_t i = 0; i < n; i++)
        cap += l[i].len + 2;
    char *b = malloc(cap), *p = b;
    if (!b)
        return NULL;
    p += sprintf(p, "{\"events\":[");
    int first = 1;
    for (size_t i = 0; i < n; i++)
        if (!l[i].is_sla) {
            if (!first)
                *p++ = ',';
            memcpy(p, l[i].p, l[i].len);
            p += l[i].len;
            first = 0;
        }
    p += sprintf(p, "],\"sla\":[");
    first = 1;
    for (size_t i = 0; i < n; i++)
        if (l[i].is_sla) {
            /* The line is {"sla":{...}}: send the inner object. */
            const char *in = strchr(l[i].p, ':') + 1;
            size_t inl = l[i].len - (size_t)(in - l[i].p) - 1;
            if (!first)
                *p++ = ',';
            memcpy(p, in, inl);
            p += inl;
            first = 0;
        }
    p += sprintf(p, "]}");
    *len = (size_t)(p - b);
    return b;
}

enum { SENT, REJECTED, FAILED };

static long timeout_for(fr_cp_client *c, int64_t deadline_ms)
{
    (void)c;
    if (!deadline_ms)
        return 10000;
    int64_t left = deadline_ms - now_ms();
    return left < 200 ? 200 : left > 10000 ? 10000 : (long)left;
}

/* The control plane's reason from its error body {"error": {"message": ...}} (or the body
 * itself), into out. */
static void reject_reason(const char *answer, char *out, size_t size)
{
    json_object *o = answer ? json_tokener_parse(answer) : NULL, *e, *m;
    const char *why = answer && *answer ? answer : "no reason given";
    if (o && json_object_object_get_ex(o, "error", &e) &&
        json_object_object_get_ex(e, "message", &m) && json_object_is_type(m, json_type_string))
        why = json_object_get_string(m);
    snprintf(out, size, "%s", why);
    /* One line on stderr and in the file. */
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    json_object_put(o);
}

/* An event the control plane refused: never dropped in silence.  It is appended to
 * <spool>.rejected (the event's JSON line, a tab, the reason) for an operator to fix and
 * resubmit, counted in fluxroute_usage_rejected_total and named on stderr (key, tenant,
 * reason).  When the file cannot be written, the event itself goes to stderr. */
static void reject(fr_cp_client *c, const line *l, const char *answer)
{
    char why[512], key[160] = "?", tenant[80] = "?";
    reject_reason(answer, why, sizeof why);
    json_object *ev = NULL, *v;
    size_t at;
    const char *bad;
    if (fr__json_parse_whole(l->p, l->len, FR_INPUT_MAX_DEPTH, &ev, &at, &bad) != 0)
        ev = NULL;
    if (ev && json_object_object_get_ex(ev, "idempotency_key", &v))
        snprintf(key, sizeof key, "%s", json_object_get_string(v));
    if (ev && json_object_object_get_ex(ev, "tenant", &v))
        snprintf(tenant, sizeof tenant, "%s", json_object_get_string(v));
    json_object_put(ev);
    int fd = open(c->rejected_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    int kept =
        fd >= 0 && dprintf(fd, "%.*s\t%s\n", (int)l->len, l->p, why) > 0 && fdatasync(fd) == 0;
    int err = errno;
    if (fd >= 0)
        close(fd);
    if (kept)
        fprintf(stderr,
                "fluxroute cp_client: USAGE REJECTED by the control plane %s: event %s of tenant "
                "%s: %s; kept in %s (fix the line and POST it to /v1/usage with a service key)\n",
                c->url, key, tenant, why, c->rejected_path);
    else
        fprintf(stderr,
                "fluxroute cp_client: USAGE REJECTED by the control plane %s: event %s of tenant "
                "%s: %s; cannot keep it in %s (%s), the event: %.*s\n",
                c->url, key, tenant, why, c->rejected_path, strerror(err), (int)l->len, l->p);
    fr__metric_count(FR_M_USAGE_REJECTED, NULL, 1);
    count(c, &c->stats.rejected, 1);
}

/* Sends lines; an invalid batch is retried one line at a time so one bad event cannot
 * hold back the others.  Returns SENT (all acknowledged or rejected) or FAILED. */
static int send_lines(fr_cp_client *c, const line *l, size_t n, int64_t deadline_ms)
{
    size_t len;
    char *body = batch_body(l, n, &len), *answer = NULL;
    if (!body)
        return FAILED;
    long st =
        http(c, c->curl, "POST", "/v1/usage", body, len, timeout_for(c, deadline_ms), &answer);
    free(body);
    int rc;
    if (st == 200 || st == 202) {
        rc = SENT;
    } else if ((st == 400 || st == 413) && n > 1) {
        rc = SENT;
        for (size_t i = 0; i < n && rc == SENT; i++)
            rc = send_lines(c, &l[i], 1, deadline_ms);
    } else if (st == 400 || st == 413) {
        reject(c, l, answer);
        rc = SENT;
    } else {
        rc = FAILED;
    }
    free(answer);
    return rc;
}

static int spool_append(fr_cp_client *c, const line *l, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += l[i].len + 1;
    char *b = malloc(total ? total : 1), *p = b;
    if (!b)
        return -1;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, l[i].p, l[i].len);
        p += l[i].len;
        *p++ = '\n';
    }
    size_t off = 0;
    while (off < total) {
        ssize_t w = write(c->spool_fd, b + off, total - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            free(b);
            logf_("cannot write the spool %s: %s", c->spool_path, strerror(errno));
            return -1;
        }
        off += (size_t)w;
    }
    free(b);
    fdatasync(c->spool_fd);
    size_t events = 0;
    for (size_t i = 0; i < n; i++)
        events += !l[i].is_sla;
    count(c, &c->stats.spooled, events);
    return 0;
}

static off_t spool_size(fr_cp_client *c)
{
    struct stat st;
    return fstat(c->spool_fd, &st) == 0 ? st.st_size : 0;
}

/* Re-sends the spool in batches; truncates it once everything is acknowledged.  Returns
 * 0 when the spool is empty afterwards. */
static int replay_spool(fr_cp_client *c, int64_t deadline_ms)
{
    off_t size = spool_size(c);
    if (size == 0)
        return 0;
    char *data = malloc((size_t)size + 1);
    if (!data)
        return -1;
    ssize_t got = pread(c->spool_fd, data, (size_t)size, 0);
    if (got != size) {
        free(data);
        return -1;
    }
    data[size] = '\0';
    line l[BATCH];
    size_t n = 0, events = 0, batch_events = 0;
    int failed = 0;
    char *p = data;
    while (!failed && p < data + size) {
        char *nl = memchr(p, '\n', (size_t)(data + size - p));
        if (!nl)
            break; /* a torn last line (crash while appending): never acknowledged as spooled */
        *nl = '\0';
        if (nl > p) {
            l[n].p = p;
            l[n].len = (size_t)(nl - p);
            l[n].is_sla = strncmp(p, "{\"sla\":", 7) == 0;
            batch_events += !l[n].is_sla;
            n++;
        }
        p = nl + 1;
        if (n == BATCH || p >= data + size) {
            if (n && send_lines(c, l, n, deadline_ms) != SENT)
                failed = 1;
            else
                events += batch_events;
            n = 0;
            batch_events = 0;
        }
    }
    if (!failed && n && send_lines(c, l, n, deadline_ms) != SENT)
        failed = 1;
    else if (!failed)
        events += batch_events;
    free(data);
    if (failed)
        return -1;
    /* Everything up to `size` is acknowledged; nothing else appends to the spool. */
    if (ftruncate(c->spool_fd, 0) == 0)
        fdatasync(c->spool_fd);
    count(c, &c->stats.replayed, events);
    return 0;
}

static void note_failure(fr_cp_client *c)
{
    if (!c->down)
        logf_("control plane %s unreachable; spooling usage to %s", c->url, c->spool_path);
    c->down = 1;
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (c->backoff_ms > BACKOFF_MAX_MS)
        c->backoff_ms = BACKOFF_MAX_MS;
    c->next_retry_ms = now_ms() + c->backoff_ms;
}

static void note_success(fr_cp_client *c)
{
    if (c->down)
        logf_("control plane %s reachable again; spool %s replayed", c->url, c->spool_path);
    c->down = 0;
    c->backoff_ms = 0;
}

/* Sends or spools a batch taken from the queue, then frees it. */
static void ship(fr_cp_client *c, item *batch, int64_t deadline_ms)
{
    line l[BATCH];
    size_t n = 0, events = 0;
    for (item *it = batch; it; it = it->next) {
        l[n].p = it->text;
        l[n].len = it->len;
        l[n].is_sla = it->is_sla;
        events += !it->is_sla;
        n++;
    }
    int offline = deadline_ms && now_ms() >= deadline_ms;
    if (n &&
        (c->down || offline || spool_size(c) > 0 || send_lines(c, l, n, deadline_ms) != SENT)) {
        if (!c->down && !offline && spool_size(c) == 0)
            note_failure(c);
        spool_append(c, l, n);
    } else if (n) {
        count(c, &c->stats.sent, events);
    }
    while (batch) {
        item *next = batch->next;
        free(batch);
        batch = next;
    }
}

static item *take(fr_cp_client *c)
{
    item *head = c->head, *last = head;
    size_t n = 0;
    while (last && n + 1 < BATCH && last->next) {
        last = last->next;
        n++;
    }
    if (!head)
        return NULL;
    n++;
    c->head = last->next;
    if (!c->head)
        c->tail = NULL;
    last->next = NULL;
    c->n_queued -= n;
    return head;
}

static void *sender(void *arg)
{
    pthread_setname_np(pthread_self(), "fr-usage-send");
    fr_cp_client *c = arg;
    int64_t deadline = 0;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        int64_t wait_until = now_ms() + LINGER_MS;
        while (!c->stopping && c->n_queued < BATCH && now_ms() < wait_until) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 20 * 1000000L;
            if (ts.tv_nsec >= 1000000000L)
                ts.tv_sec++, ts.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        }
        int stopping = c->stopping;
        if (stopping && !deadline)
            deadline = now_ms() + FR_CP_FLUSH_WAIT_MS;
        item *batch = take(c);
        pthread_mutex_unlock(&c->mu);

        /* Retry the spool first (while stopping: until the deadline). */
        if (spool_size(c) > 0 && now_ms() >= c->next_retry_ms &&
            (!deadline || now_ms() < deadline)) {
            if (replay_spool(c, deadline) == 0)
                note_success(c);
            else
                note_failure(c);
        }
        if (batch) {
            ship(c, batch, deadline);
            continue;
        }
        if (stopping && (spool_size(c) == 0 || now_ms() >= deadline))
            break;
        if (stopping) {
            struct timespec nap = {0, 20 * 1000000L}; /* waiting for the next retry */
            nanosleep(&nap, NULL);
        }
    }
    return NULL;
}

/* ---- life cycle ---------------------------------------------------------------------------- */

fr_cp_client *fr__cp_client_new(const char *url, const char *service_key, const char *spool_path)
{
    if (!url || !*url || !service_key || !*service_key || !spool_path || !*spool_path) {
        fprintf(stderr, "fluxroute cp_client: url, service key and spool path are required\n");
        return NULL;
    }
    fr_cp_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->spool_fd = -1;
    size_t ul = strlen(url);
    while (ul && url[ul - 1] == '/')
        ul--;
    c->url = strndup(url, ul);
    c->spool_path = strdup(spool_path);
    size_t hl = strlen(service_key) + 32, rl = strlen(spool_path) + 16;
    c->auth_header = malloc(hl);
    c->rejected_path = malloc(rl);
    if (!c->url || !c->spool_path || !c->auth_header || !c->rejected_path)
        goto fail;
    snprintf(c->auth_header, hl, "Authorization: Bearer %s", service_key);
    snprintf(c->rejected_path, rl, "%s.rejected", spool_path);
    c->spool_fd = open(spool_path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (c->spool_fd < 0) {
        logf_("cannot open the spool %s: %s", spool_path, strerror(errno));
        goto fail;
    }
    if (flock(c->spool_fd, LOCK_EX | LOCK_NB) != 0) {
        logf_("the spool %s is in use by another process%s", spool_path, "");
        goto fail;
    }
    c->curl = curl_easy_init();
    if (!c->curl)
        goto fail;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->cache_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&c->thread, NULL, sender, c) != 0) {
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
        pthread_mutex_destroy(&c->cache_mu);
        goto fail;
    }
    return c;
fail:
    if (c->curl)
        curl_easy_cleanup(c->curl);
    if (c->spool_fd >= 0)
        close(c->spool_fd);
    free(c->url);
    free(c->spool_path);
    free(c->auth_header);
    free(c->rejected_path);
    free(c);
    return NULL;
}

void fr__cp_client_free(fr_cp_client *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    /* The sender spooled or sent every batch before leaving. */
    curl_easy_cleanup(c->curl);
    close(c->spool_fd);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->cache_mu);
    free(c->url);
    free(c->spool_path);
    free(c->auth_header);
    free(c->rejected_path);
    free(c);
}
