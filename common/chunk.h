/* chunk.h - Gorilla (XOR) chunk encoding of (int64 ms, double) samples.
 *
 * Format (all written by rt_xor_*; see docs/formats.md):
 *   u16 big-endian sample count, then a bit stream: first timestamp as signed varint, first
 *   value as 64 raw bits, second timestamp delta as unsigned varint, then per sample a
 *   delta-of-delta timestamp code and an XOR value code as in the Gorilla paper (the same
 *   bit layout as Prometheus' XOR chunk).
 * Chunks are immutable once closed; closed chunks travel to queriers as stored. */
#ifndef RT_CHUNK_H
#define RT_CHUNK_H

#include "common/rt.h"

#define RT_CHUNK_ENC_XOR 1

/* A chunk being appended to. The bytes are owned by the appender. */
typedef struct rt_xor_appender {
  uint8_t *buf;      /* owned; grows */
  size_t cap;
  size_t nbits;      /* bits written */
  uint16_t count;
  int64_t t, tdelta;
  double v;
  uint8_t leading, trailing;
  int64_t mint, maxt;
} rt_xor_appender;

void rt_xor_appender_init(rt_xor_appender *a);
void rt_xor_appender_fini(rt_xor_appender *a);
/* Appends one sample (timestamps must not decrease; the caller checks order).
 * Returns RT_ENOMEM if the buffer could not grow (the appender is unchanged then). */
rt_err rt_xor_append(rt_xor_appender *a, int64_t t, double v);
/* The chunk bytes so far (borrowed; valid until the next append). */
const uint8_t *rt_xor_bytes(const rt_xor_appender *a, size_t *len);

/* Iterates an encoded chunk; the bytes are borrowed for the iterator's life. */
typedef struct rt_chunk_iter {
  const uint8_t *data;
  size_t len;
  size_t pos;        /* bit position */
  uint16_t total, read;
  int64_t t, tdelta;
  double v;
  uint8_t leading, trailing;
  bool err;
} rt_chunk_iter;

void rt_chunk_iter_init(rt_chunk_iter *it, const uint8_t *data, size_t len);
/* Next sample; false at the end or on corrupt data (then rt_chunk_iter_err() is true). */
bool rt_chunk_iter_next(rt_chunk_iter *it, int64_t *t, double *v);
static inline bool rt_chunk_iter_err(const rt_chunk_iter *it) { return it->err; }
uint16_t rt_chunk_count(const uint8_t *data, size_t len);

#endif
