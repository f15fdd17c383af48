/* dist_ingester_test.c - dist_push against a real ingester (RocksDB in a temporary directory)
 * over inproc RPC: accepted data is stored, bad data is reported and costs nothing stored. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "distributor/distributor.h"
#include "ingester/ingester.h"
#include "rw_helpers.h"

static char dir[256];
static ing_ingester *ING;
static dist_distributor *D;
static rt_arena *A;
static const char *EP = "inproc://dist-real-ingester";

static void rm_rf(const char *path) {
  DIR *d = opendir(path);
  if (!d) {
    unlink(path);
    return;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) {
      continue;
    }
    char p[512];
    snprintf(p, sizeof p, "%s/%s", path, e->d_name);
    struct stat st;
    if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
      rm_rf(p);
    } else {
      unlink(p);
    }
  }
  closedir(d);
  rmdir(path);
}

static void setup(void) {
  snprintf(dir, sizeof dir, "/tmp/rt-dist-test-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  ing_config ic = {.data_dir = dir, .wal_sync = false, .chunk_max_samples = 120, .chunk_max_age_ms = 2 * 3600 * 1000};
  cr_assert_eq(ing_create(&ic, &ING), RT_OK);
  cr_assert_eq(ing_serve(ING, EP, 2), RT_OK);
  dist_config c;
  memset(&c, 0, sizeof c);
  dist_limits_default(&c.limits);
  c.ingesters = EP;
  c.timeout_ms = 5000;
  cr_assert_eq(dist_create(&c, &D), RT_OK);
  A = rt_arena_create(0);
}

static void teardown(void) {
  dist_destroy(D);
  ing_destroy(ING);
  rt_arena_destroy(A);
  rm_rf(dir);
}

TestSuite(real, .init = setup, .fini = teardown);

static int64_t T0;

static int push(const char *const *kv, const int64_t *ts, const double *v, size_t n, rt_buf *msg) {
  Prometheus__TimeSeries *s = rw_series(A, kv, ts, v, n);
  size_t bl;
  char *b = rw_body(rw_request(A, 1, &s), &bl);
  dist_push_in in = {.body = b, .body_len = bl, .tenant = "t1"};
  dist_push_out out = {.msg = RT_BUF_INIT};
  dist_push(D, &in, &out);
  free(b);
  rt_buf_reset(msg);
  if (out.msg.len) {
    rt_buf_append(msg, out.msg.data, out.msg.len);
  }
  rt_buf_free(&out.msg);
  return out.status;
}

/* Number of samples stored for series `name` of tenant t1 (decoding the chunks is the
 * ingester's business; the dump writes one line per sample). */
static size_t stored(const char *name) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  ing_destroy(ING); /* dump reads the directory offline */
  ING = NULL;
  cr_assert_eq(ing_dump(dir, "t1", f), RT_OK);
  fclose(f);
  size_t n = 0;
  char pat[128];
  snprintf(pat, sizeof pat, "__name__=\"%s\"", name);
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    if (strstr(line, pat)) {
      n++;
    }
  }
  free(text);
  ing_config ic = {.data_dir = dir, .wal_sync = false, .chunk_max_samples = 120, .chunk_max_age_ms = 2 * 3600 * 1000};
  cr_assert_eq(ing_create(&ic, &ING), RT_OK);
  cr_assert_eq(ing_serve(ING, EP, 2), RT_OK);
  return n;
}

Test(real, duplicates_out_of_order_and_bad_input_keep_accepted_data) {
  T0 = rt_now_ms() - 60000;
  static const char *const up[] = {"__name__", "up", "job", "node", NULL};
  rt_buf msg = RT_BUF_INIT;
  int64_t ts[] = {T0, T0 + 1000, T0 + 2000};
  double v[] = {1, 0, rt_stale_nan()};
  cr_assert_eq(push(up, ts, v, 3, &msg), 200, "%s", msg.data);
  /* the newest sample again: a duplicate, accepted */
  cr_assert_eq(push(up, ts + 2, v + 2, 1, &msg), 200, "%s", msg.data);
  /* same timestamp, other value */
  double v2[] = {5};
  int64_t ts2[] = {T0 + 2000};
  cr_assert_eq(push(up, ts2, v2, 1, &msg), 400);
  cr_assert(strstr(msg.data, "duplicate sample for timestamp") == msg.data, "%s", msg.data);
  /* older than the newest */
  int64_t ts3[] = {T0 + 500};
  cr_assert_eq(push(up, ts3, v2, 1, &msg), 400);
  cr_assert(strstr(msg.data, "out of order sample") == msg.data, "%s", msg.data);
  /* garbage in between */
  dist_push_in in = {.body = "\xff\xff\xff\xff", .body_len = 4};
  dist_push_out out = {.msg = RT_BUF_INIT};
  dist_push(D, &in, &out);
  cr_assert_eq(out.status, 400);
  rt_buf_free(&out.msg);
  /* a series without a name, with NaN, in a batch with a good one */
  static const char *const noname[] = {"job", "node", NULL};
  int64_t ts4[] = {T0 + 3000};
  double nan_v[] = {NAN};
  cr_assert_eq(push(noname, ts4, nan_v, 1, &msg), 400);
  cr_assert_eq(push(up, ts4, nan_v, 1, &msg), 200, "%s", msg.data);
  cr_assert_eq(stored("up"), 4);
  dist_stats st;
  dist_get_stats(D, &st);
  cr_assert_eq(st.rejected[DIST_R_DUPLICATE_TIMESTAMP], 1);
  cr_assert_eq(st.rejected[DIST_R_OUT_OF_ORDER], 1);
  cr_assert_eq(st.rejected[DIST_R_MISSING_METRIC_NAME], 1);
  rt_buf_free(&msg);
}
