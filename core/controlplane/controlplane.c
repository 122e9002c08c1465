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
 *   POST   /tenants/ID/keys {role}                  admin (plaintext returned once; role
 *                                                   metrics: serve's /metrics only, 403 here)
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
 *   GET    /metrics                                 admin, service (Prometheus text)
 *
 * `--metrics-addr` adds a listener without authentication for /metrics, /healthz and
 * /readyz (core/http/metrics_endpoint.c).  Every answer is counted in
 * fluxroute_cp_requests_total{route,code}, the route a pattern ("/tenants/{id}/keys").
 *
 * Errors are {"error": {"code", "message"}}. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <microhttpd.h>

#include "http/http.h"
#include "http/http_body.h"
#include "http/metrics_endpoint.h"
#include "observe/obs_impl.h"
#include "observe/observe.h"
#include "controlplane/billing.h"
#include "controlplane/controlplane.h"
#include "controlplane/cp_store.h"
#include "manifest/manifest.h"
#include "base/sha256.h"
#include "controlplane/cp_http.h"

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

static enum MHD_Result tenant_create(server *sv, struct MHD_Connection *c, const req *r)
{
    enum MHD_Result sent;
    json_object *b = fr__cp_parse_body(c, r, &sent);
    if (!b)
        return sent;
    fieldctx f = {.where = ""};
    static const char *const allowed[] = {"id", "name", "namespace", NULL};
    char id[65], name[201], ns_in[65], ns[33], err[256];
    if (!json_object_is_type(b, json_type_object))
        fr__cp_ferr(&f, "body", "must be a JSON object");
    else if (!fr__cp_only_fields(&f, b, allowed) &&
             !fr__cp_get_str(&f, b, "id", 1, 64, id, sizeof id) &&
             !fr__cp_get_str(&f, b, "name", 0, 200, name, sizeof name) &&
             !fr__cp_get_str(&f, b, "namespace", 0, 64, ns_in, sizeof ns_in)) {
        if (!valid_tenant_id(id))
            fr__cp_ferr(&f, "id", "\"%s\" must match ^[a-z0-9][a-z0-9_.-]{0,63}$", id);
        else if (fr__namespace_normalise(ns_in[0] ? ns_in : id, ns, sizeof ns) != 0)
            fr__cp_ferr(&f, "namespace", "\"%s\" must match ^[a-z][a-z0-9_-]{1,31}$%s",
                        ns_in[0] ? ns_in : id, ns_in[0] ? "" : " (it defaults to the id)");
    }
    json_object_put(b);
    if (f.err[0])
        return fr__cp_send_error(c, FR_HE_INVALID, "%s", f.err);
    fr_status st =
        fr__cp_store_tenant_create(sv->store, id, name[0] ? name : id, ns, err, sizeof err);
    if (st == FR_E_INVALID)
        return fr__cp_send_error(c, FR_HE_CONFLICT, "%s", err);
    if (st != FR_OK)
        return fr__cp_send_error(c, FR_HE_INTERNAL, "cannot create the tenant: %s", err);
    return fr__cp_send_json(c, 201, fr__cp_store_tenant_get(sv->store, id));
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
    return fr__cp_send_json(c, 201, o);
}

static enum MHD_Result revoked(struct MHD_Connection *c, const char *key_id)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "key_id", json_object_new_string(key_id));
    json_object_object_add(o, "status", json_object_new_string("revoked"));
    return fr__cp_send_json(c, 200, o);
}

static enum MHD_Result tenant_key_create(server *sv, struct MHD_Connection *c, const req *r,
                                         const char *tenant)
{
    char role[16] = "operator";
    if (r->body.buf.len) {
        enum MHD_Result sent;
        json_object *b = fr__cp_parse_body(c, r, &sent);
        if (!b)
            return sent;
        fieldctx f = {.where = ""};
        static const char *const allowed[] = {"role", NULL};
        if (!json_object_is_type(b, json_type_object))
            fr__cp_ferr(&f, "body", "must be a JSON object");
        else if (!fr__cp_only_fields(&f, b, allowed) &&
                 !fr__cp_get_str(&f, b, "role", 0, 15, role, sizeof role)) {
            if (!role[0])
                snprintf(role, sizeof role, "operator");
            /* The roles of serve's keys file, read by the same parser serve uses. */
            fr_role parsed;
            if (fr__key_role_parse(role, &parsed) != 0)
                fr__cp_ferr(&f, "role", "must be " FR_KEY_ROLES_TEXT);
            else
                snprintf(role, sizeof role, "%s", fr__role_name(parsed));
        }
        json_object_put(b);
        if (f.err[0])
            return fr__cp_send_error(c, FR_HE_INVALID, "%s", f.err);
    }
    char plain[80];
    fr_cp_key k;
    fr_status st = fr__cp_store_key_create(sv->store, FR_KEY_TENANT, tenant, role, plain, &k);
    if (st == FR_E_NOT_FOUND)
        return fr__cp_not_found(c, "tenant", tenant);
    if (st != FR_OK)
        return fr__cp_send_error(c, FR_HE_INTERNAL, "cannot create the key");
    return key_created(c, plain, &k);
}

static enum MHD_Result route_tenants(server *sv, struct MHD_Connection *c, const char *method,
                                     char **seg, int nseg, const req *r, const caller *who)
{
    int admin = who->key.kind == FR_KEY_ADMIN;
    if (nseg == 1) {
        if (strcmp(method, "GET") == 0) {
            if (!admin && who->key.kind != FR_KEY_TENANT)
                return fr__cp_forbidden(c, who);
            int page, size;
            fr__cp_paging(c, &page, &size);
            return fr__cp_send_json(c, 200,
                                    fr__cp_store_tenant_list(sv->store, fr__cp_arg(c, "q"), page,
                                                             size, admin ? NULL : who->key.tenant));
        }
        if (strcmp(method, "POST") == 0)
            return admin ? tenant_create(sv, c, r) : fr__cp_forbidden(c, who);
        return fr__cp_method_not_allowed(c, method, "GET, POST");
    }
    const char *id = seg[1];
    if (nseg == 3 && (strcmp(seg[2], "limits") == 0 || strcmp(seg[2], "spend") == 0))
        return fr__cp_route_tenant_limits(sv, c, method, id, seg[2], r, who); /* issue 26 */
    if (!fr__cp_may_see(who, id))
        return who->key.kind == FR_KEY_TENANT ? fr__cp_not_found(c, "tenant", id)
                                              : fr__cp_forbidden(c, who);
    json_object *t = fr__cp_store_tenant_get(sv->store, id);
    if (!t)
        return fr__cp_not_found(c, "tenant", id);
    if (nseg == 2 && strcmp(method, "GET") == 0)
        return fr__cp_send_json(c, 200, t);
    json_object_put(t);
    if (nseg == 2)
        return fr__cp_method_not_allowed(c, method, "GET");
    if (nseg == 3 && (strcmp(seg[2], "suspend") == 0 || strcmp(seg[2], "unsuspend") == 0)) {
        if (strcmp(method, "POST") != 0)
            return fr__cp_method_not_allowed(c, method, "POST");
        if (!admin)
            return fr__cp_forbidden(c, who);
        fr__cp_store_tenant_set_status(sv->store, id, seg[2][0] == 's' ? "suspended" : "active");
        return fr__cp_send_json(c, 200, fr__cp_store_tenant_get(sv->store, id));
    }
    if (nseg == 3 && strcmp(seg[2], "keys") == 0) {
        if (strcmp(method, "GET") == 0) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "tenant_id", json_object_new_string(id));
            json_object_object_add(o, "keys", fr__cp_store_key_list(sv->store, id));
            return fr__cp_send_json(c, 200, o);
        }
        if (strcmp(method, "POST") == 0)
            return admin ? tenant_key_create(sv, c, r, id) : fr__cp_forbidden(c, who);
        return fr__cp_method_not_allowed(c, method, "GET, POST");
    }
    if (nseg == 4 && strcmp(seg[2], "keys") == 0) {
        if (strcmp(method, "DELETE") != 0 && strcmp(method, "POST") != 0)
            return fr__cp_method_not_allowed(c, method, "DELETE, POST");
        if (!admin)
            return fr__cp_forbidden(c, who);
        if (fr__cp_store_key_revoke(sv->store, seg[3], id) != FR_OK)
            return fr__cp_not_found(c, "key", seg[3]);
        return revoked(c, seg[3]);
    }
    return fr__cp_send_error(c, FR_HE_NOT_FOUND, "no such route");
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
                                  char **seg, int nseg, const req *r, const caller *who)
{
    if (nseg == 2 && strcmp(seg[1], "lookup") == 0) {
        if (strcmp(method, "GET") != 0)
            return fr__cp_method_not_allowed(c, method, "GET");
        if (who->key.kind == FR_KEY_TENANT)
            return fr__cp_forbidden(c, who);
        char hex[80];
        snprintf(hex, sizeof hex, "%s", fr__cp_arg(c, "sha256") ? fr__cp_arg(c, "sha256") : "");
        if (!is_hex64(hex))
            return fr__cp_send_error(c, FR_HE_INVALID, "sha256 must be 64 hex digits");
        fr_cp_key k;
        /* Only an active key of an active tenant authenticates a caller of `serve`. */
        if (fr__cp_store_key_lookup(sv->store, hex, &k) != FR_OK || k.kind != FR_KEY_TENANT ||
            !k.tenant_active)
            return fr__cp_send_error(c, FR_HE_NOT_FOUND, "no active key with that hash");
        json_object *o = json_object_new_object();
        json_object_object_add(o, "tenant", json_object_new_string(k.tenant));
        json_object_object_add(o, "namespace", json_object_new_string(k.namespace_));
        json_object_object_add(o, "role", json_object_new_string(k.role));
        json_object_object_add(o, "key_id", json_object_new_string(k.id));
        json_object_object_add(o, "limits", fr__cp_lookup_limits(sv, k.tenant, k.id));
        return fr__cp_send_json(c, 200, o);
    }
    if (nseg == 3 && strcmp(seg[2], "limits") == 0)
        return fr__cp_route_key_limits(sv, c, method, seg[1], r, who); /* issue 26 */
    if (nseg == 2) {
        if (strcmp(method, "DELETE") != 0)
            return fr__cp_method_not_allowed(c, method, "DELETE");
        if (who->key.kind != FR_KEY_ADMIN)
            return fr__cp_forbidden(c, who);
        if (fr__cp_store_key_revoke(sv->store, seg[1], NULL) != FR_OK)
            return fr__cp_not_found(c, "key", seg[1]);
        return revoked(c, seg[1]);
    }
    return fr__cp_send_error(c, FR_HE_NOT_FOUND, "no such route");
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
        *sent =
            fr__cp_send_error(c, FR_HE_UNAUTHORIZED, "missing API key (Authorization: Bearer KEY)");
        return -1;
    }
    char hash[65];
    fr__sha256_hex(key, strlen(key), hash);
    if (fr__cp_store_key_lookup(sv->store, hash, &who->key) != FR_OK) {
        *sent = fr__cp_send_error(c, FR_HE_UNAUTHORIZED, "invalid or revoked API key");
        return -1;
    }
    if (who->key.kind == FR_KEY_TENANT && !who->key.tenant_active) {
        *sent = fr__cp_send_error(c, FR_HE_TENANT_SUSPENDED, "tenant \"%s\" is suspended",
                                  who->key.tenant);
        return -1;
    }
    if (who->key.kind == FR_KEY_TENANT && strcmp(who->key.role, "metrics") == 0) {
        /* A scraper's key: serve's /metrics is all it may read, here nothing. */
        *sent = fr__cp_send_error(c, FR_HE_FORBIDDEN,
                                  "a key with the metrics role may only read serve's /metrics");
        return -1;
    }
    return 0;
}

/* The route pattern of a request for fluxroute_cp_requests_total: the path without /v1,
 * each segment that is not one of the API's words replaced by {id} (a bounded set of
 * values whatever the callers send); "other" for a path no route starts with. */
static void route_pattern(char *const *seg, int nseg, int known, char *out, size_t size)
{
    static const char *const words[] = {"sla",     "tenants", "keys",    "service-keys", "usage",
                                        "billing", "metrics", "suspend", "unsuspend",    "limits",
                                        "spend",   "lookup",  "rates",   "invoice",      "summary",
                                        "periods", "close",   NULL};
    if (!known) {
        snprintf(out, size, "other");
        return;
    }
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < nseg && len + 1 < size; i++) {
        const char *w = "{id}";
        for (size_t k = 0; words[k]; k++)
            if (strcmp(seg[i], words[k]) == 0)
                w = words[k];
        int n = snprintf(out + len, size - len, "/%s", w);
        len += n > 0 ? (size_t)n : 0;
    }
}

static enum MHD_Result metrics_get(struct MHD_Connection *c, const char *method, const caller *who)
{
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return fr__cp_method_not_allowed(c, method, "GET, HEAD");
    if (who->key.kind == FR_KEY_TENANT)
        return fr__cp_forbidden(c, who);
    char *text = fr__metrics_render();
    if (!text)
        return fr__cp_send_error(c, FR_HE_INTERNAL, "cannot render the metrics: out of memory");
    enum MHD_Result rc =
        fr__cp_send_buf(c, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
    free(text);
    return rc;
}

/* Answers the request; `route` (room for 128 bytes) receives its pattern. */
static enum MHD_Result dispatch(server *sv, struct MHD_Connection *c, const char *url,
                                const char *method, const req *r, char *route)
{
    atomic_fetch_add(&sv->requests, 1);
    snprintf(route, 128, "other");
    if (sv->require_client_cert && fr__http_client_cert(c, NULL, 0) != 0)
        return fr__cp_send_error(c, FR_HE_CLIENT_CERTIFICATE_REQUIRED,
                                 "a client certificate signed by the configured CA is required");
    if (strncmp(url, "/v1/", 4) == 0)
        url += 3;
    if (strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0)
        snprintf(route, 128, "%s", url);
    if (strcmp(url, "/healthz") == 0)
        return fr__cp_send_buf(c, 200, "text/plain", "ok\n", 3);
    if (strcmp(url, "/readyz") == 0)
        return fr__cp_store_ping(sv->store)
                   ? fr__cp_send_buf(c, 200, "text/plain", "ready\n", 6)
                   : fr__cp_send_buf(c, 503, "text/plain", "not ready\n", 10);
    char path[512];
    snprintf(path, sizeof path, "%s", url + 1);
    char *seg[8];
    int nseg = 0;
    for (char *save = NULL, *t = strtok_r(path, "/", &save); t && nseg < 8;
         t = strtok_r(NULL, "/", &save))
        seg[nseg++] = t;
    static const char *const known[] = {"sla",   "tenants", "keys",   "service-keys",
                                        "usage", "billing", "metrics"};
    int k = -1;
    for (int i = 0; nseg && i < (int)(sizeof known / sizeof known[0]); i++)
        if (strcmp(seg[0], known[i]) == 0)
            k = i;
    route_pattern(seg, nseg, k >= 0, route, 128);
    if (k < 0)
        return fr__cp_send_error(c, FR_HE_NOT_FOUND, "no route %s", url);
    if (r->body.too_big)
        return fr__cp_send_error(c, FR_HE_PAYLOAD_TOO_LARGE, "the request body exceeds %d bytes",
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
            return fr__cp_forbidden(c, &who);
        return fr__cp_sla_get(sv, c);
    case 1: return route_tenants(sv, c, method, seg, nseg, r, &who);
    case 2: return route_keys(sv, c, method, seg, nseg, r, &who);
    case 3:
        if (nseg != 1)
            break;
        if (strcmp(method, "POST") != 0)
            return fr__cp_method_not_allowed(c, method, "POST");
        if (who.key.kind != FR_KEY_ADMIN)
            return fr__cp_forbidden(c, &who);
        char plain[80];
        fr_cp_key key;
        if (fr__cp_store_key_create(sv->store, FR_KEY_SERVICE, NULL, NULL, plain, &key) != FR_OK)
            return fr__cp_send_error(c, FR_HE_INTERNAL, "cannot create the key");
        return key_created(c, plain, &key);
    case 4:
        if (nseg != 1)
            break;
        return fr__cp_route_usage(sv, c, method, r, &who);
    case 5: return fr__cp_route_billing(sv, c, method, seg, nseg, r, &who);
    case 6:
        if (nseg != 1)
            break;
        return metrics_get(c, method, &who);
    }
    return fr__cp_send_error(c, FR_HE_NOT_FOUND, "no route %s", url);
}

/* fluxroute_cp_requests_total{route,code} (code 0: no answer was sent). */
static void count_request(const char *route, int status)
{
    char code[16];
    snprintf(code, sizeof code, "%d", status);
    const char *labels[] = {route, code};
    fr__metric_count(FR_M_CP_REQUESTS, labels, 1);
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
        if (fr__http_body_announced_over(c, FR_CP_MAX_BODY)) {
            /* Refuse before reading: MHD closes the connection after this answer. */
            r->body.too_big = 1;
            return fr__cp_send_error(c, FR_HE_PAYLOAD_TOO_LARGE,
                                     "the request body exceeds %d bytes", FR_CP_MAX_BODY);
        }
        return MHD_YES;
    }
    int more = fr__http_body_collect(&r->body, upload, upload_size, FR_CP_MAX_BODY);
    if (more)
        return more > 0 ? MHD_YES : MHD_NO;
    char route[128];
    fr__cp_take_status();
    enum MHD_Result rc = dispatch(sv, c, url, method, r, route);
    count_request(route, fr__cp_take_status());
    return rc;
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

static fr_status open_store(const char *db, fr_cp_store **out)
{
    char err[512];
    fr_status st = fr__cp_store_open(db, out, err, sizeof err);
    if (st != FR_OK)
        fr__http_startup_error("controlplane", "%s", err);
    return st;
}

/* /readyz of the --metrics-addr listener: the database answers. */
static void listener_readyz(void *cls, fr_reply *out)
{
    server *sv = cls;
    int ok = fr__cp_store_ping(sv->store);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "status", json_object_new_string(ok ? "ready" : "not ready"));
    fr__reply_json(out, ok ? 200 : 503, o);
}

/* The series dashboards and alerts rate() exist from the start, at 0. */
static void metrics_prime(void)
{
    static const char *const results[] = {"accepted", "duplicate", "rejected", "error"};
    for (size_t i = 0; i < sizeof results / sizeof results[0]; i++)
        fr__metric_count(FR_M_CP_USAGE_EVENTS, &results[i], 0);
    fr__metric_count(FR_M_CP_SQLITE_BUSY_RETRIES, NULL, 0);
}

static fr_status serve(fr_cp_store *store, const fr_controlplane_options *o)
{
    server sv = {.store = store, .started = time(NULL)};
    const char *addr = o->addr, *env_key = o->admin_key;
    if (env_key && *env_key) {
        char hash[65];
        fr__sha256_hex(env_key, strlen(env_key), hash);
        if (fr__cp_store_key_register_admin(store, hash) != FR_OK) {
            fr__http_startup_error("controlplane", "cannot register CONTROLPLANE_API_KEY");
            return FR_E_IO;
        }
    }
    fr_http_addr sa;
    const char *why;
    if (fr__http_addr_parse(addr, &sa, &why) != 0) {
        fr__http_startup_error("controlplane", "address \"%s\": %s", addr, why);
        return FR_E_IO; /* exit 1, as when it cannot be bound */
    }
    fr_http_tls tls;
    char err[512];
    if (fr__http_tls_from_env(&tls, "CONTROLPLANE", err, sizeof err) != 0) {
        fr__http_startup_error("controlplane", "%s", err);
        return FR_E_INVALID;
    }
    sv.require_client_cert = tls.require_client_cert;
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
    fr_http_server_config hc = {.addr = &sa,
                                .tls = &tls,
                                .threads = threads,
                                .connection_limit = 1000,
                                .connection_timeout_s = 30,
                                .handler = handler,
                                .handler_cls = &sv,
                                .completed = completed};
    struct MHD_Daemon *d = fr__http_start(&hc);
    fr__http_tls_free(&tls);
    if (!d) {
        fr__http_startup_error("controlplane", "cannot listen on %s%s", addr,
                               tls.enabled ? " (or the TLS certificate, key or CA is invalid)"
                                           : "");
        return FR_E_IO;
    }
    metrics_prime();
    fr_probe_listener *ml = NULL;
    if (o->metrics_addr &&
        !(ml = fr__probe_listener_start(o->metrics_addr, listener_readyz, &sv, err, sizeof err))) {
        MHD_stop_daemon(d);
        fr__http_startup_error("controlplane", "%s", err);
        return FR_E_IO;
    }
    char url[300];
    fr__http_url(d, &sa, tls.enabled, url, sizeof url);
    printf("listening on %s\n", url);
    if (ml)
        printf("metrics listening on %s\n", fr__probe_listener_url(ml));
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    fr__probe_listener_stop(ml);
    MHD_stop_daemon(d);
    fprintf(stderr, "fluxroute controlplane: stopped (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    return FR_OK;
}

fr_status fr__controlplane_main(const fr_controlplane_options *o)
{
    fr_cp_store *store;
    fr_status st = open_store(o->db, &store);
    if (st != FR_OK)
        return st == FR_E_UNSUPPORTED ? FR_E_INVALID : FR_E_IO;
    st = serve(store, o);
    fr__cp_store_close(store);
    return st;
}

fr_status fr__controlplane_create_admin_key(const char *db)
{
    fr_cp_store *store;
    fr_status st = open_store(db, &store);
    if (st != FR_OK)
        return st == FR_E_UNSUPPORTED ? FR_E_INVALID : FR_E_IO;
    char plain[80];
    fr_cp_key k;
    if (fr__cp_store_key_create(store, FR_KEY_ADMIN, NULL, NULL, plain, &k) != FR_OK) {
        fr__http_startup_error("controlplane", "cannot create the key in %s", db);
        st = FR_E_IO;
    } else {
        printf("%s\n", plain);
        fprintf(stderr, "admin key %s created in %s; it is shown only this once\n", k.id, db);
    }
    fr__cp_store_close(store);
    return st;
}
