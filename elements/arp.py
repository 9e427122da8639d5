"""ARP elements: answering ARP requests for our addresses (Click's ARPResponder) and
resolving next hops' Ethernet addresses (Click's ARPQuerier)."""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

import numpy as np

from nfv import argtypes
from nfv.element import Arg, Element, Handler, Kernel, Rest, StateArray, format_value
from nfv.errors import ArgError

_WORD = re.compile(r"\S+")
ENTRY_HINT = "an entry is IP/MASK [IP/MASK...] ETH, e.g. 10.0.0.1 00:01:02:03:04:05"


@dataclass(frozen=True)
class ArpEntry:
    """One ARPResponder argument: the prefixes answered for, and the address they answer with."""

    prefixes: tuple[ipaddress.IPv4Network, ...]
    ether: bytes

    def __str__(self) -> str:
        return " ".join(str(p) for p in self.prefixes) + " " + format_value(self.ether)


def arp_entry(text: str) -> ArpEntry:
    """`IP/MASK [IP/MASK...] ETH`, words in any order, as Click's ARPResponder reads them:
    each word an IP address or prefix (a bare address is /32), exactly one an Ethernet address."""
    prefixes: list[ipaddress.IPv4Network] = []
    ether: bytes | None = None
    for m in _WORD.finditer(text):
        word = m.group()
        try:
            prefixes.append(argtypes.ipv4_prefix(word))
            continue
        except ArgError:
            pass
        try:
            value = argtypes.ether_address(word)
        except ArgError:
            raise ArgError(f"expected IP/MASK or ETH, got {word!r}", m.start(),
                           ENTRY_HINT) from None
        if ether is not None:
            raise ArgError("more than one ETH", m.start(),
                           "each argument gives one Ethernet address; use another argument "
                           "for another")
        ether = value
    if not prefixes:
        raise ArgError("missing IP/MASK", None, ENTRY_HINT)
    if ether is None:
        raise ArgError("missing ETH", None, ENTRY_HINT)
    return ArpEntry(tuple(prefixes), ether)


class ARPResponder(Element):
    """ARPResponder(ENTRY...)

    Answers ARP requests for its addresses: rewrites each request in place into the reply.

    Input: Ethernet frames.  An ARP request (Ethernet hardware, IPv4 protocol, hardware
    length 6, protocol length 4, operation 1) whose target IP address lies in one of
    the ENTRY prefixes becomes the ARP reply, sent out output 0: Ethernet destination
    and ARP target are the asker (its ARP sender addresses), Ethernet source and ARP
    sender are the entry's Ethernet address and the address asked about, operation 2.
    The reply is 42 bytes long (padding of the request is dropped), as Click makes it.
    When prefixes overlap, the most specific answers; of two equal prefixes, the later.
    Every other frame (other addresses, replies, other protocols, truncated or
    malformed ARP) leaves by output 1, or is dropped and counted (reason
    not-arp-request) when output 1 is not connected.  Useful for a host's own
    addresses and for proxy ARP.

    Ports
        1 input, 1 or 2 outputs (1/1-2).  Output 1: frames not answered.

    Arguments
        ENTRY  `IP/MASK [IP/MASK...] ETH`: addresses or prefixes (a bare address is /32,
               a mask may be dotted, 10.0.0.0/255.255.255.0) and the Ethernet address
               to answer with. At least one entry.

    Handlers
        table (read)  the entries, one prefix and Ethernet address per line.
        count (read)  replies made.
        drops (read)  frames dropped because output 1 is not connected.

    Example
        arp :: ARPResponder(10.0.0.1 02:00:00:00:00:01, 192.168.7.0/24 02:00:00:00:00:02);
        FromDevice(0) -> Classifier(12/0806 20/0001)
          -> ARPResponder(10.0.0.1 02:00:00:00:00:01) -> ToDevice(0);

    See also
        ICMPPingResponder, Classifier, EtherRewrite
    """

    port_count = "1/1-2"
    rest = Rest("ENTRY", arp_entry, min=1)
    handlers = (Handler("table"), Handler("count"))
    unconnected_drop = {1: "NOT_ARP_REQUEST"}

    def table(self) -> list[tuple[ipaddress.IPv4Network, bytes]]:
        """(prefix, Ethernet address), most specific first; of equal prefixes the last given."""
        last: dict[ipaddress.IPv4Network, bytes] = {}
        for entry in self.conf["ENTRY"]:
            for prefix in entry.prefixes:
                last.pop(prefix, None)
                last[prefix] = entry.ether
        order = list(last.items())
        # stable: prefixes of one length keep the order given
        return sorted(order, key=lambda item: -item[0].prefixlen)

    def state(self):
        table = self.table()
        macs = [b for _, ether in table for b in ether]
        return (StateArray("networks", "u4", len(table),
                           [int(p.network_address) for p, _ in table]),
                StateArray("masks", "u4", len(table), [int(p.netmask) for p, _ in table]),
                StateArray("macs", "u1", len(macs), macs),
                StateArray("counts", "u8", 1))

    def kernel(self):
        return Kernel("arp:arp_respond")

    def read_handler(self, name, state):
        if name == "table":
            return "".join(f"{p} {format_value(e)}\n" for p, e in self.table())
        if name == "count":
            return str(int(state["counts"][0]))
        return super().read_handler(name, state)


# -- ARPQuerier ---------------------------------------------------------------------------

# Mirrors elements/_kernels/arp.py (flags, counters, hash): the handlers and the STATIC
# keyword work on the same table the kernel does.
KNOWN, STATIC, QUERIED = 1, 2, 4
Q_QUERIES, Q_RESPONSES, Q_DROPS, Q_NOW, Q_ENTRIES = range(5)
HOLD_STRIDE = 1920


def slot_hash(ip: int, mask: int) -> int:
    """The kernel's slot_of: an address's home slot."""
    h = (ip * 0x9E3779B1) & 0xFFFFFFFF
    return (h ^ (h >> 15)) & mask


def address_or_prefix(text: str) -> ipaddress.IPv4Interface:
    """ARPQuerier's IP: an address, or ADDR/MASK keeping the host part (the mask only
    gives the broadcast address), as Click's IPPrefixArg(true) reads it."""
    addr_text, slash, _ = text.partition("/")
    addr = argtypes.ipv4_address(addr_text.strip() if slash else text)
    length = argtypes.ipv4_prefix(text).prefixlen if slash else 32
    return ipaddress.IPv4Interface((int(addr), length))


def static_entries(text: str) -> tuple[tuple[ipaddress.IPv4Address, bytes], ...]:
    """`IP ETH [IP ETH...]`: pairs of an address and its Ethernet address."""
    words = list(_WORD.finditer(text))
    if len(words) % 2:
        raise ArgError("expected pairs IP ETH", words[-1].start() if words else None,
                       "e.g. STATIC 10.0.0.2 02:00:00:00:00:02 10.0.0.3 02:00:00:00:00:03")
    pairs = []
    for a, b in zip(words[::2], words[1::2]):
        try:
            ip = argtypes.ipv4_address(a.group())
        except ArgError as e:
            raise ArgError(e.message, a.start() + (e.offset or 0), e.hint) from None
        try:
            eth = argtypes.ether_address(b.group())
        except ArgError as e:
            raise ArgError(e.message, b.start() + (e.offset or 0), e.hint) from None
        pairs.append((ip, eth))
    return tuple(pairs)


class ARPQuerier(Element):
    """ARPQuerier(IP, ETH, [KEYWORDS])

    Encapsulates IP packets in Ethernet headers found via ARP, in place.

    Input 0: IP packets (the data starts with the IP header), with the destination
    IP annotation set to the next hop (after a route lookup, GetIPAddress or
    CheckIPHeader); when the annotation is 0, the IP header's destination is the
    next hop instead (Click drops such packets).  If the next hop's Ethernet address
    is known and fresh, a 14-byte Ethernet header (destination that address, source
    ETH, type 0x0800) is pushed into the packet's headroom and the packet leaves by
    output 0.  Otherwise the packet is kept in a hold buffer and its own buffer
    becomes the ARP query (who-has the next hop, tell IP; Ethernet broadcast, 42
    bytes as Click makes it), which leaves by the last output.  Its record ends
    with reason arp-held; the packet itself leaves later, as below.  Queries for one
    address go out at most 10 times a second, as in Click: a packet for an address
    queried less than 100 ms ago is only held (reason arp-held).  As in Click,
    packets for 255.255.255.255 and the BROADCAST address go to ff:ff:ff:ff:ff:ff,
    multicast packets to 01:00:5e and the low 23 bits of the group (RFC 1112), and
    a next hop of 0.0.0.0 is dropped (reason no-route).

    Input 1: ARP frames with their Ethernet header.  A reply (Ethernet/IPv4 ARP,
    operation 2, a unicast sender address) updates the table with its sender's
    addresses (an entry is made if there was none, as Click's ARPTable does; static
    entries do not change).  If a packet was held for the sender, the reply's
    buffer is rewritten into it, Ethernet header pushed, and it leaves by output 0
    (with its annotations: destination IP, paint, IP header).  Otherwise the reply
    is consumed (reason arp-absorbed).  A frame shorter than 42 bytes is dropped
    (reason too-short); any other frame, requests included (Click does not learn
    from requests), is dropped with reason not-arp-request; both are counted in
    drops.

    Unlike Click, which keeps a queue of packets for each unresolved address, one
    packet is held per address, the newest replacing the one before (a drop);
    at most CAPACITY packets are held at once, and a packet that finds no free
    hold buffer is lost (it still becomes the query when one is due; otherwise
    reason table-full).  No buffer is made: a query is always a packet's own
    buffer, so a renewal poll (POLL_TIMEOUT) also holds the packet that carries
    it, until the reply; that packet then leaves after the ones sent meanwhile.

    The table holds ENTRY_CAPACITY entries; a new address in a full table replaces
    the entry learnt longest ago (its held packet is dropped); a table full of
    static entries drops the packet (reason table-full).  An entry older than
    TIMEOUT is stale: the next packet for it is held and a query made.  Time is
    the batch's clock.

    Ports
        2 inputs, 1 or 2 outputs (2/1-2).  With two outputs, queries leave by
        output 1 and Ethernet-encapsulated IP packets by output 0; with one, both
        by output 0.

    Arguments
        IP              IP address, or ADDR/MASK (the mask gives the default
                        BROADCAST): the sender address of queries.
        ETH             Ethernet address: the source of every frame made.
        CAPACITY        (keyword) integer 1-1024: packets held at once, one hold
                        buffer of 1920 bytes each.  Default 64 (Click: 2048, and 0
                        for unlimited, which a fixed arena cannot have).
        ENTRY_CAPACITY  (keyword) integer 1-65536: entries in the table.  Default
                        256 (Click: unlimited).
        TIMEOUT         (keyword) time: how long a learnt address stays valid.
                        0 means forever.  Default 5 minutes.
        POLL_TIMEOUT    (keyword) time: after this age a packet to a known address
                        carries a renewal query (unicast to the known address) and
                        waits for the reply.  0 means no polls.  Default 1 minute.
        BROADCAST       (keyword) IP address: the local broadcast address.
                        Default: from IP's mask when given, else none besides
                        255.255.255.255.
        BROADCAST_POLL  (keyword) boolean: send renewal polls to the Ethernet
                        broadcast address.  Default false.
        STATIC          (keyword, nfv) `IP ETH [IP ETH...]`: entries that never
                        expire and that replies do not change, as `insert` makes.
        Not supported: Click's NAME form (AddressInfo), TABLE (ARPTable),
        ENTRY_PACKET_CAPACITY (always 1 here), CAPACITY_SLIM_FACTOR.

    Handlers
        table (read)      one line per entry: IP, 1 if the address is valid now
                          and 0 if not, the Ethernet address (00:00:00:00:00:00
                          while unresolved), and the seconds since it was learnt
                          (or first queried), as of the newest packet seen.
        stats (read)      "N packets killed" and "N ARP queries sent", as Click.
        queries (read)    queries sent (renewal polls included).
        responses (read)  ARP replies learnt from.
        drops (read)      packets lost: held packets replaced or evicted, packets
                          that found no hold buffer, no headroom, next hop 0.0.0.0,
                          malformed ARP.  (Held and absorbed records are not lost.)
        count (read)      entries in the table.
        length (read)     packets held now.
        ipaddr, broadcast (read)  IP and the broadcast address.
        insert (write)    `IP ETH`: a static entry (unlike Click's, it never
                          expires); a packet held for IP is dropped.
        delete (write)    `IP`: removes its entry (and drops a packet held for it);
                          an address not in the table is ignored.
        clear (write)     empties the table and the hold buffers, and zeroes
                          queries, responses and drops, as Click.

    Example
        c :: Classifier(12/0806 20/0002, 12/0800);
        FromDevice(0) -> c;
        c[0] -> [1] arpq :: ARPQuerier(192.0.2.1/24, 02:00:00:00:00:01);
        c[1] -> Strip(14) -> CheckIPHeader -> StaticIPLookup(0.0.0.0/0 192.0.2.254 0)
          -> [0] arpq;
        arpq -> ToDevice(1);

    See also
        ARPResponder, EtherEncap, StaticIPLookup, Classifier
    """

    port_count = "2/1-2"
    args = (
        Arg("IP", address_or_prefix, positional=True, required=True),
        Arg("ETH", argtypes.ether_address, positional=True, required=True),
        Arg("CAPACITY", argtypes.uint_range(1, 1024), default=64),
        Arg("ENTRY_CAPACITY", argtypes.uint_range(1, 65536), default=256),
        Arg("TIMEOUT", argtypes.seconds, default=300.0),
        Arg("POLL_TIMEOUT", argtypes.seconds, default=60.0),
        Arg("BROADCAST", argtypes.ipv4_address),
        Arg("BROADCAST_POLL", argtypes.boolean, default=False),
        Arg("STATIC", static_entries, default=()),
    )
    handlers = (Handler("table"), Handler("stats"), Handler("queries"), Handler("responses"),
                Handler("count"), Handler("length"), Handler("ipaddr"), Handler("broadcast"),
                Handler("insert", read=False, write=True),
                Handler("delete", read=False, write=True),
                Handler("clear", read=False, write=True))

    def configure(self) -> None:
        if len(self.conf["STATIC"]) > self.conf["ENTRY_CAPACITY"]:
            raise self.error(f"{len(self.conf['STATIC'])} STATIC entries do not fit "
                             f"ENTRY_CAPACITY {self.conf['ENTRY_CAPACITY']}", "STATIC",
                             hint="raise ENTRY_CAPACITY")
        if self.conf["BROADCAST"] is None:
            iface = self.conf["IP"]
            bcast = iface.network.broadcast_address
            # Click: an address with no mask (or a /32) has only 255.255.255.255
            self.bcast_addr = (ipaddress.IPv4Address(0xFFFFFFFF)
                              if bcast == iface.ip else bcast)
        else:
            self.bcast_addr = self.conf["BROADCAST"]

    def slots(self) -> int:
        """Table slots: a power of two, at least twice ENTRY_CAPACITY."""
        n = 2
        while n < 2 * self.conf["ENTRY_CAPACITY"]:
            n *= 2
        return n

    def state(self):
        size, hold = self.slots(), self.conf["CAPACITY"]
        ips = [0] * size
        macs = [0] * (6 * size)
        flags = [0] * size
        for ip, eth in self.conf["STATIC"]:
            k = _find(ips, int(ip))
            if k < 0:
                k = -1 - k
            ips[k] = int(ip)
            macs[6 * k:6 * k + 6] = list(eth)
            flags[k] = KNOWN | STATIC
        counts = [0, 0, 0, 0, sum(1 for v in ips if v)]
        return (StateArray("ips", "u4", size, ips),
                StateArray("macs", "u1", 6 * size, macs),
                StateArray("flags", "u1", size, flags),
                StateArray("learnt", "u8", size),
                StateArray("polled", "u8", size),
                StateArray("hold", "u2", size),
                StateArray("held_used", "u1", hold),
                StateArray("held_len", "u2", hold),
                StateArray("held_dst", "u4", hold),
                StateArray("held_net", "u2", hold),
                StateArray("held_paint", "u1", hold),
                StateArray("held", "u1", HOLD_STRIDE * hold),
                StateArray("counts", "u8", 5, counts))

    def kernel(self):
        ns = 1_000_000_000
        return Kernel("arp:arp_query", time=True, input_port=True, constants=(
            int(self.conf["IP"].ip), int.from_bytes(self.conf["ETH"], "big"),
            int(self.bcast_addr), self.conf["ENTRY_CAPACITY"],
            round(self.conf["TIMEOUT"] * ns), round(self.conf["POLL_TIMEOUT"] * ns),
            bool(self.conf["BROADCAST_POLL"]), self.noutputs - 1))

    # -- handlers ------------------------------------------------------------------------

    def read_handler(self, name, state):
        counts = state["counts"]
        if name == "table":
            return self.table_text(state)
        if name == "stats":
            return (f"{int(counts[Q_DROPS])} packets killed\n"
                    f"{int(counts[Q_QUERIES])} ARP queries sent\n")
        simple = {"queries": Q_QUERIES, "responses": Q_RESPONSES, "drops": Q_DROPS,
                  "count": Q_ENTRIES}
        if name in simple:
            return str(int(counts[simple[name]]))
        if name == "length":
            return str(int(state["held_used"].sum()))
        if name == "ipaddr":
            return str(self.conf["IP"].ip)
        if name == "broadcast":
            return str(self.bcast_addr)
        return super().read_handler(name, state)

    def table_text(self, state) -> str:
        """Click's ARPTable format: IP, valid (1/0), ETH, age in seconds; oldest first."""
        now = int(state["counts"][Q_NOW])
        timeout = round(self.conf["TIMEOUT"] * 1e9)
        rows = []
        for k in np.nonzero(state["ips"])[0]:
            flags = int(state["flags"][k])
            learnt = int(state["learnt"][k])
            age = max(0, now - learnt)
            ok = bool(flags & KNOWN) and (bool(flags & STATIC) or timeout == 0 or age <= timeout)
            eth = bytes(state["macs"][6 * k:6 * k + 6])
            rows.append((learnt, f"{ipaddress.IPv4Address(int(state['ips'][k]))} {int(ok)} "
                                 f"{format_value(eth)} {age / 1e9:.6f}\n"))
        rows.sort(key=lambda r: r[0])
        return "".join(text for _, text in rows)

    def write_handler(self, name, value, state):
        if name == "insert":
            words = value.split()
            if len(words) != 2:
                raise ArgError(f"expected IP ETH, got {value!r}", None,
                               "e.g. 10.0.0.2 02:00:00:00:00:02")
            ip, eth = argtypes.ipv4_address(words[0]), argtypes.ether_address(words[1])
            if int(ip) == 0:
                raise ArgError("0.0.0.0 cannot have an entry", None, "give a host's address")
            k = self._find_or_add(state, int(ip))
            state["macs"][6 * k:6 * k + 6] = np.frombuffer(eth, np.uint8)
            state["flags"][k] = KNOWN | STATIC
            state["learnt"][k] = state["counts"][Q_NOW]
            self._drop_held(state, k)
            return True
        if name == "delete":
            words = value.split()
            if len(words) != 1:
                raise ArgError(f"expected one IP address, got {value!r}", None, "e.g. 10.0.0.2")
            k = _find(state["ips"], int(argtypes.ipv4_address(words[0])))
            if k >= 0:
                self._drop_held(state, k)
                _remove(state, k)
                state["counts"][Q_ENTRIES] -= 1
            return True
        if name == "clear":
            for array in ("ips", "macs", "flags", "learnt", "polled", "hold", "held_used"):
                state[array][:] = 0
            for q in (Q_QUERIES, Q_RESPONSES, Q_DROPS, Q_ENTRIES):
                state["counts"][q] = 0
            return True
        return super().write_handler(name, value, state)

    def _drop_held(self, state, k: int) -> None:
        s = int(state["hold"][k]) - 1
        if s >= 0:
            state["held_used"][s] = 0
            state["hold"][k] = 0
            state["counts"][Q_DROPS] += 1

    def _find_or_add(self, state, ip: int) -> int:
        """The slot of ip's entry, made if needed (evicting as the kernel's arp_add does)."""
        k = _find(state["ips"], ip)
        if k >= 0:
            return k
        if state["counts"][Q_ENTRIES] >= self.conf["ENTRY_CAPACITY"]:
            ips, flags, learnt = state["ips"], state["flags"], state["learnt"]
            candidates = [j for j in np.nonzero(ips)[0] if not flags[j] & STATIC]
            if not candidates:
                raise ArgError(f"the table is full of static entries "
                               f"(ENTRY_CAPACITY {self.conf['ENTRY_CAPACITY']})", None,
                               "delete one first, or raise ENTRY_CAPACITY")
            victim = int(min(candidates, key=lambda j: (int(learnt[j]), j)))
            self._drop_held(state, victim)
            _remove(state, victim)
            state["counts"][Q_ENTRIES] -= 1
        k = -1 - _find(state["ips"], ip)
        state["ips"][k] = ip
        state["macs"][6 * k:6 * k + 6] = 0
        state["flags"][k] = 0
        state["learnt"][k] = state["polled"][k] = state["hold"][k] = 0
        state["counts"][Q_ENTRIES] += 1
        return k


def _find(ips, ip: int) -> int:
    """The kernel's arp_find on a list or array: ip's slot, or -1 - the empty slot for it."""
    size = len(ips)
    k = slot_hash(ip, size - 1)
    for _ in range(size):
        if int(ips[k]) == ip:
            return k
        if int(ips[k]) == 0:
            return -1 - k
        k = (k + 1) & (size - 1)
    raise AssertionError("ARPQuerier table with no empty slot")


def _remove(state, k: int) -> None:
    """The kernel's arp_remove: empty slot k, shift back what may move."""
    ips = state["ips"]
    mask = len(ips) - 1
    hole, n = k, k
    ips[hole] = 0
    while True:
        n = (n + 1) & mask
        v = int(ips[n])
        if v == 0:
            return
        home = slot_hash(v, mask)
        stays = (hole < home <= n) if hole <= n else (home > hole or home <= n)
        if stays:
            continue
        ips[hole] = v
        state["macs"][6 * hole:6 * hole + 6] = state["macs"][6 * n:6 * n + 6]
        for array in ("flags", "learnt", "polled", "hold"):
            state[array][hole] = state[array][n]
        ips[n] = 0
        hole = n
