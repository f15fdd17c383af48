/* rt.h - what every Ringtail module includes: errors, allocation, assertions, time. */
#ifndef RT_RT_H
#define RT_RT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One error enum for the whole project. Keep rt_strerror() in rt.c in sync. */
typedef enum rt_err {
  RT_OK = 0,
  RT_ENOMEM,      /* allocation failed */
  RT_EIO,         /* I/O or storage (RocksDB) failure */
  RT_EINVAL,      /* invalid argument or input data */
  RT_ENOTFOUND,   /* no such object */
  RT_EEXIST,      /* already exists */
  RT_ETIMEDOUT,   /* deadline passed */
  RT_ECLOSED,     /* object shut down */
  RT_ELIMIT,      /* a configured limit was hit */
  RT_EPROTO,      /* malformed wire message */
  RT_EUNAVAIL,    /* peer unavailable; retrying may help */
  RT_ECONFLICT,   /* duplicate / out-of-order data */
  RT_ECANCELED,   /* operation canceled */
  RT_EINTERNAL,   /* a bug */
  RT_ERR_COUNT
} rt_err;

const char *rt_strerror(rt_err err);

/* Allocation: every allocation goes through these so that they can be swapped
 * or fault-injected. rt_free takes the size given to rt_alloc (0 if unknown). */
void *rt_alloc(size_t size);
void *rt_calloc(size_t n, size_t size);
void *rt_realloc(void *p, size_t old_size, size_t new_size);
void rt_free(void *p, size_t size);
char *rt_strdup(const char *s);
char *rt_strndup(const char *s, size_t n);
/* Fault injection for tests: fail the allocation after `n` more succeed (-1 = never). */
void rt_alloc_fail_after(long n);

/* Assertions: RT_ASSERT is for bugs only and is compiled out in NDEBUG builds. */
_Noreturn void rt_panic(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#ifdef NDEBUG
#define RT_ASSERT(x) ((void)0)
#else
#define RT_ASSERT(x) ((x) ? (void)0 : rt_panic(__FILE__, __LINE__, "assertion failed: %s", #x))
#endif
/* Defensive branches: a condition believed impossible but handled anyway. */
#define RT_NEVER(x) (x)
#define RT_ALWAYS(x) (x)

#define RT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define RT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RT_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Time: milliseconds since the Unix epoch (wall clock) and a monotonic clock in ns. */
int64_t rt_now_ms(void);
uint64_t rt_mono_ns(void);

/* The Prometheus stale marker: a NaN with this exact bit pattern. */
#define RT_STALE_NAN_BITS 0x7ff0000000000002ULL
bool rt_is_stale_nan(double v);
double rt_stale_nan(void);

#endif
