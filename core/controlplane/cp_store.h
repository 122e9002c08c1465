/* The control plane's SQLite store: tenants, API keys (sha256 hashes only), usage events
 * with idempotency keys, rate cards, closed periods and SLA reports.
 *
 * One database file in WAL mode with synchronous=FULL: a function that returns FR_OK
 * after a write has committed it durably (fsync).  The schema is versioned with PRAGMA
 * user_version; fr__cp_store_open applies the missing migrations and refuses a database
 * written by a newer version.
 *
 * Thread-safety: every function may be called from any thread; the store serialises
 * its connection with an internal mutex.  Strings passed in are borrowed for the call;
 * json_object results are new references the caller releases with json_object_put. */
#ifndef FR_CORE_CP_STORE_H
#define FR_CORE_CP_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include <fluxroute/status.h>

#include "controlplane/billing.h"

/* Schema version this build writes (PRAGMA user_version).  2: usage idempotency keys are
 * unique per tenant, (tenant_id, idempotency_key), no longer globally.  3: usage events
 * have usage_unknown (0 or 1: a provider call whose provider reported no usage). */
#define FR_CP_SCHEMA_VERSION 5

typedef struct fr_cp_store fr_cp_store;

/* Opens (creating) the database at `path` and migrates it.  Returns FR_OK, FR_E_IO or
 * FR_E_UNSUPPORTED (newer schema), with a message in err. */
fr_status fr__cp_store_open(const char *path, fr_cp_store **out, char *err, size_t errlen);
void fr__cp_store_close(fr_cp_store *s);
/* 1 when the database answers a trivial query. */
int fr__cp_store_ping(fr_cp_store *s);

/* ---- keys ------------------------------------------------------------------------------ */

typedef enum { FR_KEY_ADMIN, FR_KEY_SERVICE, FR_KEY_TENANT } fr_key_kind;

typedef struct fr_cp_key {
    char id[40];
    fr_key_kind kind;
    char tenant[65];     /* tenant keys */
    char namespace_[33]; /* tenant keys: the tenant's namespace */
    char role[16];       /* tenant keys: viewer|operator|admin|metrics; else the kind's name */
    int tenant_active;   /* tenant keys: the tenant is not suspended */
} fr_cp_key;

const char *fr__key_kind_name(fr_key_kind k);

/* Creates a key and writes its plaintext (shown once) to plain[80].  tenant and role only
 * for FR_KEY_TENANT.  Returns FR_OK, FR_E_NOT_FOUND (no such tenant) or FR_E_IO. */
fr_status fr__cp_store_key_create(fr_cp_store *s, fr_key_kind kind, const char *tenant,
                                  const char *role, char plain[80], fr_cp_key *info);
/* Registers an admin key given only its sha256 (CONTROLPLANE_API_KEY); idempotent. */
fr_status fr__cp_store_key_register_admin(fr_cp_store *s, const char *sha256_hex);
/* Finds an unrevoked key by the sha256 of its plaintext.  FR_OK or FR_E_NOT_FOUND. */
fr_status fr__cp_store_key_lookup(fr_cp_store *s, const char *sha256_hex, fr_cp_key *out);
/* The tenant's keys (id, prefix, role, created_at, revoked_at; never hashes). */
json_object *fr__cp_store_key_list(fr_cp_store *s, const char *tenant);
/* Revokes a key; tenant non-NULL restricts to that tenant's keys.  FR_OK or
 * FR_E_NOT_FOUND. */
fr_status fr__cp_store_key_revoke(fr_cp_store *s, const char *key_id, const char *tenant);

/* ---- tenants --------------------------------------------------------------------------- */

/* FR_OK, FR_E_INVALID (id or namespace taken; err says which) or FR_E_IO. */
fr_status fr__cp_store_tenant_create(fr_cp_store *s, const char *id, const char *name,
                                     const char *namespace_, char *err, size_t errlen);
/* The tenant as JSON, or NULL when unknown. */
json_object *fr__cp_store_tenant_get(fr_cp_store *s, const char *id);
/* {page, page_size, total, tenants: [ids], items: [tenant objects]}; `only` restricts the
 * list to one tenant (tenant keys); q is a case-insensitive substring of id or name. */
json_object *fr__cp_store_tenant_list(fr_cp_store *s, const char *q, int page, int page_size,
                                      const char *only);
/* Sets status "active" or "suspended".  FR_OK or FR_E_NOT_FOUND. */
fr_status fr__cp_store_tenant_set_status(fr_cp_store *s, const char *id, const char *status);

/* ---- usage ----------------------------------------------------------------------------- */

typedef struct fr_cp_event {
    char idem[129];
    char tenant[65];
    int64_t occurred_at; /* Unix seconds */
    char kind[16];       /* run | provider_call */
    char provider[65];
    char model[128];
    int64_t input_tokens, output_tokens, runs;
    int usage_unknown; /* provider_call only: the provider reported no usage (tokens 0) */
    char key_id[65];   /* the API key it was made with, "" when unknown */
} fr_cp_event;

typedef struct fr_cp_sla {
    int64_t requests, errors, p50_ms, p99_ms, window_start, window_end;
} fr_cp_sla;

/* Inserts events and SLA reports in one transaction (committed durably before it
 * returns).  A key the event's tenant already used is counted in *duplicates and not
 * stored again; keys are per tenant (another tenant's identical key is stored).
 * On an unknown tenant the whole request is rolled back: FR_E_NOT_FOUND with *bad_index
 * set.  reporter names the key that sent the SLA reports (their uniqueness key is
 * reporter + window, so a replay is not counted twice). */
fr_status fr__cp_store_usage_insert(fr_cp_store *s, const fr_cp_event *ev, size_t n,
                                    const fr_cp_sla *sla, size_t n_sla, const char *reporter,
                                    size_t *accepted, size_t *duplicates, size_t *bad_index);
/* {tenant_id, events, invocations, runs, input_tokens, output_tokens,
 * unknown_usage_calls} for one tenant (all time), or NULL on error. */
json_object *fr__cp_store_usage_tenant(fr_cp_store *s, const char *tenant);
/* {page, page_size, total, items: [same objects]} of tenants with usage. */
json_object *fr__cp_store_usage_list(fr_cp_store *s, const char *q, int page, int page_size,
                                     const char *only);

/* ---- rate cards, invoices ------------------------------------------------------------ */

/* Creates the next card version.  FR_OK, FR_E_INVALID (effective_from in a closed
 * period; err says so) or FR_E_IO.  *version receives the new version. */
fr_status fr__cp_store_card_create(fr_cp_store *s, const char *effective_from, int32_t day,
                                   const char *currency, const fr_price *prices, size_t n,
                                   int64_t *version, char *err, size_t errlen);
/* Every card, oldest first: {"cards": [...]}; also the card in force today. */
json_object *fr__cp_store_card_list(fr_cp_store *s, int32_t today);

/* Builds the invoice of (tenant, period), of the usage of key `key_id` only unless NULL or
 * "".  FR_OK, or the billing error (message in err). */
fr_status fr__cp_store_invoice(fr_cp_store *s, const char *tenant, const char *key_id,
                               const char *period, fr_invoice *inv, char *err, size_t errlen);
/* Tenants with usage billed in `period`, sorted (caller frees the array and strings). */
fr_status fr__cp_store_period_tenants(fr_cp_store *s, const char *period, char ***ids, size_t *n);
/* Closes a period: later usage that occurred in it is billed in the month it arrives.
 * FR_OK (also when already closed). */
fr_status fr__cp_store_period_close(fr_cp_store *s, const char *period, int64_t *closed_at);
int fr__cp_store_period_closed(fr_cp_store *s, const char *period);

/* ---- limits (issue 26) ----------------------------------------------------------------- */

/* The limit document (canonical JSON text, core/manifest/limits_doc.h) set for tenant `id`
 * (tenant 1) or tenant key `id` (tenant 0), or NULL when none is set (caller frees);
 * *exists says whether that tenant or key exists. */
char *fr__cp_store_limits_get(fr_cp_store *s, int tenant, const char *id, int *exists);
/* Sets it.  FR_OK, FR_E_NOT_FOUND (no such tenant or tenant key), FR_E_IO. */
fr_status fr__cp_store_limits_set(fr_cp_store *s, int tenant, const char *id, const char *doc);

/* ---- SLA ------------------------------------------------------------------------------- */

typedef struct fr_cp_sla_sum {
    int64_t reports, requests, errors, p50_ms, p99_ms, first_start, last_end;
} fr_cp_sla_sum;

/* Sums the reports whose window ends in [from, to): p50 is the request-weighted mean of
 * the reported medians, p99 the largest reported p99 (conservative). */
fr_status fr__cp_store_sla(fr_cp_store *s, int64_t from, int64_t to, fr_cp_sla_sum *out);

#endif
