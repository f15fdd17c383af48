/* api_test.c - the read API handlers and qry_select against two real ingesters (inproc RPC):
 * exact JSON, merging and de-duplication across ingesters, matchers of every kind, limits,
 * time ranges, tenants, Prometheus' error answers, and a failing ingester. */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>

#include "common/log.h"
#include "qry_util.h"

#define EP1 "inproc://qry-api-ing1"
#define EP2 "inproc://qry-api-ing2"

static qt_ing I1, I2;
static qry_querier *Q1;  /* ingester 1 only */
static qry_querier *Q2;  /* both */

static void load(void) {
  qt_push(&I1, "anonymous", "__name__=up,instance=i1,job=a", 1000, 1000, 5, 1, 1);
  qt_push(&I1, "anonymous", "__name__=up,instance=i1,job=b", 1000, 1000, 1, 10, 0);
  qt_push(&I1, "anonymous", "__name__=up,instance=i1,job=ab", 1000, 1000, 1, 20, 0);
  qt_push(&I1, "anonymous", "__name__=node_cpu_seconds_total,cpu=0,job=node,mode=idle", 1000, 1000,
          3, 100, 1);
  qt_push(&I1, "anonymous", "__name__=my.metric,host.name=h1", 1000, 1000, 1, 0.5, 0);
  qt_push(&I1, "anonymous", "__name__=old,job=a", 100000000, 1000, 1, 1, 0);
  qt_push(&I1, "other", "__name__=secret,job=a", 1000, 1000, 1, 42, 0);
  /* overlaps ingester 1's up{job="a"} on 3000..5000 with the same values */
  qt_push(&I2, "anonymous", "__name__=up,instance=i1,job=a", 3000, 1000, 5, 3, 1);
  qt_push(&I2, "anonymous", "__name__=up,job=c", 2000, 1000, 1, 30, 0);
  /* a long series split over closed chunks, overlapping between the ingesters */
  qt_push(&I1, "big", "__name__=big,job=x", 10000, 10, 300, 0, 1);
  qt_push(&I2, "big", "__name__=big,job=x", 12000, 10, 300, 200, 1);

  qt_push_meta(&I1, "anonymous", "up", PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE, "Up or not.", "");
  qt_push_meta(&I1, "anonymous", "node_cpu_seconds_total",
               PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER, "Seconds spent.", "seconds");
  qt_push_meta(&I2, "anonymous", "up", PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE, "Up or not.", "");
  qt_push_meta(&I2, "anonymous", "up", PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER, "Other.", "");
}

static void setup(void) {
  rt_log_set_level(RT_LOG_WARN);
  qt_ing_start(&I1, EP1);
  qt_ing_start(&I2, EP2);
  load();
  qry_config c1 = {.ingesters = EP1, .timeout_ms = 5000};
  qry_config c2 = {.ingesters = EP1 ", " EP2, .timeout_ms = 5000};
  cr_assert_eq(qry_create(&c1, &Q1), RT_OK);
  cr_assert_eq(qry_create(&c2, &Q2), RT_OK);
  cr_assert_eq(qry_ingester_count(Q2), 2);
}

static void teardown(void) {
  qry_destroy(Q1);
  qry_destroy(Q2);
  qt_ing_stop(&I1);
  qt_ing_stop(&I2);
}

TestSuite(api, .init = setup, .fini = teardown);

/* Calls a handler with the given parameters (key, value, ..., NULL) and checks the answer. */
static void check(qry_querier *q, qry_endpoint ep, const char *path, const char *tenant,
                  int want_status, const char *want_body, ...) {
  rt_http_kv kv[32];
  size_t n = 0;
  va_list ap;
  va_start(ap, want_body);
  for (;;) {
    const char *k = va_arg(ap, const char *);
    if (!k) {
      break;
    }
    kv[n].key = (char *)k;
    kv[n].value = (char *)va_arg(ap, const char *);
    n++;
  }
  va_end(ap);
  rt_http_req req = {.method = "GET", .path = path, .raw_path = path, .params = kv, .nparams = n};
  rt_http_resp resp = {.status = 200, .body = RT_BUF_INIT};
  qry_api_handle(q, ep, tenant, &req, &resp);
  cr_assert_str_eq(resp.body.data ? resp.body.data : "", want_body, "%s", path);
  cr_assert_eq(resp.status, want_status, "%s: status %d", path, resp.status);
  cr_assert_str_eq(resp.content_type, "application/json");
  rt_buf_free(&resp.body);
}

#define OK(data) "{\"status\":\"success\",\"data\":" data "}"
#define TRUNC(data) "{\"status\":\"success\",\"data\":" data ",\"warnings\":[\"results truncated due to limit\"]}"
#define BAD(msg) "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"" msg "\"}"

#define UP_A "{\"__name__\":\"up\",\"instance\":\"i1\",\"job\":\"a\"}"
#define UP_AB "{\"__name__\":\"up\",\"instance\":\"i1\",\"job\":\"ab\"}"
#define UP_B "{\"__name__\":\"up\",\"instance\":\"i1\",\"job\":\"b\"}"
#define UP_C "{\"__name__\":\"up\",\"job\":\"c\"}"
#define OLD "{\"__name__\":\"old\",\"job\":\"a\"}"

Test(api, series_merged_sorted_and_deduplicated) {
  check(Q1, QRY_EP_SERIES, "/api/v1/series", NULL, 200, OK("[" UP_A "," UP_AB "," UP_B "]"),
        "match[]", "up", NULL);
  /* up{job="a"} is on both ingesters: listed once */
  check(Q2, QRY_EP_SERIES, "/api/v1/series", NULL, 200,
        OK("[" UP_A "," UP_AB "," UP_B "," UP_C "]"), "match[]", "up", NULL);
  /* several match[]: the union, each series once */
  check(Q2, QRY_EP_SERIES, "/api/v1/series", NULL, 200, OK("[" OLD "," UP_A "," UP_C "]"),
        "match[]", "{job=\"a\"}", "match[]", "up{job=~\"a|c\"}", "match[]", "{job=\"c\"}", NULL);
  check(Q2, QRY_EP_SERIES, "/api/v1/series", NULL, 200,
        OK("[{\"__name__\":\"my.metric\",\"host.name\":\"h1\"}]"), "match[]", "{\"my.metric\"}",
        NULL);
  check(Q2, QRY_EP_SERIES, "/api/v1/series", NULL, 200, OK("[]"), "match[]", "nothing_here", NULL);
}

Test(api, matchers_of_every_kind) {
  /* regexes are fully anchored: "a" does not match "ab" */
  check(Q2, QRY_EP_SERIES, "/api/v1/series", NULL, 200, OK("[" UP_A "]"), "match[]",
        "up{job=~\"a\"}", NULL);
  check(Q2, QRY_EP_SERIES, "/api/v1/series", NULL, 200, OK("[" UP_A "," UP_AB "]"), "match[]",
        "up{job=~\"a.*\"}", NULL);
  check(Q2, QRY_EP_SERIES, "/api/v1/series", NULL, 200, OK("[" UP_AB "," UP_B "," UP_C "]"),
        "match[]", "up{job!=\"a\"}", NULL);
  check(Q2, QRY_EP_SERIES, "/api/v1/series", NULL, 200, OK("[" UP_AB "," UP_C "]"), "match[]",
        "up{job!~\"a|b\"}", NULL);
  /* a matcher on a missing label: absent is "" */
  check(Q2, QRY_EP_SERIES, "/api/v1/series", NULL, 200, OK("[" UP_C "]"), "match[]",
        "up{instance=\"\"}", NULL);
  check(Q2, QRY_EP_SERIES, "/api/v1/series", NULL, 200, OK("[" UP_A "," UP_AB "," UP_B "]"),
        "match[]", "up{instance!=\"\"}", NULL);
  check(Q2, QRY_EP_SERIES, "/api/v1/series", NULL, 200,
        OK("[{\"__name__\":\"node_cpu_seconds_total\",\"cpu\":\"0\",\"job\":\"node\",\"mode\":\"idle\"}]"),
        "match[]", "{__name__=~\"node_.+\",mode='idle'}", NULL);
}

Test(api, series_limit_and_time_range) {
  check(Q2, QRY_EP_SERIES, "/api/v1/series", NULL, 200, TRUNC("[" UP_A "," UP_AB "]"), "match[]",
        "up", "limit", "2", NULL);
  check(Q2, QRY_EP_SERIES, "/api/v1/series", NULL, 200,
        OK("[" UP_A "," UP_AB "," UP_B "," UP_C "]"), "match[]", "up", "limit", "4", NULL);
  check(Q2, QRY_EP_SERIES, "/api/v1/series", NULL, 200,
        OK("[" UP_A "," UP_AB "," UP_B "," UP_C "]"), "match[]", "up", "limit", "0", NULL);
  /* old{job="a"} has its only sample at 100000s */
  check(Q2, QRY_EP_SERIES, "/api/v1/series", NULL, 200, OK("[" OLD "]"), "match[]", "{job=\"a\"}",
        "start", "50000", "end", "200000", NULL);
  check(Q2, QRY_EP_SERIES, "/api/v1/series", NULL, 200, OK("[" UP_A "]"), "match[]", "{job=\"a\"}",
        "start", "1970-01-01T00:00:00Z", "end", "1970-01-01T00:01:00.5Z", NULL);
  /* up{job="c"} has one sample at 2s; a window just after it misses it */
  check(Q2, QRY_EP_SERIES, "/api/v1/series", NULL, 200, OK("[]"), "match[]", "up{job=\"c\"}",
        "start", "2.001", "end", "3", NULL);
  check(Q2, QRY_EP_SERIES, "/api/v1/series", NULL, 200, OK("[" UP_C "]"), "match[]",
        "up{job=\"c\"}", "start", "2", "end", "2", NULL);
}

Test(api, labels_and_values) {
  check(Q2, QRY_EP_LABELS, "/api/v1/labels", NULL, 200,
        OK("[\"__name__\",\"cpu\",\"host.name\",\"instance\",\"job\",\"mode\"]"), NULL);
  check(Q2, QRY_EP_LABELS, "/api/v1/labels", NULL, 200, TRUNC("[\"__name__\",\"cpu\"]"), "limit",
        "2", NULL);
  check(Q2, QRY_EP_LABELS, "/api/v1/labels", NULL, 200, OK("[\"__name__\",\"instance\",\"job\"]"),
        "match[]", "up", NULL);
  check(Q2, QRY_EP_LABELS, "/api/v1/labels", NULL, 200,
        OK("[\"__name__\",\"cpu\",\"host.name\",\"job\",\"mode\"]"), "match[]", "{\"my.metric\"}",
        "match[]", "node_cpu_seconds_total", NULL);
  check(Q2, QRY_EP_LABEL_VALUES, "/api/v1/label/job/values", NULL, 200,
        OK("[\"a\",\"ab\",\"b\",\"c\",\"node\"]"), NULL);
  check(Q2, QRY_EP_LABEL_VALUES, "/api/v1/label/job/values", NULL, 200, TRUNC("[\"a\"]"), "limit",
        "1", NULL);
  check(Q2, QRY_EP_LABEL_VALUES, "/api/v1/label/__name__/values", NULL, 200,
        OK("[\"my.metric\",\"node_cpu_seconds_total\",\"old\",\"up\"]"), NULL);
  check(Q2, QRY_EP_LABEL_VALUES, "/api/v1/label/job/values", NULL, 200, OK("[\"a\",\"c\"]"),
        "match[]", "up{job=~\"a|c\"}", NULL);
  check(Q2, QRY_EP_LABEL_VALUES, "/api/v1/label/job/values", NULL, 200, OK("[\"a\"]"), "start",
        "50000", NULL);
  /* Prometheus 3's U__ escaping of UTF-8 label names */
  check(Q2, QRY_EP_LABEL_VALUES, "/api/v1/label/U__host_2e_name/values", NULL, 200,
        OK("[\"h1\"]"), NULL);
  check(Q2, QRY_EP_LABEL_VALUES, "/api/v1/label/host.name/values", NULL, 200, OK("[\"h1\"]"), NULL);
  check(Q2, QRY_EP_LABEL_VALUES, "/api/v1/label/nope/values", NULL, 200, OK("[]"), NULL);
}

Test(api, tenants_are_separate) {
  check(Q2, QRY_EP_SERIES, "/api/v1/series", "other", 200,
        OK("[{\"__name__\":\"secret\",\"job\":\"a\"}]"), "match[]", "{job=\"a\"}", NULL);
  check(Q2, QRY_EP_LABEL_VALUES, "/api/v1/label/__name__/values", "other", 200,
        OK("[\"secret\"]"), NULL);
  check(Q2, QRY_EP_LABEL_VALUES, "/api/v1/label/__name__/values", "nobody", 200, OK("[]"), NULL);
}

Test(api, metadata) {
  check(Q2, QRY_EP_METADATA, "/api/v1/metadata", NULL, 200,
        OK("{\"node_cpu_seconds_total\":[{\"type\":\"counter\",\"help\":\"Seconds spent.\",\"unit\":\"seconds\"}],"
           "\"up\":[{\"type\":\"counter\",\"help\":\"Other.\",\"unit\":\"\"},{\"type\":\"gauge\",\"help\":\"Up or not.\",\"unit\":\"\"}]}"),
        NULL);
  check(Q2, QRY_EP_METADATA, "/api/v1/metadata", NULL, 200,
        OK("{\"up\":[{\"type\":\"counter\",\"help\":\"Other.\",\"unit\":\"\"}]}"), "metric", "up",
        "limit_per_metric", "1", NULL);
  check(Q2, QRY_EP_METADATA, "/api/v1/metadata", NULL, 200,
        OK("{\"node_cpu_seconds_total\":[{\"type\":\"counter\",\"help\":\"Seconds spent.\",\"unit\":\"seconds\"}]}"),
        "limit", "1", NULL);
  check(Q2, QRY_EP_METADATA, "/api/v1/metadata", NULL, 200, OK("{}"), "metric", "nope", NULL);
  check(Q2, QRY_EP_METADATA, "/api/v1/metadata", NULL, 400, BAD("limit must be a number"),
        "limit", "x", NULL);
  check(Q2, QRY_EP_METADATA, "/api/v1/metadata", NULL, 400,
        BAD("limit_per_metric must be a number"), "limit_per_metric", "1.5", NULL);
}

Test(api, exemplars_are_empty) {
  check(Q2, QRY_EP_EXEMPLARS, "/api/v1/query_exemplars", NULL, 200, OK("[]"), "query", "test",
        "start", "1700000000000", "end", "1700000360000", NULL);
  check(Q2, QRY_EP_EXEMPLARS, "/api/v1/query_exemplars", NULL, 400,
        BAD("end timestamp must not be before start timestamp"), "query", "up", "start", "10",
        "end", "5", NULL);
  check(Q2, QRY_EP_EXEMPLARS, "/api/v1/query_exemplars", NULL, 400,
        BAD("1:1: parse error: no expression found in input"), NULL);
  check(Q2, QRY_EP_EXEMPLARS, "/api/v1/query_exemplars", NULL, 200, OK("[]"), "query",
        "sum(rate(http_requests_total{job=\"a\"}[5m])) by (le)", NULL);
  check(Q2, QRY_EP_EXEMPLARS, "/api/v1/query_exemplars", NULL, 400,
        BAD("1:7: parse error: unexpected \\\"}\\\" in label matching, expected string"),
        "query", "up{a=~}", NULL);
}

Test(api, exemplars_of_a_query_without_selectors_are_204) {
  rt_http_kv kv[] = {{"query", "1+1"}};
  rt_http_req req = {.method = "GET", .path = "/api/v1/query_exemplars", .params = kv, .nparams = 1};
  rt_http_resp resp = {.status = 200, .body = RT_BUF_INIT};
  qry_api_handle(Q1, QRY_EP_EXEMPLARS, NULL, &req, &resp);
  cr_assert_eq(resp.status, 204);
  cr_assert_eq(resp.body.len, 0);
  rt_buf_free(&resp.body);
}

Test(api, bad_parameters_get_prometheus_errors) {
  check(Q2, QRY_EP_SERIES, "/api/v1/series", NULL, 400, BAD("no match[] parameter provided"), NULL);
  check(Q2, QRY_EP_SERIES, "/api/v1/series", NULL, 400,
        BAD("invalid parameter \\\"start\\\": Invalid time value for 'start': cannot parse \\\"x\\\" to a valid timestamp"),
        "match[]", "up", "start", "x", NULL);
  check(Q2, QRY_EP_SERIES, "/api/v1/series", NULL, 400,
        BAD("invalid parameter \\\"end\\\": Invalid time value for 'end': cannot parse \\\"2023-02-30T00:00:00Z\\\" to a valid timestamp"),
        "match[]", "up", "end", "2023-02-30T00:00:00Z", NULL);
  check(Q2, QRY_EP_SERIES, "/api/v1/series", NULL, 400,
        BAD("invalid parameter \\\"limit\\\": strconv.Atoi: parsing \\\"x\\\": invalid syntax"),
        "match[]", "up", "limit", "x", NULL);
  check(Q2, QRY_EP_SERIES, "/api/v1/series", NULL, 400,
        BAD("invalid parameter \\\"limit\\\": limit must be non-negative"), "match[]", "up",
        "limit", "-1", NULL);
  check(Q2, QRY_EP_SERIES, "/api/v1/series", NULL, 400,
        BAD("invalid parameter \\\"match[]\\\": 1:8: parse error: unexpected \\\"}\\\" in label matching, expected string"),
        "match[]", "up{job=}", NULL);
  check(Q2, QRY_EP_SERIES, "/api/v1/series", NULL, 400,
        BAD("invalid parameter \\\"match[]\\\": match[] must contain at least one non-empty matcher"),
        "match[]", "up", "match[]", "{job=~\".*\"}", NULL);
  check(Q2, QRY_EP_SERIES, "/api/v1/series", NULL, 400,
        BAD("invalid parameter \\\"match[]\\\": 1:1: parse error: unexpected end of input"),
        "match[]", "", NULL);
  /* the label APIs answer matcher errors without the "invalid parameter" prefix */
  check(Q2, QRY_EP_LABELS, "/api/v1/labels", NULL, 400,
        BAD("match[] must contain at least one non-empty matcher"), "match[]", "{job=\"\"}", NULL);
  check(Q2, QRY_EP_LABEL_VALUES, "/api/v1/label/job/values", NULL, 400,
        BAD("1:3: parse error: unexpected end of input inside braces"), "match[]", "x{", NULL);
  check(Q2, QRY_EP_LABELS, "/api/v1/labels", NULL, 400,
        BAD("invalid parameter \\\"start\\\": Invalid time value for 'start': cannot parse \\\"yesterday\\\" to a valid timestamp"),
        "start", "yesterday", NULL);
  check(Q2, QRY_EP_LABEL_VALUES, "/api/v1/label/a\xff/values", NULL, 400,
        BAD("invalid label name: \\\"a\\\\xff\\\""), NULL);
  check(Q2, QRY_EP_LABEL_VALUES, "/api/v1/label/job/values", NULL, 400,
        BAD("invalid parameter \\\"limit\\\": strconv.Atoi: parsing \\\"1e3\\\": invalid syntax"),
        "limit", "1e3", NULL);
}

Test(api, a_failing_ingester_fails_the_read) {
  qry_config c = {.ingesters = EP1 ",tcp://127.0.0.1:1", .timeout_ms = 300};
  qry_querier *q;
  cr_assert_eq(qry_create(&c, &q), RT_OK);
  for (int ep = QRY_EP_SERIES; ep <= QRY_EP_METADATA; ep++) {
    rt_http_kv kv[] = {{"match[]", "up"}};
    rt_http_req req = {.method = "GET",
                       .path = ep == QRY_EP_LABEL_VALUES ? "/api/v1/label/job/values" : "/x",
                       .params = kv,
                       .nparams = 1};
    rt_http_resp resp = {.status = 200, .body = RT_BUF_INIT};
    qry_api_handle(q, (qry_endpoint)ep, NULL, &req, &resp);
    cr_assert_eq(resp.status, 503, "endpoint %d: %d %s", ep, resp.status, resp.body.data);
    cr_assert(strstr(resp.body.data, "\"errorType\":\"unavailable\""), "%s", resp.body.data);
    cr_assert(strstr(resp.body.data, "tcp://127.0.0.1:1"), "%s", resp.body.data);
    rt_buf_free(&resp.body);
  }
  qry_destroy(q);
}

/* -querier.ingester-addresses is a static ring: a bad list is refused when the querier is
 * made, and every listed ingester is one of the ring's (Q2 reads both: the tests above). */
Test(api, bad_ingester_lists_are_refused) {
  qry_querier *q = NULL;
  qry_config c = {.ingesters = " ,\t, ", .timeout_ms = 300};
  cr_assert_eq(qry_create(&c, &q), RT_EINVAL);
  cr_assert_null(q);
  c.ingesters = EP1 "," EP2 ", " EP1;
  cr_assert_eq(qry_create(&c, &q), RT_EINVAL, "an address listed twice");
  cr_assert_null(q);
  cr_assert_eq(qry_ingester_count(Q1), 1);
  cr_assert_eq(qry_ingester_count(Q2), 2);
}

static void sel(qry_querier *q, const char *tenant, const char *s, int64_t mint, int64_t maxt,
                const qry_select_opts *o, qry_result *r) {
  qry_selector ps;
  char err[512];
  cr_assert_eq(qry_selector_parse(s, strlen(s), 0, &ps, err, sizeof err), RT_OK, "%s", err);
  cr_assert_eq(qry_select(q, tenant, ps.m, ps.n, mint, maxt, o, r, err, sizeof err), RT_OK, "%s",
               err);
  qry_selector_fini(&ps);
}

Test(api, select_merges_samples_across_ingesters) {
  qry_result r;
  sel(Q2, "anonymous", "up{job=\"a\"}", 0, 100000, NULL, &r);
  cr_assert_eq(r.nseries, 1);
  cr_assert_eq(r.series[0].nsamples, 7);
  cr_assert_eq(r.nsamples, 7);
  for (size_t i = 0; i < 7; i++) {
    cr_assert_eq(r.series[0].samples[i].t, (int64_t)(i + 1) * 1000);
    cr_assert_eq(r.series[0].samples[i].v, (double)(i + 1));
  }
  cr_assert_str_eq(rt_labels_get(r.series[0].labels, r.series[0].nlabels, "instance"), "i1");
  cr_assert_eq(r.series[0].hash, rt_series_hash("anonymous", r.series[0].labels, 3));
  qry_result_free(&r);

  /* [mint, maxt] is inclusive on both ends */
  sel(Q2, "anonymous", "up{job=\"a\"}", 2000, 4000, NULL, &r);
  cr_assert_eq(r.series[0].nsamples, 3);
  cr_assert_eq(r.series[0].samples[0].t, 2000);
  cr_assert_eq(r.series[0].samples[2].t, 4000);
  qry_result_free(&r);

  /* sorted by labels */
  sel(Q2, "anonymous", "up", 0, 100000, NULL, &r);
  cr_assert_eq(r.nseries, 4);
  cr_assert_str_eq(rt_labels_get(r.series[0].labels, r.series[0].nlabels, "job"), "a");
  cr_assert_str_eq(rt_labels_get(r.series[3].labels, r.series[3].nlabels, "job"), "c");
  cr_assert_eq(r.series[3].nsamples, 1);
  cr_assert_eq(r.series[3].samples[0].v, 30);
  qry_result_free(&r);

  qry_select_opts o = {.labels_only = true};
  sel(Q2, "anonymous", "up", 0, 100000, &o, &r);
  cr_assert_eq(r.nseries, 4);
  cr_assert_null(r.series[0].samples);
  cr_assert_eq(r.nsamples, 0);
  qry_result_free(&r);
}

Test(api, select_across_closed_chunks) {
  qry_result r;
  /* ingester 1 holds i = 0..299 (t = 10000 + 10 i), ingester 2 holds i = 200..499 */
  sel(Q2, "big", "big", 0, 1000000, NULL, &r);
  cr_assert_eq(r.nseries, 1);
  cr_assert_eq(r.series[0].nsamples, 500);
  for (size_t i = 0; i < 500; i++) {
    cr_assert_eq(r.series[0].samples[i].t, 10000 + 10 * (int64_t)i);
    cr_assert_eq(r.series[0].samples[i].v, (double)i);
  }
  qry_result_free(&r);
  sel(Q2, "big", "big", 11005, 13000, NULL, &r);
  cr_assert_eq(r.series[0].nsamples, 200);
  cr_assert_eq(r.series[0].samples[0].t, 11010);
  cr_assert_eq(r.series[0].samples[199].t, 13000);
  qry_result_free(&r);

  char err[256];
  qry_selector ps;
  cr_assert_eq(qry_selector_parse("big", 3, 0, &ps, err, sizeof err), RT_OK);
  qry_select_opts o = {.max_samples = 499};
  cr_assert_eq(qry_select(Q2, "big", ps.m, ps.n, 0, 1000000, &o, &r, err, sizeof err), RT_ELIMIT);
  cr_assert_str_eq(err, "query processing would load too many samples into memory in query execution");
  cr_assert_eq(r.nseries, 0);
  o.max_samples = 500;
  cr_assert_eq(qry_select(Q2, "big", ps.m, ps.n, 0, 1000000, &o, &r, err, sizeof err), RT_OK);
  qry_result_free(&r);
  qry_selector_fini(&ps);
}

Test(api, label_functions_directly) {
  qry_strings s;
  char err[256];
  cr_assert_eq(qry_label_values(Q2, "anonymous", "instance", NULL, NULL, 0, QRY_MIN_TIME_MS,
                                QRY_MAX_TIME_MS, 0, &s, err, sizeof err),
               RT_OK, "%s", err);
  cr_assert_eq(s.n, 1);
  cr_assert_str_eq(s.v[0], "i1");
  qry_strings_free(&s);
}

typedef struct reader_arg {
  qry_querier *q;
  int errors;
} reader_arg;

static void *reader(void *p) {
  reader_arg *a = p;
  qry_selector ps;
  char err[256];
  if (qry_selector_parse("{job=~\"a|x\"}", 12, 0, &ps, err, sizeof err) != RT_OK) {
    a->errors++;
    return NULL;
  }
  for (int i = 0; i < 40; i++) {
    qry_result r;
    if (qry_select(a->q, "anonymous", ps.m, ps.n, 0, INT64_MAX, NULL, &r, err, sizeof err) != RT_OK) {
      a->errors++;
      continue;
    }
    for (size_t k = 0; k < r.nseries; k++) {
      if (k && rt_labels_cmp(r.series[k - 1].labels, r.series[k - 1].nlabels, r.series[k].labels,
                             r.series[k].nlabels) >= 0) {
        a->errors++;
      }
      for (size_t j = 1; j < r.series[k].nsamples; j++) {
        if (r.series[k].samples[j].t <= r.series[k].samples[j - 1].t) {
          a->errors++;
        }
      }
    }
    qry_result_free(&r);
  }
  qry_selector_fini(&ps);
  return NULL;
}

Test(api, concurrent_reads_while_writing) {
  enum { NR = 6 };
  pthread_t th[NR];
  reader_arg args[NR];
  for (int i = 0; i < NR; i++) {
    args[i] = (reader_arg){.q = Q2};
    cr_assert_eq(pthread_create(&th[i], NULL, reader, &args[i]), 0);
  }
  for (int i = 0; i < 50; i++) {
    char l[64];
    snprintf(l, sizeof l, "__name__=w,job=x,n=%d", i % 7);
    qt_push(&I1, "anonymous", l, 200000 + i * 1000, 10, 3, i, 1);
  }
  for (int i = 0; i < NR; i++) {
    pthread_join(th[i], NULL);
    cr_assert_eq(args[i].errors, 0, "reader %d saw %d problems", i, args[i].errors);
  }
  qry_result r;
  sel(Q2, "anonymous", "w", 0, INT64_MAX, NULL, &r);
  cr_assert_eq(r.nseries, 7);
  cr_assert_eq(r.nsamples, 150);
  qry_result_free(&r);
}

Test(api, allocation_failures_are_errors_not_crashes) {
  qry_selector ps;
  char err[256];
  cr_assert_eq(qry_selector_parse("{job=~\"a|x\"}", 12, 0, &ps, err, sizeof err), RT_OK);
  int ok = 0, failed = 0;
  for (long n = 0; n < 400; n += 3) {
    qry_result r;
    rt_alloc_fail_after(n);
    rt_err e = qry_select(Q2, "big", ps.m, ps.n, 0, INT64_MAX, NULL, &r, err, sizeof err);
    rt_alloc_fail_after(-1);
    if (e == RT_OK) {
      cr_assert_eq(r.nseries, 1);
      cr_assert_eq(r.series[0].nsamples, 500);
      qry_result_free(&r);
      ok++;
    } else {
      cr_assert_eq(r.nseries, 0);
      cr_assert_null(r.priv);
      failed++;
    }
  }
  cr_assert_gt(failed, 0);
  cr_assert_gt(ok, 0);
  /* and the querier still works afterwards */
  qry_result r;
  cr_assert_eq(qry_select(Q2, "big", ps.m, ps.n, 0, INT64_MAX, NULL, &r, err, sizeof err), RT_OK, "%s", err);
  cr_assert_eq(r.series[0].nsamples, 500);
  qry_result_free(&r);
  qry_selector_fini(&ps);
}
