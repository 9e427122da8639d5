"""`nfv boot` / `nfv up` as a user runs them: a traffic tool connects to the NIC
ports, Ctrl-C stops the VM, and no QEMU is ever left behind."""
from __future__ import annotations

import signal
import socket
import struct
import subprocess
import time

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from conftest import NFV, ROOT

FIREWALL = str(ROOT / "configs" / "firewall.click")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def qemu_running(image: str) -> bool:
    return subprocess.run(["pgrep", "-f", f"qemu-system.*{image}"],
                          capture_output=True).returncode == 0


def read_until(proc: subprocess.Popen, word: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if word in line:
            return line
    raise AssertionError(f"no '{word}' in: {''.join(seen)}")


def connect(port: int) -> socket.socket:
    for _ in range(200):
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            time.sleep(0.02)
    raise AssertionError(f"nothing listens on {port}")


def frame_from(sock: socket.socket) -> bytes:
    head = b""
    while len(head) < 4:
        head += sock.recv(4 - len(head))
    size, = struct.unpack(">I", head)
    data = b""
    while len(data) < size:
        data += sock.recv(size - len(data))
    return data


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "fw.elf"
    built = subprocess.run([str(NFV), "build", FIREWALL, "-o", str(path)], capture_output=True,
                           text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    return str(path)


def test_boot_forwards_over_user_sockets_and_stops_on_ctrl_c(image):
    ports = [free_port(), free_port()]
    proc = subprocess.Popen([str(NFV), "boot", image, "--nic", f"0=tcp:{ports[0]}",
                             "--nic", f"1=tcp:{ports[1]}"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        ready = read_until(proc, "ready in")
        assert "ms from launch" in ready
        wan, lan = connect(ports[0]), connect(ports[1])
        web = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / \
            IP(src="203.0.113.9", dst="192.0.2.80", ttl=9) / TCP(dport=80)
        wan.sendall(struct.pack(">I", len(web)) + bytes(web))
        lan.settimeout(10)
        out = Ether(frame_from(lan))
        expected = web.copy()
        expected[IP].ttl = 8
        del expected[IP].chksum
        assert bytes(out) == bytes(Ether(bytes(expected)))
        proc.send_signal(signal.SIGINT)
        # communicate() drains both pipes while waiting (a full pipe would stall the
        # console relay); 30 s leaves room for a loaded CI machine.
        tail, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "nic 0 rx=1" in tail and "nic 1 rx=0 tx=1" in tail
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not qemu_running(image)


def test_up_with_timeout_ends_by_itself():
    port0, port1 = free_port(), free_port()
    done = subprocess.run([str(NFV), "up", FIREWALL, "--nic", f"0=tcp:{port0}",
                           "--nic", f"1=tcp:{port1}", "--timeout", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "ready in" in done.stdout and "nic 1 rx=0" in done.stdout


def test_boot_errors_are_one_line(image):
    missing = subprocess.run([str(NFV), "boot", image, "--nic", "1=tcp:5999"],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1
    assert "no --nic for NIC 0" in missing.stderr and "Traceback" not in missing.stderr
    absent = subprocess.run([str(NFV), "boot", "/nonexistent.elf"], capture_output=True,
                            text=True, timeout=60)
    assert absent.returncode == 1 and "does not exist" in absent.stderr
