/* split.h - running one PromQL query as parallel sub-queries and merging their results
 * (range splitting by time interval; see querier/DESIGN.md). Internal to promql/. */
#ifndef RT_PQL_SPLIT_H
#define RT_PQL_SPLIT_H

#include "promql/promql.h"
#include "promql/shard.h"

/* How a sub-query gets its storage: called on the sub-query's thread; done (may be NULL)
 * releases what get made. */
typedef struct pql_split_src {
  rt_err (*get)(void *ctx, const char *tenant, pql_storage *out);
  void (*done)(void *ctx, pql_storage *st);
  void *ctx;
  const char *tenant;
  const pql_shard_src *shard; /* set with shards > 1: a part whose expression allows it is
                                 evaluated as that many series shards (pql_shard_eval) */
  uint32_t shards;
} pql_split_src;

/* Sub-queries in flight at once per split query. */
#define PQL_SPLIT_PARALLEL 4

/* A merged answer: r is a view over sub-results kept alive until pql_split_free(). */
typedef struct pql_split pql_split;
const pql_result *pql_split_result(const pql_split *s);
void pql_split_free(pql_split *s);

/* True when a range query of e over [start, end] with this step and split interval (ms, > 0)
 * would be split into more than one sub-query and splitting gives the same answer (the query
 * does not depend on its own start or end: no @ start()/end(), no query-time functions). */
bool pql_split_applies(const pql_expr *e, int64_t start, int64_t end, int64_t step, int64_t interval);

/* Evaluates the range query as sub-queries over interval-aligned (UTC) parts of the step grid,
 * at most PQL_SPLIT_PARALLEL at once, and concatenates each series' points. Borrows every
 * argument. On RT_OK *out is new (its result may carry the query's error). */
rt_err pql_split_eval(const pql_split_src *src, const pql_opts *opts, const pql_expr *e, int64_t start,
                      int64_t end, int64_t step, int64_t interval, pql_split **out);

#endif
