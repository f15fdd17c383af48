/* tenants.c - per-tenant state of a distributor: the ingestion-rate token bucket and the
 * tenant's counters on /metrics. One lookup per request; the entry lives as long as the
 * distributor. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/metrics.h"
#include "distributor/dist_int.h"

bool dist_bucket_take(dist_bucket *b, double rate, double burst, double n, int64_t now_ns) {
  if (rate <= 0) {
    b->rate = 0; /* unlimited: next time a limit appears the bucket starts full */
    b->started = false;
    return true;
  }
  if (burst < 1) {
    burst = 1;
  }
  if (!b->started) {
    b->started = true;
    b->tokens = burst;
    b->last_ns = now_ns;
  } else if (now_ns > b->last_ns) {
    b->tokens += (double)(now_ns - b->last_ns) * 1e-9 * b->rate;
    b->last_ns = now_ns;
  }
  /* a changed limit (runtime config reload, or another count of distributors) takes effect
   * now: the refill above used the old rate up to this instant, the new one applies from here */
  if (burst > b->burst && b->burst > 0) {
    b->tokens += burst - b->burst; /* a raised burst is headroom at once */
  }
  b->rate = rate;
  b->burst = burst;
  if (b->tokens > burst) {
    b->tokens = burst;
  }
  if (n > b->tokens) {
    return false;
  }
  b->tokens -= n;
  return true;
}

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) {
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  }
  return h;
}

dist_tenant *dist_tenant_get(dist_tenants *tt, const char *name) {
  uint64_t h = hash_str(name);
  size_t slot = h & (DIST_TENANT_SLOTS - 1);
  pthread_mutex_lock(&tt->mu);
  dist_tenant *t = tt->slots[slot];
  while (t && strcmp(t->name, name) != 0) {
    t = t->next;
  }
  if (!t) {
    t = rt_calloc(1, sizeof *t);
    char *n = t ? rt_strdup(name) : NULL;
    if (!n) {
      rt_free(t, sizeof *t);
      pthread_mutex_unlock(&tt->mu);
      return NULL;
    }
    t->name = n;
    pthread_mutex_init(&t->mu, NULL);
    rt_metrics *m = tt->metrics;
    t->received = rt_counter_get(m, "ringtail_distributor_received_samples_total",
                                 "Float samples received in remote-write requests, per tenant.",
                                 "user", name);
    t->accepted = rt_counter_get(m, "ringtail_distributor_accepted_samples_total",
                                 "Samples stored by the ingesters (duplicates of stored samples "
                                 "included), per tenant.",
                                 "user", name);
    t->rate_limited = rt_counter_get(m, "ringtail_distributor_rate_limited_requests_total",
                                     "Remote-write requests refused (429) for the tenant's "
                                     "ingestion rate limit.",
                                     "user", name);
    t->next = tt->slots[slot];
    tt->slots[slot] = t;
  }
  pthread_mutex_unlock(&tt->mu);
  return t;
}

void dist_tenant_discarded(dist_tenants *tt, dist_tenant *t, dist_reason why, uint64_t n) {
  if (!t || why <= DIST_R_OK || why >= DIST_R_COUNT || n == 0) {
    return;
  }
  rt_counter *c = atomic_load_explicit(&t->discarded[why], memory_order_acquire);
  if (!c) {
    c = rt_counter_get(tt->metrics, "ringtail_discarded_samples_total",
                       "Samples (and metadata entries) rejected, per tenant and reason.",
                       "user,reason", t->name, dist_reason_names[why]);
    atomic_store_explicit(&t->discarded[why], c, memory_order_release);
  }
  rt_counter_add(c, (double)n);
}

void dist_tenants_init(dist_tenants *tt, struct rt_metrics *m) {
  memset(tt, 0, sizeof *tt);
  pthread_mutex_init(&tt->mu, NULL);
  tt->metrics = m ? m : rt_metrics_default();
}

void dist_tenants_free(dist_tenants *tt) {
  for (size_t i = 0; i < DIST_TENANT_SLOTS; i++) {
    dist_tenant *t = tt->slots[i];
    while (t) {
      dist_tenant *next = t->next;
      pthread_mutex_destroy(&t->mu);
      rt_free(t->name, 0);
      rt_free(t, sizeof *t);
      t = next;
    }
    tt->slots[i] = NULL;
  }
  pthread_mutex_destroy(&tt->mu);
}
