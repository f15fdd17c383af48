/* series_limits_test.c - the local share of the global series limits (from the ring), their
 * enforcement in the head, the per-tenant series gauge, UserStats and Cardinality. */
#include <criterion/criterion.h>
#include <string.h>

#include "common/limits.h"
#include "common/metrics.h"
#include "ring/ring.h"
#include "tests/ingester/ing_util.h"

/* ------------------------------------------------------------------ local limits */

Test(series_limits, local_limit_without_a_ring_is_the_global_one) {
  ing_ring_view none = {0};
  cr_assert_eq(ing_local_limit(1000, &none), 1000);
  cr_assert_eq(ing_local_limit(1000, NULL), 1000);
  cr_assert_eq(ing_local_limit(0, &none), 0, "0 stays unlimited");
  ing_ring_view v = {.rf = 3, .zones = 3, .healthy_in_zone = 2, .healthy = 6};
  cr_assert_eq(ing_local_limit(0, &v), 0, "0 stays unlimited with a ring too");
  cr_assert_eq(ing_local_limit(-5, &v), 0);
}

Test(series_limits, local_limit_with_zones_divides_by_the_zone) {
  /* 3 zones, RF 3: every zone holds every series once */
  ing_ring_view v = {.rf = 3, .zones = 3, .healthy_in_zone = 2, .healthy = 6};
  cr_assert_eq(ing_local_limit(1000, &v), 500);
  v.healthy_in_zone = 1;
  v.healthy = 3;
  cr_assert_eq(ing_local_limit(1000, &v), 1000, "one ingester per zone holds all the series");
  v.healthy_in_zone = 3;
  cr_assert_eq(ing_local_limit(1000, &v), 333);
  v.healthy_in_zone = 0; /* this ingester still JOINING: never divide by zero */
  cr_assert_eq(ing_local_limit(1000, &v), 1000);
  /* one zone (every ingester with zone ""): one copy spread over its ingesters */
  ing_ring_view one = {.rf = 3, .zones = 1, .healthy_in_zone = 4, .healthy = 4};
  cr_assert_eq(ing_local_limit(1000, &one), 250);
  cr_assert_eq(ing_local_limit(3, &one), 1, "a set limit never becomes 0 (unlimited)");
}

Test(series_limits, local_limit_with_more_zones_than_copies) {
  /* 6 zones of one ingester, RF 3: each ingester holds about rf/healthy of the series */
  ing_ring_view v = {.rf = 3, .zones = 6, .healthy_in_zone = 1, .healthy = 6};
  cr_assert_eq(ing_local_limit(1000, &v), 500);
  v.healthy = 5;
  cr_assert_eq(ing_local_limit(1000, &v), 600);
  cr_assert_gt(ing_local_limit(INT64_MAX, &v), INT64_MAX / 2, "no overflow");
  v.healthy = 1;
  cr_assert_eq(ing_local_limit(INT64_MAX, &v), INT64_MAX, "clamped");
}

#define NOW 1700000000000LL

static void add(ring_desc *d, uint64_t *rng, const char *id, const char *zone, ring_state st,
                int64_t age_ms) {
  uint32_t tok[16];
  uint32_t *taken = NULL;
  size_t ntaken = 0;
  cr_assert_eq(ring_desc_taken_tokens(d, NULL, &taken, &ntaken), RT_OK);
  cr_assert_eq(ring_tokens_generate(rng, taken, ntaken, tok, 16), RT_OK);
  rt_free(taken, 0);
  ring_instance in = {.id = id, .zone = zone, .http_addr = "", .rpc_addr = "tcp://x:1",
                      .gossip_addr = "", .state = st, .heartbeat_ms = NOW - age_ms,
                      .registered_ms = NOW - 100000, .tokens = tok, .ntokens = 16};
  cr_assert_eq(ring_desc_set(d, &in), RT_OK);
}

Test(series_limits, ring_view_counts_healthy_active_ingesters_of_the_zone) {
  ring_desc *d;
  uint64_t rng = 7;
  cr_assert_eq(ring_desc_create(&d), RT_OK);
  add(d, &rng, "a1", "a", RING_ACTIVE, 1000);
  add(d, &rng, "a2", "a", RING_ACTIVE, 1000);
  add(d, &rng, "a3", "a", RING_ACTIVE, 120000); /* unhealthy */
  add(d, &rng, "a4", "a", RING_JOINING, 1000);  /* not taking writes */
  add(d, &rng, "b1", "b", RING_ACTIVE, 1000);
  add(d, &rng, "c1", "c", RING_ACTIVE, 1000);
  add(d, &rng, "c2", "c", RING_LEAVING, 1000);
  ring_snapshot *s;
  ring_snapshot_opts o = {.replication_factor = 3, .heartbeat_timeout_ms = 60000, .now_ms = NOW};
  cr_assert_eq(ring_snapshot_build(d, &o, &s), RT_OK);
  ing_ring_view v;
  ing_ring_view_of(s, "a1", &v);
  cr_assert_eq(v.rf, 3);
  cr_assert_eq(v.zones, 3);
  cr_assert_eq(v.healthy_in_zone, 2);
  cr_assert_eq(v.healthy, 4);
  cr_assert_eq(ing_local_limit(900, &v), 450);
  ing_ring_view_of(s, "b1", &v);
  cr_assert_eq(v.healthy_in_zone, 1);
  cr_assert_eq(ing_local_limit(900, &v), 900);
  ing_ring_view_of(s, "nobody", &v);
  cr_assert_eq(v.rf, 0, "an instance not in the ring: no ring view");
  cr_assert_eq(ing_local_limit(900, &v), 900);
  ring_snapshot_release(s);
  ring_desc_destroy(d);
}

/* ------------------------------------------------------------------ head */

typedef struct fx {
  char *dir;
  ing_ingester *ing;
  rt_arena *a;
  rt_metrics *m;
} fx;

static void fx_open(fx *f, int64_t per_user, int64_t per_metric) {
  rt_limits l;
  memset(&l, 0, sizeof l);
  l.max_global_series_per_user = per_user;
  l.max_global_series_per_metric = per_metric;
  char err[256];
  cr_assert_eq(rt_limits_init(&l, NULL, err, sizeof err), RT_OK, "%s", err);
  f->dir = tu_tmpdir();
  cr_assert_eq(rt_metrics_create(&f->m), RT_OK);
  ing_config c = tu_cfg(f->dir);
  c.metrics = f->m;
  cr_assert_eq(ing_create(&c, &f->ing), RT_OK);
  f->a = rt_arena_create(1 << 16);
}

static void fx_close(fx *f) {
  ing_destroy(f->ing);
  rt_arena_destroy(f->a);
  tu_rm_rf(f->dir);
  free(f->dir);
  rt_metrics_destroy(f->m);
  rt_limits_shutdown();
}

/* Pushes one sample to each of n series "__name__=<metric>,i=<prefix><k>". */
static void push_n(fx *f, const char *tenant, const char *metric, const char *prefix, int n,
                   Ringtail__PushResponse *resp) {
  tu_push p;
  tu_push_init(&p, f->a, tenant);
  int64_t t = 1000;
  double v = 1;
  for (int k = 0; k < n; k++) {
    char ls[128];
    snprintf(ls, sizeof ls, "__name__=%s,i=%s%d", metric, prefix, k);
    tu_series(&p, ls, 1, &t, &v);
  }
  cr_assert_eq(ing_push(f->ing, &p.req, resp, f->a), RT_OK);
}

static uint64_t num_series(fx *f, const char *tenant) {
  Ringtail__UserStatsRequest rq = RINGTAIL__USER_STATS_REQUEST__INIT;
  rq.tenant = (char *)tenant;
  Ringtail__UserStatsResponse rs;
  cr_assert_eq(ing_user_stats(f->ing, &rq, &rs, f->a), RT_OK);
  return rs.num_series;
}

static bool has(const char *hay, const char *needle) { return hay && strstr(hay, needle); }

Test(series_limits, per_user_limit_refuses_new_series_only) {
  fx f;
  fx_open(&f, 5, 0);
  Ringtail__PushResponse r;
  push_n(&f, "t1", "m", "a", 3, &r);
  cr_assert_eq(r.n_errors, 0);
  /* 3 old + 4 new: two new series fit, two do not; the old ones' samples are stored */
  tu_push p;
  tu_push_init(&p, f.a, "t1");
  int64_t t = 2000;
  double v = 2;
  const char *ls[] = {"__name__=m,i=a0", "__name__=m,i=b0", "__name__=m,i=b1", "__name__=m,i=b2",
                      "__name__=m,i=a1", "__name__=m,i=b3", "__name__=m,i=a2"};
  for (size_t k = 0; k < RT_ARRAY_LEN(ls); k++) {
    tu_series(&p, ls[k], 1, &t, &v);
  }
  cr_assert_eq(ing_push(f.ing, &p.req, &r, f.a), RT_OK);
  cr_assert_eq(r.samples_accepted, 5);
  cr_assert_eq(r.n_errors, 2);
  cr_assert_eq(r.errors[0]->index, 3);
  cr_assert_eq(r.errors[1]->index, 5);
  cr_assert_eq(r.errors[0]->code, RINGTAIL__SAMPLE_ERROR__SAMPLE_LIMIT);
  const char *msg = r.errors[0]->message;
  cr_assert(has(msg, "max_global_series_per_user=5"), "%s", msg);
  cr_assert(has(msg, "tenant \"t1\""), "%s", msg);
  cr_assert(has(msg, "i=\"b2\""), "%s", msg);
  cr_assert(has(msg, "docs/errors.md#err-ringtail-max-series-per-user"), "%s", msg);
  cr_assert_eq(num_series(&f, "t1"), 5);
  ing_stats st;
  ing_get_stats(f.ing, &st);
  cr_assert_eq(st.samples_rejected[RINGTAIL__SAMPLE_ERROR__SAMPLE_LIMIT], 2);
  /* another tenant has its own count */
  push_n(&f, "t2", "m", "a", 5, &r);
  cr_assert_eq(r.n_errors, 0);
  cr_assert_eq(num_series(&f, "t2"), 5);
  cr_assert_eq(num_series(&f, "nobody"), 0);
  /* the gauge per tenant */
  rt_buf out = RT_BUF_INIT;
  rt_metrics_expose(f.m, &out);
  cr_assert(has(out.data, "ringtail_ingester_active_series{user=\"t1\"} 5\n"), "%s", out.data);
  cr_assert(has(out.data, "ringtail_ingester_active_series{user=\"t2\"} 5\n"), "%s", out.data);
  rt_buf_free(&out);
  fx_close(&f);
}

Test(series_limits, counts_survive_a_restart) {
  fx f;
  fx_open(&f, 4, 0);
  Ringtail__PushResponse r;
  push_n(&f, "t1", "m", "a", 4, &r);
  cr_assert_eq(r.n_errors, 0);
  ing_destroy(f.ing);
  ing_config c = tu_cfg(f.dir);
  c.metrics = f.m;
  cr_assert_eq(ing_create(&c, &f.ing), RT_OK);
  cr_assert_eq(num_series(&f, "t1"), 4);
  push_n(&f, "t1", "m", "z", 1, &r);
  cr_assert_eq(r.n_errors, 1, "the limit holds after the head was rebuilt");
  rt_buf out = RT_BUF_INIT;
  rt_metrics_expose(f.m, &out);
  cr_assert(has(out.data, "ringtail_ingester_active_series{user=\"t1\"} 4\n"), "%s", out.data);
  rt_buf_free(&out);
  fx_close(&f);
}

Test(series_limits, per_metric_limit) {
  fx f;
  fx_open(&f, 0, 3);
  Ringtail__PushResponse r;
  push_n(&f, "t1", "hot", "a", 5, &r);
  cr_assert_eq(r.samples_accepted, 3);
  cr_assert_eq(r.n_errors, 2);
  const char *msg = r.errors[0]->message;
  cr_assert(has(msg, "max_global_series_per_metric=3"), "%s", msg);
  cr_assert(has(msg, "metric \"hot\""), "%s", msg);
  cr_assert(has(msg, "docs/errors.md#err-ringtail-max-series-per-metric"), "%s", msg);
  push_n(&f, "t1", "cold", "a", 3, &r);
  cr_assert_eq(r.n_errors, 0, "another metric has its own count");
  cr_assert_eq(num_series(&f, "t1"), 6);
  fx_close(&f);
}

Test(series_limits, limits_change_at_runtime) {
  fx f;
  fx_open(&f, 2, 0);
  Ringtail__PushResponse r;
  push_n(&f, "t1", "m", "a", 3, &r);
  cr_assert_eq(r.n_errors, 1);
  /* an overrides file raising t1's limit */
  char path[4200];
  snprintf(path, sizeof path, "%s/overrides.yaml", f.dir);
  FILE *fp = fopen(path, "w");
  cr_assert_not_null(fp);
  fputs("overrides:\n  t1:\n    max_global_series_per_user: 10\n", fp);
  fclose(fp);
  rt_limits l;
  memset(&l, 0, sizeof l);
  l.max_global_series_per_user = 2;
  char err[256];
  cr_assert_eq(rt_limits_init(&l, path, err, sizeof err), RT_OK, "%s", err);
  push_n(&f, "t1", "m", "a", 3, &r);
  cr_assert_eq(r.n_errors, 0, "%s", r.n_errors ? r.errors[0]->message : "");
  push_n(&f, "t2", "m", "a", 3, &r);
  cr_assert_eq(r.n_errors, 1, "other tenants keep the default");
  fx_close(&f);
}

/* Finds a label's counts in a cardinality answer. */
static const Ringtail__LabelCardinality *card_label(const Ringtail__CardinalityResponse *r,
                                                    const char *name) {
  for (size_t i = 0; i < r->n_labels; i++) {
    if (strcmp(r->labels[i]->name, name) == 0) {
      return r->labels[i];
    }
  }
  return NULL;
}

Test(series_limits, cardinality_counts_series_per_value) {
  fx f;
  fx_open(&f, 0, 0);
  Ringtail__PushResponse r;
  tu_push p;
  tu_push_init(&p, f.a, "t1");
  int64_t t = 1000;
  double v = 1;
  tu_series(&p, "__name__=up,job=api,x=1", 1, &t, &v);
  tu_series(&p, "__name__=up,job=api,x=2", 1, &t, &v);
  tu_series(&p, "__name__=up,job=db,x=1", 1, &t, &v);
  tu_series(&p, "__name__=rpc,job=api", 1, &t, &v);
  cr_assert_eq(ing_push(f.ing, &p.req, &r, f.a), RT_OK);
  push_n(&f, "t2", "up", "a", 7, &r); /* another tenant: never counted */

  Ringtail__CardinalityRequest rq = RINGTAIL__CARDINALITY_REQUEST__INIT;
  rq.tenant = (char *)"t1";
  Ringtail__CardinalityResponse rs;
  cr_assert_eq(ing_cardinality(f.ing, &rq, &rs, f.a), RT_OK);
  cr_assert_eq(rs.num_series, 4);
  cr_assert_eq(rs.n_labels, 3);
  cr_assert_str_eq(rs.labels[0]->name, "__name__");
  const Ringtail__LabelCardinality *job = card_label(&rs, "job");
  cr_assert_not_null(job);
  cr_assert_eq(job->n_values, 2);
  cr_assert_str_eq(job->values[0]->value, "api");
  cr_assert_eq(job->values[0]->series, 3);
  cr_assert_eq(job->values[1]->series, 1);
  const Ringtail__LabelCardinality *x = card_label(&rs, "x");
  cr_assert_eq(x->n_values, 2);
  cr_assert_eq(x->values[0]->series + x->values[1]->series, 3, "rpc has no x");

  /* with matchers and named labels */
  char *names[] = {(char *)"x", (char *)"nope", (char *)"x"};
  rq.label_names = names;
  rq.n_label_names = 3;
  tu_matchers(f.a, "job=api", &rq.matchers, &rq.n_matchers);
  cr_assert_eq(ing_cardinality(f.ing, &rq, &rs, f.a), RT_OK);
  cr_assert_eq(rs.num_series, 3);
  cr_assert_eq(rs.n_labels, 1, "unknown and repeated names add nothing");
  cr_assert_str_eq(rs.labels[0]->name, "x");
  cr_assert_eq(rs.labels[0]->n_values, 2);
  cr_assert_eq(rs.labels[0]->values[0]->series, 1);
  cr_assert_eq(rs.labels[0]->values[1]->series, 1);

  /* a tenant without data */
  rq.tenant = (char *)"nobody";
  cr_assert_eq(ing_cardinality(f.ing, &rq, &rs, f.a), RT_OK);
  cr_assert_eq(rs.num_series, 0);
  cr_assert_eq(rs.n_labels, 0);
  /* a bad regular expression */
  rq.tenant = (char *)"t1";
  tu_matchers(f.a, "job=~(", &rq.matchers, &rq.n_matchers);
  cr_assert_neq(ing_cardinality(f.ing, &rq, &rs, f.a), RT_OK);
  fx_close(&f);
}
