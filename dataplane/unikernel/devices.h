/*
 * devices.h - find the virtio-net devices and number them NIC 0, 1, ...
 */
#ifndef NFV_DEVICES_H
#define NFV_DEVICES_H

#include <stdint.h>

#define NFV_MAX_NICS 8

/* Fills bases[] with the MMIO base of each virtio-net device, in NIC order,
 * and returns how many were found; stops at max. */
int devices_find(const char *cmdline, uintptr_t *bases, int max);

#endif /* NFV_DEVICES_H */
