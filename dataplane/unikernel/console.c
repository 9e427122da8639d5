/*
 * console.c - 16550 UART at COM1, output and line input.
 *
 * Every port access is a VM exit (~26 us from CPL3 here), so output does not
 * poll the line status before each byte: with the FIFO on, one check that
 * the transmitter is empty (LSR.THRE) allows 16 blind writes. QEMU drains its
 * FIFO at once unless the host stops reading, and then we wait instead of
 * losing bytes. No baud-rate setup: emulated and virtual UARTs ignore it.
 */
#include <stdarg.h>
#include "console.h"
#include "io.h"

#define COM1      0x3f8
#define UART_DATA (COM1 + 0)
#define UART_FCR  (COM1 + 2)
#define UART_LSR  (COM1 + 5)
#define LSR_DR    0x01      /* a received byte is waiting */
#define LSR_THRE  0x20      /* transmit FIFO empty */
#define FIFO_LEN  16

static char line[CON_LINE_MAX + 1];
static size_t line_len;
static int line_overflow;

void con_init(void)
{
    /* Turning the FIFO on empties it (QEMU does so whenever the enable bit
     * changes), so first keep the one byte the host may already have sent. */
    if (inb(UART_LSR) & LSR_DR) {
        char c = (char)inb(UART_DATA);
        if (c != '\n' && c != '\r')       /* an empty line is nothing to keep */
            line[line_len++] = c;
    }
    /* FIFO on: QEMU then queues 16 input bytes between our (rare) polls
     * instead of one. Trigger level 14 (bits 6-7; no interrupt is enabled, so
     * it raises none): QEMU's 16550 hands the UART at most "trigger level
     * minus bytes queued" bytes from the chardev per main-loop round, so at
     * level 1 a long line (a `write`) crawled in one byte per round. */
    outb(UART_FCR, 0xc7);
}

void con_write(const char *s, size_t n)
{
    while (n) {
        while (!(inb(UART_LSR) & LSR_THRE))
            cpu_relax();
        size_t chunk = n < FIFO_LEN ? n : FIFO_LEN;
        for (size_t i = 0; i < chunk; i++)
            outb(UART_DATA, (uint8_t)s[i]);
        s += chunk;
        n -= chunk;
    }
}

/* ---- formatting into a line buffer, written with one con_write ---------- */

struct out {
    char buf[256];
    size_t len;
};

static void out_char(struct out *o, char c)
{
    if (o->len == sizeof o->buf) {      /* long output: flush and go on */
        con_write(o->buf, o->len);
        o->len = 0;
    }
    o->buf[o->len++] = c;
}

static void out_number(struct out *o, uint64_t v, unsigned base, int width, char pad)
{
    char digits[20];
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (width-- > n)
        out_char(o, pad);
    while (n)
        out_char(o, digits[--n]);
}

void con_printf(const char *fmt, ...)
{
    struct out o;
    o.len = 0;
    va_list ap;
    va_start(ap, fmt);
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            out_char(&o, *fmt);
            continue;
        }
        fmt++;
        char pad = ' ';
        int width = 0, longs = 0;
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l') {
            longs++;
            fmt++;
        }
        switch (*fmt) {
        case 'd': {
            int64_t v = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
            if (v < 0) {
                out_char(&o, '-');
                v = -v;
            }
            out_number(&o, (uint64_t)v, 10, width, pad);
            break;
        }
        case 'u':
            out_number(&o, longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, width, pad);
            break;
        case 'x':
            out_number(&o, longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, width, pad);
            break;
        case 'p':
            out_char(&o, '0');
            out_char(&o, 'x');
            out_number(&o, (uintptr_t)va_arg(ap, void *), 16, width, pad);
            break;
        case 'c':
            out_char(&o, (char)va_arg(ap, int));
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            for (; *s; s++)
                out_char(&o, *s);
            break;
        }
        case '\0':
            fmt--;
            break;
        default:
            out_char(&o, *fmt);
        }
    }
    va_end(ap);
    con_write(o.buf, o.len);
}

/* ---- input ---------------------------------------------------------------- */

/*
 * Reading a received byte costs two exits if each is preceded by a line
 * status check. Instead one LSR check says input is waiting, then data bytes
 * are read until the receive buffer answers 0: both QEMU's 16550 (FIFO on)
 * and Firecracker's serial return 0 from an empty buffer, and no command
 * holds a NUL. One exit a byte (measured: see README, Console protocol).
 * At most FIFO_LEN reads per check, so a UART that repeats its last byte
 * (FIFO off) cannot loop us forever.
 */
int con_poll_line(char *buf, size_t cap)
{
    while (inb(UART_LSR) & LSR_DR) {
        for (int k = 0; k < FIFO_LEN; k++) {
            char c = (char)inb(UART_DATA);
            if (c == '\0')
                break;
            if (c == '\r')
                continue;
            if (c != '\n') {
                if (line_len < sizeof line - 1)
                    line[line_len++] = c;
                else
                    line_overflow = 1;      /* reported as "line too long" */
                continue;
            }
            size_t n = line_len < cap - 1 ? line_len : cap - 1;
            for (size_t i = 0; i < n; i++)
                buf[i] = line[i];
            buf[n] = '\0';
            if (line_overflow)
                buf[0] = CON_LINE_TOO_LONG;     /* matches no command */
            line_len = 0;
            line_overflow = 0;
            return 1;
        }
    }
    return 0;
}

int con_line_pending(void) { return line_len != 0 || line_overflow; }
