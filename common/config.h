/* config.h - Ringtail's configuration: one struct, every key a flag and a YAML key.
 *
 * Flag `-ingester.data-dir=X` is YAML `ingester: {data_dir: X}` (the dotted path, with '_' and
 * '-' interchangeable). Defaults make `ringtail -target=all` work with no file. The table of
 * keys lives in config.c; `ringtail -help` prints it. */
#ifndef RT_CONFIG_H
#define RT_CONFIG_H

#include "common/rt.h"
#include "common/buf.h"
#include <stdio.h>

#define RT_MAX_ENDPOINTS 64

typedef struct rt_config {
  /* general */
  char *config_file;            /* -config.file */
  char *target;                 /* -target: "all" or a comma list of roles */
  char *log_level;              /* -log.level */

  /* server.* */
  char *http_listen_address;    /* -server.http-listen-address (0.0.0.0) */
  int http_listen_port;         /* -server.http-listen-port (9009) */
  int64_t http_conn_timeout_ms; /* -server.http-conn-timeout (30s): slow/idle clients are cut off */
  int http_max_conns;           /* -server.http-max-connections (1024) */
  char *grpc_listen_address;    /* -server.rpc-listen-address: the ingester's RPC endpoint when
                                   it runs in its own process (tcp://0.0.0.0:9095) */

  /* distributor.* */
  int64_t max_recv_msg_size;        /* -distributor.max-recv-msg-size (10 MiB), compressed body */
  int64_t max_decompressed_size;    /* -distributor.max-decompressed-size (64 MiB) */
  char *distributor_ingesters;      /* -distributor.ingester-addresses: comma list made a static
                                       ring; empty = the ring */
  int64_t distributor_timeout_ms;   /* -distributor.remote-timeout (2s) */

  /* validation.* */
  bool reject_old_samples;              /* -validation.reject-old-samples (true) */
  int64_t reject_old_samples_max_age_ms;/* -validation.reject-old-samples.max-age (1w) */
  int64_t creation_grace_period_ms;     /* -validation.create-grace-period (10m) */
  int max_label_names_per_series;       /* -validation.max-label-names-per-series (30) */
  int max_label_name_length;            /* -validation.max-length-label-name (1024) */
  int max_label_value_length;           /* -validation.max-length-label-value (2048) */
  int max_metadata_length;              /* -validation.max-metadata-length (1024) */

  /* auth.* (see docs/auth.md) */
  char *auth_mode;                      /* -auth.mode: none | header | token (none) */
  char *auth_workspaces_file;           /* -auth.workspaces-file: YAML of workspaces and their
                                           hashed credentials (auth.mode=token) */

  /* per-tenant limits: defaults for every tenant; the runtime-config file overrides them per
   * tenant (common/limits.h, docs/limits.md). 0 = unlimited where it is a maximum. */
  int64_t ingestion_rate;               /* -distributor.ingestion-rate-limit (0), samples/s */
  int64_t ingestion_burst_size;         /* -distributor.ingestion-burst-size (200000) */
  int distributor_instances;            /* -distributor.instances (1): share of the rate */
  int64_t max_global_series_per_user;   /* -ingester.max-global-series-per-user (0) */
  int64_t max_global_series_per_metric; /* -ingester.max-global-series-per-metric (0) */
  int64_t max_metadata_per_metric;      /* -ingester.max-global-metadata-per-metric (0) */
  int64_t max_fetched_series_per_query; /* -querier.max-fetched-series-per-query (0) */
  int64_t max_fetched_chunk_bytes_per_query; /* -querier.max-fetched-chunk-bytes-per-query (0) */
  int64_t max_query_lookback_ms;        /* -querier.max-query-lookback (0) */
  int64_t max_query_length_ms;          /* -querier.max-query-length (0) */
  bool ha_enabled;                      /* -distributor.ha-tracker.enable (true) */
  char *ha_cluster_label;               /* -distributor.ha-tracker.cluster-label (cluster) */
  char *ha_replica_label;               /* -distributor.ha-tracker.replica-label (__replica__) */
  int64_t ha_failover_timeout_ms;       /* -distributor.ha-tracker.failover-timeout (30s) */

  /* runtime-config.*: the per-tenant overrides file, reloaded without a restart */
  char *runtime_config_file;            /* -runtime-config.file ("") */
  int64_t runtime_config_period_ms;     /* -runtime-config.reload-period (10s): how often the
                                           overrides and workspaces files are checked for change */

  /* ingester.* */
  char *data_dir;                   /* -ingester.data-dir (./data) */
  int64_t ooo_window_ms;            /* -ingester.out-of-order-time-window (0) */
  char *wal_sync;                   /* -ingester.wal-sync: "batch" (fsync every push, group
                                       commit) or "none" (leave it to the OS) */
  int chunk_max_samples;            /* -ingester.chunk-max-samples (120) */
  int64_t chunk_max_age_ms;         /* -ingester.chunk-max-age (2h) */
  int64_t series_idle_timeout_ms;   /* -ingester.series-idle-timeout (2h): idle series leave the
                                       head; 0 = never */
  int rpc_workers;                  /* -ingester.rpc-workers (4) */

  /* compactor.* */
  int64_t retention_period_ms;      /* -compactor.retention-period (0 = keep forever) */

  /* querier.* */
  char *querier_ingesters;          /* -querier.ingester-addresses: comma list made a static
                                       ring; empty = the ring */
  int64_t query_timeout_ms;         /* -querier.timeout (2m) */
  int64_t lookback_delta_ms;        /* -querier.lookback-delta (5m) */
  int64_t max_samples;              /* -querier.max-samples (50000000) */
  int64_t split_interval_ms;        /* -querier.split-queries-by-interval (24h; 0 = off) */
  int total_shards;                 /* -querier.total-shards (0 = off) */

  /* ring.* (see ring/DESIGN.md and docs/cluster.md) */
  char *ring_instance_id;           /* -ring.instance-id: the ingester's id (default hostname) */
  char *ring_zone;                  /* -ring.zone: the ingester's zone ("") */
  char *ring_join;                  /* -ring.join: comma list of gossip endpoints of any nodes */
  int ring_replication_factor;      /* -ring.replication-factor (0 = 3, or 1 without -ring.join) */
  int ring_tokens;                  /* -ring.tokens (128) */
  int64_t ring_heartbeat_period_ms; /* -ring.heartbeat-period (5s) */
  int64_t ring_heartbeat_timeout_ms;/* -ring.heartbeat-timeout (1m) */
  int64_t ring_gossip_interval_ms;  /* -ring.gossip-interval (1s) */
  char *ring_gossip_listen;         /* -ring.gossip-listen-address: endpoint to bind ("") */
  char *ring_gossip_advertise;      /* -ring.gossip-advertise-address ("" = the listen address) */
  char *ring_rpc_advertise;         /* -ring.rpc-advertise-address: the ingester's RPC endpoint
                                       as others dial it ("" = the listen address, 0.0.0.0
                                       replaced by the host name) */
} rt_config;

/* The process configuration, set once in main before any role starts. */
extern const rt_config *rt_cfg;

/* Fills cfg with defaults. */
void rt_config_defaults(rt_config *cfg);
/* Parses argv flags (and the YAML file named by -config.file, applied before the flags so that
 * flags win). Returns RT_EINVAL with a message in errbuf on a bad flag/key/value. `*help` is set
 * when -help / -h / --help was given. Positional arguments (subcommands) are returned through
 * `rest` / `nrest` (pointers into argv). */
rt_err rt_config_parse(rt_config *cfg, int argc, char **argv, bool *help, char **rest, int *nrest,
                       char *errbuf, size_t errlen);
/* Prints every key with its type, default and help text. */
void rt_config_usage(FILE *out);
/* Writes the effective configuration as YAML (for /config). */
void rt_config_dump_yaml(const rt_config *cfg, struct rt_buf *out);
/* Writes every flag with its effective value as one JSON object of strings
 * ({"target":"all",...}), the data of /api/v1/status/flags. */
void rt_config_dump_flags_json(const rt_config *cfg, struct rt_buf *out);
void rt_config_free(rt_config *cfg);

/* Parses a Prometheus duration ("5m", "1h30m", "2d", "100ms") or, when allow_float, float
 * seconds ("1.5"). Returns false on error. */
bool rt_parse_duration_ms(const char *s, int64_t *out, bool allow_float);
/* Parses a size ("10MiB", "64MB", "1048576"). */
bool rt_parse_size(const char *s, int64_t *out);

#endif
