/* The loop server (core/http/http_loop.h): request threads that are event loops, each
 * driving a libmicrohttpd daemon in external epoll mode and a libcurl multi handle from
 * one epoll set, and running the transfers and timers of fr_async (base/async.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "base/async.h"
#include "base/clock.h"
#include "http/http_loop.h"

/* The epoll tags of the daemon's epoll fd and the loop's eventfd; libcurl's sockets are
 * tagged with their descriptor, which never reaches these. */
#define TAG_DAEMON  UINT64_MAX
#define TAG_WAKE    (UINT64_MAX - 1)
#define NO_DEADLINE INT64_MAX

typedef struct loop_timer {
    int64_t at_us;
    uint64_t seq; /* the order of arming: equal deadlines fire in that order */
    void (*fn)(void *ud);
    void *ud;
} loop_timer;

typedef struct loop_transfer {
    CURL *easy;
    void (*done)(void *ud, int rc);
    void *ud;
} loop_transfer;

/* One request thread; everything in it but the server's flags is touched only by its own
 * thread once the thread runs. */
typedef struct loop {
    fr_http_loops *server;
    pthread_t thread;
    int started;     /* the thread runs (it closes the daemon and the multi handle) */
    int ep, wake_fd; /* the epoll set; the eventfd that wakes the loop from other threads */
    int listen_fd;   /* the daemon's descriptor of the shared listening socket, until quiesced */
    struct MHD_Daemon *daemon;
    CURLM *multi;
    int64_t curl_deadline_us; /* libcurl's timer, or NO_DEADLINE */
    fr_async async;
    loop_timer *timers; /* a min-heap on (at_us, seq) */
    size_t n_timers, cap_timers;
    uint64_t timer_seq;
    loop_transfer *transfers; /* in flight, unordered */
    size_t n_transfers, cap_transfers;
} loop;

struct fr_http_loops {
    int listen_fd; /* ours, until quiesced */
    unsigned port; /* the bound port */
    atomic_int stop, quiesce;
    unsigned n;
    loop loops[];
};

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t cap2 = *cap ? *cap * 2 : 16;
    void *q = realloc(*p, cap2 * size);
    if (!q)
        return -1;
    *p = q;
    *cap = cap2;
    return 0;
}

/* ---- timers: a binary min-heap ---- */

static int timer_before(const loop_timer *a, const loop_timer *b)
{
    return a->at_us < b->at_us || (a->at_us == b->at_us && a->seq < b->seq);
}

static int async_timer(void *ctx, int64_t at_us, void (*fn)(void *ud), void *ud)
{
    loop *l = ctx;
    if (!fn || grow((void **)&l->timers, &l->cap_timers, l->n_timers + 1, sizeof *l->timers) != 0)
        return -1;
    loop_timer t = {at_us, l->timer_seq++, fn, ud};
    size_t i = l->n_timers++;
    while (i > 0 && timer_before(&t, &l->timers[(i - 1) / 2])) {
        l->timers[i] = l->timers[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    l->timers[i] = t;
    return 0;
}

static loop_timer timer_pop(loop *l)
{
    loop_timer top = l->timers[0], last = l->timers[--l->n_timers];
    size_t i = 0, n = l->n_timers;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && timer_before(&l->timers[c + 1], &l->timers[c]))
            c++;
        if (!timer_before(&l->timers[c], &last))
            break;
        l->timers[i] = l->timers[c];
        i = c;
    }
    if (n)
        l->timers[i] = last;
    return top;
}

/* Fires the timers due at now that were armed before this pass: one that a callback arms
 * for a time already past waits for the next pass, so a timer re-arming itself cannot keep
 * the loop from its sockets.  Returns how many fired. */
static int run_timers(loop *l, int64_t now)
{
    uint64_t armed_before = l->timer_seq;
    int fired = 0;
    while (l->n_timers && l->timers[0].at_us <= now && l->timers[0].seq < armed_before) {
        loop_timer t = timer_pop(l);
        t.fn(t.ud);
        fired++;
    }
    return fired;
}

/* ---- transfers: libcurl's multi interface on the loop's epoll set ---- */

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
    if (epoll_ctl(l->ep, EPOLL_CTL_MOD, s, &ev) != 0 &&
        (errno != ENOENT || epoll_ctl(l->ep, EPOLL_CTL_ADD, s, &ev) != 0))
        return -1;
    return 0;
}

static int on_curl_timer(CURLM *m, long ms, void *ud)
{
    (void)m;
    loop *l = ud;
    l->curl_deadline_us = ms < 0 ? NO_DEADLINE : fr__mono_us() + (int64_t)ms * 1000;
    return 0;
}

static int async_transfer(void *ctx, void *easy, void (*done)(void *ud, int rc), void *ud)
{
    loop *l = ctx;
    /* Room first: once libcurl has the handle, the transfer must be remembered. */
    if (!easy || !done ||
        grow((void **)&l->transfers, &l->cap_transfers, l->n_transfers + 1, sizeof *l->transfers) !=
            0 ||
        curl_multi_add_handle(l->multi, easy) != CURLM_OK)
        return -1;
    l->transfers[l->n_transfers++] = (loop_transfer){easy, done, ud};
    return 0;
}

/* Hands the ended transfers to their done, each after its handle left the multi handle
 * (done may clean it up or start it again).  Returns how many ended. */
static int finish_transfers(loop *l)
{
    CURLMsg *m;
    int left, ended = 0;
    while ((m = curl_multi_info_read(l->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *e = m->easy_handle;
        int rc = (int)m->data.result;
        curl_multi_remove_handle(l->multi, e);
        for (size_t i = 0; i < l->n_transfers; i++) {
            if (l->transfers[i].easy != e)
                continue;
            loop_transfer t = l->transfers[i];
            l->transfers[i] = l->transfers[--l->n_transfers];
            t.done(t.ud, rc);
            ended++;
            break;
        }
    }
    return ended;
}

/* ---- the loop ---- */

/* The daemon stops accepting and closes its descriptor of the listening socket.  On the
 * loop's own thread only: MHD_quiesce_daemon and MHD_run both take the listening socket out
 * of the daemon's epoll set, and the one that loses that race aborts the process. */
static void quiesce_daemon(loop *l)
{
    if (l->listen_fd < 0)
        return;
    MHD_socket fd = MHD_quiesce_daemon(l->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    l->listen_fd = -1;
}

/* Stops the daemon and drops the transfers still in flight (their done is not called). */
static void loop_close(loop *l)
{
    if (l->daemon) {
        quiesce_daemon(l); /* the daemon closes its own descriptor of the socket */
        MHD_stop_daemon(l->daemon);
        l->daemon = NULL;
    }
    if (l->multi) {
        for (size_t i = 0; i < l->n_transfers; i++)
            curl_multi_remove_handle(l->multi, l->transfers[i].easy);
        l->n_transfers = 0;
        curl_multi_cleanup(l->multi);
        l->multi = NULL;
    }
}

/* The wait until the earliest of the daemon's timeout, libcurl's timer and the loop's
 * first timer, in milliseconds rounded up (a loop woken early only waits again), or -1
 * for none; *mhd_due_us gets the daemon's deadline. */
static int wait_ms(loop *l, int64_t now, int64_t *mhd_due_us)
{
    MHD_UNSIGNED_LONG_LONG mhd_ms;
    int64_t due = NO_DEADLINE;
    *mhd_due_us = NO_DEADLINE;
    if (MHD_get_timeout(l->daemon, &mhd_ms) == MHD_YES)
        due = *mhd_due_us = mhd_ms > (MHD_UNSIGNED_LONG_LONG)INT_MAX ? now + (int64_t)INT_MAX * 1000
                                                                     : now + (int64_t)mhd_ms * 1000;
    if (l->curl_deadline_us < due)
        due = l->curl_deadline_us;
    if (l->n_timers && l->timers[0].at_us < due)
        due = l->timers[0].at_us;
    if (due == NO_DEADLINE)
        return -1;
    int64_t ms = due <= now ? 0 : (due - now + 999) / 1000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* The daemon runs when its epoll fd is readable (a socket of its own), when its timeout is
 * due, after callbacks of the loop ran, and when the loop is woken (fr__http_resume): a
 * resumed connection is served only in MHD_run, and libmicrohttpd 0.9.75 has no ITC in
 * external mode (MHD_USE_ITC or not) to make its epoll fd readable on a resume. */
static void *loop_main(void *arg)
{
    loop *l = arg;
    fr_http_loops *s = l->server;
    fr__async_set_current(&l->async);
    struct epoll_event evs[64];
    int run_daemon = 1, running;
    while (!atomic_load(&s->stop)) {
        if (atomic_load(&s->quiesce))
            quiesce_daemon(l);
        int64_t now = fr__mono_us();
        if (l->curl_deadline_us != NO_DEADLINE && now >= l->curl_deadline_us) {
            l->curl_deadline_us = NO_DEADLINE; /* the action may set a new one */
            curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        if (finish_transfers(l) + run_timers(l, now) > 0)
            run_daemon = 1;
        if (run_daemon) {
            run_daemon = 0;
            MHD_run(l->daemon);
            continue; /* its handlers may have started transfers or armed timers */
        }
        int64_t mhd_due;
        int n = epoll_wait(l->ep, evs, 64, wait_ms(l, now, &mhd_due));
        for (int i = 0; i < n; i++) {
            uint64_t tag = evs[i].data.u64;
            if (tag == TAG_DAEMON) {
                run_daemon = 1;
            } else if (tag == TAG_WAKE) {
                uint64_t v;
                run_daemon = 1;
                if (read(l->wake_fd, &v, sizeof v) < 0 && errno != EAGAIN)
                    perror("fluxroute: http loop: eventfd");
            } else {
                uint32_t ev = evs[i].events;
                int what = (ev & EPOLLIN ? CURL_CSELECT_IN : 0) |
                           (ev & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                           (ev & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
                curl_multi_socket_action(l->multi, (curl_socket_t)tag, what, &running);
            }
        }
        if (mhd_due != NO_DEADLINE && fr__mono_us() >= mhd_due)
            run_daemon = 1;
    }
    loop_close(l);
    fr__async_set_current(NULL);
    return NULL;
}

static void wake(loop *l)
{
    uint64_t one = 1;
    if (write(l->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
        perror("fluxroute: http loop: eventfd");
}

/* A connection starts on the loop's thread: it knows its loop (fr__http_resume wakes it). */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)c;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        *socket_context = cls;
}

void fr__http_resume(struct MHD_Connection *c)
{
    /* The loop is read while the connection is still suspended: once resumed, its loop may
     * close and free it at any moment. */
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    loop *l = ci ? ci->socket_context : NULL;
    MHD_resume_connection(c);
    if (l)
        wake(l);
}

/* ---- the server ---- */

/* The listening socket, as libmicrohttpd opens its own (address reuse, IPv6 only on an
 * IPv6 address, its backlog); *port gets the bound port.  -1 when it cannot listen. */
static int listen_on(const fr_http_addr *a, unsigned *port)
{
    int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    struct sockaddr_storage bound;
    socklen_t len = sizeof bound;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (a->sa.ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) ||
        bind(fd, (const struct sockaddr *)&a->sa, a->len) != 0 || listen(fd, SOMAXCONN) != 0 ||
        getsockname(fd, (struct sockaddr *)&bound, &len) != 0) {
        close(fd);
        return -1;
    }
    *port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                        : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    return fd;
}

/* Everything of loop l but its thread; -1 when something cannot be made (what was made is
 * undone by loop_close and loop_free). */
static int loop_open(fr_http_loops *s, loop *l, const fr_http_server_config *cfg)
{
    l->server = s;
    l->ep = l->wake_fd = l->listen_fd = -1;
    l->curl_deadline_us = NO_DEADLINE;
    l->async = (fr_async){.ctx = l, .transfer = async_transfer, .timer = async_timer};
    if ((l->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        (l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_WAKE};
    if (epoll_ctl(l->ep, EPOLL_CTL_ADD, l->wake_fd, &ev) != 0)
        return -1;
    /* A descriptor of the socket per daemon: each daemon closes its own at quiesce or stop,
     * and the socket stops listening when the last one is closed. */
    if ((l->listen_fd = fcntl(s->listen_fd, F_DUPFD_CLOEXEC, 0)) < 0)
        return -1;
    struct MHD_OptionItem o[FR_HTTP_OPTIONS_MAX];
    size_t n = 0;
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, l->listen_fd, NULL};
    unsigned limit = cfg->connection_limit ? (cfg->connection_limit + s->n - 1) / s->n : 0;
    unsigned flags = fr__http_daemon_options(cfg, limit, on_connection, l, o, &n);
    l->daemon =
        MHD_start_daemon(flags | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL,
                         cfg->handler, cfg->handler_cls, MHD_OPTION_ARRAY, o, MHD_OPTION_END);
    if (!l->daemon) {
        l->listen_fd = -1; /* a daemon that fails to start closes the socket it was given */
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = TAG_DAEMON};
    if (!di || epoll_ctl(l->ep, EPOLL_CTL_ADD, di->epoll_fd, &ev) != 0 ||
        !(l->multi = curl_multi_init()) ||
        curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
        curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l) != CURLM_OK ||
        curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
        curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l) != CURLM_OK)
        return -1;
    return 0;
}

/* The loop's descriptors and memory (its daemon and multi handle were closed). */
static void loop_free(loop *l)
{
    if (l->ep >= 0)
        close(l->ep);
    if (l->wake_fd >= 0)
        close(l->wake_fd);
    free(l->timers);
    free(l->transfers);
}

fr_http_loops *fr__http_loops_start(const fr_http_server_config *cfg)
{
    unsigned n = cfg->threads ? cfg->threads : 1;
    fr_http_loops *s = calloc(1, sizeof *s + n * sizeof(loop));
    if (!s)
        return NULL;
    s->n = n;
    for (unsigned i = 0; i < n; i++)
        s->loops[i].ep = s->loops[i].wake_fd = s->loops[i].listen_fd = -1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if ((s->listen_fd = listen_on(cfg->addr, &s->port)) < 0)
        goto fail;
    for (unsigned i = 0; i < n; i++)
        if (loop_open(s, &s->loops[i], cfg) != 0)
            goto fail;
    for (unsigned i = 0; i < n; i++) {
        if (pthread_create(&s->loops[i].thread, NULL, loop_main, &s->loops[i]) != 0)
            goto fail;
        s->loops[i].started = 1;
    }
    return s;
fail:
    fr__http_loops_stop(s);
    return NULL;
}

void fr__http_loops_url(const fr_http_loops *s, const fr_http_addr *a, int tls, char *buf,
                        size_t size)
{
    char hp[INET6_ADDRSTRLEN + 16];
    fr__http_addr_format(a, s->port, hp, sizeof hp);
    snprintf(buf, size, "%s://%s", tls ? "https" : "http", hp);
}

void fr__http_loops_quiesce(fr_http_loops *s)
{
    if (s->listen_fd < 0)
        return;
    /* The socket stops listening now, whatever the loops are doing (one may be held by a
     * handler): a new connection is refused, and libmicrohttpd accepts nothing from a
     * socket that reports a hang-up.  Each daemon then quiesces on its own thread
     * (quiesce_daemon says why), at its loop's next turn. */
    atomic_store(&s->quiesce, 1); /* first: a loop woken by the hang-up finds it */
    if (shutdown(s->listen_fd, SHUT_RD) != 0)
        perror("fluxroute: http loop: shutdown of the listening socket");
    close(s->listen_fd);
    s->listen_fd = -1;
    for (unsigned i = 0; i < s->n; i++)
        wake(&s->loops[i]);
}

void fr__http_loops_stop(fr_http_loops *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, 1);
    for (unsigned i = 0; i < s->n; i++)
        if (s->loops[i].started)
            wake(&s->loops[i]);
    for (unsigned i = 0; i < s->n; i++) {
        loop *l = &s->loops[i];
        if (l->started)
            pthread_join(l->thread, NULL);
        else
            loop_close(l); /* never ran: its thread did not close it */
        loop_free(l);
    }
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    free(s);
    curl_global_cleanup();
}
