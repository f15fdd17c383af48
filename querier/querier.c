/* querier.c - fan-out to the ingesters and merging of their answers.
 *
 * Every read goes through qry_gather: one RPC per (matcher set, reading instance) of the zones
 * the ring says a read needs (the gossip ring: enough zones, hedged; a static ring built from
 * -querier.ingester-addresses: every listed ingester). A single zone's calls run on short-lived
 * threads (at most QRY_MAX_PARALLEL at once; a single call runs on the caller's thread), several
 * zones' on rt_fanout. The replies are decoded into a scratch arena, merged, and the merged
 * result is copied into the result's own arena, so a result is one allocation to free and holds
 * no chunk bytes. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/arena.h"
#include "common/chunk.h"
#include "common/fanout.h"
#include "common/log.h"
#include "common/rpc.h"
#include "ring/ring.h"
#include "querier/querier.h"
#include "querier/querier_int.h"
#include "rpc.pb-c.h"

#define QRY_MAX_PARALLEL 32
/* An ingester that failed a read, or had not answered when the read was done without it, ranks
 * its zone behind the others for this long. */
#define QRY_TROUBLE_MS 10000
#define QRY_TROUBLE_SLOTS 64
#define QRY_DEFAULT_TIMEOUT_MS (2 * 60 * 1000)

struct qry_querier {
  int timeout_ms;
  const char *default_tenant;
  ring *ring;             /* the ring reads fan out over (see qry_gather) */
  ring *static_ring;      /* owned: built from qry_config.ingesters when no ring was given */
  rt_rpc_pool *pool;      /* clients of the ring's ingesters, by endpoint */
  int64_t hedge_ms;
  atomic_uint rr;         /* rotates the zone preference between equally good zones */
  pthread_mutex_t trouble_mu; /* endpoints that failed or were passed over lately */
  struct {
    char ep[128];
    uint64_t at_ns;
  } trouble[QRY_TROUBLE_SLOTS];
};

rt_err qry_create(const qry_config *cfg, qry_querier **out) {
  *out = NULL;
  qry_querier *q = rt_calloc(1, sizeof *q);
  if (!q) {
    return RT_ENOMEM;
  }
  int64_t to = cfg && cfg->timeout_ms > 0 ? cfg->timeout_ms : QRY_DEFAULT_TIMEOUT_MS;
  q->timeout_ms = to > 0x7fffffff ? 0x7fffffff : (int)to;
  q->default_tenant = cfg && cfg->default_tenant ? cfg->default_tenant : QRY_DEFAULT_TENANT;
  pthread_mutex_init(&q->trouble_mu, NULL);
  q->hedge_ms = cfg && cfg->hedge_ms > 0 ? cfg->hedge_ms : QRY_DEFAULT_HEDGE_MS;
  q->ring = cfg ? cfg->ring : NULL;
  rt_err err = rt_rpc_pool_create(&q->pool);
  if (err == RT_OK && !q->ring) {
    const char *list = cfg && cfg->ingesters && cfg->ingesters[0] ? cfg->ingesters
                                                                  : "inproc://ingester";
    char msg[512];
    err = ring_create_static(list, &q->static_ring, msg, sizeof msg);
    if (err != RT_OK) {
      rt_error("querier", "invalid -querier.ingester-addresses", "err=\"%s\"",
               msg[0] ? msg : rt_strerror(err));
    }
    q->ring = q->static_ring;
  }
  if (err != RT_OK) {
    qry_destroy(q);
    return err;
  }
  *out = q;
  return RT_OK;
}

void qry_destroy(qry_querier *q) {
  if (!q) {
    return;
  }
  rt_rpc_pool_destroy(q->pool);
  ring_destroy(q->static_ring);
  pthread_mutex_destroy(&q->trouble_mu);
  rt_free(q, sizeof *q);
}

size_t qry_ingester_count(const qry_querier *q) {
  ring_snapshot *snap = ring_snapshot_acquire(q->ring);
  size_t n = ring_snapshot_count(snap);
  ring_snapshot_release(snap);
  return n;
}

const char *qry_default_tenant(const qry_querier *q) { return q->default_tenant; }

/* ------------------------------------------------------------ fan-out */

typedef struct qry_call {
  rt_rpc_client *client;
  const char *method;
  const uint8_t *req;
  size_t req_len;
  int timeout_ms;
  rt_buf reply;
  rt_err err;
  char errbuf[256];
  size_t copy;          /* which copy of the data answered: the zone */
} qry_call;

static void *qry_call_run(void *arg) {
  qry_call *c = arg;
  c->err = rt_rpc_call(c->client, c->method, c->req, c->req_len, c->timeout_ms, &c->reply,
                       c->errbuf, sizeof c->errbuf);
  return NULL;
}

/* Runs every call; returns the first failure (in call order) with its message. */
static rt_err qry_fanout(qry_call *calls, size_t n, char *errbuf, size_t errlen) {
  for (size_t base = 0; base < n; base += QRY_MAX_PARALLEL) {
    size_t m = RT_MIN(n - base, (size_t)QRY_MAX_PARALLEL);
    pthread_t th[QRY_MAX_PARALLEL];
    bool started[QRY_MAX_PARALLEL] = {0};
    for (size_t i = 1; i < m; i++) {
      started[i] = pthread_create(&th[i], NULL, qry_call_run, &calls[base + i]) == 0;
      if (!started[i]) {
        qry_call_run(&calls[base + i]);
      }
    }
    qry_call_run(&calls[base]);
    for (size_t i = 1; i < m; i++) {
      if (started[i]) {
        pthread_join(th[i], NULL);
      }
    }
  }
  for (size_t i = 0; i < n; i++) {
    if (calls[i].err != RT_OK) {
      if (errbuf && errlen) {
        snprintf(errbuf, errlen, "ingester %s: %s: %s", rt_rpc_client_endpoint(calls[i].client),
                 calls[i].method, calls[i].errbuf[0] ? calls[i].errbuf : rt_strerror(calls[i].err));
      }
      return calls[i].err;
    }
  }
  return RT_OK;
}

static void qry_calls_free(qry_call *calls, size_t n) {
  if (!calls) {
    return;
  }
  for (size_t i = 0; i < n; i++) {
    rt_buf_free(&calls[i].reply);
  }
  rt_free(calls, n * sizeof *calls);
}

static void seterr(char *errbuf, size_t errlen, const char *msg) {
  if (errbuf && errlen) {
    snprintf(errbuf, errlen, "%s", msg);
  }
}

/* Protobuf matchers for one set, allocated from the arena. */
static Prometheus__LabelMatcher **qry_pb_matchers(rt_arena *a, const rt_matcher *m, size_t n) {
  Prometheus__LabelMatcher **v = rt_arena_alloc(a, (n ? n : 1) * sizeof *v);
  Prometheus__LabelMatcher *mm = rt_arena_alloc(a, (n ? n : 1) * sizeof *mm);
  if (!v || !mm) {
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    prometheus__label_matcher__init(&mm[i]);
    switch (m[i].type) {
    case RT_MATCH_EQ: mm[i].type = PROMETHEUS__LABEL_MATCHER__TYPE__EQ; break;
    case RT_MATCH_NEQ: mm[i].type = PROMETHEUS__LABEL_MATCHER__TYPE__NEQ; break;
    case RT_MATCH_RE: mm[i].type = PROMETHEUS__LABEL_MATCHER__TYPE__RE; break;
    case RT_MATCH_NRE: mm[i].type = PROMETHEUS__LABEL_MATCHER__TYPE__NRE; break;
    }
    mm[i].name = m[i].name;
    mm[i].value = m[i].value;
    v[i] = &mm[i];
  }
  return v;
}

/* ------------------------------------------------------------ ring fan-out */

enum { QZ_UNSTARTED = 0, QZ_RUNNING, QZ_COMPLETE, QZ_FAILED, QZ_UNUSABLE };

/* Remembers that `ep` failed or was too slow (replacing the oldest entry). */
static void qry_trouble_note(qry_querier *q, const char *ep) {
  uint64_t now = rt_mono_ns();
  pthread_mutex_lock(&q->trouble_mu);
  size_t slot = 0;
  for (size_t i = 0; i < QRY_TROUBLE_SLOTS; i++) {
    if (strcmp(q->trouble[i].ep, ep) == 0) {
      slot = i;
      break;
    }
    if (q->trouble[i].at_ns < q->trouble[slot].at_ns) {
      slot = i;
    }
  }
  snprintf(q->trouble[slot].ep, sizeof q->trouble[slot].ep, "%s", ep);
  q->trouble[slot].at_ns = now;
  pthread_mutex_unlock(&q->trouble_mu);
}

static bool qry_trouble_recent(qry_querier *q, const char *ep) {
  uint64_t now = rt_mono_ns();
  bool hit = false;
  pthread_mutex_lock(&q->trouble_mu);
  for (size_t i = 0; i < QRY_TROUBLE_SLOTS && !hit; i++) {
    hit = q->trouble[i].at_ns && strcmp(q->trouble[i].ep, ep) == 0 &&
          now - q->trouble[i].at_ns < (uint64_t)QRY_TROUBLE_MS * 1000000ull;
  }
  pthread_mutex_unlock(&q->trouble_mu);
  return hit;
}

/* How a zone ranks for reads: all readers healthy first, then zones with unhealthy readers,
 * zones without readers last. */
static int qry_zone_rank(size_t readers, size_t healthy) {
  return readers == 0 ? 2 : healthy < readers ? 1 : 0;
}

/* The fan-out of every read: one call per (request body, reading instance) of the zones the
 * read needs, handing back the answers that count. A quorum write leaves each series missing
 * from fewer than `need` = ring_snapshot_read_zones() of its zones (min(RF, zones) - quorum + 1;
 * a static ring's readers need every zone, as they do not know which lists the writers used),
 * so the answers of every reading instance of `need` zones hold all the data. Zones whose readers are all healthy go first (rotating between equals); when a zone
 * fails, or has not answered after hedge_ms, the next one is started; the calls of zones not
 * needed finish in the background. Fails (RT_EUNAVAIL) only when fewer than `need` zones
 * answered completely, i.e. when the data could be incomplete; an error that is not about
 * reachability (a bad regex, a limit) is passed through. One zone (a single process, a static
 * ring of one address): its readers are called directly and any failure fails the read.
 * On RT_OK *out holds *ncalls answered calls; free with qry_calls_free(*out, *ncalls). On error
 * nothing is returned and errbuf says why. */
static rt_err qry_gather(qry_querier *q, const char *method, uint8_t **bodies, const size_t *blen,
                         size_t nsets, qry_call **out, size_t *ncalls, char *errbuf,
                         size_t errlen) {
  *out = NULL;
  *ncalls = 0;
  ring_snapshot *snap = ring_snapshot_acquire(q->ring);
  size_t nz = ring_snapshot_zone_count(snap);
  size_t ninst = ring_snapshot_count(snap);
  size_t need = ring_snapshot_read_zones(snap);
  rt_err err = RT_ENOMEM;
  uint32_t *rd = rt_calloc(ninst ? ninst : 1, sizeof *rd);
  size_t *zoff = rt_calloc(nz + 1, sizeof *zoff);
  size_t *zcnt = rt_calloc(nz + 1, sizeof *zcnt);
  size_t *zfirst = rt_calloc(nz + 1, sizeof *zfirst);
  size_t *zncalls = rt_calloc(nz + 1, sizeof *zncalls);
  int *zstate = rt_calloc(nz + 1, sizeof *zstate);
  size_t *order = rt_calloc(nz + 1, sizeof *order);
  size_t cap = nsets * (ninst ? ninst : 1);
  rt_rpc_client **cli = rt_calloc(cap ? cap : 1, sizeof *cli);
  rt_fanout *fo = NULL;
  char firsterr[256] = "";
  bool direct_msg = false; /* errbuf already says why */
  if (!rd || !zoff || !zcnt || !zfirst || !zncalls || !zstate || !order || !cli ||
      rt_fanout_create(cap, &fo) != RT_OK) {
    goto out;
  }
  if (need == 0) {
    err = RT_EUNAVAIL;
    snprintf(firsterr, sizeof firsterr, "no ingester in the ring");
    goto out;
  }
  unsigned rot = atomic_fetch_add(&q->rr, 1);
  size_t used = 0;
  int *zrank = rt_calloc(nz, sizeof *zrank);
  if (!zrank) {
    goto out;
  }
  for (size_t z = 0; z < nz; z++) {
    size_t healthy = 0;
    zoff[z] = used;
    zcnt[z] = ring_snapshot_zone_readers(snap, z, rd + used, ninst - used, &healthy);
    if (zcnt[z] > ninst - used) {
      zcnt[z] = ninst - used;
    }
    used += zcnt[z];
    zrank[z] = qry_zone_rank(zcnt[z], healthy);
    for (size_t r = 0; r < zcnt[z] && zrank[z] == 0; r++) {
      const ring_instance *in = ring_snapshot_instance(snap, rd[zoff[z] + r]);
      if (qry_trouble_recent(q, in->rpc_addr)) {
        zrank[z] = 1;
      }
    }
    zstate[z] = zcnt[z] ? QZ_UNSTARTED : QZ_UNUSABLE;
    order[z] = (z + rot) % nz;
  }
  /* stable insertion sort of the rotated order by rank */
  for (size_t i = 1; i < nz; i++) {
    size_t v = order[i], j = i;
    while (j > 0 && zrank[order[j - 1]] > zrank[v]) {
      order[j] = order[j - 1];
      j--;
    }
    order[j] = v;
  }
  rt_free(zrank, nz * sizeof *zrank);

  if (nz == 1 && zcnt[0] > 0) {
    /* one zone (a single process): every reader must answer and there is no other zone to
     * turn to, so call them directly (one call runs on this thread) */
    size_t n = nsets * zcnt[0];
    qry_call *calls = rt_calloc(n ? n : 1, sizeof *calls);
    if (!calls) {
      goto out;
    }
    for (size_t r = 0; r < zcnt[0]; r++) {
      const ring_instance *in = ring_snapshot_instance(snap, rd[r]);
      rt_rpc_client *c = in->healthy && in->rpc_addr[0] ? rt_rpc_pool_get(q->pool, in->rpc_addr)
                                                       : NULL;
      if (!c) {
        rt_free(calls, 0);
        err = RT_EUNAVAIL;
        snprintf(firsterr, sizeof firsterr, "ingester %s is %s", in->id,
                 in->healthy ? "unreachable" : "unhealthy");
        goto out;
      }
      for (size_t st = 0; st < nsets; st++) {
        qry_call *cl = &calls[st * zcnt[0] + r];
        cl->client = c;
        cl->method = method;
        cl->req = bodies[st];
        cl->req_len = blen[st];
        cl->timeout_ms = q->timeout_ms;
      }
    }
    err = qry_fanout(calls, n, errbuf, errlen);
    if (err != RT_OK) {
      qry_calls_free(calls, n);
      direct_msg = true;
      goto out;
    }
    *out = calls;
    *ncalls = n;
    goto out;
  }

  uint64_t start = rt_mono_ns();
  uint64_t deadline = start + ((uint64_t)q->timeout_ms + 1000) * 1000000ull;
  uint64_t hedge_at = start + (uint64_t)q->hedge_ms * 1000000ull;
  size_t seen = 0;
  for (;;) {
    /* zone verdicts */
    size_t complete = 0, running = 0, unstarted = 0;
    for (size_t z = 0; z < nz; z++) {
      if (zstate[z] == QZ_RUNNING) {
        size_t done = 0;
        bool bad = false;
        for (size_t c = zfirst[z]; c < zfirst[z] + zncalls[z]; c++) {
          rt_err e;
          const char *em;
          if (rt_fanout_result(fo, c, &e, NULL, &em)) {
            done++;
            if (e != RT_OK) {
              bad = true;
              qry_trouble_note(q, rt_rpc_client_endpoint(cli[c]));
              if (!firsterr[0]) {
                snprintf(firsterr, sizeof firsterr, "ingester %s: %s: %s",
                         rt_rpc_client_endpoint(cli[c]), method, em);
                err = e;
              }
            }
          }
        }
        zstate[z] = bad ? QZ_FAILED : done == zncalls[z] ? QZ_COMPLETE : QZ_RUNNING;
      }
      complete += zstate[z] == QZ_COMPLETE;
      running += zstate[z] == QZ_RUNNING;
      unstarted += zstate[z] == QZ_UNSTARTED;
    }
    if (complete >= need) {
      break;
    }
    uint64_t now = rt_mono_ns();
    bool hedge = now >= hedge_at && unstarted > 0;
    /* start zones while too few can still answer, or one more when the hedge time passed */
    for (size_t i = 0; i < nz && (complete + running < need || hedge); i++) {
      size_t z = order[i];
      if (zstate[z] != QZ_UNSTARTED) {
        continue;
      }
      hedge = false;
      hedge_at = now + (uint64_t)q->hedge_ms * 1000000ull;
      zfirst[z] = rt_fanout_count(fo);
      zstate[z] = QZ_RUNNING;
      for (size_t r = 0; r < zcnt[z] && zstate[z] == QZ_RUNNING; r++) {
        const ring_instance *in = ring_snapshot_instance(snap, rd[zoff[z] + r]);
        rt_rpc_client *c = in->healthy && in->rpc_addr[0] ? rt_rpc_pool_get(q->pool, in->rpc_addr)
                                                         : NULL;
        if (!c) {
          zstate[z] = QZ_FAILED;
          if (!firsterr[0]) {
            snprintf(firsterr, sizeof firsterr, "ingester %s (zone %s) is %s", in->id,
                     in->zone, in->healthy ? "unreachable" : "unhealthy");
            err = RT_EUNAVAIL;
          }
          break;
        }
        for (size_t s = 0; s < nsets; s++) {
          size_t idx;
          if (rt_fanout_start(fo, c, method, bodies[s], blen[s], q->timeout_ms, &idx) != RT_OK) {
            zstate[z] = QZ_FAILED;
            break;
          }
          cli[idx] = c;
        }
      }
      zncalls[z] = rt_fanout_count(fo) - zfirst[z];
      if (zstate[z] == QZ_RUNNING) {
        running++;
      }
    }
    if (complete + running < need) {
      if (err == RT_OK || err == RT_ENOMEM || err == RT_ETIMEDOUT || err == RT_ECLOSED) {
        err = RT_EUNAVAIL;
      }
      goto out;
    }
    if (now >= deadline) {
      err = RT_ETIMEDOUT;
      snprintf(firsterr, sizeof firsterr, "ingesters did not answer %s within %dms", method,
               q->timeout_ms);
      goto out;
    }
    uint64_t wake = unstarted ? RT_MIN(hedge_at, deadline) : deadline;
    seen = rt_fanout_wait(fo, seen, wake);
  }

  /* calls still running were passed over: rank their ingesters' zones last for a while */
  for (size_t z = 0; z < nz; z++) {
    if (zstate[z] == QZ_RUNNING) {
      for (size_t c = zfirst[z]; c < zfirst[z] + zncalls[z]; c++) {
        if (!rt_fanout_result(fo, c, NULL, NULL, NULL)) {
          qry_trouble_note(q, rt_rpc_client_endpoint(cli[c]));
        }
      }
    }
  }
  /* the answers of the complete zones */
  size_t n = 0;
  for (size_t z = 0; z < nz; z++) {
    if (zstate[z] == QZ_COMPLETE) {
      n += zncalls[z];
    }
  }
  qry_call *calls = rt_calloc(n ? n : 1, sizeof *calls);
  if (!calls) {
    err = RT_ENOMEM;
    goto out;
  }
  size_t k = 0;
  for (size_t z = 0; z < nz; z++) {
    if (zstate[z] != QZ_COMPLETE) {
      continue;
    }
    for (size_t c = zfirst[z]; c < zfirst[z] + zncalls[z]; c++) {
      const rt_buf *reply = NULL;
      rt_fanout_result(fo, c, NULL, &reply, NULL);
      calls[k].client = cli[c];
      calls[k].method = method;
      calls[k].copy = z;
      calls[k].reply = (rt_buf)RT_BUF_INIT;
      if (reply && reply->len) {
        rt_buf_append(&calls[k].reply, reply->data, reply->len);
      }
      if (calls[k].reply.oom) {
        k++;
        qry_calls_free(calls, k);
        err = RT_ENOMEM;
        goto out;
      }
      k++;
    }
  }
  *out = calls;
  *ncalls = n;
  err = RT_OK;
out:
  if (direct_msg) {
    /* qry_fanout's message */
  } else if (err != RT_OK && err != RT_EUNAVAIL && err != RT_ENOMEM && errbuf && errlen) {
    snprintf(errbuf, errlen, "%s", firsterr[0] ? firsterr : rt_strerror(err));
  } else if (err != RT_OK && errbuf && errlen) {
    snprintf(errbuf, errlen, "data could be incomplete: fewer than %zu zone(s) answered fully%s%s",
             need ? need : (size_t)1, firsterr[0] ? "; " : "", firsterr);
  }
  rt_fanout_release(fo);
  rt_free(cli, 0);
  rt_free(order, 0);
  rt_free(zstate, 0);
  rt_free(zncalls, 0);
  rt_free(zfirst, 0);
  rt_free(zcnt, 0);
  rt_free(zoff, 0);
  rt_free(rd, 0);
  ring_snapshot_release(snap);
  return err;
}

rt_err qry_gather_copies(qry_querier *q, const char *method, const uint8_t *body, size_t len,
                         qry_reply **out, size_t *n, char *errbuf, size_t errlen) {
  *out = NULL;
  *n = 0;
  uint8_t *bodies[1] = {(uint8_t *)body};
  size_t blen[1] = {len};
  qry_call *calls = NULL;
  size_t ncalls = 0;
  rt_err e = qry_gather(q, method, bodies, blen, 1, &calls, &ncalls, errbuf, errlen);
  if (e != RT_OK) {
    return e;
  }
  qry_reply *r = rt_calloc(ncalls ? ncalls : 1, sizeof *r);
  if (!r) {
    qry_calls_free(calls, ncalls);
    seterr(errbuf, errlen, "out of memory");
    return RT_ENOMEM;
  }
  for (size_t i = 0; i < ncalls; i++) {
    r[i].body = calls[i].reply;
    calls[i].reply = (rt_buf)RT_BUF_INIT;
    r[i].copy = calls[i].copy;
    r[i].endpoint = calls[i].client ? rt_rpc_client_endpoint(calls[i].client) : "";
  }
  qry_calls_free(calls, ncalls);
  *out = r;
  *n = ncalls;
  return RT_OK;
}

void qry_replies_free(qry_reply *r, size_t n) {
  for (size_t i = 0; r && i < n; i++) {
    rt_buf_free(&r[i].body);
  }
  rt_free(r, (n ? n : 1) * sizeof *r);
}

/* ------------------------------------------------------------ select */

typedef struct qry_entry {
  rt_label *labels;            /* sorted; strings in the scratch arena */
  size_t n;
  Ringtail__SeriesChunks *sc;
  size_t src;                  /* call index, so that merging prefers the first ingester */
} qry_entry;

static int qry_entry_cmp(const void *a, const void *b) {
  const qry_entry *x = a, *y = b;
  int c = rt_labels_cmp(x->labels, x->n, y->labels, y->n);
  if (c) {
    return c;
  }
  return (x->src > y->src) - (x->src < y->src);
}

static char *qry_arena_strdup(rt_arena *a, const char *s) {
  return rt_arena_strndup(a, s, strlen(s));
}

/* Packs a message into the arena. */
#define QRY_PACK(arena, type, msg, outp, outlen)                         \
  do {                                                                   \
    size_t qry_l_ = ringtail__##type##__get_packed_size(msg);            \
    uint8_t *qry_b_ = rt_arena_alloc((arena), qry_l_ ? qry_l_ : 1);      \
    if (qry_b_) {                                                        \
      ringtail__##type##__pack((msg), qry_b_);                           \
    }                                                                    \
    (outp) = qry_b_;                                                     \
    (outlen) = qry_l_;                                                   \
  } while (0)

typedef struct qry_sbuf {
  qry_sample *v;
  size_t n, cap;
} qry_sbuf;

static bool qry_sbuf_reserve(qry_sbuf *b, size_t extra) {
  if (b->n + extra <= b->cap) {
    return true;
  }
  size_t nc = b->cap ? b->cap : 256;
  while (nc < b->n + extra) {
    nc *= 2;
  }
  qry_sample *nv = rt_realloc(b->v, b->cap * sizeof *nv, nc * sizeof *nv);
  if (!nv) {
    return false;
  }
  b->v = nv;
  b->cap = nc;
  return true;
}

static void qry_fmt_labels(char *out, size_t outlen, const rt_label *l, size_t n) {
  rt_buf b = RT_BUF_INIT;
  rt_buf_putc(&b, '{');
  for (size_t i = 0; i < n; i++) {
    rt_buf_printf(&b, "%s%s=\"%s\"", i ? ", " : "", l[i].name, l[i].value);
  }
  rt_buf_putc(&b, '}');
  snprintf(out, outlen, "%s", b.data ? b.data : "{}");
  rt_buf_free(&b);
}

/* Decodes the chunks of one SeriesChunks, appending the samples inside [mint, maxt]. */
static rt_err qry_decode_chunks(const Ringtail__SeriesChunks *sc, int64_t mint, int64_t maxt,
                                qry_sbuf *buf) {
  for (size_t c = 0; c < sc->n_chunks; c++) {
    const Ringtail__Chunk *ch = sc->chunks[c];
    if (ch->encoding != RT_CHUNK_ENC_XOR) {
      return RT_EPROTO;
    }
    if (ch->maxt < mint || ch->mint > maxt) {
      continue;
    }
    uint16_t cnt = rt_chunk_count(ch->data.data, ch->data.len);
    if (!qry_sbuf_reserve(buf, cnt)) {
      return RT_ENOMEM;
    }
    rt_chunk_iter it;
    rt_chunk_iter_init(&it, ch->data.data, ch->data.len);
    int64_t t;
    double v;
    size_t got = 0;
    while (rt_chunk_iter_next(&it, &t, &v)) {
      if (++got > cnt) {
        return RT_EPROTO;
      }
      if (t >= mint && t <= maxt) {
        buf->v[buf->n].t = t;
        buf->v[buf->n].v = v;
        buf->n++;
      }
    }
    if (rt_chunk_iter_err(&it)) {
      return RT_EPROTO;
    }
  }
  return RT_OK;
}

rt_err qry_retention_start(qry_querier *q, const char *tenant, const rt_limits *l, int64_t *out,
                           char *errbuf, size_t errlen) {
  *out = INT64_MIN;
  if (l->compactor_retention_period_ms <= 0) {
    return RT_OK;
  }
  Ringtail__UserStatsRequest req = RINGTAIL__USER_STATS_REQUEST__INIT;
  req.tenant = (char *)tenant;
  size_t len = ringtail__user_stats_request__get_packed_size(&req);
  uint8_t *body = rt_alloc(len ? len : 1);
  if (!body) {
    seterr(errbuf, errlen, "out of memory");
    return RT_ENOMEM;
  }
  ringtail__user_stats_request__pack(&req, body);
  qry_reply *rs = NULL;
  size_t n = 0;
  rt_err e = qry_gather_copies(q, "ingester.UserStats", body, len, &rs, &n, errbuf, errlen);
  rt_free(body, len ? len : 1);
  if (e != RT_OK) {
    return e;
  }
  int64_t newest = INT64_MIN;
  for (size_t i = 0; i < n && e == RT_OK; i++) {
    Ringtail__UserStatsResponse *r = ringtail__user_stats_response__unpack(
        NULL, rs[i].body.len, (const uint8_t *)(rs[i].body.data ? rs[i].body.data : ""));
    if (!r) {
      if (errbuf && errlen) {
        snprintf(errbuf, errlen, "ingester %s: malformed ingester.UserStats reply", rs[i].endpoint);
      }
      e = RT_EPROTO;
      break;
    }
    if (r->has_samples && r->newest_sample_ms > newest) {
      newest = r->newest_sample_ms;
    }
    ringtail__user_stats_response__free_unpacked(r, NULL);
  }
  qry_replies_free(rs, n);
  if (e == RT_OK) {
    *out = rt_retention_start(l, newest, rt_now_ms());
  }
  return e;
}

/* The retention start of a read: the budget's, resolved once per query, or the tenant's
 * limits now. */
static rt_err qry_read_start(qry_querier *q, const char *tenant, qry_budget *b, int64_t *out,
                             char *errbuf, size_t errlen) {
  rt_limits l;
  if (b) {
    if (qry_budget_retention(b, out)) {
      return RT_OK;
    }
    l = *qry_budget_limits(b);
  } else {
    rt_limits_get(tenant, &l);
  }
  rt_err e = qry_retention_start(q, tenant, &l, out, errbuf, errlen);
  if (e == RT_OK && b) {
    *out = qry_budget_set_retention(b, *out);
  }
  return e;
}

rt_err qry_select_union(qry_querier *q, const char *tenant, const rt_matcher *const *sets,
                        const size_t *nm, size_t nsets, int64_t mint, int64_t maxt,
                        const qry_select_opts *opts, qry_result *out, char *errbuf,
                        size_t errlen) {
  memset(out, 0, sizeof *out);
  if (errbuf && errlen) {
    errbuf[0] = 0;
  }
  qry_select_opts o = {0};
  if (opts) {
    o = *opts;
  }
  rt_err err = RT_ENOMEM;
  rt_arena *scratch = rt_arena_create(64 * 1024);
  rt_arena *res = rt_arena_create(64 * 1024);
  qry_call *calls = NULL;
  size_t ncalls = 0;
  qry_entry *ents = NULL;
  size_t nents = 0, ents_cap = 0;
  qry_sbuf sb = {0};
  uint8_t **bodies = NULL;
  size_t *blen = NULL;
  if (!scratch || !res) {
    goto done;
  }
  if (o.budget) {
    err = qry_budget_check(o.budget);
    if (err != RT_OK) {
      qry_budget_breached(o.budget, errbuf, errlen);
      goto done;
    }
    err = RT_ENOMEM;
    /* max_query_lookback: nothing older than now - lookback is read */
    int64_t min = qry_budget_min_time(o.budget);
    if (mint < min) {
      mint = min;
    }
    /* max_fetched_series_per_query: an ingester need not send more than one series past it */
    int64_t ms = qry_budget_limits(o.budget)->max_fetched_series_per_query;
    if (ms > 0 && !o.limit) {
      o.limit = (uint64_t)ms + 1;
    }
  }
  /* retention: nothing older than the tenant's retention start is read, from any replica */
  int64_t rmin;
  err = qry_read_start(q, tenant, o.budget, &rmin, errbuf, errlen);
  if (err != RT_OK) {
    goto done;
  }
  err = RT_ENOMEM;
  if (mint < rmin) {
    mint = rmin;
  }
  if (nsets == 0 || maxt < mint) {
    out->priv = res;
    res = NULL;
    err = RT_OK;
    goto done;
  }
  bodies = rt_arena_alloc(scratch, nsets * sizeof *bodies);
  blen = rt_arena_alloc(scratch, nsets * sizeof *blen);
  if (!bodies || !blen) {
    goto done;
  }
  for (size_t s = 0; s < nsets; s++) {
    Ringtail__SelectRequest req = RINGTAIL__SELECT_REQUEST__INIT;
    req.tenant = (char *)tenant;
    req.n_matchers = nm[s];
    req.matchers = qry_pb_matchers(scratch, sets[s], nm[s]);
    req.mint = mint;
    req.maxt = maxt;
    req.shard_index = o.shard_index;
    req.shard_count = o.shard_count;
    req.labels_only = o.labels_only;
    req.limit = o.limit;
    if (!req.matchers) {
      goto done;
    }
    QRY_PACK(scratch, select_request, &req, bodies[s], blen[s]);
    if (!bodies[s]) {
      goto done;
    }
  }
  err = qry_gather(q, "ingester.Select", bodies, blen, nsets, &calls, &ncalls, errbuf, errlen);
  if (err != RT_OK) {
    goto done;
  }
  ProtobufCAllocator al = rt_arena_pb_allocator(scratch);
  uint64_t chunk_bytes = 0;
  for (size_t i = 0; i < ncalls; i++) {
    Ringtail__SelectResponse *r = ringtail__select_response__unpack(
        &al, calls[i].reply.len, (const uint8_t *)calls[i].reply.data);
    if (!r) {
      err = RT_EPROTO;
      if (errbuf && errlen) {
        snprintf(errbuf, errlen, "ingester %s: malformed ingester.Select reply",
                 rt_rpc_client_endpoint(calls[i].client));
      }
      goto done;
    }
    rt_buf_free(&calls[i].reply);
    if (nents + r->n_series > ents_cap) {
      size_t nc = ents_cap ? ents_cap * 2 : 64;
      while (nc < nents + r->n_series) {
        nc *= 2;
      }
      qry_entry *ne = rt_realloc(ents, ents_cap * sizeof *ne, nc * sizeof *ne);
      if (!ne) {
        err = RT_ENOMEM;
        goto done;
      }
      ents = ne;
      ents_cap = nc;
    }
    for (size_t k = 0; k < r->n_series; k++) {
      Ringtail__SeriesChunks *sc = r->series[k];
      for (size_t c = 0; c < sc->n_chunks; c++) {
        chunk_bytes += sc->chunks[c]->data.len;
      }
      qry_entry *e = &ents[nents++];
      e->sc = sc;
      e->src = i;
      e->n = sc->n_labels;
      e->labels = rt_arena_alloc(scratch, (e->n ? e->n : 1) * sizeof *e->labels);
      if (!e->labels) {
        err = RT_ENOMEM;
        goto done;
      }
      for (size_t j = 0; j < e->n; j++) {
        e->labels[j].name = sc->labels[j]->name;
        e->labels[j].value = sc->labels[j]->value;
      }
      rt_labels_sort(e->labels, e->n);
    }
  }
  /* One ingester and one matcher set answer sorted and unique: check that in one pass and
   * skip the sort and the grouping comparisons then. */
  bool unique = true;
  for (size_t i = 1; i < nents; i++) {
    if (rt_labels_cmp(ents[i - 1].labels, ents[i - 1].n, ents[i].labels, ents[i].n) >= 0) {
      unique = false;
      break;
    }
  }
  size_t ngroups = nents;
  if (!unique) {
    qsort(ents, nents, sizeof *ents, qry_entry_cmp);
    ngroups = 0;
    for (size_t i = 0; i < nents; i++) {
      if (i == 0 || rt_labels_cmp(ents[i - 1].labels, ents[i - 1].n, ents[i].labels, ents[i].n)) {
        ngroups++;
      }
    }
  }
  if (o.budget) {
    /* chunk bytes before decoding anything */
    err = qry_budget_add(o.budget, NULL, 0, chunk_bytes, 0);
    if (err != RT_OK) {
      qry_budget_breached(o.budget, errbuf, errlen);
      goto done;
    }
  }
  qry_series *series = rt_arena_alloc(res, (ngroups ? ngroups : 1) * sizeof *series);
  if (!series) {
    err = RT_ENOMEM;
    goto done;
  }
  size_t g = 0, total = 0;
  for (size_t i = 0; i < nents;) {
    size_t j = i + 1;
    while (!unique && j < nents &&
           rt_labels_cmp(ents[i].labels, ents[i].n, ents[j].labels, ents[j].n) == 0) {
      j++;
    }
    qry_series *se = &series[g++];
    memset(se, 0, sizeof *se);
    rt_label *ls = rt_arena_alloc(res, (ents[i].n ? ents[i].n : 1) * sizeof *ls);
    if (!ls) {
      err = RT_ENOMEM;
      goto done;
    }
    for (size_t k = 0; k < ents[i].n; k++) {
      ls[k].name = qry_arena_strdup(res, ents[i].labels[k].name);
      ls[k].value = qry_arena_strdup(res, ents[i].labels[k].value);
      if (!ls[k].name || !ls[k].value) {
        err = RT_ENOMEM;
        goto done;
      }
    }
    se->labels = ls;
    se->nlabels = ents[i].n;
    se->hash = rt_series_hash(tenant, ls, se->nlabels);
    if (!o.labels_only) {
      sb.n = 0;
      for (size_t k = i; k < j; k++) {
        err = qry_decode_chunks(ents[k].sc, mint, maxt, &sb);
        if (err != RT_OK) {
          if (errbuf && errlen) {
            char lb[512];
            qry_fmt_labels(lb, sizeof lb, ls, se->nlabels);
            snprintf(errbuf, errlen, "ingester %s: %s in series %s",
                     rt_rpc_client_endpoint(calls[ents[k].src].client),
                     err == RT_ENOMEM ? "out of memory" : "malformed chunk", lb);
          }
          goto done;
        }
      }
      size_t n = qry_samples_merge(sb.v, sb.n);
      total += n;
      if (o.max_samples && total > o.max_samples) {
        err = RT_ELIMIT;
        seterr(errbuf, errlen,
               "query processing would load too many samples into memory in query execution");
        goto done;
      }
      if (n) {
        qry_sample *smp = rt_arena_alloc(res, n * sizeof *smp);
        if (!smp) {
          err = RT_ENOMEM;
          goto done;
        }
        memcpy(smp, sb.v, n * sizeof *smp);
        se->samples = smp;
      }
      se->nsamples = n;
    }
    i = j;
  }
  if (o.budget && ngroups) {
    uint64_t *hs = rt_arena_alloc(scratch, ngroups * sizeof *hs);
    if (!hs) {
      err = RT_ENOMEM;
      goto done;
    }
    for (size_t k = 0; k < ngroups; k++) {
      hs[k] = series[k].hash;
    }
    err = qry_budget_add(o.budget, hs, ngroups, 0, total);
    if (err != RT_OK) {
      if (err == RT_ELIMIT) {
        qry_budget_breached(o.budget, errbuf, errlen);
      }
      goto done;
    }
  }
  out->series = series;
  out->nseries = ngroups;
  out->nsamples = total;
  out->priv = res;
  res = NULL;
  err = RT_OK;
done:
  if (err == RT_ENOMEM && errbuf && errlen && !errbuf[0]) {
    seterr(errbuf, errlen, "out of memory");
  }
  if (err != RT_OK) {
    memset(out, 0, sizeof *out);
  }
  rt_free(sb.v, sb.cap * sizeof *sb.v);
  rt_free(ents, ents_cap * sizeof *ents);
  qry_calls_free(calls, ncalls);
  if (res) {
    rt_arena_destroy(res);
  }
  if (scratch) {
    rt_arena_destroy(scratch);
  }
  return err;
}

rt_err qry_select(qry_querier *q, const char *tenant, const rt_matcher *m, size_t n, int64_t mint,
                  int64_t maxt, const qry_select_opts *opts, qry_result *out, char *errbuf,
                  size_t errlen) {
  const rt_matcher *sets[1] = {m};
  size_t nm[1] = {n};
  return qry_select_union(q, tenant, sets, nm, 1, mint, maxt, opts, out, errbuf, errlen);
}

void qry_result_free(qry_result *r) {
  if (r && r->priv) {
    rt_arena_destroy(r->priv);
  }
  if (r) {
    memset(r, 0, sizeof *r);
  }
}

/* ------------------------------------------------------------ label names and values */

static int qry_strp_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static rt_err qry_labels_common(qry_querier *q, const char *method, const char *tenant,
                                const char *name, const rt_matcher *const *sets, const size_t *nm,
                                size_t nsets, int64_t mint, int64_t maxt, uint64_t limit,
                                qry_strings *out, char *errbuf, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (errbuf && errlen) {
    errbuf[0] = 0;
  }
  /* retention: nothing older than the tenant's retention start is read, from any replica */
  int64_t rmin;
  rt_err err = qry_read_start(q, tenant, NULL, &rmin, errbuf, errlen);
  if (err != RT_OK) {
    return err;
  }
  if (mint < rmin) {
    mint = rmin;
  }
  if (mint > maxt) {
    return RT_OK;
  }
  err = RT_ENOMEM;
  size_t nreq = nsets ? nsets : 1;
  size_t ncalls = 0;
  qry_call *calls = NULL;
  char **all = NULL;
  size_t nall = 0, all_cap = 0;
  rt_arena *scratch = rt_arena_create(16 * 1024);
  rt_arena *res = rt_arena_create(16 * 1024);
  if (!scratch || !res) {
    goto done;
  }
  uint8_t **bodies = rt_arena_alloc(scratch, nreq * sizeof *bodies);
  size_t *blen = rt_arena_alloc(scratch, nreq * sizeof *blen);
  if (!bodies || !blen) {
    goto done;
  }
  for (size_t s = 0; s < nreq; s++) {
    Ringtail__LabelsRequest req = RINGTAIL__LABELS_REQUEST__INIT;
    req.tenant = (char *)tenant;
    req.name = (char *)(name ? name : "");
    if (nsets) {
      req.n_matchers = nm[s];
      req.matchers = qry_pb_matchers(scratch, sets[s], nm[s]);
      if (!req.matchers) {
        goto done;
      }
    }
    req.mint = mint;
    req.maxt = maxt;
    req.limit = limit;
    QRY_PACK(scratch, labels_request, &req, bodies[s], blen[s]);
    if (!bodies[s]) {
      goto done;
    }
  }
  err = qry_gather(q, method, bodies, blen, nreq, &calls, &ncalls, errbuf, errlen);
  if (err != RT_OK) {
    goto done;
  }
  ProtobufCAllocator al = rt_arena_pb_allocator(scratch);
  for (size_t i = 0; i < ncalls; i++) {
    Ringtail__LabelsResponse *r = ringtail__labels_response__unpack(
        &al, calls[i].reply.len, (const uint8_t *)calls[i].reply.data);
    if (!r) {
      err = RT_EPROTO;
      if (errbuf && errlen) {
        snprintf(errbuf, errlen, "ingester %s: malformed %s reply",
                 rt_rpc_client_endpoint(calls[i].client), method);
      }
      goto done;
    }
    rt_buf_free(&calls[i].reply);
    if (nall + r->n_values > all_cap) {
      size_t nc = all_cap ? all_cap * 2 : 64;
      while (nc < nall + r->n_values) {
        nc *= 2;
      }
      char **na = rt_realloc(all, all_cap * sizeof *na, nc * sizeof *na);
      if (!na) {
        err = RT_ENOMEM;
        goto done;
      }
      all = na;
      all_cap = nc;
    }
    for (size_t k = 0; k < r->n_values; k++) {
      all[nall++] = r->values[k];
    }
  }
  if (nall > 1) {
    qsort(all, nall, sizeof *all, qry_strp_cmp);
  }
  size_t nu = 0;
  for (size_t i = 0; i < nall; i++) {
    if (nu == 0 || strcmp(all[nu - 1], all[i]) != 0) {
      all[nu++] = all[i];
    }
  }
  out->v = rt_arena_alloc(res, (nu ? nu : 1) * sizeof *out->v);
  if (!out->v) {
    err = RT_ENOMEM;
    goto done;
  }
  for (size_t i = 0; i < nu; i++) {
    out->v[i] = qry_arena_strdup(res, all[i]);
    if (!out->v[i]) {
      err = RT_ENOMEM;
      goto done;
    }
  }
  out->n = nu;
  out->priv = res;
  res = NULL;
  err = RT_OK;
done:
  if (err == RT_ENOMEM && errbuf && errlen && !errbuf[0]) {
    seterr(errbuf, errlen, "out of memory");
  }
  if (err != RT_OK) {
    memset(out, 0, sizeof *out);
  }
  rt_free(all, all_cap * sizeof *all);
  qry_calls_free(calls, ncalls);
  if (res) {
    rt_arena_destroy(res);
  }
  if (scratch) {
    rt_arena_destroy(scratch);
  }
  return err;
}

rt_err qry_label_names(qry_querier *q, const char *tenant, const rt_matcher *const *sets,
                       const size_t *nm, size_t nsets, int64_t mint, int64_t maxt, uint64_t limit,
                       qry_strings *out, char *errbuf, size_t errlen) {
  return qry_labels_common(q, "ingester.LabelNames", tenant, NULL, sets, nm, nsets, mint, maxt,
                           limit, out, errbuf, errlen);
}

rt_err qry_label_values(qry_querier *q, const char *tenant, const char *name,
                        const rt_matcher *const *sets, const size_t *nm, size_t nsets,
                        int64_t mint, int64_t maxt, uint64_t limit, qry_strings *out,
                        char *errbuf, size_t errlen) {
  return qry_labels_common(q, "ingester.LabelValues", tenant, name, sets, nm, nsets, mint, maxt,
                           limit, out, errbuf, errlen);
}

void qry_strings_free(qry_strings *s) {
  if (s && s->priv) {
    rt_arena_destroy(s->priv);
  }
  if (s) {
    memset(s, 0, sizeof *s);
  }
}

/* ------------------------------------------------------------ metadata */

static const char *qry_meta_type(int t) {
  switch (t) {
  case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER: return "counter";
  case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE: return "gauge";
  case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__HISTOGRAM: return "histogram";
  case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGEHISTOGRAM: return "gaugehistogram";
  case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__SUMMARY: return "summary";
  case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__INFO: return "info";
  case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__STATESET: return "stateset";
  default: return "unknown";
  }
}

static int qry_meta_cmp(const void *a, const void *b) {
  const qry_meta *x = a, *y = b;
  int c = strcmp(x->metric, y->metric);
  if (!c) {
    c = strcmp(x->type, y->type);
  }
  if (!c) {
    c = strcmp(x->help, y->help);
  }
  if (!c) {
    c = strcmp(x->unit, y->unit);
  }
  return c;
}

rt_err qry_metadata(qry_querier *q, const char *tenant, const char *metric, qry_metas *out,
                    char *errbuf, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (errbuf && errlen) {
    errbuf[0] = 0;
  }
  rt_err err = RT_ENOMEM;
  qry_call *calls = NULL;
  size_t ncalls = 0;
  rt_arena *scratch = rt_arena_create(16 * 1024);
  rt_arena *res = rt_arena_create(16 * 1024);
  qry_meta *all = NULL;
  size_t nall = 0, cap = 0;
  if (!scratch || !res) {
    goto done;
  }
  Ringtail__MetadataRequest req = RINGTAIL__METADATA_REQUEST__INIT;
  req.tenant = (char *)tenant;
  req.metric = (char *)(metric ? metric : "");
  uint8_t *body;
  size_t blen;
  QRY_PACK(scratch, metadata_request, &req, body, blen);
  if (!body) {
    goto done;
  }
  err = qry_gather(q, "ingester.Metadata", &body, &blen, 1, &calls, &ncalls, errbuf, errlen);
  if (err != RT_OK) {
    goto done;
  }
  ProtobufCAllocator al = rt_arena_pb_allocator(scratch);
  for (size_t i = 0; i < ncalls; i++) {
    Ringtail__MetadataResponse *r = ringtail__metadata_response__unpack(
        &al, calls[i].reply.len, (const uint8_t *)calls[i].reply.data);
    if (!r) {
      err = RT_EPROTO;
      if (errbuf && errlen) {
        snprintf(errbuf, errlen, "ingester %s: malformed ingester.Metadata reply",
                 rt_rpc_client_endpoint(calls[i].client));
      }
      goto done;
    }
    rt_buf_free(&calls[i].reply);
    if (nall + r->n_metadata > cap) {
      size_t nc = cap ? cap * 2 : 64;
      while (nc < nall + r->n_metadata) {
        nc *= 2;
      }
      qry_meta *na = rt_realloc(all, cap * sizeof *na, nc * sizeof *na);
      if (!na) {
        err = RT_ENOMEM;
        goto done;
      }
      all = na;
      cap = nc;
    }
    for (size_t k = 0; k < r->n_metadata; k++) {
      const Prometheus__MetricMetadata *m = r->metadata[k];
      if (metric && metric[0] && strcmp(m->metric_family_name, metric) != 0) {
        continue;
      }
      all[nall].metric = m->metric_family_name;
      all[nall].type = qry_meta_type(m->type);
      all[nall].help = m->help;
      all[nall].unit = m->unit;
      nall++;
    }
  }
  if (nall > 1) {
    qsort(all, nall, sizeof *all, qry_meta_cmp);
  }
  size_t nu = 0;
  for (size_t i = 0; i < nall; i++) {
    if (nu == 0 || qry_meta_cmp(&all[nu - 1], &all[i]) != 0) {
      all[nu++] = all[i];
    }
  }
  out->v = rt_arena_alloc(res, (nu ? nu : 1) * sizeof *out->v);
  if (!out->v) {
    err = RT_ENOMEM;
    goto done;
  }
  for (size_t i = 0; i < nu; i++) {
    out->v[i].metric = qry_arena_strdup(res, all[i].metric);
    out->v[i].type = all[i].type;
    out->v[i].help = qry_arena_strdup(res, all[i].help);
    out->v[i].unit = qry_arena_strdup(res, all[i].unit);
    if (!out->v[i].metric || !out->v[i].help || !out->v[i].unit) {
      err = RT_ENOMEM;
      goto done;
    }
  }
  out->n = nu;
  out->priv = res;
  res = NULL;
  err = RT_OK;
done:
  if (err == RT_ENOMEM && errbuf && errlen && !errbuf[0]) {
    seterr(errbuf, errlen, "out of memory");
  }
  if (err != RT_OK) {
    memset(out, 0, sizeof *out);
  }
  rt_free(all, cap * sizeof *all);
  qry_calls_free(calls, ncalls);
  if (res) {
    rt_arena_destroy(res);
  }
  if (scratch) {
    rt_arena_destroy(scratch);
  }
  return err;
}

void qry_metas_free(qry_metas *m) {
  if (m && m->priv) {
    rt_arena_destroy(m->priv);
  }
  if (m) {
    memset(m, 0, sizeof *m);
  }
}

/* ------------------------------------------------------------ series deletion */

rt_err qry_delete_series(qry_querier *q, const char *tenant, const rt_matcher *const *sets,
                         const size_t *nm, size_t nsets, int64_t mint, int64_t maxt,
                         uint64_t *deleted, char *errbuf, size_t errlen) {
  *deleted = 0;
  if (errbuf && errlen) {
    errbuf[0] = 0;
  }
  rt_arena *scratch = rt_arena_create(16 * 1024);
  if (!scratch) {
    return RT_ENOMEM;
  }
  rt_err err = RT_ENOMEM;
  qry_call *calls = NULL;
  size_t ncalls = 0, ncap = 0;
  ring_snapshot *snap = NULL;
  uint8_t **bodies = rt_arena_alloc(scratch, (nsets ? nsets : 1) * sizeof *bodies);
  size_t *blen = rt_arena_alloc(scratch, (nsets ? nsets : 1) * sizeof *blen);
  if (!bodies || !blen) {
    goto done;
  }
  for (size_t s = 0; s < nsets; s++) {
    Ringtail__DeleteSeriesRequest req = RINGTAIL__DELETE_SERIES_REQUEST__INIT;
    req.tenant = (char *)tenant;
    req.n_matchers = nm[s];
    req.matchers = qry_pb_matchers(scratch, sets[s], nm[s]);
    req.mint = mint;
    req.maxt = maxt;
    if (!req.matchers) {
      goto done;
    }
    QRY_PACK(scratch, delete_series_request, &req, bodies[s], blen[s]);
    if (!bodies[s]) {
      goto done;
    }
  }
  /* every instance that may hold the tenant's samples, whatever its state: a deletion that
   * cannot reach one of them fails (it is idempotent; the caller retries) */
  snap = ring_snapshot_acquire(q->ring);
  size_t ninst = ring_snapshot_count(snap);
  ncap = ninst * nsets > 0 ? ninst * nsets : 1;
  calls = rt_calloc(ncap, sizeof *calls);
  if (!calls) {
    goto done;
  }
  err = RT_OK;
  for (size_t i = 0; i < ninst && !err; i++) {
    const ring_instance *in = ring_snapshot_instance(snap, i);
    if (!in->rpc_addr[0]) {
      continue;
    }
    rt_rpc_client *c = rt_rpc_pool_get(q->pool, in->rpc_addr);
    if (!c) {
      err = RT_ENOMEM;
      break;
    }
    for (size_t s = 0; s < nsets; s++) {
      qry_call *cl = &calls[ncalls++];
      cl->client = c;
      cl->method = "ingester.DeleteSeries";
      cl->req = bodies[s];
      cl->req_len = blen[s];
      cl->timeout_ms = q->timeout_ms;
    }
  }
  if (err != RT_OK) {
    goto done;
  }
  err = qry_fanout(calls, ncalls, errbuf, errlen);
  if (err != RT_OK) {
    goto done;
  }
  ProtobufCAllocator al = rt_arena_pb_allocator(scratch);
  for (size_t i = 0; i < ncalls; i++) {
    Ringtail__DeleteSeriesResponse *r = ringtail__delete_series_response__unpack(
        &al, calls[i].reply.len, (const uint8_t *)calls[i].reply.data);
    if (!r) {
      err = RT_EPROTO;
      if (errbuf && errlen) {
        snprintf(errbuf, errlen, "ingester %s: malformed ingester.DeleteSeries reply",
                 rt_rpc_client_endpoint(calls[i].client));
      }
      goto done;
    }
    *deleted += r->series;
  }
done:
  if (err == RT_ENOMEM && errbuf && errlen && !errbuf[0]) {
    seterr(errbuf, errlen, "out of memory");
  }
  qry_calls_free(calls, ncap);
  if (snap) {
    ring_snapshot_release(snap);
  }
  rt_arena_destroy(scratch);
  return err;
}
