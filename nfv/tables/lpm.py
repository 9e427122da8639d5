"""IPv4 longest-prefix match for RadixIPLookup / StaticIPLookup: a DIR-16-8-8 table.

Build a table from routes on the host, hand its arrays to the dataplane, look up
addresses inside a kernel::

    table = build_lpm([(0x0A000000, 8, 0), (0x0A010000, 16, 1), (0, 0, 2)])
    lpm_lookup(0x0A010203, *table.arrays)     # -> 1   (10.1.0.0/16)
    lpm_lookup(0x0B000000, *table.arrays)     # -> 2   (the default route)

A route is `(prefix, prefix_len, value)`; a lookup returns the value of the
longest prefix containing the address, or -1 when no route does.  Host bits
of `prefix` are ignored; when the same prefix/length appears twice, the later
route wins.

Layout (see LPM.md for why):

    tbl16  uint32[65536]          indexed by address bits 31..16
    tbl8   uint32[chunks * 256]   256-entry chunks; level 2 is indexed by bits
                                  15..8, level 3 by bits 7..0

Every entry is one uint32:

    bit 31 set    pointer: bits 30..0 are a chunk number in tbl8
    bit 31 clear  leaf: 0 = no route, n > 0 = route value n - 1

A lookup reads tbl16, then at most two chunks: three dependent loads.  A leaf
stores value + 1 so that "no route" is 0 and the lookup ends with one
subtraction, without a branch.  Level-3 chunks hold leaves only.

The kernel reads no counts or sizes: tbl16's index is 16 bits of the address
(its shape is 65536 by construction), and every tbl8 index comes from a pointer
that the builder made < `chunks_used`.  tbl8's length (`capacity_chunks * 256`)
only bounds what a later table may use, so a route update copies a new table
into the same memory whenever `old.fits(new)` (`old.copy_from(new)`), without
recompiling: both arrays keep their shapes and the kernel is unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from nfv.jit import kernel

__all__ = [
    "CHUNK", "MAX_VALUE", "POINTER", "TBL16_SIZE", "LpmTable", "build_lpm", "lookup_py",
    "lpm_lookup",
]

TBL16_SIZE = 1 << 16
#: Entries in one tbl8 chunk (one byte of the address).
CHUNK = 256
#: Bit 31 of an entry: the rest of the entry is a chunk number, not a leaf.
POINTER = 0x8000_0000
#: Largest route value: a leaf stores value + 1 below the POINTER bit.
MAX_VALUE = POINTER - 2

_ADDR_MASK = 0xFFFF_FFFF


@dataclass(eq=False)
class LpmTable:
    """A built DIR-16-8-8 table; `arrays` are what `lpm_lookup` takes after the address.

    n_routes     distinct (prefix, length) routes stored
    chunks_used  tbl8 chunks the routes need (level 2 and level 3)
    """

    tbl16: np.ndarray
    tbl8: np.ndarray
    n_routes: int
    chunks_used: int

    @property
    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(tbl16, tbl8): C-contiguous uint32 arrays, in the order `lpm_lookup` takes them."""
        return (self.tbl16, self.tbl8)

    @property
    def capacity_chunks(self) -> int:
        """tbl8 chunks allocated (>= chunks_used)."""
        return self.tbl8.shape[0] // CHUNK

    @property
    def nbytes(self) -> int:
        """Bytes of all arrays (what the arena must hold for this table)."""
        return sum(a.nbytes for a in self.arrays)

    def fits(self, other: LpmTable) -> bool:
        """Can `other`'s routes be copied into this table's memory (same kernel, same shapes)?"""
        return (other.tbl16.shape == self.tbl16.shape
                and other.chunks_used <= self.capacity_chunks)

    def copy_from(self, other: LpmTable) -> None:
        """Replace this table's contents by `other`'s, in place (a route update).

        The arrays keep their identity and shapes; unused chunks are zeroed so
        the memory is byte-equal to `build_lpm(routes, self.capacity_chunks)`.
        Only between two batches: a lookup during the copy may see a mix.
        """
        if not self.fits(other):
            raise ValueError(
                f"the new routes need {other.chunks_used} tbl8 chunks but this table has "
                f"room for {self.capacity_chunks}; build the table with a larger "
                f"capacity_chunks")
        used = other.chunks_used * CHUNK
        self.tbl8[:used] = other.tbl8[:used]
        self.tbl8[used:] = 0
        self.tbl16[:] = other.tbl16
        self.n_routes = other.n_routes
        self.chunks_used = other.chunks_used

    def __repr__(self) -> str:
        return (f"LpmTable({self.n_routes} routes, {self.chunks_used}/{self.capacity_chunks} "
                f"chunks, {self.nbytes / 1024:.0f} KiB)")


# -- building --------------------------------------------------------------------------


def _as_route_array(routes: Sequence[tuple[int, int, int]]) -> np.ndarray:
    """routes as an int64 (n, 3) array, checked; errors name the first bad route."""
    try:
        arr = np.asarray(routes, dtype=np.int64)
    except (OverflowError, TypeError, ValueError) as e:
        raise ValueError(f"routes must be (prefix, prefix_len, value) integer triples: {e}") \
            from None
    if arr.size == 0:
        return arr.reshape(0, 3)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError("routes must be (prefix, prefix_len, value) integer triples")
    prefix, length, value = arr.T
    checks = (((prefix < 0) | (prefix > _ADDR_MASK), "prefix is not a 32-bit address"),
              ((length < 0) | (length > 32), "prefix length is not 0-32"),
              ((value < 0) | (value > MAX_VALUE), f"value is not 0-{MAX_VALUE}"))
    for bad, what in checks:
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"route {i} {tuple(int(x) for x in arr[i])}: {what}")
    return arr


def _fill(table: np.ndarray, base: np.ndarray, span: int, leaf: np.ndarray) -> None:
    """table[base[i] : base[i] + span] = leaf[i] for every i.

    Every base is a multiple of span (prefixes are masked, spans are powers of
    two that divide the chunk), so the ranges are rows of table viewed as
    (-1, span): one fancy-indexed store, no index temporaries.
    """
    if span == 1:
        table[base] = leaf
    else:
        table.reshape(-1, span)[base // span] = leaf[:, None]


def build_lpm(routes: Sequence[tuple[int, int, int]],
              capacity_chunks: int | None = None) -> LpmTable:
    """Build the table for `routes` [(prefix_u32, prefix_len, value), ...].

    capacity_chunks: tbl8 chunks to allocate (256 entries, 1 KiB each); None
    allocates what the routes need (at least one, so no array is empty).  Give
    room here for the routes a runtime update may add.  Raises ValueError on a
    bad route or when the routes need more chunks than capacity_chunks.
    """
    arr = _as_route_array(routes)
    length = arr[:, 1]
    # Host bits off: (1 << 32) - 1 - ((1 << (32 - len)) - 1) is the netmask.
    prefix = arr[:, 0] & (_ADDR_MASK ^ ((np.int64(1) << (32 - length)) - 1))
    value = arr[:, 2]

    # One route per (length, prefix), the last one given; np.unique sorts the
    # keys, so routes come out grouped by length, shortest first.
    key = (length << 32) | prefix
    keys, first_from_end = np.unique(key[::-1], return_index=True)
    keep = len(key) - 1 - first_from_end
    prefix, length, leaf = prefix[keep], length[keep], value[keep] + 1
    # The routes of length l are [starts[l], starts[l + 1]).
    starts = np.searchsorted(keys >> 32, np.arange(34))

    def of_len(lo: int, hi: int):
        """(l, prefixes, leaves) for each length l in lo..hi, in increasing l."""
        for l in range(lo, hi + 1):
            a, b = starts[l], starts[l + 1]
            if a < b:
                yield l, prefix[a:b], leaf[a:b]

    long16 = prefix[starts[17]:]                     # routes longer than /16
    long24 = prefix[starts[25]:]                     # routes longer than /24
    slash16 = np.unique(long16 >> 16)                # the /16s that need a level-2 chunk
    slash24 = np.unique(long24 >> 8)                 # the /24s that need a level-3 chunk
    n16, n24 = len(slash16), len(slash24)
    used = n16 + n24
    if capacity_chunks is None:
        capacity_chunks = max(used, 1)
    elif capacity_chunks < used:
        raise ValueError(f"the routes need {used} tbl8 chunks ({n16} for /16s with longer "
                         f"prefixes, {n24} for /24s with longer prefixes) but "
                         f"capacity_chunks is {capacity_chunks}")

    tbl16 = np.zeros(TBL16_SIZE, dtype=np.uint32)
    tbl8 = np.zeros(capacity_chunks * CHUNK, dtype=np.uint32)
    chunks = tbl8.reshape(-1, CHUNK)

    # Level 1: /0-/16 routes cover whole tbl16 entries; longer overwrite shorter.
    for l, p, v in of_len(0, 16):
        _fill(tbl16, p >> 16, 1 << (16 - l), v)

    # Level 2: each /16 with a longer route gets a chunk that starts as a copy
    # of the /16's covering leaf, then takes the /17-/24 routes.
    chunk16 = np.arange(n16, dtype=np.int64)
    chunks[chunk16] = tbl16[slash16][:, None]
    tbl16[slash16] = POINTER | chunk16
    chunk_of16 = np.zeros(TBL16_SIZE, dtype=np.int64)
    chunk_of16[slash16] = chunk16
    for l, p, v in of_len(17, 24):
        _fill(tbl8, chunk_of16[p >> 16] * CHUNK + ((p >> 8) & 0xFF), 1 << (24 - l), v)

    # Level 3: likewise for each /24 with a /25-/32 route, below its level-2 entry.
    chunk24 = n16 + np.arange(n24, dtype=np.int64)
    slot24 = chunk_of16[slash24 >> 8] * CHUNK + (slash24 & 0xFF)
    chunks[chunk24] = tbl8[slot24][:, None]
    tbl8[slot24] = POINTER | chunk24
    for l, p, v in of_len(25, 32):
        base = chunk24[np.searchsorted(slash24, p >> 8)] * CHUNK + (p & 0xFF)
        _fill(tbl8, base, 1 << (32 - l), v)

    return LpmTable(tbl16=tbl16, tbl8=tbl8, n_routes=len(keys), chunks_used=used)


# -- looking up ------------------------------------------------------------------------


@kernel
def lpm_lookup(addr, tbl16, tbl8):
    """The value of the longest route containing `addr` (any integer type, low
    32 bits used), or -1; int32.  Reads only array elements: no allocation, no
    exception, every index in bounds for a table made by `build_lpm`."""
    # Early returns rather than nested ifs: with nested ifs Numba keeps an
    # NRT_incref/decref pair on tbl8 (a runtime symbol the unikernel lacks);
    # this shape compiles to three loads and two branches, nothing else.
    a = np.int64(addr) & 0xFFFF_FFFF
    e = np.int64(tbl16[a >> 16])
    if not (e & 0x8000_0000):
        return np.int32(e - 1)
    e = np.int64(tbl8[((e & 0x7FFF_FFFF) << 8) | ((a >> 8) & 0xFF)])
    if not (e & 0x8000_0000):
        return np.int32(e - 1)
    e = np.int64(tbl8[((e & 0x7FFF_FFFF) << 8) | (a & 0xFF)])
    return np.int32(e - 1)


def lookup_py(table: LpmTable, addr: int) -> int:
    """`lpm_lookup` in plain Python on the same arrays (control plane, tests, no JIT)."""
    addr &= _ADDR_MASK
    e = int(table.tbl16[addr >> 16])
    if e & POINTER:
        e = int(table.tbl8[((e & ~POINTER) << 8) | ((addr >> 8) & 0xFF)])
        if e & POINTER:
            e = int(table.tbl8[((e & ~POINTER) << 8) | (addr & 0xFF)])
    return e - 1
