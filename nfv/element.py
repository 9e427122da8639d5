"""The element class model: declared ports, arguments and handlers, and configuration binding.

An element class says what Click's manual page says about it, as data:

    class Counter(Element):
        '''Counter([KEYWORDS]) -- count packets and bytes ... (Click-style manual)'''
        port_count = "1/1"
        args = (Arg("COUNT_CALL", argtypes.string),)
        handlers = (Handler("count"), Handler("reset", read=False, write=True))

`bind()` reads a configuration (a list of `ConfigArg`) against `args` in one
pass, the way Click's `Args(...).read_mp(...).read_p(...).complete()` chain
does: positional arguments in declared order, `KEYWORD value` arguments by
name, defaults for what is missing, and one error (at the argument's own
line and column) for anything wrong or left over.  `configure()` is the hook
for checks across arguments and for port counts that depend on the config.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

from nfv.errors import ArgError, ConfigError, Pos
from nfv.lang.config import ConfigArg, split_keyword


@dataclass(frozen=True)
class Arg:
    """One declared argument.

    name        Click's KEYWORD for it (upper case); positional args may also be given by keyword.
    type        a value parser from `nfv.argtypes`: text -> value, raising ArgError.
    positional  may be given by position, in declared order (Click's read_p / read_mp).
    required    must be given (Click's "mandatory").
    default     value when not given.
    """

    name: str
    type: Callable[[str], Any]
    positional: bool = False
    required: bool = False
    default: Any = None
    doc: str = ""


@dataclass(frozen=True)
class Rest:
    """All remaining positional arguments, each parsed with `type` (Classifier's patterns).

    The bound value is a list of parsed values; `min` is how many must be given.
    """

    name: str
    type: Callable[[str], Any]
    min: int = 0
    doc: str = ""


@dataclass(frozen=True)
class Handler:
    """A named read and/or write handler, as in Click (`element.handler`)."""

    name: str
    read: bool = True
    write: bool = False
    doc: str = ""


@dataclass(frozen=True)
class PortRange:
    """An allowed number of ports: lo..hi, hi None for unbounded; `same` mirrors the other side."""

    lo: int
    hi: int | None
    same: bool = False

    def allows(self, n: int) -> bool:
        return n >= self.lo and (self.hi is None or n <= self.hi)

    def __str__(self) -> str:
        if self.same:
            return "="
        if self.hi == self.lo:
            return str(self.lo)
        if self.hi is None:
            return "-" if self.lo == 0 else f"{self.lo}-"
        return f"{self.lo}-{self.hi}"


_SIDE = re.compile(r"^(?:(\d+)|(\d+)-(\d+)|(\d+)-|-|=)$")


def parse_port_side(text: str) -> PortRange:
    """One side of Click's port-count notation: `N`, `N-M`, `N-`, `-` or `=`."""
    m = _SIDE.match(text)
    if not m:
        raise ValueError(f"bad port count {text!r}")
    if text == "=":
        return PortRange(0, None, same=True)
    if text == "-":
        return PortRange(0, None)
    if m.group(1):
        n = int(m.group(1))
        return PortRange(n, n)
    if m.group(2):
        return PortRange(int(m.group(2)), int(m.group(3)))
    return PortRange(int(m.group(4)), None)


def parse_port_count(text: str) -> tuple[PortRange, PortRange]:
    """Click's PORT_COUNT notation `inputs/outputs`, e.g. `1/1-2`; one side alone means both."""
    ins, _, outs = text.partition("/")
    left = parse_port_side(ins)
    right = parse_port_side(outs) if outs else left
    return left, right


@dataclass(frozen=True)
class StateArray:
    """An array of element state the compiler places in the arena.

    `init` (array-like) is copied in when the arena is made; None means zeros.
    Kernels receive the array, in declaration order, after (pool, meta, i).
    """

    name: str
    dtype: str
    size: int
    init: Any = None


@dataclass(frozen=True)
class Kernel:
    """A compiled element's packet function and the constants passed after its state.

    `function` is "module:name" under nfv.elements._kernels (imported only
    when compiling, so `nfv check` never loads Numba).
    """

    function: str
    constants: tuple = ()
    time: bool = False  # pass the batch's `now` (ns) after the state arrays
    input_port: bool = False  # pass the input port the packet entered by (after `now`)
    # Source of a kernel written for this element's configuration (function
    # "generated:NAME"): code, not data, so only for what cannot change at run time.
    source: str | None = None


class Element:
    """Base of every element class; an instance is one element of a config.

    Class attributes to declare:
      port_count  Click notation `in/out` (an instance may set its own in `configure`).
      args        tuple of `Arg`; `rest` an optional `Rest` for variadic positionals.
      handlers    tuple of `Handler`.
      host_only   True for elements that cannot run in the unikernel (files, pcap).
      class_name  the Click class name; defaults to the Python class name.
    After binding, `self.conf[NAME]` holds each argument's value and
    `self.arg_given[NAME]` the ConfigArg it came from (absent if defaulted).
    """

    port_count: str = "1/1"  # class default; configure() may set an instance's own
    args: ClassVar[tuple[Arg, ...]] = ()
    rest: ClassVar[Rest | None] = None
    handlers: ClassVar[tuple[Handler, ...]] = ()
    host_only: ClassVar[bool] = False
    class_name: ClassVar[str] = ""

    _registry: ClassVar[dict[str, type["Element"]]] = {}

    def __init_subclass__(cls, abstract: bool = False, **kw):
        super().__init_subclass__(**kw)
        if not cls.__dict__.get("class_name"):
            cls.class_name = cls.__name__
        if not abstract:
            Element._registry[cls.class_name] = cls

    def __init__(self, name: str, config: list[ConfigArg], pos: Pos):
        self.name = name
        self.config = config
        self.pos = pos
        self.conf: dict[str, Any] = {}
        self.arg_given: dict[str, ConfigArg] = {}
        self.ninputs = self.noutputs = 0  # set once the graph's ports are resolved

    # -- configuration -------------------------------------------------------------

    def error(self, message: str, where: ConfigArg | str | None = None,
              offset: int | None = None, hint: str | None = None) -> ConfigError:
        """A ConfigError at an argument (a ConfigArg or an Arg name), else at the element."""
        if isinstance(where, str):
            where = self.arg_given.get(where)
        pos = where.pos_at(offset) if where is not None else self.pos
        return ConfigError(f"{self.class_name} '{self.name}': {message}", pos, hint)

    def parse_value(self, arg_type: Callable[[str], Any], value: ConfigArg, label: str) -> Any:
        """Run a value parser on an argument, turning ArgError into a positioned ConfigError."""
        try:
            return arg_type(value.text)
        except ArgError as e:
            raise self.error(f"{label}: {e.message}", value, e.offset, e.hint) from None

    def bind(self) -> None:
        """Read `self.config` against the declared args (Click's Args chain, then complete())."""
        by_name = {a.name: a for a in self.args}
        positional = [a for a in self.args if a.positional]
        rest_values: list[Any] = []
        self.rest_given: list[ConfigArg] = []
        next_pos = 0
        for item in self.config:
            kw = split_keyword(item)
            if kw and kw[0] in by_name:
                name, value = kw
                arg = by_name[name]
                if name in self.arg_given:
                    raise self.error(f"{name} given twice", item,
                                     hint=f"first given at {self.arg_given[name].pos}")
                self.arg_given[name] = value if value.text else item
                self.conf[name] = self.parse_value(arg.type, value, name)
                continue
            while next_pos < len(positional) and positional[next_pos].name in self.arg_given:
                next_pos += 1
            if next_pos < len(positional):
                arg = positional[next_pos]
                next_pos += 1
                self.arg_given[arg.name] = item
                self.conf[arg.name] = self.parse_value(arg.type, item, arg.name)
                continue
            if self.rest is not None:
                self.rest_given.append(item)
                rest_values.append(self.parse_value(self.rest.type, item, self.rest.name))
                continue
            if kw:
                close = difflib.get_close_matches(kw[0], list(by_name), n=1)
                hint = (f"did you mean {close[0]}?" if close else
                        "known keywords: " + ", ".join(by_name) if by_name else
                        f"{self.class_name} takes no arguments")
                raise self.error(f"unknown keyword {kw[0]}", item, hint=hint)
            raise self.error("too many arguments", item, hint=f"usage: {self.synopsis()}")
        for arg in self.args:
            if arg.name not in self.conf:
                if arg.required:
                    raise self.error(f"missing mandatory argument {arg.name}",
                                     hint=f"usage: {self.synopsis()}")
                self.conf[arg.name] = arg.default
        if self.rest is not None:
            if len(rest_values) < self.rest.min:
                raise self.error(f"needs at least {self.rest.min} {self.rest.name} argument"
                                 f"{'s' if self.rest.min != 1 else ''}",
                                 hint=f"usage: {self.synopsis()}")
            self.conf[self.rest.name] = rest_values

    def configure(self) -> None:
        """Checks across arguments, derived values, config-dependent port counts. Raise self.error(...)."""

    def link(self, find: Callable[[str], "Element | None"]) -> None:
        """Resolve references to other elements by name, once every element is configured.

        `find(name)` looks the name up as Click does from inside this element's
        compound (`a/b/x` looks for `a/b/NAME`, then `a/NAME`, then `NAME`); it
        returns None for no such element; `find.all()` lists every element.
        IPRewriter uses it for its mappers and named patterns.
        """

    # -- dataplane ---------------------------------------------------------------------
    #
    # `role` tells the compiler how the element moves packets:
    #   kernel   calls kernel() per packet; its return value picks the output
    #   pass     hands the packet to output 0 unchanged (Null, Queue)
    #   device   a FromDevice-like entry point; `device_out` a ToDevice-like exit
    #   source   packets made by the driver (InfiniteSource, FromDump)
    #   sink     a host-only exit (ToDump)
    #   discard  drops and counts; tee copies to every output; idle drops
    role: ClassVar[str] = "kernel"
    # Reason to record when the kernel picks an output that is not connected.
    unconnected_drop: ClassVar[dict[int, str]] = {}
    # Outputs for bad packets: counted in the `drops` handler even when connected
    # (Click's CheckIPHeader and DecIPTTL count what they reject either way).
    error_ports: ClassVar[frozenset[int]] = frozenset()
    # A kernel return value meaning "a copy to every output" (PaintSwitch's paint 255).
    broadcast: ClassVar[int | None] = None

    def kernel(self) -> Kernel | None:
        """The packet function and its constants (role 'kernel')."""
        return None

    def state(self) -> tuple[StateArray, ...]:
        """Arrays of state this element keeps in the arena."""
        return ()

    def warm_kernel(self) -> Kernel | None:
        """A kernel run over the whole batch before the real pass, to start its cache misses."""
        return None

    def ahead_kernel(self) -> Kernel | None:
        """A kernel run for packet i + AHEAD while the pipeline handles packet i (and for
        the first AHEAD packets before it starts), to prefetch what that packet will
        need: called as warm kernels are, (pool, meta, i, state..., constants)."""
        return None

    def read_handler(self, name: str, state: dict) -> str | None:
        """The text of read handler `name` (None: unknown).

        The default answers handlers named after an argument (`color`, `active`,
        `capacity`...) with the configured value, as Click's read handlers for
        settings do; elements with run-time state override it.
        """
        arg = name.upper()
        if arg in self.conf:
            return format_value(self.conf[arg])
        return None

    def write_handler(self, name: str, value: str, state: dict) -> bool:
        """Carry out write handler `name` with `value` on the state views (in place).

        Returns False for a handler this element does not have; raises ArgError
        (message, hint) for a value it cannot take.  Runs between two batches, on
        the host's arena or on a copy that the unikernel target sends to the guest.
        """
        return False

    def read_state(self, name: str) -> tuple[str, ...] | None:
        """The state arrays read handler `name` needs (None: not said).

        The unikernel target copies state from the guest over its console (~4 KB/s)
        and skips arrays over 64 KiB, so a handler of an element with a big table
        that says what it needs is answered from exactly those arrays, or refused
        with an error when one of them is too big, instead of read from zeros.
        """
        return None

    def write_state(self, name: str) -> tuple[str, ...] | None:
        """The state arrays write handler `name` reads or changes (None: all of them).

        The unikernel target copies these from the guest and back over its console,
        so a handler that touches a small table next to a big one says so here.
        """
        return None

    # -- ports ---------------------------------------------------------------------

    def port_ranges(self) -> tuple[PortRange, PortRange]:
        """Allowed (inputs, outputs) for this element, after configure()."""
        return parse_port_count(self.port_count)

    @classmethod
    def synopsis(cls) -> str:
        """`Class(POS1, [POS2], KEYWORDS)` as Click's manual writes it."""
        parts = []
        for a in cls.args:
            if a.positional:
                parts.append(a.name if a.required else f"[{a.name}]")
        if cls.rest is not None:
            parts.append(f"{cls.rest.name}...")
        if any(not a.positional for a in cls.args):
            parts.append("[KEYWORDS]")
        return f"{cls.class_name}({', '.join(parts)})"


def format_value(value: Any) -> str:
    """A configured value as Click prints it in a read handler."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (bytes, bytearray)) and len(value) == 6:
        return ":".join(f"{b:02x}" for b in value)
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(format_value(v) for v in value)
    return str(value)


def registry() -> dict[str, type[Element]]:
    """All element classes by Click class name (imports the element library)."""
    import nfv.elements  # noqa: F401  (registers the classes)
    return dict(Element._registry)
