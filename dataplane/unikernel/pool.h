/*
 * pool.h - the packet buffer pool and its free-slot stack.
 *
 * One array of NFV_BUF_STRIDE-byte slots, shared by every NIC's rings, the
 * sources and the pipeline's free list. A slot is owned by exactly one of:
 * this stack, an RX ring, a TX ring, the arena free list, or the batch being
 * processed. Moving a packet between them moves its slot number, never bytes.
 */
#ifndef NFV_POOL_H
#define NFV_POOL_H

#include <stdint.h>
#include "packet_layout.h"

struct pool {
    uint8_t *base;              /* slot 0; slot-aligned */
    uint32_t slots;
    uint32_t free_top;          /* free[0..free_top) are free */
    uint32_t *free;
};

extern struct pool nfv_pool;

static inline int pool_get(uint32_t *slot)
{
    if (nfv_pool.free_top == 0)
        return 0;
    *slot = nfv_pool.free[--nfv_pool.free_top];
    return 1;
}

static inline void pool_put(uint32_t slot) { nfv_pool.free[nfv_pool.free_top++] = slot; }

static inline uint8_t *pool_at(uint32_t offset) { return nfv_pool.base + offset; }

#endif /* NFV_POOL_H */
