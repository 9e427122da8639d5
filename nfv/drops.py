"""Why a packet was dropped: the reason codes kernels write into `drop_reason`.

Every drop has a named reason and is counted (per element, and per reason by
the driver), as VPP's per-node error strings are.  Codes are small integers so
the same numbers mean the same thing on the host and in the unikernel.
"""

NONE = 0          # alive
DISCARD = 1       # a Discard element (deliberate)
FILTERED = 2      # IPFilter deny, or no Classifier/IPClassifier pattern matched
BAD_IP = 3        # CheckIPHeader: not a valid IPv4 header
TTL_EXPIRED = 4   # DecIPTTL: TTL reached zero, and output 1 is not connected
NO_ROUTE = 5      # no route in StaticIPLookup/RadixIPLookup
NO_ENTRY = 6      # arrived on a device port no FromDevice reads
NO_BUFFER = 7     # a copy (Tee) found no free buffer
NO_OUTPUT = 8     # an element chose an output that is not connected
TOO_SHORT = 9     # shorter than the bytes an element must read or strip
NO_HEADROOM = 10  # no room in front of the data to push a header
NO_IP_HEADER = 11  # an IP element met a packet with no marked IP header
PAINT = 12        # CheckPaint: other colour, and output 1 is not connected
EMPTY = 13        # nothing left to transmit: a zero-length frame sent to a device (drivers)
NOT_ARP_REQUEST = 14  # ARPResponder: not an ARP request it answers, and output 1 is not connected
NOT_ECHO = 15     # ICMPPingResponder: not an ICMP echo request, and output 1 is not connected
NO_ICMP_ERROR = 16  # ICMPError: RFC 1812 4.3.2.7 forbids an error for it (an ICMP error, a
                   # broadcast/multicast destination, a bad source, a later fragment...)
NO_MAPPING = 17   # a rewriter or load balancer: no flow mapping for the packet, and its input
                  # makes none (a reply with no mapping, `drop` input spec)
TABLE_FULL = 18   # a rewriter or load balancer: a new flow, and the flow table is at capacity
NO_PORT = 19      # a rewriter: every source port of the pattern's range is taken (port pool
                  # exhausted for that destination)
NOT_REWRITABLE = 20  # a rewriter: not a flow it rewrites (other protocol, later fragment,
                  # L4 header cut short), and its nonmatching output is not connected
RATE_LIMITED = 21  # ICMPError: over its error rate (token bucket), as RFC 1812 4.3.2.8 asks
ARP_HELD = 22     # ARPQuerier: the packet waits for an ARP reply in its hold buffer (it leaves
                  # later, as the reply's packet); counted here because its record ends
ARP_ABSORBED = 23  # ARPQuerier: an ARP reply it learnt from (nothing was held for it)
NOT_VIP = 24      # a load balancer: to the VIP on another port or protocol, or not to the VIP,
                  # and output 2 is not connected
NO_BACKEND = 25   # a load balancer with no backends
BAD_QUOTE = 26    # an ICMP error whose quoted header is cut short or matches no mapping

NAMES = {v: k.lower() for k, v in dict(globals()).items() if k.isupper() and isinstance(v, int)}


def name(code: int) -> str:
    """The reason's name for tables (`unknown-N` for codes this version does not know)."""
    return NAMES.get(code, f"unknown-{code}").replace("_", "-")
