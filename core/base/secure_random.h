/* Unpredictable bytes for identifiers others must not guess (serve's run ids): straight
 * from the kernel's CSPRNG through getrandom(2), never from a seeded user-space
 * generator and never from a weaker fallback.  Thread-safe. */
#ifndef FR_CORE_SECURE_RANDOM_H
#define FR_CORE_SECURE_RANDOM_H

#include <stddef.h>

/* Fills buf with len random bytes.  getrandom(2) blocks until the kernel's pool is
 * initialised (once, early at boot); interrupted calls and short reads are continued.
 * Returns 0, or -1 with errno set (ENOSYS: no getrandom; EFAULT, EINVAL) and buf not to be
 * used. */
int fr__secure_random(void *buf, size_t len);

/* A random (version 4) UUID in canonical form into out (at least 37 bytes).  Returns 0, or
 * -1 with errno set as fr__secure_random. */
int fr__secure_uuid(char *out, size_t size);

#endif
