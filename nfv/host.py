"""A config running on the host: compile once, then push packets through the driver.

`HostNF` ties together the graph, the compiled pipeline, its arena and the
Cython driver; `nfv run`, `nfv bench` and `nfv.testing.NF` are thin layers on
top of it.
"""
from __future__ import annotations

import numpy as np

from nfv.compile import compile_graph
from nfv.compile.plan import FIRST_SINK, SCRATCH
from nfv.errors import NfvError
from nfv.graph import Graph, build_graph
from nfv.lang.parser import parse_file, parse_text


def load_graph(config: str, defines: dict[str, str] | None = None) -> Graph:
    """A config file's path, or Click text itself (anything with a newline or an arrow)."""
    if "\n" in config or "->" in config or "::" in config:
        return build_graph(parse_text(config, "<config>"), defines)
    return build_graph(parse_file(config), defines)


class PortNames:
    """Device numbers and names of a config's plan, for any target (needs .plan, .graph)."""

    def input_port(self, port: int | str) -> int:
        """The in_port number for a device number/name or a source element's name."""
        if isinstance(port, int) and port in self.plan.entries:
            return port
        for number, name in self.plan.entries.items():
            if name == port or self.plan.device_numbers.get(name) == port or \
                    self._devname(name) == port:
                return number
        devices = sorted(f"{self._devname(n)}" for n in self.plan.entries.values()
                         if self.graph.elements[n].instance.role == "device")
        raise NfvError(f"the config reads no device {port!r}"
                       + (f" (it reads: {', '.join(devices)})" if devices else
                          " (it has no FromDevice)"))

    def output_port(self, port: int | str) -> int:
        for name, number in self.plan.device_numbers.items():
            el = self.graph.elements[name].instance
            if el.role in ("device_out", "sink") and (number == port or name == port or
                                                       self._devname(name) == port):
                return number
        outs = sorted({str(self._devname(n)) for n, num in self.plan.device_numbers.items()
                       if self.graph.elements[n].instance.role == "device_out"})
        raise NfvError(f"the config writes to no device {port!r}"
                       + (f" (it writes: {', '.join(outs)})" if outs else " (it has no ToDevice)"))

    def _devname(self, element: str):
        return self.graph.elements[element].instance.conf.get("DEVNAME", element)

    def sink_element(self, out_port: int) -> str | None:
        if out_port >= FIRST_SINK and out_port - FIRST_SINK < len(self.plan.sinks):
            return self.plan.sinks[out_port - FIRST_SINK]
        return None


class HostNF(PortNames):
    """One config compiled for the host, with its own arena and driver."""

    def __init__(self, config: str | Graph, defines: dict[str, str] | None = None,
                 boundscheck: bool = False, batch_size: int = 256):
        from nfv.dataplane.driver import HostDriver

        self.graph = config if isinstance(config, Graph) else load_graph(config, defines)
        self.pipeline = compile_graph(self.graph, "host", boundscheck)
        self.plan = self.pipeline.plan
        self.arena = self.pipeline.new_arena()
        self.driver = HostDriver(self.pipeline.address, self.arena, batch_size=batch_size)

    def reset(self) -> None:
        """Put the arena back to its initial contents (the driver keeps pointing at it)."""
        self.arena[:] = self.pipeline.new_arena()

    # -- running --------------------------------------------------------------------

    def run(self, packets, now_ns: int | None = None):
        """Push a PacketList (ports already set to in_port numbers) through the pipeline.

        Drops that left no record (a copy with no free buffer) are counted in the
        arena; they are added to the result's per-reason drops.
        """
        reasons = self.plan.reason_counts(self.arena)[:SCRATCH]
        before = reasons.copy()
        result = self.driver.run(packets, now_ns)
        for code in np.nonzero(reasons != before)[0]:
            result.drops[int(code)] = result.drops.get(int(code), 0) + int(reasons[code] - before[code])
        return result

    def read(self, handler: str) -> str:
        """`element.handler`, as Click writes handler names."""
        element, sep, name = handler.rpartition(".")
        if not sep:
            raise NfvError(f"'{handler}': handlers are named element.handler")
        return self.pipeline.read(self.arena, element, name)

    def write(self, handler: str, value: str = "") -> None:
        """Write handler `element.handler` (between batches: the driver is not running)."""
        element, sep, name = handler.rpartition(".")
        if not sep:
            raise NfvError(f"'{handler}': handlers are named element.handler")
        self.pipeline.plan.write(self.arena, element, name, value)

    def counters(self) -> list[dict]:
        """Per-element rows for tables and JSON: name, class, count, drops."""
        stats = self.plan.stats(self.arena)
        rows = []
        for name, row in self.plan.index.items():
            el = self.graph.elements[name]
            count = int(stats[row][0])
            views = self.plan.state_views(self.arena, name)
            own = el.instance.read_handler("count", views)
            rows.append({"element": name, "class": el.class_name,
                         "count": int(own) if own is not None else count,
                         "drops": int(stats[row][1])})
        return rows

