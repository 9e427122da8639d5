/*
 * exit.h - how the guest ends, as the host sees it.
 *
 * QEMU's isa-debug-exit device (port 0xf4) turns a value written to it into
 * the process exit status (value << 1) | 1. Codes start at 1 so that no guest
 * exit is mistaken for status 1 (QEMU's own "bad option" failure) or status 0
 * (a triple fault with -no-reboot). nfv/unikernel/__init__.py mirrors these.
 */
#ifndef NFV_EXIT_H
#define NFV_EXIT_H

#define NFV_EXIT_NORMAL     1   /* quit command, or every source reached its limit: status 3 */
#define NFV_EXIT_FAULT      2   /* CPU exception (printed by the fault handler): status 5 */
#define NFV_EXIT_NO_NICS    3   /* fewer virtio-net devices than the config uses: status 7 */
#define NFV_EXIT_NO_MEMORY  4   /* RAM too small for pool, rings and metadata: status 9 */
#define NFV_EXIT_PIPELINE   5   /* nfv_pipeline returned a negative value: status 11 */
#define NFV_EXIT_DEVICE     6   /* a virtio device refused our setup (legacy, features): status 13 */
#define NFV_EXIT_BOOT       7   /* unusable boot state (no PVH info, no NX, bad config): status 15 */

#define NFV_DEBUG_EXIT_PORT 0xf4

#ifndef __ASSEMBLER__
/* Leave QEMU with one of the codes above; never returns. */
__attribute__((noreturn)) void nfv_exit(unsigned code);
#endif

#endif /* NFV_EXIT_H */
