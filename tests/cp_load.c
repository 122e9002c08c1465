/* cp_load: drives the control plane for the end-to-end test and the benchmark.
 *
 *   cp_load post URL KEY TENANT FIRST COUNT BATCH PREFIX
 *       posts events PREFIX-FIRST .. PREFIX-(FIRST+COUNT-1) (input_tokens 10,
 *       output_tokens 1, runs 1) in batches, one connection, and prints "acked N" after
 *       each acknowledged batch (N = the next unacknowledged index).  Exits 1 at the
 *       first failure (e.g. the server was killed).
 *   cp_load bench URL KEY TENANT COUNT BATCH CONNS PREFIX
 *       the same from CONNS threads; prints {"events", "batch", "conns", "seconds",
 *       "events_per_sec"}.
 *   cp_load client URL KEY SPOOL TENANT COUNT PREFIX
 *       reports COUNT events (and one SLA window) through core/controlplane/cp_client.c, frees the
 *       client (bounded flush) and prints its counters as JSON.
 *   cp_load lookup URL KEY SPOOL SHA256
 *       looks a key up through the client twice (the second from its cache). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "controlplane/cp_client.h"

static size_t discard(char *d, size_t s, size_t n, void *u)
{
    (void)d, (void)u;
    return s * n;
}

typedef struct job {
    const char *url, *key, *tenant, *prefix;
    long first, count, batch;
    int verbose;
    long acked; /* next unacknowledged index */
    int failed;
} job;

static void *post_events(void *arg)
{
    job *j = arg;
    CURL *h = curl_easy_init();
    char url[1024], auth[512];
    snprintf(url, sizeof url, "%s/v1/usage", j->url);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", j->key);
    struct curl_slist *hdr = curl_slist_append(NULL, auth);
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    size_t cap = (size_t)j->batch * 300 + 64;
    char *body = malloc(cap);
    j->acked = j->first;
    for (long i = j->first; i < j->first + j->count;) {
        long n = j->first + j->count - i < j->batch ? j->first + j->count - i : j->batch;
        size_t len = (size_t)snprintf(body, cap, "[");
        for (long k = 0; k < n; k++)
            len += (size_t)snprintf(
                body + len, cap - len,
                "%s{\"idempotency_key\":\"%s-%ld\",\"tenant\":\"%s\","
                "\"occurred_at\":\"2024-05-01T12:00:00Z\",\"kind\":\"provider_call\","
                "\"provider\":\"mock\",\"model\":\"m1\",\"input_tokens\":10,"
                "\"output_tokens\":1,\"runs\":1}",
                k ? "," : "", j->prefix, i + k, j->tenant);
        len += (size_t)snprintf(body + len, cap - len, "]");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)len);
        long status = 0;
        if (curl_easy_perform(h) == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (status != 202) {
            j->failed = 1;
            break;
        }
        i += n;
        j->acked = i;
        if (j->verbose) {
            printf("acked %ld\n", i);
            fflush(stdout);
        }
    }
    free(body);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void)
{
    fprintf(stderr, "usage: cp_load post|bench|client|lookup ... (see tests/cp_load.c)\n");
    return 2;
}

int main(int argc, char **argv)
{
    curl_global_init(CURL_GLOBAL_ALL);
    int rc = 0;
    if (argc == 9 && strcmp(argv[1], "post") == 0) {
        job j = {.url = argv[2],
                 .key = argv[3],
                 .tenant = argv[4],
                 .first = atol(argv[5]),
                 .count = atol(argv[6]),
                 .batch = atol(argv[7]),
                 .prefix = argv[8],
                 .verbose = 1};
        post_events(&j);
        rc = j.failed;
    } else if (argc == 9 && strcmp(argv[1], "bench") == 0) {
        long count = atol(argv[5]), batch = atol(argv[6]), conns = atol(argv[7]);
        if (conns < 1 || conns > 64 || batch < 1)
            return usage();
        job jobs[64];
        pthread_t t[64];
        double t0 = now_s();
        for (long i = 0; i < conns; i++) {
            jobs[i] = (job){.url = argv[2],
                            .key = argv[3],
                            .tenant = argv[4],
                            .prefix = argv[8],
                            .first = i * (count / conns),
                            .count = count / conns,
                            .batch = batch};
            pthread_create(&t[i], NULL, post_events, &jobs[i]);
        }
        long done = 0;
        for (long i = 0; i < conns; i++) {
            pthread_join(t[i], NULL);
            done += jobs[i].acked - jobs[i].first;
            rc |= jobs[i].failed;
        }
        double secs = now_s() - t0;
        printf("{\"events\": %ld, \"batch\": %ld, \"conns\": %ld, \"seconds\": %.3f, "
               "\"events_per_sec\": %.0f}\n",
               done, batch, conns, secs, (double)done / secs);
    } else if (argc == 8 && strcmp(argv[1], "client") == 0) {
        fr_cp_client *c = fr__cp_client_new(argv[2], argv[3], argv[4]);
        if (!c)
            return 1;
        long count = atol(argv[6]);
        char idem[256];
        for (long i = 0; i < count; i++) {
            snprintf(idem, sizeof idem, "%s-%ld", argv[7], i);
            fr_cp_usage_event ev = {.idempotency_key = idem,
                                    .tenant = argv[5],
                                    .occurred_at = 1714564800,
                                    .kind = i % 2 ? "run" : "provider_call",
                                    .provider = "mock",
                                    .model = i % 2 ? "" : "m1",
                                    .input_tokens = i % 2 ? 0 : 10,
                                    .output_tokens = i % 2 ? 0 : 1,
                                    .runs = i % 2};
            if (fr__cp_report_usage(c, &ev) != FR_OK)
                rc = 1;
        }
        if (count) {
            fr_cp_sla_report s = {.requests = 1000,
                                  .errors = 1,
                                  .latency_ms_p50 = 12,
                                  .latency_ms_p99 = 80,
                                  .window_start = time(NULL) - 60,
                                  .window_end = time(NULL)};
            if (fr__cp_report_sla(c, &s) != FR_OK)
                rc = 1;
        }
        fr_cp_client_stats st;
        fr__cp_client_free(c); /* bounded flush: sends, or spools what it cannot */
        (void)st;
        printf("{\"reported\": %ld}\n", count);
    } else if (argc == 6 && strcmp(argv[1], "lookup") == 0) {
        fr_cp_client *c = fr__cp_client_new(argv[2], argv[3], argv[4]);
        if (!c)
            return 1;
        for (int i = 0; i < 2; i++) {
            fr_cp_identity id;
            fr_status st = fr__cp_lookup_key(c, argv[5], &id);
            if (st == FR_OK)
                printf("{\"tenant\": \"%s\", \"namespace\": \"%s\", \"role\": \"%s\", \"key_id\": "
                       "\"%s\"}\n",
                       id.tenant, id.namespace_, id.role, id.key_id);
            else
                printf("{\"status\": \"%s\"}\n", fr_status_name(st));
        }
        fr__cp_client_free(c);
    } else {
        return usage();
    }
    curl_global_cleanup();
    return rc;
}
