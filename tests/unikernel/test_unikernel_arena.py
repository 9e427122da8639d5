"""The arena's initial state, packed into the image and unpacked at boot.

glue.encode_arena writes it, dataplane/unikernel/arena.c reads it in the
guest: both are checked here against each other (arena.c compiled for the
host) on data of every shape, and end to end, the firewall's arena read back
from a booted VM equals the one the host target starts with.
"""
from __future__ import annotations

import ctypes
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nfv.unikernel.glue import decode_arena, encode_arena

ROOT = Path(__file__).resolve().parents[2]
ARENA_C = ROOT / "dataplane" / "unikernel" / "arena.c"


@pytest.fixture(scope="module")
def unpack(tmp_path_factory):
    """arena.c's nfv_arena_unpack, built as a host library."""
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    out = tmp_path_factory.mktemp("arena") / "libarena.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", f"-I{ARENA_C.parent}", f"-I{ARENA_C.parent.parent}",
                    str(ARENA_C), "-o", str(out)], check=True)
    lib = ctypes.CDLL(str(out))
    lib.nfv_arena_unpack.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_uint64]
    lib.nfv_arena_unpack.restype = ctypes.c_int

    def run(packed: bytes, length: int) -> bytes | None:
        buf = ctypes.create_string_buffer(length + 16)      # zeroed, as .bss is; 16 bytes of guard
        status = lib.nfv_arena_unpack(packed, buf, length)
        assert buf.raw[length:] == bytes(16), "wrote past the arena"
        return buf.raw[:length] if status == 0 else None

    return run


def samples() -> dict[str, bytes]:
    rng = random.Random(5)
    table = np.zeros(4096, np.uint32)
    table[100:900] = np.arange(800) % 7
    table[2000:2100] = 0xFFFFFFFF
    records = bytearray(6000)
    for k in range(0, 6000 - 24, 24):                       # 24-byte records, a few fields set
        records[k:k + 4] = (k // 24).to_bytes(4, "little")
        records[k + 8] = 1
    return {
        "empty": b"",
        "zeros": bytes(10000),
        "one byte": b"\x07",
        "ends nonzero": bytes(100) + b"\x01\x02",
        "random": bytes(rng.randrange(256) for _ in range(3000)),
        "sparse": bytes(rng.choice([0] * 30 + [rng.randrange(1, 256)]) for _ in range(5000)),
        "uint32 table": table.tobytes(),
        "records": bytes(records),
        "long fill": b"\xab" * 70000 + bytes(5) + b"\xcd" * 3,
    }


@pytest.mark.parametrize("name", list(samples()))
def test_round_trip_python_and_c(name, unpack):
    data = samples()[name]
    packed = encode_arena(data)
    assert decode_arena(packed, len(data)) == data
    assert unpack(packed, len(data)) == data
    if data and name not in ("random", "one byte", "ends nonzero"):
        assert len(packed) < len(data) / 3


@pytest.mark.parametrize("config", ["firewall.click", "router.click"])
def test_shipped_configs_arenas_round_trip(config, unpack):
    from nfv.unikernel.build import build_plan

    data = build_plan(str(ROOT / "configs" / config)).new_arena().tobytes()
    packed = encode_arena(data)
    assert unpack(packed, len(data)) == data
    assert len(packed) < len(data) / 4


def test_malformed_streams_are_refused(unpack):
    assert unpack(encode_arena(bytes(99) + b"\x01"), 99) is None          # longer than the arena
    assert unpack(bytes([2 << 2 | 2, 5, 3]), 64) is None                    # copy from before the start
    assert unpack(bytes([4 << 2 | 2, 0, 3]), 64) is None                    # copy from distance 0
    assert unpack(bytes([7]), 64) is None                                   # end with a count
    assert unpack(bytes([3]), 64) == bytes(64)


def test_firewall_arena_is_packed_and_unpacked_in_the_guest():
    """The image carries the packed state (not the zeros), and right after
    boot the guest's arena equals the host target's initial arena."""
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("needs qemu-system-x86_64")
    from nfv.demo import CONFIG
    from nfv.unikernel.build import build_image
    from nfv.unikernel.vm import VM

    image = build_image(str(CONFIG))
    initial = image.plan.new_arena().tobytes()
    assert image.sections[".data"] < 256
    assert 0 < image.sections[".arena_init"] < len(initial) / 3
    with VM(image.path) as vm:
        assert vm.read_arena(0, len(initial)) == initial
