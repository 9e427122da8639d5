"""ARP elements: answering ARP requests for our addresses (Click's ARPResponder)."""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from nfv import argtypes
from nfv.element import Element, Handler, Kernel, Rest, StateArray, format_value
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
