/* config.c - the table of configuration keys, flag and YAML parsing, -help and dumps.
 * See common/DESIGN.md.
 *
 * Every key is one row of `keys`: flag name, type, field offset, default (as text, parsed by
 * the same code as a flag, so the default shown by -help is the default used), help. */
#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

const rt_config *rt_cfg;

typedef enum key_type {
  K_STR,
  K_INT,
  K_INT64,
  K_BOOL,
  K_DUR,    /* int64 milliseconds */
  K_SIZE,   /* int64 bytes */
} key_type;

enum {
  K_FLAG_ONLY = 1u << 0,   /* not a YAML key (config.file) */
};

typedef struct key {
  const char *name;        /* flag name without the dash */
  key_type type;
  size_t off;
  const char *def;
  const char *choices;     /* for K_STR: "a|b|c" or NULL */
  unsigned flags;
  const char *help;
} key;

#define OFF(f) offsetof(rt_config, f)

static const key keys[] = {
    {"config.file", K_STR, OFF(config_file), "", NULL, K_FLAG_ONLY,
     "YAML file to load; flags given on the command line override it."},
    {"target", K_STR, OFF(target), "all", NULL, 0,
     "Comma-separated list of roles to run: distributor, ingester, querier, compactor (the "
     "data lifecycle, with the ingester of its process), or all."},
    {"log.level", K_STR, OFF(log_level), "info", "debug|info|warn|error", 0,
     "Only log messages at or above this level."},

    {"server.http-listen-address", K_STR, OFF(http_listen_address), "0.0.0.0", NULL, 0,
     "HTTP server listen address."},
    {"server.http-listen-port", K_INT, OFF(http_listen_port), "9009", NULL, 0,
     "HTTP server listen port (0 picks a free port)."},
    {"server.http-conn-timeout", K_DUR, OFF(http_conn_timeout_ms), "30s", NULL, 0,
     "Idle HTTP connections, and requests whose body takes longer than this, are cut off."},
    {"server.http-max-connections", K_INT, OFF(http_max_conns), "1024", NULL, 0,
     "Maximum number of concurrent HTTP connections."},
    {"server.rpc-listen-address", K_STR, OFF(grpc_listen_address), "tcp://0.0.0.0:9095", NULL,
     0, "ZeroMQ endpoint of the ingester's RPC service when other roles run elsewhere."},

    {"distributor.max-recv-msg-size", K_SIZE, OFF(max_recv_msg_size), "10MiB", NULL, 0,
     "Largest remote-write request body accepted (compressed); larger ones get 413."},
    {"distributor.max-decompressed-size", K_SIZE, OFF(max_decompressed_size), "64MiB", NULL, 0,
     "Largest remote-write request accepted after snappy decompression; larger ones get 413."},
    {"distributor.ingester-addresses", K_STR, OFF(distributor_ingesters), "", NULL, 0,
     "Comma-separated ZeroMQ endpoints of the ingesters to write to, a static ring used "
     "instead of the gossip ring: each series goes to every listed ingester (to 8 of them when "
     "more are listed) and all of those must take it. Empty = the ring (-ring.join, or the "
     "ingester in this process)."},
    {"distributor.remote-timeout", K_DUR, OFF(distributor_timeout_ms), "2s", NULL, 0,
     "Timeout of a push to an ingester."},

    {"validation.reject-old-samples", K_BOOL, OFF(reject_old_samples), "true", NULL, 0,
     "Reject samples older than -validation.reject-old-samples.max-age."},
    {"validation.reject-old-samples.max-age", K_DUR, OFF(reject_old_samples_max_age_ms), "1w",
     NULL, 0, "Maximum age of accepted samples when -validation.reject-old-samples is set."},
    {"validation.create-grace-period", K_DUR, OFF(creation_grace_period_ms), "10m", NULL, 0,
     "Samples further in the future than this are rejected."},
    {"validation.max-label-names-per-series", K_INT, OFF(max_label_names_per_series), "30", NULL,
     0, "Maximum number of labels on one series."},
    {"validation.max-length-label-name", K_INT, OFF(max_label_name_length), "1024", NULL, 0,
     "Maximum length of a label name, in bytes."},
    {"validation.max-length-label-value", K_INT, OFF(max_label_value_length), "2048", NULL, 0,
     "Maximum length of a label value, in bytes."},
    {"validation.max-metadata-length", K_INT, OFF(max_metadata_length), "1024", NULL, 0,
     "Maximum length of metadata fields (metric name, help, unit), in bytes."},

    {"auth.mode", K_STR, OFF(auth_mode), "none", "none|header|token", 0,
     "How a request's tenant is found: none = every request is tenant \"anonymous\"; header = "
     "the X-Scope-OrgID header (behind an authenticating gateway); token = bearer tokens and "
     "basic-auth users of -auth.workspaces-file."},
    {"auth.workspaces-file", K_STR, OFF(auth_workspaces_file), "", NULL, 0,
     "YAML file listing workspaces, their hashed credentials and rights (auth.mode=token); "
     "reloaded on SIGHUP and when it changes."},

    {"distributor.ingestion-rate-limit", K_INT64, OFF(ingestion_rate), "0", NULL, 0,
     "Per-tenant ingestion rate in samples per second across all distributors (each enforces "
     "its share); 0 = unlimited."},
    {"distributor.ingestion-burst-size", K_INT64, OFF(ingestion_burst_size), "200000", NULL, 0,
     "Per-tenant burst above the ingestion rate, in samples."},
    {"distributor.instances", K_INT, OFF(distributor_instances), "1", NULL, 0,
     "Number of distributors sharing each tenant's ingestion rate (each one enforces "
     "rate / instances) when the ring shows none; in a cluster the distributors count each "
     "other in the ring."},
    {"distributor.ha-tracker.enable", K_BOOL, OFF(ha_enabled), "true", NULL, 0,
     "Deduplicate HA Prometheus pairs: of the series carrying both the cluster and replica "
     "labels, only the elected replica's are stored."},
    {"distributor.ha-tracker.cluster-label", K_STR, OFF(ha_cluster_label), "cluster", NULL, 0,
     "Label naming the HA cluster of a Prometheus pair."},
    {"distributor.ha-tracker.replica-label", K_STR, OFF(ha_replica_label), "__replica__", NULL,
     0, "Label naming the replica within an HA cluster; removed before storage."},
    {"distributor.ha-tracker.failover-timeout", K_DUR, OFF(ha_failover_timeout_ms), "30s", NULL,
     0, "Another replica is elected when the elected one has sent nothing for this long."},
    {"ingester.max-global-series-per-user", K_INT64, OFF(max_global_series_per_user), "0", NULL,
     0, "Per-tenant maximum of active series across the cluster (each counted once); 0 = "
     "unlimited."},
    {"ingester.max-global-series-per-metric", K_INT64, OFF(max_global_series_per_metric), "0",
     NULL, 0, "Per-tenant maximum of active series of one metric name; 0 = unlimited."},
    {"ingester.max-global-metadata-per-metric", K_INT64, OFF(max_metadata_per_metric), "0", NULL,
     0, "Per-tenant maximum of distinct metadata entries of one metric; 0 = unlimited."},
    {"querier.max-fetched-series-per-query", K_INT64, OFF(max_fetched_series_per_query), "0",
     NULL, 0, "Per-tenant maximum of series one query may fetch; 0 = unlimited."},
    {"querier.max-fetched-chunk-bytes-per-query", K_SIZE,
     OFF(max_fetched_chunk_bytes_per_query), "0", NULL, 0,
     "Per-tenant maximum of chunk bytes one query may fetch; 0 = unlimited."},
    {"querier.max-query-lookback", K_DUR, OFF(max_query_lookback_ms), "0s", NULL, 0,
     "Per-tenant limit on how far back a query may read; 0 = unlimited."},
    {"querier.max-query-length", K_DUR, OFF(max_query_length_ms), "0s", NULL, 0,
     "Per-tenant limit on the time range of a query; 0 = unlimited."},
    {"runtime-config.file", K_STR, OFF(runtime_config_file), "", NULL, 0,
     "YAML file of per-tenant limit overrides (overrides: {tenant: {limit: value}}); reloaded "
     "on SIGHUP and when it changes."},
    {"runtime-config.reload-period", K_DUR, OFF(runtime_config_period_ms), "10s", NULL, 0,
     "How often the runtime-config and workspaces files are checked for changes."},

    {"ingester.data-dir", K_STR, OFF(data_dir), "./data", NULL, 0,
     "Directory holding the ingester's RocksDB database."},
    {"ingester.out-of-order-time-window", K_DUR, OFF(ooo_window_ms), "0s", NULL, 0,
     "Samples up to this much older than a series' newest sample are still accepted."},
    {"ingester.wal-sync", K_STR, OFF(wal_sync), "batch", "batch|none", 0,
     "batch: fsync the WAL before acknowledging a push (group commit); none: leave it to the "
     "operating system."},
    {"ingester.chunk-max-samples", K_INT, OFF(chunk_max_samples), "120", NULL, 0,
     "A head chunk is closed when it holds this many samples."},
    {"ingester.chunk-max-age", K_DUR, OFF(chunk_max_age_ms), "2h", NULL, 0,
     "A head chunk is closed when it spans this long."},
    {"ingester.series-idle-timeout", K_DUR, OFF(series_idle_timeout_ms), "2h", NULL, 0,
     "Compactor rule: a series without a sample for this long in data time (the tenant's "
     "newest sample), or of a tenant without a push for this long on the wall clock, leaves "
     "the ingester's in-memory head once its chunks are written; it stays queryable from "
     "disk. 0 = series never leave. Applied where the compactor role runs."},
    {"ingester.rpc-workers", K_INT, OFF(rpc_workers), "4", NULL, 0,
     "Threads serving the ingester's RPC requests."},

    {"compactor.retention-period", K_DUR, OFF(retention_period_ms), "0s", NULL, 0,
     "Compactor rule: samples older than this behind the tenant's data-time clock (its newest "
     "sample, at most -validation.create-grace-period ahead of the wall clock) are deleted "
     "from every ingester, and queries and the metadata APIs never return them. 0 = keep "
     "forever. Per tenant: compactor_retention_period in the runtime-config file."},

    {"querier.ingester-addresses", K_STR, OFF(querier_ingesters), "", NULL, 0,
     "Comma-separated ZeroMQ endpoints of the ingesters to read from, a static ring used "
     "instead of the gossip ring: every read asks every listed ingester and fails when one does "
     "not answer. Empty = the ring (-ring.join, or the ingester in this process)."},
    {"querier.timeout", K_DUR, OFF(query_timeout_ms), "2m", NULL, 0,
     "Maximum time a query may run."},
    {"querier.lookback-delta", K_DUR, OFF(lookback_delta_ms), "5m", NULL, 0,
     "How far back an instant vector selector looks for a sample."},
    {"querier.max-samples", K_INT64, OFF(max_samples), "50000000", NULL, 0,
     "Maximum number of samples a single query may load into memory."},
    {"querier.split-queries-by-interval", K_DUR, OFF(split_interval_ms), "24h", NULL, 0,
     "Split range queries into sub-queries of this interval, aligned to UTC, run in parallel; "
     "0 = do not split."},
    {"querier.total-shards", K_INT, OFF(total_shards), "0", NULL, 0,
     "Split aggregations that allow it into this many series shards, run in parallel; 0 = off."},

    {"ring.instance-id", K_STR, OFF(ring_instance_id), "", NULL, 0,
     "The ingester's id in the ring; empty = the host name."},
    {"ring.zone", K_STR, OFF(ring_zone), "", NULL, 0,
     "The ingester's zone: the replicas of a series are in distinct zones."},
    {"ring.join", K_STR, OFF(ring_join), "", NULL, 0,
     "Comma-separated gossip endpoints (tcp://host:port) of any ring members to join."},
    {"ring.replication-factor", K_INT, OFF(ring_replication_factor), "0", NULL, 0,
     "Copies of each series, on ingesters of distinct zones; 0 = 3, or 1 when -ring.join is "
     "empty (a single process)."},
    {"ring.tokens", K_INT, OFF(ring_tokens), "128", NULL, 0,
     "Tokens an ingester owns in the ring (kept in its data directory)."},
    {"ring.heartbeat-period", K_DUR, OFF(ring_heartbeat_period_ms), "5s", NULL, 0,
     "How often an ingester refreshes its heartbeat."},
    {"ring.heartbeat-timeout", K_DUR, OFF(ring_heartbeat_timeout_ms), "1m", NULL, 0,
     "An ingester whose heartbeat is older than this is unhealthy (skipped, counted as a "
     "failure)."},
    {"ring.gossip-interval", K_DUR, OFF(ring_gossip_interval_ms), "1s", NULL, 0,
     "How often ring state is exchanged with peers."},
    {"ring.gossip-listen-address", K_STR, OFF(ring_gossip_listen), "", NULL, 0,
     "ZeroMQ endpoint to serve ring gossip on (tcp://0.0.0.0:7946); empty = none."},
    {"ring.gossip-advertise-address", K_STR, OFF(ring_gossip_advertise), "", NULL, 0,
     "Gossip endpoint peers dial; empty = -ring.gossip-listen-address."},
    {"ring.rpc-advertise-address", K_STR, OFF(ring_rpc_advertise), "", NULL, 0,
     "The ingester's RPC endpoint as other processes dial it; empty = "
     "-server.rpc-listen-address with 0.0.0.0 replaced by the host name."},
};

#define NKEYS RT_ARRAY_LEN(keys)

static const char *type_name(key_type t) {
  switch (t) {
    case K_STR: return "string";
    case K_INT: return "int";
    case K_INT64: return "int";
    case K_BOOL: return "bool";
    case K_DUR: return "duration";
    case K_SIZE: return "size";
  }
  return "?";
}

static void seterr(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t len, const char *fmt, ...) {
  if (!err || len == 0) {
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, len, fmt, ap);
  va_end(ap);
}

/* ---------- value parsers ---------- */

static bool parse_bool(const char *s, bool *out) {
  static const char *const t[] = {"1", "t", "true", "yes", "y", "on"};
  static const char *const f[] = {"0", "f", "false", "no", "n", "off"};
  for (size_t i = 0; i < RT_ARRAY_LEN(t); i++) {
    if (strcasecmp(s, t[i]) == 0) {
      *out = true;
      return true;
    }
    if (strcasecmp(s, f[i]) == 0) {
      *out = false;
      return true;
    }
  }
  return false;
}

static bool parse_int64(const char *s, int64_t *out) {
  if (!*s || isspace((unsigned char)*s)) {
    return false;
  }
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *end) {
    return false;
  }
  *out = v;
  return true;
}

bool rt_parse_duration_ms(const char *s, int64_t *out, bool allow_float) {
  if (!s || !*s) {
    return false;
  }
  if (strcmp(s, "0") == 0) {
    *out = 0;
    return true;
  }
  if (allow_float) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!errno && *end == 0 && isfinite(v) && !isspace((unsigned char)*s)) {
      double ms = v * 1000.0;
      if (ms < -9.2e18 || ms > 9.2e18) {
        return false;
      }
      *out = (int64_t)llround(ms);
      return true;
    }
  }
  static const struct {
    const char *unit;
    double ms;
  } units[] = {
      {"ms", 1},          {"ns", 1e-6},       {"us", 1e-3},       {"\xc2\xb5s", 1e-3},
      {"s", 1e3},         {"m", 60e3},        {"h", 3600e3},      {"d", 86400e3},
      {"w", 7 * 86400e3}, {"y", 365 * 86400e3},
  };
  double total = 0;
  const char *p = s;
  while (*p) {
    if (!isdigit((unsigned char)*p) && *p != '.') {
      return false;
    }
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    if (errno || end == p || *end == 0) {
      return false;   /* a number without a unit */
    }
    p = end;
    size_t u = 0;
    for (; u < RT_ARRAY_LEN(units); u++) {
      size_t n = strlen(units[u].unit);
      if (strncmp(p, units[u].unit, n) == 0) {
        break;
      }
    }
    if (u == RT_ARRAY_LEN(units)) {
      return false;
    }
    total += v * units[u].ms;
    p += strlen(units[u].unit);
  }
  if (!(total <= 9.2e18)) {
    return false;
  }
  *out = (int64_t)llround(total);
  return true;
}

bool rt_parse_size(const char *s, int64_t *out) {
  if (!s || !*s || !(isdigit((unsigned char)*s) || *s == '.')) {
    return false;
  }
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s) {
    return false;
  }
  static const struct {
    const char *unit;
    double mult;
  } units[] = {
      {"", 1},
      {"b", 1},
      {"k", 1024.0},
      {"kb", 1024.0},
      {"kib", 1024.0},
      {"m", 1024.0 * 1024},
      {"mb", 1024.0 * 1024},
      {"mib", 1024.0 * 1024},
      {"g", 1024.0 * 1024 * 1024},
      {"gb", 1024.0 * 1024 * 1024},
      {"gib", 1024.0 * 1024 * 1024},
      {"t", 1024.0 * 1024 * 1024 * 1024},
      {"tb", 1024.0 * 1024 * 1024 * 1024},
      {"tib", 1024.0 * 1024 * 1024 * 1024},
  };
  const char *u = end;
  while (*u == ' ') {
    u++;
  }
  for (size_t i = 0; i < RT_ARRAY_LEN(units); i++) {
    if (strcasecmp(u, units[i].unit) == 0) {
      double b = v * units[i].mult;
      if (!(b >= 0 && b <= 9.2e18) || b != floor(b)) {
        return false;
      }
      *out = (int64_t)b;
      return true;
    }
  }
  return false;
}

static void format_duration(int64_t ms, char *buf, size_t len) {
  if (ms == 0) {
    snprintf(buf, len, "0s");
    return;
  }
  static const struct {
    const char *unit;
    int64_t ms;
  } units[] = {{"y", 365LL * 86400000}, {"w", 7LL * 86400000}, {"d", 86400000}, {"h", 3600000},
               {"m", 60000},            {"s", 1000},           {"ms", 1}};
  size_t o = 0;
  buf[0] = 0;
  for (size_t i = 0; i < RT_ARRAY_LEN(units) && ms > 0; i++) {
    if (ms >= units[i].ms) {
      int n = snprintf(buf + o, len - o, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
      if (n < 0 || (size_t)n >= len - o) {
        return;
      }
      o += (size_t)n;
      ms %= units[i].ms;
    }
  }
}

static void format_size(int64_t b, char *buf, size_t len) {
  static const struct {
    const char *unit;
    int64_t mult;
  } units[] = {{"TiB", 1LL << 40}, {"GiB", 1LL << 30}, {"MiB", 1LL << 20}, {"KiB", 1LL << 10}};
  for (size_t i = 0; i < RT_ARRAY_LEN(units); i++) {
    if (b > 0 && b % units[i].mult == 0) {
      snprintf(buf, len, "%lld%s", (long long)(b / units[i].mult), units[i].unit);
      return;
    }
  }
  snprintf(buf, len, "%lld", (long long)b);
}

/* ---------- keys ---------- */

static bool sep(char c) { return c == '-' || c == '_'; }

/* Flag names: '-' and '_' are the same. YAML paths: '.', '-' and '_' are all the same (so that
 * `validation: {reject_old_samples_max_age: 1w}` names validation.reject-old-samples.max-age). */
static bool name_eq(const char *want, const char *got, size_t got_len, bool yaml) {
  size_t i = 0;
  for (; want[i] && i < got_len; i++) {
    char a = want[i];
    char b = got[i];
    if (a == b) {
      continue;
    }
    if (yaml && (sep(a) || a == '.') && (sep(b) || b == '.')) {
      continue;
    }
    if (!yaml && sep(a) && sep(b)) {
      continue;
    }
    return false;
  }
  return want[i] == 0 && i == got_len;
}

static const key *find_key(const char *name, size_t len, bool yaml) {
  for (size_t i = 0; i < NKEYS; i++) {
    if (name_eq(keys[i].name, name, len, yaml)) {
      return &keys[i];
    }
  }
  return NULL;
}

static bool set_value(rt_config *cfg, const key *k, const char *val, char *err, size_t errlen) {
  char *base = (char *)cfg;
  void *field = base + k->off;
  int64_t v;
  switch (k->type) {
    case K_STR: {
      if (k->choices) {
        const char *c = k->choices;
        size_t n = strlen(val);
        bool ok = false;
        while (c && *c) {
          const char *bar = strchr(c, '|');
          size_t cl = bar ? (size_t)(bar - c) : strlen(c);
          if (cl == n && strncmp(c, val, n) == 0) {
            ok = true;
          }
          c = bar ? bar + 1 : NULL;
        }
        if (!ok) {
          seterr(err, errlen, "invalid value \"%s\" for %s: must be one of %s", val, k->name,
                 k->choices);
          return false;
        }
      }
      char *d = rt_strdup(val);
      if (!d) {
        seterr(err, errlen, "out of memory");
        return false;
      }
      char **sp = field;
      rt_free(*sp, 0);
      *sp = d;
      return true;
    }
    case K_INT:
      if (!parse_int64(val, &v) || v < 0 || v > 0x7fffffff) {
        seterr(err, errlen, "invalid value \"%s\" for %s: want a non-negative integer", val,
               k->name);
        return false;
      }
      *(int *)field = (int)v;
      return true;
    case K_INT64:
      if (!parse_int64(val, &v) || v < 0) {
        seterr(err, errlen, "invalid value \"%s\" for %s: want a non-negative integer", val,
               k->name);
        return false;
      }
      *(int64_t *)field = v;
      return true;
    case K_BOOL:
      if (!parse_bool(val, (bool *)field)) {
        seterr(err, errlen, "invalid value \"%s\" for %s: want true or false", val, k->name);
        return false;
      }
      return true;
    case K_DUR:
      if (!rt_parse_duration_ms(val, &v, false) || v < 0) {
        seterr(err, errlen, "invalid value \"%s\" for %s: want a duration like 30s, 5m, 1h30m, 1w",
               val, k->name);
        return false;
      }
      *(int64_t *)field = v;
      return true;
    case K_SIZE:
      if (!rt_parse_size(val, &v)) {
        seterr(err, errlen, "invalid value \"%s\" for %s: want a size like 1048576, 512KiB, 10MiB",
               val, k->name);
        return false;
      }
      *(int64_t *)field = v;
      return true;
  }
  return false;
}

/* Formats the current value of k (for dumps). */
static void format_value(const rt_config *cfg, const key *k, char *buf, size_t len) {
  const char *base = (const char *)cfg;
  const void *field = base + k->off;
  switch (k->type) {
    case K_STR: {
      const char *s = *(char *const *)field;
      snprintf(buf, len, "%s", s ? s : "");
      return;
    }
    case K_INT: snprintf(buf, len, "%d", *(const int *)field); return;
    case K_INT64: snprintf(buf, len, "%lld", (long long)*(const int64_t *)field); return;
    case K_BOOL: snprintf(buf, len, "%s", *(const bool *)field ? "true" : "false"); return;
    case K_DUR: format_duration(*(const int64_t *)field, buf, len); return;
    case K_SIZE: format_size(*(const int64_t *)field, buf, len); return;
  }
}

void rt_config_defaults(rt_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  for (size_t i = 0; i < NKEYS; i++) {
    char err[16];
    bool ok = set_value(cfg, &keys[i], keys[i].def, err, sizeof err);
    RT_ASSERT(ok);
    (void)ok;
  }
}

void rt_config_free(rt_config *cfg) {
  for (size_t i = 0; i < NKEYS; i++) {
    if (keys[i].type == K_STR) {
      char **sp = (char **)((char *)cfg + keys[i].off);
      rt_free(*sp, 0);
      *sp = NULL;
    }
  }
}

/* ---------- YAML ---------- */

typedef struct yaml_ctx {
  rt_config *cfg;
  const char *file;
  yaml_document_t *doc;
  char *err;
  size_t errlen;
} yaml_ctx;

static bool yaml_scalar_is_null(const yaml_node_t *n) {
  if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
    return false;
  }
  const char *v = (const char *)n->data.scalar.value;
  return n->data.scalar.length == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
         strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static bool yaml_walk(yaml_ctx *c, yaml_node_t *map, const char *prefix) {
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
       p++) {
    yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
    yaml_node_t *vn = yaml_document_get_node(c->doc, p->value);
    if (!kn || !vn || kn->type != YAML_SCALAR_NODE) {
      seterr(c->err, c->errlen, "%s:%zu: keys must be plain strings", c->file,
             kn ? kn->start_mark.line + 1 : 0);
      return false;
    }
    char path[256];
    int n = snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "",
                     (const char *)kn->data.scalar.value);
    if (n < 0 || (size_t)n >= sizeof path) {
      seterr(c->err, c->errlen, "%s:%zu: key too long", c->file, kn->start_mark.line + 1);
      return false;
    }
    size_t line = kn->start_mark.line + 1;
    if (vn->type == YAML_MAPPING_NODE) {
      if (!yaml_walk(c, vn, path)) {
        return false;
      }
      continue;
    }
    const key *k = find_key(path, strlen(path), true);
    if (!k || (k->flags & K_FLAG_ONLY)) {
      seterr(c->err, c->errlen, "%s:%zu: unknown configuration key \"%s\"", c->file, line, path);
      return false;
    }
    rt_buf val = RT_BUF_INIT;
    if (vn->type == YAML_SEQUENCE_NODE) {
      if (k->type != K_STR) {
        seterr(c->err, c->errlen, "%s:%zu: %s takes a single value, not a list", c->file, line,
               path);
        return false;
      }
      for (yaml_node_item_t *it = vn->data.sequence.items.start;
           it < vn->data.sequence.items.top; it++) {
        yaml_node_t *in = yaml_document_get_node(c->doc, *it);
        if (!in || in->type != YAML_SCALAR_NODE) {
          rt_buf_free(&val);
          seterr(c->err, c->errlen, "%s:%zu: %s: list items must be strings", c->file, line,
                 path);
          return false;
        }
        if (val.len) {
          rt_buf_putc(&val, ',');
        }
        rt_buf_append(&val, in->data.scalar.value, in->data.scalar.length);
      }
    } else if (!yaml_scalar_is_null(vn)) {
      rt_buf_append(&val, vn->data.scalar.value, vn->data.scalar.length);
    } else if (k->type != K_STR) {
      seterr(c->err, c->errlen, "%s:%zu: %s needs a value", c->file, line, path);
      return false;
    }
    if (val.oom) {
      rt_buf_free(&val);
      seterr(c->err, c->errlen, "out of memory");
      return false;
    }
    char msg[256];
    bool ok = set_value(c->cfg, k, val.data ? val.data : "", msg, sizeof msg);
    rt_buf_free(&val);
    if (!ok) {
      seterr(c->err, c->errlen, "%s:%zu: %s", c->file, line, msg);
      return false;
    }
  }
  return true;
}

static rt_err load_yaml(rt_config *cfg, const char *file, char *err, size_t errlen) {
  FILE *f = fopen(file, "rb");
  if (!f) {
    seterr(err, errlen, "cannot open config file %s: %s", file, strerror(errno));
    return RT_EINVAL;
  }
  yaml_parser_t parser;
  yaml_document_t doc;
  if (!yaml_parser_initialize(&parser)) {
    fclose(f);
    seterr(err, errlen, "out of memory");
    return RT_ENOMEM;
  }
  yaml_parser_set_input_file(&parser, f);
  rt_err rc = RT_OK;
  if (!yaml_parser_load(&parser, &doc)) {
    seterr(err, errlen, "%s:%zu: %s", file, parser.problem_mark.line + 1,
           parser.problem ? parser.problem : "invalid YAML");
    yaml_parser_delete(&parser);
    fclose(f);
    return RT_EINVAL;
  }
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  if (root && root->type == YAML_MAPPING_NODE) {
    yaml_ctx c = {cfg, file, &doc, err, errlen};
    if (!yaml_walk(&c, root, "")) {
      rc = RT_EINVAL;
    }
  } else if (root && !(root->type == YAML_SCALAR_NODE && yaml_scalar_is_null(root))) {
    seterr(err, errlen, "%s: the top level must be a map of keys", file);
    rc = RT_EINVAL;
  }
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  fclose(f);
  return rc;
}

/* ---------- flags ---------- */

typedef struct flag_val {
  const key *k;
  const char *val;
} flag_val;

rt_err rt_config_parse(rt_config *cfg, int argc, char **argv, bool *help, char **rest, int *nrest,
                       char *errbuf, size_t errlen) {
  *help = false;
  *nrest = 0;
  flag_val *vals = rt_calloc((size_t)(argc > 0 ? argc : 1), sizeof *vals);
  if (!vals) {
    seterr(errbuf, errlen, "out of memory");
    return RT_ENOMEM;
  }
  size_t nvals = 0;
  bool ended = false;
  const char *config_file = NULL;
  rt_err rc = RT_OK;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (ended || a[0] != '-' || a[1] == 0) {
      rest[(*nrest)++] = argv[i];
      continue;
    }
    if (strcmp(a, "--") == 0) {
      ended = true;
      continue;
    }
    const char *name = a + 1 + (a[1] == '-');
    const char *eq = strchr(name, '=');
    size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
    if ((nlen == 4 && strncmp(name, "help", 4) == 0) || (nlen == 1 && name[0] == 'h')) {
      *help = true;
      continue;
    }
    const key *k = find_key(name, nlen, false);
    if (!k) {
      seterr(errbuf, errlen, "unknown flag -%.*s (ringtail -help lists them)", (int)nlen, name);
      rc = RT_EINVAL;
      break;
    }
    const char *val;
    if (eq) {
      val = eq + 1;
    } else if (k->type == K_BOOL) {
      val = "true";
    } else if (i + 1 < argc) {
      val = argv[++i];
    } else {
      seterr(errbuf, errlen, "flag -%s needs a value", k->name);
      rc = RT_EINVAL;
      break;
    }
    if (k->off == OFF(config_file)) {
      config_file = val;
    }
    vals[nvals].k = k;
    vals[nvals].val = val;
    nvals++;
  }
  if (rc == RT_OK && config_file && *config_file) {
    rc = load_yaml(cfg, config_file, errbuf, errlen);
  }
  for (size_t i = 0; rc == RT_OK && i < nvals; i++) {
    if (!set_value(cfg, vals[i].k, vals[i].val, errbuf, errlen)) {
      rc = RT_EINVAL;
    }
  }
  rt_free(vals, (size_t)(argc > 0 ? argc : 1) * sizeof *vals);
  return rc;
}

void rt_config_usage(FILE *out) {
  fprintf(out,
          "Usage: ringtail [flags]\n"
          "       ringtail dump -ingester.data-dir=DIR [-tenant=T]\n"
          "       ringtail -version\n\n"
          "Every flag is also a key of the YAML file given with -config.file: -a.b-c=v is\n"
          "`a: {b_c: v}`. Flags override the file. Durations: 100ms, 30s, 5m, 2h, 1d, 1w;\n"
          "sizes: bytes or KiB/MiB/GiB (KB/MB/GB are the same base-2 units).\n\n"
          "Flags:\n");
  for (size_t i = 0; i < NKEYS; i++) {
    const key *k = &keys[i];
    fprintf(out, "  -%s%s%s\n    \t%s", k->name, k->type == K_BOOL ? "" : " ",
            k->type == K_BOOL ? "" : type_name(k->type), k->help);
    if (k->choices) {
      fprintf(out, " One of: %s.", k->choices);
    }
    if (k->type == K_STR) {
      fprintf(out, " (default \"%s\")\n", k->def);
    } else {
      fprintf(out, " (default %s)\n", k->def);
    }
  }
}

static void yaml_quote(rt_buf *out, const char *s) {
  rt_buf_putc(out, '"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') {
      rt_buf_putc(out, '\\');
      rt_buf_putc(out, (char)*p);
    } else if (*p == '\n') {
      rt_buf_puts(out, "\\n");
    } else if (*p < 0x20) {
      rt_buf_printf(out, "\\x%02x", *p);
    } else {
      rt_buf_putc(out, (char)*p);
    }
  }
  rt_buf_putc(out, '"');
}

void rt_config_dump_yaml(const rt_config *cfg, struct rt_buf *out) {
  /* Top-level keys first, then one map per section in table order; within a section the rest
   * of the dotted name becomes one key with '_' ("reject_old_samples_max_age"). */
  for (int pass = 0; pass < 2; pass++) {
    const char *section = NULL;
    size_t section_len = 0;
    for (size_t i = 0; i < NKEYS; i++) {
      const key *k = &keys[i];
      if (k->flags & K_FLAG_ONLY) {
        continue;
      }
      const char *dot = strchr(k->name, '.');
      if ((pass == 0) != (dot == NULL)) {
        continue;
      }
      const char *leaf = k->name;
      const char *indent = "";
      if (dot) {
        size_t sl = (size_t)(dot - k->name);
        if (!section || sl != section_len || strncmp(section, k->name, sl) != 0) {
          section = k->name;
          section_len = sl;
          rt_buf_printf(out, "%.*s:\n", (int)sl, k->name);
        }
        leaf = dot + 1;
        indent = "  ";
      }
      rt_buf_puts(out, indent);
      for (const char *p = leaf; *p; p++) {
        rt_buf_putc(out, (*p == '-' || *p == '.') ? '_' : *p);
      }
      rt_buf_puts(out, ": ");
      char val[256];
      format_value(cfg, k, val, sizeof val);
      if (k->type == K_STR || k->type == K_DUR || k->type == K_SIZE) {
        if (k->type == K_STR) {
          const char *s = *(char *const *)((const char *)cfg + k->off);
          yaml_quote(out, s ? s : "");
        } else {
          yaml_quote(out, val);
        }
      } else {
        rt_buf_puts(out, val);
      }
      rt_buf_putc(out, '\n');
    }
  }
}

void rt_config_dump_flags_json(const rt_config *cfg, struct rt_buf *out) {
  rt_buf_putc(out, '{');
  for (size_t i = 0; i < NKEYS; i++) {
    const key *k = &keys[i];
    if (i) {
      rt_buf_putc(out, ',');
    }
    rt_buf_json_str(out, k->name, strlen(k->name));
    rt_buf_putc(out, ':');
    if (k->type == K_STR) {
      const char *s = *(char *const *)((const char *)cfg + k->off);
      rt_buf_json_str(out, s ? s : "", s ? strlen(s) : 0);
    } else {
      char val[256];
      format_value(cfg, k, val, sizeof val);
      rt_buf_json_str(out, val, strlen(val));
    }
  }
  rt_buf_putc(out, '}');
}
