/* pqlbench_prog.c - times queries on an in-memory store (prints figures; not a test).
 *
 * usage: pqlbench_prog [series] [hours] [query ...]
 *
 * The data has the shape of ringtail-loadgen's (bench/loadgen.c): names loadgen_0 .. loadgen_19,
 * instance host-<i/1000>, job loadgen, series <i>, one sample every 15 s, values from the same
 * four shapes (counter, slow gauge, constant, small float gauge). Each query runs as an instant
 * query at the end and as range queries over the last hour and the whole span at a 60 s step;
 * the figures are the median CPU time of 5 runs (the process' CPU clock, so that other load on the
 * machine does not count) and, for ranges, the median of the same without the time spent inside
 * select() (copying from the store), i.e. the evaluation. Without queries, a fixed set runs. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "promql/promql.h"

static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The memstore behind a select() that adds the CPU time spent fetching to fetch_cpu. */
static pql_storage inner;
static double fetch_cpu;

static rt_err timed_select(void *ctx, const rt_matcher *matchers, size_t n, int64_t mint, int64_t maxt,
                           pql_sink *sink) {
  (void)ctx;
  double a = cpu_s();
  rt_err err = inner.select(inner.ctx, matchers, n, mint, maxt, sink);
  fetch_cpu += cpu_s() - a;
  return err;
}

static double sample_value(int64_t i, int64_t ts) {
  switch (i & 3) {
  case 0: return (double)(ts / 1000) * (double)(1 + i % 5);
  case 1: return (double)((i + ts / 60000) % 1000);
  case 2: return (double)i;
  default: return (double)((ts / 1000 + i) % 17) * 0.25;
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median CPU milliseconds of 5 runs; *npoints gets the points of the last answer, *eval_ms the
 * median CPU time outside select() (parsing and evaluation). */
static double run(const pql_storage *st, const char *q, int64_t start, int64_t end, bool range, size_t *npoints,
                  double *eval_ms) {
  double ms[5], ev[5];
  for (int k = 0; k < 5; k++) {
    pql_result *r;
    double a = cpu_s();
    fetch_cpu = 0;
    if (range) {
      pql_query_range(st, NULL, q, start, end, 60000, &r);
    } else {
      pql_query_instant(st, NULL, q, end, &r);
    }
    ms[k] = (cpu_s() - a) * 1e3;
    ev[k] = ms[k] - fetch_cpu * 1e3;
    if (r->error) {
      printf("error: %s: %s\n", q, r->error);
    }
    *npoints = 0;
    for (size_t i = 0; i < r->nseries; i++) {
      *npoints += r->series[i].npoints;
    }
    pql_result_free(r);
  }
  qsort(ms, 5, sizeof ms[0], cmp_double);
  qsort(ev, 5, sizeof ev[0], cmp_double);
  *eval_ms = ev[2];
  return ms[2];
}

int main(int argc, char **argv) {
  int nseries = argc > 1 ? atoi(argv[1]) : 10000;
  int hours = argc > 2 ? atoi(argv[2]) : 6;
  pql_memstore *m = pql_memstore_create();
  int64_t end = (int64_t)hours * 3600 * 1000;
  double t0 = cpu_s();
  for (int64_t s = 0; s < nseries; s++) {
    char name[32], inst[32], ser[32];
    snprintf(name, sizeof name, "loadgen_%d", (int)(s % 20));
    snprintf(inst, sizeof inst, "host-%" PRId64, s / 1000);
    snprintf(ser, sizeof ser, "%" PRId64, s);
    rt_label l[] = {{"__name__", name}, {"instance", inst}, {"job", "loadgen"}, {"series", ser}};
    for (int64_t t = 0; t < end; t += 15000) {
      pql_memstore_add(m, l, 4, t, sample_value(s, t));
    }
  }
  printf("loaded %d series x %lld samples in %.2fs\n", nseries, (long long)(end / 15000), cpu_s() - t0);
  inner = pql_memstore_storage(m);
  pql_storage st = {NULL, timed_select};
  static const char *fixed[] = {"loadgen_0",
                                "rate(loadgen_0[5m])",
                                "sum by (job) (rate({__name__=~\"loadgen_.+\"}[5m]))",
                                "max_over_time(loadgen_2[1h])",
                                "max_over_time(rate(loadgen_0[5m])[1h:1m])",
                                "topk(5, loadgen_1)",
                                "count by (instance) ({__name__=~\"loadgen_1.*\"})",
                                "sum(rate(loadgen_0[5m])) / sum(rate(loadgen_4[5m]))",
                                "loadgen_0 / on(series) loadgen_0",
                                "quantile_over_time(0.9, loadgen_1[10m])"};
  const char **qs = argc > 3 ? (const char **)argv + 3 : fixed;
  size_t nq = argc > 3 ? (size_t)argc - 3 : sizeof fixed / sizeof fixed[0];
  int64_t last = end - 15000;
  for (size_t i = 0; i < nq; i++) {
    size_t n1, n2, n3;
    double e1, e2, e3;
    double a = run(&st, qs[i], last, last, false, &n1, &e1);
    double b = run(&st, qs[i], last - 3600000, last, true, &n2, &e2);
    double c = run(&st, qs[i], last - (int64_t)hours * 3600000, last, true, &n3, &e3);
    printf("%-55s instant %6.1fms  1h %7.1fms (eval %6.1f)  %dh %7.1fms (eval %7.1f, %zu points)\n", qs[i], a, b, e2,
           hours, c, e3, n3);
    fflush(stdout);
  }
  pql_memstore_destroy(m);
  return 0;
}
