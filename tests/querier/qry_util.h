/* qry_util.h - shared fixture for the querier tests: real ingesters in temporary directories,
 * served over inproc RPC, filled with a small known data set. */
#ifndef RT_TEST_QRY_UTIL_H
#define RT_TEST_QRY_UTIL_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/rpc.h"
#include "ingester/ingester.h"
#include "querier/querier.h"
#include "querier/querier_int.h"

static inline void qt_rm_rf(const char *path) {
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
    snprintf(p, sizeof p, "%s/%s", path, e->d_name);
    struct stat st;
    if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
      qt_rm_rf(p);
    } else {
      unlink(p);
    }
  }
  closedir(d);
  rmdir(path);
}

typedef struct qt_ing {
  char dir[64];
  ing_ingester *ing;
} qt_ing;

static inline void qt_ing_start(qt_ing *q, const char *endpoint) {
  snprintf(q->dir, sizeof q->dir, "/tmp/ringtail-qry-XXXXXX");
  cr_assert_not_null(mkdtemp(q->dir));
  ing_config cfg = {.data_dir = q->dir, .ooo_window_ms = 0, .wal_sync = false,
                    .chunk_max_samples = 120, .chunk_max_age_ms = 2 * 3600 * 1000};
  cr_assert_eq(ing_create(&cfg, &q->ing), RT_OK);
  cr_assert_eq(ing_serve(q->ing, endpoint, 2), RT_OK);
}

static inline void qt_ing_stop(qt_ing *q) {
  ing_destroy(q->ing);
  qt_rm_rf(q->dir);
}

/* Pushes one series: labels "a=1,b=2" (any order), n samples t0, t0+step, ... with values
 * v0, v0+dv, ... */
static inline void qt_push(qt_ing *q, const char *tenant, const char *labels, int64_t t0,
                           int64_t step, size_t n, double v0, double dv) {
  rt_arena *a = rt_arena_create(0);
  Ringtail__PushRequest req = RINGTAIL__PUSH_REQUEST__INIT;
  req.tenant = (char *)tenant;
  Prometheus__TimeSeries ts = PROMETHEUS__TIME_SERIES__INIT;
  Prometheus__TimeSeries *tsp = &ts;
  req.n_timeseries = 1;
  req.timeseries = &tsp;
  char *copy = rt_arena_strndup(a, labels, strlen(labels));
  Prometheus__Label **ls = rt_arena_alloc(a, 32 * sizeof *ls);
  size_t nl = 0;
  for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(tok, '=');
    cr_assert_not_null(eq);
    *eq = 0;
    Prometheus__Label *l = rt_arena_alloc(a, sizeof *l);
    prometheus__label__init(l);
    l->name = tok;
    l->value = eq + 1;
    ls[nl++] = l;
  }
  /* sorted by name, as remote-write requires */
  for (size_t i = 1; i < nl; i++) {
    for (size_t j = i; j > 0 && strcmp(ls[j - 1]->name, ls[j]->name) > 0; j--) {
      Prometheus__Label *t = ls[j];
      ls[j] = ls[j - 1];
      ls[j - 1] = t;
    }
  }
  ts.labels = ls;
  ts.n_labels = nl;
  Prometheus__Sample **ss = rt_arena_alloc(a, (n ? n : 1) * sizeof *ss);
  for (size_t i = 0; i < n; i++) {
    Prometheus__Sample *s = rt_arena_alloc(a, sizeof *s);
    prometheus__sample__init(s);
    s->timestamp = t0 + (int64_t)i * step;
    s->value = v0 + (double)i * dv;
    ss[i] = s;
  }
  ts.samples = ss;
  ts.n_samples = n;
  Ringtail__PushResponse resp = RINGTAIL__PUSH_RESPONSE__INIT;
  cr_assert_eq(ing_push(q->ing, &req, &resp, a), RT_OK);
  cr_assert_eq(resp.n_errors, 0, "push of %s: %s", labels,
               resp.n_errors ? resp.errors[0]->message : "");
  rt_arena_destroy(a);
}

static inline void qt_push_meta(qt_ing *q, const char *tenant, const char *metric, int type,
                                const char *help, const char *unit) {
  rt_arena *a = rt_arena_create(0);
  Ringtail__PushRequest req = RINGTAIL__PUSH_REQUEST__INIT;
  req.tenant = (char *)tenant;
  Prometheus__MetricMetadata m = PROMETHEUS__METRIC_METADATA__INIT;
  m.type = type;
  m.metric_family_name = (char *)metric;
  m.help = (char *)help;
  m.unit = (char *)unit;
  Prometheus__MetricMetadata *mp = &m;
  req.metadata = &mp;
  req.n_metadata = 1;
  Ringtail__PushResponse resp = RINGTAIL__PUSH_RESPONSE__INIT;
  cr_assert_eq(ing_push(q->ing, &req, &resp, a), RT_OK);
  rt_arena_destroy(a);
}

#endif
