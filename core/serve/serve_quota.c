/* serve's tenant and key limits with `memory` state (serve_quota.h says what each limit
 * means and why requests per minute is a sliding log). */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/json_check.h"
#include "base/str.h"
#include "controlplane/billing.h"
#include "observe/obs_impl.h"
#include "observe/observe.h"
#include "base/secure_random.h"
#include "serve/serve_quota.h"
#include "state/limits_redis.h"

#define WINDOW_US (60 * 1000000LL)
#define N_BUCKETS 256

typedef struct tok_entry {
    int64_t t, n;
    uint64_t seq;
} tok_entry;

/* The counters of one tenant, one key, or one model of either. */
typedef struct scope {
    struct scope *next;
    int tenant;      /* 1: a tenant, 0: a key */
    char id[128];    /* the tenant or key id */
    char model[128]; /* "" or the model of a per-model sub-scope */
    char owner[72];  /* the tenant (metric labels) */
    fr_limits_doc file, remote, queued;
    int has_file, has_remote, has_queued;
    char *remote_text; /* the control plane's document as it sent it (owned), or NULL */
    char *queued_text; /* the last queued run's document (fr__quota_set_queued_text) */
    int seeded;        /* spend seeded from the control plane (or being seeded) */
    int64_t inflight;
    /* requests: the admission times of the last `cap` runs (a ring, oldest at head) */
    int64_t *ring;
    size_t cap, head, n;
    /* tokens: reserved or used in the last 60 s (a queue from tok_head) */
    tok_entry *toks;
    size_t tok_head, tok_n, tok_cap;
    int64_t tok_sum;
    /* budget: spend of calendar month `month` (year * 12 + month - 1) */
    int month;
    int64_t spent, reserved;
    int crossed; /* the highest threshold (80, 100) passed this month */
    /* --state redis: the entries this process added to the runs in flight (a key's) */
    char (*members)[40];
    size_t n_members, cap_members;
    int64_t snap_requests, snap_oldest_us;  /* the requests window as Redis last said */
    int64_t snap_tokens, snap_tok_oldest_s; /* the tokens window as Redis last said */
} scope;

struct fr_quota {
    pthread_mutex_t mu;
    scope *buckets[N_BUCKETS];
    int64_t (*now_us)(void);
    fr_quota_price_fn price;
    void *price_ud;
    uint64_t seq;
    fr_state *state;  /* --state redis: the counters live there (limits_redis.h), or NULL */
    int64_t lease_ms; /* how long a run counts in flight at most (a crashed replica's) */
};

/* A reservation: up to four scopes charged (tenant, key, and each one's model entry). */
typedef struct ticket {
    int n;
    struct {
        scope *s;
        uint64_t seq;   /* its token entry, 0: none */
        int64_t micros; /* reserved against its budget, -1: none */
    } c[4];
    int64_t est_tokens;
    char model[128];
    /* --state redis: what the reservation counted where */
    int redis;
    char tenant[72];
    fr_rl_scope rs[4];
    int64_t tpm[4], budget[4];
    int64_t at_us, micros;
    char month[8];
} ticket;

static uint64_t hash(int tenant, const char *id, const char *model)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)tenant;
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (const char *p = model; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

/* The scope, created when new; q->mu held.  NULL on OOM. */
static scope *get_scope(fr_quota *q, int tenant, const char *id, const char *model,
                        const char *owner)
{
    if (!id)
        return NULL;
    uint64_t b = hash(tenant, id, model) % N_BUCKETS;
    for (scope *s = q->buckets[b]; s; s = s->next)
        if (s->tenant == tenant && strcmp(s->id, id) == 0 && strcmp(s->model, model) == 0) {
            /* A key's tenant is known once it calls (the keys file names it first). */
            if (owner && strcmp(s->owner, owner) != 0)
                snprintf(s->owner, sizeof s->owner, "%s", owner);
            return s;
        }
    scope *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->tenant = tenant;
    snprintf(s->id, sizeof s->id, "%s", id);
    snprintf(s->model, sizeof s->model, "%s", model);
    snprintf(s->owner, sizeof s->owner, "%s", owner ? owner : id);
    fr__limits_doc_init(&s->file);
    fr__limits_doc_init(&s->remote);
    fr__limits_doc_init(&s->queued);
    s->month = -1;
    s->next = q->buckets[b];
    q->buckets[b] = s;
    return s;
}

static const fr_limits_doc *limits_of(const scope *s)
{
    return s->has_remote ? &s->remote : s->has_file ? &s->file : s->has_queued ? &s->queued : NULL;
}

static int64_t now_of(const fr_quota *q)
{
    return q->now_us ? q->now_us() : fr__wall_us();
}

static int month_of(int64_t us)
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    return (tm.tm_year + 1900) * 12 + tm.tm_mon;
}

/* Unix seconds of the first instant of month m (year * 12 + month - 1). */
static int64_t month_start(int m)
{
    return (int64_t)fr__days_from_civil(m / 12, (unsigned)(m % 12 + 1), 1) * 86400;
}

static void who_label(const scope *s, char *buf, size_t n)
{
    snprintf(buf, n, "%s \"%s\"", s->tenant ? "tenant" : "key", s->id);
}

fr_quota *fr__quota_new(void)
{
    fr_quota *q = calloc(1, sizeof *q);
    if (q)
        pthread_mutex_init(&q->mu, NULL);
    return q;
}

static void scope_free(scope *s)
{
    fr__limits_doc_clear(&s->file);
    fr__limits_doc_clear(&s->remote);
    fr__limits_doc_clear(&s->queued);
    free(s->remote_text);
    free(s->queued_text);
    free(s->members);
    free(s->ring);
    free(s->toks);
    free(s);
}

void fr__quota_free(fr_quota *q)
{
    if (!q)
        return;
    for (int b = 0; b < N_BUCKETS; b++)
        for (scope *s = q->buckets[b], *next; s; s = next) {
            next = s->next;
            scope_free(s);
        }
    pthread_mutex_destroy(&q->mu);
    free(q);
}

void fr__quota_set_state(fr_quota *q, fr_state *st, int64_t lease_us)
{
    q->state = st && st->kind == FR_STATE_REDIS ? st : NULL;
    q->lease_ms = lease_us / 1000 + 60000;
}

void fr__quota_set_clock(fr_quota *q, int64_t (*now_us)(void))
{
    q->now_us = now_us;
}

static char offset_path[512];

void fr__quota_use_offset_clock(const char *path)
{
    snprintf(offset_path, sizeof offset_path, "%s", path);
}

int64_t fr__quota_offset_clock(void)
{
    int64_t off = 0;
    FILE *f = offset_path[0] ? fopen(offset_path, "r") : NULL;
    if (f) {
        long long v;
        if (fscanf(f, "%lld", &v) == 1)
            off = v;
        fclose(f);
    }
    return fr__wall_us() + off * 1000000;
}

void fr__quota_set_prices(fr_quota *q, fr_quota_price_fn fn, void *ud)
{
    pthread_mutex_lock(&q->mu);
    q->price = fn;
    q->price_ud = ud;
    pthread_mutex_unlock(&q->mu);
}

/* ---- where limits come from ------------------------------------------------------------ */

static void load_one(void *ud, int tenant, const char *id, const fr_limits_doc *d)
{
    fr_quota *q = ud;
    if (fr__limits_doc_empty(d))
        return;
    scope *s = get_scope(q, tenant, id, "", tenant ? id : NULL);
    if (s && fr__limits_doc_copy(&s->file, d) == 0)
        s->has_file = 1;
}

void fr__quota_load_file(fr_quota *q, const fr_auth *a)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    for (int b = 0; b < N_BUCKETS; b++)
        for (scope *s = q->buckets[b]; s; s = s->next) {
            fr__limits_doc_clear(&s->file);
            s->has_file = 0;
        }
    fr__auth_each_limits(a, load_one, q);
    pthread_mutex_unlock(&q->mu);
}

void fr__quota_set_remote(fr_quota *q, int tenant, const char *id, const fr_limits_doc *d)
{
    if (!q || !id)
        return;
    pthread_mutex_lock(&q->mu);
    scope *s = get_scope(q, tenant, id, "", tenant ? id : NULL);
    if (s) {
        fr__limits_doc_clear(&s->remote);
        s->has_remote = d && fr__limits_doc_copy(&s->remote, d) == 0;
    }
    pthread_mutex_unlock(&q->mu);
}

/* Sets the document of one slot (the control plane's or a queued run's) from its JSON text,
 * parsed only when it differs from the last text; q->mu held. */
static int set_text(scope *s, fr_limits_doc *doc, int *has, char **last, const char *text,
                    const char *from)
{
    if (*last && strcmp(*last, text) == 0)
        return 0; /* a cached lookup costs a string compare */
    int rc = 0;
    fr_limits_doc d;
    char err[512];
    if (!text[0]) {
        fr__limits_doc_clear(doc);
        *has = 0;
    } else if (fr__limits_doc_parse(text, strlen(text), &d, err, sizeof err) == 0) {
        fr__limits_doc_clear(doc);
        *doc = d;
        *has = 1;
    } else {
        fprintf(stderr, "fluxroute: %s \"%s\": %s's %s; kept the previous limits\n",
                s->tenant ? "tenant" : "key", s->id, from, err);
        rc = -1;
    }
    free(*last);
    *last = strdup(text);
    return rc;
}

int fr__quota_set_remote_text(fr_quota *q, int tenant, const char *id, const char *text)
{
    if (!q || !id || !text)
        return 0;
    int rc = 0;
    pthread_mutex_lock(&q->mu);
    scope *s = get_scope(q, tenant, id, "", tenant ? id : NULL);
    if (s)
        rc = set_text(s, &s->remote, &s->has_remote, &s->remote_text, text, "the control plane");
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int fr__quota_set_queued_text(fr_quota *q, int tenant, const char *id, const char *owner,
                              const char *text)
{
    if (!q || !id || !id[0] || !text)
        return 0;
    int rc = 0;
    pthread_mutex_lock(&q->mu);
    scope *s = get_scope(q, tenant, id, "", tenant ? id : owner);
    if (s)
        rc = set_text(s, &s->queued, &s->has_queued, &s->queued_text, text, "the queued run");
    pthread_mutex_unlock(&q->mu);
    return rc;
}

char *fr__quota_limits_text(fr_quota *q, int tenant, const char *id)
{
    if (!q || !id)
        return NULL;
    pthread_mutex_lock(&q->mu);
    scope *s = get_scope(q, tenant, id, "", tenant ? id : NULL);
    const fr_limits_doc *d = s ? limits_of(s) : NULL;
    char *text = NULL;
    if (s && s->has_remote && s->remote_text) {
        text = strdup(s->remote_text); /* as the control plane sent it */
    } else if (d) {
        json_object *o = fr__limits_doc_to_json(d);
        text = o ? strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) : NULL;
        json_object_put(o);
    } else if (s) {
        text = strdup("");
    }
    pthread_mutex_unlock(&q->mu);
    return text;
}

int fr__quota_seed_begin(fr_quota *q, int tenant, const char *id, const char *owner)
{
    if (!q || !id || !owner)
        return 0;
    pthread_mutex_lock(&q->mu);
    scope *s = get_scope(q, tenant, id, "", owner);
    int need = s && !s->seeded && limits_of(s) && fr__limits_doc_has_budget(limits_of(s));
    if (need)
        s->seeded = 1;
    pthread_mutex_unlock(&q->mu);
    return need;
}

void fr__quota_seed_failed(fr_quota *q, int tenant, const char *id, const char *owner)
{
    pthread_mutex_lock(&q->mu);
    scope *s = get_scope(q, tenant, id, "", owner);
    if (s)
        s->seeded = 0;
    pthread_mutex_unlock(&q->mu);
}

/* Starts a new month's count when the month changed; q->mu held. */
static void roll_month(scope *s, int64_t now)
{
    int m = month_of(now);
    if (s->month != m) {
        s->month = m;
        s->spent = 0;
        s->crossed = 0;
    }
}

void fr__quota_seed_spend(fr_quota *q, int tenant, const char *id, const char *owner,
                          int64_t micros)
{
    if (!q || !id || !owner)
        return;
    if (q->state) {
        char ts[21], month[8], err[300];
        fr__rfc3339_format(now_of(q) / 1000000, ts);
        snprintf(month, sizeof month, "%.7s", ts);
        fr_rl_scope rs = {tenant ? "t" : "k", id, ""};
        if (fr__limits_redis_seed(q->state, owner, &rs, month, micros, err, sizeof err) != 0)
            fprintf(stderr, "fluxroute serve: cannot seed %s \"%s\"'s spend in Redis: %s\n",
                    tenant ? "tenant" : "key", id, err);
        return;
    }
    pthread_mutex_lock(&q->mu);
    scope *s = get_scope(q, tenant, id, "", owner);
    if (s) {
        roll_month(s, now_of(q));
        s->spent += micros;
    }
    pthread_mutex_unlock(&q->mu);
}

/* ---- requests: the sliding log --------------------------------------------------------- */

/* Resizes the ring to `cap` entries, keeping the newest; q->mu held.  -1 on OOM. */
static int ring_fit(scope *s, int64_t cap64)
{
    size_t cap = (size_t)cap64;
    if (s->cap == cap)
        return 0;
    int64_t *r = cap ? malloc(cap * sizeof *r) : NULL;
    if (cap && !r)
        return -1;
    size_t keep = s->n < cap ? s->n : cap;
    for (size_t i = 0; i < keep; i++)
        r[i] = s->ring[(s->head + s->n - keep + i) % s->cap];
    free(s->ring);
    s->ring = r;
    s->cap = cap;
    s->head = 0;
    s->n = keep;
    return 0;
}

static int64_t ring_at(const scope *s, size_t i)
{
    return s->ring[(s->head + i) % s->cap];
}

/* Admissions in the 60 s before `now`, and in *oldest the oldest of them (0: none). */
static size_t ring_used(const scope *s, int64_t now, int64_t *oldest)
{
    size_t lo = 0, hi = s->n; /* times only grow: the first entry inside the window */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ring_at(s, mid) > now - WINDOW_US)
            hi = mid;
        else
            lo = mid + 1;
    }
    *oldest = lo < s->n ? ring_at(s, lo) : 0;
    return s->n - lo;
}

static void ring_push(scope *s, int64_t now)
{
    if (!s->cap)
        return;
    if (s->n < s->cap) {
        s->ring[(s->head + s->n) % s->cap] = now;
        s->n++;
    } else {
        s->ring[s->head] = now;
        s->head = (s->head + 1) % s->cap;
    }
}

/* ---- tokens: the rolling 60 s sum ---------------------------------------------------- */

static void tok_prune(scope *s, int64_t now)
{
    while (s->tok_n && s->toks[s->tok_head].t <= now - WINDOW_US) {
        s->tok_sum -= s->toks[s->tok_head].n;
        s->tok_head++;
        s->tok_n--;
    }
    if (!s->tok_n)
        s->tok_head = 0;
}

/* Appends an entry; returns its sequence number, 0 on OOM. */
static uint64_t tok_push(fr_quota *q, scope *s, int64_t now, int64_t n)
{
    if (s->tok_head + s->tok_n == s->tok_cap) {
        if (s->tok_head > 0) {
            memmove(s->toks, s->toks + s->tok_head, s->tok_n * sizeof *s->toks);
            s->tok_head = 0;
        }
        if (s->tok_n == s->tok_cap) {
            size_t cap = s->tok_cap ? s->tok_cap * 2 : 16;
            tok_entry *t = realloc(s->toks, cap * sizeof *t);
            if (!t)
                return 0;
            s->toks = t;
            s->tok_cap = cap;
        }
    }
    tok_entry *e = &s->toks[s->tok_head + s->tok_n++];
    e->t = now;
    e->n = n;
    e->seq = ++q->seq;
    s->tok_sum += n;
    return e->seq;
}

/* When (Unix us) `need` more tokens fit under `limit`, entries expiring in order. */
static int64_t tok_fits_at(const scope *s, int64_t need, int64_t limit)
{
    int64_t sum = s->tok_sum;
    for (size_t i = 0; i < s->tok_n; i++) {
        const tok_entry *e = &s->toks[s->tok_head + i];
        sum -= e->n;
        if (sum + need <= limit)
            return e->t + WINDOW_US;
    }
    return 0;
}

/* ---- refusals ---------------------------------------------------------------------------- */

static void count_rejection(const scope *s, const char *limit)
{
    const char *labels[] = {s->owner, limit, NULL};
    fr__metric_count(FR_M_LIMIT_REJECTIONS, labels, 1);
}

static void fmt_time(int64_t us, char out[21])
{
    fr__rfc3339_format((us + 999999) / 1000000, out);
}

static int64_t ceil_s(int64_t us)
{
    int64_t s = (us + 999999) / 1000000;
    return s < 1 ? 1 : s;
}

/* 429 with code e, Retry-After, and {"limit", "retry_after_s"} beside the message. */
static void refuse(fr_reply *out, fr_http_error e, const char *limit, int64_t retry_s,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void refuse(fr_reply *out, fr_http_error e, const char *limit, int64_t retry_s,
                   const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_object *inner = NULL;
    json_object *o = fr__http_error_body_v(e, &inner, fmt, ap);
    va_end(ap);
    if (inner) {
        json_object_object_add(inner, "limit", json_object_new_string(limit));
        json_object_object_add(inner, "retry_after_s", json_object_new_int64(retry_s));
    }
    free(out->body);
    out->body = NULL;
    fr__reply_json(out, 429, o);
    out->retry_after = (int)(retry_s > 86400 * 31 ? 86400 * 31 : retry_s);
}

/* A budget threshold passed (80 or 100 percent) to report after the lock. */
typedef struct crossing {
    char who[160];
    char tenant[72];
    int pct;
    int64_t spent, budget;
} crossing;

static void report_crossing(const crossing *x)
{
    fprintf(stderr,
            "{\"level\":\"warn\",\"event\":\"budget_threshold\",\"scope\":\"%s\","
            "\"tenant\":\"%s\",\"threshold_pct\":%d,\"spent_micros\":%lld,"
            "\"budget_micros\":%lld}\n",
            x->who[0] == 't' ? "tenant" : "key", x->tenant, x->pct, (long long)x->spent,
            (long long)x->budget);
    char detail[512];
    snprintf(detail, sizeof detail, "%.159s passed %d%% of monthly_budget_micros %lld (%lld spent)",
             x->who, x->pct, (long long)x->budget, (long long)x->spent);
    fr_audit_event ev = {.actor = "fluxroute-serve",
                         .role = "none",
                         .tenant = x->tenant,
                         .action = "budget_threshold",
                         .decision = "allowed",
                         .result = x->pct >= 100 ? "budget_spent" : "budget_warning",
                         .error = detail};
    fr__audit_log(&ev);
}

/* Notes that whole scope `s` (tenant or key) spent more, under its monthly budget
 * `budget`: the metric (a tenant's), and *x filled when it passed 80% or 100% for the
 * first time this month (returns 1: report it after the lock).  q->mu held. */
static int note_spend(scope *s, int64_t budget, crossing *x)
{
    if (s->tenant && !s->model[0]) {
        const char *labels[] = {s->id, NULL};
        fr__metric_set(fr__metric_series(FR_M_BUDGET_USED, labels), s->spent);
    }
    if (budget <= 0 || s->model[0])
        return 0;
    int pct = s->spent * 100 >= budget * 100 ? 100 : s->spent * 100 >= budget * 80 ? 80 : 0;
    if (pct <= s->crossed)
        return 0;
    s->crossed = pct;
    who_label(s, x->who, sizeof x->who);
    snprintf(x->tenant, sizeof x->tenant, "%s", s->owner);
    x->pct = pct;
    x->spent = s->spent;
    x->budget = budget;
    return 1;
}

/* The rate card's per_run price (micro-units), charged to budgets when a run is admitted,
 * as the invoice charges each run: the price of model "" (a run event's), or of "*".  0
 * when the card has none.  q->mu held. */
static int64_t run_price(fr_quota *q)
{
    int64_t in, out, per_run = 0;
    if (!q->price || q->price(q->price_ud, "", &in, &out, &per_run) != 0 || per_run < 0)
        return 0;
    return per_run;
}

static void refuse_budget(fr_reply *out, const char *label, int64_t budget, int64_t spent,
                          int64_t reserved, int64_t per_run, int64_t now)
{
    int64_t next = month_start(month_of(now) + 1) * 1000000;
    char at[21];
    fmt_time(next, at);
    refuse(out, FR_HE_BUDGET_EXCEEDED, "monthly_budget_micros", ceil_s(next - now),
           "%s: limit monthly_budget_micros %lld reached (%lld spent and %lld reserved this "
           "month, a run costs %lld: the rate card's per_run); it resets at %s",
           label, (long long)budget, (long long)spent, (long long)reserved, (long long)per_run, at);
}

/* ---- admission ---------------------------------------------------------------------------- */

static void refuse_requests(fr_reply *out, const char *label, int64_t rpm, int64_t reset,
                            int64_t now)
{
    char at[21];
    fmt_time(reset, at);
    refuse(out, FR_HE_RATE_LIMITED, "requests_per_minute", ceil_s(reset - now),
           "%s: limit requests_per_minute %lld reached (at most %lld runs in any rolling 60 s); "
           "the next run is admitted in %lld s, at %s",
           label, (long long)rpm, (long long)rpm, (long long)ceil_s(reset - now), at);
}

static void refuse_runs(fr_reply *out, const char *label, int64_t conc, int64_t inflight)
{
    refuse(out, FR_HE_TOO_MANY_RUNS, "concurrent_runs", 1,
           "%s: limit concurrent_runs %lld reached (%lld runs in flight now); it resets when one "
           "of them ends: retry shortly",
           label, (long long)conc, (long long)inflight);
}

/* Admission with the counters in Redis: one round trip (the ADMIT script). */
static int admit_redis(fr_quota *q, const fr_identity *who, fr_reply *out)
{
    int64_t rpm[2] = {FR_NO_LIMIT, FR_NO_LIMIT}, conc[2] = {FR_NO_LIMIT, FR_NO_LIMIT};
    int64_t budget[2] = {FR_NO_LIMIT, FR_NO_LIMIT}, per_run = 0;
    char label[2][160];
    pthread_mutex_lock(&q->mu);
    int64_t now = now_of(q);
    scope *sc[2] = {get_scope(q, 1, who->tenant, "", who->tenant),
                    get_scope(q, 0, who->id, "", who->tenant)};
    int limited = 0;
    for (int i = 0; i < 2 && sc[i]; i++) {
        const fr_limits_doc *d = limits_of(sc[i]);
        who_label(sc[i], label[i], sizeof label[i]);
        if (d) {
            rpm[i] = d->all.requests_per_minute;
            conc[i] = d->all.concurrent_runs;
            budget[i] = d->all.monthly_budget_micros;
            limited |= rpm[i] != FR_NO_LIMIT || conc[i] != FR_NO_LIMIT;
        }
    }
    if (budget[0] != FR_NO_LIMIT || budget[1] != FR_NO_LIMIT)
        per_run = run_price(q);
    if (per_run > 0)
        limited |= budget[0] != FR_NO_LIMIT || budget[1] != FR_NO_LIMIT;
    else
        budget[0] = budget[1] = FR_NO_LIMIT; /* nothing to charge */
    pthread_mutex_unlock(&q->mu);
    if (!sc[0] || !sc[1]) {
        fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
        return -1;
    }
    if (!limited) /* nothing to count: no round trip */
        return 0;
    char member[40];
    if (fr__secure_uuid(member, sizeof member) != 0)
        snprintf(member, sizeof member, "%lld", (long long)now);
    fr_rl_scope rs[2] = {{"t", who->tenant, ""}, {"k", who->id, ""}};
    fr_rl_verdict v;
    char err[300], ts[21], month[8];
    fr__rfc3339_format(now / 1000000, ts);
    snprintf(month, sizeof month, "%.7s", ts);
    if (fr__limits_redis_admit(q->state, who->tenant, rs, rpm, conc, budget, month, per_run,
                               now / 1000, q->lease_ms, member, &v, err, sizeof err) != 0) {
        /* Limits that cannot be checked are not enforced blind: refused, retry shortly. */
        fr__reply_error(out, FR_HE_STATE_UNAVAILABLE, "cannot check the limits: %s", err);
        out->retry_after = 1;
        return -1;
    }
    int i = v.scope == 1;
    pthread_mutex_lock(&q->mu);
    for (int j = 0; j < 2; j++) { /* what x-ratelimit-*-requests report: no other trip */
        sc[j]->snap_requests = v.after[j];
        sc[j]->snap_oldest_us = v.after_oldest_ms[j] * 1000;
    }
    if (v.refused) {
        count_rejection(sc[i], v.refused == 1   ? "requests_per_minute"
                               : v.refused == 2 ? "concurrent_runs"
                                                : "monthly_budget_micros");
        pthread_mutex_unlock(&q->mu);
        if (v.refused == 1)
            refuse_requests(out, label[i], rpm[i], v.reset_ms * 1000, now);
        else if (v.refused == 2)
            refuse_runs(out, label[i], conc[i], v.used);
        else
            refuse_budget(out, label[i], budget[i], v.used, v.reset_ms, per_run, now);
        return -1;
    }
    scope *k = sc[1];
    if (k->n_members == k->cap_members) {
        size_t cap = k->cap_members ? 2 * k->cap_members : 8;
        char(*m)[40] = realloc(k->members, cap * sizeof *m);
        if (m) {
            k->members = m;
            k->cap_members = cap;
        }
    }
    if (k->n_members < k->cap_members)
        memcpy(k->members[k->n_members++], member, sizeof member);
    for (int j = 0; j < 2; j++)
        sc[j]->inflight++;
    pthread_mutex_unlock(&q->mu);
    for (int j = 0; j < 2; j++) { /* the run's per_run, charged in Redis */
        if (j == 0 && v.run_spent[0] >= 0) {
            const char *labels[] = {who->tenant, NULL};
            fr__metric_set(fr__metric_series(FR_M_BUDGET_USED, labels), v.run_spent[0]);
        }
        if (v.run_spent[j] >= 0 && v.run_crossed[j]) {
            crossing x = {.pct = v.run_crossed[j], .spent = v.run_spent[j], .budget = budget[j]};
            snprintf(x.who, sizeof x.who, "%s", label[j]);
            snprintf(x.tenant, sizeof x.tenant, "%s", who->tenant);
            report_crossing(&x);
        }
    }
    return 0;
}

int fr__quota_admit(fr_quota *q, const fr_identity *who, fr_reply *out)
{
    if (!q)
        return 0;
    if (q->state)
        return admit_redis(q, who, out);
    pthread_mutex_lock(&q->mu);
    int64_t now = now_of(q);
    scope *sc[2] = {get_scope(q, 1, who->tenant, "", who->tenant),
                    get_scope(q, 0, who->id, "", who->tenant)};
    if (!sc[0] || !sc[1]) {
        pthread_mutex_unlock(&q->mu);
        fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
        return -1;
    }
    int64_t per_run = -1; /* not priced yet */
    for (int i = 0; i < 2; i++) {
        scope *s = sc[i];
        const fr_limits_doc *d = limits_of(s);
        if (!d)
            continue;
        char label[160];
        who_label(s, label, sizeof label);
        int64_t rpm = d->all.requests_per_minute;
        if (rpm != FR_NO_LIMIT) {
            int64_t oldest = 0;
            if (ring_fit(s, rpm) != 0) {
                pthread_mutex_unlock(&q->mu);
                fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
                return -1;
            }
            size_t used = rpm ? ring_used(s, now, &oldest) : 0;
            if (rpm == 0 || (int64_t)used >= rpm) {
                int64_t reset = rpm ? oldest + WINDOW_US : now + WINDOW_US;
                count_rejection(s, "requests_per_minute");
                pthread_mutex_unlock(&q->mu);
                refuse_requests(out, label, rpm, reset, now);
                return -1;
            }
        }
        int64_t conc = d->all.concurrent_runs;
        if (conc != FR_NO_LIMIT && s->inflight >= conc) {
            count_rejection(s, "concurrent_runs");
            int64_t inflight = s->inflight;
            pthread_mutex_unlock(&q->mu);
            refuse_runs(out, label, conc, inflight);
            return -1;
        }
        int64_t budget = d->all.monthly_budget_micros;
        if (budget != FR_NO_LIMIT) {
            if (per_run < 0)
                per_run = run_price(q);
            roll_month(s, now);
            if (per_run > 0 && s->spent + s->reserved + per_run > budget) {
                count_rejection(s, "monthly_budget_micros");
                int64_t spent = s->spent, reserved = s->reserved;
                pthread_mutex_unlock(&q->mu);
                refuse_budget(out, label, budget, spent, reserved, per_run, now);
                return -1;
            }
        }
    }
    crossing xs[2];
    int nx = 0;
    for (int i = 0; i < 2; i++) {
        const fr_limits_doc *d = limits_of(sc[i]);
        if (d && d->all.requests_per_minute != FR_NO_LIMIT)
            ring_push(sc[i], now);
        sc[i]->inflight++;
        if (d && d->all.monthly_budget_micros != FR_NO_LIMIT && per_run > 0) {
            sc[i]->spent += per_run; /* the run's per_run price, as the invoice has it */
            nx += note_spend(sc[i], d->all.monthly_budget_micros, &xs[nx]);
        }
    }
    pthread_mutex_unlock(&q->mu);
    for (int i = 0; i < nx; i++)
        report_crossing(&xs[i]);
    return 0;
}

void fr__quota_leave(fr_quota *q, const fr_identity *who)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    scope *sc[2] = {get_scope(q, 1, who->tenant, "", who->tenant),
                    get_scope(q, 0, who->id, "", who->tenant)};
    for (int i = 0; i < 2; i++)
        if (sc[i] && sc[i]->inflight > 0)
            sc[i]->inflight--;
    /* Redis: one of the entries this process added for the key leaves the runs in flight
     * (which one does not matter: the count is what is checked). */
    char member[40] = "";
    if (q->state && sc[1] && sc[1]->n_members)
        memcpy(member, sc[1]->members[--sc[1]->n_members], sizeof member);
    pthread_mutex_unlock(&q->mu);
    if (member[0]) {
        fr_rl_scope rs[2] = {{"t", who->tenant, ""}, {"k", who->id, ""}};
        char err[300];
        if (fr__limits_redis_leave(q->state, who->tenant, rs, member, err, sizeof err) != 0)
            fprintf(stderr,
                    "fluxroute serve: a run of key \"%s\" stays counted in flight until "
                    "its entry expires: %s\n",
                    who->id, err);
    }
}

/* ---- provider calls: reserve, settle --------------------------------------------------- */

/* Reads "model" and "max_tokens" of a request without building its tree (once per
 * provider call): returns 1 when both are absent or plain (a string without escapes;
 * digits), with model[] and *max_tokens set for those present, else 0. */
static int plain_facts(const char *req, size_t len, char model[128], int64_t *max_tokens)
{
    const char *m, *t;
    size_t mn = 0, tn = 0;
    int fm = fr__json_member(req, len, "model", &m, &mn);
    int ft = fm >= 0 ? fr__json_member(req, len, "max_tokens", &t, &tn) : -1;
    if (fm < 0 || ft < 0 || (fm && (mn < 2 || m[0] != '"' || memchr(m, '\\', mn))) ||
        (ft && (tn < 1 || tn > 18 || strspn(t, "0123456789") < tn)))
        return 0;
    if (fm)
        snprintf(model, 128, "%.*s", (int)(mn - 2), m + 1);
    if (ft)
        *max_tokens = strtoll(t, NULL, 10);
    return 1;
}

/* The request's "model" (into model[128], "" when none) and max_tokens. */
static int64_t request_facts(const char *req, size_t len, char model[128])
{
    model[0] = '\0';
    int64_t max_tokens = FR_QUOTA_DEFAULT_MAX_TOKENS;
    if (plain_facts(req, len, model, &max_tokens))
        return max_tokens;
    json_object *o = json_tokener_parse(req), *v;
    if (o && json_object_object_get_ex(o, "model", &v) && json_object_is_type(v, json_type_string))
        snprintf(model, 128, "%s", json_object_get_string(v));
    if (o && json_object_object_get_ex(o, "max_tokens", &v) &&
        json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 0)
        max_tokens = json_object_get_int64(v);
    json_object_put(o);
    return max_tokens;
}

/* The cost of tokens of `model` in micro-units, rounded half-even per direction; -1 when
 * the model has no price.  q->mu held. */
/* Why a budgeted call cannot be charged when this process has no rate card at all. */
#define NO_CARD                                                                         \
    "no rate card prices the call: this process was started without --controlplane (a " \
    "budget needs the control plane's rate card; start fluxroute worker or serve with " \
    "--controlplane)"

static int64_t price_of(fr_quota *q, const char *model, int64_t in, int64_t out)
{
    int64_t pin = 0, pout = 0, prun = 0, a = 0, b = 0;
    if (!q->price || q->price(q->price_ud, model, &pin, &pout, &prun) != 0)
        return -1;
    if (fr__bill_amount(in, pin, 1000000, 1, &a) != FR_OK ||
        fr__bill_amount(out, pout, 1000000, 1, &b) != FR_OK)
        return -1;
    return a + b;
}

/* The monthly budget and tokens per minute that apply to scope `s` itself (its own entry,
 * or its owner's model entry for a model scope). */
static void scope_caps(const scope *owner, const char *model, int64_t *tpm, int64_t *budget)
{
    *tpm = *budget = FR_NO_LIMIT;
    const fr_limits_doc *d = limits_of(owner);
    if (!d)
        return;
    if (!model) {
        *tpm = d->all.tokens_per_minute;
        *budget = d->all.monthly_budget_micros;
        return;
    }
    const fr_model_limits *m = fr__limits_doc_model(d, model);
    if (m) {
        *tpm = m->set.tokens_per_minute;
        *budget = m->set.monthly_budget_micros;
    }
}

/* Keeps what Redis said of a scope's tokens window; q->mu held. */
static void snap_tokens(scope *s, int64_t tokens, int64_t oldest_s)
{
    s->snap_tokens = tokens;
    s->snap_tok_oldest_s = oldest_s;
}

static fr_status quota_reserve(void *ud, const char *provider, const char *request,
                               size_t request_len, void **ticket_out, int64_t *retry_after_us,
                               char *msg, size_t msglen)
{
    fr_quota_run *qr = ud;
    fr_quota *q = qr->q;
    (void)provider;
    *ticket_out = NULL;
    /* Neither the tenant nor the key has limits (the common case): nothing to reserve, and
     * the request is not read for its model and max_tokens. */
    pthread_mutex_lock(&q->mu);
    scope *owners[2] = {get_scope(q, 1, qr->tenant, "", qr->tenant),
                        get_scope(q, 0, qr->key, "", qr->tenant)};
    int limited = (owners[0] && limits_of(owners[0])) || (owners[1] && limits_of(owners[1]));
    pthread_mutex_unlock(&q->mu);
    if (!limited)
        return FR_OK;
    char model[128];
    int64_t max_tokens = request_facts(request, request_len, model);
    int64_t est = (int64_t)request_len + max_tokens;
    pthread_mutex_lock(&q->mu);
    int64_t now = now_of(q);
    owners[0] = get_scope(q, 1, qr->tenant, "", qr->tenant);
    owners[1] = get_scope(q, 0, qr->key, "", qr->tenant);
    /* The scopes charged and their caps: each owner, and its model entry. */
    struct {
        scope *s, *owner;
        int64_t tpm, budget;
        const char *model;
    } c[4];
    int n = 0;
    for (int i = 0; i < 2; i++) {
        if (!owners[i] || !limits_of(owners[i]))
            continue;
        scope_caps(owners[i], NULL, &c[n].tpm, &c[n].budget);
        c[n].s = c[n].owner = owners[i];
        c[n].model = NULL;
        if (c[n].tpm != FR_NO_LIMIT || c[n].budget != FR_NO_LIMIT)
            n++;
        int64_t mt, mb;
        scope_caps(owners[i], model, &mt, &mb);
        const fr_model_limits *ml = fr__limits_doc_model(limits_of(owners[i]), model);
        if (ml && (mt != FR_NO_LIMIT || mb != FR_NO_LIMIT)) {
            scope *ms = get_scope(q, owners[i]->tenant, owners[i]->id, ml->model, qr->tenant);
            if (ms) {
                c[n].s = ms;
                c[n].owner = owners[i];
                c[n].tpm = mt;
                c[n].budget = mb;
                c[n].model = ml->model;
                n++;
            }
        }
    }
    if (n == 0) {
        pthread_mutex_unlock(&q->mu);
        return FR_OK;
    }
    if (q->state) {
        ticket *t = calloc(1, sizeof *t);
        int any_budget = 0;
        for (int i = 0; t && i < n; i++) {
            /* Borrowed from the scopes, which live as long as q. */
            t->rs[i].kind = c[i].owner->tenant ? "t" : "k";
            t->rs[i].id = c[i].owner->id;
            t->rs[i].model = c[i].model ? c[i].s->model : "";
            t->tpm[i] = c[i].tpm;
            t->budget[i] = c[i].budget;
            any_budget |= c[i].budget != FR_NO_LIMIT;
        }
        int64_t price = any_budget ? price_of(q, model, (int64_t)request_len, max_tokens) : 0;
        int no_card = !q->price;
        pthread_mutex_unlock(&q->mu);
        if (!t) {
            snprintf(msg, msglen, "cannot reserve: out of memory");
            return FR_E_NOMEM;
        }
        if (price < 0) {
            free(t);
            if (no_card)
                snprintf(msg, msglen, "limit monthly_budget_micros: %s", NO_CARD);
            else
                snprintf(msg, msglen,
                         "limit monthly_budget_micros: model \"%s\" has no price in the rate "
                         "card, so the call cannot be charged",
                         model);
            return FR_E_BUDGET_EXCEEDED;
        }
        t->redis = 1;
        t->n = n;
        t->est_tokens = est;
        t->micros = price;
        t->at_us = now;
        snprintf(t->model, sizeof t->model, "%s", model);
        snprintf(t->tenant, sizeof t->tenant, "%s", qr->tenant);
        char ts[21];
        fr__rfc3339_format(now / 1000000, ts);
        snprintf(t->month, sizeof t->month, "%.7s", ts);
        fr_rl_verdict v;
        char err[300];
        if (fr__limits_redis_reserve(q->state, qr->tenant, t->rs, (size_t)n, t->tpm, t->budget,
                                     now / 1000, t->month, est, price, &v, err, sizeof err) != 0) {
            free(t);
            snprintf(msg, msglen, "cannot check the limits: %s", err);
            return FR_E_UNAVAILABLE;
        }
        pthread_mutex_lock(&q->mu);
        for (int i = 0; i < n; i++)
            if (!c[i].model && v.tokens[i] >= 0) /* for x-ratelimit-*-tokens */
                snap_tokens(c[i].s, v.tokens[i], v.tokens_oldest_s[i]);
        pthread_mutex_unlock(&q->mu);
        if (v.refused) {
            int i = v.scope < n ? v.scope : 0;
            char label[300];
            snprintf(label, sizeof label, "%s \"%s\"%s%s%s", c[i].owner->tenant ? "tenant" : "key",
                     c[i].owner->id, c[i].model ? ", model \"" : "", c[i].s->model,
                     c[i].model ? "\"" : "");
            pthread_mutex_lock(&q->mu);
            count_rejection(c[i].owner,
                            v.refused == 1 ? "tokens_per_minute" : "monthly_budget_micros");
            pthread_mutex_unlock(&q->mu);
            free(t);
            if (v.refused == 1) {
                char when[21];
                fmt_time(v.reset_ms * 1000, when);
                if (v.reset_ms)
                    *retry_after_us = v.reset_ms * 1000 - now;
                snprintf(msg, msglen,
                         "%s: limit tokens_per_minute %lld reached (%lld tokens used or reserved "
                         "in the last 60 s, this call reserves %lld)%s%s",
                         label, (long long)c[i].tpm, (long long)v.used, (long long)est,
                         v.reset_ms ? "; it resets at " : ": lower max_tokens",
                         v.reset_ms ? when : "");
                return FR_E_RATE_LIMITED;
            }
            int64_t next = month_start(month_of(now) + 1) * 1000000;
            char when[21];
            fmt_time(next, when);
            *retry_after_us = next - now;
            snprintf(msg, msglen,
                     "%s: limit monthly_budget_micros %lld reached (%lld spent and %lld reserved "
                     "this month, this call reserves %lld); it resets at %s",
                     label, (long long)c[i].budget, (long long)v.spent, (long long)v.reserved,
                     (long long)price, when);
            return FR_E_BUDGET_EXCEEDED;
        }
        *ticket_out = t;
        return FR_OK;
    }
    int64_t micros = -2; /* not priced yet */
    for (int i = 0; i < n; i++) {
        scope *s = c[i].s;
        char label[300];
        who_label(c[i].owner, label, sizeof label);
        if (c[i].model)
            snprintf(label + strlen(label), sizeof label - strlen(label), ", model \"%s\"",
                     c[i].model);
        if (c[i].tpm != FR_NO_LIMIT) {
            tok_prune(s, now);
            if (s->tok_sum + est > c[i].tpm) {
                int64_t at = est > c[i].tpm ? 0 : tok_fits_at(s, est, c[i].tpm);
                count_rejection(c[i].owner, "tokens_per_minute");
                pthread_mutex_unlock(&q->mu);
                if (at) {
                    char when[21];
                    fmt_time(at, when);
                    *retry_after_us = at - now;
                    snprintf(msg, msglen,
                             "%s: limit tokens_per_minute %lld reached (%lld tokens used or "
                             "reserved in the last 60 s, this call reserves %lld); it resets in "
                             "%lld s, at %s",
                             label, (long long)c[i].tpm, (long long)s->tok_sum, (long long)est,
                             (long long)ceil_s(at - now), when);
                } else {
                    snprintf(msg, msglen,
                             "%s: limit tokens_per_minute %lld: this call alone reserves %lld "
                             "tokens (its request's bytes + max_tokens %lld); lower max_tokens",
                             label, (long long)c[i].tpm, (long long)est, (long long)max_tokens);
                }
                return FR_E_RATE_LIMITED;
            }
        }
        if (c[i].budget != FR_NO_LIMIT) {
            roll_month(s, now);
            if (micros == -2)
                micros = price_of(q, model, (int64_t)request_len, max_tokens);
            int64_t next = month_start(s->month + 1) * 1000000;
            char when[21];
            fmt_time(next, when);
            if (micros < 0 || s->spent + s->reserved + micros > c[i].budget) {
                count_rejection(c[i].owner, "monthly_budget_micros");
                pthread_mutex_unlock(&q->mu);
                *retry_after_us = next - now;
                if (micros < 0 && !q->price)
                    snprintf(msg, msglen, "%s: limit monthly_budget_micros %lld: %s", label,
                             (long long)c[i].budget, NO_CARD);
                else if (micros < 0)
                    snprintf(msg, msglen,
                             "%s: limit monthly_budget_micros %lld: model \"%s\" has no price in "
                             "the rate card, so the call cannot be charged",
                             label, (long long)c[i].budget, model);
                else
                    snprintf(msg, msglen,
                             "%s: limit monthly_budget_micros %lld reached (%lld spent and %lld "
                             "reserved this month, this call reserves %lld); it resets at %s",
                             label, (long long)c[i].budget, (long long)s->spent,
                             (long long)s->reserved, (long long)micros, when);
                return FR_E_BUDGET_EXCEEDED;
            }
        }
    }
    ticket *t = calloc(1, sizeof *t);
    if (!t) {
        pthread_mutex_unlock(&q->mu);
        snprintf(msg, msglen, "cannot reserve: out of memory");
        return FR_E_NOMEM;
    }
    t->est_tokens = est;
    snprintf(t->model, sizeof t->model, "%s", model);
    for (int i = 0; i < n; i++) {
        t->c[i].s = c[i].s;
        t->c[i].micros = -1;
        if (c[i].tpm != FR_NO_LIMIT)
            t->c[i].seq = tok_push(q, c[i].s, now, est);
        if (c[i].budget != FR_NO_LIMIT) {
            c[i].s->reserved += micros;
            t->c[i].micros = micros;
        }
    }
    t->n = n;
    pthread_mutex_unlock(&q->mu);
    *ticket_out = t;
    return FR_OK;
}

static void quota_settle(void *ud, void *tk, int completed, const char *model, int64_t in,
                         int64_t out, int usage_unknown)
{
    fr_quota_run *qr = ud;
    fr_quota *q = qr->q;
    ticket *t = tk;
    if (!t)
        return;
    if (t->redis) {
        pthread_mutex_lock(&q->mu);
        const char *priced = model && model[0] ? model : t->model;
        int64_t micros = !completed ? 0 : usage_unknown ? t->micros : price_of(q, priced, in, out);
        pthread_mutex_unlock(&q->mu);
        if (micros < 0)
            micros = t->micros;
        int64_t tokens = !completed ? 0 : usage_unknown ? t->est_tokens : in + out;
        char err[300];
        fr_rl_settled st;
        if (fr__limits_redis_settle(q->state, t->tenant, t->rs, (size_t)t->n, t->tpm, t->budget,
                                    t->at_us / 1000, now_of(q) / 1000, t->month, t->est_tokens,
                                    tokens, t->micros, micros, &st, err, sizeof err) != 0) {
            fprintf(stderr,
                    "fluxroute serve: a provider call of tenant \"%s\" stays counted at its "
                    "reservation (%lld tokens, %lld micro-units): %s\n",
                    t->tenant, (long long)t->est_tokens, (long long)t->micros, err);
            free(t);
            return;
        }
        const int64_t *spent = st.spent;
        const int *crossed = st.crossed;
        pthread_mutex_lock(&q->mu);
        for (int i = 0; i < t->n; i++) {
            scope *o = get_scope(q, t->rs[i].kind[0] == 't', t->rs[i].id, "", t->tenant);
            if (o && !t->rs[i].model[0] && st.tokens[i] >= 0)
                snap_tokens(o, st.tokens[i], st.tokens_oldest_s[i]);
        }
        pthread_mutex_unlock(&q->mu);
        for (int i = 0; i < t->n; i++) {
            int whole = !t->rs[i].model[0];
            if (whole && spent[i] >= 0 && t->rs[i].kind[0] == 't') {
                const char *labels[] = {t->tenant, NULL};
                fr__metric_set(fr__metric_series(FR_M_BUDGET_USED, labels), spent[i]);
            }
            if (whole && crossed[i]) { /* the first replica to see it reports it, once */
                crossing x = {.pct = crossed[i], .spent = spent[i], .budget = t->budget[i]};
                snprintf(x.who, sizeof x.who, "%s \"%s\"",
                         t->rs[i].kind[0] == 't' ? "tenant" : "key", t->rs[i].id);
                snprintf(x.tenant, sizeof x.tenant, "%s", t->tenant);
                report_crossing(&x);
            }
        }
        free(t);
        return;
    }
    crossing xs[4];
    int nx = 0;
    pthread_mutex_lock(&q->mu);
    int64_t now = now_of(q);
    const char *priced = model && model[0] ? model : t->model;
    int64_t tokens = !completed ? 0 : usage_unknown ? t->est_tokens : in + out;
    int64_t micros = -2;
    for (int i = 0; i < t->n; i++) {
        scope *s = t->c[i].s;
        if (t->c[i].seq) {
            for (size_t k = 0; k < s->tok_n; k++) {
                tok_entry *e = &s->toks[s->tok_head + k];
                if (e->seq == t->c[i].seq) {
                    s->tok_sum += tokens - e->n;
                    e->n = tokens;
                    break;
                }
            }
        }
        if (t->c[i].micros >= 0) {
            if (micros == -2)
                micros = !completed      ? 0
                         : usage_unknown ? t->c[i].micros
                                         : price_of(q, priced, in, out);
            if (micros < 0) /* no price for the model the vendor reported: the estimate */
                micros = t->c[i].micros;
            s->reserved -= t->c[i].micros;
            roll_month(s, now);
            s->spent += micros;
            int64_t tpm, budget;
            scope_caps(s->model[0] ? get_scope(q, s->tenant, s->id, "", s->owner) : s,
                       s->model[0] ? s->model : NULL, &tpm, &budget);
            nx += note_spend(s, budget, &xs[nx]);
        }
    }
    pthread_mutex_unlock(&q->mu);
    free(t);
    for (int i = 0; i < nx; i++)
        report_crossing(&xs[i]);
}

void fr__quota_run_init(fr_quota_run *qr, fr_quota *q, const fr_identity *who)
{
    memset(qr, 0, sizeof *qr);
    qr->q = q;
    fr__str_copy(qr->tenant, sizeof qr->tenant, who->tenant);
    fr__str_copy(qr->key, sizeof qr->key, who->id);
    qr->iface.reserve = quota_reserve;
    qr->iface.settle = quota_settle;
    qr->iface.ud = qr;
}

/* ---- visibility ------------------------------------------------------------------------ */

/* What one scope has used of its limits now; q->mu held. */
typedef struct usage_view {
    int64_t rpm, rpm_used, rpm_reset; /* reset: Unix us when a slot frees, 0: now */
    int64_t tpm, tpm_used, tpm_reset;
    int64_t conc, inflight;
    int64_t budget, spent, reserved, budget_reset;
} usage_view;

static void view_of(fr_quota *q, scope *s, int64_t now, usage_view *v)
{
    memset(v, 0, sizeof *v);
    v->rpm = v->tpm = v->conc = v->budget = FR_NO_LIMIT;
    v->inflight = s->inflight;
    const fr_limits_doc *d = limits_of(s);
    (void)q;
    if (!d)
        return;
    v->rpm = d->all.requests_per_minute;
    if (v->rpm != FR_NO_LIMIT && q->state) { /* as Redis said at this replica's last admission */
        int fresh = s->snap_oldest_us && s->snap_oldest_us + WINDOW_US > now;
        v->rpm_used = fresh ? s->snap_requests : 0;
        v->rpm_reset = fresh ? s->snap_oldest_us + WINDOW_US : 0;
    } else if (v->rpm != FR_NO_LIMIT && s->cap == (size_t)v->rpm) {
        int64_t oldest;
        v->rpm_used = (int64_t)ring_used(s, now, &oldest);
        v->rpm_reset = oldest ? oldest + WINDOW_US : 0;
    }
    v->tpm = d->all.tokens_per_minute;
    if (v->tpm != FR_NO_LIMIT && q->state) { /* as Redis said at this replica's last call */
        int64_t reset = (s->snap_tok_oldest_s + 61) * 1000000;
        int fresh = s->snap_tok_oldest_s && reset > now;
        v->tpm_used = fresh ? s->snap_tokens : 0;
        v->tpm_reset = fresh ? reset : 0;
    } else if (v->tpm != FR_NO_LIMIT) {
        tok_prune(s, now);
        v->tpm_used = s->tok_sum;
        v->tpm_reset = s->tok_n ? s->toks[s->tok_head].t + WINDOW_US : 0;
    }
    v->conc = d->all.concurrent_runs;
    v->budget = d->all.monthly_budget_micros;
    roll_month(s, now);
    v->spent = s->spent;
    v->reserved = s->reserved;
    v->budget_reset = month_start(s->month + 1) * 1000000;
}

static void add_header(struct MHD_Response *resp, const char *name, int64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)v);
    MHD_add_response_header(resp, name, b);
}

/* OpenAI's form of a reset time: how long until it, "12s". */
static void add_reset(struct MHD_Response *resp, const char *name, int64_t reset, int64_t now)
{
    char b[32];
    snprintf(b, sizeof b, "%llds", (long long)(reset > now ? ceil_s(reset - now) : 0));
    MHD_add_response_header(resp, name, b);
}

void fr__quota_headers(fr_quota *q, const fr_identity *who, struct MHD_Response *resp)
{
    if (!q || !resp || !who->tenant[0])
        return;
    pthread_mutex_lock(&q->mu);
    int64_t now = now_of(q);
    scope *sc[2] = {get_scope(q, 1, who->tenant, "", who->tenant),
                    get_scope(q, 0, who->id, "", who->tenant)};
    /* The tighter of tenant and key: the one with fewer remaining. */
    int64_t rl = -1, rrem = 0, rreset = 0, tl = -1, trem = 0, treset = 0;
    for (int i = 0; i < 2; i++) {
        if (!sc[i] || !limits_of(sc[i]))
            continue;
        usage_view v;
        view_of(q, sc[i], now, &v);
        if (v.rpm != FR_NO_LIMIT) {
            int64_t rem = v.rpm - v.rpm_used > 0 ? v.rpm - v.rpm_used : 0;
            if (rl < 0 || rem < rrem)
                rl = v.rpm, rrem = rem, rreset = v.rpm_reset;
        }
        if (v.tpm != FR_NO_LIMIT) {
            int64_t rem = v.tpm - v.tpm_used > 0 ? v.tpm - v.tpm_used : 0;
            if (tl < 0 || rem < trem)
                tl = v.tpm, trem = rem, treset = v.tpm_reset;
        }
    }
    pthread_mutex_unlock(&q->mu);
    if (rl >= 0) {
        add_header(resp, "x-ratelimit-limit-requests", rl);
        add_header(resp, "x-ratelimit-remaining-requests", rrem);
        add_reset(resp, "x-ratelimit-reset-requests", rreset, now);
    }
    if (tl >= 0) {
        add_header(resp, "x-ratelimit-limit-tokens", tl);
        add_header(resp, "x-ratelimit-remaining-tokens", trem);
        add_reset(resp, "x-ratelimit-reset-tokens", treset, now);
    }
}

static void put_limit(json_object *o, const char *name, int64_t limit, int64_t used,
                      int64_t reset_us)
{
    json_object *e = json_object_new_object();
    json_object_object_add(e, "limit", json_object_new_int64(limit));
    json_object_object_add(e, "used", json_object_new_int64(used));
    json_object_object_add(e, "remaining", json_object_new_int64(limit > used ? limit - used : 0));
    if (reset_us) {
        char at[21];
        fmt_time(reset_us, at);
        json_object_object_add(e, "reset", json_object_new_string(at));
    } else {
        json_object_object_add(e, "reset", NULL);
    }
    json_object_object_add(o, name, e);
}

static json_object *scope_json(fr_quota *q, scope *s, int64_t now, const fr_rl_usage *ru)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(s->id));
    const fr_limits_doc *d = limits_of(s);
    fr_limits_doc none;
    fr__limits_doc_init(&none);
    json_object_object_add(o, "limits", fr__limits_doc_to_json(d ? d : &none));
    json_object_object_add(o, "source",
                           json_object_new_string(s->has_remote   ? "controlplane"
                                                  : s->has_file   ? "keys_file"
                                                  : s->has_queued ? "queued_run"
                                                                  : "none"));
    usage_view v;
    view_of(q, s, now, &v);
    if (ru) { /* --state redis: what every replica counted */
        v.rpm_used = ru->requests;
        v.rpm_reset = ru->requests_oldest_ms ? ru->requests_oldest_ms * 1000 + WINDOW_US : 0;
        v.inflight = ru->runs;
        v.tpm_used = ru->tokens;
        v.tpm_reset = ru->tokens_oldest_ms ? ru->tokens_oldest_ms * 1000 + 61000000 : 0;
        v.spent = ru->spent;
        v.reserved = ru->reserved;
    }
    json_object *u = json_object_new_object();
    if (v.rpm != FR_NO_LIMIT)
        put_limit(u, "requests_per_minute", v.rpm, v.rpm_used, v.rpm_reset);
    if (v.tpm != FR_NO_LIMIT)
        put_limit(u, "tokens_per_minute", v.tpm, v.tpm_used, v.tpm_reset);
    if (v.conc != FR_NO_LIMIT)
        put_limit(u, "concurrent_runs", v.conc, v.inflight, 0);
    if (v.budget != FR_NO_LIMIT) {
        put_limit(u, "monthly_budget_micros", v.budget, v.spent, v.budget_reset);
        json_object *b = NULL;
        if (json_object_object_get_ex(u, "monthly_budget_micros", &b))
            json_object_object_add(b, "reserved", json_object_new_int64(v.reserved));
    }
    json_object_object_add(o, "usage", u);
    return o;
}

void fr__quota_handle_get(fr_quota *q, const fr_identity *who, fr_reply *out)
{
    out->route = "/v1/limits";
    json_object *o = json_object_new_object();
    if (q) {
        int64_t now = now_of(q);
        fr_rl_usage ru[2];
        int have = 0;
        if (q->state) { /* read before taking the lock: the network is slow */
            char ts[21], month[8], err[300];
            fr__rfc3339_format(now / 1000000, ts);
            snprintf(month, sizeof month, "%.7s", ts);
            fr_rl_scope rs[2] = {{"t", who->tenant, ""}, {"k", who->id, ""}};
            have = fr__limits_redis_usage(q->state, who->tenant, &rs[0], now / 1000, month, &ru[0],
                                          err, sizeof err) == 0 &&
                   fr__limits_redis_usage(q->state, who->tenant, &rs[1], now / 1000, month, &ru[1],
                                          err, sizeof err) == 0;
            if (!have) {
                json_object_put(o);
                fr__reply_error(out, FR_HE_STATE_UNAVAILABLE, "cannot read the limits' counts: %s",
                                err);
                out->retry_after = 1;
                return;
            }
        }
        pthread_mutex_lock(&q->mu);
        scope *t = get_scope(q, 1, who->tenant, "", who->tenant);
        scope *k = get_scope(q, 0, who->id, "", who->tenant);
        if (t)
            json_object_object_add(o, "tenant", scope_json(q, t, now, have ? &ru[0] : NULL));
        if (k)
            json_object_object_add(o, "key", scope_json(q, k, now, have ? &ru[1] : NULL));
        pthread_mutex_unlock(&q->mu);
    }
    fr__reply_json(out, 200, o);
}
