/* bench_ai_chain: the ai_chain10 overhead benchmark.  Two phases, one engine open in each:
 *   driver:  runs of MANIFEST (10 chained llm steps through the openai plugin) through the
 *            embedding API (fr_engine_run with default options: the engine `fluxroute
 *            run` uses; steps on the pipeline's driver thread), alternating round by
 *            round with
 *   bare:    a loop of the same 10 sequential chat-completion requests with libcurl (one
 *            reused easy handle) against the same server;
 *   caller:  the same with an engine opened with run_on_caller (steps on the calling
 *            thread), again alternating with the bare loop.
 * The order within a round alternates, so slow drifts of the machine fall on both sides.
 * Each phase is the measure (FluxRoute's time per run minus the bare loop's,
 * interleaved in one run); the phases are kept apart so that one engine's runs never
 * fall between the other's.  It prints JSON with the means, the mean overheads per run
 * and the median and quartiles of the per-round differences (the robust figures on a
 * noisy machine).  tests/bench_ai.sh starts the fake vendor (fixed delay) and runs this.
 *
 *   bench_ai_chain PLUGIN_DIR MANIFEST PORT KEY [PAIRS [WARMUP]]
 *   env: BENCH_ONLY=driver|caller runs that phase only (for profiling one mode). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <fluxroute/fluxroute.h>

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

/* Microseconds for 10 sequential requests. */
static double bare_run(CURL *h)
{
    double t0 = now_us();
    for (int step = 0; step < 10; step++) {
        long code = 0;
        if (curl_easy_perform(h) != CURLE_OK ||
            (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code), code != 200)) {
            fprintf(stderr, "bench_ai_chain: bare request failed (HTTP %ld)\n", code);
            exit(1);
        }
    }
    return now_us() - t0;
}

/* Microseconds for one run of the pipeline; exits unless it succeeded. */
static double engine_run(fr_engine *e, uint64_t seed)
{
    char *report = NULL;
    double t0 = now_us();
    fr_status st = fr_engine_run(e, NULL, seed, &report);
    double t = now_us() - t0;
    if (st != FR_OK || !report || !strstr(report, "\"status\":\"succeeded\"")) {
        fprintf(stderr, "bench_ai_chain: run failed (%s): %.600s\n", fr_strerror(st),
                report ? report : "");
        exit(1);
    }
    fr_free(report);
    return t;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One phase: the means of engine runs and bare loops, and the quartiles of the per-round
 * differences. */
typedef struct phase {
    double engine_us, bare_us, median, p25, p75;
} phase;

static int run_phase(fr_engine *e, CURL *h, int pairs, int warmup, phase *out)
{
    for (int i = 0; i < warmup; i++) {
        engine_run(e, (uint64_t)i + 1);
        bare_run(h);
    }
    double *diff = malloc((size_t)pairs * sizeof *diff);
    if (!diff)
        return -1;
    double esum = 0, bsum = 0;
    for (int i = 0; i < pairs; i++) {
        uint64_t seed = (uint64_t)i + 1000;
        double te, tb;
        if (i % 2) { /* alternate the order */
            tb = bare_run(h);
            te = engine_run(e, seed);
        } else {
            te = engine_run(e, seed);
            tb = bare_run(h);
        }
        esum += te;
        bsum += tb;
        diff[i] = te - tb;
    }
    qsort(diff, (size_t)pairs, sizeof *diff, cmp_double);
    *out = (phase){esum / pairs, bsum / pairs, diff[pairs / 2], diff[pairs / 4],
                   diff[(3 * pairs) / 4]};
    free(diff);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: bench_ai_chain PLUGIN_DIR MANIFEST PORT KEY [PAIRS [WARMUP]]\n");
        return 2;
    }
    const char *plugin_dir = argv[1], *manifest = argv[2], *port = argv[3], *key = argv[4];
    int pairs = argc > 5 ? atoi(argv[5]) : 100, warmup = argc > 6 ? atoi(argv[6]) : 5;
    if (pairs < 1 || warmup < 0)
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

    phase ph[2] = {{0}};
    const char *only = getenv("BENCH_ONLY");
    for (int mode = 0; mode < 2; mode++) {
        if (only && strcmp(only, mode ? "caller" : "driver") != 0)
            continue;
        fr_engine_options eo = {.struct_size = sizeof eo,
                                .plugin_dirs = &plugin_dir,
                                .n_plugin_dirs = 1,
                                .run_on_caller = mode};
        fr_engine *e = NULL;
        char *errors = NULL;
        if (fr_engine_open(manifest, &eo, &e, &errors) != FR_OK) {
            fprintf(stderr, "bench_ai_chain: %s\n", errors ? errors : "cannot open the manifest");
            fr_free(errors);
            return 1;
        }
        if (run_phase(e, h, pairs, warmup, &ph[mode]) != 0)
            return 1;
        fr_engine_close(e);
    }
    printf("{\"benchmark\":\"ai_chain10\",\"pairs\":%d,\"fluxroute_us\":%.1f,\"bare_us\":%.1f,"
           "\"overhead_us_per_run\":%.1f,\"overhead_median_us\":%.1f,\"overhead_p25_us\":%.1f,"
           "\"overhead_p75_us\":%.1f,\"overhead_us_per_step\":%.1f,"
           "\"caller_fluxroute_us\":%.1f,\"caller_bare_us\":%.1f,"
           "\"caller_overhead_us_per_run\":%.1f,\"caller_overhead_median_us\":%.1f,"
           "\"caller_overhead_p25_us\":%.1f,\"caller_overhead_p75_us\":%.1f}\n",
           pairs, ph[0].engine_us, ph[0].bare_us, ph[0].engine_us - ph[0].bare_us, ph[0].median,
           ph[0].p25, ph[0].p75, ph[0].median / 10, ph[1].engine_us, ph[1].bare_us,
           ph[1].engine_us - ph[1].bare_us, ph[1].median, ph[1].p25, ph[1].p75);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    curl_global_cleanup();
    return 0;
}
