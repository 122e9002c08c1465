/* ABI stability: the frozen ABI 1.0 agent (tests/abi/frozen_v1_agent.c) still loads
 * through the loader and behaves as it did, both as built against the ABI 1.0 headers
 * (tests/abi/abi_1_0) and as built against today's, and the ABI 1.0 struct layouts that
 * plugin binaries compiled long ago rely on have not moved (LP64 offsets, pinned here
 * when ABI 1.0 shipped; fields may only be appended).
 *
 * ABI growth (1.1): option tables are walked by the descriptor's option_size, so rows
 * larger than fr_option still parse (tests/abi/wide_options.c), and host->http_ex writes
 * no more of the plugin's response struct than the size it is given. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include <fluxroute/plugin.h>

#include "host/host.h"
#include "plugin/loader.h"
#include "manifest/options.h"

typedef struct pinned {
    const char *field;
    size_t offset, pinned;
} pinned;

static const pinned layout[] = {
    {"fr_plugin.abi_version", offsetof(fr_plugin, abi_version), 0},
    {"fr_plugin.struct_size", offsetof(fr_plugin, struct_size), 4},
    {"fr_plugin.kind", offsetof(fr_plugin, kind), 8},
    {"fr_plugin.name", offsetof(fr_plugin, name), 16},
    {"fr_plugin.version", offsetof(fr_plugin, version), 24},
    {"fr_plugin.description", offsetof(fr_plugin, description), 32},
    {"fr_plugin.options", offsetof(fr_plugin, options), 40},
    {"fr_plugin.config_size", offsetof(fr_plugin, config_size), 48},
    {"fr_plugin.init", offsetof(fr_plugin, init), 56},
    {"fr_plugin.fini", offsetof(fr_plugin, fini), 64},
    {"fr_plugin.invoke", offsetof(fr_plugin, invoke), 72},
    {"fr_plugin.complete", offsetof(fr_plugin, complete), 80},
    {"fr_plugin.complete_stream", offsetof(fr_plugin, complete_stream), 88},
    {"fr_plugin.reserved", offsetof(fr_plugin, reserved), 96},
    {"fr_option.name", offsetof(fr_option, name), 0},
    {"fr_option.type", offsetof(fr_option, type), 8},
    {"fr_option.default_value", offsetof(fr_option, default_value), 16},
    {"fr_option.required", offsetof(fr_option, required), 24},
    {"fr_option.secret", offsetof(fr_option, secret), 28},
    {"fr_option.doc", offsetof(fr_option, doc), 32},
    {"fr_option.offset", offsetof(fr_option, offset), 40},
    {"fr_host_api.struct_size", offsetof(fr_host_api, struct_size), 0},
    {"fr_host_api.abi_version", offsetof(fr_host_api, abi_version), 4},
    {"fr_host_api.log", offsetof(fr_host_api, log), 8},
    {"fr_host_api.alloc", offsetof(fr_host_api, alloc), 16},
    {"fr_host_api.free_mem", offsetof(fr_host_api, free_mem), 24},
    {"fr_host_api.clock_us", offsetof(fr_host_api, clock_us), 32},
    {"fr_host_api.sleep_us", offsetof(fr_host_api, sleep_us), 40},
    {"fr_host_api.random_u64", offsetof(fr_host_api, random_u64), 48},
    {"fr_host_api.http", offsetof(fr_host_api, http), 56},
    {"fr_host_api.provider_call", offsetof(fr_host_api, provider_call), 64},
    {"fr_host_api.metric", offsetof(fr_host_api, metric), 72},
    {"fr_host_api.deadline_us", offsetof(fr_host_api, deadline_us), 80},
    {"fr_host_api.check_cancel", offsetof(fr_host_api, check_cancel), 88},
    {"fr_host_api.attempt", offsetof(fr_host_api, attempt), 96},
    {"fr_host_api.step_id", offsetof(fr_host_api, step_id), 104},
    {"fr_host_api.set_error", offsetof(fr_host_api, set_error), 112},
    {"fr_host_api.set_retry_after", offsetof(fr_host_api, set_retry_after), 120},
    {"fr_host_api.stream_chunk", offsetof(fr_host_api, stream_chunk), 128},
    {"fr_host_api.secret_env", offsetof(fr_host_api, secret_env), 136},
    {"fr_http_request.struct_size", offsetof(fr_http_request, struct_size), 0},
    {"fr_http_request.method", offsetof(fr_http_request, method), 8},
    {"fr_http_request.url", offsetof(fr_http_request, url), 16},
    {"fr_http_request.headers", offsetof(fr_http_request, headers), 24},
    {"fr_http_request.n_headers", offsetof(fr_http_request, n_headers), 32},
    {"fr_http_request.body", offsetof(fr_http_request, body), 40},
    {"fr_http_request.body_len", offsetof(fr_http_request, body_len), 48},
    {"fr_http_request.timeout_us", offsetof(fr_http_request, timeout_us), 56},
    {"fr_http_request.n_secret_headers", offsetof(fr_http_request, n_secret_headers), 64},
    {"fr_http_response.status", offsetof(fr_http_response, status), 0},
    {"fr_http_response.headers", offsetof(fr_http_response, headers), 8},
    {"fr_http_response.headers_len", offsetof(fr_http_response, headers_len), 16},
    {"fr_http_response.body", offsetof(fr_http_response, body), 24},
    {"fr_http_response.body_len", offsetof(fr_http_response, body_len), 32},
    /* Since ABI 1.1. */
    {"fr_plugin.option_size", offsetof(fr_plugin, option_size), 160},
    {"fr_host_api.http_ex", offsetof(fr_host_api, http_ex), 160},
};

static void test_layout(void)
{
    for (size_t i = 0; i < sizeof layout / sizeof layout[0]; i++) {
        if (layout[i].offset != layout[i].pinned)
            fprintf(stderr, "%s moved: offset %zu, ABI 1.0 has %zu\n", layout[i].field,
                    layout[i].offset, layout[i].pinned);
        CU_ASSERT_EQUAL(layout[i].offset, layout[i].pinned);
    }
    /* Structs may grow at the end, never shrink. */
    CU_ASSERT(sizeof(fr_plugin) >= 160);
    CU_ASSERT(sizeof(fr_option) >= 48);
    CU_ASSERT(sizeof(fr_host_api) >= 144);
    CU_ASSERT_EQUAL(FR_PLUGIN_MIN_SIZE, 96);
    CU_ASSERT_EQUAL(FR_ABI_MAJOR, 1);
    CU_ASSERT_STRING_EQUAL(FR_PLUGIN_SYMBOL, "fluxroute_plugin_v1");
    /* ABI 1.1: the sizes of the 1.0 rows and response; ABI 1.2: the version (the
     * normalized provider request's fields) and idempotency_key appended after http_ex,
     * nothing moved. */
    CU_ASSERT_EQUAL(FR_ABI_MINOR, 2);
    CU_ASSERT_EQUAL(offsetof(fr_host_api, idempotency_key),
                    offsetof(fr_host_api, http_ex) + sizeof(void (*)(void)));
    CU_ASSERT_EQUAL(sizeof(fr_host_api), offsetof(fr_host_api, idempotency_key) + sizeof(void *));
    CU_ASSERT_EQUAL(FR_OPTION_SIZE_1_0, 48);
    CU_ASSERT_EQUAL(FR_HTTP_RESPONSE_SIZE_1_0, 40);
    CU_ASSERT(sizeof(fr_option) >= FR_OPTION_SIZE_1_0);
    CU_ASSERT(sizeof(fr_http_response) >= FR_HTTP_RESPONSE_SIZE_1_0);
    CU_ASSERT(FR_HOST_HAS(fr__host_api(), http_ex));
    CU_ASSERT_PTR_NOT_NULL(fr__host_api()->http_ex);
}

/* The stride rules on descriptors made here: a 1.0 descriptor (too short for
 * option_size) and a 1.1 one with option_size 0 step by the 1.0 row, a 1.1 one with
 * option_size by that. */
static void test_option_stride(void)
{
    fr_plugin d = {.abi_version = FR_ABI_MAKE(1, 0), .struct_size = 160};
    CU_ASSERT_FALSE(FR_PLUGIN_HAS(&d, option_size));
    d.option_size = 72; /* beyond a 1.0 descriptor's end: never read */
    CU_ASSERT_EQUAL(FR_OPTION_STRIDE(&d), FR_OPTION_SIZE_1_0);
    d.abi_version = FR_ABI_MAKE(1, 1);
    d.struct_size = sizeof d;
    d.option_size = 0;
    CU_ASSERT_EQUAL(FR_OPTION_STRIDE(&d), FR_OPTION_SIZE_1_0);
    CU_ASSERT(FR_OPTION_HAS(&d, offset));
    d.option_size = 72;
    CU_ASSERT_EQUAL(FR_OPTION_STRIDE(&d), 72);
    static const fr_option rows[3] = {{.name = "a"}, {.name = "b"}};
    d.options = rows;
    d.option_size = sizeof rows[0];
    CU_ASSERT_PTR_EQUAL(FR_OPTION_AT(&d, 1), &rows[1]);
    CU_ASSERT_PTR_EQUAL(FR_OPTION_NEXT(&d, &rows[1]), &rows[2]);
}

/* The path of built test plugin `name` (tests/abi/.libs, or `sub` below tests/abi). */
static const char *abi_plugin(const char *sub, const char *name)
{
    static char path[4096];
    const char *b = getenv("FR_BUILDDIR");
    snprintf(path, sizeof path, "%s/tests/abi/%s%s.libs/%s.so", b ? b : ".", sub ? sub : "",
             sub ? "/" : "", name);
    return path;
}

/* Loads `path` with loader `l`: the plugin, or NULL with the loader's message printed. */
static const fr_loaded_plugin *load_ok(fr_loader *l, const char *path)
{
    const fr_loaded_plugin *lp = NULL;
    char err[1024] = "";
    int rc = fr__loader_load_file(l, path, &lp, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "%s\n", err);
    CU_ASSERT_EQUAL(rc, 0);
    return rc == 0 ? lp : NULL;
}

/* One invocation's context, for calling a plugin or the host table directly. */
typedef struct test_call {
    fr_cancel *cancel;
    fr_arena arena;
    fr_call call;
} test_call;

static void call_begin(test_call *t, const fr_instance *inst)
{
    t->cancel = fr__cancel_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(t->cancel);
    t->arena = (fr_arena){0};
    fr__call_init(&t->call, t->cancel, inst, "abi", 1, 0, 1, &t->arena);
}

static void call_end(test_call *t)
{
    fr__call_done(&t->call);
    fr__arena_free(&t->arena);
    fr__cancel_unref(t->cancel);
}

/* Loads the frozen agent (`sub`: NULL for the ABI 1.0 build, "current" for the one built
 * against today's headers), fills its options and invokes it. */
static void frozen_agent(const char *sub, unsigned abi_version, uint32_t struct_size)
{
    fr_loader *l = fr__loader_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    const fr_loaded_plugin *lp = load_ok(l, abi_plugin(sub, "frozen_v1_agent"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(lp);
    const fr_plugin *d = lp->desc;
    CU_ASSERT_EQUAL(d->abi_version, abi_version);
    CU_ASSERT_EQUAL(d->struct_size, struct_size);
    CU_ASSERT_EQUAL(d->kind, FR_PLUGIN_AGENT);
    /* No option_size (1.0) or none set (its source predates it): the 1.0 rows. */
    CU_ASSERT_EQUAL(FR_OPTION_STRIDE(d), FR_OPTION_SIZE_1_0);

    static const char yaml[] = "label: \"abi \\\"1.0\\\"\"\nmin_length: 2\n";
    fr_diags diags;
    fr__diags_init(&diags, "test");
    fr_ydoc doc = {0};
    CU_ASSERT_EQUAL_FATAL(fr__ydoc_parse(&doc, yaml, strlen(yaml), &diags), 0);
    fr_instance inst = {.id = "frozen", .plugin = lp};
    CU_ASSERT_EQUAL(fr__options_fill(d, doc.root, NULL, "frozen", &inst.config, &diags), 0);
    fr__ydoc_free(&doc);
    CU_ASSERT_EQUAL_FATAL(diags.n, 0);
    fr__diags_free(&diags);
    CU_ASSERT_EQUAL_FATAL(d->init(fr__host_api(), inst.config.data, &inst.state), FR_OK);

    test_call t;
    call_begin(&t, &inst);
    static const char input[] =
        "{\"input\":{\"text\":\"a bb ccc\\nddd\"},\"steps\":{\"x\":[\"e ff\"]}}";
    char *out = NULL;
    size_t out_len = 0;
    CU_ASSERT_EQUAL(d->invoke(inst.state, &t.call, input, strlen(input), &out, &out_len), FR_OK);
    static const char want[] = "{\"label\":\"abi \\\"1.0\\\"\",\"strings\":2,\"words\":4}";
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_EQUAL(out_len, strlen(want));
    CU_ASSERT_STRING_EQUAL(out, want);

    /* Cancelled: it stops with the host's status. */
    fr__cancel_fire(t.cancel);
    CU_ASSERT_EQUAL(d->invoke(inst.state, &t.call, input, strlen(input), &out, &out_len),
                    FR_E_CANCELLED);
    call_end(&t);
    d->fini(inst.state);
    fr__config_free(&inst.config);
    fr__loader_free(l);
}

static void test_frozen_agent(void)
{
    frozen_agent(NULL, FR_ABI_MAKE(1, 0), 160);
}

static void test_frozen_agent_rebuilt(void)
{
    frozen_agent("current", FR_ABI_VERSION, sizeof(fr_plugin));
}

/* Fills the options of `d` from `yaml`; returns the number of diagnostics, the first
 * one's message in first[size]. */
static size_t fill(const fr_plugin *d, const char *yaml, fr_config *cfg, char *first, size_t size)
{
    fr_diags diags;
    fr__diags_init(&diags, "test");
    fr_ydoc doc = {0};
    CU_ASSERT_EQUAL_FATAL(fr__ydoc_parse(&doc, yaml, strlen(yaml), &diags), 0);
    fr__options_fill(d, doc.root, NULL, "agent \"w\"", cfg, &diags);
    fr__ydoc_free(&doc);
    size_t n = diags.n;
    snprintf(first, size, "%s", n ? diags.items[0].message : "");
    fr__diags_free(&diags);
    return n;
}

/* An ABI 1.1 agent with option rows larger than fr_option: the loader accepts it, its
 * options parse (values, defaults, required, unknown keys), and it runs. */
static void test_wide_options(void)
{
    fr_loader *l = fr__loader_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    const fr_loaded_plugin *lp = load_ok(l, abi_plugin(NULL, "wide_options"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(lp);
    const fr_plugin *d = lp->desc;
    CU_ASSERT_EQUAL(d->abi_version, FR_ABI_MAKE(1, 1));
    CU_ASSERT(d->option_size > sizeof(fr_option));
    CU_ASSERT_EQUAL(FR_OPTION_STRIDE(d), d->option_size);
    CU_ASSERT_STRING_EQUAL(FR_OPTION_AT(d, 1)->name, "times");
    CU_ASSERT_STRING_EQUAL(FR_OPTION_AT(d, 2)->name, "loud");
    CU_ASSERT_STRING_EQUAL(FR_OPTION_AT(d, 3)->name, "url");
    CU_ASSERT_PTR_NULL(FR_OPTION_AT(d, 4)->name);

    char first[512];
    fr_config cfg;
    CU_ASSERT_EQUAL(fill(d, "times: 3\nloud: true\n", &cfg, first, sizeof first), 0);
    fr_instance inst = {.id = "w", .plugin = lp, .config = cfg};
    CU_ASSERT_EQUAL_FATAL(d->init(fr__host_api(), inst.config.data, &inst.state), FR_OK);
    test_call t;
    call_begin(&t, &inst);
    char *out = NULL;
    size_t out_len = 0;
    CU_ASSERT_EQUAL(d->invoke(inst.state, &t.call, "{}", 2, &out, &out_len), FR_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_STRING_EQUAL(out, "{\"greeting\":\"hello\",\"times\":3,\"loud\":true}");
    call_end(&t);
    d->fini(inst.state);
    fr__config_free(&inst.config);

    CU_ASSERT_EQUAL(fill(d, "loud: false\n", &cfg, first, sizeof first), 1);
    CU_ASSERT_STRING_EQUAL(first, "agent \"w\": missing required option \"times\" of plugin "
                                  "\"wide_options\"");
    fr__config_free(&cfg);
    CU_ASSERT_EQUAL(fill(d, "times: 1\nvolume: 11\n", &cfg, first, sizeof first), 1);
    CU_ASSERT_STRING_EQUAL(first, "agent \"w\": unknown option \"volume\" for plugin "
                                  "\"wide_options\" (known: greeting, times, loud, url)");
    fr__config_free(&cfg);
    fr__loader_free(l);
}

/* An option_size below the ABI 1.0 row is refused, with the path. */
static void test_bad_option_size(void)
{
    fr_loader *l = fr__loader_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    const fr_loaded_plugin *lp = NULL;
    char err[1024] = "", want[4300];
    const char *path = abi_plugin(NULL, "bad_option_size");
    CU_ASSERT_EQUAL(fr__loader_load_file(l, path, &lp, err, sizeof err), FR_E_CONFIG);
    CU_ASSERT_PTR_NULL(lp);
    snprintf(want, sizeof want,
             "plugin %s: option_size 40 is invalid (at least 48, a multiple of 8: set it to "
             "sizeof(fr_option))",
             path);
    CU_ASSERT_STRING_EQUAL(err, want);
    fr__loader_free(l);
}

/* ---- http_ex ---------------------------------------------------------------------- */

/* A response struct of a plugin, followed by guard bytes the host must not touch. */
#define GUARD 0xA5
typedef struct guarded {
    unsigned char bytes[96];
} guarded;

static int fake_http_calls;
static char fake_error[256];

static fr_status fake_http(fr_call *call, const fr_http_request *req, fr_http_response *resp)
{
    (void)call;
    (void)req;
    fake_http_calls++;
    *resp = (fr_http_response){
        .status = 201, .headers = "X-A: 1\r\n", .headers_len = 8, .body = "body", .body_len = 4};
    return FR_OK;
}

static void fake_set_error(fr_call *call, const char *fmt, ...)
{
    (void)call;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fake_error, sizeof fake_error, fmt, ap);
    va_end(ap);
}

static int all_guard(const guarded *g, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if (g->bytes[i] != GUARD)
            return 0;
    return 1;
}

/* fr__http_sized, the http_ex of both host tables: writes exactly min(resp_size, host
 * struct) bytes of response, zeros up to resp_size, nothing past it, and refuses a
 * struct smaller than ABI 1.0's without making the request. */
static void test_http_ex_sizes(void)
{
    fr_host_api api = {.struct_size = sizeof api, .http = fake_http, .set_error = fake_set_error};
    fr_http_request req = {.struct_size = sizeof req, .method = "GET", .url = "http://x/"};
    const size_t v1 = FR_HTTP_RESPONSE_SIZE_1_0;
    guarded g;

    /* A plugin built against ABI 1.0's struct (this host's size). */
    memset(&g, GUARD, sizeof g);
    CU_ASSERT_EQUAL(fr__http_sized(&api, NULL, &req, (fr_http_response *)(void *)&g, v1), FR_OK);
    fr_http_response r;
    memcpy(&r, g.bytes, v1);
    CU_ASSERT_EQUAL(r.status, 201);
    CU_ASSERT_EQUAL(r.body_len, 4);
    CU_ASSERT_STRING_EQUAL(r.body, "body");
    CU_ASSERT(all_guard(&g, v1, sizeof g));

    /* A plugin of a later minor with a larger struct: what the host does not know is 0. */
    memset(&g, GUARD, sizeof g);
    CU_ASSERT_EQUAL(fr__http_sized(&api, NULL, &req, (fr_http_response *)(void *)&g, v1 + 24),
                    FR_OK);
    memcpy(&r, g.bytes, v1);
    CU_ASSERT_EQUAL(r.status, 201);
    for (size_t i = v1; i < v1 + 24; i++)
        CU_ASSERT_EQUAL(g.bytes[i], 0);
    CU_ASSERT(all_guard(&g, v1 + 24, sizeof g));

    /* Smaller than ABI 1.0's: refused, nothing written, no request made. */
    memset(&g, GUARD, sizeof g);
    fake_http_calls = 0;
    fake_error[0] = '\0';
    CU_ASSERT_EQUAL(fr__http_sized(&api, NULL, &req, (fr_http_response *)(void *)&g, v1 - 8),
                    FR_E_INVALID);
    CU_ASSERT_EQUAL(fake_http_calls, 0);
    CU_ASSERT(all_guard(&g, 0, sizeof g));
    CU_ASSERT_STRING_EQUAL(fake_error, "http_ex: response struct of 32 bytes, need at least 40");
    CU_ASSERT_EQUAL(fr__http_sized(&api, NULL, &req, NULL, sizeof r), FR_E_INVALID);
}

/* A one-shot HTTP server on 127.0.0.1: answers one request with a fixed response. */
typedef struct one_shot {
    int fd;
    int port;
    pthread_t thread;
} one_shot;

static void *one_shot_main(void *arg)
{
    one_shot *s = arg;
    int c = accept(s->fd, NULL, NULL);
    if (c < 0)
        return NULL;
    char buf[4096];
    size_t got = 0;
    while (got < sizeof buf - 1) {
        ssize_t n = read(c, buf + got, sizeof buf - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    static const char reply[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    ssize_t w = write(c, reply, sizeof reply - 1);
    (void)w;
    close(c);
    return NULL;
}

static int one_shot_start(one_shot *s)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->fd, 1) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    s->port = ntohs(a.sin_port);
    return pthread_create(&s->thread, NULL, one_shot_main, s) == 0 ? 0 : -1;
}

/* The host's own table: http_ex through a real request writes the ABI 1.0 response into
 * a struct of exactly that size and not one byte past it. */
static void test_http_ex_host(void)
{
    one_shot srv;
    CU_ASSERT_EQUAL_FATAL(one_shot_start(&srv), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/abi", srv.port);
    fr_http_request req = {.struct_size = sizeof req, .method = "GET", .url = url};

    fr_instance inst = {.id = "http_ex"};
    test_call t;
    call_begin(&t, &inst);
    const fr_host_api *host = fr__host_api();
    guarded g;
    memset(&g, GUARD, sizeof g);
    fr_status st =
        host->http_ex(&t.call, &req, (fr_http_response *)(void *)&g, FR_HTTP_RESPONSE_SIZE_1_0);
    CU_ASSERT_EQUAL(st, FR_OK);
    fr_http_response r;
    memcpy(&r, g.bytes, FR_HTTP_RESPONSE_SIZE_1_0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.body_len, 5);
    CU_ASSERT(r.body && memcmp(r.body, "hello", 5) == 0);
    CU_ASSERT(all_guard(&g, FR_HTTP_RESPONSE_SIZE_1_0, sizeof g));

    /* Too small: refused before any request, with the call's error message set. */
    memset(&g, GUARD, sizeof g);
    CU_ASSERT_EQUAL(host->http_ex(&t.call, &req, (fr_http_response *)(void *)&g, 16), FR_E_INVALID);
    CU_ASSERT(all_guard(&g, 0, sizeof g));
    CU_ASSERT_STRING_EQUAL(t.call.error ? t.call.error : "",
                           "http_ex: response struct of 16 bytes, need at least 40");

    call_end(&t);
    pthread_join(srv.thread, NULL);
    close(srv.fd);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("abi", NULL, NULL);
    CU_add_test(s, "ABI 1.0 struct layout", test_layout);
    CU_add_test(s, "frozen ABI 1.0 agent loads and runs", test_frozen_agent);
    CU_add_test(s, "frozen agent rebuilt against today's headers", test_frozen_agent_rebuilt);
    CU_add_test(s, "option table stride", test_option_stride);
    CU_add_test(s, "ABI 1.1 agent with wider option rows", test_wide_options);
    CU_add_test(s, "option_size below the 1.0 row refused", test_bad_option_size);
    CU_add_test(s, "http_ex writes at most resp_size bytes", test_http_ex_sizes);
    CU_add_test(s, "http_ex through the host table", test_http_ex_host);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
