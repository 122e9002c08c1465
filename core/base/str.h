/* String helpers.  Thread-safe. */
#ifndef FR_CORE_STR_H
#define FR_CORE_STR_H

#include <stdarg.h>

/* vasprintf into a new string.  Caller frees with free(); NULL on OOM. */
char *fr__xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same with a va_list (left unspecified on return, as vasprintf leaves it). */
char *fr__xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

#endif
