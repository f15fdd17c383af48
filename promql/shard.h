/* shard.h - aggregations evaluated as parallel series-shard sub-queries and merged (see
 * querier/DESIGN.md). Internal to promql/. */
#ifndef RT_PQL_SHARD_H
#define RT_PQL_SHARD_H

#include "promql/promql.h"

/* Storage of one shard: only the series whose hash % count == index. Called on the
 * sub-query's thread; done (may be NULL) releases what get made. */
typedef struct pql_shard_src {
  rt_err (*get)(void *ctx, const char *tenant, uint32_t index, uint32_t count, pql_storage *out);
  void (*done)(void *ctx, pql_storage *st);
  void *ctx;
  const char *tenant;
} pql_shard_src;

/* Shard sub-queries in flight at once. */
#define PQL_SHARD_PARALLEL 4

typedef struct pql_shard pql_shard;
const pql_result *pql_shard_result(const pql_shard *s);
void pql_shard_free(pql_shard *s);

/* True when e is sum, count, min, max, avg or group (by/without any labels; parentheses around
 * it allowed) over a chain of per-series functions, range functions, subqueries and arithmetic
 * with number literals over ONE selector that has an equality matcher on the metric name: then
 * each group's value is the merge of the groups' values over disjoint sets of series. */
bool pql_shard_applies(const pql_expr *e);

/* Evaluates e (pql_shard_applies() true) as `count` shard sub-queries, at most
 * PQL_SHARD_PARALLEL at once, and merges them per output series and timestamp: sum and count
 * add, min and max take the extreme, group is 1, avg is the sum over the count. When a shard
 * answers with a native histogram the query is evaluated once more unsharded (from
 * storage index 0 of count 0, i.e. every series). Borrows everything. On RT_OK *out is new
 * (its result may carry the query's error). */
rt_err pql_shard_eval(const pql_shard_src *src, const pql_opts *opts, const pql_expr *e, int64_t start,
                      int64_t end, int64_t step, bool range, uint32_t count, pql_shard **out);

#endif
