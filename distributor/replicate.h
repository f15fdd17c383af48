/* replicate.h - the distributor's only write path, replication over a ring (the gossip ring or
 * a static one): each series goes to the ingesters of its replication set, one Push per
 * ingester, and a write succeeds when every series reached its quorum. See docs/cluster.md. */
#ifndef RT_DIST_REPLICATE_H
#define RT_DIST_REPLICATE_H

#include "common/arena.h"
#include "common/rpc.h"
#include "distributor/distributor.h"
#include "ring/ring.h"

/* ------------------------------------------------------------------ plan (pure) */

/* The calls of one request: group g goes to instance inst[g] of the snapshot and carries the
 * series series[g][0 .. nseries[g]) (indexes into the request, ascending). */
typedef struct dist_plan {
  size_t nseries;           /* series of the request */
  uint8_t *nrep;            /* per series: replicas it was sent to */
  uint8_t *quorum;          /* per series: successes it needs */
  bool *unavailable;        /* per series: the ring had fewer live replicas than the quorum
                               (nothing is sent; the series fails) */
  size_t ngroups;
  uint32_t *inst;           /* per group: instance index in the snapshot */
  uint32_t **series;        /* per group */
  size_t *nseries_of;       /* per group */
} dist_plan;

/* Groups series by ingester: for each token (tokens[i] is series i's ring token) takes the
 * RING_OP_WRITE replication set from snap (borrowed) and adds the series to the group of each
 * replica. Everything is allocated from `arena`. RT_ENOMEM. Blocking-free. */
rt_err dist_plan_build(const ring_snapshot *snap, const uint32_t *tokens, size_t n,
                       rt_arena *arena, dist_plan *out);

/* Quorum verdicts from the groups' states (state[g]: 1 succeeded, -1 failed, 0 pending).
 * Writes 1 (quorum reached), -1 (quorum cannot be reached any more) or 0 (undecided) per series
 * to verdict (may be NULL). Returns the number of series that failed; *undecided (may be
 * NULL) gets the number still open. */
size_t dist_plan_eval(const dist_plan *p, const int8_t *state, int8_t *verdict,
                      size_t *undecided);

/* ------------------------------------------------------------------ replicator */

typedef struct dist_repl dist_repl;

/* Creates a replicator that reads placement from r (borrowed; must outlive it) and pushes with
 * timeout_ms per ingester. Caller destroys with dist_repl_destroy() (it waits for pushes that
 * are still running after their request was answered). */
rt_err dist_repl_create(ring *r, int timeout_ms, dist_repl **out);
void dist_repl_destroy(dist_repl *rp);

/* Sends the validated request to the replicas of each series and waits until every series has
 * reached its quorum or cannot any more. Returns 0 when all reached it (the ingesters'
 * per-series data errors merged into rep, each series' from the first replica that answered
 * for it), or the 5xx status with the reason in msg; a request that fails waits for its calls
 * still running (up to the timeout). *accepted gets the samples stored (each series counted
 * once), *failed_calls the ingester calls that failed. Borrows everything; arena is the
 * request's. Thread-safe. */
int dist_repl_push(dist_repl *rp, const char *tenant, const dist_request *req, rt_arena *arena,
                   dist_report *rep, rt_buf *msg, uint64_t *accepted, uint64_t *failed_calls);

/* The HA arbiters of `token`: the RING_OP_WRITE replication set's RPC clients (up to cap,
 * from the replicator's pool) and the answers that decide, a majority of the set
 * (ring_snapshot_majority). Returns how many. */
size_t dist_repl_arbiters(dist_repl *rp, uint32_t token, rt_rpc_client **out, size_t cap,
                          int *quorum);

#endif
