/* limits.c - the per-tenant limits table and its runtime-config file. See limits.h. */
#include "common/limits.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/config.h"
#include "common/log.h"

typedef enum lim_type { L_INT, L_INT64, L_BOOL, L_DUR, L_SIZE, L_LABEL } lim_type;

typedef struct lim_key {
  const char *name;
  lim_type type;
  size_t off;
} lim_key;

#define LOFF(f) offsetof(rt_limits, f)

static const lim_key lim_keys[] = {
    {"ingestion_rate", L_INT64, LOFF(ingestion_rate)},
    {"ingestion_burst_size", L_INT64, LOFF(ingestion_burst_size)},
    {"max_label_names_per_series", L_INT, LOFF(max_label_names_per_series)},
    {"max_label_name_length", L_INT, LOFF(max_label_name_length)},
    {"max_label_value_length", L_INT, LOFF(max_label_value_length)},
    {"max_metadata_length", L_INT, LOFF(max_metadata_length)},
    {"creation_grace_period", L_DUR, LOFF(creation_grace_period_ms)},
    {"reject_old_samples", L_BOOL, LOFF(reject_old_samples)},
    {"reject_old_samples_max_age", L_DUR, LOFF(reject_old_samples_max_age_ms)},
    {"accept_ha_samples", L_BOOL, LOFF(accept_ha_samples)},
    {"ha_cluster_label", L_LABEL, LOFF(ha_cluster_label)},
    {"ha_replica_label", L_LABEL, LOFF(ha_replica_label)},
    {"ha_failover_timeout", L_DUR, LOFF(ha_failover_timeout_ms)},
    {"max_global_series_per_user", L_INT64, LOFF(max_global_series_per_user)},
    {"max_global_series_per_metric", L_INT64, LOFF(max_global_series_per_metric)},
    {"max_global_metadata_per_metric", L_INT64, LOFF(max_metadata_per_metric)},
    {"out_of_order_time_window", L_DUR, LOFF(out_of_order_time_window_ms)},
    {"max_fetched_series_per_query", L_INT64, LOFF(max_fetched_series_per_query)},
    {"max_fetched_chunk_bytes_per_query", L_SIZE, LOFF(max_fetched_chunk_bytes_per_query)},
    {"max_samples_per_query", L_INT64, LOFF(max_samples_per_query)},
    {"max_query_lookback", L_DUR, LOFF(max_query_lookback_ms)},
    {"max_query_length", L_DUR, LOFF(max_query_length_ms)},
    {"query_timeout", L_DUR, LOFF(query_timeout_ms)},
    {"compactor_retention_period", L_DUR, LOFF(compactor_retention_period_ms)},
};

typedef struct tenant_limits {
  char *tenant;
  rt_limits lim;
} tenant_limits;

typedef struct table {
  tenant_limits *v;   /* sorted by tenant */
  size_t n;
} table;

static pthread_rwlock_t lim_mu = PTHREAD_RWLOCK_INITIALIZER;
static bool lim_have_defaults;
static bool lim_inited; /* rt_limits_init was called (and not undone by shutdown) */
static rt_limits lim_defaults;
static char *lim_file;
static table lim_table;
static uint64_t lim_gen;

void rt_limits_from_config(const rt_config *cfg, rt_limits *out) {
  memset(out, 0, sizeof *out);
  out->ingestion_rate = cfg->ingestion_rate;
  out->ingestion_burst_size = cfg->ingestion_burst_size;
  out->max_label_names_per_series = cfg->max_label_names_per_series;
  out->max_label_name_length = cfg->max_label_name_length;
  out->max_label_value_length = cfg->max_label_value_length;
  out->max_metadata_length = cfg->max_metadata_length;
  out->creation_grace_period_ms = cfg->creation_grace_period_ms;
  out->reject_old_samples = cfg->reject_old_samples;
  out->reject_old_samples_max_age_ms = cfg->reject_old_samples_max_age_ms;
  out->accept_ha_samples = cfg->ha_enabled;
  snprintf(out->ha_cluster_label, sizeof out->ha_cluster_label, "%s",
           cfg->ha_cluster_label ? cfg->ha_cluster_label : "cluster");
  snprintf(out->ha_replica_label, sizeof out->ha_replica_label, "%s",
           cfg->ha_replica_label ? cfg->ha_replica_label : "__replica__");
  out->ha_failover_timeout_ms = cfg->ha_failover_timeout_ms;
  out->max_global_series_per_user = cfg->max_global_series_per_user;
  out->max_global_series_per_metric = cfg->max_global_series_per_metric;
  out->max_metadata_per_metric = cfg->max_metadata_per_metric;
  out->out_of_order_time_window_ms = cfg->ooo_window_ms;
  out->max_fetched_series_per_query = cfg->max_fetched_series_per_query;
  out->max_fetched_chunk_bytes_per_query = cfg->max_fetched_chunk_bytes_per_query;
  out->max_samples_per_query = cfg->max_samples;
  out->max_query_lookback_ms = cfg->max_query_lookback_ms;
  out->max_query_length_ms = cfg->max_query_length_ms;
  out->query_timeout_ms = cfg->query_timeout_ms;
  out->compactor_retention_period_ms = cfg->retention_period_ms;
}

/* The defaults of the built-in configuration, for processes (tests) that never call init. */
static void builtin_defaults(rt_limits *out) {
  rt_config cfg;
  rt_config_defaults(&cfg);
  rt_limits_from_config(&cfg, out);
  rt_config_free(&cfg);
}

static void table_free(table *t) {
  for (size_t i = 0; i < t->n; i++) {
    rt_free(t->v[i].tenant, 0);
  }
  rt_free(t->v, 0);
  t->v = NULL;
  t->n = 0;
}

static int cmp_tenant(const void *a, const void *b) {
  return strcmp(((const tenant_limits *)a)->tenant, ((const tenant_limits *)b)->tenant);
}

/* ---------- parsing ---------- */

static bool set_key(rt_limits *l, const lim_key *k, const char *v, char *err, size_t errlen) {
  char *end = NULL;
  void *p = (char *)l + k->off;
  switch (k->type) {
    case L_INT:
    case L_INT64: {
      errno = 0;
      long long x = strtoll(v, &end, 10);
      if (errno || end == v || *end || x < 0 || (k->type == L_INT && x > 0x7fffffff)) {
        snprintf(err, errlen, "%s: \"%s\" is not a non-negative integer", k->name, v);
        return false;
      }
      if (k->type == L_INT) {
        *(int *)p = (int)x;
      } else {
        *(int64_t *)p = x;
      }
      return true;
    }
    case L_BOOL:
      if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
        *(bool *)p = true;
      } else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
        *(bool *)p = false;
      } else {
        snprintf(err, errlen, "%s: \"%s\" is not true or false", k->name, v);
        return false;
      }
      return true;
    case L_DUR:
      if (!rt_parse_duration_ms(v, (int64_t *)p, false) || *(int64_t *)p < 0) {
        snprintf(err, errlen, "%s: \"%s\" is not a duration (like 10m or 1h30m)", k->name, v);
        return false;
      }
      return true;
    case L_SIZE:
      if (!rt_parse_size(v, (int64_t *)p) || *(int64_t *)p < 0) {
        snprintf(err, errlen, "%s: \"%s\" is not a size (like 64MiB)", k->name, v);
        return false;
      }
      return true;
    case L_LABEL:
      if (!*v || strlen(v) >= RT_LIMITS_LABEL_MAX) {
        snprintf(err, errlen, "%s: a label name of 1 to %d bytes is needed", k->name,
                 RT_LIMITS_LABEL_MAX - 1);
        return false;
      }
      memcpy(p, v, strlen(v) + 1);
      return true;
  }
  return false;
}

static const lim_key *find_lim_key(const char *name) {
  for (size_t i = 0; i < RT_ARRAY_LEN(lim_keys); i++) {
    if (strcmp(lim_keys[i].name, name) == 0) {
      return &lim_keys[i];
    }
  }
  return NULL;
}

/* Parses the whole document into `out` (a fresh table over `defaults`). */
static bool parse_doc(yaml_document_t *doc, const rt_limits *defaults, table *out, char *err,
                      size_t errlen) {
  yaml_node_t *root = yaml_document_get_root_node(doc);
  if (!root) {
    return true;   /* an empty file: no overrides */
  }
  if (root->type != YAML_MAPPING_NODE) {
    snprintf(err, errlen, "the top level must be a mapping with an \"overrides\" key");
    return false;
  }
  for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
       p++) {
    yaml_node_t *kn = yaml_document_get_node(doc, p->key);
    yaml_node_t *vn = yaml_document_get_node(doc, p->value);
    if (!kn || kn->type != YAML_SCALAR_NODE) {
      snprintf(err, errlen, "keys must be plain strings");
      return false;
    }
    if (strcmp((const char *)kn->data.scalar.value, "overrides") != 0) {
      snprintf(err, errlen, "line %zu: unknown key \"%s\" (only \"overrides\" is known)",
               kn->start_mark.line + 1, (const char *)kn->data.scalar.value);
      return false;
    }
    if (vn->type == YAML_SCALAR_NODE && vn->data.scalar.length == 0) {
      continue;
    }
    if (vn->type != YAML_MAPPING_NODE) {
      snprintf(err, errlen, "line %zu: overrides must map tenant ids to limits",
               kn->start_mark.line + 1);
      return false;
    }
    size_t cap = (size_t)(vn->data.mapping.pairs.top - vn->data.mapping.pairs.start);
    out->v = cap ? rt_calloc(cap, sizeof *out->v) : NULL;
    if (cap && !out->v) {
      snprintf(err, errlen, "out of memory");
      return false;
    }
    for (yaml_node_pair_t *tp = vn->data.mapping.pairs.start; tp < vn->data.mapping.pairs.top;
         tp++) {
      yaml_node_t *tk = yaml_document_get_node(doc, tp->key);
      yaml_node_t *tv = yaml_document_get_node(doc, tp->value);
      if (!tk || tk->type != YAML_SCALAR_NODE || tk->data.scalar.length == 0) {
        snprintf(err, errlen, "tenant ids must be non-empty strings");
        return false;
      }
      const char *tenant = (const char *)tk->data.scalar.value;
      tenant_limits *tl = &out->v[out->n];
      tl->tenant = rt_strdup(tenant);
      if (!tl->tenant) {
        snprintf(err, errlen, "out of memory");
        return false;
      }
      out->n++;
      tl->lim = *defaults;
      if (tv->type == YAML_SCALAR_NODE && tv->data.scalar.length == 0) {
        continue;
      }
      if (tv->type != YAML_MAPPING_NODE) {
        snprintf(err, errlen, "line %zu: tenant %s: limits must be a mapping",
                 tk->start_mark.line + 1, tenant);
        return false;
      }
      for (yaml_node_pair_t *lp = tv->data.mapping.pairs.start; lp < tv->data.mapping.pairs.top;
           lp++) {
        yaml_node_t *lk = yaml_document_get_node(doc, lp->key);
        yaml_node_t *lv = yaml_document_get_node(doc, lp->value);
        if (!lk || !lv || lk->type != YAML_SCALAR_NODE || lv->type != YAML_SCALAR_NODE) {
          snprintf(err, errlen, "tenant %s: each limit takes one value", tenant);
          return false;
        }
        const lim_key *k = find_lim_key((const char *)lk->data.scalar.value);
        if (!k) {
          snprintf(err, errlen, "line %zu: tenant %s: unknown limit \"%s\"",
                   lk->start_mark.line + 1, tenant, (const char *)lk->data.scalar.value);
          return false;
        }
        char msg[200];
        if (!set_key(&tl->lim, k, (const char *)lv->data.scalar.value, msg, sizeof msg)) {
          snprintf(err, errlen, "line %zu: tenant %s: %s", lk->start_mark.line + 1, tenant, msg);
          return false;
        }
      }
    }
    qsort(out->v, out->n, sizeof *out->v, cmp_tenant);
    for (size_t i = 1; i < out->n; i++) {
      if (strcmp(out->v[i - 1].tenant, out->v[i].tenant) == 0) {
        snprintf(err, errlen, "tenant %s is listed twice", out->v[i].tenant);
        return false;
      }
    }
  }
  return true;
}

static rt_err parse_text(const char *text, size_t len, const rt_limits *defaults, table *out,
                         char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  yaml_parser_t parser;
  yaml_document_t doc;
  if (!yaml_parser_initialize(&parser)) {
    snprintf(err, errlen, "out of memory");
    return RT_ENOMEM;
  }
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  if (!yaml_parser_load(&parser, &doc)) {
    snprintf(err, errlen, "line %zu: %s", parser.problem_mark.line + 1,
             parser.problem ? parser.problem : "invalid YAML");
    yaml_parser_delete(&parser);
    return RT_EINVAL;
  }
  bool ok = parse_doc(&doc, defaults, out, err, errlen);
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  if (!ok) {
    table_free(out);
    return RT_EINVAL;
  }
  return RT_OK;
}

static rt_err read_file(const char *path, char **text, size_t *len, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return RT_EIO;
  }
  size_t cap = 4096, n = 0;
  char *buf = rt_alloc(cap);
  while (buf) {
    size_t got = fread(buf + n, 1, cap - n - 1, f);
    n += got;
    if (n + 1 < cap) {
      break;
    }
    char *nb = rt_realloc(buf, cap, cap * 2);
    if (!nb) {
      rt_free(buf, cap);
      buf = NULL;
      break;
    }
    buf = nb;
    cap *= 2;
  }
  bool bad = ferror(f);
  fclose(f);
  if (!buf || bad) {
    rt_free(buf, 0);
    snprintf(err, errlen, "cannot read %s", path);
    return RT_EIO;
  }
  buf[n] = 0;
  *text = buf;
  *len = n;
  return RT_OK;
}

/* ---------- the table ---------- */

static rt_err load_locked_file(const char *path, const rt_limits *defaults, table *out, char *err,
                               size_t errlen) {
  char *text = NULL;
  size_t len = 0;
  rt_err e = read_file(path, &text, &len, err, errlen);
  if (e != RT_OK) {
    return e;
  }
  char msg[256];
  e = parse_text(text, len, defaults, out, msg, sizeof msg);
  rt_free(text, 0);
  if (e != RT_OK) {
    snprintf(err, errlen, "%s: %s", path, msg);
  }
  return e;
}

rt_err rt_limits_init(const rt_limits *defaults, const char *overrides_file, char *err,
                      size_t errlen) {
  table t = {0};
  rt_err e = RT_OK;
  if (overrides_file && *overrides_file) {
    e = load_locked_file(overrides_file, defaults, &t, err, errlen);
  }
  char *file = overrides_file && *overrides_file ? rt_strdup(overrides_file) : NULL;
  pthread_rwlock_wrlock(&lim_mu);
  lim_defaults = *defaults;
  lim_have_defaults = true;
  lim_inited = true;
  rt_free(lim_file, 0);
  lim_file = file;
  table_free(&lim_table);
  lim_table = t;
  lim_gen++;
  pthread_rwlock_unlock(&lim_mu);
  return e;
}

rt_err rt_limits_reload(char *err, size_t errlen) {
  pthread_rwlock_rdlock(&lim_mu);
  char *file = lim_file ? rt_strdup(lim_file) : NULL;
  rt_limits defaults = lim_defaults;
  pthread_rwlock_unlock(&lim_mu);
  if (!file) {
    return RT_OK;
  }
  table t;
  rt_err e = load_locked_file(file, &defaults, &t, err, errlen);
  rt_free(file, 0);
  if (e != RT_OK) {
    return e;
  }
  pthread_rwlock_wrlock(&lim_mu);
  table_free(&lim_table);
  lim_table = t;
  lim_gen++;
  size_t n = t.n;
  pthread_rwlock_unlock(&lim_mu);
  rt_info("limits", "runtime config loaded", "tenants_with_overrides=%zu", n);
  return RT_OK;
}

rt_err rt_limits_check(const char *yaml, size_t len, char *err, size_t errlen) {
  rt_limits d;
  rt_limits_get("", &d);
  table t;
  rt_err e = parse_text(yaml, len, &d, &t, err, errlen);
  if (e == RT_OK) {
    table_free(&t);
  }
  return e;
}

void rt_limits_get(const char *tenant, rt_limits *out) {
  pthread_rwlock_rdlock(&lim_mu);
  if (!lim_have_defaults) {
    pthread_rwlock_unlock(&lim_mu);
    rt_limits d;
    builtin_defaults(&d);
    pthread_rwlock_wrlock(&lim_mu);
    if (!lim_have_defaults) {
      lim_defaults = d;
      lim_have_defaults = true;
    }
  }
  const tenant_limits *hit = NULL;
  if (tenant && lim_table.n) {
    tenant_limits key = {.tenant = (char *)tenant};
    hit = bsearch(&key, lim_table.v, lim_table.n, sizeof key, cmp_tenant);
  }
  *out = hit ? hit->lim : lim_defaults;
  pthread_rwlock_unlock(&lim_mu);
}

uint64_t rt_limits_generation(void) {
  pthread_rwlock_rdlock(&lim_mu);
  uint64_t g = lim_gen;
  pthread_rwlock_unlock(&lim_mu);
  return g;
}

void rt_limits_shutdown(void) {
  pthread_rwlock_wrlock(&lim_mu);
  table_free(&lim_table);
  rt_free(lim_file, 0);
  lim_file = NULL;
  lim_have_defaults = false;
  lim_inited = false;
  pthread_rwlock_unlock(&lim_mu);
}

bool rt_limits_active(void) {
  pthread_rwlock_rdlock(&lim_mu);
  bool v = lim_inited;
  pthread_rwlock_unlock(&lim_mu);
  return v;
}

int64_t rt_retention_start(const rt_limits *l, int64_t newest_ms, int64_t wall_ms) {
  int64_t r = l->compactor_retention_period_ms;
  if (r <= 0 || newest_ms == INT64_MIN) {
    return INT64_MIN;
  }
  int64_t g = l->creation_grace_period_ms > 0 ? l->creation_grace_period_ms : 0;
  int64_t bound = wall_ms > INT64_MAX - g ? INT64_MAX : wall_ms + g;
  int64_t clock = newest_ms < bound ? newest_ms : bound;
  return clock < INT64_MIN + r ? INT64_MIN : clock - r;
}
