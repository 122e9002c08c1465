/* Small helpers of the observability files, below the sinks and the hooks: environment
 * truthiness, timestamps, scrubbing, the model/usage scanner, traceparent text
 * (core/observe/obs_impl.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/secret.h"
#include "observe/obs_impl.h"

/* ---- configuration ------------------------------------------------------------------- */

int fr__obs_env_truthy(const char *name)
{
    static const char *const yes[] = {"1", "true", "yes", "on", NULL};
    const char *v = getenv(name);
    if (!v)
        return 0;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\n'))
        n--;
    for (int i = 0; yes[i]; i++)
        if (strlen(yes[i]) == n && strncasecmp(v, yes[i], n) == 0)
            return 1;
    return 0;
}

void fr__obs_timestamp(char out[32])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char buf[96];
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
    size_t n = strlen(buf) < 31 ? strlen(buf) : 31;
    memcpy(out, buf, n);
    out[n] = '\0';
}

char *fr__obs_scrub(const char *text)
{
    if (!text)
        return NULL;
    char *s = fr__secret_scrub(text);
    return s ? s : strdup(text);
}

/* ---- scanning an output for model and usage ----------------------------------------- */

/* The end of the JSON string starting at p[0] == '"', or NULL. */
static const char *string_end(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p;
    }
    return NULL;
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static int hexval(char c);

/* The UTF-8 of JSON string contents s[0..n) into out (truncated at a character boundary
 * to fit `size`). */
static void json_unescape(const char *s, size_t n, char *out, size_t size)
{
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        char buf[4];
        size_t k = 1;
        unsigned cp = 0;
        if (s[i] != '\\') {
            buf[0] = s[i++];
        } else if (i + 1 < n && s[i + 1] != 'u') {
            switch (s[i + 1]) {
            case 'b': buf[0] = '\b'; break;
            case 'f': buf[0] = '\f'; break;
            case 'n': buf[0] = '\n'; break;
            case 'r': buf[0] = '\r'; break;
            case 't': buf[0] = '\t'; break;
            default: buf[0] = s[i + 1]; break; /* \" \\ \/ */
            }
            i += 2;
        } else {
            for (int j = 0; j < 4 && i + 2 + (size_t)j < n; j++)
                cp = cp << 4 | (unsigned)(hexval((char)(s[i + 2 + j] | 0x20)) & 15);
            i += 6;
            if (cp >= 0xd800 && cp < 0xdc00 && i + 5 < n && s[i] == '\\' && s[i + 1] == 'u') {
                unsigned lo = 0;
                for (int j = 0; j < 4; j++)
                    lo = lo << 4 | (unsigned)(hexval((char)(s[i + 2 + j] | 0x20)) & 15);
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                i += 6;
            }
            if (cp < 0x80) {
                buf[0] = (char)cp;
            } else if (cp < 0x800) {
                buf[0] = (char)(0xc0 | cp >> 6), buf[1] = (char)(0x80 | (cp & 63)), k = 2;
            } else if (cp < 0x10000) {
                buf[0] = (char)(0xe0 | cp >> 12), buf[1] = (char)(0x80 | ((cp >> 6) & 63));
                buf[2] = (char)(0x80 | (cp & 63)), k = 3;
            } else {
                buf[0] = (char)(0xf0 | cp >> 18), buf[1] = (char)(0x80 | ((cp >> 12) & 63));
                buf[2] = (char)(0x80 | ((cp >> 6) & 63)), buf[3] = (char)(0x80 | (cp & 63)), k = 4;
            }
        }
        if (w + k >= size)
            break;
        memcpy(out + w, buf, k);
        w += k;
    }
    out[w] = '\0';
}

static int key_is(const char *k, size_t n, const char *want)
{
    return strlen(want) == n && memcmp(k, want, n) == 0;
}

void fr__obs_scan_usage(const char *json, size_t len, fr_obs_usage *u)
{
    const char *p = json, *end = json + len;
    int depth = 0, usage_depth = 0;
    while (p && p < end) {
        char c = *p;
        if (c == '{' || c == '[') {
            depth++;
            p++;
        } else if (c == '}' || c == ']') {
            if (depth == usage_depth)
                usage_depth = 0;
            depth--;
            p++;
        } else if (c == '"') {
            const char *k = p + 1, *ke = string_end(p, end);
            if (!ke)
                return;
            const char *v = skip_ws(ke + 1, end);
            if (v >= end || *v != ':') {
                p = ke + 1; /* a value */
                continue;
            }
            v = skip_ws(v + 1, end);
            size_t kn = (size_t)(ke - k);
            if (depth == 1 && v < end && *v == '"' &&
                (key_is(k, kn, "model") || key_is(k, kn, "provider"))) {
                const char *ve = string_end(v, end);
                if (!ve)
                    return;
                if (key_is(k, kn, "model"))
                    json_unescape(v + 1, (size_t)(ve - v - 1), u->model, sizeof u->model);
                else
                    json_unescape(v + 1, (size_t)(ve - v - 1), u->provider, sizeof u->provider);
                p = ve + 1;
                continue;
            }
            if (depth == 1 && key_is(k, kn, "usage") && v < end && *v == '{')
                usage_depth = depth + 1;
            else if (usage_depth && depth == usage_depth && v < end &&
                     (*v == '-' || (*v >= '0' && *v <= '9'))) {
                long long n = strtoll(v, NULL, 10);
                if (key_is(k, kn, "input_tokens"))
                    u->input_tokens = n;
                else if (key_is(k, kn, "output_tokens"))
                    u->output_tokens = n;
            }
            p = v;
        } else {
            p++;
        }
    }
}

/* ---- traceparent ----------------------------------------------------------------- */

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "00-<32 hex trace>-<16 hex span>-<2 hex flags>" (lower case, non-zero ids). */
int fr__obs_traceparent_parse(const char *tp, uint8_t trace[16], uint64_t *span)
{
    if (!tp || strlen(tp) < 55 || strncmp(tp, "00-", 3) != 0 || tp[35] != '-' || tp[52] != '-')
        return -1;
    int nonzero = 0;
    for (int i = 0; i < 16; i++) {
        int hi = hexval(tp[3 + 2 * i]), lo = hexval(tp[4 + 2 * i]);
        if (hi < 0 || lo < 0)
            return -1;
        trace[i] = (uint8_t)(hi << 4 | lo);
        nonzero |= trace[i];
    }
    uint64_t s = 0;
    for (int i = 0; i < 16; i++) {
        int v = hexval(tp[36 + i]);
        if (v < 0)
            return -1;
        s = s << 4 | (uint64_t)v;
    }
    if (!nonzero || !s || hexval(tp[53]) < 0 || hexval(tp[54]) < 0)
        return -1;
    *span = s;
    return 0;
}

void fr__obs_traceparent_format(const uint8_t trace[16], uint64_t span, char out[56])
{
    char *w = out + 3;
    memcpy(out, "00-", 3);
    for (int i = 0; i < 16; i++)
        w += sprintf(w, "%02x", trace[i]);
    sprintf(w, "-%016llx-01", (unsigned long long)span);
}

void fr__obs_hex_id(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}
