"""Helpers the generated pipeline calls that belong to no element: packet copies."""

from nfv.jit import kernel

from nfv.dataplane.packet import BUF_STRIDE, NO_NET_HEADER


@kernel
def copy_packet(pool, meta, free, v, count, capacity):
    """Copy packet v (its headroom included) into a buffer from the free list, as record `count`.

    `free` is the arena header as uint32: free[0] the number of free slots,
    free[2:] the slot numbers.  Returns the new record's index, or -1 when no
    buffer or record is left (the caller drops and counts the copy).
    """
    if count >= capacity or free[0] == 0:
        return -1
    free[0] -= 1
    slot = int(free[2 + free[0]])
    src = int(meta[v].offset)
    length = int(meta[v].length)
    head = src % BUF_STRIDE  # the bytes in front of the data go too: Unstrip must find them
    dst = slot * BUF_STRIDE + head
    if dst + length > pool.shape[0]:
        return -1
    for k in range(-head, length):
        pool[dst + k] = pool[src + k]
    m = meta[count]
    m.timestamp_ns = meta[v].timestamp_ns
    m.offset = dst
    net = meta[v].net_offset
    m.net_offset = net if net == NO_NET_HEADER else net - src + dst
    m.dst_ip = meta[v].dst_ip
    m.length = length
    m.in_port = meta[v].in_port
    m.out_port = meta[v].out_port
    m.paint = meta[v].paint
    m.drop_reason = meta[v].drop_reason
    return count
