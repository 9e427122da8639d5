/*
 * virtio_net.c - polling virtio-net over virtio-mmio (version 2 only).
 *
 * Rings. Each queue is a split virtqueue in guest RAM: a descriptor table,
 * the driver's "avail" ring and the device's "used" ring. A descriptor
 * carries exactly one pool slot (2 KiB slots never straddle a page). Free
 * descriptor ids sit on a small stack; desc_slot[] remembers which slot a
 * descriptor carries while the device owns it.
 *
 * Zero copy. The 12-byte virtio-net header (VERSION_1 layout, no offloads
 * negotiated, so always zero on transmit) lives in the slot's headroom just
 * before the frame: a receive buffer starts at NFV_HEADROOM - 12 so the frame
 * lands at NFV_HEADROOM, and a transmit descriptor starts 12 bytes before the
 * packet's offset. Nothing is copied either way.
 *
 * Long frames. Without VIRTIO_NET_F_MRG_RXBUF a device silently discards a
 * frame longer than one receive buffer, so we could not count it. With it
 * (negotiated whenever offered) the device spreads such a frame over several
 * buffers, consecutive in the used ring, and writes their number into the
 * first one's header (num_buffers). We drop every frame with num_buffers > 1,
 * give all its buffers back, and count it (rx_dropped, rx_oversize).
 *
 * Exits. Each MMIO access is a VM exit (~26 us here), so the hot path does
 * none except QueueNotify, and that only when the device has not set
 * VRING_USED_F_NO_NOTIFY (checked after an mfence, so a device going to
 * sleep cannot miss our avail.idx update). avail.flags = NO_INTERRUPT on both
 * queues: we poll the used rings instead.
 */
#include "virtio_net.h"
#include "console.h"
#include "exit.h"
#include "io.h"
#include "mem.h"
#include "pool.h"

/* virtio-mmio registers (virtio 1.x, section 4.2.2) */
#define REG_MAGIC           0x000
#define REG_VERSION         0x004
#define REG_DEVICE_FEATURES 0x010
#define REG_DEVICE_FEAT_SEL 0x014
#define REG_DRIVER_FEATURES 0x020
#define REG_DRIVER_FEAT_SEL 0x024
#define REG_QUEUE_SEL       0x030
#define REG_QUEUE_NUM_MAX   0x034
#define REG_QUEUE_NUM       0x038
#define REG_QUEUE_READY     0x044
#define REG_QUEUE_NOTIFY    0x050
#define REG_STATUS          0x070
#define REG_QUEUE_DESC_LO   0x080
#define REG_QUEUE_DESC_HI   0x084
#define REG_QUEUE_DRIVER_LO 0x090
#define REG_QUEUE_DRIVER_HI 0x094
#define REG_QUEUE_DEVICE_LO 0x0a0
#define REG_QUEUE_DEVICE_HI 0x0a4
#define REG_CONFIG          0x100   /* virtio-net config: MAC first */

#define STATUS_ACKNOWLEDGE  1
#define STATUS_DRIVER       2
#define STATUS_DRIVER_OK    4
#define STATUS_FEATURES_OK  8

#define FEATURE_MAC         (1u << 5)   /* word 0 */
#define FEATURE_MRG_RXBUF   (1u << 15)  /* word 0 */
#define FEATURE_VERSION_1   (1u << 0)   /* word 1: bit 32 */

#define DESC_F_WRITE        2
#define AVAIL_F_NO_INTERRUPT 1
#define USED_F_NO_NOTIFY    1

#define NET_HDR_LEN         12
#define NET_HDR_NUM_BUFFERS 10          /* uint16 in the header (mergeable buffers) */
/* Receive buffer: header + everything after the headroom. */
#define RX_BUF_LEN          (NFV_BUF_STRIDE - NFV_HEADROOM + NET_HDR_LEN)

/* ---- queue memory ---------------------------------------------------------- */

__attribute__((cold)) static size_t ring_bytes(unsigned qsize)
{
    size_t desc = 16 * (size_t)qsize;
    size_t avail = 4 + 2 * (size_t)qsize + 2;
    size_t used = 4 + 8 * (size_t)qsize + 2;
    /* desc at 0, avail after it, used on its own 64-byte line (the device
     * writes it, we write avail: keep them off each other's cache lines). */
    return ((desc + avail + 63) & ~(size_t)63) + used;
}

__attribute__((cold)) static size_t queue_bytes(unsigned qsize)
{
    return ring_bytes(qsize) + 4096 + qsize * (sizeof(uint16_t) + sizeof(uint32_t)) + 16;
}

__attribute__((cold)) size_t nic_memory(unsigned qsize) { return 2 * queue_bytes(qsize); }

__attribute__((cold)) static int queue_alloc(struct vq *q, unsigned index, unsigned qsize)
{
    size_t desc = 16 * (size_t)qsize;
    uint8_t *ring = mem_alloc(ring_bytes(qsize), 4096);
    q->free_desc = mem_alloc(qsize * sizeof(uint16_t), 8);
    q->desc_slot = mem_alloc(qsize * sizeof(uint32_t), 8);
    if (!ring || !q->free_desc || !q->desc_slot)
        return -1;
    q->desc = (volatile struct vring_desc *)ring;
    q->avail = (volatile struct vring_avail *)(ring + desc);
    q->used = (volatile struct vring_used *)(ring + ((desc + 4 + 2 * qsize + 2 + 63) & ~(size_t)63));
    q->size = (uint16_t)qsize;
    q->index = (uint16_t)index;
    q->avail_idx = q->published = q->used_seen = 0;
    q->avail->flags = AVAIL_F_NO_INTERRUPT;
    for (unsigned i = 0; i < qsize; i++)
        q->free_desc[i] = (uint16_t)(qsize - 1 - i);
    q->free_top = (uint16_t)qsize;
    return 0;
}

__attribute__((cold)) static void queue_register(uintptr_t base, struct vq *q)
{
    uint64_t desc = (uintptr_t)q->desc, avail = (uintptr_t)q->avail, used = (uintptr_t)q->used;
    /* The queue is still selected (nic_init read its QueueNumMax). The high
     * address halves are zero after the reset and our RAM is below 4 GiB:
     * writing them anyway would cost six exits per NIC. */
    mmio_write32(base + REG_QUEUE_NUM, q->size);
    mmio_write32(base + REG_QUEUE_DESC_LO, (uint32_t)desc);
    if (desc >> 32)
        mmio_write32(base + REG_QUEUE_DESC_HI, (uint32_t)(desc >> 32));
    mmio_write32(base + REG_QUEUE_DRIVER_LO, (uint32_t)avail);
    if (avail >> 32)
        mmio_write32(base + REG_QUEUE_DRIVER_HI, (uint32_t)(avail >> 32));
    mmio_write32(base + REG_QUEUE_DEVICE_LO, (uint32_t)used);
    if (used >> 32)
        mmio_write32(base + REG_QUEUE_DEVICE_HI, (uint32_t)(used >> 32));
    mmio_write32(base + REG_QUEUE_READY, 1);
}

/* ---- setup ------------------------------------------------------------------ */

__attribute__((cold)) static int fail(const struct nic *nic, const char *why)
{
    con_printf("nic %u at 0x%lx: %s\n", nic->port, (uint64_t)nic->base, why);
    mmio_write32(nic->base + REG_STATUS, 0x80);     /* FAILED */
    return NFV_EXIT_DEVICE;
}

__attribute__((cold)) int nic_init(struct nic *nic, uintptr_t base, unsigned port, unsigned qsize)
{
    nic->base = base;
    nic->port = (uint8_t)port;
    uint32_t version = mmio_read32(base + REG_VERSION);
    if (version != 2) {
        con_printf("nic %u at 0x%lx: virtio-mmio version %u (legacy); this runtime drives version 2 only: "
                   "start QEMU with -global virtio-mmio.force-legacy=false\n",
                   port, (uint64_t)base, version);
        return NFV_EXIT_DEVICE;
    }
    mmio_write32(base + REG_STATUS, 0);             /* reset */
    mmio_write32(base + REG_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);

    mmio_write32(base + REG_DEVICE_FEAT_SEL, 1);
    uint32_t high = mmio_read32(base + REG_DEVICE_FEATURES);
    mmio_write32(base + REG_DEVICE_FEAT_SEL, 0);
    uint32_t low = mmio_read32(base + REG_DEVICE_FEATURES);
    if (!(high & FEATURE_VERSION_1))
        return fail(nic, "device does not offer VIRTIO_F_VERSION_1");
    /* Mergeable buffers only so that a frame too long for one buffer reaches
     * us (to be counted and dropped) instead of vanishing in the device.
     * Nothing else: no offloads (so the header is all zero on transmit), no
     * event index (flags suffice). */
    uint32_t wanted = low & (FEATURE_MAC | FEATURE_MRG_RXBUF);
    mmio_write32(base + REG_DRIVER_FEAT_SEL, 0);
    mmio_write32(base + REG_DRIVER_FEATURES, wanted);
    mmio_write32(base + REG_DRIVER_FEAT_SEL, 1);
    mmio_write32(base + REG_DRIVER_FEATURES, FEATURE_VERSION_1);
    mmio_write32(base + REG_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
    if (!(mmio_read32(base + REG_STATUS) & STATUS_FEATURES_OK))
        return fail(nic, "device rejected features VERSION_1, MAC, MRG_RXBUF");
    nic->mergeable = (wanted & FEATURE_MRG_RXBUF) != 0;

    for (unsigned index = 0; index < 2; index++) {
        struct vq *q = index == 0 ? &nic->rx : &nic->tx;
        mmio_write32(base + REG_QUEUE_SEL, index);
        uint32_t max = mmio_read32(base + REG_QUEUE_NUM_MAX);
        if (max == 0)
            return fail(nic, "queue not available");
        unsigned size = qsize;
        while (size > max)
            size >>= 1;
        if (queue_alloc(q, index, size) != 0)
            return fail(nic, "out of memory for rings");   /* main sized memory first: not expected */
        queue_register(base, q);
    }

    if (low & FEATURE_MAC) {
        /* Two aligned reads instead of six byte reads: config space allows
         * any naturally aligned access, and each one is an exit. */
        uint32_t mac_low = mmio_read32(base + REG_CONFIG);
        uint16_t mac_high = mmio_read16(base + REG_CONFIG + 4);
        for (int i = 0; i < 4; i++)
            nic->mac[i] = (uint8_t)(mac_low >> (8 * i));
        nic->mac[4] = (uint8_t)mac_high;
        nic->mac[5] = (uint8_t)(mac_high >> 8);
    }
    mmio_write32(base + REG_STATUS,
                 STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
    nic_rx_refill(nic);
    return 0;
}

/* ---- the packet path -------------------------------------------------------- */

/* Make avail.idx visible; notify unless the device said it is polling. */
static void publish(struct nic *nic, struct vq *q)
{
    if (q->avail_idx == q->published)
        return;
    barrier();                      /* descriptors and ring entries before the index */
    q->avail->idx = q->avail_idx;
    q->published = q->avail_idx;
    mfence();                       /* the index store before the flags load */
    if (!(q->used->flags & USED_F_NO_NOTIFY)) {
        mmio_write32(nic->base + REG_QUEUE_NOTIFY, q->index);
        nic->notifies++;
    }
}

unsigned nic_rx_poll(struct nic *nic, struct nfv_pkt_meta *meta, unsigned max, uint64_t now_ns)
{
    struct vq *q = &nic->rx;
    uint16_t used_idx = q->used->idx;
    barrier();                      /* entries are read after the index */
    unsigned n = 0;
    uint16_t mask = q->size - 1;
    /* The rest of a long frame's buffers are freed even when the batch is
     * full: they hold nothing for it. */
    while (q->used_seen != used_idx && (n < max || nic->rx_skip)) {
        volatile struct vring_used_elem *e = &q->used->ring[q->used_seen & mask];
        uint32_t id = e->id, len = e->len;
        q->used_seen++;
        if (id >= q->size) {        /* a device bug: nothing to give back */
            nic->rx_dropped++;
            continue;
        }
        uint32_t slot = q->desc_slot[id];
        q->free_desc[q->free_top++] = (uint16_t)id;
        if (nic->rx_skip) {         /* a later buffer of a dropped long frame */
            nic->rx_skip--;
            pool_put(slot);
            continue;
        }
        uint32_t offset = slot * NFV_BUF_STRIDE + NFV_HEADROOM;
        uint16_t buffers = nic->mergeable
            ? *(volatile uint16_t *)(pool_at(offset) - NET_HDR_LEN + NET_HDR_NUM_BUFFERS) : 1;
        if (buffers > 1) {          /* longer than a buffer: drop all of it */
            nic->rx_skip = buffers - 1u;
            nic->rx_dropped++;
            nic->rx_oversize++;
            pool_put(slot);
            continue;
        }
        /* A frame of zero bytes, or longer than the buffer we gave, is
         * dropped and counted; the slot goes straight back to the pool. */
        if (len <= NET_HDR_LEN || len > RX_BUF_LEN) {
            nic->rx_dropped++;
            pool_put(slot);
            continue;
        }
        meta[n++] = (struct nfv_pkt_meta){
            .timestamp_ns = now_ns,
            .offset = offset,
            .net_offset = NFV_NO_NET_HEADER,
            .length = (uint16_t)(len - NET_HDR_LEN),
            .in_port = nic->port,
            .out_port = NFV_NO_PORT,
        };
    }
    nic->rx_packets += n;
    return n;
}

void nic_rx_refill(struct nic *nic)
{
    struct vq *q = &nic->rx;
    uint16_t mask = q->size - 1;
    uint32_t slot;
    while (q->free_top && pool_get(&slot)) {
        uint16_t id = q->free_desc[--q->free_top];
        q->desc[id].addr = (uintptr_t)nfv_pool.base + (uint64_t)slot * NFV_BUF_STRIDE + NFV_HEADROOM - NET_HDR_LEN;
        q->desc[id].len = RX_BUF_LEN;
        q->desc[id].flags = DESC_F_WRITE;
        q->desc_slot[id] = slot;
        q->avail->ring[q->avail_idx++ & mask] = id;
    }
    publish(nic, q);
}

void nic_tx_reclaim(struct nic *nic)
{
    struct vq *q = &nic->tx;
    uint16_t used_idx = q->used->idx;
    barrier();
    uint16_t mask = q->size - 1;
    while (q->used_seen != used_idx) {
        uint32_t id = q->used->ring[q->used_seen & mask].id;
        q->used_seen++;
        if (id >= q->size)
            continue;
        pool_put(q->desc_slot[id]);
        q->free_desc[q->free_top++] = (uint16_t)id;
    }
}

int nic_tx_put(struct nic *nic, uint32_t offset, uint32_t length)
{
    struct vq *q = &nic->tx;
    if (q->free_top == 0) {
        nic_tx_reclaim(nic);
        if (q->free_top == 0)
            return -1;
    }
    uint16_t id = q->free_desc[--q->free_top];
    uint8_t *hdr = pool_at(offset) - NET_HDR_LEN;
    /* Headroom holds whatever was there (an RX header, encapsulation
     * leftovers): the header must say "no offload, no merge". */
    __builtin_memset(hdr, 0, NET_HDR_LEN);     /* two stores, inlined */
    q->desc[id].addr = (uintptr_t)hdr;
    q->desc[id].len = length + NET_HDR_LEN;
    q->desc[id].flags = 0;
    q->desc_slot[id] = offset / NFV_BUF_STRIDE;
    q->avail->ring[q->avail_idx++ & (q->size - 1)] = id;
    nic->tx_packets++;
    return 0;
}

void nic_tx_flush(struct nic *nic) { publish(nic, &nic->tx); }
