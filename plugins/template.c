/* template.c: the {{path}} template language of the built-in plugins (template.h). */
#include "template.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One step of template scanning from *pos: the literal text before the next placeholder
 * (lit, lit_len) and the placeholder's path (path, path_len; path == NULL at the end of
 * the template).  Returns 0, or -1 on a syntax error with a reason in err. */
static inline int pu_tmpl_next(const char **pos, const char **lit, size_t *lit_len,
                               const char **path, size_t *path_len, char *err, size_t errlen)
{
    const char *p = *pos;
    const char *open = strstr(p, "{{");
    *lit = p;
    if (!open) {
        *lit_len = strlen(p);
        *path = NULL;
        *path_len = 0;
        *pos = p + *lit_len;
        return 0;
    }
    *lit_len = (size_t)(open - p);
    const char *close = strstr(open + 2, "}}");
    if (!close) {
        snprintf(err, errlen, "unterminated \"{{\" near \"%.24s\"", open);
        return -1;
    }
    const char *a = open + 2, *b = close;
    while (a < b && pu_is_space(*a))
        a++;
    while (b > a && pu_is_space(b[-1]))
        b--;
    if (a == b) {
        snprintf(err, errlen, "empty placeholder \"{{}}\"");
        return -1;
    }
    for (const char *c = a; c < b; c++) {
        int seg_start = c == a || c[-1] == '.';
        int seg_end = c + 1 == b || c[1] == '.';
        if (pu_is_space(*c) || (*c == '.' && (seg_start || seg_end)) || *c == '{') {
            snprintf(err, errlen, "bad placeholder path \"%.*s\"", (int)(b - a), a);
            return -1;
        }
    }
    *path = a;
    *path_len = (size_t)(b - a);
    *pos = close + 2;
    return 0;
}

int pu_tmpl_check(const char *tmpl, const char *const *first_ok, char *err, size_t errlen)
{
    const char *pos = tmpl, *lit, *path;
    size_t lit_len, path_len;
    for (;;) {
        if (pu_tmpl_next(&pos, &lit, &lit_len, &path, &path_len, err, errlen) != 0)
            return -1;
        if (!path)
            return 0;
        if (!first_ok)
            continue;
        size_t seg = strcspn(path, ".");
        if (seg > path_len)
            seg = path_len;
        int ok = 0;
        for (size_t i = 0; first_ok[i] && !ok; i++)
            ok = strlen(first_ok[i]) == seg && memcmp(first_ok[i], path, seg) == 0;
        if (!ok) {
            int used = snprintf(err, errlen, "placeholder \"{{%.*s}}\" must start with ",
                                (int)path_len, path);
            for (size_t i = 0; first_ok[i] && used >= 0 && (size_t)used < errlen; i++)
                used += snprintf(err + used, errlen - (size_t)used, "%s\"%s\"",
                                 i == 0            ? ""
                                 : first_ok[i + 1] ? ", "
                                                   : " or ",
                                 first_ok[i]);
            return -1;
        }
    }
}

/* Looks up path (path_len bytes) under token root of d.  Returns the value's token (a JSON
 * null included), or -1 when the path is not there. */
static inline int pu_tmpl_lookup(const frk_json_doc *d, int root, const char *path, size_t path_len)
{
    int cur = root;
    size_t i = 0;
    char key[256];
    while (i <= path_len) {
        size_t j = i;
        while (j < path_len && path[j] != '.')
            j++;
        size_t n = j - i;
        if (n == 0 || n >= sizeof key)
            return -1;
        memcpy(key, path + i, n);
        key[n] = '\0';
        if (frk_json_type_of(d, cur) == FRK_JSON_OBJECT) {
            cur = frk_json_member(d, cur, key);
        } else if (frk_json_type_of(d, cur) == FRK_JSON_ARRAY) {
            if (strspn(key, "0123456789") != n)
                return -1;
            errno = 0;
            unsigned long long idx = strtoull(key, NULL, 10);
            cur = errno || idx > SIZE_MAX ? -1 : frk_json_at(d, cur, (size_t)idx);
        } else {
            return -1; /* a scalar (or null) has no members */
        }
        if (cur < 0)
            return -1;
        i = j + 1;
    }
    return cur;
}

fr_status pu_tmpl_render(const char *tmpl, const frk_json_doc *d, frk_buf *out, int *missing,
                         char *err, size_t errlen)
{
    const char *pos = tmpl, *lit, *path;
    size_t lit_len, path_len;
    *missing = 0;
    for (;;) {
        if (pu_tmpl_next(&pos, &lit, &lit_len, &path, &path_len, err, errlen) != 0)
            return FR_E_CONFIG;
        frk_buf_append(out, lit, lit_len);
        if (!path)
            break;
        int val = pu_tmpl_lookup(d, 0, path, path_len);
        if (val < 0) {
            snprintf(err, errlen, "%.*s", (int)path_len, path);
            *missing = 1;
            return FR_E_CONFIG;
        }
        if (frk_json_type_of(d, val) == FRK_JSON_STRING)
            frk_json_str(d, val, out);
        else
            frk_json_put_value(out, d, val); /* compact JSON, as json-c writes it */
    }
    return out->oom ? FR_E_NOMEM : FR_OK;
}
