/*
 * pagetables.S - the static page tables boot.S loads into CR3.
 *
 * Built at link time, not at boot: under nested KVM a table-filling loop at
 * CPL0 is emulated and costs milliseconds. Identity map, 2 MiB pages:
 *
 *   0 - 2 MiB     read + execute   low memory (PVH start_info, cmdline) and
 *                                  the image's .text/.rodata (nfv.ld keeps them
 *                                  below 2 MiB and starts .data at 2 MiB)
 *   2 MiB - 1 GiB read + write, NX .data, .bss, and all RAM the runtime allocates
 *   3 - 4 GiB     read + write, NX, uncached (PCD|PWT): virtio-mmio, IOAPIC, LAPIC
 *
 * No page is both writable and executable. U/S is set at every level because
 * everything after boot runs at CPL3. RAM above 1 GiB is not mapped; mem.c
 * never hands it out.
 */
#define P     0x001
#define RW    0x002
#define US    0x004
#define PWT   0x008
#define PCD   0x010
#define PS    0x080             /* 2 MiB page */
#define NX    0x8000000000000000

        .section .data.pagetables, "aw"
        .p2align 12
        .globl nfv_pml4
nfv_pml4:
        .quad pdpt + P + RW + US
        .fill 511, 8, 0

        .p2align 12
pdpt:
        .quad pd_low + P + RW + US      /* 0 - 1 GiB */
        .quad 0
        .quad 0
        .quad pd_high + P + RW + US     /* 3 - 4 GiB */
        .fill 508, 8, 0

        .p2align 12
pd_low:
        .quad 0 + P + US + PS           /* text: not writable, executable */
        .set page, 1
        .rept 511
        .quad (page << 21) + P + RW + US + PS + NX
        .set page, page + 1
        .endr

        .p2align 12
pd_high:
        .set page, 0
        .rept 512
        .quad 0xc0000000 + (page << 21) + P + RW + US + PWT + PCD + PS + NX
        .set page, page + 1
        .endr

/* No executable stack wanted (ld's default for objects without this note). */
        .section .note.GNU-stack, "", @progbits
