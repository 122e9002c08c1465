/* The public embedding API (include/fluxroute/fluxroute.h) over the engine. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fluxroute/fluxroute.h>

#include "base/api.h"
#include "engine/engine.h"

struct fr_engine {
    fr_pipeline *p;
    pthread_mutex_t run_mu;
    int run_on_caller;
};

/* Joins diagnostics into "file:line:col: message\n" lines. */
static char *diags_text(const fr_diags *d)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    fr__diags_print(d, f);
    fclose(f);
    return buf;
}

FR_API fr_status fr_engine_open(const char *path, const fr_engine_options *opts, fr_engine **out,
                                char **errors)
{
    if (errors)
        *errors = NULL;
    if (!path || !out)
        return FR_E_INVALID;
    *out = NULL;
    fr_engine_options o = {0};
    if (opts)
        memcpy(&o, opts, opts->struct_size < sizeof o ? opts->struct_size : sizeof o);
    fr_diags d;
    fr__diags_init(&d, path);
    fr_manifest *m = fr__manifest_load(path, &d);
    fr_pipeline *p = NULL;
    if (m && d.n == 0) {
        fr_build_options bo = {.plugin_dirs = o.plugin_dirs,
                               .n_plugin_dirs = o.n_plugin_dirs,
                               .use_env_path = o.use_env_plugin_path};
        p = fr__pipeline_build(m, &bo, &d);
    } else {
        fr__manifest_free(m);
    }
    if (!p) {
        fr__diags_sort(&d);
        if (errors && d.n)
            *errors = diags_text(&d);
        int had = d.n > 0;
        fr__diags_free(&d);
        return had ? FR_E_CONFIG : FR_E_NOMEM;
    }
    fr__diags_free(&d);
    fr_engine *e = calloc(1, sizeof *e);
    if (!e) {
        fr__pipeline_free(p);
        return FR_E_NOMEM;
    }
    e->p = p;
    e->run_on_caller = o.run_on_caller != 0;
    pthread_mutex_init(&e->run_mu, NULL);
    *out = e;
    return FR_OK;
}

FR_API fr_status fr_engine_run(fr_engine *e, const char *input_json, uint64_t seed,
                               char **report_json)
{
    if (!e || !report_json)
        return FR_E_INVALID;
    *report_json = NULL;
    fr_run_options ro = {.input_json = input_json,
                         .seed = seed,
                         .has_seed = 1,
                         .run_inline = e->run_on_caller ? FR_RUN_ON_CALLER : FR_RUN_ON_DRIVER};
    fr_run_result r;
    pthread_mutex_lock(&e->run_mu);
    fr_status st = fr__pipeline_run(e->p, &ro, &r);
    pthread_mutex_unlock(&e->run_mu);
    if (st != FR_OK)
        return st;
    *report_json = fr__report_json(e->p, &r, 0);
    fr__run_result_free(&r);
    return *report_json ? FR_OK : FR_E_NOMEM;
}

FR_API void fr_engine_cancel(fr_engine *e)
{
    if (e)
        fr__pipeline_cancel(e->p);
}

FR_API void fr_engine_close(fr_engine *e)
{
    if (!e)
        return;
    fr__pipeline_free(e->p);
    pthread_mutex_destroy(&e->run_mu);
    free(e);
}

FR_API void fr_free(void *ptr)
{
    free(ptr);
}
