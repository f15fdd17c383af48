/* rw_helpers.h - builds remote-write bodies for the distributor tests and fuzz seeds. */
#ifndef RT_TEST_RW_HELPERS_H
#define RT_TEST_RW_HELPERS_H

#include <snappy-c.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "remote.pb-c.h"

/* Builds a series in arena `a`: labels from a NULL-terminated list of name, value pairs. */
static inline Prometheus__TimeSeries *rw_series(rt_arena *a, const char *const *kv, const int64_t *ts,
                                                const double *vals, size_t ns) {
  Prometheus__TimeSeries *s = rt_arena_alloc(a, sizeof *s);
  prometheus__time_series__init(s);
  size_t nl = 0;
  while (kv[2 * nl]) {
    nl++;
  }
  s->n_labels = nl;
  s->labels = rt_arena_alloc(a, (nl ? nl : 1) * sizeof *s->labels);
  for (size_t i = 0; i < nl; i++) {
    Prometheus__Label *l = rt_arena_alloc(a, sizeof *l);
    prometheus__label__init(l);
    l->name = (char *)kv[2 * i];
    l->value = (char *)kv[2 * i + 1];
    s->labels[i] = l;
  }
  s->n_samples = ns;
  s->samples = rt_arena_alloc(a, (ns ? ns : 1) * sizeof *s->samples);
  for (size_t i = 0; i < ns; i++) {
    Prometheus__Sample *x = rt_arena_alloc(a, sizeof *x);
    prometheus__sample__init(x);
    x->timestamp = ts[i];
    x->value = vals[i];
    s->samples[i] = x;
  }
  return s;
}

static inline Prometheus__WriteRequest *rw_request(rt_arena *a, size_t n, Prometheus__TimeSeries **series) {
  Prometheus__WriteRequest *w = rt_arena_alloc(a, sizeof *w);
  prometheus__write_request__init(w);
  w->n_timeseries = n;
  w->timeseries = series;
  return w;
}

/* Protobuf bytes of w (malloc'd; caller frees with free()). */
static inline uint8_t *rw_pack(const Prometheus__WriteRequest *w, size_t *len) {
  *len = prometheus__write_request__get_packed_size(w);
  uint8_t *b = malloc(*len ? *len : 1);
  prometheus__write_request__pack(w, b);
  return b;
}

/* Snappy block of raw bytes (malloc'd). */
static inline char *rw_snappy(const void *raw, size_t n, size_t *len) {
  *len = snappy_max_compressed_length(n);
  char *out = malloc(*len);
  snappy_compress(raw, n, out, len);
  return out;
}

/* The whole body: protobuf, then snappy (malloc'd). */
static inline char *rw_body(const Prometheus__WriteRequest *w, size_t *len) {
  size_t pn;
  uint8_t *p = rw_pack(w, &pn);
  char *b = rw_snappy(p, pn, len);
  free(p);
  return b;
}

#endif
