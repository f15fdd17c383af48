/* ing_query.c - the read path: select (head copy under the read lock, closed chunks from a
 * RocksDB snapshot, I7), label names and values, metadata. */
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

/* By labels; equal labels (a series that left the head and came back, I11) by ref. */
static int ing_sel_cmp(const void *a, const void *b) {
  const ing_sel *x = a, *y = b;
  int c = rt_labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
  return c ? c : (x->ref > y->ref) - (x->ref < y->ref);
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
static rt_err ing_sel_add_decimal(ing_sel *e, rt_arena *arena, const ing_chunk_rec *c) {
  ing_sample *smp;
  size_t n;
  rt_err err = ing_chunk_decode(c, &smp, &n);
  if (err) {
    return err;
  }
  rt_xor_appender a;
  rt_xor_appender_init(&a);
  for (size_t i = 0; i < n && !err; i++) {
    err = rt_xor_append(&a, smp[i].t, smp[i].v);
  }
  if (!err) {
    size_t xl;
    const uint8_t *xb = rt_xor_bytes(&a, &xl);
    err = ing_sel_add_chunk(e, arena, c->mint, c->maxt, xb, xl);
  }
  rt_xor_appender_fini(&a);
  rt_free(smp, n * sizeof *smp);
  return err;
}

static int ing_chunk_cmp(const void *a, const void *b) {
  const Ringtail__Chunk *x = *(Ringtail__Chunk *const *)a, *y = *(Ringtail__Chunk *const *)b;
  return (x->mint > y->mint) - (x->mint < y->mint);
}

/* Reads the closed chunks of one series overlapping [mint, maxt] (snapshot-consistent). */
static rt_err ing_read_chunks(ing_ingester *ing, rocksdb_iterator_t *it, uint32_t tenant, ing_sel *e,
                              int64_t mint, int64_t maxt, rt_arena *arena) {
  ing_chunk_scan cs;
  ing_chunk_scan_start(&cs, it, atomic_load(&ing->max_span), tenant, e->ref, mint, maxt);
  ing_chunk_rec c;
  while (ing_chunk_scan_next(&cs, &c)) {
    rt_err err;
    if (c.enc == ING_CHUNK_ENC_DECIMAL) {
      err = ing_sel_add_decimal(e, arena, &c);
      if (err == RT_EPROTO) {
        rt_warn(ING_LOG, "skipping a corrupt chunk", "tenant=%u ref=%u", tenant, e->ref);
        continue;
      }
    } else {
      err = ing_sel_add_chunk(e, arena, c.mint, c.maxt, c.data, c.len);
    }
    if (err) {
      return err;
    }
  }
  return ing_chunk_scan_error(&cs);
}

/* ------------------------------------------------------------------ series only on disk (I11) */

/* A growing ref list in the arena. */
typedef struct ing_reflist {
  uint32_t *r;
  size_t n, cap;
} ing_reflist;

static rt_err ing_reflist_add(ing_reflist *l, rt_arena *arena, uint32_t ref) {
  if (l->n == l->cap) {
    size_t ncap = l->cap ? l->cap * 2 : 64;
    uint32_t *nr = rt_arena_alloc(arena, ncap * sizeof *nr);
    if (!nr) {
      return RT_ENOMEM;
    }
    if (l->n) {
      memcpy(nr, l->r, l->n * sizeof *nr);
    }
    l->r = nr;
    l->cap = ncap;
  }
  l->r[l->n++] = ref;
  return RT_OK;
}

static rt_err ing_iter_err(rocksdb_iterator_t *it, const char *what) {
  char *dberr = NULL;
  rocksdb_iter_get_error(it, &dberr);
  return ing_dberr(dberr, what);
}

/* Refs of the tenant's postings keys (tenant, name, 0, value, 0, ref) whose value matches m
 * (== want), sorted and unique. `=` (want) and the excluded value of `!=` seek the one value. */
static rt_err ing_disk_union(ing_ingester *ing, rocksdb_readoptions_t *ro, uint32_t tid,
                             const rt_matcher *m, bool want, rt_arena *arena, ing_reflist *out) {
  memset(out, 0, sizeof *out);
  bool single = (want && m->type == RT_MATCH_EQ) || (!want && m->type == RT_MATCH_NEQ);
  rt_buf pfx = RT_BUF_INIT;
  ing_put_be32(&pfx, tid);
  rt_buf_append(&pfx, m->name, strlen(m->name) + 1);
  size_t name_end = pfx.len;
  if (single) {
    rt_buf_append(&pfx, m->value, strlen(m->value) + 1);
  }
  if (pfx.oom) {
    rt_buf_free(&pfx);
    return RT_ENOMEM;
  }
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(ing->db, ro, ing->cf[ING_CF_POSTINGS]);
  rt_err err = RT_OK;
  char *val = NULL; /* the last value seen and whether it matched */
  size_t vcap = 0, vlen = SIZE_MAX;
  bool vmatch = false;
  for (rocksdb_iter_seek(it, pfx.data, pfx.len); !err && rocksdb_iter_valid(it);
       rocksdb_iter_next(it)) {
    size_t kl;
    const char *k = rocksdb_iter_key(it, &kl);
    if (kl < pfx.len + 4 || memcmp(k, pfx.data, pfx.len) != 0) {
      break;
    }
    if (single) {
      err = ing_reflist_add(out, arena, ing_get_u32((const uint8_t *)k + kl - 4));
      continue;
    }
    const char *v = k + name_end;
    size_t vl = kl - 4 - name_end;
    if (vl == 0 || v[vl - 1] != 0) {
      continue; /* not a postings key */
    }
    vl--;
    if (vl != vlen || memcmp(v, val, vl) != 0) {
      if (vl + 1 > vcap) {
        char *nv = rt_realloc(val, vcap, vl + 1);
        if (!nv) {
          err = RT_ENOMEM;
          break;
        }
        val = nv;
        vcap = vl + 1;
      }
      memcpy(val, v, vl);
      val[vl] = 0;
      vlen = vl;
      vmatch = rt_matcher_matches(m, val);
    }
    if (vmatch == want) {
      err = ing_reflist_add(out, arena, ing_get_u32((const uint8_t *)k + kl - 4));
    }
  }
  if (!err) {
    err = ing_iter_err(it, "read postings");
  }
  rocksdb_iter_destroy(it);
  rt_free(val, vcap);
  rt_buf_free(&pfx);
  out->n = ing_refs_sort_unique(out->r, out->n);
  return err;
}

rt_err ing_disk_select(ing_ingester *ing, const ing_tenant *t, rocksdb_readoptions_t *ro,
                       const rt_matcher *ms, size_t nms, int64_t mint, int64_t maxt,
                       const uint32_t *head, size_t nhead, rt_arena *arena,
                       ing_disk_series **out, size_t *nout) {
  *out = NULL;
  *nout = 0;
  ing_reflist cur = {0};
  bool have = false;
  rt_err err = RT_OK;
  /* as ing_head_postings: matchers not matching "" bound the result, the others remove */
  for (size_t i = 0; !err && i < nms; i++) {
    if (rt_matcher_matches_empty(&ms[i])) {
      continue;
    }
    ing_reflist r;
    err = ing_disk_union(ing, ro, t->id, &ms[i], true, arena, &r);
    if (!have) {
      cur = r;
      have = true;
    } else {
      cur.n = ing_intersect(cur.r, cur.n, r.r, r.n);
    }
    if (cur.n == 0) {
      return err;
    }
  }
  if (!err && !have) {
    /* every matcher matches "": every series record of the tenant */
    uint8_t pfx[4];
    ing_put_u32(pfx, t->id);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(ing->db, ro, ing->cf[ING_CF_SERIES]);
    for (rocksdb_iter_seek(it, (const char *)pfx, 4); !err && rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
      size_t kl;
      const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
      if (kl != ING_SERIES_KEY_LEN || memcmp(k, pfx, 4) != 0) {
        break;
      }
      err = ing_reflist_add(&cur, arena, ing_get_u32(k + 4));
    }
    if (!err) {
      err = ing_iter_err(it, "read series");
    }
    rocksdb_iter_destroy(it);
  }
  for (size_t i = 0; !err && cur.n && i < nms; i++) {
    if (!rt_matcher_matches_empty(&ms[i])) {
      continue;
    }
    ing_reflist r;
    err = ing_disk_union(ing, ro, t->id, &ms[i], false, arena, &r);
    cur.n = ing_subtract(cur.r, cur.n, r.r, r.n);
  }
  if (!err) {
    cur.n = ing_subtract(cur.r, cur.n, head, nhead);
  }
  ing_disk_series *ds = !err && cur.n ? rt_arena_alloc(arena, cur.n * sizeof *ds) : NULL;
  if (!err && cur.n && !ds) {
    err = RT_ENOMEM;
  }
  size_t n = 0;
  for (size_t i = 0; !err && i < cur.n; i++) {
    uint8_t key[ING_SERIES_KEY_LEN];
    ing_series_key(key, t->id, cur.r[i]);
    char *dberr = NULL;
    size_t vl;
    char *v = rocksdb_get_cf(ing->db, ro, ing->cf[ING_CF_SERIES], (const char *)key, sizeof key,
                             &vl, &dberr);
    err = ing_dberr(dberr, "get series");
    if (err || !v) {
      continue;
    }
    ing_series_rec rec;
    rt_err derr = ing_series_decode((const uint8_t *)v, vl, arena, &rec);
    rocksdb_free(v);
    if (derr == RT_ENOMEM) {
      err = derr;
    } else if (derr) {
      rt_warn(ING_LOG, "skipping a corrupt series record", "ref=%u", cur.r[i]);
    } else if (rec.first_t <= rec.last_t && rec.first_t <= maxt && rec.last_t >= mint) {
      ds[n++] = (ing_disk_series){cur.r[i], (uint16_t)rec.n, rec.labels, rec.first_t, rec.last_t};
    }
  }
  if (err) {
    return err;
  }
  *out = ds;
  *nout = n;
  return RT_OK;
}

/* Copies labels into the arena (answers outlive the lock: series may leave the head, I8), the
 * array and its strings in one allocation. */
static rt_label *ing_labels_copy(const rt_label *ls, size_t n, rt_arena *arena) {
  size_t bytes = (n ? n : 1) * sizeof(rt_label);
  for (size_t i = 0; i < n; i++) {
    bytes += strlen(ls[i].name) + strlen(ls[i].value) + 2;
  }
  rt_label *c = rt_arena_alloc(arena, bytes);
  if (!c) {
    return NULL;
  }
  char *p = (char *)(c + (n ? n : 1));
  for (size_t i = 0; i < n; i++) {
    size_t nl = strlen(ls[i].name) + 1, vl = strlen(ls[i].value) + 1;
    c[i].name = memcpy(p, ls[i].name, nl);
    p += nl;
    c[i].value = memcpy(p, ls[i].value, vl);
    p += vl;
  }
  return c;
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
  /* series that left the head may hold samples in the range (I11) */
  bool disk = t->disk_max_t >= mint && t->disk_min_t <= maxt;
  err = ing_head_postings(t, ms, req->n_matchers, arena, &refs, &nrefs);
  if (!err && nrefs) {
    sel = rt_arena_alloc(arena, nrefs * sizeof *sel);
    if (!sel) {
      err = RT_ENOMEM;
    }
  }
  for (size_t i = 0; !err && i < nrefs; i++) {
    const ing_series *s = ing_series_by_ref(t, refs[i]);
    if (!ing_in_range(s, mint, maxt)) {
      continue;
    }
    if (req->shard_count > 0 && s->hash % req->shard_count != req->shard_index) {
      continue;
    }
    if (ing_tomb_hides(ing, t->id, s->ref, s->first_t, s->last_t, mint, maxt)) {
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
  if (!disk && req->limit > 0 && nsel > req->limit) {
    nsel = req->limit; /* with series on disk, the limit applies to the merged answer */
  }
  for (size_t i = 0; !err && i < nsel; i++) {
    sel[i].labels = ing_labels_copy(sel[i].labels, sel[i].nlabels, arena);
    err = sel[i].labels ? RT_OK : RT_ENOMEM;
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
  }
  for (size_t i = 0; i < nsel; i++) {
    sel[i].s = NULL; /* not to be used once the lock goes */
  }
  if (!err && (!req->labels_only || disk)) {
    snap = rocksdb_create_snapshot(ing->db);
  }
  pthread_rwlock_unlock(&t->lock);

  rocksdb_readoptions_t *ro = NULL;
  if (!err && snap) {
    ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_snapshot(ro, snap);
  }
  size_t nhead = nsel;
  if (!err && disk) {
    /* the series only on disk: every head series that matched answers for its own ref */
    ing_disk_series *ds;
    size_t nds;
    err = ing_disk_select(ing, t, ro, ms, req->n_matchers, mint, maxt, refs, nrefs, arena, &ds,
                          &nds);
    ing_sel *all = !err && nds ? rt_arena_alloc(arena, (nsel + nds) * sizeof *all) : NULL;
    if (!err && nds && !all) {
      err = RT_ENOMEM;
    }
    if (all) {
      if (nsel) {
        memcpy(all, sel, nsel * sizeof *sel);
      }
      sel = all;
    }
    for (size_t i = 0; !err && i < nds; i++) {
      uint64_t hash = 0;
      if (req->shard_count > 0) {
        ing_key key;
        err = ing_series_keys(t->name, ds[i].labels, ds[i].nlabels, arena, &key, &hash);
        if (err || hash % req->shard_count != req->shard_index) {
          continue;
        }
      }
      if (ing_tomb_hides(ing, t->id, ds[i].ref, ds[i].first_t, ds[i].last_t, mint, maxt)) {
        continue;
      }
      ing_sel *e = &sel[nsel++];
      memset(e, 0, sizeof *e);
      e->labels = ds[i].labels;
      e->nlabels = ds[i].nlabels;
      e->ref = ds[i].ref;
    }
  }

  if (!err && ro && !req->labels_only) {
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
    }
    rocksdb_iter_destroy(it);
  }
  if (ro) {
    rocksdb_readoptions_destroy(ro);
  }
  if (snap) {
    rocksdb_release_snapshot(ing->db, snap);
  }
  /* deleted samples go per ref; then the records of one series (a series that left the head
   * and came back has a ref on disk and one in the head) become one answer */
  for (size_t i = 0; !err && !req->labels_only && i < nsel; i++) {
    Ringtail__SeriesChunks sc;
    ringtail__series_chunks__init(&sc);
    sc.chunks = sel[i].chunks;
    sc.n_chunks = sel[i].nchunks;
    err = ing_tomb_filter(ing, t->id, sel[i].ref, &sc, arena);
    sel[i].chunks = sc.chunks;
    sel[i].nchunks = sel[i].cap = sc.n_chunks;
  }
  if (!err && nsel > nhead) {
    qsort(sel, nsel, sizeof *sel, ing_sel_cmp);
    size_t w = 0;
    for (size_t i = 0; !err && i < nsel; i++) {
      if (w > 0 && rt_labels_cmp(sel[w - 1].labels, sel[w - 1].nlabels, sel[i].labels,
                                 sel[i].nlabels) == 0) {
        for (size_t k = 0; !err && k < sel[i].nchunks; k++) {
          const Ringtail__Chunk *c = sel[i].chunks[k];
          err = ing_sel_add_chunk(&sel[w - 1], arena, c->mint, c->maxt, c->data.data, c->data.len);
        }
        continue;
      }
      sel[w++] = sel[i];
    }
    nsel = w;
  }
  if (req->limit > 0 && nsel > req->limit) {
    nsel = req->limit;
  }
  for (size_t i = 0; !err && i < nsel; i++) {
    if (sel[i].nchunks > 1) {
      qsort(sel[i].chunks, sel[i].nchunks, sizeof *sel[i].chunks, ing_chunk_cmp);
    }
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
      lv[k].name = (char *)sel[i].labels[k].name; /* arena copies */
      lv[k].value = (char *)sel[i].labels[k].value;
      lp[k] = &lv[k];
    }
    sc->labels = lp;
    sc->n_labels = sel[i].nlabels;
    sc->chunks = sel[i].chunks;
    sc->n_chunks = sel[i].nchunks;
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
  size_t w = 0;
  for (size_t i = 0; i < n; i++) {
    if (w == 0 || strcmp(v[w - 1], v[i]) != 0) {
      v[w++] = v[i];
    }
  }
  n = w;
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
      const ing_series *s = ing_series_by_ref(t, p->refs[i]);
      if (s && s->first_t <= s->last_t) {
        return true;
      }
      continue;
    }
    const ing_series *s = ing_series_by_ref(t, p->refs[i]);
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
  uint32_t *refs = NULL; /* the head series that matched (they answer for their refs) */
  size_t nrefs = 0;
  pthread_rwlock_rdlock(&t->lock);
  bool disk = t->disk_max_t >= mint && t->disk_min_t <= maxt; /* I11 */
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
          const char *k = m->keys[i];
          out[nout] = rt_arena_strndup(arena, k, strlen(k)); /* the head may drop it (I8) */
          err = out[nout++] ? RT_OK : RT_ENOMEM;
        }
      }
    }
  } else if (!values || ln) {
    err = ing_head_postings(t, ms, req->n_matchers, arena, &refs, &nrefs);
    ing_pmap seen = {0};
    for (size_t i = 0; !err && i < nrefs; i++) {
      const ing_series *s = ing_series_by_ref(t, refs[i]);
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
          const char *k = seen.keys[i];
          out[nout] = rt_arena_strndup(arena, k, strlen(k));
          err = out[nout++] ? RT_OK : RT_ENOMEM;
        }
      }
    }
    ing_pmap_fini(&seen);
  }
  pthread_rwlock_unlock(&t->lock);
  if (!err && disk) {
    /* names and values of the series only on disk; the head's lists are sorted refs */
    ing_disk_series *ds = NULL;
    size_t nds = 0;
    const rt_matcher *dms = ms;
    size_t dn = req->n_matchers;
    rt_matcher has; /* values: only series having the label */
    char eb[64];
    bool with_has = values && rt_matcher_init(&has, RT_MATCH_NEQ, qname, "", eb, sizeof eb) == RT_OK;
    if (with_has) {
      rt_matcher *m2 = rt_arena_alloc(arena, (dn + 1) * sizeof *m2);
      if (m2) {
        if (dn) {
          memcpy(m2, ms, dn * sizeof *m2); /* borrowed copies: finalised through ms */
        }
        m2[dn++] = has;
        dms = m2;
      }
    }
    err = ing_disk_select(ing, t, ing->ropts, dms, dn, mint, maxt, refs, nrefs, arena, &ds, &nds);
    if (with_has) {
      rt_matcher_fini(&has);
    }
    size_t extra = 0;
    for (size_t i = 0; !err && i < nds; i++) {
      extra += values ? 1 : ds[i].nlabels;
    }
    const char **all = !err && extra ? rt_arena_alloc(arena, (nout + extra) * sizeof *all) : NULL;
    if (!err && extra && !all) {
      err = RT_ENOMEM;
    }
    if (all) {
      if (nout) {
        memcpy(all, out, nout * sizeof *out);
      }
      out = all;
    }
    for (size_t i = 0; !err && i < nds; i++) {
      if (values) {
        const char *v = rt_labels_get(ds[i].labels, ds[i].nlabels, qname);
        if (v) {
          out[nout++] = v;
        }
        continue;
      }
      for (size_t k = 0; k < ds[i].nlabels; k++) {
        out[nout++] = ds[i].labels[k].name;
      }
    }
  }
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
    md->metric_family_name = rt_arena_strndup(arena, name, strlen(name));
    if (!md->metric_family_name) {
      err = RT_ENOMEM;
      break;
    }
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
