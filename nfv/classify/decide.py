"""Compile classifier rule sets into decision tables for the Numba matchers in `match.py`.

Design (README.md beside this file has the why, the costs and the limits):

1. Every rule becomes a union of *boxes* (DNF: a conjunction of one value set per
   field; a field left out of a box is a wildcard).  Boxes are numbered in
   priority order, rule 0's first; the first box that accepts a packet answers
   with its rule's index and that rule's output port (the elements count packets
   per rule, so the answer names the rule, not just the port).
2. Per field ("dimension"), the boundaries of all boxes' sets cut the field's
   values into elementary intervals.  Intervals accepted by the same boxes form
   one *class*; a class's bit vector has bit b set when box b accepts it.
   Lookup: value -> interval (radix index + one 16-wide compare) -> class.
3. Pairs of dimensions with few classes are *folded* (RFC-style) through a
   cross-product table into one group whose class is the AND of theirs, while
   the tables stay small.  If everything folds into one group, each of its
   classes stores its answer and a lookup ends there.
4. Otherwise the bit vectors of the remaining groups' classes are ANDed chunk by
   chunk (Lakshman-Stiliadis), with summary words to skip zero chunks when the
   rows are long; the lowest set bit is the first matching box.

Public API
----------
compile_ipfilter(rules, capacity=None)       FilterRule list -> DecisionTable ('ip')
compile_ipclassifier(exprs, capacity=None)   Expr list       -> DecisionTable ('ip')
compile_classifier(patterns, capacity=None)  ClassifierPattern list -> DecisionTable ('raw')
evaluate(expr, packet, l3)                   the reference semantics of one expression
evaluate_pattern(pattern, packet, start=0)   the reference semantics of one Classifier pattern
reference_ipfilter / reference_ipclassifier / reference_classifier
                                             first-match oracles, same answers as the tables
TooComplex                                   what a rule set beyond the limits raises

Absent fields
-------------
A field is *absent* when its bytes are not all inside the packet, and a
transport field (`FieldSpec.protos` non-empty) is also absent unless the IP
header's first 10 bytes are present, IHL >= 5, the fragment offset is 0 and
ip.proto is one of the field's protocols.  A `FieldTest` on an absent field
is false whatever its operator, so `not TEST` is true.  In the tables a
field's value set lives on [0, max + 1], where max + 1 stands for "absent";
a test never contains it, its complement always does.  A Classifier clause is
a test on its bytes the same way (a negated clause holds on a short packet).

Table arrays (the matcher's arguments after the packet, in this order)
-----------------------------------------------------------------------
meta    int32   header (HDR_*), one DIM_STRIDE record per dimension (D_*), one
                FOLD_STRIDE record per fold (FOLD_*), one FINAL_STRIDE record
                per final group (FINAL_*), the answer of every box, and the
                per-class answers when one group is left (HDR_ANSWER_OFF); an
                answer is a pair (rule index, output port or -1 to drop), side
                by side so one cache line gives both
lookup  uint32  per dimension: its index (a direct value -> class table for
                fields of at most ROOT_BITS bits; else a radix index: a root
                table on the value's top bits and 16-entry child nodes on the
                next 4 bits where a bucket holds more than WINDOW starts, an
                entry being the index of the bucket's first start or CHILD |
                node offset), its interval starts (sorted, the first is 0, then
                WINDOW pad entries of 0xFFFFFFFF), the class of each interval;
                then the fold tables
bits    uint64  per final group: its classes' bit vectors (NWORDS words each,
                a multiple of the chunk width HDR_CHUNK), then their summary
                words (NSUMMARY each; only for rows longer than SHORT_WORDS)

Every size and offset the matcher uses is read from `meta`, so a smaller
table's arrays copied over the front of a larger table's arrays
(`DecisionTable.copy_from`) are matched correctly without recompiling.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Iterable, Sequence

import numpy as np

from nfv.classify.ipfilter import (
    FIELDS, And, Expr, FalseExpr, FieldSpec, FieldTest, FilterRule, Not, Or, TrueExpr, describe,
)
from nfv.classify.patterns import ClassifierPattern, describe as describe_pattern
from nfv.errors import NfvError

__all__ = [
    "DecisionTable", "TooComplex", "compile_ipfilter", "compile_ipclassifier",
    "compile_classifier", "evaluate", "evaluate_pattern", "reference_ipfilter",
    "reference_ipclassifier", "reference_classifier", "MAX_DIMS",
]

# -- limits ----------------------------------------------------------------------------------

#: Most dimensions (distinct fields, or distinct byte spans for Classifier) one table may
#: test; the matcher keeps one class per dimension in a fixed stack array.
MAX_DIMS = 32
#: Most conjunctions (boxes) one rule may expand to; beyond it TooComplex names the rule.
MAX_ALTERNATIVES = 1024
#: Most boxes a cross product may produce before simplification (keeps compile time bounded).
_MAX_PRODUCT = 16384
#: Most intervals a single masked test may cut its field into (any 16-bit field fits).
MAX_TEST_INTERVALS = 1 << 15
#: Most boxes of a whole table.
MAX_BOXES = 1 << 16
#: Largest table, in bytes, before TooComplex (memory grows as intervals x boxes).
MAX_TABLE_BYTES = 64 << 20
#: Radix index: the root table uses at most this many top bits of a value (4, 8 or 12
#: for a 16/24/32-bit field, about one root bucket per two interval starts); a child
#: node uses CHILD_BITS more bits.  Fields of at most ROOT_BITS bits have a direct table.
ROOT_BITS = 12
CHILD_BITS = 4
#: Most interval starts a leaf bucket holds; the matcher compares v with this many starts
#: at once (one fixed-size, vectorisable loop instead of a branchy binary search).
WINDOW = 16
#: Bit-vector rows are ANDed a chunk at a time, in a vector register.  Rows of at most
#: SHORT_WORDS 64-bit words are scanned chunk after chunk from the first, in chunks of
#: 1, 2, 4 or 8 words (the smallest that holds a row of up to 8 words); longer rows
#: in chunks of CHUNK_WORDS (one cache line) guided by summary words (bit c: chunk c
#: of the row is not all zero).
SHORT_WORDS = 16
CHUNK_WORDS = 8
#: Flag of an index entry that points to a child node.
CHILD = 1 << 31
#: A Classifier clause piece whose mask splits it into more intervals than this is
#: tested byte by byte instead (a byte never has more than 128).
_RAW_SPLIT = 16
#: Folding: two groups are combined through a cross-product table when it has at most
#: FOLD_LIMIT entries, all fold tables together at most MAX_FOLD_ENTRIES, and the
#: compile-time AND work (entries x words) at most _FOLD_WORK.
FOLD_LIMIT = 1 << 12
MAX_FOLD_ENTRIES = 1 << 17
_FOLD_WORK = 1 << 23
#: Capacity reservation per rule (see `_reserve`).
_BOXES_PER_RULE = 2
_STARTS_PER_RULE = 12

# -- array layout (shared with match.py) ------------------------------------------------------

MAGIC = 0x4E46_4443          # "NFDC"
KIND_IP, KIND_RAW = 1, 2
BASE_L3, BASE_L4 = 0, 1      # a dimension's bytes are relative to l3/start, or to the L4 header

HDR_MAGIC = 0
HDR_KIND = 1
HDR_NDIMS = 2                # dimensions; dimension d writes its class to slot d
HDR_NBOXES = 3
HDR_NWORDS = 4               # words of a bit-vector row
HDR_NSUMMARY = 5             # words of a summary row
HDR_DEFAULT = 6              # port when no box matches (-1, or the first all-wildcard rule's)
HDR_BOX_OFF = 7              # meta index of box 0's answer (rule, port)
HDR_NFOLDS = 8               # fold f writes its class to slot NDIMS + f
HDR_FOLD_OFF = 9             # meta index of the fold records
HDR_NFINAL = 10              # groups whose bit vectors are ANDed at the end
HDR_FINAL_OFF = 11           # meta index of the final-group records
HDR_CHUNK = 12               # words per chunk: 1, 2, 4 or 8
HDR_ANSWER_OFF = 13          # one final group: meta index of its per-class answers, else -1
HDR_DEFAULT_RULE = 14        # rule when no box matches (-1, or the first all-wildcard rule)
HDR_NRULES = 15              # rules of the rule set, dead ones too: 0 <= rule < NRULES
HDR_SIZE = 16

FOLD_A = 0                   # fold: class = lookup[TABLE + slot[A] * NB + slot[B]]
FOLD_B = 1
FOLD_NB = 2
FOLD_TABLE = 3
FOLD_STRIDE = 4

FINAL_SLOT = 0               # final group: its class is slot[SLOT]; class c's row is
FINAL_ROWS = 1               # bits[ROWS + c * NWORDS ...], its summary bits[SUMMARY + c *
FINAL_SUMMARY = 2            # NSUMMARY ...]
FINAL_CLASSES = 3
FINAL_STRIDE = 4

D_BASE = 0
D_OFFSET = 1
D_SIZE = 2                   # bytes read big-endian, 1..4
D_SHIFT = 3
D_BITS = 4
D_PROTO1 = 5                 # transport dims: the protocols the field exists for (-1 unused)
D_PROTO2 = 6
D_BSHIFT = 7                 # root bucket = value >> D_BSHIFT
D_INDEX = 8                  # lookup index of the root table (child offsets are from here)
D_STARTS = 9                 # lookup index of the interval starts
D_NSTARTS = 10
D_CLASS = 11                 # lookup index of the interval -> class table
D_ABSENT = 12                # class of "field absent"
D_FIELD = 13                 # FIELD_IDS code (ip) or -1 (raw); for debugging only
D_DIRECT = 14                # 1: the root table maps every value straight to its class
DIM_STRIDE = 16

#: Slots of the matcher's class array: one per dimension and one per fold.
MAX_SLOTS = 2 * MAX_DIMS

FIELD_IDS = {name: i for i, name in enumerate(FIELDS)}


class TooComplex(NfvError):
    """A rule set the decision structure cannot hold within its limits.

    `index` is the position of the offending rule/expression/pattern in the list
    (None when the table as a whole is too big); `message` and `hint` speak to the user.
    """

    def __init__(self, message: str, index: int | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.index = index
        self.hint = hint


class _Fragmented(Exception):
    """A masked test would cut its field into too many intervals (turned into TooComplex)."""


# -- interval sets ----------------------------------------------------------------------------
# A set of field values is a tuple of disjoint, non-adjacent, sorted (lo, hi) pairs, inclusive.

Intervals = tuple[tuple[int, int], ...]


def _norm(pairs: Iterable[tuple[int, int]]) -> Intervals:
    out: list[list[int]] = []
    for lo, hi in sorted(p for p in pairs if p[0] <= p[1]):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((lo, hi) for lo, hi in out)


def _union(a: Intervals, b: Intervals) -> Intervals:
    return _norm(a + b)


def _intersect(a: Intervals, b: Intervals) -> Intervals:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _complement(a: Intervals, top: int) -> Intervals:
    """[0, top] minus a."""
    out, nxt = [], 0
    for lo, hi in a:
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= top:
        out.append((nxt, top))
    return tuple(out)


def _is_prefix_mask(mask: int, bits: int) -> bool:
    """Ones then zeros (e.g. 0xFFF0): then v & mask never decreases as v grows."""
    inv = ~mask & ((1 << bits) - 1)
    return inv & (inv + 1) == 0


def _masked_equal(bits: int, value: int, mask: int) -> Intervals:
    """{v in [0, 2**bits) : v & mask == value}."""
    top = (1 << bits) - 1
    if value & ~mask:
        return ()
    if mask == 0:
        return ((0, top),)
    low = (mask & -mask).bit_length() - 1
    free = [i for i in range(low, bits) if not (mask >> i) & 1]
    if len(free) > MAX_TEST_INTERVALS.bit_length() - 1:
        raise _Fragmented(1 << len(free))
    block = (1 << low) - 1
    out = []
    for k in range(1 << len(free)):          # free bits in ascending order: starts ascend
        x = value
        for idx, pos in enumerate(free):
            if (k >> idx) & 1:
                x |= 1 << pos
        out.append((x, x + block))
    return _norm(out)


_COMPARE: dict[str, Callable[[int, int], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
}


@lru_cache(maxsize=8192)
def test_set(bits: int, op: str, value: int, mask: int) -> Intervals:
    """The present values v of a `bits`-wide field with `(v & mask) OP value`."""
    top = (1 << bits) - 1
    mask &= top
    if op not in _COMPARE:
        raise ValueError(f"unknown operator {op!r}")
    if op in ("==", "!="):
        eq = _masked_equal(bits, value, mask)
        return eq if op == "==" else _complement(eq, top)
    holds = _COMPARE[op]
    if _is_prefix_mask(mask, bits):
        # v & mask is non-decreasing in v, so the set is a down-set (<, <=) or an up-set.
        down = op in ("<", "<=")
        lo, hi = 0, top + 1                  # find the first v where the answer flips
        while lo < hi:
            mid = (lo + hi) // 2
            if holds(mid & mask, value) == down:
                lo = mid + 1
            else:
                hi = mid
        return _norm([(0, lo - 1)] if down else [(lo, top)])
    if bits > 16:
        raise _Fragmented(None)
    v = np.arange(top + 1, dtype=np.int64) & mask
    sel = {"<": v < value, ">": v > value, "<=": v <= value, ">=": v >= value}[op]
    edges = np.flatnonzero(np.diff(np.concatenate(([0], sel.astype(np.int8), [0]))))
    if len(edges) // 2 > MAX_TEST_INTERVALS:
        raise _Fragmented(len(edges) // 2)
    return tuple((int(a), int(b) - 1) for a, b in zip(edges[0::2], edges[1::2]))


# -- dimensions and boxes ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Dim:
    """How the matcher reads one dimension's value (cf. FieldSpec)."""

    key: object                  # field name (ip) or (offset, size) (raw)
    base: int                    # BASE_L3 or BASE_L4
    offset: int
    size: int
    shift: int
    bits: int
    protos: tuple[int, ...] = ()

    @property
    def absent(self) -> int:
        """The value code standing for "absent" in interval sets."""
        return 1 << self.bits


def _ip_dim(spec: FieldSpec) -> _Dim:
    return _Dim(spec.name, BASE_L4 if spec.header == "l4" else BASE_L3, spec.offset,
                spec.size, spec.shift, spec.bits, tuple(sorted(spec.protos)))


@dataclass(frozen=True)
class _Piece:
    """A Classifier leaf: bytes [offset, offset+size) of the packet, `& mask == value`."""

    offset: int
    size: int
    value: int
    mask: int


Box = dict  # dim key -> Intervals (over [0, absent]); a missing key is a wildcard


def _box_key(box: Box) -> tuple:
    return tuple(sorted(box.items()))


class _Blowup(Exception):
    pass


class _Dnf:
    """Turns one expression into a list of boxes, with simplification and a size cap."""

    def __init__(self, dims: dict[object, _Dim], leaf: Callable[[object], tuple[_Dim, Intervals]]):
        self.dims = dims
        self.leaf = leaf

    def run(self, expr, negate: bool = False) -> list[Box]:
        if isinstance(expr, TrueExpr):
            return [] if negate else [{}]
        if isinstance(expr, FalseExpr):
            return [{}] if negate else []
        if isinstance(expr, Not):
            return self.run(expr.term, not negate)
        if isinstance(expr, (And, Or)):
            parts = [self.run(t, negate) for t in expr.terms]
            if isinstance(expr, And) != negate:            # And, or Not(Or) by De Morgan
                return self.product(parts)
            return self.simplify([b for p in parts for b in p])
        dim, present = self.leaf(expr)
        self.dims.setdefault(dim.key, dim)
        full = ((0, dim.absent),)
        values = _complement(present, dim.absent) if negate else present
        if not values:
            return []
        return [{}] if values == full else [{dim.key: values}]

    def product(self, parts: list[list[Box]]) -> list[Box]:
        result: list[Box] = [{}]
        for part in sorted(parts, key=len):
            if len(result) * len(part) > _MAX_PRODUCT:
                raise _Blowup
            out = []
            for a in result:
                for b in part:
                    c = self.meet(a, b)
                    if c is not None:
                        out.append(c)
            result = self.simplify(out)
            if not result:
                return []
        return result

    def meet(self, a: Box, b: Box) -> Box | None:
        c = dict(a)
        for k, s in b.items():
            if k in c:
                s = _intersect(c[k], s)
                if not s:
                    return None
            c[k] = s
        return c

    def simplify(self, boxes: list[Box]) -> list[Box]:
        """Dedupe, merge boxes differing in one dimension, drop subsumed boxes; keep order."""
        boxes = list({_box_key(b): b for b in boxes}.values())
        changed = True
        while changed and len(boxes) > 1:
            changed = False
            for key in {k for b in boxes for k in b}:
                groups: dict[tuple, int] = {}
                merged: list[Box | None] = list(boxes)
                for i, b in enumerate(boxes):
                    if key not in b:
                        continue
                    rest = _box_key({k: v for k, v in b.items() if k != key})
                    j = groups.setdefault(rest, i)
                    if j != i and key not in merged[j]:
                        merged[i] = None             # merged[j] became `rest`: covers b
                        changed = True
                    elif j != i:
                        union = _union(merged[j][key], b[key])
                        m = dict(merged[j])
                        if union == ((0, self.dims[key].absent),):
                            del m[key]
                        else:
                            m[key] = union
                        merged[j], merged[i] = m, None
                        changed = True
                boxes = [b for b in merged if b is not None]
            if len(boxes) <= 128:
                # (boxes are distinct after the dedupe, so no two cover each other)
                kept = [b for i, b in enumerate(boxes)
                        if not any(j != i and _covers(o, b) for j, o in enumerate(boxes))]
                changed |= len(kept) != len(boxes)
                boxes = kept
        if len(boxes) > MAX_ALTERNATIVES:
            raise _Blowup
        return boxes


def _covers(big: Box, small: Box) -> bool:
    """Every point of `small` is in `big`."""
    for k, s in big.items():
        if k not in small or _intersect(small[k], s) != small[k]:
            return False
    return True


# -- leaves -----------------------------------------------------------------------------------


def _ip_leaf(test) -> tuple[_Dim, Intervals]:
    if not isinstance(test, FieldTest):
        raise TypeError(f"not an IPClassifier expression node: {test!r}")
    spec = FIELDS.get(test.field)
    if spec is None:
        raise ValueError(f"unknown field {test.field!r}")
    return _ip_dim(spec), test_set(spec.bits, test.op, test.value, test.mask)


def _raw_dim(offset: int, size: int) -> _Dim:
    return _Dim((offset, size), BASE_L3, offset, size, 0, 8 * size)


def _raw_leaf(piece: _Piece) -> tuple[_Dim, Intervals]:
    return _raw_dim(piece.offset, piece.size), test_set(8 * piece.size, "==", piece.value,
                                                       piece.mask)


def _pieces(offset: int, value: bytes, mask: bytes) -> list[_Piece]:
    """A clause as <= 4-byte pieces; pieces whose mask would fragment go byte by byte."""
    out = []
    for i in range(0, len(value), 4):
        v, m = value[i:i + 4], mask[i:i + 4]
        mi = int.from_bytes(m, "big")
        low = (mi & -mi).bit_length() - 1 if mi else 0
        holes = sum(1 for b in range(low, 8 * len(m)) if not (mi >> b) & 1) if mi else 0
        if len(v) > 1 and (1 << holes) > _RAW_SPLIT:
            out += [_Piece(offset + i + k, 1, v[k], m[k]) for k in range(len(v))]
        else:
            out.append(_Piece(offset + i, len(v), int.from_bytes(v, "big"), mi))
    return out


def _pattern_expr(pattern: ClassifierPattern):
    """A Classifier pattern as an expression over `_Piece` leaves."""
    if pattern.match_all or not pattern.clauses:
        return TrueExpr()
    terms = []
    for clause in pattern.clauses:
        pieces = _pieces(clause.offset, clause.value, clause.mask)
        term = pieces[0] if len(pieces) == 1 else And(tuple(pieces))
        terms.append(Not(term) if clause.negated else term)
    return terms[0] if len(terms) == 1 else And(tuple(terms))


# -- the table --------------------------------------------------------------------------------


@dataclass
class DecisionTable:
    """A compiled rule set: the matcher's table arrays plus what they hold.

    arrays  (meta int32, lookup uint32, bits uint64), contiguous; pass them after the
            packet arguments of `match.ip_match` / `match.raw_match`, in this order.
    kind    'ip' (IPFilter, IPClassifier) or 'raw' (Classifier).
    stats   counts for humans: rules, boxes, dims, intervals, rows, words.
    """

    kind: str
    arrays: tuple[np.ndarray, ...]
    stats: dict = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays)

    def fits(self, other: "DecisionTable") -> bool:
        """Can `other`'s arrays be copied over the front of this table's arrays?"""
        return other.kind == self.kind and len(other.arrays) == len(self.arrays) and all(
            o.dtype == s.dtype and o.size <= s.size for o, s in zip(other.arrays, self.arrays))

    def describe(self) -> str:
        """The table in words (for a `program` read handler, and for debugging)."""
        s = self.stats
        if not s:
            return "empty table"
        lines = [f"{s['rules']} rules -> {s['boxes']} alternatives; no match -> "
                 f"{s['default']}; {self.nbytes} bytes"]
        for name, n, c in zip(s["fields"], s["field_intervals"], s["field_classes"]):
            lines.append(f"field {name}: {n} intervals, {c} classes")
        if s["folds"]:
            lines.append(f"{s['folds']} folds ({s['fold_entries']} table entries)")
        if len(s["final"]) == 1:
            lines.append(f"{s['final'][0]}: {s['final_classes'][0]} classes, each with its "
                         "answer")
        for name, c in zip(s["final"] if len(s["final"]) > 1 else (), s["final_classes"]):
            lines.append(f"AND {name}: {c} classes x {s['words']} words")
        return "\n".join(lines)

    def copy_from(self, other: "DecisionTable") -> None:
        """Replace this table's contents by `other`'s, in place (a rule update).

        The arrays keep their identity and sizes; `other`'s arrays are copied over
        their front and the rest is zeroed.  The matcher keeps its arguments and
        reads the new sizes from the new header.  Only between two batches: a
        lookup during the copy may see a mix.
        """
        if not self.fits(other):
            raise ValueError(f"rule set needs {_sizes(other)} array entries, "
                             f"this table has room for {_sizes(self)}")
        for dst, src in zip(self.arrays, other.arrays):
            dst[:src.size] = src
            dst[src.size:] = 0
        self.stats = dict(other.stats, capacity=self.stats.get("capacity"))


def _sizes(t: DecisionTable) -> str:
    return "/".join(str(a.size) for a in t.arrays)


def _build(kind: str, exprs: Sequence, ports: Sequence[int], leaf, what: Callable[[int], str],
           capacity: int | None, dim_slots: int) -> DecisionTable:
    dims: dict[object, _Dim] = {}
    dnf = _Dnf(dims, leaf)
    boxes: list[Box] = []
    box_rules: list[int] = []
    default = -1
    for i, expr in enumerate(exprs):
        try:
            alts = dnf.run(expr)
        except _Blowup:
            raise TooComplex(
                f"{what(i)} is too complex: its and/or/not nesting expands to more than "
                f"{MAX_ALTERNATIVES} alternatives", i,
                "split it into several rules, or write it without negating a disjunction "
                "of conjunctions") from None
        except _Fragmented:
            raise TooComplex(
                f"{what(i)} has a mask with too many holes for a {kind} field",
                i, "use a prefix mask such as 255.255.0.0, or split the test") from None
        if any(not b for b in alts):
            default = i                      # matches everything: later rules are dead,
            break                            # and so are this rule's other alternatives
        boxes += alts
        box_rules += [i] * len(alts)
        if len(boxes) > MAX_BOXES:
            raise TooComplex(f"rule set too large at {what(i)}: more than {MAX_BOXES} "
                             "alternatives in all", i, "use fewer or simpler rules")
    used = {k for b in boxes for k in b}
    dim_list = [dims[k] for k in dims if k in used]
    if len(dim_list) > MAX_DIMS:
        raise TooComplex(f"rule set tests {len(dim_list)} different fields or byte spans; "
                         f"at most {MAX_DIMS} are supported", None,
                         "test fewer distinct offsets")
    return _encode(kind, dim_list, boxes, box_rules, default, list(ports), capacity, dim_slots)


def _sweep(dim: _Dim, boxes: list[Box]) -> tuple[list[int], list[int], int]:
    """Elementary intervals of one dimension: (starts, bit vector per interval, absent bits).

    Bit vectors are Python ints (bit b = box b accepts the interval)."""
    top = dim.absent - 1
    wild, absent = 0, 0
    events: dict[int, int] = {}              # coordinate -> bits toggled there
    for b, box in enumerate(boxes):
        bit = 1 << b
        s = box.get(dim.key)
        if s is None:
            wild |= bit
            continue
        for lo, hi in s:
            if hi == dim.absent:
                absent |= bit
                hi = top
            if lo <= top:
                events[lo] = events.get(lo, 0) ^ bit
                if hi + 1 <= top:
                    events[hi + 1] = events.get(hi + 1, 0) ^ bit
    starts, vectors = [], []
    state = wild
    if 0 not in events:
        starts.append(0)
        vectors.append(state)
    for x in sorted(events):
        state ^= events[x]
        if vectors and vectors[-1] == state:
            continue                         # nothing changes here: not a boundary
        starts.append(x)
        vectors.append(state)
    return starts, vectors, wild | absent


def _reserve(n_rules: int, dim_slots: int, kind: str) -> dict[str, int]:
    """Array sizes reserved for `n_rules` rules of the usual shape (1-2 boxes, a few
    interval boundaries per box) testing any of the kind's fields."""
    boxes = _BOXES_PER_RULE * n_rules
    words = max(1, -(-boxes // 64))
    words = _round_up(words, _chunk_words(words))
    summary = -(-words // 64)
    starts = _STARTS_PER_RULE * n_rules + 2 * dim_slots
    rows = starts + dim_slots                # classes of the final groups
    if kind == "ip":
        roots = sum(1 << _root_bits(s.bits) for s in FIELDS.values())
        pads = len(FIELDS) * WINDOW
    else:
        roots = min(dim_slots, 8 + n_rules) * (1 << ROOT_BITS)
        pads = min(dim_slots, 8 + n_rules) * WINDOW
    records = HDR_SIZE + dim_slots * (DIM_STRIDE + FOLD_STRIDE + FINAL_STRIDE)
    return {"meta": records + 2 * (boxes + rows),           # answers are (rule, port)
            "lookup": roots + 4 * starts + pads + min(MAX_FOLD_ENTRIES, 4 * FOLD_LIMIT),
            "bits": rows * (words + summary)}


def _round_up(n: int, k: int) -> int:
    return -(-n // k) * k


def _chunk_words(words: int) -> int:
    """Chunk width for rows of `words` words: 1, 2, 4 or 8."""
    return 1 << min(3, max(0, words - 1).bit_length())


def _root_bits(bits: int, n_starts: int | None = None) -> int:
    """Bits of the root table (the rest of the value splits into CHILD_BITS steps):
    about one root bucket per two starts, so small tables stay small in the cache.
    With n_starts None: the largest root the field may get (for reservations)."""
    if bits <= ROOT_BITS:
        return bits
    smallest = (bits - 1) % CHILD_BITS + 1
    root = smallest
    while root + CHILD_BITS <= ROOT_BITS and (n_starts is None or (1 << root) < n_starts // 2):
        root += CHILD_BITS
    return root


def _radix_index(starts: np.ndarray, bits: int) -> list[int]:
    """The radix index of one dimension (see the module docstring), as a flat list."""
    table: list[int] = []

    def node(lo: int, shift: int, nbits: int) -> int:
        at = len(table)
        table.extend([0] * (1 << nbits))
        edges = lo + (np.arange((1 << nbits) + 1, dtype=np.int64) << shift)
        first = np.searchsorted(starts, edges)
        for i in range(1 << nbits):
            if first[i + 1] - first[i] <= WINDOW:
                table[at + i] = int(first[i])
            else:                            # never at shift 0: a bucket of one value
                child = node(lo + (i << shift), shift - CHILD_BITS, CHILD_BITS)
                table[at + i] = CHILD | child
        return at

    root = _root_bits(bits, len(starts))
    node(0, bits - root, root)
    return table


def _matrix(vectors: list[int], words: int) -> np.ndarray:
    """Python-int bit vectors as a (len, words) uint64 matrix, bit b in word b // 64."""
    out = np.zeros((len(vectors), words), dtype=np.uint64)
    for i, v in enumerate(vectors):
        out[i] = np.frombuffer(v.to_bytes(8 * words, "little"), dtype="<u8")
    return out


def _density(rows: np.ndarray) -> float:
    return float(np.unpackbits(rows.view(np.uint8)).mean()) if rows.size else 0.0


@dataclass
class _Group:
    """Dimensions whose classes are combined: `slot` holds the class, `rows` maps a
    class to its bit vector (one row per class)."""

    slot: int
    rows: np.ndarray
    names: str


def _fold_plan(groups: list[_Group], n_dims: int, words: int):
    """Fold the cheapest pair of groups (smallest cross product) while the tables stay
    within the FOLD_* limits.  Returns the folds (slot a, slot b, classes of b, class
    table) and the groups left."""
    folds = []
    used = 0
    while len(groups) > 1:
        size, i, j = min((len(a.rows) * len(b.rows), i, j) for i, a in enumerate(groups)
                         for j, b in enumerate(groups) if i < j)
        if size > FOLD_LIMIT or size * words > _FOLD_WORK or used + size > MAX_FOLD_ENTRIES:
            break
        a, b = groups[i], groups[j]
        product = (a.rows[:, None, :] & b.rows[None, :, :]).reshape(size, words)
        classes, table = np.unique(product, axis=0, return_inverse=True)
        folds.append((a.slot, b.slot, len(b.rows), table.reshape(-1)))
        used += size
        groups = [g for k, g in enumerate(groups) if k not in (i, j)]
        groups.append(_Group(n_dims + len(folds) - 1, classes, f"({a.names} x {b.names})"))
    return folds, groups


def _first_rule(row: np.ndarray, box_rules: list[int], default: int) -> int:
    """Rule of the lowest box set in a bit-vector row, or the default rule."""
    nonzero = np.flatnonzero(row)
    if not len(nonzero):
        return default
    word = int(row[nonzero[0]])
    return box_rules[int(nonzero[0]) * 64 + (word & -word).bit_length() - 1]


def _encode(kind, dims: list[_Dim], boxes: list[Box], box_rules: list[int], default: int,
            rule_ports: list[int], capacity: int | None, dim_slots: int) -> DecisionTable:
    """The table arrays: box b answers rule box_rules[b], rule r sends to rule_ports[r],
    and `default` is the rule when no box matches (-1: none, and the packet drops)."""
    n_boxes = len(boxes)
    n_rules = len(rule_ports)

    def answer(rule: int) -> list[int]:
        return [rule, rule_ports[rule] if rule >= 0 else -1]

    words = -(-n_boxes // 64)
    chunk = _chunk_words(words)
    words = _round_up(words, chunk)
    summary = -(-(words // CHUNK_WORDS) // 64) if words > SHORT_WORDS else 0

    # Each dimension's intervals, and the class (distinct bit vector) of each interval.
    per_dim, vectors_of = [], []
    for dim in dims:
        starts, vectors, absent = _sweep(dim, boxes)
        ids: dict[int, int] = {}
        classes = [ids.setdefault(v, len(ids)) for v in vectors]
        absent_class = ids.setdefault(absent, len(ids))
        per_dim.append((dim, starts, classes, absent_class))
        vectors_of.append(list(ids))
    # Memory grows as classes x boxes: refuse before building the bit-vector matrices.
    need_bytes = sum(len(v) for v in vectors_of) * (words + summary) * 8 \
        + 3 * 4 * sum(len(p[1]) for p in per_dim)
    if need_bytes > MAX_TABLE_BYTES:
        raise TooComplex(f"rule set needs a {need_bytes >> 20} MiB table ({n_boxes} "
                         f"alternatives x {sum(len(v) for v in vectors_of)} distinct "
                         f"classes); the limit is {MAX_TABLE_BYTES >> 20} MiB", None,
                         "use fewer rules, or rules that share more addresses and ports")
    groups = [_Group(slot, _matrix(v, words), str(dim.key))
              for slot, (dim, v) in enumerate(zip(dims, vectors_of))]
    folds, finals = _fold_plan(groups, len(dims), words)
    # Most selective group first: the AND loops stop as soon as a chunk is zero.
    finals.sort(key=lambda g: _density(g.rows))

    n_rows = sum(len(g.rows) for g in finals)
    n_starts = sum(len(p[1]) for p in per_dim)
    fold_entries = sum(len(f[3]) for f in folds)

    meta = [0] * HDR_SIZE
    lookup: list[np.ndarray] = []
    lookup_len = 0

    def put(part) -> int:
        """Append to `lookup`; its index there."""
        nonlocal lookup_len
        at = lookup_len
        lookup.append(np.asarray(part, dtype=np.int64).astype(np.uint32))
        lookup_len += len(lookup[-1])
        return at

    for dim, starts, classes, absent_class in per_dim:
        st = np.asarray(starts, dtype=np.int64)
        direct = dim.bits <= ROOT_BITS
        if direct:                           # value -> class, one load
            index = np.asarray(classes, np.int64)[np.searchsorted(
                st, np.arange(1 << dim.bits, dtype=np.int64), side="right") - 1]
        else:
            index = np.asarray(_radix_index(st, dim.bits), dtype=np.int64)
        if len(dim.protos) > 2:
            raise ValueError(f"field {dim.key} exists for more than two protocols")
        rec = [0] * DIM_STRIDE
        protos = list(dim.protos) + [-1, -1]
        rec[D_BASE], rec[D_OFFSET], rec[D_SIZE] = dim.base, dim.offset, dim.size
        rec[D_SHIFT], rec[D_BITS] = dim.shift, dim.bits
        rec[D_PROTO1], rec[D_PROTO2] = protos[0], protos[1]
        rec[D_BSHIFT] = dim.bits - _root_bits(dim.bits, len(starts))
        rec[D_INDEX] = put(index)
        rec[D_STARTS] = put(np.concatenate([st, np.full(WINDOW, 0xFFFFFFFF, np.int64)]))
        rec[D_NSTARTS] = len(starts)
        rec[D_CLASS] = put(classes)
        rec[D_ABSENT] = absent_class
        rec[D_FIELD] = FIELD_IDS.get(dim.key, -1) if kind == "ip" else -1
        rec[D_DIRECT] = int(direct)
        meta += rec
    fold_off = len(meta)
    for a, b, nb, table in folds:
        meta += [a, b, nb, put(table)]
    final_off = len(meta)
    bits_parts, bits_len = [], 0
    for g in finals:
        n = len(g.rows)
        summ = np.zeros((n, summary), dtype=np.uint64)
        if summary:                          # long rows only
            chunks = words // CHUNK_WORDS
            nz = (g.rows.reshape(n, chunks, CHUNK_WORDS) != 0).any(axis=2).astype(np.uint8)
            nz = np.pad(nz, ((0, 0), (0, summary * 64 - chunks)))
            summ = np.packbits(nz, axis=1, bitorder="little").view("<u8").astype(np.uint64)
        meta += [g.slot, bits_len, bits_len + g.rows.size, n]
        bits_parts += [g.rows.ravel(), summ.ravel()]
        bits_len += g.rows.size + summ.size
    box_off = len(meta)
    for rule in box_rules:
        meta += answer(rule)
    answer_off = -1
    if len(finals) == 1:                     # one group left: its class decides alone
        answer_off = len(meta)
        for row in finals[0].rows:
            meta += answer(_first_rule(row, box_rules, default))
    meta[HDR_MAGIC] = MAGIC
    meta[HDR_KIND] = KIND_IP if kind == "ip" else KIND_RAW
    meta[HDR_NDIMS] = len(per_dim)
    meta[HDR_NBOXES] = n_boxes
    meta[HDR_NWORDS] = words
    meta[HDR_NSUMMARY] = summary
    meta[HDR_DEFAULT], meta[HDR_DEFAULT_RULE] = answer(default)[1], default
    meta[HDR_BOX_OFF] = box_off
    meta[HDR_NFOLDS] = len(folds)
    meta[HDR_FOLD_OFF] = fold_off
    meta[HDR_NFINAL] = len(finals)
    meta[HDR_FINAL_OFF] = final_off
    meta[HDR_CHUNK] = chunk
    meta[HDR_ANSWER_OFF] = answer_off
    meta[HDR_NRULES] = n_rules
    arrays = [np.asarray(meta, dtype=np.int32),
              np.concatenate(lookup) if lookup else np.zeros(0, np.uint32),
              np.concatenate(bits_parts).astype(np.uint64) if bits_parts
              else np.zeros(0, np.uint64)]
    stats = {"kind": kind, "rules": n_rules, "boxes": n_boxes, "dims": len(per_dim),
             "fields": [str(p[0].key) for p in per_dim], "intervals": n_starts,
             "field_intervals": [len(p[1]) for p in per_dim],
             "field_classes": [len(v) for v in vectors_of],
             "folds": len(folds), "fold_entries": fold_entries,
             "final": [g.names for g in finals], "final_classes": [len(g.rows) for g in finals],
             "rows": n_rows, "words": words, "chunk": chunk, "default": answer(default)[1],
             "capacity": capacity}
    if capacity is not None:
        want = _reserve(capacity, dim_slots, kind)
        arrays = [np.concatenate([a, np.zeros(max(0, want[name] - a.size), a.dtype)])
                  for a, name in zip(arrays, ("meta", "lookup", "bits"))]
    arrays = tuple(np.ascontiguousarray(a) for a in arrays)
    return DecisionTable(kind, arrays, stats)


# -- public compilers -------------------------------------------------------------------------


def compile_ipfilter(rules: list[FilterRule], capacity: int | None = None) -> DecisionTable:
    """IPFilter: first matching rule gives its `port` (-1 drop); no match drops (-1).

    capacity: reserve room for a later rule set of up to this many rules (see `fits`)."""
    return _build("ip", [r.expr for r in rules], [r.port for r in rules], _ip_leaf,
                  lambda i: f"rule {i} ({_short(rules[i].action + ' ' + describe(rules[i].expr))})",
                  capacity, len(FIELDS))


def compile_ipclassifier(exprs: list[Expr], capacity: int | None = None) -> DecisionTable:
    """IPClassifier: expression i -> output i, first match wins; no match drops (-1)."""
    return _build("ip", list(exprs), list(range(len(exprs))), _ip_leaf,
                  lambda i: f"pattern {i} ({_short(describe(exprs[i]))})", capacity, len(FIELDS))


def compile_classifier(patterns: list[ClassifierPattern],
                       capacity: int | None = None) -> DecisionTable:
    """Classifier: pattern i -> output i, first match wins; no match drops (-1)."""
    exprs = [_pattern_expr(p) for p in patterns]
    return _build("raw", exprs, list(range(len(patterns))), _raw_leaf,
                  lambda i: f"pattern {i} ({_short(describe_pattern(patterns[i]))})",
                  capacity, MAX_DIMS)


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


# -- reference semantics (the oracle) ---------------------------------------------------------


def field_value(spec: FieldSpec, packet: bytes, l3: int) -> int | None:
    """The value of a field in `packet` whose IP header starts at `l3`, or None if absent."""
    end = len(packet)
    if spec.header == "l4":
        if l3 < 0 or l3 + 10 > end:
            return None
        ihl = packet[l3] & 0x0F
        frag_offset = int.from_bytes(packet[l3 + 6:l3 + 8], "big") & 0x1FFF
        if ihl < 5 or frag_offset != 0 or packet[l3 + 9] not in spec.protos:
            return None
        pos = l3 + 4 * ihl + spec.offset
    else:
        pos = l3 + spec.offset
    if pos < 0 or pos + spec.size > end:
        return None
    return (int.from_bytes(packet[pos:pos + spec.size], "big") >> spec.shift) & spec.max


def evaluate(expr: Expr, packet: bytes, l3: int) -> bool:
    """Does IPClassifier expression `expr` match `packet` (IP header at byte `l3`)?"""
    if isinstance(expr, TrueExpr):
        return True
    if isinstance(expr, FalseExpr):
        return False
    if isinstance(expr, Not):
        return not evaluate(expr.term, packet, l3)
    if isinstance(expr, And):
        return all(evaluate(t, packet, l3) for t in expr.terms)
    if isinstance(expr, Or):
        return any(evaluate(t, packet, l3) for t in expr.terms)
    value = field_value(FIELDS[expr.field], packet, l3)
    return value is not None and _COMPARE[expr.op](value & expr.mask, expr.value)


def evaluate_pattern(pattern: ClassifierPattern, packet: bytes, start: int = 0) -> bool:
    """Does Classifier pattern `pattern` match `packet[start:]`?"""
    if pattern.match_all:
        return True
    for c in pattern.clauses:
        pos = start + c.offset
        present = pos + len(c.value) <= len(packet)
        ok = present and all(packet[pos + i] & c.mask[i] == c.value[i]
                             for i in range(len(c.value)))
        if ok == c.negated:
            return False
    return True


def reference_ipfilter(rules: list[FilterRule], packet: bytes, l3: int) -> int:
    return next((r.port for r in rules if evaluate(r.expr, packet, l3)), -1)


def reference_ipclassifier(exprs: list[Expr], packet: bytes, l3: int) -> int:
    return next((i for i, e in enumerate(exprs) if evaluate(e, packet, l3)), -1)


def reference_classifier(patterns: list[ClassifierPattern], packet: bytes, start: int = 0) -> int:
    return next((i for i, p in enumerate(patterns) if evaluate_pattern(p, packet, start)), -1)

