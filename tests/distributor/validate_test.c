/* validate_test.c - the remote-write rules and their messages. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "distributor/distributor.h"
#include "rw_helpers.h"

#define NOW 1700000000000LL
#define HOUR 3600000LL

static rt_arena *A;
static dist_limits L;
static char err[1024];
static dist_report R;

static void setup(void) {
  A = rt_arena_create(0);
  dist_limits_default(&L);
  err[0] = 0;
}
static void teardown(void) { rt_arena_destroy(A); }

TestSuite(validate, .init = setup, .fini = teardown);

static const int64_t T1[] = {NOW - 2000, NOW - 1000, NOW};
static const double V1[] = {1, 2, 3};

/* Encodes the series, decodes them (the real path) and validates. */
static dist_request run(size_t n, Prometheus__TimeSeries **s) {
  size_t bl;
  char *b = rw_body(rw_request(A, n, s), &bl);
  dist_request r;
  rt_err e = dist_decode(b, bl, &L, A, &r, err, sizeof err);
  free(b);
  cr_assert_eq(e, RT_OK, "%s", err);
  dist_validate(&r, &L, NOW, &R);
  return r;
}

static dist_request run1(const char *const *kv) {
  Prometheus__TimeSeries *s = rw_series(A, kv, T1, V1, 3);
  return run(1, &s);
}

static void expect_rejected(const char *const *kv, dist_reason why, const char *msg) {
  dist_request r = run1(kv);
  cr_assert_eq(r.wr->n_timeseries, 0);
  cr_assert_eq(R.first, why, "got %s: %s", dist_reason_names[R.first], R.msg);
  cr_assert_eq(R.rejected[why], 3);
  cr_assert_eq(R.samples_rejected, 3);
  cr_assert_eq(R.series_rejected, 1);
  if (msg) {
    cr_assert_str_eq(R.msg, msg);
  }
}

Test(validate, valid_series_pass_unchanged) {
  static const char *const kv[] = {"__name__", "up", "instance", "a:1", "job", "node", NULL};
  dist_request r = run1(kv);
  cr_assert_eq(R.first, DIST_R_OK, "%s", R.msg);
  cr_assert_eq(r.wr->n_timeseries, 1);
  cr_assert_eq(r.wr->timeseries[0]->n_labels, 3);
  cr_assert_eq(r.wr->timeseries[0]->n_samples, 3);
  cr_assert_eq(R.samples_total, 3);
  cr_assert_eq(R.samples_rejected, 0);
}

Test(validate, duplicate_label_name) {
  static const char *const kv[] = {"__name__", "up", "job", "a", "job", "b", NULL};
  expect_rejected(kv, DIST_R_DUPLICATE_LABEL_NAMES,
                  "received a series with duplicate label name, label: \"job\" series: "
                  "\"up{job=\\\"a\\\",job=\\\"b\\\"}\"");
}

Test(validate, unsorted_labels) {
  static const char *const kv[] = {"__name__", "up", "job", "a", "instance", "b", NULL};
  expect_rejected(kv, DIST_R_LABELS_NOT_SORTED,
                  "received a series where the label names are not sorted, label: \"instance\" series: "
                  "\"up{job=\\\"a\\\",instance=\\\"b\\\"}\"");
}

Test(validate, empty_label_name) {
  static const char *const kv[] = {"", "x", "__name__", "up", NULL};
  expect_rejected(kv, DIST_R_INVALID_LABEL,
                  "received a series with an invalid label, label: \"\" series: \"up{\\\"\\\"=\\\"x\\\"}\"");
}

Test(validate, invalid_label_names) {
  static const char *const kv1[] = {"__name__", "up", "a-b", "x", NULL};
  expect_rejected(kv1, DIST_R_INVALID_LABEL, NULL);
  cr_assert(strstr(R.msg, "label: \"a-b\"") != NULL, "%s", R.msg);
  static const char *const kv2[] = {"0a", "x", "__name__", "up", NULL};
  expect_rejected(kv2, DIST_R_INVALID_LABEL, NULL);
  static const char *const kv3[] = {"__name__", "up", "caf\xc3\xa9", "x", NULL};
  expect_rejected(kv3, DIST_R_INVALID_LABEL, NULL);
}

Test(validate, utf8_label_names_when_enabled) {
  L.utf8_names = true;
  static const char *const kv[] = {"__name__", "http.requests", "caf\xc3\xa9", "x", NULL};
  dist_request r = run1(kv);
  cr_assert_eq(R.first, DIST_R_OK, "%s", R.msg);
  cr_assert_eq(r.wr->n_timeseries, 1);
  static const char *const bad[] = {"__name__", "up", "caf\xff", "x", NULL};
  expect_rejected(bad, DIST_R_INVALID_LABEL, NULL);
}

Test(validate, invalid_metric_name) {
  static const char *const kv[] = {"__name__", "1up", NULL};
  expect_rejected(kv, DIST_R_INVALID_METRIC_NAME,
                  "received a series with invalid metric name, metric name: \"1up\" series: \"1up{}\"");
  static const char *const ok[] = {"__name__", "job:up:sum", NULL};
  run1(ok);
  cr_assert_eq(R.first, DIST_R_OK, "%s", R.msg);
}

Test(validate, invalid_utf8_value) {
  static const char *const kv[] = {"__name__", "up", "job", "a\xc3\x28", NULL};
  expect_rejected(kv, DIST_R_INVALID_LABEL_VALUE, NULL);
  cr_assert(strstr(R.msg, "not valid UTF-8, label: \"job\"") != NULL, "%s", R.msg);
  cr_assert(strstr(R.msg, "\\\\xc3(") != NULL, "the value is shown escaped: %s", R.msg);
}

Test(validate, invalid_utf8_without_decoder_info) {
  /* a request built in memory (no dist_series_info) is checked just the same */
  static const char *const kv[] = {"__name__", "up", "job", "\xed\xa0\x80", NULL};
  Prometheus__TimeSeries *s = rw_series(A, kv, T1, V1, 3);
  dist_request r = {.wr = rw_request(A, 1, &s)};
  dist_validate(&r, &L, NOW, &R);
  cr_assert_eq(R.first, DIST_R_INVALID_LABEL_VALUE, "%s", R.msg);
  cr_assert_eq(r.wr->n_timeseries, 0);
}

Test(validate, missing_metric_name) {
  static const char *const kv[] = {"job", "a", NULL};
  expect_rejected(kv, DIST_R_MISSING_METRIC_NAME,
                  "received a series without metric name, series: \"{job=\\\"a\\\"}\"");
  static const char *const empty[] = {"__name__", "", "job", "a", NULL};
  expect_rejected(empty, DIST_R_MISSING_METRIC_NAME, NULL);
  static const char *const none[] = {NULL};
  expect_rejected(none, DIST_R_MISSING_METRIC_NAME, NULL);
}

Test(validate, empty_values_are_dropped) {
  static const char *const kv[] = {"__name__", "up", "a", "", "b", "x", "c", "", NULL};
  dist_request r = run1(kv);
  cr_assert_eq(R.first, DIST_R_OK, "%s", R.msg);
  Prometheus__TimeSeries *s = r.wr->timeseries[0];
  cr_assert_eq(s->n_labels, 2);
  cr_assert_str_eq(s->labels[0]->name, "__name__");
  cr_assert_str_eq(s->labels[1]->name, "b");
}

Test(validate, label_lengths) {
  char name[1100], value[2100];
  memset(name, 'n', sizeof name - 1);
  name[sizeof name - 1] = 0;
  memset(value, 'v', sizeof value - 1);
  value[sizeof value - 1] = 0;
  const char *kv1[] = {"__name__", "up", name, "x", NULL};
  expect_rejected(kv1, DIST_R_LABEL_NAME_TOO_LONG, NULL);
  cr_assert(strstr(R.msg, "(actual: 1099, max_label_name_length: 1024)") != NULL, "%s", R.msg);
  cr_assert_lt(strlen(R.msg), 700);
  const char *kv2[] = {"__name__", "up", "job", value, NULL};
  expect_rejected(kv2, DIST_R_LABEL_VALUE_TOO_LONG, NULL);
  cr_assert(strstr(R.msg, "(actual: 2099, max_label_value_length: 2048), label: \"job\"") != NULL, "%s", R.msg);
  L.max_label_value_length = 0; /* no limit */
  run1(kv2);
  cr_assert_eq(R.first, DIST_R_OK, "%s", R.msg);
}

Test(validate, too_many_labels) {
  static const char *kv[2 * 40 + 3];
  static char names[40][8];
  kv[0] = "__name__";
  kv[1] = "up";
  for (int i = 0; i < 40; i++) {
    snprintf(names[i], sizeof names[i], "l%02d", i);
    kv[2 + 2 * i] = names[i];
    kv[3 + 2 * i] = "v";
  }
  kv[82] = NULL;
  expect_rejected(kv, DIST_R_MAX_LABEL_NAMES, NULL);
  cr_assert(strstr(R.msg, "(actual: 41, max_label_names_per_series: 30)") != NULL, "%s", R.msg);
  /* empty values do not count */
  for (int i = 29; i < 40; i++) {
    kv[3 + 2 * i] = "";
  }
  run1(kv);
  cr_assert_eq(R.first, DIST_R_OK, "%s", R.msg);
}

Test(validate, hundred_thousand_labels) {
  size_t n = 100000;
  const char **kv = calloc(2 * n + 3, sizeof *kv);
  char *names = calloc(n, 12);
  kv[0] = "__name__";
  kv[1] = "up";
  for (size_t i = 0; i < n; i++) {
    snprintf(names + 12 * i, 12, "l%07zu", i);
    kv[2 + 2 * i] = names + 12 * i;
    kv[3 + 2 * i] = "v";
  }
  expect_rejected(kv, DIST_R_MAX_LABEL_NAMES, NULL);
  cr_assert(strstr(R.msg, "(actual: 100001, max_label_names_per_series: 30)") != NULL, "%s", R.msg);
  cr_assert_lt(strlen(R.msg), 800, "the message is bounded");
  free(kv);
  free(names);
}

Test(validate, nan_and_stale_markers_are_samples) {
  static const char *const kv[] = {"__name__", "up", NULL};
  const int64_t ts[] = {NOW - 2, NOW - 1, NOW};
  const double v[] = {NAN, rt_stale_nan(), -INFINITY};
  Prometheus__TimeSeries *s = rw_series(A, kv, ts, v, 3);
  dist_request r = run(1, &s);
  cr_assert_eq(R.first, DIST_R_OK, "%s", R.msg);
  cr_assert_eq(r.wr->timeseries[0]->n_samples, 3);
  cr_assert(rt_is_stale_nan(r.wr->timeseries[0]->samples[1]->value));
}

Test(validate, timestamps_too_old_and_in_the_future) {
  static const char *const kv[] = {"__name__", "up", NULL};
  const int64_t week = 7 * 24 * HOUR;
  const int64_t ts[] = {INT64_MIN, NOW - week - 1, NOW - week, NOW, NOW + 10 * 60000, NOW + 10 * 60000 + 1, INT64_MAX};
  const double v[] = {1, 2, 3, 4, 5, 6, 7};
  Prometheus__TimeSeries *s = rw_series(A, kv, ts, v, 7);
  dist_request r = run(1, &s);
  cr_assert_eq(R.first, DIST_R_TOO_OLD);
  cr_assert_str_eq(R.msg, "received a sample whose timestamp is too old, timestamp: -9223372036854775808 (older "
                          "than now - reject_old_samples_max_age 168h0m0s), series: \"up{}\" (tenant: "
                          "\"anonymous\"; see docs/errors.md#err-ringtail-sample-too-old)");
  cr_assert_eq(R.rejected[DIST_R_TOO_OLD], 2);
  cr_assert_eq(R.rejected[DIST_R_TOO_FAR_IN_FUTURE], 2);
  cr_assert_eq(R.samples_rejected, 4);
  cr_assert_eq(R.series_rejected, 0);
  Prometheus__TimeSeries *o = r.wr->timeseries[0];
  cr_assert_eq(o->n_samples, 3);
  cr_assert_eq(o->samples[0]->timestamp, NOW - week);
  cr_assert_eq(o->samples[2]->timestamp, NOW + 10 * 60000);
}

Test(validate, future_message) {
  static const char *const kv[] = {"__name__", "up", NULL};
  const int64_t ts[] = {INT64_MAX};
  const double v[] = {1};
  Prometheus__TimeSeries *s = rw_series(A, kv, ts, v, 1);
  dist_request r = run(1, &s);
  cr_assert_eq(r.wr->n_timeseries, 0);
  cr_assert_str_eq(R.msg, "received a sample whose timestamp is too far in the future, timestamp: "
                          "9223372036854775807 (newer than now + creation_grace_period 10m0s), series: "
                          "\"up{}\" (tenant: \"anonymous\"; see "
                          "docs/errors.md#err-ringtail-sample-too-far-in-future)");
}

Test(validate, old_samples_allowed_when_configured) {
  L.reject_old_samples = false;
  static const char *const kv[] = {"__name__", "up", NULL};
  const int64_t ts[] = {INT64_MIN, 0};
  const double v[] = {1, 2};
  Prometheus__TimeSeries *s = rw_series(A, kv, ts, v, 2);
  dist_request r = run(1, &s);
  cr_assert_eq(R.first, DIST_R_OK, "%s", R.msg);
  cr_assert_eq(r.wr->timeseries[0]->n_samples, 2);
}

Test(validate, out_of_order_in_request) {
  static const char *const kv[] = {"__name__", "up", NULL};
  const int64_t ts[] = {NOW - 10, NOW - 20, NOW - 10, NOW};
  const double v[] = {1, 2, 3, 4};
  Prometheus__TimeSeries *s = rw_series(A, kv, ts, v, 4);
  dist_request r = run(1, &s);
  cr_assert_eq(R.first, DIST_R_OUT_OF_ORDER);
  cr_assert(strstr(R.msg, "out of order sample: timestamp 1699999999980 follows 1699999999990") != NULL, "%s",
            R.msg);
  cr_assert_eq(R.samples_rejected, 1);
  cr_assert_eq(r.wr->timeseries[0]->n_samples, 3, "equal timestamps go on to the ingester");
  /* with an out-of-order window the ingester decides */
  rt_arena_reset(A);
  L.ooo_window_ms = HOUR;
  s = rw_series(A, kv, ts, v, 4);
  r = run(1, &s);
  cr_assert_eq(R.first, DIST_R_OK);
  cr_assert_eq(r.wr->timeseries[0]->n_samples, 4);
}

Test(validate, partial_batch) {
  static const char *const good1[] = {"__name__", "a", NULL};
  static const char *const bad[] = {"__name__", "b", "z", "1", "y", "2", NULL};
  static const char *const good2[] = {"__name__", "c", NULL};
  static const char *const bad2[] = {"x", "1", NULL};
  Prometheus__TimeSeries **s = rt_arena_alloc(A, 4 * sizeof *s);
  s[0] = rw_series(A, good1, T1, V1, 3);
  s[1] = rw_series(A, bad, T1, V1, 2);
  s[2] = rw_series(A, good2, T1, V1, 1);
  s[3] = rw_series(A, bad2, T1, V1, 3);
  dist_request r = run(4, s);
  cr_assert_eq(r.wr->n_timeseries, 2);
  cr_assert_str_eq(r.wr->timeseries[0]->labels[0]->value, "a");
  cr_assert_str_eq(r.wr->timeseries[1]->labels[0]->value, "c");
  cr_assert_eq(R.first, DIST_R_LABELS_NOT_SORTED);
  cr_assert(strstr(R.msg, "b{z=\\\"1\\\",y=\\\"2\\\"}") != NULL, "%s", R.msg);
  cr_assert_eq(R.series_total, 4);
  cr_assert_eq(R.series_rejected, 2);
  cr_assert_eq(R.samples_total, 9);
  cr_assert_eq(R.samples_rejected, 5);
  cr_assert_eq(R.rejected[DIST_R_LABELS_NOT_SORTED], 2);
  cr_assert_eq(R.rejected[DIST_R_MISSING_METRIC_NAME], 3);
}

Test(validate, native_histograms_are_rejected_floats_kept) {
  static const char *const kv[] = {"__name__", "h", NULL};
  static const char *const kv2[] = {"__name__", "f", NULL};
  Prometheus__TimeSeries **s = rt_arena_alloc(A, 2 * sizeof *s);
  s[0] = rw_series(A, kv, NULL, NULL, 0);
  Prometheus__Histogram h = PROMETHEUS__HISTOGRAM__INIT, *hp[1] = {&h};
  h.timestamp = NOW;
  s[0]->n_histograms = 1;
  s[0]->histograms = hp;
  s[1] = rw_series(A, kv2, T1, V1, 3);
  dist_request r = run(2, s);
  cr_assert_eq(R.first, DIST_R_NATIVE_HISTOGRAM);
  cr_assert_str_eq(R.msg, "received a native histogram sample, native histograms are not supported yet, series: "
                          "\"h{}\"");
  cr_assert_eq(R.rejected[DIST_R_NATIVE_HISTOGRAM], 1);
  cr_assert_eq(r.wr->n_timeseries, 1);
  cr_assert_str_eq(r.wr->timeseries[0]->labels[0]->value, "f");
}

Test(validate, exemplars_are_ignored) {
  static const char *const kv[] = {"__name__", "up", NULL};
  Prometheus__TimeSeries *s = rw_series(A, kv, T1, V1, 3);
  Prometheus__Exemplar ex = PROMETHEUS__EXEMPLAR__INIT, *exp[1] = {&ex};
  s->n_exemplars = 1;
  s->exemplars = exp;
  dist_request r = run(1, &s);
  cr_assert_eq(R.first, DIST_R_OK);
  cr_assert_eq(R.exemplars_ignored, 1);
  cr_assert_eq(r.wr->timeseries[0]->n_exemplars, 0);
}

static Prometheus__MetricMetadata *md(const char *name, const char *help, const char *unit) {
  Prometheus__MetricMetadata *m = rt_arena_alloc(A, sizeof *m);
  prometheus__metric_metadata__init(m);
  m->metric_family_name = (char *)name;
  m->help = (char *)help;
  m->unit = (char *)unit;
  return m;
}

Test(validate, metadata) {
  char longhelp[1200];
  memset(longhelp, 'h', sizeof longhelp - 1);
  longhelp[sizeof longhelp - 1] = 0;
  Prometheus__MetricMetadata **m = rt_arena_alloc(A, 4 * sizeof *m);
  m[0] = md("up", "Whether the target is up.", "");
  m[1] = md("", "no name", "");
  m[2] = md("x", longhelp, "");
  m[3] = md("y", "", "seconds");
  Prometheus__WriteRequest *w = rw_request(A, 0, NULL);
  w->n_metadata = 4;
  w->metadata = m;
  size_t bl;
  char *b = rw_body(w, &bl);
  dist_request r;
  cr_assert_eq(dist_decode(b, bl, &L, A, &r, err, sizeof err), RT_OK);
  free(b);
  dist_validate(&r, &L, NOW, &R);
  cr_assert_eq(r.wr->n_metadata, 2);
  cr_assert_str_eq(r.wr->metadata[1]->metric_family_name, "y");
  cr_assert_eq(R.metadata_rejected, 2);
  cr_assert_eq(R.samples_rejected, 0);
  cr_assert_eq(R.first, DIST_R_METADATA_INVALID);
  cr_assert_str_eq(R.msg, "received a metric metadata with no metric name");
}

Test(validate, tenant_ids) {
  cr_assert(dist_tenant_valid("anonymous", err, sizeof err));
  cr_assert(dist_tenant_valid("team-a_1.prod*(x)'!", err, sizeof err));
  cr_assert_not(dist_tenant_valid("", err, sizeof err));
  cr_assert_not(dist_tenant_valid(".", err, sizeof err));
  cr_assert_not(dist_tenant_valid("..", err, sizeof err));
  cr_assert_not(dist_tenant_valid("a/b", err, sizeof err));
  cr_assert(strstr(err, "'/'") != NULL, "%s", err);
  char long_id[152];
  memset(long_id, 'a', 151);
  long_id[151] = 0;
  cr_assert_not(dist_tenant_valid(long_id, err, sizeof err));
  long_id[150] = 0;
  cr_assert(dist_tenant_valid(long_id, err, sizeof err));
}

Test(validate, message_shows_the_labels_as_received) {
  static const char *const kv[] = {"__name__", "up", "a", "", "b", "x", "b", "y", NULL};
  expect_rejected(kv, DIST_R_DUPLICATE_LABEL_NAMES,
                  "received a series with duplicate label name, label: \"b\" series: "
                  "\"up{a=\\\"\\\",b=\\\"x\\\",b=\\\"y\\\"}\"");
}

Test(validate, empty_values_dropped_in_step_with_lengths) {
  static const char *const kv[] = {"__name__", "up", "a", "", "bb", "xyz", "c", "", "dddd", "v", NULL};
  dist_request r = run1(kv);
  cr_assert_eq(R.first, DIST_R_OK, "%s", R.msg);
  Prometheus__TimeSeries *s = r.wr->timeseries[0];
  cr_assert_eq(s->n_labels, 3);
  const uint32_t *lens = r.info[0].lens;
  for (size_t i = 0; i < s->n_labels; i++) {
    cr_assert_eq(lens[2 * i], strlen(s->labels[i]->name));
    cr_assert_eq(lens[2 * i + 1], strlen(s->labels[i]->value));
  }
  cr_assert_str_eq(s->labels[2]->name, "dddd");
}

Test(validate, limits_from_the_configuration) {
  rt_config cfg;
  rt_config_defaults(&cfg);
  dist_limits got, def;
  dist_limits_from_config(&cfg, &got);
  dist_limits_default(&def);
  /* the built-in defaults are the configuration's defaults */
  cr_assert_eq(got.max_decompressed_size, def.max_decompressed_size);
  cr_assert_eq(got.reject_old_samples, def.reject_old_samples);
  cr_assert_eq(got.reject_old_samples_max_age_ms, def.reject_old_samples_max_age_ms);
  cr_assert_eq(got.creation_grace_period_ms, def.creation_grace_period_ms);
  cr_assert_eq(got.max_label_names_per_series, def.max_label_names_per_series);
  cr_assert_eq(got.max_label_name_length, def.max_label_name_length);
  cr_assert_eq(got.max_label_value_length, def.max_label_value_length);
  cr_assert_eq(got.max_metadata_length, def.max_metadata_length);
  cfg.max_label_names_per_series = 7;
  cfg.reject_old_samples = false;
  cfg.ooo_window_ms = 1234;
  dist_limits_from_config(&cfg, &got);
  cr_assert_eq(got.max_label_names_per_series, 7);
  cr_assert_not(got.reject_old_samples);
  cr_assert_eq(got.ooo_window_ms, 1234);
  dist_config dc;
  dist_config_from_rt(&cfg, &dc);
  cr_assert_eq(dc.max_recv_msg_size, 10u << 20);
  cr_assert_eq(dc.timeout_ms, 2000);
  rt_config_free(&cfg);
}
