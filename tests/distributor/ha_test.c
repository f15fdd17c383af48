/* ha_test.c - HA-pair deduplication: the cache and tally rules, and dist_push against three
 * real in-process ingesters as arbiters shared by two distributors. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/config.h"
#include "common/limits.h"
#include "distributor/distributor.h"
#include "ingester/ingester.h"
#include "rw_helpers.h"

/* ------------------------------------------------------------------ rules */

Test(ha_rules, cache) {
  const int64_t T = 3000;
  /* nothing known: ask */
  cr_assert_eq(dist_ha_from_cache(false, NULL, false, 0, "a", 10, T), DIST_HA_ASK);
  /* a confirmed entry of a: accepted from the cache while younger than T/3 */
  cr_assert_eq(dist_ha_from_cache(true, "a", true, 1000, "a", 1999, T), DIST_HA_ACCEPT);
  cr_assert_eq(dist_ha_from_cache(true, "a", true, 1000, "a", 2000, T), DIST_HA_ASK);
  /* b is dropped from the same entry */
  cr_assert_eq(dist_ha_from_cache(true, "a", true, 1000, "b", 1999, T), DIST_HA_DROP);
  cr_assert_eq(dist_ha_from_cache(true, "a", true, 1000, "b", 2000, T), DIST_HA_ASK);
  /* an unconfirmed entry (learnt from b's question) never accepts a from the cache */
  cr_assert_eq(dist_ha_from_cache(true, "a", false, 1000, "a", 1001, T), DIST_HA_ASK);
  cr_assert_eq(dist_ha_from_cache(true, "a", false, 1000, "b", 1001, T), DIST_HA_DROP);
  /* a clock that went backwards (never with the monotonic clock): ask */
  cr_assert_eq(dist_ha_from_cache(true, "a", true, 1000, "a", 999, T), DIST_HA_ASK);
  /* no majority: the cache stands in up to T/2, then 503 */
  cr_assert_eq(dist_ha_unanswered(true, "a", true, 1000, "a", 2499, T), DIST_HA_ACCEPT);
  cr_assert_eq(dist_ha_unanswered(true, "a", true, 1000, "a", 2500, T), DIST_HA_UNAVAILABLE);
  cr_assert_eq(dist_ha_unanswered(true, "a", true, 1000, "b", 2499, T), DIST_HA_DROP);
  cr_assert_eq(dist_ha_unanswered(true, "a", false, 1000, "a", 1001, T), DIST_HA_UNAVAILABLE);
  cr_assert_eq(dist_ha_unanswered(false, NULL, false, 0, "a", 1, T), DIST_HA_UNAVAILABLE);
}

Test(ha_rules, tally) {
  size_t w = 99;
  const char *all_a[] = {"a", "a", "a"};
  cr_assert_eq(dist_ha_tally(all_a, 3, 2, "a", &w), DIST_HA_ACCEPT);
  cr_assert_eq(dist_ha_tally(all_a, 3, 2, "b", &w), DIST_HA_DROP);
  cr_assert_eq(w, 0);
  const char *split[] = {"b", NULL, "a"};
  cr_assert_eq(dist_ha_tally(split, 3, 2, "a", &w), DIST_HA_UNAVAILABLE);
  cr_assert_eq(dist_ha_tally(split, 3, 2, "b", &w), DIST_HA_UNAVAILABLE);
  const char *two[] = {"", "b", "b"};
  cr_assert_eq(dist_ha_tally(two, 3, 2, "a", &w), DIST_HA_DROP);
  cr_assert_eq(w, 1);
  cr_assert_eq(dist_ha_tally(two, 3, 2, "b", &w), DIST_HA_ACCEPT);
  /* abstentions are no votes */
  const char *abst[] = {"", "", "a"};
  cr_assert_eq(dist_ha_tally(abst, 3, 2, "a", &w), DIST_HA_UNAVAILABLE);
  const char *one[] = {"a"};
  cr_assert_eq(dist_ha_tally(one, 1, 1, "a", &w), DIST_HA_ACCEPT);
  cr_assert_eq(dist_ha_tally(one, 1, 0, "a", &w), DIST_HA_UNAVAILABLE);
  cr_assert_eq(dist_ha_tally(one, 0, 1, "a", &w), DIST_HA_UNAVAILABLE);
}

/* ------------------------------------------------------------------ real arbiters */

#define NING 3
#define TIMEOUT_MS 1500
static char dirs[NING][256];
static ing_ingester *ING[NING];
static dist_distributor *D1, *D2;
static rt_arena *A;
static const char *EPS = "inproc://ha-1,inproc://ha-2,inproc://ha-3";

static void rm_rf(const char *path) {
  DIR *d = opendir(path);
  if (!d) {
    unlink(path);
    return;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
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

static void start_ing(int i) {
  ing_config ic = {.data_dir = dirs[i], .chunk_max_samples = 120, .chunk_max_age_ms = 7200000};
  cr_assert_eq(ing_create(&ic, &ING[i]), RT_OK);
  char ep[64];
  snprintf(ep, sizeof ep, "inproc://ha-%d", i + 1);
  cr_assert_eq(ing_serve(ING[i], ep, 2), RT_OK);
}

static void setup(void) {
  rt_config cfg;
  rt_config_defaults(&cfg);
  rt_limits lim;
  rt_limits_from_config(&cfg, &lim);
  rt_config_free(&cfg);
  lim.accept_ha_samples = true;
  lim.ha_failover_timeout_ms = TIMEOUT_MS;
  char err[256];
  cr_assert_eq(rt_limits_init(&lim, "", err, sizeof err), RT_OK, "%s", err);
  for (int i = 0; i < NING; i++) {
    snprintf(dirs[i], sizeof dirs[i], "/tmp/rt-ha-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dirs[i]));
    start_ing(i);
  }
  dist_config c;
  memset(&c, 0, sizeof c);
  dist_limits_default(&c.limits);
  c.ingesters = EPS;
  c.timeout_ms = 500;
  cr_assert_eq(dist_create(&c, &D1), RT_OK);
  cr_assert_eq(dist_create(&c, &D2), RT_OK);
  A = rt_arena_create(0);
}

static void teardown(void) {
  dist_destroy(D1);
  dist_destroy(D2);
  for (int i = 0; i < NING; i++) {
    ing_destroy(ING[i]);
    rm_rf(dirs[i]);
  }
  rt_arena_destroy(A);
  rt_limits_shutdown();
}

TestSuite(ha, .init = setup, .fini = teardown);

/* One request of series (cluster, replica, value) at ts; replica NULL: no replica label;
 * cluster NULL: no labels of the pair. */
typedef struct hs {
  const char *metric;
  const char *cluster;
  const char *replica;
  double v;
} hs;

static int push(dist_distributor *d, const hs *s, size_t n, int64_t ts, rt_buf *msg) {
  Prometheus__TimeSeries *ser[8];
  for (size_t i = 0; i < n; i++) {
    const char *kv[12];
    size_t k = 0;
    kv[k++] = "__name__";
    kv[k++] = s[i].metric;
    if (s[i].replica) {
      kv[k++] = "__replica__";
      kv[k++] = s[i].replica;
    }
    if (s[i].cluster) {
      kv[k++] = "cluster";
      kv[k++] = s[i].cluster;
    }
    kv[k++] = "job";
    kv[k++] = "ha";
    kv[k] = NULL;
    /* rw_series keeps the order given: __name__ < __replica__ < cluster < job */
    char **copy = rt_arena_alloc(A, (k + 1) * sizeof *copy);
    memcpy(copy, kv, (k + 1) * sizeof *copy);
    ser[i] = rw_series(A, (const char *const *)copy, &ts, &s[i].v, 1);
  }
  size_t bl;
  char *b = rw_body(rw_request(A, n, ser), &bl);
  dist_push_in in = {.body = b, .body_len = bl, .tenant = "t1"};
  dist_push_out out = {.msg = RT_BUF_INIT};
  dist_push(d, &in, &out);
  free(b);
  rt_buf_reset(msg);
  rt_buf_puts(msg, out.msg.data ? out.msg.data : "");
  rt_buf_free(&out.msg);
  return out.status;
}

static int push1(dist_distributor *d, const char *replica, double v, int64_t ts, rt_buf *msg) {
  hs s = {"ha_test", "c1", replica, v};
  return push(d, &s, 1, ts, msg);
}

static void sleep_ms(int ms) {
  struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

/* Values stored in ingester i for metric (by label set, as one string per sample). */
static size_t select_series(int i, const char *metric, char out[][256], size_t cap) {
  Ringtail__SelectRequest rq;
  ringtail__select_request__init(&rq);
  rq.tenant = "t1";
  Prometheus__LabelMatcher m;
  prometheus__label_matcher__init(&m);
  m.name = "__name__";
  m.value = (char *)metric;
  Prometheus__LabelMatcher *mp = &m;
  rq.matchers = &mp;
  rq.n_matchers = 1;
  Ringtail__SelectResponse resp;
  ringtail__select_response__init(&resp);
  cr_assert_eq(ing_select(ING[i], &rq, &resp, A), RT_OK);
  size_t n = 0;
  for (size_t s = 0; s < resp.n_series && n < cap; s++, n++) {
    out[n][0] = 0;
    for (size_t k = 0; k < resp.series[s]->n_labels; k++) {
      size_t l = strlen(out[n]);
      snprintf(out[n] + l, 256 - l, "%s%s=%s", k ? "," : "", resp.series[s]->labels[k]->name,
               resp.series[s]->labels[k]->value);
    }
  }
  return n;
}

Test(ha, election_dedup_failover_and_arbiter_loss, .timeout = 30) {
  rt_buf msg = RT_BUF_INIT;
  int64_t ts = rt_now_ms() - 60000;
  /* fresh arbiters wait out the failover timeout before electing anyone: 503, retried */
  int st = push1(D1, "a", 1, ts, &msg);
  cr_assert_eq(st, 503, "%d %s", st, msg.data);
  cr_assert(strstr(msg.data, "HA tracker") && strstr(msg.data, "c1"), "%s", msg.data);
  uint64_t until = rt_mono_ns() + 5000000000ull;
  while ((st = push1(D1, "a", 1, ts, &msg)) == 503 && rt_mono_ns() < until) {
    sleep_ms(20);
  }
  cr_assert_eq(st, 200, "%d %s", st, msg.data);
  /* replica b, through either distributor: 202, nothing stored */
  cr_assert_eq(push1(D2, "b", 2, ts + 1000, &msg), 202, "%s", msg.data);
  cr_assert_eq(push1(D1, "b", 2, ts + 1000, &msg), 202, "%s", msg.data);
  cr_assert_eq(push1(D2, "a", 1, ts + 1000, &msg), 200, "%s", msg.data);
  dist_stats s1, s2;
  dist_get_stats(D1, &s1);
  dist_get_stats(D2, &s2);
  cr_assert_eq(s1.rejected[DIST_R_HA_DUPLICATE] + s2.rejected[DIST_R_HA_DUPLICATE], 2);
  cr_assert_eq(s1.requests[7] + s2.requests[7], 2, "202s counted");
  /* stored without the replica label, on every ingester */
  char ser[4][256];
  for (int i = 0; i < NING; i++) {
    cr_assert_eq(select_series(i, "ha_test", ser, 4), 1);
    cr_assert_str_eq(ser[0], "__name__=ha_test,cluster=c1,job=ha");
  }
  /* a mixed request: a's series kept, b's dropped, a series without the pair untouched, a
   * series with only the replica label untouched (label kept) */
  hs mixed[] = {{"m_a", "c1", "a", 1}, {"m_b", "c1", "b", 2}, {"m_plain", NULL, NULL, 3},
                {"m_rep", NULL, "a", 4}};
  cr_assert_eq(push(D1, mixed, 4, ts + 2000, &msg), 200, "%s", msg.data);
  cr_assert_eq(select_series(0, "m_a", ser, 4), 1);
  cr_assert_str_eq(ser[0], "__name__=m_a,cluster=c1,job=ha");
  cr_assert_eq(select_series(0, "m_b", ser, 4), 0);
  cr_assert_eq(select_series(0, "m_plain", ser, 4), 1);
  cr_assert_eq(select_series(0, "m_rep", ser, 4), 1);
  cr_assert_str_eq(ser[0], "__name__=m_rep,__replica__=a,job=ha");
  /* status of the caller's tenant */
  rt_buf js = RT_BUF_INIT;
  dist_ha_status_json(D1, "t1", &js);
  cr_assert(strstr(js.data, "\"cluster\":\"c1\",\"elected\":\"a\""), "%s", js.data);
  rt_buf_reset(&js);
  dist_ha_status_json(D1, "t2", &js);
  cr_assert_str_eq(js.data, "[]");

  /* one arbiter lost (2 of 3 remain): b still dropped, a still accepted after the cache aged */
  ing_destroy(ING[0]);
  ING[0] = NULL;
  sleep_ms(TIMEOUT_MS / 3 + 10);
  cr_assert_eq(push1(D2, "b", 2, ts + 3000, &msg), 202, "%s", msg.data);
  sleep_ms(TIMEOUT_MS / 3 + 10);
  /* a passes the HA check; the push itself fails (without the ring every ingester must take
   * it), for a reason that is not the election */
  cr_assert_eq(push1(D1, "a", 1, ts + 3000, &msg), 503, "%s", msg.data);
  cr_assert_null(strstr(msg.data, "HA tracker"), "%s", msg.data);
  /* it comes back empty: it abstains for the failover timeout; a and b are still decided by
   * the two others */
  start_ing(0);
  sleep_ms(TIMEOUT_MS / 3 + 10);
  /* a's last send starts now: the arbiters date it when its question reaches them, which is
   * after this instant and before the push returns (the write to the ingesters may take long) */
  uint64_t a_last = rt_mono_ns();
  cr_assert_eq(push1(D1, "a", 1, ts + 4000, &msg), 200, "%s", msg.data);
  cr_assert_eq(push1(D2, "b", 2, ts + 4000, &msg), 202, "%s", msg.data);

  /* a stops; b is elected once a has been silent for longer than the failover timeout, and
   * never before */
  int64_t t = ts + 5000;
  until = rt_mono_ns() + 10ull * TIMEOUT_MS * 1000000ull;
  while ((st = push1(D2, "b", 2, t, &msg)) == 202 && rt_mono_ns() < until) {
    t += 10;
    sleep_ms(20);
  }
  uint64_t waited_ms = (rt_mono_ns() - a_last) / 1000000u;
  cr_assert_eq(st, 200, "%d %s", st, msg.data);
  cr_assert_geq(waited_ms, TIMEOUT_MS, "failed over after %llu ms", (unsigned long long)waited_ms);
  /* now a is the one dropped, through both distributors */
  cr_assert_eq(push1(D1, "a", 1, t + 1000, &msg), 202, "%s", msg.data);
  cr_assert_eq(push1(D2, "a", 1, t + 1000, &msg), 202, "%s", msg.data);
  dist_get_stats(D2, &s2);
  cr_assert_geq(s2.ha_elected_changes, 1);

  /* two arbiters lost: no majority; once D1's cache is older than T/2, 503 (retried) */
  ing_destroy(ING[1]);
  ING[1] = NULL;
  ing_destroy(ING[2]);
  ING[2] = NULL;
  sleep_ms(TIMEOUT_MS / 2 + 10);
  cr_assert_eq(push1(D1, "b", 2, t + 2000, &msg), 503, "%s", msg.data);
  start_ing(1);
  start_ing(2);
  rt_buf_free(&js);
  rt_buf_free(&msg);
}

Test(ha, disabled_per_tenant_keeps_the_replica_label) {
  rt_config cfg;
  rt_config_defaults(&cfg);
  rt_limits lim;
  rt_limits_from_config(&cfg, &lim);
  rt_config_free(&cfg);
  lim.accept_ha_samples = false;
  char err[256];
  cr_assert_eq(rt_limits_init(&lim, "", err, sizeof err), RT_OK, "%s", err);
  rt_buf msg = RT_BUF_INIT;
  int64_t ts = rt_now_ms() - 60000;
  cr_assert_eq(push1(D1, "a", 1, ts, &msg), 200, "%s", msg.data);
  cr_assert_eq(push1(D1, "b", 2, ts, &msg), 200, "%s", msg.data);
  char ser[4][256];
  cr_assert_eq(select_series(0, "ha_test", ser, 4), 2);
  cr_assert_str_eq(ser[0], "__name__=ha_test,__replica__=a,cluster=c1,job=ha");
  rt_buf_free(&msg);
}
