/* ring_http.c - /ring on the shared HTTP server: the ring as HTML or JSON, and forget. */
#include <stdio.h>
#include <string.h>

#include "common/http.h"
#include "ring/ring.h"

static bool ring_http_wants_json(const rt_http_req *req) {
  const char *f = rt_http_param(req, "format");
  if (f) {
    return strcmp(f, "json") == 0;
  }
  const char *acc = rt_http_header(req, "Accept");
  return acc && strstr(acc, "application/json") && !strstr(acc, "text/html");
}

static void ring_http_handle(void *ctx, const rt_http_req *req, rt_http_resp *resp) {
  ring *r = ctx;
  bool json = ring_http_wants_json(req);
  if (strcmp(req->method, "POST") == 0) {
    const char *id = rt_http_param(req, "forget");
    if (!id || !id[0]) {
      rt_http_api_error(resp, 400, "bad_data", "missing form field forget=<instance id>");
      return;
    }
    rt_err err = ring_forget(r, id);
    if (err == RT_ENOTFOUND) {
      char msg[1200];
      snprintf(msg, sizeof msg, "instance %.1024s is not in the ring", id);
      rt_http_api_error(resp, 404, "not_found", msg);
      return;
    }
    if (err != RT_OK) {
      rt_http_api_error(resp, 500, "internal", rt_strerror(err));
      return;
    }
    if (json) {
      rt_buf_puts(&resp->body, "{\"status\":\"success\"}");
      return;
    }
    /* back to the page (POST-redirect-GET) */
    resp->status = 303;
    resp->content_type = "text/plain; charset=utf-8";
    rt_http_resp_header(resp, "Location", req->raw_path);
    rt_buf_printf(&resp->body, "forgot %s\n", id);
    return;
  }
  if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
    rt_http_resp_header(resp, "Allow", "GET, POST");
    rt_http_api_error(resp, 405, "bad_data", "use GET to read the ring, POST forget=<id>");
    return;
  }
  ring_snapshot *s = ring_snapshot_acquire(r);
  if (json) {
    resp->content_type = "application/json";
    ring_snapshot_json(s, 0, &resp->body);
  } else {
    resp->content_type = "text/html; charset=utf-8";
    ring_snapshot_html(s, 0, req->raw_path, &resp->body);
  }
  ring_snapshot_release(s);
}

rt_err ring_http_register(ring *r, struct rt_http_server *srv) {
  return rt_http_route(srv, NULL, "/ring", 0, 64 * 1024, ring_http_handle, r);
}
