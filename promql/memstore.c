/* memstore.c - a small in-memory series store behind the pql_storage interface. */
#include "promql/eval_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct mseries {
  rt_label *labels; /* owned strings */
  size_t n;
  uint64_t hash;
  int64_t *ts;
  double *vs;
  pql_hist **hs; /* NULL until the series gets a histogram sample */
  size_t len, cap;
} mseries;

struct pql_memstore {
  mseries *s;
  size_t n, cap;
  /* open-addressing index: label hash -> series index + 1 (0 = empty) */
  uint64_t *hk;
  uint32_t *hv;
  size_t hcap;
};

static void idx_put(pql_memstore *m, uint64_t h, uint32_t v) {
  size_t mask = m->hcap - 1;
  size_t i = (size_t)(h * 0x9E3779B97F4A7C15ULL) & mask;
  while (m->hv[i]) {
    i = (i + 1) & mask;
  }
  m->hk[i] = h;
  m->hv[i] = v;
}

static rt_err idx_grow(pql_memstore *m) {
  size_t nc = m->hcap ? m->hcap * 2 : 64;
  uint64_t *ok = m->hk;
  uint32_t *ov = m->hv;
  size_t oc = m->hcap;
  m->hk = rt_calloc(nc, sizeof *m->hk);
  m->hv = rt_calloc(nc, sizeof *m->hv);
  if (!m->hk || !m->hv) {
    rt_free(m->hk, 0);
    rt_free(m->hv, 0);
    m->hk = ok;
    m->hv = ov;
    return RT_ENOMEM;
  }
  m->hcap = nc;
  for (size_t i = 0; i < oc; i++) {
    if (ov[i]) {
      idx_put(m, ok[i], ov[i]);
    }
  }
  rt_free(ok, 0);
  rt_free(ov, 0);
  return RT_OK;
}

pql_memstore *pql_memstore_create(void) { return rt_calloc(1, sizeof(pql_memstore)); }

void pql_memstore_destroy(pql_memstore *m) {
  if (!m) {
    return;
  }
  for (size_t i = 0; i < m->n; i++) {
    mseries *s = &m->s[i];
    for (size_t k = 0; k < s->n; k++) {
      rt_free((void *)s->labels[k].name, 0);
      rt_free((void *)s->labels[k].value, 0);
    }
    rt_free(s->labels, 0);
    rt_free(s->ts, 0);
    rt_free(s->vs, 0);
    if (s->hs) {
      for (size_t k = 0; k < s->len; k++) {
        rt_free(s->hs[k], 0);
      }
      rt_free(s->hs, 0);
    }
  }
  rt_free(m->s, 0);
  rt_free(m->hk, 0);
  rt_free(m->hv, 0);
  rt_free(m, sizeof *m);
}

static int lcmp(const void *a, const void *b) {
  return strcmp(((const rt_label *)a)->name, ((const rt_label *)b)->name);
}

static rt_err mem_add(pql_memstore *m, const rt_label *labels, size_t n, int64_t t, double v, const pql_hist *h);

rt_err pql_memstore_add(pql_memstore *m, const rt_label *labels, size_t n, int64_t t, double v) {
  return mem_add(m, labels, n, t, v, NULL);
}

rt_err pql_memstore_add_hist(pql_memstore *m, const rt_label *labels, size_t n, int64_t t, const pql_hist *h) {
  return mem_add(m, labels, n, t, 0, h);
}

static rt_err mem_add(pql_memstore *m, const rt_label *labels, size_t n, int64_t t, double v, const pql_hist *hv) {
  const pql_hist *h = hv;
  rt_label tmp[128];
  if (n > 128) {
    return RT_EINVAL;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (labels[i].value[0]) {
      tmp[k++] = labels[i];
    }
  }
  n = k;
  qsort(tmp, n, sizeof *tmp, lcmp);
  uint64_t lh = pql_ls_hash(tmp, n);
  mseries *s = NULL;
  if (m->hcap) {
    size_t mask = m->hcap - 1;
    for (size_t i = (size_t)(lh * 0x9E3779B97F4A7C15ULL) & mask; m->hv[i]; i = (i + 1) & mask) {
      mseries *c = &m->s[m->hv[i] - 1];
      if (m->hk[i] == lh && rt_labels_cmp(c->labels, c->n, tmp, n) == 0) {
        s = c;
        break;
      }
    }
  }
  if (!s) {
    if ((m->n + 1) * 2 > m->hcap && idx_grow(m) != RT_OK) {
      return RT_ENOMEM;
    }
    if (m->n == m->cap) {
      size_t nc = m->cap ? m->cap * 2 : 16;
      mseries *ns = rt_realloc(m->s, m->cap * sizeof *ns, nc * sizeof *ns);
      if (!ns) {
        return RT_ENOMEM;
      }
      m->s = ns;
      m->cap = nc;
    }
    s = &m->s[m->n];
    memset(s, 0, sizeof *s);
    s->labels = rt_calloc(n + 1, sizeof *s->labels);
    if (!s->labels) {
      return RT_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
      s->labels[i].name = rt_strdup(tmp[i].name);
      s->labels[i].value = rt_strdup(tmp[i].value);
    }
    s->n = n;
    s->hash = lh;
    m->n++;
    idx_put(m, lh, (uint32_t)m->n);
  }
  /* find the insert position (appends are the common case) */
  size_t pos = s->len;
  if (s->len && s->ts[s->len - 1] >= t) {
    size_t lo = 0, hi = s->len;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (s->ts[mid] < t) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    pos = lo;
    if (pos < s->len && s->ts[pos] == t) {
      s->vs[pos] = v;
      if (s->hs) {
        rt_free(s->hs[pos], 0);
        s->hs[pos] = NULL;
      }
      if (h) {
        if (!s->hs && !(s->hs = rt_calloc(s->cap, sizeof *s->hs))) {
          return RT_ENOMEM;
        }
        if (!(s->hs[pos] = pql_hist_dup_heap(h))) {
          return RT_ENOMEM;
        }
      }
      return RT_OK;
    }
  }
  if (h && !s->hs && s->cap) {
    if (!(s->hs = rt_calloc(s->cap, sizeof *s->hs))) {
      return RT_ENOMEM;
    }
  }
  if (s->len == s->cap) {
    size_t nc = s->cap ? s->cap * 2 : 16;
    int64_t *nt = rt_realloc(s->ts, s->cap * sizeof *nt, nc * sizeof *nt);
    if (!nt) {
      return RT_ENOMEM;
    }
    s->ts = nt;
    double *nv = rt_realloc(s->vs, s->cap * sizeof *nv, nc * sizeof *nv);
    if (!nv) {
      return RT_ENOMEM;
    }
    s->vs = nv;
    if (s->hs || h) {
      pql_hist **nh = rt_realloc(s->hs, s->hs ? s->cap * sizeof *nh : 0, nc * sizeof *nh);
      if (!nh) {
        return RT_ENOMEM;
      }
      memset(nh + (s->hs ? s->cap : 0), 0, (nc - (s->hs ? s->cap : 0)) * sizeof *nh);
      s->hs = nh;
    }
    s->cap = nc;
  }
  memmove(s->ts + pos + 1, s->ts + pos, (s->len - pos) * sizeof *s->ts);
  memmove(s->vs + pos + 1, s->vs + pos, (s->len - pos) * sizeof *s->vs);
  s->ts[pos] = t;
  s->vs[pos] = v;
  if (s->hs) {
    memmove(s->hs + pos + 1, s->hs + pos, (s->len - pos) * sizeof *s->hs);
    s->hs[pos] = NULL;
    if (h && !(s->hs[pos] = pql_hist_dup_heap(h))) {
      return RT_ENOMEM;
    }
  }
  s->len++;
  return RT_OK;
}

static rt_err mem_select(void *ctx, const rt_matcher *ms, size_t nm, int64_t mint, int64_t maxt, pql_sink *sink) {
  pql_memstore *m = ctx;
  for (size_t i = 0; i < m->n; i++) {
    mseries *s = &m->s[i];
    bool ok = true;
    for (size_t k = 0; k < nm && ok; k++) {
      const char *v = rt_labels_get(s->labels, s->n, ms[k].name);
      ok = rt_matcher_matches(&ms[k], v ? v : "");
    }
    if (!ok) {
      continue;
    }
    size_t lo = 0, hi = s->len;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (s->ts[mid] < mint) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    size_t a = lo;
    hi = s->len;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (s->ts[mid] <= maxt) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    hi = lo;
    lo = a;
    if (hi > lo && s->hs) {
      pql_point *pts = rt_alloc((hi - lo) * sizeof *pts);
      if (!pts) {
        return RT_ENOMEM;
      }
      for (size_t k = lo; k < hi; k++) {
        pts[k - lo] = (pql_point){s->ts[k], s->vs[k], s->hs[k]};
      }
      rt_err err = pql_sink_add_points(sink, s->labels, s->n, pts, hi - lo);
      rt_free(pts, 0);
      if (err != RT_OK) {
        return err;
      }
    } else if (hi > lo) {
      rt_err err = pql_sink_add(sink, s->labels, s->n, s->ts + lo, s->vs + lo, hi - lo);
      if (err != RT_OK) {
        return err;
      }
    }
  }
  return RT_OK;
}

pql_storage pql_memstore_storage(pql_memstore *m) { return (pql_storage){m, mem_select}; }
