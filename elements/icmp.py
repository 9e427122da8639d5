"""ICMP elements: answering pings (Click's ICMPPingResponder)."""
from __future__ import annotations

from nfv.element import Element, Handler, Kernel, StateArray


class ICMPPingResponder(Element):
    """ICMPPingResponder()

    Answers ICMP echo requests: rewrites each request in place into the echo reply.

    Input: IP packets with the IP header annotation set (after CheckIPHeader or
    MarkIPHeader).  An ICMP echo request becomes the echo reply, sent out output 0,
    as Click makes it: source and destination addresses swapped, flags and fragment
    offset cleared, TTL 255, ICMP type 0 and code 0 (the ICMP checksum updated), the
    IP checksum recomputed, the destination IP annotation set to the new destination
    and the paint annotation cleared.  Ethernet addresses are left as they are (an
    EtherRewrite or EtherEncap after it sets them).  Every other packet (other
    protocols, other ICMP types, fragments, an IP length too short for an echo
    header or longer than the packet) leaves by output 1, or is dropped and counted
    (reason not-echo) when output 1 is not connected.  A packet with no marked IP
    header is dropped (reason no-ip-header).

    Ports
        1 input, 1 or 2 outputs (1/1-2).  Output 1: packets not answered.

    Arguments
        none.

    Handlers
        count (read)  replies made.
        drops (read)  packets dropped (output 1 not connected, or no IP header).

    Example
        FromDevice(0) -> Strip(14) -> CheckIPHeader -> ICMPPingResponder -> Unstrip(14)
          -> EtherRewrite(02:00:00:00:00:01, 02:00:00:00:00:02) -> ToDevice(0);

    See also
        ARPResponder, CheckIPHeader, MarkIPHeader, IPClassifier
    """

    port_count = "1/1-2"
    handlers = (Handler("count"),)
    unconnected_drop = {1: "NOT_ECHO"}

    def state(self):
        return (StateArray("counts", "u8", 1),)

    def kernel(self):
        return Kernel("icmp:icmp_ping_respond")

    def read_handler(self, name, state):
        if name == "count":
            return str(int(state["counts"][0]))
        return super().read_handler(name, state)
