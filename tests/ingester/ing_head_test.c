/* ing_head_test.c - the inverted index: every matcher kind, empty-matching matchers,
 * intersections, label names and values, sharding. */
#include "common/labels.h"
#include "ing_util.h"

static char *dir;
static rt_arena *A;
static ing_ingester *ing;

/* series (ref order = push order):
 *  1 up{job=api, env=prod, zone=a}
 *  2 up{job=api, env=dev}
 *  3 up{job=db,  env=prod, zone=b}
 *  4 down{job=db}
 *  5 down{job=web}
 *  6 req{job=api, path=/a/b, code=200}
 *  7 req{job=api, path=/x, code=500} */
static const char *series[] = {
    "__name__=up,env=prod,job=api,zone=a", "__name__=up,env=dev,job=api",
    "__name__=up,env=prod,job=db,zone=b",  "__name__=down,job=db",
    "__name__=down,job=web",               "__name__=req,code=200,job=api,path=/a/b",
    "__name__=req,code=500,job=api,path=/x",
};

static void setup(void) {
  dir = tu_tmpdir();
  A = rt_arena_create(0);
  ing_config cfg = tu_cfg(dir);
  cr_assert_eq(ing_create(&cfg, &ing), RT_OK);
  tu_push p;
  tu_push_init(&p, A, "t");
  for (size_t i = 0; i < RT_ARRAY_LEN(series); i++) {
    int64_t t = 1000 * (int64_t)(i + 1);
    double v = (double)i;
    tu_series(&p, series[i], 1, &t, &v);
  }
  Ringtail__PushResponse resp;
  cr_assert_eq(ing_push(ing, &p.req, &resp, A), RT_OK);
  cr_assert_eq(resp.samples_accepted, RT_ARRAY_LEN(series));
}

static void teardown(void) {
  ing_destroy(ing);
  rt_arena_destroy(A);
  tu_rm_rf(dir);
  free(dir);
}

TestSuite(head, .init = setup, .fini = teardown);

/* Selects and returns the matched series as a sorted "i,j,k" list of indexes into series[]. */
static const char *sel(const char *matchers) {
  Ringtail__SelectResponse sr;
  cr_assert_eq(tu_select(ing, "t", matchers, 0, 0, &sr, A), RT_OK, "select %s", matchers);
  static char out[256];
  int idx[16];
  size_t n = 0;
  for (size_t i = 0; i < sr.n_series; i++) {
    char b[256];
    tu_labels_str(sr.series[i], b, sizeof b);
    int found = -1;
    for (size_t k = 0; k < RT_ARRAY_LEN(series); k++) {
      if (!strcmp(series[k], b)) {
        found = (int)k + 1;
      }
    }
    cr_assert_geq(found, 1, "unexpected series %s", b);
    idx[n++] = found;
  }
  /* sort the indexes for a stable answer */
  for (size_t i = 1; i < n; i++) {
    int x = idx[i];
    size_t j = i;
    while (j > 0 && idx[j - 1] > x) {
      idx[j] = idx[j - 1];
      j--;
    }
    idx[j] = x;
  }
  size_t k = 0;
  out[0] = 0;
  for (size_t i = 0; i < n; i++) {
    k += (size_t)snprintf(out + k, sizeof out - k, "%s%d", i ? "," : "", idx[i]);
  }
  return out;
}

Test(head, equal) {
  cr_assert_str_eq(sel("__name__=up"), "1,2,3");
  cr_assert_str_eq(sel("job=api"), "1,2,6,7");
  cr_assert_str_eq(sel("__name__=up;job=api"), "1,2");
  cr_assert_str_eq(sel("__name__=up;job=web"), "");
  cr_assert_str_eq(sel("nosuch=x"), "");
  cr_assert_str_eq(sel("__name__=nosuch"), "");
}

Test(head, not_equal) {
  cr_assert_str_eq(sel("__name__=up;env!=prod"), "2");
  /* != selects series lacking the label too */
  cr_assert_str_eq(sel("job=api;zone!=a"), "2,6,7");
  cr_assert_str_eq(sel("__name__=down;zone!=x"), "4,5");
  /* != "" means: has the label */
  cr_assert_str_eq(sel("job=api;zone!="), "1");
  cr_assert_str_eq(sel("__name__!=up"), "4,5,6,7");
}

Test(head, regex) {
  cr_assert_str_eq(sel("__name__=~up|down"), "1,2,3,4,5");
  cr_assert_str_eq(sel("__name__=~u."), "1,2,3");
  cr_assert_str_eq(sel("__name__=~u"), ""); /* fully anchored */
  cr_assert_str_eq(sel("path=~/a/.*"), "6");
  cr_assert_str_eq(sel("code=~5.."), "7");
  cr_assert_str_eq(sel("job=~api;code=~2..|5.."), "6,7");
  cr_assert_str_eq(sel("__name__=~.+"), "1,2,3,4,5,6,7");
  cr_assert_str_eq(sel("job=~db"), "3,4"); /* literal fast path */
}

Test(head, regex_matching_empty_selects_missing) {
  /* zone=~"a|" matches zone=a and series without zone */
  cr_assert_str_eq(sel("__name__=up;zone=~a|"), "1,2");
  cr_assert_str_eq(sel("__name__=~up|down;zone=~.*"), "1,2,3,4,5");
  cr_assert_str_eq(sel("__name__=up;zone=~b?"), "2,3");
  /* = "" selects series without the label */
  cr_assert_str_eq(sel("__name__=up;zone="), "2");
  cr_assert_str_eq(sel("job=db;zone="), "4");
}

Test(head, negative_regex) {
  cr_assert_str_eq(sel("__name__=up;env!~pr.*"), "2");
  cr_assert_str_eq(sel("job=api;zone!~a"), "2,6,7");
  /* !~ ".+" : only series without the label */
  cr_assert_str_eq(sel("job=api;zone!~.+"), "2,6,7");
  /* !~ "" : only series with the label */
  cr_assert_str_eq(sel("job=~.*;zone!~"), "1,3");
  /* !~ ".*" matches nothing */
  cr_assert_str_eq(sel("job=api;path!~.*"), "");
}

Test(head, only_empty_matching_matchers) {
  /* no matcher bounds the set: start from every series */
  cr_assert_str_eq(sel("zone!=a"), "2,3,4,5,6,7");
  cr_assert_str_eq(sel("zone=~.*"), "1,2,3,4,5,6,7");
}

Test(head, bad_regex) {
  Ringtail__SelectResponse sr;
  cr_assert_eq(tu_select(ing, "t", "job=~(", 0, 0, &sr, A), RT_EINVAL);
}

Test(head, many_series_intersections) {
  /* 2000 series: a x b grid; check intersections against brute force */
  tu_push p;
  tu_push_init(&p, A, "grid");
  for (int i = 0; i < 2000; i++) {
    char lb[128];
    snprintf(lb, sizeof lb, "__name__=g,a=%d,b=%d,c=%d,id=%d", i % 10, i % 7, i % 3, i);
    int64_t t = 1;
    double v = i;
    tu_series(&p, lb, 1, &t, &v);
  }
  Ringtail__PushResponse resp;
  cr_assert_eq(ing_push(ing, &p.req, &resp, A), RT_OK);
  cr_assert_eq(resp.samples_accepted, 2000);
  Ringtail__SelectResponse sr;
  cr_assert_eq(tu_select(ing, "grid", "a=3;b=~1|2;c!=0", 0, 0, &sr, A), RT_OK);
  int want = 0;
  for (int i = 0; i < 2000; i++) {
    if (i % 10 == 3 && (i % 7 == 1 || i % 7 == 2) && i % 3 != 0) {
      want++;
    }
  }
  cr_assert_eq(sr.n_series, (size_t)want);
  /* results are sorted by labels */
  for (size_t i = 1; i < sr.n_series; i++) {
    char x[256], y[256];
    tu_labels_str(sr.series[i - 1], x, sizeof x);
    tu_labels_str(sr.series[i], y, sizeof y);
    cr_assert_lt(strcmp(x, y), 0, "%s !< %s", x, y);
  }
  /* shards partition the result */
  size_t total = 0;
  for (uint32_t s = 0; s < 4; s++) {
    Ringtail__SelectRequest req;
    ringtail__select_request__init(&req);
    req.tenant = "grid";
    tu_matchers(A, "__name__=g", &req.matchers, &req.n_matchers);
    req.shard_index = s;
    req.shard_count = 4;
    cr_assert_eq(ing_select(ing, &req, &sr, A), RT_OK);
    cr_assert_gt(sr.n_series, 300);
    total += sr.n_series;
    /* the shard is rt_series_hash(tenant, labels) % count, as every component computes it */
    for (size_t i = 0; i < sr.n_series; i++) {
      rt_label ls[8];
      for (size_t l = 0; l < sr.series[i]->n_labels; l++) {
        ls[l].name = sr.series[i]->labels[l]->name;
        ls[l].value = sr.series[i]->labels[l]->value;
      }
      cr_assert_eq(rt_series_hash("grid", ls, sr.series[i]->n_labels) % 4, s);
    }
  }
  cr_assert_eq(total, 2000);
}

static const char *strs(const Ringtail__LabelsResponse *r) {
  static char out[512];
  size_t k = 0;
  out[0] = 0;
  for (size_t i = 0; i < r->n_values; i++) {
    k += (size_t)snprintf(out + k, sizeof out - k, "%s%s", i ? "," : "", r->values[i]);
  }
  return out;
}

static const char *names(const char *matchers, int64_t mint, int64_t maxt) {
  Ringtail__LabelsRequest req;
  ringtail__labels_request__init(&req);
  req.tenant = "t";
  tu_matchers(A, matchers, &req.matchers, &req.n_matchers);
  req.mint = mint;
  req.maxt = maxt;
  Ringtail__LabelsResponse resp;
  cr_assert_eq(ing_label_names(ing, &req, &resp, A), RT_OK);
  return strs(&resp);
}

static const char *values(const char *name, const char *matchers, int64_t mint, int64_t maxt) {
  Ringtail__LabelsRequest req;
  ringtail__labels_request__init(&req);
  req.tenant = "t";
  req.name = (char *)name;
  tu_matchers(A, matchers, &req.matchers, &req.n_matchers);
  req.mint = mint;
  req.maxt = maxt;
  Ringtail__LabelsResponse resp;
  cr_assert_eq(ing_label_values(ing, &req, &resp, A), RT_OK);
  return strs(&resp);
}

Test(head, label_names_and_values) {
  cr_assert_str_eq(names("", 0, 0), "__name__,code,env,job,path,zone");
  cr_assert_str_eq(names("__name__=down", 0, 0), "__name__,job");
  cr_assert_str_eq(names("__name__=up;zone=", 0, 0), "__name__,env,job");
  cr_assert_str_eq(values("__name__", "", 0, 0), "down,req,up");
  cr_assert_str_eq(values("job", "__name__=up", 0, 0), "api,db");
  cr_assert_str_eq(values("zone", "", 0, 0), "a,b");
  cr_assert_str_eq(values("nosuch", "", 0, 0), "");
  cr_assert_str_eq(values("nosuch", "job=api", 0, 0), "");
  /* time ranges: series i has its sample at 1000*(i+1) */
  cr_assert_str_eq(values("__name__", "", 4000, 5000), "down");
  cr_assert_str_eq(names("", 6000, 7000), "__name__,code,job,path");
  cr_assert_str_eq(values("job", "__name__=~.+", 1000, 1000), "api");
  /* limit */
  Ringtail__LabelsRequest req;
  ringtail__labels_request__init(&req);
  req.tenant = "t";
  req.name = "__name__";
  req.limit = 2;
  Ringtail__LabelsResponse resp;
  cr_assert_eq(ing_label_values(ing, &req, &resp, A), RT_OK);
  cr_assert_str_eq(strs(&resp), "down,req");
  /* values without a name is an error */
  req.name = "";
  cr_assert_eq(ing_label_values(ing, &req, &resp, A), RT_EINVAL);
}
