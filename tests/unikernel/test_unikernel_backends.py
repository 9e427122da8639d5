"""The other ways to run the image: TCG instead of KVM, and a tap NIC in a
network namespace (QEMU creates the tap there)."""
from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from nfv.unikernel import EXIT_NORMAL
from nfv.unikernel.vm import VM

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None or shutil.which("gcc") is None,
                                reason="needs qemu-system-x86_64 and gcc")

FRAME = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.2")
              / UDP(sport=7, dport=7) / b"tcg and tap")


def test_tcg_forwards_and_ends(swap_image, source_image):
    with VM(swap_image[0], accel="tcg") as vm:
        assert vm.accel == "tcg"
        assert any("measured against the PIT" in l for l in vm.console)     # no kvmclock in TCG
        vm.send(0, FRAME)
        assert vm.recv(1, timeout=3) == FRAME
    vm = VM(source_image[0], nics=[], accel="tcg")
    vm.start()
    assert vm.wait(timeout=20) == EXIT_NORMAL
    assert any(l.startswith("done packets=10003 ") for l in vm.console)


@pytest.fixture
def netns():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 for a network namespace")
    name = f"nfvuk{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        # No IPv6: the kernel's own router solicitations would be extra frames on the tap.
        subprocess.run(["ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
                       check=True)
        subprocess.run(["ip", "netns", "exec", name, "sysctl", "-qw",
                        "net.ipv6.conf.default.disable_ipv6=1"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def next_frame(vm: VM, nic: int, want: bytes) -> bytes | None:
    """The first frame equal to `want`, skipping whatever the host kernel sends."""
    for _ in range(20):
        frame = vm.recv(nic, timeout=2)
        if frame is None or frame == want:
            return frame
    return None


def test_tap_nic_in_netns(swap_image, netns):
    with VM(swap_image[0], nics=["tap:uktap0", "tcp"], netns=netns) as vm:
        vm.send(0, FRAME)
        assert next_frame(vm, 1, FRAME) == FRAME
        vm.send(1, FRAME)
        assert next_frame(vm, 0, FRAME) == FRAME
    assert vm.status == EXIT_NORMAL
