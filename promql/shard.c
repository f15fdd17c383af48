/* shard.c - an aggregation as parallel series-shard sub-queries.
 *
 * Shard i of n sees only the series whose hash % n == i (the ingesters filter). When the
 * aggregated expression maps each series to at most one output series on its own (functions,
 * range functions, subqueries and arithmetic with literals over one selector of one metric
 * name), every group of sum/count/min/max/group is the merge of that group's partial values in
 * the shards; avg is evaluated as sum and count. */
#include "promql/shard.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "promql/pql_int.h"

typedef struct sjob {
  uint32_t index;
  pql_result *r;
  rt_err rc;
} sjob;

struct pql_shard {
  pql_result r;
  sjob *jobs;
  size_t njobs;
  pql_result *whole;  /* the aggregation over the union, or the unsharded fallback */
  rt_arena *a;
};

typedef struct runner {
  const pql_shard_src *src;
  const pql_opts *opts;
  const pql_expr *e;
  int64_t start, end, step;
  bool range;
  uint32_t count;
  sjob *jobs;
  size_t njobs;
  atomic_size_t next;
} runner;

const pql_result *pql_shard_result(const pql_shard *s) { return &s->r; }

void pql_shard_free(pql_shard *s) {
  if (!s) {
    return;
  }
  for (size_t i = 0; i < s->njobs; i++) {
    pql_result_free(s->jobs[i].r);
  }
  pql_result_free(s->whole);
  rt_free(s->jobs, s->njobs * sizeof *s->jobs);
  rt_arena_destroy(s->a);
  rt_free(s, sizeof *s);
}

/* Functions whose output series depends on one input series only and keeps its labels (or
 * drops just the metric name). */
static const char *const per_series[] = {
    "abs", "ceil", "floor", "round", "exp", "ln", "log2", "log10", "sqrt", "sgn", "clamp", "clamp_min",
    "clamp_max", "rate", "irate", "increase", "delta", "idelta", "deriv", "predict_linear", "resets", "changes",
    "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time", "last_over_time",
    "present_over_time", "stddev_over_time", "stdvar_over_time", "quantile_over_time", "mad_over_time",
    "timestamp", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh",
    "deg", "rad",
};

static bool is_literal(const pql_expr *e) {
  while (e && (e->kind == PQL_N_PAREN || e->kind == PQL_N_UNARY)) {
    e = e->a;
  }
  return e && e->kind == PQL_N_NUM;
}

static bool named_selector(const pql_expr *vs) {
  if (vs->name) {
    return true;
  }
  for (size_t i = 0; i < vs->nmatchers; i++) {
    if (vs->matchers[i].type == RT_MATCH_EQ && strcmp(vs->matchers[i].name, "__name__") == 0) {
      return true;
    }
  }
  return false;
}

/* True when e is a per-series chain over exactly one selector; counts selectors in *nsel. */
static bool per_series_chain(const pql_expr *e, int *nsel) {
  if (!e) {
    return false;
  }
  switch (e->kind) {
  case PQL_N_VS:
    (*nsel)++;
    return named_selector(e);
  case PQL_N_MS:
  case PQL_N_SUBQ:
  case PQL_N_PAREN:
    return per_series_chain(e->a, nsel);
  case PQL_N_UNARY:
    return per_series_chain(e->a, nsel);
  case PQL_N_BIN:
    if (e->op < PQL_OP_ADD || e->op > PQL_OP_LTE || e->op == PQL_OP_TRIM_UPPER || e->op == PQL_OP_TRIM_LOWER) {
      return false;
    }
    if (is_literal(e->a)) {
      return per_series_chain(e->b, nsel);
    }
    if (is_literal(e->b)) {
      return per_series_chain(e->a, nsel);
    }
    return false;
  case PQL_N_CALL: {
    bool known = false;
    for (size_t i = 0; i < sizeof per_series / sizeof per_series[0]; i++) {
      if (strcmp(e->func->name, per_series[i]) == 0) {
        known = true;
      }
    }
    if (!known) {
      return false;
    }
    int series_args = 0;
    for (size_t i = 0; i < e->nargs; i++) {
      if (is_literal(e->args[i])) {
        continue;
      }
      if (!per_series_chain(e->args[i], nsel)) {
        return false;
      }
      series_args++;
    }
    return series_args == 1;
  }
  default:
    return false;
  }
}

static const pql_expr *strip_parens(const pql_expr *e) {
  while (e && e->kind == PQL_N_PAREN) {
    e = e->a;
  }
  return e;
}

bool pql_shard_applies(const pql_expr *e) {
  e = strip_parens(e);
  if (!e || e->kind != PQL_N_AGG) {
    return false;
  }
  switch (e->op) {
  case PQL_AGG_SUM:
  case PQL_AGG_COUNT:
  case PQL_AGG_MIN:
  case PQL_AGG_MAX:
  case PQL_AGG_AVG:
  case PQL_AGG_GROUP:
  case PQL_AGG_STDDEV:
  case PQL_AGG_STDVAR:
    break;
  case PQL_AGG_TOPK:
  case PQL_AGG_BOTTOMK:
  case PQL_AGG_QUANTILE:
    if (!is_literal(e->b)) {
      return false;
    }
    break;
  default:
    return false;
  }
  int nsel = 0;
  return per_series_chain(e->a, &nsel) && nsel == 1;
}

static void *worker(void *arg) {
  runner *j = arg;
  for (;;) {
    size_t i = atomic_fetch_add(&j->next, 1);
    if (i >= j->njobs) {
      return NULL;
    }
    sjob *s = &j->jobs[i];
    pql_storage st;
    s->rc = j->src->get(j->src->ctx, j->src->tenant, s->index, j->count, &st);
    if (s->rc != RT_OK) {
      continue;
    }
    s->rc = pql_eval(&st, j->opts, j->e, j->start, j->end, j->step, j->range, &s->r);
    if (j->src->done) {
      j->src->done(j->src->ctx, &st);
    }
  }
}

#define MARK "__rt_shard_inner__"

static bool add_annot(rt_arena *a, const char ***list, size_t *n, size_t cap, const char *s) {
  for (size_t i = 0; i < *n; i++) {
    if (strcmp((*list)[i], s) == 0) {
      return true;
    }
  }
  if (*n >= cap) {
    return true;
  }
  (*list)[(*n)++] = rt_arena_strndup(a, s, strlen(s));
  return (*list)[*n - 1] != NULL;
}

static int series_cmp(const void *a, const void *b) {
  const pql_series *x = a, *y = b;
  return rt_labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

/* Loads every shard's inner series (marked with MARK="1") into m; *hist when one holds a
 * native histogram (not loaded: the caller falls back). */
static rt_err load_inner(pql_shard *s, pql_memstore *m, bool *hist) {
  for (size_t i = 0; i < s->njobs; i++) {
    const pql_result *x = s->jobs[i].r;
    for (size_t k = 0; k < x->nseries; k++) {
      const pql_series *ser = &x->series[k];
      rt_label *l = rt_arena_alloc(s->a, (ser->nlabels + 1) * sizeof *l);
      if (!l) {
        return RT_ENOMEM;
      }
      memcpy(l, ser->labels, ser->nlabels * sizeof *l);
      l[ser->nlabels] = (rt_label){.name = MARK, .value = "1"};
      for (size_t p = 0; p < ser->npoints; p++) {
        if (ser->points[p].h) {
          *hist = true;
          return RT_OK;
        }
        rt_err rc = pql_memstore_add(m, l, ser->nlabels + 1, ser->points[p].t, ser->points[p].v);
        if (rc != RT_OK) {
          return rc;
        }
      }
    }
  }
  return RT_OK;
}

/* The aggregation of e over the marked series: its text with the inner expression replaced. */
static rt_err outer_expr(const pql_expr *agg, pql_expr **out) {
  pql_expr *sel;
  char eb[256];
  rt_err rc = pql_parse("{" MARK "=\"1\"}", &sel, eb, sizeof eb);
  if (rc != RT_OK) {
    return rc;
  }
  pql_expr copy = *agg;
  copy.a = sel;
  rt_buf b = RT_BUF_INIT;
  pql_format(&copy, &b);
  pql_expr_free(sel);
  if (!b.data) {
    return RT_ENOMEM;
  }
  rc = pql_parse(b.data, out, eb, sizeof eb);
  rt_buf_free(&b);
  return rc == RT_EINVAL ? RT_EPROTO : rc;
}

/* s->r from s->whole (the aggregation over the marked union) without the mark, plus the
 * shards' annotations. */
static rt_err finish(pql_shard *s) {
  pql_result *r = &s->r;
  const pql_result *w = s->whole;
  *r = *w;
  if (w->error) {
    return RT_OK;
  }
  size_t nw = w->nwarnings, ni = w->ninfos;
  for (size_t i = 0; i < s->njobs; i++) {
    nw += s->jobs[i].r->nwarnings;
    ni += s->jobs[i].r->ninfos;
    r->samples_total += s->jobs[i].r->samples_total;
    r->prep_ns += s->jobs[i].r->prep_ns;
  }
  r->warnings = rt_arena_alloc(s->a, (nw + 1) * sizeof(char *));
  r->infos = rt_arena_alloc(s->a, (ni + 1) * sizeof(char *));
  r->series = rt_arena_alloc(s->a, (w->nseries + 1) * sizeof *r->series);
  if (!r->warnings || !r->infos || !r->series) {
    return RT_ENOMEM;
  }
  r->nwarnings = r->ninfos = 0;
  for (size_t i = 0; i <= s->njobs; i++) {
    const pql_result *x = i < s->njobs ? s->jobs[i].r : w;
    for (size_t j = 0; j < x->nwarnings; j++) {
      if (!add_annot(s->a, &r->warnings, &r->nwarnings, nw, x->warnings[j])) {
        return RT_ENOMEM;
      }
    }
    for (size_t j = 0; j < x->ninfos; j++) {
      if (!add_annot(s->a, &r->infos, &r->ninfos, ni, x->infos[j])) {
        return RT_ENOMEM;
      }
    }
  }
  for (size_t i = 0; i < w->nseries; i++) {
    pql_series o = w->series[i];
    rt_label *l = rt_arena_alloc(s->a, (o.nlabels + 1) * sizeof *l);
    if (!l) {
      return RT_ENOMEM;
    }
    size_t n = 0;
    for (size_t k = 0; k < o.nlabels; k++) {
      if (strcmp(o.labels[k].name, MARK) != 0) {
        l[n++] = o.labels[k];
      }
    }
    o.labels = l;
    o.nlabels = n;
    r->series[i] = o;
  }
  if (r->type == PQL_MATRIX) {
    qsort(r->series, r->nseries, sizeof *r->series, series_cmp);
  }
  return RT_OK;
}

rt_err pql_shard_eval(const pql_shard_src *src, const pql_opts *opts, const pql_expr *e, int64_t start,
                      int64_t end, int64_t step, bool range, uint32_t count, pql_shard **out) {
  const pql_expr *agg = strip_parens(e);
  pql_shard *s = rt_calloc(1, sizeof *s);
  if (!s) {
    return RT_ENOMEM;
  }
  s->njobs = count;
  s->jobs = rt_calloc(s->njobs, sizeof *s->jobs);
  s->a = rt_arena_create(16384);
  if (!s->jobs || !s->a) {
    s->njobs = s->jobs ? s->njobs : 0;
    pql_shard_free(s);
    return RT_ENOMEM;
  }
  for (size_t i = 0; i < s->njobs; i++) {
    s->jobs[i].index = (uint32_t)i;
  }
  runner j = {.src = src, .opts = opts, .e = agg->a, .start = start, .end = end, .step = step, .range = range,
              .count = count, .jobs = s->jobs, .njobs = s->njobs};
  atomic_init(&j.next, 0);
  pthread_t th[PQL_SHARD_PARALLEL];
  size_t nth = 0;
  for (size_t i = 1; i < PQL_SHARD_PARALLEL && i < s->njobs; i++) {
    if (pthread_create(&th[nth], NULL, worker, &j) == 0) {
      nth++;
    }
  }
  worker(&j);
  for (size_t i = 0; i < nth; i++) {
    pthread_join(th[i], NULL);
  }
  for (size_t i = 0; i < s->njobs; i++) {
    if (s->jobs[i].rc != RT_OK) {
      rt_err rc = s->jobs[i].rc;
      pql_shard_free(s);
      return rc;
    }
    if (s->jobs[i].r->error) {
      s->r = *s->jobs[i].r;
      *out = s;
      return RT_OK;
    }
  }
  /* the aggregation once, over the union of the shards' inner series */
  bool hist = false;
  pql_memstore *m = pql_memstore_create();
  rt_err rc = m ? load_inner(s, m, &hist) : RT_ENOMEM;
  if (rc == RT_OK && !hist) {
    pql_expr *outer = NULL;
    rc = outer_expr(agg, &outer);
    if (rc == RT_OK) {
      pql_storage ms = pql_memstore_storage(m);
      pql_opts o2 = opts ? *opts : (pql_opts){0};
      o2.lookback_ms = 1; /* a step sees exactly the inner value at its own time */
      rc = pql_eval(&ms, &o2, outer, start, end, step, range, &s->whole);
      pql_expr_free(outer);
    }
  }
  pql_memstore_destroy(m);
  if (rc == RT_OK && !hist) {
    rc = finish(s);
    if (rc == RT_OK) {
      *out = s;
      return RT_OK;
    }
  }
  if (rc == RT_ENOMEM) {
    pql_shard_free(s);
    return rc;
  }
  /* native histograms: evaluate once over every series */
  pql_result_free(s->whole);
  s->whole = NULL;
  pql_storage st;
  rc = src->get(src->ctx, src->tenant, 0, 0, &st);
  if (rc == RT_OK) {
    rc = pql_eval(&st, opts, e, start, end, step, range, &s->whole);
    if (src->done) {
      src->done(src->ctx, &st);
    }
  }
  if (rc != RT_OK) {
    pql_shard_free(s);
    return rc;
  }
  s->r = *s->whole;
  *out = s;
  return RT_OK;
}
