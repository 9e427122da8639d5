"""The Click language syntax tree. Every node keeps the `Pos` where it starts.

Names are not resolved here: a bare identifier (`Name`) may be an element
declared elsewhere in its scope or a class used anonymously; `nfv.graph`
decides, with the whole scope in view.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from nfv.errors import Pos
from nfv.lang.config import ConfigArg


@dataclass
class ClassName:
    """A class used by name: a primitive element class or an `elementclass`."""

    name: str
    pos: Pos


@dataclass
class Formal:
    """A compound's formal parameter: `$var` (positional), `KEY $var`, or `__REST__ $var`."""

    var: str
    keyword: str | None
    pos: Pos


@dataclass
class CompoundBody:
    """One overload of a compound: formals, then statements."""

    formals: list[Formal]
    statements: list["Statement"]
    pos: Pos


@dataclass
class Compound:
    """A compound class `{ ... || ... }`; `extends` is true when it ends with `|| ...`."""

    bodies: list[CompoundBody]
    extends: bool
    pos: Pos
    name: str | None = None  # set by `elementclass NAME {...}`


ClassSpec = ClassName | Compound


@dataclass
class Name:
    """A bare identifier in a connection: a declared element, `input`/`output`, or a class."""

    name: str
    pos: Pos


@dataclass
class Declaration:
    """`name :: Class(config)` (inside a connection or alone)."""

    name: str
    pos: Pos
    cls: ClassSpec
    config: ConfigArg | None


@dataclass
class Anonymous:
    """`Class(config)` or `{ compound }(config)` used without a name."""

    cls: ClassSpec
    config: ConfigArg | None
    pos: Pos


@dataclass
class Group:
    """`( statements )`: an element group, expanded in the enclosing scope."""

    statements: list["Statement"]
    pos: Pos


ElementRef = Name | Declaration | Anonymous | Group


@dataclass
class Port:
    """A bracketed port list `[0, 1]` and where it is."""

    numbers: list[int]
    pos: Pos


@dataclass
class ElementUse:
    """An element reference with its optional input ports (left) and output ports (right)."""

    ref: ElementRef
    in_ports: Port | None = None
    out_ports: Port | None = None

    @property
    def pos(self) -> Pos:
        return self.in_ports.pos if self.in_ports else self.ref.pos


@dataclass
class Connection:
    """`a, b -> c => d, e ...`: the element lists between arrows, and the arrows.

    A statement with one list and no arrow is a declaration statement.
    `arrows[i]` ('->' or '=>') joins `hops[i]` to `hops[i+1]`.
    """

    hops: list[list[ElementUse]]
    arrows: list[str]
    arrow_pos: list[Pos]
    pos: Pos


@dataclass
class ElementClassDef:
    """`elementclass Name { ... }` or the synonym form `elementclass Name Other`."""

    name: str
    pos: Pos
    cls: ClassSpec


@dataclass
class Directive:
    """`require(...)`, `provide(...)` or `define(...)` with their argument text."""

    kind: str
    config: ConfigArg
    pos: Pos


Statement = Connection | ElementClassDef | Directive


@dataclass
class Config:
    """A parsed file: its statements and its text (kept for error rendering)."""

    file: str
    text: str
    statements: list[Statement] = field(default_factory=list)
