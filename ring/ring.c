/* ring.c - a running ring member: own instance, heartbeats, gossip, snapshot publication.
 *
 * Threads: the gossip thread (heartbeat, tombstone expiry, one push-pull round per interval,
 * snapshot publication) and the rt_rpc_server workers that answer ring.Gossip. Both take
 * r->mu while they touch the descriptor; no network call is made with r->mu held. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <xxhash.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/rpc.h"
#include "ring/ring_format.h"
#include "ring/ring_int.h"

typedef struct ring_peer {
  char *addr;
  int64_t seen_ms; /* last time it gossiped to us; INT64_MAX for the join list */
} ring_peer;

typedef struct ring_client {
  char *addr;
  rt_rpc_client *c;
  int fails;        /* consecutive failed exchanges */
  int64_t retry_ms; /* not picked for gossip before this time (backoff after failures) */
} ring_client;

/* Longest backoff for a peer that keeps failing (short enough that members started in any
 * order find each other within seconds). */
#define RING_BACKOFF_MAX_MS 5000

struct ring {
  /* configuration (strings owned) */
  char *id; /* NULL for a watcher */
  char *role; /* "" = ingester (owns tokens); another role owns none */
  char *zone;
  char *http_addr;
  char *rpc_addr;
  char *data_dir;
  char *gossip_bind;
  char *gossip_addr; /* advertised */
  int num_tokens;
  int rf;
  int fanout;
  int64_t interval_ms;
  int64_t timeout_ms; /* per gossip exchange */
  int64_t hb_period_ms;
  int64_t hb_timeout_ms;
  int64_t tombstone_ttl_ms;
  int64_t auto_forget_ms; /* non-ingester entries unhealthy this long are forgotten; 0 = never */
  bool every_replica;     /* a static ring (ring_create_static) */

  /* own instance; fixed after create except under mu */
  uint32_t *tokens;
  size_t ntokens;
  ring_state state;
  int64_t hb_ms;
  int64_t registered_ms;
  bool left;       /* forgot itself: no heartbeats, no re-registration */
  bool registered; /* the own entry is in desc (set once, under mu) */

  pthread_mutex_t mu; /* desc, gen, peers, the own fields above, rng */
  ring_desc *desc;
  uint64_t gen; /* bumps on every change of desc */
  ring_peer *peers;
  size_t npeers;
  size_t cappeers;
  uint64_t rng;

  pthread_mutex_t cmu; /* clients */
  ring_client *clients;
  size_t nclients;
  size_t capclients;

  pthread_mutex_t snap_mu; /* snap (written under mu and snap_mu, so either lock reads it),
                              snap_gen and version (under mu) */
  ring_snapshot *snap;
  uint64_t snap_gen;
  uint64_t version;

  pthread_mutex_t wmu; /* stop, wake */
  pthread_cond_t wcv;
  bool stop;
  bool wake;
  bool started;
  pthread_t thr;

  rt_rpc_server *srv;

  /* metrics (children of r->metrics; NULL when a lookup failed, updates then do nothing) */
  rt_metrics *metrics;
  rt_gauge *m_members[4]; /* JOINING, ACTIVE, LEAVING, unhealthy */
  rt_gauge *m_tokens;
  rt_counter *m_out_ok, *m_out_err, *m_in_ok, *m_in_err, *m_builds;
};

static void ring_metrics_init(ring *r, rt_metrics *m) {
  r->metrics = m ? m : rt_metrics_default();
  static const char *const states[4] = {"JOINING", "ACTIVE", "LEAVING", "unhealthy"};
  for (int i = 0; i < 4; i++) {
    r->m_members[i] = rt_gauge_get(r->metrics, "ringtail_ring_members",
                                   "Ring instances by state (unhealthy ones counted apart) as "
                                   "this process sees them.",
                                   "state", states[i]);
  }
  r->m_tokens = rt_gauge_get(r->metrics, "ringtail_ring_tokens", "Tokens in the ring.", NULL);
  const char *h = "Gossip exchanges by direction and result.";
  const char *n = "ringtail_ring_gossip_exchanges_total";
  r->m_out_ok = rt_counter_get(r->metrics, n, h, "direction,result", "out", "ok");
  r->m_out_err = rt_counter_get(r->metrics, n, h, "direction,result", "out", "error");
  r->m_in_ok = rt_counter_get(r->metrics, n, h, "direction,result", "in", "ok");
  r->m_in_err = rt_counter_get(r->metrics, n, h, "direction,result", "in", "error");
  r->m_builds = rt_counter_get(r->metrics, "ringtail_ring_snapshots_total",
                               "Ring snapshots built and published.", NULL);
}

static void ring_metrics_snapshot(ring *r, const ring_snapshot *s) {
  double c[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < ring_snapshot_count(s); i++) {
    const ring_instance *in = ring_snapshot_instance(s, i);
    c[in->healthy ? (int)in->state : 3] += 1;
  }
  for (int i = 0; i < 4; i++) {
    rt_gauge_set(r->m_members[i], c[i]);
  }
  rt_gauge_set(r->m_tokens, (double)ring_snapshot_tokens(s));
  rt_counter_inc(r->m_builds);
}

static const rt_rpc_method ring_methods[] = {{RING_GOSSIP_METHOD, ring_handle_gossip}};

void ring_config_defaults(ring_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->zone = "";
  cfg->http_addr = "";
  cfg->rpc_addr = "";
  cfg->num_tokens = 128;
  cfg->gossip_interval_ms = 1000;
  cfg->gossip_fanout = 3;
  cfg->replication_factor = 3;
  cfg->heartbeat_period_ms = 5000;
  cfg->heartbeat_timeout_ms = 60000;
  cfg->tombstone_ttl_ms = 10 * 60 * 1000;
}

/* ------------------------------------------------------------------ helpers (mu held) */

/* Writes the own entry with a fresh heartbeat. */
static rt_err ring_self_put(ring *r) {
  int64_t now = rt_now_ms();
  r->hb_ms = RT_MAX(now, r->hb_ms + 1);
  ring_instance in = {
      .id = r->id,
      .zone = r->zone,
      .http_addr = r->http_addr,
      .rpc_addr = r->rpc_addr,
      .gossip_addr = r->gossip_addr,
      .state = r->state,
      .heartbeat_ms = r->hb_ms,
      .registered_ms = r->registered_ms,
      .tokens = r->tokens,
      .ntokens = (uint32_t)r->ntokens,
      .role = r->role,
  };
  rt_err err = ring_desc_set(r->desc, &in);
  if (err == RT_OK) {
    r->gen++;
  }
  return err;
}

static bool ring_is_member(const ring *r) { return r->id && !r->left; }

static void ring_peer_note(ring *r, const char *addr, int64_t seen) {
  if (!addr || !addr[0] || (r->gossip_addr[0] && strcmp(addr, r->gossip_addr) == 0)) {
    return;
  }
  for (size_t i = 0; i < r->npeers; i++) {
    if (strcmp(r->peers[i].addr, addr) == 0) {
      if (seen > r->peers[i].seen_ms) {
        r->peers[i].seen_ms = seen;
      }
      return;
    }
  }
  if (r->npeers == r->cappeers) {
    size_t cap = r->cappeers ? r->cappeers * 2 : 16;
    ring_peer *p = rt_realloc(r->peers, r->cappeers * sizeof *p, cap * sizeof *p);
    if (!p) {
      return;
    }
    r->peers = p;
    r->cappeers = cap;
  }
  char *a = rt_strdup(addr);
  if (!a) {
    return;
  }
  r->peers[r->npeers].addr = a;
  r->peers[r->npeers].seen_ms = seen;
  r->npeers++;
}

static void ring_peers_expire(ring *r, int64_t now) {
  size_t w = 0;
  for (size_t i = 0; i < r->npeers; i++) {
    if (r->peers[i].seen_ms != INT64_MAX && now - r->peers[i].seen_ms > r->hb_timeout_ms) {
      rt_free(r->peers[i].addr, 0);
      continue;
    }
    r->peers[w++] = r->peers[i];
  }
  r->npeers = w;
}

/* Merges a received RingState; re-asserts the own entry when someone holds a newer one (a
 * forget of a live instance, or an entry from before a restart). */
static rt_err ring_absorb(ring *r, const uint8_t *data, size_t len, char **sender, char *errbuf,
                          size_t errlen) {
  int64_t self_seen = -1;
  size_t changed = 0;
  rt_err err = ring_desc_decode_merge(r->desc, data, len, ring_is_member(r) ? r->id : NULL,
                                      &self_seen, &changed, sender, errbuf, errlen);
  if (changed) {
    r->gen++;
  }
  if (err == RT_OK && ring_is_member(r) && self_seen > r->hb_ms) {
    r->hb_ms = self_seen; /* the next own write is newer than anything seen */
    if (r->registered) {
      err = ring_self_put(r);
    }
  }
  return err;
}

/* ------------------------------------------------------------------ snapshots */

/* Rebuilds and publishes a snapshot when the descriptor changed or a health verdict flipped.
 * Runs under r->mu (then snap_mu for the swap), so concurrent publishers install in order. */
static void ring_publish(ring *r, bool force) {
  int64_t now = rt_now_ms();
  pthread_mutex_lock(&r->mu);
  ring_snapshot *cur = r->snap; /* only replaced under mu, so safe to read here */
  bool need = force || !cur || r->snap_gen != r->gen;
  for (size_t i = 0; !need && i < ring_snapshot_count(cur); i++) {
    const ring_instance *in = ring_snapshot_instance(cur, i);
    bool healthy = r->hb_timeout_ms <= 0 || now - in->heartbeat_ms <= r->hb_timeout_ms;
    need = healthy != in->healthy;
  }
  for (size_t i = 0; !need && i < ring_snapshot_other_count(cur); i++) {
    const ring_instance *in = ring_snapshot_other(cur, i);
    bool healthy = r->hb_timeout_ms <= 0 || now - in->heartbeat_ms <= r->hb_timeout_ms;
    need = healthy != in->healthy;
  }
  if (!need) {
    pthread_mutex_unlock(&r->mu);
    return;
  }
  ring_snapshot_opts o = {.replication_factor = r->rf,
                          .heartbeat_timeout_ms = r->hb_timeout_ms,
                          .now_ms = now,
                          .every_replica = r->every_replica};
  ring_snapshot *s;
  rt_err err = ring_snapshot_build(r->desc, &o, &s);
  ring_snapshot *old = NULL;
  if (err == RT_OK) {
    pthread_mutex_lock(&r->snap_mu);
    ring_snapshot_set_version(s, ++r->version);
    old = r->snap;
    r->snap = s;
    r->snap_gen = r->gen;
    pthread_mutex_unlock(&r->snap_mu);
    ring_metrics_snapshot(r, s);
  }
  pthread_mutex_unlock(&r->mu);
  if (err != RT_OK) {
    rt_error("ring", "cannot build a ring snapshot", "err=\"%s\"", rt_strerror(err));
    return;
  }
  ring_snapshot_release(old);
}

ring_snapshot *ring_snapshot_acquire(ring *r) {
  pthread_mutex_lock(&r->snap_mu);
  ring_snapshot *s = ring_snapshot_dup(r->snap);
  pthread_mutex_unlock(&r->snap_mu);
  return s;
}

/* ------------------------------------------------------------------ gossip */

static rt_rpc_client *ring_client_get(ring *r, const char *addr) {
  pthread_mutex_lock(&r->cmu);
  rt_rpc_client *c = NULL;
  for (size_t i = 0; i < r->nclients; i++) {
    if (strcmp(r->clients[i].addr, addr) == 0) {
      c = r->clients[i].c;
      break;
    }
  }
  if (!c && r->nclients == r->capclients) {
    size_t cap = r->capclients ? r->capclients * 2 : 16;
    ring_client *v = rt_realloc(r->clients, r->capclients * sizeof *v, cap * sizeof *v);
    if (v) {
      r->clients = v;
      r->capclients = cap;
    }
  }
  if (!c && r->nclients < r->capclients) {
    char *a = rt_strdup(addr);
    if (a && rt_rpc_client_create(addr, &c) == RT_OK) {
      r->clients[r->nclients] = (ring_client){.addr = a, .c = c};
      r->nclients++;
    } else {
      rt_free(a, 0);
      c = NULL;
    }
  }
  pthread_mutex_unlock(&r->cmu);
  return c;
}

/* Records the outcome of an exchange: a failing peer is skipped by the gossip rounds for
 * interval * 2^fails (at most RING_BACKOFF_MAX_MS), so dead peers do not slow the rounds. */
static void ring_client_outcome(ring *r, const char *addr, bool ok) {
  pthread_mutex_lock(&r->cmu);
  for (size_t i = 0; i < r->nclients; i++) {
    ring_client *c = &r->clients[i];
    if (strcmp(c->addr, addr) != 0) {
      continue;
    }
    if (ok) {
      c->fails = 0;
      c->retry_ms = 0;
    } else {
      c->fails = RT_MIN(c->fails + 1, 20);
      int64_t b = r->interval_ms << RT_MIN(c->fails, 15);
      c->retry_ms = rt_now_ms() + RT_MIN(b, (int64_t)RING_BACKOFF_MAX_MS);
    }
    break;
  }
  pthread_mutex_unlock(&r->cmu);
}

/* True when addr is in backoff. cmu is taken inside. */
static bool ring_client_backoff(ring *r, const char *addr, int64_t now) {
  bool b = false;
  pthread_mutex_lock(&r->cmu);
  for (size_t i = 0; i < r->nclients; i++) {
    if (strcmp(r->clients[i].addr, addr) == 0) {
      b = r->clients[i].retry_ms > now;
      break;
    }
  }
  pthread_mutex_unlock(&r->cmu);
  return b;
}

/* One push-pull exchange with `addr`. */
static rt_err ring_exchange(ring *r, const char *addr, char *errbuf, size_t errlen) {
  rt_rpc_client *c = ring_client_get(r, addr);
  if (!c) {
    snprintf(errbuf, errlen, "cannot create a client for %s", addr);
    return RT_ENOMEM;
  }
  rt_buf req = RT_BUF_INIT;
  pthread_mutex_lock(&r->mu);
  rt_err err = ring_desc_encode(r->desc, r->gossip_addr, &req);
  pthread_mutex_unlock(&r->mu);
  if (err != RT_OK) {
    rt_buf_free(&req);
    return err;
  }
  rt_buf rep = RT_BUF_INIT;
  err = rt_rpc_call(c, RING_GOSSIP_METHOD, req.data, req.len, (int)r->timeout_ms, &rep, errbuf,
                    errlen);
  rt_buf_free(&req);
  if (err == RT_OK) {
    pthread_mutex_lock(&r->mu);
    err = ring_absorb(r, (const uint8_t *)rep.data, rep.len, NULL, errbuf, errlen);
    pthread_mutex_unlock(&r->mu);
  }
  ring_client_outcome(r, addr, err == RT_OK);
  rt_counter_inc(err == RT_OK ? r->m_out_ok : r->m_out_err);
  rt_buf_free(&rep);
  return err;
}

rt_err ring_handle_gossip(void *ctx, const uint8_t *req, size_t req_len, rt_buf *reply,
                          char *errbuf, size_t errlen) {
  ring *r = ctx;
  char *sender = NULL;
  pthread_mutex_lock(&r->mu);
  rt_err err = ring_absorb(r, req, req_len, &sender, errbuf, errlen);
  if (err == RT_OK) {
    ring_peer_note(r, sender, rt_now_ms());
    err = ring_desc_encode(r->desc, r->gossip_addr, reply);
  }
  pthread_mutex_unlock(&r->mu);
  rt_free(sender, 0);
  rt_counter_inc(err == RT_OK ? r->m_in_ok : r->m_in_err);
  if (err == RT_EPROTO) {
    rt_warn("ring", "rejected gossip", "err=\"%s\"", errbuf);
  }
  return err;
}

/* Up to `fanout` random distinct peers from the join list, recent senders and the live
 * instances of the descriptor. Caller frees the strings and the array. */
static size_t ring_pick_peers(ring *r, char ***out) {
  *out = NULL;
  int64_t now = rt_now_ms();
  pthread_mutex_lock(&r->mu);
  size_t cap = r->npeers + r->desc->n;
  char **cand = rt_calloc(cap ? cap : 1, sizeof(char *));
  size_t n = 0;
  if (!cand) {
    pthread_mutex_unlock(&r->mu);
    return 0;
  }
  for (size_t i = 0; i < r->npeers; i++) {
    if (!ring_client_backoff(r, r->peers[i].addr, now)) {
      cand[n++] = r->peers[i].addr;
    }
  }
  for (size_t i = 0; i < r->desc->n; i++) {
    const ring_entry *e = &r->desc->v[i];
    if (e->state == RING_LEFT || !e->gossip_addr[0] || strcmp(e->gossip_addr, r->gossip_addr) == 0 ||
        (r->hb_timeout_ms > 0 && now - e->heartbeat_ms > r->hb_timeout_ms) ||
        ring_client_backoff(r, e->gossip_addr, now)) {
      continue;
    }
    bool dup = false;
    for (size_t j = 0; j < n && !dup; j++) {
      dup = strcmp(cand[j], e->gossip_addr) == 0;
    }
    if (!dup) {
      cand[n++] = e->gossip_addr;
    }
  }
  /* partial Fisher-Yates */
  size_t k = RT_MIN(n, (size_t)r->fanout);
  for (size_t i = 0; i < k; i++) {
    size_t j = i + (size_t)(ring_rand_next(&r->rng) % (n - i));
    char *t = cand[i];
    cand[i] = cand[j];
    cand[j] = t;
  }
  size_t got = 0;
  for (size_t i = 0; i < k; i++) {
    cand[got] = rt_strdup(cand[i]);
    got += cand[got] != NULL;
  }
  pthread_mutex_unlock(&r->mu);
  *out = cand;
  return got;
}

static void ring_free_strs(char **v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    rt_free(v[i], 0);
  }
  rt_free(v, 0);
}

/* Forgets entries of non-ingester roles (distributors) whose heartbeat is older than
 * auto_forget_ms: they own no tokens, so nothing moves, and a crashed distributor would
 * otherwise stay listed for good. A live one re-registers when it hears of the tombstone. */
static void ring_auto_forget(ring *r, int64_t now) {
  if (r->auto_forget_ms <= 0) {
    return;
  }
  for (size_t i = 0; i < r->desc->n; i++) {
    ring_entry *e = &r->desc->v[i];
    if (e->state == RING_LEFT || ring_role_is_ingester(e->role) ||
        now - e->heartbeat_ms <= r->auto_forget_ms || (r->id && strcmp(e->id, r->id) == 0)) {
      continue;
    }
    rt_info("ring", "forgetting an unhealthy member without tokens", "id=%s role=%s age_ms=%lld",
            e->id, e->role, (long long)(now - e->heartbeat_ms));
    if (ring_desc_forget(r->desc, e->id, now) == RT_OK) {
      r->gen++;
    }
  }
}

static void ring_tick(ring *r) {
  int64_t now = rt_now_ms();
  pthread_mutex_lock(&r->mu);
  if (ring_is_member(r) && r->registered && now - r->hb_ms >= r->hb_period_ms) {
    ring_self_put(r);
  }
  ring_auto_forget(r, now);
  if (ring_desc_gc(r->desc, now - r->tombstone_ttl_ms)) {
    r->gen++;
  }
  ring_peers_expire(r, now);
  pthread_mutex_unlock(&r->mu);
  ring_publish(r, false);

  char **peers;
  size_t n = ring_pick_peers(r, &peers);
  for (size_t i = 0; i < n; i++) {
    char err[256] = "";
    rt_err e = ring_exchange(r, peers[i], err, sizeof err);
    if (e != RT_OK) {
      rt_debug("ring", "gossip exchange failed", "peer=%s err=\"%s\"", peers[i], err);
    }
  }
  ring_free_strs(peers, n);
  ring_publish(r, false);
}

rt_err ring_flush(ring *r) {
  char **peers;
  size_t n = ring_pick_peers(r, &peers);
  size_t ok = 0;
  for (size_t i = 0; i < n; i++) {
    char err[256] = "";
    ok += ring_exchange(r, peers[i], err, sizeof err) == RT_OK;
  }
  ring_free_strs(peers, n);
  ring_publish(r, false);
  return ok || !n ? RT_OK : RT_EUNAVAIL;
}

static void *ring_thread_main(void *arg) {
  ring *r = arg;
  pthread_mutex_lock(&r->wmu);
  while (!r->stop) {
    pthread_mutex_unlock(&r->wmu);
    ring_tick(r);
    pthread_mutex_lock(&r->wmu);
    if (r->stop) {
      break;
    }
    if (!r->wake) {
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      int64_t ns = ts.tv_nsec + (r->interval_ms % 1000) * 1000000;
      ts.tv_sec += r->interval_ms / 1000 + ns / 1000000000;
      ts.tv_nsec = ns % 1000000000;
      while (!r->stop && !r->wake) {
        if (pthread_cond_timedwait(&r->wcv, &r->wmu, &ts) == ETIMEDOUT) {
          break;
        }
      }
    }
    r->wake = false;
  }
  pthread_mutex_unlock(&r->wmu);
  return NULL;
}

static void ring_wake(ring *r) {
  pthread_mutex_lock(&r->wmu);
  r->wake = true;
  pthread_cond_signal(&r->wcv);
  pthread_mutex_unlock(&r->wmu);
}

/* ------------------------------------------------------------------ public API */

static char *ring_dup_or_empty(const char *s) { return rt_strdup(s ? s : ""); }

/* Splits a comma-separated list into its non-empty entries, blanks around each dropped.
 * *out (NULL when *n is 0) and its strings: free with ring_free_strs(). */
static rt_err ring_split_list(const char *list, char ***out, size_t *n) {
  *out = NULL;
  *n = 0;
  if (!list || !list[0]) {
    return RT_OK;
  }
  size_t cap = 1;
  for (const char *p = list; *p; p++) {
    cap += *p == ',';
  }
  char **v = rt_calloc(cap, sizeof(char *));
  if (!v) {
    return RT_ENOMEM;
  }
  size_t k = 0;
  for (const char *p = list;;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    while (len && (*p == ' ' || *p == '\t')) {
      p++;
      len--;
    }
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
      len--;
    }
    if (len && !(v[k++] = rt_strndup(p, len))) {
      ring_free_strs(v, k);
      return RT_ENOMEM;
    }
    if (!e) {
      break;
    }
    p = e + 1;
  }
  if (k == 0) {
    rt_free(v, 0);
    v = NULL;
  }
  *out = v;
  *n = k;
  return RT_OK;
}

/* Adds the comma-separated endpoints but the own one to the join list; returns them as a fresh
 * array (free with ring_free_strs()). */
static size_t ring_add_join(ring *r, const char *list, char ***out) {
  size_t n = 0;
  if (ring_split_list(list, out, &n) != RT_OK) {
    return 0;
  }
  char **v = *out;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (r->gossip_addr[0] && strcmp(v[i], r->gossip_addr) == 0) {
      rt_free(v[i], 0);
    } else {
      v[k++] = v[i];
    }
  }
  pthread_mutex_lock(&r->mu);
  for (size_t i = 0; i < k; i++) {
    ring_peer_note(r, v[i], INT64_MAX);
  }
  pthread_mutex_unlock(&r->mu);
  return k;
}

static rt_err ring_join_list(ring *r, char **v, size_t n, char *errbuf, size_t errlen) {
  size_t ok = 0;
  char last[256] = "no endpoint given";
  for (size_t i = 0; i < n; i++) {
    char err[256] = "";
    if (ring_exchange(r, v[i], err, sizeof err) == RT_OK) {
      ok++;
    } else {
      snprintf(last, sizeof last, "%.120s: %.120s", v[i], err);
    }
  }
  if (n && !ok && errbuf) {
    snprintf(errbuf, errlen, "no join endpoint answered (%s)", last);
  }
  return ok || !n ? RT_OK : RT_EUNAVAIL;
}

rt_err ring_join(ring *r, const char *endpoints, char *errbuf, size_t errlen) {
  char **v;
  size_t n = ring_add_join(r, endpoints, &v);
  if (n == 0) {
    rt_free(v, 0);
    if (errbuf) {
      snprintf(errbuf, errlen, "no join endpoint in \"%s\"", endpoints ? endpoints : "");
    }
    return RT_EINVAL;
  }
  rt_err err = ring_join_list(r, v, n, errbuf, errlen);
  ring_free_strs(v, n);
  ring_publish(r, false);
  ring_wake(r);
  return err;
}

/* Loads the own tokens, or generates (and saves) what is missing. */
static rt_err ring_init_tokens(ring *r, char *errbuf, size_t errlen) {
  char path[4096] = "";
  if (r->data_dir && r->data_dir[0]) {
    /* mkdir -p */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", r->data_dir);
    for (char *p = tmp + 1; *p; p++) {
      if (*p == '/') {
        *p = 0;
        mkdir(tmp, 0755);
        *p = '/';
      }
    }
    if (mkdir(r->data_dir, 0755) != 0 && errno != EEXIST) {
      snprintf(errbuf, errlen, "cannot create data directory %s: %s", r->data_dir,
               strerror(errno));
      return RT_EIO;
    }
    snprintf(path, sizeof path, "%s/%s", r->data_dir, RING_TOKENS_FILE);
    char why[512] = "";
    rt_err err = ring_tokens_load(path, &r->tokens, &r->ntokens, why, sizeof why);
    if (err == RT_EPROTO) {
      char bad[4200];
      snprintf(bad, sizeof bad, "%s.corrupt", path);
      rename(path, bad);
      rt_error("ring", "token file is corrupt; it was set aside and new tokens are generated",
               "err=\"%s\" kept=\"%s\"", why, bad);
    } else if (err != RT_OK && err != RT_ENOTFOUND) {
      snprintf(errbuf, errlen, "cannot read tokens: %s", why);
      return err;
    } else if (err == RT_OK) {
      rt_info("ring", "loaded tokens", "path=\"%s\" tokens=%zu", path, r->ntokens);
    }
  }
  if (r->ntokens >= (size_t)r->num_tokens) {
    return RT_OK;
  }
  /* generate the missing ones, avoiding every token already known */
  uint32_t *taken = NULL;
  size_t ntaken = 0;
  pthread_mutex_lock(&r->mu);
  rt_err err = ring_desc_taken_tokens(r->desc, r->id, &taken, &ntaken);
  pthread_mutex_unlock(&r->mu);
  if (err != RT_OK) {
    return err;
  }
  size_t all = ntaken + r->ntokens;
  uint32_t *avoid = rt_alloc((all ? all : 1) * sizeof(uint32_t));
  size_t want = (size_t)r->num_tokens;
  uint32_t *mine = rt_alloc(want * sizeof(uint32_t));
  if (!avoid || !mine) {
    rt_free(taken, 0);
    rt_free(avoid, 0);
    rt_free(mine, 0);
    return RT_ENOMEM;
  }
  /* merge taken and the loaded tokens into one sorted array */
  size_t i = 0, j = 0, k = 0;
  while (i < ntaken || j < r->ntokens) {
    if (j >= r->ntokens || (i < ntaken && taken[i] < r->tokens[j])) {
      avoid[k++] = taken[i++];
    } else {
      avoid[k++] = r->tokens[j++];
    }
  }
  size_t extra = want - r->ntokens;
  pthread_mutex_lock(&r->mu);
  err = ring_tokens_generate(&r->rng, avoid, k, mine, extra);
  pthread_mutex_unlock(&r->mu);
  rt_free(taken, 0);
  rt_free(avoid, 0);
  if (err != RT_OK) {
    rt_free(mine, 0);
    snprintf(errbuf, errlen, "cannot generate %zu tokens: %s", extra, rt_strerror(err));
    return err;
  }
  /* mine[0..extra) plus the loaded ones, sorted */
  if (r->ntokens) {
    memcpy(mine + extra, r->tokens, r->ntokens * sizeof(uint32_t));
  }
  for (size_t a = 1; a < want; a++) {
    uint32_t x = mine[a];
    size_t b = a;
    while (b > 0 && mine[b - 1] > x) {
      mine[b] = mine[b - 1];
      b--;
    }
    mine[b] = x;
  }
  rt_free(r->tokens, 0);
  r->tokens = mine;
  r->ntokens = want;
  if (path[0]) {
    err = ring_tokens_save(path, r->tokens, r->ntokens);
    if (err != RT_OK) {
      snprintf(errbuf, errlen, "cannot save tokens to %s: %s", path, rt_strerror(err));
      return err;
    }
    rt_info("ring", "generated and saved tokens", "path=\"%s\" tokens=%zu", path, r->ntokens);
  }
  return RT_OK;
}

/* A zeroed ring with its locks ready (ring_destroy() frees it), or NULL. */
static ring *ring_alloc(void) {
  ring *r = rt_calloc(1, sizeof *r);
  if (!r) {
    return NULL;
  }
  pthread_mutex_init(&r->mu, NULL);
  pthread_mutex_init(&r->cmu, NULL);
  pthread_mutex_init(&r->snap_mu, NULL);
  pthread_mutex_init(&r->wmu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* wall clock jumps must not stall rounds */
  pthread_cond_init(&r->wcv, &ca);
  pthread_condattr_destroy(&ca);
  return r;
}

rt_err ring_create(const ring_config *cfg, ring **out, char *errbuf, size_t errlen) {
  *out = NULL;
  char dummy[8];
  if (!errbuf) {
    errbuf = dummy;
    errlen = sizeof dummy;
  }
  errbuf[0] = 0;
  if (cfg->replication_factor < 1 || cfg->replication_factor > RING_MAX_RF) {
    snprintf(errbuf, errlen, "replication factor %d outside 1..%d", cfg->replication_factor,
             RING_MAX_RF);
    return RT_EINVAL;
  }
  bool member = cfg->instance_id && cfg->instance_id[0];
  bool ingester = ring_role_is_ingester(cfg->role);
  if (member && ingester && (cfg->num_tokens < 1 || cfg->num_tokens > RING_MAX_TOKENS_PER_INSTANCE)) {
    snprintf(errbuf, errlen, "number of tokens %d outside 1..%d", cfg->num_tokens,
             RING_MAX_TOKENS_PER_INSTANCE);
    return RT_EINVAL;
  }
  if (cfg->gossip_interval_ms <= 0 || cfg->heartbeat_period_ms <= 0) {
    snprintf(errbuf, errlen, "gossip interval and heartbeat period must be positive");
    return RT_EINVAL;
  }
  ring *r = ring_alloc();
  if (!r) {
    return RT_ENOMEM;
  }
  r->id = member ? rt_strdup(cfg->instance_id) : NULL;
  r->role = rt_strdup(ingester ? "" : cfg->role);
  r->zone = ring_dup_or_empty(cfg->zone);
  r->http_addr = ring_dup_or_empty(cfg->http_addr);
  r->rpc_addr = ring_dup_or_empty(cfg->rpc_addr);
  r->data_dir = cfg->data_dir ? rt_strdup(cfg->data_dir) : NULL;
  r->gossip_bind = cfg->gossip_bind ? rt_strdup(cfg->gossip_bind) : NULL;
  r->gossip_addr = ring_dup_or_empty(cfg->gossip_advertise ? cfg->gossip_advertise
                                                           : cfg->gossip_bind);
  r->num_tokens = ingester ? cfg->num_tokens : 0;
  r->rf = cfg->replication_factor;
  r->fanout = cfg->gossip_fanout > 0 ? cfg->gossip_fanout : 3;
  r->interval_ms = cfg->gossip_interval_ms;
  r->timeout_ms = cfg->gossip_timeout_ms > 0 ? cfg->gossip_timeout_ms
                                             : RT_MAX(cfg->gossip_interval_ms, 100);
  r->hb_period_ms = cfg->heartbeat_period_ms;
  r->hb_timeout_ms = cfg->heartbeat_timeout_ms;
  r->tombstone_ttl_ms = cfg->tombstone_ttl_ms > 0 ? cfg->tombstone_ttl_ms : 10 * 60 * 1000;
  r->auto_forget_ms = cfg->auto_forget_ms < 0 || cfg->heartbeat_timeout_ms <= 0 ? 0
                      : cfg->auto_forget_ms > 0 ? cfg->auto_forget_ms
                                                : 10 * cfg->heartbeat_timeout_ms;
  r->rng = cfg->seed ? cfg->seed : ring_rand_seed();
  r->state = RING_JOINING;
  ring_metrics_init(r, cfg->metrics);
  rt_err err = RT_ENOMEM;
  if ((member && !r->id) || !r->role || !r->zone || !r->http_addr || !r->rpc_addr || !r->gossip_addr ||
      (cfg->data_dir && !r->data_dir) || (cfg->gossip_bind && !r->gossip_bind) ||
      ring_desc_create(&r->desc) != RT_OK) {
    goto fail;
  }
  if (strstr(r->gossip_addr, "0.0.0.0") || strchr(r->gossip_addr, '*')) {
    rt_warn("ring", "the gossip endpoint is a wildcard; set the advertised endpoint so that peers "
            "on other hosts can reach this one", "gossip=%s", r->gossip_addr);
  }
  if (r->gossip_bind) {
    err = rt_rpc_server_create(r->gossip_bind, ring_methods, RT_ARRAY_LEN(ring_methods), r, 1,
                               &r->srv);
    if (err != RT_OK) {
      snprintf(errbuf, errlen, "cannot bind the gossip endpoint %s: %s", r->gossip_bind,
               rt_strerror(err));
      goto fail;
    }
  }
  /* learn the ring first (best effort) so that new tokens avoid the ones already taken */
  char **join;
  size_t njoin = ring_add_join(r, cfg->join, &join);
  char jerr[256] = "";
  if (ring_join_list(r, join, njoin, jerr, sizeof jerr) != RT_OK) {
    rt_warn("ring", "joining the ring failed; gossip keeps trying", "err=\"%s\"", jerr);
  }
  ring_free_strs(join, njoin);
  if (member) {
    err = ingester ? ring_init_tokens(r, errbuf, errlen) : RT_OK;
    if (err != RT_OK) {
      goto fail;
    }
    pthread_mutex_lock(&r->mu);
    r->registered_ms = rt_now_ms();
    err = ring_self_put(r);
    r->registered = err == RT_OK;
    pthread_mutex_unlock(&r->mu);
    if (err == RT_EINVAL) {
      snprintf(errbuf, errlen,
               "invalid instance: id, zone and addresses must be UTF-8 of at most %d bytes",
               RING_MAX_STR);
    }
    if (err != RT_OK) {
      goto fail;
    }
  }
  ring_publish(r, true);
  if (!r->snap) {
    err = RT_ENOMEM;
    goto fail;
  }
  if (pthread_create(&r->thr, NULL, ring_thread_main, r) != 0) {
    err = RT_ENOMEM;
    goto fail;
  }
  r->started = true;
  rt_info("ring", "ring member started", "id=%s role=%s zone=%s gossip=%s tokens=%zu",
          r->id ? r->id : "(watcher)", r->role[0] ? r->role : RING_ROLE_INGESTER, r->zone,
          r->gossip_addr[0] ? r->gossip_addr : "(none)", r->ntokens);
  *out = r;
  return RT_OK;
fail:
  if (!errbuf[0]) {
    snprintf(errbuf, errlen, "%s", rt_strerror(err));
  }
  ring_destroy(r);
  return err;
}

rt_err ring_create_static(const char *endpoints, ring **out, char *errbuf, size_t errlen) {
  *out = NULL;
  if (errlen) {
    errbuf[0] = 0; /* errbuf may be NULL with errlen 0: snprintf writes nothing then */
  }
  char **v = NULL;
  size_t n = 0;
  rt_err err = ring_split_list(endpoints, &v, &n);
  if (err != RT_OK) {
    return err;
  }
  if (n == 0) {
    snprintf(errbuf, errlen, "no ingester address given");
    return RT_EINVAL;
  }
  if (n > RING_MAX_STATIC) {
    snprintf(errbuf, errlen, "%zu ingester addresses given, at most %d are allowed", n,
             RING_MAX_STATIC);
    ring_free_strs(v, n);
    return RT_ELIMIT;
  }
  for (size_t i = 0; i < n; i++) {
    for (size_t j = 0; j < i; j++) {
      if (strcmp(v[i], v[j]) == 0) {
        snprintf(errbuf, errlen, "ingester address %.256s is listed twice", v[i]);
        ring_free_strs(v, n);
        return RT_EINVAL;
      }
    }
  }
  ring *r = ring_alloc();
  if (!r) {
    ring_free_strs(v, n);
    return RT_ENOMEM;
  }
  r->role = rt_strdup("");
  r->zone = rt_strdup("");
  r->http_addr = rt_strdup("");
  r->rpc_addr = rt_strdup("");
  r->gossip_addr = rt_strdup("");
  r->rf = (int)RT_MIN(n, (size_t)RING_MAX_RF);
  r->every_replica = true; /* and hb_timeout_ms 0: never unhealthy */
  uint32_t tokens[128];
  err = RT_ENOMEM;
  if (!r->role || !r->zone || !r->http_addr || !r->rpc_addr || !r->gossip_addr ||
      ring_desc_create(&r->desc) != RT_OK) {
    goto fail;
  }
  int64_t now = rt_now_ms();
  for (size_t i = 0; i < n; i++) {
    uint64_t seed = XXH64(v[i], strlen(v[i]), 0);
    err = ring_tokens_generate(&seed, NULL, 0, tokens, RT_ARRAY_LEN(tokens));
    if (err != RT_OK) {
      goto fail;
    }
    ring_instance in = {.id = v[i],
                        .zone = v[i],
                        .http_addr = "",
                        .rpc_addr = v[i],
                        .gossip_addr = "",
                        .state = RING_ACTIVE,
                        .heartbeat_ms = now,
                        .registered_ms = now,
                        .tokens = tokens,
                        .ntokens = RT_ARRAY_LEN(tokens),
                        .role = RING_ROLE_INGESTER};
    err = ring_desc_set(r->desc, &in);
    if (err == RT_EINVAL) {
      snprintf(errbuf, errlen, "invalid ingester address %.256s: at most %d bytes of UTF-8", v[i],
               RING_MAX_STR);
    }
    if (err != RT_OK) {
      goto fail;
    }
  }
  r->gen++;
  ring_publish(r, true);
  if (!r->snap) {
    err = RT_ENOMEM;
    goto fail;
  }
  ring_free_strs(v, n);
  *out = r;
  return RT_OK;
fail:
  ring_free_strs(v, n);
  ring_destroy(r);
  return err;
}

void ring_destroy(ring *r) {
  if (!r) {
    return;
  }
  if (r->started) {
    pthread_mutex_lock(&r->wmu);
    r->stop = true;
    pthread_cond_signal(&r->wcv);
    pthread_mutex_unlock(&r->wmu);
    pthread_join(r->thr, NULL);
  }
  rt_rpc_server_destroy(r->srv);
  for (size_t i = 0; i < r->nclients; i++) {
    rt_rpc_client_destroy(r->clients[i].c);
    rt_free(r->clients[i].addr, 0);
  }
  rt_free(r->clients, 0);
  for (size_t i = 0; i < r->npeers; i++) {
    rt_free(r->peers[i].addr, 0);
  }
  rt_free(r->peers, 0);
  ring_snapshot_release(r->snap);
  ring_desc_destroy(r->desc);
  rt_free(r->tokens, 0);
  rt_free(r->id, 0);
  rt_free(r->role, 0);
  rt_free(r->zone, 0);
  rt_free(r->http_addr, 0);
  rt_free(r->rpc_addr, 0);
  rt_free(r->data_dir, 0);
  rt_free(r->gossip_bind, 0);
  rt_free(r->gossip_addr, 0);
  pthread_cond_destroy(&r->wcv);
  pthread_mutex_destroy(&r->wmu);
  pthread_mutex_destroy(&r->snap_mu);
  pthread_mutex_destroy(&r->cmu);
  pthread_mutex_destroy(&r->mu);
  rt_free(r, sizeof *r);
}

rt_err ring_heartbeat(ring *r) {
  if (!r->id) {
    return RT_EINVAL;
  }
  pthread_mutex_lock(&r->mu);
  rt_err err = r->left ? RT_ECLOSED : ring_self_put(r);
  pthread_mutex_unlock(&r->mu);
  ring_publish(r, false);
  return err;
}

rt_err ring_set_state(ring *r, ring_state state) {
  if (!r->id || (unsigned)state > RING_LEAVING) {
    return RT_EINVAL;
  }
  pthread_mutex_lock(&r->mu);
  rt_err err = RT_ECLOSED;
  if (!r->left) {
    ring_state old = r->state;
    r->state = state;
    err = ring_self_put(r);
    if (err != RT_OK) {
      r->state = old;
    } else if (old != state) {
      rt_info("ring", "instance state changed", "id=%s from=%s to=%s", r->id,
              ring_state_name(old), ring_state_name(state));
    }
  }
  pthread_mutex_unlock(&r->mu);
  ring_publish(r, false);
  ring_wake(r);
  return err;
}

rt_err ring_forget(ring *r, const char *id) {
  if (!id || !id[0]) {
    return RT_EINVAL;
  }
  pthread_mutex_lock(&r->mu);
  rt_err err = ring_desc_forget(r->desc, id, rt_now_ms());
  if (err == RT_OK) {
    r->gen++;
    if (r->id && strcmp(r->id, id) == 0) {
      r->left = true;
    }
    rt_info("ring", "instance forgotten", "id=%s", id);
  }
  pthread_mutex_unlock(&r->mu);
  ring_publish(r, false);
  ring_wake(r);
  return err;
}

const uint32_t *ring_tokens(const ring *r, size_t *n) {
  *n = r->id ? r->ntokens : 0;
  return r->id ? r->tokens : NULL;
}

const char *ring_gossip_addr(const ring *r) { return r->gossip_addr; }
