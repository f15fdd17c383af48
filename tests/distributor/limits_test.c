/* limits_test.c - per-tenant write limits in the distributor: the token bucket, the ingestion
 * rate (429, nothing stored, one tenant not affecting another, the share of several
 * distributors), the validation limits of one tenant (400 with the limit, its value, the tenant
 * and the error id), a runtime-config reload applied without a restart, and the per-tenant
 * counters. A stand-in ingester over the real RPC layer counts what reaches it. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/limits.h"
#include "common/metrics.h"
#include "common/rpc.h"
#include "distributor/distributor.h"
#include "rpc.pb-c.h"
#include "rw_helpers.h"

#define SEC 1000000000LL

/* ------------------------------------------------------------------ bucket */

Test(bucket, starts_full_refills_and_refuses_without_taking) {
  dist_bucket b = {0};
  cr_assert(dist_bucket_take(&b, 10, 100, 100, 0));        /* full at first */
  cr_assert_not(dist_bucket_take(&b, 10, 100, 1, 0));      /* empty */
  cr_assert_not(dist_bucket_take(&b, 10, 100, 11, SEC));   /* 10 came back, 11 refused */
  cr_assert(dist_bucket_take(&b, 10, 100, 10, SEC));       /* ... and nothing was taken */
  cr_assert(dist_bucket_take(&b, 10, 100, 100, 11 * SEC)); /* refilled up to the burst */
  cr_assert_not(dist_bucket_take(&b, 10, 100, 1, 11 * SEC));
  cr_assert(dist_bucket_take(&b, 10, 100, 100, 1000 * SEC)); /* never above the burst */
  cr_assert_not(dist_bucket_take(&b, 10, 100, 1, 1000 * SEC));
}

Test(bucket, larger_than_burst_never_passes) {
  dist_bucket b = {0};
  cr_assert_not(dist_bucket_take(&b, 1000, 50, 51, 0));
  cr_assert_not(dist_bucket_take(&b, 1000, 50, 51, 100 * SEC));
  cr_assert(dist_bucket_take(&b, 1000, 50, 50, 100 * SEC));
}

Test(bucket, resizes_when_the_limit_changes) {
  dist_bucket b = {0};
  cr_assert(dist_bucket_take(&b, 10, 100, 0, 0));
  /* a lower burst cuts what is held */
  cr_assert_not(dist_bucket_take(&b, 10, 20, 21, 0));
  cr_assert(dist_bucket_take(&b, 10, 20, 20, 0));
  /* a raised burst is headroom at once; a higher rate applies from now on: 1 s at 1000/s */
  cr_assert(dist_bucket_take(&b, 1000, 5000, 4980, 0));
  cr_assert_not(dist_bucket_take(&b, 1000, 5000, 1, 0));
  cr_assert(dist_bucket_take(&b, 1000, 5000, 1000, SEC));
  cr_assert_not(dist_bucket_take(&b, 1000, 5000, 1, SEC));
  /* lifted (rate 0): everything passes; a new limit starts full */
  cr_assert(dist_bucket_take(&b, 0, 0, 1e12, 2 * SEC));
  cr_assert(dist_bucket_take(&b, 5, 30, 30, 2 * SEC));
  cr_assert_not(dist_bucket_take(&b, 5, 30, 1, 2 * SEC));
  /* time going backwards adds nothing */
  cr_assert_not(dist_bucket_take(&b, 5, 30, 1, SEC));
}

/* --------------------------------------------------------------- the push */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static size_t stored; /* samples that reached the ingester */

static rt_err ok_push(void *ctx, const uint8_t *req, size_t len, rt_buf *reply, char *errbuf, size_t errlen) {
  (void)ctx;
  Ringtail__PushRequest *pr = ringtail__push_request__unpack(NULL, len, req);
  if (!pr) {
    snprintf(errbuf, errlen, "bad push request");
    return RT_EPROTO;
  }
  Ringtail__PushResponse resp = RINGTAIL__PUSH_RESPONSE__INIT;
  for (size_t i = 0; i < pr->n_timeseries; i++) {
    resp.samples_accepted += pr->timeseries[i]->n_samples;
  }
  pthread_mutex_lock(&mu);
  stored += resp.samples_accepted;
  pthread_mutex_unlock(&mu);
  size_t n = ringtail__push_response__get_packed_size(&resp);
  rt_buf_reserve(reply, n + 1);
  ringtail__push_response__pack(&resp, (uint8_t *)reply->data);
  reply->len = n;
  ringtail__push_request__free_unpacked(pr, NULL);
  return RT_OK;
}

static const rt_rpc_method methods[] = {{"ingester.Push", ok_push}};
static rt_rpc_server *SRV;
static dist_distributor *D;
static rt_metrics *M;
static rt_arena *A;
static char path[64];

static void write_file(const char *text) {
  char tmp[80];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  cr_assert(f);
  fputs(text, f);
  fclose(f);
  cr_assert(rename(tmp, path) == 0);
}

static void setup(void) {
  snprintf(path, sizeof path, "/tmp/rt-dist-limits-%d.yaml", (int)getpid());
  write_file("overrides:\n"
             "  slow:\n"
             "    ingestion_rate: 100\n"
             "    ingestion_burst_size: 100\n"
             "  strict:\n"
             "    max_label_names_per_series: 2\n"
             "    max_label_name_length: 8\n"
             "    max_label_value_length: 8\n"
             "    max_metadata_length: 16\n"
             "    max_global_metadata_per_metric: 1\n"
             "    creation_grace_period: 1m\n"
             "    reject_old_samples_max_age: 1h\n");
  rt_config cfg;
  rt_config_defaults(&cfg);
  rt_limits def;
  rt_limits_from_config(&cfg, &def);
  rt_config_free(&cfg);
  char err[256];
  cr_assert_eq(rt_limits_init(&def, path, err, sizeof err), RT_OK, "%s", err);
  stored = 0;
  cr_assert_eq(rt_rpc_server_create("inproc://dist-limits-ing", methods, 1, NULL, 2, &SRV), RT_OK);
  cr_assert_eq(rt_metrics_create(&M), RT_OK);
  dist_config c;
  memset(&c, 0, sizeof c);
  dist_limits_default(&c.limits);
  c.ingesters = "inproc://dist-limits-ing";
  c.timeout_ms = 2000;
  c.metrics = M;
  cr_assert_eq(dist_create(&c, &D), RT_OK);
  A = rt_arena_create(0);
}

static void teardown(void) {
  dist_destroy(D);
  rt_rpc_server_destroy(SRV);
  rt_metrics_destroy(M);
  rt_arena_destroy(A);
  rt_limits_shutdown();
  unlink(path);
}

TestSuite(wlimits, .init = setup, .fini = teardown);

/* One request of `n` samples of series kv at `ts` (0: now), pushed for tenant. */
static int push_kv(const char *tenant, const char *const *kv, size_t n, int64_t ts, rt_buf *msg) {
  int64_t now = rt_now_ms();
  int64_t *t = rt_arena_alloc(A, n * sizeof *t);
  double *v = rt_arena_alloc(A, n * sizeof *v);
  for (size_t i = 0; i < n; i++) {
    t[i] = (ts ? ts : now) - (int64_t)(n - i);
    v[i] = (double)i;
  }
  Prometheus__TimeSeries *s = rw_series(A, kv, t, v, n);
  size_t len;
  char *body = rw_body(rw_request(A, 1, &s), &len);
  dist_push_in in = {.body = body, .body_len = len, .tenant = tenant};
  dist_push_out out = {.msg = RT_BUF_INIT};
  dist_push(D, &in, &out);
  free(body);
  rt_buf_reset(msg);
  if (out.msg.len) {
    rt_buf_append(msg, out.msg.data, out.msg.len);
  }
  rt_buf_putc(msg, 0);
  rt_buf_free(&out.msg);
  return out.status;
}

static const char *const UP[] = {"__name__", "up", "job", "node", NULL};

static double counter(const char *name, const char *labels, ...) {
  va_list ap;
  va_start(ap, labels);
  const char *a = va_arg(ap, const char *);
  const char *b = va_arg(ap, const char *);
  va_end(ap);
  rt_counter *c = strchr(labels, ',') ? rt_counter_get(M, name, "", labels, a, b) : rt_counter_get(M, name, "", labels, a);
  return rt_counter_value(c);
}

Test(wlimits, rate_limit_429_nothing_stored_other_tenant_unaffected) {
  rt_buf msg = RT_BUF_INIT;
  cr_assert_eq(push_kv("slow", UP, 80, 0, &msg), 200, "%s", msg.data);
  size_t before = stored;
  cr_assert_eq(push_kv("slow", UP, 80, 0, &msg), 429, "%s", msg.data);
  cr_assert_eq(stored, before, "nothing of a refused request is stored");
  cr_assert(strstr(msg.data, "ingestion_rate 100 samples/s"), "%s", msg.data);
  cr_assert(strstr(msg.data, "ingestion_burst_size 100"), "%s", msg.data);
  cr_assert(strstr(msg.data, "tenant \"slow\""), "%s", msg.data);
  cr_assert(strstr(msg.data, "docs/errors.md#err-ringtail-ingestion-rate-limited"), "%s", msg.data);
  /* another tenant (defaults: unlimited) is not affected */
  cr_assert_eq(push_kv("fast", UP, 5000, 0, &msg), 200, "%s", msg.data);
  cr_assert_eq(push_kv("fast", UP, 5000, 0, &msg), 200, "%s", msg.data);
  /* a request larger than the burst never passes */
  cr_assert_eq(push_kv("slow", UP, 101, 0, &msg), 429, "%s", msg.data);
  /* the counters, per tenant */
  cr_assert_eq(counter("ringtail_distributor_rate_limited_requests_total", "user", "slow"), 2);
  cr_assert_eq(counter("ringtail_distributor_rate_limited_requests_total", "user", "fast"), 0);
  cr_assert_eq(counter("ringtail_discarded_samples_total", "user,reason", "slow", "rate_limited"), 181);
  cr_assert_eq(counter("ringtail_distributor_received_samples_total", "user", "slow"), 261);
  cr_assert_eq(counter("ringtail_distributor_accepted_samples_total", "user", "slow"), 80);
  cr_assert_eq(counter("ringtail_distributor_accepted_samples_total", "user", "fast"), 10000);
  /* recovery: the bucket refills at 100/s */
  int64_t deadline = rt_now_ms() + 5000;
  int st;
  while ((st = push_kv("slow", UP, 50, 0, &msg)) == 429 && rt_now_ms() < deadline) {
    usleep(20000);
  }
  cr_assert_eq(st, 200, "%s", msg.data);
  rt_buf_free(&msg);
}

static size_t two(void *ctx) {
  (void)ctx;
  return 2;
}

Test(wlimits, each_distributor_enforces_its_share) {
  write_file("overrides:\n  slow:\n    ingestion_rate: 1000\n    ingestion_burst_size: 10\n");
  char err[256];
  cr_assert_eq(rt_limits_reload(err, sizeof err), RT_OK, "%s", err);
  dist_set_distributor_count(D, two, NULL);
  rt_buf msg = RT_BUF_INIT;
  /* 1000/s over 2 distributors: about 500/s here; 1.5 s of 10-sample pushes stays near 750 */
  int64_t start = rt_now_ms();
  size_t ok = 0;
  while (rt_now_ms() - start < 1500) {
    int st = push_kv("slow", UP, 10, 0, &msg);
    if (st == 200) {
      ok += 10;
    } else {
      cr_assert_eq(st, 429, "%s", msg.data);
      usleep(2000);
    }
  }
  double secs = (double)(rt_now_ms() - start) / 1000.0;
  cr_assert(ok <= (size_t)(500 * secs) + 10 + 20, "accepted %zu in %.2fs", ok, secs);
  cr_assert(ok >= (size_t)(500 * secs * 0.5), "accepted %zu in %.2fs", ok, secs);
  cr_assert_eq(push_kv("slow", UP, 11, 0, &msg), 429);
  cr_assert(strstr(msg.data, "across 2 distributors (500 samples/s each)"), "%s", msg.data);
  rt_buf_free(&msg);
}

Test(wlimits, reload_applies_without_restart) {
  rt_buf msg = RT_BUF_INIT;
  cr_assert_eq(push_kv("slow", UP, 101, 0, &msg), 429, "%s", msg.data);
  static const char *const three[] = {"__name__", "up", "a", "1", "b", "2", NULL};
  cr_assert_eq(push_kv("other", three, 1, 0, &msg), 200, "%s", msg.data);
  write_file("overrides:\n"
             "  slow:\n    ingestion_rate: 100000\n    ingestion_burst_size: 100000\n"
             "  other:\n    max_label_names_per_series: 2\n");
  char err[256];
  cr_assert_eq(rt_limits_reload(err, sizeof err), RT_OK, "%s", err);
  cr_assert_eq(push_kv("slow", UP, 5000, 0, &msg), 200, "%s", msg.data);
  cr_assert_eq(push_kv("other", three, 1, 0, &msg), 400, "%s", msg.data);
  cr_assert(strstr(msg.data, "max_label_names_per_series: 2"), "%s", msg.data);
  rt_buf_free(&msg);
}

/* Each validation limit of tenant "strict": 400 naming the limit, its value, the tenant, the
 * series, and the id; tenant "lax" (defaults) sends the same and gets 200. */
static void expect_400(const char *const *kv, int64_t ts, const char *limit, const char *id, const char *reason) {
  rt_buf msg = RT_BUF_INIT;
  size_t before = stored;
  cr_assert_eq(push_kv("strict", kv, 3, ts, &msg), 400, "%s", msg.data);
  cr_assert(strstr(msg.data, limit), "want %s in: %s", limit, msg.data);
  cr_assert(strstr(msg.data, "tenant: \"strict\""), "%s", msg.data);
  cr_assert(strstr(msg.data, id), "want %s in: %s", id, msg.data);
  cr_assert(strstr(msg.data, "series: \"up{"), "%s", msg.data);
  cr_assert_eq(stored, before);
  cr_assert_eq(counter("ringtail_discarded_samples_total", "user,reason", "strict", reason), 3, "%s", reason);
  cr_assert_eq(push_kv("lax", kv, 3, ts, &msg), 200, "%s", msg.data);
  rt_buf_free(&msg);
}

Test(wlimits, validation_limits_per_tenant) {
  static const char *const names[] = {"__name__", "up", "a", "1", "b", "2", NULL};
  expect_400(names, 0, "max_label_names_per_series: 2", "docs/errors.md#err-ringtail-max-label-names-per-series",
             "max_label_names_per_series");
  static const char *const lname[] = {"__name__", "up", "abcdefghi", "1", NULL};
  expect_400(lname, 0, "max_label_name_length: 8", "docs/errors.md#err-ringtail-label-name-too-long",
             "label_name_too_long");
  static const char *const lvalue[] = {"__name__", "up", "a", "123456789", NULL};
  expect_400(lvalue, 0, "max_label_value_length: 8", "docs/errors.md#err-ringtail-label-value-too-long",
             "label_value_too_long");
  static const char *const ok[] = {"__name__", "up", NULL};
  expect_400(ok, rt_now_ms() + 120000, "creation_grace_period 1m0s",
             "docs/errors.md#err-ringtail-sample-too-far-in-future", "sample_too_far_in_future");
  expect_400(ok, rt_now_ms() - 2 * 3600000, "reject_old_samples_max_age 1h0m0s",
             "docs/errors.md#err-ringtail-sample-too-old", "sample_too_old");
}

static int push_meta(const char *tenant, Prometheus__MetricMetadata **m, size_t n, rt_buf *msg) {
  Prometheus__WriteRequest *w = rw_request(A, 0, NULL);
  w->n_metadata = n;
  w->metadata = m;
  size_t len;
  char *body = rw_body(w, &len);
  dist_push_in in = {.body = body, .body_len = len, .tenant = tenant};
  dist_push_out out = {.msg = RT_BUF_INIT};
  dist_push(D, &in, &out);
  free(body);
  rt_buf_reset(msg);
  rt_buf_append(msg, out.msg.data ? out.msg.data : "", out.msg.len);
  rt_buf_putc(msg, 0);
  rt_buf_free(&out.msg);
  return out.status;
}

static Prometheus__MetricMetadata *meta(const char *name, const char *help) {
  Prometheus__MetricMetadata *m = rt_arena_alloc(A, sizeof *m);
  prometheus__metric_metadata__init(m);
  m->type = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER;
  m->metric_family_name = (char *)name;
  m->help = (char *)help;
  m->unit = (char *)"";
  return m;
}

Test(wlimits, metadata_limits_per_tenant) {
  rt_buf msg = RT_BUF_INIT;
  Prometheus__MetricMetadata *two_entries[] = {meta("up", "one"), meta("up", "two"), meta("up", "one")};
  cr_assert_eq(push_meta("strict", two_entries, 3, &msg), 400, "%s", msg.data);
  cr_assert(strstr(msg.data, "max_global_metadata_per_metric: 1"), "%s", msg.data);
  cr_assert(strstr(msg.data, "err-ringtail-max-metadata-per-metric"), "%s", msg.data);
  cr_assert(strstr(msg.data, "tenant: \"strict\""), "%s", msg.data);
  cr_assert(strstr(msg.data, "1 of 3 metadata"), "%s", msg.data);
  cr_assert_eq(push_meta("lax", two_entries, 3, &msg), 200, "%s", msg.data);
  Prometheus__MetricMetadata *longh[] = {meta("up", "a help text longer than 16 bytes")};
  cr_assert_eq(push_meta("strict", longh, 1, &msg), 400, "%s", msg.data);
  cr_assert(strstr(msg.data, "max_metadata_length: 16"), "%s", msg.data);
  cr_assert(strstr(msg.data, "err-ringtail-metadata-too-long"), "%s", msg.data);
  cr_assert_eq(counter("ringtail_discarded_samples_total", "user,reason", "strict", "metadata_too_long"), 1);
  rt_buf_free(&msg);
}

/* Concurrent writers of one tenant never get more than burst + rate * time through. */
typedef struct writer {
  size_t ok, limited;
} writer;

static void *write_loop(void *arg) {
  writer *w = arg;
  rt_arena *a = rt_arena_create(0);
  int64_t end = rt_now_ms() + 1000;
  while (rt_now_ms() < end) {
    int64_t t[10];
    double v[10] = {0};
    for (int i = 0; i < 10; i++) {
      t[i] = rt_now_ms() - 10 + i;
    }
    Prometheus__TimeSeries *s = rw_series(a, UP, t, v, 10);
    size_t len;
    char *body = rw_body(rw_request(a, 1, &s), &len);
    dist_push_in in = {.body = body, .body_len = len, .tenant = "slow"};
    dist_push_out out = {.msg = RT_BUF_INIT};
    dist_push(D, &in, &out);
    free(body);
    rt_buf_free(&out.msg);
    if (out.status == 200) {
      w->ok += 10;
    } else if (out.status == 429) {
      w->limited++;
    }
    rt_arena_reset(a);
  }
  rt_arena_destroy(a);
  return NULL;
}

Test(wlimits, concurrent_writers_share_one_bucket) {
  pthread_t th[4];
  writer w[4] = {{0}};
  int64_t start = rt_now_ms();
  for (int i = 0; i < 4; i++) {
    pthread_create(&th[i], NULL, write_loop, &w[i]);
  }
  size_t ok = 0, limited = 0;
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    ok += w[i].ok;
    limited += w[i].limited;
  }
  double secs = (double)(rt_now_ms() - start) / 1000.0;
  cr_assert(limited > 0);
  cr_assert(ok <= 100 + (size_t)(100 * secs) + 10, "accepted %zu in %.2fs", ok, secs);
  cr_assert_eq(stored, ok);
}
