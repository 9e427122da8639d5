"""`nfv build`, `nfv boot` and `nfv up`: the unikernel from the command line.

    nfv build configs/firewall.click -o fw.elf
    nfv boot fw.elf --nic 0=tcp:5550 --nic 1=tap:fw1
    nfv up configs/firewall.click --nic 0=tcp:5550 --nic 1=tcp:5551

`boot` starts QEMU with one virtio-net per --nic (NIC N is device N of the
config), waits for the guest's `ready`, reports the boot time, then relays
the guest's console until Ctrl-C or until the guest stops; Ctrl-C asks the
guest to quit (it prints its NIC counters) and QEMU is always stopped. A tcp
NIC is a QEMU stream server on 127.0.0.1:PORT that a traffic tool connects
to: each frame is a 4-byte big-endian length, then the frame.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from nfv.errors import NfvError

_SECTIONS = (".text", ".rodata", ".data", ".arena_init", ".bss")


def build(config: str, defines: dict[str, str], output: str | None, memory: str,
          out=sys.stdout) -> int:
    from nfv.unikernel.build import build_image

    target = output or str(Path(config).with_suffix(".elf").name)
    t0 = time.monotonic()
    image = build_image(config, defines, output=target, memory=memory)
    took = time.monotonic() - t0
    sections = image.sections
    parts = ", ".join(f"{name} {sections.get(name, 0):,}" for name in _SECTIONS)
    print(f"{target}: {image.size:,} bytes ({parts}; .bss is not in the file)", file=out)
    print(f"  {image.nic_count} NIC{'s' if image.nic_count != 1 else ''}, element state "
          f"{image.plan.arena_size:,} bytes, needs about {image.memory_needed / (1 << 20):.1f} MiB "
          f"of RAM; {'from the cache' if image.cached else 'built'} in {took:.1f} s", file=out)
    return 0


def parse_nics(items: list[str], count: int | None = None) -> list[str]:
    """`--nic N=SPEC` options as a list indexed by NIC number (every number 0..max given)."""
    nics: dict[int, str] = {}
    for item in items:
        number, sep, spec = item.partition("=")
        if not sep or not number.isdigit():
            raise NfvError(f"--nic {item}: write --nic N=tcp:PORT or --nic N=tap:NAME")
        if int(number) >= 8:
            raise NfvError(f"--nic {item}: a unikernel has at most 8 NICs (0..7)")
        nics[int(number)] = spec
    top = max(list(nics) + [(count or 0) - 1])
    missing = [str(n) for n in range(top + 1) if n not in nics]
    if missing:
        raise NfvError(f"no --nic for NIC {', '.join(missing)}: NICs are numbered from 0 "
                       "without gaps (device N of the config is NIC N)")
    return [nics[n] for n in range(top + 1)]


def boot(image: str, nic_items: list[str], memory: str, timeout: float | None,
         out=sys.stdout, nic_count: int | None = None) -> int:
    from nfv.unikernel import EXIT_NORMAL, exit_meaning
    from nfv.unikernel.vm import VM

    nics = parse_nics(nic_items, nic_count)
    # Ctrl-C must stop the guest even when this process inherited SIGINT ignored
    # (started from a program that ignores it): take Python's own handler back.
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
    vm = VM(image, nics=nics, memory=memory, connect=False)
    seen = 0    # console lines already relayed
    try:
        vm.start()
        print(f"{image}: ready in {vm.launch_to_ready_ms:.1f} ms from launch "
              f"({vm.boot_us} us inside the guest), {vm.accel.upper()}, "
              f"{len(nics)} NIC{'s' if len(nics) != 1 else ''}: "
              + ", ".join(f"{i}={spec}" + (f" (port {n.port})" if n.port else "")
                          for i, (spec, n) in enumerate(zip(nics, vm.nics))), file=out, flush=True)
        deadline = None if timeout is None else time.monotonic() + timeout
        while vm.running:
            lines = vm.console
            for line in lines[seen:]:
                print(line, file=out, flush=True)
            seen = len(lines)
            if deadline is not None and time.monotonic() > deadline:
                break
            time.sleep(0.05)
    except KeyboardInterrupt:
        pass
    finally:
        status = vm.stop()
        for line in vm.console[seen:]:
            print(line, file=out)
    if status not in (None, EXIT_NORMAL) and status >= 0:
        raise NfvError(f"the VM stopped: {exit_meaning(status)} (QEMU status {status})")
    return 0


def up(config: str, defines: dict[str, str], nic_items: list[str], memory: str,
       timeout: float | None, out=sys.stdout) -> int:
    from nfv.unikernel.build import build_image

    image = build_image(config, defines, memory=memory)
    print(f"{config}: image {image.size:,} bytes ({'cached' if image.cached else 'built'})",
          file=out)
    return boot(str(image.path), nic_items, memory, timeout, out, nic_count=image.nic_count)
