/* pqlbench_prog.c - times a few queries on an in-memory store (prints figures; not a test).
 * usage: pqlbench_prog [series] [hours] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "promql/promql.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  int nseries = argc > 1 ? atoi(argv[1]) : 10000;
  int hours = argc > 2 ? atoi(argv[2]) : 6;
  pql_memstore *m = pql_memstore_create();
  int64_t end = (int64_t)hours * 3600 * 1000;
  double t0 = now_s();
  for (int s = 0; s < nseries; s++) {
    char inst[32], job[32], le[32];
    snprintf(inst, sizeof inst, "i%d", s / 10);
    snprintf(job, sizeof job, "job%d", s % 10);
    snprintf(le, sizeof le, "%d", s % 10);
    rt_label l[] = {{"__name__", "http_requests_total"}, {"instance", inst}, {"job", job}, {"le", le}};
    double v = 0;
    for (int64_t t = 0; t <= end; t += 15000) {
      v += (double)(s % 7 + 1);
      pql_memstore_add(m, l, 4, t, v);
    }
  }
  printf("loaded %d series x %lld samples in %.2fs\n", nseries, (long long)(end / 15000 + 1), now_s() - t0);
  pql_storage st = pql_memstore_storage(m);
  const char *qs[] = {"http_requests_total",
                      "rate(http_requests_total[5m])",
                      "sum by (job) (rate(http_requests_total[5m]))",
                      "histogram_quantile(0.9, sum by (le) (rate(http_requests_total[5m])))",
                      "max_over_time(rate(http_requests_total[5m])[30m:1m])",
                      "topk(5, rate(http_requests_total[5m]))"};
  for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
    pql_result *r;
    double a = now_s();
    pql_query_instant(&st, NULL, qs[i], end, &r);
    double b = now_s();
    size_t n1 = r->nseries;
    const char *e1 = r->error;
    if (e1) {
      printf("error: %s\n", e1);
    }
    pql_result_free(r);
    double c = now_s();
    pql_query_range(&st, NULL, qs[i], end - 3600000, end, 60000, &r);
    double d = now_s();
    size_t n2 = r->nseries;
    if (r->error) {
      printf("error: %s\n", r->error);
    }
    pql_result_free(r);
    double e = now_s();
    pql_query_range(&st, NULL, qs[i], 0, end, 60000, &r);
    double f = now_s();
    if (r->error) {
      printf("error: %s\n", r->error);
    }
    pql_result_free(r);
    printf("%-75s instant %7.1fms (%zu)  1h %7.1fms (%zu)  %dh %8.1fms\n", qs[i], (b - a) * 1e3, n1, (d - c) * 1e3,
           n2, hours, (f - e) * 1e3);
  }
  pql_memstore_destroy(m);
  return 0;
}
