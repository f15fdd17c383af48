/* floatfmt.c - shortest round-trip float formatting, Ryu-style (Ulf Adams, PLDI 2018).
 *
 * A double v = m2 * 2^e2 rounds back from any decimal strictly inside (or, when m2 is even, on
 * the edge of) the interval between the midpoints to its neighbours, (v - lo/2, v + hi/2). With
 * everything scaled by 4 the three points are integers times 2^e2: mm = 4*m2 - 1 - mmshift, mv =
 * 4*m2, mp = 4*m2 + 2 (mmshift is 0 only on a power of two above the smallest normal, where the
 * lower neighbour is half as far). We compute floor(p * 2^e2 / 10^e10) for the three points at
 * once, with e10 picked so that the results have at most 17+2 digits: a 64x128-bit product with
 * a 125-bit approximation of 2^k/5^q (or 5^i/2^k) from floatfmt_tables.h, shown exact for every
 * double by the Ryu paper. Then digits are dropped from the right while the upper and lower
 * bound still differ: what is left is the shortest length, and the rounded middle value (ties to
 * even) is the closest decimal of that length. The rare case where a bound or the middle is
 * exactly a decimal (trailing zeros in the dropped part) is tracked so inclusive bounds and exact
 * ties are right. Go's strconv uses the same definition (shortest, then closest, ties to even),
 * so the digits are the ones Go prints. */
#include "common/floatfmt.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/floatfmt_tables.h"

typedef unsigned __int128 u128;

/* floor(log10(2^e)) for 0 <= e <= 1650 */
static inline int log10_pow2(int e) { return (int)(((uint32_t)e * 78913) >> 18); }
/* floor(log10(5^e)) for 0 <= e <= 2620 */
static inline int log10_pow5(int e) { return (int)(((uint32_t)e * 732923) >> 20); }
/* bit length of 5^e (1 for e = 0) for 0 <= e <= 3528 */
static inline int pow5_bits(int e) { return (int)((((uint32_t)e * 1217359) >> 19) + 1); }

static inline bool multiple_of_pow5(uint64_t v, int p) {
  int n = 0;
  while (v % 5 == 0) { /* v != 0 here: the callers pass 4*m2 +- small */
    v /= 5;
    n++;
  }
  return n >= p;
}

static inline bool multiple_of_pow2(uint64_t v, int p) { return (v & ((1ull << p) - 1)) == 0; }

/* floor(m * mul / 2^j) for j >= 64, mul = {low, high} of a 128-bit value */
static inline uint64_t mul_shift(uint64_t m, const uint64_t mul[2], int j) {
  u128 lo = (u128)m * mul[0];
  u128 hi = (u128)m * mul[1];
  return (uint64_t)(((lo >> 64) + hi) >> (j - 64));
}

static inline int decimal_len(uint64_t v) {
  int n = 1;
  for (uint64_t p = 10; n < 20 && v >= p; p *= 10) {
    n++;
  }
  return n;
}

/* The shortest decimal of finite v != 0 as output * 10^*e10. */
static uint64_t shortest(double v, int *e10out) {
  uint64_t bits;
  memcpy(&bits, &v, sizeof bits);
  uint64_t mant = bits & ((1ull << 52) - 1);
  int bexp = (int)((bits >> 52) & 0x7ff);

  uint64_t m2;
  int e2;
  if (bexp == 0) {
    m2 = mant;
    e2 = 1 - 1023 - 52 - 2;
  } else {
    m2 = (1ull << 52) | mant;
    e2 = bexp - 1023 - 52 - 2;
    /* small integers: exactly m2 >> shift, no neighbour is nearer a shorter decimal */
    int sh = 1023 + 52 - bexp;
    if (sh >= 0 && sh <= 52 && multiple_of_pow2(m2, sh)) {
      uint64_t out = m2 >> sh;
      int e10 = 0;
      while (out % 10 == 0) {
        out /= 10;
        e10++;
      }
      *e10out = e10;
      return out;
    }
  }
  bool accept_bounds = (m2 & 1) == 0;
  uint64_t mv = 4 * m2;
  uint32_t mmshift = mant != 0 || bexp <= 1;

  uint64_t vr, vp, vm;
  int e10;
  bool vm_zeros = false, vr_zeros = false;
  if (e2 >= 0) {
    int q = log10_pow2(e2) - (e2 > 3);
    e10 = q;
    int k = FF_POW5_BITS + pow5_bits(q) - 1;
    int i = -e2 + q + k;
    vr = mul_shift(mv, FF_POW5_INV[q], i);
    vp = mul_shift(mv + 2, FF_POW5_INV[q], i);
    vm = mul_shift(mv - 1 - mmshift, FF_POW5_INV[q], i);
    if (q <= 21) {
      /* at most one of mp, mv, mm is a multiple of 5 */
      if (mv % 5 == 0) {
        vr_zeros = multiple_of_pow5(mv, q);
      } else if (accept_bounds) {
        vm_zeros = multiple_of_pow5(mv - 1 - mmshift, q);
      } else {
        vp -= multiple_of_pow5(mv + 2, q);
      }
    }
  } else {
    int q = log10_pow5(-e2) - (-e2 > 1);
    e10 = q + e2;
    int i = -e2 - q;
    int k = pow5_bits(i) - FF_POW5_BITS;
    int j = q - k;
    vr = mul_shift(mv, FF_POW5[i], j);
    vp = mul_shift(mv + 2, FF_POW5[i], j);
    vm = mul_shift(mv - 1 - mmshift, FF_POW5[i], j);
    if (q <= 1) {
      /* mv has two trailing zero bits, mp one, mm one exactly when mmshift is 1 */
      vr_zeros = true;
      if (accept_bounds) {
        vm_zeros = mmshift == 1;
      } else {
        vp--;
      }
    } else if (q < 63) {
      vr_zeros = multiple_of_pow2(mv, q);
    }
  }

  int removed = 0;
  uint64_t out;
  if (vm_zeros || vr_zeros) {
    unsigned last = 0;
    while (vp / 10 > vm / 10) {
      vm_zeros &= vm % 10 == 0;
      vr_zeros &= last == 0;
      last = (unsigned)(vr % 10);
      vr /= 10;
      vp /= 10;
      vm /= 10;
      removed++;
    }
    if (vm_zeros) {
      while (vm % 10 == 0) {
        vr_zeros &= last == 0;
        last = (unsigned)(vr % 10);
        vr /= 10;
        vp /= 10;
        vm /= 10;
        removed++;
      }
    }
    if (vr_zeros && last == 5 && vr % 2 == 0) {
      last = 4; /* exactly ...5000: round half to even */
    }
    out = vr + ((vr == vm && (!accept_bounds || !vm_zeros)) || last >= 5);
  } else {
    bool up = false;
    if (vp / 100 > vm / 100) {
      up = vr % 100 >= 50;
      vr /= 100;
      vp /= 100;
      vm /= 100;
      removed += 2;
    }
    while (vp / 10 > vm / 10) {
      up = vr % 10 >= 5;
      vr /= 10;
      vp /= 10;
      vm /= 10;
      removed++;
    }
    out = vr + (vr == vm || up);
  }
  *e10out = e10 + removed;
  return out;
}

int rt_float_shortest(double v, char digits[17], int *exp10) {
  int e10;
  uint64_t out = shortest(v, &e10);
  int n = decimal_len(out);
  for (int i = n - 1; i >= 0; i--) {
    digits[i] = (char)('0' + out % 10);
    out /= 10;
  }
  *exp10 = e10 + n - 1;
  return n;
}

/* NaN, ±Inf; 0 when v is finite */
static size_t put_special(char *buf, double v) {
  const char *s = isnan(v) ? "NaN" : isinf(v) ? (v > 0 ? "+Inf" : "-Inf") : NULL;
  if (!s) {
    return 0;
  }
  size_t n = strlen(s);
  memcpy(buf, s, n + 1);
  return n;
}

/* d[.ddd]e±XX: Go's 'e' with every digit */
static char *put_e(char *o, const char *d, int nd, int x) {
  *o++ = d[0];
  if (nd > 1) {
    *o++ = '.';
    memcpy(o, d + 1, (size_t)nd - 1);
    o += nd - 1;
  }
  *o++ = 'e';
  *o++ = x < 0 ? '-' : '+';
  unsigned ax = (unsigned)(x < 0 ? -x : x);
  if (ax >= 100) {
    *o++ = (char)('0' + ax / 100);
    ax %= 100;
  }
  *o++ = (char)('0' + ax / 10);
  *o++ = (char)('0' + ax % 10);
  return o;
}

/* plain digits: Go's 'f' with every digit */
static char *put_f(char *o, const char *d, int nd, int x) {
  if (x < 0) {
    *o++ = '0';
    *o++ = '.';
    memset(o, '0', (size_t)(-x - 1));
    o += -x - 1;
    memcpy(o, d, (size_t)nd);
    return o + nd;
  }
  if (nd <= x + 1) {
    memcpy(o, d, (size_t)nd);
    o += nd;
    memset(o, '0', (size_t)(x + 1 - nd));
    return o + (x + 1 - nd);
  }
  memcpy(o, d, (size_t)x + 1);
  o += x + 1;
  *o++ = '.';
  memcpy(o, d + x + 1, (size_t)(nd - x - 1));
  return o + (nd - x - 1);
}

/* layout: 'e', 'f', or 'g' with the exponent form outside [-4, eprec) */
static size_t format(char *buf, double v, char fmt, int eprec) {
  size_t n = put_special(buf, v);
  if (n) {
    return n;
  }
  char *o = buf;
  if (signbit(v)) {
    *o++ = '-';
  }
  char d[17];
  int nd, x;
  if (v == 0) {
    d[0] = '0';
    nd = 1;
    x = 0;
  } else {
    nd = rt_float_shortest(v, d, &x);
  }
  if (fmt == 'g') {
    fmt = x < -4 || x >= eprec ? 'e' : 'f';
  }
  o = fmt == 'e' ? put_e(o, d, nd, x) : put_f(o, d, nd, x);
  *o = 0;
  return (size_t)(o - buf);
}

size_t rt_float_format(char *buf, double v, char fmt) { return format(buf, v, fmt, 6); }

size_t rt_float_format_g(char *buf, double v, int eprec) { return format(buf, v, 'g', eprec); }

size_t rt_float_format_json(char *buf, double v) {
  double a = fabs(v);
  return format(buf, v, a != 0 && (a < 1e-6 || a >= 1e21) ? 'e' : 'f', 0);
}

char *rt_float_format_prec(char *buf, size_t len, double v, int prec) {
  char tmp[8];
  size_t n = put_special(tmp, v);
  if (n) {
    snprintf(buf, len, "%s", tmp);
  } else {
    snprintf(buf, len, "%.*g", prec, v);
  }
  return buf;
}
