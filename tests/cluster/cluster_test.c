/* cluster_test.c - the cluster in one process: six real ingesters in three zones, each a ring
 * member gossiping over inproc://, and a distributor and a querier that place and find series
 * through a watcher ring. Write quorum and zone fan-out with zones failing. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../distributor/rw_helpers.h"
#include "common/labels.h"
#include "distributor/distributor.h"
#include "ingester/ingester.h"
#include "querier/querier.h"
#include "ring/ring.h"

#define NING 6
#define NSERIES 120

static char dirs[NING][64];
static char rpc_ep[NING][64];
static char gossip_ep[NING][64];
static ing_ingester *ING[NING];
static ring *MEM[NING];
static ring *WATCH;
static dist_distributor *D;
static qry_querier *Q;
static const char *const IDS[NING] = {"a1", "a2", "b1", "b2", "c1", "c2"};
static const char *const ZONES[NING] = {"a", "a", "b", "b", "c", "c"};
static int64_t T0;

static void nap_ms(int ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

#define WAIT_FOR(cond, ms)                                       \
  ({                                                             \
    uint64_t _dl = rt_mono_ns() + (uint64_t)(ms) * 1000000ull;   \
    bool _ok;                                                    \
    while (!(_ok = (cond)) && rt_mono_ns() < _dl) {              \
      nap_ms(10);                                                \
    }                                                            \
    _ok;                                                         \
  })

static void rm_rf(const char *path) {
  DIR *d = opendir(path);
  if (!d) {
    unlink(path);
    return;
  }
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) {
      continue;
    }
    char p[512];
    snprintf(p, sizeof p, "%s/%s", path, e->d_name);
    struct stat st;
    if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
      rm_rf(p);
    } else {
      unlink(p);
    }
  }
  closedir(d);
  rmdir(path);
}

/* Healthy ACTIVE instances the watcher sees. */
static size_t active_healthy(void) {
  ring_snapshot *s = ring_snapshot_acquire(WATCH);
  size_t n = 0;
  for (size_t i = 0; i < ring_snapshot_count(s); i++) {
    const ring_instance *in = ring_snapshot_instance(s, i);
    n += in->healthy && in->state == RING_ACTIVE;
  }
  ring_snapshot_release(s);
  return n;
}

static void setup(void) {
  char err[256];
  T0 = rt_now_ms() - 600000;
  for (int i = 0; i < NING; i++) {
    snprintf(dirs[i], sizeof dirs[i], "/tmp/rt-cluster-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dirs[i]));
    snprintf(rpc_ep[i], sizeof rpc_ep[i], "inproc://clt-rpc-%d-%d", getpid(), i);
    snprintf(gossip_ep[i], sizeof gossip_ep[i], "inproc://clt-gossip-%d-%d", getpid(), i);
    ing_config ic = {.data_dir = dirs[i], .wal_sync = false, .chunk_max_samples = 120,
                     .chunk_max_age_ms = 2 * 3600 * 1000};
    cr_assert_eq(ing_create(&ic, &ING[i]), RT_OK);
    cr_assert_eq(ing_serve(ING[i], rpc_ep[i], 2), RT_OK);
    ring_config c;
    ring_config_defaults(&c);
    c.instance_id = IDS[i];
    c.zone = ZONES[i];
    c.rpc_addr = rpc_ep[i];
    c.data_dir = dirs[i];
    c.gossip_bind = gossip_ep[i];
    c.join = i ? gossip_ep[0] : NULL;
    c.gossip_interval_ms = 50;
    c.gossip_timeout_ms = 500;
    c.heartbeat_period_ms = 100;
    c.heartbeat_timeout_ms = 1500;
    c.num_tokens = 64;
    cr_assert_eq(ring_create(&c, &MEM[i], err, sizeof err), RT_OK, "%s", err);
    cr_assert_eq(ring_set_state(MEM[i], RING_ACTIVE), RT_OK);
  }
  ring_config w;
  ring_config_defaults(&w);
  w.join = gossip_ep[0];
  w.gossip_interval_ms = 50;
  w.gossip_timeout_ms = 500;
  w.heartbeat_timeout_ms = 1500;
  cr_assert_eq(ring_create(&w, &WATCH, err, sizeof err), RT_OK, "%s", err);
  cr_assert(WAIT_FOR(active_healthy() == NING, 10000), "the watcher sees 6 ACTIVE ingesters");

  dist_config dc;
  memset(&dc, 0, sizeof dc);
  dist_limits_default(&dc.limits);
  dc.timeout_ms = 1000;
  dc.ring = WATCH;
  cr_assert_eq(dist_create(&dc, &D), RT_OK);
  qry_config qc = {.timeout_ms = 1000, .ring = WATCH, .hedge_ms = 100};
  cr_assert_eq(qry_create(&qc, &Q), RT_OK);
}

/* "Kills" ingester i: its heartbeats stop and its RPC server goes away. */
static void kill_ingester(int i) {
  ring_destroy(MEM[i]);
  MEM[i] = NULL;
  ing_destroy(ING[i]);
  ING[i] = NULL;
}

static void teardown(void) {
  qry_destroy(Q);
  dist_destroy(D);
  for (int i = 0; i < NING; i++) {
    if (MEM[i]) {
      ring_destroy(MEM[i]);
    }
  }
  ring_destroy(WATCH);
  for (int i = 0; i < NING; i++) {
    if (ING[i]) {
      ing_destroy(ING[i]);
    }
    rm_rf(dirs[i]);
  }
}

TestSuite(cluster, .init = setup, .fini = teardown, .timeout = 60);

/* Pushes sample number k (timestamp T0 + k s, value k) of every series; returns the status. */
static int push_round(int k, rt_buf *msg) {
  rt_arena *a = rt_arena_create(0);
  Prometheus__TimeSeries **ts = rt_arena_alloc(a, NSERIES * sizeof *ts);
  static char names[NSERIES][16];
  for (int i = 0; i < NSERIES; i++) {
    snprintf(names[i], sizeof names[i], "%d", i);
    const char *kv[] = {"__name__", "m", "series", names[i], NULL};
    int64_t t = T0 + (int64_t)k * 1000;
    double v = k;
    ts[i] = rw_series(a, kv, &t, &v, 1);
  }
  size_t bl;
  char *body = rw_body(rw_request(a, NSERIES, ts), &bl);
  dist_push_in in = {.body = body, .body_len = bl, .tenant = "t1"};
  dist_push_out out = {.msg = RT_BUF_INIT};
  dist_push(D, &in, &out);
  free(body);
  rt_arena_destroy(a);
  rt_buf_reset(msg);
  rt_buf_append(msg, out.msg.data ? out.msg.data : "", out.msg.len);
  rt_buf_putc(msg, 0);
  rt_buf_free(&out.msg);
  return out.status;
}

/* Selects every series of m; returns the error and, on RT_OK, the series and sample counts. */
static rt_err select_all(size_t *nseries, size_t *nsamples, size_t *min_per_series, char *err,
                         size_t errlen) {
  rt_matcher m;
  cr_assert_eq(rt_matcher_init(&m, RT_MATCH_EQ, "__name__", "m", NULL, 0), RT_OK);
  qry_result r;
  rt_err e = qry_select(Q, "t1", &m, 1, T0 - 1000, T0 + 100000, NULL, &r, err, errlen);
  rt_matcher_fini(&m);
  if (e == RT_OK) {
    *nseries = r.nseries;
    *nsamples = r.nsamples;
    *min_per_series = SIZE_MAX;
    for (size_t i = 0; i < r.nseries; i++) {
      *min_per_series = RT_MIN(*min_per_series, r.series[i].nsamples);
    }
    qry_result_free(&r);
  }
  return e;
}

Test(cluster, writes_survive_a_zone_and_fail_without_quorum) {
  rt_buf msg = RT_BUF_INIT;
  char err[512];
  size_t ns, nsm, minps;
  cr_assert_eq(push_round(0, &msg), 200, "%s", msg.data);
  cr_assert_eq(select_all(&ns, &nsm, &minps, err, sizeof err), RT_OK, "%s", err);
  cr_assert_eq(ns, NSERIES);
  cr_assert_eq(nsm, NSERIES, "one sample per series, duplicates across replicas dropped");

  /* every series is on 3 ingesters: the ingesters hold 3 copies in total (the push answers at
   * the quorum of 2, so the third copy may land just after it: poll) */
  uint64_t total = 0;
  for (int64_t deadline = rt_now_ms() + 5000;;) {
    total = 0;
    for (int i = 0; i < NING; i++) {
      ing_stats st;
      ing_get_stats(ING[i], &st);
      total += st.samples_appended;
    }
    if (total >= 3 * NSERIES || rt_now_ms() > deadline) {
      break;
    }
    usleep(1000);
  }
  cr_assert_eq(total, 3 * NSERIES);

  /* zone a dies: writes and reads go on with b and c, before and after it is unhealthy */
  kill_ingester(0);
  kill_ingester(1);
  cr_assert_eq(push_round(1, &msg), 200, "%s", msg.data);
  cr_assert_eq(select_all(&ns, &nsm, &minps, err, sizeof err), RT_OK, "%s", err);
  cr_assert_eq(ns, NSERIES);
  cr_assert_eq(minps, 2, "every series has both samples");
  cr_assert(WAIT_FOR(active_healthy() == 4, 10000), "zone a turns unhealthy");
  cr_assert_eq(push_round(2, &msg), 200, "%s", msg.data);
  cr_assert_eq(select_all(&ns, &nsm, &minps, err, sizeof err), RT_OK, "%s", err);
  cr_assert_eq(minps, 3);

  /* one ingester of zone b dies too: series on it lose their quorum (5xx), reads could be
   * incomplete (503 unavailable) */
  kill_ingester(2);
  int st = push_round(3, &msg);
  cr_assert_eq(st, 503, "status %d: %s", st, msg.data);
  cr_assert(strstr(msg.data, "write quorum not reached"), "%s", msg.data);
  rt_err e = select_all(&ns, &nsm, &minps, err, sizeof err);
  cr_assert_eq(e, RT_EUNAVAIL, "%s", rt_strerror(e));
  cr_assert(strstr(err, "data could be incomplete"), "%s", err);
  rt_buf_free(&msg);
}

Test(cluster, data_errors_pass_through_with_their_message) {
  rt_buf msg = RT_BUF_INIT;
  cr_assert_eq(push_round(5, &msg), 200, "%s", msg.data);
  /* the same timestamps with other values: every replica rejects them */
  rt_arena *a = rt_arena_create(0);
  const char *kv[] = {"__name__", "m", "series", "7", NULL};
  int64_t t = T0 + 5000;
  double v = 99;
  Prometheus__TimeSeries *s = rw_series(a, kv, &t, &v, 1);
  size_t bl;
  char *body = rw_body(rw_request(a, 1, &s), &bl);
  dist_push_in in = {.body = body, .body_len = bl, .tenant = "t1"};
  dist_push_out out = {.msg = RT_BUF_INIT};
  dist_push(D, &in, &out);
  cr_assert_eq(out.status, 400, "%d %.*s", out.status, (int)out.msg.len, out.msg.data);
  rt_buf_putc(&out.msg, 0);
  cr_assert(strstr(out.msg.data, "duplicate"), "%s", out.msg.data);
  free(body);
  rt_buf_free(&out.msg);
  rt_arena_destroy(a);
  rt_buf_free(&msg);
}
