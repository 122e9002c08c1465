/* The control plane's HTTP plumbing, shared by its route files (controlplane.c: tenants,
 * keys, dispatch and the command; cp_metering.c: usage, billing and SLA): the server and
 * request state, JSON responses and errors, and request parsing with field checks whose
 * messages name the field.  Internal; every function is called from request threads and
 * keeps no state of its own. */
#ifndef FR_CP_HTTP_H
#define FR_CP_HTTP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <json-c/json.h>
#include <microhttpd.h>

#include "controlplane/cp_store.h"
#include "http/http.h"
#include "http/http_body.h"

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

/* Field validation with messages naming the field (err gets "where.name ..."). */
typedef struct fieldctx {
    char err[512];
    const char *where; /* "events[3]" or "" */
} fieldctx;

/* Responses.  fr__cp_send_json releases `o`. */
enum MHD_Result fr__cp_send_buf(struct MHD_Connection *c, unsigned status, const char *type,
                                const char *body, size_t len);
enum MHD_Result fr__cp_send_json(struct MHD_Connection *c, unsigned status, json_object *o);
/* The error body of e, with e's status. */
enum MHD_Result fr__cp_send_error(struct MHD_Connection *c, fr_http_error e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
enum MHD_Result fr__cp_not_found(struct MHD_Connection *c, const char *what, const char *id);
/* 405 with an Allow header listing `allow` (static, "GET, POST"). */
enum MHD_Result fr__cp_method_not_allowed(struct MHD_Connection *c, const char *method,
                                          const char *allow);
enum MHD_Result fr__cp_forbidden(struct MHD_Connection *c, const caller *who);
/* The status of the last response the calling thread sent through the functions above (0:
 * none since the last call), and clears it: for fluxroute_cp_requests_total (a request is
 * answered on one thread). */
int fr__cp_take_status(void);

/* Requests: a query argument (NULL when absent or empty), paging, the body as JSON (on
 * failure a 400 naming the position is sent and *sent set), and field checks (-1 with
 * f->err set). */
const char *fr__cp_arg(struct MHD_Connection *c, const char *name);
void fr__cp_paging(struct MHD_Connection *c, int *page, int *size);
json_object *fr__cp_parse_body(struct MHD_Connection *c, const req *r, enum MHD_Result *sent);
int fr__cp_ferr(fieldctx *f, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int fr__cp_only_fields(fieldctx *f, json_object *o, const char *const *allowed);
int fr__cp_get_str(fieldctx *f, json_object *o, const char *name, int required, size_t max,
                   char *out, size_t size);
int fr__cp_get_int(fieldctx *f, json_object *o, const char *name, int64_t def, int64_t max,
                   int64_t *out);
/* An optional boolean: absent or null is 0. */
int fr__cp_get_bool(fieldctx *f, json_object *o, const char *name, int *out);
int fr__cp_may_see(const caller *who, const char *tenant);

/* The metering routes (cp_metering.c). */
enum MHD_Result fr__cp_route_usage(server *sv, struct MHD_Connection *c, const char *method,
                                   const req *r, const caller *who);
enum MHD_Result fr__cp_route_billing(server *sv, struct MHD_Connection *c, const char *method,
                                     char **seg, int nseg, const req *r, const caller *who);
enum MHD_Result fr__cp_sla_get(server *sv, struct MHD_Connection *c);

/* The limit routes (cp_limits.c): /tenants/ID/limits and /tenants/ID/spend (`sub`),
 * /keys/KEY_ID/limits; and the "limits" member of a key lookup's answer,
 * {"tenant": DOC, "key": DOC} ({} where none is set). */
enum MHD_Result fr__cp_route_tenant_limits(server *sv, struct MHD_Connection *c, const char *method,
                                           const char *id, const char *sub, const req *r,
                                           const caller *who);
enum MHD_Result fr__cp_route_key_limits(server *sv, struct MHD_Connection *c, const char *method,
                                        const char *key_id, const req *r, const caller *who);
json_object *fr__cp_lookup_limits(server *sv, const char *tenant, const char *key_id);

#endif
