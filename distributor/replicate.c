/* replicate.c - replication of a validated request over the ring with a write quorum.
 *
 * Steps: hash each series (tenant + labels) to its token; take the write replication set of
 * the token from the current ring snapshot; group series by ingester (dist_plan_build);
 * encode one PushRequest per ingester and start all pushes at once (rt_fanout, one cached
 * client per ingester endpoint); wait until every series has its quorum (or can no longer get
 * it); pushes still running then finish on their own. A series' data errors (4xx) are taken
 * from the first replica that answered for it. */
#include "distributor/replicate.h"

#include <stdio.h>
#include <string.h>

#include "common/fanout.h"
#include "common/labels.h"
#include "common/log.h"
#include "distributor/dist_int.h"
#include "rpc.pb-c.h"

struct dist_repl {
  ring *ring;
  int timeout_ms;
  rt_rpc_pool *pool;
};

/* ------------------------------------------------------------------ plan */

rt_err dist_plan_build(const ring_snapshot *snap, const uint32_t *tokens, size_t n,
                       rt_arena *arena, dist_plan *out) {
  memset(out, 0, sizeof *out);
  size_t ninst = ring_snapshot_count(snap);
  out->nseries = n;
  out->nrep = rt_arena_alloc(arena, n ? n : 1);
  out->quorum = rt_arena_alloc(arena, n ? n : 1);
  out->unavailable = rt_arena_alloc(arena, (n ? n : 1) * sizeof(bool));
  ring_replication_set *sets = rt_arena_alloc(arena, (n ? n : 1) * sizeof *sets);
  /* per instance: how many series, then its group number */
  uint32_t *count = rt_arena_alloc(arena, (ninst ? ninst : 1) * sizeof *count);
  int32_t *gid = rt_arena_alloc(arena, (ninst ? ninst : 1) * sizeof *gid);
  if (!out->nrep || !out->quorum || !out->unavailable || !sets || !count || !gid) {
    return RT_ENOMEM;
  }
  memset(count, 0, (ninst ? ninst : 1) * sizeof *count);
  for (size_t i = 0; i < n; i++) {
    rt_err e = ring_snapshot_get(snap, tokens[i], RING_OP_WRITE, &sets[i]);
    out->unavailable[i] = e != RT_OK || sets[i].quorum <= 0;
    out->quorum[i] = sets[i].quorum > 0 ? (uint8_t)sets[i].quorum : 1;
    out->nrep[i] = out->unavailable[i] ? 0 : (uint8_t)sets[i].n;
    if (out->unavailable[i]) {
      continue;
    }
    for (uint32_t k = 0; k < sets[i].n; k++) {
      count[sets[i].inst[k]]++;
    }
  }
  size_t ng = 0;
  for (size_t k = 0; k < ninst; k++) {
    gid[k] = count[k] ? (int32_t)ng++ : -1;
  }
  out->ngroups = ng;
  out->inst = rt_arena_alloc(arena, (ng ? ng : 1) * sizeof *out->inst);
  out->series = rt_arena_alloc(arena, (ng ? ng : 1) * sizeof *out->series);
  out->nseries_of = rt_arena_alloc(arena, (ng ? ng : 1) * sizeof *out->nseries_of);
  if (!out->inst || !out->series || !out->nseries_of) {
    return RT_ENOMEM;
  }
  for (size_t k = 0; k < ninst; k++) {
    if (gid[k] >= 0) {
      size_t g = (size_t)gid[k];
      out->inst[g] = (uint32_t)k;
      out->nseries_of[g] = 0;
      out->series[g] = rt_arena_alloc(arena, count[k] * sizeof(uint32_t));
      if (!out->series[g]) {
        return RT_ENOMEM;
      }
    }
  }
  for (size_t i = 0; i < n; i++) {
    if (out->unavailable[i]) {
      continue;
    }
    for (uint32_t k = 0; k < sets[i].n; k++) {
      size_t g = (size_t)gid[sets[i].inst[k]];
      out->series[g][out->nseries_of[g]++] = (uint32_t)i;
    }
  }
  return RT_OK;
}

size_t dist_plan_eval(const dist_plan *p, const int8_t *state, int8_t *verdict,
                      size_t *undecided) {
  size_t n = p->nseries;
  /* successes and failures per series, counted in the verdict array's space when given */
  uint16_t ok_stack[256], bad_stack[256];
  uint16_t *ok = ok_stack, *bad = bad_stack;
  bool heap = n > 256;
  if (heap) {
    ok = rt_calloc(n, sizeof *ok);
    bad = rt_calloc(n, sizeof *bad);
    if (!ok || !bad) {
      /* cannot count: call everything undecided (the caller waits for all calls) */
      rt_free(ok, n * sizeof *ok);
      rt_free(bad, n * sizeof *bad);
      if (undecided) {
        *undecided = n;
      }
      if (verdict) {
        memset(verdict, 0, n);
      }
      return 0;
    }
  } else {
    memset(ok, 0, n * sizeof *ok);
    memset(bad, 0, n * sizeof *bad);
  }
  for (size_t g = 0; g < p->ngroups; g++) {
    if (state[g] == 0) {
      continue;
    }
    for (size_t k = 0; k < p->nseries_of[g]; k++) {
      uint32_t s = p->series[g][k];
      if (state[g] > 0) {
        ok[s]++;
      } else {
        bad[s]++;
      }
    }
  }
  size_t failed = 0, open = 0;
  for (size_t i = 0; i < n; i++) {
    int8_t v;
    if (p->unavailable[i]) {
      v = -1;
    } else if (ok[i] >= p->quorum[i]) {
      v = 1;
    } else if ((int)p->nrep[i] - (int)bad[i] < (int)p->quorum[i]) {
      v = -1;
    } else {
      v = 0;
    }
    failed += v < 0;
    open += v == 0;
    if (verdict) {
      verdict[i] = v;
    }
  }
  if (heap) {
    rt_free(ok, n * sizeof *ok);
    rt_free(bad, n * sizeof *bad);
  }
  if (undecided) {
    *undecided = open;
  }
  return failed;
}

/* ------------------------------------------------------------------ replicator */

rt_err dist_repl_create(ring *r, int timeout_ms, dist_repl **out) {
  *out = NULL;
  dist_repl *rp = rt_calloc(1, sizeof *rp);
  if (!rp) {
    return RT_ENOMEM;
  }
  rp->ring = r;
  rp->timeout_ms = timeout_ms > 0 ? timeout_ms : 2000;
  rt_err e = rt_rpc_pool_create(&rp->pool);
  if (e != RT_OK) {
    rt_free(rp, sizeof *rp);
    return e;
  }
  *out = rp;
  return RT_OK;
}

void dist_repl_destroy(dist_repl *rp) {
  if (!rp) {
    return;
  }
  rt_rpc_pool_destroy(rp->pool);
  rt_free(rp, sizeof *rp);
}

size_t dist_repl_arbiters(dist_repl *rp, uint32_t token, rt_rpc_client **out, size_t cap,
                          int *quorum) {
  ring_snapshot *snap = ring_snapshot_acquire(rp->ring);
  ring_replication_set set = {0};
  /* a short set (RT_EUNAVAIL) is still asked: its answers can not reach the quorum alone,
   * which makes the election unknown (503) rather than decided by too few */
  rt_err e = ring_snapshot_get(snap, token, RING_OP_WRITE, &set);
  *quorum = ring_snapshot_majority(snap);
  size_t n = 0;
  for (uint32_t k = 0; (e == RT_OK || e == RT_EUNAVAIL) && k < set.n && n < cap; k++) {
    const ring_instance *in = ring_snapshot_instance(snap, set.inst[k]);
    rt_rpc_client *c = in->rpc_addr[0] ? rt_rpc_pool_get(rp->pool, in->rpc_addr) : NULL;
    if (c) {
      out[n++] = c;
    }
  }
  ring_snapshot_release(snap);
  return n;
}

static dist_reason reason_of(Ringtail__SampleError code) {
  switch (code) {
  case RINGTAIL__SAMPLE_ERROR__SAMPLE_DUPLICATE_TIMESTAMP:
    return DIST_R_DUPLICATE_TIMESTAMP;
  case RINGTAIL__SAMPLE_ERROR__SAMPLE_OUT_OF_ORDER:
    return DIST_R_OUT_OF_ORDER;
  case RINGTAIL__SAMPLE_ERROR__SAMPLE_TOO_OLD:
    return DIST_R_INGESTER_TOO_OLD;
  case RINGTAIL__SAMPLE_ERROR__SAMPLE_LIMIT:
    return DIST_R_PER_TENANT_LIMIT;
  default:
    return DIST_R_OUT_OF_ORDER;
  }
}

static bool retryable(rt_err e) {
  return e == RT_ETIMEDOUT || e == RT_EUNAVAIL || e == RT_ECLOSED;
}

int dist_repl_push(dist_repl *rp, const char *tenant, const dist_request *req, rt_arena *arena,
                   dist_report *rep, rt_buf *msg, uint64_t *accepted, uint64_t *failed_calls) {
  *accepted = 0;
  *failed_calls = 0;
  const Prometheus__WriteRequest *wr = req->wr;
  /* no series but metadata: one pseudo-series placed by the tenant alone carries it */
  size_t nser = wr->n_timeseries;
  size_t n = nser ? nser : 1;
  uint32_t *tokens = rt_arena_alloc(arena, n * sizeof *tokens);
  if (!tokens) {
    rt_buf_puts(msg, "out of memory");
    return 500;
  }
  size_t lcap = 0;
  rt_label *lv = NULL;
  for (size_t i = 0; i < nser; i++) {
    const Prometheus__TimeSeries *ts = wr->timeseries[i];
    if (ts->n_labels > lcap) {
      lcap = ts->n_labels * 2;
      lv = rt_arena_alloc(arena, lcap * sizeof *lv);
      if (!lv) {
        rt_buf_puts(msg, "out of memory");
        return 500;
      }
    }
    for (size_t k = 0; k < ts->n_labels; k++) {
      lv[k].name = ts->labels[k]->name;
      lv[k].value = ts->labels[k]->value;
    }
    tokens[i] = rt_series_token(rt_series_hash(tenant, lv, ts->n_labels));
  }
  if (!nser) {
    tokens[0] = rt_series_token(rt_series_hash(tenant, NULL, 0));
  }

  ring_snapshot *snap = ring_snapshot_acquire(rp->ring);
  dist_plan plan;
  if (dist_plan_build(snap, tokens, n, arena, &plan) != RT_OK) {
    ring_snapshot_release(snap);
    rt_buf_puts(msg, "out of memory");
    return 500;
  }
  int8_t *state = rt_arena_alloc(arena, plan.ngroups ? plan.ngroups : 1);
  size_t *call_of = rt_arena_alloc(arena, (plan.ngroups ? plan.ngroups : 1) * sizeof *call_of);
  int8_t *verdict = rt_arena_alloc(arena, n);
  rt_fanout *fo = NULL;
  if (!state || !call_of || !verdict || rt_fanout_create(plan.ngroups, &fo) != RT_OK) {
    ring_snapshot_release(snap);
    rt_buf_puts(msg, "out of memory");
    return 500;
  }
  memset(state, 0, plan.ngroups ? plan.ngroups : 1);
  const char *first_err = NULL;
  rt_err first_code = RT_OK;
  rt_buf sync_reply = RT_BUF_INIT;
  char sync_err[512];
  size_t first_group = 0;
  /* encode and start one push per ingester */
  for (size_t g = 0; g < plan.ngroups; g++) {
    call_of[g] = SIZE_MAX;
    const ring_instance *in = ring_snapshot_instance(snap, plan.inst[g]);
    Prometheus__WriteRequest sub = *wr;
    Prometheus__TimeSeries **tsv = NULL;
    dist_series_info *info = NULL;
    if (nser) {
      tsv = rt_arena_alloc(arena, plan.nseries_of[g] * sizeof *tsv);
      info = req->info ? rt_arena_alloc(arena, plan.nseries_of[g] * sizeof *info) : NULL;
      if (!tsv || (req->info && !info)) {
        state[g] = -1;
        continue;
      }
      for (size_t k = 0; k < plan.nseries_of[g]; k++) {
        tsv[k] = wr->timeseries[plan.series[g][k]];
        if (info) {
          info[k] = req->info[plan.series[g][k]];
        }
      }
      sub.timeseries = tsv;
      sub.n_timeseries = plan.nseries_of[g];
    }
    dist_request sreq = {.wr = &sub, .info = info, .metadata_bad = NULL,
                         .decompressed_len = req->decompressed_len};
    uint8_t *buf = NULL;
    size_t size = 0;
    rt_rpc_client *c = in->rpc_addr[0] ? rt_rpc_pool_get(rp->pool, in->rpc_addr) : NULL;
    if (c && plan.ngroups == 1 && dist_encode_push(tenant, &sreq, arena, &buf, &size) == RT_OK) {
      /* one ingester (a single process): call it on this thread, nothing to wait for */
      char em[512];
      rt_err e = rt_rpc_call(c, "ingester.Push", buf, size, rp->timeout_ms, &sync_reply, em,
                             sizeof em);
      state[g] = e == RT_OK ? 1 : -1;
      if (e != RT_OK) {
        rt_warn("distributor", "ingester push failed", "ingester=%s endpoint=%s err=\"%s\"",
                in->id, in->rpc_addr, em[0] ? em : rt_strerror(e));
        snprintf(sync_err, sizeof sync_err, "%s", em[0] ? em : rt_strerror(e));
        first_err = sync_err;
        first_code = e;
        first_group = g;
      }
      continue;
    }
    if (!c || dist_encode_push(tenant, &sreq, arena, &buf, &size) != RT_OK ||
        rt_fanout_start(fo, c, "ingester.Push", buf, size, rp->timeout_ms, &call_of[g]) != RT_OK) {
      state[g] = -1;
      if (!first_err) {
        first_err = c ? "out of memory" : "no RPC address in the ring";
        first_code = RT_EUNAVAIL;
        first_group = g;
      }
    }
  }

  /* wait until each series is decided; when one failed (the answer is a 5xx), also for the
   * calls still running, so that the samples they stored are counted */
  uint64_t deadline = rt_mono_ns() + (uint64_t)(rp->timeout_ms + 1000) * 1000000ull;
  size_t seen = 0;
  size_t started = rt_fanout_count(fo);
  size_t failed = 0, undecided = 0;
  for (;;) {
    for (size_t g = 0; g < plan.ngroups; g++) {
      rt_err e;
      const char *em;
      if (state[g] == 0 && call_of[g] != SIZE_MAX &&
          rt_fanout_result(fo, call_of[g], &e, NULL, &em)) {
        state[g] = e == RT_OK ? 1 : -1;
        if (e != RT_OK) {
          const ring_instance *in = ring_snapshot_instance(snap, plan.inst[g]);
          rt_warn("distributor", "ingester push failed", "ingester=%s endpoint=%s err=\"%s\"",
                  in->id, in->rpc_addr, em);
          if (!first_err || (!retryable(first_code) && retryable(e))) {
            first_err = em;
            first_code = e;
            first_group = g;
          }
        }
      }
    }
    failed = dist_plan_eval(&plan, state, verdict, &undecided);
    if ((undecided == 0 && failed == 0) || seen >= started || rt_mono_ns() >= deadline) {
      break;
    }
    seen = rt_fanout_wait(fo, seen, deadline);
  }
  if (undecided) {
    /* calls past the deadline count as failed */
    for (size_t g = 0; g < plan.ngroups; g++) {
      if (state[g] == 0) {
        state[g] = -1;
        if (!first_err) {
          first_err = "timed out";
          first_code = RT_ETIMEDOUT;
          first_group = g;
        }
      }
    }
    failed = dist_plan_eval(&plan, state, verdict, &undecided);
  }
  for (size_t g = 0; g < plan.ngroups; g++) {
    *failed_calls += state[g] < 0;
  }

  int status = 0;
  if (failed) {
    size_t first_series = 0;
    while (first_series < n && verdict[first_series] >= 0) {
      first_series++;
    }
    bool ring_short = first_series < n && plan.unavailable[first_series];
    status = (ring_short || !first_err || retryable(first_code)) ? 503 : 500;
    rt_buf_reset(msg);
    rt_buf_printf(msg, "write quorum not reached for %zu of %zu series", failed, nser);
    if (nser && first_series < nser) {
      rt_buf_puts(msg, " (first: ");
      const Prometheus__TimeSeries *ts = wr->timeseries[first_series];
      dist_format_series(msg, ts->labels, ts->n_labels, 256);
      rt_buf_puts(msg, ")");
    }
    if (ring_short) {
      rt_buf_printf(msg, ": too few healthy ACTIVE ingesters in the ring for its replication set");
    }
    if (first_err) {
      const ring_instance *in = ring_snapshot_instance(snap, plan.inst[first_group]);
      rt_buf_printf(msg, "; failed pushing to ingester %s", in->id);
      if (strcmp(in->id, in->rpc_addr) != 0) {
        rt_buf_printf(msg, " (%s)", in->rpc_addr); /* a static ring's ids are the addresses */
      }
      rt_buf_printf(msg, ": %s", first_err);
    }
  }

  /* data errors and counts from the answers that came back */
  uint8_t *reported = rt_arena_alloc(arena, n);
  if (reported) {
    memset(reported, 0, n);
  }
  ProtobufCAllocator al = rt_arena_pb_allocator(arena);
  uint64_t acc = 0;
  for (size_t g = 0; g < plan.ngroups && reported; g++) {
    if (state[g] <= 0 || (call_of[g] == SIZE_MAX && plan.ngroups != 1)) {
      continue;
    }
    const rt_buf *reply = NULL;
    if (call_of[g] == SIZE_MAX && plan.ngroups == 1) {
      reply = &sync_reply;
    } else if (!rt_fanout_result(fo, call_of[g], NULL, &reply, NULL)) {
      continue;
    }
    Ringtail__PushResponse *resp = ringtail__push_response__unpack(
        &al, reply->len, (const uint8_t *)(reply->data ? reply->data : ""));
    if (!resp) {
      continue;
    }
    /* samples of this group's series that nobody reported for yet */
    uint64_t gsamples = 0, own = 0;
    for (size_t k = 0; k < plan.nseries_of[g]; k++) {
      uint32_t s = plan.series[g][k];
      size_t ns = nser ? wr->timeseries[s]->n_samples : 0;
      gsamples += ns;
      if (reported[s] == 0) {
        own += ns;
      }
    }
    uint64_t done = resp->samples_accepted + resp->samples_duplicate;
    uint64_t grejected = gsamples > done ? gsamples - done : 0;
    size_t nown = 0;
    for (size_t k = 0; k < resp->n_errors; k++) {
      uint32_t idx = resp->errors[k]->index;
      if (idx < plan.nseries_of[g] && reported[plan.series[g][idx]] == 0) {
        nown++;
      }
    }
    uint64_t rejected = resp->n_errors ? grejected * nown / resp->n_errors : 0;
    uint64_t left = rejected;
    dist_reason first_why = DIST_R_OK;
    for (size_t k = 0; k < resp->n_errors; k++) {
      Ringtail__SeriesError *se = resp->errors[k];
      if (se->index >= plan.nseries_of[g] || reported[plan.series[g][se->index]]) {
        continue;
      }
      dist_reason why = reason_of(se->code);
      if (first_why == DIST_R_OK) {
        first_why = why;
      }
      if (rep->first == DIST_R_OK) {
        rep->first = why;
        snprintf(rep->msg, sizeof rep->msg, "%s",
                 se->message && *se->message ? se->message : dist_reason_names[why]);
      }
      if (left) {
        rep->rejected[why]++;
        left--;
      }
    }
    if (nown) {
      rep->rejected[first_why] += left;
      rep->samples_rejected += rejected;
    }
    acc += own > rejected ? own - rejected : 0;
    for (size_t k = 0; k < plan.nseries_of[g]; k++) {
      reported[plan.series[g][k]] = 1;
    }
  }
  *accepted = acc;
  rt_buf_free(&sync_reply);
  rt_fanout_release(fo);
  ring_snapshot_release(snap);
  return status;
}
