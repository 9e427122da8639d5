"""The IPRewriter family (elements/nat.py) and its flow table (elements/_kernels/flows.py),
with scapy traffic, on both targets.

Each test that takes `nf_factory` runs as `[host]` and `[unikernel]` (tests/conftest.py).
Every expected packet is built by scapy from the packet sent and the rewrite the
element's manual documents: the fields the mapping changes are set, the checksums
are deleted and scapy computes them again, and the bytes are compared with what the
target sent.  Checksums are also checked against conftest's own RFC 1071 sum.

One compiled pipeline serves (nearly) every test: frames enter on device 0 (the
inside) or device 1 (the outside), and the last byte of their Ethernet source address
picks the element under test (a Classifier on byte 11), so the test for `ping` sends
from 02:00:00:00:00:01, and so on.  Each element sends a flow's packets to output 1,
which is device 1 (the outside), and its replies to output 0, device 0 (the inside);
DNAT and the load balancer the other way round, as their flows come from outside.
Outputs 2 and 3 (`pass`, `nochange`) are devices 2 and 3.

Timeouts are tested on the host only, where `now_ns` sets the pipeline's clock; the
guest keeps its own.  Without `now_ns` the host's clock stands at 0 for every batch.
"""
from __future__ import annotations

import re
import struct

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_NOP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from conftest import errors_of, expect_error, ones_sum
from nfv import drops

NAT_IP = "192.0.2.1"          # rw, ping, tr, ur: the address the inside hides behind
FULL_IP = "192.0.2.2"         # full
WORLD_IP = "198.51.100.1"     # the named pattern's address
ROUTER_MAC = "02:00:00:00:00:fe"
SERVER = "203.0.113.9"
SERVER2 = "203.0.113.10"
ROUTER = "203.0.113.254"      # a router on the path that complains (ICMP errors)
CLIENT = "198.51.100.20"      # a client outside (DNAT, load balancer)
BACKEND = "10.0.1.80"

# Element selectors: the last byte of the Ethernet source (see the module docstring).
RW, PING, SP, FWD, LB, NAMED, TR, UR, FULL = range(9)
INSIDE, OUTSIDE = 0, 1
SECOND = 1_000_000_000

CONFIG = f"""
// rw: source NAT behind {NAT_IP}, four ports (easy to exhaust), short UDP and done timeouts
rw :: IPRewriter(pattern {NAT_IP} 1024-1027 - - 1 0, drop,
                 CAPACITY 16, UDP_TIMEOUT 10, TCP_DONE_TIMEOUT 4);
ping :: ICMPPingRewriter(pattern {NAT_IP} 7000-7003 - - 1 0, drop, CAPACITY 16, TIMEOUT 10);
// sp: the inside's flows kept as they are; the outside's unknown packets passed to device 2
sp :: IPRewriter(keep 1 0, pass 2, CAPACITY 16);
// fwd: port forward {NAT_IP}:80 (any address, in fact) to {BACKEND}:8080; the inside's
// own packets go to device 3 unchanged
fwd :: IPRewriter(pattern - - {BACKEND} 8080 0 1, nochange 3, CAPACITY 16);
rr :: RoundRobinIPMapper(- - 10.0.1.1 80 0 1, - - 10.0.1.2 80 0 1, - 3000-3009 10.0.1.3 8080 0 1);
lb :: IPRewriter(rr, drop, CAPACITY 16);
IPRewriterPatterns(to_world {WORLD_IP} 5000-5009 - -);
named :: IPRewriter(pattern to_world 1 0, drop, CAPACITY 16);
tr :: TCPRewriter(pattern {NAT_IP} 1024-65535 - - 1 0, drop, CAPACITY 16);
ur :: UDPRewriter(pattern {NAT_IP} 1024-65535 - - 1 0, drop, CAPACITY 16, UDP_TIMEOUT 10);
full :: IPRewriter(pattern {FULL_IP} 2000-2999 - - 1 0, drop, CAPACITY 4);

inside :: Classifier(11/00, 11/01, 11/02, 11/03, 11/04, 11/05, 11/06, 11/07, 11/08, -);
outside :: Classifier(11/00, 11/01, 11/02, 11/03, 11/04, 11/05, 11/06, 11/07, 11/08, -);
FromDevice(0) -> MarkIPHeader(14) -> inside;
FromDevice(1) -> MarkIPHeader(14) -> outside;
inside[0] -> [0] rw;     outside[0] -> [1] rw;
inside[1] -> [0] ping;   outside[1] -> [1] ping;
inside[2] -> [0] sp;     outside[2] -> [1] sp;
outside[3] -> [0] fwd;   inside[3] -> [1] fwd;
outside[4] -> [0] lb;    inside[4] -> [1] lb;
inside[5] -> [0] named;  outside[5] -> [1] named;
inside[6] -> [0] tr;     outside[6] -> [1] tr;
inside[7] -> [0] ur;     outside[7] -> [1] ur;
inside[8] -> [0] full;   outside[8] -> [1] full;
inside[9] -> Discard;    outside[9] -> Discard;

rw[0] -> ToDevice(0);    rw[1] -> ToDevice(1);
ping[0] -> ToDevice(0);  ping[1] -> ToDevice(1);
sp[0] -> ToDevice(0);    sp[1] -> ToDevice(1);    sp[2] -> ToDevice(2);
fwd[0] -> ToDevice(0);   fwd[1] -> ToDevice(1);   fwd[2] -> Discard;   fwd[3] -> ToDevice(3);
lb[0] -> ToDevice(0);    lb[1] -> ToDevice(1);
named[0] -> ToDevice(0); named[1] -> ToDevice(1);
tr[0] -> ToDevice(0);    tr[1] -> ToDevice(1);
ur[0] -> ToDevice(0);    ur[1] -> ToDevice(1);
full[0] -> ToDevice(0);  full[1] -> ToDevice(1);
"""

# compiled in the background while earlier tests run (tests/conftest.py)
# kc: a pattern (source NAT) and a keep input on one table
KEEP_CLASH = f"""
kc :: IPRewriter(pattern {NAT_IP} 1024-1024 - - 1 0, keep 1 0, CAPACITY 16);
FromDevice(0) -> MarkIPHeader(14) -> [0] kc [0] -> ToDevice(0);
FromDevice(1) -> MarkIPHeader(14) -> [1] kc [1] -> ToDevice(1);
"""
# Two big tables (prefetched ahead, tables over 512 KB) on one path, with different
# sizes: b's prefetch runs last and leaves its home slot as the hint in the packets,
# which a's pass must not trust (same key hash, other mask).
WARMED = """
a :: IPRewriter(pattern 192.0.2.1 1024-65535 - - 0 1, drop, CAPACITY 4096);
b :: IPRewriter(pattern 192.0.2.2 1024-65535 - - 0 1, drop, CAPACITY 8192);
FromDevice(0) -> MarkIPHeader(14) -> [0] a [0] -> [0] b [0] -> ToDevice(1);
FromDevice(1) -> MarkIPHeader(14) -> [1] b [1] -> ToDevice(3);
FromDevice(3) -> MarkIPHeader(14) -> [1] a [1] -> ToDevice(0);
FromDevice(2) -> MarkIPHeader(14) -> [0] b;
"""
PREBUILD = [(CONFIG, "both"), (KEEP_CLASH, "host"), (WARMED, "host")]


# -- packets ------------------------------------------------------------------------------


def eth(via: int) -> Ether:
    return Ether(src=f"02:00:00:00:00:{via:02x}", dst=ROUTER_MAC)


def tcp(src, dst, sport, dport, via=RW, flags="A", payload=b"some data", **ip) -> bytes:
    return bytes(eth(via) / IP(src=src, dst=dst, **ip)
                 / TCP(sport=sport, dport=dport, flags=flags, seq=1000, ack=2000)
                 / Raw(payload))


def udp(src, dst, sport, dport, via=RW, payload=b"a datagram", chksum=None, **ip) -> bytes:
    layer = UDP(sport=sport, dport=dport) if chksum is None else \
        UDP(sport=sport, dport=dport, chksum=chksum)
    return bytes(eth(via) / IP(src=src, dst=dst, **ip) / layer / Raw(payload))


def echo(src, dst, ident, seq=1, via=PING, reply=False, payload=b"ping payload") -> bytes:
    return bytes(eth(via) / IP(src=src, dst=dst)
                 / ICMP(type=0 if reply else 8, id=ident, seq=seq) / Raw(payload))


def rewritten(frame: bytes, src=None, dst=None, sport=None, dport=None, ident=None) -> bytes:
    """`frame` with the given fields set, its checksums computed again by scapy (a UDP
    checksum of 0, meaning none, stays 0)."""
    p = Ether(frame)
    ip = p[IP]
    if src is not None:
        ip.src = src
    if dst is not None:
        ip.dst = dst
    del ip.chksum
    l4 = ip.payload
    if isinstance(l4, (TCP, UDP)):
        if sport is not None:
            l4.sport = sport
        if dport is not None:
            l4.dport = dport
        if not (isinstance(l4, UDP) and l4.chksum == 0):
            del l4.chksum
    elif isinstance(l4, ICMP):
        if ident is not None:
            l4.id = ident
        del l4.chksum
    return bytes(p)


def checksums_ok(frame: bytes) -> bool:
    """The IP header and TCP/UDP/ICMP checksums of an Ethernet/IPv4 frame, by RFC 1071."""
    ip = frame[14:]
    hlen = (ip[0] & 0xF) * 4
    total = struct.unpack(">H", ip[2:4])[0]
    if ones_sum(ip[:hlen]) != 0xFFFF:
        return False
    proto, l4 = ip[9], ip[hlen:total]
    if proto == 1:
        return ones_sum(l4) == 0xFFFF
    if proto == 17 and l4[6:8] == b"\0\0":
        return True
    pseudo = ip[12:20] + struct.pack(">BBH", 0, proto, len(l4))
    return ones_sum(pseudo + l4) == 0xFFFF


def run(nf, frames, port, now_ns=None) -> dict:
    """{output device: [frame bytes]} as the target sent them."""
    nf.send(frames, port, now_ns=now_ns)
    return {k: v.to_list() for k, v in nf.last_result.outputs.items() if len(v)}


def drops_of(nf) -> dict:
    return dict(nf.last_result.drops)


def counts(nf, element, *names) -> dict:
    return {name: int(nf.read(f"{element}.{name}")) for name in names}


# -- source NAT ---------------------------------------------------------------------------


def test_tcp_source_nat_and_replies(nf_factory):
    nf = nf_factory(CONFIG)
    syn = tcp("10.0.0.5", SERVER, 40000, 80, flags="S")
    out = run(nf, [syn], INSIDE)
    assert out == {OUTSIDE: [rewritten(syn, src=NAT_IP, sport=1024)]}
    assert checksums_ok(out[OUTSIDE][0])
    # the flow's later packets take the same mapping
    data = tcp("10.0.0.5", SERVER, 40000, 80, payload=b"GET / HTTP/1.0\r\n\r\n")
    assert run(nf, [data], INSIDE) == {OUTSIDE: [rewritten(data, src=NAT_IP, sport=1024)]}
    # replies are rewritten back to the inside host
    synack = tcp(SERVER, NAT_IP, 80, 1024, flags="SA", payload=b"")
    reply = tcp(SERVER, NAT_IP, 80, 1024, payload=b"HTTP/1.0 200 OK\r\n")
    out = run(nf, [synack, reply], OUTSIDE)
    assert out == {INSIDE: [rewritten(synack, dst="10.0.0.5", dport=40000),
                            rewritten(reply, dst="10.0.0.5", dport=40000)]}
    assert all(checksums_ok(f) for f in out[INSIDE])
    assert counts(nf, "rw", "size", "created", "expired") == \
        {"size": 1, "created": 1, "expired": 0}


def test_udp_source_nat_and_replies(nf_factory):
    nf = nf_factory(CONFIG)
    query = udp("10.0.0.7", SERVER, 5353, 53, payload=b"\x12\x34 query")
    out = run(nf, [query], INSIDE)
    assert out == {OUTSIDE: [rewritten(query, src=NAT_IP, sport=1024)]}
    answer = udp(SERVER, NAT_IP, 53, 1024, payload=b"\x12\x34 answer!")
    out2 = run(nf, [answer], OUTSIDE)
    assert out2 == {INSIDE: [rewritten(answer, dst="10.0.0.7", dport=5353)]}
    assert checksums_ok(out[OUTSIDE][0]) and checksums_ok(out2[INSIDE][0])
    # IP options: the ports are found after the longer header
    opts = udp("10.0.0.8", SERVER, 5353, 53, options=[IPOption_NOP()] * 8)
    out = run(nf, [opts], INSIDE)
    assert out == {OUTSIDE: [rewritten(opts, src=NAT_IP, sport=1025)]}
    assert checksums_ok(out[OUTSIDE][0])


def test_udp_checksum_zero_stays_zero(nf_factory):
    nf = nf_factory(CONFIG)
    query = udp("10.0.0.7", SERVER, 5353, 53, chksum=0)
    out = run(nf, [query], INSIDE)
    assert out == {OUTSIDE: [rewritten(query, src=NAT_IP, sport=1024)]}
    assert Ether(out[OUTSIDE][0])[UDP].chksum == 0
    answer = udp(SERVER, NAT_IP, 53, 1024, chksum=0)
    out = run(nf, [answer], OUTSIDE)
    assert out == {INSIDE: [rewritten(answer, dst="10.0.0.7", dport=5353)]}
    assert Ether(out[INSIDE][0])[UDP].chksum == 0


# Inside hosts and ports chosen to reach the checksum arithmetic's corners: 10.0.184.1
# has the same one's-complement sum as 192.0.2.1 (0x0a00 + 0xb801 == 0xc000 + 0x0201),
# so an incremental update that skips "unchanged" sums must still write the address;
# 255.255.x and port 0xffff and 0 exercise the end-around carry.
CORNER_HOSTS = [("10.0.184.1", 1024), ("10.0.184.1", 1025), ("255.255.255.254", 65535),
                ("10.255.255.255", 1), ("0.0.0.1", 0), ("172.16.5.4", 40000)]


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_checksums_at_the_corners(nf_factory, proto):
    nf = nf_factory(CONFIG)
    make = tcp if proto == "tcp" else udp
    # each to its own server; the ports are handed out round robin, 1024 + k % 4
    servers = [f"203.0.113.{20 + k}" for k in range(len(CORNER_HOSTS))]
    sent = [make(h, s, p, 0xFFFF - k, via=RW) for k, ((h, p), s) in
            enumerate(zip(CORNER_HOSTS, servers))]
    out = run(nf, sent, INSIDE)
    assert out == {OUTSIDE: [rewritten(f, src=NAT_IP, sport=1024 + k % 4)
                             for k, f in enumerate(sent)]}
    assert all(checksums_ok(f) for f in out[OUTSIDE])
    replies = [make(s, NAT_IP, 0xFFFF - k, 1024 + k % 4, payload=bytes([k]) * (k + 1))
               for k, s in enumerate(servers)]
    out = run(nf, replies, OUTSIDE)
    assert out == {INSIDE: [rewritten(r, dst=h, dport=p)
                            for r, (h, p) in zip(replies, CORNER_HOSTS)]}
    assert all(checksums_ok(f) for f in out[INSIDE])


def test_first_fragment_is_rewritten_later_ones_are_not(nf_factory):
    nf = nf_factory(CONFIG)
    first = udp("10.0.0.5", SERVER, 4000, 53, payload=b"x" * 24, flags="MF", id=77)
    later = bytes(eth(RW) / IP(src="10.0.0.5", dst=SERVER, proto=17, id=77, frag=4)
                  / Raw(b"y" * 16))
    out = run(nf, [first, later], INSIDE)
    assert out == {OUTSIDE: [rewritten(first, src=NAT_IP, sport=1024)]}
    assert drops_of(nf) == {drops.NOT_REWRITABLE: 1}
    assert nf.read("rw.other_drops") == "1"


def test_other_protocols_are_not_rewritable(nf_factory):
    nf = nf_factory(CONFIG)
    gre = bytes(eth(RW) / IP(src="10.0.0.5", dst=SERVER, proto=47) / Raw(b"\0\0\x08\0" * 4))
    ping = echo("10.0.0.5", SERVER, 1, via=RW)        # IPRewriter maps TCP and UDP only
    out = run(nf, [gre, ping], INSIDE)
    assert out == {}
    assert drops_of(nf) == {drops.NOT_REWRITABLE: 2}
    assert counts(nf, "rw", "other_drops", "size", "created") == \
        {"other_drops": 2, "size": 0, "created": 0}


@pytest.mark.parametrize("name, ip_and_l4", [
    ("TCP header of 10 bytes", lambda: IP(src="10.0.0.5", dst=SERVER, proto=6)
        / Raw(bytes(TCP(sport=1000, dport=80))[:10])),
    ("TCP header of 19 bytes", lambda: IP(src="10.0.0.5", dst=SERVER, proto=6)
        / Raw(bytes(TCP(sport=1000, dport=80))[:19])),
    ("UDP header of 4 bytes", lambda: IP(src="10.0.0.5", dst=SERVER, proto=17)
        / Raw(bytes(UDP(sport=1000, dport=53))[:4])),
    ("UDP header of 7 bytes", lambda: IP(src="10.0.0.5", dst=SERVER, proto=17)
        / Raw(bytes(UDP(sport=1000, dport=53))[:7])),
    ("no L4 header", lambda: IP(src="10.0.0.5", dst=SERVER, proto=6)),
])
def test_truncated_l4_headers_are_dropped_and_counted(nf_factory, name, ip_and_l4):
    nf = nf_factory(CONFIG)
    short = bytes(eth(RW) / ip_and_l4())
    # and the same header cut by the frame's end while the IP length claims more
    cut = bytes(eth(RW) / IP(src="10.0.0.5", dst=SERVER, len=60, proto=ip_and_l4().proto)
                / Raw(bytes(ip_and_l4())[20:]))
    out = run(nf, [short, cut], INSIDE)
    assert out == {}
    assert drops_of(nf) == {drops.NOT_REWRITABLE: 2}
    assert counts(nf, "rw", "other_drops", "size") == {"other_drops": 2, "size": 0}
    # with Ethernet padding after a short datagram: the padding is not a header
    padded = bytes(eth(RW) / ip_and_l4()) + b"\0" * 40
    assert run(nf, [padded], INSIDE) == {}
    assert nf.read("rw.other_drops") == "3"


def test_cut_ip_header_is_dropped(nf_factory):
    nf = nf_factory(CONFIG)
    whole = tcp("10.0.0.5", SERVER, 1000, 80)
    frames = [whole[:14 + 12], whole[:14 + 19],
              bytes(eth(RW) / IP(src="10.0.0.5", dst=SERVER, ihl=15) / TCP())[:14 + 40]]
    out = run(nf, frames, INSIDE)
    assert out == {}
    assert sum(drops_of(nf).values()) == 3
    assert nf.read("rw.size") == "0"


def test_replies_with_no_mapping_are_dropped(nf_factory):
    nf = nf_factory(CONFIG)
    stray = [tcp(SERVER, NAT_IP, 80, 1024), udp(SERVER, NAT_IP, 53, 1025),
             tcp(SERVER, NAT_IP, 80, 5000, flags="S")]
    assert run(nf, stray, OUTSIDE) == {}
    assert drops_of(nf) == {drops.NO_MAPPING: 3}
    assert counts(nf, "rw", "no_mapping_drops", "size", "created") == \
        {"no_mapping_drops": 3, "size": 0, "created": 0}
    # once the flow exists, only its own replies get through
    run(nf, [tcp("10.0.0.5", SERVER, 40000, 80, flags="S")], INSIDE)
    good = tcp(SERVER, NAT_IP, 80, 1024)
    wrong = [tcp(SERVER, NAT_IP, 81, 1024), tcp(SERVER2, NAT_IP, 80, 1024),
             udp(SERVER, NAT_IP, 80, 1024), tcp(SERVER, NAT_IP, 80, 1025)]
    out = run(nf, wrong + [good], OUTSIDE)
    assert out == {INSIDE: [rewritten(good, dst="10.0.0.5", dport=40000)]}
    assert drops_of(nf) == {drops.NO_MAPPING: 4}
    assert nf.read("rw.no_mapping_drops") == "7"


def test_port_pool_exhaustion(nf_factory):
    """Four source ports: four flows to one server, the fifth dropped (no-port); the
    ports serve other destinations again, as the reply flow tells them apart."""
    nf = nf_factory(CONFIG)
    flows = [tcp(f"10.0.0.{10 + k}", SERVER, 40000 + k, 80, flags="S") for k in range(5)]
    out = run(nf, flows, INSIDE)
    assert out == {OUTSIDE: [rewritten(f, src=NAT_IP, sport=1024 + k)
                             for k, f in enumerate(flows[:4])]}
    assert drops_of(nf) == {drops.NO_PORT: 1}
    assert counts(nf, "rw", "port_drops", "size", "created") == \
        {"port_drops": 1, "size": 4, "created": 4}
    # another server, or another port of the same server: a fresh set of ports
    other = [tcp("10.0.0.14", SERVER2, 40004, 80, flags="S"),
             tcp("10.0.0.14", SERVER, 40004, 443, flags="S")]
    out = run(nf, other, INSIDE)
    assert out == {OUTSIDE: [rewritten(other[0], src=NAT_IP, sport=1024),
                             rewritten(other[1], src=NAT_IP, sport=1025)]}
    # the four flows still work both ways
    again = [tcp(f"10.0.0.{10 + k}", SERVER, 40000 + k, 80) for k in range(4)]
    assert run(nf, again, INSIDE) == {OUTSIDE: [rewritten(f, src=NAT_IP, sport=1024 + k)
                                                for k, f in enumerate(again)]}
    replies = [tcp(SERVER, NAT_IP, 80, 1024 + k) for k in range(4)]
    assert run(nf, replies, OUTSIDE) == {INSIDE: [
        rewritten(r, dst=f"10.0.0.{10 + k}", dport=40000 + k) for k, r in enumerate(replies)]}
    assert nf.read("rw.port_drops") == "1"
    assert nf.read("rw.size") == "6"


def test_table_full_new_flows_dropped_old_ones_work(nf_factory):
    """CAPACITY 4: four flows, then a flood of SYNs from new 5-tuples is dropped
    (table-full) while the first four keep working both ways."""
    nf = nf_factory(CONFIG)
    first = [tcp(f"10.0.0.{k + 1}", SERVER, 1000 + k, 80, via=FULL, flags="S") for k in range(4)]
    out = run(nf, first, INSIDE)
    assert out == {OUTSIDE: [rewritten(f, src=FULL_IP, sport=2000 + k)
                             for k, f in enumerate(first)]}
    assert drops_of(nf) == {}
    flood = [tcp(f"10.9.{k // 250}.{k % 250 + 1}", SERVER, 20000 + k, 80, via=FULL, flags="S")
             for k in range(200)]
    assert run(nf, flood, INSIDE) == {}
    assert drops_of(nf) == {drops.TABLE_FULL: 200}
    assert counts(nf, "full", "table_full_drops", "size", "created", "capacity") == \
        {"table_full_drops": 200, "size": 4, "created": 4, "capacity": 4}
    again = [tcp(f"10.0.0.{k + 1}", SERVER, 1000 + k, 80, via=FULL) for k in range(4)]
    assert run(nf, again, INSIDE) == {OUTSIDE: [rewritten(f, src=FULL_IP, sport=2000 + k)
                                                for k, f in enumerate(again)]}
    replies = [tcp(SERVER, FULL_IP, 80, 2000 + k, via=FULL) for k in range(4)]
    assert run(nf, replies, OUTSIDE) == {INSIDE: [
        rewritten(r, dst=f"10.0.0.{k + 1}", dport=1000 + k) for k, r in enumerate(replies)]}
    # a reply for a flow that was refused has nothing to map to
    assert run(nf, [tcp(SERVER, FULL_IP, 80, 2004, via=FULL)], OUTSIDE) == {}
    assert drops_of(nf) == {drops.NO_MAPPING: 1}


# -- the other input specs ----------------------------------------------------------------


def test_keep_maps_the_flow_unchanged(nf_factory):
    nf = nf_factory(CONFIG)
    out_flow = udp("10.0.0.5", SERVER, 5000, 53, via=SP)
    assert run(nf, [out_flow], INSIDE) == {OUTSIDE: [out_flow]}
    # the reply has a mapping: it leaves by the reply output (0), not the pass output
    back = udp(SERVER, "10.0.0.5", 53, 5000, via=SP)
    assert run(nf, [back], OUTSIDE) == {INSIDE: [back]}
    assert nf.read("sp.table") == \
        f"udp (10.0.0.5, 5000, {SERVER}, 53) => (10.0.0.5, 5000, {SERVER}, 53) [1]"
    assert counts(nf, "sp", "size", "created") == {"size": 1, "created": 1}


@pytest.mark.host_only("the same kernel code as [host]; one config fewer to build for the VM")
def test_keep_refuses_a_flow_whose_reply_is_another_mappings(nf_factory):
    """A kept flow equal to a mapping's rewritten tuple would put that mapping's reply
    key in the table twice: it is dropped (no-port) and the mapping keeps working."""
    nf = nf_factory(KEEP_CLASH)
    inside = udp("10.0.0.5", SERVER, 5000, 53)
    assert run(nf, [inside], INSIDE) == {OUTSIDE: [rewritten(inside, src=NAT_IP, sport=1024)]}
    clash = udp(NAT_IP, SERVER, 1024, 53)            # into the keep input
    assert run(nf, [clash], OUTSIDE) == {}
    assert drops_of(nf) == {drops.NO_PORT: 1}
    reply = udp(SERVER, NAT_IP, 53, 1024)
    assert run(nf, [reply], OUTSIDE) == {INSIDE: [rewritten(reply, dst="10.0.0.5", dport=5000)]}
    assert counts(nf, "kc", "size", "created", "port_drops") == \
        {"size": 1, "created": 1, "port_drops": 1}
    # a kept flow whose reply is free is mapped as before
    other = udp("198.51.100.7", SERVER, 4000, 53)
    assert run(nf, [other], OUTSIDE) == {OUTSIDE: [other]}
    assert nf.read("kc.size") == "2"


def test_pass_sends_unmapped_packets_unchanged_and_maps_nothing(nf_factory):
    nf = nf_factory(CONFIG)
    unknown = [tcp(SERVER, "10.0.0.5", 80, 5000, via=SP, flags="S"),
               udp(SERVER2, "10.0.0.6", 53, 5353, via=SP),
               bytes(eth(SP) / IP(src=SERVER, dst="10.0.0.5", proto=47) / Raw(b"gre!")),
               bytes(eth(SP) / IP(src=SERVER, dst="10.0.0.5", proto=6) / Raw(b"cut"))]
    assert run(nf, unknown, OUTSIDE) == {2: unknown}
    assert drops_of(nf) == {}
    assert counts(nf, "sp", "size", "created", "other_drops") == \
        {"size": 0, "created": 0, "other_drops": 0}
    assert nf.read("sp.table") == ""


def test_nochange_and_port_forward(nf_factory):
    """fwd: `pattern - - BACKEND 8080 0 1` from outside (DNAT), `nochange 3` inside."""
    nf = nf_factory(CONFIG)
    req = tcp(CLIENT, NAT_IP, 5555, 80, via=FWD, flags="S")
    out = run(nf, [req], OUTSIDE)
    assert out == {INSIDE: [rewritten(req, dst=BACKEND, dport=8080)]}
    assert checksums_ok(out[INSIDE][0])
    resp = tcp(BACKEND, CLIENT, 8080, 5555, via=FWD, flags="SA")
    out = run(nf, [resp], INSIDE)
    assert out == {OUTSIDE: [rewritten(resp, src=NAT_IP, sport=80)]}
    assert checksums_ok(out[OUTSIDE][0])
    # the inside's own traffic, with no mapping, goes to output 3 as it is
    own = [udp(BACKEND, SERVER, 123, 123, via=FWD), tcp(BACKEND, CLIENT, 8080, 5556, via=FWD)]
    assert run(nf, own, INSIDE) == {3: own}
    assert nf.read("fwd.table") == \
        f"tcp ({CLIENT}, 5555, {NAT_IP}, 80) => ({CLIENT}, 5555, {BACKEND}, 8080) [0]"


def test_pattern_without_port_refuses_a_taken_reply_flow(nf_factory):
    """DNAT keeps the client's port: two clients whose rewritten flows would share one
    reply flow cannot both be mapped (no-port), as Click refuses them."""
    nf = nf_factory(CONFIG)
    a = tcp(CLIENT, NAT_IP, 5555, 80, via=FWD, flags="S")
    b = tcp(CLIENT, "192.0.2.99", 5555, 80, via=FWD, flags="S")   # same client, other VIP
    out = run(nf, [a, b], OUTSIDE)
    assert out == {INSIDE: [rewritten(a, dst=BACKEND, dport=8080)]}
    assert drops_of(nf) == {drops.NO_PORT: 1}
    assert nf.read("fwd.port_drops") == "1"


def test_round_robin_mapper_spreads_new_flows_and_each_sticks(nf_factory):
    nf = nf_factory(CONFIG)
    backends = [("10.0.1.1", 80), ("10.0.1.2", 80), ("10.0.1.3", 8080)]
    flows = [tcp(f"198.51.100.{30 + k}", NAT_IP, 6000 + k, 80, via=LB, flags="S")
             for k in range(7)]
    out = run(nf, flows, OUTSIDE)

    def to_backend(k, f):
        addr, port = backends[k % 3]
        # the third pattern also picks a source port, round robin from 3000
        sport = 3000 + k // 3 if k % 3 == 2 else None
        return rewritten(f, dst=addr, dport=port, sport=sport)

    assert out == {INSIDE: [to_backend(k, f) for k, f in enumerate(flows)]}
    # each flow sticks to its backend, whatever order its packets come in
    later = [tcp(f"198.51.100.{30 + k}", NAT_IP, 6000 + k, 80, via=LB, payload=bytes([k]) * 3)
             for k in reversed(range(7))]
    out = run(nf, later, OUTSIDE)
    assert out == {INSIDE: [to_backend(6 - j, f) for j, f in enumerate(later)]}
    # replies from the backends go back as from the address the client asked
    replies = []
    for k in range(7):
        addr, port = backends[k % 3]
        dport = 3000 + k // 3 if k % 3 == 2 else 6000 + k
        replies.append(tcp(addr, f"198.51.100.{30 + k}", port, dport, via=LB, flags="SA"))
    out = run(nf, replies, INSIDE)
    assert out == {OUTSIDE: [rewritten(r, src=NAT_IP, sport=80, dport=6000 + k)
                             for k, r in enumerate(replies)]}
    assert counts(nf, "lb", "size", "created") == {"size": 7, "created": 7}


def test_named_pattern(nf_factory):
    nf = nf_factory(CONFIG)
    flows = [udp("10.0.0.5", SERVER, 7777, 53, via=NAMED), udp("10.0.0.6", SERVER, 7777, 53,
                                                               via=NAMED)]
    out = run(nf, flows, INSIDE)
    assert out == {OUTSIDE: [rewritten(flows[0], src=WORLD_IP, sport=5000),
                             rewritten(flows[1], src=WORLD_IP, sport=5001)]}
    back = udp(SERVER, WORLD_IP, 53, 5001, via=NAMED)
    assert run(nf, [back], OUTSIDE) == {INSIDE: [rewritten(back, dst="10.0.0.6", dport=7777)]}


def test_tcp_rewriter_rewrites_tcp_only(nf_factory):
    nf = nf_factory(CONFIG)
    t = tcp("10.0.0.5", SERVER, 1000, 80, via=TR, flags="S")
    u = udp("10.0.0.5", SERVER, 1000, 53, via=TR)
    out = run(nf, [t, u], INSIDE)
    assert out == {OUTSIDE: [rewritten(t, src=NAT_IP, sport=1024)]}
    assert drops_of(nf) == {drops.NOT_REWRITABLE: 1}
    assert nf.read("tr.other_drops") == "1"


def test_udp_rewriter_rewrites_udp_and_tcp(nf_factory):
    nf = nf_factory(CONFIG)
    u = udp("10.0.0.5", SERVER, 1000, 53, via=UR)
    t = tcp("10.0.0.5", SERVER, 1000, 80, via=UR, flags="S")
    g = bytes(eth(UR) / IP(src="10.0.0.5", dst=SERVER, proto=47) / Raw(b"gre!"))
    out = run(nf, [u, t, g], INSIDE)
    assert out == {OUTSIDE: [rewritten(u, src=NAT_IP, sport=1024),
                             rewritten(t, src=NAT_IP, sport=1025)]}
    assert drops_of(nf) == {drops.NOT_REWRITABLE: 1}


# -- ICMP echo ----------------------------------------------------------------------------


def test_ping_rewriter_maps_echo_identifiers(nf_factory):
    nf = nf_factory(CONFIG)
    requests = [echo("10.0.0.5", SERVER, 0x1234, seq=1),
                echo("10.0.0.6", SERVER, 0x1234, seq=1),      # same id, other host
                echo("10.0.0.5", SERVER, 0x1234, seq=2)]      # the first one's mapping
    out = run(nf, requests, INSIDE)
    assert out == {OUTSIDE: [rewritten(requests[0], src=NAT_IP, ident=7000),
                             rewritten(requests[1], src=NAT_IP, ident=7001),
                             rewritten(requests[2], src=NAT_IP, ident=7000)]}
    assert all(checksums_ok(f) for f in out[OUTSIDE])
    replies = [echo(SERVER, NAT_IP, 7001, seq=1, reply=True),
               echo(SERVER, NAT_IP, 7000, seq=2, reply=True, payload=b"odd length")]
    out = run(nf, replies, OUTSIDE)
    assert out == {INSIDE: [rewritten(replies[0], dst="10.0.0.6", ident=0x1234),
                            rewritten(replies[1], dst="10.0.0.5", ident=0x1234)]}
    assert all(checksums_ok(f) for f in out[INSIDE])
    assert nf.read("ping.size") == "2"
    assert nf.read("ping.table") == "\n".join(sorted([
        f"icmp (10.0.0.5, 4660, {SERVER}, 0) => ({NAT_IP}, 7000, {SERVER}, 0) [1]",
        f"icmp (10.0.0.6, 4660, {SERVER}, 0) => ({NAT_IP}, 7001, {SERVER}, 0) [1]"]))


def test_ping_rewriter_drops_the_rest(nf_factory):
    nf = nf_factory(CONFIG)
    others = [tcp("10.0.0.5", SERVER, 1000, 80, via=PING), udp("10.0.0.5", SERVER, 1, 2, via=PING),
              bytes(eth(PING) / IP(src="10.0.0.5", dst=SERVER) / ICMP(type=13))]  # timestamp
    assert run(nf, others, INSIDE) == {}
    assert drops_of(nf) == {drops.NOT_REWRITABLE: 3}
    # an echo reply, or request, from outside with no mapping
    stray = [echo(SERVER, NAT_IP, 7000, reply=True), echo(SERVER, NAT_IP, 7000)]
    assert run(nf, stray, OUTSIDE) == {}
    assert drops_of(nf) == {drops.NO_MAPPING: 2}
    assert counts(nf, "ping", "other_drops", "no_mapping_drops", "size") == \
        {"other_drops": 3, "no_mapping_drops": 2, "size": 0}


def test_ping_identifier_pool_exhaustion(nf_factory):
    nf = nf_factory(CONFIG)
    requests = [echo(f"10.0.0.{k + 1}", SERVER, 99) for k in range(5)]
    out = run(nf, requests, INSIDE)
    assert out == {OUTSIDE: [rewritten(r, src=NAT_IP, ident=7000 + k)
                             for k, r in enumerate(requests[:4])]}
    assert drops_of(nf) == {drops.NO_PORT: 1}
    assert nf.read("ping.port_drops") == "1"


# -- ICMP errors ----------------------------------------------------------------------------


def icmp_error(outer_src, outer_dst, quoted: bytes, via, type=11, code=0, quote_len=None,
               **icmp) -> bytes:
    """An ICMP error from `outer_src` quoting the IP datagram of Ethernet frame `quoted`
    (its header and 8 bytes, as RFC 792 routers quote, or `quote_len` bytes)."""
    ip = Ether(quoted)[IP]
    n = ip.ihl * 4 + 8 if quote_len is None else quote_len
    return bytes(eth(via) / IP(src=outer_src, dst=outer_dst, ttl=250, id=4321)
                 / ICMP(type=type, code=code, **icmp) / Raw(bytes(quoted[14:])[:n]))


def translated(error: bytes, original: bytes, natted: bytes, outer_src=None,
               outer_dst=None) -> bytes:
    """The error as it must reach the host that sent `original`: the quote is `original`
    again (its IP header and ports; the quoted L4 checksum stays as the NATed packet
    had it, IPRewriter's manual), the outer header to that host; checksums by scapy."""
    e = Ether(error)
    quote = bytearray(bytes(e[ICMP].payload))
    orig_ip = bytes(original[14:])
    ihl = (orig_ip[0] & 0xF) * 4
    quote[:ihl] = orig_ip[:ihl]                         # the IP header
    if orig_ip[9] == 1:
        quote[ihl + 4:ihl + 6] = orig_ip[ihl + 4:ihl + 6]   # an echo's identifier
    else:
        quote[ihl:ihl + 4] = orig_ip[ihl:ihl + 4]           # the ports
    e[ICMP].remove_payload()
    e[ICMP].add_payload(Raw(bytes(quote)))
    if outer_src is not None:
        e[IP].src = outer_src
    if outer_dst is not None:
        e[IP].dst = outer_dst
    del e[IP].chksum
    del e[ICMP].chksum
    return bytes(e)


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_icmp_errors_about_a_nated_flow_reach_the_inside_host(nf_factory, proto):
    nf = nf_factory(CONFIG)
    make = tcp if proto == "tcp" else udp
    original = make("10.0.0.5", SERVER, 40000, 33434, ttl=3)
    natted = run(nf, [original], INSIDE)[OUTSIDE][0]
    assert natted == rewritten(original, src=NAT_IP, sport=1024)
    errors = [
        icmp_error(ROUTER, NAT_IP, natted, RW, type=11, code=0),           # time exceeded
        icmp_error(SERVER, NAT_IP, natted, RW, type=3, code=3),            # port unreachable
        icmp_error(ROUTER, NAT_IP, natted, RW, type=3, code=4, nexthopmtu=1400),
        icmp_error(ROUTER, NAT_IP, natted, RW, type=11, quote_len=len(natted) - 14),  # whole
    ]
    out = run(nf, errors, OUTSIDE)
    want = [translated(e, original, natted, outer_dst="10.0.0.5") for e in errors]
    assert out == {INSIDE: want}
    for f in out[INSIDE]:
        p = Ether(f)
        assert checksums_ok(f)
        assert ones_sum(bytes(p[ICMP].payload)[:20]) == 0xFFFF     # the quote's IP header
        quoted = IP(bytes(p[ICMP].payload))
        assert (quoted.src, quoted.dst) == ("10.0.0.5", SERVER)
        assert struct.unpack(">HH", bytes(p[ICMP].payload)[20:24]) == (40000, 33434)
    assert counts(nf, "rw", "icmp_translated", "bad_quote_drops") == \
        {"icmp_translated": 4, "bad_quote_drops": 0}


def test_icmp_error_from_a_forwarded_backend_comes_from_the_public_address(nf_factory):
    nf = nf_factory(CONFIG)
    original = udp(CLIENT, NAT_IP, 5555, 80, via=FWD)
    natted = run(nf, [original], OUTSIDE)[INSIDE][0]
    assert natted == rewritten(original, dst=BACKEND, dport=8080)
    # the backend itself says port unreachable: the client must hear it from NAT_IP
    unreach = icmp_error(BACKEND, CLIENT, natted, FWD, type=3, code=3)
    # a router between us and the backend: its own address stays
    expired = icmp_error("10.0.1.254", CLIENT, natted, FWD, type=11)
    out = run(nf, [unreach, expired], INSIDE)
    assert out == {OUTSIDE: [translated(unreach, original, natted, outer_src=NAT_IP),
                             translated(expired, original, natted)]}
    assert all(checksums_ok(f) for f in out[OUTSIDE])


def test_icmp_error_about_a_nated_ping(nf_factory):
    nf = nf_factory(CONFIG)
    original = echo("10.0.0.5", SERVER, 0x4242)
    natted = run(nf, [original], INSIDE)[OUTSIDE][0]
    error = icmp_error(ROUTER, NAT_IP, natted, PING, type=11)
    out = run(nf, [error], OUTSIDE)
    assert out == {INSIDE: [translated(error, original, natted, outer_dst="10.0.0.5")]}
    assert checksums_ok(out[INSIDE][0])
    # IPRewriter does not map echoes, so it refuses errors quoting them
    assert run(nf, [icmp_error(ROUTER, NAT_IP, natted, RW, type=11)], OUTSIDE) == {}
    assert drops_of(nf) == {drops.BAD_QUOTE: 1}


def test_icmp_errors_quoting_unknown_flows_or_cut_quotes_are_dropped(nf_factory):
    nf = nf_factory(CONFIG)
    original = udp("10.0.0.5", SERVER, 40000, 53)
    natted = run(nf, [original], INSIDE)[OUTSIDE][0]
    unknown = rewritten(natted, sport=1025)               # a port never handed out
    other_server = rewritten(natted, dst=SERVER2)
    bad = [
        icmp_error(ROUTER, NAT_IP, unknown, RW),
        icmp_error(ROUTER, NAT_IP, other_server, RW),
        icmp_error(ROUTER, NAT_IP, natted, RW, quote_len=19),    # IP header cut
        icmp_error(ROUTER, NAT_IP, natted, RW, quote_len=23),    # ports cut
        icmp_error(ROUTER, NAT_IP, natted, RW, quote_len=0),     # nothing quoted
        bytes(eth(RW) / IP(src=ROUTER, dst=NAT_IP) / ICMP(type=3, code=1)
              / Raw(b"\x47" + bytes(natted[15:14 + 28]))),     # quote's IHL past its end
    ]
    assert run(nf, bad, OUTSIDE) == {}
    assert drops_of(nf) == {drops.BAD_QUOTE: len(bad)}
    assert counts(nf, "rw", "bad_quote_drops", "icmp_translated") == \
        {"bad_quote_drops": len(bad), "icmp_translated": 0}
    # the cut error header itself (under 8 bytes of ICMP) is not an error to translate
    cut = bytes(eth(RW) / IP(src=ROUTER, dst=NAT_IP, proto=1) / Raw(b"\x0b\x00\x00"))
    assert run(nf, [cut], OUTSIDE) == {}
    assert sum(drops_of(nf).values()) == 1


# -- handlers -----------------------------------------------------------------------------


def test_table_handler_format(nf_factory):
    nf = nf_factory(CONFIG)
    run(nf, [tcp("10.0.0.5", SERVER, 40000, 80, flags="S"),
             udp("10.0.0.6", SERVER2, 5353, 53),
             tcp("10.0.0.7", SERVER, 40001, 80, flags="S")], INSIDE)
    run(nf, [tcp("10.0.0.7", SERVER, 40001, 80, flags="FA")], INSIDE)
    lines = [
        f"tcp (10.0.0.5, 40000, {SERVER}, 80) => ({NAT_IP}, 1024, {SERVER}, 80) [1]",
        f"udp (10.0.0.6, 5353, {SERVER2}, 53) => ({NAT_IP}, 1025, {SERVER2}, 53) [1]",
        f"tcp (10.0.0.7, 40001, {SERVER}, 80) => ({NAT_IP}, 1026, {SERVER}, 80) [1] done",
    ]
    assert nf.read("rw.table") == "\n".join(sorted(lines))
    assert nf.read("rw.mappings") == nf.read("rw.table")
    assert nf.read("rw.tcp_mappings") == lines[0]
    assert nf.read("rw.udp_mappings") == lines[1]
    assert nf.read("rw.tcp_done_mappings") == lines[2]
    assert counts(nf, "rw", "size", "created", "expired", "capacity") == \
        {"size": 3, "created": 3, "expired": 0, "capacity": 16}
    for line in nf.read("rw.table").splitlines():
        assert re.fullmatch(r"(tcp|udp) \([\d.]+, \d+, [\d.]+, \d+\) => "
                            r"\([\d.]+, \d+, [\d.]+, \d+\) \[\d+\]( done)?", line)


def test_rst_marks_done_too_and_the_reply_direction_counts(nf_factory):
    nf = nf_factory(CONFIG)
    run(nf, [tcp("10.0.0.5", SERVER, 40000, 80, flags="S")], INSIDE)
    out = run(nf, [tcp(SERVER, NAT_IP, 80, 1024, flags="R", payload=b"")], OUTSIDE)
    assert len(out[INSIDE]) == 1
    assert nf.read("rw.tcp_done_mappings") == \
        f"tcp (10.0.0.5, 40000, {SERVER}, 80) => ({NAT_IP}, 1024, {SERVER}, 80) [1] done"


def test_state_is_fresh_per_test(nf_factory):
    nf = nf_factory(CONFIG)
    assert counts(nf, "rw", "size", "created", "expired", "table_full_drops", "port_drops",
                  "no_mapping_drops", "bad_quote_drops", "icmp_translated", "other_drops") \
        == dict.fromkeys(["size", "created", "expired", "table_full_drops", "port_drops",
                          "no_mapping_drops", "bad_quote_drops", "icmp_translated",
                          "other_drops"], 0)
    assert nf.read("rw.table") == ""


# -- timeouts (the host's clock) -------------------------------------------------------------

HOST_CLOCK = "sets the pipeline's clock with now_ns; the guest reads its own kvmclock"
T0 = 1000 * SECOND


@pytest.mark.host_only(HOST_CLOCK)
def test_udp_mapping_expires_and_its_slot_is_reused(nf_factory):
    nf = nf_factory(CONFIG)
    servers = [f"203.0.113.{100 + k}" for k in range(16)]
    flows = [udp("10.0.0.5", s, 5000, 53) for s in servers]
    out = run(nf, flows, INSIDE, T0)
    assert len(out[OUTSIDE]) == 16
    late = udp("10.0.0.9", SERVER, 6000, 53)
    assert run(nf, [late], INSIDE, T0 + 5 * SECOND) == {}            # table full
    assert drops_of(nf) == {drops.TABLE_FULL: 1}
    # a reply within UDP_TIMEOUT keeps its flow alive
    # round robin over the four ports: flow k has port 1024 + k % 4
    keep = udp(servers[0], NAT_IP, 53, 1024)
    assert run(nf, [keep], OUTSIDE, T0 + 9 * SECOND) == \
        {INSIDE: [rewritten(keep, dst="10.0.0.5", dport=5000)]}
    # past UDP_TIMEOUT (10 s) the other fifteen are gone: the new flow takes a slot
    out = run(nf, [late], INSIDE, T0 + 12 * SECOND)
    assert out == {OUTSIDE: [rewritten(late, src=NAT_IP, sport=1024)]}
    stale = [udp(s, NAT_IP, 53, 1024 + k % 4) for k, s in enumerate(servers) if k]
    assert run(nf, stale, OUTSIDE, T0 + 12 * SECOND) == {}
    assert drops_of(nf) == {drops.NO_MAPPING: 15}
    assert run(nf, [keep], OUTSIDE, T0 + 12 * SECOND) == \
        {INSIDE: [rewritten(keep, dst="10.0.0.5", dport=5000)]}
    assert counts(nf, "rw", "size", "created", "expired", "table_full_drops") == \
        {"size": 2, "created": 17, "expired": 15, "table_full_drops": 1}
    # and the table fills again to CAPACITY, no more
    more = [udp("10.0.0.6", f"203.0.114.{k}", 5000, 53) for k in range(15)]
    out = run(nf, more, INSIDE, T0 + 13 * SECOND)
    assert len(out[OUTSIDE]) == 14 and drops_of(nf) == {drops.TABLE_FULL: 1}
    assert nf.read("rw.size") == "16"


@pytest.mark.host_only(HOST_CLOCK)
def test_udp_mapping_refreshed_by_traffic_lives_on(nf_factory):
    nf = nf_factory(CONFIG)
    f = udp("10.0.0.5", SERVER, 5000, 53)
    for k in range(6):   # a packet every 8 s, 40 s in all, UDP_TIMEOUT 10 s
        out = run(nf, [f], INSIDE, T0 + 8 * k * SECOND)
        assert out == {OUTSIDE: [rewritten(f, src=NAT_IP, sport=1024)]}
    assert counts(nf, "rw", "created", "expired") == {"created": 1, "expired": 0}
    # then silence: the reply 11 s later finds nothing
    assert run(nf, [udp(SERVER, NAT_IP, 53, 1024)], OUTSIDE, T0 + 51 * SECOND) == {}
    assert drops_of(nf) == {drops.NO_MAPPING: 1}
    assert counts(nf, "rw", "size", "expired") == {"size": 0, "expired": 1}


@pytest.mark.host_only(HOST_CLOCK)
def test_mapping_goes_between_one_and_one_sixteenth_timeouts_after_its_last_packet(nf_factory):
    """Hits write a slot's time only when it is over 1/16 of the timeout old (a clean
    cache line), so a mapping lives its timeout and at most a sixteenth more."""
    nf = nf_factory(CONFIG)   # UDP_TIMEOUT 10 s: the slack is 0.625 s
    a = udp("10.0.0.5", SERVER, 5000, 53)
    b = udp("10.0.0.6", SERVER, 5000, 53)
    assert len(run(nf, [a, b], INSIDE, T0)[OUTSIDE]) == 2      # ports 1024 and 1025
    reply_a = udp(SERVER, NAT_IP, 53, 1024)
    reply_b = udp(SERVER, NAT_IP, 53, 1025)
    # exactly the timeout after a's first packet: never sooner
    assert run(nf, [reply_a], OUTSIDE, T0 + 10 * SECOND) == \
        {INSIDE: [rewritten(reply_a, dst="10.0.0.5", dport=5000)]}
    # b: past 10 5/8 s it is gone
    assert run(nf, [reply_b], OUTSIDE, T0 + 10 * SECOND + 700_000_000) == {}
    assert drops_of(nf) == {drops.NO_MAPPING: 1}


@pytest.mark.host_only(HOST_CLOCK)
def test_tcp_lives_past_udp_timeout_until_fin(nf_factory):
    nf = nf_factory(CONFIG)
    run(nf, [tcp("10.0.0.5", SERVER, 40000, 80, flags="S")], INSIDE, T0)
    run(nf, [tcp(SERVER, NAT_IP, 80, 1024, flags="SA")], OUTSIDE, T0)
    # established: an hour of silence is nothing to TCP_TIMEOUT (24 h)
    data = tcp("10.0.0.5", SERVER, 40000, 80)
    t = T0 + 3600 * SECOND
    assert run(nf, [data], INSIDE, t) == {OUTSIDE: [rewritten(data, src=NAT_IP, sport=1024)]}
    # a FIN: now TCP_DONE_TIMEOUT (4 s)
    fin = tcp("10.0.0.5", SERVER, 40000, 80, flags="FA")
    assert len(run(nf, [fin], INSIDE, t)[OUTSIDE]) == 1
    finack = tcp(SERVER, NAT_IP, 80, 1024, flags="FA")
    assert run(nf, [finack], OUTSIDE, t + 3 * SECOND) == \
        {INSIDE: [rewritten(finack, dst="10.0.0.5", dport=40000)]}
    ack = tcp("10.0.0.5", SERVER, 40000, 80, flags="A")
    assert len(run(nf, [ack], INSIDE, t + 6 * SECOND)[OUTSIDE]) == 1  # 3 s after the last
    assert run(nf, [finack], OUTSIDE, t + 11 * SECOND) == {}          # 5 s: gone
    assert drops_of(nf) == {drops.NO_MAPPING: 1}
    assert counts(nf, "rw", "size", "expired") == {"size": 0, "expired": 1}
    # the port is free again: a new flow to the same server takes it
    syn = tcp("10.0.0.8", SERVER, 40008, 80, flags="S")
    out = run(nf, [syn], INSIDE, t + 11 * SECOND)
    assert out == {OUTSIDE: [rewritten(syn, src=NAT_IP, sport=1025)]}   # round robin on


@pytest.mark.host_only(HOST_CLOCK)
def test_rst_then_done_timeout(nf_factory):
    nf = nf_factory(CONFIG)
    run(nf, [tcp("10.0.0.5", SERVER, 40000, 80, flags="S")], INSIDE, T0)
    run(nf, [tcp(SERVER, NAT_IP, 80, 1024, flags="R", payload=b"")], OUTSIDE, T0)
    back = tcp(SERVER, NAT_IP, 80, 1024)
    assert len(run(nf, [back], OUTSIDE, T0 + 3 * SECOND)[INSIDE]) == 1
    assert run(nf, [back], OUTSIDE, T0 + 8 * SECOND) == {}
    assert drops_of(nf) == {drops.NO_MAPPING: 1}


@pytest.mark.host_only(HOST_CLOCK)
def test_port_freed_by_timeout_is_handed_out_again(nf_factory):
    nf = nf_factory(CONFIG)
    flows = [udp(f"10.0.0.{10 + k}", SERVER, 5000, 53) for k in range(4)]
    run(nf, flows, INSIDE, T0)
    fifth = udp("10.0.0.20", SERVER, 5000, 53)
    assert run(nf, [fifth], INSIDE, T0 + SECOND) == {}
    assert drops_of(nf) == {drops.NO_PORT: 1}
    out = run(nf, [fifth], INSIDE, T0 + 20 * SECOND)
    assert out == {OUTSIDE: [rewritten(fifth, src=NAT_IP, sport=1024)]}


@pytest.mark.host_only(HOST_CLOCK)
def test_udp_rewriter_ignores_fin(nf_factory):
    nf = nf_factory(CONFIG)
    run(nf, [tcp("10.0.0.5", SERVER, 40000, 80, via=UR, flags="S")], INSIDE, T0)
    run(nf, [tcp("10.0.0.5", SERVER, 40000, 80, via=UR, flags="FA")], INSIDE, T0 + SECOND)
    assert nf.read("ur.table") == \
        f"tcp (10.0.0.5, 40000, {SERVER}, 80) => ({NAT_IP}, 1024, {SERVER}, 80) [1]"
    back = tcp(SERVER, NAT_IP, 80, 1024, via=UR)
    assert run(nf, [back], OUTSIDE, T0 + 9 * SECOND) == \
        {INSIDE: [rewritten(back, dst="10.0.0.5", dport=40000)]}
    # every mapping, TCP or not, FIN or not, lives UDP_TIMEOUT after its last packet
    assert run(nf, [back], OUTSIDE, T0 + 20 * SECOND) == {}
    assert drops_of(nf) == {drops.NO_MAPPING: 1}


@pytest.mark.host_only(HOST_CLOCK)
def test_ping_mapping_times_out(nf_factory):
    nf = nf_factory(CONFIG)
    req = echo("10.0.0.5", SERVER, 5)
    run(nf, [req], INSIDE, T0)
    rep = echo(SERVER, NAT_IP, 7000, reply=True)
    assert len(run(nf, [rep], OUTSIDE, T0 + 9 * SECOND)[INSIDE]) == 1
    assert run(nf, [rep], OUTSIDE, T0 + 20 * SECOND) == {}
    assert nf.read("ping.expired") == "1"


@pytest.mark.host_only(HOST_CLOCK)
def test_clock_wrapping_32_bit_time_units(nf_factory):
    """Last-seen times are 32-bit counts of 2^20 ns; ages are taken modulo 2^32."""
    nf = nf_factory(CONFIG)
    wrap = (1 << 32) << 20
    f = udp("10.0.0.5", SERVER, 5000, 53)
    run(nf, [f], INSIDE, wrap - 2 * SECOND)
    back = udp(SERVER, NAT_IP, 53, 1024)
    assert len(run(nf, [back], OUTSIDE, wrap + 5 * SECOND)[INSIDE]) == 1
    assert run(nf, [back], OUTSIDE, wrap + 20 * SECOND) == {}


# -- configuration errors -------------------------------------------------------------------

TAIL = "FromDevice(0) -> MarkIPHeader(14) -> [0] rw; rw[0] -> ToDevice(0); rw[1] -> ToDevice(1);"


def one_input(spec_marked: str, cls="IPRewriter", extra="") -> str:
    return f"{extra}rw :: {cls}({spec_marked});\n{TAIL}"


@pytest.mark.parametrize("spec, fragment", [
    ("⟨here⟩frobnicate 1 2", "unknown input spec"),
    ("⟨here⟩pattern 1.2.3.4 1024-2000 - - 0", "6 words"),
    ("⟨here⟩pattern 1.2.3.4 1024-2000 - - 0 1 2", "6 words"),
    ("⟨here⟩keep 0", "2 words"),
    ("⟨here⟩pass", "1 word"),
    ("⟨here⟩drop 1", "0 words"),
    # a bad field: the error points into the word, at the part that is wrong
    ("pattern 1.2.3.⟨here⟩400 1024 - - 0 1", "IPv4 address"),
    ("pattern 1.2.3.4 1024-⟨here⟩99999 - - 0 1", "port"),
    ("pattern 1.2.3.4 1024 - ⟨here⟩70000 0 1", "port"),
    ("pattern 1.2.3.4 1024 ⟨here⟩1.2.3 - 0 1", "IPv4 address"),
    ("pattern 1.2.3.4 1024 - - ⟨here⟩x 1", "output port number"),
    ("pattern 1.2.3.4 1024 - - 0 ⟨here⟩-1", "output port number"),
    ("pass ⟨here⟩256", "output port number"),
    ("keep 0 ⟨here⟩one", "output port number"),
])
def test_bad_input_specs(spec, fragment):
    err = expect_error(one_input(spec), fragment)
    assert err.hint


def test_unknown_mapper_and_pattern_names():
    expect_error(one_input("⟨here⟩nosuch"), "no element named 'nosuch'")
    expect_error(one_input("⟨here⟩pattern nosuch 0 1"), "no pattern named 'nosuch'")
    expect_error(one_input("⟨here⟩c", extra="c :: Counter;\nIdle -> c -> Discard;\n"),
                 "not a mapper")


def test_output_beyond_the_connected_outputs():
    """Click: an INPUTSPEC's output port must be one of the element's outputs."""
    expect_error("⟨here⟩rw :: IPRewriter(pattern 1.2.3.4 1024-2000 - - 0 2);\n" + TAIL,
                 "output [2] of 'rw' (IPRewriter) is not connected")
    expect_error("⟨here⟩rw :: IPRewriter(pass 5);\n" + TAIL, "outputs [2-5]")
    expect_error("rr :: RoundRobinIPMapper(- - 10.0.0.1 80 0 1, - - 10.0.0.2 80 3 1);\n"
                 "⟨here⟩rw :: IPRewriter(rr);\n" + TAIL, "[2-3]")
    expect_error("IPRewriterPatterns(p 1.2.3.4 1024 - -);\n"
                 "⟨here⟩rw :: IPRewriter(pattern p 0 2);\n" + TAIL, "output [2]")
    # outputs no spec uses may be connected (Click allows them)
    from conftest import build

    build(one_input("drop") + "\nrw[2] -> ToDevice(2);")


def test_input_count_follows_the_specs():
    # two specs, one input connected
    errors = errors_of("rw :: IPRewriter(drop, drop);\nFromDevice(0) -> MarkIPHeader(14) -> rw"
                       " -> ToDevice(0);")
    assert any("input [1]" in e.message for e in errors), [str(e) for e in errors]
    # one spec, two inputs used
    errors = errors_of(one_input("drop") + "\nFromDevice(1) -> MarkIPHeader(14) -> [1] rw;")
    assert any("no input [1]" in e.message for e in errors), [str(e) for e in errors]


def test_mapper_and_patterns_element_errors():
    expect_error("rr :: RoundRobinIPMapper(⟨here⟩- - 10.0.0.1 80 0);\n"
                 "rw :: IPRewriter(rr);\n" + TAIL.replace("rw[1] -> ToDevice(1);", ""),
                 "6 words", only=False)
    expect_error("IPRewriterPatterns(⟨here⟩p 1.2.3.4 1024);\n"
                 + one_input("pattern p 0 1"), "NAME SADDR SPORT DADDR DPORT", only=False)
    expect_error("IPRewriterPatterns(p 1.2.3.4 1024-⟨here⟩70000 - -);\n"
                 + one_input("pattern p 0 1"), "", only=False)
    expect_error("rw :: IPRewriter(pattern 1.2.3.4 1024 - - 0 1, CAPACITY ⟨here⟩0);\n" + TAIL,
                 "CAPACITY")
    expect_error("rw :: IPRewriter(pattern 1.2.3.4 1024 - - 0 1, UDP_TIMEOUT ⟨here⟩soon);\n"
                 + TAIL, "UDP_TIMEOUT")


def test_duplicate_pattern_names():
    expect_error("IPRewriterPatterns(p 1.2.3.4 1024 - -, ⟨here⟩p 1.2.3.5 1024 - -);\n"
                 + one_input("pattern p 0 1"), "'p'", hint="distinct")
    expect_error("IPRewriterPatterns(p 1.2.3.4 1024 - -);\n"
                 "IPRewriterPatterns(q 1.2.3.4 1024 - -, ⟨here⟩p 1.2.3.5 1024 - -);\n"
                 + one_input("pattern p 0 1"), "'p'", hint="distinct")


def test_good_configs_are_accepted():
    from conftest import build

    for cls, spec in [("TCPRewriter", "pattern 1.2.3.4 1024-65535 - - 0 1"),
                      ("UDPRewriter", "nochange 1"),
                      ("ICMPPingRewriter", "pattern 1.2.3.4 0-65535 - - 0 1"),
                      ("IPRewriter", "discard"), ("IPRewriter", "keep 1 0")]:
        build(one_input(spec, cls))
    build("IPRewriterPatterns(p 1.2.3.4 1024-2000 - -);\n" + one_input("pattern p 1 0"))
    build("rr :: RoundRobinIPMapper(- - 10.0.0.1 80 0 1);\n" + one_input("rr"))


def test_read_handlers_name_only_arrays_the_element_has():
    # What a read handler says it needs is all the unikernel target copies for it.
    from conftest import build

    for cls in ("IPRewriter", "TCPRewriter", "UDPRewriter", "ICMPPingRewriter"):
        rw = build(one_input("pattern 1.2.3.4 1024-2000 - - 0 1", cls)).elements["rw"].instance
        arrays = {a.name for a in rw.state()}
        for handler in rw.handlers:
            assert set(rw.read_state(handler.name) or ()) <= arrays, (cls, handler.name)
        assert rw.read_state("table") == ("slots",) and rw.read_state("capacity") == ()


@pytest.mark.host_only("two tables of 1 and 2 MiB are too big to copy over the VM's console")
def test_prefetched_tables_hit_through_the_hints_or_without_them(nf_factory):
    nf = nf_factory(WARMED)
    assert "# ahead a" in nf.host.pipeline.source and "# ahead b" in nf.host.pipeline.source
    flows = [udp(f"10.0.{k // 200}.{k % 200 + 1}", SERVER, 5000 + k, 53, via=0)
             for k in range(300)]
    # b maps the flows as they are (so its hints are right for it)...
    assert len(run(nf, flows, 2)[1]) == 300
    # ...then they go through a and b: each rewrite is b's new source on the
    # original packet; every later pass must rewrite them the same way
    out = run(nf, flows, 0)[1]
    for again in range(2):
        assert run(nf, flows, 0)[1] == out
    mapped = [(Ether(f)[IP].src, Ether(f)[UDP].sport) for f in out]
    assert {src for src, _ in mapped} == {"192.0.2.2"} and len(set(mapped)) == 300
    for f, o in zip(flows, out):
        assert o == rewritten(f, src="192.0.2.2", sport=Ether(o)[UDP].sport)
    # replies come back through b (device 3), then a, to the inside hosts, restored
    # field by field
    replies = [udp(SERVER, "192.0.2.2", 53, sport, via=1) for _, sport in mapped]
    back = run(nf, run(nf, replies, 1)[3], 3)[0]
    assert back == [rewritten(r, dst=Ether(f)[IP].src, dport=Ether(f)[UDP].sport)
                    for r, f in zip(replies, flows)]
    assert counts(nf, "a", "size", "created") == {"size": 300, "created": 300}
    assert counts(nf, "b", "size", "created") == {"size": 600, "created": 600}
