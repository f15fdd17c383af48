/* dist_http_test.c - the remote-write routes over a real HTTP server (ephemeral port), with a
 * stand-in ingester behind the RPC layer. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "common/metrics.h"
#include "common/rpc.h"
#include "distributor/distributor.h"
#include "rpc.pb-c.h"
#include "rw_helpers.h"
#include "tests/common/http_client.h"

static int calls;
static char last_tenant[200];

static rt_err ok_push(void *ctx, const uint8_t *req, size_t len, rt_buf *reply, char *errbuf, size_t errlen) {
  Ringtail__PushRequest *pr = ringtail__push_request__unpack(NULL, len, req);
  if (!pr) {
    snprintf(errbuf, errlen, "bad push");
    return RT_EPROTO;
  }
  __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
  snprintf(last_tenant, sizeof last_tenant, "%s", pr->tenant);
  Ringtail__PushResponse resp = RINGTAIL__PUSH_RESPONSE__INIT;
  for (size_t i = 0; i < pr->n_timeseries; i++) {
    resp.samples_accepted += pr->timeseries[i]->n_samples;
  }
  size_t n = ringtail__push_response__get_packed_size(&resp);
  rt_buf_reserve(reply, n + 1);
  if (reply->data) {
    ringtail__push_response__pack(&resp, (uint8_t *)reply->data);
    reply->len = n;
  }
  ringtail__push_request__free_unpacked(pr, NULL);
  (void)ctx;
  return RT_OK;
}

static const rt_rpc_method methods[] = {{"ingester.Push", ok_push}};
static rt_rpc_server *RPC;
static rt_http_server *SRV;
static rt_metrics *REG;
static dist_distributor *D;
static rt_arena *A;
static int port;

static void setup(void) {
  calls = 0;
  cr_assert_eq(rt_rpc_server_create("inproc://dist-http-ingester", methods, 1, NULL, 2, &RPC), RT_OK);
  dist_config c;
  memset(&c, 0, sizeof c);
  dist_limits_default(&c.limits);
  c.ingesters = "inproc://dist-http-ingester";
  c.timeout_ms = 5000;
  c.max_recv_msg_size = 4096;
  cr_assert_eq(dist_create(&c, &D), RT_OK);
  cr_assert_eq(rt_metrics_create(&REG), RT_OK);
  rt_http_config hc = {.listen_addr = "127.0.0.1", .port = 0, .max_body_bytes = 1 << 20, .conn_timeout_s = 5,
                       .max_conns = 16, .metrics = REG};
  cr_assert_eq(rt_http_server_create(&hc, &SRV), RT_OK);
  cr_assert_eq(dist_register(D, SRV), RT_OK);
  cr_assert_eq(rt_http_server_start(SRV), RT_OK);
  port = rt_http_server_port(SRV);
  A = rt_arena_create(0);
}

static void teardown(void) {
  rt_http_server_destroy(SRV);
  dist_destroy(D);
  rt_rpc_server_destroy(RPC);
  rt_metrics_destroy(REG);
  rt_arena_destroy(A);
}

TestSuite(http, .init = setup, .fini = teardown, .timeout = 60);

static char *good_body(size_t *len) {
  static const char *const kv[] = {"__name__", "up", "job", "node", NULL};
  int64_t ts[] = {rt_now_ms()};
  double v[] = {1};
  Prometheus__TimeSeries *s = rw_series(A, kv, ts, v, 1);
  return rw_body(rw_request(A, 1, &s), len);
}

/* POST with extra header lines (each ending in \r\n). */
static void post(const char *path, const char *headers, const void *body, size_t len, tc_resp *r) {
  size_t cap = len + 1024;
  char *req = malloc(cap);
  int n = snprintf(req, cap,
                   "POST %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: "
                   "application/x-protobuf\r\n%sContent-Length: %zu\r\n\r\n",
                   path, headers, len);
  memcpy(req + n, body, len);
  cr_assert(tc_request(port, req, (size_t)n + len, r, 5000), "no answer for %s", path);
  free(req);
}

Test(http, all_four_paths) {
  size_t n;
  char *b = good_body(&n);
  const char *paths[] = {"/api/v1/push", "/api/v1/write", "/prometheus/api/v1/push", "/prometheus/api/v1/write"};
  for (int i = 0; i < 4; i++) {
    tc_resp r;
    post(paths[i], "Content-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\n", b, n, &r);
    cr_assert_eq(r.status, 200, "%s: %d %s", paths[i], r.status, r.body);
    cr_assert_eq(r.body_len, 0);
    tc_free(&r);
  }
  cr_assert_eq(calls, 4);
  cr_assert_str_eq(last_tenant, "anonymous");
  free(b);
}

Test(http, tenant_header_and_errors_are_plain_text) {
  size_t n;
  char *b = good_body(&n);
  tc_resp r;
  post("/api/v1/push", "X-Scope-OrgID: team-1\r\n", b, n, &r);
  cr_assert_eq(r.status, 200, "%s", r.body);
  cr_assert_str_eq(last_tenant, "team-1");
  tc_free(&r);
  post("/api/v1/push", "X-Scope-OrgID: a b\r\n", b, n, &r);
  cr_assert_eq(r.status, 400);
  char ct[128];
  cr_assert_not_null(tc_header(&r, "Content-Type", ct, sizeof ct));
  cr_assert(strncmp(ct, "text/plain", 10) == 0, "%s", ct);
  cr_assert(strstr(r.body, "unsupported character ' '") != NULL, "%s", r.body);
  tc_free(&r);
  post("/api/v1/push", "Content-Encoding: gzip\r\n", b, n, &r);
  cr_assert_eq(r.status, 415, "%s", r.body);
  tc_free(&r);
  post("/api/v1/push", "", "junk", 4, &r);
  cr_assert_eq(r.status, 400);
  cr_assert(strstr(r.body, "snappy") != NULL, "%s", r.body);
  tc_free(&r);
  cr_assert_eq(calls, 1);
  free(b);
}

Test(http, body_over_the_route_limit_is_413) {
  char *big = calloc(1, 8192);
  tc_resp r;
  post("/api/v1/push", "", big, 8192, &r);
  cr_assert_eq(r.status, 413, "%d %s", r.status, r.body);
  tc_free(&r);
  free(big);
  /* and the server keeps serving */
  size_t n;
  char *b = good_body(&n);
  post("/api/v1/write", "", b, n, &r);
  cr_assert_eq(r.status, 200, "%s", r.body);
  tc_free(&r);
  free(b);
}

Test(http, get_is_not_a_push) {
  tc_resp r;
  cr_assert(tc_get(port, "/api/v1/push", &r));
  cr_assert(r.status == 405 || r.status == 404, "%d", r.status);
  tc_free(&r);
  cr_assert_eq(calls, 0);
}
