/* chaos: an agent that fails, stalls, crashes or hangs on cue, for tests and demos of
 * retries, timeouts, breakers and process isolation.  Everything it decides comes from
 * its options and host->attempt(), so a run replays exactly. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <fluxroute/plugin.h>

#include "plugin_util.h"

typedef struct chaos_config {
    int64_t fail_attempts;
    const char *error;
    int64_t delay_us;
    const char *output;
    int crash;
    int hang;
    int64_t hang_for_us;
    const char *crash_once;
} chaos_config;

static const fr_option chaos_options[] = {
    {"fail_attempts", FR_OPT_INT, "0", 0, 0,
     "attempts 1..N of each step fail (or crash/hang when those are set); 0: none fail",
     offsetof(chaos_config, fail_attempts)},
    {"error", FR_OPT_STRING, "unavailable", 0, 0,
     "error class of the injected failures (unavailable, timeout, rate_limited, "
     "bad_request, auth, config, ...)",
     offsetof(chaos_config, error)},
    {"delay", FR_OPT_DURATION, "0", 0, 0,
     "wait this long (through the host, cancellable) at the start of every attempt",
     offsetof(chaos_config, delay_us)},
    {"output", FR_OPT_JSON, NULL, 0, 0,
     "output of a successful attempt; default: the step input, as echo",
     offsetof(chaos_config, output)},
    {"crash", FR_OPT_BOOL, "false", 0, 0,
     "raise SIGSEGV instead of failing (on attempts 1..fail_attempts, or every attempt "
     "when fail_attempts is 0)",
     offsetof(chaos_config, crash)},
    {"hang", FR_OPT_BOOL, "false", 0, 0,
     "never return, ignoring cancellation (on attempts 1..fail_attempts, or every attempt "
     "when fail_attempts is 0)",
     offsetof(chaos_config, hang)},
    {"hang_for", FR_OPT_DURATION, "0", 0, 0,
     "with hang: return (failing) after this long instead of never, still ignoring "
     "cancellation; 0: never return",
     offsetof(chaos_config, hang_for_us)},
    {"crash_once", FR_OPT_STRING, NULL, 0, 0,
     "raise SIGSEGV when this file does not exist, creating it first: the process dies "
     "once, and the run (or its resume) goes on the next time (durable-run tests)",
     offsetof(chaos_config, crash_once)},
    {NULL, 0, NULL, 0, 0, NULL, 0},
};

typedef struct chaos_state {
    const fr_host_api *host;
    const chaos_config *cfg;
    const char *error_class; /* class name of injected failures */
    fr_status error_status;  /* status returned for them */
    size_t output_len;
} chaos_state;

static fr_status chaos_init(const fr_host_api *host, const void *config, void **state)
{
    const chaos_config *cfg = config;
    const char *error = cfg->error ? cfg->error : "unavailable";

    if (cfg->fail_attempts < 0) {
        host->set_error(NULL, "chaos: fail_attempts must be >= 0, not %lld",
                        (long long)cfg->fail_attempts);
        return FR_E_CONFIG;
    }
    if (cfg->delay_us < 0) {
        host->set_error(NULL, "chaos: delay must not be negative");
        return FR_E_CONFIG;
    }
    fr_status st = FR_OK;
    if (frk_class_status(error, &st) != 0) {
        char names[512];
        frk_class_names(names, sizeof names);
        host->set_error(NULL, "chaos: unknown error class \"%s\" in option error (known: %s)",
                        error, names);
        return FR_E_CONFIG;
    }
    if (st == FR_OK) {
        host->set_error(NULL, "chaos: error class \"none\" cannot fail an attempt");
        return FR_E_CONFIG;
    }
    if (cfg->output) {
        char err[160];
        json_object *obj = pu_json_parse(cfg->output, strlen(cfg->output), err, sizeof err);
        if (!obj) {
            host->set_error(NULL, "chaos: option output is not valid JSON: %s", err);
            return FR_E_CONFIG;
        }
        json_object_put(obj);
    }

    chaos_state *s = host->alloc(NULL, sizeof *s);
    if (!s)
        return FR_E_NOMEM;
    s->host = host;
    s->cfg = cfg;
    s->error_class = error;
    s->error_status = st;
    s->output_len = cfg->output ? strlen(cfg->output) : 0;
    *state = s;
    return FR_OK;
}

static void chaos_fini(void *state)
{
    chaos_state *s = state;
    if (s)
        s->host->free_mem(s);
}

static fr_status chaos_invoke(void *state, fr_call *call, const char *input, size_t input_len,
                              char **output, size_t *output_len)
{
    const chaos_state *s = state;
    const fr_host_api *host = s->host;
    const chaos_config *cfg = s->cfg;
    int attempt = host->attempt(call);

    if (cfg->delay_us > 0) {
        fr_status st = host->sleep_us(call, cfg->delay_us);
        if (st != FR_OK) {
            host->set_error(call, "chaos: delay interrupted on attempt %d (%s)", attempt,
                            frk_status_name(st));
            return st;
        }
    }

    /* Deliberately outside the host, like the crash itself: the marker file is how the
     * next process learns that this one died. */
    if (cfg->crash_once && cfg->crash_once[0]) {
        int fd = open(cfg->crash_once, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            close(fd);
            host->log(call, FR_LOG_WARN, "chaos: crashing once (created %s)", cfg->crash_once);
            raise(SIGSEGV);
            host->set_error(call, "chaos: SIGSEGV raised on attempt %d was caught", attempt);
            return FR_E_CRASHED;
        }
    }

    /* crash/hang replace the injected failure on the failing attempts; alone they fire
     * on every attempt. */
    int misbehave = cfg->fail_attempts == 0 || attempt <= cfg->fail_attempts;
    if (cfg->crash && misbehave) {
        host->log(call, FR_LOG_WARN, "chaos: crashing on attempt %d", attempt);
        raise(SIGSEGV);
        /* Only reached when something caught the signal and returned. */
        host->set_error(call, "chaos: SIGSEGV raised on attempt %d was caught", attempt);
        return FR_E_CRASHED;
    }
    if (cfg->hang && misbehave) {
        host->log(call, FR_LOG_WARN, "chaos: hanging on attempt %d", attempt);
        if (cfg->hang_for_us <= 0)
            for (;;)
                pause();
        /* Deliberately outside the host, like pause(): a hang ignores cancellation and
         * deadlines.  Waiting for no signal at all is a plain timed wait. */
        sigset_t none;
        sigemptyset(&none);
        int64_t waited_us = 0;
        while (waited_us < cfg->hang_for_us) {
            struct timespec slice = {0, 10 * 1000 * 1000};
            if (sigtimedwait(&none, NULL, &slice) < 0 && errno != EAGAIN && errno != EINTR)
                break;
            waited_us += 10000;
        }
        host->set_error(call, "chaos: hung for %lldus on attempt %d", (long long)cfg->hang_for_us,
                        attempt);
        return FR_E_UNAVAILABLE;
    }
    if (attempt <= cfg->fail_attempts) {
        host->set_error(call, "chaos: injected %s failure (attempt %d of %lld failing)",
                        s->error_class, attempt, (long long)cfg->fail_attempts);
        return s->error_status;
    }

    if (cfg->output)
        return pu_output_copy(host, call, cfg->output, s->output_len, output, output_len);
    return pu_output_copy(host, call, input, input_len, output, output_len);
}

static const fr_plugin chaos_plugin = {
    .abi_version = FR_ABI_VERSION,
    .struct_size = sizeof(fr_plugin),
    .kind = FR_PLUGIN_AGENT,
    .name = "chaos",
    .version = "1.0.0",
    .description = "Injects failures, delays, crashes and hangs on cue (tests and demos)",
    .options = chaos_options,
    .option_size = sizeof(fr_option), /* ABI 1.1: the row size, so rows may grow */
    .config_size = sizeof(chaos_config),
    .init = chaos_init,
    .fini = chaos_fini,
    .invoke = chaos_invoke,
};

FR_PLUGIN_EXPORT const fr_plugin *fluxroute_plugin_v1(void)
{
    return &chaos_plugin;
}
