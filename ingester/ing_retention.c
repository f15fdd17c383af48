/* ing_retention.c - retention: deleting what lies wholly before the compactor's cutoff
 * (ing_apply_retention). The rule (which cutoff, from which clock) is the compactor's
 * (compactor/DESIGN.md); this is the mechanism, next to the head's locks and the records it
 * deletes (ingester/DESIGN.md I12). */
#include <string.h>

#include "common/arena.h"
#include "common/log.h"
#include "ingester/ing_format.h"
#include "ingester/ing_int.h"

/* Series records handled per batch of pass 2 (one read-lock hold to tell head from disk). */
#define RET_BATCH 1024

typedef struct ret_ctx {
  ing_ingester *ing;
  ing_tenant *t;
  int64_t before;
  ing_retention_stats st;
  rocksdb_writebatch_t *wb;
  rt_buf tmp;
  /* a run of consecutive series records deleted whole: [run_lo, run_hi] */
  bool run;
  uint32_t run_lo, run_hi;
  /* the refs every run spanned, compacted at the end */
  bool spanned;
  uint32_t span_lo, span_hi;
} ret_ctx;

/* The 8-byte key (tenant, ref) + 1 as a big-endian number: the end of a ref range. */
static void ret_key_after(uint8_t k[8], uint32_t tenant, uint32_t ref) {
  ing_put_u64(k, ((uint64_t)tenant << 32 | ref) + 1);
}

/* Deletes the closed chunks of series `ref` that end before the cutoff, reading through `it`
 * (a chunks iterator). *first = the oldest sample of the chunks left (INT64_MAX: none). */
static rt_err ret_trim_chunks(ret_ctx *c, rocksdb_iterator_t *it, uint32_t ref, int64_t *first) {
  ing_chunk_scan cs;
  ing_chunk_scan_start(&cs, it, 0, c->t->id, ref, INT64_MIN, INT64_MAX);
  ing_chunk_rec r;
  *first = INT64_MAX;
  while (ing_chunk_scan_next(&cs, &r)) {
    if (r.maxt < c->before) {
      rocksdb_writebatch_delete_cf(c->wb, c->ing->cf[ING_CF_CHUNKS], (const char *)r.key,
                                   ING_CHUNK_KEY_LEN);
      c->st.chunks++;
      continue;
    }
    *first = RT_MIN(*first, r.mint);
    if (r.mint >= c->before) {
      break; /* chunks are in mint order: none after this ends before the cutoff */
    }
  }
  return ing_chunk_scan_error(&cs);
}

/* The range deletes of the current run of series deleted whole: their series records and
 * chunks (their postings keys and tombstones were deleted one by one). */
static void ret_run_end(ret_ctx *c) {
  if (!c->run) {
    return;
  }
  c->run = false;
  ing_ingester *ing = c->ing;
  uint32_t tid = c->t->id;
  uint8_t lo[9], hi[9];
  ing_series_key(lo, tid, c->run_lo);
  ret_key_after(hi, tid, c->run_hi);
  /* a chunk key starts with the 8 bytes of its series key, and sorts after it */
  rocksdb_writebatch_delete_range_cf(c->wb, ing->cf[ING_CF_SERIES], (const char *)lo, 8,
                                     (const char *)hi, 8);
  rocksdb_writebatch_delete_range_cf(c->wb, ing->cf[ING_CF_CHUNKS], (const char *)lo, 8,
                                     (const char *)hi, 8);
  if (!c->spanned) {
    c->span_lo = c->run_lo;
    c->spanned = true;
  }
  c->span_hi = c->run_hi;
}

/* Puts the deletion of a series only on disk whose samples all lie before the cutoff: its
 * postings keys and tombstones now, the rest with its run. RT_ENOMEM when a key could not be
 * built. */
static rt_err ret_delete_whole(ret_ctx *c, uint32_t ref, const ing_series_rec *rec) {
  for (size_t i = 0; i < rec->n; i++) {
    rt_buf_reset(&c->tmp);
    ing_put_be32(&c->tmp, c->t->id);
    rt_buf_append(&c->tmp, rec->labels[i].name, strlen(rec->labels[i].name) + 1);
    rt_buf_append(&c->tmp, rec->labels[i].value, strlen(rec->labels[i].value) + 1);
    ing_put_be32(&c->tmp, ref);
    if (c->tmp.oom) {
      return RT_ENOMEM;
    }
    rocksdb_writebatch_delete_cf(c->wb, c->ing->cf[ING_CF_POSTINGS], c->tmp.data, c->tmp.len);
  }
  if (ing_tomb_any(c->ing, c->t->id, ref)) {
    c->st.tombstones += ing_tomb_trim(c->ing, c->t->id, ref, INT64_MAX, c->wb);
  }
  if (c->run && ref > c->run_hi) {
    c->run_hi = ref;
  } else {
    c->run = true;
    c->run_lo = c->run_hi = ref;
  }
  c->st.series++;
  return RT_OK;
}

/* Pass 1: series in the head whose oldest closed chunks end before the cutoff lose them; their
 * series record carries the new oldest sample. Under the write lock, ING_SCAN_STEP series at a
 * time, with a chunks iterator made under it (no chunk of the tenant closes meanwhile); the
 * head follows once the step's WriteBatch is written. */
static rt_err ret_head(ret_ctx *c) {
  ing_ingester *ing = c->ing;
  ing_tenant *t = c->t;
  rt_err err = RT_OK;
  ing_series **upd = rt_alloc(ING_SCAN_STEP * sizeof *upd);
  int64_t *upd_first = rt_alloc(ING_SCAN_STEP * sizeof *upd_first);
  bool *upd_tomb = rt_alloc(ING_SCAN_STEP * sizeof *upd_tomb);
  if (!upd || !upd_first || !upd_tomb) {
    err = RT_ENOMEM;
  }
  for (size_t r0 = 0; !err; r0 += ING_SCAN_STEP) {
    pthread_rwlock_wrlock(&t->lock);
    size_t end = t->refs_cap, nupd = 0;
    rocksdb_iterator_t *it = NULL;
    for (size_t r = r0; r < end && r < r0 + ING_SCAN_STEP && !err; r++) {
      ing_series *s = t->refs[r];
      if (!s || s->nchunks == 0 || s->flushed_first_t >= c->before) {
        continue;
      }
      if (!it) {
        it = rocksdb_create_iterator_cf(ing->db, ing->ropts, ing->cf[ING_CF_CHUNKS]);
      }
      uint64_t before_chunks = c->st.chunks;
      int64_t first;
      err = ret_trim_chunks(c, it, s->ref, &first);
      if (err || (c->st.chunks == before_chunks && first == s->flushed_first_t)) {
        continue;
      }
      /* the record as it will be: the new oldest closed sample, the rest unchanged */
      int64_t old = s->flushed_first_t;
      s->flushed_first_t = first;
      ing_series_value(&c->tmp, s);
      s->flushed_first_t = old;
      if (c->tmp.oom) {
        err = RT_ENOMEM;
        break;
      }
      uint8_t key[ING_SERIES_KEY_LEN];
      ing_series_key(key, t->id, s->ref);
      rocksdb_writebatch_put_cf(c->wb, ing->cf[ING_CF_SERIES], (const char *)key, sizeof key,
                                c->tmp.data, c->tmp.len);
      int64_t oldest = first; /* of everything it holds, head included */
      if (s->head.count > 0) {
        oldest = RT_MIN(oldest, s->head.mint);
      }
      if (s->nooo > 0) {
        oldest = RT_MIN(oldest, s->ooo[0].t);
      }
      upd_tomb[nupd] = ing_tomb_any(ing, t->id, s->ref);
      if (upd_tomb[nupd]) {
        c->st.tombstones += ing_tomb_trim(ing, t->id, s->ref, oldest, c->wb);
      }
      upd[nupd] = s;
      upd_first[nupd++] = first;
    }
    if (it) {
      rocksdb_iter_destroy(it);
    }
    if (!err) {
      err = ing_write_maint(ing, c->wb, "write retention deletes");
    } else {
      rocksdb_writebatch_clear(c->wb); /* nothing of the step is written, nothing changes */
    }
    for (size_t k = 0; !err && k < nupd; k++) {
      ing_series *s = upd[k];
      s->flushed_first_t = upd_first[k];
      s->first_t = upd_first[k];
      if (s->head.count > 0) {
        s->first_t = RT_MIN(s->first_t, s->head.mint);
      }
      if (s->nooo > 0) {
        s->first_t = RT_MIN(s->first_t, s->ooo[0].t);
      }
      if (upd_tomb[k]) {
        ing_tomb_forget(ing, t->id, s->ref, s->first_t);
      }
    }
    pthread_rwlock_unlock(&t->lock);
    if (r0 + ING_SCAN_STEP >= end) {
      break;
    }
  }
  rt_free(upd, ING_SCAN_STEP * sizeof *upd);
  rt_free(upd_first, ING_SCAN_STEP * sizeof *upd_first);
  rt_free(upd_tomb, ING_SCAN_STEP * sizeof *upd_tomb);
  return err;
}

typedef struct ret_rec {
  uint32_t ref;
  bool in_head, corrupt;
  bool deleted, trimmed; /* deleted whole; lost chunks (rec.first_t is the new oldest) */
  ing_series_rec rec;
} ret_rec;

/* Pass 2, one batch of series records read in ref order: those of the head are skipped (pass 1
 * had them); those only on disk are deleted whole or lose their old chunks. */
static rt_err ret_disk_batch(ret_ctx *c, ret_rec *b, size_t n, rocksdb_iterator_t *chunks,
                             int64_t *disk_min, int64_t *disk_max) {
  ing_ingester *ing = c->ing;
  ing_tenant *t = c->t;
  pthread_rwlock_rdlock(&t->lock);
  for (size_t i = 0; i < n; i++) {
    b[i].in_head = ing_series_by_ref(t, b[i].ref) != NULL;
  }
  pthread_rwlock_unlock(&t->lock);
  rt_err err = RT_OK;
  for (size_t i = 0; i < n && !err; i++) {
    ing_series_rec *rec = &b[i].rec;
    if (b[i].in_head || b[i].corrupt) {
      ret_run_end(c);
      continue;
    }
    if (rec->last_t < c->before) {
      err = ret_delete_whole(c, b[i].ref, rec);
      b[i].deleted = true;
      continue;
    }
    ret_run_end(c);
    if (rec->first_t < c->before) {
      uint64_t before_chunks = c->st.chunks;
      int64_t first;
      err = ret_trim_chunks(c, chunks, b[i].ref, &first);
      if (!err && (c->st.chunks != before_chunks || first != rec->first_t)) {
        rec->first_t = first;
        uint8_t key[ING_SERIES_KEY_LEN];
        ing_series_key(key, t->id, b[i].ref);
        ing_series_rec_value(&c->tmp, rec);
        if (c->tmp.oom) {
          err = RT_ENOMEM;
          break;
        }
        rocksdb_writebatch_put_cf(c->wb, ing->cf[ING_CF_SERIES], (const char *)key, sizeof key,
                                  c->tmp.data, c->tmp.len);
        if (ing_tomb_any(ing, t->id, b[i].ref)) {
          c->st.tombstones += ing_tomb_trim(ing, t->id, b[i].ref, first, c->wb);
          b[i].trimmed = true;
        }
      }
    }
    if (rec->first_t <= rec->last_t) {
      *disk_min = RT_MIN(*disk_min, rec->first_t);
      *disk_max = RT_MAX(*disk_max, rec->last_t);
    }
  }
  if (!err) {
    ret_run_end(c); /* a run does not span two batches: the write below ends it */
    err = ing_write_maint(ing, c->wb, "write retention deletes");
  } else {
    rocksdb_writebatch_clear(c->wb); /* nothing of the batch is written */
    c->run = false;
  }
  /* memory follows what was written: tombstones of the series deleted or trimmed */
  for (size_t i = 0; !err && i < n; i++) {
    if (b[i].deleted || b[i].trimmed) {
      ing_tomb_forget(ing, t->id, b[i].ref, b[i].deleted ? INT64_MAX : b[i].rec.first_t);
    }
  }
  return err;
}

/* Pass 2: the series only on disk (I11), read from the series column family. Recomputes the
 * tenant's span of series only on disk. */
static rt_err ret_disk(ret_ctx *c) {
  ing_ingester *ing = c->ing;
  ing_tenant *t = c->t;
  ret_rec *b = rt_alloc(RET_BATCH * sizeof *b);
  rt_arena *arena = rt_arena_create(64 * 1024);
  if (!b || !arena) {
    rt_free(b, RET_BATCH * sizeof *b);
    rt_arena_destroy(arena);
    return RT_ENOMEM;
  }
  int64_t disk_min = INT64_MAX, disk_max = INT64_MIN;
  rocksdb_iterator_t *chunks = rocksdb_create_iterator_cf(ing->db, ing->ropts, ing->cf[ING_CF_CHUNKS]);
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(ing->db, ing->ropts, ing->cf[ING_CF_SERIES]);
  uint8_t pfx[4];
  ing_put_u32(pfx, t->id);
  rt_err err = RT_OK;
  size_t n = 0;
  for (rocksdb_iter_seek(it, (const char *)pfx, 4); !err; rocksdb_iter_next(it)) {
    bool valid = rocksdb_iter_valid(it);
    size_t kl = 0, vl = 0;
    const uint8_t *k = valid ? (const uint8_t *)rocksdb_iter_key(it, &kl) : NULL;
    bool mine = valid && kl == ING_SERIES_KEY_LEN && memcmp(k, pfx, 4) == 0;
    if (mine) {
      const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
      ret_rec *r = &b[n++];
      memset(r, 0, sizeof *r);
      r->ref = ing_get_u32(k + 4);
      rt_err derr = ing_series_decode(v, vl, arena, &r->rec);
      if (derr == RT_ENOMEM) {
        err = derr;
        break;
      }
      if (derr) {
        rt_warn(ING_LOG, "retention skips a corrupt series record", "tenant=\"%s\" ref=%u",
                t->name, r->ref);
        r->corrupt = true;
      }
    }
    if (n == RET_BATCH || (!mine && n > 0)) {
      err = ret_disk_batch(c, b, n, chunks, &disk_min, &disk_max);
      n = 0;
      rt_arena_reset(arena);
    }
    if (!mine) {
      break;
    }
  }
  if (!err) {
    char *dberr = NULL;
    rocksdb_iter_get_error(it, &dberr);
    err = ing_dberr(dberr, "read series for retention");
  }
  rocksdb_iter_destroy(it);
  rocksdb_iter_destroy(chunks);
  rt_arena_destroy(arena);
  rt_free(b, RET_BATCH * sizeof *b);
  if (!err) {
    /* no series leaves the head meanwhile (maint_mu), so this is the whole span */
    pthread_rwlock_wrlock(&t->lock);
    t->disk_min_t = disk_min;
    t->disk_max_t = disk_max;
    pthread_rwlock_unlock(&t->lock);
  }
  return err;
}

/* Compacts the key ranges of the series deleted whole, so that their space comes back now
 * rather than when RocksDB's own compactions reach them. */
static void ret_compact(ret_ctx *c) {
  if (!c->spanned) {
    return;
  }
  uint8_t lo[8], hi[8];
  ing_series_key(lo, c->t->id, c->span_lo);
  ret_key_after(hi, c->t->id, c->span_hi);
  rocksdb_compact_range_cf(c->ing->db, c->ing->cf[ING_CF_CHUNKS], (const char *)lo, 8,
                           (const char *)hi, 8);
  rocksdb_compact_range_cf(c->ing->db, c->ing->cf[ING_CF_SERIES], (const char *)lo, 8,
                           (const char *)hi, 8);
}

/* One tenant, with maint_mu held. */
static rt_err ret_tenant(ing_ingester *ing, ing_tenant *t, int64_t before,
                         ing_retention_stats *total) {
  ret_ctx c = {.ing = ing, .t = t, .before = before, .tmp = RT_BUF_INIT};
  c.wb = rocksdb_writebatch_create();
  /* series with nothing left after the cutoff leave the head first, their chunks written */
  size_t evicted = 0;
  rt_err err = ing_evict(ing, t, before, 0, &evicted);
  if (!err) {
    err = ret_head(&c);
  }
  pthread_rwlock_rdlock(&t->lock);
  bool disk = t->disk_min_t < before;
  pthread_rwlock_unlock(&t->lock);
  if (!err && disk) {
    err = ret_disk(&c);
  }
  if (!err) {
    ret_compact(&c);
  }
  rocksdb_writebatch_destroy(c.wb);
  rt_buf_free(&c.tmp);
  total->series += c.st.series;
  total->chunks += c.st.chunks;
  total->tombstones += c.st.tombstones;
  atomic_fetch_add(&ing->st_ret_series, c.st.series);
  atomic_fetch_add(&ing->st_ret_chunks, c.st.chunks);
  if (c.st.series || c.st.chunks || c.st.tombstones || evicted) {
    rt_info(ING_LOG, "retention deleted old data", "tenant=\"%s\" before=%lld series=%llu "
            "chunks=%llu tombstones=%llu left_head=%zu", t->name, (long long)before,
            (unsigned long long)c.st.series, (unsigned long long)c.st.chunks,
            (unsigned long long)c.st.tombstones, evicted);
  }
  return err;
}

rt_err ing_apply_retention(ing_ingester *ing, ing_retention_fn before, void *ctx,
                           ing_retention_stats *st) {
  ing_retention_stats total = {0};
  pthread_mutex_lock(&ing->maint_mu);
  rt_err err = (rt_err)atomic_load(&ing->broken);
  if (!err && ing->readonly) {
    err = RT_EINVAL;
  }
  /* tenants are never freed while the ingester lives: a copy of the list lets new tenants be
   * created while the round works */
  ing_tenant **ts = NULL;
  size_t nt = 0;
  if (!err) {
    pthread_rwlock_rdlock(&ing->tenants_lock);
    nt = ing->ntenants;
    ts = nt ? rt_alloc(nt * sizeof *ts) : NULL;
    if (nt && !ts) {
      err = RT_ENOMEM;
    } else if (nt) {
      memcpy(ts, ing->tenants, nt * sizeof *ts);
    }
    pthread_rwlock_unlock(&ing->tenants_lock);
  }
  for (size_t i = 0; !err && i < nt; i++) {
    ing_tenant *t = ts[i];
    pthread_rwlock_rdlock(&t->lock);
    int64_t newest = t->max_t;
    pthread_rwlock_unlock(&t->lock);
    int64_t cut = before(ctx, t->name, newest);
    if (cut == INT64_MIN || cut <= t->ret_done) {
      continue;
    }
    err = ret_tenant(ing, t, cut, &total);
    if (!err) {
      t->ret_done = cut;
    }
  }
  pthread_mutex_unlock(&ing->maint_mu);
  rt_free(ts, nt * sizeof *ts);
  if (st) {
    *st = total;
  }
  return err;
}
