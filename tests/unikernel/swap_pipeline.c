/*
 * swap_pipeline.c - a stand-in for a compiled pipeline, for the runtime's own
 * tests only. Built with ordinary userland flags (SSE allowed), as the Numba
 * object is, so the test also proves SSE code runs at CPL3.
 *
 *   port 0 <-> port 1           every frame leaves by the other NIC
 *   ethertype 0x88b5            also sends a copy, made from the arena free list
 *   ethertype 0x88b6            returns -7 (the runtime must stop: pipeline error)
 *   ethertype 0x88b7            out_port 5, a NIC the image lacks (an error)
 *   ethertype 0x88b8            writes to its own code (W^X: must fault)
 *   ethertype 0x88b9            jumps into the arena (NX: must fault)
 *   sources (in_port >= 8)      counted and dropped
 * Arena: the free-list header, then at COUNT_OFFSET 16 uint64 counters, one
 * per in_port, and one of copies made.
 */
#include <stdint.h>
#include "pipeline_abi.h"

#define COUNT_OFFSET 1088

static uint16_t ethertype(const uint8_t *frame, uint32_t len)
{
    return len >= 14 ? (uint16_t)(frame[12] << 8 | frame[13]) : 0;
}

int32_t nfv_pipeline(uint8_t *pool, int64_t pool_len, struct nfv_pkt_meta *meta, int32_t n,
                     int32_t meta_cap, uint8_t *arena, int64_t arena_len, uint64_t now_ns)
{
    (void)pool_len; (void)arena_len; (void)now_ns;
    struct nfv_arena_header *h = (struct nfv_arena_header *)arena;
    uint64_t *count = (uint64_t *)(arena + COUNT_OFFSET);
    int32_t out = n;
    for (int32_t i = 0; i < n; i++) {
        struct nfv_pkt_meta *m = &meta[i];
        const uint8_t *frame = pool + m->offset;
        count[m->in_port & 15]++;
        if (m->in_port >= NFV_FIRST_SOURCE) {
            m->out_port = NFV_NO_PORT;
            continue;
        }
        uint16_t type = ethertype(frame, m->length);
        if (type == 0x88b6)
            return -7;
        if (type == 0x88b8)
            *(volatile uint8_t *)(uintptr_t)&nfv_pipeline = 0xc3;
        if (type == 0x88b9)
            ((void (*)(void))(uintptr_t)(arena + COUNT_OFFSET))();
        m->out_port = type == 0x88b7 ? 5 : (uint8_t)(m->in_port ^ 1);
        if (type == 0x88b5 && out < meta_cap && h->free_count > 0) {
            uint32_t slot = h->free_slots[--h->free_count];
            struct nfv_pkt_meta *copy = &meta[out++];
            *copy = *m;
            copy->offset = slot * NFV_BUF_STRIDE + NFV_HEADROOM;
            for (uint32_t b = 0; b < m->length; b++)
                pool[copy->offset + b] = frame[b];
            count[15]++;
        }
    }
    return out;
}
