/* The durable queue in serve and `fluxroute worker` (core/serve/run_queue.h): submission,
 * and the consumer every replica and worker runs. */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "manifest/manifest_graph.h"
#include "base/clock.h"
#include "base/secure_random.h"
#include "base/sha256.h"
#include "observe/obs_impl.h"
#include "serve/run_queue.h"
#include "serve/serve_quota.h"
#include "state/run_records.h"

/* Entries taken at once, and how long a take waits for new ones (the pool's I/O timeout
 * is 2 s): an idle consumer costs one round trip per wait. */
#define TAKE_MAX      64
#define TAKE_BLOCK_MS 1500
/* How often the housekeeping thread looks at the runs held. */
#define HOUSEKEEPING_US 100000
/* A run still going after this long has its record say "running" (one more round trip):
 * quicker runs go from "queued" to their outcome, in 5 round trips of their consumer. */
#define RUNNING_AFTER_US 200000

/* ---- submission --------------------------------------------------------------------------- */

static void record_from(fr_run_record *rec, const char *id, const fr_identity *who,
                        const char *manifest, const char *input)
{
    memset(rec, 0, sizeof *rec);
    /* The run's input goes with every write of its record (borrowed: issue 28). */
    rec->input = (char *)input;
    rec->input_len = input ? strlen(input) : 0;
    snprintf(rec->id, sizeof rec->id, "%s", id);
    snprintf(rec->tenant, sizeof rec->tenant, "%s", who->tenant);
    snprintf(rec->namespace_, sizeof rec->namespace_, "%s", who->namespace_);
    snprintf(rec->manifest, sizeof rec->manifest, "%s", manifest ? manifest : "");
}

/* A report for a run that never ran (refused, a poison run, cancelled while queued):
 * `status`, with the class and message of why.  Caller frees. */
static char *ended_report(const char *id, const char *ns, const char *status, unsigned executions,
                          const char *cls, const char *message)
{
    json_object *o = json_object_new_object(), *e = json_object_new_object();
    json_object_object_add(o, "run_id", json_object_new_string(id));
    json_object_object_add(o, "status", json_object_new_string(status));
    json_object_object_add(o, "namespace", json_object_new_string(ns));
    json_object_object_add(o, "steps", json_object_new_array());
    json_object_object_add(e, "class", json_object_new_string(cls));
    json_object_object_add(e, "message", json_object_new_string(message));
    json_object_object_add(o, "error", e);
    json_object_object_add(o, "executions", json_object_new_int64(executions));
    char *text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return text;
}

static void state_unavailable(fr_reply *out, const char *err)
{
    fr__reply_error(out, FR_HE_STATE_UNAVAILABLE,
                    "the run was not accepted: it cannot be stored in the shared state (%s); "
                    "retry shortly",
                    err);
    out->retry_after = 1;
}

void fr__queue_submit(const fr_runs_config *cfg, const fr_identity *who, const char *manifest,
                      const fr_manifest *m, const char *input, uint64_t seed, int has_seed,
                      int trace, fr_reply *out)
{
    char id[40], err[512];
    if (fr__secure_uuid(id, sizeof id) != 0) {
        fr__reply_error(out, FR_HE_INTERNAL, "cannot draw a run id: getrandom: %s",
                        strerror(errno));
        return;
    }
    /* The record first: a consumer may take the entry the moment it is stored, and its
     * record (with a fencing token) must not be overwritten by this older one. */
    fr_run_record rec;
    record_from(&rec, id, who, manifest, input);
    rec.status = FR_RECORD_QUEUED;
    rec.submitted_at_us = fr__wall_us();
    /* The manifest's graph, written once here: the consumer's writes keep it. */
    rec.graph = fr__manifest_graph_text(m);
    rec.graph_len = rec.graph ? strlen(rec.graph) : 0;
    fr_status put_st = fr__run_record_put(cfg->state, &rec, cfg->retention_us, err, sizeof err);
    free(rec.graph);
    rec.graph = NULL;
    rec.graph_len = 0;
    if (put_st != FR_OK) {
        fr__serve_state_error("record_put");
        state_unavailable(out, err);
        return;
    }
    fr_queue_entry e = {.seed = seed, .has_seed = has_seed, .trace = trace};
    snprintf(e.run_id, sizeof e.run_id, "%s", id);
    snprintf(e.tenant, sizeof e.tenant, "%s", who->tenant);
    snprintf(e.namespace_, sizeof e.namespace_, "%s", who->namespace_);
    snprintf(e.actor, sizeof e.actor, "%s", who->id);
    snprintf(e.role, sizeof e.role, "%s", fr__role_name(who->role));
    snprintf(e.traceparent, sizeof e.traceparent, "%s", who->traceparent);
    e.submitted_at_us = rec.submitted_at_us;
    e.input = (char *)input;
    /* The limits in force here go with the run, so any consumer enforces them (one more
     * field of the same XADD). */
    e.limits_tenant = fr__quota_limits_text(cfg->quota, 1, who->tenant);
    e.limits_key = fr__quota_limits_text(cfg->quota, 0, who->id);
    if (manifest) {
        snprintf(e.manifest, sizeof e.manifest, "%s", manifest);
        fr__sha256_hex(m->text, m->text_len, e.sha256);
    } else {
        e.yaml = (char *)m->text; /* NUL-terminated, as parsed */
    }
    fr_status pushed = fr__run_queue_push(cfg->queue, &e, err, sizeof err);
    free(e.limits_tenant);
    free(e.limits_key);
    if (pushed != FR_OK) {
        if (pushed != FR_E_OVERLOADED)
            fr__serve_state_error("queue_add");
        /* Best effort: the record says it was never accepted (Redis may be down). */
        char msg[600], e2[256];
        snprintf(msg, sizeof msg, "not accepted: the queue could not store it (%s)", err);
        rec.status = FR_RECORD_FAILED;
        rec.finished_at_us = fr__wall_us();
        rec.report = ended_report(id, who->namespace_, "failed", 0, "internal", msg);
        fr__run_record_put(cfg->state, &rec, cfg->retention_us, e2, sizeof e2);
        free(rec.report);
        if (pushed == FR_E_OVERLOADED) {
            fr__reply_error(out, FR_HE_TOO_MANY_RUNS, "the run was not accepted: %s; retry shortly",
                            err);
            out->retry_after = 1;
        } else {
            state_unavailable(out, err);
        }
        return;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "run_id", json_object_new_string(id));
    json_object_object_add(o, "status", json_object_new_string("queued"));
    fr__reply_json(out, 202, o);
    snprintf(out->location, sizeof out->location, "/v1/runs/%s", id);
}

/* ---- the consumer ------------------------------------------------------------------------- */

typedef struct execution execution;

typedef struct slot {
    fr_queue_consumer *c;
    fr_queue_entry e;
    int busy;           /* under c->mu */
    pthread_mutex_t mu; /* x and since: the reader shows a long run as running */
    execution *x;       /* while the run executes, before its outcome is written */
    int64_t since;      /* when it started (monotonic) */
} slot;

struct fr_queue_consumer {
    fr_queue_consumer_config cfg;
    char name[128]; /* the consumer in the group: the state's node id */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a slot was freed */
    slot *slots;
    size_t busy;
    atomic_int stop;
    int block_ms; /* XREADGROUP's BLOCK */
    pthread_t reader, housekeeping;
    fr_metric_series *depth, *claimed, *executions;
};

/* What one execution writes: its record, under its fencing token. */
struct execution {
    fr_queue_consumer *c;
    slot *s;
    fr_run_record rec;
    int fenced; /* a newer execution holds the run: this one neither writes nor acks */
    int failed; /* the record could not be stored: not acknowledged (runs again) */
    int shown;  /* its record says running */
};

static void log_line(const fr_queue_consumer *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void log_line(const fr_queue_consumer *c, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "fluxroute %s: queue: %s\n", c->cfg.who, line);
}

/* Writes x->rec; notes a newer holder or a failure.  0 when stored. */
static int put(execution *x)
{
    char err[512];
    fr_status st =
        fr__run_record_put(x->c->cfg.state, &x->rec, x->c->cfg.retention_us, err, sizeof err);
    if (st == FR_E_LEASE_LOST) {
        x->fenced = 1;
        log_line(x->c, "%s: not acknowledged, usage not reported", err);
    } else if (st != FR_OK) {
        fr__serve_state_error("record_put");
        x->failed = 1;
        log_line(x->c, "run %s: its record cannot be stored (%s): left in the queue", x->rec.id,
                 err);
    }
    return st == FR_OK ? 0 : -1;
}

/* The run's outcome is about to be written: the reader may no longer write "running"
 * (and waits for none it is writing). */
static void detach(execution *x)
{
    pthread_mutex_lock(&x->s->mu);
    x->s->x = NULL;
    pthread_mutex_unlock(&x->s->mu);
}

/* Writes "running" for the runs going for RUNNING_AFTER_US (the reader thread). */
static void show_running(fr_queue_consumer *c)
{
    int64_t now = fr__mono_us();
    for (size_t i = 0; i < c->cfg.concurrency; i++) {
        slot *s = &c->slots[i];
        pthread_mutex_lock(&s->mu);
        execution *x = s->x;
        if (x && !x->shown && now - s->since >= RUNNING_AFTER_US) {
            char err[512];
            x->shown = 1;
            fr_run_record rec = x->rec;
            rec.status = FR_RECORD_RUNNING;
            fr_status st =
                fr__run_record_put(c->cfg.state, &rec, c->cfg.retention_us, err, sizeof err);
            if (st == FR_E_LEASE_LOST)
                x->fenced = 1;
            else if (st != FR_OK)
                log_line(c, "run %s: cannot mark it running (%s)", rec.id, err);
        }
        pthread_mutex_unlock(&s->mu);
    }
}

static int on_finish(void *ud, fr_run_status status, const char *report, const char *trace,
                     int trace_refused)
{
    execution *x = ud;
    detach(x);
    x->rec.status = status == FR_RUN_SUCCEEDED   ? FR_RECORD_SUCCEEDED
                    : status == FR_RUN_CANCELLED ? FR_RECORD_CANCELLED
                                                 : FR_RECORD_FAILED;
    x->rec.finished_at_us = fr__wall_us();
    x->rec.report = (char *)report;
    x->rec.report_len = report ? strlen(report) : 0;
    x->rec.trace = (char *)trace;
    x->rec.trace_len = trace ? strlen(trace) : 0;
    x->rec.trace_refused = trace_refused;
    int rc = put(x);
    x->rec.report = NULL;
    x->rec.trace = NULL;
    return rc;
}

/* The run's journal refused an append: a newer execution holds the run (lease_lost). */
static void on_fenced(void *ud)
{
    execution *x = ud;
    detach(x);
    x->fenced = 1;
    log_line(x->c,
             "run %s: stopped (lease_lost): another execution took it over; its record, "
             "acknowledgement and usage are left to that one",
             x->rec.id);
}

/* Ends a run that did not run: failed with class `cls` (or cancelled). */
static void end_run(execution *x, fr_record_status status, const char *cls, const char *message)
{
    x->rec.status = status;
    x->rec.finished_at_us = fr__wall_us();
    x->rec.report = ended_report(x->rec.id, x->rec.namespace_, fr__record_status_name(status),
                                 x->rec.executions, cls, message);
    x->rec.report_len = x->rec.report ? strlen(x->rec.report) : 0;
    put(x);
    free(x->rec.report);
    x->rec.report = NULL;
}

/* The message of an error reply body. */
static void reply_message(const fr_reply *out, char *msg, size_t size)
{
    json_object *o = out->body ? json_tokener_parse(out->body) : NULL, *e, *m;
    if (o && json_object_object_get_ex(o, "error", &e) &&
        json_object_object_get_ex(e, "message", &m))
        snprintf(msg, size, "%s", json_object_get_string(m));
    else
        snprintf(msg, size, "refused (HTTP %d)", out->status);
    json_object_put(o);
}

static void execute_entry(fr_queue_consumer *c, slot *s)
{
    fr_queue_entry *e = &s->e;
    char err[512];
    uint64_t token = 0;
    int cancelled = 0;
    if (fr__run_queue_start(c->cfg.queue, e, c->name, &token, &cancelled, err, sizeof err) !=
        FR_OK) {
        fr__serve_state_error("queue_start");
        /* Left pending: claimed again after the visibility timeout. */
        log_line(c, "run %s: cannot take its lease (%s): left in the queue", e->run_id, err);
        return;
    }
    fr__metric_add(c->executions, 1);
    execution x = {.c = c, .s = s};
    fr_identity who = {0};
    snprintf(who.id, sizeof who.id, "%s", e->actor);
    snprintf(who.tenant, sizeof who.tenant, "%s", e->tenant);
    snprintf(who.namespace_, sizeof who.namespace_, "%s", e->namespace_);
    snprintf(who.traceparent, sizeof who.traceparent, "%s", e->traceparent);
    if (fr__role_parse(e->role, &who.role) != 0)
        who.role = FR_ROLE_VIEWER; /* an unknown role may run nothing */
    record_from(&x.rec, e->run_id, &who, e->yaml ? NULL : e->manifest, e->input);
    x.rec.submitted_at_us = e->submitted_at_us;
    x.rec.started_at_us = fr__wall_us();
    x.rec.fence = token;
    x.rec.executions = (unsigned)token;
    snprintf(x.rec.node, sizeof x.rec.node, "%s", c->cfg.state->node);
    if (cancelled) {
        /* DELETE /v1/runs/{id} while it waited: it never starts. */
        end_run(&x, FR_RECORD_CANCELLED, "cancelled", "cancelled while queued: not run");
    } else if (token > FR_QUEUE_MAX_EXECUTIONS) {
        char msg[300];
        snprintf(msg, sizeof msg,
                 "the run was started %u times and never finished: each execution crashed or "
                 "lost its consumer (a poison run); it is not run again",
                 FR_QUEUE_MAX_EXECUTIONS);
        log_line(c, "run %s: %s", e->run_id, msg);
        x.rec.executions = FR_QUEUE_MAX_EXECUTIONS; /* this delivery starts nothing */
        end_run(&x, FR_RECORD_FAILED, "crashed", msg);
    } else {
        /* The record stays "queued" until the run has gone on for RUNNING_AFTER_US
         * (show_running) or ends: a quick run costs no round trip for it. */
        x.rec.status = FR_RECORD_RUNNING;
        pthread_mutex_lock(&s->mu);
        s->x = &x;
        s->since = fr__mono_us();
        pthread_mutex_unlock(&s->mu);
        {
            /* The submitter's limits, where this process has none of its own. */
            fr__quota_set_queued_text(c->cfg.quota, 1, who.tenant, NULL, e->limits_tenant);
            fr__quota_set_queued_text(c->cfg.quota, 0, who.id, who.tenant, e->limits_key);
            fr_queued_run q = {.who = &who,
                               .run_id = e->run_id,
                               .manifest = e->yaml ? NULL : e->manifest,
                               .yaml = e->yaml,
                               .sha256 = e->sha256,
                               .input = e->input,
                               .seed = e->seed,
                               .has_seed = e->has_seed,
                               .trace = e->trace,
                               .executions = (unsigned)token,
                               .finish = on_finish,
                               .fenced = on_fenced,
                               .ud = &x};
            fr_reply out = {0};
            int rc;
            /* Not admitted now (the server's --max-runs, the tenant's share or limits):
             * wait for room; the entry stays ours (kept from claims by the heartbeat). */
            while ((rc = fr__runs_execute_queued(c->cfg.runs, &q, &out)) == 1 &&
                   !atomic_load(&c->stop)) {
                struct timespec ts = {0, 200 * 1000 * 1000};
                nanosleep(&ts, NULL);
            }
            detach(&x);
            if (rc == 1) {
                /* Stopping before it could start: another consumer takes it at once. */
                const fr_queue_entry *one = e;
                if (fr__run_queue_hand_back(c->cfg.queue, c->name, &one, 1, err, sizeof err) !=
                    FR_OK)
                    log_line(c, "run %s: cannot hand it back (%s)", e->run_id, err);
                return;
            }
            if (rc < 0) {
                char msg[600];
                reply_message(&out, msg, sizeof msg);
                end_run(&x, FR_RECORD_FAILED, "config", msg);
            }
            free(out.body);
        }
    }
    if (!x.fenced && !x.failed && fr__run_queue_done(c->cfg.queue, e, err, sizeof err) != FR_OK) {
        fr__serve_state_error("queue_ack");
        log_line(c,
                 "run %s: finished, but not acknowledged (%s): it may run again (its record "
                 "and usage are fenced)",
                 e->run_id, err);
    }
}

static void *exec_main(void *arg)
{
    pthread_setname_np(pthread_self(), "fr-queued-run");
    slot *s = arg;
    fr_queue_consumer *c = s->c;
    execute_entry(c, s);
    pthread_mutex_lock(&c->mu);
    fr__queue_entry_clear(&s->e);
    s->busy = 0;
    c->busy--;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* Waits (c->mu held) at most `ms` for a slot to be freed. */
static void wait_freed(fr_queue_consumer *c, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += ms * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000)
        ts.tv_sec++, ts.tv_nsec -= 1000000000;
    pthread_cond_timedwait(&c->cv, &c->mu, &ts);
}

/* Entries of the busy slots (c->mu held): their count; ptrs[i] are valid while held. */
static size_t held_entries(fr_queue_consumer *c, const fr_queue_entry **ptrs)
{
    size_t n = 0;
    for (size_t i = 0; i < c->cfg.concurrency; i++)
        if (c->slots[i].busy)
            ptrs[n++] = &c->slots[i].e;
    return n;
}

/* The consumer's housekeeping, apart from the reader (which waits in XREADGROUP): every
 * HOUSEKEEPING_US, "running" for runs going for RUNNING_AFTER_US; every third of the
 * visibility timeout, the heartbeat of the runs held. */
static void *housekeeping_main(void *arg)
{
    pthread_setname_np(pthread_self(), "fr-queue-hk");
    fr_queue_consumer *c = arg;
    const fr_queue_entry **held = calloc(c->cfg.concurrency, sizeof *held);
    int64_t vis = fr__run_queue_visibility(c->cfg.queue);
    int64_t next_touch = fr__mono_us() + vis / 3;
    char err[512];
    pthread_mutex_lock(&c->mu);
    while (held && !atomic_load(&c->stop)) {
        wait_freed(c, HOUSEKEEPING_US / 1000);
        pthread_mutex_unlock(&c->mu);
        show_running(c);
        int64_t now = fr__mono_us();
        pthread_mutex_lock(&c->mu);
        if (now >= next_touch) {
            /* Runs held longer than a third of the timeout: nobody may claim them. */
            size_t n = held_entries(c, held);
            if (n &&
                fr__run_queue_touch(c->cfg.queue, c->name, held, n, err, sizeof err) != FR_OK) {
                fr__serve_state_error("queue_touch");
                log_line(c, "cannot keep %zu held run(s) from being claimed: %s", n, err);
            }
            next_touch = now + vis / 3;
        }
    }
    pthread_mutex_unlock(&c->mu);
    free(held);
    return NULL;
}

static void *reader_main(void *arg)
{
    pthread_setname_np(pthread_self(), "fr-queue");
    fr_queue_consumer *c = arg;
    fr_queue_entry *got = calloc(TAKE_MAX, sizeof *got);
    int down = 0;
    char err[512];
    while (got && !atomic_load(&c->stop)) {
        pthread_mutex_lock(&c->mu);
        size_t room = c->cfg.concurrency - c->busy;
        if (room == 0) {
            wait_freed(c, 200);
            pthread_mutex_unlock(&c->mu);
            continue;
        }
        pthread_mutex_unlock(&c->mu);
        size_t n = 0, claimed = 0;
        long long depth = -1;
        if (fr__run_queue_take(c->cfg.queue, c->name, room < TAKE_MAX ? room : TAKE_MAX,
                               c->block_ms, got, &n, &claimed, &depth, err, sizeof err) != FR_OK) {
            if (!down)
                log_line(c, "cannot take runs: %s; retrying", err);
            fr__serve_state_error("queue_take");
            down = 1;
            struct timespec ts = {0, 200 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        if (down)
            log_line(c, "taking runs again");
        down = 0;
        if (depth >= 0)
            fr__metric_set(c->depth, depth);
        fr__metric_add(c->claimed, claimed);
        for (size_t i = 0; i < n; i++) {
            pthread_mutex_lock(&c->mu);
            slot *s = NULL;
            for (size_t k = 0; !s && k < c->cfg.concurrency; k++)
                if (!c->slots[k].busy)
                    s = &c->slots[k];
            s->busy = 1;
            s->e = got[i];
            c->busy++;
            pthread_mutex_unlock(&c->mu);
            pthread_t t;
            pthread_attr_t attr;
            pthread_attr_init(&attr);
            pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
            if (pthread_create(&t, &attr, exec_main, s) != 0)
                exec_main(s);
            pthread_attr_destroy(&attr);
        }
    }
    free(got);
    return NULL;
}

fr_queue_consumer *fr__queue_consumer_start(const fr_queue_consumer_config *cfg)
{
    fr_queue_consumer *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cfg = *cfg;
    if (c->cfg.concurrency < 1)
        c->cfg.concurrency = 1;
    c->slots = calloc(c->cfg.concurrency, sizeof *c->slots);
    if (!c->slots) {
        free(c);
        return NULL;
    }
    for (size_t i = 0; i < c->cfg.concurrency; i++) {
        c->slots[i].c = c;
        pthread_mutex_init(&c->slots[i].mu, NULL);
    }
    snprintf(c->name, sizeof c->name, "%s", cfg->state->node);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->depth = fr__metric_series(FR_M_QUEUE_DEPTH, NULL);
    c->claimed = fr__metric_series(FR_M_QUEUE_CLAIMED, NULL);
    c->executions = fr__metric_series(FR_M_RUN_EXECUTIONS, NULL);
    c->block_ms = TAKE_BLOCK_MS;
    int started = pthread_create(&c->housekeeping, NULL, housekeeping_main, c) == 0;
    if (started && pthread_create(&c->reader, NULL, reader_main, c) != 0) {
        atomic_store(&c->stop, 1);
        pthread_join(c->housekeeping, NULL);
        started = 0;
    }
    if (!started) {
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
        free(c->slots);
        free(c);
        return NULL;
    }
    return c;
}

size_t fr__queue_consumer_stop(fr_queue_consumer *c, int64_t grace_us)
{
    if (!c)
        return 0;
    atomic_store(&c->stop, 1);
    pthread_join(c->reader, NULL);
    pthread_join(c->housekeeping, NULL);
    int64_t until = fr__mono_us() + grace_us;
    pthread_mutex_lock(&c->mu);
    while (c->busy > 0 && fr__mono_us() < until) {
        wait_freed(c, 50);
    }
    size_t n = c->busy;
    if (n > 0) {
        /* Still running after the grace: the process leaves without them, and the queue
         * gives them to another consumer at once. */
        const fr_queue_entry **held = calloc(c->cfg.concurrency, sizeof *held);
        char err[512];
        if (held) {
            n = held_entries(c, held);
            if (fr__run_queue_hand_back(c->cfg.queue, c->name, held, n, err, sizeof err) == FR_OK)
                log_line(c, "handed %zu run(s) still executing back to the queue", n);
            else
                log_line(c,
                         "cannot hand %zu run(s) back (%s): claimed after the visibility "
                         "timeout",
                         n, err);
        }
        free(held);
        pthread_mutex_unlock(&c->mu);
        return n; /* their threads still use c: the process is leaving */
    }
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < c->cfg.concurrency; i++)
        pthread_mutex_destroy(&c->slots[i].mu);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c->slots);
    free(c);
    return 0;
}

void fr__queue_warn_durability(fr_state *s, const char *who)
{
    char msg[512];
    int rc = fr__redis_pool_durability(s->redis, msg, sizeof msg);
    if (rc > 0) /* the message says what is set, what to set and what it risks */
        fprintf(stderr, "fluxroute %s: warning: %s\n", who, msg);
    else if (rc < 0)
        fprintf(stderr,
                "fluxroute %s: warning: cannot tell whether Redis keeps what it acknowledges "
                "(%s); the queue is durable only with appendonly yes and appendfsync always\n",
                who, msg);
}

fr_run_queue *fr__queue_open(fr_state *s, const fr_queue_options *o, const char *who)
{
    if (!s || s->kind != FR_STATE_REDIS)
        return NULL;
    fr__queue_warn_durability(s, who);
    fr_run_queue *q = fr__run_queue_new(s, o->visibility_us);
    if (q)
        fr__run_queue_set_max(q, o->max_queued);
    return q;
}

void fr__queue_log_round_trips(fr_state *s, const char *who)
{
    if (s && s->kind == FR_STATE_REDIS)
        fprintf(stderr, "fluxroute %s: %llu Redis round trips (%llu transport failures)\n", who,
                (unsigned long long)fr__redis_pool_round_trips(s->redis),
                (unsigned long long)fr__redis_pool_failures(s->redis));
}

size_t fr__queue_default_concurrency(size_t max_runs)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t n = max_runs / (size_t)(cores > 0 ? cores : 1);
    return n ? n : 1;
}
