/* The loop server (core/http/http_loop.h): its handlers answer at once, from a libcurl
 * transfer's end, from a timer, and after a resume from another thread; the loop keeps
 * serving while a connection waits; fr_async is the loop's on its threads only; quiesce
 * refuses new connections while an open one is still served; stop frees everything
 * (valgrind, ASan).
 *
 * Every handler records what it saw in its answer's body, and the test thread checks the
 * bodies: CUnit's assertions are not for the loops' threads. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <curl/curl.h>

#include "base/async.h"
#include "base/clock.h"
#include "http/http.h"
#include "http/http_loop.h"
#include "fr_test.h"

#define TIMER_US 50000

/* The URL a transfer goes to (the backend, or a port where nothing listens). */
static char backend_url[128], closed_url[128];
/* Set by a handler once its connection is suspended on the timer; by the timer's fn. */
static atomic_int timer_armed, timer_fired;

/* A body libcurl received (the transfers' on the loops, the test's own requests). */
typedef struct received {
    char s[512];
    size_t len;
} received;

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    received *t = ud;
    size_t k = size * n;
    if (t->len + k >= sizeof t->s)
        return 0;
    memcpy(t->s + t->len, p, k);
    t->len += k;
    t->s[t->len] = '\0';
    return k;
}

typedef struct request {
    struct MHD_Connection *c;
    int started;
    CURL *easy;            /* the transfer's handle */
    received body;         /* what the transfer brought */
    int transfer_returned; /* transfer() had returned when done ran */
    pthread_t loop_thread;
    int64_t t0;
    char order[8];     /* the timers that fired, in order */
    _Atomic int ready; /* another thread resumed the connection */
    pthread_t other;
} request;

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

/* A transfer's end: answers with what it brought and whether the loop kept its promises
 * (done on the loop's thread, after transfer() returned, the handle out of the multi). */
static void transfer_done(void *ud, int rc)
{
    request *rq = ud;
    char text[sizeof rq->body.s + 64];
    snprintf(text, sizeof text, "rc=%d body=%s returned=%d same_thread=%d", rc, rq->body.s,
             rq->transfer_returned, pthread_equal(pthread_self(), rq->loop_thread) != 0);
    /* The handle is the request's: done may clean it up (it left the multi handle). */
    curl_easy_cleanup(rq->easy);
    rq->easy = NULL;
    answer(rq->c, 200, text);
    MHD_resume_connection(rq->c);
}

static void timer_fn(void *ud)
{
    request *rq = ud;
    char text[64];
    atomic_store(&timer_fired, 1);
    snprintf(text, sizeof text, "waited=%lld", (long long)(fr__mono_us() - rq->t0));
    answer(rq->c, 200, text);
    MHD_resume_connection(rq->c);
}

/* Timers armed out of order: they fire by deadline, and in arming order on one deadline. */
static void order_fn(void *ud, char tag)
{
    request *rq = ud;
    size_t n = strlen(rq->order);
    rq->order[n] = tag;
    if (n + 1 == 4) {
        answer(rq->c, 200, rq->order);
        MHD_resume_connection(rq->c);
    }
}
static void order_a(void *ud)
{
    order_fn(ud, 'a');
}
static void order_b(void *ud)
{
    order_fn(ud, 'b');
}
static void order_B(void *ud)
{
    order_fn(ud, 'B');
}
static void order_c(void *ud)
{
    order_fn(ud, 'c');
}

static void *resume_elsewhere(void *arg)
{
    request *rq = arg;
    struct timespec ts = {0, 5 * 1000 * 1000}; /* the loop is back in epoll_wait by then */
    nanosleep(&ts, NULL);
    atomic_store(&rq->ready, 1);
    fr__http_resume(rq->c);
    return NULL;
}

static int start_transfer(request *rq, const fr_async *a, const char *url)
{
    CURL *e = curl_easy_init();
    if (!e)
        return -1;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &rq->body);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    rq->easy = e;
    if (a->transfer(a->ctx, e, transfer_done, rq) != 0) {
        curl_easy_cleanup(e);
        rq->easy = NULL;
        return -1;
    }
    rq->transfer_returned = 1;
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **ctx)
{
    (void)cls;
    (void)method;
    (void)version;
    (void)data;
    request *rq = *ctx;
    if (!rq) {
        if (!(rq = calloc(1, sizeof *rq)))
            return MHD_NO;
        rq->c = c;
        rq->loop_thread = pthread_self();
        *ctx = rq;
        return MHD_YES;
    }
    *size = 0;
    const fr_async *a = fr__async_current();
    if (strcmp(url, "/other") == 0 && atomic_load(&rq->ready))
        return answer(c, 200, "resumed");
    if (rq->started)
        return MHD_YES;
    rq->started = 1;
    if (!a)
        return answer(c, 500, "no fr_async on a loop thread");
    if (strcmp(url, "/now") == 0) {
        return answer(c, 200, "now");
    }
    if (strcmp(url, "/transfer") == 0 || strcmp(url, "/refused") == 0) {
        MHD_suspend_connection(c);
        if (start_transfer(rq, a, url[1] == 't' ? backend_url : closed_url) != 0) {
            MHD_resume_connection(c);
            return answer(c, 500, "transfer refused");
        }
        return MHD_YES;
    }
    if (strcmp(url, "/timer") == 0) {
        MHD_suspend_connection(c);
        rq->t0 = fr__mono_us();
        if (a->timer(a->ctx, rq->t0 + TIMER_US, timer_fn, rq) != 0) {
            MHD_resume_connection(c);
            return answer(c, 500, "timer refused");
        }
        atomic_store(&timer_armed, 1);
        return MHD_YES;
    }
    if (strcmp(url, "/order") == 0) {
        int64_t t = fr__mono_us();
        MHD_suspend_connection(c);
        a->timer(a->ctx, t + 30000, order_c, rq);
        a->timer(a->ctx, t + 10000, order_a, rq);
        a->timer(a->ctx, t + 20000, order_b, rq);
        a->timer(a->ctx, t + 20000, order_B, rq);
        return MHD_YES;
    }
    if (strcmp(url, "/other") == 0) {
        MHD_suspend_connection(c);
        if (pthread_create(&rq->other, NULL, resume_elsewhere, rq) != 0) {
            MHD_resume_connection(c);
            return answer(c, 500, "no thread");
        }
        return MHD_YES;
    }
    return answer(c, 404, "unknown");
}

static void on_completed(void *cls, struct MHD_Connection *c, void **ctx,
                         enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)c;
    (void)why;
    request *rq = *ctx;
    if (!rq)
        return;
    if (rq->other)
        pthread_join(rq->other, NULL);
    free(rq);
    *ctx = NULL;
}

/* The transfers' end point: an ordinary server of the module. */
static enum MHD_Result backend(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *size, void **ctx)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)data;
    (void)size;
    if (!*ctx) {
        *ctx = c;
        return MHD_YES;
    }
    return answer(c, 200, "from-backend");
}

/* ---- the test's side ---- */

typedef struct got {
    long status;
    received body;
    int64_t us; /* the request's time */
} got;

static got fetch(const char *base, const char *path)
{
    got g = {0};
    char url[256];
    snprintf(url, sizeof url, "%s%s", base, path);
    CURL *e = curl_easy_init();
    if (!e)
        return g;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &g.body);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    int64_t t0 = fr__mono_us();
    CURLcode cc = curl_easy_perform(e);
    if (cc != CURLE_OK)
        fprintf(stderr, "\n%s: %s\n", url, curl_easy_strerror(cc));
    if (cc == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &g.status);
    g.us = fr__mono_us() - t0;
    curl_easy_cleanup(e);
    return g;
}

typedef struct loop_server {
    fr_http_addr addr;
    fr_http_loops *s;
    char url[128];
} loop_server;

static int server_start(loop_server *ls, unsigned threads)
{
    const char *why;
    if (fr__http_addr_parse("127.0.0.1:0", &ls->addr, &why) != 0)
        return -1;
    fr_http_server_config cfg = {.addr = &ls->addr,
                                 .threads = threads,
                                 .connection_limit = 64,
                                 .connection_timeout_s = 10,
                                 .suspend_resume = 1,
                                 .handler = on_request,
                                 .completed = on_completed};
    if (!(ls->s = fr__http_loops_start(&cfg)))
        return -1;
    fr__http_loops_url(ls->s, &ls->addr, 0, ls->url, sizeof ls->url);
    return 0;
}

static void test_answers(void)
{
    loop_server ls;
    CU_ASSERT_FATAL(server_start(&ls, 2) == 0);
    CU_ASSERT_NSTRING_EQUAL(ls.url, "http://127.0.0.1:", 17);
    CU_ASSERT(atoi(strrchr(ls.url, ':') + 1) > 0);
    CU_ASSERT_PTR_NULL(fr__async_current()); /* not a loop's thread */
    got g = fetch(ls.url, "/now");
    ASSERT_STATUS((int)g.status, 200);
    ASSERT_STR(g.body.s, "now");
    g = fetch(ls.url, "/transfer");
    ASSERT_STATUS((int)g.status, 200);
    ASSERT_STR(g.body.s, "rc=0 body=from-backend returned=1 same_thread=1");
    g = fetch(ls.url, "/refused");
    ASSERT_STATUS((int)g.status, 200);
    char want[64];
    snprintf(want, sizeof want, "rc=%d body= returned=1 same_thread=1", CURLE_COULDNT_CONNECT);
    ASSERT_STR(g.body.s, want);
    g = fetch(ls.url, "/order");
    ASSERT_STR(g.body.s, "abBc");
    g = fetch(ls.url, "/other");
    ASSERT_STATUS((int)g.status, 200);
    ASSERT_STR(g.body.s, "resumed");
    fr__http_loops_stop(ls.s);
}

typedef struct timer_call {
    const char *base;
    got g;
} timer_call;

static void *call_timer(void *arg)
{
    timer_call *t = arg;
    t->g = fetch(t->base, "/timer");
    return NULL;
}

/* Waits until *flag is set, for up to ms; whether it was. */
static int wait_for(atomic_int *flag, int ms)
{
    int64_t end = fr__mono_us() + (int64_t)ms * 1000;
    while (!atomic_load(flag) && fr__mono_us() < end) {
        struct timespec ts = {0, 200 * 1000};
        nanosleep(&ts, NULL);
    }
    return atomic_load(flag);
}

static void test_timer_leaves_loop_free(void)
{
    loop_server ls;
    CU_ASSERT_FATAL(server_start(&ls, 1) == 0);
    atomic_store(&timer_armed, 0);
    atomic_store(&timer_fired, 0);
    timer_call t = {.base = ls.url};
    pthread_t th;
    CU_ASSERT_FATAL(pthread_create(&th, NULL, call_timer, &t) == 0);
    CU_ASSERT(wait_for(&timer_armed, 5000));
    /* The one loop holds a connection on a timer, and answers another meanwhile. */
    got g = fetch(ls.url, "/now");
    ASSERT_STR(g.body.s, "now");
    CU_ASSERT(g.us < 20000);
    CU_ASSERT(!atomic_load(&timer_fired));
    pthread_join(th, NULL);
    ASSERT_STATUS((int)t.g.status, 200);
    CU_ASSERT_NSTRING_EQUAL(t.g.body.s, "waited=", 7);
    long long waited = atoll(t.g.body.s + 7);
    if (waited < TIMER_US)
        fprintf(stderr, "\ntimer fired after %lld us\n", waited);
    CU_ASSERT(waited >= TIMER_US);
    CU_ASSERT(t.g.us >= TIMER_US);
    fr__http_loops_stop(ls.s);
}

/* ---- quiesce: raw HTTP/1.1 on one kept-alive connection ---- */

static int dial(const loop_server *ls)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *)&ls->addr.sa, ls->addr.len) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Sends GET /now on fd and reads the answer; whether it was a 200 with that body. */
static int get_now(int fd)
{
    const char *req = "GET /now HTTP/1.1\r\nHost: t\r\n\r\n";
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
        return 0;
    char buf[1024];
    size_t n = 0;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (n < sizeof buf - 1) {
        ssize_t k = read(fd, buf + n, sizeof buf - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\nnow"))
            break;
    }
    buf[n] = '\0';
    return strncmp(buf, "HTTP/1.1 200", 12) == 0 && strstr(buf, "\r\n\r\nnow") != NULL;
}

static void test_quiesce(void)
{
    loop_server ls;
    CU_ASSERT_FATAL(server_start(&ls, 2) == 0);
    ((struct sockaddr_in *)&ls.addr.sa)->sin_port = htons((uint16_t)atoi(strrchr(ls.url, ':') + 1));
    int fd = dial(&ls);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(get_now(fd));
    fr__http_loops_quiesce(ls.s);
    fr__http_loops_quiesce(ls.s); /* again: nothing more */
    int fd2 = dial(&ls);
    CU_ASSERT(fd2 < 0 && errno == ECONNREFUSED);
    if (fd2 >= 0)
        close(fd2);
    /* The connection accepted before is still served. */
    CU_ASSERT(get_now(fd));
    close(fd);
    fr__http_loops_stop(ls.s);
}

/* The process's open descriptors. */
static int open_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        n += fcntl(fd, F_GETFD) != -1;
    return n;
}

/* Bad starts fail cleanly: an address in use, a TLS key that is not one (it fails in the
 * first loop's daemon); no descriptor is left open. */
static void test_start_fails(void)
{
    loop_server ls;
    CU_ASSERT_FATAL(server_start(&ls, 2) == 0);
    int fds = open_fds();
    fr_http_addr taken = ls.addr;
    ((struct sockaddr_in *)&taken.sa)->sin_port = htons((uint16_t)atoi(strrchr(ls.url, ':') + 1));
    fr_http_server_config cfg = {.addr = &taken, .threads = 2, .handler = on_request};
    CU_ASSERT_PTR_NULL(fr__http_loops_start(&cfg));
    CU_ASSERT_EQUAL(open_fds(), fds);
    fr_http_tls bad = {.enabled = 1, .cert = "not a certificate", .key = "not a key"};
    cfg =
        (fr_http_server_config){.addr = &ls.addr, .tls = &bad, .threads = 3, .handler = on_request};
    CU_ASSERT_PTR_NULL(fr__http_loops_start(&cfg));
    CU_ASSERT_EQUAL(open_fds(), fds);
    fr__http_loops_stop(ls.s);
    fr__http_loops_stop(NULL);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    fr_http_addr ba;
    const char *why;
    if (fr__http_addr_parse("127.0.0.1:0", &ba, &why) != 0)
        return 1;
    fr_http_server_config bc = {.addr = &ba, .threads = 1, .handler = backend};
    struct MHD_Daemon *b = fr__http_start(&bc);
    if (!b)
        return 1;
    fr__http_url(b, &ba, 0, backend_url, sizeof backend_url);
    strcat(backend_url, "/");
    /* A port where nothing listens: bound, then closed. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        return 1;
    close(fd);
    snprintf(closed_url, sizeof closed_url, "http://127.0.0.1:%u/", ntohs(sa.sin_port));
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("http_loop", NULL, NULL);
    CU_add_test(s, "answers: at once, from a transfer, from timers, resumed elsewhere",
                test_answers);
    CU_add_test(s, "a timer holds its connection, not the loop", test_timer_leaves_loop_free);
    CU_add_test(s, "quiesce refuses new connections and serves open ones", test_quiesce);
    CU_add_test(s, "bad starts fail and leave no descriptor open", test_start_fails);
    int rc = fr_test_run_all();
    MHD_stop_daemon(b);
    curl_global_cleanup();
    return rc;
}
