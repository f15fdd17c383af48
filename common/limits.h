/* limits.h - per-tenant limits: defaults from the configuration, overridden per tenant by the
 * runtime-config file, which is reloaded without a restart (SIGHUP, or a change seen by the
 * watcher of common/reload.h).
 *
 *   overrides:
 *     team-a:
 *       ingestion_rate: 50000
 *       max_global_series_per_user: 2000000
 *       creation_grace_period: 5m
 *
 * Keys are the snake_case names of the fields below; durations take Prometheus durations
 * ("10m"), sizes take "64MiB". A tenant missing from the file gets the defaults. A file that
 * fails to parse is refused as a whole and the previous limits stay in force.
 *
 * One process-wide table. rt_limits_get() copies a tenant's effective limits; callers keep the
 * copy for the request they serve, so a reload never changes limits in the middle of one. */
#ifndef RT_LIMITS_H
#define RT_LIMITS_H

#include "common/rt.h"

struct rt_config;

#define RT_LIMITS_LABEL_MAX 128

typedef struct rt_limits {
  /* write path: distributor */
  int64_t ingestion_rate;                 /* samples/s across the cluster; 0 = unlimited */
  int64_t ingestion_burst_size;           /* samples */
  int max_label_names_per_series;
  int max_label_name_length;
  int max_label_value_length;
  int max_metadata_length;
  int64_t creation_grace_period_ms;
  bool reject_old_samples;
  int64_t reject_old_samples_max_age_ms;
  bool accept_ha_samples;
  char ha_cluster_label[RT_LIMITS_LABEL_MAX];
  char ha_replica_label[RT_LIMITS_LABEL_MAX];
  int64_t ha_failover_timeout_ms;
  /* write path: ingester */
  int64_t max_global_series_per_user;     /* 0 = unlimited */
  int64_t max_global_series_per_metric;   /* 0 = unlimited */
  int64_t max_metadata_per_metric;        /* 0 = unlimited */
  int64_t out_of_order_time_window_ms;
  /* read path */
  int64_t max_fetched_series_per_query;   /* 0 = unlimited */
  int64_t max_fetched_chunk_bytes_per_query; /* 0 = unlimited */
  int64_t max_samples_per_query;          /* 0 = unlimited */
  int64_t max_query_lookback_ms;          /* 0 = unlimited */
  int64_t max_query_length_ms;            /* 0 = unlimited */
  int64_t query_timeout_ms;               /* 0 = none */
  /* data lifecycle: compactor */
  int64_t compactor_retention_period_ms;  /* 0 = keep forever */
} rt_limits;

/* The defaults a configuration gives every tenant. */
void rt_limits_from_config(const struct rt_config *cfg, rt_limits *out);

/* Sets the process-wide defaults and, when `overrides_file` is non-empty, loads it (an error
 * there is returned with a message; the defaults are set either way). May be called again
 * (tests); it replaces everything. Without any call, rt_limits_get() answers the defaults of
 * the built-in configuration. */
rt_err rt_limits_init(const rt_limits *defaults, const char *overrides_file, char *err,
                      size_t errlen);
/* Re-reads the overrides file named at init. On error the previous overrides stay. */
rt_err rt_limits_reload(char *err, size_t errlen);
/* Parses overrides YAML text without installing it (validation, tests). */
rt_err rt_limits_check(const char *yaml, size_t len, char *err, size_t errlen);
/* Copies the effective limits of `tenant` into *out. Thread-safe, lock held briefly. */
void rt_limits_get(const char *tenant, rt_limits *out);
/* Bumped by every successful (re)load: a cheap "did anything change" test for caches. */
uint64_t rt_limits_generation(void);
/* True between rt_limits_init() and rt_limits_shutdown(): the process configured its limits.
 * Components with limits of their own configuration (tests build them directly) apply the
 * per-tenant table only then. */
bool rt_limits_active(void);
/* The oldest sample time a tenant's retention keeps: its data-time clock minus
 * compactor_retention_period. The clock is the tenant's newest sample (newest_ms, INT64_MIN when
 * it has none), but never more than creation_grace_period ahead of wall_ms, so that one sample
 * stamped far in the future cannot expire a tenant's data. INT64_MIN (keep everything) when the
 * period is 0 or there is no sample. The compactor deletes from it, the querier clamps reads
 * to it (compactor/DESIGN.md). */
int64_t rt_retention_start(const rt_limits *l, int64_t newest_ms, int64_t wall_ms);

/* Frees the table (end of process, tests). */
void rt_limits_shutdown(void);

#endif
