"""Network address and port translation: Click's IPRewriter family (IPRewriter,
TCPRewriter, UDPRewriter, ICMPPingRewriter) and its helpers (IPRewriterPatterns,
RoundRobinIPMapper).

All of them keep their mappings in the flow table of elements/_kernels/flows.py
(design note: nfv/tables/FLOWS.md); this module reads their configurations and
lays the table out in the arena.
"""
from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, field

from nfv import argtypes
from nfv.element import Arg, Element, Handler, Kernel, Rest, StateArray
from nfv.errors import ArgError

_WORD = re.compile(r"\S+")
SPEC_HINT = ("an input spec is drop, pass OUTPUT, keep FOUTPUT ROUTPUT, "
             "pattern SADDR SPORT DADDR DPORT FOUTPUT ROUTPUT, pattern NAME FOUTPUT ROUTPUT, "
             "or the name of a mapper element")
PATTERN_HINT = "SADDR SPORT DADDR DPORT: each an address or port, '-' to keep it; SPORT may be L-H"

# Kinds of input spec, as the kernel numbers them (flows.SPEC_*).
SPEC_DROP, SPEC_PASS, SPEC_KEEP, SPEC_PATTERNS = 0, 1, 2, 3
PAT_SADDR, PAT_SPORT, PAT_DADDR, PAT_DPORT = 1, 2, 4, 8
TIME_UNIT_NS = 1 << 20  # flows.TIME_SHIFT
MAX_OUTPUTS = 256


@dataclass(frozen=True)
class Pattern:
    """`SADDR SPORT DADDR DPORT`: None keeps the packet's field; sport may be a range."""

    saddr: ipaddress.IPv4Address | None
    sport: tuple[int, int] | None
    daddr: ipaddress.IPv4Address | None
    dport: int | None
    foutput: int = 0
    routput: int = 0

    def __str__(self) -> str:
        sport = "-" if self.sport is None else (
            str(self.sport[0]) if self.sport[0] == self.sport[1] else f"{self.sport[0]}-{self.sport[1]}")
        return " ".join([str(self.saddr or "-"), sport, str(self.daddr or "-"),
                         "-" if self.dport is None else str(self.dport)])


@dataclass
class InputSpec:
    """One input's rule for packets with no mapping (Click's INPUTSPEC)."""

    kind: int
    foutput: int = 0          # pass: the output; keep: forward output
    routput: int = 0          # keep: reply output
    patterns: list[Pattern] = field(default_factory=list)
    reference: str | None = None   # a mapper element, or an IPRewriterPatterns name
    reference_outputs: tuple[int, int] | None = None  # `pattern NAME FOUTPUT ROUTPUT`

    def outputs(self) -> list[int]:
        if self.kind == SPEC_PASS:
            return [self.foutput]
        if self.kind == SPEC_KEEP:
            return [self.foutput, self.routput]
        return [o for p in self.patterns for o in (p.foutput, p.routput)]


def _words(text: str) -> list[tuple[str, int]]:
    return [(m.group(), m.start()) for m in _WORD.finditer(text)]


def _output(word: str, at: int) -> int:
    try:
        return argtypes.uint_range(0, MAX_OUTPUTS - 1)(word)
    except ArgError as e:
        raise ArgError(f"expected an output port number, got {word!r}", at,
                       e.hint or "outputs are numbered from 0") from None


def _field(parse, word: str, at: int):
    if word == "-":
        return None
    try:
        return parse(word)
    except ArgError as e:
        raise ArgError(e.message, at + (e.offset or 0), e.hint) from None


def pattern_fields(words: list[tuple[str, int]]) -> Pattern:
    """`SADDR SPORT DADDR DPORT` from four words."""
    (sa, sa_at), (sp, sp_at), (da, da_at), (dp, dp_at) = words
    return Pattern(_field(argtypes.ipv4_address, sa, sa_at),
                   _field(argtypes.port_range, sp, sp_at),
                   _field(argtypes.ipv4_address, da, da_at),
                   _field(argtypes.port_number, dp, dp_at))


def mapper_pattern(text: str) -> Pattern:
    """`SADDR SPORT DADDR DPORT FOUTPUT ROUTPUT` (a RoundRobinIPMapper argument)."""
    words = _words(text)
    if len(words) != 6:
        raise ArgError(f"a pattern has 6 words, got {len(words)}", None,
                       "SADDR SPORT DADDR DPORT FOUTPUT ROUTPUT; " + PATTERN_HINT)
    p = pattern_fields(words[:4])
    return Pattern(p.saddr, p.sport, p.daddr, p.dport,
                   _output(*words[4]), _output(*words[5]))


def input_spec(text: str) -> InputSpec:
    """One INPUTSPEC argument, as Click's IPRewriter reads it."""
    words = _words(text)
    if not words:
        raise ArgError("empty input spec", None, SPEC_HINT)
    kind, _ = words[0]
    rest = words[1:]
    kind = kind.lower()

    def want(n: int, usage: str) -> None:
        if len(rest) != n:
            raise ArgError(f"'{kind}' takes {n} word{'s' if n != 1 else ''}, got {len(rest)}",
                           None, f"write: {usage}")

    if kind in ("drop", "discard"):
        want(0, kind)
        return InputSpec(SPEC_DROP)
    if kind in ("pass", "nochange"):
        want(1, f"{kind} OUTPUT")
        return InputSpec(SPEC_PASS, _output(*rest[0]))
    if kind == "keep":
        want(2, "keep FOUTPUT ROUTPUT")
        return InputSpec(SPEC_KEEP, _output(*rest[0]), _output(*rest[1]))
    if kind == "pattern":
        if len(rest) == 3:  # pattern NAME FOUTPUT ROUTPUT
            return InputSpec(SPEC_PATTERNS, reference=rest[0][0],
                             reference_outputs=(_output(*rest[1]), _output(*rest[2])))
        want(6, "pattern SADDR SPORT DADDR DPORT FOUTPUT ROUTPUT")
        p = pattern_fields(rest[:4])
        return InputSpec(SPEC_PATTERNS, patterns=[Pattern(
            p.saddr, p.sport, p.daddr, p.dport, _output(*rest[4]), _output(*rest[5]))])
    if len(words) == 1 and re.fullmatch(r"[A-Za-z_@][\w@/]*", words[0][0]):
        return InputSpec(SPEC_PATTERNS, reference=words[0][0])
    raise ArgError(f"unknown input spec {words[0][0]!r}", 0, SPEC_HINT)


def time_units(seconds: float) -> int:
    return min(math.ceil(seconds * 1e9 / TIME_UNIT_NS), 0xFFFFFFFF)


# A flow table bigger than this is prefetched ahead (flows.note_slot): smaller ones
# stay in L2 (1 MiB here), where a prefetch costs more than it saves.
WARM_TABLE_BYTES = 512 << 10


def table_slots(capacity: int) -> int:
    """Slots for `capacity` mappings: two keys each, the table at most a quarter
    full (256 bytes a mapping).  At half full, 12 % of keys sat past their home
    cache line (a second miss each) and probes branched more: at a million flows
    a quarter-full table forwards 16.3 Mpps, a half-full one 13.7."""
    return max(64, 1 << (8 * capacity - 1).bit_length())


PROTO_NAMES = {6: "tcp", 17: "udp", 1: "icmp"}


def mapping_lines(slots, proto: int | None = None, done: bool | None = None) -> list[str]:
    """One line per mapping, from its forward slot: Click's `(s, sp, d, dp) => (...)`."""
    import numpy as np

    from nfv.elements._kernels import flows

    words = slots.reshape(-1, 4)
    used = np.nonzero(words[:, 1] >> np.uint64(63))[0]
    lines = []
    for s in used:
        w0, w1, w2, w3 = (int(x) for x in words[s])
        flags = (w1 >> 48) & 0xFF
        if flags & flows.FLAG_REPLY:
            continue
        p = (w1 >> 32) & 0xFF
        if proto is not None and p != proto:
            continue
        is_done = bool(flags & flows.FLAG_DONE)
        if done is not None and is_done != done:
            continue
        out = (w1 >> 40) & 0xFF
        old = (ipaddress.IPv4Address(w0 >> 32), (w1 >> 16) & 0xFFFF,
               ipaddress.IPv4Address(w0 & 0xFFFFFFFF), w1 & 0xFFFF)
        new = (ipaddress.IPv4Address(w2 >> 32), w3 >> 48,
               ipaddress.IPv4Address(w2 & 0xFFFFFFFF), (w3 >> 32) & 0xFFFF)
        lines.append(f"{PROTO_NAMES.get(p, p)} ({old[0]}, {old[1]}, {old[2]}, {old[3]}) => "
                     f"({new[0]}, {new[1]}, {new[2]}, {new[3]}) [{out}]"
                     + (" done" if is_done else ""))
    return sorted(lines)


COUNT_HANDLERS = {
    # handler: (index in counts[], what it counts)
    "size": (0, "live mappings"),
    "created": (1, "mappings made"),
    "expired": (2, "mappings removed after their timeout"),
    "table_full_drops": (4, "new flows dropped because the table was at CAPACITY"),
    "port_drops": (5, "new flows dropped because no source port of the pattern was free"),
    "no_mapping_drops": (6, "packets with no mapping on a `drop` input"),
    "bad_quote_drops": (7, "ICMP errors quoting a cut header or a flow with no mapping"),
    "icmp_translated": (8, "ICMP errors rewritten for a mapped flow"),
    "other_drops": (9, "packets it does not rewrite (other protocol, later fragment, "
                       "short header) on an input that does not pass them"),
}


class RewriterBase(Element, abstract=True):
    """What the IPRewriter family shares: input specs, the flow table, handlers."""

    port_count = "1-/1-"
    rest = Rest("INPUTSPEC", input_spec, min=1)
    protocols = 3          # flows.flow_of's mask: 1 TCP, 2 UDP, 4 ICMP echo
    track_tcp = True       # FIN/RST switch a mapping to TCP_DONE_TIMEOUT
    handlers = (Handler("table"), Handler("mappings"), Handler("capacity")) + tuple(
        Handler(name) for name in COUNT_HANDLERS)

    def timeouts(self) -> tuple[float, float, float]:
        """(TCP, TCP done, UDP and ICMP) timeouts in seconds."""
        raise NotImplementedError

    def configure(self) -> None:
        self.count_ports()
        if self.conf["CAPACITY"] < 1:
            raise self.error("CAPACITY must be at least 1", "CAPACITY")

    def count_ports(self) -> None:
        """One input per INPUTSPEC; at least the outputs the specs send to, as Click
        checks that every spec's output exists (the graph check then reports an output
        a spec names that is not connected)."""
        specs = self.conf["INPUTSPEC"]
        outputs = max((o for spec in specs for o in spec.outputs()), default=0) + 1
        self.port_count = f"{len(specs)}/{outputs}-"

    def link(self, find) -> None:
        for spec, given in zip(self.conf["INPUTSPEC"], self.rest_given):
            if spec.reference is None:
                continue
            target = find(spec.reference)
            if spec.reference_outputs is not None:  # pattern NAME FOUTPUT ROUTPUT
                pattern = named_pattern(find, spec.reference)
                if pattern is None:
                    raise self.error(f"no pattern named {spec.reference!r}", given,
                                     hint="define it in an IPRewriterPatterns element")
                f, r = spec.reference_outputs
                spec.patterns = [Pattern(pattern.saddr, pattern.sport, pattern.daddr,
                                         pattern.dport, f, r)]
            elif isinstance(target, RoundRobinIPMapper):
                spec.patterns = list(target.conf["PATTERN"])
            elif target is None:
                raise self.error(f"no element named {spec.reference!r}", given, hint=SPEC_HINT)
            else:
                raise self.error(f"{spec.reference!r} is a {target.class_name}, not a mapper",
                                 given, hint="mappers: RoundRobinIPMapper")
        self.count_ports()  # the outputs of the patterns found above

    # -- the arena ---------------------------------------------------------------------

    def slot_count(self) -> int:
        return table_slots(self.conf["CAPACITY"])

    def spec_rows(self):
        specs, patterns = [], []
        for spec in self.conf["INPUTSPEC"]:
            if spec.kind == SPEC_PATTERNS:
                specs += [SPEC_PATTERNS, len(patterns) // 8, len(spec.patterns), 0]
                for p in spec.patterns:
                    flags = ((PAT_SADDR if p.saddr is not None else 0)
                             | (PAT_SPORT if p.sport is not None else 0)
                             | (PAT_DADDR if p.daddr is not None else 0)
                             | (PAT_DPORT if p.dport is not None else 0))
                    lo, hi = p.sport or (0, 0)
                    patterns += [int(p.saddr or 0), int(p.daddr or 0), lo, hi, p.dport or 0,
                                 flags, p.foutput | (p.routput << 8), 0]
            else:
                specs += [spec.kind, spec.foutput, spec.routput, 0]
        return specs, patterns or [0] * 8

    def state(self):
        from nfv.elements._kernels import flows

        tcp, done, udp = self.timeouts()
        specs, patterns = self.spec_rows()
        return (StateArray("slots", "u8", 4 * self.slot_count()),
                StateArray("counts", "u8", flows.NCOUNTS),
                StateArray("params", "u8", flows.NPARAMS,
                           [time_units(tcp), time_units(done), time_units(udp),
                            self.conf["CAPACITY"]]),
                StateArray("specs", "u4", len(specs), specs),
                StateArray("patterns", "u4", len(patterns), patterns))

    def kernel(self):
        return Kernel("flows:rewrite", time=True, input_port=True,
                      constants=(self.slot_count() - 1, self.protocols, self.track_tcp))

    def ahead_kernel(self):
        if self.slot_count() * 32 <= WARM_TABLE_BYTES:
            return None
        return Kernel("flows:ahead_flow", constants=(self.slot_count() - 1,))

    def read_state(self, name):
        if name in COUNT_HANDLERS:
            return ("counts",)
        if name in ("table", "mappings", "tcp_mappings", "udp_mappings", "tcp_done_mappings"):
            return ("slots",)
        return ()  # settings, and the stats rows' count and drops

    def read_handler(self, name, state):
        if name in COUNT_HANDLERS:
            return str(int(state["counts"][COUNT_HANDLERS[name][0]]))
        if name in ("table", "mappings"):
            return "\n".join(mapping_lines(state["slots"]))
        if name in ("tcp_mappings", "udp_mappings", "tcp_done_mappings"):
            proto = 6 if name.startswith("tcp") else 17
            done = None if proto == 17 else name == "tcp_done_mappings"
            return "\n".join(mapping_lines(state["slots"], proto, done))
        return super().read_handler(name, state)


def named_pattern(find, name: str) -> Pattern | None:
    """Pattern NAME from the config's IPRewriterPatterns elements."""
    for el in find.all():
        if isinstance(el, IPRewriterPatterns) and name in el.named:
            return el.named[name]
    return None


_CAPACITY = Arg("CAPACITY", argtypes.uint_range(1, 1 << 24), default=16384,
                doc="mappings the table holds (default 16384)")


class IPRewriter(RewriterBase):
    """IPRewriter(INPUTSPEC..., [KEYWORDS])

    Rewrites TCP and UDP flows' addresses and ports (network address and port
    translation), keeping a mapping per flow so that the flow's later packets and
    its replies are rewritten alike.

    Input packets must have their IP header annotation set (CheckIPHeader,
    MarkIPHeader).  A flow is (protocol, source address, source port, destination
    address, destination port).  A packet whose flow has a mapping is rewritten
    (IP, TCP and UDP checksums updated incrementally; a zero UDP checksum stays
    zero) and leaves by the mapping's output, whatever input it came in on.  A
    packet with no mapping is handled by the INPUTSPEC of its input (there are as
    many inputs as INPUTSPECs):

      drop (or discard)   dropped and counted (reason no-mapping).
      pass OUTPUT         (or nochange OUTPUT) sent to OUTPUT unchanged, no mapping made.
      keep FOUTPUT ROUTPUT  a mapping that keeps the flow as it is: the packet and
                          its flow go to FOUTPUT, replies to ROUTPUT.
      pattern SADDR SPORT DADDR DPORT FOUTPUT ROUTPUT
                          a mapping that rewrites the flow to the pattern; each field
                          an address or port, or '-' to keep the packet's own.  SPORT
                          may be a range L-H: a port is chosen, round robin, whose
                          reply flow no live mapping uses (so one port serves many
                          destinations); when every port of the range is taken for
                          that destination the packet is dropped (reason no-port).
                          The flow goes to FOUTPUT, its replies are rewritten back
                          and go to ROUTPUT.
      pattern NAME FOUTPUT ROUTPUT  a pattern named in an IPRewriterPatterns element.
      ELEMENTNAME         a mapper element (RoundRobinIPMapper) chooses the pattern.

    Packets that are not TCP or UDP, fragments other than the first, and TCP or UDP
    headers cut short are sent to the output of a `pass` input, else dropped
    (reason not-rewritable).  ICMP errors (unreachable, time exceeded, ...) quoting a
    mapped flow are translated as that flow's replies are (quoted header, ports and
    checksums, the outer destination, and the outer source when the complaining
    host is the one the quote was sent to), which Click does in a separate
    ICMPRewriter; errors quoting a cut header or an unknown flow are dropped
    (reason bad-quote).

    Mappings live in a fixed table of CAPACITY mappings.  A mapping expires when no
    packet has been seen in either direction for its timeout: TCP_TIMEOUT, or
    TCP_DONE_TIMEOUT once a FIN or RST went through, or UDP_TIMEOUT (give or take
    a sixteenth: a mapping goes between 1 and 1 1/16 timeouts after its last
    packet, never sooner, so that most packets need not write its time).  Expired
    mappings are removed as they are met and by a sweep that each new flow
    advances; when the table is full even after sweeping, new flows are dropped
    (reason table-full) while existing ones keep working.

    Ports
        N inputs (one per INPUTSPEC), at least 1 output.

    Arguments
        INPUTSPEC         as above, one per input.
        TCP_TIMEOUT       time (keyword): idle TCP mappings expire. Default 24h.
        TCP_DONE_TIMEOUT  time (keyword): ... after a FIN or RST. Default 240s.
        UDP_TIMEOUT       time (keyword): idle UDP mappings expire. Default 5min.
        CAPACITY          integer (keyword): mappings the table holds. Default 16384
                          (the table takes 256 bytes a mapping).

    Handlers
        table (read)      one line per mapping: `proto (SADDR, SPORT, DADDR, DPORT) =>
                          (SADDR', SPORT', DADDR', DPORT') [OUTPUT]`, and `done` after
                          a FIN or RST; the mapping's forward flow, sorted.
        mappings (read)   the same as table.
        tcp_mappings (read)  the TCP lines of table that are not done.
        tcp_done_mappings (read)  the TCP lines of table marked done.
        udp_mappings (read)  the UDP lines of table.
        size (read)       live mappings.
        capacity (read)   CAPACITY.
        created (read)    mappings made.
        expired (read)    mappings removed after their timeout.
        table_full_drops (read)  new flows dropped: the table held CAPACITY mappings.
        port_drops (read)  new flows dropped: no port of the pattern was free (no-port).
        no_mapping_drops (read)  packets with no mapping on a `drop` input.
        bad_quote_drops (read)  ICMP errors quoting a cut header or an unknown flow.
        icmp_translated (read)  ICMP errors rewritten for a mapped flow.
        other_drops (read)  packets not rewritable (other protocol, later fragment,
                          short header) on an input that does not pass them.

    Example
        rw :: IPRewriter(pattern 192.0.2.1 1024-65535 - - 0 1, drop);
        inside -> [0]rw;  outside -> [1]rw;
        rw[0] -> to_outside;  rw[1] -> to_inside;
        // source NAT of the inside behind 192.0.2.1, ports 1024-65535

    See also
        TCPRewriter, UDPRewriter, ICMPPingRewriter, IPRewriterPatterns,
        RoundRobinIPMapper, IPLoadBalancer
    """

    args = (Arg("TCP_TIMEOUT", argtypes.seconds, default=86400.0),
            Arg("TCP_DONE_TIMEOUT", argtypes.seconds, default=240.0),
            Arg("UDP_TIMEOUT", argtypes.seconds, default=300.0),
            _CAPACITY)
    handlers = RewriterBase.handlers + (Handler("tcp_mappings"), Handler("udp_mappings"),
                                        Handler("tcp_done_mappings"))

    def timeouts(self):
        return self.conf["TCP_TIMEOUT"], self.conf["TCP_DONE_TIMEOUT"], self.conf["UDP_TIMEOUT"]


class TCPRewriter(RewriterBase):
    """TCPRewriter(INPUTSPEC..., [KEYWORDS])

    IPRewriter for TCP only: the same INPUTSPECs, table, timeouts and handlers;
    packets that are not TCP (UDP included) are sent to a `pass` input's output
    or dropped (reason not-rewritable).  Unlike Click's, it does not rewrite
    sequence numbers (nfv has no element that changes a TCP payload's length).

    Ports
        N inputs (one per INPUTSPEC), at least 1 output.

    Arguments
        INPUTSPEC         as IPRewriter's.
        TCP_TIMEOUT       time (keyword): default 24h, as IPRewriter's.
        TCP_DONE_TIMEOUT  time (keyword): default 240s, as IPRewriter's.
        CAPACITY          integer (keyword): default 16384, as IPRewriter's.

    Handlers
        table (read)      one line per mapping: `proto (SADDR, SPORT, DADDR, DPORT) =>
                          (SADDR', SPORT', DADDR', DPORT') [OUTPUT]`, and `done` after
                          a FIN or RST; the mapping's forward flow, sorted.
        mappings (read)   the same as table.
        tcp_mappings (read)  the TCP lines of table that are not done.
        tcp_done_mappings (read)  the TCP lines of table marked done.
        size (read)       live mappings.
        capacity (read)   CAPACITY.
        created (read)    mappings made.
        expired (read)    mappings removed after their timeout.
        table_full_drops (read)  new flows dropped: the table held CAPACITY mappings.
        port_drops (read)  new flows dropped: no port of the pattern was free (no-port).
        no_mapping_drops (read)  packets with no mapping on a `drop` input.
        bad_quote_drops (read)  ICMP errors quoting a cut header or an unknown flow.
        icmp_translated (read)  ICMP errors rewritten for a mapped flow.
        other_drops (read)  packets not rewritable (other protocol, later fragment,
                          short header) on an input that does not pass them.

    Example
        TCPRewriter(pattern 192.0.2.1 1024-65535 - - 0 1, drop)

    See also
        IPRewriter, UDPRewriter
    """

    protocols = 1
    args = (Arg("TCP_TIMEOUT", argtypes.seconds, default=86400.0),
            Arg("TCP_DONE_TIMEOUT", argtypes.seconds, default=240.0),
            _CAPACITY)
    handlers = RewriterBase.handlers + (Handler("tcp_mappings"), Handler("tcp_done_mappings"))

    def timeouts(self):
        return self.conf["TCP_TIMEOUT"], self.conf["TCP_DONE_TIMEOUT"], 300.0


class UDPRewriter(RewriterBase):
    """UDPRewriter(INPUTSPEC..., [KEYWORDS])

    IPRewriter without TCP connection tracking, as Click's: rewrites UDP and TCP
    flows alike, every mapping expiring UDP_TIMEOUT after its last packet (a FIN or
    RST changes nothing).  The same INPUTSPECs, table and handlers as IPRewriter.

    Ports
        N inputs (one per INPUTSPEC), at least 1 output.

    Arguments
        INPUTSPEC    as IPRewriter's.
        UDP_TIMEOUT  time (keyword): idle mappings expire. Default 5min.
        CAPACITY     integer (keyword): default 16384, as IPRewriter's.

    Handlers
        table (read)      one line per mapping: `proto (SADDR, SPORT, DADDR, DPORT) =>
                          (SADDR', SPORT', DADDR', DPORT') [OUTPUT]`, and `done` after
                          a FIN or RST; the mapping's forward flow, sorted.
        mappings (read)   the same as table.
        udp_mappings (read)  the UDP lines of table.
        size (read)       live mappings.
        capacity (read)   CAPACITY.
        created (read)    mappings made.
        expired (read)    mappings removed after their timeout.
        table_full_drops (read)  new flows dropped: the table held CAPACITY mappings.
        port_drops (read)  new flows dropped: no port of the pattern was free (no-port).
        no_mapping_drops (read)  packets with no mapping on a `drop` input.
        bad_quote_drops (read)  ICMP errors quoting a cut header or an unknown flow.
        icmp_translated (read)  ICMP errors rewritten for a mapped flow.
        other_drops (read)  packets not rewritable (other protocol, later fragment,
                          short header) on an input that does not pass them.

    Example
        UDPRewriter(pattern 192.0.2.1 1024-65535 - - 0 1, drop)

    See also
        IPRewriter, TCPRewriter
    """

    track_tcp = False
    args = (Arg("UDP_TIMEOUT", argtypes.seconds, default=300.0), _CAPACITY)
    handlers = RewriterBase.handlers + (Handler("udp_mappings"),)

    def timeouts(self):
        t = self.conf["UDP_TIMEOUT"]
        return t, t, t


class ICMPPingRewriter(RewriterBase):
    """ICMPPingRewriter(INPUTSPEC..., [KEYWORDS])

    Rewrites ICMP echo requests and replies (ping) as IPRewriter rewrites TCP and
    UDP flows, the echo identifier playing the port: in a pattern SPORT is the
    identifier (a range L-H picks a free one) and DPORT is ignored.  A request
    (SADDR, id X -> DADDR) mapped to (SADDR', id X' -> DADDR') has its replies
    (DADDR -> SADDR', id X') rewritten back to (DADDR -> SADDR, id X); the ICMP
    and IP checksums are updated.  Other packets go to a `pass` input's output or
    are dropped (reason not-rewritable); ICMP errors quoting a mapped echo are
    translated as in IPRewriter.

    Ports
        N inputs (one per INPUTSPEC), at least 1 output.

    Arguments
        INPUTSPEC   as IPRewriter's.
        TIMEOUT     time (keyword): idle mappings expire. Default 5min.
        CAPACITY    integer (keyword): default 16384.

    Handlers
        table (read)      one line per mapping: `icmp (SADDR, ID, DADDR, 0) =>
                          (SADDR', ID', DADDR', 0) [OUTPUT]`; the request's
                          flow, sorted.
        mappings (read)   the same as table.
        size (read)       live mappings.
        capacity (read)   CAPACITY.
        created (read)    mappings made.
        expired (read)    mappings removed after their timeout.
        table_full_drops (read)  new flows dropped: the table held CAPACITY mappings.
        port_drops (read)  new flows dropped: no port of the pattern was free (no-port).
        no_mapping_drops (read)  packets with no mapping on a `drop` input.
        bad_quote_drops (read)  ICMP errors quoting a cut header or an unknown flow.
        icmp_translated (read)  ICMP errors rewritten for a mapped flow.
        other_drops (read)  packets not rewritable (other protocol, later fragment,
                          short header) on an input that does not pass them.

    Example
        ICMPPingRewriter(pattern 192.0.2.1 0-65535 - - 0 1, drop)

    See also
        IPRewriter, ICMPPingResponder
    """

    protocols = 4
    track_tcp = False
    args = (Arg("TIMEOUT", argtypes.seconds, default=300.0), _CAPACITY)

    def timeouts(self):
        t = self.conf["TIMEOUT"]
        return t, t, t


class IPRewriterPatterns(Element):
    """IPRewriterPatterns(PATTERN...)

    Names patterns that IPRewriter-family elements use as `pattern NAME FOUTPUT
    ROUTPUT`.  Names must be distinct across all IPRewriterPatterns elements of a
    config.  Unlike Click, two rewriters using one named pattern each keep their
    own table, so they check port use separately.

    Ports
        none.

    Arguments
        PATTERN   NAME SADDR SPORT DADDR DPORT: a name and a pattern (see IPRewriter).

    Handlers
        none.

    Example
        IPRewriterPatterns(to_world 192.0.2.1 1024-65535 - -);
        rw :: IPRewriter(pattern to_world 0 1, drop);

    See also
        IPRewriter
    """

    port_count = "0/0"
    role = "info"
    rest = Rest("PATTERN", str, min=1)

    def configure(self) -> None:
        self.named: dict[str, Pattern] = {}
        self.name_args: list = []    # (name, its ConfigArg), in order
        for text, given in zip(self.conf["PATTERN"], self.rest_given):
            words = _words(text)
            if len(words) != 5:
                raise self.error(f"expected NAME SADDR SPORT DADDR DPORT, got {len(words)} words",
                                 given, hint=PATTERN_HINT)
            name = words[0][0]
            try:
                pattern = pattern_fields(words[1:])
            except ArgError as e:
                raise self.error(e.message, given, e.offset, e.hint) from None
            self.named.setdefault(name, pattern)
            self.name_args.append((name, given))

    def link(self, find) -> None:
        # Checked here, not in configure, so that the rewriters using a name twice
        # defined still find it and report nothing more.  Names are global to the
        # config: of two elements naming one pattern, the later one reports it.
        earlier = {}
        for other in find.all():
            if other is self:
                break
            if isinstance(other, IPRewriterPatterns):
                earlier.update(dict.fromkeys(other.named, other.name))
        seen = set()
        for name, given in self.name_args:
            if name in seen or name in earlier:
                where = "twice" if name in seen else f"also by '{earlier[name]}'"
                raise self.error(f"pattern {name!r} is named {where}", given,
                                 hint="pattern names must be distinct across all "
                                      "IPRewriterPatterns elements")
            seen.add(name)


class RoundRobinIPMapper(Element):
    """RoundRobinIPMapper(PATTERN...)

    A mapper for the IPRewriter family: each new flow of an input whose INPUTSPEC
    names this element takes the next pattern, round robin.  Each PATTERN is
    `SADDR SPORT DADDR DPORT FOUTPUT ROUTPUT` as in IPRewriter.  With patterns
    that set DADDR (and DPORT) it spreads connections over servers: a simple
    load balancer (see IPLoadBalancer for consistent hashing).

    Ports
        none.

    Arguments
        PATTERN  SADDR SPORT DADDR DPORT FOUTPUT ROUTPUT.

    Handlers
        none.

    Example
        rr :: RoundRobinIPMapper(- - 10.0.1.1 80 0 1, - - 10.0.1.2 80 0 1);
        lb :: IPRewriter(rr, drop);

    See also
        IPRewriter, IPLoadBalancer
    """

    port_count = "0/0"
    role = "info"
    rest = Rest("PATTERN", mapper_pattern, min=1)
