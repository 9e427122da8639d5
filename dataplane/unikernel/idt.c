/*
 * idt.c - fill the IDT that boot.S loaded with lidt.
 *
 * Written at CPL3 (the tables are in a user-writable page) because every
 * instruction at CPL0 is emulated here; the CPU only reads the gates when an
 * exception happens. A fault before idt_init runs resets the VM (QEMU exits
 * with status 0 under -no-reboot).
 */
#include <stdint.h>

#define SEL_KCODE 0x08
#define GATE_INTERRUPT 0x8e     /* present, DPL0, 64-bit interrupt gate: IF stays 0 */

extern uint64_t nfv_idt[32 * 2];
extern const uint64_t nfv_vector_table[32];

void idt_init(void)
{
    for (int v = 0; v < 32; v++) {
        uint64_t handler = nfv_vector_table[v];
        nfv_idt[2 * v] = (handler & 0xffff) | ((uint64_t)SEL_KCODE << 16)
                         | ((uint64_t)GATE_INTERRUPT << 40) | ((handler >> 16 & 0xffff) << 48);
        nfv_idt[2 * v + 1] = handler >> 32;
    }
}
