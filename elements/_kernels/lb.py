"""IPLoadBalancer's kernel: a virtual IP over backends, Maglev for new flows and a
connection table (conns.py) to keep established flows on their backend.

Input 0 carries clients' packets to VIP:PORT.  A packet whose client (source
address, port, protocol) has a connection goes to its backend; otherwise the
backend is `maglev[backend_hash(flow) % M]` (M = the table's size, prime) and a
connection is made.  The destination becomes the backend's address and port;
output 0.  Input 1 carries the backends' replies: one whose destination is a
client with a connection to this very backend (its source) passes, its source
rewritten to VIP:PORT; output 1.  ICMP errors quoting a connection's packet are
translated on either input (a client-side "fragmentation needed" reaches the
backend, rewritten).  Everything else returns OTHER (output 2) when that output
is connected, else a drop reason; either way it is counted.

backend_hash is not the table's hash: the backend a flow gets must not correlate
with the entry it lands in (nor leak the table's probe order to clients).
"""

from nfv import drops
from nfv.jit import kernel, kernel_call
from nfv.elements._kernels import conns, flows
from nfv.elements._kernels.conns import DONE, KEY_BITS, TIME_MASK, UDP_BIT, VALID
from nfv.elements._kernels.flows import (I, ICMP, SWEEP_FULL, SWEEP_NEW, TCP, UDP, U,
                                         datagram, flow_of, get16, get32, is_icmp_error,
                                         parse_quote, rewrite_packet, rewrite_quote)
from nfv.elements._kernels.packet import NO_NET_HEADER

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
    constants other than the tables' hashes)."""
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
def translate_error(pool, ip, hlen, end, table, mask, counts, params, now29, in_port,
                    vip, vport, protos):
    """An ICMP error quoting a connection's packet, rewritten (flows.rewrite_quote);
    returns the output, or -BAD_QUOTE.

    On input 1 (from the backends' side) the quote is a client's packet as we sent
    it to its backend: it becomes the packet the client sent, to VIP:PORT, and the
    error goes to the client (from the VIP if the backend itself complained).  On
    input 0 the quote is a reply as we sent it to the client, from VIP:PORT: it
    becomes the backend's packet, and the error goes to the backend.
    """
    ok, q, ql4, qproto, qsaddr, qdaddr, qsport, qdport = parse_quote(pool, ip, hlen, end,
                                                                     protos)
    if ok and qproto != ICMP:
        if in_port == 0:
            kc, kv = conns.conn_key(qdaddr, qdport, qproto)
        else:
            kc, kv = conns.conn_key(qsaddr, qsport, qproto)
        s = conns.lookup_live(table, mask, counts, params, now29, kc, kv)
        if s >= 0:
            w0 = table[2 * s]
            baddr = I(table[2 * s + 1] >> U(32))
            bport = I(w0 & U(0xFFFF))
            if in_port == 0 and qsaddr == vip and qsport == vport:
                rewrite_quote(pool, ip, q, ql4, qproto, qsaddr, qdaddr, qsport, qdport,
                              qdaddr, baddr, qdport, bport, counts)
                return 0
            if in_port != 0 and qdaddr == baddr and qdport == bport:
                rewrite_quote(pool, ip, q, ql4, qproto, qsaddr, qdaddr, qsport, qdport,
                              vip, qsaddr, vport, qsport, counts)
                return 1
    counts[flows.QUOTE_DROPS] += U(1)
    return -drops.BAD_QUOTE


@kernel_call
def balance(pool, meta, i, table, counts, params, maglev, backends, given, now, in_port,
            mask, vip, vport, protos, has_other):
    """Map or rewrite one packet; returns output 0 (to a backend), 1 (to a client),
    OTHER, or -reason."""
    ip, hlen, end = datagram(pool, meta, i)
    if ip < 0:
        return -drops.NO_IP_HEADER
    now29 = conns.now_units(now)
    daddr = get32(pool, ip + 16)
    if in_port == 0 and daddr != vip:
        return other(counts, NOT_VIP, drops.NOT_VIP, has_other)
    proto = I(pool[ip + 9])
    first = (get16(pool, ip + 6) & 0x1FFF) == 0
    if proto == ICMP and first and ip + hlen + 8 <= end and is_icmp_error(I(pool[ip + hlen])):
        r = translate_error(pool, ip, hlen, end, table, mask, counts, params, now29, in_port,
                            vip, vport, protos)
        if r < 0 and has_other:
            return OTHER  # (nothing was rewritten; bad_quote_drops counted it)
        if r >= 0:
            meta[i].dst_ip = get32(pool, ip + 16)
        return r
    l4, proto, sport, dport, ok = flow_of(pool, ip, hlen, end, protos)
    if in_port == 0 and (not ok or dport != vport):
        if (proto == TCP and (protos & 1) != 0) or (proto == UDP and (protos & 2) != 0):
            if not ok:  # to the VIP, but a later fragment or a cut header: no ports to map
                return other(counts, flows.OTHER_DROPS, drops.NOT_REWRITABLE, has_other)
        return other(counts, NOT_VIP, drops.NOT_VIP, has_other)
    if not ok:
        return other(counts, flows.OTHER_DROPS, drops.NOT_REWRITABLE, has_other)
    saddr = get32(pool, ip + 12)
    if in_port == 0:
        kc, kv = conns.conn_key(saddr, sport, proto)
    else:
        kc, kv = conns.conn_key(daddr, dport, proto)
    s = conns.lookup_live(table, mask, counts, params, now29, kc, kv)
    if in_port != 0:
        if s < 0 or I(table[2 * s + 1] >> U(32)) != saddr or \
                I(table[2 * s] & U(0xFFFF)) != sport:
            return other(counts, flows.NOMAP_DROPS, drops.NO_MAPPING, has_other)
        rewrite_packet(pool, ip, l4, proto, vip, daddr, vport, dport)
    else:
        if s < 0:
            n = I(params[NBACKENDS])
            if n == 0:
                counts[NO_BACKEND] += U(1)
                return -drops.NO_BACKEND
            conns.sweep(table, mask, counts, params, now29, SWEEP_NEW)
            if counts[flows.SIZE] >= params[flows.CAPACITY]:
                conns.sweep(table, mask, counts, params, now29, SWEEP_FULL)
                if counts[flows.SIZE] >= params[flows.CAPACITY]:
                    counts[flows.FULL_DROPS] += U(1)
                    return -drops.TABLE_FULL
            b = I(maglev[I(backend_hash(saddr, daddr, sport, dport, proto)
                           % U(maglev.shape[0]))])
            if b >= n:
                b = 0  # never: a table is rebuilt with its backends; but never read past them
            bw = backends[b]
            s = conns.add(table, mask, counts, now29, saddr, sport, proto,
                          I(bw >> U(16)), I(bw & U(0xFFFF)))
            given[b] += U(1)
        baddr = I(table[2 * s + 1] >> U(32))
        rewrite_packet(pool, ip, l4, proto, saddr, baddr, sport, I(table[2 * s] & U(0xFFFF)))
    if proto == TCP and (pool[l4 + 13] & 0x05) != 0:
        conns.mark_done(table, s, now29)
    meta[i].dst_ip = get32(pool, ip + 16)  # next-hop lookups after us see the new destination
    return in_port


@kernel
def balance_hit(pool, meta, i, table, params, now, mask, vip, vport, protos, in_port):
    """The common case, inline: a first-fragment TCP or UDP packet of a live
    connection: a client's to VIP:PORT on input 0, or its backend's reply on input 1.
    Rewrites it and returns in_port; -1 for everything else (balance decides,
    finding nothing here changed).

    One body, as flows.rewrite_hit and for its reasons: conns.find, timeout_of and
    flows.rewrite_packet written out (each kernel called here is inlined again, with
    its callees, at every call site).
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
        kv = VALID
    elif proto == UDP:
        if (protos & 2) == 0 or l4 + 8 > end:
            return -1
        kv = VALID | UDP_BIT
    else:
        return -1
    # The side the balancer rewrites (the destination of a client's packet, the
    # source of a reply) and the client's side, which keys the connection.
    at = ip + 16 if in_port == 0 else ip + 12
    pat = l4 + 2 if in_port == 0 else l4
    cat = ip + 12 if in_port == 0 else ip + 16
    cpat = l4 if in_port == 0 else l4 + 2
    oaddr = ((I(pool[at]) << 24) | (I(pool[at + 1]) << 16)
             | (I(pool[at + 2]) << 8) | I(pool[at + 3]))
    oport = (I(pool[pat]) << 8) | I(pool[pat + 1])
    if in_port == 0 and (oaddr != vip or oport != vport):
        return -1
    caddr = ((I(pool[cat]) << 24) | (I(pool[cat + 1]) << 16)
             | (I(pool[cat + 2]) << 8) | I(pool[cat + 3]))
    cport = (I(pool[cpat]) << 8) | I(pool[cpat + 1])
    kc = (U(caddr) << U(16)) | U(cport)
    # The home noted for this key when it was prefetched (conns.note_home): a guess made
    # before the headers were checked, or another element's hint, so only a place to
    # start looking; a wrong one finds nothing and balance looks again from the true home.
    hint = I(meta[i].reserved1)
    if hint != 0:
        meta[i].reserved1 = 0
        h = (hint - 1) & (mask & ~(conns.LINE - 1))
    else:
        h = conns.home_of(kc, kv, mask)
    # conns.find, written out: the home line's four entries compared without branches
    # (where in its line a key sits is random, and a branch per entry mispredicted),
    # then the rest of the run for the few keys a full line pushed past it.
    # bit k of m: entry h + k holds the client (at most one entry per protocol does)
    m = (I((table[2 * h] >> U(16)) == kc) | (I((table[2 * h + 2] >> U(16)) == kc) << 1)
         | (I((table[2 * h + 4] >> U(16)) == kc) << 2)
         | (I((table[2 * h + 6] >> U(16)) == kc) << 3))
    s = h + ((conns.LOWEST_BIT >> (2 * m)) & 3)
    if m == 0:  # not in its home line: the rest of the run (0.5 % of keys)
        s = h + conns.LINE
        while True:
            w1 = table[2 * (s & mask) + 1]
            if w1 == U(0):
                return -1
            if (w1 & KEY_BITS) == kv and (table[2 * (s & mask)] >> U(16)) == kc:
                break
            s += 1
        s &= mask
    elif (table[2 * s + 1] & KEY_BITS) != kv:
        return -1  # the client's connection of the other protocol: balance finds this one
    w1 = table[2 * s + 1]
    baddr = I(w1 >> U(32))
    bport = I(table[2 * s] & U(0xFFFF))
    if in_port == 0:
        naddr = baddr
        nport = bport
    else:
        if oaddr != baddr or oport != bport:
            return -1  # a reply from another backend than the connection's
        naddr = vip
        nport = vport
    # fresh, and refreshed only when worth a write (conns.fresh)
    if kv != VALID:
        t = params[flows.UDP_TIMEOUT]
    elif w1 & DONE != U(0):
        t = params[flows.TCP_DONE_TIMEOUT]
    else:
        t = params[flows.TCP_TIMEOUT]
    now29 = (U(now) >> U(flows.TIME_SHIFT)) & TIME_MASK
    age = (now29 - (w1 & TIME_MASK)) & TIME_MASK
    if age > t + (t >> U(4)):
        return -1
    if age > (t >> U(4)):
        table[2 * s + 1] = (w1 & ~TIME_MASK) | now29
    # flows.rewrite_packet's TCP/UDP case for one address and port (RFC 1624 eqn. 3:
    # add ~old + new for each changed 16-bit word, 0xFFFF - x being ~x for 16 bits)
    addrs = ((0xFFFF - (oaddr >> 16)) + (0xFFFF - (oaddr & 0xFFFF)) + (naddr >> 16)
             + (naddr & 0xFFFF))
    for k in range(4):
        pool[at + k] = (naddr >> (24 - 8 * k)) & 0xFF
    pool[pat] = nport >> 8
    pool[pat + 1] = nport & 0xFF
    v = (0xFFFF - ((I(pool[ip + 10]) << 8) | I(pool[ip + 11]))) + addrs
    v = (v & 0xFFFF) + (v >> 16)
    v = 0xFFFF - ((v & 0xFFFF) + (v >> 16))
    pool[ip + 10] = v >> 8
    pool[ip + 11] = v & 0xFF
    c = l4 + 16 if proto == TCP else l4 + 6
    old = (I(pool[c]) << 8) | I(pool[c + 1])
    if proto == TCP or old != 0:  # a UDP checksum of 0 means none: keep it 0
        v = (0xFFFF - old) + addrs + (0xFFFF - oport) + nport
        v = (v & 0xFFFF) + (v >> 16)
        v = 0xFFFF - ((v & 0xFFFF) + (v >> 16))
        if v == 0 and proto == UDP:
            v = 0xFFFF  # RFC 768: a computed 0 is sent as all ones
        pool[c] = v >> 8
        pool[c + 1] = v & 0xFF
    if proto == TCP and (pool[l4 + 13] & 0x05) != 0:
        table[2 * s + 1] = (table[2 * s + 1] & ~TIME_MASK) | DONE | now29
    meta[i].dst_ip = naddr if in_port == 0 else caddr  # next-hop lookups after us
    return in_port


@kernel
def balance_packet(pool, meta, i, table, counts, params, maglev, backends, given, now,
                   in_port, mask, vip, vport, protos, has_other):
    """IPLoadBalancer's kernel.  Inline: a live connection's packet (balance_hit);
    everything else is one call to balance."""
    out = balance_hit(pool, meta, i, table, params, now, mask, vip, vport, protos, in_port)
    if out >= 0:
        return out
    return balance(pool, meta, i, table, counts, params, maglev, backends, given, now,
                   in_port, mask, vip, vport, protos, has_other)


@kernel
def ahead(pool, meta, i, table, counts, params, maglev, backends, given, mask, vip):
    """IPLoadBalancer's prefetch for a packet ahead (conns.note_home)."""
    return conns.note_home(pool, meta, i, table, mask, vip)
