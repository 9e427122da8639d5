"""Flow control and who owns the NICs.

The guest takes a received frame only when every NIC's transmit ring has room
for it, so a burst far larger than the rings crosses a stream netdev without
loss: QEMU stops reading the sender's socket instead of the guest dropping
frames at a full transmit ring. And `VM(connect=False)` leaves the NICs to
another program (what `nfv boot` does for the user's traffic tool).
"""
from __future__ import annotations

import shutil
import socket
import struct
import threading

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from nfv.errors import NfvError
from nfv.unikernel import EXIT_NORMAL
from nfv.unikernel.vm import VM

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None or shutil.which("gcc") is None,
                                reason="needs qemu-system-x86_64 and gcc")

BURST = 5000            # frames sent in one go: twenty times a ring


def frames(count: int, src: int) -> list[bytes]:
    """Numbered frames of many sizes, 60 to 1514 bytes (the swap pipeline
    looks at nothing but the ethertype)."""
    header = bytes.fromhex("020000000002") + bytes([2, 0, 0, 0, 0, src]) + b"\x08\x00"
    return [header + struct.pack(">I", i) + bytes((i * 37) % 1457 + 42) for i in range(count)]


def nic_stats(vm: VM) -> list[dict]:
    return [{k: (v if k == "mac" else int(v)) for k, v in (kv.split("=", 1) for kv in line.split()[2:])}
            for line in vm.command("nics")]


def collect(vm: VM, nic: int, count: int, into: list) -> None:
    while len(into) < count and (f := vm.recv(nic, timeout=5)) is not None:
        into.append(f)


def test_burst_both_ways_loses_nothing(swap_image):
    """5000 frames into each NIC at once, all sent before most are forwarded:
    every one leaves by the other NIC, in order, and nothing is dropped."""
    into0, into1 = frames(BURST, 1), frames(BURST, 3)
    with VM(swap_image[0]) as vm:
        got0, got1 = [], []
        readers = [threading.Thread(target=collect, args=(vm, 1, BURST, got1)),
                   threading.Thread(target=collect, args=(vm, 0, BURST, got0))]
        sender = threading.Thread(target=lambda: [vm.send(1, f) for f in into1])
        for t in readers + [sender]:
            t.start()
        for f in into0:
            vm.send(0, f)
        for t in [sender] + readers:
            t.join(timeout=60)
        assert len(got1) == BURST and got1 == into0
        assert len(got0) == BURST and got0 == into1
        stats = nic_stats(vm)
        assert [(s["rx"], s["tx"], s["rx_dropped"], s["tx_dropped"]) for s in stats] == [(BURST, BURST, 0, 0)] * 2
    assert vm.status == EXIT_NORMAL


def test_firewall_burst_matches_the_host():
    """The real firewall, 5000 frames of the demo's traffic mix in one go:
    the VM forwards exactly what the host target forwards, in the same order,
    and drops exactly what it drops (by reason); no frame is lost at a ring."""
    from nfv.dataplane.pcap import PacketList
    from nfv.demo import CONFIG, traffic
    from nfv.host import HostNF
    from nfv.unikernel.target import UnikernelNF

    # 500 frames of the mix (scapy is slow to build them) ten times over, each
    # copy made unique by its Ethernet source (which nothing here looks at).
    base = [f for _, f in traffic(BURST // 10, seed=7)]
    mix = [f[:6] + struct.pack(">HI", 0x0200 + copy, k) + f[12:] if len(f) >= 14 else f
           for copy in range(10) for k, f in enumerate(base)]
    packets = PacketList.from_bytes(mix, ports=[0] * len(mix))
    expected = HostNF(str(CONFIG)).run(packets)
    nf = UnikernelNF(str(CONFIG))
    try:
        result = nf.run(packets)
        counters = nf.nic_counters()
    finally:
        nf.close()
    assert {p: out.to_list() for p, out in result.outputs.items()} == \
        {p: out.to_list() for p, out in expected.outputs.items() if len(out)}
    assert result.drops == expected.drops
    assert len(result.outputs[1]) > BURST // 3                 # a real share of it crossed
    assert counters[0][:4] == (BURST, 0, 0, 0)                 # rx, tx, rx_dropped, tx_dropped
    assert counters[1][1:4] == (len(result.outputs[1]), 0, 0)


def test_connect_false_leaves_the_nics_to_another_program(swap_image):
    """With connect=False the VM opens no socket: a plain TCP client (a traffic
    tool) connects to QEMU's stream servers and exchanges frames itself."""
    frame = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.2")
                  / UDP(sport=1, dport=2) / b"from a traffic tool")
    with VM(swap_image[0], connect=False) as vm:
        assert all(nic.sock is None and nic.port for nic in vm.nics)
        with pytest.raises(NfvError, match="connect=False"):
            vm.send(0, frame)
        with pytest.raises(NfvError, match="connect=False"):
            vm.recv(1, timeout=0.1)
        with socket.create_connection(("127.0.0.1", vm.nics[0].port), timeout=5) as s0, \
                socket.create_connection(("127.0.0.1", vm.nics[1].port), timeout=5) as s1:
            # QEMU accepts the connection a moment after it comes in: until then
            # what the guest sends on that NIC is discarded. Retry until through.
            s1.settimeout(0.2)
            data = b""
            for _ in range(25):
                s0.sendall(struct.pack(">I", len(frame)) + frame)
                try:
                    data = s1.recv(4 + len(frame))
                    break
                except socket.timeout:
                    continue
            while len(data) < 4 + len(frame):
                data += s1.recv(4 + len(frame) - len(data))
            assert data == struct.pack(">I", len(frame)) + frame
        assert nic_stats(vm)[1]["tx"] >= 1
    assert vm.status == EXIT_NORMAL
