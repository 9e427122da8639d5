"""Numba matchers for the decision tables of `decide.py` (the packet-path half of the classifier).

    ip_match(data, l3, end, meta, lookup, bits) -> int32      IPFilter, IPClassifier
    raw_match(data, start, end, meta, lookup, bits) -> int32  Classifier
    ip_verdict / raw_verdict (same arguments) -> int64        the rule and its port

data    the uint8 packet pool (1-D); the packet is data[l3 : end] (IP header first)
        or data[start : end] (Classifier offsets count from `start`).
end     one past the packet's last byte.
meta, lookup, bits
        `DecisionTable.arrays`, in that order (int32, uint32, uint64, contiguous).
The `_match` pair returns the output port of the first matching rule, or -1
(drop).  The `_verdict` pair returns that rule's index (-1: no rule matched) and
its port in one int64, `rule << 32 | port & 0xFFFFFFFF`; `verdict_rule` and
`verdict_port` take it apart.  IPFilter and IPClassifier use it to count packets
per rule: the table stores each box's port beside its rule, so the port costs no
second, dependent load.

Nothing outside [l3, end) / [start, end) is read: a field whose bytes are not all
inside is absent, and a test on an absent field is false.  Sizes and offsets come
from `meta`, never from array shapes, so a table may be replaced in place between
two batches (`DecisionTable.copy_from`).

Dataplane rules (DESIGN.md): no allocation (the per-dimension row ids live in a
stack array), no exceptions, no Python objects, no call out of the function but two
tiny LLVM-IR vector helpers that reference no symbol.  Table reads the helpers make
are range-checked in the njit code first.  The pair is compiled with the project's
kernel options (nfv.jit: no Numba runtime, inlined into the caller);
`build(**jit_options)` compiles a fresh pair with other options, e.g.
`build(boundscheck=True)` for the tests that prove no read leaves the packet.

Lookup (README.md has the why): for each dimension of the table read the field,
walk the radix index to a leaf bucket, count the interval starts <= value in one
16-wide vector compare, take the interval's row id; then AND the rows' summary
words, and for each surviving chunk of 8 words AND the chunks; the lowest set bit
is the first matching box.
"""
from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic

from nfv.classify import decide as _d
from nfv.jit import OPTIONS

__all__ = ["ip_match", "raw_match", "ip_verdict", "raw_verdict", "verdict_rule",
           "verdict_port", "build", "ARRAY_ORDER"]

#: Names of the table arrays, in argument order.
ARRAY_ORDER = ("meta", "lookup", "bits")

# Layout constants, frozen into the compiled code as literals.
_MAX_DIMS, _MAX_SLOTS, _MAGIC, _BASE_L4 = _d.MAX_DIMS, _d.MAX_SLOTS, _d.MAGIC, _d.BASE_L4
_HDR_MAGIC, _HDR_NDIMS, _HDR_NBOXES = _d.HDR_MAGIC, _d.HDR_NDIMS, _d.HDR_NBOXES
_HDR_NWORDS, _HDR_NSUMMARY, _HDR_DEFAULT = _d.HDR_NWORDS, _d.HDR_NSUMMARY, _d.HDR_DEFAULT
_HDR_BOX_OFF, _HDR_NFOLDS, _HDR_FOLD_OFF = _d.HDR_BOX_OFF, _d.HDR_NFOLDS, _d.HDR_FOLD_OFF
_HDR_NFINAL, _HDR_FINAL_OFF, _HDR_CHUNK = _d.HDR_NFINAL, _d.HDR_FINAL_OFF, _d.HDR_CHUNK
_HDR_ANSWER_OFF, _HDR_SIZE = _d.HDR_ANSWER_OFF, _d.HDR_SIZE
_HDR_DEFAULT_RULE = _d.HDR_DEFAULT_RULE
_D_BASE, _D_OFFSET, _D_SIZE, _D_SHIFT = _d.D_BASE, _d.D_OFFSET, _d.D_SIZE, _d.D_SHIFT
_D_BITS, _D_PROTO1, _D_PROTO2, _D_BSHIFT = _d.D_BITS, _d.D_PROTO1, _d.D_PROTO2, _d.D_BSHIFT
_D_INDEX, _D_STARTS, _D_NSTARTS, _D_CLASS = _d.D_INDEX, _d.D_STARTS, _d.D_NSTARTS, _d.D_CLASS
_D_ABSENT, _D_DIRECT, _DIM_STRIDE = _d.D_ABSENT, _d.D_DIRECT, _d.DIM_STRIDE
_FOLD_A, _FOLD_B, _FOLD_NB, _FOLD_TABLE = _d.FOLD_A, _d.FOLD_B, _d.FOLD_NB, _d.FOLD_TABLE
_FOLD_STRIDE = _d.FOLD_STRIDE
_FINAL_SLOT, _FINAL_ROWS, _FINAL_SUMMARY = _d.FINAL_SLOT, _d.FINAL_ROWS, _d.FINAL_SUMMARY
_FINAL_STRIDE = _d.FINAL_STRIDE
_CHILD, _CHILD_BITS, _CHILD_MASK = _d.CHILD, _d.CHILD_BITS, (1 << _d.CHILD_BITS) - 1
_WINDOW, _SHORT_WORDS = _d.WINDOW, _d.SHORT_WORDS
assert _d.WINDOW == 16 and _d.CHUNK_WORDS == 8, "the code below is written for these sizes"

_ALL = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
_LOW32 = np.int64(0xFFFF_FFFF)
_ONE = np.uint64(1)
_U = np.uint64    # index type: numba adds no negative-index fix-up to unsigned indices


def _stack(element):
    """An intrinsic: pointer to COUNT `element` slots on the stack, an alloca in the
    entry block (no heap, no runtime call, the same in the unikernel)."""

    @intrinsic
    def stack(typingctx, count):
        if not isinstance(count, types.IntegerLiteral):
            return None

        def codegen(context, builder, signature, args):
            slot = context.get_value_type(element)
            return cgutils.alloca_once(builder, slot, size=count.literal_value)

        return types.CPointer(element)(count), codegen

    return stack


_stack_slots = _stack(types.int64)


@intrinsic
def _count_le16(typingctx, array, start, value):
    """How many of array[start:start+16] (uint32) are <= value (0 <= value < 2**32).

    Plain LLVM IR: a <16 x i32> load, an unsigned compare with the broadcast value,
    and a popcount of the mask (one AVX-512 compare here, four SSE2 compares on a
    baseline x86-64).  Written by hand because numba has no SIMD types and LLVM made
    a 16-long carry chain of the equivalent Python loop.  No bounds check: callers
    check start + 16 <= array.size first."""
    if not (isinstance(array, types.Array) and array.dtype == types.uint32):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        i32 = ir.IntType(32)
        lanes = ir.VectorType(i32, 16)
        ptr = builder.bitcast(builder.gep(data, [args[1]]), lanes.as_pointer())
        vector = builder.load(ptr, align=4)
        splat = builder.insert_element(ir.Constant(lanes, ir.Undefined),
                                       builder.trunc(args[2], i32), ir.Constant(i32, 0))
        splat = builder.shuffle_vector(splat, ir.Constant(lanes, ir.Undefined),
                                       ir.Constant(lanes, [0] * 16))
        mask = builder.bitcast(builder.icmp_unsigned("<=", vector, splat), ir.IntType(16))
        ctpop = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(16)])
        return builder.zext(builder.call(ctpop, [mask]), ir.IntType(64))

    return types.int64(array, types.int64, types.int64), codegen


def _chunk_scanner(lanes: int):
    """An intrinsic for chunks of `lanes` words (1, 2, 4 or 8): the first bit set in the
    AND of the chunks bits[row_at[i] + first : + lanes], i < n_rows, as 64 * word + bit,
    or -1 if the AND is zero.

    LLVM IR with the chunk in a vector register: the loop over rows has a fixed trip
    count and no early exit, and the answer comes from a lane mask, a count of
    trailing zeros and a lane extract: no data-dependent branch.  No bounds check:
    the callers check that each chunk is inside `bits`."""

    @intrinsic
    def first_in_chunk(typingctx, bits, row_at, n_rows, first):
        if not (isinstance(bits, types.Array) and bits.dtype == types.uint64):
            return None

        def codegen(context, builder, signature, args):
            bits_arg, rows_ptr, count, first_arg = args
            data = context.make_array(signature.args[0])(context, builder, bits_arg).data
            i1, i8, i64 = ir.IntType(1), ir.IntType(8), ir.IntType(64)
            vector = ir.VectorType(i64, lanes)
            entry = builder.block
            head = builder.append_basic_block("chunk.head")
            body = builder.append_basic_block("chunk.body")
            done = builder.append_basic_block("chunk.done")
            builder.branch(head)
            builder.position_at_end(head)
            index = builder.phi(i64)
            acc = builder.phi(vector)
            index.add_incoming(ir.Constant(i64, 0), entry)
            acc.add_incoming(ir.Constant(vector, [0xFFFF_FFFF_FFFF_FFFF] * lanes), entry)
            builder.cbranch(builder.icmp_signed("<", index, count), body, done)
            builder.position_at_end(body)
            start = builder.add(builder.load(builder.gep(rows_ptr, [index])), first_arg)
            chunk = builder.load(builder.bitcast(builder.gep(data, [start]),
                                                 vector.as_pointer()), align=8)
            acc.add_incoming(builder.and_(acc, chunk), body)
            index.add_incoming(builder.add(index, ir.Constant(i64, 1)), body)
            builder.branch(head)
            builder.position_at_end(done)
            mask = builder.icmp_unsigned("!=", acc, ir.Constant(vector, [0] * lanes))
            mask = builder.zext(builder.bitcast(mask, ir.IntType(lanes)), i8)
            cttz8 = builder.module.declare_intrinsic("llvm.cttz", [i8, i1])
            cttz64 = builder.module.declare_intrinsic("llvm.cttz", [i64, i1])
            lane = builder.call(cttz8, [mask, ir.Constant(i1, 0)])          # 8 when none
            lane = builder.and_(lane, ir.Constant(i8, lanes - 1))
            bit = builder.call(cttz64, [builder.extract_element(acc, lane), ir.Constant(i1, 0)])
            found = builder.add(builder.mul(builder.zext(lane, i64), ir.Constant(i64, 64)), bit)
            none = builder.icmp_unsigned("==", mask, ir.Constant(i8, 0))
            return builder.select(none, ir.Constant(i64, -1), found)

        return types.int64(bits, types.CPointer(types.int64), types.int64, types.int64), codegen

    return first_in_chunk


_scan1, _scan2, _scan4, _scan8 = (_chunk_scanner(n) for n in (1, 2, 4, 8))


def _matcher(jit, is_ip: bool):
    """One verdict finder: (first matching rule << 32) | its port & 0xFFFFFFFF.
    `is_ip` is a closure constant, so numba compiles the IP header step in or out
    and both share this body with no call between them."""

    def match(data, base, end, meta, lookup, bits):
        # Written with while loops, flags and one return at the end: in this shape
        # numba's reference-count pruning removes the NRT incref/decref calls of the
        # array arguments (with break/continue in range loops it keeps 8 calls).
        # The answer, (rule, port), is the default until a box or a class says otherwise.
        rule = np.int64(meta[_U(_HDR_DEFAULT_RULE)])
        port = np.int64(meta[_U(_HDR_DEFAULT)])
        n_dims = np.int64(meta[_U(_HDR_NDIMS)])
        n_folds = np.int64(meta[_U(_HDR_NFOLDS)])
        ok = (meta[_U(_HDR_MAGIC)] == _MAGIC and 0 < n_dims <= _MAX_DIMS
              and 0 <= n_folds < _MAX_DIMS and meta[_U(_HDR_NBOXES)] > 0)
        # The transport header, when transport fields exist for this packet at all.
        l4 = np.int64(-1)
        proto = np.int64(-1)
        if is_ip and ok and base >= 0 and base + 10 <= end:
            ihl = np.int64(data[_U(base)]) & 0x0F
            frag_offset = ((np.int64(data[_U(base + 6)]) << 8)
                           | np.int64(data[_U(base + 7)])) & 0x1FFF
            if ihl >= 5 and frag_offset == 0:
                l4 = base + 4 * ihl
                proto = np.int64(data[_U(base + 9)])

        # Phase 1: each dimension's value -> its interval -> the interval's class.
        slots = _stack_slots(_MAX_SLOTS)
        d = 0
        while ok and d < n_dims:
            o = _HDR_SIZE + d * _DIM_STRIDE
            if meta[_U(o + _D_BASE)] == _BASE_L4:
                pos = l4 + meta[_U(o + _D_OFFSET)]
                present = l4 >= 0 and (proto == meta[_U(o + _D_PROTO1)] or
                                       proto == meta[_U(o + _D_PROTO2)])
            else:
                pos = base + meta[_U(o + _D_OFFSET)]
                present = base >= 0
            size = np.int64(meta[_U(o + _D_SIZE)])
            cls = np.int64(meta[_U(o + _D_ABSENT)])
            if present and pos + size <= end:
                v = np.int64(data[_U(pos)])       # size is 1..4; these branches go the
                if size > 1:                      # same way for every packet
                    v = (v << 8) | np.int64(data[_U(pos + 1)])
                if size > 2:
                    v = (v << 8) | np.int64(data[_U(pos + 2)])
                if size > 3:
                    v = (v << 8) | np.int64(data[_U(pos + 3)])
                v = (v >> meta[_U(o + _D_SHIFT)]) & ((np.int64(1) << meta[_U(o + _D_BITS)]) - 1)
                ix = np.int64(meta[_U(o + _D_INDEX)])
                shift = np.int64(meta[_U(o + _D_BSHIFT)])
                k = np.int64(lookup[_U(ix + (v >> shift))])
                if meta[_U(o + _D_DIRECT)] != 0:
                    cls = k                       # narrow field: the entry is the class
                else:
                    # Radix index down to a leaf bucket; k = the index of its first
                    # interval start.  The bucket holds at most WINDOW starts and all
                    # later ones are > v (later buckets, then the 0xFFFFFFFF pad), so
                    # counting the starts <= v in a fixed window of 16 finds the interval.
                    while k >= _CHILD:
                        shift -= _CHILD_BITS
                        k = np.int64(lookup[_U(ix + (k - _CHILD) + ((v >> shift) & _CHILD_MASK))])
                    st = np.int64(meta[_U(o + _D_STARTS)]) + k
                    if st >= 0 and st + _WINDOW <= lookup.size:
                        k += _count_le16(lookup, st, v)
                        n_starts = np.int64(meta[_U(o + _D_NSTARTS)])
                        k = k if k < n_starts else n_starts  # v == 0xFFFFFFFF counts the pad
                        cls = np.int64(lookup[_U(meta[_U(o + _D_CLASS)] + k - 1)])
                    else:
                        ok = False                # corrupt table; never for compiled ones
            slots[d] = cls
            d += 1
        # Folds: the class of a pair of groups, from their cross-product table.
        f = 0
        while ok and f < n_folds:
            o = np.int64(meta[_U(_HDR_FOLD_OFF)]) + f * _FOLD_STRIDE
            a = np.int64(meta[_U(o + _FOLD_A)])
            b = np.int64(meta[_U(o + _FOLD_B)])
            at = np.int64(-1)
            if 0 <= a < n_dims + f and 0 <= b < n_dims + f:   # slots written so far
                at = (np.int64(meta[_U(o + _FOLD_TABLE)])
                      + slots[a] * meta[_U(o + _FOLD_NB)] + slots[b])
            if 0 <= at < lookup.size:
                slots[n_dims + f] = np.int64(lookup[_U(at)])
            else:
                ok = False                        # corrupt table; never for compiled ones
            f += 1

        n_final = np.int64(meta[_U(_HDR_NFINAL)])
        final_off = np.int64(meta[_U(_HDR_FINAL_OFF)])
        answer_off = np.int64(meta[_U(_HDR_ANSWER_OFF)])
        n_slots = n_dims + n_folds
        if n_final > _MAX_DIMS:
            ok = False
        if ok and answer_off >= 0:
            # Everything folded into one group: its class is the answer.
            slot = np.int64(meta[_U(final_off + _FINAL_SLOT)])
            if 0 <= slot < n_slots:
                answer = answer_off + 2 * slots[slot]
                rule = np.int64(meta[_U(answer)])
                port = np.int64(meta[_U(answer + 1)])
            ok = False

        # Phase 2: AND the final groups' rows a chunk at a time; the lowest set bit
        # is the first matching box.
        n_words = np.int64(meta[_U(_HDR_NWORDS)])
        n_summary = np.int64(meta[_U(_HDR_NSUMMARY)])
        box_off = np.int64(meta[_U(_HDR_BOX_OFF)])
        chunk = np.int64(meta[_U(_HDR_CHUNK)])
        row_at = _stack_slots(_MAX_DIMS)         # bits index of each group's row
        summary_at = _stack_slots(_MAX_DIMS)     # bits index of its summary row
        g = 0
        while ok and g < n_final:
            o = final_off + g * _FINAL_STRIDE
            slot = np.int64(meta[_U(o + _FINAL_SLOT)])
            ok = 0 <= slot < n_slots
            cls = slots[slot] if ok else np.int64(0)
            row_at[g] = meta[_U(o + _FINAL_ROWS)] + cls * n_words
            summary_at[g] = meta[_U(o + _FINAL_SUMMARY)] + cls * n_summary
            g += 1
        # Every final group's row lies inside `bits` (the chunk scanners do not check),
        # and the chunk width divides the row.
        ok = ok and chunk in (1, 2, 4, 8) and n_words % chunk == 0
        g = 0
        while ok and g < n_final:
            ok = 0 <= row_at[g] and row_at[g] + n_words <= bits.size
            g += 1
        # Short rows (at most SHORT_WORDS words): chunk after chunk from the first; the
        # chunk width (1, 2, 4 or 8 words) is the table's, so the branch predicts.
        first = 0
        while ok and n_words <= _SHORT_WORDS and first < n_words:
            if chunk == 8:
                hit = _scan8(bits, row_at, n_final, first)
            elif chunk == 4:
                hit = _scan4(bits, row_at, n_final, first)
            elif chunk == 2:
                hit = _scan2(bits, row_at, n_final, first)
            else:
                hit = _scan1(bits, row_at, n_final, first)
            if hit >= 0:
                answer = box_off + 2 * (first * 64 + hit)
                rule = np.int64(meta[_U(answer)])
                port = np.int64(meta[_U(answer + 1)])
                ok = False
            first += chunk
        # Long rows (8-word chunks): the summary words say which chunks to AND.
        s = 0
        while ok and n_words > _SHORT_WORDS and s < n_summary:
            acc = _ALL
            g = 0
            while g < n_final and acc != 0:       # (a loop with an exit test: LLVM does
                acc &= bits[_U(summary_at[g] + s)]   # not turn it into slow gathers)
                g += 1
            while acc != 0:
                first = (s * 64 + np.int64(trailing_zeros(acc))) * 8
                hit = _scan8(bits, row_at, n_final, first)
                if hit >= 0:
                    answer = box_off + 2 * (first * 64 + hit)
                    rule = np.int64(meta[_U(answer)])
                    port = np.int64(meta[_U(answer + 1)])
                    ok = False                    # found: leave every loop
                    acc = np.uint64(0)
                else:
                    acc &= acc - _ONE
            s += 1
        return (rule << 32) | (port & _LOW32)

    return jit(match)


def _port_matcher(jit, verdict):
    def match(data, base, end, meta, lookup, bits):
        return np.int32(verdict(data, base, end, meta, lookup, bits) & _LOW32)

    return jit(match)


def _build(jit):
    ip_verdict_, raw_verdict_ = _matcher(jit, True), _matcher(jit, False)
    return (_port_matcher(jit, ip_verdict_), _port_matcher(jit, raw_verdict_),
            ip_verdict_, raw_verdict_)


def build(**jit_options):
    """Compile (lazily) a fresh (ip_match, raw_match) pair with numba.njit(**jit_options)."""
    return _build(numba.njit(**jit_options))[:2]


# The public functions are compiled like every dataplane kernel (nfv/jit.py): no Numba
# runtime, and inlined at Numba-IR level into the kernel that calls them (a call would
# pass each table array as a 7-word struct on the stack).
_jit = numba.njit(inline="always", **OPTIONS)
ip_match, raw_match, ip_verdict, raw_verdict = _build(_jit)


@_jit
def verdict_rule(verdict):
    """The rule of a verdict: its index, -1 when no rule matched."""
    return np.int32(verdict >> 32)


@_jit
def verdict_port(verdict):
    """The port of a verdict: the rule's output, -1 to drop."""
    return np.int32(verdict & _LOW32)
