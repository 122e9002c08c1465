/* The web console: its assets, compiled into the binary (core/serve/console_embed.sh
 * writes them from core/serve/console/: index.html with the styles and the bundled
 * modules inline, and icon.svg), served by `fluxroute serve` at /ui/. */
#ifndef FR_SERVE_CONSOLE_H
#define FR_SERVE_CONSOLE_H

#include <stddef.h>

#include <microhttpd.h>

/* One asset: its path under /ui/, its Content-Type, its ETag (quoted) and its bytes.
 * Static, read-only. */
typedef struct fr_console_asset {
    const char *name;
    const char *content_type;
    const char *etag;
    const unsigned char *data;
    size_t size;
} fr_console_asset;

/* The generated table (console_assets.c): index.html first, then the other files that
 * are neither .js nor .css, in the order serve.am lists them. */
extern const fr_console_asset fr__console_assets[];
extern const size_t fr__console_n_assets;
/* The generated Content-Security-Policy: nothing but the page's own origin, no framing,
 * and inline only the one script and the one style of index.html, named by their sha256. */
extern const char fr__console_csp[];

/* The asset served at /ui/NAME ("" is index.html), or NULL.  Thread-safe. */
const fr_console_asset *fr__console_find(const char *name);

/* Whether url is the console's (/ui or under /ui/). */
int fr__console_is_url(const char *url);

/* Answers a console request on c: GET or HEAD of an asset (200, or 304 when
 * If-None-Match names its ETag; /ui and /ui/ are index.html), 404 for an unknown asset, 405
 * for other methods; every answer carries the console's security headers (docs/security.md).
 * No authentication: the assets hold nothing of any tenant, the page asks for a key. */
enum MHD_Result fr__console_send(struct MHD_Connection *c, const char *url, const char *method);

#endif
