/* retention_test.c - the querier clamps every read to the tenant's retention start (the newest
 * sample any replica holds minus compactor_retention_period): a replica that deleted the old data
 * and one that did not answer the same, for select and for label names and values; other tenants
 * keep theirs; a runtime-config change applies to the next read; one query resolves the start
 * once. */
#include <stdio.h>

#include "common/config.h"
#include "common/limits.h"
#include "common/log.h"
#include "qry_util.h"

#define EP1 "inproc://qry-ret-ing1"
#define EP2 "inproc://qry-ret-ing2"
#define MIN_MS (60 * 1000LL)
#define H (3600 * 1000LL)
#define D (24 * H)

static qt_ing I1, I2;
static qry_querier *Q1, *Q2, *Q12; /* ingester 1 (deleted), ingester 2 (not yet), both */
static char overrides[64];
static int64_t now;

static void write_overrides(const char *text) {
  FILE *f = fopen(overrides, "w");
  cr_assert_not_null(f);
  fputs(text, f);
  fclose(f);
}

static int64_t cut_t(void *ctx, const char *tenant, int64_t newest) {
  (void)newest;
  return strcmp(tenant, "t") == 0 ? *(const int64_t *)ctx : INT64_MIN;
}

static void setup(void) {
  rt_log_set_level(RT_LOG_WARN);
  now = rt_now_ms();
  snprintf(overrides, sizeof overrides, "/tmp/ringtail-ret-XXXXXX");
  int fd = mkstemp(overrides);
  cr_assert_geq(fd, 0);
  close(fd);
  write_overrides("overrides:\n  t:\n    compactor_retention_period: 2d\n");
  rt_config cfg;
  rt_config_defaults(&cfg);
  rt_limits l;
  rt_limits_from_config(&cfg, &l);
  rt_config_free(&cfg);
  cr_assert_eq(l.compactor_retention_period_ms, 0, "keep forever by default");
  char err[256];
  cr_assert_eq(rt_limits_init(&l, overrides, err, sizeof err), RT_OK, "%s", err);
  qt_ing_start(&I1, EP1);
  qt_ing_start(&I2, EP2);
  qt_ing *both[2] = {&I1, &I2};
  for (int i = 0; i < 2; i++) {
    qt_push(both[i], "t", "__name__=old,job=a", now - 3 * D, MIN_MS, 10, 1, 1);
    qt_push(both[i], "t", "__name__=mixed,job=b", now - 3 * D, H, 72, 0, 1); /* to now - 1h */
    qt_push(both[i], "t", "__name__=new,job=c", now - MIN_MS, MIN_MS, 1, 5, 0);
    qt_push(both[i], "u", "__name__=old,job=a", now - 3 * D, MIN_MS, 10, 1, 1);
  }
  /* ingester 1 has applied retention (a little behind the readers' start, as the compactor
   * does); ingester 2 not yet */
  int64_t cut = now - 2 * D - H;
  ing_retention_stats st;
  cr_assert_eq(ing_apply_retention(I1.ing, cut_t, &cut, &st), RT_OK);
  cr_assert_eq(st.series, 1);
  qry_config c1 = {.ingesters = EP1, .timeout_ms = 5000};
  qry_config c2 = {.ingesters = EP2, .timeout_ms = 5000};
  qry_config c12 = {.ingesters = EP1 ", " EP2, .timeout_ms = 5000};
  cr_assert_eq(qry_create(&c1, &Q1), RT_OK);
  cr_assert_eq(qry_create(&c2, &Q2), RT_OK);
  cr_assert_eq(qry_create(&c12, &Q12), RT_OK);
}

static void teardown(void) {
  qry_destroy(Q1);
  qry_destroy(Q2);
  qry_destroy(Q12);
  qt_ing_stop(&I1);
  qt_ing_stop(&I2);
  rt_limits_shutdown();
  unlink(overrides);
}

TestSuite(retention, .init = setup, .fini = teardown);

/* "name:count:first name:count:first ..." of a select over [mint, maxt]. */
static void select_str(qry_querier *q, const char *tenant, qry_budget *b, char *out, size_t cap) {
  rt_matcher m;
  char eb[128];
  cr_assert_eq(rt_matcher_init(&m, RT_MATCH_RE, "__name__", ".+", eb, sizeof eb), RT_OK);
  qry_select_opts o = {.budget = b};
  qry_result r;
  char err[512];
  cr_assert_eq(qry_select(q, tenant, &m, 1, now - 4 * D, now, &o, &r, err, sizeof err), RT_OK,
               "%s", err);
  size_t k = 0;
  out[0] = 0;
  for (size_t i = 0; i < r.nseries; i++) {
    const qry_series *s = &r.series[i];
    k += (size_t)snprintf(out + k, cap - k, "%s%s:%zu:%lld", i ? " " : "", s->labels[0].value,
                          s->nsamples, s->nsamples ? (long long)(s->samples[0].t - now) : 0LL);
  }
  qry_result_free(&r);
  rt_matcher_fini(&m);
}

static void values_str(qry_querier *q, const char *tenant, const char *name, char *out, size_t cap) {
  qry_strings s;
  char err[512];
  cr_assert_eq(qry_label_values(q, tenant, name, NULL, NULL, 0, now - 4 * D, now, 0, &s, err,
                                sizeof err),
               RT_OK, "%s", err);
  size_t k = 0;
  out[0] = 0;
  for (size_t i = 0; i < s.n; i++) {
    k += (size_t)snprintf(out + k, cap - k, "%s%s", i ? " " : "", s.v[i]);
  }
  qry_strings_free(&s);
}

Test(retention, the_start_is_the_newest_sample_minus_the_period) {
  rt_limits l;
  rt_limits_get("t", &l);
  cr_assert_eq(l.compactor_retention_period_ms, 2 * D);
  int64_t start;
  char err[256];
  cr_assert_eq(qry_retention_start(Q12, "t", &l, &start, err, sizeof err), RT_OK, "%s", err);
  cr_assert_eq(start, now - MIN_MS - 2 * D, "the newest sample of any replica");
  rt_limits_get("u", &l);
  cr_assert_eq(qry_retention_start(Q12, "u", &l, &start, err, sizeof err), RT_OK);
  cr_assert_eq(start, INT64_MIN, "u keeps everything");
  rt_limits_get("nobody", &l);
  l.compactor_retention_period_ms = D;
  cr_assert_eq(qry_retention_start(Q12, "nobody", &l, &start, err, sizeof err), RT_OK);
  cr_assert_eq(start, INT64_MIN, "a tenant without samples has nothing to clamp");
}

Test(retention, replicas_answer_the_same) {
  /* mixed: one sample an hour from now - 3d; the start is now - 1m - 2d: the first kept sample
   * is at now - 2d + 0h (index 24), 48 of them */
  const char *want = "mixed:48:-172800000 new:1:-60000";
  char a[512], b[512], c[512];
  select_str(Q1, "t", NULL, a, sizeof a);
  select_str(Q2, "t", NULL, b, sizeof b);
  select_str(Q12, "t", NULL, c, sizeof c);
  cr_assert_str_eq(a, want, "the replica that deleted");
  cr_assert_str_eq(b, want, "the replica that did not");
  cr_assert_str_eq(c, want, "both");
  values_str(Q1, "t", "__name__", a, sizeof a);
  values_str(Q2, "t", "__name__", b, sizeof b);
  cr_assert_str_eq(a, "mixed new");
  cr_assert_str_eq(b, "mixed new");
  values_str(Q2, "t", "job", b, sizeof b);
  cr_assert_str_eq(b, "b c", "label values of the old series are gone too");
  select_str(Q12, "u", NULL, c, sizeof c);
  cr_assert_str_eq(c, "old:10:-259200000", "another tenant keeps its data");
}

Test(retention, a_runtime_change_applies_to_the_next_read) {
  char a[512], err[256];
  write_overrides("overrides:\n  t:\n    compactor_retention_period: 1d\n");
  cr_assert_eq(rt_limits_reload(err, sizeof err), RT_OK, "%s", err);
  select_str(Q12, "t", NULL, a, sizeof a);
  cr_assert_str_eq(a, "mixed:24:-86400000 new:1:-60000");
  write_overrides("overrides:\n  t:\n    compactor_retention_period: 0s\n");
  cr_assert_eq(rt_limits_reload(err, sizeof err), RT_OK, "%s", err);
  select_str(Q2, "t", NULL, a, sizeof a);
  cr_assert_str_eq(a, "mixed:72:-259200000 new:1:-60000 old:10:-259200000",
                   "0 keeps everything a replica still has");
}

Test(retention, one_query_resolves_the_start_once) {
  qry_budget *b = qry_budget_new("t", "{__name__=~\".+\"}");
  int64_t start;
  cr_assert_not(qry_budget_retention(b, &start));
  char a[512], err[256];
  select_str(Q12, "t", b, a, sizeof a);
  cr_assert(qry_budget_retention(b, &start));
  cr_assert_eq(start, now - MIN_MS - 2 * D);
  /* a change of the overrides during the query does not move its start */
  write_overrides("overrides:\n  t:\n    compactor_retention_period: 1d\n");
  cr_assert_eq(rt_limits_reload(err, sizeof err), RT_OK, "%s", err);
  select_str(Q12, "t", b, a, sizeof a);
  cr_assert_str_eq(a, "mixed:48:-172800000 new:1:-60000");
  cr_assert_eq(qry_budget_set_retention(b, 5), start, "the first value set wins");
  qry_budget_free(b);
}
