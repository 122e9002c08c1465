/* The control-plane HTTP server (libmicrohttpd, epoll thread pool) over cp_store.
 *
 * Every route answers at /X and /v1/X.  Auth is `Authorization: Bearer KEY` (or the
 * original's X-API-Key); the key's kind decides what it may do, never a request header:
 *
 *   any    /healthz /readyz                         no key
 *   GET    /sla                                     admin, service
 *   GET    /tenants[?q&page&page_size]              admin; tenant (itself only)
 *   POST   /tenants {id, name, namespace}           admin
 *   GET    /tenants/ID                              admin; tenant (itself, else 404)
 *   POST   /tenants/ID/suspend | /unsuspend         admin
 *   GET    /tenants/ID/keys                         admin; tenant (itself)
 *   POST   /tenants/ID/keys {role}                  admin (plaintext returned once)
 *   DELETE /tenants/ID/keys/KEY_ID                  admin
 *   POST   /service-keys                            admin
 *   DELETE /keys/KEY_ID                             admin
 *   GET    /keys/lookup?sha256=HEX                  admin, service
 *   GET    /usage[?tenant_id|q&page&page_size]      admin, tenant (itself)
 *   POST   /usage  event | [events] | {events, sla} admin, service
 *   GET    /billing/rates                           any key
 *   POST   /billing/rates {effective_from, currency, prices}  admin
 *   GET    /billing/invoice?tenant_id&period[&format=csv]     admin; tenant (itself)
 *   GET    /billing/summary?month                   admin; tenant (itself)
 *   POST   /billing/periods/YYYY-MM/close           admin
 *
 * Errors are {"error": {"code", "message"}}. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <json-c/json.h>
#include <microhttpd.h>

#include "http_body.h"
#include "observe.h"
#include "fileio.h"
#include "billing.h"
#include "controlplane.h"
#include "cp_store.h"
#include "manifest.h"
#include "trace.h"

#define MAX_EVENTS_PER_REQUEST 10000
#define MAX_QUANTITY           1000000000000LL /* per event: 1e12 tokens or runs */

typedef struct server {
    fr_cp_store *store;
    int require_client_cert;
    time_t started;
    atomic_long requests;
} server;

typedef struct req {
    fr_http_body body;
} req;

/* The caller, from its key. */
typedef struct caller {
    fr_cp_key key;
} caller;

/* ---- responses ------------------------------------------------------------------------- */

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status, const char *type,
                                const char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    if (status == 401)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

/* Sends `o` (released) with a trailing newline. */
static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_object *o)
{
    size_t len;
    const char *t = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
    char *b = malloc(len + 2);
    enum MHD_Result rc = MHD_NO;
    if (b) {
        memcpy(b, t, len);
        b[len] = '\n';
        rc = send_buf(c, status, "application/json", b, len + 1);
        free(b);
    }
    json_object_put(o);
    return rc;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *code,
                                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *code,
                                  const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_object *o = json_object_new_object(), *e = json_object_new_object();
    json_object_object_add(e, "code", json_object_new_string(code));
    json_object_object_add(e, "message", json_object_new_string(msg));
    json_object_object_add(o, "error", e);
    return send_json(c, status, o);
}

static enum MHD_Result not_found(struct MHD_Connection *c, const char *what, const char *id)
{
    return send_error(c, 404, "not_found", "%s \"%s\" not found", what, id);
}

static enum MHD_Result forbidden(struct MHD_Connection *c, const caller *who)
{
    return send_error(c, 403, "forbidden", "a %s key may not do this",
                      fr__key_kind_name(who->key.kind));
}

/* ---- request parsing ------------------------------------------------------------------- */

static const char *arg(struct MHD_Connection *c, const char *name)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    return v && *v ? v : NULL;
}

/* page / page_size as the original: bad or <= 0 gives the default, size clamped to 200. */
static void paging(struct MHD_Connection *c, int *page, int *size)
{
    const char *p = arg(c, "page"), *s = arg(c, "page_size");
    char *end;
    long v = p ? strtol(p, &end, 10) : 0;
    *page = p && !*end && v > 0 && v < 1000000000 ? (int)v : 1;
    v = s ? strtol(s, &end, 10) : 0;
    *size = s && !*end && v > 0 ? (v > 200 ? 200 : (int)v) : 50;
}

/* Parses the body as one JSON value.  On failure sends 400 (with the position) and returns
 * NULL with *sent set. */
static json_object *parse_body(struct MHD_Connection *c, const req *r, enum MHD_Result *sent)
{
    size_t len = r->body.buf.len;
    while (len && isspace((unsigned char)r->body.buf.data[len - 1]))
        len--;
    if (!len) {
        *sent = send_error(c, 400, "bad_json", "the request body is empty; expected JSON");
        return NULL;
    }
    json_tokener *tok = json_tokener_new_ex(64);
    json_object *o = tok ? json_tokener_parse_ex(tok, r->body.buf.data, (int)len) : NULL;
    enum json_tokener_error je = tok ? json_tokener_get_error(tok) : json_tokener_error_size;
    size_t end = tok ? json_tokener_get_parse_end(tok) : 0;
    if (je == json_tokener_success && end < len) {
        json_object_put(o);
        o = NULL;
        je = json_tokener_error_parse_unexpected;
    } else if (je == json_tokener_continue) {
        end = len;
        je = json_tokener_error_parse_eof;
    }
    json_tokener_free(tok);
    if (o)
        return o;
    int line = 1, col = 1;
    for (size_t i = 0; i < end && i < r->body.buf.len; i++) {
        if (r->body.buf.data[i] == '\n')
            line++, col = 1;
        else
            col++;
    }
    *sent = send_error(c, 400, "bad_json", "malformed JSON at line %d, column %d (byte %zu): %s",
                       line, col, end, json_tokener_error_desc(je));
    return NULL;
}

/* Field validation with messages naming the field (err gets "where.name ..."). */
typedef struct fieldctx {
    char err[512];
    const char *where; /* "events[3]" or "" */
} fieldctx;

static int ferr(fieldctx *f, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int ferr(fieldctx *f, const char *name, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(f->err, sizeof f->err, "%s%s%s %s", f->where, *f->where ? "." : "", name, msg);
    return -1;
}

/* Unknown fields are errors: a typo must not silently drop a quantity. */
static int only_fields(fieldctx *f, json_object *o, const char *const *allowed)
{
    json_object_object_foreach(o, k, v)
    {
        (void)v;
        int ok = 0;
        for (size_t i = 0; allowed[i]; i++)
            ok |= strcmp(k, allowed[i]) == 0;
        if (!ok)
            return ferr(f, k, "is not a known field");
    }
    return 0;
}

/* A string member: required or defaulting to "", at most max bytes. */
static int get_str(fieldctx *f, json_object *o, const char *name, int required, size_t max,
                   char *out, size_t size)
{
    json_object *v;
    out[0] = '\0';
    if (!json_object_object_get_ex(o, name, &v) || !v)
        return required ? ferr(f, name, "is required") : 0;
    if (!json_object_is_type(v, json_type_string))
        return ferr(f, name, "must be a string");
    size_t n = (size_t)json_object_get_string_len(v);
    if (n > max || n >= size)
        return ferr(f, name, "is longer than %zu bytes", max);
    if (required && n == 0)
        return ferr(f, name, "must not be empty");
    memcpy(out, json_object_get_string(v), n + 1);
    return 0;
}

/* An integer member in [0, max]; missing gives def, or an error when def < 0. */
static int get_int(fieldctx *f, json_object *o, const char *name, int64_t def, int64_t max,
                   int64_t *out)
{
    json_object *v;
    if (!json_object_object_get_ex(o, name, &v) || !v) {
        if (def < 0)
            return ferr(f, name, "is required (give 0 explicitly for none)");
        *out = def;
        return 0;
    }
    if (!json_object_is_type(v, json_type_int))
        return ferr(f, name, "must be an integer");
    errno = 0;
    int64_t x = json_object_get_int64(v);
    if (x == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX)
        return ferr(f, name, "is too large (at most %lld)", (long long)max);
    if (x < 0)
        return ferr(f, name, "must not be negative");
    if (x > max)
        return ferr(f, name, "is too large (at most %lld)", (long long)max);
    *out = x;
    return 0;
}

/* ---- routes: tenants and keys ---------------------------------------------------------- */

static int valid_tenant_id(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64 || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && !strchr("_-.", s[i]))
            return 0;
    return 1;
}

/* A tenant key may only name its own tenant; anything else looks like it does not exist. */
static int may_see(const caller *who, const char *tenant)
{
    return who->key.kind == FR_KEY_ADMIN ||
           (who->key.kind == FR_KEY_TENANT && strcmp(who->key.tenant, tenant) == 0);
}

static enum MHD_Result tenant_create(server *sv, struct MHD_Connection *c, const req *r)
{
    enum MHD_Result sent;
    json_object *b = parse_body(c, r, &sent);
    if (!b)
        return sent;
    fieldctx f = {.where = ""};
    static const char *const allowed[] = {"id", "name", "namespace", NULL};
    char id[65], name[201], ns_in[65], ns[33], err[256];
    if (!json_object_is_type(b, json_type_object))
        ferr(&f, "body", "must be a JSON object");
    else if (!only_fields(&f, b, allowed) && !get_str(&f, b, "id", 1, 64, id, sizeof id) &&
             !get_str(&f, b, "name", 0, 200, name, sizeof name) &&
             !get_str(&f, b, "namespace", 0, 64, ns_in, sizeof ns_in)) {
        if (!valid_tenant_id(id))
            ferr(&f, "id", "\"%s\" must match ^[a-z0-9][a-z0-9_.-]{0,63}$", id);
        else if (fr__namespace_normalise(ns_in[0] ? ns_in : id, ns, sizeof ns) != 0)
            ferr(&f, "namespace", "\"%s\" must match ^[a-z][a-z0-9_-]{1,31}$%s",
                 ns_in[0] ? ns_in : id, ns_in[0] ? "" : " (it defaults to the id)");
    }
    json_object_put(b);
    if (f.err[0])
        return send_error(c, 400, "invalid", "%s", f.err);
    fr_status st =
        fr__cp_store_tenant_create(sv->store, id, name[0] ? name : id, ns, err, sizeof err);
    if (st == FR_E_INVALID)
        return send_error(c, 409, "conflict", "%s", err);
    if (st != FR_OK)
        return send_error(c, 500, "internal", "cannot create the tenant: %s", err);
    return send_json(c, 201, fr__cp_store_tenant_get(sv->store, id));
}

static enum MHD_Result key_created(struct MHD_Connection *c, const char *plain, const fr_cp_key *k)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "key_id", json_object_new_string(k->id));
    json_object_object_add(o, "key", json_object_new_string(plain));
    char prefix[13];
    snprintf(prefix, sizeof prefix, "%.12s", plain);
    json_object_object_add(o, "prefix", json_object_new_string(prefix));
    json_object_object_add(o, "kind", json_object_new_string(fr__key_kind_name(k->kind)));
    json_object_object_add(o, "role", json_object_new_string(k->role));
    if (k->kind == FR_KEY_TENANT)
        json_object_object_add(o, "tenant_id", json_object_new_string(k->tenant));
    json_object_object_add(o, "note", json_object_new_string("the key is shown only once"));
    return send_json(c, 201, o);
}

static enum MHD_Result revoked(struct MHD_Connection *c, const char *key_id)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "key_id", json_object_new_string(key_id));
    json_object_object_add(o, "status", json_object_new_string("revoked"));
    return send_json(c, 200, o);
}

static enum MHD_Result tenant_key_create(server *sv, struct MHD_Connection *c, const req *r,
                                         const char *tenant)
{
    char role[16] = "operator";
    if (r->body.buf.len) {
        enum MHD_Result sent;
        json_object *b = parse_body(c, r, &sent);
        if (!b)
            return sent;
        fieldctx f = {.where = ""};
        static const char *const allowed[] = {"role", NULL};
        if (!json_object_is_type(b, json_type_object))
            ferr(&f, "body", "must be a JSON object");
        else if (!only_fields(&f, b, allowed) &&
                 !get_str(&f, b, "role", 0, 15, role, sizeof role)) {
            if (!role[0])
                snprintf(role, sizeof role, "operator");
            if (strcmp(role, "viewer") && strcmp(role, "operator") && strcmp(role, "admin"))
                ferr(&f, "role", "must be viewer, operator or admin");
        }
        json_object_put(b);
        if (f.err[0])
            return send_error(c, 400, "invalid", "%s", f.err);
    }
    char plain[80];
    fr_cp_key k;
    fr_status st = fr__cp_store_key_create(sv->store, FR_KEY_TENANT, tenant, role, plain, &k);
    if (st == FR_E_NOT_FOUND)
        return not_found(c, "tenant", tenant);
    if (st != FR_OK)
        return send_error(c, 500, "internal", "cannot create the key");
    return key_created(c, plain, &k);
}

static enum MHD_Result route_tenants(server *sv, struct MHD_Connection *c, const char *method,
                                     char **seg, int nseg, const req *r, const caller *who)
{
    int admin = who->key.kind == FR_KEY_ADMIN;
    if (nseg == 1) {
        if (strcmp(method, "GET") == 0) {
            if (!admin && who->key.kind != FR_KEY_TENANT)
                return forbidden(c, who);
            int page, size;
            paging(c, &page, &size);
            return send_json(c, 200,
                             fr__cp_store_tenant_list(sv->store, arg(c, "q"), page, size,
                                                      admin ? NULL : who->key.tenant));
        }
        if (strcmp(method, "POST") == 0)
            return admin ? tenant_create(sv, c, r) : forbidden(c, who);
        return send_error(c, 405, "method_not_allowed", "method %s not allowed", method);
    }
    const char *id = seg[1];
    if (!may_see(who, id))
        return who->key.kind == FR_KEY_TENANT ? not_found(c, "tenant", id) : forbidden(c, who);
    json_object *t = fr__cp_store_tenant_get(sv->store, id);
    if (!t)
        return not_found(c, "tenant", id);
    if (nseg == 2 && strcmp(method, "GET") == 0)
        return send_json(c, 200, t);
    json_object_put(t);
    if (nseg == 3 && (strcmp(seg[2], "suspend") == 0 || strcmp(seg[2], "unsuspend") == 0)) {
        if (strcmp(method, "POST") != 0)
            return send_error(c, 405, "method_not_allowed", "use POST");
        if (!admin)
            return forbidden(c, who);
        fr__cp_store_tenant_set_status(sv->store, id, seg[2][0] == 's' ? "suspended" : "active");
        return send_json(c, 200, fr__cp_store_tenant_get(sv->store, id));
    }
    if (nseg == 3 && strcmp(seg[2], "keys") == 0) {
        if (strcmp(method, "GET") == 0) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "tenant_id", json_object_new_string(id));
            json_object_object_add(o, "keys", fr__cp_store_key_list(sv->store, id));
            return send_json(c, 200, o);
        }
        if (strcmp(method, "POST") == 0)
            return admin ? tenant_key_create(sv, c, r, id) : forbidden(c, who);
        return send_error(c, 405, "method_not_allowed", "method %s not allowed", method);
    }
    if (nseg == 4 && strcmp(seg[2], "keys") == 0) {
        if (strcmp(method, "DELETE") != 0 && strcmp(method, "POST") != 0)
            return send_error(c, 405, "method_not_allowed", "use DELETE");
        if (!admin)
            return forbidden(c, who);
        if (fr__cp_store_key_revoke(sv->store, seg[3], id) != FR_OK)
            return not_found(c, "key", seg[3]);
        return revoked(c, seg[3]);
    }
    return send_error(c, 404, "not_found", "no such route");
}

static int is_hex64(char *s)
{
    if (strlen(s) != 64)
        return 0;
    for (char *p = s; *p; p++) {
        *p = (char)tolower((unsigned char)*p);
        if (!isxdigit((unsigned char)*p))
            return 0;
    }
    return 1;
}

static enum MHD_Result route_keys(server *sv, struct MHD_Connection *c, const char *method,
                                  char **seg, int nseg, const caller *who)
{
    if (nseg == 2 && strcmp(seg[1], "lookup") == 0) {
        if (strcmp(method, "GET") != 0)
            return send_error(c, 405, "method_not_allowed", "use GET");
        if (who->key.kind == FR_KEY_TENANT)
            return forbidden(c, who);
        char hex[80];
        snprintf(hex, sizeof hex, "%s", arg(c, "sha256") ? arg(c, "sha256") : "");
        if (!is_hex64(hex))
            return send_error(c, 400, "invalid", "sha256 must be 64 hex digits");
        fr_cp_key k;
        /* Only an active key of an active tenant authenticates a caller of `serve`. */
        if (fr__cp_store_key_lookup(sv->store, hex, &k) != FR_OK || k.kind != FR_KEY_TENANT ||
            !k.tenant_active)
            return send_error(c, 404, "not_found", "no active key with that hash");
        json_object *o = json_object_new_object();
        json_object_object_add(o, "tenant", json_object_new_string(k.tenant));
        json_object_object_add(o, "namespace", json_object_new_string(k.namespace_));
        json_object_object_add(o, "role", json_object_new_string(k.role));
        json_object_object_add(o, "key_id", json_object_new_string(k.id));
        return send_json(c, 200, o);
    }
    if (nseg == 2) {
        if (strcmp(method, "DELETE") != 0)
            return send_error(c, 405, "method_not_allowed", "use DELETE");
        if (who->key.kind != FR_KEY_ADMIN)
            return forbidden(c, who);
        if (fr__cp_store_key_revoke(sv->store, seg[1], NULL) != FR_OK)
            return not_found(c, "key", seg[1]);
        return revoked(c, seg[1]);
    }
    return send_error(c, 404, "not_found", "no such route");
}

/* ---- usage ----------------------------------------------------------------------------- */

static int parse_event(fieldctx *f, json_object *o, fr_cp_event *e)
{
    static const char *const allowed[] = {
        "idempotency_key", "tenant",        "tenant_id", "occurred_at", "kind", "provider", "model",
        "input_tokens",    "output_tokens", "runs",      "invocations", NULL};
    char ts[64];
    memset(e, 0, sizeof *e);
    if (!json_object_is_type(o, json_type_object))
        return ferr(f, "event", "must be a JSON object");
    json_object *v;
    int has_tenant = json_object_object_get_ex(o, "tenant", &v);
    if (only_fields(f, o, allowed) ||
        get_str(f, o, "idempotency_key", 1, 128, e->idem, sizeof e->idem) ||
        get_str(f, o, has_tenant ? "tenant" : "tenant_id", 1, 64, e->tenant, sizeof e->tenant) ||
        get_str(f, o, "occurred_at", 1, 40, ts, sizeof ts) ||
        get_str(f, o, "kind", 1, 15, e->kind, sizeof e->kind) ||
        get_str(f, o, "provider", 0, 64, e->provider, sizeof e->provider) ||
        get_str(f, o, "model", 0, 127, e->model, sizeof e->model) ||
        get_int(f, o, "input_tokens", 0, MAX_QUANTITY, &e->input_tokens) ||
        get_int(f, o, "output_tokens", 0, MAX_QUANTITY, &e->output_tokens) ||
        get_int(f, o, json_object_object_get_ex(o, "runs", &v) ? "runs" : "invocations", 0,
                MAX_QUANTITY, &e->runs))
        return -1;
    if (fr__rfc3339_parse(ts, &e->occurred_at) != 0 || e->occurred_at < 0)
        return ferr(f, "occurred_at", "\"%s\" is not an RFC 3339 time (2024-05-01T12:00:00Z)", ts);
    if (strcmp(e->kind, "run") != 0 && strcmp(e->kind, "provider_call") != 0)
        return ferr(f, "kind", "must be run or provider_call");
    return 0;
}

static int parse_sla(fieldctx *f, json_object *o, fr_cp_sla *s)
{
    static const char *const allowed[] = {
        "requests",   "errors", "latency_ms_p50", "latency_ms_p99", "window_start",
        "window_end", NULL};
    char a[64], b[64];
    if (!json_object_is_type(o, json_type_object))
        return ferr(f, "sla", "must be a JSON object");
    if (only_fields(f, o, allowed) || get_int(f, o, "requests", -1, MAX_QUANTITY, &s->requests) ||
        get_int(f, o, "errors", -1, MAX_QUANTITY, &s->errors) ||
        get_int(f, o, "latency_ms_p50", -1, 86400000, &s->p50_ms) ||
        get_int(f, o, "latency_ms_p99", -1, 86400000, &s->p99_ms) ||
        get_str(f, o, "window_start", 1, 40, a, sizeof a) ||
        get_str(f, o, "window_end", 1, 40, b, sizeof b))
        return -1;
    if (fr__rfc3339_parse(a, &s->window_start) || fr__rfc3339_parse(b, &s->window_end))
        return ferr(f, "window_start", "and window_end must be RFC 3339 times");
    if (s->window_end <= s->window_start)
        return ferr(f, "window_end", "must be after window_start");
    if (s->errors > s->requests)
        return ferr(f, "errors", "must not exceed requests");
    return 0;
}

static enum MHD_Result usage_post(server *sv, struct MHD_Connection *c, const req *r,
                                  const caller *who)
{
    enum MHD_Result sent;
    json_object *b = parse_body(c, r, &sent);
    if (!b)
        return sent;
    json_object *events = NULL, *sla = NULL, *single = NULL;
    fieldctx f = {.where = ""};
    if (json_object_is_type(b, json_type_array)) {
        events = b;
    } else if (json_object_is_type(b, json_type_object) &&
               (json_object_object_get_ex(b, "events", &events) ||
                json_object_object_get_ex(b, "sla", &sla))) {
        static const char *const allowed[] = {"events", "sla", NULL};
        json_object_object_get_ex(b, "sla", &sla);
        if (!only_fields(&f, b, allowed) && events && !json_object_is_type(events, json_type_array))
            ferr(&f, "events", "must be an array");
    } else {
        single = b;
    }
    size_t n = single ? 1 : events ? json_object_array_length(events) : 0;
    size_t n_sla = !sla                                        ? 0
                   : json_object_is_type(sla, json_type_array) ? json_object_array_length(sla)
                                                               : 1;
    if (!f.err[0] && (n > MAX_EVENTS_PER_REQUEST || n_sla > 100))
        ferr(&f, "events", "has more than %d events (send several requests)",
             MAX_EVENTS_PER_REQUEST);
    if (!f.err[0] && n == 0 && n_sla == 0)
        ferr(&f, "events", "is empty");
    fr_cp_event *ev = f.err[0] ? NULL : calloc(n ? n : 1, sizeof *ev);
    fr_cp_sla *sl = f.err[0] ? NULL : calloc(n_sla ? n_sla : 1, sizeof *sl);
    char where[32];
    for (size_t i = 0; i < n && ev && !f.err[0]; i++) {
        snprintf(where, sizeof where, single ? "" : "events[%zu]", i);
        f.where = where;
        parse_event(&f, single ? single : json_object_array_get_idx(events, i), &ev[i]);
    }
    for (size_t i = 0; i < n_sla && sl && !f.err[0]; i++) {
        f.where = "";
        parse_sla(
            &f, json_object_is_type(sla, json_type_array) ? json_object_array_get_idx(sla, i) : sla,
            &sl[i]);
    }
    json_object_put(b);
    if (f.err[0] || !ev || !sl) {
        free(ev);
        free(sl);
        return f.err[0] ? send_error(c, 400, "invalid", "%s", f.err)
                        : send_error(c, 500, "internal", "out of memory");
    }
    size_t accepted, dups, bad = 0;
    fr_status st =
        fr__cp_store_usage_insert(sv->store, ev, n, sl, n_sla, who->key.id, &accepted, &dups, &bad);
    enum MHD_Result rc;
    if (st == FR_E_NOT_FOUND) {
        json_object *o = json_object_new_object(), *e = json_object_new_object();
        char msg[200];
        snprintf(msg, sizeof msg, "events[%zu].tenant \"%s\" not found; nothing was stored", bad,
                 ev[bad].tenant);
        json_object_object_add(e, "code", json_object_new_string("unknown_tenant"));
        json_object_object_add(e, "message", json_object_new_string(msg));
        json_object_object_add(e, "index", json_object_new_int64((int64_t)bad));
        json_object_object_add(o, "error", e);
        rc = send_json(c, 400, o);
    } else if (st != FR_OK) {
        rc = send_error(c, 503, "storage", "usage not stored (retry with the same keys)");
    } else {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "accepted", json_object_new_int64((int64_t)accepted));
        json_object_object_add(o, "duplicates", json_object_new_int64((int64_t)dups));
        json_object_object_add(o, "sla_reports", json_object_new_int64((int64_t)n_sla));
        rc = send_json(c, 202, o);
    }
    free(ev);
    free(sl);
    return rc;
}

static enum MHD_Result route_usage(server *sv, struct MHD_Connection *c, const char *method,
                                   const req *r, const caller *who)
{
    if (strcmp(method, "POST") == 0) {
        if (who->key.kind == FR_KEY_TENANT)
            return forbidden(c, who);
        return usage_post(sv, c, r, who);
    }
    if (strcmp(method, "GET") != 0)
        return send_error(c, 405, "method_not_allowed", "method %s not allowed", method);
    if (who->key.kind == FR_KEY_SERVICE)
        return forbidden(c, who);
    const char *tenant = arg(c, "tenant_id");
    if (tenant) {
        if (!may_see(who, tenant))
            return not_found(c, "tenant", tenant);
        return send_json(c, 200, fr__cp_store_usage_tenant(sv->store, tenant));
    }
    int page, size;
    paging(c, &page, &size);
    return send_json(
        c, 200,
        fr__cp_store_usage_list(sv->store, arg(c, "q"), page, size,
                                who->key.kind == FR_KEY_ADMIN ? NULL : who->key.tenant));
}

/* ---- billing --------------------------------------------------------------------------- */

static int32_t today(void)
{
    return (int32_t)(time(NULL) / 86400);
}

static void current_period(char out[8])
{
    char ts[21];
    fr__rfc3339_format((int64_t)time(NULL), ts);
    snprintf(out, 8, "%.7s", ts);
}

/* The YYYY-MM in query argument `name` (or `alias`), else the current month.  Returns 0,
 * or -1 when malformed. */
static int month_arg(struct MHD_Connection *c, const char *name, const char *alias, char out[8])
{
    const char *m = arg(c, name) ? arg(c, name) : arg(c, alias);
    int32_t a, b;
    if (m && fr__period_parse(m, &a, &b) != 0)
        return -1;
    if (m)
        snprintf(out, 8, "%s", m);
    else
        current_period(out);
    return 0;
}

static enum MHD_Result rates_post(server *sv, struct MHD_Connection *c, const req *r)
{
    enum MHD_Result sent;
    json_object *b = parse_body(c, r, &sent);
    if (!b)
        return sent;
    fieldctx f = {.where = ""};
    static const char *const allowed[] = {"effective_from", "currency", "prices", NULL};
    static const char *const pallowed[] = {"model", "input_per_mtok", "output_per_mtok", "per_run",
                                           NULL};
    char eff[16], cur[8];
    int32_t day = 0;
    json_object *prices = NULL;
    fr_price *p = NULL;
    size_t n = 0;
    if (!json_object_is_type(b, json_type_object))
        ferr(&f, "body", "must be a JSON object");
    else if (!only_fields(&f, b, allowed) &&
             !get_str(&f, b, "effective_from", 1, 10, eff, sizeof eff) &&
             !get_str(&f, b, "currency", 0, 3, cur, sizeof cur)) {
        if (!cur[0])
            snprintf(cur, sizeof cur, "USD");
        if (fr__date_parse(eff, &day) != 0)
            ferr(&f, "effective_from", "\"%s\" must be a date YYYY-MM-DD", eff);
        else if (!fr__currency_minor_micros(cur))
            ferr(&f, "currency", "\"%s\" is not a supported ISO 4217 code", cur);
        else if (!json_object_object_get_ex(b, "prices", &prices) ||
                 !json_object_is_type(prices, json_type_array) || !json_object_array_length(prices))
            ferr(&f, "prices",
                 "must be a non-empty array of {model, input_per_mtok, output_per_mtok, per_run}");
    }
    if (!f.err[0]) {
        n = json_object_array_length(prices);
        p = calloc(n, sizeof *p);
    }
    char where[32];
    for (size_t i = 0; p && i < n && !f.err[0]; i++) {
        json_object *o = json_object_array_get_idx(prices, i);
        snprintf(where, sizeof where, "prices[%zu]", i);
        f.where = where;
        if (!json_object_is_type(o, json_type_object)) {
            ferr(&f, "price", "must be an object");
            break;
        }
        if (only_fields(&f, o, pallowed) ||
            get_str(&f, o, "model", 1, 127, p[i].model, sizeof p[i].model))
            break;
        for (int k = 0; k < FR_BILL_KINDS && !f.err[0]; k++)
            get_int(&f, o, pallowed[k + 1], -1, INT64_MAX, &p[i].price[k]);
        for (size_t j = 0; j < i && !f.err[0]; j++)
            if (strcmp(p[j].model, p[i].model) == 0)
                ferr(&f, "model", "\"%s\" is listed twice", p[i].model);
    }
    json_object_put(b);
    if (f.err[0]) {
        free(p);
        return send_error(c, 400, "invalid", "%s", f.err);
    }
    int64_t version = 0;
    char err[256] = "";
    fr_status st =
        fr__cp_store_card_create(sv->store, eff, day, cur, p, n, &version, err, sizeof err);
    free(p);
    if (st == FR_E_INVALID)
        return send_error(c, 409, "period_closed", "%s", err);
    if (st != FR_OK)
        return send_error(c, 500, "internal", "cannot store the rate card: %s", err);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "version", json_object_new_int64(version));
    json_object_object_add(o, "effective_from", json_object_new_string(eff));
    json_object_object_add(o, "currency", json_object_new_string(cur));
    return send_json(c, 201, o);
}

static enum MHD_Result invoice_get(server *sv, struct MHD_Connection *c, const caller *who)
{
    const char *tenant = arg(c, "tenant_id");
    if (!tenant && who->key.kind == FR_KEY_TENANT)
        tenant = who->key.tenant;
    if (!tenant)
        return send_error(c, 400, "invalid", "tenant_id is required");
    if (!may_see(who, tenant))
        return not_found(c, "tenant", tenant);
    json_object *t = fr__cp_store_tenant_get(sv->store, tenant);
    if (!t)
        return not_found(c, "tenant", tenant);
    json_object_put(t);
    char period[8];
    if (month_arg(c, "period", "month", period) != 0)
        return send_error(c, 400, "invalid", "invalid period format, expected YYYY-MM");
    fr_invoice inv;
    char err[300];
    fr_status st = fr__cp_store_invoice(sv->store, tenant, period, &inv, err, sizeof err);
    if (st != FR_OK)
        return send_error(c, 409, st == FR_E_NOT_FOUND ? "unpriced_usage" : "billing_error", "%s",
                          err);
    const char *fmt = arg(c, "format");
    enum MHD_Result rc;
    if (fmt && strcasecmp(fmt, "csv") == 0) {
        char *csv = fr__invoice_csv(&inv);
        rc = csv ? send_buf(c, 200, "text/csv; charset=utf-8", csv, strlen(csv))
                 : send_error(c, 500, "internal", "out of memory");
        free(csv);
    } else {
        char *js = fr__invoice_json(&inv);
        json_object *o = js ? json_tokener_parse(js) : NULL;
        free(js);
        rc = o ? send_json(c, 200, o) : send_error(c, 500, "internal", "out of memory");
    }
    fr__invoice_clear(&inv);
    return rc;
}

static enum MHD_Result summary_get(server *sv, struct MHD_Connection *c, const caller *who)
{
    char month[8];
    if (month_arg(c, "month", "period", month) != 0)
        return send_error(c, 400, "invalid", "invalid month format, expected YYYY-MM");
    char **ids;
    size_t n;
    fr__cp_store_period_tenants(sv->store, month, &ids, &n);
    json_object *o = json_object_new_object(), *totals = json_object_new_array();
    int64_t grand_runs = 0, grand_micros = 0;
    char currency[4] = "";
    int mixed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (!may_see(who, ids[i])) {
            free(ids[i]);
            continue;
        }
        fr_invoice inv;
        char err[300];
        json_object *t = json_object_new_object();
        json_object_object_add(t, "tenant_id", json_object_new_string(ids[i]));
        if (fr__cp_store_invoice(sv->store, ids[i], month, &inv, err, sizeof err) == FR_OK) {
            int64_t q[FR_BILL_KINDS] = {0};
            for (size_t l = 0; l < inv.n_lines; l++)
                q[inv.lines[l].kind] += inv.lines[l].quantity;
            json_object_object_add(t, "invocations", json_object_new_int64(q[FR_BILL_RUNS]));
            json_object_object_add(t, "input_tokens", json_object_new_int64(q[FR_BILL_INPUT]));
            json_object_object_add(t, "output_tokens", json_object_new_int64(q[FR_BILL_OUTPUT]));
            json_object_object_add(t, "currency", json_object_new_string(inv.currency));
            json_object_object_add(t, "amount_micros", json_object_new_int64(inv.total));
            grand_runs += q[FR_BILL_RUNS];
            mixed |= currency[0] && strcmp(currency, inv.currency) != 0;
            snprintf(currency, sizeof currency, "%s", inv.currency);
            grand_micros += inv.total;
            fr__invoice_clear(&inv);
        } else {
            failed = 1;
            json_object_object_add(t, "error", json_object_new_string(err));
        }
        json_object_array_add(totals, t);
        free(ids[i]);
    }
    free(ids);
    json_object_object_add(o, "month", json_object_new_string(month));
    json_object_object_add(
        o, "status",
        json_object_new_string(fr__cp_store_period_closed(sv->store, month) ? "closed" : "open"));
    json_object_object_add(o, "totals", totals);
    json_object_object_add(o, "grand_total_invocations", json_object_new_int64(grand_runs));
    json_object_object_add(o, "currency",
                           currency[0] && !mixed ? json_object_new_string(currency) : NULL);
    json_object_object_add(o, "grand_total_micros",
                           mixed || failed ? NULL : json_object_new_int64(grand_micros));
    return send_json(c, 200, o);
}

static enum MHD_Result period_close(server *sv, struct MHD_Connection *c, const char *period)
{
    int32_t first, next;
    if (fr__period_parse(period, &first, &next) != 0)
        return send_error(c, 400, "invalid", "invalid period format, expected YYYY-MM");
    if (next > today())
        return send_error(c, 409, "period_open", "period %s has not ended yet", period);
    int64_t at;
    if (fr__cp_store_period_close(sv->store, period, &at) != FR_OK)
        return send_error(c, 500, "internal", "cannot close the period");
    char ts[21];
    fr__rfc3339_format(at, ts);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "period", json_object_new_string(period));
    json_object_object_add(o, "status", json_object_new_string("closed"));
    json_object_object_add(o, "closed_at", json_object_new_string(ts));
    return send_json(c, 200, o);
}

static enum MHD_Result route_billing(server *sv, struct MHD_Connection *c, const char *method,
                                     char **seg, int nseg, const req *r, const caller *who)
{
    int admin = who->key.kind == FR_KEY_ADMIN, get = strcmp(method, "GET") == 0;
    if (nseg == 2 && strcmp(seg[1], "rates") == 0) {
        if (get)
            return send_json(c, 200, fr__cp_store_card_list(sv->store, today()));
        if (strcmp(method, "POST") == 0)
            return admin ? rates_post(sv, c, r) : forbidden(c, who);
        return send_error(c, 405, "method_not_allowed", "method %s not allowed", method);
    }
    if (nseg == 2 && (strcmp(seg[1], "invoice") == 0 || strcmp(seg[1], "summary") == 0)) {
        if (!get)
            return send_error(c, 405, "method_not_allowed", "use GET");
        if (who->key.kind == FR_KEY_SERVICE)
            return forbidden(c, who);
        return seg[1][0] == 'i' ? invoice_get(sv, c, who) : summary_get(sv, c, who);
    }
    if (nseg == 4 && strcmp(seg[1], "periods") == 0 && strcmp(seg[3], "close") == 0) {
        if (strcmp(method, "POST") != 0)
            return send_error(c, 405, "method_not_allowed", "use POST");
        return admin ? period_close(sv, c, seg[2]) : forbidden(c, who);
    }
    return send_error(c, 404, "not_found", "no such route");
}

/* ---- SLA ------------------------------------------------------------------------------- */

static enum MHD_Result sla_get(server *sv, struct MHD_Connection *c)
{
    const char *w = arg(c, "window");
    char *end = NULL;
    long window = w ? strtol(w, &end, 10) : 86400;
    if (w && (*end || window <= 0 || window > 90L * 86400))
        return send_error(c, 400, "invalid", "window must be seconds in [1, 7776000]");
    int64_t to = (int64_t)time(NULL) + 1, from = to - window;
    fr_cp_sla_sum s;
    if (fr__cp_store_sla(sv->store, from, to, &s) != FR_OK)
        return send_error(c, 503, "storage", "cannot read SLA reports");
    json_object *o = json_object_new_object();
    char a[21], b[21];
    fr__rfc3339_format(from, a);
    fr__rfc3339_format(to, b);
    json_object_object_add(o, "window_seconds", json_object_new_int64(window));
    json_object_object_add(o, "from", json_object_new_string(a));
    json_object_object_add(o, "to", json_object_new_string(b));
    json_object_object_add(o, "reports", json_object_new_int64(s.reports));
    json_object_object_add(o, "requests", json_object_new_int64(s.requests));
    json_object_object_add(o, "errors", json_object_new_int64(s.errors));
    /* Availability in parts per million, so it is exact and integer. */
    json_object *avail = NULL, *met = NULL, *ppm = NULL;
    if (s.requests) {
        int64_t good = s.requests - s.errors;
        int64_t v = (int64_t)(((fr_i128)good * 1000000) / s.requests);
        ppm = json_object_new_int64(v);
        avail = json_object_new_double((double)good / (double)s.requests);
        met = json_object_new_boolean(v >= 999000);
    }
    json_object_object_add(o, "availability", avail);
    json_object_object_add(o, "availability_ppm", ppm);
    json_object_object_add(o, "latency_ms_p50",
                           s.requests ? json_object_new_int64(s.p50_ms) : NULL);
    json_object_object_add(o, "latency_ms_p99",
                           s.requests ? json_object_new_int64(s.p99_ms) : NULL);
    json_object_object_add(o, "slo_target", json_object_new_string("99.9%"));
    json_object_object_add(o, "slo_met", met);
    json_object_object_add(o, "uptime_seconds",
                           json_object_new_int64((int64_t)(time(NULL) - sv->started)));
    json_object_object_add(o, "total_requests", json_object_new_int64(atomic_load(&sv->requests)));
    return send_json(c, 200, o);
}

/* ---- dispatch -------------------------------------------------------------------------- */

/* Resolves the caller's key; sends 401/403 and returns -1 when there is none usable. */
static int authenticate(server *sv, struct MHD_Connection *c, caller *who, enum MHD_Result *sent)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *key = NULL;
    if (h && strncasecmp(h, "Bearer ", 7) == 0)
        key = h + 7;
    else if (!h)
        key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-API-Key");
    while (key && *key == ' ')
        key++;
    if (!key || !*key) {
        *sent = send_error(c, 401, "unauthorized", "missing API key (Authorization: Bearer KEY)");
        return -1;
    }
    char hash[65];
    fr__sha256_hex(key, strlen(key), hash);
    if (fr__cp_store_key_lookup(sv->store, hash, &who->key) != FR_OK) {
        *sent = send_error(c, 401, "unauthorized", "invalid or revoked API key");
        return -1;
    }
    if (who->key.kind == FR_KEY_TENANT && !who->key.tenant_active) {
        *sent =
            send_error(c, 403, "tenant_suspended", "tenant \"%s\" is suspended", who->key.tenant);
        return -1;
    }
    return 0;
}

/* With CONTROLPLANE_TLS_REQUIRE_CLIENT_CERT: the peer's certificate must verify against
 * the configured CA. */
static int client_cert_ok(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session)
        return 0;
    gnutls_session_t s = (gnutls_session_t)ci->tls_session;
    unsigned int n = 0, status = 0;
    if (!gnutls_certificate_get_peers(s, &n) || n == 0)
        return 0;
    return gnutls_certificate_verify_peers2(s, &status) == 0 && status == 0;
}

static enum MHD_Result dispatch(server *sv, struct MHD_Connection *c, const char *url,
                                const char *method, const req *r)
{
    atomic_fetch_add(&sv->requests, 1);
    if (sv->require_client_cert && !client_cert_ok(c))
        return send_error(c, 403, "client_certificate_required",
                          "a client certificate signed by the configured CA is required");
    if (strncmp(url, "/v1/", 4) == 0)
        url += 3;
    if (strcmp(url, "/healthz") == 0)
        return send_buf(c, 200, "text/plain", "ok\n", 3);
    if (strcmp(url, "/readyz") == 0)
        return fr__cp_store_ping(sv->store) ? send_buf(c, 200, "text/plain", "ready\n", 6)
                                            : send_buf(c, 503, "text/plain", "not ready\n", 10);
    char path[512];
    snprintf(path, sizeof path, "%s", url + 1);
    char *seg[8];
    int nseg = 0;
    for (char *save = NULL, *t = strtok_r(path, "/", &save); t && nseg < 8;
         t = strtok_r(NULL, "/", &save))
        seg[nseg++] = t;
    static const char *const known[] = {"sla",          "tenants", "keys",
                                        "service-keys", "usage",   "billing"};
    int k = -1;
    for (int i = 0; nseg && i < (int)(sizeof known / sizeof known[0]); i++)
        if (strcmp(seg[0], known[i]) == 0)
            k = i;
    if (k < 0)
        return send_error(c, 404, "not_found", "no route %s", url);
    if (r->body.too_big)
        return send_error(c, 413, "body_too_large", "the request body exceeds %d bytes",
                          FR_CP_MAX_BODY);
    caller who;
    enum MHD_Result sent;
    if (authenticate(sv, c, &who, &sent) != 0)
        return sent;
    switch (k) {
    case 0:
        if (nseg != 1)
            break;
        if (who.key.kind == FR_KEY_TENANT)
            return forbidden(c, &who);
        return sla_get(sv, c);
    case 1: return route_tenants(sv, c, method, seg, nseg, r, &who);
    case 2: return route_keys(sv, c, method, seg, nseg, &who);
    case 3:
        if (nseg != 1)
            break;
        if (strcmp(method, "POST") != 0)
            return send_error(c, 405, "method_not_allowed", "use POST");
        if (who.key.kind != FR_KEY_ADMIN)
            return forbidden(c, &who);
        char plain[80];
        fr_cp_key key;
        if (fr__cp_store_key_create(sv->store, FR_KEY_SERVICE, NULL, NULL, plain, &key) != FR_OK)
            return send_error(c, 500, "internal", "cannot create the key");
        return key_created(c, plain, &key);
    case 4:
        if (nseg != 1)
            break;
        return route_usage(sv, c, method, r, &who);
    case 5: return route_billing(sv, c, method, seg, nseg, r, &who);
    }
    return send_error(c, 404, "not_found", "no route %s", url);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    (void)version;
    server *sv = cls;
    req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        const char *cl =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > FR_CP_MAX_BODY) {
            /* Refuse before reading: MHD closes the connection after this answer. */
            r->body.too_big = 1;
            return send_error(c, 413, "body_too_large", "the request body exceeds %d bytes",
                              FR_CP_MAX_BODY);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (fr__http_body_append(&r->body, upload, *upload_size, FR_CP_MAX_BODY) != 0)
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    return dispatch(sv, c, url, method, r);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    req *r = *con_cls;
    if (r) {
        free(r->body.buf.data);
        free(r);
        *con_cls = NULL;
    }
}

/* ---- the command ----------------------------------------------------------------------- */

static char *slurp(const char *path)
{
    return fr__file_read(path, NULL);
}

/* Binds ADDR ("host:port", ":port", "[v6]:port").  Returns the socket or -1 (err set);
 * shown receives "host:port" as bound. */
static int listen_on(const char *addr, char *shown, size_t size, char *err, size_t errlen)
{
    char host[256] = "", port[16];
    const char *colon = strrchr(addr, ':');
    if (!colon || !colon[1] || strlen(colon + 1) >= sizeof port) {
        snprintf(err, errlen, "address \"%s\" must be HOST:PORT or :PORT", addr);
        return -1;
    }
    snprintf(port, sizeof port, "%s", colon + 1);
    size_t hl = (size_t)(colon - addr);
    if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']')
        snprintf(host, sizeof host, "%.*s", (int)(hl - 2), addr + 1);
    else if (hl < sizeof host)
        snprintf(host, sizeof host, "%.*s", (int)hl, addr);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    int g = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (g != 0) {
        snprintf(err, errlen, "address \"%s\": %s", addr, gai_strerror(g));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        if (!host[0] && ai->ai_family != AF_INET)
            continue; /* ":port" binds every IPv4 address, as the original did on Linux */
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 512) != 0) {
            snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return -1;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    char ip[INET6_ADDRSTRLEN] = "";
    unsigned p = 0;
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        p = ntohs(s6->sin6_port);
        snprintf(shown, size, "[%s]:%u", ip, p);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        p = ntohs(s4->sin_port);
        snprintf(shown, size, "%s:%u", ip, p);
    }
    return fd;
}

static int open_store(const cli_command *cmd, const char *db, fr_cp_store **out)
{
    char err[512];
    fr_status st = fr__cp_store_open(db, out, err, sizeof err);
    if (st != FR_OK) {
        fr__cli_error(cmd, "%s", err);
        return st == FR_E_UNSUPPORTED ? FR_EXIT_USAGE : FR_EXIT_FAILED;
    }
    return FR_EXIT_OK;
}

static int serve(const cli_command *cmd, fr_cp_store *store, const char *addr)
{
    server sv = {.store = store, .started = time(NULL)};
    const char *env_key = getenv("CONTROLPLANE_API_KEY");
    if (env_key && *env_key) {
        char hash[65];
        fr__sha256_hex(env_key, strlen(env_key), hash);
        if (fr__cp_store_key_register_admin(store, hash) != FR_OK) {
            fr__cli_error(cmd, "cannot register CONTROLPLANE_API_KEY");
            return FR_EXIT_FAILED;
        }
    }
    int tls = fr__obs_env_truthy("CONTROLPLANE_TLS_ENABLED");
    char *cert = NULL, *key = NULL, *ca = NULL;
    if (tls) {
        const char *cf = getenv("CONTROLPLANE_TLS_CERT_FILE"),
                   *kf = getenv("CONTROLPLANE_TLS_KEY_FILE");
        if (!cf || !*cf || !kf || !*kf) {
            fr__cli_error(cmd, "tls cert_file and key_file are required "
                               "(CONTROLPLANE_TLS_CERT_FILE, CONTROLPLANE_TLS_KEY_FILE)");
            return FR_EXIT_USAGE;
        }
        cert = slurp(cf);
        key = slurp(kf);
        if (!cert || !key) {
            fr__cli_error(cmd, "cannot read %s or %s", cf, kf);
            free(cert);
            free(key);
            return FR_EXIT_USAGE;
        }
        if (fr__obs_env_truthy("CONTROLPLANE_TLS_REQUIRE_CLIENT_CERT")) {
            const char *caf = getenv("CONTROLPLANE_TLS_CA_FILE");
            ca = caf && *caf ? slurp(caf) : NULL;
            if (!ca) {
                fr__cli_error(cmd, "CONTROLPLANE_TLS_REQUIRE_CLIENT_CERT needs a readable "
                                   "CONTROLPLANE_TLS_CA_FILE");
                free(cert);
                free(key);
                return FR_EXIT_USAGE;
            }
            sv.require_client_cert = 1;
        }
    }
    char shown[300], err[300];
    int fd = listen_on(addr, shown, sizeof shown, err, sizeof err);
    if (fd < 0) {
        fr__cli_error(cmd, "%s", err);
        free(cert), free(key), free(ca);
        return FR_EXIT_FAILED;
    }
    /* Signals are taken by sigwait below; worker threads inherit the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned threads = (unsigned)(ncpu > 0 ? ncpu * 2 : 4);
    if (threads < 4)
        threads = 4;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     (tls ? MHD_USE_TLS : 0);
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_LISTEN_SOCKET, fd, NULL},
        {MHD_OPTION_THREAD_POOL_SIZE, threads, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, 30, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, 1000, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, NULL},
        {tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, cert},
        {tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, key},
        {ca ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0, ca},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_Daemon *d = MHD_start_daemon(flags, 0, NULL, NULL, handler, &sv, MHD_OPTION_ARRAY,
                                            opts, MHD_OPTION_END);
    if (!d) {
        fr__cli_error(cmd, "cannot start the HTTP server on %s", shown);
        close(fd);
        free(cert), free(key), free(ca);
        return FR_EXIT_FAILED;
    }
    printf("listening on %s://%s\n", tls ? "https" : "http", shown);
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    close(fd);
    free(cert), free(key), free(ca);
    fprintf(stderr, "fluxroute controlplane: stopped (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    return FR_EXIT_OK;
}

int fr__cmd_controlplane(const cli_command *cmd, int argc, char **argv)
{
    const char *db = NULL, *addr = NULL, *pos[1];
    size_t n_pos;
    const cli_opt opts[] = {{"--db", 1, &db, NULL, NULL},
                            {"--addr", 1, &addr, NULL, NULL},
                            {NULL, 0, NULL, NULL, NULL}};
    int rc = fr__cli_parse(cmd, argc, argv, opts, pos, 1, &n_pos);
    if (rc != 0)
        return rc > 0 ? FR_EXIT_OK : FR_EXIT_USAGE;
    if (!db)
        db = getenv("CONTROLPLANE_DB");
    if (!db || !*db)
        db = "./fluxroute-controlplane.db";
    if (!addr)
        addr = getenv("CONTROLPLANE_ADDR");
    if (!addr || !*addr)
        addr = ":8081";
    if (n_pos == 1 && strcmp(pos[0], "create-admin-key") != 0) {
        fr__cli_error(cmd, "unknown subcommand \"%s\" (see fluxroute controlplane --help)", pos[0]);
        return FR_EXIT_USAGE;
    }
    fr_cp_store *store;
    if ((rc = open_store(cmd, db, &store)) != FR_EXIT_OK)
        return rc;
    if (n_pos == 1) {
        char plain[80];
        fr_cp_key k;
        if (fr__cp_store_key_create(store, FR_KEY_ADMIN, NULL, NULL, plain, &k) != FR_OK) {
            fr__cli_error(cmd, "cannot create the key in %s", db);
            rc = FR_EXIT_FAILED;
        } else {
            printf("%s\n", plain);
            fprintf(stderr, "admin key %s created in %s; it is shown only this once\n", k.id, db);
        }
    } else {
        rc = serve(cmd, store, addr);
    }
    fr__cp_store_close(store);
    return rc;
}
