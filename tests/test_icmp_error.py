"""ICMPError, with scapy traffic, on both targets.

Each test runs twice through `nf_factory` (tests/conftest.py): `[host]` and
`[unikernel]`.  Every expected error is built by scapy from the original packet,
as Click's ICMPError makes it (new IP header from SRC to the original source, TTL
200, the original IP header and 8 bytes of its payload), and compared with the
exact bytes the target sent.  Packets RFC 1812 forbids an error for are dropped
under reason no-icmp-error.
"""
from __future__ import annotations

import re

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_LSRR, IPOption_NOP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from conftest import errors_of
from nfv import drops
from nfv.element import registry

ASKER_MAC = "02:00:00:00:00:aa"
MAC_1 = "02:00:00:00:00:01"
MAC_2 = "02:00:00:00:00:02"
ROUTER = "192.0.2.1"

CONFIG = f"""
FromDevice(0) -> Strip(14) -> CheckIPHeader -> te :: ICMPError({ROUTER}, timeexceeded, transit)
  -> EtherEncap(0x0800, {MAC_1}, {MAC_2}) -> ToDevice(1);
FromDevice(2) -> MarkIPHeader(14) -> un :: ICMPError({ROUTER}, unreachable, needfrag, PMTU 1400)
  -> ToDevice(3);
FromDevice(4) -> Strip(14) -> CheckIPHeader -> rd :: ICMPError({ROUTER}, 5, host)
  -> EtherEncap(0x0800, {MAC_1}, {MAC_2}) -> ToDevice(1);
"""


def run(nf, packets, port) -> dict:
    nf.send(packets, port)
    return {k: v.to_list() for k, v in nf.last_result.outputs.items() if len(v)}


def frame(ip) -> bytes:
    return bytes(Ether(src=ASKER_MAC, dst=MAC_1) / ip)


def udp(src="198.51.100.7", dst="203.0.113.5", payload=b"abcdefghijklmnopqrstuvwx", **ip):
    return frame(IP(src=src, dst=dst, **ip) / UDP(sport=1234, dport=33434) / Raw(payload))


def icmp_error(fr: bytes, ident: int, type=11, code=0, **icmp) -> bytes:
    """The error Click's ICMPError makes about frame `fr`, by scapy, in Ethernet."""
    orig = Ether(fr)[IP]
    quoted = bytes(fr[14:])[:orig.ihl * 4 + 8]
    return bytes(Ether(src=MAC_1, dst=MAC_2)
                 / IP(src=ROUTER, dst=orig.src, ttl=200, id=ident)
                 / ICMP(type=type, code=code, **icmp) / Raw(quoted))


def test_time_exceeded_is_made_in_place(nf_factory):
    nf = nf_factory(CONFIG)
    originals = [
        udp(),
        udp(ttl=1, tos=0x10, flags="DF", id=4242),
        udp(options=[IPOption_NOP()] * 8),                   # a 28-byte header quoted whole
        frame(IP(src="198.51.100.8", dst="203.0.113.5") / TCP(sport=80, dport=9)),
        frame(IP(src="198.51.100.9", dst="203.0.113.5") / ICMP(type=8) / Raw(b"ping")),
        udp(flags="MF"),                                     # a first fragment is answered
    ]
    out = run(nf, originals, 0)
    assert out == {1: [icmp_error(f, n + 1) for n, f in enumerate(originals)]}
    for sent, f in zip(out[1], originals):
        p = Ether(sent)
        assert p[IP].dst == Ether(f)[IP].src and p[ICMP].type == 11
        assert len(sent) == 14 + 28 + Ether(f)[IP].ihl * 4 + 8
    assert nf.read("te.count") == str(len(originals))
    assert nf.read("te.drops") == "0"


def test_short_original_is_quoted_whole(nf_factory):
    nf = nf_factory(CONFIG)
    # an IP packet with 3 bytes of payload: the error quotes header + 3 (an odd length)
    short = frame(IP(src="198.51.100.7", dst="203.0.113.5", proto=17) / Raw(b"xyz"))
    out = run(nf, [short], 0)
    assert out == {1: [icmp_error(short, 1)]}
    assert len(out[1][0]) == 14 + 28 + 20 + 3


def test_needfrag_carries_pmtu_and_leaves_ethernet_header_out(nf_factory):
    nf = nf_factory(CONFIG)
    f = udp(flags="DF")
    out = run(nf, [f], 2)
    want = icmp_error(f, 1, type=3, code=4, nexthopmtu=1400)[14:]
    assert out == {3: [want]}
    # truncated original, MarkIPHeader checks nothing: quote what there is
    cut = udp()[:14 + 20 + 5]
    out = run(nf, [cut], 2)
    assert out == {3: [icmp_error(cut, 2, type=3, code=4, nexthopmtu=1400)[14:]]}


def test_redirect_gateway_and_source_route(nf_factory):
    nf = nf_factory(CONFIG)
    f = udp()
    routed = frame(IP(src="198.51.100.7", dst="203.0.113.5",
                      options=[IPOption_LSRR(routers=["10.0.0.1"])]) / UDP() / Raw(b"q" * 8))
    out = run(nf, [f, routed], 4)
    # the redirect's gateway is the destination IP annotation (CheckIPHeader set it)
    assert out == {1: [icmp_error(f, 1, type=5, code=1, gw="203.0.113.5")]}
    assert nf.last_result.drops == {drops.NO_ICMP_ERROR: 1}


NOT_ANSWERED = {
    "ICMP time exceeded": frame(IP(src="198.51.100.7", dst="203.0.113.5")
                                / ICMP(type=11) / Raw(b"x" * 28)),
    "ICMP unreachable": frame(IP(src="198.51.100.7", dst="203.0.113.5")
                              / ICMP(type=3, code=3) / Raw(b"x" * 28)),
    "ICMP redirect": frame(IP(src="198.51.100.7", dst="203.0.113.5") / ICMP(type=5)),
    "broadcast destination": udp(dst="255.255.255.255"),
    "multicast destination": udp(dst="224.0.0.251"),
    "broadcast source": udp(src="255.255.255.255"),
    "multicast source": udp(src="239.1.2.3"),
    "source 0.0.0.0": udp(src="0.0.0.0"),
    "source in net 0": udp(src="0.1.2.3"),
    "loopback source": udp(src="127.0.0.1"),
    "class E source": udp(src="240.0.0.1"),
    "later fragment": udp(frag=3),
    "last fragment": udp(frag=100, flags=0),
}


def test_rfc1812_cases_are_dropped_and_counted(nf_factory):
    nf = nf_factory(CONFIG)
    frames = list(NOT_ANSWERED.values())
    # MarkIPHeader, not CheckIPHeader, which would refuse some of these sources itself
    out = run(nf, frames + [udp()], 2)
    assert out == {3: [icmp_error(udp(), 1, type=3, code=4, nexthopmtu=1400)[14:]]}
    assert nf.last_result.drops == {drops.NO_ICMP_ERROR: len(frames)}
    assert nf.read("un.drops") == str(len(frames))
    assert nf.read("un.count") == "1"


def test_no_ip_header_is_dropped(nf_factory):
    nf = nf_factory(CONFIG)
    tiny = bytes(Ether(src=ASKER_MAC, dst=MAC_1, type=0x0800) / Raw(b"\x45" * 10))
    out = run(nf, [tiny], 2)
    assert out == {}
    assert nf.last_result.drops == {drops.NO_IP_HEADER: 1}


def test_handlers(nf_factory):
    nf = nf_factory(CONFIG)
    assert nf.read("te.src") == ROUTER
    assert nf.read("te.type") == "11" and nf.read("te.code") == "0"
    assert nf.read("un.type") == "3" and nf.read("un.code") == "4"


@pytest.mark.parametrize("config, fragment", [
    ("ICMPError(192.0.2.1)", "TYPE"),
    ("ICMPError(192.0.2.1, echo)", "ICMP error type"),
    ("ICMPError(192.0.2.1, 8)", "not an error type"),
    ("ICMPError(192.0.2.1, timeexceeded, needfrag)", "ICMP code"),
    ("ICMPError(192.0.2.1, unreachable, 256)", "ICMP code"),
])
def test_config_errors(config, fragment):
    errors = errors_of(f"FromDevice(0) -> MarkIPHeader(14) -> {config} -> ToDevice(1);")
    assert any(fragment in e.message for e in errors), [e.message for e in errors]


def test_docstring_is_a_click_style_manual():
    cls = registry()["ICMPError"]
    lines = [line.strip() for line in cls.__doc__.strip().splitlines()]
    assert lines[0] == cls.synopsis()
    for section in ("Ports", "Arguments", "Handlers", "Example", "See also"):
        assert section in lines
    assert re.search(r"\bICMPError\b", cls.__doc__[cls.__doc__.index("Example"):])


# -- rate limiting (RFC 1812 4.3.2.8) ------------------------------------------------------

RATED = f"""
FromDevice(0) -> Strip(14) -> CheckIPHeader -> lim :: ICMPError({ROUTER}, timeexceeded, RATE 10, BURST 3)
  -> EtherEncap(0x0800, {MAC_1}, {MAC_2}) -> ToDevice(1);
FromDevice(2) -> Strip(14) -> CheckIPHeader -> free :: ICMPError({ROUTER}, timeexceeded, RATE 0)
  -> EtherEncap(0x0800, {MAC_1}, {MAC_2}) -> ToDevice(1);
FromDevice(4) -> Strip(14) -> CheckIPHeader -> dflt :: ICMPError({ROUTER}, timeexceeded)
  -> EtherEncap(0x0800, {MAC_1}, {MAC_2}) -> ToDevice(1);
"""

# compiled in the background while earlier tests run (tests/conftest.py)
PREBUILD = [(CONFIG, "both"), (RATED, "both")]
SECOND = 1_000_000_000


def run_at(nf, packets, port, now_ns) -> dict:
    """As `run`, at a clock the test sets (the host's HostNF.run now_ns)."""
    from nfv.dataplane.pcap import PacketList

    result = nf.host.run(PacketList.from_bytes(packets, ports=[port] * len(packets)), now_ns)
    nf.last_result = result
    return {k: v.to_list() for k, v in result.outputs.items() if len(v)}


def test_burst_then_rate_limited(nf_factory):
    """Within one instant (the clock the target has), BURST errors, then none: this
    holds on the guest's clock too, the packets of one send taking far less than the
    100 ms a token needs at RATE 10."""
    nf = nf_factory(RATED)
    originals = [udp(payload=bytes([k]) * 9) for k in range(5)]
    out = run(nf, originals, 0)
    assert out == {1: [icmp_error(f, n + 1) for n, f in enumerate(originals[:3])]}
    assert nf.last_result.drops == {drops.RATE_LIMITED: 2}
    assert nf.read("lim.rate_limited") == "2" and nf.read("lim.count") == "3"
    assert nf.read("lim.drops") == "2"
    assert nf.read("lim.rate") == "10" and nf.read("lim.burst") == "3"
    assert nf.read("dflt.rate") == "1000" and nf.read("dflt.burst") == "50"


def test_rate_zero_is_unlimited(nf_factory):
    nf = nf_factory(RATED)
    originals = [udp(payload=bytes([k % 256]) * 9) for k in range(120)]
    out = run(nf, originals, 2)
    assert len(out[1]) == 120 and nf.last_result.drops == {}
    assert nf.read("free.rate_limited") == "0"


@pytest.mark.host_only("steps the pipeline's clock with now_ns, which the guest takes "
                       "from its own kvmclock")
def test_tokens_come_back_at_the_rate(nf_factory):
    nf = nf_factory(RATED)
    t0 = 50 * SECOND
    f = udp()
    assert len(run_at(nf, [f] * 4, 0, t0)[1]) == 3                      # the burst
    assert run_at(nf, [f], 0, t0 + 99_000_000) == {}                   # 0.99 token
    assert nf.last_result.drops == {drops.RATE_LIMITED: 1}
    assert len(run_at(nf, [f, f], 0, t0 + 100_000_000)[1]) == 1        # one token
    assert len(run_at(nf, [f] * 5, 0, t0 + 10 * SECOND)[1]) == 3       # never above BURST
    assert nf.read("lim.rate_limited") == "5"
    # a clock that goes back adds nothing and restarts from there
    assert run_at(nf, [f], 0, t0) == {}
    assert len(run_at(nf, [f], 0, t0 + 100_000_000)[1]) == 1


@pytest.mark.host_only("steps the pipeline's clock with now_ns, which the guest takes "
                       "from its own kvmclock")
def test_default_is_linux_like(nf_factory):
    nf = nf_factory(RATED)
    f = udp()
    assert len(run_at(nf, [f] * 60, 4, SECOND)[1]) == 50
    assert nf.last_result.drops == {drops.RATE_LIMITED: 10}
    assert len(run_at(nf, [f] * 20, 4, SECOND + 10_000_000)[1]) == 10   # 1000/s for 10 ms


@pytest.mark.parametrize("config, fragment", [
    ("ICMPError(192.0.2.1, timeexceeded, RATE -1)", "RATE"),
    ("ICMPError(192.0.2.1, timeexceeded, BURST 0)", "BURST"),
])
def test_rate_config_errors(config, fragment):
    errors = errors_of(f"FromDevice(0) -> MarkIPHeader(14) -> {config} -> ToDevice(1);")
    assert any(fragment in e.message for e in errors), [e.message for e in errors]
