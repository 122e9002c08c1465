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

/* ---- the --metrics-addr listener ---------------------------------------------------- */

struct fr_probe_listener {
    struct MHD_Daemon *d;
    fr_probe_readyz readyz;
    void *cls;
    char url[96]; /* http://HOST:PORT, the port the kernel chose for port 0 */
};

void fr__metrics_reply(const char *method, fr_reply *out)
{
    out->route = "/metrics";
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        out->allow = "GET, HEAD";
        fr__reply_error(out, FR_HE_METHOD_NOT_ALLOWED, "%s is not allowed here; use GET", method);
        return;
    }
    char *text = fr__metrics_render();
    if (!text) {
        fr__reply_error(out, FR_HE_INTERNAL, "cannot render the metrics: out of memory");
        return;
    }
    out->status = 200;
    out->body = text;
    out->body_len = strlen(text);
    out->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

static void probe_reply(const fr_probe_listener *l, const char *url, const char *method,
                        fr_reply *out)
{
    if (strncmp(url, "/v1/", 4) == 0)
        url += 3;
    if (strcmp(url, "/metrics") == 0)
        fr__metrics_reply(method, out);
    else if (strcmp(url, "/healthz") == 0)
        fr__reply_json(out, 200, json_tokener_parse("{\"status\":\"ok\"}"));
    else if (strcmp(url, "/readyz") == 0)
        l->readyz(l->cls, out);
    else
        fr__reply_error(out, FR_HE_NOT_FOUND,
                        "the metrics listener serves /metrics, /healthz and /readyz only");
}

static enum MHD_Result on_probe(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_size, void **con_cls)
{
    (void)version, (void)upload;
    /* A body is never read: drop it as it comes, answer once it has all arrived. */
    if (!*con_cls) {
        *con_cls = (void *)1;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    fr_reply rp = {0};
    probe_reply(cls, url, method, &rp);
    if (!rp.body)
        return MHD_NO;
    return fr__http_send(c, &rp);
}

fr_probe_listener *fr__probe_listener_start(const char *addr, fr_probe_readyz readyz, void *cls,
                                            char *err, size_t errlen)
{
    fr_http_addr sa;
    const char *why;
    if (fr__http_addr_parse(addr, &sa, &why) != 0) {
        snprintf(err, errlen, "--metrics-addr %s: %s", addr, why);
        return NULL;
    }
    fr_probe_listener *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "--metrics-addr %s: out of memory", addr);
        return NULL;
    }
    l->readyz = readyz;
    l->cls = cls;
    /* Scrapes and probes are few and small: one thread, few connections, short timeouts. */
    fr_http_server_config hc = {.addr = &sa,
                                .connection_limit = 64,
                                .connection_timeout_s = 10,
                                .handler = on_probe,
                                .handler_cls = l};
    l->d = fr__http_start(&hc);
    if (!l->d) {
        snprintf(err, errlen, "cannot listen on --metrics-addr %s (address in use?)", addr);
        free(l);
        return NULL;
    }
    fr__http_url(l->d, &sa, 0, l->url, sizeof l->url);
    return l;
}

const char *fr__probe_listener_url(const fr_probe_listener *l)
{
    return l ? l->url : "";
}

void fr__probe_listener_stop(fr_probe_listener *l)
{
    if (!l)
        return;
    MHD_stop_daemon(l->d);
    free(l);
}
