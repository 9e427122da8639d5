/*
 * lib.c - memcpy, memset, memmove, memcmp for a kernel with no libc.
 *
 * gcc emits calls to these for struct copies and large initialisers even with
 * -ffreestanding, and the Numba pipeline object may call memcpy/memset, so
 * they are exported with the standard names and semantics.
 *
 * Packets are mostly short (60-200 bytes): below 64 bytes, 8-byte moves
 * avoid the start-up cost of `rep movs`; above it, `rep movsq` plus a tail is
 * fast on every x86-64 and needs no SSE (this file is built like the rest of
 * the runtime with -mgeneral-regs-only). Built with
 * -fno-tree-loop-distribute-patterns (see link.py) so gcc does not turn the
 * byte loops below back into calls to the very functions they implement.
 */
#include <stddef.h>
#include <stdint.h>

static inline uint64_t load64(const unsigned char *p)
{
    uint64_t v;
    __builtin_memcpy(&v, p, 8);     /* unaligned load, a single mov */
    return v;
}

static inline void store64(unsigned char *p, uint64_t v) { __builtin_memcpy(p, &v, 8); }

void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (n >= 64) {
        size_t words = n >> 3;
        __asm__ volatile("rep movsq" : "+D"(d), "+S"(s), "+c"(words) :: "memory");
        n &= 7;
    } else {
        while (n >= 8) {
            store64(d, load64(s));
            d += 8;
            s += 8;
            n -= 8;
        }
    }
    while (n--)
        *d++ = *s++;
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;
    uint64_t pattern = 0x0101010101010101ull * (unsigned char)c;
    if (n >= 64) {
        size_t words = n >> 3;
        __asm__ volatile("rep stosq" : "+D"(d), "+c"(words) : "a"(pattern) : "memory");
        n &= 7;
    } else {
        while (n >= 8) {
            store64(d, pattern);
            d += 8;
            n -= 8;
        }
    }
    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    /* Forward copy is safe unless dst starts inside the source. */
    if (d <= s || d >= s + n)
        return memcpy(dst, src, n);
    while (n--)
        d[n] = s[n];
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return x[i] - y[i];
    return 0;
}
