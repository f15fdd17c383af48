/* ingester.c - push, select, labels, metadata, RocksDB persistence, recovery, maintenance.
 * See ingester/DESIGN.md for the invariants referred to as (I1) ... and ing_format.h for the
 * record layouts. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/buf.h"
#include "common/floatfmt.h"
#include "common/limits.h"
#include "common/log.h"
#include "ingester/ing_format.h"
#include "ingester/ing_ha.h"
#include "ingester/ing_int.h"

#define ING_LOG "ingester"

static const char *const ing_cf_names[6] = {"default", "series", "postings", "chunks", "wal", "meta"};

/* ------------------------------------------------------------------ small encoders */

static void ing_put_uvarint(rt_buf *b, uint64_t x) {
  uint8_t tmp[10];
  size_t n = 0;
  while (x >= 0x80) {
    tmp[n++] = (uint8_t)(x | 0x80);
    x >>= 7;
  }
  tmp[n++] = (uint8_t)x;
  rt_buf_append(b, tmp, n);
}

static void ing_put_zvarint(rt_buf *b, int64_t x) {
  uint64_t ux = (uint64_t)x << 1;
  if (x < 0) {
    ux = ~ux;
  }
  ing_put_uvarint(b, ux);
}

static void ing_put_be64(rt_buf *b, uint64_t v) {
  uint8_t tmp[8];
  ing_put_u64(tmp, v);
  rt_buf_append(b, tmp, 8);
}

static void ing_put_be32(rt_buf *b, uint32_t v) {
  uint8_t tmp[4];
  ing_put_u32(tmp, v);
  rt_buf_append(b, tmp, 4);
}

static uint64_t ing_f64_bits(double v) {
  uint64_t b;
  memcpy(&b, &v, 8);
  return b;
}

static double ing_bits_f64(uint64_t b) {
  double v;
  memcpy(&v, &b, 8);
  return v;
}

/* A bounds-checked reader. */
typedef struct ing_rd {
  const uint8_t *p, *end;
  bool err;
} ing_rd;

static uint64_t ing_get_uvarint(ing_rd *r) {
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

static int64_t ing_get_zvarint(ing_rd *r) {
  uint64_t ux = ing_get_uvarint(r);
  int64_t x = (int64_t)(ux >> 1);
  return (ux & 1) ? ~x : x;
}

static uint64_t ing_get_be64(ing_rd *r) {
  if (r->end - r->p < 8) {
    r->err = true;
    return 0;
  }
  uint64_t v = ing_get_u64(r->p);
  r->p += 8;
  return v;
}

static uint32_t ing_get_be32(ing_rd *r) {
  if (r->end - r->p < 4) {
    r->err = true;
    return 0;
  }
  uint32_t v = ing_get_u32(r->p);
  r->p += 4;
  return v;
}

static const uint8_t *ing_get_bytes(ing_rd *r, size_t n) {
  if ((size_t)(r->end - r->p) < n) {
    r->err = true;
    return NULL;
  }
  const uint8_t *p = r->p;
  r->p += n;
  return p;
}

/* ------------------------------------------------------------------ RocksDB errors */

/* Turns a RocksDB error into RT_EIO and a log line, and frees it. */
static rt_err ing_dberr(char *err, const char *what) {
  if (!err) {
    return RT_OK;
  }
  rt_error(ING_LOG, "rocksdb error", "op=%s err=\"%s\"", what, err);
  rocksdb_free(err);
  return RT_EIO;
}

/* ------------------------------------------------------------------ keys and values */

static void ing_series_key(uint8_t k[ING_SERIES_KEY_LEN], uint32_t tenant, uint32_t ref) {
  ing_put_u32(k, tenant);
  ing_put_u32(k + 4, ref);
}

static void ing_chunk_key(uint8_t k[ING_CHUNK_KEY_LEN], uint32_t tenant, uint32_t ref, int64_t mint,
                          uint32_t no) {
  ing_put_u32(k, tenant);
  ing_put_u32(k + 4, ref);
  ing_put_u64(k + 8, (uint64_t)mint ^ (1ull << 63));
  ing_put_u32(k + 16, no);
}

static void ing_series_value(rt_buf *b, const ing_series *s) {
  rt_buf_reset(b);
  uint8_t hdr[2] = {ING_SERIES_MAGIC, ING_FORMAT_VERSION};
  rt_buf_append(b, hdr, 2);
  ing_put_uvarint(b, s->nlabels);
  for (size_t i = 0; i < s->nlabels; i++) {
    size_t nl = strlen(s->labels[i].name), vl = strlen(s->labels[i].value);
    ing_put_uvarint(b, nl);
    rt_buf_append(b, s->labels[i].name, nl);
    ing_put_uvarint(b, vl);
    rt_buf_append(b, s->labels[i].value, vl);
  }
  ing_put_be64(b, s->flushed_seq);
  ing_put_be32(b, s->flushed_idx);
  ing_put_be32(b, s->nchunks);
  ing_put_be64(b, (uint64_t)s->flushed_first_t);
  ing_put_be64(b, (uint64_t)s->flushed_last_t);
  ing_put_be64(b, ing_f64_bits(s->flushed_last_v));
}

typedef struct ing_series_rec {
  rt_label *labels; /* arena */
  size_t n;
  uint64_t flushed_seq;
  uint32_t flushed_idx, nchunks;
  int64_t first_t, last_t;
  double last_v;
} ing_series_rec;

static rt_err ing_series_decode(const uint8_t *v, size_t len, rt_arena *arena, ing_series_rec *out) {
  ing_rd r = {v, v + len, false};
  const uint8_t *hdr = ing_get_bytes(&r, 2);
  if (!hdr || hdr[0] != ING_SERIES_MAGIC || hdr[1] != ING_FORMAT_VERSION) {
    return RT_EPROTO;
  }
  uint64_t n = ing_get_uvarint(&r);
  if (r.err || n > 65535) {
    return RT_EPROTO;
  }
  out->labels = rt_arena_alloc(arena, (n ? n : 1) * sizeof *out->labels);
  if (!out->labels) {
    return RT_ENOMEM;
  }
  out->n = n;
  for (size_t i = 0; i < n; i++) {
    uint64_t nl = ing_get_uvarint(&r);
    const uint8_t *np = ing_get_bytes(&r, r.err ? 0 : nl);
    uint64_t vl = ing_get_uvarint(&r);
    const uint8_t *vp = ing_get_bytes(&r, r.err ? 0 : vl);
    if (r.err) {
      return RT_EPROTO;
    }
    out->labels[i].name = rt_arena_strndup(arena, (const char *)np, nl);
    out->labels[i].value = rt_arena_strndup(arena, (const char *)vp, vl);
    if (!out->labels[i].name || !out->labels[i].value) {
      return RT_ENOMEM;
    }
  }
  out->flushed_seq = ing_get_be64(&r);
  out->flushed_idx = ing_get_be32(&r);
  out->nchunks = ing_get_be32(&r);
  out->first_t = (int64_t)ing_get_be64(&r);
  out->last_t = (int64_t)ing_get_be64(&r);
  out->last_v = ing_bits_f64(ing_get_be64(&r));
  return r.err ? RT_EPROTO : RT_OK;
}

/* ------------------------------------------------------------------ tenants */

static ing_tenant *ing_tenant_find(ing_ingester *ing, const char *name) {
  for (size_t i = 0; i < ing->ntenants; i++) {
    if (strcmp(ing->tenants[i]->name, name) == 0) {
      return ing->tenants[i];
    }
  }
  return NULL;
}

static ing_tenant *ing_tenant_by_id(ing_ingester *ing, uint32_t id) {
  for (size_t i = 0; i < ing->ntenants; i++) {
    if (ing->tenants[i]->id == id) {
      return ing->tenants[i];
    }
  }
  return NULL;
}

static rt_err ing_tenant_register(ing_ingester *ing, const char *name, uint32_t id, ing_tenant **out) {
  if (ing->ntenants == ing->tenants_cap) {
    size_t ncap = ing->tenants_cap ? ing->tenants_cap * 2 : 8;
    ing_tenant **nt = rt_realloc(ing->tenants, ing->tenants_cap * sizeof *nt, ncap * sizeof *nt);
    if (!nt) {
      return RT_ENOMEM;
    }
    ing->tenants = nt;
    ing->tenants_cap = ncap;
  }
  rt_err err = ing_tenant_create(name, id, out);
  if (err) {
    return err;
  }
  ing->tenants[ing->ntenants++] = *out;
  ing_tenant_gauge_init(ing, *out);
  if (id >= ing->next_tenant_id) {
    ing->next_tenant_id = id + 1;
  }
  return RT_OK;
}

/* Returns the tenant, creating and persisting it if `create`. NULL with *err set otherwise. */
ing_tenant *ing_tenant_get(ing_ingester *ing, const char *name, bool create, rt_err *err) {
  *err = RT_OK;
  pthread_rwlock_rdlock(&ing->tenants_lock);
  ing_tenant *t = ing_tenant_find(ing, name);
  pthread_rwlock_unlock(&ing->tenants_lock);
  if (t || !create) {
    return t;
  }
  pthread_rwlock_wrlock(&ing->tenants_lock);
  t = ing_tenant_find(ing, name);
  if (!t) {
    uint32_t id = ing->next_tenant_id;
    size_t nl = strlen(name);
    char *key = rt_alloc(nl + 1);
    if (!key) {
      *err = RT_ENOMEM;
    } else {
      key[0] = ING_META_TENANT_PREFIX;
      memcpy(key + 1, name, nl);
      uint8_t val[4];
      ing_put_u32(val, id);
      char *dberr = NULL;
      rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
      rocksdb_writeoptions_set_sync(wo, ing->cfg.wal_sync);
      rocksdb_put_cf(ing->db, wo, ing->cf[ING_CF_META], key, nl + 1, (const char *)val, 4, &dberr);
      rocksdb_writeoptions_destroy(wo);
      rt_free(key, nl + 1);
      *err = ing_dberr(dberr, "put tenant");
      if (!*err) {
        *err = ing_tenant_register(ing, name, id, &t);
      }
    }
  }
  pthread_rwlock_unlock(&ing->tenants_lock);
  return t;
}

/* ------------------------------------------------------------------ chunk closing */

static void ing_note_span(ing_ingester *ing, int64_t span, rocksdb_writebatch_t *wb) {
  int64_t cur = atomic_load(&ing->max_span);
  while (span > cur) {
    if (atomic_compare_exchange_weak(&ing->max_span, &cur, span)) {
      uint8_t v[8];
      ing_put_u64(v, (uint64_t)span);
      rocksdb_writebatch_put_cf(wb, ing->cf[ING_CF_META], ING_META_SPAN_KEY, 1, (const char *)v, 8);
      break;
    }
  }
}

static void ing_put_chunk(ing_ingester *ing, ing_tenant *t, ing_series *s, const uint8_t *bytes,
                          size_t len, int64_t mint, int64_t maxt, rocksdb_writebatch_t *wb,
                          rt_buf *tmp) {
  uint8_t key[ING_CHUNK_KEY_LEN];
  ing_chunk_key(key, t->id, s->ref, mint, s->nchunks++);
  /* on disk, the decimal encoding when it is smaller (ing_dchunk.c) */
  uint8_t enc = RT_CHUNK_ENC_XOR;
  rt_buf dec = RT_BUF_INIT;
  uint16_t n = rt_chunk_count(bytes, len);
  ing_sample *smp = n ? rt_alloc(n * sizeof *smp) : NULL;
  if (smp) {
    rt_chunk_iter it;
    rt_chunk_iter_init(&it, bytes, len);
    size_t k = 0;
    while (k < n && rt_chunk_iter_next(&it, &smp[k].t, &smp[k].v)) {
      k++;
    }
    if (k == n && ing_dchunk_encode(smp, n, &dec) && dec.len < len) {
      enc = ING_CHUNK_ENC_DECIMAL;
      bytes = (const uint8_t *)dec.data;
      len = dec.len;
    }
    rt_free(smp, n * sizeof *smp);
  }
  rt_buf_reset(tmp);
  uint8_t fmt = (uint8_t)(ING_FORMAT_VERSION << 4 | enc);
  rt_buf_append(tmp, &fmt, 1);
  ing_put_uvarint(tmp, (uint64_t)maxt - (uint64_t)mint);
  rt_buf_append(tmp, bytes, len);
  rt_buf_free(&dec);
  rocksdb_writebatch_put_cf(wb, ing->cf[ING_CF_CHUNKS], (const char *)key, sizeof key, tmp->data,
                            tmp->len);
  ing_note_span(ing, maxt - mint, wb);
  atomic_fetch_add(&ing->st_chunks, 1);
}

/* Writes the series' open chunk and out-of-order buffer as closed chunks into wb and records
 * the flush position (I3). Caller holds t->lock for writing. */
static rt_err ing_close_series(ing_ingester *ing, ing_tenant *t, ing_series *s,
                               rocksdb_writebatch_t *wb, rt_buf *tmp) {
  if (s->head.count > 0) {
    size_t len;
    const uint8_t *b = rt_xor_bytes(&s->head, &len);
    ing_put_chunk(ing, t, s, b, len, s->head.mint, s->head.maxt, wb, tmp);
    s->flushed_first_t = RT_MIN(s->flushed_first_t, s->head.mint);
    if (s->head.maxt >= s->flushed_last_t) {
      s->flushed_last_t = s->head.maxt;
      s->flushed_last_v = s->head.v;
    }
  }
  if (s->nooo > 0) {
    rt_xor_appender a;
    rt_xor_appender_init(&a);
    for (uint32_t i = 0; i < s->nooo; i++) {
      if (rt_xor_append(&a, s->ooo[i].t, s->ooo[i].v)) {
        rt_xor_appender_fini(&a);
        return RT_ENOMEM;
      }
    }
    size_t len;
    const uint8_t *b = rt_xor_bytes(&a, &len);
    ing_put_chunk(ing, t, s, b, len, a.mint, a.maxt, wb, tmp);
    s->flushed_first_t = RT_MIN(s->flushed_first_t, a.mint);
    if (a.maxt > s->flushed_last_t) {
      s->flushed_last_t = a.maxt;
      s->flushed_last_v = a.v;
    }
    rt_xor_appender_fini(&a);
    rt_free(s->ooo, s->ooo_cap * sizeof *s->ooo);
    s->ooo = NULL;
    s->nooo = s->ooo_cap = 0;
  }
  s->flushed_seq = s->cur_seq;
  s->flushed_idx = s->cur_idx;
  s->unflushed_seq = 0;
  rt_xor_appender_fini(&s->head);
  rt_xor_appender_init(&s->head);
  uint8_t key[ING_SERIES_KEY_LEN];
  ing_series_key(key, t->id, s->ref);
  ing_series_value(tmp, s);
  rocksdb_writebatch_put_cf(wb, ing->cf[ING_CF_SERIES], (const char *)key, sizeof key, tmp->data,
                            tmp->len);
  return tmp->oom ? RT_ENOMEM : RT_OK;
}

static void ing_advance(ing_series *s, uint64_t seq) {
  if (s->cur_seq != seq) {
    s->cur_seq = seq;
    s->cur_idx = 0;
  }
  s->cur_idx++;
}

static void ing_mark_unflushed(ing_series *s, uint64_t seq) {
  if (s->unflushed_seq == 0) {
    s->unflushed_seq = seq;
  }
}

/* Applies one sample that was accepted and logged in WAL record `seq` (live or during replay).
 * Deterministic in the series state so that replay rebuilds what the live path built (I4).
 * Closed chunks go into wb. Caller holds t->lock for writing. */
static rt_err ing_apply(ing_ingester *ing, ing_tenant *t, ing_series *s, int64_t ts, double v,
                        uint64_t seq, rocksdb_writebatch_t *wb, rt_buf *tmp) {
  rt_err err = RT_OK;
  if (s->first_t > s->last_t /* no sample yet */ || ts > s->last_t) {
    if (s->head.count > 0 &&
        (s->head.count >= ing->cfg.chunk_max_samples ||
         (uint64_t)ts - (uint64_t)s->head.mint >= (uint64_t)ing->cfg.chunk_max_age_ms)) {
      err = ing_close_series(ing, t, s, wb, tmp);
      if (err) {
        return err;
      }
    }
    err = rt_xor_append(&s->head, ts, v);
    if (err) {
      return err;
    }
    ing_advance(s, seq);
    ing_mark_unflushed(s, seq);
    s->last_t = ts;
    s->last_v = v;
  } else if (ts == s->last_t) {
    ing_advance(s, seq); /* never logged by the live path; tolerated */
    return RT_OK;
  } else {
    /* out of order: sorted insert into the OOO buffer (same timestamp: replace) */
    uint32_t lo = 0, hi = s->nooo;
    while (lo < hi) {
      uint32_t mid = (lo + hi) / 2;
      if (s->ooo[mid].t < ts) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    if (lo < s->nooo && s->ooo[lo].t == ts) {
      s->ooo[lo].v = v;
    } else {
      if (s->nooo == s->ooo_cap) {
        uint32_t ncap = s->ooo_cap ? s->ooo_cap * 2 : 8;
        ing_sample *n = rt_realloc(s->ooo, s->ooo_cap * sizeof *n, ncap * sizeof *n);
        if (!n) {
          return RT_ENOMEM;
        }
        s->ooo = n;
        s->ooo_cap = ncap;
      }
      memmove(s->ooo + lo + 1, s->ooo + lo, (s->nooo - lo) * sizeof *s->ooo);
      s->ooo[lo].t = ts;
      s->ooo[lo].v = v;
      s->nooo++;
    }
    ing_advance(s, seq);
    ing_mark_unflushed(s, seq);
    if (s->nooo >= (uint32_t)ing->cfg.chunk_max_samples ||
        (uint64_t)s->ooo[s->nooo - 1].t - (uint64_t)s->ooo[0].t >= (uint64_t)ing->cfg.chunk_max_age_ms) {
      err = ing_close_series(ing, t, s, wb, tmp);
    }
  }
  if (ts < s->first_t) {
    s->first_t = ts;
  }
  if (ts > t->max_t) {
    t->max_t = ts;
  }
  if (ts < t->min_t) {
    t->min_t = ts;
  }
  return err;
}

/* ------------------------------------------------------------------ group commit */

static rt_err ing_sync(ing_ingester *ing, uint64_t ticket) {
  rt_err err = RT_OK;
  pthread_mutex_lock(&ing->sync_mu);
  while (ing->synced_tickets < ticket) {
    if (ing->syncing) {
      pthread_cond_wait(&ing->sync_cv, &ing->sync_mu);
      continue;
    }
    ing->syncing = true;
    uint64_t target = ing->write_tickets;
    pthread_mutex_unlock(&ing->sync_mu);
    char *dberr = NULL;
    rocksdb_flush_wal(ing->db, 1, &dberr);
    err = ing_dberr(dberr, "sync wal");
    pthread_mutex_lock(&ing->sync_mu);
    ing->syncing = false;
    if (!err && target > ing->synced_tickets) {
      ing->synced_tickets = target;
    }
    pthread_cond_broadcast(&ing->sync_cv);
    if (err) {
      break;
    }
  }
  pthread_mutex_unlock(&ing->sync_mu);
  return err;
}

static uint64_t ing_take_ticket(ing_ingester *ing) {
  pthread_mutex_lock(&ing->sync_mu);
  uint64_t t = ++ing->write_tickets;
  pthread_mutex_unlock(&ing->sync_mu);
  return t;
}

/* ------------------------------------------------------------------ push */

typedef struct ing_push_entry {
  ing_series *s;
  ing_sample *acc; /* accepted samples (arena) */
  size_t nacc;
  rt_label *ls;    /* sorted labels (arena; strings borrowed from the request) */
  size_t n;
  ing_key key;
  uint64_t hash;
} ing_push_entry;

static int ing_label_ptr_cmp(const void *a, const void *b) {
  return strcmp(((const rt_label *)a)->name, ((const rt_label *)b)->name);
}

/* Is ts present in the series' head chunk or OOO buffer? Sets *v. */
static bool ing_find_sample(const ing_series *s, int64_t ts, double *v) {
  uint32_t lo = 0, hi = s->nooo;
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    if (s->ooo[mid].t < ts) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo < s->nooo && s->ooo[lo].t == ts) {
    *v = s->ooo[lo].v;
    return true;
  }
  if (s->head.count > 0 && ts >= s->head.mint && ts <= s->head.maxt) {
    size_t len;
    const uint8_t *b = rt_xor_bytes(&s->head, &len);
    rt_chunk_iter it;
    rt_chunk_iter_init(&it, b, len);
    int64_t t;
    double x;
    while (rt_chunk_iter_next(&it, &t, &x)) {
      if (t == ts) {
        *v = x;
        return true;
      }
      if (t > ts) {
        break;
      }
    }
  }
  return false;
}

/* Is ts present in one of the series' closed chunks? Reads RocksDB; only for out-of-order
 * samples older than the head. Caller holds t->lock (chunks of s cannot change). */
static bool ing_find_closed(ing_ingester *ing, const ing_tenant *t, const ing_series *s, int64_t ts,
                            double *v) {
  if (s->nchunks == 0 || ts < s->flushed_first_t || ts > s->flushed_last_t) {
    return false;
  }
  int64_t span = atomic_load(&ing->max_span);
  int64_t from = (uint64_t)ts - (uint64_t)INT64_MIN < (uint64_t)span ? INT64_MIN : ts - span;
  uint8_t key[ING_CHUNK_KEY_LEN];
  ing_chunk_key(key, t->id, s->ref, from, 0);
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(ing->db, ing->ropts, ing->cf[ING_CF_CHUNKS]);
  bool found = false;
  for (rocksdb_iter_seek(it, (const char *)key, sizeof key); !found && rocksdb_iter_valid(it);
       rocksdb_iter_next(it)) {
    size_t kl, vl;
    const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
    if (kl != ING_CHUNK_KEY_LEN || memcmp(k, key, 8) != 0) {
      break;
    }
    int64_t cmint = (int64_t)(ing_get_u64(k + 8) ^ (1ull << 63));
    if (cmint > ts) {
      break;
    }
    const uint8_t *val = (const uint8_t *)rocksdb_iter_value(it, &vl);
    ing_rd r = {val, val + vl, false};
    const uint8_t *fmt = ing_get_bytes(&r, 1);
    uint64_t d = ing_get_uvarint(&r);
    if (r.err || (int64_t)((uint64_t)cmint + d) < ts) {
      continue;
    }
    size_t len = (size_t)(r.end - r.p);
    if ((fmt[0] & 0xf) == ING_CHUNK_ENC_DECIMAL) {
      uint16_t n = ing_dchunk_count(r.p, len);
      ing_sample *smp = rt_alloc((n ? n : 1) * sizeof *smp);
      if (smp && ing_dchunk_decode(r.p, len, smp, n)) {
        for (uint16_t i = 0; i < n && !found; i++) {
          if (smp[i].t == ts) {
            *v = smp[i].v;
            found = true;
          }
        }
      }
      rt_free(smp, (n ? n : 1) * sizeof *smp);
    } else {
      rt_chunk_iter ci;
      rt_chunk_iter_init(&ci, r.p, len);
      int64_t ct;
      double cv;
      while (!found && rt_chunk_iter_next(&ci, &ct, &cv)) {
        if (ct == ts) {
          *v = cv;
          found = true;
        }
      }
    }
  }
  rocksdb_iter_destroy(it);
  return found;
}

static rt_err ing_add_error(Ringtail__PushResponse *resp, rt_arena *arena, size_t *cap, uint32_t index,
                            Ringtail__SampleError code, const char *what, int64_t ts,
                            const ing_series *s, const rt_label *labels, size_t nlabels) {
  if (resp->n_errors == *cap) {
    size_t ncap = *cap ? *cap * 2 : 8;
    Ringtail__SeriesError **n = rt_arena_alloc(arena, ncap * sizeof *n);
    if (!n) {
      return RT_ENOMEM;
    }
    if (resp->n_errors) {
      memcpy(n, resp->errors, resp->n_errors * sizeof *n);
    }
    resp->errors = n;
    *cap = ncap;
  }
  Ringtail__SeriesError *e = rt_arena_alloc(arena, sizeof *e);
  char lb[1024];
  char msg[1400];
  if (!e) {
    return RT_ENOMEM;
  }
  ringtail__series_error__init(e);
  ing_labels_format(s ? s->labels : labels, s ? s->nlabels : nlabels, lb, sizeof lb);
  snprintf(msg, sizeof msg, "%s (timestamp: %lld, series: %s)", what, (long long)ts, lb);
  e->index = index;
  e->code = code;
  e->message = rt_arena_strndup(arena, msg, strlen(msg));
  if (!e->message) {
    return RT_ENOMEM;
  }
  resp->errors[resp->n_errors++] = e;
  return RT_OK;
}

/* Metadata: returns true when it differs from what is stored (and updates the head). */
static rt_err ing_meta_update(ing_ingester *ing, ing_tenant *t, const Prometheus__MetricMetadata *md,
                              rocksdb_writebatch_t *wb, rt_buf *tmp, bool persist) {
  const char *fam = md->metric_family_name ? md->metric_family_name : "";
  const char *help = md->help ? md->help : "";
  const char *unit = md->unit ? md->unit : "";
  const char *name = ing_intern_str(&t->strings, &t->slab, fam, strlen(fam));
  if (!name) {
    return RT_ENOMEM;
  }
  ing_meta *m = ing_pmap_get(&t->meta, name);
  if (m && m->type == (uint8_t)md->type && strcmp(m->help, help) == 0 && strcmp(m->unit, unit) == 0) {
    return RT_OK;
  }
  char *h = rt_strdup(help), *u = rt_strdup(unit);
  if (!h || !u) {
    rt_free(h, 0);
    rt_free(u, 0);
    return RT_ENOMEM;
  }
  if (!m) {
    m = ing_slab_alloc(&t->slab, sizeof *m);
    if (!m || ing_pmap_put(&t->meta, name, m)) {
      rt_free(h, 0);
      rt_free(u, 0);
      return RT_ENOMEM;
    }
  } else {
    rt_free(m->help, 0);
    rt_free(m->unit, 0);
  }
  m->type = (uint8_t)md->type;
  m->help = h;
  m->unit = u;
  if (persist) {
    rt_buf key = RT_BUF_INIT;
    uint8_t pfx = ING_META_METADATA_PREFIX;
    rt_buf_append(&key, &pfx, 1);
    ing_put_be32(&key, t->id);
    rt_buf_append(&key, fam, strlen(fam));
    rt_buf_reset(tmp);
    uint8_t hdr[2] = {ING_META_MAGIC, m->type};
    rt_buf_append(tmp, hdr, 2);
    ing_put_uvarint(tmp, strlen(h));
    rt_buf_append(tmp, h, strlen(h));
    ing_put_uvarint(tmp, strlen(u));
    rt_buf_append(tmp, u, strlen(u));
    rt_err err = key.oom || tmp->oom ? RT_ENOMEM : RT_OK;
    if (!err) {
      rocksdb_writebatch_put_cf(wb, ing->cf[ING_CF_META], key.data, key.len, tmp->data, tmp->len);
    }
    rt_buf_free(&key);
    return err;
  }
  return RT_OK;
}

static void ing_put_series_def(ing_ingester *ing, ing_tenant *t, const ing_series *s,
                               rocksdb_writebatch_t *wb, rt_buf *tmp) {
  uint8_t key[ING_SERIES_KEY_LEN];
  ing_series_key(key, t->id, s->ref);
  ing_series_value(tmp, s);
  rocksdb_writebatch_put_cf(wb, ing->cf[ING_CF_SERIES], (const char *)key, sizeof key, tmp->data,
                            tmp->len);
  for (size_t i = 0; i < s->nlabels; i++) {
    rt_buf_reset(tmp);
    ing_put_be32(tmp, t->id);
    rt_buf_append(tmp, s->labels[i].name, strlen(s->labels[i].name) + 1);
    rt_buf_append(tmp, s->labels[i].value, strlen(s->labels[i].value) + 1);
    ing_put_be32(tmp, s->ref);
    rocksdb_writebatch_put_cf(wb, ing->cf[ING_CF_POSTINGS], tmp->data, tmp->len, "", 0);
  }
}

rt_err ing_push(ing_ingester *ing, const Ringtail__PushRequest *req, Ringtail__PushResponse *resp,
                rt_arena *arena) {
  ringtail__push_response__init(resp);
  int broken = atomic_load(&ing->broken);
  if (broken) {
    return (rt_err)broken;
  }
  rt_err err = RT_OK;
  const char *tenant_name = req->tenant ? req->tenant : "";
  ing_tenant *t = ing_tenant_get(ing, tenant_name, true, &err);
  if (!t) {
    return err;
  }
  ing_push_entry *ents = rt_arena_alloc(arena, (req->n_timeseries ? req->n_timeseries : 1) * sizeof *ents);
  if (!ents) {
    return RT_ENOMEM;
  }
  size_t errcap = 0;
  uint64_t accepted = 0, dups = 0, rejected[5] = {0};
  rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
  rocksdb_writebatch_t *cb = rocksdb_writebatch_create();
  rt_buf tmp = RT_BUF_INIT, rec = RT_BUF_INIT;
  bool need_write = false;
  ing_series_limits lim = {0};
  size_t created = 0;

  /* labels and series keys need no lock */
  for (size_t i = 0; i < req->n_timeseries && !err; i++) {
    const Prometheus__TimeSeries *ts = req->timeseries[i];
    ing_push_entry *e = &ents[i];
    memset(e, 0, sizeof *e);
    size_t n = ts->n_labels;
    e->ls = rt_arena_alloc(arena, (n ? n : 1) * sizeof *e->ls);
    if (!e->ls) {
      err = RT_ENOMEM;
      break;
    }
    bool sorted = true;
    for (size_t k = 0; k < n; k++) {
      e->ls[k].name = ts->labels[k]->name ? ts->labels[k]->name : "";
      e->ls[k].value = ts->labels[k]->value ? ts->labels[k]->value : "";
      if (k && strcmp(e->ls[k - 1].name, e->ls[k].name) >= 0) {
        sorted = false;
      }
    }
    if (!sorted) {
      qsort(e->ls, n, sizeof *e->ls, ing_label_ptr_cmp);
    }
    e->n = n;
    if (n > 0) {
      err = ing_series_keys(t->name, e->ls, n, arena, &e->key, &e->hash);
    }
  }
  if (err) {
    rocksdb_writebatch_destroy(wb);
    rocksdb_writebatch_destroy(cb);
    return err;
  }

  /* the tenant's out-of-order window (runtime config), read once per push */
  int64_t ooo_window = ing->cfg.ooo_window_ms;
  if (rt_limits_active()) {
    rt_limits tl;
    rt_limits_get(t->name, &tl);
    ooo_window = tl.out_of_order_time_window_ms;
  }
  pthread_rwlock_wrlock(&t->lock);
  uint64_t seq = atomic_fetch_add(&ing->next_seq, 1);
  /* start the cache misses of the lookups early: the slots now, series a few entries ahead */
  for (size_t i = 0; i < req->n_timeseries; i++) {
    __builtin_prefetch(&t->slots[ents[i].key.lo & (t->nslots - 1)]);
  }
  int64_t ooo_min = INT64_MAX; /* out-of-order samples at or after this are accepted */
  if (ooo_window > 0 && t->max_t != INT64_MIN) {
    ooo_min = t->max_t < INT64_MIN + ooo_window ? INT64_MIN : t->max_t - ooo_window;
  }

  /* phase 1: find or create each series and check each sample against the head (I5) */
  for (size_t i = 0; i < req->n_timeseries && !err; i++) {
    const Prometheus__TimeSeries *ts = req->timeseries[i];
    if (i + 4 < req->n_timeseries) {
      const ing_series *ahead = ing_series_peek(t, ents[i + 4].key);
      if (ahead) {
        __builtin_prefetch(ahead);
        __builtin_prefetch((const char *)ahead + 64);
      }
    }
    size_t n = ents[i].n;
    rt_label *ls = ents[i].ls;
    if (n == 0) {
      err = ing_add_error(resp, arena, &errcap, (uint32_t)i, RINGTAIL__SAMPLE_ERROR__SAMPLE_LIMIT,
                          "series without labels", 0, NULL, ls, 0);
      continue;
    }
    ing_key key = ents[i].key;
    uint64_t h = ents[i].hash;
    ing_series *s = ing_series_find(t, key);
    if (!s) {
      /* a new series: within the tenant's series limits? (ing_limits.c) */
      if (!lim.loaded) {
        ing_series_limits_load(ing, t->name, &lim);
      }
      char lmsg[512];
      const char *why = ing_series_limit_check(t, &lim, ls, n, lmsg, sizeof lmsg);
      if (why) {
        rejected[RINGTAIL__SAMPLE_ERROR__SAMPLE_LIMIT] += ts->n_samples;
        err = ing_add_error(resp, arena, &errcap, (uint32_t)i, RINGTAIL__SAMPLE_ERROR__SAMPLE_LIMIT,
                            why, ts->n_samples ? ts->samples[0]->timestamp : 0, NULL, ls, n);
        continue;
      }
      err = ing_series_add(t, key, h, ls, n, 0, &s);
      if (err) {
        break;
      }
      atomic_fetch_add(&ing->st_series, 1);
      created++;
    }
    ents[i].s = s;
    if (!s->persisted) {
      ing_put_series_def(ing, t, s, wb, &tmp);
      need_write = true;
    }
    if (ts->n_samples == 0) {
      continue;
    }
    ents[i].acc = rt_arena_alloc(arena, ts->n_samples * sizeof *ents[i].acc);
    if (!ents[i].acc) {
      err = RT_ENOMEM;
      break;
    }
    if (s->chk_batch != seq) {
      s->chk_batch = seq;
      s->chk_t = s->last_t;
      s->chk_v = s->last_v;
      s->chk_empty = s->first_t > s->last_t;
    }
    bool reported = false;
    for (size_t k = 0; k < ts->n_samples && !err; k++) {
      int64_t st = ts->samples[k]->timestamp;
      double sv = ts->samples[k]->value;
      Ringtail__SampleError code = RINGTAIL__SAMPLE_ERROR__SAMPLE_OK;
      const char *what = NULL;
      if (s->chk_empty || st > s->chk_t) {
        ents[i].acc[ents[i].nacc++] = (ing_sample){st, sv};
        s->chk_t = st;
        s->chk_v = sv;
        s->chk_empty = false;
      } else if (st == s->chk_t) {
        if (ing_f64_bits(sv) == ing_f64_bits(s->chk_v)) {
          dups++;
        } else {
          code = RINGTAIL__SAMPLE_ERROR__SAMPLE_DUPLICATE_TIMESTAMP;
          what = "duplicate sample for timestamp";
        }
      } else if (st >= ooo_min) {
        double old;
        if (ing_find_sample(s, st, &old) || ing_find_closed(ing, t, s, st, &old)) {
          if (ing_f64_bits(old) == ing_f64_bits(sv)) {
            dups++;
          } else {
            code = RINGTAIL__SAMPLE_ERROR__SAMPLE_DUPLICATE_TIMESTAMP;
            what = "duplicate sample for timestamp";
          }
        } else {
          ents[i].acc[ents[i].nacc++] = (ing_sample){st, sv};
        }
      } else if (ooo_window > 0) {
        code = RINGTAIL__SAMPLE_ERROR__SAMPLE_TOO_OLD;
        what = "out of order sample: older than the out-of-order window";
      } else {
        code = RINGTAIL__SAMPLE_ERROR__SAMPLE_OUT_OF_ORDER;
        what = "out of order sample";
      }
      if (code != RINGTAIL__SAMPLE_ERROR__SAMPLE_OK) {
        rejected[code]++;
        if (!reported) {
          reported = true;
          err = ing_add_error(resp, arena, &errcap, (uint32_t)i, code, what, st, s, NULL, 0);
        }
      }
    }
    accepted += ents[i].nacc;
  }
  for (size_t i = 0; i < req->n_metadata && !err; i++) {
    size_t before = rocksdb_writebatch_count(wb);
    err = ing_meta_update(ing, t, req->metadata[i], wb, &tmp, true);
    if ((size_t)rocksdb_writebatch_count(wb) != before) {
      need_write = true;
    }
  }

  /* phase 2: one WAL record for the whole batch, with the new series, in one WriteBatch (I1) */
  if (!err && accepted > 0) {
    uint8_t hdr[2] = {ING_WAL_MAGIC, ING_FORMAT_VERSION};
    rt_buf_append(&rec, hdr, 2);
    ing_put_be32(&rec, t->id);
    size_t nser = 0;
    for (size_t i = 0; i < req->n_timeseries; i++) {
      nser += ents[i].nacc > 0;
    }
    ing_put_uvarint(&rec, nser);
    for (size_t i = 0; i < req->n_timeseries; i++) {
      if (ents[i].nacc == 0) {
        continue;
      }
      ing_put_uvarint(&rec, ents[i].s->ref);
      ing_put_uvarint(&rec, ents[i].nacc);
      int64_t prev = 0;
      for (size_t k = 0; k < ents[i].nacc; k++) {
        ing_put_zvarint(&rec, (int64_t)((uint64_t)ents[i].acc[k].t - (uint64_t)prev));
        ing_put_be64(&rec, ing_f64_bits(ents[i].acc[k].v));
        prev = ents[i].acc[k].t;
      }
    }
    if (rec.oom || tmp.oom) {
      err = RT_ENOMEM;
    } else {
      uint8_t key[ING_WAL_KEY_LEN];
      ing_put_u64(key, seq);
      rocksdb_writebatch_put_cf(wb, ing->cf[ING_CF_WAL], (const char *)key, sizeof key, rec.data,
                                rec.len);
      need_write = true;
    }
  }
  if (!err && tmp.oom) {
    err = RT_ENOMEM;
  }
  uint64_t ticket = 0;
  if (!err && need_write) {
    char *dberr = NULL;
    rocksdb_write(ing->db, ing->wopts, wb, &dberr);
    err = ing_dberr(dberr, "write wal");
    if (!err) {
      ticket = ing_take_ticket(ing);
    }
  }

  /* phase 3: apply to the head; chunks that close go to their own batch (I3) */
  if (!err) {
    for (size_t i = 0; i < req->n_timeseries; i++) {
      if (ents[i].s) {
        ents[i].s->persisted = true;
      }
    }
    for (size_t i = 0; i < req->n_timeseries && !err; i++) {
      for (size_t k = 0; k < ents[i].nacc && !err; k++) {
        err = ing_apply(ing, t, ents[i].s, ents[i].acc[k].t, ents[i].acc[k].v, seq, cb, &tmp);
      }
    }
    if (!err && rocksdb_writebatch_count(cb) > 0) {
      char *dberr = NULL;
      rocksdb_write(ing->db, ing->wopts, cb, &dberr);
      err = ing_dberr(dberr, "write chunks");
    }
    if (err) {
      /* the WAL record is written but the head is not fully in step with it: stop taking
       * writes; a restart rebuilds the head from the WAL (I2) */
      atomic_store(&ing->broken, (int)err);
      rt_error(ING_LOG, "head out of step with the wal; refusing further pushes", "err=\"%s\"",
               rt_strerror(err));
    }
  }
  if (created) {
    ing_tenant_gauge_update(t);
  }
  pthread_rwlock_unlock(&t->lock);
  rocksdb_writebatch_destroy(wb);
  rocksdb_writebatch_destroy(cb);
  rt_buf_free(&tmp);
  rt_buf_free(&rec);
  if (err) {
    return err;
  }
  atomic_fetch_add(&t->samples_total, accepted);
  /* phase 4: durability before the acknowledgement (group commit) */
  if (ing->cfg.wal_sync) {
    if (ticket == 0) {
      pthread_mutex_lock(&ing->sync_mu);
      ticket = ing->write_tickets; /* duplicates: wait for what they duplicate */
      pthread_mutex_unlock(&ing->sync_mu);
    }
    err = ing_sync(ing, ticket);
    if (err) {
      return err;
    }
  }
  resp->samples_accepted = accepted;
  resp->samples_duplicate = dups;
  atomic_fetch_add(&ing->st_samples, accepted);
  for (int c = 0; c < 5; c++) {
    if (rejected[c]) {
      atomic_fetch_add(&ing->st_rejected[c], rejected[c]);
    }
  }
  return RT_OK;
}

/* ------------------------------------------------------------------ matchers from requests */

rt_err ing_matchers(Prometheus__LabelMatcher **pm, size_t n, rt_matcher **out) {
  *out = NULL;
  if (n == 0) {
    return RT_OK;
  }
  rt_matcher *ms = rt_calloc(n, sizeof *ms);
  if (!ms) {
    return RT_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    char eb[256];
    rt_match_type ty = (rt_match_type)pm[i]->type;
    if (pm[i]->type > PROMETHEUS__LABEL_MATCHER__TYPE__NRE) {
      for (size_t k = 0; k < i; k++) {
        rt_matcher_fini(&ms[k]);
      }
      rt_free(ms, n * sizeof *ms);
      return RT_EINVAL;
    }
    rt_err err = rt_matcher_init(&ms[i], ty, pm[i]->name ? pm[i]->name : "",
                                 pm[i]->value ? pm[i]->value : "", eb, sizeof eb);
    if (err) {
      for (size_t k = 0; k < i; k++) {
        rt_matcher_fini(&ms[k]);
      }
      rt_free(ms, n * sizeof *ms);
      return err;
    }
  }
  *out = ms;
  return RT_OK;
}

void ing_matchers_free(rt_matcher *ms, size_t n) {
  for (size_t i = 0; ms && i < n; i++) {
    rt_matcher_fini(&ms[i]);
  }
  rt_free(ms, n * sizeof *ms);
}

static bool ing_in_range(const ing_series *s, int64_t mint, int64_t maxt) {
  if (s->first_t > s->last_t) {
    return false; /* no samples yet */
  }
  return s->first_t <= maxt && s->last_t >= mint;
}

static void ing_range(int64_t *mint, int64_t *maxt) {
  if (*mint == 0 && *maxt == 0) {
    *mint = INT64_MIN;
    *maxt = INT64_MAX;
  }
}

/* ------------------------------------------------------------------ select */

typedef struct ing_sel {
  const ing_series *s;
  rt_label *labels;
  uint16_t nlabels;
  uint32_t ref;
  Ringtail__Chunk **chunks;
  size_t nchunks, cap;
} ing_sel;

static int ing_sel_ref_cmp(const void *a, const void *b) {
  const ing_sel *x = *(ing_sel *const *)a, *y = *(ing_sel *const *)b;
  return (x->ref > y->ref) - (x->ref < y->ref);
}

static int ing_sel_cmp(const void *a, const void *b) {
  const ing_sel *x = a, *y = b;
  return rt_labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

static rt_err ing_sel_add_chunk(ing_sel *e, rt_arena *arena, int64_t mint, int64_t maxt,
                                const uint8_t *data, size_t len) {
  if (e->nchunks == e->cap) {
    size_t ncap = e->cap ? e->cap * 2 : 4;
    Ringtail__Chunk **n = rt_arena_alloc(arena, ncap * sizeof *n);
    if (!n) {
      return RT_ENOMEM;
    }
    if (e->nchunks) {
      memcpy(n, e->chunks, e->nchunks * sizeof *n);
    }
    e->chunks = n;
    e->cap = ncap;
  }
  Ringtail__Chunk *c = rt_arena_alloc(arena, sizeof *c);
  uint8_t *d = rt_arena_alloc(arena, len ? len : 1);
  if (!c || !d) {
    return RT_ENOMEM;
  }
  ringtail__chunk__init(c);
  memcpy(d, data, len);
  c->mint = mint;
  c->maxt = maxt;
  c->encoding = RT_CHUNK_ENC_XOR;
  c->data.data = d;
  c->data.len = len;
  e->chunks[e->nchunks++] = c;
  return RT_OK;
}

/* Transcodes a decimal chunk to XOR (readers only see XOR chunks). */
static rt_err ing_sel_add_decimal(ing_sel *e, rt_arena *arena, int64_t mint, int64_t maxt,
                                  const uint8_t *data, size_t len) {
  uint16_t n = ing_dchunk_count(data, len);
  ing_sample *smp = rt_arena_alloc(arena, (n ? n : 1) * sizeof *smp);
  if (!smp) {
    return RT_ENOMEM;
  }
  if (!ing_dchunk_decode(data, len, smp, n)) {
    return RT_EPROTO;
  }
  rt_xor_appender a;
  rt_xor_appender_init(&a);
  rt_err err = RT_OK;
  for (uint16_t i = 0; i < n && !err; i++) {
    err = rt_xor_append(&a, smp[i].t, smp[i].v);
  }
  if (!err) {
    size_t xl;
    const uint8_t *xb = rt_xor_bytes(&a, &xl);
    err = ing_sel_add_chunk(e, arena, mint, maxt, xb, xl);
  }
  rt_xor_appender_fini(&a);
  return err;
}

static int ing_chunk_cmp(const void *a, const void *b) {
  const Ringtail__Chunk *x = *(Ringtail__Chunk *const *)a, *y = *(Ringtail__Chunk *const *)b;
  return (x->mint > y->mint) - (x->mint < y->mint);
}

/* Reads the closed chunks of one series overlapping [mint, maxt] (snapshot-consistent). */
static rt_err ing_read_chunks(ing_ingester *ing, rocksdb_iterator_t *it, uint32_t tenant, ing_sel *e,
                              int64_t mint, int64_t maxt, rt_arena *arena) {
  int64_t span = atomic_load(&ing->max_span);
  int64_t from = mint;
  if ((uint64_t)mint - (uint64_t)INT64_MIN < (uint64_t)span) {
    from = INT64_MIN;
  } else {
    from = mint - span;
  }
  uint8_t key[ING_CHUNK_KEY_LEN];
  ing_chunk_key(key, tenant, e->ref, from, 0);
  /* Series are read in increasing ref order. When the previous series' scan left the iterator
   * on the first key of this series and that key is already >= the target, it is exactly where
   * a seek would land: skip the seek. */
  bool positioned = false;
  if (rocksdb_iter_valid(it)) {
    size_t kl;
    const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
    positioned = kl == ING_CHUNK_KEY_LEN && memcmp(k, key, 8) == 0 && memcmp(k, key, sizeof key) >= 0;
  }
  if (!positioned) {
    rocksdb_iter_seek(it, (const char *)key, sizeof key);
  }
  for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t kl, vl;
    const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
    if (kl != ING_CHUNK_KEY_LEN || memcmp(k, key, 8) != 0) {
      break;
    }
    int64_t cmint = (int64_t)(ing_get_u64(k + 8) ^ (1ull << 63));
    if (cmint > maxt) {
      break;
    }
    const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
    ing_rd r = {v, v + vl, false};
    const uint8_t *fmt = ing_get_bytes(&r, 1);
    uint64_t d = ing_get_uvarint(&r);
    if (r.err || (fmt[0] != (ING_FORMAT_VERSION << 4 | RT_CHUNK_ENC_XOR) &&
                  fmt[0] != (ING_FORMAT_VERSION << 4 | ING_CHUNK_ENC_DECIMAL))) {
      rt_warn(ING_LOG, "skipping a corrupt chunk", "tenant=%u ref=%u", tenant, e->ref);
      continue;
    }
    int64_t cmaxt = (int64_t)((uint64_t)cmint + d);
    if (cmaxt < mint) {
      continue;
    }
    rt_err err;
    if ((fmt[0] & 0xf) == ING_CHUNK_ENC_DECIMAL) {
      err = ing_sel_add_decimal(e, arena, cmint, cmaxt, r.p, (size_t)(r.end - r.p));
      if (err == RT_EPROTO) {
        rt_warn(ING_LOG, "skipping a corrupt chunk", "tenant=%u ref=%u", tenant, e->ref);
        continue;
      }
    } else {
      err = ing_sel_add_chunk(e, arena, cmint, cmaxt, r.p, (size_t)(r.end - r.p));
    }
    if (err) {
      return err;
    }
  }
  char *dberr = NULL;
  rocksdb_iter_get_error(it, &dberr);
  return ing_dberr(dberr, "read chunks");
}

rt_err ing_select(ing_ingester *ing, const Ringtail__SelectRequest *req,
                  Ringtail__SelectResponse *resp, rt_arena *arena) {
  ringtail__select_response__init(resp);
  rt_err err = RT_OK;
  ing_tenant *t = ing_tenant_get(ing, req->tenant ? req->tenant : "", false, &err);
  if (!t) {
    return err;
  }
  rt_matcher *ms = NULL;
  err = ing_matchers(req->matchers, req->n_matchers, &ms);
  if (err) {
    return err;
  }
  int64_t mint = req->mint, maxt = req->maxt;
  ing_range(&mint, &maxt);
  ing_sel *sel = NULL;
  size_t nsel = 0;
  const rocksdb_snapshot_t *snap = NULL;

  pthread_rwlock_rdlock(&t->lock);
  uint32_t *refs;
  size_t nrefs;
  err = ing_head_postings(t, ms, req->n_matchers, arena, &refs, &nrefs);
  if (!err && nrefs) {
    sel = rt_arena_alloc(arena, nrefs * sizeof *sel);
    if (!sel) {
      err = RT_ENOMEM;
    }
  }
  for (size_t i = 0; !err && i < nrefs; i++) {
    const ing_series *s = t->by_ref[refs[i]];
    if (!ing_in_range(s, mint, maxt)) {
      continue;
    }
    if (req->shard_count > 0 && s->hash % req->shard_count != req->shard_index) {
      continue;
    }
    if (ing_tomb_hides(ing, t->id, s, mint, maxt)) {
      continue;
    }
    ing_sel *e = &sel[nsel++];
    memset(e, 0, sizeof *e);
    e->s = s;
    e->labels = s->labels;
    e->nlabels = s->nlabels;
    e->ref = s->ref;
  }
  if (!err && nsel > 1) {
    qsort(sel, nsel, sizeof *sel, ing_sel_cmp);
  }
  if (req->limit > 0 && nsel > req->limit) {
    nsel = req->limit;
  }
  if (!err && !req->labels_only) {
    for (size_t i = 0; !err && i < nsel; i++) {
      const ing_series *s = sel[i].s;
      if (s->head.count > 0 && s->head.mint <= maxt && s->head.maxt >= mint) {
        size_t len;
        const uint8_t *b = rt_xor_bytes(&s->head, &len);
        err = ing_sel_add_chunk(&sel[i], arena, s->head.mint, s->head.maxt, b, len);
      }
      if (!err && s->nooo > 0 && s->ooo[0].t <= maxt && s->ooo[s->nooo - 1].t >= mint) {
        rt_xor_appender a;
        rt_xor_appender_init(&a);
        for (uint32_t k = 0; k < s->nooo && !err; k++) {
          err = rt_xor_append(&a, s->ooo[k].t, s->ooo[k].v);
        }
        if (!err) {
          size_t len;
          const uint8_t *b = rt_xor_bytes(&a, &len);
          err = ing_sel_add_chunk(&sel[i], arena, a.mint, a.maxt, b, len);
        }
        rt_xor_appender_fini(&a);
      }
    }
    snap = rocksdb_create_snapshot(ing->db);
  }
  pthread_rwlock_unlock(&t->lock);

  if (!err && snap) {
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_snapshot(ro, snap);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(ing->db, ro, ing->cf[ING_CF_CHUNKS]);
    /* read in key (ref) order, not label order: the iterator then moves forward through the
     * table and decompresses each block once */
    ing_sel **order = rt_arena_alloc(arena, (nsel ? nsel : 1) * sizeof *order);
    if (!order) {
      err = RT_ENOMEM;
    }
    for (size_t i = 0; !err && i < nsel; i++) {
      order[i] = &sel[i];
    }
    if (!err && nsel > 1) {
      qsort(order, nsel, sizeof *order, ing_sel_ref_cmp);
    }
    for (size_t i = 0; !err && i < nsel; i++) {
      ing_sel *e = order[i];
      err = ing_read_chunks(ing, it, t->id, e, mint, maxt, arena);
      if (!err && e->nchunks > 1) {
        qsort(e->chunks, e->nchunks, sizeof *e->chunks, ing_chunk_cmp);
      }
    }
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
  }
  if (snap) {
    rocksdb_release_snapshot(ing->db, snap);
  }
  if (!err && nsel) {
    resp->series = rt_arena_alloc(arena, nsel * sizeof *resp->series);
    if (!resp->series) {
      err = RT_ENOMEM;
    }
  }
  for (size_t i = 0; !err && i < nsel; i++) {
    Ringtail__SeriesChunks *sc = rt_arena_alloc(arena, sizeof *sc);
    Prometheus__Label **lp = rt_arena_alloc(arena, (sel[i].nlabels + 1) * sizeof *lp);
    Prometheus__Label *lv = rt_arena_alloc(arena, (sel[i].nlabels + 1) * sizeof *lv);
    if (!sc || !lp || !lv) {
      err = RT_ENOMEM;
      break;
    }
    ringtail__series_chunks__init(sc);
    for (size_t k = 0; k < sel[i].nlabels; k++) {
      prometheus__label__init(&lv[k]);
      /* interned strings live until ing_destroy (series are never removed) */
      lv[k].name = (char *)sel[i].labels[k].name;
      lv[k].value = (char *)sel[i].labels[k].value;
      lp[k] = &lv[k];
    }
    sc->labels = lp;
    sc->n_labels = sel[i].nlabels;
    sc->chunks = sel[i].chunks;
    sc->n_chunks = sel[i].nchunks;
    if (!req->labels_only) {
      err = ing_tomb_filter(ing, t->id, sel[i].ref, sc, arena);
    }
    resp->series[resp->n_series++] = sc;
  }
  ing_matchers_free(ms, req->n_matchers);
  if (err) {
    ringtail__select_response__init(resp);
  }
  return err;
}

/* ------------------------------------------------------------------ label names / values */

static int ing_str_cmp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static rt_err ing_strings_out(const char **v, size_t n, uint64_t limit, Ringtail__LabelsResponse *resp) {
  if (n > 1) {
    qsort(v, n, sizeof *v, ing_str_cmp);
  }
  if (limit > 0 && n > limit) {
    n = limit;
  }
  resp->values = (char **)v;
  resp->n_values = n;
  return RT_OK;
}

static bool ing_postings_any_in_range(const ing_tenant *t, const ing_postings *p, int64_t mint,
                                      int64_t maxt) {
  bool all = mint <= t->min_t && maxt >= t->max_t; /* every sample is inside the range */
  for (uint32_t i = 0; i < p->n; i++) {
    if (all) {
      const ing_series *s = p->refs[i] <= t->nseries ? t->by_ref[p->refs[i]] : NULL;
      if (s && s->first_t <= s->last_t) {
        return true;
      }
      continue;
    }
    const ing_series *s = p->refs[i] <= t->nseries ? t->by_ref[p->refs[i]] : NULL;
    if (s && ing_in_range(s, mint, maxt)) {
      return true;
    }
  }
  return false;
}

static rt_err ing_labels_common(ing_ingester *ing, const Ringtail__LabelsRequest *req,
                                Ringtail__LabelsResponse *resp, rt_arena *arena, bool values) {
  ringtail__labels_response__init(resp);
  rt_err err = RT_OK;
  ing_tenant *t = ing_tenant_get(ing, req->tenant ? req->tenant : "", false, &err);
  if (!t) {
    return err;
  }
  const char *qname = req->name ? req->name : "";
  if (values && !qname[0]) {
    return RT_EINVAL;
  }
  rt_matcher *ms = NULL;
  err = ing_matchers(req->matchers, req->n_matchers, &ms);
  if (err) {
    return err;
  }
  int64_t mint = req->mint, maxt = req->maxt;
  ing_range(&mint, &maxt);
  pthread_rwlock_rdlock(&t->lock);
  const char *iname = values ? ing_intern_find(&t->strings, qname, strlen(qname)) : NULL;
  const ing_lname *ln = iname ? ing_pmap_get(&t->names, iname) : NULL;
  const char **out = NULL;
  size_t nout = 0;
  if (req->n_matchers == 0) {
    const ing_pmap *m = values ? (ln ? &ln->values : NULL) : &t->names;
    if (m && m->n) {
      out = rt_arena_alloc(arena, m->n * sizeof *out);
      if (!out) {
        err = RT_ENOMEM;
      }
      for (size_t i = 0; !err && i < m->cap; i++) {
        if (!m->keys[i]) {
          continue;
        }
        bool any = false;
        if (values) {
          any = ing_postings_any_in_range(t, m->vals[i], mint, maxt);
        } else {
          const ing_lname *l = m->vals[i];
          for (size_t j = 0; !any && j < l->values.cap; j++) {
            any = l->values.keys[j] && ing_postings_any_in_range(t, l->values.vals[j], mint, maxt);
          }
        }
        if (any) {
          out[nout++] = m->keys[i];
        }
      }
    }
  } else if (!values || ln) {
    uint32_t *refs;
    size_t nrefs;
    err = ing_head_postings(t, ms, req->n_matchers, arena, &refs, &nrefs);
    ing_pmap seen = {0};
    for (size_t i = 0; !err && i < nrefs; i++) {
      const ing_series *s = t->by_ref[refs[i]];
      if (!ing_in_range(s, mint, maxt)) {
        continue;
      }
      if (values) {
        const char *v = rt_labels_get(s->labels, s->nlabels, iname);
        if (v && !ing_pmap_get(&seen, v)) {
          err = ing_pmap_put(&seen, v, (void *)v);
        }
      } else {
        for (size_t k = 0; !err && k < s->nlabels; k++) {
          if (!ing_pmap_get(&seen, s->labels[k].name)) {
            err = ing_pmap_put(&seen, s->labels[k].name, (void *)s->labels[k].name);
          }
        }
      }
    }
    if (!err && seen.n) {
      out = rt_arena_alloc(arena, seen.n * sizeof *out);
      if (!out) {
        err = RT_ENOMEM;
      }
      for (size_t i = 0; !err && i < seen.cap; i++) {
        if (seen.keys[i]) {
          out[nout++] = seen.keys[i];
        }
      }
    }
    ing_pmap_fini(&seen);
  }
  pthread_rwlock_unlock(&t->lock);
  ing_matchers_free(ms, req->n_matchers);
  if (err) {
    return err;
  }
  return ing_strings_out(out, nout, req->limit, resp);
}

rt_err ing_label_names(ing_ingester *ing, const Ringtail__LabelsRequest *req,
                       Ringtail__LabelsResponse *resp, rt_arena *arena) {
  return ing_labels_common(ing, req, resp, arena, false);
}

rt_err ing_label_values(ing_ingester *ing, const Ringtail__LabelsRequest *req,
                        Ringtail__LabelsResponse *resp, rt_arena *arena) {
  return ing_labels_common(ing, req, resp, arena, true);
}

/* ------------------------------------------------------------------ metadata */

static int ing_md_cmp(const void *a, const void *b) {
  const Prometheus__MetricMetadata *x = *(Prometheus__MetricMetadata *const *)a;
  const Prometheus__MetricMetadata *y = *(Prometheus__MetricMetadata *const *)b;
  return strcmp(x->metric_family_name, y->metric_family_name);
}

rt_err ing_metadata(ing_ingester *ing, const Ringtail__MetadataRequest *req,
                    Ringtail__MetadataResponse *resp, rt_arena *arena) {
  ringtail__metadata_response__init(resp);
  rt_err err = RT_OK;
  ing_tenant *t = ing_tenant_get(ing, req->tenant ? req->tenant : "", false, &err);
  if (!t) {
    return err;
  }
  const char *metric = req->metric ? req->metric : "";
  pthread_rwlock_rdlock(&t->lock);
  size_t n = 0;
  Prometheus__MetricMetadata **out = rt_arena_alloc(arena, (t->meta.n ? t->meta.n : 1) * sizeof *out);
  if (!out) {
    err = RT_ENOMEM;
  }
  for (size_t i = 0; !err && i < t->meta.cap; i++) {
    if (!t->meta.keys[i]) {
      continue;
    }
    const char *name = t->meta.keys[i];
    if (metric[0] && strcmp(metric, name) != 0) {
      continue;
    }
    const ing_meta *m = t->meta.vals[i];
    Prometheus__MetricMetadata *md = rt_arena_alloc(arena, sizeof *md);
    char *h = rt_arena_strndup(arena, m->help, strlen(m->help));
    char *u = rt_arena_strndup(arena, m->unit, strlen(m->unit));
    if (!md || !h || !u) {
      err = RT_ENOMEM;
      break;
    }
    prometheus__metric_metadata__init(md);
    md->type = (Prometheus__MetricMetadata__MetricType)m->type;
    md->metric_family_name = (char *)name;
    md->help = h;
    md->unit = u;
    out[n++] = md;
  }
  pthread_rwlock_unlock(&t->lock);
  if (err) {
    return err;
  }
  if (n > 1) {
    qsort(out, n, sizeof *out, ing_md_cmp);
  }
  if (req->limit > 0 && n > req->limit) {
    n = req->limit;
  }
  resp->metadata = out;
  resp->n_metadata = n;
  return RT_OK;
}

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

static rt_err ing_open_db(ing_ingester *ing, const char *data_dir, bool readonly) {
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

static void ing_close_db(ing_ingester *ing) {
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
static rt_err ing_load_meta(ing_ingester *ing) {
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

static rt_err ing_load_series(ing_ingester *ing, uint64_t *max_flushed) {
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(ing->db, ing->ropts, ing->cf[ING_CF_SERIES]);
  rt_arena *arena = rt_arena_create(64 * 1024);
  rt_err err = arena ? RT_OK : RT_ENOMEM;
  size_t n = 0;
  for (rocksdb_iter_seek_to_first(it); !err && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t kl, vl;
    const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
    const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
    if (kl != ING_SERIES_KEY_LEN) {
      continue;
    }
    ing_tenant *t = ing_tenant_by_id(ing, ing_get_u32(k));
    uint32_t ref = ing_get_u32(k + 4);
    ing_series_rec rec;
    rt_err derr = ing_series_decode(v, vl, arena, &rec);
    if (derr == RT_ENOMEM) {
      err = derr;
      break;
    }
    if (!t || derr || ref == 0) {
      rt_warn(ING_LOG, "skipping a corrupt series record", "ref=%u", ref);
      continue;
    }
    ing_key key;
    uint64_t h;
    ing_series *s;
    err = ing_series_keys(t->name, rec.labels, rec.n, arena, &key, &h);
    if (!err && ing_series_find(t, key)) {
      rt_warn(ING_LOG, "skipping a duplicate series record", "ref=%u", ref);
      continue;
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
    if (rec.flushed_seq > *max_flushed) {
      *max_flushed = rec.flushed_seq;
    }
    n++;
    if ((n & 4095) == 0) {
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
  rocksdb_iter_destroy(it);
  rt_arena_destroy(arena);
  return err;
}

/* Calls fn for every sample of a WAL record (after header checks). */
typedef rt_err (*ing_wal_fn)(void *ctx, ing_tenant *t, ing_series *s, int64_t ts, double v, uint64_t seq);

static rt_err ing_wal_record(ing_ingester *ing, uint64_t seq, const uint8_t *v, size_t vl,
                             ing_wal_fn fn, void *ctx) {
  ing_rd r = {v, v + vl, false};
  const uint8_t *hdr = ing_get_bytes(&r, 2);
  uint32_t tid = ing_get_be32(&r);
  if (r.err || hdr[0] != ING_WAL_MAGIC || hdr[1] != ING_FORMAT_VERSION) {
    rt_warn(ING_LOG, "skipping a corrupt wal record", "seq=%llu", (unsigned long long)seq);
    return RT_OK;
  }
  ing_tenant *t = ing_tenant_by_id(ing, tid);
  if (!t) {
    rt_warn(ING_LOG, "wal record for an unknown tenant", "seq=%llu tenant=%u", (unsigned long long)seq, tid);
    return RT_OK;
  }
  uint64_t nser = ing_get_uvarint(&r);
  for (uint64_t i = 0; i < nser && !r.err; i++) {
    uint64_t ref = ing_get_uvarint(&r);
    uint64_t n = ing_get_uvarint(&r);
    ing_series *s = ref > 0 && ref <= t->nseries ? t->by_ref[ref] : NULL;
    int64_t prev = 0;
    for (uint64_t k = 0; k < n && !r.err; k++) {
      int64_t d = ing_get_zvarint(&r);
      double val = ing_bits_f64(ing_get_be64(&r));
      if (r.err) {
        break;
      }
      int64_t ts = (int64_t)((uint64_t)prev + (uint64_t)d);
      prev = ts;
      if (!s) {
        continue;
      }
      rt_err err = fn(ctx, t, s, ts, val, seq);
      if (err) {
        return err;
      }
    }
    if (!s && !r.err) {
      rt_warn(ING_LOG, "wal record for an unknown series", "seq=%llu ref=%llu",
              (unsigned long long)seq, (unsigned long long)ref);
    }
  }
  if (r.err) {
    rt_warn(ING_LOG, "truncated wal record", "seq=%llu", (unsigned long long)seq);
  }
  return RT_OK;
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

static rt_err ing_replay(ing_ingester *ing, uint64_t *last_seq) {
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

/* ------------------------------------------------------------------ maintenance */

/* Deletes WAL records that every series has flushed past (I2). */
#define ING_SCAN_STEP 4096 /* series per lock hold in maintenance scans */

static rt_err ing_truncate_wal(ing_ingester *ing) {
  /* The scan takes each tenant lock for ING_SCAN_STEP series at a time so that pushes are not
   * held up. That is safe: a push that took its sequence before `bound` was read holds its
   * tenant lock until its samples are applied, so every later lock hold sees them (I2). */
  uint64_t bound = atomic_load(&ing->next_seq);
  pthread_rwlock_rdlock(&ing->tenants_lock);
  for (size_t i = 0; i < ing->ntenants; i++) {
    ing_tenant *t = ing->tenants[i];
    for (uint32_t r0 = 1;; r0 += ING_SCAN_STEP) {
      pthread_rwlock_rdlock(&t->lock);
      uint32_t end = t->nseries;
      for (uint32_t r = r0; r <= end && r < r0 + ING_SCAN_STEP; r++) {
        const ing_series *s = t->by_ref[r];
        if (s && s->unflushed_seq && s->unflushed_seq < bound) {
          bound = s->unflushed_seq;
        }
      }
      pthread_rwlock_unlock(&t->lock);
      if (r0 + ING_SCAN_STEP > end) {
        break;
      }
    }
  }
  pthread_rwlock_unlock(&ing->tenants_lock);
  if (bound <= 1 || bound <= atomic_load(&ing->wal_truncated)) {
    return RT_OK;
  }
  uint8_t from[8], to[8];
  ing_put_u64(from, 0);
  ing_put_u64(to, bound);
  char *dberr = NULL;
  rocksdb_delete_range_cf(ing->db, ing->wopts, ing->cf[ING_CF_WAL], (const char *)from, 8,
                          (const char *)to, 8, &dberr);
  rt_err err = ing_dberr(dberr, "truncate wal");
  if (!err) {
    atomic_store(&ing->wal_truncated, bound);
  }
  return err;
}

/* Closes the head chunks of series that have not received samples for chunk_max_age (by the
 * tenant's newest sample time), so that idle series do not pin the WAL. */
static rt_err ing_close_idle(ing_ingester *ing) {
  rt_err err = RT_OK;
  rt_buf tmp = RT_BUF_INIT;
  pthread_rwlock_rdlock(&ing->tenants_lock);
  for (size_t i = 0; i < ing->ntenants && !err; i++) {
    ing_tenant *t = ing->tenants[i];
    for (uint32_t r0 = 1; !err; r0 += ING_SCAN_STEP) {
      rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
      pthread_rwlock_wrlock(&t->lock);
      uint32_t end = t->nseries;
      for (uint32_t r = r0; r <= end && r < r0 + ING_SCAN_STEP && !err; r++) {
        ing_series *s = t->by_ref[r];
        if (!s || (s->head.count == 0 && s->nooo == 0)) {
          continue;
        }
        int64_t newest = s->head.count ? s->head.maxt : s->ooo[s->nooo - 1].t;
        if ((uint64_t)t->max_t - (uint64_t)newest > (uint64_t)ing->cfg.chunk_max_age_ms) {
          err = ing_close_series(ing, t, s, wb, &tmp);
        }
      }
      if (!err && rocksdb_writebatch_count(wb) > 0) {
        char *dberr = NULL;
        rocksdb_write(ing->db, ing->wopts, wb, &dberr);
        err = ing_dberr(dberr, "write idle chunks");
      }
      if (err) {
        atomic_store(&ing->broken, (int)err); /* head and chunks may be out of step (I9) */
      }
      pthread_rwlock_unlock(&t->lock);
      rocksdb_writebatch_destroy(wb);
      if (r0 + ING_SCAN_STEP > end) {
        break;
      }
    }
  }
  pthread_rwlock_unlock(&ing->tenants_lock);
  rt_buf_free(&tmp);
  return err;
}

static void *ing_bg_main(void *arg) {
  ing_ingester *ing = arg;
  pthread_mutex_lock(&ing->bg_mu);
  while (!ing->bg_stop) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10;
    pthread_cond_timedwait(&ing->bg_cv, &ing->bg_mu, &ts);
    if (ing->bg_stop) {
      break;
    }
    pthread_mutex_unlock(&ing->bg_mu);
    ing_update_rates(ing);
    if (!atomic_load(&ing->broken)) {
      ing_close_idle(ing);
      ing_truncate_wal(ing);
    }
    pthread_mutex_lock(&ing->bg_mu);
  }
  pthread_mutex_unlock(&ing->bg_mu);
  return NULL;
}

rt_err ing_wal_count(ing_ingester *ing, uint64_t *n) {
  *n = 0;
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(ing->db, ing->ropts, ing->cf[ING_CF_WAL]);
  for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    (*n)++;
  }
  char *dberr = NULL;
  rocksdb_iter_get_error(it, &dberr);
  rocksdb_iter_destroy(it);
  return ing_dberr(dberr, "count wal");
}

rt_err ing_maintain(ing_ingester *ing) {
  rt_err err = ing_close_idle(ing);
  if (!err) {
    err = ing_truncate_wal(ing);
  }
  return err;
}

/* Closes every open head chunk, truncates the WAL and compacts it away. */
rt_err ing_flush(ing_ingester *ing) {
  rt_err err = (rt_err)atomic_load(&ing->broken);
  if (err) {
    return err;
  }
  pthread_rwlock_rdlock(&ing->tenants_lock);
  for (size_t i = 0; i < ing->ntenants && !err; i++) {
    ing_tenant *t = ing->tenants[i];
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rt_buf tmp = RT_BUF_INIT;
    pthread_rwlock_wrlock(&t->lock);
    for (uint32_t r = 1; r <= t->nseries && !err; r++) {
      ing_series *s = t->by_ref[r];
      if (s && (s->head.count > 0 || s->nooo > 0)) {
        err = ing_close_series(ing, t, s, wb, &tmp);
        if (!err && rocksdb_writebatch_count(wb) >= 4096) {
          char *dberr = NULL;
          rocksdb_write(ing->db, ing->wopts, wb, &dberr);
          err = ing_dberr(dberr, "write flushed chunks");
          rocksdb_writebatch_clear(wb);
        }
      }
    }
    if (!err && rocksdb_writebatch_count(wb) > 0) {
      char *dberr = NULL;
      rocksdb_write(ing->db, ing->wopts, wb, &dberr);
      err = ing_dberr(dberr, "write flushed chunks");
    }
    if (err) {
      atomic_store(&ing->broken, (int)err);
    }
    pthread_rwlock_unlock(&t->lock);
    rocksdb_writebatch_destroy(wb);
    rt_buf_free(&tmp);
  }
  pthread_rwlock_unlock(&ing->tenants_lock);
  if (!err) {
    err = ing_truncate_wal(ing);
  }
  rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
  rocksdb_flushoptions_set_wait(fo, 1);
  for (int i = 1; i < 6 && !err; i++) {
    char *dberr = NULL;
    rocksdb_flush_cf(ing->db, fo, ing->cf[i], &dberr);
    err = ing_dberr(dberr, "flush");
  }
  rocksdb_flushoptions_destroy(fo);
  for (int i = 1; i < 6 && !err; i++) {
    rocksdb_compact_range_cf(ing->db, ing->cf[i], NULL, 0, NULL, 0);
  }
  return err;
}

/* ------------------------------------------------------------------ create / destroy */

static void ing_free(ing_ingester *ing) {
  ing_tomb_free(ing);
  for (size_t i = 0; i < ing->ntenants; i++) {
    ing_tenant_destroy(ing->tenants[i]);
  }
  rt_free(ing->tenants, ing->tenants_cap * sizeof *ing->tenants);
  ing_close_db(ing);
  pthread_rwlock_destroy(&ing->tenants_lock);
  pthread_mutex_destroy(&ing->sync_mu);
  pthread_cond_destroy(&ing->sync_cv);
  pthread_mutex_destroy(&ing->bg_mu);
  pthread_cond_destroy(&ing->bg_cv);
  pthread_mutex_destroy(&ing->ring_mu);
  rt_free(ing->ring_id, 0);
  rt_free(ing->data_dir, 0);
  rt_free(ing, sizeof *ing);
}

static ing_ingester *ing_alloc(const ing_config *cfg) {
  ing_ingester *ing = rt_calloc(1, sizeof *ing);
  if (!ing) {
    return NULL;
  }
  ing->cfg = *cfg;
  ing->data_dir = rt_strdup(cfg->data_dir ? cfg->data_dir : "./data");
  ing->cfg.data_dir = ing->data_dir;
  if (ing->cfg.chunk_max_samples <= 0 || ing->cfg.chunk_max_samples > 65535) {
    ing->cfg.chunk_max_samples = 120;
  }
  if (ing->cfg.chunk_max_age_ms <= 0) {
    ing->cfg.chunk_max_age_ms = 2 * 3600 * 1000;
  }
  if (ing->cfg.ooo_window_ms < 0) {
    ing->cfg.ooo_window_ms = 0;
  }
  pthread_rwlock_init(&ing->tenants_lock, NULL);
  pthread_mutex_init(&ing->sync_mu, NULL);
  pthread_cond_init(&ing->sync_cv, NULL);
  pthread_mutex_init(&ing->bg_mu, NULL);
  pthread_cond_init(&ing->bg_cv, NULL);
  pthread_mutex_init(&ing->ring_mu, NULL);
  ing->next_tenant_id = 1;
  if (!ing->data_dir) {
    ing_free(ing);
    return NULL;
  }
  return ing;
}

rt_err ing_create(const ing_config *cfg, ing_ingester **out) {
  *out = NULL;
  /* the limits table builds its defaults on first use (allocating): do it now, not in a push */
  rt_limits warm;
  rt_limits_get("", &warm);
  ing_ingester *ing = ing_alloc(cfg);
  if (!ing) {
    return RT_ENOMEM;
  }
  uint64_t t0 = rt_mono_ns();
  rt_err err = ing_open_db(ing, ing->data_dir, false);
  uint64_t max_flushed = 0, last_seq = 0;
  if (!err) {
    err = ing_load_meta(ing);
  }
  if (!err) {
    err = ing_load_series(ing, &max_flushed);
  }
  if (!err) {
    err = ing_replay(ing, &last_seq);
  }
  if (!err) {
    err = ing_tomb_load(ing);
  }
  if (err) {
    ing_free(ing);
    return err;
  }
  atomic_store(&ing->next_seq, RT_MAX(last_seq, max_flushed) + 1);
  if (pthread_create(&ing->bg, NULL, ing_bg_main, ing) == 0) {
    ing->bg_running = true;
  }
  rt_info(ING_LOG, "ingester opened", "data_dir=\"%s\" series=%llu took_ms=%llu", ing->data_dir,
          (unsigned long long)atomic_load(&ing->st_series),
          (unsigned long long)((rt_mono_ns() - t0) / 1000000));
  *out = ing;
  return RT_OK;
}

void ing_serve_stop(ing_ingester *ing);

void ing_destroy(ing_ingester *ing) {
  if (!ing) {
    return;
  }
  ing_serve_stop(ing);
  ing_ha_destroy(ing->ha);
  ing->ha = NULL;
  if (ing->bg_running) {
    pthread_mutex_lock(&ing->bg_mu);
    ing->bg_stop = true;
    pthread_cond_broadcast(&ing->bg_cv);
    pthread_mutex_unlock(&ing->bg_mu);
    pthread_join(ing->bg, NULL);
  }
  if (ing->db && !atomic_load(&ing->broken)) {
    ing_truncate_wal(ing);
    char *dberr = NULL;
    rocksdb_flush_wal(ing->db, 1, &dberr);
    ing_dberr(dberr, "sync wal");
  }
  ing_free(ing);
}

/* ------------------------------------------------------------------ stats */

static uint64_t ing_prop(ing_ingester *ing, int cf, const char *name) {
  uint64_t v = 0;
  if (rocksdb_property_int_cf(ing->db, ing->cf[cf], name, &v) != 0) {
    return 0;
  }
  return v;
}

void ing_get_stats(ing_ingester *ing, ing_stats *out) {
  memset(out, 0, sizeof *out);
  out->active_series = atomic_load(&ing->st_series);
  out->samples_appended = atomic_load(&ing->st_samples);
  for (int i = 0; i < 5; i++) {
    out->samples_rejected[i] = atomic_load(&ing->st_rejected[i]);
  }
  out->chunks_closed = atomic_load(&ing->st_chunks);
  if (ing->ha) {
    out->ha_records = ing_ha_records(ing->ha);
    out->ha_elections = ing_ha_elections(ing->ha);
  }
  out->wal_bytes = ing_prop(ing, ING_CF_WAL, "rocksdb.total-sst-files-size") +
                   ing_prop(ing, ING_CF_WAL, "rocksdb.cur-size-all-mem-tables");
  for (int i = 0; i < 6; i++) {
    out->db_bytes += ing_prop(ing, i, "rocksdb.total-sst-files-size") +
                     ing_prop(ing, i, "rocksdb.cur-size-all-mem-tables");
  }
}

/* ------------------------------------------------------------------ dump */

typedef struct ing_dump_series {
  ing_sample *s;
  size_t n, cap;
  uint64_t cur_seq, flushed_seq;
  uint32_t cur_idx, flushed_idx;
} ing_dump_series;

typedef struct ing_dump_ctx {
  ing_dump_series **per_tenant; /* [tenant index][ref] */
  ing_ingester *ing;
} ing_dump_ctx;

static rt_err ing_dump_push(ing_dump_series *d, int64_t t, double v) {
  if (d->n == d->cap) {
    size_t ncap = d->cap ? d->cap * 2 : 16;
    ing_sample *n = rt_realloc(d->s, d->cap * sizeof *n, ncap * sizeof *n);
    if (!n) {
      return RT_ENOMEM;
    }
    d->s = n;
    d->cap = ncap;
  }
  d->s[d->n++] = (ing_sample){t, v};
  return RT_OK;
}

static size_t ing_tenant_index(ing_ingester *ing, const ing_tenant *t) {
  for (size_t i = 0; i < ing->ntenants; i++) {
    if (ing->tenants[i] == t) {
      return i;
    }
  }
  return 0;
}

static rt_err ing_dump_wal_sample(void *ctx, ing_tenant *t, ing_series *s, int64_t ts, double v, uint64_t seq) {
  ing_dump_ctx *c = ctx;
  ing_dump_series *d = &c->per_tenant[ing_tenant_index(c->ing, t)][s->ref];
  uint32_t idx = d->cur_seq == seq ? d->cur_idx : 0;
  d->cur_seq = seq;
  d->cur_idx = idx + 1;
  if (seq < d->flushed_seq || (seq == d->flushed_seq && idx < d->flushed_idx)) {
    return RT_OK;
  }
  return ing_dump_push(d, ts, v);
}

typedef struct ing_tagged {
  int64_t t;
  double v;
  size_t i; /* position: ties keep their order */
} ing_tagged;

static int ing_tagged_cmp(const void *a, const void *b) {
  const ing_tagged *x = a, *y = b;
  if (x->t != y->t) {
    return (x->t > y->t) - (x->t < y->t);
  }
  return (x->i > y->i) - (x->i < y->i);
}

/* Appends every sample of the closed chunks of (tenant, ref) to d. */
static rt_err ing_dump_chunks(ing_ingester *ing, rocksdb_iterator_t *it, uint32_t tenant, uint32_t ref,
                              ing_dump_series *d) {
  uint8_t key[ING_CHUNK_KEY_LEN];
  ing_chunk_key(key, tenant, ref, INT64_MIN, 0);
  rt_err err = RT_OK;
  for (rocksdb_iter_seek(it, (const char *)key, sizeof key); !err && rocksdb_iter_valid(it);
       rocksdb_iter_next(it)) {
    size_t kl, vl;
    const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
    if (kl != ING_CHUNK_KEY_LEN || memcmp(k, key, 8) != 0) {
      break;
    }
    const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
    ing_rd r = {v, v + vl, false};
    const uint8_t *fmt = ing_get_bytes(&r, 1);
    ing_get_uvarint(&r);
    if (r.err) {
      continue;
    }
    size_t len = (size_t)(r.end - r.p);
    if ((fmt[0] & 0xf) == ING_CHUNK_ENC_DECIMAL) {
      uint16_t n = ing_dchunk_count(r.p, len);
      ing_sample *smp = rt_alloc((n ? n : 1) * sizeof *smp);
      if (!smp) {
        return RT_ENOMEM;
      }
      if (ing_dchunk_decode(r.p, len, smp, n)) {
        for (uint16_t i = 0; i < n && !err; i++) {
          err = ing_dump_push(d, smp[i].t, smp[i].v);
        }
      }
      rt_free(smp, (n ? n : 1) * sizeof *smp);
      continue;
    }
    rt_chunk_iter ci;
    rt_chunk_iter_init(&ci, r.p, len);
    int64_t ts;
    double val;
    while (!err && rt_chunk_iter_next(&ci, &ts, &val)) {
      err = ing_dump_push(d, ts, val);
    }
  }
  if (!err) {
    char *dberr = NULL;
    rocksdb_iter_get_error(it, &dberr);
    err = ing_dberr(dberr, "read chunks");
  }
  return err;
}

/* buf holds RT_FLOAT_SHORT bytes */
static void ing_fmt_value(char *buf, double v) {
  if (ing_f64_bits(v) == RT_STALE_NAN_BITS) {
    memcpy(buf, "StaleNaN", sizeof "StaleNaN");
  } else {
    rt_float_format(buf, v, 'g');
  }
}

static int ing_sref_cmp(const void *a, const void *b) {
  const ing_series *x = *(ing_series *const *)a, *y = *(ing_series *const *)b;
  return rt_labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

rt_err ing_dump(const char *data_dir, const char *tenant, FILE *out) {
  ing_config cfg = {.data_dir = data_dir};
  ing_ingester *ing = ing_alloc(&cfg);
  if (!ing) {
    return RT_ENOMEM;
  }
  ing->readonly = true;
  uint64_t max_flushed = 0;
  rt_err err = ing_open_db(ing, ing->data_dir, true);
  if (!err) {
    err = ing_load_meta(ing);
  }
  if (!err) {
    err = ing_load_series(ing, &max_flushed);
  }
  ing_dump_ctx c = {.ing = ing};
  if (!err) {
    c.per_tenant = rt_calloc(ing->ntenants ? ing->ntenants : 1, sizeof *c.per_tenant);
    err = c.per_tenant ? RT_OK : RT_ENOMEM;
  }
  for (size_t i = 0; !err && i < ing->ntenants; i++) {
    ing_tenant *t = ing->tenants[i];
    c.per_tenant[i] = rt_calloc(t->nseries + 1, sizeof *c.per_tenant[i]);
    if (!c.per_tenant[i]) {
      err = RT_ENOMEM;
      break;
    }
    for (uint32_t r = 1; r <= t->nseries; r++) {
      if (t->by_ref[r]) {
        c.per_tenant[i][r].flushed_seq = t->by_ref[r]->flushed_seq;
        c.per_tenant[i][r].flushed_idx = t->by_ref[r]->flushed_idx;
      }
    }
  }
  /* the WAL tail */
  if (!err) {
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(ing->db, ing->ropts, ing->cf[ING_CF_WAL]);
    for (rocksdb_iter_seek_to_first(it); !err && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
      size_t kl, vl;
      const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
      const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
      if (kl == ING_WAL_KEY_LEN) {
        err = ing_wal_record(ing, ing_get_u64(k), v, vl, ing_dump_wal_sample, &c);
      }
    }
    char *dberr = NULL;
    rocksdb_iter_get_error(it, &dberr);
    if (!err) {
      err = ing_dberr(dberr, "read wal");
    } else if (dberr) {
      rocksdb_free(dberr);
    }
    rocksdb_iter_destroy(it);
  }
  /* print, tenants in name order, series in label order, samples in time order */
  ing_tenant **ts_sorted = NULL;
  if (!err && ing->ntenants) {
    ts_sorted = rt_calloc(ing->ntenants, sizeof *ts_sorted);
    err = ts_sorted ? RT_OK : RT_ENOMEM;
  }
  for (size_t i = 0; !err && i < ing->ntenants; i++) {
    ts_sorted[i] = ing->tenants[i];
  }
  for (size_t i = 0; !err && i < ing->ntenants; i++) {
    for (size_t j = i + 1; j < ing->ntenants; j++) {
      if (strcmp(ts_sorted[j]->name, ts_sorted[i]->name) < 0) {
        ing_tenant *x = ts_sorted[i];
        ts_sorted[i] = ts_sorted[j];
        ts_sorted[j] = x;
      }
    }
  }
  char lb[16384], vb[64];
  rocksdb_iterator_t *cit =
      err ? NULL : rocksdb_create_iterator_cf(ing->db, ing->ropts, ing->cf[ING_CF_CHUNKS]);
  for (size_t i = 0; !err && i < ing->ntenants; i++) {
    ing_tenant *t = ts_sorted[i];
    if (tenant && tenant[0] && strcmp(tenant, t->name) != 0) {
      continue;
    }
    size_t ti = ing_tenant_index(ing, t);
    ing_series **ss = rt_calloc(t->nseries + 1, sizeof *ss);
    if (!ss) {
      err = RT_ENOMEM;
      break;
    }
    size_t nss = 0;
    for (uint32_t r = 1; r <= t->nseries; r++) {
      if (t->by_ref[r]) {
        ss[nss++] = t->by_ref[r];
      }
    }
    qsort(ss, nss, sizeof *ss, ing_sref_cmp);
    for (size_t k = 0; k < nss && !err; k++) {
      /* one series at a time: its closed chunks, then its WAL samples (later ones win a tie) */
      ing_dump_series all = {0};
      err = ing_dump_chunks(ing, cit, t->id, ss[k]->ref, &all);
      const ing_dump_series *w = &c.per_tenant[ti][ss[k]->ref];
      for (size_t a = 0; !err && a < w->n; a++) {
        err = ing_dump_push(&all, w->s[a].t, w->s[a].v);
      }
      ing_tagged *tg = !err && all.n ? rt_alloc(all.n * sizeof *tg) : NULL;
      if (!err && all.n && !tg) {
        err = RT_ENOMEM;
      }
      for (size_t a = 0; tg && a < all.n; a++) {
        tg[a] = (ing_tagged){all.s[a].t, all.s[a].v, a};
      }
      if (tg && all.n > 1) {
        qsort(tg, all.n, sizeof *tg, ing_tagged_cmp);
      }
      ing_labels_format(ss[k]->labels, ss[k]->nlabels, lb, sizeof lb);
      for (size_t a = 0; tg && a < all.n; a++) {
        if (a + 1 < all.n && tg[a + 1].t == tg[a].t) {
          continue;
        }
        ing_fmt_value(vb, tg[a].v);
        fprintf(out, "%s %s %lld %s\n", t->name, lb, (long long)tg[a].t, vb);
      }
      rt_free(tg, all.n * sizeof *tg);
      rt_free(all.s, all.cap * sizeof *all.s);
    }
    rt_free(ss, (t->nseries + 1) * sizeof *ss);
  }
  if (cit) {
    rocksdb_iter_destroy(cit);
  }
  rt_free(ts_sorted, ing->ntenants * sizeof *ts_sorted);
  if (c.per_tenant) {
    for (size_t i = 0; i < ing->ntenants; i++) {
      if (!c.per_tenant[i]) {
        continue;
      }
      for (uint32_t r = 0; r <= ing->tenants[i]->nseries; r++) {
        rt_free(c.per_tenant[i][r].s, c.per_tenant[i][r].cap * sizeof(ing_sample));
      }
      rt_free(c.per_tenant[i], (ing->tenants[i]->nseries + 1) * sizeof *c.per_tenant[i]);
    }
    rt_free(c.per_tenant, ing->ntenants * sizeof *c.per_tenant);
  }
  ing_free(ing);
  return err;
}
