/* fanout.c - a pool of RPC clients by endpoint, and calls that run on detached threads.
 *
 * A fanout is refcounted: one reference for the caller, one per running call. A call thread
 * writes its outcome, marks itself done under f->mu, signals, and drops its reference; the
 * caller reads outcomes of done calls only, so a result never changes once visible. */
#include "common/fanout.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ pool */

struct rt_rpc_pool {
  pthread_mutex_t mu;
  rt_rpc_client **v;
  size_t n, cap;
};

rt_err rt_rpc_pool_create(rt_rpc_pool **out) {
  rt_rpc_pool *p = rt_calloc(1, sizeof *p);
  *out = p;
  if (!p) {
    return RT_ENOMEM;
  }
  pthread_mutex_init(&p->mu, NULL);
  return RT_OK;
}

void rt_rpc_pool_destroy(rt_rpc_pool *p) {
  if (!p) {
    return;
  }
  rt_fanout_drain();
  for (size_t i = 0; i < p->n; i++) {
    rt_rpc_client_destroy(p->v[i]);
  }
  rt_free(p->v, p->cap * sizeof *p->v);
  pthread_mutex_destroy(&p->mu);
  rt_free(p, sizeof *p);
}

rt_rpc_client *rt_rpc_pool_get(rt_rpc_pool *p, const char *endpoint) {
  rt_rpc_client *c = NULL;
  pthread_mutex_lock(&p->mu);
  for (size_t i = 0; i < p->n; i++) {
    if (strcmp(rt_rpc_client_endpoint(p->v[i]), endpoint) == 0) {
      c = p->v[i];
      break;
    }
  }
  if (!c) {
    if (p->n == p->cap) {
      size_t nc = p->cap ? p->cap * 2 : 16;
      rt_rpc_client **nv = rt_realloc(p->v, p->cap * sizeof *nv, nc * sizeof *nv);
      if (!nv) {
        pthread_mutex_unlock(&p->mu);
        return NULL;
      }
      p->v = nv;
      p->cap = nc;
    }
    if (rt_rpc_client_create(endpoint, &c) == RT_OK) {
      p->v[p->n++] = c;
    } else {
      c = NULL;
    }
  }
  pthread_mutex_unlock(&p->mu);
  return c;
}

/* ------------------------------------------------------------------ fanout */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static size_t g_running;

typedef struct fo_call {
  rt_fanout *f;
  rt_rpc_client *c;
  const char *method;
  uint8_t *req;
  size_t len;
  int timeout_ms;
  rt_err err;
  rt_buf reply;
  char msg[512];
  bool done;
} fo_call;

struct rt_fanout {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int refs;
  size_t cap, n, ndone;
  fo_call *calls;
};

rt_err rt_fanout_create(size_t cap, rt_fanout **out) {
  *out = NULL;
  rt_fanout *f = rt_calloc(1, sizeof *f);
  if (!f) {
    return RT_ENOMEM;
  }
  f->calls = rt_calloc(cap ? cap : 1, sizeof *f->calls);
  if (!f->calls) {
    rt_free(f, sizeof *f);
    return RT_ENOMEM;
  }
  pthread_mutex_init(&f->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&f->cv, &ca);
  pthread_condattr_destroy(&ca);
  f->refs = 1;
  f->cap = cap ? cap : 1;
  *out = f;
  return RT_OK;
}

void rt_fanout_release(rt_fanout *f) {
  if (!f) {
    return;
  }
  pthread_mutex_lock(&f->mu);
  int left = --f->refs;
  pthread_mutex_unlock(&f->mu);
  if (left) {
    return;
  }
  for (size_t i = 0; i < f->n; i++) {
    rt_free(f->calls[i].req, f->calls[i].len ? f->calls[i].len : 1);
    rt_buf_free(&f->calls[i].reply);
  }
  rt_free(f->calls, f->cap * sizeof *f->calls);
  pthread_cond_destroy(&f->cv);
  pthread_mutex_destroy(&f->mu);
  rt_free(f, sizeof *f);
}

static void fo_run(fo_call *c) {
  c->err = rt_rpc_call(c->c, c->method, c->req, c->len, c->timeout_ms, &c->reply, c->msg,
                       sizeof c->msg);
  rt_fanout *f = c->f;
  pthread_mutex_lock(&f->mu);
  c->done = true;
  f->ndone++;
  pthread_cond_broadcast(&f->cv);
  pthread_mutex_unlock(&f->mu);
}

static void *fo_thread(void *arg) {
  fo_call *c = arg;
  rt_fanout *f = c->f;
  fo_run(c);
  rt_fanout_release(f);
  pthread_mutex_lock(&g_mu);
  if (--g_running == 0) {
    pthread_cond_broadcast(&g_cv);
  }
  pthread_mutex_unlock(&g_mu);
  return NULL;
}

rt_err rt_fanout_start(rt_fanout *f, rt_rpc_client *c, const char *method, const void *req,
                       size_t len, int timeout_ms, size_t *idx) {
  pthread_mutex_lock(&f->mu);
  if (f->n == f->cap) {
    pthread_mutex_unlock(&f->mu);
    return RT_ELIMIT;
  }
  fo_call *call = &f->calls[f->n];
  pthread_mutex_unlock(&f->mu);
  /* only the caller's thread adds calls, so the slot is ours until n grows */
  memset(call, 0, sizeof *call);
  call->req = rt_alloc(len ? len : 1);
  if (!call->req) {
    return RT_ENOMEM;
  }
  if (len) {
    memcpy(call->req, req, len);
  }
  call->f = f;
  call->c = c;
  call->method = method;
  call->len = len;
  call->timeout_ms = timeout_ms;
  call->reply = (rt_buf)RT_BUF_INIT;
  pthread_mutex_lock(&f->mu);
  size_t i = f->n++;
  f->refs++;
  pthread_mutex_unlock(&f->mu);
  if (idx) {
    *idx = i;
  }
  pthread_mutex_lock(&g_mu);
  g_running++;
  pthread_mutex_unlock(&g_mu);
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  pthread_t th;
  bool started = pthread_create(&th, &at, fo_thread, call) == 0;
  pthread_attr_destroy(&at);
  if (!started) {
    fo_thread(call);
  }
  return RT_OK;
}

size_t rt_fanout_count(rt_fanout *f) {
  pthread_mutex_lock(&f->mu);
  size_t n = f->n;
  pthread_mutex_unlock(&f->mu);
  return n;
}

size_t rt_fanout_wait(rt_fanout *f, size_t seen, uint64_t deadline_ns) {
  pthread_mutex_lock(&f->mu);
  while (f->ndone <= seen && f->ndone < f->n) {
    if (deadline_ns) {
      uint64_t now = rt_mono_ns();
      if (now >= deadline_ns) {
        break;
      }
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      uint64_t wake = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec +
                      (deadline_ns - now);
      ts.tv_sec = (time_t)(wake / 1000000000ull);
      ts.tv_nsec = (long)(wake % 1000000000ull);
      pthread_cond_timedwait(&f->cv, &f->mu, &ts);
    } else {
      pthread_cond_wait(&f->cv, &f->mu);
    }
  }
  size_t n = f->ndone;
  pthread_mutex_unlock(&f->mu);
  return n;
}

bool rt_fanout_result(rt_fanout *f, size_t i, rt_err *err, const rt_buf **reply,
                      const char **errmsg) {
  pthread_mutex_lock(&f->mu);
  bool done = i < f->n && f->calls[i].done;
  pthread_mutex_unlock(&f->mu);
  if (!done) {
    return false;
  }
  const fo_call *c = &f->calls[i];
  if (err) {
    *err = c->err;
  }
  if (reply) {
    *reply = &c->reply;
  }
  if (errmsg) {
    *errmsg = c->msg[0] ? c->msg : rt_strerror(c->err);
  }
  return true;
}

void rt_fanout_drain(void) {
  pthread_mutex_lock(&g_mu);
  while (g_running) {
    pthread_cond_wait(&g_cv, &g_mu);
  }
  pthread_mutex_unlock(&g_mu);
}
