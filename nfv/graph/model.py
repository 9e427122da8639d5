"""The flat element graph: primitive elements and the connections between their ports."""
from __future__ import annotations

from dataclasses import dataclass, field

from nfv.element import Element
from nfv.errors import Pos
from nfv.lang.config import ConfigArg, split_args


@dataclass
class GraphElement:
    """One primitive element after flattening.

    name      full name (`outer/inner` for compound components, `Class@N` if anonymous)
    cls       the element class, None when the class was unknown (already reported)
    config    the configuration string after `$parameter` expansion (None: no parentheses)
    instance  the configured Element (None if its configuration had errors)
    """

    name: str
    class_name: str
    cls: type[Element] | None
    config: ConfigArg | None
    pos: Pos
    instance: Element | None = None
    ninputs: int = 0
    noutputs: int = 0

    def config_args(self) -> list[str]:
        return [a.text for a in split_args(self.config)] if self.config is not None else []


@dataclass(frozen=True)
class GraphConnection:
    """`src [src_port] -> [dst_port] dst`, with the position of the arrow that made it."""

    src: str
    src_port: int
    dst: str
    dst_port: int
    pos: Pos        # the arrow that made it
    src_pos: Pos    # where the source's output port is written (or the element)
    dst_pos: Pos    # where the destination's input port is written (or the element)

    @property
    def key(self) -> tuple[str, int, str, int]:
        return (self.src, self.src_port, self.dst, self.dst_port)


@dataclass
class Graph:
    """A checked, flattened configuration."""

    file: str
    elements: dict[str, GraphElement] = field(default_factory=dict)
    connections: list[GraphConnection] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)

    def outputs_of(self, name: str) -> list[GraphConnection]:
        return [c for c in self.connections if c.src == name]

    def inputs_of(self, name: str) -> list[GraphConnection]:
        return [c for c in self.connections if c.dst == name]
