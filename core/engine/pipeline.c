/* Building a pipeline: resolving plugins, checking options, initialising instances. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/effects.h"
#include "plugin/isolate.h"
#include "engine/pipeline.h"

static const char *kind_name(fr_plugin_kind k)
{
    return k == FR_PLUGIN_AGENT ? "agent" : k == FR_PLUGIN_PROVIDER ? "provider" : "unknown";
}

/* Resolves, checks and initialises one instance.  `what` is "agent" or "provider". */
static void build_instance(fr_pipeline *p, fr_instance *inst, const char *what, const char *id,
                           const char *plugin, fr_plugin_kind want, const fr_ynode *node,
                           const fr_ynode *plugin_node, const fr_ynode *config, fr_diags *diags,
                           const fr_build_options *opts, fr_agent_cfg *agent)
{
    const fr_ynode *at = plugin_node ? plugin_node : node;
    int line = at ? at->line : 0, col = at ? at->col : 0;
    char err[1024];
    inst->id = id;
    if (fr__loader_get(p->loader, plugin, &inst->plugin, err, sizeof err) != 0) {
        fr__diag_add(diags, line, col, "%s \"%s\": %s", what, id, err);
        inst->plugin = NULL;
        return;
    }
    const fr_plugin *d = inst->plugin->desc;
    if (d->kind != want) {
        fr__diag_add(diags, line, col, "%s \"%s\": plugin \"%s\" is a %s plugin, not a %s plugin",
                     what, id, plugin, kind_name(d->kind), kind_name(want));
        return;
    }
    char owner[512];
    snprintf(owner, sizeof owner, "%s \"%s\"", what, id);
    size_t before = diags->n;
    fr__options_fill(d, config, node, owner, &inst->config, diags);
    if (diags->n != before)
        return;
    /* Values of options declared secret never reach a trace, log or report. */
    for (const fr_option *o = d->options; o && o->name && inst->config.data;
         o = FR_OPTION_NEXT(d, o))
        if (o->secret && (o->type == FR_OPT_STRING || o->type == FR_OPT_JSON))
            fr__secret_remember(
                *(const char *const *)((const char *)inst->config.data + o->offset));
    if (agent && opts && opts->agent_policy &&
        opts->agent_policy(opts->policy_ud, p, agent, inst->plugin, diags) != 0)
        return;
    /* An isolated agent under a policy is initialised in its helpers only: its init and
     * invoke never run in this process (the loader has still opened the file here). */
    if (agent && opts && opts->agent_policy && agent->isolation == FR_ISOLATION_PROCESS)
        return;
    free(fr__host_take_init_error());
    /* init is optional: a plugin without state needs none. */
    fr_status st = d->init ? d->init(fr__host_api(), inst->config.data, &inst->state) : FR_OK;
    char *why = fr__host_take_init_error();
    if (st != FR_OK) {
        fr__diag_add(diags, line, col, "%s \"%s\": plugin \"%s\" rejected its configuration: %s",
                     what, id, plugin, why ? why : fr_strerror(st));
        free(why);
        return;
    }
    free(why);
    inst->initialised = 1;
}

static int add_dirs(fr_pipeline *p, const fr_build_options *opts)
{
    for (size_t i = 0; opts && i < opts->n_plugin_dirs; i++)
        if (fr__loader_add_dir(p->loader, opts->plugin_dirs[i], "--plugin-dir") != 0)
            return -1;
    const char *env = getenv("FLUXROUTE_PLUGIN_PATH");
    if (opts && opts->use_env_path && env && *env &&
        fr__loader_add_path_list(p->loader, env, "FLUXROUTE_PLUGIN_PATH") != 0)
        return -1;
    for (size_t i = 0; i < p->m->n_plugin_dirs; i++)
        if (fr__loader_add_dir(p->loader, p->m->plugin_dirs[i], "manifest plugins.dirs") != 0)
            return -1;
    return fr__loader_add_dir(p->loader, fr__loader_builtin_dir(), "built-in");
}

static int build_children(fr_pipeline *p)
{
    const fr_manifest *m = p->m;
    p->children = calloc(m->n_steps ? m->n_steps : 1, sizeof *p->children);
    p->n_children = calloc(m->n_steps ? m->n_steps : 1, sizeof *p->n_children);
    if (!p->children || !p->n_children)
        return -1;
    for (size_t i = 0; i < m->n_steps; i++)
        for (size_t j = 0; j < m->steps[i].n_deps; j++)
            p->n_children[m->steps[i].dep_index[j]]++;
    for (size_t i = 0; i < m->n_steps; i++) {
        if (p->n_children[i] && !(p->children[i] = malloc(p->n_children[i] * sizeof(int))))
            return -1;
        p->n_children[i] = 0;
    }
    /* Children in manifest order, so ready steps queue deterministically. */
    for (size_t i = 0; i < m->n_steps; i++)
        for (size_t j = 0; j < m->steps[i].n_deps; j++) {
            int d = m->steps[i].dep_index[j];
            p->children[d][p->n_children[d]++] = (int)i;
        }
    return 0;
}

fr_pipeline *fr__pipeline_build(fr_manifest *m, const fr_build_options *opts, fr_diags *diags)
{
    fr_pipeline *p = calloc(1, sizeof *p);
    if (!p) {
        fr__manifest_free(m);
        return NULL;
    }
    p->m = m;
    p->loader = fr__loader_new();
    p->agents = calloc(m->n_agents ? m->n_agents : 1, sizeof *p->agents);
    p->providers = calloc(m->n_providers ? m->n_providers : 1, sizeof *p->providers);
    if (!p->loader || !p->agents || !p->providers || add_dirs(p, opts) != 0 ||
        build_children(p) != 0) {
        fr__diag_add(diags, 0, 0, "out of memory while building the pipeline");
        fr__pipeline_free(p);
        return NULL;
    }
    /* The original's CIRCUIT_* variables give breakers to those without their own. */
    fr_breaker_cfg env_breaker;
    const char *why = NULL;
    int env_rc = fr__breaker_cfg_from_env(&env_breaker, &why);
    if (env_rc < 0)
        fr__diag_add(diags, 0, 0, "%s", why);
    for (size_t i = 0; i < m->n_providers; i++) {
        const fr_provider_cfg *pc = &m->providers[i];
        build_instance(p, &p->providers[i], "provider", pc->id, pc->plugin, FR_PLUGIN_PROVIDER,
                       pc->node, pc->plugin_node, pc->config, diags, opts, NULL);
        const fr_breaker_cfg *bc = pc->breaker.enabled ? &pc->breaker
                                   : env_rc > 0        ? &env_breaker
                                                       : NULL;
        if (bc)
            p->providers[i].breaker = fr__breaker_get(m->namespace_, "provider", pc->id, bc);
    }
    for (size_t i = 0; i < m->n_agents; i++) {
        fr_agent_cfg *ac = &m->agents[i];
        build_instance(p, &p->agents[i], "agent", ac->id, ac->plugin, FR_PLUGIN_AGENT, ac->node,
                       ac->plugin_node, ac->config, diags, opts, ac);
        p->agents[i].agent_cfg = ac;
        if (ac->provider_index >= 0)
            p->agents[i].provider = &p->providers[ac->provider_index];
        const fr_breaker_cfg *bc = ac->breaker.enabled ? &ac->breaker
                                   : env_rc > 0        ? &env_breaker
                                                       : NULL;
        if (bc)
            p->agents[i].breaker = fr__breaker_get(m->namespace_, "agent", ac->id, bc);
    }
    if (diags->n > 0 || fr__pool_start(p) != 0) {
        if (diags->n == 0)
            fr__diag_add(diags, 0, 0, "cannot start the worker pool");
        fr__pipeline_free(p);
        return NULL;
    }
    return p;
}

static void free_instance(fr_instance *inst)
{
    fr__isolation_shutdown(inst);
    if (inst->initialised && inst->plugin->desc->fini)
        inst->plugin->desc->fini(inst->state);
    fr__config_free(&inst->config);
}

/* Pipelines that cannot be freed because hung plugin threads still use them. */
static pthread_mutex_t kept_mu = PTHREAD_MUTEX_INITIALIZER;
static fr_pipeline *kept;

void fr__pipeline_free(fr_pipeline *p)
{
    if (!p)
        return;
    if (fr__pool_stop(p) > 0) {
        /* A hung plugin thread may still run inside an instance and use the pool's lock:
         * never finalise or free what it can touch.  Keep it reachable. */
        fprintf(stderr,
                "fluxroute: %zu hung plugin thread(s) still running; their pipeline "
                "is kept in memory\n",
                p->n_hung);
        pthread_mutex_lock(&kept_mu);
        p->kept_next = kept;
        kept = p;
        pthread_mutex_unlock(&kept_mu);
        return;
    }
    const fr_manifest *m = p->m;
    for (size_t i = 0; p->agents && i < m->n_agents; i++)
        free_instance(&p->agents[i]);
    for (size_t i = 0; p->providers && i < m->n_providers; i++)
        free_instance(&p->providers[i]);
    for (size_t i = 0; p->children && i < m->n_steps; i++)
        free(p->children[i]);
    free(p->children);
    free(p->n_children);
    free(p->agents);
    free(p->providers);
    if (p->trace_memo_free)
        p->trace_memo_free(p->trace_memo);
    fr__loader_free(p->loader);
    fr__manifest_free(p->m);
    free(p);
}

const fr_manifest *fr__pipeline_manifest(const fr_pipeline *p)
{
    return p->m;
}

fr_loader *fr__pipeline_loader(fr_pipeline *p)
{
    return p->loader;
}
