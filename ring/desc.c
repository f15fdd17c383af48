/* desc.c - the ring descriptor: a set of instance entries sorted by id, the merge rule and the
 * wire form (proto/ring.proto). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/labels.h"
#include "ring.pb-c.h"
#include "ring/ring_int.h"

const char *ring_state_name(ring_state s) {
  switch (s) {
  case RING_JOINING: return "JOINING";
  case RING_ACTIVE: return "ACTIVE";
  case RING_LEAVING: return "LEAVING";
  case RING_LEFT: return "LEFT";
  }
  return "UNKNOWN";
}

bool ring_state_parse(const char *s, ring_state *out) {
  static const ring_state all[] = {RING_JOINING, RING_ACTIVE, RING_LEAVING};
  for (size_t i = 0; i < RT_ARRAY_LEN(all); i++) {
    if (strcasecmp(s, ring_state_name(all[i])) == 0) {
      *out = all[i];
      return true;
    }
  }
  return false;
}

bool ring_role_is_ingester(const char *role) {
  return !role || !role[0] || strcmp(role, RING_ROLE_INGESTER) == 0;
}

rt_err ring_desc_create(ring_desc **out) {
  *out = rt_calloc(1, sizeof(ring_desc));
  return *out ? RT_OK : RT_ENOMEM;
}

static void ring_entry_fini(ring_entry *e) {
  rt_free(e->id, 0);
  rt_free(e->zone, 0);
  rt_free(e->http_addr, 0);
  rt_free(e->rpc_addr, 0);
  rt_free(e->gossip_addr, 0);
  rt_free(e->role, 0);
  rt_free(e->tokens, (size_t)e->ntokens * sizeof(uint32_t));
  memset(e, 0, sizeof *e);
}

void ring_desc_destroy(ring_desc *d) {
  if (!d) {
    return;
  }
  for (size_t i = 0; i < d->n; i++) {
    ring_entry_fini(&d->v[i]);
  }
  rt_free(d->v, d->cap * sizeof(ring_entry));
  rt_free(d, sizeof *d);
}

size_t ring_desc_count(const ring_desc *d) { return d->n; }

void ring_entry_view(const ring_entry *e, ring_instance *out) {
  memset(out, 0, sizeof *out);
  out->id = e->id;
  out->zone = e->zone;
  out->http_addr = e->http_addr;
  out->rpc_addr = e->rpc_addr;
  out->gossip_addr = e->gossip_addr;
  out->state = e->state;
  out->heartbeat_ms = e->heartbeat_ms;
  out->registered_ms = e->registered_ms;
  out->tokens = e->tokens;
  out->ntokens = e->ntokens;
  out->role = e->role;
}

/* Index of id, or -(insertion point) - 1. */
static long ring_desc_find(const ring_desc *d, const char *id) {
  size_t lo = 0, hi = d->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(d->v[mid].id, id);
    if (c == 0) {
      return (long)mid;
    }
    if (c < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return -(long)lo - 1;
}

/* Strings from peers end up in /ring JSON and HTML: bounded and valid UTF-8. */
static bool ring_str_ok(const char *s) {
  size_t n = s ? strlen(s) : 0;
  return s && n <= RING_MAX_STR && rt_utf8_valid(s, n);
}

static rt_err ring_instance_check(const ring_instance *inst) {
  if (!inst->id || !inst->id[0] || !ring_str_ok(inst->id)) {
    return RT_EINVAL;
  }
  if ((unsigned)inst->state > RING_LEFT) {
    return RT_EINVAL;
  }
  if (inst->ntokens > RING_MAX_TOKENS_PER_INSTANCE || (inst->ntokens && !inst->tokens)) {
    return RT_EINVAL;
  }
  for (uint32_t i = 1; i < inst->ntokens; i++) {
    if (inst->tokens[i] <= inst->tokens[i - 1]) {
      return RT_EINVAL;
    }
  }
  const char *strs[] = {inst->zone, inst->http_addr, inst->rpc_addr, inst->gossip_addr,
                        inst->role};
  for (size_t i = 0; i < RT_ARRAY_LEN(strs); i++) {
    if (strs[i] && !ring_str_ok(strs[i])) {
      return RT_EINVAL;
    }
  }
  return RT_OK;
}

/* Builds a full copy of inst in *e (which must be empty). */
static rt_err ring_entry_copy(ring_entry *e, const ring_instance *inst) {
  memset(e, 0, sizeof *e);
  e->id = rt_strdup(inst->id);
  e->zone = rt_strdup(inst->zone ? inst->zone : "");
  e->http_addr = rt_strdup(inst->http_addr ? inst->http_addr : "");
  e->rpc_addr = rt_strdup(inst->rpc_addr ? inst->rpc_addr : "");
  e->gossip_addr = rt_strdup(inst->gossip_addr ? inst->gossip_addr : "");
  e->role = rt_strdup(inst->role ? inst->role : "");
  e->state = inst->state;
  e->heartbeat_ms = inst->heartbeat_ms;
  e->registered_ms = inst->registered_ms;
  bool ok = e->id && e->zone && e->http_addr && e->rpc_addr && e->gossip_addr && e->role;
  /* only ingesters own tokens: a distributor's entry never places series */
  if (ok && inst->state != RING_LEFT && inst->ntokens && ring_role_is_ingester(inst->role)) {
    e->tokens = rt_alloc((size_t)inst->ntokens * sizeof(uint32_t));
    if (e->tokens) {
      memcpy(e->tokens, inst->tokens, (size_t)inst->ntokens * sizeof(uint32_t));
      e->ntokens = inst->ntokens;
    } else {
      ok = false;
    }
  }
  if (!ok) {
    ring_entry_fini(e);
    return RT_ENOMEM;
  }
  return RT_OK;
}

static rt_err ring_desc_put(ring_desc *d, long pos, const ring_instance *inst) {
  ring_entry e;
  rt_err err = ring_entry_copy(&e, inst);
  if (err != RT_OK) {
    return err;
  }
  if (pos >= 0) {
    ring_entry_fini(&d->v[pos]);
    d->v[pos] = e;
    return RT_OK;
  }
  size_t at = (size_t)(-pos - 1);
  if (d->n == d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 16;
    ring_entry *v = rt_realloc(d->v, d->cap * sizeof(ring_entry), cap * sizeof(ring_entry));
    if (!v) {
      ring_entry_fini(&e);
      return RT_ENOMEM;
    }
    d->v = v;
    d->cap = cap;
  }
  memmove(&d->v[at + 1], &d->v[at], (d->n - at) * sizeof(ring_entry));
  d->v[at] = e;
  d->n++;
  return RT_OK;
}

rt_err ring_desc_set(ring_desc *d, const ring_instance *inst) {
  rt_err err = ring_instance_check(inst);
  if (err != RT_OK) {
    return err;
  }
  return ring_desc_put(d, ring_desc_find(d, inst->id), inst);
}

/* The order that makes merging commutative: heartbeat first, then state. */
static int ring_entry_newer(const ring_instance *in, const ring_entry *have) {
  if (in->heartbeat_ms != have->heartbeat_ms) {
    return in->heartbeat_ms > have->heartbeat_ms ? 1 : -1;
  }
  if (in->state != have->state) {
    return in->state > have->state ? 1 : -1;
  }
  return 0;
}

rt_err ring_desc_merge_one(ring_desc *d, const ring_instance *inst, bool *changed) {
  if (changed) {
    *changed = false;
  }
  rt_err err = ring_instance_check(inst);
  if (err != RT_OK) {
    return err;
  }
  long pos = ring_desc_find(d, inst->id);
  if (pos >= 0 && ring_entry_newer(inst, &d->v[pos]) <= 0) {
    return RT_OK;
  }
  err = ring_desc_put(d, pos, inst);
  if (err == RT_OK && changed) {
    *changed = true;
  }
  return err;
}

rt_err ring_desc_merge(ring_desc *dst, const ring_desc *src, size_t *changed) {
  size_t n = 0;
  for (size_t i = 0; i < src->n; i++) {
    ring_instance v;
    ring_entry_view(&src->v[i], &v);
    bool c;
    rt_err err = ring_desc_merge_one(dst, &v, &c);
    if (err != RT_OK) {
      if (changed) {
        *changed = n;
      }
      return err;
    }
    n += c;
  }
  if (changed) {
    *changed = n;
  }
  return RT_OK;
}

rt_err ring_desc_forget(ring_desc *d, const char *id, int64_t now_ms) {
  long pos = ring_desc_find(d, id);
  if (pos < 0) {
    return RT_ENOTFOUND;
  }
  ring_entry *e = &d->v[pos];
  if (e->state == RING_LEFT) {
    return RT_OK;
  }
  e->state = RING_LEFT;
  e->heartbeat_ms = RT_MAX(now_ms, e->heartbeat_ms + 1);
  rt_free(e->tokens, (size_t)e->ntokens * sizeof(uint32_t));
  e->tokens = NULL;
  e->ntokens = 0;
  return RT_OK;
}

size_t ring_desc_gc(ring_desc *d, int64_t cutoff_ms) {
  size_t w = 0, gone = 0;
  for (size_t i = 0; i < d->n; i++) {
    if (d->v[i].state == RING_LEFT && d->v[i].heartbeat_ms < cutoff_ms) {
      ring_entry_fini(&d->v[i]);
      gone++;
      continue;
    }
    d->v[w++] = d->v[i];
  }
  d->n = w;
  return gone;
}

bool ring_desc_get(const ring_desc *d, const char *id, ring_instance *out) {
  long pos = ring_desc_find(d, id);
  if (pos < 0) {
    return false;
  }
  ring_entry_view(&d->v[pos], out);
  return true;
}

static int ring_u32_cmp(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

rt_err ring_desc_taken_tokens(const ring_desc *d, const char *except_id, uint32_t **out,
                              size_t *n) {
  *out = NULL;
  *n = 0;
  size_t total = 0;
  for (size_t i = 0; i < d->n; i++) {
    total += d->v[i].ntokens;
  }
  uint32_t *t = rt_alloc((total ? total : 1) * sizeof(uint32_t));
  if (!t) {
    return RT_ENOMEM;
  }
  size_t k = 0;
  for (size_t i = 0; i < d->n; i++) {
    if (except_id && strcmp(d->v[i].id, except_id) == 0) {
      continue;
    }
    if (d->v[i].ntokens) {
      memcpy(t + k, d->v[i].tokens, (size_t)d->v[i].ntokens * sizeof(uint32_t));
      k += d->v[i].ntokens;
    }
  }
  qsort(t, k, sizeof(uint32_t), ring_u32_cmp);
  *out = t;
  *n = k;
  return RT_OK;
}

/* ------------------------------------------------------------------ wire form */

rt_err ring_desc_encode(const ring_desc *d, const char *sender_addr, rt_buf *out) {
  Ringtail__RingState st = RINGTAIL__RING_STATE__INIT;
  Ringtail__InstanceDesc *descs = NULL;
  Ringtail__InstanceDesc **ptrs = NULL;
  if (d->n) {
    descs = rt_calloc(d->n, sizeof *descs);
    ptrs = rt_calloc(d->n, sizeof *ptrs);
    if (!descs || !ptrs) {
      rt_free(descs, 0);
      rt_free(ptrs, 0);
      return RT_ENOMEM;
    }
  }
  for (size_t i = 0; i < d->n; i++) {
    const ring_entry *e = &d->v[i];
    Ringtail__InstanceDesc *m = &descs[i];
    ringtail__instance_desc__init(m);
    m->id = e->id;
    m->zone = e->zone;
    m->http_addr = e->http_addr;
    m->rpc_addr = e->rpc_addr;
    m->gossip_addr = e->gossip_addr;
    m->state = (Ringtail__InstanceDesc__State)e->state;
    m->heartbeat_ms = e->heartbeat_ms;
    m->registered_ms = e->registered_ms;
    m->tokens = e->tokens;
    m->n_tokens = e->ntokens;
    m->role = e->role;
    ptrs[i] = m;
  }
  st.instances = ptrs;
  st.n_instances = d->n;
  st.sender_addr = (char *)(sender_addr ? sender_addr : "");
  size_t len = ringtail__ring_state__get_packed_size(&st);
  rt_buf_reserve(out, len);
  rt_err err = RT_OK;
  if (out->oom) {
    err = RT_ENOMEM;
  } else {
    ringtail__ring_state__pack(&st, (uint8_t *)out->data + out->len);
    out->len += len;
    out->data[out->len] = 0;
  }
  rt_free(descs, 0);
  rt_free(ptrs, 0);
  return err;
}


rt_err ring_desc_decode_merge(ring_desc *d, const uint8_t *data, size_t len, const char *self_id,
                              int64_t *self_seen, size_t *changed, char **sender_addr,
                              char *errbuf, size_t errlen) {
  if (self_seen) {
    *self_seen = -1;
  }
  if (changed) {
    *changed = 0;
  }
  if (sender_addr) {
    *sender_addr = NULL;
  }
  Ringtail__RingState *st = ringtail__ring_state__unpack(NULL, len, data);
  if (!st) {
    snprintf(errbuf, errlen, "malformed ring state (%zu bytes)", len);
    return RT_EPROTO;
  }
  rt_err err = RT_OK;
  /* validate everything before merging anything, so a bad message changes nothing */
  for (size_t i = 0; i < st->n_instances && err == RT_OK; i++) {
    const Ringtail__InstanceDesc *m = st->instances[i];
    const char *why = NULL;
    if (!m->id || !m->id[0]) {
      why = "empty instance id";
    } else if (!ring_str_ok(m->id) || !ring_str_ok(m->zone) || !ring_str_ok(m->http_addr) ||
               !ring_str_ok(m->rpc_addr) || !ring_str_ok(m->gossip_addr) ||
               !ring_str_ok(m->role)) {
      why = "string field too long or not UTF-8";
    } else if ((unsigned)m->state > RING_LEFT) {
      why = "unknown state";
    } else if (m->n_tokens > RING_MAX_TOKENS_PER_INSTANCE) {
      why = "too many tokens";
    } else {
      for (size_t k = 1; k < m->n_tokens; k++) {
        if (m->tokens[k] <= m->tokens[k - 1]) {
          why = "tokens not sorted and unique";
          break;
        }
      }
    }
    if (why) {
      snprintf(errbuf, errlen, "ring state: instance %zu (%.64s): %s", i,
               m->id ? m->id : "", why);
      err = RT_EPROTO;
    }
  }
  size_t n = 0;
  for (size_t i = 0; i < st->n_instances && err == RT_OK; i++) {
    const Ringtail__InstanceDesc *m = st->instances[i];
    if (self_id && strcmp(m->id, self_id) == 0) {
      if (self_seen && m->heartbeat_ms > *self_seen) {
        *self_seen = m->heartbeat_ms;
      }
      continue;
    }
    ring_instance v = {
        .id = m->id,
        .zone = m->zone,
        .http_addr = m->http_addr,
        .rpc_addr = m->rpc_addr,
        .gossip_addr = m->gossip_addr,
        .state = (ring_state)m->state,
        .heartbeat_ms = m->heartbeat_ms,
        .registered_ms = m->registered_ms,
        .tokens = m->tokens,
        .ntokens = (uint32_t)m->n_tokens,
        .role = m->role,
    };
    bool c;
    err = ring_desc_merge_one(d, &v, &c);
    n += c;
  }
  if (err == RT_OK && sender_addr && st->sender_addr && st->sender_addr[0] &&
      ring_str_ok(st->sender_addr)) {
    *sender_addr = rt_strdup(st->sender_addr);
  }
  if (changed) {
    *changed = n;
  }
  ringtail__ring_state__free_unpacked(st, NULL);
  return err;
}
