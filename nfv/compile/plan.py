"""The plan of a compiled pipeline: entry points, exits, and where state lives in the arena.

Everything here is data the code generator and the drivers both need: which
`in_port` enters at which element, which `out_port` each exit writes, the
byte offset of every element's state arrays in the arena (so a handler can
read a counter and a write handler can replace a table between two batches),
and the initial contents of the arena.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nfv.element import Kernel, StateArray
from nfv.errors import ConfigError, ConfigErrors, NfvError
from nfv.graph import Graph

# Mirrors dataplane/pipeline_abi.h (checked by tests/test_compile.py against the header).
MAX_DEVICES = 8
FIRST_SOURCE = 8
FIRST_SINK = 8
FREE_CAP = 256
HEADER_BYTES = 8 + 4 * FREE_CAP    # struct nfv_arena_header
ALIGN = 64                         # each state array starts on its own cache line
REASONS = 32                       # drop-reason counters kept in the arena...
SCRATCH = REASONS - 1              # ...the last of which is scratch for the warm-up pass


@dataclass
class Placement:
    """One state array of one element, at a byte offset in the arena."""

    element: str
    array: StateArray
    offset: int

    @property
    def nbytes(self) -> int:
        return np.dtype(self.array.dtype).itemsize * self.array.size


@dataclass
class Plan:
    graph: Graph
    index: dict[str, int] = field(default_factory=dict)      # element -> stats row
    entries: dict[int, str] = field(default_factory=dict)    # in_port -> entry element
    device_numbers: dict[str, int] = field(default_factory=dict)  # element -> device/sink port
    sources: list[str] = field(default_factory=list)         # in_port FIRST_SOURCE + k
    sinks: list[str] = field(default_factory=list)           # out_port FIRST_SINK + k
    placements: dict[str, list[Placement]] = field(default_factory=dict)
    kernels: dict[str, Kernel] = field(default_factory=dict)
    stats_offset: int = HEADER_BYTES
    reasons_offset: int = 0   # u64[REASONS]: drops that leave no record (a copy with no buffer)
    arena_size: int = 0

    def new_arena(self) -> np.ndarray:
        """A fresh arena: zeros, with every state array's initial contents copied in."""
        arena = allocate(self.arena_size)
        for places in self.placements.values():
            for p in places:
                if p.array.init is not None:
                    view = arena[p.offset:p.offset + p.nbytes].view(p.array.dtype)
                    view[:] = np.asarray(p.array.init, dtype=p.array.dtype)
        return arena

    def state_views(self, arena: np.ndarray, element: str) -> dict[str, np.ndarray]:
        return {p.array.name: arena[p.offset:p.offset + p.nbytes].view(p.array.dtype)
                for p in self.placements.get(element, [])}

    def read(self, arena: np.ndarray, element: str, handler: str) -> str:
        """Read handler `element.handler` from an arena (the element's or a generic one)."""
        el = self.graph.elements.get(element)
        if el is None:
            raise NfvError(f"no element '{element}' in {self.graph.file}")
        stats = self.stats(arena)[self.index[element]]
        text = el.instance.read_handler(handler, self.state_views(arena, element))
        if text is not None:
            return text
        if handler == "drops":
            return str(int(stats[1]))
        if handler == "count" and el.instance.role in ("device", "device_out", "source", "sink",
                                                      "discard"):
            return str(int(stats[0]))
        known = [h.name for h in el.instance.handlers if h.read] + ["drops"]
        raise NfvError(f"{element} ({el.class_name}) has no read handler '{handler}'"
                       f" (it has: {', '.join(dict.fromkeys(known))})")

    def write(self, arena: np.ndarray, element: str, handler: str, value: str) -> None:
        """Write handler `element.handler` on an arena, in place; NfvError for what cannot be."""
        from nfv.errors import ArgError

        el = self.graph.elements.get(element)
        if el is None:
            raise NfvError(f"no element '{element}' in {self.graph.file}")
        try:
            done = el.instance.write_handler(handler, value, self.state_views(arena, element))
        except ArgError as e:
            raise NfvError(f"{element}.{handler}: {e.message}"
                           + (f" ({e.hint})" if e.hint else "")) from None
        if not done:
            known = [h.name for h in el.instance.handlers if h.write]
            raise NfvError(f"{element} ({el.class_name}) has no write handler '{handler}'"
                           + (f" (it has: {', '.join(known)})" if known else
                              " (it has none)"))

    def reason_counts(self, arena: np.ndarray) -> np.ndarray:
        """Drops counted in the arena by reason (those that leave no metadata record)."""
        return arena[self.reasons_offset:self.reasons_offset + 8 * REASONS].view(np.uint64)

    def stats(self, arena: np.ndarray) -> np.ndarray:
        """Rows of (count, drops) per element, in `index` order (a live view)."""
        n = len(self.index)
        return arena[self.stats_offset:self.stats_offset + 16 * n].view(np.uint64).reshape(n, 2)


HUGE_PAGE = 2 << 20


def allocate(size: int) -> np.ndarray:
    """Zeroed, 64-byte aligned memory; big arenas are 2 MiB aligned and asked for huge pages.

    A million-route table is ~84 MB walked at random: with 4 KiB pages nearly every
    lookup also misses the TLB (and under nested paging that miss is dear).
    """
    if size < 2 * HUGE_PAGE:
        raw = np.zeros(size + ALIGN, np.uint8)
        start = -raw.ctypes.data % ALIGN
        return raw[start:start + size]
    raw = np.zeros(size + HUGE_PAGE, np.uint8)
    start = -raw.ctypes.data % HUGE_PAGE
    arena = raw[start:start + size]
    try:
        import ctypes
        import mmap

        libc = ctypes.CDLL(None, use_errno=True)
        advice = getattr(mmap, "MADV_HUGEPAGE", 14)
        libc.madvise(ctypes.c_void_p(arena.ctypes.data),
                     ctypes.c_size_t(size - size % HUGE_PAGE), advice)
    except (OSError, AttributeError):
        pass  # huge pages are a speed-up, never a requirement
    return arena


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def make_plan(graph: Graph, target: str = "host") -> Plan:
    """Assign ports and arena space; ConfigErrors for what cannot be compiled."""
    plan = Plan(graph)
    errors: list[ConfigError] = []
    named_devices: dict[str, int] = {}
    # Named devices (FromDevice(eth0)) take the lowest numbers that no numbered one uses.
    numbered = {el.instance.conf["DEVNAME"] for el in graph.elements.values()
                if el.instance.role in ("device", "device_out")
                and isinstance(el.instance.conf["DEVNAME"], int)}
    free_numbers = (n for n in range(10 ** 6) if n not in numbered)
    for i, (name, el) in enumerate(graph.elements.items()):
        plan.index[name] = i
        inst = el.instance
        if inst.host_only and target != "host":
            errors.append(inst.error(f"{el.class_name} runs only on the host, not in the {target}",
                                     hint="use FromDevice/ToDevice and feed pcaps from the host"))
        if inst.role in ("device", "device_out"):
            dev = inst.conf["DEVNAME"]
            if isinstance(dev, str):
                if dev not in named_devices:
                    named_devices[dev] = next(free_numbers)
                dev = named_devices[dev]
            plan.device_numbers[name] = dev
            if inst.role == "device":
                if dev in plan.entries:
                    first = plan.entries[dev]
                    errors.append(inst.error(f"device {dev} is already read by '{first}'",
                                             hint="one FromDevice per device; use Tee to copy"))
                plan.entries[dev] = name
        elif inst.role == "source":
            plan.entries[FIRST_SOURCE + len(plan.sources)] = name
            plan.sources.append(name)
        elif inst.role == "sink":
            plan.device_numbers[name] = FIRST_SINK + len(plan.sinks)
            plan.sinks.append(name)
        elif inst.role == "kernel":
            try:
                kernel = inst.kernel()
            except ConfigError as e:
                errors.append(e)
                continue
            if kernel is None:
                errors.append(inst.error(f"{el.class_name} cannot be compiled yet",
                                         hint="this element has no packet kernel in this version"))
            plan.kernels[name] = kernel
    if max(list(named_devices.values()) + [-1]) >= MAX_DEVICES:
        errors.append(ConfigError(f"more than {MAX_DEVICES} devices", graph.elements[
            next(iter(graph.elements))].pos, "a pipeline has at most 8 NICs, numbered 0-7"))
    check_acyclic(graph, errors)
    if errors:
        raise ConfigErrors(errors)
    plan.reasons_offset = _align(plan.stats_offset + 16 * len(plan.index))
    offset = _align(plan.reasons_offset + 8 * REASONS)
    for name, el in graph.elements.items():
        places = []
        for array in el.instance.state():
            places.append(Placement(name, array, offset))
            offset = _align(offset + places[-1].nbytes)
        if places:
            plan.placements[name] = places
    plan.arena_size = offset
    return plan


def check_acyclic(graph: Graph, errors: list[ConfigError]) -> None:
    """Push paths must end: a packet that could loop forever is a config error.

    Iterative depth-first search (configs can be chains of thousands of elements).
    """
    succ: dict[str, list] = {n: [] for n in graph.elements}
    for c in graph.connections:
        succ[c.src].append(c)
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for root in graph.elements:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(succ[root]))]
        while stack:
            name, it = stack[-1]
            c = next(it, None)
            if c is None:
                state[name] = 2
                stack.pop()
            elif state.get(c.dst) == 1:
                errors.append(ConfigError(
                    f"packets can loop: '{c.src}' feeds '{c.dst}', which leads back to it",
                    c.pos, "nfv runs each packet to completion; break the cycle"))
            elif c.dst not in state:
                state[c.dst] = 1
                stack.append((c.dst, iter(succ[c.dst])))
