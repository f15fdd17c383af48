/* ing_open.c - opening the database (column families and their options, the format version),
 * loading tenants, metadata and series records, and replaying the WAL (I3, I4). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/buf.h"
#include "common/limits.h"
#include "common/log.h"
#include "ingester/ing_format.h"
#include "ingester/ing_ha.h"
#include "ingester/ing_int.h"

static const char *const ing_cf_names[6] = {"default", "series", "postings", "chunks", "wal", "meta"};

/* ------------------------------------------------------------------ open / recovery */

static rt_err ing_mkdirs(const char *path) {
  char buf[4096];
  size_t n = strlen(path);
  if (n + 1 > sizeof buf) {
    return RT_EINVAL;
  }
  memcpy(buf, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] == '/' || buf[i] == 0) {
      char c = buf[i];
      buf[i] = 0;
      if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
        rt_error(ING_LOG, "cannot create directory", "path=\"%s\" err=\"%s\"", buf, strerror(errno));
        return RT_EIO;
      }
      buf[i] = c;
    }
  }
  return RT_OK;
}

rt_err ing_open_db(ing_ingester *ing, const char *data_dir, bool readonly) {
  char path[4096];
  if (snprintf(path, sizeof path, "%s/db", data_dir) >= (int)sizeof path) {
    return RT_EINVAL;
  }
  if (!readonly) {
    rt_err err = ing_mkdirs(path);
    if (err) {
      return err;
    }
  }
  ing->opts = rocksdb_options_create();
  rocksdb_options_set_create_if_missing(ing->opts, !readonly);
  rocksdb_options_set_create_missing_column_families(ing->opts, !readonly);
  rocksdb_options_set_max_background_jobs(ing->opts, 2);
  rocksdb_options_set_max_total_wal_size(ing->opts, 256ull << 20);
  rocksdb_options_set_keep_log_file_num(ing->opts, 3);
  rocksdb_options_set_info_log_level(ing->opts, 2 /* warn */);
  rocksdb_options_set_max_open_files(ing->opts, 512);
  /* series, postings and wal are only read at recovery: an unsorted vector memtable makes
   * their inserts O(1) (it needs the single-writer memtable path) */
  rocksdb_options_set_allow_concurrent_memtable_write(ing->opts, 0);
  for (int i = 0; i < 6; i++) {
    rocksdb_options_t *o = rocksdb_options_create_copy(ing->opts);
    size_t wbs = 8ull << 20;
    switch (i) {
    case ING_CF_CHUNKS:
      /* chunks of one series sit next to each other: large blocks let ZSTD find what they
       * share (first timestamps, constant values) */
      wbs = 32ull << 20;
      rocksdb_options_set_compression(o, rocksdb_lz4_compression);
      rocksdb_options_set_bottommost_compression(o, rocksdb_zstd_compression);
      rocksdb_options_set_bottommost_compression_options(o, -14, 9, 0, 0, 1);
      ing->chunk_table = rocksdb_block_based_options_create();
      rocksdb_block_based_options_set_block_size(ing->chunk_table, 64 * 1024);
      rocksdb_options_set_block_based_table_factory(o, ing->chunk_table);
      break;
    case ING_CF_WAL:
      wbs = 32ull << 20;
      rocksdb_options_set_compression(o, rocksdb_no_compression);
      rocksdb_options_set_memtable_vector_rep(o);
      break;
    case ING_CF_SERIES:
    case ING_CF_POSTINGS:
      rocksdb_options_set_compression(o, rocksdb_lz4_compression);
      rocksdb_options_set_memtable_vector_rep(o);
      break;
    default: wbs = 1ull << 20; break;
    }
    rocksdb_options_set_write_buffer_size(o, wbs);
    ing->cf_opts[i] = o;
  }
  char *dberr = NULL;
  if (readonly) {
    ing->db = rocksdb_open_for_read_only_column_families(
        ing->opts, path, 6, (const char *const *)ing_cf_names,
        (const rocksdb_options_t *const *)ing->cf_opts, ing->cf, 0, &dberr);
  } else {
    ing->db = rocksdb_open_column_families(ing->opts, path, 6, (const char *const *)ing_cf_names,
                                           (const rocksdb_options_t *const *)ing->cf_opts, ing->cf,
                                           &dberr);
  }
  if (!ing->db) {
    return ing_dberr(dberr ? dberr : strdup("open failed"), "open");
  }
  ing->wopts = rocksdb_writeoptions_create();
  ing->ropts = rocksdb_readoptions_create();
  /* the format version */
  size_t vl = 0;
  char *v = rocksdb_get_cf(ing->db, ing->ropts, ing->cf[ING_CF_META], ING_META_VERSION_KEY, 1, &vl, &dberr);
  rt_err err = ing_dberr(dberr, "get version");
  if (err) {
    return err;
  }
  if (v) {
    uint32_t ver = vl == 4 ? ing_get_u32((const uint8_t *)v) : 0;
    rocksdb_free(v);
    if (ver != ING_FORMAT_VERSION) {
      rt_error(ING_LOG, "unsupported data format", "version=%u", ver);
      return RT_EPROTO;
    }
  } else if (!readonly) {
    uint8_t b[4];
    ing_put_u32(b, ING_FORMAT_VERSION);
    rocksdb_put_cf(ing->db, ing->wopts, ing->cf[ING_CF_META], ING_META_VERSION_KEY, 1, (const char *)b,
                   4, &dberr);
    err = ing_dberr(dberr, "put version");
  }
  return err;
}

void ing_close_db(ing_ingester *ing) {
  for (int i = 0; i < 6; i++) {
    if (ing->cf[i]) {
      rocksdb_column_family_handle_destroy(ing->cf[i]);
    }
  }
  if (ing->db) {
    rocksdb_close(ing->db);
  }
  for (int i = 0; i < 6; i++) {
    if (ing->cf_opts[i]) {
      rocksdb_options_destroy(ing->cf_opts[i]);
    }
  }
  if (ing->opts) {
    rocksdb_options_destroy(ing->opts);
  }
  if (ing->chunk_table) {
    rocksdb_block_based_options_destroy(ing->chunk_table);
  }
  if (ing->wopts) {
    rocksdb_writeoptions_destroy(ing->wopts);
  }
  if (ing->ropts) {
    rocksdb_readoptions_destroy(ing->ropts);
  }
}

/* Loads tenants, metadata and the chunk span from the meta CF. */
rt_err ing_load_meta(ing_ingester *ing) {
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(ing->db, ing->ropts, ing->cf[ING_CF_META]);
  rt_err err = RT_OK;
  rt_buf tmp = RT_BUF_INIT;
  /* tenants first: metadata keys refer to them */
  for (int pass = 0; pass < 2 && !err; pass++) {
    for (rocksdb_iter_seek_to_first(it); !err && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
      size_t kl, vl;
      const char *k = rocksdb_iter_key(it, &kl);
      const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
      if (pass == 0 && kl >= 1 && k[0] == ING_META_TENANT_PREFIX && vl == 4) {
        char *name = rt_strndup(k + 1, kl - 1);
        ing_tenant *t;
        err = name ? ing_tenant_register(ing, name, ing_get_u32(v), &t) : RT_ENOMEM;
        rt_free(name, 0);
      } else if (pass == 0 && kl == 1 && k[0] == ING_META_SPAN_KEY[0] && vl == 8) {
        atomic_store(&ing->max_span, (int64_t)ing_get_u64(v));
      } else if (pass == 1 && kl >= 5 && k[0] == ING_META_METADATA_PREFIX) {
        ing_tenant *t = ing_tenant_by_id(ing, ing_get_u32((const uint8_t *)k + 1));
        ing_rd r = {v, v + vl, false};
        const uint8_t *hdr = ing_get_bytes(&r, 2);
        uint64_t hl = ing_get_uvarint(&r);
        const uint8_t *h = ing_get_bytes(&r, r.err ? 0 : hl);
        uint64_t ul = ing_get_uvarint(&r);
        const uint8_t *u = ing_get_bytes(&r, r.err ? 0 : ul);
        if (!t || r.err || hdr[0] != ING_META_MAGIC) {
          rt_warn(ING_LOG, "skipping a corrupt metadata record", "%s", "");
          continue;
        }
        Prometheus__MetricMetadata md;
        prometheus__metric_metadata__init(&md);
        md.type = (Prometheus__MetricMetadata__MetricType)hdr[1];
        md.metric_family_name = rt_strndup(k + 5, kl - 5);
        md.help = rt_strndup((const char *)h, hl);
        md.unit = rt_strndup((const char *)u, ul);
        if (md.metric_family_name && md.help && md.unit) {
          err = ing_meta_update(ing, t, &md, NULL, &tmp, false);
        } else {
          err = RT_ENOMEM;
        }
        rt_free(md.metric_family_name, 0);
        rt_free(md.help, 0);
        rt_free(md.unit, 0);
      }
    }
  }
  char *dberr = NULL;
  rocksdb_iter_get_error(it, &dberr);
  if (!err) {
    err = ing_dberr(dberr, "read meta");
  } else if (dberr) {
    rocksdb_free(dberr);
  }
  rocksdb_iter_destroy(it);
  rt_buf_free(&tmp);
  if (ing->next_tenant_id == 0) {
    ing->next_tenant_id = 1;
  }
  return err;
}

/* ------------------------------------------------------------------ which series load */

/* What the WAL holds: the (tenant, ref) of every logged sample and each tenant's newest one. */
typedef struct ing_wal_seen {
  ing_ingester *ing;
  uint64_t *ids; /* tenant << 32 | ref, sorted and unique after ing_wal_seen_scan */
  size_t n, cap;
} ing_wal_seen;

static rt_err ing_wal_seen_sample(void *ctx, uint32_t tid, uint32_t ref, int64_t ts, double v,
                                  uint64_t seq) {
  ing_wal_seen *w = ctx;
  uint64_t id = (uint64_t)tid << 32 | ref;
  if (w->n == 0 || w->ids[w->n - 1] != id) {
    if (w->n == w->cap) {
      size_t ncap = w->cap ? w->cap * 2 : 1024;
      uint64_t *n = rt_realloc(w->ids, w->cap * sizeof *n, ncap * sizeof *n);
      if (!n) {
        return RT_ENOMEM;
      }
      w->ids = n;
      w->cap = ncap;
    }
    w->ids[w->n++] = id;
  }
  ing_tenant *t = ing_tenant_by_id(w->ing, tid);
  if (t && ts > t->max_t) {
    t->max_t = ts;
  }
  return RT_OK;
}

static int ing_u64_cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

static bool ing_wal_seen_has(const ing_wal_seen *w, uint32_t tid, uint32_t ref) {
  uint64_t id = (uint64_t)tid << 32 | ref;
  return w->n && bsearch(&id, w->ids, w->n, sizeof id, ing_u64_cmp) != NULL;
}

/* Before the series load, the data-time clock of each tenant (newest sample in a series record
 * or the WAL) and the series the WAL names: those load whatever their age, the WAL replays
 * into them. */
static rt_err ing_load_clock(ing_ingester *ing, ing_wal_seen *w) {
  rt_err err = RT_OK;
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(ing->db, ing->ropts, ing->cf[ING_CF_SERIES]);
  for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t kl, vl;
    const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
    const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
    if (kl != ING_SERIES_KEY_LEN || vl < 2 + ING_SERIES_STATE_LEN) {
      continue;
    }
    ing_tenant *t = ing_tenant_by_id(ing, ing_get_u32(k));
    int64_t last_t = (int64_t)ing_get_u64(v + vl - 16); /* series value: ... last_t, last_v */
    if (t && last_t > t->max_t) {
      t->max_t = last_t;
    }
  }
  char *dberr = NULL;
  rocksdb_iter_get_error(it, &dberr);
  err = ing_dberr(dberr, "read series");
  rocksdb_iter_destroy(it);
  it = rocksdb_create_iterator_cf(ing->db, ing->ropts, ing->cf[ING_CF_WAL]);
  for (rocksdb_iter_seek_to_first(it); !err && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t kl, vl;
    const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
    const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
    if (kl == ING_WAL_KEY_LEN) {
      err = ing_wal_parse(ing_get_u64(k), v, vl, ing_wal_seen_sample, w);
    }
  }
  dberr = NULL;
  rocksdb_iter_get_error(it, &dberr);
  if (!err) {
    err = ing_dberr(dberr, "read wal");
  } else if (dberr) {
    rocksdb_free(dberr);
  }
  rocksdb_iter_destroy(it);
  if (!err && w->n > 1) {
    qsort(w->ids, w->n, sizeof *w->ids, ing_u64_cmp);
    size_t o = 1;
    for (size_t i = 1; i < w->n; i++) {
      if (w->ids[i] != w->ids[o - 1]) {
        w->ids[o++] = w->ids[i];
      }
    }
    w->n = o;
  }
  return err;
}

/* A series that stays on disk only (I11): counted in the tenant's disk range and refs. */
static void ing_note_disk_series(ing_tenant *t, uint32_t ref, int64_t first_t, int64_t last_t) {
  if (ref > t->max_ref) {
    t->max_ref = ref;
  }
  if (first_t <= last_t) {
    t->disk_min_t = RT_MIN(t->disk_min_t, first_t);
    t->disk_max_t = RT_MAX(t->disk_max_t, last_t);
    t->min_t = RT_MIN(t->min_t, first_t);
  }
}

rt_err ing_load_series(ing_ingester *ing, uint64_t *max_flushed) {
  ing_wal_seen w = {.ing = ing};
  rt_err err = ing_load_clock(ing, &w);
  /* each tenant's idle bound (data time), computed once */
  int64_t *before = err ? NULL : rt_calloc(ing->ntenants ? ing->ntenants : 1, sizeof *before);
  if (!err && !before) {
    err = RT_ENOMEM;
  }
  for (size_t i = 0; !err && i < ing->ntenants; i++) {
    before[i] = ing_idle_before(ing, ing->tenants[i], ing->cfg.series_idle_timeout_ms);
  }
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(ing->db, ing->ropts, ing->cf[ING_CF_SERIES]);
  rt_arena *arena = rt_arena_create(64 * 1024);
  if (!err && !arena) {
    err = RT_ENOMEM;
  }
  size_t n = 0, ndisk = 0;
  for (rocksdb_iter_seek_to_first(it); !err && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t kl, vl;
    const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
    const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
    if (kl != ING_SERIES_KEY_LEN) {
      continue;
    }
    uint32_t tid = ing_get_u32(k);
    size_t ti = 0;
    while (ti < ing->ntenants && ing->tenants[ti]->id != tid) {
      ti++;
    }
    ing_tenant *t = ti < ing->ntenants ? ing->tenants[ti] : NULL;
    uint32_t ref = ing_get_u32(k + 4);
    ing_series_rec rec;
    rt_err derr = ing_series_decode(v, vl, arena, &rec);
    if (derr == RT_ENOMEM) {
      err = derr;
      break;
    }
    if (!t || derr || ref == 0 || ref == UINT32_MAX) {
      rt_warn(ING_LOG, "skipping a corrupt series record", "ref=%u", ref);
      continue;
    }
    if (rec.flushed_seq > *max_flushed) {
      *max_flushed = rec.flushed_seq;
    }
    if (rec.last_t < before[ti] && !ing_wal_seen_has(&w, tid, ref)) {
      /* idle before the stop: it stays on disk (I11, a restart does not bring it back) */
      ing_note_disk_series(t, ref, rec.first_t, rec.last_t);
      ndisk++;
      continue;
    }
    ing_key key;
    uint64_t h;
    ing_series *s;
    err = ing_series_keys(t->name, rec.labels, rec.n, arena, &key, &h);
    ing_series *old = err ? NULL : ing_series_find(t, key);
    if (old) {
      /* the same labels under a lower ref: that series left the head (fully flushed) before
       * this one was created; the newer ref is the head's */
      ing_note_disk_series(t, old->ref, old->first_t, old->last_t);
      ing_series_remove(t, old);
      n--;
      ndisk++;
    }
    if (!err) {
      err = ing_series_add(t, key, h, rec.labels, rec.n, ref, &s);
    }
    if (err) {
      break;
    }
    s->persisted = true;
    s->flushed_seq = rec.flushed_seq;
    s->flushed_idx = rec.flushed_idx;
    s->nchunks = rec.nchunks;
    s->first_t = s->flushed_first_t = rec.first_t;
    s->last_t = s->flushed_last_t = rec.last_t;
    s->last_v = s->flushed_last_v = rec.last_v;
    if (rec.last_t != INT64_MIN && rec.last_t > t->max_t) {
      t->max_t = rec.last_t;
    }
    if (rec.first_t < t->min_t) {
      t->min_t = rec.first_t;
    }
    n++;
    if (((n + ndisk) & 4095) == 0) {
      rt_arena_reset(arena);
    }
  }
  atomic_store(&ing->st_series, n);
  for (size_t i = 0; i < ing->ntenants; i++) {
    ing_tenant_gauge_update(ing->tenants[i]);
  }
  char *dberr = NULL;
  rocksdb_iter_get_error(it, &dberr);
  if (!err) {
    err = ing_dberr(dberr, "read series");
  } else if (dberr) {
    rocksdb_free(dberr);
  }
  if (!err && ndisk) {
    rt_info(ING_LOG, "series left on disk", "idle=%llu head=%llu", (unsigned long long)ndisk,
            (unsigned long long)n);
  }
  rocksdb_iter_destroy(it);
  rt_arena_destroy(arena);
  rt_free(before, (ing->ntenants ? ing->ntenants : 1) * sizeof *before);
  rt_free(w.ids, w.cap * sizeof *w.ids);
  return err;
}

typedef struct ing_replay_ctx {
  ing_ingester *ing;
  rocksdb_writebatch_t *wb;
  rt_buf tmp;
  uint64_t samples;
} ing_replay_ctx;

/* Skips what closed chunks already hold (I3), applies the rest. */
static bool ing_replay_skip(ing_series *s, uint64_t seq) {
  uint32_t idx = s->cur_seq == seq ? s->cur_idx : 0;
  if (seq < s->flushed_seq || (seq == s->flushed_seq && idx < s->flushed_idx)) {
    s->cur_seq = seq;
    s->cur_idx = idx + 1;
    return true;
  }
  return false;
}

static rt_err ing_replay_sample(void *ctx, ing_tenant *t, ing_series *s, int64_t ts, double v, uint64_t seq) {
  ing_replay_ctx *c = ctx;
  if (ing_replay_skip(s, seq)) {
    return RT_OK;
  }
  c->samples++;
  return ing_apply(c->ing, t, s, ts, v, seq, c->wb, &c->tmp);
}

rt_err ing_replay(ing_ingester *ing, uint64_t *last_seq) {
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(ing->db, ing->ropts, ing->cf[ING_CF_WAL]);
  ing_replay_ctx c = {.ing = ing, .wb = rocksdb_writebatch_create()};
  rt_err err = RT_OK;
  uint64_t nrec = 0;
  for (rocksdb_iter_seek_to_first(it); !err && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t kl, vl;
    const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
    const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
    if (kl != ING_WAL_KEY_LEN) {
      continue;
    }
    uint64_t seq = ing_get_u64(k);
    *last_seq = seq;
    err = ing_wal_record(ing, seq, v, vl, ing_replay_sample, &c);
    nrec++;
    if (!err && rocksdb_writebatch_count(c.wb) > 1024) {
      char *dberr = NULL;
      rocksdb_write(ing->db, ing->wopts, c.wb, &dberr);
      err = ing_dberr(dberr, "write replayed chunks");
      rocksdb_writebatch_clear(c.wb);
    }
  }
  char *dberr = NULL;
  rocksdb_iter_get_error(it, &dberr);
  if (!err) {
    err = ing_dberr(dberr, "read wal");
  } else if (dberr) {
    rocksdb_free(dberr);
  }
  if (!err && rocksdb_writebatch_count(c.wb) > 0) {
    rocksdb_write(ing->db, ing->wopts, c.wb, &dberr);
    err = ing_dberr(dberr, "write replayed chunks");
  }
  rocksdb_iter_destroy(it);
  rocksdb_writebatch_destroy(c.wb);
  rt_buf_free(&c.tmp);
  if (!err) {
    rt_info(ING_LOG, "wal replayed", "records=%llu samples=%llu", (unsigned long long)nrec,
            (unsigned long long)c.samples);
  }
  return err;
}
