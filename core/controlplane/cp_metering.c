/* The control plane's metering routes: usage ingestion and listing, billing (rates,
 * invoices, summaries, period close) and the SLA report.  Routed from controlplane.c. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <microhttpd.h>

#include "controlplane/billing.h"
#include "controlplane/cp_store.h"
#include "controlplane/cp_http.h"
#include "observe/obs_impl.h"

#define MAX_EVENTS_PER_REQUEST 10000
#define MAX_QUANTITY           1000000000000LL /* per event: 1e12 tokens or runs */

/* ---- usage ----------------------------------------------------------------------------- */

static int parse_event(fieldctx *f, json_object *o, fr_cp_event *e)
{
    static const char *const allowed[] = {
        "idempotency_key", "tenant",        "tenant_id",    "occurred_at", "kind",
        "provider",        "model",         "input_tokens", "runs",        "invocations",
        "output_tokens",   "usage_unknown", "key_id",       NULL};
    char ts[64];
    memset(e, 0, sizeof *e);
    if (!json_object_is_type(o, json_type_object))
        return fr__cp_ferr(f, "event", "must be a JSON object");
    json_object *v;
    int has_tenant = json_object_object_get_ex(o, "tenant", &v);
    if (fr__cp_only_fields(f, o, allowed) ||
        fr__cp_get_str(f, o, "idempotency_key", 1, 128, e->idem, sizeof e->idem) ||
        fr__cp_get_str(f, o, has_tenant ? "tenant" : "tenant_id", 1, 64, e->tenant,
                       sizeof e->tenant) ||
        fr__cp_get_str(f, o, "occurred_at", 1, 40, ts, sizeof ts) ||
        fr__cp_get_str(f, o, "kind", 1, 15, e->kind, sizeof e->kind) ||
        fr__cp_get_str(f, o, "provider", 0, 64, e->provider, sizeof e->provider) ||
        fr__cp_get_str(f, o, "model", 0, 127, e->model, sizeof e->model) ||
        fr__cp_get_int(f, o, "input_tokens", 0, MAX_QUANTITY, &e->input_tokens) ||
        fr__cp_get_int(f, o, "output_tokens", 0, MAX_QUANTITY, &e->output_tokens) ||
        fr__cp_get_int(f, o, json_object_object_get_ex(o, "runs", &v) ? "runs" : "invocations", 0,
                       MAX_QUANTITY, &e->runs) ||
        fr__cp_get_bool(f, o, "usage_unknown", &e->usage_unknown) ||
        fr__cp_get_str(f, o, "key_id", 0, 64, e->key_id, sizeof e->key_id))
        return -1;
    if (fr__rfc3339_parse(ts, &e->occurred_at) != 0 || e->occurred_at < 0)
        return fr__cp_ferr(f, "occurred_at",
                           "\"%s\" is not an RFC 3339 time (2024-05-01T12:00:00Z)", ts);
    if (strcmp(e->kind, "run") != 0 && strcmp(e->kind, "provider_call") != 0)
        return fr__cp_ferr(f, "kind", "must be run or provider_call");
    /* A call whose provider reported no usage: counted, never priced, so no tokens. */
    if (e->usage_unknown && strcmp(e->kind, "provider_call") != 0)
        return fr__cp_ferr(f, "usage_unknown", "is true, but only a provider_call may be");
    if (e->usage_unknown && (e->input_tokens || e->output_tokens))
        return fr__cp_ferr(f, "usage_unknown",
                           "is true, so input_tokens and output_tokens must be 0 (got %lld and "
                           "%lld)",
                           (long long)e->input_tokens, (long long)e->output_tokens);
    return 0;
}

static int parse_sla(fieldctx *f, json_object *o, fr_cp_sla *s)
{
    static const char *const allowed[] = {
        "requests",   "errors", "latency_ms_p50", "latency_ms_p99", "window_start",
        "window_end", NULL};
    char a[64], b[64];
    if (!json_object_is_type(o, json_type_object))
        return fr__cp_ferr(f, "sla", "must be a JSON object");
    if (fr__cp_only_fields(f, o, allowed) ||
        fr__cp_get_int(f, o, "requests", -1, MAX_QUANTITY, &s->requests) ||
        fr__cp_get_int(f, o, "errors", -1, MAX_QUANTITY, &s->errors) ||
        fr__cp_get_int(f, o, "latency_ms_p50", -1, 86400000, &s->p50_ms) ||
        fr__cp_get_int(f, o, "latency_ms_p99", -1, 86400000, &s->p99_ms) ||
        fr__cp_get_str(f, o, "window_start", 1, 40, a, sizeof a) ||
        fr__cp_get_str(f, o, "window_end", 1, 40, b, sizeof b))
        return -1;
    if (fr__rfc3339_parse(a, &s->window_start) || fr__rfc3339_parse(b, &s->window_end))
        return fr__cp_ferr(f, "window_start", "and window_end must be RFC 3339 times");
    if (s->window_end <= s->window_start)
        return fr__cp_ferr(f, "window_end", "must be after window_start");
    if (s->errors > s->requests)
        return fr__cp_ferr(f, "errors", "must not exceed requests");
    return 0;
}

/* fluxroute_cp_usage_events_total{result}. */
static void count_events(const char *result, size_t n)
{
    const char *labels[] = {result};
    if (n)
        fr__metric_count(FR_M_CP_USAGE_EVENTS, labels, n);
}

static enum MHD_Result usage_post(server *sv, struct MHD_Connection *c, const req *r,
                                  const caller *who)
{
    enum MHD_Result sent;
    json_object *b = fr__cp_parse_body(c, r, &sent);
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
        if (!fr__cp_only_fields(&f, b, allowed) && events &&
            !json_object_is_type(events, json_type_array))
            fr__cp_ferr(&f, "events", "must be an array");
    } else {
        single = b;
    }
    size_t n = single ? 1 : events ? json_object_array_length(events) : 0;
    size_t n_sla = !sla                                        ? 0
                   : json_object_is_type(sla, json_type_array) ? json_object_array_length(sla)
                                                               : 1;
    if (!f.err[0] && (n > MAX_EVENTS_PER_REQUEST || n_sla > 100))
        fr__cp_ferr(&f, "events", "has more than %d events (send several requests)",
                    MAX_EVENTS_PER_REQUEST);
    if (!f.err[0] && n == 0 && n_sla == 0)
        fr__cp_ferr(&f, "events", "is empty");
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
    if (f.err[0])
        count_events("rejected", n);
    if (f.err[0] || !ev || !sl) {
        free(ev);
        free(sl);
        return f.err[0] ? fr__cp_send_error(c, FR_HE_INVALID, "%s", f.err)
                        : fr__cp_send_error(c, FR_HE_INTERNAL, "out of memory");
    }
    size_t accepted, dups, bad = 0;
    fr_status st =
        fr__cp_store_usage_insert(sv->store, ev, n, sl, n_sla, who->key.id, &accepted, &dups, &bad);
    enum MHD_Result rc;
    if (st == FR_OK) {
        count_events("accepted", accepted);
        count_events("duplicate", dups);
    } else {
        count_events(st == FR_E_NOT_FOUND ? "rejected" : "error", n);
    }
    if (st == FR_E_NOT_FOUND) {
        char msg[200];
        snprintf(msg, sizeof msg, "events[%zu].tenant \"%s\" not found; nothing was stored", bad,
                 ev[bad].tenant);
        json_object *e, *o = fr__http_error_body(FR_HE_UNKNOWN_TENANT, msg, &e);
        json_object_object_add(e, "index", json_object_new_int64((int64_t)bad));
        rc = fr__cp_send_json(c, (unsigned)fr__http_error_status(FR_HE_UNKNOWN_TENANT), o);
    } else if (st != FR_OK) {
        rc = fr__cp_send_error(c, FR_HE_STORAGE, "usage not stored (retry with the same keys)");
    } else {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "accepted", json_object_new_int64((int64_t)accepted));
        json_object_object_add(o, "duplicates", json_object_new_int64((int64_t)dups));
        json_object_object_add(o, "sla_reports", json_object_new_int64((int64_t)n_sla));
        rc = fr__cp_send_json(c, 202, o);
    }
    free(ev);
    free(sl);
    return rc;
}

enum MHD_Result fr__cp_route_usage(server *sv, struct MHD_Connection *c, const char *method,
                                   const req *r, const caller *who)
{
    if (strcmp(method, "POST") == 0) {
        if (who->key.kind == FR_KEY_TENANT)
            return fr__cp_forbidden(c, who);
        return usage_post(sv, c, r, who);
    }
    if (strcmp(method, "GET") != 0)
        return fr__cp_method_not_allowed(c, method, "GET, POST");
    if (who->key.kind == FR_KEY_SERVICE)
        return fr__cp_forbidden(c, who);
    const char *tenant = fr__cp_arg(c, "tenant_id");
    if (tenant) {
        if (!fr__cp_may_see(who, tenant))
            return fr__cp_not_found(c, "tenant", tenant);
        return fr__cp_send_json(c, 200, fr__cp_store_usage_tenant(sv->store, tenant));
    }
    int page, size;
    fr__cp_paging(c, &page, &size);
    return fr__cp_send_json(
        c, 200,
        fr__cp_store_usage_list(sv->store, fr__cp_arg(c, "q"), page, size,
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
    const char *m = fr__cp_arg(c, name) ? fr__cp_arg(c, name) : fr__cp_arg(c, alias);
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
    json_object *b = fr__cp_parse_body(c, r, &sent);
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
        fr__cp_ferr(&f, "body", "must be a JSON object");
    else if (!fr__cp_only_fields(&f, b, allowed) &&
             !fr__cp_get_str(&f, b, "effective_from", 1, 10, eff, sizeof eff) &&
             !fr__cp_get_str(&f, b, "currency", 0, 3, cur, sizeof cur)) {
        if (!cur[0])
            snprintf(cur, sizeof cur, "USD");
        if (fr__date_parse(eff, &day) != 0)
            fr__cp_ferr(&f, "effective_from", "\"%s\" must be a date YYYY-MM-DD", eff);
        else if (!fr__currency_minor_micros(cur))
            fr__cp_ferr(&f, "currency", "\"%s\" is not a supported ISO 4217 code", cur);
        else if (!json_object_object_get_ex(b, "prices", &prices) ||
                 !json_object_is_type(prices, json_type_array) || !json_object_array_length(prices))
            fr__cp_ferr(
                &f, "prices",
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
            fr__cp_ferr(&f, "price", "must be an object");
            break;
        }
        if (fr__cp_only_fields(&f, o, pallowed) ||
            fr__cp_get_str(&f, o, "model", 1, 127, p[i].model, sizeof p[i].model))
            break;
        for (int k = 0; k < FR_BILL_KINDS && !f.err[0]; k++)
            fr__cp_get_int(&f, o, pallowed[k + 1], -1, INT64_MAX, &p[i].price[k]);
        for (size_t j = 0; j < i && !f.err[0]; j++)
            if (strcmp(p[j].model, p[i].model) == 0)
                fr__cp_ferr(&f, "model", "\"%s\" is listed twice", p[i].model);
    }
    json_object_put(b);
    if (f.err[0]) {
        free(p);
        return fr__cp_send_error(c, FR_HE_INVALID, "%s", f.err);
    }
    int64_t version = 0;
    char err[256] = "";
    fr_status st =
        fr__cp_store_card_create(sv->store, eff, day, cur, p, n, &version, err, sizeof err);
    free(p);
    if (st == FR_E_INVALID)
        return fr__cp_send_error(c, FR_HE_PERIOD_CLOSED, "%s", err);
    if (st != FR_OK)
        return fr__cp_send_error(c, FR_HE_INTERNAL, "cannot store the rate card: %s", err);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "version", json_object_new_int64(version));
    json_object_object_add(o, "effective_from", json_object_new_string(eff));
    json_object_object_add(o, "currency", json_object_new_string(cur));
    return fr__cp_send_json(c, 201, o);
}

static enum MHD_Result invoice_get(server *sv, struct MHD_Connection *c, const caller *who)
{
    const char *tenant = fr__cp_arg(c, "tenant_id");
    if (!tenant && who->key.kind == FR_KEY_TENANT)
        tenant = who->key.tenant;
    if (!tenant)
        return fr__cp_send_error(c, FR_HE_INVALID, "tenant_id is required");
    if (!fr__cp_may_see(who, tenant))
        return fr__cp_not_found(c, "tenant", tenant);
    json_object *t = fr__cp_store_tenant_get(sv->store, tenant);
    if (!t)
        return fr__cp_not_found(c, "tenant", tenant);
    json_object_put(t);
    char period[8];
    if (month_arg(c, "period", "month", period) != 0)
        return fr__cp_send_error(c, FR_HE_INVALID, "invalid period format, expected YYYY-MM");
    fr_invoice inv;
    char err[300];
    fr_status st = fr__cp_store_invoice(sv->store, tenant, NULL, period, &inv, err, sizeof err);
    if (st != FR_OK)
        return fr__cp_send_error(
            c, st == FR_E_NOT_FOUND ? FR_HE_UNPRICED_USAGE : FR_HE_BILLING_ERROR, "%s", err);
    const char *fmt = fr__cp_arg(c, "format");
    enum MHD_Result rc;
    if (fmt && strcasecmp(fmt, "csv") == 0) {
        char *csv = fr__invoice_csv(&inv);
        rc = csv ? fr__cp_send_buf(c, 200, "text/csv; charset=utf-8", csv, strlen(csv))
                 : fr__cp_send_error(c, FR_HE_INTERNAL, "out of memory");
        free(csv);
    } else {
        char *js = fr__invoice_json(&inv);
        json_object *o = js ? json_tokener_parse(js) : NULL;
        free(js);
        rc =
            o ? fr__cp_send_json(c, 200, o) : fr__cp_send_error(c, FR_HE_INTERNAL, "out of memory");
    }
    fr__invoice_clear(&inv);
    return rc;
}

static enum MHD_Result summary_get(server *sv, struct MHD_Connection *c, const caller *who)
{
    char month[8];
    if (month_arg(c, "month", "period", month) != 0)
        return fr__cp_send_error(c, FR_HE_INVALID, "invalid month format, expected YYYY-MM");
    char **ids;
    size_t n;
    fr__cp_store_period_tenants(sv->store, month, &ids, &n);
    json_object *o = json_object_new_object(), *totals = json_object_new_array();
    int64_t grand_runs = 0, grand_micros = 0;
    char currency[4] = "";
    int mixed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (!fr__cp_may_see(who, ids[i])) {
            free(ids[i]);
            continue;
        }
        fr_invoice inv;
        char err[300];
        json_object *t = json_object_new_object();
        json_object_object_add(t, "tenant_id", json_object_new_string(ids[i]));
        if (fr__cp_store_invoice(sv->store, ids[i], NULL, month, &inv, err, sizeof err) == FR_OK) {
            int64_t q[FR_BILL_LINE_KINDS] = {0};
            for (size_t l = 0; l < inv.n_lines; l++)
                q[inv.lines[l].kind] += inv.lines[l].quantity;
            json_object_object_add(t, "invocations", json_object_new_int64(q[FR_BILL_RUNS]));
            json_object_object_add(t, "input_tokens", json_object_new_int64(q[FR_BILL_INPUT]));
            json_object_object_add(t, "output_tokens", json_object_new_int64(q[FR_BILL_OUTPUT]));
            json_object_object_add(t, "unknown_usage_calls",
                                   json_object_new_int64(q[FR_BILL_UNKNOWN_USAGE]));
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
    return fr__cp_send_json(c, 200, o);
}

static enum MHD_Result period_close(server *sv, struct MHD_Connection *c, const char *period)
{
    int32_t first, next;
    if (fr__period_parse(period, &first, &next) != 0)
        return fr__cp_send_error(c, FR_HE_INVALID, "invalid period format, expected YYYY-MM");
    if (next > today())
        return fr__cp_send_error(c, FR_HE_PERIOD_OPEN, "period %s has not ended yet", period);
    int64_t at;
    if (fr__cp_store_period_close(sv->store, period, &at) != FR_OK)
        return fr__cp_send_error(c, FR_HE_INTERNAL, "cannot close the period");
    char ts[21];
    fr__rfc3339_format(at, ts);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "period", json_object_new_string(period));
    json_object_object_add(o, "status", json_object_new_string("closed"));
    json_object_object_add(o, "closed_at", json_object_new_string(ts));
    return fr__cp_send_json(c, 200, o);
}

enum MHD_Result fr__cp_route_billing(server *sv, struct MHD_Connection *c, const char *method,
                                     char **seg, int nseg, const req *r, const caller *who)
{
    int admin = who->key.kind == FR_KEY_ADMIN, get = strcmp(method, "GET") == 0;
    if (nseg == 2 && strcmp(seg[1], "rates") == 0) {
        if (get)
            return fr__cp_send_json(c, 200, fr__cp_store_card_list(sv->store, today()));
        if (strcmp(method, "POST") == 0)
            return admin ? rates_post(sv, c, r) : fr__cp_forbidden(c, who);
        return fr__cp_method_not_allowed(c, method, "GET, POST");
    }
    if (nseg == 2 && (strcmp(seg[1], "invoice") == 0 || strcmp(seg[1], "summary") == 0)) {
        if (!get)
            return fr__cp_method_not_allowed(c, method, "GET");
        if (who->key.kind == FR_KEY_SERVICE)
            return fr__cp_forbidden(c, who);
        return seg[1][0] == 'i' ? invoice_get(sv, c, who) : summary_get(sv, c, who);
    }
    if (nseg == 4 && strcmp(seg[1], "periods") == 0 && strcmp(seg[3], "close") == 0) {
        if (strcmp(method, "POST") != 0)
            return fr__cp_method_not_allowed(c, method, "POST");
        return admin ? period_close(sv, c, seg[2]) : fr__cp_forbidden(c, who);
    }
    return fr__cp_send_error(c, FR_HE_NOT_FOUND, "no such route");
}

/* ---- SLA ------------------------------------------------------------------------------- */

enum MHD_Result fr__cp_sla_get(server *sv, struct MHD_Connection *c)
{
    const char *w = fr__cp_arg(c, "window");
    char *end = NULL;
    long window = w ? strtol(w, &end, 10) : 86400;
    if (w && (*end || window <= 0 || window > 90L * 86400))
        return fr__cp_send_error(c, FR_HE_INVALID, "window must be seconds in [1, 7776000]");
    int64_t to = (int64_t)time(NULL) + 1, from = to - window;
    fr_cp_sla_sum s;
    if (fr__cp_store_sla(sv->store, from, to, &s) != FR_OK)
        return fr__cp_send_error(c, FR_HE_STORAGE, "cannot read SLA reports");
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
    return fr__cp_send_json(c, 200, o);
}
