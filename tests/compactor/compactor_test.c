/* compactor_test.c - the lifecycle rules (from the configuration, into an ingester's open) and
 * the worker applying them to a real ingester on its schedule. */
#include <criterion/criterion.h>
#include <time.h>
#include <unistd.h>

#include "common/limits.h"
#include "compactor/compactor.h"
#include "tests/ingester/ing_util.h"

#define H (3600 * 1000LL)

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

TestSuite(compactor, .init = setup, .fini = teardown);

static void push(ing_ingester *ing, const char *labels, int64_t t) {
  Ringtail__PushResponse r;
  cr_assert_eq(tu_push1(ing, "t", labels, t, 1, &r, A), RT_OK);
  cr_assert_eq(r.n_errors, 0);
}

static uint64_t head(ing_ingester *ing) {
  ing_stats st;
  ing_get_stats(ing, &st);
  return st.active_series;
}

/* an ingester holding one series idle for 3h of data time and one active */
static ing_ingester *with_idle(void) {
  ing_config c = tu_cfg(dir);
  ing_ingester *ing;
  cr_assert_eq(ing_create(&c, &ing), RT_OK);
  push(ing, "__name__=old", 1000);
  push(ing, "__name__=new", 1000 + 3 * H);
  cr_assert_eq(head(ing), 2);
  return ing;
}

Test(compactor, rules_from_the_configuration) {
  rt_config cfg;
  char err[256];
  bool help;
  int nrest;
  char *rest[4];
  const char *argv[] = {"ringtail", "-ingester.series-idle-timeout=90m"};
  rt_config_defaults(&cfg);
  cr_assert_eq(rt_config_parse(&cfg, 2, (char **)argv, &help, rest, &nrest, err, sizeof err), RT_OK,
               "%s", err);
  cmp_rules r;
  cmp_rules_from_config(&cfg, &r);
  cr_assert_eq(r.series_idle_timeout_ms, 90 * 60 * 1000);
  cr_assert_eq(r.interval_ms, 10000);
  ing_config ic = tu_cfg(dir);
  cmp_rules_apply_to_ingester(&r, &ic);
  cr_assert_eq(ic.series_idle_timeout_ms, 90 * 60 * 1000, "the ingester's open follows the rules");
  rt_config_free(&cfg);
  rt_config_defaults(&cfg);
  cmp_rules_from_config(&cfg, &r);
  cr_assert_eq(r.series_idle_timeout_ms, 2 * H, "default 2h");
  rt_config_free(&cfg);
}

Test(compactor, one_round_applies_the_idle_rule) {
  ing_ingester *ing = with_idle();
  cmp_rules off = {.series_idle_timeout_ms = 0, .interval_ms = 10000};
  cmp_round n = {.idle_removed = 99};
  cr_assert_eq(cmp_run_once(&off, ing, rt_mono_ns(), rt_now_ms(), &n), RT_OK);
  cr_assert_eq(n.idle_removed, 0, "0 keeps every series");
  cr_assert_eq(head(ing), 2);
  cmp_rules r = {.series_idle_timeout_ms = 4 * H, .interval_ms = 10000};
  cr_assert_eq(cmp_run_once(&r, ing, rt_mono_ns(), rt_now_ms(), &n), RT_OK);
  cr_assert_eq(n.idle_removed, 0, "idle 3h < 4h");
  r.series_idle_timeout_ms = 1 * H;
  cr_assert_eq(cmp_run_once(&r, ing, rt_mono_ns(), rt_now_ms(), &n), RT_OK);
  cr_assert_eq(n.idle_removed, 1);
  cr_assert_eq(head(ing), 1);
  ing_destroy(ing);
}

Test(compactor, the_worker_runs_on_its_schedule) {
  ing_ingester *ing = with_idle();
  cmp_rules bad = {.series_idle_timeout_ms = H, .interval_ms = 0};
  cmp_worker *w = NULL;
  cr_assert_eq(cmp_worker_create(&bad, ing, &w), RT_EINVAL);
  cr_assert_null(w);
  cmp_rules r = {.series_idle_timeout_ms = H, .interval_ms = 20};
  cr_assert_eq(cmp_worker_create(&r, ing, &w), RT_OK);
  uint64_t deadline = rt_mono_ns() + 10ull * 1000000000u;
  while (head(ing) != 1 && rt_mono_ns() < deadline) {
    nanosleep(&(struct timespec){0, 5000000}, NULL); /* polls the condition */
  }
  cr_assert_eq(head(ing), 1, "the worker took the idle series out of the head");
  cmp_worker_destroy(w);
  cmp_worker_destroy(NULL);
  ing_destroy(ing);
}

Test(compactor, the_retention_rule) {
  rt_config cfg;
  char err[256];
  bool help;
  int nrest;
  char *rest[4];
  const char *argv[] = {"ringtail", "-compactor.retention-period=30d"};
  rt_config_defaults(&cfg);
  cmp_rules r;
  cmp_rules_from_config(&cfg, &r);
  cr_assert_eq(r.retention_period_ms, 0, "keep forever by default");
  cr_assert_eq(rt_config_parse(&cfg, 2, (char **)argv, &help, rest, &nrest, err, sizeof err), RT_OK,
               "%s", err);
  cmp_rules_from_config(&cfg, &r);
  cr_assert_eq(r.retention_period_ms, 30 * 24 * H);
  rt_config_free(&cfg);
  /* the step: a 24th of the period, between 1 minute and 1 hour */
  cr_assert_eq(cmp_retention_step(30 * 24 * H), H);
  cr_assert_eq(cmp_retention_step(24 * H), H);
  cr_assert_eq(cmp_retention_step(2 * H), 5 * 60 * 1000);
  cr_assert_eq(cmp_retention_step(10 * 60 * 1000), 60 * 1000);
  /* the cutoff: the data-time start rounded down to a step, less one step */
  rt_limits l = {.compactor_retention_period_ms = 24 * H, .creation_grace_period_ms = 10 * 60 * 1000};
  int64_t wall = 100 * 24 * H;
  cr_assert_eq(rt_retention_start(&l, wall - 1000, wall), wall - 1000 - 24 * H);
  cr_assert_eq(cmp_retention_before(&l, wall - 1000, wall), wall - 24 * H - 2 * H,
               "start 99d - 1s: floor 98d23h, less 1h");
  cr_assert_eq(cmp_retention_before(&l, wall + 30 * H, wall), wall - 24 * H - H,
               "a sample far in the future moves the clock to wall + grace (10m) only");
  cr_assert_eq(cmp_retention_before(&l, INT64_MIN, wall), INT64_MIN, "no sample: keep");
  cr_assert_eq(cmp_retention_before(&l, -5 * H - 1, wall), -24 * H - 7 * H, "floor below 0");
  l.compactor_retention_period_ms = 0;
  cr_assert_eq(cmp_retention_before(&l, wall, wall), INT64_MIN, "0 keeps everything");
  l.compactor_retention_period_ms = INT64_MAX;
  cr_assert_lt(cmp_retention_before(&l, wall, wall), -100 * 365 * 24 * H, "no overflow");
}

static size_t count_series(ing_ingester *ing, const char *tenant) {
  Ringtail__SelectResponse sr;
  cr_assert_eq(tu_select(ing, tenant, "__name__=~.+", 0, 0, &sr, A), RT_OK);
  return sr.n_series;
}

Test(compactor, one_round_applies_each_tenants_retention) {
  int64_t now = rt_now_ms();
  ing_config c = tu_cfg(dir);
  ing_ingester *ing;
  cr_assert_eq(ing_create(&c, &ing), RT_OK);
  const char *tenants[] = {"t", "u"};
  for (int i = 0; i < 2; i++) {
    Ringtail__PushResponse r;
    cr_assert_eq(tu_push1(ing, tenants[i], "__name__=old", now - 5 * 24 * H, 1, &r, A), RT_OK);
    cr_assert_eq(tu_push1(ing, tenants[i], "__name__=mid", now - 36 * H, 1, &r, A), RT_OK);
    cr_assert_eq(tu_push1(ing, tenants[i], "__name__=new", now - 1000, 1, &r, A), RT_OK);
  }
  /* the rules' default without a limits table: 3d for every tenant */
  cmp_rules r = {.series_idle_timeout_ms = 0, .retention_period_ms = 3 * 24 * H, .interval_ms = 10000};
  cmp_round n;
  cr_assert_eq(cmp_run_once(&r, ing, rt_mono_ns(), now, &n), RT_OK);
  cr_assert_eq(n.retention.series, 2, "old of t and of u");
  cr_assert_eq(count_series(ing, "t"), 2);
  cr_assert_eq(count_series(ing, "u"), 2);
  /* a limits table: the default 3d, 1d for t; read at every round */
  char path[] = "/tmp/ringtail-cmp-XXXXXX";
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  const char *yaml = "overrides:\n  t:\n    compactor_retention_period: 1d\n";
  cr_assert_eq(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
  close(fd);
  rt_config cfg;
  rt_config_defaults(&cfg);
  cfg.retention_period_ms = 3 * 24 * H;
  rt_limits l;
  rt_limits_from_config(&cfg, &l);
  rt_config_free(&cfg);
  char err[256];
  cr_assert_eq(rt_limits_init(&l, path, err, sizeof err), RT_OK, "%s", err);
  cr_assert_eq(cmp_run_once(&r, ing, rt_mono_ns(), now, &n), RT_OK);
  cr_assert_eq(n.retention.series, 1, "mid of t (1d); u keeps 3d");
  cr_assert_eq(count_series(ing, "t"), 1);
  cr_assert_eq(count_series(ing, "u"), 2);
  rt_limits_shutdown();
  unlink(path);
  ing_destroy(ing);
}
