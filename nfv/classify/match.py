"""Numba matchers for the decision tables of `decide.py` (the packet-path half of the classifier).

    ip_match(data, l3, end, meta, lookup, bits) -> int32     IPFilter / IPClassifier
    raw_match(data, start, end, meta, lookup, bits) -> int32 Classifier

data    the uint8 packet pool (1-D); the packet's bytes are data[l3 or start : end].
l3      index of the IPv4 header's first byte; start: the first byte Classifier
        offsets count from; end: one past the packet's last byte.
meta, lookup, bits
        `DecisionTable.arrays`, in that order (int32, uint32, uint64).
Returns the output port of the first matching rule, or -1 (drop).

Nothing outside [l3, end) / [start, end) is read: a field whose bytes are not all
inside is absent, and a test on an absent field is false.  Sizes and offsets come
from `meta`, never from array shapes, so a table may be replaced in place.

Dataplane rules (DESIGN.md): plain loops over integer arrays, no allocation (the
per-dimension row ids live in a fixed stack array), no exceptions, no Python
objects.  `build(**jit_options)` compiles a fresh set with other options, e.g.
`build(boundscheck=True)` for the tests that prove no read leaves the packet.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.core import cgutils
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic

from nfv.classify import decide as _d

__all__ = ["ip_match", "raw_match", "build", "ARRAY_ORDER"]

#: Names of the table arrays, in argument order.
ARRAY_ORDER = ("meta", "lookup", "bits")

# Layout constants, frozen into the compiled code as literals.
_MAX_DIMS = _d.MAX_DIMS
_MAGIC = _d.MAGIC
_BASE_L4 = _d.BASE_L4
_HDR_MAGIC, _HDR_NDIMS, _HDR_NBOXES = _d.HDR_MAGIC, _d.HDR_NDIMS, _d.HDR_NBOXES
_HDR_NWORDS, _HDR_NSUMMARY, _HDR_DEFAULT = _d.HDR_NWORDS, _d.HDR_NSUMMARY, _d.HDR_DEFAULT
_HDR_PORT_OFF, _HDR_SUMMARY_OFF, _HDR_SIZE = _d.HDR_PORT_OFF, _d.HDR_SUMMARY_OFF, _d.HDR_SIZE
_D_BASE, _D_OFFSET, _D_SIZE, _D_SHIFT, _D_BITS = _d.D_BASE, _d.D_OFFSET, _d.D_SIZE, \
    _d.D_SHIFT, _d.D_BITS
_D_PROTO1, _D_PROTO2, _D_BSHIFT, _D_INDEX = _d.D_PROTO1, _d.D_PROTO2, _d.D_BSHIFT, _d.D_INDEX
_D_STARTS, _D_ROWOF, _D_ABSENT, _DIM_STRIDE = _d.D_STARTS, _d.D_ROWOF, _d.D_ABSENT, \
    _d.DIM_STRIDE
_D_STEPS = _d.D_STEPS
_ALL = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
_U = np.uint64   # unsigned indices: numba adds no negative-index fix-up to them
_ONE = np.uint64(1)


@intrinsic
def _stack_int64(typingctx, count):
    """A pointer to `count` int64 slots on the stack (an alloca in the function's entry
    block: no heap, no runtime call, the same in the unikernel)."""
    if not isinstance(count, types.IntegerLiteral):
        return None

    def codegen(context, builder, signature, args):
        slot = context.get_value_type(types.int64)
        return cgutils.alloca_once(builder, slot, size=count.literal_value)

    return types.CPointer(types.int64)(count), codegen


def build(**jit_options):
    """Compile (lazily) a fresh (ip_match, raw_match) pair with numba.njit(**jit_options)."""
    jit = numba.njit(**jit_options)

    @jit
    def decide(data, base, l4, proto, end, meta, lookup, bits):
        """The port of the first box accepted by every dimension, else the default.

        base: index of the bytes of BASE_L3 dimensions; l4: of the transport header
        (-1: transport fields absent); proto: the IP protocol (-1 unknown)."""
        default = np.int32(meta[_U(_HDR_DEFAULT)])
        n_dims = np.int64(meta[_U(_HDR_NDIMS)])
        if meta[_U(_HDR_MAGIC)] != _MAGIC or n_dims <= 0 or meta[_U(_HDR_NBOXES)] <= 0:
            return default
        if n_dims > _MAX_DIMS:
            n_dims = _MAX_DIMS               # never happens with compiled tables
        rows = _stack_int64(_MAX_DIMS)      # rows[d]: pointer indexing, d < n_dims
        for d in range(n_dims):
            o = _HDR_SIZE + d * _DIM_STRIDE
            # Where the value is, and whether it is there at all.
            if meta[_U(o + _D_BASE)] == _BASE_L4:
                pos = l4 + meta[_U(o + _D_OFFSET)]
                present = l4 >= 0 and (proto == meta[_U(o + _D_PROTO1)] or
                                       proto == meta[_U(o + _D_PROTO2)])
            else:
                pos = base + meta[_U(o + _D_OFFSET)]
                present = True
            size = np.int64(meta[_U(o + _D_SIZE)])
            if not present or pos + size > end:
                rows[d] = np.int64(meta[_U(o + _D_ABSENT)])
                continue
            v = np.int64(data[_U(pos)])           # size is 1..4; these branches go the
            if size > 1:                          # same way for every packet
                v = (v << 8) | np.int64(data[_U(pos + 1)])
            if size > 2:
                v = (v << 8) | np.int64(data[_U(pos + 2)])
            if size > 3:
                v = (v << 8) | np.int64(data[_U(pos + 3)])
            v = (v >> meta[_U(o + _D_SHIFT)]) & ((np.int64(1) << meta[_U(o + _D_BITS)]) - 1)
            # Level 1: the bucket's slice [k, hi) of the sorted interval starts.
            ix = np.int64(meta[_U(o + _D_INDEX)]) + (v >> meta[_U(o + _D_BSHIFT)])
            k = np.int64(lookup[_U(ix)])
            hi = np.int64(lookup[_U(ix + 1)])
            # Level 2: count the starts <= v in the slice, in a fixed number of
            # halving steps written as integer arithmetic (no data-dependent jump
            # to mispredict), so the searches of all dimensions overlap in the
            # pipeline.  Invariant: every start before k is <= v; a step moves k
            # up to j = k + step when j <= hi and the start before j is <= v.
            st = np.int64(meta[_U(o + _D_STARTS)]) - 1
            step = (np.int64(1) << meta[_U(o + _D_STEPS)]) >> 1
            while step > 0:
                room = hi - k - step                       # >= 0 iff j <= hi
                j = k + step + (room & (room >> 63))       # min(k + step, hi)
                take = np.int64(lookup[_U(st + j)] <= v) & ~(room >> 63)
                k += step & -take
                step >>= 1
            rows[d] = np.int64(lookup[_U(meta[_U(o + _D_ROWOF)] + k - 1)])
        n_words = np.int64(meta[_U(_HDR_NWORDS)])
        n_summary = np.int64(meta[_U(_HDR_NSUMMARY)])
        summary_off = np.int64(meta[_U(_HDR_SUMMARY_OFF)])
        port_off = np.int64(meta[_U(_HDR_PORT_OFF)])
        for s in range(n_summary):
            # Summary bit j: word s*64+j of the row is non-zero.  AND them to skip words.
            acc = _ALL
            for d in range(n_dims):
                acc &= bits[_U(summary_off + rows[d] * n_summary + s)]
            while acc != 0:
                j = s * 64 + np.int64(trailing_zeros(acc))
                word = _ALL
                for d in range(n_dims):
                    word &= bits[_U(rows[d] * n_words + j)]
                if word != 0:
                    return np.int32(meta[_U(port_off + j * 64 + np.int64(trailing_zeros(word)))])
                acc &= acc - _ONE
        return default

    @jit
    def ip_match(data, l3, end, meta, lookup, bits):
        l4 = np.int64(-1)
        proto = np.int64(-1)
        if l3 >= 0 and l3 + 10 <= end:
            ihl = np.int64(data[_U(l3)]) & 0x0F
            frag_offset = ((np.int64(data[_U(l3 + 6)]) << 8)
                           | np.int64(data[_U(l3 + 7)])) & 0x1FFF
            if ihl >= 5 and frag_offset == 0:
                l4 = l3 + 4 * ihl
                proto = np.int64(data[_U(l3 + 9)])
        return decide(data, l3, l4, proto, end, meta, lookup, bits)

    @jit
    def raw_match(data, start, end, meta, lookup, bits):
        return decide(data, start, np.int64(-1), np.int64(-1), end, meta, lookup, bits)

    return ip_match, raw_match


ip_match, raw_match = build()
