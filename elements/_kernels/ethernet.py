"""Kernels of the Ethernet elements."""

from nfv.jit import kernel

from nfv import drops
from nfv.dataplane.packet import BUF_STRIDE


@kernel
def ether_encap(pool, meta, i, header):
    """Push the 14-byte header (dst, src, type) into the headroom."""
    if meta[i].offset % BUF_STRIDE < 14:
        return -drops.NO_HEADROOM
    meta[i].offset -= 14
    meta[i].length += 14
    start = int(meta[i].offset)
    for k in range(14):
        pool[start + k] = header[k]
    return 0


@kernel
def ether_rewrite(pool, meta, i, header):
    """Overwrite the destination and source addresses (the first 12 bytes)."""
    if meta[i].length < 14:
        return -drops.TOO_SHORT
    start = int(meta[i].offset)
    for k in range(12):
        pool[start + k] = header[k]
    return 0
