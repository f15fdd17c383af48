/* ing_ha_test.c - the HA-pair arbiter: its rule and its table of (tenant, cluster) records. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "ingester/ing_ha.h"

Test(ing_ha, rule) {
  /* no record: elect */
  cr_assert_eq(ing_ha_rule(false, NULL, 0, "a", 100, 1000), ING_HA_ELECT);
  /* the elected replica refreshes, however old */
  cr_assert_eq(ing_ha_rule(true, "a", 0, "a", 99999, 1000), ING_HA_REFRESH);
  /* another replica: kept until strictly older than the timeout */
  cr_assert_eq(ing_ha_rule(true, "a", 1000, "b", 2000, 1000), ING_HA_KEEP);
  cr_assert_eq(ing_ha_rule(true, "a", 1000, "b", 2001, 1000), ING_HA_ELECT);
}

static const char *elect(ing_ha *h, const char *t, const char *c, const char *r, int64_t now,
                         rt_buf *b, bool *refreshed) {
  cr_assert_eq(ing_ha_elect(h, t, c, r, 1000, now, b, refreshed), RT_OK);
  return b->data ? b->data : "";
}

Test(ing_ha, table) {
  ing_ha *h;
  cr_assert_eq(ing_ha_create(true, 0, &h), RT_OK);
  rt_buf b = RT_BUF_INIT;
  bool rf;
  /* start-up wait: abstains, but learns who keeps sending */
  cr_assert_str_eq(elect(h, "t1", "c1", "a", 500, &b, &rf), "");
  cr_assert(!rf);
  cr_assert_eq(ing_ha_records(h), 1);
  cr_assert_str_eq(elect(h, "t1", "c1", "b", 600, &b, &rf), "");
  cr_assert_str_eq(elect(h, "t1", "c1", "a", 999, &b, &rf), "");
  /* after it: the replica learnt in the wait, refreshed at 999 */
  cr_assert_str_eq(elect(h, "t1", "c1", "a", 1000, &b, &rf), "a");
  cr_assert(rf);
  cr_assert_str_eq(elect(h, "t1", "c1", "b", 1500, &b, &rf), "a");
  cr_assert(!rf);
  /* a refreshes at 1800: b can not take over at 2500 (700 ms), can at 2801 */
  cr_assert_str_eq(elect(h, "t1", "c1", "a", 1800, &b, &rf), "a");
  cr_assert(rf);
  cr_assert_str_eq(elect(h, "t1", "c1", "b", 2800, &b, &rf), "a");
  cr_assert_str_eq(elect(h, "t1", "c1", "b", 2801, &b, &rf), "b");
  cr_assert(rf);
  cr_assert_str_eq(elect(h, "t1", "c1", "a", 2900, &b, &rf), "b");
  /* tenants and clusters are separate records; the same cluster name in another tenant too */
  cr_assert_str_eq(elect(h, "t2", "c1", "x", 3000, &b, &rf), "x");
  cr_assert_str_eq(elect(h, "t1", "c2", "y", 3000, &b, &rf), "y");
  cr_assert_str_eq(elect(h, "t1", "c1", "x", 3000, &b, &rf), "b");
  cr_assert_eq(ing_ha_records(h), 3);
  cr_assert_eq(ing_ha_elections(h), 4);
  /* many clusters: the table grows and keeps every record */
  char c[32];
  for (int i = 0; i < 1000; i++) {
    snprintf(c, sizeof c, "cl-%d", i);
    cr_assert_str_eq(elect(h, "t3", c, i % 2 ? "odd" : "even", 3000, &b, &rf), i % 2 ? "odd" : "even");
  }
  for (int i = 0; i < 1000; i++) {
    snprintf(c, sizeof c, "cl-%d", i);
    cr_assert_str_eq(elect(h, "t3", c, "z", 3500, &b, &rf), i % 2 ? "odd" : "even");
  }
  cr_assert_eq(ing_ha_records(h), 1003);
  /* a minute later the stale records are swept; asking again elects the asker */
  cr_assert_str_eq(elect(h, "t3", "cl-1", "z", 70000, &b, &rf), "z");
  cr_assert_eq(ing_ha_records(h), 1);
  /* bad questions */
  cr_assert_eq(ing_ha_elect(h, "", "c", "r", 1000, 70000, &b, NULL), RT_EINVAL);
  cr_assert_eq(ing_ha_elect(h, "t", "", "r", 1000, 70000, &b, NULL), RT_EINVAL);
  cr_assert_eq(ing_ha_elect(h, "t", "c", "", 1000, 70000, &b, NULL), RT_EINVAL);
  cr_assert_eq(ing_ha_elect(h, "t", "c", "r", 0, 70000, &b, NULL), RT_EINVAL);
  rt_buf_free(&b);
  ing_ha_destroy(h);
}

Test(ing_ha, no_startup_wait) {
  ing_ha *h;
  cr_assert_eq(ing_ha_create(false, 0, &h), RT_OK);
  rt_buf b = RT_BUF_INIT;
  cr_assert_str_eq(elect(h, "t1", "c1", "a", 1, &b, NULL), "a");
  rt_buf_free(&b);
  ing_ha_destroy(h);
}
