/* funcs.c - PromQL functions: the table the parser checks against and their evaluation. */
#include "promql/eval_int.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

enum {
  F_ABS, F_ABSENT, F_ABSENT_OVER_TIME, F_ACOS, F_ACOSH, F_ASIN, F_ASINH, F_ATAN, F_ATANH, F_AVG_OVER_TIME,
  F_CEIL, F_CHANGES, F_CLAMP, F_CLAMP_MAX, F_CLAMP_MIN, F_COS, F_COSH, F_COUNT_OVER_TIME, F_DAYS_IN_MONTH,
  F_DAY_OF_MONTH, F_DAY_OF_WEEK, F_DAY_OF_YEAR, F_DEG, F_DELTA, F_DERIV, F_EXP, F_FLOOR, F_HISTOGRAM_AVG,
  F_HISTOGRAM_COUNT, F_HISTOGRAM_FRACTION, F_HISTOGRAM_QUANTILE, F_HISTOGRAM_QUANTILES, F_HISTOGRAM_SUM,
  F_HISTOGRAM_STDDEV, F_HISTOGRAM_STDVAR, F_DES, F_HOUR, F_IDELTA, F_INCREASE, F_INFO, F_IRATE, F_LABEL_REPLACE,
  F_LABEL_JOIN, F_LAST_OVER_TIME, F_FIRST_OVER_TIME, F_LN, F_LOG10, F_LOG2, F_MAD_OVER_TIME, F_MAX_OVER_TIME,
  F_MIN_OVER_TIME, F_TS_OF_MAX, F_TS_OF_MIN, F_TS_OF_LAST, F_TS_OF_FIRST, F_MINUTE, F_MONTH, F_PI,
  F_PREDICT_LINEAR, F_PRESENT_OVER_TIME, F_QUANTILE_OVER_TIME, F_RAD, F_RATE, F_RESETS, F_ROUND, F_SCALAR, F_SGN,
  F_SIN, F_SINH, F_SORT, F_SORT_DESC, F_SORT_BY_LABEL, F_SORT_BY_LABEL_DESC, F_SQRT, F_STDDEV_OVER_TIME,
  F_STDVAR_OVER_TIME, F_SUM_OVER_TIME, F_TAN, F_TANH, F_TIME, F_TIMESTAMP, F_VECTOR, F_YEAR, F_START, F_END,
  F_RANGE, F_STEP, F_MIN_OF, F_MAX_OF
};

#define S PQL_SCALAR
#define V PQL_VECTOR
#define M PQL_MATRIX
#define STR PQL_STRING

static const pql_func funcs[] = {
    {"abs", {V}, 1, 0, V, F_ABS},
    {"absent", {V}, 1, 0, V, F_ABSENT},
    {"absent_over_time", {M}, 1, 0, V, F_ABSENT_OVER_TIME},
    {"acos", {V}, 1, 0, V, F_ACOS},
    {"acosh", {V}, 1, 0, V, F_ACOSH},
    {"asin", {V}, 1, 0, V, F_ASIN},
    {"asinh", {V}, 1, 0, V, F_ASINH},
    {"atan", {V}, 1, 0, V, F_ATAN},
    {"atanh", {V}, 1, 0, V, F_ATANH},
    {"avg_over_time", {M}, 1, 0, V, F_AVG_OVER_TIME},
    {"ceil", {V}, 1, 0, V, F_CEIL},
    {"changes", {M}, 1, 0, V, F_CHANGES},
    {"clamp", {V, S, S}, 3, 0, V, F_CLAMP},
    {"clamp_max", {V, S}, 2, 0, V, F_CLAMP_MAX},
    {"clamp_min", {V, S}, 2, 0, V, F_CLAMP_MIN},
    {"cos", {V}, 1, 0, V, F_COS},
    {"cosh", {V}, 1, 0, V, F_COSH},
    {"count_over_time", {M}, 1, 0, V, F_COUNT_OVER_TIME},
    {"days_in_month", {V}, 1, 1, V, F_DAYS_IN_MONTH},
    {"day_of_month", {V}, 1, 1, V, F_DAY_OF_MONTH},
    {"day_of_week", {V}, 1, 1, V, F_DAY_OF_WEEK},
    {"day_of_year", {V}, 1, 1, V, F_DAY_OF_YEAR},
    {"deg", {V}, 1, 0, V, F_DEG},
    {"delta", {M}, 1, 0, V, F_DELTA},
    {"deriv", {M}, 1, 0, V, F_DERIV},
    {"exp", {V}, 1, 0, V, F_EXP},
    {"floor", {V}, 1, 0, V, F_FLOOR},
    {"histogram_avg", {V}, 1, 0, V, F_HISTOGRAM_AVG},
    {"histogram_count", {V}, 1, 0, V, F_HISTOGRAM_COUNT},
    {"histogram_fraction", {S, S, V}, 3, 0, V, F_HISTOGRAM_FRACTION},
    {"histogram_quantile", {S, V}, 2, 0, V, F_HISTOGRAM_QUANTILE},
    {"histogram_quantiles", {V, STR, S, S}, 4, -1, V, F_HISTOGRAM_QUANTILES},
    {"histogram_sum", {V}, 1, 0, V, F_HISTOGRAM_SUM},
    {"histogram_stddev", {V}, 1, 0, V, F_HISTOGRAM_STDDEV},
    {"histogram_stdvar", {V}, 1, 0, V, F_HISTOGRAM_STDVAR},
    {"double_exponential_smoothing", {M, S, S}, 3, 0, V, F_DES},
    {"hour", {V}, 1, 1, V, F_HOUR},
    {"idelta", {M}, 1, 0, V, F_IDELTA},
    {"increase", {M}, 1, 0, V, F_INCREASE},
    {"info", {V, V}, 2, 1, V, F_INFO},
    {"irate", {M}, 1, 0, V, F_IRATE},
    {"label_replace", {V, STR, STR, STR, STR}, 5, 0, V, F_LABEL_REPLACE},
    {"label_join", {V, STR, STR, STR}, 4, -1, V, F_LABEL_JOIN},
    {"last_over_time", {M}, 1, 0, V, F_LAST_OVER_TIME},
    {"first_over_time", {M}, 1, 0, V, F_FIRST_OVER_TIME},
    {"ln", {V}, 1, 0, V, F_LN},
    {"log10", {V}, 1, 0, V, F_LOG10},
    {"log2", {V}, 1, 0, V, F_LOG2},
    {"mad_over_time", {M}, 1, 0, V, F_MAD_OVER_TIME},
    {"max_over_time", {M}, 1, 0, V, F_MAX_OVER_TIME},
    {"min_over_time", {M}, 1, 0, V, F_MIN_OVER_TIME},
    {"ts_of_max_over_time", {M}, 1, 0, V, F_TS_OF_MAX},
    {"ts_of_min_over_time", {M}, 1, 0, V, F_TS_OF_MIN},
    {"ts_of_last_over_time", {M}, 1, 0, V, F_TS_OF_LAST},
    {"ts_of_first_over_time", {M}, 1, 0, V, F_TS_OF_FIRST},
    {"minute", {V}, 1, 1, V, F_MINUTE},
    {"month", {V}, 1, 1, V, F_MONTH},
    {"pi", {0}, 0, 0, S, F_PI},
    {"predict_linear", {M, S}, 2, 0, V, F_PREDICT_LINEAR},
    {"present_over_time", {M}, 1, 0, V, F_PRESENT_OVER_TIME},
    {"quantile_over_time", {S, M}, 2, 0, V, F_QUANTILE_OVER_TIME},
    {"rad", {V}, 1, 0, V, F_RAD},
    {"rate", {M}, 1, 0, V, F_RATE},
    {"resets", {M}, 1, 0, V, F_RESETS},
    {"round", {V, S}, 2, 1, V, F_ROUND},
    {"scalar", {V}, 1, 0, S, F_SCALAR},
    {"sgn", {V}, 1, 0, V, F_SGN},
    {"sin", {V}, 1, 0, V, F_SIN},
    {"sinh", {V}, 1, 0, V, F_SINH},
    {"sort", {V}, 1, 0, V, F_SORT},
    {"sort_desc", {V}, 1, 0, V, F_SORT_DESC},
    {"sort_by_label", {V, STR}, 2, -1, V, F_SORT_BY_LABEL},
    {"sort_by_label_desc", {V, STR}, 2, -1, V, F_SORT_BY_LABEL_DESC},
    {"sqrt", {V}, 1, 0, V, F_SQRT},
    {"stddev_over_time", {M}, 1, 0, V, F_STDDEV_OVER_TIME},
    {"stdvar_over_time", {M}, 1, 0, V, F_STDVAR_OVER_TIME},
    {"sum_over_time", {M}, 1, 0, V, F_SUM_OVER_TIME},
    {"tan", {V}, 1, 0, V, F_TAN},
    {"tanh", {V}, 1, 0, V, F_TANH},
    {"time", {0}, 0, 0, S, F_TIME},
    {"timestamp", {V}, 1, 0, V, F_TIMESTAMP},
    {"vector", {S}, 1, 0, V, F_VECTOR},
    {"year", {V}, 1, 1, V, F_YEAR},
    {"start", {0}, 0, 0, S, F_START},
    {"end", {0}, 0, 0, S, F_END},
    {"range", {0}, 0, 0, S, F_RANGE},
    {"step", {0}, 0, 0, S, F_STEP},
    {"min_of", {S, S}, 2, 0, S, F_MIN_OF},
    {"max_of", {S, S}, 2, 0, S, F_MAX_OF},
};

bool pql_func_is_query_time(const pql_func *f) {
  return f->id == F_START || f->id == F_END || f->id == F_RANGE || f->id == F_STEP;
}

#undef S
#undef V
#undef M
#undef STR

const pql_func *pql_func_lookup(const char *name, size_t n) {
  for (size_t i = 0; i < RT_ARRAY_LEN(funcs); i++) {
    if (strlen(funcs[i].name) == n && memcmp(funcs[i].name, name, n) == 0) {
      return &funcs[i];
    }
  }
  return NULL;
}

/* ---------------- helpers ---------------- */

static const pql_expr *unwrap(const pql_expr *e) {
  while (e->kind == PQL_N_PAREN) {
    e = e->a;
  }
  return e;
}

static double linreg(const pql_point *p, size_t n, int64_t icept, double *intercept) {
  double N = 0, sx = 0, cx = 0, sy = 0, cy = 0, sxy = 0, cxy = 0, sx2 = 0, cx2 = 0;
  double inity = p[0].v;
  bool consty = true;
  for (size_t i = 0; i < n; i++) {
    if (consty && i > 0 && p[i].v != inity) {
      consty = false;
    }
    N += 1;
    double x = (double)(p[i].t - icept) / 1e3;
    pql_kahan_inc(x, &sx, &cx);
    pql_kahan_inc(p[i].v, &sy, &cy);
    pql_kahan_inc(x * p[i].v, &sxy, &cxy);
    pql_kahan_inc(x * x, &sx2, &cx2);
  }
  if (consty) {
    if (isinf(inity)) {
      *intercept = NAN;
      return NAN;
    }
    *intercept = inity;
    return 0;
  }
  sx += cx;
  sy += cy;
  sxy += cxy;
  sx2 += cx2;
  double cov = sxy - sx * sy / N;
  double var = sx2 - sx * sx / N;
  double slope = cov / var;
  *intercept = sy / N - slope * sx / N;
  return slope;
}

/* rate/increase/delta over anchored or smoothed windows: no extrapolation; smoothed counts the
 * boundary segments in proportion to how much of them lies inside the window. */
static bool extended_rate(const val *m, const rser *s, bool counter, bool israte, double *out) {
  const pql_point *p = s->p;
  size_t n = s->n;
  double total = 0;
  if (s->ext == PQL_EXT_ANCHORED && !counter) {
    total = p[n - 1].v - p[0].v;
  } else {
    for (size_t i = 1; i < n; i++) {
      double inc = p[i].v - p[i - 1].v;
      if (counter && p[i].v < p[i - 1].v) {
        inc = p[i].v;
      }
      if (s->ext == PQL_EXT_SMOOTHED) {
        double a = (double)p[i - 1].t, b = (double)p[i].t;
        double lo = a, hi = b;
        if (i == 1 && s->before) {
          lo = (double)m->wstart;
        }
        if (i == n - 1 && s->after) {
          hi = (double)m->wend;
        }
        inc *= (hi - lo) / (b - a);
      }
      total += inc;
    }
  }
  if (israte) {
    total /= (double)m->range / 1000.0;
  }
  *out = total;
  return true;
}

static bool extrapolated_rate(const val *m, const rser *s, bool counter, bool israte, double *out) {
  if (s->ext) {
    return extended_rate(m, s, counter, israte, out);
  }
  if (s->n < 2) {
    return false;
  }
  const pql_point *p = s->p;
  size_t n = s->n;
  double res = p[n - 1].v - p[0].v;
  if (counter && !s->rising) {
    double prev = p[0].v;
    for (size_t i = 1; i < n; i++) {
      if (p[i].v < prev) {
        res += prev;
      }
      prev = p[i].v;
    }
  }
  double dstart = (double)(p[0].t - m->wstart) / 1000.0;
  double dend = (double)(m->wend - p[n - 1].t) / 1000.0;
  double sampled = (double)(p[n - 1].t - p[0].t) / 1000.0;
  double avg = sampled / (double)(n - 1);
  double thr = avg * 1.1;
  double interval = sampled;
  if (dstart >= thr) {
    dstart = avg / 2;
  }
  if (counter && res > 0 && p[0].v >= 0) {
    double dzero = sampled * (p[0].v / res);
    if (dzero < dstart) {
      dstart = dzero;
    }
  }
  interval += dstart;
  if (dend >= thr) {
    dend = avg / 2;
  }
  interval += dend;
  double factor = interval / sampled;
  if (israte) {
    factor /= (double)m->range / 1000.0;
  }
  *out = res * factor;
  return true;
}

static bool name_has_suffix(const char *n, const char *suf) {
  size_t a = strlen(n), b = strlen(suf);
  return a >= b && strcmp(n + a - b, suf) == 0;
}

static void absent_labels(qctx *q, const pql_expr *arg, vec *out, int64_t t) {
  arg = unwrap(arg);
  const pql_expr *vs = NULL;
  if (arg->kind == PQL_N_VS) {
    vs = arg;
  } else if (arg->kind == PQL_N_MS) {
    vs = arg->a;
  }
  rt_label tmp[64];
  size_t n = 0;
  if (vs) {
    const char *seen[64];
    size_t nseen = 0;
    for (size_t i = 0; i < vs->nmatchers; i++) {
      const rt_matcher *m = &vs->matchers[i];
      if (strcmp(m->name, "__name__") == 0) {
        continue;
      }
      bool has = false;
      for (size_t k = 0; k < nseen; k++) {
        if (strcmp(seen[k], m->name) == 0) {
          has = true;
        }
      }
      if (m->type == RT_MATCH_EQ && !has && n < 64 && nseen < 64) {
        tmp[n++] = (rt_label){m->name, m->value};
        seen[nseen++] = m->name;
      } else {
        for (size_t k = 0; k < n; k++) {
          if (strcmp(tmp[k].name, m->name) == 0) {
            tmp[k] = tmp[--n];
            break;
          }
        }
      }
    }
  }
  rt_labels_sort(tmp, n);
  pql_vec_push(q, out, pql_ls_make(q, tmp, n), 1, t, false);
}

static double range_fn(qctx *q, int id, const val *m, const rser *s, double arg, double arg2, bool *ok,
                       int64_t t) {
  const pql_point *p = s->p;
  size_t n = s->n;
  *ok = true;
  switch (id) {
  case F_RATE:
  case F_INCREASE:
  case F_DELTA: {
    double r = 0;
    *ok = extrapolated_rate(m, s, id != F_DELTA, id == F_RATE, &r);
    return r;
  }
  case F_IRATE:
  case F_IDELTA: {
    if (n < 2) {
      *ok = false;
      return 0;
    }
    const pql_point *l = &p[n - 1], *pr = &p[n - 2];
    double r;
    if (id == F_IRATE && l->v < pr->v) {
      r = l->v;
    } else {
      r = l->v - pr->v;
    }
    if (id == F_IRATE) {
      double dt = (double)(l->t - pr->t);
      if (dt == 0) {
        *ok = false;
        return 0;
      }
      r /= dt / 1000.0;
    }
    return r;
  }
  case F_DERIV: {
    if (n < 2) {
      *ok = false;
      return 0;
    }
    double ic;
    return linreg(p, n, p[0].t, &ic);
  }
  case F_PREDICT_LINEAR: {
    if (n < 2) {
      *ok = false;
      return 0;
    }
    double ic;
    double slope = linreg(p, n, t, &ic);
    return slope * arg + ic;
  }
  case F_CHANGES: {
    double c = 0;
    for (size_t i = 1; i < n; i++) {
      if (!(p[i].v == p[i - 1].v || (isnan(p[i].v) && isnan(p[i - 1].v)))) {
        c++;
      }
    }
    return c;
  }
  case F_RESETS: {
    double c = 0;
    for (size_t i = 1; i < n; i++) {
      if (p[i].v < p[i - 1].v) {
        c++;
      }
    }
    return c;
  }
  case F_AVG_OVER_TIME: {
    double sum = p[0].v, count = 1, mean = 0, kc = 0;
    bool inc = false;
    for (size_t i = 1; i < n; i++) {
      count = (double)(i + 1);
      if (!inc) {
        double ns = sum, nc = kc;
        pql_kahan_inc(p[i].v, &ns, &nc);
        if (!isinf(ns)) {
          sum = ns;
          kc = nc;
          continue;
        }
        inc = true;
        mean = sum / (count - 1);
        kc /= (count - 1);
      }
      double qq = (count - 1) / count;
      double mm = qq * mean, cc = qq * kc;
      pql_kahan_inc(p[i].v / count, &mm, &cc);
      mean = mm;
      kc = cc;
    }
    if (inc) {
      return mean + kc;
    }
    return sum / count + kc / count;
  }
  case F_SUM_OVER_TIME: {
    double sum = 0, c = 0;
    for (size_t i = 0; i < n; i++) {
      pql_kahan_inc(p[i].v, &sum, &c);
    }
    return sum + c;
  }
  case F_COUNT_OVER_TIME: return (double)n;
  case F_PRESENT_OVER_TIME: return 1;
  case F_MIN_OVER_TIME:
  case F_MAX_OVER_TIME: {
    double v = p[0].v;
    for (size_t i = 1; i < n; i++) {
      if (id == F_MAX_OVER_TIME ? (p[i].v > v || isnan(v)) : (p[i].v < v || isnan(v))) {
        v = p[i].v;
      }
    }
    return v;
  }
  case F_TS_OF_MIN:
  case F_TS_OF_MAX: {
    double v = p[0].v;
    int64_t ts = p[0].t;
    for (size_t i = 1; i < n; i++) {
      if (id == F_TS_OF_MAX ? (p[i].v >= v || isnan(v)) : (p[i].v <= v || isnan(v))) {
        v = p[i].v;
        ts = p[i].t;
      }
    }
    return (double)ts / 1000.0;
  }
  case F_TS_OF_LAST: return (double)p[n - 1].t / 1000.0;
  case F_TS_OF_FIRST: return (double)p[0].t / 1000.0;
  case F_LAST_OVER_TIME: return p[n - 1].v;
  case F_FIRST_OVER_TIME: return p[0].v;
  case F_STDDEV_OVER_TIME:
  case F_STDVAR_OVER_TIME: {
    double count = 0, mean = 0, cm = 0, aux = 0, ca = 0;
    for (size_t i = 0; i < n; i++) {
      count++;
      double delta = p[i].v - (mean + cm);
      pql_kahan_inc(delta / count, &mean, &cm);
      pql_kahan_inc(delta * (p[i].v - (mean + cm)), &aux, &ca);
    }
    double var = (aux + ca) / count;
    return id == F_STDDEV_OVER_TIME ? sqrt(var) : var;
  }
  case F_QUANTILE_OVER_TIME:
  case F_MAD_OVER_TIME: {
    double *vals = pql_ev_alloc(q, n * sizeof *vals);
    for (size_t i = 0; i < n; i++) {
      vals[i] = p[i].v;
    }
    if (id == F_QUANTILE_OVER_TIME) {
      return pql_quantile(arg, vals, n);
    }
    for (size_t i = 0; i < n; i++) {
      if (isnan(p[i].v)) {
        return NAN;
      }
    }
    double med = pql_quantile(0.5, vals, n);
    for (size_t i = 0; i < n; i++) {
      vals[i] = fabs(p[i].v - med);
    }
    return pql_quantile(0.5, vals, n);
  }
  case F_DES: {
    if (n < 2) {
      *ok = false;
      return 0;
    }
    double sf = arg, tf = arg2;
    double s0 = 0, s1 = p[0].v, b = p[1].v - p[0].v;
    for (size_t i = 1; i < n; i++) {
      if (i > 1) {
        /* trend: tf * (s1 - s0) + (1 - tf) * b */
        b = tf * (s1 - s0) + (1 - tf) * b;
      }
      double x = sf * p[i].v;
      double y = (1 - sf) * (s1 + b);
      s0 = s1;
      s1 = x + y;
    }
    return s1;
  }
  default: *ok = false; return 0;
  }
}


/* ---- range functions over native histograms ---- */

static void mix_warn(qctx *q, const pql_expr *pos, const rser *s) {
  const char *nm = pql_ls_get(s->m, "__name__");
  pql_ev_annot(q, true, pos, "encountered a mix of histograms and floats for metric name \"%s\"", nm ? nm : "");
}

static const pql_hist *hsub(qctx *q, const pql_hist *a, const pql_hist *b, double sign, const pql_expr *pos,
                            const rser *s, bool *bad, const char *what) {
  int why;
  bool cvfix = false;
  const pql_hist *r = pql_hist_add(q, a, b, sign, &why, &cvfix);
  if (!r) {
    const char *nm = pql_ls_get(s->m, "__name__");
    pql_ev_annot(q, true, pos,
                 "vector contains a mix of histograms with exponential and custom buckets schemas for metric name "
                 "\"%s\"",
                 nm ? nm : "");
    *bad = true;
    return a;
  }
  if (cvfix) {
    pql_ev_annot(q, false, pos, "mismatched custom buckets were reconciled during %s",
                 what ? what : sign < 0 ? "subtraction" : "aggregation");
  }
  return r;
}

/* Handles a range function over a series holding native histograms. Returns false when the
 * function only works on floats (the caller then drops the histogram points). */
static bool hist_range(qctx *q, const pql_expr *e, int id, const val *m, const rser *s, const pql_expr *pos,
                       int64_t t, bool anyf, vec *out) {
  const pql_point *p = s->p;
  size_t n = s->n;
  const char *nm = pql_ls_get(s->m, "__name__");
  bool bad = false;
  (void)e;
  switch (id) {
  case F_RATE:
  case F_INCREASE:
  case F_DELTA: {
    if (anyf) {
      mix_warn(q, pos, s);
      return true;
    }
    if (s->ext) {
      /* anchored/smoothed: no extrapolation; smoothed scales the boundary segments */
      bool counter = id != F_DELTA;
      const pql_hist *total = NULL;
      if (counter) {
        bool g = false;
        for (size_t i = 0; i < n; i++) {
          g |= p[i].h->hint == PQL_HINT_GAUGE;
        }
        if (g) {
          pql_ev_annot(q, true, pos, "this native histogram metric is not a counter: \"%s\"", nm ? nm : "");
        }
      } else if (p[0].h->hint != PQL_HINT_GAUGE || p[n - 1].h->hint != PQL_HINT_GAUGE) {
        pql_ev_annot(q, true, pos, "this native histogram metric is not a gauge: \"%s\"", nm ? nm : "");
      }
      if (s->ext == PQL_EXT_ANCHORED && !counter) {
        total = hsub(q, p[n - 1].h, p[0].h, -1, pos, s, &bad, NULL);
      } else {
        total = pql_hist_scale(q, p[0].h, 0);
        for (size_t i = 1; i < n && !bad; i++) {
          const pql_hist *inc;
          if (counter && pql_hist_detect_reset(q, p[i].h, p[i - 1].h)) {
            inc = p[i].h;
          } else {
            inc = hsub(q, p[i].h, p[i - 1].h, -1, pos, s, &bad, NULL);
          }
          if (s->ext == PQL_EXT_SMOOTHED) {
            double a = (double)p[i - 1].t, b = (double)p[i].t, lo = a, hi = b;
            if (i == 1 && s->before) {
              lo = (double)m->wstart;
            }
            if (i == n - 1 && s->after) {
              hi = (double)m->wend;
            }
            inc = pql_hist_scale(q, inc, (hi - lo) / (b - a));
          }
          if (!bad) {
            total = hsub(q, total, inc, 1, pos, s, &bad, NULL);
          }
        }
      }
      if (bad) {
        return true;
      }
      pql_hist *r = id == F_RATE ? pql_hist_div(q, total, (double)m->range / 1000.0) : pql_hist_copy(q, total);
      r->hint = PQL_HINT_GAUGE;
      pql_vec_push_h(q, out, s->m, r, t, true);
      return true;
    }
    if (n < 2) {
      return true;
    }
    bool counter = id != F_DELTA;
    const pql_hist *first = p[0].h, *last = p[n - 1].h;
    const pql_hist *h = NULL;
    if (counter) {
      if (first->hint == PQL_HINT_GAUGE || last->hint == PQL_HINT_GAUGE) {
        pql_ev_annot(q, true, pos, "this native histogram metric is not a counter: \"%s\"", nm ? nm : "");
      }
      /* sum over the segments between counter resets of (segment end - segment start); only the
       * first segment starts above zero */
      const pql_hist *start = first;
      for (size_t i = 1; i < n && !bad; i++) {
        if (!pql_hist_detect_reset(q, p[i].h, p[i - 1].h)) {
          continue;
        }
        if (!(start && i == 1)) {
          const pql_hist *seg = start ? hsub(q, p[i - 1].h, start, -1, pos, s, &bad, NULL) : p[i - 1].h;
          h = h ? hsub(q, h, seg, 1, pos, s, &bad, NULL) : seg;
        }
        start = NULL;
      }
      if (!bad) {
        const pql_hist *seg = start ? hsub(q, last, start, -1, pos, s, &bad, NULL) : last;
        h = h ? hsub(q, h, seg, 1, pos, s, &bad, NULL) : seg;
      }
    } else {
      h = hsub(q, last, first, -1, pos, s, &bad, NULL);
      if (first->hint != PQL_HINT_GAUGE || last->hint != PQL_HINT_GAUGE) {
        pql_ev_annot(q, true, pos, "this native histogram metric is not a gauge: \"%s\"", nm ? nm : "");
      }
    }
    if (bad) {
      return true;
    }
    double dstart = (double)(p[0].t - m->wstart) / 1000.0;
    double dend = (double)(m->wend - p[n - 1].t) / 1000.0;
    double sampled = (double)(p[n - 1].t - p[0].t) / 1000.0;
    double avg = sampled / (double)(n - 1);
    double thr = avg * 1.1;
    double interval = sampled;
    if (dstart >= thr) {
      dstart = avg / 2;
    }
    if (counter && h->count > 0 && first->count >= 0) {
      double dzero = sampled * (first->count / h->count);
      if (dzero < dstart) {
        dstart = dzero;
      }
    }
    interval += dstart;
    if (dend >= thr) {
      dend = avg / 2;
    }
    interval += dend;
    double factor = interval / sampled;
    if (id == F_RATE) {
      factor /= (double)m->range / 1000.0;
    }
    pql_hist *r = pql_hist_scale(q, h, factor);
    r->hint = PQL_HINT_GAUGE;
    pql_vec_push_h(q, out, s->m, r, t, true);
    return true;
  }
  case F_IRATE:
  case F_IDELTA: {
    if (n < 2) {
      return true;
    }
    const pql_point *l = &p[n - 1], *pr = &p[n - 2];
    if (!l->h || !pr->h) {
      if (l->h || pr->h) {
        mix_warn(q, pos, s);
        return true;
      }
      return false;
    }
    bool gl = l->h->hint == PQL_HINT_GAUGE, gp = pr->h->hint == PQL_HINT_GAUGE;
    if (id == F_IRATE && (gl || gp)) {
      pql_ev_annot(q, true, pos, "this native histogram metric is not a counter: \"%s\"", nm ? nm : "");
    } else if (id == F_IDELTA && gl != gp) {
      pql_ev_annot(q, true, pos, "this native histogram metric is not a gauge: \"%s\"", nm ? nm : "");
    }
    const pql_hist *h;
    if (id == F_IRATE && pql_hist_detect_reset(q, l->h, pr->h)) {
      h = l->h;
    } else {
      h = hsub(q, l->h, pr->h, -1, pos, s, &bad, NULL);
    }
    if (bad) {
      return true;
    }
    pql_hist *r = pql_hist_copy(q, h);
    if (id == F_IRATE) {
      double dt = (double)(l->t - pr->t) / 1000.0;
      if (dt == 0) {
        return true;
      }
      r = pql_hist_div(q, r, dt);
    }
    r->hint = PQL_HINT_GAUGE;
    pql_vec_push_h(q, out, s->m, r, t, true);
    return true;
  }
  case F_SUM_OVER_TIME:
  case F_AVG_OVER_TIME: {
    if (anyf) {
      mix_warn(q, pos, s);
      return true;
    }
    const pql_hist *h = p[0].h;
    double ks = 0, kc = 0;
    bool hr = false, hn = false;
    for (size_t i = 0; i < n; i++) {
      hr |= p[i].h->hint == PQL_HINT_RESET;
      hn |= p[i].h->hint == PQL_HINT_NOT_RESET;
    }
    if (hr && hn) {
      pql_ev_annot(q, true, pos, "conflicting counter resets during histogram aggregation");
    }
    for (size_t i = 0; i < n && !bad; i++) {
      pql_kahan_inc(p[i].h->sum, &ks, &kc);
      if (i == 0) {
        continue;
      }
      if (id == F_AVG_OVER_TIME) {
        /* incremental mean: mean += h/k - mean/k */
        double k = (double)(i + 1);
        const pql_hist *d = hsub(q, pql_hist_div(q, p[i].h, k), pql_hist_div(q, h, k), -1, pos, s, &bad, "aggregation");
        if (!bad) {
          h = hsub(q, h, d, 1, pos, s, &bad, "aggregation");
        }
      } else {
        h = hsub(q, h, p[i].h, 1, pos, s, &bad, NULL);
      }
    }
    if (bad) {
      return true;
    }
    pql_hist *r = pql_hist_copy(q, h);
    if (id == F_SUM_OVER_TIME) {
      r->sum = ks + kc;
    } else if (isfinite(ks + kc)) {
      r->sum = (ks + kc) / (double)n;
    }
    pql_vec_push_h(q, out, s->m, r, t, true);
    return true;
  }
  case F_LAST_OVER_TIME:
  case F_FIRST_OVER_TIME: {
    const pql_point *x = id == F_LAST_OVER_TIME ? &p[n - 1] : &p[0];
    if (x->h) {
      pql_vec_push_h(q, out, s->m, x->h, t, s->drop);
    } else {
      pql_vec_push(q, out, s->m, x->v, t, s->drop);
    }
    return true;
  }
  case F_COUNT_OVER_TIME:
  case F_PRESENT_OVER_TIME:
  case F_TS_OF_LAST:
  case F_TS_OF_FIRST:
    return false; /* handled by the float code, which only looks at timestamps */
  case F_CHANGES:
  case F_RESETS: {
    double c = 0;
    for (size_t i = 1; i < n; i++) {
      const pql_point *a = &p[i - 1], *b = &p[i];
      if (!a->h || !b->h) {
        if (id == F_CHANGES ? (a->h || b->h || a->v != b->v) : (a->h || b->h || b->v < a->v)) {
          c++;
        }
        continue;
      }
      if (id == F_RESETS ? pql_hist_detect_reset(q, b->h, a->h) : !pql_hist_same(a->h, b->h)) {
        c++;
      }
    }
    pql_vec_push(q, out, s->m, c, t, true);
    return true;
  }
  default: return false;
  }
}

/* Go's math.Max/Min: NaN wins. */
static double go_max(double a, double b) { return isnan(a) || isnan(b) ? NAN : fmax(a, b); }
static double go_min(double a, double b) { return isnan(a) || isnan(b) ? NAN : fmin(a, b); }

static bool drops_name(int id) { return id != F_LAST_OVER_TIME && id != F_FIRST_OVER_TIME; }

static double go_round(double v, double to) {
  double inv = 1.0 / to;
  return floor(v * inv + 0.5) / inv;
}

static double simple_fn(int id, double v, double a1, double a2) {
  switch (id) {
  case F_ABS: return fabs(v);
  case F_CEIL: return ceil(v);
  case F_FLOOR: return floor(v);
  case F_EXP: return exp(v);
  case F_SQRT: return sqrt(v);
  case F_LN: return log(v);
  case F_LOG2: return log2(v);
  case F_LOG10: return log10(v);
  case F_SIN: return sin(v);
  case F_COS: return cos(v);
  case F_TAN: return tan(v);
  case F_ASIN: return asin(v);
  case F_ACOS: return acos(v);
  case F_ATAN: return atan(v);
  case F_SINH: return sinh(v);
  case F_COSH: return cosh(v);
  case F_TANH: return tanh(v);
  case F_ASINH: return asinh(v);
  case F_ACOSH: return acosh(v);
  case F_ATANH: return atanh(v);
  case F_DEG: return v * 180 / M_PI;
  case F_RAD: return v * M_PI / 180;
  case F_SGN: return v < 0 ? -1 : v > 0 ? 1 : v;
  case F_ROUND: return go_round(v, a1);
  case F_CLAMP: return go_max(a1, go_min(a2, v));
  case F_CLAMP_MIN: return go_max(a1, v);
  case F_CLAMP_MAX: return go_min(a1, v);
  default: return v;
  }
}

static double date_fn(int id, double v) {
  if (isnan(v) || isinf(v)) {
    return NAN;
  }
  time_t tt = (time_t)(int64_t)v;
  struct tm tm;
  gmtime_r(&tt, &tm);
  switch (id) {
  case F_DAYS_IN_MONTH: {
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y = tm.tm_year + 1900;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return tm.tm_mon == 1 && leap ? 29 : dm[tm.tm_mon];
  }
  case F_DAY_OF_MONTH: return tm.tm_mday;
  case F_DAY_OF_WEEK: return tm.tm_wday;
  case F_DAY_OF_YEAR: return tm.tm_yday + 1;
  case F_HOUR: return tm.tm_hour;
  case F_MINUTE: return tm.tm_min;
  case F_MONTH: return tm.tm_mon + 1;
  case F_YEAR: return tm.tm_year + 1900;
  default: return NAN;
  }
}

/* Go's natural sort order as used by sort_by_label. */
static int natcmp(const char *a, const char *b) {
  while (*a && *b) {
    if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
      const char *as = a, *bs = b;
      while (*as == '0') {
        as++;
      }
      while (*bs == '0') {
        bs++;
      }
      const char *ae = as, *be = bs;
      while (isdigit((unsigned char)*ae)) {
        ae++;
      }
      while (isdigit((unsigned char)*be)) {
        be++;
      }
      if (ae - as != be - bs) {
        return (ae - as) < (be - bs) ? -1 : 1;
      }
      int c = strncmp(as, bs, (size_t)(ae - as));
      if (c) {
        return c;
      }
      const char *a2 = a, *b2 = b;
      while (isdigit((unsigned char)*a2)) {
        a2++;
      }
      while (isdigit((unsigned char)*b2)) {
        b2++;
      }
      a = a2;
      b = b2;
      continue;
    }
    if (*a != *b) {
      return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
    }
    a++;
    b++;
  }
  return *a ? 1 : *b ? -1 : 0;
}

typedef struct sort_ctx {
  char **labels;
  size_t n;
  bool desc;
} sort_ctx;

static __thread sort_ctx *t_sort; /* qsort has no context argument: the sort's context, per thread */

static int cmp_by_label(const void *x, const void *y) {
  const smp *a = x, *b = y;
  sort_ctx *c = t_sort;
  int r = 0;
  for (size_t i = 0; i < c->n && !r; i++) {
    const char *va = pql_ls_get(a->m, c->labels[i]);
    const char *vb = pql_ls_get(b->m, c->labels[i]);
    va = va ? va : "";
    vb = vb ? vb : "";
    if (strcmp(va, vb) == 0) {
      continue;
    }
    r = natcmp(va, vb);
  }
  if (!r) {
    r = rt_labels_cmp(a->m->l, a->m->n, b->m->l, b->m->n);
  }
  return c->desc ? -r : r;
}

static int cmp_val_asc(const void *x, const void *y) {
  const smp *a = x, *b = y;
  if (isnan(a->v)) {
    return isnan(b->v) ? 0 : 1;
  }
  if (isnan(b->v)) {
    return -1;
  }
  return (a->v > b->v) - (a->v < b->v);
}

static int cmp_val_desc(const void *x, const void *y) {
  const smp *a = x, *b = y;
  if (isnan(a->v)) {
    return isnan(b->v) ? 0 : 1;
  }
  if (isnan(b->v)) {
    return -1;
  }
  return (a->v < b->v) - (a->v > b->v);
}

/* Expands $1, ${1}, $name, ${name} and $$ like Go's regexp.Expand. */
static void expand_repl(pcre2_code *re, const char *tmpl, const char *subj, PCRE2_SIZE *ov, int rc, rt_buf *out) {
  for (const char *p = tmpl; *p;) {
    if (*p != '$') {
      rt_buf_putc(out, *p++);
      continue;
    }
    p++;
    if (*p == '$') {
      rt_buf_putc(out, '$');
      p++;
      continue;
    }
    char name[128];
    size_t nl = 0;
    bool brace = false;
    const char *q = p;
    if (*q == '{') {
      brace = true;
      q++;
    }
    while ((isalnum((unsigned char)*q) || *q == '_') && nl < sizeof name - 1) {
      name[nl++] = *q++;
    }
    name[nl] = 0;
    if (nl == 0 || (brace && *q != '}')) {
      rt_buf_putc(out, '$');
      continue;
    }
    if (brace) {
      q++;
    }
    p = q;
    int idx = -1;
    bool num = true;
    for (size_t i = 0; i < nl; i++) {
      if (!isdigit((unsigned char)name[i])) {
        num = false;
      }
    }
    if (num) {
      idx = nl < 9 ? atoi(name) : -1;
    } else {
      idx = pcre2_substring_number_from_name(re, (PCRE2_SPTR)name);
    }
    if (idx >= 0 && idx < rc && ov[2 * idx] != PCRE2_UNSET) {
      rt_buf_append(out, subj + ov[2 * idx], ov[2 * idx + 1] - ov[2 * idx]);
    }
  }
}

static bool label_name_valid(const char *s) { return s[0] && rt_utf8_valid(s, strlen(s)); }

static val fn_label_replace(qctx *q, const pql_expr *e, val *args, int64_t t) {
  const char *dst = args[1].str, *repl = args[2].str, *src = args[3].str, *rx = args[4].str;
  size_t pl = strlen(rx) + 16;
  char *pat = pql_ev_alloc(q, pl);
  snprintf(pat, pl, "^(?:%s)$", rx);
  int ec;
  PCRE2_SIZE eo;
  pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_DOTALL | PCRE2_UTF, &ec, &eo, NULL);
  if (!re) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(ec, msg, sizeof msg);
    pql_ev_fail(q, "execution", "invalid regular expression in label_replace(): %s", rx);
  }
  if (!label_name_valid(dst)) {
    pcre2_code_free(re);
    pql_ev_fail(q, "execution", "invalid destination label name in label_replace(): %s", dst);
  }
  pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
  val r = {.type = PQL_VECTOR};
  rt_buf b = RT_BUF_INIT;
  for (size_t i = 0; i < args[0].v.n; i++) {
    smp *s = &args[0].v.s[i];
    const char *sv = pql_ls_get(s->m, src);
    sv = sv ? sv : "";
    int rc = md ? pcre2_match(re, (PCRE2_SPTR)sv, strlen(sv), 0, 0, md, NULL) : -1;
    if (rc < 0) {
      pql_vec_push(q, &r.v, s->m, s->v, t, s->drop);
      continue;
    }
    rt_buf_reset(&b);
    expand_repl(re, repl, sv, pcre2_get_ovector_pointer(md), rc, &b);
    char *nv = rt_arena_strndup(q->sa, b.data ? b.data : "", b.len);
    if (!nv) {
      break;
    }
    const pql_ls *m = pql_ls_set(q, s->m, dst, nv);
    pql_vec_push(q, &r.v, m, s->v, t, strcmp(dst, "__name__") == 0 ? false : s->drop);
  }
  rt_buf_free(&b);
  if (md) {
    pcre2_match_data_free(md);
  }
  pcre2_code_free(re);
  (void)e;
  pql_check_dups(q, &r.v);
  return r;
}

static val fn_label_join(qctx *q, val *args, size_t nargs, int64_t t) {
  const char *dst = args[1].str, *sep = args[2].str;
  if (!label_name_valid(dst)) {
    pql_ev_fail(q, "execution", "invalid destination label name in label_join(): %s", dst);
  }
  for (size_t k = 3; k < nargs; k++) {
    if (!label_name_valid(args[k].str)) {
      pql_ev_fail(q, "execution", "invalid source label name in label_join(): %s", args[k].str);
    }
  }
  val r = {.type = PQL_VECTOR};
  rt_buf b = RT_BUF_INIT;
  for (size_t i = 0; i < args[0].v.n; i++) {
    smp *s = &args[0].v.s[i];
    rt_buf_reset(&b);
    for (size_t k = 3; k < nargs; k++) {
      if (k > 3) {
        rt_buf_puts(&b, sep);
      }
      const char *v = pql_ls_get(s->m, args[k].str);
      rt_buf_puts(&b, v ? v : "");
    }
    char *nv = rt_arena_strndup(q->sa, b.data ? b.data : "", b.len);
    if (!nv) {
      break;
    }
    const pql_ls *m = pql_ls_set(q, s->m, dst, nv);
    pql_vec_push(q, &r.v, m, s->v, t, strcmp(dst, "__name__") == 0 ? false : s->drop);
  }
  rt_buf_free(&b);
  pql_check_dups(q, &r.v);
  return r;
}

/* ---- classic histograms ---- */

typedef struct bucket {
  double ub, count;
} bucket;

static int cmp_bucket(const void *a, const void *b) {
  double x = ((const bucket *)a)->ub, y = ((const bucket *)b)->ub;
  return (x > y) - (x < y);
}

static bool almost_equal(double a, double b, double eps) {
  const double min_normal = 2.2250738585072014e-308;
  if (a == b) {
    return true;
  }
  double diff = fabs(a - b);
  if (a == 0 || b == 0 || fabs(a) + fabs(b) < min_normal) {
    return diff < eps * min_normal;
  }
  return diff / (fabs(a) + fabs(b)) < eps;
}

/* What forcing monotonicity changed in one set of classic buckets: the lowest and highest bound
 * whose count was raised and the largest decrease removed (the details of Prometheus' info). */
typedef struct mono_fix {
  bool forced;
  double bmin, bmax, dmax;
} mono_fix;

/* Sorts, coalesces and fixes buckets; returns the new count. */
static size_t prep_buckets(bucket *b, size_t n, mono_fix *fix) {
  *fix = (mono_fix){false, INFINITY, -INFINITY, 0};
  PQL_QSORT(b, n, sizeof *b, cmp_bucket);
  size_t i = 0;
  bucket last = b[0];
  for (size_t k = 1; k < n; k++) {
    if (b[k].ub == last.ub) {
      last.count += b[k].count;
    } else {
      b[i++] = last;
      last = b[k];
    }
  }
  b[i++] = last;
  n = i;
  double prev = b[0].count;
  for (size_t k = 1; k < n; k++) {
    double cur = b[k].count;
    if (cur == prev) {
      continue;
    }
    if (almost_equal(prev, cur, 1e-12)) {
      b[k].count = prev;
      continue;
    }
    if (cur < prev) {
      b[k].count = prev;
      fix->forced = true;
      fix->bmin = fmin(fix->bmin, b[k].ub);
      fix->bmax = fmax(fix->bmax, b[k].ub);
      fix->dmax = fmax(fix->dmax, prev - cur);
      continue;
    }
    prev = cur;
  }
  return n;
}

static double bucket_quantile(double qv, bucket *b, size_t n, mono_fix *fix) {
  fix->forced = false;
  if (isnan(qv)) {
    return NAN;
  }
  if (qv < 0) {
    return -INFINITY;
  }
  if (qv > 1) {
    return INFINITY;
  }
  PQL_QSORT(b, n, sizeof *b, cmp_bucket);
  if (!isinf(b[n - 1].ub) || b[n - 1].ub < 0) {
    return NAN;
  }
  n = prep_buckets(b, n, fix);
  if (n < 2) {
    return NAN;
  }
  double obs = b[n - 1].count;
  if (obs == 0) {
    return NAN;
  }
  double rank = qv * obs;
  size_t lo = 0, hi = n - 1;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (b[mid].count >= rank) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  size_t k = lo;
  if (k == n - 1) {
    return b[n - 2].ub;
  }
  if (k == 0 && b[0].ub <= 0) {
    return b[0].ub;
  }
  double start = 0, end = b[k].ub, count = b[k].count;
  if (k > 0) {
    start = b[k - 1].ub;
    count -= b[k - 1].count;
    rank -= b[k - 1].count;
  }
  return start + (end - start) * (rank / count);
}

/* Fraction of observations between lower and upper, interpolating linearly inside buckets. */
static double bucket_fraction(double lower, double upper, bucket *b, size_t n) {
  mono_fix fix;
  PQL_QSORT(b, n, sizeof *b, cmp_bucket);
  if (n == 0 || !isinf(b[n - 1].ub)) {
    return NAN;
  }
  n = prep_buckets(b, n, &fix);
  double count = b[n - 1].count;
  if (count == 0 || isnan(lower) || isnan(upper)) {
    return NAN;
  }
  if (lower >= upper) {
    return 0;
  }
  double rank = 0, lr = 0, ur = 0;
  bool ls = false, us = false;
  for (size_t i = 0; i < n; i++) {
    double lb = i > 0 ? b[i - 1].ub : (b[0].ub > 0 ? 0 : -INFINITY);
    double ub = b[i].ub;
    if (!ls && lb >= lower) {
      lr = rank;
      ls = true;
    }
    if (!us && lb >= upper) {
      ur = rank;
      us = true;
    }
    if (ls && us) {
      break;
    }
    if (!ls && lb < lower && ub > lower) {
      lr = isinf(lb) ? b[i].count : isinf(ub) ? rank : rank + (b[i].count - rank) * (lower - lb) / (ub - lb);
      ls = true;
    }
    if (!us && lb < upper && ub > upper) {
      ur = isinf(lb) ? b[i].count : isinf(ub) ? rank : rank + (b[i].count - rank) * (upper - lb) / (ub - lb);
      us = true;
    }
    if (ls && us) {
      break;
    }
    rank = b[i].count;
  }
  if (!ls || lr > count) {
    lr = count;
  }
  if (!us || ur > count) {
    ur = count;
  }
  return (ur - lr) / count;
}

typedef struct hgroup {
  const pql_ls *m;
  bucket *b;
  size_t n, cap;
  bool drop;
} hgroup;

/* Prometheus' suffix " for metric name \"NAME\"" of several annotations, empty when m has no
 * name. Writes into buf and returns it. */
static const char *for_metric(const pql_ls *m, char *buf, size_t len) {
  const char *nm = pql_ls_get(m, "__name__");
  if (!nm || !nm[0]) {
    return "";
  }
  snprintf(buf, len, " for metric name \"%s\"", nm);
  return buf;
}

/* histogram_quantile's monotonicity info: Prometheus merges those of one metric name over the
 * whole query (all steps) into one line with the bucket range, the largest correction, how many
 * times it corrected and when. Kept in the query arena until pql_hq_flush_notes(). */
struct hq_note {
  struct hq_note *next;
  const char *name;
  const pql_expr *pos;
  int64_t tmin, tmax;
  double bmin, bmax, dmax;
  int count;
};

static void hq_note_add(qctx *q, const pql_expr *pos, const pql_ls *m, int64_t t, const mono_fix *fix) {
  const char *nm = pql_ls_get(m, "__name__");
  nm = nm ? nm : "";
  struct hq_note *n = q->hq_notes;
  while (n && strcmp(n->name, nm) != 0) {
    n = n->next;
  }
  if (!n) {
    n = rt_arena_alloc(q->qa, sizeof *n);
    char *name = rt_arena_alloc(q->qa, strlen(nm) + 1);
    if (!n || !name) {
      pql_ev_fail(q, "execution", "out of memory");
    }
    strcpy(name, nm);
    *n = (struct hq_note){q->hq_notes, name, pos, t, t, fix->bmin, fix->bmax, fix->dmax, 0};
    q->hq_notes = n;
  }
  n->pos = pos;
  n->tmin = t < n->tmin ? t : n->tmin;
  n->tmax = t > n->tmax ? t : n->tmax;
  n->bmin = fmin(n->bmin, fix->bmin);
  n->bmax = fmax(n->bmax, fix->bmax);
  n->dmax = fmax(n->dmax, fix->dmax);
  n->count++;
}

static void rfc3339(int64_t ms, char *buf, size_t len) {
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void pql_hq_flush_notes(qctx *q) {
  for (struct hq_note *n = q->hq_notes; n; n = n->next) {
    char fm[300] = "", b1[64], b2[64], d[64], t1[64], t2[64];
    if (n->name[0]) {
      snprintf(fm, sizeof fm, " for metric name \"%s\"", n->name);
    }
    rfc3339(n->tmin, t1, sizeof t1);
    rfc3339(n->tmax, t2, sizeof t2);
    pql_ev_annot(q, false, n->pos,
                 "input to histogram_quantile needed to be fixed for monotonicity (see "
                 "https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)%s, from "
                 "buckets %s to %s, with a max diff of %s, over %d samples from %s to %s",
                 fm, rt_float_str(b1, n->bmin, 'g'), rt_float_str(b2, n->bmax, 'g'),
                 rt_float_format_prec(d, sizeof d, n->dmax, 2), n->count, t1, t2);
  }
  q->hq_notes = NULL;
}

/* The info of a native histogram with NaN observations (hist.c tells which one). */
static void nan_obs_info(qctx *q, const pql_expr *pos, const pql_ls *m, int kind) {
  if (kind) {
    char fm[300];
    pql_ev_annot(q, false, pos, "input to histogram_quantile has NaN observations, result is %s%s",
                 kind == 1 ? "NaN" : "skewed higher", for_metric(m, fm, sizeof fm));
  }
}

static hgroup *collect_buckets(qctx *q, const pql_expr *argpos, vec *in, size_t *ngroups) {
  hgroup *gs = pql_ev_alloc(q, (in->n + 1) * sizeof *gs);
  size_t ng = 0;
  for (size_t i = 0; i < in->n; i++) {
    smp *s = &in->s[i];
    const char *le = pql_ls_get(s->m, "le");
    char *end = NULL;
    double ub = le ? strtod(le, &end) : 0;
    if (le && end && *end == 0 && le[0]) {
      /* Go's ParseFloat also accepts +Inf/-Inf/NaN spellings */
    } else if (le && (strcasecmp(le, "+Inf") == 0 || strcasecmp(le, "Inf") == 0)) {
      ub = INFINITY;
    } else {
      char fm[300];
      pql_ev_annot(q, true, argpos, "bucket label \"le\" is missing or has a malformed value of \"%s\"%s", le ? le : "",
                   for_metric(s->m, fm, sizeof fm));
      continue;
    }
    const pql_ls *gm = pql_ls_set(q, s->m, "le", "");
    size_t g;
    for (g = 0; g < ng; g++) {
      if (gs[g].m->hash == gm->hash) {
        break;
      }
    }
    if (g == ng) {
      gs[ng++] = (hgroup){gm, NULL, 0, 0, true};
    }
    hgroup *h = &gs[g];
    if (h->n == h->cap) {
      size_t nc = h->cap ? h->cap * 2 : 16;
      bucket *nb = pql_ev_alloc(q, nc * sizeof *nb);
      if (h->n) {
        memcpy(nb, h->b, h->n * sizeof *nb);
      }
      h->b = nb;
      h->cap = nc;
    }
    h->b[h->n++] = (bucket){ub, s->v};
  }
  *ngroups = ng;
  return gs;
}

static void quantile_warn(qctx *q, const pql_expr *pos, double qv) {
  if (isnan(qv) || qv < 0 || qv > 1) {
    char fb[64];
    pql_ev_annot(q, true, pos, "quantile value should be between 0 and 1, got %s", rt_float_str(fb, qv, 'g'));
  }
}

/* v holds classic results [0, nclassic) and native ones after: a series with both is dropped
 * with a warning. */
static void drop_mixed(qctx *q, const pql_expr *pos, vec *v, size_t nclassic) {
  bool *gone = pql_ev_alloc(q, (v->n + 1) * sizeof *gone);
  memset(gone, 0, (v->n + 1) * sizeof *gone);
  for (size_t i = nclassic; i < v->n; i++) {
    uint64_t hn = pql_ls_drop_name(q, v->s[i].m)->hash;
    for (size_t k = 0; k < nclassic; k++) {
      if (pql_ls_drop_name(q, v->s[k].m)->hash == hn) {
        char fm[300];
        pql_ev_annot(q, true, pos, "vector contains a mix of classic and native histograms%s",
                     for_metric(v->s[i].m, fm, sizeof fm));
        gone[i] = gone[k] = true;
      }
    }
  }
  size_t k = 0;
  for (size_t i = 0; i < v->n; i++) {
    if (!gone[i]) {
      v->s[k++] = v->s[i];
    }
  }
  v->n = k;
}

static val fn_histogram_quantile(qctx *q, const pql_expr *e, double qv, vec *in, int64_t t) {
  val r = {.type = PQL_VECTOR};
  quantile_warn(q, e->args[0], qv);
  size_t ng;
  hgroup *gs = collect_buckets(q, e->args[1], in, &ng);
  for (size_t g = 0; g < ng; g++) {
    mono_fix fix;
    double v = bucket_quantile(qv, gs[g].b, gs[g].n, &fix);
    if (fix.forced) {
      hq_note_add(q, e->args[1], gs[g].m, t, &fix);
    }
    pql_vec_push(q, &r.v, gs[g].m, v, t, true);
  }
  return r;
}

/* ---- info() ---- */

/* The time the first argument of info() reads its samples at: @ and offset of the selector or
 * subquery it is built on. */
static int64_t info_ref_time(qctx *q, const pql_expr *e, int64_t t) {
  switch (e->kind) {
  case PQL_N_VS: return pql_at_time(q, e, t) - pql_off_of(q, e);
  case PQL_N_MS: return pql_at_time(q, e->a, t) - pql_off_of(q, e->a);
  case PQL_N_SUBQ: return info_ref_time(q, e->a, pql_at_time(q, e, t) - pql_off_of(q, e));
  case PQL_N_PAREN:
  case PQL_N_UNARY: return info_ref_time(q, e->a, t);
  case PQL_N_AGG: return info_ref_time(q, e->a, t);
  case PQL_N_BIN: return e->a->type == PQL_VECTOR ? info_ref_time(q, e->a, t) : info_ref_time(q, e->b, t);
  case PQL_N_CALL:
    for (size_t i = 0; i < e->nargs; i++) {
      if (e->args[i]->type == PQL_VECTOR || e->args[i]->type == PQL_MATRIX) {
        return info_ref_time(q, e->args[i], t);
      }
    }
    return t;
  default: return t;
  }
}

static bool str_eq0(const char *a, const char *b) { return strcmp(a ? a : "", b ? b : "") == 0; }

static val fn_info(qctx *q, const pql_expr *e, val *base, int64_t t) {
  val r = {.type = PQL_VECTOR};
  const pql_expr *hv = e->b;
  const pql_expr *sel = e->nargs > 1 ? e->args[1] : NULL;
  vec infos = {0};
  pql_info_series(q, hv, info_ref_time(q, e->args[0], t), &infos);
  for (size_t i = 0; i < base->v.n; i++) {
    smp *s = &base->v.s[i];
    /* info series themselves pass through */
    bool is_info = false;
    for (size_t k = 0; k < hv->nmatchers; k++) {
      is_info |= hv->matchers[k].type == RT_MATCH_EQ || hv->matchers[k].type == RT_MATCH_RE;
    }
    for (size_t k = 0; k < hv->nmatchers; k++) {
      const char *v = pql_ls_get(s->m, hv->matchers[k].name);
      is_info &= rt_matcher_matches(&hv->matchers[k], v ? v : "");
    }
    if (is_info) {
      pql_vec_push(q, &r.v, s->m, s->v, t, s->drop);
      continue;
    }
    const char *inst = pql_ls_get(s->m, "instance"), *job = pql_ls_get(s->m, "job");
    const pql_ls *m = s->m;
    bool used = false;
    for (size_t j = 0; j < infos.n; j++) {
      const smp *in = &infos.s[j];
      if (!str_eq0(pql_ls_get(in->m, "instance"), inst) || !str_eq0(pql_ls_get(in->m, "job"), job)) {
        continue;
      }
      /* a newer info series with the same name and identifying labels wins */
      const char *nm = pql_ls_get(in->m, "__name__");
      bool newer = false;
      for (size_t k = 0; k < infos.n; k++) {
        const smp *o = &infos.s[k];
        if (k != j && str_eq0(pql_ls_get(o->m, "__name__"), nm) && str_eq0(pql_ls_get(o->m, "instance"), inst) &&
            str_eq0(pql_ls_get(o->m, "job"), job) && (o->t > in->t || (o->t == in->t && k > j))) {
          newer = true;
        }
      }
      if (newer) {
        continue;
      }
      bool ok = true;
      for (size_t k = 0; sel && k < sel->nmatchers; k++) {
        const rt_matcher *dm = &sel->matchers[k];
        if (strcmp(dm->name, "__name__") == 0) {
          continue;
        }
        const char *v = pql_ls_get(in->m, dm->name);
        ok &= rt_matcher_matches(dm, v ? v : "");
      }
      if (!ok) {
        continue;
      }
      used = true;
      for (uint32_t k = 0; k < in->m->n; k++) {
        const char *ln = in->m->l[k].name;
        if (!strcmp(ln, "__name__") || !strcmp(ln, "instance") || !strcmp(ln, "job") || pql_ls_get(s->m, ln)) {
          continue;
        }
        const char *prev = pql_ls_get(m, ln);
        if (prev) {
          if (strcmp(prev, in->m->l[k].value) != 0) {
            pql_ev_fail(q, "execution", "conflicting label: \"%s\" has different values in the info series joined by info()",
                        ln);
          }
          continue;
        }
        bool wanted = true;
        bool any_data = false;
        for (size_t x = 0; sel && x < sel->nmatchers; x++) {
          if (strcmp(sel->matchers[x].name, "__name__") != 0) {
            any_data = true;
          }
        }
        if (any_data) {
          wanted = false;
          for (size_t x = 0; x < sel->nmatchers; x++) {
            if (strcmp(sel->matchers[x].name, ln) == 0) {
              wanted = true;
            }
          }
        }
        if (wanted) {
          m = pql_ls_set(q, m, ln, in->m->l[k].value);
        }
      }
    }
    if (!used) {
      bool keep = true;
      for (size_t k = 0; sel && k < sel->nmatchers; k++) {
        if (strcmp(sel->matchers[k].name, "__name__") != 0 && !rt_matcher_matches_empty(&sel->matchers[k])) {
          keep = false;
        }
      }
      if (!keep) {
        continue;
      }
    }
    pql_vec_push(q, &r.v, m, s->v, t, s->drop);
  }
  return r;
}

/* ---------------- dispatcher ---------------- */

void pql_counter_note(qctx *q, const pql_expr *marg, const pql_ls *m) {
  const char *nm = pql_ls_get(m, "__name__");
  if (nm && !name_has_suffix(nm, "_total") && !name_has_suffix(nm, "_sum") && !name_has_suffix(nm, "_count") &&
      !name_has_suffix(nm, "_bucket")) {
    pql_ev_annot(q, false, marg, "metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"%s\"",
                 nm);
  }
}

double pql_range_fn(qctx *q, const pql_expr *e, const val *m, const rser *s, double a1, double a2, bool *ok,
                    int64_t t) {
  return range_fn(q, e->func->id, m, s, a1, a2, ok, t);
}

/* The literal number of argument e, if it is one. */
static bool num_arg(const pql_expr *e, double *v) {
  e = unwrap(e);
  if (e->kind != PQL_N_NUM) {
    return false;
  }
  *v = e->num;
  return true;
}

bool pql_call_columnar(const pql_expr *e, pql_colfn *out) {
  if (e->kind != PQL_N_CALL || !e->func) {
    return false;
  }
  int id = e->func->id;
  size_t mi = 0;
  memset(out, 0, sizeof *out);
  double *a1 = &out->a1, *a2 = &out->a2;
  out->notes = id == F_RATE || id == F_INCREASE;
  out->slide = id == F_MAX_OVER_TIME ? 1 : id == F_MIN_OVER_TIME ? -1 : 0;
  switch (id) {
  case F_RATE: case F_INCREASE: case F_DELTA: case F_IRATE: case F_IDELTA: case F_DERIV: case F_CHANGES:
  case F_RESETS: case F_AVG_OVER_TIME: case F_SUM_OVER_TIME: case F_COUNT_OVER_TIME: case F_PRESENT_OVER_TIME:
  case F_MIN_OVER_TIME: case F_MAX_OVER_TIME: case F_TS_OF_MIN: case F_TS_OF_MAX: case F_TS_OF_LAST:
  case F_TS_OF_FIRST: case F_LAST_OVER_TIME: case F_FIRST_OVER_TIME: case F_STDDEV_OVER_TIME:
  case F_STDVAR_OVER_TIME: case F_MAD_OVER_TIME:
    if (e->nargs != 1) {
      return false;
    }
    break;
  case F_PREDICT_LINEAR:
    if (e->nargs != 2 || !num_arg(e->args[1], a1)) {
      return false;
    }
    break;
  case F_QUANTILE_OVER_TIME:
    if (e->nargs != 2 || !num_arg(e->args[0], a1)) {
      return false;
    }
    mi = 1;
    break;
  case F_DES:
    if (e->nargs != 3 || !num_arg(e->args[1], a1) || !num_arg(e->args[2], a2)) {
      return false;
    }
    break;
  default: return false;
  }
  const pql_expr *m = unwrap(e->args[mi]);
  if (m->kind != PQL_N_MS || m->a->kind != PQL_N_VS || m->a->ext) {
    return false;
  }
  out->ms = m;
  return true;
}

val pql_call(qctx *q, const pql_expr *e, int64_t t) {
  const pql_func *f = e->func;
  int id = f->id;
  val r = {.type = PQL_VECTOR};
  val args[16] = {{0}};
  size_t na = e->nargs < 16 ? e->nargs : 16;
  pql_col *col = pql_col_of(q, e);
  if (id == F_TIMESTAMP) {
    const pql_expr *a = unwrap(e->args[0]);
    val v = pql_ev(q, a, t);
    bool raw = a->kind == PQL_N_VS;
    for (size_t i = 0; i < v.v.n; i++) {
      smp *s = &v.v.s[i];
      pql_vec_push(q, &r.v, s->m, (double)(raw ? s->t : t) / 1000.0, t, true);
    }
    return r;
  }
  for (size_t i = 0; i < na; i++) {
    const pql_expr *a = e->args[i];
    if (id == F_INFO && i == 1) {
      break; /* the label selector of info() is not evaluated */
    }
    if (a->kind == PQL_N_MS && a->a->ext) {
      static const char *anch[] = {"changes", "delta", "increase", "rate", "resets"};
      static const char *smooth[] = {"delta", "increase", "rate"};
      bool sm = a->a->ext == PQL_EXT_SMOOTHED;
      const char **ok = sm ? smooth : anch;
      size_t nok = sm ? RT_ARRAY_LEN(smooth) : RT_ARRAY_LEN(anch);
      bool allowed = false;
      for (size_t k = 0; k < nok; k++) {
        allowed |= strcmp(ok[k], f->name) == 0;
      }
      if (!allowed) {
        pql_ev_fail(q, "execution", "%s modifier can only be used with: %s - not with %s", sm ? "smoothed" : "anchored",
                    sm ? "delta, increase, rate" : "changes, delta, increase, rate, resets", f->name);
      }
    }
    if (col && unwrap(a)->kind == PQL_N_MS) {
      args[i] = (val){.type = PQL_MATRIX}; /* the column holds the windows */
      pql_col_windows(q, col, t);
      continue;
    }
    bool stats = id == F_HISTOGRAM_COUNT || id == F_HISTOGRAM_SUM || id == F_HISTOGRAM_AVG;
    q->hstats += stats;
    args[i] = pql_ev(q, e->args[i], t);
    q->hstats -= stats;
  }
  switch (id) {
  case F_TIME:
    r.type = PQL_SCALAR;
    r.num = (double)t / 1000.0;
    return r;
  case F_PI:
    r.type = PQL_SCALAR;
    r.num = M_PI;
    return r;
  case F_START:
  case F_END:
  case F_RANGE:
  case F_STEP:
    r.type = PQL_SCALAR;
    r.num = id == F_START ? (double)q->start / 1000.0
            : id == F_END ? (double)q->end / 1000.0
            : id == F_RANGE ? (double)(q->end - q->start) / 1000.0
                            : (q->range ? (double)q->interval / 1000.0 : 0);
    return r;
  case F_MIN_OF:
  case F_MAX_OF:
    r.type = PQL_SCALAR;
    if (isnan(args[0].num) || isnan(args[1].num)) {
      r.num = NAN;
    } else {
      r.num = id == F_MIN_OF ? fmin(args[0].num, args[1].num) : fmax(args[0].num, args[1].num);
    }
    return r;
  case F_SCALAR:
    r.type = PQL_SCALAR;
    {
      /* the one float sample of the vector (histograms do not count) */
      size_t nf = 0;
      double fv = NAN;
      for (size_t i = 0; i < args[0].v.n; i++) {
        if (!args[0].v.s[i].h) {
          nf++;
          fv = args[0].v.s[i].v;
        }
      }
      r.num = nf == 1 ? fv : NAN;
    }
    return r;
  case F_VECTOR: pql_vec_push(q, &r.v, pql_ls_make(q, NULL, 0), args[0].num, t, false); return r;
  case F_ABSENT:
    if (args[0].v.n == 0) {
      absent_labels(q, e->args[0], &r.v, t);
    }
    return r;
  case F_ABSENT_OVER_TIME:
    if (args[0].nmx == 0) {
      absent_labels(q, e->args[0], &r.v, t);
    }
    return r;
  case F_LABEL_REPLACE: return fn_label_replace(q, e, args, t);
  case F_LABEL_JOIN: return fn_label_join(q, args, na, t);
  case F_SORT:
  case F_SORT_DESC:
  case F_SORT_BY_LABEL:
  case F_SORT_BY_LABEL_DESC: {
    if (q->range) {
      pql_ev_annot(q, true, e, "sort is ineffective for range queries since results are always ordered by labels");
    }
    r = args[0];
    if (id == F_SORT || id == F_SORT_DESC) {
      /* sort and sort_desc drop histogram samples */
      size_t k = 0;
      for (size_t i = 0; i < r.v.n; i++) {
        if (!r.v.s[i].h) {
          r.v.s[k++] = r.v.s[i];
        }
      }
      r.v.n = k;
    }
    if (id == F_SORT) {
      PQL_QSORT(r.v.s, r.v.n, sizeof *r.v.s, cmp_val_asc);
    } else if (id == F_SORT_DESC) {
      PQL_QSORT(r.v.s, r.v.n, sizeof *r.v.s, cmp_val_desc);
    } else {
      sort_ctx c = {pql_ev_alloc(q, (na + 1) * sizeof(char *)), 0, id == F_SORT_BY_LABEL_DESC};
      for (size_t i = 1; i < na; i++) {
        c.labels[c.n++] = (char *)args[i].str;
      }
      t_sort = &c;
      PQL_QSORT(r.v.s, r.v.n, sizeof *r.v.s, cmp_by_label);
      t_sort = NULL;
    }
    return r;
  }
  case F_DAYS_IN_MONTH:
  case F_DAY_OF_MONTH:
  case F_DAY_OF_WEEK:
  case F_DAY_OF_YEAR:
  case F_HOUR:
  case F_MINUTE:
  case F_MONTH:
  case F_YEAR:
    if (na == 0) {
      pql_vec_push(q, &r.v, pql_ls_make(q, NULL, 0), date_fn(id, (double)t / 1000.0), t, false);
      return r;
    }
    for (size_t i = 0; i < args[0].v.n; i++) {
      smp *s = &args[0].v.s[i];
      if (s->h) {
        continue; /* histogram samples are ignored */
      }
      pql_vec_push(q, &r.v, s->m, date_fn(id, s->v), t, true);
    }
    return r;
  case F_CLAMP:
    if (args[2].num < args[1].num) {
      return r;
    }
    /* fallthrough */
  case F_ABS: case F_CEIL: case F_FLOOR: case F_EXP: case F_SQRT: case F_LN: case F_LOG2: case F_LOG10:
  case F_SIN: case F_COS: case F_TAN: case F_ASIN: case F_ACOS: case F_ATAN: case F_SINH: case F_COSH:
  case F_TANH: case F_ASINH: case F_ACOSH: case F_ATANH: case F_DEG: case F_RAD: case F_SGN: case F_ROUND:
  case F_CLAMP_MIN: case F_CLAMP_MAX: {
    double a1 = na > 1 ? args[1].num : (id == F_ROUND ? 1 : 0);
    double a2 = na > 2 ? args[2].num : 0;
    for (size_t i = 0; i < args[0].v.n; i++) {
      smp *s = &args[0].v.s[i];
      if (s->h) {
        continue;
      }
      pql_vec_push(q, &r.v, s->m, simple_fn(id, s->v, a1, a2), t, true);
    }
    return r;
  }
  case F_HISTOGRAM_QUANTILE: {
    vec fl = {0};
    bool anyh = false;
    for (size_t i = 0; i < args[1].v.n; i++) {
      if (!args[1].v.s[i].h) {
        fl.n++;
      } else {
        anyh = true;
      }
    }
    if (!anyh) {
      return fn_histogram_quantile(q, e, args[0].num, &args[1].v, t);
    }
    fl.s = pql_ev_alloc(q, (fl.n + 1) * sizeof *fl.s);
    fl.n = fl.cap = 0;
    for (size_t i = 0; i < args[1].v.n; i++) {
      if (!args[1].v.s[i].h) {
        fl.s[fl.n++] = args[1].v.s[i];
      }
    }
    fl.cap = fl.n;
    r = fn_histogram_quantile(q, e, args[0].num, &fl, t);
    size_t nclassic = r.v.n;
    for (size_t i = 0; i < args[1].v.n; i++) {
      smp *s = &args[1].v.s[i];
      if (s->h) {
        int ni;
        double v = pql_hist_quantile(q, args[0].num, s->h, &ni);
        nan_obs_info(q, e->args[1], s->m, ni);
        pql_vec_push(q, &r.v, s->m, v, t, true);
      }
    }
    drop_mixed(q, e->args[1], &r.v, nclassic);
    return r;
  }
  case F_HISTOGRAM_QUANTILES: {
    const char *lbl = args[1].str;
    vec fl = {0}, nat = {0};
    for (size_t i = 0; i < args[0].v.n; i++) {
      smp *s = &args[0].v.s[i];
      if (s->h) {
        pql_vec_push_h(q, &nat, s->m, s->h, s->t, s->drop);
      } else {
        pql_vec_push(q, &fl, s->m, s->v, s->t, s->drop);
      }
    }
    /* Prometheus fixes the buckets in place the first time a quantile in [0, 1] reaches them:
     * one monotonicity note per series, however many quantiles */
    bool fixed_before = false;
    for (size_t k = 2; k < na; k++) {
      double qv = args[k].num;
      quantile_warn(q, e->args[k], qv);
      size_t ng;
      hgroup *gs = collect_buckets(q, e->args[0], &fl, &ng);
      char fb[RT_FLOAT_MAX + 2];
      rt_float_str(fb, qv, 'f');
      if (isfinite(qv) && !strchr(fb, '.') && !strchr(fb, 'e')) {
        strcat(fb, ".0");
      }
      const char *qs = pql_ev_strdup(q, fb, strlen(fb));
      vec one = {0};
      for (size_t g = 0; g < ng; g++) {
        mono_fix fix;
        double v = bucket_quantile(qv, gs[g].b, gs[g].n, &fix);
        if (fix.forced && !fixed_before) {
          hq_note_add(q, e->args[0], gs[g].m, t, &fix);
        }
        pql_vec_push(q, &one, pql_ls_set(q, gs[g].m, lbl, qs), v, t, true);
      }
      size_t nclassic = one.n;
      for (size_t i = 0; i < nat.n; i++) {
        int ni;
        double v = pql_hist_quantile(q, qv, nat.s[i].h, &ni);
        nan_obs_info(q, e->args[0], nat.s[i].m, ni);
        pql_vec_push(q, &one, pql_ls_set(q, nat.s[i].m, lbl, qs), v, t, true);
      }
      drop_mixed(q, e->args[0], &one, nclassic);
      for (size_t i = 0; i < one.n; i++) {
        pql_vec_push(q, &r.v, one.s[i].m, one.s[i].v, t, true);
      }
      fixed_before = fixed_before || (qv >= 0 && qv <= 1);
    }
    pql_check_dups(q, &r.v);
    return r;
  }
  case F_HISTOGRAM_FRACTION: {
    vec nat = {0};
    for (size_t i = 0; i < args[2].v.n; i++) {
      smp *s = &args[2].v.s[i];
      if (s->h) {
        bool ni;
        double v;
        if (s->h->schema == PQL_SCHEMA_CUSTOM && !isnan(s->h->sum)) {
          /* custom buckets: the same estimate as for classic buckets */
          bucket *bk = pql_ev_alloc(q, (s->h->np + 2) * sizeof *bk);
          size_t nb = 0;
          double cum = 0;
          for (uint32_t k = 0; k < s->h->np; k++) {
            cum += s->h->pb[k];
            bk[nb++] = (bucket){pql_hist_upper(s->h, s->h->pi[k], false), cum};
          }
          if (nb == 0 || !isinf(bk[nb - 1].ub)) {
            bk[nb++] = (bucket){INFINITY, s->h->count};
          }
          ni = false;
          v = s->h->count == 0 ? NAN : bucket_fraction(args[0].num, args[1].num, bk, nb);
        } else {
          v = pql_hist_fraction(q, args[0].num, args[1].num, s->h, &ni);
        }
        if (ni) {
          const char *nm = pql_ls_get(s->m, "__name__");
          pql_ev_annot(q, false, e->args[2],
                       "input to histogram_fraction has NaN observations, which are excluded from all fractions "
                       "for metric name \"%s\"",
                       nm ? nm : "");
        }
        pql_vec_push(q, &nat, s->m, v, t, true);
      }
    }
    for (size_t i = 0; i < args[2].v.n; i++) {
      smp *s = &args[2].v.s[i];
      if (s->h) {
        s->m = NULL;
      }
    }
    {
      size_t k = 0;
      for (size_t i = 0; i < args[2].v.n; i++) {
        if (args[2].v.s[i].m) {
          args[2].v.s[k++] = args[2].v.s[i];
        }
      }
      args[2].v.n = k;
    }
    size_t ng;
    hgroup *gs = collect_buckets(q, e->args[2], &args[2].v, &ng);
    for (size_t g = 0; g < ng; g++) {
      pql_vec_push(q, &r.v, gs[g].m, bucket_fraction(args[0].num, args[1].num, gs[g].b, gs[g].n), t, true);
    }
    size_t nclassic = r.v.n;
    for (size_t i = 0; i < nat.n; i++) {
      pql_vec_push(q, &r.v, nat.s[i].m, nat.s[i].v, t, true);
    }
    drop_mixed(q, e->args[2], &r.v, nclassic);
    return r;
  }
  case F_HISTOGRAM_AVG:
  case F_HISTOGRAM_COUNT:
  case F_HISTOGRAM_SUM:
  case F_HISTOGRAM_STDDEV:
  case F_HISTOGRAM_STDVAR:
    /* float samples are ignored by the native-histogram functions */
    for (size_t i = 0; i < args[0].v.n; i++) {
      smp *s = &args[0].v.s[i];
      if (!s->h) {
        continue;
      }
      double v = id == F_HISTOGRAM_COUNT ? s->h->count
                 : id == F_HISTOGRAM_SUM ? s->h->sum
                 : id == F_HISTOGRAM_AVG ? s->h->sum / s->h->count
                                         : pql_hist_stdvar(q, s->h);
      if (id == F_HISTOGRAM_STDDEV) {
        v = sqrt(v);
      }
      pql_vec_push(q, &r.v, s->m, v, t, true);
    }
    return r;
  case F_INFO: return fn_info(q, e, &args[0], t);
  default: break;
  }
  /* range-vector functions */
  const val *mv = NULL;
  double a1 = 0, a2 = 0;
  const pql_expr *marg = NULL;
  for (size_t i = 0; i < na; i++) {
    if (args[i].type == PQL_MATRIX) {
      mv = &args[i];
      marg = e->args[i];
    }
  }
  if (!mv) {
    return r;
  }
  if (id == F_PREDICT_LINEAR) {
    a1 = args[1].num;
  } else if (id == F_QUANTILE_OVER_TIME) {
    a1 = args[0].num;
    quantile_warn(q, e->args[0], a1);
  } else if (id == F_DES) {
    a1 = args[1].num;
    a2 = args[2].num;
    if (!(a1 > 0 && a1 < 1)) {
      char fb[RT_FLOAT_MAX];
      pql_ev_fail(q, "execution", "invalid smoothing factor. Expected: 0 < sf < 1, got: %s",
                  rt_float_str(fb, a1, 'f'));
    }
    if (!(a2 > 0 && a2 < 1)) {
      char fb[RT_FLOAT_MAX];
      pql_ev_fail(q, "execution", "invalid trend factor. Expected: 0 < tf < 1, got: %s",
                  rt_float_str(fb, a2, 'f'));
    }
  }
  if (col) {
    pql_col_range_vec(q, col, marg, t, drops_name(id), &r.v);
    return r;
  }
  for (size_t i = 0; i < mv->nmx; i++) {
    const rser *s = &mv->mx[i];
    if (s->n == 0) {
      continue;
    }
    if ((id == F_RATE || id == F_INCREASE) && unwrap(marg)->kind == PQL_N_MS) {
      pql_counter_note(q, marg, s->m);
    }
    bool anyh = false, anyf = false;
    for (size_t k = 0; k < s->n; k++) {
      if (s->p[k].h) {
        anyh = true;
      } else {
        anyf = true;
      }
    }
    rser tmp;
    if (anyh) {
      if (hist_range(q, e, id, mv, s, marg, t, anyf, &r.v)) {
        continue;
      }
      if (id != F_COUNT_OVER_TIME && id != F_PRESENT_OVER_TIME && id != F_TS_OF_LAST && id != F_TS_OF_FIRST) {
        /* float-only functions skip the histogram samples */
        if (!anyf) {
          continue;
        }
        const char *nm = pql_ls_get(s->m, "__name__");
        /* at the first argument, as Prometheus (the phi of quantile_over_time) */
        pql_ev_annot(q, false, e->args[0],
                     "ignored histograms in a range containing both floats and histograms for metric name \"%s\"",
                     nm ? nm : "");
        tmp = *s;
        pql_point *fp = pql_ev_alloc(q, s->n * sizeof *fp);
        tmp.n = 0;
        for (size_t k = 0; k < s->n; k++) {
          if (!s->p[k].h) {
            fp[tmp.n++] = s->p[k];
          }
        }
        tmp.p = fp;
        s = &tmp;
      }
    }
    bool ok;
    double v = range_fn(q, id, mv, s, a1, a2, &ok, t);
    if (!ok) {
      continue;
    }
    pql_vec_push(q, &r.v, s->m, v, t, drops_name(id) ? true : s->drop);
  }
  return r;
}
