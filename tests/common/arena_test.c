/* arena_test.c - arena allocator. */
#include <criterion/criterion.h>
#include <string.h>

#include "common/arena.h"

Test(arena, alloc_align_and_oversize) {
  rt_arena *a = rt_arena_create(256);
  cr_assert_not_null(a);
  for (int i = 0; i < 1000; i++) {
    char *p = rt_arena_alloc(a, (size_t)(i % 50) + 1);
    cr_assert_not_null(p);
    cr_assert_eq((uintptr_t)p % 16, 0);
    memset(p, 0xab, (size_t)(i % 50) + 1);
  }
  char *big = rt_arena_alloc(a, 100000);
  cr_assert_not_null(big);
  memset(big, 1, 100000);
  char *s = rt_arena_strndup(a, "hello world", 5);
  cr_assert_str_eq(s, "hello");
  rt_arena_reset(a);
  cr_assert_eq(rt_arena_used(a), 0);
  cr_assert_not_null(rt_arena_alloc(a, 10));
  rt_arena_destroy(a);
}

Test(arena, oom) {
  rt_arena *a = rt_arena_create(64);
  rt_alloc_fail_after(0);
  void *p = rt_arena_alloc(a, 128);
  rt_alloc_fail_after(-1);
  cr_assert_null(p);
  rt_arena_destroy(a);
}
