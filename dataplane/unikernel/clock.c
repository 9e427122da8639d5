/*
 * clock.c - the TSC-to-nanoseconds scale from kvmclock.
 *
 * Our default CPU model has neither CPUID leaf 0x15/0x16 nor the hypervisor
 * TSC leaf, so the TSC frequency comes from the pvclock structure the host
 * fills once boot.S has written its address to the kvmclock MSR (that wrmsr
 * needs CPL0). Only mul and shift are used: the TSC itself is read directly,
 * and the time base is our own boot TSC (the guest TSC does not start at 0).
 */
#include "clock.h"

struct pvclock {
    uint32_t version;               /* odd while the host is updating */
    uint32_t pad0;
    uint64_t tsc_timestamp;
    uint64_t system_time;
    uint32_t tsc_to_system_mul;
    int8_t tsc_shift;
    uint8_t flags;
    uint8_t pad[2];
};

extern volatile struct pvclock nfv_pvclock;

struct clock_scale nfv_clock;

int clock_init(void)
{
    uint32_t version, mul;
    int8_t shift;
    do {
        version = nfv_pvclock.version;
        barrier();
        mul = nfv_pvclock.tsc_to_system_mul;
        shift = nfv_pvclock.tsc_shift;
        barrier();
    } while ((version & 1) || version != nfv_pvclock.version);
    if (mul == 0) {
        /* No kvmclock (TCG): (ticks << 1) * 2^31 >> 32 = ticks, i.e. 1 GHz. */
        nfv_clock.mul = 1u << 31;
        nfv_clock.shift = 1;
        return 0;
    }
    nfv_clock.mul = mul;
    nfv_clock.shift = shift;
    return 1;
}

uint64_t clock_tsc_khz(void)
{
    /* ns per tick = mul * 2^shift / 2^32, so kHz = 1e6 * 2^32 / (mul * 2^shift). */
    uint64_t khz = (1000000ull << 32) / nfv_clock.mul;
    return nfv_clock.shift >= 0 ? khz >> nfv_clock.shift : khz << -nfv_clock.shift;
}
