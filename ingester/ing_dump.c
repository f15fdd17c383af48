/* ing_dump.c - `ringtail dump`: every sample of a data directory, read offline (closed chunks
 * plus the WAL after each series' flush position). */
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
  ing_chunk_scan cs;
  ing_chunk_scan_start(&cs, it, 0, tenant, ref, INT64_MIN, INT64_MAX);
  ing_chunk_rec c;
  rt_err err = RT_OK;
  while (!err && ing_chunk_scan_next(&cs, &c)) {
    ing_sample *smp;
    size_t n;
    err = ing_chunk_decode(&c, &smp, &n);
    if (err == RT_EPROTO) {
      err = RT_OK;
      continue;
    }
    for (size_t i = 0; i < n && !err; i++) {
      err = ing_dump_push(d, smp[i].t, smp[i].v);
    }
    rt_free(smp, n * sizeof *smp);
  }
  return err ? err : ing_chunk_scan_error(&cs);
}

static void ing_fmt_value(char *buf, size_t cap, double v) {
  if (ing_f64_bits(v) == RT_STALE_NAN_BITS) {
    snprintf(buf, cap, "StaleNaN");
  } else if (isnan(v)) {
    snprintf(buf, cap, "NaN");
  } else if (isinf(v)) {
    snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf");
  } else {
    snprintf(buf, cap, "%.17g", v);
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
        ing_fmt_value(vb, sizeof vb, tg[a].v);
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

