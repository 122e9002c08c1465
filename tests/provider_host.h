/* The fake host the provider plugin tests drive the plugins through: http() records the
 * request (URL, headers, body) and answers with a scripted response (whole, in pieces, or
 * cut), stream_chunk() collects deltas, secret_env() answers one variable.  Plus loading
 * a plugin from $FR_BUILDDIR/plugins/NAME.so and running one request.
 *
 * Header-only, for tests/builtins/test_providers.c, tests/builtins/test_provider_wire.c
 * and tests/fuzz/fuzz_provider.c.  Single-threaded. */
#ifndef FR_TEST_PROVIDER_HOST_H
#define FR_TEST_PROVIDER_HOST_H

#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Fake host ----------------------------------------------------------------------- */

struct fr_call {
    void *blocks[256];
    size_t n_blocks;
    char error[2048];
    int64_t clock, retry_after;
    /* the scripted answer */
    int status;
    const char *resp_headers, *resp_body;
    size_t resp_body_len; /* 0: strlen(resp_body) */
    fr_status http_status;
    /* what the plugin sent */
    char url[512], body[16384], headers[8][256];
    size_t n_headers, n_secret;
    int64_t timeout_us;
    char ca_file[256];
    /* streaming */
    char chunks[4096];
    int n_chunks, stop_after;
    size_t split;  /* > 0: the body goes to on_body in pieces of this many bytes */
    size_t cut_at; /* > 0: the connection breaks after this many body bytes */
};

static const char *env_name, *env_value; /* what secret_env answers */
static char init_error[512];

static void fake_log(fr_call *call, fr_log_level level, const char *fmt, ...)
{
    (void)call, (void)level, (void)fmt;
}

static void *fake_alloc(fr_call *call, size_t size)
{
    void *p = malloc(size ? size : 1);
    if (call && p) {
        if (call->n_blocks == 256) {
            free(p);
            return NULL;
        }
        call->blocks[call->n_blocks++] = p;
    }
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

static fr_status fake_http(fr_call *call, const fr_http_request *req, fr_http_response *resp)
{
    snprintf(call->url, sizeof call->url, "%s", req->url);
    snprintf(call->body, sizeof call->body, "%.*s", (int)req->body_len, req->body);
    call->n_headers = req->n_headers < 8 ? req->n_headers : 8;
    for (size_t i = 0; i < call->n_headers; i++)
        snprintf(call->headers[i], sizeof call->headers[i], "%s", req->headers[i]);
    call->n_secret = req->n_secret_headers;
    call->timeout_us = req->timeout_us;
    snprintf(call->ca_file, sizeof call->ca_file, "%s", req->ca_file ? req->ca_file : "");
    if (call->http_status != FR_OK)
        return call->http_status;
    resp->status = call->status ? call->status : 200;
    resp->headers = call->resp_headers ? call->resp_headers : "HTTP/1.1 200 OK\r\n\r\n";
    resp->headers_len = strlen(resp->headers);
    resp->body = call->resp_body ? call->resp_body : "";
    resp->body_len = call->resp_body_len ? call->resp_body_len : strlen(resp->body);
    /* Streaming as the real host does it: 2xx bodies only, in pieces, before returning. */
    int stream = FR_HTTP_REQUEST_HAS(req, on_body_ud) && req->on_body && resp->status >= 200 &&
                 resp->status <= 299 && (call->split || call->cut_at);
    size_t end = call->cut_at && call->cut_at < resp->body_len ? call->cut_at : resp->body_len;
    size_t step = call->split ? call->split : end;
    for (size_t at = 0; stream && at < end; at += step) {
        fr_status st =
            req->on_body(req->on_body_ud, resp->body + at, end - at < step ? end - at : step);
        if (st != FR_OK)
            return st;
    }
    if (call->cut_at) {
        resp->body_len = end;
        snprintf(call->error, sizeof call->error, "http POST %s: connection reset", req->url);
        return FR_E_NETWORK;
    }
    return FR_OK;
}

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

static void fake_set_retry_after(fr_call *call, int64_t us)
{
    call->retry_after = us;
}

static fr_status fake_stream_chunk(fr_call *call, const char *text, size_t len)
{
    if (call->stop_after && call->n_chunks >= call->stop_after)
        return FR_E_CANCELLED;
    size_t used = strlen(call->chunks);
    snprintf(call->chunks + used, sizeof call->chunks - used, "%s[%.*s]", call->n_chunks ? "" : "",
             (int)len, text);
    call->n_chunks++;
    return FR_OK;
}

static const char *fake_secret_env(fr_call *call, const char *name)
{
    (void)call;
    return env_name && strcmp(name, env_name) == 0 ? env_value : NULL;
}

static const fr_host_api host = {
    .struct_size = sizeof(fr_host_api),
    .abi_version = FR_ABI_VERSION,
    .log = fake_log,
    .alloc = fake_alloc,
    .free_mem = fake_free_mem,
    .clock_us = fake_clock_us,
    .http = fake_http,
    .set_error = fake_set_error,
    .set_retry_after = fake_set_retry_after,
    .stream_chunk = fake_stream_chunk,
    .secret_env = fake_secret_env,
};

static void call_free(fr_call *c)
{
    for (size_t i = 0; i < c->n_blocks; i++)
        free(c->blocks[i]);
    free(c);
}

/* ---- Loading plugins ----------------------------------------------------------------- */

typedef struct provider {
    void *handle;
    const fr_plugin *d;
    char *config;
    void *state;
} provider;

/* Fills the config struct from the option table: kv (NULL-terminated name, value pairs)
 * or the defaults.  Handles the types the providers use. */
static void fill_config(const fr_plugin *d, char *cfg, const char *const *kv)
{
    for (const fr_option *o = d->options; o && o->name; o++) {
        const char *v = o->default_value;
        for (size_t i = 0; kv && kv[i]; i += 2)
            if (strcmp(kv[i], o->name) == 0)
                v = kv[i + 1];
        if (!v)
            continue;
        if (o->type == FR_OPT_STRING || o->type == FR_OPT_JSON)
            *(const char **)(cfg + o->offset) = v;
        else if (o->type == FR_OPT_INT)
            *(int64_t *)(cfg + o->offset) = strtoll(v, NULL, 10);
        else if (o->type == FR_OPT_DURATION) /* "N" microseconds here */
            *(int64_t *)(cfg + o->offset) = strtoll(v, NULL, 10);
    }
}

/* Loads NAME.so and inits an instance with options kv; the key variable TEST_KEY holds
 * "sk-unit-key-1234" unless env is NULL.  Returns init's status. */
static fr_status provider_open(provider *p, const char *name, const char *const *kv)
{
    char path[1024];
    const char *dir = getenv("FR_BUILDDIR");
    snprintf(path, sizeof path, "%s/plugins/%s.so", dir ? dir : ".", name);
    memset(p, 0, sizeof *p);
    p->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    fr_plugin_entry_fn entry =
        p->handle ? (fr_plugin_entry_fn)(uintptr_t)dlsym(p->handle, FR_PLUGIN_SYMBOL) : NULL;
    if (!entry) { /* nothing to test without it */
        fprintf(stderr, "%s: %s\n", path, dlerror());
        abort();
    }
    p->d = entry();
    p->config = calloc(1, p->d->config_size);
    fill_config(p->d, p->config, kv);
    init_error[0] = '\0';
    return p->d->init(&host, p->config, &p->state);
}

static void provider_close(provider *p)
{
    if (p->state)
        p->d->fini(p->state);
    free(p->config);
    dlclose(p->handle);
}

/* Runs one request against a scripted answer; returns the status, *out the response. */
static fr_status run(provider *p, fr_call *c, const char *request, int stream, const char **out)
{
    char *resp = NULL;
    size_t len = 0;
    fr_status st = stream
                       ? p->d->complete_stream(p->state, c, request, strlen(request), &resp, &len)
                       : p->d->complete(p->state, c, request, strlen(request), &resp, &len);
    *out = resp;
    return st;
}

static fr_call *call_new(int status, const char *body)
{
    fr_call *c = calloc(1, sizeof *c);
    c->status = status;
    c->resp_body = body;
    c->clock = 1700000000LL * 1000000;
    return c;
}

#endif
