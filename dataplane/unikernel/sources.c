/*
 * sources.c - packet sources of the config (InfiniteSource, RatedSource).
 *
 * Each round, each source puts up to `burst` copies of its packet into free
 * pool slots, so the pipeline sees them exactly like received frames but with
 * in_port NFV_FIRST_SOURCE + k. A source with an interval makes at most one
 * packet per round and keeps its long-run rate without bursting to catch up.
 */
#include "pool.h"
#include "runtime.h"
#include "console.h"
#include "exit.h"

#define MAX_SOURCES 64

struct source_state {
    int64_t made;
    uint64_t next_ns;               /* interval sources: when the next may go */
};

static struct source_state state[MAX_SOURCES];

int sources_check(void)
{
    if (nfv_config.source_count > MAX_SOURCES) {
        con_printf("config: %u sources, the runtime handles at most %u\n", nfv_config.source_count, MAX_SOURCES);
        return NFV_EXIT_BOOT;
    }
    for (unsigned k = 0; k < nfv_config.source_count; k++) {
        uint32_t len = nfv_config.sources[k].length;
        if (len == 0 || len > NFV_BUF_STRIDE - NFV_HEADROOM) {
            con_printf("config: source %u packet is %u bytes, must be 1..%u\n", k, len,
                       NFV_BUF_STRIDE - NFV_HEADROOM);
            return NFV_EXIT_BOOT;
        }
    }
    return 0;
}

unsigned sources_inject(struct nfv_pkt_meta *meta, unsigned room, uint64_t now_ns)
{
    unsigned n = 0;
    for (unsigned k = 0; k < nfv_config.source_count && n < room; k++) {
        const struct nfv_source *src = &nfv_config.sources[k];
        struct source_state *st = &state[k];
        uint64_t want = src->burst ? src->burst : 1;
        if (src->limit >= 0 && (uint64_t)(src->limit - st->made) < want)
            want = (uint64_t)(src->limit - st->made);
        if (src->interval_ns && want) {
            if (now_ns < st->next_ns)
                continue;
            want = 1;
            st->next_ns += src->interval_ns;
            if (st->next_ns < now_ns)           /* fell behind: restart the schedule */
                st->next_ns = now_ns + src->interval_ns;
        }
        uint32_t slot;
        while (want-- && n < room && pool_get(&slot)) {
            uint32_t offset = slot * NFV_BUF_STRIDE + NFV_HEADROOM;
            __builtin_memcpy(pool_at(offset), src->data, src->length);
            meta[n++] = (struct nfv_pkt_meta){
                .timestamp_ns = now_ns,
                .offset = offset,
                .net_offset = NFV_NO_NET_HEADER,
                .length = (uint16_t)src->length,
                .in_port = (uint8_t)(NFV_FIRST_SOURCE + k),
                .out_port = NFV_NO_PORT,
            };
            st->made++;
        }
    }
    return n;
}

int sources_done(void)
{
    for (unsigned k = 0; k < nfv_config.source_count; k++) {
        const struct nfv_source *src = &nfv_config.sources[k];
        if (src->limit < 0 || state[k].made < src->limit)
            return 0;
    }
    return 1;
}
