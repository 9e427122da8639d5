"""Cost of the host driver per packet, around a pipeline that does almost nothing.

    .venv/bin/python perf/bench_driver.py [--seconds 1.0] [--size 64] [--batches 32,64,256]

The pipeline is a Numba cfunc that sets out_port = in_port ^ 1 on each record,
so the figures are the driver's own overhead: copying each frame into its pool
slot, filling its metadata record, refilling the free list and calling through
the function pointer with the GIL released. `loop` is that work alone, batch
after batch in C; `run` adds copying every output frame back out into
per-port PacketLists, as `nfv run` does. Single thread; the machine is printed
with the figures.
"""
from __future__ import annotations

import argparse
import time

import numba
import numpy as np
from numba import types

from nfv.bench import machine
from nfv.dataplane.driver import ARENA_HEADER_SIZE, HostDriver
from nfv.dataplane.packet import META_DTYPE
from nfv.dataplane.pcap import PacketList

PIPELINE = types.int32(types.voidptr, types.int64, types.voidptr, types.int32, types.int32,
                       types.voidptr, types.int64, types.uint64)


@numba.cfunc(PIPELINE, nopython=True)
def cross(pool, pool_len, meta_ptr, n, meta_cap, arena, arena_len, now_ns):
    meta = numba.carray(meta_ptr, (n,), META_DTYPE)
    for i in range(n):
        meta[i].out_port = meta[i].in_port ^ 1
    return n


def frames(count: int, size: int) -> PacketList:
    """`count` distinct frames of `size` bytes, arriving on ports 0 and 1."""
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, count * size, dtype=np.uint8)
    return PacketList(data, np.arange(count, dtype=np.int64) * size,
                      np.full(count, size, np.int32), np.arange(count, dtype=np.uint64),
                      np.arange(count, dtype=np.uint8) & 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="time per loop measurement")
    ap.add_argument("--size", type=int, default=64, help="frame size in bytes")
    ap.add_argument("--batches", default="32,64,256", help="batch sizes, comma-separated")
    ap.add_argument("--run-packets", type=int, default=1_000_000,
                    help="packets per run() measurement")
    args = ap.parse_args()

    print(f"# {machine()}, numba {numba.__version__}")
    print(f"# {args.size}-byte frames, pipeline: out_port = in_port ^ 1, one thread")
    print(f"{'mode':<6} {'batch':>5} {'packets':>12} {'Mpps':>8} {'ns/packet':>10}")
    inputs = frames(1024, args.size)  # 64 KiB of frames: stays in L2, like a NIC ring
    run_inputs = frames(args.run_packets, args.size)
    arena = np.zeros(ARENA_HEADER_SIZE, np.uint8)
    for batch in (int(b) for b in args.batches.split(",")):
        driver = HostDriver(cross.address, arena, batch_size=batch)
        driver.loop(inputs, 0.1)  # warm caches and pages
        packets, elapsed_ns = driver.loop(inputs, args.seconds)
        print(f"{'loop':<6} {batch:>5} {packets:>12} {packets / elapsed_ns * 1e3:>8.1f} "
              f"{elapsed_ns / packets:>10.2f}")
        start = time.perf_counter_ns()
        result = driver.run(run_inputs, now_ns=0)
        elapsed_ns = time.perf_counter_ns() - start
        assert sum(len(p) for p in result.outputs.values()) == args.run_packets
        print(f"{'run':<6} {batch:>5} {args.run_packets:>12} "
              f"{args.run_packets / elapsed_ns * 1e3:>8.1f} {elapsed_ns / args.run_packets:>10.2f}")


if __name__ == "__main__":
    main()
