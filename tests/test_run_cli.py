"""`nfv run` as a user runs it: a subprocess, pcaps written by scapy, read back by scapy.

Expected outputs are built with scapy from the inputs (TTL - 1 and the header
checksum recomputed by scapy), never copied from nfv.  Every error case must end
in one clear line on stderr and a non-zero exit, never a traceback (`run_nfv`
checks the traceback part for every call).

Configs are written once per module into a work directory and named by a relative
path, so their generated pipelines hash the same from one session to the next and
Numba's disk cache serves them.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw
from scapy.utils import rdpcap, wrpcap, wrpcapng

from conftest import NFV, ROOT, run_nfv

FIREWALL = str(ROOT / "configs" / "firewall.click")
WAN, LAN = "02:00:00:00:00:01", "02:00:00:00:00:02"

DUMPS = """\
// A Click config that works on dump files, run by `nfv run` with no --in/--out.
define($IN in.pcap, $OUT out.pcap, $SNAP snap.pcap)
t :: Tee;
FromDump($IN, STOP true) -> c :: Counter -> Strip(14) -> CheckIPHeader -> DecIPTTL
  -> Unstrip(14) -> t;
t[0] -> ToDump($OUT);
t[1] -> ToDump($SNAP, SNAPLEN 60);
"""

SOURCE = """\
InfiniteSource(DATA \\<0800 45>, LIMIT 5, LENGTH 20, STOP true) -> c :: Counter -> ToDump(src.pcap);
"""

FOREVER = """\
InfiniteSource(DATA \\<0800 45>) -> Discard;
"""

CONFIGS = {"dumps.click": DUMPS, "source.click": SOURCE, "forever.click": FOREVER}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("nfv_run")
    for name, text in CONFIGS.items():
        (d / name).write_text(text)
    return d


def nfv_run(work, *args):
    return run_nfv("run", *args, cwd=work, timeout=120)


def ttl_decremented(frame: bytes) -> bytes:
    p = Ether(frame)
    p[IP].ttl -= 1
    del p[IP].chksum
    return bytes(Ether(bytes(p)))


def frames_of(path) -> list[bytes]:
    return [bytes(p) for p in rdpcap(str(path))]


def fail_line(proc) -> str:
    """The one line a failing run prints."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


# -- firewall traffic with known fates -----------------------------------------------------


def wan_traffic():
    """(scapy packets, expected frames out of the lan port, expected counters)."""
    e = Ether(src=WAN, dst=LAN)
    web = [e / IP(src="203.0.113.1", dst="192.0.2.80", id=k) / TCP(dport=80) / Raw(b"w" * k)
           for k in range(3)]
    spoofed = [e / IP(src="10.0.0.1", dst="192.0.2.80") / TCP(dport=80),
               e / IP(src="192.168.1.1", dst="192.0.2.53") / UDP(dport=53)]
    arp = e / ARP(op=1, pdst="192.0.2.1")
    v6 = Ether(src=WAN, dst=LAN, type=0x86DD) / IPv6() / UDP()
    bad = e / IP(src="203.0.113.1", dst="192.0.2.80", chksum=0xBEEF) / TCP(dport=80)
    expired = e / IP(src="203.0.113.1", dst="192.0.2.80", ttl=1) / TCP(dport=443)
    huge = e / IP(src="203.0.113.1", dst="192.0.2.80") / TCP(dport=80) / Raw(b"h" * 2000)
    padded = Ether(bytes(web[0]) + b"\0" * 12)   # Ethernet padding, trimmed on the way
    packets = [web[0], spoofed[0], arp, web[1], v6, bad, huge, expired, spoofed[1], web[2], padded]
    for k, p in enumerate(packets):
        p.time = 1_700_000_000 + k * 0.001
    want = [ttl_decremented(bytes(web[0])), bytes(arp), ttl_decremented(bytes(web[1])),
            ttl_decremented(bytes(web[2])), ttl_decremented(bytes(web[0]))]
    return packets, want


def test_firewall_pcap_in_pcap_out(work):
    packets, want = wan_traffic()
    wrpcap(str(work / "wan.pcap"), packets)
    proc = nfv_run(work, FIREWALL, "--in", "0=wan.pcap", "--out", "1=lan_out.pcap",
                   "--out", "0=wan_out.pcap")
    assert proc.returncode == 0, proc.stderr
    out = rdpcap(str(work / "lan_out.pcap"))
    assert [bytes(p) for p in out] == want
    # timestamps are the packets' own (replaying a capture is deterministic)
    sent = [packets[k] for k in (0, 2, 3, 9, 10)]
    assert [round(float(p.time), 6) for p in out] == [round(float(p.time), 6) for p in sent]
    assert frames_of(work / "wan_out.pcap") == []      # bound but nothing went that way
    # the table: one row per element, then a summary
    assert "wan_allowed" in proc.stdout and "Counter" in proc.stdout
    assert "11 packets in" in proc.stdout


def test_stats_json(work):
    packets, want = wan_traffic()
    wrpcap(str(work / "wan.pcap"), packets)
    proc = nfv_run(work, FIREWALL, "--in", "0=wan.pcap", "--out", "1=lan.pcap",
                   "--stats", "json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert set(report) == {"packets", "outputs", "files", "drops", "oversize", "elements"}
    assert report["packets"] == len(packets)
    assert report["oversize"] == 1                      # the 2000-byte frame
    assert report["outputs"] == {"1": len(want)}
    assert report["files"] == {"lan.pcap": len(want)}
    # spoofed x2 filtered; IPv6 and the expired one discarded; one bad header
    assert report["drops"] == {"discard": 2, "filtered": 2, "bad-ip": 1}
    rows = {r["element"]: r for r in report["elements"]}
    for r in report["elements"]:
        assert set(r) == {"element", "class", "count", "drops"}
        assert isinstance(r["count"], int) and isinstance(r["drops"], int)
    assert rows["from_wan"]["class"] == "FromDevice"
    assert rows["from_wan"]["count"] == len(packets) - 1
    assert rows["to_lan"]["count"] == len(want)
    assert rows["wan_allowed"]["count"] == 5
    assert rows["wan_other"]["count"] == 1
    assert rows["wan_expired"]["count"] == 1
    assert rows["inbound"]["class"] == "IPFilter" and rows["inbound"]["drops"] == 2
    assert rows["lan_allowed"]["count"] == 0
    assert frames_of(work / "lan.pcap") == want


def test_defines_on_the_command_line(work):
    e = Ether(src=WAN, dst=LAN)
    to_new = e / IP(src="203.0.113.1", dst="198.18.0.80") / TCP(dport=80)
    to_old = e / IP(src="203.0.113.1", dst="192.0.2.80") / TCP(dport=80)
    ssh = e / IP(src="192.0.2.7", dst="198.18.0.22") / TCP(dport=22)
    wrpcap(str(work / "def.pcap"), [to_new, to_old, ssh])
    proc = nfv_run(work, FIREWALL, "SERVERS=198.18.0.0/24", "-D", "ADMIN=192.0.2.0/24",
                   "--in", "0=def.pcap", "--out", "1=def_out.pcap")
    assert proc.returncode == 0, proc.stderr
    assert frames_of(work / "def_out.pcap") == [ttl_decremented(bytes(to_new)),
                                                ttl_decremented(bytes(ssh))]


def test_both_devices_merged_by_time(work):
    e = Ether(src=WAN, dst=LAN)
    inbound = [e / IP(src="203.0.113.1", dst="192.0.2.80", id=k) / TCP(dport=80) for k in range(4)]
    outbound = [Ether(src=LAN, dst=WAN) / IP(src="192.0.2.80", dst="203.0.113.1", id=k)
                / TCP(sport=80) for k in range(3)]
    for k, p in enumerate(inbound):
        p.time = 100 + 2 * k
    for k, p in enumerate(outbound):
        p.time = 101 + 2 * k
    wrpcap(str(work / "w.pcap"), inbound)
    wrpcap(str(work / "l.pcap"), outbound)
    proc = nfv_run(work, FIREWALL, "--in", "0=w.pcap", "--in", "1=l.pcap",
                   "--out", "1=to_lan.pcap", "--out", "0=to_wan.pcap")
    assert proc.returncode == 0, proc.stderr
    assert frames_of(work / "to_lan.pcap") == [ttl_decremented(bytes(p)) for p in inbound]
    assert frames_of(work / "to_wan.pcap") == [ttl_decremented(bytes(p)) for p in outbound]


# -- FromDump / ToDump, InfiniteSource ------------------------------------------------------


def dump_inputs():
    e = Ether(src=WAN, dst=LAN)
    good = [e / IP(src="10.0.0.1", dst="10.0.0.2", ttl=t) / UDP() / Raw(b"d" * 80)
            for t in (64, 2, 9)]
    noise = [e / IP(src="10.0.0.1", dst="10.0.0.2", ttl=1) / UDP(), e / ARP()]
    return good + noise, [ttl_decremented(bytes(p)) for p in good]


@pytest.fixture(scope="module")
def dump_run(work):
    packets, want = dump_inputs()
    wrpcap(str(work / "trace.pcap"), packets)
    proc = nfv_run(work, "dumps.click", "IN=trace.pcap", "OUT=forwarded.pcap",
                   "SNAP=snapped.pcap", "--stats", "json")
    return proc, want


def test_fromdump_todump_config_runs_unchanged(work, dump_run):
    proc, want = dump_run
    assert proc.returncode == 0, proc.stderr
    assert frames_of(work / "forwarded.pcap") == want
    report = json.loads(proc.stdout)
    assert report["packets"] == 5
    assert report["files"]["forwarded.pcap"] == 3
    assert {r["element"]: r["count"] for r in report["elements"]}["c"] == 5


def test_todump_snaplen(work, dump_run):
    """ToDump(..., SNAPLEN 60) stores at most 60 bytes of each packet (length kept)."""
    proc, want = dump_run
    assert proc.returncode == 0, proc.stderr
    snapped = rdpcap(str(work / "snapped.pcap"))
    assert [bytes(p) for p in snapped] == [w[:60] for w in want]
    assert [p.wirelen for p in snapped] == [len(w) for w in want]


@pytest.fixture(scope="module")
def source_run(work):
    return nfv_run(work, "source.click", "--stats", "json")


def test_infinite_source_limit_makes_n_packets(work, source_run):
    assert source_run.returncode == 0, source_run.stderr
    frames = frames_of(work / "src.pcap")
    assert len(frames) == 5
    assert all(f[:3] == b"\x08\x00\x45" and len(f) == 20 for f in frames)
    report = json.loads(source_run.stdout)
    assert report["packets"] == 5


def test_infinite_source_length_pads_with_zeros(work, source_run):
    """InfiniteSource's manual: LENGTH makes each packet that long, DATA cut or padded
    with zeros."""
    assert source_run.returncode == 0, source_run.stderr
    assert frames_of(work / "src.pcap") == [b"\x08\x00\x45" + bytes(17)] * 5


# -- errors ---------------------------------------------------------------------------------


def write_pcap_header(path, linktype, records=b""):
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype) + records)


def test_missing_input_file(work):
    line = fail_line(nfv_run(work, FIREWALL, "--in", "0=no_such.pcap"))
    assert "no_such.pcap" in line


def test_input_for_a_device_the_config_lacks(work):
    wrpcap(str(work / "x.pcap"), [Ether() / IP()])
    line = fail_line(nfv_run(work, FIREWALL, "--in", "5=x.pcap"))
    assert "5" in line


def test_output_for_a_device_not_written(work):
    wrpcap(str(work / "x.pcap"), [Ether() / IP()])
    line = fail_line(nfv_run(work, FIREWALL, "--in", "0=x.pcap", "--out", "5=o.pcap"))
    assert "5" in line
    assert not (work / "o.pcap").exists()


def test_raw_ip_linktype(work):
    raw = bytes(IP(dst="192.0.2.80") / TCP(dport=80))
    write_pcap_header(work / "rawip.pcap", 101,
                      struct.pack("<IIII", 0, 0, len(raw), len(raw)) + raw)
    line = fail_line(nfv_run(work, FIREWALL, "--in", "0=rawip.pcap"))
    assert "rawip.pcap" in line and "101" in line


def test_truncated_pcap(work):
    wrpcap(str(work / "whole.pcap"), [Ether() / IP() / UDP() / Raw(b"t" * 50)] * 3)
    data = (work / "whole.pcap").read_bytes()
    (work / "cut.pcap").write_bytes(data[:-10])
    line = fail_line(nfv_run(work, FIREWALL, "--in", "0=cut.pcap"))
    assert "cut.pcap" in line and "truncated" in line.lower()


def test_pcapng_input(work):
    wrpcapng(str(work / "ng.pcapng"), [Ether() / IP() / UDP()])
    line = fail_line(nfv_run(work, FIREWALL, "--in", "0=ng.pcapng"))
    assert "pcapng" in line


def test_binding_without_equals(work):
    line = fail_line(nfv_run(work, FIREWALL, "--in", "wan.pcap"))
    assert "--in" in line


def test_infinite_source_without_limit(work):
    line = fail_line(nfv_run(work, "forever.click"))
    assert "LIMIT" in line


def test_no_input_at_all(work):
    line = fail_line(nfv_run(work, FIREWALL))
    assert "--in" in line


def test_missing_config(work):
    fail_line(nfv_run(work, "no_such.click", "--in", "0=x.pcap"))


# -- --nic: live interfaces (the live runs themselves are in test_host_live.py) -------------


@pytest.mark.parametrize("spec, words", [
    ("0=tap:", ["0=tap:", "name"]),
    ("0=vde:sw0", ["vde", "tap:NAME", "af_packet:IFNAME"]),
    ("tap:nfv0", ["--nic", "DEVICE=tap:NAME"]),
    ("0=nfv0", ["no kind"]),
    ("0=tap:" + "x" * 16, ["at most 15"]),
])
def test_nic_spec_mistakes(work, spec, words):
    line = fail_line(nfv_run(work, FIREWALL, "--nic", spec))
    assert line.startswith("nfv: --nic "), line
    for w in words:
        assert w in line, line


def test_nic_device_twice(work):
    line = fail_line(nfv_run(work, FIREWALL, "--nic", "0=tap:nfva", "--nic", "0=tap:nfvb"))
    assert "device 0" in line and "already" in line


def test_nic_for_a_device_the_config_lacks(work):
    """Checked against the compiled config before any interface is opened or made."""
    line = fail_line(nfv_run(work, FIREWALL, "--nic", "5=tap:nfvnone0"))
    assert "no device 5" in line and "0, 1" in line
    assert not os.path.exists("/sys/class/net/nfvnone0")


def test_nic_with_pcap_bindings(work):
    line = fail_line(nfv_run(work, FIREWALL, "--nic", "0=tap:nfv0", "--in", "1=x.pcap"))
    assert "--in" in line and "--nic" in line


def test_nic_missing_interface(work):
    if os.geteuid() != 0:
        pytest.skip("a raw socket needs root before the interface is even looked up")
    line = fail_line(nfv_run(work, FIREWALL, "--nic", "0=af_packet:nfvnosuch0"))
    assert "no interface nfvnosuch0" in line


def test_nic_without_the_right_to_make_a_tap(work):
    """Not root (here: root without CAP_NET_ADMIN): one line that says what is needed."""
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("needs setpriv to drop CAP_NET_ADMIN as root")
        prefix = ["setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin", "--"]
    cmd = prefix + ([str(NFV)] if NFV.exists() else [sys.executable, "-m", "nfv.cli"])
    proc = subprocess.run(cmd + ["run", FIREWALL, "--nic", "0=tap:nfvnoperm0"], cwd=str(work),
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    line = fail_line(proc)
    assert "tap nfvnoperm0" in line and "root" in line and "CAP_NET_ADMIN" in line
