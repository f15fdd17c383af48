/* format_test.c - Prometheus' timestamp formatting, API time parsing, name unescaping and the
 * sample merge (floats: tests/common/floatfmt_test.c). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common/rt.h"
#include "querier/querier.h"
#include "querier/querier_int.h"

Test(format, timestamps) {
  char b[64];
  qry_format_ts(b, 1700000000123);
  cr_assert_str_eq(b, "1700000000.123");
  qry_format_ts(b, 1700000000000);
  cr_assert_str_eq(b, "1700000000");
  qry_format_ts(b, 1500);
  cr_assert_str_eq(b, "1.500");
  qry_format_ts(b, 1005);
  cr_assert_str_eq(b, "1.005");
  qry_format_ts(b, -250);
  cr_assert_str_eq(b, "-0.250");
  qry_format_ts(b, -2000);
  cr_assert_str_eq(b, "-2");
  qry_format_ts(b, 0);
  cr_assert_str_eq(b, "0");
  qry_format_ts(b, 10);
  cr_assert_str_eq(b, "0.010");
  /* the extremes fit QRY_TS_BUFSZ */
  cr_assert_eq(qry_format_ts(b, INT64_MIN), strlen("-9223372036854775.808"));
  cr_assert_str_eq(b, "-9223372036854775.808");
  cr_assert_lt(qry_format_ts(b, INT64_MAX), QRY_TS_BUFSZ);
  cr_assert_str_eq(b, "9223372036854775.807");
}

static int64_t t_ok(const char *s) {
  int64_t ms = 0;
  char err[256];
  cr_assert(qry_parse_time(s, &ms, err, sizeof err), "%s: %s", s, err);
  return ms;
}

Test(format, parse_time) {
  cr_assert_eq(t_ok("1700000000"), 1700000000000);
  cr_assert_eq(t_ok("1700000000.123"), 1700000000123);
  cr_assert_eq(t_ok("1700000000.1239"), 1700000000124);
  cr_assert_eq(t_ok("-1.5"), -1500);
  cr_assert_eq(t_ok("1e3"), 1000000);
  cr_assert_eq(t_ok("+5"), 5000);
  cr_assert_eq(t_ok(".5"), 500);
  cr_assert_eq(t_ok("2023-11-14T22:13:20Z"), 1700000000000);
  cr_assert_eq(t_ok("2023-11-14T22:13:20.123456789Z"), 1700000000123);
  cr_assert_eq(t_ok("2023-11-15T00:13:20+02:00"), 1700000000000);
  cr_assert_eq(t_ok("2023-11-14T20:13:20.5-02:00"), 1700000000500);
  cr_assert_eq(t_ok("1970-01-01T00:00:00Z"), 0);
  cr_assert_eq(t_ok("2024-02-29T00:00:00Z"), 1709164800000);
  cr_assert_eq(t_ok("-292273086-05-16T16:47:06Z"), QRY_MIN_TIME_MS);
  cr_assert_eq(t_ok("292277025-08-18T07:12:54.999999999Z"), QRY_MAX_TIME_MS);

  cr_assert_eq(t_ok("1_000"), 1000000);
  cr_assert_eq(t_ok("0x1p4"), 16000);
  cr_assert_eq(t_ok("0x_1_0p0"), 16000);
  cr_assert_eq(t_ok("2023-11-14T22:13:20,5Z"), 1700000000500);
  cr_assert_eq(t_ok("2023-11-15T22:13:20+24:00"), 1700000000000);
  cr_assert_eq(t_ok("+Inf"), QRY_MAX_TIME_MS);
  cr_assert_eq(t_ok("-inf"), QRY_MIN_TIME_MS);
  cr_assert_eq(t_ok("NaN"), QRY_MIN_TIME_MS);
  const char *bad[] = {"x", "", " 1", "1 ", "2023-02-29T00:00:00Z", "2023-11-14 22:13:20Z",
                       "2023-11-14T22:13:20", "2023-13-01T00:00:00Z", "1e", "0x10", "1__0", "_1",
                       "1_", "1e400", "2023-11-14T24:00:00Z", "2023-11-14t22:13:20Z", "1._5"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int64_t ms;
    char err[256];
    cr_assert_not(qry_parse_time(bad[i], &ms, err, sizeof err), "%s accepted", bad[i]);
  }
  int64_t ms;
  char err[256];
  qry_parse_time("x\"y", &ms, err, sizeof err);
  cr_assert_str_eq(err, "cannot parse \"x\\\"y\" to a valid timestamp");
}

static void unesc(const char *in, const char *want) {
  char *s = qry_unescape_name(in);
  cr_assert_str_eq(s, want, "unescape %s", in);
  rt_free(s, 0);
}

Test(format, unescape_label_names) {
  unesc("job", "job");
  unesc("U__my_2e_name", "my.name");
  unesc("U__a__b", "a_b");
  unesc("U___1f600_", "\xf0\x9f\x98\x80");
  unesc("U__bad_zz_", "U__bad_zz_");       /* not hex: left as it is */
  unesc("U__open_2e", "U__open_2e");       /* no closing underscore */
  unesc("U__trailing_", "U__trailing_");
  unesc("U___d800_", "U___d800_");         /* surrogate */
}

Test(format, merge_samples_sorts_and_keeps_first_of_each_timestamp) {
  qry_sample s[] = {{10, 1}, {20, 2}, {10, 9}, {5, 0}, {20, 8}, {30, 3}};
  size_t n = qry_samples_merge(s, 6);
  cr_assert_eq(n, 4);
  int64_t ts[] = {5, 10, 20, 30};
  double vs[] = {0, 1, 2, 3};
  for (size_t i = 0; i < n; i++) {
    cr_assert_eq(s[i].t, ts[i]);
    cr_assert_eq(s[i].v, vs[i]);
  }
  /* large input takes the qsort path; still stable */
  enum { N = 1000 };
  static qry_sample big[2 * N];
  for (int i = 0; i < N; i++) {
    big[i].t = N - i;
    big[i].v = 1;
    big[N + i].t = i + 1;
    big[N + i].v = 2;
  }
  n = qry_samples_merge(big, 2 * N);
  cr_assert_eq(n, N);
  for (size_t i = 0; i < n; i++) {
    cr_assert_eq(big[i].t, (int64_t)i + 1);
    cr_assert_eq(big[i].v, 1);
  }
  /* already sorted: untouched */
  qry_sample ok[] = {{1, 1}, {2, 2}};
  cr_assert_eq(qry_samples_merge(ok, 2), 2);
  cr_assert_eq(qry_samples_merge(ok, 0), 0);
}

