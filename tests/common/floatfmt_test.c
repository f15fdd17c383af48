/* floatfmt_test.c - the shortest round-trip formatter against printf/strtod and Go's layouts.
 *
 * The reference here is what Ringtail used before: the smallest printf("%.*e") precision that
 * strtod reads back as the same double. The formatter must read back to the same bits, be no
 * longer than the reference (and equal to it byte for byte when as long), and no decimal one
 * digit shorter may read back as the value. Layouts are checked against printf's %e and %f with
 * the reference's precision, and Go's exponent thresholds ('g': x < -4 || x >= 6; JSON: |v| <
 * 1e-6 || |v| >= 1e21). Expected strings of the edge cases are Go 1.26's output. */
#include <criterion/criterion.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/floatfmt.h"

static double from_bits(uint64_t b) {
  double v;
  memcpy(&v, &b, sizeof v);
  return v;
}

static uint64_t to_bits(double v) {
  uint64_t b;
  memcpy(&b, &v, sizeof b);
  return b;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* The old search: smallest p in 1..17 with strtod(printf("%.{p-1}e", v)) == v. Writes the
 * %e string to e and returns p. A binary search, as querier/format.c did: reading back is
 * monotonic in p except where the gap below v is narrower (powers of two), and there
 * check_value() accepts a shorter answer anyway. */
static int ref_prec(double v, char e[64]) {
  int lo = 1, hi = 17;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    snprintf(e, 64, "%.*e", mid - 1, v);
    if (strtod(e, NULL) == v) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  snprintf(e, 64, "%.*e", lo - 1, v);
  cr_assert(strtod(e, NULL) == v, "no precision reads back %a", v);
  return lo;
}

/* Digits d[0..nd) with exponent x as "D.e<x>" read back; D's last digit moved by delta. */
static bool reads_back(const char *d, int nd, int x, int delta, double v) {
  uint64_t n = 0;
  for (int i = 0; i < nd; i++) {
    n = n * 10 + (uint64_t)(d[i] - '0');
  }
  if (delta < 0 && n == 0) {
    return false;
  }
  n = (uint64_t)((int64_t)n + delta);
  char s[64];
  snprintf(s, sizeof s, "%" PRIu64 "e%d", n, x - nd + 1);
  return strtod(s, NULL) == v;
}

/* Go's 'f' of the digits in a printf %e string: plain digits, zeros padding up to the point
 * (printf's %f would print a large value's exact binary expansion instead). */
static void ref_f(const char *e, char *out) {
  char d[32];
  int nd = 0;
  const char *p = e;
  if (*p == '-') {
    *out++ = *p++;
  }
  for (; *p != 'e'; p++) {
    if (*p != '.') {
      d[nd++] = *p;
    }
  }
  int x = atoi(p + 1);
  while (nd > 1 && d[nd - 1] == '0') {
    nd--;
  }
  if (x < 0) {
    *out++ = '0';
    *out++ = '.';
    for (int i = 0; i < -x - 1; i++) {
      *out++ = '0';
    }
    sprintf(out, "%.*s", nd, d);
    return;
  }
  for (int i = 0; i <= x; i++) {
    *out++ = i < nd ? d[i] : '0';
  }
  if (nd > x + 1) {
    *out++ = '.';
    out += sprintf(out, "%.*s", nd - x - 1, d + x + 1);
  }
  *out = 0;
}

static uint64_t n_checked, n_shorter;

/* Every property for one finite value. */
static void check_value(double v) {
  char buf[RT_FLOAT_MAX], exp[RT_FLOAT_MAX];
  cr_assert(isfinite(v));
  /* 'e', 'f' and 'g' read back to the same bits (-0 included) */
  const char fmts[] = {'e', 'f', 'g'};
  for (int i = 0; i < 3; i++) {
    size_t n = rt_float_format(buf, v, fmts[i]);
    cr_assert_eq(n, strlen(buf));
    cr_assert_lt(n, fmts[i] == 'f' ? RT_FLOAT_MAX : RT_FLOAT_SHORT, "%c %a: %s", fmts[i], v, buf);
    double back = strtod(buf, NULL);
    cr_assert_eq(to_bits(back), to_bits(v), "%c %a: %s reads back as %a", fmts[i], v, buf, back);
  }
  n_checked++;
  if (v == 0) {
    return;
  }
  char d[17];
  int x;
  int nd = rt_float_shortest(v, d, &x);
  cr_assert(nd >= 1 && nd <= 17);
  cr_assert(d[0] != '0' && d[nd - 1] != '0', "%a: leading or trailing zero", v);
  /* shortest: no decimal of nd-1 digits near v reads back (the nearest one each side of v are
   * among the rounded one and its neighbours) */
  if (nd > 1) {
    char e[64];
    snprintf(e, sizeof e, "%.*e", nd - 2, fabs(v));
    char rd[17];
    int rn = 0;
    for (const char *p = e; *p && *p != 'e'; p++) {
      if (*p >= '0' && *p <= '9') {
        rd[rn++] = *p;
      }
    }
    int rx = atoi(strchr(e, 'e') + 1);
    for (int delta = -1; delta <= 1; delta++) {
      cr_assert_not(reads_back(rd, rn, rx, delta, fabs(v)), "%a: %.*s e%d is not shortest", v, nd, d, x);
    }
  }
  /* against the old printf search */
  char e[64];
  int p = ref_prec(v, e);
  cr_assert_leq(nd, p, "%a: %d digits, printf needs %d", v, nd, p);
  if (nd < p) {
    /* only where the gap below v is half the gap above it (a power of two): printf rounds to
     * the nearest p-digit decimal, which may fall outside the narrow side */
    cr_assert_eq(to_bits(v) & ((1ull << 52) - 1), 0, "%a: shorter than printf off a power of two", v);
    n_shorter++;
    return;
  }
  /* same length: same digits, and the layouts are printf's %e and %f at that precision */
  size_t n = rt_float_format(buf, v, 'e');
  cr_assert_str_eq(buf, e, "%a", v);
  ref_f(e, exp);
  rt_float_format(buf, v, 'f');
  cr_assert_str_eq(buf, exp, "%a", v);
  rt_float_format(buf, v, 'g');
  cr_assert_str_eq(buf, x < -4 || x >= 6 ? e : exp, "%a", v);
  n = rt_float_format_g(buf, v, 21);
  cr_assert_str_eq(buf, x < -4 || x >= 21 ? e : exp, "%a", v);
  cr_assert_eq(n, strlen(buf));
  double a = fabs(v);
  rt_float_format_json(buf, v);
  cr_assert_str_eq(buf, a < 1e-6 || a >= 1e21 ? e : exp, "%a", v);
}

Test(floatfmt, edge_values_as_go) {
  static const struct {
    double v;
    const char *e, *f, *g;
  } cases[] = {
      {0.0, "0e+00", "0", "0"},
      {-0.0, "-0e+00", "-0", "-0"},
      {1, "1e+00", "1", "1"},
      {-1, "-1e+00", "-1", "-1"},
      {0.1, "1e-01", "0.1", "0.1"},
      {0.3, "3e-01", "0.3", "0.3"},
      {1.0 / 3, "3.333333333333333e-01", "0.3333333333333333", "0.3333333333333333"},
      {2.0 / 3, "6.666666666666666e-01", "0.6666666666666666", "0.6666666666666666"},
      {0.1 + 0.2, "3.0000000000000004e-01", "0.30000000000000004", "0.30000000000000004"},
      {5e-324, "5e-324", NULL, "5e-324"},
      {-5e-324, "-5e-324", NULL, "-5e-324"},
      {1e-323, "1e-323", NULL, "1e-323"},
      {2.225073858507201e-308, "2.225073858507201e-308", NULL, "2.225073858507201e-308"}, /* largest denormal */
      {DBL_MIN, "2.2250738585072014e-308", NULL, "2.2250738585072014e-308"},
      {DBL_MAX, "1.7976931348623157e+308", NULL, "1.7976931348623157e+308"},
      {-DBL_MAX, "-1.7976931348623157e+308", NULL, "-1.7976931348623157e+308"},
      {1e21, "1e+21", "1000000000000000000000", "1e+21"},
      {999999999999999900000.0, "9.999999999999999e+20", "999999999999999900000", "9.999999999999999e+20"},
      {1e20, "1e+20", "100000000000000000000", "1e+20"},
      {1e22, "1e+22", "10000000000000000000000", "1e+22"},
      {1e23, "1e+23", "100000000000000000000000", "1e+23"},
      {123456, "1.23456e+05", "123456", "123456"},
      {1234567, "1.234567e+06", "1234567", "1.234567e+06"},
      {999999, "9.99999e+05", "999999", "999999"},
      {1e6, "1e+06", "1000000", "1e+06"},
      {1e-4, "1e-04", "0.0001", "0.0001"},
      {1e-5, "1e-05", "0.00001", "1e-05"},
      {1.5e-5, "1.5e-05", "0.000015", "1.5e-05"},
      {1e-7, "1e-07", "0.0000001", "1e-07"},
      {100, "1e+02", "100", "100"},
      {1e15, "1e+15", "1000000000000000", "1e+15"},
      {9007199254740992.0, "9.007199254740992e+15", "9007199254740992", "9.007199254740992e+15"},  /* 2^53 */
      {9007199254740993.0, "9.007199254740992e+15", "9007199254740992", "9.007199254740992e+15"},  /* rounds to 2^53 */
      {9007199254740994.0, "9.007199254740994e+15", "9007199254740994", "9.007199254740994e+15"},
      {18014398509481984.0, "1.8014398509481984e+16", "18014398509481984", "1.8014398509481984e+16"}, /* 2^54 */
      {4503599627370497.0, "4.503599627370497e+15", "4503599627370497", "4.503599627370497e+15"},  /* 2^52 + 1 */
      {4503599627370495.5, "4.5035996273704955e+15", "4503599627370495.5", "4.5035996273704955e+15"},
      {123456789012345680.0, "1.2345678901234568e+17", "123456789012345680", "1.2345678901234568e+17"},
      {0.5, "5e-01", "0.5", "0.5"},
      {1024, "1.024e+03", "1024", "1024"},
      {1099511627776.0, "1.099511627776e+12", "1099511627776", "1.099511627776e+12"}, /* 2^40 */
      {0.0009765625, "9.765625e-04", "0.0009765625", "0.0009765625"},                 /* 2^-10 */
      {9.5367431640625e-07, "9.5367431640625e-07", "0.00000095367431640625", "9.5367431640625e-07"}, /* 2^-20 */
      {5.421010862427522e-20, "5.421010862427522e-20", "0.00000000000000000005421010862427522",
       "5.421010862427522e-20"}, /* 2^-64 */
      {1.8446744073709552e19, "1.8446744073709552e+19", "18446744073709552000", "1.8446744073709552e+19"}, /* 2^64 */
      {8.98846567431158e307, "8.98846567431158e+307", NULL, "8.98846567431158e+307"}, /* 2^1023 */
      {2.2250738585072014e-308 * 2, "4.450147717014403e-308", NULL, "4.450147717014403e-308"},
      {1.7e308, "1.7e+308", NULL, "1.7e+308"},
      {1e-300, "1e-300", NULL, "1e-300"},
      {1e100, "1e+100", NULL, "1e+100"},
      {-2.5e-7, "-2.5e-07", "-0.00000025", "-2.5e-07"},
      {0.38461538461538464, "3.8461538461538464e-01", "0.38461538461538464", "0.38461538461538464"},
      {1700000000.123, "1.700000000123e+09", "1700000000.123", "1.700000000123e+09"},
      {2e-323, "2e-323", NULL, "2e-323"},
      {4.9406564584124654e-323, "5e-323", NULL, "5e-323"},
      /* powers of two whose nearest 16-digit decimal falls in the narrow gap below: 16 digits
       * where the printf search needed 17 ("7.1202363472230444e-307") */
      {0x1p-1017, "7.120236347223045e-307", NULL, "7.120236347223045e-307"},
      {0x1p-957, "8.209073602596753e-289", NULL, "8.209073602596753e-289"},
  };
  char buf[RT_FLOAT_MAX];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    double v = cases[i].v;
    rt_float_format(buf, v, 'e');
    cr_expect_str_eq(buf, cases[i].e, "%a", v);
    if (cases[i].f) {
      rt_float_format(buf, v, 'f');
      cr_expect_str_eq(buf, cases[i].f, "%a", v);
    }
    rt_float_format(buf, v, 'g');
    cr_expect_str_eq(buf, cases[i].g, "%a", v);
    check_value(v);
  }
  /* the longest 'f' forms: 5e-324 is "0.", 323 zeros, "5"; DBL_MAX 17 digits and 292 zeros */
  char exp[RT_FLOAT_MAX];
  memset(exp, '0', sizeof exp);
  exp[1] = '.';
  strcpy(exp + 2 + 323, "5");
  cr_expect_eq(rt_float_format(buf, 5e-324, 'f'), 2 + 323 + 1);
  cr_expect_str_eq(buf, exp);
  memset(exp, '0', sizeof exp);
  memcpy(exp, "17976931348623157", 17);
  exp[309] = 0;
  cr_expect_eq(rt_float_format(buf, DBL_MAX, 'f'), 309);
  cr_expect_str_eq(buf, exp);
  cr_expect_eq(rt_float_format(buf, -DBL_MIN, 'f'), 1 + 2 + 307 + 17);
  cr_expect_str_eq(buf + 310, "22250738585072014");
}

Test(floatfmt, specials_and_json) {
  char buf[RT_FLOAT_MAX];
  const char fmts[] = {'e', 'f', 'g'};
  for (int i = 0; i < 3; i++) {
    cr_expect_eq(rt_float_format(buf, NAN, fmts[i]), 3);
    cr_expect_str_eq(buf, "NaN");
    cr_expect_str_eq((rt_float_format(buf, -NAN, fmts[i]), buf), "NaN");
    cr_expect_str_eq((rt_float_format(buf, INFINITY, fmts[i]), buf), "+Inf");
    cr_expect_str_eq((rt_float_format(buf, -INFINITY, fmts[i]), buf), "-Inf");
  }
  /* the stale marker is a NaN like any other here */
  cr_expect_str_eq((rt_float_format(buf, from_bits(0x7ff0000000000002ull), 'f'), buf), "NaN");
  static const struct {
    double v;
    const char *s;
  } json[] = {
      {0, "0"},          {-0.0, "-0"},      {1e-6, "0.000001"},     {9.99e-7, "9.99e-07"},
      {1e21, "1e+21"},   {-1e21, "-1e+21"}, {1e20, "100000000000000000000"},
      {5e-324, "5e-324"}, {123.456, "123.456"}, {NAN, "NaN"}, {INFINITY, "+Inf"}, {-INFINITY, "-Inf"},
      {1.5e300, "1.5e+300"}, {999999999999999900000.0, "999999999999999900000"},
  };
  for (size_t i = 0; i < sizeof json / sizeof json[0]; i++) {
    size_t n = rt_float_format_json(buf, json[i].v);
    cr_expect_str_eq(buf, json[i].s);
    cr_expect_eq(n, strlen(json[i].s));
  }
  /* format_query's layout: exponent from 1e21 and below 1e-4 */
  cr_expect_str_eq((rt_float_format_g(buf, 1e20, 21), buf), "100000000000000000000");
  cr_expect_str_eq((rt_float_format_g(buf, 1e21, 21), buf), "1e+21");
  cr_expect_str_eq((rt_float_format_g(buf, 0.0001, 21), buf), "0.0001");
  cr_expect_str_eq((rt_float_format_g(buf, 0.00001, 21), buf), "1e-05");
  cr_expect_str_eq((rt_float_format_g(buf, 1234567, 21), buf), "1234567");
  /* fixed precision, as Go's %.2g */
  cr_expect_str_eq(rt_float_format_prec(buf, sizeof buf, 0.123456, 2), "0.12");
  cr_expect_str_eq(rt_float_format_prec(buf, sizeof buf, 100, 2), "1e+02");
  cr_expect_str_eq(rt_float_format_prec(buf, sizeof buf, 0.5, 2), "0.5");
  cr_expect_str_eq(rt_float_format_prec(buf, sizeof buf, -INFINITY, 2), "-Inf");
  cr_expect_str_eq(rt_float_format_prec(buf, sizeof buf, NAN, 2), "NaN");
}

Test(floatfmt, powers_and_integers) {
  /* every power of two and of ten, and their neighbours */
  for (int e = -1074; e <= 1023; e++) {
    double v = ldexp(1, e);
    check_value(v);
    check_value(nextafter(v, 0));
    check_value(nextafter(v, INFINITY));
    check_value(-v);
  }
  for (int e = -323; e <= 308; e++) {
    char s[16];
    snprintf(s, sizeof s, "1e%d", e);
    double v = strtod(s, NULL);
    check_value(v);
    check_value(nextafter(v, 0));
    check_value(nextafter(v, INFINITY));
  }
  /* integers up to 2^53 are printed exactly, and beyond it still read back */
  for (int i = 0; i < 100000; i++) {
    uint64_t n = rng() >> (11 + (rng() % 53));
    double v = (double)n;
    char buf[RT_FLOAT_MAX], exp[32];
    rt_float_format(buf, v, 'f');
    snprintf(exp, sizeof exp, "%" PRIu64, n);
    cr_assert_str_eq(buf, exp);
    check_value(v);
    check_value((double)(rng() >> (rng() % 11)));
  }
  /* every denormal with a small mantissa, and the largest ones */
  for (uint64_t m = 1; m < 5000; m++) {
    check_value(from_bits(m));
    check_value(from_bits((1ull << 52) - m));
  }
  cr_log_info("%" PRIu64 " values, %" PRIu64 " shorter than the printf search", n_checked, n_shorter);
}

Test(floatfmt, random_bit_patterns, .timeout = 280) {
  rng_state = 42;
  uint64_t done = 0;
  while (done < 1000000) {
    double v = from_bits(rng());
    if (!isfinite(v)) {
      continue;
    }
    check_value(v);
    done++;
  }
  cr_log_info("%" PRIu64 " values, %" PRIu64 " shorter than the printf search", n_checked, n_shorter);
}

Test(floatfmt, random_decimals, .timeout = 280) {
  rng_state = 7;
  char s[64], buf[RT_FLOAT_MAX];
  for (int i = 0; i < 1000000; i++) {
    /* 1..17 significant digits, exponents across the whole range */
    int nd = 1 + (int)(rng() % 17);
    uint64_t m = 1 + rng() % 9;
    for (int k = 1; k < nd; k++) {
      m = m * 10 + rng() % 10;
    }
    int x = (int)(rng() % 630) - 320;
    snprintf(s, sizeof s, "%s%" PRIu64 "e%d", rng() & 1 ? "-" : "", m, x);
    double v = strtod(s, NULL);
    if (!isfinite(v) || v == 0) {
      continue;
    }
    check_value(v);
    /* up to 15 digits in the normal range the input is the shortest form itself */
    if (nd <= 15 && fabs(v) >= DBL_MIN) {
      while (m % 10 == 0) {
        m /= 10;
        x++;
      }
      char d[17];
      int ex;
      int n = rt_float_shortest(v, d, &ex);
      snprintf(buf, sizeof buf, "%" PRIu64, m);
      cr_assert_eq((size_t)n, strlen(buf), "%s", s);
      cr_assert(memcmp(d, buf, (size_t)n) == 0, "%s: %.*s", s, n, d);
      cr_assert_eq(ex, x + n - 1, "%s", s);
    }
  }
}

/* The cases the querier checked before it used this formatter. */
static void f_eq(double v, char fmt, const char *want) {
  char buf[RT_FLOAT_MAX];
  size_t n = fmt ? rt_float_format(buf, v, fmt) : rt_float_format_json(buf, v);
  cr_assert_str_eq(buf, want, "format %c of %.17g", fmt ? fmt : 'P', v);
  cr_assert_eq(n, strlen(want));
}

Test(floatfmt, go_f_shortest) {
  f_eq(0, 'f', "0");
  f_eq(-0.0, 'f', "-0");
  f_eq(1, 'f', "1");
  f_eq(-2.5, 'f', "-2.5");
  f_eq(0.1, 'f', "0.1");
  f_eq(0.1 + 0.2, 'f', "0.30000000000000004");
  f_eq(123456789.125, 'f', "123456789.125");
  f_eq(1e20, 'f', "100000000000000000000");
  f_eq(1e21, 'f', "1000000000000000000000");
  f_eq(0.000001, 'f', "0.000001");
  f_eq(1.5e-7, 'f', "0.00000015");
  char want[RT_FLOAT_MAX];
  strcpy(want, "0.");
  for (int i = 0; i < 323; i++) {
    strcat(want, "0");
  }
  strcat(want, "5");
  f_eq(5e-324, 'f', want);
  strcpy(want, "17976931348623157");
  for (int i = 0; i < 309 - 17; i++) {
    strcat(want, "0");
  }
  f_eq(1.7976931348623157e308, 'f', want);
  f_eq(NAN, 'f', "NaN");
  f_eq(INFINITY, 'f', "+Inf");
  f_eq(-INFINITY, 'f', "-Inf");
}

Test(floatfmt, go_e_and_g) {
  f_eq(1e-7, 'e', "1e-07");
  f_eq(1.5e21, 'e', "1.5e+21");
  f_eq(123.456, 'e', "1.23456e+02");
  f_eq(1e100, 'e', "1e+100");
  f_eq(0, 'e', "0e+00");
  f_eq(1e6, 'g', "1e+06");
  f_eq(123456, 'g', "123456");
  f_eq(0.0001, 'g', "0.0001");
  f_eq(0.00001, 'g', "1e-05");
}

Test(floatfmt, prometheus_json_values) {
  f_eq(1, 0, "1");
  f_eq(0.5, 0, "0.5");
  f_eq(1e-6, 0, "0.000001");
  f_eq(9.9e-7, 0, "9.9e-07");
  f_eq(1e21, 0, "1e+21");
  f_eq(999999999999999900000.0, 0, "999999999999999900000");
  f_eq(-3.25e-9, 0, "-3.25e-09");
  f_eq(NAN, 0, "NaN");
  f_eq(-INFINITY, 0, "-Inf");
  f_eq(0, 0, "0");
}
