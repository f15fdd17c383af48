/* fuzz_floatfmt.c - libFuzzer target for the float formatter (common/floatfmt.h).
 *
 * The first 8 bytes are a double's bits (little-endian; missing bytes are zero), byte 8 (when
 * present) an exponent threshold for rt_float_format_g. Whatever the bits: every form is
 * NUL-ended, as long as returned and within its buffer bound; a finite value's 'e', 'f', 'g',
 * JSON and threshold forms read back (strtod) to the same bits; NaN and ±Inf are spelled as Go
 * does; the digits of rt_float_shortest have no leading or trailing zero, and no decimal one
 * digit shorter near the value reads back as it (so the output is the shortest). */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/floatfmt.h"

static void check(bool ok) {
  if (!ok) {
    abort();
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  const char *dir = getenv("RT_FUZZ_WRITE_SEEDS");
  if (!dir || !*dir) {
    return 0;
  }
  const double seeds[] = {0.1, 1.0 / 3, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 1e21, 9.5367431640625e-07,
                          9007199254740993.0, -0.0, NAN, INFINITY};
  for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/seed-%zu", dir, i);
    FILE *f = fopen(path, "wb");
    if (!f) {
      perror(path);
      exit(1);
    }
    uint64_t b;
    memcpy(&b, &seeds[i], sizeof b);
    for (int k = 0; k < 8; k++) {
      fputc((int)(b >> (8 * k) & 0xff), f);
    }
    fputc(21, f);
    fclose(f);
  }
  exit(0);
}

static void check_reads_back(const char *s, size_t n, double v) {
  check(strlen(s) == n);
  if (isnan(v)) {
    check(strcmp(s, "NaN") == 0);
    return;
  }
  if (isinf(v)) {
    check(strcmp(s, v > 0 ? "+Inf" : "-Inf") == 0);
    return;
  }
  double back = strtod(s, NULL);
  check(memcmp(&back, &v, sizeof v) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint64_t bits = 0;
  for (size_t k = 0; k < 8 && k < size; k++) {
    bits |= (uint64_t)data[k] << (8 * k);
  }
  double v;
  memcpy(&v, &bits, sizeof v);
  int eprec = size > 8 ? data[8] % 32 : 6;

  char buf[RT_FLOAT_MAX];
  const char fmts[] = {'e', 'f', 'g'};
  for (int i = 0; i < 3; i++) {
    size_t n = rt_float_format(buf, v, fmts[i]);
    check(n < (fmts[i] == 'f' ? RT_FLOAT_MAX : RT_FLOAT_SHORT));
    check_reads_back(buf, n, v);
  }
  size_t n = rt_float_format_json(buf, v);
  check(n < RT_FLOAT_SHORT);
  check_reads_back(buf, n, v);
  n = rt_float_format_g(buf, v, eprec);
  check(n < (size_t)RT_FLOAT_SHORT + (size_t)eprec);
  check_reads_back(buf, n, v);

  if (!isfinite(v) || v == 0) {
    return 0;
  }
  char d[17];
  int x;
  int nd = rt_float_shortest(v, d, &x);
  check(nd >= 1 && nd <= 17 && d[0] != '0' && d[nd - 1] != '0');
  if (nd > 1) {
    /* the (nd-1)-digit decimals nearest |v| each side are the rounded one and its neighbours */
    double a = fabs(v);
    char e[64];
    snprintf(e, sizeof e, "%.*e", nd - 2, a);
    uint64_t m = 0;
    for (const char *p = e; *p && *p != 'e'; p++) {
      if (*p >= '0' && *p <= '9') {
        m = m * 10 + (uint64_t)(*p - '0');
      }
    }
    int ex = atoi(strchr(e, 'e') + 1) - (nd - 2);
    for (int delta = -1; delta <= 1; delta++) {
      char s[64];
      snprintf(s, sizeof s, "%llue%d", (unsigned long long)(m + (uint64_t)(int64_t)delta), ex);
      check(strtod(s, NULL) != a);
    }
  }
  return 0;
}
