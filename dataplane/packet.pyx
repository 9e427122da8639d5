# cython: language_level=3
"""Packet memory layout, as Python and Numba see it.

The pool of packet buffers and the per-packet metadata record are defined in
``packet_layout.h`` (read it for why each number is what it is). This module
exports the same layout to Python: the constants come straight from the
compiled header, and ``META_DTYPE`` is the numpy record type the Numba kernels
index through ``carray(ptr, n, META_DTYPE)``.

``META_DTYPE`` is the one place the record is written out for Python; the
header is the one place for C. ``c_meta_layout()`` reports what the C compiler
made of the header, so tests can hold the two to each other.
"""

import numpy as np

# Re-exported from the header, so Python never keeps its own copy of a number.
BUF_STRIDE = NFV_BUF_STRIDE
HEADROOM = NFV_HEADROOM
MAX_BATCH = NFV_MAX_BATCH
NO_PORT = NFV_NO_PORT
NO_NET_HEADER = NFV_NO_NET_HEADER
DROP_NONE = NFV_DROP_NONE

# Same fields, same order, same widths as struct nfv_pkt_meta. Little-endian
# is stated because both targets are x86-64 and a record written on the host
# must mean the same in the guest. align=True applies C's struct rules, so no
# offset is written by hand; the layout has no padding anyway (see the header),
# and an aligned record lets Numba assume aligned loads.
META_DTYPE = np.dtype(
    [
        ("timestamp_ns", "<u8"),
        ("offset", "<u4"),
        ("net_offset", "<u4"),
        ("dst_ip", "<u4"),
        ("length", "<u2"),
        ("in_port", "u1"),
        ("out_port", "u1"),
        ("paint", "u1"),
        ("drop_reason", "u1"),
        ("reserved0", "<u2"),
        ("reserved1", "<u4"),
    ],
    align=True,
)

# sizeof(struct nfv_pkt_meta) as compiled; equal to META_DTYPE.itemsize.
META_SIZE = sizeof(nfv_pkt_meta)


cdef nfv_pkt_meta _probe


def c_meta_layout():
    """Return ``{field: (offset, size)}`` of struct nfv_pkt_meta as the C
    compiler laid it out, measured on a real instance."""
    cdef char *base = <char *>&_probe
    return {
        "timestamp_ns": (<char *>&_probe.timestamp_ns - base, sizeof(_probe.timestamp_ns)),
        "offset": (<char *>&_probe.offset - base, sizeof(_probe.offset)),
        "net_offset": (<char *>&_probe.net_offset - base, sizeof(_probe.net_offset)),
        "dst_ip": (<char *>&_probe.dst_ip - base, sizeof(_probe.dst_ip)),
        "length": (<char *>&_probe.length - base, sizeof(_probe.length)),
        "in_port": (<char *>&_probe.in_port - base, sizeof(_probe.in_port)),
        "out_port": (<char *>&_probe.out_port - base, sizeof(_probe.out_port)),
        "paint": (<char *>&_probe.paint - base, sizeof(_probe.paint)),
        "drop_reason": (<char *>&_probe.drop_reason - base, sizeof(_probe.drop_reason)),
        "reserved0": (<char *>&_probe.reserved0 - base, sizeof(_probe.reserved0)),
        "reserved1": (<char *>&_probe.reserved1 - base, sizeof(_probe.reserved1)),
    }
