/* ing_ha.c - the HA-pair arbiter: (tenant, cluster) -> (elected replica, last seen). */
#include "ingester/ing_ha.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

typedef struct ha_rec {
  struct ha_rec *next;
  uint64_t hash;
  char *tenant;
  char *cluster;
  char *elected;
  int64_t last_seen_ms;
  int64_t timeout_ms;
} ha_rec;

struct ing_ha {
  pthread_mutex_t mu;
  ha_rec **buckets;
  size_t nbuckets;
  size_t n;
  bool grace;
  int64_t start_ms;
  int64_t next_sweep_ms;
  atomic_uint_least64_t elections;
};

#define HA_MIN_BUCKETS 64

ing_ha_action ing_ha_rule(bool have, const char *elected, int64_t last_seen_ms,
                          const char *replica, int64_t now_ms, int64_t timeout_ms) {
  if (!have) {
    return ING_HA_ELECT;
  }
  if (strcmp(elected, replica) == 0) {
    return ING_HA_REFRESH;
  }
  /* strictly older than the timeout: an elected replica seen exactly timeout ago still holds */
  return now_ms - last_seen_ms > timeout_ms ? ING_HA_ELECT : ING_HA_KEEP;
}

rt_err ing_ha_create(bool grace, int64_t start_ms, ing_ha **out) {
  *out = NULL;
  ing_ha *h = rt_calloc(1, sizeof *h);
  if (!h) {
    return RT_ENOMEM;
  }
  h->buckets = rt_calloc(HA_MIN_BUCKETS, sizeof *h->buckets);
  if (!h->buckets) {
    rt_free(h, sizeof *h);
    return RT_ENOMEM;
  }
  h->nbuckets = HA_MIN_BUCKETS;
  h->grace = grace;
  h->start_ms = start_ms;
  pthread_mutex_init(&h->mu, NULL);
  *out = h;
  return RT_OK;
}

static void rec_free(ha_rec *r) {
  rt_free(r->tenant, 0);
  rt_free(r->cluster, 0);
  rt_free(r->elected, 0);
  rt_free(r, sizeof *r);
}

void ing_ha_destroy(ing_ha *h) {
  if (!h) {
    return;
  }
  for (size_t i = 0; i < h->nbuckets; i++) {
    for (ha_rec *r = h->buckets[i], *nx; r; r = nx) {
      nx = r->next;
      rec_free(r);
    }
  }
  rt_free(h->buckets, h->nbuckets * sizeof *h->buckets);
  pthread_mutex_destroy(&h->mu);
  rt_free(h, sizeof *h);
}

static uint64_t key_hash(const char *tenant, const char *cluster) {
  XXH3_state_t st;
  XXH3_64bits_reset(&st);
  XXH3_64bits_update(&st, tenant, strlen(tenant) + 1); /* the NUL separates the two */
  XXH3_64bits_update(&st, cluster, strlen(cluster));
  return XXH3_64bits_digest(&st);
}

/* Drops records whose elected replica is older than their timeout (lock held). */
static void sweep(ing_ha *h, int64_t now_ms) {
  for (size_t i = 0; i < h->nbuckets; i++) {
    ha_rec **pp = &h->buckets[i];
    while (*pp) {
      ha_rec *r = *pp;
      if (now_ms - r->last_seen_ms > r->timeout_ms) {
        *pp = r->next;
        rec_free(r);
        h->n--;
      } else {
        pp = &r->next;
      }
    }
  }
}

static void grow(ing_ha *h) {
  size_t nb = h->nbuckets * 2;
  ha_rec **b = rt_calloc(nb, sizeof *b);
  if (!b) {
    return; /* longer chains, still correct */
  }
  for (size_t i = 0; i < h->nbuckets; i++) {
    for (ha_rec *r = h->buckets[i], *nx; r; r = nx) {
      nx = r->next;
      r->next = b[r->hash & (nb - 1)];
      b[r->hash & (nb - 1)] = r;
    }
  }
  rt_free(h->buckets, h->nbuckets * sizeof *h->buckets);
  h->buckets = b;
  h->nbuckets = nb;
}

rt_err ing_ha_elect(ing_ha *h, const char *tenant, const char *cluster, const char *replica,
                    int64_t timeout_ms, int64_t now_ms, rt_buf *out, bool *refreshed) {
  if (refreshed) {
    *refreshed = false;
  }
  rt_buf_reset(out);
  if (!tenant || !*tenant || !cluster || !*cluster || !replica || !*replica || timeout_ms <= 0) {
    return RT_EINVAL;
  }
  uint64_t hash = key_hash(tenant, cluster);
  rt_err err = RT_OK;
  pthread_mutex_lock(&h->mu);
  if (now_ms >= h->next_sweep_ms) {
    sweep(h, now_ms);
    h->next_sweep_ms = now_ms + 60000;
  }
  ha_rec **slot = &h->buckets[hash & (h->nbuckets - 1)];
  ha_rec *r = *slot;
  while (r && !(r->hash == hash && strcmp(r->tenant, tenant) == 0 &&
                strcmp(r->cluster, cluster) == 0)) {
    r = r->next;
  }
  ing_ha_action act = ing_ha_rule(r != NULL, r ? r->elected : NULL, r ? r->last_seen_ms : 0,
                                  replica, now_ms, timeout_ms);
  bool abstain = h->grace && now_ms - h->start_ms < timeout_ms;
  switch (act) {
    case ING_HA_ELECT: {
      char *el = rt_strdup(replica);
      if (!el) {
        err = RT_ENOMEM;
        break;
      }
      if (!r) {
        r = rt_calloc(1, sizeof *r);
        char *t = rt_strdup(tenant), *c = rt_strdup(cluster);
        if (!r || !t || !c) {
          rt_free(r, sizeof *r);
          rt_free(t, 0);
          rt_free(c, 0);
          rt_free(el, 0);
          err = RT_ENOMEM;
          break;
        }
        r->hash = hash;
        r->tenant = t;
        r->cluster = c;
        r->next = *slot;
        *slot = r;
        if (++h->n > h->nbuckets) {
          grow(h);
        }
      } else {
        rt_free(r->elected, 0);
      }
      r->elected = el;
      r->last_seen_ms = now_ms;
      r->timeout_ms = timeout_ms;
      atomic_fetch_add_explicit(&h->elections, 1, memory_order_relaxed);
      if (refreshed) {
        *refreshed = !abstain;
      }
      break;
    }
    case ING_HA_REFRESH:
      r->last_seen_ms = now_ms;
      r->timeout_ms = timeout_ms;
      if (refreshed) {
        *refreshed = !abstain;
      }
      break;
    case ING_HA_KEEP:
      break;
  }
  if (err == RT_OK && r && !abstain) {
    rt_buf_puts(out, r->elected);
    if (out->oom) {
      err = RT_ENOMEM;
    }
  }
  pthread_mutex_unlock(&h->mu);
  return err;
}

size_t ing_ha_records(ing_ha *h) {
  pthread_mutex_lock(&h->mu);
  size_t n = h->n;
  pthread_mutex_unlock(&h->mu);
  return n;
}

uint64_t ing_ha_elections(ing_ha *h) {
  return atomic_load_explicit(&h->elections, memory_order_relaxed);
}
