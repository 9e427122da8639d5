/* source_config.c - a source-only config: no NICs, two sources with limits,
 * so the runtime must end by itself with "done packets=N". */
#include "nfv_image.h"

#define ARENA_LEN (1088 + 16 * 8)

uint8_t nfv_arena[ARENA_LEN] __attribute__((aligned(64)));

static const uint8_t frame[60] = {
    0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00, 0x45, 0x00, 0x00, 0x2e,
};

static const struct nfv_source sources[] = {
    {frame, sizeof frame, 32, 10000, 0},        /* as fast as possible */
    {frame, sizeof frame, 1, 3, 1000000},       /* RatedSource: 3 packets, 1 ms apart */
};

const struct nfv_image_config nfv_config = {
    .name = "source-test",
    .nic_count = 0,
    .source_count = 2,
    .sources = sources,
    .arena_len = ARENA_LEN,
};
