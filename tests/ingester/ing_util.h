/* ing_util.h - helpers for the ingester tests: build push/select requests, read samples back. */
#ifndef RT_TEST_ING_UTIL_H
#define RT_TEST_ING_UTIL_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/chunk.h"
#include "ingester/ingester.h"

static inline void tu_rm_rf(const char *path) {
  DIR *d = opendir(path);
  if (!d) {
    unlink(path);
    return;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) {
      continue;
    }
    char p[4096];
    if (snprintf(p, sizeof p, "%s/%s", path, e->d_name) >= (int)sizeof p) {
      continue;
    }
    struct stat st;
    if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
      tu_rm_rf(p);
    } else {
      unlink(p);
    }
  }
  closedir(d);
  rmdir(path);
}

static inline char *tu_tmpdir(void) {
  char tmpl[] = "/tmp/ringtail-ing-XXXXXX";
  char *d = mkdtemp(tmpl);
  cr_assert_not_null(d);
  return strdup(d);
}

static inline ing_config tu_cfg(const char *dir) {
  ing_config c = {.data_dir = dir, .ooo_window_ms = 0, .wal_sync = true, .chunk_max_samples = 120,
                  .chunk_max_age_ms = 2 * 3600 * 1000};
  return c;
}

/* A push request under construction (all memory from the arena). */
typedef struct tu_push {
  rt_arena *a;
  Ringtail__PushRequest req;
  size_t cap;
} tu_push;

static inline void tu_push_init(tu_push *p, rt_arena *a, const char *tenant) {
  memset(p, 0, sizeof *p);
  p->a = a;
  ringtail__push_request__init(&p->req);
  p->req.tenant = (char *)tenant;
  p->cap = 64;
  p->req.timeseries = rt_arena_alloc(a, p->cap * sizeof *p->req.timeseries);
}

/* Adds a series: labels as "name=value,name=value" (already sorted), then n (t, v) pairs. */
static inline Prometheus__TimeSeries *tu_series(tu_push *p, const char *labels, size_t n,
                                                const int64_t *ts, const double *vs) {
  if (p->req.n_timeseries == p->cap) {
    Prometheus__TimeSeries **nt = rt_arena_alloc(p->a, p->cap * 2 * sizeof *nt);
    memcpy(nt, p->req.timeseries, p->cap * sizeof *nt);
    p->req.timeseries = nt;
    p->cap *= 2;
  }
  Prometheus__TimeSeries *s = rt_arena_alloc(p->a, sizeof *s);
  prometheus__time_series__init(s);
  char *copy = rt_arena_strndup(p->a, labels, strlen(labels));
  s->labels = rt_arena_alloc(p->a, 64 * sizeof *s->labels);
  char *save = NULL;
  for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(tok, '=');
    Prometheus__Label *l = rt_arena_alloc(p->a, sizeof *l);
    prometheus__label__init(l);
    *eq = 0;
    l->name = tok;
    l->value = eq + 1;
    s->labels[s->n_labels++] = l;
  }
  s->samples = rt_arena_alloc(p->a, (n ? n : 1) * sizeof *s->samples);
  for (size_t i = 0; i < n; i++) {
    Prometheus__Sample *x = rt_arena_alloc(p->a, sizeof *x);
    prometheus__sample__init(x);
    x->timestamp = ts[i];
    x->value = vs[i];
    s->samples[s->n_samples++] = x;
  }
  p->req.timeseries[p->req.n_timeseries++] = s;
  return s;
}

/* Pushes one sample to one series; returns the rt_err and fills resp. */
static inline rt_err tu_push1(ing_ingester *ing, const char *tenant, const char *labels, int64_t t,
                              double v, Ringtail__PushResponse *resp, rt_arena *a) {
  tu_push p;
  tu_push_init(&p, a, tenant);
  tu_series(&p, labels, 1, &t, &v);
  return ing_push(ing, &p.req, resp, a);
}

/* Matchers: "name=value", "name!=value", "name=~re", "name!~re", separated by ';'. */
static inline void tu_matchers(rt_arena *a, const char *spec, Prometheus__LabelMatcher ***out,
                               size_t *n) {
  *out = rt_arena_alloc(a, 16 * sizeof **out);
  *n = 0;
  if (!spec || !spec[0]) {
    return;
  }
  char *copy = rt_arena_strndup(a, spec, strlen(spec));
  char *save = NULL;
  for (char *tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
    Prometheus__LabelMatcher *m = rt_arena_alloc(a, sizeof *m);
    prometheus__label_matcher__init(m);
    char *op = strpbrk(tok, "=!");
    size_t nl = (size_t)(op - tok);
    m->name = rt_arena_strndup(a, tok, nl);
    if (op[0] == '!' && op[1] == '~') {
      m->type = PROMETHEUS__LABEL_MATCHER__TYPE__NRE;
      m->value = op + 2;
    } else if (op[0] == '!') {
      m->type = PROMETHEUS__LABEL_MATCHER__TYPE__NEQ;
      m->value = op + 2;
    } else if (op[1] == '~') {
      m->type = PROMETHEUS__LABEL_MATCHER__TYPE__RE;
      m->value = op + 2;
    } else {
      m->type = PROMETHEUS__LABEL_MATCHER__TYPE__EQ;
      m->value = op + 1;
    }
    (*out)[(*n)++] = m;
  }
}

static inline rt_err tu_select(ing_ingester *ing, const char *tenant, const char *matchers,
                               int64_t mint, int64_t maxt, Ringtail__SelectResponse *resp,
                               rt_arena *a) {
  Ringtail__SelectRequest req;
  ringtail__select_request__init(&req);
  req.tenant = (char *)tenant;
  tu_matchers(a, matchers, &req.matchers, &req.n_matchers);
  req.mint = mint;
  req.maxt = maxt;
  return ing_select(ing, &req, resp, a);
}

/* Formats a select response's labels as "name=value,..." for series i. */
static inline const char *tu_labels_str(const Ringtail__SeriesChunks *s, char *buf, size_t cap) {
  size_t k = 0;
  buf[0] = 0;
  for (size_t i = 0; i < s->n_labels; i++) {
    k += (size_t)snprintf(buf + k, cap - k, "%s%s=%s", i ? "," : "", s->labels[i]->name,
                          s->labels[i]->value);
  }
  return buf;
}

/* Decodes every sample of a series (chunks merged by time; later chunks win ties). Returns
 * the count; fills up to cap. */
static inline size_t tu_samples(const Ringtail__SeriesChunks *s, int64_t *ts, double *vs, size_t cap) {
  size_t n = 0;
  for (size_t c = 0; c < s->n_chunks; c++) {
    rt_chunk_iter it;
    rt_chunk_iter_init(&it, s->chunks[c]->data.data, s->chunks[c]->data.len);
    int64_t t;
    double v;
    while (rt_chunk_iter_next(&it, &t, &v)) {
      if (n < cap) {
        ts[n] = t;
        vs[n] = v;
      }
      n++;
    }
    cr_assert_not(rt_chunk_iter_err(&it));
  }
  if (n > cap) {
    return n;
  }
  /* insertion sort by time */
  for (size_t i = 1; i < n; i++) {
    int64_t t = ts[i];
    double v = vs[i];
    size_t j = i;
    while (j > 0 && ts[j - 1] > t) {
      ts[j] = ts[j - 1];
      vs[j] = vs[j - 1];
      j--;
    }
    ts[j] = t;
    vs[j] = v;
  }
  return n;
}

#endif
