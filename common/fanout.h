/* fanout.h - RPC calls to many peers at once, for the cluster's write and read paths.
 *
 *   rt_rpc_pool  one rt_rpc_client per endpoint, created on first use and kept (connection
 *                reuse: the client pools its sockets), for endpoints learned from the ring;
 *   rt_fanout    a set of calls that run on their own threads; the caller waits for as many
 *                answers as it needs and may leave the rest behind (they finish on their own
 *                and free what they hold), so one slow or dead peer never delays an answer
 *                that a quorum already decided. */
#ifndef RT_FANOUT_H
#define RT_FANOUT_H

#include "common/buf.h"
#include "common/rpc.h"
#include "common/rt.h"

typedef struct rt_rpc_pool rt_rpc_pool;

/* Creates an empty pool. Caller destroys with rt_rpc_pool_destroy(). */
rt_err rt_rpc_pool_create(rt_rpc_pool **out);
/* Waits for every call started by rt_fanout on a client of the pool (rt_fanout_drain), then
 * destroys the clients. NULL is fine. */
void rt_rpc_pool_destroy(rt_rpc_pool *p);
/* The client of `endpoint` (borrowed; lives as long as the pool), created on first use.
 * NULL on OOM. Thread-safe. */
rt_rpc_client *rt_rpc_pool_get(rt_rpc_pool *p, const char *endpoint);

typedef struct rt_fanout rt_fanout;

/* Creates a set for up to `cap` calls. Returns a new reference; release with
 * rt_fanout_release() (calls still running keep their own reference). */
rt_err rt_fanout_create(size_t cap, rt_fanout **out);
void rt_fanout_release(rt_fanout *f);
/* Starts call number rt_fanout_count(f) (returned through *idx, may be NULL): `method` with a
 * copy of req on client c (borrowed: it must outlive the call; pool clients do) with timeout_ms.
 * `method` must be a static string. RT_ELIMIT when cap calls were started, RT_ENOMEM. When no
 * thread can be created the call runs on the caller's thread. */
rt_err rt_fanout_start(rt_fanout *f, rt_rpc_client *c, const char *method, const void *req,
                       size_t len, int timeout_ms, size_t *idx);
size_t rt_fanout_count(rt_fanout *f);
/* Blocks until more than `seen` calls are done, every started call is done, or the monotonic
 * clock passes deadline_ns (0 = no deadline). Returns the number of calls done. */
size_t rt_fanout_wait(rt_fanout *f, size_t seen, uint64_t deadline_ns);
/* When call i is done: true, with its outcome. The reply (may be NULL) and the message (may be
 * NULL) are borrowed from f and stay valid until f is released. False while it runs. */
bool rt_fanout_result(rt_fanout *f, size_t i, rt_err *err, const rt_buf **reply,
                      const char **errmsg);
/* Waits until no fanout call is running in the process (for shutdown). */
void rt_fanout_drain(void);

#endif
