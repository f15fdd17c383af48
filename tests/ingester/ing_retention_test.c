/* ing_retention_test.c - retention's mechanism (ing_apply_retention, I12): series older than the
 * cutoff are deleted whole (head or disk only), old chunks of the others go, records and
 * tombstones follow, other tenants and later data stay, the disk space comes back, and all of
 * it holds across a restart. */
#include <criterion/criterion.h>
#include <string.h>

#include "tests/ingester/ing_util.h"

#define MIN_MS (60 * 1000LL)
#define H (3600 * 1000LL)
#define D (24 * H)

static char *dir;
static rt_arena *A;

static void setup(void) {
  dir = tu_tmpdir();
  A = rt_arena_create(0);
}

static void teardown(void) {
  rt_arena_destroy(A);
  tu_rm_rf(dir);
  free(dir);
}

TestSuite(retention, .init = setup, .fini = teardown);

static ing_ingester *open_ing(void) {
  ing_config c = tu_cfg(dir);
  ing_ingester *ing = NULL;
  cr_assert_eq(ing_create(&c, &ing), RT_OK);
  return ing;
}

/* Pushes n samples, one a minute from t0, values that do not compress much. */
static void push_run(ing_ingester *ing, const char *tenant, const char *labels, int64_t t0, size_t n) {
  tu_push p;
  tu_push_init(&p, A, tenant);
  int64_t *ts = rt_arena_alloc(A, n * sizeof *ts);
  double *vs = rt_arena_alloc(A, n * sizeof *vs);
  uint64_t x = 88172645463325252ull ^ (uint64_t)t0;
  for (const char *c = labels; *c; c++) {
    x = (x ^ (uint8_t)*c) * 0x100000001b3ull; /* each series its own values */
  }
  for (size_t i = 0; i < n; i++) {
    ts[i] = t0 + (int64_t)i * MIN_MS;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    vs[i] = (double)(x >> 11) / 9007199254740992.0;
  }
  tu_series(&p, labels, n, ts, vs);
  Ringtail__PushResponse r;
  cr_assert_eq(ing_push(ing, &p.req, &r, A), RT_OK);
  cr_assert_eq(r.n_errors, 0, "%s", r.n_errors ? r.errors[0]->message : "");
}

/* The cutoff of the tests: `cut` for tenant "t", nothing for the others. */
static int64_t cut_t(void *ctx, const char *tenant, int64_t newest) {
  (void)newest;
  return strcmp(tenant, "t") == 0 ? *(const int64_t *)ctx : INT64_MIN;
}

static ing_retention_stats retain(ing_ingester *ing, int64_t cut) {
  ing_retention_stats st;
  cr_assert_eq(ing_apply_retention(ing, cut_t, &cut, &st), RT_OK);
  return st;
}

/* Samples of the one series matching m (all time); *first gets the oldest. 0 when none. */
static size_t count(ing_ingester *ing, const char *tenant, const char *m, int64_t *first) {
  Ringtail__SelectResponse sr;
  cr_assert_eq(tu_select(ing, tenant, m, 0, 0, &sr, A), RT_OK);
  if (sr.n_series == 0) {
    return 0;
  }
  cr_assert_eq(sr.n_series, 1, "%s: %zu series", m, sr.n_series);
  size_t cap = 8192;
  int64_t *ts = rt_arena_alloc(A, cap * sizeof *ts);
  double *vs = rt_arena_alloc(A, cap * sizeof *vs);
  size_t n = tu_samples(sr.series[0], ts, vs, cap);
  cr_assert_leq(n, cap);
  if (first && n) {
    *first = ts[0];
  }
  return n;
}

static size_t nseries(ing_ingester *ing, const char *tenant, const char *m) {
  Ringtail__SelectResponse sr;
  cr_assert_eq(tu_select(ing, tenant, m, 0, 0, &sr, A), RT_OK);
  return sr.n_series;
}

static size_t label_values(ing_ingester *ing, const char *tenant, const char *name) {
  Ringtail__LabelsRequest rq = RINGTAIL__LABELS_REQUEST__INIT;
  rq.tenant = (char *)tenant;
  rq.name = (char *)name;
  Ringtail__LabelsResponse rs;
  cr_assert_eq(ing_label_values(ing, &rq, &rs, A), RT_OK);
  return rs.n_values;
}

static size_t dump_lines(const char *tenant, const char *needle) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  cr_assert_eq(ing_dump(dir, tenant, f), RT_OK);
  fclose(f);
  size_t n = 0;
  for (char *p = buf; p && *p;) {
    char *e = strchr(p, '\n');
    if (!e) {
      break;
    }
    *e = 0;
    if (!needle || strstr(p, needle)) {
      n++;
    }
    p = e + 1;
  }
  free(buf);
  return n;
}

static void delete_range(ing_ingester *ing, const char *m, int64_t mint, int64_t maxt) {
  Ringtail__DeleteSeriesRequest rq = RINGTAIL__DELETE_SERIES_REQUEST__INIT;
  rq.tenant = "t";
  tu_matchers(A, m, &rq.matchers, &rq.n_matchers);
  rq.mint = mint;
  rq.maxt = maxt;
  Ringtail__DeleteSeriesResponse rs;
  cr_assert_eq(ing_delete_series(ing, &rq, &rs, A), RT_OK);
  cr_assert_eq(rs.series, 1);
}

/* Tenant t: ten series of three days ago (5h each), "mixed" with a sample a minute for three
 * days, "new" at the end; tenant u: an old series its cutoff keeps. */
static ing_ingester *populate(void) {
  ing_ingester *ing = open_ing();
  char l[64];
  for (int i = 0; i < 10; i++) {
    snprintf(l, sizeof l, "__name__=old,i=%d", i);
    push_run(ing, "t", l, 1000, 300);
  }
  push_run(ing, "t", "__name__=mixed", 1000, 3 * 1440);
  push_run(ing, "t", "__name__=new", 1000 + 3 * D, 1);
  push_run(ing, "u", "__name__=old", 1000, 300);
  return ing;
}

Test(retention, deletes_what_is_older_than_the_cutoff) {
  ing_ingester *ing = populate();
  /* chunks of 120 samples, one a minute: chunk k of "mixed" ends at 1000 + (120k + 119) min;
   * those ending before 2d are k = 0..23 */
  ing_retention_stats st = retain(ing, 2 * D);
  cr_assert_eq(st.series, 10, "the old series are deleted whole");
  cr_assert_eq(st.chunks, 24, "24 chunks of mixed end before the cutoff");
  int64_t first = 0;
  cr_assert_eq(count(ing, "t", "__name__=mixed", &first), 1440, "the last day of mixed stays");
  cr_assert_eq(first, 1000 + 2 * D);
  cr_assert_eq(count(ing, "t", "__name__=new", NULL), 1);
  cr_assert_eq(nseries(ing, "t", "__name__=old"), 0);
  cr_assert_eq(label_values(ing, "t", "i"), 0, "no label value of a deleted series");
  cr_assert_eq(label_values(ing, "t", "__name__"), 2);
  cr_assert_eq(count(ing, "u", "__name__=old", NULL), 300, "another tenant's cutoff applies to it");
  ing_stats s;
  ing_get_stats(ing, &s);
  cr_assert_eq(s.active_series, 3, "mixed, new and u's old stay in the head");
  cr_assert_eq(s.retention_series, 10);
  cr_assert_eq(s.retention_chunks, 24);
  /* the same cutoff again does nothing; a later one continues */
  st = retain(ing, 2 * D);
  cr_assert_eq(st.series + st.chunks + st.tombstones, 0);
  st = retain(ing, 2 * D + 4 * H);
  cr_assert_eq(st.chunks, 2);
  cr_assert_eq(count(ing, "t", "__name__=mixed", NULL), 1440 - 240);
  ing_destroy(ing);
  /* on disk: nothing of the deleted series, the rest in full */
  cr_assert_eq(dump_lines("t", "old"), 0);
  cr_assert_eq(dump_lines("t", "mixed"), 1440 - 240);
  cr_assert_eq(dump_lines("u", NULL), 300);
  ing = open_ing();
  cr_assert_eq(nseries(ing, "t", "__name__=old"), 0, "after a restart");
  cr_assert_eq(count(ing, "t", "__name__=mixed", &first), 1440 - 240);
  cr_assert_eq(first, 1000 + 2 * D + 4 * H);
  st = retain(ing, 2 * D + 4 * H);
  cr_assert_eq(st.series + st.chunks + st.tombstones, 0, "the records say what is left");
  push_run(ing, "t", "__name__=mixed", 1000 + 3 * D, 1);
  cr_assert_eq(count(ing, "t", "__name__=mixed", NULL), 1440 - 240 + 1, "it still takes samples");
  ing_destroy(ing);
}

Test(retention, series_only_on_disk_and_tombstones) {
  ing_ingester *ing = open_ing();
  push_run(ing, "t", "__name__=idle", 1000, 2 * 1440 + 720); /* up to 2.5 days */
  push_run(ing, "t", "__name__=gone", 1000, 200);
  push_run(ing, "t", "__name__=new", 1000 + 3 * D, 1);
  uint64_t n;
  cr_assert_eq(ing_remove_idle(ing, 1 * H, rt_mono_ns(), &n), RT_OK);
  cr_assert_eq(n, 2, "idle and gone left the head");
  delete_range(ing, "__name__=idle", 1000, 1000 + 10 * MIN_MS);     /* before the cutoff */
  delete_range(ing, "__name__=idle", 1000 + 2 * D + H, 1000 + 2 * D + H + 9 * MIN_MS); /* after */
  delete_range(ing, "__name__=gone", 1000, 1000 + 5 * MIN_MS);
  cr_assert_eq(count(ing, "t", "__name__=idle", NULL), 3600 - 21);
  ing_retention_stats st = retain(ing, 2 * D);
  cr_assert_eq(st.series, 1, "gone, from disk");
  cr_assert_eq(st.chunks, 24);
  cr_assert_eq(st.tombstones, 2, "the tombstones hiding nothing left: one of idle, gone's");
  int64_t first = 0;
  cr_assert_eq(count(ing, "t", "__name__=idle", &first), 720 - 10, "the later tombstone still hides");
  cr_assert_eq(first, 1000 + 2 * D);
  cr_assert_eq(nseries(ing, "t", "__name__=gone"), 0);
  ing_destroy(ing);
  ing = open_ing();
  cr_assert_eq(count(ing, "t", "__name__=idle", NULL), 720 - 10, "after a restart");
  cr_assert_eq(nseries(ing, "t", "__name__=gone"), 0);
  ing_destroy(ing);
}

Test(retention, disk_space_comes_back) {
  ing_ingester *ing = open_ing();
  char l[64];
  for (int i = 0; i < 200; i++) {
    snprintf(l, sizeof l, "__name__=old,i=%d", i);
    push_run(ing, "t", l, 1000, 1440);
  }
  push_run(ing, "t", "__name__=new", 1000 + 3 * D, 1);
  cr_assert_eq(ing_flush(ing), RT_OK);
  ing_stats s;
  ing_get_stats(ing, &s);
  uint64_t before = s.live_bytes;
  cr_assert_gt(before, 200 * 1440 * 4, "%llu bytes", (unsigned long long)before);
  ing_retention_stats st = retain(ing, 2 * D);
  cr_assert_eq(st.series, 200);
  ing_get_stats(ing, &s);
  cr_assert_lt(s.live_bytes * 10, before, "%llu bytes before, %llu after",
               (unsigned long long)before, (unsigned long long)s.live_bytes);
  ing_destroy(ing);
}

Test(retention, user_stats_carry_the_newest_sample) {
  ing_ingester *ing = open_ing();
  Ringtail__UserStatsRequest rq = RINGTAIL__USER_STATS_REQUEST__INIT;
  rq.tenant = "t";
  Ringtail__UserStatsResponse rs;
  cr_assert_eq(ing_user_stats(ing, &rq, &rs, A), RT_OK);
  cr_assert_not(rs.has_samples, "an unknown tenant has none");
  push_run(ing, "t", "__name__=a", 5000, 3);
  cr_assert_eq(ing_user_stats(ing, &rq, &rs, A), RT_OK);
  cr_assert(rs.has_samples);
  cr_assert_eq(rs.newest_sample_ms, 5000 + 2 * MIN_MS);
  ing_destroy(ing);
}

/* The cutoff 2d for tenant `ctx`, nothing for the others. */
static int64_t cut_named(void *ctx, const char *tenant, int64_t newest) {
  (void)newest;
  return strcmp(tenant, (const char *)ctx) == 0 ? 2 * D : INT64_MIN;
}

Test(retention, allocation_failures) {
  /* any allocation of a round may fail: RT_ENOMEM (or success), never a crash nor a broken
   * ingester, and the next round completes the work */
  ing_ingester *ing = open_ing();
  int failed = 0, passed = 0;
  for (long n = 0; n < 40; n++) {
    char tenant[16];
    snprintf(tenant, sizeof tenant, "f%ld", n);
    push_run(ing, tenant, "__name__=old", 1000, 300);
    push_run(ing, tenant, "__name__=mixed", 1000, 3 * 1440);
    push_run(ing, tenant, "__name__=new", 1000 + 3 * D, 1);
    cr_assert_eq(ing_flush(ing), RT_OK); /* no open chunk: leaving the head allocates nothing */
    rt_alloc_fail_after(n);
    rt_err err = ing_apply_retention(ing, cut_named, tenant, NULL);
    rt_alloc_fail_after(-1);
    cr_assert(err == RT_OK || err == RT_ENOMEM, "round %ld: %s", n, rt_strerror(err));
    failed += err == RT_ENOMEM;
    passed += err == RT_OK;
    cr_assert_eq(ing_apply_retention(ing, cut_named, tenant, NULL), RT_OK, "round %ld again", n);
    cr_assert_eq(nseries(ing, tenant, "__name__=old"), 0, "%ld", n);
    int64_t first = 0;
    cr_assert_eq(count(ing, tenant, "__name__=mixed", &first), 1440, "%ld", n);
    cr_assert_eq(first, 1000 + 2 * D);
  }
  cr_assert_gt(failed, 5, "the failures reach far into a round (%d)", failed);
  cr_assert_gt(passed, 0, "and a round needs finitely many allocations");
  ing_destroy(ing);
}
