/* qlimits.c - the read limits of one query, shared by its sub-queries (see querier.h and
 * docs/limits.md). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/limits.h"
#include "querier/querier_int.h"

#define QRY_BUDGET_QUERY_MAX 256

struct qry_budget {
  rt_limits lim;
  char tenant[256];
  char query[4 * QRY_BUDGET_QUERY_MAX + 8];
  int64_t now_ms;
  uint64_t deadline_ns;     /* 0 = none */
  pthread_mutex_t mu;
  /* the set of fetched series hashes (open addressing; 0 is kept aside) */
  uint64_t *set;
  size_t cap, n;
  bool has_zero;
  uint64_t chunk_bytes, samples;
  bool breached;
  char msg[1024];
  bool retention_known;     /* the query's retention start is resolved (retention_start) */
  int64_t retention_start;
};

static const struct {
  const char *name;   /* the limit's key in the runtime-config file */
  const char *what;
  const char *id;     /* docs/errors.md anchor */
} kinds[] = {
    [QRY_LIM_SERIES] = {"max_fetched_series_per_query", "the query fetched more series than allowed",
                        "err-ringtail-max-series-per-query"},
    [QRY_LIM_CHUNK_BYTES] = {"max_fetched_chunk_bytes_per_query",
                             "the query fetched more bytes of chunks than allowed",
                             "err-ringtail-max-chunks-bytes-per-query"},
    [QRY_LIM_SAMPLES] = {"max_samples_per_query", "the query loaded more samples than allowed",
                         "err-ringtail-max-samples-per-query"},
    [QRY_LIM_LOOKBACK] = {"max_query_lookback", "the query reaches further into the past than allowed",
                          "err-ringtail-max-query-lookback"},
    [QRY_LIM_LENGTH] = {"max_query_length", "the query's time range is longer than allowed",
                        "err-ringtail-max-query-length"},
    [QRY_LIM_TIMEOUT] = {"query_timeout", "the query ran longer than allowed",
                         "err-ringtail-query-timeout"},
};

/* A duration the way the runtime-config file takes it: "1d2h30m", "90s", "1500ms". */
static void fmt_dur(char *b, size_t len, int64_t ms) {
  static const struct {
    const char *u;
    int64_t ms;
  } units[] = {{"y", 365LL * 86400000}, {"w", 7LL * 86400000}, {"d", 86400000}, {"h", 3600000},
               {"m", 60000},            {"s", 1000},             {"ms", 1}};
  size_t o = 0;
  if (ms <= 0) {
    snprintf(b, len, "0s");
    return;
  }
  for (size_t i = 0; i < sizeof units / sizeof units[0] && o < len; i++) {
    if (ms >= units[i].ms) {
      int w = snprintf(b + o, len - o, "%lld%s", (long long)(ms / units[i].ms), units[i].u);
      if (w < 0) {
        break;
      }
      o += (size_t)w;
      ms %= units[i].ms;
    }
  }
}

void qry_limit_message(char *buf, size_t len, qry_limit_kind kind, int64_t value, int64_t got,
                       const char *tenant, const char *query) {
  char v[64], g[64] = "";
  switch (kind) {
  case QRY_LIM_LOOKBACK:
  case QRY_LIM_LENGTH:
  case QRY_LIM_TIMEOUT:
    fmt_dur(v, sizeof v, value);
    break;
  case QRY_LIM_CHUNK_BYTES:
    snprintf(v, sizeof v, "%lld bytes", (long long)value);
    break;
  default:
    snprintf(v, sizeof v, "%lld", (long long)value);
    break;
  }
  if (kind == QRY_LIM_LENGTH) {
    char d[48];
    fmt_dur(d, sizeof d, got);
    snprintf(g, sizeof g, " (query length %s)", d);
  } else if (kind == QRY_LIM_LOOKBACK) {
    char d[48];
    fmt_dur(d, sizeof d, got);
    snprintf(g, sizeof g, " (query starts %s ago)", d);
  }
  snprintf(buf, len, "%s%s: limit %s=%s for tenant \"%s\", query %s; see docs/errors.md#%s",
           kinds[kind].what, g, kinds[kind].name, v, tenant, query, kinds[kind].id);
}

qry_budget *qry_budget_new(const char *tenant, const char *query) {
  qry_budget *b = rt_calloc(1, sizeof *b);
  if (!b) {
    return NULL;
  }
  rt_limits_get(tenant, &b->lim);
  snprintf(b->tenant, sizeof b->tenant, "%s", tenant);
  /* Go's %.Nq of the query: quoted, escaped, cut to QRY_BUDGET_QUERY_MAX runes */
  rt_buf qb = RT_BUF_INIT;
  qry_go_quote(&qb, query ? query : "", query ? strlen(query) : 0, QRY_BUDGET_QUERY_MAX);
  snprintf(b->query, sizeof b->query, "%.*s", (int)qb.len, qb.data ? qb.data : "\"\"");
  rt_buf_free(&qb);
  b->now_ms = rt_now_ms();
  if (b->lim.query_timeout_ms > 0) {
    b->deadline_ns = rt_mono_ns() + (uint64_t)b->lim.query_timeout_ms * 1000000ull;
  }
  pthread_mutex_init(&b->mu, NULL);
  return b;
}

void qry_budget_free(qry_budget *b) {
  if (!b) {
    return;
  }
  pthread_mutex_destroy(&b->mu);
  rt_free(b->set, b->cap * sizeof *b->set);
  rt_free(b, sizeof *b);
}

const rt_limits *qry_budget_limits(const qry_budget *b) { return &b->lim; }

int64_t qry_budget_min_time(const qry_budget *b) {
  if (b->lim.max_query_lookback_ms <= 0 || b->now_ms < INT64_MIN + b->lim.max_query_lookback_ms) {
    return INT64_MIN;
  }
  return b->now_ms - b->lim.max_query_lookback_ms;
}

bool qry_budget_retention(qry_budget *b, int64_t *start) {
  pthread_mutex_lock(&b->mu);
  bool known = b->retention_known;
  if (known) {
    *start = b->retention_start;
  }
  pthread_mutex_unlock(&b->mu);
  return known;
}

int64_t qry_budget_set_retention(qry_budget *b, int64_t start) {
  pthread_mutex_lock(&b->mu);
  if (!b->retention_known) {
    b->retention_known = true;
    b->retention_start = start;
  }
  start = b->retention_start;
  pthread_mutex_unlock(&b->mu);
  return start;
}

static int64_t limit_value(const qry_budget *b, qry_limit_kind kind) {
  switch (kind) {
  case QRY_LIM_SERIES:
    return b->lim.max_fetched_series_per_query;
  case QRY_LIM_CHUNK_BYTES:
    return b->lim.max_fetched_chunk_bytes_per_query;
  case QRY_LIM_SAMPLES:
    return b->lim.max_samples_per_query;
  case QRY_LIM_LOOKBACK:
    return b->lim.max_query_lookback_ms;
  case QRY_LIM_LENGTH:
    return b->lim.max_query_length_ms;
  case QRY_LIM_TIMEOUT:
    return b->lim.query_timeout_ms;
  }
  return 0;
}

/* With b->mu held. */
static rt_err fail_locked(qry_budget *b, qry_limit_kind kind, int64_t got) {
  if (!b->breached) {
    b->breached = true;
    qry_limit_message(b->msg, sizeof b->msg, kind, limit_value(b, kind), got, b->tenant, b->query);
  }
  return RT_ELIMIT;
}

rt_err qry_budget_fail(qry_budget *b, qry_limit_kind kind, int64_t got) {
  pthread_mutex_lock(&b->mu);
  rt_err e = fail_locked(b, kind, got);
  pthread_mutex_unlock(&b->mu);
  return e;
}

bool qry_budget_breached(qry_budget *b, char *msg, size_t len) {
  pthread_mutex_lock(&b->mu);
  bool br = b->breached;
  if (br && msg && len) {
    snprintf(msg, len, "%s", b->msg);
  }
  pthread_mutex_unlock(&b->mu);
  return br;
}

rt_err qry_budget_check(qry_budget *b) {
  pthread_mutex_lock(&b->mu);
  rt_err e = RT_OK;
  if (b->breached) {
    e = RT_ELIMIT;
  } else if (b->deadline_ns && rt_mono_ns() > b->deadline_ns) {
    e = fail_locked(b, QRY_LIM_TIMEOUT, 0);
  }
  pthread_mutex_unlock(&b->mu);
  return e;
}

rt_err qry_budget_check_range(qry_budget *b, int64_t start, int64_t end) {
  if (b->lim.max_query_length_ms > 0 && end > start && end - start > b->lim.max_query_length_ms) {
    return qry_budget_fail(b, QRY_LIM_LENGTH, end - start);
  }
  int64_t min = qry_budget_min_time(b);
  if (min != INT64_MIN && start < min) {
    return qry_budget_fail(b, QRY_LIM_LOOKBACK, b->now_ms - start);
  }
  return RT_OK;
}

static size_t slot_of(uint64_t h, size_t cap) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return (size_t)h & (cap - 1);
}

/* With b->mu held: adds h to the set; false on OOM. */
static bool set_add(qry_budget *b, uint64_t h) {
  if (h == 0) {
    if (!b->has_zero) {
      b->has_zero = true;
      b->n++;
    }
    return true;
  }
  if ((b->n + 1) * 2 > b->cap) {
    size_t nc = b->cap ? b->cap * 2 : 256;
    uint64_t *ns = rt_calloc(nc, sizeof *ns);
    if (!ns) {
      return false;
    }
    for (size_t i = 0; i < b->cap; i++) {
      if (b->set[i]) {
        size_t k = slot_of(b->set[i], nc);
        while (ns[k]) {
          k = (k + 1) & (nc - 1);
        }
        ns[k] = b->set[i];
      }
    }
    rt_free(b->set, b->cap * sizeof *b->set);
    b->set = ns;
    b->cap = nc;
  }
  size_t k = slot_of(h, b->cap);
  while (b->set[k]) {
    if (b->set[k] == h) {
      return true;
    }
    k = (k + 1) & (b->cap - 1);
  }
  b->set[k] = h;
  b->n++;
  return true;
}

rt_err qry_budget_add(qry_budget *b, const uint64_t *hashes, size_t nhash, uint64_t chunk_bytes,
                      uint64_t samples) {
  rt_err e = RT_OK;
  pthread_mutex_lock(&b->mu);
  if (b->breached) {
    e = RT_ELIMIT;
    goto out;
  }
  b->chunk_bytes += chunk_bytes;
  b->samples += samples;
  if (b->lim.max_fetched_chunk_bytes_per_query > 0 &&
      b->chunk_bytes > (uint64_t)b->lim.max_fetched_chunk_bytes_per_query) {
    e = fail_locked(b, QRY_LIM_CHUNK_BYTES, 0);
    goto out;
  }
  if (b->lim.max_samples_per_query > 0 &&
      b->samples > (uint64_t)b->lim.max_samples_per_query) {
    e = fail_locked(b, QRY_LIM_SAMPLES, 0);
    goto out;
  }
  if (b->lim.max_fetched_series_per_query > 0) {
    for (size_t i = 0; i < nhash; i++) {
      if (!set_add(b, hashes[i])) {
        e = RT_ENOMEM;
        goto out;
      }
      if (b->n > (uint64_t)b->lim.max_fetched_series_per_query) {
        e = fail_locked(b, QRY_LIM_SERIES, 0);
        goto out;
      }
    }
  }
  if (b->deadline_ns && rt_mono_ns() > b->deadline_ns) {
    e = fail_locked(b, QRY_LIM_TIMEOUT, 0);
  }
out:
  pthread_mutex_unlock(&b->mu);
  return e;
}
