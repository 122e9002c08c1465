/* Durations in Go syntax, as manifests and the original's environment use them:
 * an optional sign, then one or more <decimal number><unit> groups, units ns, us, µs, μs,
 * ms, s, m, h ("250ms", "1m30s", "1.5h").  A bare "0" is accepted; any other number
 * without a unit is an error.  Values are kept in microseconds (nanoseconds truncated).
 * Thread-safe. */
#ifndef FR_CORE_DURATION_H
#define FR_CORE_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* Parses `text` into *us.  Returns 0, or -1 with a static reason in *why ("missing
 * unit", "unknown unit \"x\"", "invalid number", "overflow", "empty"). */
int fr__duration_parse(const char *text, int64_t *us, const char **why);

/* Formats `us` compactly ("250ms", "1.5s", "2m0s" style as Go prints it) into buf.
 * Returns buf. */
char *fr__duration_format(int64_t us, char *buf, size_t size);

#endif
