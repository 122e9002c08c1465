/* Host HTTP client: libcurl easy handles, one per thread, all attached to one share
 * handle holding the connection cache (and DNS and TLS session caches), so a connection
 * opened by one worker is reused by whichever worker runs the next request. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "base/bytebuf.h"
#include "host/call.h"
#include "host/http_client.h"
#include "host/call_observe.h"

static size_t collect(char *ptr, size_t size, size_t nmemb, void *ud)
{
    fr_bytebuf *b = ud;
    size_t n = size * nmemb;
    fr__bytebuf_append(b, ptr, n);
    return b->oom ? 0 : n;
}

/* The body's sink: collects it, and hands 2xx bodies to the request's on_body. */
typedef struct body_sink {
    fr_bytebuf buf;
    CURL *h;
    fr_status (*on_body)(void *ud, const char *data, size_t len);
    void *ud;
    int checked, feed; /* the HTTP status was looked at; it is 2xx */
    fr_status stopped; /* what on_body returned when it stopped the transfer */
} body_sink;

static size_t collect_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    body_sink *s = ud;
    size_t n = collect(ptr, size, nmemb, &s->buf);
    if (n == 0 || !s->on_body)
        return n;
    if (!s->checked) {
        /* Body bytes flow only after the final response's headers: its status is known. */
        long code = 0;
        curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &code);
        s->feed = code >= 200 && code <= 299;
        s->checked = 1;
    }
    if (!s->feed)
        return n;
    fr_status st = s->on_body(s->ud, ptr, n);
    if (st != FR_OK) {
        s->stopped = st;
        return 0; /* CURLE_WRITE_ERROR */
    }
    return n;
}

static int progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    return fr__call_check(ud) != FR_OK; /* non-zero aborts the transfer */
}

/* Connections the shared cache keeps open (idle and in use, all hosts together). */
#define FR_HTTP_MAX_CONNECTIONS 1024L

static pthread_key_t handle_key;
static pthread_once_t handle_once = PTHREAD_ONCE_INIT;

/* The process-wide share: created once, never cleaned up (easy handles of threads that
 * are being abandoned may still point at it).  One mutex per kind of shared data. */
static CURLSH *share;
static pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
    (void)h, (void)access, (void)ud;
    if ((unsigned)data < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&share_mu[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
    (void)h, (void)ud;
    if ((unsigned)data < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&share_mu[data]);
}

/* A thread's easy handle, and whether it carries an option the per-request set-up does not
 * put back (a CA file): then the next request starts from curl_easy_reset. */
typedef struct thread_http {
    CURL *h;
    int custom;
} thread_http;

static void handle_destroy(void *p)
{
    thread_http *t = p;
    curl_easy_cleanup(t->h);
    free(t);
}

static void handle_key_init(void)
{
    pthread_key_create(&handle_key, handle_destroy);
    for (size_t i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&share_mu[i], NULL);
    /* Without a share (out of memory) every thread keeps its own cache: still correct. */
    share = curl_share_init();
    if (share &&
        (curl_share_setopt(share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
         curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
         curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK ||
         curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
         curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)) {
        curl_share_cleanup(share);
        share = NULL;
    }
}

void fr__http_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_once(&handle_once, handle_key_init);
}

/* The options every request has: set when the handle is new or was reset. */
static void set_fixed_options(CURL *h)
{
    if (share)
        curl_easy_setopt(h, CURLOPT_SHARE, share);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    /* The shared cache counts connections in use too: with libcurl's default (5), the
     * 6th concurrent request to a vendor closed the oldest idle connection at its end, and
     * under load every request opened a new one.  Keep what concurrent runs use. */
    curl_easy_setopt(h, CURLOPT_MAXCONNECTS, FR_HTTP_MAX_CONNECTIONS);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress);
}

/* This thread's easy handle, with the fixed options set: kept between requests (its
 * connections are the share's), reset only after a request left an option behind that
 * fr__http_perform does not set on every request.  Borrowed; NULL on OOM. */
static thread_http *thread_handle(int custom)
{
    pthread_once(&handle_once, handle_key_init);
    thread_http *t = pthread_getspecific(handle_key);
    if (!t) {
        if (!(t = calloc(1, sizeof *t)))
            return NULL;
        if (!(t->h = curl_easy_init()) || pthread_setspecific(handle_key, t) != 0) {
            if (t->h)
                curl_easy_cleanup(t->h);
            free(t);
            return NULL;
        }
        set_fixed_options(t->h);
    } else if (t->custom) {
        curl_easy_reset(t->h); /* keeps live connections and the share */
        set_fixed_options(t->h);
    }
    t->custom = custom;
    return t;
}

static char *to_arena(fr_call *call, const fr_bytebuf *b)
{
    char *p = fr__arena_alloc(call->arena, b->len + 1);
    if (p) {
        if (b->len)
            memcpy(p, b->data, b->len);
        p[b->len] = '\0';
    }
    return p;
}

/* Does the request set header `name` itself? */
static int has_header(const fr_http_request *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->n_headers; i++)
        if (req->headers[i] && strncasecmp(req->headers[i], name, n) == 0 &&
            req->headers[i][n] == ':')
            return 1;
    return 0;
}

fr_status fr__http_perform(fr_call *call, const fr_http_request *req, fr_http_response *resp)
{
    if (!req || !req->url || !req->method || !resp ||
        req->struct_size < offsetof(fr_http_request, timeout_us) + sizeof req->timeout_us) {
        fr__call_set_error(call, "http: invalid request");
        return FR_E_INVALID;
    }
    fr_status st = fr__call_check(call);
    if (st != FR_OK)
        return st;
    const char *ca_file =
        req->struct_size >= offsetof(fr_http_request, ca_file) + sizeof req->ca_file ? req->ca_file
                                                                                     : NULL;
    thread_http *th = thread_handle(ca_file != NULL);
    if (!th)
        return FR_E_NOMEM;
    CURL *h = th->h;

    int64_t timeout = fr__call_remaining_us(call);
    if (req->timeout_us > 0 && req->timeout_us < timeout)
        timeout = req->timeout_us;
    if (timeout <= 0)
        return fr__call_check(call) != FR_OK ? fr__call_check(call) : FR_E_TIMEOUT;

    struct curl_slist *headers = NULL;
    for (size_t i = 0; i < req->n_headers; i++) {
        struct curl_slist *n = curl_slist_append(headers, req->headers[i]);
        if (!n) {
            curl_slist_free_all(headers);
            return FR_E_NOMEM;
        }
        headers = n;
    }
    char traceparent[80] = "traceparent: ";
    if (!has_header(req, "traceparent") && fr__obs_traceparent(call, traceparent + 13)) {
        struct curl_slist *n = curl_slist_append(headers, traceparent); /* W3C trace context */
        if (n)
            headers = n;
    }
    body_sink sink = {.h = h};
    fr_bytebuf hdrs = {0};
    if (FR_HTTP_REQUEST_HAS(req, on_body_ud) && req->on_body) {
        sink.on_body = req->on_body;
        sink.ud = req->on_body_ud;
    }
    /* A message on_body sets wins over the host's: start from none. */
    if (sink.on_body) {
        free(call->error);
        call->error = NULL;
    }
    /* Every option a request varies is set on every request, from what a new handle has:
     * the handle keeps options between requests (it is not reset: that and setting the
     * fixed options again cost more than the rest of the set-up). */
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    if (req->body_len || strcmp(req->method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    } else {
        /* No body: forget the last one (a new handle has none and sends a GET). */
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &hdrs);
    if (ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, ca_file); /* the next request resets the handle */
    /* A call without a deadline has INT64_MAX left: no transfer timeout then (0). */
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                     timeout >= INT64_MAX - 999 ? 0L : (long)((timeout + 999) / 1000));
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, call);

    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(headers);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL); /* they point into this frame */
    curl_easy_setopt(h, CURLOPT_HEADERDATA, NULL);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, NULL);
    fr_bytebuf *body = &sink.buf;
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (rc == CURLE_OK) {
        st = FR_OK;
    } else if (rc == CURLE_WRITE_ERROR && sink.stopped != FR_OK) {
        st = sink.stopped;
        if (!call->error)
            fr__call_set_error(call, "http %s %s: the body callback stopped the transfer (%s)",
                               req->method, req->url, fr_strerror(st));
    } else if (rc == CURLE_ABORTED_BY_CALLBACK) {
        st = fr__call_check(call);
        if (st == FR_OK)
            st = FR_E_CANCELLED;
        fr__call_set_error(call, "http %s %s: %s", req->method, req->url, fr_strerror(st));
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        st = fr__call_check(call) != FR_OK ? fr__call_check(call) : FR_E_TIMEOUT;
        fr__call_set_error(call, "http %s %s: timed out", req->method, req->url);
    } else {
        st = body->oom || hdrs.oom ? FR_E_NOMEM : FR_E_NETWORK;
        fr__call_set_error(call, "http %s %s: %s", req->method, req->url, curl_easy_strerror(rc));
    }
    /* A streaming caller also learns what arrived before a failure (and it is recorded). */
    if (st == FR_OK || (sink.on_body && st != FR_E_NOMEM)) {
        resp->status = (int)code;
        resp->body = to_arena(call, body);
        resp->body_len = body->len;
        resp->headers = to_arena(call, &hdrs);
        resp->headers_len = hdrs.len;
        if (!resp->body || !resp->headers) {
            resp->body = resp->headers = NULL;
            resp->body_len = resp->headers_len = 0;
            if (st == FR_OK)
                st = FR_E_NOMEM;
        }
    }
    free(body->data);
    free(hdrs.data);
    return st;
}
