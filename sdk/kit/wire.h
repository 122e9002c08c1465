/* The vendor-neutral HTTP pieces of the provider plugins: classifying a vendor's failure
 * into the error classes, Retry-After values (delta-seconds and HTTP-dates), header
 * look-up in a raw header block, and the server-sent-events parser.
 *
 * In the static helper library like plugin_util.h; pure functions (no state, no host
 * calls), so thread-safe.  Included by provider_util.h; tests/test_providers tests them
 * directly. */
#ifndef FR_PROVIDER_WIRE_H
#define FR_PROVIDER_WIRE_H

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <strings.h>

#include <fluxroute/plugin.h>

#include "../../plugins/plugin_util.h"

/* ---- Error classification ------------------------------------------------------------ */

typedef struct pv_http_class {
    int http;
    fr_status st;
} pv_http_class;

typedef struct pv_name_class {
    const char *name; /* vendor error type/code/status, compared case-sensitively */
    fr_status st;
} pv_name_class;

/* The status for a vendor failure: by HTTP status when there is one (http > 0), else by
 * the vendor's error type/code (in-stream errors).  Bad requests are refined into
 * context_window and content_policy by the code, type and message. */
fr_status pv_classify(int http, const char *code, const char *type, const char *message);

/* ---- Retry-After --------------------------------------------------------------------- */

/* Parses an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", RFC 9110 5.6.7) into seconds
 * since the epoch.  The obsolete RFC 850 and asctime forms are not accepted.  Returns 0,
 * or -1 when the text is not such a date. */
int pv_parse_http_date(const char *v, size_t n, int64_t *epoch_s);

#define PV_RETRY_AFTER_MAX_US (86400LL * 1000000) /* larger values are capped: one day */

/* Parses a Retry-After value: delta-seconds ("120", fractions accepted) or an HTTP-date
 * (measured from now_us, microseconds since the epoch; a past date gives 0).  Surrounding
 * whitespace is ignored.  Returns 0 and sets *delay_us (capped at one day), or -1 when
 * the value is neither. */
int pv_parse_retry_after(const char *v, size_t n, int64_t now_us, int64_t *delay_us);

/* Finds header `name` (case-insensitive) in a raw header block, in the last response
 * head when there were several (100 Continue, redirects).  Sets *val and *len to its value
 * (not NUL-terminated, leading whitespace skipped).  Returns 1 when found. */
int pv_header(const char *block, size_t block_len, const char *name, const char **val, size_t *len);

/* ---- Server-sent events -------------------------------------------------------------- */

/* Reads the next event from [*pos, end) (the text/event-stream format): `event` gets the
 * event name ("" when none), `data` the data lines joined with '\n'.  Comment lines and
 * other fields are skipped.  Returns 1 for an event (*pos then points after it), 0 when
 * no complete event is left: *pos then points at the start of the unconsumed bytes (an
 * event not yet closed by a blank line), which an incremental reader keeps and reads
 * again with the bytes that follow; at the end of a stream they are discarded, as the SSE
 * standard says.  Returns -1 when `data` ran out of memory.  A lone '\r' ending the
 * bytes counts as a line end; its '\n', when it follows later, reads as a blank line
 * outside any event, which is skipped, so the events do not depend on where the bytes
 * were split. */
int pv_sse_next(const char **pos, const char *end, char *event, size_t event_size, pu_buf *data);

#endif /* FR_PROVIDER_WIRE_H */
