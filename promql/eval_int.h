/* eval_int.h - evaluator internals shared by eval.c and funcs.c. */
#ifndef RT_PQL_EVAL_INT_H
#define RT_PQL_EVAL_INT_H

#include <setjmp.h>
#include <string.h>

#include "promql/pql_int.h"

/* A label set: sorted pairs plus its hash. Strings live in an arena of the query. */
typedef struct pql_ls {
  uint32_t n;
  uint32_t stable;   /* lives in the query arena for the whole query (cacheable by address) */
  uint64_t hash;
  rt_label l[];
} pql_ls;

typedef struct smp {
  const pql_ls *m;
  double v;
  int64_t t;      /* sample time for selector output; evaluation time otherwise */
  bool drop;      /* __name__ is removed at the end of the query */
  uint32_t sid;   /* > 0: m is the series q->sid_m[sid] of a column (per-query tables index by it) */
  const pql_hist *h; /* native histogram sample (v unused) */
} smp;
_Static_assert(sizeof(smp) == 40, "smp stays 40 bytes: sid lives in drop's padding");

typedef struct vec {
  smp *s;
  size_t n, cap;
} vec;

typedef struct rser {
  const pql_ls *m;
  const pql_point *p;
  size_t n;
  bool drop;
  /* anchored/smoothed selectors: p also holds the neighbour before the window (before) and,
   * for smoothed, the one after it (after) */
  uint8_t ext;
  bool before, after;
  bool rising; /* no point is below its predecessor (known for a column's series): no counter resets */
} rser;

typedef struct val {
  pql_type type;
  double num;
  const char *str;
  vec v;
  rser *mx;
  size_t nmx;
  /* matrix window (for range functions): (wstart, wend] */
  int64_t wstart, wend, range;
} val;

typedef struct fser {
  const pql_ls *m;
  pql_point *p;
  size_t n, cap;
  bool has_stale;
  bool has_hist;
  size_t hint_hi, hint_lo; /* positions found at the previous step: steps move forward */
} fser;

typedef struct pql_col pql_col;

typedef struct slot {
  fser *s;
  size_t n, cap;
  int64_t mint, maxt;
  bool used;
  bool fetched;
  pql_col *col; /* range queries: the selector's (or its range function's) column evaluation */
} slot;

/* Inner results of a subquery by evaluation time, shared by all outer steps (query arena). */
typedef struct sqcache {
  int64_t *ts;
  vec *vecs;
  size_t n, cap;
  uint64_t *lk;          /* label hash -> label set copied to the query arena */
  const pql_ls **lv;
  size_t ln, lcap;
} sqcache;

typedef struct qctx {
  const pql_storage *st;
  pql_opts o;
  rt_arena *qa;   /* query lifetime: fetched series */
  rt_arena *sa;   /* per step */
  rt_arena *ca;   /* column evaluation: scratch of one series */
  rt_arena *sa_step; /* while a column is filled, sa is ca and this holds the step arena */
  slot *slots;
  int nslots;
  sqcache *sqc;
  int nsubqs;
  int64_t start, end, interval;
  bool range;
  jmp_buf jb;
  char err[2048];
  const char *errtype;
  char **warns;
  size_t nwarns, capwarns;
  char **infos;
  size_t ninfos, capinfos;
  const char *query;
  int64_t samples_total;
  int64_t cur_samples;
  int64_t peak_samples;
  uint64_t t_eval0;     /* when evaluation (after fetching) started; 0 = not yet */
  uint64_t deadline_ns;
  unsigned steps;
  int hstats;           /* > 0 while evaluating the argument of histogram_count/sum/avg: selectors
                           set reset hints from the previous sample, as Prometheus' stats reads do */
  /* stable label set -> the same without __name__ (query arena), by address */
  uintptr_t *dn_k;
  const pql_ls **dn_v;
  size_t dn_n, dn_cap;
  /* (aggregation or binary operator node, stable label set) -> grouping or matching signature, by address */
  /* series of columns by sid (1..nsid), and per aggregation/binary operator node the
   * signature of each (computed on first use) */
  const pql_ls **sid_m;
  uint32_t nsid;
  int32_t *sid_os[2];   /* range driver: output series of (drop, sid), -1 for not yet known */
  struct sigtab *sigtabs;
  size_t nsigtabs, capsigtabs;
  uintptr_t *gk_e, *gk_m;
  uint64_t *gk_v;
  size_t gk_n, gk_cap;
  struct hq_note *hq_notes; /* histogram_quantile monotonicity fixes, merged per metric (funcs.c) */
} qctx;

_Noreturn void pql_ev_fail(qctx *q, const char *errtype, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void pql_ev_annot(qctx *q, bool warn, const pql_expr *pos, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void *pql_ev_alloc(qctx *q, size_t n);
char *pql_ev_strdup(qctx *q, const char *s, size_t n);
void pql_vec_push(qctx *q, vec *v, const pql_ls *m, double val, int64_t t, bool drop);
const pql_ls *pql_ls_make(qctx *q, const rt_label *l, size_t n); /* l sorted; copies the array only */
uint64_t pql_ls_hash(const rt_label *l, size_t n);
const char *pql_ls_get(const pql_ls *m, const char *name);
/* Returns a copy of m with `name` set to value (value "" deletes). */
const pql_ls *pql_ls_set(qctx *q, const pql_ls *m, const char *name, const char *value);
const pql_ls *pql_ls_drop_name(qctx *q, const pql_ls *m);
void pql_ls_string(const pql_ls *m, rt_buf *b);
val pql_ev(qctx *q, const pql_expr *e, int64_t t);
val pql_call(qctx *q, const pql_expr *e, int64_t t);
/* Turns the merged histogram_quantile monotonicity notes into infos; once, when the query ends. */
void pql_hq_flush_notes(qctx *q);
void pql_check_dups(qctx *q, const vec *v);
void pql_kahan_inc(double inc, double *sum, double *c);
double pql_quantile(double qv, double *vals, size_t n);
int64_t pql_at_time(qctx *q, const pql_expr *e, int64_t t);
void pql_info_series(qctx *q, const pql_expr *e, int64_t ts, vec *out);
int64_t pql_off_of(qctx *q, const pql_expr *e);

/* Column evaluation of range queries (eval.c): selectors and range functions over matrix
 * selectors evaluated series by series over blocks of steps. pql_col_of() returns the column
 * evaluation of selector or call e, or NULL when e is evaluated step by step. */
pql_col *pql_col_of(qctx *q, const pql_expr *e);
/* Takes the place of the matrix argument at step time t: counts the window points in
 * cur_samples, as the matrix selector would. */
void pql_col_windows(qctx *q, pql_col *c, int64_t t);
/* Pushes the range function's values at step time t onto out (drop: the samples' __name__ flag);
 * marg is the matrix argument (annotation position). */
void pql_col_range_vec(qctx *q, pql_col *c, const pql_expr *marg, int64_t t, bool drop, vec *out);
/* How a column evaluates a range function (funcs.c fills it in). */
typedef struct pql_colfn {
  const pql_expr *ms; /* the matrix selector argument */
  double a1, a2;      /* the literal arguments (predict_linear's t, quantile_over_time's phi, ...) */
  bool notes;         /* rate/increase: "might not be a counter" per series */
  int slide;          /* max_over_time 1, min_over_time -1: a monotonic queue over the window */
} pql_colfn;
/* funcs.c: whether call e is a range function over a plain matrix selector that a column can
 * evaluate (every other argument a number literal); fills *out. */
bool pql_call_columnar(const pql_expr *e, pql_colfn *out);
/* funcs.c: the range function of call e over window s of matrix m at evaluation time t. */
double pql_range_fn(qctx *q, const pql_expr *e, const val *m, const rser *s, double a1, double a2, bool *ok, int64_t t);
/* funcs.c: rate/increase's "metric might not be a counter" info for series m. */
void pql_counter_note(qctx *q, const pql_expr *marg, const pql_ls *m);

void pql_vec_push_h(qctx *q, vec *v, const pql_ls *m, const pql_hist *h, int64_t t, bool drop);

/* native histograms (hist.c); results live in the step arena */
pql_hist *pql_hist_dup_heap(const pql_hist *h);
pql_hist *pql_hist_dup_arena(rt_arena *a, const pql_hist *h);
pql_hist *pql_hist_copy(qctx *q, const pql_hist *h);
pql_hist *pql_hist_add(qctx *q, const pql_hist *a, const pql_hist *b, double sign, int *why, bool *cvfix);
pql_hist *pql_hist_scale(qctx *q, const pql_hist *h, double f);
bool pql_hist_same(const pql_hist *a, const pql_hist *b);
void pql_hist_string(const pql_hist *h, rt_buf *b);
pql_hist *pql_hist_trim(qctx *q, const pql_hist *h, double c, bool upper);
pql_hist *pql_hist_div(qctx *q, const pql_hist *h, double f);
bool pql_hist_detect_reset(qctx *q, const pql_hist *cur, const pql_hist *prev);
double pql_hist_quantile(qctx *q, double qv, const pql_hist *h, int *naninfo);
double pql_hist_fraction(qctx *q, double lower, double upper, const pql_hist *h, bool *naninfo);
double pql_hist_stdvar(qctx *q, const pql_hist *h);

static inline bool pql_is_stale(double v) {
  uint64_t b;
  memcpy(&b, &v, sizeof b);
  return b == RT_STALE_NAN_BITS;
}
#define PQL_STALE(v) pql_is_stale(v)
/* qsort that tolerates empty (NULL) arrays. */
#define PQL_QSORT(b, n, s, c) \
  do { \
    if ((n) > 1) { \
      qsort((b), (n), (s), (c)); \
    } \
  } while (0)

#endif
