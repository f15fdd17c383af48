/* http_test.c - /ring over real HTTP: HTML, JSON, forget. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "common/http.h"
#include "common/metrics.h"
#include "ring/ring.h"
#include "tests/common/http_client.h"

Test(ring_http, page_json_and_forget) {
  rt_metrics *reg;
  cr_assert_eq(rt_metrics_create(&reg), RT_OK);
  rt_http_config cfg = {.listen_addr = "127.0.0.1", .port = 0, .max_body_bytes = 1024,
                        .conn_timeout_s = 2, .max_conns = 16, .metrics = reg};
  rt_http_server *srv;
  cr_assert_eq(rt_http_server_create(&cfg, &srv), RT_OK);
  ring_config rc;
  ring_config_defaults(&rc);
  rc.instance_id = "ing-<a>";
  rc.zone = "a";
  rc.http_addr = "127.0.0.1:9009";
  rc.num_tokens = 16;
  rc.metrics = reg;
  char err[256];
  ring *r;
  cr_assert_eq(ring_create(&rc, &r, err, sizeof err), RT_OK, "%s", err);
  cr_assert_eq(ring_set_state(r, RING_ACTIVE), RT_OK);
  cr_assert_eq(ring_http_register(r, srv), RT_OK);
  cr_assert_eq(rt_http_server_start(srv), RT_OK);
  int port = rt_http_server_port(srv);

  tc_resp resp;
  rt_buf m0 = RT_BUF_INIT;
  rt_metrics_expose(reg, &m0);
  cr_assert(strstr(m0.data, "ringtail_ring_members{state=\"ACTIVE\"} 1"), "%s", m0.data);
  cr_assert(strstr(m0.data, "ringtail_ring_tokens 16"), "%s", m0.data);
  rt_buf_free(&m0);

  cr_assert(tc_get(port, "/ring", &resp));
  cr_assert_eq(resp.status, 200, "%s", resp.head);
  char ct[128];
  cr_assert(tc_header(&resp, "Content-Type", ct, sizeof ct) && strstr(ct, "text/html"), "%s", ct);
  cr_assert(strstr(resp.body, "ing-&lt;a&gt;"), "%s", resp.body);
  cr_assert(strstr(resp.body, "name=\"forget\""));
  tc_free(&resp);

  cr_assert(tc_get(port, "/ring?format=json", &resp));
  cr_assert_eq(resp.status, 200);
  cr_assert(strstr(resp.body, "\"state\":\"ACTIVE\""), "%s", resp.body);
  cr_assert(strstr(resp.body, "\"tokens\":16"), "%s", resp.body);
  tc_free(&resp);

  const char *req = "GET /ring HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n"
                    "Connection: close\r\n\r\n";
  cr_assert(tc_request(port, req, strlen(req), &resp, 5000));
  cr_assert_eq(resp.status, 200);
  cr_assert_eq(resp.body[0], '{', "%s", resp.body);
  tc_free(&resp);

  cr_assert(tc_post(port, "/ring", "application/x-www-form-urlencoded", "forget=nobody", 13, &resp));
  cr_assert_eq(resp.status, 404, "%s", resp.body);
  cr_assert(strstr(resp.body, "nobody is not in the ring"), "%s", resp.body);
  tc_free(&resp);
  cr_assert(tc_post(port, "/ring", "application/x-www-form-urlencoded", "x=1", 3, &resp));
  cr_assert_eq(resp.status, 400, "%s", resp.body);
  tc_free(&resp);

  cr_assert(tc_post(port, "/ring", "application/x-www-form-urlencoded", "forget=ing-%3Ca%3E",
                    18, &resp));
  cr_assert_eq(resp.status, 303, "%s %s", resp.head, resp.body);
  char loc[64];
  cr_assert(tc_header(&resp, "Location", loc, sizeof loc));
  cr_assert_str_eq(loc, "/ring");
  tc_free(&resp);
  ring_snapshot *s = ring_snapshot_acquire(r);
  cr_assert_eq(ring_snapshot_count(s), 0, "forgotten (its own instance: no re-registration)");
  ring_snapshot_release(s);

  rt_buf m = RT_BUF_INIT;
  rt_metrics_expose(reg, &m);
  cr_assert(strstr(m.data, "ringtail_ring_members{state=\"ACTIVE\"} 0"), "%s", m.data);
  cr_assert(strstr(m.data, "ringtail_ring_snapshots_total"), "%s", m.data);
  rt_buf_free(&m);

  rt_http_server_destroy(srv);
  ring_destroy(r);
  rt_metrics_destroy(reg);
}
