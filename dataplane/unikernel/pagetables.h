/*
 * pagetables.h - what the page tables map, shared by pagetables.S (which
 * fills them) and the C that relies on them (devices.c, mem.c).
 */
#ifndef NFV_PAGETABLES_H
#define NFV_PAGETABLES_H

#define PT_PAGE_SHIFT       21                  /* 2 MiB pages */

/* Entry bits */
#define PT_P                0x001
#define PT_RW               0x002
#define PT_US               0x004
#define PT_PWT              0x008
#define PT_PCD              0x010
#define PT_PS               0x080               /* 2 MiB page */
#define PT_NX_HI            0x80000000          /* NX (bit 63) in the entry's upper half */
#define PT_RAM_LIMIT        0x40000000          /* RAM is mapped up to 1 GiB */

/* The two 2 MiB windows of the 3-4 GiB range that are mapped (uncached):
 * where Firecracker and QEMU microvm put their virtio-mmio devices. */
#define PT_MMIO_FIRECRACKER 0xd0000000          /* devices every 4 KiB from here */
#define PT_MMIO_MICROVM     0xfea00000          /* slots 0xfeb00000 + 0x200 * n */

#ifndef __ASSEMBLER__
#include <stdint.h>

/* 1 if [base, base + len) lies inside one mapped MMIO window. */
static inline int pt_mmio_mapped(uint64_t base, uint64_t len)
{
    uint64_t page = base >> PT_PAGE_SHIFT;
    return (page == (PT_MMIO_FIRECRACKER >> PT_PAGE_SHIFT) || page == (PT_MMIO_MICROVM >> PT_PAGE_SHIFT))
           && ((base + len - 1) >> PT_PAGE_SHIFT) == page;
}

#endif

#endif /* NFV_PAGETABLES_H */
