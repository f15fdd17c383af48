/* distributor.c - one remote-write request end to end: decode, validate, hand the valid part to
 * the replicator (replicate.c: each series to the ingesters of its replication set in the ring,
 * the gossip ring or the static one built from -distributor.ingester-addresses), map the outcome
 * to the remote-write status codes. */
#include <pthread.h>
#include <snappy-c.h>
#include <stdatomic.h>
#include <stdio.h>
#include <strings.h>
#include <string.h>

#include "common/limits.h"
#include "common/log.h"
#include "common/metrics.h"
#include "distributor/dist_int.h"
#include "distributor/replicate.h"

#define DIST_DEFAULT_INGESTER "inproc://ingester"
/* Request arenas are pooled: a typical remote-write request (up to a few thousand samples,
 * a few hundred KB decompressed) fits in the first block, whose pages stay mapped between
 * requests. Arenas that grew past DIST_ARENA_KEEP are freed instead of pooled. */
#define DIST_ARENA_BLOCK (1u << 20)
#define DIST_ARENA_POOL 8
#define DIST_ARENA_KEEP (2u << 20)

static const int dist_status_codes[DIST_NSTATUS] = DIST_STATUS_CODES;

typedef struct dist_counters {
  atomic_uint_least64_t requests[DIST_NSTATUS];
  atomic_uint_least64_t bytes_received;
  atomic_uint_least64_t bytes_decompressed;
  atomic_uint_least64_t series_received;
  atomic_uint_least64_t samples_received;
  atomic_uint_least64_t samples_accepted;
  atomic_uint_least64_t histograms_received;
  atomic_uint_least64_t exemplars_received;
  atomic_uint_least64_t metadata_received;
  atomic_uint_least64_t rejected[DIST_R_COUNT];
  atomic_uint_least64_t ingester_errors;
  atomic_uint_least64_t inflight_bytes;
  atomic_uint_least64_t inflight_rejected;
} dist_counters;

struct dist_distributor {
  dist_config cfg;
  ring *static_ring; /* owned: built from cfg.ingesters when no ring was given */
  pthread_mutex_t pool_mu;
  rt_arena *pool[DIST_ARENA_POOL];
  size_t npool;
  dist_counters st;
  dist_repl *repl; /* the write path: over cfg.ring or static_ring */
  dist_ha *ha;     /* HA-pair election cache (ha.c) */
  dist_tenants tenants;
  _Atomic(dist_count_fn) count_fn; /* how many distributors share the rate; NULL = 1 */
  _Atomic(void *) count_ctx;
};

#define ADD(field, n) atomic_fetch_add_explicit(&(field), (uint64_t)(n), memory_order_relaxed)
#define GET(field) atomic_load_explicit(&(field), memory_order_relaxed)

void dist_config_from_rt(const rt_config *cfg, dist_config *out) {
  memset(out, 0, sizeof *out);
  dist_limits_from_config(cfg, &out->limits);
  out->ingesters = cfg->distributor_ingesters;
  out->timeout_ms = cfg->distributor_timeout_ms > 0 ? (int)RT_MIN(cfg->distributor_timeout_ms, 3600000) : 2000;
  out->max_recv_msg_size = cfg->max_recv_msg_size > 0 ? (size_t)cfg->max_recv_msg_size : 0;
  out->instances = cfg->distributor_instances;
}

rt_err dist_create(const dist_config *cfg, dist_distributor **out) {
  *out = NULL;
  dist_distributor *d = rt_calloc(1, sizeof *d);
  if (!d) {
    return RT_ENOMEM;
  }
  d->cfg = *cfg;
  d->cfg.ingesters = NULL; /* borrowed during create only */
  pthread_mutex_init(&d->pool_mu, NULL);
  dist_tenants_init(&d->tenants, cfg->metrics);
  if (d->cfg.timeout_ms <= 0) {
    d->cfg.timeout_ms = 2000;
  }
  if (d->cfg.max_inflight_bytes == 0) {
    d->cfg.max_inflight_bytes = DIST_DEFAULT_INFLIGHT_BYTES;
  }
  if (dist_ha_create(&d->ha) != RT_OK) {
    dist_destroy(d);
    return RT_ENOMEM;
  }
  ring *r = cfg->ring;
  rt_err err = RT_OK;
  if (!r) {
    const char *list = cfg->ingesters && *cfg->ingesters ? cfg->ingesters : DIST_DEFAULT_INGESTER;
    char msg[512];
    err = ring_create_static(list, &d->static_ring, msg, sizeof msg);
    if (err != RT_OK) {
      rt_error("distributor", "invalid -distributor.ingester-addresses", "err=\"%s\"",
               msg[0] ? msg : rt_strerror(err));
    }
    r = d->static_ring;
  }
  if (err == RT_OK) {
    err = dist_repl_create(r, d->cfg.timeout_ms, &d->repl);
  }
  if (err != RT_OK) {
    dist_destroy(d);
    return err;
  }
  *out = d;
  return RT_OK;
}

void dist_destroy(dist_distributor *d) {
  if (!d) {
    return;
  }
  dist_repl_destroy(d->repl);
  ring_destroy(d->static_ring);
  dist_ha_destroy(d->ha);
  for (size_t i = 0; i < d->npool; i++) {
    rt_arena_destroy(d->pool[i]);
  }
  pthread_mutex_destroy(&d->pool_mu);
  dist_tenants_free(&d->tenants);
  rt_free(d, sizeof *d);
}

const dist_config *dist_get_config(const dist_distributor *d) { return &d->cfg; }

dist_ha *dist_get_ha(const dist_distributor *d) { return d->ha; }

size_t dist_arbiters(dist_distributor *d, uint32_t token, rt_rpc_client **out, size_t cap,
                     int *quorum) {
  return dist_repl_arbiters(d->repl, token, out, cap, quorum);
}

void dist_set_distributor_count(dist_distributor *d, dist_count_fn fn, void *ctx) {
  atomic_store(&d->count_ctx, ctx);
  atomic_store(&d->count_fn, fn);
}

size_t dist_distributor_count(dist_distributor *d) {
  size_t n = d->cfg.instances > 0 ? (size_t)d->cfg.instances : 1;
  dist_count_fn fn = atomic_load(&d->count_fn);
  if (fn) {
    size_t c = fn(atomic_load(&d->count_ctx));
    n = c ? c : n;
  }
  return n;
}

void dist_get_stats(const dist_distributor *d, dist_stats *out) {
  memset(out, 0, sizeof *out);
  dist_counters *st = (dist_counters *)&d->st;
  for (int i = 0; i < DIST_NSTATUS; i++) {
    out->requests[i] = GET(st->requests[i]);
  }
  out->bytes_received = GET(st->bytes_received);
  out->bytes_decompressed = GET(st->bytes_decompressed);
  out->series_received = GET(st->series_received);
  out->samples_received = GET(st->samples_received);
  out->samples_accepted = GET(st->samples_accepted);
  out->histograms_received = GET(st->histograms_received);
  out->exemplars_received = GET(st->exemplars_received);
  out->metadata_received = GET(st->metadata_received);
  for (int i = 0; i < DIST_R_COUNT; i++) {
    out->rejected[i] = GET(st->rejected[i]);
  }
  out->ingester_errors = GET(st->ingester_errors);
  out->inflight_bytes = GET(st->inflight_bytes);
  out->inflight_rejected = GET(st->inflight_rejected);
  if (d->ha) {
    dist_ha_stats(d->ha, out);
  }
}

static rt_arena *arena_get(dist_distributor *d) {
  rt_arena *a = NULL;
  pthread_mutex_lock(&d->pool_mu);
  if (d->npool) {
    a = d->pool[--d->npool];
  }
  pthread_mutex_unlock(&d->pool_mu);
  return a ? a : rt_arena_create(DIST_ARENA_BLOCK);
}

static void arena_put(dist_distributor *d, rt_arena *a) {
  if (rt_arena_used(a) <= DIST_ARENA_KEEP) {
    rt_arena_reset(a);
    pthread_mutex_lock(&d->pool_mu);
    if (d->npool < DIST_ARENA_POOL) {
      d->pool[d->npool++] = a;
      a = NULL;
    }
    pthread_mutex_unlock(&d->pool_mu);
  }
  rt_arena_destroy(a);
}

/* Copies s into buf as the inside of a logfmt quoted value (\" \\ \n escaped), cut to fit. */
static const char *log_quote(char *buf, size_t len, const char *s, size_t n) {
  size_t o = 0;
  for (size_t i = 0; i < n && o + 3 < len; i++) {
    char c = s[i];
    if (c == '"' || c == '\\') {
      buf[o++] = '\\';
      buf[o++] = c;
    } else if (c == '\n' || c == '\r' || c == '\t') {
      buf[o++] = ' ';
    } else {
      buf[o++] = c;
    }
  }
  buf[o] = 0;
  return buf;
}

static void finish(dist_distributor *d, dist_push_out *out, int status) {
  out->status = status;
  if (status >= 400 && status < 500) {
    char q[600];
    rt_debug("distributor", "push rejected", "status=%d err=\"%s\"", status,
             log_quote(q, sizeof q, out->msg.data ? out->msg.data : "", out->msg.len));
  }
  for (int i = 0; i < DIST_NSTATUS; i++) {
    if (dist_status_codes[i] == status) {
      ADD(d->st.requests[i], 1);
      return;
    }
  }
  ADD(d->st.requests[status >= 500 ? 5 : 1], 1); /* counted as 500 or as 400 */
}

static void dist_handle(dist_distributor *d, const dist_push_in *in, const char *tenant, dist_push_out *out);

/* The tenant's ingestion rate: this distributor's share of it, as a token bucket. Returns
 * false with the 429 message in msg when n samples do not fit. */
static bool rate_ok(dist_distributor *d, dist_tenant *t, const char *tenant, const rt_limits *tl, size_t n,
                    rt_buf *msg) {
  if (tl->ingestion_rate <= 0 || n == 0 || !t) {
    return true; /* unlimited; a limit set later refills from the last use, so starts full */
  }
  size_t ndist = dist_distributor_count(d);
  double share = (double)tl->ingestion_rate / (double)ndist;
  double burst = tl->ingestion_burst_size > 0 ? (double)tl->ingestion_burst_size : share;
  pthread_mutex_lock(&t->mu);
  bool ok = dist_bucket_take(&t->bucket, share, burst, (double)n, (int64_t)rt_mono_ns());
  pthread_mutex_unlock(&t->mu);
  if (ok) {
    return true;
  }
  rt_counter_inc(t->rate_limited);
  rt_buf_reset(msg);
  rt_buf_printf(msg,
                "the request has been rejected because the tenant \"%s\" exceeded its ingestion rate limit: "
                "ingestion_rate %lld samples/s",
                tenant, (long long)tl->ingestion_rate);
  rt_buf_printf(msg, " across %zu distributor%s (%.6g samples/s each)", ndist,
                ndist == 1 ? "" : "s", share);
  rt_buf_printf(msg,
                ", ingestion_burst_size %.0f samples; the request held %zu samples and metadata and none of "
                "it was stored; send less often, in smaller batches, or ask for a higher limit (see "
                "docs/errors.md#err-ringtail-ingestion-rate-limited)",
                burst, n);
  return false;
}

void dist_push(dist_distributor *d, const dist_push_in *in, dist_push_out *out) {
  char err[1024];
  rt_buf_reset(&out->msg);
  ADD(d->st.bytes_received, in->body_len);
  const char *tenant = in->tenant ? in->tenant : "anonymous";
  if (!dist_tenant_valid(tenant, err, sizeof err)) {
    rt_buf_puts(&out->msg, err);
    finish(d, out, 400);
    return;
  }
  if (in->content_type && strstr(in->content_type, "io.prometheus.write.v2.Request")) {
    rt_buf_printf(&out->msg,
                  "unsupported remote-write message %s: this endpoint accepts remote-write 1.0 "
                  "(prometheus.WriteRequest)",
                  in->content_type);
    finish(d, out, 415);
    return;
  }
  if (in->content_encoding && *in->content_encoding && strcasecmp(in->content_encoding, "snappy") != 0) {
    rt_buf_printf(&out->msg, "unsupported Content-Encoding \"%.64s\": remote-write bodies are snappy-compressed",
                  in->content_encoding);
    finish(d, out, 415);
    return;
  }
  /* reserve the declared decompressed size against the in-flight limit (the decoder checks
   * the declared size against the per-request limit and the data against the declaration) */
  size_t declared = 0;
  if (in->body_len && snappy_uncompressed_length(in->body, in->body_len, &declared) != SNAPPY_OK) {
    declared = 0;
  }
  if (declared > d->cfg.limits.max_decompressed_size && d->cfg.limits.max_decompressed_size) {
    declared = 0; /* dist_decode answers 413 without allocating */
  }
  uint64_t cost = declared + in->body_len;
  uint64_t before = atomic_fetch_add_explicit(&d->st.inflight_bytes, cost, memory_order_relaxed);
  if (before > 0 && before + cost > d->cfg.max_inflight_bytes) {
    atomic_fetch_sub_explicit(&d->st.inflight_bytes, cost, memory_order_relaxed);
    ADD(d->st.inflight_rejected, 1);
    rt_buf_printf(&out->msg,
                  "too many remote-write bytes in flight (%llu + %llu > %zu): try again later",
                  (unsigned long long)before, (unsigned long long)cost, d->cfg.max_inflight_bytes);
    finish(d, out, 503);
    return;
  }
  dist_handle(d, in, tenant, out);
  atomic_fetch_sub_explicit(&d->st.inflight_bytes, cost, memory_order_relaxed);
}

/* The part of dist_push after the cheap checks and the in-flight reservation. */
static void dist_handle(dist_distributor *d, const dist_push_in *in, const char *tenant, dist_push_out *out) {
  char err[1024];
  rt_arena *arena = arena_get(d);
  if (!arena) {
    rt_buf_puts(&out->msg, "out of memory");
    finish(d, out, 500);
    return;
  }
  dist_request req;
  rt_err e = dist_decode(in->body, in->body_len, &d->cfg.limits, arena, &req, err, sizeof err);
  if (e != RT_OK) {
    rt_buf_puts(&out->msg, err[0] ? err : rt_strerror(e));
    arena_put(d, arena);
    finish(d, out, e == RT_ELIMIT ? 413 : e == RT_EPROTO ? 400 : 500);
    return;
  }
  ADD(d->st.bytes_decompressed, req.decompressed_len);
  /* the tenant's limits, read once per request: a runtime-config reload applies from the next
   * request on */
  rt_limits tl;
  memset(&tl, 0, sizeof tl); /* without a limits table: no rate limit, the configured rules */
  dist_limits lim = d->cfg.limits;
  if (rt_limits_active()) {
    rt_limits_get(tenant, &tl);
    dist_limits_apply(&lim, &tl, tenant);
  } else {
    lim.tenant = tenant;
  }
  dist_tenant *ten = dist_tenant_get(&d->tenants, tenant);
  /* HA pairs: drop the series of replicas that are not elected, before validation (the
   * replica label does not count against the label limits, as it is not stored) */
  size_t ha_dropped = 0;
  if (req.wr->n_timeseries) {
    int st = dist_ha_filter(d, tenant, &tl, &req, &ha_dropped, &out->msg);
    if (st) {
      arena_put(d, arena);
      finish(d, out, st);
      return;
    }
    if (ha_dropped) {
      ADD(d->st.samples_received, ha_dropped);
      ADD(d->st.rejected[DIST_R_HA_DUPLICATE], ha_dropped);
      if (ten) {
        rt_counter_add(ten->received, (double)ha_dropped);
      }
      dist_tenant_discarded(&d->tenants, ten, DIST_R_HA_DUPLICATE, ha_dropped);
      if (req.wr->n_timeseries == 0) {
        /* the whole request came from a replica that is not elected: 202, nothing stored
         * (its metadata neither, as Mimir does) */
        arena_put(d, arena);
        finish(d, out, 202);
        return;
      }
    }
  }
  dist_report rep;
  dist_validate(&req, &lim, rt_now_ms(), &rep);
  ADD(d->st.series_received, rep.series_total);
  ADD(d->st.samples_received, rep.samples_total);
  ADD(d->st.histograms_received, rep.histograms_total);
  ADD(d->st.exemplars_received, rep.exemplars_ignored);
  ADD(d->st.metadata_received, rep.metadata_total);
  if (ten) {
    rt_counter_add(ten->received, (double)rep.samples_total);
  }

  int status = 0;
  size_t forwarded = rep.samples_total - rep.samples_rejected;
  if ((req.wr->n_timeseries || req.wr->n_metadata) && !rate_ok(d, ten, tenant, &tl, forwarded + req.wr->n_metadata, &out->msg)) {
    /* nothing of the request is stored */
    rep.rejected[DIST_R_RATE_LIMITED] += forwarded + req.wr->n_metadata;
    status = 429;
  } else if (req.wr->n_timeseries || req.wr->n_metadata) {
    uint64_t acc = 0, failed = 0;
    status = dist_repl_push(d->repl, tenant, &req, arena, &rep, &out->msg, &acc, &failed);
    ADD(d->st.samples_accepted, acc);
    ADD(d->st.ingester_errors, failed);
    if (ten) {
      rt_counter_add(ten->accepted, (double)acc);
    }
  }
  for (int i = 0; i < DIST_R_COUNT; i++) {
    if (rep.rejected[i]) {
      ADD(d->st.rejected[i], rep.rejected[i]);
      dist_tenant_discarded(&d->tenants, ten, (dist_reason)i, rep.rejected[i]);
    }
  }
  if (status) {
    /* 429, or a retry can fix it: the message is already in out->msg */
  } else if (rep.first != DIST_R_OK) {
    status = 400;
    rt_buf_puts(&out->msg, rep.msg);
    rt_buf_printf(&out->msg, " (rejected %zu of %zu samples", rep.samples_rejected, rep.samples_total);
    if (rep.histograms_total) {
      rt_buf_printf(&out->msg, ", %zu of %zu native histogram samples", rep.histograms_total, rep.histograms_total);
    }
    if (rep.metadata_rejected) {
      rt_buf_printf(&out->msg, ", %zu of %zu metadata", rep.metadata_rejected, rep.metadata_total);
    }
    rt_buf_printf(&out->msg, "; first problem: %s)", dist_reason_names[rep.first]);
  } else {
    status = 200;
  }
  arena_put(d, arena);
  finish(d, out, status);
}
