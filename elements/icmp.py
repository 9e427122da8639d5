"""ICMP elements: answering pings (Click's ICMPPingResponder) and making ICMP errors
(Click's ICMPError)."""
from __future__ import annotations

from nfv import argtypes
from nfv.element import Arg, Element, Handler, Kernel, StateArray
from nfv.errors import ArgError


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


# Click's NameInfo tables for ICMP error types and their codes (T_ICMP_TYPE, T_ICMP_CODE).
ICMP_ERROR_TYPES = {"unreachable": 3, "sourcequench": 4, "redirect": 5,
                    "timeexceeded": 11, "parameterproblem": 12}
ICMP_CODES = {
    3: {"net": 0, "host": 1, "protocol": 2, "port": 3, "needfrag": 4, "srcroutefail": 5,
        "netunknown": 6, "hostunknown": 7, "isolated": 8, "netprohibited": 9,
        "hostprohibited": 10, "tosnet": 11, "toshost": 12, "filterprohibited": 13,
        "hostprecedence": 14, "precedencecutoff": 15},
    5: {"net": 0, "host": 1, "tosnet": 2, "toshost": 3},
    11: {"transit": 0, "reassembly": 1},
    12: {"erroratptr": 0, "missingopt": 1, "length": 2},
}


def icmp_error_type(text: str) -> int:
    """An ICMP error type: a name (`unreachable`, `timeexceeded`...) or a number."""
    if text.lower() in ICMP_ERROR_TYPES:
        return ICMP_ERROR_TYPES[text.lower()]
    try:
        value = argtypes.uint_range(0, 255)(text)
    except ArgError:
        raise ArgError(f"expected an ICMP error type, got {text!r}", None,
                       "one of " + ", ".join(ICMP_ERROR_TYPES) + ", or a number") from None
    if value not in ICMP_ERROR_TYPES.values():
        raise ArgError(f"ICMP type {value} is not an error type", None,
                       "error types are 3, 4, 5, 11 and 12")
    return value


class ICMPError(Element):
    """ICMPError(SRC, TYPE, [CODE], [KEYWORDS])

    Turns each IP packet into the ICMP error about it, in place.

    Input: IP packets with the IP header annotation set (after CheckIPHeader or
    MarkIPHeader).  Each becomes an ICMP error message as Click's ICMPError makes
    it: a new 20-byte IP header from SRC to the original packet's source (TOS 0, an
    identifier counting up from 1, no fragment bits, TTL 200 as in Click, protocol
    1), an ICMP header with TYPE and CODE, and as payload the original IP header
    and the first 8 bytes of its payload (fewer if the packet ends sooner).  The
    new headers are written into the headroom in front of the original IP header
    (no bytes are copied) and the packet is cut after the quoted bytes; bytes in
    front of the original IP header (an Ethernet header not stripped) are left
    out.  Both checksums are computed; the IP header annotation moves to the new
    header and the destination IP annotation is set to the new destination.  A
    redirect carries the destination IP annotation as its gateway; unreachable /
    needfrag carries PMTU as the next-hop MTU.

    No error is made (the packet is dropped, reason no-icmp-error) for what RFC
    1812 4.3.2.7 forbids, as Click checks it: an ICMP error message (or an ICMP
    message too short to show its type), a broadcast (255.255.255.255) or multicast
    destination, a source that is broadcast, multicast, in net 0 or 127 or class
    E, a fragment other than the first, and a redirect about a source-routed
    packet.  A packet with no marked IP header is dropped (reason no-ip-header).
    Unlike Click: no link-broadcast check (packets carry no link-type annotation),
    no reversed source route in the error, the parameter-problem pointer is 0
    (there is no annotation for it), and no MTU keyword (the error always quotes
    the header and 8 bytes).

    Unlike Click, ICMPError limits the rate of the errors it makes, as RFC 1812
    4.3.2.8 asks: a token bucket of RATE tokens a second holding at most BURST,
    one token per error, counted with the batch's clock.  An error over the rate
    is not made: the packet is dropped (reason rate-limited) and counted.  The
    defaults are Linux's (net.ipv4.icmp_msgs_per_sec 1000, icmp_msgs_burst 50);
    RATE 0 turns the limit off, as Click behaves.  The bucket is one per element,
    not one per destination.

    Ports
        1 input, 1 output (1/1).

    Arguments
        SRC   IP address: the source of the errors.
        TYPE  ICMP error type: a number or one of unreachable (3), sourcequench (4),
              redirect (5), timeexceeded (11), parameterproblem (12).
        CODE  ICMP code: a number 0-255 or a name for TYPE (unreachable: net, host,
              protocol, port, needfrag...; redirect: net, host; timeexceeded:
              transit, reassembly; parameterproblem: erroratptr, missingopt,
              length).  Default 0.
        PMTU  (keyword) integer 0-65535: the next-hop MTU in unreachable/needfrag errors.
              Default 0.
        RATE  (keyword) errors a second, >= 0 (a real number): the long-run rate
              of errors.  0 means no limit.  Default 1000 (not in Click).
        BURST (keyword) integer 1-1000000: the most errors sent back to back
              after a quiet time (the bucket's size).  Default 50 (not in Click).

    Handlers
        count (read)         errors made.
        drops (read)         packets dropped (no error allowed, no IP header, or
                             over the rate).
        rate_limited (read)  packets dropped because they were over the rate.
        rate, burst (read)   the RATE and BURST settings.
        src (read)    the SRC setting.
        type (read)   the TYPE setting, as a number.
        code (read)   the CODE setting, as a number.

    Example
        FromDevice(0) -> Strip(14) -> CheckIPHeader -> dt :: DecIPTTL -> ToDevice(1);
        dt[1] -> ICMPError(192.0.2.1, timeexceeded, transit, RATE 100, BURST 10)
          -> EtherEncap(0x0800, 02:00:00:00:00:01, 02:00:00:00:00:02) -> ToDevice(0);

    See also
        DecIPTTL, CheckIPHeader, MarkIPHeader, ICMPPingResponder, EtherEncap
    """

    port_count = "1/1"
    args = (
        Arg("SRC", argtypes.ipv4_address, positional=True, required=True),
        Arg("TYPE", icmp_error_type, positional=True, required=True),
        Arg("CODE", argtypes.word, positional=True, default="0"),
        Arg("PMTU", argtypes.uint_range(0, 65535), default=0),
        Arg("RATE", argtypes.rate, default=1000.0),
        Arg("BURST", argtypes.uint_range(1, 1_000_000), default=50),
    )
    handlers = (Handler("count"), Handler("src"), Handler("type"), Handler("code"),
                Handler("rate"), Handler("burst"), Handler("rate_limited"))

    def configure(self) -> None:
        text = self.conf["CODE"]
        names = ICMP_CODES.get(self.conf["TYPE"], {})
        if text.lower() in names:
            self.conf["CODE"] = names[text.lower()]
            return
        try:
            self.conf["CODE"] = argtypes.uint_range(0, 255)(text)
        except ArgError:
            hint = ("one of " + ", ".join(names) + ", or a number") if names else "a number 0-255"
            raise self.error(f"expected an ICMP code for type {self.conf['TYPE']}, got {text!r}",
                             "CODE", hint=hint) from None

    def state(self):
        # counts: errors made, the next IP identifier, errors over the rate.
        # bucket: tokens (a full bucket to start with); clock: when they were counted.
        return (StateArray("counts", "u8", 3, [0, 1, 0]),
                StateArray("bucket", "f8", 1, [float(self.conf["BURST"])]),
                StateArray("clock", "u8", 1))

    def kernel(self):
        return Kernel("icmp:icmp_error", time=True, constants=(
            int(self.conf["SRC"]), self.conf["TYPE"], self.conf["CODE"], self.conf["PMTU"],
            float(self.conf["RATE"]), float(self.conf["BURST"])))

    def read_handler(self, name, state):
        if name == "count":
            return str(int(state["counts"][0]))
        if name == "rate_limited":
            return str(int(state["counts"][2]))
        if name == "rate":
            return f"{self.conf['RATE']:g}"
        return super().read_handler(name, state)
