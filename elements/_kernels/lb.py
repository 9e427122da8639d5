"""IPLoadBalancer's kernel: a virtual IP over backends, Maglev for new flows and the
shared flow table (flows.py) to keep established flows on their backend.

Input 0 carries clients' packets to VIP:PORT.  A packet whose flow has a mapping
is rewritten by it; otherwise the backend is `maglev[backend_hash(flow) % M]`
(M = the table's size, prime) and a mapping is made: (client -> VIP:PORT) =>
(client -> backend), output 0, and its reply (backend -> client) => (VIP:PORT ->
client), output 1.  Input 1 carries the backends' replies: only mapped ones pass.
ICMP errors quoting a mapped flow are translated by flows.translate_icmp_error on
either input (a client-side "fragmentation needed" reaches the backend, rewritten).
Everything else returns OTHER (output 2) when that output is connected, else a
drop reason; either way it is counted.

backend_hash is not flows.flow_hash: the backend a flow gets must not correlate
with the slot its mapping lands in (nor leak the table's probe order to clients).
"""

from nfv import drops
from nfv.jit import kernel, kernel_call
from nfv.elements._kernels import flows
from nfv.elements._kernels.flows import (
    I, ICMP, LOW32, SWEEP_FULL, SWEEP_NEW, TCP, TIME_SHIFT, U, add_mapping, datagram,
    flow_of, get16, get32, is_icmp_error, key_words, load_slot, lookup_live, mark_done,
    note_slot, probe_slot, rewrite_hit, rewrite_packet, slot_output, sweep,
    translate_icmp_error)

OTHER = 2          # the output for everything the balancer does not carry

# counts[] beyond the flow table's own (flows.NCOUNTS)
NOT_VIP = flows.NCOUNTS       # input 0 packets not for VIP:PORT (any protocol or port)
NO_BACKEND = flows.NCOUNTS + 1  # new flows with no backend to go to
NCOUNTS = flows.NCOUNTS + 2

# params[] beyond the flow table's own (flows.NPARAMS)
NBACKENDS = flows.NPARAMS     # backends in use: the first NBACKENDS of backends[]
NPARAMS = flows.NPARAMS + 1


@kernel
def backend_hash(saddr, daddr, sport, dport, proto):
    """A 64-bit hash of the 5-tuple (two rounds of MurmurHash3's finaliser, with
    constants other than flow_hash's)."""
    h = ((U(saddr) << U(32)) | U(daddr)) ^ U(0x243F6A8885A308D3)
    h ^= h >> U(33)
    h *= U(0xFF51AFD7ED558CCD)
    h ^= h >> U(33)
    h ^= ((U(proto) << U(32)) | (U(sport) << U(16)) | U(dport)) * U(0x9E3779B97F4A7C15)
    h *= U(0xC4CEB9FE1A85EC53)
    h ^= h >> U(33)
    h *= U(0xFF51AFD7ED558CCD)
    h ^= h >> U(33)
    return h


@kernel
def other(counts, index, reason, has_other):
    counts[index] += U(1)
    if has_other:
        return OTHER
    return -reason


@kernel_call
def balance(pool, meta, i, slots, counts, params, maglev, backends, conns, now, in_port,
            mask, vip, vport, protos, has_other):
    """Map or rewrite one packet; returns output 0 (to a backend), 1 (to a client),
    OTHER, or -reason."""
    ip, hlen, end = datagram(pool, meta, i)
    if ip < 0:
        return -drops.NO_IP_HEADER
    now32 = I((U(now) >> U(TIME_SHIFT)) & LOW32)
    daddr = get32(pool, ip + 16)
    if in_port == 0 and daddr != vip:
        return other(counts, NOT_VIP, drops.NOT_VIP, has_other)
    proto = I(pool[ip + 9])
    first = (get16(pool, ip + 6) & 0x1FFF) == 0
    if proto == ICMP and first and ip + hlen + 8 <= end and is_icmp_error(I(pool[ip + hlen])):
        r = translate_icmp_error(pool, ip, hlen, end, slots, mask, counts, params, now32,
                                 protos)
        if r < 0 and has_other:
            return OTHER  # (nothing was rewritten; bad_quote_drops counted it)
        if r >= 0:
            meta[i].dst_ip = get32(pool, ip + 16)
        return r
    l4, proto, sport, dport, ok = flow_of(pool, ip, hlen, end, protos)
    if in_port == 0 and (not ok or dport != vport):
        if (proto == TCP and (protos & 1) != 0) or (proto == flows.UDP and (protos & 2) != 0):
            if not ok:  # to the VIP, but a later fragment or a cut header: no ports to map
                return other(counts, flows.OTHER_DROPS, drops.NOT_REWRITABLE, has_other)
        return other(counts, NOT_VIP, drops.NOT_VIP, has_other)
    if not ok:
        return other(counts, flows.OTHER_DROPS, drops.NOT_REWRITABLE, has_other)
    saddr = get32(pool, ip + 12)
    k0, k1 = key_words(saddr, daddr, sport, dport, proto)
    s = lookup_live(slots, mask, counts, params, now32, k0, k1)
    if s >= 0 and slot_output(slots, s) != in_port:
        s = -1  # a client's flow arriving from the backends' side, or the reverse
    if s < 0:
        if in_port != 0:
            return other(counts, flows.NOMAP_DROPS, drops.NO_MAPPING, has_other)
        n = I(params[NBACKENDS])
        if n == 0:
            counts[NO_BACKEND] += U(1)
            return -drops.NO_BACKEND
        sweep(slots, mask, counts, params, now32, SWEEP_NEW)
        if counts[flows.SIZE] >= params[flows.CAPACITY]:
            sweep(slots, mask, counts, params, now32, SWEEP_FULL)
            if counts[flows.SIZE] >= params[flows.CAPACITY]:
                counts[flows.FULL_DROPS] += U(1)
                return -drops.TABLE_FULL
        b = I(maglev[I(backend_hash(saddr, daddr, sport, dport, proto)
                       % U(maglev.shape[0]))])
        if b >= n:
            b = 0  # never: a table is rebuilt with its backends; but never read past them
        bw = backends[b]
        baddr = I(bw >> U(16))
        bport = I(bw & U(0xFFFF))
        s = add_mapping(slots, mask, counts, now32, proto, saddr, daddr, sport, dport,
                        saddr, baddr, sport, bport, 0, 1)
        conns[b] += U(1)
    w2 = slots[4 * s + 2]
    w3 = slots[4 * s + 3]
    rewrite_packet(pool, ip, l4, proto, I(w2 >> U(32)), I(w2 & LOW32),
                   I(w3 >> U(48)), I((w3 >> U(32)) & U(0xFFFF)))
    if proto == TCP and (pool[l4 + 13] & 0x05) != 0:
        mark_done(slots, mask, s, now32)
    meta[i].dst_ip = I(w2 & LOW32)  # next-hop lookups after us see the new destination
    return in_port


@kernel
def balance_packet(pool, meta, i, slots, counts, params, maglev, backends, conns, now, in_port,
                   mask, vip, vport, protos, has_other):
    """IPLoadBalancer's kernel.  Inline: a TCP/UDP packet of a mapped flow arriving on
    the input its mapping came from (flows.rewrite_hit); everything else is one call to
    balance."""
    out = rewrite_hit(pool, meta, i, slots, params, now, mask, protos, True, in_port)
    if out >= 0:
        return out
    return balance(pool, meta, i, slots, counts, params, maglev, backends, conns, now,
                   in_port, mask, vip, vport, protos, has_other)


@kernel
def warm(pool, meta, i, slots, counts, params, maglev, backends, conns, mask):
    """IPLoadBalancer's first warm-up stage: the flow table's (flows.note_slot)."""
    return note_slot(pool, meta, i, slots, mask)


@kernel
def warm_load(pool, meta, i, slots, counts, params, maglev, backends, conns):
    """IPLoadBalancer's second warm-up stage (flows.load_slot)."""
    return load_slot(meta, i, slots)


@kernel
def warm_probe(pool, meta, i, slots, counts, params, maglev, backends, conns):
    """IPLoadBalancer's third warm-up stage (flows.probe_slot)."""
    return probe_slot(meta, i, slots)
