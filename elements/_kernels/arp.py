"""Kernels of the ARP elements: answering requests in place.

Offsets in an Ethernet frame carrying ARP for IPv4 over Ethernet (RFC 826):

    0 dst MAC   6 src MAC   12 ethertype 0x0806
    14 hardware type (1)   16 protocol type (0x0800)   18 hlen (6)   19 plen (4)
    20 op (1 request, 2 reply)
    22 sender MAC   28 sender IP   32 target MAC   38 target IP   42 end
"""

from nfv.jit import kernel

from nfv.elements._kernels.packet import load16, load32, packet_end, store16

ARP_FRAME = 42


@kernel
def store32(pool, at, value):
    pool[at] = (value >> 24) & 0xFF
    pool[at + 1] = (value >> 16) & 0xFF
    pool[at + 2] = (value >> 8) & 0xFF
    pool[at + 3] = value & 0xFF


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
