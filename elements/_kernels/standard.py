"""Kernels of the standard elements (Counter, Paint, Strip, switches, ...)."""

from nfv.jit import kernel

from nfv import drops
from nfv.dataplane.packet import BUF_STRIDE

from nfv.elements._kernels.packet import packet_end


@kernel
def counter(pool, meta, i, counts, now):
    """counts: packets, bytes, time of the first and of the last packet (ns)."""
    if counts[0] == 0:
        counts[2] = now
    counts[0] += 1
    counts[1] += meta[i].length
    counts[3] = now
    return 0


@kernel
def paint(pool, meta, i, color):
    meta[i].paint = color
    return 0


@kernel
def check_paint(pool, meta, i, color):
    return 0 if meta[i].paint == color else 1


@kernel
def paint_switch(pool, meta, i):
    return int(meta[i].paint)


@kernel
def strip(pool, meta, i, nbytes):
    """Move the data start forward; the bytes stay in the buffer for Unstrip."""
    if meta[i].length < nbytes:
        return -drops.TOO_SHORT
    meta[i].offset += nbytes
    meta[i].length -= nbytes
    return 0


@kernel
def unstrip(pool, meta, i, nbytes):
    """Move the data start back into the headroom (the slot start is the limit)."""
    if meta[i].offset % BUF_STRIDE < nbytes:
        return -drops.NO_HEADROOM
    meta[i].offset -= nbytes
    meta[i].length += nbytes
    return 0


@kernel
def round_robin(pool, meta, i, state, noutputs):
    """state[0]: the next output."""
    port = state[0]
    nxt = port + 1
    state[0] = 0 if nxt >= noutputs else nxt
    return int(port)


@kernel
def hash_switch(pool, meta, i, offset, nbytes, noutputs):
    """FNV-1a over the bytes [offset, offset+nbytes) of the packet, modulo the outputs."""
    start = int(meta[i].offset) + offset
    if start + nbytes > packet_end(meta, i):
        return 0  # as Click: too short to hash goes to output 0
    h = 2166136261
    for k in range(nbytes):
        h = ((h ^ int(pool[start + k])) * 16777619) & 0xFFFFFFFF
    return int(h % noutputs)
