/* ring_int.h - private to ring/: the descriptor's layout. */
#ifndef RT_RING_INT_H
#define RT_RING_INT_H

#include "ring/ring.h"

/* Limits on what a peer may send (checked by ring_desc_decode_merge). */
#define RING_MAX_STR 1024

typedef struct ring_entry {
  char *id;          /* owned, strings never NULL */
  char *zone;
  char *http_addr;
  char *rpc_addr;
  char *gossip_addr;
  ring_state state;
  int64_t heartbeat_ms;
  int64_t registered_ms;
  uint32_t *tokens;  /* owned, sorted, unique; NULL when ntokens == 0 (always for a
                        non-ingester role) */
  uint32_t ntokens;
  char *role;        /* "" = ingester */
} ring_entry;

struct ring_desc {
  ring_entry *v;     /* sorted by id */
  size_t n;
  size_t cap;
};

/* Views an entry as a ring_instance (borrowing the entry). */
void ring_entry_view(const ring_entry *e, ring_instance *out);

/* Sets the version reported by ring_snapshot_version() (before the snapshot is published). */
void ring_snapshot_set_version(ring_snapshot *s, uint64_t v);

#endif
