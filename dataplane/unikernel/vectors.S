/*
 * vectors.S - entry stubs for the 32 CPU exception vectors.
 *
 * Each stub makes the stack look the same (error code, or 0 for vectors the
 * CPU pushes none for, then the vector number) and jumps to one common path
 * that calls nfv_fault in fault.c. The CPU has already switched to the TSS
 * RSP0 stack, because every fault we expect comes from CPL3. idt.c points
 * the IDT gates at the addresses in nfv_vector_table.
 */
        .section .text
        .p2align 4

/* Vectors with a CPU-pushed error code: 8, 10-14, 17, 21, 29, 30. */
#define HAS_ERROR(v) ((v) == 8 || ((v) >= 10 && (v) <= 14) || (v) == 17 || (v) == 21 || (v) == 29 || (v) == 30)

        .macro stub v
        .p2align 4
vector_\v:
        .if HAS_ERROR(\v)
        .else
        pushq $0                /* no CPU error code: keep the frame layout */
        .endif
        pushq $\v
        jmp fault_common
        .endm

        .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        stub \v
        .endr

fault_common:
        movq %rsp, %rdi         /* struct fault_frame * */
        andq $-16, %rsp         /* ABI stack alignment for the C call */
        call nfv_fault
1:      hlt                     /* nfv_fault exits QEMU; never here */
        jmp 1b

        .section .rodata
        .p2align 3
        .globl nfv_vector_table
nfv_vector_table:
        .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        .quad vector_\v
        .endr

/* No executable stack wanted (ld's default for objects without this note). */
        .section .note.GNU-stack, "", @progbits
