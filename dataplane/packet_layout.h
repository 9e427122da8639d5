/*
 * packet_layout.h - packet memory as every part of nfv sees it.
 *
 * Three readers share this layout: the host driver (Cython, which includes this
 * header), the unikernel runtime (C, which includes it too) and the Numba
 * kernels (which see it as nfv.dataplane.packet.META_DTYPE, a numpy record
 * type). The kernels cannot include a header, so the record is written twice,
 * here and in packet.pyx, and tests/test_packet_layout.py compares the compiled
 * struct with the dtype field by field. Change both together.
 *
 * Plain C99 with <stdint.h> only: the unikernel is built freestanding, no libc.
 */
#ifndef NFV_PACKET_LAYOUT_H
#define NFV_PACKET_LAYOUT_H

#include <stdint.h>

/*
 * Packet buffers live in one pool of equal slots. A slot is 2048 bytes: 128 of
 * headroom and 1920 of data, room for a full 1518-byte Ethernet frame plus the
 * headers that encapsulating elements push in front of it. A power of two keeps
 * buffer index = offset >> 11, and two slots fill a 4 KiB page exactly, so no
 * buffer straddles a page: one virtio descriptor per buffer, always.
 */
#define NFV_BUF_STRIDE 2048u

/*
 * Received data starts this far into its slot. Strip and EtherEncap move the
 * packet's offset instead of its bytes, and the headroom is what lets an
 * encapsulation grow the packet at the front (the unikernel may also put the
 * 12-byte virtio-net header here, in front of the frame, so RX and TX copy nothing).
 */
#define NFV_HEADROOM 128u

/* Most packets one call of the fused pipeline handles: sizes metadata arrays. */
#define NFV_MAX_BATCH 256u

/* Sentinels for fields that have no value yet. */
#define NFV_NO_PORT 0xFFu                 /* out_port: no output chosen */
#define NFV_NO_NET_HEADER 0xFFFFFFFFu     /* net_offset: no network header marked */
#define NFV_DROP_NONE 0u                  /* drop_reason: packet is alive */
#define NFV_DROP_EMPTY 13u                /* drop_reason: zero-length frame at a device (nfv/drops.py) */

/*
 * Per-packet metadata: one record per packet of a batch, in an array beside
 * the pool. Fields go largest first so the compiler adds no padding, and the
 * spare bytes are named, so all 32 bytes are accounted for in both languages
 * and two records share one 64-byte cache line.
 *
 * Offsets are byte positions from the start of the pool, not of the slot, so a
 * kernel reaches the data with one add: pool + offset. The slot a packet owns
 * is offset / NFV_BUF_STRIDE.
 */
struct nfv_pkt_meta {
    uint64_t timestamp_ns;  /* when the driver received it, from the clock passed in as now_ns */
    uint32_t offset;        /* first byte of packet data, from pool start */
    uint32_t net_offset;    /* network (IP) header, from pool start; NFV_NO_NET_HEADER if none.
                               Absolute like offset, so Strip does not have to touch it. */
    uint32_t dst_ip;        /* destination-IP annotation (Click's dst_ip_anno) as a number:
                               10.0.0.1 is 0x0A000001, not the wire bytes */
    uint16_t length;        /* bytes of packet data from offset */
    uint8_t in_port;        /* device port it arrived on */
    uint8_t out_port;       /* device port it leaves by; NFV_NO_PORT until chosen */
    uint8_t paint;          /* Click's paint annotation */
    uint8_t drop_reason;    /* NFV_DROP_NONE, or why the packet was dropped */
    uint16_t reserved0;     /* spare: zero */
    uint32_t reserved1;     /* spare: zero (a table's prefetch ahead notes a key's home
                               slot here, a hint its real pass reads and clears:
                               flows.note_slot, conns.note_home) */
};

/* The unikernel build has no Python to run the layout test; this catches an
 * ABI surprise (packing flags, a different compiler) there at compile time. */
_Static_assert(sizeof(struct nfv_pkt_meta) == 32, "nfv_pkt_meta must stay 32 bytes, as META_DTYPE");

#endif /* NFV_PACKET_LAYOUT_H */
