/* The web console's assets at /ui/ (core/serve/console.h): compiled in, never read from
 * disk, sent with a strict Content-Security-Policy (no inline script or style but the
 * page's own, pinned by hash; nothing from another origin; no framing), nosniff, no
 * referrer, and revalidated by ETag. */
#include <string.h>

#include "http/http.h"
#include "observe/observe.h"
#include "serve/console.h"

const fr_console_asset *fr__console_find(const char *name)
{
    if (!*name)
        name = "index.html";
    for (size_t i = 0; i < fr__console_n_assets; i++)
        if (strcmp(fr__console_assets[i].name, name) == 0)
            return &fr__console_assets[i];
    return NULL;
}

int fr__console_is_url(const char *url)
{
    return strcmp(url, "/ui") == 0 || strncmp(url, "/ui/", 4) == 0;
}

static void security_headers(struct MHD_Response *r)
{
    MHD_add_response_header(r, "Content-Security-Policy", fr__console_csp);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Cross-Origin-Opener-Policy", "same-origin");
    MHD_add_response_header(r, "Cross-Origin-Resource-Policy", "same-origin");
}

static enum MHD_Result queue(struct MHD_Connection *c, struct MHD_Response *r, int status,
                             const char *route)
{
    if (!r)
        return MHD_NO;
    security_headers(r);
    fr__metrics_http_request(route, status);
    enum MHD_Result res = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return res;
}

static enum MHD_Result send_error(struct MHD_Connection *c, fr_reply *rp, const char *route)
{
    int status = rp->status;
    return queue(c, fr__http_response(rp), status, route);
}

enum MHD_Result fr__console_send(struct MHD_Connection *c, const char *url, const char *method)
{
    const char *route = strcmp(url, "/ui") == 0 || strcmp(url, "/ui/") == 0 ? "/ui" : "/ui/{asset}";
    fr_reply rp = {0};
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        rp.allow = "GET, HEAD";
        fr__reply_error(&rp, FR_HE_METHOD_NOT_ALLOWED, "%s is not allowed here; use GET", method);
        return send_error(c, &rp, route);
    }
    const fr_console_asset *a = fr__console_find(strcmp(url, "/ui") == 0 ? "" : url + 4);
    if (!a) {
        fr__reply_error(&rp, FR_HE_NOT_FOUND, "the console has no asset %s", url);
        return send_error(c, &rp, route);
    }
    const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match");
    int fresh = inm && strstr(inm, a->etag) != NULL;
    /* For HEAD, MHD sends the headers of the whole response (its length) without the body. */
    struct MHD_Response *r = MHD_create_response_from_buffer(fresh ? 0 : a->size, (void *)a->data,
                                                             MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", a->content_type);
    MHD_add_response_header(r, "ETag", a->etag);
    /* Revalidated on each load (a 304 costs one round trip): the page holds its script,
     * and the CSP its hash, so an upgraded server's page is never a stale copy. */
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    return queue(c, r, fresh ? 304 : 200, route);
}
