/* SHA-256 digests (GnuTLS).  Thread-safe. */
#ifndef FR_CORE_SHA256_H
#define FR_CORE_SHA256_H

#include <stddef.h>

/* sha256 of `len` bytes as 64 hex digits into out[65]. */
void fr__sha256_hex(const void *data, size_t len, char out[65]);

#endif
