/* String helpers (core/base/str.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/str.h"

char *fr__xvasprintf(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    return s;
}

char *fr__xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = fr__xvasprintf(fmt, ap);
    va_end(ap);
    return s;
}

size_t fr__str_copy(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (size) {
        size_t k = n < size ? n : size - 1;
        memcpy(dst, src, k);
        dst[k] = '\0';
    }
    return n;
}

void fr__str_append(char *dst, size_t size, size_t *len, const char *src)
{
    if (*len < size) {
        fr__str_copy(dst + *len, size - *len, src);
        *len += strlen(dst + *len);
    }
}

size_t fr__str_uint(char *dst, unsigned long long v)
{
    char tmp[FR_STR_INT_SIZE];
    size_t n = 0, k = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n)
        dst[k++] = tmp[--n];
    dst[k] = '\0';
    return k;
}

size_t fr__str_int(char *dst, long long v)
{
    if (v >= 0)
        return fr__str_uint(dst, (unsigned long long)v);
    dst[0] = '-';
    return 1 + fr__str_uint(dst + 1, 0ull - (unsigned long long)v);
}
