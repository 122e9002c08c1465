/* Backoff delays and Retry-After parsing. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/retry.h"

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

int64_t fr__backoff_delay(const fr_retry_cfg *r, int attempt, uint64_t seed, const char *step)
{
    if (attempt < 1)
        attempt = 1;
    int64_t base = r->base_delay_us > 0 ? r->base_delay_us : 0;
    int64_t cap = r->max_delay_us > 0 ? r->max_delay_us : INT64_MAX;
    int64_t d;
    switch (r->backoff) {
    case FR_BACKOFF_CONSTANT: d = base; break;
    case FR_BACKOFF_LINEAR: d = base > cap / attempt ? cap : base * attempt; break;
    case FR_BACKOFF_EXPONENTIAL:
    case FR_BACKOFF_EXPONENTIAL_JITTER:
    default:
        d = base;
        for (int i = 1; i < attempt && d < cap; i++)
            d = d > cap / 2 ? cap : d * 2;
        break;
    }
    if (d > cap)
        d = cap;
    if (r->backoff == FR_BACKOFF_EXPONENTIAL_JITTER && d > 1) {
        /* A stream of its own, distinct from the plugin's host->random_u64 stream. */
        uint64_t x = mix(seed ^ hash_str(step) ^ mix((uint64_t)attempt ^ 0x6a09e667f3bcc909ULL));
        int64_t half = d / 2;
        d = half + (int64_t)(x % (uint64_t)(d - half + 1));
    }
    return d;
}

static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static int parse_month(const char *s)
{
    for (int i = 0; i < 12; i++)
        if (strncmp(s, months[i], 3) == 0)
            return i;
    return -1;
}

int64_t fr__retry_after_parse(const char *value, int64_t now_wall_us)
{
    if (!value)
        return -1;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t n = strlen(value);
    while (n && (value[n - 1] == ' ' || value[n - 1] == '\t' || value[n - 1] == '\r' ||
                 value[n - 1] == '\n'))
        n--;
    if (n == 0)
        return -1;
    size_t digits = 0;
    while (digits < n && isdigit((unsigned char)value[digits]))
        digits++;
    if (digits == n) {
        if (n > 9)
            return -1; /* more than ~31 years: not a sane delay */
        return strtoll(value, NULL, 10) * 1000000;
    }
    /* HTTP-date: IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850
     * "Sunday, 06-Nov-94 08:49:37 GMT", asctime "Sun Nov  6 08:49:37 1994". */
    char buf[64];
    if (n >= sizeof buf)
        return -1;
    memcpy(buf, value, n);
    buf[n] = '\0';
    struct tm tm = {0};
    char mon[4] = {0}, zone[4] = {0};
    int day, year, h, mi, s;
    const char *comma = strchr(buf, ',');
    if (comma && sscanf(comma + 1, " %2d %3s %4d %2d:%2d:%2d %3s", &day, mon, &year, &h, &mi, &s,
                        zone) == 7) {
        /* IMF-fixdate */
    } else if (comma && sscanf(comma + 1, " %2d-%3s-%2d %2d:%2d:%2d %3s", &day, mon, &year, &h, &mi,
                               &s, zone) == 7) {
        year += year < 70 ? 2000 : 1900;
    } else if (!comma &&
               sscanf(buf, "%*3s %3s %2d %2d:%2d:%2d %4d", mon, &day, &h, &mi, &s, &year) == 6) {
        strcpy(zone, "GMT");
    } else {
        return -1;
    }
    int m = parse_month(mon);
    if (m < 0 || strcmp(zone, "GMT") != 0 || day < 1 || day > 31 || h > 23 || mi > 59 || s > 60)
        return -1;
    tm.tm_year = year - 1900;
    tm.tm_mon = m;
    tm.tm_mday = day;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    int64_t at = (int64_t)t * 1000000;
    return at > now_wall_us ? at - now_wall_us : 0;
}
