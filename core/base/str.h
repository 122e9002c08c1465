/* String helpers.  Thread-safe. */
#ifndef FR_CORE_STR_H
#define FR_CORE_STR_H

/* vasprintf into a new string.  Caller frees with free(); NULL on OOM. */
char *fr__xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
