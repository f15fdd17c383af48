/* distributor_test.c - dist_push end to end over the RPC layer, with a stand-in ingester that
 * records what it receives and answers what the test tells it to. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/rpc.h"
#include "distributor/distributor.h"
#include "rpc.pb-c.h"
#include "rw_helpers.h"

typedef struct fake_ing {
  pthread_mutex_t mu;
  int calls;
  char tenant[200];
  size_t series, samples, metadata;
  char first_name[64];
  /* what to answer */
  rt_err fail;               /* RT_OK = answer normally */
  bool block;                /* hold every call until block is cleared */
  pthread_cond_t cv;
  int error_series;          /* >= 0: report a duplicate-timestamp error for this series */
} fake_ing;

static rt_err fake_push(void *ctx, const uint8_t *req, size_t len, rt_buf *reply, char *errbuf, size_t errlen) {
  fake_ing *f = ctx;
  Ringtail__PushRequest *pr = ringtail__push_request__unpack(NULL, len, req);
  if (!pr) {
    snprintf(errbuf, errlen, "bad push request");
    return RT_EPROTO;
  }
  pthread_mutex_lock(&f->mu);
  while (f->block) {
    pthread_cond_wait(&f->cv, &f->mu);
  }
  f->calls++;
  snprintf(f->tenant, sizeof f->tenant, "%s", pr->tenant);
  f->series = pr->n_timeseries;
  f->samples = 0;
  for (size_t i = 0; i < pr->n_timeseries; i++) {
    f->samples += pr->timeseries[i]->n_samples;
  }
  f->metadata = pr->n_metadata;
  if (pr->n_timeseries && pr->timeseries[0]->n_labels) {
    snprintf(f->first_name, sizeof f->first_name, "%s", pr->timeseries[0]->labels[0]->value);
  }
  rt_err fail = f->fail;
  int es = f->error_series;
  pthread_mutex_unlock(&f->mu);
  if (fail != RT_OK) {
    ringtail__push_request__free_unpacked(pr, NULL);
    snprintf(errbuf, errlen, "disk on fire");
    return fail;
  }
  Ringtail__PushResponse resp = RINGTAIL__PUSH_RESPONSE__INIT;
  Ringtail__SeriesError se = RINGTAIL__SERIES_ERROR__INIT, *sep[1] = {&se};
  size_t samples = 0;
  for (size_t i = 0; i < pr->n_timeseries; i++) {
    samples += pr->timeseries[i]->n_samples;
  }
  resp.samples_accepted = samples;
  if (es >= 0 && (size_t)es < pr->n_timeseries) {
    se.index = (uint32_t)es;
    se.code = RINGTAIL__SAMPLE_ERROR__SAMPLE_DUPLICATE_TIMESTAMP;
    se.message = "duplicate sample for timestamp, timestamp: 1000 series: \"up{}\"";
    resp.n_errors = 1;
    resp.errors = sep;
    resp.samples_accepted = samples - 1;
  }
  size_t n = ringtail__push_response__get_packed_size(&resp);
  rt_buf_reserve(reply, n);
  if (reply->oom || !reply->data) {
    ringtail__push_request__free_unpacked(pr, NULL);
    return RT_ENOMEM;
  }
  ringtail__push_response__pack(&resp, (uint8_t *)reply->data);
  reply->len = n;
  ringtail__push_request__free_unpacked(pr, NULL);
  return RT_OK;
}

static const rt_rpc_method methods[] = {{"ingester.Push", fake_push}};

static fake_ing F;
static rt_rpc_server *SRV;
static dist_distributor *D;
static rt_arena *A;
static const char *EP = "inproc://dist-test-ingester";

static void setup(void) {
  memset(&F, 0, sizeof F);
  pthread_mutex_init(&F.mu, NULL);
  pthread_cond_init(&F.cv, NULL);
  F.error_series = -1;
  cr_assert_eq(rt_rpc_server_create(EP, methods, 1, &F, 2, &SRV), RT_OK);
  dist_config c;
  memset(&c, 0, sizeof c);
  dist_limits_default(&c.limits);
  c.ingesters = EP;
  c.timeout_ms = 2000;
  c.max_recv_msg_size = 10 << 20;
  cr_assert_eq(dist_create(&c, &D), RT_OK);
  A = rt_arena_create(0);
}

static void teardown(void) {
  dist_destroy(D);
  if (SRV) {
    rt_rpc_server_destroy(SRV);
  }
  rt_arena_destroy(A);
  pthread_mutex_destroy(&F.mu);
  pthread_cond_destroy(&F.cv);
}

TestSuite(push, .init = setup, .fini = teardown);

static char *body_of(size_t nbad, size_t ngood, size_t *len) {
  static const char *const good[] = {"__name__", "up", "job", "node", NULL};
  static const char *const bad[] = {"job", "node", NULL};
  int64_t now = rt_now_ms();
  int64_t ts[2] = {now - 1000, now};
  double v[2] = {1, 2};
  Prometheus__TimeSeries **s = rt_arena_alloc(A, (nbad + ngood + 1) * sizeof *s);
  size_t n = 0;
  for (size_t i = 0; i < nbad; i++) {
    s[n++] = rw_series(A, bad, ts, v, 2);
  }
  for (size_t i = 0; i < ngood; i++) {
    s[n++] = rw_series(A, good, ts, v, 2);
  }
  return rw_body(rw_request(A, n, s), len);
}

static dist_push_out push(const void *body, size_t len, const char *tenant) {
  dist_push_in in = {.body = body, .body_len = len, .tenant = tenant};
  dist_push_out out = {.msg = RT_BUF_INIT};
  dist_push(D, &in, &out);
  return out;
}

static const char *msg_of(dist_push_out *o) { return o->msg.data ? o->msg.data : ""; }

Test(push, accepted) {
  size_t n;
  char *b = body_of(0, 2, &n);
  dist_push_out o = push(b, n, NULL);
  cr_assert_eq(o.status, 200, "%d %s", o.status, msg_of(&o));
  cr_assert_eq(o.msg.len, 0);
  cr_assert_eq(F.calls, 1);
  cr_assert_str_eq(F.tenant, "anonymous");
  cr_assert_eq(F.series, 2);
  cr_assert_eq(F.samples, 4);
  dist_stats st;
  dist_get_stats(D, &st);
  cr_assert_eq(st.requests[0], 1);
  cr_assert_eq(st.samples_received, 4);
  cr_assert_eq(st.samples_accepted, 4);
  cr_assert_eq(st.bytes_received, n);
  rt_buf_free(&o.msg);
  free(b);
}

Test(push, tenant_header) {
  size_t n;
  char *b = body_of(0, 1, &n);
  dist_push_out o = push(b, n, "team-a");
  cr_assert_eq(o.status, 200, "%s", msg_of(&o));
  cr_assert_str_eq(F.tenant, "team-a");
  rt_buf_free(&o.msg);
  o = push(b, n, "../etc");
  cr_assert_eq(o.status, 400);
  cr_assert(strstr(msg_of(&o), "unsupported character '/'") != NULL, "%s", msg_of(&o));
  cr_assert_eq(F.calls, 1, "nothing forwarded for a bad tenant");
  rt_buf_free(&o.msg);
  free(b);
}

Test(push, partial_batch_forwards_the_valid_series) {
  size_t n;
  char *b = body_of(2, 3, &n);
  dist_push_out o = push(b, n, NULL);
  cr_assert_eq(o.status, 400);
  cr_assert_eq(F.series, 3);
  cr_assert_str_eq(msg_of(&o), "received a series without metric name, series: \"{job=\\\"node\\\"}\" (rejected 4 of "
                               "10 samples; first problem: missing_metric_name)");
  dist_stats st;
  dist_get_stats(D, &st);
  cr_assert_eq(st.requests[1], 1);
  cr_assert_eq(st.rejected[DIST_R_MISSING_METRIC_NAME], 4);
  rt_buf_free(&o.msg);
  free(b);
}

Test(push, nothing_valid_is_not_forwarded) {
  size_t n;
  char *b = body_of(1, 0, &n);
  dist_push_out o = push(b, n, NULL);
  cr_assert_eq(o.status, 400);
  cr_assert_eq(F.calls, 0);
  rt_buf_free(&o.msg);
  free(b);
}

Test(push, ingester_series_error_is_400) {
  F.error_series = 0;
  size_t n;
  char *b = body_of(0, 2, &n);
  dist_push_out o = push(b, n, NULL);
  cr_assert_eq(o.status, 400);
  cr_assert(strstr(msg_of(&o), "duplicate sample for timestamp, timestamp: 1000") == msg_of(&o), "%s", msg_of(&o));
  cr_assert(strstr(msg_of(&o), "rejected 1 of 4 samples") != NULL, "%s", msg_of(&o));
  dist_stats st;
  dist_get_stats(D, &st);
  cr_assert_eq(st.rejected[DIST_R_DUPLICATE_TIMESTAMP], 1);
  rt_buf_free(&o.msg);
  free(b);
}

Test(push, ingester_failure_is_5xx) {
  F.fail = RT_EIO;
  size_t n;
  char *b = body_of(0, 1, &n);
  dist_push_out o = push(b, n, NULL);
  cr_assert_eq(o.status, 500);
  cr_assert(strstr(msg_of(&o), "disk on fire") != NULL, "%s", msg_of(&o));
  F.fail = RT_EUNAVAIL;
  rt_buf_free(&o.msg);
  o = push(b, n, NULL);
  cr_assert_eq(o.status, 503, "%s", msg_of(&o));
  rt_buf_free(&o.msg);
  free(b);
}

Test(push, ingester_down_is_503) {
  rt_rpc_server_destroy(SRV);
  SRV = NULL;
  dist_destroy(D);
  dist_config c;
  memset(&c, 0, sizeof c);
  dist_limits_default(&c.limits);
  c.ingesters = "tcp://127.0.0.1:1";
  c.timeout_ms = 200;
  cr_assert_eq(dist_create(&c, &D), RT_OK);
  size_t n;
  char *b = body_of(0, 1, &n);
  uint64_t t0 = rt_mono_ns();
  dist_push_out o = push(b, n, NULL);
  cr_assert_eq(o.status, 503, "%d %s", o.status, msg_of(&o));
  cr_assert(strstr(msg_of(&o), "failed pushing to ingester tcp://127.0.0.1:1") != NULL, "%s", msg_of(&o));
  cr_assert_lt(rt_mono_ns() - t0, 2000000000ull, "bounded by the timeout");
  dist_stats st;
  dist_get_stats(D, &st);
  cr_assert_eq(st.ingester_errors, 1);
  rt_buf_free(&o.msg);
  free(b);
}

Test(push, bad_bodies) {
  dist_push_out o = push("garbage!", 8, NULL);
  cr_assert_eq(o.status, 400);
  cr_assert(strstr(msg_of(&o), "snappy") != NULL, "%s", msg_of(&o));
  rt_buf_free(&o.msg);
  o = push(NULL, 0, NULL);
  cr_assert_eq(o.status, 400);
  const char bomb[] = {(char)0x80, (char)0x80, (char)0x80, (char)0x80, 0x04, 0x00};
  rt_buf_free(&o.msg);
  o = push(bomb, sizeof bomb, NULL);
  cr_assert_eq(o.status, 413);
  const char notpb[] = "\x05\x10\x0a\x7f\x00\x01";
  size_t bl;
  char *b = rw_snappy(notpb, 5, &bl);
  rt_buf_free(&o.msg);
  o = push(b, bl, NULL);
  cr_assert_eq(o.status, 400);
  cr_assert(strstr(msg_of(&o), "malformed protobuf") != NULL, "%s", msg_of(&o));
  cr_assert_eq(F.calls, 0);
  dist_stats st;
  dist_get_stats(D, &st);
  cr_assert_eq(st.requests[1], 3);
  cr_assert_eq(st.requests[2], 1);
  rt_buf_free(&o.msg);
  free(b);
}

Test(push, remote_write_2_is_415) {
  size_t n;
  char *b = body_of(0, 1, &n);
  dist_push_in in = {.body = b,
                     .body_len = n,
                     .content_type = "application/x-protobuf;proto=io.prometheus.write.v2.Request"};
  dist_push_out o = {.msg = RT_BUF_INIT};
  dist_push(D, &in, &o);
  cr_assert_eq(o.status, 415);
  rt_buf_free(&o.msg);
  free(b);
}

Test(push, metadata_only) {
  Prometheus__MetricMetadata m = PROMETHEUS__METRIC_METADATA__INIT, *mp[1] = {&m};
  m.metric_family_name = "up";
  m.help = "h";
  m.unit = "";
  Prometheus__WriteRequest w = PROMETHEUS__WRITE_REQUEST__INIT;
  w.n_metadata = 1;
  w.metadata = mp;
  size_t n;
  char *b = rw_body(&w, &n);
  dist_push_out o = push(b, n, NULL);
  cr_assert_eq(o.status, 200, "%s", msg_of(&o));
  cr_assert_eq(F.metadata, 1);
  rt_buf_free(&o.msg);
  free(b);
}

Test(push, bad_ingester_list) {
  dist_distributor *d2;
  dist_config c;
  memset(&c, 0, sizeof c);
  dist_limits_default(&c.limits);
  c.ingesters = " , ";
  cr_assert_eq(dist_create(&c, &d2), RT_EINVAL);
  c.ingesters = "inproc://a, inproc://b,inproc://a";
  cr_assert_eq(dist_create(&c, &d2), RT_EINVAL, "an address listed twice");
  char many[80 * 24] = "";
  for (int i = 0; i < 80; i++) {
    size_t l = strlen(many);
    snprintf(many + l, sizeof many - l, "%sinproc://i%d", i ? "," : "", i);
  }
  c.ingesters = many;
  cr_assert_eq(dist_create(&c, &d2), RT_ELIMIT);
  c.ingesters = "inproc://a, inproc://b";
  cr_assert_eq(dist_create(&c, &d2), RT_OK);
  dist_destroy(d2);
}

typedef struct hammer_arg {
  char *body;
  size_t len;
  int ok;
} hammer_arg;

static void *hammer(void *p) {
  hammer_arg *h = p;
  for (int i = 0; i < 50; i++) {
    dist_push_out o = push(h->body, h->len, NULL);
    if (o.status == 200) {
      h->ok++;
    }
    rt_buf_free(&o.msg);
  }
  return NULL;
}

Test(push, concurrent) {
  size_t n;
  char *b = body_of(0, 5, &n);
  pthread_t th[4];
  hammer_arg args[4];
  for (int i = 0; i < 4; i++) {
    args[i] = (hammer_arg){.body = b, .len = n};
    pthread_create(&th[i], NULL, hammer, &args[i]);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    cr_assert_eq(args[i].ok, 50);
  }
  dist_stats st;
  dist_get_stats(D, &st);
  cr_assert_eq(st.requests[0], 200);
  cr_assert_eq(st.samples_received, 200 * 10);
  free(b);
}

Test(push, content_encoding) {
  size_t n;
  char *b = body_of(0, 1, &n);
  dist_push_in in = {.body = b, .body_len = n, .content_encoding = "gzip"};
  dist_push_out o = {.msg = RT_BUF_INIT};
  dist_push(D, &in, &o);
  cr_assert_eq(o.status, 415);
  cr_assert(strstr(msg_of(&o), "unsupported Content-Encoding \"gzip\"") != NULL, "%s", msg_of(&o));
  in.content_encoding = "Snappy";
  dist_push(D, &in, &o);
  cr_assert_eq(o.status, 200, "%s", msg_of(&o));
  rt_buf_free(&o.msg);
  free(b);
}

typedef struct bg_push {
  char *body;
  size_t len;
  int status;
} bg_push;

static void *bg(void *p) {
  bg_push *b = p;
  dist_push_out o = push(b->body, b->len, NULL);
  b->status = o.status;
  rt_buf_free(&o.msg);
  return NULL;
}

Test(push, inflight_limit) {
  dist_destroy(D);
  dist_config c;
  memset(&c, 0, sizeof c);
  dist_limits_default(&c.limits);
  c.ingesters = EP;
  c.timeout_ms = 5000;
  c.max_inflight_bytes = 100;
  cr_assert_eq(dist_create(&c, &D), RT_OK);
  size_t n;
  char *b = body_of(0, 1, &n);
  pthread_mutex_lock(&F.mu);
  F.block = true;
  pthread_mutex_unlock(&F.mu);
  bg_push first = {.body = b, .len = n};
  pthread_t th;
  pthread_create(&th, NULL, bg, &first);
  /* wait until the first request holds its reservation */
  dist_stats st;
  uint64_t deadline = rt_mono_ns() + 5000000000ull;
  do {
    dist_get_stats(D, &st);
  } while (st.inflight_bytes == 0 && rt_mono_ns() < deadline);
  cr_assert_gt(st.inflight_bytes, 0);
  dist_push_out o = push(b, n, NULL);
  cr_assert_eq(o.status, 503);
  cr_assert(strstr(msg_of(&o), "too many remote-write bytes in flight") != NULL, "%s", msg_of(&o));
  pthread_mutex_lock(&F.mu);
  F.block = false;
  pthread_cond_broadcast(&F.cv);
  pthread_mutex_unlock(&F.mu);
  pthread_join(th, NULL);
  cr_assert_eq(first.status, 200);
  dist_get_stats(D, &st);
  cr_assert_eq(st.inflight_bytes, 0);
  cr_assert_eq(st.inflight_rejected, 1);
  rt_buf_free(&o.msg);
  o = push(b, n, NULL);
  cr_assert_eq(o.status, 200, "a single request above the limit is let through when alone");
  rt_buf_free(&o.msg);
  free(b);
}

Test(push, out_of_memory) {
  size_t n;
  char *b = body_of(1, 3, &n);
  for (long k = 0; k < 40; k++) {
    rt_alloc_fail_after(k);
    dist_push_out o = push(b, n, NULL);
    rt_alloc_fail_after(-1);
    cr_assert(o.status == 400 || o.status == 500 || o.status == 503, "k=%ld: %d %s", k, o.status, msg_of(&o));
    rt_buf_free(&o.msg);
  }
  dist_push_out o = push(b, n, NULL);
  cr_assert_eq(o.status, 400, "%s", msg_of(&o));
  cr_assert_eq(F.series, 3);
  rt_buf_free(&o.msg);
  free(b);
}

Test(push, several_ingesters) {
  static fake_ing F2;
  memset(&F2, 0, sizeof F2);
  pthread_mutex_init(&F2.mu, NULL);
  pthread_cond_init(&F2.cv, NULL);
  F2.error_series = -1;
  rt_rpc_server *srv2;
  cr_assert_eq(rt_rpc_server_create("inproc://dist-test-ingester-2", methods, 1, &F2, 2, &srv2), RT_OK);
  dist_destroy(D);
  dist_config c;
  memset(&c, 0, sizeof c);
  dist_limits_default(&c.limits);
  c.ingesters = "inproc://dist-test-ingester,inproc://dist-test-ingester-2";
  c.timeout_ms = 2000;
  cr_assert_eq(dist_create(&c, &D), RT_OK);
  size_t n;
  char *b = body_of(0, 2, &n);
  dist_push_out o = push(b, n, "t");
  cr_assert_eq(o.status, 200, "%s", msg_of(&o));
  cr_assert_eq(F.calls, 1);
  cr_assert_eq(F2.calls, 1);
  cr_assert_str_eq(F2.tenant, "t");
  cr_assert_eq(F2.samples, 4);
  /* one replica failing fails the push (the sender retries) */
  F2.fail = RT_EIO;
  rt_buf_free(&o.msg);
  o = push(b, n, "t");
  cr_assert_eq(o.status, 500);
  cr_assert(strstr(msg_of(&o), "inproc://dist-test-ingester-2") != NULL, "%s", msg_of(&o));
  cr_assert_eq(F.calls, 2);
  dist_stats st;
  dist_get_stats(D, &st);
  cr_assert_eq(st.samples_accepted, 8, "counted once per push");
  rt_buf_free(&o.msg);
  free(b);
  rt_rpc_server_destroy(srv2);
  pthread_mutex_destroy(&F2.mu);
  pthread_cond_destroy(&F2.cv);
}
