/* The manifest: parsing a YAML pipeline description into a validated structure.
 *
 * Parsing checks everything that needs no plugin: keys, types, durations, ids,
 * references between agents, providers and steps, dependencies and cycles, namespace
 * and roles.  Plugin resolution and option checking happen when the engine builds a
 * pipeline (they need the loader); they add to the same diagnostics list.
 *
 * A parsed manifest is read-only and may be shared between threads. */
#ifndef FR_CORE_MANIFEST_H
#define FR_CORE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "base/diag.h"
#include "manifest/rbac.h"
#include "base/yaml_tree.h"

typedef enum fr_backoff {
    FR_BACKOFF_CONSTANT = 0,
    FR_BACKOFF_LINEAR,
    FR_BACKOFF_EXPONENTIAL,
    FR_BACKOFF_EXPONENTIAL_JITTER
} fr_backoff;

typedef enum fr_isolation { FR_ISOLATION_NONE = 0, FR_ISOLATION_PROCESS = 1 } fr_isolation;

typedef struct fr_retry_cfg {
    int max_attempts;      /* >= 1; default 1 */
    fr_backoff backoff;    /* default exponential */
    int64_t base_delay_us; /* default 100ms */
    int64_t max_delay_us;  /* default 30s */
} fr_retry_cfg;

typedef struct fr_breaker_cfg {
    int enabled;              /* 1 when `circuit_breaker:` was given */
    int failure_threshold;    /* default 5 */
    int64_t reset_timeout_us; /* default 60s */
    int64_t probe_timeout_us; /* default 5s */
} fr_breaker_cfg;

typedef struct fr_provider_cfg {
    int external; /* not declared by the manifest: the server's, used by an agent */
    char *id;
    char *plugin;                /* plugin name */
    const fr_ynode *node;        /* the provider's mapping (for positions) */
    const fr_ynode *plugin_node; /* `plugin:` value node */
    const fr_ynode *config;      /* `config:` mapping or NULL; borrowed from the doc */
    fr_breaker_cfg breaker;
} fr_provider_cfg;

typedef struct fr_agent_cfg {
    char *id;
    char *plugin;        /* "echo" when not given */
    int plugin_implicit; /* 1 when `plugin:` was absent (validate prints a note) */
    const fr_ynode *node;
    const fr_ynode *plugin_node; /* NULL when implicit */
    char *provider;              /* provider id or NULL */
    int provider_index;          /* index into providers, -1 when none */
    const fr_ynode *config;      /* `config:` mapping or NULL */
    int64_t timeout_us;          /* 0: router.default_timeout */
    fr_retry_cfg retry;
    fr_breaker_cfg breaker;
    fr_isolation isolation;
    char **fallback; /* agent ids */
    int *fallback_index;
    size_t n_fallback;
} fr_agent_cfg;

typedef struct fr_step_cfg {
    char *id;        /* the step name */
    char *agent;     /* agent id; defaults to the step name */
    int agent_index; /* index into agents */
    const fr_ynode *node;
    char **depends_on;
    int *dep_index; /* indexes into steps */
    size_t n_deps;
} fr_step_cfg;

typedef struct fr_manifest {
    char *path; /* as given (for messages) */
    char *dir;  /* directory of the manifest, for relative paths */
    char *text; /* full text */
    size_t text_len;
    char text_sha256[65]; /* hex sha256 of text; "" until a user (serve's audit) fills it */
    char *graph_text;     /* fr__manifest_graph_memo's text (owned), or NULL until then */
    fr_ydoc doc;

    /* router */
    int worker_pool_size;       /* default 10 (WORKER_POOL_SIZE env) */
    int channel_buffer;         /* accepted for compatibility, unused */
    int64_t default_timeout_us; /* default 30s */
    int64_t run_timeout_us;     /* 0 = none */
    /* router.stream_restart (default 1): 0 when a step whose failed attempt had already
     * streamed text takes no retry and no fallback (it fails: the OpenAI gateway's "no
     * silent short answers", core/serve/gateway.c). */
    int stream_restart;
    char *namespace_;                   /* normalised; "default" when absent */
    fr_role_set rbac[FR_ACTION_COUNT_]; /* allowed roles per action */
    char *lease_key;                    /* router.lease.key or NULL */
    int lease_enabled;

    char **plugin_dirs; /* plugins.dirs resolved against dir */
    size_t n_plugin_dirs;

    fr_provider_cfg *providers;
    size_t n_providers;
    fr_agent_cfg *agents;
    size_t n_agents;
    fr_step_cfg *steps;
    size_t n_steps;

    int *topo;        /* step indexes in deterministic topological order */
    char *input_json; /* compact JSON of `input:`; "{}" when absent */

    /* Notes for the run report ("notes": [...]): what a server changed in the manifest
     * before building it (e.g. a clamped worker_pool_size).  Owned; added with
     * fr__manifest_note before the pipeline is built or while it is built (serve's plugin
     * policy), read-only after. */
    char **notes;
    size_t n_notes;
} fr_manifest;

/* Parses and validates manifest text.  `path` names it in messages; `base_dir` resolves
 * plugins.dirs (NULL: the directory of `path`).  Every problem is added to `diags` (which
 * the caller initialised with the path), in any order: the caller sorts.  Returns the
 * manifest (caller frees with fr__manifest_free) when parsing got far enough to build
 * one, even if diags are non-empty (the caller must check diags->n); NULL on fatal errors
 * (YAML syntax, OOM). */
fr_manifest *fr__manifest_parse(const char *path, const char *text, size_t len,
                                const char *base_dir, fr_diags *diags);

/* As fr__manifest_parse, with bounds on the YAML document (NULL: the generous defaults
 * of yaml_tree.h).  `limits->exceeded` tells whether a limit stopped parsing. */
fr_manifest *fr__manifest_parse_ex(const char *path, const char *text, size_t len,
                                   const char *base_dir, fr_yaml_limits *limits, fr_diags *diags);

/* As fr__manifest_parse_ex, for a server that defines `providers` (a providers file,
 * parsed by fr__manifest_parse_providers): an agent may name one of them without the
 * manifest declaring it; it is then added to the manifest's providers, marked external,
 * with its configuration borrowed from `providers` (which must outlive the manifest and
 * its pipelines). */
fr_manifest *fr__manifest_parse_with_providers(const char *path, const char *text, size_t len,
                                               const char *base_dir, fr_yaml_limits *limits,
                                               const fr_manifest *providers, fr_diags *diags);

/* Adds a note (printf-style) to the manifest's report notes.  Returns 0, -1 on OOM. */
int fr__manifest_note(fr_manifest *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses a file holding only a `providers:` list (the server's providers for `serve`),
 * with the same checks as a manifest's providers.  Same return contract. */
fr_manifest *fr__manifest_parse_providers(const char *path, const char *text, size_t len,
                                          fr_diags *diags);

/* Replaces each of m's providers by the provider of the same id in `from` (its plugin,
 * config and breaker; the config is borrowed, so `from` must outlive m and its
 * pipelines).  With require_all, a provider of m that `from` lacks is an error: returns
 * -1 with its id in err.  Otherwise such a provider is kept as m declares it.  Returns 0,
 * or -2 when memory runs out.  Not thread-safe for one m. */
int fr__manifest_use_providers(fr_manifest *m, const fr_manifest *from, int require_all, char *err,
                               size_t errlen);

/* Reads the file and parses it.  An unreadable file is one diagnostic naming the OS
 * error; returns NULL then. */
fr_manifest *fr__manifest_load(const char *path, fr_diags *diags);

void fr__manifest_free(fr_manifest *m);

/* Checks that the templates of each step's agent and fallbacks ({{steps.ID...}} in any
 * string of their config) name only the step's dependencies; each problem is a diagnostic
 * at the string's position (core/manifest/manifest_templates.c).  Called by the parsers. */
void fr__manifest_check_templates(const fr_manifest *m, fr_diags *d);

/* Index of the step / agent / provider with that id, or -1. */
int fr__manifest_step_index(const fr_manifest *m, const char *id);
int fr__manifest_agent_index(const fr_manifest *m, const char *id);
int fr__manifest_provider_index(const fr_manifest *m, const char *id);

/* Namespace rule: after trim + lower-case, ^[a-z][a-z0-9_-]{1,31}$.  Returns 0 when
 * valid and writes the normalised form to out (size >= 33). */
int fr__namespace_normalise(const char *in, char *out, size_t size);

#endif
