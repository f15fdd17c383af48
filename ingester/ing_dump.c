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
#include "common/floatfmt.h"
#include "common/limits.h"
#include "common/log.h"
#include "ingester/ing_format.h"
#include "ingester/ing_ha.h"
#include "ingester/ing_int.h"

/* ------------------------------------------------------------------ dump */

/* One series record, read straight from the series CF (dump does not build a head: a series
 * that left the head and came back has two records with the same labels, I11). */
typedef struct ing_dump_series {
  uint64_t id;      /* tenant << 32 | ref: the records come in this order */
  rt_label *labels; /* arena */
  size_t nlabels;
  ing_sample *s; /* WAL samples after the flush position */
  size_t n, cap;
  uint64_t cur_seq, flushed_seq;
  uint32_t cur_idx, flushed_idx;
} ing_dump_series;

typedef struct ing_dump_set {
  ing_dump_series *all;
  size_t n, cap;
} ing_dump_set;

static rt_err ing_dump_push(ing_sample **s, size_t *n, size_t *cap, int64_t t, double v) {
  if (*n == *cap) {
    size_t ncap = *cap ? *cap * 2 : 16;
    ing_sample *ns = rt_realloc(*s, *cap * sizeof *ns, ncap * sizeof *ns);
    if (!ns) {
      return RT_ENOMEM;
    }
    *s = ns;
    *cap = ncap;
  }
  (*s)[(*n)++] = (ing_sample){t, v};
  return RT_OK;
}

static int ing_dump_id_cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = ((const ing_dump_series *)b)->id;
  return (x > y) - (x < y);
}

static rt_err ing_dump_wal_sample(void *ctx, uint32_t tid, uint32_t ref, int64_t ts, double v,
                                  uint64_t seq) {
  ing_dump_set *c = ctx;
  uint64_t id = (uint64_t)tid << 32 | ref;
  ing_dump_series *d = bsearch(&id, c->all, c->n, sizeof *c->all, ing_dump_id_cmp);
  if (!d) {
    return RT_OK;
  }
  uint32_t idx = d->cur_seq == seq ? d->cur_idx : 0;
  d->cur_seq = seq;
  d->cur_idx = idx + 1;
  if (seq < d->flushed_seq || (seq == d->flushed_seq && idx < d->flushed_idx)) {
    return RT_OK;
  }
  return ing_dump_push(&d->s, &d->n, &d->cap, ts, v);
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


/* Appends every sample of the closed chunks of (tenant, ref). */
static rt_err ing_dump_chunks(rocksdb_iterator_t *it, uint32_t tenant, uint32_t ref,
                              ing_sample **s, size_t *n, size_t *cap) {
  ing_chunk_scan cs;
  ing_chunk_scan_start(&cs, it, 0, tenant, ref, INT64_MIN, INT64_MAX);
  ing_chunk_rec c;
  rt_err err = RT_OK;
  while (!err && ing_chunk_scan_next(&cs, &c)) {
    ing_sample *smp;
    size_t k;
    err = ing_chunk_decode(&c, &smp, &k);
    if (err == RT_EPROTO) {
      err = RT_OK;
      continue;
    }
    for (size_t i = 0; i < k && !err; i++) {
      err = ing_dump_push(s, n, cap, smp[i].t, smp[i].v);
    }
    rt_free(smp, k * sizeof *smp);
  }
  return err ? err : ing_chunk_scan_error(&cs);
}

/* buf holds RT_FLOAT_SHORT bytes */
static void ing_fmt_value(char *buf, double v) {
  if (ing_f64_bits(v) == RT_STALE_NAN_BITS) {
    memcpy(buf, "StaleNaN", sizeof "StaleNaN");
  } else {
    rt_float_format(buf, v, 'g');
  }
}

static int ing_dump_label_cmp(const void *a, const void *b) {
  const ing_dump_series *x = *(ing_dump_series *const *)a, *y = *(ing_dump_series *const *)b;
  int c = rt_labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
  return c ? c : (x->id > y->id) - (x->id < y->id);
}

static int ing_tenant_name_cmp(const void *a, const void *b) {
  return strcmp((*(ing_tenant *const *)a)->name, (*(ing_tenant *const *)b)->name);
}

/* Reads every series record (labels and flush position). */
static rt_err ing_dump_series_load(ing_ingester *ing, rt_arena *arena, ing_dump_set *c) {
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(ing->db, ing->ropts, ing->cf[ING_CF_SERIES]);
  rt_err err = RT_OK;
  for (rocksdb_iter_seek_to_first(it); !err && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t kl, vl;
    const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
    const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
    if (kl != ING_SERIES_KEY_LEN) {
      continue;
    }
    ing_series_rec rec;
    err = ing_series_decode(v, vl, arena, &rec);
    if (err == RT_EPROTO) {
      rt_warn(ING_LOG, "skipping a corrupt series record", "ref=%u", ing_get_u32(k + 4));
      err = RT_OK;
      continue;
    }
    if (!err && c->n == c->cap) {
      size_t ncap = c->cap ? c->cap * 2 : 1024;
      ing_dump_series *na = rt_realloc(c->all, c->cap * sizeof *na, ncap * sizeof *na);
      if (!na) {
        err = RT_ENOMEM;
        break;
      }
      c->all = na;
      c->cap = ncap;
    }
    if (!err) {
      c->all[c->n++] = (ing_dump_series){.id = (uint64_t)ing_get_u32(k) << 32 | ing_get_u32(k + 4),
                                         .labels = rec.labels,
                                         .nlabels = rec.n,
                                         .flushed_seq = rec.flushed_seq,
                                         .flushed_idx = rec.flushed_idx};
    }
  }
  char *dberr = NULL;
  rocksdb_iter_get_error(it, &dberr);
  if (!err) {
    err = ing_dberr(dberr, "read series");
  } else if (dberr) {
    rocksdb_free(dberr);
  }
  rocksdb_iter_destroy(it);
  return err;
}

/* Prints one series: every record with these labels, in ref order (later ones win a tie). */
static rt_err ing_dump_print(rocksdb_iterator_t *cit, const ing_tenant *t, ing_dump_series **run,
                             size_t nrun, FILE *out) {
  ing_sample *s = NULL;
  size_t n = 0, cap = 0;
  rt_err err = RT_OK;
  for (size_t r = 0; !err && r < nrun; r++) {
    err = ing_dump_chunks(cit, t->id, (uint32_t)run[r]->id, &s, &n, &cap);
    for (size_t a = 0; !err && a < run[r]->n; a++) {
      err = ing_dump_push(&s, &n, &cap, run[r]->s[a].t, run[r]->s[a].v);
    }
  }
  ing_tagged *tg = !err && n ? rt_alloc(n * sizeof *tg) : NULL;
  if (!err && n && !tg) {
    err = RT_ENOMEM;
  }
  for (size_t a = 0; tg && a < n; a++) {
    tg[a] = (ing_tagged){s[a].t, s[a].v, a};
  }
  if (tg && n > 1) {
    qsort(tg, n, sizeof *tg, ing_tagged_cmp);
  }
  char lb[16384], vb[64];
  ing_labels_format(run[0]->labels, run[0]->nlabels, lb, sizeof lb);
  for (size_t a = 0; tg && a < n; a++) {
    if (a + 1 < n && tg[a + 1].t == tg[a].t) {
      continue;
    }
    ing_fmt_value(vb, tg[a].v);
    fprintf(out, "%s %s %lld %s\n", t->name, lb, (long long)tg[a].t, vb);
  }
  rt_free(tg, n * sizeof *tg);
  rt_free(s, cap * sizeof *s);
  return err;
}

rt_err ing_dump(const char *data_dir, const char *tenant, FILE *out) {
  ing_config cfg = {.data_dir = data_dir};
  ing_ingester *ing = ing_alloc(&cfg);
  if (!ing) {
    return RT_ENOMEM;
  }
  ing->readonly = true;
  ing_dump_set c = {0};
  rt_arena *arena = rt_arena_create(64 * 1024);
  rt_err err = arena ? ing_open_db(ing, ing->data_dir, true) : RT_ENOMEM;
  if (!err) {
    err = ing_load_meta(ing);
  }
  if (!err) {
    err = ing_dump_series_load(ing, arena, &c);
  }
  /* the WAL tail */
  if (!err) {
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(ing->db, ing->ropts, ing->cf[ING_CF_WAL]);
    for (rocksdb_iter_seek_to_first(it); !err && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
      size_t kl, vl;
      const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
      const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
      if (kl == ING_WAL_KEY_LEN) {
        err = ing_wal_parse(ing_get_u64(k), v, vl, ing_dump_wal_sample, &c);
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
  if (!err && ing->ntenants > 1) {
    qsort(ts_sorted, ing->ntenants, sizeof *ts_sorted, ing_tenant_name_cmp);
  }
  ing_dump_series **ss = !err && c.n ? rt_calloc(c.n, sizeof *ss) : NULL;
  if (!err && c.n && !ss) {
    err = RT_ENOMEM;
  }
  rocksdb_iterator_t *cit =
      err ? NULL : rocksdb_create_iterator_cf(ing->db, ing->ropts, ing->cf[ING_CF_CHUNKS]);
  for (size_t i = 0; !err && i < ing->ntenants; i++) {
    ing_tenant *t = ts_sorted[i];
    if (tenant && tenant[0] && strcmp(tenant, t->name) != 0) {
      continue;
    }
    size_t nss = 0;
    for (size_t k = 0; k < c.n; k++) {
      if ((uint32_t)(c.all[k].id >> 32) == t->id) {
        ss[nss++] = &c.all[k];
      }
    }
    if (nss > 1) {
      qsort(ss, nss, sizeof *ss, ing_dump_label_cmp);
    }
    for (size_t k = 0; k < nss && !err;) {
      size_t e = k + 1;
      while (e < nss &&
             rt_labels_cmp(ss[k]->labels, ss[k]->nlabels, ss[e]->labels, ss[e]->nlabels) == 0) {
        e++;
      }
      err = ing_dump_print(cit, t, ss + k, e - k, out);
      k = e;
    }
  }
  if (cit) {
    rocksdb_iter_destroy(cit);
  }
  rt_free(ss, c.n * sizeof *ss);
  rt_free(ts_sorted, ing->ntenants * sizeof *ts_sorted);
  for (size_t k = 0; k < c.n; k++) {
    rt_free(c.all[k].s, c.all[k].cap * sizeof *c.all[k].s);
  }
  rt_free(c.all, c.cap * sizeof *c.all);
  rt_arena_destroy(arena);
  ing_free(ing);
  return err;
}
