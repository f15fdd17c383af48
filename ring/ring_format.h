/* ring_format.h - the token file an instance keeps in its data directory.
 *
 * Layout (all integers little-endian):
 *
 *   offset  size        field
 *   0       4           magic    RING_TOKENS_MAGIC ("RTTK" read as bytes)
 *   4       2           version  RING_TOKENS_VERSION
 *   6       2           flags    0 (readers reject other values)
 *   8       4           count    number of tokens, 1..RING_MAX_TOKENS_PER_INSTANCE
 *   12      4 * count   tokens   sorted ascending, unique
 *   12+4c   4           checksum XXH32 (seed 0) of every byte before it
 *
 * The file is written to "<path>.tmp", fsynced, renamed over <path>, and the directory is
 * fsynced, so a crash leaves either the old file or the new one. */
#ifndef RT_RING_FORMAT_H
#define RT_RING_FORMAT_H

#include <stdint.h>

#define RING_TOKENS_MAGIC 0x4b545452u /* bytes 'R','T','T','K' */
#define RING_TOKENS_VERSION 1u
#define RING_TOKENS_FILE "ring.tokens"

typedef struct ring_tokens_header {
  uint32_t magic;
  uint16_t version;
  uint16_t flags;
  uint32_t count;
} ring_tokens_header;

_Static_assert(sizeof(ring_tokens_header) == 12, "token file header is 12 bytes");

#define RING_TOKENS_FILE_SIZE(count) (sizeof(ring_tokens_header) + 4u * (uint64_t)(count) + 4u)

#endif
