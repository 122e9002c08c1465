/* Clocks and OS randomness.  Thread-safe. */
#ifndef FR_CORE_CLOCK_H
#define FR_CORE_CLOCK_H

#include <stdint.h>

/* Monotonic and wall clocks in microseconds. */
int64_t fr__mono_us(void);
int64_t fr__wall_us(void);
/* 64 unpredictable-looking bits for identifiers and seeds: a per-thread generator keyed
 * once from the OS (getrandom), so no system call per value.  Not for secrets. */
uint64_t fr__os_random(void);

#endif
