"""Small helpers kernels share: header offsets, checksums, byte access."""
from numba import njit

NO_NET_HEADER = 0xFFFFFFFF


@njit(cache=True)
def load16(pool, at):
    """Big-endian 16-bit word at pool[at]."""
    return (int(pool[at]) << 8) | int(pool[at + 1])


@njit(cache=True)
def load32(pool, at):
    """Big-endian 32-bit word at pool[at]."""
    return ((int(pool[at]) << 24) | (int(pool[at + 1]) << 16)
            | (int(pool[at + 2]) << 8) | int(pool[at + 3]))


@njit(cache=True)
def store16(pool, at, value):
    pool[at] = (value >> 8) & 0xFF
    pool[at + 1] = value & 0xFF


@njit(cache=True)
def ones_sum(pool, start, nbytes):
    """One's-complement sum of nbytes (even) from pool[start], folded to 16 bits."""
    s = 0
    for k in range(0, nbytes, 2):
        s += (int(pool[start + k]) << 8) | int(pool[start + k + 1])
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return s


@njit(cache=True)
def ip_header(meta, i):
    """Index of the marked IPv4 header in the pool, or -1 when none is marked."""
    net = meta[i].net_offset
    if net == NO_NET_HEADER:
        return -1
    return int(net)


@njit(cache=True)
def packet_end(meta, i):
    return int(meta[i].offset) + int(meta[i].length)
