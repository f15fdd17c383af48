/* ing_dchunk.c - the "decimal" chunk encoding used on disk for closed chunks whose values are
 * all short decimals (what exporters print: 0.000145291, 12345.67, 42). Such values cost 30 to
 * 60 bits each as Gorilla XOR codes, because the binary mantissa of a decimal fraction looks
 * random; as scaled integers k = v * 10^e they cost a few bits of delta.
 *
 * Body (after the chunk value's format byte, see ing_format.h):
 *   u16 BE sample count, u8 exponent e (0..18), then a bit stream (MSB first):
 *   timestamps exactly as the XOR chunk (zig-zag varint, unsigned varint delta, then the
 *   delta-of-delta codes '0' / '10'+14 / '110'+17 / '1110'+20 / '1111'+64 bits) interleaved with
 *   values: the first k as 64 raw bits; then d = k - k_prev (mod 2^64):
 *   '0' when d equals the previous d (0 before the second value), else
 *   '1' + 6 bits (n - 1) + n bits of zigzag(d), n = bit length of zigzag(d) (1..64).
 * A value v decodes as (double)k / 10^e, which is exactly the double the encoder verified
 * (both operands are exact doubles and IEEE division rounds correctly).
 * Selects transcode these chunks to XOR, so readers only ever see XOR chunks. */
#include <math.h>
#include <string.h>

#include "common/chunk.h"
#include "ingester/ing_int.h"

static const double ing_p10[19] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8, 1e9,
                                   1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18};

#define ING_DEC_MAX_K 9007199254740992.0 /* 2^53 */

typedef struct ing_bw {
  rt_buf *b;
  size_t start; /* byte offset of the bit stream in b */
  size_t nbits;
} ing_bw;

static void bw_put(ing_bw *w, uint64_t v, unsigned n) {
  while (n > 0) {
    size_t byte = w->start + (w->nbits >> 3);
    if (byte >= w->b->len) {
      uint8_t z = 0;
      rt_buf_append(w->b, &z, 1);
      if (w->b->oom) {
        return;
      }
    }
    unsigned used = (unsigned)(w->nbits & 7), room = 8 - used, take = n < room ? n : room;
    uint8_t bits = (uint8_t)((v >> (n - take)) & ((1u << take) - 1));
    ((uint8_t *)w->b->data)[byte] |= (uint8_t)(bits << (room - take));
    w->nbits += take;
    n -= take;
  }
}

static void bw_uvarint(ing_bw *w, uint64_t x) {
  while (x >= 0x80) {
    bw_put(w, (x & 0x7f) | 0x80, 8);
    x >>= 7;
  }
  bw_put(w, x, 8);
}

static uint64_t zz(int64_t x) { return ((uint64_t)x << 1) ^ (uint64_t)(x >> 63); }
static int64_t unzz(uint64_t u) { return (int64_t)(u >> 1) ^ -(int64_t)(u & 1); }

static uint64_t dbits(double v) {
  uint64_t b;
  memcpy(&b, &v, 8);
  return b;
}

/* Smallest e with v == k / 10^e exactly, or -1. */
static int ing_dec_exp(double v) {
  if (!isfinite(v)) {
    return -1;
  }
  for (int e = 0; e <= 18; e++) {
    double x = v * ing_p10[e];
    if (fabs(x) >= ING_DEC_MAX_K) {
      return -1;
    }
    double k = (double)(int64_t)nearbyint(x); /* through int64: -0.0 must not pass */
    if (dbits(k / ing_p10[e]) == dbits(v)) {
      return e;
    }
  }
  return -1;
}

bool ing_dchunk_encode(const ing_sample *s, size_t n, rt_buf *b) {
  if (n == 0 || n > UINT16_MAX) {
    return false;
  }
  int e = 0;
  for (size_t i = 0; i < n; i++) {
    int ei = ing_dec_exp(s[i].v);
    if (ei < 0) {
      return false;
    }
    if (ei > e) {
      e = ei;
    }
  }
  rt_buf_reset(b);
  uint8_t hdr[3] = {(uint8_t)(n >> 8), (uint8_t)n, (uint8_t)e};
  rt_buf_append(b, hdr, 3);
  ing_bw w = {b, 3, 0};
  int64_t prev_k = 0;
  uint64_t prev_d = 0, prev_delta = 0;
  for (size_t i = 0; i < n; i++) {
    double x = nearbyint(s[i].v * ing_p10[e]);
    if (!(fabs(x) < ING_DEC_MAX_K)) {
      return false;
    }
    int64_t k = (int64_t)x;
    if (dbits((double)k / ing_p10[e]) != dbits(s[i].v)) {
      return false; /* the common exponent does not round-trip this value */
    }
    /* timestamp */
    if (i == 0) {
      bw_uvarint(&w, zz(s[i].t));
    } else {
      uint64_t delta = (uint64_t)s[i].t - (uint64_t)s[i - 1].t;
      if (i == 1) {
        bw_uvarint(&w, delta);
      } else {
        int64_t dod = (int64_t)(delta - prev_delta);
        if (dod == 0) {
          bw_put(&w, 0, 1);
        } else if (dod >= -8191 && dod <= 8192) {
          bw_put(&w, 0x2, 2);
          bw_put(&w, (uint64_t)dod, 14);
        } else if (dod >= -65535 && dod <= 65536) {
          bw_put(&w, 0x6, 3);
          bw_put(&w, (uint64_t)dod, 17);
        } else if (dod >= -524287 && dod <= 524288) {
          bw_put(&w, 0xe, 4);
          bw_put(&w, (uint64_t)dod, 20);
        } else {
          bw_put(&w, 0xf, 4);
          bw_put(&w, (uint64_t)dod, 64);
        }
      }
      prev_delta = delta;
    }
    /* value */
    if (i == 0) {
      bw_put(&w, (uint64_t)k, 64);
    } else {
      uint64_t d = (uint64_t)k - (uint64_t)prev_k;
      if (d == prev_d) {
        bw_put(&w, 0, 1);
      } else {
        uint64_t u = zz((int64_t)d);
        unsigned nb = u ? 64 - (unsigned)__builtin_clzll(u) : 1;
        bw_put(&w, 1, 1);
        bw_put(&w, nb - 1, 6);
        bw_put(&w, u, nb);
      }
      prev_d = d;
    }
    prev_k = k;
  }
  return !b->oom;
}

typedef struct ing_br {
  const uint8_t *p;
  size_t nbits, pos;
  bool err;
} ing_br;

static uint64_t br_get(ing_br *r, unsigned n) {
  if (n == 0) {
    return 0;
  }
  if (r->pos + n > r->nbits) {
    r->err = true;
    return 0;
  }
  uint64_t v = 0;
  while (n > 0) {
    unsigned used = (unsigned)(r->pos & 7), room = 8 - used, take = n < room ? n : room;
    uint8_t byte = r->p[r->pos >> 3];
    v = (v << take) | ((byte >> (room - take)) & ((1u << take) - 1));
    r->pos += take;
    n -= take;
  }
  return v;
}

static uint64_t br_uvarint(ing_br *r) {
  uint64_t x = 0;
  for (unsigned s = 0; s < 70 && !r->err; s += 7) {
    uint64_t c = br_get(r, 8);
    x |= (c & 0x7f) << s;
    if (c < 0x80) {
      return x;
    }
  }
  r->err = true;
  return 0;
}

uint16_t ing_dchunk_count(const uint8_t *p, size_t len) {
  return len < 3 ? 0 : (uint16_t)((p[0] << 8) | p[1]);
}

bool ing_dchunk_decode(const uint8_t *p, size_t len, ing_sample *out, size_t cap) {
  if (len < 3) {
    return false;
  }
  size_t n = ing_dchunk_count(p, len);
  int e = p[2];
  if (e > 18 || n > cap) {
    return false;
  }
  ing_br r = {p + 3, (len - 3) * 8, 0, false};
  int64_t t = 0, k = 0;
  uint64_t delta = 0, d = 0;
  for (size_t i = 0; i < n && !r.err; i++) {
    if (i == 0) {
      t = unzz(br_uvarint(&r));
    } else if (i == 1) {
      delta = br_uvarint(&r);
      t = (int64_t)((uint64_t)t + delta);
    } else {
      unsigned prefix = 0;
      while (prefix < 4 && br_get(&r, 1) == 1) {
        prefix++;
      }
      static const unsigned widths[5] = {0, 14, 17, 20, 64};
      unsigned nb = widths[prefix];
      uint64_t dod = br_get(&r, nb);
      if (nb && nb < 64 && dod > (1ull << (nb - 1))) {
        dod -= 1ull << nb;
      }
      delta += dod;
      t = (int64_t)((uint64_t)t + delta);
    }
    if (i == 0) {
      k = (int64_t)br_get(&r, 64);
    } else {
      if (br_get(&r, 1) == 1) {
        unsigned nb = (unsigned)br_get(&r, 6) + 1;
        d = (uint64_t)unzz(br_get(&r, nb));
      }
      k = (int64_t)((uint64_t)k + d);
    }
    out[i].t = t;
    out[i].v = (double)k / ing_p10[e];
  }
  return !r.err;
}
