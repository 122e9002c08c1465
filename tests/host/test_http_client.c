/* The host HTTP client (core/host/http_client.c) keeps one libcurl handle per thread
 * between requests without resetting it: a request must not inherit anything of the one
 * before (method, body, headers, timeout).  One thread sends a sequence of requests whose
 * shapes differ to a server on 127.0.0.1 that answers each with the shape it received:
 * "METHOD PATH cl=CONTENT-LENGTH probe=X-PROBE body=BODY" ("-" for what is absent). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <fluxroute/plugin.h>

#include "base/cancel.h"
#include "host/call.h"
#include "host/http_client.h"

#define SLOW_MS 400 /* how long /slow waits before it answers */

typedef struct shape_server {
    int fd, port;
    pthread_t thread;
    pthread_mutex_t mu;
    int conn, stopped; /* the connection being served (-1: none); shape_stop was called */
} shape_server;

/* The value of header `name` in the request head `head` (copied into out), or "-". */
static void header_value(const char *head, const char *name, char *out, size_t size)
{
    size_t n = strlen(name);
    snprintf(out, size, "-");
    for (const char *l = strstr(head, "\r\n"); l && l[2]; l = strstr(l + 2, "\r\n")) {
        const char *h = l + 2;
        if (strncasecmp(h, name, n) == 0 && h[n] == ':') {
            const char *v = h + n + 1, *e = strstr(v, "\r\n");
            while (*v == ' ')
                v++;
            snprintf(out, size, "%.*s", (int)(e ? e - v : (long)strlen(v)), v);
            return;
        }
    }
}

/* Serves one connection until the client closes it: one answer per request. */
static void serve_connection(int c)
{
    char buf[8192];
    size_t got = 0;
    buf[0] = '\0';
    for (;;) {
        char *end;
        while (!(end = strstr(buf, "\r\n\r\n")) || got == 0) {
            ssize_t n = read(c, buf + got, sizeof buf - 1 - got);
            if (n <= 0)
                return;
            got += (size_t)n;
            buf[got] = '\0';
        }
        size_t head_len = (size_t)(end + 4 - buf);
        char method[16] = "", path[256] = "", cl[32], probe[64];
        sscanf(buf, "%15s %255s", method, path);
        char head[4096];
        snprintf(head, sizeof head, "%.*s", (int)head_len, buf);
        header_value(head, "Content-Length", cl, sizeof cl);
        header_value(head, "X-Probe", probe, sizeof probe);
        size_t body_len = strcmp(cl, "-") ? (size_t)atol(cl) : 0;
        while (got < head_len + body_len) {
            ssize_t n = read(c, buf + got, sizeof buf - 1 - got);
            if (n <= 0)
                return;
            got += (size_t)n;
            buf[got] = '\0';
        }
        char answer[512], reply[1024];
        int an = snprintf(answer, sizeof answer, "%s %s cl=%s probe=%s body=%.*s", method, path, cl,
                          probe, body_len ? (int)body_len : 1, body_len ? buf + head_len : "-");
        int rn = snprintf(reply, sizeof reply, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s",
                          an, answer);
        memmove(buf, buf + head_len + body_len, got - head_len - body_len + 1);
        got -= head_len + body_len;
        if (strcmp(path, "/slow") == 0) {
            struct timespec ts = {0, SLOW_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (send(c, reply, (size_t)rn, MSG_NOSIGNAL) != rn)
            return;
    }
}

static void *shape_main(void *arg)
{
    shape_server *s = arg;
    for (;;) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            return NULL; /* the test shut the socket down */
        pthread_mutex_lock(&s->mu);
        int stopped = s->stopped;
        s->conn = stopped ? -1 : c;
        pthread_mutex_unlock(&s->mu);
        if (!stopped)
            serve_connection(c);
        pthread_mutex_lock(&s->mu);
        s->conn = -1;
        pthread_mutex_unlock(&s->mu);
        close(c);
        if (stopped)
            return NULL;
    }
}

static int shape_start(shape_server *s)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->fd, 8) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    s->port = ntohs(a.sin_port);
    pthread_mutex_init(&s->mu, NULL);
    s->conn = -1;
    s->stopped = 0;
    return pthread_create(&s->thread, NULL, shape_main, s) == 0 ? 0 : -1;
}

/* The client's cache keeps its connection open: the server ends it. */
static void shape_stop(shape_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->stopped = 1;
    if (s->conn >= 0)
        shutdown(s->conn, SHUT_RDWR); /* read() returns */
    pthread_mutex_unlock(&s->mu);
    shutdown(s->fd, SHUT_RDWR); /* accept() returns */
    pthread_join(s->thread, NULL);
    close(s->fd);
    pthread_mutex_destroy(&s->mu);
}

typedef struct step {
    const char *method, *path, *probe, *body; /* probe: X-Probe's value, or NULL */
    int64_t timeout_us;
    fr_status want;
    const char *answer; /* the shape the server must have seen (when want is FR_OK) */
} step;

/* Each request differs from the one before in what a stale option would carry over. */
static const step steps[] = {
    {"POST", "/a", "one", "abc", 0, FR_OK, "POST /a cl=3 probe=one body=abc"},
    /* no method, body or header of the POST */
    {"GET", "/b", NULL, NULL, 0, FR_OK, "GET /b cl=- probe=- body=-"},
    {"POST", "/c", "two", "defg", 0, FR_OK, "POST /c cl=4 probe=two body=defg"},
    /* a method other than GET without a body: still no body */
    {"DELETE", "/d", NULL, NULL, 0, FR_OK, "DELETE /d cl=- probe=- body=-"},
    {"PUT", "/e", "three", "xyz", 0, FR_OK, "PUT /e cl=3 probe=three body=xyz"},
    {"POST", "/f", NULL, "", 0, FR_OK, "POST /f cl=0 probe=- body=-"},
    /* a short timeout, then none: the second request waits for the slow answer */
    {"GET", "/slow", NULL, NULL, 50000, FR_E_TIMEOUT, NULL},
    {"GET", "/slow", "four", NULL, 0, FR_OK, "GET /slow cl=- probe=four body=-"},
    {"POST", "/g", NULL, "h", 0, FR_OK, "POST /g cl=1 probe=- body=h"},
};

static void test_handle_reuse(void)
{
    shape_server srv;
    CU_ASSERT_EQUAL_FATAL(shape_start(&srv), 0);
    fr_instance inst = {.id = "http_client"};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        const step *sp = &steps[i];
        fr_cancel *cancel = fr__cancel_new();
        CU_ASSERT_PTR_NOT_NULL_FATAL(cancel);
        fr_arena arena = {0};
        fr_call call;
        fr__call_init(&call, cancel, &inst, "http", 1, 0, 1, &arena);
        char url[128], probe[64];
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", srv.port, sp->path);
        const char *headers[1];
        size_t nh = 0;
        if (sp->probe) {
            snprintf(probe, sizeof probe, "X-Probe: %s", sp->probe);
            headers[nh++] = probe;
        }
        fr_http_request req = {
            .struct_size = sizeof req,
            .method = sp->method,
            .url = url,
            .headers = headers,
            .n_headers = nh,
            .body = sp->body,
            .body_len = sp->body ? strlen(sp->body) : 0,
            .timeout_us = sp->timeout_us,
        };
        fr_http_response resp = {0};
        fr_status st = fr__http_perform(&call, &req, &resp);
        if (st != sp->want || (sp->answer && (!resp.body || strcmp(resp.body, sp->answer) != 0)))
            fprintf(stderr, "step %zu (%s %s): %s, answer \"%s\" (want %s, \"%s\")%s%s\n", i,
                    sp->method, sp->path, fr_status_name(st), resp.body ? resp.body : "",
                    fr_status_name(sp->want), sp->answer ? sp->answer : "", call.error ? ": " : "",
                    call.error ? call.error : "");
        CU_ASSERT_EQUAL(st, sp->want);
        if (sp->answer) {
            CU_ASSERT_EQUAL(resp.status, 200);
            CU_ASSERT_STRING_EQUAL(resp.body ? resp.body : "", sp->answer);
        }
        fr__call_done(&call);
        fr__arena_free(&arena);
        fr__cancel_unref(cancel);
    }
    shape_stop(&srv);
}

int main(void)
{
    fr__http_global_init();
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("http_client", NULL, NULL);
    CU_add_test(s, "one thread's handle: no option outlives its request", test_handle_reuse);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
