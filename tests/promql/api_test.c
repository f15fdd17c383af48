/* api_test.c - the PromQL HTTP API over a real HTTP server with the in-memory store. */
#include <criterion/criterion.h>
#include <string.h>

#include "common/http.h"
#include "promql/promql.h"
#include "tests/common/http_client.h"

static pql_memstore *ms;
static rt_http_server *srv;
static pql_api *api;
static int port;

static rt_err mem_for(void *ctx, const char *tenant, pql_storage *out) {
  (void)tenant;
  *out = pql_memstore_storage(ctx);
  return RT_OK;
}

static void setup(void) {
  ms = pql_memstore_create();
  cr_assert_not_null(ms);
  rt_label l1[] = {{"__name__", "up"}, {"job", "a"}};
  rt_label l2[] = {{"__name__", "up"}, {"job", "b"}};
  for (int i = 0; i <= 20; i++) {
    cr_assert_eq(pql_memstore_add(ms, l1, 2, 1700000000000LL + i * 15000, i), RT_OK);
    cr_assert_eq(pql_memstore_add(ms, l2, 2, 1700000000000LL + i * 15000, 0.5), RT_OK);
  }
  rt_http_config hc = {.listen_addr = "127.0.0.1", .port = 0, .max_body_bytes = 1 << 20, .conn_timeout_s = 10,
                       .max_conns = 16};
  cr_assert_eq(rt_http_server_create(&hc, &srv), RT_OK);
  pql_api_backend be = {.storage_for = mem_for, .ctx = ms};
  cr_assert_eq(pql_api_register(srv, &be, &api), RT_OK);
  cr_assert_eq(rt_http_server_start(srv), RT_OK);
  port = rt_http_server_port(srv);
}

static void teardown(void) {
  rt_http_server_destroy(srv);
  pql_api_destroy(api);
  pql_memstore_destroy(ms);
}

TestSuite(api, .init = setup, .fini = teardown);

Test(api, instant_vector) {
  tc_resp r;
  cr_assert(tc_get(port, "/api/v1/query?query=sum%20by%20(job)%20(up)&time=1700000300", &r));
  cr_expect_eq(r.status, 200, "%s", r.body);
  cr_expect_str_eq(r.body,
                   "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
                   "{\"metric\":{\"job\":\"a\"},\"value\":[1700000300,\"20\"]},"
                   "{\"metric\":{\"job\":\"b\"},\"value\":[1700000300,\"0.5\"]}]}}");
  tc_free(&r);
}

Test(api, limit_truncates_with_a_warning) {
  tc_resp r;
  cr_assert(tc_get(port, "/api/v1/query?query=up&time=1700000300&limit=1", &r));
  cr_expect_eq(r.status, 200, "%s", r.body);
  cr_expect(strstr(r.body, "\"job\":\"a\"") != NULL, "%s", r.body);
  cr_expect(strstr(r.body, "\"job\":\"b\"") == NULL, "%s", r.body);
  cr_expect(strstr(r.body, "\"warnings\":[\"results truncated due to limit\"]") != NULL, "%s", r.body);
  tc_free(&r);
}

Test(api, stats) {
  tc_resp r;
  cr_assert(tc_get(port, "/api/v1/query?query=sum(up)&time=1700000300&stats=all", &r));
  cr_expect_eq(r.status, 200, "%s", r.body);
  cr_expect(strstr(r.body, "\"stats\":{\"timings\":{\"evalTotalTime\":") != NULL, "%s", r.body);
  cr_expect(strstr(r.body, "\"totalQueryableSamples\":") != NULL, "%s", r.body);
  tc_free(&r);
}

Test(api, scalar_and_string) {
  tc_resp r;
  cr_assert(tc_get(port, "/prometheus/api/v1/query?query=1%2F0&time=1.5", &r));
  cr_expect_str_eq(r.body, "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1.500,\"+Inf\"]}}");
  tc_free(&r);
  cr_assert(tc_post(port, "/api/v1/query", "application/x-www-form-urlencoded", "query=%22x%22&time=10", 21, &r));
  cr_expect_str_eq(r.body, "{\"status\":\"success\",\"data\":{\"resultType\":\"string\",\"result\":[10,\"x\"]}}");
  tc_free(&r);
}

Test(api, range) {
  tc_resp r;
  cr_assert(tc_get(port, "/api/v1/query_range?query=up%7Bjob%3D%22b%22%7D&start=1700000000&end=1700000030&step=15s", &r));
  cr_expect_eq(r.status, 200);
  cr_expect_str_eq(r.body,
                   "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
                   "{\"metric\":{\"__name__\":\"up\",\"job\":\"b\"},\"values\":[[1700000000,\"0.5\"],"
                   "[1700000015,\"0.5\"],[1700000030,\"0.5\"]]}]}}");
  tc_free(&r);
}

Test(api, errors) {
  tc_resp r;
  cr_assert(tc_get(port, "/api/v1/query?query=up%2B", &r));
  cr_expect_eq(r.status, 400);
  cr_expect(strstr(r.body, "\"errorType\":\"bad_data\"") != NULL, "%s", r.body);
  cr_expect(strstr(r.body, "invalid parameter \\\"query\\\": 1:4: parse error") != NULL, "%s", r.body);
  tc_free(&r);
  cr_assert(tc_get(port, "/api/v1/query_range?query=up&start=0&end=100000&step=1", &r));
  cr_expect_eq(r.status, 400);
  cr_expect(strstr(r.body, "exceeded maximum resolution of 11,000 points per timeseries") != NULL, "%s", r.body);
  tc_free(&r);
  cr_assert(tc_get(port, "/api/v1/query_range?query=up&start=10&end=0&step=1", &r));
  cr_expect(strstr(r.body, "end timestamp must not be before start time") != NULL, "%s", r.body);
  tc_free(&r);
  cr_assert(tc_get(port, "/api/v1/query?query=label_replace(up,%22job%22,%22x%22,%22job%22,%22.*%22)&time=1700000300", &r));
  cr_expect_eq(r.status, 422, "%s", r.body);
  cr_expect(strstr(r.body, "vector cannot contain metrics with the same labelset") != NULL, "%s", r.body);
  tc_free(&r);
}

Test(api, format_and_parse) {
  tc_resp r;
  cr_assert(tc_get(port, "/api/v1/format_query?query=sum(up)by(job)", &r));
  cr_expect_str_eq(r.body, "{\"status\":\"success\",\"data\":\"sum by (job) (up)\"}");
  tc_free(&r);
  cr_assert(tc_get(port, "/api/v1/parse_query?query=-up", &r));
  cr_expect_eq(r.status, 200);
  cr_expect(strstr(r.body, "\"type\":\"unaryExpr\"") != NULL, "%s", r.body);
  tc_free(&r);
}

/* Native histograms answer as Prometheus' "histogram"/"histograms" objects. */
Test(api, native_histograms) {
  rt_label l[] = {{"__name__", "lat"}, {"job", "a"}};
  int32_t pi[] = {0, 1}, ni[] = {0};
  double pb[] = {1, 2}, nb[] = {1};
  for (int i = 0; i < 3; i++) {
    pql_hist h = {.schema = 0, .zt = 0.001, .zc = 1, .count = 5 + i, .sum = 10, .np = 2, .nn = 1,
                  .pi = pi, .pb = pb, .ni = ni, .nb = nb};
    cr_assert_eq(pql_memstore_add_hist(ms, l, 2, 1700000000000LL + i * 60000, &h), RT_OK);
  }
  tc_resp r;
  cr_assert(tc_get(port, "/api/v1/query?query=lat&time=1700000060", &r));
  cr_expect_eq(r.status, 200, "%s", r.body);
  cr_expect_str_eq(r.body,
                   "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
                   "{\"metric\":{\"__name__\":\"lat\",\"job\":\"a\"},\"histogram\":[1700000060,{\"count\":\"6\","
                   "\"sum\":\"10\",\"buckets\":[[1,\"-1\",\"-0.5\",\"1\"],[3,\"-0.001\",\"0.001\",\"1\"],"
                   "[0,\"0.5\",\"1\",\"1\"],[0,\"1\",\"2\",\"2\"]]}]}]}}");
  tc_free(&r);
  cr_assert(tc_get(port, "/api/v1/query?query=histogram_count(lat)&time=1700000120", &r));
  cr_expect_str_eq(r.body,
                   "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
                   "{\"metric\":{\"job\":\"a\"},\"value\":[1700000120,\"7\"]}]}}");
  tc_free(&r);
  cr_assert(tc_get(port, "/api/v1/query_range?query=sum(lat)&start=1700000060&end=1700000120&step=60", &r));
  cr_expect_eq(r.status, 200, "%s", r.body);
  cr_expect(strstr(r.body, "\"histograms\":[[1700000060,{\"count\":\"6\"") != NULL, "%s", r.body);
  cr_expect(strstr(r.body, "[1700000120,{\"count\":\"7\"") != NULL, "%s", r.body);
  cr_expect(strstr(r.body, "\"values\"") == NULL, "%s", r.body);
  tc_free(&r);
}
