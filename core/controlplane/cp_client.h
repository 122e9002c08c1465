/* The control-plane client `fluxroute serve` uses: API-key lookup (cached at most 5 s)
 * and usage reporting that neither loses nor doubles an event.
 *
 * Usage events are queued in memory and sent by one background thread in batches of up
 * to 100 (POST /v1/usage, `Authorization: Bearer <service key>`), at the latest 100 ms
 * after they were queued.  When the control plane cannot be reached (network error,
 * 5xx, 429, 401/403) the batch is appended to the spool file (one JSON event per line,
 * then fdatasync) and the thread retries with exponential backoff (100 ms doubling to
 * 5 s); once the control plane answers, the whole spool is re-sent with the same
 * idempotency keys, then truncated.  A batch acknowledged by the server but still in the
 * spool (a crash between the two) is re-sent and counted once: the server ignores known
 * idempotency keys.  An event the server rejects as invalid (HTTP 400 or 413 when sent
 * alone: e.g. an unknown tenant) is never dropped in silence: it is appended to
 * `<spool>.rejected` (the event's JSON line, a tab, the control plane's reason; the file is
 * created 0600 and fsynced), counted in fluxroute_usage_rejected_total, and named on
 * stderr (idempotency key, tenant, reason).  An operator resubmits it once fixed:
 *     cut -f1 <spool>.rejected | jq -s '{events: .}' | curl -H "Authorization: Bearer \
 *       $SERVICE_KEY" -H 'Content-Type: application/json' --data-binary @- $CP/v1/usage
 * (the same keys: events the control plane already holds are not counted twice).  If the
 * file cannot be written the event is printed on stderr in full.
 *
 * What can be lost: only events still in memory when the process dies without calling
 * fr__cp_client_free (at most ~100 ms of reports).  fr__cp_client_free sends or spools
 * everything it holds.
 *
 * Thread-safety: every function except fr__cp_client_free may be called concurrently
 * from any thread.  libcurl must be initialised (curl_global_init, done by
 * fr__http_global_init) before fr__cp_client_new.  One spool file per client: the spool
 * is locked (flock) and a second client on the same path is refused. */
#ifndef FR_CORE_CP_CLIENT_H
#define FR_CORE_CP_CLIENT_H

#include <stdint.h>

#include <fluxroute/status.h>

/* Longest a cached lookup answer (found or not) is used. */
#define FR_CP_LOOKUP_TTL_MS 5000
/* How long fr__cp_client_free waits for the control plane before spooling the rest. */
#define FR_CP_FLUSH_WAIT_MS 5000

typedef struct fr_cp_client fr_cp_client;
struct json_object;

/* Who an API key belongs to (fixed-size fields, no ownership). */
typedef struct fr_cp_identity {
    char tenant[65];
    char namespace_[33];
    char role[16]; /* viewer | operator | admin */
    char key_id[40];
    /* The limit documents of the tenant and the key (compact JSON text, "{}" when none is
     * set; "" when the control plane sent none), core/manifest/limits_doc.h. */
    char limits_tenant[2048];
    char limits_key[2048];
} fr_cp_identity;

/* One usage event.  Every pointer is borrowed for the call (copied before it returns). */
typedef struct fr_cp_usage_event {
    const char *idempotency_key; /* unique per event; NULL or "": a random UUID is used */
    const char *tenant;          /* required */
    int64_t occurred_at;         /* Unix seconds; 0 means now */
    const char *kind;            /* "run" or "provider_call" */
    const char *provider;        /* may be NULL */
    const char *model;           /* may be NULL */
    int64_t input_tokens, output_tokens, runs;
    /* provider_call only: the provider reported no usage (tokens 0 because unknown); sent
     * as "usage_unknown": true, and left out when 0 */
    int usage_unknown;
    const char *key_id; /* the API key's id (the control plane's), may be NULL */
} fr_cp_usage_event;

/* Request counters of one window, reported with usage (GET /sla sums them). */
typedef struct fr_cp_sla_report {
    int64_t requests, errors, latency_ms_p50, latency_ms_p99;
    int64_t window_start, window_end; /* Unix seconds, end > start */
} fr_cp_sla_report;

/* Creates a client for the control plane at `url` (e.g. "http://127.0.0.1:8081"), with
 * `service_key` (a key of kind service) and a spool file path (created 0600).  Strings
 * are copied.  Starts the sender thread, which first replays what an earlier process
 * left in the spool.  Returns NULL (with a line on stderr) when an argument is missing,
 * the spool cannot be opened or is locked by another client. */
fr_cp_client *fr__cp_client_new(const char *url, const char *service_key, const char *spool_path);

/* Looks up the key whose plaintext has sha256 `sha256_hex` (64 hex digits): FR_OK with
 * *out filled for an active key of an active tenant; FR_E_NOT_FOUND for an unknown or
 * revoked key or a suspended tenant; FR_E_NETWORK when the control plane cannot be
 * reached (serve should answer 503, not 401).  Answers are cached for at most
 * FR_CP_LOOKUP_TTL_MS, so a revocation takes effect within 5 s. */
fr_status fr__cp_lookup_key(fr_cp_client *client, const char *sha256_hex, fr_cp_identity *out);

/* GET `path` (e.g. "/v1/billing/rates") with the service key: FR_OK with the answer's JSON
 * in *out (caller releases it), FR_E_NOT_FOUND for a 404, FR_E_NETWORK otherwise.  Blocks
 * at most 3 s; not cached. */
fr_status fr__cp_get_json(fr_cp_client *client, const char *path, struct json_object **out);

/* GET `path` with the caller's own API key `bearer` (borrowed) instead of the service key,
 * so that the control plane scopes the answer to the caller's tenant (serve's GET
 * /v1/usage).  Returns the HTTP status, 0 when the control plane was not reached, and the
 * answer's body in *body (NUL-terminated, caller frees; may be NULL).  Blocks at most 3 s;
 * not cached. */
long fr__cp_get_as(fr_cp_client *client, const char *path, const char *bearer, char **body);
/* Queues one event; never blocks on the network.  FR_OK, FR_E_INVALID (missing tenant or
 * bad kind), FR_E_OVERLOADED (a million events already queued: the spool disk is not
 * keeping up) or FR_E_NOMEM. */
fr_status fr__cp_report_usage(fr_cp_client *client, const fr_cp_usage_event *ev);

/* Queues a window of request counters (sent with the next usage batch).  FR_OK or
 * FR_E_INVALID / FR_E_NOMEM. */
fr_status fr__cp_report_sla(fr_cp_client *client, const fr_cp_sla_report *sla);

/* Counters for tests and metrics. */
typedef struct fr_cp_client_stats {
    uint64_t sent;     /* events acknowledged by the control plane (first try) */
    uint64_t spooled;  /* events written to the spool */
    uint64_t replayed; /* spooled events acknowledged later */
    uint64_t rejected; /* events refused as invalid (in <spool>.rejected) */
    uint64_t queued;   /* events in memory now */
} fr_cp_client_stats;
void fr__cp_client_stats(fr_cp_client *client, fr_cp_client_stats *out);

/* Stops the sender: sends what is queued and replays the spool, waiting at most
 * FR_CP_FLUSH_WAIT_MS for the control plane, then spools whatever is left and frees the
 * client.  NULL is ignored.  Must not race with other calls on the same client. */
void fr__cp_client_free(fr_cp_client *client);

#endif
