# Cython view of dataplane/packet_layout.h, for the host driver and I/O
# backends: `from nfv.dataplane.packet cimport nfv_pkt_meta, NFV_BUF_STRIDE`.
# Only declarations here; the layout itself is written in the header.

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

cdef extern from "packet_layout.h":
    # enum, so Cython code may size C arrays with them
    enum:
        NFV_BUF_STRIDE
        NFV_HEADROOM
        NFV_MAX_BATCH
        NFV_NO_PORT
        NFV_DROP_NONE
        NFV_DROP_EMPTY
    # typed: 0xFFFFFFFF does not fit the int that Cython assumes for an enum
    const uint32_t NFV_NO_NET_HEADER

    cdef struct nfv_pkt_meta:
        uint64_t timestamp_ns
        uint32_t offset
        uint32_t net_offset
        uint32_t dst_ip
        uint16_t length
        uint8_t in_port
        uint8_t out_port
        uint8_t paint
        uint8_t drop_reason
        uint16_t reserved0
        uint32_t reserved1
