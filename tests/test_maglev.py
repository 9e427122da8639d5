"""The Maglev lookup table (nfv/tables/maglev.py) against the paper.

The population is checked against a reference written here from Pseudocode 1 of
Eisenbud et al. (NSDI 2016), fed the permutations the module exposes; the
permutations themselves against the paper's definition (offset + j * skip mod M,
covering every position); the hashes against their documented definition
(keyed BLAKE2b, so the same table in every process).  Balance and disruption are
checked as properties with the bounds MAGLEV.md states.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from nfv.tables import maglev


def names(n: int, base: int = 0) -> list[str]:
    return [f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}:80" for i in range(base, base + n)]


def reference_table(backends: list[str], m: int) -> list[int]:
    """Pseudocode 1 of the paper, literally: permutation[i][next[i]] until a free entry."""
    perm = [list(maglev.permutation(b, m)) for b in backends]
    nxt = [0] * len(backends)
    entry = [-1] * m
    n = 0
    while True:
        for i in range(len(backends)):
            c = perm[i][nxt[i]]
            while entry[c] >= 0:
                nxt[i] += 1
                c = perm[i][nxt[i]]
            entry[c] = i
            nxt[i] += 1
            n += 1
            if n == m:
                return entry


@pytest.mark.parametrize("n, m", [(1, 13), (3, 31), (5, 251), (25, 251), (7, 1009), (40, 65537)])
def test_table_is_the_papers_population(n, m):
    backends = names(n, base=n * 1000)
    assert maglev.build_table(backends, m).tolist() == reference_table(backends, m)


def test_permutation_is_offset_plus_skip_and_covers_the_table():
    m = 251
    for b in names(20):
        offset, skip = maglev.offset_skip(b, m)
        h1 = int.from_bytes(hashlib.blake2b(b.encode(), digest_size=8,
                                            person=b"maglev-offset").digest(), "little")
        h2 = int.from_bytes(hashlib.blake2b(b.encode(), digest_size=8,
                                            person=b"maglev-skip").digest(), "little")
        assert (offset, skip) == (h1 % m, h2 % (m - 1) + 1)
        perm = maglev.permutation(b, m)
        assert perm.tolist() == [(offset + j * skip) % m for j in range(m)]
        assert sorted(perm.tolist()) == list(range(m))


def test_same_table_in_another_process_with_another_hash_seed():
    code = ("from nfv.tables import maglev; "
            "print(maglev.build_table(['10.0.1.1:80', '10.0.1.2:80', '10.0.1.3:8080'], 251)"
            ".tolist())")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True).stdout
    here = maglev.build_table(["10.0.1.1:80", "10.0.1.2:80", "10.0.1.3:8080"], 251).tolist()
    assert out.strip() == str(here)


@pytest.mark.parametrize("n, m", [(2, 251), (5, 251), (25, 251), (10, 65537), (255, 65537),
                                  (6553, 65537)])
def test_every_backend_holds_floor_or_ceil_of_m_over_n(n, m):
    shares = maglev.shares(maglev.build_table(names(n), m), n)
    assert shares.sum() == m
    assert set(shares.tolist()) <= {m // n, -(-m // n)}


@pytest.mark.parametrize("n, m, extra", [(5, 251, 0.08), (10, 65537, 0.01), (100, 65537, 0.01)])
def test_removing_a_backend_moves_little_besides_its_own_entries(n, m, extra):
    before = np.array(names(n))[maglev.build_table(names(n), m)]
    for gone in (0, n // 2, n - 1):
        left = names(n)[:gone] + names(n)[gone + 1:]
        after = np.array(left)[maglev.build_table(left, m)]
        own = before == names(n)[gone]
        assert (after[own] != names(n)[gone]).all()
        moved = (before != after) & ~own
        assert moved.sum() / m <= extra, f"{moved.sum() / m:.3%} of the table moved"


@pytest.mark.parametrize("n, m, extra", [(4, 251, 0.08), (10, 65537, 0.01)])
def test_adding_a_backend_takes_its_share_and_moves_little_else(n, m, extra):
    before = np.array(names(n))[maglev.build_table(names(n), m)]
    grown = names(n) + names(1, base=9999)
    after = np.array(grown)[maglev.build_table(grown, m)]
    new = after == grown[-1]
    assert new.sum() in (m // (n + 1), -(-m // (n + 1)))
    assert ((before != after) & ~new).sum() / m <= extra


def test_no_backends_give_a_table_of_zeros():
    assert maglev.build_table([], 13).tolist() == [0] * 13


@pytest.mark.parametrize("n, m, fragment", [
    (2, 100, "not prime"),
    (2, 1, "not prime"),
    (26, 251, "at least 260 entries"),
])
def test_tables_that_cannot_be_built(n, m, fragment):
    with pytest.raises(maglev.MaglevError) as e:
        maglev.build_table(names(n), m)
    assert fragment in e.value.message


def test_a_backend_listed_twice_is_refused():
    with pytest.raises(maglev.MaglevError, match="listed twice"):
        maglev.build_table(["10.0.0.1:80", "10.0.0.2:80", "10.0.0.1:80"], 251)


def test_primes_and_hints():
    assert [p for p in range(40) if maglev.is_prime(p)] == [2, 3, 5, 7, 11, 13, 17, 19, 23,
                                                             29, 31, 37]
    assert maglev.is_prime(65537) and not maglev.is_prime(65536)
    assert maglev.nearest_prime(65536) == 65537
    with pytest.raises(maglev.MaglevError) as e:
        maglev.build_table(names(2), 65536)
    assert "65537" in e.value.hint
