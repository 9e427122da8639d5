"""Printing a flat graph back as Click text (like click-flatten) or as Graphviz DOT."""
from __future__ import annotations

from nfv.graph.model import Graph


def _port(n: int) -> str:
    return f"[{n}]"


def to_click(graph: Graph) -> str:
    """The flattened config in Click syntax: declarations, then connections in source order."""
    lines = [f"// {graph.file}, flattened by nfv"]
    lines += [f"require({r});" for r in graph.requires]
    for el in graph.elements.values():
        args = el.config_args()
        config = f"({', '.join(args)})" if args else ""
        lines.append(f"{el.name} :: {el.class_name}{config};")
    if graph.connections:
        lines.append("")
    for c in graph.connections:
        lines.append(f"{c.src} {_port(c.src_port)} -> {_port(c.dst_port)} {c.dst};")
    return "\n".join(lines) + "\n"


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: Graph) -> str:
    """Graphviz DOT: one box per element (name, class, config), edges labelled with ports."""
    lines = [f"digraph {_dot_quote(graph.file)} {{",
             "  rankdir=LR;",
             '  node [shape=box, fontname="monospace"];']
    for el in graph.elements.values():
        args = el.config_args()
        config = f"({', '.join(args)})" if args else ""
        if len(config) > 60:
            config = config[:57] + "...)"
        lines.append(f"  {_dot_quote(el.name)} [label={_dot_quote(el.name + chr(10) + el.class_name + config)}];")
    for c in graph.connections:
        labels = []
        if c.src_port:
            labels.append(f"taillabel={_dot_quote(str(c.src_port))}")
        if c.dst_port:
            labels.append(f"headlabel={_dot_quote(str(c.dst_port))}")
        attrs = f" [{', '.join(labels)}]" if labels else ""
        lines.append(f"  {_dot_quote(c.src)} -> {_dot_quote(c.dst)}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"
