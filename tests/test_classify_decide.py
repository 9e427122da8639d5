"""Classifier decision tables (nfv.classify.decide) and their Numba matchers (nfv.classify.match).

Three kinds of evidence:
* hand-written expectations: the firewall in configs/firewall.click and Click's manual
  examples, scapy-built packets, verdicts written down by hand (not computed);
* the reference evaluator (`decide.evaluate`, read straight off the AST) as an oracle
  for hypothesis-generated rule sets and packets, truncated, with IHL < 5, fragments
  and other protocols;
* the matcher recompiled with boundscheck=True over packets cut at every length and
  placed at the very end of their array, so any read past `end` raises.

Each matcher is compiled once per session (module-level objects, compiled lazily).
"""
from __future__ import annotations

import struct
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scapy.all import ICMP, IP, TCP, UDP, Ether, Raw  # noqa: F401  (Raw used in packets)

from conftest import args_of, build
from nfv.classify import (
    FIELDS, And, ClassifierPattern, Clause, FieldTest, Not, Or, parse_expr, parse_pattern,
    parse_rule,
)
from nfv.classify import decide as dec
from nfv.classify.decide import (
    DecisionTable, TooComplex, compile_classifier, compile_ipclassifier, compile_ipfilter,
    evaluate, evaluate_pattern, reference_classifier, reference_ipclassifier,
    reference_ipfilter,
)
from nfv.classify.match import build as build_matchers
from nfv.classify.match import ip_match, raw_match
from nfv.errors import NfvError

ETH = bytes.fromhex("ffffffffffff 020000000001 0800".replace(" ", ""))   # 14 bytes, IPv4
L3 = 14

_BOUNDSCHECKED: tuple | None = None


def checked_matchers():
    """(ip_match, raw_match) compiled with boundscheck=True; built once per session."""
    global _BOUNDSCHECKED
    if _BOUNDSCHECKED is None:
        _BOUNDSCHECKED = build_matchers(boundscheck=True, _nrt=False, error_model="numpy")
    return _BOUNDSCHECKED


# -- helpers ----------------------------------------------------------------------------------


def frame(ip_packet) -> bytes:
    """An IPv4 scapy packet behind a fixed Ethernet header (no scapy address lookups)."""
    return ETH + bytes(ip_packet)


def as_data(packet: bytes, pad: int = 0) -> np.ndarray:
    """The packet as a pool, followed by `pad` bytes of garbage the matcher must not read."""
    data = np.frombuffer(packet + bytes([0xA5]) * pad, dtype=np.uint8).copy()
    return data


def ip_verdict(table: DecisionTable, packet: bytes, l3: int = L3, pad: int = 0,
               matcher=None) -> int:
    return int((matcher or ip_match)(as_data(packet, pad), l3, len(packet), *table.arrays))


def raw_verdict(table: DecisionTable, packet: bytes, pad: int = 0, matcher=None) -> int:
    return int((matcher or raw_match)(as_data(packet, pad), 0, len(packet), *table.arrays))


def rules(*texts: str):
    return [parse_rule(t) for t in texts]


@contextmanager
def no_folding():
    """Compile without folding, so the bit-vector phase does all the work."""
    saved = dec.FOLD_LIMIT
    dec.FOLD_LIMIT = 0
    try:
        yield
    finally:
        dec.FOLD_LIMIT = saved


def both_ways(compile_fn, items):
    """The table compiled as usual and without folding (two code paths of the matcher)."""
    with no_folding():
        unfolded = compile_fn(items)
    return [compile_fn(items), unfolded]


# -- the firewall of configs/firewall.click ---------------------------------------------------

SERVER, DNS, MAIL, ADMIN = "192.0.2.10", "192.0.2.53", "192.0.2.25", "198.51.100.7"
OUTSIDE = "203.0.113.9"


@pytest.fixture(scope="module")
def firewall():
    from conftest import ROOT
    graph = build((ROOT / "configs" / "firewall.click").read_text(), file="firewall.click")
    inbound = [parse_rule(a) for a in args_of(graph, "inbound")]
    outbound = [parse_rule(a) for a in args_of(graph, "outbound")]
    wan_type = [parse_pattern(a) for a in args_of(graph, "wan_type")]
    return {"inbound": (inbound, compile_ipfilter(inbound)),
            "outbound": (outbound, compile_ipfilter(outbound)),
            "wan_type": (wan_type, compile_classifier(wan_type))}


ALLOW, DROP = 0, -1
INBOUND_CASES = [
    # (what, packet, verdict written by hand from the rules)
    ("web to a server", IP(src=OUTSIDE, dst=SERVER) / TCP(dport=80), ALLOW),
    ("https to a server", IP(src=OUTSIDE, dst=SERVER) / TCP(dport=443), ALLOW),
    ("web over udp", IP(src=OUTSIDE, dst=SERVER) / UDP(dport=80), DROP),
    ("web to outside the subnet", IP(src=OUTSIDE, dst="192.0.3.10") / TCP(dport=80), DROP),
    ("spoofed 10/8", IP(src="10.1.2.3", dst=SERVER) / TCP(dport=80), DROP),
    ("spoofed 172.16/12", IP(src="172.31.255.255", dst=SERVER) / TCP(dport=80), DROP),
    ("172.32 is not private", IP(src="172.32.0.1", dst=SERVER) / TCP(dport=80), ALLOW),
    ("spoofed 192.168/16", IP(src="192.168.0.1", dst=SERVER) / TCP(dport=443), DROP),
    ("spoofed loopback", IP(src="127.0.0.1", dst=SERVER) / TCP(dport=80), DROP),
    ("spoofed server source", IP(src="192.0.2.200", dst=SERVER) / TCP(dport=80), DROP),
    ("first fragment", IP(src=OUTSIDE, dst=SERVER, flags="MF") / TCP(dport=80), DROP),
    ("later fragment", IP(src=OUTSIDE, dst=SERVER, frag=100) / Raw(b"x" * 8), DROP),
    ("DF is not a fragment", IP(src=OUTSIDE, dst=SERVER, flags="DF") / TCP(dport=80), ALLOW),
    ("ssh from admin", IP(src=ADMIN, dst=SERVER) / TCP(dport=22), ALLOW),
    ("ssh from outside", IP(src=OUTSIDE, dst=SERVER) / TCP(dport=22), DROP),
    ("ssh from admin to anywhere", IP(src=ADMIN, dst="8.8.8.8") / TCP(dport=22), ALLOW),
    ("udp ssh from admin", IP(src=ADMIN, dst=SERVER) / UDP(dport=22), DROP),
    ("dns over udp", IP(src=OUTSIDE, dst=DNS) / UDP(sport=5353, dport=53), ALLOW),
    ("dns over tcp", IP(src=OUTSIDE, dst=DNS) / TCP(dport=53), ALLOW),
    ("dns to another host", IP(src=OUTSIDE, dst=MAIL) / UDP(dport=53), DROP),
    ("dns source port only", IP(src=OUTSIDE, dst=DNS) / UDP(sport=53, dport=9999), DROP),
    ("smtp to mail", IP(src=OUTSIDE, dst=MAIL) / TCP(dport=25), ALLOW),
    ("smtp to dns", IP(src=OUTSIDE, dst=DNS) / TCP(dport=25), DROP),
    ("ping", IP(src=OUTSIDE, dst=SERVER) / ICMP(type=8), ALLOW),
    ("ping reply", IP(src=OUTSIDE, dst=SERVER) / ICMP(type=0), DROP),
    ("unreachable", IP(src=OUTSIDE, dst=SERVER) / ICMP(type=3, code=1), ALLOW),
    ("time exceeded", IP(src=OUTSIDE, dst=SERVER) / ICMP(type=11), ALLOW),
    ("redirect", IP(src=OUTSIDE, dst=SERVER) / ICMP(type=5), DROP),
    ("gre", IP(src=OUTSIDE, dst=SERVER, proto=47) / Raw(b"\x00" * 8), DROP),
]


@pytest.mark.parametrize("what,packet,verdict", INBOUND_CASES, ids=[c[0] for c in INBOUND_CASES])
def test_firewall_inbound(firewall, what, packet, verdict):
    rules_, table = firewall["inbound"]
    data = frame(packet)
    assert reference_ipfilter(rules_, data, L3) == verdict      # the oracle agrees by hand
    assert ip_verdict(table, data) == verdict
    assert ip_verdict(table, data, pad=64) == verdict             # garbage after the packet


def test_firewall_truncated_packets(firewall):
    rules_, table = firewall["inbound"]
    web = frame(IP(src=OUTSIDE, dst=SERVER) / TCP(dport=80))
    # The IP header alone: the port is absent, so no port rule matches: deny all.
    assert ip_verdict(table, web[:L3 + 20]) == DROP
    # Up to and including the destination port: allowed.
    assert ip_verdict(table, web[:L3 + 24]) == ALLOW
    assert ip_verdict(table, web[:L3 + 23]) == DROP
    # Too short for the source address: the spoofing rules cannot match, but nothing
    # after them can either.
    assert ip_verdict(table, web[:L3 + 14]) == DROP
    for cut in range(len(web) + 1):
        assert ip_verdict(table, web[:cut], pad=32) == reference_ipfilter(rules_, web[:cut], L3)


def test_firewall_outbound(firewall):
    _, table = firewall["outbound"]
    assert ip_verdict(table, frame(IP(src="192.0.2.7", dst=OUTSIDE) / TCP(sport=80))) == ALLOW
    assert ip_verdict(table, frame(IP(src="192.0.3.7", dst=OUTSIDE) / TCP(sport=80))) == DROP
    assert ip_verdict(table, frame(IP(src="192.0.2.7", dst=OUTSIDE) / ICMP())[:L3 + 12]) == DROP


def test_firewall_ethertype_classifier(firewall):
    _, table = firewall["wan_type"]
    arp = bytes.fromhex("ffffffffffff020000000001 0806".replace(" ", "")) + bytes(28)
    ipv6 = bytes.fromhex("ffffffffffff020000000001 86dd".replace(" ", "")) + bytes(40)
    ipv4 = frame(IP(src=OUTSIDE, dst=SERVER) / UDP())
    assert raw_verdict(table, arp) == 0
    assert raw_verdict(table, ipv4) == 1
    assert raw_verdict(table, ipv6) == 2
    assert raw_verdict(table, ipv4[:13]) == 2           # no room for the ethertype: '-'
    assert raw_verdict(table, b"") == 2


# -- Click's manual examples and the language's corner cases ---------------------------------


def test_click_ipclassifier_example():
    # IPClassifier manual: TCP SYNs, FIN-ACKs and other TCP to 10.0.0.0/24, and the rest.
    exprs = [parse_expr(t) for t in ("dst net 10.0.0.0/24 and syn",
                                     "dst net 10.0.0.0/24 and fin ack",
                                     "dst net 10.0.0.0/24 and tcp", "-")]
    table = compile_ipclassifier(exprs)
    to = IP(src=OUTSIDE, dst="10.0.0.7")
    assert ip_verdict(table, frame(to / TCP(flags="S"))) == 0
    assert ip_verdict(table, frame(to / TCP(flags="SA"))) == 0
    assert ip_verdict(table, frame(to / TCP(flags="FA"))) == 1
    assert ip_verdict(table, frame(to / TCP(flags="F"))) == 2
    assert ip_verdict(table, frame(to / TCP(flags="A"))) == 2
    assert ip_verdict(table, frame(to / UDP())) == 3
    assert ip_verdict(table, frame(IP(src=OUTSIDE, dst="10.0.1.7") / TCP(flags="S"))) == 3


def test_click_classifier_example():
    # Classifier manual: ARP requests, ARP replies, IP, everything else.
    patterns = [parse_pattern(t) for t in ("12/0806 20/0001", "12/0806 20/0002", "12/0800", "-")]
    table = compile_classifier(patterns)
    arp = bytes.fromhex("ffffffffffff020000000001 0806 0001 0800 0604".replace(" ", ""))
    assert raw_verdict(table, arp + b"\x00\x01" + bytes(20)) == 0
    assert raw_verdict(table, arp + b"\x00\x02" + bytes(20)) == 1
    assert raw_verdict(table, arp + b"\x00\x03" + bytes(20)) == 3
    assert raw_verdict(table, arp + b"\x00") == 3          # opcode cut in half
    assert raw_verdict(table, frame(IP(src=OUTSIDE, dst=SERVER))) == 2


def test_classifier_masks_negation_and_long_clauses():
    patterns = [parse_pattern(t) for t in (
        "!12/0800 !12/86dd",                # neither IPv4 nor IPv6 (or too short)
        "12/08?? 23/06",                   # ethertype 08xx and protocol byte 6
        "0/ffffffffffff",                  # broadcast destination MAC (6 bytes)
        "30/0a000000%ff000000",            # IPv4 destination in 10/8
        "-")]
    table = compile_classifier(patterns)
    tcp = frame(IP(src=OUTSIDE, dst=SERVER) / TCP())
    udp10 = frame(IP(src=OUTSIDE, dst="10.9.8.7") / UDP())
    udp = frame(IP(src=OUTSIDE, dst=SERVER) / UDP())
    assert raw_verdict(table, b"\x00" * 11) == 0            # too short: !12/0800 holds
    assert raw_verdict(table, tcp) == 1
    assert raw_verdict(table, udp) == 2                      # ETH is a broadcast frame
    assert raw_verdict(table, b"\x02" + udp[1:]) == 4        # not broadcast, not 10/8
    assert raw_verdict(table, b"\x02" + udp10[1:]) == 3
    assert raw_verdict(table, udp[:5]) == 0                  # MAC cut short: not broadcast


def test_transport_fields_need_protocol_and_first_fragment():
    exprs = [parse_expr(t) for t in ("src tcp port != 5", "not src port 5", "port 80",
                                     "icmp type echo")]
    table = compile_ipclassifier(exprs)

    def first(packet):
        return ip_verdict(table, frame(packet))

    src = dict(src=OUTSIDE, dst=SERVER)
    assert first(IP(**src) / TCP(sport=6)) == 0
    assert first(IP(**src) / TCP(sport=5, dport=80)) == 2      # != 5 fails; not-5 fails
    assert first(IP(**src) / UDP(sport=6)) == 1                # tcp port != 5: not for UDP
    assert first(IP(**src) / UDP(sport=5, dport=80)) == 2      # port 80 holds for UDP
    assert first(IP(**src) / UDP(sport=5, dport=81)) == -1
    assert first(IP(**src) / ICMP(type=8)) == 1                # no ports: not-port-5 holds
    later = IP(src=OUTSIDE, dst=SERVER, proto=6, frag=10) / Raw(bytes(20))
    assert first(later) == 1                                   # later fragment: ports absent
    assert first(IP(**src, frag=10, proto=1) / Raw(b"\x08" + bytes(7))) == 1  # not echo


def test_header_length_moves_and_hides_the_transport_header():
    table = compile_ipclassifier([parse_expr("dst port 80"), parse_expr("not dst port 80")])
    with_options = IP(src=OUTSIDE, dst=SERVER, options=b"\x01\x01\x01\x00") / TCP(dport=80)
    data = frame(with_options)
    assert data[L3] == 0x46
    assert ip_verdict(table, data) == 0
    for ihl in range(5):                  # IHL < 5: no transport header at all
        bad = bytearray(frame(IP(src=OUTSIDE, dst=SERVER) / TCP(dport=80)))
        bad[L3] = 0x40 | ihl
        assert ip_verdict(table, bytes(bad)) == 1
        assert reference_ipclassifier([parse_expr("dst port 80")], bytes(bad), L3) == -1
    huge = bytearray(data)
    huge[L3] = 0x4F                       # IHL 15: the ports would be past the packet end
    assert ip_verdict(table, bytes(huge)) == 1


def test_masks_ranges_flags_and_odd_netmasks():
    exprs = [parse_expr(t) for t in (
        "ip tos & 0x1c == 8",
        "ip ttl < 5 or > 250",
        "tcp opt syn and not tcp opt ack",
        "dst net 10.0.0.0 mask 255.0.255.0",
        "src port 1024-2048 and udp",
        "ip ce",
        "tcp win & 0x8001 == 0x8001")]
    table = compile_ipclassifier(exprs)
    a = dict(src=OUTSIDE, dst=SERVER)
    cases = [
        (IP(**a, tos=0x08) / UDP(), 0),
        (IP(**a, tos=0x09) / UDP(), 0),          # only the masked bits count
        (IP(**a, tos=0x04) / UDP(), -1),
        (IP(**a, ttl=4) / UDP(), 1),
        (IP(**a, ttl=251) / UDP(), 1),
        (IP(**a, ttl=250) / UDP(), -1),
        (IP(**a) / TCP(flags="S"), 2),
        (IP(**a) / TCP(flags="SA"), -1),
        (IP(src=OUTSIDE, dst="10.77.0.1") / TCP(flags="A"), 3),
        (IP(src=OUTSIDE, dst="10.77.1.1") / TCP(flags="A"), -1),
        (IP(**a) / UDP(sport=1024), 4),
        (IP(**a) / UDP(sport=2048), 4),
        (IP(**a) / UDP(sport=2049), -1),
        (IP(**a) / TCP(sport=1500, flags="A"), -1),
        (IP(**a, tos=3) / TCP(flags="A"), 5),
        (IP(**a) / TCP(flags="A", window=0x8001), 6),
        (IP(**a) / TCP(flags="A", window=0x8003), 6),
        (IP(**a) / TCP(flags="A", window=0x8000), -1),
    ]
    for packet, verdict in cases:
        data = frame(packet)
        assert reference_ipclassifier(exprs, data, L3) == verdict, packet.summary()
        assert ip_verdict(table, data) == verdict, packet.summary()


def test_ipfilter_ports_and_shadowed_rules():
    table = compile_ipfilter(rules("2 icmp", "allow tcp src port 80", "deny udp",
                                   "1 all", "allow tcp"))
    assert table.stats["default"] == 1             # `1 all`: everything after it is dead
    a = dict(src=OUTSIDE, dst=SERVER)
    assert ip_verdict(table, frame(IP(**a) / ICMP())) == 2
    assert ip_verdict(table, frame(IP(**a) / TCP(sport=80))) == 0
    assert ip_verdict(table, frame(IP(**a) / UDP(sport=80))) == -1
    assert ip_verdict(table, frame(IP(**a) / TCP(sport=81))) == 1
    assert ip_verdict(table, ETH + b"\x45") == 1   # too short for any field: `1 all`


def test_empty_and_trivial_rule_sets():
    packet = frame(IP(src=OUTSIDE, dst=SERVER) / TCP())
    assert ip_verdict(compile_ipfilter([]), packet) == -1
    assert ip_verdict(compile_ipfilter(rules("allow all")), packet) == 0
    assert ip_verdict(compile_ipfilter(rules("deny all", "allow all")), packet) == -1
    assert ip_verdict(compile_ipclassifier([parse_expr("false")]), packet) == -1
    assert raw_verdict(compile_classifier([]), packet) == -1
    assert raw_verdict(compile_classifier([parse_pattern("-")]), b"") == 0


def test_too_complex_names_the_rule():
    # not ((a1 and b1) or ... or (a12 and b12)) has 2**12 alternatives.
    conj = [And((FieldTest("ip.ttl", "==", i, 0xFF), FieldTest("ip.tos", "==", i, 0xFF)))
            for i in range(12)]
    with pytest.raises(TooComplex) as info:
        compile_ipclassifier([parse_expr("tcp"), Not(Or(tuple(conj)))])
    assert isinstance(info.value, NfvError)
    assert info.value.index == 1 and "pattern 1" in info.value.message
    with pytest.raises(TooComplex) as info:
        compile_ipfilter(rules("allow tcp", "deny udp", "allow src net 128.0.0.1 mask 128.0.0.1"))
    assert info.value.index == 2 and "rule 2" in info.value.message and info.value.hint


# -- capacity: a later rule set copied into the same arrays ----------------------------------


def test_capacity_and_load_in_place():
    first = rules("allow src net 10.0.0.0/8 && tcp dst port 22", "2 udp dst port 53",
                  "deny all")
    second = rules("1 icmp type echo", "allow dst host 192.0.2.10 && tcp dst port 80-90",
                   "2 ip ttl < 3", "deny all")
    big = compile_ipfilter(first, capacity=64)
    exact = compile_ipfilter(first)
    assert big.nbytes > exact.nbytes and all(
        b.size >= e.size for b, e in zip(big.arrays, exact.arrays))
    small = compile_ipfilter(second)
    assert big.fits(small) and not small.fits(compile_ipfilter(first, capacity=512))
    assert not big.fits(compile_classifier([parse_pattern("12/0800")]))
    packets = [frame(p) for p in (
        IP(src="10.1.1.1", dst=SERVER) / TCP(dport=22), IP(src=OUTSIDE, dst=SERVER) / UDP(dport=53),
        IP(src=OUTSIDE, dst=SERVER) / ICMP(type=8), IP(src=OUTSIDE, dst=SERVER) / TCP(dport=85),
        IP(src=OUTSIDE, dst=SERVER, ttl=2) / UDP(dport=1), IP(src=OUTSIDE, dst=SERVER) / TCP())]
    for p in packets:
        assert ip_verdict(big, p) == reference_ipfilter(first, p, L3)
    arrays = big.arrays
    big.copy_from(small)
    assert all(a is b for a, b in zip(arrays, big.arrays))      # the same buffers
    for p in packets:
        assert ip_verdict(big, p) == reference_ipfilter(second, p, L3)
    with pytest.raises(ValueError):
        small.copy_from(compile_ipfilter(first, capacity=512))


def test_capacity_reserves_enough_for_typical_rule_sets():
    rng = np.random.default_rng(7)
    reserved = compile_ipfilter(rules("deny all"), capacity=100)
    texts = [f"allow src net {rng.integers(1, 223)}.{rng.integers(256)}.0.0/16 && "
             f"dst net 192.0.{rng.integers(256)}.0/24 && tcp dst port {rng.integers(1, 65535)}"
             for _ in range(100)]
    assert reserved.fits(compile_ipfilter(rules(*texts)))


# -- the oracle, on hypothesis-generated rules and packets -----------------------------------

PROTOS = [1, 6, 17, 47, 2]


@st.composite
def ip_packets(draw):
    """Raw Ethernet + IPv4 frames: any protocol, IHL, fragment word, lengths and bytes."""
    proto = draw(st.sampled_from(PROTOS + [draw(st.integers(0, 255))]))
    ihl = draw(st.sampled_from([5, 5, 5, 6, 15, draw(st.integers(0, 4))]))
    frag = draw(st.sampled_from([0, 0, 0x4000, 0x2000, draw(st.integers(0, 0xFFFF))]))
    header = bytearray(draw(st.binary(min_size=20, max_size=20)))
    header[0] = 0x40 | ihl
    header[6:8] = frag.to_bytes(2, "big")
    header[9] = proto
    if draw(st.booleans()):
        header[12:16] = bytes([10, 0, draw(st.integers(0, 3)), draw(st.integers(0, 255))])
    options = draw(st.binary(min_size=max(0, 4 * ihl - 20), max_size=max(0, 4 * ihl - 20)))
    transport = bytearray(draw(st.binary(min_size=0, max_size=24)))
    if len(transport) >= 4 and draw(st.booleans()):
        transport[0:4] = struct.pack(">HH", draw(st.sampled_from([53, 80, 1024, 65535])),
                                     draw(st.sampled_from([22, 80, 443, 0])))
    packet = ETH + bytes(header) + options + bytes(transport)
    cut = draw(st.sampled_from([len(packet), len(packet), draw(st.integers(0, len(packet)))]))
    return packet[:cut]


def field_tests(packets: list[bytes]):
    """FieldTests on any field, with values near those of the packets (so some match)."""
    def value_for(spec, draw):
        seen = [v for p in packets if (v := dec.field_value(spec, p, L3)) is not None]
        choices = [st.integers(0, spec.max)]
        if seen:
            choices.append(st.sampled_from(seen))
        return draw(st.one_of(*choices))

    @st.composite
    def test(draw):
        spec = draw(st.sampled_from(list(FIELDS.values())))
        op = draw(st.sampled_from(["==", "==", "!=", "<", ">", "<=", ">="]))
        if spec.bits > 16:
            op = draw(st.sampled_from(["==", "!="]))
            mask = draw(st.sampled_from([0xFFFFFFFF, 0xFFFF0000, 0xFFFFFF00, 0xFF000000,
                                         0, 0xFF00FF00]))
        else:
            mask = draw(st.sampled_from([spec.max, spec.max, draw(st.integers(0, spec.max))]))
        value = value_for(spec, draw)
        if op in ("==", "!="):
            value &= mask
        return FieldTest(spec.name, op, value, mask)
    return test()


def expressions(packets: list[bytes]):
    """Random and/or/not trees of field tests; sometimes `true` or `false` alone."""
    constants = st.sampled_from([parse_expr("true"), parse_expr("false")])
    trees = st.recursive(field_tests(packets), lambda inner: st.one_of(
        st.builds(Not, inner),
        st.builds(lambda t: And(tuple(t)), st.lists(inner, min_size=2, max_size=3)),
        st.builds(lambda t: Or(tuple(t)), st.lists(inner, min_size=2, max_size=3))),
        max_leaves=6)
    return st.one_of(trees, trees, trees, trees, trees, constants)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_ipclassifier_matches_the_reference(data):
    packets = data.draw(st.lists(ip_packets(), min_size=1, max_size=12))
    exprs = data.draw(st.lists(expressions(packets), min_size=1, max_size=8))
    try:
        tables = both_ways(compile_ipclassifier, exprs)
    except TooComplex:
        assume(False)
    for packet in packets:
        want = reference_ipclassifier(exprs, packet, L3)
        for table in tables:
            assert ip_verdict(table, packet, pad=16) == want


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_ipfilter_text_rules_match_the_reference(data):
    packets = data.draw(st.lists(ip_packets(), min_size=1, max_size=10))
    words = ["tcp", "udp", "icmp", "src port 80", "dst port 22", "port 53", "ip frag",
             "src net 10.0.0.0/16", "dst host 10.0.1.2", "icmp type echo", "syn",
             "ip ttl > 64", "dst port 1024-65535", "ip unfrag", "not tcp", "ip hl > 5"]
    texts = data.draw(st.lists(st.tuples(
        st.sampled_from(["allow", "deny", "1", "2"]),
        st.lists(st.sampled_from(words), min_size=1, max_size=3),
        st.sampled_from([" and ", " or ", " and not "])), min_size=1, max_size=10))
    parsed = rules(*(f"{a} {j.join(w)}" for a, w, j in texts))
    tables = both_ways(compile_ipfilter, parsed)
    for packet in packets:
        want = reference_ipfilter(parsed, packet, L3)
        assert [ip_verdict(t, packet) for t in tables] == [want, want]


@st.composite
def clauses(draw):
    offset = draw(st.integers(0, 40))
    size = draw(st.integers(1, 6))
    value = draw(st.binary(min_size=size, max_size=size))
    mask = draw(st.sampled_from([b"\xff" * size, draw(st.binary(min_size=size, max_size=size))]))
    value = bytes(v & m for v, m in zip(value, mask))
    return Clause(offset, value, mask, draw(st.booleans()))


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_classifier_matches_the_reference(data):
    packets = data.draw(st.lists(st.binary(min_size=0, max_size=48), min_size=1, max_size=12))
    patterns = data.draw(st.lists(st.one_of(
        st.builds(lambda c: ClassifierPattern(tuple(c)), st.lists(clauses(), min_size=1,
                                                                  max_size=3)),
        st.just(ClassifierPattern((), match_all=True))), min_size=1, max_size=8))
    # Patterns copied from the packets' own bytes, so that some of them match.
    for packet in packets[:3]:
        if len(packet) >= 4:
            at = data.draw(st.integers(0, len(packet) - 2))
            patterns.insert(0, ClassifierPattern((Clause(at, packet[at:at + 2], b"\xff\xff"),)))
    try:
        tables = both_ways(compile_classifier, patterns)
    except TooComplex:
        assume(False)
    for packet in packets:
        want = reference_classifier(patterns, packet)
        assert [raw_verdict(t, packet, pad=16) for t in tables] == [want, want]


def firewall_rules(rng, n: int) -> tuple[list[str], list[bytes]]:
    """n random firewall rules around a few address clusters, then `deny all`; and for
    each rule a packet built to match it (an earlier rule may match it first)."""
    clusters = [f"{rng.integers(1, 223)}.{rng.integers(256)}" for _ in range(6)]
    texts, packets = [], []
    for _ in range(n):
        src = f"{rng.choice(clusters)}.{rng.integers(256)}.9"
        dst = f"{rng.choice(clusters)}.{rng.integers(256)}.{rng.integers(256)}"
        parts = []
        if rng.random() < 0.6:
            parts.append(f"src net {src.rsplit('.', 1)[0]}.0/24")
        parts.append(f"dst net {dst}/32")
        proto = rng.choice(["tcp", "udp", "icmp"])
        port = int(rng.integers(1, 60000))
        if proto == "icmp":
            parts.append("icmp type echo")
            l4 = ICMP(type=8)
        else:
            parts.append(rng.choice([f"{proto} dst port {port}",
                                     f"{proto} dst port {port - 1}-{port + 99}", proto]))
            l4 = TCP(dport=port) if proto == "tcp" else UDP(dport=port)
        texts.append(f"{rng.choice(['allow', 'deny', '1'])} {' && '.join(parts)}")
        packets.append(frame(IP(src=src, dst=dst) / l4))
    return texts + ["deny all"], packets


@pytest.mark.parametrize("n,chunk,summary", [(100, 2, 0), (200, 4, 0), (700, 8, 0), (1100, 8, 1)])
def test_large_rule_sets_match_the_reference(n, chunk, summary):
    # Every chunk width, and rows long enough for summary words.
    rng = np.random.default_rng(n)
    texts, packets = firewall_rules(rng, n)
    parsed = rules(*texts)
    tables = both_ways(compile_ipfilter, parsed)
    unfolded = tables[1].arrays[0]
    assert unfolded[dec.HDR_CHUNK] == chunk and unfolded[dec.HDR_NSUMMARY] == summary
    assert unfolded[dec.HDR_NFINAL] > 1
    # Packets built for a rule (answered by it or an earlier one), and the same with a
    # random destination (mostly answered by `deny all`).
    strays = [p[:L3 + 16] + bytes(rng.integers(0, 256, 4, dtype=np.uint8)) + p[L3 + 20:]
              for p in packets[::7]]
    answers = []
    for packet in packets[::max(1, n // 150)] + strays:
        want = reference_ipfilter(parsed, packet, L3)
        answers.append(next((i for i, r in enumerate(parsed) if evaluate(r.expr, packet, L3)),
                            None))
        assert [ip_verdict(t, packet) for t in tables] == [want, want]
    assert max(a for a in answers if a is not None) > 0.8 * n
    assert len(set(answers)) > min(n, 150) // 2 and len(parsed) - 1 in answers


def test_more_than_32768_boxes_use_several_summary_words():
    # Summary words cover 64 chunks of 512 boxes each; the rule that matches is past them.
    tcp80 = And((FieldTest("ip.proto", "==", 6, 0xFF), FieldTest("l4.dport", "==", 80, 0xFFFF)))
    udp53 = And((FieldTest("ip.proto", "==", 17, 0xFF), FieldTest("l4.dport", "==", 53, 0xFFFF)))
    many = [dec.FilterRule("1", 1, tcp80)] * 33000 + [dec.FilterRule("2", 2, udp53)]
    with no_folding():
        table = compile_ipfilter(many)
    meta = table.arrays[0]
    assert meta[dec.HDR_NSUMMARY] == 2 and meta[dec.HDR_NFINAL] == 2
    assert ip_verdict(table, frame(IP(src=OUTSIDE, dst=SERVER) / UDP(dport=53))) == 2
    assert ip_verdict(table, frame(IP(src=OUTSIDE, dst=SERVER) / TCP(dport=80))) == 1
    assert ip_verdict(table, frame(IP(src=OUTSIDE, dst=SERVER) / UDP(dport=80))) == -1


# -- no read outside the packet ---------------------------------------------------------------


def test_boundschecked_matchers_never_leave_the_packet(firewall):
    ip_checked, raw_checked = checked_matchers()
    inbound_rules, inbound = firewall["inbound"]
    many = compile_ipclassifier([parse_expr(t) for t in (
        "ip vers 4 and ip hl 5", "ip tos 1", "ip len > 40", "ip id 7", "ip frag",
        "ip ttl 1", "src host 1.2.3.4", "dst net 10.0.0.0/8", "src port 1", "dst port 2",
        "tcp opt fin", "tcp win 3", "icmp type 4", "-")])
    raw = compile_classifier([parse_pattern(t) for t in (
        "0/ffffffffffff", "12/0800 23/06", "!30/0a000001", "60/01020304050607", "-")])
    packets = [frame(IP(src=OUTSIDE, dst=SERVER) / TCP(dport=80, window=3)),
               frame(IP(src="1.2.3.4", dst="10.0.0.1", options=b"\x01" * 8) / UDP(sport=1)),
               frame(IP(src=OUTSIDE, dst=SERVER) / ICMP(type=4) / Raw(b"\x00" * 40))]
    for packet in packets:
        for cut in range(len(packet) + 1):
            # The packet ends where its array ends: reading past `end` would raise.
            data = np.frombuffer(packet[:cut], dtype=np.uint8).copy()
            for table, exprs in ((inbound, None), (many, None)):
                want = int(ip_match(data, L3, cut, *table.arrays))
                assert int(ip_checked(data, L3, cut, *table.arrays)) == want
            assert int(ip_checked(data, L3, cut, *inbound.arrays)) == \
                reference_ipfilter(inbound_rules, packet[:cut], L3)
            assert int(raw_checked(data, 0, cut, *raw.arrays)) == \
                int(raw_match(data, 0, cut, *raw.arrays))
            # The IP header at the very start of the array: nothing before it exists.
            ip_only = np.frombuffer(packet[L3:cut], dtype=np.uint8).copy()
            ip_checked(ip_only, 0, max(0, cut - L3), *many.arrays)


def test_boundscheck_is_really_on():
    ip_checked, _ = checked_matchers()
    table = compile_ipclassifier([parse_expr("dst port 80")])
    packet = frame(IP(src=OUTSIDE, dst=SERVER) / TCP(dport=80))
    data = np.frombuffer(packet[:30], dtype=np.uint8).copy()
    with pytest.raises(IndexError):                 # a caller lying about `end`
        ip_checked(data, L3, len(packet), *table.arrays)


# -- the decision structure itself ------------------------------------------------------------


def radix_leaves(lookup, index_at, at, lo, shift, nbits):
    """(first value, end value, entry) of every leaf bucket under the node at `at`."""
    for i in range(1 << nbits):
        entry = int(lookup[at + i])
        start = lo + (i << shift)
        if entry >= dec.CHILD:
            yield from radix_leaves(lookup, index_at, index_at + entry - dec.CHILD, start,
                                    shift - dec.CHILD_BITS, dec.CHILD_BITS)
        else:
            yield start, start + (1 << shift), entry


def test_radix_index_leaves_hold_at_most_a_window():
    # 300 /24s packed into 10.0/15 plus host routes inside them: buckets of the
    # address root overflow and get child nodes, down to at most 16 starts each.
    nets = [f"10.{i // 256}.{i % 256}.0/24" for i in range(300)]
    hosts = [f"10.0.{i}.{j}" for i in range(4) for j in range(0, 256, 8)]
    table = compile_ipfilter(rules(*(f"allow dst net {n} && tcp dst port {1000 + i}"
                                     for i, n in enumerate(nets)),
                                   *(f"1 dst host {h}" for h in hosts), "deny all"))
    meta, lookup, _ = table.arrays
    children = 0
    for d in range(int(meta[dec.HDR_NDIMS])):
        o = dec.HDR_SIZE + d * dec.DIM_STRIDE
        if meta[o + dec.D_DIRECT]:
            continue
        n = int(meta[o + dec.D_NSTARTS])
        starts = lookup[meta[o + dec.D_STARTS]:][:n].astype(np.int64)
        assert starts[0] == 0 and (np.diff(starts) > 0).all()
        bits, bshift = int(meta[o + dec.D_BITS]), int(meta[o + dec.D_BSHIFT])
        for lo, hi, entry in radix_leaves(lookup, int(meta[o + dec.D_INDEX]),
                                          int(meta[o + dec.D_INDEX]), 0, bshift, bits - bshift):
            assert entry == np.searchsorted(starts, lo)          # starts below the bucket
            assert np.searchsorted(starts, hi) - entry <= dec.WINDOW
            children += shift_child(lo, hi, bshift)
    assert children > 0
    probe = frame(IP(src=OUTSIDE, dst="10.0.3.16") / TCP(dport=1003))
    assert ip_verdict(table, probe) == 0
    assert ip_verdict(table, frame(IP(src=OUTSIDE, dst="10.0.3.16") / UDP())) == 1
    assert ip_verdict(table, frame(IP(src=OUTSIDE, dst="10.0.3.17") / UDP())) == -1


def shift_child(lo: int, hi: int, root_shift: int) -> int:
    """1 if a leaf bucket is narrower than a root bucket (it sits in a child node)."""
    return int(hi - lo < (1 << root_shift))


def test_describe_says_what_the_table_holds(firewall):
    text = firewall["inbound"][1].describe()
    assert text.startswith("12 rules -> 11 alternatives; no match -> -1")
    assert "field ip.src: 13 intervals" in text and "each with its answer" in text
    with no_folding():
        unfolded = compile_ipfilter(firewall["inbound"][0]).describe()
    assert "AND ip.dst: 4 classes x 1 words" in unfolded


def test_evaluate_reads_fields_as_documented():
    packet = frame(IP(src="1.2.3.4", dst="5.6.7.8", ttl=9, tos=0x2d, id=77) / TCP(
        sport=1000, dport=2000, flags="SA", window=512))
    value = {name: dec.field_value(spec, packet, L3) for name, spec in FIELDS.items()}
    assert value["ip.src"] == 0x01020304 and value["ip.dst"] == 0x05060708
    assert value["ip.ttl"] == 9 and value["ip.dscp"] == 0x2d >> 2 and value["ip.ecn"] == 1
    assert value["ip.id"] == 77 and value["ip.vers"] == 4 and value["ip.hl"] == 5
    assert value["l4.sport"] == 1000 and value["l4.dport"] == 2000
    assert value["tcp.flags"] == 0x12 and value["tcp.win"] == 512
    assert value["icmp.type"] is None                      # not ICMP: absent
    assert evaluate(parse_expr("not icmp type echo"), packet, L3)
    assert not evaluate(parse_expr("icmp type != echo"), packet, L3)
    assert evaluate_pattern(parse_pattern("!12/86dd"), packet)
