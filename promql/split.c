/* split.c - a range query as parallel sub-queries over interval-aligned parts of its step grid.
 *
 * Every step of a range query is evaluated on its own, so evaluating the steps of [start, end]
 * in parts and concatenating each series' points gives the unsplit answer, as long as nothing in
 * the query depends on the query's own start or end (@ start(), @ end() and the query-time
 * functions); such queries are not split. */
#include "promql/split.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"

typedef struct sub {
  int64_t start, end;
  pql_result *r;
  pql_shard *sh;          /* the part evaluated as series shards */
  const pql_result *view; /* r, or sh's result */
  rt_err rc;
} sub;

struct pql_split {
  pql_result r;
  sub *subs;
  size_t nsubs;
  rt_arena *a;
};

typedef struct job {
  const pql_split_src *src;
  const pql_opts *opts;
  const pql_expr *e;
  int64_t step;
  bool sharded;
  sub *subs;
  size_t nsubs;
  atomic_size_t next;
} job;

const pql_result *pql_split_result(const pql_split *s) { return &s->r; }

void pql_split_free(pql_split *s) {
  if (!s) {
    return;
  }
  for (size_t i = 0; i < s->nsubs; i++) {
    pql_result_free(s->subs[i].r);
    pql_shard_free(s->subs[i].sh);
  }
  rt_free(s->subs, s->nsubs * sizeof *s->subs);
  rt_arena_destroy(s->a);
  rt_free(s, sizeof *s);
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The last step of the part that begins at t: the last grid point before the next interval
 * boundary, and not after end. */
static int64_t part_end(int64_t t, int64_t end, int64_t step, int64_t interval) {
  int64_t boundary = (floor_div(t, interval) + 1) * interval;
  int64_t n = (boundary - t + step - 1) / step; /* steps t, t+step, ... < boundary */
  int64_t last = t + (n - 1) * step;
  int64_t lastall = t + ((end - t) / step) * step;
  return last < lastall ? last : lastall;
}

static size_t count_parts(int64_t start, int64_t end, int64_t step, int64_t interval) {
  size_t n = 0;
  for (int64_t t = start; t <= end; t = part_end(t, end, step, interval) + step) {
    n++;
  }
  return n;
}

bool pql_split_applies(const pql_expr *e, int64_t start, int64_t end, int64_t step, int64_t interval) {
  if (interval <= 0 || step <= 0 || end < start || pql_expr_uses_query_times(e)) {
    return false;
  }
  return part_end(start, end, step, interval) < start + ((end - start) / step) * step;
}

static void *worker(void *arg) {
  job *j = arg;
  for (;;) {
    size_t i = atomic_fetch_add(&j->next, 1);
    if (i >= j->nsubs) {
      return NULL;
    }
    sub *s = &j->subs[i];
    if (j->sharded) {
      s->rc = pql_shard_eval(j->src->shard, j->opts, j->e, s->start, s->end, j->step, true, j->src->shards, &s->sh);
      s->view = s->rc == RT_OK ? pql_shard_result(s->sh) : NULL;
      continue;
    }
    pql_storage st;
    s->rc = j->src->get(j->src->ctx, j->src->tenant, &st);
    if (s->rc != RT_OK) {
      continue;
    }
    s->rc = pql_eval(&st, j->opts, j->e, s->start, s->end, j->step, true, &s->r);
    s->view = s->r;
    if (j->src->done) {
      j->src->done(j->src->ctx, &st);
    }
  }
}

typedef struct ref {
  const pql_series *s;
  size_t sub;
} ref;

static int ref_cmp(const void *a, const void *b) {
  const ref *x = a, *y = b;
  int c = rt_labels_cmp(x->s->labels, x->s->nlabels, y->s->labels, y->s->nlabels);
  if (c) {
    return c;
  }
  return x->sub < y->sub ? -1 : x->sub > y->sub;
}

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

/* Builds s->r from the sub-results (all successful). */
static rt_err merge(pql_split *s) {
  pql_result *r = &s->r;
  r->type = PQL_MATRIX;
  size_t total = 0, nw = 0, ni = 0;
  for (size_t i = 0; i < s->nsubs; i++) {
    const pql_result *x = s->subs[i].view;
    total += x->nseries;
    nw += x->nwarnings;
    ni += x->ninfos;
    r->samples_total += x->samples_total;
    if (x->samples_peak > r->samples_peak) {
      r->samples_peak = x->samples_peak;
    }
    r->prep_ns += x->prep_ns;
    r->eval_ns += x->eval_ns;
  }
  r->warnings = rt_arena_alloc(s->a, (nw + 1) * sizeof(char *));
  r->infos = rt_arena_alloc(s->a, (ni + 1) * sizeof(char *));
  ref *refs = rt_arena_alloc(s->a, (total + 1) * sizeof *refs);
  r->series = rt_arena_alloc(s->a, (total + 1) * sizeof *r->series);
  if (!r->warnings || !r->infos || !refs || !r->series) {
    return RT_ENOMEM;
  }
  memset(r->series, 0, (total + 1) * sizeof *r->series);
  size_t k = 0;
  for (size_t i = 0; i < s->nsubs; i++) {
    const pql_result *x = s->subs[i].view;
    for (size_t j = 0; j < x->nseries; j++) {
      refs[k++] = (ref){&x->series[j], i};
    }
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
  qsort(refs, total, sizeof *refs, ref_cmp);
  for (size_t i = 0; i < total;) {
    size_t j = i, np = 0;
    while (j < total && ref_cmp(&(ref){refs[i].s, 0}, &(ref){refs[j].s, 0}) == 0) {
      np += refs[j].s->npoints;
      j++;
    }
    pql_series *o = &r->series[r->nseries++];
    o->labels = refs[i].s->labels;
    o->nlabels = refs[i].s->nlabels;
    o->points = rt_arena_alloc(s->a, (np + 1) * sizeof *o->points);
    if (!o->points) {
      return RT_ENOMEM;
    }
    for (size_t m = i; m < j; m++) {
      memcpy(o->points + o->npoints, refs[m].s->points, refs[m].s->npoints * sizeof *o->points);
      o->npoints += refs[m].s->npoints;
    }
    i = j;
  }
  return RT_OK;
}

rt_err pql_split_eval(const pql_split_src *src, const pql_opts *opts, const pql_expr *e, int64_t start,
                      int64_t end, int64_t step, int64_t interval, pql_split **out) {
  pql_split *s = rt_calloc(1, sizeof *s);
  if (!s) {
    return RT_ENOMEM;
  }
  s->nsubs = count_parts(start, end, step, interval);
  s->subs = rt_calloc(s->nsubs, sizeof *s->subs);
  s->a = rt_arena_create(16384);
  if (!s->subs || !s->a) {
    s->nsubs = s->subs ? s->nsubs : 0;
    pql_split_free(s);
    return RT_ENOMEM;
  }
  size_t k = 0;
  for (int64_t t = start; t <= end; t = s->subs[k - 1].end + step) {
    s->subs[k].start = t;
    s->subs[k].end = part_end(t, end, step, interval);
    k++;
  }
  job j = {.src = src, .opts = opts, .e = e, .step = step, .subs = s->subs, .nsubs = s->nsubs,
           .sharded = src->shard && src->shards > 1 && pql_shard_applies(e)};
  atomic_init(&j.next, 0);
  pthread_t th[PQL_SPLIT_PARALLEL];
  size_t nth = 0;
  for (size_t i = 1; i < PQL_SPLIT_PARALLEL && i < s->nsubs; i++) {
    if (pthread_create(&th[nth], NULL, worker, &j) == 0) {
      nth++;
    }
  }
  worker(&j);
  for (size_t i = 0; i < nth; i++) {
    pthread_join(th[i], NULL);
  }
  for (size_t i = 0; i < s->nsubs; i++) {
    if (s->subs[i].rc != RT_OK) {
      rt_err rc = s->subs[i].rc;
      pql_split_free(s);
      return rc;
    }
    if (s->subs[i].view->error) {
      /* the earliest part's error, as the unsplit evaluation would meet it first */
      s->r = *s->subs[i].view;
      *out = s;
      return RT_OK;
    }
  }
  rt_err rc = merge(s);
  if (rc != RT_OK) {
    pql_split_free(s);
    return rc;
  }
  *out = s;
  return RT_OK;
}
