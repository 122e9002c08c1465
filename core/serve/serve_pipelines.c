/* serve: turning manifests into pooled pipelines, and the access checks.  Named manifests
 * come only from the manifest directory (their namespace read from the very text that is
 * built), inline ones without plugin directories; the server's providers replace the
 * manifest's; built pipelines are pooled per named manifest (and per gateway route and
 * namespace) for reuse; fr__runs_audit() and fr__runs_authorize() (namespace, then RBAC)
 * for every route.  Shared with the other run files through serve_runs_impl.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/sha256.h"
#include "base/str.h"
#include "host/host.h"
#include "manifest/options.h"
#include "observe/observe.h"
#include "plugin/loader.h"
#include "serve/serve_manifests.h"
#include "serve/serve_runs_impl.h"

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

int fr__runs_manifest_ref_from(json_object *body, manifest_ref *ref, fr_reply *out)
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
fr_pipeline *fr__runs_build_pipeline(fr_runs *r, const char *label, const char *text, size_t len,
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
fr_pipeline *fr__runs_acquire(fr_runs *r, const fr_identity *who, fr_action action,
                              const manifest_ref *ref, manifest_pool **pool, fr_reply *out)
{
    *pool = NULL;
    if (ref->yaml)
        return fr__runs_build_pipeline(r, "manifest_yaml", ref->yaml, strlen(ref->yaml), 1, 0, out);
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
        p = fr__runs_build_pipeline(r, ref->name, text, len, 0, 0, out);
        free(text);
    }
    fr__serve_manifest_file_free(&f);
    *pool = p ? mp : NULL;
    return p;

not_found:
    fr__runs_audit(who, action, ref->name, NULL, NULL, "denied", "manifest_not_found", NULL);
    manifest_not_found(out, ref->name);
    return NULL;
}

void fr__runs_release(fr_runs *r, manifest_pool *pool, fr_pipeline *p)
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
void fr__runs_audit(const fr_identity *who, fr_action action, const char *manifest,
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
 * the named manifest, whose namespace fr__runs_acquire() already checked; should the pipeline
 * be of another namespace all the same (the file changed in between), it is not found,
 * as fr__runs_acquire() would say.  For inline text (the caller's own) a mismatch is 403.
 * Denials are audited. */
int fr__runs_authorize(const fr_identity *who, const fr_manifest *m, const char *name,
                       fr_action action, fr_reply *out)
{
    if (strcmp(m->namespace_, who->namespace_) != 0) {
        if (name)
            manifest_not_found(out, name);
        else
            fr__reply_error(out, FR_HE_NAMESPACE_FORBIDDEN,
                            "the manifest's namespace \"%s\" is not yours (\"%s\")", m->namespace_,
                            who->namespace_);
        fr__runs_audit(who, action, m->path, m, NULL, "denied", "namespace_forbidden", NULL);
        return -1;
    }
    if (!fr__auth_allows(who->role, action) || !(m->rbac[action] & FR_ROLE_BIT(who->role))) {
        fr__reply_error(out, FR_HE_FORBIDDEN, "role %s may not %s this manifest",
                        fr__role_name(who->role), fr__action_name(action));
        fr__runs_audit(who, action, m->path, m, NULL, "denied", "forbidden", NULL);
        return -1;
    }
    return 0;
}

/* A pipeline of the gateway's synthesised `text` for `who`'s namespace: from the pool of
 * its route and namespace while the text stays the same (the routes file read again may
 * change it: the pool's idle pipelines are dropped then), else built.  *pool is set when
 * it must go back to one. */
fr_pipeline *fr__runs_acquire_text(fr_runs *r, const fr_identity *who, const char *label,
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
        p = fr__runs_build_pipeline(r, label, text, strlen(text), 1, 0, out);
    *pool = p ? mp : NULL;
    return p;
}

void fr__runs_pools_free(fr_runs *r)
{
    while (r->pools) {
        manifest_pool *mp = r->pools;
        r->pools = mp->next;
        drop_idle(r, mp);
        free(mp->name);
        free(mp->namespace_);
        free(mp->text);
        free(mp);
    }
}
