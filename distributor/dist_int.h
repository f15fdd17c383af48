/* dist_int.h - private to the distributor module. */
#ifndef RT_DIST_INT_H
#define RT_DIST_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "distributor/distributor.h"

struct rt_metrics;
struct rt_counter;

/* One tenant seen by this distributor: its bucket and its counters. */
typedef struct dist_tenant {
  char *name;
  pthread_mutex_t mu;                 /* guards bucket */
  dist_bucket bucket;
  struct rt_counter *received, *accepted, *rate_limited;
  _Atomic(struct rt_counter *) discarded[DIST_R_COUNT]; /* looked up on first use */
  struct dist_tenant *next;
} dist_tenant;

#define DIST_TENANT_SLOTS 256

typedef struct dist_tenants {
  pthread_mutex_t mu;
  dist_tenant *slots[DIST_TENANT_SLOTS];
  struct rt_metrics *metrics;
} dist_tenants;

void dist_tenants_init(dist_tenants *tt, struct rt_metrics *m);
void dist_tenants_free(dist_tenants *tt);
/* Finds or creates the entry of `name` (NULL only when out of memory). */
dist_tenant *dist_tenant_get(dist_tenants *tt, const char *name);
/* Adds n to ringtail_discarded_samples_total{user, reason}. t may be NULL. */
void dist_tenant_discarded(dist_tenants *tt, dist_tenant *t, dist_reason why, uint64_t n);

/* The distributor's configuration (borrowed; lives as long as d). */
const dist_config *dist_get_config(const dist_distributor *d);

/* Encodes tenant + req->wr's series and metadata as a ringtail.PushRequest into arena memory
 * (*out, *len), using the decoder's string lengths when req->info has them. Doubles are written
 * by their bits, so -0.0 survives. Borrows everything. */
rt_err dist_encode_push(const char *tenant, const dist_request *req, rt_arena *arena, uint8_t **out, size_t *len);

/* ---- HA pairs (ha.c) */
typedef struct dist_ha dist_ha;
struct rt_limits;
struct rt_rpc_client;

rt_err dist_ha_create(dist_ha **out);
void dist_ha_destroy(dist_ha *h);
dist_ha *dist_get_ha(const dist_distributor *d);

/* The arbiters of `token`: up to cap RPC clients (borrowed from d) and the answers needed.
 * Ring mode: the ring's write replication set of the token and its quorum; otherwise every
 * configured ingester and a majority of them. */
size_t dist_arbiters(dist_distributor *d, uint32_t token, struct rt_rpc_client **out, size_t cap,
                     int *quorum);

/* Applies the HA rules to req in place: drops series of non-elected replicas (their samples
 * and histogram samples counted in *dropped) and removes the replica label from the rest.
 * Returns 0, or 503 with the reason in msg when the election can not be known. */
int dist_ha_filter(dist_distributor *d, const char *tenant, const struct rt_limits *lim,
                   dist_request *req, size_t *dropped, rt_buf *msg);

/* Counters of dist_stats kept by ha.c. */
void dist_ha_stats(const dist_ha *h, dist_stats *out);

#endif
