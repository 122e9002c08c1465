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

/* One step of splitmix64: advances *state and returns the next 64 bits of its stream. */
static inline uint64_t fr__splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#endif
