/* bench_gateway_load: the load generator of tests/bench_gateway.sh.  CONCURRENCY threads,
 * each with one keep-alive connection (a libcurl easy handle), POST the body of BODY_FILE
 * to URL back to back until REQUESTS requests are done in all (after WARMUP requests per
 * thread that are not counted), and measure each request's latency: the whole answer, or
 * with STREAM=1 the time to the first token (the first received bytes holding a non-empty
 * `"content":"` delta of a chat.completion.chunk).  Prints one JSON object: {n, errors,
 * mean_us, p50_us, p90_us, p99_us, requests_per_sec}.  Any non-200 answer counts as an
 * error (and its latency is not counted).  BODY_FILE "-" sends GETs instead (the floor:
 * serve's GET /healthz, one HTTP hop and no work).
 *
 *   bench_gateway_load URL AUTH_HEADER BODY_FILE CONCURRENCY REQUESTS STREAM [WARMUP] */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

static const char *url, *auth;
static char *body;
static long per_thread, warmup;
static int stream;

typedef struct worker {
    pthread_t th;
    int64_t *lat; /* per_thread latencies, microseconds */
    long n, errors;
} worker;

typedef struct req_state {
    int64_t start, first; /* first: when the first token arrived (0: not yet) */
    char tail[16];        /* the last bytes seen, for a marker split across writes */
} req_state;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Notes the first token: "content":" followed by anything but the closing quote. */
static size_t on_data(char *p, size_t s, size_t n, void *ud)
{
    req_state *r = ud;
    size_t len = s * n;
    if (!stream || r->first)
        return len;
    char buf[4096 + sizeof r->tail];
    size_t k = strlen(r->tail), take = len < 4096 ? len : 4096;
    memcpy(buf, r->tail, k);
    memcpy(buf + k, p, take);
    buf[k + take] = '\0';
    for (const char *m = buf; (m = strstr(m, "\"content\":\"")) != NULL; m++) {
        if (m[11] && m[11] != '"') {
            r->first = now_us();
            break;
        }
    }
    size_t keep = k + take < sizeof r->tail - 1 ? k + take : sizeof r->tail - 1;
    memcpy(r->tail, buf + k + take - keep, keep);
    r->tail[keep] = '\0';
    return len;
}

static void *run(void *arg)
{
    worker *w = arg;
    CURL *h = curl_easy_init();
    struct curl_slist *hd = NULL;
    hd = curl_slist_append(hd, "Content-Type: application/json");
    hd = curl_slist_append(hd, auth);
    hd = curl_slist_append(hd, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    else
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    for (long i = 0; i < warmup + per_thread; i++) {
        req_state r = {0};
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
        r.start = now_us();
        CURLcode rc = curl_easy_perform(h);
        int64_t end = now_us();
        long code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        if (i < warmup)
            continue;
        if (rc != CURLE_OK || code != 200 || (stream && !r.first)) {
            w->errors++;
            continue;
        }
        w->lat[w->n++] = (stream ? r.first : end) - r.start;
    }
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: bench_gateway_load URL AUTH_HEADER BODY_FILE CONCURRENCY "
                        "REQUESTS STREAM [WARMUP]\n");
        return 2;
    }
    url = argv[1];
    auth = argv[2];
    if (strcmp(argv[3], "-") != 0) {
        FILE *f = fopen(argv[3], "rb");
        if (!f) {
            fprintf(stderr, "bench_gateway_load: cannot read %s\n", argv[3]);
            return 1;
        }
        body = calloc(1, 1 << 16);
        size_t got = body ? fread(body, 1, (1 << 16) - 1, f) : 0;
        fclose(f);
        if (!body)
            return 1;
        body[got] = '\0';
    }
    int conc = atoi(argv[4]);
    long total = atol(argv[5]);
    stream = atoi(argv[6]);
    warmup = argc > 7 ? atol(argv[7]) : 20;
    if (conc < 1 || total < conc) {
        fprintf(stderr, "bench_gateway_load: CONCURRENCY >= 1 and REQUESTS >= CONCURRENCY\n");
        return 2;
    }
    per_thread = total / conc;
    curl_global_init(CURL_GLOBAL_ALL);
    worker *w = calloc((size_t)conc, sizeof *w);
    int64_t t0 = now_us();
    for (int i = 0; i < conc; i++) {
        w[i].lat = calloc((size_t)per_thread, sizeof(int64_t));
        pthread_create(&w[i].th, NULL, run, &w[i]);
    }
    long n = 0, errors = 0;
    for (int i = 0; i < conc; i++) {
        pthread_join(w[i].th, NULL);
        n += w[i].n;
        errors += w[i].errors;
    }
    double secs = (double)(now_us() - t0) / 1e6;
    int64_t *all = calloc((size_t)(n ? n : 1), sizeof *all), sum = 0;
    long k = 0;
    for (int i = 0; i < conc; i++)
        for (long j = 0; j < w[i].n; j++)
            sum += all[k++] = w[i].lat[j];
    qsort(all, (size_t)n, sizeof *all, cmp);
#define Q(p) (n ? all[(long)((double)(n - 1) * (p))] : 0)
    printf("{\"n\":%ld,\"errors\":%ld,\"mean_us\":%lld,\"p50_us\":%lld,\"p90_us\":%lld,"
           "\"p99_us\":%lld,\"requests_per_sec\":%.0f}\n",
           n, errors, (long long)(n ? sum / n : 0), (long long)Q(0.50), (long long)Q(0.90),
           (long long)Q(0.99), secs > 0 ? (double)(n + errors) / secs : 0.0);
    for (int i = 0; i < conc; i++)
        free(w[i].lat);
    free(w);
    free(all);
    free(body);
    curl_global_cleanup();
    return 0;
}
