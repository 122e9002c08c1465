/* The HTTP server module shared by serve, the control plane and the metrics endpoints
 * (libmicrohttpd, an epoll thread pool, TLS and mTLS through GnuTLS).  It holds what the
 * servers have in common:
 *   - listening addresses: IPv4, IPv6 ("[::1]:8080") and host names, parsed in one place;
 *   - TLS: the PEM files named by PREFIX_TLS_* variables, and the client certificate
 *     verified in one place;
 *   - request bodies under a size limit (http/http_body.h);
 *   - replies: a handler fills an fr_reply, the server sends it; error replies name a code
 *     of the one list of error codes (http/http_errors.h).
 * Internal.  Every function is thread-safe unless it says otherwise. */
#ifndef FR_CORE_HTTP_H
#define FR_CORE_HTTP_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include <json-c/json.h>
#include <microhttpd.h>

#include "http/http_errors.h"

/* ---- listening addresses ---- */

typedef struct fr_http_addr {
    struct sockaddr_storage sa;
    socklen_t len;
} fr_http_addr;

/* Parses a listening address: ":PORT" (every IPv4 address), "HOST:PORT" with HOST an IPv4
 * address, "localhost" (127.0.0.1) or a host name (its first address, IPv4 or IPv6), or
 * "[V6]:PORT" ("[::]" is every IPv6 address).  PORT is 0..65535; 0 lets the kernel pick
 * one.  Returns 0 with *out filled, or -1 with why (static text) saying what is wrong. */
int fr__http_addr_parse(const char *text, fr_http_addr *out, const char **why);
/* The port of a (host order). */
unsigned fr__http_addr_port(const fr_http_addr *a);
/* "HOST:PORT" (IPv4) or "[V6]:PORT" of a with `port` into buf. */
void fr__http_addr_format(const fr_http_addr *a, unsigned port, char *buf, size_t size);

/* ---- TLS ---- */

typedef struct fr_http_tls {
    int enabled;
    int require_client_cert; /* refuse a request without a client certificate */
    char *cert, *key, *ca;   /* PEM text, owned (fr__http_tls_free); ca may be NULL */
    const char *priorities;  /* static GnuTLS priorities, or NULL: the library's */
} fr_http_tls;

/* The TLS set-up of one server from PREFIX_TLS_ENABLED, PREFIX_TLS_CERT_FILE,
 * PREFIX_TLS_KEY_FILE, PREFIX_TLS_CA_FILE (read when set, or required with
 * PREFIX_TLS_REQUIRE_CLIENT_CERT): *t zeroed and filled; with TLS disabled nothing is
 * read.  Returns 0, or -1 with err naming the variable and the problem. */
int fr__http_tls_from_env(fr_http_tls *t, const char *prefix, char *err, size_t errlen);
/* Frees the PEM texts (t itself is the caller's). */
void fr__http_tls_free(fr_http_tls *t);
/* Reads a PEM file.  Caller frees.  NULL with err ("WHAT PATH: reason") when path is
 * NULL or empty or the file cannot be read. */
char *fr__http_pem_read(const char *path, const char *what, char *err, size_t errlen);
/* Whether the connection's peer presented a TLS client certificate that verifies against
 * the server's CA: 0 when it did (and, when cn is not NULL, its subject CN was read into
 * cn), else -1. */
int fr__http_client_cert(struct MHD_Connection *c, char *cn, size_t cnlen);

/* ---- the server ---- */

typedef struct fr_http_server_config {
    const fr_http_addr *addr;      /* borrowed for the call */
    const fr_http_tls *tls;        /* NULL or not enabled: plain HTTP; borrowed for the call */
    unsigned threads;              /* request threads (0 or 1: one) */
    unsigned connection_limit;     /* 0: libmicrohttpd's default */
    unsigned connection_timeout_s; /* 0: none */
    int suspend_resume;            /* handlers may suspend connections (MHD_ALLOW_SUSPEND_RESUME) */
    MHD_AccessHandlerCallback handler;
    void *handler_cls;
    MHD_RequestCompletedCallback completed; /* or NULL */
    void *completed_cls;
} fr_http_server_config;

/* Starts a server (its threads take no signal the caller has blocked).  NULL when the
 * address cannot be bound or the TLS files are invalid.  Stop with MHD_stop_daemon. */
struct MHD_Daemon *fr__http_start(const fr_http_server_config *cfg);
/* Whether the calling thread is a request thread of a server with other request threads,
 * and serves exactly one connection (the caller's own: a handler may then hold this thread
 * without stalling any other connection, since the other threads accept new ones).  0 on
 * any thread that is not a request thread. */
int fr__http_thread_alone(void);
/* "http://HOST:PORT" or "https://..." of a server started on a, with the port it bound. */
void fr__http_url(struct MHD_Daemon *d, const fr_http_addr *a, int tls, char *buf, size_t size);
/* Prints a start-up error of the server `name` to stderr as the CLI prints its errors:
 * "fluxroute NAME: MESSAGE". */
void fr__http_startup_error(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- replies ---- */

/* An HTTP answer produced by a handler. */
typedef struct fr_reply {
    int status;
    char *body; /* owned; JSON unless content_type says otherwise */
    size_t body_len;
    const char *content_type;    /* static; NULL = application/json */
    int retry_after;             /* seconds, for 429; 0 = none */
    const char *allow;           /* static; for 405: the methods the resource takes */
    const char *challenge;       /* static; for 401: the WWW-Authenticate challenge */
    char location[64];           /* for 202: the Location of what was started, or "" */
    int64_t plugin_us;           /* time spent inside plugins (for the overhead header) */
    struct MHD_Response *stream; /* a streaming response (SSE), instead of body */
    const char *route;           /* route pattern for metrics ("/v1/runs/{id}") */
    int deferred;                /* the reply comes later through fr_deferred */
    const char *limit;           /* static; the limit a limit_exceeded reply names */
    char run_id[40];             /* the run it answers for (X-FluxRoute-Run-Id), or "" */
} fr_reply;

/* Fills `out` with {"error": {"code": CODE, "message": ...}} and the code's status. */
void fr__reply_error(fr_reply *out, fr_http_error e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Fills `out` with a JSON body (takes the object). */
void fr__reply_json(fr_reply *out, int status, json_object *o);

/* The error body (README.md, "Error codes"), {"error": {"code": CODE, "message": MESSAGE}}: a new
 * object owned by the caller.  *error (when error is not NULL) gets the inner object, for
 * members a route adds. */
json_object *fr__http_error_body(fr_http_error e, const char *message, json_object **error);
/* The error body of e with a message formatted from fmt and ap; *error (when not NULL)
 * gets the inner object, for members a route adds.  Caller releases with json_object_put. */
json_object *fr__http_error_body_v(fr_http_error e, json_object **error, const char *fmt,
                                   va_list ap);

/* The response for rp: its body (taken: rp->body is NULL afterwards) or its stream, with
 * Content-Type, Allow, WWW-Authenticate, Location, Retry-After and, for a stream,
 * Cache-Control.  The caller adds what else it sends, queues and destroys it.  NULL when
 * memory runs out. */
struct MHD_Response *fr__http_response(fr_reply *rp);
/* Sends rp on c (fr__http_response, queued, destroyed). */
enum MHD_Result fr__http_send(struct MHD_Connection *c, fr_reply *rp);

#endif
