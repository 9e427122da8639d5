"""Checks on the flat graph: element configurations, and ports against each class's port count."""
from __future__ import annotations

from collections import defaultdict

from nfv.element import PortRange
from nfv.errors import ArgError, ConfigError
from nfv.graph.flatten import port_list
from nfv.graph.model import Graph, GraphConnection


def configure_elements(graph: Graph, errors: list[ConfigError]) -> None:
    """Bind and configure every element; a bad configuration leaves `instance` None."""
    from nfv.lang.config import split_args

    for el in graph.elements.values():
        if el.cls is None:
            continue
        args = split_args(el.config) if el.config is not None else []
        instance = el.cls(el.name, args, el.pos)
        try:
            instance.bind()
            instance.configure()
        except ConfigError as e:
            errors.append(e)
            continue
        except ArgError as e:  # a configure() that forgot to position its error
            errors.append(instance.error(e.message, hint=e.hint))
            continue
        el.instance = instance
    for el in graph.elements.values():
        if el.instance is None:
            continue
        try:
            el.instance.link(ElementFinder(graph, el.name))
        except ConfigError as e:
            errors.append(e)


class ElementFinder:
    """Other elements as one element sees them (what `Element.link` is given).

    `finder(name)` looks the name up from inside the element's compound, innermost
    first, as Click resolves element names in configuration strings;
    `finder.all()` is every configured element.
    """

    def __init__(self, graph: Graph, at: str):
        self.graph = graph
        self.at = at

    def __call__(self, name: str):
        scope = self.at.split("/")[:-1]
        while True:
            el = self.graph.elements.get("/".join(scope + [name]))
            if el is not None:
                return el.instance
            if not scope:
                return None
            scope.pop()

    def all(self) -> list:
        return [el.instance for el in self.graph.elements.values() if el.instance is not None]


def check_ports(graph: Graph, errors: list[ConfigError], skip: set[str] = frozenset()) -> None:
    """Every used port exists, every port exists is used, push outputs feed one input."""
    outs: dict[str, dict[int, list[GraphConnection]]] = defaultdict(lambda: defaultdict(list))
    ins: dict[str, dict[int, list[GraphConnection]]] = defaultdict(lambda: defaultdict(list))
    for c in graph.connections:
        outs[c.src][c.src_port].append(c)
        ins[c.dst][c.dst_port].append(c)
    for name, el in graph.elements.items():
        if el.instance is None or name in skip:
            continue  # its class, configuration or a neighbour already failed: don't pile on
        in_range, out_range = el.instance.port_ranges()
        label = f"'{name}' ({el.class_name})"
        n_in = _count(ins[name], in_range)
        n_out = _count(outs[name], out_range)
        if in_range.same:
            n_in = n_out
        if out_range.same:
            n_out = n_in
        spec = f"{el.class_name} has port count {in_range}/{out_range}"
        for port, conns in ins[name].items():
            if not in_range.same and not _exists(in_range, port):
                errors.append(ConfigError(
                    f"{label} has no input [{port}]", conns[0].dst_pos,
                    f"{spec}" + (" (no inputs)" if in_range.hi == 0 else "")))
        for port, conns in outs[name].items():
            if not out_range.same and not _exists(out_range, port):
                errors.append(ConfigError(
                    f"{label} has no output [{port}]", conns[0].src_pos,
                    f"{spec}" + (" (no outputs)" if out_range.hi == 0 else "")))
            elif len(conns) > 1:
                errors.append(ConfigError(
                    f"output [{port}] of {label} is connected to {len(conns)} inputs",
                    conns[1].src_pos,
                    f"a push output feeds one input; use Tee({len(conns)}) to copy packets"))
        # One error per side, however many ports: `rr [60000] -> x` must not print 60000 lines.
        free_in = [p for p in range(n_in) if p not in ins[name]]
        free_out = [p for p in range(n_out) if p not in outs[name]]
        if free_in:
            errors.append(ConfigError(
                f"{_ports_text('input', free_in)} of {label} {_verb(free_in)} not connected",
                el.pos, f"feed it, e.g. 'src -> [{free_in[0]}] {name}', or remove the element"))
        if free_out:
            errors.append(ConfigError(
                f"{_ports_text('output', free_out)} of {label} {_verb(free_out)} not connected",
                el.pos, f"connect it, e.g. '{name} [{free_out[0]}] -> Discard'"))
        el.ninputs, el.noutputs = n_in, n_out
        el.instance.ninputs, el.instance.noutputs = n_in, n_out


def _ports_text(side: str, ports: list[int]) -> str:
    return f"{side} [{ports[0]}]" if len(ports) == 1 else f"{side}s {port_list(ports)}"


def _verb(ports: list[int]) -> str:
    return "is" if len(ports) == 1 else "are"


def _exists(ports: PortRange, port: int) -> bool:
    return ports.hi is None or port < ports.hi


def _count(used: dict[int, list], ports: PortRange) -> int:
    """Ports the element has: what is used, at least the minimum, at most the maximum."""
    n = max(max(used) + 1 if used else 0, ports.lo)
    return n if ports.hi is None else min(n, ports.hi)
