"""Maglev consistent hashing: the lookup table behind IPLoadBalancer.

Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load Balancer",
NSDI 2016, section 3.4.  Design note and measured figures: MAGLEV.md.

The control plane builds a table of M entries (M prime), each naming a backend;
the dataplane picks a new connection's backend as `table[hash(5-tuple) % M]`::

    table = build_table(["10.0.1.1:80", "10.0.1.2:80", "10.0.1.3:80"], 251)
    table[flow_hash % 251]        # -> 0, 1 or 2 (an index into the list)

Each backend has its own permutation of the table's positions, fixed by two
hashes of its name (`offset_skip`): position j of backend i's list is
`(offset_i + j * skip_i) % M`; since M is prime and 1 <= skip < M, that visits
every position once.  Backends take turns, in list order, each claiming the next
position of its list that is still free, until the table is full.  Therefore:

  balance     every backend holds floor(M/N) or ceil(M/N) entries (one turn each,
              one entry a turn), so with M >= MIN_RATIO * N shares differ by at
              most 1/MIN_RATIO;
  disruption  when a backend leaves or joins, the others' lists are unchanged,
              and most entries keep their backend: only ~1/N of the table moves
              (plus a small extra, measured in MAGLEV.md).

The hashes are keyed BLAKE2b (hashlib), not Python's `hash()`: the same
backends give the same table in every process, on every run, and in the
tests' own reference.  Building runs on the host, between batches (the write
handler), never in a kernel; it costs O(M log M) steps in Python (0.02-0.12 s
for M = 65537 and 3 to 6553 backends).
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

__all__ = ["MAX_BACKENDS", "MIN_RATIO", "MaglevError", "build_table", "is_prime",
           "offset_skip", "permutation", "shares"]

#: The table must hold at least this many entries per backend (balance within 1/MIN_RATIO).
MIN_RATIO = 10
#: Entries are stored as uint16 at most (uint8 for up to 255 backends).
MAX_BACKENDS = 0xFFFF


class MaglevError(ValueError):
    """A table that cannot be built (size not prime, too many backends, duplicates)."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


def is_prime(n: int) -> bool:
    """Trial division: table sizes are at most a few million, so this is instant."""
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    f = 3
    while f * f <= n:
        if n % f == 0:
            return False
        f += 2
    return True


def _hash64(name: str, person: bytes) -> int:
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8, person=person).digest()
    return int.from_bytes(digest, "little")


def offset_skip(name: str, m: int) -> tuple[int, int]:
    """Backend `name`'s permutation: (offset in [0, M), skip in [1, M)), the paper's
    offset = h1(name) mod M and skip = h2(name) mod (M - 1) + 1."""
    return (_hash64(name, b"maglev-offset") % m,
            _hash64(name, b"maglev-skip") % (m - 1) + 1)


def permutation(name: str, m: int) -> np.ndarray:
    """Backend `name`'s preference list: every table position once, in its order."""
    offset, skip = offset_skip(name, m)
    return (offset + np.arange(m, dtype=np.int64) * skip) % m


def check(count: int, m: int) -> None:
    """Raise MaglevError unless `count` backends may fill a table of size `m`."""
    if not is_prime(m):
        raise MaglevError(f"table size {m} is not prime",
                          f"Maglev needs a prime size, e.g. {nearest_prime(m)}")
    if count > MAX_BACKENDS:
        raise MaglevError(f"{count} backends: at most {MAX_BACKENDS}")
    if count * MIN_RATIO > m:
        raise MaglevError(f"{count} backends need a table of at least {MIN_RATIO * count} "
                          f"entries ({MIN_RATIO} a backend), and it has {m}",
                          f"a larger prime TABLE_SIZE, e.g. {nearest_prime(MIN_RATIO * count)}")


def nearest_prime(n: int) -> int:
    """The smallest prime >= n (for hints)."""
    n = max(n, 2)
    while not is_prime(n):
        n += 1
    return n


def build_table(names: Sequence[str], m: int) -> np.ndarray:
    """The lookup table (int64[m] of indices into `names`) for backends `names`.

    Names must be distinct (two equal names would share one permutation).  With no
    backends the table is all zeros: the dataplane checks the count before using it.
    """
    check(len(names), m)
    if len(set(names)) != len(names):
        dup = next(n for n in names if list(names).count(n) > 1)
        raise MaglevError(f"backend {dup} is listed twice", "list each backend once")
    n = len(names)
    if n == 0:
        return np.zeros(m, np.int64)
    offsets, skips = zip(*(offset_skip(name, m) for name in names))
    entry = [-1] * m
    nxt = [0] * n
    filled = 0
    # Pseudocode 1 of the paper.  Plain Python ints and lists: each step is one
    # multiply-add and one list read, and the run ends after O(M log M) steps.
    while True:
        for i in range(n):
            off, skip, j = offsets[i], skips[i], nxt[i]
            c = (off + j * skip) % m
            while entry[c] >= 0:
                j += 1
                c = (off + j * skip) % m
            entry[c] = i
            nxt[i] = j + 1
            filled += 1
            if filled == m:
                return np.array(entry, np.int64)


def shares(table: np.ndarray, n: int) -> np.ndarray:
    """Entries each of n backends holds in `table`."""
    return np.bincount(np.asarray(table, np.int64), minlength=n)[:n]
