/*
 * mem.h - a bump allocator over the RAM above the image. Nothing is ever
 * freed: the runtime allocates its pool, rings and metadata once at boot.
 */
#ifndef NFV_MEM_H
#define NFV_MEM_H

#include <stddef.h>
#include <stdint.h>

void mem_init(uint64_t start, uint64_t end);
/* Aligned, zeroed memory, or NULL when the region is exhausted. */
void *mem_alloc(size_t size, size_t align);
uint64_t mem_left(void);

#endif /* NFV_MEM_H */
