/* serve: the OpenAI gateway's runs (fr__runs_gateway, for core/serve/gateway.c): a
 * gateway request as a traced run of its tenant, answered through the gateway's hooks on
 * the request thread, the pipeline's driver or a thread of its own, its record written
 * after the answer by the record writer.  (internal header: serve_runs_impl.h) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/secure_random.h"
#include "base/str.h"
#include "serve/serve_runs_impl.h"

/* ---- the OpenAI gateway (core/serve/gateway.c) ------------------------------------------ */

/* A gateway run's answer (on_end, from the run's outputs), before its record is written:
 * the entry says so, and a GET of the run waits for the record (find_recorded).  The run
 * gives its slot back now: the client's next request is not refused for a record still
 * being written (the writer's queue has its own bound). */
static void gateway_answer(run_job *j, fr_status st, fr_reply *reply)
{
    fr_runs *r = j->r;
    j->ended = fr__mono_us();
    j->status = st;
    pthread_mutex_lock(&r->mu);
    j->entry->writing = 1;
    fr__run_store_leave(r->runs, j->who.tenant);
    fr__quota_leave(r->cfg.quota, &j->who); /* issue 26 */
    j->left = 1;
    pthread_cond_broadcast(&r->idle_cv);
    pthread_mutex_unlock(&r->mu);
    reply->route = "/v1/chat/completions";
    j->gw.on_end(j->gw.ud, j->entry->id, st, j->p, st == FR_OK ? &j->res : NULL,
                 st == FR_OK ? fr__runs_plugin_time(&j->res) : 0, reply);
}

/* The writer's task: a gateway run's report, trace and record, its usage, and the end of
 * the run (its slot and pipeline given back). */
static void gateway_record(void *arg)
{
    run_job *j = arg;
    fr_run_status st;
    fr__runs_execute_end(j, j->status, &st, NULL);
    fr__runs_job_free(j);
}

static void *gateway_record_main(void *arg)
{
    gateway_record(arg);
    return NULL;
}

/* Answers a gateway run that returned `rs` through its deliver hook, and leaves its record
 * to the writer (off the request's path).  When the writer's queue is full, the record is
 * written before the answer: here, or on a thread of its own when this is the pipeline's
 * driver (which must not free its own pipeline: release may).  j is gone after this. */
static void gateway_deliver(run_job *j, fr_status rs, int on_driver)
{
    fr_reply reply = {0};
    gateway_answer(j, rs, &reply);
    fr_gateway_exec g = j->gw;
    fr_deferred *d = j->defer;
    if (fr__writer_push(j->r->writer, gateway_record, j) != 0) {
        if (on_driver)
            fr__runs_spawn_or_run(gateway_record_main, j);
        else
            gateway_record(j);
    }
    g.deliver(g.ud, d, &reply);
}

static void *gateway_main(void *arg)
{
    pthread_setname_np(pthread_self(), "fr-gateway");
    run_job *j = arg;
    gateway_deliver(j, fr__runs_execute_run(j), 0);
    return NULL;
}

/* A gateway run answered on its request thread: the deliver hook's reply becomes the
 * request's own (`out`). */
typedef struct answer_here {
    fr_deferred d;
    fr_reply *out;
} answer_here;

static void answer_here_complete(fr_deferred *d, fr_reply *reply)
{
    *((answer_here *)d)->out = *reply;
}

int fr__runs_gateway(fr_runs *r, const fr_identity *who, const fr_gateway_exec *g,
                     fr_deferred *defer, char *run_id, size_t run_id_size, fr_reply *out)
{
    if (!defer) {
        fr__reply_error(out, FR_HE_INTERNAL, "the gateway answers on a connection only");
        return -1;
    }
    if (fr__runs_admit(r, who, out) != 0)
        return -1;
    run_job *j = calloc(1, sizeof *j);
    manifest_ref ref = {.name = g->manifest};
    if (!j || !(j->input = strdup(g->input))) {
        fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
        goto refused;
    }
    j->r = r;
    j->who = *who;
    j->record = 1; /* every gateway request is a replayable run */
    j->gw = *g;
    j->deliver = gateway_deliver;
    if (g->yaml)
        j->p = fr__runs_acquire_text(r, who, g->label, g->yaml, &j->pool, out);
    else
        j->p = fr__runs_acquire(r, who, FR_ACTION_RUN, &ref, &j->pool, out);
    if (!j->p ||
        fr__runs_authorize(who, fr__pipeline_manifest(j->p), ref.name, FR_ACTION_RUN, out) != 0 ||
        fr__policy_check_quarantine(j->p, out) != 0)
        goto refused;
    char id[40];
    if (fr__secure_uuid(id, sizeof id) != 0) {
        fr__reply_error(out, FR_HE_INTERNAL, "cannot draw a run id: getrandom: %s",
                        strerror(errno));
        goto refused;
    }
    if (!(j->entry = fr__runs_entry_add(r, id, who, g->label, j->p, j->input))) {
        fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
        goto refused;
    }
    fr__str_copy(run_id, run_id_size, id);
    j->defer = defer;
    /* The server's only run in flight, not a stream (whose first token goes out from the
     * run's thread), on a request thread that serves this connection only (the server's
     * other request threads accept new ones): the run goes on this very thread, with no
     * hand-off to a driver and back (two wake-ups, often on the other CPU) and no thread
     * started.  Holding the thread stalls no other connection; only one request thread is
     * ever held so (r->held), so the others serve everyone else, whatever this run's
     * vendor takes (at most its deadlines; shutdown waits for it as for any run in
     * flight, at most --shutdown-grace).  Only a targets route's run (built-in llm and
     * provider plugins, which wait on vendors only, within deadlines): a pipeline
     * route's plugins may hang. */
    pthread_mutex_lock(&r->mu);
    int alone = !g->stream && fr__run_store_in_flight(r->runs) <= 1;
    pthread_mutex_unlock(&r->mu);
    int expected = 0;
    int held = alone && g->yaml && fr__policy_waits_on_vendors_only(j->p) &&
               fr__http_thread_alone() && atomic_compare_exchange_strong(&r->held, &expected, 1);
    if (!held && !fr__runs_quickly(r, j->pool)) {
        defer->suspend(defer);
        out->deferred = 1;
        fr__runs_spawn_or_run(gateway_main, j);
        return 0;
    }
    /* A held run goes on here (j->on_caller).  Else a route whose runs have been quick (as
     * POST /v1/run) runs on its pipeline's driver,
     * a thread that waits for runs: none is started.  When it is the only run in flight
     * and not a stream, this thread waits for it (at most QUICK_HOLD_US) and answers on
     * the spot: no suspension and resumption of the connection.  Under concurrency, this
     * thread must not wait (the request threads are few): the connection is suspended and
     * the thread leaves once the run is handed over; the driver answers (quick_done). */
    if (!alone) {
        defer->suspend(defer);
        out->deferred = 1;
        j->suspended = 1;
        j->hold_us = 1;
    }
    int detached = 0;
    j->on_caller = held;
    j->sync = 1;
    j->detached = &detached;
    fr_status rs = fr__runs_execute_run(j);
    if (held)
        atomic_store(&r->held, 0);
    if (detached) {
        out->deferred = 1; /* quick_done answers */
        return 0;
    }
    answer_here here = {.d = {.conn = defer->conn, .complete = answer_here_complete}, .out = out};
    if (alone)
        j->defer = &here.d;
    gateway_deliver(j, rs, 0);
    return 0;

refused:
    return fr__runs_job_refuse(r, j, who);
}
