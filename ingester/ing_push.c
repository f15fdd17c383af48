/* ing_push.c - the write path: push (check, one WriteBatch with the WAL record, apply), chunk
 * closing and group commit. Invariants (I1)...: ingester/DESIGN.md. */
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
  ing_chunk_value(tmp, bytes, len, mint, maxt);
  rocksdb_writebatch_put_cf(wb, ing->cf[ING_CF_CHUNKS], (const char *)key, sizeof key, tmp->data,
                            tmp->len);
  ing_note_span(ing, maxt - mint, wb);
  atomic_fetch_add(&ing->st_chunks, 1);
}

/* Writes the series' open chunk and out-of-order buffer as closed chunks into wb and records
 * the flush position (I3). Caller holds t->lock for writing. */
rt_err ing_close_series(ing_ingester *ing, ing_tenant *t, ing_series *s,
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
rt_err ing_apply(ing_ingester *ing, ing_tenant *t, ing_series *s, int64_t ts, double v,
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
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(ing->db, ing->ropts, ing->cf[ING_CF_CHUNKS]);
  ing_chunk_scan cs;
  ing_chunk_scan_start(&cs, it, atomic_load(&ing->max_span), t->id, s->ref, ts, ts);
  ing_chunk_rec c;
  bool found = false;
  while (!found && ing_chunk_scan_next(&cs, &c)) {
    ing_sample *smp;
    size_t n;
    if (ing_chunk_decode(&c, &smp, &n) != RT_OK) {
      continue;
    }
    for (size_t i = 0; i < n && !found; i++) {
      if (smp[i].t == ts) {
        *v = smp[i].v;
        found = true;
      }
    }
    rt_free(smp, n * sizeof *smp);
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

/* Metadata: updates the head (and, with persist, writes the record into wb) when it differs
 * from what is stored. A family's entry keeps one reference of its interned name. */
rt_err ing_meta_update(ing_ingester *ing, ing_tenant *t, const Prometheus__MetricMetadata *md,
                       rocksdb_writebatch_t *wb, rt_buf *tmp, bool persist) {
  const char *fam = md->metric_family_name ? md->metric_family_name : "";
  const char *help = md->help ? md->help : "";
  const char *unit = md->unit ? md->unit : "";
  const char *name = ing_intern_find(&t->strings, fam, strlen(fam));
  ing_meta *m = name ? ing_pmap_get(&t->meta, name) : NULL;
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
    name = ing_intern_str(&t->strings, fam, strlen(fam));
    m = name ? rt_calloc(1, sizeof *m) : NULL;
    if (!m || ing_pmap_put(&t->meta, name, m)) {
      rt_free(m, sizeof *m);
      if (name) {
        ing_intern_release(&t->strings, name);
      }
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
  if (accepted > 0) {
    t->last_write_ns = rt_mono_ns();
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
