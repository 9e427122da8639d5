"""Small helpers kernels share: header offsets, checksums, byte access."""

import numpy as np

from nfv.jit import kernel

NO_NET_HEADER = 0xFFFFFFFF
U = np.uint64


# The byte helpers index with unsigned offsets: Numba wraps a negative signed index
# around (a select per access), which keeps LLVM from fusing four byte loads into one
# big-endian 32-bit load (movbe); unsigned, they fuse (a load32 went from ~1.5 to 0.5 ns).
# Callers check offsets against the packet first, as before.

@kernel
def load16(pool, at):
    """Big-endian 16-bit word at pool[at]."""
    a = U(at)
    return (int(pool[a]) << 8) | int(pool[a + U(1)])


@kernel
def load32(pool, at):
    """Big-endian 32-bit word at pool[at]."""
    a = U(at)
    return ((int(pool[a]) << 24) | (int(pool[a + U(1)]) << 16)
            | (int(pool[a + U(2)]) << 8) | int(pool[a + U(3)]))


@kernel
def store16(pool, at, value):
    a = U(at)
    pool[a] = (value >> 8) & 0xFF
    pool[a + U(1)] = value & 0xFF


@kernel
def store32(pool, at, value):
    a = U(at)
    pool[a] = (value >> 24) & 0xFF
    pool[a + U(1)] = (value >> 16) & 0xFF
    pool[a + U(2)] = (value >> 8) & 0xFF
    pool[a + U(3)] = value & 0xFF


@kernel
def ones_sum(pool, start, nbytes):
    """One's-complement sum of nbytes (even) from pool[start], folded to 16 bits.

    Adds little-endian 32-bit words (the one's-complement sum does not depend on
    byte order, RFC 1071 2(B)) and swaps the two bytes of the result at the end:
    five loads for an IPv4 header instead of twenty.
    """
    if start < 0 or start + nbytes > pool.shape[0]:
        return 0  # never: callers check the header lies in the packet; but never raise either
    a = U(start)
    s = U(0)
    for k in range(U(nbytes) >> U(2)):
        b = a + U(4) * U(k)
        # one little-endian 32-bit load once LLVM fuses the bytes (unsigned indexes)
        s += U(pool[b]) | (U(pool[b + U(1)]) << U(8)) | (U(pool[b + U(2)]) << U(16)) \
            | (U(pool[b + U(3)]) << U(24))
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
