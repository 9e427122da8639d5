"""Print: packets pass unchanged, and each one is printed the way Click's Print prints it."""
from __future__ import annotations

import subprocess
import sys

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

FRAME = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.0.0.1",
                                                                    dst="10.0.0.2") / UDP()


def click_hex_line(label: str, data: bytes, limit: int) -> str:
    """Click's format, written out independently: LABEL: LEN | 4-byte hex words."""
    shown = data[:limit]
    words = " ".join(shown[k:k + 4].hex() for k in range(0, len(shown), 4))
    return f"{label}: {len(data):4d} | {words}"


def test_print_passes_packets_and_sees_each(nf_factory):
    nf = nf_factory("FromDevice(0) -> p :: Print(seen, 12) -> ToDevice(1);")
    frames = [bytes(FRAME), bytes(FRAME / b"x")]
    out = nf.send(frames, 0)
    assert [bytes(p) for p in out[1]] == frames
    printed = [bytes(p) for p in out["p"]]
    assert printed == frames
    element = nf.host.graph.elements["p"].instance
    assert [element.line(f, 0) for f in printed] == [click_hex_line("seen", f, 12) for f in frames]


def test_inactive_print_prints_nothing(nf_factory):
    nf = nf_factory("FromDevice(0) -> p :: Print(x, ACTIVE false) -> ToDevice(1);")
    out = nf.send([bytes(FRAME)], 0)
    assert "p" not in out and len(out[1]) == 1


def test_nfv_run_prints_to_stderr(tmp_path):
    (tmp_path / "p.click").write_text("FromDevice(0) -> Print(in, 8) -> ToDevice(1);\n")
    wrpcap(str(tmp_path / "in.pcap"), [FRAME, FRAME])
    proc = subprocess.run([sys.executable, "-m", "nfv.cli", "run", str(tmp_path / "p.click"),
                           "--in", f"0={tmp_path / 'in.pcap'}"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    expected = click_hex_line("in", bytes(FRAME), 8)
    assert proc.stderr.splitlines() == [expected, expected]
