"""DESIGN.md's rule: malformed frames never raise and never read out of bounds.

A subprocess compiles four configs that together use every element class, each
placed where raw, unchecked frames reach it (harsher than any shipped config, where
CheckIPHeader screens most of them), with Numba's bounds checks on (NUMBA_BOUNDSCHECK=1; NFV_CACHE and NUMBA_CACHE_DIR
point at a directory of their own, so the checked build never mixes with the fast
one) and calls each generated batch function directly, with arrays laid out as
dataplane/driver.pyx lays them out, on hypothesis-generated mutated frames.  Every
frame runs twice: in a batch with spare slots for copies, and alone in a pool that
ends exactly where the frame ends, so a read one byte past any packet is an
IndexError.  The same frames then go through the normal driver path in this process,
into the every-configs and every shipped config.  (The shipped configs were in the
checked run too until their compiles, ~4 minutes of it, made the suite wait.)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import CONFIGS, ROOT

# Every element class nfv compiles, placed so that raw malformed frames reach each
# kernel before any check and after one.  (test_every_element_is_covered keeps it whole.)
# Four configs rather than one: Numba's compile time grows faster than the graph.
EVERY = """\
cl :: Classifier(12/0800, 12/0806 20/0001, !12/86dd 14/45%f0, -);
ps :: PaintSwitch;
FromDevice(0) -> cl;
cl[0] -> Strip(14) -> chk :: CheckIPHeader(BADSRC 10.0.0.1)
      -> rt :: StaticIPLookup(10.0.0.0/8 0, 0.0.0.0/0 10.0.0.1 1);
chk[1] -> Counter -> Discard;
rt[0] -> dt :: DecIPTTL -> SetIPChecksum -> Unstrip(14)
      -> EtherRewrite(02:00:00:00:00:01, 02:00:00:00:00:02) -> Queue -> ToDevice(1);
dt[1] -> Idle;
rt[1] -> ipc :: IPClassifier(tcp dst port 80, udp src port 53, icmp type echo, ip frag, -);
ipc[0] -> EtherEncap(0x0800, 02:00:00:00:00:01, 02:00:00:00:00:02) -> ToDevice(2);
ipc[1] -> Paint(2) -> ps;
ipc[2] -> Null -> SimpleQueue -> ToDevice(2);
ipc[3] -> Print(frag) -> ToDevice(2);
ipc[4] -> Discard;
ps[0] -> ToDevice(3);  ps[1] -> ToDevice(3);  ps[2] -> ToDevice(4);
cl[1] -> t :: Tee(3);
t[0] -> ToDevice(1);  t[1] -> Strip(14) -> ToDevice(2);  t[2] -> Unstrip(14) -> ToDevice(3);
cl[2] -> hs :: HashSwitch(26, 8);
hs[0] -> ToDevice(1);  hs[1] -> rr :: RoundRobinSwitch;
rr[0] -> ToDevice(1);  rr[1] -> cp :: CheckPaint(0) -> ToDevice(2);  cp[1] -> Discard;
cl[3] -> Discard;
"""

EVERY_RAW_IP = """\
// the IP kernels on frames whose header is marked but never checked
FromDevice(1) -> MarkIPHeader(14) -> dt1 :: DecIPTTL(MULTICAST false) -> SetIPChecksum
  -> ipf :: IPFilter(allow tcp src port 1000-2000, 1 udp and ip len > 100,
                     deny src net 10.0.0.0/8, allow all);
ipf[0] -> rx :: RadixIPLookup(0.0.0.0/0 0, 10.0.0.0/8 10.0.0.1 1) -> ToDevice(0);
rx[1] -> ToDevice(1);
ipf[1] -> ToDevice(0);
dt1[1] -> ToDevice(0);
"""

EVERY_HEADERS = """\
// headers pushed and pulled on frames of any length
FromDevice(2) -> Strip(40) -> Unstrip(40) -> EtherEncap(0x0800, 1:2:3:4:5:6, 1:2:3:4:5:7)
  -> Strip(20) -> hs2 :: HashSwitch(100, 20);
hs2[0] -> ToDevice(0);  hs2[1] -> ToDevice(1);
FromDevice(3) -> MarkIPHeader(1900) -> DecIPTTL -> SetIPChecksum -> StaticIPLookup(0.0.0.0/0 0)
  -> ToDevice(0);
FromDevice(4) -> CheckIPHeader(OFFSET 14, CHECKSUM false) -> Counter -> ToDevice(0);
FromDevice(5) -> EtherRewrite(1:1:1:1:1:1, 2:2:2:2:2:2) -> Unstrip(128) -> Strip(128)
  -> Paint(255) -> ps2 :: PaintSwitch;
ps2[0] -> ToDevice(0);  ps2[1] -> ToDevice(1);
FromDump(in.pcap) -> Counter -> ToDump(out.pcap);
InfiniteSource(LIMIT 1) -> Counter -> ToDevice(0);
RatedSource(LIMIT 1) -> Discard;
FromDevice(6) -> ARPResponder(192.0.2.1 1:2:3:4:5:6, 0.0.0.0/0 1:2:3:4:5:7) -> ToDevice(0);
FromDevice(7) -> MarkIPHeader(14) -> ping7 :: ICMPPingResponder -> ToDevice(0);
ping7[1] -> ICMPError(192.0.2.1, unreachable, needfrag, PMTU 1400) -> ToDevice(0);
"""

EVERY_FLOWS = """\
// the flow tables and ARPQuerier on raw frames: rewriters behind a marked, unchecked IP
// header, with tables small enough to fill; SCRIPT's templates include a reply and ICMP
// errors quoting flows rw maps
IPRewriterPatterns(out 198.51.100.1 5000-5001 - -);
rr :: RoundRobinIPMapper(- - 10.0.1.1 80 0 1, - 2000-2001 10.0.1.2 - 0 1);
FromDevice(0) -> MarkIPHeader(14)
  -> [0] rw :: IPRewriter(pattern 192.0.2.1 1024-1027 - - 0 1, pass 2, CAPACITY 3);
FromDevice(1) -> MarkIPHeader(14) -> [1] rw;
rw[0] -> ToDevice(0);  rw[1] -> ToDevice(1);
rw[2] -> [1] ping :: ICMPPingRewriter(pattern 192.0.2.1 7000-7001 - - 0 1, drop, CAPACITY 2);
FromDevice(2) -> MarkIPHeader(14) -> [0] tr :: TCPRewriter(rr, drop, CAPACITY 2);
FromDevice(3) -> MarkIPHeader(14) -> [1] tr;
tr[0] -> ToDevice(0);  tr[1] -> [2] ur;
FromDevice(4) -> MarkIPHeader(14)
  -> [0] ur :: UDPRewriter(pattern out 0 1, keep 0 1, pass 2, CAPACITY 2);
FromDevice(5) -> MarkIPHeader(14) -> [1] ur;
ur[0] -> ToDevice(0);  ur[1] -> ToDevice(1);  ur[2] -> [0] ping;
ping[0] -> ToDevice(0);  ping[1] -> ToDevice(1);
FromDevice(6) -> arp_or_ip :: Classifier(12/0806, -);
arp_or_ip[1] -> Strip(14)
  -> [0] aq :: ARPQuerier(192.0.2.1/24, 1:2:3:4:5:6, CAPACITY 2, ENTRY_CAPACITY 2)
  -> ToDevice(0);
aq[1] -> ToDevice(1);
arp_or_ip[0] -> [1] aq;
// TCP to the load balancer's client side, the rest to its backend side
FromDevice(7) -> MarkIPHeader(14) -> side :: Classifier(23/06, -);
side[0] -> [0] lb :: IPLoadBalancer(192.0.2.80, 80, BACKENDS 10.0.1.1 10.0.1.2:8080,
                                    TABLE_SIZE 23, CAPACITY 2);
side[1] -> [1] lb;
lb[0] -> ToDevice(0);  lb[1] -> ToDevice(1);  lb[2] -> ToDevice(2);
"""

MAX_EXAMPLES = 500
MAX_FRAMES = 32

# The script the checked subprocess runs: argv = configs (JSON list of [name, path or
# text]), the file to write the frames it tried to, max examples.
SCRIPT = r'''
import json
import os
import struct
import sys

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_NOP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from nfv import drops
from nfv.compile import compile_graph
from nfv.compile.plan import HEADER_BYTES
from nfv.errors import ConfigErrors
from nfv.dataplane.packet import BUF_STRIDE, HEADROOM, META_DTYPE, NO_NET_HEADER, NO_PORT
from nfv.host import load_graph

assert os.environ.get("NUMBA_BOUNDSCHECK") == "1"
configs = json.loads(sys.argv[1])
frames_out = sys.argv[2]
max_examples = int(sys.argv[3])
max_frames = int(sys.argv[4])
MAX_FRAME = BUF_STRIDE - HEADROOM     # 1920: the largest frame a slot holds

pipelines = []
for name, config in configs:
    try:
        p = compile_graph(load_graph(config), "host", boundscheck=True)
    except ConfigErrors as e:
        if not name.startswith("every") and "cannot be compiled yet" in str(e):
            print(f"skipped {name}: {e}", flush=True)   # a config ahead of its kernels
            continue
        raise
    ports = sorted(p.plan.entries)
    outs = set(p.plan.device_numbers.values())
    arena = p.new_arena()
    pipelines.append((name, p, ports, outs, arena))
    print(f"compiled {name}: entries {ports}", flush=True)

e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
TEMPLATES = [bytes(x) for x in (
    e / IP(src="203.0.113.1", dst="192.0.2.80") / TCP(dport=80, flags="S") / Raw(b"a" * 20),
    e / IP(src="10.0.0.1", dst="192.0.2.53") / UDP(sport=53, dport=53) / Raw(b"b" * 30),
    e / IP(dst="192.0.2.1", ttl=1) / ICMP(type=8) / Raw(b"c" * 8),
    e / IP(dst="224.0.0.5", flags="MF", frag=0) / UDP(sport=1500, dport=1500),
    e / IP(dst="192.0.2.9", frag=100) / Raw(b"d" * 40),
    e / IP(dst="10.1.2.3", options=[IPOption_NOP()] * 40) / TCP(sport=1500),
    e / ARP(op=1, pdst="192.0.2.1"),
    Ether(type=0x86DD) / IPv6() / UDP(),
    e / IP(dst="1.2.3.4", proto=47) / Raw(b"g" * 1800),
    # a reply and ICMP errors for flows every-flows.click's rw maps (its first port is
    # 1024; the UDP template above is such a flow)
    e / IP(src="192.0.2.53", dst="192.0.2.1") / UDP(sport=53, dport=1024) / Raw(b"h" * 8),
    e / IP(src="198.51.100.9", dst="192.0.2.1") / ICMP(type=11)
      / Raw(bytes(IP(src="192.0.2.1", dst="192.0.2.53") / UDP(sport=1024, dport=53))[:28]),
    e / IP(src="192.0.2.80", dst="192.0.2.1") / ICMP(type=3, code=3)
      / Raw(bytes(IP(src="192.0.2.1", dst="192.0.2.80") / TCP(sport=1025, dport=80))),
    e / ARP(op=2, psrc="192.0.2.7", hwsrc="02:00:00:00:00:07", pdst="192.0.2.1"),
)]
OFFSETS = [0, 1, 12, 13, 14, 15, 16, 17, 20, 21, 22, 23, 24, 25, 34, 36, 37, 47]


@st.composite
def frame(draw):
    f = bytearray(draw(st.sampled_from(TEMPLATES)))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["cut", "byte", "ihl", "version", "len", "csum", "frag",
                                   "type", "pad", "proto", "empty"]))
        if op == "cut":
            del f[draw(st.integers(0, len(f))):]
        elif op == "empty":
            f = bytearray()
        elif op == "pad":
            f += bytes(draw(st.integers(1, MAX_FRAME)))
        elif op == "byte" and f:
            f[draw(st.sampled_from([k for k in OFFSETS if k < len(f)] or [0]))] = \
                draw(st.integers(0, 255))
        elif op == "ihl" and len(f) > 14:
            f[14] = (f[14] & 0xF0) | draw(st.integers(0, 15))
        elif op == "version" and len(f) > 14:
            f[14] = (f[14] & 0x0F) | (draw(st.integers(0, 15)) << 4)
        elif op == "len" and len(f) > 17:
            f[16:18] = struct.pack(">H", draw(st.sampled_from(
                [0, 1, 19, 20, 21, len(f) - 14, len(f) - 13, 1500, 65535])) & 0xFFFF)
        elif op == "csum" and len(f) > 25:
            f[24:26] = struct.pack(">H", draw(st.integers(0, 65535)))
        elif op == "frag" and len(f) > 21:
            f[20:22] = struct.pack(">H", draw(st.sampled_from([0x2000, 0x4000, 0x0001, 0x1FFF,
                                                                0x3FFF, 0xFFFF])))
        elif op == "type" and len(f) > 13:
            f[12:14] = draw(st.sampled_from([b"\x08\x00", b"\x08\x06", b"\x86\xdd",
                                             b"\x81\x00", b"\xff\xff", b"\x00\x00"]))
        elif op == "proto" and len(f) > 23:
            f[23] = draw(st.sampled_from([1, 6, 17, 47, 0, 255]))
    return bytes(f[:MAX_FRAME])


seen = []


def check(name, p, outs, pool, meta, n, cap, ret):
    assert n <= ret <= cap, f"{name}: returned {ret} for {n} packets (capacity {cap})"
    for i in range(ret):
        m = meta[i]
        if m["out_port"] == NO_PORT:
            assert m["drop_reason"] in drops.NAMES and m["drop_reason"] != 0, \
                f"{name}: record {i} dropped with reason {m['drop_reason']}"
        else:
            assert int(m["out_port"]) in outs, f"{name}: record {i} to port {m['out_port']}"
            assert int(m["offset"]) + int(m["length"]) <= len(pool), \
                f"{name}: record {i} ends past the pool"


def fill(meta, i, offset, length, port):
    meta[i]["timestamp_ns"] = 1000 + i
    meta[i]["offset"] = offset
    meta[i]["net_offset"] = NO_NET_HEADER
    meta[i]["length"] = length
    meta[i]["in_port"] = port
    meta[i]["out_port"] = NO_PORT


def free_list(arena, slots):
    free = arena[:HEADER_BYTES].view(np.uint32)
    free[0] = len(slots)
    free[2:2 + len(slots)] = slots


def run_batch(p, pool, meta, n, cap, arena):
    return int(p.module.run_batch(pool, meta, np.int32(n), np.int32(cap), arena,
                                  np.uint64(5_000_000_000)))


def in_batch(entry, frames):
    """All frames in one batch, ports cycling over the entries, spare slots for copies."""
    name, p, ports, outs, arena = entry
    n, spare = len(frames), 64
    pool = np.full((n + spare) * BUF_STRIDE, 0xA5, np.uint8)
    meta = np.zeros(n + spare, META_DTYPE)
    for i, f in enumerate(frames):
        at = i * BUF_STRIDE + HEADROOM
        pool[at:at + len(f)] = np.frombuffer(f, np.uint8)
        fill(meta, i, at, len(f), ports[i % len(ports)])
    free_list(arena, list(range(n + spare - 1, n - 1, -1)))
    ret = run_batch(p, pool, meta, n, n + spare, arena)
    check(name, p, outs, pool, meta, n, n + spare, ret)


def alone(entry, f, port):
    """One frame in slot 1 of a pool that ends with it; slot 0 is free for a copy."""
    name, p, ports, outs, arena = entry
    at = BUF_STRIDE + HEADROOM
    pool = np.full(at + len(f), 0xA5, np.uint8)
    pool[at:] = np.frombuffer(f, np.uint8)
    meta = np.zeros(2, META_DTYPE)
    fill(meta, 0, at, len(f), port)
    free_list(arena, [0])
    ret = run_batch(p, pool, meta, 1, 2, arena)
    check(name, p, outs, pool, meta, 1, 2, ret)


def exercise(frames):
    seen.extend(frames)
    for entry in pipelines:
        in_batch(entry, frames)
        for f in frames:
            for port in entry[2]:
                alone(entry, f, port)


def canary():
    """Prove the checks are on: a record claiming more bytes than the pool holds makes
    CheckIPHeader(CHECKSUM false) (device 4 of every-headers) read the source address past the pool's
    end, which must be an IndexError."""
    entry = next(x for x in pipelines if x[0] == "every-headers.click")
    name, p, ports, outs, arena = entry
    f = TEMPLATES[0]
    at = BUF_STRIDE + HEADROOM
    pool = np.full(at + 24, 0xA5, np.uint8)
    pool[at:] = np.frombuffer(f[:24], np.uint8)
    meta = np.zeros(2, META_DTYPE)
    fill(meta, 0, at, len(f), 4)
    free_list(arena, [0])
    try:
        run_batch(p, pool, meta, 1, 2, arena)
    except IndexError:
        print("canary: a read past the pool is an IndexError", flush=True)
        return
    raise SystemExit("canary: reading past the pool raised nothing: bounds checks are off")


canary()

# Hand-picked edges first: every length around the headers, and the biggest frame.
base = TEMPLATES[0]
edges = [base[:k] for k in range(0, 60)] + [b"", TEMPLATES[-1] + bytes(MAX_FRAME),
                                             bytes(MAX_FRAME)]
for k in range(0, len(edges), 32):
    exercise([bytes(x[:MAX_FRAME]) for x in edges[k:k + 32]])
print(f"edges: {len(edges)} frames ok", flush=True)


@settings(derandomize=True, max_examples=max_examples, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.lists(frame(), min_size=1, max_size=max_frames))
def fuzz(frames):
    exercise(frames)


fuzz()
with open(frames_out, "w") as out:
    for f in seen[:3000]:
        out.write(f.hex() + "\n")
print(f"fuzz: {len(seen)} frames ok", flush=True)
'''


def checked_cache() -> Path:
    """A cache of the checked build's own, kept between sessions (it compiles slowly)."""
    path = Path(tempfile.gettempdir()) / f"nfv-boundscheck-cache-{os.getuid()}"
    path.mkdir(exist_ok=True)
    return path


EVERY_PARTS = {"every-classify.click": EVERY, "every-raw-ip.click": EVERY_RAW_IP,
               "every-headers.click": EVERY_HEADERS, "every-flows.click": EVERY_FLOWS}

# the fast builds the driver-path tests use, compiled in the background while earlier
# tests run (tests/conftest.py)
PREBUILD = [(str(c), "host") for c in CONFIGS] + [(t, "host") for t in EVERY_PARTS.values()]


@pytest.fixture(scope="module")
def every_configs() -> dict[str, str]:
    """The configs as text (not files in a temporary directory), so their generated
    pipelines are the same from one session to the next and stay in the caches."""
    return dict(EVERY_PARTS)


class CheckedRun:
    """The checked subprocess, started in the background as soon as the session has
    collected this file's tests (tests/conftest.py calls `start`): it compiles for
    minutes on one core while the rest of the suite uses the other."""

    def __init__(self, work: Path):
        (work / "check.py").write_text(SCRIPT)
        configs = [list(x) for x in EVERY_PARTS.items()]
        cache = checked_cache()
        env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(cache / "numba"),
                   NFV_CACHE=str(cache / "nfv"), PYTHONDONTWRITEBYTECODE="1")
        self.frames_file = work / "frames.txt"
        self.log = work / "check.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                ["nice", "-n", "19", sys.executable, str(work / "check.py"), json.dumps(configs),
                 str(self.frames_file), str(MAX_EXAMPLES), str(MAX_FRAMES)],
                cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT, text=True)

    def result(self, timeout: float = 1500) -> tuple[int, str, list[bytes]]:
        """(return code, output, fuzz frames) once the subprocess has ended."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = f"timed out after {timeout} s"
        output = self.log.read_text()
        frames = [bytes.fromhex(l) for l in self.frames_file.read_text().split()] \
            if self.frames_file.exists() else []
        return code, output, frames

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


_started: list[CheckedRun] = []


def start(tmp_path_factory) -> CheckedRun:
    """Start the checked run once per session (conftest.py, at collection's end)."""
    if not _started:
        _started.append(CheckedRun(tmp_path_factory.mktemp("malformed")))
    return _started[0]


@pytest.fixture(scope="module")
def checked_run(tmp_path_factory):
    run = start(tmp_path_factory)
    yield run.result()
    run.stop()


def test_every_element_is_covered():
    """The EVERY configs use each element class nfv can compile (add new ones here)."""
    from nfv.element import registry
    from nfv.host import load_graph

    used = {el.class_name for text in EVERY_PARTS.values()
            for el in load_graph(text).elements.values()}
    assert set(registry()) - used == set()


def test_checked_build_never_raises_or_reads_out_of_bounds(checked_run):
    code, output, frames = checked_run
    assert code == 0, output[-12000:]
    assert "canary: a read past the pool is an IndexError" in output
    assert "fuzz:" in output
    assert len(frames) > 1500


def test_driver_path_with_the_same_frames(checked_run, nf_factory, every_configs):
    """The fast build, through the Cython driver: nothing raises, every record is
    accounted for (sent or dropped with a reason)."""
    _, _, frames = checked_run
    if not frames:
        pytest.skip("the checked run produced no frames (see the other test)")
    from nfv.dataplane.pcap import PacketList

    for config in [str(c) for c in CONFIGS] + list(every_configs.values()):
        nf = nf_factory(config)
        for port in sorted(nf.host.plan.entries):
            result = nf.host.run(PacketList.from_bytes(frames, ports=port))
            sent = sum(len(p) for p in result.outputs.values())
            assert sent + sum(result.drops.values()) == result.packets + result.created
            assert result.packets == len(frames)
            assert 0 not in result.drops


def test_nf_send_with_the_same_frames(checked_run, nf_factory):
    """`NF.send`, the test API, with the same frames into every device of the shipped
    configs: no exception, and what it returns is what the driver sent."""
    _, _, frames = checked_run
    if not frames:
        pytest.skip("the checked run produced no frames (see the other test)")
    for config in CONFIGS:
        nf = nf_factory(str(config))
        for port in sorted(nf.host.plan.entries):
            out = nf.send(frames, port)
            for key, pkts in out.items():
                number = key if isinstance(key, int) else nf.host.output_port(key)
                assert [bytes(p) for p in pkts] == nf.last_result.outputs[number].to_list()
