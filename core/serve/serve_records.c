/* serve's run records with --state redis (core/serve/serve_records.h). */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "observe/obs_impl.h"
#include "serve/serve_records.h"
#include "state/run_records.h"

/* The watcher's period: a cancel asked on another replica reaches its run within it (plus
 * a round trip); and how long a run reported in flight counts if its replica stops
 * reporting it (a replica that died). */
#define WATCH_PERIOD_US (200 * 1000LL)
#define ACTIVE_LEASE_US (2 * 1000000LL)
/* Idle, the watcher pings this often (readiness, the reachable gauge). */
#define PING_PERIOD_US (1000 * 1000LL)
/* Tenants whose cluster-wide in-flight count the watcher keeps: those admitted here in the
 * last SHARE_KEEP_US, at most MAX_SHARES of them (the oldest is forgotten first). */
#define SHARE_KEEP_US (10 * 1000000LL)
#define MAX_SHARES    256
/* Running runs polled per tick (more are polled on later ticks, in turn). */
#define MAX_POLLED 2048

/* How long the other replicas' count of a tenant's runs is believed without a refresh. */
#define REMOTE_STALE_US 1000000

typedef struct share {
    char tenant[72];
    int64_t seen_mono;   /* last admitted here (0: free slot) */
    size_t remote;       /* runs in flight on other replicas, at the last tick */
    int64_t remote_mono; /* when `remote` was read */
} share;

struct fr_records {
    fr_records_hooks hooks;
    fr_state *state;
    int64_t ttl_us;
    size_t max_per_tenant;
    pthread_t watcher;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    share shares[MAX_SHARES];
    atomic_int_fast64_t last_op_mono;
};

/* ---- the state's health, the gauge and the errors (shared by serve's state users) ---- */

static _Atomic(fr_state *) health_state;

static void note_state(fr_state *s)
{
    static fr_metric_series *reachable, *trips;
    fr__metric_set(fr__obs_cached(&reachable, FR_M_STATE_REACHABLE, NULL),
                   fr__redis_pool_reachable(s->redis));
    fr__metric_set(fr__obs_cached(&trips, FR_M_STATE_ROUND_TRIPS, NULL),
                   (int64_t)fr__redis_pool_round_trips(s->redis));
}

void fr__serve_state_error(const char *op)
{
    const char *labels[] = {op};
    fr__metric_count(FR_M_STATE_ERRORS, labels, 1);
    fr_state *s = atomic_load(&health_state);
    if (s)
        note_state(s);
}

const char *fr__serve_state_health(void)
{
    fr_state *s = atomic_load(&health_state);
    if (!s)
        return "memory";
    return fr__redis_pool_reachable(s->redis) ? "ok" : "unreachable";
}

/* After every operation: the gauge and the round trips; an error is counted under `op`
 * and logged when the state was reachable before (not once per request while down). */
static void after_op(fr_records *rc, fr_status st, const char *op, const char *err)
{
    static atomic_int logged_down;
    atomic_store(&rc->last_op_mono, fr__mono_us());
    if (st == FR_E_NETWORK || st == FR_E_NOMEM || st == FR_E_INVALID) {
        if (!atomic_exchange(&logged_down, 1))
            fprintf(stderr, "fluxroute serve: --state: %s: %s\n", op, err);
        fr__serve_state_error(op);
        return;
    }
    if (atomic_exchange(&logged_down, 0))
        fprintf(stderr, "fluxroute serve: --state: %s reachable again\n",
                fr__state_describe(rc->state));
    note_state(rc->state);
}

/* ---- writing ------------------------------------------------------------------------ */

static void record_from(fr_records *rc, const fr_run_entry *e, fr_run_record *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", e->id);
    snprintf(r->tenant, sizeof r->tenant, "%s", e->tenant);
    snprintf(r->namespace_, sizeof r->namespace_, "%s", e->namespace_);
    snprintf(r->manifest, sizeof r->manifest, "%s", e->manifest);
    snprintf(r->node, sizeof r->node, "%s", rc->state->node);
    r->submitted_at_us = e->started_at_us;
    r->started_at_us = e->started_at_us;
    r->executions = 1;
    r->input = e->input; /* borrowed for the write */
    r->input_len = e->input ? strlen(e->input) : 0;
    r->graph = e->graph;
    r->graph_len = e->graph ? strlen(e->graph) : 0;
}

static void put(fr_records *rc, const fr_run_record *r)
{
    char err[512];
    fr_status st = fr__run_record_put(rc->state, r, rc->ttl_us, err, sizeof err);
    if (st == FR_E_LEASE_LOST)
        fprintf(stderr, "fluxroute serve: %s\n", err);
    after_op(rc, st == FR_E_LEASE_LOST ? FR_OK : st, "record_put", err);
}

void fr__records_started(fr_records *rc, const fr_run_entry *e)
{
    if (!rc)
        return;
    fr_run_record r;
    record_from(rc, e, &r);
    r.status = FR_RECORD_RUNNING;
    put(rc, &r);
}

void fr__records_finished(fr_records *rc, const fr_run_entry *e, fr_run_status status,
                          const char *report, const char *trace, int trace_refused, uint64_t fence,
                          unsigned executions)
{
    if (!rc)
        return;
    fr_run_record r;
    record_from(rc, e, &r);
    r.status = status == FR_RUN_SUCCEEDED   ? FR_RECORD_SUCCEEDED
               : status == FR_RUN_CANCELLED ? FR_RECORD_CANCELLED
                                            : FR_RECORD_FAILED;
    r.finished_at_us = fr__wall_us();
    r.fence = fence;
    r.executions = executions ? executions : 1;
    r.report = (char *)report;
    r.report_len = report ? strlen(report) : 0;
    r.trace = (char *)trace;
    r.trace_len = trace ? strlen(trace) : 0;
    r.trace_refused = trace_refused;
    put(rc, &r);
}

/* ---- reading ------------------------------------------------------------------------ */

static void reply_unreachable(fr_reply *out, const char *id, const char *err)
{
    fr__reply_error(out, FR_HE_STATE_UNAVAILABLE,
                    "run %s is not held by this replica, and the shared state cannot be "
                    "reached to look for it (%s); retry shortly",
                    id, err);
    out->retry_after = 1;
}

/* Reads run `id` of who's tenant; fills `out` with the error when there is none. */
static int read_record(fr_records *rc, const fr_identity *who, const char *id, int with_trace,
                       const char *op, fr_run_record *r, fr_reply *out)
{
    char err[512];
    fr_status st = fr__run_record_get(rc->state, who->tenant, id, with_trace, r, err, sizeof err);
    after_op(rc, st, op, err);
    if (st == FR_OK)
        return 0;
    if (st == FR_E_NOT_FOUND)
        fr__reply_error(out, FR_HE_RUN_NOT_FOUND, "no run %s", id);
    else
        reply_unreachable(out, id, err);
    return -1;
}

static int finished(fr_record_status s)
{
    return s >= FR_RECORD_SUCCEEDED;
}

/* The same answers as for a run this replica holds (serve_runs.c). */
static void trace_missing(fr_reply *out, const fr_run_record *r, const char *id)
{
    fr__reply_error(out, finished(r->status) ? FR_HE_TRACE_NOT_RECORDED : FR_HE_RUN_IN_PROGRESS,
                    !finished(r->status) ? "run %s is still running"
                    : r->trace_refused   ? "the trace of run %s was not kept: it passed "
                                           "this server's max_run_bytes (--max-run-bytes)"
                                         : "run %s was not traced: start it with "
                                           "\"trace\": true",
                    id);
}

void fr__records_get(fr_records *rc, const fr_identity *who, const char *id, int trace,
                     fr_reply *out)
{
    fr_run_record r;
    if (read_record(rc, who, id, trace, "record_get", &r, out) != 0)
        return;
    if (trace) {
        if (!finished(r.status) || !r.trace) {
            trace_missing(out, &r, id);
        } else {
            out->body = r.trace; /* taken */
            out->body_len = r.trace_len;
            out->status = 200;
            r.trace = NULL;
        }
        fr__run_record_clear(&r);
        return;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "run_id", json_object_new_string(r.id));
    json_object_object_add(o, "status", json_object_new_string(fr__record_status_name(r.status)));
    json_object_object_add(o, "report",
                           finished(r.status) && r.report ? json_tokener_parse(r.report) : NULL);
    json_object_object_add(o, "traced", json_object_new_boolean(r.traced));
    fr__run_json_add_console(o, r.manifest, r.input, r.graph); /* issue 28 */
    fr__run_record_clear(&r);
    fr__reply_json(out, 200, o);
}

char *fr__records_trace(fr_records *rc, const fr_identity *who, const char *id, fr_reply *out)
{
    fr_run_record r;
    if (read_record(rc, who, id, 1, "record_get", &r, out) != 0)
        return NULL;
    char *text = r.trace;
    r.trace = NULL;
    if (!text)
        trace_missing(out, &r, id);
    fr__run_record_clear(&r);
    return text;
}

void fr__records_cancel(fr_records *rc, const fr_identity *who, const char *id, fr_reply *out)
{
    char err[512];
    fr_record_status status = FR_RECORD_RUNNING;
    fr_status st = fr__run_record_cancel(rc->state, who->tenant, id, &status, err, sizeof err);
    after_op(rc, st == FR_E_INVALID ? FR_OK : st, "record_cancel", err);
    if (st == FR_E_NOT_FOUND) {
        fr__reply_error(out, FR_HE_RUN_NOT_FOUND, "no run %s", id);
    } else if (st == FR_E_INVALID) {
        fr__reply_error(out, FR_HE_RUN_FINISHED, "run %s has already finished", id);
    } else if (st != FR_OK) {
        reply_unreachable(out, id, err);
    } else {
        /* Its executor, on whichever replica or worker, sees the mark within its watcher's
         * period (WATCH_PERIOD_US). */
        json_object *o = json_object_new_object();
        json_object_object_add(o, "run_id", json_object_new_string(id));
        json_object_object_add(o, "status", json_object_new_string("cancelling"));
        fr__reply_json(out, 202, o);
    }
}

json_object *fr__serve_rfc3339_or_null(int64_t wall_us)
{
    if (wall_us <= 0)
        return NULL;
    char t[40];
    time_t secs = (time_t)(wall_us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(t + n, sizeof t - n, ".%06lldZ", (long long)(wall_us % 1000000));
    return json_object_new_string(t);
}

int fr__records_list(fr_records *rc, const fr_identity *who, const fr_runs_query *q,
                     long long limit, long long cursor, fr_reply *out)
{
    fr_record_row *rows = calloc((size_t)limit, sizeof *rows);
    if (!rows) {
        fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
        return 0;
    }
    size_t n = 0;
    int64_t next = 0;
    char err[512];
    fr_status st = fr__run_records_list(rc->state, who->tenant, q->status, q->manifest, cursor,
                                        (size_t)limit, rows, &n, &next, err, sizeof err);
    after_op(rc, st, "record_list", err);
    if (st != FR_OK) {
        free(rows);
        return -1;
    }
    json_object *o = json_object_new_object(), *list = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        const fr_record_row *row = &rows[i];
        int done = strcmp(row->status, "queued") != 0 && strcmp(row->status, "running") != 0;
        json_object *it = json_object_new_object();
        json_object_object_add(it, "run_id", json_object_new_string(row->id));
        json_object_object_add(it, "status", json_object_new_string(row->status));
        json_object_object_add(it, "manifest",
                               row->manifest[0] ? json_object_new_string(row->manifest) : NULL);
        json_object_object_add(it, "started_at", fr__serve_rfc3339_or_null(row->started_at_us));
        json_object_object_add(it, "finished_at",
                               done ? fr__serve_rfc3339_or_null(row->finished_at_us) : NULL);
        json_object_array_add(list, it);
    }
    json_object_object_add(o, "runs", list);
    char c[24];
    snprintf(c, sizeof c, "%" PRId64, next);
    json_object_object_add(o, "next_cursor", next > 0 ? json_object_new_string(c) : NULL);
    free(rows);
    fr__reply_json(out, 200, o);
    return 0;
}

/* ---- the cluster-wide share --------------------------------------------------------- */

int fr__records_admit(fr_records *rc, const fr_identity *who, size_t local, fr_reply *out)
{
    if (!rc)
        return 0;
    int64_t now = fr__mono_us();
    pthread_mutex_lock(&rc->mu);
    share *found = NULL, *oldest = &rc->shares[0];
    for (size_t i = 0; i < MAX_SHARES && !found; i++) {
        share *sh = &rc->shares[i];
        if (sh->seen_mono && strcmp(sh->tenant, who->tenant) == 0)
            found = sh;
        else if (sh->seen_mono < oldest->seen_mono)
            oldest = sh;
    }
    if (!found) {
        /* The first run of a tenant here in SHARE_KEEP_US: admitted on this replica's own
         * count, and the watcher reads the cluster's at once (not on this request: a run
         * costs one round trip, its record's). */
        found = oldest;
        snprintf(found->tenant, sizeof found->tenant, "%s", who->tenant);
        found->remote = 0;
        pthread_cond_signal(&rc->cv);
    }
    found->seen_mono = now;
    /* A count the watcher could not refresh for a second (Redis unreachable) says nothing
     * any more: the replica's own count decides, so runs go on without Redis. */
    size_t remote = now - found->remote_mono <= REMOTE_STALE_US ? found->remote : 0;
    pthread_mutex_unlock(&rc->mu);
    if (local + remote <= rc->max_per_tenant)
        return 0;
    fr__reply_error(out, FR_HE_TOO_MANY_RUNS,
                    "tenant \"%s\" has %zu runs in flight across the replicas sharing --state "
                    "(%zu here), its cap (--max-runs-per-tenant); retry shortly",
                    who->tenant, local - 1 + remote, local - 1);
    out->retry_after = 1;
    return -1;
}

/* ---- the watcher -------------------------------------------------------------------- */

typedef struct snapshot {
    fr_record_running *runs;
    char (*ids)[40];
    char (*tenants)[72];
    size_t n, cap, skipped;
    /* The runs reported at the previous round trip, and those of them that are gone
     * (finished) since: fr__run_records_watch takes them out of the active sets again. */
    char (*prev_ids)[40];
    char (*prev_tenants)[72];
    size_t prev_n;
    fr_record_running *gone;
    const char **sorted; /* this tick's ids, sorted, to look the previous ones up */
    fr_record_share *shares;
    char (*share_tenants)[72]; /* copies: admission may reuse a slot meanwhile */
    size_t *share_slot;
} snapshot;

static void snap_one(void *ud, fr_run_entry *e)
{
    snapshot *s = ud;
    if (s->n == s->cap) {
        s->skipped++;
        return;
    }
    memcpy(s->ids[s->n], e->id, sizeof s->ids[0]);
    memcpy(s->tenants[s->n], e->tenant, sizeof s->tenants[0]);
    s->runs[s->n].id = s->ids[s->n];
    s->runs[s->n].tenant = s->tenants[s->n];
    s->runs[s->n].cancel = 0;
    s->n++;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Fills snap->gone with the runs of the previous round trip that this snapshot lacks, and
 * makes this snapshot the previous one.  A partial snapshot (more runs than MAX_POLLED)
 * says nothing of the runs it skipped: none is taken for gone then. */
static size_t runs_gone(snapshot *snap)
{
    size_t n_gone = 0;
    if (snap->skipped == 0) {
        for (size_t i = 0; i < snap->n; i++)
            snap->sorted[i] = snap->ids[i];
        qsort(snap->sorted, snap->n, sizeof *snap->sorted, cmp_id);
        for (size_t i = 0; i < snap->prev_n; i++) {
            const char *id = snap->prev_ids[i];
            if (bsearch(&id, snap->sorted, snap->n, sizeof *snap->sorted, cmp_id))
                continue;
            snap->gone[n_gone++] = (fr_record_running){.id = id, .tenant = snap->prev_tenants[i]};
        }
    }
    return n_gone;
}

static void remember_runs(snapshot *snap)
{
    memcpy(snap->prev_ids, snap->ids, snap->n * sizeof *snap->ids);
    memcpy(snap->prev_tenants, snap->tenants, snap->n * sizeof *snap->tenants);
    snap->prev_n = snap->n;
}

static void tick(fr_records *rc, snapshot *snap)
{
    fr_record_share *shares = snap->shares;
    snap->n = snap->skipped = 0;
    rc->hooks.each_running(rc->hooks.ud, snap_one, snap);
    int64_t now = fr__mono_us();
    size_t n_shares = 0;
    pthread_mutex_lock(&rc->mu);
    for (size_t i = 0; i < MAX_SHARES; i++) {
        share *sh = &rc->shares[i];
        if (sh->seen_mono && now - sh->seen_mono > SHARE_KEEP_US)
            sh->seen_mono = 0;
        if (sh->seen_mono) {
            memcpy(snap->share_tenants[n_shares], sh->tenant, sizeof sh->tenant);
            snap->share_slot[n_shares] = i;
            shares[n_shares] = (fr_record_share){.tenant = snap->share_tenants[n_shares]};
            n_shares++;
        }
    }
    pthread_mutex_unlock(&rc->mu);
    size_t n_gone = runs_gone(snap);
    if (snap->n == 0 && n_gone == 0 && n_shares == 0 &&
        now - atomic_load(&rc->last_op_mono) < PING_PERIOD_US)
        return;
    char err[512];
    fr_status st = fr__run_records_watch(rc->state, snap->gone, n_gone, snap->runs, snap->n, shares,
                                         n_shares, ACTIVE_LEASE_US, err, sizeof err);
    /* Reported or not, these are the runs whose report may have landed. */
    remember_runs(snap);
    after_op(rc, st, "watch", err);
    if (st != FR_OK)
        return;
    for (size_t i = 0; i < snap->n; i++)
        if (snap->runs[i].cancel)
            rc->hooks.cancel(rc->hooks.ud, snap->runs[i].id);
    pthread_mutex_lock(&rc->mu);
    for (size_t k = 0; k < n_shares; k++) {
        size_t mine = 0;
        for (size_t i = 0; i < snap->n; i++)
            mine += strcmp(snap->tenants[i], shares[k].tenant) == 0;
        /* The slot is still this tenant's unless admission reused it meanwhile (then the
         * count is dropped). */
        share *sh = &rc->shares[snap->share_slot[k]];
        if (strcmp(sh->tenant, shares[k].tenant) == 0) {
            sh->remote = shares[k].in_flight > mine ? shares[k].in_flight - mine : 0;
            sh->remote_mono = fr__mono_us();
        }
    }
    pthread_mutex_unlock(&rc->mu);
}

static void *watch_main(void *arg)
{
    pthread_setname_np(pthread_self(), "fr-records");
    fr_records *rc = arg;
    snapshot snap = {.cap = MAX_POLLED};
    snap.runs = calloc(MAX_POLLED, sizeof *snap.runs);
    snap.ids = calloc(MAX_POLLED, sizeof *snap.ids);
    snap.tenants = calloc(MAX_POLLED, sizeof *snap.tenants);
    snap.shares = calloc(MAX_SHARES, sizeof *snap.shares);
    snap.share_tenants = calloc(MAX_SHARES, sizeof *snap.share_tenants);
    snap.share_slot = calloc(MAX_SHARES, sizeof *snap.share_slot);
    snap.prev_ids = calloc(MAX_POLLED, sizeof *snap.prev_ids);
    snap.prev_tenants = calloc(MAX_POLLED, sizeof *snap.prev_tenants);
    snap.gone = calloc(MAX_POLLED, sizeof *snap.gone);
    snap.sorted = calloc(MAX_POLLED, sizeof *snap.sorted);
    if (!snap.runs || !snap.ids || !snap.tenants || !snap.shares || !snap.share_tenants ||
        !snap.share_slot || !snap.prev_ids || !snap.prev_tenants || !snap.gone || !snap.sorted) {
        fprintf(stderr, "fluxroute serve: --state: out of memory: cancels asked on other "
                        "replicas do not reach this one\n");
        goto out;
    }
    pthread_mutex_lock(&rc->mu);
    while (!rc->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += WATCH_PERIOD_US * 1000;
        ts.tv_sec += ts.tv_nsec / 1000000000;
        ts.tv_nsec %= 1000000000;
        pthread_cond_timedwait(&rc->cv, &rc->mu, &ts);
        if (rc->stop)
            break;
        pthread_mutex_unlock(&rc->mu);
        tick(rc, &snap);
        pthread_mutex_lock(&rc->mu);
    }
    pthread_mutex_unlock(&rc->mu);
out:
    free(snap.runs);
    free(snap.ids);
    free(snap.tenants);
    free(snap.shares);
    free(snap.share_tenants);
    free(snap.share_slot);
    free(snap.prev_ids);
    free(snap.prev_tenants);
    free(snap.gone);
    free(snap.sorted);
    return NULL;
}

fr_records *fr__records_start(const fr_records_hooks *hooks, const fr_runs_config *cfg)
{
    if (!cfg->state || cfg->state->kind != FR_STATE_REDIS)
        return NULL;
    fr_records *rc = calloc(1, sizeof *rc);
    if (!rc) {
        fprintf(stderr, "fluxroute serve: --state: out of memory: runs are kept on this replica "
                        "only\n");
        return NULL;
    }
    rc->hooks = *hooks;
    rc->state = cfg->state;
    rc->ttl_us = cfg->retention_us;
    rc->max_per_tenant = cfg->max_per_tenant;
    fr__run_records_set_budget(cfg->retention_per_tenant, cfg->retention_bytes);
    pthread_mutex_init(&rc->mu, NULL);
    pthread_cond_init(&rc->cv, NULL);
    if (pthread_create(&rc->watcher, NULL, watch_main, rc) != 0) {
        fprintf(stderr, "fluxroute serve: --state: cannot start the records watcher: runs are "
                        "kept on this replica only\n");
        pthread_cond_destroy(&rc->cv);
        pthread_mutex_destroy(&rc->mu);
        free(rc);
        return NULL;
    }
    atomic_store(&health_state, cfg->state);
    note_state(cfg->state);
    return rc;
}

void fr__records_stop(fr_records *rc)
{
    if (!rc)
        return;
    pthread_mutex_lock(&rc->mu);
    rc->stop = 1;
    pthread_cond_signal(&rc->cv);
    pthread_mutex_unlock(&rc->mu);
    pthread_join(rc->watcher, NULL);
    atomic_store(&health_state, NULL);
    pthread_cond_destroy(&rc->cv);
    pthread_mutex_destroy(&rc->mu);
    free(rc);
}

void fr__run_json_add_console(json_object *o, const char *manifest, const char *input,
                              const char *graph)
{
    json_object_object_add(o, "manifest",
                           manifest && *manifest ? json_object_new_string(manifest) : NULL);
    json_object_object_add(o, "input", input ? json_tokener_parse(input) : NULL);
    json_object_object_add(o, "graph", graph ? json_tokener_parse(graph) : NULL);
}
