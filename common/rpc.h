/* rpc.h - request/reply over ZeroMQ with protobuf envelopes (proto/rpc.proto).
 *
 * The same code runs over inproc:// (one process) and tcp:// (a cluster). A server binds a
 * ROUTER socket and hands requests to worker threads; a client keeps a pool of DEALER sockets
 * so that many threads can call at once. */
#ifndef RT_RPC_H
#define RT_RPC_H

#include "common/buf.h"
#include "common/rt.h"

/* The process-wide ZeroMQ context (created on first use; inproc:// needs one shared context). */
void *rt_zmq_ctx(void);
void rt_zmq_ctx_term(void);

/* A method handler: decodes `req`, writes its reply message to `reply`. On error returns the
 * rt_err and may write a message to errbuf. Called on a worker thread. */
typedef rt_err (*rt_rpc_handler)(void *ctx, const uint8_t *req, size_t req_len, rt_buf *reply,
                                 char *errbuf, size_t errlen);

typedef struct rt_rpc_method {
  const char *name;     /* "ingester.Push" */
  rt_rpc_handler fn;
} rt_rpc_method;

typedef struct rt_rpc_server rt_rpc_server;

/* Binds `endpoint` and starts `workers` threads. Borrows methods (static table) and ctx. */
rt_err rt_rpc_server_create(const char *endpoint, const rt_rpc_method *methods, size_t nmethods,
                            void *ctx, int workers, rt_rpc_server **out);
/* Stops accepting, waits for the workers, closes the sockets. */
void rt_rpc_server_destroy(rt_rpc_server *s);

typedef struct rt_rpc_client rt_rpc_client;

rt_err rt_rpc_client_create(const char *endpoint, rt_rpc_client **out);
void rt_rpc_client_destroy(rt_rpc_client *c);
const char *rt_rpc_client_endpoint(const rt_rpc_client *c);
/* Calls `method` and waits up to timeout_ms for the reply. On RT_OK `reply` holds the reply
 * message. On a remote error returns the remote code with its message in errbuf; on timeout
 * RT_ETIMEDOUT; when the peer cannot be reached RT_EUNAVAIL. Thread-safe. */
rt_err rt_rpc_call(rt_rpc_client *c, const char *method, const void *req, size_t req_len,
                   int timeout_ms, rt_buf *reply, char *errbuf, size_t errlen);

#endif
