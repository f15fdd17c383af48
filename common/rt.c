/* rt.c - errors, allocation, panics, clocks. */
#include "common/rt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <stdatomic.h>

static const char *const rt_err_names[RT_ERR_COUNT] = {
    [RT_OK] = "ok",
    [RT_ENOMEM] = "out of memory",
    [RT_EIO] = "i/o error",
    [RT_EINVAL] = "invalid argument",
    [RT_ENOTFOUND] = "not found",
    [RT_EEXIST] = "already exists",
    [RT_ETIMEDOUT] = "timed out",
    [RT_ECLOSED] = "closed",
    [RT_ELIMIT] = "limit exceeded",
    [RT_EPROTO] = "protocol error",
    [RT_EUNAVAIL] = "unavailable",
    [RT_ECONFLICT] = "conflict",
    [RT_ECANCELED] = "canceled",
    [RT_EINTERNAL] = "internal error",
};

const char *rt_strerror(rt_err err) {
  if (err < 0 || err >= RT_ERR_COUNT) {
    return "unknown error";
  }
  return rt_err_names[err];
}

static atomic_long rt_fail_after = -1;

void rt_alloc_fail_after(long n) { atomic_store(&rt_fail_after, n); }

static bool rt_alloc_should_fail(void) {
  long n = atomic_load(&rt_fail_after);
  while (n >= 0) {
    if (n == 0) {
      return true;
    }
    if (atomic_compare_exchange_weak(&rt_fail_after, &n, n - 1)) {
      return false;
    }
  }
  return false;
}

void *rt_alloc(size_t size) {
  if (rt_alloc_should_fail()) {
    return NULL;
  }
  return malloc(size ? size : 1);
}

void *rt_calloc(size_t n, size_t size) {
  if (rt_alloc_should_fail()) {
    return NULL;
  }
  return calloc(n ? n : 1, size ? size : 1);
}

void *rt_realloc(void *p, size_t old_size, size_t new_size) {
  (void)old_size;
  if (rt_alloc_should_fail()) {
    return NULL;
  }
  return realloc(p, new_size ? new_size : 1);
}

void rt_free(void *p, size_t size) {
  (void)size;
  free(p);
}

char *rt_strndup(const char *s, size_t n) {
  char *d = rt_alloc(n + 1);
  if (d) {
    memcpy(d, s, n);
    d[n] = 0;
  }
  return d;
}

char *rt_strdup(const char *s) { return rt_strndup(s, strlen(s)); }

void rt_panic(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "level=fatal caller=%s:%d msg=\"", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\"\n");
  abort();
}

int64_t rt_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t rt_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool rt_is_stale_nan(double v) {
  uint64_t b;
  memcpy(&b, &v, sizeof b);
  return b == RT_STALE_NAN_BITS;
}

double rt_stale_nan(void) {
  uint64_t b = RT_STALE_NAN_BITS;
  double v;
  memcpy(&v, &b, sizeof v);
  return v;
}
