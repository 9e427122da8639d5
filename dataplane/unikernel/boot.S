/*
 * boot.S - from the PVH entry to C at CPL3.
 *
 * The loader (QEMU microvm, Firecracker) enters _start32 in 32-bit protected
 * mode, paging off, ebx = physical address of the PVH start_info. Under our
 * nested KVM every instruction at CPL0 is emulated (slow) and SSE there kills
 * the VM, so this file does only what needs CPL0, without loops:
 *   1. long mode, with the few page-table entries boot needs written by
 *      pagetables.S (the tables themselves are zeroed .bss),
 *   2. kvmclock (a wrmsr),
 *   3. TSS (stack for faults, I/O bitmap) and IDT register,
 * then iretq to CPL3 with IOPL=3 and interrupts off, and calls nfv_main.
 * The IDT entries themselves are written later by C at CPL3 (idt.c): only the
 * lidt has to happen here.
 */
#include "exit.h"

#define SEL_KCODE   0x08
#define SEL_KDATA   0x10
#define SEL_UDATA   0x1b        /* GDT entry 3, RPL 3 */
#define SEL_UCODE   0x23        /* GDT entry 4, RPL 3 */
#define SEL_TSS     0x28

#define TSS_IOMAP   104         /* I/O bitmap right after the 104-byte TSS */
#define TSS_SIZE    (TSS_IOMAP + 8192 + 1)  /* 65536 port bits + the 0xff terminator */

/* ---- PVH ELF note: tells the loader the 32-bit entry point. Own output
 * section in nfv.ld so ld emits the PT_NOTE that QEMU looks for. */
        .section .note.pvh, "a", @note
        .p2align 2
        .long 4                 /* name size */
        .long 4                 /* descriptor size */
        .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
        .asciz "Xen"
        .long _start32

        .section .text.boot, "ax"
        .code32
        .globl _start32
_start32:
        /* First thing: the boot clock, so boot_us covers all of our boot. */
        rdtsc
        movl %eax, nfv_boot_tsc
        movl %edx, nfv_boot_tsc + 4
        movl %ebx, %esi         /* start_info; cpuid below clobbers ebx */

        /* The page tables set NX on everything but text, which needs EFER.NXE;
         * a CPU without NX would fault on the first data access, so say so. */
        movl $0x80000001, %eax
        cpuid
        btl $20, %edx
        jnc no_nx

        movl $boot_stack_top, %esp
        call pt_init32          /* the entries boot needs (pagetables.S) */

        movl $0x620, %eax       /* CR4: PAE | OSFXSR | OSXMMEXCPT (SSE at CPL3) */
        movl %eax, %cr4
        movl $nfv_pml4, %eax
        movl %eax, %cr3
        movl $0xc0000080, %ecx  /* EFER */
        rdmsr
        orl $0x900, %eax        /* LME | NXE */
        wrmsr
        /* CR0: PG | WP | NE | MP | PE; EM and TS clear so SSE works */
        movl $0x80010023, %eax
        movl %eax, %cr0

        lgdt gdt_ptr
        movw $SEL_KDATA, %ax
        movw %ax, %ds
        movw %ax, %es
        movw %ax, %ss
        ljmp $SEL_KCODE, $start64

no_nx:
        /* No stack, no C: a three-letter message and the boot-error exit. */
        movw $0x3f8, %dx
        movb $'N', %al
        outb %al, %dx
        movb $'X', %al
        outb %al, %dx
        movb $'\n', %al
        outb %al, %dx
        movw $NFV_DEBUG_EXIT_PORT, %dx
        movl $NFV_EXIT_BOOT, %eax
        outl %eax, %dx
        hlt

        .code64
start64:
        movq $boot_stack_top, %rsp

        /* kvmclock, only if the hypervisor says it has it (an unknown MSR
         * would #GP, and there is no IDT yet): leaf 0x40000000 signature
         * "KVMKVMKVM", leaf 0x40000001 eax bit 3 = the 0x4b564d01 MSR pair. */
        movl $0x40000000, %eax
        cpuid
        cmpl $0x4b4d564b, %ebx  /* "KVMK" */
        jne 1f
        cmpl $0x40000001, %eax
        jb 1f
        movl $0x40000001, %eax
        cpuid
        btl $3, %eax
        jnc 1f
        movl $0x4b564d01, %ecx  /* MSR_KVM_SYSTEM_TIME_NEW */
        movl $nfv_pvclock, %eax
        orl $1, %eax            /* enable bit */
        xorl %edx, %edx
        wrmsr
1:
        /* TSS: base into its GDT descriptor (the address is split across
         * three fields, which a relocation cannot express), the stack that
         * faults from CPL3 switch to, and an all-zero I/O bitmap: once TR is
         * loaded the CPU consults it, and zero bits keep CPL3 port I/O
         * allowed (nested KVM ignores IOPL once TR is set). */
        movl $nfv_tss, %eax
        movw %ax, gdt_tss + 2
        shrl $16, %eax
        movb %al, gdt_tss + 4
        movb %ah, gdt_tss + 7
        movq $fault_stack_top, %rax
        movq %rax, nfv_tss + 4  /* RSP0 */
        movw $TSS_IOMAP, nfv_tss + 102
        movb $0xff, nfv_tss + TSS_IOMAP + 8192
        movw $SEL_TSS, %ax
        ltr %ax
        lidt idt_ptr

        /* Drop to CPL3: IOPL=3 (port I/O allowed), IF=0 (we poll). */
        pushq $SEL_UDATA
        pushq $user_stack_top
        pushq $0x3002
        pushq $SEL_UCODE
        pushq $user_entry
        iretq

user_entry:
        movl %esi, %edi         /* nfv_main(start_info physical address) */
        call nfv_main
        ud2                     /* nfv_main never returns */

/* ---- descriptor tables ------------------------------------------------- */
        .section .data
        .p2align 4
gdt:
        .quad 0
        .quad 0x00af9a000000ffff        /* 0x08 kernel code, 64-bit */
        .quad 0x00cf92000000ffff        /* 0x10 kernel data */
        .quad 0x00cff2000000ffff        /* 0x18 user data, DPL3 */
        .quad 0x00affa000000ffff        /* 0x20 user code, 64-bit, DPL3 */
gdt_tss:                                /* 0x28 64-bit TSS, base filled in at boot */
        .word TSS_SIZE - 1, 0
        .byte 0, 0x89, 0, 0
        .long 0, 0
gdt_end:

        .p2align 3
gdt_ptr:
        .word gdt_end - gdt - 1
        .quad gdt
idt_ptr:
        .word 32 * 16 - 1               /* the 32 exception vectors */
        .quad nfv_idt

/* ---- zero-initialised state (the loaders hand over zeroed RAM, so .bss is
 * not cleared again: a clearing loop would run emulated) ---------------- */
        .section .bss
        .p2align 6
        .globl nfv_boot_tsc, nfv_pvclock, nfv_idt, nfv_tss
nfv_boot_tsc:   .skip 8
        .p2align 6
nfv_pvclock:    .skip 64                /* struct pvclock_vcpu_time_info, written by the host */
        .p2align 4
nfv_idt:        .skip 32 * 16
        .p2align 6
nfv_tss:        .skip TSS_SIZE
        .p2align 12
boot_stack:     .skip 4096              /* CPL0 boot code only (32-bit too) */
boot_stack_top:
        .p2align 12
fault_stack:    .skip 16384             /* TSS.RSP0: exception handlers */
fault_stack_top:
        .p2align 12
        .globl nfv_stack_bottom
nfv_stack_bottom:                       /* main.c keeps a canary here: 2 MiB pages */
user_stack:     .skip 65536             /* allow no guard page. Everything at CPL3 */
user_stack_top:

/* No executable stack wanted (ld's default for objects without this note). */
        .section .note.GNU-stack, "", @progbits
