"""The longest-prefix-match table (nfv.tables.lpm) against hand-written answers and oracles.

Hand-built cases write their expectations from the routes, not from the table.
The property test compares with the obvious algorithm (scan every route with
`ipaddress`, keep the longest match, the later one on a tie); the 1M-route test
with a per-length sorted-prefix search in numpy.  Lookups run in a loop compiled
with boundscheck=True, so an out-of-range index fails the test instead of
reading past an array.
"""
from __future__ import annotations

import ipaddress

import re

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numba import njit

from nfv.tables.lpm import (
    CHUNK, MAX_VALUE, POINTER, TBL16_SIZE, LpmTable, build_lpm, lookup_py, lpm_lookup,
)

# Compiled once for the module: the kernel itself, recompiled with bounds checks, and
# a batch loop over it (a fault raises IndexError here rather than reading garbage).
_lookup_checked = njit(boundscheck=True)(lpm_lookup.py_func)


@njit(boundscheck=True)
def _lookup_all(addrs, tbl16, tbl8, out):
    for i in range(addrs.shape[0]):
        out[i] = _lookup_checked(addrs[i], tbl16, tbl8)


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def route(cidr: str, value: int) -> tuple[int, int, int]:
    """'10.1.2.3/8', v -> (10.1.2.3 as an integer, 8, v): host bits are kept as written."""
    addr, length = cidr.split("/")
    return ip(addr), int(length), value


def lookup_many(table: LpmTable, addrs) -> list[int]:
    a = np.asarray(addrs, dtype=np.uint32)
    out = np.empty(len(a), dtype=np.int32)
    _lookup_all(a, *table.arrays, out)
    return out.tolist()


def check(table: LpmTable, expected: dict[str, int]) -> None:
    """Every address in `expected` looks up to its value: in the checked loop, in
    the exported kernel and in lookup_py."""
    addrs = [ip(a) for a in expected]
    want = list(expected.values())
    assert lookup_many(table, addrs) == want
    assert [lookup_py(table, a) for a in addrs] == want
    assert [int(lpm_lookup(np.uint32(a), *table.arrays)) for a in addrs] == want


# -- hand-built cases ------------------------------------------------------------------

NESTED = [
    route("10.0.0.0/8", 1),
    route("10.1.0.0/16", 2),
    route("10.1.2.0/24", 3),
    route("10.1.2.128/25", 4),
    route("10.1.2.200/32", 5),
]

NESTED_ANSWERS = {
    "10.1.2.200": 5,
    "10.1.2.201": 4, "10.1.2.199": 4, "10.1.2.128": 4, "10.1.2.255": 4,
    "10.1.2.127": 3, "10.1.2.0": 3,
    "10.1.3.0": 2, "10.1.1.255": 2, "10.1.0.0": 2, "10.1.255.255": 2,
    "10.0.255.255": 1, "10.2.0.0": 1, "10.0.0.0": 1, "10.255.255.255": 1,
}


def test_nested_prefixes_without_default():
    t = build_lpm(NESTED)
    check(t, {**NESTED_ANSWERS, "9.255.255.255": -1, "11.0.0.0": -1, "0.0.0.0": -1,
              "255.255.255.255": -1, "192.168.1.1": -1})


def test_nested_prefixes_with_default_route():
    t = build_lpm(NESTED + [route("0.0.0.0/0", 100)])
    check(t, {**NESTED_ANSWERS, "9.255.255.255": 100, "11.0.0.0": 100, "0.0.0.0": 100,
              "255.255.255.255": 100, "192.168.1.1": 100})


def test_route_order_does_not_matter_for_different_lengths():
    t = build_lpm(list(reversed(NESTED)) + [route("0.0.0.0/0", 100)])
    check(t, {**NESTED_ANSWERS, "11.0.0.0": 100})


def test_empty_table_matches_nothing():
    t = build_lpm([])
    assert t.n_routes == 0 and t.chunks_used == 0
    check(t, {"0.0.0.0": -1, "255.255.255.255": -1, "10.1.2.3": -1, "128.0.0.0": -1})


def test_default_route_alone():
    t = build_lpm([route("0.0.0.0/0", 7)])
    check(t, {"0.0.0.0": 7, "255.255.255.255": 7, "10.1.2.3": 7})


def test_two_halves_of_the_address_space():
    t = build_lpm([route("0.0.0.0/1", 1), route("128.0.0.0/1", 2)])
    check(t, {"0.0.0.0": 1, "127.255.255.255": 1, "128.0.0.0": 2, "255.255.255.255": 2})


def test_adjacent_ranges():
    t = build_lpm([
        route("192.168.0.0/24", 1),
        route("192.168.1.0/24", 2),
        route("192.168.2.0/23", 3),
        route("172.16.255.255/32", 4),   # last address of one /16 ...
        route("172.17.0.0/32", 5),       # ... first of the next
        route("172.18.0.0/17", 6),
        route("172.18.128.0/17", 7),
    ])
    check(t, {
        "192.167.255.255": -1, "192.168.0.0": 1, "192.168.0.255": 1,
        "192.168.1.0": 2, "192.168.1.255": 2,
        "192.168.2.0": 3, "192.168.3.255": 3, "192.168.4.0": -1,
        "172.16.255.254": -1, "172.16.255.255": 4, "172.17.0.0": 5, "172.17.0.1": -1,
        "172.18.0.0": 6, "172.18.127.255": 6, "172.18.128.0": 7, "172.18.255.255": 7,
        "172.19.0.0": -1,
    })


def test_host_bits_of_the_prefix_are_ignored():
    t = build_lpm([
        route("10.1.2.3/8", 1),           # 10.0.0.0/8
        route("10.1.2.255/24", 2),        # 10.1.2.0/24
        route("10.1.2.131/26", 3),        # 10.1.2.128/26
        route("255.255.255.255/0", 4),    # default
    ])
    check(t, {"10.0.0.0": 1, "10.1.1.255": 1, "10.1.2.0": 2, "10.1.2.127": 2,
              "10.1.2.128": 3, "10.1.2.191": 3, "10.1.2.192": 2, "11.0.0.0": 4})


def test_duplicate_prefix_last_one_wins():
    t = build_lpm([route("10.0.0.0/8", 1), route("10.9.9.9/8", 2), route("10.1.2.0/24", 3),
                   route("10.1.2.0/24", 4), route("10.0.0.0/9", 5)])
    assert t.n_routes == 3
    check(t, {"10.200.0.0": 2, "10.1.2.3": 4, "10.1.3.0": 5})


def test_extreme_addresses_and_longest_lengths():
    t = build_lpm([route("0.0.0.0/32", 1), route("255.255.255.255/32", 2),
                   route("255.255.255.254/31", 3), route("0.0.0.0/31", 4)])
    check(t, {"0.0.0.0": 1, "0.0.0.1": 4, "0.0.0.2": -1, "255.255.255.255": 2,
              "255.255.255.254": 3, "255.255.255.253": -1})


def test_largest_value():
    t = build_lpm([route("10.0.0.0/8", MAX_VALUE), route("10.1.2.3/32", 0)])
    check(t, {"10.0.0.1": MAX_VALUE, "10.1.2.3": 0})


@pytest.mark.parametrize("bad, fragment", [
    ((ip("10.0.0.0"), 33, 1), "prefix length"),
    ((ip("10.0.0.0"), -1, 1), "prefix length"),
    ((1 << 32, 8, 1), "32-bit address"),
    ((-1, 8, 1), "32-bit address"),
    ((ip("10.0.0.0"), 8, -1), "value"),
    ((ip("10.0.0.0"), 8, MAX_VALUE + 1), "value"),
])
def test_bad_routes_are_refused(bad, fragment):
    with pytest.raises(ValueError, match=fragment) as e:
        build_lpm([route("1.0.0.0/8", 0), bad])
    assert "route 1 " in str(e.value)


def test_address_argument_types():
    """The kernel uses the low 32 bits of any integer: a signed int32 of the same bits works."""
    t = build_lpm([route("255.255.255.255/32", 9), route("0.0.0.0/0", 1)])
    args = t.arrays
    assert lpm_lookup(np.uint32(0xFFFF_FFFF), *args) == 9
    assert lpm_lookup(np.int32(-1), *args) == 9
    assert lpm_lookup(0xFFFF_FFFF, *args) == 9          # int64
    assert lpm_lookup(np.uint64(0xFFFF_FFFE), *args) == 1


def test_kernel_has_no_runtime_calls():
    """The kernel's compiled body calls nothing: no NRT refcounting, no allocation,
    no exception raising (the unikernel has no runtime for any of them)."""
    from nfv.jit import OPTIONS

    # A fresh, uncached compile with the dataplane options: cached code cannot be inspected.
    fresh = numba.njit(**{k: v for k, v in OPTIONS.items() if k != "cache"})(lpm_lookup.py_func)
    t = build_lpm(NESTED)
    fresh(np.uint32(1), *t.arrays)
    for sig, ir in fresh.inspect_llvm().items():
        start = next(m.start() for m in re.finditer(r"\ndefine [^\n]*lpm_lookup", ir))
        body = ir[start:ir.index("\n}", start)]
        assert " call " not in body, f"{sig}: {body}"
        assert body.count("load i32") == 3, f"{sig}: {body}"


# -- sizes, capacity and in-place updates ------------------------------------------------


def test_small_table_stays_small():
    t = build_lpm(NESTED)
    # One chunk for 10.1/16 (it has /24, /25, /32 below it), one for 10.1.2/24.
    assert t.chunks_used == 2 and t.capacity_chunks == 2
    assert t.tbl16.shape == (TBL16_SIZE,) and t.tbl8.shape == (2 * CHUNK,)
    assert t.nbytes == 4 * TBL16_SIZE + 2 * 4 * CHUNK == 264_192
    for a in t.arrays:
        assert a.dtype == np.uint32 and a.flags.c_contiguous
    assert build_lpm([route("10.0.0.0/8", 1)]).nbytes == 4 * TBL16_SIZE + 4 * CHUNK


def test_capacity_is_allocated_and_checked():
    t = build_lpm(NESTED, capacity_chunks=10)
    assert t.capacity_chunks == 10 and t.chunks_used == 2 and t.tbl8.shape == (10 * CHUNK,)
    check(t, NESTED_ANSWERS)
    with pytest.raises(ValueError, match="need 2 tbl8 chunks.*capacity_chunks is 1"):
        build_lpm(NESTED, capacity_chunks=1)
    assert build_lpm([], capacity_chunks=0).tbl8.shape == (0,)


def test_fits_and_copy_from_update_in_place():
    old = build_lpm(NESTED, capacity_chunks=4)
    tbl16, tbl8 = old.arrays
    n_signatures = len(_lookup_all.signatures)
    new_routes = [route("10.1.2.0/24", 30), route("192.168.7.0/25", 31),
                  route("192.168.8.0/25", 32), route("0.0.0.0/0", 33)]
    new = build_lpm(new_routes)
    # 10.1/16 and 192.168/16 need a level-2 chunk, 192.168.7/24 and .8/24 a level-3 one:
    # the new table fills the old one's capacity exactly.
    assert new.chunks_used == 4 and old.fits(new)
    old.copy_from(new)
    assert old.arrays[0] is tbl16 and old.arrays[1] is tbl8     # same memory
    assert (old.n_routes, old.chunks_used, old.capacity_chunks) == (4, 4, 4)
    check(old, {"10.1.2.200": 30, "10.1.3.0": 33, "192.168.7.1": 31, "192.168.7.128": 33,
                "192.168.8.127": 32, "10.0.0.0": 33})
    assert len(_lookup_all.signatures) == n_signatures          # nothing recompiled
    # The memory is exactly what a fresh build with that capacity gives.
    fresh = build_lpm(new_routes, capacity_chunks=4)
    assert all(np.array_equal(a, b) for a, b in zip(old.arrays, fresh.arrays))

    too_big = build_lpm([route(f"10.{i}.0.0/24", i) for i in range(5)])
    assert too_big.chunks_used == 5 and not old.fits(too_big)
    with pytest.raises(ValueError, match="need 5 tbl8 chunks"):
        old.copy_from(too_big)
    check(old, {"10.1.2.200": 30})                               # left untouched


# -- property test against the obvious algorithm ------------------------------------------


def oracle(routes: list[tuple[int, int, int]], addrs: list[int]) -> list[int]:
    nets = [(ipaddress.IPv4Network((p, n), strict=False), n, v) for p, n, v in routes]
    out = []
    for a in addrs:
        addr = ipaddress.IPv4Address(a)
        best_len, best = -1, -1
        for net, n, v in nets:
            if addr in net and n >= best_len:      # >=: the later duplicate wins
                best_len, best = n, v
        out.append(best)
    return out


U32 = st.integers(0, 0xFFFF_FFFF)
VALUES = st.integers(0, 40)


@st.composite
def routes_and_addrs(draw):
    anywhere = draw(st.lists(st.tuples(U32, st.integers(0, 32), VALUES), max_size=20))
    # Many long prefixes below one /16 (and often one /24): the chunked levels.
    base = draw(U32) & 0xFFFF_0000
    low = st.one_of(st.integers(0, 0xFFFF), st.integers(0, 0xFF).map(lambda b: 0x4200 | b))
    local = draw(st.lists(st.tuples(low.map(lambda x: base | x), st.integers(12, 32), VALUES),
                          max_size=40))
    routes = anywhere + local
    # The same prefix again, host bits changed, with another value.
    for p, n, _ in draw(st.lists(st.sampled_from(routes), max_size=5)) if routes else []:
        routes.append((p ^ draw(st.integers(0, (1 << (32 - n)) - 1)), n, draw(VALUES)))
    routes = draw(st.permutations(routes))

    # Addresses at and around every route's edges, plus random ones.
    addrs = []
    for p, n, _ in routes:
        first = p & ~((1 << (32 - n)) - 1) & 0xFFFF_FFFF
        last = first | ((1 << (32 - n)) - 1)
        addrs += [first, last, (first - 1) & 0xFFFF_FFFF, (last + 1) & 0xFFFF_FFFF]
    addrs += draw(st.lists(U32, max_size=20))
    addrs += draw(st.lists(st.integers(0, 0xFFFF).map(lambda x: base | x), max_size=20))
    return routes, addrs


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(routes_and_addrs())
def test_matches_linear_scan_oracle(case):
    routes, addrs = case
    table = build_lpm(routes)
    want = oracle(routes, addrs)
    assert lookup_many(table, addrs) == want
    assert [lookup_py(table, a) for a in addrs] == want


# -- a million routes ----------------------------------------------------------------------


def random_routes(n: int, seed: int) -> np.ndarray:
    """(n, 3) routes: 60% /24, 35% /16-/23, 5% /25-/32, values 0..n-1 (some collide)."""
    rng = np.random.default_rng(seed)
    lengths = np.concatenate([np.full(n * 60 // 100, 24), rng.integers(16, 24, n * 35 // 100)])
    lengths = np.concatenate([lengths, rng.integers(25, 33, n - len(lengths))])
    return np.stack([rng.integers(0, 1 << 32, n), lengths, np.arange(n)], axis=1)


def numpy_oracle(routes: np.ndarray, addrs: np.ndarray) -> np.ndarray:
    """Longest match by searching, for each length from /32 down, the sorted prefixes."""
    out = np.full(len(addrs), -1, dtype=np.int64)
    done = np.zeros(len(addrs), dtype=bool)
    for n in range(32, -1, -1):
        mine = routes[routes[:, 1] == n]
        if len(mine) == 0:
            continue
        mask = (0xFFFF_FFFF << (32 - n)) & 0xFFFF_FFFF
        # Last duplicate wins: a stable sort keeps the input order among equal prefixes.
        prefixes = mine[:, 0] & mask
        order = np.argsort(prefixes, kind="stable")
        prefixes, values = prefixes[order], mine[order, 2]
        probe = addrs & mask
        i = np.searchsorted(prefixes, probe, side="right") - 1
        hit = ~done & (i >= 0) & (prefixes[np.maximum(i, 0)] == probe)
        out[hit] = values[i[hit]]
        done |= hit
    return out


def test_a_million_routes():
    routes = random_routes(1_000_000, seed=7)
    routes = np.concatenate([routes, [[0, 0, 999_999_999]]])          # a default route
    table = build_lpm([tuple(r) for r in routes.tolist()])
    assert table.chunks_used == table.capacity_chunks
    rng = np.random.default_rng(8)
    near = routes[rng.integers(0, len(routes), 3000), 0]
    addrs = np.concatenate([rng.integers(0, 1 << 32, 3000), near, (near + 1) & 0xFFFF_FFFF,
                            (near | 0xFF)]) & 0xFFFF_FFFF
    assert lookup_many(table, addrs) == numpy_oracle(routes, addrs).tolist()
    # Pointer entries really are used at both levels.
    assert (table.tbl16 & POINTER).any() and (table.tbl8 & POINTER).any()
