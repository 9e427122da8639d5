"""Small helpers kernels share: header offsets, checksums, byte access."""

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from nfv.jit import kernel

NO_NET_HEADER = 0xFFFFFFFF


@kernel
def load16(pool, at):
    """Big-endian 16-bit word at pool[at]."""
    return (int(pool[at]) << 8) | int(pool[at + 1])


@kernel
def load32(pool, at):
    """Big-endian 32-bit word at pool[at]."""
    return ((int(pool[at]) << 24) | (int(pool[at + 1]) << 16)
            | (int(pool[at + 2]) << 8) | int(pool[at + 3]))


@kernel
def store16(pool, at, value):
    pool[at] = (value >> 8) & 0xFF
    pool[at + 1] = value & 0xFF


@kernel
def store32(pool, at, value):
    pool[at] = (value >> 24) & 0xFF
    pool[at + 1] = (value >> 16) & 0xFF
    pool[at + 2] = (value >> 8) & 0xFF
    pool[at + 3] = value & 0xFF


@kernel
def ones_sum(pool, start, nbytes):
    """One's-complement sum of nbytes (even) from pool[start], folded to 16 bits.

    Adds little-endian 32-bit words (the one's-complement sum does not depend on
    byte order, RFC 1071 2(B)) and swaps the two bytes of the result at the end:
    five loads for an IPv4 header instead of twenty.
    """
    if start < 0 or start + nbytes > pool.shape[0]:
        return 0  # never: callers check the header lies in the packet; but never raise either
    words = pool[start:start + (nbytes & ~3)].view(np.uint32)
    s = np.uint64(0)
    for k in range(words.shape[0]):
        s += np.uint64(words[k])
    if nbytes & 2:
        s += np.uint64(pool[start + nbytes - 2]) | (np.uint64(pool[start + nbytes - 1]) << np.uint64(8))
    for _ in range(4):
        s = (s & np.uint64(0xFFFF)) + (s >> np.uint64(16))
    v = int(s)
    return ((v & 0xFF) << 8) | (v >> 8)


@kernel
def ip_header(meta, i):
    """Index of the marked IPv4 header in the pool, or -1 when none is marked."""
    net = meta[i].net_offset
    if net == NO_NET_HEADER:
        return -1
    return int(net)


@kernel
def packet_end(meta, i):
    return int(meta[i].offset) + int(meta[i].length)


@intrinsic
def prefetch(typingctx, array, index):
    """Start loading array[index]'s cache line (x86 prefetcht0) and go on at once.

    A plain load in a warm-up loop waits in the reorder buffer for its miss, so only
    a few packets' misses overlap; a prefetch retires at once, so a batch's worth of
    misses are in flight together.  No symbol: LLVM emits the instruction itself.
    """
    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]],
                                       wraparound=False)
        byte_ptr = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        # (address, 0 = read, 3 = keep in all cache levels, 1 = data cache)
        builder.call(fn, [builder.bitcast(ptr, byte_ptr), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()
    return types.void(array, index), codegen
