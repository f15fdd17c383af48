/* tokens_test.c - token generation and the token file: round trip, corruption, restarts. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ring/ring.h"
#include "ring/ring_format.h"

static char dir[256];

static void mkdir_tmp(void) {
  snprintf(dir, sizeof dir, "/tmp/ring-tokens-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_assert_eq(system(cmd), 0);
}

static int u32cmp(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static bool has(const uint32_t *v, size_t n, uint32_t x) {
  return bsearch(&x, v, n, sizeof x, u32cmp) != NULL;
}

Test(ring_tokens, generate_avoids_taken_and_repeats) {
  /* 100k tokens drawn at random would collide about once (birthday bound); generation must not */
  size_t nt = 60000, n = 60000;
  uint32_t *taken = malloc(nt * sizeof *taken), *out = malloc(n * sizeof *out);
  uint64_t rng = 7;
  for (size_t i = 0; i < nt; i++) {
    taken[i] = (uint32_t)(ring_rand_next(&rng) >> 32);
  }
  qsort(taken, nt, sizeof *taken, u32cmp);
  size_t w = 0;
  for (size_t i = 0; i < nt; i++) {
    if (!w || taken[w - 1] != taken[i]) {
      taken[w++] = taken[i];
    }
  }
  nt = w;
  uint64_t g = 8;
  cr_assert_eq(ring_tokens_generate(&g, taken, nt, out, n), RT_OK);
  for (size_t i = 0; i < n; i++) {
    cr_assert(i == 0 || out[i] > out[i - 1], "not sorted/unique at %zu", i);
    cr_assert_not(has(taken, nt, out[i]), "token %u already taken", out[i]);
  }
  free(taken);
  free(out);
}

Test(ring_tokens, generate_is_reproducible_with_a_seed) {
  uint32_t a[128], b[128];
  uint64_t s1 = 42, s2 = 42;
  cr_assert_eq(ring_tokens_generate(&s1, NULL, 0, a, 128), RT_OK);
  cr_assert_eq(ring_tokens_generate(&s2, NULL, 0, b, 128), RT_OK);
  cr_assert(memcmp(a, b, sizeof a) == 0);
}

Test(ring_tokens, file_round_trip, .init = mkdir_tmp, .fini = rm_tmp) {
  uint32_t t[128];
  uint64_t s = 1;
  cr_assert_eq(ring_tokens_generate(&s, NULL, 0, t, 128), RT_OK);
  char path[300];
  snprintf(path, sizeof path, "%s/%s", dir, RING_TOKENS_FILE);
  uint32_t *got;
  size_t n;
  char err[256];
  cr_assert_eq(ring_tokens_load(path, &got, &n, err, sizeof err), RT_ENOTFOUND);
  cr_assert_eq(ring_tokens_save(path, t, 128), RT_OK);
  struct stat st;
  cr_assert_eq(stat(path, &st), 0);
  cr_assert_eq((uint64_t)st.st_size, RING_TOKENS_FILE_SIZE(128));
  cr_assert_eq(ring_tokens_load(path, &got, &n, err, sizeof err), RT_OK, "%s", err);
  cr_assert_eq(n, 128);
  cr_assert(memcmp(got, t, sizeof t) == 0);
  rt_free(got, 0);
  /* no temporary file left behind */
  char tmp[320];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  cr_assert_neq(access(tmp, F_OK), 0);
}

static void write_file(const char *path, const uint8_t *p, size_t n) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f);
  cr_assert_eq(fwrite(p, 1, n, f), n);
  fclose(f);
}

static size_t read_file(const char *path, uint8_t *p, size_t cap) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f);
  size_t n = fread(p, 1, cap, f);
  fclose(f);
  return n;
}

static void expect_corrupt(const char *path, const uint8_t *p, size_t n, const char *msg) {
  write_file(path, p, n);
  uint32_t *got = NULL;
  size_t cnt = 99;
  char err[256] = "";
  rt_err e = ring_tokens_load(path, &got, &cnt, err, sizeof err);
  cr_assert_eq(e, RT_EPROTO, "want EPROTO for '%s', got %s (%s)", msg, rt_strerror(e), err);
  cr_assert_null(got);
  cr_assert_eq(cnt, 0);
  cr_assert(strstr(err, msg) != NULL, "error '%s' should mention '%s'", err, msg);
}

Test(ring_tokens, corrupt_files_are_rejected_precisely, .init = mkdir_tmp, .fini = rm_tmp) {
  uint32_t t[4] = {1, 2, 3, 4000000000u};
  char path[300];
  snprintf(path, sizeof path, "%s/%s", dir, RING_TOKENS_FILE);
  cr_assert_eq(ring_tokens_save(path, t, 4), RT_OK);
  uint8_t good[64], b[64];
  size_t n = read_file(path, good, sizeof good);
  cr_assert_eq(n, RING_TOKENS_FILE_SIZE(4));

  memcpy(b, good, n);
  b[0] ^= 0xff;
  expect_corrupt(path, b, n, "bad magic");
  memcpy(b, good, n);
  b[4] = 9;
  expect_corrupt(path, b, n, "version 9");
  memcpy(b, good, n);
  b[6] = 1;
  expect_corrupt(path, b, n, "flags");
  memcpy(b, good, n);
  b[13] ^= 0x01; /* a token bit */
  expect_corrupt(path, b, n, "checksum");
  memcpy(b, good, n);
  expect_corrupt(path, b, n - 4, "does not match");  /* truncated */
  expect_corrupt(path, b, 5, "bad size");
  memcpy(b, good, n);
  b[8] = 200; /* count */
  expect_corrupt(path, b, n, "does not match");
  expect_corrupt(path, (const uint8_t *)"", 0, "bad size");
  cr_assert_eq(ring_tokens_save(path, t, 0), RT_EINVAL);
}

static ring_config member_cfg(const char *id) {
  ring_config c;
  ring_config_defaults(&c);
  c.instance_id = id;
  c.zone = "a";
  c.data_dir = dir;
  c.gossip_interval_ms = 50;
  return c;
}

Test(ring_tokens, restart_keeps_tokens, .init = mkdir_tmp, .fini = rm_tmp) {
  ring_config c = member_cfg("ing-1");
  char err[256];
  ring *r;
  cr_assert_eq(ring_create(&c, &r, err, sizeof err), RT_OK, "%s", err);
  size_t n;
  const uint32_t *t = ring_tokens(r, &n);
  cr_assert_eq(n, 128);
  uint32_t first[128];
  memcpy(first, t, sizeof first);
  ring_destroy(r);

  cr_assert_eq(ring_create(&c, &r, err, sizeof err), RT_OK, "%s", err);
  t = ring_tokens(r, &n);
  cr_assert_eq(n, 128);
  cr_assert(memcmp(first, t, sizeof first) == 0, "a restart must own the same tokens");
  ring_snapshot *s = ring_snapshot_acquire(r);
  cr_assert_eq(ring_snapshot_count(s), 1);
  cr_assert_eq(ring_snapshot_instance(s, 0)->state, RING_JOINING);
  cr_assert_eq(ring_snapshot_tokens(s), 128);
  ring_snapshot_release(s);
  ring_destroy(r);

  /* asking for more tokens keeps the old ones and adds new ones */
  c.num_tokens = 200;
  cr_assert_eq(ring_create(&c, &r, err, sizeof err), RT_OK, "%s", err);
  t = ring_tokens(r, &n);
  cr_assert_eq(n, 200);
  for (size_t i = 0; i < 128; i++) {
    cr_assert(has(t, n, first[i]));
  }
  ring_destroy(r);
}

Test(ring_tokens, data_dir_is_created, .init = mkdir_tmp, .fini = rm_tmp) {
  char sub[300];
  snprintf(sub, sizeof sub, "%s/x/y/z", dir);
  ring_config c = member_cfg("ing-1");
  c.data_dir = sub;
  char err[256];
  ring *r;
  cr_assert_eq(ring_create(&c, &r, err, sizeof err), RT_OK, "%s", err);
  char path[400];
  snprintf(path, sizeof path, "%s/%s", sub, RING_TOKENS_FILE);
  cr_assert_eq(access(path, R_OK), 0);
  ring_destroy(r);
}

Test(ring_tokens, corrupt_file_at_start_is_set_aside, .init = mkdir_tmp, .fini = rm_tmp) {
  char path[300];
  snprintf(path, sizeof path, "%s/%s", dir, RING_TOKENS_FILE);
  write_file(path, (const uint8_t *)"this is not a token file at all", 31);
  ring_config c = member_cfg("ing-1");
  char err[256];
  ring *r;
  cr_assert_eq(ring_create(&c, &r, err, sizeof err), RT_OK, "%s", err);
  size_t n;
  const uint32_t *t = ring_tokens(r, &n);
  cr_assert_eq(n, 128);
  uint32_t *got;
  size_t gn;
  cr_assert_eq(ring_tokens_load(path, &got, &gn, err, sizeof err), RT_OK, "%s", err);
  cr_assert_eq(gn, 128);
  cr_assert(memcmp(got, t, 128 * sizeof *t) == 0);
  rt_free(got, 0);
  char bad[320];
  snprintf(bad, sizeof bad, "%s.corrupt", path);
  cr_assert_eq(access(bad, F_OK), 0, "the corrupt file is kept for inspection");
  ring_destroy(r);
}

Test(ring_tokens, unwritable_data_dir_is_an_error) {
  ring_config c;
  ring_config_defaults(&c);
  c.instance_id = "x";
  c.data_dir = "/proc/ringtail-cannot-exist";
  char err[256];
  ring *r;
  cr_assert_neq(ring_create(&c, &r, err, sizeof err), RT_OK);
  cr_assert_null(r);
  cr_assert(strstr(err, "ringtail-cannot-exist") != NULL, "%s", err);
}

Test(ring_tokens, bad_config_is_reported) {
  ring_config c;
  ring_config_defaults(&c);
  char err[256];
  ring *r;
  c.instance_id = "bad\xff";
  cr_assert_eq(ring_create(&c, &r, err, sizeof err), RT_EINVAL);
  cr_assert(strstr(err, "UTF-8"), "%s", err);
  c.instance_id = "ok";
  c.replication_factor = 0;
  cr_assert_eq(ring_create(&c, &r, err, sizeof err), RT_EINVAL);
  cr_assert(strstr(err, "replication factor"), "%s", err);
  c.replication_factor = 3;
  c.num_tokens = 0;
  cr_assert_eq(ring_create(&c, &r, err, sizeof err), RT_EINVAL);
  cr_assert(strstr(err, "number of tokens"), "%s", err);
  c.num_tokens = 8;
  c.gossip_bind = "bogus://endpoint";
  cr_assert_neq(ring_create(&c, &r, err, sizeof err), RT_OK);
  cr_assert(strstr(err, "bogus://endpoint"), "%s", err);
}
