/* The kit's error classification: statuses and classes from the X-macro lists of
 * include/fluxroute/status.h (plugins link nothing of the host, so the lists are expanded
 * here as in the host's core/base/status.c), and HTTP statuses mapped onto them. */
#include <stdio.h>
#include <string.h>

#include <fluxroute/kit.h>

#define FRK_COUNT(a) (sizeof(a) / sizeof((a)[0]))

typedef struct class_row {
    fr_error_class cls;
    const char *name;
    int retried;
} class_row;

typedef struct status_row {
    fr_status code;
    fr_error_class cls;
    const char *name;
    int counts_for_breaker;
} status_row;

static const class_row *class_table(size_t *n)
{
    static const class_row rows[] = {
#define FRK_X_(name, retried, brk, text) {FR_CLASS_##name, text, retried},
        FR_CLASS_LIST(FRK_X_)
#undef FRK_X_
    };
    *n = FRK_COUNT(rows);
    return rows;
}

static const status_row *status_table(size_t *n)
{
    static const status_row rows[] = {
#define FRK_X_(name, value, cls, brk, text) {value, FR_CLASS_##cls, #name, brk},
        FR_STATUS_LIST(FRK_X_)
#undef FRK_X_
    };
    *n = FRK_COUNT(rows);
    return rows;
}

int frk_class_status(const char *name, fr_status *out)
{
    size_t nc, ns;
    const class_row *classes = class_table(&nc);
    const status_row *statuses = status_table(&ns);
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

void frk_class_names(char *out, size_t size)
{
    size_t used = 0, nc;
    const class_row *classes = class_table(&nc);
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

const char *frk_status_name(fr_status status)
{
    size_t ns;
    const status_row *statuses = status_table(&ns);
    for (size_t i = 0; i < ns; i++)
        if (statuses[i].code == status)
            return statuses[i].name;
    return "UNKNOWN";
}

static const status_row *find_status(fr_status status)
{
    size_t ns;
    const status_row *statuses = status_table(&ns);
    for (size_t i = 0; i < ns; i++)
        if (statuses[i].code == status)
            return &statuses[i];
    return NULL;
}

int frk_status_retried(fr_status status)
{
    size_t nc;
    const class_row *classes = class_table(&nc);
    const status_row *r = find_status(status);
    fr_error_class cls = r ? r->cls : FR_CLASS_INTERNAL;
    for (size_t i = 0; i < nc; i++)
        if (classes[i].cls == cls)
            return classes[i].retried;
    return 0;
}

int frk_status_counts_for_breaker(fr_status status)
{
    const status_row *r = find_status(status);
    return r ? r->counts_for_breaker : 1;
}

fr_status frk_http_status(int http)
{
    static const struct {
        int http;
        fr_status st;
    } by_http[] = {
        {400, FR_E_BAD_REQUEST},
        {401, FR_E_AUTH},
        {403, FR_E_AUTH},
        {404, FR_E_BAD_REQUEST},
        {408, FR_E_REQUEST_TIMEOUT},
        {413, FR_E_BAD_REQUEST},
        {422, FR_E_BAD_REQUEST},
        {429, FR_E_RATE_LIMITED},
        {500, FR_E_UNAVAILABLE},
        {502, FR_E_UNAVAILABLE},
        {503, FR_E_OVERLOADED},
        {504, FR_E_UNAVAILABLE},
        {529, FR_E_OVERLOADED},
    };
    for (size_t i = 0; i < FRK_COUNT(by_http); i++)
        if (by_http[i].http == http)
            return by_http[i].st;
    if (http >= 500)
        return FR_E_UNAVAILABLE;
    if (http >= 400)
        return FR_E_BAD_REQUEST;
    return FR_OK;
}
