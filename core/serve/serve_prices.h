/* serve: the control plane's rate card in force, as budgets price provider calls (issue 26;
 * core/serve/serve_quota.h).  Fetched from GET /v1/billing/rates with the service key at
 * start and refreshed by fr__prices_refresh (serve's main loop, every
 * FR_PRICES_REFRESH_S); looked up from any thread without touching the network.
 * Thread-safe. */
#ifndef FR_CORE_SERVE_PRICES_H
#define FR_CORE_SERVE_PRICES_H

#include <stdint.h>

#include "controlplane/cp_client.h"

#define FR_PRICES_REFRESH_S 30

typedef struct fr_prices fr_prices;

/* A price list read through `cp` (borrowed for its life), fetched once now (a failure
 * leaves it empty until the next refresh, with a line on stderr).  NULL on OOM. */
fr_prices *fr__prices_new(fr_cp_client *cp);
void fr__prices_free(fr_prices *p);
/* Fetches the card in force again.  Returns 0, or -1 (the old prices are kept). */
int fr__prices_refresh(fr_prices *p);
/* An fr_quota_price_fn (ud: the fr_prices): the model's prices per million input and
 * output tokens and per run, its own or the card's "*" entry.  0, or -1 when none. */
int fr__prices_lookup(void *ud, const char *model, int64_t *per_m_input, int64_t *per_m_output,
                      int64_t *per_run);

#endif
