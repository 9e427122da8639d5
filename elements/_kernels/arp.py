"""Kernels of the ARP elements: answering requests (ARPResponder) and resolving
next hops (ARPQuerier), in place.

Offsets in an Ethernet frame carrying ARP for IPv4 over Ethernet (RFC 826):

    0 dst MAC   6 src MAC   12 ethertype 0x0806
    14 hardware type (1)   16 protocol type (0x0800)   18 hlen (6)   19 plen (4)
    20 op (1 request, 2 reply)
    22 sender MAC   28 sender IP   32 target MAC   38 target IP   42 end
"""

import numpy as np

from nfv import drops
from nfv.dataplane.packet import BUF_STRIDE, HEADROOM
from nfv.jit import kernel, kernel_call

from nfv.elements._kernels.packet import (NO_NET_HEADER, ip_header, load16, load32,
                                          packet_end, store16, store32)

ARP_FRAME = 42


@kernel
def arp_lookup(addr, networks, masks):
    """Index of the first entry whose prefix holds addr (entries are most specific
    first, so the first match is the longest), or -1."""
    for k in range(networks.shape[0]):
        if (addr & masks[k]) == networks[k]:
            return k
    return -1


@kernel
def arp_respond(pool, meta, i, networks, masks, macs, counts):
    """Click's ARPResponder, in place: an ARP request for one of our prefixes becomes
    the reply (output 0); anything else, malformed included, goes to output 1.

    The reply is 42 bytes, as Click makes it: Ethernet padding of the request goes.
    """
    start = int(meta[i].offset)
    if start + ARP_FRAME > packet_end(meta, i):
        return 1
    if (load16(pool, start + 12) != 0x0806 or load16(pool, start + 14) != 1
            or load16(pool, start + 16) != 0x0800 or pool[start + 18] != 6
            or pool[start + 19] != 4 or load16(pool, start + 20) != 1):
        return 1
    asked = load32(pool, start + 38)
    k = arp_lookup(asked, networks, masks)
    if k < 0:
        return 1
    asker_ip = load32(pool, start + 28)
    for j in range(6):
        asker_mac = pool[start + 22 + j]
        pool[start + j] = asker_mac           # Ethernet dst: the asker (its ARP sender MAC)
        pool[start + 32 + j] = asker_mac      # ARP target MAC
        ours = macs[6 * k + j]
        pool[start + 6 + j] = ours            # Ethernet src
        pool[start + 22 + j] = ours           # ARP sender MAC
    store16(pool, start + 20, 2)
    store32(pool, start + 28, asked)          # sender IP: the address asked about
    store32(pool, start + 38, asker_ip)       # target IP: the asker
    meta[i].length = ARP_FRAME
    counts[0] += 1
    return 0


# -- ARPQuerier ---------------------------------------------------------------------------
#
# The table is open addressing with linear probing over a power-of-two number of slots
# (at least twice ENTRY_CAPACITY, so a probe always meets an empty slot soon); IP 0 marks
# an empty slot (0.0.0.0 is never looked up).  Deleting shifts the following entries
# back (no tombstones), so the table never needs rebuilding.  Held packets live in a
# separate pool of CAPACITY hold buffers, each owned by at most one entry.
#
# elements/arp.py places STATIC entries with the same hash (slot_hash there): change both.

KNOWN = 1      # flags: the MAC address is valid (until TIMEOUT, unless STATIC)
STATIC = 2     # never expires, never replaced by a reply, never evicted
QUERIED = 4    # polled[] holds the time of the last query sent for it
Q_QUERIES = 0  # counts[]: queries sent
Q_RESPONSES = 1  # replies learnt from
Q_DROPS = 2    # packets lost (Click's drops)
Q_NOW = 3      # the newest `now` seen: the table handler's clock
Q_ENTRIES = 4  # entries in the table
QUERY_INTERVAL = 100_000_000  # ns: at most 10 queries a second for one address, as Click
HOLD_STRIDE = 1920            # bytes of one hold buffer
HOLD_MAX = 1920 - 14          # the longest packet held: it must fit a slot with its header
NO_NET_REL = 0xFFFF


@kernel
def slot_of(ip, mask):
    """Home slot of an address: Fibonacci hashing, the high bits folded in."""
    h = (ip * 0x9E3779B1) & 0xFFFFFFFF
    return (h ^ (h >> 15)) & mask


@kernel
def arp_find(ips, ip):
    """Slot of ip, or -1 - (the empty slot where it would go); -1 - size if none is empty."""
    size = ips.shape[0]
    mask = size - 1
    k = slot_of(ip, mask)
    for _ in range(size):
        v = ips[k]
        if v == ip:
            return k
        if v == 0:
            return -1 - k
        k = (k + 1) & mask
    return -1 - size


@kernel
def arp_remove(k, ips, macs, flags, learnt, polled, hold):
    """Empty slot k and shift back the entries of its probe run that may move."""
    mask = ips.shape[0] - 1
    hole = k
    ips[hole] = 0
    n = hole
    for _ in range(ips.shape[0]):
        n = (n + 1) & mask
        v = ips[n]
        if v == 0:
            return
        home = slot_of(np.int64(v), mask)
        # the entry at n stays when its home lies cyclically in (hole, n]
        if hole <= n:
            stays = hole < home <= n
        else:
            stays = home > hole or home <= n
        if stays:
            continue
        ips[hole] = v
        for j in range(6):
            macs[6 * hole + j] = macs[6 * n + j]
        flags[hole] = flags[n]
        learnt[hole] = learnt[n]
        polled[hole] = polled[n]
        hold[hole] = hold[n]
        ips[n] = 0
        hole = n


@kernel
def arp_add(ip, t, ips, macs, flags, learnt, polled, hold, held_used, counts, capacity):
    """A new, unresolved entry for ip (not in the table); its slot, or -1 when the
    table is full of static entries.  A full table first loses its entry learnt
    longest ago (Click's ARPTable drops the oldest too), with its held packet."""
    if counts[Q_ENTRIES] >= capacity:
        victim = -1
        for k in range(ips.shape[0]):
            if ips[k] != 0 and (flags[k] & STATIC) == 0:
                if victim < 0 or learnt[k] < learnt[victim]:
                    victim = k
        if victim < 0:
            return -1
        s = int(hold[victim]) - 1
        if s >= 0:
            held_used[s] = 0
            counts[Q_DROPS] += 1
        arp_remove(victim, ips, macs, flags, learnt, polled, hold)
        counts[Q_ENTRIES] -= 1
    r = arp_find(ips, ip)
    if r >= 0:
        return r
    k = -1 - r
    if k >= ips.shape[0]:
        return -1
    ips[k] = ip
    for j in range(6):
        macs[6 * k + j] = 0
    flags[k] = 0
    learnt[k] = t
    polled[k] = 0
    hold[k] = 0
    counts[Q_ENTRIES] += 1
    return k


@kernel
def put_mac(pool, at, mac):
    for j in range(6):
        pool[at + j] = (mac >> (40 - 8 * j)) & 0xFF


@kernel
def mac_of(macs, k):
    mac = 0
    for j in range(6):
        mac = (mac << 8) | int(macs[6 * k + j])
    return mac


@kernel
def ether_push(pool, meta, i, dst_mac, my_eth, counts):
    """Click's push_mac_header: 14 bytes into the headroom, type IPv4 -> output 0."""
    if meta[i].offset % BUF_STRIDE < 14:
        counts[Q_DROPS] += 1
        return -drops.NO_HEADROOM
    meta[i].offset -= 14
    meta[i].length += 14
    start = int(meta[i].offset)
    put_mac(pool, start, dst_mac)
    put_mac(pool, start + 6, my_eth)
    store16(pool, start + 12, 0x0800)
    return 0


@kernel
def slot_room(pool, meta, i):
    """(first data byte of the packet's slot after the headroom, end of the slot)."""
    base = int(meta[i].offset) - int(meta[i].offset) % BUF_STRIDE
    return base + HEADROOM, min(base + BUF_STRIDE, pool.shape[0])


@kernel
def hold_packet(pool, meta, i, k, hold, held_used, held_len, held_dst, held_net, held_paint,
                held, counts):
    """Copy the packet into entry k's hold buffer (taking a free one if it has none);
    a packet held before for k is replaced (and counted as a drop).  False when the
    packet cannot be held (too long, or no hold buffer free)."""
    length = int(meta[i].length)
    if length > HOLD_MAX:
        return False
    s = int(hold[k]) - 1
    if s < 0:
        for c in range(held_used.shape[0]):
            if held_used[c] == 0:
                s = c
                break
        if s < 0:
            return False
        held_used[s] = 1
        hold[k] = s + 1
    else:
        counts[Q_DROPS] += 1
    start = int(meta[i].offset)
    at = s * HOLD_STRIDE
    for j in range(length):
        held[at + j] = pool[start + j]
    held_len[s] = length
    held_dst[s] = meta[i].dst_ip
    net = meta[i].net_offset
    rel = NO_NET_REL
    if net != NO_NET_HEADER and start <= int(net) < start + length:
        rel = int(net) - start
    held_net[s] = rel
    held_paint[s] = meta[i].paint
    return True


@kernel
def write_query(pool, meta, i, start, target_ip, dst_mac, my_ip, my_eth):
    """The 42-byte who-has for target_ip at pool[start] (Click makes it 42 bytes too)."""
    put_mac(pool, start, dst_mac)
    put_mac(pool, start + 6, my_eth)
    store16(pool, start + 12, 0x0806)
    store16(pool, start + 14, 1)
    store16(pool, start + 16, 0x0800)
    pool[start + 18] = 6
    pool[start + 19] = 4
    store16(pool, start + 20, 1)
    put_mac(pool, start + 22, my_eth)
    store32(pool, start + 28, my_ip)
    put_mac(pool, start + 32, 0)
    store32(pool, start + 38, target_ip)
    meta[i].offset = start
    meta[i].length = ARP_FRAME
    meta[i].net_offset = NO_NET_HEADER
    meta[i].dst_ip = 0
    meta[i].paint = 0


@kernel
def query_allowed(k, flags, polled, t):
    if (flags[k] & QUERIED) == 0:
        return True
    since = t - np.int64(polled[k])
    return since >= QUERY_INTERVAL or since < 0  # a clock gone back does not block queries


# The slow paths (an address to resolve, a renewal poll, a reply) are compiled once
# and called: inlined at every call site of a pipeline they cost a minute of compile
# time each.  The common case, a fresh known address, stays inline in arp_query.
@kernel_call
def arp_ip(pool, meta, i, ips, macs, flags, learnt, polled, hold, held_used, held_len,
           held_dst, held_net, held_paint, held, counts, t, my_ip, my_eth, bcast, capacity,
           timeout, poll_timeout, broadcast_poll, query_port):
    """Input 0: an IP packet to its next hop's Ethernet address, or into a query."""
    dst = np.int64(meta[i].dst_ip)
    if dst == 0:
        # no annotation: the IP header's destination (the marked header, else the data)
        ip = ip_header(meta, i)
        if ip < 0:
            ip = int(meta[i].offset)
        if ip + 20 > packet_end(meta, i):
            counts[Q_DROPS] += 1
            return -drops.TOO_SHORT
        dst = np.int64(load32(pool, ip + 16))
        if dst == 0:
            counts[Q_DROPS] += 1
            return -drops.NO_ROUTE
    if dst == 0xFFFFFFFF or dst == bcast:
        return ether_push(pool, meta, i, 0xFFFFFFFFFFFF, my_eth, counts)
    if (dst & 0xF0000000) == 0xE0000000:
        # RFC 1112 6.4: 01:00:5e and the low 23 bits of the group
        return ether_push(pool, meta, i, 0x01005E000000 | (dst & 0x7FFFFF), my_eth, counts)
    k = arp_find(ips, dst)
    if k >= 0 and (flags[k] & KNOWN) != 0:
        age = t - np.int64(learnt[k])
        static = (flags[k] & STATIC) != 0
        if static or timeout == 0 or age <= timeout:
            mac = mac_of(macs, k)
            if (poll_timeout > 0 and not static and age >= poll_timeout and hold[k] == 0
                    and query_allowed(k, flags, polled, t)):
                # Renewal poll: this packet's buffer carries it, the packet waits for the
                # reply (no buffer to spare for a second packet).
                first, limit = slot_room(pool, meta, i)
                if first + ARP_FRAME <= limit and hold_packet(
                        pool, meta, i, k, hold, held_used, held_len, held_dst, held_net,
                        held_paint, held, counts):
                    polled[k] = t
                    flags[k] |= QUERIED
                    write_query(pool, meta, i, first, dst,
                                0xFFFFFFFFFFFF if broadcast_poll else mac, my_ip, my_eth)
                    counts[Q_QUERIES] += 1
                    return query_port
            return ether_push(pool, meta, i, mac, my_eth, counts)
    if k < 0:
        k = arp_add(dst, t, ips, macs, flags, learnt, polled, hold, held_used, counts, capacity)
        if k < 0:
            counts[Q_DROPS] += 1
            return -drops.TABLE_FULL
    kept = hold_packet(pool, meta, i, k, hold, held_used, held_len, held_dst, held_net,
                       held_paint, held, counts)
    first, limit = slot_room(pool, meta, i)
    if query_allowed(k, flags, polled, t) and first + ARP_FRAME <= limit:
        polled[k] = t
        flags[k] |= QUERIED
        write_query(pool, meta, i, first, dst, 0xFFFFFFFFFFFF, my_ip, my_eth)
        counts[Q_QUERIES] += 1
        if not kept:
            counts[Q_DROPS] += 1  # the packet became the query and is gone
        return query_port
    if kept:
        return -drops.ARP_HELD
    counts[Q_DROPS] += 1
    return -drops.TABLE_FULL


@kernel_call
def arp_reply(pool, meta, i, ips, macs, flags, learnt, polled, hold, held_used, held_len,
              held_dst, held_net, held_paint, held, counts, t, my_eth, capacity):
    """Input 1: learn from an ARP reply; its buffer carries out the packet held for
    the address, if any (output 0)."""
    start = int(meta[i].offset)
    if start + ARP_FRAME > packet_end(meta, i):
        counts[Q_DROPS] += 1
        return -drops.TOO_SHORT
    if (load16(pool, start + 12) != 0x0806 or load16(pool, start + 14) != 1
            or load16(pool, start + 16) != 0x0800 or pool[start + 18] != 6
            or pool[start + 19] != 4 or load16(pool, start + 20) != 2
            or (pool[start + 22] & 1) != 0):
        counts[Q_DROPS] += 1
        return -drops.NOT_ARP_REQUEST
    sender = np.int64(load32(pool, start + 28))
    if sender == 0:
        counts[Q_DROPS] += 1
        return -drops.NOT_ARP_REQUEST
    counts[Q_RESPONSES] += 1
    k = arp_find(ips, sender)
    if k < 0:
        k = arp_add(sender, t, ips, macs, flags, learnt, polled, hold, held_used, counts,
                    capacity)
        if k < 0:
            return -drops.ARP_ABSORBED
    if (flags[k] & STATIC) != 0:
        return -drops.ARP_ABSORBED  # a static entry is what the operator said it is
    for j in range(6):
        macs[6 * k + j] = pool[start + 22 + j]
    flags[k] |= KNOWN
    learnt[k] = t
    s = int(hold[k]) - 1
    if s < 0:
        return -drops.ARP_ABSORBED
    first, limit = slot_room(pool, meta, i)
    length = int(held_len[s])
    if first + 14 + length > limit:
        return -drops.ARP_ABSORBED  # (only a pool cut short has no room; it stays held)
    mac = mac_of(macs, k)
    put_mac(pool, first, mac)
    put_mac(pool, first + 6, my_eth)
    store16(pool, first + 12, 0x0800)
    at = s * HOLD_STRIDE
    for j in range(length):
        pool[first + 14 + j] = held[at + j]
    meta[i].offset = first
    meta[i].length = 14 + length
    rel = int(held_net[s])
    meta[i].net_offset = NO_NET_HEADER if rel == NO_NET_REL else first + 14 + rel
    meta[i].dst_ip = held_dst[s]
    meta[i].paint = held_paint[s]
    held_used[s] = 0
    hold[k] = 0
    return 0


@kernel_call
def arp_query(pool, meta, i, ips, macs, flags, learnt, polled, hold, held_used, held_len,
              held_dst, held_net, held_paint, held, counts, now, port, my_ip, my_eth, bcast,
              capacity, timeout, poll_timeout, broadcast_poll, query_port):
    """Click's ARPQuerier, in place: input 0 IP packets, input 1 ARP replies."""
    counts[Q_NOW] = now
    t = np.int64(now)
    if port == 0:
        dst = np.int64(meta[i].dst_ip)
        if dst != 0 and dst != bcast and (dst & 0xF0000000) < 0xE0000000:
            k = arp_find(ips, dst)
            if k >= 0 and (flags[k] & KNOWN) != 0:
                age = t - np.int64(learnt[k])
                if (flags[k] & STATIC) != 0 or (
                        (timeout == 0 or age <= timeout)
                        and (poll_timeout == 0 or age < poll_timeout)):
                    return ether_push(pool, meta, i, mac_of(macs, k), my_eth, counts)
    if port == 1:
        return arp_reply(pool, meta, i, ips, macs, flags, learnt, polled, hold, held_used,
                         held_len, held_dst, held_net, held_paint, held, counts, t, my_eth,
                         capacity)
    return arp_ip(pool, meta, i, ips, macs, flags, learnt, polled, hold, held_used, held_len,
                  held_dst, held_net, held_paint, held, counts, t, my_ip, my_eth, bcast,
                  capacity, timeout, poll_timeout, broadcast_poll, query_port)
