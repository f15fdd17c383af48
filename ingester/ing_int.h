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
/* Removes key (absent: no-op). */
void ing_pmap_del(ing_pmap *m, const void *key);
void ing_pmap_fini(ing_pmap *m);

/* ------------------------------------------------------------------ string interning */

typedef struct ing_intern {
  const char **slots; /* open addressing, NULL = empty */
  size_t cap, n;
} ing_intern;

/* Returns the interned copy of s[0..len) with one more reference (release with
 * ing_intern_release), or NULL on OOM. Each string is its own allocation, freed with its last
 * reference. */
const char *ing_intern_str(ing_intern *in, const char *s, size_t len);
/* Drops one reference of an interned string; the last one frees it. */
void ing_intern_release(ing_intern *in, const char *s);
/* Returns the interned copy (no reference taken) or NULL when s is not interned. */
const char *ing_intern_find(const ing_intern *in, const char *s, size_t len);
/* Frees every string, whatever its references. */
void ing_intern_fini(ing_intern *in);

/* ------------------------------------------------------------------ series */

typedef struct ing_sample {
  int64_t t;
  double v;
} ing_sample;

typedef struct ing_series {
  uint64_t hash;            /* rt_series_hash(tenant, labels): shards */
  uint64_t key_hi;          /* high half of the series key (ing_series_keys) */
  uint64_t key_lo;          /* low half: its slot in the table (needed to remove it) */
  rt_label *labels;         /* allocated with the series; strings interned */
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
  const char *value; /* interned (the series hold its references) */
  uint32_t *refs;    /* sorted ascending (refs are assigned in increasing order) */
  uint32_t n, cap;
} ing_postings;

typedef struct ing_lname {
  const char *name; /* interned (the series hold its references) */
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
  ing_intern strings;
  struct ing_slot *slots; /* open addressing by the low half of the series key */
  size_t nslots;          /* power of two; at most half full */
  ing_series **refs;    /* open addressing by a hash of the ref: the head's series by ref */
  size_t refs_cap;      /* power of two; at most half full */
  uint64_t refs_gen;    /* bumped when `refs` is rebuilt (a scan across lock holds restarts) */
  uint32_t nseries;     /* series in the head */
  uint32_t max_ref;     /* highest ref ever given (head or disk); the next series gets max_ref + 1 */
  ing_pmap names;       /* interned name -> ing_lname* */
  ing_pmap meta;        /* interned family name -> ing_meta* */
  int64_t max_t;        /* newest sample of any series, head or disk (the data-time clock) */
  int64_t min_t;        /* oldest sample of any series */
  int64_t disk_min_t, disk_max_t; /* oldest / newest sample of series only on disk (I11);
                                     INT64_MAX / INT64_MIN: none */
  uint64_t last_write_ns;         /* monotonic time of the last push that appended samples */
  int64_t ret_done;               /* the retention cutoff last applied (ing_apply_retention,
                                     under maint_mu); INT64_MIN: none yet */
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
  pthread_mutex_t maint_mu; /* one maintenance round (or ing_flush) at a time */
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
  atomic_uint_least64_t st_samples, st_rejected[5], st_chunks, st_series, st_evicted;
  atomic_uint_least64_t st_ret_series, st_ret_chunks;
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
/* Adds a series with ref max_ref + 1 (or `ref` when nonzero, during recovery), interning the
 * labels and indexing it; on error nothing of it is left. Caller holds t->lock for writing. */
rt_err ing_series_add(ing_tenant *t, ing_key key, uint64_t hash, const rt_label *labels, size_t n,
                      uint32_t ref, ing_series **out);
/* The head series with this ref, or NULL. Caller holds t->lock. */
ing_series *ing_series_by_ref(const ing_tenant *t, uint32_t ref);
/* Removes s from the head: its slot, ref entry, postings, string references, chunk buffers and
 * itself are freed. Caller holds t->lock for writing; s is dead afterwards. */
void ing_series_remove(ing_tenant *t, ing_series *s);
/* Iterating the head: for (size_t i = 0; i < t->refs_cap; i++) if (t->refs[i]) ... */
/* Sorted ref lists: sort and drop repeats (returns the new length); a &= b, a -= b in place
 * (return the new length of a). */
int ing_u32_cmp(const void *a, const void *b);
size_t ing_refs_sort_unique(uint32_t *r, size_t n);
size_t ing_intersect(uint32_t *a, size_t an, const uint32_t *b, size_t bn);
size_t ing_subtract(uint32_t *a, size_t an, const uint32_t *b, size_t bn);
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


/* ------------------------------------------------------------------ the ingester's files
 *
 * ingester.c      tenants, ing_create / ing_destroy, stats
 * ing_records.c   records in RocksDB: series and chunk values, the chunk scan, WAL records
 * ing_push.c      push, chunk closing, group commit
 * ing_query.c     select, label names and values, metadata
 * ing_open.c      opening the database, loading meta and series, WAL replay
 * ing_maint.c     background maintenance: idle chunks, WAL truncation, flush; idle series
 * ing_retention.c retention: deleting what is older than the compactor's cutoff
 * ing_dump.c      the offline dump
 */

#define ING_LOG "ingester"

/* ------------------------------------------------------------------ records (ing_records.c) */

/* Turns a RocksDB error into RT_EIO and a log line, and frees it. RT_OK when err is NULL. */
rt_err ing_dberr(char *err, const char *what);

/* A series record decoded (labels in the arena). */
typedef struct ing_series_rec {
  rt_label *labels; /* arena */
  size_t n;
  uint64_t flushed_seq;
  uint32_t flushed_idx, nchunks;
  int64_t first_t, last_t;
  double last_v;
} ing_series_rec;

/* Writes the series value of s into b (reset first). */
void ing_series_value(rt_buf *b, const ing_series *s);
/* The same from a decoded record. */
void ing_series_rec_value(rt_buf *b, const ing_series_rec *r);
/* Decodes a series value; labels allocated from arena. RT_EPROTO when corrupt. */
rt_err ing_series_decode(const uint8_t *v, size_t len, rt_arena *arena, ing_series_rec *out);
/* Puts the definition of s (series record and one postings key per label) into wb. */
void ing_put_series_def(ing_ingester *ing, ing_tenant *t, const ing_series *s,
                        rocksdb_writebatch_t *wb, rt_buf *tmp);

/* One closed chunk as stored: encoding RT_CHUNK_ENC_XOR or ING_CHUNK_ENC_DECIMAL; data and key
 * are borrowed from the iterator until it moves. */
typedef struct ing_chunk_rec {
  int64_t mint, maxt;
  uint8_t enc;
  const uint8_t *data;
  size_t len;
  const uint8_t *key; /* ING_CHUNK_KEY_LEN bytes */
} ing_chunk_rec;
/* Writes the chunk value of an XOR chunk into out (reset first): the decimal encoding when it
 * is smaller. */
void ing_chunk_value(rt_buf *out, const uint8_t *bytes, size_t len, int64_t mint, int64_t maxt);
/* Every sample of c into *out (rt_alloc'd; caller frees with rt_free(*out, *n * sizeof **out);
 * NULL when *n is 0). RT_EPROTO when the chunk does not decode, RT_ENOMEM. */
rt_err ing_chunk_decode(const ing_chunk_rec *c, ing_sample **out, size_t *n);

/* The one way to read the closed chunks of a series: seek to (tenant, ref, mint - max_span)
 * (I6), stop at the end of the series' keys or at a chunk starting after maxt, skip (with a
 * warning) corrupt values and chunks ending before mint. Borrows it (a chunks CF iterator,
 * which the caller destroys); it stays usable for the next series. */
typedef struct ing_chunk_scan {
  rocksdb_iterator_t *it;
  uint8_t prefix[8];
  int64_t mint, maxt;
  uint32_t tenant, ref;
  bool stepped;
} ing_chunk_scan;
void ing_chunk_scan_start(ing_chunk_scan *cs, rocksdb_iterator_t *it, int64_t max_span,
                          uint32_t tenant, uint32_t ref, int64_t mint, int64_t maxt);
/* The next chunk overlapping [mint, maxt]; false at the end (then check ing_chunk_scan_error). */
bool ing_chunk_scan_next(ing_chunk_scan *cs, ing_chunk_rec *out);
rt_err ing_chunk_scan_error(const ing_chunk_scan *cs);

/* Calls fn for every sample of the WAL record `seq` (tenant id and ref as logged); a corrupt
 * record or tail is skipped with a warning. Returns fn's first error. */
typedef rt_err (*ing_wal_raw_fn)(void *ctx, uint32_t tenant, uint32_t ref, int64_t ts, double v,
                                 uint64_t seq);
rt_err ing_wal_parse(uint64_t seq, const uint8_t *v, size_t vl, ing_wal_raw_fn fn, void *ctx);
/* The same for the samples whose tenant and series are in the head (others are skipped with a
 * warning). */
typedef rt_err (*ing_wal_fn)(void *ctx, ing_tenant *t, ing_series *s, int64_t ts, double v,
                             uint64_t seq);
rt_err ing_wal_record(ing_ingester *ing, uint64_t seq, const uint8_t *v, size_t vl, ing_wal_fn fn,
                      void *ctx);

/* ------------------------------------------------------------------ tenants (ingester.c) */

/* Returns the tenant, creating and persisting it if `create`; NULL with *err set otherwise. */
ing_tenant *ing_tenant_get(ing_ingester *ing, const char *name, bool create, rt_err *err);
ing_tenant *ing_tenant_by_id(ing_ingester *ing, uint32_t id);
/* Adds a tenant known from the meta CF (open, under no other lock). */
rt_err ing_tenant_register(ing_ingester *ing, const char *name, uint32_t id, ing_tenant **out);
/* An ingester with its configuration checked and its locks set up, no database yet. */
ing_ingester *ing_alloc(const ing_config *cfg);
/* Frees what ing_alloc and ing_open_db built (tenants, tombstones, database). */
void ing_free(ing_ingester *ing);

/* ------------------------------------------------------------------ push (ing_push.c) */

/* Applies one accepted, logged sample (live or replay, I4); closed chunks go into wb. Caller
 * holds t->lock for writing. */
rt_err ing_apply(ing_ingester *ing, ing_tenant *t, ing_series *s, int64_t ts, double v,
                 uint64_t seq, rocksdb_writebatch_t *wb, rt_buf *tmp);
/* Writes the open chunk and the OOO buffer of s as closed chunks into wb with the new flush
 * position (I3). Caller holds t->lock for writing. */
rt_err ing_close_series(ing_ingester *ing, ing_tenant *t, ing_series *s, rocksdb_writebatch_t *wb,
                        rt_buf *tmp);
/* Stores metadata md in the head; with persist, also its record into wb. */
rt_err ing_meta_update(ing_ingester *ing, ing_tenant *t, const Prometheus__MetricMetadata *md,
                       rocksdb_writebatch_t *wb, rt_buf *tmp, bool persist);

/* ------------------------------------------------------------------ query (ing_query.c) */

/* Compiles protobuf matchers (rt_calloc'd; free with ing_matchers_free). */
rt_err ing_matchers(Prometheus__LabelMatcher **pm, size_t n, rt_matcher **out);
void ing_matchers_free(rt_matcher *ms, size_t n);

/* A series only on disk (I11), as ing_disk_select finds it. */
typedef struct ing_disk_series {
  uint32_t ref;
  uint16_t nlabels;
  rt_label *labels; /* arena */
  int64_t first_t, last_t;
} ing_disk_series;
/* The series of tenant t that are not in `head` (sorted refs: those the head answers for) and
 * match every matcher with samples in [mint, maxt], read from the postings and series column
 * families through ro (a snapshot). Sorted by ref; allocated from arena. Called without the
 * tenant's lock. */
rt_err ing_disk_select(ing_ingester *ing, const ing_tenant *t, rocksdb_readoptions_t *ro,
                       const rt_matcher *ms, size_t nms, int64_t mint, int64_t maxt,
                       const uint32_t *head, size_t nhead, rt_arena *arena,
                       ing_disk_series **out, size_t *nout);

/* ------------------------------------------------------------------ open (ing_open.c) */

/* Opens <data_dir>/db with its column families and checks the format version. */
rt_err ing_open_db(ing_ingester *ing, const char *data_dir, bool readonly);
void ing_close_db(ing_ingester *ing);
/* Loads tenants, metadata and the largest chunk span from the meta CF. */
rt_err ing_load_meta(ing_ingester *ing);
/* Loads the series records into the head, except those idle before the stop (I11), which stay
 * on disk; *max_flushed = the largest flush sequence. */
rt_err ing_load_series(ing_ingester *ing, uint64_t *max_flushed);
/* Replays the WAL after each series' flush position; *last_seq = the last record's sequence. */
rt_err ing_replay(ing_ingester *ing, uint64_t *last_seq);

/* ------------------------------------------------------------------ maintenance (ing_maint.c) */

/* Maintenance scans take a tenant's lock for ING_SCAN_STEP slots of its ref table at a time, so
 * that pushes are not held up. Callers hold ing->maint_mu: no series leaves the head while a
 * scan is between two lock holds; pushes may add series (into free slots, or into a rebuilt
 * table, which refs_gen tells). */
#define ING_SCAN_STEP 4096

/* Deletes the WAL records every series has flushed past (I2). */
rt_err ing_truncate_wal(ing_ingester *ing);
/* Writes wb (when not empty) and clears it; a failure leaves head and chunks out of step:
 * broken (I9). */
rt_err ing_write_maint(ing_ingester *ing, rocksdb_writebatch_t *wb, const char *what);
/* Removes from t's head the series whose newest sample is older than `before`, or, with
 * quiet_ns != 0, every series as long as the tenant has had no push since quiet_ns (monotonic,
 * checked at each lock hold). Their open chunks are written first (I11); they stay on disk.
 * *evicted counts them. Caller holds maint_mu. */
rt_err ing_evict(ing_ingester *ing, ing_tenant *t, int64_t before, uint64_t quiet_ns,
                 size_t *evicted);
/* The data time before which a series of t is idle: the tenant's newest sample minus idle_ms,
 * or minus the tenant's out-of-order window when that is longer (I11). INT64_MIN: none is
 * (idle_ms 0, or no sample yet). */
int64_t ing_idle_before(ing_ingester *ing, const ing_tenant *t, int64_t idle_ms);
/* The background thread (ing_create starts it, ing_destroy stops it). */
void *ing_bg_main(void *arg);

/* Series deletion (ing_delete.c): persistent tombstones in the meta column family, one key per
 * deletion of one series ("d", u32 BE tenant id, u32 BE series ref, u64 BE sequence -> u8 'D',
 * i64 BE mint, i64 BE maxt), loaded at open, kept merged per series in memory. */
rt_err ing_tomb_load(ing_ingester *ing);
void ing_tomb_free(ing_ingester *ing);
/* True when tombstones hide every sample the series (ref, its oldest and newest sample) has
 * inside [mint, maxt]. */
bool ing_tomb_hides(ing_ingester *ing, uint32_t tenant_id, uint32_t ref, int64_t first_t,
                    int64_t last_t, int64_t mint, int64_t maxt);
/* Retention (ing_retention.c): tombstones that hide nothing still stored. Puts into wb the
 * deletion of the tombstone records of series `ref` of tenant_id whose interval ends before
 * `before` and returns their count; ing_tomb_forget then drops the same intervals from memory,
 * once wb is written (a series without intervals left leaves the table). */
size_t ing_tomb_trim(ing_ingester *ing, uint32_t tenant_id, uint32_t ref, int64_t before,
                     rocksdb_writebatch_t *wb);
void ing_tomb_forget(ing_ingester *ing, uint32_t tenant_id, uint32_t ref, int64_t before);
/* True when series `ref` of tenant_id has tombstones. */
bool ing_tomb_any(ing_ingester *ing, uint32_t tenant_id, uint32_t ref);
/* Removes the tombstoned samples from a select answer's chunks (re-encoded from arena). */
rt_err ing_tomb_filter(ing_ingester *ing, uint32_t tenant_id, uint32_t ref,
                       Ringtail__SeriesChunks *sc, rt_arena *arena);

#endif
