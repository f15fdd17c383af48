/* hist.c - native histogram values: copies, schema reduction, arithmetic, statistics. */
#include "promql/eval_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- copies ---- */

static size_t hist_size(const pql_hist *h) {
  return sizeof *h + (h->np + h->nn) * (sizeof(int32_t) + sizeof(double)) + h->ncv * sizeof(double) + 16;
}

/* Lays out a copy of h in the block p (hist_size(h) bytes). */
static pql_hist *hist_place(void *p, const pql_hist *h) {
  pql_hist *r = p;
  *r = *h;
  double *d = (double *)(r + 1);
  r->pb = d;
  d += h->np;
  r->nb = d;
  d += h->nn;
  r->cv = d;
  d += h->ncv;
  int32_t *ix = (int32_t *)d;
  r->pi = ix;
  ix += h->np;
  r->ni = ix;
  if (h->np) {
    memcpy(r->pb, h->pb, h->np * sizeof(double));
    memcpy(r->pi, h->pi, h->np * sizeof(int32_t));
  }
  if (h->nn) {
    memcpy(r->nb, h->nb, h->nn * sizeof(double));
    memcpy(r->ni, h->ni, h->nn * sizeof(int32_t));
  }
  if (h->ncv) {
    memcpy(r->cv, h->cv, h->ncv * sizeof(double));
  }
  return r;
}

pql_hist *pql_hist_dup_heap(const pql_hist *h) {
  void *p = rt_alloc(hist_size(h));
  return p ? hist_place(p, h) : NULL;
}

pql_hist *pql_hist_dup_arena(rt_arena *a, const pql_hist *h) {
  void *p = rt_arena_alloc(a, hist_size(h));
  return p ? hist_place(p, h) : NULL;
}

pql_hist *pql_hist_copy(qctx *q, const pql_hist *h) { return hist_place(pql_ev_alloc(q, hist_size(h)), h); }

/* A new histogram with room for np/nn buckets (counts zero). */
static pql_hist *hist_alloc(qctx *q, uint32_t np, uint32_t nn, uint32_t ncv) {
  pql_hist *h = pql_ev_alloc(q, sizeof *h);
  memset(h, 0, sizeof *h);
  h->pi = pql_ev_alloc(q, (np + 1) * sizeof(int32_t));
  h->pb = pql_ev_alloc(q, (np + 1) * sizeof(double));
  h->ni = pql_ev_alloc(q, (nn + 1) * sizeof(int32_t));
  h->nb = pql_ev_alloc(q, (nn + 1) * sizeof(double));
  h->cv = pql_ev_alloc(q, (ncv + 1) * sizeof(double));
  h->ncv = ncv;
  return h;
}

/* ---- bucket bounds ---- */

static double lower_bound(int32_t idx, int32_t schema, const double *cv, uint32_t ncv) {
  if (schema == PQL_SCHEMA_CUSTOM) {
    if (idx == 0) {
      return -INFINITY;
    }
    return idx - 1 < (int32_t)ncv ? cv[idx - 1] : INFINITY;
  }
  return ldexp(1.0, 0) * exp2(ldexp((double)(idx - 1), -schema));
}

static double upper_bound(int32_t idx, int32_t schema, const double *cv, uint32_t ncv) {
  if (schema == PQL_SCHEMA_CUSTOM) {
    return idx < (int32_t)ncv ? cv[idx] : INFINITY;
  }
  return exp2(ldexp((double)idx, -schema));
}

double pql_hist_lower(const pql_hist *h, int32_t idx, bool neg) {
  if (neg) {
    return -upper_bound(idx, h->schema, h->cv, h->ncv);
  }
  return lower_bound(idx, h->schema, h->cv, h->ncv);
}

double pql_hist_upper(const pql_hist *h, int32_t idx, bool neg) {
  if (neg) {
    return -lower_bound(idx, h->schema, h->cv, h->ncv);
  }
  return upper_bound(idx, h->schema, h->cv, h->ncv);
}

/* ---- reduction and merging ---- */

/* Adds (sign * counts) of src buckets, reduced to `schema`, into the sorted dst arrays. */
static void merge_buckets(qctx *q, int32_t **di, double **db, uint32_t *dn, const int32_t *si, const double *sb,
                          uint32_t sn, int32_t sschema, int32_t schema, double sign) {
  int32_t *oi = pql_ev_alloc(q, (*dn + sn + 1) * sizeof *oi);
  double *ob = pql_ev_alloc(q, (*dn + sn + 1) * sizeof *ob);
  uint32_t n = 0, a = 0, b = 0;
  int delta = sschema == PQL_SCHEMA_CUSTOM ? 0 : sschema - schema;
  while (a < *dn || b < sn) {
    int32_t bi = 0;
    if (b < sn) {
      bi = delta > 0 ? ((si[b] - 1) >> delta) + 1 : si[b];
    }
    int32_t idx;
    double c;
    if (b >= sn || (a < *dn && (*di)[a] < bi)) {
      idx = (*di)[a];
      c = (*db)[a++];
    } else if (a < *dn && (*di)[a] == bi) {
      idx = bi;
      c = (*db)[a++] + sign * sb[b++];
    } else {
      idx = bi;
      c = sign * sb[b++];
    }
    if (n > 0 && oi[n - 1] == idx) {
      ob[n - 1] += c;
    } else {
      oi[n] = idx;
      ob[n++] = c;
    }
  }
  *di = oi;
  *db = ob;
  *dn = n;
}

/* Moves the buckets of h that lie inside the zero bucket of width zt into the zero bucket. */
static void widen_zero(pql_hist *h, double zt) {
  if (zt <= h->zt || h->schema == PQL_SCHEMA_CUSTOM) {
    return;
  }
  uint32_t k = 0;
  for (uint32_t i = 0; i < h->np; i++) {
    if (upper_bound(h->pi[i], h->schema, NULL, 0) <= zt) {
      h->zc += h->pb[i];
    } else {
      h->pi[k] = h->pi[i];
      h->pb[k++] = h->pb[i];
    }
  }
  h->np = k;
  k = 0;
  for (uint32_t i = 0; i < h->nn; i++) {
    if (upper_bound(h->ni[i], h->schema, NULL, 0) <= zt) {
      h->zc += h->nb[i];
    } else {
      h->ni[k] = h->ni[i];
      h->nb[k++] = h->nb[i];
    }
  }
  h->nn = k;
  h->zt = zt;
}

static bool same_cv(const pql_hist *a, const pql_hist *b) {
  if (a->ncv != b->ncv) {
    return false;
  }
  for (uint32_t i = 0; i < a->ncv; i++) {
    if (a->cv[i] != b->cv[i]) {
      return false;
    }
  }
  return true;
}

/* Maps the custom buckets of h onto the bounds cv (a subset of h's bounds). */
static pql_hist *to_custom(qctx *q, const pql_hist *h, const double *cv, uint32_t ncv) {
  pql_hist *r = hist_alloc(q, h->np, 0, ncv);
  r->schema = PQL_SCHEMA_CUSTOM;
  r->hint = h->hint;
  r->count = h->count;
  r->sum = h->sum;
  memcpy(r->cv, cv, ncv * sizeof *cv);
  r->np = 0;
  for (uint32_t i = 0; i < h->np; i++) {
    double up = upper_bound(h->pi[i], h->schema, h->cv, h->ncv);
    int32_t idx = (int32_t)ncv;
    for (uint32_t k = 0; k < ncv; k++) {
      if (up <= cv[k]) {
        idx = (int32_t)k;
        break;
      }
    }
    if (r->np > 0 && r->pi[r->np - 1] == idx) {
      r->pb[r->np - 1] += h->pb[i];
    } else {
      r->pi[r->np] = idx;
      r->pb[r->np++] = h->pb[i];
    }
  }
  return r;
}

/* a + sign*b into a new histogram. Returns NULL (and sets *why) when the schemas cannot mix:
 * 1 = exponential and custom buckets mixed. *cvfix is set when custom bounds were reconciled. */
pql_hist *pql_hist_add(qctx *q, const pql_hist *a, const pql_hist *b, double sign, int *why, bool *cvfix) {
  *why = 0;
  bool ca = a->schema == PQL_SCHEMA_CUSTOM, cb = b->schema == PQL_SCHEMA_CUSTOM;
  if (ca != cb) {
    *why = 1;
    return NULL;
  }
  if (ca && !same_cv(a, b)) {
    /* keep the bounds both share */
    double *cv = pql_ev_alloc(q, (a->ncv + 1) * sizeof *cv);
    uint32_t n = 0;
    for (uint32_t i = 0; i < a->ncv; i++) {
      for (uint32_t k = 0; k < b->ncv; k++) {
        if (a->cv[i] == b->cv[k]) {
          cv[n++] = a->cv[i];
          break;
        }
      }
    }
    a = to_custom(q, a, cv, n);
    b = to_custom(q, b, cv, n);
    if (cvfix) {
      *cvfix = true;
    }
  }
  int32_t schema = a->schema < b->schema ? a->schema : b->schema;
  pql_hist *r = hist_alloc(q, 0, 0, a->ncv);
  r->schema = schema;
  memcpy(r->cv, a->cv, a->ncv * sizeof(double));
  r->np = r->nn = 0;
  merge_buckets(q, &r->pi, &r->pb, &r->np, a->pi, a->pb, a->np, a->schema, schema, 1);
  merge_buckets(q, &r->ni, &r->nb, &r->nn, a->ni, a->nb, a->nn, a->schema, schema, 1);
  r->zt = a->zt;
  r->zc = a->zc;
  r->count = a->count + sign * b->count;
  r->sum = a->sum + sign * b->sum;
  pql_hist tb = *b;
  if (!ca) {
    double zt = a->zt > b->zt ? a->zt : b->zt;
    widen_zero(r, zt);
    if (b->zt < zt) {
      /* reduce b first so its buckets can move into the wider zero bucket */
      pql_hist *rb = hist_alloc(q, 0, 0, 0);
      rb->schema = schema;
      rb->zt = b->zt;
      rb->zc = b->zc;
      merge_buckets(q, &rb->pi, &rb->pb, &rb->np, b->pi, b->pb, b->np, b->schema, schema, 1);
      merge_buckets(q, &rb->ni, &rb->nb, &rb->nn, b->ni, b->nb, b->nn, b->schema, schema, 1);
      widen_zero(rb, zt);
      tb.pi = rb->pi;
      tb.pb = rb->pb;
      tb.np = rb->np;
      tb.ni = rb->ni;
      tb.nb = rb->nb;
      tb.nn = rb->nn;
      tb.zc = rb->zc;
      tb.schema = schema;
    }
  }
  r->zc += sign * tb.zc;
  merge_buckets(q, &r->pi, &r->pb, &r->np, tb.pi, tb.pb, tb.np, tb.schema, schema, sign);
  merge_buckets(q, &r->ni, &r->nb, &r->nn, tb.ni, tb.nb, tb.nn, tb.schema, schema, sign);
  if (a->hint == PQL_HINT_GAUGE || b->hint == PQL_HINT_GAUGE) {
    r->hint = PQL_HINT_GAUGE;
  }
  return r;
}

pql_hist *pql_hist_scale(qctx *q, const pql_hist *h, double f) {
  pql_hist *r = pql_hist_copy(q, h);
  r->count *= f;
  r->sum *= f;
  r->zc *= f;
  for (uint32_t i = 0; i < r->np; i++) {
    r->pb[i] *= f;
  }
  for (uint32_t i = 0; i < r->nn; i++) {
    r->nb[i] *= f;
  }
  return r;
}

pql_hist *pql_hist_div(qctx *q, const pql_hist *h, double f) {
  pql_hist *r = pql_hist_copy(q, h);
  if (f == 0) {
    /* as Prometheus: the buckets go, count, sum and zero bucket are divided (0/0 is NaN) */
    r->count /= f;
    r->sum /= f;
    r->zc /= f;
    r->np = r->nn = 0;
    return r;
  }
  r->count /= f;
  r->sum /= f;
  r->zc /= f;
  for (uint32_t i = 0; i < r->np; i++) {
    r->pb[i] /= f;
  }
  for (uint32_t i = 0; i < r->nn; i++) {
    r->nb[i] /= f;
  }
  return r;
}

/* Does h (the later sample) show a counter reset relative to prev? */
bool pql_hist_detect_reset(qctx *q, const pql_hist *cur, const pql_hist *prev) {
  if (cur == prev || pql_hist_same(cur, prev)) {
    return false; /* the same sample seen again (subqueries repeat samples) */
  }
  if (cur->hint == PQL_HINT_RESET) {
    return true;
  }
  if (cur->hint == PQL_HINT_NOT_RESET || cur->hint == PQL_HINT_GAUGE) {
    return false;
  }
  if (cur->count < prev->count) {
    return true;
  }
  if (cur->schema > prev->schema) {
    return true;
  }
  if ((cur->schema == PQL_SCHEMA_CUSTOM) != (prev->schema == PQL_SCHEMA_CUSTOM)) {
    return true;
  }
  if (cur->zt < prev->zt) {
    return true;
  }
  if (cur->zc < prev->zc) {
    return true;
  }
  /* any bucket of prev (reduced to cur's schema) larger than cur's */
  int why = 0;
  pql_hist *d = pql_hist_add(q, cur, prev, -1, &why, NULL);
  if (!d) {
    return true;
  }
  if (d->zc < 0) {
    return true;
  }
  for (uint32_t i = 0; i < d->np; i++) {
    if (d->pb[i] < 0) {
      return true;
    }
  }
  for (uint32_t i = 0; i < d->nn; i++) {
    if (d->nb[i] < 0) {
      return true;
    }
  }
  return false;
}

/* ---- statistics ---- */

/* All buckets in ascending bound order, as Prometheus' AllBucketIterator: negative (descending
 * index), the zero bucket when its count is > 0, positive; bounds that reach into the zero
 * bucket are cut at its threshold. Buckets with a zero count are left out (every user skips
 * them). */
typedef struct hb {
  double lo, hi, c;
} hb;

static hb clamp_zero(const pql_hist *h, hb b) {
  if (b.hi < 0 && b.hi > -h->zt) {
    b.hi = -h->zt;
  } else if (b.lo > 0 && b.lo < h->zt) {
    b.lo = h->zt;
  }
  return b;
}

static size_t all_buckets(qctx *q, const pql_hist *h, hb **out) {
  hb *b = pql_ev_alloc(q, (h->np + h->nn + 1) * sizeof *b);
  size_t n = 0;
  for (uint32_t i = h->nn; i-- > 0;) {
    if (h->nb[i] != 0) {
      b[n++] = clamp_zero(h, (hb){pql_hist_lower(h, h->ni[i], true), pql_hist_upper(h, h->ni[i], true), h->nb[i]});
    }
  }
  if (h->zc > 0 && h->schema != PQL_SCHEMA_CUSTOM) {
    b[n++] = (hb){-h->zt, h->zt, h->zc};
  }
  for (uint32_t i = 0; i < h->np; i++) {
    if (h->pb[i] != 0) {
      b[n++] = clamp_zero(h, (hb){pql_hist_lower(h, h->pi[i], false), pql_hist_upper(h, h->pi[i], false), h->pb[i]});
    }
  }
  *out = b;
  return n;
}

/* Prometheus' HistogramQuantile step by step, so odd inputs (NaN observations, negative or
 * infinite counts, empty histograms) give its answers: walk from the nearer end (from the
 * lowest bucket when there are NaN observations) to the bucket holding the rank, then
 * interpolate in it. *naninfo: 1 = NaN observations made the result NaN, 2 = they skew it. */
double pql_hist_quantile(qctx *q, double qv, const pql_hist *h, int *naninfo) {
  *naninfo = 0;
  if (qv < 0) {
    return -INFINITY;
  }
  if (qv > 1) {
    return INFINITY;
  }
  if (h->count == 0 || isnan(qv)) {
    return NAN;
  }
  hb *b;
  size_t n = all_buckets(q, h, &b);
  bool nansum = isnan(h->sum);
  bool fwd = nansum || qv < 0.5;
  double rank = fwd ? qv * h->count : (1 - qv) * h->count, cum = 0;
  hb cur = {0, 0, 0};
  size_t k = 0;
  while (k < n) {
    cur = b[fwd ? k : n - 1 - k];
    k++;
    cum += cur.c;
    if (cum >= rank) {
      break;
    }
  }
  bool custom = h->schema == PQL_SCHEMA_CUSTOM;
  if (!custom && cur.lo < 0 && cur.hi > 0) {
    /* the zero bucket: from 0 when there are only positive buckets (to 0 with only negative) */
    if (h->nn == 0 && h->np > 0) {
      cur.lo = 0;
    } else if (h->np == 0 && h->nn > 0) {
      cur.hi = 0;
    }
  } else if (custom) {
    if (isinf(cur.lo) && cur.lo < 0) {
      if (cur.hi <= 0) {
        return cur.hi;
      }
      cur.lo = 0;
    } else if (isinf(cur.hi) && cur.hi > 0) {
      return cur.lo;
    }
  }
  if (cum > h->count) {
    cum = h->count;
  }
  if (cum < rank) {
    /* the buckets ran out before the rank: NaN observations, or rounding */
    if (nansum) {
      *naninfo = 1;
      return NAN;
    }
    return cur.hi;
  }
  if (fwd) {
    rank -= cum - cur.c;
  } else {
    rank = cum - rank;
  }
  if (nansum) {
    /* NaN observations count in h->count but in no bucket */
    for (; k < n; k++) {
      cum += b[fwd ? k : n - 1 - k].c;
    }
    if (cum < h->count) {
      *naninfo = 2;
    }
  }
  double frac = rank / cur.c;
  if (custom || (cur.lo <= 0 && cur.hi >= 0)) {
    return cur.lo + (cur.hi - cur.lo) * frac;
  }
  double ll = log2(fabs(cur.lo)), lu = log2(fabs(cur.hi));
  if (cur.lo > 0) {
    return exp2(ll + (lu - ll) * frac);
  }
  return -exp2(lu + (ll - lu) * (1 - frac));
}

double pql_hist_fraction(qctx *q, double lower, double upper, const pql_hist *h, bool *naninfo) {
  *naninfo = false;
  if (h->count == 0 || isnan(lower) || isnan(upper)) {
    return NAN;
  }
  if (lower >= upper) {
    return 0;
  }
  hb *b;
  size_t n = all_buckets(q, h, &b);
  if (isnan(h->sum)) {
    double tot = 0;
    for (size_t i = 0; i < n; i++) {
      tot += b[i].c;
    }
    *naninfo = tot < h->count;
  }
  double r = 0;
  bool custom = h->schema == PQL_SCHEMA_CUSTOM;
  for (size_t i = 0; i < n; i++) {
    double lo = b[i].lo, hi = b[i].hi;
    bool zero = !custom && lo == -h->zt && hi == h->zt && lo != hi;
    if (zero) {
      if (h->nn == 0 && h->np > 0) {
        lo = 0;
      } else if (h->nn > 0 && h->np == 0) {
        hi = 0;
      }
    }
    if (hi <= lower || lo >= upper) {
      continue;
    }
    if (lo >= lower && hi <= upper) {
      r += b[i].c;
      continue;
    }
    double a = lo > lower ? lo : lower, z = hi < upper ? hi : upper;
    double f;
    if (isinf(lo) || isinf(hi)) {
      f = (isinf(lo) && a == lo) || (isinf(hi) && z == hi) ? 1 : 0;
      if (isinf(lo) && isinf(hi)) {
        f = 1;
      } else if (isinf(hi)) {
        f = z == hi ? 1 : 0;
        if (a > lo) {
          f = 0;
        }
      } else {
        f = a == lo ? 1 : 0;
        if (z < hi) {
          f = 0;
        }
      }
    } else if (!custom && !zero && lo > 0) {
      f = (log2(z) - log2(a)) / (log2(hi) - log2(lo));
    } else if (!custom && !zero && hi < 0) {
      f = (log2(-a) - log2(-z)) / (log2(-lo) - log2(-hi));
    } else {
      f = (z - a) / (hi - lo);
    }
    r += b[i].c * f;
  }
  return r / h->count;
}

/* Estimated variance of the observations (bucket midpoints; geometric mean for exponential). */
double pql_hist_stdvar(qctx *q, const pql_hist *h) {
  if (h->count == 0) {
    return NAN;
  }
  hb *b;
  size_t n = all_buckets(q, h, &b);
  double mean = h->sum / h->count, var = 0, c = 0;
  bool custom = h->schema == PQL_SCHEMA_CUSTOM;
  for (size_t i = 0; i < n; i++) {
    double lo = b[i].lo, hi = b[i].hi, mid;
    bool zero = !custom && lo == -h->zt && hi == h->zt && lo != hi;
    if (zero) {
      mid = 0;
    } else if (custom) {
      if (isinf(hi)) {
        mid = lo;
      } else if (isinf(lo)) {
        mid = hi;
      } else {
        mid = (lo + hi) / 2;
      }
    } else if (lo > 0) {
      mid = sqrt(lo * hi);
    } else if (hi < 0) {
      mid = -sqrt(lo * hi);
    } else {
      mid = (lo + hi) / 2;
    }
    double d = mid - mean;
    pql_kahan_inc(b[i].c * d * d, &var, &c);
  }
  return (var + c) / h->count;
}

/* Prometheus' text form of a histogram: {count:N, sum:S, [lo,hi):c, ..., [-z,z]:c, (lo,hi]:c}. */
void pql_hist_string(const pql_hist *h, rt_buf *b) {
  char f1[RT_FLOAT_MAX], f2[RT_FLOAT_MAX];
  rt_buf_printf(b, "{count:%s", rt_float_str(f1, h->count, 'f'));
  rt_buf_printf(b, ", sum:%s", rt_float_str(f1, h->sum, 'f'));
  for (uint32_t i = h->nn; i-- > 0;) {
    if (h->nb[i] != 0) {
      rt_buf_printf(b, ", [%s,", rt_float_str(f1, pql_hist_lower(h, h->ni[i], true), 'f'));
      rt_buf_printf(b, "%s):%s", rt_float_str(f1, pql_hist_upper(h, h->ni[i], true), 'f'),
                    rt_float_str(f2, h->nb[i], 'f'));
    }
  }
  if (h->zc != 0) {
    rt_buf_printf(b, ", [%s,", rt_float_str(f1, -h->zt, 'f'));
    rt_buf_printf(b, "%s]:%s", rt_float_str(f1, h->zt, 'f'), rt_float_str(f2, h->zc, 'f'));
  }
  for (uint32_t i = 0; i < h->np; i++) {
    if (h->pb[i] != 0) {
      rt_buf_printf(b, ", (%s,", rt_float_str(f1, pql_hist_lower(h, h->pi[i], false), 'f'));
      rt_buf_printf(b, "%s]:%s", rt_float_str(f1, pql_hist_upper(h, h->pi[i], false), 'f'),
                    rt_float_str(f2, h->pb[i], 'f'));
    }
  }
  rt_buf_putc(b, '}');
}

/* ---- trimming (</ keeps observations below c, >/ keeps those above c) ---- */

typedef struct tb {
  double f, mid; /* kept fraction, midpoint of the kept part */
} tb;

/* Kept part of a bucket (lo, hi] with interpolation `ex` (exponential) or linear. */
static tb trim_bucket(double lo, double hi, double c, bool upper, bool ex) {
  tb r = {1, 0};
  double a = lo, b = hi;
  if (upper) {
    if (c <= lo) {
      return (tb){0, 0};
    }
    if (c < hi) {
      r.f = ex ? (log2(fabs(c)) - log2(fabs(lo))) / (log2(fabs(hi)) - log2(fabs(lo))) : (c - lo) / (hi - lo);
      b = c;
    }
  } else {
    if (c >= hi) {
      return (tb){0, 0};
    }
    if (c > lo) {
      r.f = ex ? (log2(fabs(hi)) - log2(fabs(c))) / (log2(fabs(hi)) - log2(fabs(lo))) : (hi - c) / (hi - lo);
      a = c;
    }
  }
  if (ex) {
    r.mid = a > 0 ? sqrt(a * b) : -sqrt(a * b);
  } else {
    r.mid = (a + b) / 2;
  }
  return r;
}

/* The kept part of custom bucket idx. */
static tb trim_custom(const pql_hist *h, int32_t idx, double c, bool upper) {
  double lo = lower_bound(idx, h->schema, h->cv, h->ncv), hi = upper_bound(idx, h->schema, h->cv, h->ncv);
  bool noop = upper ? (isinf(c) && c > 0) : (isinf(c) && c < 0);
  if (isinf(lo) && isinf(hi)) {
    return noop ? (tb){1, 0} : (tb){0, 0};
  }
  if (isinf(hi)) {
    /* the +Inf bucket: all or nothing */
    if (upper) {
      return noop ? (tb){1, lo} : (tb){0, 0};
    }
    if (isinf(c) && c > 0) {
      return (tb){0, 0};
    }
    return (tb){1, c > lo ? c : lo};
  }
  if (isinf(lo)) {
    if (hi > 0) {
      if (!upper && c < 0 && !noop) {
        return (tb){0, 0};
      }
      return trim_bucket(0, hi, c, upper, false);
    }
    /* (-Inf, hi] with hi <= 0: all or nothing */
    if (upper) {
      if (isinf(c) && c < 0) {
        return (tb){0, 0};
      }
      return (tb){1, c < hi ? c : hi};
    }
    return noop ? (tb){1, hi} : (tb){0, 0};
  }
  return trim_bucket(lo, hi, c, upper, false);
}

pql_hist *pql_hist_trim(qctx *q, const pql_hist *h, double c, bool upper) {
  pql_hist *r = pql_hist_copy(q, h);
  bool custom = h->schema == PQL_SCHEMA_CUSTOM;
  bool changed = false;
  double count = 0, sum = 0, cs = 0;
  for (uint32_t i = 0; i < h->np; i++) {
    tb t = custom ? trim_custom(h, h->pi[i], c, upper)
                  : trim_bucket(lower_bound(h->pi[i], h->schema, NULL, 0), upper_bound(h->pi[i], h->schema, NULL, 0), c,
                                upper, true);
    changed |= h->pb[i] != 0 && t.f != 1;
    r->pb[i] = h->pb[i] * t.f;
    count += r->pb[i];
    if (r->pb[i] != 0) {
      pql_kahan_inc(r->pb[i] * t.mid, &sum, &cs);
    }
  }
  for (uint32_t i = 0; i < h->nn; i++) {
    double lo = -upper_bound(h->ni[i], h->schema, NULL, 0), hi = -lower_bound(h->ni[i], h->schema, NULL, 0);
    tb t = trim_bucket(lo, hi, c, upper, true);
    changed |= h->nb[i] != 0 && t.f != 1;
    r->nb[i] = h->nb[i] * t.f;
    count += r->nb[i];
    if (r->nb[i] != 0) {
      pql_kahan_inc(r->nb[i] * t.mid, &sum, &cs);
    }
  }
  if (!custom) {
    double lo = -h->zt, hi = h->zt;
    if (h->np > 0 && h->nn == 0) {
      lo = 0;
    } else if (h->nn > 0 && h->np == 0) {
      hi = 0;
    }
    tb t = lo < hi ? trim_bucket(lo, hi, c, upper, false) : (tb){1, 0};
    changed |= h->zc != 0 && t.f != 1;
    r->zc = h->zc * t.f;
    count += r->zc;
    if (r->zc != 0) {
      pql_kahan_inc(r->zc * t.mid, &sum, &cs);
    }
  }
  if (!changed) {
    return pql_hist_copy(q, h);
  }
  r->count = count;
  r->sum = sum + cs;
  return r;
}
