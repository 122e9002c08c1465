/* The gateway's routes file (gateway.h) and the manifests it synthesises for targets
 * routes.  A targets route
 *
 *   - name: chat
 *     targets: [{provider: openai, model: gpt-4o-mini}, {provider: anthropic}]
 *     retry: {max_attempts: 2}
 *     circuit_breaker: {failure_threshold: 5, reset_timeout: 30s}
 *     timeout: 20s
 *
 * becomes (for a caller of namespace NS)
 *
 *   router: {namespace: "NS", stream_restart: false}
 *   agents:
 *     - {id: "chat.target_1", plugin: llm, provider: "openai", config: {passthrough:
 *        true, model: "gpt-4o-mini"}, retry: ..., circuit_breaker: ..., timeout: ...,
 *        fallback: ["chat.target_2"]}
 *     - {id: "chat.target_2", ...}
 *   pipeline: [{step: chat, agent: "chat.target_1"}]
 *
 * The route's resilience fields are copied as they are (JSON flow, which YAML reads), so
 * they mean exactly what they mean on an agent; the file is checked by parsing the
 * synthesised manifest once at load. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "base/yaml_tree.h"
#include "manifest/manifest.h"
#include "serve/gateway.h"
#include "serve/serve_manifests.h"

static const char *const top_fields[] = {"routes", NULL};
static const char *const route_fields[] = {
    "name", "targets", "pipeline", "retry", "circuit_breaker", "timeout", "namespaces", NULL};
static const char *const target_fields[] = {"provider", "model", NULL};

typedef struct load_ctx {
    const char *path;
    char *err;
    size_t errlen;
    int failed;
} load_ctx;

static void fail(load_ctx *c, const fr_ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(load_ctx *c, const fr_ynode *at, const char *fmt, ...)
{
    if (c->failed)
        return;
    c->failed = 1;
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (at)
        snprintf(c->err, c->errlen, "%s:%d:%d: %s", c->path, at->line, at->col, msg);
    else
        snprintf(c->err, c->errlen, "%s: %s", c->path, msg);
}

static int only_fields(load_ctx *c, const fr_ynode *map, const char *const *known,
                       const char *where)
{
    for (size_t i = 0; i < map->n; i++) {
        size_t j = 0;
        while (known[j] && strcmp(known[j], map->keys[i]->value) != 0)
            j++;
        if (!known[j]) {
            fail(c, map->keys[i], "unknown field \"%s\" in %s", map->keys[i]->value, where);
            return -1;
        }
    }
    return 0;
}

/* A non-empty string scalar, copied; NULL after failing. */
static char *string_of(load_ctx *c, const fr_ynode *n, const char *what)
{
    if (!n || n->kind != FR_Y_SCALAR || n->type != FR_YS_STRING || n->len == 0 ||
        memchr(n->value, '\0', n->len)) {
        fail(c, n, "%s must be a non-empty string", what);
        return NULL;
    }
    char *s = strdup(n->value);
    if (!s)
        fail(c, n, "out of memory");
    return s;
}

/* Route names are what clients send as `model`: printable, no spaces or quotes. */
static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return 0;
    for (; *s; s++)
        if (*s <= ' ' || *s >= 0x7f || *s == '"' || *s == '\\')
            return 0;
    return 1;
}

static void route_free(fr_gw_route *rt)
{
    free(rt->name);
    for (size_t i = 0; i < rt->n_namespaces; i++)
        free(rt->namespaces[i]);
    free(rt->namespaces);
    free(rt->pipeline);
    for (size_t i = 0; i < rt->n_targets; i++) {
        free(rt->targets[i].provider);
        free(rt->targets[i].model);
    }
    free(rt->targets);
    free(rt->head);
    free(rt->tail);
}

void fr__gw_routes_free(fr_gw_routes *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        route_free(&r->routes[i]);
    free(r->routes);
    free(r);
}

/* A JSON string literal of s into buf (for the synthesised YAML's double-quoted scalars:
 * YAML's escapes are a superset of JSON's). */
static char *quoted(const char *s)
{
    json_object *o = json_object_new_string(s);
    const char *t = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE)
                      : NULL;
    char *copy = t ? strdup(t) : NULL;
    json_object_put(o);
    return copy;
}

/* Appends printf output to *buf (NULL on OOM, which the caller checks at the end). */
static void cat(char **buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cat(char **buf, const char *fmt, ...)
{
    if (!*buf)
        return;
    char *more = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&more, fmt, ap);
    va_end(ap);
    char *joined = NULL;
    if (n >= 0 && asprintf(&joined, "%s%s", *buf, more) < 0)
        joined = NULL;
    free(more);
    free(*buf);
    *buf = joined;
}

/* The synthesised manifest's text after the namespace. */
static char *synth_tail(const fr_gw_route *rt, const fr_ynode *route)
{
    char *t = strdup("\", stream_restart: false}\nagents:\n");
    static const char *const copied[] = {"retry", "circuit_breaker", "timeout"};
    char *fields = strdup("");
    for (size_t k = 0; k < sizeof copied / sizeof copied[0]; k++) {
        const fr_ynode *n = fr__ymap_get(route, copied[k]);
        char *json = n ? fr__ynode_to_json_text(n) : NULL;
        if (json)
            cat(&fields, ", %s: %s", copied[k], json);
        else if (n)
            free(fields), fields = NULL;
        free(json);
    }
    for (size_t i = 0; t && fields && i < rt->n_targets; i++) {
        char *prov = quoted(rt->targets[i].provider);
        char *model = rt->targets[i].model ? quoted(rt->targets[i].model) : NULL;
        if (!prov || (rt->targets[i].model && !model)) {
            free(t), t = NULL;
        } else {
            /* Agent ids name the route: breakers are per namespace and agent id, and each
             * route's targets have breakers of their own.  (Route names hold no quote,
             * backslash or space.) */
            cat(&t,
                "  - {id: \"%s.target_%zu\", plugin: llm, provider: %s, config: {passthrough: "
                "true%s%s}%s",
                rt->name, i + 1, prov, model ? ", model: " : "", model ? model : "", fields);
            if (i == 0 && rt->n_targets > 1) {
                cat(&t, ", fallback: [");
                for (size_t k = 1; k < rt->n_targets; k++)
                    cat(&t, "%s\"%s.target_%zu\"", k > 1 ? ", " : "", rt->name, k + 1);
                cat(&t, "]");
            }
            cat(&t, "}\n");
        }
        free(prov);
        free(model);
    }
    cat(&t, "pipeline:\n  - {step: chat, agent: \"%s.target_1\"}\n", rt->name);
    if (!fields)
        free(t), t = NULL;
    free(fields);
    return t;
}

char *fr__gw_route_manifest(const fr_gw_route *rt, const char *ns)
{
    /* Per request: copies, not asprintf. */
    size_t h = strlen(rt->head), n = strlen(ns), t = strlen(rt->tail);
    char *text = malloc(h + n + t + 1);
    if (!text)
        return NULL;
    memcpy(text, rt->head, h);
    memcpy(text + h, ns, n);
    memcpy(text + h + n, rt->tail, t + 1);
    return text;
}

/* Checks the synthesised manifest as the server would parse it. */
static void synth_check(load_ctx *c, const fr_gw_route *rt, const fr_ynode *at,
                        const fr_manifest *providers, const char *manifest_dir)
{
    char *text = fr__gw_route_manifest(rt, "default");
    if (!text) {
        fail(c, at, "out of memory");
        return;
    }
    fr_diags d;
    fr__diags_init(&d, rt->name);
    fr_manifest *m = fr__manifest_parse_with_providers(
        rt->name, text, strlen(text), manifest_dir ? manifest_dir : ".", NULL, providers, &d);
    if (!m || d.n) {
        fr__diags_sort(&d);
        /* "agents[0].retry.max_attempts: ..." is the route's "retry.max_attempts". */
        const char *msg = d.n ? d.items[0].message : "the synthesised manifest does not parse";
        const char *dot = strncmp(msg, "agents[", 7) == 0 ? strstr(msg, "].") : NULL;
        fail(c, at, "route \"%s\": %s", rt->name, dot ? dot + 2 : msg);
    }
    fr__manifest_free(m);
    fr__diags_free(&d);
    free(text);
}

int fr__gw_sink_step(const fr_manifest *m, size_t *sinks)
{
    int found = -1;
    *sinks = 0;
    for (size_t i = 0; i < m->n_steps; i++) {
        int needed = 0;
        for (size_t k = 0; k < m->n_steps && !needed; k++)
            for (size_t d = 0; d < m->steps[k].n_deps && !needed; d++)
                needed = m->steps[k].dep_index[d] == (int)i;
        if (!needed) {
            found = (int)i;
            (*sinks)++;
        }
    }
    return *sinks == 1 ? found : -1;
}

/* A pipeline route's manifest must be in the manifest directory with one sink step (its
 * answer).  Checked again when it runs: the file may change. */
static void pipeline_check(load_ctx *c, const fr_gw_route *rt, const fr_ynode *at,
                           const fr_manifest *providers, const char *manifest_dir)
{
    fr_manifest_file f;
    if (!manifest_dir || fr__serve_manifest_resolve(manifest_dir, rt->pipeline, &f) != 0) {
        fail(c, at, "route \"%s\": no manifest \"%s\" in the manifest directory %s", rt->name,
             rt->pipeline, manifest_dir ? manifest_dir : "(none)");
        return;
    }
    size_t len = 0;
    char *text = fr__serve_manifest_read(&f, &len);
    fr__serve_manifest_file_free(&f);
    fr_diags d;
    fr__diags_init(&d, rt->pipeline);
    fr_manifest *m = text ? fr__manifest_parse_with_providers(rt->pipeline, text, len, manifest_dir,
                                                              NULL, providers, &d)
                          : NULL;
    size_t sinks = 0;
    if (!m || d.n) {
        fr__diags_sort(&d);
        fail(c, at, "route \"%s\": manifest \"%s\": %s", rt->name, rt->pipeline,
             d.n ? d.items[0].message : "cannot be read");
    } else if (fr__gw_sink_step(m, &sinks) < 0) {
        fail(c, at,
             "route \"%s\": manifest \"%s\" has %zu sink steps; a pipeline route needs exactly "
             "one (its answer)",
             rt->name, rt->pipeline, sinks);
    }
    fr__manifest_free(m);
    fr__diags_free(&d);
    free(text);
}

static void load_route(load_ctx *c, const fr_ynode *n, fr_gw_route *rt,
                       const fr_manifest *providers, const char *manifest_dir)
{
    if (n->kind != FR_Y_MAP) {
        fail(c, n, "a route is a mapping {name, targets | pipeline, ...}");
        return;
    }
    if (only_fields(c, n, route_fields, "a route") != 0)
        return;
    const fr_ynode *name = fr__ymap_get(n, "name"), *targets = fr__ymap_get(n, "targets"),
                   *pipeline = fr__ymap_get(n, "pipeline"), *ns = fr__ymap_get(n, "namespaces");
    if (!name) {
        fail(c, n, "a route needs a name (what clients send as \"model\")");
        return;
    }
    if (!(rt->name = string_of(c, name, "name")))
        return;
    if (!name_ok(rt->name)) {
        fail(c, name,
             "route name \"%.64s\": at most 128 printable characters, no spaces or "
             "quotes",
             rt->name);
        return;
    }
    if (!targets == !pipeline) {
        fail(c, n, "route \"%s\": give either targets or pipeline", rt->name);
        return;
    }
    if (ns) {
        if (ns->kind != FR_Y_SEQ || ns->n == 0) {
            fail(c, ns, "route \"%s\": namespaces must be a non-empty list", rt->name);
            return;
        }
        if (!(rt->namespaces = calloc(ns->n, sizeof *rt->namespaces))) {
            fail(c, ns, "out of memory");
            return;
        }
        rt->n_namespaces = ns->n; /* calloc'd: the ones not read yet are NULL */
        for (size_t i = 0; i < ns->n; i++)
            if (!(rt->namespaces[i] = string_of(c, ns->values[i], "namespaces[]")))
                return;
    }
    if (pipeline) {
        const char *extra = fr__ymap_get(n, "retry")             ? "retry"
                            : fr__ymap_get(n, "circuit_breaker") ? "circuit_breaker"
                            : fr__ymap_get(n, "timeout")         ? "timeout"
                                                                 : NULL;
        if (extra) {
            fail(c, fr__ymap_get(n, extra),
                 "route \"%s\": %s is for targets routes; a pipeline's agents carry their own",
                 rt->name, extra);
            return;
        }
        if (!(rt->pipeline = string_of(c, pipeline, "pipeline")))
            return;
        if (!fr__serve_manifest_name_ok(rt->pipeline))
            fail(c, pipeline,
                 "route \"%s\": pipeline names a manifest of the manifest directory (a file name "
                 "ending in .yaml or .yml, no '/')",
                 rt->name);
        else
            pipeline_check(c, rt, pipeline, providers, manifest_dir);
        return;
    }
    if (targets->kind != FR_Y_SEQ || targets->n == 0) {
        fail(c, targets, "route \"%s\": targets must be a non-empty list of {provider, model}",
             rt->name);
        return;
    }
    if (!(rt->targets = calloc(targets->n, sizeof *rt->targets))) {
        fail(c, targets, "out of memory");
        return;
    }
    rt->n_targets = targets->n;
    for (size_t i = 0; i < targets->n; i++) {
        const fr_ynode *t = targets->values[i];
        if (t->kind != FR_Y_MAP) {
            fail(c, t, "route \"%s\": targets[%zu] must be a mapping {provider, model}", rt->name,
                 i);
            return;
        }
        if (only_fields(c, t, target_fields, "a target") != 0)
            return;
        const fr_ynode *p = fr__ymap_get(t, "provider"), *model = fr__ymap_get(t, "model");
        if (!p) {
            fail(c, t, "route \"%s\": targets[%zu] needs a provider", rt->name, i);
            return;
        }
        if (!(rt->targets[i].provider = string_of(c, p, "provider")) ||
            (model && !(rt->targets[i].model = string_of(c, model, "model"))))
            return;
        if (!providers || fr__manifest_provider_index(providers, rt->targets[i].provider) < 0) {
            fail(c, p,
                 "route \"%s\": provider \"%s\" is not one of the server's (--providers "
                 "FILE)",
                 rt->name, rt->targets[i].provider);
            return;
        }
    }
    rt->head = strdup("# synthesised by fluxroute serve for a model route of the gateway\n"
                      "router: {namespace: \"");
    rt->tail = synth_tail(rt, n);
    if (!rt->head || !rt->tail) {
        fail(c, n, "out of memory");
        return;
    }
    synth_check(c, rt, n, providers, manifest_dir);
}

fr_gw_routes *fr__gw_routes_load(const char *path, const fr_manifest *providers,
                                 const char *manifest_dir, char *err, size_t errlen)
{
    load_ctx c = {.path = path, .err = err, .errlen = errlen};
    size_t len = 0;
    char *text = fr__file_read(path, &len);
    if (!text) {
        snprintf(err, errlen, "--routes %s: %s", path, strerror(errno));
        return NULL;
    }
    fr_diags d;
    fr__diags_init(&d, path);
    fr_ydoc doc;
    fr_gw_routes *r = calloc(1, sizeof *r);
    int parsed = fr__ydoc_parse(&doc, text, len, &d) == 0 && d.n == 0;
    free(text);
    const fr_ynode *root = doc.root, *list = root ? fr__ymap_get(root, "routes") : NULL;
    if (!r) {
        snprintf(err, errlen, "--routes %s: out of memory", path);
    } else if (!parsed) {
        fr__diags_sort(&d);
        snprintf(err, errlen, "%s:%d:%d: %s", path, d.n ? d.items[0].line : 0,
                 d.n ? d.items[0].col : 0, d.n ? d.items[0].message : "not YAML");
        c.failed = 1;
    } else if (!root || root->kind != FR_Y_MAP) {
        fail(&c, root, "the routes file is a mapping: routes: [...]");
    } else if (only_fields(&c, root, top_fields, "the routes file") == 0 &&
               (!list || list->kind != FR_Y_SEQ)) {
        fail(&c, list ? list : root, "routes must be a list of routes");
    } else if (!c.failed && !(r->routes = calloc(list->n ? list->n : 1, sizeof *r->routes))) {
        fail(&c, list, "out of memory");
    } else if (!c.failed) {
        for (size_t i = 0; i < list->n && !c.failed; i++, r->n++) {
            load_route(&c, list->values[i], &r->routes[i], providers, manifest_dir);
            for (size_t k = 0; k < i && !c.failed; k++)
                if (r->routes[i].name && strcmp(r->routes[k].name, r->routes[i].name) == 0)
                    fail(&c, fr__ymap_get(list->values[i], "name"), "route \"%s\" is defined twice",
                         r->routes[i].name);
        }
    }
    fr__ydoc_free(&doc);
    fr__diags_free(&d);
    if (!r || c.failed) {
        fr__gw_routes_free(r);
        return NULL;
    }
    return r;
}

const fr_gw_route *fr__gw_route_find(const fr_gw_routes *r, const char *name)
{
    for (size_t i = 0; r && i < r->n; i++)
        if (strcmp(r->routes[i].name, name) == 0)
            return &r->routes[i];
    return NULL;
}

int fr__gw_route_allows(const fr_gw_route *rt, const char *ns)
{
    if (!rt->n_namespaces)
        return 1;
    for (size_t i = 0; i < rt->n_namespaces; i++)
        if (strcmp(rt->namespaces[i], ns) == 0)
            return 1;
    return 0;
}
