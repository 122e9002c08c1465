/* The control plane's limit routes (issue 26): GET/PUT /v1/tenants/ID/limits,
 * GET/PUT /v1/keys/KEY_ID/limits (limit documents, core/manifest/limits_doc.h, stored in
 * SQLite), and GET /v1/tenants/ID/spend?month=&key_id= (what the tenant's invoice of that
 * month adds up to so far, or the share of one of its keys: serve seeds its budget counts
 * with it at start). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controlplane/billing.h"
#include "controlplane/cp_http.h"
#include "manifest/limits_doc.h"

/* The stored document as JSON ({} when none). */
static json_object *stored(const char *doc)
{
    json_object *o = doc ? json_tokener_parse(doc) : NULL;
    return o ? o : json_object_new_object();
}

static enum MHD_Result limits_reply(struct MHD_Connection *c, int tenant, const char *id,
                                    json_object *limits)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, tenant ? "tenant_id" : "key_id", json_object_new_string(id));
    json_object_object_add(o, "limits", limits);
    return fr__cp_send_json(c, 200, o);
}

/* GET or PUT the limits of a tenant (tenant 1) or a tenant key. */
static enum MHD_Result limits_route(server *sv, struct MHD_Connection *c, const char *method,
                                    int tenant, const char *id, const req *r, const caller *who)
{
    const char *what = tenant ? "tenant" : "key";
    int admin = who->key.kind == FR_KEY_ADMIN, service = who->key.kind == FR_KEY_SERVICE;
    if (strcmp(method, "GET") == 0) {
        /* serve (service keys) and admins read any; a tenant its own tenant's. */
        if (!admin && !service && !(tenant && fr__cp_may_see(who, id)))
            return tenant ? fr__cp_not_found(c, what, id) : fr__cp_forbidden(c, who);
        int exists = 0;
        char *doc = fr__cp_store_limits_get(sv->store, tenant, id, &exists);
        if (!exists) {
            free(doc);
            return fr__cp_not_found(c, what, id);
        }
        json_object *o = stored(doc);
        free(doc);
        return limits_reply(c, tenant, id, o);
    }
    if (strcmp(method, "PUT") != 0)
        return fr__cp_method_not_allowed(c, method, "GET, PUT");
    if (!admin)
        return fr__cp_forbidden(c, who);
    fr_limits_doc d;
    char err[512];
    if (fr__limits_doc_parse(r->body.buf.data ? r->body.buf.data : "", r->body.buf.len, &d, err,
                             sizeof err) != 0)
        return fr__cp_send_error(c, FR_HE_INVALID, "%s", err);
    json_object *canon = fr__limits_doc_to_json(&d);
    fr__limits_doc_clear(&d);
    if (!canon)
        return fr__cp_send_error(c, FR_HE_INTERNAL, "out of memory");
    fr_status st = fr__cp_store_limits_set(
        sv->store, tenant, id, json_object_to_json_string_ext(canon, JSON_C_TO_STRING_PLAIN));
    if (st != FR_OK) {
        json_object_put(canon);
        return st == FR_E_NOT_FOUND
                   ? fr__cp_not_found(c, what, id)
                   : fr__cp_send_error(c, FR_HE_STORAGE, "cannot store the limits");
    }
    return limits_reply(c, 1 == tenant, id, canon);
}

/* GET /v1/tenants/ID/spend?month=YYYY-MM (default: this month)&key_id=KEY_ID (optional:
 * the usage made with that key only). */
static enum MHD_Result spend_route(server *sv, struct MHD_Connection *c, const char *method,
                                   const char *id, const caller *who)
{
    if (strcmp(method, "GET") != 0)
        return fr__cp_method_not_allowed(c, method, "GET");
    if (who->key.kind != FR_KEY_SERVICE && !fr__cp_may_see(who, id))
        return fr__cp_not_found(c, "tenant", id);
    json_object *t = fr__cp_store_tenant_get(sv->store, id);
    if (!t)
        return fr__cp_not_found(c, "tenant", id);
    json_object_put(t);
    char month[8];
    const char *m = fr__cp_arg(c, "month");
    int32_t first, next;
    if (m) {
        if (strlen(m) != 7 || fr__period_parse(m, &first, &next) != 0)
            return fr__cp_send_error(c, FR_HE_INVALID, "month: invalid format, expected YYYY-MM");
        snprintf(month, sizeof month, "%s", m);
    } else {
        char ts[21];
        fr__rfc3339_format((int64_t)time(NULL), ts);
        snprintf(month, sizeof month, "%.7s", ts);
    }
    const char *key_id = fr__cp_arg(c, "key_id"); /* one key's share of it */
    if (key_id && (!key_id[0] || strlen(key_id) > 64))
        return fr__cp_send_error(c, FR_HE_INVALID, "key_id: expected 1 to 64 characters");
    fr_invoice inv;
    char err[300];
    fr_status st = fr__cp_store_invoice(sv->store, id, key_id, month, &inv, err, sizeof err);
    if (st != FR_OK)
        return fr__cp_send_error(
            c, st == FR_E_NOT_FOUND ? FR_HE_UNPRICED_USAGE : FR_HE_BILLING_ERROR, "%s", err);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "tenant_id", json_object_new_string(id));
    json_object_object_add(o, "month", json_object_new_string(month));
    if (key_id)
        json_object_object_add(o, "key_id", json_object_new_string(key_id));
    json_object_object_add(o, "spent_micros", json_object_new_int64(inv.total));
    json_object_object_add(o, "currency", json_object_new_string(inv.currency));
    fr__invoice_clear(&inv);
    return fr__cp_send_json(c, 200, o);
}

enum MHD_Result fr__cp_route_tenant_limits(server *sv, struct MHD_Connection *c, const char *method,
                                           const char *id, const char *sub, const req *r,
                                           const caller *who)
{
    if (strcmp(sub, "spend") == 0)
        return spend_route(sv, c, method, id, who);
    return limits_route(sv, c, method, 1, id, r, who);
}

enum MHD_Result fr__cp_route_key_limits(server *sv, struct MHD_Connection *c, const char *method,
                                        const char *key_id, const req *r, const caller *who)
{
    return limits_route(sv, c, method, 0, key_id, r, who);
}

json_object *fr__cp_lookup_limits(server *sv, const char *tenant, const char *key_id)
{
    int exists;
    char *t = fr__cp_store_limits_get(sv->store, 1, tenant, &exists);
    char *k = fr__cp_store_limits_get(sv->store, 0, key_id, &exists);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "tenant", stored(t));
    json_object_object_add(o, "key", stored(k));
    free(t);
    free(k);
    return o;
}
