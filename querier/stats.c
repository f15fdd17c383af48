/* stats.c - per-tenant statistics on the querier, in Mimir's JSON shapes:
 *   /api/v1/user_stats                series in the ingesters and the ingestion rate;
 *   /api/v1/cardinality/label_names   distinct values per label name;
 *   /api/v1/cardinality/label_values  series per value of the named labels.
 * Every number covers the caller's tenant only. The ingesters answer "ingester.UserStats" and
 * "ingester.Cardinality"; the answers of one copy of the data (one ring zone, or one configured
 * ingester) are added up and the copies are merged by taking the largest count, so that a series
 * held by several replicas counts once. See querier/DESIGN.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/floatfmt.h"
#include "querier/querier.h"
#include "querier/querier_int.h"
#include "rpc.pb-c.h"

#define QRY_CARD_DEFAULT_LIMIT 20
#define QRY_CARD_MAX_LIMIT 500

/* ------------------------------------------------------------ responses */

static void st_fanout_error(rt_http_resp *resp, rt_err err, const char *msg) {
  const char *m = msg && msg[0] ? msg : rt_strerror(err);
  if (err == RT_ENOMEM) {
    rt_http_api_error(resp, 500, "internal", m);
  } else {
    rt_http_api_error(resp, 503, "unavailable", m);
  }
}

static void st_done(rt_http_resp *resp) {
  if (resp->body.oom) {
    rt_buf_reset(&resp->body);
    resp->body.oom = false;
    rt_http_api_error(resp, 500, "internal", "out of memory");
  }
}

static void st_num(rt_buf *b, double v) {
  char tmp[RT_FLOAT_SHORT];
  size_t n = rt_float_format_json(tmp, v);
  /* JSON has no NaN / Inf: a rate is never one, but stay valid */
  if (tmp[0] == 'N' || tmp[0] == '+' || (tmp[0] == '-' && tmp[1] == 'I')) {
    rt_buf_puts(b, "0");
    return;
  }
  rt_buf_append(b, tmp, n);
}

/* ------------------------------------------------------------ copies */

/* Dense copy numbers 0..ncopies-1 for the replies' copy ids. */
static size_t st_copies(qry_reply *r, size_t n, size_t *dense) {
  size_t nc = 0;
  for (size_t i = 0; i < n; i++) {
    size_t k = 0;
    while (k < i && r[k].copy != r[i].copy) {
      k++;
    }
    dense[i] = k < i ? dense[k] : nc++;
  }
  return nc;
}

/* ------------------------------------------------------------ user_stats */

static void st_user_stats(qry_querier *q, const char *tenant, rt_http_resp *resp) {
  Ringtail__UserStatsRequest req = RINGTAIL__USER_STATS_REQUEST__INIT;
  req.tenant = (char *)tenant;
  size_t len = ringtail__user_stats_request__get_packed_size(&req);
  uint8_t *body = rt_alloc(len ? len : 1);
  if (!body) {
    rt_http_api_error(resp, 500, "internal", "out of memory");
    return;
  }
  ringtail__user_stats_request__pack(&req, body);
  qry_reply *rs = NULL;
  size_t n = 0;
  char err[512] = "";
  rt_err e = qry_gather_copies(q, "ingester.UserStats", body, len, &rs, &n, err, sizeof err);
  rt_free(body, len ? len : 1);
  if (e != RT_OK) {
    st_fanout_error(resp, e, err);
    return;
  }
  size_t *dense = rt_calloc(n ? n : 1, sizeof *dense);
  double *series = rt_calloc(n ? n : 1, sizeof *series);
  double *rate = rt_calloc(n ? n : 1, sizeof *rate);
  double *api = rt_calloc(n ? n : 1, sizeof *api);
  double *rule = rt_calloc(n ? n : 1, sizeof *rule);
  if (!dense || !series || !rate || !api || !rule) {
    rt_http_api_error(resp, 500, "internal", "out of memory");
    goto out;
  }
  size_t nc = st_copies(rs, n, dense);
  for (size_t i = 0; i < n; i++) {
    Ringtail__UserStatsResponse *r = ringtail__user_stats_response__unpack(
        NULL, rs[i].body.len, (const uint8_t *)(rs[i].body.data ? rs[i].body.data : ""));
    if (!r) {
      char m[300];
      snprintf(m, sizeof m, "ingester %s: malformed ingester.UserStats reply", rs[i].endpoint);
      rt_http_api_error(resp, 500, "internal", m);
      goto out;
    }
    series[dense[i]] += (double)r->num_series;
    rate[dense[i]] += r->ingestion_rate;
    api[dense[i]] += r->api_ingestion_rate;
    rule[dense[i]] += r->rule_ingestion_rate;
    ringtail__user_stats_response__free_unpacked(r, NULL);
  }
  double s = 0, ra = 0, ap = 0, ru = 0;
  for (size_t c = 0; c < nc; c++) {
    s = series[c] > s ? series[c] : s;
    ra = rate[c] > ra ? rate[c] : ra;
    ap = api[c] > ap ? api[c] : ap;
    ru = rule[c] > ru ? rule[c] : ru;
  }
  rt_buf_reset(&resp->body);
  resp->status = 200;
  resp->content_type = "application/json";
  rt_buf_printf(&resp->body, "{\"numSeries\":%.0f,\"ingestionRate\":", s);
  st_num(&resp->body, ra);
  rt_buf_puts(&resp->body, ",\"APIIngestionRate\":");
  st_num(&resp->body, ap);
  rt_buf_puts(&resp->body, ",\"ruleIngestionRate\":");
  st_num(&resp->body, ru);
  rt_buf_puts(&resp->body, "}");
  st_done(resp);
out:
  rt_free(dense, 0);
  rt_free(series, 0);
  rt_free(rate, 0);
  rt_free(api, 0);
  rt_free(rule, 0);
  qry_replies_free(rs, n);
}

/* ------------------------------------------------------------ cardinality */

typedef struct st_ent {
  const char *name, *value;
  size_t copy;
  uint64_t series;
} st_ent;

static int st_ent_cmp(const void *a, const void *b) {
  const st_ent *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  if (!c) {
    c = strcmp(x->value, y->value);
  }
  if (!c) {
    c = (x->copy > y->copy) - (x->copy < y->copy);
  }
  return c;
}

/* A merged (name, value) or (name) with its count. */
typedef struct st_item {
  const char *key;
  uint64_t count;
  uint64_t series;    /* label_values: series with the label */
  size_t first, n;    /* label_values: its values in the merged value array */
} st_item;

static int st_item_cmp(const void *a, const void *b) {
  const st_item *x = a, *y = b;
  if (x->count != y->count) {
    return x->count > y->count ? -1 : 1;
  }
  return strcmp(x->key, y->key);
}

static bool st_limit(const rt_http_req *req, size_t *out, rt_http_resp *resp) {
  const char *v = rt_http_param(req, "limit");
  *out = QRY_CARD_DEFAULT_LIMIT;
  if (!v || !*v) {
    return true;
  }
  char *end;
  long long l = strtoll(v, &end, 10);
  if (*end || l < 0 || l > QRY_CARD_MAX_LIMIT) {
    char m[200];
    snprintf(m, sizeof m, "limit: must be an integer between 0 and %d", QRY_CARD_MAX_LIMIT);
    rt_http_api_error(resp, 400, "bad_data", m);
    return false;
  }
  *out = (size_t)l;
  return true;
}

static void st_cardinality(qry_querier *q, bool values, const char *tenant,
                           const rt_http_req *req, rt_http_resp *resp) {
  size_t limit;
  if (!st_limit(req, &limit, resp)) {
    return;
  }
  const char *names[256];
  size_t nnames = 0;
  if (values) {
    nnames = rt_http_params(req, "label_names[]", names, RT_ARRAY_LEN(names));
    if (nnames == 0) {
      rt_http_api_error(resp, 400, "bad_data", "label_names[]: at least one label name is required");
      return;
    }
    if (nnames > RT_ARRAY_LEN(names)) {
      rt_http_api_error(resp, 400, "bad_data", "label_names[]: at most 256 label names");
      return;
    }
    for (size_t i = 0; i < nnames; i++) {
      if (!names[i][0]) {
        rt_http_api_error(resp, 400, "bad_data", "label_names[]: a label name is empty");
        return;
      }
    }
  }
  qry_selector sel = {0};
  const char *selector = rt_http_param(req, "selector");
  if (selector && *selector) {
    char perr[512];
    if (qry_selector_parse(selector, strlen(selector), 0, &sel, perr, sizeof perr) != RT_OK) {
      char m[700];
      snprintf(m, sizeof m, "selector: %s", perr);
      rt_http_api_error(resp, 400, "bad_data", m);
      return;
    }
  }
  rt_arena *a = rt_arena_create(64 * 1024);
  qry_reply *rs = NULL;
  size_t n = 0;
  if (!a) {
    qry_selector_fini(&sel);
    rt_http_api_error(resp, 500, "internal", "out of memory");
    return;
  }
  Ringtail__CardinalityRequest creq = RINGTAIL__CARDINALITY_REQUEST__INIT;
  creq.tenant = (char *)tenant;
  creq.n_label_names = nnames;
  creq.label_names = (char **)names;
  Prometheus__LabelMatcher *mm = rt_arena_alloc(a, (sel.n ? sel.n : 1) * sizeof *mm);
  Prometheus__LabelMatcher **mv = rt_arena_alloc(a, (sel.n ? sel.n : 1) * sizeof *mv);
  size_t len = 0;
  uint8_t *body = NULL;
  if (mm && mv) {
    for (size_t i = 0; i < sel.n; i++) {
      prometheus__label_matcher__init(&mm[i]);
      switch (sel.m[i].type) {
      case RT_MATCH_EQ: mm[i].type = PROMETHEUS__LABEL_MATCHER__TYPE__EQ; break;
      case RT_MATCH_NEQ: mm[i].type = PROMETHEUS__LABEL_MATCHER__TYPE__NEQ; break;
      case RT_MATCH_RE: mm[i].type = PROMETHEUS__LABEL_MATCHER__TYPE__RE; break;
      case RT_MATCH_NRE: mm[i].type = PROMETHEUS__LABEL_MATCHER__TYPE__NRE; break;
      }
      mm[i].name = (char *)sel.m[i].name;
      mm[i].value = (char *)sel.m[i].value;
      mv[i] = &mm[i];
    }
    creq.n_matchers = sel.n;
    creq.matchers = mv;
    len = ringtail__cardinality_request__get_packed_size(&creq);
    body = rt_arena_alloc(a, len ? len : 1);
  }
  if (!body) {
    rt_http_api_error(resp, 500, "internal", "out of memory");
    goto out;
  }
  ringtail__cardinality_request__pack(&creq, body);
  char err[512] = "";
  rt_err e = qry_gather_copies(q, "ingester.Cardinality", body, len, &rs, &n, err, sizeof err);
  if (e != RT_OK) {
    st_fanout_error(resp, e, err);
    goto out;
  }
  /* every (name, value, copy, count) of every answer */
  size_t *dense = rt_arena_alloc(a, (n ? n : 1) * sizeof *dense);
  uint64_t *total = rt_arena_alloc(a, (n ? n : 1) * sizeof *total);
  if (!dense || !total) {
    rt_http_api_error(resp, 500, "internal", "out of memory");
    goto out;
  }
  memset(total, 0, (n ? n : 1) * sizeof *total);
  size_t nc = st_copies(rs, n, dense);
  ProtobufCAllocator al = rt_arena_pb_allocator(a);
  st_ent *ents = NULL;
  size_t nents = 0, cap = 0;
  bool oom = false;
  for (size_t i = 0; i < n && !oom; i++) {
    Ringtail__CardinalityResponse *r = ringtail__cardinality_response__unpack(
        &al, rs[i].body.len, (const uint8_t *)(rs[i].body.data ? rs[i].body.data : ""));
    if (!r) {
      char m[300];
      snprintf(m, sizeof m, "ingester %s: malformed ingester.Cardinality reply", rs[i].endpoint);
      rt_http_api_error(resp, 500, "internal", m);
      rt_free(ents, cap * sizeof *ents);
      goto out;
    }
    total[dense[i]] += r->num_series;
    for (size_t k = 0; k < r->n_labels && !oom; k++) {
      const Ringtail__LabelCardinality *lc = r->labels[k];
      for (size_t j = 0; j < lc->n_values; j++) {
        if (nents == cap) {
          size_t ncap = cap ? cap * 2 : 256;
          st_ent *ne = rt_realloc(ents, cap * sizeof *ne, ncap * sizeof *ne);
          if (!ne) {
            oom = true;
            break;
          }
          ents = ne;
          cap = ncap;
        }
        ents[nents++] = (st_ent){lc->name ? lc->name : "", lc->values[j]->value ? lc->values[j]->value : "",
                                 dense[i], lc->values[j]->series};
      }
    }
  }
  (void)nc;
  if (oom) {
    rt_free(ents, cap * sizeof *ents);
    rt_http_api_error(resp, 500, "internal", "out of memory");
    goto out;
  }
  uint64_t series_total = 0;
  for (size_t c = 0; c < n; c++) {
    series_total = total[c] > series_total ? total[c] : series_total;
  }
  if (nents > 1) {
    qsort(ents, nents, sizeof *ents, st_ent_cmp);
  }
  /* merge: per (name, value) the sum within a copy, the largest over copies */
  st_item *vals = rt_arena_alloc(a, (nents ? nents : 1) * sizeof *vals);
  st_item *lbls = rt_arena_alloc(a, (nents ? nents : 1) * sizeof *lbls);
  if (!vals || !lbls) {
    rt_free(ents, cap * sizeof *ents);
    rt_http_api_error(resp, 500, "internal", "out of memory");
    goto out;
  }
  size_t nvals = 0, nlbls = 0;
  for (size_t i = 0; i < nents;) {
    size_t j = i;
    uint64_t best = 0, cur = 0;
    size_t copy = ents[i].copy;
    while (j < nents && strcmp(ents[j].name, ents[i].name) == 0 &&
           strcmp(ents[j].value, ents[i].value) == 0) {
      if (ents[j].copy != copy) {
        best = cur > best ? cur : best;
        cur = 0;
        copy = ents[j].copy;
      }
      cur += ents[j].series;
      j++;
    }
    best = cur > best ? cur : best;
    if (nlbls == 0 || strcmp(lbls[nlbls - 1].key, ents[i].name) != 0) {
      lbls[nlbls++] = (st_item){.key = ents[i].name, .first = nvals};
    }
    st_item *l = &lbls[nlbls - 1];
    vals[nvals++] = (st_item){.key = ents[i].value, .count = best};
    l->n++;
    l->count++;          /* distinct values */
    l->series += best;   /* a series has one value of a label: the sum is the series with it */
    i = j;
  }
  rt_free(ents, cap * sizeof *ents);

  rt_buf *b = &resp->body;
  rt_buf_reset(b);
  resp->status = 200;
  resp->content_type = "application/json";
  if (!values) {
    uint64_t vtotal = 0;
    for (size_t i = 0; i < nlbls; i++) {
      vtotal += lbls[i].count;
    }
    qsort(lbls, nlbls, sizeof *lbls, st_item_cmp);
    rt_buf_printf(b, "{\"label_values_count_total\":%llu,\"label_names_count\":%zu,\"cardinality\":[",
                  (unsigned long long)vtotal, nlbls);
    for (size_t i = 0; i < nlbls && i < limit; i++) {
      rt_buf_puts(b, i ? ",{\"label_name\":" : "{\"label_name\":");
      rt_buf_json_str(b, lbls[i].key, strlen(lbls[i].key));
      rt_buf_printf(b, ",\"label_values_count\":%llu}", (unsigned long long)lbls[i].count);
    }
    rt_buf_puts(b, "]}");
  } else {
    rt_buf_printf(b, "{\"series_count_total\":%llu,\"labels\":[", (unsigned long long)series_total);
    /* in the order asked for; a name without series is listed with zero counts */
    for (size_t k = 0; k < nnames; k++) {
      bool dup = false;
      for (size_t p = 0; p < k && !dup; p++) {
        dup = strcmp(names[p], names[k]) == 0;
      }
      if (dup) {
        continue;
      }
      const st_item *l = NULL;
      for (size_t i = 0; i < nlbls && !l; i++) {
        if (strcmp(lbls[i].key, names[k]) == 0) {
          l = &lbls[i];
        }
      }
      rt_buf_puts(b, b->data[b->len - 1] == '[' ? "{\"label_name\":" : ",{\"label_name\":");
      rt_buf_json_str(b, names[k], strlen(names[k]));
      rt_buf_printf(b, ",\"label_values_count\":%llu,\"series_count\":%llu,\"cardinality\":[",
                    (unsigned long long)(l ? l->count : 0), (unsigned long long)(l ? l->series : 0));
      if (l) {
        qsort(vals + l->first, l->n, sizeof *vals, st_item_cmp);
        for (size_t i = 0; i < l->n && i < limit; i++) {
          const st_item *v = &vals[l->first + i];
          rt_buf_puts(b, i ? ",{\"label_value\":" : "{\"label_value\":");
          rt_buf_json_str(b, v->key, strlen(v->key));
          rt_buf_printf(b, ",\"series_count\":%llu}", (unsigned long long)v->count);
        }
      }
      rt_buf_puts(b, "]}");
    }
    rt_buf_puts(b, "]}");
  }
  st_done(resp);
out:
  qry_replies_free(rs, n);
  qry_selector_fini(&sel);
  rt_arena_destroy(a);
}

void qry_stats_handle(qry_querier *q, qry_endpoint ep, const char *tenant, const rt_http_req *req,
                      rt_http_resp *resp) {
  switch (ep) {
  case QRY_EP_USER_STATS:
    st_user_stats(q, tenant, resp);
    break;
  case QRY_EP_CARD_NAMES:
    st_cardinality(q, false, tenant, req, resp);
    break;
  case QRY_EP_CARD_VALUES:
    st_cardinality(q, true, tenant, req, resp);
    break;
  default:
    rt_http_api_error(resp, 404, "not_found", "unknown endpoint");
    break;
  }
}
