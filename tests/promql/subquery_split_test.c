/* subquery_split_test.c - range splitting and series sharding against the plain evaluation,
 * over in-memory storages: parts and shards are really used, and the answers are the same. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "promql/shard.h"
#include "promql/split.h"

#define NSHARDS 4
#define T0 1700000000000LL /* 2023-11-14T22:13:20Z: a range of a few hours crosses midnight */

static pql_memstore *all, *shard[NSHARDS];
static atomic_int calls[NSHARDS + 1];

static void setup(void) {
  all = pql_memstore_create();
  for (int k = 0; k < NSHARDS; k++) {
    shard[k] = pql_memstore_create();
  }
  char inst[16], job[16];
  for (int s = 0; s < 40; s++) {
    snprintf(inst, sizeof inst, "i%d", s);
    snprintf(job, sizeof job, "j%d", s % 3);
    rt_label l[] = {{"__name__", "req_total"}, {"instance", inst}, {"job", job}};
    int k = s % NSHARDS; /* the ingesters use a hash; any partition will do here */
    for (int i = 0; i < 1200; i++) {
      double v = (double)i * (s + 1) + (s == 7 && i > 600 ? -1e6 : 0);
      cr_assert_eq(pql_memstore_add(all, l, 3, T0 + i * 15000LL, v), RT_OK);
      cr_assert_eq(pql_memstore_add(shard[k], l, 3, T0 + i * 15000LL, v), RT_OK);
    }
  }
  for (int k = 0; k <= NSHARDS; k++) {
    atomic_store(&calls[k], 0);
  }
}

static void teardown(void) {
  pql_memstore_destroy(all);
  for (int k = 0; k < NSHARDS; k++) {
    pql_memstore_destroy(shard[k]);
  }
}

TestSuite(subq, .init = setup, .fini = teardown);

static rt_err get_all(void *ctx, const char *tenant, pql_storage *out) {
  (void)ctx;
  (void)tenant;
  atomic_fetch_add(&calls[NSHARDS], 1);
  *out = pql_memstore_storage(all);
  return RT_OK;
}

static rt_err get_shard(void *ctx, const char *tenant, uint32_t index, uint32_t count, pql_storage *out) {
  (void)ctx;
  (void)tenant;
  if (count == 0) {
    return get_all(NULL, tenant, out);
  }
  cr_assert_eq(count, NSHARDS);
  cr_assert_lt(index, NSHARDS);
  atomic_fetch_add(&calls[index], 1);
  *out = pql_memstore_storage(shard[index]);
  return RT_OK;
}

static pql_expr *parse(const char *q) {
  pql_expr *e;
  char eb[256];
  cr_assert_eq(pql_parse(q, &e, eb, sizeof eb), RT_OK, "%s: %s", q, eb);
  return e;
}

static void same(const pql_result *a, const pql_result *b, const char *q) {
  cr_assert_null(a->error, "%s: %s", q, a->error);
  cr_assert_null(b->error, "%s: %s", q, b->error);
  cr_assert_eq(a->type, b->type, "%s", q);
  cr_assert_eq(a->nseries, b->nseries, "%s: %zu series plain, %zu split", q, a->nseries, b->nseries);
  cr_assert_gt(a->nseries, 0, "%s: empty answer", q);
  for (size_t i = 0; i < a->nseries; i++) {
    const pql_series *x = &a->series[i], *y = &b->series[i];
    cr_assert_eq(rt_labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels), 0, "%s: series %zu", q, i);
    cr_assert_eq(x->npoints, y->npoints, "%s: series %zu: %zu points plain, %zu split", q, i, x->npoints,
                 y->npoints);
    for (size_t k = 0; k < x->npoints; k++) {
      cr_assert_eq(x->points[k].t, y->points[k].t, "%s", q);
      cr_assert(x->points[k].v == y->points[k].v || (isnan(x->points[k].v) && isnan(y->points[k].v)),
                "%s: series %zu at %lld: %g plain, %g split", q, i, (long long)x->points[k].t, x->points[k].v,
                y->points[k].v);
    }
  }
}

Test(subq, range_split_at_utc_days_equals_plain) {
  const char *qs[] = {"rate(req_total[5m])", "sum by (job) (increase(req_total[10m]))",
                      "max_over_time(req_total[1h]) - req_total offset 5m", "req_total > 1000"};
  int64_t start = T0 + 600000, end = T0 + 1199 * 15000LL, step = 60000, day = 86400000;
  /* 01:00 UTC boundaries every hour make several parts; the 24h split makes two */
  int64_t ivs[] = {day, 3600000, 60000};
  for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
    for (size_t v = 0; v < sizeof ivs / sizeof ivs[0]; v++) {
      pql_expr *e = parse(qs[i]);
      cr_assert(pql_split_applies(e, start, end, step, ivs[v]), "%s", qs[i]);
      pql_storage st = pql_memstore_storage(all);
      pql_result *plain;
      cr_assert_eq(pql_eval(&st, NULL, e, start, end, step, true, &plain), RT_OK);
      atomic_store(&calls[NSHARDS], 0);
      pql_split_src src = {get_all, NULL, NULL, "t"};
      pql_split *sp;
      cr_assert_eq(pql_split_eval(&src, NULL, e, start, end, step, ivs[v], &sp), RT_OK);
      int parts = atomic_load(&calls[NSHARDS]);
      if (ivs[v] == day) {
        cr_expect_eq(parts, 2, "%s: %d parts for a range over one midnight", qs[i], parts);
      } else {
        cr_expect_gt(parts, 4, "%s: only %d parts", qs[i], parts);
      }
      same(plain, pql_split_result(sp), qs[i]);
      pql_split_free(sp);
      pql_result_free(plain);
      pql_expr_free(e);
    }
  }
}

Test(subq, not_split_when_the_query_depends_on_its_range) {
  int64_t start = T0, end = T0 + 7200000;
  pql_expr *e = parse("req_total @ start()");
  cr_expect_not(pql_split_applies(e, start, end, 60000, 60000));
  pql_expr_free(e);
  e = parse("req_total");
  cr_expect_not(pql_split_applies(e, start, start + 30000, 60000, 3600000), "a single part is not split");
  cr_expect_not(pql_split_applies(e, start, end, 60000, 0), "interval 0 disables");
  pql_expr_free(e);
}

Test(subq, which_aggregations_shard) {
  const char *yes[] = {"sum by (job) (rate(req_total[5m]))", "count(req_total)", "(max without (instance) (req_total))",
                       "avg by (job) (clamp_min(req_total * 2, 3))", "topk(3, rate(req_total[5m]))",
                       "group by (job) (max_over_time(req_total[5m:1m]))"};
  const char *no[] = {"sum(req_total / on(job) group_left other)", "sum(sum by (job) (req_total))",
                      "sum(label_replace(req_total, \"a\", \"b\", \"c\", \"d\"))", "sum({job=\"j1\"})",
                      "topk(scalar(x), req_total)", "quantile(0.5, req_total) + 1", "rate(req_total[5m])",
                      "count_values(\"v\", req_total)", "sum(histogram_quantile(0.9, req_total))"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    pql_expr *e = parse(yes[i]);
    cr_expect(pql_shard_applies(e), "%s should shard", yes[i]);
    pql_expr_free(e);
  }
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
    pql_expr *e = parse(no[i]);
    cr_expect_not(pql_shard_applies(e), "%s should not shard", no[i]);
    pql_expr_free(e);
  }
}

Test(subq, sharded_aggregations_equal_plain) {
  const char *qs[] = {"sum by (job) (rate(req_total[5m]))", "count(req_total)", "max without (instance) (req_total)",
                      "avg by (job) (req_total)",           "topk(3, rate(req_total[5m]))",
                      "bottomk by (job) (2, req_total)",    "stddev(deriv(req_total[10m]))",
                      "quantile(0.9, req_total)",           "min(resets(req_total[1h]))",
                      "group by (job) (req_total)"};
  for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
    for (int range = 0; range < 2; range++) {
      int64_t start = T0 + 3600000, end = range ? T0 + 3 * 3600000 : start, step = range ? 60000 : 0;
      pql_expr *e = parse(qs[i]);
      cr_assert(pql_shard_applies(e), "%s", qs[i]);
      pql_storage st = pql_memstore_storage(all);
      pql_result *plain;
      cr_assert_eq(pql_eval(&st, NULL, e, start, end, step, range, &plain), RT_OK);
      for (int k = 0; k <= NSHARDS; k++) {
        atomic_store(&calls[k], 0);
      }
      pql_shard_src src = {get_shard, NULL, NULL, "t"};
      pql_shard *sh;
      cr_assert_eq(pql_shard_eval(&src, NULL, e, start, end, step, range, NSHARDS, &sh), RT_OK);
      for (int k = 0; k < NSHARDS; k++) {
        cr_expect_eq(atomic_load(&calls[k]), 1, "%s: shard %d used %d times", qs[i], k, atomic_load(&calls[k]));
      }
      cr_expect_eq(atomic_load(&calls[NSHARDS]), 0, "%s: fell back to the unsharded evaluation", qs[i]);
      same(plain, pql_shard_result(sh), qs[i]);
      pql_shard_free(sh);
      pql_result_free(plain);
      pql_expr_free(e);
    }
  }
}

Test(subq, split_parts_sharded_equal_plain) {
  const char *q = "sum by (job) (rate(req_total[5m]))";
  int64_t start = T0 + 600000, end = T0 + 1199 * 15000LL, step = 60000;
  pql_expr *e = parse(q);
  pql_storage st = pql_memstore_storage(all);
  pql_result *plain;
  cr_assert_eq(pql_eval(&st, NULL, e, start, end, step, true, &plain), RT_OK);
  pql_shard_src shsrc = {get_shard, NULL, NULL, "t"};
  pql_split_src src = {get_all, NULL, NULL, "t", &shsrc, NSHARDS};
  pql_split *sp;
  cr_assert_eq(pql_split_eval(&src, NULL, e, start, end, step, 3600000, &sp), RT_OK);
  for (int k = 0; k < NSHARDS; k++) {
    cr_expect_gt(atomic_load(&calls[k]), 4, "shard %d used in only %d parts", k, atomic_load(&calls[k]));
  }
  cr_expect_eq(atomic_load(&calls[NSHARDS]), 0, "a part was evaluated unsharded");
  same(plain, pql_split_result(sp), q);
  pql_split_free(sp);
  pql_result_free(plain);
  pql_expr_free(e);
}
