"""ARPResponder and ICMPPingResponder, with scapy traffic, on both targets.

Each test runs twice through `nf_factory` (tests/conftest.py): `[host]` and
`[unikernel]`.  Every expected reply is built by scapy from the request, the way
the element's manual page (and Click's) describes it — an ARP reply with scapy's
ARP(op=2, ...), an echo reply with the addresses swapped and scapy's checksums —
and compared with the exact bytes the target sent.  Frames that are not
answered must leave by output 1 byte for byte, or be dropped under their reason.
"""
from __future__ import annotations

import re

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_NOP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Padding, Raw

from conftest import errors_of
from nfv import drops
from nfv.element import registry

ASKER_MAC = "02:00:00:00:00:aa"
ASKER_IP = "10.0.0.99"
MAC_1 = "02:00:00:00:00:01"
MAC_2 = "02:00:00:00:00:02"
MAC_3 = "02:00:00:00:00:03"

# Device 0 -> arp (answers on 1, the rest on 2); device 3 -> arp1 (output 1 unconnected).
# Device 4 -> checked IP -> ping (answers on 1, the rest on 2); device 5 -> marked, not
# checked, IP -> ping1 (output 1 unconnected).
CONFIG = f"""
FromDevice(0) -> arp :: ARPResponder(10.0.0.1 {MAC_1},
                                     192.168.7.0/24 10.0.0.0/8 {MAC_2},
                                     192.168.7.5/255.255.255.255 {MAC_3}) -> ToDevice(1);
arp[1] -> ToDevice(2);
FromDevice(3) -> arp1 :: ARPResponder({MAC_1} 10.0.0.1) -> ToDevice(1);
FromDevice(4) -> CheckIPHeader(14) -> ping :: ICMPPingResponder -> ToDevice(1);
ping[1] -> ToDevice(2);
FromDevice(5) -> MarkIPHeader(14) -> ping1 :: ICMPPingResponder -> ToDevice(1);
"""

# compiled in the background while earlier tests run (tests/conftest.py)
PREBUILD = [(CONFIG, "both")]


def run(nf, packets, port) -> dict:
    """{output device: [frame bytes]} as the target sent them."""
    nf.send(packets, port)
    return {k: v.to_list() for k, v in nf.last_result.outputs.items() if len(v)}


# -- ARPResponder ----------------------------------------------------------------------


def arp_request(target_ip, sender_ip=ASKER_IP, sender_mac=ASKER_MAC, eth_src=None):
    return bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=eth_src or sender_mac)
                 / ARP(op=1, hwsrc=sender_mac, psrc=sender_ip, hwdst="00:00:00:00:00:00",
                       pdst=target_ip))


def arp_reply(our_ip, our_mac, asker_ip=ASKER_IP, asker_mac=ASKER_MAC):
    """The reply Click's ARPResponder makes, written with scapy."""
    return bytes(Ether(dst=asker_mac, src=our_mac)
                 / ARP(op=2, hwsrc=our_mac, psrc=our_ip, hwdst=asker_mac, pdst=asker_ip))


def test_arp_request_for_our_address_is_answered(nf_factory):
    nf = nf_factory(CONFIG)
    out = run(nf, [arp_request("10.0.0.1")], 0)
    assert out == {1: [arp_reply("10.0.0.1", MAC_1)]}
    assert len(out[1][0]) == 42
    assert nf.read("arp.count") == "1"
    assert nf.read("arp.drops") == "0"


def test_arp_prefixes_most_specific_first(nf_factory):
    nf = nf_factory(CONFIG)
    asked = ["10.9.8.7", "192.168.7.6", "192.168.7.5", "10.0.0.1", "10.0.0.2"]
    out = run(nf, [arp_request(a) for a in asked], 0)
    assert out == {1: [arp_reply("10.9.8.7", MAC_2), arp_reply("192.168.7.6", MAC_2),
                       arp_reply("192.168.7.5", MAC_3), arp_reply("10.0.0.1", MAC_1),
                       arp_reply("10.0.0.2", MAC_2)]}
    assert nf.read("arp.count") == "5"


def test_arp_reply_goes_to_the_arp_sender_and_drops_padding(nf_factory):
    nf = nf_factory(CONFIG)
    # the Ethernet source differs from the ARP sender: Click answers the ARP sender
    other = arp_request("10.0.0.1", sender_mac="02:00:00:00:00:bb", eth_src="02:00:00:00:00:cc")
    padded = bytes(Ether(arp_request("192.168.7.200")) / Padding(b"\0" * 18))
    assert len(padded) == 60
    out = run(nf, [other, padded], 0)
    assert out == {1: [arp_reply("10.0.0.1", MAC_1, asker_mac="02:00:00:00:00:bb"),
                       arp_reply("192.168.7.200", MAC_2)]}


def patched(frame: bytes, at: int, value: bytes) -> bytes:
    return frame[:at] + value + frame[at + len(value):]


NOT_ANSWERED = {
    "other address": arp_request("172.16.0.1"),
    "an ARP reply": bytes(Ether(src=ASKER_MAC, dst=MAC_1)
                          / ARP(op=2, hwsrc=ASKER_MAC, psrc=ASKER_IP, hwdst=MAC_1,
                                pdst="10.0.0.1")),
    "truncated": arp_request("10.0.0.1")[:41],
    "hardware type 6": patched(arp_request("10.0.0.1"), 14, b"\x00\x06"),
    "protocol IPv6": patched(arp_request("10.0.0.1"), 16, b"\x86\xdd"),
    "hardware length 8": patched(arp_request("10.0.0.1"), 18, b"\x08"),
    "protocol length 6": patched(arp_request("10.0.0.1"), 19, b"\x06"),
    "RARP request": patched(arp_request("10.0.0.1"), 20, b"\x00\x03"),
    "not ARP": bytes(Ether(src=ASKER_MAC, dst=MAC_1) / IP(src=ASKER_IP, dst="10.0.0.1")
                     / UDP() / Raw(b"z" * 20)),
    "ARP ethertype, IPv4 inside": patched(bytes(Ether(src=ASKER_MAC, dst=MAC_1)
                                                / IP(dst="10.0.0.1") / ICMP()), 12, b"\x08\x06"),
}


def test_arp_frames_not_answered_leave_by_output_1_unchanged(nf_factory):
    nf = nf_factory(CONFIG)
    frames = list(NOT_ANSWERED.values())
    out = run(nf, frames, 0)
    assert out == {2: frames}
    assert nf.read("arp.count") == "0"
    assert nf.read("arp.drops") == "0"
    assert nf.last_result.drops == {}


def test_arp_not_answered_and_output_1_unconnected_are_dropped_and_counted(nf_factory):
    nf = nf_factory(CONFIG)
    frames = list(NOT_ANSWERED.values())
    out = run(nf, frames + [arp_request("10.0.0.1")], 3)
    assert out == {1: [arp_reply("10.0.0.1", MAC_1)]}
    assert nf.last_result.drops == {drops.NOT_ARP_REQUEST: len(frames)}
    assert nf.read("arp1.drops") == str(len(frames))
    assert nf.read("arp1.count") == "1"


def test_arp_table_handler(nf_factory):
    nf = nf_factory(CONFIG)
    assert nf.read("arp.table").splitlines() == [
        f"10.0.0.1/32 {MAC_1}", f"192.168.7.5/32 {MAC_3}",
        f"192.168.7.0/24 {MAC_2}", f"10.0.0.0/8 {MAC_2}"]
    assert nf.read("arp1.table") == f"10.0.0.1/32 {MAC_1}\n"


@pytest.mark.parametrize("config, fragment", [
    ("ARPResponder(10.0.0.1)", "missing ETH"),
    (f"ARPResponder({MAC_1})", "missing IP/MASK"),
    (f"ARPResponder(10.0.0.1 {MAC_1} {MAC_2})", "more than one ETH"),
    (f"ARPResponder(10.0.0.1 {MAC_1}, 10.0.0.300 {MAC_2})", "expected IP/MASK or ETH"),
    ("ARPResponder()", "needs at least 1 ENTRY"),
])
def test_arp_config_errors(config, fragment):
    errors = errors_of(f"FromDevice(0) -> {config} -> ToDevice(1);")
    assert any(fragment in e.message for e in errors), [e.message for e in errors]


# -- ICMPPingResponder -----------------------------------------------------------------


def ping(src="198.51.100.7", dst="192.0.2.1", payload=b"abcdefghijklmnopqrstuvwx", **ip):
    icmp = {k: ip.pop(k) for k in ("type", "code", "id", "seq") if k in ip}
    return bytes(Ether(src=ASKER_MAC, dst=MAC_1) / IP(src=src, dst=dst, **ip)
                 / ICMP(**icmp) / Raw(payload))


def echo_reply(frame: bytes) -> bytes:
    """The reply as Click's ICMPPingResponder makes it, by scapy: addresses swapped,
    flags and fragment offset 0, TTL 255, type and code 0, both checksums recomputed."""
    p = Ether(frame)
    p[IP].src, p[IP].dst = p[IP].dst, p[IP].src
    p[IP].flags, p[IP].frag, p[IP].ttl = 0, 0, 255
    del p[IP].chksum
    p[ICMP].type, p[ICMP].code = 0, 0
    del p[ICMP].chksum
    return bytes(p)


def test_echo_request_is_answered(nf_factory):
    nf = nf_factory(CONFIG)
    requests = [
        ping(),
        ping(ttl=3, flags="DF", tos=0x10, id=777, seq=9),
        ping(payload=b"odd length!"),                       # an odd ICMP length
        ping(options=[IPOption_NOP()] * 4),                 # a 24-byte IP header
        ping(code=5, payload=b"\xff" * 40),                 # code not looked at; reply has 0
    ]
    out = run(nf, requests, 4)
    assert out == {1: [echo_reply(r) for r in requests]}
    for reply in out[1]:
        p = Ether(reply)
        assert p[ICMP].type == 0 and p[IP].ttl == 255 and p[IP].dst == "198.51.100.7"
    assert nf.read("ping.count") == str(len(requests))
    assert nf.read("ping.drops") == "0"


def short_icmp() -> bytes:
    """An IP packet whose ICMP message is 4 bytes: too short for an echo header."""
    p = IP(src="198.51.100.7", dst="192.0.2.1", proto=1) / Raw(b"\x08\x00\xf7\xff")
    return bytes(Ether(src=ASKER_MAC, dst=MAC_1) / IP(bytes(p)))


ICMP_NOT_ANSWERED = {
    "echo reply": ping(type=0),
    "destination unreachable": ping(type=3, code=1),
    "timestamp request": ping(type=13),
    "udp": bytes(Ether(src=ASKER_MAC, dst=MAC_1) / IP(dst="192.0.2.1") / UDP()
                 / Raw(b"\x08" * 20)),
    "tcp": bytes(Ether(src=ASKER_MAC, dst=MAC_1) / IP(dst="192.0.2.1") / TCP()
                 / Raw(b"\x08" * 20)),
    "first fragment": ping(flags="MF"),
    "later fragment": ping(frag=3),
    "ICMP shorter than an echo header": short_icmp(),
}


def test_other_ip_leaves_by_output_1_unchanged(nf_factory):
    nf = nf_factory(CONFIG)
    frames = list(ICMP_NOT_ANSWERED.values())
    out = run(nf, frames, 4)
    assert out == {2: frames}
    assert nf.read("ping.count") == "0"
    assert nf.read("ping.drops") == "0"


def test_ping_not_answered_and_output_1_unconnected_are_dropped_and_counted(nf_factory):
    nf = nf_factory(CONFIG)
    frames = list(ICMP_NOT_ANSWERED.values())
    bad_version = patched(ping(), 14, b"\x65")
    bad_ihl = patched(ping(), 14, b"\x44")
    long_ip = patched(ping(), 16, (1000).to_bytes(2, "big"))   # IP length past the frame
    no_room = bytes(Ether(src=ASKER_MAC, dst=MAC_1, type=0x0800) / Raw(b"\x45" * 10))
    request = ping(src="203.0.113.9")
    out = run(nf, frames + [bad_version, bad_ihl, long_ip, no_room, request], 5)
    # MarkIPHeader checks nothing, so the reply keeps whatever the frame carried
    assert out == {1: [echo_reply(request)]}
    assert nf.last_result.drops == {drops.NOT_ECHO: len(frames) + 3,
                                    drops.NO_IP_HEADER: 1}
    assert nf.read("ping1.drops") == str(len(frames) + 4)
    assert nf.read("ping1.count") == "1"


# -- manuals ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ARPResponder", "ICMPPingResponder"])
def test_docstring_is_a_click_style_manual(name):
    cls = registry()[name]
    lines = [line.strip() for line in cls.__doc__.strip().splitlines()]
    assert lines[0] == cls.synopsis()
    assert lines[1] == "" and lines[2]
    for section in ("Ports", "Arguments", "Handlers", "Example", "See also"):
        assert section in lines, f"{name} lacks a {section} section"
    assert re.search(rf"\b{name}\b", lines[lines.index("Example") + 1])
    handlers_text = cls.__doc__[cls.__doc__.index("Handlers"):cls.__doc__.index("Example")]
    for h in cls.handlers:
        assert re.search(rf"^\s+{h.name} \(", handlers_text, re.M)
