"""Write handlers on the unikernel target: the console's `write`, `hold` and
`release` commands, and UnikernelNF.write / write_arena built on them.

The guest copies `write OFF HEX` into its arena between two batches and
refuses what lies outside the arena or in its header (the runtime's free
list); `hold` stops batches until `release`, so a change of several commands
(or a handler's read-modify-write) reaches the pipeline whole. The raw
commands are checked on the C stand-in pipeline (fast); the handler path on
the real firewall, whose IPFilter tables are big enough (6.8 KB) to need more
than one command.

Only one VM is alive at a time: the swap-image tests come first, then the
firewall tests share one VM (module fixture).
"""
from __future__ import annotations

import shutil
import struct

import numpy as np
import pytest

from nfv.compile.plan import HEADER_BYTES
from nfv.element import Handler
from nfv.errors import NfvError
from nfv.unikernel import EXIT_NORMAL
from nfv.unikernel.target import UnikernelNF, changed_runs
from nfv.unikernel.vm import VM, WRITE_CHUNK

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None or shutil.which("gcc") is None,
                                reason="needs qemu-system-x86_64 and gcc")

SWAP_ARENA = 1088 + 16 * 8          # tests/unikernel/swap_config.c


def frame(i: int) -> bytes:
    header = bytes.fromhex("020000000002") + bytes([2, 0, 0, 0, 0, 1]) + b"\x08\x00"
    return header + struct.pack(">I", i) + bytes(50)


# -- the console commands (C stand-in pipeline) ---------------------------------------------


def test_write_command_round_trips_and_checks_its_bounds(swap_image):
    with VM(swap_image[0]) as vm:
        data = bytes(range(7, 7 + 64))
        assert vm.command(f"write {HEADER_BYTES + 8} {data.hex()}") == ["ok"]
        assert vm.read_arena(HEADER_BYTES + 8, 64) == data
        assert vm.command(f"write {HEADER_BYTES} AbCd") == ["ok"]          # either case
        assert vm.read_arena(HEADER_BYTES, 2) == b"\xab\xcd"
        assert vm.command(f"write {SWAP_ARENA - 1} ff") == ["ok"]         # the last byte
        assert vm.read_arena(SWAP_ARENA - 1, 1) == b"\xff"
        refused = {
            f"write {SWAP_ARENA} 00": "outside the arena",
            f"write {SWAP_ARENA - 1} 0000": "outside the arena",
            f"write {1 << 62} 00": "outside the arena",
            f"write 0 00": "arena header",
            f"write {HEADER_BYTES - 1} 0000": "arena header",
            f"write {HEADER_BYTES} 0": "even number",
            f"write {HEADER_BYTES} 0g": "not a hex digit",
            f"write {HEADER_BYTES}": "usage",
            f"write {HEADER_BYTES} " + "00" * (WRITE_CHUNK + 1): "2..8192 hex digits",
            f"write {HEADER_BYTES} " + "00" * 4300: "line: longer than",
        }
        for command, words in refused.items():
            answer = vm.command(command)
            assert len(answer) == 1 and answer[0].startswith("error ") and words in answer[0], \
                (command[:40], answer)
        # Nothing refused changed a byte, and the guest still forwards.
        assert vm.read_arena(HEADER_BYTES, 2) == b"\xab\xcd"
        assert vm.read_arena(SWAP_ARENA - 1, 1) == b"\xff"
        vm.send(0, frame(1))
        assert vm.recv(1, timeout=5) == frame(1)
    assert vm.status == EXIT_NORMAL


def test_hold_stops_batches_until_release(swap_image):
    with VM(swap_image[0]) as vm:
        with vm.held():
            vm.send(0, frame(2))
            assert vm.recv(1, timeout=0.5) is None           # taken by no batch while held
            assert vm.command("stats")[0].startswith("stats ")   # the console still answers
        assert vm.recv(1, timeout=5) == frame(2)
        # A host that holds and goes quiet does not stop the NF for good.
        assert vm.command("hold") == ["ok"]
        vm.send(0, frame(3))
        assert vm.recv(1, timeout=6) == frame(3)
        assert any(l.startswith("error hold: no command") for l in vm.console)
    assert vm.status == EXIT_NORMAL


# -- UnikernelNF.write and write_arena (the firewall) -----------------------------------------


@pytest.fixture(scope="module")
def firewall():
    from nfv.demo import CONFIG
    nf = UnikernelNF(str(CONFIG))
    yield nf
    nf.close()


def demo_packets(count: int = 60):
    from nfv.dataplane.pcap import PacketList
    from nfv.demo import traffic

    frames = [f for _, f in traffic(count, seed=11)]
    return PacketList.from_bytes(frames, ports=[0] * len(frames))


def test_zeroing_a_counter_reads_back_zero_and_it_counts_on(firewall):
    packets = demo_packets()
    firewall.run(packets)
    first = int(firewall.read("wan_allowed.count"))
    assert first > 0
    counts, = firewall.plan.placements["wan_allowed"]
    firewall.write_arena(counts.offset, bytes(counts.nbytes))
    assert firewall.read("wan_allowed.count") == "0"
    firewall.run(packets)
    assert int(firewall.read("wan_allowed.count")) == first


def test_a_write_of_several_commands_round_trips_byte_for_byte(firewall):
    """6.8 KB over inbound's three tables (two `write` commands), held, read back
    through arena_copy exactly; then the tables are put back as they were."""
    places = firewall.plan.placements["inbound"]
    start, end = places[0].offset, places[2].offset + places[2].nbytes
    assert end - start > WRITE_CHUNK
    original = firewall.arena_copy("inbound", limit=None)[start:end].tobytes()
    data = np.random.default_rng(5).integers(0, 256, end - start, np.uint8).tobytes()
    vm = firewall.boot()
    with vm.held():
        firewall.write_arena(start, data)
        assert vm.read_arena(start, end - start) == data
    copy = firewall.arena_copy("inbound", limit=None)
    for p in places[:3]:
        assert copy[p.offset:p.offset + p.nbytes].tobytes() == data[p.offset - start:p.offset - start + p.nbytes]
    firewall.write_arena(start, original)
    assert firewall.arena_copy("inbound", limit=None)[start:end].tobytes() == original


def test_write_arena_refuses_the_header_and_past_the_end(firewall):
    with pytest.raises(NfvError, match="outside"):
        firewall.write_arena(firewall.plan.arena_size - 1, b"\0\0")
    with pytest.raises(NfvError, match="header"):
        firewall.write_arena(0, b"\0")
    answer = firewall.boot().command(f"write {firewall.plan.arena_size} 00")
    assert answer[0].startswith("error write:") and "outside the arena" in answer[0]
    result = firewall.run(demo_packets(20))          # still forwarding
    assert sum(len(out) for out in result.outputs.values()) > 0


def test_write_handler_sends_only_the_changed_bytes(firewall, monkeypatch):
    """A test-only write handler on the IPFilter `inbound` (host side only: the guest
    runs the same image; the handler is host code) rewrites 4320 + some bytes of its
    tables: the guest's state afterwards is what the handler made of its copy, sent
    as few `write` commands, and nothing else moved."""
    inst = firewall.graph.elements["inbound"].instance
    before = firewall.arena_copy("inbound", limit=None)
    places = {p.array.name: p for p in firewall.plan.placements["inbound"]}
    assert places["table_lookup"].nbytes > WRITE_CHUNK

    def scramble(name, value, state):
        if name != "scramble":
            return False
        lookup = state["table_lookup"].view(np.uint8)
        lookup[:] = (np.arange(len(lookup)) * int(value)) & 0xff
        meta = state["table_meta"].view(np.uint8)
        meta[::20] ^= 0x5a              # scattered, 19 bytes apart: merged into one run
        return True

    monkeypatch.setattr(inst, "handlers", tuple(inst.handlers) + (Handler("scramble", read=False, write=True),),
                        raising=False)
    monkeypatch.setattr(inst, "write_handler", scramble, raising=False)
    vm = firewall.boot()
    sent = []
    command = vm.command
    monkeypatch.setattr(vm, "command", lambda text, **kw: sent.append(text) or command(text, **kw))
    firewall.write("inbound.scramble", "13")
    calls = list(sent)          # what write sent (reads below are not part of it)
    expected = before.copy()
    firewall.plan.write(expected, "inbound", "scramble", "13")
    after = firewall.arena_copy("inbound", limit=None)
    for p in firewall.plan.placements["inbound"]:
        assert after[p.offset:p.offset + p.nbytes].tobytes() == expected[p.offset:p.offset + p.nbytes].tobytes(), \
            p.array.name
    writes = [t for t in calls if t.startswith("write ")]
    assert calls[0] == "hold" and calls[-1] == "release" and "release" not in calls[:-1]
    # table_meta as one run (its 19-byte gaps resent), table_lookup (4320 bytes) as
    # two commands: three writes, of exactly the changed runs.
    runs = changed_runs(before, expected)
    assert len(runs) == 2 and runs[0][0] == places["table_meta"].offset
    assert places["table_lookup"].offset <= runs[1][0] and runs[1][1] - runs[1][0] > WRITE_CHUNK
    assert [int(t.split()[1]) for t in writes] == [runs[0][0], runs[1][0], runs[1][0] + WRITE_CHUNK]
    assert sum(len(t.split()[2]) // 2 for t in writes) == sum(b - a for a, b in runs)
    for p in firewall.plan.placements["inbound"]:      # the real tables back, for the next tests
        firewall.write_arena(p.offset, before[p.offset:p.offset + p.nbytes].tobytes())


def test_write_errors_are_nfv_errors_and_change_nothing(firewall):
    with pytest.raises(NfvError, match="element.handler"):
        firewall.write("nodot", "")
    with pytest.raises(NfvError, match="no element"):
        firewall.write("nosuch.reset", "")
    with pytest.raises(NfvError, match="no write handler 'nosuch'"):
        firewall.write("wan_allowed.nosuch", "")


def test_counter_reset_matches_the_host(firewall):
    """Counter's own `reset` write handler: the same count on both targets after it."""
    from nfv.host import HostNF

    host = HostNF(str(firewall.graph.file))
    packets = demo_packets()
    host.run(packets)
    host.write("wan_allowed.reset", "")
    assert host.read("wan_allowed.count") == "0"
    firewall.run(packets)
    assert firewall.read("wan_allowed.count") != "0"
    firewall.write("wan_allowed.reset", "")
    assert firewall.read("wan_allowed.count") == host.read("wan_allowed.count")
    # The testing API reaches it the same way.
    from nfv.testing import NF

    nf = NF.__new__(NF)
    nf.host, nf.target = firewall, "unikernel"
    nf.write("wan_allowed.reset")
    assert nf.read("wan_allowed.count") == "0"
