/* snapshot.c - immutable ring views: sorted tokens, precomputed replication sets, /ring JSON
 * and HTML. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring/ring_int.h"

/* The replication set of one token range for one op, healthy members only. */
typedef struct ring_set_c {
  uint8_t n;
  uint16_t inst[RING_MAX_RF];
} ring_set_c;

struct ring_snapshot {
  atomic_long refs;
  uint64_t version;
  int64_t built_ms;
  int64_t timeout_ms;
  int rf;
  int rf_eff;          /* min(rf, zones) */
  int quorum;          /* rf_eff / 2 + 1; rf_eff when every_replica */
  bool every_replica;  /* a static ring: writes need every replica, reads every zone */
  size_t ninst;
  ring_instance *inst; /* ingesters, sorted by id; strings and tokens owned */
  size_t noth;
  ring_instance *oth;  /* other roles (distributors), sorted by id; strings owned, no tokens */
  size_t nzones;
  char **zones;        /* sorted; owned */
  size_t ntok;
  uint32_t *tok;       /* sorted */
  uint16_t *owner;     /* instance index per token */
  ring_set_c *sets[2]; /* per op, per token index */
};

void ring_snapshot_set_version(ring_snapshot *s, uint64_t v) { s->version = v; }

static void ring_instance_fini(ring_instance *in) {
  rt_free((void *)in->id, 0);
  rt_free((void *)in->zone, 0);
  rt_free((void *)in->http_addr, 0);
  rt_free((void *)in->rpc_addr, 0);
  rt_free((void *)in->gossip_addr, 0);
  rt_free((void *)in->role, 0);
  rt_free((void *)in->tokens, 0);
}

static void ring_snapshot_free(ring_snapshot *s) {
  for (size_t i = 0; i < s->ninst; i++) {
    ring_instance_fini(&s->inst[i]);
  }
  rt_free(s->inst, 0);
  for (size_t i = 0; i < s->noth; i++) {
    ring_instance_fini(&s->oth[i]);
  }
  rt_free(s->oth, 0);
  for (size_t z = 0; z < s->nzones; z++) {
    rt_free(s->zones[z], 0);
  }
  rt_free(s->zones, 0);
  rt_free(s->tok, 0);
  rt_free(s->owner, 0);
  rt_free(s->sets[0], 0);
  rt_free(s->sets[1], 0);
  rt_free(s, sizeof *s);
}

ring_snapshot *ring_snapshot_dup(ring_snapshot *s) {
  atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
  return s;
}

void ring_snapshot_release(ring_snapshot *s) {
  if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) {
    ring_snapshot_free(s);
  }
}

uint64_t ring_snapshot_version(const ring_snapshot *s) { return s->version; }
int64_t ring_snapshot_built_ms(const ring_snapshot *s) { return s->built_ms; }
int ring_snapshot_rf(const ring_snapshot *s) { return s->rf; }
size_t ring_snapshot_count(const ring_snapshot *s) { return s->ninst; }
size_t ring_snapshot_tokens(const ring_snapshot *s) { return s->ntok; }
const ring_instance *ring_snapshot_instance(const ring_snapshot *s, size_t i) {
  return i < s->ninst ? &s->inst[i] : NULL;
}
size_t ring_snapshot_other_count(const ring_snapshot *s) { return s->noth; }
const ring_instance *ring_snapshot_other(const ring_snapshot *s, size_t i) {
  return i < s->noth ? &s->oth[i] : NULL;
}
size_t ring_snapshot_zone_count(const ring_snapshot *s) { return s->nzones; }
int ring_snapshot_quorum(const ring_snapshot *s) { return s->quorum; }
int ring_snapshot_majority(const ring_snapshot *s) { return s->rf_eff / 2 + 1; }

size_t ring_snapshot_read_zones(const ring_snapshot *s) {
  if (s->rf_eff == 0) {
    return 0;
  }
  return s->every_replica ? s->nzones : (size_t)(s->rf_eff - s->quorum + 1);
}
const char *ring_snapshot_zone(const ring_snapshot *s, size_t z) {
  return z < s->nzones ? s->zones[z] : NULL;
}

long ring_snapshot_find(const ring_snapshot *s, const char *id) {
  size_t lo = 0, hi = s->ninst;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(s->inst[mid].id, id);
    if (c == 0) {
      return (long)mid;
    }
    if (c < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return -1;
}

size_t ring_snapshot_healthy_role(const ring_snapshot *s, const char *role, int64_t now_ms) {
  bool ing = ring_role_is_ingester(role);
  const ring_instance *v = ing ? s->inst : s->oth;
  size_t n = ing ? s->ninst : s->noth, c = 0;
  for (size_t i = 0; i < n; i++) {
    const ring_instance *in = &v[i];
    if ((!ing && strcmp(in->role, role) != 0) ||
        (in->state != RING_ACTIVE && in->state != RING_JOINING)) {
      continue;
    }
    c += now_ms ? s->timeout_ms <= 0 || now_ms - in->heartbeat_ms <= s->timeout_ms : in->healthy;
  }
  return c;
}

size_t ring_snapshot_zone_readers(const ring_snapshot *s, size_t z, uint32_t *out, size_t cap,
                                  size_t *healthy) {
  size_t n = 0, h = 0;
  for (size_t i = 0; i < s->ninst; i++) {
    const ring_instance *in = &s->inst[i];
    if (in->zone_index != z || (in->state != RING_ACTIVE && in->state != RING_LEAVING)) {
      continue;
    }
    if (n < cap) {
      out[n] = (uint32_t)i;
    }
    n++;
    h += in->healthy;
  }
  if (healthy) {
    *healthy = h;
  }
  return n;
}

static int ring_str_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct ring_tok_pair {
  uint32_t tok;
  uint16_t owner;
} ring_tok_pair;

static int ring_pair_cmp(const void *a, const void *b) {
  const ring_tok_pair *x = a, *y = b;
  if (x->tok != y->tok) {
    return x->tok < y->tok ? -1 : 1;
  }
  return (int)x->owner - (int)y->owner;
}

/* Which states claim a zone in a walk: 0 = write, 1 = read, 2 = placement (any live state). */
static bool ring_claims(ring_state st, int mode) {
  switch (mode) {
  case RING_OP_WRITE: return st == RING_ACTIVE;
  case RING_OP_READ: return st == RING_ACTIVE || st == RING_LEAVING;
  default: return st != RING_LEFT;
  }
}

/* Walks clockwise from token index `start` and claims up to `want` zones with instances whose
 * state claims for `mode`. Writes the claimed instances (ring order) to out; returns count. */
static size_t ring_walk(const ring_snapshot *s, size_t start, int mode, size_t want,
                        uint16_t *out) {
  uint32_t zones[RING_MAX_RF];
  size_t n = 0;
  for (size_t k = 0; k < s->ntok && n < want; k++) {
    size_t i = start + k;
    if (i >= s->ntok) {
      i -= s->ntok;
    }
    const ring_instance *in = &s->inst[s->owner[i]];
    if (!ring_claims(in->state, mode)) {
      continue;
    }
    bool dup = false;
    for (size_t j = 0; j < n; j++) {
      if (zones[j] == in->zone_index) {
        dup = true;
        break;
      }
    }
    if (dup) {
      continue;
    }
    zones[n] = in->zone_index;
    out[n++] = s->owner[i];
  }
  return n;
}

static rt_err ring_snapshot_fill(ring_snapshot *s, const ring_desc *d, int64_t now) {
  for (size_t i = 0; i < d->n; i++) {
    const ring_entry *e = &d->v[i];
    if (e->state == RING_LEFT) {
      continue;
    }
    bool ing = ring_role_is_ingester(e->role);
    ring_instance *in = ing ? &s->inst[s->ninst++] : &s->oth[s->noth++];
    in->id = rt_strdup(e->id);
    in->zone = rt_strdup(e->zone);
    in->http_addr = rt_strdup(e->http_addr);
    in->rpc_addr = rt_strdup(e->rpc_addr);
    in->gossip_addr = rt_strdup(e->gossip_addr);
    in->role = rt_strdup(e->role);
    in->state = e->state;
    in->heartbeat_ms = e->heartbeat_ms;
    in->registered_ms = e->registered_ms;
    in->healthy = s->timeout_ms <= 0 || now - e->heartbeat_ms <= s->timeout_ms;
    if (!in->id || !in->zone || !in->http_addr || !in->rpc_addr || !in->gossip_addr ||
        !in->role) {
      return RT_ENOMEM;
    }
    if (ing && e->ntokens) {
      uint32_t *t = rt_alloc((size_t)e->ntokens * sizeof(uint32_t));
      if (!t) {
        return RT_ENOMEM;
      }
      memcpy(t, e->tokens, (size_t)e->ntokens * sizeof(uint32_t));
      in->tokens = t;
      in->ntokens = e->ntokens;
      s->ntok += e->ntokens;
    }
  }
  /* zones */
  s->zones = rt_calloc(s->ninst ? s->ninst : 1, sizeof(char *));
  if (!s->zones) {
    return RT_ENOMEM;
  }
  char **tmp = rt_calloc(s->ninst ? s->ninst : 1, sizeof(char *));
  if (!tmp) {
    return RT_ENOMEM;
  }
  for (size_t i = 0; i < s->ninst; i++) {
    tmp[i] = (char *)s->inst[i].zone;
  }
  qsort(tmp, s->ninst, sizeof(char *), ring_str_cmp);
  for (size_t i = 0; i < s->ninst; i++) {
    if (s->nzones && strcmp(s->zones[s->nzones - 1], tmp[i]) == 0) {
      continue;
    }
    s->zones[s->nzones] = rt_strdup(tmp[i]);
    if (!s->zones[s->nzones]) {
      rt_free(tmp, 0);
      return RT_ENOMEM;
    }
    s->nzones++;
  }
  rt_free(tmp, 0);
  for (size_t i = 0; i < s->ninst; i++) {
    const char *key = s->inst[i].zone;
    char **hit = bsearch(&key, s->zones, s->nzones, sizeof(char *), ring_str_cmp);
    RT_ASSERT(hit);
    s->inst[i].zone_index = (uint32_t)(hit - s->zones);
  }
  s->rf_eff = (int)RT_MIN((size_t)s->rf, s->nzones);
  s->quorum = s->every_replica ? RT_MAX(s->rf_eff, 1) : s->rf_eff / 2 + 1;

  /* tokens, ordered by token then instance index (so collisions resolve the same way on every
   * member) */
  if (!s->ntok) {
    return RT_OK;
  }
  ring_tok_pair *pairs = rt_alloc(s->ntok * sizeof *pairs);
  s->tok = rt_alloc(s->ntok * sizeof(uint32_t));
  s->owner = rt_alloc(s->ntok * sizeof(uint16_t));
  s->sets[0] = rt_alloc(s->ntok * sizeof(ring_set_c));
  s->sets[1] = rt_alloc(s->ntok * sizeof(ring_set_c));
  if (!pairs || !s->tok || !s->owner || !s->sets[0] || !s->sets[1]) {
    rt_free(pairs, 0);
    return RT_ENOMEM;
  }
  size_t k = 0;
  for (size_t i = 0; i < s->ninst; i++) {
    for (uint32_t j = 0; j < s->inst[i].ntokens; j++) {
      pairs[k].tok = s->inst[i].tokens[j];
      pairs[k].owner = (uint16_t)i;
      k++;
    }
  }
  qsort(pairs, s->ntok, sizeof *pairs, ring_pair_cmp);
  for (size_t i = 0; i < s->ntok; i++) {
    s->tok[i] = pairs[i].tok;
    s->owner[i] = pairs[i].owner;
  }
  rt_free(pairs, 0);

  /* zones that have an instance able to claim for each mode */
  size_t claimable[3] = {0, 0, 0};
  for (int mode = 0; mode < 3; mode++) {
    uint32_t last = UINT32_MAX;
    for (size_t z = 0; z < s->nzones; z++) {
      for (size_t i = 0; i < s->ninst; i++) {
        if (s->inst[i].zone_index == z && s->inst[i].ntokens &&
            ring_claims(s->inst[i].state, mode) && last != z) {
          claimable[mode]++;
          last = (uint32_t)z;
        }
      }
    }
  }
  /* precomputed sets; the key range [tok[i-1], tok[i]) starts its walk at i */
  for (size_t i = 0; i < s->ntok; i++) {
    uint16_t m[RING_MAX_RF];
    for (int op = 0; op < 2; op++) {
      size_t want = RT_MIN((size_t)s->rf_eff, claimable[op]);
      size_t n = ring_walk(s, i, op, want, m);
      ring_set_c *c = &s->sets[op][i];
      c->n = 0;
      for (size_t j = 0; j < n; j++) {
        if (s->inst[m[j]].healthy) {
          c->inst[c->n++] = m[j];
        }
      }
    }
    uint64_t len = i > 0 ? (uint64_t)s->tok[i] - s->tok[i - 1]
                         : (uint64_t)s->tok[0] + (1ull << 32) - s->tok[s->ntok - 1];
    double share = (double)len / 4294967296.0;
    s->inst[s->owner[i]].owned_share += share;
    size_t n = ring_walk(s, i, 2, RT_MIN((size_t)s->rf_eff, claimable[2]), m);
    for (size_t j = 0; j < n; j++) {
      s->inst[m[j]].replicated_share += share;
    }
  }
  return RT_OK;
}

rt_err ring_snapshot_build(const ring_desc *d, const ring_snapshot_opts *opts,
                           ring_snapshot **out) {
  *out = NULL;
  int rf = opts && opts->replication_factor ? opts->replication_factor : 3;
  if (rf < 1 || rf > RING_MAX_RF) {
    return RT_EINVAL;
  }
  size_t live = 0;
  for (size_t i = 0; i < d->n; i++) {
    live += d->v[i].state != RING_LEFT;
  }
  if (live > RING_MAX_INSTANCES) {
    return RT_ELIMIT;
  }
  ring_snapshot *s = rt_calloc(1, sizeof *s);
  if (!s) {
    return RT_ENOMEM;
  }
  atomic_init(&s->refs, 1);
  s->rf = rf;
  s->every_replica = opts && opts->every_replica;
  s->timeout_ms = opts ? opts->heartbeat_timeout_ms : 60000;
  s->built_ms = opts && opts->now_ms ? opts->now_ms : rt_now_ms();
  s->inst = rt_calloc(live ? live : 1, sizeof(ring_instance));
  s->oth = rt_calloc(live ? live : 1, sizeof(ring_instance));
  rt_err err = s->inst && s->oth ? ring_snapshot_fill(s, d, s->built_ms) : RT_ENOMEM;
  if (err != RT_OK) {
    ring_snapshot_free(s);
    return err;
  }
  *out = s;
  return RT_OK;
}

rt_err ring_snapshot_get(const ring_snapshot *s, uint32_t token, ring_op op,
                         ring_replication_set *out) {
  out->n = 0;
  out->quorum = s->quorum;
  out->max_errors = -s->quorum;
  if (s->ntok == 0 || (unsigned)op > RING_OP_READ) {
    return RT_EUNAVAIL;
  }
  /* first token > token */
  size_t lo = 0, hi = s->ntok;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->tok[mid] <= token) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == s->ntok) {
    lo = 0;
  }
  const ring_set_c *c = &s->sets[op][lo];
  out->n = c->n;
  for (uint32_t j = 0; j < c->n; j++) {
    out->inst[j] = c->inst[j];
  }
  out->max_errors = (int32_t)c->n - s->quorum;
  return out->max_errors >= 0 ? RT_OK : RT_EUNAVAIL;
}

/* ------------------------------------------------------------------ rendering */

void ring_snapshot_json(const ring_snapshot *s, int64_t now_ms, rt_buf *out) {
  if (!now_ms) {
    now_ms = rt_now_ms();
  }
  rt_buf_printf(out,
                "{\"version\":%llu,\"built_ms\":%lld,\"now_ms\":%lld,\"replication_factor\":%d,"
                "\"quorum\":%d,\"heartbeat_timeout_ms\":%lld,\"tokens\":%zu,\"zones\":[",
                (unsigned long long)s->version, (long long)s->built_ms, (long long)now_ms, s->rf,
                s->quorum, (long long)s->timeout_ms, s->ntok);
  for (size_t z = 0; z < s->nzones; z++) {
    rt_buf_puts(out, z ? "," : "");
    rt_buf_json_str(out, s->zones[z], strlen(s->zones[z]));
  }
  rt_buf_puts(out, "],\"instances\":[");
  for (size_t i = 0; i < s->ninst; i++) {
    const ring_instance *in = &s->inst[i];
    bool healthy = s->timeout_ms <= 0 || now_ms - in->heartbeat_ms <= s->timeout_ms;
    rt_buf_puts(out, i ? ",{\"id\":" : "{\"id\":");
    rt_buf_json_str(out, in->id, strlen(in->id));
    rt_buf_puts(out, ",\"zone\":");
    rt_buf_json_str(out, in->zone, strlen(in->zone));
    rt_buf_printf(out, ",\"state\":\"%s\",\"healthy\":%s,\"http_addr\":", ring_state_name(in->state),
                  healthy ? "true" : "false");
    rt_buf_json_str(out, in->http_addr, strlen(in->http_addr));
    rt_buf_puts(out, ",\"rpc_addr\":");
    rt_buf_json_str(out, in->rpc_addr, strlen(in->rpc_addr));
    rt_buf_puts(out, ",\"gossip_addr\":");
    rt_buf_json_str(out, in->gossip_addr, strlen(in->gossip_addr));
    rt_buf_printf(out,
                  ",\"heartbeat_ms\":%lld,\"heartbeat_age_ms\":%lld,\"registered_ms\":%lld,"
                  "\"tokens\":%u,\"owned_share\":%.6f,\"replicated_share\":%.6f}",
                  (long long)in->heartbeat_ms, (long long)(now_ms - in->heartbeat_ms),
                  (long long)in->registered_ms, in->ntokens, in->owned_share,
                  in->replicated_share);
  }
  rt_buf_puts(out, "],\"others\":[");
  for (size_t i = 0; i < s->noth; i++) {
    const ring_instance *in = &s->oth[i];
    bool healthy = s->timeout_ms <= 0 || now_ms - in->heartbeat_ms <= s->timeout_ms;
    rt_buf_puts(out, i ? ",{\"id\":" : "{\"id\":");
    rt_buf_json_str(out, in->id, strlen(in->id));
    rt_buf_puts(out, ",\"role\":");
    rt_buf_json_str(out, in->role, strlen(in->role));
    rt_buf_printf(out, ",\"state\":\"%s\",\"healthy\":%s,\"http_addr\":",
                  ring_state_name(in->state), healthy ? "true" : "false");
    rt_buf_json_str(out, in->http_addr, strlen(in->http_addr));
    rt_buf_puts(out, ",\"gossip_addr\":");
    rt_buf_json_str(out, in->gossip_addr, strlen(in->gossip_addr));
    rt_buf_printf(out, ",\"heartbeat_ms\":%lld,\"heartbeat_age_ms\":%lld,\"registered_ms\":%lld}",
                  (long long)in->heartbeat_ms, (long long)(now_ms - in->heartbeat_ms),
                  (long long)in->registered_ms);
  }
  rt_buf_puts(out, "]}");
}

static void ring_html_esc(rt_buf *out, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '&': rt_buf_puts(out, "&amp;"); break;
    case '<': rt_buf_puts(out, "&lt;"); break;
    case '>': rt_buf_puts(out, "&gt;"); break;
    case '"': rt_buf_puts(out, "&quot;"); break;
    case '\'': rt_buf_puts(out, "&#39;"); break;
    default: rt_buf_putc(out, *s);
    }
  }
}

void ring_snapshot_html(const ring_snapshot *s, int64_t now_ms, const char *action, rt_buf *out) {
  if (!now_ms) {
    now_ms = rt_now_ms();
  }
  rt_buf_puts(out,
              "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Ringtail ring</title>"
              "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
              "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}"
              "tr.unhealthy{background:#fdd}tr.joining{background:#ffd}tr.leaving{background:#eef}"
              "</style></head><body>\n<h1>Ring</h1>\n");
  rt_buf_printf(out,
                "<p>%zu instances, %zu zones, %zu tokens, replication factor %d (write quorum %d),"
                " heartbeat timeout %llds.</p>\n",
                s->ninst, s->nzones, s->ntok, s->rf, s->quorum,
                (long long)(s->timeout_ms / 1000));
  rt_buf_puts(out,
              "<table><tr><th>Instance</th><th>Zone</th><th>State</th><th>Health</th>"
              "<th>HTTP</th><th>RPC</th><th>Last heartbeat</th><th>Tokens</th>"
              "<th>Owned</th><th>Replicated</th><th></th></tr>\n");
  for (size_t i = 0; i < s->ninst; i++) {
    const ring_instance *in = &s->inst[i];
    bool healthy = s->timeout_ms <= 0 || now_ms - in->heartbeat_ms <= s->timeout_ms;
    const char *cls = !healthy                       ? "unhealthy"
                      : in->state == RING_JOINING ? "joining"
                      : in->state == RING_LEAVING ? "leaving"
                                                  : "active";
    rt_buf_printf(out, "<tr class=\"%s\"><td>", cls);
    ring_html_esc(out, in->id);
    rt_buf_puts(out, "</td><td>");
    ring_html_esc(out, in->zone);
    rt_buf_printf(out, "</td><td>%s</td><td>%s</td><td>", ring_state_name(in->state),
                  healthy ? "healthy" : "UNHEALTHY");
    ring_html_esc(out, in->http_addr);
    rt_buf_puts(out, "</td><td>");
    ring_html_esc(out, in->rpc_addr);
    rt_buf_printf(out, "</td><td>%.1fs ago</td><td>%u</td><td>%.2f%%</td><td>%.2f%%</td><td>",
                  (double)(now_ms - in->heartbeat_ms) / 1000.0, in->ntokens,
                  in->owned_share * 100.0, in->replicated_share * 100.0);
    rt_buf_puts(out, "<form method=\"post\" action=\"");
    ring_html_esc(out, action ? action : "/ring");
    rt_buf_puts(out, "\"><input type=\"hidden\" name=\"forget\" value=\"");
    ring_html_esc(out, in->id);
    rt_buf_puts(out, "\"><button type=\"submit\">Forget</button></form></td></tr>\n");
  }
  rt_buf_puts(out, "</table>\n");
  if (s->noth) {
    /* distributors: no tokens, counted to share each tenant's ingestion rate */
    rt_buf_printf(out, "<h2>Other members</h2>\n<p>%zu healthy distributors share each tenant's "
                  "ingestion rate.</p>\n<table><tr><th>Instance</th><th>Role</th><th>State</th>"
                  "<th>Health</th><th>HTTP</th><th>Last heartbeat</th><th></th></tr>\n",
                  ring_snapshot_healthy_role(s, RING_ROLE_DISTRIBUTOR, now_ms));
  }
  for (size_t i = 0; i < s->noth; i++) {
    const ring_instance *in = &s->oth[i];
    bool healthy = s->timeout_ms <= 0 || now_ms - in->heartbeat_ms <= s->timeout_ms;
    rt_buf_printf(out, "<tr class=\"%s\"><td>",
                  !healthy ? "unhealthy" : in->state == RING_LEAVING ? "leaving" : "active");
    ring_html_esc(out, in->id);
    rt_buf_puts(out, "</td><td>");
    ring_html_esc(out, in->role);
    rt_buf_printf(out, "</td><td>%s</td><td>%s</td><td>", ring_state_name(in->state),
                  healthy ? "healthy" : "UNHEALTHY");
    ring_html_esc(out, in->http_addr);
    rt_buf_printf(out, "</td><td>%.1fs ago</td><td>", (double)(now_ms - in->heartbeat_ms) / 1000.0);
    rt_buf_puts(out, "<form method=\"post\" action=\"");
    ring_html_esc(out, action ? action : "/ring");
    rt_buf_puts(out, "\"><input type=\"hidden\" name=\"forget\" value=\"");
    ring_html_esc(out, in->id);
    rt_buf_puts(out, "\"><button type=\"submit\">Forget</button></form></td></tr>\n");
  }
  if (s->noth) {
    rt_buf_puts(out, "</table>\n");
  }
  rt_buf_puts(out, "</body></html>\n");
}
