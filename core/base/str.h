/* String helpers.  Thread-safe. */
#ifndef FR_CORE_STR_H
#define FR_CORE_STR_H

#include <stdarg.h>
#include <stddef.h>

/* vasprintf into a new string.  Caller frees with free(); NULL on OOM. */
char *fr__xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same with a va_list (left unspecified on return, as vasprintf leaves it). */
char *fr__xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* Copies `src` into dst[size] as snprintf(dst, size, "%s", src) does (cut to size - 1
 * bytes, NUL-terminated when size > 0) without printf's cost; returns strlen(src). */
size_t fr__str_copy(char *dst, size_t size, const char *src);

/* Appends `src` at dst[*len] the same way (dst[size] holds a NUL-terminated text of *len
 * bytes) and moves *len to its end (at most size - 1). */
void fr__str_append(char *dst, size_t size, size_t *len, const char *src);

/* Writes v in decimal into dst[FR_STR_INT_SIZE] as snprintf(dst, size, "%lld", v) does,
 * NUL-terminated, without printf's cost; returns its length. */
#define FR_STR_INT_SIZE 21
size_t fr__str_int(char *dst, long long v);
/* The same for an unsigned value (%llu). */
size_t fr__str_uint(char *dst, unsigned long long v);

#endif
