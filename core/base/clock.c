/* Clocks and OS randomness (core/base/clock.h). */
#include <stdint.h>
#include <sys/random.h>
#include <time.h>

#include "base/clock.h"

int64_t fr__mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

uint64_t fr__os_random(void)
{
    /* splitmix64 over a per-thread state keyed from the OS; the thread's id and the clock
     * stand in if getrandom fails. */
    static _Thread_local uint64_t state;
    static _Thread_local int keyed;
    if (!keyed) {
        if (getrandom(&state, sizeof state, 0) != (ssize_t)sizeof state)
            state = (uint64_t)fr__mono_us() ^ ((uint64_t)(uintptr_t)&state << 16);
        keyed = 1;
    }
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int64_t fr__wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
