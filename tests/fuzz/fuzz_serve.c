/* libFuzzer target for serve's request handling (`make fuzz FUZZ_TARGETS=serve`): what a
 * tenant sends is untrusted, so every request must get an answer (2xx or a located 4xx);
 * never a crash, a leak or a hang.  An input is one request to the real handlers of
 * core/serve/serve_runs.c and serve_replay.c on one fr_runs, as serve's routing
 * (core/serve/serve.c) makes it:
 *
 *   byte 0, bits 0-2  the route: 0, 6 POST /v1/run; 1, 7 POST /v1/validate; 2 POST
 *                     /v1/replay; 3 GET /v1/runs/{id}; 4 GET /v1/runs/{id}/trace;
 *                     5 DELETE /v1/runs/{id}
 *   byte 0, bits 3-4  who asks: acme's admin, operator or viewer, or beta's admin
 *   byte 0, bit 5     first make a traced run of acme's echo.yaml, and use its id for
 *                     GET/DELETE (instead of the rest of the input) and for a replay's
 *                     "run_id": "@" (so that a real run is looked up)
 *   the rest          the request body (JSON, parsed by fr__serve_parse_body as serve
 *                     parses it; manifest_yaml and trace inside), or the {id} of the URL
 *
 * The server is a small one made here: a temporary manifest directory (echo, llm on the
 * mock provider, another tenant's manifest, a manifest that RBAC narrows, a broken one and
 * a file that is not a manifest) and its providers (mock, without delay).  Plugins come
 * from $FR_BUILDDIR/plugins when set (make fuzz builds instrumented ones under
 * tests/fuzz/plugins), else from the build's plugins.
 *
 * What would make fuzzing slow or meaningless is not sent: runs are synchronous on the
 * calling thread ("async" is dropped and no SSE is asked for, which would start threads
 * the input cannot bound), and a manifest (inline, or inside a trace) is sent only when
 * its agents use echo, llm or mock (not chaos, whose crash, hang and delay options are
 * its purpose, nor a vendor's plugin, which would call the network), in process (serve's
 * runs take no lease), with at most 16 steps and 4 pool threads, and retries of at most 4
 * attempts 2 ms apart.  A manifest that does not parse is always sent: its errors are the
 * point.  FR_FUZZ_VERBOSE=1 prints each request's answer (to read a reproducer). */
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/diag.h"
#include "plugin/loader.h"
#include "manifest/manifest.h"
#include "serve/serve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_STEPS     16
#define MAX_THREADS   4
#define MAX_ATTEMPTS  4
#define MAX_RETRY_GAP 2000 /* us */

static const struct {
    const char *name, *text;
} manifests[] = {
    {"echo.yaml", "router: {namespace: acme, worker_pool_size: 1}\n"
                  "agents: [{id: e, plugin: echo}]\n"
                  "pipeline: [{step: echo, agent: e}]\n"
                  "input: {hello: world}\n"},
    {"chat.yaml", "router: {namespace: acme}\n"
                  "providers: [{id: local, plugin: mock}]\n"
                  "agents:\n"
                  "  - {id: ask, plugin: llm, provider: local, config: {prompt: \"About "
                  "{{input.topic}}\", stream: true}}\n"
                  "  - {id: sum, plugin: llm, provider: local, config: {prompt: "
                  "\"{{steps.ask.output}}\"}}\n"
                  "pipeline: [{step: ask}, {step: sum, depends_on: [ask]}]\n"
                  "input: {topic: rivers}\n"},
    {"beta.yaml", "router: {namespace: beta}\n"
                  "agents: [{id: e, plugin: echo}]\n"
                  "pipeline: [{step: e}]\n"},
    {"admin_only.yaml", "router: {namespace: acme, rbac: {run_roles: [admin]}}\n"
                        "agents: [{id: e, plugin: echo}]\n"
                        "pipeline: [{step: e}]\n"},
    {"broken.yaml", "router: {namespace: acme}\nagents: [{id: e, plugin: echo}\n"},
    {"creds.env", "SECRET_TOKEN=do-not-echo\n"},
};
static const char providers_yaml[] =
    "providers:\n"
    "  - {id: local, plugin: mock, config: {model: server-mock}}\n"
    "  - {id: other, plugin: mock, config: {model: other-mock, reply: \"ok {{prompt}}\"}}\n";

static const fr_identity identities[] = {
    {.id = "acme-admin", .tenant = "acme", .namespace_ = "acme", .role = FR_ROLE_ADMIN},
    {.id = "acme-op", .tenant = "acme", .namespace_ = "acme", .role = FR_ROLE_OPERATOR},
    {.id = "acme-viewer", .tenant = "acme", .namespace_ = "acme", .role = FR_ROLE_VIEWER},
    {.id = "beta-admin", .tenant = "beta", .namespace_ = "beta", .role = FR_ROLE_ADMIN},
};

static char dir[64];
static char plugin_dir[4096];
static const char *plugin_dirs[1];
static fr_manifest *providers;
static fr_runs *runs;
static int verbose; /* FR_FUZZ_VERBOSE set: each request and its answer on stderr */

static void teardown(void)
{
    fr__runs_free(runs);
    fr__manifest_free(providers);
    for (size_t i = 0; i < sizeof manifests / sizeof *manifests; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", dir, manifests[i].name);
        unlink(path);
    }
    rmdir(dir);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/fr-fuzz-serve-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    for (size_t i = 0; i < sizeof manifests / sizeof *manifests; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", dir, manifests[i].name);
        FILE *f = fopen(path, "w");
        if (!f || fputs(manifests[i].text, f) < 0 || fclose(f) != 0)
            abort();
    }
    fr_diags d;
    fr__diags_init(&d, "providers.yaml");
    providers =
        fr__manifest_parse_providers("providers.yaml", providers_yaml, strlen(providers_yaml), &d);
    if (!providers || d.n)
        abort();
    fr__diags_free(&d);
    const char *build = getenv("FR_BUILDDIR");
    size_t n_dirs = 0;
    if (build && *build) {
        snprintf(plugin_dir, sizeof plugin_dir, "%s/plugins", build);
        plugin_dirs[n_dirs++] = plugin_dir;
    }
    fr_runs_config cfg = {.manifest_dir = dir,
                          .plugin_dirs = plugin_dirs,
                          .n_plugin_dirs = n_dirs,
                          .providers = providers,
                          .retention_us = 3600LL * 1000000,
                          .retention_count = 16,
                          .retention_per_tenant = 16,
                          .retention_bytes = 64u << 20,
                          .max_concurrent = 4,
                          .max_per_tenant = 4};
    /* serve's per-request limits, as `fluxroute serve` starts with them. */
    fr__serve_limits_defaults(&cfg.limits);
    runs = fr__runs_new(&cfg);
    if (!runs)
        abort();
    /* Pooled pipelines of echo.yaml and chat.yaml keep echo, llm and mock loaded, so that
     * the inline manifests of the inputs do not load and unload them each time. */
    for (size_t i = 0; i < 2; i++) {
        char text[64];
        snprintf(text, sizeof text, "{\"manifest\":\"%s\"}", manifests[i].name);
        json_object *body = json_tokener_parse(text);
        fr_reply out = {0};
        fr__runs_handle_validate(runs, &identities[0], body, &out);
        json_object_put(body);
        free(out.body);
    }
    verbose = getenv("FR_FUZZ_VERBOSE") != NULL;
    atexit(teardown);
}

/* Is `name` a plugin file on the search path (the one serve would load)? */
static int plugin_exists(const char *name)
{
    const char *dirs[] = {plugin_dirs[0], fr__loader_builtin_dir()};
    for (size_t i = 0; i < 2; i++) {
        char path[4352];
        if (!dirs[i] || !*dirs[i])
            continue;
        snprintf(path, sizeof path, "%s/%s.so", dirs[i], name);
        if (access(path, F_OK) == 0)
            return 1;
    }
    return 0;
}

/* Would this manifest run only quick, bounded, in-process work (see the top)? */
static int harmless(const char *text, size_t len)
{
    fr_diags d;
    fr__diags_init(&d, "filter");
    fr_manifest *m = fr__manifest_parse("filter", text, len, dir, &d);
    int ok = 1;
    if (m && d.n == 0) {
        size_t threads = m->worker_pool_size > 0 ? (size_t)m->worker_pool_size : 1;
        ok = m->n_steps <= MAX_STEPS && (threads <= MAX_THREADS || m->n_steps <= MAX_THREADS);
        for (size_t i = 0; ok && i < m->n_agents; i++) {
            const fr_agent_cfg *a = &m->agents[i];
            const fr_retry_cfg *rt = &a->retry;
            /* Four attempts wait at most 8 times the base delay (exponential), capped. */
            int64_t gap =
                rt->base_delay_us > MAX_RETRY_GAP ? rt->base_delay_us : rt->base_delay_us * 8;
            if (rt->max_delay_us < gap)
                gap = rt->max_delay_us;
            ok = a->isolation == FR_ISOLATION_NONE &&
                 (rt->max_attempts <= 1 ||
                  (rt->max_attempts <= MAX_ATTEMPTS && gap <= MAX_RETRY_GAP));
            if (ok && strcmp(a->plugin, "echo") != 0 && strcmp(a->plugin, "llm") != 0 &&
                strcmp(a->plugin, "mock") != 0)
                ok = !plugin_exists(a->plugin);
        }
    }
    fr__manifest_free(m);
    fr__diags_free(&d);
    return ok;
}

/* A traced run of echo.yaml by acme's operator; its id in id (size 64), or "" when the run
 * could not be made. */
static void own_run(char *id)
{
    id[0] = '\0';
    fr_reply out = {0};
    json_object *body = json_tokener_parse("{\"manifest\":\"echo.yaml\",\"trace\":true}");
    fr__runs_handle_run(runs, &identities[1], body, 0, NULL, &out);
    json_object_put(body);
    json_object *rep = out.body ? json_tokener_parse(out.body) : NULL, *v;
    if (rep && json_object_object_get_ex(rep, "run_id", &v))
        snprintf(id, 64, "%s", json_object_get_string(v));
    json_object_put(rep);
    free(out.body);
}

/* POST: parses the body as serve does and calls the route's handler. */
static void post(int route, const fr_identity *who, const char *text, size_t len,
                 const char *run_id, fr_reply *out)
{
    json_object *body = fr__serve_parse_body(text, len, out), *v;
    if (!body)
        return;
    json_object_object_del(body, "async");
    if (json_object_object_get_ex(body, "manifest_yaml", &v) &&
        json_object_is_type(v, json_type_string) &&
        !harmless(json_object_get_string(v), (size_t)json_object_get_string_len(v)))
        goto done;
    if (route == 2) {
        json_object *t, *m;
        if (json_object_object_get_ex(body, "trace", &t) &&
            json_object_object_get_ex(t, "manifest", &m) &&
            json_object_is_type(m, json_type_string) &&
            !harmless(json_object_get_string(m), (size_t)json_object_get_string_len(m)))
            goto done;
        if (run_id && json_object_object_get_ex(body, "run_id", &v) &&
            json_object_is_type(v, json_type_string) && strcmp(json_object_get_string(v), "@") == 0)
            json_object_object_add(body, "run_id", json_object_new_string(run_id));
        fr__runs_handle_replay(runs, who, body, NULL, out);
    } else if (route == 1) {
        fr__runs_handle_validate(runs, who, body, out);
    } else {
        fr__runs_handle_run(runs, who, body, 0, NULL, out);
    }
done:
    json_object_put(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (!runs)
        setup();
    int route = data[0] & 7;
    route = route == 6 ? 0 : route == 7 ? 1 : route;
    const fr_identity *who = &identities[(data[0] >> 3) & 3];
    char own[64] = "";
    if (data[0] & 0x20)
        own_run(own);
    /* The handlers take terminated strings (a URL segment; the body as serve buffers it). */
    char *rest = malloc(size);
    if (!rest)
        return 0;
    memcpy(rest, data + 1, size - 1);
    rest[size - 1] = '\0';
    fr_reply out = {0};
    if (route <= 2) {
        post(route, who, rest, size - 1, own[0] ? own : NULL, &out);
    } else {
        /* serve's router takes the id up to the next '/', 1-63 bytes. */
        const char *id = own[0] ? own : rest;
        size_t n = strcspn(id, "/");
        if (n > 0 && n < 64 && id[n] == '\0') {
            if (route == 5)
                fr__runs_handle_cancel(runs, who, id, &out);
            else
                fr__runs_handle_get(runs, who, id, route == 4, &out);
        }
    }
    if (verbose)
        fprintf(stderr, "route %d, %s: %d %.300s\n", route, who->id, out.status,
                out.body ? out.body : "");
    free(out.body);
    free(rest);
    return 0;
}
