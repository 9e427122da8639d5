"""The unikernel runtime under real QEMU: forwarding, drops, console, exits.

Every VM here uses the C test pipeline (swap_pipeline.c): frames from NIC 0
leave by NIC 1 and back, special ethertypes make it copy, fail or fault.
"""
from __future__ import annotations

import shutil
import struct
import time

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from nfv.errors import NfvError
from nfv.unikernel import (EXIT_DEVICE, EXIT_FAULT, EXIT_NO_NICS, EXIT_NORMAL,
                           EXIT_PIPELINE)
from nfv.unikernel.vm import VM

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None or shutil.which("gcc") is None,
                                reason="needs qemu-system-x86_64 and gcc")

COUNTS = 1088           # the test pipeline's counters in the arena (uint64 per in_port)


def udp(i: int, size: int = 0) -> bytes:
    pkt = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
           / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000 + i, dport=53) / (b"x" * size))
    return bytes(pkt)


def special(ethertype: int) -> bytes:
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=ethertype) / (b"\0" * 46))


def counters(vm: VM) -> list[int]:
    return list(struct.unpack("<16Q", vm.read_arena(COUNTS, 128)))


def nic_stats(vm: VM) -> list[dict]:
    out = []
    for line in vm.command("nics"):
        fields = dict(kv.split("=", 1) for kv in line.split()[2:])
        out.append({k: (v if k == "mac" else int(v)) for k, v in fields.items()})
    return out


def idle_free_slots(vm: VM, timeout: float = 3.0) -> bool:
    """Whether the pool settles at what is free when nothing is in flight: all
    but the RX rings' buffers and the arena's free list (FREE_CAP = 256, full
    after the first batch). QEMU reports transmitted buffers a moment after
    their frames arrive, so this waits for that."""
    deadline = time.monotonic() + timeout
    while True:
        stats = dict(kv.split("=") for kv in vm.command("stats")[0].split()[1:])
        if int(stats["free"]) == int(stats["slots"]) - 2 * int(stats["queue"]) - 256:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def test_frames_cross_byte_equal(swap_image):
    frames = [udp(i, size) for i, size in enumerate([0, 1, 100, 500, 1400, 1500 - 28])]
    with VM(swap_image[0]) as vm:
        assert vm.guest_nics == 2 and vm.boot_us and vm.boot_us > 0
        assert vm.config_name == "swap-test"
        for f in frames:
            vm.send(0, f)
        assert [vm.recv(1, timeout=2) for _ in frames] == frames
        for f in frames:
            vm.send(1, f)
        assert [vm.recv(0, timeout=2) for _ in frames] == frames
        assert vm.recv(0, timeout=0.05) is None and vm.recv(1, timeout=0.05) is None
        stats = nic_stats(vm)
        assert [s["rx"] for s in stats] == [6, 6] and [s["tx"] for s in stats] == [6, 6]
        assert stats[0]["mac"] == "52:54:00:12:34:56"
        assert counters(vm)[:2] == [6, 6]
    assert vm.status == EXIT_NORMAL


def test_many_frames_in_flight(swap_image):
    """More frames than a ring holds, sent in windows of half a ring: none lost.
    (test_unikernel_flow sends 5000 at once.)"""
    base = udp(0, 18)           # numbered through the UDP source port (scapy is slow)
    frames = [base[:34] + struct.pack(">H", 1000 + i) + base[36:] for i in range(2000)]
    with VM(swap_image[0]) as vm:
        got = []
        for start in range(0, len(frames), 128):
            for f in frames[start:start + 128]:
                vm.send(0, f)
            got += [vm.recv(1, timeout=2) for _ in frames[start:start + 128]]
        assert got == frames


def test_garbage_and_oversize_then_good_frames(swap_image):
    """Bad input never wedges the VM. A frame longer than a receive buffer
    (1920 bytes) reaches the guest over several buffers (mergeable receive
    buffers), and the guest drops it whole and counts it (rx_dropped and
    rx_oversize); QEMU cannot carry a zero-length frame over a stream netdev
    at all (VM.send refuses). Frames too short for Ethernet are the pipeline's
    business, as on the host target: the swap pipeline forwards them."""
    garbage = [b"\xde\xad", bytes(range(13)), bytes(range(100))]
    good = [udp(i, 10) for i in range(5)]
    with VM(swap_image[0]) as vm:
        with pytest.raises(NfvError, match="zero-length"):
            vm.send(0, b"")
        for f in garbage:
            vm.send(0, f)
        assert [vm.recv(1, timeout=2) for _ in garbage] == garbage
        assert idle_free_slots(vm)
        vm.send(0, bytes(3000))               # two buffers
        vm.send(0, udp(9, 1920 - 42))         # exactly one buffer: forwarded
        vm.send(0, bytes(range(256)) * 36)    # 9216 bytes: five buffers
        vm.send(0, bytes(1921))               # one byte too many
        for f in good:
            vm.send(0, f)
        expected = [udp(9, 1920 - 42)] + good
        got = []
        while len(got) < len(expected) and (f := vm.recv(1, timeout=2)) is not None:
            got.append(f)
        assert got == expected and vm.recv(1, timeout=0.05) is None
        stats = nic_stats(vm)
        assert stats[0]["rx"] == 9 and stats[0]["rx_dropped"] == 3 and stats[0]["rx_oversize"] == 3
        assert stats[1]["tx"] == 9 and stats[1]["tx_dropped"] == 0
        # Every buffer of the long frames came back: the VM still forwards, and
        # the pool has as many free slots as before.
        for f in good:
            vm.send(1, f)
        assert [vm.recv(0, timeout=2) for _ in good] == good
        assert idle_free_slots(vm)


def test_read_arena_and_errors(swap_image):
    with VM(swap_image[0]) as vm:
        for i in range(3):
            vm.send(1, udp(i))
            assert vm.recv(0, timeout=2) is not None
        assert counters(vm)[:2] == [0, 3]
        assert vm.command("read 1240 100")[0].startswith("error read:")      # past the end
        assert vm.command("read 0 0")[0].startswith("error read:")
        assert vm.command("bogus")[0] == "error unknown command: bogus"
        assert vm.command("stats")[0].startswith("stats batches=")
        assert vm.command("drops") == ["drops"]             # the swap pipeline drops nothing


def test_pipeline_copy_from_free_list(swap_image):
    with VM(swap_image[0]) as vm:
        frame = special(0x88b5)
        vm.send(0, frame)
        assert [vm.recv(1, timeout=2), vm.recv(1, timeout=2)] == [frame, frame]
        assert counters(vm)[15] == 1


def test_unknown_out_port_is_counted_not_fatal(swap_image):
    with VM(swap_image[0]) as vm:
        vm.send(0, special(0x88b7))
        vm.send(0, udp(1))
        assert vm.recv(1, timeout=2) == udp(1)
        assert " errors=1 " in vm.command("stats")[0]


def test_pipeline_error_stops_the_vm(swap_image):
    with VM(swap_image[0]) as vm:
        vm.send(0, special(0x88b6))
        with pytest.raises(NfvError, match="pipeline reported an internal error"):
            vm.recv(1, timeout=3)
        assert vm.status == EXIT_PIPELINE
        assert any(l.startswith("pipeline: error -7") for l in vm.console)


@pytest.mark.parametrize("ethertype, error", [(0x88b8, "0x7"), (0x88b9, "0x15")])
def test_wx_faults_are_reported(swap_image, ethertype, error):
    """Writing to .text and executing the arena both fault: no page is W+X."""
    with VM(swap_image[0]) as vm:
        vm.send(0, special(ethertype))
        with pytest.raises(NfvError, match="faulted"):
            vm.recv(1, timeout=3)
        assert vm.status == EXIT_FAULT
        line = next(l for l in vm.console if l.startswith("fault "))
        assert "vector=14 (page fault)" in line and f"error={error} " in line


def test_8m_boots_with_full_queues(swap_image):
    with VM(swap_image[0], memory="8M") as vm:
        assert " queue=256 " in vm.command("stats")[0]


def test_small_memory_shrinks_queues_then_refuses(swap_image):
    with VM(swap_image[0], memory="4M") as vm:
        queue = int(vm.command("stats")[0].split("queue=")[1].split()[0])
        assert 16 <= queue < 256
        vm.send(0, udp(0))
        assert vm.recv(1, timeout=2) == udp(0)
    with pytest.raises(NfvError, match="too little RAM") as e:
        VM(swap_image[0], memory="3M").start()
    assert "memory: need" in str(e.value)


def test_missing_nic(swap_image):
    vm = VM(swap_image[0], nics=["tcp"])
    with pytest.raises(NfvError, match="fewer NICs") as e:
        vm.start()
    assert "nics: found 1 virtio-net device, config swap-test needs 2" in str(e.value)
    assert vm.status == EXIT_NO_NICS


def test_legacy_virtio_is_refused_clearly(swap_image):
    vm = VM(swap_image[0], extra_args=["-global", "virtio-mmio.force-legacy=true"])
    with pytest.raises(NfvError, match="force-legacy=false"):
        vm.start()
    assert vm.status == EXIT_DEVICE


def test_source_only_config_ends_with_done(source_image):
    vm = VM(source_image[0], nics=[])
    vm.start()
    assert vm.wait(timeout=10) == EXIT_NORMAL
    done = next(l for l in vm.console if l.startswith("done "))
    fields = dict(kv.split("=") for kv in done.split()[1:])
    assert int(fields["packets"]) == 10003 and int(fields["ns"]) >= 2_000_000   # 3 rated, 1 ms apart
