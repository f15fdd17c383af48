/* api.c - the PromQL HTTP API: /api/v1/query, /api/v1/query_range, /api/v1/format_query,
 * /api/v1/parse_query (GET and POST, also under /prometheus), answering like Prometheus 3. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/http.h"
#include "common/limits.h"
#include "promql/pql_int.h"
#include "promql/shard.h"
#include "promql/split.h"
#include "querier/querier.h"

#define PQL_API_MAX_BODY (8u << 20)
#define PQL_MAX_POINTS 11000

struct pql_api {
  pql_api_backend be;
};

static void bad_param(rt_http_resp *resp, const char *param, const char *msg) {
  char b[2048];
  snprintf(b, sizeof b, "invalid parameter \"%s\": %s", param, msg);
  rt_http_api_error(resp, 400, "bad_data", b);
}

static int status_for(const char *type) {
  if (strcmp(type, "bad_data") == 0) {
    return 400;
  }
  if (strcmp(type, "execution") == 0) {
    return 422;
  }
  if (strcmp(type, "timeout") == 0 || strcmp(type, "canceled") == 0 || strcmp(type, "unavailable") == 0) {
    return 503;
  }
  if (strcmp(type, "not_found") == 0) {
    return 404;
  }
  return 500;
}

/* Prometheus' parseDuration: float seconds or a duration string. */
static bool parse_api_duration(const char *s, int64_t *ms, char *err, size_t errlen) {
  char *end;
  double d = strtod(s, &end);
  if (*s && *end == 0 && end != s) {
    double v = d * 1000;
    if (isnan(v) || v > 9.2e18 || v < -9.2e18) {
      snprintf(err, errlen, "cannot parse \"%s\" to a valid duration. It overflows int64", s);
      return false;
    }
    *ms = (int64_t)llround(v);
    return true;
  }
  if (pql_parse_duration(s, strlen(s), ms) == RT_OK) {
    return true;
  }
  snprintf(err, errlen, "cannot parse \"%s\" to a valid duration", s);
  return false;
}

static void put_labels_json(rt_buf *b, const rt_label *l, size_t n) {
  rt_buf_putc(b, '{');
  for (size_t i = 0; i < n; i++) {
    if (i) {
      rt_buf_putc(b, ',');
    }
    rt_buf_json_str(b, l[i].name, strlen(l[i].name));
    rt_buf_putc(b, ':');
    rt_buf_json_str(b, l[i].value, strlen(l[i].value));
  }
  rt_buf_putc(b, '}');
}

/* [<ts>,"<value>"]: the hot path of every result, built without printf and appended once */
static void put_point(rt_buf *b, int64_t t, double v) {
  char p[QRY_TS_BUFSZ + RT_FLOAT_SHORT + 8];
  size_t n = 0;
  p[n++] = '[';
  n += qry_format_ts(p + n, t);
  p[n++] = ',';
  p[n++] = '"';
  n += rt_float_format_json(p + n, v);
  p[n++] = '"';
  p[n++] = ']';
  rt_buf_append(b, p, n);
}

/* A native histogram as Prometheus' JSON object: count, sum and the non-empty buckets in
 * ascending order as [boundary rule, lower, upper, count] (rule 0: (a,b], 1: [a,b), 3: [a,b]). */
static void put_hist(rt_buf *b, int64_t t, const pql_hist *h) {
  char tb[QRY_TS_BUFSZ], vb[RT_FLOAT_SHORT], lb[RT_FLOAT_SHORT], ub[RT_FLOAT_SHORT];
  qry_format_ts(tb, t);
  rt_buf_printf(b, "[%s,{", tb);
  rt_float_format_json(vb, h->count);
  rt_buf_printf(b, "\"count\":\"%s\"", vb);
  rt_float_format_json(vb, h->sum);
  rt_buf_printf(b, ",\"sum\":\"%s\"", vb);
  bool any = false;
  for (int part = 0; part < 3; part++) {
    uint32_t n = part == 0 ? h->nn : part == 1 ? (h->zc != 0 && h->schema != PQL_SCHEMA_CUSTOM) : h->np;
    for (uint32_t k = 0; k < n; k++) {
      uint32_t i = part == 0 ? n - 1 - k : k;
      double c, lo, hi;
      int rule;
      if (part == 0) {
        c = h->nb[i];
        lo = pql_hist_lower(h, h->ni[i], true);
        hi = pql_hist_upper(h, h->ni[i], true);
        rule = 1;
      } else if (part == 1) {
        c = h->zc;
        lo = -h->zt;
        hi = h->zt;
        rule = 3;
      } else {
        c = h->pb[i];
        lo = pql_hist_lower(h, h->pi[i], false);
        hi = pql_hist_upper(h, h->pi[i], false);
        rule = 0;
      }
      if (c == 0) {
        continue;
      }
      rt_buf_puts(b, any ? "," : ",\"buckets\":[");
      any = true;
      rt_float_format_json(lb, lo);
      rt_float_format_json(ub, hi);
      rt_float_format_json(vb, c);
      rt_buf_printf(b, "[%d,\"%s\",\"%s\",\"%s\"]", rule, lb, ub, vb);
    }
  }
  if (any) {
    rt_buf_putc(b, ']');
  }
  rt_buf_puts(b, "}]");
}

static void put_annots(rt_buf *b, const char *key, const char **a, size_t n) {
  if (n == 0) {
    return;
  }
  rt_buf_printf(b, ",\"%s\":[", key);
  for (size_t i = 0; i < n; i++) {
    if (i) {
      rt_buf_putc(b, ',');
    }
    rt_buf_json_str(b, a[i], strlen(a[i]));
  }
  rt_buf_putc(b, ']');
}

static void put_stats(const pql_result *r, rt_buf *b) {
  double prep = (double)r->prep_ns / 1e9, eval = (double)r->eval_ns / 1e9;
  rt_buf_printf(b,
                ",\"stats\":{\"timings\":{\"evalTotalTime\":%.9f,\"resultSortTime\":0,\"queryPreparationTime\":%.9f,"
                "\"innerEvalTime\":%.9f,\"execQueueTime\":0,\"execTotalTime\":%.9f},"
                "\"samples\":{\"totalQueryableSamples\":%lld,\"peakSamples\":%lld}}",
                prep + eval, prep, eval, prep + eval, (long long)r->samples_total, (long long)r->samples_peak);
}

void pql_result_json_stats(const pql_result *r, int64_t limit, bool stats, rt_buf *b);

void pql_result_json(const pql_result *r, int64_t limit, rt_buf *b) { pql_result_json_stats(r, limit, false, b); }

void pql_result_json_stats(const pql_result *r, int64_t limit, bool stats, rt_buf *b) {
  rt_buf_puts(b, "{\"status\":\"success\",\"data\":{\"resultType\":");
  size_t n = r->nseries;
  if (limit > 0 && (size_t)limit < n) {
    n = (size_t)limit;
  }
  switch (r->type) {
  case PQL_SCALAR:
    rt_buf_puts(b, "\"scalar\",\"result\":");
    put_point(b, r->t, r->scalar);
    break;
  case PQL_STRING: {
    char tb[64];
    qry_format_ts(tb, r->t);
    rt_buf_printf(b, "\"string\",\"result\":[%s,", tb);
    rt_buf_json_str(b, r->str, strlen(r->str));
    rt_buf_putc(b, ']');
    break;
  }
  case PQL_VECTOR:
    rt_buf_puts(b, "\"vector\",\"result\":[");
    for (size_t i = 0; i < n; i++) {
      const pql_series *s = &r->series[i];
      rt_buf_puts(b, i ? ",{\"metric\":" : "{\"metric\":");
      put_labels_json(b, s->labels, s->nlabels);
      if (s->points[0].h) {
        rt_buf_puts(b, ",\"histogram\":");
        put_hist(b, s->points[0].t, s->points[0].h);
      } else {
        rt_buf_puts(b, ",\"value\":");
        put_point(b, s->points[0].t, s->points[0].v);
      }
      rt_buf_putc(b, '}');
    }
    rt_buf_putc(b, ']');
    break;
  default:
    rt_buf_puts(b, "\"matrix\",\"result\":[");
    for (size_t i = 0; i < n; i++) {
      const pql_series *s = &r->series[i];
      rt_buf_puts(b, i ? ",{\"metric\":" : "{\"metric\":");
      put_labels_json(b, s->labels, s->nlabels);
      size_t nh = 0;
      for (size_t k = 0; k < s->npoints; k++) {
        nh += s->points[k].h != NULL;
      }
      if (nh < s->npoints || s->npoints == 0) {
        rt_buf_puts(b, ",\"values\":[");
        bool first = true;
        for (size_t k = 0; k < s->npoints; k++) {
          if (s->points[k].h) {
            continue;
          }
          if (!first) {
            rt_buf_putc(b, ',');
          }
          first = false;
          put_point(b, s->points[k].t, s->points[k].v);
        }
        rt_buf_putc(b, ']');
      }
      if (nh > 0) {
        rt_buf_puts(b, ",\"histograms\":[");
        bool first = true;
        for (size_t k = 0; k < s->npoints; k++) {
          if (!s->points[k].h) {
            continue;
          }
          if (!first) {
            rt_buf_putc(b, ',');
          }
          first = false;
          put_hist(b, s->points[k].t, s->points[k].h);
        }
        rt_buf_putc(b, ']');
      }
      rt_buf_putc(b, '}');
    }
    rt_buf_putc(b, ']');
    break;
  }
  if (stats) {
    put_stats(r, b);
  }
  rt_buf_putc(b, '}');
  bool truncated = (r->type == PQL_VECTOR || r->type == PQL_MATRIX) && n < r->nseries;
  if (truncated) {
    /* the limit parameter cut the answer: say so, as Prometheus does */
    const char **w = rt_calloc(r->nwarnings + 1, sizeof *w);
    if (w) {
      for (size_t i = 0; i < r->nwarnings; i++) {
        w[i] = r->warnings[i];
      }
      w[r->nwarnings] = "results truncated due to limit";
      put_annots(b, "warnings", w, r->nwarnings + 1);
      rt_free(w, (r->nwarnings + 1) * sizeof *w);
    }
  } else {
    put_annots(b, "warnings", r->warnings, r->nwarnings);
  }
  put_annots(b, "infos", r->infos, r->ninfos);
  rt_buf_putc(b, '}');
}

static const char *tenant_of(const rt_http_req *req) {
  const char *t = rt_http_tenant(req);
  return t ? t : QRY_DEFAULT_TENANT;
}

static bool common_params(const pql_api *api, const rt_http_req *req, rt_http_resp *resp, pql_opts *o,
                          int64_t *limit) {
  *o = api->be.opts;
  if (o->timeout_ms <= 0) {
    o->timeout_ms = 2 * 60 * 1000;
  }
  char err[512];
  const char *to = rt_http_param(req, "timeout");
  if (to && *to) {
    int64_t ms;
    if (!parse_api_duration(to, &ms, err, sizeof err)) {
      bad_param(resp, "timeout", err);
      return false;
    }
    if (ms > 0 && ms < o->timeout_ms) {
      o->timeout_ms = ms;
    }
  }
  const char *lb = rt_http_param(req, "lookback_delta");
  if (lb && *lb) {
    int64_t ms;
    if (!parse_api_duration(lb, &ms, err, sizeof err)) {
      bad_param(resp, "lookback_delta", err);
      return false;
    }
    o->lookback_ms = ms;
  }
  *limit = 0;
  const char *l = rt_http_param(req, "limit");
  if (l && *l) {
    char *end;
    long long v = strtoll(l, &end, 10);
    if (*end || v < 0) {
      rt_http_api_error(resp, 400, "bad_data", "limit must be non-negative");
      return false;
    }
    *limit = v;
  }
  return true;
}

static void answer(const rt_http_req *req, rt_http_resp *resp, const pql_result *r, int64_t limit) {
  if (r->error) {
    rt_http_api_error(resp, status_for(r->error_type), r->error_type, r->error);
    return;
  }
  resp->status = 200;
  const char *st = rt_http_param(req, "stats");
  pql_result_json_stats(r, limit, st && *st, &resp->body);
}

static bool parse_query_param(const rt_http_req *req, rt_http_resp *resp, pql_expr **e) {
  const char *q = rt_http_param(req, "query");
  char err[1024];
  rt_err rc = pql_parse(q ? q : "", e, err, sizeof err);
  if (rc == RT_ENOMEM) {
    rt_http_api_error(resp, 500, "internal", "out of memory");
    return false;
  }
  if (rc != RT_OK) {
    bad_param(resp, "query", err);
    return false;
  }
  return true;
}

/* ---- the read limits of one request (querier/qlimits.c): every storage the query and its
 * sub-queries get is bound to the request's budget ---- */

typedef struct api_q {
  const pql_api *api;
  qry_budget *b;
  bool tenant_timeout; /* the effective timeout is the tenant's query_timeout */
} api_q;

static rt_err q_get(void *ctx, const char *tenant, pql_storage *out) {
  api_q *aq = ctx;
  rt_err rc = aq->api->be.storage_for(aq->api->be.ctx, tenant, out);
  if (rc == RT_OK && aq->b && aq->api->be.storage_bind) {
    aq->api->be.storage_bind(aq->api->be.ctx, out, aq->b);
  }
  return rc;
}

static rt_err q_get_shard(void *ctx, const char *tenant, uint32_t index, uint32_t count, pql_storage *out) {
  api_q *aq = ctx;
  rt_err rc = aq->api->be.storage_for_shard(aq->api->be.ctx, tenant, index, count, out);
  if (rc == RT_OK && aq->b && aq->api->be.storage_bind) {
    aq->api->be.storage_bind(aq->api->be.ctx, out, aq->b);
  }
  return rc;
}

static void q_done(void *ctx, pql_storage *st) {
  api_q *aq = ctx;
  if (aq->api->be.storage_done) {
    aq->api->be.storage_done(aq->api->be.ctx, st);
  }
}

/* Starts the budget of a request: the tenant's limits, checked against the query's range, and
 * applied to the engine options (timeout, samples). False when it answered (a breach, OOM). */
static bool q_begin(const pql_api *api, const rt_http_req *req, rt_http_resp *resp, pql_opts *o, int64_t start,
                    int64_t end, api_q *aq) {
  const char *qs = rt_http_param(req, "query");
  aq->api = api;
  aq->tenant_timeout = false;
  aq->b = qry_budget_new(tenant_of(req), qs ? qs : "");
  if (!aq->b) {
    rt_http_api_error(resp, 500, "internal", "out of memory");
    return false;
  }
  const rt_limits *l = qry_budget_limits(aq->b);
  if (l->query_timeout_ms > 0 && l->query_timeout_ms <= o->timeout_ms) {
    o->timeout_ms = l->query_timeout_ms;
    aq->tenant_timeout = true;
  }
  o->max_samples = l->max_samples_per_query > 0 ? l->max_samples_per_query : INT64_MAX;
  if (qry_budget_check_range(aq->b, start, end) != RT_OK) {
    char m[1536];
    qry_budget_breached(aq->b, m, sizeof m);
    rt_http_api_error(resp, 422, "execution", m);
    qry_budget_free(aq->b);
    aq->b = NULL;
    return false;
  }
  return true;
}

/* Answers r, or the query's limit breach: a breach recorded in the budget, the engine's own
 * samples limit or the tenant's timeout become 422 execution naming the limit. */
static void answer(const rt_http_req *req, rt_http_resp *resp, const pql_result *r, int64_t limit);
static void q_answer(api_q *aq, const rt_http_req *req, rt_http_resp *resp, const pql_result *r, int64_t limit) {
  char m[1536];
  if (r->error && aq->b) {
    if (strcmp(r->error_type, "execution") == 0 && strstr(r->error, "too many samples")) {
      qry_budget_fail(aq->b, QRY_LIM_SAMPLES, 0);
    } else if (strcmp(r->error_type, "timeout") == 0 && aq->tenant_timeout) {
      qry_budget_fail(aq->b, QRY_LIM_TIMEOUT, 0);
    }
    if (qry_budget_breached(aq->b, m, sizeof m)) {
      rt_http_api_error(resp, 422, "execution", m);
      return;
    }
  }
  answer(req, resp, r, limit);
}

static void q_end(api_q *aq) {
  qry_budget_free(aq->b);
  aq->b = NULL;
}

/* Runs e as shard sub-queries when the backend shards and e allows it; true when it answered. */
static bool try_sharded(pql_api *api, api_q *aq, const rt_http_req *req, rt_http_resp *resp, const pql_opts *o,
                        const pql_expr *e, int64_t start, int64_t end, int64_t step, bool range, int64_t limit) {
  if (api->be.total_shards < 2 || !api->be.storage_for_shard || !pql_shard_applies(e)) {
    return false;
  }
  pql_shard_src src = {q_get_shard, q_done, aq, tenant_of(req)};
  pql_shard *sh = NULL;
  rt_err rc = pql_shard_eval(&src, o, e, start, end, step, range, api->be.total_shards, &sh);
  if (rc != RT_OK) {
    rt_http_api_error(resp, rc == RT_ENOMEM ? 500 : 503, rc == RT_ENOMEM ? "internal" : "unavailable",
                      rt_strerror(rc));
    return true;
  }
  q_answer(aq, req, resp, pql_shard_result(sh), limit);
  pql_shard_free(sh);
  return true;
}

static void h_query(void *ctx, const rt_http_req *req, rt_http_resp *resp) {
  pql_api *api = ctx;
  pql_opts o;
  int64_t limit;
  if (!common_params(api, req, resp, &o, &limit)) {
    return;
  }
  int64_t t = rt_now_ms();
  const char *ts = rt_http_param(req, "time");
  char err[512];
  if (ts && *ts && !qry_parse_time(ts, &t, err, sizeof err)) {
    bad_param(resp, "time", err);
    return;
  }
  pql_expr *e;
  if (!parse_query_param(req, resp, &e)) {
    return;
  }
  api_q aq;
  if (!q_begin(api, req, resp, &o, t, t, &aq)) {
    pql_expr_free(e);
    return;
  }
  if (try_sharded(api, &aq, req, resp, &o, e, t, t, 0, false, limit)) {
    pql_expr_free(e);
    q_end(&aq);
    return;
  }
  pql_storage st;
  rt_err rc = q_get(&aq, tenant_of(req), &st);
  if (rc != RT_OK) {
    pql_expr_free(e);
    q_end(&aq);
    rt_http_api_error(resp, 503, "unavailable", rt_strerror(rc));
    return;
  }
  pql_result *r = NULL;
  rc = pql_eval(&st, &o, e, t, t, 0, false, &r);
  q_done(&aq, &st);
  pql_expr_free(e);
  if (rc != RT_OK) {
    q_end(&aq);
    rt_http_api_error(resp, 500, "internal", rt_strerror(rc));
    return;
  }
  q_answer(&aq, req, resp, r, limit);
  q_end(&aq);
  pql_result_free(r);
}

static void h_query_range(void *ctx, const rt_http_req *req, rt_http_resp *resp) {
  pql_api *api = ctx;
  pql_opts o;
  int64_t limit;
  if (!common_params(api, req, resp, &o, &limit)) {
    return;
  }
  char err[512];
  int64_t start, end, step;
  const char *s = rt_http_param(req, "start");
  if (!s || !*s) {
    bad_param(resp, "start", "cannot parse \"\" to a valid timestamp");
    return;
  }
  if (!qry_parse_time(s, &start, err, sizeof err)) {
    bad_param(resp, "start", err);
    return;
  }
  s = rt_http_param(req, "end");
  if (!s || !*s) {
    bad_param(resp, "end", "cannot parse \"\" to a valid timestamp");
    return;
  }
  if (!qry_parse_time(s, &end, err, sizeof err)) {
    bad_param(resp, "end", err);
    return;
  }
  if (end < start) {
    bad_param(resp, "end", "end timestamp must not be before start time");
    return;
  }
  s = rt_http_param(req, "step");
  if (!s || !*s) {
    bad_param(resp, "step", "cannot parse \"\" to a valid duration");
    return;
  }
  if (!parse_api_duration(s, &step, err, sizeof err)) {
    bad_param(resp, "step", err);
    return;
  }
  if (step <= 0) {
    bad_param(resp, "step", "zero or negative query resolution step widths are not accepted. Try a positive integer");
    return;
  }
  if ((end - start) / step > PQL_MAX_POINTS) {
    rt_http_api_error(resp, 400, "bad_data",
                      "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query "
                      "resolution (?step=XX)");
    return;
  }
  pql_expr *e;
  if (!parse_query_param(req, resp, &e)) {
    return;
  }
  pql_type ty = pql_expr_type(e);
  if (ty != PQL_SCALAR && ty != PQL_VECTOR) {
    char m[256];
    snprintf(m, sizeof m, "invalid expression type \"%s\" for range query, must be Scalar or instant Vector",
             ty == PQL_MATRIX ? "range vector" : "string");
    pql_expr_free(e);
    rt_http_api_error(resp, 400, "bad_data", m);
    return;
  }
  api_q aq;
  if (!q_begin(api, req, resp, &o, start, end, &aq)) {
    pql_expr_free(e);
    return;
  }
  bool split = pql_split_applies(e, start, end, step, api->be.split_interval_ms);
  if (!split && try_sharded(api, &aq, req, resp, &o, e, start, end, step, true, limit)) {
    pql_expr_free(e);
    q_end(&aq);
    return;
  }
  if (split) {
    pql_shard_src shsrc = {q_get_shard, q_done, &aq, tenant_of(req)};
    pql_split_src src = {q_get, q_done, &aq, tenant_of(req), api->be.storage_for_shard ? &shsrc : NULL,
                         api->be.total_shards};
    pql_split *sp = NULL;
    rt_err rc = pql_split_eval(&src, &o, e, start, end, step, api->be.split_interval_ms, &sp);
    pql_expr_free(e);
    if (rc != RT_OK) {
      q_end(&aq);
      rt_http_api_error(resp, 500, "internal", rt_strerror(rc));
      return;
    }
    q_answer(&aq, req, resp, pql_split_result(sp), limit);
    q_end(&aq);
    pql_split_free(sp);
    return;
  }
  pql_storage st;
  rt_err rc = q_get(&aq, tenant_of(req), &st);
  if (rc != RT_OK) {
    pql_expr_free(e);
    q_end(&aq);
    rt_http_api_error(resp, 503, "unavailable", rt_strerror(rc));
    return;
  }
  pql_result *r = NULL;
  rc = pql_eval(&st, &o, e, start, end, step, true, &r);
  q_done(&aq, &st);
  pql_expr_free(e);
  if (rc != RT_OK) {
    q_end(&aq);
    rt_http_api_error(resp, 500, "internal", rt_strerror(rc));
    return;
  }
  q_answer(&aq, req, resp, r, limit);
  q_end(&aq);
  pql_result_free(r);
}

static void h_format(void *ctx, const rt_http_req *req, rt_http_resp *resp) {
  (void)ctx;
  pql_expr *e;
  if (!parse_query_param(req, resp, &e)) {
    return;
  }
  rt_buf f = RT_BUF_INIT;
  pql_format(e, &f);
  pql_expr_free(e);
  rt_buf_puts(&resp->body, "{\"status\":\"success\",\"data\":");
  rt_buf_json_str(&resp->body, f.data ? f.data : "", f.len);
  rt_buf_putc(&resp->body, '}');
  rt_buf_free(&f);
  resp->status = 200;
}

static void h_parse(void *ctx, const rt_http_req *req, rt_http_resp *resp) {
  (void)ctx;
  pql_expr *e;
  if (!parse_query_param(req, resp, &e)) {
    return;
  }
  rt_buf_puts(&resp->body, "{\"status\":\"success\",\"data\":");
  pql_expr_json(e, &resp->body);
  rt_buf_putc(&resp->body, '}');
  pql_expr_free(e);
  resp->status = 200;
}

rt_err pql_api_register(rt_http_server *s, const pql_api_backend *be, pql_api **out) {
  *out = NULL;
  pql_api *api = rt_calloc(1, sizeof *api);
  if (!api) {
    return RT_ENOMEM;
  }
  api->be = *be;
  *out = api; /* routes may already point at it even if a later route fails */
  static const struct {
    const char *path;
    rt_http_handler fn;
  } routes[] = {
      {"/api/v1/query", h_query},
      {"/api/v1/query_range", h_query_range},
      {"/api/v1/format_query", h_format},
      {"/api/v1/parse_query", h_parse},
  };
  static const char *const methods[] = {"GET", "POST"};
  for (size_t i = 0; i < RT_ARRAY_LEN(routes); i++) {
    for (size_t m = 0; m < RT_ARRAY_LEN(methods); m++) {
      rt_err err = rt_http_route(s, methods[m], routes[i].path, RT_HTTP_PROM_API | RT_HTTP_RIGHT_READ, PQL_API_MAX_BODY, routes[i].fn, api);
      if (err != RT_OK) {
        return err;
      }
    }
  }
  return RT_OK;
}

void pql_api_destroy(pql_api *api) {
  if (api) {
    rt_free(api, sizeof *api);
  }
}

/* ---- the querier as storage ---- */

typedef struct qry_store {
  qry_querier *q;
  char tenant[256];
  uint64_t max_samples;
  uint32_t shard_index, shard_count;
  qry_budget *budget;
} qry_store;

static rt_err qry_store_select(void *ctx, const rt_matcher *m, size_t n, int64_t mint, int64_t maxt,
                               pql_sink *sink) {
  qry_store *qs = ctx;
  qry_result res;
  char eb[512];
  qry_select_opts o = {.max_samples = qs->budget ? 0 : qs->max_samples,
                       .shard_index = qs->shard_index,
                       .shard_count = qs->shard_count,
                       .budget = qs->budget};
  rt_err rc = qry_select(qs->q, qs->tenant, m, n, mint, maxt, &o, &res, eb, sizeof eb);
  if (rc != RT_OK) {
    return rc;
  }
  for (size_t i = 0; i < res.nseries && rc == RT_OK; i++) {
    const qry_series *s = &res.series[i];
    rc = pql_sink_add_tv(sink, s->labels, s->nlabels, (const pql_tv *)s->samples, s->nsamples);
  }
  qry_result_free(&res);
  return rc;
}

static rt_err qry_storage_for(void *ctx, const char *tenant, pql_storage *out) {
  qry_store *qs = rt_calloc(1, sizeof *qs);
  if (!qs) {
    return RT_ENOMEM;
  }
  qs->q = ctx;
  snprintf(qs->tenant, sizeof qs->tenant, "%s", tenant);
  qs->max_samples = rt_cfg && rt_cfg->max_samples > 0 ? (uint64_t)rt_cfg->max_samples : 50000000;
  out->ctx = qs;
  out->select = qry_store_select;
  return RT_OK;
}

static rt_err qry_storage_for_shard(void *ctx, const char *tenant, uint32_t index, uint32_t count,
                                    pql_storage *out) {
  rt_err rc = qry_storage_for(ctx, tenant, out);
  if (rc == RT_OK) {
    qry_store *qs = out->ctx;
    qs->shard_index = index;
    qs->shard_count = count;
  }
  return rc;
}

static void qry_storage_bind(void *ctx, pql_storage *st, qry_budget *b) {
  (void)ctx;
  ((qry_store *)st->ctx)->budget = b;
}

static void qry_storage_done(void *ctx, pql_storage *st) {
  (void)ctx;
  rt_free(st->ctx, sizeof(qry_store));
}

_Static_assert(sizeof(qry_sample) == sizeof(pql_tv), "qry_sample and pql_tv share a layout");

rt_err pql_api_register_querier(qry_querier *q, rt_http_server *s, pql_api **out) {
  pql_api_backend be = {
      .storage_for = qry_storage_for,
      .storage_done = qry_storage_done,
      .storage_for_shard = qry_storage_for_shard,
      .storage_bind = qry_storage_bind,
      .ctx = q,
  };
  if (rt_cfg) {
    be.opts.timeout_ms = rt_cfg->query_timeout_ms;
    be.opts.lookback_ms = rt_cfg->lookback_delta_ms;
    be.opts.max_samples = rt_cfg->max_samples;
    be.split_interval_ms = rt_cfg->split_interval_ms;
    be.total_shards = rt_cfg->total_shards > 0 ? (uint32_t)rt_cfg->total_shards : 0;
  }
  return pql_api_register(s, &be, out);
}
