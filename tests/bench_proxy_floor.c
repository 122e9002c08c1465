/* bench_proxy_floor: an anchor of tests/bench_gateway.sh, not part of FluxRoute.  The
 * smallest event-driven pass-through that can be built from serve's own libraries: THREADS
 * threads each run one loop (epoll) that drives a libmicrohttpd daemon in external mode and
 * a libcurl multi handle together, each daemon on a listening socket of its own (one port,
 * SO_REUSEPORT).  Every request's body and Authorization header go to UPSTREAM as a POST on
 * a kept-alive connection, and its status and body come back; nothing else is done per
 * request (no parsing, no run, no record).  A request wakes its loop twice: for the request
 * and for the vendor's answer.  So what it adds to calling the vendor directly is the floor
 * of serve's design made event-driven, on this machine.
 *
 * Listens on 127.0.0.1, an ephemeral port, which it prints as "port N"; runs until killed.
 *
 *   bench_proxy_floor UPSTREAM_URL [THREADS] */
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <microhttpd.h>

#define MAX_THREADS  16
#define MAX_BODY     (1 << 20)
#define IDLE_HANDLES 256
#define TAG_DAEMON   UINT64_MAX /* the epoll tag of the daemon's own epoll fd */
#define NO_DEADLINE  INT64_MAX

static const char *upstream;

typedef struct buffer {
    char *p;
    size_t n, cap;
} buffer;

/* One thread's loop: its daemon, its transfers, and their timer (libcurl's). */
typedef struct loop {
    int ep;
    struct MHD_Daemon *daemon;
    CURLM *multi;
    int64_t curl_deadline_ms; /* NO_DEADLINE: none */
    CURL *idle[IDLE_HANDLES]; /* easy handles kept for reuse (their buffers stay warm) */
    int n_idle;
} loop;

/* One request, from its first header to its answer. */
typedef struct request {
    loop *l;
    struct MHD_Connection *c;
    buffer in, out;
    CURL *easy;
    struct curl_slist *headers;
    int sent, too_big;
} request;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int append(buffer *b, const char *data, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

static size_t on_upstream_data(char *p, size_t size, size_t n, void *ud)
{
    return append(ud, p, size * n) == 0 ? size * n : 0;
}

/* libcurl's sockets join the loop's epoll set, tagged with their descriptor. */
static int on_curl_socket(CURL *e, curl_socket_t s, int what, void *ud, void *sockp)
{
    (void)e;
    (void)sockp;
    loop *l = ud;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(l->ep, EPOLL_CTL_DEL, s, NULL);
        return 0;
    }
    struct epoll_event ev = {.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) |
                                       (what & CURL_POLL_OUT ? EPOLLOUT : 0u),
                             .data.u64 = (uint64_t)s};
    if (epoll_ctl(l->ep, EPOLL_CTL_MOD, s, &ev) != 0)
        epoll_ctl(l->ep, EPOLL_CTL_ADD, s, &ev);
    return 0;
}

static int on_curl_timer(CURLM *m, long ms, void *ud)
{
    (void)m;
    ((loop *)ud)->curl_deadline_ms = ms < 0 ? NO_DEADLINE : now_ms() + ms;
    return 0;
}

static enum MHD_Result answer_now(struct MHD_Connection *c, unsigned status, const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

/* Collects the body; at its end, starts the upstream transfer and suspends the
 * connection until the transfer's end (finish_transfers) queues the answer. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **ctx)
{
    (void)url;
    (void)method;
    (void)version;
    loop *l = cls;
    request *r = *ctx;
    if (!r) {
        if (!(r = calloc(1, sizeof *r)))
            return MHD_NO;
        r->l = l;
        r->c = c;
        *ctx = r;
        return MHD_YES;
    }
    if (*size) {
        r->too_big |= r->in.n + *size > MAX_BODY || append(&r->in, data, *size) != 0;
        *size = 0;
        return MHD_YES;
    }
    if (r->too_big)
        return answer_now(c, 413, "{\"error\":\"the body is over 1 MiB\"}");
    if (r->sent)
        return MHD_YES;
    r->sent = 1;
    CURL *e = l->n_idle ? l->idle[--l->n_idle] : curl_easy_init();
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    char line[1024];
    snprintf(line, sizeof line, "Authorization: %s", auth ? auth : "");
    struct curl_slist *h = curl_slist_append(NULL, line);
    if (h)
        h = curl_slist_append(h, "Content-Type: application/json");
    if (h)
        h = curl_slist_append(h, "Expect:");
    if (!e || !h) {
        curl_slist_free_all(h);
        if (e)
            curl_easy_cleanup(e);
        return answer_now(c, 500, "{\"error\":\"out of memory\"}");
    }
    r->easy = e;
    r->headers = h;
    curl_easy_setopt(e, CURLOPT_URL, upstream);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->in.p ? r->in.p : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)r->in.n);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_upstream_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &r->out);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
    MHD_suspend_connection(c);
    curl_multi_add_handle(l->multi, e);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **ctx,
                         enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)c;
    (void)why;
    request *r = *ctx;
    if (!r)
        return;
    free(r->in.p);
    free(r->out.p);
    free(r);
    *ctx = NULL;
}

/* Answers the requests whose upstream transfer ended: the answer is queued on the
 * suspended connection, which is then resumed (the daemon sends it on its next run).
 * Returns how many were resumed. */
static int finish_transfers(loop *l)
{
    CURLMsg *m;
    int left, resumed = 0;
    while ((m = curl_multi_info_read(l->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *e = m->easy_handle;
        CURLcode rc = m->data.result;
        request *r = NULL;
        long status = 502;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
        if (rc == CURLE_OK)
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(l->multi, e);
        curl_slist_free_all(r->headers);
        r->headers = NULL;
        if (l->n_idle < IDLE_HANDLES)
            l->idle[l->n_idle++] = e;
        else
            curl_easy_cleanup(e);
        struct MHD_Response *resp =
            rc == CURLE_OK ? MHD_create_response_from_buffer(
                                 r->out.n, r->out.p ? r->out.p : (char *)"", MHD_RESPMEM_MUST_COPY)
                           : MHD_create_response_from_buffer(strlen(curl_easy_strerror(rc)),
                                                             (void *)curl_easy_strerror(rc),
                                                             MHD_RESPMEM_PERSISTENT);
        if (resp) {
            MHD_add_response_header(resp, "Content-Type", "application/json");
            MHD_queue_response(r->c, (unsigned)status, resp);
            MHD_destroy_response(resp);
        }
        MHD_resume_connection(r->c); /* without an answer, the daemon closes it */
        resumed++;
    }
    return resumed;
}

/* The daemon runs only when its epoll fd is ready, a connection was resumed, or its own
 * timeout is due; libcurl's due timer is served before sleeping: each avoids a system call
 * per request (MHD_run waits on the daemon's epoll set itself). */
static void *loop_main(void *arg)
{
    loop *l = arg;
    struct epoll_event evs[64];
    int run_daemon = 1, running;
    for (;;) {
        if (l->curl_deadline_ms != NO_DEADLINE && now_ms() >= l->curl_deadline_ms) {
            l->curl_deadline_ms = NO_DEADLINE; /* the action may set a new one */
            curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        if (finish_transfers(l))
            run_daemon = 1;
        if (run_daemon) {
            run_daemon = 0;
            MHD_run(l->daemon);
            continue; /* it may have started transfers */
        }
        MHD_UNSIGNED_LONG_LONG mhd_ms;
        int64_t wait = -1;
        if (MHD_get_timeout(l->daemon, &mhd_ms) == MHD_YES)
            wait = (int64_t)mhd_ms;
        int mhd_due = wait >= 0;
        if (l->curl_deadline_ms != NO_DEADLINE) {
            int64_t d = l->curl_deadline_ms - now_ms();
            if (d < 0)
                d = 0;
            if (wait < 0 || d < wait) {
                wait = d;
                mhd_due = 0;
            }
        }
        int n = epoll_wait(l->ep, evs, 64, wait > 60000 ? 60000 : (int)wait);
        if (n == 0 && mhd_due)
            run_daemon = 1;
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == TAG_DAEMON) {
                run_daemon = 1;
                continue;
            }
            uint32_t ev = evs[i].events;
            int flags = (ev & EPOLLIN ? CURL_CSELECT_IN : 0) |
                        (ev & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                        (ev & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
            curl_multi_socket_action(l->multi, (curl_socket_t)evs[i].data.u64, flags, &running);
        }
    }
    return NULL;
}

static int fail(const char *what)
{
    fprintf(stderr, "bench_proxy_floor: %s\n", what);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3)
        return fail("usage: bench_proxy_floor UPSTREAM_URL [THREADS]");
    upstream = argv[1];
    int threads = argc == 3 ? atoi(argv[2]) : 2;
    if (threads < 1 || threads > MAX_THREADS)
        return fail("THREADS must be 1 to 16");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return fail("curl_global_init failed");
    /* A listening socket per loop on one port (SO_REUSEPORT): the kernel spreads new
     * connections over the loops, where one shared socket lets the first loop to wake
     * accept a burst of them all. */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ls[MAX_THREADS];
    for (int i = 0; i < threads; i++) {
        socklen_t alen = sizeof a;
        int one = 1;
        ls[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (ls[i] < 0 || setsockopt(ls[i], SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
            bind(ls[i], (struct sockaddr *)&a, sizeof a) != 0 || listen(ls[i], 1024) != 0 ||
            getsockname(ls[i], (struct sockaddr *)&a, &alen) != 0)
            return fail("cannot listen on 127.0.0.1");
    }
    pthread_t th[MAX_THREADS];
    for (int i = 0; i < threads; i++) {
        loop *l = calloc(1, sizeof *l);
        if (!l)
            return fail("out of memory");
        l->curl_deadline_ms = NO_DEADLINE;
        l->ep = epoll_create1(EPOLL_CLOEXEC);
        l->daemon =
            MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL,
                             NULL, on_request, l, MHD_OPTION_LISTEN_SOCKET, ls[i],
                             MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
        const union MHD_DaemonInfo *di =
            l->daemon ? MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_DAEMON};
        if (l->ep < 0 || !di || epoll_ctl(l->ep, EPOLL_CTL_ADD, di->epoll_fd, &ev) != 0)
            return fail("cannot start a libmicrohttpd daemon in external epoll mode");
        if (!(l->multi = curl_multi_init()))
            return fail("curl_multi_init failed");
        curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
        curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
        curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
        curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
        curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, (long)IDLE_HANDLES);
        if (pthread_create(&th[i], NULL, loop_main, l) != 0)
            return fail("cannot start a thread");
    }
    printf("port %u\n", (unsigned)ntohs(a.sin_port));
    fflush(stdout);
    pthread_join(th[0], NULL);
    return 0;
}
