/* The HTTP server module (core/http/http.h): listening addresses, TLS and client
 * certificates, starting a libmicrohttpd daemon, and sending an fr_reply. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "base/fileio.h"
#include "http/http.h"
#include "observe/observe.h"

/* ---- addresses ------------------------------------------------------------------------- */

int fr__http_addr_parse(const char *text, fr_http_addr *out, const char **why)
{
    memset(out, 0, sizeof *out);
    const char *colon = text ? strrchr(text, ':') : NULL;
    if (!colon || !colon[1]) {
        *why = "expected HOST:PORT, :PORT or [V6]:PORT";
        return -1;
    }
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (*end || errno || port < 0 || port > 65535 || colon[1] == '-' || colon[1] == '+') {
        *why = "the port must be a number from 0 to 65535";
        return -1;
    }
    char host[256];
    size_t hl = (size_t)(colon - text);
    if (hl >= sizeof host) {
        *why = "the host name is too long";
        return -1;
    }
    memcpy(host, text, hl);
    host[hl] = '\0';
    if (host[0] == '[') {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->sa;
        if (hl < 3 || host[hl - 1] != ']') {
            *why = "an IPv6 address is written in brackets: [V6]:PORT";
            return -1;
        }
        host[hl - 1] = '\0';
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1) {
            *why = "not an IPv6 address between the brackets";
            return -1;
        }
        out->len = sizeof *s6;
        return 0;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)&out->sa;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    out->len = sizeof *s4;
    /* ":PORT" is every IPv4 address, as it always was for serve and the endpoints. */
    if (hl == 0 || strcmp(host, "0.0.0.0") == 0) {
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
        return 0;
    }
    if (strcmp(host, "localhost") == 0) {
        s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return 0;
    }
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1)
        return 0;
    if (strchr(host, ':')) {
        *why = "an IPv6 address is written in brackets: [V6]:PORT";
        return -1;
    }
    /* A host name: its first address (IPv4 or IPv6). */
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res || res->ai_addrlen > sizeof out->sa) {
        if (res)
            freeaddrinfo(res);
        *why = "the host name does not resolve";
        return -1;
    }
    memcpy(&out->sa, res->ai_addr, res->ai_addrlen);
    out->len = (socklen_t)res->ai_addrlen;
    freeaddrinfo(res);
    if (out->sa.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&out->sa)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)&out->sa)->sin_port = htons((uint16_t)port);
    return 0;
}

unsigned fr__http_addr_port(const fr_http_addr *a)
{
    return a->sa.ss_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)&a->sa)->sin6_port)
                                       : ntohs(((const struct sockaddr_in *)&a->sa)->sin_port);
}

void fr__http_addr_format(const fr_http_addr *a, unsigned port, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN] = "";
    if (a->sa.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&a->sa)->sin6_addr, ip, sizeof ip);
        snprintf(buf, size, "[%s]:%u", ip, port);
    } else {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&a->sa)->sin_addr, ip, sizeof ip);
        snprintf(buf, size, "%s:%u", ip, port);
    }
}

/* ---- TLS ------------------------------------------------------------------------------- */

char *fr__http_pem_read(const char *path, const char *what, char *err, size_t errlen)
{
    char *pem = path && *path ? fr__file_read(path, NULL) : NULL;
    if (!pem)
        snprintf(err, errlen, "%s %s: %s", what, path && *path ? path : "(not set)",
                 path && *path ? strerror(errno) : "required");
    return pem;
}

int fr__http_tls_from_env(fr_http_tls *t, const char *prefix, char *err, size_t errlen)
{
    char name[64];
    memset(t, 0, sizeof *t);
#define ENV(suffix) (snprintf(name, sizeof name, "%s_TLS_" suffix, prefix), name)
    t->enabled = fr__obs_env_truthy(ENV("ENABLED"));
    if (!t->enabled)
        return 0;
    t->require_client_cert = fr__obs_env_truthy(ENV("REQUIRE_CLIENT_CERT"));
    char what[64];
    snprintf(what, sizeof what, "%s", ENV("CERT_FILE"));
    if (!(t->cert = fr__http_pem_read(getenv(what), what, err, errlen)))
        goto fail;
    snprintf(what, sizeof what, "%s", ENV("KEY_FILE"));
    if (!(t->key = fr__http_pem_read(getenv(what), what, err, errlen)))
        goto fail;
    snprintf(what, sizeof what, "%s", ENV("CA_FILE"));
    const char *ca = getenv(what);
    if ((ca && *ca) || t->require_client_cert) {
        if (!(t->ca = fr__http_pem_read(ca, what, err, errlen))) {
            if (!ca || !*ca)
                snprintf(err, errlen, "%s_TLS_REQUIRE_CLIENT_CERT needs a readable %s", prefix,
                         what);
            goto fail;
        }
    }
#undef ENV
    return 0;
fail:
    fr__http_tls_free(t);
    return -1;
}

void fr__http_tls_free(fr_http_tls *t)
{
    free(t->cert);
    free(t->key);
    free(t->ca);
    t->cert = t->key = t->ca = NULL;
}

int fr__http_client_cert(struct MHD_Connection *c, char *cn, size_t cnlen)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session)
        return -1;
    gnutls_session_t tls = (gnutls_session_t)ci->tls_session;
    unsigned status = 0;
    unsigned n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(tls, &n);
    if (!certs || n == 0)
        return -1;
    if (gnutls_certificate_verify_peers2(tls, &status) != GNUTLS_E_SUCCESS || status != 0)
        return -1;
    if (!cn)
        return 0;
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) != GNUTLS_E_SUCCESS)
        return -1;
    int rc = -1;
    size_t size = cnlen;
    if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == GNUTLS_E_SUCCESS &&
        gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &size) ==
            GNUTLS_E_SUCCESS)
        rc = 0;
    gnutls_x509_crt_deinit(crt);
    return rc;
}

/* ---- the server ------------------------------------------------------------------------ */

/* The connections the calling request thread serves (libmicrohttpd binds each connection to
 * the thread that accepted it), and the request threads of its server. */
static _Thread_local unsigned thread_connections;
static _Thread_local unsigned thread_pool;

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)c;
    (void)socket_context;
    thread_pool = (unsigned)(uintptr_t)cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        thread_connections++;
    else if (thread_connections > 0)
        thread_connections--;
}

int fr__http_thread_alone(void)
{
    return thread_pool > 1 && thread_connections == 1;
}

struct MHD_Daemon *fr__http_start(const fr_http_server_config *cfg)
{
    const fr_http_tls *tls = cfg->tls && cfg->tls->enabled ? cfg->tls : NULL;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (cfg->suspend_resume)
        flags |= MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME;
    if (cfg->addr->sa.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (tls)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem o[13];
    size_t n = 0;
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, (void *)&cfg->addr->sa};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection,
                                     (void *)(uintptr_t)cfg->threads};
    if (cfg->threads > 1)
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, cfg->threads, NULL};
    if (cfg->connection_timeout_s)
        o[n++] =
            (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, cfg->connection_timeout_s, NULL};
    if (cfg->connection_limit)
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, cfg->connection_limit, NULL};
    if (cfg->completed)
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)cfg->completed,
                                         cfg->completed_cls};
    if (tls) {
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, tls->cert};
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, tls->key};
        if (tls->priorities)
            o[n++] =
                (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)tls->priorities};
        if (tls->ca)
            o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, tls->ca};
    }
    o[n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    return MHD_start_daemon(flags, 0, NULL, NULL, cfg->handler, cfg->handler_cls, MHD_OPTION_ARRAY,
                            o, MHD_OPTION_END);
}

void fr__http_url(struct MHD_Daemon *d, const fr_http_addr *a, int tls, char *buf, size_t size)
{
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    char hp[INET6_ADDRSTRLEN + 16];
    fr__http_addr_format(a, di ? di->port : fr__http_addr_port(a), hp, sizeof hp);
    snprintf(buf, size, "%s://%s", tls ? "https" : "http", hp);
}

void fr__http_startup_error(const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fluxroute %s: ", name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- replies --------------------------------------------------------------------------- */

struct MHD_Response *fr__http_response(fr_reply *rp)
{
    struct MHD_Response *resp = rp->stream;
    if (!resp)
        resp = MHD_create_response_from_buffer(rp->body_len, rp->body ? rp->body : (char *)"",
                                               rp->body ? MHD_RESPMEM_MUST_FREE
                                                        : MHD_RESPMEM_PERSISTENT);
    if (!resp || rp->stream)
        free(rp->body);
    rp->body = NULL;
    if (!resp)
        return NULL;
    MHD_add_response_header(resp, "Content-Type",
                            rp->content_type ? rp->content_type : "application/json");
    if (rp->stream)
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
    if (rp->allow)
        MHD_add_response_header(resp, "Allow", rp->allow);
    if (rp->challenge)
        MHD_add_response_header(resp, "WWW-Authenticate", rp->challenge);
    if (rp->location[0])
        MHD_add_response_header(resp, "Location", rp->location);
    if (rp->retry_after) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", rp->retry_after);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    return resp;
}

enum MHD_Result fr__http_send(struct MHD_Connection *c, fr_reply *rp)
{
    struct MHD_Response *resp = fr__http_response(rp);
    if (!resp)
        return MHD_NO;
    enum MHD_Result r = MHD_queue_response(c, (unsigned)rp->status, resp);
    MHD_destroy_response(resp);
    return r;
}
