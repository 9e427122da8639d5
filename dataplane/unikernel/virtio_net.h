/*
 * virtio_net.h - a polling virtio-net driver (virtio-mmio version 2, split
 * rings, no interrupts). See virtio_net.c for the ring protocol.
 */
#ifndef NFV_VIRTIO_NET_H
#define NFV_VIRTIO_NET_H

#include <stddef.h>
#include <stdint.h>
#include "packet_layout.h"

struct vring_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct vring_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[];
};

struct vring_used_elem {
    uint32_t id;
    uint32_t len;
};

struct vring_used {
    uint16_t flags;
    uint16_t idx;
    struct vring_used_elem ring[];
};

/* One virtqueue, with the driver's private bookkeeping. */
struct vq {
    volatile struct vring_desc *desc;
    volatile struct vring_avail *avail;
    volatile struct vring_used *used;
    uint16_t size;              /* entries; a power of two */
    uint16_t index;             /* 0 = receive, 1 = transmit */
    uint16_t avail_idx;         /* next avail.idx, published by the flush */
    uint16_t published;         /* avail.idx as the device last saw it */
    uint16_t used_seen;         /* used entries already taken back */
    uint16_t free_top;          /* free_desc[0..free_top) hold no buffer */
    uint16_t *free_desc;
    uint32_t *desc_slot;        /* pool slot each descriptor carries */
};

struct nic {
    uintptr_t base;             /* virtio-mmio registers */
    uint8_t mac[6];
    uint8_t port;               /* in_port of what it receives */
    uint8_t mergeable;          /* VIRTIO_NET_F_MRG_RXBUF negotiated: the header says how
                                   many buffers a frame took (>1: too long, dropped) */
    struct vq rx, tx;
    uint32_t rx_skip;           /* buffers still to come of a frame being dropped */
    uint64_t rx_packets;        /* frames handed to the pipeline */
    uint64_t rx_dropped;        /* frames received and dropped here (any reason, oversize too) */
    uint64_t rx_oversize;       /* ... of which longer than one buffer (NFV_BUF_STRIDE - NFV_HEADROOM) */
    uint64_t tx_packets;        /* frames queued for the device */
    uint64_t tx_dropped;        /* frames the pipeline sent here that found the ring full */
    uint64_t notifies;          /* QueueNotify writes (each a VM exit) */
};

/* Bytes nic_init takes from mem_alloc for queues of qsize entries. */
size_t nic_memory(unsigned qsize);

/* Reset and set up the device; 0 on success, else an NFV_EXIT_* code after
 * printing why. Posts receive buffers from the pool. */
int nic_init(struct nic *nic, uintptr_t base, unsigned port, unsigned qsize);

/* Move up to max received frames into meta (records fully initialised).
 * Buffers of dropped frames are given back to the pool whatever max is. */
unsigned nic_rx_poll(struct nic *nic, struct nfv_pkt_meta *meta, unsigned max, uint64_t now_ns);
/* Give the device fresh buffers for every descriptor it has handed back. */
void nic_rx_refill(struct nic *nic);

/* Queue the packet at pool offset/length; its slot belongs to the TX ring
 * until nic_tx_reclaim returns it. 0, or -1 if the ring is full. */
int nic_tx_put(struct nic *nic, uint32_t offset, uint32_t length);
/* Publish what nic_tx_put queued, and notify the device if it wants it. */
void nic_tx_flush(struct nic *nic);
/* Return the slots of transmitted packets to the pool. */
void nic_tx_reclaim(struct nic *nic);
/* Packets nic_tx_put can take now without failing (call nic_tx_reclaim first). */
static inline unsigned nic_tx_room(const struct nic *nic) { return nic->tx.free_top; }

#endif /* NFV_VIRTIO_NET_H */
