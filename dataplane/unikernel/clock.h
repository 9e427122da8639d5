/*
 * clock.h - guest time in nanoseconds from the TSC, scaled by kvmclock.
 */
#ifndef NFV_CLOCK_H
#define NFV_CLOCK_H

#include <stdint.h>
#include "io.h"

extern uint64_t nfv_boot_tsc;       /* rdtsc at the 32-bit entry (boot.S) */

struct clock_scale {
    uint32_t mul;                   /* ns = (ticks * mul) >> 32, after the shift */
    int8_t shift;
};
extern struct clock_scale nfv_clock;

/* Read the scale kvmclock published; returns 0 if there is no kvmclock
 * (TCG), in which case the TSC is measured against the PIT (10 ms) and
 * callers say so. */
int clock_init(void);

static inline uint64_t clock_ticks_to_ns(uint64_t ticks)
{
    unsigned __int128 p = (unsigned __int128)ticks * nfv_clock.mul;
    if (nfv_clock.shift >= 0)
        p <<= nfv_clock.shift;
    else
        p >>= -nfv_clock.shift;
    return (uint64_t)(p >> 32);
}

/* Nanoseconds since the 32-bit entry: rdtsc is native at CPL3 (~8 ns). */
static inline uint64_t clock_ns(void) { return clock_ticks_to_ns(rdtsc() - nfv_boot_tsc); }

/* TSC frequency in kHz, for the boot line. */
uint64_t clock_tsc_khz(void);

#endif /* NFV_CLOCK_H */
