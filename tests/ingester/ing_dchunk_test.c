/* ing_dchunk_test.c - the on-disk decimal chunk encoding: round trips and fallbacks. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ingester/ing_int.h"

static uint64_t bits(double v) {
  uint64_t b;
  memcpy(&b, &v, 8);
  return b;
}

/* Encodes; when it encodes, decoding must give back every sample bit-exactly. */
static bool roundtrip(const ing_sample *s, size_t n, size_t *len) {
  rt_buf b = RT_BUF_INIT;
  bool ok = ing_dchunk_encode(s, n, &b);
  if (ok) {
    cr_assert_eq(ing_dchunk_count((const uint8_t *)b.data, b.len), n);
    ing_sample *out = calloc(n, sizeof *out);
    cr_assert(ing_dchunk_decode((const uint8_t *)b.data, b.len, out, n));
    for (size_t i = 0; i < n; i++) {
      cr_assert_eq(out[i].t, s[i].t, "sample %zu", i);
      cr_assert_eq(bits(out[i].v), bits(s[i].v), "sample %zu: %.17g != %.17g", i, out[i].v, s[i].v);
    }
    /* truncated input is rejected, never read past the end */
    for (size_t cut = 0; cut < b.len; cut++) {
      ing_dchunk_decode((const uint8_t *)b.data, cut, out, n);
    }
    free(out);
    *len = b.len;
  }
  rt_buf_free(&b);
  return ok;
}

Test(dchunk, decimals) {
  ing_sample s[120];
  static const double vals[] = {0.000145291, 12345.67, 42, -3.5, 0, 1e-9, 1700000000, 0.1, 99.99};
  for (size_t k = 0; k < RT_ARRAY_LEN(vals); k++) {
    for (int i = 0; i < 120; i++) {
      s[i].t = 1700000000000 + i * 1000;
      s[i].v = vals[k] + (i % 3) * (k == 0 ? 0.000001 : 1);
    }
    size_t len;
    cr_assert(roundtrip(s, 120, &len), "value %.17g", vals[k]);
  }
}

Test(dchunk, constant_and_linear_are_tiny) {
  ing_sample s[120];
  for (int i = 0; i < 120; i++) {
    s[i].t = 1000 + i * 15000;
    s[i].v = 7.25;
  }
  size_t len;
  cr_assert(roundtrip(s, 120, &len));
  cr_assert_lt(len, 50, "%zu", len);
  for (int i = 0; i < 120; i++) {
    s[i].v = 100 + i * 2.5;
  }
  cr_assert(roundtrip(s, 120, &len));
  cr_assert_lt(len, 60, "%zu", len);
}

Test(dchunk, noisy_decimals_beat_xor) {
  ing_sample s[120];
  srand(3);
  for (int i = 0; i < 120; i++) {
    s[i].t = 1000 + i * 1000;
    s[i].v = (double)(rand() % 1000000) / 1e9; /* like scrape durations */
  }
  size_t len;
  cr_assert(roundtrip(s, 120, &len));
  cr_assert_lt(len, 120 * 4, "%zu", len);
}

Test(dchunk, fallbacks) {
  ing_sample s[4] = {{1, 1}, {2, 2}, {3, 3}, {4, 4}};
  size_t len;
  double specials[] = {NAN, INFINITY, -INFINITY, -0.0, 1e300, 1.0 / 3.0, 0x1p-60};
  for (size_t k = 0; k < RT_ARRAY_LEN(specials); k++) {
    s[2].v = specials[k];
    cr_assert_not(roundtrip(s, 4, &len), "%.17g should not encode", specials[k]);
  }
  uint64_t stale = RT_STALE_NAN_BITS;
  memcpy(&s[2].v, &stale, 8);
  cr_assert_not(roundtrip(s, 4, &len));
  cr_assert_not(roundtrip(s, 0, &len));
}

Test(dchunk, timestamps_and_deltas) {
  ing_sample s[8] = {{INT64_MIN, 1}, {INT64_MIN, -1}, {0, 1e15}, {1, -1e15}, {8193, 0},
                     {100000, 5},     {INT64_MAX - 1, 5}, {INT64_MAX, 4}};
  size_t len;
  cr_assert(roundtrip(s, 8, &len));
}

Test(dchunk, randomized) {
  srand(11);
  for (int r = 0; r < 500; r++) {
    size_t n = 1 + (size_t)(rand() % 300);
    ing_sample *s = calloc(n, sizeof *s);
    int e = rand() % 10;
    int64_t t = (int64_t)rand() * 1000;
    for (size_t i = 0; i < n; i++) {
      t += rand() % 4 == 0 ? rand() % 100000 : 15000;
      s[i].t = t;
      long long k = (long long)(rand() % 2000001) - 1000000;
      if (rand() % 5 == 0 && i > 0) {
        s[i].v = s[i - 1].v;
      } else {
        s[i].v = (double)k / pow(10, e);
      }
    }
    size_t len;
    roundtrip(s, n, &len); /* asserts exactness whenever it encodes */
    free(s);
  }
}
