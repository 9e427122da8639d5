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

NAMES = {v: k.lower() for k, v in dict(globals()).items() if k.isupper() and isinstance(v, int)}


def name(code: int) -> str:
    """The reason's name for tables (`unknown-N` for codes this version does not know)."""
    return NAMES.get(code, f"unknown-{code}").replace("_", "-")
