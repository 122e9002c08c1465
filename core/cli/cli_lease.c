/* The coordination lease around `fluxroute run` and `bench`: COORDINATION_* from the
 * environment, the key from the manifest, --lease-wait, exit 4 when the key is held
 * elsewhere, and cancelling the run with lease_lost when the lease is lost. */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "base/duration.h"
#include "lease/lease.h"

struct cli_lease {
    fr_lease_backend *backend;
    fr_lease *lease;
    fr_pipeline *p;
    atomic_int lost;
    char lost_message[512]; /* written once, before `lost` is set */
};

/* Renewal thread: the lease is gone, stop the protected work. */
static void on_lost(void *ud, const fr_lease *l, const char *message)
{
    (void)l;
    cli_lease *cl = ud;
    snprintf(cl->lost_message, sizeof cl->lost_message, "%s", message);
    atomic_store(&cl->lost, 1);
    fr__pipeline_cancel_with(cl->p, FR_E_LEASE_LOST, message);
}

/* While waiting for the key: SIGINT/SIGTERM are blocked in every thread (the signal
 * thread is not running yet), so take a pending one here and stop the wait. */
static fr_status interrupted(void *ud)
{
    (void)ud;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    struct timespec zero = {0, 0};
    return sigtimedwait(&set, NULL, &zero) > 0 ? FR_E_CANCELLED : FR_OK;
}

/* "run:<namespace>:<manifest file name without its extension>" */
static void default_key(const fr_manifest *m, char *out, size_t size)
{
    const char *base = strrchr(m->path, '/');
    base = base ? base + 1 : m->path;
    const char *dot = strrchr(base, '.');
    size_t len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    snprintf(out, size, "run:%s:%.*s", m->namespace_, (int)len, base);
}

int fr__cli_lease_begin(const cli_command *cmd, fr_pipeline *p, const char *wait_arg,
                        fr_run_options *ro, cli_lease **out)
{
    *out = NULL;
    int64_t wait_us = 0;
    const char *why = NULL;
    if (wait_arg && (fr__duration_parse(wait_arg, &wait_us, &why) != 0 || wait_us < 0)) {
        fr__cli_error(cmd, "--lease-wait %s: %s", wait_arg, why ? why : "must not be negative");
        return FR_EXIT_USAGE;
    }
    char err[512];
    fr_lease_config cfg;
    fr_status st = fr__lease_config_from_env(&cfg, err, sizeof err);
    if (st != FR_OK) {
        fr__cli_error(cmd, "%s", err);
        return st == FR_E_CONFIG ? FR_EXIT_USAGE : FR_EXIT_FAILED;
    }
    const fr_manifest *m = fr__pipeline_manifest(p);
    if (!cfg.enabled || !m->lease_enabled) {
        fr__lease_config_free(&cfg);
        return FR_EXIT_OK;
    }
    char key[1024];
    if (m->lease_key)
        snprintf(key, sizeof key, "%s", m->lease_key);
    else
        default_key(m, key, sizeof key);

    cli_lease *cl = calloc(1, sizeof *cl);
    if (!cl) {
        fr__lease_config_free(&cfg);
        fr__cli_error(cmd, "out of memory");
        return FR_EXIT_FAILED;
    }
    cl->p = p;
    st = fr__lease_backend_open(&cfg, &cl->backend, err, sizeof err);
    if (st == FR_OK) {
        fr_lease_acquire_opts o = {.ttl_us = cfg.ttl_us,
                                   .wait_us = wait_us,
                                   .on_lost = on_lost,
                                   .on_lost_ud = cl,
                                   .should_stop = interrupted};
        st = fr__lease_acquire(cl->backend, key, &o, &cl->lease, err, sizeof err);
    }
    fr__lease_config_free(&cfg);
    if (st != FR_OK) {
        fr__lease_backend_close(cl->backend);
        free(cl);
        if (st == FR_E_UNAVAILABLE) {
            fr__cli_error(cmd, "%s%s", err,
                          wait_arg ? "" : "; use --lease-wait DURATION to wait for it");
            return FR_EXIT_LEASE;
        }
        fr__cli_error(cmd, "%s", err);
        return st == FR_E_CANCELLED ? FR_EXIT_INTERRUPTED
               : st == FR_E_CONFIG  ? FR_EXIT_USAGE
                                    : FR_EXIT_FAILED;
    }
    ro->lease_key = fr__lease_key(cl->lease);
    ro->fencing_token = fr__lease_token(cl->lease);
    *out = cl;
    return FR_EXIT_OK;
}

int fr__cli_lease_lost(const cli_lease *cl)
{
    return cl && atomic_load(&((cli_lease *)cl)->lost);
}

int fr__cli_lease_end(const cli_command *cmd, cli_lease *cl)
{
    if (!cl)
        return 0;
    char err[512];
    fr_status st = fr__lease_release(cl->lease, err, sizeof err);
    int lost = atomic_load(&cl->lost);
    if (lost)
        fr__cli_error(cmd, "%s", cl->lost_message);
    else if (st != FR_OK)
        fr__cli_error(cmd, "warning: releasing the lease: %s (it expires after the TTL)", err);
    fr__lease_backend_close(cl->backend);
    free(cl);
    return lost;
}
