/* serve's plugin policy: which agents run in this process and which in helper processes,
 * the chaos test plugin, quarantined plugins.
 *
 * Trust belongs to the server's operator, not to a tenant: a plugin is trusted when its
 * name is in the trusted set (echo, llm, mock, openai, anthropic, gemini, plus every
 * --trust-plugin NAME) AND the file it resolved to was found on the server's own search
 * path (--plugin-dir or the built-in directory).  A file of a trusted name found through a
 * manifest's plugins.dirs is not trusted: the manifest's author chose that file.  Every
 * other agent runs with `isolation: process`, whatever its manifest says (`isolation:
 * none` is raised, with a note in each report), and its plugin code is initialised only
 * in its helpers.  The same policy applies to named manifests, inline manifests and the
 * manifests of replayed traces: fr__runs_build_pipeline (core/serve/serve_pipelines.c) is
 * their common point.
 *
 * Thread-safety: the configuration is read-only once serve runs; the functions here are
 * called from request and run threads concurrently. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/duration.h"
#include "engine/pipeline.h"
#include "plugin/quarantine.h"
#include "serve/serve.h"
#include "base/yaml_tree.h"

/* Agents of these plugins run in this process unless their manifest asks otherwise. */
static const char *const default_trusted[] = {"echo",   "llm",       "mock",
                                              "openai", "anthropic", "gemini"};

static int name_trusted(const fr_runs_config *cfg, const char *name)
{
    for (size_t i = 0; i < sizeof default_trusted / sizeof *default_trusted; i++)
        if (strcmp(default_trusted[i], name) == 0)
            return 1;
    for (size_t i = 0; i < cfg->n_trusted_plugins; i++)
        if (strcmp(cfg->trusted_plugins[i], name) == 0)
            return 1;
    return 0;
}

/* Found on the server's own path (not the manifest's plugins.dirs)? */
static int from_server_path(const fr_loaded_plugin *pl)
{
    return pl->origin &&
           (strcmp(pl->origin, "--plugin-dir") == 0 || strcmp(pl->origin, "built-in") == 0);
}

int fr__policy_check_manifest(const fr_runs_config *cfg, const fr_manifest *m, fr_reply *out)
{
    if (cfg->enable_chaos)
        return 0;
    for (size_t i = 0; i < m->n_agents; i++)
        if (strcmp(m->agents[i].plugin, "chaos") == 0) {
            fr__reply_error(out, FR_HE_PLUGIN_DISABLED,
                            "agent \"%s\": plugin \"chaos\" is a test plugin, disabled on this "
                            "server (start serve with --enable-chaos to allow it)",
                            m->agents[i].id);
            return -1;
        }
    return 0;
}

int fr__policy_agent(void *ud, fr_pipeline *p, fr_agent_cfg *a, const fr_loaded_plugin *pl,
                     fr_diags *diags)
{
    (void)diags;
    const fr_runs_config *cfg = ud;
    int named = name_trusted(cfg, pl->name), ours = from_server_path(pl);
    if (named && ours)
        return 0; /* the manifest's choice stands */
    int explicit_none =
        a->isolation == FR_ISOLATION_NONE && a->node && fr__ymap_get(a->node, "isolation") != NULL;
    a->isolation = FR_ISOLATION_PROCESS;
    fr__manifest_note(p->m,
                      "agent \"%s\": plugin %s (%s) is not trusted by this server (%s), so "
                      "it runs in a helper process%s",
                      a->id, pl->name, pl->path,
                      !named ? "trust it with serve --trust-plugin"
                             : "it was found through the manifest's plugins.dirs, not the "
                               "server's plugin path",
                      explicit_none ? ": its isolation: none was raised to process" : "");
    return 0;
}

int fr__policy_runs_inline(const fr_pipeline *p)
{
    /* Only agents whose code cannot block: the built-in echo copies its input and calls
     * nothing.  Any other plugin, trusted or not, may hang on some input. */
    const fr_manifest *m = p->m;
    for (size_t i = 0; i < m->n_agents; i++) {
        const fr_loaded_plugin *pl = p->agents[i].plugin;
        if (m->agents[i].isolation != FR_ISOLATION_NONE || !pl || strcmp(pl->name, "echo") != 0 ||
            !pl->origin || strcmp(pl->origin, "built-in") != 0)
            return 0;
    }
    return 1;
}

static int built_in(const fr_loaded_plugin *pl, const char *name)
{
    return pl && pl->origin && strcmp(pl->origin, "built-in") == 0 &&
           (!name || strcmp(pl->name, name) == 0);
}

int fr__policy_waits_on_vendors_only(const fr_pipeline *p)
{
    const fr_manifest *m = p->m;
    for (size_t i = 0; i < m->n_agents; i++)
        if (m->agents[i].isolation != FR_ISOLATION_NONE || !built_in(p->agents[i].plugin, "llm"))
            return 0;
    /* The agents' providers are among the pipeline's. */
    for (size_t i = 0; i < m->n_providers; i++)
        if (!built_in(p->providers[i].plugin, NULL))
            return 0;
    return 1;
}

int fr__policy_check_quarantine(const fr_pipeline *p, fr_reply *out)
{
    const fr_manifest *m = p->m;
    for (size_t i = 0; i < m->n_agents; i++) {
        const char *why;
        if (m->agents[i].isolation == FR_ISOLATION_NONE && p->agents[i].plugin &&
            fr__plugin_quarantined(p->agents[i].plugin->path, &why)) {
            fr__reply_error(out, FR_HE_PLUGIN_QUARANTINED, "agent \"%s\": %s", m->agents[i].id,
                            why);
            return -1;
        }
    }
    return 0;
}

/* ---- the containment flags ---------------------------------------------------------------- */

/* Parses a size: digits with an optional K, M, G or T (powers of 1024; "KiB", "MB" and the
 * like are accepted too).  Returns 0, or -1. */
static int parse_size(const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (end == text || errno || *text == '-')
        return -1;
    int shift = 0;
    switch (*end) {
    case 'k':
    case 'K':
        shift = 10;
        end++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        end++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        end++;
        break;
    case 't':
    case 'T':
        shift = 40;
        end++;
        break;
    default: break;
    }
    if (shift && *end == 'i')
        end++;
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end || (shift && v > (UINT64_MAX >> shift)))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

static int parse_count(const char *text, size_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end || errno || v < 0)
        return -1;
    *out = (size_t)v;
    return 0;
}

int fr__containment_parse(fr_containment *c, const char *max_helpers, const char *helper_memory,
                          const char *max_abandoned, const char *grace, size_t max_runs,
                          const char **why)
{
    static char msg[256];
    /* One helper per run in flight: more would only queue for the CPU. */
    *c = (fr_containment){.max_helpers = max_runs,
                          .helper_memory = 1ULL << 30,
                          .max_abandoned = 16,
                          .shutdown_grace_us = 30 * 1000000LL};
    const char *bad = NULL, *what = NULL;
    if (max_helpers && (parse_count(max_helpers, &c->max_helpers) != 0 || c->max_helpers < 1))
        bad = max_helpers, what = "--max-helpers %s: not a positive number";
    else if (helper_memory && parse_size(helper_memory, &c->helper_memory) != 0)
        bad = helper_memory, what = "--helper-memory %s: not a size (e.g. 512M, 2G; 0: no limit)";
    else if (c->helper_memory && c->helper_memory < (64ULL << 20))
        bad = helper_memory, what = "--helper-memory %s: below 64M no helper can start";
    else if (max_abandoned &&
             (parse_count(max_abandoned, &c->max_abandoned) != 0 || c->max_abandoned < 1))
        bad = max_abandoned, what = "--max-abandoned %s: not a positive number";
    else if (grace && (fr__duration_parse(grace, &c->shutdown_grace_us, why) != 0 ||
                       c->shutdown_grace_us < 0))
        bad = grace, what = "--shutdown-grace %s: not a duration (e.g. 30s, 2m)";
    if (!bad)
        return 0;
    snprintf(msg, sizeof msg, what, bad);
    *why = msg;
    return -1;
}

static void *exit_timer_main(void *arg)
{
    int64_t us = *(int64_t *)arg;
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    fprintf(stderr, "fluxroute serve: cleanup after shutdown took over %llds; exiting now\n",
            (long long)(us / 1000000));
    fflush(NULL);
    _exit(0);
    return NULL;
}

void fr__exit_after(int64_t us)
{
    static int64_t delay;
    delay = us;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, exit_timer_main, &delay) != 0)
        fprintf(stderr, "fluxroute serve: cannot start the shutdown timer\n");
    pthread_attr_destroy(&attr);
}
