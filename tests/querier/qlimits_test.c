/* qlimits_test.c - the read-limit budget of one query: series counted once however many
 * sub-queries fetch them, bytes and samples adding up across sub-queries (from several threads),
 * range checks, the timeout, and the message naming limit, value, tenant, query and docs id. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include "common/config.h"
#include "common/limits.h"
#include "querier/querier.h"

static void init_limits(int64_t series, int64_t bytes, int64_t samples, int64_t lookback, int64_t length,
                        int64_t timeout) {
  rt_config cfg;
  rt_config_defaults(&cfg);
  rt_limits l;
  rt_limits_from_config(&cfg, &l);
  l.max_fetched_series_per_query = series;
  l.max_fetched_chunk_bytes_per_query = bytes;
  l.max_samples_per_query = samples;
  l.max_query_lookback_ms = lookback;
  l.max_query_length_ms = length;
  l.query_timeout_ms = timeout;
  char err[256];
  cr_assert_eq(rt_limits_init(&l, NULL, err, sizeof err), RT_OK);
}

static void fini(void) { rt_limits_shutdown(); }

TestSuite(qlimits, .fini = fini);

Test(qlimits, series_counted_once_across_sub_queries) {
  init_limits(4, 0, 0, 0, 0, 0);
  qry_budget *b = qry_budget_new("team-a", "sum(rate(x[5m]))");
  cr_assert(b);
  uint64_t part1[] = {1, 2, 3, 0};
  uint64_t part2[] = {0, 1, 2, 3}; /* a second split part reads the same series */
  cr_assert_eq(qry_budget_add(b, part1, 4, 0, 0), RT_OK);
  cr_assert_eq(qry_budget_add(b, part2, 4, 0, 0), RT_OK);
  char m[1024];
  cr_assert_not(qry_budget_breached(b, m, sizeof m));
  uint64_t shard[] = {99};
  cr_assert_eq(qry_budget_add(b, shard, 1, 0, 0), RT_ELIMIT);
  cr_assert(qry_budget_breached(b, m, sizeof m));
  cr_assert(strstr(m, "max_fetched_series_per_query=4"), "%s", m);
  cr_assert(strstr(m, "tenant \"team-a\""), "%s", m);
  cr_assert(strstr(m, "query \"sum(rate(x[5m]))\""), "%s", m);
  cr_assert(strstr(m, "docs/errors.md#err-ringtail-max-series-per-query"), "%s", m);
  /* after a breach every later select of the query fails at once */
  cr_assert_eq(qry_budget_check(b), RT_ELIMIT);
  cr_assert_eq(qry_budget_add(b, NULL, 0, 0, 0), RT_ELIMIT);
  qry_budget_free(b);
}

typedef struct worker {
  qry_budget *b;
  uint64_t base;
  int fails;
} worker;

static void *add_many(void *arg) {
  worker *w = arg;
  for (uint64_t i = 0; i < 1000; i++) {
    uint64_t h = w->base + i;
    if (qry_budget_add(w->b, &h, 1, 10, 1) != RT_OK) {
      w->fails++;
    }
  }
  return NULL;
}

Test(qlimits, bytes_and_samples_add_up_over_threads) {
  init_limits(0, 0, 3999, 0, 0, 0);
  qry_budget *b = qry_budget_new("t", "x");
  worker w[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (worker){b, (uint64_t)i * 1000, 0};
    pthread_create(&th[i], NULL, add_many, &w[i]);
  }
  int fails = 0;
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    fails += w[i].fails;
  }
  /* 4000 samples in all, one over: exactly the last add of all fails (and none after) */
  cr_assert_eq(fails, 1);
  char m[1024];
  cr_assert(qry_budget_breached(b, m, sizeof m));
  cr_assert(strstr(m, "max_samples_per_query=3999"), "%s", m);
  qry_budget_free(b);

  init_limits(0, 25, 0, 0, 0, 0);
  b = qry_budget_new("t", "x");
  cr_assert_eq(qry_budget_add(b, NULL, 0, 20, 0), RT_OK);
  cr_assert_eq(qry_budget_add(b, NULL, 0, 6, 0), RT_ELIMIT);
  cr_assert(qry_budget_breached(b, m, sizeof m));
  cr_assert(strstr(m, "max_fetched_chunk_bytes_per_query=25 bytes"), "%s", m);
  cr_assert(strstr(m, "err-ringtail-max-chunks-bytes-per-query"), "%s", m);
  qry_budget_free(b);
}

Test(qlimits, range_checks) {
  init_limits(0, 0, 0, 3600000, 7200000, 0);
  qry_budget *b = qry_budget_new("t", "up");
  int64_t now = rt_now_ms();
  cr_assert_geq(qry_budget_min_time(b), now - 3600000 - 1000);
  cr_assert_eq(qry_budget_check_range(b, now - 60000, now), RT_OK);
  cr_assert_eq(qry_budget_check_range(b, now - 3 * 3600000, now), RT_ELIMIT);
  char m[1024];
  cr_assert(qry_budget_breached(b, m, sizeof m));
  cr_assert(strstr(m, "query length 3h"), "%s", m);
  cr_assert(strstr(m, "max_query_length=2h"), "%s", m);
  qry_budget_free(b);
  b = qry_budget_new("t", "up");
  cr_assert_eq(qry_budget_check_range(b, now - 5400000, now - 5400000), RT_ELIMIT);
  cr_assert(qry_budget_breached(b, m, sizeof m));
  cr_assert(strstr(m, "max_query_lookback=1h"), "%s", m);
  cr_assert(strstr(m, "err-ringtail-max-query-lookback"), "%s", m);
  qry_budget_free(b);
  /* no limits: nothing checked, no floor */
  init_limits(0, 0, 0, 0, 0, 0);
  b = qry_budget_new("t", "up");
  cr_assert_eq(qry_budget_min_time(b), INT64_MIN);
  cr_assert_eq(qry_budget_check_range(b, INT64_MIN / 2, INT64_MAX / 2), RT_OK);
  uint64_t h = 1;
  cr_assert_eq(qry_budget_add(b, &h, 1, 1u << 30, 1u << 30), RT_OK);
  qry_budget_free(b);
}

Test(qlimits, timeout) {
  init_limits(0, 0, 0, 0, 0, 20);
  qry_budget *b = qry_budget_new("t", "up");
  cr_assert_eq(qry_budget_check(b), RT_OK);
  uint64_t until = rt_mono_ns() + 2000000000ull;
  while (qry_budget_check(b) == RT_OK && rt_mono_ns() < until) {
  }
  char m[1024];
  cr_assert(qry_budget_breached(b, m, sizeof m));
  cr_assert(strstr(m, "query_timeout=20ms"), "%s", m);
  cr_assert(strstr(m, "err-ringtail-query-timeout"), "%s", m);
  qry_budget_free(b);
}

Test(qlimits, long_queries_are_cut_and_quoted) {
  char q[2000];
  memset(q, 'a', sizeof q - 1);
  q[sizeof q - 1] = 0;
  q[5] = '"';
  init_limits(1, 0, 0, 0, 0, 0);
  qry_budget *b = qry_budget_new("t", q);
  uint64_t h[] = {1, 2};
  cr_assert_eq(qry_budget_add(b, h, 2, 0, 0), RT_ELIMIT);
  char m[1536];
  cr_assert(qry_budget_breached(b, m, sizeof m));
  cr_assert(strstr(m, "query \"aaaaa\\\"aaa"), "%s", m);
  cr_assert(strstr(m, "err-ringtail-max-series-per-query"), "%s", m);
  cr_assert_lt(strlen(m), 700);
  qry_budget_free(b);
}
