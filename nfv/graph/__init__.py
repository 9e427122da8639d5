"""The element graph: a parsed config flattened into primitive elements and checked.

    graph = build_graph(parse_file("configs/firewall.click"), defines={"DEV": "0"})

raises `ConfigErrors` with every problem found (sorted by position), or
returns a `Graph` whose elements are configured and whose ports are resolved.
"""
from __future__ import annotations

from nfv.element import registry
from nfv.errors import ConfigError, ConfigErrors
from nfv.graph.checks import check_ports, configure_elements
from nfv.graph.flatten import Flattener, resolve_tunnels
from nfv.graph.model import Graph, GraphConnection, GraphElement
from nfv.graph.params import command_line_defines
from nfv.lang import ast

__all__ = ["build_graph", "Graph", "GraphElement", "GraphConnection"]


def build_graph(config: ast.Config, defines: dict[str, str] | None = None) -> Graph:
    """Flatten and check `config`; `defines` are command-line NAME=value parameters."""
    flat = Flattener(registry())
    flat.run(config, command_line_defines(defines or {}))
    errors: list[ConfigError] = list(flat.errors)
    graph = Graph(config.file, requires=flat.requires)
    for prim in flat.prims.values():
        graph.elements[prim.name] = GraphElement(prim.name, prim.class_name, prim.cls,
                                                 prim.config, prim.pos)
    order = {name: i for i, name in enumerate(graph.elements)}
    edges = sorted(resolve_tunnels(flat.edges),
                   key=lambda e: (order[e.src], e.src_port, order[e.dst], e.dst_port))
    for e in edges:
        graph.connections.append(GraphConnection(e.src, e.src_port, e.dst, e.dst_port, e.pos,
                                                 e.src_pos, e.dst_pos))
    configure_elements(graph, errors)
    check_ports(graph, errors, skip=flat.poisoned_elements())
    if errors:
        raise ConfigErrors(sort_errors(errors, config.file))
    return graph


def sort_errors(errors: list[ConfigError], main_file: str) -> list[ConfigError]:
    """Errors in source order, each reported once.

    The config's own file comes first, then files named by line directives in
    the order their errors were found; within a file, by line and column.
    """
    unique = list({(str(e), e.hint): e for e in errors}.values())
    files = {main_file: 0}
    for e in unique:
        if e.pos:
            files.setdefault(e.pos.file, len(files))
    return sorted(unique, key=lambda e: (files[e.pos.file], e.pos.line, e.pos.col)
                  if e.pos else (-1, 0, 0))
