/* ha.c - HA-pair deduplication: which replica of a (tenant, cluster) is accepted, asked of the
 * arbiters (ingester.HaElect) and cached briefly. See distributor/DESIGN.md "HA pairs". */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fanout.h"
#include "common/labels.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/rpc.h"
#include "distributor/dist_int.h"
#include "rpc.pb-c.h"

#define HA_MAX_ARBITERS RT_MAX_ENDPOINTS
/* cache entries not asked about for this long are forgotten (absence only means "ask") */
#define HA_FORGET_MS (3600 * 1000)

typedef struct ha_entry {
  struct ha_entry *next;
  char *tenant;
  char *cluster;
  char *elected;          /* NULL until the arbiters gave a majority */
  bool confirmed;         /* the arbiters refreshed `elected` at asked_ms */
  int64_t asked_ms;       /* monotonic, when the question that set `elected` was sent */
  rt_counter *deduped;    /* ringtail_distributor_deduped_samples_total{user,cluster} */
  rt_counter *changes;    /* ringtail_ha_tracker_elected_replica_changes_total{user,cluster} */
} ha_entry;

struct dist_ha {
  pthread_mutex_t mu;
  ha_entry *entries;      /* a short list per distributor: one entry per (tenant, cluster) */
  size_t n;
  int64_t next_sweep_ms;
  atomic_uint_least64_t calls, errors, changes;
};

static int64_t mono_ms(void) { return (int64_t)(rt_mono_ns() / 1000000u); }

/* ------------------------------------------------------------------ pure rules */

static dist_ha_verdict cache_rule(bool have, const char *elected, bool confirmed,
                                  int64_t asked_ms, const char *replica, int64_t now_ms,
                                  int64_t window_ms, dist_ha_verdict otherwise) {
  if (!have || !elected || now_ms - asked_ms >= window_ms || now_ms < asked_ms) {
    return otherwise;
  }
  if (strcmp(elected, replica) == 0) {
    return confirmed ? DIST_HA_ACCEPT : otherwise;
  }
  return DIST_HA_DROP;
}

dist_ha_verdict dist_ha_from_cache(bool have, const char *elected, bool confirmed,
                                   int64_t asked_ms, const char *replica, int64_t now_ms,
                                   int64_t timeout_ms) {
  return cache_rule(have, elected, confirmed, asked_ms, replica, now_ms, timeout_ms / 3,
                    DIST_HA_ASK);
}

dist_ha_verdict dist_ha_unanswered(bool have, const char *elected, bool confirmed,
                                   int64_t asked_ms, const char *replica, int64_t now_ms,
                                   int64_t timeout_ms) {
  return cache_rule(have, elected, confirmed, asked_ms, replica, now_ms, timeout_ms / 2,
                    DIST_HA_UNAVAILABLE);
}

dist_ha_verdict dist_ha_tally(const char *const *answers, size_t n, int quorum,
                              const char *replica, size_t *winner) {
  if (quorum <= 0) {
    return DIST_HA_UNAVAILABLE;
  }
  for (size_t i = 0; i < n; i++) {
    if (!answers[i] || !answers[i][0]) {
      continue;
    }
    bool seen = false;
    for (size_t k = 0; k < i && !seen; k++) {
      seen = answers[k] && strcmp(answers[k], answers[i]) == 0;
    }
    if (seen) {
      continue; /* counted with its first occurrence */
    }
    int votes = 0;
    for (size_t k = i; k < n; k++) {
      votes += answers[k] && strcmp(answers[k], answers[i]) == 0;
    }
    if (votes >= quorum) {
      if (strcmp(answers[i], replica) == 0) {
        return DIST_HA_ACCEPT;
      }
      if (winner) {
        *winner = i;
      }
      return DIST_HA_DROP;
    }
  }
  return DIST_HA_UNAVAILABLE;
}

/* ------------------------------------------------------------------ cache */

rt_err dist_ha_create(dist_ha **out) {
  *out = rt_calloc(1, sizeof **out);
  if (!*out) {
    return RT_ENOMEM;
  }
  pthread_mutex_init(&(*out)->mu, NULL);
  return RT_OK;
}

static void entry_free(ha_entry *e) {
  rt_free(e->tenant, 0);
  rt_free(e->cluster, 0);
  rt_free(e->elected, 0);
  rt_free(e, sizeof *e);
}

void dist_ha_destroy(dist_ha *h) {
  if (!h) {
    return;
  }
  for (ha_entry *e = h->entries, *nx; e; e = nx) {
    nx = e->next;
    entry_free(e);
  }
  pthread_mutex_destroy(&h->mu);
  rt_free(h, sizeof *h);
}

void dist_ha_stats(const dist_ha *h, dist_stats *out) {
  dist_ha *m = (dist_ha *)h;
  out->ha_arbiter_calls = atomic_load_explicit(&m->calls, memory_order_relaxed);
  out->ha_arbiter_errors = atomic_load_explicit(&m->errors, memory_order_relaxed);
  out->ha_elected_changes = atomic_load_explicit(&m->changes, memory_order_relaxed);
}

/* The entry of (tenant, cluster), created when absent (lock held). NULL on OOM. */
static ha_entry *entry_get(dist_ha *h, const char *tenant, const char *cluster, int64_t now) {
  if (now >= h->next_sweep_ms) {
    for (ha_entry **pp = &h->entries; *pp;) {
      ha_entry *e = *pp;
      if (now - e->asked_ms > HA_FORGET_MS) {
        *pp = e->next;
        entry_free(e);
        h->n--;
      } else {
        pp = &e->next;
      }
    }
    h->next_sweep_ms = now + 60000;
  }
  ha_entry **pp = &h->entries;
  for (; *pp; pp = &(*pp)->next) {
    if (strcmp((*pp)->cluster, cluster) == 0 && strcmp((*pp)->tenant, tenant) == 0) {
      ha_entry *e = *pp;
      if (pp != &h->entries) { /* most recently used first */
        *pp = e->next;
        e->next = h->entries;
        h->entries = e;
      }
      return e;
    }
  }
  ha_entry *e = rt_calloc(1, sizeof *e);
  if (!e) {
    return NULL;
  }
  e->tenant = rt_strdup(tenant);
  e->cluster = rt_strdup(cluster);
  if (!e->tenant || !e->cluster) {
    entry_free(e);
    return NULL;
  }
  e->asked_ms = now;
  e->next = h->entries;
  h->entries = e;
  h->n++;
  return e;
}

/* Records a majority answer to a question sent at asked (lock held). */
static void entry_learn(dist_ha *h, ha_entry *e, const char *elected, bool confirmed,
                        int64_t asked) {
  if (e->elected && strcmp(e->elected, elected) == 0) {
    /* same replica: keep the newer question; a confirmation is never replaced by an older
     * one, nor by a newer unconfirmed answer while it still counts */
    if (asked >= e->asked_ms && (confirmed || !e->confirmed)) {
      e->asked_ms = asked;
      e->confirmed = confirmed;
    }
    return;
  }
  if (e->elected && asked < e->asked_ms) {
    return; /* an older question answered late */
  }
  char *copy = rt_strdup(elected);
  if (!copy) {
    return;
  }
  if (e->elected) {
    atomic_fetch_add_explicit(&h->changes, 1, memory_order_relaxed);
    if (!e->changes) {
      e->changes = rt_counter_get(rt_metrics_default(),
                                  "ringtail_ha_tracker_elected_replica_changes_total",
                                  "Changes of the elected replica of an HA cluster seen by this "
                                  "distributor.",
                                  "user,cluster", e->tenant, e->cluster);
    }
    rt_counter_inc(e->changes);
    rt_info("distributor", "HA cluster elected another replica", "tenant=%s cluster=\"%s\" "
            "from=\"%s\" to=\"%s\"", e->tenant, e->cluster, e->elected, elected);
  }
  rt_free(e->elected, 0);
  e->elected = copy;
  e->confirmed = confirmed;
  e->asked_ms = asked;
}

/* ------------------------------------------------------------------ asking */

/* Asks every arbiter of (tenant, cluster) about replica. Fills answers (arena strings; NULL =
 * no answer) and returns the verdict of dist_ha_tally; *nout / *quorum_out describe the set. */
static dist_ha_verdict ask(dist_distributor *d, dist_ha *h, const char *tenant,
                           const char *cluster, const char *replica, int64_t timeout_ms,
                           rt_arena *arena, const char **winner, size_t *nout, int *quorum_out,
                           char *err, size_t errlen) {
  rt_label key = {"__ha_cluster__", cluster};
  uint32_t token = rt_series_token(rt_series_hash(tenant, &key, 1));
  rt_rpc_client *arb[HA_MAX_ARBITERS];
  int quorum = 0;
  size_t n = dist_arbiters(d, token, arb, HA_MAX_ARBITERS, &quorum);
  *nout = n;
  *quorum_out = quorum;
  *winner = NULL;
  err[0] = 0;
  if (n == 0) {
    snprintf(err, errlen, "no ingester to ask");
    return DIST_HA_UNAVAILABLE;
  }
  Ringtail__HaElectRequest rq;
  ringtail__ha_elect_request__init(&rq);
  rq.tenant = (char *)tenant;
  rq.cluster = (char *)cluster;
  rq.replica = (char *)replica;
  rq.failover_timeout_ms = timeout_ms;
  size_t len = ringtail__ha_elect_request__get_packed_size(&rq);
  uint8_t *buf = rt_arena_alloc(arena, len ? len : 1);
  const char **answers = rt_arena_alloc(arena, n * sizeof *answers);
  if (!buf || !answers) {
    snprintf(err, errlen, "out of memory");
    return DIST_HA_UNAVAILABLE;
  }
  ringtail__ha_elect_request__pack(&rq, buf);
  for (size_t i = 0; i < n; i++) {
    answers[i] = NULL;
  }
  int call_timeout = dist_get_config(d)->timeout_ms;
  ProtobufCAllocator al = rt_arena_pb_allocator(arena);
  atomic_fetch_add_explicit(&h->calls, n, memory_order_relaxed);

  dist_ha_verdict v = DIST_HA_UNAVAILABLE;
  size_t win = 0;
  if (n == 1) {
    /* one arbiter (a single process): call it on this thread */
    rt_buf reply = RT_BUF_INIT;
    char em[256] = "";
    rt_err e = rt_rpc_call(arb[0], "ingester.HaElect", buf, len, call_timeout, &reply, em,
                           sizeof em);
    Ringtail__HaElectResponse *r =
        e == RT_OK ? ringtail__ha_elect_response__unpack(&al, reply.len,
                                                         (const uint8_t *)(reply.data ? reply.data : ""))
                   : NULL;
    if (r) {
      answers[0] = r->elected;
    } else {
      atomic_fetch_add_explicit(&h->errors, 1, memory_order_relaxed);
      snprintf(err, errlen, "%s: %s", rt_rpc_client_endpoint(arb[0]),
               e == RT_OK ? "malformed answer" : em[0] ? em : rt_strerror(e));
    }
    rt_buf_free(&reply);
    v = dist_ha_tally(answers, n, quorum, replica, &win);
  } else {
    rt_fanout *fo = NULL;
    if (rt_fanout_create(n, &fo) != RT_OK) {
      snprintf(err, errlen, "out of memory");
      return DIST_HA_UNAVAILABLE;
    }
    size_t *idx = rt_arena_alloc(arena, n * sizeof *idx);
    bool *done = rt_arena_alloc(arena, n * sizeof *done);
    if (!idx || !done) {
      rt_fanout_release(fo);
      snprintf(err, errlen, "out of memory");
      return DIST_HA_UNAVAILABLE;
    }
    for (size_t i = 0; i < n; i++) {
      done[i] = rt_fanout_start(fo, arb[i], "ingester.HaElect", buf, len, call_timeout,
                                &idx[i]) != RT_OK;
      if (done[i]) {
        atomic_fetch_add_explicit(&h->errors, 1, memory_order_relaxed);
      }
    }
    uint64_t deadline = rt_mono_ns() + (uint64_t)(call_timeout + 500) * 1000000ull;
    size_t seen = 0, started = rt_fanout_count(fo);
    for (;;) {
      size_t ndone = 0;
      for (size_t i = 0; i < n; i++) {
        rt_err e;
        const rt_buf *reply;
        const char *em;
        if (!done[i] && rt_fanout_result(fo, idx[i], &e, &reply, &em)) {
          done[i] = true;
          Ringtail__HaElectResponse *r =
              e == RT_OK ? ringtail__ha_elect_response__unpack(
                               &al, reply->len, (const uint8_t *)(reply->data ? reply->data : ""))
                         : NULL;
          if (r) {
            answers[i] = r->elected;
          } else {
            atomic_fetch_add_explicit(&h->errors, 1, memory_order_relaxed);
            if (!err[0]) {
              snprintf(err, errlen, "%s: %s", rt_rpc_client_endpoint(arb[i]),
                       e == RT_OK ? "malformed answer" : em && em[0] ? em : rt_strerror(e));
            }
          }
        }
        ndone += done[i];
      }
      v = dist_ha_tally(answers, n, quorum, replica, &win);
      /* a majority decides; the slow rest is left to finish on its own */
      if (v != DIST_HA_UNAVAILABLE || ndone == n || seen >= started ||
          rt_mono_ns() >= deadline) {
        if (v == DIST_HA_UNAVAILABLE && ndone < n && !err[0]) {
          snprintf(err, errlen, "%zu of %zu arbiters did not answer in time", n - ndone, n);
        }
        break;
      }
      seen = rt_fanout_wait(fo, seen, deadline);
    }
    rt_fanout_release(fo);
  }
  if (v == DIST_HA_DROP) {
    *winner = answers[win];
  }
  if (v == DIST_HA_UNAVAILABLE) {
    /* name the answers: "a, b, (none)" */
    size_t o = strlen(err);
    o += (size_t)snprintf(err + o, o < errlen ? errlen - o : 0, "%sanswers:", o ? "; " : "");
    for (size_t i = 0; i < n && o < errlen; i++) {
      o += (size_t)snprintf(err + o, errlen - o, "%s %.40s", i ? "," : "",
                            !answers[i] ? "(none)" : answers[i][0] ? answers[i] : "(abstained)");
    }
  }
  return v;
}

/* The verdict for replica R of (tenant, cluster) now, asking the arbiters when the cache can
 * not decide. On DIST_HA_UNAVAILABLE msg gets the reason. */
static dist_ha_verdict decide(dist_distributor *d, dist_ha *h, const char *tenant,
                              const char *cluster, const char *replica, int64_t timeout_ms,
                              rt_arena *arena, rt_counter **deduped, rt_buf *msg) {
  int64_t now = mono_ms();
  pthread_mutex_lock(&h->mu);
  ha_entry *e = entry_get(h, tenant, cluster, now);
  dist_ha_verdict v = DIST_HA_UNAVAILABLE;
  if (e) {
    v = dist_ha_from_cache(e->elected != NULL, e->elected, e->confirmed, e->asked_ms, replica,
                           now, timeout_ms);
    if (!e->deduped) {
      e->deduped = rt_counter_get(rt_metrics_default(), "ringtail_distributor_deduped_samples_total",
                                  "Samples of HA replicas that are not the elected one, discarded.",
                                  "user,cluster", tenant, cluster);
    }
    *deduped = e->deduped;
  }
  pthread_mutex_unlock(&h->mu);
  if (!e) {
    rt_buf_printf(msg, "out of memory in the HA tracker");
    return DIST_HA_UNAVAILABLE;
  }
  if (v != DIST_HA_ASK) {
    return v;
  }
  char err[300];
  const char *winner = NULL;
  size_t narb = 0;
  int quorum = 0;
  v = ask(d, h, tenant, cluster, replica, timeout_ms, arena, &winner, &narb, &quorum, err,
          sizeof err);
  pthread_mutex_lock(&h->mu);
  e = entry_get(h, tenant, cluster, now);
  if (e && v == DIST_HA_ACCEPT) {
    entry_learn(h, e, replica, true, now);
  } else if (e && v == DIST_HA_DROP) {
    entry_learn(h, e, winner, false, now);
  } else if (e) {
    v = dist_ha_unanswered(e->elected != NULL, e->elected, e->confirmed, e->asked_ms, replica,
                           mono_ms(), timeout_ms);
  }
  pthread_mutex_unlock(&h->mu);
  if (v == DIST_HA_UNAVAILABLE) {
    rt_buf_reset(msg);
    rt_buf_printf(msg,
                  "HA tracker: the election of cluster \"%.200s\" (tenant %s) is not known: "
                  "fewer than %d of its %zu arbiters agreed (%s); try again (see "
                  "docs/errors.md#err-ringtail-ha-election-unknown)",
                  cluster, tenant, quorum, narb, err);
    rt_warn("distributor", "HA election unknown", "tenant=%s cluster=\"%.200s\" replica=\"%.200s\" "
            "arbiters=%zu quorum=%d err=\"%s\"", tenant, cluster, replica, narb, quorum, err);
  }
  return v;
}

/* ------------------------------------------------------------------ request */

/* Index of the label called `name` with a non-empty value, or -1. */
static long find_label(const Prometheus__TimeSeries *ts, const char *name) {
  for (size_t k = 0; k < ts->n_labels; k++) {
    const Prometheus__Label *l = ts->labels[k];
    if (l->name && strcmp(l->name, name) == 0) {
      return l->value && l->value[0] ? (long)k : -1;
    }
  }
  return -1;
}

int dist_ha_filter(dist_distributor *d, const char *tenant, const rt_limits *lim,
                   dist_request *req, size_t *dropped, rt_buf *msg) {
  *dropped = 0;
  Prometheus__WriteRequest *wr = req->wr;
  dist_ha *h = dist_get_ha(d);
  if (!h || !lim->accept_ha_samples || !lim->ha_cluster_label[0] || !lim->ha_replica_label[0]) {
    return 0;
  }
  int64_t timeout = lim->ha_failover_timeout_ms > 0 ? lim->ha_failover_timeout_ms : 30000;
  /* the decision of the previous (cluster, replica) pair: Prometheus sends one per request */
  const char *pc = NULL, *pr = NULL;
  dist_ha_verdict pv = DIST_HA_ASK;
  rt_counter *deduped = NULL;
  rt_arena *arena = NULL;
  size_t keep = 0;
  for (size_t i = 0; i < wr->n_timeseries; i++) {
    Prometheus__TimeSeries *ts = wr->timeseries[i];
    dist_series_info *info = req->info ? &req->info[i] : NULL;
    long ci = -1, ri = -1;
    if (!info || info->bad_label == 0) { /* an invalid series is left to validation */
      ci = find_label(ts, lim->ha_cluster_label);
      ri = ci >= 0 ? find_label(ts, lim->ha_replica_label) : -1;
    }
    if (ci >= 0 && ri >= 0) {
      const char *cluster = ts->labels[ci]->value, *replica = ts->labels[ri]->value;
      if (!pc || strcmp(pc, cluster) != 0 || strcmp(pr, replica) != 0) {
        if (!arena) {
          arena = rt_arena_create(4096);
          if (!arena) {
            rt_buf_puts(msg, "out of memory in the HA tracker");
            return 503;
          }
        }
        rt_counter *c = NULL;
        pv = decide(d, h, tenant, cluster, replica, timeout, arena, &c, msg);
        if (pv == DIST_HA_UNAVAILABLE) {
          rt_arena_destroy(arena);
          return 503;
        }
        if (pv == DIST_HA_DROP) {
          deduped = c;
        }
        pc = cluster;
        pr = replica;
      }
      if (pv == DIST_HA_DROP) {
        size_t ns = ts->n_samples + (info ? info->n_histograms : ts->n_histograms);
        *dropped += ns;
        rt_counter_add(deduped, (double)ns);
        continue;
      }
      /* accepted: the series is stored without the replica label */
      memmove(&ts->labels[ri], &ts->labels[ri + 1],
              (ts->n_labels - (size_t)ri - 1) * sizeof *ts->labels);
      if (info && info->lens) {
        memmove(&info->lens[2 * ri], &info->lens[2 * ri + 2],
                2 * (ts->n_labels - (size_t)ri - 1) * sizeof *info->lens);
      }
      ts->n_labels--;
      if (info) {
        info->raw_ok = false;
      }
    }
    wr->timeseries[keep] = ts;
    if (req->info) {
      req->info[keep] = req->info[i];
    }
    keep++;
  }
  wr->n_timeseries = keep;
  rt_arena_destroy(arena);
  return 0;
}

/* ------------------------------------------------------------------ status */

static int cmp_entry(const void *a, const void *b) {
  return strcmp((*(ha_entry *const *)a)->cluster, (*(ha_entry *const *)b)->cluster);
}

void dist_ha_status_json(dist_distributor *d, const char *tenant, rt_buf *out) {
  dist_ha *h = dist_get_ha(d);
  rt_buf_putc(out, '[');
  if (!h) {
    rt_buf_putc(out, ']');
    return;
  }
  int64_t now = mono_ms();
  pthread_mutex_lock(&h->mu);
  ha_entry **v = rt_calloc(h->n ? h->n : 1, sizeof *v);
  size_t n = 0;
  for (ha_entry *e = h->entries; e && v; e = e->next) {
    if (e->elected && strcmp(e->tenant, tenant) == 0) {
      v[n++] = e;
    }
  }
  if (v) {
    qsort(v, n, sizeof *v, cmp_entry);
  }
  for (size_t i = 0; i < n; i++) {
    rt_buf_puts(out, i ? ",{\"cluster\":" : "{\"cluster\":");
    rt_buf_json_str(out, v[i]->cluster, strlen(v[i]->cluster));
    rt_buf_puts(out, ",\"elected\":");
    rt_buf_json_str(out, v[i]->elected, strlen(v[i]->elected));
    rt_buf_printf(out, ",\"confirmed\":%s,\"age_seconds\":%.3f}",
                  v[i]->confirmed ? "true" : "false", (double)(now - v[i]->asked_ms) / 1000.0);
  }
  pthread_mutex_unlock(&h->mu);
  rt_free(v, 0);
  rt_buf_putc(out, ']');
}
