/* Usage events for the control plane from host-observed provider calls (serve_usage.h). */
#include <stdio.h>
#include <string.h>

#include <gnutls/crypto.h>

#include "serve/serve_usage.h"

/* Bumped if the encoding below ever changes, so old and new keys cannot meet. */
#define KEY_DOMAIN "fluxroute.usage.v1"

/* Adds `s` and its terminating NUL: the NUL separates fields (none can contain one). */
static void put(gnutls_hash_hd_t h, const char *s)
{
    gnutls_hash(h, s ? s : "", strlen(s ? s : "") + 1);
}

void fr__usage_key(const char *tenant, const char *run_id, const char *step, size_t attempt,
                   int ordinal, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char d[32];
    gnutls_hash_hd_t h;
    memset(d, 0, sizeof d);
    if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) == 0) {
        put(h, KEY_DOMAIN);
        put(h, step ? "provider_call" : "run");
        put(h, tenant);
        put(h, run_id);
        if (step) {
            char n[48];
            put(h, step);
            snprintf(n, sizeof n, "%zu", attempt);
            put(h, n);
            snprintf(n, sizeof n, "%d", ordinal);
            put(h, n);
        }
        gnutls_hash_deinit(h, d);
    }
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[64] = '\0';
}

void fr__usage_report_run(fr_cp_client *cp, const char *tenant, const char *key_id,
                          const fr_pipeline *p, const fr_run_result *res)
{
    if (!cp)
        return;
    char key[65];
    fr__usage_key(tenant, res->run_id, NULL, 0, 0, key);
    fr_cp_usage_event ev = {
        .idempotency_key = key, .tenant = tenant, .kind = "run", .runs = 1, .key_id = key_id};
    fr__cp_report_usage(cp, &ev);
    const fr_manifest *m = fr__pipeline_manifest(p);
    for (size_t i = 0; i < res->n_steps; i++) {
        const fr_step_result *s = &res->steps[i];
        for (size_t j = 0; j < s->n_attempts; j++) {
            const fr_attempt_result *a = &s->attempts[j];
            for (size_t k = 0; k < a->n_provider_calls; k++) {
                const fr_provider_use *c = &a->provider_calls[k];
                fr__usage_key(tenant, res->run_id, m->steps[i].id, j + 1, c->ordinal, key);
                fr_cp_usage_event pe = {.idempotency_key = key,
                                        .tenant = tenant,
                                        .kind = "provider_call",
                                        .provider = c->provider,
                                        .model = c->model,
                                        .input_tokens = c->input_tokens,
                                        .output_tokens = c->output_tokens,
                                        .usage_unknown = c->usage_unknown,
                                        .key_id = key_id};
                fr__cp_report_usage(cp, &pe);
            }
        }
    }
}
