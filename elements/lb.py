"""Load balancing: IPLoadBalancer, an L4 virtual IP over backends.

New connections are spread by Maglev consistent hashing (nfv/tables/maglev.py,
design note MAGLEV.md); established ones stay on their backend through a
connection table of 16-byte entries (elements/_kernels/conns.py; design note
FLOWS.md).  The kernel is elements/_kernels/lb.py.
"""
from __future__ import annotations

import ipaddress
import re

from nfv import argtypes
from nfv.element import Arg, Element, Handler, Kernel, StateArray
from nfv.elements._kernels import conns
from nfv.elements.nat import PROTO_NAMES, WARM_TABLE_BYTES, time_units
from nfv.errors import ArgError
from nfv.tables import maglev

BACKEND_HINT = "addresses with an optional port, e.g. 10.0.1.1 10.0.1.2:8080"
PROTOCOLS = {"tcp": 1, "udp": 2, "both": 3}   # flows.flow_of's mask

# counts[] and params[] indices (elements/_kernels/flows.py and lb.py)
_SIZE, _CREATED, _EXPIRED, _FULL, _NOMAP, _QUOTE, _ICMP, _OTHER = 0, 1, 2, 4, 6, 7, 8, 9
_NOT_VIP, _NO_BACKEND, _NCOUNTS = 10, 11, 12
_CAPACITY, _NBACKENDS, _NPARAMS = 3, 4, 5

COUNT_HANDLERS = {
    "size": (_SIZE, "live mappings (connections)"),
    "created": (_CREATED, "mappings made"),
    "expired": (_EXPIRED, "mappings removed after their timeout"),
    "not_vip": (_NOT_VIP, "input 0 packets not for VIP:PORT with a balanced protocol"),
    "no_backend_drops": (_NO_BACKEND, "new flows dropped because there was no backend"),
    "table_full_drops": (_FULL, "new flows dropped because the table was at CAPACITY"),
    "no_mapping_drops": (_NOMAP, "input 1 packets that are no mapped reply"),
    "bad_quote_drops": (_QUOTE, "ICMP errors quoting a cut header or an unmapped flow"),
    "icmp_translated": (_ICMP, "ICMP errors rewritten for a mapped flow"),
    "other_drops": (_OTHER, "later fragments and cut TCP/UDP headers (no ports), and "
                            "input 1 packets that are not TCP or UDP"),
}


def backend_list(text: str) -> list[tuple[ipaddress.IPv4Address, int | None]]:
    """`ADDR[:PORT] ...` (spaces or commas between): [(address, port or None)]."""
    out = []
    for m in re.finditer(r"[^\s,]+", text):
        word, at = m.group(), m.start()
        addr, colon, port = word.partition(":")
        try:
            address = argtypes.ipv4_address(addr)
        except ArgError as e:
            raise ArgError(e.message, at + (e.offset or 0), e.hint or BACKEND_HINT) from None
        number = None
        if colon:
            try:
                number = argtypes.port_number(port)
            except ArgError as e:
                raise ArgError(e.message, at + len(addr) + 1 + (e.offset or 0),
                               e.hint) from None
        out.append((address, number))
    return out


def protocol(text: str) -> int:
    word = text.strip().lower()
    if word not in PROTOCOLS:
        raise ArgError(f"expected tcp, udp or both, got {text.strip()!r}", None,
                       "PROTO tcp, PROTO udp or PROTO both (the default)")
    return PROTOCOLS[word]


MAX_TIMEOUT = 4 * 86400   # seconds: a connection's time is kept in 29 bits (6.5 days)
assert time_units(MAX_TIMEOUT) <= conns.MAX_TIMEOUT_UNITS


def timeout(text: str) -> float:
    """A time, at most MAX_TIMEOUT."""
    seconds = argtypes.seconds(text)
    if seconds > MAX_TIMEOUT:
        raise ArgError(f"{text.strip()} is too long a timeout", None,
                       "at most 4d (345600s): the connection table keeps a connection's "
                       "time in 29 bits")
    return seconds


def prime_table_size(text: str) -> int:
    m = argtypes.uint_range(2, 1 << 24)(text)
    if not maglev.is_prime(m):
        raise ArgError(f"{m} is not prime", None,
                       f"Maglev needs a prime table size, e.g. {maglev.nearest_prime(m)}")
    return m


class IPLoadBalancer(Element):
    """IPLoadBalancer(VIP, PORT, BACKENDS, [KEYWORDS])

    An L4 load balancer: TCP and UDP connections to the virtual address VIP, port
    PORT, are spread over BACKENDS, each connection keeping its backend for life.

    Input packets must have their IP header annotation set (CheckIPHeader,
    MarkIPHeader).  Input 0 takes clients' packets: those to VIP:PORT (with a
    protocol PROTO allows) have their destination rewritten to the connection's
    backend and leave by output 0.  Input 1 takes the backends' replies: those of
    a known connection have their source rewritten to VIP:PORT and leave by output
    1.  Address and port change; IP, TCP and UDP checksums are updated
    incrementally (a zero UDP checksum stays zero).  The client's address is kept:
    the backends must route their replies back through the balancer.

    A new connection (a packet whose 5-tuple has no mapping, SYN or not) gets
    its backend by Maglev consistent hashing: a hash of the 5-tuple indexes a
    table of TABLE_SIZE entries (a prime) in which every backend holds an equal
    share (within 1 entry); the hash is deterministic, so a flow that loses its
    mapping (a restart, an expiry) finds the same backend as long as the backends
    do not change.  The mapping is kept in a connection table (the IPRewriter
    family's flow table) of CAPACITY connections: when the backends change, the
    Maglev table is rebuilt and about 1/N of new flows' assignments move, but
    established connections stay on their backend, even one that was removed
    (they drain) until they expire: TCP_TIMEOUT after their last packet, or
    TCP_DONE_TIMEOUT once a FIN or RST went through, or UDP_TIMEOUT.  When the
    table is full even after sweeping expired mappings, new connections are
    dropped (reason table-full) while established ones keep working; with no
    backends, new connections are dropped (reason no-backend).

    ICMP errors (unreachable, time exceeded, ...) quoting a mapped flow are
    translated as IPRewriter does, on either input: a backend-side error about a
    packet sent to a backend reaches the client as if it came from the VIP; a
    client-side error (fragmentation needed) sent to the VIP reaches the backend.

    Everything else is counted and leaves by output 2 when it is connected, else
    is dropped: on input 0, packets not to VIP:PORT or of another protocol
    (not_vip, reason not-vip); later fragments and cut TCP/UDP headers (no ports
    to hash: other_drops, reason not-rewritable); on input 1, packets that are
    no mapped reply (no_mapping_drops, reason no-mapping); ICMP errors quoting no
    mapped flow (bad_quote_drops, reason bad-quote).

    Ports
        2 inputs; 2 or 3 outputs.

    Arguments
        VIP          address: the virtual IP.
        PORT         port number (0-65535, or a service name): the virtual port.
        BACKENDS     ADDR[:PORT] ...: the backends, separated by spaces;
                     a backend without a port listens on PORT.  At least one;
                     distinct.
        PROTO        tcp, udp or both (keyword): protocols balanced. Default both.
        TABLE_SIZE   prime integer (keyword): Maglev table entries. Default 65537;
                     at least 10 entries a backend.
        MAX_BACKENDS integer (keyword): backends a write to `backends` may set.
                     Default min(255, TABLE_SIZE/10); up to 65535 (more than 255
                     doubles the table's memory).
        CAPACITY     integer (keyword): connections the table holds. Default 16384
                     (32 bytes a connection: a 16-byte entry, the table at most half full).
        TCP_TIMEOUT, TCP_DONE_TIMEOUT, UDP_TIMEOUT   time (keyword): as IPRewriter's,
                     up to 4 days.  Defaults 24h, 240s, 5min.

    Handlers
        backends (read/write)  the backends, `ADDR:PORT ...`.  A write takes the
                     BACKENDS syntax and replaces the set (empty: none) and the Maglev
                     table between two batches; established connections keep their
                     backend; per-backend counts of kept backends are kept.
        backend_connections (read)  one line per backend: `ADDR:PORT N`, the new
                     connections it was given.
        shares (read)  one line per backend: `ADDR:PORT ENTRIES`, its Maglev entries.
        table, mappings (read)  one line per connection, as IPRewriter's table:
                     `proto (CLIENT, CPORT, VIP, PORT) => (CLIENT, CPORT, BACKEND,
                     BPORT) [0]`, `done` after a FIN or RST.
        size (read)  live connections.
        capacity, table_size, vip, port (read)  the settings.
        created, expired (read)  mappings made and timed out.
        not_vip, no_backend_drops, table_full_drops (read)  packets by cause (see above).
        no_mapping_drops, bad_quote_drops, other_drops (read)  likewise.
        icmp_translated (read)  ICMP errors rewritten.

    Example
        // clients on NIC 0, backends on NIC 1
        lb :: IPLoadBalancer(192.0.2.10, 80, BACKENDS 10.0.1.1 10.0.1.2 10.0.1.3:8080);
        FromDevice(0) -> Strip(14) -> CheckIPHeader -> [0]lb;
        FromDevice(1) -> Strip(14) -> CheckIPHeader -> [1]lb;
        lb[0] -> EtherEncap(0x0800, 02:00:00:00:00:01, 02:00:00:00:01:00) -> ToDevice(1);
        lb[1] -> EtherEncap(0x0800, 02:00:00:00:00:01, 02:00:00:00:00:99) -> ToDevice(0);

    See also
        IPRewriter, RoundRobinIPMapper
    """

    port_count = "2/2-3"
    args = (Arg("VIP", argtypes.ipv4_address, positional=True, required=True),
            Arg("PORT", argtypes.port_number, positional=True, required=True),
            Arg("BACKENDS", backend_list, positional=True, required=True),
            Arg("PROTO", protocol, default=3),
            Arg("TABLE_SIZE", prime_table_size, default=65537),
            Arg("MAX_BACKENDS", argtypes.uint_range(1, maglev.MAX_BACKENDS)),
            Arg("CAPACITY", argtypes.uint_range(1, 1 << 24), default=16384),
            Arg("TCP_TIMEOUT", timeout, default=86400.0),
            Arg("TCP_DONE_TIMEOUT", timeout, default=240.0),
            Arg("UDP_TIMEOUT", timeout, default=300.0))
    handlers = (Handler("backends", write=True), Handler("backend_connections"),
                Handler("shares"), Handler("table"), Handler("mappings"),
                Handler("capacity"), Handler("table_size"), Handler("vip"),
                Handler("port")) + tuple(Handler(name) for name in COUNT_HANDLERS)
    unconnected_drop = {2: "NOT_VIP"}

    def configure(self) -> None:
        m = self.conf["TABLE_SIZE"]
        backends = self.resolve(self.conf["BACKENDS"])
        if not backends:
            raise self.error("no backends", "BACKENDS", hint=BACKEND_HINT)
        if self.conf["MAX_BACKENDS"] is None:
            self.conf["MAX_BACKENDS"] = max(1, min(255, m // maglev.MIN_RATIO))
        elif self.conf["MAX_BACKENDS"] * maglev.MIN_RATIO > m:
            raise self.error(f"MAX_BACKENDS {self.conf['MAX_BACKENDS']} needs a TABLE_SIZE of "
                             f"at least {maglev.MIN_RATIO * self.conf['MAX_BACKENDS']}",
                             "MAX_BACKENDS", hint=f"{maglev.MIN_RATIO} entries a backend: "
                             f"e.g. TABLE_SIZE {maglev.nearest_prime(maglev.MIN_RATIO * self.conf['MAX_BACKENDS'])}")
        if len(backends) > self.conf["MAX_BACKENDS"]:
            raise self.error(f"{len(backends)} backends, but MAX_BACKENDS is "
                             f"{self.conf['MAX_BACKENDS']}", "BACKENDS",
                             hint=f"a larger MAX_BACKENDS (and TABLE_SIZE, "
                                  f"{maglev.MIN_RATIO} entries a backend)")
        try:
            self.table0 = maglev.build_table(self.names(backends), m)
        except maglev.MaglevError as e:
            raise self.error(e.message, "BACKENDS", hint=e.hint) from None
        self.backends0 = backends

    def resolve(self, parsed) -> list[tuple[int, int]]:
        """[(address, port)]: a backend with no port takes PORT."""
        return [(int(a), self.conf["PORT"] if p is None else p) for a, p in parsed]

    @staticmethod
    def names(backends) -> list[str]:
        return [f"{ipaddress.IPv4Address(a)}:{p}" for a, p in backends]

    # -- the arena ---------------------------------------------------------------------

    def entry_count(self) -> int:
        return conns.entries_for(self.conf["CAPACITY"])

    def entry_dtype(self) -> str:
        return "u1" if self.conf["MAX_BACKENDS"] <= 0xFF else "u2"

    def state(self):
        nmax = self.conf["MAX_BACKENDS"]
        words = [(a << 16) | p for a, p in self.backends0] + [0] * (nmax - len(self.backends0))
        c = self.conf
        return (StateArray("table", "u8", 2 * self.entry_count()),
                StateArray("counts", "u8", _NCOUNTS),
                StateArray("params", "u8", _NPARAMS,
                           [time_units(c["TCP_TIMEOUT"]), time_units(c["TCP_DONE_TIMEOUT"]),
                            time_units(c["UDP_TIMEOUT"]), c["CAPACITY"],
                            len(self.backends0)]),
                StateArray("maglev", self.entry_dtype(), c["TABLE_SIZE"], self.table0),
                StateArray("backends", "u8", nmax, words),
                StateArray("given", "u8", nmax))

    def kernel(self):
        return Kernel("lb:balance_packet", time=True, input_port=True,
                      constants=(self.entry_count() - 1, int(self.conf["VIP"]), self.conf["PORT"],
                                 self.conf["PROTO"], self.noutputs > 2))

    def ahead_kernel(self):
        # Worth it only when the table outgrows the caches (as the rewriters' warm-up):
        # a prefetch of a line already in L2 costs more than it saves.
        if self.entry_count() * 16 <= WARM_TABLE_BYTES:
            return None
        return Kernel("lb:ahead", constants=(self.entry_count() - 1, int(self.conf["VIP"])))

    # -- handlers ----------------------------------------------------------------------

    def connection_lines(self, table) -> list[str]:
        """IPRewriter's table lines: `proto (CLIENT, CPORT, VIP, PORT) => (CLIENT,
        CPORT, BACKEND, BPORT) [0]`, and ` done` after a FIN or RST."""
        vip, port = self.conf["VIP"], self.conf["PORT"]
        lines = []
        for client, cport, proto, backend, bport, done in conns.connection_rows(table):
            c = ipaddress.IPv4Address(client)
            lines.append(f"{PROTO_NAMES[proto]} ({c}, {cport}, {vip}, {port}) => "
                         f"({c}, {cport}, {ipaddress.IPv4Address(backend)}, {bport}) [0]"
                         + (" done" if done else ""))
        return sorted(lines)

    @staticmethod
    def current(state) -> list[tuple[int, int]]:
        n = int(state["params"][_NBACKENDS])
        return [(int(w) >> 16, int(w) & 0xFFFF) for w in state["backends"][:n]]

    def read_state(self, name):
        if name in COUNT_HANDLERS:
            return ("counts",)
        return {"table": ("table",), "mappings": ("table",),
                "backends": ("params", "backends"),
                "backend_connections": ("params", "backends", "given"),
                "shares": ("params", "backends", "maglev")}.get(name, ())

    def read_handler(self, name, state):
        if name in COUNT_HANDLERS:
            return str(int(state["counts"][COUNT_HANDLERS[name][0]]))
        if name in ("table", "mappings"):
            return "\n".join(self.connection_lines(state["table"]))
        backends = self.current(state)
        if name == "backends":
            return " ".join(self.names(backends))
        if name == "backend_connections":
            return "\n".join(f"{b} {int(n)}" for b, n in
                             zip(self.names(backends), state["given"]))
        if name == "shares":
            counts = maglev.shares(state["maglev"], len(backends))
            return "\n".join(f"{b} {int(n)}" for b, n in zip(self.names(backends), counts))
        return super().read_handler(name, state)

    def write_state(self, name):
        # Not the connection table: established connections are left as they are.
        return ("params", "maglev", "backends", "given") if name == "backends" else None

    def write_handler(self, name, value, state):
        if name != "backends":
            return False
        backends = self.resolve(backend_list(value))
        nmax = self.conf["MAX_BACKENDS"]
        if len(backends) > nmax:
            raise ArgError(f"{len(backends)} backends, but MAX_BACKENDS is {nmax}", None,
                           "configure a larger MAX_BACKENDS (and TABLE_SIZE)")
        try:
            table = maglev.build_table(self.names(backends), self.conf["TABLE_SIZE"])
        except maglev.MaglevError as e:
            raise ArgError(e.message, None, e.hint) from None
        # Kept backends keep their connection counts (a backend is its address and port).
        kept = dict(zip(self.current(state), state["given"].tolist()))
        given = [kept.get(b, 0) for b in backends]
        state["maglev"][:] = table
        state["backends"][:] = 0
        state["backends"][:len(backends)] = [(a << 16) | p for a, p in backends]
        state["given"][:] = 0
        state["given"][:len(backends)] = given
        state["params"][_NBACKENDS] = len(backends)
        return True
