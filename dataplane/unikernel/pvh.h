/*
 * pvh.h - what the loader tells us through the PVH start_info: the command
 * line and the memory map.
 */
#ifndef NFV_PVH_H
#define NFV_PVH_H

#include <stdint.h>

struct boot_info {
    const char *cmdline;            /* "" if none */
    uint64_t ram_start, ram_end;    /* the usable RAM region holding the image */
};

/* Returns 0 and fills info, or -1 if start_info is not a PVH start_info. */
int pvh_parse(uint32_t start_info, uint64_t image_end, struct boot_info *info);

#endif /* NFV_PVH_H */
