/* chunk_test.c - Gorilla chunk round trips. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/chunk.h"

static uint64_t bits_of(double v) {
  uint64_t b;
  memcpy(&b, &v, 8);
  return b;
}

static double from_bits(uint64_t b) {
  double v;
  memcpy(&v, &b, 8);
  return v;
}

/* Encodes n samples, decodes them, checks every timestamp and value bit-exactly. */
static void roundtrip(const int64_t *ts, const double *vs, size_t n) {
  rt_xor_appender a;
  rt_xor_appender_init(&a);
  for (size_t i = 0; i < n; i++) {
    cr_assert_eq(rt_xor_append(&a, ts[i], vs[i]), RT_OK);
  }
  size_t len;
  const uint8_t *b = rt_xor_bytes(&a, &len);
  cr_assert_eq(rt_chunk_count(b, len), n);
  rt_chunk_iter it;
  rt_chunk_iter_init(&it, b, len);
  int64_t t;
  double v;
  size_t i = 0;
  while (rt_chunk_iter_next(&it, &t, &v)) {
    cr_assert_lt(i, n);
    cr_assert_eq(t, ts[i], "sample %zu: ts %lld != %lld", i, (long long)t, (long long)ts[i]);
    cr_assert_eq(bits_of(v), bits_of(vs[i]), "sample %zu: value bits %llx != %llx", i,
                 (unsigned long long)bits_of(v), (unsigned long long)bits_of(vs[i]));
    i++;
  }
  cr_assert_not(rt_chunk_iter_err(&it));
  cr_assert_eq(i, n);
  if (n > 0) {
    cr_assert_eq(a.mint, ts[0]);
    cr_assert_eq(a.maxt, ts[n - 1]);
  }
  rt_xor_appender_fini(&a);
}

Test(chunk, empty) {
  rt_xor_appender a;
  rt_xor_appender_init(&a);
  size_t len;
  const uint8_t *b = rt_xor_bytes(&a, &len);
  cr_assert_eq(rt_chunk_count(b, len), 0);
  rt_chunk_iter it;
  rt_chunk_iter_init(&it, b, len);
  int64_t t;
  double v;
  cr_assert_not(rt_chunk_iter_next(&it, &t, &v));
  cr_assert_not(rt_chunk_iter_err(&it));
  rt_xor_appender_fini(&a);
}

Test(chunk, regular) {
  int64_t ts[120];
  double vs[120];
  for (int i = 0; i < 120; i++) {
    ts[i] = 1700000000000 + i * 15000;
    vs[i] = i < 60 ? 1.0 : 1000.5 + i;
  }
  roundtrip(ts, vs, 120);
  /* a regular, constant series costs about 2 bits per sample */
  rt_xor_appender a;
  rt_xor_appender_init(&a);
  for (int i = 0; i < 120; i++) {
    rt_xor_append(&a, 1700000000000 + i * 15000, 42.0);
  }
  size_t len;
  rt_xor_bytes(&a, &len);
  cr_assert_lt(len, 60, "len %zu", len);
  rt_xor_appender_fini(&a);
}

Test(chunk, special_values) {
  double vs[] = {NAN, -NAN, INFINITY, -INFINITY, from_bits(RT_STALE_NAN_BITS), 0.0, -0.0,
                 from_bits(0x7ff8000000000001ULL), from_bits(0xfff0000000000abcULL), 1e308,
                 -1e-308, 4.9e-324, from_bits(RT_STALE_NAN_BITS), from_bits(RT_STALE_NAN_BITS), 1};
  int64_t ts[RT_ARRAY_LEN(vs)];
  for (size_t i = 0; i < RT_ARRAY_LEN(vs); i++) {
    ts[i] = 1000 + (int64_t)i * 1000;
  }
  roundtrip(ts, vs, RT_ARRAY_LEN(vs));
}

Test(chunk, stale_marker_bit_exact) {
  int64_t ts[] = {5, 10, 15};
  double vs[] = {1.5, from_bits(RT_STALE_NAN_BITS), 1.5};
  roundtrip(ts, vs, 3);
}

Test(chunk, equal_timestamps) {
  int64_t ts[] = {7, 7, 7, 7, 8, 8, 100, 100};
  double vs[] = {1, 2, 3, 3, 3, 4, 5, 5};
  roundtrip(ts, vs, RT_ARRAY_LEN(ts));
}

Test(chunk, irregular_timestamps) {
  int64_t ts[] = {0, 1, 8193, 8194, 100000, 100001, 700000, 700001, 5000000000LL,
                  5000000001LL, 5000008193LL, 5000016386LL, 5000081921LL, 5000081922LL};
  double vs[RT_ARRAY_LEN(ts)];
  for (size_t i = 0; i < RT_ARRAY_LEN(ts); i++) {
    vs[i] = (double)i * 1.25;
  }
  roundtrip(ts, vs, RT_ARRAY_LEN(ts));
}

Test(chunk, dod_bucket_edges) {
  /* delta-of-delta values exactly at each bucket boundary */
  int64_t dods[] = {8192, -8191, 8193, -8192, 65536, -65535, 65537, -65536,
                    524288, -524287, 524289, -524288, 0, 1, -1};
  int64_t ts[RT_ARRAY_LEN(dods) + 2];
  double vs[RT_ARRAY_LEN(dods) + 2];
  ts[0] = 1000000000;
  ts[1] = ts[0] + 2000000;
  int64_t delta = 2000000;
  for (size_t i = 0; i < RT_ARRAY_LEN(dods); i++) {
    delta += dods[i];
    ts[i + 2] = ts[i + 1] + delta;
  }
  for (size_t i = 0; i < RT_ARRAY_LEN(ts); i++) {
    vs[i] = (double)i;
  }
  roundtrip(ts, vs, RT_ARRAY_LEN(ts));
}

Test(chunk, int64_extremes) {
  int64_t ts1[] = {INT64_MIN, INT64_MIN, 0, INT64_MAX, INT64_MAX};
  double vs1[] = {1, 2, 3, 4, 5};
  roundtrip(ts1, vs1, RT_ARRAY_LEN(ts1));
  int64_t ts2[] = {INT64_MIN, INT64_MAX};
  roundtrip(ts2, vs1, 2);
  int64_t ts3[] = {INT64_MIN, INT64_MIN + 1, INT64_MAX - 1, INT64_MAX};
  roundtrip(ts3, vs1, 4);
  int64_t ts4[] = {-1, 0, 1, INT64_MAX};
  roundtrip(ts4, vs1, 4);
  int64_t ts5[] = {INT64_MIN};
  roundtrip(ts5, vs1, 1);
}

Test(chunk, single_and_two) {
  int64_t ts[] = {-5, 12345};
  double vs[] = {3.25, -7};
  roundtrip(ts, vs, 1);
  roundtrip(ts, vs, 2);
}

Test(chunk, randomized) {
  srand(12345);
  for (int round = 0; round < 300; round++) {
    size_t n = 1 + (size_t)(rand() % 400);
    int64_t *ts = malloc(n * sizeof *ts);
    double *vs = malloc(n * sizeof *vs);
    int64_t t = (int64_t)rand() * (rand() % 2 ? 1 : -1) * 1000;
    int mode = rand() % 4;
    for (size_t i = 0; i < n; i++) {
      ts[i] = t;
      uint64_t step;
      switch (mode) {
      case 0: step = 15000; break;
      case 1: step = (uint64_t)(15000 + rand() % 50 - 25); break;
      case 2: step = rand() % 3 == 0 ? 0 : (uint64_t)rand() * (uint64_t)(rand() % 1000); break;
      default: step = ((uint64_t)rand() << 33) ^ ((uint64_t)rand() << 2); break;
      }
      if ((uint64_t)INT64_MAX - (uint64_t)t < step) {
        step = 0; /* stay below INT64_MAX: timestamps never decrease */
      }
      t = (int64_t)((uint64_t)t + step);
      switch (rand() % 6) {
      case 0: vs[i] = i ? vs[i - 1] : 0; break;
      case 1: vs[i] = (double)(rand() % 100); break;
      case 2: vs[i] = (double)rand() / 7.0; break;
      case 3: vs[i] = from_bits(((uint64_t)rand() << 40) ^ ((uint64_t)rand() << 20) ^ (uint64_t)rand()); break;
      case 4: vs[i] = from_bits(RT_STALE_NAN_BITS); break;
      default: vs[i] = i ? vs[i - 1] + 1 : 1; break;
      }
    }
    roundtrip(ts, vs, n);
    free(ts);
    free(vs);
  }
}

Test(chunk, corrupt_input) {
  rt_xor_appender a;
  rt_xor_appender_init(&a);
  for (int i = 0; i < 50; i++) {
    rt_xor_append(&a, i * 1000 + (i % 3), i * 1.5);
  }
  size_t len;
  const uint8_t *b = rt_xor_bytes(&a, &len);
  /* truncated chunks end with an error, never read past the end */
  for (size_t cut = 0; cut < len; cut++) {
    uint8_t *copy = malloc(cut ? cut : 1);
    memcpy(copy, b, cut);
    rt_chunk_iter it;
    rt_chunk_iter_init(&it, copy, cut);
    int64_t t;
    double v;
    int n = 0;
    while (rt_chunk_iter_next(&it, &t, &v)) {
      n++;
    }
    if (cut >= 2) {
      cr_assert(rt_chunk_iter_err(&it) || n == 50, "cut %zu n %d", cut, n);
    }
    free(copy);
  }
  /* random garbage never crashes */
  srand(7);
  for (int r = 0; r < 2000; r++) {
    uint8_t g[64];
    size_t gl = (size_t)(rand() % 64);
    for (size_t i = 0; i < gl; i++) {
      g[i] = (uint8_t)rand();
    }
    rt_chunk_iter it;
    rt_chunk_iter_init(&it, g, gl);
    int64_t t;
    double v;
    while (rt_chunk_iter_next(&it, &t, &v)) {
    }
  }
  rt_xor_appender_fini(&a);
}
