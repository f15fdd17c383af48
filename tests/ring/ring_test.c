/* ring_test.c - running members: gossip convergence without a leader, state changes, forget,
 * unhealthy detection, watchers, lock-free lookups under concurrent updates. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/metrics.h"
#include "common/rpc.h"
#include "ring/ring.h"

static void nap_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

/* Polls `cond` until it holds or `ms` pass. */
#define WAIT_FOR(cond, ms)                                       \
  ({                                                             \
    uint64_t _dl = rt_mono_ns() + (uint64_t)(ms) * 1000000ull;   \
    bool _ok;                                                    \
    while (!(_ok = (cond)) && rt_mono_ns() < _dl) {              \
      nap_ms(10);                                                \
    }                                                            \
    _ok;                                                         \
  })

static ring_config node_cfg(const char *id, const char *zone, const char *bind, const char *join) {
  ring_config c;
  ring_config_defaults(&c);
  c.instance_id = id;
  c.zone = zone;
  c.gossip_bind = bind;
  c.join = join;
  c.gossip_interval_ms = 50;
  c.gossip_timeout_ms = 500;
  c.gossip_fanout = 2;
  c.heartbeat_period_ms = 100;
  c.heartbeat_timeout_ms = 60000;
  c.num_tokens = 32;
  return c;
}

/* Does r see `n` instances, all in `st` (or any state when st < 0), all healthy? */
static bool sees(ring *r, size_t n, int st) {
  ring_snapshot *s = ring_snapshot_acquire(r);
  bool ok = ring_snapshot_count(s) == n;
  for (size_t i = 0; ok && i < n; i++) {
    const ring_instance *in = ring_snapshot_instance(s, i);
    ok = in->healthy && (st < 0 || in->state == (ring_state)st);
  }
  ring_snapshot_release(s);
  return ok;
}

static int state_of(ring *r, const char *id) {
  ring_snapshot *s = ring_snapshot_acquire(r);
  long i = ring_snapshot_find(s, id);
  int st = i < 0 ? -1 : (int)ring_snapshot_instance(s, (size_t)i)->state;
  ring_snapshot_release(s);
  return st;
}

static int healthy_of(ring *r, const char *id) {
  ring_snapshot *s = ring_snapshot_acquire(r);
  long i = ring_snapshot_find(s, id);
  int h = i < 0 ? -1 : (int)ring_snapshot_instance(s, (size_t)i)->healthy;
  ring_snapshot_release(s);
  return h;
}

#define N 5

static bool all_see(ring **r, int n, size_t count, int st) {
  for (int i = 0; i < n; i++) {
    if (r[i] && !sees(r[i], count, st)) {
      return false;
    }
  }
  return true;
}

static bool all_state(ring **r, int n, const char *id, int st) {
  for (int i = 0; i < n; i++) {
    if (r[i] && state_of(r[i], id) != st) {
      return false;
    }
  }
  return true;
}

/* Five members over inproc, each joining only its predecessor (a chain: no member knows all,
 * none leads), plus a watcher that joins only the last one. */
Test(ring_gossip, five_nodes_converge_without_a_leader) {
  ring *r[N + 1] = {0};
  char ids[N][16], eps[N][64];
  const char *zones[] = {"a", "b", "c", "a", "b"};
  char err[256];
  for (int i = 0; i < N; i++) {
    snprintf(ids[i], sizeof ids[i], "ing-%d", i);
    snprintf(eps[i], sizeof eps[i], "inproc://ring-gossip-%d-%d", getpid(), i);
    ring_config c = node_cfg(ids[i], zones[i], eps[i], i ? eps[i - 1] : NULL);
    cr_assert_eq(ring_create(&c, &r[i], err, sizeof err), RT_OK, "%s", err);
  }
  ring_config wc = node_cfg(NULL, "", NULL, eps[N - 1]);
  cr_assert_eq(ring_create(&wc, &r[N], err, sizeof err), RT_OK, "%s", err);
  size_t nt;
  cr_assert_null(ring_tokens(r[N], &nt));
  cr_assert_eq(ring_set_state(r[N], RING_ACTIVE), RT_EINVAL, "a watcher has no state");

  uint64_t t0 = rt_mono_ns();
  cr_assert(WAIT_FOR(all_see(r, N + 1, N, RING_JOINING), 10000), "no convergence on JOINING");
  printf("gossip: 5 members + 1 watcher converged in %.0f ms\n", (rt_mono_ns() - t0) / 1e6);

  /* every member turns ACTIVE: all views converge, tokens included */
  for (int i = 0; i < N; i++) {
    cr_assert_eq(ring_set_state(r[i], RING_ACTIVE), RT_OK);
  }
  cr_assert(WAIT_FOR(all_see(r, N + 1, N, RING_ACTIVE), 10000), "no convergence on ACTIVE");
  for (int i = 0; i <= N; i++) {
    ring_snapshot *s = ring_snapshot_acquire(r[i]);
    cr_assert_eq(ring_snapshot_tokens(s), N * 32);
    cr_assert_eq(ring_snapshot_zone_count(s), 3);
    ring_replication_set rs;
    cr_assert_eq(ring_snapshot_get(s, 123456789u, RING_OP_WRITE, &rs), RT_OK);
    cr_assert_eq(rs.n, 3);
    ring_snapshot_release(s);
  }
  /* tokens generated after the first pull avoid each other */
  ring_snapshot *s = ring_snapshot_acquire(r[0]);
  uint32_t last = 0;
  size_t seen = 0;
  for (size_t i = 0; i < ring_snapshot_count(s); i++) {
    seen += ring_snapshot_instance(s, i)->ntokens;
  }
  cr_assert_eq(seen, N * 32);
  (void)last;
  ring_snapshot_release(s);

  /* a state change spreads */
  cr_assert_eq(ring_set_state(r[3], RING_LEAVING), RT_OK);
  cr_assert(WAIT_FOR(all_state(r, N + 1, "ing-3", RING_LEAVING), 10000));

  /* a forget of a live member is undone by that member */
  cr_assert_eq(ring_forget(r[0], "ing-1"), RT_OK);
  cr_assert_eq(state_of(r[0], "ing-1"), -1, "gone locally at once");
  cr_assert(WAIT_FOR(all_state(r, N + 1, "ing-1", RING_ACTIVE), 10000),
            "a live member re-registers");

  /* a member that stops for good is forgotten everywhere once one member forgets it */
  ring_destroy(r[4]);
  r[4] = NULL;
  cr_assert_eq(ring_forget(r[1], "ing-4"), RT_OK);
  cr_assert(WAIT_FOR(all_state(r, N + 1, "ing-4", -1), 10000), "the forget did not spread");
  cr_assert_eq(ring_forget(r[1], "nobody"), RT_ENOTFOUND);

  for (int i = 0; i <= N; i++) {
    ring_destroy(r[i]);
  }
}

Test(ring_gossip, unhealthy_detection_with_a_short_timeout) {
  ring *r[3] = {0};
  char eps[3][64];
  char err[256];
  for (int i = 0; i < 3; i++) {
    char id[16];
    snprintf(id, sizeof id, "ing-%d", i);
    snprintf(eps[i], sizeof eps[i], "inproc://ring-health-%d-%d", getpid(), i);
    ring_config c = node_cfg(id, i == 0 ? "a" : i == 1 ? "b" : "c", eps[i], i ? eps[0] : NULL);
    c.heartbeat_period_ms = 50;
    c.heartbeat_timeout_ms = 1000;
    c.gossip_timeout_ms = 100;
    cr_assert_eq(ring_create(&c, &r[i], err, sizeof err), RT_OK, "%s", err);
    cr_assert_eq(ring_set_state(r[i], RING_ACTIVE), RT_OK);
  }
  cr_assert(WAIT_FOR(all_see(r, 3, 3, RING_ACTIVE), 10000));
  /* stays healthy across several timeouts while heartbeating */
  uint64_t until = rt_mono_ns() + 2500ull * 1000000;
  while (rt_mono_ns() < until) {
    cr_assert(healthy_of(r[0], "ing-2") == 1, "false unhealthy verdict");
    nap_ms(20);
  }
  /* ing-2 dies silently */
  uint64_t t0 = rt_mono_ns();
  ring_destroy(r[2]);
  r[2] = NULL;
  cr_assert(WAIT_FOR(healthy_of(r[0], "ing-2") == 0 && healthy_of(r[1], "ing-2") == 0, 5000),
            "dead member not detected");
  double ms = (rt_mono_ns() - t0) / 1e6;
  printf("health: a silent member was marked unhealthy after %.0f ms (timeout 1000 ms)\n", ms);
  cr_assert(ms >= 700, "unhealthy too early: %.0f ms", ms);
  /* writes skip it and still have a quorum */
  ring_snapshot *s = ring_snapshot_acquire(r[0]);
  long dead = ring_snapshot_find(s, "ing-2");
  cr_assert_eq(ring_snapshot_instance(s, (size_t)dead)->state, RING_ACTIVE);
  for (uint32_t k = 0; k < 4000000000u; k += 40000003) {
    ring_replication_set rs;
    cr_assert_eq(ring_snapshot_get(s, k, RING_OP_WRITE, &rs), RT_OK);
    cr_assert_eq(rs.n, 2);
    cr_assert_eq(rs.quorum, 2);
    for (uint32_t j = 0; j < rs.n; j++) {
      cr_assert_neq(rs.inst[j], (uint32_t)dead);
    }
  }
  rt_buf b = RT_BUF_INIT;
  ring_snapshot_json(s, 0, &b);
  cr_assert(strstr(b.data, "\"healthy\":false"), "%s", b.data);
  rt_buf_free(&b);
  ring_snapshot_release(s);
  ring_destroy(r[0]);
  ring_destroy(r[1]);
}

/* Three members over tcp on loopback. Ports may be taken by other processes: retry. */
Test(ring_gossip, tcp_loopback) {
  ring *r[3] = {0};
  char eps[3][64];
  char err[256];
  int base = 20000 + (getpid() % 20000);
  for (int i = 0; i < 3; i++) {
    char id[16];
    snprintf(id, sizeof id, "tcp-%d", i);
    rt_err e = RT_EIO;
    for (int attempt = 0; attempt < 20 && e != RT_OK; attempt++) {
      snprintf(eps[i], sizeof eps[i], "tcp://127.0.0.1:%d", base + i * 37 + attempt * 101);
      ring_config c = node_cfg(id, i == 0 ? "a" : i == 1 ? "b" : "c", eps[i], i ? eps[0] : NULL);
      e = ring_create(&c, &r[i], err, sizeof err);
    }
    cr_assert_eq(e, RT_OK, "%s", err);
    cr_assert_eq(ring_set_state(r[i], RING_ACTIVE), RT_OK);
  }
  cr_assert(WAIT_FOR(all_see(r, 3, 3, RING_ACTIVE), 15000), "no convergence over tcp");
  for (int i = 0; i < 3; i++) {
    ring_destroy(r[i]);
  }
}

/* ring_join on a member that started alone; a dead join target is reported. */
Test(ring_gossip, join_later_and_unreachable_peer) {
  char err[256];
  char ep0[64], ep1[64];
  snprintf(ep0, sizeof ep0, "inproc://ring-join-%d-0", getpid());
  snprintf(ep1, sizeof ep1, "inproc://ring-join-%d-1", getpid());
  ring *a, *b;
  ring_config ca = node_cfg("a", "a", ep0, NULL);
  ring_config cb = node_cfg("b", "b", ep1, NULL);
  cb.gossip_timeout_ms = 200;
  cr_assert_eq(ring_create(&ca, &a, err, sizeof err), RT_OK, "%s", err);
  cr_assert_eq(ring_create(&cb, &b, err, sizeof err), RT_OK, "%s", err);
  cr_assert(sees(a, 1, RING_JOINING));
  cr_assert_eq(ring_join(b, "inproc://ring-join-nobody", err, sizeof err), RT_EUNAVAIL);
  cr_assert(strstr(err, "ring-join-nobody"), "%s", err);
  cr_assert_eq(ring_join(b, " , ", err, sizeof err), RT_EINVAL);
  cr_assert_eq(ring_join(b, ep0, err, sizeof err), RT_OK, "%s", err);
  /* push-pull: both sides know both after one exchange */
  cr_assert(sees(b, 2, RING_JOINING));
  cr_assert(WAIT_FOR(sees(a, 2, RING_JOINING), 5000));
  ring_destroy(a);
  ring_destroy(b);
}

typedef struct reader_arg {
  ring *r;
  atomic_bool *stop;
  atomic_long lookups;
  long failures;
} reader_arg;

static void *reader(void *p) {
  reader_arg *a = p;
  uint64_t rng = 1;
  while (!atomic_load(a->stop)) {
    ring_snapshot *s = ring_snapshot_acquire(a->r);
    for (int i = 0; i < 1000; i++) {
      ring_replication_set rs;
      if (ring_snapshot_get(s, (uint32_t)(ring_rand_next(&rng) >> 32), RING_OP_WRITE, &rs) !=
          RT_OK) {
        a->failures++;
      }
      for (uint32_t j = 0; j < rs.n; j++) {
        if (!ring_snapshot_instance(s, rs.inst[j])->id[0]) {
          a->failures++;
        }
      }
      a->lookups++;
    }
    ring_snapshot_release(s);
  }
  return NULL;
}

Test(ring_gossip, lookups_while_the_ring_changes) {
  char err[256];
  ring_config c = node_cfg("solo", "a", NULL, NULL);
  c.replication_factor = 1;
  ring *r;
  cr_assert_eq(ring_create(&c, &r, err, sizeof err), RT_OK, "%s", err);
  cr_assert_eq(ring_set_state(r, RING_ACTIVE), RT_OK);
  atomic_bool stop = false;
  reader_arg args[2] = {{r, &stop, 0, 0}, {r, &stop, 0, 0}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++) {
    pthread_create(&th[i], NULL, reader, &args[i]);
  }
  uint64_t v0;
  {
    ring_snapshot *s = ring_snapshot_acquire(r);
    v0 = ring_snapshot_version(s);
    ring_snapshot_release(s);
  }
  /* keep publishing until both readers have done plenty of lookups across many snapshots */
  uint64_t deadline = rt_mono_ns() + 20000ull * 1000000;
  int beats = 0;
  while ((beats < 200 || atomic_load(&args[0].lookups) < 20000 ||
          atomic_load(&args[1].lookups) < 20000) &&
         rt_mono_ns() < deadline) {
    cr_assert_eq(ring_heartbeat(r), RT_OK);
    beats++;
  }
  printf("lookups: %ld + %ld lookups during %d snapshot publications\n",
         atomic_load(&args[0].lookups), atomic_load(&args[1].lookups), beats);
  atomic_store(&stop, true);
  for (int i = 0; i < 2; i++) {
    pthread_join(th[i], NULL);
    cr_assert_eq(args[i].failures, 0);
    cr_assert(args[i].lookups > 0);
  }
  ring_snapshot *s = ring_snapshot_acquire(r);
  cr_assert(ring_snapshot_version(s) >= v0 + 200, "each heartbeat publishes a snapshot");
  ring_snapshot_release(s);
  ring_destroy(r);
}

/* ---------------------------------------------------------------- separate processes */

#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>

static char mp_dir[128];

/* A member in its own process (tests/ring/ringnode_prog.c), killed with us if we die. */
static pid_t spawn_member(int i, const char *ep, const char *join) {
  char id[16], dir[200], zone[4];
  snprintf(id, sizeof id, "proc-%d", i);
  snprintf(dir, sizeof dir, "%s/data-%d", mp_dir, i);
  snprintf(zone, sizeof zone, "%c", 'a' + i);
  pid_t pid = fork();
  if (pid != 0) {
    return pid;
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  execl(RT_BINARY_DIR "/ringnode_prog", "ringnode_prog", id, zone, ep, join, dir, "1000",
        (char *)NULL);
  _exit(127);
}

static bool tokens_of(ring *r, const char *id, uint32_t *out, size_t cap, size_t *n) {
  ring_snapshot *s = ring_snapshot_acquire(r);
  long i = ring_snapshot_find(s, id);
  bool ok = i >= 0;
  if (ok) {
    const ring_instance *in = ring_snapshot_instance(s, (size_t)i);
    *n = RT_MIN(cap, in->ntokens);
    memcpy(out, in->tokens, *n * sizeof *out);
  }
  ring_snapshot_release(s);
  return ok;
}

/* Three members as processes over ipc://, a watcher here; kill -9 one, see it go unhealthy,
 * start it again on its data directory: healthy, ACTIVE, same tokens. */
Test(ring_gossip, separate_processes_kill_and_restart) {
  snprintf(mp_dir, sizeof mp_dir, "/tmp/ring-mp-XXXXXX");
  cr_assert_not_null(mkdtemp(mp_dir));
  char eps[3][200];
  pid_t pids[3];
  for (int i = 0; i < 3; i++) {
    snprintf(eps[i], sizeof eps[i], "ipc://%s/gossip-%d.sock", mp_dir, i);
  }
  /* fork before this process touches ZeroMQ */
  for (int i = 0; i < 3; i++) {
    pids[i] = spawn_member(i, eps[i], i ? eps[0] : eps[1]);
  }
  ring_config wc = node_cfg(NULL, "", NULL, eps[0]);
  wc.heartbeat_timeout_ms = 1000;
  ring *w;
  char err[256];
  cr_assert_eq(ring_create(&wc, &w, err, sizeof err), RT_OK, "%s", err);
  cr_assert(WAIT_FOR(sees(w, 3, RING_ACTIVE), 15000), "processes did not converge");
  uint32_t before[32], after[32];
  size_t nb = 0, na = 0;
  cr_assert(tokens_of(w, "proc-2", before, 32, &nb));
  cr_assert_eq(nb, 32);

  kill(pids[2], SIGKILL);
  waitpid(pids[2], NULL, 0);
  cr_assert(WAIT_FOR(healthy_of(w, "proc-2") == 0, 10000), "killed member still healthy");
  ring_snapshot *s = ring_snapshot_acquire(w);
  ring_replication_set rs;
  cr_assert_eq(ring_snapshot_get(s, 42, RING_OP_WRITE, &rs), RT_OK, "one zone down keeps quorum");
  cr_assert_eq(rs.n, 2);
  ring_snapshot_release(s);

  pids[2] = spawn_member(2, eps[2], eps[0]);
  cr_assert(WAIT_FOR(sees(w, 3, RING_ACTIVE), 15000), "restarted member did not come back");
  cr_assert(tokens_of(w, "proc-2", after, 32, &na));
  cr_assert_eq(na, nb);
  cr_assert(memcmp(before, after, nb * sizeof *before) == 0, "restart must keep the tokens");

  /* a graceful stop announces LEAVING before the process exits */
  kill(pids[1], SIGTERM);
  int status;
  cr_assert_eq(waitpid(pids[1], &status, 0), pids[1]);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  cr_assert(WAIT_FOR(state_of(w, "proc-1") == RING_LEAVING, 5000), "LEAVING not announced");

  ring_destroy(w);
  for (int i = 0; i < 3; i++) {
    if (i == 1) {
      continue;
    }
    kill(pids[i], SIGKILL);
    waitpid(pids[i], NULL, 0);
  }
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", mp_dir);
  cr_assert_eq(system(cmd), 0);
}

static size_t distributors_seen(ring *r) {
  ring_snapshot *s = ring_snapshot_acquire(r);
  size_t n = ring_snapshot_healthy_role(s, RING_ROLE_DISTRIBUTOR, rt_now_ms());
  ring_snapshot_release(s);
  return n;
}

static size_t others_listed(ring *r) {
  ring_snapshot *s = ring_snapshot_acquire(r);
  size_t n = ring_snapshot_other_count(s);
  ring_snapshot_release(s);
  return n;
}

static bool all_count(ring **r, int n, size_t ingesters, size_t dists) {
  for (int i = 0; i < n; i++) {
    if (r[i] && (!sees(r[i], ingesters, RING_ACTIVE) || distributors_seen(r[i]) != dists)) {
      return false;
    }
  }
  return true;
}

/* Three ingesters, two distributors (one with a gossip server, one without, as a process that
 * also runs an ingester has) and a watcher: every member counts 2 distributors and 3
 * ingesters; a distributor that leaves (forget + flush) is uncounted at once everywhere; one
 * that dies silently is uncounted after the heartbeat timeout and forgotten after the
 * auto-forget delay. ringtail_ring_* count ingesters only. */
Test(ring_gossip, distributors_register_without_tokens_and_are_counted) {
  enum { NI = 3, NR = 6 };
  ring *r[NR] = {0};
  char eps[NR][64];
  char err[256];
  rt_metrics *m;
  cr_assert_eq(rt_metrics_create(&m), RT_OK);
  for (int i = 0; i < NR; i++) {
    snprintf(eps[i], sizeof eps[i], "inproc://ring-dist-%d-%d", getpid(), i);
  }
  char join[256];
  snprintf(join, sizeof join, "%s,%s", eps[0], eps[1]);
  for (int i = 0; i < NI; i++) {
    char id[16];
    snprintf(id, sizeof id, "ing-%d", i);
    ring_config c = node_cfg(id, i == 0 ? "a" : i == 1 ? "b" : "c", eps[i], i ? eps[0] : NULL);
    c.heartbeat_timeout_ms = 2500;
    c.auto_forget_ms = 4000;
    if (i == 0) {
      c.metrics = m;
    }
    cr_assert_eq(ring_create(&c, &r[i], err, sizeof err), RT_OK, "%s", err);
    cr_assert_eq(ring_set_state(r[i], RING_ACTIVE), RT_OK);
  }
  ring_config dc = node_cfg("dist-1", "", eps[3], join);
  dc.role = RING_ROLE_DISTRIBUTOR;
  dc.num_tokens = 0; /* ignored for a distributor */
  dc.heartbeat_timeout_ms = 2500;
  cr_assert_eq(ring_create(&dc, &r[3], err, sizeof err), RT_OK, "%s", err);
  dc.instance_id = "dist-2";
  dc.gossip_bind = NULL;
  cr_assert_eq(ring_create(&dc, &r[4], err, sizeof err), RT_OK, "%s", err);
  ring_config wc = node_cfg(NULL, "", NULL, eps[2]);
  wc.heartbeat_timeout_ms = 2500;
  cr_assert_eq(ring_create(&wc, &r[5], err, sizeof err), RT_OK, "%s", err);
  size_t nt = 99;
  cr_assert_null(ring_tokens(r[3], &nt));
  cr_assert_eq(nt, 0);
  cr_assert_eq(ring_set_state(r[3], RING_ACTIVE), RT_OK);
  cr_assert_eq(ring_set_state(r[4], RING_ACTIVE), RT_OK);

  cr_assert(WAIT_FOR(all_count(r, NR, NI, 2), 10000), "distributors not counted everywhere");
  for (int i = 0; i < NR; i++) {
    ring_snapshot *s = ring_snapshot_acquire(r[i]);
    cr_assert_eq(ring_snapshot_tokens(s), NI * 32);
    cr_assert_eq(ring_snapshot_zone_count(s), 3);
    cr_assert_eq(ring_snapshot_find(s, "dist-1"), -1);
    ring_replication_set rs;
    cr_assert_eq(ring_snapshot_get(s, 987654321u, RING_OP_WRITE, &rs), RT_OK);
    cr_assert_eq(rs.n, 3);
    ring_snapshot_release(s);
  }
  rt_gauge *active = rt_gauge_get(m, "ringtail_ring_members", "", "state", "ACTIVE");
  cr_assert(WAIT_FOR(rt_gauge_value(active) == NI, 5000), "members gauge %g",
            rt_gauge_value(active));
  cr_assert_eq(rt_gauge_value(rt_gauge_get(m, "ringtail_ring_tokens", "", NULL)), NI * 32);

  /* a graceful stop: forget the own entry, flush, destroy */
  uint64_t t0 = rt_mono_ns();
  cr_assert_eq(ring_forget(r[3], "dist-1"), RT_OK);
  ring_flush(r[3]);
  ring_destroy(r[3]);
  r[3] = NULL;
  cr_assert(WAIT_FOR(all_count(r, NR, NI, 1), 5000), "a leaving distributor still counted");
  double ms = (rt_mono_ns() - t0) / 1e6;
  cr_assert(ms < 2500, "uncounted after %.0f ms: the forget did not spread before the timeout",
            ms);

  /* a silent death: uncounted after the heartbeat timeout, then forgotten (auto-forget) */
  ring_destroy(r[4]);
  r[4] = NULL;
  cr_assert(WAIT_FOR(all_count(r, NR, NI, 0), 8000), "a dead distributor still counted");
  cr_assert(WAIT_FOR(others_listed(r[0]) == 0 && others_listed(r[5]) == 0, 10000),
            "a dead distributor was not forgotten");
  cr_assert(sees(r[0], NI, RING_ACTIVE), "ingesters are never auto-forgotten");
  for (int i = 0; i < NR; i++) {
    ring_destroy(r[i]);
  }
  rt_metrics_destroy(m);
}

/* ------------------------------------------------------------------ static rings */

/* The instance ids of the write set of `key`, sorted, as one string. */
static void set_ids(ring_snapshot *s, uint32_t key, char *out, size_t len) {
  ring_replication_set rs;
  cr_assert_eq(ring_snapshot_get(s, key, RING_OP_WRITE, &rs), RT_OK);
  const char *ids[RING_MAX_RF];
  for (uint32_t k = 0; k < rs.n; k++) {
    ids[k] = ring_snapshot_instance(s, rs.inst[k])->id;
  }
  for (uint32_t i = 1; i < rs.n; i++) { /* insertion sort */
    for (uint32_t j = i; j > 0 && strcmp(ids[j - 1], ids[j]) > 0; j--) {
      const char *t = ids[j];
      ids[j] = ids[j - 1];
      ids[j - 1] = t;
    }
  }
  out[0] = 0;
  for (uint32_t k = 0; k < rs.n; k++) {
    size_t l = strlen(out);
    snprintf(out + l, len - l, "%s;", ids[k]);
  }
}

Test(ring_static, every_listed_ingester_is_a_zone_and_every_replica_is_needed) {
  ring *r;
  char err[256];
  cr_assert_eq(ring_create_static(" tcp://h2:9095,tcp://h1:9095 ,\ttcp://h3:9095 ", &r, err,
                                  sizeof err),
               RT_OK, "%s", err);
  ring_snapshot *s = ring_snapshot_acquire(r);
  cr_assert_eq(ring_snapshot_count(s), 3);
  cr_assert_eq(ring_snapshot_zone_count(s), 3);
  cr_assert_eq(ring_snapshot_rf(s), 3);
  cr_assert_eq(ring_snapshot_quorum(s), 3, "a write needs every listed ingester");
  cr_assert_eq(ring_snapshot_majority(s), 2, "HA arbiters: a majority");
  cr_assert_eq(ring_snapshot_read_zones(s), 3, "a read needs every listed ingester");
  for (size_t i = 0; i < 3; i++) {
    const ring_instance *in = ring_snapshot_instance(s, i);
    char want[32];
    snprintf(want, sizeof want, "tcp://h%zu:9095", i + 1); /* sorted by id, blanks trimmed */
    cr_assert_str_eq(in->id, want);
    cr_assert_str_eq(in->rpc_addr, want);
    cr_assert_str_eq(in->zone, want);
    cr_assert_eq(in->state, RING_ACTIVE);
    cr_assert(in->healthy);
    cr_assert_eq(in->ntokens, 128);
    uint32_t rd[4];
    size_t healthy = 0;
    cr_assert_eq(ring_snapshot_zone_readers(s, in->zone_index, rd, 4, &healthy), 1);
    cr_assert_eq(rd[0], i);
    cr_assert_eq(healthy, 1);
  }
  uint64_t rng = 3;
  for (int k = 0; k < 2000; k++) {
    uint32_t key = (uint32_t)(ring_rand_next(&rng) >> 32);
    for (int op = RING_OP_WRITE; op <= RING_OP_READ; op++) {
      ring_replication_set rs;
      cr_assert_eq(ring_snapshot_get(s, key, (ring_op)op, &rs), RT_OK);
      cr_assert_eq(rs.n, 3);
      cr_assert_eq(rs.quorum, 3);
      cr_assert_eq(rs.max_errors, 0);
    }
  }
  ring_snapshot_release(s);
  /* no gossip, no own instance, and always the same snapshot */
  cr_assert_str_eq(ring_gossip_addr(r), "");
  size_t nt = 1;
  cr_assert_null(ring_tokens(r, &nt));
  cr_assert_eq(nt, 0);
  cr_assert_eq(ring_set_state(r, RING_LEAVING), RT_EINVAL);
  ring_snapshot *s1 = ring_snapshot_acquire(r), *s2 = ring_snapshot_acquire(r);
  cr_assert_eq(s1, s2);
  ring_snapshot_release(s1);
  ring_snapshot_release(s2);
  ring_destroy(r);

  /* one address: the single-process shape (one zone, RF 1) */
  cr_assert_eq(ring_create_static("inproc://ingester", &r, err, sizeof err), RT_OK, "%s", err);
  s = ring_snapshot_acquire(r);
  cr_assert_eq(ring_snapshot_rf(s), 1);
  cr_assert_eq(ring_snapshot_quorum(s), 1);
  cr_assert_eq(ring_snapshot_read_zones(s), 1);
  ring_snapshot_release(s);
  ring_destroy(r);
}

/* More addresses than RING_MAX_RF: each series goes to 8 of them, every one of the 8 needed;
 * reads still need all; the placement depends on the addresses, not on their order. */
Test(ring_static, more_than_eight_addresses_place_alike_in_any_order) {
  char fwd[1024] = "", rev[1024] = "";
  for (int i = 0; i < 12; i++) {
    size_t l = strlen(fwd);
    snprintf(fwd + l, sizeof fwd - l, "%stcp://ing-%02d:9095", i ? "," : "", i);
    l = strlen(rev);
    snprintf(rev + l, sizeof rev - l, "%stcp://ing-%02d:9095", i ? "," : "", 11 - i);
  }
  ring *a, *b;
  char err[256];
  cr_assert_eq(ring_create_static(fwd, &a, err, sizeof err), RT_OK, "%s", err);
  cr_assert_eq(ring_create_static(rev, &b, err, sizeof err), RT_OK, "%s", err);
  ring_snapshot *sa = ring_snapshot_acquire(a), *sb = ring_snapshot_acquire(b);
  cr_assert_eq(ring_snapshot_rf(sa), RING_MAX_RF);
  cr_assert_eq(ring_snapshot_quorum(sa), RING_MAX_RF);
  cr_assert_eq(ring_snapshot_majority(sa), RING_MAX_RF / 2 + 1);
  cr_assert_eq(ring_snapshot_read_zones(sa), 12);
  size_t per[12] = {0};
  uint64_t rng = 11;
  for (int k = 0; k < 3000; k++) {
    uint32_t key = (uint32_t)(ring_rand_next(&rng) >> 32);
    char x[512], y[512];
    set_ids(sa, key, x, sizeof x);
    set_ids(sb, key, y, sizeof y);
    cr_assert_str_eq(x, y, "key %u", key);
    ring_replication_set rs;
    ring_snapshot_get(sa, key, RING_OP_WRITE, &rs);
    cr_assert_eq(rs.n, RING_MAX_RF);
    for (uint32_t j = 0; j < rs.n; j++) {
      per[rs.inst[j]]++;
    }
  }
  for (int i = 0; i < 12; i++) {
    /* 3000 * 8 / 12 = 2000 on average */
    cr_assert(per[i] > 1000 && per[i] < 3000, "instance %d holds %zu of 3000 keys", i, per[i]);
  }
  ring_snapshot_release(sa);
  ring_snapshot_release(sb);
  ring_destroy(a);
  ring_destroy(b);
}

Test(ring_static, bad_lists_are_refused_with_a_reason) {
  ring *r = (ring *)1;
  char err[256];
  cr_assert_eq(ring_create_static("", &r, err, sizeof err), RT_EINVAL);
  cr_assert_null(r);
  cr_assert_str_eq(err, "no ingester address given");
  cr_assert_eq(ring_create_static(NULL, &r, err, sizeof err), RT_EINVAL);
  cr_assert_eq(ring_create_static(" , ,\t", &r, err, sizeof err), RT_EINVAL);
  cr_assert_str_eq(err, "no ingester address given");
  cr_assert_eq(ring_create_static("tcp://a:1, tcp://b:1,tcp://a:1", &r, err, sizeof err),
               RT_EINVAL);
  cr_assert_str_eq(err, "ingester address tcp://a:1 is listed twice");
  static char many[RING_MAX_STATIC * 24];
  many[0] = 0;
  for (int i = 0; i <= RING_MAX_STATIC; i++) {
    size_t l = strlen(many);
    snprintf(many + l, sizeof many - l, "%stcp://h%d:1", i ? "," : "", i);
  }
  cr_assert_eq(ring_create_static(many, &r, err, sizeof err), RT_ELIMIT);
  cr_assert(strstr(err, "65 ingester addresses given, at most 64"), "%s", err);
  *strrchr(many, ',') = 0; /* 64 are fine */
  cr_assert_eq(ring_create_static(many, &r, err, sizeof err), RT_OK, "%s", err);
  ring_destroy(r);
  static char huge[2100];
  memset(huge, 'x', sizeof huge - 1);
  cr_assert_eq(ring_create_static(huge, &r, err, sizeof err), RT_EINVAL);
  cr_assert(strstr(err, "invalid ingester address xxx"), "%s", err);
  cr_assert_eq(ring_create_static("tcp://a:1,\xff\xfe", &r, err, sizeof err), RT_EINVAL);
  cr_assert(strstr(err, "invalid ingester address"), "%s", err);
  cr_assert_eq(ring_create_static("tcp://a:1,tcp://a:1", &r, NULL, 0), RT_EINVAL, "no errbuf");
  cr_assert_null(r);
}

Test(ring_static, out_of_memory_at_every_allocation) {
  int failures = 0;
  for (long n = 0; n < 400; n++) {
    ring *r = (ring *)1;
    char err[128];
    rt_alloc_fail_after(n);
    rt_err e = ring_create_static("tcp://a:1,tcp://b:1,tcp://c:1", &r, err, sizeof err);
    rt_alloc_fail_after(-1);
    if (e == RT_OK) {
      ring_snapshot *s = ring_snapshot_acquire(r);
      cr_assert_eq(ring_snapshot_count(s), 3);
      ring_snapshot_release(s);
      ring_destroy(r);
      break;
    }
    cr_assert_eq(e, RT_ENOMEM, "n=%ld: %s", n, rt_strerror(e));
    cr_assert_null(r);
    failures++;
  }
  cr_assert_gt(failures, 10);
}
