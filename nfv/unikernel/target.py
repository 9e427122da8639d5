"""A config running as a unikernel: the surface of HostNF, over a booted VM.

    nf = UnikernelNF("configs/firewall.click")
    result = nf.run(PacketList.from_bytes(frames, ports=0))
    result.outputs[1].to_list(), result.drops, nf.read("wan_allowed.count")
    nf.close()

`run` sends each packet into the NIC of its in_port over the VM's lossless
TCP stream netdevs, waits until the guest has taken every one (its NIC rx
counters), then collects exactly as many frames from each NIC as the guest
says it transmitted, so nothing is left in flight when it returns. Handlers
are read from a copy of the guest's arena (its stats rows and the element's
state arrays) with the same code the host uses. Write handlers run the host's
code on such a copy, taken while the guest holds its pipeline (`hold`: no
batch runs), and send back only the bytes that changed (`write` commands)
before releasing it: the pipeline sees the state from before or after the
handler, as on the host, never a part of it. `reset` reboots the VM on the
next use: a fresh boot is a fresh arena, and costs ~50 ms.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import numpy as np

from nfv.compile.plan import HEADER_BYTES
from nfv.errors import NfvError
from nfv.host import PortNames
from nfv.unikernel.build import DEFAULT_MEMORY, MiB, build_image

#: The most RAM a test VM is given without being asked (a million-route table fits).
MAX_AUTO_MEMORY = 1 << 30

#: Handler reads copy state arrays up to this size from the guest (the console is slow:
#: two hex digits per byte); bigger ones (route tables) read as zeros, or are refused
#: for a handler whose element says it needs them (Element.read_state).
MAX_STATE_READ = 64 * 1024
#: Changed byte runs closer than this are sent as one `write` (the bytes between
#: them resent unchanged): a command costs a round trip of a few ms, a byte ~0.1 ms.
MERGE_GAP = 32
_NIC_LINE = re.compile(r"^nic (\d+) rx=(\d+) tx=(\d+) rx_dropped=(\d+) tx_dropped=(\d+) rx_oversize=(\d+)")


def changed_runs(before: np.ndarray, after: np.ndarray, gap: int = MERGE_GAP) -> list[tuple[int, int]]:
    """[(start, end)] of the bytes that differ, runs at most `gap` bytes apart merged."""
    changed = np.flatnonzero(before != after)
    if not len(changed):
        return []
    breaks = np.flatnonzero(np.diff(changed) > gap + 1)
    starts = np.concatenate(([changed[0]], changed[breaks + 1]))
    ends = np.concatenate((changed[breaks], [changed[-1]])) + 1
    return [(int(a), int(b)) for a, b in zip(starts, ends)]


@dataclass
class UnikernelResult:
    """What one `run` produced, as HostDriver's RunResult names it."""
    outputs: dict = field(default_factory=dict)   # out_port -> PacketList
    drops: dict = field(default_factory=dict)     # drop_reason -> count
    oversize: int = 0
    batches: int = 0
    packets: int = 0
    created: int = 0


class UnikernelNF(PortNames):
    def __init__(self, config: str, defines: dict[str, str] | None = None,
                 memory: int | str | None = None, timeout: float = 20.0,
                 nics: list[str] | None = None, netns: str | None = None):
        """memory: the guest's RAM; None gives the default (8 MiB) or, for a config
        that needs more (many NICs, big tables), what its image needs.  nics: the
        VM's NICs as `nfv boot` names them (default: a socket per device, which
        `run` feeds); netns: the network namespace QEMU runs in (for taps)."""
        self.nics = nics
        self.netns = netns
        self.image = build_image(config, defines, memory=memory if memory is not None
                                 else MAX_AUTO_MEMORY)
        if memory is None:
            memory = max(DEFAULT_MEMORY, -(-self.image.memory_needed // MiB) * MiB)
        self.plan = self.image.plan
        self.graph = self.plan.graph
        self.memory = memory
        self.timeout = timeout
        self.vm = None
        if self.image.nic_count == 0:
            raise NfvError(f"{config} uses no devices: in the unikernel its sources run to their "
                           "LIMIT and the VM stops (use nfv bench --target unikernel)")

    # -- the VM ---------------------------------------------------------------------

    def boot(self):
        from nfv.unikernel.vm import VM

        if self.vm is None:
            self.vm = VM(self.image.path, nics=self.nics or ["tcp"] * self.image.nic_count,
                         memory=self.memory, netns=self.netns).start()
        return self.vm

    def reset(self) -> None:
        """Fresh state: the next use boots a new VM."""
        self.close()

    def close(self) -> None:
        if self.vm is not None:
            vm, self.vm = self.vm, None
            vm.stop()

    def nic_counters(self) -> dict[int, tuple[int, int, int, int, int]]:
        """{nic: (rx, tx, rx_dropped, tx_dropped, rx_oversize)} from the guest."""
        counters = {}
        for line in self.boot().command("nics"):
            m = _NIC_LINE.match(line)
            if m:
                counters[int(m.group(1))] = tuple(int(g) for g in m.groups()[1:])
        return counters

    def drop_counts(self) -> dict[int, int]:
        """{drop_reason: count} the guest's runtime counted for records left unsent."""
        drops = {}
        for line in self.boot().command("drops"):
            for part in line.split()[1:]:
                reason, _, count = part.partition("=")
                if count and int(count):
                    drops[int(reason)] = int(count)
        return drops

    def runtime_stats(self) -> dict[str, int]:
        """The guest runtime's `stats` line as numbers (batches, packets, created, ...)."""
        for line in self.boot().command("stats"):
            if line.startswith("stats "):
                return {k: int(v) for k, v in (kv.split("=", 1) for kv in line.split()[1:])
                        if v.isdigit()}
        return {}

    # -- running --------------------------------------------------------------------

    def run(self, packets, now_ns: int | None = None) -> UnikernelResult:
        """Push a PacketList (ports set to in_port numbers) through the VM's pipeline."""
        from nfv.dataplane.pcap import PacketList

        vm = self.boot()
        frames = packets.to_list()
        ports = [int(p) for p in np.asarray(packets.ports)]
        for port in set(ports):
            if port >= self.image.nic_count:     # a source's in_port (8 + k) too
                raise NfvError(f"in_port {port} is not a NIC of this unikernel "
                               f"(it has {self.image.nic_count})")
        before, drops_before = self.nic_counters(), self.drop_counts()
        stats_before = self.runtime_stats()
        sent = {}
        for frame, port in zip(frames, ports):
            vm.send(port, frame)
            sent[port] = sent.get(port, 0) + 1
        after = self._wait_taken(before, sent)
        result = UnikernelResult(packets=len(frames))
        for nic, (rx, tx, rx_dropped, tx_dropped, oversize) in after.items():
            result.oversize += oversize - before[nic][4]     # longer than a buffer: dropped
            want = tx - before[nic][1]
            got = []
            deadline = time.monotonic() + self.timeout
            while len(got) < want:
                frame = vm.recv(nic, timeout=max(0.0, deadline - time.monotonic()))
                if frame is None:
                    raise NfvError(f"NIC {nic}: the guest sent {want} frames, {len(got)} arrived "
                                   f"within {self.timeout:g} s")
                got.append(frame)
            if got:
                result.outputs[nic] = PacketList.from_bytes(got, ports=[nic] * len(got))
        for reason, count in self.drop_counts().items():
            delta = count - drops_before.get(reason, 0)
            if delta:
                result.drops[reason] = delta
        stats = self.runtime_stats()
        result.batches = stats.get("batches", 0) - stats_before.get("batches", 0)
        result.created = stats.get("created", 0) - stats_before.get("created", 0)
        return result

    def _wait_taken(self, before: dict, sent: dict) -> dict:
        """Counters once the guest has received (or dropped) every frame sent, and its
        transmit rings are empty."""
        deadline = time.monotonic() + self.timeout
        while True:
            now = self.nic_counters()
            taken = all(now[p][0] + now[p][2] - before[p][0] - before[p][2] >= n
                        for p, n in sent.items())
            if taken:
                # One more round: packets the last batch made may still be on their way out.
                again = self.nic_counters()
                if again == now:
                    return now
                continue
            if time.monotonic() > deadline:
                # Which host port fed which NIC: a rare failure under load once showed a
                # frame sent to NIC 0 counted on NIC 1.
                ports = {n.index: n.port for n in self.vm.nics}
                raise NfvError(f"the guest took {now} of {sent} frames within {self.timeout:g} s "
                               f"(NIC tcp ports {ports})")
            time.sleep(0.002)

    # -- handlers -------------------------------------------------------------------

    def _ranges(self, element: str | None, limit: int | None,
                only: tuple[str, ...] | None = None) -> list[tuple[int, int]]:
        ranges = [(self.plan.stats_offset, 16 * len(self.plan.index))]
        if element is not None:
            ranges += [(p.offset, p.nbytes) for p in self.plan.placements.get(element, [])
                       if (limit is None or p.nbytes <= limit)
                       and (only is None or p.array.name in only)]
        return ranges

    def arena_copy(self, element: str | None = None, limit: int | None = MAX_STATE_READ,
                   only: tuple[str, ...] | None = None) -> np.ndarray:
        """A host arena holding the guest's stats rows (and `element`'s state arrays
        up to `limit` bytes each, None: all of them, however big; `only` those named)."""
        vm = self.boot()
        arena = np.zeros(self.plan.arena_size, np.uint8)
        for offset, length in self._ranges(element, limit, only):
            arena[offset:offset + length] = np.frombuffer(vm.read_arena(offset, length), np.uint8)
        return arena

    def read(self, handler: str) -> str:
        element, name = self._split(handler)
        only = self.graph.elements[element].instance.read_state(name)
        if only is not None:
            big = [p for p in self.plan.placements.get(element, [])
                   if p.array.name in only and p.nbytes > MAX_STATE_READ]
            if big:
                names = ", ".join(f"{p.array.name} ({p.nbytes:,} bytes)" for p in big)
                raise NfvError(f"{handler}: it reads {element}'s {names}, and the unikernel "
                               f"target copies state arrays of up to {MAX_STATE_READ // 1024} "
                               f"KiB over the VM's console (~4 KB/s); read it on the host "
                               f"target, or configure a smaller table")
        return self.plan.read(self.arena_copy(element, only=only), element, name)

    def write(self, handler: str, value: str = "") -> None:
        """Write handler `element.handler` in the guest, between two of its batches.

        The element's state arrays (those `write_state` names, else all of them,
        however big: a 256 KiB table takes ~20 s each way over the console) and
        the stats rows are read while the
        guest runs no batch, the handler runs on that copy here, and the changed
        bytes go back before batches resume."""
        element, name = self._split(handler)
        el = self.graph.elements[element].instance
        if not any(h.name == name and h.write for h in el.handlers):
            known = [h.name for h in el.handlers if h.write]
            raise NfvError(f"{element} ({self.graph.elements[element].class_name}) has no write "
                           f"handler '{name}'" + (f" (it has: {', '.join(known)})" if known
                                                   else " (it has none)"))
        only = el.write_state(name)   # (the arrays the handler touches; None: all)
        vm = self.boot()
        with vm.held():
            before = self.arena_copy(element, limit=None, only=only)
            after = before.copy()
            self.plan.write(after, element, name, value)
            read = np.zeros(len(after), bool)
            for offset, length in self._ranges(element, None, only):
                read[offset:offset + length] = True
            stray = np.flatnonzero((before != after) & ~read)
            if len(stray):      # computed from zeros, not from the guest's bytes: refuse
                raise NfvError(f"{handler}: the handler changed arena bytes at {int(stray[0])} "
                               f"outside {element}'s state and the stats rows; nothing was written")
            for offset, end in changed_runs(before, after):
                self.write_arena(offset, after[offset:end].tobytes())

    def write_arena(self, offset: int, data: bytes) -> None:
        """Copy bytes into the guest's arena at `offset` (any number: several `write`
        commands if need be; each lands between two batches, all of them only inside
        `vm.held()`). The arena header (the runtime's free list) cannot be written."""
        if offset < HEADER_BYTES or offset + len(data) > self.plan.arena_size:
            raise NfvError(f"arena write {offset}+{len(data)}: outside {HEADER_BYTES}.."
                           f"{self.plan.arena_size} (the arena after its header)")
        if data:
            self.boot().write_arena(offset, data)

    def _split(self, handler: str) -> tuple[str, str]:
        element, sep, name = handler.rpartition(".")
        if not sep:
            raise NfvError(f"'{handler}': handlers are named element.handler")
        if element not in self.plan.index:
            raise NfvError(f"no element '{element}' in {self.graph.file}")
        return element, name

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
