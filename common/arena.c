/* arena.c - bump allocator. */
#include "common/arena.h"

#include <string.h>

typedef struct rt_arena_block {
  struct rt_arena_block *next;
  size_t size;
  size_t used;
  _Alignas(16) unsigned char data[];
} rt_arena_block;

struct rt_arena {
  rt_arena_block *head;
  size_t block_size;
  size_t total;
};

rt_arena *rt_arena_create(size_t block_size) {
  rt_arena *a = rt_calloc(1, sizeof *a);
  if (!a) {
    return NULL;
  }
  a->block_size = block_size ? block_size : 64 * 1024;
  return a;
}

void rt_arena_reset(rt_arena *a) {
  rt_arena_block *b = a->head;
  while (b && b->next) {
    rt_arena_block *n = b->next;
    rt_free(b, sizeof *b + b->size);
    b = n;
  }
  /* keep the last (oldest) block, which is the first allocated */
  a->head = b;
  if (b) {
    b->used = 0;
  }
  a->total = 0;
}

void rt_arena_destroy(rt_arena *a) {
  if (!a) {
    return;
  }
  rt_arena_block *b = a->head;
  while (b) {
    rt_arena_block *n = b->next;
    rt_free(b, sizeof *b + b->size);
    b = n;
  }
  rt_free(a, sizeof *a);
}

void *rt_arena_alloc(rt_arena *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  rt_arena_block *b = a->head;
  if (!b || b->size - b->used < n) {
    size_t sz = n > a->block_size ? n : a->block_size;
    rt_arena_block *nb = rt_alloc(sizeof *nb + sz);
    if (!nb) {
      return NULL;
    }
    nb->size = sz;
    nb->used = 0;
    if (b && n > a->block_size) {
      /* an oversize block goes behind the current one so the current keeps filling */
      nb->next = b->next;
      b->next = nb;
    } else {
      nb->next = b;
      a->head = nb;
    }
    b = nb;
  }
  void *p = b->data + b->used;
  b->used += n;
  a->total += n;
  return p;
}

char *rt_arena_strndup(rt_arena *a, const char *s, size_t n) {
  char *d = rt_arena_alloc(a, n + 1);
  if (d) {
    memcpy(d, s, n);
    d[n] = 0;
  }
  return d;
}

size_t rt_arena_used(const rt_arena *a) { return a->total; }

static void *rt_arena_pb_alloc(void *ctx, size_t n) { return rt_arena_alloc(ctx, n); }
static void rt_arena_pb_free(void *ctx, void *p) { (void)ctx; (void)p; }

ProtobufCAllocator rt_arena_pb_allocator(rt_arena *a) {
  ProtobufCAllocator al = {.alloc = rt_arena_pb_alloc, .free = rt_arena_pb_free, .allocator_data = a};
  return al;
}
