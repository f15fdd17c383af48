/* dist_http.c - the remote-write HTTP endpoints on top of dist_push(). */
#include <string.h>

#include "distributor/dist_int.h"

static void dist_handle_push(void *ctx, const rt_http_req *req, rt_http_resp *resp) {
  dist_distributor *d = ctx;
  dist_push_in in = {
      .body = req->body,
      .body_len = req->body ? req->body_len : 0,
      .tenant = rt_http_tenant(req),
      .content_type = rt_http_header(req, "Content-Type"),
      .content_encoding = rt_http_header(req, "Content-Encoding"),
  };
  dist_push_out out = {.status = 500, .msg = RT_BUF_INIT};
  dist_push(d, &in, &out);
  if (out.msg.len) {
    rt_http_text(resp, out.status, "%s\n", out.msg.data);
  } else {
    resp->status = out.status;
    resp->content_type = "text/plain; charset=utf-8";
  }
  rt_buf_free(&out.msg);
}

/* GET /distributor/ha_tracker: the elected replicas this distributor knows for the caller's
 * tenant. */
static void dist_handle_ha_status(void *ctx, const rt_http_req *req, rt_http_resp *resp) {
  dist_distributor *d = ctx;
  const char *tenant = rt_http_tenant(req);
  char err[256];
  if (!tenant) {
    tenant = "anonymous";
  }
  if (!dist_tenant_valid(tenant, err, sizeof err)) {
    rt_http_api_error(resp, 400, "bad_data", err);
    return;
  }
  resp->status = 200;
  resp->content_type = "application/json";
  rt_buf_reset(&resp->body);
  rt_buf_puts(&resp->body, "{\"status\":\"success\",\"data\":");
  dist_ha_status_json(d, tenant, &resp->body);
  rt_buf_puts(&resp->body, "}\n");
}

rt_err dist_register(dist_distributor *d, rt_http_server *srv) {
  size_t max_body = dist_get_config(d)->max_recv_msg_size;
  rt_err e = rt_http_route(srv, "POST", "/api/v1/push", RT_HTTP_PROM_API | RT_HTTP_RIGHT_WRITE, max_body, dist_handle_push, d);
  if (e == RT_OK) {
    e = rt_http_route(srv, "POST", "/api/v1/write", RT_HTTP_PROM_API | RT_HTTP_RIGHT_WRITE, max_body, dist_handle_push, d);
  }
  if (e == RT_OK) {
    e = rt_http_route(srv, "GET", "/distributor/ha_tracker", RT_HTTP_RIGHT_READ, 0,
                      dist_handle_ha_status, d);
  }
  return e;
}
