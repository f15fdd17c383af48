/* ing_int.h - the ingester's private types: tenant heads, series, index. Not for other modules. */
#ifndef RT_ING_INT_H
#define RT_ING_INT_H

#include <pthread.h>
#include <rocksdb/c.h>
#include <stdatomic.h>

#include "common/buf.h"
#include "common/chunk.h"
#include "common/labels.h"
#include "ingester/ingester.h"

/* ------------------------------------------------------------------ slab (bump) memory */

/* Memory that lives as long as its tenant: interned strings, label arrays, series structs.
 * Never freed piecemeal (series are not deleted while the ingester runs). */
typedef struct ing_slab {
  struct ing_slab_block *blocks;
  size_t bytes;
} ing_slab;

void *ing_slab_alloc(ing_slab *s, size_t n);
void ing_slab_free_all(ing_slab *s);

/* ------------------------------------------------------------------ pointer-keyed map */

/* Open-addressing map from a pointer (an interned string) to a pointer. */
typedef struct ing_pmap {
  const void **keys;
  void **vals;
  size_t cap; /* power of two, or 0 */
  size_t n;
} ing_pmap;

void *ing_pmap_get(const ing_pmap *m, const void *key);
rt_err ing_pmap_put(ing_pmap *m, const void *key, void *val);
void ing_pmap_fini(ing_pmap *m);

/* ------------------------------------------------------------------ string interning */

typedef struct ing_intern {
  const char **slots; /* open addressing, NULL = empty */
  size_t cap, n;
} ing_intern;

/* Returns the interned copy of s[0..len) (allocated from slab), or NULL on OOM. */
const char *ing_intern_str(ing_intern *in, ing_slab *slab, const char *s, size_t len);
/* Returns the interned copy or NULL when s was never interned. */
const char *ing_intern_find(const ing_intern *in, const char *s, size_t len);
void ing_intern_fini(ing_intern *in);

/* ------------------------------------------------------------------ series */

typedef struct ing_sample {
  int64_t t;
  double v;
} ing_sample;

typedef struct ing_series {
  uint64_t hash;            /* rt_series_hash(tenant, labels): shards */
  uint64_t key_hi;          /* high half of the series key (ing_series_keys) */
  rt_label *labels;         /* slab; strings interned */
  uint32_t ref;
  uint16_t nlabels;
  bool persisted;           /* series definition is in the series CF */
  bool chk_empty;           /* push check state: no sample yet (see chk_batch) */
  rt_xor_appender head;     /* open chunk */
  int64_t first_t, last_t;  /* oldest / newest sample ever (INT64_MAX / INT64_MIN: none) */
  double last_v;            /* value at last_t */
  int64_t flushed_first_t, flushed_last_t; /* same, over closed chunks only */
  double flushed_last_v;
  uint64_t cur_seq;         /* WAL position of the last applied sample: (seq, idx) */
  uint32_t cur_idx;
  uint32_t nchunks;         /* closed chunks written so far (the chunk key's number) */
  uint64_t flushed_seq;     /* see ing_format.h */
  uint32_t flushed_idx;
  uint64_t unflushed_seq;   /* WAL seq of the oldest sample not in a closed chunk; 0: none */
  ing_sample *ooo;          /* out-of-order buffer, sorted by t (rt_alloc'd) */
  uint32_t nooo, ooo_cap;
  /* push check state, valid while chk_batch is the current push's sequence */
  uint64_t chk_batch;
  int64_t chk_t;
  double chk_v;
} ing_series;

typedef struct ing_postings {
  const char *value; /* interned */
  uint32_t *refs;    /* sorted ascending (refs are assigned in increasing order) */
  uint32_t n, cap;
} ing_postings;

typedef struct ing_lname {
  const char *name; /* interned */
  ing_pmap values;  /* interned value -> ing_postings* */
} ing_lname;

typedef struct ing_meta {
  uint8_t type;
  char *help, *unit; /* rt_alloc'd */
} ing_meta;

typedef struct ing_slot {
  uint64_t lo; /* low half of the key */
  ing_series *s;
} ing_slot;

/* One tenant's head. The rwlock guards everything below it. */
typedef struct ing_tenant {
  char *name;
  uint32_t id;
  pthread_rwlock_t lock;
  ing_slab slab;
  ing_intern strings;
  struct ing_slot *slots; /* open addressing by the low half of the series key */
  size_t nslots;          /* power of two; at most half full */
  ing_series **by_ref;  /* index = ref (1-based; 0 unused) */
  uint32_t nseries;     /* refs 1..nseries are in use */
  size_t by_ref_cap;
  ing_pmap names;       /* interned name -> ing_lname* */
  ing_pmap meta;        /* interned family name -> ing_meta* */
  int64_t max_t;        /* newest sample of any series (for the OOO window) */
  int64_t min_t;        /* oldest sample of any series */
  /* per-tenant counters (atomics: read without the lock) */
  struct rt_gauge *m_active;            /* ringtail_ingester_active_series{user}, or NULL */
  atomic_uint_least64_t samples_total;  /* samples appended */
  uint64_t rate_prev;                   /* samples_total at the last rate update (bg thread) */
  uint64_t rate_at_ns;
  _Atomic double ingestion_rate;        /* samples/s over the last maintenance interval */
} ing_tenant;

struct ing_ingester {
  ing_config cfg;
  char *data_dir;
  bool readonly;
  rocksdb_t *db;
  rocksdb_options_t *opts;
  rocksdb_options_t *cf_opts[6];
  rocksdb_block_based_table_options_t *chunk_table;
  rocksdb_column_family_handle_t *cf[6];
  rocksdb_writeoptions_t *wopts;
  rocksdb_readoptions_t *ropts;

  pthread_rwlock_t tenants_lock;
  ing_tenant **tenants;
  size_t ntenants, tenants_cap;
  uint32_t next_tenant_id;

  atomic_uint_least64_t next_seq;
  atomic_int_least64_t max_span; /* largest chunk span written (ms) */
  atomic_int broken;             /* rt_err after a storage failure that left state unsure */
  atomic_uint_least64_t wal_truncated; /* WAL records below this were deleted */

  /* group commit */
  pthread_mutex_t sync_mu;
  pthread_cond_t sync_cv;
  uint64_t write_tickets, synced_tickets;
  bool syncing;

  /* background maintenance */
  pthread_t bg;
  bool bg_running, bg_stop;
  pthread_mutex_t bg_mu;
  pthread_cond_t bg_cv;

  void *rpc; /* rt_rpc_server * */
  struct ing_ha *ha; /* the HA-pair arbiter, created with the RPC service */
  struct ing_tombs *tombs; /* series deletion tombstones (ing_delete.c); NULL: none yet */

  /* the ring, for the local share of the global series limits (ing_set_ring) */
  pthread_mutex_t ring_mu;
  struct ring *ring;
  char *ring_id;

  /* stats */
  atomic_uint_least64_t st_samples, st_rejected[5], st_chunks, st_series;
};

enum { ING_CF_DEFAULT = 0, ING_CF_SERIES, ING_CF_POSTINGS, ING_CF_CHUNKS, ING_CF_WAL, ING_CF_META };

/* ------------------------------------------------------------------ head (ing_head.c) */

rt_err ing_tenant_create(const char *name, uint32_t id, ing_tenant **out);
void ing_tenant_destroy(ing_tenant *t);
/* Finds the series with these (sorted) labels; NULL if absent. Caller holds t->lock. */
/* The 128-bit series key: XXH3-128 over tenant, 0xff, name, 0xff, value, 0xff, ... (the bytes
 * rt_series_hash hashes). Two label sets are the same series when their keys are equal (I10).
 * Also returns rt_series_hash() through *shard when shard != NULL. */
typedef struct ing_key {
  uint64_t lo, hi;
} ing_key;
rt_err ing_series_keys(const char *tenant, const rt_label *labels, size_t n, rt_arena *arena,
                       ing_key *key, uint64_t *shard);
ing_series *ing_series_find(ing_tenant *t, ing_key key);
/* The first series whose key has the same low half (a likely match; for prefetching), or NULL. */
static inline const ing_series *ing_series_peek(const ing_tenant *t, ing_key key) {
  size_t mask = t->nslots - 1;
  for (size_t i = key.lo & mask;; i = (i + 1) & mask) {
    if (!t->slots[i].s || t->slots[i].lo == key.lo) {
      return t->slots[i].s;
    }
  }
}
/* Adds a series with the next ref (or `ref` when nonzero, during recovery), interning the
 * labels and indexing it. Caller holds t->lock for writing. */
rt_err ing_series_add(ing_tenant *t, ing_key key, uint64_t hash, const rt_label *labels, size_t n,
                      uint32_t ref, ing_series **out);
/* Sorted refs of series matching all matchers (arena). Caller holds t->lock (read). */
rt_err ing_head_postings(ing_tenant *t, const rt_matcher *ms, size_t nms, rt_arena *arena,
                         uint32_t **out, size_t *nout);
/* Runs one maintenance round now: closes idle head chunks, truncates the WAL (I2). */
rt_err ing_maintain(ing_ingester *ing);
/* Counts the records in the wal column family (tests). */
rt_err ing_wal_count(ing_ingester *ing, uint64_t *n);

/* The decimal chunk encoding (ing_dchunk.c, used on disk only). Encodes n samples into b
 * (reset first); false when some value is not a short decimal (then keep XOR). */
bool ing_dchunk_encode(const ing_sample *s, size_t n, rt_buf *b);
uint16_t ing_dchunk_count(const uint8_t *p, size_t len);
/* Decodes all samples into out (cap >= count); false on corrupt data. */
bool ing_dchunk_decode(const uint8_t *p, size_t len, ing_sample *out, size_t cap);

/* Decodes a ringtail.PushRequest into the arena (ing_decode.c): the same tree as
 * ringtail__push_request__unpack() minus exemplars and histograms. RT_EPROTO on malformed
 * input, RT_ENOMEM when the arena cannot grow. */
rt_err ing_decode_push(const uint8_t *data, size_t len, rt_arena *arena, Ringtail__PushRequest **out);

/* Shared by ingester.c and ing_limits.c. */
/* Returns the tenant, creating and persisting it if `create`; NULL with *err set otherwise. */
ing_tenant *ing_tenant_get(ing_ingester *ing, const char *name, bool create, rt_err *err);
/* Compiles protobuf matchers (rt_calloc'd; free with ing_matchers_free). */
rt_err ing_matchers(Prometheus__LabelMatcher **pm, size_t n, rt_matcher **out);
void ing_matchers_free(rt_matcher *ms, size_t n);

/* ------------------------------------------------------------------ limits (ing_limits.c) */

/* The series limits of one push, computed once, when it first creates a series. */
typedef struct ing_series_limits {
  bool loaded;
  int64_t user_global, user_local;     /* max_global_series_per_user and this ingester's share */
  int64_t metric_global, metric_local; /* max_global_series_per_metric and the share */
} ing_series_limits;

void ing_series_limits_load(ing_ingester *ing, const char *tenant, ing_series_limits *out);
/* Whether a new series with these (sorted) labels may be created in t (write lock held).
 * Returns NULL when it may, or the message naming the limit (written to buf). */
const char *ing_series_limit_check(const ing_tenant *t, const ing_series_limits *l,
                                   const rt_label *ls, size_t n, char *buf, size_t cap);
/* Sets the tenant's per-tenant gauge, if any, to its series count. */
void ing_tenant_gauge_init(ing_ingester *ing, ing_tenant *t);
void ing_tenant_gauge_update(ing_tenant *t);
/* Recomputes every tenant's ingestion rate (background thread). */
void ing_update_rates(ing_ingester *ing);

/* Appends `{a="b", ...}` to buf (at most cap bytes, NUL-terminated). */
void ing_labels_format(const rt_label *l, size_t n, char *buf, size_t cap);

/* ingester.c helpers shared with ing_delete.c */
ing_tenant *ing_tenant_get(ing_ingester *ing, const char *name, bool create, rt_err *err);
rt_err ing_matchers(Prometheus__LabelMatcher **pm, size_t n, rt_matcher **out);
void ing_matchers_free(rt_matcher *ms, size_t n);

/* Series deletion (ing_delete.c): persistent tombstones in the meta column family, one key per
 * deletion of one series ("d", u32 BE tenant id, u32 BE series ref, u64 BE sequence -> u8 'D',
 * i64 BE mint, i64 BE maxt), loaded at open, kept merged per series in memory. */
rt_err ing_tomb_load(ing_ingester *ing);
void ing_tomb_free(ing_ingester *ing);
/* True when tombstones hide every sample s has inside [mint, maxt]. Caller holds the tenant's
 * lock (read). */
bool ing_tomb_hides(ing_ingester *ing, uint32_t tenant_id, const ing_series *s, int64_t mint,
                    int64_t maxt);
/* Removes the tombstoned samples from a select answer's chunks (re-encoded from arena). */
rt_err ing_tomb_filter(ing_ingester *ing, uint32_t tenant_id, uint32_t ref,
                       Ringtail__SeriesChunks *sc, rt_arena *arena);

#endif
