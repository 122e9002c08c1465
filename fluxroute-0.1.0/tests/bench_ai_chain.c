/* bench_ai_chain: the ai_chain10 overhead benchmark.  In one process it interleaves
 * rounds of
 *   (a) `fluxroute bench MANIFEST --runs N --warmup W --json` (10 chained llm steps
 *       through the openai plugin, in-process runs), and
 *   (b) a bare loop of the same 10 sequential chat-completion requests with libcurl
 *       (one reused easy handle) against the same server,
 * and prints JSON with both means and overhead_us_per_run = mean(a) - mean(b).
 * tests/bench_ai.sh starts the fake vendor (fixed delay) and runs this.
 *
 *   bench_ai_chain FLUXROUTE MANIFEST PORT KEY [RUNS [ROUNDS [WARMUP]]] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <json-c/json.h>

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
    (void)p, (void)ud;
    return s * n;
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Mean microseconds per run of `runs` runs of 10 sequential requests. */
static double bare_loop(CURL *h, int runs, int warmup)
{
    double total = 0;
    for (int r = -warmup; r < runs; r++) {
        double t0 = now_us();
        for (int step = 0; step < 10; step++) {
            long code = 0;
            if (curl_easy_perform(h) != CURLE_OK ||
                (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code), code != 200)) {
                fprintf(stderr, "bench_ai_chain: bare request failed (HTTP %ld)\n", code);
                exit(1);
            }
        }
        if (r >= 0)
            total += now_us() - t0;
    }
    return total / runs;
}

static double fluxroute_bench(const char *fluxroute, const char *manifest, int runs, int warmup)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' bench '%s' --runs %d --warmup %d --json", fluxroute, manifest,
             runs, warmup);
    FILE *p = popen(cmd, "r");
    if (!p) {
        perror("popen");
        exit(1);
    }
    char out[8192];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int rc = pclose(p);
    json_object *o = json_tokener_parse(out), *mean;
    if (rc != 0 || !o || !json_object_object_get_ex(o, "mean_us", &mean)) {
        fprintf(stderr, "bench_ai_chain: `%s` failed (status %d): %s\n", cmd, rc, out);
        exit(1);
    }
    double v = json_object_get_double(mean);
    json_object_put(o);
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr,
                "usage: bench_ai_chain FLUXROUTE MANIFEST PORT KEY [RUNS [ROUNDS [WARMUP]]]\n");
        return 2;
    }
    const char *fluxroute = argv[1], *manifest = argv[2], *port = argv[3], *key = argv[4];
    int runs = argc > 5 ? atoi(argv[5]) : 30, rounds = argc > 6 ? atoi(argv[6]) : 3;
    int warmup = argc > 7 ? atoi(argv[7]) : 3;
    if (runs < 1 || rounds < 1 || warmup < 0)
        return 2;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *h = curl_easy_init();
    char url[256], auth[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%s/v1/chat/completions", port);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    /* About the size of what the openai plugin sends for a chained step. */
    const char *body =
        "{\"model\":\"gpt-fake\",\"messages\":[{\"role\":\"user\",\"content\":\"Continue: "
        "{\\\"s01\\\":{\\\"text\\\":\\\"fake-openai heard: Continue: a b c d\\\",\\\"usage\\\":"
        "{\\\"input_tokens\\\":9,\\\"output_tokens\\\":7},\\\"model\\\":\\\"gpt-fake\\\"}}\"}],"
        "\"max_tokens\":32}";
    struct curl_slist *hd = NULL;
    hd = curl_slist_append(hd, auth);
    hd = curl_slist_append(hd, "Content-Type: application/json");
    hd = curl_slist_append(hd, "Accept: application/json");
    hd = curl_slist_append(hd, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);

    double fsum = 0, bsum = 0, fr[64], br[64];
    if (rounds > 64)
        rounds = 64;
    for (int i = 0; i < rounds; i++) {
        fr[i] = fluxroute_bench(fluxroute, manifest, runs, warmup);
        br[i] = bare_loop(h, runs, warmup);
        fsum += fr[i];
        bsum += br[i];
    }
    printf(
        "{\"benchmark\":\"ai_chain10\",\"runs_per_round\":%d,\"rounds\":%d,\"fluxroute_mean_us\":[",
        runs, rounds);
    for (int i = 0; i < rounds; i++)
        printf("%s%.1f", i ? "," : "", fr[i]);
    printf("],\"bare_mean_us\":[");
    for (int i = 0; i < rounds; i++)
        printf("%s%.1f", i ? "," : "", br[i]);
    double overhead = (fsum - bsum) / rounds;
    printf("],\"fluxroute_us\":%.1f,\"bare_us\":%.1f,\"overhead_us_per_run\":%.1f,"
           "\"overhead_us_per_step\":%.1f}\n",
           fsum / rounds, bsum / rounds, overhead, overhead / 10);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    curl_global_cleanup();
    return 0;
}
