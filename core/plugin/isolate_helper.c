/* The isolation helper process: `fluxroute __plugin-helper` loads one plugin and serves
 * its calls over file descriptor 3, proxying every host API call to the parent (see
 * isolate.c for the parent's side and the wire format). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <json-c/json.h>

#include "host/host.h"
#include "plugin/isolate.h"
#include "plugin/isolate_wire.h"
#include "plugin/loader.h"
#include "manifest/options.h"
#include "base/yaml_tree.h"

/* ---- helper side ------------------------------------------------------------------------ */

/* The helper's view of a call: the parent does the real work. */
struct helper_call {
    fr_arena arena;
    char *error;
    int64_t retry_after_us;
    int attempt;
    const char *step;
};

static struct helper_call *current; /* the helper serves one call at a time */
static int parent_fd = FR_HELPER_FD;

/* Sends a host request and waits for the reply (the helper exits if the parent is gone). */
static json_object *ask(json_object *req)
{
    if (fr__wire_send(parent_fd, req) != 0)
        _exit(3);
    json_object *rep = fr__wire_recv(parent_fd);
    if (!rep)
        _exit(3);
    return rep;
}

static json_object *host_req(const char *fn)
{
    json_object *o = fr__wire_msg("host");
    json_object_object_add(o, "fn", json_object_new_string(fn));
    return o;
}

static char *helper_dup(const char *s, size_t len)
{
    char *p = current ? fr__arena_alloc(&current->arena, len + 1) : malloc(len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

static void h_log(fr_call *call, fr_log_level level, const char *fmt, ...)
{
    (void)call;
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    json_object *o = host_req("log");
    json_object_object_add(o, "level", json_object_new_int(level));
    json_object_object_add(o, "text", json_object_new_string(text));
    if (fr__wire_send(parent_fd, o) != 0)
        _exit(3);
}

static void *h_alloc(fr_call *call, size_t size)
{
    if (!call || !current)
        return malloc(size ? size : 1);
    return fr__arena_alloc(&current->arena, size ? size : 1);
}

static void h_free_mem(void *p)
{
    free(p);
}

static int64_t ask_int(const char *fn, const char *key)
{
    json_object *rep = ask(host_req(fn));
    int64_t v = fr__wire_int(rep, key, 0);
    json_object_put(rep);
    return v;
}

static int64_t h_clock_us(fr_call *call)
{
    (void)call;
    return ask_int("clock_us", "value");
}

static fr_status h_sleep_us(fr_call *call, int64_t us)
{
    (void)call;
    json_object *o = host_req("sleep_us");
    json_object_object_add(o, "us", json_object_new_int64(us));
    json_object *rep = ask(o);
    fr_status st = (fr_status)fr__wire_int(rep, "status", FR_E_CANCELLED);
    json_object_put(rep);
    return st;
}

static uint64_t h_random_u64(fr_call *call)
{
    (void)call;
    json_object *rep = ask(host_req("random_u64"));
    json_object *v;
    uint64_t r = json_object_object_get_ex(rep, "value", &v) ? json_object_get_uint64(v) : 0;
    json_object_put(rep);
    return r;
}

static void h_set_error(fr_call *call, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *m = NULL;
    if (vasprintf(&m, fmt, ap) < 0)
        m = NULL;
    va_end(ap);
    if (call && current) {
        free(current->error);
        current->error = m;
    } else {
        free(m); /* init errors travel in the "error" reply */
    }
}

static fr_status h_http(fr_call *call, const fr_http_request *req, fr_http_response *resp)
{
    if (!req || !resp)
        return FR_E_INVALID;
    json_object *o = host_req("http");
    json_object_object_add(o, "method", json_object_new_string(req->method ? req->method : ""));
    json_object_object_add(o, "url", json_object_new_string(req->url ? req->url : ""));
    json_object *hs = json_object_new_array();
    for (size_t i = 0; i < req->n_headers; i++)
        json_object_array_add(hs, json_object_new_string(req->headers[i]));
    json_object_object_add(o, "headers", hs);
    if (req->body)
        json_object_object_add(o, "body",
                               json_object_new_string_len(req->body, (int)req->body_len));
    json_object_object_add(o, "timeout_us", json_object_new_int64(req->timeout_us));
    json_object_object_add(o, "n_secret_headers",
                           json_object_new_int64((int64_t)req->n_secret_headers));
    if (FR_HTTP_REQUEST_HAS(req, ca_file) && req->ca_file)
        json_object_object_add(o, "ca_file", json_object_new_string(req->ca_file));
    /* No function pointer crosses the wire: the parent is asked for the body, and the
     * plugin's on_body gets it here in one piece. */
    int stream = FR_HTTP_REQUEST_HAS(req, on_body_ud) && req->on_body;
    if (stream)
        json_object_object_add(o, "stream", json_object_new_int(1));
    json_object *rep = ask(o);
    fr_status st = (fr_status)fr__wire_int(rep, "status", FR_E_NETWORK);
    resp->status = (int)fr__wire_int(rep, "http_status", 0);
    json_object *v;
    if (json_object_object_get_ex(rep, "headers", &v) && v) {
        resp->headers =
            helper_dup(json_object_get_string(v), (size_t)json_object_get_string_len(v));
        resp->headers_len = (size_t)json_object_get_string_len(v);
    }
    if (json_object_object_get_ex(rep, "body", &v) && v) {
        resp->body = helper_dup(json_object_get_string(v), (size_t)json_object_get_string_len(v));
        resp->body_len = (size_t)json_object_get_string_len(v);
    }
    const char *e = fr__wire_str(rep, "error");
    if (e && st != FR_OK)
        h_set_error(call, "%s", e);
    json_object_put(rep);
    if (stream && resp->body && resp->body_len && resp->status >= 200 && resp->status <= 299) {
        fr_status bs = req->on_body(req->on_body_ud, resp->body, resp->body_len);
        if (bs != FR_OK)
            return bs; /* with the callback's message */
    }
    return st;
}

static fr_status h_provider_call(fr_call *call, const char *request, size_t len, char **response,
                                 size_t *response_len)
{
    json_object *o = host_req("provider_call");
    json_object_object_add(o, "request", json_object_new_string_len(request, (int)len));
    json_object *rep = ask(o);
    fr_status st = (fr_status)fr__wire_int(rep, "status", FR_E_NETWORK);
    json_object *v;
    if (st == FR_OK && json_object_object_get_ex(rep, "response", &v) && v) {
        *response_len = (size_t)json_object_get_string_len(v);
        *response = helper_dup(json_object_get_string(v), *response_len);
        if (!*response)
            st = FR_E_NOMEM;
    }
    const char *e = fr__wire_str(rep, "error");
    if (e && st != FR_OK)
        h_set_error(call, "%s", e);
    int64_t ra = fr__wire_int(rep, "retry_after_us", 0);
    if (ra > 0 && current)
        current->retry_after_us = ra;
    json_object_put(rep);
    return st;
}

static void h_metric(fr_call *call, const char *name, double value)
{
    (void)call;
    json_object *o = host_req("metric");
    json_object_object_add(o, "name", json_object_new_string(name ? name : ""));
    json_object_object_add(o, "value", json_object_new_double(value));
    if (fr__wire_send(parent_fd, o) != 0)
        _exit(3);
}

static int64_t h_deadline_us(fr_call *call)
{
    (void)call;
    return ask_int("deadline_us", "value");
}

static fr_status h_check_cancel(fr_call *call)
{
    (void)call;
    return (fr_status)ask_int("check_cancel", "status");
}

static int h_attempt(fr_call *call)
{
    (void)call;
    return current ? current->attempt : 0;
}

static const char *h_step_id(fr_call *call)
{
    (void)call;
    return current ? current->step : "";
}

static void h_set_retry_after(fr_call *call, int64_t us)
{
    (void)call;
    if (current)
        current->retry_after_us = us;
}

static fr_status h_stream_chunk(fr_call *call, const char *text, size_t len)
{
    (void)call;
    json_object *o = host_req("stream_chunk");
    json_object_object_add(o, "text", json_object_new_string_len(text, (int)len));
    json_object *rep = ask(o);
    fr_status st = (fr_status)fr__wire_int(rep, "status", FR_E_CANCELLED);
    json_object_put(rep);
    return st;
}

static const char *h_secret_env(fr_call *call, const char *name)
{
    (void)call;
    json_object *o = host_req("secret_env");
    json_object_object_add(o, "name", json_object_new_string(name ? name : ""));
    json_object *rep = ask(o);
    const char *v = fr__wire_str(rep, "value");
    /* Borrowed for the plugin's life: keep the answers. */
    char *copy = v ? strdup(v) : NULL;
    json_object_put(rep);
    return copy;
}

static fr_status h_lease_acquire(fr_call *call, const char *key, int64_t ttl_us, int64_t wait_us,
                                 uint64_t *fencing_token)
{
    (void)call;
    json_object *o = host_req("lease_acquire");
    json_object_object_add(o, "key", json_object_new_string(key ? key : ""));
    json_object_object_add(o, "ttl_us", json_object_new_int64(ttl_us));
    json_object_object_add(o, "wait_us", json_object_new_int64(wait_us));
    json_object *rep = ask(o), *v;
    fr_status st = (fr_status)fr__wire_int(rep, "status", FR_E_CANCELLED);
    if (fencing_token && json_object_object_get_ex(rep, "fencing_token", &v))
        *fencing_token = json_object_get_uint64(v);
    json_object_put(rep);
    return st;
}

static fr_status h_lease_release(fr_call *call, const char *key)
{
    (void)call;
    json_object *o = host_req("lease_release");
    json_object_object_add(o, "key", json_object_new_string(key ? key : ""));
    json_object *rep = ask(o);
    fr_status st = (fr_status)fr__wire_int(rep, "status", FR_E_CANCELLED);
    json_object_put(rep);
    return st;
}

static const fr_host_api helper_api;

static fr_status h_http_ex(fr_call *call, const fr_http_request *req, fr_http_response *resp,
                           size_t resp_size)
{
    return fr__http_sized(&helper_api, call, req, resp, resp_size);
}

/* The parent derives the key from the call it proxies (run, step, attempt and the ordinal
 * it counts), so an isolated agent gets the key an in-process one would. */
static const char *h_idempotency_key(fr_call *call)
{
    (void)call;
    json_object *rep = ask(host_req("idempotency_key"));
    const char *v = fr__wire_str(rep, "value");
    char *key = v ? helper_dup(v, strlen(v)) : NULL;
    json_object_put(rep);
    return key;
}

static const fr_host_api helper_api = {
    .struct_size = sizeof(fr_host_api),
    .abi_version = FR_ABI_VERSION,
    .log = h_log,
    .alloc = h_alloc,
    .free_mem = h_free_mem,
    .clock_us = h_clock_us,
    .sleep_us = h_sleep_us,
    .random_u64 = h_random_u64,
    .http = h_http,
    .provider_call = h_provider_call,
    .metric = h_metric,
    .deadline_us = h_deadline_us,
    .check_cancel = h_check_cancel,
    .attempt = h_attempt,
    .step_id = h_step_id,
    .set_error = h_set_error,
    .set_retry_after = h_set_retry_after,
    .stream_chunk = h_stream_chunk,
    .secret_env = h_secret_env,
    .lease_acquire = h_lease_acquire,
    .lease_release = h_lease_release,
    .http_ex = h_http_ex,
    .idempotency_key = h_idempotency_key,
};

static int reply_error(fr_status st, const char *message)
{
    json_object *o = fr__wire_msg("error");
    json_object_object_add(o, "status", json_object_new_int(st));
    json_object_object_add(o, "message", json_object_new_string(message));
    fr__wire_send(parent_fd, o);
    return 1;
}

#if defined(__SANITIZE_ADDRESS__)
#define FR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FR_ASAN 1
#endif
#endif

/* Before the plugin is loaded: the OOM killer takes this process before any other (the
 * server above all), and its address space is limited so that a runaway plugin fails
 * here, alone.  Under AddressSanitizer the limit is not set: its shadow memory alone
 * reserves terabytes of address space. */
static void confine(int64_t memory_limit)
{
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, "1000", 4) != 4) {
            /* Not fatal: the address-space limit still holds. */
        }
        close(fd);
    }
#ifndef FR_ASAN
    if (memory_limit > 0) {
        struct rlimit rl = {.rlim_cur = (rlim_t)memory_limit, .rlim_max = (rlim_t)memory_limit};
        if (setrlimit(RLIMIT_AS, &rl) != 0)
            fprintf(stderr, "fluxroute helper: cannot limit the address space to %lld bytes: %s\n",
                    (long long)memory_limit, strerror(errno));
    }
#else
    (void)memory_limit;
#endif
}

int fr__helper_main(void)
{
    json_object *init = fr__wire_recv(parent_fd);
    const char *path = init ? fr__wire_str(init, "plugin") : NULL;
    if (!path)
        return reply_error(FR_E_INVALID, "helper: bad init message");
    confine(fr__wire_int(init, "memory_limit", 0));
    fr_loader *l = fr__loader_new();
    const fr_loaded_plugin *lp = NULL;
    char err[1024];
    if (!l || fr__loader_load_file(l, path, &lp, err, sizeof err) != 0) {
        json_object_put(init);
        fr__loader_free(l);
        return reply_error(FR_E_CONFIG, err);
    }
    /* The config arrives as JSON, which is YAML: check and fill it as the parent did. */
    json_object *cj;
    const char *cfg_text = json_object_object_get_ex(init, "config", &cj) && cj
                               ? json_object_to_json_string_ext(cj, JSON_C_TO_STRING_PLAIN)
                               : "{}";
    fr_ydoc doc = {0};
    fr_diags diags;
    fr__diags_init(&diags, "config");
    fr_config cfg = {0};
    int bad = fr__ydoc_parse(&doc, cfg_text, strlen(cfg_text), &diags) != 0 ||
              fr__options_fill(lp->desc, doc.root, doc.root, "agent", &cfg, &diags) != 0 ||
              diags.n > 0;
    json_object_put(init);
    void *state = NULL;
    fr_status st = bad              ? FR_E_CONFIG
                   : lp->desc->init ? lp->desc->init(&helper_api, cfg.data, &state)
                                    : FR_OK;
    if (st != FR_OK) {
        reply_error(st, bad && diags.n ? diags.items[0].message : "plugin init failed");
        fr__diags_free(&diags);
        fr__ydoc_free(&doc);
        fr__config_free(&cfg);
        fr__loader_free(l);
        return 1;
    }
    fr__diags_free(&diags);
    fr__wire_send(parent_fd, fr__wire_msg("ready"));

    json_object *m;
    while ((m = fr__wire_recv(parent_fd)) != NULL) {
        const char *input = fr__wire_str(m, "input");
        struct helper_call hc = {.attempt = (int)fr__wire_int(m, "attempt", 1),
                                 .step = fr__wire_str(m, "step")};
        current = &hc;
        char *out = NULL;
        size_t out_len = 0;
        /* The call handle is opaque to plugins; the helper's functions ignore it. */
        fr_call *call = (fr_call *)&hc;
        fr_status rc = input ? lp->desc->invoke(state, call, input, strlen(input), &out, &out_len)
                             : FR_E_INVALID;
        json_object *res = fr__wire_msg("result");
        json_object_object_add(res, "status", json_object_new_int(rc));
        if (rc == FR_OK && out)
            json_object_object_add(res, "output", json_object_new_string_len(out, (int)out_len));
        if (hc.error)
            json_object_object_add(res, "error", json_object_new_string(hc.error));
        json_object_object_add(res, "retry_after_us", json_object_new_int64(hc.retry_after_us));
        json_object_put(m);
        int sent = fr__wire_send(parent_fd, res);
        free(hc.error);
        fr__arena_free(&hc.arena);
        current = NULL;
        if (sent != 0)
            break;
    }
    if (lp->desc->fini)
        lp->desc->fini(state);
    fr__config_free(&cfg);
    fr__ydoc_free(&doc);
    fr__loader_free(l);
    return 0;
}
