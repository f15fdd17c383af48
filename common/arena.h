/* arena.h - bump allocator for per-request memory, freed in one call. */
#ifndef RT_ARENA_H
#define RT_ARENA_H

#include "common/rt.h"
#include <protobuf-c/protobuf-c.h>

typedef struct rt_arena rt_arena;

/* Returns a new arena (NULL on OOM); release with rt_arena_destroy(). */
rt_arena *rt_arena_create(size_t block_size);
void rt_arena_destroy(rt_arena *a);
/* 16-byte aligned memory valid until the arena is destroyed or reset; NULL on OOM. */
void *rt_arena_alloc(rt_arena *a, size_t n);
char *rt_arena_strndup(rt_arena *a, const char *s, size_t n);
void rt_arena_reset(rt_arena *a);   /* frees all blocks but the first */
size_t rt_arena_used(const rt_arena *a);
/* A protobuf-c allocator that allocates from `a` and never frees (the arena does). */
ProtobufCAllocator rt_arena_pb_allocator(rt_arena *a);

#endif
