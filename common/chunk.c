/* chunk.c - Gorilla (XOR) chunk encoding, bit-compatible with Prometheus' XOR chunk body.
 *
 * Layout: u16 big-endian sample count, then a bit stream (MSB first):
 *   sample 0: timestamp as zig-zag varint, value as 64 raw bits;
 *   sample 1: timestamp delta as unsigned varint, value as an XOR code;
 *   sample n: delta-of-delta code, value XOR code.
 * Delta-of-delta codes: '0' (dod 0); '10' + 14 bits, '110' + 17 bits, '1110' + 20 bits
 * (two's complement, range -(2^(n-1)-1) .. 2^(n-1)); '1111' + 64 bits.
 * XOR codes: '0' (same value); '10' + meaningful bits in the previous window; '11' + 5 bits
 * leading zeros + 6 bits significant-bit count (64 written as 0) + the significant bits.
 *
 * All timestamp arithmetic is modulo 2^64 (unsigned), so deltas between int64 extremes that
 * overflow int64 still round-trip: such a delta-of-delta is written with the 64-bit escape and
 * the decoder's wrapping addition restores the exact timestamp. */
#include "common/chunk.h"

#include <string.h>

#define XOR_HDR 2
/* Worst-case bits one append can write: 10-byte varint + 64 bits, or 4 + 64 dod bits and
 * 2 + 5 + 6 + 64 value bits. Reserve generously. */
#define XOR_MAX_APPEND_BITS 224

static void put_bits(uint8_t *buf, size_t *nbits, uint64_t v, unsigned n) {
  size_t pos = *nbits;
  while (n > 0) {
    size_t byte = pos >> 3;
    unsigned used = (unsigned)(pos & 7);
    unsigned room = 8 - used;
    unsigned take = n < room ? n : room;
    uint8_t chunk = (uint8_t)((v >> (n - take)) & ((1u << take) - 1));
    buf[byte] |= (uint8_t)(chunk << (room - take));
    pos += take;
    n -= take;
  }
  *nbits = pos;
}

static void put_uvarint(uint8_t *buf, size_t *nbits, uint64_t x) {
  while (x >= 0x80) {
    put_bits(buf, nbits, (x & 0x7f) | 0x80, 8);
    x >>= 7;
  }
  put_bits(buf, nbits, x, 8);
}

static void put_varint(uint8_t *buf, size_t *nbits, int64_t x) {
  uint64_t ux = (uint64_t)x << 1;
  if (x < 0) {
    ux = ~ux;
  }
  put_uvarint(buf, nbits, ux);
}

void rt_xor_appender_init(rt_xor_appender *a) {
  memset(a, 0, sizeof *a);
  a->leading = 0xff;
}

void rt_xor_appender_fini(rt_xor_appender *a) {
  rt_free(a->buf, a->cap);
  memset(a, 0, sizeof *a);
  a->leading = 0xff;
}

static rt_err xor_reserve(rt_xor_appender *a) {
  size_t need = XOR_HDR + (a->nbits + XOR_MAX_APPEND_BITS + 7) / 8;
  if (need <= a->cap) {
    return RT_OK;
  }
  size_t ncap = a->cap ? a->cap : 32;
  while (ncap < need) {
    ncap *= 2;
  }
  uint8_t *nb = rt_realloc(a->buf, a->cap, ncap);
  if (!nb) {
    return RT_ENOMEM;
  }
  memset(nb + a->cap, 0, ncap - a->cap);
  a->buf = nb;
  a->cap = ncap;
  return RT_OK;
}

static void put_xor_value(rt_xor_appender *a, uint8_t *bs, size_t *nb, double v) {
  uint64_t cur, prev;
  memcpy(&cur, &v, 8);
  memcpy(&prev, &a->v, 8);
  uint64_t x = cur ^ prev;
  if (x == 0) {
    put_bits(bs, nb, 0, 1);
    return;
  }
  put_bits(bs, nb, 1, 1);
  unsigned lead = (unsigned)__builtin_clzll(x);
  unsigned trail = (unsigned)__builtin_ctzll(x);
  if (lead >= 32) {
    lead = 31; /* 5 bits */
  }
  if (a->leading != 0xff && lead >= a->leading && trail >= a->trailing) {
    put_bits(bs, nb, 0, 1);
    unsigned sig = 64 - a->leading - a->trailing;
    put_bits(bs, nb, x >> a->trailing, sig);
    return;
  }
  a->leading = (uint8_t)lead;
  a->trailing = (uint8_t)trail;
  unsigned sig = 64 - lead - trail;
  put_bits(bs, nb, 1, 1);
  put_bits(bs, nb, lead, 5);
  put_bits(bs, nb, sig & 63, 6); /* 64 is written as 0 */
  put_bits(bs, nb, x >> trail, sig);
}

rt_err rt_xor_append(rt_xor_appender *a, int64_t t, double v) {
  if (a->count == UINT16_MAX) {
    return RT_ELIMIT;
  }
  rt_err err = xor_reserve(a);
  if (err != RT_OK) {
    return err;
  }
  uint8_t *bs = a->buf + XOR_HDR;
  size_t nb = a->nbits;
  if (a->count == 0) {
    put_varint(bs, &nb, t);
    uint64_t bits;
    memcpy(&bits, &v, 8);
    put_bits(bs, &nb, bits, 64);
    a->mint = t;
    a->tdelta = 0;
  } else if (a->count == 1) {
    uint64_t delta = (uint64_t)t - (uint64_t)a->t;
    put_uvarint(bs, &nb, delta);
    put_xor_value(a, bs, &nb, v);
    a->tdelta = (int64_t)delta;
  } else {
    uint64_t delta = (uint64_t)t - (uint64_t)a->t;
    int64_t dod = (int64_t)(delta - (uint64_t)a->tdelta);
    if (dod == 0) {
      put_bits(bs, &nb, 0, 1);
    } else if (dod >= -8191 && dod <= 8192) {
      put_bits(bs, &nb, 0x2, 2);
      put_bits(bs, &nb, (uint64_t)dod, 14);
    } else if (dod >= -65535 && dod <= 65536) {
      put_bits(bs, &nb, 0x6, 3);
      put_bits(bs, &nb, (uint64_t)dod, 17);
    } else if (dod >= -524287 && dod <= 524288) {
      put_bits(bs, &nb, 0xe, 4);
      put_bits(bs, &nb, (uint64_t)dod, 20);
    } else {
      put_bits(bs, &nb, 0xf, 4);
      put_bits(bs, &nb, (uint64_t)dod, 64);
    }
    put_xor_value(a, bs, &nb, v);
    a->tdelta = (int64_t)delta;
  }
  a->nbits = nb;
  a->t = t;
  a->v = v;
  a->maxt = t;
  a->count++;
  a->buf[0] = (uint8_t)(a->count >> 8);
  a->buf[1] = (uint8_t)a->count;
  return RT_OK;
}

const uint8_t *rt_xor_bytes(const rt_xor_appender *a, size_t *len) {
  static const uint8_t empty[XOR_HDR] = {0, 0};
  if (a->count == 0 || !a->buf) {
    *len = XOR_HDR;
    return empty;
  }
  *len = XOR_HDR + (a->nbits + 7) / 8;
  return a->buf;
}

/* --- reading --- */

uint16_t rt_chunk_count(const uint8_t *data, size_t len) {
  if (len < XOR_HDR) {
    return 0;
  }
  return (uint16_t)((data[0] << 8) | data[1]);
}

void rt_chunk_iter_init(rt_chunk_iter *it, const uint8_t *data, size_t len) {
  memset(it, 0, sizeof *it);
  it->leading = 0xff;
  if (len < XOR_HDR) {
    it->err = len != 0;
    it->data = data;
    it->len = 0;
    return;
  }
  it->total = rt_chunk_count(data, len);
  it->data = data + XOR_HDR;
  it->len = len - XOR_HDR;
}

static bool get_bits(rt_chunk_iter *it, unsigned n, uint64_t *out) {
  if (n == 0) {
    *out = 0;
    return true;
  }
  if (it->pos + n > it->len * 8) {
    it->err = true;
    return false;
  }
  uint64_t v = 0;
  size_t pos = it->pos;
  while (n > 0) {
    unsigned used = (unsigned)(pos & 7);
    unsigned room = 8 - used;
    unsigned take = n < room ? n : room;
    uint8_t byte = it->data[pos >> 3];
    uint64_t bits = (uint64_t)((byte >> (room - take)) & ((1u << take) - 1));
    v = (take == 64 ? 0 : v << take) | bits;
    pos += take;
    n -= take;
  }
  it->pos = pos;
  *out = v;
  return true;
}

static bool get_uvarint(rt_chunk_iter *it, uint64_t *out) {
  uint64_t x = 0;
  unsigned s = 0;
  for (int i = 0; i < 10; i++) {
    uint64_t b;
    if (!get_bits(it, 8, &b)) {
      return false;
    }
    if (b < 0x80) {
      if (i == 9 && b > 1) {
        it->err = true;
        return false;
      }
      *out = x | (b << s);
      return true;
    }
    x |= (b & 0x7f) << s;
    s += 7;
  }
  it->err = true;
  return false;
}

static bool get_xor_value(rt_chunk_iter *it) {
  uint64_t bit;
  if (!get_bits(it, 1, &bit)) {
    return false;
  }
  if (bit == 0) {
    return true; /* same value */
  }
  if (!get_bits(it, 1, &bit)) {
    return false;
  }
  if (bit == 1) {
    uint64_t lead, sig;
    if (!get_bits(it, 5, &lead) || !get_bits(it, 6, &sig)) {
      return false;
    }
    if (sig == 0) {
      sig = 64;
    }
    if (lead + sig > 64) {
      it->err = true;
      return false;
    }
    it->leading = (uint8_t)lead;
    it->trailing = (uint8_t)(64 - lead - sig);
  } else if (it->leading == 0xff) {
    it->err = true; /* window reuse before any window was set */
    return false;
  }
  unsigned sig = 64u - it->leading - it->trailing;
  uint64_t bits;
  if (!get_bits(it, sig, &bits)) {
    return false;
  }
  uint64_t prev;
  memcpy(&prev, &it->v, 8);
  prev ^= bits << it->trailing;
  memcpy(&it->v, &prev, 8);
  return true;
}

bool rt_chunk_iter_next(rt_chunk_iter *it, int64_t *t, double *v) {
  if (it->err || it->read >= it->total) {
    return false;
  }
  if (it->read == 0) {
    uint64_t ux, bits;
    if (!get_uvarint(it, &ux)) {
      return false;
    }
    int64_t x = (int64_t)(ux >> 1);
    if (ux & 1) {
      x = ~x;
    }
    if (!get_bits(it, 64, &bits)) {
      return false;
    }
    it->t = x;
    memcpy(&it->v, &bits, 8);
  } else if (it->read == 1) {
    uint64_t delta;
    if (!get_uvarint(it, &delta)) {
      return false;
    }
    if (!get_xor_value(it)) {
      return false;
    }
    it->tdelta = (int64_t)delta;
    it->t = (int64_t)((uint64_t)it->t + delta);
  } else {
    unsigned nbits = 0;
    int prefix = 0;
    for (; prefix < 4; prefix++) {
      uint64_t b;
      if (!get_bits(it, 1, &b)) {
        return false;
      }
      if (b == 0) {
        break;
      }
    }
    switch (prefix) {
    case 0: nbits = 0; break;
    case 1: nbits = 14; break;
    case 2: nbits = 17; break;
    case 3: nbits = 20; break;
    default: nbits = 64; break;
    }
    uint64_t dod = 0;
    if (nbits) {
      if (!get_bits(it, nbits, &dod)) {
        return false;
      }
      if (nbits < 64 && dod > (1ull << (nbits - 1))) {
        dod -= 1ull << nbits; /* sign: wraps to the negative value modulo 2^64 */
      }
    }
    if (!get_xor_value(it)) {
      return false;
    }
    uint64_t delta = (uint64_t)it->tdelta + dod;
    it->tdelta = (int64_t)delta;
    it->t = (int64_t)((uint64_t)it->t + delta);
  }
  it->read++;
  *t = it->t;
  *v = it->v;
  return true;
}
