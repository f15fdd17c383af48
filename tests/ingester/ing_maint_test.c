/* ing_maint_test.c - idle series leave the head (I11, ing_remove_idle): by data time, by wall clock, across a
 * restart; what leaves stays queryable from RocksDB (select, series, labels, metadata, delete,
 * dump); a new sample brings a series back; counts and limits follow the head. */
#include <criterion/criterion.h>
#include <string.h>

#include "common/limits.h"
#include "ingester/ing_int.h"
#include "tests/ingester/ing_util.h"

#define H (3600 * 1000LL) /* one hour, ms */

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

TestSuite(idle, .init = setup, .fini = teardown);

static ing_config cfg_idle(int64_t idle_ms) {
  ing_config c = tu_cfg(dir);
  c.series_idle_timeout_ms = idle_ms;
  return c;
}

/* A maintenance round and a head cleanup with the tests' idle timeout (the compactor's worker
 * does the latter in a process). */
static rt_err maintain_at(ing_ingester *ing, uint64_t now_ns) {
  rt_err err = ing_maintain(ing);
  uint64_t n;
  return err ? err : ing_remove_idle(ing, 1 * H, now_ns, &n);
}

static rt_err maintain(ing_ingester *ing) { return maintain_at(ing, rt_mono_ns()); }

static ing_ingester *open_ing(ing_config cfg) {
  ing_ingester *ing = NULL;
  cr_assert_eq(ing_create(&cfg, &ing), RT_OK);
  return ing;
}

static void push(ing_ingester *ing, const char *tenant, const char *labels, int64_t t, double v) {
  Ringtail__PushResponse r;
  cr_assert_eq(tu_push1(ing, tenant, labels, t, v, &r, A), RT_OK);
  cr_assert_eq(r.n_errors, 0, "%s", r.n_errors ? r.errors[0]->message : "");
}

static uint64_t head_series(ing_ingester *ing, const char *tenant) {
  Ringtail__UserStatsRequest rq = RINGTAIL__USER_STATS_REQUEST__INIT;
  rq.tenant = (char *)tenant;
  Ringtail__UserStatsResponse rs;
  cr_assert_eq(ing_user_stats(ing, &rq, &rs, A), RT_OK);
  return rs.num_series;
}

/* Samples of the one series matching m over all time, "t:v t:v ..." */
static const char *samples(ing_ingester *ing, const char *tenant, const char *m) {
  Ringtail__SelectResponse sr;
  cr_assert_eq(tu_select(ing, tenant, m, 0, 0, &sr, A), RT_OK);
  if (sr.n_series == 0) {
    return "";
  }
  cr_assert_eq(sr.n_series, 1, "%s: %zu series", m, sr.n_series);
  int64_t ts[256];
  double vs[256];
  size_t n = tu_samples(sr.series[0], ts, vs, 256);
  char *out = rt_arena_alloc(A, 4096);
  size_t k = 0;
  out[0] = 0;
  for (size_t i = 0; i < n && i < 256; i++) {
    k += (size_t)snprintf(out + k, 4096 - k, "%s%lld:%g", i ? " " : "", (long long)ts[i], vs[i]);
  }
  return out;
}

static const char *label_strs(ing_ingester *ing, const char *tenant, const char *name,
                              const char *m, int64_t mint, int64_t maxt) {
  Ringtail__LabelsRequest req;
  ringtail__labels_request__init(&req);
  req.tenant = (char *)tenant;
  req.name = (char *)name;
  tu_matchers(A, m, &req.matchers, &req.n_matchers);
  req.mint = mint;
  req.maxt = maxt;
  Ringtail__LabelsResponse resp;
  cr_assert_eq(name[0] ? ing_label_values(ing, &req, &resp, A) : ing_label_names(ing, &req, &resp, A),
               RT_OK);
  char *out = rt_arena_alloc(A, 1024);
  size_t k = 0;
  out[0] = 0;
  for (size_t i = 0; i < resp.n_values; i++) {
    k += (size_t)snprintf(out + k, 1024 - k, "%s%s", i ? "," : "", resp.values[i]);
  }
  return out;
}

static size_t series_count(ing_ingester *ing, const char *tenant, const char *m, int64_t mint,
                           int64_t maxt) {
  Ringtail__SelectRequest req;
  ringtail__select_request__init(&req);
  req.tenant = (char *)tenant;
  tu_matchers(A, m, &req.matchers, &req.n_matchers);
  req.mint = mint;
  req.maxt = maxt;
  req.labels_only = true;
  Ringtail__SelectResponse sr;
  cr_assert_eq(ing_select(ing, &req, &sr, A), RT_OK);
  return sr.n_series;
}

Test(idle, data_time_idle_series_leave_and_stay_queryable) {
  ing_ingester *ing = open_ing(cfg_idle(1 * H));
  push(ing, "t", "__name__=up,job=old", 1000, 1);
  push(ing, "t", "__name__=up,job=old", 2000, 2);
  push(ing, "t", "__name__=up,job=new", 2000, 5);
  Ringtail__PushRequest mdreq = RINGTAIL__PUSH_REQUEST__INIT;
  Prometheus__MetricMetadata md = PROMETHEUS__METRIC_METADATA__INIT, *mdp = &md;
  md.metric_family_name = "up";
  md.help = "is it up";
  md.type = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE;
  mdreq.tenant = "t";
  mdreq.metadata = &mdp;
  mdreq.n_metadata = 1;
  Ringtail__PushResponse pr;
  cr_assert_eq(ing_push(ing, &mdreq, &pr, A), RT_OK);
  cr_assert_eq(maintain(ing), RT_OK);
  cr_assert_eq(head_series(ing, "t"), 2, "nothing is idle yet");

  /* job=new goes on for an hour and a bit of data time; job=old is silent */
  push(ing, "t", "__name__=up,job=new", 2000 + H, 6);
  cr_assert_eq(maintain(ing), RT_OK);
  cr_assert_eq(head_series(ing, "t"), 2, "job=old has been idle for less than an hour");
  push(ing, "t", "__name__=up,job=new", 2001 + H, 7);
  cr_assert_eq(maintain(ing), RT_OK);
  cr_assert_eq(head_series(ing, "t"), 1, "job=old idle for more than an hour left the head");
  ing_stats st;
  ing_get_stats(ing, &st);
  cr_assert_eq(st.active_series, 1);
  cr_assert_eq(st.series_removed, 1);

  /* still there for every read API, from RocksDB */
  cr_assert_str_eq(samples(ing, "t", "job=old"), "1000:1 2000:2");
  cr_assert_str_eq(samples(ing, "t", "job=new"), "2000:5 3602000:6 3602001:7");
  cr_assert_eq(series_count(ing, "t", "__name__=up", 0, 0), 2);
  cr_assert_eq(series_count(ing, "t", "__name__=up", 0, 1500), 1, "time range from the record");
  cr_assert_eq(series_count(ing, "t", "job!=new", 0, 0), 1, "a matcher that matches \"\"");
  cr_assert_eq(series_count(ing, "t", "job=~o.*", 0, 0), 1);
  cr_assert_str_eq(label_strs(ing, "t", "job", "", 0, 0), "new,old");
  cr_assert_str_eq(label_strs(ing, "t", "job", "__name__=up", 0, 0), "new,old");
  cr_assert_str_eq(label_strs(ing, "t", "job", "", 0, 1500), "old");
  cr_assert_str_eq(label_strs(ing, "t", "job", "", 1500, 2500), "new,old");
  cr_assert_str_eq(label_strs(ing, "t", "job", "", H, 2 * H), "new");
  cr_assert_str_eq(label_strs(ing, "t", "", "job=old", 0, 0), "__name__,job");
  Ringtail__MetadataRequest mq = RINGTAIL__METADATA_REQUEST__INIT;
  mq.tenant = "t";
  Ringtail__MetadataResponse mr;
  cr_assert_eq(ing_metadata(ing, &mq, &mr, A), RT_OK);
  cr_assert_eq(mr.n_metadata, 1);
  cr_assert_str_eq(mr.metadata[0]->help, "is it up");

  /* a new sample brings it back: one series for readers, counted in the head again */
  push(ing, "t", "__name__=up,job=old", 3000 + H, 3);
  cr_assert_eq(head_series(ing, "t"), 2);
  cr_assert_str_eq(samples(ing, "t", "job=old"), "1000:1 2000:2 3603000:3");
  cr_assert_eq(series_count(ing, "t", "__name__=up", 0, 0), 2);
  ing_destroy(ing);
}

Test(idle, head_memory_is_freed) {
  ing_ingester *ing = open_ing(cfg_idle(1 * H));
  for (int i = 0; i < 50; i++) {
    char ls[64];
    snprintf(ls, sizeof ls, "__name__=m,pod=p%d,uniq%d=x", i, i);
    push(ing, "t", ls, 1000, i);
  }
  push(ing, "t", "__name__=live", 1000, 1);
  ing_tenant *t = ing_tenant_get(ing, "t", false, &(rt_err){0});
  cr_assert_not_null(t);
  size_t strings = t->strings.n, names = t->names.n;
  cr_assert_eq(names, 52, "__name__, pod and 50 uniq names");
  push(ing, "t", "__name__=live", 1000 + 2 * H, 2);
  cr_assert_eq(maintain(ing), RT_OK);
  cr_assert_eq(t->nseries, 1);
  cr_assert_eq(t->names.n, 1, "only __name__ is left in the index");
  cr_assert_eq(t->strings.n, 2, "\"__name__\" and \"live\" (of %zu strings)", strings);
  cr_assert_str_eq(label_strs(ing, "t", "pod", "", 0, 0), label_strs(ing, "t", "pod", "__name__=m", 0, 0));
  cr_assert_eq(series_count(ing, "t", "__name__=m", 0, 0), 50);
  cr_assert_eq(series_count(ing, "t", "uniq7=x", 0, 0), 1);
  ing_destroy(ing);
}

Test(idle, wall_clock_bound_for_a_tenant_that_stopped) {
  ing_ingester *ing = open_ing(cfg_idle(1 * H));
  push(ing, "quiet", "__name__=a", 1000, 1);
  push(ing, "quiet", "__name__=b", 1000, 2);
  push(ing, "busy", "__name__=c", 1000, 3);
  uint64_t now = rt_mono_ns();
  cr_assert_eq(maintain_at(ing, now), RT_OK);
  cr_assert_eq(head_series(ing, "quiet"), 2, "data time did not move");
  /* an hour of wall clock later "busy" writes again, "quiet" does not */
  ing_tenant *busy = ing_tenant_get(ing, "busy", false, &(rt_err){0});
  uint64_t later = now + (uint64_t)H * 1000000u + 1;
  busy->last_write_ns = later; /* as a push at that time would set it */
  cr_assert_eq(maintain_at(ing, later), RT_OK);
  cr_assert_eq(head_series(ing, "quiet"), 0, "every series of the quiet tenant left");
  cr_assert_eq(head_series(ing, "busy"), 1);
  cr_assert_str_eq(samples(ing, "quiet", "__name__=a"), "1000:1", "its open chunk was written first");
  ing_destroy(ing);
  /* by data time they are not idle: a restart loads them again (and an hour of wall clock
   * without a push lets them go again) */
  ing = open_ing(cfg_idle(1 * H));
  cr_assert_str_eq(samples(ing, "quiet", "__name__=b"), "1000:2");
  ing_destroy(ing);
}

Test(idle, restart_keeps_only_the_active_series) {
  ing_ingester *ing = open_ing(cfg_idle(1 * H));
  for (int i = 0; i < 20; i++) {
    char ls[64];
    snprintf(ls, sizeof ls, "__name__=gone,i=%d", i);
    push(ing, "t", ls, 1000, i);
  }
  push(ing, "t", "__name__=stays", 1000 + 3 * H, 1);
  ing_destroy(ing); /* no maintenance ran: the idle series' samples are still in the WAL */
  ing = open_ing(cfg_idle(1 * H));
  cr_assert_eq(maintain(ing), RT_OK);
  cr_assert_eq(head_series(ing, "t"), 1);
  ing_destroy(ing);
  ing = open_ing(cfg_idle(1 * H));
  cr_assert_eq(head_series(ing, "t"), 1, "only the series active within the idle timeout load");
  ing_stats st;
  ing_get_stats(ing, &st);
  cr_assert_eq(st.active_series, 1);
  cr_assert_eq(series_count(ing, "t", "__name__=gone", 0, 0), 20);
  cr_assert_str_eq(samples(ing, "t", "i=7"), "1000:7");
  /* a returning series gets a new ref; the next restart keeps the new one, readers see one */
  push(ing, "t", "__name__=gone,i=7", 2000 + 3 * H, 8);
  ing_destroy(ing);
  ing = open_ing(cfg_idle(1 * H));
  cr_assert_eq(head_series(ing, "t"), 2);
  cr_assert_str_eq(samples(ing, "t", "i=7"), "1000:7 10802000:8");
  ing_destroy(ing);
  /* with the timeout off every series loads, and both records of i=7 are one series */
  ing = open_ing(cfg_idle(0));
  cr_assert_eq(head_series(ing, "t"), 21);
  cr_assert_str_eq(samples(ing, "t", "i=7"), "1000:7 10802000:8");
  cr_assert_eq(series_count(ing, "t", "__name__=gone", 0, 0), 20);
  ing_destroy(ing);
  /* dump: one series, both records */
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  cr_assert_eq(ing_dump(dir, "t", f), RT_OK);
  fclose(f);
  cr_assert_not_null(strstr(buf, "t {__name__=\"gone\", i=\"7\"} 1000 7\nt {__name__=\"gone\", i=\"7\"} 10802000 8\n"),
                     "%s", buf);
  free(buf);
}

Test(idle, the_out_of_order_window_holds_series_longer) {
  ing_config c = cfg_idle(1 * H);
  c.ooo_window_ms = 3 * H;
  ing_ingester *ing = open_ing(c);
  push(ing, "t", "__name__=a", 1000, 1);
  push(ing, "t", "__name__=b", 1000 + 2 * H, 1);
  cr_assert_eq(maintain(ing), RT_OK);
  cr_assert_eq(head_series(ing, "t"), 2, "a can still take samples (window 3h)");
  /* an out-of-order sample for a is checked against its closed chunks: a duplicate */
  Ringtail__PushResponse r;
  cr_assert_eq(tu_push1(ing, "t", "__name__=a", 1000, 9, &r, A), RT_OK);
  cr_assert_eq(r.n_errors, 1);
  push(ing, "t", "__name__=b", 2000 + 3 * H, 1);
  cr_assert_eq(maintain(ing), RT_OK);
  cr_assert_eq(head_series(ing, "t"), 1);
  ing_destroy(ing);
}

Test(idle, delete_series_reaches_series_on_disk) {
  ing_ingester *ing = open_ing(cfg_idle(1 * H));
  push(ing, "t", "__name__=x,k=1", 1000, 1);
  push(ing, "t", "__name__=x,k=1", 2000, 2);
  push(ing, "t", "__name__=y", 1000 + 2 * H, 1);
  cr_assert_eq(maintain(ing), RT_OK);
  cr_assert_eq(head_series(ing, "t"), 1);
  Ringtail__DeleteSeriesRequest dq = RINGTAIL__DELETE_SERIES_REQUEST__INIT;
  dq.tenant = "t";
  tu_matchers(A, "__name__=x", &dq.matchers, &dq.n_matchers);
  dq.mint = 0;
  dq.maxt = 1500;
  Ringtail__DeleteSeriesResponse dr;
  cr_assert_eq(ing_delete_series(ing, &dq, &dr, A), RT_OK);
  cr_assert_eq(dr.series, 1);
  cr_assert_str_eq(samples(ing, "t", "__name__=x"), "2000:2");
  ing_destroy(ing);
}

Test(idle, series_limit_counts_the_head) {
  rt_limits l;
  memset(&l, 0, sizeof l);
  l.max_global_series_per_user = 4;
  char err[256];
  cr_assert_eq(rt_limits_init(&l, NULL, err, sizeof err), RT_OK, "%s", err);
  ing_ingester *ing = open_ing(cfg_idle(1 * H));
  /* generations of 2 series, one hour and a bit apart: the head never holds more than 4 */
  for (int g = 0; g < 6; g++) {
    for (int k = 0; k < 2; k++) {
      char ls[64];
      snprintf(ls, sizeof ls, "__name__=pod,gen=%d,k=%d", g, k);
      push(ing, "t", ls, 1000 + g * (H + 1000), g);
    }
    cr_assert_eq(maintain(ing), RT_OK);
    cr_assert_leq(head_series(ing, "t"), 4);
  }
  cr_assert_eq(series_count(ing, "t", "__name__=pod", 0, 0), 12);
  Ringtail__CardinalityRequest cq = RINGTAIL__CARDINALITY_REQUEST__INIT;
  cq.tenant = "t";
  Ringtail__CardinalityResponse cr;
  cr_assert_eq(ing_cardinality(ing, &cq, &cr, A), RT_OK);
  cr_assert_leq(cr.num_series, 4);
  ing_destroy(ing);
  rt_limits_shutdown();
}

Test(idle, allocation_failures_in_a_round) {
  ing_ingester *ing = open_ing(cfg_idle(1 * H));
  for (long n = 0; n < 40; n++) {
    char ls[64];
    snprintf(ls, sizeof ls, "__name__=o,n=%ld", n);
    push(ing, "t", ls, 1000 + n * (H / 4), (double)n);
    rt_alloc_fail_after(n % 7);
    rt_err e = maintain(ing);
    rt_alloc_fail_after(-1);
    cr_assert(e == RT_OK || e == RT_ENOMEM, "%s", rt_strerror(e));
    if (e == RT_ENOMEM) {
      break; /* the head may be out of step with the chunks: the ingester refuses pushes */
    }
  }
  ing_destroy(ing);
  ing = open_ing(cfg_idle(1 * H));
  cr_assert_eq(maintain(ing), RT_OK);
  cr_assert_leq(head_series(ing, "t"), 5);
  cr_assert_str_eq(samples(ing, "t", "n=0"), "1000:0", "nothing acknowledged is lost");
  ing_destroy(ing);
}
