/* `fluxroute worker`: executes the runs of the durable queue (--state redis) with serve's
 * execution machinery (fr_runs: pipelines, policy, limits, usage) and no API listener. */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/duration.h"
#include "controlplane/cp_client.h"
#include "observe/observe.h"
#include "plugin/isolate.h"
#include "plugin/quarantine.h"
#include "serve/run_queue.h"
#include "serve/serve.h"
#include "serve/serve_prices.h"
#include "serve/serve_quota.h"

/* What fr__worker_main made, freed (any of it may be NULL). */
static void worker_cleanup(fr_runs *runs, fr_run_queue *queue, fr_prices *prices, fr_quota *quota,
                           fr_cp_client *cp, fr_manifest *prov)
{
    fr__runs_free(runs);
    fr__run_queue_free(queue);
    fr__prices_free(prices);
    fr__quota_free(quota);
    fr__cp_client_free(cp);
    fr__manifest_free(prov);
}

fr_status fr__worker_main(const fr_exec_options *o)
{
    fr_state *state = o->state;
    if (!state || state->kind != FR_STATE_REDIS) {
        fprintf(stderr,
                "fluxroute worker: --state %s: a worker takes runs from the durable "
                "queue: give a redis:// URL (ROUTER_STATE_URL)\n",
                state ? fr__state_describe(state) : "memory");
        return FR_E_INVALID;
    }
    fr_manifest *prov = NULL;
    if (o->providers_file && !(prov = fr__serve_providers_load(o->providers_file)))
        return FR_E_INVALID;
    fr_cp_client *cp = NULL;
    if (o->controlplane_url &&
        !(cp = fr__cp_client_new(o->controlplane_url, o->controlplane_service_key,
                                 o->controlplane_spool))) {
        fr__manifest_free(prov);
        return FR_E_INVALID;
    }
    /* Signals are taken by this thread (sigwait), never by the consumer's or the engine's. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    const fr_containment *cont = &o->containment;
    fr__isolation_configure(cont->max_helpers, cont->helper_memory);
    fr__abandoned_set_cap(cont->max_abandoned);
    /* The limits of the runs' tenants and keys (issue 26), as serve enforces them: the
     * documents come with each queue entry, the counters are the replicas' (Redis), and
     * budgets are priced with the control plane's rate card (without --controlplane, a
     * budgeted call fails saying so). */
    fr_quota *quota = fr__quota_new();
    fr_prices *prices = quota && cp ? fr__prices_new(cp) : NULL;
    if (quota) {
        fr__quota_set_state(quota, state, o->runs.limits.value[FR_LIMIT_MAX_RUN_TIMEOUT]);
        const char *clock_file = getenv("FLUXROUTE_TESTING_CLOCK_OFFSET_FILE");
        if (clock_file && clock_file[0]) { /* serve's testing hook (docs/reference.md) */
            fr__quota_use_offset_clock(clock_file);
            fr__quota_set_clock(quota, fr__quota_offset_clock);
            fprintf(stderr,
                    "fluxroute worker: testing hook: the limits' clock is the wall clock plus "
                    "the seconds in %s (FLUXROUTE_TESTING_CLOCK_OFFSET_FILE); never set it in "
                    "production\n",
                    clock_file);
        }
        if (prices)
            fr__quota_set_prices(quota, fr__prices_lookup, prices);
    }
    fr_runs_config rc = o->runs;
    rc.providers = prov;
    rc.cp = cp;
    rc.quota = quota;
    fr_run_queue *queue = fr__queue_open(state, &o->queue, "worker");
    fr_runs *runs = queue && quota ? fr__runs_new(&rc) : NULL;
    atomic_int ready = 0;
    char err[512];
    fr_metrics_listener *ml =
        runs && o->metrics_addr
            ? fr__metrics_listener_start(o->metrics_addr, &ready, err, sizeof err)
            : NULL;
    if (!runs || (o->metrics_addr && !ml)) {
        fprintf(stderr, "fluxroute worker: %s\n", runs ? err : "out of memory");
        worker_cleanup(runs, queue, prices, quota, cp, prov);
        return runs ? FR_E_IO : FR_E_NOMEM;
    }
    fr_queue_consumer_config qc = {.runs = runs,
                                   .state = state,
                                   .queue = queue,
                                   .concurrency = o->queue.concurrency,
                                   .retention_us = rc.retention_us,
                                   .who = "worker",
                                   .quota = quota};
    fr_queue_consumer *consumer = fr__queue_consumer_start(&qc);
    if (!consumer) {
        fprintf(stderr, "fluxroute worker: cannot start the consumer (out of memory or threads)\n");
        fr__metrics_listener_stop(ml);
        worker_cleanup(runs, queue, prices, quota, cp, prov);
        return FR_E_NOMEM;
    }
    printf("worker consuming %s (consumer %s, %zu at once)\n", fr__state_describe(state),
           state->node, o->queue.concurrency);
    if (ml)
        printf("metrics listening on %s\n", fr__metrics_listener_url(ml));
    fflush(stdout);
    atomic_store(&ready, 1);

    /* The rate card is read again every FR_PRICES_REFRESH_S, as serve does. */
    for (;;) {
        struct timespec ts = {.tv_sec = FR_PRICES_REFRESH_S, .tv_nsec = 0};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig > 0)
            break;
        if (sig < 0 && errno == EAGAIN && prices)
            fr__prices_refresh(prices);
    }
    atomic_store(&ready, 0);
    char d[32];
    fprintf(stderr,
            "fluxroute worker: stopping: no new runs; those held may finish within %s "
            "(--shutdown-grace)\n",
            fr__duration_format(cont->shutdown_grace_us, d, sizeof d));
    size_t handed = fr__queue_consumer_stop(consumer, cont->shutdown_grace_us);
    fr__queue_log_round_trips(state, "worker");
    if (handed || fr__abandoned_count()) {
        /* Threads still inside runs cannot be joined: leave without them (their runs were
         * handed back to the queue). */
        fr__cp_client_free(cp);
        fr__obs_shutdown();
        fflush(NULL);
        _exit(0);
    }
    fr__exit_after(FR_CLEANUP_GRACE_US);
    fr__runs_drain(runs, FR_CLEANUP_GRACE_US);
    fr__metrics_listener_stop(ml);
    worker_cleanup(runs, queue, prices, quota, cp, prov);
    fr__obs_shutdown();
    return FR_OK;
}
