/* snapshot_test.c - lookups: load spread, zone-aware replication sets, movement on join, state
 * and health rules, quorum, /ring rendering. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "common/labels.h"
#include "ring/ring.h"

#define NOW 1000000000LL

/* Adds `per_zone` instances in each of `nzones` zones ("ing-<zone>-<i>"), 128 tokens each,
 * avoiding collisions like a real join does. */
static void add_instances(ring_desc *d, uint64_t *rng, int nzones, int per_zone, int first,
                          ring_state st) {
  for (int z = 0; z < nzones; z++) {
    for (int i = first; i < first + per_zone; i++) {
      char id[32], zone[8];
      snprintf(zone, sizeof zone, "%c", 'a' + z);
      snprintf(id, sizeof id, "ing-%s-%02d", zone, i);
      uint32_t *taken;
      size_t nt;
      cr_assert_eq(ring_desc_taken_tokens(d, NULL, &taken, &nt), RT_OK);
      uint32_t tok[128];
      cr_assert_eq(ring_tokens_generate(rng, taken, nt, tok, 128), RT_OK);
      rt_free(taken, 0);
      ring_instance in = {.id = id,
                          .zone = zone,
                          .state = st,
                          .heartbeat_ms = NOW,
                          .tokens = tok,
                          .ntokens = 128};
      cr_assert_eq(ring_desc_set(d, &in), RT_OK);
    }
  }
}

static ring_snapshot *build(const ring_desc *d, int rf) {
  ring_snapshot_opts o = {.replication_factor = rf, .heartbeat_timeout_ms = 60000, .now_ms = NOW};
  ring_snapshot *s;
  cr_assert_eq(ring_snapshot_build(d, &o, &s), RT_OK);
  return s;
}

static void set_state(ring_desc *d, const char *id, ring_state st, int64_t hb) {
  ring_instance in;
  cr_assert(ring_desc_get(d, id, &in));
  in.state = st;
  in.heartbeat_ms = hb;
  /* copy first: set replaces the entry the view borrows from */
  uint32_t tok[128];
  memcpy(tok, in.tokens, in.ntokens * sizeof *tok);
  char idc[64], zone[16];
  snprintf(idc, sizeof idc, "%s", in.id);
  snprintf(zone, sizeof zone, "%s", in.zone);
  in.id = idc;
  in.zone = zone;
  in.tokens = tok;
  cr_assert_eq(ring_desc_set(d, &in), RT_OK);
}

Test(ring_snapshot, load_spread_30_ingesters_3_zones) {
  for (uint64_t seed = 1; seed <= 5; seed++) {
    ring_desc *d;
    cr_assert_eq(ring_desc_create(&d), RT_OK);
    uint64_t rng = seed;
    add_instances(d, &rng, 3, 10, 0, RING_ACTIVE);
    ring_snapshot *s = build(d, 3);
    cr_assert_eq(ring_snapshot_count(s), 30);
    cr_assert_eq(ring_snapshot_tokens(s), 30 * 128);
    cr_assert_eq(ring_snapshot_zone_count(s), 3);
    double omin = 1, omax = 0, rmin = 1, rmax = 0, osum = 0, rsum = 0;
    for (size_t i = 0; i < 30; i++) {
      const ring_instance *in = ring_snapshot_instance(s, i);
      omin = RT_MIN(omin, in->owned_share);
      omax = RT_MAX(omax, in->owned_share);
      rmin = RT_MIN(rmin, in->replicated_share);
      rmax = RT_MAX(rmax, in->replicated_share);
      osum += in->owned_share;
      rsum += in->replicated_share;
    }
    cr_assert_float_eq(osum, 1.0, 1e-9);
    cr_assert_float_eq(rsum, 3.0, 1e-9, "every key has 3 replicas: %f", rsum);
    /* ideal: owned 1/30 = 3.33%, replicated 3/30 = 10% */
    printf("spread seed=%llu: owned share min %.3f%% max %.3f%% (max/min %.2f); "
           "replicated share min %.3f%% max %.3f%% (max/min %.2f)\n",
           (unsigned long long)seed, omin * 100, omax * 100, omax / omin, rmin * 100, rmax * 100,
           rmax / rmin);
    /* 128 random tokens give a relative spread of about 1/sqrt(128) = 9% per instance */
    cr_assert(rmax < 0.1 * 1.35 && rmin > 0.1 * 0.65, "replicated share %f..%f", rmin, rmax);
    cr_assert(omax < (1.0 / 30) * 1.4 && omin > (1.0 / 30) * 0.6, "owned %f..%f", omin, omax);
    cr_assert(rmax / rmin < 1.8);
    ring_snapshot_release(s);
    ring_desc_destroy(d);
  }
}

/* The replication set computed by brute force: walk all tokens (sorted by token then
 * instance index) from the first > key. */
Test(ring_snapshot, every_set_spans_rf_zones_and_matches_a_brute_force_walk) {
  ring_desc *d;
  cr_assert_eq(ring_desc_create(&d), RT_OK);
  uint64_t rng = 11;
  add_instances(d, &rng, 3, 10, 0, RING_ACTIVE);
  ring_snapshot *s = build(d, 3);
  uint64_t krng = 99;
  for (int k = 0; k < 20000; k++) {
    uint32_t key = (uint32_t)(ring_rand_next(&krng) >> 32);
    if (k == 0) {
      key = 0;
    } else if (k == 1) {
      key = UINT32_MAX;
    }
    ring_replication_set rs;
    cr_assert_eq(ring_snapshot_get(s, key, RING_OP_WRITE, &rs), RT_OK);
    cr_assert_eq(rs.n, 3);
    cr_assert_eq(rs.quorum, 2);
    cr_assert_eq(rs.max_errors, 1);
    uint32_t z0 = ring_snapshot_instance(s, rs.inst[0])->zone_index;
    uint32_t z1 = ring_snapshot_instance(s, rs.inst[1])->zone_index;
    uint32_t z2 = ring_snapshot_instance(s, rs.inst[2])->zone_index;
    cr_assert(z0 != z1 && z1 != z2 && z0 != z2, "key %u: zones %u %u %u", key, z0, z1, z2);
    /* brute force: the first instance is the owner of the smallest token > key (wrapping) */
    uint32_t best = 0, bestidx = 0, wrapbest = UINT32_MAX, wrapidx = 0;
    bool found = false;
    for (size_t i = 0; i < ring_snapshot_count(s); i++) {
      const ring_instance *in = ring_snapshot_instance(s, i);
      for (uint32_t j = 0; j < in->ntokens; j++) {
        uint32_t t = in->tokens[j];
        if (t > key && (!found || t < best)) {
          best = t;
          bestidx = (uint32_t)i;
          found = true;
        }
        if (t < wrapbest) {
          wrapbest = t;
          wrapidx = (uint32_t)i;
        }
      }
    }
    cr_assert_eq(rs.inst[0], found ? bestidx : wrapidx, "key %u", key);
    /* the read set equals the write set when everything is ACTIVE */
    ring_replication_set rd;
    cr_assert_eq(ring_snapshot_get(s, key, RING_OP_READ, &rd), RT_OK);
    cr_assert(memcmp(rd.inst, rs.inst, 3 * sizeof rs.inst[0]) == 0);
  }
  ring_snapshot_release(s);
  ring_desc_destroy(d);
}

static uint32_t series_token(int i) {
  char v[32];
  snprintf(v, sizeof v, "%d", i);
  rt_label l[2] = {{"__name__", "http_requests_total"}, {"instance", v}};
  return rt_series_token(rt_series_hash("tenant-1", l, 2));
}

#define NSERIES 100000

static void sets_for(const ring_snapshot *s, uint32_t *toks, char (*ids)[3][16]) {
  for (int i = 0; i < NSERIES; i++) {
    ring_replication_set rs;
    cr_assert_eq(ring_snapshot_get(s, toks[i], RING_OP_WRITE, &rs), RT_OK);
    for (int j = 0; j < 3; j++) {
      snprintf(ids[i][j], 16, "%s", ring_snapshot_instance(s, rs.inst[j])->id);
    }
  }
}

Test(ring_snapshot, joining_ingester_moves_about_one_nth) {
  ring_desc *d;
  cr_assert_eq(ring_desc_create(&d), RT_OK);
  uint64_t rng = 5;
  add_instances(d, &rng, 3, 10, 0, RING_ACTIVE);
  uint32_t *toks = malloc(NSERIES * sizeof *toks);
  for (int i = 0; i < NSERIES; i++) {
    toks[i] = series_token(i);
  }
  char(*before)[3][16] = malloc(NSERIES * sizeof *before);
  char(*after)[3][16] = malloc(NSERIES * sizeof *after);
  ring_snapshot *s = build(d, 3);
  sets_for(s, toks, before);
  ring_snapshot_release(s);

  /* a 31st ingester joins zone a: while JOINING it takes no writes */
  add_instances(d, &rng, 1, 1, 10, RING_JOINING);
  s = build(d, 3);
  sets_for(s, toks, after);
  ring_snapshot_release(s);
  cr_assert(memcmp(before, after, NSERIES * sizeof *before) == 0,
            "a JOINING instance must not change any write set");

  /* once ACTIVE, it takes over about 1/N of the replicas, all of them from zone a */
  set_state(d, "ing-a-10", RING_ACTIVE, NOW);
  s = build(d, 3);
  sets_for(s, toks, after);
  const ring_instance *ni = ring_snapshot_instance(s, (size_t)ring_snapshot_find(s, "ing-a-10"));
  double share = ni->replicated_share;
  ring_snapshot_release(s);
  long moved = 0, series_changed = 0;
  for (int i = 0; i < NSERIES; i++) {
    int diff = 0;
    for (int j = 0; j < 3; j++) {
      bool kept = false;
      for (int k = 0; k < 3; k++) {
        kept |= strcmp(before[i][j], after[i][k]) == 0;
      }
      if (!kept) {
        diff++;
        cr_assert(strncmp(before[i][j], "ing-a-", 6) == 0, "only zone a replicas may move");
      }
    }
    bool to_new = false;
    for (int k = 0; k < 3; k++) {
      to_new |= strcmp(after[i][k], "ing-a-10") == 0;
    }
    cr_assert(diff <= 1);
    cr_assert_eq(diff == 1, to_new, "series %d: a replica moves exactly when the new one takes it",
                 i);
    moved += diff;
    series_changed += diff > 0;
  }
  double frac = (double)moved / (3.0 * NSERIES);
  printf("join: %ld of %d replicas moved (%.2f%%; 1/N = %.2f%%), %ld of %d series changed one "
         "replica (%.2f%%; 1/(zone size) = %.2f%%); new instance replicated share %.2f%%\n",
         moved, 3 * NSERIES, frac * 100, 100.0 / 31, series_changed, NSERIES,
         100.0 * series_changed / NSERIES, 100.0 / 11, share * 100);
  cr_assert(frac > 0.5 / 31 && frac < 1.6 / 31, "moved fraction %f", frac);
  /* the moved series match the share of key space the snapshot says the new instance owns */
  cr_assert_float_eq((double)series_changed / NSERIES, share, 0.01);
  free(toks);
  free(before);
  free(after);
  ring_desc_destroy(d);
}

Test(ring_snapshot, state_and_health_rules) {
  ring_desc *d;
  cr_assert_eq(ring_desc_create(&d), RT_OK);
  uint64_t rng = 3;
  add_instances(d, &rng, 3, 2, 0, RING_ACTIVE);
  /* a: one LEAVING; b: one JOINING; c: one dead (heartbeat 2 minutes old) */
  set_state(d, "ing-a-00", RING_LEAVING, NOW);
  set_state(d, "ing-b-00", RING_JOINING, NOW);
  set_state(d, "ing-c-00", RING_ACTIVE, NOW - 120000);
  ring_snapshot *s = build(d, 3);
  long a0 = ring_snapshot_find(s, "ing-a-00"), b0 = ring_snapshot_find(s, "ing-b-00"),
       c0 = ring_snapshot_find(s, "ing-c-00");
  cr_assert_not(ring_snapshot_instance(s, (size_t)c0)->healthy);
  cr_assert(ring_snapshot_instance(s, (size_t)a0)->healthy);
  int with_dead = 0, leaving_reads = 0;
  for (uint32_t key = 0; key < 4000000000u; key += 1000003) {
    ring_replication_set w, r;
    rt_err e = ring_snapshot_get(s, key, RING_OP_WRITE, &w);
    bool dead_zone_c = true;
    for (uint32_t j = 0; j < w.n; j++) {
      cr_assert_neq(w.inst[j], (uint32_t)a0, "LEAVING takes no writes");
      cr_assert_neq(w.inst[j], (uint32_t)b0, "JOINING takes no writes");
      cr_assert_neq(w.inst[j], (uint32_t)c0, "unhealthy takes no writes");
      dead_zone_c &= ring_snapshot_instance(s, w.inst[j])->zone_index != 2;
    }
    /* a and b are served by their zone's other instance; c's dead one is a failure */
    if (w.n == 2) {
      cr_assert(dead_zone_c);
      with_dead++;
      cr_assert_eq(e, RT_OK);
      cr_assert_eq(w.max_errors, 0);
    } else {
      cr_assert_eq(w.n, 3);
      cr_assert_eq(w.max_errors, 1);
    }
    cr_assert_eq(ring_snapshot_get(s, key, RING_OP_READ, &r), RT_OK);
    bool leaving_read = false;
    for (uint32_t j = 0; j < r.n; j++) {
      cr_assert_neq(r.inst[j], (uint32_t)b0, "JOINING serves no reads");
      leaving_read |= r.inst[j] == (uint32_t)a0;
    }
    leaving_reads += leaving_read;
  }
  cr_assert(with_dead > 0);
  cr_assert(leaving_reads > 0, "a LEAVING instance still serves reads");
  /* whole-zone readers: zone a has its LEAVING one, zone b not its JOINING one */
  uint32_t zr[8];
  size_t healthy;
  cr_assert_eq(ring_snapshot_zone_readers(s, 0, zr, 8, &healthy), 2);
  cr_assert_eq(healthy, 2);
  cr_assert_eq(ring_snapshot_zone_readers(s, 1, zr, 8, &healthy), 1);
  cr_assert_str_eq(ring_snapshot_instance(s, zr[0])->id, "ing-b-01");
  cr_assert_eq(ring_snapshot_zone_readers(s, 2, zr, 1, &healthy), 2);
  cr_assert_eq(healthy, 1);
  cr_assert_eq(ring_snapshot_zone_readers(s, 3, zr, 8, NULL), 0);
  ring_snapshot_release(s);

  /* a second dead zone: quorum lost for the keys that map to both dead instances */
  set_state(d, "ing-b-01", RING_ACTIVE, NOW - 120000);
  s = build(d, 3);
  int lost = 0;
  for (uint32_t key = 0; key < 4000000000u; key += 1000003) {
    ring_replication_set w;
    rt_err e = ring_snapshot_get(s, key, RING_OP_WRITE, &w);
    cr_assert_eq(e == RT_OK, w.n >= 2);
    lost += e == RT_EUNAVAIL;
  }
  cr_assert(lost > 0);
  ring_snapshot_release(s);
  ring_desc_destroy(d);
}

Test(ring_snapshot, fewer_zones_than_rf_and_empty_ring) {
  ring_desc *d;
  cr_assert_eq(ring_desc_create(&d), RT_OK);
  ring_snapshot *s = build(d, 3);
  ring_replication_set rs;
  cr_assert_eq(ring_snapshot_get(s, 1, RING_OP_WRITE, &rs), RT_EUNAVAIL);
  cr_assert_eq(rs.n, 0);
  cr_assert_eq(ring_snapshot_read_zones(s), 0, "nothing to read from");
  ring_snapshot_release(s);
  uint64_t rng = 9;
  add_instances(d, &rng, 1, 3, 0, RING_ACTIVE); /* one zone, three instances */
  s = build(d, 3);
  cr_assert_eq(ring_snapshot_get(s, 12345, RING_OP_WRITE, &rs), RT_OK);
  cr_assert_eq(rs.n, 1, "one zone: one replica");
  cr_assert_eq(rs.quorum, 1);
  cr_assert_eq(ring_snapshot_quorum(s), 1);
  cr_assert_eq(ring_snapshot_majority(s), 1);
  cr_assert_eq(ring_snapshot_read_zones(s), 1);
  ring_snapshot_release(s);
  /* a static ring's rule on the same instances: every replica, every zone */
  ring_snapshot_opts every = {.replication_factor = 3, .now_ms = NOW, .every_replica = true};
  cr_assert_eq(ring_snapshot_build(d, &every, &s), RT_OK);
  cr_assert_eq(ring_snapshot_quorum(s), 1);
  cr_assert_eq(ring_snapshot_read_zones(s), 1);
  ring_snapshot_release(s);
  add_instances(d, &rng, 2, 1, 5, RING_ACTIVE); /* zones a and b */
  s = build(d, 3);
  cr_assert_eq(ring_snapshot_zone_count(s), 2);
  cr_assert_eq(ring_snapshot_get(s, 12345, RING_OP_WRITE, &rs), RT_OK);
  cr_assert_eq(rs.n, 2);
  cr_assert_eq(rs.quorum, 2);
  cr_assert_eq(ring_snapshot_read_zones(s), 1, "both zones hold every series");
  ring_snapshot_release(s);
  add_instances(d, &rng, 3, 1, 9, RING_ACTIVE); /* zones a, b and c */
  s = build(d, 3);
  cr_assert_eq(ring_snapshot_quorum(s), 2);
  cr_assert_eq(ring_snapshot_majority(s), 2);
  cr_assert_eq(ring_snapshot_read_zones(s), 2, "2 of 3 zones");
  ring_snapshot_release(s);
  cr_assert_eq(ring_snapshot_build(d, &every, &s), RT_OK);
  cr_assert_eq(ring_snapshot_get(s, 12345, RING_OP_WRITE, &rs), RT_OK);
  cr_assert_eq(rs.n, 3);
  cr_assert_eq(rs.quorum, 3);
  cr_assert_eq(ring_snapshot_quorum(s), 3);
  cr_assert_eq(ring_snapshot_majority(s), 2);
  cr_assert_eq(ring_snapshot_read_zones(s), 3);
  ring_snapshot_release(s);
  /* RF 1 */
  s = build(d, 1);
  cr_assert_eq(ring_snapshot_get(s, 12345, RING_OP_WRITE, &rs), RT_OK);
  cr_assert_eq(rs.n, 1);
  cr_assert_eq(rs.quorum, 1);
  ring_snapshot_release(s);
  ring_snapshot_opts bad = {.replication_factor = RING_MAX_RF + 1};
  cr_assert_eq(ring_snapshot_build(d, &bad, &s), RT_EINVAL);
  ring_desc_destroy(d);
}

Test(ring_snapshot, whole_zone_joining_still_writes_to_two_zones) {
  ring_desc *d;
  cr_assert_eq(ring_desc_create(&d), RT_OK);
  uint64_t rng = 21;
  add_instances(d, &rng, 2, 3, 0, RING_ACTIVE);
  add_instances(d, &rng, 3, 0, 0, RING_ACTIVE);
  /* zone c, all JOINING */
  uint32_t tok[128];
  for (int i = 0; i < 3; i++) {
    char id[16];
    snprintf(id, sizeof id, "ing-c-%02d", i);
    cr_assert_eq(ring_tokens_generate(&rng, NULL, 0, tok, 128), RT_OK);
    ring_instance in = {.id = id, .zone = "c", .state = RING_JOINING, .heartbeat_ms = NOW,
                        .tokens = tok, .ntokens = 128};
    cr_assert_eq(ring_desc_set(d, &in), RT_OK);
  }
  ring_snapshot *s = build(d, 3);
  for (uint32_t key = 7; key < 4000000000u; key += 10000019) {
    ring_replication_set w;
    cr_assert_eq(ring_snapshot_get(s, key, RING_OP_WRITE, &w), RT_OK);
    cr_assert_eq(w.n, 2);
    cr_assert_eq(w.quorum, 2);
  }
  ring_snapshot_release(s);
  ring_desc_destroy(d);
}

Test(ring_snapshot, json_and_html) {
  ring_desc *d;
  cr_assert_eq(ring_desc_create(&d), RT_OK);
  uint32_t t[] = {100, 200};
  ring_instance in = {.id = "ing-<1>",
                      .zone = "a\"z",
                      .http_addr = "127.0.0.1:9009",
                      .rpc_addr = "tcp://127.0.0.1:9095",
                      .state = RING_ACTIVE,
                      .heartbeat_ms = NOW - 1500,
                      .tokens = t,
                      .ntokens = 2};
  cr_assert_eq(ring_desc_set(d, &in), RT_OK);
  ring_snapshot *s = build(d, 3);
  rt_buf b = RT_BUF_INIT;
  ring_snapshot_json(s, NOW, &b);
  cr_assert(strstr(b.data, "\"id\":\"ing-\\u003c1\\u003e\""), "%s", b.data);
  cr_assert(strstr(b.data, "\"zone\":\"a\\\"z\""), "%s", b.data);
  cr_assert(strstr(b.data, "\"zones\":[\"a\\\"z\"]"), "%s", b.data);
  cr_assert(strstr(b.data, "\"state\":\"ACTIVE\""), "%s", b.data);
  cr_assert(strstr(b.data, "\"heartbeat_age_ms\":1500"), "%s", b.data);
  cr_assert(strstr(b.data, "\"owned_share\":1.000000"), "%s", b.data);
  cr_assert(strstr(b.data, "\"healthy\":true"), "%s", b.data);
  cr_assert(strstr(b.data, "\"tokens\":2"), "%s", b.data);
  rt_buf_reset(&b);
  ring_snapshot_json(s, NOW + 120000, &b);
  cr_assert(strstr(b.data, "\"healthy\":false"), "%s", b.data);
  rt_buf_reset(&b);
  ring_snapshot_html(s, NOW, "/ring", &b);
  cr_assert(strstr(b.data, "ing-&lt;1&gt;"), "%s", b.data);
  cr_assert_null(strstr(b.data, "ing-<1>"), "ids are escaped");
  cr_assert(strstr(b.data, "name=\"forget\" value=\"ing-&lt;1&gt;\""), "%s", b.data);
  cr_assert(strstr(b.data, "ACTIVE"));
  rt_buf_free(&b);
  ring_snapshot_release(s);
  ring_desc_destroy(d);
}

Test(ring_snapshot, token_collision_between_instances_resolves_the_same_everywhere) {
  ring_desc *x, *y;
  cr_assert_eq(ring_desc_create(&x), RT_OK);
  cr_assert_eq(ring_desc_create(&y), RT_OK);
  uint32_t t1[] = {100, 500}, t2[] = {100, 900};
  ring_instance a = {.id = "a", .zone = "z1", .state = RING_ACTIVE, .heartbeat_ms = NOW,
                     .tokens = t1, .ntokens = 2};
  ring_instance b = {.id = "b", .zone = "z2", .state = RING_ACTIVE, .heartbeat_ms = NOW,
                     .tokens = t2, .ntokens = 2};
  ring_desc_set(x, &a);
  ring_desc_set(x, &b);
  ring_desc_set(y, &b);
  ring_desc_set(y, &a);
  ring_snapshot *sx = build(x, 1), *sy = build(y, 1);
  ring_replication_set rx, ry;
  cr_assert_eq(ring_snapshot_get(sx, 50, RING_OP_WRITE, &rx), RT_OK);
  cr_assert_eq(ring_snapshot_get(sy, 50, RING_OP_WRITE, &ry), RT_OK);
  cr_assert_str_eq(ring_snapshot_instance(sx, rx.inst[0])->id,
                   ring_snapshot_instance(sy, ry.inst[0])->id);
  ring_snapshot_release(sx);
  ring_snapshot_release(sy);
  ring_desc_destroy(x);
  ring_desc_destroy(y);
}

/* Every allocation of a build may fail: the build reports RT_ENOMEM and leaks nothing. */
Test(ring_snapshot, out_of_memory_at_every_allocation) {
  ring_desc *d;
  cr_assert_eq(ring_desc_create(&d), RT_OK);
  uint64_t rng = 17;
  add_instances(d, &rng, 3, 2, 0, RING_ACTIVE);
  int failures = 0;
  for (long n = 0; n < 200; n++) {
    ring_snapshot *s = NULL;
    rt_alloc_fail_after(n);
    rt_err e = ring_snapshot_build(d, NULL, &s);
    rt_alloc_fail_after(-1);
    if (e == RT_OK) {
      cr_assert_eq(ring_snapshot_count(s), 6);
      ring_snapshot_release(s);
      break;
    }
    cr_assert_eq(e, RT_ENOMEM);
    cr_assert_null(s);
    failures++;
  }
  cr_assert_gt(failures, 10);
  /* the descriptor too: a failed set or merge leaves it as it was */
  for (long n = 0; n < 20; n++) {
    uint32_t t[] = {1, 2, 3};
    ring_instance in = {.id = "new-one", .zone = "z", .state = RING_ACTIVE, .heartbeat_ms = NOW,
                        .tokens = t, .ntokens = 3};
    rt_alloc_fail_after(n);
    rt_err e = ring_desc_set(d, &in);
    rt_alloc_fail_after(-1);
    ring_instance got;
    if (e == RT_OK) {
      cr_assert(ring_desc_get(d, "new-one", &got));
      break;
    }
    cr_assert_eq(e, RT_ENOMEM);
    cr_assert_not(ring_desc_get(d, "new-one", &got));
    cr_assert_eq(ring_desc_count(d), 6);
  }
  rt_buf b = RT_BUF_INIT;
  rt_alloc_fail_after(0);
  cr_assert_eq(ring_desc_encode(d, NULL, &b), RT_ENOMEM);
  rt_alloc_fail_after(-1);
  rt_buf_free(&b);
  ring_desc_destroy(d);
}

/* Figures: build time and lookup cost at 30 and 120 instances. */
Test(ring_snapshot, build_and_lookup_cost) {
  int sizes[] = {10, 40};
  for (size_t k = 0; k < 2; k++) {
    ring_desc *d;
    cr_assert_eq(ring_desc_create(&d), RT_OK);
    uint64_t rng = 23;
    add_instances(d, &rng, 3, sizes[k], 0, RING_ACTIVE);
    uint64_t t0 = rt_mono_ns();
    ring_snapshot *s = build(d, 3);
    uint64_t t1 = rt_mono_ns();
    uint64_t krng = 1, sum = 0;
    int n = 1000000;
    for (int i = 0; i < n; i++) {
      ring_replication_set rs;
      ring_snapshot_get(s, (uint32_t)(ring_rand_next(&krng) >> 32), RING_OP_WRITE, &rs);
      sum += rs.inst[0];
    }
    uint64_t t2 = rt_mono_ns();
    printf("cost: %d instances x 128 tokens: build %.2f ms, lookup %.0f ns (checksum %llu)\n",
           3 * sizes[k], (t1 - t0) / 1e6, (double)(t2 - t1) / n, (unsigned long long)sum);
    ring_snapshot_release(s);
    ring_desc_destroy(d);
  }
}

static void add_distributor(ring_desc *d, const char *id, ring_state st, int64_t hb) {
  uint32_t tok[] = {5, 1u << 31, 4000000000u}; /* dropped: distributors own no tokens */
  ring_instance in = {.id = id,
                      .zone = "x", /* not a zone of the ring either */
                      .http_addr = "127.0.0.1:8080",
                      .state = st,
                      .heartbeat_ms = hb,
                      .tokens = tok,
                      .ntokens = 3,
                      .role = RING_ROLE_DISTRIBUTOR};
  cr_assert_eq(ring_desc_set(d, &in), RT_OK);
}

/* Distributor entries take no part in anything about ingesters: the same tokens, zones,
 * replication sets and zone readers as without them; they are counted by
 * ring_snapshot_healthy_role only while healthy and JOINING/ACTIVE. */
Test(ring_snapshot, distributors_stay_out_of_lookups_and_are_counted_apart) {
  ring_desc *d;
  cr_assert_eq(ring_desc_create(&d), RT_OK);
  uint64_t rng = 99;
  add_instances(d, &rng, 3, 2, 0, RING_ACTIVE);
  ring_snapshot *base = build(d, 3);
  add_distributor(d, "dist-1", RING_ACTIVE, NOW);
  add_distributor(d, "dist-2", RING_ACTIVE, NOW - 120000); /* unhealthy */
  add_distributor(d, "dist-3", RING_LEAVING, NOW);
  add_distributor(d, "dist-4", RING_JOINING, NOW - 1000);
  add_distributor(d, "aaa-dist", RING_ACTIVE, NOW); /* sorts before every ingester */
  ring_snapshot *s = build(d, 3);

  cr_assert_eq(ring_snapshot_count(s), 6);
  cr_assert_eq(ring_snapshot_tokens(s), ring_snapshot_tokens(base));
  cr_assert_eq(ring_snapshot_zone_count(s), 3);
  cr_assert_eq(ring_snapshot_find(s, "dist-1"), -1);
  cr_assert_eq(ring_snapshot_find(s, "aaa-dist"), -1);
  for (size_t i = 0; i < ring_snapshot_count(s); i++) {
    cr_assert_str_eq(ring_snapshot_instance(s, i)->id, ring_snapshot_instance(base, i)->id);
    cr_assert_float_eq(ring_snapshot_instance(s, i)->owned_share,
                       ring_snapshot_instance(base, i)->owned_share, 1e-12);
  }
  for (uint32_t k = 0; k < 4000000000u; k += 10000019) {
    for (int op = 0; op < 2; op++) {
      ring_replication_set a, b;
      cr_assert_eq(ring_snapshot_get(s, k, (ring_op)op, &a), RT_OK);
      cr_assert_eq(ring_snapshot_get(base, k, (ring_op)op, &b), RT_OK);
      cr_assert_eq(a.n, b.n);
      cr_assert_eq(a.quorum, b.quorum);
      for (uint32_t j = 0; j < a.n; j++) {
        cr_assert_str_eq(ring_snapshot_instance(s, a.inst[j])->id,
                         ring_snapshot_instance(base, b.inst[j])->id);
      }
    }
  }
  for (size_t z = 0; z < 3; z++) {
    uint32_t rd[8];
    size_t h;
    cr_assert_eq(ring_snapshot_zone_readers(s, z, rd, 8, &h), 2);
    cr_assert_eq(h, 2);
  }
  /* the other members, by id */
  cr_assert_eq(ring_snapshot_other_count(s), 5);
  cr_assert_str_eq(ring_snapshot_other(s, 0)->id, "aaa-dist");
  cr_assert_null(ring_snapshot_other(s, 5));
  for (size_t i = 0; i < 5; i++) {
    const ring_instance *o = ring_snapshot_other(s, i);
    cr_assert_eq(o->ntokens, 0);
    cr_assert_str_eq(o->role, "distributor");
  }
  /* healthy and JOINING/ACTIVE: aaa-dist, dist-1, dist-4 */
  cr_assert_eq(ring_snapshot_healthy_role(s, RING_ROLE_DISTRIBUTOR, 0), 3);
  cr_assert_eq(ring_snapshot_healthy_role(s, RING_ROLE_DISTRIBUTOR, NOW), 3);
  /* later: dist-4's heartbeat (1 s older) expires first, then the others */
  cr_assert_eq(ring_snapshot_healthy_role(s, RING_ROLE_DISTRIBUTOR, NOW + 59500), 2);
  cr_assert_eq(ring_snapshot_healthy_role(s, RING_ROLE_DISTRIBUTOR, NOW + 60001), 0);
  cr_assert_eq(ring_snapshot_healthy_role(s, "querier", 0), 0);
  cr_assert_eq(ring_snapshot_healthy_role(s, RING_ROLE_INGESTER, 0), 6);
  cr_assert_eq(ring_snapshot_healthy_role(s, NULL, 0), 6);
  cr_assert_eq(ring_snapshot_healthy_role(base, RING_ROLE_DISTRIBUTOR, 0), 0);

  /* /ring: ingesters under "instances" as before, distributors under "others" */
  rt_buf b = RT_BUF_INIT;
  ring_snapshot_json(s, NOW, &b);
  const char *others = strstr(b.data, "\"others\":[");
  cr_assert(others, "%s", b.data);
  cr_assert(strstr(others, "\"id\":\"dist-1\",\"role\":\"distributor\",\"state\":\"ACTIVE\","
                           "\"healthy\":true"),
            "%s", others);
  cr_assert(strstr(others, "\"id\":\"dist-2\",\"role\":\"distributor\",\"state\":\"ACTIVE\","
                           "\"healthy\":false"),
            "%s", others);
  const char *d1 = strstr(b.data, "dist-");
  cr_assert(d1 > others, "a distributor listed among the ingesters: %s", b.data);
  cr_assert(strstr(b.data, "\"zones\":[\"a\",\"b\",\"c\"]"), "%s", b.data);
  rt_buf_reset(&b);
  ring_snapshot_html(s, NOW, "/ring", &b);
  cr_assert(strstr(b.data, "Other members"), "%s", b.data);
  cr_assert(strstr(b.data, "3 healthy distributors"), "%s", b.data);
  rt_buf_free(&b);
  ring_snapshot_release(s);

  /* a forgotten distributor is no longer counted */
  cr_assert_eq(ring_desc_forget(d, "dist-1", NOW + 1), RT_OK);
  s = build(d, 3);
  cr_assert_eq(ring_snapshot_other_count(s), 4);
  cr_assert_eq(ring_snapshot_healthy_role(s, RING_ROLE_DISTRIBUTOR, 0), 2);
  ring_snapshot_release(s);
  ring_snapshot_release(base);
  ring_desc_destroy(d);
}
