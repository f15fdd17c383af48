/* ing_decode_test.c - the direct PushRequest decoder agrees with protobuf-c and survives garbage. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "ingester/ing_int.h"

static rt_arena *A;
static void setup(void) { A = rt_arena_create(0); }
static void teardown(void) { rt_arena_destroy(A); }
TestSuite(decode, .init = setup, .fini = teardown);

static char *rstr(rt_arena *a) {
  size_t n = (size_t)(rand() % 12);
  char *s = rt_arena_alloc(a, n + 1);
  for (size_t i = 0; i < n; i++) {
    s[i] = (char)('a' + rand() % 26);
  }
  s[n] = 0;
  return s;
}

static Ringtail__PushRequest *random_req(rt_arena *a) {
  Ringtail__PushRequest *r = rt_arena_alloc(a, sizeof *r);
  ringtail__push_request__init(r);
  r->tenant = rand() % 4 ? rstr(a) : (char *)"";
  r->n_timeseries = (size_t)(rand() % 6);
  r->timeseries = rt_arena_alloc(a, (r->n_timeseries + 1) * sizeof *r->timeseries);
  for (size_t i = 0; i < r->n_timeseries; i++) {
    Prometheus__TimeSeries *ts = rt_arena_alloc(a, sizeof *ts);
    prometheus__time_series__init(ts);
    ts->n_labels = (size_t)(rand() % 5);
    ts->labels = rt_arena_alloc(a, (ts->n_labels + 1) * sizeof *ts->labels);
    for (size_t k = 0; k < ts->n_labels; k++) {
      Prometheus__Label *l = rt_arena_alloc(a, sizeof *l);
      prometheus__label__init(l);
      l->name = rstr(a);
      l->value = rstr(a);
      ts->labels[k] = l;
    }
    ts->n_samples = (size_t)(rand() % 5);
    ts->samples = rt_arena_alloc(a, (ts->n_samples + 1) * sizeof *ts->samples);
    for (size_t k = 0; k < ts->n_samples; k++) {
      Prometheus__Sample *s = rt_arena_alloc(a, sizeof *s);
      prometheus__sample__init(s);
      s->timestamp = (int64_t)(((uint64_t)rand() << 33) ^ ((uint64_t)rand() << 2)) * (rand() % 2 ? 1 : -1);
      s->value = rand() % 3 ? (double)rand() / 3.0 : 0;
      ts->samples[k] = s;
    }
    if (getenv("NO_EXEMPLARS") == NULL && rand() % 4 == 0) {
      /* an exemplar: must be skipped */
      ts->n_exemplars = 1;
      ts->exemplars = rt_arena_alloc(a, sizeof *ts->exemplars);
      Prometheus__Exemplar *e = rt_arena_alloc(a, sizeof *e);
      prometheus__exemplar__init(e);
      e->value = 1.5;
      e->timestamp = 7;
      ts->exemplars[0] = e;
    }
    r->timeseries[i] = ts;
  }
  r->n_metadata = (size_t)(rand() % 3);
  r->metadata = rt_arena_alloc(a, (r->n_metadata + 1) * sizeof *r->metadata);
  for (size_t i = 0; i < r->n_metadata; i++) {
    Prometheus__MetricMetadata *m = rt_arena_alloc(a, sizeof *m);
    prometheus__metric_metadata__init(m);
    m->type = (Prometheus__MetricMetadata__MetricType)(rand() % 8);
    m->metric_family_name = rstr(a);
    m->help = rstr(a);
    m->unit = rstr(a);
    r->metadata[i] = m;
  }
  return r;
}

static const char *nz(const char *s) { return s ? s : ""; }

static void same(const Ringtail__PushRequest *x, const Ringtail__PushRequest *y) {
  cr_assert_str_eq(nz(x->tenant), nz(y->tenant));
  cr_assert_eq(x->n_timeseries, y->n_timeseries);
  for (size_t i = 0; i < x->n_timeseries; i++) {
    const Prometheus__TimeSeries *a = x->timeseries[i], *b = y->timeseries[i];
    cr_assert_eq(a->n_labels, b->n_labels);
    for (size_t k = 0; k < a->n_labels; k++) {
      cr_assert_str_eq(nz(a->labels[k]->name), nz(b->labels[k]->name));
      cr_assert_str_eq(nz(a->labels[k]->value), nz(b->labels[k]->value));
    }
    cr_assert_eq(a->n_samples, b->n_samples);
    for (size_t k = 0; k < a->n_samples; k++) {
      cr_assert_eq(a->samples[k]->timestamp, b->samples[k]->timestamp);
      cr_assert_eq(memcmp(&a->samples[k]->value, &b->samples[k]->value, 8), 0);
    }
  }
  cr_assert_eq(x->n_metadata, y->n_metadata);
  for (size_t i = 0; i < x->n_metadata; i++) {
    cr_assert_eq(x->metadata[i]->type, y->metadata[i]->type);
    cr_assert_str_eq(nz(x->metadata[i]->metric_family_name), nz(y->metadata[i]->metric_family_name));
    cr_assert_str_eq(nz(x->metadata[i]->help), nz(y->metadata[i]->help));
    cr_assert_str_eq(nz(x->metadata[i]->unit), nz(y->metadata[i]->unit));
  }
}

Test(decode, agrees_with_protobuf_c) {
  srand(42);
  for (int round = 0; round < 2000; round++) {
    rt_arena_reset(A);
    Ringtail__PushRequest *r = random_req(A);
    size_t n = ringtail__push_request__get_packed_size(r);
    uint8_t *buf = rt_arena_alloc(A, n + 1);
    ringtail__push_request__pack(r, buf);
    Ringtail__PushRequest *mine;
    cr_assert_eq(ing_decode_push(buf, n, A, &mine), RT_OK);
    same(r, mine);
  }
}

Test(decode, garbage_never_crashes) {
  srand(7);
  int both = 0, mine_only = 0, theirs_only = 0;
  for (int round = 0; round < 5000; round++) {
    rt_arena_reset(A);
    Ringtail__PushRequest *r = random_req(A);
    size_t n = ringtail__push_request__get_packed_size(r);
    uint8_t *buf = rt_arena_alloc(A, n + 1);
    ringtail__push_request__pack(r, buf);
    /* mutate: flip bytes or truncate */
    size_t len = n;
    if (n && rand() % 2) {
      len = (size_t)rand() % n;
    }
    int flips = rand() % 4;
    for (int f = 0; f < flips && len; f++) {
      buf[(size_t)rand() % len] = (uint8_t)rand();
    }
    uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan sees any over-read */
    memcpy(copy, buf, len);
    Ringtail__PushRequest *mine;
    rt_err err = ing_decode_push(copy, len, A, &mine);
    Ringtail__PushRequest *theirs = ringtail__push_request__unpack(NULL, len, copy);
    if (err == RT_OK && theirs) {
      both++;
      same(theirs, mine);
    } else if (err == RT_OK) {
      mine_only++;
    } else if (theirs) {
      theirs_only++;
    } else {
      cr_assert_eq(err, RT_EPROTO);
    }
    if (theirs) {
      ringtail__push_request__free_unpacked(theirs, NULL);
    }
    free(copy);
  }
  cr_log_info("both accept %d, only ours %d, only protobuf-c %d", both, mine_only, theirs_only);
  /* a decoder that accepts what protobuf-c rejects would let malformed input through */
  cr_assert_lt(mine_only, 50, "ours accepted %d inputs protobuf-c rejected", mine_only);
}

Test(decode, wrong_wire_types) {
  /* field 2 (timeseries) as a varint */
  static const uint8_t a[] = {0x10, 0x01};
  Ringtail__PushRequest *r;
  cr_assert_eq(ing_decode_push(a, sizeof a, A, &r), RT_EPROTO);
  /* a sample whose value is a varint */
  static const uint8_t b[] = {0x12, 0x04, 0x12, 0x02, 0x08, 0x01};
  cr_assert_eq(ing_decode_push(b, sizeof b, A, &r), RT_EPROTO);
  /* a length beyond the end */
  static const uint8_t c[] = {0x0a, 0x05, 'a'};
  cr_assert_eq(ing_decode_push(c, sizeof c, A, &r), RT_EPROTO);
  /* an unknown field is skipped; empty input is an empty request */
  static const uint8_t d[] = {0x48, 0x05, 0x0a, 0x01, 't'};
  cr_assert_eq(ing_decode_push(d, sizeof d, A, &r), RT_OK);
  cr_assert_str_eq(r->tenant, "t");
  cr_assert_eq(ing_decode_push(d, 0, A, &r), RT_OK);
  cr_assert_eq(r->n_timeseries, 0);
  /* group wire types are refused */
  static const uint8_t e[] = {0x4b};
  cr_assert_eq(ing_decode_push(e, sizeof e, A, &r), RT_EPROTO);
}
