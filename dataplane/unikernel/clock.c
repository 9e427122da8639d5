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

#define PIT_HZ 1193182u
#define PIT_COUNT 11932u            /* 10 ms */

static uint16_t pit_read_channel0(void)
{
    outb(0x43, 0x00);               /* latch channel 0's count */
    uint8_t low = inb(0x40);
    return (uint16_t)(low | inb(0x40) << 8);
}

/* Without kvmclock (TCG) count TSC ticks across 10 ms of the PIT. Channel 0
 * is the one usable here: microvm has no port 0x61, so channel 2's gate
 * cannot be raised. Interrupts stay off, so its IRQ does not matter. Port
 * I/O is cheap under TCG, and this path never runs under KVM. If no PIT
 * answers, assume 1 GHz. Returns 0 either way: the scale is not kvmclock's. */
static int calibrate_with_pit(void)
{
    outb(0x43, 0x34);               /* channel 0, low then high byte, mode 2 */
    outb(0x40, 0);                  /* count 65536: wraps every 55 ms */
    outb(0x40, 0);
    uint16_t first = pit_read_channel0();
    uint64_t start = rdtsc(), ticks = 0;
    for (uint32_t spins = 0; spins < 10000000u; spins++) {
        uint16_t elapsed = (uint16_t)(first - pit_read_channel0());   /* counts down, mod 2^16 */
        if (elapsed >= PIT_COUNT) {
            ticks = (rdtsc() - start) * PIT_COUNT / elapsed;
            break;
        }
    }
    uint64_t hz = ticks * PIT_HZ / PIT_COUNT;
    if (hz < 1000000)               /* no PIT, or nonsense: assume 1 GHz */
        hz = 1000000000;
    /* ns = ((ticks << shift) * mul) >> 32 with mul * 2^shift = 1e9 * 2^32 / hz. */
    uint64_t m = (1000000000ull << 32) / hz;
    int shift = 0;
    while (m >= (1ull << 32)) {
        m >>= 1;
        shift++;
    }
    nfv_clock.mul = (uint32_t)m;
    nfv_clock.shift = (int8_t)shift;
    return 0;
}

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
    if (mul == 0)
        return calibrate_with_pit();
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
