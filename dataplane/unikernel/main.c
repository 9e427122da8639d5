/*
 * main.c - boot at CPL3, then the dataplane loop.
 *
 * Boot: fault handlers, console, clock, PVH info, the config checked and its
 * arena unpacked, NIC discovery, memory (pool, metadata, rings, sized to the
 * RAM there is), device setup, then the single line
 * "ready nics=N boot_us=T config=NAME" the launcher waits for.
 *
 * Loop, one round:
 *   take back transmitted slots; poll the RX used rings and the sources into
 *   one batch of at most `room` packets, room being what every TX ring can
 *   still take (at most NFV_MAX_BATCH); top up the arena free list; call
 *   nfv_pipeline once; send or free each returned record; refill RX rings;
 *   look at the console about once a millisecond.
 *
 * Backpressure. A frame taken from an RX ring always finds a TX slot, so the
 * runtime never drops what it received because a wire is slow: when a TX
 * ring is full it stops taking RX, the RX rings fill, and the device stops
 * reading its backend (QEMU's stream netdev then stops reading the socket
 * and TCP pushes back on the sender). Only packets the pipeline makes beyond
 * the room (Tee copies, ICMP errors) can still find a ring full: tx_dropped.
 */
#include "clock.h"
#include "console.h"
#include "devices.h"
#include "exit.h"
#include "io.h"
#include "mem.h"
#include "pool.h"
#include "pvh.h"
#include "runtime.h"

#define MIN_QUEUE 16

#define STACK_CANARY 0x6e66762d73746b21ull     /* "nfv-stk!" */

extern char __image_end[];
extern volatile uint64_t nfv_stack_bottom;
void idt_init(void);

struct runtime nfv_rt;
struct pool nfv_pool;

/* ---- memory ------------------------------------------------------------- */

/* Slots needed so that no owner ever starves another: every RX ring full,
 * every TX ring full, one batch in flight, and a full arena free list. */
__attribute__((cold)) static uint32_t slots_for(unsigned queue)
{
    return nfv_rt.nic_count * 2 * queue + NFV_MAX_BATCH + NFV_FREE_CAP;
}

__attribute__((cold)) static uint64_t bytes_for(unsigned queue)
{
    uint64_t slots = slots_for(queue);
    return slots * NFV_BUF_STRIDE + 4096             /* pool, slot-aligned */
           + slots * sizeof(uint32_t) + 64           /* free stack */
           + (uint64_t)nfv_rt.meta_cap * sizeof(struct nfv_pkt_meta) + 64
           + nfv_rt.nic_count * (uint64_t)nic_memory(queue);
}

/* Largest queue size (256 down to 16) whose memory fits, then allocate. */
__attribute__((cold)) static void memory_setup(void)
{
    nfv_rt.meta_cap = NFV_MAX_BATCH + NFV_FREE_CAP;
    unsigned queue = 256;
    while (queue > MIN_QUEUE && bytes_for(queue) > mem_left())
        queue >>= 1;
    if (bytes_for(queue) > mem_left()) {
        con_printf("memory: need %lu KiB for %u NICs (queues of %u), have %lu KiB; give the VM more RAM (-m)\n",
                   bytes_for(queue) >> 10, nfv_rt.nic_count, queue, mem_left() >> 10);
        nfv_exit(NFV_EXIT_NO_MEMORY);
    }
    nfv_rt.queue_size = queue;
    nfv_pool.slots = slots_for(queue);
    nfv_pool.base = mem_alloc((uint64_t)nfv_pool.slots * NFV_BUF_STRIDE, 4096);
    nfv_pool.free = mem_alloc(nfv_pool.slots * sizeof(uint32_t), 64);
    nfv_rt.meta = mem_alloc(nfv_rt.meta_cap * sizeof(struct nfv_pkt_meta), 64);
    /* Low slots on top of the stack: they are handed out first. */
    for (uint32_t i = 0; i < nfv_pool.slots; i++)
        nfv_pool.free[i] = nfv_pool.slots - 1 - i;
    nfv_pool.free_top = nfv_pool.slots;
}

/* ---- boot ----------------------------------------------------------------- */

__attribute__((cold)) static void check_config(void)
{
    const struct nfv_image_config *c = &nfv_config;
    if (c->nic_count > NFV_MAX_NICS) {
        con_printf("config: %u NICs, the runtime drives at most %u\n", c->nic_count, NFV_MAX_NICS);
        nfv_exit(NFV_EXIT_BOOT);
    }
    if (c->arena_len < sizeof(struct nfv_arena_header)) {
        con_printf("config: arena of %lu bytes cannot hold the free-list header\n", c->arena_len);
        nfv_exit(NFV_EXIT_BOOT);
    }
    if (sources_check() != 0)
        nfv_exit(NFV_EXIT_BOOT);
    /* Before the allocator hands out the memory the packed state was loaded in. */
    if (c->arena_init && nfv_arena_unpack(c->arena_init, nfv_arena, c->arena_len) != 0) {
        con_printf("config: the arena's packed initial state is malformed or longer than %lu bytes\n",
                   c->arena_len);
        nfv_exit(NFV_EXIT_BOOT);
    }
}

__attribute__((cold)) static void find_nics(const char *cmdline)
{
    uintptr_t bases[NFV_MAX_NICS];
    /* Stop at the NICs the config uses: every probe is two VM exits, and a
     * source-only config needs no probing at all. */
    int found = nfv_config.nic_count ? devices_find(cmdline, bases, (int)nfv_config.nic_count) : 0;
    nfv_rt.nic_count = nfv_config.nic_count;
    if ((unsigned)found < nfv_config.nic_count) {
        con_printf("nics: found %d virtio-net device%s, config %s needs %u\n", found, found == 1 ? "" : "s",
                   nfv_config.name, nfv_config.nic_count);
        nfv_exit(NFV_EXIT_NO_NICS);
    }
    memory_setup();
    for (unsigned i = 0; i < nfv_rt.nic_count; i++) {
        int err = nic_init(&nfv_rt.nics[i], bases[i], i, nfv_rt.queue_size);
        if (err)
            nfv_exit((unsigned)err);
    }
}

/* ---- the loop --------------------------------------------------------------- */

static void top_up_free_list(void)
{
    struct nfv_arena_header *h = (struct nfv_arena_header *)nfv_arena;
    uint32_t slot;
    while (h->free_count < NFV_FREE_CAP && pool_get(&slot))
        h->free_slots[h->free_count++] = slot;
}

/* Print's copy: one console line in Click's format (nfv/elements/standard.py,
 * Print.line, is the host's twin). Each byte is a VM exit: for debugging only. */
static void print_packet(const struct nfv_sink *sink, const uint8_t *data, uint32_t length, uint64_t stamp)
{
    static const char hex[] = "0123456789abcdef";
    char line[64];
    if (sink->label[0])
        con_printf("%s: ", sink->label);
    if (sink->timestamp)
        con_printf("%lu.%09lu: ", stamp / 1000000000u, stamp % 1000000000u);
    con_printf("%4u", length);
    uint32_t shown = sink->maxlength < 0 || (uint32_t)sink->maxlength > length ? length
                                                                                 : (uint32_t)sink->maxlength;
    if (sink->contents != NFV_PRINT_NONE && shown) {
        con_write(" |", 2);
        unsigned used = 0;
        for (uint32_t k = 0; k < shown; k++) {
            if (sink->contents == NFV_PRINT_HEX) {
                if (k % 4 == 0)
                    line[used++] = ' ';
                line[used++] = hex[data[k] >> 4];
                line[used++] = hex[data[k] & 15];
            } else {
                if (k == 0)
                    line[used++] = ' ';
                line[used++] = data[k] >= 32 && data[k] < 127 ? (char)data[k] : '.';
            }
            if (used > sizeof line - 4) {
                con_write(line, used);
                used = 0;
            }
        }
        con_write(line, used);
    }
    con_write("\n", 1);
}

/* Send, or free, one record the pipeline returned. */
static void dispatch(const struct nfv_pkt_meta *m)
{
    uint32_t offset = m->offset, length = m->length;
    uint32_t slot = offset / NFV_BUF_STRIDE;
    if (slot >= nfv_pool.slots) {       /* not a pool offset: nothing we can free */
        nfv_rt.errors++;
        return;
    }
    if (m->out_port >= nfv_rt.nic_count) {
        if (m->out_port == NFV_NO_PORT)
            nfv_rt.drops[m->drop_reason]++;
        else if (m->out_port >= NFV_FIRST_SINK && m->out_port - NFV_FIRST_SINK < nfv_config.sink_count
                 && offset % NFV_BUF_STRIDE + length <= NFV_BUF_STRIDE)
            print_packet(&nfv_config.sinks[m->out_port - NFV_FIRST_SINK], pool_at(offset), length,
                         m->timestamp_ns);
        else
            nfv_rt.errors++;            /* a device this image does not have */
        pool_put(slot);
        return;
    }
    struct nic *nic = &nfv_rt.nics[m->out_port];
    uint32_t in_slot = offset % NFV_BUF_STRIDE;
    if (length == 0) {
        /* Nothing to put on the wire (Strip took it all): a drop with its reason,
         * as the host driver counts it, not an error. */
        nfv_rt.drops[NFV_DROP_EMPTY]++;
        pool_put(slot);
        return;
    }
    if (in_slot + length > NFV_BUF_STRIDE) {
        nfv_rt.errors++;
        pool_put(slot);
        return;
    }
    if (in_slot < 12) {
        /* An encapsulation used up the headroom the virtio header needs:
         * move the frame back rather than drop it (rare). */
        if (12 + length > NFV_BUF_STRIDE) {
            nfv_rt.errors++;
            pool_put(slot);
            return;
        }
        uint32_t moved = slot * NFV_BUF_STRIDE + 12;
        __builtin_memmove(pool_at(moved), pool_at(offset), length);
        offset = moved;
    }
    if (nic_tx_put(nic, offset, length) != 0) {
        nic->tx_dropped++;
        pool_put(slot);
    }
}

static void run_batch(unsigned n, uint64_t now)
{
    top_up_free_list();
    int32_t r = nfv_pipeline(nfv_pool.base, (int64_t)nfv_pool.slots * NFV_BUF_STRIDE, nfv_rt.meta, (int32_t)n,
                             (int32_t)nfv_rt.meta_cap, nfv_arena, (int64_t)nfv_config.arena_len, now);
    nfv_rt.batches++;
    nfv_rt.packets += n;
    if (r < 0) {
        con_printf("pipeline: error %d (batch %lu of %u packets)\n", r, nfv_rt.batches, n);
        nfv_exit(NFV_EXIT_PIPELINE);
    }
    if ((unsigned)r < n || (unsigned)r > nfv_rt.meta_cap
        || ((struct nfv_arena_header *)nfv_arena)->free_count > NFV_FREE_CAP) {
        con_printf("pipeline: returned %d records for %u in (capacity %u), or broke the free list\n", r, n,
                   nfv_rt.meta_cap);
        nfv_exit(NFV_EXIT_PIPELINE);
    }
    nfv_rt.created += (unsigned)r - n;
    for (int32_t i = 0; i < r; i++)
        dispatch(&nfv_rt.meta[i]);
    for (unsigned i = 0; i < nfv_rt.nic_count; i++)
        nic_tx_flush(&nfv_rt.nics[i]);
}

/* Room for this round's batch: every packet taken may leave by any NIC, so
 * take no more than the fullest TX ring can still queue. */
static unsigned batch_room(void)
{
    unsigned room = NFV_MAX_BATCH;
    for (unsigned i = 0; i < nfv_rt.nic_count; i++) {
        struct nic *nic = &nfv_rt.nics[i];
        nic_tx_reclaim(nic);
        unsigned free = nic_tx_room(nic);
        if (free < room)
            room = free;
    }
    return room;
}

static __attribute__((noreturn)) void loop(void)
{
    unsigned first = 0;             /* who fills the batch first: NICs, then the sources */
    nfv_rt.loop_start_ns = clock_ns();
    for (;;) {
        uint64_t now = clock_ns();
        unsigned room = batch_room();
        unsigned n = 0;
        if (room) {
            /* Round robin, so that a busy NIC cannot starve the others (or
             * the sources) when the room is small. */
            for (unsigned k = 0; k <= nfv_rt.nic_count; k++) {
                unsigned who = first + k > nfv_rt.nic_count ? first + k - nfv_rt.nic_count - 1 : first + k;
                if (who < nfv_rt.nic_count)
                    n += nic_rx_poll(&nfv_rt.nics[who], nfv_rt.meta + n, room - n, now);
                else
                    n += sources_inject(nfv_rt.meta + n, room - n, now);
            }
            first = first == nfv_rt.nic_count ? 0 : first + 1;
        }
        if (n)
            run_batch(n, now);
        for (unsigned i = 0; i < nfv_rt.nic_count; i++)
            nic_rx_refill(&nfv_rt.nics[i]);
        if (nfv_rt.nic_count == 0 && sources_done()) {
            con_printf("done packets=%lu ns=%lu\n", nfv_rt.packets, clock_ns() - nfv_rt.loop_start_ns);
            nfv_exit(NFV_EXIT_NORMAL);
        }
        control_poll();
        if (nfv_stack_bottom != STACK_CANARY) {
            /* The pipeline's stack ran into whatever lies below it (the fault
             * stack): state may be corrupt, so stop rather than forward. */
            con_printf("fault: the 64 KiB stack overflowed\n");
            nfv_exit(NFV_EXIT_FAULT);
        }
    }
}

__attribute__((cold)) void nfv_main(uint32_t start_info)
{
    nfv_stack_bottom = STACK_CANARY;
    idt_init();
    con_init();
    int kvmclock = clock_init();
    struct boot_info boot;
    if (pvh_parse(start_info, (uintptr_t)__image_end, &boot) != 0) {
        con_printf("boot: no PVH start_info (magic mismatch); boot this image with a PVH loader\n");
        nfv_exit(NFV_EXIT_BOOT);
    }
    if (!kvmclock)
        con_printf("clock: no kvmclock; TSC %lu kHz measured against the PIT\n", clock_tsc_khz());
    check_config();
    mem_init(boot.ram_start, boot.ram_end);
    find_nics(boot.cmdline);
    control_init(clock_tsc_khz());
    /* The config's name rides on the ready line: a line of its own before
     * it would cost ~0.5 ms of boot (each byte is a VM exit). */
    con_printf("ready nics=%u boot_us=%lu config=%s\n", nfv_rt.nic_count, clock_ns() / 1000, nfv_config.name);
    loop();
}
