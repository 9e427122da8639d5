"""Tests for nfv.dataplane.driver: the host driver around a compiled pipeline.

The pipelines here are small Numba cfuncs written against pipeline_abi.h by
hand, so each test states exactly what the pipeline did and checks what the
driver made of it.
"""
from __future__ import annotations

import ctypes
import threading
import time

import numba
import numpy as np
import pytest
from numba import types

from nfv.dataplane.driver import (
    ARENA_HEADER_SIZE, DATA_ROOM, FREE_CAP, DriverError, HostDriver,
)
from nfv.dataplane.packet import BUF_STRIDE, HEADROOM, META_DTYPE, NO_NET_HEADER, NO_PORT
from nfv.dataplane.pcap import PacketList
from nfv.errors import NfvError

# int32 (*)(pool, pool_len, meta, n, meta_cap, arena, arena_len, now_ns), as pipeline_abi.h
PIPELINE = types.int32(types.voidptr, types.int64, types.voidptr, types.int32, types.int32,
                       types.voidptr, types.int64, types.uint64)
H = ARENA_HEADER_SIZE  # pipeline state in these tests starts right after the header
STATS = H // 8         # index of the first uint64 after the header


def arena(extra=64):
    return np.zeros(H + extra, np.uint8)


def numbered(n, size=60, ports=0, t0=1_000):
    """n distinct frames: the first 4 bytes are the packet's number."""
    data = [i.to_bytes(4, "big") + bytes([i % 251]) * (size - 4) for i in range(n)]
    return PacketList.from_bytes(data, ports=ports, timestamps=[t0 + 10 * i for i in range(n)])


# -- the pipelines ---------------------------------------------------------------------


@numba.cfunc(PIPELINE, nopython=True)
def cross(pool, pool_len, meta_ptr, n, meta_cap, arena_ptr, arena_len, now_ns):
    """Sends what came in on port k out of port k ^ 1 (0 <-> 1, 2 <-> 3, ...)."""
    meta = numba.carray(meta_ptr, (n,), META_DTYPE)
    for i in range(n):
        meta[i].out_port = meta[i].in_port ^ 1
    return n


@numba.cfunc(PIPELINE, nopython=True)
def drop_odd(pool, pool_len, meta_ptr, n, meta_cap, arena_ptr, arena_len, now_ns):
    """Drops odd-length packets with reason 7, sends the rest back where they came from."""
    meta = numba.carray(meta_ptr, (n,), META_DTYPE)
    for i in range(n):
        if meta[i].length & 1:
            meta[i].drop_reason = 7
        else:
            meta[i].out_port = meta[i].in_port
    return n


@numba.cfunc(PIPELINE, nopython=True)
def tee(pool_ptr, pool_len, meta_ptr, n, meta_cap, arena_ptr, arena_len, now_ns):
    """Sends each packet to port 0 and a copy, in a slot from the free list, to port 1
    (timestamp + 1). Copies that find no free slot are counted in STATS + 0."""
    meta = numba.carray(meta_ptr, (meta_cap,), META_DTYPE)
    pool = numba.carray(pool_ptr, (pool_len,), np.uint8)
    words = numba.carray(arena_ptr, (arena_len // 4,), np.uint32)  # words[0]: free_count
    stats = numba.carray(arena_ptr, (arena_len // 8,), np.uint64)
    out = n
    for i in range(n):
        meta[i].out_port = 0
        count = words[0]
        if count == 0 or out >= meta_cap:
            stats[STATS] += 1
            continue
        count -= 1
        words[0] = count
        slot = words[2 + count]  # free_slots[count]
        dst = slot * BUF_STRIDE + HEADROOM
        src = meta[i].offset
        length = meta[i].length
        for k in range(length):
            pool[dst + k] = pool[src + k]
        meta[out].offset = dst
        meta[out].length = length
        meta[out].in_port = meta[i].in_port
        meta[out].out_port = 1
        meta[out].net_offset = NO_NET_HEADER
        meta[out].timestamp_ns = meta[i].timestamp_ns + 1
        out += 1
    return out


@numba.cfunc(PIPELINE, nopython=True)
def misbehave(pool, pool_len, meta_ptr, n, meta_cap, arena_ptr, arena_len, now_ns):
    """Breaks the calling convention in the way arena byte H says."""
    mode = numba.carray(arena_ptr, (arena_len,), np.uint8)[H]
    meta = numba.carray(meta_ptr, (n,), META_DTYPE)
    for i in range(n):
        meta[i].out_port = 0
    if mode == 0:
        return -1
    if mode == 1:
        return meta_cap + 1
    if mode == 2:
        return n - 1
    meta[0].offset = pool_len - 10  # mode 3: the packet runs past the pool
    return n


@numba.cfunc(PIPELINE, nopython=True)
def inspect(pool, pool_len, meta_ptr, n, meta_cap, arena_ptr, arena_len, now_ns):
    """Copies what it was called with into the arena: STATS+0..3 = n, meta_cap,
    pool_len, now_ns; from byte H + 64 on, all meta_cap records as they arrived.
    Checks that no record past n holds anything (count in STATS+4), then leaves
    one dropped record (reason 9) behind at meta[n] and sends the batch to port 0."""
    stats = numba.carray(arena_ptr, (arena_len // 8,), np.uint64)
    bytes_in = numba.carray(meta_ptr, (meta_cap * 32,), np.uint8)
    copy = numba.carray(arena_ptr, (arena_len,), np.uint8)
    stats[STATS + 0] = n
    stats[STATS + 1] = meta_cap
    stats[STATS + 2] = pool_len
    stats[STATS + 3] = now_ns
    for k in range(meta_cap * 32):
        copy[H + 64 + k] = bytes_in[k]
        if k >= n * 32 and bytes_in[k] != 0:
            stats[STATS + 4] += 1
    meta = numba.carray(meta_ptr, (meta_cap,), META_DTYPE)
    for i in range(n):
        meta[i].out_port = 0
    meta[n].out_port = NO_PORT
    meta[n].drop_reason = 9
    meta[n].offset = 0xDEAD
    meta[n].paint = 3
    return n + 1


def inspect_arena(batch_size):
    return arena(64 + (batch_size + FREE_CAP) * 32)


def records_seen(a, batch_size):
    """The metadata records `inspect` saw in its last call."""
    raw = a[H + 64:H + 64 + (batch_size + FREE_CAP) * 32]
    return raw.view(META_DTYPE)


_libc = ctypes.CDLL(None)
_usleep = _libc.usleep
_usleep.argtypes = [ctypes.c_uint]
_usleep.restype = ctypes.c_int


@numba.cfunc(PIPELINE, nopython=True)
def wait_for_release(pool, pool_len, meta_ptr, n, meta_cap, arena_ptr, arena_len, now_ns):
    """Sets arena byte H, then sleeps until byte H + 1 is set (or 5 s pass: error)."""
    flags = numba.carray(arena_ptr, (arena_len,), np.uint8)
    flags[H] = 1
    released = False
    for _ in range(5000):
        if flags[H + 1] != 0:
            released = True
            break
        _usleep(1000)
    if not released:
        return -1
    meta = numba.carray(meta_ptr, (n,), META_DTYPE)
    for i in range(n):
        meta[i].out_port = 0
    return n


# -- (a) forwarding, and what the pipeline is given ----------------------------------


def test_forward_port_k_to_k_xor_1():
    ports = [0, 1, 2, 3, 0, 0, 1, 5]
    pkts = PacketList.from_bytes([bytes([p, i]) * 30 for i, p in enumerate(ports)],
                                 ports=ports, timestamps=range(100, 108))
    result = HostDriver(cross.address, arena()).run(pkts)
    assert sorted(result.outputs) == [0, 1, 2, 3, 4]
    for out in result.outputs:
        came_in = [i for i, p in enumerate(ports) if p ^ 1 == out]
        sent = result.outputs[out]
        assert sent.to_list() == [pkts[i] for i in came_in]
        assert list(sent.timestamps) == [100 + i for i in came_in]
        assert list(sent.ports) == [out] * len(came_in)
    assert (result.batches, result.packets, result.created, result.oversize) == (1, 8, 0, 0)
    assert result.drops == {}


@pytest.mark.parametrize("now_ns", [None, 12_345])
def test_records_pool_and_free_list_as_the_pipeline_sees_them(now_ns):
    a = inspect_arena(16)
    driver = HostDriver(inspect.address, a, batch_size=16, pool_slots=20)
    pkts = PacketList.from_bytes([b"\x11" * 60, b"\x22" * 61, b"\x33" * 1514],
                                 ports=[2, 0, 9], timestamps=[10, 30, 20])
    result = driver.run(pkts, now_ns=now_ns)
    stats = a.view(np.uint64)
    assert list(stats[STATS:STATS + 5]) == [3, 16 + FREE_CAP, 20 * BUF_STRIDE,
                                            30 if now_ns is None else now_ns, 0]
    seen = records_seen(a, 16)[:3]
    assert list(seen["offset"]) == [i * BUF_STRIDE + HEADROOM for i in range(3)]
    assert list(seen["length"]) == [60, 61, 1514]
    assert list(seen["in_port"]) == [2, 0, 9]
    assert list(seen["out_port"]) == [NO_PORT] * 3
    assert list(seen["net_offset"]) == [NO_NET_HEADER] * 3
    stamps = [10, 30, 20] if now_ns is None else [now_ns] * 3
    assert list(seen["timestamp_ns"]) == stamps
    for field in ("dst_ip", "paint", "drop_reason", "reserved0", "reserved1"):
        assert not seen[field].any(), field
    for i in range(3):
        start = i * BUF_STRIDE + HEADROOM
        assert bytes(driver.pool[start:start + len(pkts[i])]) == pkts[i]
    # The free list offers the 4 spare slots, the first spare one on top.
    header = a[:H].view(np.uint32)
    assert header[0] == 4 and list(header[2:6]) == [19, 18, 17, 16]
    assert result.outputs[0].to_list() == pkts.to_list()
    assert list(result.outputs[0].timestamps) == stamps
    assert result.drops == {9: 1} and result.created == 1


def test_records_left_by_a_batch_are_cleared_before_the_next():
    # Batches of 8, 8 and 3: the last call must not see the previous batch's
    # records 3..7, nor the record `inspect` appended at 8.
    a = inspect_arena(8)
    pkts = numbered(19)
    result = HostDriver(inspect.address, a, batch_size=8).run(pkts)
    stats = a.view(np.uint64)
    assert stats[STATS] == 3 and stats[STATS + 4] == 0
    assert result.batches == 3 and result.drops == {9: 3} and result.created == 3
    assert result.outputs[0].to_list() == pkts.to_list()
    assert list(result.outputs[0].timestamps) == list(pkts.timestamps)


# -- (b) drops ---------------------------------------------------------------------


def test_odd_lengths_dropped_with_their_reason():
    sizes = [60, 61, 64, 65, 67, 100]
    pkts = PacketList.from_bytes([bytes([s]) * s for s in sizes], ports=[3] * 6)
    result = HostDriver(drop_odd.address, arena(), batch_size=4).run(pkts)
    assert result.drops == {7: 3}
    assert result.outputs[3].to_list() == [bytes([s]) * s for s in sizes if s % 2 == 0]
    assert list(result.outputs) == [3] and result.batches == 2


# -- (c) packets the pipeline makes ----------------------------------------------------


def test_pipeline_copies_into_slots_from_the_free_list():
    pkts = numbered(5, size=70)
    driver = HostDriver(tee.address, arena(), batch_size=256)
    result = driver.run(pkts)
    assert result.outputs[0] == PacketList.from_bytes(pkts.to_list(), ports=0,
                                                      timestamps=pkts.timestamps)
    assert result.outputs[1].to_list() == pkts.to_list()
    assert list(result.outputs[1].timestamps) == [t + 1 for t in pkts.timestamps]
    assert result.created == 5 and result.drops == {}
    # the copies went to the first spare slots, after the batch's own 256
    offsets = driver.meta["offset"][5:10]
    assert list(offsets // BUF_STRIDE) == [256, 257, 258, 259, 260]


def test_free_list_holds_only_the_spare_slots():
    a = arena()
    driver = HostDriver(tee.address, a, batch_size=4, pool_slots=6)  # 2 spare slots
    pkts = numbered(10)
    result = driver.run(pkts)
    assert result.batches == 3 and result.created == 6
    assert result.outputs[0].to_list() == pkts.to_list()
    assert result.outputs[1].to_list() == [pkts[i] for i in (0, 1, 4, 5, 8, 9)]
    assert a.view(np.uint64)[STATS] == 4  # copies of 2, 3, 6, 7 found no slot


# -- (d) errors ------------------------------------------------------------------------


@pytest.mark.parametrize("mode,message", [
    (0, "pipeline reported internal error -1 in batch 0"),
    (1, "pipeline returned 513 records in batch 0, more than the metadata capacity 512"),
    (2, "pipeline returned 2 records for a batch of 3 in batch 0"),
    (3, "pipeline sent record 0 of batch 0 to port 0 with offset 1048566 and length 60, "
        "past the end of the 1048576-byte pool"),
])
def test_pipeline_breaking_the_convention_is_a_driver_error(mode, message):
    a = arena()
    a[H] = mode
    driver = HostDriver(misbehave.address, a)
    with pytest.raises(DriverError) as info:
        driver.run(numbered(3))
    assert str(info.value).startswith(message), str(info.value)
    assert isinstance(info.value, NfvError)
    a[H] = 1
    with pytest.raises(DriverError, match="more than the metadata capacity"):
        driver.loop(numbered(3), 0.01)
    # the driver is still usable after an error
    driver2 = HostDriver(cross.address, a)
    assert len(driver2.run(numbered(3)).outputs[1]) == 3


def test_bad_driver_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        HostDriver(cross.address, arena(), batch_size=0)
    with pytest.raises(ValueError, match="batch_size"):
        HostDriver(cross.address, arena(), batch_size=257)
    with pytest.raises(ValueError, match="pool_slots"):
        HostDriver(cross.address, arena(), batch_size=32, pool_slots=31)
    with pytest.raises(TypeError, match="uint8"):
        HostDriver(cross.address, np.zeros(H, np.uint32))
    with pytest.raises(ValueError, match="C-contiguous"):
        HostDriver(cross.address, np.zeros(2 * H, np.uint8)[::2])
    with pytest.raises(ValueError, match="arena header"):
        HostDriver(cross.address, np.zeros(H - 1, np.uint8))
    with pytest.raises(ValueError, match="function address"):
        HostDriver(0, arena())
    with pytest.raises(ValueError, match="now_ns"):
        HostDriver(cross.address, arena()).run(numbered(1), now_ns=-1)


# -- (e) oversize frames ---------------------------------------------------------------


def test_frames_too_big_for_a_slot_are_dropped_by_the_driver():
    assert DATA_ROOM == BUF_STRIDE - HEADROOM
    sizes = [60, DATA_ROOM, DATA_ROOM + 1, 9000, 70, 65535]
    pkts = PacketList.from_bytes([bytes([i]) * s for i, s in enumerate(sizes)], ports=0)
    result = HostDriver(cross.address, arena(), batch_size=2).run(pkts)
    assert result.oversize == 3 and result.packets == 3 and result.batches == 2
    assert result.outputs[1].to_list() == [pkts[0], pkts[1], pkts[4]]
    only_big = PacketList.from_bytes([b"x" * 5000])
    result = HostDriver(cross.address, arena()).run(only_big)
    assert (result.oversize, result.batches, result.outputs) == (1, 0, {})
    with pytest.raises(ValueError, match="longer than a slot"):
        HostDriver(cross.address, arena()).loop(only_big, 0.01)


# -- (f) order ---------------------------------------------------------------------------


def test_order_kept_across_batches():
    n = 1000
    ports = [(i * 7) % 3 for i in range(n)]
    pkts = numbered(n, ports=ports)
    result = HostDriver(cross.address, arena(), batch_size=256).run(pkts)
    assert result.batches == 4 and result.packets == n
    for port, out in result.outputs.items():
        expected = [i for i in range(n) if ports[i] ^ 1 == port]
        assert [int.from_bytes(p[:4], "big") for p in out] == expected
        assert out.to_list() == [pkts[i] for i in expected]
        assert list(out.timestamps) == [1_000 + 10 * i for i in expected]


def test_empty_input():
    result = HostDriver(cross.address, arena()).run(PacketList.from_bytes([]))
    assert (result.outputs, result.drops, result.batches, result.packets) == ({}, {}, 0, 0)


# -- (g) the GIL is released during the call -------------------------------------------


def test_pipeline_runs_without_the_gil():
    # The pipeline waits inside its call for this thread to set a flag. If the
    # driver held the GIL, this thread could not run until the pipeline gave
    # up after 5 s and returned an error.
    a = arena()
    driver = HostDriver(wait_for_release.address, a, batch_size=4)
    outcome = {}

    def background():
        try:
            outcome["result"] = driver.run(numbered(4))
        except Exception as e:  # noqa: BLE001 - reported below
            outcome["error"] = e

    thread = threading.Thread(target=background)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while a[H] == 0:
            assert time.monotonic() < deadline, "pipeline never called"
            time.sleep(0.001)
        with pytest.raises(DriverError, match="already running in another thread"):
            driver.run(numbered(1))
    finally:
        a[H + 1] = 1
        thread.join(10)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"].outputs[0].to_list() == numbered(4).to_list()


# -- loop --------------------------------------------------------------------------------


def test_loop_runs_for_the_given_time():
    driver = HostDriver(cross.address, arena(), batch_size=32)
    packets, elapsed = driver.loop(numbered(10), 0.05)
    assert elapsed >= 50_000_000
    assert packets > 0 and packets % 32 == 0  # every batch is full: inputs are cycled
    with pytest.raises(ValueError, match="at least one"):
        driver.loop(PacketList.from_bytes([]), 0.01)


def test_loop_clock_advances_from_now_ns():
    a = inspect_arena(8)
    HostDriver(inspect.address, a, batch_size=8).loop(numbered(3), 0.02, now_ns=10**12)
    stats = a.view(np.uint64)
    assert stats[STATS] == 8  # cycled inputs fill a batch
    assert 10**12 <= stats[STATS + 3] < 10**12 + 10**9
    assert stats[STATS + 4] == 0
    seen = records_seen(a, 8)[:8]
    assert (seen["timestamp_ns"] == stats[STATS + 3]).all()
    assert [int(seen["length"][i]) for i in range(8)] == [60] * 8
