/*
 * pipeline_abi.h - how a driver calls a compiled nfv pipeline.
 *
 * nfv compiles a whole element graph into one function (Numba cfunc on the
 * host, the same code as an object file in the unikernel). Drivers on both
 * targets call it through this prototype, once per batch, and own everything
 * around it: receiving into the pool, refilling the free list, transmitting
 * what the pipeline marked for a device.
 *
 * Plain C99 with <stdint.h> only: the unikernel includes it freestanding.
 */
#ifndef NFV_PIPELINE_ABI_H
#define NFV_PIPELINE_ABI_H

#include <stdint.h>
#include "packet_layout.h"

/*
 * One call processes meta[0..n) and returns how many records are in use
 * afterwards: n, plus one for each packet the pipeline made (a Tee copy, an
 * ICMP error, an ARP query), appended at meta[n..] up to meta_cap. A negative
 * return is an internal error the driver reports and stops on.
 *
 * On return each record's out_port says where its packet goes:
 *   0..NFV_MAX_DEVICES-1  transmit on that device (ToDevice(N))
 *   NFV_FIRST_SINK..      a host-only sink (ToDump number out_port - NFV_FIRST_SINK)
 *   NFV_NO_PORT           dropped; drop_reason says why, its buffer is free again
 * and in_port says where it entered: a device number, or NFV_FIRST_SOURCE + k
 * for the k-th packet source of the config (InfiniteSource, FromDump, ...),
 * whose packets the driver makes and injects.
 *
 * pool/pool_len: the buffer pool (NFV_BUF_STRIDE-byte slots).
 * arena/arena_len: element state, laid out by the compiler; starts with
 *   struct nfv_arena_header. now_ns: the driver's clock (kernels never read one).
 */
typedef int32_t (*nfv_pipeline_fn)(uint8_t *pool, int64_t pool_len,
                                   struct nfv_pkt_meta *meta, int32_t n, int32_t meta_cap,
                                   uint8_t *arena, int64_t arena_len, uint64_t now_ns);

#define NFV_MAX_DEVICES 8u
#define NFV_FIRST_SOURCE 8u   /* in_port of the first packet source */
#define NFV_FIRST_SINK 8u     /* out_port of the first host-only sink */

/*
 * The arena starts with the free list of pool slots that elements making new
 * packets take from. The driver pushes free slot numbers (slot = offset /
 * NFV_BUF_STRIDE) before each call; the pipeline pops them. When it is empty
 * a new packet is dropped and counted, never waited for.
 */
#define NFV_FREE_CAP 256u

struct nfv_arena_header {
    uint32_t free_count;                /* valid entries in free_slots */
    uint32_t reserved;
    uint32_t free_slots[NFV_FREE_CAP];
};

#endif /* NFV_PIPELINE_ABI_H */
