/* ing_head.c - the in-memory head of one tenant: interned strings, series table, inverted index
 * and matcher evaluation. Callers hold the tenant's rwlock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "ingester/ing_int.h"

/* ------------------------------------------------------------------ slab */

typedef struct ing_slab_block {
  struct ing_slab_block *next;
  size_t size, used;
  _Alignas(16) unsigned char data[];
} ing_slab_block;

#define ING_SLAB_BLOCK (256 * 1024)

void *ing_slab_alloc(ing_slab *s, size_t n) {
  n = (n + 7) & ~(size_t)7;
  ing_slab_block *b = s->blocks;
  if (!b || b->size - b->used < n) {
    size_t sz = n > ING_SLAB_BLOCK / 4 ? n : ING_SLAB_BLOCK;
    ing_slab_block *nb = rt_alloc(sizeof *nb + sz);
    if (!nb) {
      return NULL;
    }
    nb->size = sz;
    nb->used = 0;
    if (b && sz != ING_SLAB_BLOCK) {
      nb->next = b->next; /* oversize: keep filling the current block */
      b->next = nb;
    } else {
      nb->next = b;
      s->blocks = nb;
    }
    s->bytes += sizeof *nb + sz;
    b = nb;
  }
  void *p = b->data + b->used;
  b->used += n;
  return p;
}

void ing_slab_free_all(ing_slab *s) {
  ing_slab_block *b = s->blocks;
  while (b) {
    ing_slab_block *n = b->next;
    rt_free(b, sizeof *b + b->size);
    b = n;
  }
  s->blocks = NULL;
  s->bytes = 0;
}

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

void ing_pmap_fini(ing_pmap *m) {
  rt_free(m->keys, m->cap * sizeof *m->keys);
  rt_free(m->vals, m->cap * sizeof *m->vals);
  memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------ interning */

static size_t ing_str_hash(const char *s, size_t len) { return (size_t)XXH3_64bits(s, len); }

const char *ing_intern_find(const ing_intern *in, const char *s, size_t len) {
  if (!in->cap) {
    return NULL;
  }
  size_t mask = in->cap - 1;
  for (size_t i = ing_str_hash(s, len) & mask;; i = (i + 1) & mask) {
    const char *c = in->slots[i];
    if (!c) {
      return NULL;
    }
    if (strncmp(c, s, len) == 0 && c[len] == 0) {
      return c;
    }
  }
}

const char *ing_intern_str(ing_intern *in, ing_slab *slab, const char *s, size_t len) {
  const char *f = ing_intern_find(in, s, len);
  if (f) {
    return f;
  }
  if ((in->n + 1) * 2 > in->cap) {
    size_t ncap = in->cap ? in->cap * 2 : 256;
    const char **ns = rt_calloc(ncap, sizeof *ns);
    if (!ns) {
      return NULL;
    }
    for (size_t i = 0; i < in->cap; i++) {
      if (in->slots[i]) {
        size_t j = ing_str_hash(in->slots[i], strlen(in->slots[i])) & (ncap - 1);
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
  char *c = ing_slab_alloc(slab, len + 1);
  if (!c) {
    return NULL;
  }
  memcpy(c, s, len);
  c[len] = 0;
  size_t mask = in->cap - 1;
  size_t i = ing_str_hash(s, len) & mask;
  while (in->slots[i]) {
    i = (i + 1) & mask;
  }
  in->slots[i] = c;
  in->n++;
  return c;
}

void ing_intern_fini(ing_intern *in) {
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
  if (!t->name || !t->slots) {
    rt_free(t->name, 0);
    rt_free(t->slots, t->nslots * sizeof *t->slots);
    rt_free(t, sizeof *t);
    return RT_ENOMEM;
  }
  t->id = id;
  t->max_t = INT64_MIN;
  t->min_t = INT64_MAX;
  /* pushes (writers) must not starve behind a steady stream of selects (readers) */
  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init(&attr);
  pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&t->lock, &attr);
  pthread_rwlockattr_destroy(&attr);
  *out = t;
  return RT_OK;
}

void ing_tenant_destroy(ing_tenant *t) {
  if (!t) {
    return;
  }
  for (uint32_t r = 1; r <= t->nseries; r++) {
    ing_series *s = t->by_ref[r];
    rt_xor_appender_fini(&s->head);
    rt_free(s->ooo, s->ooo_cap * sizeof *s->ooo);
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
      }
    }
    ing_pmap_fini(&ln->values);
  }
  ing_pmap_fini(&t->names);
  for (size_t i = 0; i < t->meta.cap; i++) {
    if (t->meta.keys[i]) {
      ing_meta *m = t->meta.vals[i];
      rt_free(m->help, 0);
      rt_free(m->unit, 0);
    }
  }
  ing_pmap_fini(&t->meta);
  ing_intern_fini(&t->strings);
  ing_slab_free_all(&t->slab);
  rt_free(t->slots, t->nslots * sizeof *t->slots);
  rt_free(t->by_ref, t->by_ref_cap * sizeof *t->by_ref);
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

static rt_err ing_postings_add(ing_tenant *t, const char *name, const char *value, uint32_t ref) {
  ing_lname *ln = ing_pmap_get(&t->names, name);
  if (!ln) {
    ln = ing_slab_alloc(&t->slab, sizeof *ln);
    if (!ln) {
      return RT_ENOMEM;
    }
    memset(ln, 0, sizeof *ln);
    ln->name = name;
    if (ing_pmap_put(&t->names, name, ln)) {
      return RT_ENOMEM;
    }
  }
  ing_postings *p = ing_pmap_get(&ln->values, value);
  if (!p) {
    p = ing_slab_alloc(&t->slab, sizeof *p);
    if (!p) {
      return RT_ENOMEM;
    }
    memset(p, 0, sizeof *p);
    p->value = value;
    if (ing_pmap_put(&ln->values, value, p)) {
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

rt_err ing_series_add(ing_tenant *t, ing_key key, uint64_t hash, const rt_label *labels, size_t n,
                      uint32_t ref, ing_series **out) {
  *out = NULL;
  if ((t->nseries + 2) * 2 > t->nslots && ing_slots_grow(t)) {
    return RT_ENOMEM;
  }
  if (n > UINT16_MAX) {
    return RT_ELIMIT;
  }
  if (ref == 0) {
    ref = t->nseries + 1;
  }
  if (ref == UINT32_MAX) {
    return RT_ELIMIT;
  }
  if (ref >= t->by_ref_cap) {
    size_t ncap = t->by_ref_cap ? t->by_ref_cap : 1024;
    while (ncap <= ref) {
      ncap *= 2;
    }
    ing_series **nb = rt_realloc(t->by_ref, t->by_ref_cap * sizeof *nb, ncap * sizeof *nb);
    if (!nb) {
      return RT_ENOMEM;
    }
    memset(nb + t->by_ref_cap, 0, (ncap - t->by_ref_cap) * sizeof *nb);
    t->by_ref = nb;
    t->by_ref_cap = ncap;
  }
  ing_series *s = ing_slab_alloc(&t->slab, sizeof *s);
  rt_label *ls = ing_slab_alloc(&t->slab, (n ? n : 1) * sizeof *ls);
  if (!s || !ls) {
    return RT_ENOMEM;
  }
  memset(s, 0, sizeof *s);
  for (size_t i = 0; i < n; i++) {
    ls[i].name = ing_intern_str(&t->strings, &t->slab, labels[i].name, strlen(labels[i].name));
    ls[i].value = ing_intern_str(&t->strings, &t->slab, labels[i].value, strlen(labels[i].value));
    if (!ls[i].name || !ls[i].value) {
      return RT_ENOMEM;
    }
  }
  /* index first: on OOM the series is not reachable and its slab memory is simply unused */
  for (size_t i = 0; i < n; i++) {
    rt_err err = ing_postings_add(t, ls[i].name, ls[i].value, ref);
    if (err) {
      return err; /* the postings added so far point at a ref with no series: skipped on read */
    }
  }
  s->hash = hash;
  s->key_hi = key.hi;
  s->labels = ls;
  s->nlabels = (uint16_t)n;
  s->ref = ref;
  rt_xor_appender_init(&s->head);
  s->first_t = s->flushed_first_t = INT64_MAX;
  s->last_t = s->flushed_last_t = INT64_MIN;
  ing_slot_put(t->slots, t->nslots, key.lo, s);
  t->by_ref[ref] = s;
  if (ref > t->nseries) {
    t->nseries = ref;
  }
  *out = s;
  return RT_OK;
}

/* ------------------------------------------------------------------ matching */

static int ing_u32_cmp(const void *a, const void *b) {
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
  qsort(r, k, sizeof *r, ing_u32_cmp);
  size_t w = 0;
  for (size_t i = 0; i < k; i++) {
    if (w == 0 || r[w - 1] != r[i]) {
      r[w++] = r[i];
    }
  }
  *out = r;
  *nout = w;
  return RT_OK;
}

static size_t ing_intersect(uint32_t *a, size_t an, const uint32_t *b, size_t bn) {
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

static size_t ing_subtract(uint32_t *a, size_t an, const uint32_t *b, size_t bn) {
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
    for (uint32_t r = 1; r <= t->nseries; r++) {
      cur[ncur++] = r;
    }
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
  /* drop refs that never became series (an index insert that failed half-way) */
  size_t w = 0;
  for (size_t i = 0; i < ncur; i++) {
    if (cur[i] <= t->nseries && t->by_ref[cur[i]]) {
      cur[w++] = cur[i];
    }
  }
  *out = cur;
  *nout = w;
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
