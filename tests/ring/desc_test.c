/* desc_test.c - the descriptor: merge rules, tombstones, expiry, wire form. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring.pb-c.h"
#include "ring/ring.h"

static const uint32_t toks_a[] = {10, 20, 30};
static const uint32_t toks_b[] = {15, 25};

static ring_instance mk(const char *id, ring_state st, int64_t hb, const uint32_t *t, uint32_t n) {
  ring_instance in = {.id = id,
                      .zone = "a",
                      .http_addr = "127.0.0.1:9009",
                      .rpc_addr = "tcp://127.0.0.1:9095",
                      .gossip_addr = "",
                      .state = st,
                      .heartbeat_ms = hb,
                      .registered_ms = 1,
                      .tokens = t,
                      .ntokens = n};
  return in;
}

Test(ring_desc, newer_heartbeat_wins_older_ignored) {
  ring_desc *d;
  cr_assert_eq(ring_desc_create(&d), RT_OK);
  ring_instance a = mk("ing-1", RING_JOINING, 100, toks_a, 3);
  bool changed;
  cr_assert_eq(ring_desc_merge_one(d, &a, &changed), RT_OK);
  cr_assert(changed);
  ring_instance newer = mk("ing-1", RING_ACTIVE, 200, toks_a, 3);
  cr_assert_eq(ring_desc_merge_one(d, &newer, &changed), RT_OK);
  cr_assert(changed);
  ring_instance older = mk("ing-1", RING_LEAVING, 150, toks_b, 2);
  cr_assert_eq(ring_desc_merge_one(d, &older, &changed), RT_OK);
  cr_assert_not(changed, "an older heartbeat must not replace a newer one");
  ring_instance got;
  cr_assert(ring_desc_get(d, "ing-1", &got));
  cr_assert_eq(got.state, RING_ACTIVE);
  cr_assert_eq(got.heartbeat_ms, 200);
  cr_assert_eq(got.ntokens, 3);
  /* the same entry again changes nothing */
  cr_assert_eq(ring_desc_merge_one(d, &newer, &changed), RT_OK);
  cr_assert_not(changed);
  ring_desc_destroy(d);
}

Test(ring_desc, equal_heartbeat_breaks_tie_by_state_so_merges_commute) {
  ring_desc *x, *y;
  cr_assert_eq(ring_desc_create(&x), RT_OK);
  cr_assert_eq(ring_desc_create(&y), RT_OK);
  ring_instance act = mk("i", RING_ACTIVE, 500, toks_a, 3);
  ring_instance lv = mk("i", RING_LEAVING, 500, toks_a, 3);
  cr_assert_eq(ring_desc_merge_one(x, &act, NULL), RT_OK);
  cr_assert_eq(ring_desc_merge_one(x, &lv, NULL), RT_OK);
  cr_assert_eq(ring_desc_merge_one(y, &lv, NULL), RT_OK);
  cr_assert_eq(ring_desc_merge_one(y, &act, NULL), RT_OK);
  ring_instance gx, gy;
  cr_assert(ring_desc_get(x, "i", &gx));
  cr_assert(ring_desc_get(y, "i", &gy));
  cr_assert_eq(gx.state, RING_LEAVING);
  cr_assert_eq(gy.state, RING_LEAVING);
  ring_desc_destroy(x);
  ring_desc_destroy(y);
}

Test(ring_desc, tombstone_spreads_and_live_heartbeat_revives) {
  ring_desc *a, *b;
  cr_assert_eq(ring_desc_create(&a), RT_OK);
  cr_assert_eq(ring_desc_create(&b), RT_OK);
  ring_instance x = mk("dead", RING_ACTIVE, 1000, toks_a, 3);
  ring_instance y = mk("alive", RING_ACTIVE, 1000, toks_b, 2);
  cr_assert_eq(ring_desc_set(a, &x), RT_OK);
  cr_assert_eq(ring_desc_set(a, &y), RT_OK);
  cr_assert_eq(ring_desc_set(b, &x), RT_OK);
  cr_assert_eq(ring_desc_set(b, &y), RT_OK);

  /* forget on a with a clock older than the heartbeat: the tombstone still wins */
  cr_assert_eq(ring_desc_forget(a, "dead", 500), RT_OK);
  cr_assert_eq(ring_desc_forget(a, "nobody", 500), RT_ENOTFOUND);
  ring_instance t;
  cr_assert(ring_desc_get(a, "dead", &t));
  cr_assert_eq(t.state, RING_LEFT);
  cr_assert_eq(t.heartbeat_ms, 1001);
  cr_assert_eq(t.ntokens, 0);

  /* gossip it to b via the wire form */
  rt_buf w = RT_BUF_INIT;
  cr_assert_eq(ring_desc_encode(a, "inproc://a", &w), RT_OK);
  size_t changed;
  char *sender;
  char err[256];
  cr_assert_eq(ring_desc_decode_merge(b, (uint8_t *)w.data, w.len, NULL, NULL, &changed, &sender,
                                      err, sizeof err),
               RT_OK, "%s", err);
  cr_assert_eq(changed, 1);
  cr_assert_str_eq(sender, "inproc://a");
  rt_free(sender, 0);
  cr_assert(ring_desc_get(b, "dead", &t));
  cr_assert_eq(t.state, RING_LEFT);

  /* a snapshot never shows a tombstone */
  ring_snapshot *s;
  cr_assert_eq(ring_snapshot_build(b, NULL, &s), RT_OK);
  cr_assert_eq(ring_snapshot_count(s), 1);
  cr_assert_eq(ring_snapshot_find(s, "dead"), -1);
  cr_assert_eq(ring_snapshot_tokens(s), 2);
  ring_snapshot_release(s);

  /* a stale copy of the old entry does not bring it back ... */
  bool c;
  cr_assert_eq(ring_desc_merge_one(b, &x, &c), RT_OK);
  cr_assert_not(c);
  /* ... but a newer heartbeat from the instance itself does */
  ring_instance back = mk("dead", RING_JOINING, 2000, toks_a, 3);
  cr_assert_eq(ring_desc_merge_one(b, &back, &c), RT_OK);
  cr_assert(c);
  cr_assert(ring_desc_get(b, "dead", &t));
  cr_assert_eq(t.state, RING_JOINING);

  /* expiry drops old tombstones only */
  cr_assert_eq(ring_desc_count(a), 2);
  cr_assert_eq(ring_desc_gc(a, 1001), 0);
  cr_assert_eq(ring_desc_gc(a, 1002), 1);
  cr_assert_eq(ring_desc_count(a), 1);
  cr_assert_not(ring_desc_get(a, "dead", &t));
  cr_assert(ring_desc_get(a, "alive", &t));
  rt_buf_free(&w);
  ring_desc_destroy(a);
  ring_desc_destroy(b);
}

Test(ring_desc, set_rejects_bad_instances) {
  ring_desc *d;
  cr_assert_eq(ring_desc_create(&d), RT_OK);
  ring_instance e = mk("", RING_ACTIVE, 1, toks_a, 3);
  cr_assert_eq(ring_desc_set(d, &e), RT_EINVAL);
  uint32_t unsorted[] = {5, 3};
  ring_instance u = mk("x", RING_ACTIVE, 1, unsorted, 2);
  cr_assert_eq(ring_desc_set(d, &u), RT_EINVAL);
  uint32_t dup[] = {5, 5};
  ring_instance du = mk("x", RING_ACTIVE, 1, dup, 2);
  cr_assert_eq(ring_desc_set(d, &du), RT_EINVAL);
  ring_instance bad_utf8 = mk("x\xff", RING_ACTIVE, 1, toks_a, 3);
  cr_assert_eq(ring_desc_set(d, &bad_utf8), RT_EINVAL);
  ring_instance st = mk("x", (ring_state)7, 1, toks_a, 3);
  cr_assert_eq(ring_desc_set(d, &st), RT_EINVAL);
  cr_assert_eq(ring_desc_count(d), 0);
  ring_desc_destroy(d);
}

Test(ring_desc, decode_rejects_malformed_and_changes_nothing) {
  ring_desc *d;
  cr_assert_eq(ring_desc_create(&d), RT_OK);
  char err[256];
  size_t changed;
  const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
  cr_assert_eq(ring_desc_decode_merge(d, junk, sizeof junk, NULL, NULL, &changed, NULL, err,
                                      sizeof err),
               RT_EPROTO);
  cr_assert(strstr(err, "malformed") != NULL, "%s", err);

  /* a good instance followed by one with unsorted tokens: nothing is merged */
  Ringtail__InstanceDesc good = RINGTAIL__INSTANCE_DESC__INIT, bad = RINGTAIL__INSTANCE_DESC__INIT;
  uint32_t gt[] = {1, 2}, bt[] = {9, 3};
  good.id = "good";
  good.tokens = gt;
  good.n_tokens = 2;
  good.heartbeat_ms = 5;
  bad.id = "bad";
  bad.tokens = bt;
  bad.n_tokens = 2;
  Ringtail__InstanceDesc *v[] = {&good, &bad};
  Ringtail__RingState st = RINGTAIL__RING_STATE__INIT;
  st.instances = v;
  st.n_instances = 2;
  uint8_t buf[256];
  size_t n = ringtail__ring_state__pack(&st, buf);
  cr_assert_eq(ring_desc_decode_merge(d, buf, n, NULL, NULL, &changed, NULL, err, sizeof err),
               RT_EPROTO);
  cr_assert(strstr(err, "bad") && strstr(err, "sorted"), "%s", err);
  cr_assert_eq(ring_desc_count(d), 0);

  /* an empty id */
  bad.id = "";
  bt[0] = 1;
  n = ringtail__ring_state__pack(&st, buf);
  cr_assert_eq(ring_desc_decode_merge(d, buf, n, NULL, NULL, &changed, NULL, err, sizeof err),
               RT_EPROTO);
  cr_assert(strstr(err, "empty instance id"), "%s", err);

  /* the own entry is reported, not merged */
  bad.id = "me";
  bad.heartbeat_ms = 77;
  n = ringtail__ring_state__pack(&st, buf);
  int64_t self_seen;
  cr_assert_eq(ring_desc_decode_merge(d, buf, n, "me", &self_seen, &changed, NULL, err, sizeof err),
               RT_OK, "%s", err);
  cr_assert_eq(self_seen, 77);
  cr_assert_eq(changed, 1);
  ring_instance got;
  cr_assert_not(ring_desc_get(d, "me", &got));
  cr_assert(ring_desc_get(d, "good", &got));
  ring_desc_destroy(d);
}

Test(ring_desc, encode_decode_round_trip) {
  ring_desc *a, *b;
  cr_assert_eq(ring_desc_create(&a), RT_OK);
  cr_assert_eq(ring_desc_create(&b), RT_OK);
  ring_instance x = mk("ing-a", RING_ACTIVE, 123456789, toks_a, 3);
  x.zone = "zone-a";
  x.gossip_addr = "tcp://10.0.0.1:7946";
  ring_instance y = mk("ing-b", RING_LEAVING, 42, toks_b, 2);
  cr_assert_eq(ring_desc_set(a, &x), RT_OK);
  cr_assert_eq(ring_desc_set(a, &y), RT_OK);
  rt_buf w = RT_BUF_INIT;
  cr_assert_eq(ring_desc_encode(a, NULL, &w), RT_OK);
  char err[128];
  size_t changed;
  cr_assert_eq(ring_desc_decode_merge(b, (uint8_t *)w.data, w.len, NULL, NULL, &changed, NULL, err,
                                      sizeof err),
               RT_OK);
  cr_assert_eq(changed, 2);
  ring_instance g;
  cr_assert(ring_desc_get(b, "ing-a", &g));
  cr_assert_str_eq(g.zone, "zone-a");
  cr_assert_str_eq(g.gossip_addr, "tcp://10.0.0.1:7946");
  cr_assert_str_eq(g.rpc_addr, "tcp://127.0.0.1:9095");
  cr_assert_eq(g.heartbeat_ms, 123456789);
  cr_assert_eq(g.state, RING_ACTIVE);
  cr_assert_eq(g.ntokens, 3);
  cr_assert_eq(g.tokens[2], 30);
  cr_assert(ring_desc_get(b, "ing-b", &g));
  cr_assert_eq(g.state, RING_LEAVING);
  rt_buf_free(&w);
  ring_desc_destroy(a);
  ring_desc_destroy(b);
}

Test(ring_desc, state_names) {
  ring_state s;
  cr_assert(ring_state_parse("active", &s));
  cr_assert_eq(s, RING_ACTIVE);
  cr_assert(ring_state_parse("LEAVING", &s));
  cr_assert_eq(s, RING_LEAVING);
  cr_assert_not(ring_state_parse("LEFT", &s));
  cr_assert_not(ring_state_parse("bogus", &s));
  cr_assert_str_eq(ring_state_name(RING_JOINING), "JOINING");
}

/* Random corruptions of a valid message: decode either merges valid entries or rejects the
 * message with RT_EPROTO; never crashes, never leaks (under the sanitizers). */
Test(ring_desc, decode_survives_corrupted_messages) {
  ring_desc *src;
  cr_assert_eq(ring_desc_create(&src), RT_OK);
  uint64_t rng = 3;
  for (int i = 0; i < 6; i++) {
    char id[16];
    snprintf(id, sizeof id, "ing-%d", i);
    uint32_t t[16];
    cr_assert_eq(ring_tokens_generate(&rng, NULL, 0, t, 16), RT_OK);
    ring_instance in = mk(id, (ring_state)(i % 4), 1000 + i, t, i % 4 == 3 ? 0 : 16);
    cr_assert_eq(ring_desc_set(src, &in), RT_OK);
  }
  rt_buf w = RT_BUF_INIT;
  cr_assert_eq(ring_desc_encode(src, "tcp://x:1", &w), RT_OK);
  uint8_t *m = malloc(w.len + 16);
  int ok = 0, rejected = 0;
  for (int iter = 0; iter < 20000; iter++) {
    size_t len = w.len;
    memcpy(m, w.data, len);
    int flips = 1 + (int)(ring_rand_next(&rng) % 4);
    for (int f = 0; f < flips; f++) {
      size_t at = (size_t)(ring_rand_next(&rng) % len);
      m[at] = (uint8_t)ring_rand_next(&rng);
    }
    if (ring_rand_next(&rng) % 8 == 0) {
      len = (size_t)(ring_rand_next(&rng) % len);
    }
    ring_desc *d;
    cr_assert_eq(ring_desc_create(&d), RT_OK);
    char err[256];
    size_t changed;
    char *sender = NULL;
    rt_err e = ring_desc_decode_merge(d, m, len, "ing-2", NULL, &changed, &sender, err, sizeof err);
    cr_assert(e == RT_OK || e == RT_EPROTO, "%s", rt_strerror(e));
    if (e == RT_OK) {
      ok++;
      /* whatever was taken is well formed and builds a snapshot */
      ring_snapshot *s;
      cr_assert_eq(ring_snapshot_build(d, NULL, &s), RT_OK);
      ring_snapshot_release(s);
    } else {
      rejected++;
      cr_assert_eq(ring_desc_count(d), 0);
    }
    rt_free(sender, 0);
    ring_desc_destroy(d);
  }
  printf("corrupted ring states: %d merged, %d rejected\n", ok, rejected);
  cr_assert_gt(rejected, 0);
  free(m);
  rt_buf_free(&w);
  ring_desc_destroy(src);
}

/* The role travels on the wire; a non-ingester entry keeps no tokens even when given some. */
Test(ring_desc, role_round_trips_and_distributors_own_no_tokens) {
  ring_desc *a, *b;
  cr_assert_eq(ring_desc_create(&a), RT_OK);
  cr_assert_eq(ring_desc_create(&b), RT_OK);
  ring_instance x = mk("ing-a", RING_ACTIVE, 100, toks_a, 3);
  ring_instance y = mk("dist-1", RING_ACTIVE, 100, toks_b, 2);
  y.role = RING_ROLE_DISTRIBUTOR;
  cr_assert_eq(ring_desc_set(a, &x), RT_OK);
  cr_assert_eq(ring_desc_set(a, &y), RT_OK);
  ring_instance g;
  cr_assert(ring_desc_get(a, "dist-1", &g));
  cr_assert_eq(g.ntokens, 0, "a distributor owns no tokens");
  cr_assert_null(g.tokens);
  cr_assert_str_eq(g.role, "distributor");
  uint32_t *taken;
  size_t nt;
  cr_assert_eq(ring_desc_taken_tokens(a, NULL, &taken, &nt), RT_OK);
  cr_assert_eq(nt, 3);
  rt_free(taken, 0);

  rt_buf w = RT_BUF_INIT;
  cr_assert_eq(ring_desc_encode(a, NULL, &w), RT_OK);
  char err[128];
  size_t changed;
  cr_assert_eq(ring_desc_decode_merge(b, (uint8_t *)w.data, w.len, NULL, NULL, &changed, NULL, err,
                                      sizeof err),
               RT_OK, "%s", err);
  cr_assert_eq(changed, 2);
  cr_assert(ring_desc_get(b, "dist-1", &g));
  cr_assert_str_eq(g.role, "distributor");
  cr_assert_eq(g.ntokens, 0);
  cr_assert(ring_desc_get(b, "ing-a", &g));
  cr_assert_str_eq(g.role, "", "an ingester's role stays empty, as older members send it");
  cr_assert_eq(g.ntokens, 3);
  rt_buf_free(&w);

  /* a peer sending tokens on a distributor entry: taken without them */
  Ringtail__InstanceDesc m = RINGTAIL__INSTANCE_DESC__INIT;
  m.id = "dist-2";
  m.role = "distributor";
  m.state = RINGTAIL__INSTANCE_DESC__STATE__ACTIVE;
  m.heartbeat_ms = 5;
  uint32_t t[] = {1, 2};
  m.tokens = t;
  m.n_tokens = 2;
  Ringtail__InstanceDesc *mp = &m;
  Ringtail__RingState st = RINGTAIL__RING_STATE__INIT;
  st.instances = &mp;
  st.n_instances = 1;
  uint8_t buf[256];
  size_t len = ringtail__ring_state__pack(&st, buf);
  cr_assert_eq(ring_desc_decode_merge(b, buf, len, NULL, NULL, &changed, NULL, err, sizeof err),
               RT_OK, "%s", err);
  cr_assert(ring_desc_get(b, "dist-2", &g));
  cr_assert_eq(g.ntokens, 0);
  /* a role that is not valid UTF-8 is refused like any other string */
  m.role = "\xff";
  len = ringtail__ring_state__pack(&st, buf);
  cr_assert_eq(ring_desc_decode_merge(b, buf, len, NULL, NULL, &changed, NULL, err, sizeof err),
               RT_EPROTO);
  cr_assert(ring_role_is_ingester(NULL) && ring_role_is_ingester("") &&
            ring_role_is_ingester("ingester") && !ring_role_is_ingester("distributor"));
  ring_desc_destroy(a);
  ring_desc_destroy(b);
}
