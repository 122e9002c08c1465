/* serve: the rate card in force, for budgets (serve_prices.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "serve/serve_prices.h"

typedef struct price {
    char model[128];
    int64_t in, out, per_run;
} price;

struct fr_prices {
    fr_cp_client *cp;
    pthread_mutex_t mu;
    price *list;
    size_t n;
    int64_t version;
};

fr_prices *fr__prices_new(fr_cp_client *cp)
{
    fr_prices *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->cp = cp;
    pthread_mutex_init(&p->mu, NULL);
    if (fr__prices_refresh(p) != 0)
        fprintf(stderr, "fluxroute serve: cannot read the control plane's rate card yet "
                        "(GET /v1/billing/rates): budgeted calls are refused until it is read\n");
    return p;
}

void fr__prices_free(fr_prices *p)
{
    if (!p)
        return;
    free(p->list);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static int64_t get_int(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_int)
               ? json_object_get_int64(v)
               : -1;
}

int fr__prices_refresh(fr_prices *p)
{
    json_object *o = NULL, *cur, *prices;
    if (fr__cp_get_json(p->cp, "/v1/billing/rates", &o) != FR_OK)
        return -1;
    if (!json_object_object_get_ex(o, "current", &cur) || !cur ||
        !json_object_object_get_ex(cur, "prices", &prices) ||
        !json_object_is_type(prices, json_type_array)) {
        json_object_put(o);
        return -1; /* no card in force yet */
    }
    size_t n = json_object_array_length(prices);
    price *list = calloc(n ? n : 1, sizeof *list);
    if (!list) {
        json_object_put(o);
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(prices, i), *m;
        int64_t in = get_int(e, "input_per_mtok"), out = get_int(e, "output_per_mtok");
        if (!json_object_object_get_ex(e, "model", &m) || in < 0 || out < 0)
            continue;
        snprintf(list[k].model, sizeof list[k].model, "%s", json_object_get_string(m));
        list[k].in = in;
        list[k].out = out;
        int64_t per_run = get_int(e, "per_run");
        list[k].per_run = per_run > 0 ? per_run : 0;
        k++;
    }
    int64_t version = get_int(cur, "version");
    json_object_put(o);
    pthread_mutex_lock(&p->mu);
    free(p->list);
    p->list = list;
    p->n = k;
    p->version = version;
    pthread_mutex_unlock(&p->mu);
    return 0;
}

int fr__prices_lookup(void *ud, const char *model, int64_t *per_m_input, int64_t *per_m_output,
                      int64_t *per_run)
{
    fr_prices *p = ud;
    int rc = -1;
    pthread_mutex_lock(&p->mu);
    const price *any = NULL, *hit = NULL;
    for (size_t i = 0; i < p->n && !hit; i++) {
        if (model && strcmp(p->list[i].model, model) == 0)
            hit = &p->list[i];
        else if (strcmp(p->list[i].model, "*") == 0)
            any = &p->list[i];
    }
    if (!hit)
        hit = any;
    if (hit) {
        *per_m_input = hit->in;
        *per_m_output = hit->out;
        *per_run = hit->per_run;
        rc = 0;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}
