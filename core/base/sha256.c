/* SHA-256 digests as hex (core/base/sha256.h). */
#include <string.h>

#include <gnutls/crypto.h>

#include "base/sha256.h"

void fr__sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char d[32];
    static const char hex[] = "0123456789abcdef";
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, data, len, d) != 0)
        memset(d, 0, sizeof d);
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[64] = '\0';
}
