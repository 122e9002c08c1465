/* The secret registry (core/base/secret.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/json_check.h"
#include "base/secret.h"

static pthread_mutex_t secrets_mu = PTHREAD_MUTEX_INITIALIZER;
static char **secrets;
static size_t n_secrets, cap_secrets;
static size_t generation; /* bumped by every change (secrets_mu) */

void fr__secret_remember(const char *value)
{
    if (!value || strlen(value) < 4)
        return;
    pthread_mutex_lock(&secrets_mu);
    for (size_t i = 0; i < n_secrets; i++)
        if (strcmp(secrets[i], value) == 0) {
            pthread_mutex_unlock(&secrets_mu);
            return;
        }
    if (n_secrets == cap_secrets) {
        size_t cap = cap_secrets ? cap_secrets * 2 : 8;
        char **s = realloc(secrets, cap * sizeof *s);
        if (!s) {
            pthread_mutex_unlock(&secrets_mu);
            return;
        }
        secrets = s;
        cap_secrets = cap;
    }
    char *copy = strdup(value);
    if (copy) {
        secrets[n_secrets++] = copy;
        generation++;
    }
    pthread_mutex_unlock(&secrets_mu);
}

void fr__secret_reset(void)
{
    pthread_mutex_lock(&secrets_mu);
    for (size_t i = 0; i < n_secrets; i++)
        free(secrets[i]);
    free(secrets);
    secrets = NULL;
    n_secrets = cap_secrets = 0;
    generation++;
    pthread_mutex_unlock(&secrets_mu);
}

size_t fr__secret_generation(void)
{
    pthread_mutex_lock(&secrets_mu);
    size_t n = generation;
    pthread_mutex_unlock(&secrets_mu);
    return n;
}

static const char redacted[] = "[REDACTED]";

char *fr__secret_scrub(const char *text)
{
    pthread_mutex_lock(&secrets_mu);
    char *out = NULL;
    for (size_t i = 0; i < n_secrets; i++) {
        const char *src = out ? out : text;
        if (!strstr(src, secrets[i]))
            continue;
        size_t sl = strlen(secrets[i]), n = 0;
        for (const char *p = src; (p = strstr(p, secrets[i])) != NULL; p += sl)
            n++;
        size_t len = strlen(src) - n * sl + n * (sizeof redacted - 1);
        char *buf = malloc(len + 1), *w = buf;
        if (!buf)
            continue;
        for (const char *p = src, *hit; (hit = strstr(p, secrets[i])) != NULL || *p;) {
            if (!hit) {
                size_t rest = strlen(p);
                memcpy(w, p, rest);
                w += rest;
                break;
            }
            memcpy(w, p, (size_t)(hit - p));
            w += hit - p;
            memcpy(w, redacted, sizeof redacted - 1);
            w += sizeof redacted - 1;
            p = hit + sl;
        }
        *w = '\0';
        free(out);
        out = buf;
    }
    pthread_mutex_unlock(&secrets_mu);
    return out;
}

void fr__secret_scrub_json(json_object *o)
{
    if (!o || n_secrets == 0)
        return;
    switch (json_object_get_type(o)) {
    case json_type_string: {
        char *s = fr__secret_scrub(json_object_get_string(o));
        if (s) {
            json_object_set_string(o, s);
            free(s);
        }
        break;
    }
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(o); i++)
            fr__secret_scrub_json(json_object_array_get_idx(o, i));
        break;
    case json_type_object: {
        json_object_object_foreach(o, key, val)
        {
            (void)key; /* keys are field names chosen by FluxRoute or plugins' JSON */
            fr__secret_scrub_json(val);
        }
        break;
    }
    default: break;
    }
}

/* A secret that JSON writes with an escape never shows as it is in a string without
 * escapes. */
static int needs_escape(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\')
            return 1;
    return 0;
}

/* Whether the character at q is escaped (an odd run of backslashes before it, from lo). */
static int escaped(const char *lo, const char *q)
{
    size_t n = 0;
    while (q > lo && q[-1] == '\\')
        q--, n++;
    return n & 1;
}

/* Whether the n bytes at s hold a backslash followed by u or / (one pass over the text for
 * both pairs). */
static int has_long_escape(const char *s, size_t n)
{
    const char *end = s + n;
    for (const char *p = s; p < end && (p = memchr(p, '\\', (size_t)(end - p))) != NULL; p++)
        if (p + 1 < end && (p[1] == 'u' || p[1] == '/'))
            return 1;
    return 0;
}

/* Whether secret i is in the n bytes at s (NUL-terminated at n when `terminated`: strstr,
 * much faster than memmem). */
static int has_secret(const char *s, size_t n, int terminated, size_t i)
{
    return terminated ? strstr(s, secrets[i]) != NULL
                      : memmem(s, n, secrets[i], strlen(secrets[i])) != NULL;
}

/* Whether a secret is in the decoded strings of `json` that hold escapes (secrets_mu).
 * `plain`: no secret holds a character JSON must escape; then a string whose escapes are
 * all short ones (\" \\ \n \t \r \b \f) cannot hide one (an occurrence would lie between
 * escapes, as it is in the text) and is not decoded. */
static int in_escaped_strings(const char *json, size_t len, int plain)
{
    const char *p = json, *end = json + len, *bs;
    char *buf = NULL;
    size_t cap = 0;
    int found = 0;
    while (!found && (bs = memchr(p, '\\', (size_t)(end - p))) != NULL) {
        /* In valid JSON a backslash is inside a string: its opening quote is the nearest
         * unescaped one before it, its closing quote the next unescaped one. */
        const char *open = bs;
        while (open > p && !(open[-1] == '"' && !escaped(p, open - 1)))
            open--;
        const char *close = bs;
        int hides = !plain;
        while (close < end && *close != '"') {
            if (*close == '\\' && close + 1 < end && (close[1] == 'u' || close[1] == '/'))
                hides = 1;
            close += *close == '\\' ? 2 : 1;
        }
        if (close > end)
            close = end;
        size_t n = (size_t)(close - open);
        if (hides && n + 1 > cap) {
            char *grown = realloc(buf, n + 1);
            if (!grown) {
                found = 1; /* cannot tell: say it may */
                break;
            }
            buf = grown;
            cap = n + 1;
        }
        if (hides) {
            size_t dn = fr__json_get_string(open, n, buf);
            buf[dn] = '\0';
            int terminated = memchr(buf, '\0', dn) == NULL;
            for (size_t i = 0; i < n_secrets && !found; i++)
                found = has_secret(buf, dn, terminated, i);
        }
        p = close < end ? close + 1 : end;
    }
    free(buf);
    return found;
}

int fr__secret_in_json(const char *json, size_t len)
{
    pthread_mutex_lock(&secrets_mu);
    int found = 0, plain = 1;
    int terminated = json[len] == '\0' && memchr(json, '\0', len) == NULL;
    for (size_t i = 0; i < n_secrets && !found; i++) {
        if (needs_escape(secrets[i]))
            plain = 0;
        else
            found = has_secret(json, len, terminated, i);
    }
    /* Without a \u or \/ in the text (a pair of bytes that every such escape holds), plain
     * secrets cannot hide behind escapes. */
    int hiding = !plain || has_long_escape(json, len);
    if (!found && n_secrets && hiding)
        found = in_escaped_strings(json, len, plain);
    pthread_mutex_unlock(&secrets_mu);
    return found;
}
