"""configs/firewall.click against an oracle written from the config's comments and rules.

The oracle below is plain Python: it reads no nfv code (no parser, no classifier),
only what the config says -- ARP passes both ways untouched; IPv4 is checked
(version, lengths, checksum, source 255.255.255.255), filtered first-match, its
TTL decremented (expired packets counted and dropped); anything else is counted
and dropped.  It predicts, per packet, whether it leaves and its exact bytes
(trimmed to the IP length, TTL - 1, header checksum recomputed by scapy), and
every counter.  Traffic is a seeded scapy mix of everything a firewall meets.

Every test taking `nf_factory` runs on both targets (tests/conftest.py): `[host]`
and `[unikernel]`, the config booted under QEMU.  The expectations are the same,
so passing on both is the two targets agreeing byte for byte.  The traffic keeps
to frames a NIC of either target carries (1..1920 bytes).
"""
from __future__ import annotations

import ipaddress
import random
import struct
from dataclasses import dataclass, field

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_NOP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from nfv import drops
from nfv.dataplane.pcap import PacketList

from conftest import ROOT, ones_sum

FIREWALL = str(ROOT / "configs" / "firewall.click")

net = ipaddress.IPv4Network
addr = ipaddress.IPv4Address

# The config's define()s, and its literal networks.
DEFAULTS = dict(SERVERS="192.0.2.0/24", ADMIN="198.51.100.0/24", DNS="192.0.2.53",
                MAIL="192.0.2.25")
PRIVATE = [net("10.0.0.0/8"), net("172.16.0.0/12"), net("192.168.0.0/16")]
LOOPBACK = net("127.0.0.0/8")
WAN_MAC, LAN_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"


# -- the oracle -------------------------------------------------------------------------


def checked(frame: bytes) -> bytes | None:
    """CheckIPHeader(OFFSET 14): the frame trimmed to the IP length, or None if bad."""
    ip = frame[14:]
    if len(ip) < 20 or ip[0] >> 4 != 4:
        return None
    hlen = (ip[0] & 0xF) * 4
    if hlen < 20 or hlen > len(ip):
        return None
    total = struct.unpack(">H", ip[2:4])[0]
    if total < hlen or total > len(ip):
        return None
    if ones_sum(ip[:hlen]) != 0xFFFF:
        return None
    if ip[12:16] == b"\xff\xff\xff\xff":
        return None
    return frame[:14 + total]


@dataclass
class View:
    src: ipaddress.IPv4Address
    dst: ipaddress.IPv4Address
    proto: int
    ttl: int
    fragment: bool            # MF set or a fragment offset (`ip frag`)
    dport: int | None         # None: not TCP/UDP, a later fragment, or not in the packet
    icmp_type: int | None


def view(frame: bytes) -> View:
    ip = frame[14:]           # already trimmed to the IP length
    hlen = (ip[0] & 0xF) * 4
    word = struct.unpack(">H", ip[6:8])[0]
    first = word & 0x1FFF == 0
    l4 = ip[hlen:]
    proto = ip[9]
    dport = struct.unpack(">H", l4[2:4])[0] if first and proto in (6, 17) and len(l4) >= 4 \
        else None
    icmp_type = l4[0] if first and proto == 1 and len(l4) >= 1 else None
    return View(addr(ip[12:16]), addr(ip[16:20]), proto, ip[8], word & 0x3FFF != 0, dport,
                icmp_type)


def inbound_allows(v: View, d: dict) -> bool:
    servers, admin = net(d["SERVERS"]), net(d["ADMIN"])
    dns, mail = addr(d["DNS"]), addr(d["MAIL"])
    tcp, udp = v.proto == 6, v.proto == 17
    if any(v.src in n for n in PRIVATE):
        return False
    if v.src in LOOPBACK or v.src in servers:
        return False
    if v.fragment:
        return False
    if v.src in admin and tcp and v.dport == 22:
        return True
    if v.dst in servers and tcp and v.dport in (80, 443):
        return True
    if v.dst == dns and (udp or tcp) and v.dport == 53:
        return True
    if v.dst == mail and tcp and v.dport == 25:
        return True
    if v.dst in servers and v.proto == 1 and v.icmp_type in (8, 3, 11):
        return True
    return False


def outbound_allows(v: View, d: dict) -> bool:
    return v.src in net(d["SERVERS"])


def ttl_decremented(frame: bytes) -> bytes:
    """TTL - 1 with the header checksum recomputed by scapy; all other bytes unchanged."""
    hlen = (frame[14] & 0xF) * 4
    header = IP(frame[14:14 + hlen])
    header.ttl -= 1
    del header.chksum
    new = bytes(header)[:hlen]
    assert len(new) == hlen
    return frame[:14] + new + frame[14 + hlen:]


@dataclass
class Side:
    """What one direction of the firewall should do with a list of frames."""

    out: list = field(default_factory=list)          # frames leaving, in order
    allowed: int = 0
    allowed_bytes: int = 0
    other: int = 0
    expired: int = 0
    bad_ip: int = 0
    filtered: int = 0


def oracle(frames: list[bytes], allows, d: dict) -> Side:
    side = Side()
    for f in frames:
        ethertype = f[12:14] if len(f) >= 14 else None
        if ethertype == b"\x08\x06":
            side.out.append(f)
        elif ethertype == b"\x08\x00":
            good = checked(f)
            if good is None:
                side.bad_ip += 1
            elif not allows(view(good), d):
                side.filtered += 1
            else:
                side.allowed += 1
                side.allowed_bytes += len(good)
                if good[22] <= 1:
                    side.expired += 1
                else:
                    side.out.append(ttl_decremented(good))
        else:
            side.other += 1
    return side


# -- traffic ------------------------------------------------------------------------------


def _ip_to(rng: random.Random, d: dict, toward_lan: bool) -> str:
    servers = net(d["SERVERS"])
    if toward_lan:
        return rng.choice([d["DNS"], d["MAIL"], str(servers[rng.randrange(1, 255)]),
                           str(servers[80]), "203.0.113.5", "192.0.3.1"])
    return rng.choice(["203.0.113.5", "8.8.8.8", str(net(d["ADMIN"])[9])])


def _ip_from(rng: random.Random, d: dict, from_wan: bool) -> str:
    servers = net(d["SERVERS"])
    if from_wan:
        return rng.choice([
            str(net(d["ADMIN"])[rng.randrange(1, 255)]), str(net(d["ADMIN"])[7]),
            f"203.0.113.{rng.randrange(1, 255)}", "8.8.4.4", "198.51.101.1",
            f"{rng.randrange(11, 100)}.{rng.randrange(256)}.{rng.randrange(256)}.1",
            f"203.0.113.{rng.randrange(1, 255)}", "8.8.4.4", "198.51.101.1",
            f"10.{rng.randrange(256)}.1.2", f"172.{rng.choice([15, 16, 20, 31, 32])}.0.9",
            f"192.168.{rng.randrange(256)}.3", "192.169.0.1", "127.0.0.1",
            str(servers[rng.randrange(1, 255)]), "0.0.0.0",
        ])
    return rng.choice([str(servers[rng.randrange(1, 255)]), d["DNS"], "10.0.0.5", "192.0.3.9",
                       "203.0.113.77"])


def make_traffic(rng: random.Random, n: int, d: dict, from_wan: bool) -> list[bytes]:
    src_mac, dst_mac = (WAN_MAC, LAN_MAC) if from_wan else (LAN_MAC, WAN_MAC)
    eth = Ether(src=src_mac, dst=dst_mac)
    frames = []
    for k in range(n):
        roll = rng.random()
        if roll < 0.05:
            frames.append(bytes(eth / ARP(op=rng.choice([1, 2]), psrc="192.0.2.1",
                                          pdst="192.0.2.7")))
            continue
        if roll < 0.08:
            frames.append(bytes(Ether(src=src_mac, dst=dst_mac, type=0x86DD) / IPv6() / UDP()))
            continue
        if roll < 0.10:
            frames.append(bytes(eth / ARP())[:rng.randrange(0, 14)] or b"\x08")  # runt, never empty
            continue
        if roll < 0.11:
            frames.append(bytes(Ether(src=src_mac, dst=dst_mac, type=rng.choice(
                [0x8100, 0x88CC, 0x0805, 0x0000])) / Raw(b"o" * 40)))
            continue
        src, dst = _ip_from(rng, d, from_wan), _ip_to(rng, d, from_wan)
        ttl = rng.choice([0, 1, 2, 64, 64, 64, 255])
        ip_kw = dict(src=src, dst=dst, ttl=ttl, id=rng.randrange(65536))
        frag = rng.random()
        if frag < 0.08:
            ip_kw["flags"] = "MF"                                  # first fragment
        elif frag < 0.14:
            ip_kw["frag"] = rng.randrange(1, 8192)                  # a later fragment
            ip_kw["flags"] = rng.choice(["", "MF"])
        elif frag < 0.3:
            ip_kw["flags"] = "DF"                                  # not a fragment
        if rng.random() < 0.1:
            ip_kw["options"] = [IPOption_NOP()] * (4 * rng.randrange(1, 4))
        kind = rng.random()
        port = rng.choice([22, 25, 53, 53, 80, 80, 443, 443, 8080, 23, rng.randrange(1, 65536)])
        if kind < 0.5:
            l4 = TCP(sport=rng.randrange(1024, 65536), dport=port,
                     flags=rng.choice(["S", "SA", "A", "PA", "F"]))
        elif kind < 0.75:
            l4 = UDP(sport=rng.choice([53, 5000]), dport=port)
        elif kind < 0.95:
            l4 = ICMP(type=rng.choice([0, 3, 5, 8, 8, 11, 13]))
        else:
            l4 = None
            ip_kw["proto"] = rng.choice([47, 50, 132])
        pkt = eth / IP(**ip_kw)
        if l4 is not None:
            pkt = pkt / l4
        pkt = pkt / Raw(bytes([rng.randrange(256)]) * rng.randrange(0, 64))
        frame = bytes(pkt)
        damage = rng.random()
        if damage < 0.05:
            frame = frame[:14] + frame[14:16] + bytes([frame[16] ^ 0xFF]) + frame[17:]  # length
        elif damage < 0.10:
            frame = frame[:24] + bytes([frame[24] ^ 0x5A]) + frame[25:]    # header checksum
        elif damage < 0.14:
            frame = frame[:rng.randrange(14, len(frame))]                   # truncated
        elif damage < 0.16:
            p = Ether(frame)
            p[IP].version = rng.choice([0, 5, 6, 15])
            del p[IP].chksum
            frame = bytes(p)
        elif damage < 0.18:
            p = Ether(frame)
            p[IP].ihl = rng.randrange(0, 5)
            frame = bytes(p)
        elif damage < 0.20:
            p = Ether(frame)
            p[IP].src = "255.255.255.255"
            del p[IP].chksum
            frame = bytes(p)
        elif damage < 0.24:
            # the IP length ends inside the transport header (ports not there)
            hlen = (frame[14] & 0xF) * 4
            p = Ether(frame)
            p[IP].len = min(hlen + rng.randrange(0, 4), len(frame) - 14)
            del p[IP].chksum
            frame = bytes(p)
        if rng.random() < 0.25:
            frame += bytes(rng.randrange(1, 30))                              # Ethernet padding
        frames.append(frame)
    return frames


# -- the tests ---------------------------------------------------------------------------


def check_ip_name(nf, classifier: str) -> str:
    """The anonymous CheckIPHeader behind `classifier`'s output 1 (its name is generated)."""
    for c in nf.host.graph.connections:
        if c.src == classifier and c.src_port == 1:
            return c.dst
    raise AssertionError(f"nothing behind {classifier}[1]")


def traffic_summary(side: Side) -> str:
    return (f"out={len(side.out)} allowed={side.allowed} other={side.other} "
            f"expired={side.expired} bad={side.bad_ip} filtered={side.filtered}")


@pytest.fixture(scope="module")
def wan_traffic():
    return make_traffic(random.Random(20240601), 700, DEFAULTS, from_wan=True)


@pytest.fixture(scope="module")
def lan_traffic():
    return make_traffic(random.Random(4242), 250, DEFAULTS, from_wan=False)


def test_traffic_mix_covers_every_verdict(wan_traffic, lan_traffic):
    """The mix is only worth something if every branch of the config is taken."""
    wan = oracle(wan_traffic, inbound_allows, DEFAULTS)
    lan = oracle(lan_traffic, outbound_allows, DEFAULTS)
    for side in (wan, lan):
        s = traffic_summary(side)
        assert side.allowed - side.expired >= 20, s
        assert side.expired >= 5 and side.other >= 10 and side.bad_ip >= 20, s
        assert side.filtered >= 20, s
    # every frame can be sent into either target (the VM's NICs carry 1..1920 bytes)
    assert all(1 <= len(f) <= 1920 for f in wan_traffic + lan_traffic)
    arp = sum(1 for f in wan_traffic if f[12:14] == b"\x08\x06")
    assert arp >= 10
    # fragments that got past the checks and the spoofing rules and met `deny ip frag`
    frag_denied = 0
    for f in wan_traffic:
        good = checked(f) if f[12:14] == b"\x08\x00" else None
        if good is not None:
            v = view(good)
            if v.fragment and not any(v.src in n for n in PRIVATE) \
                    and v.src not in LOOPBACK and v.src not in net(DEFAULTS["SERVERS"]):
                frag_denied += 1
    assert frag_denied >= 10


def test_inbound(nf_factory, wan_traffic):
    nf = nf_factory(FIREWALL)
    want = oracle(wan_traffic, inbound_allows, DEFAULTS)
    out = nf.send(wan_traffic, port=0)
    result = nf.last_result
    assert set(out) <= {1}
    got = result.outputs[1].to_list() if 1 in result.outputs else []
    assert len(got) == len(want.out), traffic_summary(want)
    for k, (g, w) in enumerate(zip(got, want.out)):
        assert g == w, f"output #{k}: got {g.hex()} want {w.hex()}"
    assert [bytes(p) for p in out.get(1, [])] == got
    assert result.drops == {r: n for r, n in ((drops.DISCARD, want.other + want.expired),
                                              (drops.BAD_IP, want.bad_ip),
                                              (drops.FILTERED, want.filtered)) if n}
    assert nf.read("from_wan.count") == str(len(wan_traffic))
    assert nf.read("to_lan.count") == str(len(want.out))
    assert nf.read("wan_allowed.count") == str(want.allowed)
    assert nf.read("wan_allowed.byte_count") == str(want.allowed_bytes)
    assert nf.read("wan_other.count") == str(want.other)
    assert nf.read("wan_expired.count") == str(want.expired)
    assert nf.read("inbound.drops") == str(want.filtered)
    assert nf.read(f"{check_ip_name(nf, 'wan_type')}.drops") == str(want.bad_ip)
    # nothing crossed into the other direction's counters
    for name in ("lan_allowed", "lan_other", "lan_expired"):
        assert nf.read(f"{name}.count") == "0"
    assert nf.read("to_wan.count") == "0"


def test_outbound(nf_factory, lan_traffic):
    nf = nf_factory(FIREWALL)
    want = oracle(lan_traffic, outbound_allows, DEFAULTS)
    out = nf.send(lan_traffic, port=1)
    result = nf.last_result
    assert set(out) <= {0}
    got = result.outputs[0].to_list() if 0 in result.outputs else []
    assert got == want.out, traffic_summary(want)
    assert result.drops == {r: n for r, n in ((drops.DISCARD, want.other + want.expired),
                                              (drops.BAD_IP, want.bad_ip),
                                              (drops.FILTERED, want.filtered)) if n}
    assert nf.read("lan_allowed.count") == str(want.allowed)
    assert nf.read("lan_allowed.byte_count") == str(want.allowed_bytes)
    assert nf.read("lan_other.count") == str(want.other)
    assert nf.read("lan_expired.count") == str(want.expired)
    assert nf.read("outbound.drops") == str(want.filtered)
    assert nf.read(f"{check_ip_name(nf, 'lan_type')}.drops") == str(want.bad_ip)
    assert nf.read("to_wan.count") == str(len(want.out))
    assert nf.read("wan_allowed.count") == "0"


def test_both_directions_interleaved_and_counters_accumulate(nf_factory, wan_traffic,
                                                            lan_traffic):
    """Both NICs in one run (as `nfv run` feeds them): each output keeps its order."""
    nf = nf_factory(FIREWALL)
    rng = random.Random(9)
    tagged = [(f, 0) for f in wan_traffic] + [(f, 1) for f in lan_traffic]
    rng.shuffle(tagged)
    frames = [f for f, _ in tagged]
    result = nf.host.run(PacketList.from_bytes(frames, ports=[p for _, p in tagged]))
    wan = oracle([f for f, p in tagged if p == 0], inbound_allows, DEFAULTS)
    lan = oracle([f for f, p in tagged if p == 1], outbound_allows, DEFAULTS)
    assert result.outputs[1].to_list() == wan.out
    assert result.outputs[0].to_list() == lan.out
    # a second pass over the same traffic: the counters add up
    nf.host.run(PacketList.from_bytes(frames, ports=[p for _, p in tagged]))
    assert nf.read("wan_allowed.count") == str(2 * wan.allowed)
    assert nf.read("lan_expired.count") == str(2 * lan.expired)
    assert nf.read("inbound.drops") == str(2 * wan.filtered)


@pytest.mark.parametrize("case", ["admin-ssh", "stranger-ssh", "web", "dns-udp", "dns-tcp",
                                  "dns-wrong-host", "mail", "mail-wrong-port", "ping",
                                  "ping-reply", "unreachable", "timeexceeded", "first-fragment",
                                  "later-fragment-to-web", "df-to-web", "spoofed-10",
                                  "spoofed-172.31", "not-spoofed-172.32", "spoofed-server",
                                  "loopback", "gre", "ttl-1", "ttl-2", "ttl-0"])
def test_inbound_rules_one_by_one(nf_factory, case):
    """The rules in the order the config lists them, each with a packet that needs it."""
    e = Ether(src=WAN_MAC, dst=LAN_MAC)
    admin, web = "198.51.100.20", "192.0.2.80"
    packets = {
        "admin-ssh": (e / IP(src=admin, dst=web) / TCP(dport=22), True),
        "stranger-ssh": (e / IP(src="203.0.113.1", dst=web) / TCP(dport=22), False),
        "web": (e / IP(src="203.0.113.1", dst=web) / TCP(dport=443), True),
        "dns-udp": (e / IP(src="203.0.113.1", dst="192.0.2.53") / UDP(dport=53), True),
        "dns-tcp": (e / IP(src="203.0.113.1", dst="192.0.2.53") / TCP(dport=53), True),
        "dns-wrong-host": (e / IP(src="203.0.113.1", dst="192.0.2.54") / UDP(dport=53), False),
        "mail": (e / IP(src="203.0.113.1", dst="192.0.2.25") / TCP(dport=25), True),
        "mail-wrong-port": (e / IP(src="203.0.113.1", dst="192.0.2.25") / UDP(dport=25), False),
        "ping": (e / IP(src="203.0.113.1", dst=web) / ICMP(type=8), True),
        "ping-reply": (e / IP(src="203.0.113.1", dst=web) / ICMP(type=0), False),
        "unreachable": (e / IP(src="203.0.113.1", dst=web) / ICMP(type=3), True),
        "timeexceeded": (e / IP(src="203.0.113.1", dst=web) / ICMP(type=11), True),
        "first-fragment": (e / IP(src="203.0.113.1", dst=web, flags="MF") / TCP(dport=80),
                           False),
        "later-fragment-to-web": (e / IP(src="203.0.113.1", dst=web, frag=10) / TCP(dport=80),
                                  False),
        "df-to-web": (e / IP(src="203.0.113.1", dst=web, flags="DF") / TCP(dport=80), True),
        "spoofed-10": (e / IP(src="10.1.2.3", dst=web) / TCP(dport=80), False),
        "spoofed-172.31": (e / IP(src="172.31.255.255", dst=web) / TCP(dport=80), False),
        "not-spoofed-172.32": (e / IP(src="172.32.0.0", dst=web) / TCP(dport=80), True),
        "spoofed-server": (e / IP(src="192.0.2.9", dst=web) / TCP(dport=80), False),
        "loopback": (e / IP(src="127.0.0.1", dst=web) / TCP(dport=80), False),
        "gre": (e / IP(src="203.0.113.1", dst=web, proto=47) / Raw(b"g" * 20), False),
        "ttl-1": (e / IP(src="203.0.113.1", dst=web, ttl=1) / TCP(dport=80), "expired"),
        "ttl-2": (e / IP(src="203.0.113.1", dst=web, ttl=2) / TCP(dport=80), True),
        "ttl-0": (e / IP(src="203.0.113.1", dst=web, ttl=0) / TCP(dport=80), "expired"),
    }
    pkt, verdict = packets[case]
    frame = bytes(pkt)
    nf = nf_factory(FIREWALL)
    out = nf.send([frame], port=0)
    if verdict is True:
        assert {k: [bytes(p) for p in v] for k, v in out.items()} == {1: [ttl_decremented(frame)]}
        assert nf.read("wan_allowed.count") == "1"
    elif verdict == "expired":
        assert out == {}
        assert nf.read("wan_expired.count") == "1"
        assert nf.read("wan_allowed.count") == "1"
    else:
        assert out == {}
        assert nf.read("inbound.drops") == "1"
        assert nf.read("wan_allowed.count") == "0"


def test_arp_passes_both_ways_untouched(nf_factory):
    nf = nf_factory(FIREWALL)
    arp = [bytes(Ether(src=WAN_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, pdst="192.0.2.1")),
           bytes(Ether(src=WAN_MAC, dst=LAN_MAC) / ARP(op=2) / Raw(b"\0" * 18))]
    assert {k: [bytes(p) for p in v] for k, v in nf.send(arp, port=0).items()} == {1: arp}
    assert {k: [bytes(p) for p in v] for k, v in nf.send(arp, port=1).items()} == {0: arp}


def test_defines_change_the_rules(nf_factory):
    """SERVERS and ADMIN given on the command line (as `nfv run ... NAME=value`)."""
    d = dict(DEFAULTS, SERVERS="203.0.113.0/24", ADMIN="192.0.2.0/24", DNS="203.0.113.53",
             MAIL="203.0.113.25")
    nf = nf_factory(FIREWALL, SERVERS=d["SERVERS"], ADMIN=d["ADMIN"], DNS=d["DNS"],
                    MAIL=d["MAIL"])
    frames = make_traffic(random.Random(77), 300, d, from_wan=True)
    want = oracle(frames, inbound_allows, d)
    assert want.allowed - want.expired >= 10
    assert all(1 <= len(f) <= 1920 for f in frames)
    nf.send(frames, port=0)
    got = nf.last_result.outputs[1].to_list() if 1 in nf.last_result.outputs else []
    assert got == want.out
    assert nf.read("inbound.drops") == str(want.filtered)


@pytest.mark.host_only("a zero-length frame cannot be sent into the VM (QEMU's stream "
                       "netdev stalls on one)")
def test_empty_frame_is_other_traffic(nf_factory):
    """A frame with no Ethernet header is neither ARP nor IPv4: counted and dropped."""
    nf = nf_factory(FIREWALL)
    assert nf.send([b""], port=0) == {}
    assert nf.last_result.drops == {drops.DISCARD: 1}
    assert nf.read("wan_other.count") == "1"
