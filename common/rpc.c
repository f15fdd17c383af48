/* rpc.c - request/reply over ZeroMQ.
 *
 * Server: a ROUTER socket bound to the endpoint, a zmq_proxy thread forwarding to an inproc
 * DEALER, and `workers` REP sockets each on its own thread. Client: a mutex-protected pool of
 * DEALER sockets; each call borrows one, sends [empty][RpcRequest] and waits for
 * [empty][RpcReply]. A socket that timed out is closed, never reused, so a late reply can not
 * be mistaken for the answer to a later call. */
#include "common/rpc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "common/log.h"
#include "rpc.pb-c.h"

static pthread_mutex_t rt_zctx_mu = PTHREAD_MUTEX_INITIALIZER;
static void *rt_zctx;

void *rt_zmq_ctx(void) {
  pthread_mutex_lock(&rt_zctx_mu);
  if (!rt_zctx) {
    rt_zctx = zmq_ctx_new();
    if (rt_zctx) {
      zmq_ctx_set(rt_zctx, ZMQ_IO_THREADS, 2);
      zmq_ctx_set(rt_zctx, ZMQ_MAX_SOCKETS, 65536);
    }
  }
  void *c = rt_zctx;
  pthread_mutex_unlock(&rt_zctx_mu);
  return c;
}

void rt_zmq_ctx_term(void) {
  pthread_mutex_lock(&rt_zctx_mu);
  if (rt_zctx) {
    zmq_ctx_term(rt_zctx);
    rt_zctx = NULL;
  }
  pthread_mutex_unlock(&rt_zctx_mu);
}

static void rt_zsock_opts(void *s) {
  int zero = 0;
  zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
}

/* ---------------------------------------------------------------- server */

struct rt_rpc_server {
  void *frontend;   /* ROUTER, bound to the endpoint */
  void *backend;    /* DEALER, bound to inproc://rt-rpc-<n> */
  void *control;    /* PAIR, steers the proxy */
  char backend_ep[64];
  char control_ep[64];
  const rt_rpc_method *methods;
  size_t nmethods;
  void *ctx;
  int nworkers;
  pthread_t proxy;
  pthread_t *workers;
  atomic_bool stop;
  char endpoint[256];
};

static atomic_uint rt_rpc_seq;

static void *rt_rpc_proxy_main(void *arg) {
  rt_rpc_server *s = arg;
  void *ctl = zmq_socket(rt_zmq_ctx(), ZMQ_PAIR);
  rt_zsock_opts(ctl);
  zmq_connect(ctl, s->control_ep);
  zmq_proxy_steerable(s->frontend, s->backend, NULL, ctl);
  zmq_close(ctl);
  return NULL;
}

static const rt_rpc_method *rt_rpc_find(const rt_rpc_server *s, const char *name) {
  for (size_t i = 0; i < s->nmethods; i++) {
    if (strcmp(s->methods[i].name, name) == 0) {
      return &s->methods[i];
    }
  }
  return NULL;
}

static void rt_rpc_serve_one(rt_rpc_server *s, void *sock, const uint8_t *data, size_t len) {
  Ringtail__RpcReply rep = RINGTAIL__RPC_REPLY__INIT;
  rt_buf body = RT_BUF_INIT;
  char errbuf[1024] = "";
  Ringtail__RpcRequest *req = ringtail__rpc_request__unpack(NULL, len, data);
  if (!req) {
    rep.code = RT_EPROTO;
    rep.error = "malformed rpc envelope";
  } else {
    rep.id = req->id;
    const rt_rpc_method *m = rt_rpc_find(s, req->method);
    if (!m) {
      rep.code = RT_ENOTFOUND;
      snprintf(errbuf, sizeof errbuf, "unknown rpc method %s", req->method);
      rep.error = errbuf;
    } else {
      rt_err err = m->fn(s->ctx, req->body.data, req->body.len, &body, errbuf, sizeof errbuf);
      if (err == RT_OK && body.oom) {
        err = RT_ENOMEM;
      }
      rep.code = (uint32_t)err;
      if (err != RT_OK) {
        if (!errbuf[0]) {
          snprintf(errbuf, sizeof errbuf, "%s", rt_strerror(err));
        }
        rep.error = errbuf;
      } else {
        rep.body.data = (uint8_t *)body.data;
        rep.body.len = body.len;
      }
    }
  }
  size_t n = ringtail__rpc_reply__get_packed_size(&rep);
  zmq_msg_t out;
  if (zmq_msg_init_size(&out, n) == 0) {
    ringtail__rpc_reply__pack(&rep, zmq_msg_data(&out));
    if (zmq_msg_send(&out, sock, 0) < 0) {
      zmq_msg_close(&out);
    }
  }
  if (req) {
    ringtail__rpc_request__free_unpacked(req, NULL);
  }
  rt_buf_free(&body);
}

static void *rt_rpc_worker_main(void *arg) {
  rt_rpc_server *s = arg;
  void *sock = zmq_socket(rt_zmq_ctx(), ZMQ_REP);
  rt_zsock_opts(sock);
  if (zmq_connect(sock, s->backend_ep) != 0) {
    rt_error("rpc", "worker connect failed", "err=\"%s\"", zmq_strerror(errno));
    zmq_close(sock);
    return NULL;
  }
  while (!atomic_load(&s->stop)) {
    zmq_pollitem_t it = {.socket = sock, .events = ZMQ_POLLIN};
    int rc = zmq_poll(&it, 1, 100);
    if (rc <= 0) {
      continue;
    }
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, sock, 0) < 0) {
      zmq_msg_close(&msg);
      continue;
    }
    rt_rpc_serve_one(s, sock, zmq_msg_data(&msg), zmq_msg_size(&msg));
    zmq_msg_close(&msg);
  }
  zmq_close(sock);
  return NULL;
}

rt_err rt_rpc_server_create(const char *endpoint, const rt_rpc_method *methods, size_t nmethods,
                            void *ctx, int workers, rt_rpc_server **out) {
  *out = NULL;
  void *zctx = rt_zmq_ctx();
  if (!zctx) {
    return RT_ENOMEM;
  }
  rt_rpc_server *s = rt_calloc(1, sizeof *s);
  if (!s) {
    return RT_ENOMEM;
  }
  s->methods = methods;
  s->nmethods = nmethods;
  s->ctx = ctx;
  s->nworkers = workers > 0 ? workers : 1;
  snprintf(s->endpoint, sizeof s->endpoint, "%s", endpoint);
  unsigned n = atomic_fetch_add(&rt_rpc_seq, 1);
  snprintf(s->backend_ep, sizeof s->backend_ep, "inproc://rt-rpc-backend-%u", n);
  snprintf(s->control_ep, sizeof s->control_ep, "inproc://rt-rpc-control-%u", n);
  s->frontend = zmq_socket(zctx, ZMQ_ROUTER);
  s->backend = zmq_socket(zctx, ZMQ_DEALER);
  s->control = zmq_socket(zctx, ZMQ_PAIR);
  if (!s->frontend || !s->backend || !s->control) {
    goto fail;
  }
  rt_zsock_opts(s->frontend);
  rt_zsock_opts(s->backend);
  rt_zsock_opts(s->control);
  if (zmq_bind(s->frontend, endpoint) != 0) {
    rt_error("rpc", "bind failed", "endpoint=%s err=\"%s\"", endpoint, zmq_strerror(errno));
    goto fail;
  }
  if (zmq_bind(s->backend, s->backend_ep) != 0 || zmq_bind(s->control, s->control_ep) != 0) {
    goto fail;
  }
  s->workers = rt_calloc((size_t)s->nworkers, sizeof *s->workers);
  if (!s->workers) {
    goto fail;
  }
  if (pthread_create(&s->proxy, NULL, rt_rpc_proxy_main, s) != 0) {
    goto fail;
  }
  for (int i = 0; i < s->nworkers; i++) {
    if (pthread_create(&s->workers[i], NULL, rt_rpc_worker_main, s) != 0) {
      s->nworkers = i;
      rt_rpc_server_destroy(s);
      return RT_ENOMEM;
    }
  }
  *out = s;
  return RT_OK;
fail:
  if (s->frontend) {
    zmq_close(s->frontend);
  }
  if (s->backend) {
    zmq_close(s->backend);
  }
  if (s->control) {
    zmq_close(s->control);
  }
  rt_free(s->workers, 0);
  rt_free(s, sizeof *s);
  return RT_EIO;
}

void rt_rpc_server_destroy(rt_rpc_server *s) {
  if (!s) {
    return;
  }
  atomic_store(&s->stop, true);
  for (int i = 0; i < s->nworkers; i++) {
    pthread_join(s->workers[i], NULL);
  }
  zmq_send(s->control, "TERMINATE", 9, 0);
  pthread_join(s->proxy, NULL);
  zmq_close(s->control);
  zmq_close(s->frontend);
  zmq_close(s->backend);
  rt_free(s->workers, 0);
  rt_free(s, sizeof *s);
}

/* ---------------------------------------------------------------- client */

#define RT_RPC_POOL_MAX 64
#define RT_RPC_CONNECT_TIMEOUT_MS 1000

struct rt_rpc_client {
  pthread_mutex_t mu;
  void *pool[RT_RPC_POOL_MAX];
  int npool;
  char endpoint[256];
  atomic_uint_fast64_t next_id;
};

rt_err rt_rpc_client_create(const char *endpoint, rt_rpc_client **out) {
  *out = NULL;
  if (!rt_zmq_ctx()) {
    return RT_ENOMEM;
  }
  rt_rpc_client *c = rt_calloc(1, sizeof *c);
  if (!c) {
    return RT_ENOMEM;
  }
  pthread_mutex_init(&c->mu, NULL);
  snprintf(c->endpoint, sizeof c->endpoint, "%s", endpoint);
  atomic_store(&c->next_id, 1);
  *out = c;
  return RT_OK;
}

void rt_rpc_client_destroy(rt_rpc_client *c) {
  if (!c) {
    return;
  }
  for (int i = 0; i < c->npool; i++) {
    zmq_close(c->pool[i]);
  }
  pthread_mutex_destroy(&c->mu);
  rt_free(c, sizeof *c);
}

const char *rt_rpc_client_endpoint(const rt_rpc_client *c) { return c->endpoint; }

static void *rt_rpc_sock_get(rt_rpc_client *c) {
  pthread_mutex_lock(&c->mu);
  void *s = c->npool > 0 ? c->pool[--c->npool] : NULL;
  pthread_mutex_unlock(&c->mu);
  if (s) {
    return s;
  }
  s = zmq_socket(rt_zmq_ctx(), ZMQ_DEALER);
  if (!s) {
    return NULL;
  }
  rt_zsock_opts(s);
  int one = 1;
  zmq_setsockopt(s, ZMQ_IMMEDIATE, &one, sizeof one);
  int ivl = 100;
  zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
  int ivl_max = 1000;
  zmq_setsockopt(s, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
  if (zmq_connect(s, c->endpoint) != 0) {
    rt_error("rpc", "connect failed", "endpoint=%s err=\"%s\"", c->endpoint, zmq_strerror(errno));
    zmq_close(s);
    return NULL;
  }
  return s;
}

static void rt_rpc_sock_put(rt_rpc_client *c, void *s, bool healthy) {
  if (healthy) {
    pthread_mutex_lock(&c->mu);
    if (c->npool < RT_RPC_POOL_MAX) {
      c->pool[c->npool++] = s;
      s = NULL;
    }
    pthread_mutex_unlock(&c->mu);
  }
  if (s) {
    zmq_close(s);
  }
}

rt_err rt_rpc_call(rt_rpc_client *c, const char *method, const void *req, size_t req_len,
                   int timeout_ms, rt_buf *reply, char *errbuf, size_t errlen) {
  if (errbuf && errlen) {
    errbuf[0] = 0;
  }
  void *s = rt_rpc_sock_get(c);
  if (!s) {
    if (errbuf) {
      snprintf(errbuf, errlen, "cannot open a socket to %s", c->endpoint);
    }
    return RT_EUNAVAIL;
  }
  uint64_t id = atomic_fetch_add(&c->next_id, 1);
  Ringtail__RpcRequest env = RINGTAIL__RPC_REQUEST__INIT;
  env.method = (char *)method;
  env.id = id;
  env.body.data = (uint8_t *)req;
  env.body.len = req_len;
  size_t n = ringtail__rpc_request__get_packed_size(&env);
  zmq_msg_t msg;
  if (zmq_msg_init_size(&msg, n) != 0) {
    rt_rpc_sock_put(c, s, true);
    return RT_ENOMEM;
  }
  ringtail__rpc_request__pack(&env, zmq_msg_data(&msg));

  uint64_t deadline = rt_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
  /* a send blocks only while no connection to the peer exists (ZMQ_IMMEDIATE, one call per
   * socket): a peer that cannot be reached within a second is down, whatever the call's timeout */
  int sndtimeo = timeout_ms < RT_RPC_CONNECT_TIMEOUT_MS ? timeout_ms : RT_RPC_CONNECT_TIMEOUT_MS;
  zmq_setsockopt(s, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
  if (zmq_send(s, "", 0, ZMQ_SNDMORE) < 0 || zmq_msg_send(&msg, s, 0) < 0) {
    int e = errno;
    zmq_msg_close(&msg);
    rt_rpc_sock_put(c, s, false);
    if (errbuf) {
      snprintf(errbuf, errlen, "%s unreachable: %s", c->endpoint,
               e == EAGAIN ? "no connection" : zmq_strerror(e));
    }
    return RT_EUNAVAIL;
  }
  for (;;) {
    uint64_t now = rt_mono_ns();
    if (now >= deadline) {
      rt_rpc_sock_put(c, s, false);
      if (errbuf) {
        snprintf(errbuf, errlen, "%s: %s timed out after %dms", c->endpoint, method, timeout_ms);
      }
      return RT_ETIMEDOUT;
    }
    zmq_pollitem_t it = {.socket = s, .events = ZMQ_POLLIN};
    int rc = zmq_poll(&it, 1, (long)((deadline - now) / 1000000ull) + 1);
    if (rc < 0 && errno == EINTR) {
      continue;
    }
    if (rc <= 0) {
      continue;
    }
    /* frame 1: empty delimiter; frame 2: the reply */
    zmq_msg_t part;
    zmq_msg_init(&part);
    if (zmq_msg_recv(&part, s, 0) < 0) {
      zmq_msg_close(&part);
      continue;
    }
    int more = zmq_msg_more(&part);
    if (zmq_msg_size(&part) == 0 && more) {
      zmq_msg_close(&part);
      zmq_msg_init(&part);
      if (zmq_msg_recv(&part, s, 0) < 0) {
        zmq_msg_close(&part);
        continue;
      }
    }
    Ringtail__RpcReply *rep = ringtail__rpc_reply__unpack(NULL, zmq_msg_size(&part), zmq_msg_data(&part));
    zmq_msg_close(&part);
    if (!rep) {
      rt_rpc_sock_put(c, s, false);
      if (errbuf) {
        snprintf(errbuf, errlen, "%s: malformed rpc reply", c->endpoint);
      }
      return RT_EPROTO;
    }
    if (rep->id != id) {
      ringtail__rpc_reply__free_unpacked(rep, NULL);
      continue; /* cannot happen with one call per socket; be safe */
    }
    rt_err err = (rt_err)rep->code;
    if (err >= RT_ERR_COUNT) {
      err = RT_EINTERNAL;
    }
    if (err != RT_OK) {
      if (errbuf) {
        snprintf(errbuf, errlen, "%s", rep->error ? rep->error : rt_strerror(err));
      }
    } else {
      rt_buf_reset(reply);
      rt_buf_append(reply, rep->body.data, rep->body.len);
      if (reply->oom) {
        err = RT_ENOMEM;
      }
    }
    ringtail__rpc_reply__free_unpacked(rep, NULL);
    rt_rpc_sock_put(c, s, true);
    return err;
  }
}
