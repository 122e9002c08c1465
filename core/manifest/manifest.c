/* Manifest parsing and validation: everything that needs no plugin.
 *
 * The YAML tree (yaml_tree.c) keeps positions, so each problem is reported at the
 * offending node, naming the key.  Validation never stops at the first problem.  Null
 * values count as absent (`router:` with nothing under it is fine).  String fields
 * accept any non-null scalar as its text, as the original did (`id: 7` is the id "7");
 * every other field is typed strictly. */
#include "manifest/manifest.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest/dag.h"
#include "base/duration.h"

#define DEFAULT_POOL       10
#define DEFAULT_TIMEOUT_US (30LL * 1000000)

/* ---- a small string -> index hash (ids are checked and looked up in O(1)) ---- */

typedef struct id_index {
    const char **keys;
    int *vals;
    size_t cap; /* power of two, or 0 when allocation failed */
} id_index;

static size_t hash_str(const char *s)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int index_init(id_index *x, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n + 1)
        cap *= 2;
    x->keys = calloc(cap, sizeof *x->keys);
    x->vals = calloc(cap, sizeof *x->vals);
    x->cap = x->keys && x->vals ? cap : 0;
    return x->cap ? 0 : -1;
}

static void index_free(id_index *x)
{
    free(x->keys);
    free(x->vals);
    memset(x, 0, sizeof *x);
}

/* Inserts key -> val unless present.  Returns the existing value, or -1 when inserted
 * (or when the table is unusable). */
static int index_put(id_index *x, const char *key, int val)
{
    if (!x->cap || !key)
        return -1;
    for (size_t i = hash_str(key) & (x->cap - 1);; i = (i + 1) & (x->cap - 1)) {
        if (!x->keys[i]) {
            x->keys[i] = key;
            x->vals[i] = val;
            return -1;
        }
        if (!strcmp(x->keys[i], key))
            return x->vals[i];
    }
}

static int index_get(const id_index *x, const char *key)
{
    if (!x->cap || !key)
        return -1;
    for (size_t i = hash_str(key) & (x->cap - 1); x->keys[i]; i = (i + 1) & (x->cap - 1))
        if (!strcmp(x->keys[i], key))
            return x->vals[i];
    return -1;
}

/* ---- context and message helpers ---- */

/* Nodes kept only while validating, for positions of cross-reference errors. */
typedef struct ref_nodes {
    const fr_ynode *ref;   /* step: agent value; agent: provider value */
    const fr_ynode **list; /* step: depends_on entries; agent: fallback entries */
} ref_nodes;

typedef struct ctx {
    fr_manifest *m;
    fr_diags *d;
    int oom;
    ref_nodes *agent_refs;
    ref_nodes *step_refs;
    int providers_only;          /* a server's providers file: only `providers:` */
    const fr_manifest *external; /* providers agents may use undeclared (serve's), or NULL */
} ctx;

static char *xstrdup(ctx *c, const char *s)
{
    char *p = strdup(s ? s : "");
    if (!p)
        c->oom = 1;
    return p;
}

static void *xcalloc(ctx *c, size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        c->oom = 1;
    return p;
}

static void err(ctx *c, const fr_ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void err(ctx *c, const fr_ynode *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    int rc = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (rc < 0) {
        c->oom = 1;
        return;
    }
    fr__diag_add(c->d, at ? at->line : 0, at ? at->col : 0, "%s", msg);
    free(msg);
}

/* "string \"ten\"", "integer 7", "list": how a value is named in type errors.  Long
 * texts are shortened. */
static const char *describe(const fr_ynode *n, char *buf, size_t size)
{
    const char *type = fr__ynode_type_name(n);
    if (!n || n->kind != FR_Y_SCALAR || n->type == FR_YS_NULL) {
        snprintf(buf, size, "%s", type);
        return buf;
    }
    int shown = n->len > 40 ? 37 : (int)n->len;
    if (n->type == FR_YS_STRING)
        snprintf(buf, size, "%s \"%.*s%s\"", type, shown, n->value, n->len > 40 ? "..." : "");
    else
        snprintf(buf, size, "%s %.*s%s", type, shown, n->value, n->len > 40 ? "..." : "");
    return buf;
}

/* The scalar's text in double quotes, shortened when long. */
static const char *quote(const fr_ynode *n, char *buf, size_t size)
{
    int shown = n->len > 40 ? 37 : (int)n->len;
    snprintf(buf, size, "\"%.*s%s\"", shown, n->value ? n->value : "", n->len > 40 ? "..." : "");
    return buf;
}

static int is_null(const fr_ynode *n)
{
    return !n || (n->kind == FR_Y_SCALAR && n->type == FR_YS_NULL);
}

/* The value of `key`, or NULL when absent or null. */
static const fr_ynode *get(const fr_ynode *map, const char *key)
{
    const fr_ynode *v = fr__ymap_get(map, key);
    return is_null(v) ? NULL : v;
}

static void type_error(ctx *c, const fr_ynode *n, const char *path, const char *expected)
{
    char buf[96];
    err(c, n, "%s: expected %s, got %s", path, expected, describe(n, buf, sizeof buf));
}

/* Reports every key of `map` not in the NULL-terminated `allowed` list. */
static void check_keys(ctx *c, const fr_ynode *map, const char *where, const char *const *allowed)
{
    for (size_t i = 0; i < map->n; i++) {
        const fr_ynode *k = map->keys[i];
        if (k->kind != FR_Y_SCALAR)
            continue; /* reported by the YAML layer */
        int known = 0;
        for (const char *const *a = allowed; *a && !known; a++)
            known = !strcmp(*a, k->value);
        if (known)
            continue;
        char list[512];
        size_t w = 0;
        list[0] = '\0';
        for (const char *const *a = allowed; *a && w < sizeof list; a++) {
            int r = snprintf(list + w, sizeof list - w, "%s%s", a == allowed ? "" : ", ", *a);
            w += r > 0 ? (size_t)r : 0;
        }
        err(c, k, "unknown key \"%s\" in %s (expected: %s)", k->value, where, list);
    }
}

static int want_map(ctx *c, const fr_ynode *n, const char *path)
{
    if (n->kind == FR_Y_MAP)
        return 1;
    type_error(c, n, path, "a mapping");
    return 0;
}

/* A string field: any non-null scalar, as its text. */
static int get_string(ctx *c, const fr_ynode *n, const char *path, char **out)
{
    if (n->kind != FR_Y_SCALAR || n->type == FR_YS_NULL) {
        type_error(c, n, path, "a string");
        return -1;
    }
    *out = xstrdup(c, n->value);
    return *out ? 0 : -1;
}

static int get_int(ctx *c, const fr_ynode *n, const char *path, int min, int *out)
{
    if (n->kind != FR_Y_SCALAR || n->type != FR_YS_INT) {
        type_error(c, n, path, "an integer");
        return -1;
    }
    if (n->ival < min || n->ival > INT_MAX) {
        err(c, n, "%s: must be between %d and %d, got %lld", path, min, INT_MAX,
            (long long)n->ival);
        return -1;
    }
    *out = (int)n->ival;
    return 0;
}

static int get_bool(ctx *c, const fr_ynode *n, const char *path, int *out)
{
    if (n->kind != FR_Y_SCALAR || n->type != FR_YS_BOOL) {
        type_error(c, n, path, "a boolean (true or false)");
        return -1;
    }
    *out = n->ival != 0;
    return 0;
}

/* A duration: a string in Go syntax (or a bare number, which fails unless it is 0).
 * `positive`: 1 requires > 0, 0 requires >= 0. */
static int get_duration(ctx *c, const fr_ynode *n, const char *path, int positive, int64_t *out)
{
    if (n->kind != FR_Y_SCALAR || n->type == FR_YS_NULL || n->type == FR_YS_BOOL) {
        type_error(c, n, path, "a duration such as \"250ms\" or \"1m30s\"");
        return -1;
    }
    const char *why = NULL;
    int64_t us;
    if (fr__duration_parse(n->value, &us, &why) != 0) {
        char buf[96];
        err(c, n, "%s: invalid duration %s: %s", path, quote(n, buf, sizeof buf), why);
        return -1;
    }
    if (positive ? us <= 0 : us < 0) {
        char buf[64];
        err(c, n, "%s: must be %s, got %s", path, positive ? "greater than 0" : ">= 0",
            quote(n, buf, sizeof buf));
        return -1;
    }
    *out = us;
    return 0;
}

/* Text of an enumerated value: returns the index in `names` or -1 (reported). */
static int get_enum(ctx *c, const fr_ynode *n, const char *path, const char *what,
                    const char *const *names)
{
    if (n->kind != FR_Y_SCALAR || n->type != FR_YS_STRING) {
        type_error(c, n, path, "a string");
        return -1;
    }
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], n->value))
            return i;
    char list[256];
    size_t w = 0;
    list[0] = '\0';
    for (int i = 0; names[i] && w < sizeof list; i++) {
        int r = snprintf(list + w, sizeof list - w, "%s%s", i ? ", " : "", names[i]);
        w += r > 0 ? (size_t)r : 0;
    }
    char buf[96];
    err(c, n, "%s: unknown %s %s (expected: %s)", path, what, quote(n, buf, sizeof buf), list);
    return -1;
}

/* A string or a list of strings.  Fills *out (owned strings) and, when nodes is given,
 * the node of each kept entry.  Entries that are not strings are reported and skipped. */
static size_t get_string_list(ctx *c, const fr_ynode *n, const char *path, char ***out,
                              const fr_ynode ***nodes)
{
    *out = NULL;
    if (nodes)
        *nodes = NULL;
    if (n->kind == FR_Y_MAP) {
        type_error(c, n, path, "a string or a list of strings");
        return 0;
    }
    const fr_ynode *const *items = n->kind == FR_Y_SEQ ? (const fr_ynode *const *)n->values : &n;
    size_t count = n->kind == FR_Y_SEQ ? n->n : 1;
    char **v = xcalloc(c, count, sizeof *v);
    const fr_ynode **nv = nodes ? xcalloc(c, count, sizeof *nv) : NULL;
    if (!v || (nodes && !nv)) {
        free(v);
        free(nv);
        return 0;
    }
    size_t k = 0;
    for (size_t i = 0; i < count; i++) {
        char p[160];
        snprintf(p, sizeof p, n->kind == FR_Y_SEQ ? "%s[%zu]" : "%s", path, i);
        char *s;
        if (get_string(c, items[i], p, &s) != 0)
            continue;
        if (nv)
            nv[k] = items[i];
        v[k++] = s;
    }
    *out = v;
    if (nodes)
        *nodes = nv;
    else
        free(nv);
    return k;
}

static void free_strings(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* ---- router ---- */

int fr__namespace_normalise(const char *in, char *out, size_t size)
{
    if (!in || !out || size < 33)
        return -1;
    while (isspace((unsigned char)*in))
        in++;
    size_t len = strlen(in);
    while (len > 0 && isspace((unsigned char)in[len - 1]))
        len--;
    if (len == 0) {
        snprintf(out, size, "default");
        return 0;
    }
    if (len < 2 || len > 32)
        return -1;
    char buf[33];
    for (size_t i = 0; i < len; i++) {
        char ch = (char)tolower((unsigned char)in[i]);
        int ok = (ch >= 'a' && ch <= 'z') ||
                 (i > 0 && ((ch >= '0' && ch <= '9') || ch == '_' || ch == '-'));
        if (!ok)
            return -1;
        buf[i] = ch;
    }
    buf[len] = '\0';
    memcpy(out, buf, len + 1);
    return 0;
}

static const char *const role_list_text = "viewer, operator, admin";

static void parse_rbac(ctx *c, const fr_ynode *rbac)
{
    static const char *const keys[] = {"run_roles", "validate_roles", "replay_roles", "admin_roles",
                                       NULL};
    if (!want_map(c, rbac, "router.rbac"))
        return;
    check_keys(c, rbac, "router.rbac", keys);
    for (int a = 0; a < FR_ACTION_COUNT_; a++) {
        const fr_ynode *n = get(rbac, fr__action_key((fr_action)a));
        if (!n)
            continue;
        char path[64];
        snprintf(path, sizeof path, "router.rbac.%s", fr__action_key((fr_action)a));
        char **roles;
        const fr_ynode **nodes;
        size_t count = get_string_list(c, n, path, &roles, &nodes);
        fr_role_set set = 0;
        int bad = 0;
        for (size_t i = 0; i < count; i++) {
            fr_role r;
            if (fr__role_parse(roles[i], &r) == 0) {
                set |= FR_ROLE_BIT(r);
            } else {
                char buf[96];
                err(c, nodes[i], "%s: unknown role %s (expected: %s)", path,
                    quote(nodes[i], buf, sizeof buf), role_list_text);
                bad = 1;
            }
        }
        /* An empty list means the defaults, as in the original. */
        if (set && !bad)
            c->m->rbac[a] = set;
        free_strings(roles, count);
        free(nodes);
    }
}

/* Defaults from the environment, checked only when used (the manifest does not set the
 * value): an invalid value is an error not tied to a place. */
static void env_defaults(ctx *c, int want_pool, int want_timeout)
{
    fr_manifest *m = c->m;
    const char *v = getenv("WORKER_POOL_SIZE");
    if (want_pool && v && *v) {
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || *end || end == v || n <= 0 || n > INT_MAX)
            err(c, NULL, "environment WORKER_POOL_SIZE: expected a positive integer, got \"%.40s\"",
                v);
        else
            m->worker_pool_size = (int)n;
    }
    v = getenv("DEFAULT_TIMEOUT");
    if (want_timeout && v && *v) {
        const char *why = NULL;
        int64_t us;
        if (fr__duration_parse(v, &us, &why) != 0)
            err(c, NULL, "environment DEFAULT_TIMEOUT: invalid duration \"%.40s\": %s", v, why);
        else if (us <= 0)
            err(c, NULL, "environment DEFAULT_TIMEOUT: must be greater than 0, got \"%.40s\"", v);
        else
            m->default_timeout_us = us;
    }
}

static void parse_router(ctx *c, const fr_ynode *router)
{
    static const char *const keys[] = {"worker_pool_size",
                                       "channel_buffer",
                                       "default_timeout",
                                       "run_timeout",
                                       "namespace",
                                       "rbac",
                                       "lease",
                                       "stream_restart",
                                       NULL};
    fr_manifest *m = c->m;
    const fr_ynode *n;
    const fr_ynode *pool = router ? get(router, "worker_pool_size") : NULL;
    const fr_ynode *dto = router ? get(router, "default_timeout") : NULL;
    env_defaults(c, !pool, !dto);
    if (!router)
        return;
    if (!want_map(c, router, "router"))
        return;
    check_keys(c, router, "router", keys);
    if (pool)
        get_int(c, pool, "router.worker_pool_size", 1, &m->worker_pool_size);
    if ((n = get(router, "channel_buffer")))
        get_int(c, n, "router.channel_buffer", 0, &m->channel_buffer);
    if (dto)
        get_duration(c, dto, "router.default_timeout", 1, &m->default_timeout_us);
    if ((n = get(router, "run_timeout")))
        get_duration(c, n, "router.run_timeout", 0, &m->run_timeout_us);
    if ((n = get(router, "stream_restart")))
        get_bool(c, n, "router.stream_restart", &m->stream_restart);
    if ((n = get(router, "namespace"))) {
        char *raw;
        if (get_string(c, n, "router.namespace", &raw) == 0) {
            char norm[33];
            if (fr__namespace_normalise(raw, norm, sizeof norm) != 0) {
                char buf[96];
                err(c, n,
                    "router.namespace: invalid namespace %s (after trimming and lower-casing it "
                    "must match ^[a-z][a-z0-9_-]{1,31}$)",
                    quote(n, buf, sizeof buf));
            } else {
                free(m->namespace_);
                m->namespace_ = xstrdup(c, norm);
            }
            free(raw);
        }
    }
    if ((n = get(router, "rbac")))
        parse_rbac(c, n);
    if ((n = get(router, "lease")) && want_map(c, n, "router.lease")) {
        static const char *const lkeys[] = {"key", "enabled", NULL};
        const fr_ynode *v;
        check_keys(c, n, "router.lease", lkeys);
        if ((v = get(n, "key")) && get_string(c, v, "router.lease.key", &m->lease_key) == 0 &&
            !*m->lease_key)
            err(c, v, "router.lease.key: must not be empty");
        if ((v = get(n, "enabled")))
            get_bool(c, v, "router.lease.enabled", &m->lease_enabled);
    }
}

/* ---- plugins ---- */

static char *join_path(ctx *c, const char *dir, const char *p)
{
    if (p[0] == '/' || !dir || !*dir)
        return xstrdup(c, p);
    char *out = NULL;
    if (asprintf(&out, "%s/%s", dir, p) < 0) {
        c->oom = 1;
        return NULL;
    }
    return out;
}

static void parse_plugins(ctx *c, const fr_ynode *plugins)
{
    static const char *const keys[] = {"dirs", NULL};
    if (!want_map(c, plugins, "plugins"))
        return;
    check_keys(c, plugins, "plugins", keys);
    const fr_ynode *dirs = get(plugins, "dirs");
    if (!dirs)
        return;
    char **v;
    const fr_ynode **nodes;
    size_t n = get_string_list(c, dirs, "plugins.dirs", &v, &nodes);
    fr_manifest *m = c->m;
    m->plugin_dirs = xcalloc(c, n, sizeof *m->plugin_dirs);
    for (size_t i = 0; i < n && m->plugin_dirs; i++) {
        if (!*v[i]) {
            err(c, nodes[i], "plugins.dirs[%zu]: empty directory name", i);
            continue;
        }
        char *p = join_path(c, m->dir, v[i]);
        if (p)
            m->plugin_dirs[m->n_plugin_dirs++] = p;
    }
    free_strings(v, n);
    free(nodes);
}

/* ---- shared pieces of providers and agents ---- */

static void parse_breaker(ctx *c, const fr_ynode *n, const char *owner_path, fr_breaker_cfg *b)
{
    static const char *const keys[] = {"failure_threshold", "reset_timeout", "probe_timeout", NULL};
    char path[224], where[192];
    snprintf(where, sizeof where, "%s.circuit_breaker", owner_path);
    if (!want_map(c, n, where))
        return;
    b->enabled = 1;
    check_keys(c, n, where, keys);
    const fr_ynode *v;
    if ((v = get(n, "failure_threshold"))) {
        snprintf(path, sizeof path, "%s.failure_threshold", where);
        get_int(c, v, path, 1, &b->failure_threshold);
    }
    if ((v = get(n, "reset_timeout"))) {
        snprintf(path, sizeof path, "%s.reset_timeout", where);
        get_duration(c, v, path, 1, &b->reset_timeout_us);
    }
    if ((v = get(n, "probe_timeout"))) {
        snprintf(path, sizeof path, "%s.probe_timeout", where);
        get_duration(c, v, path, 1, &b->probe_timeout_us);
    }
}

static void breaker_defaults(fr_breaker_cfg *b)
{
    b->enabled = 0;
    b->failure_threshold = 5;
    b->reset_timeout_us = 60LL * 1000000;
    b->probe_timeout_us = 5LL * 1000000;
}

/* Plugin names become file names (NAME.so): no paths, no dots. */
static void get_plugin_name(ctx *c, const fr_ynode *n, const char *path, char **out)
{
    if (get_string(c, n, path, out) != 0)
        return;
    const char *s = *out;
    int ok = *s != '\0';
    for (; *s && ok; s++)
        ok = isalnum((unsigned char)*s) || *s == '_' || *s == '-';
    if (!ok) {
        char buf[96];
        err(c, n, "%s: invalid plugin name %s (letters, digits, '_' and '-' only)", path,
            quote(n, buf, sizeof buf));
    }
}

/* Reads the required `id` of a list entry; "" when missing or invalid. */
static char *get_id(ctx *c, const fr_ynode *item, const char *key, const char *path)
{
    const fr_ynode *n = get(item, key);
    char p[160];
    snprintf(p, sizeof p, "%s.%s", path, key);
    char *id = NULL;
    if (!n)
        err(c, item, "%s: missing required key \"%s\"", path, key);
    else if (get_string(c, n, p, &id) == 0 && !*id)
        err(c, n, "%s: must not be empty", p);
    return id ? id : xstrdup(c, "");
}

/* Checks that `list` is a non-empty sequence of mappings.  Returns its length, 0 when
 * unusable (reported). */
static size_t want_list_of_maps(ctx *c, const fr_ynode *list, const char *path, int required)
{
    if (!list) {
        if (required)
            err(c, c->m->doc.root, "missing required key \"%s\" (a non-empty list)", path);
        return 0;
    }
    if (list->kind != FR_Y_SEQ) {
        type_error(c, list, path, "a list");
        return 0;
    }
    if (list->n == 0 && required)
        err(c, list, "%s: must be a non-empty list", path);
    return list->n;
}

/* The common start of a provider, agent or step entry: reads the id under `id_key`,
 * names the entry in `where` ("agent \"x\"", or "agents[2]" without an id), checks its
 * keys and that the id is unique.  Returns the id ("" when missing or when the entry is
 * not a mapping, which *is_map tells; both reported). */
static char *begin_entry(ctx *c, const fr_ynode *item, const char *path, const char *id_key,
                         const char *what, const char *const *keys, id_index *ids, int i,
                         char *where, size_t where_size, int *is_map)
{
    snprintf(where, where_size, "%s", path);
    *is_map = want_map(c, item, path);
    if (!*is_map)
        return xstrdup(c, "");
    char *id = get_id(c, item, id_key, path);
    if (id && *id)
        snprintf(where, where_size, "%s \"%s\"", what, id);
    check_keys(c, item, where, keys);
    if (id && *id && index_put(ids, id, i) >= 0)
        err(c, get(item, id_key), "duplicate %s id \"%s\"", what, id);
    return id;
}

/* ---- providers ---- */

static void parse_providers(ctx *c, const fr_ynode *list, id_index *ids)
{
    static const char *const keys[] = {"id", "plugin", "config", "circuit_breaker", NULL};
    fr_manifest *m = c->m;
    size_t n = want_list_of_maps(c, list, "providers", 0);
    if (!n)
        return;
    m->providers = xcalloc(c, n, sizeof *m->providers);
    if (!m->providers || index_init(ids, n) < 0) {
        c->oom = 1;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const fr_ynode *item = list->values[i];
        char path[64], where[160];
        snprintf(path, sizeof path, "providers[%zu]", i);
        fr_provider_cfg *p = &m->providers[m->n_providers++];
        breaker_defaults(&p->breaker);
        p->node = item;
        int is_map;
        p->id = begin_entry(c, item, path, "id", "provider", keys, ids, (int)i, where, sizeof where,
                            &is_map);
        if (!is_map) {
            p->plugin = xstrdup(c, "");
            continue;
        }
        const fr_ynode *v;
        char vp[160];
        if ((v = get(item, "plugin"))) {
            snprintf(vp, sizeof vp, "%s.plugin", path);
            p->plugin_node = v;
            get_plugin_name(c, v, vp, &p->plugin);
        } else {
            err(c, item, "%s: missing required key \"plugin\"", path);
        }
        if (!p->plugin)
            p->plugin = xstrdup(c, "");
        if ((v = get(item, "config"))) {
            snprintf(vp, sizeof vp, "%s.config", path);
            if (want_map(c, v, vp))
                p->config = v;
        }
        if ((v = get(item, "circuit_breaker")))
            parse_breaker(c, v, path, &p->breaker);
    }
}

/* ---- agents ---- */

static const char *const backoff_names[] = {"constant", "linear", "exponential",
                                            "exponential_jitter", NULL};
static const char *const isolation_names[] = {"none", "process", NULL};

static void parse_retry(ctx *c, const fr_ynode *n, const char *agent_path, fr_retry_cfg *r)
{
    static const char *const keys[] = {"max_attempts", "backoff", "base_delay", "max_delay", NULL};
    char where[128], path[160];
    snprintf(where, sizeof where, "%s.retry", agent_path);
    if (!want_map(c, n, where))
        return;
    check_keys(c, n, where, keys);
    const fr_ynode *v;
    if ((v = get(n, "max_attempts"))) {
        snprintf(path, sizeof path, "%s.max_attempts", where);
        get_int(c, v, path, 1, &r->max_attempts);
    }
    if ((v = get(n, "backoff"))) {
        snprintf(path, sizeof path, "%s.backoff", where);
        int b = get_enum(c, v, path, "backoff", backoff_names);
        if (b >= 0)
            r->backoff = (fr_backoff)b;
    }
    if ((v = get(n, "base_delay"))) {
        snprintf(path, sizeof path, "%s.base_delay", where);
        get_duration(c, v, path, 0, &r->base_delay_us);
    }
    if ((v = get(n, "max_delay"))) {
        snprintf(path, sizeof path, "%s.max_delay", where);
        get_duration(c, v, path, 0, &r->max_delay_us);
    }
    if (r->max_delay_us < r->base_delay_us && (v = get(n, "max_delay")) && get(n, "base_delay"))
        err(c, v, "%s.max_delay: must not be less than base_delay", where);
}

static void parse_agent(ctx *c, size_t i, const fr_ynode *item, id_index *ids)
{
    static const char *const keys[] = {"id",       "plugin", "provider",        "config",
                                       "timeout",  "retry",  "circuit_breaker", "isolation",
                                       "fallback", NULL};
    fr_agent_cfg *a = &c->m->agents[i];
    ref_nodes *refs = &c->agent_refs[i];
    char path[64], where[160], vp[160];
    snprintf(path, sizeof path, "agents[%zu]", i);
    a->node = item;
    a->provider_index = -1;
    a->retry.max_attempts = 1;
    a->retry.backoff = FR_BACKOFF_EXPONENTIAL;
    a->retry.base_delay_us = 100LL * 1000;
    a->retry.max_delay_us = 30LL * 1000000;
    breaker_defaults(&a->breaker);
    int is_map;
    a->id =
        begin_entry(c, item, path, "id", "agent", keys, ids, (int)i, where, sizeof where, &is_map);
    if (!is_map) {
        a->plugin = xstrdup(c, "echo");
        a->plugin_implicit = 1;
        return;
    }

    const fr_ynode *v;
    if ((v = get(item, "plugin"))) {
        snprintf(vp, sizeof vp, "%s.plugin", path);
        a->plugin_node = v;
        get_plugin_name(c, v, vp, &a->plugin);
    }
    if (!a->plugin) {
        a->plugin = xstrdup(c, "echo");
        a->plugin_implicit = !v;
    }
    if ((v = get(item, "provider"))) {
        snprintf(vp, sizeof vp, "%s.provider", path);
        if (get_string(c, v, vp, &a->provider) == 0)
            refs->ref = v;
    }
    if ((v = get(item, "config"))) {
        snprintf(vp, sizeof vp, "%s.config", path);
        if (want_map(c, v, vp))
            a->config = v;
    }
    if ((v = get(item, "timeout"))) {
        snprintf(vp, sizeof vp, "%s.timeout", path);
        get_duration(c, v, vp, 1, &a->timeout_us);
    }
    if ((v = get(item, "retry")))
        parse_retry(c, v, path, &a->retry);
    if ((v = get(item, "circuit_breaker")))
        parse_breaker(c, v, path, &a->breaker);
    if ((v = get(item, "isolation"))) {
        snprintf(vp, sizeof vp, "%s.isolation", path);
        int iso = get_enum(c, v, vp, "isolation", isolation_names);
        if (iso >= 0)
            a->isolation = (fr_isolation)iso;
    }
    if ((v = get(item, "fallback"))) {
        snprintf(vp, sizeof vp, "%s.fallback", path);
        a->n_fallback = get_string_list(c, v, vp, &a->fallback, &refs->list);
        a->fallback_index = xcalloc(c, a->n_fallback, sizeof *a->fallback_index);
    }
}

static void parse_agents(ctx *c, const fr_ynode *list, id_index *ids)
{
    fr_manifest *m = c->m;
    size_t n = want_list_of_maps(c, list, "agents", 1);
    if (!n)
        return;
    m->agents = xcalloc(c, n, sizeof *m->agents);
    c->agent_refs = xcalloc(c, n, sizeof *c->agent_refs);
    if (!m->agents || !c->agent_refs || index_init(ids, n) < 0) {
        c->oom = 1;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        parse_agent(c, i, list->values[i], ids);
        m->n_agents++;
    }
}

/* ---- pipeline ---- */

static void parse_steps(ctx *c, const fr_ynode *list, id_index *ids)
{
    static const char *const keys[] = {"step", "agent", "depends_on", NULL};
    fr_manifest *m = c->m;
    size_t n = want_list_of_maps(c, list, "pipeline", 1);
    if (!n)
        return;
    m->steps = xcalloc(c, n, sizeof *m->steps);
    c->step_refs = xcalloc(c, n, sizeof *c->step_refs);
    if (!m->steps || !c->step_refs || index_init(ids, n) < 0) {
        c->oom = 1;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const fr_ynode *item = list->values[i];
        fr_step_cfg *s = &m->steps[m->n_steps++];
        ref_nodes *refs = &c->step_refs[i];
        char path[64], where[160], vp[160];
        snprintf(path, sizeof path, "pipeline[%zu]", i);
        s->node = item;
        s->agent_index = -1;
        int is_map;
        s->id = begin_entry(c, item, path, "step", "step", keys, ids, (int)i, where, sizeof where,
                            &is_map);
        if (!is_map) {
            s->agent = xstrdup(c, "");
            continue;
        }
        const fr_ynode *v;
        if ((v = get(item, "agent"))) {
            snprintf(vp, sizeof vp, "%s.agent", path);
            if (get_string(c, v, vp, &s->agent) == 0)
                refs->ref = v;
        }
        if (!s->agent)
            s->agent = xstrdup(c, s->id);
        if ((v = get(item, "depends_on"))) {
            snprintf(vp, sizeof vp, "%s.depends_on", path);
            s->n_deps = get_string_list(c, v, vp, &s->depends_on, &refs->list);
            s->dep_index = xcalloc(c, s->n_deps, sizeof *s->dep_index);
        }
    }
}

/* ---- cross references ---- */

/* The index of the external provider `id` in m, adding it (borrowed from c->external,
 * marked external) on first use; -1 when there is none. */
static int use_external(ctx *c, const char *id)
{
    fr_manifest *m = c->m;
    int k = c->external ? fr__manifest_provider_index(c->external, id) : -1;
    if (k < 0)
        return -1;
    for (size_t i = 0; i < m->n_providers; i++)
        if (m->providers[i].external && strcmp(m->providers[i].id, id) == 0)
            return (int)i;
    fr_provider_cfg *grown = realloc(m->providers, (m->n_providers + 1) * sizeof *grown);
    if (!grown) {
        c->oom = 1;
        return -1;
    }
    m->providers = grown;
    const fr_provider_cfg *from = &c->external->providers[k];
    fr_provider_cfg *pc = &m->providers[m->n_providers];
    *pc = *from; /* nodes and config borrowed: the server's document outlives m */
    pc->id = xstrdup(c, from->id);
    pc->plugin = xstrdup(c, from->plugin);
    pc->external = 1;
    return (int)m->n_providers++;
}

static void resolve_refs(ctx *c, const id_index *providers, const id_index *agents,
                         const id_index *steps)
{
    fr_manifest *m = c->m;
    for (size_t i = 0; i < m->n_agents; i++) {
        fr_agent_cfg *a = &m->agents[i];
        const ref_nodes *r = &c->agent_refs[i];
        if (a->provider) {
            a->provider_index = index_get(providers, a->provider);
            if (a->provider_index < 0)
                a->provider_index = use_external(c, a->provider);
            if (a->provider_index < 0)
                err(c, r->ref, "agent \"%s\": unknown provider \"%s\"%s", a->id, a->provider,
                    c->external ? " (neither the manifest nor the server defines it)" : "");
        }
        for (size_t k = 0; k < a->n_fallback && a->fallback_index; k++) {
            int f = index_get(agents, a->fallback[k]);
            a->fallback_index[k] = f;
            if (f < 0)
                err(c, r->list[k], "agent \"%s\": unknown fallback agent \"%s\"", a->id,
                    a->fallback[k]);
            else if ((size_t)f == i)
                err(c, r->list[k], "agent \"%s\": cannot fall back to itself", a->id);
        }
    }
    for (size_t i = 0; i < m->n_steps; i++) {
        fr_step_cfg *s = &m->steps[i];
        const ref_nodes *r = &c->step_refs[i];
        if (*s->agent) {
            s->agent_index = index_get(agents, s->agent);
            if (s->agent_index < 0 && r->ref)
                err(c, r->ref, "step \"%s\": unknown agent \"%s\"", s->id, s->agent);
            else if (s->agent_index < 0)
                err(c, s->node,
                    "step \"%s\": no agent with id \"%s\" (add the agent or set agent:)", s->id,
                    s->agent);
        }
        /* Unknown, self and repeated dependencies are dropped from dep_index. */
        size_t kept = 0;
        for (size_t k = 0; k < s->n_deps && s->dep_index; k++) {
            int d = index_get(steps, s->depends_on[k]);
            if (d < 0) {
                err(c, r->list[k], "step \"%s\" depends on unknown step \"%s\"", s->id,
                    s->depends_on[k]);
                continue;
            }
            if ((size_t)d == i) {
                err(c, r->list[k], "step \"%s\" cannot depend on itself", s->id);
                continue;
            }
            int dup = 0;
            for (size_t j = 0; j < kept && !dup; j++)
                dup = s->dep_index[j] == d;
            if (!dup)
                s->dep_index[kept++] = d;
        }
        /* Keep depends_on and dep_index parallel: compact names the same way. */
        if (s->dep_index && kept < s->n_deps) {
            char **names = xcalloc(c, kept, sizeof *names);
            if (names) {
                for (size_t j = 0; j < kept; j++)
                    names[j] = xstrdup(c, m->steps[s->dep_index[j]].id);
                free_strings(s->depends_on, s->n_deps);
                s->depends_on = names;
                s->n_deps = kept;
            }
        }
    }
}

static void check_cycles(ctx *c)
{
    fr_manifest *m = c->m;
    size_t n = m->n_steps;
    if (!n)
        return;
    int **deps = xcalloc(c, n, sizeof *deps);
    size_t *n_deps = xcalloc(c, n, sizeof *n_deps);
    int *order = xcalloc(c, n, sizeof *order);
    int *cycle = xcalloc(c, n + 1, sizeof *cycle);
    if (deps && n_deps && order && cycle) {
        for (size_t i = 0; i < n; i++) {
            deps[i] = m->steps[i].dep_index;
            n_deps[i] = m->steps[i].dep_index ? m->steps[i].n_deps : 0;
        }
        size_t clen = 0;
        if (fr__dag_toposort(n, deps, n_deps, order, cycle, &clen) == 0) {
            m->topo = order;
            order = NULL;
        } else if (clen == 0) {
            c->oom = 1;
        } else {
            size_t size = 32;
            for (size_t k = 0; k < clen; k++)
                size += strlen(m->steps[cycle[k]].id) + 4;
            char *text = malloc(size);
            if (text) {
                size_t w = 0;
                for (size_t k = 0; k < clen; k++)
                    w += (size_t)snprintf(text + w, size - w, "%s%s", k ? " -> " : "",
                                          m->steps[cycle[k]].id);
                err(c, m->steps[cycle[0]].node, "cycle in pipeline: %s", text);
                free(text);
            } else {
                c->oom = 1;
            }
        }
    }
    free(deps);
    free(n_deps);
    free(order);
    free(cycle);
}

/* ---- input ---- */

static void parse_input(ctx *c, const fr_ynode *input)
{
    fr_manifest *m = c->m;
    if (!input)
        return; /* stays "{}" */
    char *json = fr__ynode_to_json_text(input);
    if (!json) {
        err(c, input, "input: cannot be converted to JSON (too large or too deeply nested)");
        return;
    }
    free(m->input_json);
    m->input_json = json;
}

/* ---- entry points ---- */

static char *dir_of(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static void validate(ctx *c)
{
    static const char *const keys[] = {"router",   "plugins", "providers", "agents",
                                       "pipeline", "input",   NULL};
    fr_manifest *m = c->m;
    const fr_ynode *root = m->doc.root;
    if (!root) {
        err(c, NULL, "manifest is empty (expected a mapping with agents and pipeline)");
        return;
    }
    if (root->kind != FR_Y_MAP) {
        char buf[96];
        err(c, root, "top level: expected a mapping with agents and pipeline, got %s",
            describe(root, buf, sizeof buf));
        return;
    }
    if (c->providers_only) {
        static const char *const pkeys[] = {"providers", NULL};
        id_index providers = {0};
        check_keys(c, root, "the top level", pkeys);
        parse_providers(c, get(root, "providers"), &providers);
        index_free(&providers);
        return;
    }
    check_keys(c, root, "the top level", keys);
    id_index providers = {0}, agents = {0}, steps = {0};
    parse_router(c, get(root, "router"));
    const fr_ynode *n;
    if ((n = get(root, "plugins")))
        parse_plugins(c, n);
    parse_providers(c, get(root, "providers"), &providers);
    parse_agents(c, get(root, "agents"), &agents);
    parse_steps(c, get(root, "pipeline"), &steps);
    parse_input(c, get(root, "input"));
    if (!c->oom) {
        resolve_refs(c, &providers, &agents, &steps);
        check_cycles(c);
        fr__manifest_check_templates(c->m, c->d);
    }
    index_free(&providers);
    index_free(&agents);
    index_free(&steps);
}

static fr_manifest *parse(const char *path, const char *text, size_t len, const char *base_dir,
                          fr_yaml_limits *limits, const fr_manifest *external, fr_diags *diags,
                          int providers_only)
{
    fr_manifest *m = calloc(1, sizeof *m);
    if (!m) {
        fr__diag_add(diags, 0, 0, "out of memory");
        return NULL;
    }
    ctx c = {.m = m, .d = diags, .providers_only = providers_only, .external = external};
    m->path = xstrdup(&c, path ? path : "manifest");
    m->dir = base_dir ? xstrdup(&c, base_dir) : dir_of(path);
    m->text = malloc(len + 1);
    if (!m->dir || !m->text || c.oom) {
        fr__diag_add(diags, 0, 0, "out of memory");
        fr__manifest_free(m);
        return NULL;
    }
    if (len)
        memcpy(m->text, text, len);
    m->text[len] = '\0';
    m->text_len = len;
    m->worker_pool_size = DEFAULT_POOL;
    m->stream_restart = 1;
    m->default_timeout_us = DEFAULT_TIMEOUT_US;
    m->namespace_ = xstrdup(&c, "default");
    m->lease_enabled = 1; /* router.lease.enabled: true unless the manifest says false */
    m->input_json = xstrdup(&c, "{}");
    for (int a = 0; a < FR_ACTION_COUNT_; a++)
        m->rbac[a] = fr__action_default_roles((fr_action)a);

    if (fr__ydoc_parse_ex(&m->doc, m->text, len, limits, diags) != 0 && !m->doc.root) {
        fr__manifest_free(m);
        return NULL; /* syntax error: the tree is gone */
    }
    validate(&c);
    for (size_t i = 0; i < m->n_agents && c.agent_refs; i++)
        free(c.agent_refs[i].list);
    for (size_t i = 0; i < m->n_steps && c.step_refs; i++)
        free(c.step_refs[i].list);
    free(c.agent_refs);
    free(c.step_refs);
    if (c.oom) {
        fr__diag_add(diags, 0, 0, "out of memory");
        fr__manifest_free(m);
        return NULL;
    }
    return m;
}

fr_manifest *fr__manifest_parse(const char *path, const char *text, size_t len,
                                const char *base_dir, fr_diags *diags)
{
    return parse(path, text, len, base_dir, NULL, NULL, diags, 0);
}

fr_manifest *fr__manifest_parse_ex(const char *path, const char *text, size_t len,
                                   const char *base_dir, fr_yaml_limits *limits, fr_diags *diags)
{
    return parse(path, text, len, base_dir, limits, NULL, diags, 0);
}

fr_manifest *fr__manifest_parse_with_providers(const char *path, const char *text, size_t len,
                                               const char *base_dir, fr_yaml_limits *limits,
                                               const fr_manifest *providers, fr_diags *diags)
{
    return parse(path, text, len, base_dir, limits, providers, diags, 0);
}

int fr__manifest_note(fr_manifest *m, const char *fmt, ...)
{
    char **notes = realloc(m->notes, (m->n_notes + 1) * sizeof *notes);
    if (!notes)
        return -1;
    m->notes = notes;
    va_list ap;
    va_start(ap, fmt);
    int rc = vasprintf(&notes[m->n_notes], fmt, ap);
    va_end(ap);
    if (rc < 0)
        return -1;
    m->n_notes++;
    return 0;
}

fr_manifest *fr__manifest_parse_providers(const char *path, const char *text, size_t len,
                                          fr_diags *diags)
{
    return parse(path, text, len, NULL, NULL, NULL, diags, 1);
}

fr_manifest *fr__manifest_load(const char *path, fr_diags *diags)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fr__diag_add(diags, 0, 0, "cannot read manifest: %s", strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int failed = 0;
    for (;;) {
        if (len + 4096 > cap) {
            size_t nc = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, nc);
            if (!nb) {
                failed = ENOMEM;
                break;
            }
            buf = nb;
            cap = nc;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0) {
            if (ferror(f))
                failed = errno ? errno : EIO;
            break;
        }
    }
    fclose(f);
    if (failed) {
        free(buf);
        fr__diag_add(diags, 0, 0, "cannot read manifest: %s", strerror(failed));
        return NULL;
    }
    fr_manifest *m = fr__manifest_parse(path, buf ? buf : "", len, NULL, diags);
    free(buf);
    return m;
}

void fr__manifest_free(fr_manifest *m)
{
    if (!m)
        return;
    free(m->path);
    free(m->dir);
    free(m->text);
    free(m->graph_text);
    fr__ydoc_free(&m->doc);
    free(m->namespace_);
    free(m->lease_key);
    free_strings(m->plugin_dirs, m->n_plugin_dirs);
    for (size_t i = 0; i < m->n_providers; i++) {
        free(m->providers[i].id);
        free(m->providers[i].plugin);
    }
    free(m->providers);
    for (size_t i = 0; i < m->n_agents; i++) {
        fr_agent_cfg *a = &m->agents[i];
        free(a->id);
        free(a->plugin);
        free(a->provider);
        free_strings(a->fallback, a->n_fallback);
        free(a->fallback_index);
    }
    free(m->agents);
    for (size_t i = 0; i < m->n_steps; i++) {
        fr_step_cfg *s = &m->steps[i];
        free(s->id);
        free(s->agent);
        free_strings(s->depends_on, s->n_deps);
        free(s->dep_index);
    }
    free(m->steps);
    free(m->topo);
    free(m->input_json);
    free_strings(m->notes, m->n_notes);
    free(m);
}

int fr__manifest_step_index(const fr_manifest *m, const char *id)
{
    for (size_t i = 0; m && id && i < m->n_steps; i++)
        if (m->steps[i].id && !strcmp(m->steps[i].id, id))
            return (int)i;
    return -1;
}

int fr__manifest_agent_index(const fr_manifest *m, const char *id)
{
    for (size_t i = 0; m && id && i < m->n_agents; i++)
        if (m->agents[i].id && !strcmp(m->agents[i].id, id))
            return (int)i;
    return -1;
}

int fr__manifest_provider_index(const fr_manifest *m, const char *id)
{
    for (size_t i = 0; m && id && i < m->n_providers; i++)
        if (m->providers[i].id && !strcmp(m->providers[i].id, id))
            return (int)i;
    return -1;
}
