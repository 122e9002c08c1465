/* String helpers (core/base/str.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

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
