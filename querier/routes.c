/* routes.c - binds the querier's API handlers (api.c) to the HTTP server. */
#include <string.h>

#include "common/http.h"
#include "querier/querier.h"
#include "querier/querier_int.h"

#define QRY_FORM_MAX_BODY (8u << 20) /* form bodies: many long match[] selectors */

static const char *qry_tenant(qry_querier *q, const rt_http_req *req) {
  const char *t = rt_http_tenant(req);
  return t ? t : qry_default_tenant(q);
}

#define QRY_HANDLER(fn, ep)                                                         \
  static void fn(void *ctx, const rt_http_req *req, rt_http_resp *resp) {           \
    qry_api_handle(ctx, ep, qry_tenant(ctx, req), req, resp);                      \
  }
QRY_HANDLER(qry_h_series, QRY_EP_SERIES)
QRY_HANDLER(qry_h_labels, QRY_EP_LABELS)
QRY_HANDLER(qry_h_label_values, QRY_EP_LABEL_VALUES)
QRY_HANDLER(qry_h_metadata, QRY_EP_METADATA)
QRY_HANDLER(qry_h_exemplars, QRY_EP_EXEMPLARS)
QRY_HANDLER(qry_h_delete_series, QRY_EP_DELETE_SERIES)

#define QRY_STATS_HANDLER(fn, ep)                                                   \
  static void fn(void *ctx, const rt_http_req *req, rt_http_resp *resp) {           \
    qry_stats_handle(ctx, ep, qry_tenant(ctx, req), req, resp);                    \
  }
QRY_STATS_HANDLER(qry_h_user_stats, QRY_EP_USER_STATS)
QRY_STATS_HANDLER(qry_h_card_names, QRY_EP_CARD_NAMES)
QRY_STATS_HANDLER(qry_h_card_values, QRY_EP_CARD_VALUES)

rt_err qry_register(qry_querier *q, rt_http_server *s) {
  static const struct {
    const char *path;
    unsigned flags;
    rt_http_handler fn;
  } routes[] = {
      {"/api/v1/series", 0, qry_h_series},
      {"/api/v1/labels", 0, qry_h_labels},
      {"/api/v1/label/", RT_HTTP_PREFIX, qry_h_label_values},
      {"/api/v1/metadata", 0, qry_h_metadata},
      {"/api/v1/query_exemplars", 0, qry_h_exemplars},
      {"/api/v1/user_stats", 0, qry_h_user_stats},
      {"/api/v1/cardinality/label_names", 0, qry_h_card_names},
      {"/api/v1/cardinality/label_values", 0, qry_h_card_values},
  };
  static const char *const methods[] = {"GET", "POST"};
  for (size_t i = 0; i < RT_ARRAY_LEN(routes); i++) {
    for (size_t m = 0; m < RT_ARRAY_LEN(methods); m++) {
      rt_err err = rt_http_route(s, methods[m], routes[i].path, routes[i].flags | RT_HTTP_PROM_API | RT_HTTP_RIGHT_READ,
                                 QRY_FORM_MAX_BODY, routes[i].fn, q);
      if (err != RT_OK) {
        return err;
      }
    }
  }
  /* series deletion: Prometheus' admin API, the admin right */
  static const char *const del_methods[] = {"POST", "PUT"};
  for (size_t m = 0; m < RT_ARRAY_LEN(del_methods); m++) {
    rt_err err = rt_http_route(s, del_methods[m], "/api/v1/admin/tsdb/delete_series",
                               RT_HTTP_PROM_API | RT_HTTP_RIGHT_ADMIN, QRY_FORM_MAX_BODY,
                               qry_h_delete_series, q);
    if (err != RT_OK) {
      return err;
    }
  }
  return RT_OK;
}
