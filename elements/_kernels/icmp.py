"""Kernels of the ICMP elements: answering echo requests in place."""

from nfv.jit import kernel

from nfv import drops
from nfv.elements._kernels.packet import ip_header, load16, load32, ones_sum, packet_end, store16

ICMP_PROTO = 1
ECHO_REQUEST = 8
ECHO_HEADER = 8  # type, code, checksum, identifier, sequence number


@kernel
def icmp_ping_respond(pool, meta, i, counts):
    """Click's ICMPPingResponder, in place: an ICMP echo request becomes the echo reply
    (output 0); any other IP packet goes to output 1.

    As Click does: source and destination swapped, fragment field cleared, TTL 255,
    type 0 and code 0 with the ICMP checksum patched incrementally (RFC 1624), the
    destination annotation set to the new destination and the paint cleared.  The IP
    header checksum is recomputed whole.  Not answered, unlike Click: fragments (the
    reply would be a fragment of a message never sent whole) and messages shorter
    than an echo header.
    """
    ip = ip_header(meta, i)
    end = packet_end(meta, i)
    if ip < 0 or ip + 20 > end:
        return -drops.NO_IP_HEADER
    vihl = int(pool[ip])
    hlen = (vihl & 0xF) * 4
    if vihl >> 4 != 4 or hlen < 20:
        return 1
    total = load16(pool, ip + 2)
    if total < hlen + ECHO_HEADER or ip + total > end:
        return 1
    if pool[ip + 9] != ICMP_PROTO or (load16(pool, ip + 6) & 0x3FFF) != 0:
        return 1
    icmp = ip + hlen
    if pool[icmp] != ECHO_REQUEST:
        return 1
    for j in range(4):
        b = pool[ip + 12 + j]
        pool[ip + 12 + j] = pool[ip + 16 + j]
        pool[ip + 16 + j] = b
    store16(pool, ip + 6, 0)
    pool[ip + 8] = 255
    store16(pool, ip + 10, 0)
    store16(pool, ip + 10, ~ones_sum(pool, ip, hlen) & 0xFFFF)
    # HC' = ~(~HC + ~m + m'), m the type/code word, m' = 0 (RFC 1624, eqn. 3)
    s = (~load16(pool, icmp + 2) & 0xFFFF) + (~load16(pool, icmp) & 0xFFFF)
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    store16(pool, icmp, 0)
    store16(pool, icmp + 2, ~s & 0xFFFF)
    meta[i].dst_ip = load32(pool, ip + 16)
    meta[i].paint = 0
    counts[0] += 1
    return 0
