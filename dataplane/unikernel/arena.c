/*
 * arena.c - unpack the arena's initial state (nfv_config.arena_init) at boot.
 *
 * Element state is mostly zeros (free lists, counters, empty tables) with a
 * few tables of small integers. The image keeps nfv_arena in .bss and ships
 * only this packed form, written by nfv/unikernel/glue.py (encode_arena):
 * a sequence of operations, each a LEB128 number v, kind = v & 3 and
 * count = v >> 2:
 *   0  skip count bytes (they stay zero)
 *   1  count literal bytes follow
 *   2  a second number d follows: copy count bytes from d bytes back, one at a
 *      time, so a copy may overlap itself (d = 1 repeats a byte, d = 4 a
 *      uint32 ...)
 *   3  the end (count 0)
 * Runs at CPL3, once, before anything reads the arena. Returns 0, or -1 if the
 * stream is malformed or does not fit (len bytes).
 */
#include <stdint.h>
#include "runtime.h"

static uint64_t number(const uint8_t **p)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            break;
    }
    return v;
}

int nfv_arena_unpack(const uint8_t *op, uint8_t *arena, uint64_t len)
{
    uint64_t at = 0;
    for (;;) {
        uint64_t v = number(&op), count = v >> 2;
        if ((v & 3) == 3)
            return count == 0 ? 0 : -1;
        if (count > len - at)
            return -1;
        if ((v & 3) == 0) {
            at += count;
        } else if ((v & 3) == 1) {
            for (uint64_t i = 0; i < count; i++)
                arena[at++] = *op++;
        } else {
            uint64_t back = number(&op);
            if (back == 0 || back > at)
                return -1;
            for (uint64_t i = 0; i < count; i++, at++)
                arena[at] = arena[at - back];
        }
    }
}
