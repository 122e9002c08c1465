/* serve: manifests (named ones only from the manifest directory, inline ones without
 * plugin directories), the server's providers replacing the manifest's, pipelines pooled
 * per named manifest, runs (synchronous, asynchronous, streamed as Server-Sent Events),
 * traces, replays, and bounded retention. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/fileio.h"
#include "controlplane/cp_client.h"
#include "base/duration.h"
#include "host/effects.h"
#include "observe/observe.h"
#include "host/host.h"
#include "http/http_body.h"
#include "engine/pipeline.h"
#include "plugin/quarantine.h"
#include "trace/replay.h"
#include "base/str.h"
#include "manifest/manifest_graph.h"
#include "manifest/options.h"
#include "plugin/loader.h"
#include "serve/run_queue.h"
#include "serve/run_store.h"
#include "base/secure_random.h"
#include "serve/serve.h"
#include "serve/serve_manifests.h"
#include "serve/serve_records.h"
#include "serve/serve_sse.h"
#include "serve/serve_quota.h"
#include "serve/serve_journal.h"
#include "serve/serve_usage.h"
#include "serve/serve_writer.h"
#include "trace/trace.h"

/* ---- pipelines -------------------------------------------------------------------------- */

typedef struct idle_pipeline {
    struct idle_pipeline *next;
    fr_pipeline *p;
} idle_pipeline;

/* Built pipelines of one named manifest (a given file version), ready for reuse, and
 * the namespace that version declares (the server's own reading, never the caller's). */
typedef struct manifest_pool {
    struct manifest_pool *next;
    char *name;
    struct stat version; /* device, inode, size, mtime of the file the pool was built from */
    int ns_read;         /* namespace_ is this version's */
    char *namespace_;    /* NULL when ns_read and the file declares none we can read */
    int64_t checked_us;  /* when the file was last stat'ed (monotonic) */
    int64_t run_us;      /* moving average of its runs' wall time; -1: none yet */
    idle_pipeline *idle;
    size_t n_idle;
    char *text; /* a gateway pool: the synthesised text its pipelines were built from */
} manifest_pool;

#define MAX_IDLE_PER_MANIFEST 32
#define MANIFEST_RECHECK_US   1000000
/* Synchronous runs of a manifest whose runs take longer than this on average (they wait
 * on providers) get a thread of their own; faster ones run on the request thread. */
#define SLOW_RUN_US 10000
/* What a traced run may record (effects of every attempt together): each is a small JSON
 * object, so this bounds a trace's record in memory while the run goes. */
#define FR_SERVE_MAX_RUN_EFFECTS 100000
/* A quick run still going after this long leaves its request thread: the connection is
 * suspended and the reply comes from the thread that completes the run.  So no plugin,
 * hung or slow, holds a request thread longer. */
#define QUICK_HOLD_US 50000
/* How long a GET of a run waits for the record of a run already answered (a gateway run's,
 * written by r->writer after the answer): a client that has its answer finds the run
 * finished. */
#define RECORD_WAIT_US 5000000

typedef fr_run_entry run_entry;

struct fr_runs {
    fr_runs_config cfg;
    pthread_mutex_t mu;
    pthread_cond_t idle_cv; /* in_flight dropped */
    manifest_pool *pools;
    fr_run_store *runs;  /* runs and admission, by tenant */
    size_t idle_threads; /* worker threads of all idle pipelines (under --max-threads x 8) */
    fr_records *records; /* --state redis: records any replica reads (serve_records.c) */
    fr_writer *writer;   /* gateway runs' records, after their answer (serve_writer.h) */
    atomic_int held;     /* a request thread runs a gateway run itself (fr__runs_gateway) */
};

/* ---- manifest pools (r->mu held for these) ---- */

static manifest_pool *find_pool(fr_runs *r, const char *name)
{
    manifest_pool *mp = r->pools;
    while (mp && strcmp(mp->name, name) != 0)
        mp = mp->next;
    return mp;
}

/* An idle pipeline of the pool, or NULL. */
static fr_pipeline *pop_idle(fr_runs *r, manifest_pool *mp)
{
    idle_pipeline *ip = mp ? mp->idle : NULL;
    if (!ip)
        return NULL;
    mp->idle = ip->next;
    mp->n_idle--;
    fr_pipeline *p = ip->p;
    free(ip);
    r->idle_threads -= p->pool_size;
    return p;
}

static void drop_idle(fr_runs *r, manifest_pool *mp)
{
    fr_pipeline *p;
    while ((p = pop_idle(r, mp)) != NULL)
        fr__pipeline_free(p);
}

/* ---- for the records' watcher (serve_records.c) ------------------------------------------ */

static void each_running(void *ud, void (*fn)(void *fn_ud, fr_run_entry *e), void *fn_ud)
{
    fr_runs *r = ud;
    pthread_mutex_lock(&r->mu);
    fr__run_store_each_running(r->runs, fn, fn_ud);
    pthread_mutex_unlock(&r->mu);
}

static void cancel_here(void *ud, const char *id)
{
    fr_runs *r = ud;
    pthread_mutex_lock(&r->mu);
    run_entry *e = fr__run_store_find(r->runs, id);
    if (e && !e->done && e->p)
        fr__pipeline_cancel(e->p);
    pthread_mutex_unlock(&r->mu);
}

fr_runs *fr__runs_new(const fr_runs_config *cfg)
{
    fr_runs *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->cfg = *cfg;
    fr_run_limits lim = {.max_running = cfg->max_concurrent,
                         .max_running_per_tenant = cfg->max_per_tenant,
                         .retention_us = cfg->retention_us,
                         .retention_count = cfg->retention_count,
                         .retention_per_tenant = cfg->retention_per_tenant,
                         .retention_bytes = cfg->retention_bytes};
    r->runs = fr__run_store_new(&lim);
    if (!r->runs) {
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->idle_cv, NULL);
    fr_records_hooks hooks = {.each_running = each_running, .cancel = cancel_here, .ud = r};
    r->records = fr__records_start(&hooks, cfg);
    /* Without a writer thread, the records are written before the answers. */
    r->writer = fr__writer_new(FR_SERVE_WRITER_BOUND);
    return r;
}

void fr__runs_free(fr_runs *r)
{
    if (!r)
        return;
    fr__writer_free(r->writer); /* the records still waiting are written first */
    fr__records_stop(r->records);
    while (r->pools) {
        manifest_pool *mp = r->pools;
        r->pools = mp->next;
        drop_idle(r, mp);
        free(mp->name);
        free(mp->namespace_);
        free(mp->text);
        free(mp);
    }
    fr__run_store_free(r->runs);
    pthread_cond_destroy(&r->idle_cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

size_t fr__runs_drain(fr_runs *r, int64_t max_wait_us)
{
    int64_t until = fr__mono_us() + max_wait_us;
    pthread_mutex_lock(&r->mu);
    while (fr__run_store_in_flight(r->runs) > 0 && fr__mono_us() < until) {
        pthread_mutex_unlock(&r->mu);
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&r->mu);
    }
    size_t left = fr__run_store_in_flight(r->runs);
    pthread_mutex_unlock(&r->mu);
    /* Answered runs whose records still wait for the writer are not in flight: written
     * here, so that even a server that leaves without the runs left keeps them. */
    fr__writer_flush(r->writer);
    return left;
}

int fr__runs_admit(fr_runs *r, const fr_identity *who, fr_reply *out)
{
    pthread_mutex_lock(&r->mu);
    fr_admit_result a = fr__run_store_admit(r->runs, who->tenant);
    size_t local = fr__run_store_tenant_in_flight(r->runs, who->tenant);
    pthread_mutex_unlock(&r->mu);
    if (a == FR_ADMIT_OK && fr__records_admit(r->records, who, local, out) != 0) {
        /* the tenant's share is taken on other replicas */
        pthread_mutex_lock(&r->mu);
        fr__run_store_leave(r->runs, who->tenant);
        pthread_cond_broadcast(&r->idle_cv);
        pthread_mutex_unlock(&r->mu);
        return -1;
    }
    /* -- issue 26: the tenant's and key's limits (core/serve/serve_quota.c) -- */
    if (a == FR_ADMIT_OK && fr__quota_admit(r->cfg.quota, who, out) != 0) {
        pthread_mutex_lock(&r->mu);
        fr__run_store_leave(r->runs, who->tenant);
        pthread_cond_broadcast(&r->idle_cv);
        pthread_mutex_unlock(&r->mu);
        return -1;
    }
    /* -- end issue 26 -- */
    if (a == FR_ADMIT_OK)
        return 0;
    if (a == FR_ADMIT_NO_MEMORY) {
        fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
        return -1;
    }
    /* Both caps answer 429 too_many_runs; the message says which one was reached. */
    if (a == FR_ADMIT_TENANT_FULL)
        fr__reply_error(out, FR_HE_TOO_MANY_RUNS,
                        "tenant \"%s\" has %zu runs in flight, its cap (--max-runs-per-tenant); "
                        "retry shortly",
                        who->tenant, r->cfg.max_per_tenant);
    else
        fr__reply_error(out, FR_HE_TOO_MANY_RUNS,
                        "%zu runs in flight on this server, its cap (--max-runs); retry shortly",
                        r->cfg.max_concurrent);
    out->retry_after = 1;
    return -1;
}

void fr__runs_leave(fr_runs *r, const fr_identity *who)
{
    fr__quota_leave(r->cfg.quota, who); /* issue 26 */
    pthread_mutex_lock(&r->mu);
    fr__run_store_leave(r->runs, who->tenant);
    pthread_cond_broadcast(&r->idle_cv);
    pthread_mutex_unlock(&r->mu);
}

/* Whether the manifest's config of plugin `name` and the server's are the same once the
 * plugin's defaults are filled in (*differs names the first option that is not).  A
 * plugin that cannot be loaded is not compared: building the pipeline reports it. */
static int same_config(const fr_runs *r, const char *name, const fr_ynode *mine,
                       const fr_ynode *server, const char **differs)
{
    *differs = NULL;
    fr_loader *l = fr__loader_new();
    const fr_loaded_plugin *lp = NULL;
    char err[512];
    for (size_t i = 0; l && i < r->cfg.n_plugin_dirs; i++)
        fr__loader_add_dir(l, r->cfg.plugin_dirs[i], "--plugin-dir");
    if (l)
        fr__loader_add_dir(l, fr__loader_builtin_dir(), "built-in");
    int same = !l || fr__loader_get(l, name, &lp, err, sizeof err) != 0 ||
               fr__options_same(lp->desc, mine, server, differs);
    fr__loader_free(l);
    return same;
}

/* A manifest may use the server's providers without declaring them (the parser adds
 * those it names).  One it declares must be the server's too (else unknown_provider), and
 * declared alike: the same plugin and, once defaults are filled, the same config (else
 * provider_conflict), so that a manifest never silently runs against another provider
 * than it says.  Then the server's definitions replace the manifest's. */
static int override_providers(fr_runs *r, fr_manifest *m, fr_reply *out)
{
    const fr_manifest *sp = r->cfg.providers;
    for (size_t i = 0; i < m->n_providers; i++) {
        const fr_provider_cfg *pc = &m->providers[i];
        int k = sp ? fr__manifest_provider_index(sp, pc->id) : -1;
        if (pc->external || k < 0)
            continue;
        const fr_provider_cfg *s = &sp->providers[k];
        const char *differs = NULL;
        if (strcmp(pc->plugin, s->plugin) != 0) {
            fr__reply_error(out, FR_HE_PROVIDER_CONFLICT,
                            "provider \"%s\": the server defines it, with plugin \"%s\"; this "
                            "manifest declares plugin \"%s\".  Leave it out of the manifest to "
                            "use the server's, or give yours another id",
                            pc->id, s->plugin, pc->plugin);
            return -1;
        }
        if (!same_config(r, pc->plugin, pc->config, s->config, &differs)) {
            fr__reply_error(out, FR_HE_PROVIDER_CONFLICT,
                            "provider \"%s\": the server defines it with another config (%s%s%s "
                            "once defaults are filled).  Leave it out of the manifest to use "
                            "the server's, or give yours another id",
                            pc->id, differs ? "option \"" : "it does not validate",
                            differs ? differs : "", differs ? "\" differs" : "");
            return -1;
        }
    }
    char id[256];
    int rc = fr__manifest_use_providers(m, sp, 1, id, sizeof id);
    if (rc == -1)
        fr__reply_error(out, FR_HE_UNKNOWN_PROVIDER,
                        "provider \"%s\" is not configured on this server (providers come "
                        "from the server's --providers file)",
                        id);
    else if (rc != 0)
        fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
    return rc == 0 ? 0 : -1;
}

/* Diagnostics as a 400 reply with every error and its position. */
static void reply_diags(fr_reply *out, fr_diags *d)
{
    fr__diags_sort(d);
    json_object *o = json_object_new_object(), *e = json_object_new_object();
    json_object_object_add(e, "code",
                           json_object_new_string(fr__http_error_code(FR_HE_INVALID_MANIFEST)));
    json_object_object_add(e, "message",
                           json_object_new_string(d->n ? d->items[0].message : "invalid manifest"));
    json_object *list = json_object_new_array();
    for (size_t i = 0; i < d->n; i++) {
        json_object *it = json_object_new_object();
        json_object_object_add(it, "line", json_object_new_int(d->items[i].line));
        json_object_object_add(it, "col", json_object_new_int(d->items[i].col));
        json_object_object_add(it, "message", json_object_new_string(d->items[i].message));
        json_object_array_add(list, it);
    }
    json_object_object_add(e, "errors", list);
    json_object_object_add(o, "error", e);
    fr__reply_json(out, fr__http_error_status(FR_HE_INVALID_MANIFEST), o);
}

/* What a request names: a manifest file, or inline YAML. */
typedef struct manifest_ref {
    const char *name; /* in the manifest directory */
    const char *yaml; /* inline */
} manifest_ref;

static int manifest_ref_from(json_object *body, manifest_ref *ref, fr_reply *out)
{
    json_object *v;
    memset(ref, 0, sizeof *ref);
    if (json_object_object_get_ex(body, "trace_path", NULL)) {
        fr__reply_error(out, FR_HE_TRACE_PATH_REFUSED,
                        "the server reads no paths: upload the trace as \"trace\" or name a run "
                        "with \"run_id\"");
        return -1;
    }
    if (json_object_object_get_ex(body, "manifest_yaml", &v)) {
        if (!json_object_is_type(v, json_type_string)) {
            fr__reply_error(out, FR_HE_BAD_REQUEST, "manifest_yaml must be a string");
            return -1;
        }
        ref->yaml = json_object_get_string(v);
        return 0;
    }
    /* `manifest_path` (the original's field) is taken as a name, with the same checks. */
    if (json_object_object_get_ex(body, "manifest", &v) ||
        json_object_object_get_ex(body, "manifest_path", &v)) {
        if (!json_object_is_type(v, json_type_string) ||
            !fr__serve_manifest_name_ok(json_object_get_string(v))) {
            fr__reply_error(out, FR_HE_BAD_MANIFEST_NAME,
                            "a manifest is named by a file name in the server's manifest "
                            "directory ending in .yaml or .yml: no '/', '..' or absolute paths");
            return -1;
        }
        ref->name = json_object_get_string(v);
        return 0;
    }
    fr__reply_error(out, FR_HE_BAD_REQUEST, "give \"manifest\" (a name) or \"manifest_yaml\"");
    return -1;
}

/* Parses and builds a pipeline (no pool).  For inline manifests plugin directories are
 * refused.  The server's limits (core/serve/serve_limits.h) apply to every manifest alike.
 * Returns NULL with the reply filled. */
static fr_pipeline *build_pipeline(fr_runs *r, const char *label, const char *text, size_t len,
                                   int inline_manifest, int replay, fr_reply *out)
{
    const fr_serve_limits *lim = &r->cfg.limits;
    if ((int64_t)len > lim->value[FR_LIMIT_MAX_BODY]) {
        /* Request bodies never get here (413): a file in the manifest directory. */
        fr__reply_limit(
            out, lim, FR_LIMIT_MAX_BODY,
            "manifest \"%s\" has %zu bytes; this server reads at most %lld (--max-body)", label,
            len, (long long)lim->value[FR_LIMIT_MAX_BODY]);
        return NULL;
    }
    fr_diags d;
    fr__diags_init(&d, label);
    fr_yaml_limits yl = fr__serve_yaml_limits(lim);
    fr_manifest *m = fr__manifest_parse_with_providers(label, text, len, r->cfg.manifest_dir, &yl,
                                                       r->cfg.providers, &d);
    fr_limit_id over;
    char why[512];
    if (yl.exceeded) {
        fr__diags_sort(&d);
        fr__reply_limit(out, lim, (fr_limit_id)fr__limit_by_name(yl.exceeded), "%s:%d:%d: %s",
                        label, d.n ? d.items[0].line : 0, d.n ? d.items[0].col : 0,
                        d.n ? d.items[0].message : yl.exceeded);
    } else if (m && fr__serve_limits_apply(lim, m, &over, why, sizeof why) != 0) {
        fr__reply_limit(out, lim, over, "%s: %s", label, why);
    }
    if (out->limit) {
        fr__diags_free(&d);
        fr__manifest_free(m);
        return NULL;
    }
    if (!m || d.n > 0) {
        reply_diags(out, &d);
        fr__diags_free(&d);
        fr__manifest_free(m);
        return NULL;
    }
    if (fr__policy_check_manifest(&r->cfg, m, out) != 0) {
        fr__diags_free(&d);
        fr__manifest_free(m);
        return NULL;
    }
    if (inline_manifest && m->n_plugin_dirs > 0) {
        fr__reply_error(out, FR_HE_PLUGIN_DIRS_REFUSED,
                        "an inline manifest cannot add plugin directories (plugins.dirs)");
        fr__diags_free(&d);
        fr__manifest_free(m);
        return NULL;
    }
    if (override_providers(r, m, out) != 0) {
        fr__diags_free(&d);
        fr__manifest_free(m);
        return NULL;
    }
    fr_build_options bo = {.plugin_dirs = r->cfg.plugin_dirs,
                           .n_plugin_dirs = r->cfg.n_plugin_dirs,
                           .agent_policy = fr__policy_agent,
                           .policy_ud = &r->cfg};
    fr__host_set_replay_mode(replay);
    fr_pipeline *p = fr__pipeline_build(m, &bo, &d);
    fr__host_set_replay_mode(0);
    if (!p)
        reply_diags(out, &d);
    fr__diags_free(&d);
    return p;
}

static void audit(const fr_identity *who, fr_action action, const char *manifest,
                  const fr_manifest *m, const char *run_id, const char *decision,
                  const char *result, const char *error);

/* The one answer for a named manifest the caller may not see, whatever the reason:
 * missing, outside the directory, not a manifest, another namespace's, or of no
 * namespace we can read.  Byte for byte the same, so it tells nothing. */
static void manifest_not_found(fr_reply *out, const char *name)
{
    fr__reply_error(out, FR_HE_MANIFEST_NOT_FOUND, "no manifest \"%s\" on this server", name);
}

/* 1 when `ns` (a pool's namespace, NULL for none) is the caller's. */
static int ns_is(const char *ns, const fr_identity *who)
{
    return ns && strcmp(ns, who->namespace_) == 0;
}

/* The namespace of `text`, the named manifest `mp` at version `st`, recorded in the pool
 * (if it still holds that version).  A file of no readable namespace is logged once per
 * version for the operator: callers only ever see 404 for it.  Returns 1 when it is the
 * caller's namespace. */
static int learn_namespace(fr_runs *r, manifest_pool *mp, const struct stat *st, const char *name,
                           const char *text, size_t len, const fr_identity *who)
{
    char ns[40];
    int known = fr__serve_manifest_namespace(text, len, ns, sizeof ns) == 0;
    int log = 0;
    pthread_mutex_lock(&r->mu);
    if (mp && fr__serve_manifest_same_version(&mp->version, st) && !mp->ns_read) {
        free(mp->namespace_);
        mp->namespace_ = known ? strdup(ns) : NULL;
        mp->ns_read = 1;
        log = !known;
    }
    pthread_mutex_unlock(&r->mu);
    if (log)
        fprintf(stderr,
                "fluxroute serve: manifest \"%s\": its router.namespace cannot be read (not "
                "YAML, or not a valid namespace); every caller gets 404 until it is fixed (check "
                "it with fluxroute validate)\n",
                name);
    return known && strcmp(ns, who->namespace_) == 0;
}

/* A pipeline for the request: from the named manifest's pool, or built for inline YAML.
 * *pool is set when it must go back to a pool.  A named manifest is checked against the
 * caller's namespace before anything of it (diagnostics included) can reach the reply. */
static fr_pipeline *acquire(fr_runs *r, const fr_identity *who, fr_action action,
                            const manifest_ref *ref, manifest_pool **pool, fr_reply *out)
{
    *pool = NULL;
    if (ref->yaml)
        return build_pipeline(r, "manifest_yaml", ref->yaml, strlen(ref->yaml), 1, 0, out);
    /* A file checked less than a second ago is taken as unchanged: edits are picked up
     * within a second, and a busy server does not stat the manifest per request. */
    int64_t now = fr__mono_us();
    pthread_mutex_lock(&r->mu);
    manifest_pool *known = find_pool(r, ref->name);
    int recent = known && now - known->checked_us < MANIFEST_RECHECK_US && known->ns_read;
    int mine = recent && ns_is(known->namespace_, who);
    fr_pipeline *fresh = mine ? pop_idle(r, known) : NULL;
    pthread_mutex_unlock(&r->mu);
    if (fresh) {
        *pool = known;
        return fresh;
    }
    if (recent && !mine)
        goto not_found;
    fr_manifest_file f;
    if (fr__serve_manifest_resolve(r->cfg.manifest_dir, ref->name, &f) != 0)
        goto not_found;
    pthread_mutex_lock(&r->mu);
    manifest_pool *mp = find_pool(r, ref->name);
    if (mp && !fr__serve_manifest_same_version(&mp->version, &f.st)) {
        /* The file changed: forget the old builds and what it declared. */
        drop_idle(r, mp);
        mp->version = f.st;
        mp->ns_read = 0;
    }
    if (!mp && (mp = calloc(1, sizeof *mp)) != NULL) {
        mp->name = strdup(ref->name);
        mp->run_us = -1;
        mp->version = f.st;
        mp->next = r->pools;
        r->pools = mp;
    }
    if (mp)
        mp->checked_us = now;
    int cached = mp && mp->ns_read, cached_mine = cached && ns_is(mp->namespace_, who);
    fr_pipeline *p = cached_mine ? pop_idle(r, mp) : NULL;
    pthread_mutex_unlock(&r->mu);
    if (cached && !cached_mine) {
        fr__serve_manifest_file_free(&f);
        goto not_found;
    }
    if (!p) {
        /* The namespace is read from the very text that is built, so diagnostics of a
         * file that changed in between cannot slip through. */
        size_t len = 0;
        char *text = fr__serve_manifest_read(&f, &len);
        if (!text || !learn_namespace(r, mp, &f.st, ref->name, text, len, who)) {
            free(text);
            fr__serve_manifest_file_free(&f);
            goto not_found;
        }
        p = build_pipeline(r, ref->name, text, len, 0, 0, out);
        free(text);
    }
    fr__serve_manifest_file_free(&f);
    *pool = p ? mp : NULL;
    return p;

not_found:
    audit(who, action, ref->name, NULL, NULL, "denied", "manifest_not_found", NULL);
    manifest_not_found(out, ref->name);
    return NULL;
}

static void release(fr_runs *r, manifest_pool *pool, fr_pipeline *p)
{
    if (!p)
        return;
    if (pool) {
        pthread_mutex_lock(&r->mu);
        /* A gateway pool whose route changed (SIGHUP) takes no pipeline of the old text. */
        int stale = pool->text && strcmp(pool->text, fr__pipeline_manifest(p)->text) != 0;
        /* Idle pools must not add up across manifests: their threads have a server-wide
         * budget of 8 pipelines at --max-threads. */
        size_t budget = 8 * (size_t)r->cfg.limits.value[FR_LIMIT_MAX_THREADS];
        idle_pipeline *ip = !stale && pool->n_idle < MAX_IDLE_PER_MANIFEST &&
                                    r->idle_threads + p->pool_size <= budget
                                ? malloc(sizeof *ip)
                                : NULL;
        if (ip) {
            r->idle_threads += p->pool_size;
            ip->p = p;
            ip->next = pool->idle;
            pool->idle = ip;
            pool->n_idle++;
            p = NULL;
        }
        pthread_mutex_unlock(&r->mu);
    }
    fr__pipeline_free(p);
}

/* One audit line for a request (nothing when AUDIT_LOG_PATH is unset). */
static void audit(const fr_identity *who, fr_action action, const char *manifest,
                  const fr_manifest *m, const char *run_id, const char *decision,
                  const char *result, const char *error)
{
    if (!getenv("AUDIT_LOG_PATH"))
        return;
    /* A pipeline serves one request at a time, so filling its manifest's digest on first
     * use is not a race. */
    fr_manifest *mm = (fr_manifest *)m;
    if (mm && !mm->text_sha256[0])
        fr__sha256_hex(mm->text, mm->text_len, mm->text_sha256);
    fr_audit_event ev = {.actor = who->id,
                         .role = fr__role_name(who->role),
                         .tenant = who->tenant,
                         .namespace_ = m ? m->namespace_ : who->namespace_,
                         .action = fr__action_name(action),
                         .manifest = manifest,
                         .manifest_sha256 = m ? m->text_sha256 : NULL,
                         .run_id = run_id,
                         .decision = decision,
                         .result = result,
                         .error = error};
    fr__audit_log(&ev);
}

/* Namespace, then RBAC: the server's policy, narrowed by the manifest's lists.  `name`:
 * the named manifest, whose namespace acquire() already checked; should the pipeline
 * be of another namespace all the same (the file changed in between), it is not found,
 * as acquire() would say.  For inline text (the caller's own) a mismatch is 403.
 * Denials are audited. */
static int authorize(const fr_identity *who, const fr_manifest *m, const char *name,
                     fr_action action, fr_reply *out)
{
    if (strcmp(m->namespace_, who->namespace_) != 0) {
        if (name)
            manifest_not_found(out, name);
        else
            fr__reply_error(out, FR_HE_NAMESPACE_FORBIDDEN,
                            "the manifest's namespace \"%s\" is not yours (\"%s\")", m->namespace_,
                            who->namespace_);
        audit(who, action, m->path, m, NULL, "denied", "namespace_forbidden", NULL);
        return -1;
    }
    if (!fr__auth_allows(who->role, action) || !(m->rbac[action] & FR_ROLE_BIT(who->role))) {
        fr__reply_error(out, FR_HE_FORBIDDEN, "role %s may not %s this manifest",
                        fr__role_name(who->role), fr__action_name(action));
        audit(who, action, m->path, m, NULL, "denied", "forbidden", NULL);
        return -1;
    }
    return 0;
}

/* ---- the run registry ------------------------------------------------------------------- */

/* ---- Server-Sent Events (serve_sse.c): a run's steps and tokens ---- */

static void sse_progress(void *ud, const fr_pipeline *p, int step, const fr_step_result *r)
{
    fr_sse *s = ud;
    if (r->state == FR_STEP_PENDING)
        return;
    const fr_step_cfg *st = &fr__pipeline_manifest(p)->steps[step];
    json_object *o = json_object_new_object();
    json_object_object_add(o, "step", json_object_new_string(st->id));
    if (r->state == FR_STEP_RUNNING) {
        /* Issue 28: the console shows a step running before it ends. */
        json_object_object_add(o, "agent", json_object_new_string(st->agent));
        fr__sse_event(s, "step_started", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return;
    }
    json_object_object_add(o, "status", json_object_new_string(fr__step_state_name(r->state)));
    json_object_object_add(o, "attempts", json_object_new_int64((int64_t)r->n_attempts));
    if (r->state != FR_STEP_SUCCEEDED) {
        json_object_object_add(o, "class",
                               json_object_new_string(fr_class_name(fr_status_class(r->status))));
        json_object_object_add(o, "message",
                               r->message ? json_object_new_string(r->message) : NULL);
    }
    fr__sse_event(s, "step", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
}

static void sse_token(void *ud, const char *step, const char *text, size_t len)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "step", json_object_new_string(step));
    json_object_object_add(o, "text", json_object_new_string_len(text, (int)len));
    fr__sse_event(ud, "token", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
}

/* Runs fn(arg) on a detached thread of its own, or here when no thread can start. */
static void spawn_or_run(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int started = pthread_create(&t, &attr, fn, arg) == 0;
    pthread_attr_destroy(&attr);
    if (!started)
        fn(arg);
}

/* ---- running ---------------------------------------------------------------------------- */

typedef struct run_job {
    fr_runs *r;
    fr_identity who; /* copied: async runs outlive the request */
    fr_pipeline *p;
    manifest_pool *pool;
    run_entry *entry;
    char *input; /* owned, NULL: the manifest's input */
    int record;
    uint64_t seed;
    int has_seed;
    fr_sse *sse;        /* the writer's reference, or NULL */
    int sync;           /* a synchronous request on the request thread */
    fr_deferred *defer; /* a synchronous request answered from the run's own thread */
    int *detached;      /* the request thread's flag: set when a quick run left it (set on
                         * that thread; read there, after the run, through the caller's own
                         * variable: by then j may be gone) */
    fr_status status;   /* ... and how its fr__pipeline_run ended */
    fr_run_options ro;  /* the run's options and result: on the heap, so that a run */
    fr_run_result res;  /* that leaves its request thread can finish elsewhere */
    int64_t t0;
    const fr_queued_run *queued; /* a run from the durable queue: its finish hook */
    fr_quota_run quota;          /* issue 26: its provider calls' limits */
    fr_gateway_exec gw;          /* a gateway request's hooks (all NULL otherwise) */
    fr_run_journal journal;      /* a queued run's journal (--journal), or none */
    int64_t hold_us;             /* how long a quick run holds its request thread (0:
                                  * QUICK_HOLD_US) */
    int suspended;               /* its connection is suspended already */
    int64_t ended;               /* a gateway run: when it ended (monotonic) */
    int left;                    /* ... and it gave its slot back then (gateway_answer) */
    int on_caller;               /* a gateway run on its request thread (fr__runs_gateway) */
} run_job;

static void quick_detach(void *ud);
static void quick_done(void *ud, int status);

/* Runs the job (or, for a quick run that leaves its request thread, starts it: then
 * *j->detached is set and quick_done finishes it). */
static fr_status execute_run(run_job *j)
{
    fr_run_options ro = {.input_json = j->input,
                         .seed = j->seed,
                         .has_seed = j->has_seed,
                         .record = j->record,
                         .run_id = j->entry->id,
                         .traceparent = j->who.traceparent[0] ? j->who.traceparent : NULL,
                         /* A synchronous request's steps run on the pipeline's driver
                          * while the request thread waits, at most QUICK_HOLD_US: a
                          * hung plugin holds the driver, never the request thread.
                          * Plugins that cannot block run on the request thread itself
                          * (no hand-off).  An async or streamed run's own thread hands
                          * steps to workers. */
                         .run_inline = j->on_caller                   ? FR_RUN_ON_CALLER
                                       : !j->sync                     ? FR_RUN_ON_WORKERS
                                       : fr__policy_runs_inline(j->p) ? FR_RUN_ON_CALLER
                                                                      : FR_RUN_ON_DRIVER,
                         /* What the run's outputs may hold while it runs: its stored
                          * report and trace are bounded by the same limit afterwards. */
                         .max_output_bytes = (size_t)j->r->cfg.limits.value[FR_LIMIT_MAX_RUN_BYTES],
                         .max_effects = FR_SERVE_MAX_RUN_EFFECTS,
                         /* A queued run started again after its consumer died. */
                         .executions = j->queued ? j->queued->executions : 0};
    if (ro.run_inline == FR_RUN_ON_DRIVER && j->defer) {
        ro.detach_after_us = j->hold_us ? j->hold_us : QUICK_HOLD_US;
        ro.on_detach = quick_detach;
        ro.on_done = quick_done;
        ro.detach_ud = j;
    }
    if (j->sse) {
        ro.progress = sse_progress;
        ro.progress_ud = j->sse;
        ro.on_token = sse_token;
        ro.token_ud = j->sse;
    }
    if (j->gw.on_token) { /* the OpenAI gateway's stream */
        ro.on_token = j->gw.on_token;
        ro.token_ud = j->gw.ud;
    }
    if (j->r->cfg.quota) { /* issue 26 */
        fr__quota_run_init(&j->quota, j->r->cfg.quota, &j->who);
        ro.quota = &j->quota.iface;
    }
    fr__run_journal_apply(&j->journal, &ro); /* a queued run's journal, or its resume */
    j->ro = ro;
    j->t0 = fr__mono_us();
    return fr__pipeline_run(j->p, &j->ro, &j->res);
}

/* The time a run spent in plugins: its attempts' durations. */
static int64_t plugin_time(const fr_run_result *res)
{
    int64_t us = 0;
    for (size_t i = 0; i < res->n_steps; i++)
        for (size_t k = 0; k < res->steps[i].n_attempts; k++)
            us += res->steps[i].attempts[k].duration_us;
    return us;
}

/* Completes a run that returned `st`: stores report (and trace) in its entry, and a copy
 * of the report in *report_out when given.  Returns the plugin time. */
static int64_t execute_end(run_job *j, fr_status st, fr_run_status *status, char **report_out)
{
    fr__run_journal_end(&j->journal, st == FR_OK ? &j->res : NULL);
    fr_run_result res = j->res;
    int64_t took = (j->ended ? j->ended : fr__mono_us()) - j->t0;
    char *report = NULL, *trace = NULL;
    int64_t plugin_us = 0;
    *status = FR_RUN_FAILED;
    if (st == FR_OK) {
        report = fr__report_json(j->p, &res, 0);
        if (j->record)
            trace = fr__trace_json(j->p, &res);
        plugin_us = plugin_time(&res);
        *status = res.status;
        const fr_manifest *m = fr__pipeline_manifest(j->p);
        audit(&j->who, FR_ACTION_RUN, m->path, m, res.run_id, "allowed",
              fr__run_status_name(res.status), NULL);
    } else {
        json_object *o = fr__http_error_body(FR_HE_BAD_INPUT, "input is not a JSON value", NULL);
        report = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    }
    int trace_refused = 0;
    if (report &&
        fr__serve_limits_fit_run(&j->r->cfg.limits, j->entry->id, fr__run_status_name(*status),
                                 &report, &trace, &trace_refused) != 0)
        free(trace), trace = NULL;
    /* A queued run stores its outcome itself, under its fencing token
     * (core/serve/run_queue.c): only the execution holding the run's newest token reports
     * usage (whose keys derive from the run id: a run is never billed twice). */
    int may_bill = 1;
    if (j->queued && j->journal.fenced) /* its journal says another execution holds it */
        j->queued->fenced(j->queued->ud), may_bill = 0;
    else if (j->queued)
        may_bill = j->queued->finish(j->queued->ud, *status, report, trace, trace_refused) == 0;
    else
        fr__records_finished(j->r->records, j->entry, *status, report, trace, trace_refused, 0,
                             j->ro.executions);
    if (st == FR_OK) {
        if (may_bill)
            fr__usage_report_run(j->r->cfg.cp, j->who.tenant, j->who.id, j->p, &res);
        fr__run_result_free(&res);
    }
    /* The entry takes the report (and may drop it at once); the caller and the stream get a
     * copy, after the run has left: whoever has the report finds its slot free and the
     * run finished. */
    char *copy = report && (report_out || j->sse) ? strdup(report) : NULL;
    fr_runs *r = j->r;
    pthread_mutex_lock(&r->mu);
    run_entry *e = j->entry;
    e->report = report;
    e->trace = trace;
    e->trace_refused = trace_refused;
    e->status = *status;
    e->writing = 0;
    e->finished_at_us = fr__wall_us();
    fr__run_store_finish(r->runs, e, fr__mono_us());
    if (!j->left) {
        fr__run_store_leave(r->runs, j->who.tenant);
        fr__quota_leave(r->cfg.quota, &j->who); /* issue 26 */
    }
    if (j->pool && st == FR_OK)
        j->pool->run_us = j->pool->run_us < 0 ? took : (j->pool->run_us * 7 + took) / 8;
    pthread_cond_broadcast(&r->idle_cv);
    pthread_mutex_unlock(&r->mu);
    release(r, j->pool, j->p);
    if (j->sse) {
        fr__sse_event(j->sse, "report", copy ? copy : "{}");
        fr__sse_close(j->sse);
        j->sse = NULL;
    }
    if (report_out)
        *report_out = copy;
    else
        free(copy);
    return plugin_us;
}

static int64_t execute(run_job *j, fr_run_status *status, char **report_out)
{
    return execute_end(j, execute_run(j), status, report_out);
}

static void job_free(run_job *j)
{
    fr__run_journal_free(&j->journal);
    if (j->sse)
        fr__sse_close(j->sse);
    free(j->input);
    free(j);
}

static void *async_main(void *arg)
{
    pthread_setname_np(pthread_self(), "fr-async-run");
    run_job *j = arg;
    fr_run_status st;
    execute(j, &st, NULL);
    job_free(j);
    return NULL;
}

/* Answers a synchronous run that returned `rs` through j->defer (then frees j). */
static void deferred_reply(run_job *j, fr_status rs)
{
    fr_run_status st;
    fr_reply reply = {.route = "/v1/run"};
    reply.plugin_us = execute_end(j, rs, &st, &reply.body);
    reply.status = reply.body ? 200 : 500;
    reply.body_len = reply.body ? strlen(reply.body) : 0;
    fr_deferred *d = j->defer;
    job_free(j);
    d->complete(d, &reply);
}

/* A synchronous run on its own thread: the reply goes back through j->defer. */
static void *deferred_main(void *arg)
{
    pthread_setname_np(pthread_self(), "fr-run");
    run_job *j = arg;
    deferred_reply(j, execute_run(j));
    return NULL;
}

/* A quick run leaves its request thread (on that thread, before the run can complete). */
static void quick_detach(void *ud)
{
    run_job *j = ud;
    *j->detached = 1;
    if (!j->suspended)
        j->defer->suspend(j->defer);
}

static void gateway_deliver(run_job *j, fr_status rs, int on_driver);

static void *quick_reply_main(void *arg)
{
    run_job *j = arg;
    deferred_reply(j, j->status);
    return NULL;
}

/* ... and is answered from a thread of its own: the one that completed the run may be
 * the pipeline's driver, which must not free its own pipeline (release may). */
static void quick_done(void *ud, int status)
{
    run_job *j = ud;
    if (j->gw.deliver) { /* it gives its pipeline back on the record writer */
        gateway_deliver(j, status, 1);
        return;
    }
    j->status = status;
    spawn_or_run(quick_reply_main, j);
}

/* Has this manifest's pipeline been quick enough to run on the request thread? */
static int runs_quickly(fr_runs *r, const manifest_pool *pool)
{
    if (!pool)
        return 0; /* inline YAML: built per request, never measured */
    pthread_mutex_lock(&r->mu);
    int quick = pool->run_us >= 0 && pool->run_us < SLOW_RUN_US;
    pthread_mutex_unlock(&r->mu);
    return quick;
}

/* A running entry of run `id` in the run store (for GET and cancel), or NULL on OOM. */
static run_entry *entry_add(fr_runs *r, const char *id, const fr_identity *who,
                            const char *manifest, fr_pipeline *p, const char *input)
{
    /* The run's input is kept with its record (issue 28): the request's, else the
     * manifest's own. */
    const fr_manifest *m = fr__pipeline_manifest(p);
    const char *in = input ? input : m->input_json ? m->input_json : "{}";
    /* The graph is the pipeline's manifest's, the same for all its runs: made once per
     * pipeline.  The run holds p alone, so filling the memo is not a race (as audit's
     * digest). */
    const char *graph = fr__manifest_graph_memo((fr_manifest *)m);
    run_entry *e = calloc(1, sizeof *e);
    if (!e || !graph || !(e->input = strdup(in)) || !(e->graph = strdup(graph))) {
        if (e)
            free(e->input);
        free(e);
        return NULL;
    }
    fr__str_copy(e->id, sizeof e->id, id);
    fr__str_copy(e->tenant, sizeof e->tenant, who->tenant);
    fr__str_copy(e->namespace_, sizeof e->namespace_, who->namespace_);
    fr__str_copy(e->manifest, sizeof e->manifest, manifest ? manifest : "");
    e->started_at_us = fr__wall_us();
    e->p = p;
    pthread_mutex_lock(&r->mu);
    int added = fr__run_store_add(r->runs, e) == 0;
    pthread_mutex_unlock(&r->mu);
    if (!added) {
        free(e->input);
        free(e->graph);
        free(e);
        return NULL;
    }
    return e;
}

/* Request bodies are as strict as manifests: an unknown field (a typo such as "inputs")
 * is a 400 naming it, never silently ignored.  `allowed` ends with NULL.  Returns 0, or
 * -1 with the reply filled. */
static int only_fields(json_object *body, const char *const *allowed, fr_reply *out)
{
    json_object_object_foreach(body, k, v)
    {
        (void)v;
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], k) != 0)
            i++;
        if (allowed[i])
            continue;
        char list[200] = "";
        for (size_t n = 0, j = 0; allowed[j]; j++)
            n += (size_t)snprintf(list + n, n < sizeof list ? sizeof list - n : 0, "%s%s",
                                  j ? ", " : "", allowed[j]);
        fr__reply_error(out, FR_HE_UNKNOWN_FIELD,
                        "unknown field \"%.64s\" in the request body (this route takes %s)", k,
                        list);
        return -1;
    }
    return 0;
}

void fr__runs_handle_run(fr_runs *r, const fr_identity *who, json_object *body, int sse,
                         fr_deferred *defer, fr_reply *out)
{
    static const char *const fields[] = {"manifest", "manifest_path", "manifest_yaml", "input",
                                         "trace",    "async",         "seed",          NULL};
    manifest_ref ref;
    if (only_fields(body, fields, out) != 0 || manifest_ref_from(body, &ref, out) != 0)
        return;
    json_object *v;
    int record = json_object_object_get_ex(body, "trace", &v) && json_object_get_boolean(v);
    int async = json_object_object_get_ex(body, "async", &v) && json_object_get_boolean(v);
    run_job *j = calloc(1, sizeof *j);
    if (!j) {
        fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
        return;
    }
    j->r = r;
    j->who = *who;
    j->record = record;
    if (json_object_object_get_ex(body, "seed", &v)) {
        j->seed = json_object_get_uint64(v);
        j->has_seed = 1;
    }
    if (json_object_object_get_ex(body, "input", &v))
        j->input = strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));

    /* --state redis: an async run is checked here and executed by whichever consumer takes
     * it from the durable queue (core/serve/run_queue.c), which admits it then; the queue's
     * own cap (--max-queued) bounds what waits. */
    int queued = async && !sse && r->cfg.queue && r->cfg.enqueue;
    /* Admission first: a full server, or a tenant at its share, answers 429 before any
     * work is done. */
    if (!queued && fr__runs_admit(r, who, out) != 0) {
        job_free(j);
        return;
    }
    j->p = acquire(r, who, FR_ACTION_RUN, &ref, &j->pool, out);
    if (!j->p || authorize(who, fr__pipeline_manifest(j->p), ref.name, FR_ACTION_RUN, out) != 0 ||
        fr__policy_check_quarantine(j->p, out) != 0) {
        release(r, j->pool, j->p);
        if (!queued)
            fr__runs_leave(r, who);
        job_free(j);
        return;
    }
    if (queued) {
        r->cfg.enqueue(&r->cfg, who, ref.name, fr__pipeline_manifest(j->p), j->input, j->seed,
                       j->has_seed, record, out);
        release(r, j->pool, j->p);
        job_free(j);
        return;
    }
    /* The id is the only key to a run's report and trace: unguessable, from getrandom. */
    char id[40];
    run_entry *e = NULL;
    if (fr__secure_uuid(id, sizeof id) != 0) {
        fr__reply_error(out, FR_HE_INTERNAL, "cannot draw a run id: getrandom: %s",
                        strerror(errno));
    } else {
        e = entry_add(r, id, who, ref.name, j->p, j->input);
    }
    if (!e) {
        if (!out->status)
            fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
        release(r, j->pool, j->p);
        fr__runs_leave(r, who);
        job_free(j);
        return;
    }
    j->entry = e;

    if (sse) {
        /* Without a connection to suspend (outside libmicrohttpd), or on OOM, the run is
         * answered as an asynchronous one: 202 and its id. */
        j->sse = fr__sse_open(defer ? defer->conn : NULL, &out->stream);
        sse = j->sse != NULL;
        async = 1;
        if (sse) {
            /* First: the run's id, so that a client can cancel it mid-stream. */
            char ev[80];
            snprintf(ev, sizeof ev, "{\"run_id\":\"%s\"}", id);
            fr__sse_event(j->sse, "run", ev);
        }
    }
    if (async) {
        fr__records_started(r->records, e); /* listed, and cancellable, on every replica */
        spawn_or_run(async_main, j);
        if (!sse) {
            /* Not e->id: the run may be over, and its entry evicted, by now. */
            json_object *o = json_object_new_object();
            json_object_object_add(o, "run_id", json_object_new_string(id));
            json_object_object_add(o, "status", json_object_new_string("running"));
            fr__reply_json(out, 202, o);
            snprintf(out->location, sizeof out->location, "/v1/runs/%s", id);
        } else {
            out->status = 200;
            out->content_type = "text/event-stream";
        }
        return;
    }
    if (defer && !runs_quickly(r, j->pool)) {
        /* A run that waits (on providers, mostly) must not hold a request thread. */
        j->defer = defer;
        defer->suspend(defer);
        out->deferred = 1;
        spawn_or_run(deferred_main, j);
        return;
    }
    fr_run_status st;
    int detached = 0;
    j->sync = 1;
    j->defer = defer;
    j->detached = &detached;
    fr_status rs = execute_run(j);
    if (detached) {
        out->deferred = 1; /* quick_done answers */
        return;
    }
    /* The report is the body (200 also when the run failed: see "status"). */
    out->plugin_us = execute_end(j, rs, &st, &out->body);
    out->status = out->body ? 200 : 500;
    out->body_len = out->body ? strlen(out->body) : 0;
    job_free(j);
}

void fr__runs_handle_validate(fr_runs *r, const fr_identity *who, json_object *body, fr_reply *out)
{
    static const char *const fields[] = {"manifest", "manifest_path", "manifest_yaml", NULL};
    manifest_ref ref;
    if (only_fields(body, fields, out) != 0 || manifest_ref_from(body, &ref, out) != 0)
        return;
    manifest_pool *pool;
    fr_reply tmp = {0};
    fr_pipeline *p = acquire(r, who, FR_ACTION_VALIDATE, &ref, &pool, &tmp);
    /* A limit refuses the request (it says nothing of the manifest's validity). */
    if (!p && (tmp.status != 400 || tmp.limit)) {
        *out = tmp;
        return;
    }
    if (p && authorize(who, fr__pipeline_manifest(p), ref.name, FR_ACTION_VALIDATE, out) != 0) {
        free(tmp.body);
        release(r, pool, p);
        return;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "valid", json_object_new_boolean(p != NULL));
    json_object *errors = json_object_new_array();
    if (!p && tmp.body) {
        json_object *parsed = json_tokener_parse(tmp.body), *e, *list;
        if (parsed && json_object_object_get_ex(parsed, "error", &e) &&
            json_object_object_get_ex(e, "errors", &list))
            for (size_t i = 0; i < json_object_array_length(list); i++)
                json_object_array_add(errors, json_object_get(json_object_array_get_idx(list, i)));
        else if (parsed && json_object_object_get_ex(parsed, "error", &e))
            json_object_array_add(errors, json_object_get(e));
        json_object_put(parsed);
    }
    json_object_object_add(o, "errors", errors);
    free(tmp.body);
    audit(who, FR_ACTION_VALIDATE, ref.name ? ref.name : "manifest_yaml",
          p ? fr__pipeline_manifest(p) : NULL, NULL, "allowed", p ? "valid" : "invalid", NULL);
    release(r, pool, p);
    fr__reply_json(out, 200, o);
}

/* Run `id`'s entry (r->mu held), or NULL; a run answered but whose record is still being
 * written (gateway_deliver) is waited for, at most RECORD_WAIT_US. */
static run_entry *find_recorded(fr_runs *r, const char *id)
{
    run_entry *e = fr__run_store_find(r->runs, id);
    if (e && e->writing && !e->done)
        fr__writer_kick(r->writer); /* it may be lingering with the record queued */
    for (int64_t until = fr__mono_us() + RECORD_WAIT_US;
         e && e->writing && !e->done && fr__mono_us() < until;
         e = fr__run_store_find(r->runs, id)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000 * 1000; /* idle_cv's clock; re-checked every 10 ms */
        if (ts.tv_nsec >= 1000000000)
            ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&r->idle_cv, &r->mu, &ts);
    }
    return e;
}

void fr__runs_handle_get(fr_runs *r, const fr_identity *who, const char *run_id, int trace,
                         fr_reply *out)
{
    pthread_mutex_lock(&r->mu);
    fr__run_store_evict(r->runs, fr__mono_us());
    run_entry *e = find_recorded(r, run_id);
    /* Another tenant's run does not exist, as far as this caller can tell. */
    if (!e || strcmp(e->tenant, who->tenant) != 0) {
        pthread_mutex_unlock(&r->mu);
        if (r->records) /* another replica's, maybe */
            fr__records_get(r->records, who, run_id, trace, out);
        else
            fr__reply_error(out, FR_HE_RUN_NOT_FOUND, "no run %s", run_id);
        return;
    }
    if (trace) {
        if (!e->done || !e->trace) {
            pthread_mutex_unlock(&r->mu);
            fr__reply_error(out, e->done ? FR_HE_TRACE_NOT_RECORDED : FR_HE_RUN_IN_PROGRESS,
                            !e->done           ? "run %s is still running"
                            : e->trace_refused ? "the trace of run %s was not kept: it passed "
                                                 "this server's max_run_bytes (--max-run-bytes)"
                                               : "run %s was not traced: start it with "
                                                 "\"trace\": true",
                            run_id);
            return;
        }
        out->body = strdup(e->trace);
        out->body_len = out->body ? strlen(out->body) : 0;
        out->status = out->body ? 200 : 500;
        pthread_mutex_unlock(&r->mu);
        return;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "run_id", json_object_new_string(e->id));
    json_object_object_add(
        o, "status", json_object_new_string(e->done ? fr__run_status_name(e->status) : "running"));
    json_object_object_add(o, "report",
                           e->done && e->report ? json_tokener_parse(e->report) : NULL);
    json_object_object_add(o, "traced", json_object_new_boolean(e->trace != NULL));
    fr__run_json_add_console(o, e->manifest, e->input, e->graph); /* issue 28 */
    pthread_mutex_unlock(&r->mu);
    fr__reply_json(out, 200, o);
}

void fr__runs_handle_cancel(fr_runs *r, const fr_identity *who, const char *run_id, fr_reply *out)
{
    if (!fr__auth_allows(who->role, FR_ACTION_RUN)) {
        fr__reply_error(out, FR_HE_FORBIDDEN, "role %s may not cancel runs",
                        fr__role_name(who->role));
        return;
    }
    pthread_mutex_lock(&r->mu);
    run_entry *e = fr__run_store_find(r->runs, run_id);
    if (!e || strcmp(e->tenant, who->tenant) != 0) {
        pthread_mutex_unlock(&r->mu);
        if (r->records) /* cancelled where it runs */
            fr__records_cancel(r->records, who, run_id, out);
        else
            fr__reply_error(out, FR_HE_RUN_NOT_FOUND, "no run %s", run_id);
        return;
    }
    if (e->done) {
        pthread_mutex_unlock(&r->mu);
        fr__reply_error(out, FR_HE_RUN_FINISHED, "run %s has already finished", run_id);
        return;
    }
    fr__pipeline_cancel(e->p);
    pthread_mutex_unlock(&r->mu);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "run_id", json_object_new_string(run_id));
    json_object_object_add(o, "status", json_object_new_string("cancelling"));
    fr__reply_json(out, 202, o);
}

/* ---- replays ---------------------------------------------------------------------------- */

/* Replays of traces without a run_timeout are stopped after this long. */
#define REPLAY_DEADLINE_US (60 * 1000000LL)

typedef struct replay_job {
    fr_runs *r;
    fr_identity who;
    json_object *trace; /* owned */
    fr_pipeline *p;     /* owned */
    int64_t stop_at;    /* the request's deadline (monotonic us) */
    char stop_why[160];
    fr_deferred *defer; /* answered from the replay's own thread */
} replay_job;

/* Replays j's trace and fills `out`; frees j and leaves the runs in flight. */
static void replay_answer(replay_job *j, fr_reply *out)
{
    fr_pipeline *p = j->p;
    const char *text = json_object_get_string(json_object_object_get(j->trace, "manifest"));
    json_object *notes = json_object_new_array(), *div = NULL;
    fr__replay_notes(j->trace, text, p, notes);
    const fr_manifest *pm = fr__pipeline_manifest(p);
    for (size_t i = 0; i < pm->n_notes; i++)
        json_object_array_add(notes, json_object_new_string(pm->notes[i]));
    size_t n_steps = 0;
    fr_status st = fr__replay_execute_until(p, j->trace, j->stop_at, j->stop_why,
                                            (size_t)j->r->cfg.limits.value[FR_LIMIT_MAX_RUN_BYTES],
                                            &div, &n_steps);
    if (fr__mono_us() >= j->stop_at)
        json_object_array_add(notes, json_object_new_string(j->stop_why));
    audit(&j->who, FR_ACTION_REPLAY, "trace", fr__pipeline_manifest(p), NULL, "allowed",
          st != FR_OK ? "error"
          : div       ? "diverged"
                      : "identical",
          NULL);
    if (st != FR_OK) {
        fr__reply_error(out, FR_HE_INVALID_TRACE, "the recorded input cannot be replayed: %s",
                        fr_strerror(st));
    } else {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "identical", json_object_new_boolean(div == NULL));
        json_object_object_add(o, "steps", json_object_new_int64((int64_t)n_steps));
        json_object_object_add(o, "notes", notes);
        notes = NULL;
        json_object_object_add(o, "divergence", div);
        div = NULL;
        fr__reply_json(out, 200, o);
    }
    out->route = "/v1/replay";
    json_object_put(div);
    json_object_put(notes);
    fr__pipeline_free(p);
    json_object_put(j->trace);
    fr__runs_leave(j->r, &j->who);
    free(j);
}

static void *replay_main(void *arg)
{
    pthread_setname_np(pthread_self(), "fr-replay");
    replay_job *j = arg;
    fr_deferred *d = j->defer;
    fr_reply reply = {0};
    replay_answer(j, &reply);
    d->complete(d, &reply);
    return NULL;
}

char *fr__runs_trace_text(fr_runs *r, const fr_identity *who, const char *run_id, fr_reply *out)
{
    pthread_mutex_lock(&r->mu);
    run_entry *e = find_recorded(r, run_id);
    int mine = e && strcmp(e->tenant, who->tenant) == 0;
    int running = mine && !e->done;
    char *text = mine && e->trace ? strdup(e->trace) : NULL;
    pthread_mutex_unlock(&r->mu);
    if (!mine && r->records)
        return fr__records_trace(r->records, who, run_id, out);
    if (!text)
        fr__reply_error(out,
                        !mine     ? FR_HE_RUN_NOT_FOUND
                        : running ? FR_HE_RUN_IN_PROGRESS
                                  : FR_HE_TRACE_NOT_RECORDED,
                        !mine     ? "no run %s"
                        : running ? "run %s is still running"
                                  : "run %s was not traced: start it with \"trace\": true",
                        run_id);
    return text;
}

const fr_runs_config *fr__runs_config(const fr_runs *r)
{
    return &r->cfg;
}

void fr__runs_handle_replay(fr_runs *r, const fr_identity *who, json_object *body,
                            fr_deferred *defer, fr_reply *out)
{
    static const char *const fields[] = {"trace", "run_id", "trace_path", NULL};
    if (only_fields(body, fields, out) != 0)
        return;
    json_object *v;
    char err[512];
    json_object *trace = NULL;
    int inline_trace = 0;
    if (json_object_object_get_ex(body, "trace_path", NULL)) {
        fr__reply_error(out, FR_HE_TRACE_PATH_REFUSED,
                        "the server reads no paths: upload the trace as \"trace\" or name a run "
                        "with \"run_id\"");
        return;
    }
    if (json_object_object_get_ex(body, "trace", &v)) {
        const char *text = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
        trace = fr__trace_parse(text, strlen(text), err, sizeof err);
        inline_trace = 1;
    } else if (json_object_object_get_ex(body, "run_id", &v) &&
               json_object_is_type(v, json_type_string)) {
        char *text = fr__runs_trace_text(r, who, json_object_get_string(v), out);
        if (!text)
            return;
        trace = fr__trace_parse(text, strlen(text), err, sizeof err);
        free(text);
    } else {
        fr__reply_error(out, FR_HE_BAD_REQUEST, "give \"trace\" (a trace document) or \"run_id\"");
        return;
    }
    if (!trace) {
        fr__reply_error(out, FR_HE_INVALID_TRACE, "%s", err);
        return;
    }
    /* Admission first, as for runs: a full server or a tenant at its share answers 429
     * before the pipeline is built. */
    replay_job *j = calloc(1, sizeof *j);
    if (!j || fr__runs_admit(r, who, out) != 0) {
        if (!j)
            fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
        free(j);
        json_object_put(trace);
        return;
    }
    const char *text = json_object_get_string(json_object_object_get(trace, "manifest"));
    fr_pipeline *p = build_pipeline(r, "trace manifest", text, strlen(text), inline_trace, 1, out);
    if (!p || authorize(who, fr__pipeline_manifest(p), NULL, FR_ACTION_REPLAY, out) != 0 ||
        fr__policy_check_quarantine(p, out) != 0) {
        fr__pipeline_free(p);
        json_object_put(trace);
        fr__runs_leave(r, who);
        free(j);
        return;
    }
    j->r = r;
    j->who = *who;
    j->trace = trace;
    j->p = p;
    /* A replay keeps no deadlines of its own (it runs on recorded time): the request's
     * deadline is its manifest's run_timeout, or REPLAY_DEADLINE_US. */
    const fr_manifest *m = fr__pipeline_manifest(p);
    char d[32];
    int64_t bound = m->run_timeout_us ? m->run_timeout_us : REPLAY_DEADLINE_US;
    j->stop_at = fr__mono_us() + bound;
    snprintf(j->stop_why, sizeof j->stop_why, "the replay reached its deadline (%s %s)",
             m->run_timeout_us ? "router.run_timeout"
                               : "serve's bound on replays without a "
                                 "run_timeout,",
             fr__duration_format(bound, d, sizeof d));
    if (!defer) {
        replay_answer(j, out);
        return;
    }
    /* On a thread of its own while the connection waits: a replayed plugin may hang. */
    j->defer = defer;
    defer->suspend(defer);
    out->deferred = 1;
    spawn_or_run(replay_main, j);
}

/* ---- listing ---------------------------------------------------------------------------- */

typedef struct run_page {
    const fr_runs_query *q;
    uint64_t before;        /* the cursor: only runs added before it (0: from the newest) */
    const fr_run_entry **e; /* matching entries */
    size_t n, cap;
    int oom;
} run_page;

static void page_visit(void *ud, const fr_run_entry *e)
{
    run_page *pg = ud;
    const char *status = e->done ? fr__run_status_name(e->status) : "running";
    if ((pg->before && e->seq >= pg->before) || (pg->q->status && strcmp(pg->q->status, status)) ||
        (pg->q->manifest && strcmp(pg->q->manifest, e->manifest)))
        return;
    if (pg->n == pg->cap) {
        size_t cap = pg->cap ? 2 * pg->cap : 64;
        const fr_run_entry **grown = realloc(pg->e, cap * sizeof *grown);
        if (!grown) {
            pg->oom = 1;
            return;
        }
        pg->e = grown;
        pg->cap = cap;
    }
    pg->e[pg->n++] = e;
}

static int newest_first(const void *a, const void *b)
{
    uint64_t x = (*(const fr_run_entry *const *)a)->seq, y = (*(const fr_run_entry *const *)b)->seq;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* A whole number in [lo, hi] from a query value; -1 when it is not one. */
static long long query_int(const char *v, long long lo, long long hi)
{
    if (!v || *v < '0' || *v > '9' || strlen(v) > 19)
        return -1;
    char *end;
    long long n = strtoll(v, &end, 10);
    return *end || n < lo || n > hi ? -1 : n;
}

void fr__runs_handle_list(fr_runs *r, const fr_identity *who, const fr_runs_query *q, fr_reply *out)
{
    static const char *const statuses[] = {"queued", "running",   "succeeded",
                                           "failed", "cancelled", NULL};
    long long limit = q->limit ? query_int(q->limit, 1, 200) : 50;
    long long cursor = q->cursor ? query_int(q->cursor, 1, INT64_MAX) : 0;
    size_t k = 0;
    while (q->status && statuses[k] && strcmp(statuses[k], q->status) != 0)
        k++;
    if (limit < 0 || cursor < 0 || (q->status && !statuses[k])) {
        fr__reply_error(out, FR_HE_BAD_REQUEST,
                        limit < 0 ? "limit must be a whole number from 1 to 200"
                        : cursor < 0
                            ? "cursor must be a next_cursor this server returned"
                            : "status must be queued, running, succeeded, failed or cancelled");
        return;
    }
    if (r->records && fr__records_list(r->records, who, q, limit, cursor, out) == 0)
        return;
    run_page pg = {.q = q, .before = (uint64_t)cursor};
    pthread_mutex_lock(&r->mu);
    fr__run_store_evict(r->runs, fr__mono_us());
    fr__run_store_each(r->runs, who->tenant, page_visit, &pg);
    if (pg.oom) {
        pthread_mutex_unlock(&r->mu);
        free(pg.e);
        fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
        return;
    }
    if (pg.n) /* qsort's base must not be NULL, even for no elements */
        qsort(pg.e, pg.n, sizeof *pg.e, newest_first);
    size_t shown = pg.n < (size_t)limit ? pg.n : (size_t)limit;
    json_object *o = json_object_new_object(), *list = json_object_new_array();
    for (size_t i = 0; i < shown; i++) {
        const fr_run_entry *e = pg.e[i];
        json_object *it = json_object_new_object();
        json_object_object_add(it, "run_id", json_object_new_string(e->id));
        json_object_object_add(
            it, "status",
            json_object_new_string(e->done ? fr__run_status_name(e->status) : "running"));
        json_object_object_add(it, "manifest",
                               e->manifest[0] ? json_object_new_string(e->manifest) : NULL);
        json_object_object_add(it, "started_at", fr__serve_rfc3339_or_null(e->started_at_us));
        json_object_object_add(it, "finished_at",
                               e->done ? fr__serve_rfc3339_or_null(e->finished_at_us) : NULL);
        json_object_array_add(list, it);
    }
    json_object_object_add(o, "runs", list);
    if (shown < pg.n) {
        char next[24];
        snprintf(next, sizeof next, "%llu", (unsigned long long)pg.e[shown - 1]->seq);
        json_object_object_add(o, "next_cursor", json_object_new_string(next));
    } else {
        json_object_object_add(o, "next_cursor", NULL);
    }
    pthread_mutex_unlock(&r->mu);
    free(pg.e);
    fr__reply_json(out, 200, o);
}

/* Undoes an admitted run that cannot start (queued or gateway): its pipeline back to the
 * pool, the job freed (j may be NULL), the tenant's slot left.  Returns -1. */
static int job_refuse(fr_runs *r, run_job *j, const fr_identity *who)
{
    if (j)
        release(r, j->pool, j->p), job_free(j);
    fr__runs_leave(r, who);
    return -1;
}

/* ---- the durable queue (core/serve/run_queue.c) ----------------------------------------- */

int fr__runs_execute_queued(fr_runs *r, const fr_queued_run *q, fr_reply *out)
{
    const fr_identity *who = q->who;
    fr_reply busy = {0};
    if (fr__runs_admit(r, who, &busy) != 0) {
        free(busy.body);
        return 1;
    }
    manifest_ref ref = {.name = q->yaml ? NULL : q->manifest, .yaml = q->yaml};
    run_job *j = calloc(1, sizeof *j);
    if (!j) {
        fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
        goto refused;
    }
    j->r = r;
    j->who = *who;
    j->record = q->trace;
    j->seed = q->seed;
    j->has_seed = q->has_seed;
    j->queued = q;
    if (q->input && !(j->input = strdup(q->input))) {
        fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
        goto refused;
    }
    j->p = acquire(r, who, FR_ACTION_RUN, &ref, &j->pool, out);
    if (!j->p || authorize(who, fr__pipeline_manifest(j->p), ref.name, FR_ACTION_RUN, out) != 0 ||
        fr__policy_check_quarantine(j->p, out) != 0)
        goto refused;
    if (ref.name) {
        /* The run executes the manifest it was accepted for, or none. */
        const fr_manifest *m = fr__pipeline_manifest(j->p);
        char now[65];
        fr__sha256_hex(m->text, m->text_len, now);
        if (strcmp(now, q->sha256) != 0) {
            fr__reply_error(out, FR_HE_BAD_REQUEST,
                            "manifest \"%s\" changed after the run was queued (sha256 %.12s... "
                            "then, %.12s... now): not run; submit it again",
                            ref.name, q->sha256, now);
            goto refused;
        }
    }
    /* --journal: the run journals to Redis, or resumes from an earlier execution's. */
    if (fr__run_journal_open(&r->cfg, who, q->run_id, q->executions, j->p, j->input, q->seed,
                             q->has_seed, &j->journal, out) != 0)
        goto refused;
    if (!(j->entry = entry_add(r, q->run_id, who, ref.name, j->p, j->input))) {
        fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
        goto refused;
    }
    fr_run_status st;
    execute(j, &st, NULL); /* leaves the runs in flight */
    job_free(j);
    return 0;

refused:
    return job_refuse(r, j, who);
}

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
                 st == FR_OK ? plugin_time(&j->res) : 0, reply);
}

/* The writer's task: a gateway run's report, trace and record, its usage, and the end of
 * the run (its slot and pipeline given back). */
static void gateway_record(void *arg)
{
    run_job *j = arg;
    fr_run_status st;
    execute_end(j, j->status, &st, NULL);
    job_free(j);
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
            spawn_or_run(gateway_record_main, j);
        else
            gateway_record(j);
    }
    g.deliver(g.ud, d, &reply);
}

static void *gateway_main(void *arg)
{
    pthread_setname_np(pthread_self(), "fr-gateway");
    run_job *j = arg;
    gateway_deliver(j, execute_run(j), 0);
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

/* A pipeline of the gateway's synthesised `text` for `who`'s namespace: from the pool of
 * its route and namespace while the text stays the same (the routes file read again may
 * change it: the pool's idle pipelines are dropped then), else built.  *pool is set when
 * it must go back to one. */
static fr_pipeline *acquire_text(fr_runs *r, const fr_identity *who, const char *label,
                                 const char *text, manifest_pool **pool, fr_reply *out)
{
    /* A key no manifest file name can have (a control character). */
    char key[300];
    size_t klen = 0;
    fr__str_append(key, sizeof key, &klen, "\x1fgateway ");
    fr__str_append(key, sizeof key, &klen, label);
    fr__str_append(key, sizeof key, &klen, " ");
    fr__str_append(key, sizeof key, &klen, who->namespace_);
    pthread_mutex_lock(&r->mu);
    manifest_pool *mp = find_pool(r, key);
    if (mp && strcmp(mp->text, text) != 0) {
        char *fresh = strdup(text);
        if (fresh) {
            drop_idle(r, mp);
            free(mp->text);
            mp->text = fresh;
        } else {
            mp = NULL;
        }
    } else if (!mp && (mp = calloc(1, sizeof *mp)) != NULL) {
        if ((mp->name = strdup(key)) && (mp->text = strdup(text))) {
            mp->run_us = -1;
            mp->next = r->pools;
            r->pools = mp;
        } else {
            free(mp->name);
            free(mp);
            mp = NULL;
        }
    }
    fr_pipeline *p = mp ? pop_idle(r, mp) : NULL;
    pthread_mutex_unlock(&r->mu);
    if (!p)
        p = build_pipeline(r, label, text, strlen(text), 1, 0, out);
    *pool = p ? mp : NULL;
    return p;
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
    if (g->yaml)
        j->p = acquire_text(r, who, g->label, g->yaml, &j->pool, out);
    else
        j->p = acquire(r, who, FR_ACTION_RUN, &ref, &j->pool, out);
    if (!j->p || authorize(who, fr__pipeline_manifest(j->p), ref.name, FR_ACTION_RUN, out) != 0 ||
        fr__policy_check_quarantine(j->p, out) != 0)
        goto refused;
    char id[40];
    if (fr__secure_uuid(id, sizeof id) != 0) {
        fr__reply_error(out, FR_HE_INTERNAL, "cannot draw a run id: getrandom: %s",
                        strerror(errno));
        goto refused;
    }
    if (!(j->entry = entry_add(r, id, who, g->label, j->p, j->input))) {
        fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
        goto refused;
    }
    fr__str_copy(run_id, run_id_size, id);
    j->defer = defer;
    if (!runs_quickly(r, j->pool)) {
        defer->suspend(defer);
        out->deferred = 1;
        spawn_or_run(gateway_main, j);
        return 0;
    }
    /* A route whose runs have been quick (as POST /v1/run) runs on its pipeline's driver,
     * a thread that waits for runs: none is started.  When it is the only run in flight
     * and not a stream (whose first token goes out from the run's thread), this thread
     * waits for it (at most QUICK_HOLD_US) and answers on the spot: no suspension and
     * resumption of the connection.  Under concurrency, this thread must not wait (the
     * request threads are few): the connection is suspended and the thread leaves once
     * the run is handed over; the driver answers (quick_done). */
    pthread_mutex_lock(&r->mu);
    int alone = !g->stream && fr__run_store_in_flight(r->runs) <= 1;
    pthread_mutex_unlock(&r->mu);
    /* Alone, on a request thread that serves this connection only (the server's other
     * request threads accept new ones), the run goes on this very thread: no hand-off to
     * the driver and back, two wake-ups, often on the other CPU.  Holding the thread
     * stalls no other connection; only one request thread is ever held so (r->held), so
     * the others serve everyone else, whatever this run's vendor takes (at most its
     * deadlines).  Only a targets route's run (built-in llm and provider plugins, which
     * wait on vendors only, within deadlines): a pipeline route's plugins may hang. */
    int expected = 0;
    if (alone && g->yaml && fr__policy_waits_on_vendors_only(j->p) && fr__http_thread_alone() &&
        atomic_compare_exchange_strong(&r->held, &expected, 1)) {
        j->on_caller = 1;
        j->sync = 1;
        answer_here here = {.d = {.conn = defer->conn, .complete = answer_here_complete},
                            .out = out};
        j->defer = &here.d;
        fr_status rs = execute_run(j);
        atomic_store(&r->held, 0);
        gateway_deliver(j, rs, 0);
        return 0;
    }
    if (!alone) {
        defer->suspend(defer);
        out->deferred = 1;
        j->suspended = 1;
        j->hold_us = 1;
    }
    int detached = 0;
    j->sync = 1;
    j->detached = &detached;
    fr_status rs = execute_run(j);
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
    return job_refuse(r, j, who);
}
