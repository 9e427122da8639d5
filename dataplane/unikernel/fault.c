/*
 * fault.c - report a CPU exception and end the VM.
 *
 * Runs at CPL0 on the TSS stack. Like all runtime C it is compiled with
 * -mgeneral-regs-only: an SSE instruction at CPL0 kills the VM under nested
 * KVM, so a handler that used one would hide the fault it reports.
 */
#include <stdint.h>
#include "console.h"
#include "exit.h"

struct fault_frame {            /* as vectors.S and the CPU leave the stack */
    uint64_t vector;
    uint64_t error;
    uint64_t rip, cs, rflags, rsp, ss;
};

static const char *const names[32] = {
    "divide error", "debug", "NMI", "breakpoint", "overflow", "bound range",
    "invalid opcode", "device not available", "double fault", "coprocessor overrun",
    "invalid TSS", "segment not present", "stack fault", "general protection",
    "page fault", "reserved", "x87 error", "alignment check", "machine check",
    "SIMD error", "virtualization", "control protection",
};

void nfv_fault(const struct fault_frame *f) __attribute__((noreturn));

void nfv_fault(const struct fault_frame *f)
{
    uint64_t cr2;
    __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
    const char *name = f->vector < 32 && names[f->vector] ? names[f->vector] : "reserved";
    con_printf("\nfault vector=%lu (%s) error=0x%lx rip=0x%lx cr2=0x%lx rsp=0x%lx cpl=%lu\n",
               f->vector, name, f->error, f->rip, cr2, f->rsp, f->cs & 3);
    nfv_exit(NFV_EXIT_FAULT);
}
