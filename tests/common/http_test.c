/* http_test.c - the HTTP server over real sockets on an ephemeral port. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "common/http.h"
#include "common/metrics.h"
#include "tests/common/http_client.h"

static rt_http_server *srv;
static rt_metrics *reg;
static int port;
static atomic_int handled;

/* Echoes what the handler saw: method, path, raw path, every parameter in order, body length. */
static void echo(void *ctx, const rt_http_req *req, rt_http_resp *resp) {
  atomic_fetch_add(&handled, 1);
  rt_buf_printf(&resp->body, "method=%s path=%s raw=%s len=%zu", req->method, req->path,
                req->raw_path, req->body_len);
  for (size_t i = 0; i < req->nparams; i++) {
    rt_buf_printf(&resp->body, " [%s]=[%s]", req->params[i].key, req->params[i].value);
  }
  const char *m[8];
  size_t n = rt_http_params(req, "match[]", m, 8);
  rt_buf_printf(&resp->body, " nmatch=%zu", n);
  const char *h = rt_http_header(req, "x-scope-orgid");
  if (h) {
    rt_buf_printf(&resp->body, " tenant=%s", h);
  }
  resp->content_type = "text/plain";
  rt_http_resp_header(resp, "X-Test", "yes");
  (void)ctx;
}

static void teapot(void *ctx, const rt_http_req *req, rt_http_resp *resp) {
  rt_http_api_error(resp, 418, "bad_data", "short and \"stout\"");
  (void)ctx;
  (void)req;
}

static void long_text(void *ctx, const rt_http_req *req, rt_http_resp *resp) {
  char big[3000];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = 0;
  rt_buf_puts(&resp->body, "replaced");
  rt_http_text(resp, 202, "%s|%d", big, 42);
  (void)ctx;
  (void)req;
}

static void setup(void) {
  cr_assert_eq(rt_metrics_create(&reg), RT_OK);
  rt_http_config cfg = {.listen_addr = "127.0.0.1", .port = 0, .max_body_bytes = 1024,
                        .conn_timeout_s = 1, .max_conns = 64, .metrics = reg};
  cr_assert_eq(rt_http_server_create(&cfg, &srv), RT_OK);
  cr_assert_eq(rt_http_route(srv, "GET", "/api/v1/series", RT_HTTP_PROM_API, 0, echo, NULL),
               RT_OK);
  cr_assert_eq(rt_http_route(srv, "POST", "/api/v1/series", RT_HTTP_PROM_API, 0, echo, NULL),
               RT_OK);
  cr_assert_eq(rt_http_route(srv, "POST", "/push", 0, 64, echo, NULL), RT_OK);
  cr_assert_eq(rt_http_route(srv, NULL, "/any", 0, 0, echo, NULL), RT_OK);
  cr_assert_eq(rt_http_route(srv, "GET", "/api/v1/label/", RT_HTTP_PREFIX | RT_HTTP_PROM_API, 0,
                             echo, NULL),
               RT_OK);
  cr_assert_eq(rt_http_route(srv, "GET", "/teapot", 0, 0, teapot, NULL), RT_OK);
  cr_assert_eq(rt_http_route(srv, "GET", "/long", 0, 0, long_text, NULL), RT_OK);
  cr_assert_eq(rt_http_server_start(srv), RT_OK);
  port = rt_http_server_port(srv);
  cr_assert_gt(port, 0);
}

static void teardown(void) {
  rt_http_server_destroy(srv);
  rt_metrics_destroy(reg);
}

TestSuite(http, .init = setup, .fini = teardown, .timeout = 60);

Test(http, get_query_params_in_order_and_decoded) {
  tc_resp r;
  cr_assert(tc_get(port, "/api/v1/series?match[]=up&match%5B%5D=%7Bjob%3D%22a+b%22%7D&start=1",
                   &r));
  cr_assert_eq(r.status, 200, "%s", r.head);
  cr_assert(strstr(r.body, "method=GET path=/api/v1/series raw=/api/v1/series len=0"), "%s",
            r.body);
  cr_assert(strstr(r.body, "[match[]]=[up] [match[]]=[{job=\"a b\"}] [start]=[1] nmatch=2"),
            "%s", r.body);
  char h[64];
  cr_assert_str_eq(tc_header(&r, "X-Test", h, sizeof h), "yes");
  cr_assert_str_eq(tc_header(&r, "Content-Type", h, sizeof h), "text/plain");
  tc_free(&r);
}

Test(http, post_form_body_and_url_params_both_read) {
  tc_resp r;
  const char *body = "match[]=b&end=2&match[]=c%2Bd";
  cr_assert(tc_post(port, "/api/v1/series?match[]=a", "application/x-www-form-urlencoded", body,
                    strlen(body), &r));
  cr_assert_eq(r.status, 200, "%s", r.head);
  cr_assert(strstr(r.body, "[match[]]=[a] [match[]]=[b] [end]=[2] [match[]]=[c+d] nmatch=3"),
            "%s", r.body);
  tc_free(&r);
}

Test(http, non_form_body_is_not_parsed) {
  tc_resp r;
  const char *body = "a=b";
  cr_assert(tc_post(port, "/push", "application/x-protobuf", body, 3, &r));
  cr_assert_eq(r.status, 200);
  cr_assert(strstr(r.body, "len=3 nmatch=0"), "%s", r.body);
  tc_free(&r);
}

Test(http, prometheus_prefix_is_stripped_for_api_routes_only) {
  tc_resp r;
  cr_assert(tc_get(port, "/prometheus/api/v1/series?match[]=x", &r));
  cr_assert_eq(r.status, 200);
  cr_assert(strstr(r.body, "path=/api/v1/series raw=/prometheus/api/v1/series"), "%s", r.body);
  tc_free(&r);
  cr_assert(tc_get(port, "/prometheus/api/v1/label/job/values", &r));
  cr_assert_eq(r.status, 200);
  cr_assert(strstr(r.body, "path=/api/v1/label/job/values"), "%s", r.body);
  tc_free(&r);
  cr_assert(tc_get(port, "/prometheus/any", &r));
  cr_assert_eq(r.status, 404);
  tc_free(&r);
  cr_assert(tc_get(port, "/prometheusapi/v1/series", &r));
  cr_assert_eq(r.status, 404);
  tc_free(&r);
}

Test(http, unknown_path_gets_404_json) {
  tc_resp r;
  cr_assert(tc_get(port, "/nope?x=1", &r));
  cr_assert_eq(r.status, 404);
  cr_assert_str_eq(r.body, "{\"status\":\"error\",\"errorType\":\"not_found\",\"error\":\"not found: /nope\"}");
  char h[64];
  cr_assert_str_eq(tc_header(&r, "Content-Type", h, sizeof h), "application/json");
  tc_free(&r);
}

Test(http, wrong_method_gets_405_with_allow) {
  tc_resp r;
  cr_assert(tc_request(port, "DELETE /api/v1/series HTTP/1.1\r\nHost: x\r\n\r\n", 43, &r, 5000));
  cr_assert_eq(r.status, 405);
  char h[64];
  cr_assert_str_eq(tc_header(&r, "Allow", h, sizeof h), "GET, POST");
  cr_assert(strstr(r.body, "\"errorType\":\"bad_data\""), "%s", r.body);
  tc_free(&r);
  cr_assert(tc_get(port, "/push", &r));
  cr_assert_eq(r.status, 405);
  tc_free(&r);
  /* a route without a method takes any */
  cr_assert(tc_request(port, "PUT /any HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 50, &r,
                       5000));
  cr_assert_eq(r.status, 200);
  cr_assert(strstr(r.body, "method=PUT"), "%s", r.body);
  tc_free(&r);
}

Test(http, handler_status_and_json_error) {
  tc_resp r;
  cr_assert(tc_get(port, "/teapot", &r));
  cr_assert_eq(r.status, 418);
  cr_assert_str_eq(r.body,
                   "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"short and "
                   "\\\"stout\\\"\"}");
  tc_free(&r);
}

Test(http, headers_are_case_insensitive) {
  tc_resp r;
  const char *req = "GET /any HTTP/1.1\r\nHost: x\r\nX-Scope-OrgID: team-a\r\nConnection: close\r\n\r\n";
  cr_assert(tc_request(port, req, strlen(req), &r, 5000));
  cr_assert(strstr(r.body, "tenant=team-a"), "%s", r.body);
  tc_free(&r);
}

Test(http, body_at_the_limit_is_accepted) {
  char body[64];
  memset(body, 'x', sizeof body);
  tc_resp r;
  cr_assert(tc_post(port, "/push", "application/x-protobuf", body, sizeof body, &r));
  cr_assert_eq(r.status, 200);
  cr_assert(strstr(r.body, "len=64"), "%s", r.body);
  tc_free(&r);
}

Test(http, content_length_over_limit_gets_413_before_the_body) {
  int before = atomic_load(&handled);
  int fd = tc_connect(port);
  cr_assert_geq(fd, 0);
  /* Announce 100 MiB and send nothing: the answer must come anyway. */
  const char *req = "POST /push HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n";
  cr_assert(tc_send(fd, req, strlen(req)));
  tc_resp r;
  cr_assert(tc_read(fd, &r, 5000), "no answer without the body");
  cr_assert_eq(r.status, 413, "%s", r.head ? r.head : "(nothing)");
  cr_assert(strstr(r.body, "too large"), "%s", r.body);
  char h[64];
  cr_assert_str_eq(tc_header(&r, "Connection", h, sizeof h), "close");
  tc_free(&r);
  close(fd);
  cr_assert_eq(atomic_load(&handled), before, "the handler must not run");
}

Test(http, chunked_body_over_limit_is_refused) {
  int fd = tc_connect(port);
  cr_assert_geq(fd, 0);
  const char *req = "POST /push HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  cr_assert(tc_send(fd, req, strlen(req)));
  char chunk[64 + 16];
  int n = snprintf(chunk, sizeof chunk, "28\r\n%040d\r\n", 0);   /* 40 bytes */
  cr_assert(tc_send(fd, chunk, (size_t)n));
  cr_assert(tc_send(fd, chunk, (size_t)n));   /* 80 > 64 */
  tc_resp r;
  cr_assert(tc_read(fd, &r, 5000), "the server must answer or close");
  cr_assert_eq(r.status, 413);
  cr_assert(strstr(r.body, "too large"), "%s", r.body);
  char h[64];
  cr_assert_str_eq(tc_header(&r, "Connection", h, sizeof h), "close");
  tc_free(&r);
  close(fd);
  cr_assert(tc_get(port, "/any", &r));
  cr_assert_eq(r.status, 200, "the server still serves");
  tc_free(&r);
}

Test(http, slow_body_is_cut_off) {
  int fd = tc_connect(port);
  cr_assert_geq(fd, 0);
  const char *req = "POST /push HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n0123456789";
  cr_assert(tc_send(fd, req, strlen(req)));
  long t0 = tc_now_ms();
  tc_resp r;
  /* conn_timeout_s = 1: the server must drop the connection well within 10 s */
  cr_assert(tc_read(fd, &r, 10000), "the connection was not cut off");
  cr_assert(r.closed);
  cr_assert_neq(r.status, 200);
  cr_assert_lt(tc_now_ms() - t0, 9000);
  tc_free(&r);
  close(fd);
}

Test(http, trickling_body_is_cut_off) {
  int fd = tc_connect(port);
  cr_assert_geq(fd, 0);
  const char *req = "POST /push HTTP/1.1\r\nHost: x\r\nContent-Length: 60\r\n\r\n";
  cr_assert(tc_send(fd, req, strlen(req)));
  long t0 = tc_now_ms();
  bool cut = false;
  /* one byte every 300 ms stays under the idle timeout; the request deadline must still hit */
  for (int i = 0; i < 40 && !cut; i++) {
    if (!tc_send(fd, "x", 1)) {
      cut = true;
      break;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, 300) > 0) {
      char b[256];
      ssize_t n = recv(fd, b, sizeof b, 0);
      if (n <= 0) {
        cut = true;
      } else {
        b[n < 255 ? n : 255] = 0;
        cr_assert(strncmp(b, "HTTP/1.1 200", 12) != 0, "a trickled body was served");
      }
    }
  }
  cr_assert(cut, "a trickling client was not cut off");
  cr_assert_lt(tc_now_ms() - t0, 9000);
  close(fd);
}

Test(http, keep_alive_serves_several_requests) {
  int fd = tc_connect(port);
  cr_assert_geq(fd, 0);
  for (int i = 0; i < 3; i++) {
    char req[128];
    int n = snprintf(req, sizeof req, "GET /any?i=%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
    cr_assert(tc_send(fd, req, (size_t)n));
    tc_resp r;
    cr_assert(tc_read(fd, &r, 5000));
    cr_assert_eq(r.status, 200);
    char want[32];
    snprintf(want, sizeof want, "[i]=[%d]", i);
    cr_assert(strstr(r.body, want), "%s", r.body);
    tc_free(&r);
  }
  close(fd);
}

static void *hammer(void *arg) {
  (void)arg;
  for (int i = 0; i < 20; i++) {
    tc_resp r;
    if (!tc_get(port, "/any?x=1", &r) || r.status != 200) {
      tc_free(&r);
      return (void *)1;
    }
    tc_free(&r);
  }
  return NULL;
}

Test(http, concurrent_clients) {
  pthread_t t[8];
  for (int i = 0; i < 8; i++) {
    pthread_create(&t[i], NULL, hammer, NULL);
  }
  for (int i = 0; i < 8; i++) {
    void *rv;
    pthread_join(t[i], &rv);
    cr_assert_null(rv);
  }
}

Test(http, latency_histogram_per_route) {
  tc_resp r;
  for (int i = 0; i < 3; i++) {
    cr_assert(tc_get(port, "/prometheus/api/v1/series", &r));
    tc_free(&r);
  }
  cr_assert(tc_get(port, "/nope", &r));
  tc_free(&r);
  cr_assert(tc_request(port, "BREW /nope HTTP/1.1\r\nHost: x\r\n\r\n", 33, &r, 5000));
  cr_assert_eq(r.status, 404);
  tc_free(&r);
  rt_buf out = RT_BUF_INIT;
  rt_metrics_expose(reg, &out);
  cr_assert(strstr(out.data,
                   "ringtail_request_duration_seconds_count{method=\"GET\",route=\"api_v1_series\","
                   "status_code=\"200\"} 3\n"),
            "%s", out.data);
  cr_assert(strstr(out.data, "ringtail_request_duration_seconds_count{method=\"GET\",route="
                             "\"notfound\",status_code=\"404\"} 1\n"),
            "%s", out.data);
  cr_assert(strstr(out.data, "ringtail_request_duration_seconds_count{method=\"other\",route="
                             "\"notfound\",status_code=\"404\"} 1\n"),
            "%s", out.data);
  cr_assert_null(strstr(out.data, "BREW"), "client-chosen methods are not label values");
  rt_buf_free(&out);
}

Test(http_misc, route_rejects_bad_input) {
  rt_http_server *s;
  rt_http_config cfg = {.listen_addr = "127.0.0.1"};
  cr_assert_eq(rt_http_server_create(&cfg, &s), RT_OK);
  cr_assert_eq(rt_http_route(s, "GET", "nope", 0, 0, echo, NULL), RT_EINVAL);
  cr_assert_eq(rt_http_route(s, "GET", "/ok", 0, 0, NULL, NULL), RT_EINVAL);
  rt_http_server_destroy(s);   /* never started */
}

Test(http_misc, port_in_use_is_an_error) {
  rt_http_server *a, *b;
  rt_http_config cfg = {.listen_addr = "127.0.0.1", .port = 0};
  cr_assert_eq(rt_http_server_create(&cfg, &a), RT_OK);
  cr_assert_eq(rt_http_server_start(a), RT_OK);
  cfg.port = rt_http_server_port(a);
  cr_assert_eq(rt_http_server_create(&cfg, &b), RT_OK);
  cr_assert_eq(rt_http_server_start(b), RT_EIO);
  rt_http_server_destroy(b);
  rt_http_server_destroy(a);
}

Test(http, long_text_response) {
  tc_resp r;
  cr_assert(tc_get(port, "/long", &r));
  cr_assert_eq(r.status, 202);
  cr_assert_eq(r.body_len, 2999 + 3);
  cr_assert_eq(r.body[0], 'a');
  cr_assert_str_eq(r.body + 2999, "|42");
  char h[64];
  cr_assert_str_eq(tc_header(&r, "Content-Type", h, sizeof h), "text/plain; charset=utf-8");
  tc_free(&r);
}

Test(http, head_request_on_a_get_route) {
  tc_resp r;
  const char *req = "HEAD /teapot HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  cr_assert(tc_request(port, req, strlen(req), &r, 5000));
  cr_assert_eq(r.status, 418);
  cr_assert_eq(r.body_len, 0);
  tc_free(&r);
}

Test(http, early_answers_with_a_body_pending) {
  tc_resp r;
  const char *body = "x=1&y=2";
  cr_assert(tc_post(port, "/nope", "application/x-www-form-urlencoded", body, strlen(body), &r));
  cr_assert_eq(r.status, 404);
  tc_free(&r);
  cr_assert(tc_post(port, "/teapot", "application/x-www-form-urlencoded", body, strlen(body), &r));
  cr_assert_eq(r.status, 405);
  tc_free(&r);
  /* and on a kept-alive connection the next request still works */
  int fd = tc_connect(port);
  cr_assert_geq(fd, 0);
  const char *req = "POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                    "GET /any?k=v HTTP/1.1\r\nHost: x\r\n\r\n";
  cr_assert(tc_send(fd, req, strlen(req)));
  cr_assert(tc_read(fd, &r, 5000));
  cr_assert_eq(r.status, 404);
  bool closed = false;
  char h[32];
  if (tc_header(&r, "Connection", h, sizeof h) && strcasecmp(h, "close") == 0) {
    closed = true;
  }
  tc_free(&r);
  if (!closed) {
    cr_assert(tc_read(fd, &r, 5000));
    cr_assert_eq(r.status, 200, "%s", r.head ? r.head : "");
    cr_assert(strstr(r.body, "[k]=[v]"), "%s", r.body);
    tc_free(&r);
  }
  close(fd);
}

Test(http, out_of_memory_at_every_step_never_crashes) {
  const char *body = "match[]=b&end=2";
  int answered_500 = 0;
  for (long n = 0; n < 40; n++) {
    tc_resp r;
    rt_alloc_fail_after(n);
    bool ok = tc_post(port, "/api/v1/series?match[]=a", "application/x-www-form-urlencoded", body,
                      strlen(body), &r);
    rt_alloc_fail_after(-1);
    /* an answer (200 or 500) or a dropped connection, never a hang */
    cr_assert(ok, "no answer at n=%ld", n);
    cr_assert(r.status == 200 || r.status == 500 || (r.status == 0 && r.closed), "n=%ld: %d", n,
              r.status);
    answered_500 += r.status == 500;
    tc_free(&r);
    cr_assert(tc_get(port, "/any", &r));
    cr_assert_eq(r.status, 200, "the server still serves after n=%ld", n);
    tc_free(&r);
  }
  cr_assert_gt(answered_500, 0, "some failure must have been reported as a 500");
}

Test(http_misc, connection_limit) {
  rt_http_server *s;
  rt_metrics *m;
  cr_assert_eq(rt_metrics_create(&m), RT_OK);
  rt_http_config cfg = {.listen_addr = "127.0.0.1", .port = 0, .max_conns = 2,
                        .conn_timeout_s = 10, .metrics = m};
  cr_assert_eq(rt_http_server_create(&cfg, &s), RT_OK);
  cr_assert_eq(rt_http_route(s, "GET", "/any", 0, 0, echo, NULL), RT_OK);
  cr_assert_eq(rt_http_server_start(s), RT_OK);
  int p = rt_http_server_port(s);
  int a = tc_connect(p), b = tc_connect(p);
  cr_assert(a >= 0 && b >= 0);
  /* make sure both are accepted and served */
  const char *req = "GET /any HTTP/1.1\r\nHost: x\r\n\r\n";
  tc_resp r;
  cr_assert(tc_send(a, req, strlen(req)) && tc_read(a, &r, 5000) && r.status == 200);
  tc_free(&r);
  cr_assert(tc_send(b, req, strlen(req)) && tc_read(b, &r, 5000) && r.status == 200);
  tc_free(&r);
  /* a third connection is refused (closed without an answer) */
  cr_assert(tc_request(p, req, strlen(req), &r, 5000));
  cr_assert_eq(r.status, 0);
  cr_assert(r.closed);
  tc_free(&r);
  close(a);
  close(b);
  /* once they are gone, new connections are served again */
  long deadline = tc_now_ms() + 5000;
  bool served = false;
  while (!served && tc_now_ms() < deadline) {
    served = tc_get(p, "/any", &r) && r.status == 200;
    tc_free(&r);
    if (!served) {
      usleep(20000);
    }
  }
  cr_assert(served);
  rt_http_server_destroy(s);
  rt_metrics_destroy(m);
}
