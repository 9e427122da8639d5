/*
 * devices.c - virtio-mmio device discovery.
 *
 * With acpi=off, QEMU microvm (and Firecracker always) lists its virtio-mmio
 * devices on the kernel command line, Linux style:
 *     virtio_mmio.device=512@0xfeb00e00:12
 * (size with optional K/M suffix, @ base address, : IRQ). Their order is the
 * order of the -device options, which is what makes "NIC 0" mean the first
 * NIC the user gave. Without that list we scan microvm's slots; QEMU gives
 * the first device the highest slot, so the scan goes downwards. There are 8
 * slots with acpi=off and 24 with ACPI on (which also leaves the command line
 * without the list), so the scan covers 24: an empty or absent slot costs
 * one read (its magic is not "virt").
 * Non-network virtio devices are skipped in both cases.
 */
#include "devices.h"
#include "console.h"
#include "io.h"
#include "pagetables.h"

#define VIRTIO_MAGIC      0x74726976u   /* "virt" */
#define VIRTIO_ID_NET     1
#define SCAN_BASE         0xfeb00000u
#define SCAN_STRIDE       0x200u
#define SCAN_SLOTS        24

static int is_net(uintptr_t base)
{
    return mmio_read32(base + 0x00) == VIRTIO_MAGIC && mmio_read32(base + 0x08) == VIRTIO_ID_NET;
}

static int starts_with(const char *s, const char *prefix)
{
    while (*prefix)
        if (*s++ != *prefix++)
            return 0;
    return 1;
}

/* Parses a number in C syntax (0x.. hex or decimal); *end gets the stop. */
static uint64_t parse_number(const char *s, const char **end)
{
    uint64_t v = 0;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        for (;; s++) {
            unsigned d;
            if (*s >= '0' && *s <= '9') d = *s - '0';
            else if (*s >= 'a' && *s <= 'f') d = *s - 'a' + 10;
            else if (*s >= 'A' && *s <= 'F') d = *s - 'A' + 10;
            else break;
            v = v * 16 + d;
        }
    } else {
        while (*s >= '0' && *s <= '9')
            v = v * 10 + (*s++ - '0');
    }
    *end = s;
    return v;
}

int devices_find(const char *cmdline, uintptr_t *bases, int max)
{
    static const char key[] = "virtio_mmio.device=";
    int n = 0, listed = 0;
    const char *p = cmdline;
    while (*p) {
        while (*p == ' ')
            p++;
        if (starts_with(p, key)) {
            const char *q = p + sizeof key - 1;
            parse_number(q, &q);                /* size: not needed, always 0x200 here */
            if (*q == 'K' || *q == 'k' || *q == 'M' || *q == 'm')
                q++;
            if (*q == '@') {
                uint64_t base = parse_number(q + 1, &q);
                listed++;
                if (n < max && !pt_mmio_mapped(base, SCAN_STRIDE))
                    /* Reading it would fault: pagetables.S maps two windows only. */
                    con_printf("nics: virtio-mmio device at 0x%lx is outside the mapped windows "
                               "(0x%x, 0x%x: 2 MiB each); skipped\n", base, PT_MMIO_FIRECRACKER,
                               PT_MMIO_MICROVM);
                else if (n < max && is_net((uintptr_t)base))
                    bases[n++] = (uintptr_t)base;
            }
        }
        while (*p && *p != ' ')
            p++;
    }
    if (listed)
        return n;
    for (int slot = SCAN_SLOTS - 1; slot >= 0 && n < max; slot--) {
        uintptr_t base = SCAN_BASE + (uintptr_t)slot * SCAN_STRIDE;
        if (is_net(base))
            bases[n++] = base;
    }
    return n;
}
