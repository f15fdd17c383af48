/* compactor_test.c - the lifecycle rules (from the configuration, into an ingester's open) and
 * the worker applying them to a real ingester on its schedule. */
#include <criterion/criterion.h>
#include <time.h>

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
