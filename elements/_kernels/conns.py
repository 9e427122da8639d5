"""IPLoadBalancer's connection table: one 16-byte entry a connection.

The rewriters' flow table (flows.py) holds any rewrite, so it keys both directions
and keeps each whole new tuple: two 32-byte slots a mapping.  A balancer's
connections all go to one virtual address and port, so a connection is its client
(address, port, protocol) and the backend it was given, and both directions find
it by the client: a client's packet by its source, a backend's reply by its
destination (then checked against the entry's backend).  Four entries share a
cache line, and a million connections fit in 32 MiB instead of 256.

Entry words (uint64):

    w0  client address << 32 | client port << 16 | backend port
    w1  backend address << 32 | VALID (bit 31) | UDP (bit 30) | DONE (bit 29)
        | last seen (29 bits of flows' time units)

The key is w0 >> 16 with w1's VALID and UDP bits; an empty entry has w1 == 0.
Open addressing with linear probing, 2^k entries at most half full; a key's home
is the first entry of its 64-byte line, so one prefetch a packet brings its
entry in (note_home) and a probe seldom leaves it.  Deletion shifts later members of the run back (no
tombstones).  Mappings expire as the flow table's do: lazily when a lookup meets
a stale one, and by a clock hand that sweeps a few entries per new connection.
29 bits of 1.05 ms units last 6.5 days and ages are taken modulo that, so
timeouts are limited to MAX_TIMEOUT_UNITS (the element checks its arguments).
"""
import numpy as np

from nfv.jit import kernel, kernel_call
from nfv.prefetch import prefetch

from nfv.elements._kernels import flows
from nfv.elements._kernels.flows import I, TCP, U, UDP

VALID = U(1 << 31)
UDP_BIT = U(1 << 30)
DONE = U(1 << 29)
KEY_BITS = U((1 << 31) | (1 << 30))    # the key's part of w1
TIME_MASK = U((1 << 29) - 1)
MAX_TIMEOUT_UNITS = (1 << 29) * 3 // 4   # a timeout plus its sixteenth stays well inside
LINE = 4                                 # entries a 64-byte line
# the index of the lowest set bit of m (0 < m < 16) is (LOWEST_BIT >> 2m) & 3
LOWEST_BIT = sum(((m & -m).bit_length() - 1) << (2 * m) for m in range(1, 16))


@kernel
def conn_key(caddr, cport, proto):
    """The key of a client's connection: (w0 >> 16, w1 & KEY_BITS)."""
    kc = (U(caddr) << U(16)) | U(cport)
    kv = VALID | UDP_BIT if proto == UDP else VALID
    return kc, kv


@kernel
def home_of(kc, kv, mask):
    """A key's home entry: the first of its line."""
    h = (kc ^ (kv << U(32))) * U(0x9E3779B97F4A7C15)
    h ^= h >> U(29)
    h *= U(0xBF58476D1CE4E5B9)
    h ^= h >> U(32)
    return I(h & U(mask & ~(LINE - 1)))


@kernel
def now_units(now):
    return (U(now) >> U(flows.TIME_SHIFT)) & TIME_MASK


@kernel
def timeout_of(w1, params):
    """An entry's timeout (time units): UDP_TIMEOUT, TCP_DONE_TIMEOUT after a FIN or
    RST, else TCP_TIMEOUT."""
    if w1 & UDP_BIT != U(0):
        return params[flows.UDP_TIMEOUT]
    if w1 & DONE != U(0):
        return params[flows.TCP_DONE_TIMEOUT]
    return params[flows.TCP_TIMEOUT]


@kernel
def age_of(w1, now29):
    return (now29 - (w1 & TIME_MASK)) & TIME_MASK


# As in the flow table, a hit rewrites its entry's time only when that is more than
# a sixteenth of the timeout old, so most hits leave their cache line clean; an
# entry expires between 1 and 1 1/16 timeouts after its last packet.

@kernel
def fresh(w1, now29, params):
    t = timeout_of(w1, params)
    return age_of(w1, now29) <= t + (t >> U(4))


@kernel
def find(table, mask, kc, kv):
    """The entry holding key (kc, kv), or -1."""
    s = home_of(kc, kv, mask)
    while True:
        w1 = table[2 * s + 1]
        if w1 == U(0):
            return -1
        if (w1 & KEY_BITS) == kv and (table[2 * s] >> U(16)) == kc:
            return s
        s = (s + 1) & mask


@kernel_call
def place(table, mask, w0, w1):
    """Store an entry whose key is known to be absent; returns its index."""
    s = home_of(w0 >> U(16), w1 & KEY_BITS, mask)
    while table[2 * s + 1] != U(0):
        s = (s + 1) & mask
    table[2 * s] = w0
    table[2 * s + 1] = w1
    return s


@kernel_call
def remove(table, mask, s, counts):
    """Delete entry s (one connection), shifting later members of its run back."""
    hole = s
    j = s
    while True:
        j = (j + 1) & mask
        w1 = table[2 * j + 1]
        if w1 == U(0):
            break
        home = home_of(table[2 * j] >> U(16), w1 & KEY_BITS, mask)
        # j may fill the hole unless its home lies cyclically in (hole, j]
        if hole <= j:
            stays = hole < home <= j
        else:
            stays = home > hole or home <= j
        if stays:
            continue
        table[2 * hole] = table[2 * j]
        table[2 * hole + 1] = w1
        hole = j
    table[2 * hole] = U(0)
    table[2 * hole + 1] = U(0)
    if counts[flows.SIZE] > U(0):
        counts[flows.SIZE] -= U(1)
    counts[flows.EXPIRED] += U(1)


@kernel_call
def lookup_live(table, mask, counts, params, now29, kc, kv):
    """The entry of a live connection with key (kc, kv), refreshed; -1 if none (a
    stale one found is removed)."""
    s = find(table, mask, kc, kv)
    if s < 0:
        return -1
    w1 = table[2 * s + 1]
    t = timeout_of(w1, params)
    age = age_of(w1, now29)
    if age <= t + (t >> U(4)):
        if age > (t >> U(4)):
            table[2 * s + 1] = (w1 & ~TIME_MASK) | now29
        return s
    remove(table, mask, s, counts)
    return -1


@kernel_call
def sweep(table, mask, counts, params, now29, n):
    """Let the clock hand look at n entries, removing connections that have expired."""
    hand = I(counts[flows.HAND]) & mask
    for _ in range(n):
        w1 = table[2 * hand + 1]
        if w1 != U(0) and not fresh(w1, now29, params):
            remove(table, mask, hand, counts)  # (a later entry may now sit at hand)
        else:
            hand = (hand + 1) & mask
    counts[flows.HAND] = U(hand)


@kernel_call
def add(table, mask, counts, now29, caddr, cport, proto, baddr, bport):
    """A new connection of client caddr:cport to backend baddr:bport; its entry."""
    kc, kv = conn_key(caddr, cport, proto)
    s = place(table, mask, (kc << U(16)) | U(bport), (U(baddr) << U(32)) | kv | now29)
    counts[flows.SIZE] += U(1)
    counts[flows.CREATED] += U(1)
    return s


@kernel
def mark_done(table, s, now29):
    """A FIN or RST: the connection takes the shorter timeout, counted from now."""
    table[2 * s + 1] = (table[2 * s + 1] & ~TIME_MASK) | DONE | now29


# -- prefetching (the element's `ahead` kernel: codegen calls it for the packet AHEAD
#    places on while the pipeline works on this one) -----------------------------------

@kernel
def note_home(pool, meta, i, table, mask, vip):
    """Guess the packet's key (Ethernet + IPv4 assumed, before any header check: a
    wrong guess only fetches a useless line): a packet to the VIP is a client's,
    keyed by its source; anything else a reply, keyed by its destination.  Notes the
    key's home (+ 1) in reserved1, which the real pass starts its probe from, and
    prefetches the home line."""
    at = I(meta[i].offset) + 14
    if at + 24 > pool.shape[0]:
        return 0
    hlen = (I(pool[at]) & 0xF) * 4
    l4 = at + hlen
    if l4 + 4 > pool.shape[0]:
        return 0
    if flows.get32(pool, at + 16) == vip:
        kc, kv = conn_key(flows.get32(pool, at + 12), flows.get16(pool, l4), I(pool[at + 9]))
    else:
        kc, kv = conn_key(flows.get32(pool, at + 16), flows.get16(pool, l4 + 2),
                          I(pool[at + 9]))
    h = home_of(kc, kv, mask)
    meta[i].reserved1 = h + 1
    return prefetch(table, 2 * h)


def entries_for(capacity: int) -> int:
    """Entries for `capacity` connections: at most a quarter full (64 bytes a
    connection), whole lines.  Half full, 4 % of keys sat past their home line (a
    second cache miss each); a quarter full, 0.5 %."""
    return max(2 * LINE, 1 << (4 * capacity - 1).bit_length())


def connection_rows(table: np.ndarray):
    """(client, cport, protocol, backend, bport, done) of every live entry."""
    words = table.reshape(-1, 2)
    used = np.nonzero(words[:, 1] & np.uint64(int(VALID)))[0]
    for s in used:
        w0, w1 = int(words[s, 0]), int(words[s, 1])
        yield (w0 >> 32, (w0 >> 16) & 0xFFFF, UDP if w1 & int(UDP_BIT) else TCP,
               w1 >> 32, w0 & 0xFFFF, bool(w1 & int(DONE)))
