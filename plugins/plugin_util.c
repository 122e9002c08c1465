/* plugin_util.c: helpers shared by the built-in plugins (plugin_util.h). */
#include "plugin_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *pu_arena_copy(const fr_host_api *host, fr_call *call, const char *s, size_t n)
{
    char *p = host->alloc(call, n + 1);
    if (!p) {
        host->set_error(call, "out of memory (%zu bytes)", n + 1);
        return NULL;
    }
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

fr_status pu_output_copy(const fr_host_api *host, fr_call *call, const char *s, size_t n,
                         char **out, size_t *out_len)
{
    char *copy = pu_arena_copy(host, call, s, n);
    if (!copy)
        return FR_E_NOMEM;
    *out = copy;
    *out_len = n;
    return FR_OK;
}

int pu_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

size_t pu_count_words(const char *s, size_t n)
{
    size_t words = 0;
    for (size_t i = 0; i < n; i++)
        if (!pu_is_space(s[i]) && (i == 0 || pu_is_space(s[i - 1])))
            words++;
    return words;
}

size_t pu_words_prefix(const char *s, size_t n, size_t max_words)
{
    size_t words = 0;
    for (size_t i = 0; i < n; i++) {
        if (!pu_is_space(s[i]) && (i == 0 || pu_is_space(s[i - 1]))) {
            if (words == max_words) {
                /* The cut: drop the whitespace before the first word that does not fit. */
                while (i > 0 && pu_is_space(s[i - 1]))
                    i--;
                return i;
            }
            words++;
        }
    }
    return n;
}

size_t pu_next_chunk(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && pu_is_space(s[i]))
        i++;
    while (i < n && !pu_is_space(s[i]))
        i++;
    while (i < n && pu_is_space(s[i]))
        i++;
    return i;
}

json_object *pu_json_parse(const char *text, size_t len, char *err, size_t errlen)
{
    return frk__jsonc_parse(text, len, err, errlen);
}

const char *pu_json_text(json_object *obj, size_t *len)
{
    return json_object_to_json_string_length(obj, PU_JSON_FLAGS, len);
}

fr_status pu_json_out(const fr_host_api *host, fr_call *call, json_object *obj, char **out,
                      size_t *out_len)
{
    size_t len = 0;
    const char *text = pu_json_text(obj, &len);
    if (!text) {
        host->set_error(call, "out of memory serializing JSON");
        return FR_E_NOMEM;
    }
    char *copy = pu_arena_copy(host, call, text, len);
    if (!copy)
        return FR_E_NOMEM;
    *out = copy;
    *out_len = len;
    return FR_OK;
}

void pu_double_text(double d, char *text, size_t size)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(text, size, "%.*g", prec, d);
        if (strtod(text, NULL) == d)
            break;
    }
}

int pu_json_add(json_object *obj, const char *key, json_object *val)
{
    if (!val)
        return -1;
    if (json_object_object_add(obj, key, val) != 0) {
        json_object_put(val);
        return -1;
    }
    return 0;
}

static inline int pu_json_append(json_object *arr, json_object *val)
{
    if (!val)
        return -1;
    if (json_object_array_add(arr, val) != 0) {
        json_object_put(val);
        return -1;
    }
    return 0;
}
