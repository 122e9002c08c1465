/* The kit's HTTP pieces (include/fluxroute/kit.h): Retry-After values and HTTP-dates,
 * header look-up in a raw header block, and the server-sent-events parser.  Pure
 * functions: no state, and no clock but the one the caller passes in. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <fluxroute/kit.h>

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

int frk_http_date(const char *v, size_t n, int64_t *epoch_s)
{
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    static const char *const days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    /* Fixed layout: "Sun, 06 Nov 1994 08:49:37 GMT" */
    static const char shape[] = "aaa, dd aaa dddd dd:dd:dd GMT";
    if (n != sizeof shape - 1)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int ok = shape[i] == 'd'   ? isdigit((unsigned char)v[i])
                 : shape[i] == 'a' ? isalpha((unsigned char)v[i])
                                   : v[i] == shape[i];
        if (!ok)
            return -1;
    }
    int wd = 0;
    for (size_t i = 0; i < 7; i++)
        wd |= strncmp(v, days[i], 3) == 0;
    unsigned m = 0;
    for (unsigned i = 0; i < 12; i++)
        if (strncmp(v + 8, months[i], 3) == 0)
            m = i + 1;
#define PV_D2(o) ((v[o] - '0') * 10 + (v[(o) + 1] - '0'))
    int day = PV_D2(5), year = PV_D2(12) * 100 + PV_D2(14);
    int hh = PV_D2(17), mm = PV_D2(20), ss = PV_D2(23);
#undef PV_D2
    if (!wd || !m || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60)
        return -1;
    *epoch_s = days_from_civil(year, m, (unsigned)day) * 86400 + hh * 3600 + mm * 60 + ss;
    return 0;
}

int frk_retry_after(const char *v, size_t n, int64_t now_us, int64_t *delay_us)
{
    while (n && is_space(*v))
        v++, n--;
    while (n && is_space(v[n - 1]))
        n--;
    if (n == 0)
        return -1;
    if (isdigit((unsigned char)v[0])) {
        int64_t us = 0;
        size_t i = 0;
        for (; i < n && isdigit((unsigned char)v[i]); i++)
            us = us > FRK_RETRY_AFTER_MAX_US ? us : us * 10 + (v[i] - '0') * 1000000LL;
        if (i < n && v[i] == '.') {
            int64_t scale = 100000;
            for (i++; i < n && isdigit((unsigned char)v[i]); i++, scale /= 10)
                us += (v[i] - '0') * scale;
        }
        if (i != n)
            return -1;
        *delay_us = us > FRK_RETRY_AFTER_MAX_US ? FRK_RETRY_AFTER_MAX_US : us;
        return 0;
    }
    int64_t at;
    if (frk_http_date(v, n, &at) != 0)
        return -1;
    int64_t d = at * 1000000 - now_us;
    *delay_us = d < 0 ? 0 : d > FRK_RETRY_AFTER_MAX_US ? FRK_RETRY_AFTER_MAX_US : d;
    return 0;
}

int frk_http_header(const char *block, size_t block_len, const char *name, const char **val,
                    size_t *len)
{
    const char *p = block, *end = block + block_len, *found = NULL;
    size_t nlen = strlen(name), flen = 0;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *next = eol ? eol + 1 : end;
        size_t l = (size_t)((eol ? eol : end) - p);
        if (l && p[l - 1] == '\r')
            l--;
        if (l >= 5 && strncmp(p, "HTTP/", 5) == 0) {
            found = NULL; /* a new response head starts */
        } else if (l > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1;
            while (v < p + l && (*v == ' ' || *v == '\t'))
                v++;
            found = v;
            flen = (size_t)(p + l - v);
        }
        p = next;
    }
    if (!found)
        return 0;
    *val = found;
    *len = flen;
    return 1;
}

int frk_sse_next(const char **pos, const char *end, char *event, size_t event_size, frk_buf *data)
{
    const char *p = *pos, *start = p; /* start: where the current event begins */
    int have = 0;
    event[0] = '\0';
    data->len = 0;
    if (data->data)
        data->data[0] = '\0';
    while (p < end) {
        const char *eol = p;
        while (eol < end && *eol != '\n' && *eol != '\r')
            eol++;
        if (eol == end)
            break; /* an unterminated last line: incomplete */
        const char *next = eol + 1;
        if (*eol == '\r' && next < end && *next == '\n')
            next++;
        size_t l = (size_t)(eol - p);
        if (l == 0) {
            p = next;
            if (have) {
                *pos = p;
                return data->oom ? -1 : 1;
            }
            start = p;
            continue;
        }
        const char *colon = memchr(p, ':', l);
        size_t flen = colon ? (size_t)(colon - p) : l;
        const char *v = colon ? colon + 1 : eol;
        if (v < eol && *v == ' ')
            v++;
        size_t vlen = (size_t)(eol - v);
        if (flen == 4 && memcmp(p, "data", 4) == 0) {
            if (have && data->len)
                frk_buf_append(data, "\n", 1);
            frk_buf_append(data, v, vlen);
            have = 1;
        } else if (flen == 5 && memcmp(p, "event", 5) == 0) {
            snprintf(event, event_size, "%.*s", (int)vlen, v);
            have = 1;
        }
        p = next;
        if (!have)
            start = p; /* comments and other fields outside an event are consumed */
    }
    *pos = start;
    return 0;
}

int frk_retry_after_response(const fr_host_api *host, fr_call *call, const fr_http_response *resp,
                             int64_t *delay_us)
{
    const char *v;
    size_t n;
    if (!resp || !frk_http_header(resp->headers, resp->headers_len, "retry-after", &v, &n))
        return -1;
    /* The clock only for a date: delta-seconds need no "now". */
    int64_t now_us = n && isdigit((unsigned char)*v) ? 0 : host->clock_us(call);
    return frk_retry_after(v, n, now_us, delay_us);
}
