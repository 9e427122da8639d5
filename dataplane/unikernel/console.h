/*
 * console.h - the COM1 serial console: the guest's only output, and the
 * host's command channel (see control.c).
 */
#ifndef NFV_CONSOLE_H
#define NFV_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

void con_init(void);
void con_write(const char *s, size_t n);
/* printf subset: %s %c %d %u %x %p with optional 0-padding, width and l/ll. */
void con_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The longest input line kept (a `write` of 4096 bytes in hex and its
 * offset fit); the rest of a longer line is dropped and the line is returned
 * as CON_LINE_TOO_LONG followed by what was kept. */
#define CON_LINE_MAX 8448
#define CON_LINE_TOO_LONG '\x01'
/* Collect input; returns 1 and a NUL-terminated line (no newline) in buf once
 * a whole line has arrived, else 0. Each call costs at least one port read. */
int con_poll_line(char *buf, size_t cap);
/* Part of a line has arrived (the rest is on its way: poll again soon). */
int con_line_pending(void);

#endif /* NFV_CONSOLE_H */
