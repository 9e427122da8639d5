"""The unikernel target: link an image (`link`), boot it under QEMU (`vm`).

Exit statuses. The guest ends through QEMU's isa-debug-exit device, which
makes QEMU's process status `code * 2 + 1`; the codes are those of
dataplane/unikernel/exit.h. Status 1 is QEMU itself failing (a bad option, a
port in use) and status 0 a guest reset (a triple fault under -no-reboot).
"""
from __future__ import annotations

EXIT_NORMAL = 1 * 2 + 1        # `quit`, or every source reached its limit
EXIT_FAULT = 2 * 2 + 1         # CPU exception; the console has vector, error, RIP, CR2
EXIT_NO_NICS = 3 * 2 + 1       # fewer virtio-net devices than the config uses
EXIT_NO_MEMORY = 4 * 2 + 1     # RAM too small for pool, rings and metadata
EXIT_PIPELINE = 5 * 2 + 1      # nfv_pipeline returned a negative value
EXIT_DEVICE = 6 * 2 + 1        # a virtio device refused setup (legacy mode, features)
EXIT_BOOT = 7 * 2 + 1          # no PVH boot info, no NX, or an unusable config
EXIT_QEMU_ERROR = 1            # QEMU did not start the guest (see its stderr)
EXIT_RESET = 0                 # the guest reset itself (triple fault)

EXIT_MEANINGS = {
    EXIT_NORMAL: "normal end",
    EXIT_FAULT: "the guest faulted (CPU exception)",
    EXIT_NO_NICS: "the VM has fewer NICs than the config uses",
    EXIT_NO_MEMORY: "the VM has too little RAM",
    EXIT_PIPELINE: "the pipeline reported an internal error",
    EXIT_DEVICE: "a virtio device could not be set up",
    EXIT_BOOT: "the image could not boot (no PVH info, no NX, or a bad config)",
    EXIT_QEMU_ERROR: "QEMU failed before or while starting the guest",
    EXIT_RESET: "the guest reset (triple fault)",
}


def exit_meaning(status: int | None) -> str:
    """Words for a QEMU exit status (negative: killed by that signal)."""
    if status is None:
        return "still running"
    if status < 0:
        return f"QEMU was killed by signal {-status}"
    return EXIT_MEANINGS.get(status, f"unknown exit status {status}")
