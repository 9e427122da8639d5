/*
 * pvh.c - read the PVH start_info (layout from the Xen/PVH boot ABI).
 */
#include "pvh.h"

#define PVH_MAGIC 0x336ec578u
#define E820_RAM  1

struct hvm_start_info {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;          /* version >= 1 */
    uint32_t memmap_entries;
    uint32_t reserved;
};

struct hvm_memmap_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
};

int pvh_parse(uint32_t start_info, uint64_t image_end, struct boot_info *info)
{
    /* QEMU's PVH path also leaves the multiboot magic in eax, so the magic in
     * memory is the only trustworthy sign of a PVH boot. */
    const struct hvm_start_info *si = (const void *)(uintptr_t)start_info;
    if (start_info == 0 || si->magic != PVH_MAGIC)
        return -1;
    info->cmdline = si->cmdline_paddr ? (const char *)(uintptr_t)si->cmdline_paddr : "";
    info->ram_start = info->ram_end = 0;
    if (si->version < 1)
        return 0;
    /* The region we allocate from is the RAM entry the image sits in; the
     * map ends with a zero-length entry, which the range test skips. */
    const struct hvm_memmap_entry *e = (const void *)(uintptr_t)si->memmap_paddr;
    for (uint32_t i = 0; i < si->memmap_entries; i++) {
        if (e[i].type != E820_RAM || e[i].size == 0)
            continue;
        if (e[i].addr <= image_end && image_end < e[i].addr + e[i].size) {
            info->ram_start = image_end;
            info->ram_end = e[i].addr + e[i].size;
        }
    }
    return 0;
}
