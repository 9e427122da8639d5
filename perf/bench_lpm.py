"""Benchmark of the LPM table (nfv.tables.lpm): build time, lookup cost, memory.

    .venv/bin/python perf/bench_lpm.py [--sizes 1000,100000,1000000] [--lookups 4000000]

For each size, random routes in a mix like a routing table's (mostly /24, some
/16-/23, a few /25-/32, one default route) are built from a Python list of
tuples, as the element layer will pass them.  Lookups run inside one njit loop
over a pre-generated address array (independent lookups, as in a batch), best
of 5 runs, for two address sets:

    random   uniform 32-bit addresses (most stop at tbl16 or the level-2 chunk)
    routed   addresses inside the routes (1 in 6 inside a /25-/32, so three loads)
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from numba import njit

from nfv.bench import machine
from nfv.tables.lpm import build_lpm, lpm_lookup

MIX = ((24, 24, 0.80), (16, 23, 0.18), (25, 32, 0.02))   # (shortest, longest, share)


def random_routes(n: int, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    m = n - 1                                               # plus the default route
    lengths = np.concatenate([rng.integers(lo, hi + 1, int(m * share)) for lo, hi, share in MIX])
    lengths = np.concatenate([lengths, np.full(m - len(lengths), 24)])
    prefixes = rng.integers(0, 1 << 32, m)
    routes = list(zip(prefixes.tolist(), lengths.tolist(), range(m)))
    return routes + [(0, 0, m)]


def routed_addresses(routes, count: int, rng: np.random.Generator) -> np.ndarray:
    arr = np.array(routes, dtype=np.int64)
    long = arr[arr[:, 1] > 24]
    # One address in six inside a long prefix, the rest inside any route.
    picks = np.concatenate([long[rng.integers(0, len(long), count // 6)],
                            arr[rng.integers(0, len(arr), count - count // 6)]])
    host = (np.int64(1) << (32 - picks[:, 1])) - 1
    addrs = (picks[:, 0] & ~host) | (rng.integers(0, 1 << 32, len(picks)) & host)
    return rng.permutation(addrs & 0xFFFF_FFFF).astype(np.uint32)


@njit(nogil=True)
def lookup_loop(addrs, tbl16, tbl8):
    total = 0
    for i in range(addrs.shape[0]):
        total += lpm_lookup(addrs[i], tbl16, tbl8)
    return total


def ns_per_lookup(addrs: np.ndarray, arrays, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        lookup_loop(addrs, *arrays)
        best = min(best, time.perf_counter() - t)
    return best / len(addrs) * 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,100000,1000000")
    ap.add_argument("--lookups", type=int, default=4_000_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)

    lookup_loop(np.zeros(1, np.uint32), *build_lpm([]).arrays)   # compile outside the timings
    print(f"# {machine()}, {args.lookups:,} lookups per "
          f"run, best of 5")
    print(f"{'routes':>9} {'build s':>8} {'chunks':>8} {'memory':>10} "
          f"{'ns random':>10} {'ns routed':>10}")
    for n in (int(s) for s in args.sizes.split(",")):
        routes = random_routes(n, rng)
        t = time.perf_counter()
        table = build_lpm(routes)
        build_s = time.perf_counter() - t
        random_addrs = rng.integers(0, 1 << 32, args.lookups).astype(np.uint32)
        routed = routed_addresses(routes, args.lookups, rng)
        ns_random = ns_per_lookup(random_addrs, table.arrays)
        ns_routed = ns_per_lookup(routed, table.arrays)
        print(f"{n:>9,} {build_s:>8.2f} {table.chunks_used:>8,} "
              f"{table.nbytes / 2**20:>7.1f} MiB {ns_random:>10.2f} {ns_routed:>10.2f}")


if __name__ == "__main__":
    main()
