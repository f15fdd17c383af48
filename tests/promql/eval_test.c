/* eval_test.c - range queries evaluated by columns (series by series over blocks of steps) give
 * bit for bit the answers of the step-by-step evaluation (pql_opts.step_by_step), on random data
 * with gaps, counter resets, NaN, infinities, -0 and stale markers, for every function the column
 * path serves, under aggregations and binary operators, at many ranges and steps. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "promql/promql.h"
#include "tests/lib/pql_same.h"

static uint64_t rng;

static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static int64_t below(int64_t n) { return (int64_t)(next() % (uint64_t)n); }

/* A value from a small pool that makes ties, resets and special values likely. */
static double odd_value(double base) {
  switch (below(40)) {
  case 0: return NAN;
  case 1: return INFINITY;
  case 2: return -INFINITY;
  case 3: return -0.0;
  case 4: return 0.0;
  case 5: return rt_stale_nan();
  case 6: return 1e308;
  case 7: return -1e-310;
  case 8: return -NAN; /* another NaN bit pattern */
  default: return base;
  }
}

/* Loads one random data set: 4 names x 2 jobs x 3 instances, samples every 1..45 s with gaps. */
static pql_memstore *load(uint64_t seed, bool with_hist) {
  rng = seed * 0x9E3779B97F4A7C15ULL + 1;
  pql_memstore *m = pql_memstore_create();
  static const char *names[] = {"a_total", "b", "c_count", "d"};
  char inst[16], job[16];
  for (int n = 0; n < 4; n++) {
    for (int s = 0; s < 6; s++) {
      snprintf(inst, sizeof inst, "i%d", s % 3);
      snprintf(job, sizeof job, "j%d", s / 3);
      rt_label l[] = {{"__name__", names[n]}, {"instance", inst}, {"job", job}};
      int64_t t = s % 2 ? below(120000) : 1000 * below(120); /* on whole seconds: window edges hit samples */
      double v = (double)below(100);
      while (t < 3600000) {
        if (n == 0) {
          /* counters, half of them with resets */
          v = s % 2 && below(30) == 0 ? (double)below(10) : v + (double)below(50) / 4;
        } else if (n == 2) {
          v = (double)(below(5) - 2); /* few values: ties */
        } else if (n == 3) {
          v = below(4) == 0 ? 1 : below(2) ? NAN : -NAN; /* mostly NaN, two bit patterns */
        } else {
          v = (double)(below(2000) - 1000) / 8;
        }
        cr_assert_eq(pql_memstore_add(m, l, 3, t, odd_value(v)), RT_OK);
        t += 1000 * (1 + below(45));
        if (below(50) == 0) {
          t += 1000 * below(900); /* a gap longer than the lookback */
        }
      }
    }
  }
  if (with_hist) {
    rt_label l[] = {{"__name__", "h"}, {"job", "j0"}};
    int32_t pi[] = {0, 1};
    for (int64_t t = 0; t < 3600000; t += 30000) {
      double pb[] = {(double)(t / 30000), 2};
      pql_hist h = {.schema = 0, .count = pb[0] + pb[1], .sum = (double)t / 1000, .np = 2, .pi = pi, .pb = pb};
      cr_assert_eq(pql_memstore_add_hist(m, l, 2, t, &h), RT_OK);
    }
    rt_label lf[] = {{"__name__", "h"}, {"job", "j1"}};
    for (int64_t t = 0; t < 3600000; t += 30000) {
      cr_assert_eq(pql_memstore_add(m, lf, 2, t, (double)t), RT_OK);
    }
  }
  return m;
}

static const char *queries[] = {
    "a_total",
    "{__name__=~\"a_total|b\"}",
    "b offset 1m",
    "b offset -2m",
    "b @ 1800",
    "timestamp(c_count)",
    "-b",
    "b * 2 + c_count",
    "rate(a_total[1m])",
    "rate(a_total[5m])",
    "increase(a_total[3m] offset 30s)",
    "delta(b[2m])",
    "irate(a_total[2m])",
    "idelta(b[90s])",
    "deriv(b[4m])",
    "predict_linear(b[4m], 600)",
    "changes(b[3m])",
    "resets(a_total[10m])",
    "avg_over_time(b[5m])",
    "sum_over_time(b[2m])",
    "count_over_time(c_count[7m])",
    "present_over_time(c_count[1m])",
    "min_over_time(b[5m])",
    "max_over_time(b[20m])",
    "max_over_time(c_count[3m])",
    "min_over_time(c_count[150s])",
    "min_over_time(c_count[30s] offset 10s)",
    "max_over_time(d[1m])",
    "min_over_time(d[2m])",
    "sum(last_over_time(d[1m]))",
    "ts_of_min_over_time(b[5m])",
    "ts_of_max_over_time(b[5m])",
    "ts_of_last_over_time(b[5m])",
    "ts_of_first_over_time(b[5m])",
    "last_over_time(c_count[5m])",
    "first_over_time(c_count[5m])",
    "stddev_over_time(b[5m])",
    "stdvar_over_time(b[5m])",
    "quantile_over_time(0.3, b[6m])",
    "quantile_over_time(2, b[6m])",
    "mad_over_time(b[6m])",
    "double_exponential_smoothing(b[5m], 0.5, 0.3)",
    "double_exponential_smoothing(b[5m], 0, 0.3)",
    "max_over_time(b[5m] @ 1200)",
    "rate(a_total[5m] @ end())",
    "sum by (job) (rate(a_total[5m]))",
    "sum(rate({__name__=~\".+\"}[5m]))",
    "avg without (instance) (b)",
    "count by (instance) ({__name__=~\"b|c_count\"})",
    "max by (job) (max_over_time(b[3m]))",
    "min(b)",
    "stddev by (job) (b)",
    "topk(2, b)",
    "bottomk(1, rate(a_total[5m]))",
    "quantile by (job) (0.7, b)",
    "count_values(\"v\", changes(b[5m]))",
    "group by (instance) (c_count)",
    "limitk(2, b)",
    "rate(a_total[5m]) / on(instance, job) group_left b",
    "b > on(instance, job) c_count",
    "b and c_count",
    "b unless on(job) rate(a_total[1m])",
    "rate(a_total[5m]) or b",
    "sum(rate(a_total[5m])) / sum(rate(c_count[5m]))",
    "b == bool 0",
    "max_over_time(rate(a_total[2m])[10m:1m])",
    "avg_over_time(b[5m:30s])",
    "rate(b[5m])[10m:2m]",
    "absent_over_time(nope[5m])",
    "absent(nope)",
    "histogram_quantile(0.9, rate(a_total[5m]))",
    "scalar(sum(b)) * rate(a_total[1m])",
    "clamp_max(rate(a_total[5m]), 3)",
    "label_replace(rate(a_total[5m]), \"x\", \"$1\", \"instance\", \"(.*)\")",
    "sort_desc(b)",
    "vector(time()) + on() group_right count(b)",
    "rate(h[5m])",
    "h",
    "sum by (job) (count_over_time(h[5m]))",
    "histogram_count(h)",
    "b offset 1m + ignoring(job) group_left c_count offset 2m",
    "changes(b[3m]) offset 10m",
};

static void compare_all(pql_memstore *m, const pql_opts *base, int nranges) {
  pql_storage st = pql_memstore_storage(m);
  pql_opts cols = *base, steps = *base;
  steps.step_by_step = true;
  for (size_t qi = 0; qi < sizeof queries / sizeof queries[0]; qi++) {
    for (int k = 0; k < nranges; k++) {
      cols.column_cells = k % 2 ? 0 : (size_t)(1 + below(60)); /* blocks of a few steps, or all at once */
      int64_t start = k % 3 ? 1000 * below(3900) - 200000 : below(3900000) - 200000;
      int64_t step = 1000 * (1 + below(k % 2 ? 400 : 60));
      int64_t end = start + below(k == 0 ? 1 : 3600000);
      pql_result *a, *b;
      cr_assert_eq(pql_query_range(&st, &cols, queries[qi], start, end, step, &a), RT_OK);
      cr_assert_eq(pql_query_range(&st, &steps, queries[qi], start, end, step, &b), RT_OK);
      char why[512];
      bool same = pql_results_same(a, b, why, sizeof why);
      cr_assert(same, "%s over [%lld, %lld] step %lld: %s", queries[qi], (long long)start, (long long)end,
                (long long)step, why);
      pql_result_free(a);
      pql_result_free(b);
    }
  }
}

TestSuite(eval);

Test(eval, columns_match_steps_on_random_data) {
  pql_opts o = {0};
  for (uint64_t seed = 1; seed <= 6; seed++) {
    pql_memstore *m = load(seed, seed % 2 == 0);
    compare_all(m, &o, 6);
    pql_memstore_destroy(m);
  }
}

/* Limits: the same samples counted per step, so the same error or the same peak. */
Test(eval, columns_match_steps_under_limits) {
  pql_memstore *m = load(42, true);
  for (int64_t lim = 50; lim <= 3200; lim *= 4) {
    pql_opts o = {.max_samples = lim};
    compare_all(m, &o, 2);
  }
  pql_opts o = {.lookback_ms = 20000};
  compare_all(m, &o, 3);
  pql_memstore_destroy(m);
}

/* The column path is taken: selectors and range functions report it. */
Test(eval, columns_are_used) {
  pql_memstore *m = load(7, true);
  pql_storage st = pql_memstore_storage(m);
  static const struct {
    const char *q;
    size_t cols;
  } cases[] = {
      {"b", 1},
      {"sum(rate(a_total[5m])) / sum(b)", 2},
      {"quantile_over_time(0.5, b[5m]) + predict_linear(c_count[5m], 60)", 2},
      {"max_over_time(rate(a_total[2m])[10m:1m])", 0}, /* inside a subquery: step by step */
      {"rate(h[5m])", 0},                              /* native histograms: step by step */
      {"quantile_over_time(scalar(b), b[5m])", 1},     /* the parameter is not a literal */
      {"rate(a_total[5m] anchored)", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    pql_result *r;
    cr_assert_eq(pql_query_range(&st, NULL, cases[i].q, 600000, 1200000, 60000, &r), RT_OK);
    cr_assert_null(r->error, "%s: %s", cases[i].q, r->error);
    cr_assert_eq(r->ncolumns, cases[i].cols, "%s: %zu columns", cases[i].q, r->ncolumns);
    pql_result_free(r);
    pql_opts o = {.step_by_step = true};
    cr_assert_eq(pql_query_range(&st, &o, cases[i].q, 600000, 1200000, 60000, &r), RT_OK);
    cr_assert_eq(r->ncolumns, 0);
    pql_result_free(r);
  }
  pql_memstore_destroy(m);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A column whose windows take long to evaluate (a day of 1 s samples per step, 20,000 steps:
 * minutes of work) stops at the deadline with Prometheus' timeout error. */
Test(eval, columns_stop_at_the_deadline) {
  pql_memstore *m = pql_memstore_create();
  rt_label l[] = {{"__name__", "x"}};
  for (int64_t t = 0; t <= 106400000; t += 1000) {
    cr_assert_eq(pql_memstore_add(m, l, 1, t, (double)(t % 7919)), RT_OK);
  }
  pql_storage st = pql_memstore_storage(m);
  pql_opts o = {.timeout_ms = 300};
  pql_result *r;
  double a = now_s();
  cr_assert_eq(pql_query_range(&st, &o, "quantile_over_time(0.5, x[1d])", 86400000, 106400000, 1000, &r), RT_OK);
  double took = now_s() - a;
  cr_assert_str_eq(r->error_type ? r->error_type : "(none)", "timeout");
  cr_assert_eq(r->ncolumns, 1);
  cr_assert_lt(took, 5.0, "the query ran %.1f s past a 300 ms deadline", took);
  pql_result_free(r);
  pql_memstore_destroy(m);
}
