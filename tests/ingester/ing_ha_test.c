/* ing_ha_test.c - the HA-pair arbiter: its rule, its table of (tenant, cluster) records, and
 * ingester.HaElect over RPC (start-up wait, bad questions). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "common/rpc.h"
#include "ing_util.h"
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

/* ---------------------------------------------------------------- over RPC */

static rt_err ha_call(rt_rpc_client *c, const char *tenant, const char *cluster,
                      const char *replica, int64_t timeout_ms, Ringtail__HaElectResponse **out,
                      char *eb, size_t eblen) {
  Ringtail__HaElectRequest rq;
  ringtail__ha_elect_request__init(&rq);
  rq.tenant = (char *)tenant;
  rq.cluster = (char *)cluster;
  rq.replica = (char *)replica;
  rq.failover_timeout_ms = timeout_ms;
  uint8_t b[256];
  size_t n = ringtail__ha_elect_request__pack(&rq, b);
  rt_buf reply = RT_BUF_INIT;
  rt_err e = rt_rpc_call(c, "ingester.HaElect", b, n, 5000, &reply, eb, eblen);
  *out = e == RT_OK ? ringtail__ha_elect_response__unpack(NULL, reply.len, (uint8_t *)reply.data)
                    : NULL;
  rt_buf_free(&reply);
  return e;
}

static void over_rpc(bool no_wait, const char *ep) {
  char *dir = tu_tmpdir();
  ing_config cfg = tu_cfg(dir);
  cfg.ha_no_startup_wait = no_wait;
  ing_ingester *ing;
  cr_assert_eq(ing_create(&cfg, &ing), RT_OK);
  cr_assert_eq(ing_serve(ing, ep, 2), RT_OK);
  rt_rpc_client *c;
  cr_assert_eq(rt_rpc_client_create(ep, &c), RT_OK);
  char eb[256];
  Ringtail__HaElectResponse *r;
  cr_assert_eq(ha_call(c, "t", "c1", "a", 60000, &r, eb, sizeof eb), RT_OK, "%s", eb);
  cr_assert_not_null(r);
  /* with the start-up wait, a fresh arbiter abstains for the whole (60 s) timeout */
  cr_assert_str_eq(r->elected, no_wait ? "a" : "");
  cr_assert_eq(r->refreshed, no_wait);
  ringtail__ha_elect_response__free_unpacked(r, NULL);
  cr_assert_eq(ha_call(c, "t", "c1", "b", 60000, &r, eb, sizeof eb), RT_OK, "%s", eb);
  cr_assert_str_eq(r->elected, no_wait ? "a" : "");
  cr_assert(!r->refreshed);
  ringtail__ha_elect_response__free_unpacked(r, NULL);
  /* bad questions: a clear error, the service goes on */
  cr_assert_eq(ha_call(c, "t", "", "a", 60000, &r, eb, sizeof eb), RT_EINVAL);
  cr_assert(strstr(eb, "HaElect needs"), "%s", eb);
  cr_assert_eq(ha_call(c, "t", "c1", "a", -5, &r, eb, sizeof eb), RT_EINVAL);
  rt_buf reply = RT_BUF_INIT;
  cr_assert_eq(rt_rpc_call(c, "ingester.HaElect", "\xff\xff\xff", 3, 5000, &reply, eb, sizeof eb),
               RT_EPROTO);
  cr_assert(strstr(eb, "malformed"), "%s", eb);
  rt_buf_free(&reply);
  ing_stats st;
  ing_get_stats(ing, &st);
  cr_assert_eq(st.ha_records, 1);
  cr_assert_eq(st.ha_elections, 1);
  rt_rpc_client_destroy(c);
  ing_destroy(ing);
  tu_rm_rf(dir);
  free(dir);
}

Test(ing_ha, rpc_no_startup_wait) { over_rpc(true, "inproc://ing-ha-test-1"); }
Test(ing_ha, rpc_startup_wait) { over_rpc(false, "inproc://ing-ha-test-2"); }
