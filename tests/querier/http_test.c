/* http_test.c - the read API over a real HTTP server on an ephemeral port, backed by a real
 * ingester: GET, POST form bodies, parameters in the URL of a POST, the /prometheus prefix,
 * URL encoding, the tenant header and error answers. */
#include "../common/http_client.h"
#include "common/http.h"
#include "common/log.h"
#include "qry_util.h"

#define EP "inproc://qry-http-ing"

static qt_ing I;
static qry_querier *Q;
static rt_http_server *S;
static int port;

static void setup(void) {
  rt_log_set_level(RT_LOG_WARN);
  qt_ing_start(&I, EP);
  qt_push(&I, "anonymous", "__name__=up,instance=i1,job=a", 1000, 1000, 5, 1, 1);
  qt_push(&I, "anonymous", "__name__=up,instance=i1,job=ab", 1000, 1000, 1, 1, 0);
  qt_push(&I, "anonymous", "__name__=up,instance=i2,job=b", 1000, 1000, 1, 1, 0);
  qt_push(&I, "team-2", "__name__=dotted,host.name=h1", 1000, 1000, 1, 1, 0);
  qt_push(&I, "team-1", "__name__=requests_total,job=api", 1000, 1000, 1, 7, 0);
  qt_push_meta(&I, "anonymous", "up", PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE,
               "The scrape's health.", "");
  qry_config qc = {.ingesters = EP, .timeout_ms = 5000};
  cr_assert_eq(qry_create(&qc, &Q), RT_OK);
  rt_http_config hc = {.listen_addr = "127.0.0.1", .port = 0, .max_body_bytes = 1 << 20,
                       .conn_timeout_s = 5, .max_conns = 64};
  cr_assert_eq(rt_http_server_create(&hc, &S), RT_OK);
  cr_assert_eq(qry_register(Q, S), RT_OK);
  cr_assert_eq(rt_http_server_start(S), RT_OK);
  port = rt_http_server_port(S);
  cr_assert_gt(port, 0);
}

static void teardown(void) {
  rt_http_server_destroy(S);
  qry_destroy(Q);
  qt_ing_stop(&I);
}

TestSuite(http, .init = setup, .fini = teardown);

#define OK(data) "{\"status\":\"success\",\"data\":" data "}"
#define UP_A "{\"__name__\":\"up\",\"instance\":\"i1\",\"job\":\"a\"}"
#define UP_AB "{\"__name__\":\"up\",\"instance\":\"i1\",\"job\":\"ab\"}"
#define UP_B "{\"__name__\":\"up\",\"instance\":\"i2\",\"job\":\"b\"}"

static void expect(const tc_resp *r, int status, const char *body) {
  cr_assert_eq(r->status, status, "status %d, body %s", r->status, r->body ? r->body : "");
  cr_assert_str_eq(r->body, body);
  char ct[128];
  cr_assert_not_null(tc_header(r, "Content-Type", ct, sizeof ct));
  cr_assert_str_eq(ct, "application/json");
}

static void get(const char *path, int status, const char *body) {
  tc_resp r;
  cr_assert(tc_get(port, path, &r), "GET %s", path);
  expect(&r, status, body);
  tc_free(&r);
}

static void post(const char *path, const char *form, int status, const char *body) {
  tc_resp r;
  cr_assert(tc_post(port, path, "application/x-www-form-urlencoded", form, strlen(form), &r),
            "POST %s", path);
  expect(&r, status, body);
  tc_free(&r);
}

Test(http, series_get_post_and_prefix) {
  const char *all = OK("[" UP_A "," UP_AB "," UP_B "]");
  get("/api/v1/series?match[]=up", 200, all);
  get("/prometheus/api/v1/series?match%5B%5D=up", 200, all);
  post("/api/v1/series", "match[]=up", 200, all);
  post("/prometheus/api/v1/series", "match%5B%5D=up", 200, all);
  /* a POST may carry its parameters in the URL */
  post("/api/v1/series?match[]=up", "", 200, all);
  post("/api/v1/series?match[]=up%7Bjob%3D%22b%22%7D", "limit=5", 200, OK("[" UP_B "]"));
  /* URL-encoded selector with an anchored regex */
  get("/api/v1/series?match[]=up%7Bjob%3D~%22a%22%7D", 200, OK("[" UP_A "]"));
  get("/api/v1/series?match[]=%7Bjob%3D~%22a.%2A%22%2Cinstance%21%3D%22i2%22%7D", 200,
      OK("[" UP_A "," UP_AB "]"));
  post("/api/v1/series", "match[]=up&limit=1", 200,
       "{\"status\":\"success\",\"data\":[" UP_A "],\"warnings\":[\"results truncated due to limit\"]}");
  get("/api/v1/series?match[]=up&start=6&end=10", 200, OK("[]"));
  get("/api/v1/series?match[]=up&start=1970-01-01T00:00:05Z&end=10", 200, OK("[" UP_A "]"));
}

Test(http, labels_values_metadata_exemplars) {
  const char *names = OK("[\"__name__\",\"instance\",\"job\"]");
  get("/api/v1/labels", 200, names);
  post("/prometheus/api/v1/labels", "start=0&end=100", 200, names);
  get("/api/v1/labels?match[]=up%7Binstance%3D%22i2%22%7D", 200, names);
  const char *jobs = OK("[\"a\",\"ab\",\"b\"]");
  get("/api/v1/label/job/values", 200, jobs);
  get("/prometheus/api/v1/label/job/values", 200, jobs);
  post("/api/v1/label/job/values", "match[]=up%7Bjob%21~%22a%22%7D", 200, OK("[\"ab\",\"b\"]"));
  get("/api/v1/label/__name__/values?limit=40000", 200, OK("[\"up\"]"));
  const char *meta = OK("{\"up\":[{\"type\":\"gauge\",\"help\":\"The scrape's health.\",\"unit\":\"\"}]}");
  get("/api/v1/metadata", 200, meta);
  get("/prometheus/api/v1/metadata?limit=10", 200, meta);
  post("/api/v1/metadata", "metric=up", 200, meta);
  get("/api/v1/query_exemplars?query=test&start=1700000000000&end=1700003600000", 200, OK("[]"));
  post("/prometheus/api/v1/query_exemplars", "query=up&start=1&end=2", 200, OK("[]"));
}

Test(http, tenant_header) {
  const char *raw = "GET /prometheus/api/v1/label/__name__/values HTTP/1.1\r\nHost: x\r\n"
                    "X-Scope-OrgID: team-1\r\nConnection: close\r\n\r\n";
  tc_resp r;
  cr_assert(tc_request(port, raw, strlen(raw), &r, 5000));
  expect(&r, 200, OK("[\"requests_total\"]"));
  tc_free(&r);
  const char *body = "match[]=%7Bjob%3D~%22.%2B%22%7D";
  char req[512];
  snprintf(req, sizeof req,
           "POST /api/v1/series HTTP/1.1\r\nHost: x\r\nx-scope-orgid: team-1\r\n"
           "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n"
           "Connection: close\r\n\r\n%s",
           strlen(body), body);
  cr_assert(tc_request(port, req, strlen(req), &r, 5000));
  expect(&r, 200, OK("[{\"__name__\":\"requests_total\",\"job\":\"api\"}]"));
  tc_free(&r);
}

static void get_tenant(const char *path, const char *tenant, int status, const char *body) {
  char req[1024];
  snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nX-Scope-OrgID: %s\r\nConnection: close\r\n\r\n",
           path, tenant);
  tc_resp r;
  cr_assert(tc_request(port, req, strlen(req), &r, 5000));
  expect(&r, status, body);
  tc_free(&r);
}

Test(http, utf8_label_names_in_the_path) {
  get_tenant("/api/v1/label/U__host_2e_name/values", "team-2", 200, OK("[\"h1\"]"));
  get_tenant("/api/v1/label/host%2Ename/values", "team-2", 200, OK("[\"h1\"]"));
  get_tenant("/api/v1/label/host.name/values", "team-2", 200, OK("[\"h1\"]"));
  get_tenant("/api/v1/labels", "team-2", 200, OK("[\"__name__\",\"host.name\"]"));
  get_tenant("/api/v1/series?match[]=%7B%22dotted%22%7D", "team-2", 200,
             OK("[{\"__name__\":\"dotted\",\"host.name\":\"h1\"}]"));
}

Test(http, errors) {
  get("/api/v1/series", 400,
      "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"no match[] parameter provided\"}");
  post("/prometheus/api/v1/series", "match[]=up&start=x", 400,
       "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"invalid parameter \\\"start\\\": "
       "Invalid time value for 'start': cannot parse \\\"x\\\" to a valid timestamp\"}");
  get("/api/v1/series?match[]=%7B%7D", 400,
      "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"invalid parameter "
      "\\\"match[]\\\": match[] must contain at least one non-empty matcher\"}");
  get("/api/v1/labels?match[]=up%7B", 400,
      "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"1:4: parse error: unexpected "
      "end of input inside braces\"}");
  tc_resp r;
  cr_assert(tc_get(port, "/api/v1/label/job", &r));
  cr_assert_eq(r.status, 404);
  tc_free(&r);
}
