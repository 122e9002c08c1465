/* FluxRoute embedding API: load a pipeline manifest once, run it many times.
 *
 * Link with `pkg-config --libs fluxroute` (libfluxroute).  The CLI is built on the same
 * engine.  Plugins are found as the CLI finds them: the directories given in the
 * options, FLUXROUTE_PLUGIN_PATH (when enabled), the manifest's plugins.dirs, then the
 * installed plugin directory.
 *
 * Since 0.1 (ABI 1.0). */
#ifndef FLUXROUTE_H
#define FLUXROUTE_H

#include <stddef.h>
#include <stdint.h>

#include <fluxroute/plugin.h>
#include <fluxroute/status.h>
#include <fluxroute/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A loaded pipeline: manifest validated, plugins loaded and initialised, worker pool
 * started.  Opaque. */
typedef struct fr_engine fr_engine;

/* Options for fr_engine_open.  Zero-initialise, then set struct_size. */
typedef struct fr_engine_options {
    uint32_t struct_size;           /* sizeof(fr_engine_options) */
    const char *const *plugin_dirs; /* searched first, in order; borrowed for the call */
    size_t n_plugin_dirs;
    int use_env_plugin_path; /* 1: also search FLUXROUTE_PLUGIN_PATH */
    /* Since 0.1 (unreleased; read only when struct_size covers it).  1: fr_engine_run
     * executes ready steps on the calling thread instead of handing each run to a worker
     * thread and waiting (parallel steps still use the workers): no thread hand-off per
     * run, which saves a wake-up on each side.  A plugin that hangs past its deadline is
     * still abandoned and the run finishes on a worker, but fr_engine_run returns only
     * when that plugin call returns; a plugin that hung once never runs on the caller's
     * thread again.  0 (default): the engine's driver thread runs the steps the same way while
     * fr_engine_run waits; a hung plugin there is abandoned and the call still returns. */
    int run_on_caller;
} fr_engine_options;

/* Loads and validates the manifest at `path`, resolves and initialises its plugins and
 * starts its worker pool.  `opts` may be NULL.
 * Returns FR_OK and sets *out; or FR_E_CONFIG when the manifest or a plugin is invalid,
 * FR_E_NOMEM.  When `errors` is not NULL it receives every problem, one
 * "file:line:col: message" per line (NULL when there were none); free it with fr_free.
 * Thread-safety: may be called from any thread; engines are independent. */
fr_status fr_engine_open(const char *path, const fr_engine_options *opts, fr_engine **out,
                         char **errors);

/* Runs the pipeline once with `input_json` (NULL: the manifest's `input:`) and `seed`
 * (the per-step random streams derive from it).  On FR_OK, *report_json receives the
 * run report (docs/reference.md, "The run report"); free it with fr_free.  A run whose steps
 * failed still returns FR_OK: see "status" in the report.  Returns FR_E_INVALID when
 * the input is not one JSON value, FR_E_NOMEM on allocation failure.
 * Thread-safety: runs of one engine are serialised (a second caller waits). */
fr_status fr_engine_run(fr_engine *e, const char *input_json, uint64_t seed, char **report_json);

/* Cancels the run in progress on `e`, if any; it ends with status "cancelled".  Safe to
 * call from any thread (not from a signal handler). */
void fr_engine_cancel(fr_engine *e);

/* Stops the workers and finalises the plugin instances.  Plugins stay loaded for the
 * process's life.  NULL is ignored.  No run may be in progress. */
void fr_engine_close(fr_engine *e);

/* Frees memory returned by this API.  NULL is ignored. */
void fr_free(void *ptr);

#ifdef __cplusplus
}
#endif
#endif /* FLUXROUTE_H */
