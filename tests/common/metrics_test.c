/* metrics_test.c - registry, updates from many threads, text exposition format. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#include <string.h>

#include "common/metrics.h"

static rt_metrics *reg;

static void setup(void) { cr_assert_eq(rt_metrics_create(&reg), RT_OK); }
static void teardown(void) { rt_metrics_destroy(reg); }

TestSuite(metrics, .init = setup, .fini = teardown);

static char *expose(void) {
  rt_buf b = RT_BUF_INIT;
  rt_metrics_expose(reg, &b);
  return b.data ? b.data : strdup("");
}

Test(metrics, counter_without_labels) {
  rt_counter *c = rt_counter_get(reg, "ringtail_things_total", "Things seen.", NULL);
  cr_assert_not_null(c);
  rt_counter_inc(c);
  rt_counter_add(c, 2.5);
  rt_counter_add(c, -10);   /* ignored */
  cr_assert_eq(rt_counter_value(c), 3.5);
  char *s = expose();
  cr_assert_str_eq(s,
                   "# HELP ringtail_things_total Things seen.\n"
                   "# TYPE ringtail_things_total counter\n"
                   "ringtail_things_total 3.5\n");
  free(s);
}

Test(metrics, same_name_returns_same_child_and_mismatch_is_null) {
  rt_counter *a = rt_counter_get(reg, "ringtail_x_total", "X.", "reason", "a");
  rt_counter *a2 = rt_counter_get(reg, "ringtail_x_total", "X.", "reason", "a");
  rt_counter *b = rt_counter_get(reg, "ringtail_x_total", "X.", "reason", "b");
  cr_assert_eq(a, a2);
  cr_assert_neq(a, b);
  cr_assert_null(rt_gauge_get(reg, "ringtail_x_total", "X.", "reason", "a"));
  cr_assert_null(rt_counter_get(reg, "ringtail_x_total", "X.", "other", "a"));
  cr_assert_null(rt_counter_get(reg, "ringtail_x_total", "X.", NULL));
  cr_assert_null(rt_counter_get(reg, "bad-name", "X.", NULL));
  cr_assert_null(rt_counter_get(reg, "ringtail_y", "Y.", "le", "1"));
  cr_assert_null(rt_counter_get(reg, "ringtail_y", "Y.", "0bad", "1"));
  /* NULL children are harmless */
  rt_counter_inc(NULL);
  rt_gauge_set(NULL, 1);
  rt_histogram_observe(NULL, 1);
}

Test(metrics, labels_are_escaped_and_families_sorted) {
  rt_gauge *g = rt_gauge_get(reg, "ringtail_b", "Help with \\ and\nnewline.", "path,code",
                             "a\"b\\c\nd", "200");
  rt_gauge_set(g, -2);
  rt_gauge_add(g, 0.5);
  rt_gauge *z = rt_gauge_get(reg, "ringtail_a", "First.", NULL);
  rt_gauge_set(z, 1e6);
  char *s = expose();
  cr_assert_str_eq(s,
                   "# HELP ringtail_a First.\n"
                   "# TYPE ringtail_a gauge\n"
                   "ringtail_a 1e+06\n"
                   "# HELP ringtail_b Help with \\\\ and\\nnewline.\n"
                   "# TYPE ringtail_b gauge\n"
                   "ringtail_b{path=\"a\\\"b\\\\c\\nd\",code=\"200\"} -1.5\n");
  free(s);
}

Test(metrics, histogram_buckets_are_cumulative) {
  const double b[] = {0.1, 1, 10};
  rt_histogram *h = rt_histogram_get(reg, "ringtail_lat_seconds", "Latency.", b, 3, "route", "x");
  cr_assert_not_null(h);
  rt_histogram_observe(h, 0.05);
  rt_histogram_observe(h, 0.1);   /* le is inclusive */
  rt_histogram_observe(h, 5);
  rt_histogram_observe(h, 100);
  rt_histogram_observe(h, NAN);   /* ignored */
  cr_assert_eq(rt_histogram_count(h), 4);
  cr_assert_float_eq(rt_histogram_sum(h), 105.15, 1e-9);
  char *s = expose();
  cr_assert_str_eq(s,
                   "# HELP ringtail_lat_seconds Latency.\n"
                   "# TYPE ringtail_lat_seconds histogram\n"
                   "ringtail_lat_seconds_bucket{route=\"x\",le=\"0.1\"} 2\n"
                   "ringtail_lat_seconds_bucket{route=\"x\",le=\"1\"} 2\n"
                   "ringtail_lat_seconds_bucket{route=\"x\",le=\"10\"} 3\n"
                   "ringtail_lat_seconds_bucket{route=\"x\",le=\"+Inf\"} 4\n"
                   "ringtail_lat_seconds_sum{route=\"x\"} 105.15\n"
                   "ringtail_lat_seconds_count{route=\"x\"} 4\n");
  free(s);
}

Test(metrics, histogram_bad_buckets_rejected_default_buckets_used) {
  const double bad[] = {1, 1};
  cr_assert_null(rt_histogram_get(reg, "ringtail_h1", "H.", bad, 2, NULL));
  rt_histogram *h = rt_histogram_get(reg, "ringtail_h2", "H.", NULL, 0, NULL);
  rt_histogram_observe(h, 0.003);
  char *s = expose();
  cr_assert(strstr(s, "ringtail_h2_bucket{le=\"0.005\"} 1\n"), "%s", s);
  cr_assert(strstr(s, "ringtail_h2_bucket{le=\"100\"} 1\n"), "%s", s);
  cr_assert(strstr(s, "ringtail_h2_count 1\n"), "%s", s);
  free(s);
}

static double cb_value = 42;
static double cb(void *ctx) { return *(double *)ctx; }

Test(metrics, callbacks_read_at_scrape_time_and_are_removed) {
  cr_assert_eq(rt_metrics_add_fn(reg, RT_METRIC_GAUGE, "ringtail_db_bytes", "DB size.", cb,
                                 &cb_value, "cf", "wal"),
               RT_OK);
  cr_assert_eq(rt_metrics_add_fn(reg, RT_METRIC_HISTOGRAM, "ringtail_h", "H.", cb, &cb_value,
                                 NULL),
               RT_EINVAL);
  char *s = expose();
  cr_assert(strstr(s, "ringtail_db_bytes{cf=\"wal\"} 42\n"), "%s", s);
  free(s);
  cb_value = 7;
  s = expose();
  cr_assert(strstr(s, "ringtail_db_bytes{cf=\"wal\"} 7\n"), "%s", s);
  free(s);
  rt_metrics_remove_fn(reg, &cb_value);
  s = expose();
  cr_assert_null(strstr(s, "ringtail_db_bytes"), "%s", s);
  free(s);
  /* can be registered again after removal */
  cr_assert_eq(rt_metrics_add_fn(reg, RT_METRIC_GAUGE, "ringtail_db_bytes", "DB size.", cb,
                                 &cb_value, "cf", "wal"),
               RT_OK);
  s = expose();
  cr_assert(strstr(s, "ringtail_db_bytes{cf=\"wal\"} 7\n"), "%s", s);
  free(s);
}

Test(metrics, value_formatting) {
  /* exposition numbers are Go's strconv.FormatFloat(v, 'g', -1, 64) (common/floatfmt.h) */
  static const struct {
    double v;
    const char *s;
  } cases[] = {{0, "0"},         {1, "1"},          {0.1, "0.1"},         {100000, "100000"},
               {1234567, "1.234567e+06"},          {0.00001, "1e-05"},   {0.0001, "0.0001"},
               {-2.5, "-2.5"},   {INFINITY, "+Inf"}, {-INFINITY, "-Inf"}, {NAN, "NaN"},
               {1.0 / 3, "0.3333333333333333"},    {-0.0, "-0"}};
  rt_gauge *g = rt_gauge_get(reg, "ringtail_value", "A value.", NULL);
  cr_assert_not_null(g);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    rt_gauge_set(g, cases[i].v);
    char *s = expose();
    char want[128];
    snprintf(want, sizeof want, "\nringtail_value %s\n", cases[i].s);
    cr_expect(strstr(s, want), "%s", s);
    free(s);
  }
  /* and so are histogram bounds */
  const double bounds[] = {0.00001, 0.5, 2e6};
  rt_histogram *h = rt_histogram_get(reg, "ringtail_sizes", "Sizes.", bounds, 3, NULL);
  cr_assert_not_null(h);
  char *s = expose();
  cr_expect(strstr(s, "ringtail_sizes_bucket{le=\"1e-05\"} 0\n"), "%s", s);
  cr_expect(strstr(s, "ringtail_sizes_bucket{le=\"0.5\"} 0\n"), "%s", s);
  cr_expect(strstr(s, "ringtail_sizes_bucket{le=\"2e+06\"} 0\n"), "%s", s);
  free(s);
}

static rt_counter *shared_c;
static rt_histogram *shared_h;

static void *bump(void *arg) {
  (void)arg;
  for (int i = 0; i < 100000; i++) {
    rt_counter_inc(shared_c);
    rt_histogram_observe(shared_h, 0.5);
  }
  /* concurrent lookups of the same child must agree */
  return rt_counter_get(reg, "ringtail_par_total", "P.", "t", "x");
}

Test(metrics, concurrent_updates_are_not_lost) {
  shared_c = rt_counter_get(reg, "ringtail_par_total", "P.", "t", "x");
  shared_h = rt_histogram_get(reg, "ringtail_par_seconds", "P.", NULL, 0, NULL);
  pthread_t t[4];
  for (int i = 0; i < 4; i++) {
    pthread_create(&t[i], NULL, bump, NULL);
  }
  for (int i = 0; i < 4; i++) {
    void *rv;
    pthread_join(t[i], &rv);
    cr_assert_eq(rv, (void *)shared_c);
  }
  cr_assert_eq(rt_counter_value(shared_c), 400000);
  cr_assert_eq(rt_histogram_count(shared_h), 400000);
  cr_assert_float_eq(rt_histogram_sum(shared_h), 200000, 1e-6);
}

Test(metrics, out_of_memory_returns_null) {
  rt_alloc_fail_after(0);
  rt_counter *c = rt_counter_get(reg, "ringtail_oom_total", "O.", "a", "b");
  rt_alloc_fail_after(-1);
  cr_assert_null(c);
  for (long n = 1; n < 12; n++) {
    rt_alloc_fail_after(n);
    rt_counter *d = rt_counter_get(reg, "ringtail_oom2_total", "O.", "a", "b");
    rt_alloc_fail_after(-1);
    rt_counter_inc(d);   /* NULL or valid: both fine */
  }
  rt_counter *d = rt_counter_get(reg, "ringtail_oom2_total", "O.", "a", "b");
  cr_assert_not_null(d);
  char *s = expose();
  cr_assert(strstr(s, "ringtail_oom2_total{a=\"b\"}"), "%s", s);
  free(s);
}

Test(metrics, default_registry_is_shared) {
  cr_assert_not_null(rt_metrics_default());
  cr_assert_eq(rt_metrics_default(), rt_metrics_default());
}

/* A slow callback that also uses the registry. */
static atomic_int slow_started;
static double slow_cb(void *ctx) {
  rt_counter *c = rt_counter_get(reg, "ringtail_from_callback_total", "C.", NULL);
  rt_counter_inc(c);
  atomic_store(&slow_started, 1);
  usleep(300000);
  return *(double *)ctx;
}

static void *scrape(void *arg) {
  (void)arg;
  return expose();
}

Test(metrics, slow_callbacks_do_not_block_lookups) {
  static double v = 5;
  cr_assert_eq(rt_metrics_add_fn(reg, RT_METRIC_GAUGE, "ringtail_slow", "S.", slow_cb, &v, NULL),
               RT_OK);
  pthread_t t;
  pthread_create(&t, NULL, scrape, NULL);
  long deadline = 0;
  while (!atomic_load(&slow_started) && deadline++ < 5000) {
    usleep(1000);
  }
  cr_assert(atomic_load(&slow_started));
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  rt_counter *c = rt_counter_get(reg, "ringtail_during_scrape_total", "D.", NULL);
  rt_counter_inc(c);
  clock_gettime(CLOCK_MONOTONIC, &b);
  double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
  cr_assert_lt(ms, 150, "a lookup waited %.0f ms for a scrape", ms);
  char *s;
  pthread_join(t, (void **)&s);
  cr_assert(strstr(s, "ringtail_slow 5\n"), "%s", s);
  cr_assert(strstr(s, "ringtail_from_callback_total 1\n"), "%s", s);
  free(s);
}
