/* The web console's routes (serve_console.h). */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/diag.h"
#include "controlplane/cp_client.h"
#include "manifest/manifest.h"
#include "manifest/manifest_graph.h"
#include "serve/serve_console.h"
#include "serve/serve_limits.h"
#include "serve/serve_manifests.h"
#include "trace/diff.h"
#include "trace/trace.h"

/* A listing looks at no more files than this (a manifest directory is not a data store). */
#define MAX_LISTED 1000

/* A 400 (or `e`'s status) whose error names the request field at fault: the message
 * starts with it, and the error object has "field". */
static void field_error(fr_reply *out, fr_http_error e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void field_error(fr_reply *out, fr_http_error e, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_object *inner = NULL, *o = fr__http_error_body_v(e, &inner, fmt, ap);
    va_end(ap);
    if (inner)
        json_object_object_add(inner, "field", json_object_new_string(field));
    fr__reply_json(out, fr__http_error_status(e), o);
}

/* ---- manifests ------------------------------------------------------------------------ */

/* The text of named manifest `name` when it is the caller's namespace's (caller frees), or
 * NULL: whatever the reason, the caller answers "not found". */
static char *read_mine(const char *dir, const fr_identity *who, const char *name, size_t *len)
{
    fr_manifest_file f;
    if (fr__serve_manifest_resolve(dir, name, &f) != 0)
        return NULL;
    char *text = fr__serve_manifest_read(&f, len);
    fr__serve_manifest_file_free(&f);
    char ns[40];
    if (text && (fr__serve_manifest_namespace(text, *len, ns, sizeof ns) != 0 ||
                 strcmp(ns, who->namespace_) != 0)) {
        free(text);
        text = NULL;
    }
    return text;
}

/* POST /v1/validate's answer for named manifest `name`: 0 with *valid and *errors (new),
 * or -1 with `out` filled by what validate refused (a limit, a role, not found). */
static int validate_named(fr_runs *r, const fr_identity *who, const char *name, int *valid,
                          json_object **errors, fr_reply *out)
{
    json_object *body = json_object_new_object();
    json_object_object_add(body, "manifest", json_object_new_string(name));
    fr_reply v = {0};
    fr__runs_handle_validate(r, who, body, &v);
    json_object_put(body);
    json_object *o = v.status == 200 && v.body ? json_tokener_parse(v.body) : NULL, *x;
    if (!o) {
        if (v.status && v.status != 200) {
            *out = v;
            return -1;
        }
        free(v.body);
        fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
        return -1;
    }
    free(v.body);
    *valid = json_object_object_get_ex(o, "valid", &x) && json_object_get_boolean(x);
    *errors =
        json_object_object_get_ex(o, "errors", &x) ? json_object_get(x) : json_object_new_array();
    json_object_put(o);
    return 0;
}

/* The graph of `text` as the server would parse it (its providers and limits). */
static json_object *graph_of_text(const fr_runs_config *cfg, const char *name, const char *text,
                                  size_t len)
{
    fr_diags d;
    fr__diags_init(&d, name);
    fr_yaml_limits yl = fr__serve_yaml_limits(&cfg->limits);
    fr_manifest *m = fr__manifest_parse_with_providers(name, text, len, cfg->manifest_dir, &yl,
                                                       cfg->providers, &d);
    json_object *g = fr__manifest_graph(m && d.n == 0 ? m : NULL);
    fr__manifest_free(m);
    fr__diags_free(&d);
    return g;
}

static void manifest_one(fr_runs *r, const fr_identity *who, const char *name, fr_reply *out)
{
    const fr_runs_config *cfg = fr__runs_config(r);
    if (!fr__serve_manifest_name_ok(name)) {
        field_error(out, FR_HE_BAD_MANIFEST_NAME, "name",
                    "name: a manifest is named by a file name in the server's manifest "
                    "directory ending in .yaml or .yml: no '/', '..' or absolute paths");
        return;
    }
    size_t len = 0;
    char *text = read_mine(cfg->manifest_dir, who, name, &len);
    if (!text) {
        fr__reply_error(out, FR_HE_MANIFEST_NOT_FOUND, "no manifest \"%s\" on this server", name);
        return;
    }
    int valid = 0;
    json_object *errors = NULL;
    if (validate_named(r, who, name, &valid, &errors, out) != 0) {
        free(text);
        return;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "namespace", json_object_new_string(who->namespace_));
    json_object_object_add(o, "text", json_object_new_string_len(text, (int)len));
    json_object_object_add(o, "valid", json_object_new_boolean(valid));
    json_object_object_add(o, "errors", errors);
    json_object_object_add(o, "graph", graph_of_text(cfg, name, text, len));
    free(text);
    fr__reply_json(out, 200, o);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void manifest_list(fr_runs *r, const fr_identity *who, fr_reply *out)
{
    const fr_runs_config *cfg = fr__runs_config(r);
    json_object *list = json_object_new_array();
    DIR *dir = cfg->manifest_dir ? opendir(cfg->manifest_dir) : NULL;
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while (dir && n < MAX_LISTED && (de = readdir(dir)) != NULL) {
        char **more =
            fr__serve_manifest_name_ok(de->d_name) ? realloc(names, (n + 1) * sizeof *names) : NULL;
        if (more && (more[n] = strdup(de->d_name)) != NULL)
            n++;
        if (more)
            names = more;
    }
    if (dir)
        closedir(dir);
    if (n)
        qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        char *text = read_mine(cfg->manifest_dir, who, names[i], &len);
        int valid = 0;
        json_object *errors = NULL;
        fr_reply refused = {0};
        int ok = text && validate_named(r, who, names[i], &valid, &errors, &refused) == 0;
        if (text && !ok && refused.status == 400) {
            /* Over one of the server's limits: listed, as invalid (the detail says why). */
            ok = 1;
            valid = 0;
            errors = json_object_new_array();
            json_object_array_add(errors, refused.body ? json_tokener_parse(refused.body) : NULL);
        }
        if (ok) {
            json_object *g = graph_of_text(cfg, names[i], text, len), *nodes;
            json_object *e = json_object_new_object();
            json_object_object_add(e, "name", json_object_new_string(names[i]));
            json_object_object_add(e, "valid", json_object_new_boolean(valid));
            json_object_object_add(
                e, "errors", json_object_new_int64((int64_t)json_object_array_length(errors)));
            json_object_object_add(
                e, "steps",
                json_object_object_get_ex(g, "nodes", &nodes)
                    ? json_object_new_int64((int64_t)json_object_array_length(nodes))
                    : json_object_new_int(0));
            json_object_array_add(list, e);
            json_object_put(g);
            json_object_put(errors);
        }
        /* A manifest validate refuses this caller (a role it narrows) is left out. */
        free(refused.body);
        free(text);
        free(names[i]);
    }
    free(names);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "namespace", json_object_new_string(who->namespace_));
    json_object_object_add(o, "manifests", list);
    fr__reply_json(out, 200, o);
}

void fr__console_manifests(fr_runs *r, const fr_identity *who, const char *name, fr_reply *out)
{
    if (name)
        manifest_one(r, who, name, out);
    else
        manifest_list(r, who, out);
}

/* ---- debug ---------------------------------------------------------------------------- */

/* Side `field` ("a" or "b") of a debug request: a trace document, or a run id whose trace
 * is read.  Returns the trace (json_object_put), or NULL with `out` filled. */
static json_object *debug_side(fr_runs *r, const fr_identity *who, json_object *body,
                               const char *field, fr_reply *out)
{
    json_object *v;
    char err[512];
    if (!json_object_object_get_ex(body, field, &v) || !v) {
        field_error(out, FR_HE_BAD_REQUEST, field,
                    "%s: required: a run id (a string) or a trace (an object)", field);
        return NULL;
    }
    if (json_object_is_type(v, json_type_string)) {
        const char *id = json_object_get_string(v);
        if (!*id || strlen(id) >= 40) {
            field_error(out, FR_HE_BAD_REQUEST, field, "%s: \"%.64s\" is not a run id", field, id);
            return NULL;
        }
        fr_reply why = {0};
        char *text = fr__runs_trace_text(r, who, id, &why);
        if (!text) {
            /* The lookup's own answer, with the side it was for. */
            json_object *o = why.body ? json_tokener_parse(why.body) : NULL, *e, *m;
            if (o && json_object_object_get_ex(o, "error", &e) &&
                json_object_object_get_ex(e, "message", &m)) {
                char msg[600];
                snprintf(msg, sizeof msg, "%s: %s", field, json_object_get_string(m));
                json_object_object_add(e, "message", json_object_new_string(msg));
                json_object_object_add(e, "field", json_object_new_string(field));
                free(why.body);
                why.body = NULL;
                int status = why.status;
                int retry = why.retry_after;
                fr__reply_json(out, status, o);
                out->retry_after = retry;
            } else {
                json_object_put(o);
                *out = why;
            }
            return NULL;
        }
        json_object *t = fr__trace_parse(text, strlen(text), err, sizeof err);
        free(text);
        if (!t)
            field_error(out, FR_HE_INVALID_TRACE, field, "%s: the run's trace: %s", field, err);
        return t;
    }
    if (!json_object_is_type(v, json_type_object)) {
        field_error(out, FR_HE_BAD_REQUEST, field,
                    "%s: must be a run id (a string) or a trace (an object)", field);
        return NULL;
    }
    const char *text = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
    json_object *t = fr__trace_parse(text, strlen(text), err, sizeof err);
    if (!t)
        field_error(out, FR_HE_INVALID_TRACE, field, "%s: %s", field, err);
    return t;
}

void fr__console_debug(fr_runs *r, const fr_identity *who, json_object *body, fr_reply *out)
{
    json_object_object_foreach(body, k, v)
    {
        (void)v;
        if (strcmp(k, "a") != 0 && strcmp(k, "b") != 0 && strcmp(k, "all") != 0) {
            field_error(out, FR_HE_UNKNOWN_FIELD, k,
                        "unknown field \"%.64s\" in the request body (this route takes a, b, all)",
                        k);
            return;
        }
    }
    json_object *all;
    int every = 0;
    if (json_object_object_get_ex(body, "all", &all)) {
        if (!json_object_is_type(all, json_type_boolean)) {
            field_error(out, FR_HE_BAD_REQUEST, "all", "all: must be true or false");
            return;
        }
        every = json_object_get_boolean(all);
    }
    json_object *a = debug_side(r, who, body, "a", out);
    json_object *b = a ? debug_side(r, who, body, "b", out) : NULL;
    json_object *o = a && b ? fr__trace_debug(a, b, every) : NULL;
    if (o)
        fr__reply_json(out, 200, o);
    else if (a && b)
        fr__reply_error(out, FR_HE_INTERNAL, "out of memory");
    json_object_put(a);
    json_object_put(b);
}

/* ---- usage ---------------------------------------------------------------------------- */

/* The control plane's answer to GET `path` with the caller's key: 0 with *got (its JSON),
 * or -1 with `out` filled.  A 4xx or 5xx it sends back is kept in *err_body (JSON) with
 * its status in *status when `soft`, else it is the reply. */
static int cp_get(struct fr_cp_client *cp, const char *bearer, const char *path, int soft,
                  json_object **got, json_object **err_body, fr_reply *out)
{
    char *body = NULL;
    long status = fr__cp_get_as(cp, path, bearer, &body);
    json_object *o = body ? json_tokener_parse(body) : NULL;
    free(body);
    *got = NULL;
    if (status == 0 || status >= 500 || (status == 200 && !o)) {
        json_object_put(o);
        fr__reply_error(out, FR_HE_CONTROLPLANE_UNAVAILABLE,
                        "cannot read usage: the control plane did not answer GET %s (%s)", path,
                        status ? "a server error" : "unreachable");
        out->retry_after = 5;
        return -1;
    }
    if (status == 200) {
        *got = o;
        return 0;
    }
    if (status == 401 || status == 403) {
        json_object_put(o);
        fr__reply_error(out, FR_HE_FORBIDDEN,
                        "the control plane refuses this key for GET %s (HTTP %ld): usage is read "
                        "with a key the control plane issued for the tenant, not one of serve's "
                        "keys file",
                        path, status);
        return -1;
    }
    if (soft && err_body) {
        *err_body = o ? o : fr__http_error_body(FR_HE_BILLING_ERROR, "no answer", NULL);
        return 0;
    }
    json_object_put(o);
    fr__reply_error(out, FR_HE_CONTROLPLANE_UNAVAILABLE,
                    "cannot read usage: the control plane answered GET %s with HTTP %ld", path,
                    status);
    return -1;
}

/* 1 when `p` is YYYY-MM with a month 01-12. */
static int period_ok(const char *p)
{
    return strlen(p) == 7 && p[4] == '-' && strspn(p, "0123456789-") == 7 &&
           strspn(p, "0123456789") == 4 && strspn(p + 5, "0123456789") == 2 &&
           ((p[5] == '0' && p[6] >= '1') || (p[5] == '1' && p[6] <= '2'));
}

void fr__console_usage(struct fr_cp_client *cp, const fr_identity *who, const char *bearer,
                       const char *period, fr_reply *out)
{
    if (!cp) {
        fr__reply_error(out, FR_HE_USAGE_UNAVAILABLE,
                        "usage is kept by the control plane, and this server runs without one "
                        "(start serve with --controlplane URL)");
        return;
    }
    if (!bearer || !*bearer) {
        fr__reply_error(out, FR_HE_USAGE_UNAVAILABLE,
                        "usage is read from the control plane with the caller's API key, and "
                        "this request has none (a client certificate): send Authorization: "
                        "Bearer KEY");
        return;
    }
    char month[8];
    if (period) {
        if (!period_ok(period)) {
            field_error(out, FR_HE_BAD_REQUEST, "period",
                        "period: \"%.32s\" is not a month YYYY-MM", period);
            return;
        }
        snprintf(month, sizeof month, "%s", period);
    } else {
        time_t now = (time_t)(fr__wall_us() / 1000000);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(month, sizeof month, "%Y-%m", &tm);
    }
    /* Tenant ids are [a-z0-9-] (the control plane's rule): nothing to escape. */
    char path[256];
    json_object *usage = NULL, *invoice = NULL, *invoice_err = NULL;
    snprintf(path, sizeof path, "/v1/usage?tenant_id=%s", who->tenant);
    if (cp_get(cp, bearer, path, 0, &usage, NULL, out) != 0)
        return;
    snprintf(path, sizeof path, "/v1/billing/invoice?tenant_id=%s&period=%s", who->tenant, month);
    if (cp_get(cp, bearer, path, 1, &invoice, &invoice_err, out) != 0) {
        json_object_put(usage);
        return;
    }
    json_object *o = json_object_new_object(), *e = NULL;
    json_object_object_add(o, "tenant_id", json_object_new_string(who->tenant));
    json_object_object_add(o, "period", json_object_new_string(month));
    json_object_object_add(o, "usage", usage);
    json_object_object_add(o, "invoice", invoice);
    /* An invoice the control plane cannot make (usage no rate card prices): why. */
    json_object_object_add(o, "invoice_error",
                           invoice_err && json_object_object_get_ex(invoice_err, "error", &e)
                               ? json_object_get(e)
                               : NULL);
    json_object_put(invoice_err);
    fr__reply_json(out, 200, o);
}

/* ---- whoami --------------------------------------------------------------------------- */

/* The actions GET /v1/whoami reports, by the names of its `may` object. */
static const struct {
    const char *name;
    fr_action action;
} may_actions[] = {
    {"run", FR_ACTION_RUN},
    {"validate", FR_ACTION_VALIDATE},
    {"replay", FR_ACTION_REPLAY},
    {"admin", FR_ACTION_ADMIN},
};

void fr__console_whoami(const fr_identity *who, fr_reply *out)
{
    json_object *o = json_object_new_object(), *may = json_object_new_object();
    json_object_object_add(o, "key_id", json_object_new_string(who->id));
    json_object_object_add(o, "tenant", json_object_new_string(who->tenant));
    json_object_object_add(o, "namespace", json_object_new_string(who->namespace_));
    json_object_object_add(o, "role", json_object_new_string(fr__role_name(who->role)));
    json_object_object_add(o, "via",
                           json_object_new_string(who->via_cert ? "client_certificate" : "key"));
    for (size_t i = 0; i < sizeof may_actions / sizeof may_actions[0]; i++)
        json_object_object_add(
            may, may_actions[i].name,
            json_object_new_boolean(fr__auth_allows(who->role, may_actions[i].action)));
    json_object_object_add(o, "may", may);
    fr__reply_json(out, 200, o);
}
