/* replicate_test.c - the distributor's grouping of series by ingester and its quorum rule
 * (distributor/replicate.c: dist_plan_build, dist_plan_eval) on real ring snapshots. */
#include <criterion/criterion.h>
#include <string.h>

#include "common/arena.h"
#include "distributor/replicate.h"
#include "ring/ring.h"

#define NOW 1700000000000LL

typedef struct fixture {
  ring_desc *d;
  ring_snapshot *s;
  rt_arena *a;
  uint64_t rng;
} fixture;

/* Adds instance `id` in `zone` with 128 random tokens; heartbeat_age_ms old. */
static void add(fixture *f, const char *id, const char *zone, ring_state st,
                int64_t heartbeat_age_ms) {
  uint32_t tok[128];
  uint32_t *taken = NULL;
  size_t ntaken = 0;
  cr_assert_eq(ring_desc_taken_tokens(f->d, NULL, &taken, &ntaken), RT_OK);
  cr_assert_eq(ring_tokens_generate(&f->rng, taken, ntaken, tok, 128), RT_OK);
  rt_free(taken, 0);
  ring_instance in = {.id = id, .zone = zone, .http_addr = "", .rpc_addr = "tcp://x:1",
                      .gossip_addr = "", .state = st, .heartbeat_ms = NOW - heartbeat_age_ms,
                      .registered_ms = NOW - 100000, .tokens = tok, .ntokens = 128};
  cr_assert_eq(ring_desc_set(f->d, &in), RT_OK);
}

static void build(fixture *f, int rf) {
  ring_snapshot_release(f->s);
  ring_snapshot_opts o = {.replication_factor = rf, .heartbeat_timeout_ms = 60000, .now_ms = NOW};
  cr_assert_eq(ring_snapshot_build(f->d, &o, &f->s), RT_OK);
}

static void setup(fixture *f) {
  memset(f, 0, sizeof *f);
  f->rng = 42;
  cr_assert_eq(ring_desc_create(&f->d), RT_OK);
  f->a = rt_arena_create(1 << 16);
  cr_assert_not_null(f->a);
}

static void teardown(fixture *f) {
  ring_snapshot_release(f->s);
  ring_desc_destroy(f->d);
  rt_arena_destroy(f->a);
}

static void six_in_three_zones(fixture *f) {
  static const char *ids[6] = {"a1", "a2", "b1", "b2", "c1", "c2"};
  static const char *zones[6] = {"a", "a", "b", "b", "c", "c"};
  for (int i = 0; i < 6; i++) {
    add(f, ids[i], zones[i], RING_ACTIVE, 1000);
  }
}

static void random_tokens(uint64_t *rng, uint32_t *t, size_t n) {
  for (size_t i = 0; i < n; i++) {
    t[i] = (uint32_t)(ring_rand_next(rng) >> 32);
  }
}

Test(replicate, every_series_goes_to_three_ingesters_of_three_zones) {
  fixture f;
  setup(&f);
  six_in_three_zones(&f);
  build(&f, 3);
  enum { N = 5000 };
  static uint32_t tok[N];
  random_tokens(&f.rng, tok, N);
  dist_plan p;
  cr_assert_eq(dist_plan_build(f.s, tok, N, f.a, &p), RT_OK);
  cr_assert_eq(p.ngroups, 6, "one group per ingester, got %zu", p.ngroups);
  /* per series: the zones it went to */
  static uint8_t zmask[N];
  static uint8_t copies[N];
  memset(zmask, 0, sizeof zmask);
  memset(copies, 0, sizeof copies);
  size_t total = 0;
  for (size_t g = 0; g < p.ngroups; g++) {
    const ring_instance *in = ring_snapshot_instance(f.s, p.inst[g]);
    for (size_t k = 0; k < p.nseries_of[g]; k++) {
      uint32_t s = p.series[g][k];
      if (k) {
        cr_assert_gt(s, p.series[g][k - 1], "series of a group ascend, without repeats");
      }
      cr_assert_eq(zmask[s] & (1u << in->zone_index), 0, "two replicas in zone %s", in->zone);
      zmask[s] |= (uint8_t)(1u << in->zone_index);
      copies[s]++;
    }
    total += p.nseries_of[g];
    /* the load spreads: each of 6 ingesters holds about half the series (3 copies / 6) */
    cr_assert(p.nseries_of[g] > N / 4 && p.nseries_of[g] < N * 3 / 4, "group %zu has %zu", g,
              p.nseries_of[g]);
  }
  cr_assert_eq(total, 3 * N);
  for (size_t i = 0; i < N; i++) {
    cr_assert_eq(copies[i], 3);
    cr_assert_eq(zmask[i], 7);
    cr_assert_eq(p.quorum[i], 2);
    cr_assert_eq(p.nrep[i], 3);
    cr_assert_not(p.unavailable[i]);
  }
  teardown(&f);
}

/* The groups of series s. */
static size_t groups_of(const dist_plan *p, uint32_t s, size_t *out) {
  size_t n = 0;
  for (size_t g = 0; g < p->ngroups; g++) {
    for (size_t k = 0; k < p->nseries_of[g]; k++) {
      if (p->series[g][k] == s) {
        out[n++] = g;
      }
    }
  }
  return n;
}

Test(replicate, quorum_is_two_of_three_per_series) {
  fixture f;
  setup(&f);
  six_in_three_zones(&f);
  build(&f, 3);
  enum { N = 400 };
  uint32_t tok[N];
  random_tokens(&f.rng, tok, N);
  dist_plan p;
  cr_assert_eq(dist_plan_build(f.s, tok, N, f.a, &p), RT_OK);
  int8_t st[8] = {0};
  int8_t verdict[N];
  size_t undecided = 0;
  /* nothing answered yet: all open */
  cr_assert_eq(dist_plan_eval(&p, st, verdict, &undecided), 0);
  cr_assert_eq(undecided, N);
  /* every call succeeded */
  memset(st, 1, sizeof st);
  cr_assert_eq(dist_plan_eval(&p, st, verdict, &undecided), 0);
  cr_assert_eq(undecided, 0);
  /* one ingester failed: every series still has 2 of 3 */
  st[0] = -1;
  cr_assert_eq(dist_plan_eval(&p, st, verdict, &undecided), 0);
  cr_assert_eq(undecided, 0);
  /* a whole zone failed (both its ingesters): still 2 of 3 for every series */
  size_t zone0_groups = 0;
  uint32_t z = ring_snapshot_instance(f.s, p.inst[0])->zone_index;
  for (size_t g = 0; g < p.ngroups; g++) {
    st[g] = ring_snapshot_instance(f.s, p.inst[g])->zone_index == z ? -1 : 1;
    zone0_groups += st[g] < 0;
  }
  cr_assert_eq(zone0_groups, 2);
  cr_assert_eq(dist_plan_eval(&p, st, verdict, &undecided), 0);
  /* one ingester in each of two zones failed: exactly the series holding both lose quorum */
  memset(st, 1, sizeof st);
  size_t ga = 0, gb = SIZE_MAX;
  for (size_t g = 1; g < p.ngroups; g++) {
    if (ring_snapshot_instance(f.s, p.inst[g])->zone_index !=
        ring_snapshot_instance(f.s, p.inst[ga])->zone_index) {
      gb = g;
      break;
    }
  }
  cr_assert_neq(gb, SIZE_MAX);
  st[ga] = -1;
  st[gb] = -1;
  size_t expect = 0;
  for (uint32_t s = 0; s < N; s++) {
    size_t gs[8];
    size_t n = groups_of(&p, s, gs);
    bool a = false, b = false;
    for (size_t k = 0; k < n; k++) {
      a |= gs[k] == ga;
      b |= gs[k] == gb;
    }
    expect += a && b;
  }
  cr_assert_gt(expect, 0, "some series live on both");
  cr_assert_lt(expect, N);
  size_t failed = dist_plan_eval(&p, st, verdict, &undecided);
  cr_assert_eq(failed, expect);
  cr_assert_eq(undecided, 0);
  /* the first failure decides nothing while the others are pending */
  memset(st, 0, sizeof st);
  st[ga] = -1;
  cr_assert_eq(dist_plan_eval(&p, st, verdict, &undecided), 0);
  cr_assert_gt(undecided, 0);
  teardown(&f);
}

Test(replicate, unhealthy_ingesters_count_as_failures_and_are_not_replaced) {
  fixture f;
  setup(&f);
  add(&f, "a1", "a", RING_ACTIVE, 1000);
  add(&f, "b1", "b", RING_ACTIVE, 1000);
  add(&f, "c1", "c", RING_ACTIVE, 120000); /* heartbeat older than the timeout */
  build(&f, 3);
  uint32_t tok[50];
  random_tokens(&f.rng, tok, 50);
  dist_plan p;
  cr_assert_eq(dist_plan_build(f.s, tok, 50, f.a, &p), RT_OK);
  cr_assert_eq(p.ngroups, 2, "nothing is sent to the unhealthy ingester");
  for (size_t i = 0; i < 50; i++) {
    cr_assert_eq(p.nrep[i], 2);
    cr_assert_eq(p.quorum[i], 2);
  }
  int8_t st[2] = {1, -1};
  size_t undecided;
  cr_assert_eq(dist_plan_eval(&p, st, NULL, &undecided), 50, "with one zone gone both must succeed");
  st[1] = 1;
  cr_assert_eq(dist_plan_eval(&p, st, NULL, &undecided), 0);
  teardown(&f);
}

Test(replicate, two_zones_down_make_every_series_unavailable) {
  fixture f;
  setup(&f);
  add(&f, "a1", "a", RING_ACTIVE, 1000);
  add(&f, "b1", "b", RING_ACTIVE, 120000);
  add(&f, "c1", "c", RING_ACTIVE, 120000);
  build(&f, 3);
  uint32_t tok[20];
  random_tokens(&f.rng, tok, 20);
  dist_plan p;
  cr_assert_eq(dist_plan_build(f.s, tok, 20, f.a, &p), RT_OK);
  cr_assert_eq(p.ngroups, 0, "nothing is sent when no series can reach its quorum");
  size_t undecided;
  cr_assert_eq(dist_plan_eval(&p, NULL, NULL, &undecided), 20);
  teardown(&f);
}

Test(replicate, joining_and_leaving_are_replaced_in_their_zone) {
  fixture f;
  setup(&f);
  add(&f, "a1", "a", RING_ACTIVE, 1000);
  add(&f, "a2", "a", RING_JOINING, 1000);
  add(&f, "b1", "b", RING_ACTIVE, 1000);
  add(&f, "b2", "b", RING_LEAVING, 1000);
  add(&f, "c1", "c", RING_ACTIVE, 1000);
  build(&f, 3);
  uint32_t tok[300];
  random_tokens(&f.rng, tok, 300);
  dist_plan p;
  cr_assert_eq(dist_plan_build(f.s, tok, 300, f.a, &p), RT_OK);
  cr_assert_eq(p.ngroups, 3);
  for (size_t g = 0; g < p.ngroups; g++) {
    const ring_instance *in = ring_snapshot_instance(f.s, p.inst[g]);
    cr_assert_eq(in->state, RING_ACTIVE, "%s (%s) got writes", in->id, ring_state_name(in->state));
    cr_assert_eq(p.nseries_of[g], 300);
  }
  teardown(&f);
}

Test(replicate, a_single_process_ring_has_rf_one) {
  fixture f;
  setup(&f);
  add(&f, "solo", "", RING_ACTIVE, 0);
  build(&f, 1);
  uint32_t tok[64];
  random_tokens(&f.rng, tok, 64);
  dist_plan p;
  cr_assert_eq(dist_plan_build(f.s, tok, 64, f.a, &p), RT_OK);
  cr_assert_eq(p.ngroups, 1);
  cr_assert_eq(p.nseries_of[0], 64);
  int8_t st[1] = {1};
  size_t undecided;
  cr_assert_eq(dist_plan_eval(&p, st, NULL, &undecided), 0);
  cr_assert_eq(undecided, 0);
  st[0] = -1;
  cr_assert_eq(dist_plan_eval(&p, st, NULL, &undecided), 64);
  teardown(&f);
}
