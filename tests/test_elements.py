"""Every element that moves packets, with scapy traffic, on both targets.

Each test runs twice through `nf_factory` (tests/conftest.py): `[host]`, the
config compiled for the host dataplane, and `[unikernel]`, the same config built
into an image and booted under QEMU, packets crossing its virtio NICs.  The
expectations do not depend on the target, so a test passing on both is the two
targets agreeing byte for byte.

Each test builds its inputs with scapy and writes its expectation independently
of nfv: an expected frame is the input with the change the element's manual page
describes made by scapy (or by plain byte slicing), never nfv's own output pasted
back.  Outputs are compared as the exact bytes the target sent
(`last_result.outputs`), drops by reason (`last_result.drops`) and by element
(handlers).  Configs are few and multi-port so each compiles once per session
and target.  Every output is a device (ToDevice(N), N <= 7: the unikernel has at
most 8 NICs), keyed by its number.  Each test sends into one device at a time,
so paths fed by different FromDevices may share output devices: a config's
comment says which device each path's outputs use.

What only the host has stays on the host, marked `host_only` with the reason:
ToDump (it writes a file), zero-length frames (QEMU's stream netdev stalls on
one; a wire carries none) and running out of buffers for copies (it needs a
batch of more than 128 packets, which only the host driver guarantees).  Print's
copies come back, keyed by its name, on the host only (`with_print_copies`).
"""
from __future__ import annotations

import ipaddress
import random
import struct

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_NOP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from nfv import drops
from nfv.dataplane.pcap import PacketList
from nfv.errors import NfvError

from conftest import ones_sum

MAC_A = "02:00:00:00:00:0a"
MAC_B = "02:00:00:00:00:0b"

host_only = pytest.mark.host_only


# -- helpers -----------------------------------------------------------------------------


def run(nf, packets, port=0) -> dict:
    """Send `packets` into `port`; {output: [frame bytes]} as the target sent them.

    Outputs are device numbers (and, on the host, the names of sink elements such
    as Print, as `NF.send` keys them).  The bytes come from the target's result,
    so a scapy re-encoding can never hide a byte.
    """
    out = nf.send(packets, port)
    result = nf.last_result
    frames = {}
    for key, pkts in out.items():
        number = key if isinstance(key, int) else nf.host.output_port(key)
        frames[key] = result.outputs[number].to_list()
        assert len(frames[key]) == len(pkts)
    return frames


def run_raw(nf, frames, port=0) -> dict:
    """Like `run`, through the target's runner directly (`nf.host.run`) rather than
    NF.send: for outputs that are not Ethernet frames at all (a few bytes, or none)."""
    result = nf.host.run(PacketList.from_bytes(frames, ports=nf.host.input_port(port)))
    nf.last_result = result
    return {nf.host.sink_element(number) or number: plist.to_list()
            for number, plist in result.outputs.items()}


def dropped(nf, reason: int) -> int:
    return nf.last_result.drops.get(reason, 0)


def total_drops(nf) -> int:
    return sum(nf.last_result.drops.values())


def numbered(n, size=80, ethertype=0x88B5):
    """n distinct Ethernet frames (a local-experimental ethertype); payload starts with i."""
    return [bytes(Ether(dst=MAC_B, src=MAC_A, type=ethertype)
                  / Raw(struct.pack(">I", i) + bytes([i % 251]) * (size - 18)))
            for i in range(n)]


def udp(src="192.0.2.1", dst="198.51.100.7", ttl=64, sport=1234, dport=5678, payload=b"x" * 16,
        **ip):
    return Ether(dst=MAC_B, src=MAC_A) / IP(src=src, dst=dst, ttl=ttl, **ip) / \
        UDP(sport=sport, dport=dport) / Raw(payload)


def rebuilt(frame: bytes) -> bytes:
    """Scapy's own encoding of a frame with its IPv4 header checksum recomputed."""
    p = Ether(frame)
    del p[IP].chksum
    return bytes(Ether(bytes(p)))


def ttl_decremented(frame: bytes, offset: int = 14) -> bytes:
    """The frame with the IP header at `offset` having TTL - 1 and a checksum recomputed
    by scapy over that header (the rest of the frame is left byte for byte)."""
    hlen = (frame[offset] & 0xF) * 4
    header = IP(frame[offset:offset + hlen])
    header.ttl -= 1
    del header.chksum
    new = bytes(header)[:hlen]
    assert len(new) == hlen
    return frame[:offset] + new + frame[offset + hlen:]


def ip_header_valid(header: bytes) -> bool:
    return ones_sum(header) == 0xFFFF


# -- devices -----------------------------------------------------------------------------

DEVICES = """
a :: FromDevice(3) -> ta :: ToDevice(6);
b :: FromDevice(6) -> tb :: ToDevice(3);
"""

NAMED = """
fa :: FromDevice(eth0) -> toa :: ToDevice(eth1);
fb :: FromDevice(eth1, PROMISC true) -> tob :: ToDevice(eth0);
"""


def test_device_numbers_map_input_to_output(nf_factory):
    nf = nf_factory(DEVICES)
    frames = numbered(5)
    out = run(nf, frames, 3)
    assert out == {6: frames}
    out = run(nf, frames[:2], 6)
    assert out == {3: frames[:2]}
    assert nf.read("a.count") == "5"
    assert nf.read("b.count") == "2"
    assert nf.read("ta.count") == "5"
    assert nf.read("tb.count") == "2"
    assert nf.read("ta.drops") == "0"


def test_named_devices(nf_factory):
    nf = nf_factory(NAMED)
    frames = numbered(4)
    eth1 = nf.host.output_port("eth1")
    eth0 = nf.host.output_port("eth0")
    assert eth0 != eth1
    assert run(nf, frames, "eth0") == {eth1: frames}
    assert run(nf, frames[:1], "eth1") == {eth0: frames[:1]}
    assert nf.read("fa.count") == "4"
    assert nf.read("toa.count") == "4"
    assert nf.read("tob.count") == "1"


def test_named_and_numbered_devices_together(nf_factory):
    """A device is a number or a name (DESIGN, elements/devices.py); a config may use both.
    The names must not take the numbers the config already uses."""
    nf = nf_factory("""
        n0 :: FromDevice(0) -> ToDevice(1);
        lan :: FromDevice(lan) -> ToDevice(wan);
    """)
    frames = numbered(3)
    out = run(nf, frames, "lan")
    wan = nf.host.output_port("wan")
    assert wan not in (0, 1)
    assert out == {wan: frames}
    assert run(nf, frames, 0) == {1: frames}
    assert nf.read("n0.count") == "3"
    assert nf.read("lan.count") == "3"


def test_unread_device_port_drops_no_entry(nf_factory):
    """Frames on a device no FromDevice reads (here NICs 0, 1, 2, 4, 5: the VM has
    NICs 0..6, one per number up to the highest used) are dropped as NO_ENTRY."""
    nf = nf_factory(DEVICES)
    frames = numbered(7)
    result = nf.host.run(PacketList.from_bytes(frames, ports=[0, 3, 1, 6, 2, 4, 5]))
    assert result.drops == {drops.NO_ENTRY: 5}
    assert result.outputs[6].to_list() == [frames[1]]
    assert result.outputs[3].to_list() == [frames[3]]
    with pytest.raises(NfvError, match="reads no device"):
        nf.send(frames, 0)


# -- standard elements -------------------------------------------------------------------

# The switches' output k leaves by device k; Strip and Unstrip send back out of the
# device they read.
STANDARD = """
f0 :: FromDevice(0) -> cnt :: Counter -> q :: Queue -> sq :: SimpleQueue(10) -> Null
   -> Print(p, 10) -> t1 :: ToDevice(1);
FromDevice(1) -> disc :: Discard;
FromDevice(2) -> idle :: Idle;
rr :: RoundRobinSwitch;
FromDevice(3) -> rr;
rr[0] -> rr0 :: ToDevice(0);  rr[1] -> rr1 :: ToDevice(1);  rr[2] -> rr2 :: ToDevice(2);
hs :: HashSwitch(26, 8);
FromDevice(4) -> hs;
hs[0] -> hs0 :: ToDevice(0);  hs[1] -> hs1 :: ToDevice(1);
hs[2] -> hs2 :: ToDevice(2);  hs[3] -> hs3 :: ToDevice(3);
FromDevice(5) -> st :: Strip(14) -> stripped :: ToDevice(5);
FromDevice(6) -> Strip(14) -> Unstrip(14) -> restored :: ToDevice(6);
FromDevice(7) -> ust :: Unstrip(200) -> ToDevice(7);
"""
STRIPPED, RESTORED = 5, 6


def with_print_copies(nf, out: dict, frames: list) -> dict:
    """`out` and, on the host, Print's copies: the host collects them under Print's
    name to print them; in the unikernel a Print's copies are not sent anywhere."""
    return dict(out, **{"Print@2": frames}) if nf.target == "host" else out


def test_counter_queue_null_print_pass_unchanged(nf_factory):
    nf = nf_factory(STANDARD)
    frames = [bytes(udp(payload=b"p" * k)) for k in range(0, 60, 7)] + numbered(3, size=200)
    out = run(nf, frames, 0)
    # The packets pass; Print's copies come back under its name on the host only.
    assert out == with_print_copies(nf, {1: frames}, frames)
    assert nf.read("cnt.count") == str(len(frames))
    assert nf.read("cnt.byte_count") == str(sum(map(len, frames)))
    assert nf.last_result.drops == {}
    run(nf, frames[:2], 0)
    assert nf.read("cnt.count") == str(len(frames) + 2)
    nf.reset()
    assert nf.read("cnt.count") == "0"
    assert nf.read("cnt.byte_count") == "0"


def test_discard_counts(nf_factory):
    nf = nf_factory(STANDARD)
    assert run(nf, numbered(9), 1) == {}
    assert nf.read("disc.count") == "9"
    assert nf.last_result.drops == {drops.DISCARD: 9}


def test_idle_drops_what_it_is_given(nf_factory):
    nf = nf_factory(STANDARD)
    assert run(nf, numbered(4), 2) == {}
    assert nf.last_result.drops == {drops.NO_OUTPUT: 4}
    assert nf.read("idle.drops") == "4"


def test_round_robin_cycles_in_order_across_batches_and_sends(nf_factory):
    nf = nf_factory(STANDARD)
    frames = numbered(700)   # more than one batch of 256
    out = run(nf, frames, 3)
    assert out == {0: frames[0::3], 1: frames[1::3], 2: frames[2::3]}
    # 700 = 3 * 233 + 1: the next packet goes to output 1
    more = numbered(4, size=90)
    out = run(nf, more, 3)
    assert out == {1: [more[0], more[3]], 2: [more[1]], 0: [more[2]]}
    nf.reset()
    out = run(nf, more[:1], 3)
    assert out == {0: more[:1]}


def test_hash_switch_same_flow_same_output_and_spread(nf_factory):
    nf = nf_factory(STANDARD)
    rng = random.Random(7)
    flows = [(f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
              f"172.16.{rng.randrange(256)}.{rng.randrange(1, 255)}") for _ in range(400)]
    first = [bytes(udp(src=s, dst=d, sport=1, payload=b"a")) for s, d in flows]
    second = [bytes(udp(src=s, dst=d, sport=999, ttl=3, payload=b"other bytes")) for s, d in flows]
    out1 = run(nf, first, 4)
    where1 = {f: k for k, frames in out1.items() for f in frames}
    out2 = run(nf, second, 4)
    where2 = {f: k for k, frames in out2.items() for f in frames}
    assert len(where1) == len(first) and len(where2) == len(second)
    # Same bytes [26, 34) -> same output, whatever else differs.
    for a, b in zip(first, second):
        assert where1[a] == where2[b]
    # Each output's list is in input order.
    for k, frames in out1.items():
        assert frames == [f for f in first if where1[f] == k]
    counts = {k: len(v) for k, v in out1.items()}
    assert set(counts) == {0, 1, 2, 3}
    assert min(counts.values()) >= 50, counts


def test_hash_switch_short_packet_goes_to_output_0(nf_factory):
    """HashSwitch's manual (and Click): packets too short for the hashed bytes go to output 0."""
    nf = nf_factory(STANDARD)
    short = [bytes(Ether(dst=MAC_B, src=MAC_A, type=0x0800)) + b"\x45" * k for k in (0, 5, 19)]
    out = run(nf, short, 4)
    assert out == {0: short}
    assert nf.last_result.drops == {}


def test_strip_moves_the_start(nf_factory):
    nf = nf_factory(STANDARD)
    frames = [bytes(udp()), bytes(Ether() / ARP()), bytes(Ether() / IPv6())]
    assert run(nf, frames, 5) == {STRIPPED: [f[14:] for f in frames]}
    short = [b"\x02" * 15, b"\x03" * 27]
    assert run_raw(nf, short, 5) == {STRIPPED: [b"\x02", b"\x03" * 13]}


def test_strip_to_nothing_is_dropped_as_empty(nf_factory):
    """A frame with no bytes left cannot go on a wire: both drivers drop it with
    reason EMPTY (no NIC sends a zero-length frame)."""
    nf = nf_factory(STANDARD)
    assert run_raw(nf, [b"\x01" * 14], 5) == {}
    assert nf.last_result.drops == {drops.EMPTY: 1}


def test_send_returns_outputs_shorter_than_an_ethernet_header(nf_factory):
    """NF.send turns every output into a scapy packet; a pipeline may send a frame of a
    few bytes after Strip, and send must still hand it back, not raise."""
    nf = nf_factory(STANDARD)
    frames = [b"\x02" * 15, b"\x03" * 19]
    out = nf.send(frames, 5)
    assert [bytes(p) for p in out[STRIPPED]] == [b"\x02", b"\x03" * 5]


def test_strip_too_short_drops(nf_factory):
    nf = nf_factory(STANDARD)
    frames = [b"\x01", b"\x02" * 13]
    assert run(nf, frames, 5) == {}
    assert nf.last_result.drops == {drops.TOO_SHORT: 2}
    assert nf.read("st.drops") == "2"


@host_only("a zero-length frame cannot be sent into the VM (QEMU's stream netdev stalls)")
def test_strip_zero_length_drops(nf_factory):
    nf = nf_factory(STANDARD)
    assert run(nf, [b""], 5) == {}
    assert nf.last_result.drops == {drops.TOO_SHORT: 1}
    assert nf.read("st.drops") == "1"


def test_unstrip_restores_stripped_bytes(nf_factory):
    nf = nf_factory(STANDARD)
    frames = [bytes(udp(payload=bytes(range(k)))) for k in (0, 1, 100)] + [b"\xaa" * 14]
    assert run(nf, frames, 6) == {RESTORED: frames}


def test_unstrip_beyond_headroom_drops(nf_factory):
    nf = nf_factory(STANDARD)
    assert run(nf, numbered(2), 7) == {}
    assert nf.last_result.drops == {drops.NO_HEADROOM: 2}
    assert nf.read("ust.drops") == "2"


def test_large_batches_keep_order(nf_factory):
    nf = nf_factory(STANDARD)
    frames = numbered(1000, size=64) + numbered(30, size=1500)
    assert run(nf, frames, 0) == with_print_copies(nf, {1: frames}, frames)
    if nf.target == "host":
        # The host driver cuts a run into batches of 256; the VM's batches are what its
        # NIC rings hold when it polls them, which depends on timing.
        assert nf.last_result.batches == 5
    assert nf.read("cnt.count") == "1030"


# -- Tee ------------------------------------------------------------------------------------

# Output k of the Tees read from devices 1..3 leaves by device 4 + k.
TEE = """
t :: Tee;
FromDevice(0) -> t;
t[0] -> EtherRewrite(02:00:00:00:00:a0, 02:00:00:00:00:b0) -> ToDevice(1);
t[1] -> EtherRewrite(02:00:00:00:00:a1, 02:00:00:00:00:b1) -> ToDevice(2);
t[2] -> ToDevice(3);
t2 :: Tee(2);
FromDevice(1) -> t2;
t2[0] -> Strip(14) -> tee_stripped :: ToDevice(4);
t2[1] -> tee_whole :: ToDevice(5);
t3 :: Tee(2);
FromDevice(2) -> Strip(14) -> t3;
t3[0] -> Unstrip(14) -> tee_u0 :: ToDevice(4);
t3[1] -> Unstrip(14) -> tee_u1 :: ToDevice(5);
t4 :: Tee(3);
FromDevice(3) -> t4;
t4[0] -> c0 :: ToDevice(4);  t4[1] -> c1 :: ToDevice(5);  t4[2] -> c2 :: ToDevice(6);
"""


def with_macs(frame: bytes, src: str, dst: str) -> bytes:
    p = Ether(frame)
    p.src, p.dst = src, dst
    return bytes(p)


def test_tee_copies_are_independent(nf_factory):
    """Each output rewrites its own copy; no rewrite shows on another output."""
    nf = nf_factory(TEE)
    frames = [bytes(udp(payload=bytes([k]) * 30)) for k in range(5)]
    out = run(nf, frames, 0)
    assert out[1] == [with_macs(f, "02:00:00:00:00:a0", "02:00:00:00:00:b0") for f in frames]
    assert out[2] == [with_macs(f, "02:00:00:00:00:a1", "02:00:00:00:00:b1") for f in frames]
    assert out[3] == frames
    assert nf.last_result.created == 10
    assert nf.last_result.drops == {}


def test_tee_strip_on_one_branch(nf_factory):
    nf = nf_factory(TEE)
    frames = [bytes(udp(payload=b"q" * k)) for k in (1, 50)]
    out = run(nf, frames, 1)
    assert out == {4: [f[14:] for f in frames], 5: frames}


def test_tee_copy_keeps_stripped_bytes(nf_factory):
    """A copy is the whole packet (Click clones share the buffer): Unstrip on the copy
    brings back the bytes Strip removed before the Tee, not whatever was in its buffer."""
    nf = nf_factory(TEE)
    frames = [bytes(udp(src=f"10.0.0.{k}", payload=b"z" * k)) for k in range(1, 4)]
    out = run(nf, frames, 2)
    assert out == {4: frames, 5: frames}


BATCH_BOUND = host_only(
    "copies run out of buffers only when one batch holds more than 128 packets (two copies "
    "each, 256 free buffers per batch): the host driver cuts 256-packet batches; the VM's "
    "batch is whatever its NIC rings hold when it polls them, which depends on timing")


@BATCH_BOUND
def test_tee_out_of_buffers_drops_and_counts_copies(nf_factory):
    nf = nf_factory(TEE)
    frames = numbered(300)
    out = run(nf, frames, 3)
    assert out[4] == frames
    copies = len(out.get(5, [])) + len(out.get(6, []))
    assert copies < 600, "600 copies in batches of 256 cannot all find a free buffer"
    assert nf.last_result.created == copies
    assert nf.read("t4.drops") == str(600 - copies)
    for key in (5, 6):
        got = out.get(key, [])
        it = iter(frames)
        assert all(any(g == f for f in it) for g in got), f"{key} is not an in-order subsequence"


@BATCH_BOUND
def test_tee_copies_without_buffer_counted_by_reason(nf_factory):
    """nfv/drops.py: every drop has a reason, counted per element *and per reason by
    the driver*; a copy that found no buffer is NO_BUFFER."""
    nf = nf_factory(TEE)
    out = run(nf, numbered(300), 3)
    lost = 600 - len(out.get(5, [])) - len(out.get(6, []))
    assert lost > 0
    assert nf.last_result.drops == {drops.NO_BUFFER: lost}


# -- Paint, CheckPaint, PaintSwitch ----------------------------------------------------------

# PaintSwitch's output k leaves by device 3 + k; CheckPaint's output k by device 6 + k.
PAINT = """
ps :: PaintSwitch;
cl :: Classifier(0/00, 0/01, 0/02, 0/ff, -);
FromDevice(0) -> cl;
cl[0] -> Paint(0) -> ps;  cl[1] -> Paint(1) -> ps;  cl[2] -> Paint(2) -> ps;
cl[3] -> Paint(255) -> ps;  cl[4] -> Paint(7) -> ps;
ps[0] -> p0 :: ToDevice(3);  ps[1] -> p1 :: ToDevice(4);  ps[2] -> p2 :: ToDevice(5);

cp :: CheckPaint(1);
cl2 :: Classifier(0/01, -);
FromDevice(1) -> cl2;
cl2[0] -> Paint(1) -> cp;  cl2[1] -> cp;
cp[0] -> cp_yes :: ToDevice(6);  cp[1] -> cp_no :: ToDevice(7);

cpd :: CheckPaint(1);
cl3 :: Classifier(0/01, -);
FromDevice(2) -> cl3;
cl3[0] -> Paint(1) -> cpd;  cl3[1] -> cpd;
cpd -> cpd_yes :: ToDevice(6);
"""


def first_byte(b: int, n: int = 1):
    return [bytes([b]) + bytes(Ether(dst=MAC_B, src=MAC_A) / IP() / UDP(sport=k))[1:]
            for k in range(n)]


def test_paint_switch_by_colour(nf_factory):
    nf = nf_factory(PAINT)
    zero, one, two, seven = first_byte(0, 2), first_byte(1, 3), first_byte(2, 1), first_byte(9, 2)
    frames = [one[0], zero[0], two[0], seven[0], one[1], zero[1], seven[1], one[2]]
    out = run(nf, frames, 0)
    assert out == {3: zero, 4: one, 5: two}
    assert nf.last_result.drops == {drops.NO_OUTPUT: 2}


def test_paint_switch_255_copies_to_every_output(nf_factory):
    """PaintSwitch's manual: paint 255 sends a copy to every output."""
    nf = nf_factory(PAINT)
    frames = first_byte(0xFF, 2)
    out = run(nf, frames, 0)
    assert out == {3: frames, 4: frames, 5: frames}


def test_check_paint_other_colour_to_output_1(nf_factory):
    nf = nf_factory(PAINT)
    painted, plain = first_byte(1, 3), first_byte(5, 2)
    frames = [painted[0], plain[0], painted[1], plain[1], painted[2]]
    assert run(nf, frames, 1) == {6: painted, 7: plain}
    assert nf.last_result.drops == {}


def test_check_paint_other_colour_dropped_when_unconnected(nf_factory):
    nf = nf_factory(PAINT)
    painted, plain = first_byte(1, 2), first_byte(5, 3)
    assert run(nf, plain + painted, 2) == {6: painted}
    assert nf.last_result.drops == {drops.PAINT: 3}
    assert nf.read("cpd.drops") == "3"


# -- CheckIPHeader ---------------------------------------------------------------------------

# What passes a path leaves by device 7 (GOOD), a path's other output by device 6 (OTHER).
CHECK = """
FromDevice(0) -> chk :: CheckIPHeader(14) -> good0 :: ToDevice(7);
chk[1] -> bad0 :: ToDevice(6);
FromDevice(1) -> chkd :: CheckIPHeader(OFFSET 14) -> good1 :: ToDevice(7);
FromDevice(2) -> Strip(14) -> nock :: CheckIPHeader(CHECKSUM false) -> good2 :: ToDevice(7);
FromDevice(3) -> Strip(14) -> bsrc :: CheckIPHeader(BADSRC 10.0.0.1 10.0.0.2) -> good3 :: ToDevice(7);
FromDevice(4) -> ifc :: CheckIPHeader(14, INTERFACES 10.1.0.1/16 10.2.0.1/24) -> good4 :: ToDevice(7);
FromDevice(5) -> gd :: CheckIPHeader(14, BADSRC 10.0.0.9, GOODDST 10.0.0.1) -> good5 :: ToDevice(7);
FromDevice(6) -> MarkIPHeader(14) -> ipc_m :: IPClassifier(dst host 10.9.8.7, -);
ipc_m[0] -> m_hit :: ToDevice(7);  ipc_m[1] -> m_miss :: ToDevice(6);
"""
GOOD, OTHER = 7, 6


def good_ip(**kw) -> bytes:
    return bytes(udp(**kw))


def set_bytes(frame: bytes, at: int, value: bytes) -> bytes:
    return frame[:at] + value + frame[at + len(value):]


def _bad_cases() -> dict[str, bytes]:
    base = good_ip()
    cases = {
        "runt-ip-19-bytes": base[:14 + 19],
        "only-ethernet": base[:14],
        "version-6": bytes(udp(version=6)),
        "ihl-4": bytes(udp(ihl=4)),
        "ihl-0": bytes(udp(ihl=0)),
        "ihl-beyond-frame": bytes(Ether() / IP(ihl=15, len=60, options=[IPOption_NOP()] * 40))[:14 + 44],
        "total-length-below-ihl": bytes(udp(len=19)),
        "total-length-beyond-frame": bytes(udp(len=len(base) - 14 + 1)),
        "bad-checksum": bytes(udp(chksum=0x1234)),
        "src-broadcast": good_ip(src="255.255.255.255"),
    }
    # the header's checksum really is wrong / right where the case says so
    assert not ip_header_valid(cases["bad-checksum"][14:34])
    for name in ("version-6", "total-length-below-ihl", "src-broadcast"):
        assert ip_header_valid(cases[name][14:34]), name
    return cases


BAD = _bad_cases()


@pytest.mark.parametrize("case", sorted(BAD))
def test_check_ip_header_bad_to_output_1(nf_factory, case):
    nf = nf_factory(CHECK)
    frame = BAD[case]
    assert run(nf, [frame], 0) == {OTHER: [frame]}


@pytest.mark.parametrize("case", sorted(BAD))
def test_check_ip_header_bad_dropped_when_unconnected(nf_factory, case):
    nf = nf_factory(CHECK)
    assert run(nf, [BAD[case], BAD[case]], 1) == {}
    assert nf.last_result.drops == {drops.BAD_IP: 2}
    assert nf.read("chkd.drops") == "2"


def test_check_ip_header_drops_handler_counts_bad_sent_to_output_1(nf_factory):
    """`drops` is 'bad packets seen' (Click counts those pushed to output 1 too)."""
    nf = nf_factory(CHECK)
    run(nf, list(BAD.values()), 0)
    assert nf.read("chk.drops") == str(len(BAD))


def test_check_ip_header_good_trimmed_to_ip_length(nf_factory):
    nf = nf_factory(CHECK)
    plain = good_ip()
    options = bytes(Ether(dst=MAC_B, src=MAC_A)
                    / IP(src="192.0.2.9", dst="10.0.0.1", options=[IPOption_NOP()] * 8)
                    / TCP(dport=80, flags="S"))
    tiny = bytes(Ether(dst=MAC_B, src=MAC_A) / IP(dst="10.9.9.9", proto=253))  # 20-byte datagram
    frames = [plain + b"\0" * 6, options + b"\xee" * 20, tiny + b"\0" * 26, plain]
    assert Ether(options)[IP].ihl == 7
    want = [plain, options, tiny, plain]
    assert run(nf, frames, 0) == {GOOD: want}
    assert run(nf, frames, 1) == {GOOD: want}
    assert nf.last_result.drops == {}


def test_check_ip_header_sets_ip_annotations(nf_factory):
    """A checked packet's header is marked for the next element: an IPClassifier on
    dst host tells it apart (CheckIPHeader at OFFSET 14 followed by an IPFilter is the
    firewall's pattern; here MarkIPHeader(14) is the same for a well-formed header)."""
    nf = nf_factory(CHECK)
    hit, miss = good_ip(dst="10.9.8.7"), good_ip(dst="10.9.8.8")
    assert run(nf, [hit, miss, hit], 6) == {GOOD: [hit, hit], OTHER: [miss]}


def test_check_ip_header_checksum_false_accepts_bad_checksum(nf_factory):
    nf = nf_factory(CHECK)
    bad = BAD["bad-checksum"]
    assert run(nf, [bad + b"\0\0\0\0"], 2) == {GOOD: [bad[14:]]}
    # the other checks still apply
    assert run(nf, [BAD["version-6"], BAD["total-length-beyond-frame"]], 2) == {}
    assert nf.last_result.drops == {drops.BAD_IP: 2}


def test_check_ip_header_badsrc(nf_factory):
    nf = nf_factory(CHECK)
    frames = [good_ip(src="10.0.0.1"), good_ip(src="10.0.0.3"), good_ip(src="10.0.0.2"),
              good_ip(src="255.255.255.255")]
    assert run(nf, frames, 3) == {GOOD: [frames[1][14:]]}
    assert nf.read("bsrc.drops") == "3"


def test_check_ip_header_interfaces_make_bad_sources(nf_factory):
    nf = nf_factory(CHECK)
    bad = [good_ip(src=s, dst="8.8.8.8") for s in
           ("0.0.0.0", "255.255.255.255", "10.1.255.255", "10.2.0.255")]
    ok = [good_ip(src=s, dst="8.8.8.8") for s in ("10.1.0.1", "10.2.1.255", "10.1.255.254")]
    assert run(nf, bad + ok, 4) == {GOOD: ok}
    assert nf.read("ifc.drops") == "4"


def test_check_ip_header_gooddst_exempts_bad_sources(nf_factory):
    """GOODDST: destinations exempt from BADSRC (Click: a bad source is only bad when
    the destination is not in GOODDST); INTERFACES makes its own addresses GOODDST."""
    nf = nf_factory(CHECK)
    to_good = good_ip(src="10.0.0.9", dst="10.0.0.1")
    to_other = good_ip(src="10.0.0.9", dst="10.0.0.2")
    assert run(nf, [to_good, to_other], 5) == {GOOD: [to_good]}
    to_iface = good_ip(src="10.2.0.255", dst="10.2.0.1")
    assert run(nf, [to_iface], 4) == {GOOD: [to_iface]}


# -- DecIPTTL, SetIPChecksum, MarkIPHeader ------------------------------------------------

# What passes a path leaves by device 7 (GOOD), expired packets by device 6 (OTHER).
TTL = """
FromDevice(0) -> MarkIPHeader(14) -> dt :: DecIPTTL -> ttl_ok :: ToDevice(7);
dt[1] -> ttl_exp :: ToDevice(6);
FromDevice(1) -> MarkIPHeader(14) -> dtd :: DecIPTTL -> ttl_ok1 :: ToDevice(7);
FromDevice(2) -> MarkIPHeader(14) -> dtm :: DecIPTTL(MULTICAST false) -> ttl_m :: ToDevice(7);
FromDevice(3) -> dtn :: DecIPTTL -> ToDevice(7);
FromDevice(4) -> MarkIPHeader(14) -> dta :: DecIPTTL(ACTIVE false) -> ttl_a :: ToDevice(7);
FromDevice(5) -> MarkIPHeader(14) -> sc :: SetIPChecksum -> sc_out :: ToDevice(7);
FromDevice(6) -> sc2 :: SetIPChecksum -> ToDevice(7);
FromDevice(7) -> Strip(14) -> MarkIPHeader -> DecIPTTL -> Unstrip(14) -> ttl_s :: ToDevice(7);
"""


def with_id_for_checksum(fields: dict, want: int, ttl_after: bool) -> bytes:
    """A frame whose IP header checksum is `want` (before, or after TTL - 1), found by
    choosing the IP id: checksum = ~(S + id) where S sums the rest of the header."""
    probe = dict(fields, id=0, chksum=0)
    if ttl_after:
        probe["ttl"] -= 1
    packet = bytes(IP(**probe) / UDP() / Raw(b"v"))
    s = ones_sum(packet[:(packet[0] & 0xF) * 4])
    target = ~want & 0xFFFF          # S + id must fold to this
    ident = target - s if target >= s else target - s + 0xFFFF
    return bytes(Ether(dst=MAC_B, src=MAC_A) / IP(**dict(fields, id=ident)) / UDP() / Raw(b"v"))


def random_ip_fields(rng: random.Random) -> dict:
    fields = dict(src=str(ipaddress.IPv4Address(rng.getrandbits(32))),
                  dst=str(ipaddress.IPv4Address(rng.randrange(1, 0xE0000000))),
                  ttl=rng.randrange(2, 256), tos=rng.randrange(256), id=rng.randrange(65536),
                  flags=rng.choice(["", "DF", "MF"]), frag=rng.choice([0, 0, 1, 8191]))
    if rng.random() < 0.3:
        fields["options"] = [IPOption_NOP()] * (4 * rng.randrange(1, 11))
    return fields


def test_dec_ip_ttl_incremental_checksum_matches_scapy(nf_factory):
    nf = nf_factory(TTL)
    rng = random.Random(1624)
    frames = []
    for k in range(600):
        fields = random_ip_fields(rng)
        proto = rng.choice([UDP(sport=k), TCP(dport=k), ICMP(), Raw(b"")])
        frames.append(bytes(Ether(dst=MAC_B, src=MAC_A) / IP(**fields) / proto))
    # Checksum edge cases: 0x0000 before, 0x0000 after, 0xFFFF (the other zero) before.
    edge = []
    for k in range(40):
        fields = random_ip_fields(rng)
        zero_before = with_id_for_checksum(fields, 0, ttl_after=False)
        assert zero_before[24:26] == b"\0\0", zero_before[24:26].hex()
        zero_after = with_id_for_checksum(fields, 0, ttl_after=True)
        assert ttl_decremented(zero_after)[24:26] == b"\0\0"
        minus_zero = set_bytes(zero_before, 24, b"\xff\xff")
        assert ip_header_valid(minus_zero[14:14 + (minus_zero[14] & 15) * 4])
        edge += [zero_before, zero_after, minus_zero]
    high = []  # checksums near 0xFFFF and TTL 255 / 2
    for ttl in (2, 255):
        for want in (0xFFFE, 0xFF00, 0x00FF, 0x0100, 0x0001):
            fields = dict(random_ip_fields(rng), ttl=ttl)
            f = with_id_for_checksum(fields, want, ttl_after=False)
            assert f[24:26] == want.to_bytes(2, "big"), (hex(want), f[24:26].hex())
            high.append(f)
    frames += edge + high
    want = [ttl_decremented(f) for f in frames]
    for f, w in zip(frames, want):
        assert ip_header_valid(w[14:14 + (w[14] & 15) * 4])
    out = run(nf, frames, 0)
    assert out == {GOOD: want}


def test_dec_ip_ttl_expired_to_output_1(nf_factory):
    nf = nf_factory(TTL)
    frames = [good_ip(ttl=t) for t in (1, 0, 2, 1, 64)]
    out = run(nf, frames, 0)
    assert out == {OTHER: [frames[0], frames[1], frames[3]],
                   GOOD: [ttl_decremented(frames[2]), ttl_decremented(frames[4])]}
    assert Ether(out[GOOD][0])[IP].ttl == 1


def test_dec_ip_ttl_drops_handler_counts_expired(nf_factory):
    """`drops` is 'expired packets seen', also when they leave by output 1 (as in Click)."""
    nf = nf_factory(TTL)
    run(nf, [good_ip(ttl=t) for t in (1, 0, 2)], 0)
    assert nf.read("dt.drops") == "2"


def test_dec_ip_ttl_expired_dropped_when_unconnected(nf_factory):
    nf = nf_factory(TTL)
    frames = [good_ip(ttl=t) for t in (1, 0, 5)]
    assert run(nf, frames, 1) == {GOOD: [ttl_decremented(frames[2])]}
    assert nf.last_result.drops == {drops.TTL_EXPIRED: 2}
    assert nf.read("dtd.drops") == "2"


def test_dec_ip_ttl_multicast_false_leaves_multicast_alone(nf_factory):
    nf = nf_factory(TTL)
    multicast = [good_ip(dst=d, ttl=t) for d, t in
                 (("224.0.0.5", 64), ("239.255.255.250", 1), ("230.1.2.3", 0))]
    unicast = [good_ip(dst="223.255.255.255", ttl=9), good_ip(dst="240.0.0.1", ttl=9)]
    frames = multicast + unicast
    out = run(nf, frames, 2)
    assert out == {GOOD: multicast + [ttl_decremented(f) for f in unicast]}


def test_dec_ip_ttl_without_ip_header_drops(nf_factory):
    nf = nf_factory(TTL)
    assert run(nf, [good_ip()], 3) == {}
    assert nf.last_result.drops == {drops.NO_IP_HEADER: 1}
    nf.reset()
    assert run(nf, [good_ip()[:30]], 0) == {}   # marked, but 16 bytes of header
    assert total_drops(nf) == 1


def test_dec_ip_ttl_active_false_passes_unchanged(nf_factory):
    """ACTIVE false: 'decrement at all' is off, packets pass as they are."""
    nf = nf_factory(TTL)
    frames = [good_ip(ttl=64), good_ip(ttl=1)]
    assert run(nf, frames, 4) == {GOOD: frames}


def test_mark_ip_header_default_offset_after_strip(nf_factory):
    nf = nf_factory(TTL)
    frames = [good_ip(ttl=3), bytes(Ether() / IP(ttl=200, options=[IPOption_NOP()] * 4) / TCP())]
    assert run(nf, frames, 7) == {GOOD: [ttl_decremented(f) for f in frames]}


def test_set_ip_checksum(nf_factory):
    nf = nf_factory(TTL)
    rng = random.Random(5)
    frames = []
    for k in range(100):
        fields = random_ip_fields(rng)
        f = bytes(Ether(dst=MAC_B, src=MAC_A) / IP(**fields, chksum=rng.randrange(65536)) / UDP())
        frames.append(f)
    want = [rebuilt(f) for f in frames]
    for w in want:
        assert ip_header_valid(w[14:14 + (w[14] & 15) * 4])
    assert run(nf, frames, 5) == {GOOD: want}


def test_set_ip_checksum_bad_header_or_none(nf_factory):
    nf = nf_factory(TTL)
    assert run(nf, [BAD["ihl-4"], good_ip()[:25]], 5) == {}
    assert nf.last_result.drops == {drops.BAD_IP: 1, drops.NO_IP_HEADER: 1}
    nf.reset()
    assert run(nf, [good_ip()], 6) == {}
    assert nf.last_result.drops == {drops.NO_IP_HEADER: 1}


# -- route lookups ----------------------------------------------------------------------------

ROUTES = [("10.0.0.0/8", None, 0), ("10.1.0.0/16", None, 1), ("10.1.2.0/24", "10.9.9.9", 2),
          ("10.1.2.128/25", None, 3), ("10.1.2.129/32", None, 0)]
RADIX = [("0.0.0.0/0", "192.168.1.1", 0), ("172.16.0.0/12", None, 1), ("172.16.5.0/24", None, 2)]


def route_text(routes):
    return ", ".join(f"{p} {g or '-'} {o}" if g else f"{p} {o}" for p, g, o in routes)


LOOKUP = f"""
rt :: StaticIPLookup({route_text(ROUTES)});
gw :: StaticIPLookup(10.9.9.9/32 0, 0.0.0.0/0 1);
FromDevice(0) -> MarkIPHeader(14) -> rt;
rt[0] -> r0 :: ToDevice(0);  rt[1] -> r1 :: ToDevice(1);  rt[2] -> gw;
rt[3] -> r3 :: ToDevice(3);
gw[0] -> r2gw :: ToDevice(2);  gw[1] -> r2nogw :: ToDevice(4);
rx :: RadixIPLookup({route_text(RADIX)});
FromDevice(1) -> CheckIPHeader(14) -> rx;
rx[0] -> x0 :: ToDevice(0);  rx[1] -> x1 :: ToDevice(1);  rx[2] -> x2 :: ToDevice(2);
"""
#: The devices StaticIPLookup's routes lead to: rt's outputs 0, 1 and 3 by the same
#: device numbers, its output 2 through `gw` to device 2 (route to 10.9.9.9) or 4.
R2_GW, R2_NO_GW = 2, 4


def longest_match(routes, addr: str):
    a = ipaddress.IPv4Address(addr)
    best = None
    for prefix, gw, port in routes:
        net = ipaddress.IPv4Network(prefix)
        if a in net and (best is None or net.prefixlen > best[0].prefixlen):
            best = (net, gw, port)
    return best


def test_static_lookup_longest_match_and_gateway(nf_factory):
    nf = nf_factory(LOOKUP)
    rng = random.Random(11)
    addrs = ["10.1.2.129", "10.1.2.130", "10.1.2.127", "10.1.2.0", "10.1.3.1", "10.200.0.1",
             "10.1.255.255", "11.0.0.1", "9.255.255.255", "10.0.0.0"]
    addrs += [f"10.1.2.{rng.randrange(256)}" for _ in range(40)]
    addrs += [f"10.{rng.choice([1, 2])}.{rng.randrange(256)}.{rng.randrange(256)}" for _ in range(40)]
    frames = [good_ip(dst=a, sport=k) for k, a in enumerate(addrs)]
    want: dict[int, list] = {}
    no_route = 0
    for a, f in zip(addrs, frames):
        best = longest_match(ROUTES, a)
        if best is None:
            no_route += 1
            continue
        key = best[2]
        if best[2] == 2:
            # the gateway is now the packet's destination annotation; the bytes are unchanged
            key = R2_GW if best[1] == "10.9.9.9" else R2_NO_GW
        want.setdefault(key, []).append(f)
    assert no_route == 2
    assert run(nf, frames, 0) == want
    assert nf.last_result.drops == {drops.NO_ROUTE: no_route}
    assert nf.read("rt.drops") == str(no_route)


def test_radix_lookup_with_default_route(nf_factory):
    nf = nf_factory(LOOKUP)
    addrs = ["172.16.5.1", "172.16.4.1", "172.31.255.255", "172.32.0.0", "8.8.8.8",
             "0.0.0.1", "255.255.255.254", "172.15.255.255"]
    frames = [good_ip(dst=a) for a in addrs]
    want: dict[int, list] = {}
    for a, f in zip(addrs, frames):
        want.setdefault(longest_match(RADIX, a)[2], []).append(f)
    assert run(nf, frames, 1) == want
    assert nf.last_result.drops == {}


# -- Ethernet -----------------------------------------------------------------------------

# Every path leaves by device 7 (GOOD).
ETHER = """
FromDevice(0) -> Strip(14) -> EtherEncap(0x86DD, 02:00:00:00:00:01, 02:00:00:00:00:02)
  -> enc :: ToDevice(7);
FromDevice(1) -> EtherEncap(0x0800, 0a:0b:0c:0d:0e:0f, 01:02:03:04:05:06) -> enc2 :: ToDevice(7);
FromDevice(2) -> erw :: EtherRewrite(02:00:00:00:00:aa, 02:00:00:00:00:bb) -> rw :: ToDevice(7);
FromDevice(3) -> EtherEncap(0x0800, 0:0:0:0:0:1, 0:0:0:0:0:2) -> EtherEncap(0x0800, 0:0:0:0:0:1, 0:0:0:0:0:2)
  -> EtherEncap(0x0800, 0:0:0:0:0:1, 0:0:0:0:0:2) -> EtherEncap(0x0800, 0:0:0:0:0:1, 0:0:0:0:0:2)
  -> EtherEncap(0x0800, 0:0:0:0:0:1, 0:0:0:0:0:2) -> EtherEncap(0x0800, 0:0:0:0:0:1, 0:0:0:0:0:2)
  -> EtherEncap(0x0800, 0:0:0:0:0:1, 0:0:0:0:0:2) -> EtherEncap(0x0800, 0:0:0:0:0:1, 0:0:0:0:0:2)
  -> e9 :: EtherEncap(0x0800, 0:0:0:0:0:1, 0:0:0:0:0:2) -> nine :: ToDevice(7);
FromDevice(4) -> Unstrip(110) -> EtherEncap(0x0800, 0:0:0:0:0:1, 0:0:0:0:0:2)
  -> e2 :: EtherEncap(0x0800, 0:0:0:0:0:1, 0:0:0:0:0:2) -> ToDevice(7);
"""


def test_ether_encap_after_strip(nf_factory):
    nf = nf_factory(ETHER)
    frames = [good_ip(), bytes(Ether() / ARP()), b"\x11" * 14]
    want = [bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x86DD)) + f[14:]
            for f in frames]
    assert run(nf, frames, 0) == {GOOD: want}


def test_ether_encap_pushes_into_headroom(nf_factory):
    nf = nf_factory(ETHER)
    ip_only = [bytes(IP(dst="10.0.0.1") / UDP()), b"\x45"]
    want = [bytes(Ether(src="0a:0b:0c:0d:0e:0f", dst="01:02:03:04:05:06", type=0x0800) / Raw(p))
            for p in ip_only]
    assert run(nf, ip_only, 1) == {GOOD: want}


@host_only("a zero-length frame cannot be sent into the VM (QEMU's stream netdev stalls)")
def test_ether_encap_of_an_empty_frame(nf_factory):
    nf = nf_factory(ETHER)
    want = bytes(Ether(src="0a:0b:0c:0d:0e:0f", dst="01:02:03:04:05:06", type=0x0800))
    assert run(nf, [b""], 1) == {GOOD: [want]}


def test_ether_encap_headroom_limit(nf_factory):
    """Nine headers (126 bytes) fit the headroom; what does not fit is dropped, counted."""
    nf = nf_factory(ETHER)
    header = bytes(Ether(src="00:00:00:00:00:01", dst="00:00:00:00:00:02", type=0x0800))
    frames = [b"payload"]
    assert run(nf, frames, 3) == {GOOD: [header * 9 + frames[0]]}
    assert run(nf, frames, 4) == {}
    assert nf.last_result.drops == {drops.NO_HEADROOM: 1}
    assert nf.read("e2.drops") == "1"


def test_ether_rewrite(nf_factory):
    nf = nf_factory(ETHER)
    frames = [good_ip(), bytes(Ether(type=0x86DD) / IPv6()), b"\x33" * 14]
    want = [with_macs(f, "02:00:00:00:00:aa", "02:00:00:00:00:bb") for f in frames]
    assert run(nf, frames, 2) == {GOOD: want}
    assert run(nf, [b"\x44" * 13, b"\x55"], 2) == {}
    assert nf.last_result.drops == {drops.TOO_SHORT: 2}
    assert nf.read("erw.drops") == "2"


@host_only("a zero-length frame cannot be sent into the VM (QEMU's stream netdev stalls)")
def test_ether_rewrite_empty_frame_too_short(nf_factory):
    nf = nf_factory(ETHER)
    assert run(nf, [b""], 2) == {}
    assert nf.last_result.drops == {drops.TOO_SHORT: 1}
    assert nf.read("erw.drops") == "1"


# -- Classifier, IPClassifier, IPFilter -----------------------------------------------------

# Each classifier's output k leaves by device k.
CLASSIFY = """
c :: Classifier(12/0806 20/0001, 12/0806 20/0002, 12/0800 23/06, 12/0800 23/11 !36/0035,
                12/0800 14/40%f0, 12/88??, 0/ffffffffffff, -);
FromDevice(0) -> c;
c[0] -> c0 :: ToDevice(0);  c[1] -> c1 :: ToDevice(1);  c[2] -> c2 :: ToDevice(2);
c[3] -> c3 :: ToDevice(3);  c[4] -> c4 :: ToDevice(4);  c[5] -> c5 :: ToDevice(5);
c[6] -> c6 :: ToDevice(6);  c[7] -> c7 :: ToDevice(7);
cn :: Classifier(12/0800, 12/0806);
FromDevice(1) -> cn;
cn[0] -> cn0 :: ToDevice(0);  cn[1] -> cn1 :: ToDevice(1);

ipc :: IPClassifier(tcp dst port 80,
                    udp and (src port 53 or src port 5353),
                    icmp type echo,
                    src net 10.0.0.0/8 and ip ttl < 5,
                    tcp opt syn and not tcp opt ack,
                    ip frag,
                    dst host 192.0.2.1 or dst host 192.0.2.2,
                    -);
FromDevice(2) -> CheckIPHeader(14) -> ipc;
ipc[0] -> i0 :: ToDevice(0);  ipc[1] -> i1 :: ToDevice(1);  ipc[2] -> i2 :: ToDevice(2);
ipc[3] -> i3 :: ToDevice(3);  ipc[4] -> i4 :: ToDevice(4);  ipc[5] -> i5 :: ToDevice(5);
ipc[6] -> i6 :: ToDevice(6);  ipc[7] -> i7 :: ToDevice(7);

ipf :: IPFilter(allow tcp dst port 22,
                deny src host 10.0.0.1,
                2 udp,
                allow icmp,
                1 ip ttl > 200);
FromDevice(3) -> CheckIPHeader(14) -> ipf;
ipf[0] -> f0 :: ToDevice(0);  ipf[1] -> f1 :: ToDevice(1);  ipf[2] -> f2 :: ToDevice(2);
"""


def classifier_port(b: bytes) -> int:
    """Classifier's patterns above, written as Python."""
    def at(off, value: bytes, mask: bytes | None = None):
        if off + len(value) > len(b):
            return False
        got = b[off:off + len(value)]
        mask = mask or b"\xff" * len(value)
        return all(g & m == v & m for g, v, m in zip(got, value, mask))
    rules = [
        at(12, b"\x08\x06") and at(20, b"\x00\x01"),
        at(12, b"\x08\x06") and at(20, b"\x00\x02"),
        at(12, b"\x08\x00") and at(23, b"\x06"),
        at(12, b"\x08\x00") and at(23, b"\x11") and not at(36, b"\x00\x35"),
        at(12, b"\x08\x00") and at(14, b"\x40", b"\xf0"),
        at(12, b"\x88\x00", b"\xff\x00"),
        at(0, b"\xff" * 6),
        True,
    ]
    return rules.index(True)


def classifier_frames(rng: random.Random) -> list[bytes]:
    frames = [
        bytes(Ether() / ARP(op=1)), bytes(Ether() / ARP(op=2)), bytes(Ether() / ARP(op=3)),
        bytes(Ether() / IP() / TCP()), bytes(Ether() / IP() / UDP(dport=53)),
        bytes(Ether() / IP() / UDP(dport=54)), bytes(Ether() / IP() / ICMP()),
        bytes(Ether() / IP(version=5) / ICMP()), bytes(Ether(type=0x8847) / Raw(b"m" * 30)),
        bytes(Ether(type=0x88CC) / Raw(b"l" * 30)), bytes(Ether(type=0x8900) / Raw(b"n" * 30)),
        bytes(Ether(dst="ff:ff:ff:ff:ff:ff", type=0x1234) / Raw(b"b" * 30)),
        bytes(Ether(type=0x86DD) / IPv6()),
    ]
    for _ in range(150):
        base = rng.choice(frames)
        f = bytearray(base)
        for _ in range(rng.randrange(3)):
            f[rng.randrange(len(f))] = rng.choice([0x00, 0x01, 0x02, 0x06, 0x08, 0x11, 0x35,
                                                   0x40, 0x45, 0x88, 0xFF, rng.randrange(256)])
        frames.append(bytes(f))
    return frames


def test_classifier_patterns_against_python(nf_factory):
    nf = nf_factory(CLASSIFY)
    frames = classifier_frames(random.Random(3))
    want: dict[int, list] = {}
    for f in frames:
        want.setdefault(classifier_port(f), []).append(f)
    assert len(want) == 8, sorted(want)   # every pattern is exercised
    assert run(nf, frames, 0) == want


def test_classifier_short_frames(nf_factory):
    """Bytes a clause needs that are not in the packet do not match; `-` always does."""
    nf = nf_factory(CLASSIFY)
    frames = [b"\x01", b"\xff" * 5, b"\xff" * 6, b"\0" * 12 + b"\x08", b"\0" * 12 + b"\x08\x06",
              b"\0" * 12 + b"\x08\x06" + b"\0" * 7]
    want = {7: [frames[0], frames[1], frames[3], frames[4], frames[5]], 6: [frames[2]]}
    assert run_raw(nf, frames, 0) == want


@host_only("a zero-length frame cannot be sent into the VM (QEMU's stream netdev stalls)")
def test_classifier_empty_frame(nf_factory):
    """`-` matches even an empty frame, which then reaches its device and is dropped
    there as EMPTY (not FILTERED, as it would be had no pattern matched)."""
    nf = nf_factory(CLASSIFY)
    assert run_raw(nf, [b""], 0) == {}
    assert nf.last_result.drops == {drops.EMPTY: 1}


def test_classifier_no_match_dropped_filtered(nf_factory):
    nf = nf_factory(CLASSIFY)
    ip4, arp, v6 = good_ip(), bytes(Ether() / ARP()), bytes(Ether() / IPv6())
    assert run(nf, [v6, ip4, arp, v6, b"\x08"], 1) == {0: [ip4], 1: [arp]}
    assert nf.last_result.drops == {drops.FILTERED: 3}
    assert nf.read("cn.drops") == "3"


@host_only("a zero-length frame cannot be sent into the VM (QEMU's stream netdev stalls)")
def test_classifier_no_match_empty_frame(nf_factory):
    nf = nf_factory(CLASSIFY)
    assert run(nf, [b""], 1) == {}
    assert nf.last_result.drops == {drops.FILTERED: 1}
    assert nf.read("cn.drops") == "1"


def ip_view(frame: bytes) -> dict:
    """Fields of a checked frame (trimmed to the IP length), as IPClassifier sees them;
    transport fields are None unless unfragmented-or-first-fragment and present."""
    ip = frame[14:]
    hlen = (ip[0] & 0xF) * 4
    total = struct.unpack(">H", ip[2:4])[0]
    ip = ip[:total]
    frag_word = struct.unpack(">H", ip[6:8])[0]
    v = dict(proto=ip[9], ttl=ip[8], src=ipaddress.IPv4Address(ip[12:16]),
             dst=ipaddress.IPv4Address(ip[16:20]), frag=(frag_word & 0x3FFF) != 0,
             sport=None, dport=None, flags=None, icmp_type=None)
    first = (frag_word & 0x1FFF) == 0
    l4 = ip[hlen:]
    if first and ip[9] in (6, 17):
        if len(l4) >= 2:
            v["sport"] = struct.unpack(">H", l4[0:2])[0]
        if len(l4) >= 4:
            v["dport"] = struct.unpack(">H", l4[2:4])[0]
    if first and ip[9] == 6 and len(l4) >= 14:
        v["flags"] = l4[13]
    if first and ip[9] == 1 and len(l4) >= 1:
        v["icmp_type"] = l4[0]
    return v


def ipclassifier_port(frame: bytes) -> int:
    v = ip_view(frame)
    tcp, udp_, icmp = v["proto"] == 6, v["proto"] == 17, v["proto"] == 1
    rules = [
        tcp and v["dport"] == 80,
        udp_ and (v["sport"] == 53 or v["sport"] == 5353),
        icmp and v["icmp_type"] == 8,
        v["src"] in ipaddress.IPv4Network("10.0.0.0/8") and v["ttl"] < 5,
        v["flags"] is not None and bool(v["flags"] & 0x02) and not (v["flags"] & 0x10),
        v["frag"],
        str(v["dst"]) in ("192.0.2.1", "192.0.2.2"),
        True,
    ]
    return rules.index(True)


def ipfilter_port(frame: bytes) -> int:
    v = ip_view(frame)
    if v["proto"] == 6 and v["dport"] == 22:
        return 0
    if str(v["src"]) == "10.0.0.1":
        return -1
    if v["proto"] == 17:
        return 2
    if v["proto"] == 1:
        return 0
    if v["ttl"] > 200:
        return 1
    return -1


def ip_traffic(rng: random.Random, n: int) -> list[bytes]:
    frames = []
    for k in range(n):
        src = rng.choice(["10.0.0.1", "10.1.2.3", "192.0.2.1", "198.51.100.9",
                          f"10.{rng.randrange(256)}.0.1", f"203.0.113.{rng.randrange(256)}"])
        dst = rng.choice(["192.0.2.1", "192.0.2.2", "192.0.2.3", "10.0.0.1", "8.8.8.8"])
        ttl = rng.choice([0, 1, 4, 5, 64, 200, 201, 255])
        frag = rng.choice([dict(), dict(), dict(flags="DF"), dict(flags="MF"),
                           dict(frag=rng.randrange(1, 8192)), dict(flags="MF", frag=3)])
        opts = dict(options=[IPOption_NOP()] * 4) if rng.random() < 0.15 else {}
        port = rng.choice([22, 53, 80, 5353, 443, rng.randrange(65536)])
        kind = rng.randrange(5)
        if kind == 0:
            l4 = TCP(sport=rng.choice([53, 80, 1234]), dport=port,
                     flags=rng.choice(["S", "SA", "A", "F", "R", "PA", ""]))
        elif kind == 1:
            l4 = UDP(sport=rng.choice([53, 5353, 1234, port]), dport=port)
        elif kind == 2:
            l4 = ICMP(type=rng.choice([0, 3, 8, 11, 13]))
        elif kind == 3:
            l4 = Raw(b"g" * 12)
        else:
            l4 = TCP(dport=port, flags="S")
        if kind == 3:
            opts["proto"] = 47   # GRE: no transport fields for the classifiers
        ip = IP(src=src, dst=dst, ttl=ttl, **frag, **opts)
        pkt = Ether(dst=MAC_B, src=MAC_A) / ip / l4 / Raw(b"d" * rng.randrange(20))
        raw = bytes(pkt)
        if rng.random() < 0.1:
            # the IP length stops inside the transport header: its fields are not there
            hlen = (raw[14] & 15) * 4
            cut = min(hlen + rng.choice([1, 2, 3, 13]), len(raw) - 14)
            pkt[IP].len = cut
            del pkt[IP].chksum
            raw = bytes(pkt)
        if rng.random() < 0.2:
            raw += b"\0" * rng.randrange(1, 20)   # Ethernet padding
        frames.append(raw)
    return frames


def trimmed(frame: bytes) -> bytes:
    return frame[:14 + struct.unpack(">H", frame[16:18])[0]]


def test_ipclassifier_against_python(nf_factory):
    nf = nf_factory(CLASSIFY)
    frames = ip_traffic(random.Random(80), 400)
    want: dict[int, list] = {}
    for f in frames:
        want.setdefault(ipclassifier_port(f), []).append(trimmed(f))
    assert len(want) == 8, sorted(want)
    assert run(nf, frames, 2) == want
    assert nf.last_result.drops == {}


def test_ipfilter_against_python(nf_factory):
    nf = nf_factory(CLASSIFY)
    frames = ip_traffic(random.Random(22), 400)
    want: dict[int, list] = {}
    denied = 0
    for f in frames:
        port = ipfilter_port(f)
        if port < 0:
            denied += 1
        else:
            want.setdefault(port, []).append(trimmed(f))
    assert len(want) == 3 and denied > 20
    assert run(nf, frames, 3) == want
    assert nf.last_result.drops == {drops.FILTERED: denied}
    assert nf.read("ipf.drops") == str(denied)


# -- ToDump passing packets on, handlers ------------------------------------------------------


@host_only("ToDump writes a file on the host; the unikernel build rejects it")
def test_todump_passes_packets_on_when_connected(nf_factory):
    """ToDump's manual: it writes the packets and passes them on if its output is connected."""
    nf = nf_factory("FromDevice(0) -> d :: ToDump(d.pcap) -> ToDevice(1);")
    frames = numbered(3)
    assert run(nf, frames, 0) == {"d": frames, 1: frames}


HANDLERS = [
    (STANDARD, "cnt", ["count", "byte_count", "rate"]),
    (STANDARD, "disc", ["count", "active"]),
    (STANDARD, "f0", ["count", "drops"]),
    (STANDARD, "t1", ["count", "drops"]),
    (STANDARD, "q", ["length", "highwater_length", "drops", "capacity"]),
    (CHECK, "chk", ["drops"]),
    (TTL, "dt", ["drops", "active"]),
    (PAINT, "cp", ["color"]),
    (ETHER, "erw", ["src", "dst"]),
    (LOOKUP, "rt", ["table"]),
    (CLASSIFY, "c", ["program"]),
    (CLASSIFY, "ipf", ["program"]),
]


@pytest.mark.parametrize("config,element,names", HANDLERS,
                         ids=[f"{e}" for _, e, _ in HANDLERS])
def test_documented_read_handlers_are_readable(nf_factory, config, element, names):
    nf = nf_factory(config)
    missing = []
    for name in names:
        try:
            value = nf.read(f"{element}.{name}")
        except NfvError as e:
            missing.append(f"{name}: {e}")
            continue
        assert isinstance(value, str)
    assert not missing, "\n".join(missing)


def test_handler_values_after_traffic(nf_factory):
    nf = nf_factory(STANDARD)
    run(nf, numbered(6), 0)
    assert nf.read("q.capacity") == "1000"
    assert nf.read("sq.capacity") == "10"
    assert nf.read("q.drops") == "0"
    assert nf.read("q.length") == "0"
