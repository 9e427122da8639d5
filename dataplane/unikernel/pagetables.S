/*
 * pagetables.S - the page tables boot.S loads into CR3, and the 32-bit code
 * that fills them.
 *
 * Identity map, 2 MiB pages:
 *
 *   0 - 2 MiB           read + execute   low memory (PVH start_info, cmdline) and
 *                                        the image's .text/.rodata (nfv.ld keeps
 *                                        them below 2 MiB and starts .data at 2 MiB)
 *   2 MiB - RAM end     read + write, NX .data, .bss, the arena's initial state, and
 *                                        all RAM the runtime allocates (at most 1 GiB)
 *   two 2 MiB windows   read + write, NX, uncached (PCD|PWT): virtio-mmio of
 *   of 3 - 4 GiB                         Firecracker (0xd0000000) and microvm (0xfeb00000)
 *
 * No page is both writable and executable. U/S is set at every level because
 * everything after boot runs at CPL3.
 *
 * The tables are in .bss (the loaders hand over zeroed RAM), so the image
 * carries none of their 16 KiB. Under nested KVM every instruction at CPL0
 * (and all 32-bit boot code) is emulated, about 1 us each, so pt_init32 writes
 * only what boot needs, without a loop except one round per 2 MiB the image
 * spans above 2 MiB (one, unless the config's state is megabytes): 3 table
 * links, the text page, the image's pages and the two MMIO windows. The RAM
 * above the image is mapped from C at CPL3 by the allocator (mem.c), as far
 * as it hands memory out.
 */
#include "pagetables.h"

#define P     PT_P
#define RW    PT_RW
#define US    PT_US
#define PS    PT_PS
#define NX_HI PT_NX_HI
#define MMIO_FLAGS (PT_P + PT_RW + PT_US + PT_PWT + PT_PCD + PT_PS)

        .section .text.boot, "ax"
        .code32
        .globl pt_init32
/* Called from _start32 with a stack, paging off; clobbers eax, ecx, edi. */
pt_init32:
        movl $nfv_pdpt + P + RW + US, nfv_pml4
        movl $nfv_pd_low + P + RW + US, nfv_pdpt                /* 0 - 1 GiB */
        movl $pd_high + P + RW + US, nfv_pdpt + 3 * 8           /* 3 - 4 GiB */
        movl $0 + P + US + PS, nfv_pd_low                       /* text: not writable */
        /* 2 MiB up to the end of the loaded image (nfv.ld counts the pages) */
        movl $__boot_pd_pages, %ecx
        movl $nfv_pd_low + 8, %edi
        movl $0x200000 + P + RW + US + PS, %eax
1:      movl %eax, (%edi)
        movl $NX_HI, 4(%edi)
        addl $0x200000, %eax
        addl $8, %edi
        decl %ecx
        jnz 1b
        movl $PT_MMIO_FIRECRACKER + MMIO_FLAGS, pd_high + ((PT_MMIO_FIRECRACKER - 0xc0000000) >> 21) * 8
        movl $NX_HI, pd_high + ((PT_MMIO_FIRECRACKER - 0xc0000000) >> 21) * 8 + 4
        movl $PT_MMIO_MICROVM + MMIO_FLAGS, pd_high + ((PT_MMIO_MICROVM - 0xc0000000) >> 21) * 8
        movl $NX_HI, pd_high + ((PT_MMIO_MICROVM - 0xc0000000) >> 21) * 8 + 4
        ret

        .section .bss
        .p2align 12
        .globl nfv_pml4, nfv_pdpt, nfv_pd_low
nfv_pml4:       .skip 4096
nfv_pdpt:       .skip 4096
nfv_pd_low:     .skip 4096
pd_high:        .skip 4096

/* No executable stack wanted (ld's default for objects without this note). */
        .section .note.GNU-stack, "", @progbits
