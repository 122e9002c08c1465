/* plugin_util.c: helpers shared by the built-in plugins (plugin_util.h). */
#include "plugin_util.h"

#include <pthread.h>

/* The tables live in functions so a plugin that uses neither gets no unused-variable
 * warning. */
static inline const pu_class_row *pu_class_table(size_t *n)
{
    static const pu_class_row rows[] = {
#define PU_X_(name, retried, brk, text) {FR_CLASS_##name, text},
        FR_CLASS_LIST(PU_X_)
#undef PU_X_
    };
    *n = PU_COUNT(rows);
    return rows;
}

static inline const pu_status_row *pu_status_table(size_t *n)
{
    static const pu_status_row rows[] = {
#define PU_X_(name, value, cls, brk, text) {value, FR_CLASS_##cls, #name},
        FR_STATUS_LIST(PU_X_)
#undef PU_X_
    };
    *n = PU_COUNT(rows);
    return rows;
}

int pu_class_status(const char *name, fr_status *out)
{
    size_t nc, ns;
    const pu_class_row *classes = pu_class_table(&nc);
    const pu_status_row *statuses = pu_status_table(&ns);
    for (size_t i = 0; name && i < nc; i++) {
        if (strcmp(classes[i].name, name) != 0)
            continue;
        for (size_t j = 0; j < ns; j++) {
            if (statuses[j].cls == classes[i].cls) {
                *out = statuses[j].code;
                return 0;
            }
        }
    }
    return -1;
}

void pu_class_names(char *out, size_t size)
{
    size_t used = 0, nc;
    const pu_class_row *classes = pu_class_table(&nc);
    if (size == 0)
        return;
    out[0] = '\0';
    for (size_t i = 0; i < nc; i++) {
        int n = snprintf(out + used, size - used, "%s%s", i ? ", " : "", classes[i].name);
        if (n < 0 || (size_t)n >= size - used)
            return;
        used += (size_t)n;
    }
}

const char *pu_status_name(fr_status status)
{
    size_t ns;
    const pu_status_row *statuses = pu_status_table(&ns);
    for (size_t i = 0; i < ns; i++)
        if (statuses[i].code == status)
            return statuses[i].name;
    return "UNKNOWN";
}

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

void pu_buf_append(pu_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void pu_buf_free(pu_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
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

static pthread_key_t pu_tokener_key;
static pthread_once_t pu_tokener_once = PTHREAD_ONCE_INIT;
/* One deep tokener per thread (freed when the thread ends; plugins are never unloaded,
 * so the destructor stays valid). */
static void pu_tokener_free(void *t)
{
    json_tokener_free(t);
}

static void pu_tokener_key_init(void)
{
    pthread_key_create(&pu_tokener_key, pu_tokener_free);
}

static inline json_tokener *pu_thread_tokener(void)
{
    pthread_once(&pu_tokener_once, pu_tokener_key_init);
    json_tokener *t = pthread_getspecific(pu_tokener_key);
    if (!t && (t = json_tokener_new_ex(PU_JSON_MAX_DEPTH)) != NULL)
        pthread_setspecific(pu_tokener_key, t);
    return t;
}

json_object *pu_json_parse(const char *text, size_t len, char *err, size_t errlen)
{
    if (!text || len == 0) {
        snprintf(err, errlen, "empty document");
        return NULL;
    }
    if (len > INT32_MAX) {
        snprintf(err, errlen, "document too large (%zu bytes)", len);
        return NULL;
    }
    /* json-c's default depth (32) is too shallow for step inputs nesting earlier
     * steps' outputs; a deep tokener is costly to create, so each thread keeps one. */
    json_tokener *tok = pu_thread_tokener();
    if (!tok) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    json_object *obj = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_reset(tok);
    if (jerr != json_tokener_success) {
        snprintf(err, errlen, "%s at offset %zu",
                 jerr == json_tokener_continue ? "unexpected end of document"
                                               : json_tokener_error_desc(jerr),
                 end);
        json_object_put(obj);
        return NULL;
    }
    for (size_t i = end; i < len; i++) {
        if (!pu_is_space(text[i])) {
            snprintf(err, errlen, "unexpected text after the JSON value at offset %zu", i);
            json_object_put(obj);
            return NULL;
        }
    }
    if (!obj)
        snprintf(err, errlen, "document is null");
    return obj;
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
