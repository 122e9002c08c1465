/* The METRICS_ENABLED endpoint of `fluxroute run`: /metrics (observe's registry) over
 * libmicrohttpd, optional TLS/mTLS.  Moved out of observe/, which sits below http/. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

#include "base/fileio.h"
#include "http/metrics_endpoint.h"
#include "observe/observe.h"

/* ---- the METRICS_ENABLED endpoint -------------------------------------------------- */

static struct MHD_Daemon *daemon_;
static char *tls_cert, *tls_key, *tls_ca;
static int require_client_cert;

static char *read_file(const char *path)
{
    return fr__file_read(path, NULL);
}

/* mTLS: the client certificate must verify against METRICS_TLS_CA_FILE. */
static int client_cert_ok(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session)
        return 0;
    gnutls_session_t session = (gnutls_session_t)ci->tls_session;
    unsigned list_size = 0;
    if (!gnutls_certificate_get_peers(session, &list_size) || list_size == 0)
        return 0;
    unsigned status = 0;
    return gnutls_certificate_verify_peers2(session, &status) == 0 && status == 0;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **con_cls)
{
    (void)cls, (void)version, (void)upload, (void)upload_len, (void)con_cls;
    unsigned code = MHD_HTTP_OK;
    char *body = NULL;
    const char *type = "text/plain; version=0.0.4; charset=utf-8";
    if (require_client_cert && !client_cert_ok(c)) {
        code = MHD_HTTP_FORBIDDEN;
        body = strdup("client certificate required\n");
    } else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        code = MHD_HTTP_METHOD_NOT_ALLOWED;
        body = strdup("method not allowed: use GET\n");
    } else if (strcmp(url, "/metrics") != 0) {
        code = MHD_HTTP_NOT_FOUND;
        body = strdup("not found: try /metrics\n");
    } else {
        body = fr__metrics_render();
    }
    if (!body)
        return MHD_NO;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, "Allow", "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return rc;
}

int fr__metrics_parse_addr(const char *addr, struct sockaddr_storage *sa, socklen_t *len)
{
    const char *colon = strrchr(addr, ':');
    if (!colon)
        return -1;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || colon[1] == '\0' || port < 0 || port > 65535)
        return -1;
    char host[256];
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof host)
        return -1;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    memset(sa, 0, sizeof *sa);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
            return -1;
        *len = sizeof *s6;
        return 0;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)sa;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    if (hl == 0 || strcmp(host, "0.0.0.0") == 0)
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (strcmp(host, "localhost") == 0)
        s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
        return -1;
    *len = sizeof *s4;
    return 0;
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

int fr__metrics_server_start_from_env(void)
{
    if (daemon_ || !fr__obs_env_truthy("METRICS_ENABLED"))
        return 0;
    const char *addr = env_or("METRICS_ADDR", ":2112");
    struct sockaddr_storage sa;
    socklen_t salen;
    if (fr__metrics_parse_addr(addr, &sa, &salen) != 0) {
        fprintf(stderr, "fluxroute: METRICS_ADDR=\"%s\": expected HOST:PORT, :PORT or [V6]:PORT\n",
                addr);
        return -1;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (sa.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    int tls = fr__obs_env_truthy("METRICS_TLS_ENABLED");
    require_client_cert = tls && fr__obs_env_truthy("METRICS_TLS_REQUIRE_CLIENT_CERT");
    struct MHD_OptionItem o[8];
    size_t n = 0;
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &sa};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, 10, NULL};
    if (tls) {
        const char *cf = env_or("METRICS_TLS_CERT_FILE", NULL),
                   *kf = env_or("METRICS_TLS_KEY_FILE", NULL);
        const char *caf = env_or("METRICS_TLS_CA_FILE", NULL);
        if (!cf || !kf || !(tls_cert = read_file(cf)) || !(tls_key = read_file(kf))) {
            fprintf(stderr, "fluxroute: METRICS_TLS_ENABLED needs readable METRICS_TLS_CERT_FILE "
                            "and METRICS_TLS_KEY_FILE\n");
            return -1;
        }
        if (require_client_cert && (!caf || !(tls_ca = read_file(caf)))) {
            fprintf(stderr, "fluxroute: METRICS_TLS_REQUIRE_CLIENT_CERT needs a readable "
                            "METRICS_TLS_CA_FILE\n");
            return -1;
        }
        flags |= MHD_USE_TLS;
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, tls_cert};
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, tls_key};
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                         (void *)"NORMAL:-VERS-TLS1.1:-VERS-TLS1.0"};
        if (tls_ca)
            o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, tls_ca};
    }
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    daemon_ =
        MHD_start_daemon(flags, 0, NULL, NULL, answer, NULL, MHD_OPTION_ARRAY, o, MHD_OPTION_END);
    if (!daemon_) {
        fprintf(stderr,
                "fluxroute: cannot serve metrics on %s (address in use or TLS files "
                "invalid)\n",
                addr);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    if (di && sa.ss_family == AF_INET && ((struct sockaddr_in *)&sa)->sin_port == 0)
        fprintf(stderr, "fluxroute: metrics on %s://%.*s%u/metrics\n", tls ? "https" : "http",
                (int)(strrchr(addr, ':') - addr + 1), addr, (unsigned)di->port);
    return 0;
}

void fr__metrics_server_stop(void)
{
    if (daemon_)
        MHD_stop_daemon(daemon_);
    daemon_ = NULL;
    free(tls_cert);
    free(tls_key);
    free(tls_ca);
    tls_cert = tls_key = tls_ca = NULL;
}
