"""IPv4 elements: header marking and checking, TTL, checksum, route lookup.

Also the route syntax shared by the lookup elements and their write handlers,
`ADDR/MASK [GW] OUT`, as Click's IPRouteTable reads it.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Callable

from nfv import argtypes
from nfv.element import Arg, Element, Handler, Kernel, Rest, StateArray
from nfv.errors import ArgError

_WORD = re.compile(r"\S+")


def _word_at(parse: Callable[[str], Any], word: str, start: int) -> Any:
    """Parse one word of a longer argument, moving an error's offset to the word's place."""
    try:
        return parse(word)
    except ArgError as e:
        raise ArgError(e.message, start + (e.offset or 0), e.hint) from None


def space_list(parse: Callable[[str], Any]) -> Callable[[str], tuple]:
    """A parser for a space-separated list of values (CheckIPHeader's BADSRC, GOODDST...)."""

    def parse_list(text: str) -> tuple:
        return tuple(_word_at(parse, m.group(), m.start()) for m in _WORD.finditer(text))

    parse_list.__name__ = f"space_list({getattr(parse, '__name__', 'value')})"
    return parse_list


def interface_address(text: str) -> ipaddress.IPv4Interface:
    """`ADDR/MASK` keeping the host part, e.g. 18.26.4.9/24 (a router's interface address)."""
    addr_text, slash, _ = text.partition("/")
    if not slash:
        raise ArgError("expected ADDR/MASK", None, "e.g. 10.0.0.1/24")
    addr = argtypes.ipv4_address(addr_text)
    net = argtypes.ipv4_prefix(text)
    return ipaddress.IPv4Interface((int(addr), net.prefixlen))


@dataclass(frozen=True)
class Route:
    """One route: packets to `prefix` go out `port`, next hop `gateway` (None: the destination)."""

    prefix: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address | None
    port: int

    def __str__(self) -> str:
        return f"{self.prefix} {self.gateway or '-'} {self.port}"


ROUTE_HINT = "a route is ADDR/MASK [GATEWAY] OUTPUT, e.g. 10.0.0.0/8 10.0.0.1 1"

_SHORT_NET = re.compile(r"\d{1,3}(?:\.\d{1,3}){0,2}(?=/)")


def route_prefix(text: str) -> ipaddress.IPv4Network:
    """A route's prefix; also Click's abbreviated forms `0/0` and `18.26.4/24`.

    Click's route tables accept a network address with fewer than four numbers
    when a mask follows (the missing numbers are zeros), and Click's own
    examples use it, so routes copied from Click configs keep working.
    """
    m = _SHORT_NET.match(text)
    if not m or m.group().count(".") == 3:
        return argtypes.ipv4_prefix(text)
    pad = ".0" * (3 - m.group().count("."))
    try:
        return argtypes.ipv4_prefix(m.group() + pad + text[m.end():])
    except ArgError as e:
        offset = e.offset
        if offset is not None and offset >= m.end():
            offset = max(m.end(), offset - len(pad))
        raise ArgError(e.message.replace(m.group() + pad, m.group()), offset, e.hint) from None


def parse_route(text: str) -> Route:
    """Parse `ADDR/MASK [GW] OUT` (GW may be `-`); error offsets point at the bad word.

    As in Click, the address is masked (`10.1.2.3/8` is the route 10.0.0.0/8), `0/0`
    is the default route, and a middle word is a gateway unless the route has only
    two words.
    """
    words = [(m.start(), m.group()) for m in _WORD.finditer(text)]
    if not words:
        raise ArgError("empty route", None, ROUTE_HINT)
    if len(words) > 3:
        raise ArgError(f"too many words in route: {words[3][1]!r}", words[3][0], ROUTE_HINT)
    start, word = words[0]
    prefix = _word_at(route_prefix, word, start)
    if len(words) == 1:
        raise ArgError("route has no output port", start + len(word) - 1, ROUTE_HINT)
    gateway = None
    if len(words) == 3:
        start, word = words[1]
        if word != "-":
            gateway = _word_at(argtypes.ipv4_address, word, start)
    start, word = words[-1]
    if len(words) == 2 and (word == "-" or "." in word):
        raise ArgError("route has a gateway but no output port", start, ROUTE_HINT)
    port = _word_at(argtypes.unsigned, word, start)
    return Route(prefix, gateway, port)


class _RouteTable(Element, abstract=True):
    """Route-table configuration shared by the IP lookup elements (Click's IPRouteTable)."""

    port_count = "1/-"
    rest = Rest("ROUTE", parse_route)
    # True: outputs exactly up to the highest routed port; False: more allowed, for
    # routes added later through the `add`/`set` handlers.
    exact_outputs = True

    def configure(self) -> None:
        first: dict[ipaddress.IPv4Network, int] = {}
        for i, route in enumerate(self.conf["ROUTE"]):
            if route.prefix in first:
                where = self.rest_given[i]
                earlier = self.rest_given[first[route.prefix]]
                raise self.error(f"duplicate route for {route.prefix}", where,
                                 hint=f"the first route for {route.prefix} is at {earlier.pos}; "
                                      "keep one of them")
            first[route.prefix] = i
        n = max((r.port for r in self.conf["ROUTE"]), default=-1) + 1
        if self.exact_outputs:
            self.port_count = f"1/{n}"
        else:
            self.port_count = f"1/{n}-" if n else "1/-"

    def state(self):
        from nfv.tables.lpm import build_lpm

        # The table's values index next hops (output, gateway), not routes: a million
        # routes share a handful of next hops, whose table then stays in cache.
        routes = self.conf["ROUTE"]
        hops: dict[tuple[int, int], int] = {}
        values = [hops.setdefault((r.port, int(r.gateway) if r.gateway else 0), len(hops))
                  for r in routes]
        table = build_lpm([(int(r.prefix.network_address), r.prefix.prefixlen, v)
                           for r, v in zip(routes, values)])
        tbl16, tbl8 = table.arrays
        ports = [port for port, _ in hops] or [0]
        gateways = [gw for _, gw in hops] or [0]
        return (StateArray("tbl16", "u4", tbl16.size, tbl16),
                StateArray("tbl8", "u4", tbl8.size, tbl8),
                StateArray("hop_port", "u4", len(ports), ports),
                StateArray("hop_gateway", "u4", len(gateways), gateways))

    def kernel(self):
        return Kernel("ip:ip_lookup")

    def warm_kernel(self):
        # Only worth it when the table is far bigger than the caches.
        return Kernel("ip:ip_lookup_warm") if len(self.conf["ROUTE"]) > 10_000 else None

    def read_handler(self, name, state):
        if name == "table":
            return "".join(f"{r}\n" for r in self.conf["ROUTE"])
        return super().read_handler(name, state)


class StaticIPLookup(_RouteTable):
    """StaticIPLookup(ROUTE...)

    Looks up each packet's destination IP annotation in a fixed routing table,
    longest prefix first; sends the packet out the route's output and, if the
    route has a gateway, sets the destination annotation to it.  Packets with
    no route are dropped.

    Ports
        1 input; outputs 0 up to the highest OUT of the routes.

    Arguments
        ROUTE  `ADDR/MASK [GW] OUT`: destination prefix, optional gateway address
               (`-` for none) and output port. Two routes for one prefix are an error.

    Handlers
        table (read)   the routing table, one route per line.
        lookup (read)  given an address, the output port and gateway it routes to.

    Example
        rt :: StaticIPLookup(10.0.0.0/8 0, 192.168.1.0/24 1, 0.0.0.0/0 192.168.1.1 1);

    See also
        RadixIPLookup, CheckIPHeader, DecIPTTL
    """

    handlers = (Handler("table"), Handler("lookup"))


class RadixIPLookup(_RouteTable):
    """RadixIPLookup(ROUTE...)

    Looks up each packet's destination IP annotation in a routing table (a radix
    trie), longest prefix first; sends the packet out the route's output and, if
    the route has a gateway, sets the destination annotation to it.  Packets with
    no route are dropped.  Routes can be changed while running.

    Ports
        1 input; at least outputs 0 up to the highest OUT of the routes, more for
        routes to be added while running (1/N-).

    Arguments
        ROUTE  `ADDR/MASK [GW] OUT`: destination prefix, optional gateway address
               (`-` for none) and output port. Two routes for one prefix are an error.

    Handlers
        table (read)    the routing table, one route per line.
        lookup (read)   given an address, the output port and gateway it routes to.
        add (write)     adds a route `ADDR/MASK [GW] OUT`; fails if the prefix has one.
        set (write)     adds or replaces the route for a prefix.
        remove (write)  removes the route `ADDR/MASK`.
        ctrl (write)    lines of `add ROUTE`, `set ROUTE`, `remove ADDR/MASK`, applied
                        all together or not at all.

    Example
        rt :: RadixIPLookup(10.0.0.0/8 0, 0.0.0.0/0 192.168.1.1 1);

    See also
        StaticIPLookup, CheckIPHeader, DecIPTTL
    """

    exact_outputs = False
    handlers = (
        Handler("table"),
        Handler("lookup"),
        Handler("add", read=False, write=True),
        Handler("set", read=False, write=True),
        Handler("remove", read=False, write=True),
        Handler("ctrl", read=False, write=True),
    )


class MarkIPHeader(Element):
    """MarkIPHeader([OFFSET])

    Marks packets as IP: sets the IP header annotation to OFFSET bytes into the
    packet, without checking the header (CheckIPHeader checks).

    Ports
        1 input, 1 output (1/1).

    Arguments
        OFFSET  unsigned: where the IP header starts. Default 0.

    Handlers
        none.

    Example
        FromDevice(0) -> Strip(14) -> MarkIPHeader -> IPFilter(allow tcp, deny all);

    See also
        CheckIPHeader
    """

    port_count = "1/1"
    args = (Arg("OFFSET", argtypes.unsigned, positional=True, default=0),)

    def kernel(self):
        return Kernel("ip:mark_ip_header", (self.conf["OFFSET"],))


class CheckIPHeader(Element):
    """CheckIPHeader([OFFSET], [KEYWORDS])

    Checks that each packet holds a sane IPv4 header OFFSET bytes in (version,
    header length, total length, checksum, source address), trims link-layer
    padding past the IP length, and sets the IP header and destination
    annotations.  Bad packets go to output 1, or are dropped when output 1 is
    not connected, each counted under its reason.

    Ports
        1 input, 1 or 2 outputs (1/1-2).  Output 1: bad packets.

    Arguments
        OFFSET      unsigned: where the IP header starts. Default 0.
        CHECKSUM    boolean: verify the header checksum. Default true.
        BADSRC      space-separated IP addresses: sources that make a packet bad.
        GOODDST     space-separated IP addresses: destinations exempt from BADSRC.
        INTERFACES  space-separated ADDR/MASK interface addresses of this router:
                    their broadcast addresses (and 0.0.0.0, 255.255.255.255) become
                    BADSRC, the addresses themselves GOODDST.
        VERBOSE     boolean: report every bad packet, not just the first. Default false.
        DETAILS     boolean: count bad packets per reason (drop_details). Default false.

    Handlers
        drops (read)         bad packets seen.
        drop_details (read)  bad packets per reason.

    Example
        FromDevice(0) -> Strip(14) -> chk :: CheckIPHeader(CHECKSUM true);  chk[1] -> Discard;

    See also
        MarkIPHeader, DecIPTTL, SetIPChecksum
    """

    port_count = "1/1-2"
    args = (
        Arg("OFFSET", argtypes.unsigned, positional=True, default=0),
        Arg("CHECKSUM", argtypes.boolean, default=True),
        Arg("BADSRC", space_list(argtypes.ipv4_address), default=()),
        Arg("GOODDST", space_list(argtypes.ipv4_address), default=()),
        Arg("INTERFACES", space_list(interface_address)),
        Arg("VERBOSE", argtypes.boolean, default=False),
        Arg("DETAILS", argtypes.boolean, default=False),
    )
    handlers = (Handler("drops"), Handler("drop_details"))

    def configure(self) -> None:
        ifaces = self.conf["INTERFACES"]
        if ifaces is None:
            return
        if "BADSRC" in self.arg_given or "GOODDST" in self.arg_given:
            raise self.error("INTERFACES cannot be combined with BADSRC or GOODDST", "INTERFACES",
                             hint="INTERFACES sets both BADSRC and GOODDST; use one or the other")
        # What INTERFACES means, spelled out as Click does: the broadcast addresses are bad
        # sources, the interfaces' own addresses good destinations.
        bad = [ipaddress.IPv4Address("0.0.0.0"), ipaddress.IPv4Address("255.255.255.255")]
        bad += [i.network.broadcast_address for i in ifaces]
        self.conf["BADSRC"] = tuple(dict.fromkeys(bad))
        self.conf["GOODDST"] = tuple(i.ip for i in ifaces)

    unconnected_drop = {1: "BAD_IP"}
    error_ports = frozenset({1})

    def state(self):
        # Each list is stored as [count, address...], so 0.0.0.0 can be listed.
        bad = [int(a) for a in self.conf["BADSRC"]]
        good = [int(a) for a in self.conf["GOODDST"]]
        return (StateArray("bad_sources", "u4", len(bad) + 1, [len(bad)] + bad),
                StateArray("good_destinations", "u4", len(good) + 1, [len(good)] + good))

    def kernel(self):
        return Kernel("ip:check_ip_header", (self.conf["OFFSET"], bool(self.conf["CHECKSUM"])))


class DecIPTTL(Element):
    """DecIPTTL([KEYWORDS])

    Decrements each IP packet's time-to-live and updates the checksum; packets
    whose TTL has expired (TTL <= 1) go to output 1, or are dropped when output 1
    is not connected.

    Ports
        1 input, 1 or 2 outputs (1/1-2).  Output 1: expired packets (for ICMPError).

    Arguments
        ACTIVE     boolean: decrement at all. Default true.
        MULTICAST  boolean: decrement multicast packets' TTLs too. Default true.

    Handlers
        drops (read)         expired packets seen.
        active (read/write)  the ACTIVE setting.

    Example
        rt[1] -> dt :: DecIPTTL -> ToDevice(1);  dt[1] -> ICMPError(10.0.0.1, timeexceeded) -> rt;

    See also
        CheckIPHeader, SetIPChecksum
    """

    port_count = "1/1-2"
    args = (
        Arg("ACTIVE", argtypes.boolean, default=True),
        Arg("MULTICAST", argtypes.boolean, default=True),
    )
    handlers = (Handler("drops"), Handler("active", write=True))

    unconnected_drop = {1: "TTL_EXPIRED"}
    error_ports = frozenset({1})

    def kernel(self):
        return Kernel("ip:dec_ip_ttl", (bool(self.conf["ACTIVE"]), bool(self.conf["MULTICAST"])))


class SetIPChecksum(Element):
    """SetIPChecksum()

    Computes each IP packet's header checksum and stores it.  Rarely needed:
    elements that change the header (DecIPTTL, rewriters) update it themselves.

    Ports
        1 input, 1 output (1/1).

    Arguments
        none.

    Handlers
        none.

    Example
        ... -> MarkIPHeader(14) -> SetIPChecksum -> ToDevice(1);

    See also
        CheckIPHeader, DecIPTTL
    """

    port_count = "1/1"

    def kernel(self):
        return Kernel("ip:set_ip_checksum")
