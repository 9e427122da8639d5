/*
 * runtime.h - the state main.c, sources.c and control.c share.
 */
#ifndef NFV_RUNTIME_H
#define NFV_RUNTIME_H

#include <stdint.h>
#include "devices.h"
#include "nfv_image.h"
#include "virtio_net.h"

struct runtime {
    struct nic nics[NFV_MAX_NICS];
    unsigned nic_count;             /* = nfv_config.nic_count */
    unsigned queue_size;
    struct nfv_pkt_meta *meta;
    unsigned meta_cap;
    uint64_t batches;               /* nfv_pipeline calls */
    uint64_t packets;               /* records passed in (received + injected) */
    uint64_t created;               /* records the pipeline added (copies, replies) */
    uint64_t errors;                /* records with an out_port we cannot honour */
    uint64_t drops[256];            /* records left at NFV_NO_PORT, by drop_reason */
    uint64_t loop_start_ns;
};

extern struct runtime nfv_rt;

/* arena.c: fill the arena from nfv_config.arena_init; 0, or -1 if malformed. */
int nfv_arena_unpack(const uint8_t *packed, uint8_t *arena, uint64_t len);

/* sources.c: inject this round's source packets into meta (at most room). */
unsigned sources_inject(struct nfv_pkt_meta *meta, unsigned room, uint64_t now_ns);
/* 1 when every source has a limit and has reached it (also with no sources). */
int sources_done(void);
/* 0, or prints why the sources cannot be used and returns NFV_EXIT_BOOT. */
int sources_check(void);

/* control.c: serve console commands; cheap to call every round (it reads the
 * UART only about once a millisecond). */
void control_init(uint64_t tsc_khz);
void control_poll(void);
void control_print_nics(void);

#endif /* NFV_RUNTIME_H */
