/*
 * control.c - the host's command channel over the serial console.
 *
 * One command per line from the host, answered with whole lines:
 *   read OFF LEN   ->  data <hex of nfv_arena[OFF..OFF+LEN)>   (LEN <= 4096)
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

/*
 * Reading the UART is a VM exit (~26 us here). Polled every millisecond that
 * was 2.6% of a forwarding core; every 10 ms it is 0.3%. Commands come in
 * bursts (a test reads counters before and after each exchange), so for 200 ms
 * after a command the console is polled every millisecond again.
 */
static uint64_t ticks_per_ms, next_poll, eager_until;

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

void control_poll(void)
{
    uint64_t now = rdtsc();
    if (now < next_poll)
        return;
    next_poll = now + (now < eager_until ? 1 : 10) * ticks_per_ms;
    char line[128];
    if (!con_poll_line(line, sizeof line))
        return;
    /* More input may be waiting right behind this line: look again soon. */
    next_poll = now;
    eager_until = now + 200 * ticks_per_ms;
    const char *rest;
    if (word_is(line, "read", &rest))
        command_read(rest);
    else if (word_is(line, "nics", &rest))
        control_print_nics();
    else if (word_is(line, "stats", &rest))
        command_stats();
    else if (word_is(line, "drops", &rest))
        command_drops();
    else if (word_is(line, "quit", &rest)) {
        control_print_nics();
        nfv_exit(NFV_EXIT_NORMAL);
    } else if (line[0] == '\0')
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
