"""ARPQuerier, with scapy traffic, on both targets.

Each test taking `nf_factory` runs as `[host]` and `[unikernel]` (tests/conftest.py)
unless it is marked host_only.  Every expected frame is built by scapy as Click's
ARPQuerier makes it: queries as scapy's ARP(op=1, ...) in a broadcast frame, IP
packets behind an Ethernet header to the learnt address, and compared byte for
byte with what the target sent.

Time: `nf.send` runs every packet at one `now` on the host (their timestamps,
0), and at the guest's own clock (kvmclock) in the unikernel, which the test
cannot set.  Tests that step the clock call HostNF.run with `now_ns` and are host
only; the others hold whatever the clock says, as long as the packets of one test
arrive well within 100 ms and 60 s of each other.
"""
from __future__ import annotations

import re

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from conftest import errors_of
from nfv import drops
from nfv.element import registry
from nfv.errors import NfvError

ME = "10.0.0.1"
MAC_ME = "02:00:00:00:00:01"
HOST_7, MAC_7 = "10.0.0.7", "02:00:00:00:00:07"
HOST_8, MAC_8 = "10.0.0.8", "02:00:00:00:00:08"
HOST_9, MAC_9 = "10.0.0.9", "02:00:00:00:00:09"
GATEWAY, MAC_GW = "10.0.0.254", "02:00:00:00:00:fe"
SENDER = "02:00:00:00:00:aa"
BROADCAST = "ff:ff:ff:ff:ff:ff"
ZERO = "00:00:00:00:00:00"
SECOND = 1_000_000_000

# q: defaults, one output (queries and IP packets both by output 0 -> device 1).
#    IP in by device 0 (annotation from CheckIPHeader), device 4 (annotation from the
#    route: the gateway), device 5 (no annotation, no marked header); ARP in by device 1.
# q2: two outputs (queries -> device 2), a small table with one static entry, one hold
#    buffer.  IP in by device 2, ARP by device 3.
CONFIG = f"""
FromDevice(0) -> Strip(14) -> CheckIPHeader -> [0] q :: ARPQuerier({ME}/24, {MAC_ME}) -> ToDevice(1);
FromDevice(1) -> [1] q;
FromDevice(4) -> Strip(14) -> CheckIPHeader -> StaticIPLookup(0.0.0.0/0 {GATEWAY} 0) -> [0] q;
FromDevice(5) -> Strip(14) -> [0] q;
FromDevice(2) -> Strip(14) -> CheckIPHeader
  -> [0] q2 :: ARPQuerier({ME}, {MAC_ME}, ENTRY_CAPACITY 2, CAPACITY 1, STATIC {HOST_9} {MAC_9});
FromDevice(3) -> [1] q2;
q2[0] -> ToDevice(1);
q2[1] -> ToDevice(2);
"""

# compiled in the background while earlier tests run (tests/conftest.py)
PREBUILD = [(CONFIG, "both"),
            (CONFIG.replace("ENTRY_CAPACITY 2", "ENTRY_CAPACITY 4"), "both")]


def run(nf, packets, port) -> dict:
    """{output device: [frame bytes]} as the target sent them."""
    nf.send(packets, port)
    return {k: v.to_list() for k, v in nf.last_result.outputs.items() if len(v)}


def run_at(nf, packets, port, now_ns) -> dict:
    """As `run`, at a clock the test sets (host target: HostNF.run's now_ns)."""
    from nfv.dataplane.pcap import PacketList

    frames = [bytes(p) for p in packets]
    result = nf.host.run(PacketList.from_bytes(frames, ports=[port] * len(frames)), now_ns)
    nf.last_result = result
    return {k: v.to_list() for k, v in result.outputs.items() if len(v)}


def ip_packet(dst, payload=b"payload!", src="192.0.2.50", **kw):
    """An IP packet (no Ethernet header) as it reaches ARPQuerier."""
    return bytes(IP(src=src, dst=dst, **kw) / UDP(sport=1000, dport=2000) / Raw(payload))


def framed(ip: bytes, dst=MAC_ME, src=SENDER) -> bytes:
    """An IP packet in the frame a device receives (Strip(14) takes the header off)."""
    return bytes(Ether(dst=dst, src=src) / Raw(ip))


def query(target, dst=BROADCAST) -> bytes:
    """The who-has Click's ARPQuerier sends, by scapy: 42 bytes, no padding."""
    return bytes(Ether(dst=dst, src=MAC_ME)
                 / ARP(op=1, hwsrc=MAC_ME, psrc=ME, hwdst=ZERO, pdst=target))


def reply(ip, mac, to_mac=MAC_ME, to_ip=ME) -> bytes:
    return bytes(Ether(dst=to_mac, src=mac) / ARP(op=2, hwsrc=mac, psrc=ip, hwdst=to_mac,
                                                  pdst=to_ip))


def encapsulated(ip: bytes, mac) -> bytes:
    return bytes(Ether(dst=mac, src=MAC_ME, type=0x0800) / Raw(ip))


def table(nf, name="q") -> list[list[str]]:
    return [line.split() for line in nf.read(f"{name}.table").splitlines()]


# -- queries and replies ---------------------------------------------------------------


def test_unknown_next_hop_gets_a_query(nf_factory):
    nf = nf_factory(CONFIG)
    out = run(nf, [framed(ip_packet(HOST_7))], 0)
    assert out == {1: [query(HOST_7)]}
    q = ARP(out[1][0][14:])
    assert (q.op, q.hwsrc, q.psrc, q.hwdst, q.pdst) == (1, MAC_ME, ME, ZERO, HOST_7)
    assert len(out[1][0]) == 42
    assert nf.read("q.queries") == "1"
    assert nf.read("q.count") == "1" and nf.read("q.length") == "1"
    assert table(nf)[0][:3] == [HOST_7, "0", ZERO]


def test_reply_releases_the_held_packet_encapsulated(nf_factory):
    nf = nf_factory(CONFIG)
    packet = ip_packet(HOST_7, b"x" * 101, tos=0x10)
    run(nf, [framed(packet)], 0)
    out = run(nf, [reply(HOST_7, MAC_7)], 1)
    assert out == {1: [encapsulated(packet, MAC_7)]}
    assert nf.last_result.drops == {}
    assert nf.read("q.responses") == "1" and nf.read("q.length") == "0"
    # now known: straight through, no query
    again = ip_packet(HOST_7, b"second")
    assert run(nf, [framed(again)], 0) == {1: [encapsulated(again, MAC_7)]}
    assert nf.read("q.queries") == "1"
    assert nf.read("q.drops") == "0"


def test_newest_packet_is_held_and_queries_are_rate_limited(nf_factory):
    nf = nf_factory(CONFIG)
    first, second = ip_packet(HOST_7, b"first"), ip_packet(HOST_7, b"second")
    # within 100 ms of each other: one query; the second packet replaces the first
    out = run(nf, [framed(first), framed(second)], 0)
    assert out == {1: [query(HOST_7)]}
    assert nf.last_result.drops == {drops.ARP_HELD: 1}
    assert nf.read("q.queries") == "1" and nf.read("q.drops") == "1"
    assert run(nf, [reply(HOST_7, MAC_7)], 1) == {1: [encapsulated(second, MAC_7)]}


def test_unsolicited_reply_is_learnt_and_absorbed(nf_factory):
    nf = nf_factory(CONFIG)
    assert run(nf, [reply(HOST_8, MAC_8)], 1) == {}
    assert nf.last_result.drops == {drops.ARP_ABSORBED: 1}
    packet = ip_packet(HOST_8)
    assert run(nf, [framed(packet)], 0) == {1: [encapsulated(packet, MAC_8)]}
    assert nf.read("q.queries") == "0"


def test_next_hop_is_the_annotation_else_the_header(nf_factory):
    nf = nf_factory(CONFIG)
    # the route's gateway is the annotation: the query is for it
    assert run(nf, [framed(ip_packet("198.51.100.1"))], 4) == {1: [query(GATEWAY)]}
    # no annotation and no marked header: the IP header's destination
    assert run(nf, [framed(ip_packet(HOST_8))], 5) == {1: [query(HOST_8)]}
    out = run(nf, [reply(GATEWAY, MAC_GW), reply(HOST_8, MAC_8)], 1)
    assert out == {1: [encapsulated(ip_packet("198.51.100.1"), MAC_GW),
                       encapsulated(ip_packet(HOST_8), MAC_8)]}


def test_broadcast_multicast_and_zero(nf_factory):
    nf = nf_factory(CONFIG)
    subnet, limited = ip_packet("10.0.0.255"), ip_packet("255.255.255.255")
    group = ip_packet("224.129.2.3")
    out = run(nf, [framed(subnet), framed(limited), framed(group)], 0)
    assert out == {1: [encapsulated(subnet, BROADCAST), encapsulated(limited, BROADCAST),
                       encapsulated(group, "01:00:5e:01:02:03")]}
    assert nf.read("q.broadcast") == "10.0.0.255" and nf.read("q.ipaddr") == ME
    # a next hop of 0.0.0.0 (no annotation, header destination 0) is dropped
    assert run(nf, [framed(ip_packet("0.0.0.0"))], 5) == {}
    assert nf.last_result.drops == {drops.NO_ROUTE: 1}
    assert nf.read("q.drops") == "1" and nf.read("q.queries") == "0"


def test_two_outputs_send_queries_by_output_1(nf_factory):
    nf = nf_factory(CONFIG)
    packet = ip_packet(HOST_7)
    assert run(nf, [framed(packet)], 2) == {2: [query(HOST_7)]}
    assert run(nf, [reply(HOST_7, MAC_7)], 3) == {1: [encapsulated(packet, MAC_7)]}
    # the STATIC entry needs no query
    static = ip_packet(HOST_9)
    assert run(nf, [framed(static)], 2) == {1: [encapsulated(static, MAC_9)]}


def test_malformed_arp_is_dropped_and_counted(nf_factory):
    nf = nf_factory(CONFIG)
    good = reply(HOST_7, MAC_7)
    request = bytes(Ether(dst=BROADCAST, src=MAC_7)
                    / ARP(op=1, hwsrc=MAC_7, psrc=HOST_7, pdst=ME))
    bad = [
        good[:41],                                           # too short
        request,                                             # requests are not learnt from
        good[:16] + b"\x86\xdd" + good[18:],                 # protocol type not IPv4
        good[:18] + b"\x08" + good[19:],                     # hardware length 8
        good[:22] + bytes.fromhex("010203040506") + good[28:],  # a group sender address
        good[:12] + b"\x08\x00" + good[14:],                 # not ARP at all
        reply("0.0.0.0", MAC_7),                             # sender 0.0.0.0
    ]
    assert run(nf, bad, 1) == {}
    assert nf.last_result.drops == {drops.TOO_SHORT: 1, drops.NOT_ARP_REQUEST: 6}
    assert nf.read("q.drops") == "7"
    assert nf.read("q.responses") == "0" and nf.read("q.count") == "0"


def test_table_handler_in_clicks_format(nf_factory):
    nf = nf_factory(CONFIG)
    run(nf, [framed(ip_packet(HOST_8))], 0)
    run(nf, [reply(HOST_7, MAC_7)], 1)
    rows = nf.read("q.table").splitlines()
    assert len(rows) == 2
    by_ip = {r.split()[0]: r for r in rows}
    assert re.fullmatch(rf"{re.escape(HOST_8)} 0 {ZERO} \d+\.\d{{6}}", by_ip[HOST_8])
    assert re.fullmatch(rf"{re.escape(HOST_7)} 1 {MAC_7} \d+\.\d{{6}}", by_ip[HOST_7])
    assert nf.read("q.stats") == "0 packets killed\n1 ARP queries sent\n"
    assert nf.read("q.count") == "2" and nf.read("q.length") == "1"
    assert table(nf, "q2") == [[HOST_9, "1", MAC_9, table(nf, "q2")[0][3]]]


# -- capacity ----------------------------------------------------------------------------


def test_full_table_replaces_the_oldest_entry_and_keeps_static_ones(nf_factory):
    nf = nf_factory(CONFIG)
    p7, p8 = ip_packet(HOST_7, b"to 7"), ip_packet(HOST_8, b"to 8")
    # q2 holds 2 entries, one static: 10.0.0.8 replaces 10.0.0.7 and its held packet
    assert run(nf, [framed(p7)], 2) == {2: [query(HOST_7)]}
    assert run(nf, [framed(p8)], 2) == {2: [query(HOST_8)]}
    assert sorted(r[0] for r in table(nf, "q2")) == [HOST_8, HOST_9]
    assert nf.read("q2.drops") == "1" and nf.read("q2.count") == "2"
    assert run(nf, [reply(HOST_8, MAC_8)], 3) == {1: [encapsulated(p8, MAC_8)]}
    # a reply for the forgotten address is learnt again (replacing 10.0.0.8), nothing held
    assert run(nf, [reply(HOST_7, MAC_7)], 3) == {}
    assert nf.last_result.drops == {drops.ARP_ABSORBED: 1}


def test_no_free_hold_buffer(nf_factory):
    nf = nf_factory(CONFIG.replace("ENTRY_CAPACITY 2", "ENTRY_CAPACITY 4"))
    p7, p8 = ip_packet(HOST_7, b"to 7"), ip_packet(HOST_8, b"to 8")
    # one hold buffer: 10.0.0.7's packet takes it; 10.0.0.8's still becomes its query
    out = run(nf, [framed(p7), framed(p8)], 2)
    assert out == {2: [query(HOST_7), query(HOST_8)]}
    assert nf.read("q2.drops") == "1" and nf.read("q2.length") == "1"
    assert run(nf, [reply(HOST_8, MAC_8)], 3) == {}
    assert run(nf, [reply(HOST_7, MAC_7)], 3) == {1: [encapsulated(p7, MAC_7)]}


# -- time (the host's clock is the test's) -----------------------------------------------


@pytest.mark.host_only("steps the pipeline's clock with now_ns, which the guest takes "
                       "from its own kvmclock")
def test_poll_interval_limits_queries(nf_factory):
    nf = nf_factory(CONFIG)
    t0 = 1000 * SECOND
    assert run_at(nf, [framed(ip_packet(HOST_7, b"a"))], 0, t0) == {1: [query(HOST_7)]}
    assert run_at(nf, [framed(ip_packet(HOST_7, b"b"))], 0, t0 + 99_999_999) == {}
    assert nf.last_result.drops == {drops.ARP_HELD: 1}
    latest = ip_packet(HOST_7, b"c")
    assert run_at(nf, [framed(latest)], 0, t0 + 100_000_000) == {1: [query(HOST_7)]}
    assert nf.read("q.queries") == "2" and nf.read("q.drops") == "2"
    out = run_at(nf, [reply(HOST_7, MAC_7)], 1, t0 + 150_000_000)
    assert out == {1: [encapsulated(latest, MAC_7)]}


@pytest.mark.host_only("steps the pipeline's clock with now_ns, which the guest takes "
                       "from its own kvmclock")
def test_renewal_poll_and_timeout(nf_factory):
    nf = nf_factory(CONFIG)
    t0 = 1000 * SECOND
    run_at(nf, [reply(HOST_7, MAC_7)], 1, t0)
    p = ip_packet(HOST_7, b"fresh")
    assert run_at(nf, [framed(p)], 0, t0 + 59 * SECOND) == {1: [encapsulated(p, MAC_7)]}
    assert table(nf) == [[HOST_7, "1", MAC_7, "59.000000"]]
    # older than POLL_TIMEOUT (60 s): the packet carries a unicast poll and waits
    polled = ip_packet(HOST_7, b"polled")
    assert run_at(nf, [framed(polled)], 0, t0 + 61 * SECOND) == {1: [query(HOST_7, MAC_7)]}
    # meanwhile the address is still valid: packets go straight out, no second poll
    p = ip_packet(HOST_7, b"meanwhile")
    assert run_at(nf, [framed(p)], 0, t0 + 62 * SECOND) == {1: [encapsulated(p, MAC_7)]}
    out = run_at(nf, [reply(HOST_7, MAC_7)], 1, t0 + 62 * SECOND)
    assert out == {1: [encapsulated(polled, MAC_7)]}
    # TIMEOUT (300 s) after the last reply the entry is stale: a broadcast query
    t1 = t0 + 62 * SECOND
    p = ip_packet(HOST_7, b"at 300 s")
    run_at(nf, [reply(HOST_8, MAC_8)], 1, t1 + 300 * SECOND)  # only moves the table's clock
    assert table(nf)[0][:2] == [HOST_7, "1"]
    late = ip_packet(HOST_7, b"stale")
    assert run_at(nf, [framed(late)], 0, t1 + 300 * SECOND + 1) == {1: [query(HOST_7)]}
    assert table(nf)[0][:2] == [HOST_7, "0"]
    assert run_at(nf, [reply(HOST_7, MAC_7)], 1, t1 + 301 * SECOND) == \
        {1: [encapsulated(late, MAC_7)]}
    assert nf.read("q.queries") == "2" and nf.read("q.drops") == "0"


# -- write handlers ----------------------------------------------------------------------


@pytest.mark.host_only("write handlers reach the guest in a later change")
def test_insert_delete_clear(nf_factory):
    nf = nf_factory(CONFIG)
    held = ip_packet(HOST_7, b"held")
    run(nf, [framed(held)], 0)
    nf.write("q.insert", f"{HOST_7} {MAC_7}")
    assert nf.read("q.drops") == "1" and nf.read("q.length") == "0"  # the held packet
    p = ip_packet(HOST_7, b"after insert")
    assert run(nf, [framed(p)], 0) == {1: [encapsulated(p, MAC_7)]}
    # static: a reply does not change it, time does not age it
    run(nf, [reply(HOST_7, MAC_8)], 1)
    assert run_at(nf, [framed(p)], 0, 10**6 * SECOND) == {1: [encapsulated(p, MAC_7)]}
    nf.write("q.delete", HOST_7)
    assert nf.read("q.count") == "0"
    assert run(nf, [framed(p)], 0) == {1: [query(HOST_7)]}
    nf.write("q.delete", "10.9.9.9")  # not there: nothing to do
    nf.write("q.clear")
    assert nf.read("q.table") == "" and nf.read("q.queries") == "0"
    assert nf.read("q.drops") == "0" and nf.read("q.length") == "0"
    assert run(nf, [framed(p)], 0) == {1: [query(HOST_7)]}


@pytest.mark.host_only("write handlers reach the guest in a later change")
def test_insert_keeps_the_table_consistent_when_full(nf_factory):
    nf = nf_factory(CONFIG)
    # q2: 2 entries, one static; inserting a second static replaces the dynamic one
    run(nf, [framed(ip_packet(HOST_7))], 2)
    nf.write("q2.insert", f"{HOST_8} {MAC_8}")
    assert sorted(r[0] for r in table(nf, "q2")) == [HOST_8, HOST_9]
    with pytest.raises(NfvError, match="full of static entries"):
        nf.write("q2.insert", f"{HOST_7} {MAC_7}")
    with pytest.raises(NfvError, match="IP ETH"):
        nf.write("q2.insert", HOST_7)
    # a packet for a new address in a table full of static entries is dropped
    assert run(nf, [framed(ip_packet(HOST_7))], 2) == {}
    assert nf.last_result.drops == {drops.TABLE_FULL: 1}
    # deleting shifts the probe run back: every remaining entry is still found
    nf.write("q2.delete", HOST_9)
    p = ip_packet(HOST_8)
    assert run(nf, [framed(p)], 2) == {1: [encapsulated(p, MAC_8)]}


@pytest.mark.host_only("fills and empties a big table through write handlers")
def test_many_inserts_and_deletes_agree_with_the_kernel(nf_factory):
    nf = nf_factory(CONFIG)
    hosts = [f"10.1.{k // 250}.{k % 250 + 1}" for k in range(256)]
    for k, h in enumerate(hosts):
        nf.write("q.insert", f"{h} 02:00:00:01:{k // 256:02x}:{k % 256:02x}")
    for h in hosts[::3]:
        nf.write("q.delete", h)
    kept = [(k, h) for k, h in enumerate(hosts) if k % 3]
    packets = [ip_packet(h) for _, h in kept]
    out = run(nf, [framed(p) for p in packets], 0)
    assert out == {1: [encapsulated(p, f"02:00:00:01:{k // 256:02x}:{k % 256:02x}")
                       for p, (k, _) in zip(packets, kept)]}
    assert nf.read("q.count") == str(len(kept))


# -- configuration and manual --------------------------------------------------------------


@pytest.mark.parametrize("config, fragment", [
    ("ARPQuerier(10.0.0.1)", "ETH"),
    ("ARPQuerier(10.0.0.1, 02:00:00:00:00:01, ENTRY_CAPACITY 0)", "ENTRY_CAPACITY"),
    ("ARPQuerier(10.0.0.1, 02:00:00:00:00:01, CAPACITY 5000)", "CAPACITY"),
    ("ARPQuerier(10.0.0.1, 02:00:00:00:00:01, STATIC 10.0.0.2)", "pairs IP ETH"),
    ("ARPQuerier(10.0.0.1, 02:00:00:00:00:01, STATIC 10.0.0.2 10.0.0.3)", "STATIC"),
    ("ARPQuerier(10.0.0.1, 02:00:00:00:00:01, ENTRY_CAPACITY 1, "
     "STATIC 10.0.0.2 2:0:0:0:0:2 10.0.0.3 2:0:0:0:0:3)", "do not fit"),
    ("ARPQuerier(10.0.0.1, 02:00:00:00:00:01, TABLE t)", "unknown keyword TABLE"),
])
def test_config_errors(config, fragment):
    errors = errors_of(f"FromDevice(0) -> Strip(14) -> [0] a :: {config} -> ToDevice(1);"
                       f" FromDevice(1) -> [1] a;")
    assert any(fragment in e.message for e in errors), [e.message for e in errors]


def test_docstring_is_a_click_style_manual():
    cls = registry()["ARPQuerier"]
    lines = [line.strip() for line in cls.__doc__.strip().splitlines()]
    assert lines[0] == cls.synopsis()
    for section in ("Ports", "Arguments", "Handlers", "Example", "See also"):
        assert section in lines
    assert re.search(r"\bARPQuerier\b", cls.__doc__[cls.__doc__.index("Example"):])
