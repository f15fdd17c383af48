/* ing_limits.c - the per-tenant series limits (max_global_series_per_user/_per_metric) taken
 * as this ingester's share of them, the per-tenant series gauge and ingestion rate, and the
 * UserStats and Cardinality calls. See ingester/DESIGN.md, "Series limits". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/limits.h"
#include "common/metrics.h"
#include "ingester/ing_int.h"
#include "ring/ring.h"

/* ------------------------------------------------------------------ local limits */

int64_t ing_local_limit(int64_t global, const ing_ring_view *v) {
  if (global <= 0 || !v || v->rf <= 0) {
    return global > 0 ? global : 0;
  }
  int64_t local;
  if (v->zones <= (size_t)v->rf) {
    /* every zone holds one copy of every series, spread over its ingesters */
    size_t n = v->healthy_in_zone ? v->healthy_in_zone : 1;
    local = global / (int64_t)n;
  } else {
    /* rf copies spread over all ingesters */
    size_t n = v->healthy ? v->healthy : 1;
    double l = (double)global * v->rf / (double)n;
    local = l >= (double)INT64_MAX ? INT64_MAX : (int64_t)l;
  }
  return local > 0 ? local : 1;
}

void ing_ring_view_of(const ring_snapshot *s, const char *id, ing_ring_view *out) {
  memset(out, 0, sizeof *out);
  long self = s && id ? ring_snapshot_find(s, id) : -1;
  if (self < 0) {
    return;
  }
  uint32_t zone = ring_snapshot_instance(s, (size_t)self)->zone_index;
  out->rf = ring_snapshot_rf(s);
  out->zones = ring_snapshot_zone_count(s);
  size_t n = ring_snapshot_count(s);
  for (size_t i = 0; i < n; i++) {
    const ring_instance *in = ring_snapshot_instance(s, i);
    if (in->state != RING_ACTIVE || !in->healthy) {
      continue;
    }
    out->healthy++;
    out->healthy_in_zone += in->zone_index == zone;
  }
}

void ing_set_ring(ing_ingester *ing, struct ring *r, const char *id) {
  char *nid = r && id ? rt_strdup(id) : NULL;
  pthread_mutex_lock(&ing->ring_mu);
  char *old = ing->ring_id;
  ing->ring = nid ? r : NULL;
  ing->ring_id = nid;
  pthread_mutex_unlock(&ing->ring_mu);
  rt_free(old, 0);
}

void ing_series_limits_load(ing_ingester *ing, const char *tenant, ing_series_limits *out) {
  rt_limits l;
  rt_limits_get(tenant, &l);
  ing_ring_view v = {0};
  if ((l.max_global_series_per_user > 0 || l.max_global_series_per_metric > 0)) {
    pthread_mutex_lock(&ing->ring_mu);
    if (ing->ring) {
      ring_snapshot *s = ring_snapshot_acquire(ing->ring);
      ing_ring_view_of(s, ing->ring_id, &v);
      ring_snapshot_release(s);
    }
    pthread_mutex_unlock(&ing->ring_mu);
  }
  out->loaded = true;
  out->user_global = l.max_global_series_per_user > 0 ? l.max_global_series_per_user : 0;
  out->metric_global = l.max_global_series_per_metric > 0 ? l.max_global_series_per_metric : 0;
  out->user_local = ing_local_limit(out->user_global, &v);
  out->metric_local = ing_local_limit(out->metric_global, &v);
}

/* Series of t whose __name__ is `metric` (the size of its postings list). */
static size_t ing_metric_series(const ing_tenant *t, const char *metric) {
  const char *nm = ing_intern_find(&t->strings, "__name__", 8);
  const char *v = nm ? ing_intern_find(&t->strings, metric, strlen(metric)) : NULL;
  const ing_lname *ln = v ? ing_pmap_get(&t->names, nm) : NULL;
  const ing_postings *p = ln ? ing_pmap_get(&ln->values, v) : NULL;
  return p ? p->n : 0;
}

const char *ing_series_limit_check(const ing_tenant *t, const ing_series_limits *l,
                                   const rt_label *ls, size_t n, char *buf, size_t cap) {
  if (l->user_local > 0 && (int64_t)t->nseries >= l->user_local) {
    snprintf(buf, cap,
             "per-tenant series limit exceeded: tenant \"%s\" has reached "
             "max_global_series_per_user=%lld (%lld on this ingester, which holds %u series); "
             "the new series is refused, samples of existing series are still accepted; see "
             "docs/errors.md#err-ringtail-max-series-per-user",
             t->name, (long long)l->user_global, (long long)l->user_local, t->nseries);
    return buf;
  }
  if (l->metric_local > 0) {
    const char *metric = rt_labels_get(ls, n, "__name__");
    size_t have = metric ? ing_metric_series(t, metric) : 0;
    if (metric && (int64_t)have >= l->metric_local) {
      snprintf(buf, cap,
               "per-metric series limit exceeded: tenant \"%s\" has reached "
               "max_global_series_per_metric=%lld for metric \"%.200s\" (%lld on this ingester, "
               "which holds %zu of its series); the new series is refused; see "
               "docs/errors.md#err-ringtail-max-series-per-metric",
               t->name, (long long)l->metric_global, metric, (long long)l->metric_local, have);
      return buf;
    }
  }
  return NULL;
}

/* ------------------------------------------------------------------ per-tenant counters */

void ing_tenant_gauge_init(ing_ingester *ing, ing_tenant *t) {
  if (ing->cfg.metrics && !t->m_active) {
    t->m_active = rt_gauge_get(ing->cfg.metrics, "ringtail_ingester_active_series",
                               "Series in the ingester's head, per tenant.", "user", t->name);
  }
  ing_tenant_gauge_update(t);
}

void ing_tenant_gauge_update(ing_tenant *t) {
  if (t->m_active) {
    rt_gauge_set(t->m_active, (double)t->nseries);
  }
}

void ing_update_rates(ing_ingester *ing) {
  uint64_t now = rt_mono_ns();
  pthread_rwlock_rdlock(&ing->tenants_lock);
  for (size_t i = 0; i < ing->ntenants; i++) {
    ing_tenant *t = ing->tenants[i];
    uint64_t total = atomic_load(&t->samples_total);
    if (t->rate_at_ns && now > t->rate_at_ns) {
      double secs = (double)(now - t->rate_at_ns) / 1e9;
      atomic_store(&t->ingestion_rate, (double)(total - t->rate_prev) / secs);
    }
    t->rate_prev = total;
    t->rate_at_ns = now;
  }
  pthread_rwlock_unlock(&ing->tenants_lock);
}

/* ------------------------------------------------------------------ UserStats */

rt_err ing_user_stats(ing_ingester *ing, const Ringtail__UserStatsRequest *req,
                      Ringtail__UserStatsResponse *resp, rt_arena *arena) {
  (void)arena;
  ringtail__user_stats_response__init(resp);
  rt_err err;
  ing_tenant *t = ing_tenant_get(ing, req->tenant ? req->tenant : "", false, &err);
  if (!t) {
    return err;
  }
  pthread_rwlock_rdlock(&t->lock);
  resp->num_series = t->nseries;
  resp->has_samples = t->max_t != INT64_MIN;
  resp->newest_sample_ms = resp->has_samples ? t->max_t : 0;
  pthread_rwlock_unlock(&t->lock);
  resp->ingestion_rate = atomic_load(&t->ingestion_rate);
  resp->api_ingestion_rate = resp->ingestion_rate;
  resp->rule_ingestion_rate = 0;
  return RT_OK;
}

/* ------------------------------------------------------------------ Cardinality */

/* One label name's counts: interned value -> series count (stored in the pointer). */
typedef struct ing_card_name {
  const char *name;
  ing_pmap counts;
} ing_card_name;

static int ing_card_name_cmp(const void *a, const void *b) {
  return strcmp(((const ing_card_name *)a)->name, ((const ing_card_name *)b)->name);
}

static int ing_lvc_cmp(const void *a, const void *b) {
  const Ringtail__LabelValueCount *x = *(Ringtail__LabelValueCount *const *)a;
  const Ringtail__LabelValueCount *y = *(Ringtail__LabelValueCount *const *)b;
  return strcmp(x->value, y->value);
}

rt_err ing_cardinality(ing_ingester *ing, const Ringtail__CardinalityRequest *req,
                       Ringtail__CardinalityResponse *resp, rt_arena *arena) {
  ringtail__cardinality_response__init(resp);
  rt_err err;
  ing_tenant *t = ing_tenant_get(ing, req->tenant ? req->tenant : "", false, &err);
  if (!t) {
    return err;
  }
  rt_matcher *ms = NULL;
  err = ing_matchers(req->matchers, req->n_matchers, &ms);
  if (err) {
    return err;
  }
  pthread_rwlock_rdlock(&t->lock);
  /* the label names asked for (interned; a name never seen has no series) */
  size_t nnames = 0;
  ing_card_name *names = NULL;
  size_t cap = req->n_label_names ? req->n_label_names : t->names.n;
  names = rt_arena_alloc(arena, (cap ? cap : 1) * sizeof *names);
  if (!names) {
    err = RT_ENOMEM;
  }
  if (!err && req->n_label_names) {
    for (size_t i = 0; i < req->n_label_names; i++) {
      const char *n = req->label_names[i] ? req->label_names[i] : "";
      const char *in = ing_intern_find(&t->strings, n, strlen(n));
      bool dup = false;
      for (size_t k = 0; k < nnames && !dup; k++) {
        dup = names[k].name == in;
      }
      if (in && !dup && ing_pmap_get(&t->names, in)) {
        names[nnames++] = (ing_card_name){.name = in};
      }
    }
  } else if (!err) {
    for (size_t i = 0; i < t->names.cap; i++) {
      if (t->names.keys[i]) {
        names[nnames++] = (ing_card_name){.name = t->names.keys[i]};
      }
    }
  }
  uint64_t nseries = 0;
  if (!err && req->n_matchers == 0) {
    /* every series: the postings lists are the counts */
    nseries = t->nseries;
    for (size_t k = 0; !err && k < nnames; k++) {
      const ing_lname *ln = ing_pmap_get(&t->names, names[k].name);
      for (size_t j = 0; !err && ln && j < ln->values.cap; j++) {
        const ing_postings *p = ln->values.vals[j];
        if (ln->values.keys[j] && p->n) {
          err = ing_pmap_put(&names[k].counts, p->value, (void *)(uintptr_t)p->n);
        }
      }
    }
  } else if (!err) {
    uint32_t *refs;
    size_t nrefs;
    err = ing_head_postings(t, ms, req->n_matchers, arena, &refs, &nrefs);
    for (size_t i = 0; !err && i < nrefs; i++) {
      const ing_series *s = ing_series_by_ref(t, refs[i]);
      nseries++;
      for (size_t k = 0; !err && k < nnames; k++) {
        const char *v = rt_labels_get(s->labels, s->nlabels, names[k].name);
        if (v) {
          uintptr_t c = (uintptr_t)ing_pmap_get(&names[k].counts, v);
          err = ing_pmap_put(&names[k].counts, v, (void *)(c + 1));
        }
      }
    }
  }
  /* the answer, copied out of the head before the lock goes */
  resp->num_series = nseries;
  if (!err && nnames) {
    qsort(names, nnames, sizeof *names, ing_card_name_cmp);
    resp->labels = rt_arena_alloc(arena, nnames * sizeof *resp->labels);
    if (!resp->labels) {
      err = RT_ENOMEM;
    }
    for (size_t k = 0; !err && k < nnames; k++) {
      const ing_pmap *m = &names[k].counts;
      if (m->n == 0) {
        continue;
      }
      Ringtail__LabelCardinality *lc = rt_arena_alloc(arena, sizeof *lc);
      Ringtail__LabelValueCount **vv = rt_arena_alloc(arena, m->n * sizeof *vv);
      Ringtail__LabelValueCount *vc = rt_arena_alloc(arena, m->n * sizeof *vc);
      if (!lc || !vv || !vc) {
        err = RT_ENOMEM;
        break;
      }
      ringtail__label_cardinality__init(lc);
      lc->name = rt_arena_strndup(arena, names[k].name, strlen(names[k].name));
      size_t nv = 0;
      for (size_t j = 0; j < m->cap && lc->name; j++) {
        if (!m->keys[j]) {
          continue;
        }
        ringtail__label_value_count__init(&vc[nv]);
        vc[nv].value = rt_arena_strndup(arena, m->keys[j], strlen(m->keys[j]));
        vc[nv].series = (uint64_t)(uintptr_t)m->vals[j];
        if (!vc[nv].value) {
          break;
        }
        vv[nv] = &vc[nv];
        nv++;
      }
      if (!lc->name || nv != m->n) {
        err = RT_ENOMEM;
        break;
      }
      qsort(vv, nv, sizeof *vv, ing_lvc_cmp);
      lc->values = vv;
      lc->n_values = nv;
      resp->labels[resp->n_labels++] = lc;
    }
  }
  pthread_rwlock_unlock(&t->lock);
  for (size_t k = 0; k < nnames; k++) {
    ing_pmap_fini(&names[k].counts);
  }
  ing_matchers_free(ms, req->n_matchers);
  if (err) {
    ringtail__cardinality_response__init(resp);
  }
  return err;
}
