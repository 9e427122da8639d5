/* swap_config.c - what a generated config file looks like, for the swap test
 * pipeline: two NICs, no sources, the arena with its counters. */
#include "nfv_image.h"

#define ARENA_LEN (1088 + 16 * 8)

uint8_t nfv_arena[ARENA_LEN] __attribute__((aligned(64)));

const struct nfv_image_config nfv_config = {
    .name = "swap-test",
    .nic_count = 2,
    .source_count = 0,
    .sources = 0,
    .arena_len = ARENA_LEN,
};
