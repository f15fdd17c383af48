/* decode_test.c - snappy + protobuf decoding of remote-write bodies. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "distributor/distributor.h"
#include "rw_helpers.h"

static rt_arena *A;
static dist_limits L;
static char err[1024];

static void setup(void) {
  A = rt_arena_create(0);
  dist_limits_default(&L);
  err[0] = 0;
}
static void teardown(void) { rt_arena_destroy(A); }

TestSuite(decode, .init = setup, .fini = teardown);

static Prometheus__WriteRequest *two_series(void) {
  static const char *const l1[] = {"__name__", "up", "instance", "a:9100", "job", "node", NULL};
  static const char *const l2[] = {"__name__", "node_load1", "job", "node", NULL};
  static const int64_t ts[] = {1000, 2000, 3000};
  static const double v[] = {1, 0.5, -3.25};
  Prometheus__TimeSeries **s = rt_arena_alloc(A, 2 * sizeof *s);
  s[0] = rw_series(A, l1, ts, v, 3);
  s[1] = rw_series(A, l2, ts, v, 1);
  return rw_request(A, 2, s);
}

static rt_err dec_raw(const void *proto, size_t n, dist_request *out) {
  size_t bl;
  char *b = rw_snappy(proto, n, &bl);
  rt_err e = dist_decode(b, bl, &L, A, out, err, sizeof err);
  free(b);
  return e;
}

Test(decode, roundtrip) {
  Prometheus__WriteRequest *w = two_series();
  size_t bl;
  char *b = rw_body(w, &bl);
  dist_request r;
  cr_assert_eq(dist_decode(b, bl, &L, A, &r, err, sizeof err), RT_OK, "%s", err);
  free(b);
  cr_assert_eq(r.wr->n_timeseries, 2);
  Prometheus__TimeSeries *s = r.wr->timeseries[0];
  cr_assert_eq(s->n_labels, 3);
  cr_assert_str_eq(s->labels[1]->name, "instance");
  cr_assert_str_eq(s->labels[1]->value, "a:9100");
  cr_assert_eq(s->n_samples, 3);
  cr_assert_eq(s->samples[2]->timestamp, 3000);
  cr_assert_eq(s->samples[2]->value, -3.25);
  cr_assert_eq(r.wr->timeseries[1]->n_samples, 1);
  cr_assert_eq(r.info[0].bad_label, 0);
  /* the decoded request packs back to the same bytes */
  size_t n1, n2;
  uint8_t *p1 = rw_pack(w, &n1), *p2 = rw_pack(r.wr, &n2);
  cr_assert_eq(n1, n2);
  cr_assert(memcmp(p1, p2, n1) == 0);
  free(p1);
  free(p2);
}

Test(decode, empty_message_is_an_empty_request) {
  dist_request r;
  cr_assert_eq(dec_raw("", 0, &r), RT_OK, "%s", err);
  cr_assert_eq(r.wr->n_timeseries, 0);
  cr_assert_eq(r.wr->n_metadata, 0);
}

Test(decode, garbage) {
  char junk[512];
  for (size_t i = 0; i < sizeof junk; i++) {
    junk[i] = (char)(i * 131 + 7);
  }
  dist_request r;
  rt_err e = dist_decode(junk, sizeof junk, &L, A, &r, err, sizeof err);
  cr_assert(e == RT_EPROTO || e == RT_ELIMIT, "%s", rt_strerror(e));
  cr_assert(strstr(err, "snappy") || strstr(err, "too large"), "%s", err);
  cr_assert_eq(dist_decode("", 0, &L, A, &r, err, sizeof err), RT_EPROTO);
  cr_assert(strstr(err, "snappy: corrupt input") != NULL, "%s", err);
  /* plain protobuf without snappy */
  size_t pn;
  uint8_t *p = rw_pack(two_series(), &pn);
  e = dist_decode(p, pn, &L, A, &r, err, sizeof err);
  cr_assert(e == RT_EPROTO || e == RT_ELIMIT);
  free(p);
}

Test(decode, truncated_snappy) {
  size_t bl;
  char *b = rw_body(two_series(), &bl);
  dist_request r;
  for (size_t cut = 0; cut < bl; cut++) {
    rt_err e = dist_decode(b, cut, &L, A, &r, err, sizeof err);
    cr_assert_eq(e, RT_EPROTO, "cut at %zu of %zu: %s", cut, bl, rt_strerror(e));
    cr_assert(strstr(err, "snappy") != NULL, "%s", err);
  }
  free(b);
}

Test(decode, valid_snappy_of_garbage) {
  const char *junk = "this is certainly not a protobuf message \xff\xff\xff\xff";
  dist_request r;
  cr_assert_eq(dec_raw(junk, strlen(junk), &r), RT_EPROTO);
  cr_assert(strstr(err, "malformed protobuf WriteRequest") != NULL, "%s", err);
}

Test(decode, truncated_protobuf) {
  size_t pn;
  uint8_t *p = rw_pack(two_series(), &pn);
  dist_request r;
  for (size_t cut = 1; cut < pn; cut++) {
    rt_err e = dec_raw(p, cut, &r);
    if (e == RT_OK) {
      /* cut between two series: a valid, shorter request */
      cr_assert_eq(r.wr->n_timeseries, 1, "cut at %zu of %zu", cut, pn);
      continue;
    }
    cr_assert_eq(e, RT_EPROTO, "cut at %zu of %zu", cut, pn);
    cr_assert(strstr(err, "malformed protobuf WriteRequest") != NULL, "%s", err);
  }
  free(p);
}

Test(decode, wrong_wire_types) {
  dist_request r;
  /* timeseries (field 1) as a varint */
  cr_assert_eq(dec_raw("\x08\x01", 2, &r), RT_EPROTO);
  cr_assert_str_eq(err, "malformed protobuf WriteRequest: WriteRequest.timeseries: wire type varint, "
                        "expected length-delimited at byte 0");
  /* a series whose labels (field 1) are fixed32 */
  cr_assert_eq(dec_raw("\x0a\x05\x0d\x01\x02\x03\x04", 7, &r), RT_EPROTO);
  cr_assert(strstr(err, "TimeSeries.labels: wire type fixed32") != NULL, "%s", err);
  /* a label whose name is a varint */
  cr_assert_eq(dec_raw("\x0a\x04\x0a\x02\x08\x01", 6, &r), RT_EPROTO);
  cr_assert(strstr(err, "Label.name: wire type varint, expected length-delimited at byte 4") != NULL, "%s", err);
  /* a sample whose timestamp is fixed64 */
  cr_assert_eq(dec_raw("\x0a\x0b\x12\x09\x11\x01\x02\x03\x04\x05\x06\x07\x08", 13, &r), RT_EPROTO);
  cr_assert(strstr(err, "Sample.timestamp: wire type fixed64, expected varint") != NULL, "%s", err);
  /* a sample whose value is a varint */
  cr_assert_eq(dec_raw("\x0a\x04\x12\x02\x08\x05", 6, &r), RT_EPROTO);
  cr_assert(strstr(err, "Sample.value: wire type varint, expected fixed64") != NULL, "%s", err);
  /* groups are not allowed anywhere */
  cr_assert_eq(dec_raw("\x13\x14", 2, &r), RT_EPROTO);
  /* field number 0 */
  cr_assert_eq(dec_raw("\x02\x00", 2, &r), RT_EPROTO);
  cr_assert(strstr(err, "WriteRequest: field number 0 at byte 0") != NULL, "%s", err);
  /* metadata type as a string */
  cr_assert_eq(dec_raw("\x1a\x03\x0a\x01x", 5, &r), RT_EPROTO);
  cr_assert(strstr(err, "MetricMetadata.type") != NULL, "%s", err);
  /* an 11-byte varint */
  cr_assert_eq(dec_raw("\x0a\x0e\x12\x0c\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 16, &r), RT_EPROTO);
  /* a length beyond the end */
  cr_assert_eq(dec_raw("\x0a\x7f\x00", 3, &r), RT_EPROTO);
  cr_assert(strstr(err, "truncated") != NULL, "%s", err);
}

Test(decode, unknown_fields_are_skipped) {
  /* WriteRequest: unknown varint field 9, unknown fixed32 field 10, a series with an unknown
   * fixed64 field 7 and one label; then an unknown length-delimited field 15 */
  const uint8_t msg[] = {0x48, 0x96, 0x01, 0x55, 1, 2, 3, 4, 0x0a, 0x10, 0x39, 1, 2, 3, 4, 5, 6, 7, 8,
                         0x0a, 0x05, 0x0a, 0x01, 'a', 0x12, 0x00, 0x7a, 0x02, 'h', 'i'};
  dist_request r;
  cr_assert_eq(dec_raw(msg, sizeof msg, &r), RT_OK, "%s", err);
  cr_assert_eq(r.wr->n_timeseries, 1);
  cr_assert_eq(r.wr->timeseries[0]->n_labels, 1);
  cr_assert_str_eq(r.wr->timeseries[0]->labels[0]->name, "a");
  cr_assert_str_eq(r.wr->timeseries[0]->labels[0]->value, "");
}

Test(decode, repeated_scalar_last_wins) {
  /* a label with name given twice: proto3 keeps the last */
  const uint8_t msg[] = {0x0a, 0x0a, 0x0a, 0x08, 0x0a, 0x01, 'a', 0x0a, 0x01, 'b', 0x12, 0x00};
  dist_request r;
  cr_assert_eq(dec_raw(msg, sizeof msg, &r), RT_OK, "%s", err);
  cr_assert_str_eq(r.wr->timeseries[0]->labels[0]->name, "b");
}

Test(decode, nul_and_invalid_utf8_are_flagged) {
  static const char *const l1[] = {"__name__", "up", "job", "n\xff", NULL};
  static const int64_t ts[] = {1};
  static const double v[] = {1};
  Prometheus__TimeSeries **s = rt_arena_alloc(A, 2 * sizeof *s);
  s[0] = rw_series(A, l1, ts, v, 1);
  s[1] = rw_series(A, l1, ts, v, 1);
  size_t pn;
  uint8_t *p = rw_pack(rw_request(A, 2, s), &pn);
  /* turn the second series' "up" into "u\0" */
  uint8_t *second = p + pn / 2;
  uint8_t *u = memmem(second, pn - (size_t)(second - p), "up", 2);
  cr_assert_not_null(u);
  u[1] = 0;
  dist_request r;
  cr_assert_eq(dec_raw(p, pn, &r), RT_OK, "%s", err);
  cr_assert_eq(r.info[0].bad_label, 2);
  cr_assert_eq(r.info[0].bad_what, DIST_BAD_VALUE_UTF8);
  cr_assert_eq(r.info[1].bad_label, 1);
  cr_assert_eq(r.info[1].bad_what, DIST_BAD_VALUE_NUL);
  free(p);
}

Test(decode, exemplars_and_histograms_are_counted) {
  static const char *const l1[] = {"__name__", "h", NULL};
  Prometheus__TimeSeries *s = rw_series(A, l1, NULL, NULL, 0);
  Prometheus__Histogram h = PROMETHEUS__HISTOGRAM__INIT, *hp[2] = {&h, &h};
  h.timestamp = 5;
  Prometheus__Exemplar ex = PROMETHEUS__EXEMPLAR__INIT, *exp[1] = {&ex};
  s->n_histograms = 2;
  s->histograms = hp;
  s->n_exemplars = 1;
  s->exemplars = exp;
  dist_request r;
  size_t pn;
  uint8_t *p = rw_pack(rw_request(A, 1, &s), &pn);
  cr_assert_eq(dec_raw(p, pn, &r), RT_OK, "%s", err);
  free(p);
  cr_assert_eq(r.info[0].n_histograms, 2);
  cr_assert_eq(r.info[0].n_exemplars, 1);
  cr_assert_eq(r.wr->timeseries[0]->n_histograms, 0);
}

Test(decode, metadata) {
  Prometheus__MetricMetadata m = PROMETHEUS__METRIC_METADATA__INIT, *mp[1] = {&m};
  m.type = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER;
  m.metric_family_name = "http_requests_total";
  m.help = "Requests.";
  m.unit = "";
  Prometheus__WriteRequest w = PROMETHEUS__WRITE_REQUEST__INIT;
  w.n_metadata = 1;
  w.metadata = mp;
  size_t pn;
  uint8_t *p = rw_pack(&w, &pn);
  dist_request r;
  cr_assert_eq(dec_raw(p, pn, &r), RT_OK, "%s", err);
  free(p);
  cr_assert_eq(r.wr->n_metadata, 1);
  cr_assert_eq(r.wr->metadata[0]->type, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER);
  cr_assert_str_eq(r.wr->metadata[0]->metric_family_name, "http_requests_total");
  cr_assert_str_eq(r.wr->metadata[0]->help, "Requests.");
  cr_assert_eq(r.metadata_bad[0], 0);
}

Test(decode, special_values_and_extreme_timestamps) {
  static const char *const l1[] = {"__name__", "x", NULL};
  const int64_t ts[] = {INT64_MIN, -1, 0, INT64_MAX};
  const double v[] = {NAN, rt_stale_nan(), INFINITY, -1.5};
  Prometheus__TimeSeries *s = rw_series(A, l1, ts, v, 4);
  size_t pn;
  uint8_t *p = rw_pack(rw_request(A, 1, &s), &pn);
  dist_request r;
  cr_assert_eq(dec_raw(p, pn, &r), RT_OK, "%s", err);
  free(p);
  Prometheus__Sample **ss = r.wr->timeseries[0]->samples;
  for (int i = 0; i < 4; i++) {
    cr_assert_eq(ss[i]->timestamp, ts[i]);
  }
  cr_assert(isnan(ss[0]->value));
  cr_assert(rt_is_stale_nan(ss[1]->value));
  cr_assert(isinf(ss[2]->value));
  cr_assert_eq(ss[3]->value, -1.5);
}

Test(decode, declared_size_bomb) {
  dist_request r;
  /* a snappy header that declares 1 GiB, then nothing */
  const char hdr[] = {(char)0x80, (char)0x80, (char)0x80, (char)0x80, 0x04, 0x00};
  cr_assert_eq(dist_decode(hdr, sizeof hdr, &L, A, &r, err, sizeof err), RT_ELIMIT);
  cr_assert(strstr(err, "1073741824") != NULL, "%s", err);
  cr_assert_lt(rt_arena_used(A), 4096);
  /* a real body of 65 MiB of zeros: rejected before it is decompressed */
  size_t n = 65u << 20, bl;
  char *zeros = calloc(1, n);
  char *b = rw_snappy(zeros, n, &bl);
  free(zeros);
  cr_assert_eq(dist_decode(b, bl, &L, A, &r, err, sizeof err), RT_ELIMIT);
  cr_assert(strstr(err, "the limit is 67108864") != NULL, "%s", err);
  cr_assert_lt(rt_arena_used(A), 4096);
  /* the limit is configurable */
  L.max_decompressed_size = 100;
  size_t pn;
  uint8_t *p = rw_pack(two_series(), &pn);
  cr_assert_gt(pn, 100);
  cr_assert_eq(dec_raw(p, pn, &r), RT_ELIMIT);
  free(p);
  free(b);
}

Test(decode, large_body_with_bad_snappy_allocates_nothing) {
  /* 2 MiB declared, the rest garbage: validated before the output buffer exists */
  char body[64] = {(char)0x80, (char)0x80, (char)0x80, 0x01};
  memset(body + 4, 0xfe, sizeof body - 4);
  dist_request r;
  cr_assert_eq(dist_decode(body, sizeof body, &L, A, &r, err, sizeof err), RT_EPROTO);
  cr_assert_lt(rt_arena_used(A), 4096);
}

/* Agrees with protobuf-c on what it accepts. */
Test(decode, agrees_with_protobuf_c) {
  unsigned seed = 12345;
  for (int iter = 0; iter < 300; iter++) {
    rt_arena_reset(A);
    size_t pn;
    uint8_t *p = rw_pack(two_series(), &pn);
    /* flip a few bytes */
    for (int k = 0; k < 3; k++) {
      seed = seed * 1103515245 + 12345;
      p[(seed >> 8) % pn] ^= (uint8_t)(seed >> 20);
    }
    ProtobufCAllocator al = rt_arena_pb_allocator(A);
    Prometheus__WriteRequest *ref = prometheus__write_request__unpack(&al, pn, p);
    dist_request r;
    rt_err e = dec_raw(p, pn, &r);
    if (ref && e == RT_OK) {
      cr_assert_eq(r.wr->n_timeseries, ref->n_timeseries);
      for (size_t i = 0; i < ref->n_timeseries; i++) {
        Prometheus__TimeSeries *a = ref->timeseries[i], *b = r.wr->timeseries[i];
        cr_assert_eq(a->n_labels, b->n_labels);
        cr_assert_eq(a->n_samples, b->n_samples);
        for (size_t j = 0; j < a->n_labels; j++) {
          cr_assert_str_eq(a->labels[j]->name, b->labels[j]->name);
          cr_assert_str_eq(a->labels[j]->value, b->labels[j]->value);
        }
        for (size_t j = 0; j < a->n_samples; j++) {
          cr_assert_eq(a->samples[j]->timestamp, b->samples[j]->timestamp);
          cr_assert(memcmp(&a->samples[j]->value, &b->samples[j]->value, 8) == 0);
        }
      }
    } else if (ref && e != RT_OK) {
      /* protobuf-c is laxer about wire types of known fields in a few cases; we never accept
       * less than well-formed input, so the only acceptable disagreement is our rejection */
      cr_assert(e == RT_EPROTO, "%s", err);
    }
    free(p);
  }
}

Test(decode, out_of_memory) {
  size_t bl;
  char *b = rw_body(two_series(), &bl);
  for (long n = 0; n < 20; n++) {
    rt_arena *a = rt_arena_create(256);
    cr_assert_not_null(a);
    dist_request r;
    rt_alloc_fail_after(n);
    rt_err e = dist_decode(b, bl, &L, a, &r, err, sizeof err);
    rt_alloc_fail_after(-1);
    cr_assert(e == RT_OK || e == RT_ENOMEM, "%s", rt_strerror(e));
    rt_arena_destroy(a);
  }
  free(b);
}
