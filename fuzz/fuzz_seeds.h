/* fuzz_seeds.h - seed inputs for the distributor fuzz targets, written by the targets
 * themselves when RT_FUZZ_WRITE_SEEDS=<dir> is set (so the seeds always match the build). */
#ifndef RT_FUZZ_SEEDS_H
#define RT_FUZZ_SEEDS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "tests/distributor/rw_helpers.h"

/* Input layout shared by both targets: byte 0 selects the mode, the rest is the payload. */
enum { FUZZ_MODE_SNAPPY = 0, FUZZ_MODE_PROTO = 1 };

#define FUZZ_NOW 1700000000000LL

static inline void fuzz_write_seed(const char *dir, const char *name, int mode, const void *p, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s-%d", dir, name, mode);
  FILE *f = fopen(path, "wb");
  if (!f) {
    perror(path);
    exit(1);
  }
  unsigned char m = (unsigned char)mode;
  fwrite(&m, 1, 1, f);
  fwrite(p, 1, n, f);
  fclose(f);
}

static inline void fuzz_seed_request(const char *dir, const char *name, const Prometheus__WriteRequest *w) {
  size_t pn, bn;
  uint8_t *p = rw_pack(w, &pn);
  char *b = rw_snappy(p, pn, &bn);
  fuzz_write_seed(dir, name, FUZZ_MODE_PROTO, p, pn);
  fuzz_write_seed(dir, name, FUZZ_MODE_SNAPPY, b, bn);
  free(p);
  free(b);
}

/* Writes the seed corpus into dir and exits when RT_FUZZ_WRITE_SEEDS is set. */
static inline void fuzz_maybe_write_seeds(void) {
  const char *dir = getenv("RT_FUZZ_WRITE_SEEDS");
  if (!dir || !*dir) {
    return;
  }
  rt_arena *a = rt_arena_create(0);
  const int64_t t0 = FUZZ_NOW - 30000;
  const int64_t ts[] = {t0, t0 + 15000, t0 + 30000, t0 + 30000};
  const double v[] = {1, 0.25, NAN, 3};
  static const char *const up[] = {"__name__", "up", "instance", "localhost:9100", "job", "node", NULL};
  static const char *const cpu[] = {"__name__", "node_cpu_seconds_total", "cpu", "0", "instance", "localhost:9100",
                                    "job", "node", "mode", "idle", NULL};
  static const char *const unsorted[] = {"__name__", "x", "z", "1", "a", "2", NULL};
  static const char *const dup[] = {"__name__", "x", "a", "1", "a", "2", NULL};
  static const char *const empty[] = {"__name__", "x", "a", "", "b", "v", NULL};
  static const char *const noname[] = {"job", "x", NULL};
  static const char *const utf8[] = {"__name__", "x", "k", "caf\xc3\xa9", NULL};

  Prometheus__TimeSeries *s[8];
  s[0] = rw_series(a, up, ts, v, 2);
  s[1] = rw_series(a, cpu, ts, v, 3);
  fuzz_seed_request(dir, "node", rw_request(a, 2, s));

  double stale = rt_stale_nan();
  s[0] = rw_series(a, up, ts, &stale, 1);
  fuzz_seed_request(dir, "stale", rw_request(a, 1, s));

  s[0] = rw_series(a, unsorted, ts, v, 1);
  s[1] = rw_series(a, dup, ts, v, 1);
  s[2] = rw_series(a, empty, ts, v, 4);
  s[3] = rw_series(a, noname, ts, v, 1);
  s[4] = rw_series(a, utf8, ts, v, 2);
  fuzz_seed_request(dir, "mixed", rw_request(a, 5, s));

  const int64_t odd[] = {INT64_MIN, INT64_MAX, t0 + 1, t0};
  s[0] = rw_series(a, up, odd, v, 4);
  fuzz_seed_request(dir, "timestamps", rw_request(a, 1, s));

  Prometheus__WriteRequest *w = rw_request(a, 1, s);
  s[0] = rw_series(a, up, ts, v, 1);
  Prometheus__Histogram h = PROMETHEUS__HISTOGRAM__INIT, *hp[1] = {&h};
  int64_t deltas[2] = {1, -1};
  Prometheus__BucketSpan span = PROMETHEUS__BUCKET_SPAN__INIT, *spp[1] = {&span};
  span.length = 2;
  h.timestamp = t0;
  h.n_positive_spans = 1;
  h.positive_spans = spp;
  h.n_positive_deltas = 2;
  h.positive_deltas = deltas;
  s[0]->n_histograms = 1;
  s[0]->histograms = hp;
  Prometheus__Label el = PROMETHEUS__LABEL__INIT, *elp[1] = {&el};
  el.name = "trace_id";
  el.value = "abc";
  Prometheus__Exemplar ex = PROMETHEUS__EXEMPLAR__INIT, *exp[1] = {&ex};
  ex.n_labels = 1;
  ex.labels = elp;
  ex.timestamp = t0;
  s[0]->n_exemplars = 1;
  s[0]->exemplars = exp;
  Prometheus__MetricMetadata m = PROMETHEUS__METRIC_METADATA__INIT, *mp[1] = {&m};
  m.type = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE;
  m.metric_family_name = "up";
  m.help = "1 if the target is up.";
  m.unit = "";
  w->n_metadata = 1;
  w->metadata = mp;
  fuzz_seed_request(dir, "histogram-exemplar-metadata", w);

  rt_arena_destroy(a);
  exit(0);
}

#endif
