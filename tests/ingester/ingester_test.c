/* ingester_test.c - push, select, duplicates, out-of-order, persistence and WAL replay. */
#include <math.h>
#include <signal.h>
#include <sys/wait.h>

#include "ing_util.h"
#include "ingester/ing_int.h"

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

TestSuite(ingester, .init = setup, .fini = teardown);

static ing_ingester *open_ing(ing_config cfg) {
  ing_ingester *ing = NULL;
  cr_assert_eq(ing_create(&cfg, &ing), RT_OK);
  cr_assert_not_null(ing);
  return ing;
}

/* Select one series by exact matchers and return its samples. */
static size_t get_samples(ing_ingester *ing, const char *tenant, const char *m, int64_t *ts, double *vs,
                          size_t cap) {
  Ringtail__SelectResponse resp;
  cr_assert_eq(tu_select(ing, tenant, m, 0, 0, &resp, A), RT_OK);
  if (resp.n_series == 0) {
    return 0;
  }
  cr_assert_eq(resp.n_series, 1, "matchers %s gave %zu series", m, resp.n_series);
  return tu_samples(resp.series[0], ts, vs, cap);
}

Test(ingester, push_and_select) {
  ing_ingester *ing = open_ing(tu_cfg(dir));
  tu_push p;
  tu_push_init(&p, A, "t1");
  int64_t ts[] = {1000, 2000, 3000};
  double vs[] = {1, 2, 3};
  tu_series(&p, "__name__=up,job=a", 3, ts, vs);
  tu_series(&p, "__name__=up,job=b", 2, ts, vs);
  tu_series(&p, "__name__=down,job=a", 1, ts, vs);
  Ringtail__PushResponse resp;
  cr_assert_eq(ing_push(ing, &p.req, &resp, A), RT_OK);
  cr_assert_eq(resp.samples_accepted, 6);
  cr_assert_eq(resp.n_errors, 0);

  Ringtail__SelectResponse sr;
  cr_assert_eq(tu_select(ing, "t1", "__name__=up", 0, 5000, &sr, A), RT_OK);
  cr_assert_eq(sr.n_series, 2);
  char b[256];
  cr_assert_str_eq(tu_labels_str(sr.series[0], b, sizeof b), "__name__=up,job=a");
  cr_assert_str_eq(tu_labels_str(sr.series[1], b, sizeof b), "__name__=up,job=b");
  int64_t ot[8];
  double ov[8];
  cr_assert_eq(tu_samples(sr.series[0], ot, ov, 8), 3);
  cr_assert_eq(ot[2], 3000);
  cr_assert_eq(ov[2], 3);

  /* other tenants see nothing */
  cr_assert_eq(tu_select(ing, "t2", "__name__=up", 0, 5000, &sr, A), RT_OK);
  cr_assert_eq(sr.n_series, 0);
  /* time range outside */
  cr_assert_eq(tu_select(ing, "t1", "__name__=up", 4000, 5000, &sr, A), RT_OK);
  cr_assert_eq(sr.n_series, 0);
  /* labels_only and limit */
  Ringtail__SelectRequest req;
  ringtail__select_request__init(&req);
  req.tenant = "t1";
  tu_matchers(A, "job=a", &req.matchers, &req.n_matchers);
  req.labels_only = true;
  req.limit = 1;
  req.maxt = 10000;
  cr_assert_eq(ing_select(ing, &req, &sr, A), RT_OK);
  cr_assert_eq(sr.n_series, 1);
  cr_assert_eq(sr.series[0]->n_chunks, 0);
  cr_assert_str_eq(tu_labels_str(sr.series[0], b, sizeof b), "__name__=down,job=a");
  ing_destroy(ing);
}

Test(ingester, unsorted_labels_are_the_same_series) {
  ing_ingester *ing = open_ing(tu_cfg(dir));
  Ringtail__PushResponse resp;
  cr_assert_eq(tu_push1(ing, "t", "job=a,__name__=x", 10, 1, &resp, A), RT_OK);
  cr_assert_eq(tu_push1(ing, "t", "__name__=x,job=a", 20, 2, &resp, A), RT_OK);
  int64_t ts[4];
  double vs[4];
  cr_assert_eq(get_samples(ing, "t", "__name__=x", ts, vs, 4), 2);
  ing_destroy(ing);
}

Test(ingester, duplicates_and_out_of_order) {
  ing_ingester *ing = open_ing(tu_cfg(dir));
  Ringtail__PushResponse resp;
  cr_assert_eq(tu_push1(ing, "t", "__name__=m", 1000, 5, &resp, A), RT_OK);
  cr_assert_eq(resp.samples_accepted, 1);
  /* same timestamp, same value: duplicate, accepted as a no-op */
  cr_assert_eq(tu_push1(ing, "t", "__name__=m", 1000, 5, &resp, A), RT_OK);
  cr_assert_eq(resp.samples_accepted, 0);
  cr_assert_eq(resp.samples_duplicate, 1);
  cr_assert_eq(resp.n_errors, 0);
  /* same timestamp, other value */
  cr_assert_eq(tu_push1(ing, "t", "__name__=m", 1000, 6, &resp, A), RT_OK);
  cr_assert_eq(resp.n_errors, 1);
  cr_assert_eq(resp.errors[0]->code, RINGTAIL__SAMPLE_ERROR__SAMPLE_DUPLICATE_TIMESTAMP);
  cr_assert(strstr(resp.errors[0]->message, "duplicate sample for timestamp"));
  cr_assert(strstr(resp.errors[0]->message, "__name__=\"m\""), "%s", resp.errors[0]->message);
  cr_assert(strstr(resp.errors[0]->message, "1000"));
  /* older */
  cr_assert_eq(tu_push1(ing, "t", "__name__=m", 999, 6, &resp, A), RT_OK);
  cr_assert_eq(resp.n_errors, 1);
  cr_assert_eq(resp.errors[0]->code, RINGTAIL__SAMPLE_ERROR__SAMPLE_OUT_OF_ORDER);
  cr_assert(strstr(resp.errors[0]->message, "out of order sample"));
  cr_assert(strstr(resp.errors[0]->message, "999"));
  /* NaN duplicates compare by bits: the stale marker twice is a duplicate */
  double stale;
  uint64_t sb = RT_STALE_NAN_BITS;
  memcpy(&stale, &sb, 8);
  cr_assert_eq(tu_push1(ing, "t", "__name__=m", 2000, stale, &resp, A), RT_OK);
  cr_assert_eq(resp.samples_accepted, 1);
  cr_assert_eq(tu_push1(ing, "t", "__name__=m", 2000, stale, &resp, A), RT_OK);
  cr_assert_eq(resp.samples_duplicate, 1);
  cr_assert_eq(resp.n_errors, 0);
  cr_assert_eq(tu_push1(ing, "t", "__name__=m", 2000, NAN, &resp, A), RT_OK);
  cr_assert_eq(resp.n_errors, 1);

  int64_t ts[8];
  double vs[8];
  cr_assert_eq(get_samples(ing, "t", "__name__=m", ts, vs, 8), 2);
  cr_assert_eq(ts[0], 1000);
  cr_assert_eq(vs[0], 5);
  uint64_t got;
  memcpy(&got, &vs[1], 8);
  cr_assert_eq(got, RT_STALE_NAN_BITS);

  /* in one batch: partial acceptance, the first problem per series reported */
  tu_push p;
  tu_push_init(&p, A, "t");
  int64_t bt[] = {3000, 2500, 4000, 4000, 3500};
  double bv[] = {1, 1, 2, 3, 1};
  tu_series(&p, "__name__=m", 5, bt, bv);
  cr_assert_eq(ing_push(ing, &p.req, &resp, A), RT_OK);
  cr_assert_eq(resp.samples_accepted, 2);
  cr_assert_eq(resp.n_errors, 1);
  cr_assert_eq(resp.errors[0]->index, 0);
  cr_assert(strstr(resp.errors[0]->message, "2500"));
  ing_stats st;
  ing_get_stats(ing, &st);
  cr_assert_eq(st.samples_appended, 4);
  cr_assert_eq(st.samples_rejected[RINGTAIL__SAMPLE_ERROR__SAMPLE_OUT_OF_ORDER], 3);
  cr_assert_eq(st.samples_rejected[RINGTAIL__SAMPLE_ERROR__SAMPLE_DUPLICATE_TIMESTAMP], 3);
  ing_destroy(ing);
}

Test(ingester, out_of_order_window) {
  ing_config cfg = tu_cfg(dir);
  cfg.ooo_window_ms = 10000;
  ing_ingester *ing = open_ing(cfg);
  Ringtail__PushResponse resp;
  for (int64_t t = 100000; t <= 110000; t += 2000) {
    cr_assert_eq(tu_push1(ing, "t", "__name__=o", t, (double)t, &resp, A), RT_OK);
  }
  /* inside the window: accepted and read back in order */
  cr_assert_eq(tu_push1(ing, "t", "__name__=o", 105000, 1.5, &resp, A), RT_OK);
  cr_assert_eq(resp.samples_accepted, 1);
  cr_assert_eq(tu_push1(ing, "t", "__name__=o", 101000, 2.5, &resp, A), RT_OK);
  cr_assert_eq(resp.samples_accepted, 1);
  /* existing timestamp inside the window: duplicate or error */
  cr_assert_eq(tu_push1(ing, "t", "__name__=o", 104000, 104000, &resp, A), RT_OK);
  cr_assert_eq(resp.samples_duplicate, 1);
  cr_assert_eq(tu_push1(ing, "t", "__name__=o", 101000, 9, &resp, A), RT_OK);
  cr_assert_eq(resp.n_errors, 1);
  cr_assert_eq(resp.errors[0]->code, RINGTAIL__SAMPLE_ERROR__SAMPLE_DUPLICATE_TIMESTAMP);
  /* outside the window */
  cr_assert_eq(tu_push1(ing, "t", "__name__=o", 99000, 1, &resp, A), RT_OK);
  cr_assert_eq(resp.n_errors, 1);
  cr_assert_eq(resp.errors[0]->code, RINGTAIL__SAMPLE_ERROR__SAMPLE_TOO_OLD);
  cr_assert(strstr(resp.errors[0]->message, "out of order sample"));

  int64_t ts[16];
  double vs[16];
  size_t n = get_samples(ing, "t", "__name__=o", ts, vs, 16);
  cr_assert_eq(n, 8);
  int64_t want[] = {100000, 101000, 102000, 104000, 105000, 106000, 108000, 110000};
  for (size_t i = 0; i < n; i++) {
    cr_assert_eq(ts[i], want[i], "i=%zu", i);
  }
  cr_assert_eq(vs[1], 2.5);
  cr_assert_eq(vs[4], 1.5);

  /* duplicates are found in closed chunks too */
  cr_assert_eq(ing_flush(ing), RT_OK);
  cr_assert_eq(tu_push1(ing, "t", "__name__=o", 102000, 102000, &resp, A), RT_OK);
  cr_assert_eq(resp.samples_duplicate, 1);
  cr_assert_eq(resp.samples_accepted, 0);
  cr_assert_eq(tu_push1(ing, "t", "__name__=o", 101000, 3.5, &resp, A), RT_OK);
  cr_assert_eq(resp.n_errors, 1);
  cr_assert_eq(resp.errors[0]->code, RINGTAIL__SAMPLE_ERROR__SAMPLE_DUPLICATE_TIMESTAMP);
  cr_assert_eq(tu_push1(ing, "t", "__name__=o", 103000, 3.5, &resp, A), RT_OK);
  cr_assert_eq(resp.samples_accepted, 1);
  n = get_samples(ing, "t", "__name__=o", ts, vs, 16);
  cr_assert_eq(n, 9);
  ing_destroy(ing);
  ing = open_ing(cfg);
  n = get_samples(ing, "t", "__name__=o", ts, vs, 16);
  cr_assert_eq(n, 9);
  cr_assert_eq(ts[3], 103000);

  /* the same after a restart (WAL replay of out-of-order samples) */
  ing_destroy(ing);
  ing = open_ing(cfg);
  n = get_samples(ing, "t", "__name__=o", ts, vs, 16);
  cr_assert_eq(n, 9);
  int64_t want2[] = {100000, 101000, 102000, 103000, 104000, 105000, 106000, 108000, 110000};
  for (size_t i = 0; i < n; i++) {
    cr_assert_eq(ts[i], want2[i], "i=%zu", i);
  }
  cr_assert_eq(vs[1], 2.5);
  ing_destroy(ing);
}

/* Pushes `nser` series x `nsamp` samples in batches of `per` samples. */
/* Sample i (first <= i < first + nsamp) of series k: t0 + i * 15s, value k * 1000 + i. */
static void push_range(ing_ingester *ing, const char *tenant, int nser, int first, int nsamp, int per,
                       int64_t t0) {
  for (int s0 = first; s0 < first + nsamp; s0 += per) {
    tu_push p;
    tu_push_init(&p, A, tenant);
    for (int k = 0; k < nser; k++) {
      char lb[128];
      snprintf(lb, sizeof lb, "__name__=metric_%d,instance=host%d,job=node", k % 7, k);
      int64_t ts[512];
      double vs[512];
      int n = 0;
      for (int i = s0; i < first + nsamp && i < s0 + per; i++, n++) {
        ts[n] = t0 + (int64_t)i * 15000;
        vs[n] = k * 1000.0 + i;
      }
      tu_series(&p, lb, (size_t)n, ts, vs);
    }
    Ringtail__PushResponse resp;
    cr_assert_eq(ing_push(ing, &p.req, &resp, A), RT_OK);
    cr_assert_eq(resp.n_errors, 0, "%s", resp.n_errors ? resp.errors[0]->message : "");
    rt_arena_reset(A);
  }
}

static void push_many(ing_ingester *ing, const char *tenant, int nser, int nsamp, int per, int64_t t0) {
  push_range(ing, tenant, nser, 0, nsamp, per, t0);
}

static void check_many(ing_ingester *ing, const char *tenant, int nser, int nsamp, int64_t t0) {
  Ringtail__SelectResponse sr;
  cr_assert_eq(tu_select(ing, tenant, "job=node", 0, 0, &sr, A), RT_OK);
  cr_assert_eq(sr.n_series, (size_t)nser);
  int64_t *ts = malloc((size_t)nsamp * 2 * sizeof *ts);
  double *vs = malloc((size_t)nsamp * 2 * sizeof *vs);
  for (size_t i = 0; i < sr.n_series; i++) {
    const char *inst = NULL;
    for (size_t l = 0; l < sr.series[i]->n_labels; l++) {
      if (!strcmp(sr.series[i]->labels[l]->name, "instance")) {
        inst = sr.series[i]->labels[l]->value;
      }
    }
    int k = atoi(inst + 4);
    size_t n = tu_samples(sr.series[i], ts, vs, (size_t)nsamp * 2);
    cr_assert_eq(n, (size_t)nsamp, "series %d has %zu samples", k, n);
    for (int j = 0; j < nsamp; j++) {
      cr_assert_eq(ts[j], t0 + (int64_t)j * 15000);
      cr_assert_eq(vs[j], k * 1000.0 + j);
    }
  }
  free(ts);
  free(vs);
  rt_arena_reset(A);
}

Test(ingester, persistence_across_restart) {
  ing_config cfg = tu_cfg(dir);
  cfg.chunk_max_samples = 50;
  ing_ingester *ing = open_ing(cfg);
  push_many(ing, "t", 20, 333, 40, 1700000000000);
  check_many(ing, "t", 20, 333, 1700000000000);
  ing_stats st;
  ing_get_stats(ing, &st);
  cr_assert_eq(st.active_series, 20);
  cr_assert_geq(st.chunks_closed, 20 * 6);
  ing_destroy(ing);
  ing = open_ing(cfg);
  check_many(ing, "t", 20, 333, 1700000000000);
  /* continue appending after recovery: no false out-of-order errors */
  push_range(ing, "t", 20, 333, 10, 10, 1700000000000);
  ing_destroy(ing);
  ing = open_ing(cfg);
  Ringtail__SelectResponse sr;
  cr_assert_eq(tu_select(ing, "t", "instance=host3", 0, 0, &sr, A), RT_OK);
  cr_assert_eq(sr.n_series, 1);
  int64_t ts[400];
  double vs[400];
  cr_assert_eq(tu_samples(sr.series[0], ts, vs, 400), 343);
  for (int j = 1; j < 343; j++) {
    cr_assert_eq(ts[j] - ts[j - 1], 15000);
  }
  ing_destroy(ing);
}

Test(ingester, wal_replay_after_crash) {
  ing_config cfg = tu_cfg(dir);
  cfg.chunk_max_samples = 30;
  fflush(NULL);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    ing_ingester *ing = NULL;
    if (ing_create(&cfg, &ing) != RT_OK) {
      _exit(2);
    }
    push_many(ing, "crash", 10, 101, 7, 1600000000000);
    _exit(0); /* no ing_destroy: nothing flushed or closed */
  }
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed");
  ing_ingester *ing = open_ing(cfg);
  check_many(ing, "crash", 10, 101, 1600000000000);
  ing_destroy(ing);
}

Test(ingester, kill9_during_pushes) {
  ing_config cfg = tu_cfg(dir);
  cfg.chunk_max_samples = 16;
  int fds[2];
  cr_assert_eq(pipe(fds), 0);
  fflush(NULL);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    ing_ingester *ing = NULL;
    if (ing_create(&cfg, &ing) != RT_OK) {
      _exit(2);
    }
    for (int i = 0;; i++) {
      Ringtail__PushResponse resp;
      rt_arena_reset(A);
      tu_push p;
      tu_push_init(&p, A, "k");
      for (int s = 0; s < 5; s++) {
        char lb[64];
        snprintf(lb, sizeof lb, "__name__=k,s=%d", s);
        int64_t t = 1000 + i;
        double v = i;
        tu_series(&p, lb, 1, &t, &v);
      }
      if (ing_push(ing, &p.req, &resp, A) != RT_OK) {
        _exit(3);
      }
      /* acknowledged: tell the parent */
      if (write(fds[1], &i, sizeof i) != sizeof i) {
        _exit(4);
      }
    }
  }
  close(fds[1]);
  int last = -1, x;
  while (last < 300 && read(fds[0], &x, sizeof x) == sizeof x) {
    last = x;
  }
  kill(pid, SIGKILL);
  int status;
  waitpid(pid, &status, 0);
  while (read(fds[0], &x, sizeof x) == sizeof x) {
    last = x;
  }
  close(fds[0]);
  cr_assert_geq(last, 300);
  ing_ingester *ing = open_ing(cfg);
  Ringtail__SelectResponse sr;
  cr_assert_eq(tu_select(ing, "k", "__name__=k", 0, 0, &sr, A), RT_OK);
  cr_assert_eq(sr.n_series, 5);
  size_t n0 = 0;
  for (size_t s = 0; s < 5; s++) {
    int64_t ts[4096];
    double vs[4096];
    size_t n = tu_samples(sr.series[s], ts, vs, 4096);
    /* every acknowledged push is there, contiguous from the first */
    cr_assert_geq(n, (size_t)last + 1, "series %zu: %zu samples, last ack %d", s, n, last);
    for (size_t j = 0; j < n; j++) {
      cr_assert_eq(ts[j], 1000 + (int64_t)j);
      cr_assert_eq(vs[j], (double)j);
    }
    if (s == 0) {
      n0 = n;
    }
    /* all or nothing per batch */
    cr_assert_eq(n, n0);
  }
  ing_destroy(ing);
}

Test(ingester, chunk_closing_and_wal_truncation) {
  ing_config cfg = tu_cfg(dir);
  cfg.chunk_max_samples = 10;
  ing_ingester *ing = open_ing(cfg);
  push_many(ing, "t", 5, 95, 5, 1000);
  ing_stats st;
  ing_get_stats(ing, &st);
  cr_assert_eq(st.chunks_closed, 5 * 9);
  /* the series' selects see closed + head chunks */
  Ringtail__SelectResponse sr;
  cr_assert_eq(tu_select(ing, "t", "instance=host1", 0, 0, &sr, A), RT_OK);
  cr_assert_eq(sr.n_series, 1);
  cr_assert_eq(sr.series[0]->n_chunks, 10);
  for (size_t i = 1; i < sr.series[0]->n_chunks; i++) {
    cr_assert_gt(sr.series[0]->chunks[i]->mint, sr.series[0]->chunks[i - 1]->maxt);
  }
  /* time-range select returns only overlapping chunks */
  cr_assert_eq(tu_select(ing, "t", "instance=host1", 1000 + 15000 * 20, 1000 + 15000 * 25, &sr, A), RT_OK);
  cr_assert_eq(sr.series[0]->n_chunks, 1);
  ing_destroy(ing);

  ing = open_ing(cfg);
  check_many(ing, "t", 5, 95, 1000);
  /* 19 pushes; the 5 open chunks hold samples 90..94 from the last record only */
  uint64_t nwal;
  cr_assert_eq(ing_wal_count(ing, &nwal), RT_OK);
  cr_assert_eq(nwal, 1, "wal records %llu", (unsigned long long)nwal);
  push_range(ing, "t", 5, 95, 5, 5, 1000);
  cr_assert_eq(ing_maintain(ing), RT_OK);
  cr_assert_eq(ing_wal_count(ing, &nwal), RT_OK);
  cr_assert_eq(nwal, 2); /* samples 90..99 are still in open chunks */
  /* flush: every head chunk closes and the WAL empties */
  cr_assert_eq(ing_flush(ing), RT_OK);
  cr_assert_eq(ing_wal_count(ing, &nwal), RT_OK);
  cr_assert_eq(nwal, 0);
  check_many(ing, "t", 5, 100, 1000);
  ing_destroy(ing);
  ing = open_ing(cfg);
  check_many(ing, "t", 5, 100, 1000);
  push_range(ing, "t", 5, 100, 1, 1, 1000);
  ing_destroy(ing);
  ing = open_ing(cfg);
  check_many(ing, "t", 5, 101, 1000);
  ing_destroy(ing);
}

Test(ingester, idle_series_flush) {
  ing_config cfg = tu_cfg(dir);
  cfg.chunk_max_age_ms = 60000;
  ing_ingester *ing = open_ing(cfg);
  Ringtail__PushResponse resp;
  cr_assert_eq(tu_push1(ing, "t", "__name__=idle", 1000, 1, &resp, A), RT_OK);
  cr_assert_eq(tu_push1(ing, "t", "__name__=busy", 1000, 1, &resp, A), RT_OK);
  cr_assert_eq(tu_push1(ing, "t", "__name__=busy", 200000, 2, &resp, A), RT_OK);
  cr_assert_eq(ing_maintain(ing), RT_OK);
  ing_stats st;
  ing_get_stats(ing, &st);
  cr_assert_eq(st.chunks_closed, 2); /* idle's head, and busy's first chunk (age) */
  int64_t ts[4];
  double vs[4];
  cr_assert_eq(get_samples(ing, "t", "__name__=idle", ts, vs, 4), 1);
  ing_destroy(ing);
  ing = open_ing(cfg);
  cr_assert_eq(get_samples(ing, "t", "__name__=idle", ts, vs, 4), 1);
  cr_assert_eq(get_samples(ing, "t", "__name__=busy", ts, vs, 4), 2);
  ing_destroy(ing);
}

Test(ingester, metadata) {
  ing_ingester *ing = open_ing(tu_cfg(dir));
  Ringtail__PushRequest req;
  ringtail__push_request__init(&req);
  req.tenant = "t";
  Prometheus__MetricMetadata m1, m2, *mds[2] = {&m1, &m2};
  prometheus__metric_metadata__init(&m1);
  prometheus__metric_metadata__init(&m2);
  m1.type = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER;
  m1.metric_family_name = "http_requests_total";
  m1.help = "Requests.";
  m2.type = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE;
  m2.metric_family_name = "go_goroutines";
  m2.help = "Goroutines.";
  m2.unit = "";
  req.metadata = mds;
  req.n_metadata = 2;
  Ringtail__PushResponse resp;
  cr_assert_eq(ing_push(ing, &req, &resp, A), RT_OK);
  ing_destroy(ing);
  ing = open_ing(tu_cfg(dir));
  Ringtail__MetadataRequest mr;
  ringtail__metadata_request__init(&mr);
  mr.tenant = "t";
  Ringtail__MetadataResponse out;
  cr_assert_eq(ing_metadata(ing, &mr, &out, A), RT_OK);
  cr_assert_eq(out.n_metadata, 2);
  cr_assert_str_eq(out.metadata[0]->metric_family_name, "go_goroutines");
  cr_assert_str_eq(out.metadata[1]->help, "Requests.");
  cr_assert_eq(out.metadata[1]->type, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER);
  mr.metric = "http_requests_total";
  cr_assert_eq(ing_metadata(ing, &mr, &out, A), RT_OK);
  cr_assert_eq(out.n_metadata, 1);
  mr.metric = "";
  mr.limit = 1;
  cr_assert_eq(ing_metadata(ing, &mr, &out, A), RT_OK);
  cr_assert_eq(out.n_metadata, 1);
  ing_destroy(ing);
}

Test(ingester, dump_offline) {
  ing_config cfg = tu_cfg(dir);
  cfg.chunk_max_samples = 4;
  ing_ingester *ing = open_ing(cfg);
  tu_push p;
  tu_push_init(&p, A, "acme");
  int64_t ts[] = {1, 2, 3, 4, 5, 6};
  double stale;
  uint64_t sb = RT_STALE_NAN_BITS;
  memcpy(&stale, &sb, 8);
  double vs[] = {0.5, INFINITY, -INFINITY, NAN, stale, 1e300};
  tu_series(&p, "__name__=a,x=\"q\"", 6, ts, vs);
  Ringtail__PushResponse resp;
  cr_assert_eq(ing_push(ing, &p.req, &resp, A), RT_OK);
  /* dump while the ingester runs (read-only open) */
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  cr_assert_eq(ing_dump(dir, NULL, f), RT_OK);
  fclose(f);
  cr_assert_str_eq(buf, "acme {__name__=\"a\", x=\"\\\"q\\\"\"} 1 0.5\n"
                        "acme {__name__=\"a\", x=\"\\\"q\\\"\"} 2 +Inf\n"
                        "acme {__name__=\"a\", x=\"\\\"q\\\"\"} 3 -Inf\n"
                        "acme {__name__=\"a\", x=\"\\\"q\\\"\"} 4 NaN\n"
                        "acme {__name__=\"a\", x=\"\\\"q\\\"\"} 5 StaleNaN\n"
                        "acme {__name__=\"a\", x=\"\\\"q\\\"\"} 6 1e+300\n"); /* shortest, not %.17g */
  free(buf);
  ing_destroy(ing);
  f = open_memstream(&buf, &len);
  cr_assert_eq(ing_dump(dir, "other", f), RT_OK);
  fclose(f);
  cr_assert_eq(len, 0);
  free(buf);
}

Test(ingester, storage_errors_are_rt_errors) {
  /* a data directory that cannot be created */
  ing_config cfg = tu_cfg("/proc/ringtail-no-such-dir");
  ing_ingester *ing = NULL;
  cr_assert_eq(ing_create(&cfg, &ing), RT_EIO);
  cr_assert_null(ing);
  /* a database locked by another open ingester */
  cfg = tu_cfg(dir);
  ing_ingester *a = open_ing(cfg);
  cr_assert_eq(ing_create(&cfg, &ing), RT_EIO);
  cr_assert_null(ing);
  ing_destroy(a);
  /* a dump of a directory without a database */
  cr_assert_eq(ing_dump("/nonexistent-ringtail", NULL, stdout), RT_EIO);
}

Test(ingester, allocation_failures) {
  /* every allocation of a push may fail: the call returns RT_ENOMEM (or succeeds), never
   * crashes, and whatever was acknowledged is there after a restart */
  ing_config cfg = tu_cfg(dir);
  cfg.chunk_max_samples = 4;
  ing_ingester *ing = open_ing(cfg);
  int acked = 0;
  for (long n = 0; n < 60; n++) {
    rt_arena *a = rt_arena_create(0);
    tu_push p;
    tu_push_init(&p, a, "oom");
    char lb[64];
    snprintf(lb, sizeof lb, "__name__=o,n=%ld", n % 5);
    int64_t t = 1000 + n;
    double v = (double)n;
    tu_series(&p, lb, 1, &t, &v);
    Ringtail__PushResponse resp;
    rt_alloc_fail_after(n % 12);
    rt_err err = ing_push(ing, &p.req, &resp, a);
    rt_alloc_fail_after(-1);
    cr_assert(err == RT_OK || err == RT_ENOMEM, "push %ld: %s", n, rt_strerror(err));
    if (err == RT_OK) {
      acked += (int)resp.samples_accepted;
    }
    rt_arena_destroy(a);
  }
  Ringtail__SelectResponse sr;
  rt_alloc_fail_after(3);
  rt_err err = tu_select(ing, "oom", "__name__=o", 0, 0, &sr, A);
  rt_alloc_fail_after(-1);
  cr_assert(err == RT_OK || err == RT_ENOMEM);
  ing_destroy(ing);
  ing = open_ing(cfg);
  cr_assert_eq(tu_select(ing, "oom", "__name__=o", 0, 0, &sr, A), RT_OK);
  int got = 0;
  for (size_t s = 0; s < sr.n_series; s++) {
    int64_t ts[128];
    double vs[128];
    got += (int)tu_samples(sr.series[s], ts, vs, 128);
  }
  cr_assert_geq(got, acked, "acknowledged %d, found %d", acked, got);
  ing_destroy(ing);
}

Test(ingester, extreme_timestamps) {
  ing_config cfg = tu_cfg(dir);
  cfg.chunk_max_samples = 3;
  cfg.ooo_window_ms = 1000;
  ing_ingester *ing = open_ing(cfg);
  Ringtail__PushResponse resp;
  int64_t want[] = {INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT64_MAX - 1, INT64_MAX};
  for (size_t i = 0; i < RT_ARRAY_LEN(want); i++) {
    cr_assert_eq(tu_push1(ing, "t", "__name__=x", want[i], (double)i, &resp, A), RT_OK);
    cr_assert_eq(resp.samples_accepted, 1, "ts %lld", (long long)want[i]);
  }
  /* the first sample at INT64_MIN is a real sample: pushing it again is a duplicate */
  cr_assert_eq(tu_push1(ing, "t", "__name__=y", INT64_MIN, 1, &resp, A), RT_OK);
  cr_assert_eq(tu_push1(ing, "t", "__name__=y", INT64_MIN, 1, &resp, A), RT_OK);
  cr_assert_eq(resp.samples_duplicate, 1);
  cr_assert_eq(tu_push1(ing, "t", "__name__=y", INT64_MIN, 2, &resp, A), RT_OK);
  cr_assert_eq(resp.n_errors, 1);
  int64_t ts[16];
  double vs[16];
  for (int round = 0; round < 2; round++) {
    size_t n = get_samples(ing, "t", "__name__=x", ts, vs, 16);
    cr_assert_eq(n, RT_ARRAY_LEN(want));
    for (size_t i = 0; i < n; i++) {
      cr_assert_eq(ts[i], want[i]);
      cr_assert_eq(vs[i], (double)i);
    }
    cr_assert_eq(get_samples(ing, "t", "__name__=y", ts, vs, 16), 1);
    ing_destroy(ing);
    ing = open_ing(cfg);
  }
  /* dump reads the same */
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  cr_assert_eq(ing_dump(dir, "t", f), RT_OK);
  fclose(f);
  cr_assert(strstr(buf, "{__name__=\"x\"} -9223372036854775808 0\n"), "%s", buf);
  cr_assert(strstr(buf, "{__name__=\"x\"} 9223372036854775807 6\n"), "%s", buf);
  free(buf);
  ing_destroy(ing);
}

Test(ingester, range_select_over_many_series) {
  ing_config cfg = tu_cfg(dir);
  cfg.chunk_max_samples = 10;
  ing_ingester *ing = open_ing(cfg);
  push_many(ing, "t", 40, 95, 19, 1000);
  /* every range, cut anywhere: each series returns exactly the chunks that overlap it */
  int64_t bounds[][2] = {{0, 0}, {1000, 1000}, {1000 + 15000 * 9, 1000 + 15000 * 10},
                         {1000 + 15000 * 33, 1000 + 15000 * 71}, {1000 + 15000 * 94, INT64_MAX},
                         {INT64_MIN, 1000 + 15000 * 5}, {5000, 6000}};
  for (size_t b = 0; b < RT_ARRAY_LEN(bounds); b++) {
    Ringtail__SelectResponse sr;
    int64_t lo = bounds[b][0], hi = bounds[b][1];
    cr_assert_eq(tu_select(ing, "t", "job=node", lo, hi, &sr, A), RT_OK);
    bool all = lo == 0 && hi == 0;
    /* a series is returned when its samples' time span overlaps the range */
    size_t want_series = all || (lo <= 1000 + 15000 * 94 && hi >= 1000) ? 40 : 0;
    cr_assert_eq(sr.n_series, want_series, "range %zu", b);
    for (size_t i = 0; i < sr.n_series; i++) {
      int64_t ts[200];
      double vs[200];
      size_t n = tu_samples(sr.series[i], ts, vs, 200);
      size_t in = 0;
      for (size_t j = 0; j < n; j++) {
        if (all || (ts[j] >= lo && ts[j] <= hi)) {
          in++;
        }
      }
      size_t want = 0;
      for (int j = 0; j < 95; j++) {
        int64_t t = 1000 + (int64_t)j * 15000;
        want += all || (t >= lo && t <= hi);
      }
      cr_assert_eq(in, want, "range %zu series %zu: %zu in range, want %zu", b, i, in, want);
      /* no chunk entirely outside the range */
      for (size_t c = 0; c < sr.series[i]->n_chunks; c++) {
        cr_assert(all || (sr.series[i]->chunks[c]->maxt >= lo && sr.series[i]->chunks[c]->mint <= hi));
      }
    }
    rt_arena_reset(A);
  }
  ing_destroy(ing);
}
