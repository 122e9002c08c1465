/* Unpredictable bytes from getrandom(2) (see secure_random.h). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/random.h>

#include "base/secure_random.h"

int fr__secure_random(void *buf, size_t len)
{
    unsigned char *p = buf;
    size_t got = 0;
    while (got < len) {
        /* Requests above 256 bytes may be cut short (and are, by a signal): continue. */
        ssize_t n = getrandom(p + got, len - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

int fr__secure_uuid(char *out, size_t size)
{
    unsigned char b[16];
    if (size < 37) {
        errno = EINVAL;
        return -1;
    }
    if (fr__secure_random(b, sizeof b) != 0)
        return -1;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, size, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return 0;
}
