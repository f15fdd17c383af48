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

#include <stdint.h>

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

#endif
