/* api.c - the Prometheus HTTP API handlers of the querier: parameters in, JSON out.
 *
 * The handlers follow Prometheus 3's web/api/v1 handlers step by step (the order in which the
 * parameters are checked decides which error a client sees first) and answer with the same
 * JSON and error wording. They use only req->params and req->path, so that they can be driven
 * without a server; routes.c binds them to the HTTP server. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promql/promql.h"
#include "querier/querier.h"
#include "common/limits.h"
#include "querier/querier_int.h"

/* ------------------------------------------------------------ parameters */

static const char *param(const rt_http_req *req, const char *name) {
  for (size_t i = 0; i < req->nparams; i++) {
    if (strcmp(req->params[i].key, name) == 0) {
      return req->params[i].value ? req->params[i].value : "";
    }
  }
  return NULL;
}

/* Like Go's r.FormValue: "" when absent. */
static const char *form_value(const rt_http_req *req, const char *name) {
  const char *v = param(req, name);
  return v ? v : "";
}

static size_t param_count(const rt_http_req *req, const char *name) {
  size_t n = 0;
  for (size_t i = 0; i < req->nparams; i++) {
    n += strcmp(req->params[i].key, name) == 0;
  }
  return n;
}

/* ------------------------------------------------------------ responses */

static int status_of(const char *type) {
  if (strcmp(type, "bad_data") == 0) {
    return 400;
  }
  if (strcmp(type, "execution") == 0) {
    return 422;
  }
  if (strcmp(type, "canceled") == 0) {
    return 499;
  }
  if (strcmp(type, "timeout") == 0 || strcmp(type, "unavailable") == 0) {
    return 503;
  }
  if (strcmp(type, "not_found") == 0) {
    return 404;
  }
  return 500;
}

static void api_error(rt_http_resp *resp, const char *type, const char *msg) {
  rt_http_api_error(resp, status_of(type), type, msg);
}

static void api_errorf(rt_http_resp *resp, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void api_errorf(rt_http_resp *resp, const char *type, const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  api_error(resp, type, msg);
}

/* An error from the fan-out: the ingesters could not answer. */
static void api_fanout_error(rt_http_resp *resp, rt_err err, const char *msg) {
  const char *type = "unavailable";
  if (err == RT_EINVAL) {
    type = "bad_data";
  } else if (err == RT_ELIMIT) {
    type = "execution";
  } else if (err == RT_ENOMEM) {
    type = "internal";
  }
  api_error(resp, type, msg && msg[0] ? msg : rt_strerror(err));
}

static void begin_success(rt_http_resp *resp) {
  rt_buf_reset(&resp->body);
  resp->status = 200;
  resp->content_type = "application/json";
  rt_buf_puts(&resp->body, "{\"status\":\"success\",\"data\":");
}

static void end_success(rt_http_resp *resp, bool truncated) {
  if (truncated) {
    rt_buf_puts(&resp->body, ",\"warnings\":[\"results truncated due to limit\"]");
  }
  rt_buf_putc(&resp->body, '}');
  if (resp->body.oom) {
    rt_buf_reset(&resp->body);
    resp->body.oom = false;
    api_error(resp, "internal", "out of memory");
  }
}

static void json_str(rt_buf *b, const char *s) { rt_buf_json_str(b, s, strlen(s)); }

/* ------------------------------------------------------------ common parameters */

/* Go's strconv.Atoi with its error texts. */
static bool go_atoi(const char *s, long long *out, char *err, size_t errlen) {
  rt_buf b = RT_BUF_INIT;
  qry_go_quote(&b, s, strlen(s), 0);
  const char *p = s;
  if (*p == '+' || *p == '-') {
    p++;
  }
  bool ok = *p != 0;
  for (const char *c = p; *c; c++) {
    if (*c < '0' || *c > '9') {
      ok = false;
    }
  }
  if (!ok) {
    snprintf(err, errlen, "strconv.Atoi: parsing %s: invalid syntax", b.data);
    rt_buf_free(&b);
    return false;
  }
  errno = 0;
  long long v = strtoll(s, NULL, 10);
  if (errno == ERANGE) {
    snprintf(err, errlen, "strconv.Atoi: parsing %s: value out of range", b.data);
    rt_buf_free(&b);
    return false;
  }
  rt_buf_free(&b);
  *out = v;
  return true;
}

/* parseLimitParam: "" = 0 (no limit). */
static bool parse_limit(const rt_http_req *req, rt_http_resp *resp, uint64_t *limit) {
  const char *s = form_value(req, "limit");
  *limit = 0;
  if (!s[0]) {
    return true;
  }
  long long v;
  char err[256];
  if (!go_atoi(s, &v, err, sizeof err)) {
    api_errorf(resp, "bad_data", "invalid parameter \"limit\": %s", err);
    return false;
  }
  if (v < 0) {
    api_error(resp, "bad_data", "invalid parameter \"limit\": limit must be non-negative");
    return false;
  }
  *limit = (uint64_t)v;
  return true;
}

/* parseTimeParam with Prometheus' defaults. */
static bool parse_time_param(const rt_http_req *req, rt_http_resp *resp, const char *name,
                             int64_t def, int64_t *out) {
  const char *s = form_value(req, name);
  if (!s[0]) {
    *out = def;
    return true;
  }
  char err[512];
  if (!qry_parse_time(s, out, err, sizeof err)) {
    api_errorf(resp, "bad_data", "invalid parameter \"%s\": Invalid time value for '%s': %s", name,
               name, err);
    return false;
  }
  return true;
}

typedef struct match_sets {
  qry_selector *sel;
  const rt_matcher **sets;
  size_t *nm;
  size_t n;
} match_sets;

static void match_sets_free(match_sets *ms) {
  for (size_t i = 0; i < ms->n; i++) {
    qry_selector_fini(&ms->sel[i]);
  }
  rt_free(ms->sel, 0);
  rt_free(ms->sets, 0);
  rt_free(ms->nm, 0);
  memset(ms, 0, sizeof *ms);
}

/* parseMatchersParam. On error answers (with the "invalid parameter" prefix when `prefixed`,
 * as the series API does) and returns false. */
static bool parse_matchers(const rt_http_req *req, rt_http_resp *resp, bool prefixed,
                           match_sets *ms) {
  memset(ms, 0, sizeof *ms);
  size_t n = param_count(req, "match[]");
  if (n == 0) {
    return true;
  }
  ms->sel = rt_calloc(n, sizeof *ms->sel);
  ms->sets = rt_calloc(n, sizeof *ms->sets);
  ms->nm = rt_calloc(n, sizeof *ms->nm);
  if (!ms->sel || !ms->sets || !ms->nm) {
    match_sets_free(ms);
    api_error(resp, "internal", "out of memory");
    return false;
  }
  const char *pre = prefixed ? "invalid parameter \"match[]\": " : "";
  for (size_t i = 0; i < req->nparams; i++) {
    if (strcmp(req->params[i].key, "match[]") != 0) {
      continue;
    }
    const char *v = req->params[i].value ? req->params[i].value : "";
    char err[1024];
    rt_err e = qry_selector_parse(v, strlen(v), 0, &ms->sel[ms->n], err, sizeof err);
    if (e != RT_OK) {
      match_sets_free(ms);
      if (e == RT_ENOMEM) {
        api_error(resp, "internal", "out of memory");
      } else {
        api_errorf(resp, "bad_data", "%s%s", pre, err);
      }
      return false;
    }
    ms->sets[ms->n] = ms->sel[ms->n].m;
    ms->nm[ms->n] = ms->sel[ms->n].n;
    ms->n++;
  }
  for (size_t i = 0; i < ms->n; i++) {
    if (!qry_selector_has_nonempty(&ms->sel[i])) {
      match_sets_free(ms);
      api_errorf(resp, "bad_data", "%smatch[] must contain at least one non-empty matcher", pre);
      return false;
    }
  }
  return true;
}

static uint64_t hint_limit(uint64_t limit) { return limit && limit < UINT64_MAX ? limit + 1 : limit; }

/* ------------------------------------------------------------ read limits */

/* The read limits that apply to the series and label APIs (docs/limits.md): a range given by
 * both start and end longer than max_query_length fails with 422; start is raised to
 * now - max_query_lookback (as Mimir does, the older part is simply not read); the series API
 * also counts its series against max_fetched_series_per_query. On a breach answers and returns
 * NULL; otherwise returns the request's budget (free with qry_budget_free). */
static qry_budget *read_limits(const char *tenant, const rt_http_req *req, rt_http_resp *resp,
                               int64_t *start, int64_t *end) {
  rt_buf qb = RT_BUF_INIT;
  for (size_t i = 0; i < req->nparams; i++) {
    if (strcmp(req->params[i].key, "match[]") == 0) {
      if (qb.len) {
        rt_buf_puts(&qb, ", ");
      }
      rt_buf_puts(&qb, req->params[i].value ? req->params[i].value : "");
    }
  }
  if (!qb.len) {
    rt_buf_puts(&qb, "{}");
  }
  rt_buf_putc(&qb, 0);
  qry_budget *b = qb.data ? qry_budget_new(tenant, qb.data) : NULL;
  rt_buf_free(&qb);
  if (!b) {
    api_error(resp, "internal", "out of memory");
    return NULL;
  }
  const char *ps = form_value(req, "start"), *pe = form_value(req, "end");
  if (ps[0] && pe[0] && qry_budget_limits(b)->max_query_length_ms > 0 &&
      *end - *start > qry_budget_limits(b)->max_query_length_ms) {
    char m[1536];
    qry_budget_fail(b, QRY_LIM_LENGTH, *end - *start);
    qry_budget_breached(b, m, sizeof m);
    api_error(resp, "execution", m);
    qry_budget_free(b);
    return NULL;
  }
  int64_t min = qry_budget_min_time(b);
  if (*start < min) {
    *start = min;
  }
  return b;
}

/* ------------------------------------------------------------ handlers */

static void api_series(qry_querier *q, const char *tenant, const rt_http_req *req,
                       rt_http_resp *resp) {
  if (param_count(req, "match[]") == 0) {
    api_error(resp, "bad_data", "no match[] parameter provided");
    return;
  }
  uint64_t limit;
  int64_t start, end;
  if (!parse_limit(req, resp, &limit) ||
      !parse_time_param(req, resp, "start", QRY_MIN_TIME_MS, &start) ||
      !parse_time_param(req, resp, "end", QRY_MAX_TIME_MS, &end)) {
    return;
  }
  match_sets ms;
  if (!parse_matchers(req, resp, true, &ms)) {
    return;
  }
  qry_budget *b = read_limits(tenant, req, resp, &start, &end);
  if (!b) {
    match_sets_free(&ms);
    return;
  }
  qry_select_opts o = {.labels_only = true, .limit = hint_limit(limit), .budget = b};
  qry_result r;
  char err[1536];
  rt_err e = qry_select_union(q, tenant, ms.sets, ms.nm, ms.n, start, end, &o, &r, err, sizeof err);
  qry_budget_free(b);
  match_sets_free(&ms);
  if (e != RT_OK) {
    api_fanout_error(resp, e, err);
    return;
  }
  size_t n = r.nseries;
  bool truncated = limit && n > limit;
  if (truncated) {
    n = (size_t)limit;
  }
  begin_success(resp);
  rt_buf_putc(&resp->body, '[');
  for (size_t i = 0; i < n; i++) {
    const qry_series *s = &r.series[i];
    rt_buf_puts(&resp->body, i ? ",{" : "{");
    for (size_t k = 0; k < s->nlabels; k++) {
      if (k) {
        rt_buf_putc(&resp->body, ',');
      }
      json_str(&resp->body, s->labels[k].name);
      rt_buf_putc(&resp->body, ':');
      json_str(&resp->body, s->labels[k].value);
    }
    rt_buf_putc(&resp->body, '}');
  }
  rt_buf_putc(&resp->body, ']');
  qry_result_free(&r);
  end_success(resp, truncated);
}

static void write_strings(rt_http_resp *resp, const qry_strings *s, uint64_t limit) {
  size_t n = s->n;
  bool truncated = limit && n > limit;
  if (truncated) {
    n = (size_t)limit;
  }
  begin_success(resp);
  rt_buf_putc(&resp->body, '[');
  for (size_t i = 0; i < n; i++) {
    if (i) {
      rt_buf_putc(&resp->body, ',');
    }
    json_str(&resp->body, s->v[i]);
  }
  rt_buf_putc(&resp->body, ']');
  end_success(resp, truncated);
}

static void api_labels(qry_querier *q, const char *tenant, const rt_http_req *req,
                       rt_http_resp *resp) {
  uint64_t limit;
  int64_t start, end;
  if (!parse_limit(req, resp, &limit) ||
      !parse_time_param(req, resp, "start", QRY_MIN_TIME_MS, &start) ||
      !parse_time_param(req, resp, "end", QRY_MAX_TIME_MS, &end)) {
    return;
  }
  match_sets ms;
  if (!parse_matchers(req, resp, false, &ms)) {
    return;
  }
  qry_budget *b = read_limits(tenant, req, resp, &start, &end);
  if (!b) {
    match_sets_free(&ms);
    return;
  }
  qry_budget_free(b);
  qry_strings s = {0};
  char err[1024];
  rt_err e = start > end ? RT_OK : qry_label_names(q, tenant, ms.sets, ms.nm, ms.n, start, end, hint_limit(limit), &s,
                             err, sizeof err);
  match_sets_free(&ms);
  if (e != RT_OK) {
    api_fanout_error(resp, e, err);
    return;
  }
  write_strings(resp, &s, limit);
  qry_strings_free(&s);
}

static void api_label_values(qry_querier *q, const char *tenant, const rt_http_req *req,
                             rt_http_resp *resp) {
  static const char pre[] = "/api/v1/label/";
  static const char suf[] = "/values";
  const char *path = req->path ? req->path : "";
  size_t pl = strlen(path);
  if (pl < sizeof pre - 1 + sizeof suf - 1 || strncmp(path, pre, sizeof pre - 1) != 0 ||
      strcmp(path + pl - (sizeof suf - 1), suf) != 0 ||
      memchr(path + sizeof pre - 1, '/', pl - (sizeof pre - 1) - (sizeof suf - 1))) {
    rt_buf_reset(&resp->body);
    resp->status = 404;
    resp->content_type = "text/plain; charset=utf-8";
    rt_buf_puts(&resp->body, "404 page not found\n");
    return;
  }
  char *raw = rt_strndup(path + sizeof pre - 1, pl - (sizeof pre - 1) - (sizeof suf - 1));
  char *name = raw ? qry_unescape_name(raw) : NULL;
  rt_free(raw, 0);
  if (!name) {
    api_error(resp, "internal", "out of memory");
    return;
  }
  if (!name[0] || !rt_utf8_valid(name, strlen(name))) {
    rt_buf b = RT_BUF_INIT;
    rt_buf_puts(&b, "invalid label name: ");
    qry_go_quote(&b, name, strlen(name), 0);
    api_error(resp, "bad_data", b.data);
    rt_buf_free(&b);
    rt_free(name, 0);
    return;
  }
  uint64_t limit;
  int64_t start, end;
  match_sets ms;
  if (!parse_limit(req, resp, &limit) ||
      !parse_time_param(req, resp, "start", QRY_MIN_TIME_MS, &start) ||
      !parse_time_param(req, resp, "end", QRY_MAX_TIME_MS, &end) ||
      !parse_matchers(req, resp, false, &ms)) {
    rt_free(name, 0);
    return;
  }
  qry_budget *b = read_limits(tenant, req, resp, &start, &end);
  if (!b) {
    match_sets_free(&ms);
    rt_free(name, 0);
    return;
  }
  qry_budget_free(b);
  qry_strings s = {0};
  char err[1024];
  rt_err e = start > end ? RT_OK : qry_label_values(q, tenant, name, ms.sets, ms.nm, ms.n, start, end,
                              hint_limit(limit), &s, err, sizeof err);
  match_sets_free(&ms);
  rt_free(name, 0);
  if (e != RT_OK) {
    api_fanout_error(resp, e, err);
    return;
  }
  write_strings(resp, &s, limit);
  qry_strings_free(&s);
}

static void api_metadata(qry_querier *q, const char *tenant, const rt_http_req *req,
                         rt_http_resp *resp) {
  long long limit = -1, per_metric = -1;
  char err[1024];
  const char *s = form_value(req, "limit");
  if (s[0] && !go_atoi(s, &limit, err, sizeof err)) {
    api_error(resp, "bad_data", "limit must be a number");
    return;
  }
  s = form_value(req, "limit_per_metric");
  if (s[0] && !go_atoi(s, &per_metric, err, sizeof err)) {
    api_error(resp, "bad_data", "limit_per_metric must be a number");
    return;
  }
  const char *metric = form_value(req, "metric");
  qry_metas m;
  rt_err e = qry_metadata(q, tenant, metric, &m, err, sizeof err);
  if (e != RT_OK) {
    api_fanout_error(resp, e, err);
    return;
  }
  begin_success(resp);
  rt_buf_putc(&resp->body, '{');
  long long nmetrics = 0;
  for (size_t i = 0; i < m.n;) {
    size_t j = i;
    while (j < m.n && strcmp(m.v[j].metric, m.v[i].metric) == 0) {
      j++;
    }
    if (limit >= 0 && nmetrics >= limit) {
      break;
    }
    if (nmetrics++) {
      rt_buf_putc(&resp->body, ',');
    }
    json_str(&resp->body, m.v[i].metric);
    rt_buf_puts(&resp->body, ":[");
    for (size_t k = i; k < j; k++) {
      if (per_metric > 0 && (long long)(k - i) >= per_metric) {
        break;
      }
      rt_buf_puts(&resp->body, k > i ? ",{\"type\":" : "{\"type\":");
      json_str(&resp->body, m.v[k].type);
      rt_buf_puts(&resp->body, ",\"help\":");
      json_str(&resp->body, m.v[k].help);
      rt_buf_puts(&resp->body, ",\"unit\":");
      json_str(&resp->body, m.v[k].unit);
      rt_buf_putc(&resp->body, '}');
    }
    rt_buf_putc(&resp->body, ']');
    i = j;
  }
  rt_buf_putc(&resp->body, '}');
  qry_metas_free(&m);
  end_success(resp, false);
}

static void api_exemplars(qry_querier *q, const char *tenant, const rt_http_req *req,
                          rt_http_resp *resp) {
  (void)q;
  (void)tenant;
  int64_t start, end;
  if (!parse_time_param(req, resp, "start", QRY_MIN_TIME_MS, &start) ||
      !parse_time_param(req, resp, "end", QRY_MAX_TIME_MS, &end)) {
    return;
  }
  if (end < start) {
    api_error(resp, "bad_data", "end timestamp must not be before start timestamp");
    return;
  }
  const char *query = form_value(req, "query");
  pql_expr *expr = NULL;
  char err[1024];
  rt_err e = pql_parse(query, &expr, err, sizeof err);
  if (e != RT_OK) {
    api_error(resp, e == RT_ENOMEM ? "internal" : "bad_data", e == RT_ENOMEM ? "out of memory" : err);
    return;
  }
  /* Prometheus answers 204 without a body when the query selects no series at all */
  rt_buf tree = RT_BUF_INIT;
  pql_expr_json(expr, &tree);
  bool has_selector = tree.data && strstr(tree.data, "\"type\":\"vectorSelector\"");
  rt_buf_free(&tree);
  pql_expr_free(expr);
  if (!has_selector) {
    rt_buf_reset(&resp->body);
    resp->status = 204;
    return;
  }
  /* Ringtail keeps no exemplars yet: every valid request gets an empty list. */
  begin_success(resp);
  rt_buf_puts(&resp->body, "[]");
  end_success(resp, false);
}

/* POST/PUT /api/v1/admin/tsdb/delete_series?match[]=...&start=&end= (Prometheus' shape): 204
 * with no body once every ingester holding the tenant's series has tombstoned them. */
static void api_delete_series(qry_querier *q, const char *tenant, const rt_http_req *req,
                              rt_http_resp *resp) {
  if (param_count(req, "match[]") == 0) {
    api_error(resp, "bad_data", "no match[] parameter provided");
    return;
  }
  int64_t start, end;
  if (!parse_time_param(req, resp, "start", QRY_MIN_TIME_MS, &start) ||
      !parse_time_param(req, resp, "end", QRY_MAX_TIME_MS, &end)) {
    return;
  }
  if (end < start) {
    api_error(resp, "bad_data", "end timestamp must not be before start time");
    return;
  }
  match_sets ms;
  if (!parse_matchers(req, resp, false, &ms)) {
    return;
  }
  uint64_t n = 0;
  char err[1024];
  rt_err e = qry_delete_series(q, tenant, ms.sets, ms.nm, ms.n, start, end, &n, err, sizeof err);
  match_sets_free(&ms);
  if (e != RT_OK) {
    api_fanout_error(resp, e, err);
    return;
  }
  rt_buf_reset(&resp->body);
  resp->status = 204;
}

void qry_api_handle(qry_querier *q, qry_endpoint ep, const char *tenant, const rt_http_req *req,
                    rt_http_resp *resp) {
  if (!tenant || !tenant[0]) {
    tenant = qry_default_tenant(q);
  }
  switch (ep) {
  case QRY_EP_SERIES: api_series(q, tenant, req, resp); break;
  case QRY_EP_LABELS: api_labels(q, tenant, req, resp); break;
  case QRY_EP_LABEL_VALUES: api_label_values(q, tenant, req, resp); break;
  case QRY_EP_METADATA: api_metadata(q, tenant, req, resp); break;
  case QRY_EP_EXEMPLARS: api_exemplars(q, tenant, req, resp); break;
  case QRY_EP_USER_STATS:
  case QRY_EP_CARD_NAMES:
  case QRY_EP_CARD_VALUES: qry_stats_handle(q, ep, tenant, req, resp); break;
  case QRY_EP_DELETE_SERIES: api_delete_series(q, tenant, req, resp); break;
  }
}
