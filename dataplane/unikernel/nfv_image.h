/*
 * nfv_image.h - what a config's generated C file gives the runtime.
 *
 * `nfv build` turns a config into two link inputs besides this runtime: the
 * pipeline object (nfv_pipeline, see ../pipeline_abi.h) and a C file that
 * includes this header and defines nfv_config and nfv_arena. The runtime
 * reads them at boot; nothing here changes at run time except the arena.
 */
#ifndef NFV_IMAGE_H
#define NFV_IMAGE_H

#include <stdint.h>
#include "pipeline_abi.h"

/* A packet source of the config (InfiniteSource, RatedSource): the runtime
 * copies `data` into a free pool slot and injects it with
 * in_port = NFV_FIRST_SOURCE + its index in nfv_config.sources. */
struct nfv_source {
    const uint8_t *data;        /* the packet bytes */
    uint32_t length;            /* at most NFV_BUF_STRIDE - NFV_HEADROOM */
    uint32_t burst;             /* packets injected per main-loop round */
    int64_t limit;              /* total packets to make; -1 = no limit */
    uint64_t interval_ns;       /* 0 = as fast as possible; else at most one packet per interval */
};

/* A host-side sink the pipeline may send copies to (out_port NFV_FIRST_SINK + k).
 * In the unikernel only Print has one: its copies are printed on the console in
 * Click's format, `LABEL: LENGTH | DATA`; other kinds are rejected at build time. */
struct nfv_sink {
    const char *label;          /* Print's LABEL ("" for none) */
    int32_t maxlength;          /* bytes shown; -1 = all */
    uint8_t contents;           /* NFV_PRINT_NONE, NFV_PRINT_HEX or NFV_PRINT_ASCII */
    uint8_t timestamp;          /* 1: show the packet's timestamp (seconds.nanoseconds) */
};
#define NFV_PRINT_NONE 0u
#define NFV_PRINT_HEX 1u
#define NFV_PRINT_ASCII 2u

struct nfv_image_config {
    const char *name;           /* config name, printed at boot */
    uint32_t nic_count;         /* NICs the config uses: devices 0..nic_count-1 */
    uint32_t source_count;      /* sources[k] enters with in_port NFV_FIRST_SOURCE + k */
    const struct nfv_source *sources;
    uint64_t arena_len;         /* bytes of nfv_arena */
    const uint8_t *arena_init;  /* the arena's initial state, packed (format: arena.c),
                                   unpacked into nfv_arena at boot; 0 = all zero */
    uint32_t sink_count;        /* sinks[k] receives out_port NFV_FIRST_SINK + k */
    const struct nfv_sink *sinks;
};

extern const struct nfv_image_config nfv_config;

/* Element state (tables, counters), starting with struct nfv_arena_header:
 * nfv_config.arena_len bytes, 64-byte aligned, zero in the image (.bss) and
 * filled from nfv_config.arena_init at boot. The generated C puts the packed
 * bytes in section .arena_init, which nfv.ld loads above the image's end:
 * once unpacked, that memory goes to the allocator. */
extern uint8_t nfv_arena[];

/* The compiled pipeline (object file from nfv/compile). */
int32_t nfv_pipeline(uint8_t *pool, int64_t pool_len, struct nfv_pkt_meta *meta, int32_t n,
                     int32_t meta_cap, uint8_t *arena, int64_t arena_len, uint64_t now_ns);

#endif /* NFV_IMAGE_H */
