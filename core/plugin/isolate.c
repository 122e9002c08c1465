/* Process isolation: the parent's proxy and the helper process's main.
 *
 * Wire format: each message is a 4-byte big-endian length and a JSON object.
 *   parent -> helper  {"op":"init","plugin":PATH,"config":{...}}
 *   helper -> parent  {"op":"ready"} | {"op":"error","status":N,"message":S}
 *   parent -> helper  {"op":"invoke","step":S,"attempt":N,"agent":S,"input":TEXT}
 *   helper -> parent  {"op":"host","fn":NAME,...}   (the parent answers {"op":"reply",...})
 *   helper -> parent  {"op":"result","status":N,"output":TEXT,"error":S,"retry_after_us":N}
 * During init the helper may also ask {"op":"host","fn":"secret_env"} and "log". */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "base/str.h"
#include "host/effects.h"
#include "plugin/isolate.h"
#include "plugin/isolate_wire.h"
#include "base/json_check.h"
#include "plugin/loader.h"
#include "manifest/options.h"
#include "base/yaml_tree.h"

extern char **environ;

#define MAX_MESSAGE (256u << 20)

/* ---- framing ------------------------------------------------------------------------ */

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fr__wire_send(int fd, json_object *o)
{
    size_t len;
    const char *text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
    unsigned char hdr[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
                            (unsigned char)(len >> 8), (unsigned char)len};
    int rc = text && write_all(fd, hdr, 4) == 0 && write_all(fd, text, len) == 0 ? 0 : -1;
    json_object_put(o);
    return rc;
}

/* Reads exactly len bytes.  Returns 0, or -1 on EOF/error. */
static int read_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads one message; NULL on EOF, error or garbage. */
json_object *fr__wire_recv(int fd)
{
    unsigned char hdr[4];
    if (read_all(fd, hdr, 4) != 0)
        return NULL;
    size_t len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
    if (len > MAX_MESSAGE)
        return NULL;
    char *buf = malloc(len + 1);
    if (!buf || read_all(fd, buf, len) != 0) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    json_object *o = json_tokener_parse(buf);
    free(buf);
    if (o && !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        o = NULL;
    }
    return o;
}

const char *fr__wire_str(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

int64_t fr__wire_int(json_object *o, const char *key, int64_t def)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : def;
}

json_object *fr__wire_msg(const char *op)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "op", json_object_new_string(op));
    return o;
}

/* ---- parent side ---------------------------------------------------------------------- */

typedef struct helper {
    struct helper *next;                /* in its pool's idle list */
    struct helper *lru_prev, *lru_next; /* in the process-wide list of idle helpers */
    struct helper_pool *pool;           /* while idle */
    pid_t pid;
    int fd;
} helper;

/* Per-instance pool of idle helpers; the instance's pointer is set lazily. */
typedef struct helper_pool {
    helper *idle;
} helper_pool;

/* One lock for every pool, the idle list and the count of live helpers (each helper
 * holds a slot from its start until it is reaped). */
static pthread_mutex_t helpers_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slot_cv; /* a slot was freed (CLOCK_MONOTONIC) */
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;
static helper *lru_head, *lru_tail; /* idle helpers, most recently used first */
static size_t live_helpers;
static size_t max_helpers;                 /* 0: no cap */
static uint64_t helper_memory;             /* RLIMIT_AS of each helper; 0: none */
static int64_t slot_wait_us = 5 * 1000000; /* for a slot, when the call has no deadline */

void fr__isolation_configure(size_t max, uint64_t memory_bytes)
{
    max_helpers = max;
    helper_memory = memory_bytes;
}

static void slot_cv_init(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&slot_cv, &attr);
    pthread_condattr_destroy(&attr);
}

static void slot_release(void)
{
    pthread_once(&slot_once, slot_cv_init);
    pthread_mutex_lock(&helpers_mu);
    live_helpers--;
    pthread_cond_signal(&slot_cv);
    pthread_mutex_unlock(&helpers_mu);
}

static helper_pool *pool_of(fr_instance *inst)
{
    pthread_mutex_lock(&helpers_mu);
    if (!inst->helpers)
        inst->helpers = calloc(1, sizeof(helper_pool));
    pthread_mutex_unlock(&helpers_mu);
    return inst->helpers;
}

/* Puts an idle helper back into its pool (helpers_mu held). */
static void idle_push(helper_pool *hp, helper *h)
{
    h->pool = hp;
    h->next = hp->idle;
    hp->idle = h;
    h->lru_prev = NULL;
    h->lru_next = lru_head;
    if (lru_head)
        lru_head->lru_prev = h;
    else
        lru_tail = h;
    lru_head = h;
}

/* Takes `h` (idle, in its pool) out of its pool and the idle list (helpers_mu held). */
static void idle_take(helper *h)
{
    helper **pp = &h->pool->idle;
    while (*pp != h)
        pp = &(*pp)->next;
    *pp = h->next;
    if (h->lru_prev)
        h->lru_prev->lru_next = h->lru_next;
    else
        lru_head = h->lru_next;
    if (h->lru_next)
        h->lru_next->lru_prev = h->lru_prev;
    else
        lru_tail = h->lru_prev;
    h->next = h->lru_prev = h->lru_next = NULL;
    h->pool = NULL;
}

/* The executable to run helpers with: the running fluxroute, else the build tree's or
 * the installed one (when the engine is embedded in another program). */
static const char *helper_exe(char *buf, size_t size)
{
    const char *env = getenv("FLUXROUTE_HELPER");
    if (env && *env)
        return env;
    ssize_t n = readlink("/proc/self/exe", buf, size - 1);
    if (n > 0) {
        buf[n] = '\0';
        const char *base = strrchr(buf, '/');
        base = base ? base + 1 : buf;
        if (strcmp(base, "fluxroute") == 0 || strcmp(base, "lt-fluxroute") == 0)
            return buf;
    }
    snprintf(buf, size, "%s/fluxroute", FR_BUILD_DIR);
    if (access(buf, X_OK) == 0)
        return buf;
    snprintf(buf, size, "%s/fluxroute", FR_BINDIR);
    return buf;
}

/* The environment for helpers: ours, with handle_segv=0 added to ASAN_OPTIONS so that a
 * plugin's crash stays a crash under the sanitizer build. */
static char **helper_env(char **owned)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    const char *asan = "";
    for (size_t i = 0; i < n; i++) {
        if (strncmp(environ[i], "ASAN_OPTIONS=", 13) == 0)
            asan = environ[i] + 13;
        else
            env[k++] = environ[i];
    }
    char *a =
        fr__xasprintf("ASAN_OPTIONS=%s%shandle_segv=0:handle_abort=0", asan, *asan ? ":" : "");
    if (!a) {
        free(env);
        return NULL;
    }
    env[k++] = a;
    env[k] = NULL;
    *owned = a;
    return env;
}

static void helper_kill(helper *h)
{
    kill(h->pid, SIGKILL);
    close(h->fd);
    while (waitpid(h->pid, NULL, 0) < 0 && errno == EINTR) {
    }
    free(h);
    slot_release();
}

/* A slot for a new helper (--max-helpers): free, or taken from the least recently used
 * idle helper, or waited for until the call's deadline (5 s without one).  Returns 0, or
 * a status with the reason in *why. */
static fr_status slot_acquire(fr_call *call, char **why)
{
    pthread_once(&slot_once, slot_cv_init);
    int64_t t0 = fr__mono_us(), until = call->attempt_deadline_mono;
    int64_t run = call->cancel->run_deadline_mono;
    if (run && (!until || run < until))
        until = run;
    if (!until)
        until = t0 + slot_wait_us;
    pthread_mutex_lock(&helpers_mu);
    for (;;) {
        if (!max_helpers || live_helpers < max_helpers) {
            live_helpers++;
            pthread_mutex_unlock(&helpers_mu);
            return FR_OK;
        }
        helper *old = lru_tail;
        if (old) {
            /* An idle helper of another agent gives its slot up. */
            idle_take(old);
            pthread_mutex_unlock(&helpers_mu);
            helper_kill(old);
            pthread_mutex_lock(&helpers_mu);
            continue;
        }
        int64_t now = fr__mono_us();
        if (__atomic_load_n(&call->cancel->cancelled, __ATOMIC_ACQUIRE)) {
            pthread_mutex_unlock(&helpers_mu);
            *why = strdup("cancelled while waiting for a plugin helper process");
            return fr__cancel_reason(call->cancel);
        }
        if (now >= until) {
            pthread_mutex_unlock(&helpers_mu);
            *why = fr__xasprintf("no plugin helper process free: all %zu are busy (the server's "
                                 "cap, serve --max-helpers %zu); waited %lldms",
                                 max_helpers, max_helpers, (long long)((now - t0) / 1000));
            return FR_E_OVERLOADED;
        }
        /* Wake now and then to notice cancellation. */
        int64_t wake = now + 50000 < until ? now + 50000 : until;
        struct timespec ts = {.tv_sec = wake / 1000000, .tv_nsec = (wake % 1000000) * 1000};
        pthread_cond_timedwait(&slot_cv, &helpers_mu, &ts);
    }
}

/* The message describing how a helper ended, with the status to report. */
static fr_status helper_death(helper *h, char **why)
{
    close(h->fd);
    int ws = 0;
    pid_t r;
    while ((r = waitpid(h->pid, &ws, 0)) < 0 && errno == EINTR) {
    }
    fr_status st = FR_E_CRASHED;
    if (r > 0 && WIFSIGNALED(ws))
        *why = fr__xasprintf("plugin crashed: its helper process died on signal %d (%s)%s",
                             WTERMSIG(ws), strsignal(WTERMSIG(ws)),
                             helper_memory ? " (helpers run under the server's address-space "
                                             "limit, serve --helper-memory)"
                                           : "");
    else if (r > 0 && WIFEXITED(ws))
        *why =
            fr__xasprintf("plugin helper process exited with status %d mid-call", WEXITSTATUS(ws));
    else
        *why = strdup("plugin helper process vanished");
    free(h);
    slot_release();
    return st;
}

/* The parent's on_body for a helper's streaming request: the body is collected by the
 * host anyway and sent to the helper whole. */
static fr_status accept_body(void *ud, const char *data, size_t len)
{
    (void)ud, (void)data, (void)len;
    return FR_OK;
}

/* Serves one host-API request from the helper on behalf of `call`. */
static json_object *serve_host_call(fr_call *call, json_object *req)
{
    const fr_host_api *host = fr__host_api();
    const char *fn = fr__wire_str(req, "fn");
    json_object *rep = fr__wire_msg("reply");
    if (!fn)
        return rep;
    if (strcmp(fn, "clock_us") == 0) {
        json_object_object_add(rep, "value", json_object_new_int64(host->clock_us(call)));
    } else if (strcmp(fn, "sleep_us") == 0) {
        json_object_object_add(
            rep, "status", json_object_new_int(host->sleep_us(call, fr__wire_int(req, "us", 0))));
    } else if (strcmp(fn, "random_u64") == 0) {
        json_object_object_add(rep, "value", json_object_new_uint64(host->random_u64(call)));
    } else if (strcmp(fn, "deadline_us") == 0) {
        json_object_object_add(rep, "value", json_object_new_int64(host->deadline_us(call)));
    } else if (strcmp(fn, "check_cancel") == 0) {
        json_object_object_add(rep, "status", json_object_new_int(host->check_cancel(call)));
    } else if (strcmp(fn, "secret_env") == 0) {
        const char *v = host->secret_env(call, fr__wire_str(req, "name"));
        json_object_object_add(rep, "value", v ? json_object_new_string(v) : NULL);
    } else if (strcmp(fn, "stream_chunk") == 0) {
        const char *t = fr__wire_str(req, "text");
        json_object_object_add(
            rep, "status",
            json_object_new_int(host->stream_chunk(call, t ? t : "", t ? strlen(t) : 0)));
    } else if (strcmp(fn, "provider_call") == 0) {
        const char *r = fr__wire_str(req, "request");
        char *resp = NULL;
        size_t resp_len = 0;
        fr_status st = host->provider_call(call, r ? r : "", r ? strlen(r) : 0, &resp, &resp_len);
        json_object_object_add(rep, "status", json_object_new_int(st));
        json_object_object_add(rep, "response",
                               resp ? json_object_new_string_len(resp, (int)resp_len) : NULL);
        json_object_object_add(rep, "error",
                               call->error ? json_object_new_string(call->error) : NULL);
        json_object_object_add(rep, "retry_after_us", json_object_new_int64(call->retry_after_us));
    } else if (strcmp(fn, "http") == 0) {
        json_object *hs;
        size_t nh =
            json_object_object_get_ex(req, "headers", &hs) ? json_object_array_length(hs) : 0;
        const char **headers = calloc(nh ? nh : 1, sizeof *headers);
        for (size_t i = 0; headers && i < nh; i++)
            headers[i] = json_object_get_string(json_object_array_get_idx(hs, i));
        const char *body = fr__wire_str(req, "body");
        fr_http_request hr = {.struct_size = sizeof hr,
                              .method = fr__wire_str(req, "method"),
                              .url = fr__wire_str(req, "url"),
                              .headers = headers,
                              .n_headers = headers ? nh : 0,
                              .body = body,
                              .body_len = body ? strlen(body) : 0,
                              .timeout_us = fr__wire_int(req, "timeout_us", 0),
                              .n_secret_headers = (size_t)fr__wire_int(req, "n_secret_headers", 0),
                              .ca_file = fr__wire_str(req, "ca_file")};
        /* A streaming request: the helper feeds its plugin's on_body once the response
         * is here; asking for the body this way also brings (and records) what arrived
         * before a failure. */
        if (fr__wire_int(req, "stream", 0))
            hr.on_body = accept_body;
        fr_http_response resp = {0};
        fr_status st = hr.method && hr.url ? host->http(call, &hr, &resp) : FR_E_INVALID;
        free(headers);
        json_object_object_add(rep, "status", json_object_new_int(st));
        json_object_object_add(rep, "http_status", json_object_new_int(resp.status));
        json_object_object_add(
            rep, "headers",
            resp.headers ? json_object_new_string_len(resp.headers, (int)resp.headers_len) : NULL);
        json_object_object_add(rep, "body",
                               resp.body ? json_object_new_string_len(resp.body, (int)resp.body_len)
                                         : NULL);
        json_object_object_add(rep, "error",
                               call->error ? json_object_new_string(call->error) : NULL);
    } else if (strcmp(fn, "lease_acquire") == 0) {
        uint64_t token = 0;
        fr_status st =
            host->lease_acquire(call, fr__wire_str(req, "key"), fr__wire_int(req, "ttl_us", 0),
                                fr__wire_int(req, "wait_us", 0), &token);
        json_object_object_add(rep, "status", json_object_new_int(st));
        json_object_object_add(rep, "fencing_token", json_object_new_uint64(token));
    } else if (strcmp(fn, "idempotency_key") == 0) {
        const char *k = host->idempotency_key(call);
        json_object_object_add(rep, "value", k ? json_object_new_string(k) : NULL);
    } else if (strcmp(fn, "lease_release") == 0) {
        json_object_object_add(
            rep, "status",
            json_object_new_int(host->lease_release(call, fr__wire_str(req, "key"))));
    } else if (strcmp(fn, "log") == 0) {
        const char *t = fr__wire_str(req, "text");
        host->log(call, (fr_log_level)fr__wire_int(req, "level", FR_LOG_INFO), "%s", t ? t : "");
        json_object_put(rep);
        return NULL; /* no reply */
    } else if (strcmp(fn, "metric") == 0) {
        json_object *v;
        double val = json_object_object_get_ex(req, "value", &v) ? json_object_get_double(v) : 0;
        host->metric(call, fr__wire_str(req, "name"), val);
        json_object_put(rep);
        return NULL;
    }
    return rep;
}

/* Waits for a message from the helper until `kill_at` (monotonic us; 0 = never),
 * watching cancellation.  Returns the message, or NULL with *timed_out set when the
 * deadline passed, or NULL on EOF. */
static json_object *wait_msg(helper *h, fr_call *call, int64_t kill_at, int *timed_out)
{
    *timed_out = 0;
    for (;;) {
        int64_t now = fr__mono_us();
        if (kill_at && now >= kill_at) {
            *timed_out = 1;
            return NULL;
        }
        int wait_ms = 50;
        if (kill_at && (kill_at - now) / 1000 + 1 < wait_ms)
            wait_ms = (int)((kill_at - now) / 1000) + 1;
        struct pollfd pfd = {.fd = h->fd, .events = POLLIN};
        int rc = poll(&pfd, 1, wait_ms);
        if (rc < 0 && errno != EINTR)
            return NULL;
        if (rc > 0)
            return fr__wire_recv(h->fd);
        if (__atomic_load_n(&call->cancel->cancelled, __ATOMIC_ACQUIRE)) {
            /* Give a cooperative plugin the grace period to notice, then kill. */
            int64_t grace = now + FR_HANG_GRACE_US;
            if (!kill_at || grace < kill_at)
                kill_at = grace;
        }
    }
}

/* Starts a helper for the instance and initialises the plugin in it. */
static helper *helper_start(fr_call *call, char **why)
{
    const fr_instance *inst = call->inst;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        *why = fr__xasprintf("cannot create a socketpair for the helper: %s", strerror(errno));
        slot_release();
        return NULL;
    }
    char exe[PATH_MAX];
    const char *path = helper_exe(exe, sizeof exe);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], FR_HELPER_FD);
    char *argv[] = {(char *)"fluxroute", (char *)"__plugin-helper", NULL};
    char *asan_opts = NULL;
    char **env = helper_env(&asan_opts);
    pid_t pid;
    int rc = env ? posix_spawn(&pid, path, &fa, NULL, argv, env) : ENOMEM;
    posix_spawn_file_actions_destroy(&fa);
    free(asan_opts);
    free(env);
    close(sv[1]);
    if (rc != 0) {
        close(sv[0]);
        *why = fr__xasprintf("cannot start helper %s: %s", path, strerror(rc));
        slot_release();
        return NULL;
    }
    helper *h = calloc(1, sizeof *h);
    if (!h) {
        close(sv[0]);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        *why = strdup("out of memory");
        slot_release();
        return NULL;
    }
    h->pid = pid;
    h->fd = sv[0];

    json_object *init = fr__wire_msg("init");
    json_object_object_add(init, "plugin", json_object_new_string(inst->plugin->path));
    json_object *cfg = NULL;
    if (inst->agent_cfg && inst->agent_cfg->config)
        fr__ynode_to_json_ex(inst->agent_cfg->config, &cfg);
    json_object_object_add(init, "config", cfg);
    if (helper_memory)
        json_object_object_add(init, "memory_limit", json_object_new_int64((int64_t)helper_memory));
    if (fr__wire_send(h->fd, init) != 0) {
        helper_death(h, why);
        return NULL;
    }
    int64_t kill_at = fr__mono_us() + 10 * 1000000; /* loading a plugin takes no longer */
    for (;;) {
        int timed_out;
        json_object *m = wait_msg(h, call, kill_at, &timed_out);
        if (!m) {
            if (timed_out) {
                helper_kill(h);
                *why = strdup("plugin helper did not start within 10s");
                return NULL;
            }
            helper_death(h, why);
            return NULL;
        }
        const char *op = fr__wire_str(m, "op");
        if (op && strcmp(op, "host") == 0) {
            json_object *rep = serve_host_call(call, m);
            json_object_put(m);
            if (rep && fr__wire_send(h->fd, rep) != 0) {
                helper_death(h, why);
                return NULL;
            }
            continue;
        }
        if (op && strcmp(op, "ready") == 0) {
            json_object_put(m);
            return h;
        }
        const char *e = fr__wire_str(m, "message");
        *why = fr__xasprintf("plugin failed to start in its helper: %s", e ? e : "unknown error");
        json_object_put(m);
        helper_kill(h);
        return NULL;
    }
}

fr_status fr__isolated_invoke(fr_call *call, const char *input, size_t input_len, char **out,
                              size_t *out_len)
{
    const fr_host_api *host = fr__host_api();
    fr_instance *inst = (fr_instance *)call->inst;
    helper_pool *hp = pool_of(inst);
    if (!hp)
        return FR_E_NOMEM;
    pthread_mutex_lock(&helpers_mu);
    helper *h = hp->idle;
    if (h)
        idle_take(h);
    pthread_mutex_unlock(&helpers_mu);
    char *why = NULL;
    if (!h) {
        fr_status st = slot_acquire(call, &why);
        if (st != FR_OK) {
            host->set_error(call, "%s", why ? why : "no plugin helper process free");
            free(why);
            return st;
        }
    }
    if (!h && !(h = helper_start(call, &why))) {
        host->set_error(call, "%s", why ? why : "cannot start the plugin helper");
        free(why);
        return FR_E_CRASHED;
    }

    json_object *inv = fr__wire_msg("invoke");
    json_object_object_add(inv, "step", json_object_new_string(call->step_id));
    json_object_object_add(inv, "attempt", json_object_new_int(call->attempt));
    json_object_object_add(inv, "input", json_object_new_string_len(input, (int)input_len));
    if (fr__wire_send(h->fd, inv) != 0) {
        fr_status st = helper_death(h, &why);
        host->set_error(call, "%s", why ? why : "helper died");
        free(why);
        return st;
    }
    /* Past its deadline (plus grace) the helper is killed. */
    fr_status dl_status;
    int64_t att = call->attempt_deadline_mono, run = call->cancel->run_deadline_mono;
    int64_t deadline = att;
    dl_status = FR_E_TIMEOUT;
    if (run && (!att || run < att)) {
        deadline = run;
        dl_status = FR_E_DEADLINE_EXCEEDED;
    }
    int64_t kill_at = deadline ? deadline + FR_HANG_GRACE_US : 0;
    for (;;) {
        int timed_out;
        json_object *m = wait_msg(h, call, kill_at, &timed_out);
        if (!m) {
            if (timed_out || __atomic_load_n(&call->cancel->cancelled, __ATOMIC_ACQUIRE)) {
                helper_kill(h);
                int cancelled = call->cancel->cancelled;
                fr_status st =
                    timed_out && !cancelled ? dl_status : fr__cancel_reason(call->cancel);
                json_object *killed = fr__effect_new("killed");
                json_object_object_add(killed, "status", fr__status_json(st));
                fr__effect_add(call, killed);
                host->set_error(call, "plugin helper process did not return %s; killed (SIGKILL)",
                                cancelled ? "after cancellation" : "by its deadline");
                return st;
            }
            fr_status st = helper_death(h, &why);
            host->set_error(call, "%s", why ? why : "helper died");
            free(why);
            return st;
        }
        const char *op = fr__wire_str(m, "op");
        if (op && strcmp(op, "host") == 0) {
            json_object *rep = serve_host_call(call, m);
            json_object_put(m);
            if (rep && fr__wire_send(h->fd, rep) != 0) {
                fr_status st = helper_death(h, &why);
                host->set_error(call, "%s", why ? why : "helper died");
                free(why);
                return st;
            }
            continue;
        }
        if (!op || strcmp(op, "result") != 0) {
            json_object_put(m);
            helper_kill(h);
            host->set_error(call, "plugin helper sent an unexpected message");
            return FR_E_CRASHED;
        }
        fr_status st = (fr_status)fr__wire_int(m, "status", FR_E_CRASHED);
        const char *err = fr__wire_str(m, "error");
        if (err)
            host->set_error(call, "%s", err);
        int64_t ra = fr__wire_int(m, "retry_after_us", 0);
        if (ra > 0)
            host->set_retry_after(call, ra);
        fr_status result = st;
        if (st == FR_OK) {
            json_object *ov;
            const char *o = NULL;
            size_t olen = 0;
            if (json_object_object_get_ex(m, "output", &ov) &&
                json_object_is_type(ov, json_type_string)) {
                o = json_object_get_string(ov);
                olen = (size_t)json_object_get_string_len(ov);
            }
            if (!o || !fr__json_valid(o, olen)) {
                host->set_error(call, "plugin \"%s\" returned output that is not valid JSON",
                                inst->plugin->name);
                result = FR_E_BAD_RESPONSE;
            } else if (!(*out = malloc(olen + 1))) {
                result = FR_E_NOMEM;
            } else {
                memcpy(*out, o, olen);
                (*out)[olen] = '\0';
                *out_len = olen;
            }
        }
        json_object_put(m);
        /* A clean attempt: keep the helper for the next one. */
        pthread_mutex_lock(&helpers_mu);
        idle_push(hp, h);
        pthread_mutex_unlock(&helpers_mu);
        return result;
    }
}

void fr__isolation_shutdown(fr_instance *inst)
{
    helper_pool *hp = inst->helpers;
    if (!hp)
        return;
    for (;;) {
        pthread_mutex_lock(&helpers_mu);
        helper *h = hp->idle;
        if (h)
            idle_take(h);
        pthread_mutex_unlock(&helpers_mu);
        if (!h)
            break;
        /* EOF tells the helper to finalise the plugin and exit; do not wait forever. */
        shutdown(h->fd, SHUT_WR);
        struct pollfd pfd = {.fd = h->fd, .events = POLLIN};
        if (poll(&pfd, 1, 1000) <= 0)
            kill(h->pid, SIGKILL);
        close(h->fd);
        while (waitpid(h->pid, NULL, 0) < 0 && errno == EINTR) {
        }
        free(h);
        slot_release();
    }
    free(hp);
    inst->helpers = NULL;
}
