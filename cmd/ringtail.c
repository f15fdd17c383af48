/* ringtail.c - the Ringtail binary: parses the configuration, starts the roles named by
 * -target, serves the endpoints every role shares (/metrics, /ready, /config, build info,
 * flags, a landing page) and shuts down cleanly on SIGINT/SIGTERM.
 *
 *   ringtail [flags]                                   run the roles
 *   ringtail -version                                  print the version
 *   ringtail dump -ingester.data-dir=DIR [-tenant=T]    print a data directory's samples
 *
 * Start-up order: HTTP first (so /ready answers 503 while the ingester replays its WAL), then
 * ingester, distributor, querier; then /ready turns 200. Shutdown is the reverse. */
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/auth.h"
#include "common/config.h"
#include "common/http.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/reload.h"
#include "common/rpc.h"
#include "compactor/compactor.h"
#include "ingester/ingester.h"
#include "querier/querier.h"
#include "promql/promql.h"
#include "distributor/distributor.h"
#include "ring/ring.h"

#ifndef RT_VERSION
#define RT_VERSION "unknown"
#endif
#ifndef RT_REVISION
#define RT_REVISION "unknown"
#endif
#ifndef RT_BRANCH
#define RT_BRANCH "unknown"
#endif

enum {
  ROLE_DISTRIBUTOR = 1u << 0,
  ROLE_INGESTER = 1u << 1,
  ROLE_QUERIER = 1u << 2,
  ROLE_COMPACTOR = 1u << 3, /* the data lifecycle, applied to the ingester of this process */
  ROLE_ALL = ROLE_DISTRIBUTOR | ROLE_INGESTER | ROLE_QUERIER | ROLE_COMPACTOR,
};

enum { STATE_STARTING, STATE_READY, STATE_STOPPING };

typedef struct app app;

typedef struct stat_ref {
  app *a;
  bool dist;       /* dist_stats, else ing_stats */
  size_t off;      /* offset of a uint64_t field */
} stat_ref;

struct app {
  rt_config cfg;
  unsigned roles;
  atomic_int state;
  double start_time_s;
  rt_http_server *http;
  ing_ingester *ing;
  cmp_worker *cmp; /* the compactor's worker on ing (-target=compactor) */
  char ing_endpoint[256];
  qry_querier *qry;
  pql_api *pql;           /* PromQL query API on the querier */
  dist_distributor *dist;
  ring *ring;             /* ring membership (ingester) or watcher (distributor, querier) */
  bool ring_member;       /* this process's ingester is in the ring */
  char ring_self[256];    /* its instance id */
  bool dist_ring, qry_ring; /* the distributor / querier place series by the ring */
  bool dist_announce;     /* the distributor registers in the ring (a cluster: -ring.join or
                             -ring.gossip-listen-address), so distributors can count each other */
  ring *dring;            /* the distributor's own member when `ring` is the ingester's */
  rt_metrics *dring_metrics; /* dring's ringtail_ring_* (kept off /metrics: `ring` has them) */
  ring *dist_ring_entry;  /* the ring holding the distributor's entry (ring or dring), or NULL */
  char dist_self[300];    /* the distributor's instance id */
  /* role stats snapshots for the scrape-time callbacks (see m_stat) */
  pthread_mutex_t stats_mu;
  ing_stats ing_st;
  uint64_t ing_at_ns;
  dist_stats dist_st;
  uint64_t dist_at_ns;
  stat_ref refs[64];
  size_t nrefs;
};

/* ---------- roles ---------- */

static const char *role_names(unsigned roles, char *buf, size_t len) {
  buf[0] = 0;
  static const struct {
    unsigned bit;
    const char *name;
  } names[] = {{ROLE_DISTRIBUTOR, "distributor"}, {ROLE_INGESTER, "ingester"},
               {ROLE_QUERIER, "querier"}, {ROLE_COMPACTOR, "compactor"}};
  size_t o = 0;
  for (size_t i = 0; i < RT_ARRAY_LEN(names); i++) {
    if (roles & names[i].bit) {
      int n = snprintf(buf + o, len - o, "%s%s", o ? "," : "", names[i].name);
      if (n > 0 && (size_t)n < len - o) {
        o += (size_t)n;
      }
    }
  }
  return buf;
}

/* Parses -target. Returns false with a message on an unknown role. */
static bool parse_roles(const char *target, unsigned *out, char *err, size_t errlen) {
  *out = 0;
  const char *p = target;
  while (*p) {
    while (*p == ' ' || *p == ',') {
      p++;
    }
    if (!*p) {
      break;
    }
    const char *e = p;
    while (*e && *e != ',' && *e != ' ') {
      e++;
    }
    size_t n = (size_t)(e - p);
    if (n == 3 && strncmp(p, "all", 3) == 0) {
      *out |= ROLE_ALL;
    } else if (n == 11 && strncmp(p, "distributor", 11) == 0) {
      *out |= ROLE_DISTRIBUTOR;
    } else if (n == 8 && strncmp(p, "ingester", 8) == 0) {
      *out |= ROLE_INGESTER;
    } else if (n == 7 && strncmp(p, "querier", 7) == 0) {
      *out |= ROLE_QUERIER;
    } else if (n == 9 && strncmp(p, "compactor", 9) == 0) {
      *out |= ROLE_COMPACTOR;
    } else if (n == 5 && strncmp(p, "ruler", 5) == 0) {
      snprintf(err, errlen, "role %.*s is not available in this version", (int)n, p);
      return false;
    } else {
      snprintf(err, errlen,
               "unknown role \"%.*s\" in -target (known: all, distributor, ingester, querier, "
               "compactor)",
               (int)n, p);
      return false;
    }
    p = e;
  }
  if (*out == 0) {
    snprintf(err, errlen, "-target names no role");
    return false;
  }
  if ((*out & ROLE_COMPACTOR) && !(*out & ROLE_INGESTER)) {
    snprintf(err, errlen,
             "the compactor works on the database of the ingester in its own process (each "
             "ingester's RocksDB is opened by that process alone): run it with the ingester, "
             "-target=ingester,compactor");
    return false;
  }
  return true;
}

/* ---------- process and ingester metrics (read at scrape time) ---------- */

static double proc_statm(int field) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) {
    return 0;
  }
  unsigned long v[2] = {0, 0};
  int n = fscanf(f, "%lu %lu", &v[0], &v[1]);
  fclose(f);
  if (n != 2) {
    return 0;
  }
  return (double)v[field] * (double)sysconf(_SC_PAGESIZE);
}

static double m_rss(void *ctx) {
  (void)ctx;
  return proc_statm(1);
}

static double m_vsize(void *ctx) {
  (void)ctx;
  return proc_statm(0);
}

static double m_cpu(void *ctx) {
  (void)ctx;
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) {
    return 0;
  }
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double m_open_fds(void *ctx) {
  (void)ctx;
  DIR *d = opendir("/proc/self/fd");
  if (!d) {
    return 0;
  }
  double n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] != '.') {
      n++;
    }
  }
  closedir(d);
  return n - 1;   /* the directory stream's own descriptor */
}

static double m_max_fds(void *ctx) {
  (void)ctx;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    return 0;
  }
  return rl.rlim_cur == RLIM_INFINITY ? 0 : (double)rl.rlim_cur;
}

static double m_start_time(void *ctx) { return ((app *)ctx)->start_time_s; }

static double m_one(void *ctx) {
  (void)ctx;
  return 1;
}

/* A counter or gauge read from a role's stats snapshot: `off` is the byte offset of a uint64_t
 * field inside ing_stats or dist_stats. The snapshots are refreshed at most every 200 ms, so
 * one scrape reads each role's stats once. */
static const ing_stats *ing_snapshot(app *a) {
  pthread_mutex_lock(&a->stats_mu);
  uint64_t now = rt_mono_ns();
  if (a->ing && (a->ing_at_ns == 0 || now - a->ing_at_ns > 200000000ull)) {
    ing_get_stats(a->ing, &a->ing_st);
    a->ing_at_ns = now;
  }
  pthread_mutex_unlock(&a->stats_mu);
  return &a->ing_st;
}

static const dist_stats *dist_snapshot(app *a) {
  pthread_mutex_lock(&a->stats_mu);
  uint64_t now = rt_mono_ns();
  if (a->dist && (a->dist_at_ns == 0 || now - a->dist_at_ns > 200000000ull)) {
    dist_get_stats(a->dist, &a->dist_st);
    a->dist_at_ns = now;
  }
  pthread_mutex_unlock(&a->stats_mu);
  return &a->dist_st;
}

static double m_stat(void *ctx) {
  const stat_ref *r = ctx;
  const void *base = r->dist ? (const void *)dist_snapshot(r->a) : (const void *)ing_snapshot(r->a);
  uint64_t v;
  memcpy(&v, (const char *)base + r->off, sizeof v);
  return (double)v;
}

/* Registers a callback metric reading the uint64_t at `off` of the role's stats. */
static void stat_metric(app *a, bool dist, size_t off, rt_metric_type type, const char *name,
                        const char *help, const char *label, const char *value) {
  if (a->nrefs == RT_ARRAY_LEN(a->refs)) {
    rt_error("main", "too many stats metrics", "name=%s", name);
    return;
  }
  stat_ref *r = &a->refs[a->nrefs++];
  r->a = a;
  r->dist = dist;
  r->off = off;
  rt_metrics *m = rt_metrics_default();
  if (label) {
    rt_metrics_add_fn(m, type, name, help, m_stat, r, label, value);
  } else {
    rt_metrics_add_fn(m, type, name, help, m_stat, r, NULL);
  }
}

static void register_ingester_metrics(app *a) {
  stat_metric(a, false, offsetof(ing_stats, active_series), RT_METRIC_GAUGE,
              "ringtail_ingester_memory_series", "Series held in the ingester's head, all tenants.",
              NULL, NULL);
  stat_metric(a, false, offsetof(ing_stats, series_removed), RT_METRIC_COUNTER,
              "ringtail_ingester_series_removed_total",
              "Series that left the ingester's head as idle or expired (idle ones stay on disk).",
              NULL, NULL);
  stat_metric(a, false, offsetof(ing_stats, retention_series), RT_METRIC_COUNTER,
              "ringtail_compactor_retention_deleted_series_total",
              "Series deleted whole by retention (record, postings, chunks, tombstones).", NULL,
              NULL);
  stat_metric(a, false, offsetof(ing_stats, retention_chunks), RT_METRIC_COUNTER,
              "ringtail_compactor_retention_deleted_chunks_total",
              "Closed chunks of remaining series deleted by retention.", NULL, NULL);
  stat_metric(a, false, offsetof(ing_stats, samples_appended), RT_METRIC_COUNTER,
              "ringtail_ingester_samples_appended_total",
              "Samples appended to the ingester's head.", NULL, NULL);
  static const char *const reasons[5] = {NULL, "duplicate_timestamp", "out_of_order", "too_old",
                                         "limit"};
  for (size_t i = 1; i < RT_ARRAY_LEN(reasons); i++) {
    stat_metric(a, false, offsetof(ing_stats, samples_rejected) + i * sizeof(uint64_t),
                RT_METRIC_COUNTER, "ringtail_ingester_samples_rejected_total",
                "Samples the ingester rejected, by reason.", "reason", reasons[i]);
  }
  stat_metric(a, false, offsetof(ing_stats, wal_bytes), RT_METRIC_GAUGE,
              "ringtail_ingester_wal_bytes", "Size of the write-ahead log in RocksDB, in bytes.",
              NULL, NULL);
  stat_metric(a, false, offsetof(ing_stats, memtable_bytes), RT_METRIC_GAUGE,
              "ringtail_ingester_memtable_bytes",
              "Memory of RocksDB's memtables (bounded by the column families' write buffers).",
              NULL, NULL);
  stat_metric(a, false, offsetof(ing_stats, db_bytes), RT_METRIC_GAUGE,
              "ringtail_ingester_db_bytes",
              "Size of the ingester's RocksDB database (live SST files and memtables), in bytes.",
              NULL, NULL);
  stat_metric(a, false, offsetof(ing_stats, chunks_closed), RT_METRIC_COUNTER,
              "ringtail_ingester_chunks_closed_total",
              "Head chunks closed and written to RocksDB.", NULL, NULL);
  stat_metric(a, false, offsetof(ing_stats, ha_records), RT_METRIC_GAUGE,
              "ringtail_ingester_ha_arbiter_records",
              "(tenant, cluster) pairs whose HA election this ingester arbitrates.", NULL, NULL);
  stat_metric(a, false, offsetof(ing_stats, ha_elections), RT_METRIC_COUNTER,
              "ringtail_ingester_ha_arbiter_elections_total",
              "Replicas this ingester elected as HA arbiter (first elections and changes).",
              NULL, NULL);
}

static double m_dist_instances(void *ctx) {
  app *a = ctx;
  return a->dist ? (double)dist_distributor_count(a->dist) : 0;
}

/* Healthy distributors in the ring (the hook of dist_set_distributor_count): 0 when the ring
 * shows none, so the distributor falls back to -distributor.instances. */
static size_t ring_distributor_count(void *ctx) {
  app *a = ctx;
  ring_snapshot *s = ring_snapshot_acquire(a->dist_ring_entry);
  size_t n = ring_snapshot_healthy_role(s, RING_ROLE_DISTRIBUTOR, rt_now_ms());
  ring_snapshot_release(s);
  return n;
}

static void register_distributor_metrics(app *a) {
  rt_metrics_add_fn(rt_metrics_default(), RT_METRIC_GAUGE, "ringtail_distributor_instances",
                    "Distributors sharing each tenant's ingestion rate as this one counts them "
                    "(healthy distributors in the ring, else -distributor.instances); each "
                    "enforces ingestion_rate divided by this.",
                    m_dist_instances, a, NULL);
  static const int codes[DIST_NSTATUS] = DIST_STATUS_CODES;
  for (size_t i = 0; i < DIST_NSTATUS; i++) {
    char code[16];
    snprintf(code, sizeof code, "%d", codes[i]);
    stat_metric(a, true, offsetof(dist_stats, requests) + i * sizeof(uint64_t),
                RT_METRIC_COUNTER, "ringtail_distributor_requests_total",
                "Remote-write requests answered, by HTTP status code.", "status_code", code);
  }
  static const struct {
    size_t off;
    const char *name;
    const char *help;
  } counters[] = {
      {offsetof(dist_stats, bytes_received), "ringtail_distributor_received_bytes_total",
       "Remote-write body bytes received (compressed)."},
      {offsetof(dist_stats, bytes_decompressed), "ringtail_distributor_decompressed_bytes_total",
       "Remote-write bytes after snappy decompression."},
      {offsetof(dist_stats, series_received), "ringtail_distributor_received_series_total",
       "Series received in remote-write requests."},
      {offsetof(dist_stats, histograms_received),
       "ringtail_distributor_received_histograms_total",
       "Native histogram samples received (not stored)."},
      {offsetof(dist_stats, exemplars_received), "ringtail_distributor_received_exemplars_total",
       "Exemplars received (ignored)."},
      {offsetof(dist_stats, metadata_received), "ringtail_distributor_received_metadata_total",
       "Metric metadata entries received."},
      {offsetof(dist_stats, ingester_errors), "ringtail_distributor_ingester_errors_total",
       "Failed calls to ingesters (timeouts, unavailable, errors)."},
      {offsetof(dist_stats, ha_arbiter_calls), "ringtail_ha_tracker_arbiter_calls_total",
       "Questions asked of HA arbiters (one per arbiter)."},
      {offsetof(dist_stats, ha_arbiter_errors), "ringtail_ha_tracker_arbiter_errors_total",
       "Questions to HA arbiters that got no answer."},
      {offsetof(dist_stats, ha_elected_changes), "ringtail_ha_tracker_elected_changes_total",
       "Changes of an HA cluster's elected replica seen by this distributor (all tenants)."},
  };
  for (size_t i = 0; i < RT_ARRAY_LEN(counters); i++) {
    stat_metric(a, true, counters[i].off, RT_METRIC_COUNTER, counters[i].name, counters[i].help,
                NULL, NULL);
  }
  /* received, accepted and discarded samples are counted per tenant by the distributor
   * itself (ringtail_distributor_received_samples_total{user}, ..._accepted_samples_total{user},
   * ringtail_discarded_samples_total{user,reason}) */
}

static void register_process_metrics(app *a) {
  rt_metrics *m = rt_metrics_default();
  rt_metrics_add_fn(m, RT_METRIC_GAUGE, "process_resident_memory_bytes",
                    "Resident memory size in bytes.", m_rss, a, NULL);
  rt_metrics_add_fn(m, RT_METRIC_GAUGE, "process_virtual_memory_bytes",
                    "Virtual memory size in bytes.", m_vsize, a, NULL);
  rt_metrics_add_fn(m, RT_METRIC_COUNTER, "process_cpu_seconds_total",
                    "Total user and system CPU time spent in seconds.", m_cpu, a, NULL);
  rt_metrics_add_fn(m, RT_METRIC_GAUGE, "process_open_fds", "Number of open file descriptors.",
                    m_open_fds, a, NULL);
  rt_metrics_add_fn(m, RT_METRIC_GAUGE, "process_max_fds",
                    "Maximum number of open file descriptors.", m_max_fds, a, NULL);
  rt_metrics_add_fn(m, RT_METRIC_GAUGE, "process_start_time_seconds",
                    "Start time of the process since the Unix epoch in seconds.", m_start_time, a,
                    NULL);
  rt_metrics_add_fn(m, RT_METRIC_GAUGE, "ringtail_build_info",
                    "A metric with a constant '1' value labeled by version and revision.", m_one,
                    a, "version,revision", RT_VERSION, RT_REVISION);
}

static void remove_stat_metrics(app *a) {
  for (size_t i = 0; i < a->nrefs; i++) {
    rt_metrics_remove_fn(rt_metrics_default(), &a->refs[i]);
  }
  a->nrefs = 0;
}

static rt_err reload_limits(void *ctx, char *err, size_t errlen) {
  (void)ctx;
  return rt_limits_reload(err, errlen);
}

/* ---------- shared endpoints ---------- */

static void h_ready(void *ctx, const rt_http_req *req, rt_http_resp *resp) {
  (void)req;
  app *a = ctx;
  int st = atomic_load(&a->state);
  if (st == STATE_READY) {
    rt_http_text(resp, 200, "ready\n");
  } else {
    rt_http_text(resp, 503, "%s\n", st == STATE_STARTING ? "starting" : "stopping");
  }
}

static void h_metrics(void *ctx, const rt_http_req *req, rt_http_resp *resp) {
  (void)ctx;
  (void)req;
  rt_metrics_expose(rt_metrics_default(), &resp->body);
  resp->content_type = RT_METRICS_CONTENT_TYPE;
}

static void h_config(void *ctx, const rt_http_req *req, rt_http_resp *resp) {
  (void)req;
  app *a = ctx;
  rt_config_dump_yaml(&a->cfg, &resp->body);
  resp->content_type = "text/plain; charset=utf-8";
}

static void h_buildinfo(void *ctx, const rt_http_req *req, rt_http_resp *resp) {
  (void)ctx;
  (void)req;
  rt_buf_puts(&resp->body, "{\"status\":\"success\",\"data\":{\"application\":\"ringtail\",\"version\":");
  rt_buf_json_str(&resp->body, RT_VERSION, strlen(RT_VERSION));
  rt_buf_puts(&resp->body, ",\"revision\":");
  rt_buf_json_str(&resp->body, RT_REVISION, strlen(RT_REVISION));
  rt_buf_puts(&resp->body, ",\"branch\":");
  rt_buf_json_str(&resp->body, RT_BRANCH, strlen(RT_BRANCH));
  rt_buf_puts(&resp->body, ",\"buildUser\":\"\",\"buildDate\":\"\",\"goVersion\":\"\"}}");
}

static void h_flags(void *ctx, const rt_http_req *req, rt_http_resp *resp) {
  (void)req;
  app *a = ctx;
  rt_buf_puts(&resp->body, "{\"status\":\"success\",\"data\":");
  rt_config_dump_flags_json(&a->cfg, &resp->body);
  rt_buf_puts(&resp->body, "}");
}

/* Prometheus' /api/v1/status/config: the configuration as YAML inside JSON. */
static void h_status_config(void *ctx, const rt_http_req *req, rt_http_resp *resp) {
  (void)req;
  app *a = ctx;
  rt_buf yaml = RT_BUF_INIT;
  rt_config_dump_yaml(&a->cfg, &yaml);
  rt_buf_puts(&resp->body, "{\"status\":\"success\",\"data\":{\"yaml\":");
  rt_buf_json_str(&resp->body, yaml.data ? yaml.data : "", yaml.len);
  rt_buf_puts(&resp->body, "}}");
  if (yaml.oom) {
    resp->body.oom = true;
  }
  rt_buf_free(&yaml);
}

/* Prometheus' /api/v1/status/runtimeinfo, with what is meaningful here. */
static void h_runtimeinfo(void *ctx, const rt_http_req *req, rt_http_resp *resp) {
  (void)req;
  app *a = ctx;
  char cwd[1024];
  if (!getcwd(cwd, sizeof cwd)) {
    snprintf(cwd, sizeof cwd, "unknown");
  }
  time_t start = (time_t)a->start_time_s;
  struct tm tm;
  gmtime_r(&start, &tm);
  char ts[64];
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  rt_buf_printf(&resp->body, "{\"status\":\"success\",\"data\":{\"startTime\":\"%s\",\"CWD\":", ts);
  rt_buf_json_str(&resp->body, cwd, strlen(cwd));
  rt_buf_printf(&resp->body,
                ",\"reloadConfigSuccess\":true,\"lastConfigTime\":\"%s\",\"corruptionCount\":0,"
                "\"goroutineCount\":0,\"GOMAXPROCS\":%ld,\"GOGC\":\"\",\"GODEBUG\":\"\","
                "\"storageRetention\":\"\"}}",
                ts, sysconf(_SC_NPROCESSORS_ONLN));
}

static void h_index(void *ctx, const rt_http_req *req, rt_http_resp *resp) {
  (void)req;
  app *a = ctx;
  char roles[64];
  resp->content_type = "text/html; charset=utf-8";
  rt_buf_printf(&resp->body,
                "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Ringtail</title>"
                "</head>\n<body>\n<h1>Ringtail %s</h1>\n<p>Roles: %s. State: %s.</p>\n<ul>\n",
                RT_VERSION, role_names(a->roles, roles, sizeof roles),
                atomic_load(&a->state) == STATE_READY ? "ready" : "not ready");
  static const char *const links[][2] = {
      {"/ready", "Readiness"},
      {"/metrics", "Ringtail's own metrics"},
      {"/config", "Effective configuration (YAML)"},
      {"/api/v1/status/buildinfo", "Build information"},
      {"/api/v1/status/flags", "Flags"},
      {"/api/v1/status/config", "Configuration (Prometheus API)"},
      {"/api/v1/status/runtimeinfo", "Runtime information"},
  };
  for (size_t i = 0; i < RT_ARRAY_LEN(links); i++) {
    rt_buf_printf(&resp->body, "<li><a href=\"%s\">%s</a> &mdash; %s</li>\n", links[i][0],
                  links[i][0], links[i][1]);
  }
  rt_buf_puts(&resp->body,
              "</ul>\n<p>Remote-write: <code>POST /api/v1/push</code>. Prometheus API (Grafana "
              "data source URL): <code>/prometheus</code>.</p>\n</body></html>\n");
}

static rt_err add_shared_routes(app *a) {
  rt_http_server *h = a->http;
  rt_err rc = RT_OK;
  if (rc == RT_OK) rc = rt_http_route(h, "GET", "/ready", 0, 0, h_ready, a);
  if (rc == RT_OK) rc = rt_http_route(h, "GET", "/metrics", 0, 0, h_metrics, a);
  if (rc == RT_OK) rc = rt_http_route(h, "GET", "/config", 0, 0, h_config, a);
  if (rc == RT_OK) {
    rc = rt_http_route(h, "GET", "/api/v1/status/buildinfo", RT_HTTP_PROM_API, 0, h_buildinfo, a);
  }
  if (rc == RT_OK) {
    rc = rt_http_route(h, "GET", "/api/v1/status/flags", RT_HTTP_PROM_API, 0, h_flags, a);
  }
  if (rc == RT_OK) {
    rc = rt_http_route(h, "GET", "/api/v1/status/config", RT_HTTP_PROM_API, 0, h_status_config,
                       a);
  }
  if (rc == RT_OK) {
    rc = rt_http_route(h, "GET", "/api/v1/status/runtimeinfo", RT_HTTP_PROM_API, 0, h_runtimeinfo,
                       a);
  }
  if (rc == RT_OK) rc = rt_http_route(h, "GET", "/", 0, 0, h_index, a);
  return rc;
}

/* ---------- auth subcommand ---------- */

/* Reads one secret from stdin (first line, without its newline). */
static bool read_secret(char *buf, size_t len) {
  if (!fgets(buf, (int)len, stdin)) {
    return false;
  }
  size_t n = strlen(buf);
  if (n == len - 1 && buf[n - 1] != '\n') {
    return false;   /* too long */
  }
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
    buf[--n] = 0;
  }
  return n > 0;
}

static int cmd_auth(int argc, char **argv) {
  const char *sub = argc > 2 ? argv[2] : "";
  if (strcmp(sub, "hash") == 0 && argc == 3) {
    char secret[1100];
    if (!read_secret(secret, sizeof secret)) {
      fprintf(stderr, "ringtail auth hash: give the secret (1..1024 characters) on stdin, e.g. "
                      "`printf '%%s' 'passw0rd' | ringtail auth hash`\n");
      return 2;
    }
    char hash[256];
    rt_err rc = rt_auth_hash_secret(secret, hash, sizeof hash);
    explicit_bzero(secret, sizeof secret);
    if (rc != RT_OK) {
      fprintf(stderr, "ringtail auth hash: %s\n", rt_strerror(rc));
      return 1;
    }
    printf("%s\n", hash);
    return 0;
  }
  if (strcmp(sub, "new-token") == 0 && argc <= 4) {
    const char *rights = argc == 4 ? argv[3] : "write, read";
    char token[128], id[32], hash[256];
    rt_err rc = rt_auth_new_token(token, sizeof token, id, sizeof id);
    if (rc == RT_OK) {
      rc = rt_auth_hash_secret(token, hash, sizeof hash);
    }
    if (rc != RT_OK) {
      fprintf(stderr, "ringtail auth new-token: %s\n", rt_strerror(rc));
      return 1;
    }
    printf("# token (give it to the client; it is not stored anywhere):\n"
           "# %s\n"
           "# entry for the tokens list of a workspace in the workspaces file:\n"
           "- id: %s\n"
           "  hash: \"%s\"\n"
           "  rights: [%s]\n",
           token, id, hash, rights);
    explicit_bzero(token, sizeof token);
    return 0;
  }
  if (strcmp(sub, "check") == 0 && argc == 4) {
    rt_auth *a = NULL;
    char err[512];
    if (rt_auth_create("token", argv[3], &a, err, sizeof err) != RT_OK) {
      fprintf(stderr, "ringtail auth check: %s\n", err);
      return 1;
    }
    printf("%s: ok, %zu credentials\n", argv[3], rt_auth_ncredentials(a));
    rt_auth_destroy(a);
    return 0;
  }
  fprintf(stderr,
          "usage: ringtail auth hash             reads a secret on stdin, prints its hash\n"
          "       ringtail auth new-token [RIGHTS] prints a new token and its workspaces-file "
          "entry (RIGHTS e.g. \"write, read\")\n"
          "       ringtail auth check FILE        validates a workspaces file\n");
  return 2;
}

/* ---------- dump subcommand ---------- */

static int cmd_dump(int argc, char **argv) {
  /* `-tenant` and `-data-dir` belong to dump only; the rest are ordinary flags. */
  char **args = rt_calloc((size_t)argc + 1, sizeof *args);
  if (!args) {
    return 1;
  }
  int nargs = 0;
  const char *tenant = NULL;
  const char *data_dir = NULL;
  args[nargs++] = argv[0];
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    const char *n = a[0] == '-' ? a + 1 + (a[1] == '-') : NULL;
    const char **target = NULL;
    size_t nl = 0;
    if (n && strncmp(n, "tenant", 6) == 0 && (n[6] == 0 || n[6] == '=')) {
      target = &tenant;
      nl = 6;
    } else if (n && strncmp(n, "data-dir", 8) == 0 && (n[8] == 0 || n[8] == '=')) {
      target = &data_dir;
      nl = 8;
    }
    if (target) {
      if (n[nl] == '=') {
        *target = n + nl + 1;
      } else if (i + 1 < argc) {
        *target = argv[++i];
      } else {
        fprintf(stderr, "ringtail dump: %s needs a value\n", a);
        rt_free(args, 0);
        return 2;
      }
      continue;
    }
    args[nargs++] = argv[i];
  }
  rt_config cfg;
  rt_config_defaults(&cfg);
  bool help = false;
  char *rest[64];
  int nrest = 0;
  char err[512];
  int rc = 0;
  if (nargs > (int)RT_ARRAY_LEN(rest)) {
    fprintf(stderr, "ringtail dump: too many arguments\n");
    rc = 2;
  } else if (rt_config_parse(&cfg, nargs, args, &help, rest, &nrest, err, sizeof err) != RT_OK) {
    fprintf(stderr, "ringtail dump: %s\n", err);
    rc = 2;
  } else if (help) {
    printf("Usage: ringtail dump -ingester.data-dir=DIR [-tenant=T]\n"
           "Prints every sample of a data directory (read-only), one line per sample:\n"
           "{labels} <timestamp ms> <value>, grouped per tenant.\n");
  } else if (nrest > 0) {
    fprintf(stderr, "ringtail dump: unexpected argument %s\n", rest[0]);
    rc = 2;
  } else {
    rt_err e = ing_dump(data_dir ? data_dir : cfg.data_dir, tenant, stdout);
    fflush(stdout);
    if (e != RT_OK) {
      fprintf(stderr, "ringtail dump: %s: %s\n", data_dir ? data_dir : cfg.data_dir,
              rt_strerror(e));
      rc = 1;
    }
  }
  rt_config_free(&cfg);
  rt_free(args, 0);
  return rc;
}

/* ---------- main ---------- */

static rt_err start_ingester(app *a) {
  ing_config ic = {
      .data_dir = a->cfg.data_dir,
      .ooo_window_ms = a->cfg.ooo_window_ms,
      .wal_sync = strcmp(a->cfg.wal_sync, "none") != 0,
      .chunk_max_samples = a->cfg.chunk_max_samples,
      .chunk_max_age_ms = a->cfg.chunk_max_age_ms,
      .series_idle_timeout_ms = a->cfg.series_idle_timeout_ms,
      .metrics = rt_metrics_default(),
      /* a single process without a ring: its own distributor is the only one asking the HA
       * arbiter, and its cache dies with the arbiter's records */
      .ha_no_startup_wait = (a->roles & ROLE_DISTRIBUTOR) && !a->cfg.ring_join[0] &&
                            !a->cfg.ring_gossip_listen[0],
  };
  cmp_rules rules;
  cmp_rules_from_config(&a->cfg, &rules);
  if (a->roles & ROLE_COMPACTOR) {
    cmp_rules_apply_to_ingester(&rules, &ic);
  } else {
    rt_warn("main", "no compactor role in this process: every series stays in the ingester's "
                    "head until it stops and retention deletes nothing (use "
                    "-target=ingester,compactor)", NULL);
  }
  rt_info("main", "opening the ingester's data directory", "data_dir=\"%s\"", ic.data_dir);
  rt_err rc = ing_create(&ic, &a->ing);
  if (rc != RT_OK) {
    rt_error("main", "cannot open the ingester", "data_dir=\"%s\" err=\"%s\"", ic.data_dir,
             rt_strerror(rc));
    return rc;
  }
  /* With other roles in this process they reach the ingester over inproc://; alone it serves
   * its RPC on -server.rpc-listen-address. */
  const char *ep = ((a->roles & ~(ROLE_INGESTER | ROLE_COMPACTOR)) && !a->cfg.ring_join[0]) ? "inproc://ingester"
                                                                        : a->cfg.grpc_listen_address;
  snprintf(a->ing_endpoint, sizeof a->ing_endpoint, "%s", ep);
  rc = ing_serve(a->ing, a->ing_endpoint, a->cfg.rpc_workers);
  if (rc != RT_OK) {
    rt_error("main", "cannot serve the ingester's RPC", "endpoint=%s err=\"%s\"", a->ing_endpoint,
             rt_strerror(rc));
    return rc;
  }
  register_ingester_metrics(a);
  rt_info("main", "ingester started", "rpc_endpoint=%s", a->ing_endpoint);
  if (a->roles & ROLE_COMPACTOR) {
    rc = cmp_worker_create(&rules, a->ing, &a->cmp);
    if (rc != RT_OK) {
      rt_error("main", "cannot start the compactor", "err=\"%s\"", rt_strerror(rc));
      return rc;
    }
  }
  return RT_OK;
}

/* The distributor, like the querier, connects to its ingesters lazily. */
static rt_err start_distributor(app *a) {
  dist_config dc;
  dist_config_from_rt(&a->cfg, &dc);
  dc.ring = a->dist_ring ? a->ring : NULL; /* else a static ring of -distributor.ingester-addresses */
  rt_err rc = dist_create(&dc, &a->dist);
  if (rc == RT_OK && a->dist_ring_entry) {
    /* each distributor enforces its share of a tenant's rate: rate / distributors in the ring */
    dist_set_distributor_count(a->dist, ring_distributor_count, a);
  }
  if (rc == RT_OK) {
    rc = dist_register(a->dist, a->http);
  }
  if (rc != RT_OK) {
    rt_error("main", "cannot start the distributor", "err=\"%s\"", rt_strerror(rc));
    return rc;
  }
  register_distributor_metrics(a);
  rt_info("main", "distributor started", "max_body_bytes=%zu", dc.max_recv_msg_size);
  return RT_OK;
}

/* The querier connects lazily, so it is created (and its routes added) before the ingester is
 * up; reads issued meanwhile answer 503. */
static rt_err start_querier(app *a) {
  qry_config qc = {
      .ingesters = a->cfg.querier_ingesters,
      .timeout_ms = a->cfg.query_timeout_ms,
      .ring = a->qry_ring ? a->ring : NULL,
  };
  rt_err rc = qry_create(&qc, &a->qry);
  if (rc == RT_OK) {
    rc = qry_register(a->qry, a->http);
  }
  if (rc == RT_OK) {
    rc = pql_api_register_querier(a->qry, a->http, &a->pql);
  }
  if (rc != RT_OK) {
    rt_error("main", "cannot start the querier", "err=\"%s\"", rt_strerror(rc));
    return rc;
  }
  rt_info("main", "querier started", "ingesters=%zu", qry_ingester_count(a->qry));
  return RT_OK;
}


/* ---------- ring ---------- */

static int mkdirs(const char *path) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p == '/') {
      *p = 0;
      if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
        return -1;
      }
      *p = '/';
    }
  }
  return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* The endpoint other processes dial: the listen endpoint with a wildcard host replaced by the
 * host name. */
static void advertised(const char *listen, char *out, size_t len) {
  const char *hp = strstr(listen, "://");
  char host[256];
  if (gethostname(host, sizeof host) != 0 || !host[0]) {
    snprintf(host, sizeof host, "localhost");
  }
  if (hp && (strncmp(hp + 3, "0.0.0.0:", 8) == 0 || strncmp(hp + 3, "*:", 2) == 0)) {
    const char *port = strchr(hp + 3, ':');
    snprintf(out, len, "%.*s://%s%s", (int)(hp - listen), listen, host, port);
  } else {
    snprintf(out, len, "%s", listen);
  }
}

/* The distributor's own entry when the ring member is the ingester's (both roles in one process
 * of a cluster): a second member "<id>-distributor" without tokens or gossip server of its own,
 * which gossips with the same peers and the process's own gossip endpoint. */
static rt_err start_distributor_entry(app *a, const ring_config *base) {
  ring_config rc = *base;
  snprintf(a->dist_self, sizeof a->dist_self, "%s-distributor", base->instance_id);
  rc.instance_id = a->dist_self;
  rc.role = RING_ROLE_DISTRIBUTOR;
  rc.zone = "";
  rc.rpc_addr = "";
  rc.data_dir = NULL;
  rc.gossip_bind = NULL;
  rc.gossip_advertise = NULL;
  char join[2048];
  const char *own = ring_gossip_addr(a->ring);
  snprintf(join, sizeof join, "%s%s%s", a->cfg.ring_join, a->cfg.ring_join[0] && own[0] ? "," : "",
           own);
  rc.join = join;
  if (rt_metrics_create(&a->dring_metrics) != RT_OK) {
    return RT_ENOMEM;
  }
  rc.metrics = a->dring_metrics;
  char err[512] = "";
  rt_err e = ring_create(&rc, &a->dring, err, sizeof err);
  if (e != RT_OK) {
    rt_error("main", "cannot register the distributor in the ring", "err=\"%s\" detail=\"%s\"",
             rt_strerror(e), err);
    return e;
  }
  a->dist_ring_entry = a->dring;
  return RT_OK;
}

/* Creates the ring member (ingester: own id, tokens in the data directory, state JOINING; a
 * distributor of a cluster: an entry of role distributor, no tokens) or watcher (querier).
 * -target=all without -ring.join is a one-member ring with RF 1 whose ingester is reached over
 * inproc://. */
static rt_err start_ring(app *a) {
  char host[256];
  if (gethostname(host, sizeof host) != 0 || !host[0]) {
    snprintf(host, sizeof host, "ingester");
  }
  char rpc[256] = "", http[300] = "", did[300] = "";
  ring_config rc;
  ring_config_defaults(&rc);
  const char *hh = strcmp(a->cfg.http_listen_address, "0.0.0.0") == 0 ||
                           !a->cfg.http_listen_address[0]
                       ? host
                       : a->cfg.http_listen_address;
  snprintf(http, sizeof http, "%s:%d", hh, a->cfg.http_listen_port);
  if (!a->ring_member && a->dist_announce) {
    /* a distributor without an ingester: its entry is the member's own */
    if (a->cfg.ring_instance_id[0]) {
      snprintf(did, sizeof did, "%s", a->cfg.ring_instance_id);
    } else {
      /* unique per host without configuration: several distributors may share a host */
      if (a->cfg.http_listen_port > 0) {
        snprintf(did, sizeof did, "%s-distributor-%d", host, a->cfg.http_listen_port);
      } else {
        snprintf(did, sizeof did, "%s-distributor-%d", host, (int)getpid());
      }
    }
    rc.instance_id = did;
    rc.role = RING_ROLE_DISTRIBUTOR;
    rc.http_addr = http;
  }
  if (a->ring_member) {
    if (a->cfg.ring_rpc_advertise[0]) {
      snprintf(rpc, sizeof rpc, "%s", a->cfg.ring_rpc_advertise);
    } else if ((a->roles & ~(ROLE_INGESTER | ROLE_COMPACTOR)) && !a->cfg.ring_join[0]) {
      snprintf(rpc, sizeof rpc, "inproc://ingester");
    } else {
      advertised(a->cfg.grpc_listen_address, rpc, sizeof rpc);
    }
    if (mkdirs(a->cfg.data_dir) != 0) {
      rt_error("main", "cannot create the data directory", "data_dir=\"%s\" err=\"%s\"",
               a->cfg.data_dir, strerror(errno));
      return RT_EIO;
    }
    rc.instance_id = a->cfg.ring_instance_id[0] ? a->cfg.ring_instance_id : host;
    rc.zone = a->cfg.ring_zone;
    rc.http_addr = http;
    rc.rpc_addr = rpc;
    rc.data_dir = a->cfg.data_dir;
    rc.num_tokens = a->cfg.ring_tokens > 0 ? a->cfg.ring_tokens : 128;
  }
  rc.gossip_bind = a->cfg.ring_gossip_listen[0] ? a->cfg.ring_gossip_listen : NULL;
  rc.gossip_advertise = a->cfg.ring_gossip_advertise[0] ? a->cfg.ring_gossip_advertise : NULL;
  rc.join = a->cfg.ring_join[0] ? a->cfg.ring_join : NULL;
  if (a->cfg.ring_gossip_interval_ms > 0) {
    rc.gossip_interval_ms = a->cfg.ring_gossip_interval_ms;
  }
  rc.replication_factor = a->cfg.ring_replication_factor > 0 ? a->cfg.ring_replication_factor
                          : a->cfg.ring_join[0]            ? 3
                                                           : 1;
  if (a->cfg.ring_heartbeat_period_ms > 0) {
    rc.heartbeat_period_ms = a->cfg.ring_heartbeat_period_ms;
  }
  if (a->cfg.ring_heartbeat_timeout_ms > 0) {
    rc.heartbeat_timeout_ms = a->cfg.ring_heartbeat_timeout_ms;
  }
  char err[512] = "";
  rt_err e = ring_create(&rc, &a->ring, err, sizeof err);
  if (e != RT_OK) {
    rt_error("main", "cannot start the ring", "err=\"%s\" detail=\"%s\"", rt_strerror(e), err);
    return e;
  }
  e = ring_http_register(a->ring, a->http);
  if (e != RT_OK) {
    return e;
  }
  if (a->ring_member) {
    snprintf(a->ring_self, sizeof a->ring_self, "%s", rc.instance_id);
  } else if (a->dist_announce) {
    snprintf(a->dist_self, sizeof a->dist_self, "%s", did);
    a->dist_ring_entry = a->ring;
  }
  rt_info("main", "ring started", "instance=%s zone=%s rpc=%s gossip=%s join=%s rf=%d",
          rc.instance_id ? rc.instance_id : "(watcher)", a->ring_member ? rc.zone : "",
          a->ring_member ? rpc : "", ring_gossip_addr(a->ring), a->cfg.ring_join,
          rc.replication_factor);
  if (a->ring_member && a->dist_announce) {
    rc.http_addr = http;
    e = start_distributor_entry(a, &rc);
  }
  return e;
}

static void stop_all(app *a) {
  atomic_store(&a->state, STATE_STOPPING);
  if (a->http) {
    rt_http_server_destroy(a->http);   /* waits for requests in flight */
    a->http = NULL;
  }
  pql_api_destroy(a->pql);
  a->pql = NULL;
  if (a->qry) {
    qry_destroy(a->qry);
    a->qry = NULL;
  }
  remove_stat_metrics(a);
  if (a->dist) {
    dist_destroy(a->dist);
    a->dist = NULL;
  }
  rt_metrics_remove_fn(rt_metrics_default(), a);
  cmp_worker_destroy(a->cmp); /* before the ingester it works on */
  a->cmp = NULL;
  if (a->ing) {
    /* close every head chunk into the chunks column family, so a restart replays no WAL (the
     * ring already shows this instance LEAVING: writers have moved to the zone's next one) */
    rt_info("main", "flushing the ingester", NULL);
    uint64_t t0 = rt_now_ms();
    rt_err fe = ing_flush(a->ing);
    if (fe != RT_OK) {
      rt_error("main", "flush at shutdown failed; the WAL keeps the samples", "err=\"%s\"",
               rt_strerror(fe));
    } else {
      rt_info("main", "ingester flushed", "ms=%llu", (unsigned long long)(rt_now_ms() - t0));
    }
    ing_destroy(a->ing);
    a->ing = NULL;
  }
  a->dist_ring_entry = NULL;
  if (a->dring) {
    ring_destroy(a->dring);
    a->dring = NULL;
  }
  rt_metrics_destroy(a->dring_metrics);
  a->dring_metrics = NULL;
  if (a->ring) {
    ring_destroy(a->ring);
    a->ring = NULL;
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "dump") == 0) {
    return cmd_dump(argc, argv);
  }
  if (argc > 1 && strcmp(argv[1], "auth") == 0) {
    return cmd_auth(argc, argv);
  }
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-version") == 0 || strcmp(argv[i], "--version") == 0) {
      printf("ringtail, version %s (revision: %s)\n", RT_VERSION, RT_REVISION);
      return 0;
    }
    if (strcmp(argv[i], "--") == 0) {
      break;
    }
  }
  static app a;
  pthread_mutex_init(&a.stats_mu, NULL);
  a.start_time_s = (double)rt_now_ms() / 1000.0;
  atomic_store(&a.state, STATE_STARTING);
  rt_config_defaults(&a.cfg);
  bool help = false;
  char **rest = rt_calloc((size_t)argc + 1, sizeof *rest);
  int nrest = 0;
  char err[512];
  if (!rest) {
    return 1;
  }
  if (rt_config_parse(&a.cfg, argc, argv, &help, rest, &nrest, err, sizeof err) != RT_OK) {
    fprintf(stderr, "ringtail: %s\n", err);
    rt_free(rest, 0);
    rt_config_free(&a.cfg);
    return 2;
  }
  if (help) {
    rt_config_usage(stdout);
    rt_free(rest, 0);
    rt_config_free(&a.cfg);
    return 0;
  }
  if (nrest > 0) {
    fprintf(stderr, "ringtail: unexpected argument \"%s\" (subcommands: dump, auth)\n", rest[0]);
    rt_free(rest, 0);
    rt_config_free(&a.cfg);
    return 2;
  }
  rt_free(rest, 0);
  if (rt_log_set_level_name(a.cfg.log_level) != 0) {
    fprintf(stderr, "ringtail: invalid -log.level %s\n", a.cfg.log_level);
    rt_config_free(&a.cfg);
    return 2;
  }
  if (!parse_roles(a.cfg.target, &a.roles, err, sizeof err)) {
    fprintf(stderr, "ringtail: %s\n", err);
    rt_config_free(&a.cfg);
    return 2;
  }
  if (!(a.roles & ROLE_INGESTER) && !a.cfg.ring_join[0]) {
    /* without an ingester in this process, inproc:// would reach nothing */
    if ((a.roles & ROLE_DISTRIBUTOR) && !a.cfg.distributor_ingesters[0]) {
      fprintf(stderr, "ringtail: -distributor.ingester-addresses is required when the ingester "
                      "runs in another process (or -ring.join to find it through the ring)\n");
      rt_config_free(&a.cfg);
      return 2;
    }
    if ((a.roles & ROLE_QUERIER) && !a.cfg.querier_ingesters[0]) {
      fprintf(stderr, "ringtail: -querier.ingester-addresses is required when the ingester runs "
                      "in another process (or -ring.join to find it through the ring)\n");
      rt_config_free(&a.cfg);
      return 2;
    }
  }
  rt_cfg = &a.cfg;
  a.ring_member = (a.roles & ROLE_INGESTER) != 0;
  a.dist_ring = (a.roles & ROLE_DISTRIBUTOR) && !a.cfg.distributor_ingesters[0];
  a.qry_ring = (a.roles & ROLE_QUERIER) && !a.cfg.querier_ingesters[0];
  a.dist_announce = (a.roles & ROLE_DISTRIBUTOR) &&
                    (a.cfg.ring_join[0] || a.cfg.ring_gossip_listen[0]);

  /* Signals are taken synchronously by main with sigwait(); every thread created from here on
   * inherits the blocked mask. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);

  /* per-tenant limits: flags are the defaults, the runtime-config file overrides per tenant */
  {
    rt_limits defaults;
    rt_limits_from_config(&a.cfg, &defaults);
    char lerr[512];
    if (rt_limits_init(&defaults, a.cfg.runtime_config_file, lerr, sizeof lerr) != RT_OK) {
      fprintf(stderr, "ringtail: %s\n", lerr);
      rt_limits_shutdown();
      rt_cfg = NULL;
      rt_config_free(&a.cfg);
      return 2;
    }
    if (a.cfg.runtime_config_file[0]) {
      rt_reload_register("runtime-config", a.cfg.runtime_config_file, reload_limits, NULL);
    }
  }

  /* tenants and rights of HTTP requests (-auth.mode) */
  rt_auth *auth = NULL;
  {
    char aerr[512];
    if (rt_auth_create(a.cfg.auth_mode, a.cfg.auth_workspaces_file, &auth, aerr, sizeof aerr) !=
        RT_OK) {
      fprintf(stderr, "ringtail: %s\n", aerr);
      rt_reload_unregister(NULL);
      rt_limits_shutdown();
      rt_cfg = NULL;
      rt_config_free(&a.cfg);
      return 2;
    }
    if (rt_auth_get_mode(auth) == RT_AUTH_TOKEN) {
      rt_reload_register("workspaces", a.cfg.auth_workspaces_file, rt_auth_reload, auth);
    }
  }

  char roles[64];
  rt_info("main", "starting Ringtail", "version=%s roles=%s", RT_VERSION,
          role_names(a.roles, roles, sizeof roles));
  register_process_metrics(&a);

  rt_http_config hc = {
      .listen_addr = a.cfg.http_listen_address,
      .port = a.cfg.http_listen_port,
      .max_body_bytes = 1u << 20,
      .conn_timeout_s = (int)((a.cfg.http_conn_timeout_ms + 999) / 1000),
      .max_conns = a.cfg.http_max_conns,
      .auth = auth,
  };
  int exit_code = 0;
  rt_err rc = rt_http_server_create(&hc, &a.http);
  if (rc == RT_OK) {
    rc = add_shared_routes(&a);
  }
  if (rc == RT_OK && (a.ring_member || a.dist_ring || a.qry_ring || a.dist_announce)) {
    rc = start_ring(&a);
  }
  if (rc == RT_OK && (a.roles & ROLE_DISTRIBUTOR)) {
    rc = start_distributor(&a);
  }
  if (rc == RT_OK && (a.roles & ROLE_QUERIER)) {
    rc = start_querier(&a);
  }
  if (rc != RT_OK) {
    rt_error("main", "cannot set up the HTTP routes", "err=\"%s\"", rt_strerror(rc));
    exit_code = 1;
    goto out;
  }
  rc = rt_http_server_start(a.http);
  if (rc != RT_OK) {
    rt_error("main", "cannot start the HTTP server", "addr=%s port=%d err=\"%s\"",
             a.cfg.http_listen_address, a.cfg.http_listen_port, rt_strerror(rc));
    exit_code = 1;
    goto out;
  }
  int port = rt_http_server_port(a.http);
  rt_info("main", "HTTP server listening", "addr=%s port=%d", a.cfg.http_listen_address, port);

  if ((a.roles & ROLE_INGESTER) && start_ingester(&a) != RT_OK) {
    exit_code = 1;
    goto out;
  }
  if (a.ring_member && a.ing) {
    /* the ingester's share of the global series limits follows the ring */
    ing_set_ring(a.ing, a.ring, a.ring_self);
  }
  if (a.ring_member) {
    /* the head is rebuilt (ing_create replayed the WAL): take writes */
    ring_set_state(a.ring, RING_ACTIVE);
  }
  if (a.dist_ring_entry) {
    /* the distributor takes writes: the others count it from now on */
    ring_set_state(a.dist_ring_entry, RING_ACTIVE);
  }

  char host[256] = "localhost";
  if (strcmp(a.cfg.http_listen_address, "0.0.0.0") != 0 &&
      strcmp(a.cfg.http_listen_address, "::") != 0 && a.cfg.http_listen_address[0]) {
    snprintf(host, sizeof host, "%s", a.cfg.http_listen_address);
  } else if (gethostname(host, sizeof host) != 0 || !host[0]) {
    snprintf(host, sizeof host, "localhost");
  }
  atomic_store(&a.state, STATE_READY);
  rt_info("main", "Ringtail is ready", "roles=%s", role_names(a.roles, roles, sizeof roles));
  if (a.roles & ROLE_DISTRIBUTOR) {
    rt_info("main", "point Prometheus remote_write here", "url=http://%s:%d/api/v1/push", host,
            port);
  }
  if (a.roles & ROLE_QUERIER) {
    rt_info("main", "point a Grafana Prometheus data source here", "url=http://%s:%d/prometheus",
            host, port);
  }

  rt_reload_start(a.cfg.runtime_config_period_ms);
  int sig = 0;
  for (;;) {
    sigwait(&sigs, &sig);
    if (sig != SIGHUP) {
      break;
    }
    int failed = rt_reload_all();
    rt_info("main", "SIGHUP: configuration files reloaded", "failed=%d", failed);
  }
  rt_reload_stop();
  rt_info("main", "shutting down", "signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
  /* A second signal ends the process at once (acknowledged samples are in the WAL already):
   * only this thread has the signals unblocked, so the default action applies. */
  sigdelset(&sigs, SIGHUP);   /* a late SIGHUP stays blocked, it must not end the process */
  pthread_sigmask(SIG_UNBLOCK, &sigs, NULL);
  if (a.dist_ring_entry) {
    /* the other distributors take over this one's share of each tenant's rate: forget the own
     * entry (the tombstone spreads, and expires) and push it out before stopping */
    ring_forget(a.dist_ring_entry, a.dist_self);
    ring_flush(a.dist_ring_entry);
  }
  if (a.ring_member) {
    /* writers move to the next instance of the zone; tell the ring before stopping */
    ring_set_state(a.ring, RING_LEAVING);
    ring_flush(a.ring);
  }

out:
  stop_all(&a);
  rt_metrics_remove_fn(rt_metrics_default(), &a);
  rt_zmq_ctx_term();
  rt_reload_stop();
  rt_reload_unregister(NULL);
  rt_limits_shutdown();
  rt_reload_unregister(auth);
  rt_auth_destroy(auth);
  rt_cfg = NULL;
  rt_config_free(&a.cfg);
  pthread_mutex_destroy(&a.stats_mu);
  if (exit_code == 0) {
    rt_info("main", "stopped", NULL);
  }
  return exit_code;
}
