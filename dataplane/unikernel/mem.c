/*
 * mem.c - bump allocation from [start, end), mapping what it hands out.
 *
 * Boot maps RAM only as far as the image reaches (pagetables.S); the pages
 * above are mapped here as allocations reach them, so a VM with 1 GiB costs
 * no more page-table writes than one with 8 MiB (each write to a live page
 * table is a VM exit under shadow paging: ~7 us). The page tables map RAM up
 * to 1 GiB at most, so the region is clipped there. Memory comes from the
 * loader already zeroed and is handed out once, so mem_alloc does not clear it.
 */
#include "mem.h"
#include "pagetables.h"

#define PAGE (1ull << PT_PAGE_SHIFT)

static uint64_t next, limit, mapped;

extern volatile uint64_t nfv_pd_low[512];
extern char __boot_pd_pages[];          /* nfv.ld: pd_low[1..N] are mapped at boot */

/* Map every 2 MiB page below `end` (end <= limit <= 1 GiB). */
static void map_to(uint64_t end)
{
    for (; mapped < end; mapped += PAGE)
        nfv_pd_low[mapped >> PT_PAGE_SHIFT] = mapped | PT_P | PT_RW | PT_US | PT_PS | (uint64_t)PT_NX_HI << 32;
}

void mem_init(uint64_t start, uint64_t end)
{
    next = start;
    limit = end < PT_RAM_LIMIT ? end : PT_RAM_LIMIT;
    mapped = ((uintptr_t)__boot_pd_pages + 1) << PT_PAGE_SHIFT;
}

void *mem_alloc(size_t size, size_t align)
{
    uint64_t at = (next + align - 1) & ~(uint64_t)(align - 1);
    if (at > limit || size > limit - at)
        return NULL;
    next = at + size;
    map_to(next);
    return (void *)(uintptr_t)at;
}

uint64_t mem_left(void) { return next < limit ? limit - next : 0; }
