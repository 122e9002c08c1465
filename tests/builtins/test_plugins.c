/* Standalone tests of the built-in plugins (echo, chaos, mock, llm).
 *
 * Loads $FR_BUILDDIR/plugins/NAME.so with dlopen, as the host does, and drives each
 * plugin through a fake host API: an arena allocator that can fail on cue, a fake clock,
 * a sleep that records what it was asked and returns a chosen status, a settable
 * attempt number, a stream_chunk that collects chunks (and can stop the stream), and a
 * provider_call that hands the request to the mock plugin (adding "provider") or
 * answers with a canned response or failure.  Needs no part of the engine.
 *
 * Exit status: 0 when every assertion held, 1 otherwise. */
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <json-c/json.h>

#include <fluxroute/plugin.h>

/* ---- Assertions that show what differed --------------------------------------------- */

#include "fr_test.h"

/* ---- Fake host ----------------------------------------------------------------------- */

typedef struct loaded {
    void *handle;
    const fr_plugin *d;
} loaded;

typedef struct instance {
    const fr_plugin *d;
    void *config;
    void *state;
    fr_status init_status;
} instance;

enum provider_mode { PROVIDER_MOCK, PROVIDER_CANNED, PROVIDER_FAIL };

/* The call the plugins see.  Opaque to them; the harness defines it. */
struct fr_call {
    int attempt;
    const char *step;
    /* arena */
    void **blocks;
    size_t n_blocks;
    int allocs_left; /* < 0: unlimited; else allocations that succeed before failing */
    char error[1024];
    /* sleep */
    int n_sleeps;
    int64_t slept_us;
    fr_status sleep_status;
    int64_t clock;
    /* streaming */
    char stream[4096];
    size_t stream_len;
    int n_chunks;
    int chunks_before_stop; /* < 0: never stop */
    char first_chunks[4][32];
    /* provider */
    enum provider_mode provider_mode;
    instance *provider;
    const char *canned;
    fr_status provider_status;
    int provider_calls;
    int provider_streamed;
    char request[2048];
};

static char last_log[1024];
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int heap_allocs_left = -1; /* alloc(NULL, ...) failure injection for init */

static void fake_log(fr_call *call, fr_log_level level, const char *fmt, ...)
{
    (void)call;
    (void)level;
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&log_lock);
    vsnprintf(last_log, sizeof last_log, fmt, ap);
    pthread_mutex_unlock(&log_lock);
    va_end(ap);
}

static void *fake_alloc(fr_call *call, size_t size)
{
    if (!call) {
        if (heap_allocs_left == 0)
            return NULL;
        if (heap_allocs_left > 0)
            heap_allocs_left--;
        return malloc(size ? size : 1);
    }
    if (call->allocs_left == 0)
        return NULL;
    if (call->allocs_left > 0)
        call->allocs_left--;
    void **blocks = realloc(call->blocks, (call->n_blocks + 1) * sizeof *blocks);
    if (!blocks)
        return NULL;
    call->blocks = blocks;
    void *p = malloc(size ? size : 1);
    if (p)
        call->blocks[call->n_blocks++] = p;
    return p;
}

static void fake_free_mem(void *p)
{
    free(p);
}

static int64_t fake_clock_us(fr_call *call)
{
    return call->clock;
}

static fr_status fake_sleep_us(fr_call *call, int64_t us)
{
    call->n_sleeps++;
    call->slept_us += us;
    if (call->sleep_status == FR_OK)
        call->clock += us;
    return call->sleep_status;
}

static uint64_t fake_random_u64(fr_call *call)
{
    (void)call;
    return 42;
}

static fr_status fake_http(fr_call *call, const fr_http_request *req, fr_http_response *resp)
{
    (void)call;
    (void)req;
    (void)resp;
    return FR_E_NETWORK;
}

static void fake_metric(fr_call *call, const char *name, double value)
{
    (void)call;
    (void)name;
    (void)value;
}

static int64_t fake_deadline_us(fr_call *call)
{
    (void)call;
    return INT64_MAX;
}

static fr_status fake_check_cancel(fr_call *call)
{
    (void)call;
    return FR_OK;
}

static int fake_attempt(fr_call *call)
{
    return call->attempt;
}

static const char *fake_step_id(fr_call *call)
{
    return call->step;
}

/* Messages set during init (call == NULL). */
static char init_error[512];

static void fake_set_error(fr_call *call, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (call)
        vsnprintf(call->error, sizeof call->error, fmt, ap);
    else
        vsnprintf(init_error, sizeof init_error, fmt, ap);
    va_end(ap);
}

static void fake_set_retry_after(fr_call *call, int64_t delay_us)
{
    (void)call;
    (void)delay_us;
}

static fr_status fake_stream_chunk(fr_call *call, const char *text, size_t len)
{
    if (call->chunks_before_stop >= 0 && call->n_chunks >= call->chunks_before_stop)
        return FR_E_CANCELLED;
    if (call->n_chunks < 4)
        snprintf(call->first_chunks[call->n_chunks], sizeof call->first_chunks[0], "%.*s", (int)len,
                 text);
    call->n_chunks++;
    if (call->stream_len + len < sizeof call->stream) {
        memcpy(call->stream + call->stream_len, text, len);
        call->stream_len += len;
        call->stream[call->stream_len] = '\0';
    }
    return FR_OK;
}

static const char *fake_secret_env(fr_call *call, const char *name)
{
    (void)call;
    (void)name;
    return NULL;
}

static fr_status fake_provider_call(fr_call *call, const char *request, size_t request_len,
                                    char **response, size_t *response_len);

static const fr_host_api host = {
    .struct_size = sizeof(fr_host_api),
    .abi_version = FR_ABI_VERSION,
    .log = fake_log,
    .alloc = fake_alloc,
    .free_mem = fake_free_mem,
    .clock_us = fake_clock_us,
    .sleep_us = fake_sleep_us,
    .random_u64 = fake_random_u64,
    .http = fake_http,
    .provider_call = fake_provider_call,
    .metric = fake_metric,
    .deadline_us = fake_deadline_us,
    .check_cancel = fake_check_cancel,
    .attempt = fake_attempt,
    .step_id = fake_step_id,
    .set_error = fake_set_error,
    .set_retry_after = fake_set_retry_after,
    .stream_chunk = fake_stream_chunk,
    .secret_env = fake_secret_env,
};

/* Copies text into the call's arena (as the host does with provider responses). */
static char *arena_copy(fr_call *call, const char *text, size_t len)
{
    char *p = fake_alloc(call, len + 1);
    if (p) {
        memcpy(p, text, len);
        p[len] = '\0';
    }
    return p;
}

/* Like the host: sends the request to the agent's provider (the mock plugin, streaming
 * when the request says so), then adds "provider" with the provider's id. */
static fr_status fake_provider_call(fr_call *call, const char *request, size_t request_len,
                                    char **response, size_t *response_len)
{
    call->provider_calls++;
    snprintf(call->request, sizeof call->request, "%.*s", (int)request_len, request);
    if (call->provider_mode == PROVIDER_FAIL) {
        fake_set_error(call, "provider mock_main: rate limited (HTTP 429)");
        return call->provider_status;
    }
    if (call->provider_mode == PROVIDER_CANNED) {
        *response = arena_copy(call, call->canned, strlen(call->canned));
        *response_len = strlen(call->canned);
        return *response ? FR_OK : FR_E_NOMEM;
    }
    const fr_plugin *d = call->provider->d;
    json_object *req = json_tokener_parse(call->request);
    json_object *stream = NULL;
    int streamed =
        req && json_object_object_get_ex(req, "stream", &stream) && json_object_get_boolean(stream);
    json_object_put(req);
    char *out = NULL;
    size_t out_len = 0;
    fr_status st =
        streamed
            ? d->complete_stream(call->provider->state, call, request, request_len, &out, &out_len)
            : d->complete(call->provider->state, call, request, request_len, &out, &out_len);
    call->provider_streamed += streamed;
    if (st != FR_OK)
        return st;
    json_object *resp = json_tokener_parse(out);
    if (!resp)
        return FR_E_BAD_RESPONSE;
    json_object_object_add(resp, "provider", json_object_new_string("mock_main"));
    size_t len = 0;
    const char *text = json_object_to_json_string_length(
        resp, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    *response = arena_copy(call, text, len);
    *response_len = len;
    json_object_put(resp);
    return *response ? FR_OK : FR_E_NOMEM;
}

static fr_call *call_new(int attempt)
{
    fr_call *c = calloc(1, sizeof *c);
    c->attempt = attempt;
    c->step = "step1";
    c->allocs_left = -1;
    c->chunks_before_stop = -1;
    c->clock = 1700000000000000;
    return c;
}

static void call_free(fr_call *c)
{
    for (size_t i = 0; i < c->n_blocks; i++)
        free(c->blocks[i]);
    free(c->blocks);
    free(c);
}

/* ---- Loading and configuring plugins -------------------------------------------------- */

static loaded plugins[4];
static const char *const plugin_names[] = {"echo", "chaos", "mock", "llm"};

static const fr_plugin *plugin(const char *name)
{
    for (size_t i = 0; i < 4; i++)
        if (strcmp(plugin_names[i], name) == 0)
            return plugins[i].d;
    return NULL;
}

static int load_plugins(void)
{
    const char *dir = getenv("FR_BUILDDIR");
    for (size_t i = 0; i < 4; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/plugins/%s.so", dir ? dir : ".", plugin_names[i]);
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            fprintf(stderr, "test_plugins: %s\n", dlerror());
            return -1;
        }
        fr_plugin_entry_fn entry = (fr_plugin_entry_fn)dlsym(h, FR_PLUGIN_SYMBOL);
        if (!entry) {
            fprintf(stderr, "test_plugins: %s: no %s\n", path, FR_PLUGIN_SYMBOL);
            return -1;
        }
        plugins[i].handle = h;
        plugins[i].d = entry();
    }
    return 0;
}

/* Parses a duration in manifest syntax ("0", "250ms", "1m30s") into microseconds. */
static int parse_duration(const char *s, int64_t *out)
{
    static const struct {
        const char *unit;
        int64_t us;
    } units[] = {{"us", 1}, {"ms", 1000}, {"s", 1000000}, {"m", 60000000}, {"h", 3600000000}};
    int64_t total = 0;
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return 0;
    }
    while (*s) {
        char *end;
        long long n = strtoll(s, &end, 10);
        if (end == s)
            return -1;
        size_t k, ulen = strspn(end, "abcdefghijklmnopqrstuvwxyz");
        for (k = 0; k < sizeof units / sizeof units[0]; k++)
            if (strlen(units[k].unit) == ulen && strncmp(end, units[k].unit, ulen) == 0)
                break;
        if (k == sizeof units / sizeof units[0])
            return -1;
        total += n * units[k].us;
        s = end + ulen;
    }
    *out = total;
    return 0;
}

/* Stores `value` (manifest syntax) into the config field of option o.  0 or -1. */
static int set_option(const fr_option *o, void *config, const char *value)
{
    char *field = (char *)config + o->offset;
    char *end;
    switch (o->type) {
    case FR_OPT_STRING:
    case FR_OPT_JSON: memcpy(field, &value, sizeof value); return 0;
    case FR_OPT_INT: {
        int64_t v = strtoll(value, &end, 10);
        memcpy(field, &v, sizeof v);
        return *end ? -1 : 0;
    }
    case FR_OPT_BOOL: {
        int v = strcmp(value, "true") == 0;
        memcpy(field, &v, sizeof v);
        return v || strcmp(value, "false") == 0 ? 0 : -1;
    }
    case FR_OPT_DOUBLE: {
        double v = strtod(value, &end);
        memcpy(field, &v, sizeof v);
        return *end ? -1 : 0;
    }
    case FR_OPT_DURATION: {
        int64_t v = 0;
        if (parse_duration(value, &v) != 0)
            return -1;
        memcpy(field, &v, sizeof v);
        return 0;
    }
    }
    return -1;
}

/* Fills a config struct as the host does: defaults first, then the NULL-terminated
 * name/value pairs in kv.  Returns NULL (and fails the test) on an unknown option or a
 * bad value.  Caller frees. */
static void *make_config(const fr_plugin *d, const char *const *kv)
{
    void *config = calloc(1, d->config_size ? d->config_size : 1);
    for (const fr_option *o = d->options; o && o->name; o++) {
        if (o->default_value && set_option(o, config, o->default_value) != 0) {
            fprintf(stderr, "\n%s: bad default for %s: %s\n", d->name, o->name, o->default_value);
            CU_FAIL("bad default value");
        }
    }
    for (size_t i = 0; kv && kv[i]; i += 2) {
        const fr_option *o = d->options;
        while (o && o->name && strcmp(o->name, kv[i]) != 0)
            o++;
        if (!o || !o->name || set_option(o, config, kv[i + 1]) != 0) {
            fprintf(stderr, "\n%s: bad option %s=%s\n", d->name, kv[i], kv[i + 1]);
            CU_FAIL("bad option");
            free(config);
            return NULL;
        }
    }
    return config;
}

/* Creates an instance of plugin `name` with the given options (name/value pairs,
 * NULL-terminated).  init's status is in init_status; state is NULL when it failed. */
static instance *instance_new(const char *name, const char *const *kv)
{
    instance *in = calloc(1, sizeof *in);
    in->d = plugin(name);
    in->config = make_config(in->d, kv);
    last_log[0] = '\0';
    init_error[0] = '\0';
    in->init_status = in->d->init(&host, in->config, &in->state);
    if (in->init_status != FR_OK)
        in->state = NULL;
    return in;
}

static void instance_free(instance *in)
{
    if (in->init_status == FR_OK)
        in->d->fini(in->state);
    free(in->config);
    free(in);
}

/* Runs one invoke (agents) and keeps the output NUL-terminated in the call's arena. */
static fr_status invoke(instance *in, fr_call *call, const char *input, const char **output)
{
    char *out = NULL;
    size_t out_len = 0;
    *output = NULL;
    fr_status st = in->d->invoke(in->state, call, input, strlen(input), &out, &out_len);
    if (st == FR_OK) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(out);
        *output = arena_copy(call, out, out_len);
    }
    return st;
}

static fr_status complete(instance *in, fr_call *call, const char *request, int stream,
                          const char **response)
{
    char *out = NULL;
    size_t out_len = 0;
    *response = NULL;
    fr_status st = (stream ? in->d->complete_stream : in->d->complete)(
        in->state, call, request, strlen(request), &out, &out_len);
    if (st == FR_OK) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(out);
        *response = arena_copy(call, out, out_len);
    }
    return st;
}

/* ---- Descriptors --------------------------------------------------------------------- */

static size_t option_size(fr_option_type t)
{
    switch (t) {
    case FR_OPT_STRING:
    case FR_OPT_JSON: return sizeof(const char *);
    case FR_OPT_INT:
    case FR_OPT_DURATION: return sizeof(int64_t);
    case FR_OPT_BOOL: return sizeof(int);
    case FR_OPT_DOUBLE: return sizeof(double);
    }
    return SIZE_MAX;
}

static void test_descriptors(void)
{
    for (size_t i = 0; i < 4; i++) {
        const fr_plugin *d = plugins[i].d;
        CU_ASSERT_PTR_NOT_NULL_FATAL(d);
        CU_ASSERT_EQUAL(d->abi_version, FR_ABI_VERSION);
        CU_ASSERT_EQUAL(d->struct_size, sizeof(fr_plugin));
        ASSERT_STR(d->name, plugin_names[i]);
        ASSERT_STR(d->version, "1.0.0");
        CU_ASSERT(d->description && d->description[0]);
        CU_ASSERT_PTR_NOT_NULL(d->init);
        CU_ASSERT_PTR_NOT_NULL(d->fini);
        int provider = strcmp(d->name, "mock") == 0;
        CU_ASSERT_EQUAL(d->kind, provider ? FR_PLUGIN_PROVIDER : FR_PLUGIN_AGENT);
        if (provider) {
            CU_ASSERT(d->complete && d->complete_stream && !d->invoke);
        } else {
            CU_ASSERT(d->invoke && !d->complete && !d->complete_stream);
        }
        for (size_t r = 0; r < 8; r++)
            CU_ASSERT_PTR_NULL(d->reserved[r]);
        for (const fr_option *o = d->options; o && o->name; o++) {
            CU_ASSERT(strspn(o->name, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(o->name) &&
                      o->name[0] >= 'a' && o->name[0] <= 'z');
            CU_ASSERT(o->doc && o->doc[0]);
            CU_ASSERT(o->offset + option_size(o->type) <= d->config_size);
            CU_ASSERT(!o->secret);
            CU_ASSERT(!(o->required && o->default_value));
        }
        /* The only exported symbol is the entry point. */
        CU_ASSERT_PTR_NULL(dlsym(plugins[i].handle, "pu_class_status"));
    }
    CU_ASSERT_PTR_NULL(plugin("echo")->options);
}

/* ---- echo ---------------------------------------------------------------------------- */

static void test_echo(void)
{
    instance *in = instance_new("echo", NULL);
    ASSERT_STATUS(in->init_status, FR_OK);
    fr_call *c = call_new(1);
    static const char input[] = "{\"input\":{\"text\":\"h\\u00e9llo\",\"n\":[1,2]},\"steps\":{}}";
    char *out = NULL;
    size_t out_len = 0;
    ASSERT_STATUS(in->d->invoke(in->state, c, input, strlen(input), &out, &out_len), FR_OK);
    CU_ASSERT_EQUAL(out_len, strlen(input));
    CU_ASSERT(out != input && out && memcmp(out, input, out_len) == 0);
    CU_ASSERT_EQUAL(c->n_blocks, 1); /* the output lives in the arena */
    call_free(c);

    /* Out of arena memory. */
    c = call_new(1);
    c->allocs_left = 0;
    ASSERT_STATUS(in->d->invoke(in->state, c, input, strlen(input), &out, &out_len), FR_E_NOMEM);
    ASSERT_CONTAINS(c->error, "out of memory");
    call_free(c);
    instance_free(in);
}

/* ---- chaos --------------------------------------------------------------------------- */

static void test_chaos_fails_then_succeeds(void)
{
    static const struct {
        const char *error;
        fr_status status;
    } cases[] = {
        {NULL, FR_E_UNAVAILABLE}, /* the default */
        {"unavailable", FR_E_UNAVAILABLE},
        {"timeout", FR_E_TIMEOUT},
        {"rate_limited", FR_E_RATE_LIMITED},
        {"overloaded", FR_E_OVERLOADED},
        {"network", FR_E_NETWORK},
        {"bad_response", FR_E_BAD_RESPONSE},
        {"agent_error", FR_E_AGENT},
        {"bad_request", FR_E_BAD_REQUEST},
        {"auth", FR_E_AUTH},
        {"content_policy", FR_E_CONTENT_POLICY},
        {"context_window", FR_E_CONTEXT_WINDOW},
        {"config", FR_E_CONFIG},
        {"internal", FR_E_NOMEM},
        {"cancelled", FR_E_CANCELLED},
    };
    static const char input[] = "{\"input\":{\"q\":1},\"steps\":{}}";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *kv[] = {"fail_attempts", "2", cases[i].error ? "error" : NULL, cases[i].error,
                            NULL};
        instance *in = instance_new("chaos", kv);
        ASSERT_STATUS(in->init_status, FR_OK);
        const char *cls = cases[i].error ? cases[i].error : "unavailable";
        for (int attempt = 1; attempt <= 3; attempt++) {
            fr_call *c = call_new(attempt);
            const char *out;
            fr_status st = invoke(in, c, input, &out);
            if (attempt <= 2) {
                char want[200];
                snprintf(want, sizeof want, "chaos: injected %s failure (attempt %d of 2 failing)",
                         cls, attempt);
                ASSERT_STATUS(st, cases[i].status);
                ASSERT_STR(c->error, want);
            } else {
                ASSERT_STATUS(st, FR_OK);
                ASSERT_STR(out, input);
            }
            CU_ASSERT_EQUAL(c->n_sleeps, 0);
            call_free(c);
        }
        instance_free(in);
    }
}

static void test_chaos_output_option(void)
{
    const char *kv[] = {"output", "{\"answer\":42,\"list\":[\"a\"]}", NULL};
    instance *in = instance_new("chaos", kv);
    ASSERT_STATUS(in->init_status, FR_OK);
    fr_call *c = call_new(1);
    const char *out;
    ASSERT_STATUS(invoke(in, c, "{\"input\":null,\"steps\":{}}", &out), FR_OK);
    ASSERT_STR(out, "{\"answer\":42,\"list\":[\"a\"]}");
    call_free(c);
    instance_free(in);
}

static void test_chaos_bad_config(void)
{
    static const struct {
        const char *key, *value, *log;
    } cases[] = {
        {"error", "flaky", "unknown error class \"flaky\""},
        {"error", "none", "\"none\""},
        {"error", "", "unknown error class \"\""},
        {"fail_attempts", "-1", "fail_attempts"},
        {"output", "{not json", "option output is not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *kv[] = {cases[i].key, cases[i].value, NULL};
        instance *in = instance_new("chaos", kv);
        ASSERT_STATUS(in->init_status, FR_E_CONFIG);
        ASSERT_CONTAINS(init_error, cases[i].log);
        instance_free(in);
    }
    /* The message lists the valid classes. */
    const char *kv[] = {"error", "flaky", NULL};
    instance *in = instance_new("chaos", kv);
    ASSERT_CONTAINS(init_error, "rate_limited");
    instance_free(in);

    /* Out of heap memory in init. */
    heap_allocs_left = 0;
    in = instance_new("chaos", NULL);
    heap_allocs_left = -1;
    ASSERT_STATUS(in->init_status, FR_E_NOMEM);
    instance_free(in);
}

static void test_chaos_delay(void)
{
    const char *kv[] = {"delay", "250ms", NULL};
    instance *in = instance_new("chaos", kv);
    ASSERT_STATUS(in->init_status, FR_OK);
    fr_call *c = call_new(1);
    const char *out;
    ASSERT_STATUS(invoke(in, c, "{}", &out), FR_OK);
    CU_ASSERT_EQUAL(c->n_sleeps, 1);
    CU_ASSERT_EQUAL(c->slept_us, 250000);
    ASSERT_STR(out, "{}");
    call_free(c);

    /* Cancellation (and timeouts) during the delay end the attempt with that status. */
    static const fr_status wake[] = {FR_E_CANCELLED, FR_E_TIMEOUT, FR_E_DEADLINE_EXCEEDED};
    for (size_t i = 0; i < 3; i++) {
        c = call_new(1);
        c->sleep_status = wake[i];
        ASSERT_STATUS(invoke(in, c, "{}", &out), wake[i]);
        CU_ASSERT_PTR_NULL(out);
        CU_ASSERT_EQUAL(c->n_sleeps, 1);
        ASSERT_CONTAINS(c->error, "chaos: delay interrupted");
        call_free(c);
    }
    instance_free(in);

    /* The delay applies to failing attempts too. */
    const char *kv2[] = {"delay", "1s", "fail_attempts", "1", NULL};
    in = instance_new("chaos", kv2);
    c = call_new(1);
    ASSERT_STATUS(invoke(in, c, "{}", &out), FR_E_UNAVAILABLE);
    CU_ASSERT_EQUAL(c->slept_us, 1000000);
    call_free(c);
    instance_free(in);
}

/* Runs one invoke in a child process; returns its wait status after at most `ms`
 * milliseconds (killing it with SIGKILL when it is still running then, and setting
 * *was_running). */
static int invoke_in_child(instance *in, int attempt, int ms, int *was_running)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* A crash must be the signal, not a sanitizer's report. */
        signal(SIGSEGV, SIG_DFL);
        fr_call *c = call_new(attempt);
        const char *out;
        fr_status st = invoke(in, c, "{}", &out);
        call_free(c);
        _exit(st == FR_OK ? 0 : 3);
    }
    int status = 0;
    *was_running = 0;
    for (int waited = 0; waited < ms; waited += 10) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return status;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    *was_running = 1;
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return status;
}

static void test_chaos_crash_and_hang(void)
{
    int running;
    const char *crash[] = {"crash", "true", NULL};
    instance *in = instance_new("chaos", crash);
    int status = invoke_in_child(in, 1, 5000, &running);
    CU_ASSERT(!running && WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
    instance_free(in);

    /* With fail_attempts, only those attempts crash. */
    const char *crash2[] = {"crash", "true", "fail_attempts", "1", NULL};
    in = instance_new("chaos", crash2);
    status = invoke_in_child(in, 1, 5000, &running);
    CU_ASSERT(!running && WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
    fr_call *c = call_new(2);
    const char *out;
    ASSERT_STATUS(invoke(in, c, "{\"a\":1}", &out), FR_OK);
    ASSERT_STR(out, "{\"a\":1}");
    call_free(c);
    instance_free(in);

    const char *hang[] = {"hang", "true", "fail_attempts", "1", NULL};
    in = instance_new("chaos", hang);
    invoke_in_child(in, 1, 300, &running);
    CU_ASSERT(running);
    status = invoke_in_child(in, 2, 5000, &running);
    CU_ASSERT(!running && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    instance_free(in);
}

/* ---- mock ---------------------------------------------------------------------------- */

static const char conversation[] = "{\"system\":\"You are terse.\",\"messages\":["
                                   "{\"role\":\"user\",\"content\":\"hello there world\"},"
                                   "{\"role\":\"assistant\",\"content\":\"ok\"},"
                                   "{\"role\":\"user\",\"content\":\"say  hi\"}]}";

static void test_mock_reply(void)
{
    instance *in = instance_new("mock", NULL);
    ASSERT_STATUS(in->init_status, FR_OK);
    const char *want = "{\"text\":\"mock reply to: say  hi\",\"tool_calls\":[],"
                       "\"finish_reason\":\"stop\",\"usage\":{\"input_tokens\":9,"
                       "\"output_tokens\":5},\"model\":\"mock-1\"}";
    for (int i = 0; i < 2; i++) { /* deterministic */
        fr_call *c = call_new(1);
        const char *resp;
        ASSERT_STATUS(complete(in, c, conversation, 0, &resp), FR_OK);
        ASSERT_STR(resp, want);
        CU_ASSERT_EQUAL(c->n_sleeps, 0);
        call_free(c);
    }
    /* A request's model wins over the configured one. */
    fr_call *c = call_new(1);
    const char *resp;
    ASSERT_STATUS(complete(in, c,
                           "{\"model\":\"m2\",\"messages\":[{\"role\":\"user\","
                           "\"content\":\"x\"}]}",
                           0, &resp),
                  FR_OK);
    ASSERT_CONTAINS(resp, "\"model\":\"m2\"");
    ASSERT_CONTAINS(resp, "\"usage\":{\"input_tokens\":1,\"output_tokens\":4}");
    call_free(c);
    instance_free(in);

    const char *kv[] = {"model", "tiny", NULL};
    in = instance_new("mock", kv);
    c = call_new(1);
    ASSERT_STATUS(complete(in, c, conversation, 0, &resp), FR_OK);
    ASSERT_CONTAINS(resp, "\"model\":\"tiny\"");
    call_free(c);
    instance_free(in);

    /* usage: false answers as servers that report no usage do: null, not zeros. */
    const char *kv_nu[] = {"usage", "false", NULL};
    in = instance_new("mock", kv_nu);
    ASSERT_STATUS(in->init_status, FR_OK);
    c = call_new(1);
    ASSERT_STATUS(complete(in, c, conversation, 0, &resp), FR_OK);
    ASSERT_STR(resp, "{\"text\":\"mock reply to: say  hi\",\"tool_calls\":[],"
                     "\"finish_reason\":\"stop\",\"usage\":null,\"model\":\"mock-1\"}");
    call_free(c);
    instance_free(in);
}

static void test_mock_template(void)
{
    const char *kv[] = {"reply", "[{{model}}] {{ system }} :: {{prompt}}!", "model", "m9", NULL};
    instance *in = instance_new("mock", kv);
    ASSERT_STATUS(in->init_status, FR_OK);
    fr_call *c = call_new(1);
    const char *resp;
    ASSERT_STATUS(complete(in, c, conversation, 0, &resp), FR_OK);
    ASSERT_STR(resp, "{\"text\":\"[m9] You are terse. :: say  hi!\",\"tool_calls\":[],"
                     "\"finish_reason\":\"stop\",\"usage\":{\"input_tokens\":9,"
                     "\"output_tokens\":7},\"model\":\"m9\"}");
    call_free(c);
    instance_free(in);

    /* No system prompt: {{system}} is empty. */
    const char *kv2[] = {"reply", "<{{system}}>", NULL};
    in = instance_new("mock", kv2);
    c = call_new(1);
    ASSERT_STATUS(complete(in, c, "{\"messages\":[]}", 0, &resp), FR_OK);
    ASSERT_CONTAINS(resp, "\"text\":\"<>\"");
    ASSERT_CONTAINS(resp, "\"input_tokens\":0");
    call_free(c);
    instance_free(in);

    static const char *const bad[] = {"{{prompt", "{{input.text}}", "{{}}", "{{prompt..x}}"};
    for (size_t i = 0; i < 4; i++) {
        const char *kv3[] = {"reply", bad[i], NULL};
        in = instance_new("mock", kv3);
        ASSERT_STATUS(in->init_status, FR_E_CONFIG);
        ASSERT_CONTAINS(init_error, "mock: option reply");
        instance_free(in);
    }
}

static void test_mock_max_tokens(void)
{
    instance *in = instance_new("mock", NULL);
    static const struct {
        int max;
        const char *text, *finish;
        int out;
    } cases[] = {
        {1, "mock", "length", 1},
        {3, "mock reply to:", "length", 3},
        {5, "mock reply to: one  two", "stop", 5},
        {100, "mock reply to: one  two", "stop", 5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char req[200], want[300];
        snprintf(req, sizeof req,
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"one  two\"}],"
                 "\"max_tokens\":%d,\"temperature\":0.2,\"stream\":false,\"tools\":[]}",
                 cases[i].max);
        snprintf(want, sizeof want,
                 "{\"text\":\"%s\",\"tool_calls\":[],\"finish_reason\":\"%s\","
                 "\"usage\":{\"input_tokens\":2,\"output_tokens\":%d},\"model\":\"mock-1\"}",
                 cases[i].text, cases[i].finish, cases[i].out);
        fr_call *c = call_new(1);
        const char *resp;
        ASSERT_STATUS(complete(in, c, req, 0, &resp), FR_OK);
        ASSERT_STR(resp, want);
        call_free(c);
    }
    instance_free(in);
}

static void test_mock_stop_and_json_mode(void)
{
    instance *in = instance_new("mock", NULL);
    fr_call *c = call_new(1);
    const char *resp;
    ASSERT_STATUS(complete(in, c,
                           "{\"messages\":[{\"role\":\"user\",\"content\":\"a b. c d\"}],"
                           "\"stop\":[\"zz\",\".\"]}",
                           0, &resp),
                  FR_OK);
    ASSERT_CONTAINS(resp, "\"text\":\"mock reply to: a b\"");
    ASSERT_CONTAINS(resp, "\"finish_reason\":\"stop\"");
    call_free(c);

    c = call_new(1);
    ASSERT_STATUS(complete(in, c,
                           "{\"messages\":[{\"role\":\"user\",\"content\":\"say \\\"hi\\\"\"}],"
                           "\"response_format\":{\"type\":\"json_object\"}}",
                           0, &resp),
                  FR_OK);
    json_object *r = json_tokener_parse(resp), *text = NULL;
    CU_ASSERT_FATAL(r && json_object_object_get_ex(r, "text", &text));
    ASSERT_STR(json_object_get_string(text), "{\"reply\":\"mock reply to: say \\\"hi\\\"\"}");
    json_object *inner = json_tokener_parse(json_object_get_string(text)), *reply = NULL;
    CU_ASSERT(inner && json_object_object_get_ex(inner, "reply", &reply));
    ASSERT_STR(json_object_get_string(reply), "mock reply to: say \"hi\"");
    json_object_put(inner);
    json_object_put(r);
    call_free(c);
    instance_free(in);
}

static void test_mock_bad_requests(void)
{
    static const struct {
        const char *request, *message;
    } cases[] = {
        {"not json", "request is not valid JSON"},
        {"{\"messages\":[]", "request is not valid JSON"},
        {"{\"messages\":[]} x", "request is not valid JSON"},
        {"[]", "must be a JSON object"},
        {"{}", "\"messages\" is missing"},
        {"{\"messages\":null}", "\"messages\" is missing"},
        {"{\"messages\":\"hi\"}", "\"messages\" must be an array"},
        {"{\"messages\":[1]}", "messages[0] must be an object"},
        {"{\"messages\":[{\"content\":\"x\"}]}", "messages[0].role must be a string"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\","
         "\"content\":5}]}",
         "messages[1].content must be a string"},
        {"{\"messages\":[],\"max_tokens\":0}", "\"max_tokens\" must be a positive integer"},
        {"{\"messages\":[],\"max_tokens\":\"3\"}", "\"max_tokens\" must be a positive integer"},
        {"{\"messages\":[],\"system\":1}", "\"system\" must be a string"},
        {"{\"messages\":[],\"model\":[]}", "\"model\" must be a string"},
        {"{\"messages\":[],\"temperature\":\"hot\"}", "\"temperature\" must be a number"},
        {"{\"messages\":[],\"stop\":[1]}", "\"stop\" must be a string or an array of strings"},
        {"{\"messages\":[],\"response_format\":\"json\"}", "\"response_format\" must be"},
        {"{\"messages\":[],\"tools\":{}}", "\"tools\" must be an array"},
        {"{\"messages\":[],\"stream\":1}", "\"stream\" must be a boolean"},
    };
    instance *in = instance_new("mock", NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fr_call *c = call_new(1);
        const char *resp;
        ASSERT_STATUS(complete(in, c, cases[i].request, 0, &resp), FR_E_BAD_REQUEST);
        ASSERT_CONTAINS(c->error, "mock: bad request: ");
        ASSERT_CONTAINS(c->error, cases[i].message);
        call_free(c);
    }
    /* An empty request (length 0) too. */
    fr_call *c = call_new(1);
    char *out = NULL;
    size_t out_len = 0;
    ASSERT_STATUS(in->d->complete(in->state, c, "", 0, &out, &out_len), FR_E_BAD_REQUEST);
    call_free(c);
    instance_free(in);
}

static void test_mock_stream(void)
{
    instance *in = instance_new("mock", NULL);
    fr_call *c = call_new(1);
    const char *plain, *streamed;
    ASSERT_STATUS(complete(in, c, conversation, 0, &plain), FR_OK);
    CU_ASSERT_EQUAL(c->n_chunks, 0);
    ASSERT_STATUS(complete(in, c, conversation, 1, &streamed), FR_OK);
    ASSERT_STR(streamed, plain);
    CU_ASSERT_EQUAL(c->n_chunks, 5);
    ASSERT_STR(c->stream, "mock reply to: say  hi");
    ASSERT_STR(c->first_chunks[0], "mock ");
    ASSERT_STR(c->first_chunks[2], "to: ");
    ASSERT_STR(c->first_chunks[3], "say  ");
    call_free(c);

    /* The host stops the stream: complete_stream returns its status. */
    c = call_new(1);
    c->chunks_before_stop = 2;
    ASSERT_STATUS(complete(in, c, conversation, 1, &streamed), FR_E_CANCELLED);
    CU_ASSERT_PTR_NULL(streamed);
    ASSERT_STR(c->stream, "mock reply ");
    call_free(c);
    instance_free(in);
}

static void test_mock_delay_and_oom(void)
{
    const char *kv[] = {"delay", "1m30s", NULL};
    instance *in = instance_new("mock", kv);
    fr_call *c = call_new(1);
    const char *resp;
    ASSERT_STATUS(complete(in, c, conversation, 0, &resp), FR_OK);
    CU_ASSERT_EQUAL(c->slept_us, 90000000);
    call_free(c);
    c = call_new(1);
    c->sleep_status = FR_E_CANCELLED;
    ASSERT_STATUS(complete(in, c, conversation, 1, &resp), FR_E_CANCELLED);
    CU_ASSERT_EQUAL(c->n_chunks, 0);
    call_free(c);
    instance_free(in);

    in = instance_new("mock", NULL);
    c = call_new(1);
    c->allocs_left = 0;
    ASSERT_STATUS(complete(in, c, conversation, 0, &resp), FR_E_NOMEM);
    ASSERT_CONTAINS(c->error, "out of memory");
    call_free(c);
    instance_free(in);
}

/* ---- llm ----------------------------------------------------------------------------- */

static const char step_input[] =
    "{\"input\":{\"text\":\"hello world\",\"obj\":{\"a\":1,\"b\":[true,null,\"s/t\"]},"
    "\"items\":[\"x\",{\"k\":\"v\"}],\"n\":3.5,\"flag\":false,\"nothing\":null,"
    "\"0\":\"zero-key\"},"
    "\"steps\":{\"summarize\":{\"text\":\"short\",\"usage\":{\"input_tokens\":1}}}}";

/* Runs an llm agent with the given options over step_input against the mock provider;
 * returns the status, with the call (caller frees) in *call and the output in *out. */
static fr_status run_llm(const char *const *kv, const char *input, enum provider_mode mode,
                         const char *canned, fr_call **call, const char **out)
{
    instance *in = instance_new("llm", kv);
    instance *prov = instance_new("mock", NULL);
    CU_ASSERT_EQUAL_FATAL(in->init_status, FR_OK);
    fr_call *c = call_new(1);
    c->provider = prov;
    c->provider_mode = mode;
    c->canned = canned;
    c->provider_status = FR_E_RATE_LIMITED;
    fr_status st = invoke(in, c, input, out);
    instance_free(prov);
    instance_free(in);
    *call = c;
    return st;
}

static void test_llm_templates(void)
{
    static const struct {
        const char *prompt, *rendered;
    } cases[] = {
        {"Summarize: {{input.text}}", "Summarize: hello world"},
        {"{{ input.text }}|{{input.text}}", "hello world|hello world"},
        {"{{input.obj}}", "{\"a\":1,\"b\":[true,null,\"s/t\"]}"},
        {"{{input.obj.b}}", "[true,null,\"s/t\"]"},
        {"{{input.obj.b.2}}", "s/t"},
        {"{{input.obj.b.1}}", "null"},
        {"{{input.items.0}} {{input.items.1}} {{input.items.1.k}}", "x {\"k\":\"v\"} v"},
        {"{{input.n}} {{input.flag}} {{input.nothing}} {{input.obj.a}}", "3.5 false null 1"},
        {"{{input.0}}", "zero-key"}, /* a numeric segment is a key in an object */
        {"{{steps.summarize.text}} / {{steps.summarize.usage}}", "short / {\"input_tokens\":1}"},
        {"no placeholders } {", "no placeholders } {"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *kv[] = {"prompt", cases[i].prompt, NULL};
        fr_call *c;
        const char *out;
        ASSERT_STATUS(run_llm(kv, step_input, PROVIDER_MOCK, NULL, &c, &out), FR_OK);
        json_object *req = json_tokener_parse(c->request), *messages = NULL;
        CU_ASSERT_FATAL(req && json_object_object_get_ex(req, "messages", &messages));
        json_object *content = NULL;
        json_object_object_get_ex(json_object_array_get_idx(messages, 0), "content", &content);
        ASSERT_STR(json_object_get_string(content), cases[i].rendered);
        json_object_put(req);
        call_free(c);
    }
}

static void test_llm_missing_paths(void)
{
    static const struct {
        const char *key, *tmpl, *path;
    } cases[] = {
        {"prompt", "x {{input.txt}} y", "input.txt"},
        {"prompt", "{{input.items.2}}", "input.items.2"},
        {"prompt", "{{input.items.-1}}", "input.items.-1"},
        {"prompt", "{{input.text.length}}", "input.text.length"},
        {"prompt", "{{input.nothing.x}}", "input.nothing.x"},
        {"prompt", "{{steps.fetch.text}}", "steps.fetch.text"},
        {"system", "{{ input.missing }}", "input.missing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *kv[] = {"prompt", "{{input.text}}", cases[i].key, cases[i].tmpl, NULL};
        if (strcmp(cases[i].key, "prompt") == 0) {
            kv[1] = cases[i].tmpl;
            kv[2] = NULL;
        }
        fr_call *c;
        const char *out;
        ASSERT_STATUS(run_llm(kv, step_input, PROVIDER_MOCK, NULL, &c, &out), FR_E_CONFIG);
        char want[200];
        snprintf(want, sizeof want, "template path \"%s\" not found in step input", cases[i].path);
        ASSERT_CONTAINS(c->error, want);
        ASSERT_CONTAINS(c->error, cases[i].key);
        CU_ASSERT_EQUAL(c->provider_calls, 0);
        call_free(c);
    }
}

static void test_llm_request_shape(void)
{
    const char *kv[] = {"prompt",      "Q: {{input.text}}",
                        "system",      "Be {{steps.summarize.text}}.",
                        "max_tokens",  "50",
                        "temperature", "0.7",
                        "stream",      "true",
                        NULL};
    fr_call *c;
    const char *out;
    ASSERT_STATUS(run_llm(kv, step_input, PROVIDER_MOCK, NULL, &c, &out), FR_OK);
    ASSERT_STR(c->request, "{\"system\":\"Be short.\",\"messages\":[{\"role\":\"user\","
                           "\"content\":\"Q: hello world\"}],\"max_tokens\":50,"
                           "\"temperature\":0.7,\"stream\":true}");
    CU_ASSERT_EQUAL(c->provider_streamed, 1);
    ASSERT_STR(c->stream, "mock reply to: Q: hello world");
    call_free(c);

    /* Unset options are left out; temperature 0 is a value, not "unset". */
    const char *kv2[] = {"prompt", "{{input.text}}", NULL};
    ASSERT_STATUS(run_llm(kv2, step_input, PROVIDER_MOCK, NULL, &c, &out), FR_OK);
    ASSERT_STR(c->request, "{\"messages\":[{\"role\":\"user\",\"content\":\"hello world\"}],"
                           "\"stream\":false}");
    CU_ASSERT_EQUAL(c->provider_streamed, 0);
    call_free(c);
    const char *kv3[] = {"prompt", "{{input.text}}", "temperature", "0", NULL};
    ASSERT_STATUS(run_llm(kv3, step_input, PROVIDER_MOCK, NULL, &c, &out), FR_OK);
    ASSERT_CONTAINS(c->request, "\"temperature\":0,");
    call_free(c);
}

static void test_llm_output(void)
{
    const char *kv[] = {"prompt", "Summarize: {{input.text}}", "system", "terse", NULL};
    fr_call *c;
    const char *out;
    ASSERT_STATUS(run_llm(kv, step_input, PROVIDER_MOCK, NULL, &c, &out), FR_OK);
    ASSERT_STR(out, "{\"text\":\"mock reply to: Summarize: hello world\",\"usage\":"
                    "{\"input_tokens\":4,\"output_tokens\":6},\"model\":\"mock-1\","
                    "\"provider\":\"mock_main\",\"tool_calls\":[],\"finish_reason\":\"stop\"}");
    call_free(c);

    /* max_tokens reaches the provider. */
    const char *kv2[] = {"prompt", "{{input.text}}", "max_tokens", "2", NULL};
    ASSERT_STATUS(run_llm(kv2, step_input, PROVIDER_MOCK, NULL, &c, &out), FR_OK);
    ASSERT_STR(out, "{\"text\":\"mock reply\",\"usage\":{\"input_tokens\":2,\"output_tokens\":2},"
                    "\"model\":\"mock-1\",\"provider\":\"mock_main\",\"tool_calls\":[],"
                    "\"finish_reason\":\"length\"}");
    call_free(c);

    /* A provider without model/provider fields still gives the same output shape. */
    const char *kv3[] = {"prompt", "x", NULL};
    ASSERT_STATUS(run_llm(kv3, "{\"input\":{},\"steps\":{}}", PROVIDER_CANNED,
                          "{\"text\":\"t\",\"usage\":{\"input_tokens\":0,\"output_tokens\":1},"
                          "\"tool_calls\":[]}",
                          &c, &out),
                  FR_OK);
    ASSERT_STR(out, "{\"text\":\"t\",\"usage\":{\"input_tokens\":0,\"output_tokens\":1},"
                    "\"model\":null,\"provider\":null,\"tool_calls\":[],\"finish_reason\":null}");
    call_free(c);

    /* A provider that reported no usage: null passes through (unknown, not 0). */
    ASSERT_STATUS(run_llm(kv3, "{\"input\":{},\"steps\":{}}", PROVIDER_CANNED,
                          "{\"text\":\"t\",\"usage\":null,\"model\":\"m\"}", &c, &out),
                  FR_OK);
    ASSERT_STR(out, "{\"text\":\"t\",\"usage\":null,\"model\":\"m\",\"provider\":null,"
                    "\"tool_calls\":[],\"finish_reason\":null}");
    call_free(c);
}

static void test_llm_deep_input(void)
{
    /* Step inputs nest earlier outputs; deeper than json-c's default limit of 32. */
    char input[1024];
    size_t n = (size_t)snprintf(input, sizeof input, "{\"input\":{\"text\":\"deep\",\"d\":");
    for (int i = 0; i < 100; i++)
        input[n++] = '[';
    for (int i = 0; i < 100; i++)
        input[n++] = ']';
    snprintf(input + n, sizeof input - n, "},\"steps\":{}}");
    const char *kv[] = {"prompt", "{{input.text}}", NULL};
    fr_call *c;
    const char *out;
    ASSERT_STATUS(run_llm(kv, input, PROVIDER_MOCK, NULL, &c, &out), FR_OK);
    ASSERT_CONTAINS(out, "\"text\":\"mock reply to: deep\"");
    call_free(c);
}

static void test_llm_provider_failures(void)
{
    const char *kv[] = {"prompt", "{{input.text}}", NULL};
    fr_call *c;
    const char *out;
    ASSERT_STATUS(run_llm(kv, step_input, PROVIDER_FAIL, NULL, &c, &out), FR_E_RATE_LIMITED);
    ASSERT_STR(c->error, "provider mock_main: rate limited (HTTP 429)"); /* left as is */
    call_free(c);

    static const char *const bad[] = {
        "nope",
        "[]",
        "{\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}",
        "{\"text\":5,\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}",
        "{\"text\":\"t\"}",
        "{\"text\":\"t\",\"usage\":0}",
        "{\"text\":\"t\",\"usage\":{}}",
        "{\"text\":\"t\",\"usage\":{\"input_tokens\":\"1\",\"output_tokens\":1}}",
        "{\"text\":\"t\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1},\"model\":3}",
        "{\"text\":\"t\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}} trailing",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ASSERT_STATUS(run_llm(kv, step_input, PROVIDER_CANNED, bad[i], &c, &out),
                      FR_E_BAD_RESPONSE);
        ASSERT_CONTAINS(c->error, "llm: malformed provider response");
        call_free(c);
    }

    /* The provider's own failure (a bad request from mock) comes back unchanged. */
    ASSERT_STATUS(run_llm(kv, "{\"input\":{\"text\":\"x\"}} junk", PROVIDER_MOCK, NULL, &c, &out),
                  FR_E_INVALID);
    ASSERT_CONTAINS(c->error, "llm: step input is not valid JSON");
    call_free(c);
}

/* passthrough: the run input is the request, sent on as it is, with the agent's model
 * first; model also goes into a templated request.  prompt, system and tools cannot come
 * with passthrough, and the input must then be an object. */
static void test_llm_passthrough(void)
{
    const char *kv[] = {"passthrough", "true", "model", "m-2", NULL};
    fr_call *c;
    const char *out;
    const char *req = "{\"input\":{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                      "\"tool_choice\":\"auto\",\"seed\":7,\"stream\":false},\"steps\":{}}";
    ASSERT_STATUS(run_llm(kv, req, PROVIDER_MOCK, NULL, &c, &out), FR_OK);
    ASSERT_STR(c->request, "{\"model\":\"m-2\",\"messages\":[{\"role\":\"user\",\"content\":"
                           "\"hi\"}],\"tool_choice\":\"auto\",\"seed\":7,\"stream\":false}");
    call_free(c);
    const char *kv2[] = {"passthrough", "true", NULL};
    ASSERT_STATUS(run_llm(kv2, req, PROVIDER_MOCK, NULL, &c, &out), FR_OK);
    ASSERT_STR(c->request, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                           "\"tool_choice\":\"auto\",\"seed\":7,\"stream\":false}");
    call_free(c);
    ASSERT_STATUS(run_llm(kv2, "{\"input\":\"text\",\"steps\":{}}", PROVIDER_MOCK, NULL, &c, &out),
                  FR_E_INVALID);
    ASSERT_CONTAINS(c->error, "passthrough needs the run input to be a normalized request");
    call_free(c);
    const char *kv3[] = {"prompt", "{{input.text}}", "model", "m-3", NULL};
    ASSERT_STATUS(run_llm(kv3, step_input, PROVIDER_MOCK, NULL, &c, &out), FR_OK);
    ASSERT_STR(c->request, "{\"model\":\"m-3\",\"messages\":[{\"role\":\"user\",\"content\":"
                           "\"hello world\"}],\"stream\":false}");
    call_free(c);
    const char *bad[] = {"passthrough", "true", "prompt", "x", NULL};
    instance *in = instance_new("llm", bad);
    ASSERT_STATUS(in->init_status, FR_E_CONFIG);
    ASSERT_CONTAINS(init_error, "prompt, system and tools cannot be set with it");
    instance_free(in);
}

static void test_llm_bad_config(void)
{
    static const struct {
        const char *prompt, *system, *max_tokens, *log;
    } cases[] = {
        {NULL, NULL, NULL, "option prompt is required"},
        {"{{input.text", NULL, NULL, "option prompt: unterminated"},
        {"{{text}}", NULL, NULL, "must start with \"input\" or \"steps\""},
        {"ok", "{{ }}", NULL, "option system: empty placeholder"},
        {"{{input..text}}", NULL, NULL, "bad placeholder path"},
        {"ok", NULL, "-5", "max_tokens"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *kv[7];
        size_t n = 0;
        if (cases[i].prompt) {
            kv[n++] = "prompt";
            kv[n++] = cases[i].prompt;
        }
        if (cases[i].system) {
            kv[n++] = "system";
            kv[n++] = cases[i].system;
        }
        if (cases[i].max_tokens) {
            kv[n++] = "max_tokens";
            kv[n++] = cases[i].max_tokens;
        }
        kv[n] = NULL;
        instance *in = instance_new("llm", kv);
        ASSERT_STATUS(in->init_status, FR_E_CONFIG);
        ASSERT_CONTAINS(init_error, cases[i].log);
        instance_free(in);
    }
}

static void test_llm_oom(void)
{
    /* Failing each arena allocation in turn never crashes and reports FR_E_NOMEM. */
    const char *kv[] = {"prompt", "{{input.text}}", NULL};
    instance *in = instance_new("llm", kv);
    instance *prov = instance_new("mock", NULL);
    for (int n = 0; n < 4; n++) {
        fr_call *c = call_new(1);
        c->provider = prov;
        c->allocs_left = n;
        const char *out;
        fr_status st = invoke(in, c, step_input, &out);
        CU_ASSERT(st == FR_E_NOMEM || st == FR_OK);
        call_free(c);
    }
    instance_free(prov);
    instance_free(in);
}

/* Several threads share one llm and one mock instance, as the engine's workers do. */
typedef struct thread_arg {
    instance *llm, *mock;
    int id, failures;
} thread_arg;

static void *llm_worker(void *p)
{
    thread_arg *a = p;
    for (int i = 0; i < 200; i++) {
        char input[100], want[300];
        snprintf(input, sizeof input, "{\"input\":{\"text\":\"t%d-%d\"},\"steps\":{}}", a->id, i);
        snprintf(want, sizeof want,
                 "{\"text\":\"mock reply to: t%d-%d\",\"usage\":{\"input_tokens\":1,"
                 "\"output_tokens\":4},\"model\":\"mock-1\",\"provider\":\"mock_main\","
                 "\"tool_calls\":[],\"finish_reason\":\"stop\"}",
                 a->id, i);
        fr_call *c = call_new(1);
        c->provider = a->mock;
        char *out = NULL;
        size_t len = 0;
        fr_status st = a->llm->d->invoke(a->llm->state, c, input, strlen(input), &out, &len);
        if (st != FR_OK || len != strlen(want) || memcmp(out, want, len) != 0)
            a->failures++;
        call_free(c);
    }
    return NULL;
}

static void test_llm_concurrent(void)
{
    const char *kv[] = {"prompt", "{{input.text}}", NULL};
    instance *llm = instance_new("llm", kv);
    instance *mock = instance_new("mock", NULL);
    pthread_t t[8];
    thread_arg args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (thread_arg){llm, mock, i, 0};
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, llm_worker, &args[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        CU_ASSERT_EQUAL(args[i].failures, 0);
    }
    instance_free(mock);
    instance_free(llm);
}

/* ---- main ---------------------------------------------------------------------------- */

int main(void)
{
    if (load_plugins() != 0)
        return 1;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("plugins", NULL, NULL);
    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"descriptors", test_descriptors},
        {"echo round trip", test_echo},
        {"chaos fails attempts 1..N then succeeds", test_chaos_fails_then_succeeds},
        {"chaos output option", test_chaos_output_option},
        {"chaos bad config fails init", test_chaos_bad_config},
        {"chaos delay and cancellation", test_chaos_delay},
        {"chaos crash and hang", test_chaos_crash_and_hang},
        {"mock reply and token counts", test_mock_reply},
        {"mock reply template", test_mock_template},
        {"mock max_tokens truncation", test_mock_max_tokens},
        {"mock stop sequences and JSON mode", test_mock_stop_and_json_mode},
        {"mock bad requests", test_mock_bad_requests},
        {"mock streaming", test_mock_stream},
        {"mock delay and out of memory", test_mock_delay_and_oom},
        {"llm template rendering", test_llm_templates},
        {"llm missing template paths", test_llm_missing_paths},
        {"llm request shape", test_llm_request_shape},
        {"llm output shape", test_llm_output},
        {"llm deeply nested step input", test_llm_deep_input},
        {"llm provider failures and bad responses", test_llm_provider_failures},
        {"llm bad config fails init", test_llm_bad_config},
        {"llm passthrough and model", test_llm_passthrough},
        {"llm out of memory", test_llm_oom},
        {"llm concurrent invocations", test_llm_concurrent},
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (!CU_add_test(s, tests[i].name, tests[i].fn))
            return 1;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    /* Plugins stay loaded until exit, as in the host. */
    return failures == 0 && CU_get_error() == CUE_SUCCESS ? 0 : 1;
}
