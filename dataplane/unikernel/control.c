/*
 * control.c - the host's command channel over the serial console.
 *
 * One command per line from the host, answered with whole lines:
 *   read OFF LEN   ->  data <hex of nfv_arena[OFF..OFF+LEN)>   (LEN <= 4096)
 *   write OFF HEX  ->  ok: the bytes HEX (2..8192 hex digits) copied to nfv_arena[OFF..]
 *   hold           ->  ok: run no batch until `release` (or HOLD_IDLE_MS without a command)
 *   release        ->  ok: batches run again
 *   nics           ->  nic I rx=.. tx=.. rx_dropped=.. tx_dropped=.. rx_oversize=.. mac=..  (one per NIC)
 *   stats          ->  stats batches=.. packets=.. created=.. errors=.. notifies=.. queue=.. slots=.. free=..
 *   drops          ->  drops REASON=COUNT ...  (records the pipeline dropped, nonzero reasons only)
 *   quit           ->  the nics lines, then exit with NFV_EXIT_NORMAL
 * Anything else   ->  error <reason>
 * Checking the UART is a VM exit (~26 us), so it happens only about once per
 * millisecond of TSC time: a ~2% cost at worst, and none per packet.
 */
#include "clock.h"
#include "console.h"
#include "exit.h"
#include "io.h"
#include "pool.h"
#include "runtime.h"

#define READ_MAX 4096
#define WRITE_MAX 4096      /* bytes per `write`: 8192 hex digits, within CON_LINE_MAX */
#define HOLD_IDLE_MS 2000   /* a host that went away while holding cannot stop the NF for good */

/*
 * Reading the UART is a VM exit (~26 us here). Polled every millisecond that
 * was 2.6% of a forwarding core; every 10 ms it is 0.3%. Commands come in
 * bursts (a test reads counters before and after each exchange), so for 200 ms
 * after a command the console is polled every millisecond again.
 */
static uint64_t ticks_per_ms, next_poll, eager_until;
static int held;
static char line[CON_LINE_MAX + 1];     /* static: too big for the 64 KiB stack's comfort */

void control_init(uint64_t tsc_khz) { ticks_per_ms = tsc_khz; }   /* kHz = ticks per ms */

static int parse_u64(const char **s, uint64_t *out)
{
    const char *p = *s;
    while (*p == ' ')
        p++;
    uint64_t v = 0;
    int digits = 0;
    if (p[0] == '0' && p[1] == 'x') {
        for (p += 2;; p++, digits++) {
            unsigned d;
            if (*p >= '0' && *p <= '9') d = *p - '0';
            else if (*p >= 'a' && *p <= 'f') d = *p - 'a' + 10;
            else break;
            if (v >> 60)
                return 0;
            v = v * 16 + d;
        }
    } else {
        for (; *p >= '0' && *p <= '9'; p++, digits++) {
            if (v > (~0ull - 9) / 10)
                return 0;
            v = v * 10 + (*p - '0');
        }
    }
    *s = p;
    *out = v;
    return digits > 0;
}

static int word_is(const char *line, const char *word, const char **rest)
{
    while (*word)
        if (*line++ != *word++)
            return 0;
    if (*line != '\0' && *line != ' ')
        return 0;
    *rest = line;
    return 1;
}

static void command_read(const char *args)
{
    uint64_t off, len;
    if (!parse_u64(&args, &off) || !parse_u64(&args, &len)) {
        con_printf("error read: usage: read OFF LEN\n");
        return;
    }
    if (len == 0 || len > READ_MAX) {
        con_printf("error read: LEN must be 1..%u\n", READ_MAX);
        return;
    }
    if (off > nfv_config.arena_len || len > nfv_config.arena_len - off) {
        con_printf("error read: %lu+%lu is outside the arena (%lu bytes)\n", off, len, nfv_config.arena_len);
        return;
    }
    char buf[128];
    size_t n = 0;
    con_write("data ", 5);
    for (uint64_t i = 0; i < len; i++) {
        uint8_t b = nfv_arena[off + i];
        buf[n++] = "0123456789abcdef"[b >> 4];
        buf[n++] = "0123456789abcdef"[b & 15];
        if (n == sizeof buf) {
            con_write(buf, n);
            n = 0;
        }
    }
    buf[n++] = '\n';
    con_write(buf, n);
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/*
 * write OFF HEX: what write handlers use (nfv/unikernel/target.py) to change
 * element state. Safe without any locking because the control channel is
 * serviced only between two batches (main.c loop(): run_batch() returns,
 * then control_poll()), on the one CPU, with interrupts off: the pipeline
 * never sees a half-done `write`. A change bigger than one command is sent
 * between `hold` and `release` so that it, too, lands between two batches.
 * Every byte of the arena after its header may be written: the stats rows and
 * drop-reason counters too (handlers such as reset_counts zero them). The
 * header (struct nfv_arena_header, the free list of pool slots) belongs to
 * the runtime: a slot number written there could hand the pipeline a buffer
 * someone else owns, so it is refused. The whole line is checked before a
 * byte is written: an error changes nothing.
 */
static void command_write(const char *args)
{
    uint64_t off;
    if (!parse_u64(&args, &off) || *args != ' ') {
        con_printf("error write: usage: write OFF HEX\n");
        return;
    }
    while (*args == ' ')
        args++;
    uint64_t digits = 0;
    while (hex_digit(args[digits]) >= 0)
        digits++;
    if (args[digits] != '\0') {
        con_printf("error write: '%c' at hex digit %lu is not a hex digit\n",
                   args[digits] >= 0x20 && args[digits] < 0x7f ? args[digits] : '?', digits);
        return;
    }
    uint64_t len = digits / 2;
    if (digits == 0 || digits % 2 || len > WRITE_MAX) {
        con_printf("error write: HEX must be 2..%u hex digits, an even number (got %lu)\n", 2 * WRITE_MAX,
                   digits);
        return;
    }
    if (off > nfv_config.arena_len || len > nfv_config.arena_len - off) {
        con_printf("error write: %lu+%lu is outside the arena (%lu bytes)\n", off, len, nfv_config.arena_len);
        return;
    }
    if (off < sizeof(struct nfv_arena_header)) {
        con_printf("error write: %lu+%lu overlaps the arena header (bytes 0..%lu, the runtime's free list)\n",
                   off, len, (uint64_t)sizeof(struct nfv_arena_header));
        return;
    }
    for (uint64_t i = 0; i < len; i++)
        nfv_arena[off + i] = (uint8_t)(hex_digit(args[2 * i]) << 4 | hex_digit(args[2 * i + 1]));
    con_write("ok\n", 3);
}

void control_print_nics(void)
{
    for (unsigned i = 0; i < nfv_rt.nic_count; i++) {
        const struct nic *nic = &nfv_rt.nics[i];
        con_printf("nic %u rx=%lu tx=%lu rx_dropped=%lu tx_dropped=%lu rx_oversize=%lu "
                   "mac=%02x:%02x:%02x:%02x:%02x:%02x\n",
                   i, nic->rx_packets, nic->tx_packets, nic->rx_dropped, nic->tx_dropped, nic->rx_oversize,
                   nic->mac[0], nic->mac[1], nic->mac[2], nic->mac[3], nic->mac[4], nic->mac[5]);
    }
}

static void command_stats(void)
{
    uint64_t notifies = 0;
    for (unsigned i = 0; i < nfv_rt.nic_count; i++)
        notifies += nfv_rt.nics[i].notifies;
    con_printf("stats batches=%lu packets=%lu created=%lu errors=%lu notifies=%lu queue=%u slots=%u free=%u\n",
               nfv_rt.batches, nfv_rt.packets, nfv_rt.created, nfv_rt.errors, notifies, nfv_rt.queue_size,
               nfv_pool.slots, nfv_pool.free_top);
}

static void command_drops(void)
{
    char buf[32];
    con_write("drops", 5);
    for (unsigned reason = 0; reason < 256; reason++) {
        if (!nfv_rt.drops[reason])
            continue;
        /* one small line piece per reason; con_printf would end the line */
        size_t n = 0;
        uint64_t v = nfv_rt.drops[reason];
        char digits[24];
        int d = 0;
        do {
            digits[d++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        buf[n++] = ' ';
        if (reason >= 100) buf[n++] = (char)('0' + reason / 100);
        if (reason >= 10) buf[n++] = (char)('0' + reason / 10 % 10);
        buf[n++] = (char)('0' + reason % 10);
        buf[n++] = '=';
        while (d)
            buf[n++] = digits[--d];
        con_write(buf, n);
    }
    con_write("\n", 1);
}

static void dispatch(const char *line)
{
    const char *rest;
    if (word_is(line, "read", &rest))
        command_read(rest);
    else if (word_is(line, "write", &rest))
        command_write(rest);
    else if (word_is(line, "hold", &rest)) {
        held = 1;
        con_write("ok\n", 3);
    } else if (word_is(line, "release", &rest)) {
        held = 0;
        con_write("ok\n", 3);
    } else if (word_is(line, "nics", &rest))
        control_print_nics();
    else if (word_is(line, "stats", &rest))
        command_stats();
    else if (word_is(line, "drops", &rest))
        command_drops();
    else if (word_is(line, "quit", &rest)) {
        control_print_nics();
        nfv_exit(NFV_EXIT_NORMAL);
    } else if (line[0] == CON_LINE_TOO_LONG)
        con_printf("error line: longer than %u characters\n", CON_LINE_MAX);
    else if (line[0] == '\0')
        return;
    else {
        /* Echo a printable prefix so the host can tell which line failed. */
        char shown[40];
        unsigned i = 0;
        for (; line[i] && i < sizeof shown - 1; i++)
            shown[i] = line[i] >= 0x20 && line[i] < 0x7f ? line[i] : '?';
        shown[i] = '\0';
        con_printf("error unknown command: %s\n", shown);
    }
}

void control_poll(void)
{
    uint64_t now = rdtsc();
    if (now < next_poll)
        return;
    next_poll = now + (now < eager_until ? 1 : 10) * ticks_per_ms;
    if (!con_poll_line(line, sizeof line)) {
        /* A long line (a `write`) is coming in: fetch the rest each round,
         * not one FIFO's worth (16 bytes) per millisecond. */
        if (con_line_pending())
            next_poll = now;
        return;
    }
    dispatch(line);
    /* Held: nothing but the console until `release`, so a change spread
     * over several commands reaches the pipeline whole. */
    uint64_t last = rdtsc();
    while (held) {
        if (con_poll_line(line, sizeof line)) {
            dispatch(line);
            last = rdtsc();
        } else if (con_line_pending()) {
            last = rdtsc();
        } else if (rdtsc() - last > HOLD_IDLE_MS * ticks_per_ms) {
            held = 0;
            con_printf("error hold: no command for %u ms, running again\n", HOLD_IDLE_MS);
        }
    }
    /* More input may be waiting right behind this line: look again soon. */
    now = rdtsc();
    next_poll = now;
    eager_until = now + 200 * ticks_per_ms;
}
