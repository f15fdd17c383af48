/* ing_rpc_test.c - the ingester's RPC service over inproc:// and tcp://, and concurrent use. */
#include <pthread.h>

#include "common/rpc.h"
#include "ing_util.h"

static char *dir;
static rt_arena *A;

static void setup(void) {
  dir = tu_tmpdir();
  A = rt_arena_create(0);
}

static void teardown(void) {
  rt_arena_destroy(A);
  tu_rm_rf(dir);
  free(dir);
}

TestSuite(ingrpc, .init = setup, .fini = teardown);

static void call(rt_rpc_client *c, const char *method, const ProtobufCMessage *m, rt_buf *reply,
                 rt_err want) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *b = malloc(n ? n : 1);
  protobuf_c_message_pack(m, b);
  char eb[512];
  rt_err err = rt_rpc_call(c, method, b, n, 5000, reply, eb, sizeof eb);
  free(b);
  cr_assert_eq(err, want, "%s: %s", method, eb);
}

static void rpc_roundtrip(const char *endpoint) {
  ing_config cfg = tu_cfg(dir);
  ing_ingester *ing;
  cr_assert_eq(ing_create(&cfg, &ing), RT_OK);
  cr_assert_eq(ing_serve(ing, endpoint, 2), RT_OK);
  rt_rpc_client *c;
  cr_assert_eq(rt_rpc_client_create(endpoint, &c), RT_OK);
  rt_buf reply = RT_BUF_INIT;

  tu_push p;
  tu_push_init(&p, A, "team");
  int64_t ts[] = {10, 20};
  double vs[] = {1, 2};
  tu_series(&p, "__name__=x,job=j", 2, ts, vs);
  Prometheus__MetricMetadata md, *mds[1] = {&md};
  prometheus__metric_metadata__init(&md);
  md.metric_family_name = "x";
  md.help = "An x.";
  md.type = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE;
  p.req.metadata = mds;
  p.req.n_metadata = 1;
  call(c, "ingester.Push", &p.req.base, &reply, RT_OK);
  Ringtail__PushResponse *pr = ringtail__push_response__unpack(NULL, reply.len, (uint8_t *)reply.data);
  cr_assert_not_null(pr);
  cr_assert_eq(pr->samples_accepted, 2);
  ringtail__push_response__free_unpacked(pr, NULL);

  /* a rejected sample travels back as a per-series error */
  tu_push_init(&p, A, "team");
  int64_t old = 5;
  tu_series(&p, "__name__=x,job=j", 1, &old, vs);
  call(c, "ingester.Push", &p.req.base, &reply, RT_OK);
  pr = ringtail__push_response__unpack(NULL, reply.len, (uint8_t *)reply.data);
  cr_assert_eq(pr->n_errors, 1);
  cr_assert(strstr(pr->errors[0]->message, "out of order sample"));
  ringtail__push_response__free_unpacked(pr, NULL);

  Ringtail__SelectRequest sreq;
  ringtail__select_request__init(&sreq);
  sreq.tenant = "team";
  tu_matchers(A, "job=j", &sreq.matchers, &sreq.n_matchers);
  call(c, "ingester.Select", &sreq.base, &reply, RT_OK);
  Ringtail__SelectResponse *sr = ringtail__select_response__unpack(NULL, reply.len, (uint8_t *)reply.data);
  cr_assert_not_null(sr);
  cr_assert_eq(sr->n_series, 1);
  int64_t ot[4];
  double ov[4];
  cr_assert_eq(tu_samples(sr->series[0], ot, ov, 4), 2);
  cr_assert_eq(ot[1], 20);
  ringtail__select_response__free_unpacked(sr, NULL);

  Ringtail__LabelsRequest lreq;
  ringtail__labels_request__init(&lreq);
  lreq.tenant = "team";
  call(c, "ingester.LabelNames", &lreq.base, &reply, RT_OK);
  Ringtail__LabelsResponse *lr = ringtail__labels_response__unpack(NULL, reply.len, (uint8_t *)reply.data);
  cr_assert_eq(lr->n_values, 2);
  cr_assert_str_eq(lr->values[1], "job");
  ringtail__labels_response__free_unpacked(lr, NULL);
  lreq.name = "job";
  call(c, "ingester.LabelValues", &lreq.base, &reply, RT_OK);
  lr = ringtail__labels_response__unpack(NULL, reply.len, (uint8_t *)reply.data);
  cr_assert_eq(lr->n_values, 1);
  cr_assert_str_eq(lr->values[0], "j");
  ringtail__labels_response__free_unpacked(lr, NULL);

  Ringtail__MetadataRequest mreq;
  ringtail__metadata_request__init(&mreq);
  mreq.tenant = "team";
  call(c, "ingester.Metadata", &mreq.base, &reply, RT_OK);
  Ringtail__MetadataResponse *mr = ringtail__metadata_response__unpack(NULL, reply.len, (uint8_t *)reply.data);
  cr_assert_eq(mr->n_metadata, 1);
  cr_assert_str_eq(mr->metadata[0]->help, "An x.");
  ringtail__metadata_response__free_unpacked(mr, NULL);

  /* a malformed body gets a precise error, and the service keeps working */
  char eb[256];
  static const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff};
  cr_assert_eq(rt_rpc_call(c, "ingester.Select", junk, sizeof junk, 5000, &reply, eb, sizeof eb), RT_EPROTO);
  cr_assert(strstr(eb, "malformed"), "%s", eb);
  /* a bad regex */
  tu_matchers(A, "job=~(", &sreq.matchers, &sreq.n_matchers);
  call(c, "ingester.Select", &sreq.base, &reply, RT_EINVAL);

  rt_buf_free(&reply);
  rt_rpc_client_destroy(c);
  ing_destroy(ing);
}

Test(ingrpc, inproc) { rpc_roundtrip("inproc://ingester-test"); }

Test(ingrpc, tcp) { rpc_roundtrip("tcp://127.0.0.1:29411"); }

/* ---------------------------------------------------------------- concurrency */

typedef struct worker {
  ing_ingester *ing;
  int id;
  int iters;
  bool reader;
  int failures;
} worker;

static void *worker_main(void *arg) {
  worker *w = arg;
  rt_arena *a = rt_arena_create(0);
  for (int i = 0; i < w->iters; i++) {
    rt_arena_reset(a);
    if (w->reader) {
      Ringtail__SelectResponse sr;
      if (tu_select(w->ing, i % 2 ? "ta" : "tb", "__name__=c", 0, 0, &sr, a) != RT_OK) {
        w->failures++;
      }
      for (size_t s = 0; s < sr.n_series; s++) {
        int64_t ts[2048];
        double vs[2048];
        size_t n = tu_samples(sr.series[s], ts, vs, 2048);
        for (size_t j = 1; j < n && j < 2048; j++) {
          if (ts[j] != ts[j - 1] + 1) {
            w->failures++; /* a torn or duplicated view */
          }
        }
      }
      continue;
    }
    tu_push p;
    tu_push_init(&p, a, w->id % 2 ? "ta" : "tb");
    for (int s = 0; s < 20; s++) {
      char lb[64];
      snprintf(lb, sizeof lb, "__name__=c,s=%d,w=%d", s, w->id);
      int64_t t = i;
      double v = i;
      tu_series(&p, lb, 1, &t, &v);
    }
    Ringtail__PushResponse resp;
    if (ing_push(w->ing, &p.req, &resp, a) != RT_OK || resp.samples_accepted != 20) {
      w->failures++;
    }
  }
  rt_arena_destroy(a);
  return NULL;
}

Test(ingrpc, concurrent_push_and_select) {
  ing_config cfg = tu_cfg(dir);
  cfg.chunk_max_samples = 50;
  ing_ingester *ing;
  cr_assert_eq(ing_create(&cfg, &ing), RT_OK);
  worker ws[6];
  pthread_t th[6];
  for (int i = 0; i < 6; i++) {
    ws[i] = (worker){.ing = ing, .id = i, .iters = 300, .reader = i >= 4};
    pthread_create(&th[i], NULL, worker_main, &ws[i]);
  }
  for (int i = 0; i < 6; i++) {
    pthread_join(th[i], NULL);
    cr_assert_eq(ws[i].failures, 0, "worker %d", i);
  }
  ing_stats st;
  ing_get_stats(ing, &st);
  cr_assert_eq(st.samples_appended, 4 * 300 * 20);
  cr_assert_eq(st.active_series, 80);
  ing_destroy(ing);
  cr_assert_eq(ing_create(&cfg, &ing), RT_OK);
  Ringtail__SelectResponse sr;
  cr_assert_eq(tu_select(ing, "ta", "__name__=c", 0, 0, &sr, A), RT_OK);
  cr_assert_eq(sr.n_series, 40);
  for (size_t s = 0; s < sr.n_series; s++) {
    int64_t ts[400];
    double vs[400];
    cr_assert_eq(tu_samples(sr.series[s], ts, vs, 400), 300);
  }
  ing_destroy(ing);
}
