/* floatfmt_prog.c - the values and outputs that tests/integration/floatfmt_go.sh compares with Go.
 *
 *   floatfmt_prog gen N SEED   prints edge values, then N random bit patterns and N random
 *                              decimals, as 16 hex digits of their bits, one per line
 *   floatfmt_prog fmt          reads such lines and prints rt_float_format 'e', 'f', 'g' and
 *                              rt_float_format_json of each, space separated
 *   floatfmt_prog bench [N]    ns per value of rt_float_format_json and rt_float_format 'g'
 *                              against the printf/strtod searches they replaced (kept here only
 *                              as the baseline), over N values (default 2,000,000) of each kind:
 *                              random bit patterns, rates (17 digits), gauges with few digits,
 *                              integer counters */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/floatfmt.h"

static uint64_t state;
static uint64_t rng(void) { /* splitmix64 */
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void put(double v) {
  uint64_t b;
  memcpy(&b, &v, sizeof b);
  printf("%016" PRIx64 "\n", b);
}

/* ---- baseline: the formatters Ringtail had before common/floatfmt.c ---- */

/* querier/format.c: binary search over %.{p}e precisions, then the JSON layout */
static size_t old_json(char *buf, double v) {
  if (isnan(v)) {
    return (size_t)sprintf(buf, "NaN");
  }
  if (isinf(v)) {
    return (size_t)sprintf(buf, v > 0 ? "+Inf" : "-Inf");
  }
  char *o = buf;
  if (signbit(v)) {
    *o++ = '-';
    v = -v;
  }
  char d[24], tmp[40];
  int x = 0, n = 1;
  d[0] = '0';
  if (v != 0) {
    int lo = 1, hi = 17;
    while (lo < hi) {
      int mid = (lo + hi) / 2;
      snprintf(tmp, sizeof tmp, "%.*e", mid - 1, v);
      if (strtod(tmp, NULL) == v) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    snprintf(tmp, sizeof tmp, "%.*e", lo - 1, v);
    n = 0;
    const char *p = tmp;
    for (; *p && *p != 'e'; p++) {
      if (*p >= '0' && *p <= '9') {
        d[n++] = *p;
      }
    }
    while (n > 1 && d[n - 1] == '0') {
      n--;
    }
    x = atoi(p + 1);
  }
  bool e = v != 0 && (v < 1e-6 || v >= 1e21);
  if (e) {
    *o++ = d[0];
    if (n > 1) {
      *o++ = '.';
      memcpy(o, d + 1, (size_t)n - 1);
      o += n - 1;
    }
    o += sprintf(o, "e%c%02d", x < 0 ? '-' : '+', x < 0 ? -x : x);
    return (size_t)(o - buf);
  }
  if (x < 0) {
    *o++ = '0';
    *o++ = '.';
    for (int i = 0; i < -x - 1; i++) {
      *o++ = '0';
    }
    memcpy(o, d, (size_t)n);
    o += n;
  } else {
    for (int i = 0; i <= x; i++) {
      *o++ = i < n ? d[i] : '0';
    }
    if (n > x + 1) {
      *o++ = '.';
      memcpy(o, d + x + 1, (size_t)(n - x - 1));
      o += n - x - 1;
    }
  }
  *o = 0;
  return (size_t)(o - buf);
}

/* common/metrics.c: linear search over precisions, then %e or %f */
static size_t old_g(char *buf, double v) {
  if (isnan(v) || isinf(v) || v == 0) {
    return (size_t)sprintf(buf, "%s", isnan(v) ? "NaN" : isinf(v) ? (v > 0 ? "+Inf" : "-Inf") : "0");
  }
  char tmp[64];
  int prec = 1;
  for (; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
    if (strtod(tmp, NULL) == v) {
      break;
    }
  }
  int exp = atoi(strchr(tmp, 'e') + 1);
  if (exp < -4 || exp >= 6) {
    return (size_t)sprintf(buf, "%s", tmp);
  }
  int decimals = prec - 1 - exp;
  return (size_t)sprintf(buf, "%.*f", decimals > 0 ? decimals : 0, v);
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: the machine may be shared */
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

typedef size_t (*fmt_fn)(char *, double);
static size_t new_json(char *buf, double v) { return rt_float_format_json(buf, v); }
static size_t new_g(char *buf, double v) { return rt_float_format(buf, v, 'g'); }

static double run(fmt_fn f, const double *vals, long n, size_t *sink) {
  char buf[RT_FLOAT_MAX];
  double t0 = now_ns();
  for (long i = 0; i < n; i++) {
    *sink += f(buf, vals[i]);
  }
  return (now_ns() - t0) / (double)n;
}

static int bench(long n) {
  double *vals = malloc((size_t)n * sizeof *vals);
  if (!vals) {
    return 1;
  }
  static const char *kinds[] = {"random bits", "rates (x/3, 17 digits)", "gauges (<= 4 decimals)",
                                "integer counters"};
  size_t sink = 0;
  printf("%-24s %12s %12s %8s %12s %12s %8s\n", "values", "old JSON ns", "new JSON ns", "speedup", "old 'g' ns",
         "new 'g' ns", "speedup");
  for (int k = 0; k < 4; k++) {
    state = 1 + (uint64_t)k;
    for (long i = 0; i < n; i++) {
      uint64_t r = rng();
      double v;
      switch (k) {
      case 0:
        do {
          memcpy(&v, &r, sizeof v);
          r = rng();
        } while (!isfinite(v));
        break;
      case 1: v = (double)(r % 100000000) / 3 / 1000; break;
      case 2: v = (double)(r % 10000000) / 10000; break;
      default: v = (double)(r % 10000000000ull); break;
      }
      vals[i] = v;
    }
    double oj = run(old_json, vals, n, &sink), nj = run(new_json, vals, n, &sink);
    double og = run(old_g, vals, n, &sink), ng = run(new_g, vals, n, &sink);
    printf("%-24s %12.1f %12.1f %7.1fx %12.1f %12.1f %7.1fx\n", kinds[k], oj, nj, oj / nj, og, ng, og / ng);
  }
  free(vals);
  return sink == 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "bench") == 0) {
    return bench(argc > 2 ? atol(argv[2]) : 2000000);
  }
  if (argc == 4 && strcmp(argv[1], "gen") == 0) {
    long n = atol(argv[2]);
    state = strtoull(argv[3], NULL, 10);
    const double edges[] = {0, -0.0, 1, -1, 0.1, 1.0 / 3, 5e-324, DBL_MIN, DBL_MAX, 1e21, 1e-6, 1e-4, 1e6,
                            NAN, INFINITY, -INFINITY, 9007199254740992.0, 9007199254740993.0};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
      put(edges[i]);
    }
    for (int e = -1074; e <= 1023; e++) {
      put(ldexp(1, e));
      put(nextafter(ldexp(1, e), 0));
      put(nextafter(ldexp(1, e), INFINITY));
    }
    for (int e = -323; e <= 308; e++) {
      char s[16];
      snprintf(s, sizeof s, "1e%d", e);
      put(strtod(s, NULL));
    }
    for (long i = 0; i < n; i++) {
      uint64_t b = rng();
      double v;
      memcpy(&v, &b, sizeof v);
      put(v);
      char s[64];
      int nd = 1 + (int)(rng() % 17);
      snprintf(s, sizeof s, "%" PRIu64 "e%d", (uint64_t)(rng() % 100000000000000000ull / (uint64_t)pow(10, 17 - nd)),
               (int)(rng() % 630) - 320);
      put(strtod(s, NULL));
    }
    return 0;
  }
  if (argc == 2 && strcmp(argv[1], "fmt") == 0) {
    char line[64], e[RT_FLOAT_MAX], f[RT_FLOAT_MAX], g[RT_FLOAT_MAX], j[RT_FLOAT_MAX];
    while (fgets(line, sizeof line, stdin)) {
      uint64_t b = strtoull(line, NULL, 16);
      double v;
      memcpy(&v, &b, sizeof v);
      rt_float_format(e, v, 'e');
      rt_float_format(f, v, 'f');
      rt_float_format(g, v, 'g');
      rt_float_format_json(j, v);
      printf("%s %s %s %s\n", e, f, g, j);
    }
    return 0;
  }
  fprintf(stderr, "usage: floatfmt_prog gen N SEED | floatfmt_prog fmt | floatfmt_prog bench [N]\n");
  return 2;
}
