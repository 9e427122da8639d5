/*
 * io.h - the few machine instructions the runtime needs, as inline functions.
 *
 * Everything here works at CPL3 because the runtime runs there with IOPL=3
 * (see boot.S). Port and MMIO accesses each cost a VM exit (tens of
 * microseconds under nested KVM), so callers keep them off the packet path.
 */
#ifndef NFV_IO_H
#define NFV_IO_H

#include <stdint.h>

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" :: "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

/* MMIO through volatile pointers: one access each, never merged or reordered by gcc. */
static inline uint32_t mmio_read32(uintptr_t a) { return *(volatile uint32_t *)a; }
static inline uint16_t mmio_read16(uintptr_t a) { return *(volatile uint16_t *)a; }
static inline void mmio_write32(uintptr_t a, uint32_t v) { *(volatile uint32_t *)a = v; }

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

/* x86 keeps stores in order and loads in order, so ring publication only needs
 * gcc not to reorder (barrier); a store followed by a load of another location
 * (avail.idx then used.flags) needs a real fence (mfence). */
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }
static inline void mfence(void) { __asm__ volatile("mfence" ::: "memory"); }
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }

#endif /* NFV_IO_H */
