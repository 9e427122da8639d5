/*
 * exit.c - leave QEMU through isa-debug-exit (status = code * 2 + 1).
 */
#include "exit.h"
#include "io.h"

void nfv_exit(unsigned code)
{
    outl(NFV_DEBUG_EXIT_PORT, code);
    /* QEMU stops at the write; on a machine without the device, spin rather
     * than run on into whatever follows. */
    for (;;)
        cpu_relax();
}
