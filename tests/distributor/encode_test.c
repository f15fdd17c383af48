/* encode_test.c - the ingester push encoder: same bytes as protobuf-c, and exact doubles. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "distributor/dist_int.h"
#include "rpc.pb-c.h"
#include "rw_helpers.h"

static rt_arena *A;
static void setup(void) { A = rt_arena_create(0); }
static void teardown(void) { rt_arena_destroy(A); }
TestSuite(encode, .init = setup, .fini = teardown);

static Prometheus__WriteRequest *sample_request(const double *v, size_t nv) {
  static const char *const l1[] = {"__name__", "up", "caf\xc3\xa9", "x", "job", "", NULL};
  static const char *const l2[] = {"__name__", "y", NULL};
  int64_t ts[] = {INT64_MIN, -1, 0, 1, INT64_MAX, 1700000000000};
  Prometheus__TimeSeries **s = rt_arena_alloc(A, 3 * sizeof *s);
  s[0] = rw_series(A, l1, ts, v, nv);
  s[1] = rw_series(A, l2, ts, v, 0);
  s[2] = rw_series(A, l2, ts + 5, v, 1);
  Prometheus__WriteRequest *w = rw_request(A, 3, s);
  Prometheus__MetricMetadata **m = rt_arena_alloc(A, 2 * sizeof *m);
  for (int i = 0; i < 2; i++) {
    m[i] = rt_arena_alloc(A, sizeof **m);
    prometheus__metric_metadata__init(m[i]);
    m[i]->metric_family_name = "up";
    m[i]->help = i ? "" : "Help.";
    m[i]->unit = i ? "seconds" : "";
  }
  m[1]->type = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__STATESET;
  w->n_metadata = 2;
  w->metadata = m;
  return w;
}

Test(encode, same_bytes_as_protobuf_c) {
  const double v[] = {1.5, NAN, INFINITY, 0.0, -2, 3};
  Prometheus__WriteRequest *w = sample_request(v, 6);
  uint8_t *mine;
  size_t n;
  cr_assert_eq(dist_encode_push("tenant-1", &(dist_request){.wr = w}, A, &mine, &n), RT_OK);
  Ringtail__PushRequest pr = RINGTAIL__PUSH_REQUEST__INIT;
  pr.tenant = "tenant-1";
  pr.n_timeseries = w->n_timeseries;
  pr.timeseries = w->timeseries;
  pr.n_metadata = w->n_metadata;
  pr.metadata = w->metadata;
  size_t rn = ringtail__push_request__get_packed_size(&pr);
  uint8_t *ref = malloc(rn);
  ringtail__push_request__pack(&pr, ref);
  cr_assert_eq(n, rn);
  cr_assert(memcmp(mine, ref, n) == 0);
  free(ref);
}

Test(encode, exact_doubles_and_extremes) {
  const double v[] = {-0.0, rt_stale_nan(), -INFINITY, 5e-324, -1.0, 0.0};
  Prometheus__WriteRequest *w = sample_request(v, 6);
  uint8_t *mine;
  size_t n;
  cr_assert_eq(dist_encode_push("", &(dist_request){.wr = w}, A, &mine, &n), RT_OK);
  Ringtail__PushRequest *pr = ringtail__push_request__unpack(NULL, n, mine);
  cr_assert_not_null(pr);
  cr_assert_str_eq(pr->tenant, "");
  cr_assert_eq(pr->n_timeseries, 3);
  Prometheus__TimeSeries *s = pr->timeseries[0];
  cr_assert_eq(s->n_labels, 3);
  cr_assert_str_eq(s->labels[1]->name, "caf\xc3\xa9");
  cr_assert_eq(s->n_samples, 6);
  for (int i = 0; i < 6; i++) {
    cr_assert(memcmp(&s->samples[i]->value, &v[i], 8) == 0, "sample %d", i);
  }
  cr_assert_eq(s->samples[0]->timestamp, INT64_MIN);
  cr_assert_eq(s->samples[4]->timestamp, INT64_MAX);
  cr_assert_eq(pr->timeseries[1]->n_samples, 0);
  cr_assert_eq(pr->n_metadata, 2);
  cr_assert_eq(pr->metadata[1]->type, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__STATESET);
  cr_assert_str_eq(pr->metadata[1]->unit, "seconds");
  ringtail__push_request__free_unpacked(pr, NULL);
}

Test(encode, empty) {
  Prometheus__WriteRequest w = PROMETHEUS__WRITE_REQUEST__INIT;
  uint8_t *mine;
  size_t n;
  cr_assert_eq(dist_encode_push("", &(dist_request){.wr = &w}, A, &mine, &n), RT_OK);
  cr_assert_eq(n, 0);
}

/* A decoded series that validation left alone is passed on as received; a changed one is
 * encoded again. Either way the push decodes to the validated request. */
Test(encode, unchanged_series_are_copied) {
  static const char *const ok[] = {"__name__", "up", "job", "a", NULL};
  static const char *const empty[] = {"__name__", "up", "job", "b", "zone", "", NULL};
  int64_t ts[] = {rt_now_ms()};
  double v[] = {2.5};
  Prometheus__TimeSeries **s = rt_arena_alloc(A, 2 * sizeof *s);
  s[0] = rw_series(A, ok, ts, v, 1);
  s[1] = rw_series(A, empty, ts, v, 1);
  size_t bl;
  char *b = rw_body(rw_request(A, 2, s), &bl);
  dist_limits lim;
  dist_limits_default(&lim);
  dist_request r;
  char err[256];
  cr_assert_eq(dist_decode(b, bl, &lim, A, &r, err, sizeof err), RT_OK, "%s", err);
  free(b);
  dist_report rep;
  dist_validate(&r, &lim, rt_now_ms(), &rep);
  cr_assert_eq(rep.first, DIST_R_OK, "%s", rep.msg);
  cr_assert(r.info[0].raw_ok);
  cr_assert_not(r.info[1].raw_ok);
  uint8_t *out;
  size_t n;
  cr_assert_eq(dist_encode_push("t", &r, A, &out, &n), RT_OK);
  /* the first series' bytes appear verbatim */
  cr_assert_not_null(memmem(out, n, r.info[0].raw, r.info[0].raw_len));
  Ringtail__PushRequest *pr = ringtail__push_request__unpack(NULL, n, out);
  cr_assert_not_null(pr);
  cr_assert_eq(pr->n_timeseries, 2);
  cr_assert_eq(pr->timeseries[0]->n_labels, 2);
  cr_assert_eq(pr->timeseries[1]->n_labels, 2, "the empty label is gone");
  cr_assert_str_eq(pr->timeseries[1]->labels[1]->value, "b");
  ringtail__push_request__free_unpacked(pr, NULL);
}
