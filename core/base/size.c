/* Byte sizes (see size.h). */
#include <strings.h>

#include "base/size.h"

int fr__size_parse(const char *text, uint64_t *bytes, const char **why)
{
    static const struct {
        const char *name;
        int shift;
    } units[] = {{"", 0},     {"b", 0},  {"k", 10},   {"kib", 10}, {"m", 20},
                 {"mib", 20}, {"g", 30}, {"gib", 30}, {"t", 40},   {"tib", 40}};
    if (!text || !*text) {
        *why = "empty";
        return -1;
    }
    if (*text < '0' || *text > '9') {
        *why = "not a whole number";
        return -1;
    }
    uint64_t n = 0;
    const char *p = text;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > (UINT64_MAX - (uint64_t)(*p - '0')) / 10) {
            *why = "overflow";
            return -1;
        }
        n = n * 10 + (uint64_t)(*p - '0');
    }
    for (unsigned i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(p, units[i].name) != 0)
            continue;
        if (units[i].shift && n > (UINT64_MAX >> units[i].shift)) {
            *why = "overflow";
            return -1;
        }
        *bytes = n << units[i].shift;
        return 0;
    }
    *why = *p == '.' ? "not a whole number" : "unknown unit (use K, M, G or T)";
    return -1;
}
