/* ing_head.c - the in-memory head of one tenant: interned strings, series table, inverted index
 * and matcher evaluation. Callers hold the tenant's rwlock. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "ingester/ing_int.h"

/* ------------------------------------------------------------------ pointer map */

static size_t ing_ptr_hash(const void *p) {
  uint64_t x = (uint64_t)(uintptr_t)p;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return (size_t)x;
}

void *ing_pmap_get(const ing_pmap *m, const void *key) {
  if (!m->cap) {
    return NULL;
  }
  size_t mask = m->cap - 1;
  for (size_t i = ing_ptr_hash(key) & mask;; i = (i + 1) & mask) {
    if (m->keys[i] == key) {
      return m->vals[i];
    }
    if (!m->keys[i]) {
      return NULL;
    }
  }
}

static rt_err ing_pmap_grow(ing_pmap *m) {
  size_t ncap = m->cap ? m->cap * 2 : 8;
  const void **nk = rt_calloc(ncap, sizeof *nk);
  void **nv = rt_calloc(ncap, sizeof *nv);
  if (!nk || !nv) {
    rt_free(nk, ncap * sizeof *nk);
    rt_free(nv, ncap * sizeof *nv);
    return RT_ENOMEM;
  }
  for (size_t i = 0; i < m->cap; i++) {
    if (m->keys[i]) {
      size_t j = ing_ptr_hash(m->keys[i]) & (ncap - 1);
      while (nk[j]) {
        j = (j + 1) & (ncap - 1);
      }
      nk[j] = m->keys[i];
      nv[j] = m->vals[i];
    }
  }
  rt_free(m->keys, m->cap * sizeof *m->keys);
  rt_free(m->vals, m->cap * sizeof *m->vals);
  m->keys = nk;
  m->vals = nv;
  m->cap = ncap;
  return RT_OK;
}

rt_err ing_pmap_put(ing_pmap *m, const void *key, void *val) {
  if ((m->n + 1) * 4 > m->cap * 3) {
    rt_err err = ing_pmap_grow(m);
    if (err) {
      return err;
    }
  }
  size_t mask = m->cap - 1;
  size_t i = ing_ptr_hash(key) & mask;
  while (m->keys[i] && m->keys[i] != key) {
    i = (i + 1) & mask;
  }
  if (!m->keys[i]) {
    m->n++;
  }
  m->keys[i] = key;
  m->vals[i] = val;
  return RT_OK;
}

/* Linear probing: after removing slot i, later entries of the same run move back so that no
 * lookup stops early at the hole. */
#define ING_BACKSHIFT(slots, cap, i, hashof, empty)                                                \
  do {                                                                                             \
    size_t mask_ = (cap) - 1, i_ = (i), j_ = (i);                                                  \
    for (;;) {                                                                                     \
      j_ = (j_ + 1) & mask_;                                                                       \
      if (empty(j_)) {                                                                             \
        break;                                                                                     \
      }                                                                                            \
      size_t k_ = (hashof(j_)) & mask_;                                                            \
      /* the entry at j_ may stay when its home k_ lies cyclically in (i_, j_] */                  \
      bool stays_ = i_ <= j_ ? (i_ < k_ && k_ <= j_) : (i_ < k_ || k_ <= j_);                      \
      if (!stays_) {                                                                               \
        ING_BS_MOVE(i_, j_);                                                                       \
        i_ = j_;                                                                                   \
      }                                                                                            \
    }                                                                                              \
    ING_BS_CLEAR(i_);                                                                              \
  } while (0)

void ing_pmap_del(ing_pmap *m, const void *key) {
  if (!m->cap) {
    return;
  }
  size_t mask = m->cap - 1, i = ing_ptr_hash(key) & mask;
  while (m->keys[i] != key) {
    if (!m->keys[i]) {
      return;
    }
    i = (i + 1) & mask;
  }
#define EMPTY(j) (!m->keys[j])
#define HASHOF(j) ing_ptr_hash(m->keys[j])
#define ING_BS_MOVE(a, b) (m->keys[a] = m->keys[b], m->vals[a] = m->vals[b])
#define ING_BS_CLEAR(a) (m->keys[a] = NULL, m->vals[a] = NULL)
  ING_BACKSHIFT(m->keys, m->cap, i, HASHOF, EMPTY);
#undef EMPTY
#undef HASHOF
#undef ING_BS_MOVE
#undef ING_BS_CLEAR
  m->n--;
}

void ing_pmap_fini(ing_pmap *m) {
  rt_free(m->keys, m->cap * sizeof *m->keys);
  rt_free(m->vals, m->cap * sizeof *m->vals);
  memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------ interning */

/* An interned string: its references and length before the bytes. */
typedef struct ing_istr {
  uint32_t refs;
  uint32_t len;
  char s[];
} ing_istr;

static ing_istr *ing_istr_of(const char *s) { return (ing_istr *)(uintptr_t)(s - offsetof(ing_istr, s)); }

static size_t ing_str_hash(const char *s, size_t len) { return (size_t)XXH3_64bits(s, len); }

static size_t ing_intern_slot(const ing_intern *in, const char *s, size_t len) {
  size_t mask = in->cap - 1;
  for (size_t i = ing_str_hash(s, len) & mask;; i = (i + 1) & mask) {
    const char *c = in->slots[i];
    if (!c || (ing_istr_of(c)->len == len && memcmp(c, s, len) == 0)) {
      return i;
    }
  }
}

const char *ing_intern_find(const ing_intern *in, const char *s, size_t len) {
  return in->cap ? in->slots[ing_intern_slot(in, s, len)] : NULL;
}

const char *ing_intern_str(ing_intern *in, const char *s, size_t len) {
  const char *f = ing_intern_find(in, s, len);
  if (f) {
    ing_istr_of(f)->refs++;
    return f;
  }
  if (len > UINT32_MAX - 1) {
    return NULL;
  }
  if ((in->n + 1) * 2 > in->cap) {
    size_t ncap = in->cap ? in->cap * 2 : 256;
    const char **ns = rt_calloc(ncap, sizeof *ns);
    if (!ns) {
      return NULL;
    }
    for (size_t i = 0; i < in->cap; i++) {
      if (in->slots[i]) {
        size_t j = ing_str_hash(in->slots[i], ing_istr_of(in->slots[i])->len) & (ncap - 1);
        while (ns[j]) {
          j = (j + 1) & (ncap - 1);
        }
        ns[j] = in->slots[i];
      }
    }
    rt_free(in->slots, in->cap * sizeof *in->slots);
    in->slots = ns;
    in->cap = ncap;
  }
  ing_istr *c = rt_alloc(sizeof *c + len + 1);
  if (!c) {
    return NULL;
  }
  c->refs = 1;
  c->len = (uint32_t)len;
  memcpy(c->s, s, len);
  c->s[len] = 0;
  in->slots[ing_intern_slot(in, s, len)] = c->s;
  in->n++;
  return c->s;
}

void ing_intern_release(ing_intern *in, const char *s) {
  ing_istr *c = ing_istr_of(s);
  if (--c->refs > 0) {
    return;
  }
  size_t i = ing_intern_slot(in, s, c->len);
#define EMPTY(j) (!in->slots[j])
#define HASHOF(j) ing_str_hash(in->slots[j], ing_istr_of(in->slots[j])->len)
#define ING_BS_MOVE(a, b) (in->slots[a] = in->slots[b])
#define ING_BS_CLEAR(a) (in->slots[a] = NULL)
  ING_BACKSHIFT(in->slots, in->cap, i, HASHOF, EMPTY);
#undef EMPTY
#undef HASHOF
#undef ING_BS_MOVE
#undef ING_BS_CLEAR
  in->n--;
  rt_free(c, sizeof *c + c->len + 1);
}

void ing_intern_fini(ing_intern *in) {
  for (size_t i = 0; i < in->cap; i++) {
    if (in->slots[i]) {
      ing_istr *c = ing_istr_of(in->slots[i]);
      rt_free(c, sizeof *c + c->len + 1);
    }
  }
  rt_free(in->slots, in->cap * sizeof *in->slots);
  memset(in, 0, sizeof *in);
}

/* ------------------------------------------------------------------ tenant */

rt_err ing_tenant_create(const char *name, uint32_t id, ing_tenant **out) {
  *out = NULL;
  ing_tenant *t = rt_calloc(1, sizeof *t);
  if (!t) {
    return RT_ENOMEM;
  }
  t->name = rt_strdup(name);
  t->nslots = 1024;
  t->slots = rt_calloc(t->nslots, sizeof *t->slots);
  t->refs_cap = 1024;
  t->refs = rt_calloc(t->refs_cap, sizeof *t->refs);
  if (!t->name || !t->slots || !t->refs) {
    rt_free(t->name, 0);
    rt_free(t->slots, t->nslots * sizeof *t->slots);
    rt_free(t->refs, t->refs_cap * sizeof *t->refs);
    rt_free(t, sizeof *t);
    return RT_ENOMEM;
  }
  t->id = id;
  t->max_t = t->disk_max_t = INT64_MIN;
  t->min_t = t->disk_min_t = INT64_MAX;
  t->ret_done = INT64_MIN;
  t->last_write_ns = rt_mono_ns();
  /* pushes (writers) must not starve behind a steady stream of selects (readers) */
  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init(&attr);
  pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&t->lock, &attr);
  pthread_rwlockattr_destroy(&attr);
  *out = t;
  return RT_OK;
}

static size_t ing_series_size(size_t nlabels) {
  return sizeof(ing_series) + (nlabels ? nlabels : 1) * sizeof(rt_label);
}

static void ing_series_free(ing_series *s) {
  rt_xor_appender_fini(&s->head);
  rt_free(s->ooo, s->ooo_cap * sizeof *s->ooo);
  rt_free(s, ing_series_size(s->nlabels));
}

void ing_tenant_destroy(ing_tenant *t) {
  if (!t) {
    return;
  }
  for (size_t i = 0; i < t->refs_cap; i++) {
    if (t->refs[i]) {
      ing_series_free(t->refs[i]);
    }
  }
  for (size_t i = 0; i < t->names.cap; i++) {
    ing_lname *ln = t->names.vals[i];
    if (!t->names.keys[i]) {
      continue;
    }
    for (size_t j = 0; j < ln->values.cap; j++) {
      ing_postings *p = ln->values.vals[j];
      if (ln->values.keys[j]) {
        rt_free(p->refs, p->cap * sizeof *p->refs);
        rt_free(p, sizeof *p);
      }
    }
    ing_pmap_fini(&ln->values);
    rt_free(ln, sizeof *ln);
  }
  ing_pmap_fini(&t->names);
  for (size_t i = 0; i < t->meta.cap; i++) {
    if (t->meta.keys[i]) {
      ing_meta *m = t->meta.vals[i];
      rt_free(m->help, 0);
      rt_free(m->unit, 0);
      rt_free(m, sizeof *m);
    }
  }
  ing_pmap_fini(&t->meta);
  ing_intern_fini(&t->strings);
  rt_free(t->slots, t->nslots * sizeof *t->slots);
  rt_free(t->refs, t->refs_cap * sizeof *t->refs);
  pthread_rwlock_destroy(&t->lock);
  rt_free(t->name, 0);
  rt_free(t, sizeof *t);
}

rt_err ing_series_keys(const char *tenant, const rt_label *ls, size_t n, rt_arena *arena,
                       ing_key *key, uint64_t *shard) {
  size_t tl = strlen(tenant), total = tl + 1;
  for (size_t i = 0; i < n; i++) {
    total += strlen(ls[i].name) + strlen(ls[i].value) + 2;
  }
  char stackbuf[2048];
  char *b = total <= sizeof stackbuf ? stackbuf : rt_arena_alloc(arena, total);
  if (!b) {
    return RT_ENOMEM;
  }
  char *p = b;
  memcpy(p, tenant, tl);
  p += tl;
  *p++ = (char)0xff;
  for (size_t i = 0; i < n; i++) {
    size_t nl = strlen(ls[i].name), vl = strlen(ls[i].value);
    memcpy(p, ls[i].name, nl);
    p += nl;
    *p++ = (char)0xff;
    memcpy(p, ls[i].value, vl);
    p += vl;
    *p++ = (char)0xff;
  }
  XXH128_hash_t h = XXH3_128bits(b, total);
  key->lo = h.low64;
  key->hi = h.high64;
  if (shard) {
    *shard = XXH3_64bits(b, total); /* == rt_series_hash(tenant, ls, n) */
  }
  return RT_OK;
}

ing_series *ing_series_find(ing_tenant *t, ing_key key) {
  size_t mask = t->nslots - 1;
  for (size_t i = key.lo & mask;; i = (i + 1) & mask) {
    const ing_slot *sl = &t->slots[i];
    if (!sl->s) {
      return NULL;
    }
    if (sl->lo == key.lo && sl->s->key_hi == key.hi) {
      return sl->s;
    }
  }
}

static void ing_slot_put(ing_slot *slots, size_t nslots, uint64_t lo, ing_series *s) {
  size_t mask = nslots - 1;
  size_t i = lo & mask;
  while (slots[i].s) {
    i = (i + 1) & mask;
  }
  slots[i].lo = lo;
  slots[i].s = s;
}

static rt_err ing_slots_grow(ing_tenant *t) {
  size_t ncap = t->nslots * 2;
  ing_slot *ns = rt_calloc(ncap, sizeof *ns);
  if (!ns) {
    return RT_ENOMEM;
  }
  for (size_t i = 0; i < t->nslots; i++) {
    if (t->slots[i].s) {
      ing_slot_put(ns, ncap, t->slots[i].lo, t->slots[i].s);
    }
  }
  rt_free(t->slots, t->nslots * sizeof *t->slots);
  t->slots = ns;
  t->nslots = ncap;
  return RT_OK;
}

static void ing_slot_del(ing_tenant *t, const ing_series *s, uint64_t lo) {
  size_t mask = t->nslots - 1, i = lo & mask;
  while (t->slots[i].s != s) {
    i = (i + 1) & mask;
  }
#define EMPTY(j) (!t->slots[j].s)
#define HASHOF(j) t->slots[j].lo
#define ING_BS_MOVE(a, b) (t->slots[a] = t->slots[b])
#define ING_BS_CLEAR(a) (t->slots[a] = (ing_slot){0, NULL})
  ING_BACKSHIFT(t->slots, t->nslots, i, HASHOF, EMPTY);
#undef EMPTY
#undef HASHOF
#undef ING_BS_MOVE
#undef ING_BS_CLEAR
}

/* ------------------------------------------------------------------ series by ref */

/* Refs are dense: `ref & mask` would make one long run of them, and removing one would shift
 * the whole run back. A multiplicative hash scatters them into short runs. */
static size_t ing_ref_home(uint32_t ref) { return (size_t)((ref * 0x9E3779B97F4A7C15ull) >> 32); }

ing_series *ing_series_by_ref(const ing_tenant *t, uint32_t ref) {
  size_t mask = t->refs_cap - 1;
  for (size_t i = ing_ref_home(ref) & mask;; i = (i + 1) & mask) {
    ing_series *s = t->refs[i];
    if (!s || s->ref == ref) {
      return s;
    }
  }
}

static void ing_ref_put(ing_series **refs, size_t cap, ing_series *s) {
  size_t mask = cap - 1, i = ing_ref_home(s->ref) & mask;
  while (refs[i]) {
    i = (i + 1) & mask;
  }
  refs[i] = s;
}

static rt_err ing_refs_reserve(ing_tenant *t) {
  if ((t->nseries + 1) * 2 <= t->refs_cap) {
    return RT_OK;
  }
  size_t ncap = t->refs_cap * 2;
  ing_series **nr = rt_calloc(ncap, sizeof *nr);
  if (!nr) {
    return RT_ENOMEM;
  }
  for (size_t i = 0; i < t->refs_cap; i++) {
    if (t->refs[i]) {
      ing_ref_put(nr, ncap, t->refs[i]);
    }
  }
  rt_free(t->refs, t->refs_cap * sizeof *t->refs);
  t->refs = nr;
  t->refs_cap = ncap;
  t->refs_gen++;
  return RT_OK;
}

static void ing_ref_del(ing_tenant *t, const ing_series *s) {
  size_t mask = t->refs_cap - 1, i = ing_ref_home(s->ref) & mask;
  while (t->refs[i] != s) {
    i = (i + 1) & mask;
  }
#define EMPTY(j) (!t->refs[j])
#define HASHOF(j) ing_ref_home(t->refs[j]->ref)
#define ING_BS_MOVE(a, b) (t->refs[a] = t->refs[b])
#define ING_BS_CLEAR(a) (t->refs[a] = NULL)
  ING_BACKSHIFT(t->refs, t->refs_cap, i, HASHOF, EMPTY);
#undef EMPTY
#undef HASHOF
#undef ING_BS_MOVE
#undef ING_BS_CLEAR
}

/* ------------------------------------------------------------------ postings */

static rt_err ing_postings_add(ing_tenant *t, const char *name, const char *value, uint32_t ref) {
  ing_lname *ln = ing_pmap_get(&t->names, name);
  if (!ln) {
    ln = rt_calloc(1, sizeof *ln);
    if (!ln) {
      return RT_ENOMEM;
    }
    ln->name = name;
    if (ing_pmap_put(&t->names, name, ln)) {
      rt_free(ln, sizeof *ln);
      return RT_ENOMEM;
    }
  }
  ing_postings *p = ing_pmap_get(&ln->values, value);
  if (!p) {
    p = rt_calloc(1, sizeof *p);
    if (!p) {
      return RT_ENOMEM;
    }
    p->value = value;
    if (ing_pmap_put(&ln->values, value, p)) {
      rt_free(p, sizeof *p);
      return RT_ENOMEM;
    }
  }
  if (p->n == p->cap) {
    uint32_t ncap = p->cap ? p->cap * 2 : 2;
    uint32_t *nr = rt_realloc(p->refs, p->cap * sizeof *nr, ncap * sizeof *nr);
    if (!nr) {
      return RT_ENOMEM;
    }
    p->refs = nr;
    p->cap = ncap;
  }
  /* refs arrive in increasing order except during recovery of out-of-order keys */
  uint32_t i = p->n;
  while (i > 0 && p->refs[i - 1] > ref) {
    p->refs[i] = p->refs[i - 1];
    i--;
  }
  p->refs[i] = ref;
  p->n++;
  return RT_OK;
}

/* Removes ref from the postings of name=value, and the list, and the name, once empty (also
 * what a failed ing_postings_add left). */
static void ing_postings_del(ing_tenant *t, const char *name, const char *value, uint32_t ref) {
  ing_lname *ln = ing_pmap_get(&t->names, name);
  ing_postings *p = ln ? ing_pmap_get(&ln->values, value) : NULL;
  if (p) {
    uint32_t lo = 0, hi = p->n;
    while (lo < hi) {
      uint32_t mid = (lo + hi) / 2;
      if (p->refs[mid] < ref) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    if (lo < p->n && p->refs[lo] == ref) {
      memmove(p->refs + lo, p->refs + lo + 1, (p->n - lo - 1) * sizeof *p->refs);
      p->n--;
    }
    if (p->n == 0) {
      ing_pmap_del(&ln->values, value);
      rt_free(p->refs, p->cap * sizeof *p->refs);
      rt_free(p, sizeof *p);
    }
  }
  if (ln && ln->values.n == 0) {
    ing_pmap_del(&t->names, name);
    ing_pmap_fini(&ln->values);
    rt_free(ln, sizeof *ln);
  }
}

/* ------------------------------------------------------------------ add / remove */

/* Undoes the first `nidx` postings and the interned labels of a series being added or removed. */
static void ing_series_unindex(ing_tenant *t, const rt_label *ls, size_t nlabels, size_t nidx,
                               uint32_t ref) {
  for (size_t i = 0; i < nidx; i++) {
    ing_postings_del(t, ls[i].name, ls[i].value, ref);
  }
  for (size_t i = 0; i < nlabels; i++) {
    ing_intern_release(&t->strings, ls[i].name);
    ing_intern_release(&t->strings, ls[i].value);
  }
}

rt_err ing_series_add(ing_tenant *t, ing_key key, uint64_t hash, const rt_label *labels, size_t n,
                      uint32_t ref, ing_series **out) {
  *out = NULL;
  if (n > UINT16_MAX) {
    return RT_ELIMIT;
  }
  if (ref == 0) {
    ref = t->max_ref + 1;
  }
  if (ref == UINT32_MAX) {
    return RT_ELIMIT;
  }
  if ((t->nseries + 2) * 2 > t->nslots && ing_slots_grow(t)) {
    return RT_ENOMEM;
  }
  if (ing_refs_reserve(t)) {
    return RT_ENOMEM;
  }
  ing_series *s = rt_alloc(ing_series_size(n));
  if (!s) {
    return RT_ENOMEM;
  }
  memset(s, 0, sizeof *s);
  rt_label *ls = (rt_label *)(s + 1);
  size_t nint = 0;
  for (; nint < n; nint++) {
    ls[nint].name = ing_intern_str(&t->strings, labels[nint].name, strlen(labels[nint].name));
    ls[nint].value = ls[nint].name ? ing_intern_str(&t->strings, labels[nint].value,
                                                    strlen(labels[nint].value))
                                   : NULL;
    if (!ls[nint].value) {
      if (ls[nint].name) {
        ing_intern_release(&t->strings, ls[nint].name);
      }
      break;
    }
  }
  size_t nidx = 0;
  rt_err err = nint == n ? RT_OK : RT_ENOMEM;
  for (; !err && nidx < n; nidx++) {
    err = ing_postings_add(t, ls[nidx].name, ls[nidx].value, ref);
  }
  if (err) {
    ing_series_unindex(t, ls, nint, nidx, ref);
    rt_free(s, ing_series_size(n));
    return err;
  }
  s->hash = hash;
  s->key_hi = key.hi;
  s->key_lo = key.lo;
  s->labels = ls;
  s->nlabels = (uint16_t)n;
  s->ref = ref;
  rt_xor_appender_init(&s->head);
  s->first_t = s->flushed_first_t = INT64_MAX;
  s->last_t = s->flushed_last_t = INT64_MIN;
  ing_slot_put(t->slots, t->nslots, key.lo, s);
  ing_ref_put(t->refs, t->refs_cap, s);
  t->nseries++;
  if (ref > t->max_ref) {
    t->max_ref = ref;
  }
  *out = s;
  return RT_OK;
}

void ing_series_remove(ing_tenant *t, ing_series *s) {
  ing_slot_del(t, s, s->key_lo);
  ing_ref_del(t, s);
  ing_series_unindex(t, s->labels, s->nlabels, s->nlabels, s->ref);
  t->nseries--;
  ing_series_free(s);
}

/* ------------------------------------------------------------------ matching */

int ing_u32_cmp(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

/* Union of the postings of every value of `ln` for which matches(value) == want. */
static rt_err ing_union(ing_tenant *t, const ing_lname *ln, const rt_matcher *m, bool want,
                        rt_arena *arena, uint32_t **out, size_t *nout) {
  *out = NULL;
  *nout = 0;
  if (!ln) {
    return RT_OK;
  }
  /* fast path: one value decides (=, a literal =~, and the excluded value of != / !~) */
  bool single = (want && (m->type == RT_MATCH_EQ || (m->type == RT_MATCH_RE && m->re_kind == 1))) ||
                (!want && (m->type == RT_MATCH_NEQ || (m->type == RT_MATCH_NRE && m->re_kind == 1)));
  if (single) {
    const char *v = ing_intern_find(&t->strings, m->value, strlen(m->value));
    const ing_postings *p = v ? ing_pmap_get(&ln->values, v) : NULL;
    if (!p || p->n == 0) {
      return RT_OK;
    }
    uint32_t *r = rt_arena_alloc(arena, p->n * sizeof *r);
    if (!r) {
      return RT_ENOMEM;
    }
    memcpy(r, p->refs, p->n * sizeof *r);
    *out = r;
    *nout = p->n;
    return RT_OK;
  }
  size_t total = 0, nlists = 0;
  const ing_postings *one = NULL;
  for (size_t i = 0; i < ln->values.cap; i++) {
    if (!ln->values.keys[i]) {
      continue;
    }
    const ing_postings *p = ln->values.vals[i];
    if (rt_matcher_matches(m, p->value) == want) {
      total += p->n;
      nlists++;
      one = p;
    }
  }
  if (total == 0) {
    return RT_OK;
  }
  uint32_t *r = rt_arena_alloc(arena, total * sizeof *r);
  if (!r) {
    return RT_ENOMEM;
  }
  if (nlists == 1) {
    memcpy(r, one->refs, total * sizeof *r);
    *out = r;
    *nout = total;
    return RT_OK;
  }
  size_t k = 0;
  for (size_t i = 0; i < ln->values.cap; i++) {
    if (!ln->values.keys[i]) {
      continue;
    }
    const ing_postings *p = ln->values.vals[i];
    if (rt_matcher_matches(m, p->value) == want) {
      memcpy(r + k, p->refs, p->n * sizeof *r);
      k += p->n;
    }
  }
  *out = r;
  *nout = ing_refs_sort_unique(r, k);
  return RT_OK;
}

size_t ing_refs_sort_unique(uint32_t *r, size_t n) {
  if (n > 1) {
    qsort(r, n, sizeof *r, ing_u32_cmp);
  }
  size_t w = 0;
  for (size_t i = 0; i < n; i++) {
    if (w == 0 || r[w - 1] != r[i]) {
      r[w++] = r[i];
    }
  }
  return w;
}

size_t ing_intersect(uint32_t *a, size_t an, const uint32_t *b, size_t bn) {
  size_t i = 0, j = 0, w = 0;
  while (i < an && j < bn) {
    if (a[i] < b[j]) {
      i++;
    } else if (a[i] > b[j]) {
      j++;
    } else {
      a[w++] = a[i];
      i++;
      j++;
    }
  }
  return w;
}

size_t ing_subtract(uint32_t *a, size_t an, const uint32_t *b, size_t bn) {
  size_t i = 0, j = 0, w = 0;
  while (i < an) {
    while (j < bn && b[j] < a[i]) {
      j++;
    }
    if (j < bn && b[j] == a[i]) {
      i++;
      continue;
    }
    a[w++] = a[i++];
  }
  return w;
}

rt_err ing_head_postings(ing_tenant *t, const rt_matcher *ms, size_t nms, rt_arena *arena,
                         uint32_t **out, size_t *nout) {
  *out = NULL;
  *nout = 0;
  uint32_t *cur = NULL;
  size_t ncur = 0;
  bool have = false;
  /* positive matchers (not matching "") first: they bound the result */
  for (size_t i = 0; i < nms; i++) {
    const rt_matcher *m = &ms[i];
    if (rt_matcher_matches_empty(m)) {
      continue;
    }
    const char *name = ing_intern_find(&t->strings, m->name, strlen(m->name));
    const ing_lname *ln = name ? ing_pmap_get(&t->names, name) : NULL;
    uint32_t *r;
    size_t nr;
    rt_err err = ing_union(t, ln, m, true, arena, &r, &nr);
    if (err) {
      return err;
    }
    if (!have) {
      cur = r;
      ncur = nr;
      have = true;
    } else {
      ncur = ing_intersect(cur, ncur, r, nr);
    }
    if (ncur == 0) {
      return RT_OK;
    }
  }
  if (!have) {
    /* every matcher matches "": start from all series */
    cur = rt_arena_alloc(arena, (t->nseries ? t->nseries : 1) * sizeof *cur);
    if (!cur) {
      return RT_ENOMEM;
    }
    for (size_t i = 0; i < t->refs_cap; i++) {
      if (t->refs[i]) {
        cur[ncur++] = t->refs[i]->ref;
      }
    }
    qsort(cur, ncur, sizeof *cur, ing_u32_cmp);
  }
  /* matchers that match "": remove the series whose value does not match (series lacking the
   * label have value "" and stay) */
  for (size_t i = 0; i < nms && ncur > 0; i++) {
    const rt_matcher *m = &ms[i];
    if (!rt_matcher_matches_empty(m)) {
      continue;
    }
    const char *name = ing_intern_find(&t->strings, m->name, strlen(m->name));
    const ing_lname *ln = name ? ing_pmap_get(&t->names, name) : NULL;
    uint32_t *r;
    size_t nr;
    rt_err err = ing_union(t, ln, m, false, arena, &r, &nr);
    if (err) {
      return err;
    }
    ncur = ing_subtract(cur, ncur, r, nr);
  }
  *out = cur;
  *nout = ncur;
  return RT_OK;
}

/* ------------------------------------------------------------------ formatting */

void ing_labels_format(const rt_label *l, size_t n, char *buf, size_t cap) {
  size_t k = 0;
#define PUT(c)                                                                                     \
  do {                                                                                             \
    if (k + 1 < cap) {                                                                             \
      buf[k++] = (c);                                                                              \
    }                                                                                              \
  } while (0)
  PUT('{');
  for (size_t i = 0; i < n; i++) {
    if (i) {
      PUT(',');
      PUT(' ');
    }
    for (const char *p = l[i].name; *p; p++) {
      PUT(*p);
    }
    PUT('=');
    PUT('"');
    for (const char *p = l[i].value; *p; p++) {
      if (*p == '"' || *p == '\\') {
        PUT('\\');
        PUT(*p);
      } else if (*p == '\n') {
        PUT('\\');
        PUT('n');
      } else {
        PUT(*p);
      }
    }
    PUT('"');
  }
  PUT('}');
#undef PUT
  if (cap) {
    buf[k < cap ? k : cap - 1] = 0;
  }
}
