/* The METRICS_ENABLED endpoint of `fluxroute run`: /metrics (observe's registry) over
 * libmicrohttpd, optional TLS/mTLS.  Moved out of observe/, which sits below http/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "http/metrics_endpoint.h"
#include "observe/observe.h"

/* ---- the METRICS_ENABLED endpoint -------------------------------------------------- */

static struct MHD_Daemon *daemon_;
static int require_client_cert;

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **con_cls)
{
    (void)cls, (void)version, (void)upload, (void)upload_len, (void)con_cls;
    fr_reply rp = {.status = MHD_HTTP_OK,
                   .content_type = "text/plain; version=0.0.4; charset=utf-8"};
    /* mTLS: the client certificate must verify against METRICS_TLS_CA_FILE. */
    if (require_client_cert && fr__http_client_cert(c, NULL, 0) != 0) {
        rp.status = MHD_HTTP_FORBIDDEN;
        rp.body = strdup("client certificate required\n");
    } else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        rp.status = MHD_HTTP_METHOD_NOT_ALLOWED;
        rp.allow = "GET, HEAD";
        rp.body = strdup("method not allowed: use GET\n");
    } else if (strcmp(url, "/metrics") != 0) {
        rp.status = MHD_HTTP_NOT_FOUND;
        rp.body = strdup("not found: try /metrics\n");
    } else {
        rp.body = fr__metrics_render();
    }
    if (!rp.body)
        return MHD_NO;
    rp.body_len = strlen(rp.body);
    return fr__http_send(c, &rp);
}

int fr__metrics_server_start_from_env(void)
{
    if (daemon_ || !fr__obs_env_truthy("METRICS_ENABLED"))
        return 0;
    const char *addr = getenv("METRICS_ADDR");
    if (!addr || !*addr)
        addr = ":2112";
    fr_http_addr sa;
    const char *why;
    if (fr__http_addr_parse(addr, &sa, &why) != 0) {
        fprintf(stderr, "fluxroute: METRICS_ADDR=\"%s\": %s\n", addr, why);
        return -1;
    }
    fr_http_tls tls;
    char err[512];
    if (fr__http_tls_from_env(&tls, "METRICS", err, sizeof err) != 0) {
        fprintf(stderr, "fluxroute: %s\n", err);
        return -1;
    }
    tls.priorities = "NORMAL:-VERS-TLS1.1:-VERS-TLS1.0";
    require_client_cert = tls.require_client_cert;
    fr_http_server_config hc = {
        .addr = &sa, .tls = &tls, .connection_timeout_s = 10, .handler = answer};
    daemon_ = fr__http_start(&hc);
    fr__http_tls_free(&tls);
    if (!daemon_) {
        fprintf(stderr,
                "fluxroute: cannot serve metrics on %s (address in use or TLS files "
                "invalid)\n",
                addr);
        return -1;
    }
    if (fr__http_addr_port(&sa) == 0) {
        char url[128];
        fr__http_url(daemon_, &sa, tls.enabled, url, sizeof url);
        fprintf(stderr, "fluxroute: metrics on %s/metrics\n", url);
    }
    return 0;
}

void fr__metrics_server_stop(void)
{
    if (daemon_)
        MHD_stop_daemon(daemon_);
    daemon_ = NULL;
}
