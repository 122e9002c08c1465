/* Byte sizes as operators write them on the command line: a whole number, optionally
 * followed by a binary unit K, M, G or T (also written KiB, MiB, GiB, TiB; any case):
 * "1048576", "512K", "256MiB", "4g".  Thread-safe. */
#ifndef FR_CORE_SIZE_H
#define FR_CORE_SIZE_H

#include <stdint.h>

/* Parses `text` into *bytes.  Returns 0, or -1 with a static reason in *why ("empty",
 * "not a whole number", "unknown unit", "overflow"). */
int fr__size_parse(const char *text, uint64_t *bytes, const char **why);

#endif
