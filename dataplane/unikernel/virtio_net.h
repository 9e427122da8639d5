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
    struct vq rx, tx;
    uint64_t rx_packets, tx_packets, rx_dropped, tx_dropped;
    uint64_t notifies;          /* QueueNotify writes (each a VM exit) */
};

/* Bytes nic_init takes from mem_alloc for queues of qsize entries. */
size_t nic_memory(unsigned qsize);

/* Reset and set up the device; 0 on success, else an NFV_EXIT_* code after
 * printing why. Posts receive buffers from the pool. */
int nic_init(struct nic *nic, uintptr_t base, unsigned port, unsigned qsize);

/* Move up to max received frames into meta (records fully initialised). */
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

#endif /* NFV_VIRTIO_NET_H */
