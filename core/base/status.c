/* Status codes and error classes: the one table behind retries, breakers and reports. */
#include <string.h>

#include <fluxroute/status.h>

#include "base/api.h"

typedef struct status_row {
    fr_status code;
    fr_error_class cls;
    int counts_for_breaker;
    const char *name;
    const char *text;
} status_row;

static const status_row status_rows[] = {
#define FR_X_(name, value, cls, brk, text) {value, FR_CLASS_##cls, brk, #name, text},
    FR_STATUS_LIST(FR_X_)
#undef FR_X_
};

typedef struct class_row {
    int retried;
    int counts_for_breaker;
    const char *name;
} class_row;

static const class_row class_rows[] = {
#define FR_X_(name, retried, brk, text) {retried, brk, text},
    FR_CLASS_LIST(FR_X_)
#undef FR_X_
};

static const status_row *find_status(fr_status status)
{
    /* Codes are dense from 0 downwards, in list order, where a branch has not appended
     * past a gap (a code another branch reserves): then it is looked for. */
    size_t i = (size_t)(-(long)status), n = sizeof status_rows / sizeof status_rows[0];
    if (status <= 0 && i < n && status_rows[i].code == status)
        return &status_rows[i];
    for (i = 0; status < 0 && i < n; i++)
        if (status_rows[i].code == status)
            return &status_rows[i];
    return NULL;
}

FR_API const char *fr_strerror(fr_status status)
{
    const status_row *r = find_status(status);
    return r ? r->text : "unknown status";
}

FR_API const char *fr_status_name(fr_status status)
{
    const status_row *r = find_status(status);
    return r ? r->name : "UNKNOWN";
}

FR_API fr_error_class fr_status_class(fr_status status)
{
    const status_row *r = find_status(status);
    return r ? r->cls : FR_CLASS_INTERNAL;
}

FR_API const char *fr_class_name(fr_error_class cls)
{
    if ((unsigned)cls >= FR_CLASS_COUNT_)
        return "internal";
    return class_rows[cls].name;
}

FR_API fr_status fr_class_from_name(const char *name, fr_error_class *out)
{
    for (unsigned i = 0; name && i < FR_CLASS_COUNT_; i++) {
        if (strcmp(class_rows[i].name, name) == 0) {
            *out = (fr_error_class)i;
            return FR_OK;
        }
    }
    return FR_E_NOT_FOUND;
}

FR_API fr_status fr_class_status(fr_error_class cls)
{
    /* The first status of the class in list order is its representative. */
    for (size_t i = 0; i < sizeof status_rows / sizeof status_rows[0]; i++)
        if (status_rows[i].cls == cls)
            return status_rows[i].code;
    return FR_E_INVALID;
}

FR_API int fr_status_retried(fr_status status)
{
    return class_rows[fr_status_class(status)].retried;
}

FR_API int fr_status_counts_for_breaker(fr_status status)
{
    const status_row *r = find_status(status);
    return r ? r->counts_for_breaker : 1;
}
