/* eval.c - PromQL evaluation: selectors, subqueries, operators, aggregations, query driver.
 *
 * Every selector's data is fetched once per query (its time range is computed from the tree
 * first); the expression is then evaluated step by step against the fetched points. Memory of a
 * step lives in a step arena that is reset after the step; the result is copied out.
 */
#include "promql/eval_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#define MAX_SAMPLES_DEFAULT 50000000LL

/* ---------------- small helpers ---------------- */

_Noreturn void pql_ev_fail(qctx *q, const char *errtype, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(q->err, sizeof q->err, fmt, ap);
  va_end(ap);
  q->errtype = errtype;
  longjmp(q->jb, 1);
}

void *pql_ev_alloc(qctx *q, size_t n) {
  void *p = rt_arena_alloc(q->sa, n ? n : 1);
  if (!p) {
    pql_ev_fail(q, "internal", "out of memory");
  }
  return p;
}

char *pql_ev_strdup(qctx *q, const char *s, size_t n) {
  char *d = rt_arena_strndup(q->sa, s, n);
  if (!d) {
    pql_ev_fail(q, "internal", "out of memory");
  }
  return d;
}

static void add_annot(qctx *q, char ***arr, size_t *n, size_t *cap, const char *msg) {
  for (size_t i = 0; i < *n; i++) {
    if (strcmp((*arr)[i], msg) == 0) {
      return;
    }
  }
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 4;
    char **na = rt_realloc(*arr, *cap * sizeof *na, nc * sizeof *na);
    if (!na) {
      return;
    }
    *arr = na;
    *cap = nc;
  }
  char *d = rt_strdup(msg);
  if (d) {
    (*arr)[(*n)++] = d;
  }
}

void pql_ev_annot(qctx *q, bool warn, const pql_expr *pos, const char *fmt, ...) {
  char msg[1024], full[1200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  int line = 1, col = 1;
  if (pos) {
    pql_pos_linecol(q->query, pos->pos, &line, &col);
  }
  snprintf(full, sizeof full, "PromQL %s: %s (%d:%d)", warn ? "warning" : "info", msg, line, col);
  if (warn) {
    add_annot(q, &q->warns, &q->nwarns, &q->capwarns, full);
  } else {
    add_annot(q, &q->infos, &q->ninfos, &q->capinfos, full);
  }
}

uint64_t pql_ls_hash(const rt_label *l, size_t n) {
  XXH64_state_t st;
  static const unsigned char sep = 0xff;
  XXH64_reset(&st, 0);
  for (size_t i = 0; i < n; i++) {
    XXH64_update(&st, l[i].name, strlen(l[i].name));
    XXH64_update(&st, &sep, 1);
    XXH64_update(&st, l[i].value, strlen(l[i].value));
    XXH64_update(&st, &sep, 1);
  }
  return XXH64_digest(&st);
}

const pql_ls *pql_ls_make(qctx *q, const rt_label *l, size_t n) {
  pql_ls *m = pql_ev_alloc(q, sizeof *m + n * sizeof(rt_label));
  m->n = (uint32_t)n;
  m->stable = 0;
  if (n) {
    memcpy(m->l, l, n * sizeof *l);
  }
  m->hash = pql_ls_hash(l, n);
  return m;
}

const char *pql_ls_get(const pql_ls *m, const char *name) {
  for (uint32_t i = 0; i < m->n; i++) {
    if (strcmp(m->l[i].name, name) == 0) {
      return m->l[i].value;
    }
  }
  return NULL;
}

const pql_ls *pql_ls_set(qctx *q, const pql_ls *m, const char *name, const char *value) {
  rt_label *tmp = pql_ev_alloc(q, (m->n + 1) * sizeof *tmp);
  size_t n = 0;
  bool done = false;
  for (uint32_t i = 0; i < m->n; i++) {
    int c = strcmp(m->l[i].name, name);
    if (c == 0) {
      if (value[0]) {
        tmp[n++] = (rt_label){m->l[i].name, value};
      }
      done = true;
      continue;
    }
    if (c > 0 && !done) {
      if (value[0]) {
        tmp[n++] = (rt_label){name, value};
      }
      done = true;
    }
    tmp[n++] = m->l[i];
  }
  if (!done && value[0]) {
    tmp[n++] = (rt_label){name, value};
  }
  return pql_ls_make(q, tmp, n);
}

static const pql_ls *drop_name_uncached(qctx *q, const pql_ls *m);

/* Slot of key k in an open-addressing table of cap (a power of two) slots. Keys made of
 * addresses differ mostly in their middle bits, so the bits are mixed before masking. */
static inline size_t addr_slot(uint64_t k, size_t cap) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  return (size_t)k & (cap - 1);
}

/* Removes __name__ and, with it, the type-and-unit metadata labels __type__ and __unit__.
 * Results for label sets that live for the whole query are cached by address. */
const pql_ls *pql_ls_drop_name(qctx *q, const pql_ls *m) {
  if (!m->stable) {
    return drop_name_uncached(q, m);
  }
  if ((q->dn_n + 1) * 2 > q->dn_cap) {
    size_t nc = q->dn_cap ? q->dn_cap * 2 : 256;
    uintptr_t *nk = rt_arena_alloc(q->qa, nc * sizeof *nk);
    const pql_ls **nv = rt_arena_alloc(q->qa, nc * sizeof *nv);
    if (!nk || !nv) {
      return drop_name_uncached(q, m);
    }
    memset(nv, 0, nc * sizeof *nv);
    for (size_t i = 0; i < q->dn_cap; i++) {
      if (q->dn_v[i]) {
        size_t x = addr_slot(q->dn_k[i], nc);
        while (nv[x]) {
          x = (x + 1) & (nc - 1);
        }
        nk[x] = q->dn_k[i];
        nv[x] = q->dn_v[i];
      }
    }
    q->dn_k = nk;
    q->dn_v = nv;
    q->dn_cap = nc;
  }
  uintptr_t key = (uintptr_t)m;
  size_t x = addr_slot(key, q->dn_cap);
  while (q->dn_v[x]) {
    if (q->dn_k[x] == key) {
      return q->dn_v[x];
    }
    x = (x + 1) & (q->dn_cap - 1);
  }
  const pql_ls *d = drop_name_uncached(q, m);
  if (d != m) {
    /* copy to the query arena so that the cached value outlives the step */
    pql_ls *c = rt_arena_alloc(q->qa, sizeof *c + d->n * sizeof(rt_label));
    if (!c) {
      return d;
    }
    memcpy(c, d, sizeof *c + d->n * sizeof(rt_label)); /* strings are the fetched ones */
    c->stable = 1;
    d = c;
  }
  q->dn_k[x] = key;
  q->dn_v[x] = d;
  q->dn_n++;
  return d;
}

static const pql_ls *drop_name_uncached(qctx *q, const pql_ls *m) {
  if (pql_ls_get(m, "__name__")) {
    m = pql_ls_set(q, m, "__name__", "");
  }
  if (pql_ls_get(m, "__type__")) {
    m = pql_ls_set(q, m, "__type__", "");
  }
  if (pql_ls_get(m, "__unit__")) {
    m = pql_ls_set(q, m, "__unit__", "");
  }
  return m;
}

void pql_ls_string(const pql_ls *m, rt_buf *b) {
  rt_buf_putc(b, '{');
  for (uint32_t i = 0; i < m->n; i++) {
    if (i) {
      rt_buf_puts(b, ", ");
    }
    if (rt_label_name_is_legacy(m->l[i].name, strlen(m->l[i].name))) {
      rt_buf_puts(b, m->l[i].name);
    } else {
      pql_quote_string(m->l[i].name, b);
    }
    rt_buf_putc(b, '=');
    pql_quote_string(m->l[i].value, b);
  }
  rt_buf_putc(b, '}');
}

void pql_vec_push(qctx *q, vec *v, const pql_ls *m, double val, int64_t t, bool drop) {
  if (v->n == v->cap) {
    size_t nc = v->cap ? v->cap * 2 : 16;
    smp *ns = pql_ev_alloc(q, nc * sizeof *ns);
    if (v->n) {
      memcpy(ns, v->s, v->n * sizeof *ns);
    }
    v->s = ns;
    v->cap = nc;
  }
  v->s[v->n++] = (smp){.m = m, .v = val, .t = t, .drop = drop};
}

void pql_vec_push_h(qctx *q, vec *v, const pql_ls *m, const pql_hist *h, int64_t t, bool drop) {
  pql_vec_push(q, v, m, 0, t, drop);
  v->s[v->n - 1].h = h;
}

void pql_kahan_inc(double inc, double *sum, double *c) {
  double t = *sum + inc;
  if (isinf(t)) {
    *c = 0;
  } else if (fabs(*sum) >= fabs(inc)) {
    *c += (*sum - t) + inc;
  } else {
    *c += (inc - t) + *sum;
  }
  *sum = t;
}

/* ---------------- a small hash map: 64-bit key -> index ---------------- */

typedef struct hmap {
  uint64_t *keys;
  int32_t *vals;
  size_t cap, n;
} hmap;

static void hmap_init(qctx *q, hmap *h, size_t hint) {
  size_t cap = 16;
  while (cap < hint * 2) {
    cap *= 2;
  }
  h->cap = cap;
  h->n = 0;
  h->keys = pql_ev_alloc(q, cap * sizeof *h->keys);
  h->vals = pql_ev_alloc(q, cap * sizeof *h->vals);
  for (size_t i = 0; i < cap; i++) {
    h->vals[i] = -1;
  }
}

static int32_t *hmap_slot(qctx *q, hmap *h, uint64_t key, bool insert) {
  if (insert && (h->n + 1) * 2 > h->cap) {
    hmap old = *h;
    hmap_init(q, h, old.cap);
    for (size_t i = 0; i < old.cap; i++) {
      if (old.vals[i] >= 0) {
        *hmap_slot(q, h, old.keys[i], true) = old.vals[i];
      }
    }
  }
  size_t mask = h->cap - 1;
  size_t i = (size_t)(key * 0x9E3779B97F4A7C15ULL) & mask;
  for (;;) {
    if (h->vals[i] < 0) {
      if (!insert) {
        return NULL;
      }
      h->keys[i] = key;
      h->n++;
      return &h->vals[i];
    }
    if (h->keys[i] == key) {
      return &h->vals[i];
    }
    i = (i + 1) & mask;
  }
}

static int32_t hmap_get(qctx *q, hmap *h, uint64_t key) {
  int32_t *s = hmap_slot(q, h, key, false);
  return s ? *s : -1;
}

/* ---------------- fetching ---------------- */

struct pql_sink {
  qctx *q;
  slot *sl;
};

static void *qa_alloc(qctx *q, size_t n) { return rt_arena_alloc(q->qa, n ? n : 1); }

static void *qa_must(qctx *q, size_t n) {
  void *p = rt_arena_alloc(q->qa, n ? n : 1);
  if (!p) {
    pql_ev_fail(q, "internal", "out of memory");
  }
  return p;
}

static rt_err sink_add(pql_sink *sink, const rt_label *labels, size_t nlabels, const int64_t *ts,
                       const double *vals, const pql_point *pts, const pql_tv *tvs, size_t count) {
  qctx *q = sink->q;
  slot *sl = sink->sl;
  if (count == 0) {
    return RT_OK;
  }
  q->samples_total += (int64_t)count;
  if (sl->n == sl->cap) {
    size_t nc = sl->cap ? sl->cap * 2 : 16;
    fser *ns = qa_alloc(q, nc * sizeof *ns);
    if (!ns) {
      return RT_ENOMEM;
    }
    if (sl->n) {
      memcpy(ns, sl->s, sl->n * sizeof *ns);
    }
    sl->s = ns;
    sl->cap = nc;
  }
  pql_ls *m = qa_alloc(q, sizeof *m + nlabels * sizeof(rt_label));
  pql_point *p = qa_alloc(q, count * sizeof *p);
  if (!m || !p) {
    return RT_ENOMEM;
  }
  m->n = (uint32_t)nlabels;
  for (size_t i = 0; i < nlabels; i++) {
    m->l[i].name = rt_arena_strndup(q->qa, labels[i].name, strlen(labels[i].name));
    m->l[i].value = rt_arena_strndup(q->qa, labels[i].value, strlen(labels[i].value));
    if (!m->l[i].name || !m->l[i].value) {
      return RT_ENOMEM;
    }
  }
  m->hash = pql_ls_hash(m->l, nlabels);
  m->stable = 1;
  fser *f = &sl->s[sl->n++];
  memset(f, 0, sizeof *f);
  f->m = m;
  f->p = p;
  size_t k = 0;
  for (size_t i = 0; i < count; i++) {
    int64_t t = pts ? pts[i].t : tvs ? tvs[i].t : ts[i];
    double v = pts ? pts[i].v : tvs ? tvs[i].v : vals[i];
    const pql_hist *h = NULL;
    if (pts && pts[i].h) {
      h = pql_hist_dup_arena(q->qa, pts[i].h);
      if (!h) {
        return RT_ENOMEM;
      }
      f->has_hist = true;
    }
    if (k > 0 && t <= p[k - 1].t) {
      if (t == p[k - 1].t) {
        p[k - 1].v = v;
        p[k - 1].h = h;
      }
      continue; /* out of order input: keep the first ordering */
    }
    p[k].t = t;
    p[k].v = v;
    p[k].h = h;
    if (PQL_STALE(v)) {
      f->has_stale = true;
    }
    k++;
  }
  f->n = k;
  f->cap = count;
  return RT_OK;
}

rt_err pql_sink_add_points(pql_sink *sink, const rt_label *labels, size_t nlabels, const pql_point *pts,
                           size_t count) {
  return sink_add(sink, labels, nlabels, NULL, NULL, pts, NULL, count);
}

rt_err pql_sink_add_tv(pql_sink *sink, const rt_label *labels, size_t nlabels, const pql_tv *tvs, size_t count) {
  return sink_add(sink, labels, nlabels, NULL, NULL, NULL, tvs, count);
}

rt_err pql_sink_add(pql_sink *sink, const rt_label *labels, size_t nlabels, const int64_t *ts, const double *vals,
                    size_t count) {
  return sink_add(sink, labels, nlabels, ts, vals, NULL, NULL, count);
}

static int64_t off_of(qctx *q, const pql_expr *e) {
  return e->doffset ? pql_dexpr_ms(e->doffset, q->range ? q->interval : 0, q->end - q->start) : e->offset;
}

int64_t pql_off_of(qctx *q, const pql_expr *e) { return off_of(q, e); }

static int64_t range_of(qctx *q, const pql_expr *e) {
  if (!e->drange) {
    return e->range;
  }
  int64_t r = pql_dexpr_ms(e->drange, q->range ? q->interval : 0, q->end - q->start);
  if (r <= 0) {
    pql_ev_fail(q, "bad_data", "duration must be greater than 0");
  }
  return r;
}

static int64_t step_of(qctx *q, const pql_expr *e) {
  int64_t s = e->dstep ? pql_dexpr_ms(e->dstep, q->range ? q->interval : 0, q->end - q->start) : e->step;
  if (e->dstep && s <= 0) {
    pql_ev_fail(q, "bad_data", "duration must be greater than 0");
  }
  return s ? s : q->o.subquery_step_ms;
}

int64_t pql_at_time(qctx *q, const pql_expr *e, int64_t t) {
  switch (e->at) {
  case PQL_AT_TIME: return e->at_ms;
  case PQL_AT_START: return q->start;
  case PQL_AT_END: return q->end;
  default: return t;
  }
}

static void walk_ranges(qctx *q, const pql_expr *e, int64_t lo, int64_t hi) {
  if (!e) {
    return;
  }
  switch (e->kind) {
  case PQL_N_VS:
  case PQL_N_MS: {
    const pql_expr *vs = e->kind == PQL_N_MS ? e->a : e;
    int64_t l = lo, h = hi;
    if (vs->at != PQL_AT_NONE) {
      l = h = pql_at_time(q, vs, lo);
    }
    l -= off_of(q, vs);
    h -= off_of(q, vs);
    l -= e->kind == PQL_N_MS ? range_of(q, e) : q->o.lookback_ms;
    if (vs->ext) {
      l -= q->o.lookback_ms;
      h += q->o.lookback_ms;
    }
    slot *s = &q->slots[vs->slot];
    if (!s->used) {
      s->used = true;
      s->mint = l;
      s->maxt = h;
    } else {
      s->mint = RT_MIN(s->mint, l);
      s->maxt = RT_MAX(s->maxt, h);
    }
    return;
  }
  case PQL_N_SUBQ: {
    int64_t l = lo, h = hi;
    if (e->at != PQL_AT_NONE) {
      l = h = pql_at_time(q, e, lo);
    }
    l -= off_of(q, e) + range_of(q, e);
    h -= off_of(q, e);
    walk_ranges(q, e->a, l, h);
    return;
  }
  case PQL_N_CALL:
    if (e->b) {
      /* info(): the info series are read at the reference times of the first argument, which
       * lie inside what the argument's selectors read */
      walk_ranges(q, e->args[0], lo, hi);
      int64_t mn = lo - q->o.lookback_ms, mx = hi;
      for (int i = 0; i < q->nslots; i++) {
        if (q->slots[i].used) {
          mn = RT_MIN(mn, q->slots[i].mint);
          mx = RT_MAX(mx, q->slots[i].maxt);
        }
      }
      slot *s = &q->slots[e->b->slot];
      s->used = true;
      s->mint = mn - q->o.lookback_ms;
      s->maxt = mx;
      return;
    }
    break;
  default: break;
  }
  walk_ranges(q, e->a, lo, hi);
  walk_ranges(q, e->b, lo, hi);
  for (size_t i = 0; i < e->nargs; i++) {
    walk_ranges(q, e->args[i], lo, hi);
  }
}

static int fser_cmp(const void *a, const void *b) {
  const fser *x = a, *y = b;
  return rt_labels_cmp(x->m->l, x->m->n, y->m->l, y->m->n);
}

static void fetch_all(qctx *q, const pql_expr *e) {
  if (!e) {
    return;
  }
  if (e->kind == PQL_N_CALL && e->b) {
    fetch_all(q, e->b);
  }
  if (e->kind == PQL_N_VS) {
    slot *s = &q->slots[e->slot];
    if (s->used && !s->fetched) {
      s->fetched = true;
      pql_sink sink = {q, s};
      rt_err err = q->st->select(q->st->ctx, e->matchers, e->nmatchers, s->mint + 1, s->maxt, &sink);
      if (err != RT_OK) {
        if (err == RT_ELIMIT) {
          pql_ev_fail(q, "execution", "query processing would load too many samples into memory in query execution");
        }
        pql_ev_fail(q,
                    err == RT_ETIMEDOUT   ? "timeout"
                    : err == RT_ECANCELED ? "canceled"
                    : err == RT_EUNAVAIL  ? "unavailable"
                    : err == RT_ENOMEM    ? "internal"
                                          : "execution",
                    "%s", rt_strerror(err));
      }
      if (s->n > 1) {
        PQL_QSORT(s->s, s->n, sizeof *s->s, fser_cmp);
      }
      if (q->samples_total > q->o.max_samples) {
        pql_ev_fail(q, "execution", "query processing would load too many samples into memory in query execution");
      }
    }
    return;
  }
  fetch_all(q, e->a);
  if (e->kind != PQL_N_CALL) {
    fetch_all(q, e->b);
  }
  for (size_t i = 0; i < e->nargs; i++) {
    fetch_all(q, e->args[i]);
  }
}

/* Index of the last point with t <= ts, or -1. */
static ssize_t last_le(const pql_point *p, size_t n, int64_t ts) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (p[mid].t <= ts) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return (ssize_t)lo - 1;
}

/* last_le() that first tries a few positions forward from *hint (the answer of the previous,
 * usually slightly earlier, lookup), then falls back to binary search. */
static ssize_t last_le_hint(const pql_point *p, size_t n, int64_t ts, size_t *hint) {
  size_t h = *hint;
  if (h < n && p[h].t <= ts) {
    for (int k = 0; k < 8; k++) {
      if (h + 1 >= n || p[h + 1].t > ts) {
        *hint = h;
        return (ssize_t)h;
      }
      h++;
    }
  }
  ssize_t r = last_le(p, n, ts);
  if (r >= 0) {
    *hint = (size_t)r;
  }
  return r;
}

/* info(): the series of the hidden selector e with a sample at ts (latest one per metric name
 * and identifying labels wins). Returns a vector whose t is the sample time. */
void pql_info_series(qctx *q, const pql_expr *e, int64_t ts, vec *out) {
  slot *s = &q->slots[e->slot];
  for (size_t i = 0; i < s->n; i++) {
    fser *f = &s->s[i];
    ssize_t k = last_le(f->p, f->n, ts);
    if (k < 0 || f->p[k].t <= ts - q->o.lookback_ms || PQL_STALE(f->p[k].v)) {
      continue;
    }
    pql_vec_push(q, out, f->m, f->p[k].v, f->p[k].t, false);
  }
}

static void check_limits(qctx *q) {
  if (q->cur_samples > q->peak_samples) {
    q->peak_samples = q->cur_samples;
  }
  if (q->deadline_ns && rt_mono_ns() > q->deadline_ns) {
    pql_ev_fail(q, "timeout", "query timed out in query execution");
  }
  if (q->cur_samples > q->o.max_samples) {
    pql_ev_fail(q, "execution", "query processing would load too many samples into memory in query execution");
  }
}

/* cur with its reset hint set from prev (Prometheus' stats reads). */
static const pql_hist *stats_hint(qctx *q, const pql_hist *cur, const pql_hist *prev) {
  if (cur->hint == PQL_HINT_GAUGE) {
    return cur;
  }
  pql_hist *c = pql_hist_copy(q, cur);
  c->hint = pql_hist_detect_reset(q, cur, prev) ? PQL_HINT_RESET : PQL_HINT_NOT_RESET;
  return c;
}

/* ---------------- column evaluation (range queries) ----------------
 *
 * A selector, or a range function over a matrix selector, that is evaluated at the steps of a
 * range query (not inside a subquery) and reads only float samples is evaluated series by series
 * for a block of steps at a time: per series, one pass over its points moves a cursor (selector)
 * or the two ends of the window (range function) forward from step to step, and the values land
 * in a table [step][series]. The per-step evaluation then reads its step's row instead of
 * searching every series again. Values come from the same code on the same points (range_fn()
 * on the same window), so they are bit for bit those of the per-step evaluation. */


struct pql_col {
  const pql_expr *e;      /* the selector, or the call of the range function */
  const pql_expr *vs;     /* the selector read */
  slot *sl;
  uint32_t sid0;          /* series i has sid sid0 + i */
  pql_colfn fn;           /* range functions: arguments and how to evaluate */
  int64_t range;          /* range functions: the matrix selector's range */
  size_t nser;
  int64_t nsteps;         /* steps of the query */
  int64_t j0, nb, bcap;   /* steps [j0, j0 + nb) are in the table, which has room for bcap */
  size_t *hi, *lo;        /* per series: points at or before the step; range functions: the window [lo, hi) */
  const pql_point **pts;  /* range functions: each series' points without stale markers */
  size_t *npts;
  bool *rising;           /* range functions: no point of the series is below its predecessor */
  int32_t *idx;           /* selectors: [step][series] index of the sample, -1 for none */
  double *v;              /* range functions: [step][series] value ... */
  uint8_t *has;           /* ... and whether there is one */
  int64_t *nsamp;         /* range functions: [step] window points (counted in cur_samples) */
  int64_t *first;         /* notes: per series, the first step with a window (-1 none) */
};

pql_col *pql_col_of(qctx *q, const pql_expr *e) {
  const pql_expr *vs = e->kind == PQL_N_VS ? e : NULL;
  if (e->kind == PQL_N_CALL) {
    for (size_t i = 0; i < e->nargs && !vs; i++) {
      const pql_expr *a = e->args[i];
      while (a->kind == PQL_N_PAREN) {
        a = a->a;
      }
      if (a->kind == PQL_N_MS) {
        vs = a->a;
      }
    }
  }
  if (!vs || vs->kind != PQL_N_VS || vs->slot < 0 || vs->slot >= q->nslots) {
    return NULL;
  }
  pql_col *c = q->slots[vs->slot].col;
  return c && c->e == e ? c : NULL;
}

static pql_col *col_create(qctx *q, const pql_expr *e, const pql_expr *vs, int64_t nsteps) {
  slot *sl = &q->slots[vs->slot];
  for (size_t i = 0; i < sl->n; i++) {
    if (sl->s[i].has_hist || sl->s[i].n > INT32_MAX) {
      return NULL; /* histograms keep the per-step path (reset hints, mixed ranges) */
    }
  }
  if (!q->ca && !(q->ca = rt_arena_create(1 << 16))) {
    pql_ev_fail(q, "internal", "out of memory");
  }
  pql_col *c = qa_must(q, sizeof *c);
  memset(c, 0, sizeof *c);
  c->e = e;
  c->vs = vs;
  c->sl = sl;
  c->nser = sl->n;
  c->nsteps = nsteps;
  size_t n = c->nser ? c->nser : 1;
  size_t cells = q->o.column_cells ? q->o.column_cells : (size_t)1 << 20;
  c->bcap = (int64_t)RT_MAX((size_t)1, cells / n);
  c->bcap = RT_MIN(c->bcap, nsteps);
  c->hi = qa_must(q, n * sizeof *c->hi);
  memset(c->hi, 0, n * sizeof *c->hi);
  if (e->kind == PQL_N_VS) {
    c->idx = qa_must(q, (size_t)c->bcap * n * sizeof *c->idx);
  } else {
    c->lo = qa_must(q, n * sizeof *c->lo);
    memset(c->lo, 0, n * sizeof *c->lo);
    c->v = qa_must(q, (size_t)c->bcap * n * sizeof *c->v);
    c->has = qa_must(q, (size_t)c->bcap * n * sizeof *c->has);
    c->nsamp = qa_must(q, (size_t)c->bcap * sizeof *c->nsamp);
    c->pts = qa_must(q, n * sizeof *c->pts);
    c->npts = qa_must(q, n * sizeof *c->npts);
    c->rising = qa_must(q, n * sizeof *c->rising);
    for (size_t i = 0; i < c->nser; i++) {
      const fser *f = &sl->s[i];
      c->pts[i] = f->p;
      c->npts[i] = f->n;
      if (f->has_stale) {
        pql_point *cp = qa_must(q, (f->n ? f->n : 1) * sizeof *cp);
        size_t k = 0;
        for (size_t j = 0; j < f->n; j++) {
          if (!PQL_STALE(f->p[j].v)) {
            cp[k++] = f->p[j];
          }
        }
        c->pts[i] = cp;
        c->npts[i] = k;
      }
      bool rising = true;
      for (size_t j = 1; j < c->npts[i] && rising; j++) {
        rising = !(c->pts[i][j].v < c->pts[i][j - 1].v);
      }
      c->rising[i] = rising;
    }
  }
  c->j0 = 0;
  c->nb = 0;
  return c;
}

/* Plans the column evaluations of a range query: selectors and range functions over matrix
 * selectors outside subqueries. */
static void col_plan(qctx *q, const pql_expr *e, bool insubq, int64_t nsteps) {
  if (!e) {
    return;
  }
  switch (e->kind) {
  case PQL_N_VS:
    if (!insubq && !e->ext && q->slots[e->slot].fetched && !q->slots[e->slot].col) {
      q->slots[e->slot].col = col_create(q, e, e, nsteps);
    }
    return;
  case PQL_N_MS: return; /* matrix selectors only under a planned range function */
  case PQL_N_SUBQ: col_plan(q, e->a, true, nsteps); return;
  case PQL_N_CALL: {
    pql_colfn fn;
    if (!insubq && pql_call_columnar(e, &fn) && q->slots[fn.ms->a->slot].fetched && !q->slots[fn.ms->a->slot].col) {
      const pql_expr *ms = fn.ms;
      pql_col *c = col_create(q, e, ms->a, nsteps);
      if (c) {
        c->fn = fn;
        c->range = range_of(q, ms);
        if (fn.notes) {
          c->first = qa_must(q, (c->nser ? c->nser : 1) * sizeof *c->first);
          for (size_t i = 0; i < c->nser; i++) {
            c->first[i] = -1;
          }
        }
        q->slots[ms->a->slot].col = c;
      }
    }
    for (size_t i = 0; i < e->nargs; i++) {
      col_plan(q, e->args[i], insubq, nsteps);
    }
    return;
  }
  default: break;
  }
  col_plan(q, e->a, insubq, nsteps);
  col_plan(q, e->b, insubq, nsteps);
  for (size_t i = 0; i < e->nargs; i++) {
    col_plan(q, e->args[i], insubq, nsteps);
  }
}

/* Numbers the series of all columns (sids from 1) for the per-query tables indexed by them. */
static void col_number(qctx *q) {
  size_t n = 0;
  for (int i = 0; i < q->nslots; i++) {
    if (q->slots[i].col) {
      n += q->slots[i].col->nser;
    }
  }
  if (n == 0 || n >= INT32_MAX) {
    return;
  }
  q->sid_m = qa_must(q, (n + 1) * sizeof *q->sid_m);
  for (int d = 0; d < 2; d++) {
    q->sid_os[d] = qa_must(q, (n + 1) * sizeof *q->sid_os[d]);
    memset(q->sid_os[d], 0xff, (n + 1) * sizeof *q->sid_os[d]);
  }
  uint32_t sid = 1;
  for (int i = 0; i < q->nslots; i++) {
    pql_col *c = q->slots[i].col;
    if (!c) {
      continue;
    }
    c->sid0 = sid;
    for (size_t k = 0; k < c->nser; k++) {
      q->sid_m[sid++] = c->sl->s[k].m;
    }
  }
  q->nsid = sid - 1;
}

static void check_deadline(qctx *q) {
  if (q->deadline_ns && rt_mono_ns() > q->deadline_ns) {
    pql_ev_fail(q, "timeout", "query timed out in query execution");
  }
}

/* Fills the table for steps [j, j + bcap): one pass per series. */
static void col_fill(qctx *q, pql_col *c, int64_t j) {
  c->j0 = j;
  c->nb = RT_MIN(c->bcap, c->nsteps - j);
  int64_t off = off_of(q, c->vs);
  int64_t lookback = q->o.lookback_ms;
  size_t ns = c->nser;
  if (c->idx) {
    for (size_t i = 0; i < ns; i++) {
      const fser *f = &c->sl->s[i];
      size_t hi = c->hi[i];
      for (int64_t b = 0; b < c->nb; b++) {
        int64_t tt = pql_at_time(q, c->vs, q->start + (j + b) * q->interval) - off;
        while (hi < f->n && f->p[hi].t <= tt) {
          hi++;
        }
        int32_t x = -1;
        if (hi > 0 && f->p[hi - 1].t > tt - lookback && !PQL_STALE(f->p[hi - 1].v)) {
          x = (int32_t)(hi - 1);
        }
        c->idx[(size_t)b * ns + i] = x;
      }
      c->hi[i] = hi;
      if ((i & 1023) == 1023) {
        check_deadline(q);
      }
    }
    return;
  }
  memset(c->nsamp, 0, (size_t)c->nb * sizeof *c->nsamp);
  q->sa_step = q->sa;
  q->sa = q->ca; /* what range functions allocate lives for one series */
  size_t work = 0;
  for (size_t i = 0; i < ns; i++) {
    const pql_point *p = c->pts[i];
    size_t n = c->npts[i], hi = c->hi[i], lo = c->lo[i];
    rser s = {c->sl->s[i].m, NULL, 0, false, 0, false, false, c->rising[i]};
    /* min/max_over_time: dq[dh, dt) holds the indices of the non-NaN points of [lo, dn) whose
     * values can still be the window's extreme, in time order; values do not increase (max) or
     * decrease (min) along it, and equal values stay, so its head is the extreme that the linear
     * scan of range_fn() keeps: the earliest (0 and -0 compare equal). A window of only NaN
     * gives its last point, as the scan does. */
    size_t *dq = NULL, dh = 0, dt = 0, dn = lo;
    int slide = c->fn.slide;
    if (slide) {
      dq = pql_ev_alloc(q, (n ? n : 1) * sizeof *dq);
    }
    for (int64_t b = 0; b < c->nb; b++) {
      int64_t t = q->start + (j + b) * q->interval;
      int64_t tt = pql_at_time(q, c->vs, t) - off;
      val m = {.type = PQL_MATRIX, .wstart = tt - c->range, .wend = tt, .range = c->range};
      while (hi < n && p[hi].t <= tt) {
        hi++;
      }
      while (lo < n && p[lo].t <= m.wstart) {
        lo++;
      }
      size_t cell = (size_t)b * ns + i;
      c->has[cell] = 0;
      if (hi <= lo) {
        continue;
      }
      c->nsamp[b] += (int64_t)(hi - lo);
      if (c->first && c->first[i] < 0) {
        c->first[i] = j + b;
      }
      if (slide) {
        for (dn = RT_MAX(dn, lo); dn < hi; dn++) {
          double x = p[dn].v;
          if (isnan(x)) {
            continue;
          }
          while (dt > dh && (slide > 0 ? p[dq[dt - 1]].v < x : p[dq[dt - 1]].v > x)) {
            dt--;
          }
          dq[dt++] = dn;
        }
        while (dh < dt && dq[dh] < lo) {
          dh++;
        }
        c->v[cell] = dh < dt ? p[dq[dh]].v : p[hi - 1].v;
        c->has[cell] = 1;
        continue;
      }
      s.p = p + lo;
      s.n = hi - lo;
      bool ok;
      c->v[cell] = pql_range_fn(q, c->e, &m, &s, c->fn.a1, c->fn.a2, &ok, t);
      c->has[cell] = ok;
      work += s.n;
      if (work > ((size_t)1 << 22)) {
        work = 0; /* long windows: the deadline is checked every few million points */
        check_deadline(q);
      }
    }
    c->hi[i] = hi;
    c->lo[i] = lo;
    rt_arena_reset(q->ca);
    if ((i & 1023) == 1023) {
      check_deadline(q);
    }
  }
  q->sa = q->sa_step;
  q->sa_step = NULL;
}

/* The table row of step time t, filled when t enters a new block. */
static size_t col_row(qctx *q, pql_col *c, int64_t t) {
  int64_t j = (t - q->start) / q->interval;
  if (RT_NEVER(t != q->start + j * q->interval || j < c->j0 || j >= c->nsteps)) {
    pql_ev_fail(q, "internal", "column evaluation out of step");
  }
  if (j >= c->j0 + c->nb) {
    col_fill(q, c, j);
  }
  return (size_t)(j - c->j0) * c->nser;
}

void pql_col_windows(qctx *q, pql_col *c, int64_t t) {
  size_t row = col_row(q, c, t);
  q->cur_samples += c->nsamp[row / (c->nser ? c->nser : 1)];
}

void pql_col_range_vec(qctx *q, pql_col *c, const pql_expr *marg, int64_t t, bool drop, vec *out) {
  size_t row = col_row(q, c, t);
  int64_t j = c->j0 + (int64_t)(row / (c->nser ? c->nser : 1));
  for (size_t i = 0; i < c->nser; i++) {
    if (c->first && c->first[i] == j) {
      pql_counter_note(q, marg, c->sl->s[i].m);
    }
    if (c->has[row + i]) {
      pql_vec_push(q, out, c->sl->s[i].m, c->v[row + i], t, drop);
      out->s[out->n - 1].sid = c->sid0 ? c->sid0 + (uint32_t)i : 0;
    }
  }
}

/* A selector's vector at step time t from its column. */
static void col_vs_vec(qctx *q, pql_col *c, int64_t t, vec *out) {
  size_t row = col_row(q, c, t);
  for (size_t i = 0; i < c->nser; i++) {
    int32_t x = c->idx[row + i];
    if (x >= 0) {
      const fser *f = &c->sl->s[i];
      pql_vec_push(q, out, f->m, f->p[x].v, f->p[x].t, false);
      out->s[out->n - 1].h = f->p[x].h;
      out->s[out->n - 1].sid = c->sid0 ? c->sid0 + (uint32_t)i : 0;
    }
  }
  q->cur_samples += (int64_t)out->n;
}

static val eval_vs(qctx *q, const pql_expr *e, int64_t t) {
  val r = {.type = PQL_VECTOR};
  pql_col *c = pql_col_of(q, e);
  if (c) {
    col_vs_vec(q, c, t, &r.v);
    return r;
  }
  slot *s = &q->slots[e->slot];
  int64_t tt = pql_at_time(q, e, t) - off_of(q, e);
  for (size_t i = 0; i < s->n; i++) {
    fser *f = &s->s[i];
    ssize_t k = last_le_hint(f->p, f->n, tt, &f->hint_hi);
    if (k < 0 || f->p[k].t <= tt - q->o.lookback_ms || PQL_STALE(f->p[k].v)) {
      continue;
    }
    double v = f->p[k].v;
    if (e->ext == PQL_EXT_SMOOTHED && f->p[k].t < tt && (size_t)k + 1 < f->n && !PQL_STALE(f->p[k + 1].v) &&
        f->p[k + 1].t - tt <= q->o.lookback_ms) {
      const pql_point *a = &f->p[k], *b = &f->p[k + 1];
      double frac = (double)(tt - a->t) / (double)(b->t - a->t);
      const char *nm = pql_ls_get(f->m, "__name__");
      if ((a->h == NULL) != (b->h == NULL)) {
        pql_ev_annot(q, true, e, "encountered a mix of histograms and floats for metric name \"%s\"", nm ? nm : "");
        continue;
      }
      if (a->h && (a->h->schema == PQL_SCHEMA_CUSTOM) != (b->h->schema == PQL_SCHEMA_CUSTOM)) {
        pql_ev_annot(q, true, e,
                     "vector contains a mix of histograms with exponential and custom buckets schemas for metric "
                     "name \"%s\"",
                     nm ? nm : "");
        continue;
      }
      if (a->h && b->h) {
        /* histograms: a + (b - a) * frac, or b * frac across a counter reset */
        const pql_hist *ih = NULL;
        if (pql_hist_detect_reset(q, b->h, a->h)) {
          ih = pql_hist_scale(q, b->h, frac);
        } else {
          int why;
          const pql_hist *d = pql_hist_add(q, b->h, a->h, -1, &why, NULL);
          ih = d ? pql_hist_add(q, a->h, pql_hist_scale(q, d, frac), 1, &why, NULL) : NULL;
        }
        if (ih) {
          pql_vec_push_h(q, &r.v, f->m, ih, f->p[k].t, false);
          continue;
        }
      } else if (!a->h && !b->h) {
        v = a->v + (b->v - a->v) * frac;
      }
    }
    pql_vec_push(q, &r.v, f->m, v, f->p[k].t, false);
    r.v.s[r.v.n - 1].h = f->p[k].h;
    if (q->hstats && f->p[k].h && k > 0 && f->p[k - 1].h) {
      r.v.s[r.v.n - 1].h = stats_hint(q, f->p[k].h, f->p[k - 1].h);
    }
  }
  q->cur_samples += (int64_t)r.v.n;
  return r;
}

static val eval_ms(qctx *q, const pql_expr *e, int64_t t) {
  const pql_expr *vs = e->a;
  val r = {.type = PQL_MATRIX};
  slot *s = &q->slots[vs->slot];
  int64_t tt = pql_at_time(q, vs, t) - off_of(q, vs);
  int64_t range = range_of(q, e);
  r.wend = tt;
  r.wstart = tt - range;
  r.range = range;
  r.mx = pql_ev_alloc(q, (s->n ? s->n : 1) * sizeof *r.mx);
  for (size_t i = 0; i < s->n; i++) {
    fser *f = &s->s[i];
    ssize_t hi = last_le_hint(f->p, f->n, tt, &f->hint_hi);
    ssize_t lo = last_le_hint(f->p, f->n, tt - range, &f->hint_lo) + 1;
    if (hi < lo && !vs->ext) {
      continue;
    }
    if (vs->ext) {
      /* window points plus the neighbour before (and after, smoothed) within the lookback */
      ssize_t b = lo - 1, a = hi + 1;
      while (b >= 0 && PQL_STALE(f->p[b].v)) {
        b--;
      }
      bool hb = b >= 0 && f->p[b].t > tt - range - q->o.lookback_ms;
      while ((size_t)a < f->n && PQL_STALE(f->p[a].v)) {
        a++;
      }
      bool ha = vs->ext == PQL_EXT_SMOOTHED && (size_t)a < f->n && f->p[a].t - tt <= q->o.lookback_ms;
      size_t cap = (size_t)(hi - lo + 1) + 2;
      pql_point *cp = pql_ev_alloc(q, cap * sizeof *cp);
      size_t k = 0;
      if (hb) {
        cp[k++] = f->p[b];
      }
      size_t inwin = 0;
      for (ssize_t j = lo; j <= hi; j++) {
        if (!PQL_STALE(f->p[j].v)) {
          cp[k++] = f->p[j];
          inwin++;
        }
      }
      if (inwin == 0 && !(vs->ext == PQL_EXT_SMOOTHED && hb && ha)) {
        continue;
      }
      if (ha) {
        cp[k++] = f->p[a];
      }
      r.mx[r.nmx++] = (rser){f->m, cp, k, false, vs->ext, hb, ha};
      q->cur_samples += (int64_t)k;
      continue;
    }
    const pql_point *pp = f->p + lo;
    size_t n = (size_t)(hi - lo + 1);
    if (f->has_stale) {
      pql_point *cp = pql_ev_alloc(q, n * sizeof *cp);
      size_t k = 0;
      for (size_t j = 0; j < n; j++) {
        if (!PQL_STALE(pp[j].v)) {
          cp[k++] = pp[j];
        }
      }
      if (k == 0) {
        continue;
      }
      pp = cp;
      n = k;
    }
    if (q->hstats) {
      /* reset hints from the previous sample (the one before the window for the first) */
      pql_point *cp = pql_ev_alloc(q, n * sizeof *cp);
      memcpy(cp, pp, n * sizeof *cp);
      const pql_hist *prev = NULL;
      if (lo > 0 && !PQL_STALE(f->p[lo - 1].v)) {
        prev = f->p[lo - 1].h;
      }
      for (size_t j = 0; j < n; j++) {
        if (cp[j].h && prev) {
          cp[j].h = stats_hint(q, pp[j].h, prev);
        } else if (cp[j].h && j == 0 && lo == 0 && cp[j].h->hint == PQL_HINT_UNKNOWN && f->p[0].t > s->mint + 1) {
          /* the previous sample was not fetched: a stored sample continues its predecessor */
          pql_hist *c = pql_hist_copy(q, cp[j].h);
          c->hint = PQL_HINT_NOT_RESET;
          cp[j].h = c;
        }
        prev = pp[j].h;
      }
      pp = cp;
    }
    r.mx[r.nmx++] = (rser){f->m, pp, n, false, 0, false, false};
    q->cur_samples += (int64_t)n;
  }
  return r;
}

typedef struct sqser {
  const pql_ls *m;
  pql_point *p;
  size_t n, cap;
  bool drop;
} sqser;


/* Returns the label set m copied to the query arena (once per distinct set). */
static const pql_ls *sqc_labels(qctx *q, sqcache *c, const pql_ls *m) {
  if ((c->ln + 1) * 2 > c->lcap) {
    size_t nc = c->lcap ? c->lcap * 2 : 64;
    uint64_t *nk = qa_must(q, nc * sizeof *nk);
    const pql_ls **nv = qa_must(q, nc * sizeof *nv);
    memset(nv, 0, nc * sizeof *nv);
    for (size_t i = 0; i < c->lcap; i++) {
      if (c->lv[i]) {
        size_t x = (size_t)(c->lk[i] * 0x9E3779B97F4A7C15ULL) & (nc - 1);
        while (nv[x]) {
          x = (x + 1) & (nc - 1);
        }
        nk[x] = c->lk[i];
        nv[x] = c->lv[i];
      }
    }
    c->lk = nk;
    c->lv = nv;
    c->lcap = nc;
  }
  size_t x = (size_t)(m->hash * 0x9E3779B97F4A7C15ULL) & (c->lcap - 1);
  while (c->lv[x]) {
    if (c->lk[x] == m->hash) {
      return c->lv[x];
    }
    x = (x + 1) & (c->lcap - 1);
  }
  pql_ls *cm = qa_must(q, sizeof *cm + m->n * sizeof(rt_label));
  cm->n = m->n;
  cm->stable = 1;
  cm->hash = m->hash;
  for (uint32_t k = 0; k < m->n; k++) {
    cm->l[k].name = rt_arena_strndup(q->qa, m->l[k].name, strlen(m->l[k].name));
    cm->l[k].value = rt_arena_strndup(q->qa, m->l[k].value, strlen(m->l[k].value));
    if (!cm->l[k].name || !cm->l[k].value) {
      pql_ev_fail(q, "internal", "out of memory");
    }
  }
  c->lk[x] = m->hash;
  c->lv[x] = cm;
  c->ln++;
  return cm;
}

/* The inner vector of subquery e at ts, evaluated once per query. */
static const vec *subq_inner(qctx *q, const pql_expr *e, int64_t ts) {
  sqcache *c = &q->sqc[e->slot];
  /* lookups come in ascending order within a step; binary search the sorted times */
  size_t lo = 0, hi = c->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (c->ts[mid] < ts) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo < c->n && c->ts[lo] == ts) {
    return &c->vecs[lo];
  }
  int hs = q->hstats;
  q->hstats = 0; /* subquery steps are not consecutive samples */
  val v = pql_ev(q, e->a, ts);
  q->hstats = hs;
  vec cv = {0};
  cv.n = cv.cap = v.v.n;
  cv.s = qa_must(q, (v.v.n ? v.v.n : 1) * sizeof *cv.s);
  for (size_t i = 0; i < v.v.n; i++) {
    cv.s[i] = v.v.s[i];
    cv.s[i].m = sqc_labels(q, c, v.v.s[i].m);
    if (cv.s[i].h && !(cv.s[i].h = pql_hist_dup_arena(q->qa, cv.s[i].h))) {
      pql_ev_fail(q, "internal", "out of memory");
    }
  }
  if (c->n == c->cap) {
    size_t nc = c->cap ? c->cap * 2 : 64;
    int64_t *nt = qa_must(q, nc * sizeof *nt);
    vec *nv = qa_must(q, nc * sizeof *nv);
    if (c->n) {
      memcpy(nt, c->ts, c->n * sizeof *nt);
      memcpy(nv, c->vecs, c->n * sizeof *nv);
    }
    c->ts = nt;
    c->vecs = nv;
    c->cap = nc;
  }
  memmove(c->ts + lo + 1, c->ts + lo, (c->n - lo) * sizeof *c->ts);
  memmove(c->vecs + lo + 1, c->vecs + lo, (c->n - lo) * sizeof *c->vecs);
  c->ts[lo] = ts;
  c->vecs[lo] = cv;
  c->n++;
  return &c->vecs[lo];
}

static val eval_subq(qctx *q, const pql_expr *e, int64_t t) {
  int64_t tt = pql_at_time(q, e, t) - off_of(q, e);
  int64_t step = step_of(q, e);
  int64_t range = range_of(q, e);
  int64_t lo = tt - range;
  int64_t start = step * (lo / step);
  if (start <= lo) {
    start += step;
  }
  val r = {.type = PQL_MATRIX, .wstart = lo, .wend = tt, .range = range};
  hmap h;
  hmap_init(q, &h, 16);
  sqser *ss = NULL;
  size_t n = 0, cap = 0;
  for (int64_t ts = start; ts <= tt; ts += step) {
    const vec *vv = subq_inner(q, e, ts);
    for (size_t i = 0; i < vv->n; i++) {
      const smp *s = &vv->s[i];
      int32_t *slotp = hmap_slot(q, &h, s->m->hash, true);
      if (*slotp < 0) {
        if (n == cap) {
          size_t nc = cap ? cap * 2 : 16;
          sqser *ns = pql_ev_alloc(q, nc * sizeof *ns);
          if (n) {
            memcpy(ns, ss, n * sizeof *ns);
          }
          ss = ns;
          cap = nc;
        }
        ss[n] = (sqser){s->m, NULL, 0, 0, false};
        *slotp = (int32_t)n++;
      }
      sqser *x = &ss[*slotp];
      if (x->n == x->cap) {
        size_t nc = x->cap ? x->cap * 2 : 8;
        pql_point *np = pql_ev_alloc(q, nc * sizeof *np);
        if (x->n) {
          memcpy(np, x->p, x->n * sizeof *np);
        }
        x->p = np;
        x->cap = nc;
      }
      x->p[x->n++] = (pql_point){ts, s->v, s->h};
      x->drop |= s->drop;
      q->cur_samples++;
    }
    check_limits(q);
  }
  r.mx = pql_ev_alloc(q, (n ? n : 1) * sizeof *r.mx);
  for (size_t i = 0; i < n; i++) {
    r.mx[r.nmx++] = (rser){ss[i].m, ss[i].p, ss[i].n, ss[i].drop, 0, false, false};
  }
  return r;
}

/* ---------------- binary operators ---------------- */

static bool op_is_arith(pql_op op) {
  return !pql_op_is_comparison(op) && !pql_op_is_setop(op) && op != PQL_OP_TRIM_UPPER && op != PQL_OP_TRIM_LOWER;
}

/* Returns the value; *keep tells whether a comparison held. */
static double binop(pql_op op, double l, double r, bool *keep) {
  *keep = true;
  switch (op) {
  case PQL_OP_ADD: return l + r;
  case PQL_OP_SUB: return l - r;
  case PQL_OP_MUL: return l * r;
  case PQL_OP_DIV: return l / r;
  case PQL_OP_POW: return pow(l, r);
  case PQL_OP_MOD: return fmod(l, r);
  case PQL_OP_ATAN2: return atan2(l, r);
  case PQL_OP_EQLC: *keep = l == r; return l;
  case PQL_OP_NEQ: *keep = l != r; return l;
  case PQL_OP_GTR: *keep = l > r; return l;
  case PQL_OP_LSS: *keep = l < r; return l;
  case PQL_OP_GTE: *keep = l >= r; return l;
  case PQL_OP_LTE: *keep = l <= r; return l;
  default: return NAN;
  }
}

bool pql_hist_same(const pql_hist *a, const pql_hist *b) {
  if (a->schema != b->schema || a->count != b->count || a->zc != b->zc || a->zt != b->zt || a->np != b->np ||
      a->nn != b->nn || a->ncv != b->ncv || !(a->sum == b->sum || (isnan(a->sum) && isnan(b->sum)))) {
    return false;
  }
  for (uint32_t i = 0; i < a->np; i++) {
    if (a->pi[i] != b->pi[i] || a->pb[i] != b->pb[i]) {
      return false;
    }
  }
  for (uint32_t i = 0; i < a->nn; i++) {
    if (a->ni[i] != b->ni[i] || a->nb[i] != b->nb[i]) {
      return false;
    }
  }
  for (uint32_t i = 0; i < a->ncv; i++) {
    if (a->cv[i] != b->cv[i]) {
      return false;
    }
  }
  return true;
}

/* binop() for samples that may be histograms. Returns false when the sample types do not go
 * together (the pair is dropped; an annotation says why). */
static bool binop_h(qctx *q, const pql_expr *e, double fl, const pql_hist *hl, double fr, const pql_hist *hr,
                    const pql_ls *m, double *v, const pql_hist **h, bool *keep) {
  *h = NULL;
  pql_op op = e->op;
  bool trim = op == PQL_OP_TRIM_UPPER || op == PQL_OP_TRIM_LOWER;
  if (!hl && !hr && !trim) {
    *v = binop(e->op, fl, fr, keep);
    return true;
  }
  *keep = true;
  *v = 0;
  if (hl && hr && (op == PQL_OP_EQLC || op == PQL_OP_NEQ)) {
    bool eq = pql_hist_same(hl, hr);
    *keep = op == PQL_OP_EQLC ? eq : !eq;
    *h = hl;
    return true;
  }
  if (hl && hr && (op == PQL_OP_ADD || op == PQL_OP_SUB)) {
    int why;
    bool cvfix = false;
    *h = pql_hist_add(q, hl, hr, op == PQL_OP_SUB ? -1 : 1, &why, &cvfix);
    if (!*h) {
      const char *nm = m ? pql_ls_get(m, "__name__") : NULL;
      pql_ev_annot(q, true, e,
                   "vector contains a mix of histograms with exponential and custom buckets schemas for metric name "
                   "\"%s\"",
                   nm ? nm : "");
      return false;
    }
    if (op == PQL_OP_SUB) {
      ((pql_hist *)*h)->hint = PQL_HINT_GAUGE;
    }
    if (cvfix) {
      pql_ev_annot(q, false, e, "mismatched custom buckets were reconciled during %s",
                   op == PQL_OP_SUB ? "subtraction" : "addition");
    }
    return true;
  }
  if (hl && !hr && (op == PQL_OP_MUL || op == PQL_OP_DIV)) {
    *h = op == PQL_OP_MUL ? pql_hist_scale(q, hl, fr) : pql_hist_div(q, hl, fr);
    return true;
  }
  if (hl && !hr && trim) {
    *h = pql_hist_trim(q, hl, fr, op == PQL_OP_TRIM_UPPER);
    return true;
  }
  if (!hl && hr && op == PQL_OP_MUL) {
    *h = pql_hist_scale(q, hr, fl);
    return true;
  }
  pql_ev_annot(q, false, e, "incompatible sample types encountered for binary operator \"%s\": %s %s %s",
               pql_op_str(op), hl ? "histogram" : "float", pql_op_str(op), hr ? "histogram" : "float");
  return false;
}

static bool in_list(char **l, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++) {
    if (strcmp(l[i], name) == 0) {
      return true;
    }
  }
  return false;
}

/* Matching signature of a label set for binary operations. */
static uint64_t bin_sig(const pql_expr *e, const pql_ls *m) {
  XXH64_state_t st;
  static const unsigned char sep = 0xff;
  XXH64_reset(&st, 0);
  for (uint32_t i = 0; i < m->n; i++) {
    const char *n = m->l[i].name;
    bool inc;
    if (e->on) {
      inc = in_list(e->labels, e->nlabels, n);
    } else {
      inc = strcmp(n, "__name__") != 0 && !in_list(e->labels, e->nlabels, n);
    }
    if (inc) {
      XXH64_update(&st, n, strlen(n));
      XXH64_update(&st, &sep, 1);
      XXH64_update(&st, m->l[i].value, strlen(m->l[i].value));
      XXH64_update(&st, &sep, 1);
    }
  }
  return XXH64_digest(&st);
}

/* The grouping (aggregation) or matching (binary operator) signature sig(e, m), computed once per
 * query for label sets that live for the whole query (the common case: samples straight from
 * selectors or range functions) and then found by the addresses of node and label set. */
static uint64_t sig_cached(qctx *q, const pql_expr *e, const pql_ls *m, uint64_t (*sig)(const pql_expr *, const pql_ls *)) {
  if (!m->stable) {
    return sig(e, m);
  }
  if ((q->gk_n + 1) * 2 > q->gk_cap) {
    size_t nc = q->gk_cap ? q->gk_cap * 2 : 1024;
    uintptr_t *ne = rt_arena_alloc(q->qa, nc * sizeof *ne);
    uintptr_t *nm = rt_arena_alloc(q->qa, nc * sizeof *nm);
    uint64_t *nv = rt_arena_alloc(q->qa, nc * sizeof *nv);
    if (!ne || !nm || !nv) {
      return sig(e, m);
    }
    memset(nm, 0, nc * sizeof *nm);
    for (size_t i = 0; i < q->gk_cap; i++) {
      if (q->gk_m[i]) {
        size_t x = addr_slot(q->gk_m[i] ^ (q->gk_e[i] << 7), nc);
        while (nm[x]) {
          x = (x + 1) & (nc - 1);
        }
        ne[x] = q->gk_e[i];
        nm[x] = q->gk_m[i];
        nv[x] = q->gk_v[i];
      }
    }
    q->gk_e = ne;
    q->gk_m = nm;
    q->gk_v = nv;
    q->gk_cap = nc;
  }
  uintptr_t ke = (uintptr_t)e, km = (uintptr_t)m;
  size_t x = addr_slot(km ^ (ke << 7), q->gk_cap);
  while (q->gk_m[x]) {
    if (q->gk_m[x] == km && q->gk_e[x] == ke) {
      return q->gk_v[x];
    }
    x = (x + 1) & (q->gk_cap - 1);
  }
  uint64_t k = sig(e, m);
  q->gk_e[x] = ke;
  q->gk_m[x] = km;
  q->gk_v[x] = k;
  q->gk_n++;
  return k;
}

/* Per aggregation or binary operator node, the signature of each column series (by sid). */
typedef struct sigtab {
  const pql_expr *e;
  uint64_t *v;
  uint8_t *has;
} sigtab;

/* The table of node e, made on first use; NULL when the query has no column series. */
static sigtab *sig_table(qctx *q, const pql_expr *e) {
  if (!q->nsid) {
    return NULL;
  }
  for (size_t i = 0; i < q->nsigtabs; i++) {
    if (q->sigtabs[i].e == e) {
      return &q->sigtabs[i];
    }
  }
  if (q->nsigtabs == q->capsigtabs) {
    size_t nc = q->capsigtabs ? q->capsigtabs * 2 : 4;
    sigtab *nt = qa_must(q, nc * sizeof *nt);
    if (q->nsigtabs) {
      memcpy(nt, q->sigtabs, q->nsigtabs * sizeof *nt);
    }
    q->sigtabs = nt;
    q->capsigtabs = nc;
  }
  sigtab *t = &q->sigtabs[q->nsigtabs++];
  t->e = e;
  t->v = qa_must(q, (q->nsid + 1) * sizeof *t->v);
  t->has = qa_must(q, q->nsid + 1);
  memset(t->has, 0, q->nsid + 1);
  return t;
}

/* sig(e, s->m): from the node's table for a column series, else from sig_cached(). */
static uint64_t sig_of(qctx *q, sigtab *tab, const pql_expr *e, const smp *s,
                       uint64_t (*sig)(const pql_expr *, const pql_ls *)) {
  if (tab && s->sid && q->sid_m[s->sid] == s->m) {
    if (!tab->has[s->sid]) {
      tab->v[s->sid] = sig(e, s->m);
      tab->has[s->sid] = 1;
    }
    return tab->v[s->sid];
  }
  return sig_cached(q, e, s->m, sig);
}

static const pql_ls *match_labels(qctx *q, const pql_expr *e, const pql_ls *m) {
  rt_label *tmp = pql_ev_alloc(q, (m->n + 1) * sizeof *tmp);
  size_t n = 0;
  for (uint32_t i = 0; i < m->n; i++) {
    const char *nm = m->l[i].name;
    bool inc = e->on ? in_list(e->labels, e->nlabels, nm)
                     : (strcmp(nm, "__name__") != 0 && !in_list(e->labels, e->nlabels, nm));
    if (inc) {
      tmp[n++] = m->l[i];
    }
  }
  return pql_ls_make(q, tmp, n);
}

static const pql_ls *result_metric(qctx *q, const pql_expr *e, const pql_ls *l, const pql_ls *r) {
  const pql_ls *m = l;
  if (e->card == PQL_CARD_ONE_TO_ONE) {
    if (e->on || e->nlabels > 0) {
      rt_label *tmp = pql_ev_alloc(q, (l->n + 1) * sizeof *tmp);
      size_t n = 0;
      for (uint32_t i = 0; i < l->n; i++) {
        bool listed = in_list(e->labels, e->nlabels, l->l[i].name);
        if (e->on ? listed : !listed) {
          tmp[n++] = l->l[i];
        }
      }
      m = pql_ls_make(q, tmp, n);
    }
  } else {
    for (size_t i = 0; i < e->ninclude; i++) {
      const char *v = pql_ls_get(r, e->include[i]);
      m = pql_ls_set(q, m, e->include[i], v ? v : "");
    }
  }
  return m;
}

static int ls_cmp_ptr(const void *a, const void *b) {
  const pql_ls *x = *(const pql_ls *const *)a, *y = *(const pql_ls *const *)b;
  return rt_labels_cmp(x->l, x->n, y->l, y->n);
}

static val vector_binop(qctx *q, const pql_expr *e, vec *lhs, vec *rhs, int64_t t) {
  val r = {.type = PQL_VECTOR};
  sigtab *tab = sig_table(q, e);
  if (e->op == PQL_OP_AND || e->op == PQL_OP_UNLESS) {
    hmap h;
    hmap_init(q, &h, rhs->n);
    for (size_t i = 0; i < rhs->n; i++) {
      *hmap_slot(q, &h, sig_of(q, tab, e, &rhs->s[i], bin_sig), true) = 1;
    }
    for (size_t i = 0; i < lhs->n; i++) {
      bool found = hmap_get(q, &h, sig_of(q, tab, e, &lhs->s[i], bin_sig)) >= 0;
      if (found == (e->op == PQL_OP_AND)) {
        pql_vec_push(q, &r.v, lhs->s[i].m, lhs->s[i].v, t, lhs->s[i].drop);
        r.v.s[r.v.n - 1].h = lhs->s[i].h;
      }
    }
    return r;
  }
  if (e->op == PQL_OP_OR) {
    hmap h;
    hmap_init(q, &h, lhs->n);
    for (size_t i = 0; i < lhs->n; i++) {
      *hmap_slot(q, &h, sig_of(q, tab, e, &lhs->s[i], bin_sig), true) = 1;
      pql_vec_push(q, &r.v, lhs->s[i].m, lhs->s[i].v, t, lhs->s[i].drop);
      r.v.s[r.v.n - 1].h = lhs->s[i].h;
    }
    for (size_t i = 0; i < rhs->n; i++) {
      if (hmap_get(q, &h, sig_of(q, tab, e, &rhs->s[i], bin_sig)) < 0) {
        pql_vec_push(q, &r.v, rhs->s[i].m, rhs->s[i].v, t, rhs->s[i].drop);
        r.v.s[r.v.n - 1].h = rhs->s[i].h;
      }
    }
    return r;
  }
  vec *L = lhs, *R = rhs;
  if (e->card == PQL_CARD_ONE_TO_MANY) {
    L = rhs;
    R = lhs;
  }
  hmap rs;
  hmap_init(q, &rs, R->n);
  uint64_t *rsig = pql_ev_alloc(q, (R->n + 1) * sizeof *rsig);
  for (size_t i = 0; i < R->n; i++) {
    rsig[i] = sig_of(q, tab, e, &R->s[i], bin_sig);
    int32_t *sl = hmap_slot(q, &rs, rsig[i], true);
    if (*sl >= 0) {
      const pql_ls *pair[2] = {R->s[i].m, R->s[*sl].m};
      PQL_QSORT(pair, 2, sizeof pair[0], ls_cmp_ptr);
      rt_buf b = RT_BUF_INIT;
      rt_buf_puts(&b, "found duplicate series for the match group ");
      pql_ls_string(match_labels(q, e, R->s[i].m), &b);
      rt_buf_printf(&b, " on the %s hand-side of the operation: [", e->card == PQL_CARD_ONE_TO_MANY ? "left" : "right");
      pql_ls_string(pair[0], &b);
      rt_buf_puts(&b, ", ");
      pql_ls_string(pair[1], &b);
      rt_buf_puts(&b, "];many-to-many matching not allowed: matching labels must be unique on one side");
      char *msg = pql_ev_strdup(q, b.data ? b.data : "", b.len);
      rt_buf_free(&b);
      pql_ev_fail(q, "execution", "%s", msg);
    }
    *sl = (int32_t)i;
  }
  hmap matched;
  hmap_init(q, &matched, L->n);
  hmap inserted;
  hmap_init(q, &inserted, L->n);
  /* fill modifiers refer to the sides after the one-to-many swap */
  bool fill_l = e->fill_l, fill_r = e->fill_r;
  hmap lsigs;
  if (fill_l) {
    hmap_init(q, &lsigs, L->n);
  }
  size_t nl = L->n;
  smp synth;
  for (size_t i = 0; i < nl + (fill_l ? R->n : 0); i++) {
    smp *ls;
    smp *rsmp;
    uint64_t sig;
    if (i < nl) {
      ls = &L->s[i];
      sig = sig_of(q, tab, e, ls, bin_sig);
      if (fill_l) {
        *hmap_slot(q, &lsigs, sig, true) = 1;
      }
      int32_t ri = hmap_get(q, &rs, sig);
      if (ri < 0) {
        if (!fill_r) {
          continue;
        }
        synth = (smp){.m = match_labels(q, e, ls->m), .v = e->fill_rv, .t = t};
        rsmp = &synth;
      } else {
        rsmp = &R->s[ri];
      }
    } else {
      /* an R sample that no L sample matched: synthesize the L side */
      rsmp = &R->s[i - nl];
      sig = rsig[i - nl];
      if (hmap_get(q, &lsigs, sig) >= 0) {
        continue;
      }
      synth = (smp){.m = match_labels(q, e, rsmp->m), .v = e->fill_lv, .t = t};
      ls = &synth;
    }
    double fl = ls->v, fr = rsmp->v;
    const pql_hist *hl = ls->h, *hr = rsmp->h;
    if (e->card == PQL_CARD_ONE_TO_MANY) {
      fl = rsmp->v;
      fr = ls->v;
      hl = rsmp->h;
      hr = ls->h;
    }
    bool keep;
    double v;
    const pql_hist *hv = NULL;
    bool typesok = binop_h(q, e, fl, hl, fr, hr, e->card == PQL_CARD_ONE_TO_MANY ? rsmp->m : ls->m, &v, &hv, &keep);
    if (e->ret_bool) {
      hv = NULL;
    }
    if (e->ret_bool) {
      v = keep ? 1 : 0;
      keep = true;
    }
    if (e->card == PQL_CARD_ONE_TO_ONE) {
      /* checked before filtering so that the error does not depend on the values */
      int32_t *sl = hmap_slot(q, &matched, sig, true);
      if (*sl >= 0) {
        pql_ev_fail(q, "execution",
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)");
      }
      *sl = 1;
    }
    if (!keep || !typesok) {
      continue;
    }
    const pql_ls *m = result_metric(q, e, ls->m, rsmp->m);
    if (e->card != PQL_CARD_ONE_TO_ONE) {
      int32_t *sl = hmap_slot(q, &inserted, m->hash, true);
      if (*sl >= 0) {
        pql_ev_fail(q, "execution", "multiple matches for labels: grouping labels must ensure unique matches");
      }
      *sl = 1;
    }
    bool drop = e->ret_bool || op_is_arith(e->op) || ls->drop;
    pql_vec_push(q, &r.v, m, v, t, drop);
    r.v.s[r.v.n - 1].h = hv;
  }
  return r;
}

static val eval_bin(qctx *q, const pql_expr *e, int64_t t) {
  val l = pql_ev(q, e->a, t);
  val rr = pql_ev(q, e->b, t);
  val r = {.type = PQL_VECTOR};
  if (l.type == PQL_SCALAR && rr.type == PQL_SCALAR) {
    bool keep;
    double v = binop(e->op, l.num, rr.num, &keep);
    if (e->ret_bool) {
      v = keep ? 1 : 0;
    }
    r.type = PQL_SCALAR;
    r.num = v;
    return r;
  }
  if (l.type == PQL_VECTOR && rr.type == PQL_VECTOR) {
    return vector_binop(q, e, &l.v, &rr.v, t);
  }
  bool swap = l.type == PQL_SCALAR;
  vec *vv = swap ? &rr.v : &l.v;
  double sc = swap ? l.num : rr.num;
  for (size_t i = 0; i < vv->n; i++) {
    smp *s = &vv->s[i];
    double fl = s->v, fr = sc;
    const pql_hist *hl = s->h, *hr = NULL;
    if (swap) {
      fl = sc;
      fr = s->v;
      hl = NULL;
      hr = s->h;
    }
    bool keep;
    double v;
    const pql_hist *hv;
    if (!binop_h(q, e, fl, hl, fr, hr, s->m, &v, &hv, &keep)) {
      continue;
    }
    if (pql_op_is_comparison(e->op) && swap) {
      v = fr;
    }
    if (e->ret_bool) {
      v = keep ? 1 : 0;
      keep = true;
      hv = NULL;
    }
    if (!keep) {
      continue;
    }
    pql_vec_push(q, &r.v, s->m, v, t, e->ret_bool || op_is_arith(e->op) || s->drop);
    r.v.s[r.v.n - 1].h = hv;
  }
  return r;
}

/* ---------------- aggregations ---------------- */

typedef struct group {
  const pql_ls *m;
  double v, c, mean;
  double count;
  bool incremental;
  bool drop;
  smp *heap;
  size_t hn, hcap;
  double *vals;
  size_t vn, vcap;
  /* native histograms (sum, avg) */
  const pql_hist *hs;
  size_t nh, nf;
  bool hbad, hreset, hnotreset;
  double hks, hkc; /* Kahan sum of the histograms' sums */
} group;

/* Adds histogram h to the group's histogram sum. */
static void group_add_hist(qctx *q, const pql_expr *e, group *g, const smp *s) {
  const pql_hist *h = s->h;
  g->nh++;
  if (h->hint == PQL_HINT_RESET) {
    g->hreset = true;
  } else if (h->hint == PQL_HINT_NOT_RESET) {
    g->hnotreset = true;
  }
  if (g->hbad) {
    return;
  }
  pql_kahan_inc(h->sum, &g->hks, &g->hkc);
  if (!g->hs) {
    g->hs = h;
    return;
  }
  int why;
  bool cvfix = false;
  const pql_hist *r;
  if (e->op == PQL_AGG_AVG) {
    /* incremental mean (no overflow of the intermediate sum): mean += h/n - mean/n */
    double nn = (double)g->nh;
    const pql_hist *d = pql_hist_add(q, pql_hist_div(q, h, nn), pql_hist_div(q, g->hs, nn), -1, &why, &cvfix);
    r = d ? pql_hist_add(q, g->hs, d, 1, &why, &cvfix) : NULL;
    if (r) {
      ((pql_hist *)r)->hint = g->hs->hint == PQL_HINT_GAUGE || h->hint == PQL_HINT_GAUGE ? PQL_HINT_GAUGE : PQL_HINT_UNKNOWN;
    }
  } else {
    r = pql_hist_add(q, g->hs, h, 1, &why, &cvfix);
  }
  if (!r) {
    const char *nm = pql_ls_get(s->m, "__name__");
    pql_ev_annot(q, true, e->a,
                 "vector contains a mix of histograms with exponential and custom buckets schemas for metric name "
                 "\"%s\"",
                 nm ? nm : "");
    g->hbad = true;
    return;
  }
  if (cvfix) {
    pql_ev_annot(q, false, e->a, "mismatched custom buckets were reconciled during aggregation");
  }
  g->hs = r;
}

static uint64_t group_key(const pql_expr *e, const pql_ls *m) {
  XXH64_state_t st;
  static const unsigned char sep = 0xff;
  XXH64_reset(&st, 0);
  for (uint32_t i = 0; i < m->n; i++) {
    const char *n = m->l[i].name;
    bool inc = e->without ? (strcmp(n, "__name__") != 0 && !in_list(e->labels, e->nlabels, n))
                          : in_list(e->labels, e->nlabels, n);
    if (inc) {
      XXH64_update(&st, n, strlen(n));
      XXH64_update(&st, &sep, 1);
      XXH64_update(&st, m->l[i].value, strlen(m->l[i].value));
      XXH64_update(&st, &sep, 1);
    }
  }
  return XXH64_digest(&st);
}

static const pql_ls *group_labels(qctx *q, const pql_expr *e, const pql_ls *m) {
  rt_label *tmp = pql_ev_alloc(q, (m->n + 1) * sizeof *tmp);
  size_t n = 0;
  for (uint32_t i = 0; i < m->n; i++) {
    const char *nm = m->l[i].name;
    bool inc = e->without ? (strcmp(nm, "__name__") != 0 && !in_list(e->labels, e->nlabels, nm))
                          : in_list(e->labels, e->nlabels, nm);
    if (inc) {
      tmp[n++] = m->l[i];
    }
  }
  return pql_ls_make(q, tmp, n);
}

/* Go container/heap on smp with a "less" that depends on the aggregation. */
static bool heap_less(pql_op op, const smp *a, const smp *b) {
  if (op == PQL_AGG_TOPK) {
    if (isnan(a->v)) {
      return true;
    }
    return a->v < b->v;
  }
  if (isnan(a->v)) {
    return true;
  }
  return a->v > b->v;
}

static void heap_up(pql_op op, smp *h, size_t j) {
  while (j > 0) {
    size_t i = (j - 1) / 2;
    if (!heap_less(op, &h[j], &h[i])) {
      break;
    }
    smp t = h[i];
    h[i] = h[j];
    h[j] = t;
    j = i;
  }
}

static bool heap_down(pql_op op, smp *h, size_t i0, size_t n) {
  size_t i = i0;
  for (;;) {
    size_t j1 = 2 * i + 1;
    if (j1 >= n) {
      break;
    }
    size_t j = j1;
    if (j1 + 1 < n && heap_less(op, &h[j1 + 1], &h[j1])) {
      j = j1 + 1;
    }
    if (!heap_less(op, &h[j], &h[i])) {
      break;
    }
    smp t = h[i];
    h[i] = h[j];
    h[j] = t;
    i = j;
  }
  return i > i0;
}

static int cmp_double_nan_first(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  if (isnan(x)) {
    return isnan(y) ? 0 : -1;
  }
  if (isnan(y)) {
    return 1;
  }
  return (x > y) - (x < y);
}

double pql_quantile(double qv, double *vals, size_t n) {
  if (n == 0 || isnan(qv)) {
    return NAN;
  }
  if (qv < 0) {
    return -INFINITY;
  }
  if (qv > 1) {
    return INFINITY;
  }
  PQL_QSORT(vals, n, sizeof *vals, cmp_double_nan_first);
  double N = (double)n;
  double rank = qv * (N - 1);
  double lower = fmax(0, floor(rank));
  double upper = fmin(N - 1, lower + 1);
  double w = rank - floor(rank);
  if (w == 0) {
    /* on a sample: no interpolation, so an infinite neighbour cannot turn it into Inf*0 = NaN */
    return vals[(size_t)lower];
  }
  return vals[(size_t)lower] * (1 - w) + vals[(size_t)upper] * w;
}

static int smp_cmp_desc(const void *a, const void *b) {
  const smp *x = a, *y = b;
  /* reverse of heap order for topk: larger first, NaN last */
  if (isnan(x->v)) {
    return isnan(y->v) ? 0 : 1;
  }
  if (isnan(y->v)) {
    return -1;
  }
  return (x->v < y->v) - (x->v > y->v);
}

static int smp_cmp_asc(const void *a, const void *b) {
  const smp *x = a, *y = b;
  if (isnan(x->v)) {
    return isnan(y->v) ? 0 : 1;
  }
  if (isnan(y->v)) {
    return -1;
  }
  return (x->v > y->v) - (x->v < y->v);
}

static uint64_t go_label_hash(const pql_ls *m) { return m->hash; }

static val eval_agg(qctx *q, const pql_expr *e, int64_t t) {
  double param = 0;
  const char *sparam = NULL;
  if (e->b) {
    val p = pql_ev(q, e->b, t);
    if (p.type == PQL_STRING) {
      sparam = p.str;
    } else {
      param = p.num;
    }
  }
  val in = pql_ev(q, e->a, t);
  val r = {.type = PQL_VECTOR};
  pql_op op = e->op;
  int64_t k = 0;
  double ratio = 0;
  if (op == PQL_AGG_TOPK || op == PQL_AGG_BOTTOMK || op == PQL_AGG_LIMITK) {
    if (isnan(param)) {
      pql_ev_fail(q, "execution", "Parameter value is NaN");
    }
    if (param >= 9.2e18) {
      k = INT64_MAX;
    } else if (param <= -9.2e18) {
      k = 0;
    } else {
      k = (int64_t)param;
    }
    if (k < 1) {
      return r;
    }
  } else if (op == PQL_AGG_LIMIT_RATIO) {
    if (isnan(param)) {
      pql_ev_fail(q, "execution", "Ratio value is NaN");
    }
    ratio = param;
    if (ratio < -1 || ratio > 1) {
      char fb[64];
      ratio = ratio < -1 ? -1 : 1;
      pql_ev_annot(q, true, e->b, "ratio value should be between -1 and 1, got %s, capping to %s",
                   rt_float_str(fb, param, 'g'), ratio < 0 ? "-1" : "1");
    }
    if (ratio == 0) {
      return r;
    }
  } else if (op == PQL_AGG_QUANTILE) {
    if (isnan(param) || param < 0 || param > 1) {
      char fb[64];
      pql_ev_annot(q, true, e->b, "quantile value should be between 0 and 1, got %s",
                   rt_float_str(fb, param, 'g'));
    }
  } else if (op == PQL_AGG_COUNT_VALUES) {
    if (!rt_utf8_valid(sparam, strlen(sparam)) || !sparam[0]) {
      rt_buf b = RT_BUF_INIT;
      pql_quote_string(sparam, &b);
      char *msg = pql_ev_strdup(q, b.data ? b.data : "", b.len);
      rt_buf_free(&b);
      pql_ev_fail(q, "execution", "invalid label name %s", msg);
    }
  }
  if (op == PQL_AGG_MIN || op == PQL_AGG_MAX || op == PQL_AGG_STDDEV || op == PQL_AGG_STDVAR ||
      op == PQL_AGG_QUANTILE || op == PQL_AGG_TOPK || op == PQL_AGG_BOTTOMK) {
    size_t kk = 0;
    bool ign = false;
    for (size_t i = 0; i < in.v.n; i++) {
      if (in.v.s[i].h) {
        ign = true;
      } else {
        in.v.s[kk++] = in.v.s[i];
      }
    }
    in.v.n = kk;
    if (ign) {
      /* at the aggregated expression, except for topk/bottomk (the whole aggregation), as Prometheus */
      pql_ev_annot(q, false, op == PQL_AGG_TOPK || op == PQL_AGG_BOTTOMK ? e : e->a, "ignored histogram in %s aggregation",
                   pql_op_str(op));
    }
  }
  bool hagg = op == PQL_AGG_SUM || op == PQL_AGG_AVG;
  sigtab *tab = op == PQL_AGG_COUNT_VALUES ? NULL : sig_table(q, e);
  hmap h;
  hmap_init(q, &h, in.v.n);
  group *gs = pql_ev_alloc(q, (in.v.n + 1) * sizeof *gs);
  size_t ng = 0;
  for (size_t i = 0; i < in.v.n; i++) {
    smp *s = &in.v.s[i];
    uint64_t key;
    const pql_ls *cvm = NULL;
    char fb[RT_FLOAT_MAX];
    if (op == PQL_AGG_COUNT_VALUES) {
      const char *lv;
      if (s->h) {
        rt_buf hb = RT_BUF_INIT;
        pql_hist_string(s->h, &hb);
        lv = pql_ev_strdup(q, hb.data ? hb.data : "", hb.len);
        rt_buf_free(&hb);
      } else {
        rt_float_str(fb, s->v, 'f');
        lv = pql_ev_strdup(q, fb, strlen(fb));
      }
      cvm = pql_ls_set(q, group_labels(q, e, s->m), sparam, lv);
      key = cvm->hash;
    } else {
      key = sig_of(q, tab, e, s, group_key);
    }
    int32_t *sl = hmap_slot(q, &h, key, true);
    group *g;
    if (*sl < 0) {
      *sl = (int32_t)ng;
      g = &gs[ng++];
      memset(g, 0, sizeof *g);
      g->m = cvm ? cvm : (op == PQL_AGG_TOPK || op == PQL_AGG_BOTTOMK || op == PQL_AGG_LIMITK ||
                          op == PQL_AGG_LIMIT_RATIO)
                             ? NULL
                             : group_labels(q, e, s->m);
      g->v = s->v;
      g->mean = s->v;
      g->count = 1;
      g->drop = s->drop;
      if (hagg && s->h) {
        g->v = g->mean = 0;
        g->count = 0;
        group_add_hist(q, e, g, s);
        continue;
      }
      g->nf = 1;
      switch (op) {
      case PQL_AGG_STDDEV:
      case PQL_AGG_STDVAR: g->v = (isnan(s->v) || isinf(s->v)) ? NAN : 0; break;
      case PQL_AGG_GROUP: g->v = 1; break;
      case PQL_AGG_QUANTILE:
        g->vcap = 8;
        g->vals = pql_ev_alloc(q, g->vcap * sizeof *g->vals);
        g->vals[g->vn++] = s->v;
        break;
      case PQL_AGG_TOPK:
      case PQL_AGG_BOTTOMK:
      case PQL_AGG_LIMITK:
        g->hcap = (size_t)RT_MIN(k, (int64_t)in.v.n) + 1;
        g->heap = pql_ev_alloc(q, g->hcap * sizeof *g->heap);
        g->heap[g->hn++] = *s;
        break;
      case PQL_AGG_LIMIT_RATIO: {
        double off = (double)go_label_hash(s->m) / 18446744073709551615.0;
        bool add = (ratio >= 0 && off < ratio) || (ratio < 0 && off >= 1.0 + ratio);
        if (add) {
          pql_vec_push(q, &r.v, s->m, s->v, t, s->drop);
          r.v.s[r.v.n - 1].h = s->h;
        }
        break;
      }
      default: break;
      }
      continue;
    }
    g = &gs[*sl];
    g->drop |= s->drop;
    if (hagg && s->h) {
      group_add_hist(q, e, g, s);
      continue;
    }
    g->nf++;
    switch (op) {
    case PQL_AGG_SUM: pql_kahan_inc(s->v, &g->v, &g->c); break;
    case PQL_AGG_AVG:
      g->count++;
      if (!g->incremental) {
        double nv = g->v, nc = g->c;
        pql_kahan_inc(s->v, &nv, &nc);
        if (!isinf(nv)) {
          g->v = nv;
          g->c = nc;
          break;
        }
        g->incremental = true;
        g->mean = g->v / (g->count - 1);
        g->c /= g->count - 1;
      }
      {
        double qq = (g->count - 1) / g->count;
        double m = qq * g->mean, c = qq * g->c;
        pql_kahan_inc(s->v / g->count, &m, &c);
        g->mean = m;
        g->c = c;
      }
      break;
    case PQL_AGG_COUNT:
    case PQL_AGG_COUNT_VALUES: g->count++; break;
    case PQL_AGG_GROUP: break;
    case PQL_AGG_MIN:
      if (g->v > s->v || isnan(g->v)) {
        g->v = s->v;
      }
      break;
    case PQL_AGG_MAX:
      if (g->v < s->v || isnan(g->v)) {
        g->v = s->v;
      }
      break;
    case PQL_AGG_STDDEV:
    case PQL_AGG_STDVAR: {
      g->count++;
      double delta = s->v - g->mean;
      g->mean += delta / g->count;
      g->v += delta * (s->v - g->mean);
      break;
    }
    case PQL_AGG_QUANTILE:
      if (g->vn == g->vcap) {
        size_t nc = g->vcap * 2;
        double *nv = pql_ev_alloc(q, nc * sizeof *nv);
        memcpy(nv, g->vals, g->vn * sizeof *nv);
        g->vals = nv;
        g->vcap = nc;
      }
      g->vals[g->vn++] = s->v;
      break;
    case PQL_AGG_TOPK:
    case PQL_AGG_BOTTOMK:
      if ((int64_t)g->hn < k) {
        g->heap[g->hn++] = *s;
        heap_up(op, g->heap, g->hn - 1);
      } else {
        bool better = op == PQL_AGG_TOPK ? (g->heap[0].v < s->v || (isnan(g->heap[0].v) && !isnan(s->v)))
                                         : (g->heap[0].v > s->v || (isnan(g->heap[0].v) && !isnan(s->v)));
        if (better) {
          g->heap[0] = *s;
          if (k > 1 && !heap_down(op, g->heap, 0, g->hn)) {
            heap_up(op, g->heap, 0);
          }
        }
      }
      break;
    case PQL_AGG_LIMITK:
      if ((int64_t)g->hn < k) {
        g->heap[g->hn++] = *s;
      }
      break;
    case PQL_AGG_LIMIT_RATIO: {
      double off = (double)go_label_hash(s->m) / 18446744073709551615.0;
      bool add = (ratio >= 0 && off < ratio) || (ratio < 0 && off >= 1.0 + ratio);
      if (add) {
        pql_vec_push(q, &r.v, s->m, s->v, t, s->drop);
        r.v.s[r.v.n - 1].h = s->h;
      }
      break;
    }
    default: break;
    }
  }
  if (op == PQL_AGG_LIMIT_RATIO) {
    return r;
  }
  for (size_t gi = 0; gi < ng; gi++) {
    group *g = &gs[gi];
    double v;
    switch (op) {
    case PQL_AGG_SUM: v = g->v + g->c; break;
    case PQL_AGG_AVG: v = g->incremental ? g->mean + g->c : (g->v + g->c) / g->count; break;
    case PQL_AGG_COUNT:
    case PQL_AGG_COUNT_VALUES: v = g->count; break;
    case PQL_AGG_STDVAR: v = g->v / g->count; break;
    case PQL_AGG_STDDEV: v = sqrt(g->v / g->count); break;
    case PQL_AGG_QUANTILE: v = pql_quantile(param, g->vals, g->vn); break;
    case PQL_AGG_TOPK:
    case PQL_AGG_BOTTOMK:
    case PQL_AGG_LIMITK:
      if (op == PQL_AGG_TOPK) {
        PQL_QSORT(g->heap, g->hn, sizeof *g->heap, smp_cmp_desc);
      } else if (op == PQL_AGG_BOTTOMK) {
        PQL_QSORT(g->heap, g->hn, sizeof *g->heap, smp_cmp_asc);
      }
      for (size_t j = 0; j < g->hn; j++) {
        pql_vec_push(q, &r.v, g->heap[j].m, g->heap[j].v, t, g->heap[j].drop);
        r.v.s[r.v.n - 1].h = g->heap[j].h;
      }
      continue;
    default: v = g->v; break;
    }
    if (hagg && g->nh > 0) {
      if (g->nf > 0) {
        pql_ev_annot(q, true, e, "encountered a mix of histograms and floats for aggregation");
        continue;
      }
      if (g->hbad) {
        continue;
      }
      if (g->hreset && g->hnotreset) {
        pql_ev_annot(q, true, e->a, "conflicting counter resets during histogram aggregation");
      }
      pql_hist *hsum = pql_hist_copy(q, g->hs);
      if (op == PQL_AGG_SUM) {
        hsum->sum = g->hks + g->hkc;
      } else if (isfinite(g->hks + g->hkc)) {
        hsum->sum = (g->hks + g->hkc) / (double)g->nh;
      }
      const pql_hist *hv = hsum;
      pql_vec_push(q, &r.v, g->m, 0, t, g->drop && pql_ls_get(g->m, "__name__") != NULL);
      r.v.s[r.v.n - 1].h = hv;
      continue;
    }
    /* aggregations other than the k-ones only keep __name__ when grouped by it */
    pql_vec_push(q, &r.v, g->m, v, t, g->drop && pql_ls_get(g->m, "__name__") != NULL);
  }
  return r;
}

/* ---------------- dispatcher ---------------- */

void pql_check_dups(qctx *q, const vec *v) {
  if (v->n < 2) {
    return;
  }
  hmap h;
  hmap_init(q, &h, v->n);
  for (size_t i = 0; i < v->n; i++) {
    int32_t *s = hmap_slot(q, &h, v->s[i].m->hash, true);
    if (*s >= 0) {
      pql_ev_fail(q, "execution", "vector cannot contain metrics with the same labelset");
    }
    *s = 1;
  }
}

val pql_ev(qctx *q, const pql_expr *e, int64_t t) {
  val r = {0};
  switch (e->kind) {
  case PQL_N_NUM:
    r.type = PQL_SCALAR;
    r.num = e->num;
    return r;
  case PQL_N_STR:
    r.type = PQL_STRING;
    r.str = e->str;
    return r;
  case PQL_N_PAREN: return pql_ev(q, e->a, t);
  case PQL_N_VS: return eval_vs(q, e, t);
  case PQL_N_MS: return eval_ms(q, e, t);
  case PQL_N_SUBQ: return eval_subq(q, e, t);
  case PQL_N_UNARY: {
    val x = pql_ev(q, e->a, t);
    if (e->op != PQL_OP_SUB) {
      return x;
    }
    if (x.type == PQL_SCALAR) {
      x.num = -x.num;
      return x;
    }
    for (size_t i = 0; i < x.v.n; i++) {
      x.v.s[i].v = -x.v.s[i].v;
      if (x.v.s[i].h) {
        pql_hist *nh = pql_hist_scale(q, x.v.s[i].h, -1);
        nh->hint = PQL_HINT_GAUGE;
        x.v.s[i].h = nh;
      }
      x.v.s[i].drop = true;
      x.v.s[i].t = t;
    }
    return x;
  }
  case PQL_N_BIN: return eval_bin(q, e, t);
  case PQL_N_AGG: return eval_agg(q, e, t);
  case PQL_N_CALL: return pql_call(q, e, t);
  }
  return r;
}

/* ---------------- query driver ---------------- */

typedef struct pql_result_int {
  pql_result r;
  rt_arena *ra;
} pql_result_int;

static void opts_defaults(pql_opts *o, const pql_opts *in) {
  if (in) {
    *o = *in;
  } else {
    memset(o, 0, sizeof *o);
  }
  if (o->lookback_ms <= 0) {
    o->lookback_ms = 5 * 60 * 1000;
  }
  if (o->subquery_step_ms <= 0) {
    o->subquery_step_ms = 60 * 1000;
  }
  if (o->max_samples <= 0) {
    o->max_samples = MAX_SAMPLES_DEFAULT;
  }
}

static rt_label *copy_labels(rt_arena *a, const pql_ls *m, bool drop) {
  rt_label *l = rt_arena_alloc(a, (m->n + 1) * sizeof *l);
  if (!l) {
    return NULL;
  }
  size_t k = 0;
  for (uint32_t i = 0; i < m->n; i++) {
    if (drop && strcmp(m->l[i].name, "__name__") == 0) {
      continue;
    }
    l[k].name = rt_arena_strndup(a, m->l[i].name, strlen(m->l[i].name));
    l[k].value = rt_arena_strndup(a, m->l[i].value, strlen(m->l[i].value));
    if (!l[k].name || !l[k].value) {
      return NULL;
    }
    k++;
  }
  return l;
}

typedef struct rbuild {
  pql_series *s;
  size_t n, cap;
  size_t *pcap;
  hmap h; /* lives in qa-backed arena: we allocate it from ra through a private qctx trick */
} rbuild;

static int series_cmp(const void *a, const void *b) {
  const pql_series *x = a, *y = b;
  return rt_labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

static void finish_annots(qctx *q, pql_result_int *ri) {
  pql_result *r = &ri->r;
  pql_hq_flush_notes(q);
  r->warnings = rt_arena_alloc(ri->ra, (q->nwarns + 1) * sizeof(char *));
  r->infos = rt_arena_alloc(ri->ra, (q->ninfos + 1) * sizeof(char *));
  for (size_t i = 0; i < q->nwarns; i++) {
    if (r->warnings) {
      r->warnings[r->nwarnings++] = rt_arena_strndup(ri->ra, q->warns[i], strlen(q->warns[i]));
    }
    rt_free(q->warns[i], 0);
  }
  for (size_t i = 0; i < q->ninfos; i++) {
    if (r->infos) {
      r->infos[r->ninfos++] = rt_arena_strndup(ri->ra, q->infos[i], strlen(q->infos[i]));
    }
    rt_free(q->infos[i], 0);
  }
  rt_free(q->warns, q->capwarns * sizeof(char *));
  rt_free(q->infos, q->capinfos * sizeof(char *));
  q->warns = NULL;
  q->infos = NULL;
  q->nwarns = q->ninfos = 0;
}

/* Growable result series table keyed by label hash (after name dropping). */
typedef struct outser {
  uint64_t hash;
  const pql_ls *m;
  bool drop;
  pql_point *p;
  size_t n, cap;
} outser;

rt_err pql_eval(const pql_storage *st, const pql_opts *opts, const pql_expr *e, int64_t start, int64_t end,
                int64_t step, bool range, pql_result **out) {
  *out = NULL;
  pql_result_int *ri = rt_calloc(1, sizeof *ri);
  if (!ri) {
    return RT_ENOMEM;
  }
  ri->ra = rt_arena_create(1 << 16);
  qctx *q = rt_calloc(1, sizeof *q);
  if (!ri->ra || !q) {
    if (ri->ra) {
      rt_arena_destroy(ri->ra);
    }
    rt_free(ri, sizeof *ri);
    rt_free(q, sizeof *q);
    return RT_ENOMEM;
  }
  pql_result *res = &ri->r;
  opts_defaults(&q->o, opts);
  q->st = st;
  q->start = start;
  q->end = end;
  q->interval = step > 0 ? step : 1;
  q->range = range;
  q->query = e->tree->query;
  q->qa = rt_arena_create(1 << 16);
  q->sa = rt_arena_create(1 << 16);
  q->nslots = e->tree->nslots;
  q->slots = rt_calloc((size_t)q->nslots + 1, sizeof *q->slots);
  q->nsubqs = e->tree->nsubqs;
  q->sqc = rt_calloc((size_t)q->nsubqs + 1, sizeof *q->sqc);
  if (q->o.timeout_ms > 0) {
    q->deadline_ns = rt_mono_ns() + (uint64_t)q->o.timeout_ms * 1000000ULL;
  }
  /* result building state (in the step arena's sibling: query arena) */
  outser *os = NULL;
  size_t nos = 0, capos = 0;
  uint64_t *oskeys = NULL;
  int32_t *osvals = NULL;
  size_t oscap = 0;
  if (!q->qa || !q->sa || !q->slots || !q->sqc) {
    res->error_type = "internal";
    res->error = "out of memory";
    goto done;
  }
  if (setjmp(q->jb)) {
    res->type = PQL_NONE;
    res->nseries = 0;
    res->error_type = q->errtype ? q->errtype : "execution";
    res->error = rt_arena_strndup(ri->ra, q->err, strlen(q->err));
    goto done;
  }
  if (range && e->type != PQL_SCALAR && e->type != PQL_VECTOR) {
    pql_ev_fail(q, "bad_data", "invalid expression type \"%s\" for range query, must be Scalar or instant Vector",
                e->type == PQL_MATRIX ? "range vector" : "string");
  }
  uint64_t t0 = rt_mono_ns();
  walk_ranges(q, e, start, end);
  fetch_all(q, e);
  if (range && !q->o.step_by_step) {
    col_plan(q, e, false, (end - start) / q->interval + 1);
    col_number(q);
    for (int i = 0; i < q->nslots; i++) {
      res->ncolumns += q->slots[i].col != NULL;
    }
  }
  res->prep_ns = rt_mono_ns() - t0;
  q->t_eval0 = rt_mono_ns();
  if (!range) {
    val v = pql_ev(q, e, start);
    res->type = v.type;
    res->t = start;
    if (v.type == PQL_SCALAR) {
      res->scalar = v.num;
    } else if (v.type == PQL_STRING) {
      res->str = rt_arena_strndup(ri->ra, v.str, strlen(v.str));
    } else if (v.type == PQL_VECTOR) {
      for (size_t i = 0; i < v.v.n; i++) {
        if (v.v.s[i].drop) {
          v.v.s[i].m = pql_ls_drop_name(q, v.v.s[i].m);
        }
      }
      pql_check_dups(q, &v.v);
      res->series = rt_arena_alloc(ri->ra, (v.v.n + 1) * sizeof *res->series);
      for (size_t i = 0; i < v.v.n; i++) {
        pql_series *s = &res->series[res->nseries++];
        s->labels = copy_labels(ri->ra, v.v.s[i].m, false);
        s->nlabels = 0;
        for (uint32_t k = 0; k < v.v.s[i].m->n; k++) {
          s->nlabels++;
        }
        s->points = rt_arena_alloc(ri->ra, sizeof *s->points);
        s->points[0] = (pql_point){start, v.v.s[i].v, NULL};
        if (v.v.s[i].h) {
          s->points[0].h = pql_hist_dup_arena(ri->ra, v.v.s[i].h);
        }
        s->npoints = 1;
      }
    } else if (v.type == PQL_MATRIX) {
      res->series = rt_arena_alloc(ri->ra, (v.nmx + 1) * sizeof *res->series);
      vec tmp = {0};
      for (size_t i = 0; i < v.nmx; i++) {
        const pql_ls *m = v.mx[i].drop ? pql_ls_drop_name(q, v.mx[i].m) : v.mx[i].m;
        pql_vec_push(q, &tmp, m, 0, 0, false);
        pql_series *s = &res->series[res->nseries++];
        s->labels = copy_labels(ri->ra, m, false);
        s->nlabels = m->n;
        s->points = rt_arena_alloc(ri->ra, (v.mx[i].n + 1) * sizeof *s->points);
        memcpy(s->points, v.mx[i].p, v.mx[i].n * sizeof *s->points);
        s->npoints = v.mx[i].n;
        for (size_t k = 0; k < s->npoints; k++) {
          if (s->points[k].h) {
            s->points[k].h = pql_hist_dup_arena(ri->ra, s->points[k].h);
          }
        }
      }
      pql_check_dups(q, &tmp);
      PQL_QSORT(res->series, res->nseries, sizeof *res->series, series_cmp);
    }
    goto done;
  }
  /* range query: evaluate step by step, merge by label set */
  res->type = PQL_MATRIX;
  for (int64_t ts = start; ts <= end; ts += q->interval) {
    q->cur_samples = 0;
    check_limits(q);
    val v = pql_ev(q, e, ts);
    vec one = {0};
    vec *vv;
    if (v.type == PQL_SCALAR) {
      pql_vec_push(q, &one, pql_ls_make(q, NULL, 0), v.num, ts, false);
      vv = &one;
    } else {
      vv = &v.v;
    }
    /* duplicates are found while merging: a series that already has a point at ts */
    for (size_t i = 0; i < vv->n; i++) {
      smp *s = &vv->s[i];
      /* a column's series finds its output series by sid after the first step */
      int32_t *known = s->sid && q->sid_m[s->sid] == s->m ? &q->sid_os[s->drop][s->sid] : NULL;
      outser *o;
      if (known && *known >= 0) {
        o = &os[*known];
        goto merge;
      }
      if (s->drop) {
        s->m = pql_ls_drop_name(q, s->m);
      }
      /* find or add the output series */
      if ((nos + 1) * 2 > oscap) {
        size_t nc = oscap ? oscap * 2 : 64;
        uint64_t *nk = rt_arena_alloc(q->qa, nc * sizeof *nk);
        int32_t *nv = rt_arena_alloc(q->qa, nc * sizeof *nv);
        if (!nk || !nv) {
          pql_ev_fail(q, "internal", "out of memory");
        }
        for (size_t j = 0; j < nc; j++) {
          nv[j] = -1;
        }
        for (size_t j = 0; j < nos; j++) {
          size_t x = (size_t)(os[j].hash * 0x9E3779B97F4A7C15ULL) & (nc - 1);
          while (nv[x] >= 0) {
            x = (x + 1) & (nc - 1);
          }
          nk[x] = os[j].hash;
          nv[x] = (int32_t)j;
        }
        oskeys = nk;
        osvals = nv;
        oscap = nc;
      }
      size_t x = (size_t)(s->m->hash * 0x9E3779B97F4A7C15ULL) & (oscap - 1);
      while (osvals[x] >= 0 && oskeys[x] != s->m->hash) {
        x = (x + 1) & (oscap - 1);
      }
      if (osvals[x] < 0) {
        if (nos == capos) {
          size_t nc = capos ? capos * 2 : 32;
          outser *no = rt_arena_alloc(q->qa, nc * sizeof *no);
          if (!no) {
            pql_ev_fail(q, "internal", "out of memory");
          }
          if (nos) {
            memcpy(no, os, nos * sizeof *no);
          }
          os = no;
          capos = nc;
        }
        o = &os[nos];
        memset(o, 0, sizeof *o);
        o->hash = s->m->hash;
        /* the label set must outlive the step arena */
        pql_ls *cm = rt_arena_alloc(q->qa, sizeof *cm + s->m->n * sizeof(rt_label));
        if (!cm) {
          pql_ev_fail(q, "internal", "out of memory");
        }
        cm->n = s->m->n;
        cm->hash = s->m->hash;
        for (uint32_t k = 0; k < s->m->n; k++) {
          cm->l[k].name = rt_arena_strndup(q->qa, s->m->l[k].name, strlen(s->m->l[k].name));
          cm->l[k].value = rt_arena_strndup(q->qa, s->m->l[k].value, strlen(s->m->l[k].value));
        }
        o->m = cm;
        oskeys[x] = s->m->hash;
        osvals[x] = (int32_t)nos++;
      } else {
        o = &os[osvals[x]];
      }
      if (known) {
        *known = osvals[x];
      }
    merge:
      if (o->n > 0 && o->p[o->n - 1].t == ts) {
        pql_ev_fail(q, "execution", "vector cannot contain metrics with the same labelset");
      }
      if (o->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 16;
        pql_point *np = rt_arena_alloc(q->qa, nc * sizeof *np);
        if (!np) {
          pql_ev_fail(q, "internal", "out of memory");
        }
        if (o->n) {
          memcpy(np, o->p, o->n * sizeof *np);
        }
        o->p = np;
        o->cap = nc;
      }
      o->p[o->n++] = (pql_point){ts, s->v, s->h ? pql_hist_dup_arena(q->qa, s->h) : NULL};
    }
    rt_arena_reset(q->sa);
  }
  res->series = rt_arena_alloc(ri->ra, (nos + 1) * sizeof *res->series);
  for (size_t i = 0; i < nos; i++) {
    pql_series *s = &res->series[res->nseries++];
    s->labels = copy_labels(ri->ra, os[i].m, false);
    s->nlabels = os[i].m->n;
    s->points = rt_arena_alloc(ri->ra, (os[i].n + 1) * sizeof *s->points);
    memcpy(s->points, os[i].p, os[i].n * sizeof *s->points);
    s->npoints = os[i].n;
    for (size_t k = 0; k < s->npoints; k++) {
      if (s->points[k].h) {
        s->points[k].h = pql_hist_dup_arena(ri->ra, s->points[k].h);
      }
    }
  }
  PQL_QSORT(res->series, res->nseries, sizeof *res->series, series_cmp);
done:
  res->samples_total = q->samples_total;
  if (q->cur_samples > q->peak_samples) {
    q->peak_samples = q->cur_samples;
  }
  res->samples_peak = q->peak_samples;
  if (q->t_eval0) {
    res->eval_ns = rt_mono_ns() - q->t_eval0;
  }
  finish_annots(q, ri);
  if (q->qa) {
    rt_arena_destroy(q->qa);
  }
  if (q->sa_step) {
    q->sa = q->sa_step; /* an error while a column was filled */
  }
  if (q->sa) {
    rt_arena_destroy(q->sa);
  }
  if (q->ca) {
    rt_arena_destroy(q->ca);
  }
  rt_free(q->slots, 0);
  rt_free(q->sqc, 0);
  rt_free(q, sizeof *q);
  *out = res;
  return RT_OK;
}

static rt_err query_common(const pql_storage *st, const pql_opts *opts, const char *query, int64_t start,
                           int64_t end, int64_t step, bool range, pql_result **out) {
  pql_expr *e;
  char eb[1024];
  rt_err err = pql_parse(query, &e, eb, sizeof eb);
  if (err == RT_ENOMEM) {
    return err;
  }
  if (err != RT_OK) {
    pql_result_int *ri = rt_calloc(1, sizeof *ri);
    if (!ri) {
      return RT_ENOMEM;
    }
    ri->ra = rt_arena_create(4096);
    if (!ri->ra) {
      rt_free(ri, sizeof *ri);
      return RT_ENOMEM;
    }
    ri->r.error_type = "bad_data";
    ri->r.error = rt_arena_strndup(ri->ra, eb, strlen(eb));
    *out = &ri->r;
    return RT_OK;
  }
  err = pql_eval(st, opts, e, start, end, step, range, out);
  pql_expr_free(e);
  return err;
}

rt_err pql_query_instant(const pql_storage *st, const pql_opts *opts, const char *query, int64_t t,
                         pql_result **out) {
  return query_common(st, opts, query, t, t, 0, false, out);
}

rt_err pql_query_range(const pql_storage *st, const pql_opts *opts, const char *query, int64_t start, int64_t end,
                       int64_t step, pql_result **out) {
  return query_common(st, opts, query, start, end, step, true, out);
}

void pql_result_free(pql_result *r) {
  if (!r) {
    return;
  }
  pql_result_int *ri = (pql_result_int *)r;
  rt_arena_destroy(ri->ra);
  rt_free(ri, sizeof *ri);
}
