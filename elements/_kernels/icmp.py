"""Kernels of the ICMP elements: answering echo requests and making ICMP errors, in place."""

import numpy as np

from nfv.jit import kernel

from nfv import drops
from nfv.dataplane.packet import BUF_STRIDE
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


ERROR_HEADERS = 28  # the new IP header (20) and ICMP header (8) pushed in front
ICMP_UNREACH = 3
ICMP_REDIRECT = 5
ICMP_PARAMPROB = 12
UNREACH_NEEDFRAG = 4
ERROR_TTL = 200  # as Click's ICMPError sets it
IPOPT_EOL = 0
IPOPT_NOP = 1
IPOPT_LSRR = 131
IPOPT_SSRR = 137


@kernel
def is_error_type(t):
    return t == 3 or t == 4 or t == 5 or t == 11 or t == 12


@kernel
def unicast(a):
    """Not the limited broadcast and not class D multicast (Click's ICMPError::unicast)."""
    return a != 0xFFFFFFFF and (a & 0xF0000000) != 0xE0000000


@kernel
def has_source_route(pool, ip, hlen):
    """Whether the options (hlen bytes of header, all inside the packet) hold a
    loose or strict source route, read as Click's valid_source_route does."""
    oi = 20
    while oi < hlen:
        opt = int(pool[ip + oi])
        if opt == IPOPT_NOP:
            oi += 1
            continue
        if opt == IPOPT_EOL or oi + 1 >= hlen:
            return False
        xlen = int(pool[ip + oi + 1])
        if xlen < 2 or oi + xlen > hlen:
            return False
        if (opt == IPOPT_LSRR or opt == IPOPT_SSRR) and oi + 2 < hlen:
            ptr = int(pool[ip + oi + 2])
            if ptr >= 4 and ptr % 4 == 0 and ptr <= xlen + 1:
                return True
        oi += xlen
    return False


@kernel
def take_token(bucket, clock, now, rate, burst):
    """A token bucket (RFC 1812 4.3.2.8): `rate` tokens a second, at most `burst`
    banked; True (and one token spent) when a token is there.  rate 0: no limit.

    bucket[0] holds the tokens, clock[0] the `now` they were counted at.  A clock
    that goes back (a capture replayed from its start) adds nothing and restarts
    the count from the new time.
    """
    if rate <= 0.0:
        return True
    elapsed = np.int64(now) - np.int64(clock[0])
    clock[0] = now
    tokens = bucket[0]
    if elapsed > 0:
        tokens += (elapsed * 1e-9) * rate
        if tokens > burst:
            tokens = burst
    if tokens < 1.0:
        bucket[0] = tokens
        return False
    bucket[0] = tokens - 1.0
    return True


@kernel
def icmp_error(pool, meta, i, counts, bucket, clock, now, src, icmp_type, code, pmtu,
               rate, burst):
    """Click's ICMPError, in place: the new IP and ICMP headers go into the headroom
    in front of the original IP header, and the packet is cut after that header and
    8 bytes of its payload (or where the packet ends, if sooner).

    Not answered (dropped, reason no-icmp-error), as RFC 1812 4.3.2.7 and Click say:
    an ICMP error (or an ICMP message too short to show its type), a broadcast or
    multicast destination, a source that is broadcast, multicast, net 0, net 127 or
    class E, a fragment other than the first, and a redirect for a source-routed
    packet.  counts[0] counts errors made, counts[1] is the next IP identifier,
    counts[2] the errors not made because they were over the rate (dropped, reason
    rate-limited): the token bucket is asked last, so only errors that would be
    sent spend a token.
    """
    ip = ip_header(meta, i)
    end = packet_end(meta, i)
    if ip < 0 or ip + 20 > end:
        return -drops.NO_IP_HEADER
    hlen = (int(pool[ip]) & 0xF) * 4
    have = end - ip
    if pool[ip + 9] == ICMP_PROTO:
        if hlen + 4 > have or is_error_type(int(pool[ip + hlen])):
            return -drops.NO_ICMP_ERROR
    if not unicast(load32(pool, ip + 16)):
        return -drops.NO_ICMP_ERROR
    source = load32(pool, ip + 12)
    net = source >> 24
    if not unicast(source) or net == 0 or net == 127 or (net & 0xF0) == 0xF0:
        return -drops.NO_ICMP_ERROR
    if (load16(pool, ip + 6) & 0x1FFF) != 0:
        return -drops.NO_ICMP_ERROR
    if icmp_type == ICMP_REDIRECT and has_source_route(pool, ip, min(hlen, have)):
        return -drops.NO_ICMP_ERROR
    if ip % BUF_STRIDE < ERROR_HEADERS:
        return -drops.NO_HEADROOM
    if not take_token(bucket, clock, now, rate, burst):
        counts[2] += 1
        return -drops.RATE_LIMITED
    xlen = min(have, hlen + 8)
    nip = ip - ERROR_HEADERS
    icmp = nip + 20
    total = ERROR_HEADERS + xlen
    ident = int(counts[1]) & 0xFFFF
    counts[1] = (ident + 1) & 0xFFFF
    pool[nip] = 0x45
    pool[nip + 1] = 0
    store16(pool, nip + 2, total)
    store16(pool, nip + 4, ident)
    store16(pool, nip + 6, 0)
    pool[nip + 8] = ERROR_TTL
    pool[nip + 9] = ICMP_PROTO
    store16(pool, nip + 10, 0)
    for j in range(4):
        pool[nip + 12 + j] = (src >> (24 - 8 * j)) & 0xFF
        pool[nip + 16 + j] = pool[ip + 12 + j]
    store16(pool, nip + 10, ~ones_sum(pool, nip, 20) & 0xFFFF)
    pool[icmp] = icmp_type
    pool[icmp + 1] = code
    store16(pool, icmp + 2, 0)
    for j in range(4):
        pool[icmp + 4 + j] = 0
    if icmp_type == ICMP_REDIRECT:
        gw = int(meta[i].dst_ip)
        for j in range(4):
            pool[icmp + 4 + j] = (gw >> (24 - 8 * j)) & 0xFF
    elif icmp_type == ICMP_UNREACH and code == UNREACH_NEEDFRAG:
        store16(pool, icmp + 6, pmtu)
    # (Click's parameter-problem pointer comes from an annotation this dataplane
    # does not have: it stays 0.)
    even = (8 + xlen) & ~1
    s = ones_sum(pool, icmp, even)
    if (8 + xlen) & 1:
        s += int(pool[icmp + even]) << 8
        while s > 0xFFFF:
            s = (s & 0xFFFF) + (s >> 16)
    store16(pool, icmp + 2, ~s & 0xFFFF)
    meta[i].offset = nip
    meta[i].length = total
    meta[i].net_offset = nip
    meta[i].dst_ip = source
    counts[0] += 1
    return 0
