/* serve: runs and the run endpoints.  The run registry (fr_runs: admission, the run store
 * and its retention, draining), runs (synchronous on the request thread or their own,
 * asynchronous, streamed as Server-Sent Events), POST /v1/run and /v1/validate, GET and
 * DELETE of a run and its trace, listing, and the durable queue's runs.  Pipelines come
 * from serve_pipelines.c; replays are serve_replay.c's, the OpenAI gateway's runs
 * serve_gateway_run.c's (internal header: serve_runs_impl.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/secure_random.h"
#include "base/str.h"
#include "manifest/manifest_graph.h"
#include "serve/serve_runs_impl.h"
#include "serve/serve_usage.h"
#include "trace/trace.h"

/* ---- for the records' watcher (serve_records.c) ------------------------------------------ */

static void each_running(void *ud, void (*fn)(void *fn_ud, fr_run_entry *e), void *fn_ud)
{
    fr_runs *r = ud;
    pthread_mutex_lock(&r->mu);
    fr__run_store_each_running(r->runs, fn, fn_ud);
    pthread_mutex_unlock(&r->mu);
}

static void cancel_here(void *ud, const char *id)
{
    fr_runs *r = ud;
    pthread_mutex_lock(&r->mu);
    run_entry *e = fr__run_store_find(r->runs, id);
    if (e && !e->done && e->p)
        fr__pipeline_cancel(e->p);
    pthread_mutex_unlock(&r->mu);
}

fr_runs *fr__runs_new(const fr_runs_config *cfg)
{
    fr_runs *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->cfg = *cfg;
    fr_run_limits lim = {.max_running = cfg->max_concurrent,
                         .max_running_per_tenant = cfg->max_per_tenant,
                         .retention_us = cfg->retention_us,
                         .retention_count = cfg->retention_count,
                         .retention_per_tenant = cfg->retention_per_tenant,
                         .retention_bytes = cfg->retention_bytes};
    r->runs = fr__run_store_new(&lim);
    if (!r->runs) {
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->idle_cv, NULL);
    fr_records_hooks hooks = {.each_running = each_running, .cancel = cancel_here, .ud = r};
    r->records = fr__records_start(&hooks, cfg);
    /* Without a writer thread, the records are written before the answers. */
    r->writer = fr__writer_new(FR_SERVE_WRITER_BOUND);
    return r;
}

void fr__runs_free(fr_runs *r)
{
    if (!r)
        return;
    fr__writer_free(r->writer); /* the records still waiting are written first */
    fr__records_stop(r->records);
    fr__runs_pools_free(r);
    fr__run_store_free(r->runs);
    pthread_cond_destroy(&r->idle_cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

size_t fr__runs_drain(fr_runs *r, int64_t max_wait_us)
{
    int64_t until = fr__mono_us() + max_wait_us;
    pthread_mutex_lock(&r->mu);
    while (fr__run_store_in_flight(r->runs) > 0 && fr__mono_us() < until) {
        pthread_mutex_unlock(&r->mu);
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&r->mu);
    }
    size_t left = fr__run_store_in_flight(r->runs);
    pthread_mutex_unlock(&r->mu);
    /* Answered runs whose records still wait for the writer are not in flight: written
     * here, so that even a server that leaves without the runs left keeps them. */
    fr__writer_flush(r->writer);
    return left;
}

int fr__runs_admit(fr_runs *r, const fr_identity *who, fr_reply *out)
{
    pthread_mutex_lock(&r->mu);
    fr_admit_result a = fr__run_store_admit(r->runs, who->tenant);
    size_t local = fr__run_store_tenant_in_flight(r->runs, who->tenant);
    pthread_mutex_unlock(&r->mu);
    if (a == FR_ADMIT_OK && fr__records_admit(r->records, who, local, out) != 0) {
        /* the tenant's share is taken on other replicas */
        pthread_mutex_lock(&r->mu);
        fr__run_store_leave(r->runs, who->tenant);
        pthread_cond_broadcast(&r->idle_cv);
        pthread_mutex_unlock(&r->mu);
        return -1;
    }
    /* -- issue 26: the tenant's and key's limits (core/serve/serve_quota.c) -- */
    if (a == FR_ADMIT_OK && fr__quota_admit(r->cfg.quota, who, out) != 0) {
        pthread_mutex_lock(&r->mu);
        fr__run_store_leave(r->runs, who->tenant);
        pthread_cond_broadcast(&r->idle_cv);
        pthread_mutex_unlock(&r->mu);
        return -1;
    }
    /* -- end issue 26 -- */
    if (a == FR_ADMIT_OK)
        return 0;
    if (a == FR_ADMIT_NO_MEMORY) {
        fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
        return -1;
    }
    /* Both caps answer 429 too_many_runs; the message says which one was reached. */
    if (a == FR_ADMIT_TENANT_FULL)
        fr__reply_error(out, FR_HE_TOO_MANY_RUNS,
                        "tenant \"%s\" has %zu runs in flight, its cap (--max-runs-per-tenant); "
                        "retry shortly",
                        who->tenant, r->cfg.max_per_tenant);
    else
        fr__reply_error(out, FR_HE_TOO_MANY_RUNS,
                        "%zu runs in flight on this server, its cap (--max-runs); retry shortly",
                        r->cfg.max_concurrent);
    out->retry_after = 1;
    return -1;
}

void fr__runs_leave(fr_runs *r, const fr_identity *who)
{
    fr__quota_leave(r->cfg.quota, who); /* issue 26 */
    pthread_mutex_lock(&r->mu);
    fr__run_store_leave(r->runs, who->tenant);
    pthread_cond_broadcast(&r->idle_cv);
    pthread_mutex_unlock(&r->mu);
}

/* ---- the run registry ------------------------------------------------------------------- */

/* ---- Server-Sent Events (serve_sse.c): a run's steps and tokens ---- */

static void sse_progress(void *ud, const fr_pipeline *p, int step, const fr_step_result *r)
{
    fr_sse *s = ud;
    if (r->state == FR_STEP_PENDING)
        return;
    const fr_step_cfg *st = &fr__pipeline_manifest(p)->steps[step];
    json_object *o = json_object_new_object();
    json_object_object_add(o, "step", json_object_new_string(st->id));
    if (r->state == FR_STEP_RUNNING) {
        /* Issue 28: the console shows a step running before it ends. */
        json_object_object_add(o, "agent", json_object_new_string(st->agent));
        fr__sse_event(s, "step_started", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return;
    }
    json_object_object_add(o, "status", json_object_new_string(fr__step_state_name(r->state)));
    json_object_object_add(o, "attempts", json_object_new_int64((int64_t)r->n_attempts));
    if (r->state != FR_STEP_SUCCEEDED) {
        json_object_object_add(o, "class",
                               json_object_new_string(fr_class_name(fr_status_class(r->status))));
        json_object_object_add(o, "message",
                               r->message ? json_object_new_string(r->message) : NULL);
    }
    fr__sse_event(s, "step", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
}

static void sse_token(void *ud, const char *step, const char *text, size_t len)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "step", json_object_new_string(step));
    json_object_object_add(o, "text", json_object_new_string_len(text, (int)len));
    fr__sse_event(ud, "token", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
}

/* Runs fn(arg) on a detached thread of its own, or here when no thread can start. */
void fr__runs_spawn_or_run(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int started = pthread_create(&t, &attr, fn, arg) == 0;
    pthread_attr_destroy(&attr);
    if (!started)
        fn(arg);
}

/* ---- running ---------------------------------------------------------------------------- */

static void quick_detach(void *ud);
static void quick_done(void *ud, int status);

/* Runs the job (or, for a quick run that leaves its request thread, starts it: then
 * *j->detached is set and quick_done finishes it). */
fr_status fr__runs_execute_run(run_job *j)
{
    fr_run_options ro = {.input_json = j->input,
                         .seed = j->seed,
                         .has_seed = j->has_seed,
                         .record = j->record,
                         .run_id = j->entry->id,
                         .traceparent = j->who.traceparent[0] ? j->who.traceparent : NULL,
                         /* A synchronous request's steps run on the pipeline's driver
                          * while the request thread waits, at most QUICK_HOLD_US: a
                          * hung plugin holds the driver, never the request thread.
                          * Plugins that cannot block run on the request thread itself
                          * (no hand-off).  An async or streamed run's own thread hands
                          * steps to workers. */
                         .run_inline = j->on_caller                   ? FR_RUN_ON_CALLER
                                       : !j->sync                     ? FR_RUN_ON_WORKERS
                                       : fr__policy_runs_inline(j->p) ? FR_RUN_ON_CALLER
                                                                      : FR_RUN_ON_DRIVER,
                         /* What the run's outputs may hold while it runs: its stored
                          * report and trace are bounded by the same limit afterwards. */
                         .max_output_bytes = (size_t)j->r->cfg.limits.value[FR_LIMIT_MAX_RUN_BYTES],
                         .max_effects = FR_SERVE_MAX_RUN_EFFECTS,
                         /* A queued run started again after its consumer died. */
                         .executions = j->queued ? j->queued->executions : 0};
    if (ro.run_inline == FR_RUN_ON_DRIVER && j->defer) {
        ro.detach_after_us = j->hold_us ? j->hold_us : QUICK_HOLD_US;
        ro.on_detach = quick_detach;
        ro.on_done = quick_done;
        ro.detach_ud = j;
    }
    if (j->sse) {
        ro.progress = sse_progress;
        ro.progress_ud = j->sse;
        ro.on_token = sse_token;
        ro.token_ud = j->sse;
    }
    if (j->gw.on_token) { /* the OpenAI gateway's stream */
        ro.on_token = j->gw.on_token;
        ro.token_ud = j->gw.ud;
    }
    if (j->r->cfg.quota) { /* issue 26 */
        fr__quota_run_init(&j->quota, j->r->cfg.quota, &j->who);
        ro.quota = &j->quota.iface;
    }
    fr__run_journal_apply(&j->journal, &ro); /* a queued run's journal, or its resume */
    j->ro = ro;
    j->t0 = fr__mono_us();
    return fr__pipeline_run(j->p, &j->ro, &j->res);
}

/* The time a run spent in plugins: its attempts' durations. */
int64_t fr__runs_plugin_time(const fr_run_result *res)
{
    int64_t us = 0;
    for (size_t i = 0; i < res->n_steps; i++)
        for (size_t k = 0; k < res->steps[i].n_attempts; k++)
            us += res->steps[i].attempts[k].duration_us;
    return us;
}

/* Completes a run that returned `st`: stores report (and trace) in its entry, and a copy
 * of the report in *report_out when given.  Returns the plugin time. */
int64_t fr__runs_execute_end(run_job *j, fr_status st, fr_run_status *status, char **report_out)
{
    fr__run_journal_end(&j->journal, st == FR_OK ? &j->res : NULL);
    fr_run_result res = j->res;
    int64_t took = (j->ended ? j->ended : fr__mono_us()) - j->t0;
    char *report = NULL, *trace = NULL;
    int64_t plugin_us = 0;
    *status = FR_RUN_FAILED;
    if (st == FR_OK) {
        report = fr__report_json(j->p, &res, 0);
        if (j->record)
            trace = fr__trace_json(j->p, &res);
        plugin_us = fr__runs_plugin_time(&res);
        *status = res.status;
        const fr_manifest *m = fr__pipeline_manifest(j->p);
        fr__runs_audit(&j->who, FR_ACTION_RUN, m->path, m, res.run_id, "allowed",
                       fr__run_status_name(res.status), NULL);
    } else {
        json_object *o = fr__http_error_body(FR_HE_BAD_INPUT, "input is not a JSON value", NULL);
        report = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    }
    int trace_refused = 0;
    if (report &&
        fr__serve_limits_fit_run(&j->r->cfg.limits, j->entry->id, fr__run_status_name(*status),
                                 &report, &trace, &trace_refused) != 0)
        free(trace), trace = NULL;
    /* A queued run stores its outcome itself, under its fencing token
     * (core/serve/run_queue.c): only the execution holding the run's newest token reports
     * usage (whose keys derive from the run id: a run is never billed twice). */
    int may_bill = 1;
    if (j->queued && j->journal.fenced) /* its journal says another execution holds it */
        j->queued->fenced(j->queued->ud), may_bill = 0;
    else if (j->queued)
        may_bill = j->queued->finish(j->queued->ud, *status, report, trace, trace_refused) == 0;
    else
        fr__records_finished(j->r->records, j->entry, *status, report, trace, trace_refused, 0,
                             j->ro.executions);
    if (st == FR_OK) {
        if (may_bill)
            fr__usage_report_run(j->r->cfg.cp, j->who.tenant, j->who.id, j->p, &res);
        fr__run_result_free(&res);
    }
    /* The entry takes the report (and may drop it at once); the caller and the stream get a
     * copy, after the run has left: whoever has the report finds its slot free and the
     * run finished. */
    char *copy = report && (report_out || j->sse) ? strdup(report) : NULL;
    fr_runs *r = j->r;
    pthread_mutex_lock(&r->mu);
    run_entry *e = j->entry;
    e->report = report;
    e->trace = trace;
    e->trace_refused = trace_refused;
    e->status = *status;
    e->writing = 0;
    e->finished_at_us = fr__wall_us();
    fr__run_store_finish(r->runs, e, fr__mono_us());
    if (!j->left) {
        fr__run_store_leave(r->runs, j->who.tenant);
        fr__quota_leave(r->cfg.quota, &j->who); /* issue 26 */
    }
    if (j->pool && st == FR_OK)
        j->pool->run_us = j->pool->run_us < 0 ? took : (j->pool->run_us * 7 + took) / 8;
    pthread_cond_broadcast(&r->idle_cv);
    pthread_mutex_unlock(&r->mu);
    fr__runs_release(r, j->pool, j->p);
    if (j->sse) {
        fr__sse_event(j->sse, "report", copy ? copy : "{}");
        fr__sse_close(j->sse);
        j->sse = NULL;
    }
    if (report_out)
        *report_out = copy;
    else
        free(copy);
    return plugin_us;
}

static int64_t execute(run_job *j, fr_run_status *status, char **report_out)
{
    return fr__runs_execute_end(j, fr__runs_execute_run(j), status, report_out);
}

void fr__runs_job_free(run_job *j)
{
    fr__run_journal_free(&j->journal);
    if (j->sse)
        fr__sse_close(j->sse);
    free(j->input);
    free(j);
}

static void *async_main(void *arg)
{
    pthread_setname_np(pthread_self(), "fr-async-run");
    run_job *j = arg;
    fr_run_status st;
    execute(j, &st, NULL);
    fr__runs_job_free(j);
    return NULL;
}

/* Answers a synchronous run that returned `rs` through j->defer (then frees j). */
static void deferred_reply(run_job *j, fr_status rs)
{
    fr_run_status st;
    fr_reply reply = {.route = "/v1/run"};
    reply.plugin_us = fr__runs_execute_end(j, rs, &st, &reply.body);
    reply.status = reply.body ? 200 : 500;
    reply.body_len = reply.body ? strlen(reply.body) : 0;
    fr_deferred *d = j->defer;
    fr__runs_job_free(j);
    d->complete(d, &reply);
}

/* A synchronous run on its own thread: the reply goes back through j->defer. */
static void *deferred_main(void *arg)
{
    pthread_setname_np(pthread_self(), "fr-run");
    run_job *j = arg;
    deferred_reply(j, fr__runs_execute_run(j));
    return NULL;
}

/* A quick run leaves its request thread (on that thread, before the run can complete). */
static void quick_detach(void *ud)
{
    run_job *j = ud;
    *j->detached = 1;
    if (!j->suspended)
        j->defer->suspend(j->defer);
}

static void *quick_reply_main(void *arg)
{
    run_job *j = arg;
    deferred_reply(j, j->status);
    return NULL;
}

/* ... and is answered from a thread of its own: the one that completed the run may be
 * the pipeline's driver, which must not free its own pipeline (release may). */
static void quick_done(void *ud, int status)
{
    run_job *j = ud;
    if (j->deliver) { /* a gateway run: it gives its pipeline back on the record writer */
        j->deliver(j, status, 1);
        return;
    }
    j->status = status;
    fr__runs_spawn_or_run(quick_reply_main, j);
}

/* Has this manifest's pipeline been quick enough to run on the request thread? */
int fr__runs_quickly(fr_runs *r, const manifest_pool *pool)
{
    if (!pool)
        return 0; /* inline YAML: built per request, never measured */
    pthread_mutex_lock(&r->mu);
    int quick = pool->run_us >= 0 && pool->run_us < SLOW_RUN_US;
    pthread_mutex_unlock(&r->mu);
    return quick;
}

/* A running entry of run `id` in the run store (for GET and cancel), or NULL on OOM. */
run_entry *fr__runs_entry_add(fr_runs *r, const char *id, const fr_identity *who,
                              const char *manifest, fr_pipeline *p, const char *input)
{
    /* The run's input is kept with its record (issue 28): the request's, else the
     * manifest's own. */
    const fr_manifest *m = fr__pipeline_manifest(p);
    const char *in = input ? input : m->input_json ? m->input_json : "{}";
    /* The graph is the pipeline's manifest's, the same for all its runs: made once per
     * pipeline.  The run holds p alone, so filling the memo is not a race (as audit's
     * digest). */
    const char *graph = fr__manifest_graph_memo((fr_manifest *)m);
    run_entry *e = calloc(1, sizeof *e);
    if (!e || !graph || !(e->input = strdup(in)) || !(e->graph = strdup(graph))) {
        if (e)
            free(e->input);
        free(e);
        return NULL;
    }
    fr__str_copy(e->id, sizeof e->id, id);
    fr__str_copy(e->tenant, sizeof e->tenant, who->tenant);
    fr__str_copy(e->namespace_, sizeof e->namespace_, who->namespace_);
    fr__str_copy(e->manifest, sizeof e->manifest, manifest ? manifest : "");
    e->started_at_us = fr__wall_us();
    e->p = p;
    pthread_mutex_lock(&r->mu);
    int added = fr__run_store_add(r->runs, e) == 0;
    pthread_mutex_unlock(&r->mu);
    if (!added) {
        free(e->input);
        free(e->graph);
        free(e);
        return NULL;
    }
    return e;
}

/* Request bodies are as strict as manifests: an unknown field (a typo such as "inputs")
 * is a 400 naming it, never silently ignored.  `allowed` ends with NULL.  Returns 0, or
 * -1 with the reply filled. */
int fr__runs_only_fields(json_object *body, const char *const *allowed, fr_reply *out)
{
    json_object_object_foreach(body, k, v)
    {
        (void)v;
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], k) != 0)
            i++;
        if (allowed[i])
            continue;
        char list[200] = "";
        for (size_t n = 0, j = 0; allowed[j]; j++)
            n += (size_t)snprintf(list + n, n < sizeof list ? sizeof list - n : 0, "%s%s",
                                  j ? ", " : "", allowed[j]);
        fr__reply_error(out, FR_HE_UNKNOWN_FIELD,
                        "unknown field \"%.64s\" in the request body (this route takes %s)", k,
                        list);
        return -1;
    }
    return 0;
}

void fr__runs_handle_run(fr_runs *r, const fr_identity *who, json_object *body, int sse,
                         fr_deferred *defer, fr_reply *out)
{
    static const char *const fields[] = {"manifest", "manifest_path", "manifest_yaml", "input",
                                         "trace",    "async",         "seed",          NULL};
    manifest_ref ref;
    if (fr__runs_only_fields(body, fields, out) != 0 ||
        fr__runs_manifest_ref_from(body, &ref, out) != 0)
        return;
    json_object *v;
    int record = json_object_object_get_ex(body, "trace", &v) && json_object_get_boolean(v);
    int async = json_object_object_get_ex(body, "async", &v) && json_object_get_boolean(v);
    run_job *j = calloc(1, sizeof *j);
    if (!j) {
        fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
        return;
    }
    j->r = r;
    j->who = *who;
    j->record = record;
    if (json_object_object_get_ex(body, "seed", &v)) {
        j->seed = json_object_get_uint64(v);
        j->has_seed = 1;
    }
    if (json_object_object_get_ex(body, "input", &v))
        j->input = strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));

    /* --state redis: an async run is checked here and executed by whichever consumer takes
     * it from the durable queue (core/serve/run_queue.c), which admits it then; the queue's
     * own cap (--max-queued) bounds what waits. */
    int queued = async && !sse && r->cfg.queue && r->cfg.enqueue;
    /* Admission first: a full server, or a tenant at its share, answers 429 before any
     * work is done. */
    if (!queued && fr__runs_admit(r, who, out) != 0) {
        fr__runs_job_free(j);
        return;
    }
    j->p = fr__runs_acquire(r, who, FR_ACTION_RUN, &ref, &j->pool, out);
    if (!j->p ||
        fr__runs_authorize(who, fr__pipeline_manifest(j->p), ref.name, FR_ACTION_RUN, out) != 0 ||
        fr__policy_check_quarantine(j->p, out) != 0) {
        fr__runs_release(r, j->pool, j->p);
        if (!queued)
            fr__runs_leave(r, who);
        fr__runs_job_free(j);
        return;
    }
    if (queued) {
        r->cfg.enqueue(&r->cfg, who, ref.name, fr__pipeline_manifest(j->p), j->input, j->seed,
                       j->has_seed, record, out);
        fr__runs_release(r, j->pool, j->p);
        fr__runs_job_free(j);
        return;
    }
    /* The id is the only key to a run's report and trace: unguessable, from getrandom. */
    char id[40];
    run_entry *e = NULL;
    if (fr__secure_uuid(id, sizeof id) != 0) {
        fr__reply_error(out, FR_HE_INTERNAL, "cannot draw a run id: getrandom: %s",
                        strerror(errno));
    } else {
        e = fr__runs_entry_add(r, id, who, ref.name, j->p, j->input);
    }
    if (!e) {
        if (!out->status)
            fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
        fr__runs_release(r, j->pool, j->p);
        fr__runs_leave(r, who);
        fr__runs_job_free(j);
        return;
    }
    j->entry = e;

    if (sse) {
        /* Without a connection to suspend (outside libmicrohttpd), or on OOM, the run is
         * answered as an asynchronous one: 202 and its id. */
        j->sse = fr__sse_open(defer ? defer->conn : NULL, &out->stream);
        sse = j->sse != NULL;
        async = 1;
        if (sse) {
            /* First: the run's id, so that a client can cancel it mid-stream. */
            char ev[80];
            snprintf(ev, sizeof ev, "{\"run_id\":\"%s\"}", id);
            fr__sse_event(j->sse, "run", ev);
        }
    }
    if (async) {
        fr__records_started(r->records, e); /* listed, and cancellable, on every replica */
        fr__runs_spawn_or_run(async_main, j);
        if (!sse) {
            /* Not e->id: the run may be over, and its entry evicted, by now. */
            json_object *o = json_object_new_object();
            json_object_object_add(o, "run_id", json_object_new_string(id));
            json_object_object_add(o, "status", json_object_new_string("running"));
            fr__reply_json(out, 202, o);
            snprintf(out->location, sizeof out->location, "/v1/runs/%s", id);
        } else {
            out->status = 200;
            out->content_type = "text/event-stream";
        }
        return;
    }
    if (defer && !fr__runs_quickly(r, j->pool)) {
        /* A run that waits (on providers, mostly) must not hold a request thread. */
        j->defer = defer;
        defer->suspend(defer);
        out->deferred = 1;
        fr__runs_spawn_or_run(deferred_main, j);
        return;
    }
    fr_run_status st;
    int detached = 0;
    j->sync = 1;
    j->defer = defer;
    j->detached = &detached;
    fr_status rs = fr__runs_execute_run(j);
    if (detached) {
        out->deferred = 1; /* quick_done answers */
        return;
    }
    /* The report is the body (200 also when the run failed: see "status"). */
    out->plugin_us = fr__runs_execute_end(j, rs, &st, &out->body);
    out->status = out->body ? 200 : 500;
    out->body_len = out->body ? strlen(out->body) : 0;
    fr__runs_job_free(j);
}

void fr__runs_handle_validate(fr_runs *r, const fr_identity *who, json_object *body, fr_reply *out)
{
    static const char *const fields[] = {"manifest", "manifest_path", "manifest_yaml", NULL};
    manifest_ref ref;
    if (fr__runs_only_fields(body, fields, out) != 0 ||
        fr__runs_manifest_ref_from(body, &ref, out) != 0)
        return;
    manifest_pool *pool;
    fr_reply tmp = {0};
    fr_pipeline *p = fr__runs_acquire(r, who, FR_ACTION_VALIDATE, &ref, &pool, &tmp);
    /* A limit refuses the request (it says nothing of the manifest's validity). */
    if (!p && (tmp.status != 400 || tmp.limit)) {
        *out = tmp;
        return;
    }
    if (p &&
        fr__runs_authorize(who, fr__pipeline_manifest(p), ref.name, FR_ACTION_VALIDATE, out) != 0) {
        free(tmp.body);
        fr__runs_release(r, pool, p);
        return;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "valid", json_object_new_boolean(p != NULL));
    json_object *errors = json_object_new_array();
    if (!p && tmp.body) {
        json_object *parsed = json_tokener_parse(tmp.body), *e, *list;
        if (parsed && json_object_object_get_ex(parsed, "error", &e) &&
            json_object_object_get_ex(e, "errors", &list))
            for (size_t i = 0; i < json_object_array_length(list); i++)
                json_object_array_add(errors, json_object_get(json_object_array_get_idx(list, i)));
        else if (parsed && json_object_object_get_ex(parsed, "error", &e))
            json_object_array_add(errors, json_object_get(e));
        json_object_put(parsed);
    }
    json_object_object_add(o, "errors", errors);
    free(tmp.body);
    fr__runs_audit(who, FR_ACTION_VALIDATE, ref.name ? ref.name : "manifest_yaml",
                   p ? fr__pipeline_manifest(p) : NULL, NULL, "allowed", p ? "valid" : "invalid",
                   NULL);
    fr__runs_release(r, pool, p);
    fr__reply_json(out, 200, o);
}

/* Run `id`'s entry (r->mu held), or NULL; a run answered but whose record is still being
 * written (gateway_deliver) is waited for, at most RECORD_WAIT_US. */
static run_entry *find_recorded(fr_runs *r, const char *id)
{
    run_entry *e = fr__run_store_find(r->runs, id);
    if (e && e->writing && !e->done)
        fr__writer_kick(r->writer); /* it may be lingering with the record queued */
    for (int64_t until = fr__mono_us() + RECORD_WAIT_US;
         e && e->writing && !e->done && fr__mono_us() < until;
         e = fr__run_store_find(r->runs, id)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000 * 1000; /* idle_cv's clock; re-checked every 10 ms */
        if (ts.tv_nsec >= 1000000000)
            ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&r->idle_cv, &r->mu, &ts);
    }
    return e;
}

void fr__runs_handle_get(fr_runs *r, const fr_identity *who, const char *run_id, int trace,
                         fr_reply *out)
{
    pthread_mutex_lock(&r->mu);
    fr__run_store_evict(r->runs, fr__mono_us());
    run_entry *e = find_recorded(r, run_id);
    /* Another tenant's run does not exist, as far as this caller can tell. */
    if (!e || strcmp(e->tenant, who->tenant) != 0) {
        pthread_mutex_unlock(&r->mu);
        if (r->records) /* another replica's, maybe */
            fr__records_get(r->records, who, run_id, trace, out);
        else
            fr__reply_error(out, FR_HE_RUN_NOT_FOUND, "no run %s", run_id);
        return;
    }
    if (trace) {
        if (!e->done || !e->trace) {
            pthread_mutex_unlock(&r->mu);
            fr__reply_error(out, e->done ? FR_HE_TRACE_NOT_RECORDED : FR_HE_RUN_IN_PROGRESS,
                            !e->done           ? "run %s is still running"
                            : e->trace_refused ? "the trace of run %s was not kept: it passed "
                                                 "this server's max_run_bytes (--max-run-bytes)"
                                               : "run %s was not traced: start it with "
                                                 "\"trace\": true",
                            run_id);
            return;
        }
        out->body = strdup(e->trace);
        out->body_len = out->body ? strlen(out->body) : 0;
        out->status = out->body ? 200 : 500;
        pthread_mutex_unlock(&r->mu);
        return;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "run_id", json_object_new_string(e->id));
    json_object_object_add(
        o, "status", json_object_new_string(e->done ? fr__run_status_name(e->status) : "running"));
    json_object_object_add(o, "report",
                           e->done && e->report ? json_tokener_parse(e->report) : NULL);
    json_object_object_add(o, "traced", json_object_new_boolean(e->trace != NULL));
    fr__run_json_add_console(o, e->manifest, e->input, e->graph); /* issue 28 */
    pthread_mutex_unlock(&r->mu);
    fr__reply_json(out, 200, o);
}

void fr__runs_handle_cancel(fr_runs *r, const fr_identity *who, const char *run_id, fr_reply *out)
{
    if (!fr__auth_allows(who->role, FR_ACTION_RUN)) {
        fr__reply_error(out, FR_HE_FORBIDDEN, "role %s may not cancel runs",
                        fr__role_name(who->role));
        return;
    }
    pthread_mutex_lock(&r->mu);
    run_entry *e = fr__run_store_find(r->runs, run_id);
    if (!e || strcmp(e->tenant, who->tenant) != 0) {
        pthread_mutex_unlock(&r->mu);
        if (r->records) /* cancelled where it runs */
            fr__records_cancel(r->records, who, run_id, out);
        else
            fr__reply_error(out, FR_HE_RUN_NOT_FOUND, "no run %s", run_id);
        return;
    }
    if (e->done) {
        pthread_mutex_unlock(&r->mu);
        fr__reply_error(out, FR_HE_RUN_FINISHED, "run %s has already finished", run_id);
        return;
    }
    fr__pipeline_cancel(e->p);
    pthread_mutex_unlock(&r->mu);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "run_id", json_object_new_string(run_id));
    json_object_object_add(o, "status", json_object_new_string("cancelling"));
    fr__reply_json(out, 202, o);
}

char *fr__runs_trace_text(fr_runs *r, const fr_identity *who, const char *run_id, fr_reply *out)
{
    pthread_mutex_lock(&r->mu);
    run_entry *e = find_recorded(r, run_id);
    int mine = e && strcmp(e->tenant, who->tenant) == 0;
    int running = mine && !e->done;
    char *text = mine && e->trace ? strdup(e->trace) : NULL;
    pthread_mutex_unlock(&r->mu);
    if (!mine && r->records)
        return fr__records_trace(r->records, who, run_id, out);
    if (!text)
        fr__reply_error(out,
                        !mine     ? FR_HE_RUN_NOT_FOUND
                        : running ? FR_HE_RUN_IN_PROGRESS
                                  : FR_HE_TRACE_NOT_RECORDED,
                        !mine     ? "no run %s"
                        : running ? "run %s is still running"
                                  : "run %s was not traced: start it with \"trace\": true",
                        run_id);
    return text;
}

const fr_runs_config *fr__runs_config(const fr_runs *r)
{
    return &r->cfg;
}

/* ---- listing ---------------------------------------------------------------------------- */

typedef struct run_page {
    const fr_runs_query *q;
    uint64_t before;        /* the cursor: only runs added before it (0: from the newest) */
    const fr_run_entry **e; /* matching entries */
    size_t n, cap;
    int oom;
} run_page;

static void page_visit(void *ud, const fr_run_entry *e)
{
    run_page *pg = ud;
    const char *status = e->done ? fr__run_status_name(e->status) : "running";
    if ((pg->before && e->seq >= pg->before) || (pg->q->status && strcmp(pg->q->status, status)) ||
        (pg->q->manifest && strcmp(pg->q->manifest, e->manifest)))
        return;
    if (pg->n == pg->cap) {
        size_t cap = pg->cap ? 2 * pg->cap : 64;
        const fr_run_entry **grown = realloc(pg->e, cap * sizeof *grown);
        if (!grown) {
            pg->oom = 1;
            return;
        }
        pg->e = grown;
        pg->cap = cap;
    }
    pg->e[pg->n++] = e;
}

static int newest_first(const void *a, const void *b)
{
    uint64_t x = (*(const fr_run_entry *const *)a)->seq, y = (*(const fr_run_entry *const *)b)->seq;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* A whole number in [lo, hi] from a query value; -1 when it is not one. */
static long long query_int(const char *v, long long lo, long long hi)
{
    if (!v || *v < '0' || *v > '9' || strlen(v) > 19)
        return -1;
    char *end;
    long long n = strtoll(v, &end, 10);
    return *end || n < lo || n > hi ? -1 : n;
}

void fr__runs_handle_list(fr_runs *r, const fr_identity *who, const fr_runs_query *q, fr_reply *out)
{
    static const char *const statuses[] = {"queued", "running",   "succeeded",
                                           "failed", "cancelled", NULL};
    long long limit = q->limit ? query_int(q->limit, 1, 200) : 50;
    long long cursor = q->cursor ? query_int(q->cursor, 1, INT64_MAX) : 0;
    size_t k = 0;
    while (q->status && statuses[k] && strcmp(statuses[k], q->status) != 0)
        k++;
    if (limit < 0 || cursor < 0 || (q->status && !statuses[k])) {
        fr__reply_error(out, FR_HE_BAD_REQUEST,
                        limit < 0 ? "limit must be a whole number from 1 to 200"
                        : cursor < 0
                            ? "cursor must be a next_cursor this server returned"
                            : "status must be queued, running, succeeded, failed or cancelled");
        return;
    }
    if (r->records && fr__records_list(r->records, who, q, limit, cursor, out) == 0)
        return;
    run_page pg = {.q = q, .before = (uint64_t)cursor};
    pthread_mutex_lock(&r->mu);
    fr__run_store_evict(r->runs, fr__mono_us());
    fr__run_store_each(r->runs, who->tenant, page_visit, &pg);
    if (pg.oom) {
        pthread_mutex_unlock(&r->mu);
        free(pg.e);
        fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
        return;
    }
    if (pg.n) /* qsort's base must not be NULL, even for no elements */
        qsort(pg.e, pg.n, sizeof *pg.e, newest_first);
    size_t shown = pg.n < (size_t)limit ? pg.n : (size_t)limit;
    json_object *o = json_object_new_object(), *list = json_object_new_array();
    for (size_t i = 0; i < shown; i++) {
        const fr_run_entry *e = pg.e[i];
        json_object *it = json_object_new_object();
        json_object_object_add(it, "run_id", json_object_new_string(e->id));
        json_object_object_add(
            it, "status",
            json_object_new_string(e->done ? fr__run_status_name(e->status) : "running"));
        json_object_object_add(it, "manifest",
                               e->manifest[0] ? json_object_new_string(e->manifest) : NULL);
        json_object_object_add(it, "started_at", fr__serve_rfc3339_or_null(e->started_at_us));
        json_object_object_add(it, "finished_at",
                               e->done ? fr__serve_rfc3339_or_null(e->finished_at_us) : NULL);
        json_object_array_add(list, it);
    }
    json_object_object_add(o, "runs", list);
    if (shown < pg.n) {
        char next[24];
        snprintf(next, sizeof next, "%llu", (unsigned long long)pg.e[shown - 1]->seq);
        json_object_object_add(o, "next_cursor", json_object_new_string(next));
    } else {
        json_object_object_add(o, "next_cursor", NULL);
    }
    pthread_mutex_unlock(&r->mu);
    free(pg.e);
    fr__reply_json(out, 200, o);
}

/* Undoes an admitted run that cannot start (queued or gateway): its pipeline back to the
 * pool, the job freed (j may be NULL), the tenant's slot left.  Returns -1. */
int fr__runs_job_refuse(fr_runs *r, run_job *j, const fr_identity *who)
{
    if (j)
        fr__runs_release(r, j->pool, j->p), fr__runs_job_free(j);
    fr__runs_leave(r, who);
    return -1;
}

/* ---- the durable queue (core/serve/run_queue.c) ----------------------------------------- */

int fr__runs_execute_queued(fr_runs *r, const fr_queued_run *q, fr_reply *out)
{
    const fr_identity *who = q->who;
    fr_reply busy = {0};
    if (fr__runs_admit(r, who, &busy) != 0) {
        free(busy.body);
        return 1;
    }
    manifest_ref ref = {.name = q->yaml ? NULL : q->manifest, .yaml = q->yaml};
    run_job *j = calloc(1, sizeof *j);
    if (!j) {
        fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
        goto refused;
    }
    j->r = r;
    j->who = *who;
    j->record = q->trace;
    j->seed = q->seed;
    j->has_seed = q->has_seed;
    j->queued = q;
    if (q->input && !(j->input = strdup(q->input))) {
        fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
        goto refused;
    }
    j->p = fr__runs_acquire(r, who, FR_ACTION_RUN, &ref, &j->pool, out);
    if (!j->p ||
        fr__runs_authorize(who, fr__pipeline_manifest(j->p), ref.name, FR_ACTION_RUN, out) != 0 ||
        fr__policy_check_quarantine(j->p, out) != 0)
        goto refused;
    if (ref.name) {
        /* The run executes the manifest it was accepted for, or none. */
        const fr_manifest *m = fr__pipeline_manifest(j->p);
        char now[65];
        fr__sha256_hex(m->text, m->text_len, now);
        if (strcmp(now, q->sha256) != 0) {
            fr__reply_error(out, FR_HE_BAD_REQUEST,
                            "manifest \"%s\" changed after the run was queued (sha256 %.12s... "
                            "then, %.12s... now): not run; submit it again",
                            ref.name, q->sha256, now);
            goto refused;
        }
    }
    /* --journal: the run journals to Redis, or resumes from an earlier execution's. */
    if (fr__run_journal_open(&r->cfg, who, q->run_id, q->executions, j->p, j->input, q->seed,
                             q->has_seed, &j->journal, out) != 0)
        goto refused;
    if (!(j->entry = fr__runs_entry_add(r, q->run_id, who, ref.name, j->p, j->input))) {
        fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
        goto refused;
    }
    fr_run_status st;
    execute(j, &st, NULL); /* leaves the runs in flight */
    fr__runs_job_free(j);
    return 0;

refused:
    return fr__runs_job_refuse(r, j, who);
}
