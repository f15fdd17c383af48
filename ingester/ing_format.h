/* ing_format.h - every record the ingester writes to RocksDB. Explicit widths, big-endian
 * keys (so that prefix scans follow tenant, series and time), a format byte on every value.
 *
 * One database under <data_dir>/db with column families:
 *
 *   meta      ING_META_VERSION_KEY "v"                 -> u32 BE ING_FORMAT_VERSION
 *             "t" + tenant name (raw bytes)            -> u32 BE tenant id (1, 2, ...)
 *             "m" + u32 BE tenant id + family name     -> metadata value (below)
 *             "s"                                      -> u64 BE largest span of any chunk (ms)
 *   series    u32 BE tenant id, u32 BE series ref      -> series value (below)
 *   postings  u32 BE tenant id, name, 0x00, value, 0x00, u32 BE series ref -> empty
 *   chunks    u32 BE tenant id, u32 BE series ref, u64 BE (chunk mint ^ 2^63),
 *             u32 BE chunk number within the series    -> chunk value (below)
 *   wal       u64 BE sequence                          -> WAL record (below)
 *
 * Values (varint = unsigned LEB128, zvarint = zig-zag LEB128, f64 = IEEE-754 bits as u64 BE):
 *
 *   series value:   u8 ING_SERIES_MAGIC, u8 ING_FORMAT_VERSION, varint nlabels,
 *                   nlabels x (varint len, name bytes, varint len, value bytes),
 *                   then the flush state: u64 flushed_seq, u32 flushed_idx, u32 nchunks,
 *                   i64 first_t, i64 last_t, f64 last_v (all BE).
 *                   flushed (seq, idx): every sample of this series from WAL records with
 *                   sequence < flushed_seq, and the first flushed_idx samples of this series in
 *                   record flushed_seq, are in closed chunks; none after that is.
 *                   first_t/last_t/last_v: oldest and newest sample time in closed chunks
 *                   (INT64_MAX/INT64_MIN when none) and the value at last_t.
 *   chunk value:    u8 (ING_FORMAT_VERSION << 4 | encoding), varint (maxt - mint), then
 *                   encoding RT_CHUNK_ENC_XOR (1): the chunk bytes exactly as common/chunk.h
 *                   writes them; encoding ING_CHUNK_ENC_DECIMAL (2): the decimal chunk of
 *                   ing_dchunk.c (u16 BE count, u8 exponent, bit stream). The smaller wins.
 *   WAL record:     u8 ING_WAL_MAGIC, u8 ING_FORMAT_VERSION, u32 BE tenant id, varint nseries,
 *                   nseries x (varint ref, varint nsamples, nsamples x (zvarint t - prev_t
 *                   (prev_t = 0 for the first), f64 value)).
 *                   Only accepted, non-duplicate samples are logged, in apply order.
 *   metadata value: u8 ING_META_MAGIC, u8 type, varint len, help, varint len, unit.
 *
 * Integrity: RocksDB checksums every block and log record; a WriteBatch is applied atomically.
 */
#ifndef RT_ING_FORMAT_H
#define RT_ING_FORMAT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/buf.h"

#define ING_FORMAT_VERSION 1
#define ING_SERIES_MAGIC 0x53 /* 'S' */
#define ING_WAL_MAGIC 0x57    /* 'W' */
#define ING_META_MAGIC 0x4d   /* 'M' */

#define ING_CHUNK_ENC_DECIMAL 2

#define ING_META_VERSION_KEY "v"
#define ING_META_TENANT_PREFIX 't'
#define ING_META_METADATA_PREFIX 'm'
#define ING_META_SPAN_KEY "s"

#define ING_SERIES_KEY_LEN 8
#define ING_CHUNK_KEY_LEN 20
#define ING_WAL_KEY_LEN 8
#define ING_SERIES_STATE_LEN (8 + 4 + 4 + 8 + 8 + 8)

static inline void ing_put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static inline void ing_put_u64(uint8_t *p, uint64_t v) {
  ing_put_u32(p, (uint32_t)(v >> 32));
  ing_put_u32(p + 4, (uint32_t)v);
}

static inline uint32_t ing_get_u32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t ing_get_u64(const uint8_t *p) {
  return ((uint64_t)ing_get_u32(p) << 32) | ing_get_u32(p + 4);
}

/* ------------------------------------------------------------------ encoders and a reader */

static inline void ing_put_uvarint(rt_buf *b, uint64_t x) {
  uint8_t tmp[10];
  size_t n = 0;
  while (x >= 0x80) {
    tmp[n++] = (uint8_t)(x | 0x80);
    x >>= 7;
  }
  tmp[n++] = (uint8_t)x;
  rt_buf_append(b, tmp, n);
}

static inline void ing_put_zvarint(rt_buf *b, int64_t x) {
  uint64_t ux = (uint64_t)x << 1;
  if (x < 0) {
    ux = ~ux;
  }
  ing_put_uvarint(b, ux);
}

static inline void ing_put_be64(rt_buf *b, uint64_t v) {
  uint8_t tmp[8];
  ing_put_u64(tmp, v);
  rt_buf_append(b, tmp, 8);
}

static inline void ing_put_be32(rt_buf *b, uint32_t v) {
  uint8_t tmp[4];
  ing_put_u32(tmp, v);
  rt_buf_append(b, tmp, 4);
}

static inline uint64_t ing_f64_bits(double v) {
  uint64_t b;
  memcpy(&b, &v, 8);
  return b;
}

static inline double ing_bits_f64(uint64_t b) {
  double v;
  memcpy(&v, &b, 8);
  return v;
}

/* A bounds-checked reader. */
typedef struct ing_rd {
  const uint8_t *p, *end;
  bool err;
} ing_rd;

static inline uint64_t ing_get_uvarint(ing_rd *r) {
  uint64_t x = 0;
  for (unsigned s = 0; s < 70; s += 7) {
    if (r->p >= r->end) {
      r->err = true;
      return 0;
    }
    uint8_t c = *r->p++;
    x |= (uint64_t)(c & 0x7f) << s;
    if (c < 0x80) {
      return x;
    }
  }
  r->err = true;
  return 0;
}

static inline int64_t ing_get_zvarint(ing_rd *r) {
  uint64_t ux = ing_get_uvarint(r);
  int64_t x = (int64_t)(ux >> 1);
  return (ux & 1) ? ~x : x;
}

static inline uint64_t ing_get_be64(ing_rd *r) {
  if (r->end - r->p < 8) {
    r->err = true;
    return 0;
  }
  uint64_t v = ing_get_u64(r->p);
  r->p += 8;
  return v;
}

static inline uint32_t ing_get_be32(ing_rd *r) {
  if (r->end - r->p < 4) {
    r->err = true;
    return 0;
  }
  uint32_t v = ing_get_u32(r->p);
  r->p += 4;
  return v;
}

static inline const uint8_t *ing_get_bytes(ing_rd *r, size_t n) {
  if ((size_t)(r->end - r->p) < n) {
    r->err = true;
    return NULL;
  }
  const uint8_t *p = r->p;
  r->p += n;
  return p;
}

/* ------------------------------------------------------------------ keys */

static inline void ing_series_key(uint8_t k[ING_SERIES_KEY_LEN], uint32_t tenant, uint32_t ref) {
  ing_put_u32(k, tenant);
  ing_put_u32(k + 4, ref);
}

static inline void ing_chunk_key(uint8_t k[ING_CHUNK_KEY_LEN], uint32_t tenant, uint32_t ref, int64_t mint,
                          uint32_t no) {
  ing_put_u32(k, tenant);
  ing_put_u32(k + 4, ref);
  ing_put_u64(k + 8, (uint64_t)mint ^ (1ull << 63));
  ing_put_u32(k + 16, no);
}

#endif
