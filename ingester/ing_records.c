/* ing_records.c - the ingester's records in RocksDB, read and written in one place: the series
 * value, the chunk value and the one chunk-scan iterator every reader of closed chunks uses
 * (select, the out-of-order duplicate check, dump, the compactor's work), the WAL record reader
 * and the series definition (series + postings). Byte layouts: ing_format.h. */
#include <string.h>

#include "common/log.h"
#include "ingester/ing_format.h"
#include "ingester/ing_int.h"


/* ------------------------------------------------------------------ RocksDB errors */

/* Turns a RocksDB error into RT_EIO and a log line, and frees it. */
rt_err ing_dberr(char *err, const char *what) {
  if (!err) {
    return RT_OK;
  }
  rt_error(ING_LOG, "rocksdb error", "op=%s err=\"%s\"", what, err);
  rocksdb_free(err);
  return RT_EIO;
}

/* ------------------------------------------------------------------ series records */

void ing_series_rec_value(rt_buf *b, const ing_series_rec *r) {
  rt_buf_reset(b);
  uint8_t hdr[2] = {ING_SERIES_MAGIC, ING_FORMAT_VERSION};
  rt_buf_append(b, hdr, 2);
  ing_put_uvarint(b, r->n);
  for (size_t i = 0; i < r->n; i++) {
    size_t nl = strlen(r->labels[i].name), vl = strlen(r->labels[i].value);
    ing_put_uvarint(b, nl);
    rt_buf_append(b, r->labels[i].name, nl);
    ing_put_uvarint(b, vl);
    rt_buf_append(b, r->labels[i].value, vl);
  }
  ing_put_be64(b, r->flushed_seq);
  ing_put_be32(b, r->flushed_idx);
  ing_put_be32(b, r->nchunks);
  ing_put_be64(b, (uint64_t)r->first_t);
  ing_put_be64(b, (uint64_t)r->last_t);
  ing_put_be64(b, ing_f64_bits(r->last_v));
}

void ing_series_value(rt_buf *b, const ing_series *s) {
  ing_series_rec r = {.labels = s->labels,
                      .n = s->nlabels,
                      .flushed_seq = s->flushed_seq,
                      .flushed_idx = s->flushed_idx,
                      .nchunks = s->nchunks,
                      .first_t = s->flushed_first_t,
                      .last_t = s->flushed_last_t,
                      .last_v = s->flushed_last_v};
  ing_series_rec_value(b, &r);
}

rt_err ing_series_decode(const uint8_t *v, size_t len, rt_arena *arena, ing_series_rec *out) {
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

void ing_put_series_def(ing_ingester *ing, ing_tenant *t, const ing_series *s,
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

/* ------------------------------------------------------------------ chunk values */

rt_err ing_chunk_decode(const ing_chunk_rec *c, ing_sample **out, size_t *n) {
  *out = NULL;
  *n = 0;
  size_t cnt = c->enc == ING_CHUNK_ENC_DECIMAL ? ing_dchunk_count(c->data, c->len)
                                                : rt_chunk_count(c->data, c->len);
  if (cnt == 0) {
    return RT_OK;
  }
  ing_sample *smp = rt_alloc(cnt * sizeof *smp);
  if (!smp) {
    return RT_ENOMEM;
  }
  size_t k = 0;
  if (c->enc == ING_CHUNK_ENC_DECIMAL) {
    k = ing_dchunk_decode(c->data, c->len, smp, cnt) ? cnt : 0;
  } else {
    rt_chunk_iter it;
    rt_chunk_iter_init(&it, c->data, c->len);
    while (k < cnt && rt_chunk_iter_next(&it, &smp[k].t, &smp[k].v)) {
      k++;
    }
  }
  if (k != cnt) {
    rt_free(smp, cnt * sizeof *smp);
    return RT_EPROTO;
  }
  *out = smp;
  *n = cnt;
  return RT_OK;
}

void ing_chunk_value(rt_buf *out, const uint8_t *bytes, size_t len, int64_t mint, int64_t maxt) {
  /* on disk, the decimal encoding when it is smaller (ing_dchunk.c) */
  uint8_t enc = RT_CHUNK_ENC_XOR;
  rt_buf dec = RT_BUF_INIT;
  ing_sample *smp;
  size_t n;
  ing_chunk_rec xor = {mint, maxt, RT_CHUNK_ENC_XOR, bytes, len};
  if (ing_chunk_decode(&xor, &smp, &n) == RT_OK && n > 0) {
    if (ing_dchunk_encode(smp, n, &dec) && dec.len < len) {
      enc = ING_CHUNK_ENC_DECIMAL;
      bytes = (const uint8_t *)dec.data;
      len = dec.len;
    }
    rt_free(smp, n * sizeof *smp);
  }
  rt_buf_reset(out);
  uint8_t fmt = (uint8_t)(ING_FORMAT_VERSION << 4 | enc);
  rt_buf_append(out, &fmt, 1);
  ing_put_uvarint(out, (uint64_t)maxt - (uint64_t)mint);
  rt_buf_append(out, bytes, len);
  rt_buf_free(&dec);
}

/* ------------------------------------------------------------------ chunk scan */

void ing_chunk_scan_start(ing_chunk_scan *cs, rocksdb_iterator_t *it, int64_t max_span,
                          uint32_t tenant, uint32_t ref, int64_t mint, int64_t maxt) {
  memset(cs, 0, sizeof *cs);
  cs->it = it;
  cs->tenant = tenant;
  cs->ref = ref;
  cs->mint = mint;
  cs->maxt = maxt;
  /* a chunk starting up to max_span before mint may still reach it (I6) */
  int64_t from = (uint64_t)mint - (uint64_t)INT64_MIN < (uint64_t)max_span ? INT64_MIN
                                                                             : mint - max_span;
  uint8_t key[ING_CHUNK_KEY_LEN];
  ing_chunk_key(key, tenant, ref, from, 0);
  memcpy(cs->prefix, key, sizeof cs->prefix);
  /* Callers going through series in increasing ref order leave the iterator on the first key
   * of the next series; when that key is already >= the target it is exactly where a seek would
   * land: skip the seek. */
  if (rocksdb_iter_valid(it)) {
    size_t kl;
    const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
    if (kl == ING_CHUNK_KEY_LEN && memcmp(k, key, 8) == 0 && memcmp(k, key, sizeof key) >= 0) {
      return;
    }
  }
  rocksdb_iter_seek(it, (const char *)key, sizeof key);
}

bool ing_chunk_scan_next(ing_chunk_scan *cs, ing_chunk_rec *out) {
  for (;;) {
    if (cs->stepped) {
      rocksdb_iter_next(cs->it);
    }
    cs->stepped = true;
    if (!rocksdb_iter_valid(cs->it)) {
      return false;
    }
    size_t kl, vl;
    const uint8_t *k = (const uint8_t *)rocksdb_iter_key(cs->it, &kl);
    if (kl != ING_CHUNK_KEY_LEN || memcmp(k, cs->prefix, sizeof cs->prefix) != 0) {
      return false;
    }
    int64_t cmint = (int64_t)(ing_get_u64(k + 8) ^ (1ull << 63));
    if (cmint > cs->maxt) {
      return false;
    }
    const uint8_t *v = (const uint8_t *)rocksdb_iter_value(cs->it, &vl);
    ing_rd r = {v, v + vl, false};
    const uint8_t *fmt = ing_get_bytes(&r, 1);
    uint64_t d = ing_get_uvarint(&r);
    if (r.err || (fmt[0] != (ING_FORMAT_VERSION << 4 | RT_CHUNK_ENC_XOR) &&
                  fmt[0] != (ING_FORMAT_VERSION << 4 | ING_CHUNK_ENC_DECIMAL))) {
      rt_warn(ING_LOG, "skipping a corrupt chunk", "tenant=%u ref=%u", cs->tenant, cs->ref);
      continue;
    }
    int64_t cmaxt = (int64_t)((uint64_t)cmint + d);
    if (cmaxt < cs->mint) {
      continue;
    }
    out->mint = cmint;
    out->maxt = cmaxt;
    out->enc = fmt[0] & 0xf;
    out->data = r.p;
    out->len = (size_t)(r.end - r.p);
    out->key = k;
    return true;
  }
}

rt_err ing_chunk_scan_error(const ing_chunk_scan *cs) {
  char *dberr = NULL;
  rocksdb_iter_get_error(cs->it, &dberr);
  return ing_dberr(dberr, "read chunks");
}

/* ------------------------------------------------------------------ WAL records */

rt_err ing_wal_parse(uint64_t seq, const uint8_t *v, size_t vl, ing_wal_raw_fn fn, void *ctx) {
  ing_rd r = {v, v + vl, false};
  const uint8_t *hdr = ing_get_bytes(&r, 2);
  uint32_t tid = ing_get_be32(&r);
  if (r.err || hdr[0] != ING_WAL_MAGIC || hdr[1] != ING_FORMAT_VERSION) {
    rt_warn(ING_LOG, "skipping a corrupt wal record", "seq=%llu", (unsigned long long)seq);
    return RT_OK;
  }
  uint64_t nser = ing_get_uvarint(&r);
  for (uint64_t i = 0; i < nser && !r.err; i++) {
    uint64_t ref = ing_get_uvarint(&r);
    uint64_t n = ing_get_uvarint(&r);
    bool bad_ref = ref == 0 || ref >= UINT32_MAX;
    int64_t prev = 0;
    for (uint64_t k = 0; k < n && !r.err; k++) {
      int64_t d = ing_get_zvarint(&r);
      double val = ing_bits_f64(ing_get_be64(&r));
      if (r.err) {
        break;
      }
      int64_t ts = (int64_t)((uint64_t)prev + (uint64_t)d);
      prev = ts;
      rt_err err = bad_ref ? RT_OK : fn(ctx, tid, (uint32_t)ref, ts, val, seq);
      if (err) {
        return err;
      }
    }
  }
  if (r.err) {
    rt_warn(ING_LOG, "truncated wal record", "seq=%llu", (unsigned long long)seq);
  }
  return RT_OK;
}

typedef struct ing_wal_resolve {
  ing_ingester *ing;
  ing_wal_fn fn;
  void *ctx;
  uint32_t tid, ref; /* the last (tenant, ref) looked up, and what it gave */
  ing_tenant *t;
  ing_series *s;
  bool looked;
} ing_wal_resolve;

static rt_err ing_wal_resolve_sample(void *ctx, uint32_t tid, uint32_t ref, int64_t ts, double v,
                                     uint64_t seq) {
  ing_wal_resolve *w = ctx;
  if (!w->looked || w->tid != tid || w->ref != ref) {
    w->looked = true;
    w->tid = tid;
    w->ref = ref;
    w->t = ing_tenant_by_id(w->ing, tid);
    w->s = w->t ? ing_series_by_ref(w->t, ref) : NULL;
    if (!w->s) {
      rt_warn(ING_LOG, "wal record for an unknown series", "seq=%llu tenant=%u ref=%u",
              (unsigned long long)seq, tid, ref);
    }
  }
  return w->s ? w->fn(w->ctx, w->t, w->s, ts, v, seq) : RT_OK;
}

rt_err ing_wal_record(ing_ingester *ing, uint64_t seq, const uint8_t *v, size_t vl, ing_wal_fn fn,
                      void *ctx) {
  ing_wal_resolve w = {.ing = ing, .fn = fn, .ctx = ctx};
  return ing_wal_parse(seq, v, vl, ing_wal_resolve_sample, &w);
}
