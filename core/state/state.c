/* The state handle (core/state/state.h). */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/secure_random.h"
#include "state/state.h"

fr_status fr__state_open(const char *url, const char *what, const char *prefix, fr_state **out,
                         char *err, size_t err_size)
{
    *out = NULL;
    fr_state *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, err_size, "%s: out of memory", what);
        return FR_E_NOMEM;
    }
    if (!prefix || !*prefix)
        prefix = "fluxroute";
    if (strlen(prefix) >= sizeof s->prefix || strpbrk(prefix, " {}\r\n")) {
        snprintf(err, err_size,
                 "%s: key prefix '%.80s' must be under %zu bytes, with no space or "
                 "braces",
                 what, prefix, sizeof s->prefix);
        free(s);
        return FR_E_CONFIG;
    }
    snprintf(s->prefix, sizeof s->prefix, "%s", prefix);
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    uint32_t rnd = 0;
    fr__secure_random(&rnd, sizeof rnd);
    snprintf(s->node, sizeof s->node, "%.60s:%ld:%08x", host, (long)getpid(), rnd);
    if (!url || !*url || !strcmp(url, "memory")) {
        s->kind = FR_STATE_MEMORY;
        *out = s;
        return FR_OK;
    }
    if (!strncasecmp(url, "redis://", 8) || !strncasecmp(url, "rediss://", 9)) {
        fr_status st = fr__redis_pool_open(url, what, 0, &s->redis, err, err_size);
        if (st != FR_OK) {
            free(s);
            return st;
        }
        s->kind = FR_STATE_REDIS;
        *out = s;
        return FR_OK;
    }
    const char *colon = strstr(url, "://");
    if (colon)
        snprintf(err, err_size,
                 "%s: unknown scheme '%.*s://': expected memory or "
                 "redis://[user:password@]host[:port][/db]",
                 what, (int)(colon - url > 20 ? 20 : colon - url), url);
    else /* a value with user info is not echoed: it may hold a password */
        snprintf(err, err_size,
                 "%s: '%.80s' is neither memory nor a redis:// URL "
                 "(redis://[user:password@]host[:port][/db])",
                 what, strchr(url, '@') ? "***" : url);
    free(s);
    return FR_E_CONFIG;
}

void fr__state_free(fr_state *s)
{
    if (!s)
        return;
    fr__redis_pool_free(s->redis);
    free(s);
}

const char *fr__state_describe(const fr_state *s)
{
    return s->kind == FR_STATE_REDIS ? fr__redis_pool_url(s->redis) : "memory";
}

char *fr__state_key(const fr_state *s, char *out, size_t size, const char *fmt, ...)
{
    int n = snprintf(out, size, "%s:", s->prefix);
    if (n < 0 || (size_t)n >= size)
        return out;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + n, size - (size_t)n, fmt, ap);
    va_end(ap);
    return out;
}
