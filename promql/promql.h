/* promql.h - PromQL: parser, printer and evaluator (Prometheus 3 semantics).
 *
 * The engine does not know where samples come from: the caller hands it a pql_storage whose
 * select() copies matching series into a pql_sink. Tests use the in-memory pql_memstore below;
 * the querier plugs in its fan-out to the ingesters.
 */
#ifndef RT_PROMQL_H
#define RT_PROMQL_H

#include "common/buf.h"
#include "common/labels.h"
#include "common/rt.h"

/* ---- parsing and printing ---- */

typedef struct pql_expr pql_expr;

/* Value types of expressions and results. */
typedef enum pql_type {
  PQL_NONE = 0,
  PQL_SCALAR,
  PQL_VECTOR,
  PQL_MATRIX,
  PQL_STRING
} pql_type;

/* Parses `query`. On success *out is a new tree (free with pql_expr_free()). On RT_EINVAL
 * writes a Prometheus-style message ("1:5: parse error: unexpected ...") to errbuf. */
rt_err pql_parse(const char *query, pql_expr **out, char *errbuf, size_t errlen);
void pql_expr_free(pql_expr *e);
pql_type pql_expr_type(const pql_expr *e);
/* Appends the canonical form (as /api/v1/format_query answers) to out. Borrows e. */
void pql_format(const pql_expr *e, rt_buf *out);
/* Appends the syntax tree as JSON (as /api/v1/parse_query answers) to out. Borrows e. */
void pql_expr_json(const pql_expr *e, rt_buf *out);
/* True when the expression calls start(), end(), range() or step() anywhere (used by tests). */
bool pql_expr_uses_query_times(const pql_expr *e);

/* Parses a Prometheus duration ("1h30m", "100ms"); RT_EINVAL when malformed. */
rt_err pql_parse_duration(const char *s, size_t n, int64_t *ms);

/* ---- storage interface ---- */

typedef struct pql_sink pql_sink;

/* A native histogram sample (float counts). Buckets are kept expanded: index i of a standard
 * schema s covers (2^(2^-s*(i-1)), 2^(2^-s*i)]; with custom buckets (schema -53) index i covers
 * (cv[i-1], cv[i]] and index ncv is the +Inf bucket. Indexes ascend; counts are absolute. */
enum { PQL_HINT_UNKNOWN = 0, PQL_HINT_RESET, PQL_HINT_NOT_RESET, PQL_HINT_GAUGE };
#define PQL_SCHEMA_CUSTOM (-53)
typedef struct pql_hist {
  int32_t schema;
  uint8_t hint;             /* PQL_HINT_* */
  double zt, zc;            /* zero threshold and zero bucket count */
  double count, sum;
  uint32_t np, nn, ncv;
  int32_t *pi, *ni;         /* bucket indexes */
  double *pb, *nb;          /* bucket counts */
  double *cv;               /* custom bucket upper bounds */
} pql_hist;
/* Bounds of bucket idx of h (neg: the negative bucket with that index). */
double pql_hist_lower(const pql_hist *h, int32_t idx, bool neg);
double pql_hist_upper(const pql_hist *h, int32_t idx, bool neg);

/* Adds one series with `count` samples (timestamps ascending, ms) to the sink. The labels must
 * be sorted by name and include __name__ when the series has one. Copies everything; borrows
 * all arguments. May be called any number of times from one select(). */
rt_err pql_sink_add(pql_sink *sink, const rt_label *labels, size_t nlabels, const int64_t *ts,
                    const double *vals, size_t count);

/* Same with points laid out as pql_point (t, v) pairs. */
typedef struct pql_point pql_point;
rt_err pql_sink_add_points(pql_sink *sink, const rt_label *labels, size_t nlabels, const pql_point *pts,
                           size_t count);

/* Same with float samples laid out as (t, v) pairs. */
typedef struct pql_tv {
  int64_t t;
  double v;
} pql_tv;
rt_err pql_sink_add_tv(pql_sink *sink, const rt_label *labels, size_t nlabels, const pql_tv *tvs, size_t count);

typedef struct pql_storage {
  void *ctx;
  /* Finds the series matching all matchers and adds their samples with mint <= t <= maxt
   * to `sink` (stale markers included). Borrows everything; returns RT_OK or an error that
   * aborts the query. Called from the thread that runs the query. */
  rt_err (*select)(void *ctx, const rt_matcher *matchers, size_t n, int64_t mint, int64_t maxt,
                   pql_sink *sink);
} pql_storage;

/* ---- evaluation ---- */

typedef struct pql_opts {
  int64_t lookback_ms;        /* default 5m */
  int64_t subquery_step_ms;   /* default step of subqueries without one; default 1m */
  int64_t max_samples;        /* samples held at once; 0 = 50,000,000 */
  int64_t timeout_ms;         /* 0 = none */
  bool step_by_step;          /* range queries: every node evaluated step by step (no column
                                 evaluation; tests compare the two) */
  size_t column_cells;        /* column evaluation: table cells (steps x series) held at once;
                                 0 = 1M (tests use small tables to cross block edges) */
} pql_opts;

struct pql_point {
  int64_t t;
  double v;
  const pql_hist *h;  /* a native histogram sample when set (v is then unused) */
};

typedef struct pql_series {
  rt_label *labels;   /* sorted */
  size_t nlabels;
  pql_point *points;  /* one point for vector results */
  size_t npoints;
} pql_series;

typedef struct pql_result {
  pql_type type;      /* PQL_NONE when `error` is set */
  double scalar;      /* PQL_SCALAR */
  int64_t t;          /* evaluation time of scalar and string results */
  const char *str;    /* PQL_STRING */
  pql_series *series; /* PQL_VECTOR, PQL_MATRIX */
  size_t nseries;
  /* Error: Prometheus' errorType ("bad_data", "execution", "timeout", "canceled",
   * "internal") and message; NULL on success. */
  const char *error_type;
  const char *error;
  const char **warnings; /* annotations "PromQL warning: ..." */
  size_t nwarnings;
  const char **infos;    /* annotations "PromQL info: ..." */
  size_t ninfos;
  int64_t samples_total; /* samples read from storage (stats) */
  int64_t samples_peak;  /* most samples held by one step (stats) */
  uint64_t prep_ns;      /* fetching from storage */
  uint64_t eval_ns;      /* evaluation after fetching */
  size_t ncolumns;       /* range queries: selectors and range functions evaluated by columns */
} pql_result;

/* Runs an instant query at t (ms). Returns RT_OK and a result (which may carry a query error;
 * free with pql_result_free()); RT_ENOMEM only when not even a result could be made.
 * Borrows storage and opts (NULL = defaults). */
rt_err pql_query_instant(const pql_storage *st, const pql_opts *opts, const char *query,
                         int64_t t, pql_result **out);
/* Runs a range query from start to end (inclusive) every step ms. Same contract. */
rt_err pql_query_range(const pql_storage *st, const pql_opts *opts, const char *query,
                       int64_t start, int64_t end, int64_t step, pql_result **out);
/* Same as the two above but with an already parsed expression (borrowed). */
rt_err pql_eval(const pql_storage *st, const pql_opts *opts, const pql_expr *e, int64_t start,
                int64_t end, int64_t step, bool range, pql_result **out);
void pql_result_free(pql_result *r);

/* ---- in-memory storage (tests, rule unit tests) ---- */

typedef struct pql_memstore pql_memstore;
pql_memstore *pql_memstore_create(void);
void pql_memstore_destroy(pql_memstore *m);
/* Appends one sample to the series with these labels (sorted or not; copied). A sample at a
 * timestamp already present replaces it; samples may come in any order. */
rt_err pql_memstore_add(pql_memstore *m, const rt_label *labels, size_t n, int64_t t, double v);
/* The same with a native histogram sample (deep-copied; borrows h). */
rt_err pql_memstore_add_hist(pql_memstore *m, const rt_label *labels, size_t n, int64_t t, const pql_hist *h);
/* A storage view of m; valid while m lives. */
pql_storage pql_memstore_storage(pql_memstore *m);

/* ---- HTTP API ---- */

typedef struct rt_http_server rt_http_server;
typedef struct qry_querier qry_querier;
typedef struct pql_api pql_api;
typedef struct qry_budget qry_budget;

/* Where the API finds a tenant's samples. storage_for fills *out for one query (called on the
 * request's thread); storage_done, when set, releases it after the query. */
typedef struct pql_api_backend {
  rt_err (*storage_for)(void *ctx, const char *tenant, pql_storage *out);
  void (*storage_done)(void *ctx, pql_storage *st);
  void *ctx;
  pql_opts opts;   /* engine options; timeout_ms 0 = 2 minutes */
  int64_t split_interval_ms; /* > 0: range queries run as parallel sub-queries over parts of
                                this length aligned to UTC (see querier/DESIGN.md); 0 = off.
                                storage_for and storage_done are then called from several
                                threads at once. */
  uint32_t total_shards;     /* > 1 with storage_for_shard: aggregations that allow it run as
                                this many series-shard sub-queries in parallel; 0 = off */
  /* Like storage_for, for the series whose hash % count == index only (count 0: all). Called
   * from several threads at once; released with storage_done. */
  rt_err (*storage_for_shard)(void *ctx, const char *tenant, uint32_t index, uint32_t count, pql_storage *out);
  /* When set: gives a storage made by storage_for[_shard] the query's read-limit budget (a
   * qry_budget, shared by all sub-queries of the query; see querier.h). */
  void (*storage_bind)(void *ctx, pql_storage *st, qry_budget *budget);
} pql_api_backend;

/* Adds /api/v1/query, /api/v1/query_range, /api/v1/format_query and /api/v1/parse_query (GET and
 * POST, also under /prometheus) to s. Copies be. *out is new even when a route could not be
 * added; the caller destroys it with pql_api_destroy() after the server is destroyed. Call
 * before rt_http_server_start(). */
rt_err pql_api_register(rt_http_server *s, const pql_api_backend *be, pql_api **out);
/* The same with the querier as the storage (tenant from X-Scope-OrgID). Borrows q. */
rt_err pql_api_register_querier(qry_querier *q, rt_http_server *s, pql_api **out);
void pql_api_destroy(pql_api *api);
/* Appends a success answer for r as Prometheus' JSON (data, warnings, infos) to b; limit > 0
 * truncates the series. Borrows r. */
void pql_result_json(const pql_result *r, int64_t limit, rt_buf *b);
/* The same, with Prometheus' "stats" object (timings, samples) inside data when stats is set. */
void pql_result_json_stats(const pql_result *r, int64_t limit, bool stats, rt_buf *b);

#endif
