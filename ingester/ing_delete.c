/* ing_delete.c - series deletion: persistent tombstones hiding a series' samples in a time range
 * (ingester.DeleteSeries). See ingester/DESIGN.md, "Series deletion". */
#include <string.h>

#include "common/log.h"
#include "ingester/ing_format.h"
#include "ingester/ing_int.h"

#define ING_TOMB_PREFIX 'd'
#define ING_TOMB_MAGIC 0x44 /* 'D' */
#define ING_TOMB_KEY_LEN (1 + 4 + 4 + 8)
#define ING_TOMB_VAL_LEN (1 + 8 + 8)

typedef struct ing_tomb_ent {
  uint64_t key;   /* tenant id << 32 | series ref; 0 = empty slot */
  int64_t *iv;    /* sorted, merged [mint, maxt] pairs */
  uint32_t n, cap;
} ing_tomb_ent;

struct ing_tombs {
  pthread_rwlock_t lock;
  ing_tomb_ent *slots;
  size_t cap, n;
  atomic_uint_least64_t next_seq;
};

static size_t tomb_slot(uint64_t k, size_t cap) {
  k ^= k >> 31;
  k *= 0x9e3779b97f4a7c15ull;
  k ^= k >> 29;
  return (size_t)k & (cap - 1);
}

static ing_tomb_ent *tomb_find(const struct ing_tombs *tb, uint64_t key) {
  if (!tb->cap) {
    return NULL;
  }
  for (size_t k = tomb_slot(key, tb->cap);; k = (k + 1) & (tb->cap - 1)) {
    if (tb->slots[k].key == key) {
      return &tb->slots[k];
    }
    if (!tb->slots[k].key) {
      return NULL;
    }
  }
}

/* With the write lock held. */
static rt_err tomb_add(struct ing_tombs *tb, uint64_t key, int64_t mint, int64_t maxt) {
  if ((tb->n + 1) * 2 > tb->cap) {
    size_t nc = tb->cap ? tb->cap * 2 : 64;
    ing_tomb_ent *ns = rt_calloc(nc, sizeof *ns);
    if (!ns) {
      return RT_ENOMEM;
    }
    for (size_t i = 0; i < tb->cap; i++) {
      if (tb->slots[i].key) {
        size_t k = tomb_slot(tb->slots[i].key, nc);
        while (ns[k].key) {
          k = (k + 1) & (nc - 1);
        }
        ns[k] = tb->slots[i];
      }
    }
    rt_free(tb->slots, tb->cap * sizeof *tb->slots);
    tb->slots = ns;
    tb->cap = nc;
  }
  ing_tomb_ent *e = tomb_find(tb, key);
  if (!e) {
    size_t k = tomb_slot(key, tb->cap);
    while (tb->slots[k].key) {
      k = (k + 1) & (tb->cap - 1);
    }
    e = &tb->slots[k];
    e->key = key;
    tb->n++;
  }
  if (e->n + 1 > e->cap) {
    uint32_t nc = e->cap ? e->cap * 2 : 2;
    int64_t *ni = rt_realloc(e->iv, (size_t)e->cap * 2 * sizeof *ni, (size_t)nc * 2 * sizeof *ni);
    if (!ni) {
      return RT_ENOMEM;
    }
    e->iv = ni;
    e->cap = nc;
  }
  /* insert sorted by mint, then merge overlapping or touching intervals */
  uint32_t i = e->n;
  while (i > 0 && e->iv[2 * (i - 1)] > mint) {
    e->iv[2 * i] = e->iv[2 * (i - 1)];
    e->iv[2 * i + 1] = e->iv[2 * (i - 1) + 1];
    i--;
  }
  e->iv[2 * i] = mint;
  e->iv[2 * i + 1] = maxt;
  e->n++;
  uint32_t w = 0;
  for (uint32_t r = 1; r < e->n; r++) {
    int64_t wmax = e->iv[2 * w + 1];
    if (e->iv[2 * r] <= wmax || (wmax < INT64_MAX && e->iv[2 * r] == wmax + 1)) {
      if (e->iv[2 * r + 1] > wmax) {
        e->iv[2 * w + 1] = e->iv[2 * r + 1];
      }
    } else {
      w++;
      e->iv[2 * w] = e->iv[2 * r];
      e->iv[2 * w + 1] = e->iv[2 * r + 1];
    }
  }
  e->n = w + 1;
  return RT_OK;
}

static struct ing_tombs *tombs_new(void) {
  struct ing_tombs *tb = rt_calloc(1, sizeof *tb);
  if (tb) {
    pthread_rwlock_init(&tb->lock, NULL);
    atomic_init(&tb->next_seq, 1);
  }
  return tb;
}

void ing_tomb_free(ing_ingester *ing) {
  struct ing_tombs *tb = ing->tombs;
  if (!tb) {
    return;
  }
  for (size_t i = 0; i < tb->cap; i++) {
    rt_free(tb->slots[i].iv, (size_t)tb->slots[i].cap * 2 * sizeof(int64_t));
  }
  rt_free(tb->slots, tb->cap * sizeof *tb->slots);
  pthread_rwlock_destroy(&tb->lock);
  rt_free(tb, sizeof *tb);
  ing->tombs = NULL;
}

rt_err ing_tomb_load(ing_ingester *ing) {
  struct ing_tombs *tb = tombs_new();
  if (!tb) {
    return RT_ENOMEM;
  }
  ing->tombs = tb;
  rt_err err = RT_OK;
  uint64_t maxseq = 0, n = 0;
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(ing->db, ing->ropts, ing->cf[ING_CF_META]);
  char pfx = ING_TOMB_PREFIX;
  for (rocksdb_iter_seek(it, &pfx, 1); !err && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t kl, vl;
    const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
    if (kl < 1 || k[0] != ING_TOMB_PREFIX) {
      break;
    }
    const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
    if (kl != ING_TOMB_KEY_LEN || vl != ING_TOMB_VAL_LEN || v[0] != ING_TOMB_MAGIC) {
      rt_warn(ING_LOG, "ignoring a malformed tombstone record", "key_len=%zu value_len=%zu", kl, vl);
      continue;
    }
    uint64_t key = (uint64_t)ing_get_u32(k + 1) << 32 | ing_get_u32(k + 5);
    uint64_t seq = ing_get_u64(k + 9);
    maxseq = seq > maxseq ? seq : maxseq;
    err = tomb_add(tb, key, (int64_t)ing_get_u64(v + 1), (int64_t)ing_get_u64(v + 9));
    n++;
  }
  char *dberr = NULL;
  rocksdb_iter_get_error(it, &dberr);
  rocksdb_iter_destroy(it);
  if (dberr) {
    rt_error(ING_LOG, "reading tombstones failed", "err=\"%s\"", dberr);
    rocksdb_free(dberr);
    err = RT_EIO;
  }
  atomic_store(&tb->next_seq, maxseq + 1);
  if (n) {
    rt_info(ING_LOG, "tombstones loaded", "tombstones=%llu series=%zu", (unsigned long long)n, tb->n);
  }
  return err;
}

bool ing_tomb_hides(ing_ingester *ing, uint32_t tenant_id, uint32_t ref, int64_t first_t,
                    int64_t last_t, int64_t mint, int64_t maxt) {
  struct ing_tombs *tb = ing->tombs;
  if (!tb || !tb->n) {
    return false;
  }
  int64_t lo = RT_MAX(mint, first_t), hi = RT_MIN(maxt, last_t);
  bool hidden = false;
  pthread_rwlock_rdlock(&tb->lock);
  const ing_tomb_ent *e = tomb_find(tb, (uint64_t)tenant_id << 32 | ref);
  for (uint32_t i = 0; e && i < e->n && !hidden; i++) {
    hidden = e->iv[2 * i] <= lo && e->iv[2 * i + 1] >= hi;
  }
  pthread_rwlock_unlock(&tb->lock);
  return hidden;
}

static bool in_iv(const int64_t *iv, uint32_t n, int64_t t) {
  for (uint32_t i = 0; i < n; i++) {
    if (t >= iv[2 * i] && t <= iv[2 * i + 1]) {
      return true;
    }
  }
  return false;
}

rt_err ing_tomb_filter(ing_ingester *ing, uint32_t tenant_id, uint32_t ref,
                       Ringtail__SeriesChunks *sc, rt_arena *arena) {
  struct ing_tombs *tb = ing->tombs;
  if (!tb || !tb->n) {
    return RT_OK;
  }
  /* a private copy of the series' intervals, so that the chunks are re-encoded unlocked */
  int64_t ivbuf[16], *iv = ivbuf;
  uint32_t n = 0;
  pthread_rwlock_rdlock(&tb->lock);
  const ing_tomb_ent *e = tomb_find(tb, (uint64_t)tenant_id << 32 | ref);
  if (e && e->n) {
    n = e->n;
    if (n > 8) {
      iv = rt_arena_alloc(arena, (size_t)n * 2 * sizeof *iv);
    }
    if (iv) {
      memcpy(iv, e->iv, (size_t)n * 2 * sizeof *iv);
    }
  }
  pthread_rwlock_unlock(&tb->lock);
  if (!n) {
    return RT_OK;
  }
  if (!iv) {
    return RT_ENOMEM;
  }
  size_t w = 0;
  rt_err err = RT_OK;
  for (size_t c = 0; c < sc->n_chunks && !err; c++) {
    Ringtail__Chunk *ch = sc->chunks[c];
    bool touched = false;
    for (uint32_t i = 0; i < n && !touched; i++) {
      touched = iv[2 * i] <= ch->maxt && iv[2 * i + 1] >= ch->mint;
    }
    if (!touched) {
      sc->chunks[w++] = ch;
      continue;
    }
    rt_chunk_iter it;
    rt_chunk_iter_init(&it, ch->data.data, ch->data.len);
    rt_xor_appender a;
    rt_xor_appender_init(&a);
    int64_t t;
    double v;
    while (!err && rt_chunk_iter_next(&it, &t, &v)) {
      if (!in_iv(iv, n, t)) {
        err = rt_xor_append(&a, t, v);
      }
    }
    if (!err && rt_chunk_iter_err(&it)) {
      err = RT_EPROTO;
    }
    if (!err && a.count > 0) {
      size_t len;
      const uint8_t *b = rt_xor_bytes(&a, &len);
      uint8_t *copy = rt_arena_alloc(arena, len ? len : 1);
      if (!copy) {
        err = RT_ENOMEM;
      } else {
        memcpy(copy, b, len);
        ch->data.data = copy;
        ch->data.len = len;
        ch->mint = a.mint;
        ch->maxt = a.maxt;
        sc->chunks[w++] = ch;
      }
    }
    rt_xor_appender_fini(&a);
  }
  sc->n_chunks = w;
  return err;
}

/* ------------------------------------------------------------------ retention */

bool ing_tomb_any(ing_ingester *ing, uint32_t tenant_id, uint32_t ref) {
  struct ing_tombs *tb = ing->tombs;
  if (!tb || !tb->n) {
    return false;
  }
  pthread_rwlock_rdlock(&tb->lock);
  const ing_tomb_ent *e = tomb_find(tb, (uint64_t)tenant_id << 32 | ref);
  bool any = e && e->n;
  pthread_rwlock_unlock(&tb->lock);
  return any;
}

size_t ing_tomb_trim(ing_ingester *ing, uint32_t tenant_id, uint32_t ref, int64_t before,
                     rocksdb_writebatch_t *wb) {
  uint8_t pfx[9];
  pfx[0] = ING_TOMB_PREFIX;
  ing_put_u32(pfx + 1, tenant_id);
  ing_put_u32(pfx + 5, ref);
  size_t n = 0;
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(ing->db, ing->ropts, ing->cf[ING_CF_META]);
  for (rocksdb_iter_seek(it, (const char *)pfx, sizeof pfx); rocksdb_iter_valid(it);
       rocksdb_iter_next(it)) {
    size_t kl, vl;
    const char *k = rocksdb_iter_key(it, &kl);
    if (kl != ING_TOMB_KEY_LEN || memcmp(k, pfx, sizeof pfx) != 0) {
      break;
    }
    const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
    if (vl == ING_TOMB_VAL_LEN && v[0] == ING_TOMB_MAGIC && (int64_t)ing_get_u64(v + 9) < before) {
      rocksdb_writebatch_delete_cf(wb, ing->cf[ING_CF_META], k, kl);
      n++;
    }
  }
  char *dberr = NULL;
  rocksdb_iter_get_error(it, &dberr);
  rocksdb_iter_destroy(it);
  ing_dberr(dberr, "read tombstones"); /* what was not read stays: it hides nothing */
  return n;
}

/* Removes the entry at slot i, moving the rest of its run back (linear probing). Write lock. */
static void tomb_remove_at(struct ing_tombs *tb, size_t i) {
  ing_tomb_ent *sl = tb->slots;
  size_t mask = tb->cap - 1;
  rt_free(sl[i].iv, (size_t)sl[i].cap * 2 * sizeof(int64_t));
  for (size_t j = (i + 1) & mask; sl[j].key; j = (j + 1) & mask) {
    size_t home = tomb_slot(sl[j].key, tb->cap);
    /* sl[j] may move to i when its home is not cyclically within (i, j] */
    bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!stays) {
      sl[i] = sl[j];
      i = j;
    }
  }
  memset(&sl[i], 0, sizeof sl[i]);
  tb->n--;
}

void ing_tomb_forget(ing_ingester *ing, uint32_t tenant_id, uint32_t ref, int64_t before) {
  struct ing_tombs *tb = ing->tombs;
  if (!tb || !tb->n) {
    return;
  }
  pthread_rwlock_wrlock(&tb->lock);
  ing_tomb_ent *e = tomb_find(tb, (uint64_t)tenant_id << 32 | ref);
  if (e) {
    uint32_t w = 0;
    for (uint32_t r = 0; r < e->n; r++) {
      if (e->iv[2 * r + 1] >= before) {
        e->iv[2 * w] = e->iv[2 * r];
        e->iv[2 * w + 1] = e->iv[2 * r + 1];
        w++;
      }
    }
    e->n = w;
    if (w == 0) {
      tomb_remove_at(tb, (size_t)(e - tb->slots));
    }
  }
  pthread_rwlock_unlock(&tb->lock);
}

rt_err ing_delete_series(ing_ingester *ing, const Ringtail__DeleteSeriesRequest *req,
                         Ringtail__DeleteSeriesResponse *resp, rt_arena *arena) {
  ringtail__delete_series_response__init(resp);
  if (req->n_matchers == 0) {
    return RT_EINVAL;
  }
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
  if (mint > maxt) {
    ing_matchers_free(ms, req->n_matchers);
    return RT_EINVAL;
  }
  /* the series and the part of [mint, maxt] up to their newest sample: samples written later
   * (past that) stay visible */
  uint32_t *refs = NULL;
  size_t nrefs = 0, nt = 0;
  int64_t *tmax = NULL;
  uint32_t *head = NULL; /* every head series that matched: it answers for its ref */
  pthread_rwlock_rdlock(&t->lock);
  bool disk = t->disk_max_t >= mint && t->disk_min_t <= maxt; /* series only on disk (I11) */
  err = ing_head_postings(t, ms, req->n_matchers, arena, &refs, &nrefs);
  if (!err && nrefs) {
    tmax = rt_arena_alloc(arena, nrefs * sizeof *tmax);
    head = rt_arena_alloc(arena, nrefs * sizeof *head);
    if (!tmax || !head) {
      err = RT_ENOMEM;
    } else {
      memcpy(head, refs, nrefs * sizeof *head);
    }
  }
  for (size_t i = 0; !err && i < nrefs; i++) {
    const ing_series *s = ing_series_by_ref(t, refs[i]);
    if (s->first_t > s->last_t || s->first_t > maxt || s->last_t < mint) {
      continue;
    }
    refs[nt] = refs[i];
    tmax[nt++] = RT_MIN(maxt, s->last_t);
  }
  pthread_rwlock_unlock(&t->lock);
  if (!err && disk) {
    ing_disk_series *ds;
    size_t nds;
    err = ing_disk_select(ing, t, ing->ropts, ms, req->n_matchers, mint, maxt, head, nrefs, arena,
                          &ds, &nds);
    uint32_t *r2 = !err && nds ? rt_arena_alloc(arena, (nt + nds) * sizeof *r2) : NULL;
    int64_t *t2 = !err && nds ? rt_arena_alloc(arena, (nt + nds) * sizeof *t2) : NULL;
    if (!err && nds && (!r2 || !t2)) {
      err = RT_ENOMEM;
    }
    if (r2 && t2) {
      if (nt) {
        memcpy(r2, refs, nt * sizeof *r2);
        memcpy(t2, tmax, nt * sizeof *t2);
      }
      for (size_t i = 0; i < nds; i++) {
        r2[nt] = ds[i].ref;
        t2[nt++] = RT_MIN(maxt, ds[i].last_t);
      }
      refs = r2;
      tmax = t2;
    }
  }
  ing_matchers_free(ms, req->n_matchers);
  if (err || !nt) {
    return err;
  }
  if (!ing->tombs) {
    return RT_EINVAL; /* read-only */
  }
  struct ing_tombs *tb = ing->tombs;
  rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
  for (size_t i = 0; i < nt; i++) {
    uint8_t k[ING_TOMB_KEY_LEN], v[ING_TOMB_VAL_LEN];
    k[0] = ING_TOMB_PREFIX;
    ing_put_u32(k + 1, t->id);
    ing_put_u32(k + 5, refs[i]);
    ing_put_u64(k + 9, atomic_fetch_add(&tb->next_seq, 1));
    v[0] = ING_TOMB_MAGIC;
    ing_put_u64(v + 1, (uint64_t)mint);
    ing_put_u64(v + 9, (uint64_t)tmax[i]);
    rocksdb_writebatch_put_cf(wb, ing->cf[ING_CF_META], (const char *)k, sizeof k, (const char *)v,
                              sizeof v);
  }
  rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(wo, 1);
  char *dberr = NULL;
  rocksdb_write(ing->db, wo, wb, &dberr);
  rocksdb_writeoptions_destroy(wo);
  rocksdb_writebatch_destroy(wb);
  if (dberr) {
    rt_error(ING_LOG, "writing tombstones failed", "err=\"%s\"", dberr);
    rocksdb_free(dberr);
    return RT_EIO;
  }
  pthread_rwlock_wrlock(&tb->lock);
  for (size_t i = 0; !err && i < nt; i++) {
    err = tomb_add(tb, (uint64_t)t->id << 32 | refs[i], mint, tmax[i]);
  }
  pthread_rwlock_unlock(&tb->lock);
  resp->series = nt;
  rt_info(ING_LOG, "series deleted", "tenant=\"%s\" series=%zu mint=%lld maxt=%lld", t->name, nt,
          (long long)mint, (long long)maxt);
  return err;
}
