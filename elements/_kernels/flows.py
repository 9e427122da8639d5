"""The flow table the rewriters (NAT) and the load balancer share, and their packet kernels.

Design note: nfv/tables/FLOWS.md.  In short: one open-addressing hash table
(linear probing, 2^k slots of 32 bytes, at most a quarter full) holds two keys
per mapping, the packet's flow and its reply flow; each slot carries the whole
rewritten tuple, its output and its last-seen time, so a packet's lookup and
rewrite touch one cache line.  A key's home is the first slot of a 64-byte line
(its hash with the low bit cleared), so a probe starts at a line's start.
Slot words (uint64):

    w0  key: source address << 32 | destination address
    w1  VALID (bit 63) | flags << 48 | output << 40 | protocol << 32
        | source port << 16 | destination port        (key: VALID and bits 0-39)
    w2  new source address << 32 | new destination address
    w3  new source port << 48 | new destination port << 32 | last seen (time units)

The reply slot's key is the forward slot's rewritten tuple reversed, so either
slot finds its partner by a lookup (no pointers to fix when slots move).
The table's operations are compiled as calls (`kernel_call`), not inlined at
Numba-IR level into the pipeline: inlined, one rewriter took minutes to compile.

Mappings expire lazily: a lookup that finds a stale mapping deletes it, and
each new flow sweeps a few slots (a clock hand) so idle mappings are reclaimed
before the table fills.  For ICMP echo the identifier plays the source port in
requests and the destination port in replies.
"""
import numpy as np

from nfv.jit import kernel, kernel_call
from nfv.prefetch import prefetch

from nfv import drops
from nfv.elements._kernels.packet import (NO_NET_HEADER, ip_header, load16, load32,
                                          packet_end, store16, store32)

U = np.uint64
I = np.int64  # (int() of a uint64 stays unsigned in Numba, and uint64 + int64 is a float)
VALID = U(1 << 63)
KEY_BITS = U((1 << 63) | ((1 << 40) - 1))   # VALID and the key fields of w1
LOW32 = U(0xFFFFFFFF)
OUT_SHIFT = U(40)
FLAG_SHIFT = U(48)
FLAG_DONE = 1          # a FIN or RST was seen: the mapping times out sooner
FLAG_REPLY = 2         # the reply flow's slot (tables list mappings by their forward slot)
TIME_SHIFT = 20        # time unit: 2**20 ns (1.05 ms); 32 bits of it last 52 days

TCP = 6
UDP = 17
ICMP = 1
ICMP_ECHO_REPLY = 0
ICMP_ECHO = 8

# counts[] of a flow table (the element's `counts` state array)
SIZE = 0          # live mappings
CREATED = 1       # mappings made
EXPIRED = 2       # mappings removed after their timeout
HAND = 3          # the sweep's next slot
FULL_DROPS = 4    # new flows dropped: table at capacity
PORT_DROPS = 5    # new flows dropped: no free port in the pattern's range
NOMAP_DROPS = 6   # packets with no mapping whose input makes none
QUOTE_DROPS = 7   # ICMP errors quoting a cut header or an unmapped flow
ICMP_TRANSLATED = 8  # ICMP errors rewritten for a mapped flow
OTHER_DROPS = 9   # not rewritable (other protocol, later fragment, short header)
NCOUNTS = 10

# params[]: timeouts in time units, and the mapping capacity
TCP_TIMEOUT = 0
TCP_DONE_TIMEOUT = 1
UDP_TIMEOUT = 2
CAPACITY = 3
NPARAMS = 4

# specs[] rows, one per input: kind, a, b, cursor
SPEC_WIDTH = 4
SPEC_DROP = 0
SPEC_PASS = 1      # a: output
SPEC_KEEP = 2      # a: forward output, b: reply output
SPEC_PATTERNS = 3  # a: first pattern row, b: number of patterns (round robin over them)

# patterns[] rows: saddr, daddr, sport_lo, sport_hi, dport, flags, outputs, port cursor
PAT_WIDTH = 8
PAT_SADDR = 1      # flags: which fields the pattern sets
PAT_SPORT = 2
PAT_DADDR = 4
PAT_DPORT = 8

SWEEP_NEW = 2      # slots the clock hand looks at per new flow
SWEEP_FULL = 64    # ... and when the table is at capacity
MAX_PORT_TRIES = 1024


@kernel
def get16(pool, at):
    """load16 as a signed int: Numba types it uint64, and mixing that with int64 makes floats."""
    return I(load16(pool, at))


@kernel
def get32(pool, at):
    return I(load32(pool, at))


# -- the hash table ----------------------------------------------------------------------


@kernel
def flow_hash(k0, k1):
    h = (k0 * U(0x9E3779B97F4A7C15)) ^ (k1 * U(0xC2B2AE3D27D4EB4F))
    h ^= h >> U(29)
    h *= U(0xBF58476D1CE4E5B9)
    h ^= h >> U(32)
    return h


@kernel
def key_words(saddr, daddr, sport, dport, proto):
    """The two key words (w0, w1 without flags and output) of a flow."""
    k0 = (U(saddr) << U(32)) | U(daddr)
    k1 = VALID | (U(proto) << U(32)) | (U(sport) << U(16)) | U(dport)
    return k0, k1


@kernel
def home_of(k0, k1, mask):
    """A key's home slot: the first of its 64-byte line (two slots), so a probe
    starts at a line's start and one prefetch a key brings its slot in."""
    return I(flow_hash(k0, k1) & U(mask ^ 1))


@kernel
def find(slots, mask, k0, k1):
    """The slot holding key (k0, k1), or -1."""
    s = home_of(k0, k1, mask)
    while True:
        w1 = slots[4 * s + 1]
        if w1 == U(0):
            return -1
        if (w1 & KEY_BITS) == k1 and slots[4 * s] == k0:
            return s
        s = (s + 1) & mask


@kernel_call
def place(slots, mask, k0, k1, w2, w3):
    """Store a key known to be absent in the first free slot of its probe run
    (k1 may carry the output and flags; they are not part of the key)."""
    s = home_of(k0, k1 & KEY_BITS, mask)
    while slots[4 * s + 1] != U(0):
        s = (s + 1) & mask
    slots[4 * s] = k0
    slots[4 * s + 1] = k1
    slots[4 * s + 2] = w2
    slots[4 * s + 3] = w3
    return s


@kernel_call
def remove(slots, mask, s):
    """Empty slot s, shifting later members of its probe run back (no tombstones)."""
    hole = s
    j = s
    while True:
        j = (j + 1) & mask
        w1 = slots[4 * j + 1]
        if w1 == U(0):
            break
        home = home_of(slots[4 * j], w1 & KEY_BITS, mask)
        # j may fill the hole unless its home lies cyclically in (hole, j]
        if hole <= j:
            stays = hole < home <= j
        else:
            stays = home > hole or home <= j
        if stays:
            continue
        for w in range(4):
            slots[4 * hole + w] = slots[4 * j + w]
        hole = j
    for w in range(4):
        slots[4 * hole + w] = U(0)


@kernel
def partner_key(slots, s):
    """The key of slot s's partner: its rewritten tuple, reversed."""
    w2 = slots[4 * s + 2]
    w3 = slots[4 * s + 3]
    k0 = (w2 >> U(32)) | (w2 << U(32))
    proto = (slots[4 * s + 1] >> U(32)) & U(0xFF)
    k1 = VALID | (proto << U(32)) | (((w3 >> U(32)) & U(0xFFFF)) << U(16)) | (w3 >> U(48))
    return k0, k1


@kernel
def timeout_of(w1, params):
    """The timeout (time units) of a slot whose w1 is given: TCP_TIMEOUT,
    TCP_DONE_TIMEOUT after a FIN or RST, else UDP_TIMEOUT."""
    if (w1 >> U(32)) & U(0xFF) == U(TCP):
        if (w1 >> FLAG_SHIFT) & U(FLAG_DONE) != U(0):
            return params[TCP_DONE_TIMEOUT]
        return params[TCP_TIMEOUT]
    return params[UDP_TIMEOUT]


@kernel
def age_of(slots, s, now32):
    return (U(now32) - (slots[4 * s + 3] & LOW32)) & LOW32


# A hit rewrites its slot's last-seen time only when that time is more than a
# sixteenth of the timeout old, so most hits leave their cache line clean (at 1M
# flows a dirty line is a write to memory per packet).  A slot therefore counts as
# fresh for its timeout plus that sixteenth: a mapping expires between 1 and 1 1/16
# timeouts after its last packet, never sooner.

@kernel
def fresh(slots, s, now32, params):
    """Whether slot s has seen a packet within its timeout (plus the slack)."""
    t = timeout_of(slots[4 * s + 1], params)
    return age_of(slots, s, now32) <= t + (t >> U(4))


@kernel_call
def alive(slots, mask, s, now32, params):
    """A mapping lives while either of its two slots is fresh."""
    if fresh(slots, s, now32, params):
        return True
    k0, k1 = partner_key(slots, s)
    p = find(slots, mask, k0, k1)
    return p >= 0 and fresh(slots, p, now32, params)


@kernel_call
def remove_mapping(slots, mask, s, counts):
    """Delete slot s and its partner (one mapping)."""
    k0 = slots[4 * s]
    k1 = slots[4 * s + 1] & KEY_BITS
    pk0, pk1 = partner_key(slots, s)
    p = find(slots, mask, pk0, pk1)
    if p >= 0:
        remove(slots, mask, p)
    s = find(slots, mask, k0, k1)  # the partner's removal may have moved it
    if s >= 0:
        remove(slots, mask, s)
    if counts[SIZE] > U(0):
        counts[SIZE] -= U(1)
    counts[EXPIRED] += U(1)


@kernel_call
def sweep(slots, mask, counts, params, now32, n):
    """Let the clock hand look at n slots, removing mappings that have expired."""
    hand = I(counts[HAND]) & mask
    for _ in range(n):
        if slots[4 * hand + 1] != U(0) and not alive(slots, mask, hand, now32, params):
            remove_mapping(slots, mask, hand, counts)
        else:
            hand = (hand + 1) & mask
    counts[HAND] = U(hand)


@kernel_call
def mark_done(slots, mask, s, now32):
    """A FIN or RST: both slots of the mapping take the shorter timeout, counted from
    now (slot s's time may be up to a sixteenth of the longer timeout old; its
    partner's is refreshed by its own next packet)."""
    slots[4 * s + 1] |= U(FLAG_DONE) << FLAG_SHIFT
    slots[4 * s + 3] = (slots[4 * s + 3] & ~LOW32) | U(now32)
    k0, k1 = partner_key(slots, s)
    p = find(slots, mask, k0, k1)
    if p >= 0:
        slots[4 * p + 1] |= U(FLAG_DONE) << FLAG_SHIFT


@kernel
def slot_output(slots, s):
    return I((slots[4 * s + 1] >> OUT_SHIFT) & U(0xFF))


@kernel_call
def add_mapping(slots, mask, counts, now32, proto, saddr, daddr, sport, dport,
                nsaddr, ndaddr, nsport, ndport, foutput, routput):
    """Install flow (saddr, sport -> daddr, dport) => (nsaddr, nsport -> ndaddr, ndport)
    and its reply flow; returns the forward slot."""
    t = U(now32)
    k0, k1 = key_words(saddr, daddr, sport, dport, proto)
    s = place(slots, mask, k0, k1 | (U(foutput) << OUT_SHIFT),
              (U(nsaddr) << U(32)) | U(ndaddr),
              (U(nsport) << U(48)) | (U(ndport) << U(32)) | t)
    r0, r1 = key_words(ndaddr, nsaddr, ndport, nsport, proto)
    place(slots, mask, r0, r1 | (U(routput) << OUT_SHIFT) | (U(FLAG_REPLY) << FLAG_SHIFT),
          (U(daddr) << U(32)) | U(saddr),
          (U(dport) << U(48)) | (U(sport) << U(32)) | t)
    counts[SIZE] += U(1)
    counts[CREATED] += U(1)
    # placing the reply may not move the forward slot (only removals move slots)
    return s


@kernel_call
def lookup_live(slots, mask, counts, params, now32, k0, k1):
    """The slot of a live mapping for key (k0, k1), refreshed; -1 if none.  A stale
    mapping met on the way is removed."""
    s = find(slots, mask, k0, k1)
    if s < 0:
        return -1
    t = timeout_of(slots[4 * s + 1], params)
    age = age_of(slots, s, now32)
    if age <= t + (t >> U(4)):  # fresh (see above)
        if age > (t >> U(4)):   # and worth a write
            slots[4 * s + 3] = (slots[4 * s + 3] & ~LOW32) | U(now32)
        return s
    if alive(slots, mask, s, now32, params):  # the other direction is still fresh
        slots[4 * s + 3] = (slots[4 * s + 3] & ~LOW32) | U(now32)
        return s
    remove_mapping(slots, mask, s, counts)
    return -1


# -- checksums ---------------------------------------------------------------------------


@kernel
def fold(s):
    """s (< 2**32) folded to 16 bits, one's-complement (two end-around carries suffice)."""
    s = (s & 0xFFFF) + (s >> 16)
    return (s & 0xFFFF) + (s >> 16)


@kernel
def word_change(old, new):
    """One's-complement sum of ~old + new for a 16-bit word (RFC 1624 eqn. 3 terms)."""
    return (~old & 0xFFFF) + new


@kernel
def addr_change(old, new):
    return (word_change(old >> 16, new >> 16) + word_change(old & 0xFFFF, new & 0xFFFF))


@kernel
def patch_checksum(pool, at, delta):
    """HC' = ~(~HC + delta) at pool[at] (RFC 1624 eqn. 3)."""
    hc = get16(pool, at)
    store16(pool, at, ~fold((~hc & 0xFFFF) + fold(delta)) & 0xFFFF)


# -- packets -----------------------------------------------------------------------------


@kernel_call
def rewrite_packet(pool, ip, l4, proto, nsaddr, ndaddr, nsport, ndport):
    """Write the new addresses and ports, patching the IP and L4 checksums.

    For ICMP echo the identifier is the source port in a request and the
    destination port in a reply; the ICMP checksum has no pseudo-header.
    """
    osaddr = get32(pool, ip + 12)
    odaddr = get32(pool, ip + 16)
    addr_delta = addr_change(osaddr, nsaddr) + addr_change(odaddr, ndaddr)
    # Compare the addresses, not the delta: a new address with the old one's
    # one's-complement sum (10.0.184.1 for 192.0.2.1) changes no checksum but must
    # still be written.
    if osaddr != nsaddr or odaddr != ndaddr:
        store32(pool, ip + 12, nsaddr)
        store32(pool, ip + 16, ndaddr)
        patch_checksum(pool, ip + 10, addr_delta)
    if proto == ICMP:
        new_id = nsport if pool[l4] == ICMP_ECHO else ndport
        old_id = get16(pool, l4 + 4)
        if old_id != new_id:
            store16(pool, l4 + 4, new_id)
            patch_checksum(pool, l4 + 2, word_change(old_id, new_id))
        return
    osport = get16(pool, l4)
    odport = get16(pool, l4 + 2)
    store16(pool, l4, nsport)
    store16(pool, l4 + 2, ndport)
    delta = addr_delta + word_change(osport, nsport) + word_change(odport, ndport)
    if proto == TCP:
        patch_checksum(pool, l4 + 16, delta)
    elif get16(pool, l4 + 6) != 0:  # a UDP checksum of 0 means none: keep it 0
        patch_checksum(pool, l4 + 6, delta)
        if get16(pool, l4 + 6) == 0:
            store16(pool, l4 + 6, 0xFFFF)  # RFC 768: a computed 0 is sent as all ones


@kernel
def datagram(pool, meta, i):
    """(ip, hlen, end) of packet i's marked IPv4 header, `end` cut to its total length
    (Ethernet padding is not part of the datagram); ip is -1 when there is no usable
    header (none marked, under 20 bytes, or a header length outside the datagram)."""
    ip = ip_header(meta, i)
    end = packet_end(meta, i)
    if ip < 0 or ip + 20 > end:
        return -1, 0, end
    hlen = (I(pool[ip]) & 0xF) * 4
    total = get16(pool, ip + 2)
    if ip + total < end:
        end = ip + total
    if hlen < 20 or ip + hlen > end:
        return -1, 0, end
    return ip, hlen, end


@kernel_call
def flow_of(pool, ip, hlen, end, protos):
    """(l4 offset, protocol, sport, dport, ok) of a packet the rewriter may map.

    ok is False for other protocols (per the `protos` bit mask: 1 TCP, 2 UDP,
    4 ICMP echo), later fragments, and L4 headers cut short.
    """
    proto = I(pool[ip + 9])
    l4 = ip + hlen
    if (get16(pool, ip + 6) & 0x1FFF) != 0:
        return l4, proto, 0, 0, False
    if proto == TCP and (protos & 1) != 0:
        if l4 + 20 > end:
            return l4, proto, 0, 0, False
        return l4, proto, get16(pool, l4), get16(pool, l4 + 2), True
    if proto == UDP and (protos & 2) != 0:
        if l4 + 8 > end:
            return l4, proto, 0, 0, False
        return l4, proto, get16(pool, l4), get16(pool, l4 + 2), True
    if proto == ICMP and (protos & 4) != 0 and l4 + 8 <= end:
        t = I(pool[l4])
        if t == ICMP_ECHO:
            return l4, proto, get16(pool, l4 + 4), 0, True
        if t == ICMP_ECHO_REPLY:
            return l4, proto, 0, get16(pool, l4 + 4), True
    return l4, proto, 0, 0, False


@kernel
def is_icmp_error(t):
    return t == 3 or t == 4 or t == 5 or t == 11 or t == 12


@kernel_call
def parse_quote(pool, ip, hlen, end, protos):
    """The flow an ICMP error quotes: (ok, q, ql4, qproto, qsaddr, qdaddr, qsport,
    qdport), q being the quoted IP header; ok is False for a quote cut short or of
    a protocol not mapped (per `protos`).  For an echo the identifier is qsport."""
    q = ip + hlen + 8
    if q + 20 > end:
        return False, q, 0, 0, 0, 0, 0, 0
    qhlen = (I(pool[q]) & 0xF) * 4
    qproto = I(pool[q + 9])
    ql4 = q + qhlen
    if pool[q] >> 4 != 4 or qhlen < 20 or ql4 + 4 > end:
        return False, q, ql4, qproto, 0, 0, 0, 0
    qsaddr = get32(pool, q + 12)
    qdaddr = get32(pool, q + 16)
    if qproto == ICMP:
        if (protos & 4) == 0 or ql4 + 8 > end or pool[ql4] != ICMP_ECHO:
            return False, q, ql4, qproto, qsaddr, qdaddr, 0, 0
        return True, q, ql4, qproto, qsaddr, qdaddr, get16(pool, ql4 + 4), 0
    if (qproto == TCP and (protos & 1) != 0) or (qproto == UDP and (protos & 2) != 0):
        return True, q, ql4, qproto, qsaddr, qdaddr, get16(pool, ql4), get16(pool, ql4 + 2)
    return False, q, ql4, qproto, qsaddr, qdaddr, 0, 0


@kernel_call
def rewrite_quote(pool, ip, q, ql4, qproto, qsaddr, qdaddr, qsport, qdport, a, b, ap, bp,
                  counts):
    """Rewrite an ICMP error whose quote (qsaddr:qsport -> qdaddr:qdport) becomes
    (b:bp -> a:ap): the quote, then the outer destination b; and when the host the
    quote was sent to complains itself, the outer source a (the address the other
    side knows it by); the router that complained otherwise stays.  Checksums: the
    quote's IP header checksum and the ICMP checksum are patched; the quoted L4
    checksum is left as is (it covers bytes the quote does not hold)."""
    icmp = q - 8
    icmp_delta = addr_change(qsaddr, b) + addr_change(qdaddr, a)
    qip_delta = icmp_delta
    store32(pool, q + 12, b)
    store32(pool, q + 16, a)
    old_qcsum = get16(pool, q + 10)
    patch_checksum(pool, q + 10, qip_delta)
    icmp_delta += word_change(old_qcsum, get16(pool, q + 10))
    if qproto == ICMP:
        store16(pool, ql4 + 4, bp)
        icmp_delta += word_change(qsport, bp)
    else:
        store16(pool, ql4, bp)
        store16(pool, ql4 + 2, ap)
        icmp_delta += word_change(qsport, bp) + word_change(qdport, ap)
    patch_checksum(pool, icmp + 2, icmp_delta)
    osaddr = get32(pool, ip + 12)
    odaddr = get32(pool, ip + 16)
    nsaddr = a if osaddr == qdaddr else osaddr
    store32(pool, ip + 12, nsaddr)
    store32(pool, ip + 16, b)
    patch_checksum(pool, ip + 10, addr_change(osaddr, nsaddr) + addr_change(odaddr, b))
    counts[ICMP_TRANSLATED] += U(1)


@kernel_call
def translate_icmp_error(pool, ip, hlen, end, slots, mask, counts, params, now32, protos):
    """An ICMP error about a mapped flow, rewritten as the mapping rewrites that flow's
    replies (rewrite_quote); returns the output, or -BAD_QUOTE.

    The error quotes a packet the mapping's other side sent (already rewritten by
    us); the quote's flow reversed is a reply key of the table.
    """
    ok, q, ql4, qproto, qsaddr, qdaddr, qsport, qdport = parse_quote(pool, ip, hlen, end,
                                                                     protos)
    if not ok:
        counts[QUOTE_DROPS] += U(1)
        return -drops.BAD_QUOTE
    # The quoted packet went out as (qsaddr:qsport -> qdaddr:qdport); the error comes
    # back like its reply, so the mapping's reply key is that flow reversed.
    if qproto == ICMP:
        k0, k1 = key_words(qdaddr, qsaddr, 0, qsport, qproto)
    else:
        k0, k1 = key_words(qdaddr, qsaddr, qdport, qsport, qproto)
    s = lookup_live(slots, mask, counts, params, now32, k0, k1)
    if s < 0:
        counts[QUOTE_DROPS] += U(1)
        return -drops.BAD_QUOTE
    w2 = slots[4 * s + 2]
    w3 = slots[4 * s + 3]
    # the reply rewrite maps (qdaddr, qsaddr, qdport, qsport) to (a, b, ap, bp)
    rewrite_quote(pool, ip, q, ql4, qproto, qsaddr, qdaddr, qsport, qdport,
                  I(w2 >> U(32)), I(w2 & LOW32), I(w3 >> U(48)), I((w3 >> U(32)) & U(0xFFFF)),
                  counts)
    return slot_output(slots, s)


@kernel_call
def pick_port(slots, mask, counts, params, now32, patterns, row, proto,
              nsaddr, ndaddr, ndport):
    """A source port from pattern row's range whose reply flow is not in use; -1 if none."""
    lo = I(patterns[row + 2])
    hi = I(patterns[row + 3])
    n = hi - lo + 1
    start = I(patterns[row + 7])
    tries = n if n < MAX_PORT_TRIES else MAX_PORT_TRIES
    for k in range(tries):
        port = lo + (start + k) % n
        if proto == ICMP:
            k0, k1 = key_words(ndaddr, nsaddr, 0, port, proto)
        else:
            k0, k1 = key_words(ndaddr, nsaddr, ndport, port, proto)
        if lookup_live(slots, mask, counts, params, now32, k0, k1) < 0:
            patterns[row + 7] = (start + k + 1) % n
            return port
    return -1


@kernel_call
def rewrite_slow(pool, meta, i, slots, counts, params, specs, patterns, now, in_port,
            mask, protos, track_tcp):
    """Everything `rewrite` does not do inline: new flows, stale mappings, ICMP
    errors, packets it does not rewrite."""
    ip, hlen, end = datagram(pool, meta, i)
    if ip < 0:
        return -drops.NO_IP_HEADER
    now32 = I((U(now) >> U(TIME_SHIFT)) & LOW32)
    l4, proto, sport, dport, ok = flow_of(pool, ip, hlen, end, protos)
    spec = SPEC_WIDTH * in_port
    kind = I(specs[spec])
    if not ok:
        if proto == ICMP and l4 + 8 <= end and is_icmp_error(I(pool[l4])) and \
                (get16(pool, ip + 6) & 0x1FFF) == 0:
            out = translate_icmp_error(pool, ip, hlen, end, slots, mask, counts, params,
                                       now32, protos)
            if out >= 0:
                meta[i].dst_ip = get32(pool, ip + 16)
            return out
        if kind == SPEC_PASS:
            return I(specs[spec + 1])
        counts[OTHER_DROPS] += U(1)
        return -drops.NOT_REWRITABLE
    saddr = get32(pool, ip + 12)
    daddr = get32(pool, ip + 16)
    k0, k1 = key_words(saddr, daddr, sport, dport, proto)
    s = lookup_live(slots, mask, counts, params, now32, k0, k1)
    if s < 0:
        if kind == SPEC_PASS:
            return I(specs[spec + 1])
        if kind == SPEC_DROP:
            counts[NOMAP_DROPS] += U(1)
            return -drops.NO_MAPPING
        sweep(slots, mask, counts, params, now32, SWEEP_NEW)
        if counts[SIZE] >= params[CAPACITY]:
            sweep(slots, mask, counts, params, now32, SWEEP_FULL)
            if counts[SIZE] >= params[CAPACITY]:
                counts[FULL_DROPS] += U(1)
                return -drops.TABLE_FULL
        picked = False  # a source port chosen by pick_port (its reply flow is known free)
        if kind == SPEC_KEEP:
            fout = I(specs[spec + 1])
            rout = I(specs[spec + 2])
            nsaddr, ndaddr, nsport, ndport = saddr, daddr, sport, dport
        else:
            npat = I(specs[spec + 2])
            pick = I(specs[spec + 3])
            specs[spec + 3] = (pick + 1) % npat
            row = PAT_WIDTH * (I(specs[spec + 1]) + pick)
            flags = I(patterns[row + 5])
            nsaddr = I(patterns[row]) if flags & PAT_SADDR else saddr
            ndaddr = I(patterns[row + 1]) if flags & PAT_DADDR else daddr
            ndport = I(patterns[row + 4]) if flags & PAT_DPORT else dport
            if proto == ICMP:
                ndport = 0
            outs = I(patterns[row + 6])
            fout = outs & 0xFF
            rout = outs >> 8
            if flags & PAT_SPORT:
                nsport = pick_port(slots, mask, counts, params, now32, patterns, row, proto,
                                   nsaddr, ndaddr, ndport)
                if nsport < 0:
                    counts[PORT_DROPS] += U(1)
                    return -drops.NO_PORT
                picked = True
            else:
                nsport = sport
        if not picked:
            # No port was picked: the reply flow must not be another mapping's already
            # (a kept flow that is some mapping's rewritten tuple, say).
            if proto == ICMP:
                rk0, rk1 = key_words(ndaddr, nsaddr, 0, nsport, proto)
            else:
                rk0, rk1 = key_words(ndaddr, nsaddr, ndport, nsport, proto)
            if lookup_live(slots, mask, counts, params, now32, rk0, rk1) >= 0:
                counts[PORT_DROPS] += U(1)
                return -drops.NO_PORT
        s = add_mapping(slots, mask, counts, now32, proto, saddr, daddr, sport, dport,
                        nsaddr, ndaddr, nsport, ndport, fout, rout)
    w2 = slots[4 * s + 2]
    w3 = slots[4 * s + 3]
    rewrite_packet(pool, ip, l4, proto, I(w2 >> U(32)), I(w2 & LOW32),
                   I(w3 >> U(48)), I((w3 >> U(32)) & U(0xFFFF)))
    if proto == TCP and track_tcp and (pool[l4 + 13] & 0x05) != 0:
        mark_done(slots, mask, s, now32)
    meta[i].dst_ip = I(w2 & LOW32)  # next-hop lookups after us see the new destination
    return slot_output(slots, s)


# Tables bigger than L2 are prefetched ahead (the element's `ahead` kernel: codegen
# calls it for the packet AHEAD places on while the pipeline works on this one):
# note_slot guesses the packet's forward key (before any header check, assuming
# Ethernet + IPv4: a wrong guess only fetches a useless line), notes its home slot in
# the packet's spare metadata and prefetches the home line, so the real pass finds
# it in cache and need not hash again.  (Hints left in packets that never reach the
# table are harmless: the drivers build every record afresh per batch.)

@kernel
def note_slot(pool, meta, i, slots, mask):
    at = I(meta[i].offset) + 14
    if at + 24 > pool.shape[0]:
        return 0
    hlen = (I(pool[at]) & 0xF) * 4
    if at + hlen + 4 > pool.shape[0]:
        return 0
    k0, k1 = key_words(get32(pool, at + 12), get32(pool, at + 16),
                       get16(pool, at + hlen), get16(pool, at + hlen + 2), I(pool[at + 9]))
    h = home_of(k0, k1, mask)
    meta[i].reserved1 = h + 1
    return prefetch(slots, 4 * h)


@kernel
def ahead_flow(pool, meta, i, slots, counts, params, specs, patterns, mask):
    """The rewriters' prefetch for a packet ahead (given every state array of the element)."""
    return note_slot(pool, meta, i, slots, mask)


@kernel
def rewrite_hit(pool, meta, i, slots, params, now, mask, protos, track_tcp, in_port):
    """The common case, inline: a first-fragment TCP or UDP packet (per `protos`)
    whose flow has a fresh mapping (sending to `in_port` when that is >= 0) is
    rewritten; returns the mapping's output, or -1 for everything else (the
    caller's slow path decides, touching nothing this did not).

    One body on purpose, calling only key_words and home_of (the table's own key
    and hash): every kernel it called would be inlined again, with its own callees,
    at every call site, and Numba's IR-level inlining cost ~2 s of compiling per
    rewriter input when it called its ~50 small helpers.  It is datagram,
    get16/get32, find, timeout_of and rewrite_packet above, written out (calling
    find instead measured 1-2 ns slower and 6 % longer to compile); test_nat checks
    it against scapy.
    """
    ip = I(meta[i].net_offset)
    end = I(meta[i].offset) + I(meta[i].length)
    if ip == I(NO_NET_HEADER) or ip + 20 > end:
        return -1
    hlen = (I(pool[ip]) & 0xF) * 4
    total = (I(pool[ip + 2]) << 8) | I(pool[ip + 3])
    if ip + total < end:
        end = ip + total  # Ethernet padding is not part of the datagram
    proto = I(pool[ip + 9])
    l4 = ip + hlen
    if hlen < 20 or ((I(pool[ip + 6]) & 0x1F) | I(pool[ip + 7])) != 0:
        return -1  # (a later fragment has no ports)
    if proto == TCP:
        if (protos & 1) == 0 or l4 + 20 > end:
            return -1
    elif proto == UDP:
        if (protos & 2) == 0 or l4 + 8 > end:
            return -1
    else:
        return -1
    saddr = ((I(pool[ip + 12]) << 24) | (I(pool[ip + 13]) << 16)
             | (I(pool[ip + 14]) << 8) | I(pool[ip + 15]))
    daddr = ((I(pool[ip + 16]) << 24) | (I(pool[ip + 17]) << 16)
             | (I(pool[ip + 18]) << 8) | I(pool[ip + 19]))
    sport = (I(pool[l4]) << 8) | I(pool[l4 + 1])
    dport = (I(pool[l4 + 2]) << 8) | I(pool[l4 + 3])
    k0, k1 = key_words(saddr, daddr, sport, dport, proto)
    # The home noted for this key when it was prefetched (note_slot): a guess made
    # before the headers were checked, or another table's, so only a place to start
    # looking; a wrong one at worst finds nothing, and rewrite_slow looks from the true home.
    # (A branch-free compare of the home line's two slots, as the balancer's four,
    # measured no faster here and made test_nat's config compile 28 % longer.)
    hint = I(meta[i].reserved1)
    if hint != 0:
        meta[i].reserved1 = 0
        s = (hint - 1) & (mask ^ 1)
    else:
        s = home_of(k0, k1, mask)
    while True:  # find, written out (calling it: slower, and longer to compile)
        w1 = slots[4 * s + 1]
        if w1 == U(0):
            return -1
        if (w1 & KEY_BITS) == k1 and slots[4 * s] == k0:
            break
        s = (s + 1) & mask
    out = I((w1 >> OUT_SHIFT) & U(0xFF))
    if in_port >= 0 and out != in_port:
        return -1
    # fresh, and refresh only when worth a write (see the note above `fresh`)
    if proto == TCP and (w1 >> FLAG_SHIFT) & U(FLAG_DONE) != U(0):
        t = params[TCP_DONE_TIMEOUT]
    elif proto == TCP:
        t = params[TCP_TIMEOUT]
    else:
        t = params[UDP_TIMEOUT]
    w3 = slots[4 * s + 3]
    now32 = (U(now) >> U(TIME_SHIFT)) & LOW32
    age = (now32 - (w3 & LOW32)) & LOW32
    if age > t + (t >> U(4)):
        return -1
    if age > (t >> U(4)):
        slots[4 * s + 3] = (w3 & ~LOW32) | now32
    w2 = slots[4 * s + 2]
    # rewrite_packet's TCP/UDP case: the new tuple, and both checksums patched
    # (RFC 1624 eqn. 3: add ~old + new for each changed 16-bit word, 0xFFFF - x
    # being ~x for 16 bits)
    nsaddr = I(w2 >> U(32))
    ndaddr = I(w2 & LOW32)
    nsport = I(w3 >> U(48))
    ndport = I((w3 >> U(32)) & U(0xFFFF))
    addrs = ((0xFFFF - (saddr >> 16)) + (0xFFFF - (saddr & 0xFFFF)) + (nsaddr >> 16)
             + (nsaddr & 0xFFFF) + (0xFFFF - (daddr >> 16)) + (0xFFFF - (daddr & 0xFFFF))
             + (ndaddr >> 16) + (ndaddr & 0xFFFF))
    ports = (0xFFFF - sport) + nsport + (0xFFFF - dport) + ndport
    for k in range(4):
        pool[ip + 12 + k] = (nsaddr >> (24 - 8 * k)) & 0xFF
        pool[ip + 16 + k] = (ndaddr >> (24 - 8 * k)) & 0xFF
    pool[l4] = nsport >> 8
    pool[l4 + 1] = nsport & 0xFF
    pool[l4 + 2] = ndport >> 8
    pool[l4 + 3] = ndport & 0xFF
    v = (0xFFFF - ((I(pool[ip + 10]) << 8) | I(pool[ip + 11]))) + addrs
    v = (v & 0xFFFF) + (v >> 16)
    v = 0xFFFF - ((v & 0xFFFF) + (v >> 16))
    pool[ip + 10] = v >> 8
    pool[ip + 11] = v & 0xFF
    c = l4 + 16 if proto == TCP else l4 + 6
    old = (I(pool[c]) << 8) | I(pool[c + 1])
    if proto == TCP or old != 0:  # a UDP checksum of 0 means none: keep it 0
        v = (0xFFFF - old) + addrs + ports
        v = (v & 0xFFFF) + (v >> 16)
        v = 0xFFFF - ((v & 0xFFFF) + (v >> 16))
        if v == 0 and proto == UDP:
            v = 0xFFFF  # RFC 768: a computed 0 is sent as all ones
        pool[c] = v >> 8
        pool[c + 1] = v & 0xFF
    if proto == TCP and track_tcp and (pool[l4 + 13] & 0x05) != 0:
        mark_done(slots, mask, s, I(now32))
    meta[i].dst_ip = ndaddr  # next-hop lookups after us see the new destination
    return out


@kernel
def rewrite(pool, meta, i, slots, counts, params, specs, patterns, now, in_port,
            mask, protos, track_tcp):
    """The IPRewriter family's kernel: map the packet's flow, or make a mapping as
    its input's spec says, and rewrite it; returns the mapping's output.

    Inline: a TCP/UDP packet whose mapping is fresh (rewrite_hit), the common case;
    everything else is one call to rewrite_slow.
    """
    out = rewrite_hit(pool, meta, i, slots, params, now, mask, protos, track_tcp, -1)
    if out >= 0:
        return out
    return rewrite_slow(pool, meta, i, slots, counts, params, specs, patterns, now, in_port,
                        mask, protos, track_tcp)
