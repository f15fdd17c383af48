/* promqltest_prog.c - runs the upstream PromQL test files against Ringtail's engine.
 *
 * usage: promqltest_prog [--verbose] [--require-core | --require-all] [--only FILE[,FILE..]] [--port PORT [--write-port PORT]] [DIR]
 * With --port, the end-to-end mode: every load block is remote-written to the ringtail listening
 * on 127.0.0.1:PORT (started with -validation.reject-old-samples=false), one tenant per file and
 * `clear`, and every eval runs through its HTTP API.
 * DIR defaults to the shared promqltest directory next to the repository. Prints per file how
 * many evals passed, failed and were skipped (with the reason of each skip) and a summary.
 * In the in-process mode every range query also runs step by step (pql_opts.step_by_step) and
 * must give a bit-identical result (tests/lib/pql_same.h): the column evaluation of range queries
 * is held to the per-step one over the whole corpus.
 * Exit status: 2 on usage or I/O errors; 1 with --require-core when an eval of a core file
 * failed, with --require-all (Ringtail's own files, tests/promql/testdata) when any eval failed,
 * and whenever the two evaluations of a range query differed; 0 otherwise.
 */
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "promql/pql_int.h"
#include "promql/promql.h"
#include "tests/lib/pql_same.h"

#ifndef RT_SOURCE_DIR
#define RT_SOURCE_DIR "."
#endif

static const char *core_files[] = {"aggregators", "at_modifier", "collision", "functions", "histograms",
                                   "literals", "name_label_dropping", "operators", "range_queries", "selectors",
                                   "staleness", "subquery", "trig_functions"};

static bool verbose;

/* ---------------- small parsing helpers ---------------- */

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) {
    s++;
  }
  char *e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1])) {
    *--e = 0;
  }
  return s;
}

static bool parse_dur(const char *s, size_t n, int64_t *ms) {
  if (n == 1 && s[0] == '0') {
    *ms = 0;
    return true;
  }
  return pql_parse_duration(s, n, ms) == RT_OK;
}

/* Go's ParseInt(s, 0, 64) then ParseFloat: the whole string must be a number. */
static bool parse_go_number(const char *s, double *v) {
  if (!*s) {
    return false;
  }
  char *end;
  const char *p = s;
  if (*p == '+' || *p == '-') {
    p++;
  }
  if (strcasecmp(p, "inf") == 0 || strcasecmp(p, "infinity") == 0) {
    *v = s[0] == '-' ? -INFINITY : INFINITY;
    return true;
  }
  if (strcasecmp(p, "nan") == 0) {
    *v = NAN;
    return true;
  }
  if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
    long long x = strtoll(s, &end, 16);
    if (*end) {
      return false;
    }
    *v = (double)x;
    return true;
  }
  for (const char *c = p; *c; c++) {
    if (!(isdigit((unsigned char)*c) || *c == '.' || *c == 'e' || *c == 'E' || *c == '+' || *c == '-' || *c == '_')) {
      return false;
    }
  }
  *v = strtod(s, &end);
  return *end == 0 && end != s;
}

/* Decodes a quoted string at *pp (", ' or `); advances *pp. Returns a malloc'ed string. */
static char *parse_qstr(const char **pp) {
  const char *p = *pp;
  char qc = *p++;
  rt_buf b = RT_BUF_INIT;
  while (*p && *p != qc) {
    if (*p == '\\' && qc != '`') {
      p++;
      char c = *p++;
      switch (c) {
      case 'n': rt_buf_putc(&b, '\n'); break;
      case 't': rt_buf_putc(&b, '\t'); break;
      case 'r': rt_buf_putc(&b, '\r'); break;
      case 'a': rt_buf_putc(&b, '\a'); break;
      case 'b': rt_buf_putc(&b, '\b'); break;
      case 'f': rt_buf_putc(&b, '\f'); break;
      case 'v': rt_buf_putc(&b, '\v'); break;
      case 'x': {
        char h[3] = {p[0], p[1], 0};
        rt_buf_putc(&b, (char)strtol(h, NULL, 16));
        p += 2;
        break;
      }
      case 'u':
      case 'U': {
        int nd = c == 'u' ? 4 : 8;
        char h[9] = {0};
        memcpy(h, p, (size_t)nd);
        unsigned long cp = strtoul(h, NULL, 16);
        p += nd;
        char o[4];
        size_t n = 0;
        if (cp < 0x80) {
          o[n++] = (char)cp;
        } else if (cp < 0x800) {
          o[n++] = (char)(0xc0 | (cp >> 6));
          o[n++] = (char)(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
          o[n++] = (char)(0xe0 | (cp >> 12));
          o[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
          o[n++] = (char)(0x80 | (cp & 0x3f));
        } else {
          o[n++] = (char)(0xf0 | (cp >> 18));
          o[n++] = (char)(0x80 | ((cp >> 12) & 0x3f));
          o[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
          o[n++] = (char)(0x80 | (cp & 0x3f));
        }
        rt_buf_append(&b, o, n);
        break;
      }
      default:
        if (c >= '0' && c <= '7') {
          int v = (c - '0') * 64 + (p[0] - '0') * 8 + (p[1] - '0');
          p += 2;
          rt_buf_putc(&b, (char)v);
        } else {
          rt_buf_putc(&b, c);
        }
      }
      continue;
    }
    rt_buf_putc(&b, *p++);
  }
  if (*p == qc) {
    p++;
  }
  *pp = p;
  size_t len;
  char *s = rt_buf_steal(&b, &len);
  if (!s) {
    s = rt_strdup("");
  }
  return s;
}

typedef struct lset {
  rt_label l[64];
  size_t n;
} lset;

static void lset_free(lset *ls) {
  for (size_t i = 0; i < ls->n; i++) {
    rt_free((void *)ls->l[i].name, 0);
    rt_free((void *)ls->l[i].value, 0);
  }
  ls->n = 0;
}

static int lcmp(const void *a, const void *b) {
  return strcmp(((const rt_label *)a)->name, ((const rt_label *)b)->name);
}

static void lset_add(lset *ls, char *name, char *value) {
  for (size_t i = 0; i < ls->n; i++) {
    if (strcmp(ls->l[i].name, name) == 0) {
      rt_free((void *)ls->l[i].value, 0);
      rt_free(name, 0);
      ls->l[i].value = value;
      return;
    }
  }
  if (ls->n < 64) {
    ls->l[ls->n].name = name;
    ls->l[ls->n].value = value;
    ls->n++;
  }
}

/* Parses `name{a="b",...}` / `{...}` / `name`; returns pointer after it or NULL. */
static const char *parse_metric(const char *p, lset *ls) {
  ls->n = 0;
  while (isspace((unsigned char)*p)) {
    p++;
  }
  const char *s = p;
  while (isalnum((unsigned char)*p) || *p == '_' || *p == ':') {
    p++;
  }
  if (p > s) {
    lset_add(ls, rt_strdup("__name__"), rt_strndup(s, (size_t)(p - s)));
  }
  if (*p == '{') {
    p++;
    for (;;) {
      while (isspace((unsigned char)*p) || *p == ',') {
        p++;
      }
      if (*p == '}') {
        p++;
        break;
      }
      if (!*p) {
        return NULL;
      }
      char *name;
      if (*p == '"' || *p == '\'' || *p == '`') {
        name = parse_qstr(&p);
        while (isspace((unsigned char)*p)) {
          p++;
        }
        if (*p != '=') {
          lset_add(ls, rt_strdup("__name__"), name);
          continue;
        }
      } else {
        const char *ns = p;
        while (isalnum((unsigned char)*p) || *p == '_') {
          p++;
        }
        if (p == ns) {
          return NULL;
        }
        name = rt_strndup(ns, (size_t)(p - ns));
        while (isspace((unsigned char)*p)) {
          p++;
        }
      }
      if (*p != '=') {
        rt_free(name, 0);
        return NULL;
      }
      p++;
      while (isspace((unsigned char)*p)) {
        p++;
      }
      if (*p != '"' && *p != '\'' && *p != '`') {
        rt_free(name, 0);
        return NULL;
      }
      char *val = parse_qstr(&p);
      lset_add(ls, name, val);
    }
  }
  qsort(ls->l, ls->n, sizeof ls->l[0], lcmp);
  return p;
}

/* One expanded value: present flag and value. */
typedef struct sval {
  bool present;
  double v;
  pql_hist *h; /* native histogram value (owned) */
} sval;

typedef struct svals {
  sval *v;
  size_t n, cap;
  bool hist;
} svals;

static void sv_push(svals *s, bool present, double v) {
  if (s->n == s->cap) {
    size_t nc = s->cap ? s->cap * 2 : 64;
    s->v = rt_realloc(s->v, s->cap * sizeof *s->v, nc * sizeof *s->v);
    s->cap = nc;
  }
  s->v[s->n++] = (sval){present, v, NULL};
}

static void free_hist(pql_hist *h);

static void sv_free(svals *s) {
  for (size_t i = 0; i < s->n; i++) {
    free_hist(s->v[i].h);
  }
  rt_free(s->v, 0);
  s->v = NULL;
  s->n = s->cap = 0;
}

static bool parse_num_prefix(const char **pp, double *v) {
  const char *p = *pp;
  const char *s = p;
  if (*p == '+' || *p == '-') {
    p++;
  }
  if (strncasecmp(p, "inf", 3) == 0) {
    *v = s[0] == '-' ? -INFINITY : INFINITY;
    *pp = p + 3;
    return true;
  }
  if (strncasecmp(p, "nan", 3) == 0) {
    *v = NAN;
    *pp = p + 3;
    return true;
  }
  /* decimal only: strtod would read "0x10" as hex */
  const char *q = p;
  while (isdigit((unsigned char)*q)) {
    q++;
  }
  if (*q == '.') {
    q++;
    while (isdigit((unsigned char)*q)) {
      q++;
    }
  }
  if (q == p) {
    return false;
  }
  if ((*q == 'e' || *q == 'E') && (isdigit((unsigned char)q[1]) || ((q[1] == '+' || q[1] == '-') && isdigit((unsigned char)q[2])))) {
    q += 2;
    while (isdigit((unsigned char)*q)) {
      q++;
    }
  }
  char buf[128];
  snprintf(buf, sizeof buf, "%.*s", (int)(q - s), s);
  *v = strtod(buf, NULL);
  *pp = q;
  return true;
}


/* ---------------- native histograms ---------------- */

static void free_hist(pql_hist *h) {
  if (!h) {
    return;
  }
  free(h->pi);
  free(h->ni);
  free(h->pb);
  free(h->nb);
  free(h->cv);
  free(h);
}

static pql_hist *hist_clone(const pql_hist *h) {
  pql_hist *r = calloc(1, sizeof *r);
  *r = *h;
  r->pi = calloc(h->np + 1, sizeof(int32_t));
  r->pb = calloc(h->np + 1, sizeof(double));
  r->ni = calloc(h->nn + 1, sizeof(int32_t));
  r->nb = calloc(h->nn + 1, sizeof(double));
  r->cv = calloc(h->ncv + 1, sizeof(double));
  if (h->np) {
    memcpy(r->pi, h->pi, h->np * sizeof(int32_t));
    memcpy(r->pb, h->pb, h->np * sizeof(double));
  }
  if (h->nn) {
    memcpy(r->ni, h->ni, h->nn * sizeof(int32_t));
    memcpy(r->nb, h->nb, h->nn * sizeof(double));
  }
  if (h->ncv) {
    memcpy(r->cv, h->cv, h->ncv * sizeof(double));
  }
  return r;
}

static bool parse_num_prefix(const char **pp, double *v);

static bool parse_flist(const char **pp, double **out, uint32_t *n) {
  const char *p = *pp;
  if (*p != '[') {
    return false;
  }
  p++;
  size_t cap = 8;
  *out = calloc(cap, sizeof(double));
  *n = 0;
  for (;;) {
    while (isspace((unsigned char)*p) || *p == ',') {
      p++;
    }
    if (*p == ']') {
      p++;
      break;
    }
    double v;
    if (!parse_num_prefix(&p, &v)) {
      return false;
    }
    if (*n == cap) {
      cap *= 2;
      *out = realloc(*out, cap * sizeof(double));
    }
    (*out)[(*n)++] = v;
  }
  *pp = p;
  return true;
}

/* Parses one "{{...}}" at *pp. */
static pql_hist *parse_hist(const char **pp) {
  const char *p = *pp + 2;
  pql_hist *h = calloc(1, sizeof *h);
  double *pb = NULL, *nb = NULL;
  uint32_t np = 0, nn = 0;
  long off = 0, noff = 0;
  bool ok = true;
  while (ok) {
    while (isspace((unsigned char)*p)) {
      p++;
    }
    if (p[0] == '}' && p[1] == '}') {
      p += 2;
      break;
    }
    const char *k = p;
    while (*p && *p != ':') {
      p++;
    }
    if (*p != ':') {
      ok = false;
      break;
    }
    size_t kl = (size_t)(p - k);
    p++;
    double v = 0;
#define KEY(s) (kl == strlen(s) && strncmp(k, s, kl) == 0)
    if (KEY("buckets")) {
      ok = parse_flist(&p, &pb, &np);
    } else if (KEY("n_buckets")) {
      ok = parse_flist(&p, &nb, &nn);
    } else if (KEY("custom_values")) {
      ok = parse_flist(&p, &h->cv, &h->ncv);
    } else if (KEY("counter_reset_hint")) {
      const char *w = p;
      while (isalpha((unsigned char)*p) || *p == '_') {
        p++;
      }
      size_t wl = (size_t)(p - w);
      h->hint = wl == 5 && strncmp(w, "reset", 5) == 0       ? PQL_HINT_RESET
                : wl == 9 && strncmp(w, "not_reset", 9) == 0 ? PQL_HINT_NOT_RESET
                : wl == 5 && strncmp(w, "gauge", 5) == 0     ? PQL_HINT_GAUGE
                                                              : PQL_HINT_UNKNOWN;
    } else if (parse_num_prefix(&p, &v)) {
      if (KEY("schema")) {
        h->schema = (int32_t)v;
      } else if (KEY("sum")) {
        h->sum = v;
      } else if (KEY("count")) {
        h->count = v;
      } else if (KEY("z_bucket")) {
        h->zc = v;
      } else if (KEY("z_bucket_w")) {
        h->zt = v;
      } else if (KEY("offset")) {
        off = (long)v;
      } else if (KEY("n_offset")) {
        noff = (long)v;
      } else {
        ok = false;
      }
    } else {
      ok = false;
    }
#undef KEY
  }
  h->pb = pb ? pb : calloc(1, sizeof(double));
  h->nb = nb ? nb : calloc(1, sizeof(double));
  h->np = np;
  h->nn = nn;
  h->pi = calloc(np + 1, sizeof(int32_t));
  h->ni = calloc(nn + 1, sizeof(int32_t));
  for (uint32_t i = 0; i < np; i++) {
    h->pi[i] = (int32_t)(off + i);
  }
  for (uint32_t i = 0; i < nn; i++) {
    h->ni[i] = (int32_t)(noff + i);
  }
  if (!h->cv) {
    h->cv = calloc(1, sizeof(double));
  }
  if (!ok) {
    free_hist(h);
    return NULL;
  }
  *pp = p;
  return h;
}

/* a + sign*b bucket by bucket (same schema assumed, as in the test files). */
static pql_hist *hist_step(const pql_hist *a, const pql_hist *b, double sign) {
  pql_hist *r = hist_clone(a);
  r->count += sign * b->count;
  r->sum += sign * b->sum;
  r->zc += sign * b->zc;
  for (int neg = 0; neg < 2; neg++) {
    uint32_t *rn = neg ? &r->nn : &r->np;
    int32_t **ri = neg ? &r->ni : &r->pi;
    double **rb = neg ? &r->nb : &r->pb;
    uint32_t bn = neg ? b->nn : b->np;
    const int32_t *bi = neg ? b->ni : b->pi;
    const double *bb = neg ? b->nb : b->pb;
    int delta = b->schema > a->schema && a->schema != PQL_SCHEMA_CUSTOM ? b->schema - a->schema : 0;
    for (uint32_t k = 0; k < bn; k++) {
      int32_t idx = delta ? ((bi[k] - 1) >> delta) + 1 : bi[k];
      uint32_t j = 0;
      while (j < *rn && (*ri)[j] < idx) {
        j++;
      }
      if (j < *rn && (*ri)[j] == idx) {
        (*rb)[j] += sign * bb[k];
        continue;
      }
      *ri = realloc(*ri, (*rn + 2) * sizeof(int32_t));
      *rb = realloc(*rb, (*rn + 2) * sizeof(double));
      memmove(*ri + j + 1, *ri + j, (*rn - j) * sizeof(int32_t));
      memmove(*rb + j + 1, *rb + j, (*rn - j) * sizeof(double));
      (*ri)[j] = idx;
      (*rb)[j] = sign * bb[k];
      (*rn)++;
    }
  }
  return r;
}

static void sv_push_h(svals *s, pql_hist *h) {
  sv_push(s, true, 0);
  s->v[s->n - 1].h = h;
}

static void print_hist(const pql_hist *h, rt_buf *b) {
  char f[RT_FLOAT_MAX];
  rt_buf_printf(b, "{{schema:%d count:%s", h->schema, rt_float_str(f, h->count, 'f'));
  rt_buf_printf(b, " sum:%s", rt_float_str(f, h->sum, 'f'));
  if (h->zc != 0 || h->zt != 0) {
    rt_buf_printf(b, " z_bucket:%s", rt_float_str(f, h->zc, 'f'));
    rt_buf_printf(b, " z_bucket_w:%s", rt_float_str(f, h->zt, 'f'));
  }
  for (int neg = 0; neg < 2; neg++) {
    uint32_t n = neg ? h->nn : h->np;
    if (!n) {
      continue;
    }
    rt_buf_printf(b, " %s[", neg ? "n_buckets:" : "buckets:");
    for (uint32_t i = 0; i < n; i++) {
      rt_buf_printf(b, "%s%d:%s", i ? " " : "", neg ? h->ni[i] : h->pi[i],
                    rt_float_str(f, neg ? h->nb[i] : h->pb[i], 'f'));
    }
    rt_buf_puts(b, "]");
  }
  if (h->ncv) {
    rt_buf_puts(b, " custom_values:[");
    for (uint32_t i = 0; i < h->ncv; i++) {
      rt_buf_printf(b, "%s%s", i ? " " : "", rt_float_str(f, h->cv[i], 'f'));
    }
    rt_buf_puts(b, "]");
  }
  if (h->hint) {
    static const char *hn[] = {"unknown", "reset", "not_reset", "gauge"};
    rt_buf_printf(b, " counter_reset_hint:%s", hn[h->hint & 3]);
  }
  rt_buf_puts(b, "}}");
}

static bool almost_equal(double a, double b);

/* Compares buckets ignoring empty ones. */
static bool buckets_equal(const int32_t *ai, const double *ab, uint32_t an, const int32_t *bi, const double *bb,
                          uint32_t bn) {
  uint32_t i = 0, k = 0;
  for (;;) {
    while (i < an && ab[i] == 0) {
      i++;
    }
    while (k < bn && bb[k] == 0) {
      k++;
    }
    if (i == an || k == bn) {
      return i == an && k == bn;
    }
    if (ai[i] != bi[k] || !almost_equal(ab[i], bb[k])) {
      return false;
    }
    i++;
    k++;
  }
}

static bool hist_equal(const pql_hist *exp, const pql_hist *got) {
  if (exp->schema != got->schema || !almost_equal(exp->count, got->count) || !almost_equal(exp->sum, got->sum) ||
      !almost_equal(exp->zc, got->zc) || !almost_equal(exp->zt, got->zt)) {
    return false;
  }
  if ((exp->hint == PQL_HINT_GAUGE) != (got->hint == PQL_HINT_GAUGE) && exp->hint != PQL_HINT_UNKNOWN) {
    return false;
  }
  if (exp->ncv != got->ncv) {
    return false;
  }
  for (uint32_t i = 0; i < exp->ncv; i++) {
    if (!almost_equal(exp->cv[i], got->cv[i])) {
      return false;
    }
  }
  return buckets_equal(exp->pi, exp->pb, exp->np, got->pi, got->pb, got->np) &&
         buckets_equal(exp->ni, exp->nb, exp->nn, got->ni, got->nb, got->nn);
}

/* Value of an expectation vs a result point. */
static bool point_equal(const sval *e, const pql_point *p) {
  if (e->h || p->h) {
    return e->h && p->h && hist_equal(e->h, p->h);
  }
  return almost_equal(p->v, e->v);
}

/* Expands a values part ("1 2 3x4 _ stale ..."). Returns false on a syntax error. */
static bool parse_values(const char *p, svals *out) {
  for (;;) {
    while (isspace((unsigned char)*p)) {
      p++;
    }
    if (!*p) {
      return true;
    }
    if (p[0] == '{' && p[1] == '{') {
      out->hist = true;
      pql_hist *h = parse_hist(&p);
      if (!h) {
        return false;
      }
      if (*p == 'x') {
        long k = strtol(p + 1, (char **)&p, 10);
        for (long i = 0; i <= k; i++) {
          sv_push_h(out, i == k ? h : hist_clone(h));
        }
        continue;
      }
      if ((*p == '+' || *p == '-') && p[1] == '{') {
        double sign = *p == '-' ? -1 : 1;
        p++;
        pql_hist *d = parse_hist(&p);
        if (!d || *p != 'x') {
          free_hist(h);
          free_hist(d);
          return false;
        }
        long k = strtol(p + 1, (char **)&p, 10);
        pql_hist *cur = h;
        for (long i = 0; i <= k; i++) {
          sv_push_h(out, cur);
          if (i < k) {
            cur = hist_step(cur, d, sign);
          }
        }
        free_hist(d);
        continue;
      }
      sv_push_h(out, h);
      continue;
    }
    if (*p == '_') {
      p++;
      long k = 1;
      if (*p == 'x') {
        k = strtol(p + 1, (char **)&p, 10);
      }
      for (long i = 0; i < k; i++) {
        sv_push(out, false, 0);
      }
      continue;
    }
    if (strncmp(p, "stale", 5) == 0) {
      p += 5;
      sv_push(out, true, rt_stale_nan());
      continue;
    }
    double n;
    if (!parse_num_prefix(&p, &n)) {
      return false;
    }
    if (*p == 'x') {
      long k = strtol(p + 1, (char **)&p, 10);
      for (long i = 0; i <= k; i++) {
        sv_push(out, true, n);
      }
      continue;
    }
    if ((*p == '+' || *p == '-') && p[1] != 0 && !isspace((unsigned char)p[1])) {
      double d;
      bool neg = *p == '-';
      p++;
      if (!parse_num_prefix(&p, &d)) {
        return false;
      }
      if (neg) {
        d = -d;
      }
      if (*p != 'x') {
        return false;
      }
      long k = strtol(p + 1, (char **)&p, 10);
      double cur = n;
      for (long i = 0; i <= k; i++) {
        sv_push(out, true, cur);
        cur += d;
      }
      continue;
    }
    if (*p && !isspace((unsigned char)*p)) {
      return false;
    }
    sv_push(out, true, n);
  }
}

/* ---------------- float comparison ---------------- */

static bool almost_equal(double a, double b) {
  const double eps = 1e-6, min_normal = 2.2250738585072014e-308;
  if (rt_is_stale_nan(a) || rt_is_stale_nan(b)) {
    return rt_is_stale_nan(a) && rt_is_stale_nan(b);
  }
  if (isnan(a) && isnan(b)) {
    return true;
  }
  if (a == b) {
    return true;
  }
  double diff = fabs(a - b);
  if (a == 0 || b == 0 || fabs(a) + fabs(b) < min_normal) {
    return diff < eps * min_normal;
  }
  return diff / (fabs(a) + fabs(b)) < eps;
}

/* ---------------- test model ---------------- */

typedef struct expect_series {
  lset ls;
  svals vals;
} expect_series;

/* The `expect warn|info msg:|regex:` lines of one kind. As Prometheus' promqltest, every one must
 * match an annotation and, when there are any, every annotation must match one of them. */
#define MAX_ANNEXP 8
typedef struct annexp {
  char *text[MAX_ANNEXP];
  bool re[MAX_ANNEXP];
  int n;
} annexp;

typedef struct evalcmd {
  int line;
  char *expr;
  bool range;
  int64_t t, start, end, step;
  bool fail, ordered;
  char *fail_msg, *fail_re;
  int warn, info;        /* -1 = expect none, 1 = expect some, 0 = unchecked */
  annexp warns, infos;    /* expected texts (msg: or regex:) of warnings and infos */
  bool scalar;
  double scalar_v;
  bool is_string;
  char *string_v;
  bool matrix_expect;     /* expect range vector */
  int64_t mstart, mend, mstep;
  expect_series *es;
  size_t nes;
  bool hist;              /* touches native histograms */
  bool bad;               /* could not parse the eval block */
} evalcmd;

typedef struct filestat {
  int passed, failed, skipped;
} filestat;

static void free_eval(evalcmd *c) {
  free(c->expr);
  free(c->fail_msg);
  free(c->fail_re);
  for (int i = 0; i < c->warns.n; i++) {
    free(c->warns.text[i]);
  }
  for (int i = 0; i < c->infos.n; i++) {
    free(c->infos.text[i]);
  }
  free(c->string_v);
  for (size_t i = 0; i < c->nes; i++) {
    lset_free(&c->es[i].ls);
    sv_free(&c->es[i].vals);
  }
  free(c->es);
}

static bool labels_equal(const rt_label *a, size_t an, const lset *b) {
  return rt_labels_cmp(a, an, b->l, b->n) == 0;
}

static void put_labels(rt_buf *b, const rt_label *l, size_t n) {
  rt_buf_putc(b, '{');
  for (size_t i = 0; i < n; i++) {
    rt_buf_printf(b, "%s%s=\"%s\"", i ? ", " : "", l[i].name, l[i].value);
  }
  rt_buf_putc(b, '}');
}

static void put_result(rt_buf *b, const pql_result *r) {
  char fb[RT_FLOAT_MAX];
  if (r->error) {
    rt_buf_printf(b, "error(%s): %s", r->error_type, r->error);
    return;
  }
  switch (r->type) {
  case PQL_SCALAR: rt_buf_printf(b, "scalar %s", rt_float_str(fb, r->scalar, 'f')); return;
  case PQL_STRING: rt_buf_printf(b, "string \"%s\"", r->str); return;
  default: break;
  }
  rt_buf_printf(b, "%s with %zu series:", r->type == PQL_VECTOR ? "vector" : "matrix", r->nseries);
  for (size_t i = 0; i < r->nseries && i < 30; i++) {
    rt_buf_puts(b, "\n      ");
    put_labels(b, r->series[i].labels, r->series[i].nlabels);
    for (size_t k = 0; k < r->series[i].npoints && k < 40; k++) {
      if (r->series[i].points[k].h) {
        rt_buf_putc(b, ' ');
        print_hist(r->series[i].points[k].h, b);
        rt_buf_printf(b, "@%lld", (long long)r->series[i].points[k].t);
        continue;
      }
      rt_buf_printf(b, " %s@%lld", rt_float_str(fb, r->series[i].points[k].v, 'f'),
                    (long long)r->series[i].points[k].t);
    }
  }
}

static void put_expected(rt_buf *b, const evalcmd *c) {
  char fb[RT_FLOAT_MAX];
  if (c->fail) {
    rt_buf_printf(b, "failure%s%s", c->fail_msg ? ": " : "", c->fail_msg ? c->fail_msg : "");
    return;
  }
  if (c->scalar) {
    rt_buf_printf(b, "scalar %s", rt_float_str(fb, c->scalar_v, 'f'));
    return;
  }
  if (c->is_string) {
    rt_buf_printf(b, "string \"%s\"", c->string_v);
    return;
  }
  rt_buf_printf(b, "%zu series:", c->nes);
  for (size_t i = 0; i < c->nes && i < 30; i++) {
    rt_buf_puts(b, "\n      ");
    put_labels(b, c->es[i].ls.l, c->es[i].ls.n);
    for (size_t k = 0; k < c->es[i].vals.n && k < 40; k++) {
      if (c->es[i].vals.v[k].h) {
        rt_buf_putc(b, ' ');
        print_hist(c->es[i].vals.v[k].h, b);
      } else if (c->es[i].vals.v[k].present) {
        rt_buf_printf(b, " %s", rt_float_str(fb, c->es[i].vals.v[k].v, 'f'));
      } else {
        rt_buf_puts(b, " _");
      }
    }
  }
}

static bool rx_match(const char *re, const char *s) {
  regex_t rx;
  if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0) {
    return false;
  }
  bool ok = regexec(&rx, s, 0, NULL, 0) == 0;
  regfree(&rx);
  return ok;
}

static bool annexp_match(const annexp *e, int i, const char *s) {
  return e->re[i] ? rx_match(e->text[i], s) : strcmp(e->text[i], s) == 0;
}

/* Every expected text matches an annotation and every annotation matches an expected text. */
static bool annexp_check(const annexp *e, const char **got, size_t ngot) {
  if (e->n == 0) {
    return true;
  }
  for (int i = 0; i < e->n; i++) {
    bool found = false;
    for (size_t k = 0; k < ngot && !found; k++) {
      found = annexp_match(e, i, got[k]);
    }
    if (!found) {
      return false;
    }
  }
  for (size_t k = 0; k < ngot; k++) {
    bool found = false;
    for (int i = 0; i < e->n && !found; i++) {
      found = annexp_match(e, i, got[k]);
    }
    if (!found) {
      return false;
    }
  }
  return true;
}

static void annexp_add(annexp *e, char *msg, char *re, bool *bad) {
  if (!msg && !re) {
    return;
  }
  if (e->n == MAX_ANNEXP) {
    *bad = true;
    free(msg);
    free(re);
    return;
  }
  e->re[e->n] = re != NULL;
  e->text[e->n++] = re ? re : msg;
}

/* Checks annotations; returns NULL or a static reason. */
static const char *check_annots(const evalcmd *c, const pql_result *r) {
  if (c->warn == 1 && r->nwarnings == 0) {
    return "expected warnings, got none";
  }
  if (c->warn == -1 && r->nwarnings > 0) {
    return "expected no warnings";
  }
  if (c->info == 1 && r->ninfos == 0) {
    return "expected infos, got none";
  }
  if (c->info == -1 && r->ninfos > 0) {
    return "expected no infos";
  }
  if (!annexp_check(&c->warns, r->warnings, r->nwarnings)) {
    return "warning text differs";
  }
  if (!annexp_check(&c->infos, r->infos, r->ninfos)) {
    return "info text differs";
  }
  return NULL;
}

/* Compares an instant-query result (or the point at t of a range result) with the expectation. */
static const char *check_instant(const evalcmd *c, const pql_result *r, bool rangemode, int64_t t, char *why,
                                 size_t wl) {
  if (c->fail) {
    if (!r->error) {
      return "expected an error, got none";
    }
    if (c->fail_msg && strcmp(c->fail_msg, r->error) != 0) {
      snprintf(why, wl, "error message differs: got \"%s\"", r->error);
      return why;
    }
    if (c->fail_re && !rx_match(c->fail_re, r->error)) {
      snprintf(why, wl, "error does not match regexp: \"%s\"", r->error);
      return why;
    }
    return NULL;
  }
  if (r->error) {
    snprintf(why, wl, "unexpected error: %s", r->error);
    return why;
  }
  if (!rangemode) {
    const char *a = check_annots(c, r);
    if (a) {
      return a;
    }
  }
  if (c->is_string) {
    if (r->type != PQL_STRING || strcmp(r->str, c->string_v) != 0) {
      return "string result differs";
    }
    return NULL;
  }
  if (c->scalar) {
    double v;
    if (rangemode) {
      if (r->nseries != 1 || r->series[0].nlabels != 0) {
        return "expected a scalar";
      }
      bool found = false;
      for (size_t k = 0; k < r->series[0].npoints; k++) {
        if (r->series[0].points[k].t == t) {
          v = r->series[0].points[k].v;
          found = true;
        }
      }
      if (!found) {
        return "scalar point missing";
      }
    } else {
      if (r->type != PQL_SCALAR) {
        return "expected a scalar result";
      }
      v = r->scalar;
    }
    if (!almost_equal(v, c->scalar_v)) {
      return "scalar value differs";
    }
    return NULL;
  }
  if (c->matrix_expect) {
    if (r->type != PQL_MATRIX) {
      return "expected a range vector";
    }
    if (r->nseries != c->nes) {
      return "number of series differs";
    }
    for (size_t i = 0; i < c->nes; i++) {
      const pql_series *s = NULL;
      for (size_t k = 0; k < r->nseries; k++) {
        if (labels_equal(r->series[k].labels, r->series[k].nlabels, &c->es[i].ls)) {
          s = &r->series[k];
        }
      }
      if (!s) {
        return "expected series missing";
      }
      size_t pi = 0;
      for (size_t k = 0; k < c->es[i].vals.n; k++) {
        if (!c->es[i].vals.v[k].present) {
          continue;
        }
        int64_t ts = c->mstart + (int64_t)k * c->mstep;
        if (pi >= s->npoints || s->points[pi].t != ts || !point_equal(&c->es[i].vals.v[k], &s->points[pi])) {
          return "range vector points differ";
        }
        pi++;
      }
      if (pi != s->npoints) {
        return "range vector has extra points";
      }
    }
    return NULL;
  }
  /* vector */
  if (!rangemode && r->type != PQL_VECTOR) {
    return r->type == PQL_SCALAR ? "expected a vector, got a scalar" : "expected a vector";
  }
  size_t got = 0;
  for (size_t k = 0; k < r->nseries; k++) {
    const pql_series *s = &r->series[k];
    bool has = false;
    for (size_t p = 0; p < s->npoints; p++) {
      if (!rangemode || s->points[p].t == t) {
        has = true;
      }
    }
    if (has) {
      got++;
    }
  }
  if (got != c->nes) {
    snprintf(why, wl, "expected %zu samples, got %zu", c->nes, got);
    return why;
  }
  size_t pos = 0;
  for (size_t k = 0; k < r->nseries; k++) {
    const pql_series *s = &r->series[k];
    const pql_point *pt = NULL;
    for (size_t p = 0; p < s->npoints; p++) {
      if (!rangemode || s->points[p].t == t) {
        pt = &s->points[p];
      }
    }
    if (!pt) {
      continue;
    }
    size_t idx = c->nes;
    for (size_t i = 0; i < c->nes; i++) {
      if (labels_equal(s->labels, s->nlabels, &c->es[i].ls)) {
        idx = i;
        break;
      }
    }
    if (idx == c->nes) {
      return "unexpected series in result";
    }
    if (c->ordered && !rangemode && idx != pos) {
      return "order of samples differs";
    }
    pos++;
    if (c->es[idx].vals.n != 1 || !c->es[idx].vals.v[0].present) {
      return "bad expectation";
    }
    if (!point_equal(&c->es[idx].vals.v[0], pt)) {
      return "sample value differs";
    }
  }
  return NULL;
}

static const char *check_range(const evalcmd *c, const pql_result *r, char *why, size_t wl) {
  if (c->fail) {
    return check_instant(c, r, false, 0, why, wl);
  }
  if (r->error) {
    snprintf(why, wl, "unexpected error: %s", r->error);
    return why;
  }
  const char *a = check_annots(c, r);
  if (a) {
    return a;
  }
  if (r->type != PQL_MATRIX) {
    return "expected a matrix";
  }
  size_t want = 0;
  for (size_t i = 0; i < c->nes; i++) {
    bool any = false;
    for (size_t k = 0; k < c->es[i].vals.n; k++) {
      any |= c->es[i].vals.v[k].present;
    }
    if (any) {
      want++;
    }
  }
  if (c->scalar) {
    want = 1;
  }
  if (r->nseries != want) {
    snprintf(why, wl, "expected %zu series, got %zu", want, r->nseries);
    return why;
  }
  for (size_t k = 1; k < r->nseries; k++) {
    if (rt_labels_cmp(r->series[k - 1].labels, r->series[k - 1].nlabels, r->series[k].labels, r->series[k].nlabels) >= 0) {
      return "matrix not sorted by labels";
    }
  }
  for (size_t i = 0; i < c->nes; i++) {
    const pql_series *s = NULL;
    for (size_t k = 0; k < r->nseries; k++) {
      if (labels_equal(r->series[k].labels, r->series[k].nlabels, &c->es[i].ls)) {
        s = &r->series[k];
      }
    }
    bool any = false;
    for (size_t k = 0; k < c->es[i].vals.n; k++) {
      any |= c->es[i].vals.v[k].present;
    }
    if (!any) {
      continue;
    }
    if (!s) {
      return "expected series missing";
    }
    size_t pi = 0;
    for (size_t k = 0; k < c->es[i].vals.n; k++) {
      if (!c->es[i].vals.v[k].present) {
        continue;
      }
      int64_t ts = c->start + (int64_t)k * c->step;
      if (pi >= s->npoints || s->points[pi].t != ts) {
        return "points differ in timestamps";
      }
      if (!point_equal(&c->es[i].vals.v[k], &s->points[pi])) {
        return "point values differ";
      }
      pi++;
    }
    if (pi != s->npoints) {
      return "extra points in series";
    }
  }
  return NULL;
}

#include "tests/promql/promqltest_e2e.h"

static int path_diffs; /* range queries whose column and step-by-step evaluations differed */

/* Query wrappers: the in-process engine, or the server in the end-to-end mode. */
static pql_result *run_instant(const pql_storage *st, const pql_opts *o, const char *q, int64_t t) {
  pql_result *r = NULL;
  if (e2e_port) {
    return e2e_query(q, t, t, 0);
  }
  pql_query_instant(st, o, q, t, &r);
  return r;
}

static pql_result *run_range(const pql_storage *st, const pql_opts *o, const char *q, int64_t a, int64_t b,
                             int64_t step) {
  pql_result *r = NULL;
  if (e2e_port) {
    return e2e_query(q, a, b, step);
  }
  pql_query_range(st, o, q, a, b, step, &r);
  pql_opts so = *o;
  so.step_by_step = true;
  pql_result *r2 = NULL;
  pql_query_range(st, &so, q, a, b, step, &r2);
  char why[512];
  if (r && r2 && !pql_results_same(r, r2, why, sizeof why)) {
    path_diffs++;
    fprintf(stderr, "column and step-by-step evaluation differ: %s [%lld, %lld] step %lld: %s\n", q, (long long)a,
            (long long)b, (long long)step, why);
  }
  pql_result_free(r2);
  return r;
}

static void free_res(pql_result *r) {
  if (e2e_port) {
    e2e_free(r);
  } else {
    pql_result_free(r);
  }
}

/* ---------------- file runner ---------------- */

typedef struct runner {
  pql_memstore *ms;
  pql_memstore *hist; /* label sets of native-histogram series */
  char **hist_names;
  size_t nhist;
  pql_memstore *nhcb; /* label sets of the histograms load_with_nhcb would synthesize */
  char **nhcb_names;
  size_t nnhcb;
  filestat st;
  const char *file;
  char *skip_reasons[64];
  int skip_counts[64];
  size_t nskip;
} runner;

static void add_skip(runner *r, const char *reason) {
  r->st.skipped++;
  for (size_t i = 0; i < r->nskip; i++) {
    if (strcmp(r->skip_reasons[i], reason) == 0) {
      r->skip_counts[i]++;
      return;
    }
  }
  if (r->nskip < 64) {
    r->skip_reasons[r->nskip] = strdup(reason);
    r->skip_counts[r->nskip++] = 1;
  }
}

static void add_name(char ***names, size_t *n, const char *name) {
  for (size_t i = 0; i < *n; i++) {
    if (strcmp((*names)[i], name) == 0) {
      return;
    }
  }
  *names = realloc(*names, (*n + 1) * sizeof(char *));
  (*names)[(*n)++] = strdup(name);
}

static void add_hist_name(runner *r, const char *name) { add_name(&r->hist_names, &r->nhist, name); }

static bool word_in(const char *hay, const char *w) {
  size_t n = strlen(w);
  for (const char *p = strstr(hay, w); p; p = strstr(p + 1, w)) {
    bool left = p == hay || !(isalnum((unsigned char)p[-1]) || p[-1] == '_' || p[-1] == ':');
    bool right = !(isalnum((unsigned char)p[n]) || p[n] == '_' || p[n] == ':');
    if (left && right) {
      return true;
    }
  }
  return false;
}


/* ---------------- load_with_nhcb ---------------- */

/* One classic-histogram series of a load_with_nhcb block. */
typedef struct nhcb_rec {
  char key[2048]; /* the synthesized series' labels, printed */
  lset base;      /* its labels (owned strings) */
  int kind;       /* 0 bucket, 1 _count, 2 _sum */
  double le;
  double *v;
  bool *present;
  size_t n;
} nhcb_rec;

typedef struct nhcb_block {
  nhcb_rec *r;
  size_t n;
} nhcb_block;

static void nhcb_collect(nhcb_block *b, const lset *ls, const char *name, const svals *sv) {
  static const char *sufs[] = {"_bucket", "_count", "_sum"};
  for (int k = 0; k < 3; k++) {
    size_t nl = strlen(name), sl = strlen(sufs[k]);
    if (nl <= sl || strcmp(name + nl - sl, sufs[k]) != 0) {
      continue;
    }
    const char *le = rt_labels_get(ls->l, ls->n, "le");
    if ((k == 0) != (le != NULL)) {
      return;
    }
    b->r = realloc(b->r, (b->n + 1) * sizeof *b->r);
    nhcb_rec *x = &b->r[b->n++];
    memset(x, 0, sizeof *x);
    x->kind = k;
    x->le = le ? strtod(le, NULL) : 0;
    if (le && (strcmp(le, "+Inf") == 0 || strcmp(le, "Inf") == 0 || strcmp(le, "+inf") == 0)) {
      x->le = INFINITY;
    }
    rt_buf kb = RT_BUF_INIT;
    for (size_t j = 0; j < ls->n; j++) {
      if (strcmp(ls->l[j].name, "le") == 0) {
        continue;
      }
      bool isname = strcmp(ls->l[j].name, "__name__") == 0;
      char *val = isname ? rt_strndup(name, nl - sl) : rt_strdup(ls->l[j].value);
      x->base.l[x->base.n].name = rt_strdup(ls->l[j].name);
      x->base.l[x->base.n].value = val;
      x->base.n++;
      rt_buf_printf(&kb, "%s=%s,", ls->l[j].name, val);
    }
    snprintf(x->key, sizeof x->key, "%s", kb.data ? kb.data : "");
    rt_buf_free(&kb);
    x->n = sv->n;
    x->v = calloc(sv->n + 1, sizeof(double));
    x->present = calloc(sv->n + 1, sizeof(bool));
    for (size_t j = 0; j < sv->n; j++) {
      x->present[j] = sv->v[j].present && !rt_is_stale_nan(sv->v[j].v);
      x->v[j] = sv->v[j].v;
    }
    return;
  }
}

static int nhcb_le_cmp(const void *a, const void *b) {
  const nhcb_rec *x = *(nhcb_rec *const *)a, *y = *(nhcb_rec *const *)b;
  return x->le < y->le ? -1 : x->le > y->le;
}

/* Synthesizes the custom-bucket histograms of the block and adds them to the store. */
static void nhcb_finish(runner *r, nhcb_block *b, int64_t step) {
  bool *done = calloc(b->n + 1, sizeof(bool));
  for (size_t i = 0; i < b->n; i++) {
    if (done[i]) {
      continue;
    }
    nhcb_rec **bk = calloc(b->n + 1, sizeof *bk);
    size_t nbk = 0, maxn = 0;
    nhcb_rec *cnt = NULL, *sum = NULL;
    for (size_t k = i; k < b->n; k++) {
      if (done[k] || strcmp(b->r[k].key, b->r[i].key) != 0) {
        continue;
      }
      done[k] = true;
      nhcb_rec *x = &b->r[k];
      if (x->kind == 0) {
        bk[nbk++] = x;
      } else if (x->kind == 1) {
        cnt = x;
      } else {
        sum = x;
      }
      if (x->n > maxn) {
        maxn = x->n;
      }
    }
    if (nbk > 0) {
      qsort(bk, nbk, sizeof *bk, nhcb_le_cmp);
      const lset *base = &b->r[i].base;
      pql_memstore_add(r->hist, base->l, base->n, 0, 0);
      add_hist_name(r, rt_labels_get(base->l, base->n, "__name__"));
      for (size_t t = 0; t < maxn; t++) {
        bool ok = true;
        for (size_t j = 0; j < nbk; j++) {
          ok &= t < bk[j]->n && bk[j]->present[t];
        }
        if (!ok) {
          continue;
        }
        pql_hist h = {0};
        h.schema = PQL_SCHEMA_CUSTOM;
        double cv[64];
        int32_t idx[65];
        double cnts[65];
        size_t ncv = 0;
        double prev = 0;
        for (size_t j = 0; j < nbk && ncv < 64; j++) {
          if (isinf(bk[j]->le)) {
            continue;
          }
          cv[ncv] = bk[j]->le;
          idx[ncv] = (int32_t)ncv;
          cnts[ncv] = bk[j]->v[t] - prev;
          prev = bk[j]->v[t];
          ncv++;
        }
        double total = prev;
        if (isinf(bk[nbk - 1]->le)) {
          total = bk[nbk - 1]->v[t];
        }
        if (cnt && t < cnt->n && cnt->present[t]) {
          total = cnt->v[t];
        }
        idx[ncv] = (int32_t)ncv;
        cnts[ncv] = total - prev;
        h.count = total;
        h.sum = sum && t < sum->n && sum->present[t] ? sum->v[t] : 0;
        h.ncv = (uint32_t)ncv;
        h.cv = cv;
        h.np = (uint32_t)ncv + 1;
        h.pi = idx;
        h.pb = cnts;
        h.ni = NULL;
        h.nb = NULL;
        pql_memstore_add_hist(r->ms, base->l, base->n, (int64_t)t * step, &h);
      }
    }
    free(bk);
  }
  for (size_t i = 0; i < b->n; i++) {
    lset_free(&b->r[i].base);
    free(b->r[i].v);
    free(b->r[i].present);
  }
  free(b->r);
  free(done);
}

static void run_load(runner *r, char **lines, size_t nl, size_t *i, const char *cmd, int64_t step, bool nhcb) {
  (void)cmd;
  e2e_block blk = {0};
  nhcb_block nb = {0};
  for (; *i < nl; (*i)++) {
    char *l = trim(lines[*i]);
    if (!*l) {
      break;
    }
    if (l[0] == '#') {
      continue;
    }
    lset ls;
    const char *p = parse_metric(l, &ls);
    if (!p) {
      fprintf(stderr, "%s:%zu: bad series line\n", r->file, *i + 1);
      lset_free(&ls);
      continue;
    }
    if (*p == '@') {
      lset_free(&ls); /* start timestamps line: ignored */
      continue;
    }
    svals sv = {0};
    if (!parse_values(p, &sv)) {
      fprintf(stderr, "%s:%zu: bad values\n", r->file, *i + 1);
    }
    const char *name = rt_labels_get(ls.l, ls.n, "__name__");
    if (sv.hist) {
      pql_memstore_add(r->hist, ls.l, ls.n, 0, 0);
      if (name) {
        add_hist_name(r, name);
      }
    }
    if (nhcb && name && !sv.hist) {
      nhcb_collect(&nb, &ls, name, &sv);
    }
    for (size_t k = 0; k < sv.n; k++) {
      if (sv.v[k].h) {
        pql_memstore_add_hist(r->ms, ls.l, ls.n, (int64_t)k * step, sv.v[k].h);
      } else if (sv.v[k].present) {
        pql_memstore_add(r->ms, ls.l, ls.n, (int64_t)k * step, sv.v[k].v);
      }
    }
    if (e2e_port && !sv.hist) {
      e2e_block_add(&blk, &ls, &sv, step);
    }
    sv_free(&sv);
    lset_free(&ls);
  }
  nhcb_finish(r, &nb, step);
  if (e2e_port) {
    e2e_block_send(&blk, r->file);
  }
}

static char *dup_after(const char *s, const char *prefix) {
  const char *p = s + strlen(prefix);
  while (isspace((unsigned char)*p)) {
    p++;
  }
  return strdup(p);
}

static bool parse_eval_header(char *l, evalcmd *c) {
  char *sp = l;
  while (*sp && !isspace((unsigned char)*sp)) {
    sp++;
  }
  size_t wl = (size_t)(sp - l);
  char word[32];
  snprintf(word, sizeof word, "%.*s", (int)wl, l);
  for (char *w = word; *w; w++) {
    *w = (char)tolower((unsigned char)*w);
  }
  if (strcmp(word, "eval_fail") == 0) {
    c->fail = true;
  } else if (strcmp(word, "eval_ordered") == 0) {
    c->ordered = true;
  } else if (strcmp(word, "eval_warn") == 0) {
    c->warn = 1;
  } else if (strcmp(word, "eval_info") == 0) {
    c->info = 1;
  } else if (strcmp(word, "eval") != 0) {
    return false;
  }
  char *p = sp;
  while (isspace((unsigned char)*p)) {
    p++;
  }
  if (strncmp(p, "instant", 7) == 0) {
    p += 7;
    while (isspace((unsigned char)*p)) {
      p++;
    }
    if (strncmp(p, "at", 2) != 0) {
      return false;
    }
    p += 2;
    while (isspace((unsigned char)*p)) {
      p++;
    }
    char *ts = p;
    while (*p && !isspace((unsigned char)*p)) {
      p++;
    }
    if (!parse_dur(ts, (size_t)(p - ts), &c->t)) {
      return false;
    }
    c->expr = strdup(trim(p));
    return true;
  }
  if (strncmp(p, "range", 5) == 0) {
    c->range = true;
    char f1[64], f2[64], f3[64];
    int used = 0;
    if (sscanf(p, "range from %63s to %63s step %63s %n", f1, f2, f3, &used) != 3) {
      return false;
    }
    if (!parse_dur(f1, strlen(f1), &c->start) || !parse_dur(f2, strlen(f2), &c->end) ||
        !parse_dur(f3, strlen(f3), &c->step)) {
      return false;
    }
    c->expr = strdup(trim(p + used));
    return true;
  }
  return false;
}

static void parse_expect(char *l, evalcmd *c) {
  char *p = l + 6;
  while (isspace((unsigned char)*p)) {
    p++;
  }
  struct {
    const char *w;
    int kind;
  } kinds[] = {{"fail", 1}, {"warn", 2}, {"no_warn", 3}, {"info", 4}, {"no_info", 5}, {"ordered", 6}};
  for (size_t k = 0; k < RT_ARRAY_LEN(kinds); k++) {
    size_t n = strlen(kinds[k].w);
    if (strncmp(p, kinds[k].w, n) != 0 || (p[n] && !isspace((unsigned char)p[n]))) {
      continue;
    }
    char *rest = p + n;
    while (isspace((unsigned char)*rest)) {
      rest++;
    }
    char *msg = NULL, *re = NULL;
    if (strncmp(rest, "msg:", 4) == 0) {
      msg = strdup(trim(rest + 4));
    } else if (strncmp(rest, "regex:", 6) == 0) {
      re = strdup(trim(rest + 6));
    }
    switch (kinds[k].kind) {
    case 1: c->fail = true; c->fail_msg = msg; c->fail_re = re; break;
    case 2: c->warn = 1; annexp_add(&c->warns, msg, re, &c->bad); break;
    case 3: c->warn = -1; free(msg); free(re); break;
    case 4: c->info = 1; annexp_add(&c->infos, msg, re, &c->bad); break;
    case 5: c->info = -1; free(msg); free(re); break;
    case 6: c->ordered = true; free(msg); free(re); break;
    }
    return;
  }
  if (strncmp(p, "range vector from", 17) == 0) {
    char f1[64], f2[64], f3[64];
    if (sscanf(p, "range vector from %63s to %63s step %63s", f1, f2, f3) == 3 &&
        parse_dur(f1, strlen(f1), &c->mstart) && parse_dur(f2, strlen(f2), &c->mend) &&
        parse_dur(f3, strlen(f3), &c->mstep)) {
      c->matrix_expect = true;
      return;
    }
    c->bad = true;
    return;
  }
  if (strncmp(p, "string", 6) == 0) {
    const char *s = p + 6;
    while (isspace((unsigned char)*s)) {
      s++;
    }
    c->is_string = true;
    c->string_v = parse_qstr(&s);
    return;
  }
  c->bad = true;
}

/* Does any selector of e match a native-histogram series? */
static bool touches_hist(pql_memstore *hist, const pql_expr *e) {
  if (!e) {
    return false;
  }
  if (e->kind == PQL_N_VS) {
    pql_storage st = pql_memstore_storage(hist);
    /* run the selector through a tiny query to reuse the store's matching */
    pql_result *res = NULL;
    rt_buf b = RT_BUF_INIT;
    pql_expr tmp = *e;
    tmp.offset = 0;
    tmp.at = PQL_AT_NONE;
    pql_format(&tmp, &b);
    bool hit = false;
    if (b.data && pql_query_instant(&st, NULL, b.data, 0, &res) == RT_OK) {
      hit = res->error == NULL && res->nseries > 0;
      pql_result_free(res);
    }
    rt_buf_free(&b);
    return hit;
  }
  if (touches_hist(hist, e->a) || touches_hist(hist, e->b)) {
    return true;
  }
  for (size_t i = 0; i < e->nargs; i++) {
    if (touches_hist(hist, e->args[i])) {
      return true;
    }
  }
  return false;
}

/* The constructs the engine evaluates on native histograms so far; an eval over histogram
 * series that uses anything else is skipped and named. Returns NULL or the construct. */
static const char *hist_unsupported(const pql_expr *e) {
  static const char *funcs[] = {"histogram_count", "histogram_sum", "histogram_avg", "histogram_quantile",
                                "histogram_fraction", "histogram_stddev", "histogram_stdvar", "rate", "increase",
                                "delta", "irate", "idelta", "sum_over_time", "avg_over_time", "last_over_time",
                                "first_over_time", "count_over_time", "present_over_time", "changes", "resets",
                                "min_over_time", "max_over_time", "timestamp", "scalar", "vector", "abs", "ceil",
                                "floor", "sqrt", "exp", "ln", "round", "clamp", "clamp_min", "clamp_max", "label_replace",
                                "label_join", "sort", "sort_desc", "absent", "absent_over_time", "stddev_over_time",
                                "stdvar_over_time", "quantile_over_time", "deriv", "predict_linear", "time", "sgn", "log2", "log10",
                                "double_exponential_smoothing", "mad_over_time", "ts_of_last_over_time",
                                "ts_of_first_over_time", "ts_of_min_over_time", "ts_of_max_over_time", "day_of_month",
                                "day_of_week", "day_of_year", "days_in_month", "hour", "minute", "month", "year",
                                "histogram_quantiles"};
  static const char *ops[] = {"+", "-", "*", "/", "==", "!=", ">", "<", ">=", "<=", "and", "or", "unless", "%", "^", "atan2", "sum", "avg", "count", "group", "min", "max",
                               "stddev", "stdvar", "quantile", "topk", "bottomk", "limitk", "limit_ratio",
                               "count_values", "</", ">/"};
  static char buf[64];
  if (!e) {
    return NULL;
  }
  switch (e->kind) {
  case PQL_N_NUM:
  case PQL_N_STR:
    return NULL;
  case PQL_N_VS:
    return NULL;
  case PQL_N_MS:
    return NULL; /* range selectors, anchored/smoothed ones too */
  case PQL_N_PAREN:
    return hist_unsupported(e->a);
  case PQL_N_SUBQ:
    return hist_unsupported(e->a);
  case PQL_N_CALL: {
    bool ok = false;
    for (size_t i = 0; i < RT_ARRAY_LEN(funcs); i++) {
      ok |= strcmp(e->func->name, funcs[i]) == 0;
    }
    if (!ok) {
      snprintf(buf, sizeof buf, "%s()", e->func->name);
      return buf;
    }
    for (size_t i = 0; i < e->nargs; i++) {
      const char *u = hist_unsupported(e->args[i]);
      if (u) {
        return u;
      }
    }
    return NULL;
  }
  default: {
    bool ok = false;
    for (size_t i = 0; i < RT_ARRAY_LEN(ops); i++) {
      ok |= strcmp(pql_op_str(e->op), ops[i]) == 0;
    }
    if (!ok) {
      snprintf(buf, sizeof buf, "operator %s", pql_op_str(e->op));
      return buf;
    }
    const char *u = hist_unsupported(e->a);
    return u ? u : hist_unsupported(e->b);
  }
  }
}

/* Upstream's @ variants: every selector and subquery without @ (and not inside a subquery that
 * has one) gets `@ <eval time>`; returns false when the expression calls a function whose result
 * depends on the evaluation time. */
static bool add_at(pql_expr *e, int64_t ts, bool under_at) {
  if (!e) {
    return true;
  }
  bool ok = true;
  switch (e->kind) {
  case PQL_N_VS:
    if (!under_at && e->at == PQL_AT_NONE) {
      e->at = PQL_AT_TIME;
      e->at_ms = ts;
    }
    return true;
  case PQL_N_MS: return add_at(e->a, ts, under_at);
  case PQL_N_SUBQ:
    if (!under_at && e->at == PQL_AT_NONE) {
      e->at = PQL_AT_TIME;
      e->at_ms = ts;
    }
    return add_at(e->a, ts, true);
  case PQL_N_CALL: {
    static const char *unsafe[] = {"days_in_month", "day_of_month", "day_of_week", "day_of_year", "hour",
                                   "minute", "month", "year", "predict_linear", "time", "timestamp",
                                   "start", "end", "range", "step"};
    for (size_t i = 0; i < RT_ARRAY_LEN(unsafe); i++) {
      if (strcmp(e->func->name, unsafe[i]) == 0) {
        ok = false;
      }
    }
    for (size_t i = 0; i < e->nargs; i++) {
      ok &= add_at(e->args[i], ts, under_at);
    }
    return ok;
  }
  default:
    ok &= add_at(e->a, ts, under_at);
    ok &= add_at(e->b, ts, under_at);
    return ok;
  }
}

static void run_eval(runner *r, evalcmd *c) {
  char why[1024];
  const char *fail = NULL;
  rt_buf detail = RT_BUF_INIT;

  bool nhcb = false;
  for (size_t i = 0; i < r->nnhcb && !nhcb; i++) {
    nhcb = word_in(c->expr, r->nhcb_names[i]);
  }
  for (size_t i = 0; i < r->nhist && !c->hist; i++) {
    if (word_in(c->expr, r->hist_names[i])) {
      c->hist = true;
    }
  }
  const char *unsup = NULL;
  {
    pql_expr *pe = NULL;
    char eb[256];
    if (pql_parse(c->expr, &pe, eb, sizeof eb) == RT_OK) {
      c->hist = c->hist || touches_hist(r->hist, pe);
      nhcb = nhcb || touches_hist(r->nhcb, pe);
      if (c->hist && !unsup) {
        unsup = hist_unsupported(pe);
      }
      pql_expr_free(pe);
    }
  }
  if (nhcb) {
    add_skip(r, "native histograms synthesized by load_with_nhcb");
    return;
  }
  if (c->hist && (unsup || e2e_port)) {
    char reason[160];
    snprintf(reason, sizeof reason, "native histograms: %s not implemented", e2e_port ? "storage" : unsup);
    add_skip(r, reason);
    return;
  }
  if (c->bad) {
    add_skip(r, "eval block the harness cannot parse");
    return;
  }
  pql_storage st = pql_memstore_storage(r->ms);
  pql_opts o = {.lookback_ms = 300000, .subquery_step_ms = 60000, .max_samples = 50000000};
  pql_result *res = NULL;
  if (c->range) {
    res = run_range(&st, &o, c->expr, c->start, c->end, c->step);
    fail = check_range(c, res, why, sizeof why);
  } else {
    res = run_instant(&st, &o, c->expr, c->t);
    fail = check_instant(c, res, false, c->t, why, sizeof why);
    pql_expr *pe = NULL;
    bool qt = false;
    char eb[256];
    if (pql_parse(c->expr, &pe, eb, sizeof eb) == RT_OK) {
      qt = pql_expr_uses_query_times(pe);
      pql_expr_free(pe);
    }
    if (!fail && !c->ordered && !c->matrix_expect && !c->is_string && !qt) {
      pql_result *rr = run_range(&st, &o, c->expr, c->t - 60000, c->t + 60000, 60000);
      fail = check_instant(c, rr, true, c->t, why, sizeof why);
      if (fail) {
        rt_buf_puts(&detail, "(range mode) ");
        free_res(res);
        res = rr;
      } else {
        free_res(rr);
      }
    }
    /* the @ variants at other evaluation times */
    if (!fail && !c->matrix_expect && !c->is_string && pql_parse(c->expr, &pe, eb, sizeof eb) == RT_OK) {
      bool ok = add_at(pe, c->t, false);
      rt_buf nb = RT_BUF_INIT;
      pql_format(pe, &nb);
      pql_expr_free(pe);
      int64_t ts = c->t;
      int64_t times[5] = {-10 * ts, 0, ts / 5, ts, 10 * ts};
      size_t ntimes = 5;
      if (ts == 0) {
        times[0] = -1000;
        times[1] = 0;
        times[2] = 1000;
        ntimes = 3;
      }
      for (size_t k = 0; ok && !fail && nb.data && k < ntimes; k++) {
        pql_result *ar = run_instant(&st, &o, nb.data, times[k]);
        evalcmd tmp = *c;
        tmp.warn = tmp.info = 0;
        tmp.warns.n = tmp.infos.n = 0;
        fail = check_instant(&tmp, ar, false, times[k], why, sizeof why);
        if (fail) {
          rt_buf_printf(&detail, "(@ variant \"%s\" at %lld) ", nb.data, (long long)times[k]);
          free_res(res);
          res = ar;
        } else {
          free_res(ar);
        }
      }
      rt_buf_free(&nb);
    }
  }
  if (fail) {
    r->st.failed++;
    if (verbose) {
      rt_buf b = RT_BUF_INIT;
      put_expected(&b, c);
      rt_buf g = RT_BUF_INIT;
      put_result(&g, res);
      printf("  FAIL %s:%d: %s%s\n    expr: %s\n    expected: %s\n    got: %s\n", r->file, c->line,
             detail.data ? detail.data : "", fail, c->expr, b.data ? b.data : "", g.data ? g.data : "");
      for (size_t i = 0; i < res->nwarnings; i++) {
        printf("    warning: %s\n", res->warnings[i]);
      }
      for (size_t i = 0; i < res->ninfos; i++) {
        printf("    info: %s\n", res->infos[i]);
      }
      rt_buf_free(&b);
      rt_buf_free(&g);
    }
  } else {
    r->st.passed++;
  }
  rt_buf_free(&detail);
  free_res(res);
}

static int run_file(const char *path, const char *name, filestat *out, runner *r) {
  FILE *f = fopen(path, "r");
  if (!f) {
    return -1;
  }
  char **lines = NULL;
  size_t nl = 0, cap = 0;
  char *line = NULL;
  size_t lcap = 0;
  while (getline(&line, &lcap, f) >= 0) {
    if (nl == cap) {
      cap = cap ? cap * 2 : 256;
      lines = realloc(lines, cap * sizeof *lines);
    }
    lines[nl++] = strdup(line);
  }
  free(line);
  fclose(f);
  memset(r, 0, sizeof *r);
  r->file = name;
  r->ms = pql_memstore_create();
  r->hist = pql_memstore_create();
  r->nhcb = pql_memstore_create();
  e2e_new_tenant(name);
  for (size_t i = 0; i < nl; i++) {
    char *l = trim(lines[i]);
    if (!*l || l[0] == '#') {
      continue;
    }
    if (strcasecmp(l, "clear") == 0) {
      pql_memstore_destroy(r->ms);
      r->ms = pql_memstore_create();
      pql_memstore_destroy(r->hist);
      r->hist = pql_memstore_create();
      pql_memstore_destroy(r->nhcb);
      r->nhcb = pql_memstore_create();
      e2e_new_tenant(name);
      for (size_t k = 0; k < r->nhist; k++) {
        free(r->hist_names[k]);
      }
      r->nhist = 0;
      for (size_t k = 0; k < r->nnhcb; k++) {
        free(r->nhcb_names[k]);
      }
      r->nnhcb = 0;
      continue;
    }
    if (strncasecmp(l, "load", 4) == 0) {
      bool nhcb = strncasecmp(l, "load_with_nhcb", 14) == 0;
      char *p = l + (nhcb ? 14 : 4);
      p = trim(p);
      int64_t step;
      if (!parse_dur(p, strlen(p), &step)) {
        fprintf(stderr, "%s:%zu: bad load step\n", name, i + 1);
        continue;
      }
      i++;
      run_load(r, lines, nl, &i, l, step, nhcb);
      continue;
    }
    if (strncasecmp(l, "eval", 4) == 0) {
      evalcmd c = {0};
      c.line = (int)i + 1;
      if (!parse_eval_header(l, &c)) {
        c.bad = true;
      }
      for (i++; i < nl; i++) {
        char *x = trim(lines[i]);
        if (!*x || x[0] == '#') {
          break; /* a comment line counts as a blank line: it ends the block */
        }
        if (strncmp(x, "expect ", 7) == 0) {
          parse_expect(x, &c);
          continue;
        }
        if (strncmp(x, "expected_fail_message", 21) == 0) {
          c.fail_msg = dup_after(x, "expected_fail_message");
          continue;
        }
        if (strncmp(x, "expected_fail_regexp", 20) == 0) {
          c.fail_re = dup_after(x, "expected_fail_regexp");
          continue;
        }
        double v;
        if (parse_go_number(x, &v)) {
          c.scalar = true;
          c.scalar_v = v;
          continue;
        }
        if (strstr(x, "{{")) {
          c.hist = true;
        }
        lset ls;
        const char *p = parse_metric(x, &ls);
        if (!p) {
          c.bad = true;
          lset_free(&ls);
          continue;
        }
        svals sv = {0};
        if (!parse_values(p, &sv)) {
          c.bad = true;
        }
        if (sv.hist) {
          c.hist = true;
        }
        c.es = realloc(c.es, (c.nes + 1) * sizeof *c.es);
        c.es[c.nes].ls = ls;
        c.es[c.nes].vals = sv;
        c.nes++;
      }
      run_eval(r, &c);
      free_eval(&c);
      continue;
    }
    fprintf(stderr, "%s:%zu: unknown command: %s\n", name, i + 1, l);
  }
  pql_memstore_destroy(r->ms);
  pql_memstore_destroy(r->hist);
  pql_memstore_destroy(r->nhcb);
  for (size_t k = 0; k < r->nhist; k++) {
    free(r->hist_names[k]);
  }
  free(r->hist_names);
  for (size_t k = 0; k < r->nnhcb; k++) {
    free(r->nhcb_names[k]);
  }
  free(r->nhcb_names);
  for (size_t k = 0; k < nl; k++) {
    free(lines[k]);
  }
  free(lines);
  *out = r->st;
  return 0;
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
  const char *dir = RT_SOURCE_DIR "/../shared/promqltest";
  const char *only = NULL;
  bool require_core = false, require_all = false;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--verbose") == 0 || strcmp(argv[i], "-v") == 0) {
      verbose = true;
    } else if (strcmp(argv[i], "--require-core") == 0) {
      require_core = true;
    } else if (strcmp(argv[i], "--require-all") == 0) {
      require_all = true;
    } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
      only = argv[++i];
    } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      e2e_port = atoi(argv[++i]);
    } else if (strcmp(argv[i], "--write-port") == 0 && i + 1 < argc) {
      e2e_write_port = atoi(argv[++i]);
    } else if (argv[i][0] == '-') {
      fprintf(stderr,
              "usage: %s [--verbose] [--require-core | --require-all] [--only NAME[,NAME...]] [--port PORT] [DIR]\n",
              argv[0]);
      return 2;
    } else {
      dir = argv[i];
    }
  }
  DIR *d = opendir(dir);
  if (!d && strcmp(dir, RT_SOURCE_DIR "/../shared/promqltest") == 0) {
    /* a checkout one level deeper (a worktree) */
    dir = RT_SOURCE_DIR "/../../shared/promqltest";
    d = opendir(dir);
  }
  if (!d) {
    fprintf(stderr, "cannot open %s\n", dir);
    return 2;
  }
  char *names[256];
  size_t nn = 0;
  struct dirent *de;
  while ((de = readdir(d)) && nn < 256) {
    size_t l = strlen(de->d_name);
    if (l > 5 && strcmp(de->d_name + l - 5, ".test") == 0) {
      names[nn++] = strdup(de->d_name);
    }
  }
  closedir(d);
  qsort(names, nn, sizeof names[0], name_cmp);
  int tp = 0, tf = 0, ts = 0, cf = 0, files = 0;
  int core_p = 0, core_total = 0;
  for (size_t i = 0; i < nn; i++) {
    char base[256];
    snprintf(base, sizeof base, "%.*s", (int)(strlen(names[i]) - 5), names[i]);
    bool selected = !only;
    if (only) {
      const char *p = only;
      size_t bl = strlen(base);
      while (*p) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        if (l == bl && strncmp(p, base, l) == 0) {
          selected = true;
        }
        p += l + (c ? 1 : 0);
      }
    }
    if (!selected) {
      free(names[i]);
      continue;
    }
    bool core = false;
    for (size_t k = 0; k < RT_ARRAY_LEN(core_files); k++) {
      if (strcmp(core_files[k], base) == 0) {
        core = true;
      }
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    filestat st;
    runner r;
    if (run_file(path, base, &st, &r) != 0) {
      fprintf(stderr, "cannot read %s\n", path);
      free(names[i]);
      return 2;
    }
    files++;
    printf("%-22s %s passed %4d  failed %4d  skipped %4d\n", base, core ? "core" : "    ", st.passed, st.failed,
           st.skipped);
    for (size_t k = 0; k < r.nskip; k++) {
      printf("%-22s        skipped %d: %s\n", "", r.skip_counts[k], r.skip_reasons[k]);
      free(r.skip_reasons[k]);
    }
    fflush(stdout);
    tp += st.passed;
    tf += st.failed;
    ts += st.skipped;
    if (core) {
      cf += st.failed;
      core_p += st.passed;
      core_total += st.passed + st.failed + st.skipped;
    }
    free(names[i]);
  }
  printf("files %d: passed %d, failed %d, skipped %d; core: passed %d of %d, failed %d\n", files, tp, tf, ts, core_p,
         core_total, cf);
  if (path_diffs) {
    printf("%d range queries evaluated differently by columns and step by step\n", path_diffs);
    return 1;
  }
  if ((require_core && cf > 0) || (require_all && tf > 0)) {
    return 1;
  }
  return 0;
}
