"""lib.c's memcpy/memset/memmove/memcmp, checked on the host against Python.

The pipeline object calls them for block copies, so they must be exactly
right for every size and alignment, including the word and `rep` paths.
"""
from __future__ import annotations

import ctypes
import random
import shutil
import subprocess
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[2] / "dataplane" / "unikernel" / "lib.c"


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    out = tmp_path_factory.mktemp("lib") / "libnfvlib.so"
    # -Bsymbolic: memmove's call to memcpy must reach ours, not libc's.
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-fno-builtin", "-fno-tree-loop-distribute-patterns",
                    "-Wl,-Bsymbolic", str(LIB), "-o", str(out)], check=True)
    so = ctypes.CDLL(str(out))
    for name in ("memcpy", "memset", "memmove"):
        getattr(so, name).restype = ctypes.c_void_p
        getattr(so, name).argtypes = [ctypes.c_void_p, ctypes.c_void_p if name != "memset" else ctypes.c_int,
                                      ctypes.c_size_t]
    so.memcmp.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    return so


SIZES = list(range(0, 80)) + [127, 128, 129, 1500, 2047, 4096 + 3]


def test_memcpy_memset(lib):
    rng = random.Random(1)
    for n in SIZES:
        for align in (0, 1, 7):
            src = ctypes.create_string_buffer(bytes(rng.randrange(256) for _ in range(n + 16)))
            dst = ctypes.create_string_buffer(n + 16)
            lib.memcpy(ctypes.addressof(dst) + align, ctypes.addressof(src) + 3, n)
            assert dst.raw[align:align + n] == src.raw[3:3 + n] and dst.raw[align + n:] == bytes(16 - align)
            lib.memset(ctypes.addressof(dst) + align, 0xa5, n)
            assert dst.raw[align:align + n] == b"\xa5" * n and dst.raw[:align] == bytes(align)


def test_memmove_overlaps_and_memcmp(lib):
    rng = random.Random(2)
    for n in SIZES:
        for shift in (-9, -1, 1, 8, 13):
            data = bytes(rng.randrange(256) for _ in range(n + 32))
            buf = ctypes.create_string_buffer(data)
            base = ctypes.addressof(buf) + 16
            lib.memmove(base + shift, base, n)
            expect = bytearray(data)
            expect[16 + shift:16 + shift + n] = data[16:16 + n]
            assert buf.raw[:len(data)] == bytes(expect)
        a = ctypes.create_string_buffer(bytes(n) + b"\x01")
        b = ctypes.create_string_buffer(bytes(n) + b"\x02")
        assert lib.memcmp(a, b, n) == 0 and lib.memcmp(a, b, n + 1) < 0 and lib.memcmp(b, a, n + 1) > 0
