/* What the host knows of the plugins it calls: a loaded plugin file, an initialised
 * instance of it (one per agent and per provider of a manifest), and the record of a
 * provider call.  Filled by the loader (core/plugin/loader.c) and the pipeline builder
 * (core/engine/pipeline.c); read by the host, the helpers and the engine. */
#ifndef FR_CORE_INSTANCE_H
#define FR_CORE_INSTANCE_H

#include <stdint.h>

#include <fluxroute/plugin.h>

#include "manifest/manifest.h"
#include "manifest/options.h"

/* A plugin file the loader has loaded (core/plugin/loader.h); kept for the process's
 * life. */
typedef struct fr_loaded_plugin {
    char *name;   /* descriptor name == file name without .so */
    char *path;   /* path the file was loaded from */
    char *origin; /* which search entry found it ("--plugin-dir", ...) */
    const fr_plugin *desc;
    void *handle;    /* dlopen handle */
    char sha256[65]; /* hex digest of the file */
} fr_loaded_plugin;

/* An initialised plugin instance: one per agent and per provider of the manifest. */
typedef struct fr_instance {
    const char *id; /* agent or provider id (borrowed from the manifest) */
    const fr_loaded_plugin *plugin;
    fr_config config;
    void *state; /* from init() */
    int initialised;
    struct fr_instance *provider;  /* agents: the `provider:` instance, or NULL */
    struct fr_breaker *breaker;    /* NULL unless circuit_breaker: (or CIRCUIT_*) is set */
    const fr_agent_cfg *agent_cfg; /* agents: their manifest entry */
    struct helper_pool *helpers;   /* isolation: process: idle helper processes */
} fr_instance;

/* A provider call the host made for an attempt (host->provider_call, in process or on
 * behalf of an isolated helper) that the provider plugin completed, with the usage the
 * provider reported in its response: what serve bills (core/serve/serve_usage.c), never what a
 * step outputs.  Recorded by core/host/host.c without parsing (a linear scan). */
typedef struct fr_provider_use {
    const char *provider;                /* provider id (borrowed from the manifest) */
    char model[128];                     /* the response's "model", "" when absent */
    int64_t input_tokens, output_tokens; /* usage as reported; 0 when absent */
    int ordinal;       /* 1-based among the attempt's provider calls, failed ones included */
    int usage_unknown; /* the response's usage was null or absent: tokens unknown, not 0 */
} fr_provider_use;

#endif
