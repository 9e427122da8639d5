/*
 * mem.c - bump allocation from [start, end).
 *
 * The page tables map RAM only up to 1 GiB, so the region is clipped there.
 * Memory comes from the loader already zeroed and is handed out once, so
 * mem_alloc does not clear it.
 */
#include "mem.h"

#define MAPPED_LIMIT (1ull << 30)

static uint64_t next, limit;

void mem_init(uint64_t start, uint64_t end)
{
    next = start;
    limit = end < MAPPED_LIMIT ? end : MAPPED_LIMIT;
}

void *mem_alloc(size_t size, size_t align)
{
    uint64_t at = (next + align - 1) & ~(uint64_t)(align - 1);
    if (at > limit || size > limit - at)
        return NULL;
    next = at + size;
    return (void *)(uintptr_t)at;
}

uint64_t mem_left(void) { return next < limit ? limit - next : 0; }
