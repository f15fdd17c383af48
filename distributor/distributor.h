/* distributor.h - the remote-write write path: decode, validate, replicate to the ingesters.
 *
 * A push flows through three steps that can each be used alone (tests, fuzzing, benchmarks):
 *   dist_decode()   snappy block + protobuf WriteRequest -> dist_request (arena memory)
 *   dist_validate() drops what can never be accepted, in place, and reports the first problem
 *   dist_push()     the whole path including the RPC to the ingesters, with the HTTP status
 * A write reaches, per series, the ingesters of the series' write replication set in a ring:
 * the gossip ring (its quorum, 2 of 3 with RF 3), or a static ring built from a list of
 * addresses (every listed ingester, all of them needed; see ring_create_static). There is no
 * other write path.
 * dist_register() puts dist_push() behind POST /api/v1/push and /api/v1/write.
 * See distributor/DESIGN.md for the rules, the messages and the status codes. */
#ifndef RT_DISTRIBUTOR_H
#define RT_DISTRIBUTOR_H

#include "common/arena.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/http.h"
#include "common/rt.h"
#include "remote.pb-c.h"

/* ------------------------------------------------------------------ limits */

typedef struct dist_limits {
  size_t max_decompressed_size;          /* declared snappy length above this: RT_ELIMIT (413) */
  bool reject_old_samples;
  int64_t reject_old_samples_max_age_ms;
  int64_t creation_grace_period_ms;      /* samples newer than now + this are rejected */
  int64_t ooo_window_ms;                 /* > 0: in-request order is left to the ingester */
  int max_label_names_per_series;        /* <= 0: no limit */
  int max_label_name_length;             /* bytes; <= 0: no limit */
  int max_label_value_length;            /* bytes; <= 0: no limit */
  int max_metadata_length;               /* bytes of name, help and unit; <= 0: no limit */
  bool utf8_names;                       /* accept any UTF-8 label name (Prometheus 3 style);
                                            default false: the legacy charset */
  int64_t max_metadata_per_metric;       /* distinct metadata entries of one metric in one
                                            request; <= 0: no limit */
  const char *tenant;                    /* named in limit messages; NULL: not named (borrowed) */
} dist_limits;

struct rt_limits;
/* Overlays a tenant's limits (common/limits.h) on `l`: every validation limit the runtime
 * configuration can override, and the tenant named in messages (borrowed). */
void dist_limits_apply(dist_limits *l, const struct rt_limits *t, const char *tenant);


/* Fills `out` from the process configuration (borrows cfg). */
void dist_limits_from_config(const rt_config *cfg, dist_limits *out);
/* The built-in defaults (the same as rt_config_defaults would give). */
void dist_limits_default(dist_limits *out);

/* ------------------------------------------------------------------ decode */

/* What the decoder learned about one series besides the protobuf fields. */
typedef struct dist_series_info {
  uint32_t n_histograms;     /* native histogram samples (counted, not decoded) */
  uint32_t n_exemplars;      /* exemplars (counted, not decoded) */
  uint32_t bad_label;        /* 0, or 1 + index of the first label whose name or value is not
                                valid UTF-8 or holds a NUL byte */
  uint8_t bad_what;          /* DIST_BAD_* for bad_label */
  uint32_t *lens;            /* byte lengths of each label's name and value (2 per label, in
                                label order; kept in step by dist_validate), or NULL */
  const uint8_t *raw;        /* the series' encoding in the decompressed body */
  size_t raw_len;
  bool raw_ok;               /* the encoding holds only labels and samples and dist_validate
                                changed nothing: it can be forwarded as is */
} dist_series_info;

enum {
  DIST_BAD_NONE = 0,
  DIST_BAD_NAME_UTF8 = 1,
  DIST_BAD_VALUE_UTF8 = 2,
  DIST_BAD_NAME_NUL = 3,
  DIST_BAD_VALUE_NUL = 4,
};

typedef struct dist_request {
  Prometheus__WriteRequest *wr;   /* the message; every pointer in it is arena memory */
  dist_series_info *info;         /* wr->n_timeseries entries (dist_validate keeps them in step
                                     with wr->timeseries), or NULL (then dist_validate checks
                                     UTF-8 itself and assumes no NUL bytes) */
  uint8_t *metadata_bad;          /* wr->n_metadata entries (nonzero: a string is not valid
                                     UTF-8 or holds a NUL byte), or NULL */
  size_t decompressed_len;
} dist_request;

/* Decodes a remote-write body: snappy block format, then a prometheus.WriteRequest. Checks
 * the declared decompressed length against lim->max_decompressed_size before decompressing.
 * Every allocation comes from `arena` (borrowed; the request lives until the arena is reset or
 * destroyed). Borrows body.
 * Returns RT_OK and fills *out; RT_ELIMIT (answer 413) or RT_EPROTO (answer 400) with a message
 * in errbuf; RT_ENOMEM. Thread-safe (no shared state). */
rt_err dist_decode(const void *body, size_t len, const dist_limits *lim, rt_arena *arena,
                   dist_request *out, char *errbuf, size_t errlen);

/* Decodes a WriteRequest protobuf that is already decompressed (the second half of
 * dist_decode). Borrows buf; same results. */
rt_err dist_decode_proto(const uint8_t *buf, size_t len, rt_arena *arena, dist_request *out,
                         char *errbuf, size_t errlen);

/* ---------------------------------------------------------------- validate */

/* Why a sample (or metadata entry) was rejected; DIST_R_NAMES gives the metric label value. */
typedef enum dist_reason {
  DIST_R_OK = 0,
  DIST_R_MISSING_METRIC_NAME,
  DIST_R_INVALID_METRIC_NAME,
  DIST_R_INVALID_LABEL,
  DIST_R_LABEL_NAME_TOO_LONG,
  DIST_R_LABEL_VALUE_TOO_LONG,
  DIST_R_INVALID_LABEL_VALUE,
  DIST_R_DUPLICATE_LABEL_NAMES,
  DIST_R_LABELS_NOT_SORTED,
  DIST_R_MAX_LABEL_NAMES,
  DIST_R_TOO_OLD,
  DIST_R_TOO_FAR_IN_FUTURE,
  DIST_R_OUT_OF_ORDER,             /* in-request order, or the ingester's "out of order sample" */
  DIST_R_DUPLICATE_TIMESTAMP,      /* the ingester's "duplicate sample for timestamp" */
  DIST_R_INGESTER_TOO_OLD,         /* the ingester: older than its window */
  DIST_R_PER_TENANT_LIMIT,         /* the ingester: a per-tenant limit */
  DIST_R_NATIVE_HISTOGRAM,         /* native histograms are not stored yet */
  DIST_R_METADATA_INVALID,         /* metadata: missing name, bad UTF-8 */
  DIST_R_METADATA_TOO_LONG,        /* metadata: name, help or unit over max_metadata_length */
  DIST_R_METADATA_PER_METRIC,      /* metadata: over max_metadata_per_metric for one metric */
  DIST_R_RATE_LIMITED,             /* the tenant's ingestion rate (429) */
  DIST_R_HA_DUPLICATE,             /* a replica of an HA pair that is not the elected one (202) */
  DIST_R_COUNT
} dist_reason;

extern const char *const dist_reason_names[DIST_R_COUNT];

/* The docs/errors.md id of a reason caused by a limit ("err-ringtail-..."), or NULL. */
const char *dist_reason_error_id(dist_reason why);

/* The outcome of dist_validate (and, merged in by dist_push, of the ingesters' answers). */
typedef struct dist_report {
  size_t series_total, series_rejected;       /* series with every sample rejected */
  size_t samples_total, samples_rejected;     /* float samples */
  size_t histograms_total;                    /* all rejected (DIST_R_NATIVE_HISTOGRAM) */
  size_t exemplars_ignored;
  size_t metadata_total, metadata_rejected;
  uint64_t rejected[DIST_R_COUNT];            /* samples, histograms and metadata by reason */
  dist_reason first;                          /* DIST_R_OK when nothing was rejected */
  char msg[1024];                             /* the first problem, naming the series */
} dist_report;

/* Validates req in place, in one pass: drops empty-valued labels, drops series with a label
 * problem, drops samples that are too old, too far in the future or out of order, drops invalid
 * metadata. Afterwards wr->timeseries[0 .. wr->n_timeseries) are the accepted series (only
 * those with samples left) and wr->metadata[0 .. wr->n_metadata) the accepted metadata: ready
 * to forward. Fills *rep. now_ms is the wall clock (a parameter for tests). Borrows everything. */
void dist_validate(dist_request *req, const dist_limits *lim, int64_t now_ms, dist_report *rep);

/* Formats labels as `name{a="x",b="y"}` (Prometheus' series notation), appending at most
 * `max` bytes to out and "..." when cut. */
void dist_format_series(rt_buf *out, Prometheus__Label *const *labels, size_t n, size_t max);

/* Tenant IDs as Mimir accepts them: 1-150 chars of [a-zA-Z0-9!._*'()-], not "." or "..".
 * Returns false with a message in errbuf otherwise. */
bool dist_tenant_valid(const char *t, char *errbuf, size_t errlen);

/* -------------------------------------------------------------- distributor */

struct ring;

typedef struct dist_config {
  dist_limits limits;
  struct ring *ring;          /* the ring to write through (borrowed; must outlive the
                                 distributor); NULL: a static ring of `ingesters` */
  const char *ingesters;      /* without `ring`: comma list of RPC endpoints made into a static
                                 ring (ring_create_static: every series to every listed
                                 ingester, all must take it); NULL or "" = inproc://ingester;
                                 borrowed during dist_create only */
  int timeout_ms;             /* per ingester call */
  size_t max_recv_msg_size;   /* compressed body limit (the HTTP route's max_body) */
  struct rt_metrics *metrics; /* where the per-tenant counters go; NULL = the default registry */
  int instances;              /* distributors sharing each tenant's ingestion rate; <= 0: 1.
                                 dist_set_distributor_count() replaces it */
  size_t max_inflight_bytes;  /* decompressed bytes of requests being handled at once; a request
                                 that would go beyond gets 503 (retried by the sender);
                                 0 = DIST_DEFAULT_INFLIGHT_BYTES */
} dist_config;

#define DIST_DEFAULT_INFLIGHT_BYTES ((size_t)1 << 30)

void dist_config_from_rt(const rt_config *cfg, dist_config *out);

typedef struct dist_distributor dist_distributor;

/* Creates a distributor that writes through cfg->ring, or through a static ring it builds from
 * cfg->ingesters (RT_EINVAL / RT_ELIMIT for a bad list, logged with the reason). Connections
 * are made on first use. *out is new; destroy with dist_destroy() after the HTTP server that
 * calls it is gone. */
rt_err dist_create(const dist_config *cfg, dist_distributor **out);
void dist_destroy(dist_distributor *d);

/* One remote-write request, transport aside. */
typedef struct dist_push_in {
  const void *body;           /* the compressed body (borrowed) */
  size_t body_len;
  const char *tenant;         /* X-Scope-OrgID or NULL (then "anonymous") */
  const char *content_type;   /* Content-Type or NULL */
  const char *content_encoding; /* Content-Encoding or NULL (absent: snappy is assumed) */
} dist_push_in;

typedef struct dist_push_out {
  int status;                 /* HTTP status: 200, 202, 400, 413, 415, 429, 500, 503 */
  rt_buf msg;                 /* plain-text body (empty on 200); caller frees with rt_buf_free */
} dist_push_out;

/* Decodes, validates and sends one request: each series to the ingesters of its write
 * replication set in the ring (dist_repl_push; with a static ring, every listed ingester).
 * Waits until every series reached its write quorum or cannot any more (blocking, up to
 * timeout_ms per ingester) and maps the outcome to the remote-write status. Thread-safe: many
 * HTTP threads call it at once. */
void dist_push(dist_distributor *d, const dist_push_in *in, dist_push_out *out);

/* Adds POST /api/v1/push and POST /api/v1/write (also under /prometheus), with the route body
 * limit max_recv_msg_size. Borrows d until the server is destroyed. */
rt_err dist_register(dist_distributor *d, rt_http_server *srv);

/* ---------------------------------------------------------------- HA pairs */

/* HA deduplication (distributor/DESIGN.md "HA pairs", docs/ha.md). A series carrying both the
 * tenant's ha_cluster_label and ha_replica_label (common/limits.h) is accepted only when its
 * replica is the elected one of (tenant, cluster); the replica label is removed before storage.
 * The election is shared through arbiters (the ingesters of the ring token of the cluster);
 * each distributor keeps a short cache of their answers. The rules below are pure. */
typedef enum dist_ha_verdict {
  DIST_HA_ASK = 0,          /* the cache can not decide: ask the arbiters */
  DIST_HA_ACCEPT = 1,
  DIST_HA_DROP = 2,         /* another replica is elected: 202, samples discarded */
  DIST_HA_UNAVAILABLE = 3,  /* no majority and the cache can not stand in: 503 */
} dist_ha_verdict;

/* What the cache says about replica R at now_ms (monotonic). have: an entry exists, saying
 * `elected` as the arbiters answered a question asked at asked_ms; confirmed: the arbiters
 * refreshed `elected` then (the question was about it). ACCEPT only for a confirmed entry of R
 * younger than timeout/3; DROP for an entry of another replica younger than timeout/3; ASK
 * otherwise. */
dist_ha_verdict dist_ha_from_cache(bool have, const char *elected, bool confirmed,
                                   int64_t asked_ms, const char *replica, int64_t now_ms,
                                   int64_t timeout_ms);
/* When the arbiters gave no majority: ACCEPT on a confirmed entry of R younger than
 * timeout/2, DROP on an entry of another replica younger than timeout/2, else UNAVAILABLE. */
dist_ha_verdict dist_ha_unanswered(bool have, const char *elected, bool confirmed,
                                   int64_t asked_ms, const char *replica, int64_t now_ms,
                                   int64_t timeout_ms);
/* Counts the arbiters' answers (answers[i] NULL: no answer; "": abstained). ACCEPT when at
 * least `quorum` answered R; DROP when at least `quorum` answered one other replica (its index
 * in *winner); UNAVAILABLE otherwise. */
dist_ha_verdict dist_ha_tally(const char *const *answers, size_t n, int quorum,
                              const char *replica, size_t *winner);

/* The elected replicas this distributor knows for `tenant`, as the data of
 * GET /distributor/ha_tracker: [{"cluster":..,"elected":..,"confirmed":..,"age_seconds":..}]
 * sorted by cluster. */
void dist_ha_status_json(dist_distributor *d, const char *tenant, rt_buf *out);

/* ------------------------------------------------------------ rate limiting */

/* A token bucket: holds up to `burst` tokens and gains `rate` per second. Not thread-safe
 * (the distributor holds the tenant's mutex). Zero-initialise before first use. */
typedef struct dist_bucket {
  double tokens;
  double rate, burst;  /* in force since last_ns */
  int64_t last_ns;
  bool started;
} dist_bucket;

/* Takes n tokens at time now_ns (monotonic) under the limit (rate, burst): refills for the
 * time passed since the last call at the rate then in force, adopts rate and burst (a lower
 * burst cuts the tokens held), then takes n if that many are there. Returns false, taking
 * nothing, when there are fewer than n (a request larger than the burst never passes).
 * rate <= 0 means unlimited: always true, and a limit set later starts with a full bucket. */
bool dist_bucket_take(dist_bucket *b, double rate, double burst, double n, int64_t now_ns);

/* How many distributors share the ingestion rate (each enforces rate / count). `fn` is asked
 * once per request that is rate-limited and must be cheap and thread-safe; it returns 0 when
 * it does not know (then 1 is used). Borrows ctx. Default: 1 (a single distributor). */
typedef size_t (*dist_count_fn)(void *ctx);
void dist_set_distributor_count(dist_distributor *d, dist_count_fn fn, void *ctx);
/* The count of distributors this one divides the ingestion rate by now: the hook's answer, or
 * dist_config.instances (at least 1) when there is no hook or it answers 0. */
size_t dist_distributor_count(dist_distributor *d);

/* ------------------------------------------------------------------- stats */

/* HTTP statuses counted in dist_stats.requests (the index is the position in this list). */
#define DIST_STATUS_CODES {200, 400, 413, 415, 429, 500, 503, 202}
#define DIST_NSTATUS 8

typedef struct dist_stats {
  uint64_t requests[DIST_NSTATUS];     /* by status, see DIST_STATUS_CODES */
  uint64_t bytes_received;             /* compressed */
  uint64_t bytes_decompressed;
  uint64_t series_received;
  uint64_t samples_received;           /* float samples in decoded requests */
  uint64_t samples_accepted;           /* stored by the ingesters (duplicates included) */
  uint64_t histograms_received;
  uint64_t exemplars_received;         /* ignored */
  uint64_t metadata_received;
  uint64_t rejected[DIST_R_COUNT];     /* samples (and metadata) by reason */
  uint64_t ingester_errors;            /* failed ingester calls (timeouts, unavailable, ...) */
  uint64_t inflight_bytes;             /* gauge: decompressed bytes of requests in progress */
  uint64_t inflight_rejected;          /* requests answered 503 for the in-flight limit */
  uint64_t ha_arbiter_calls;           /* questions to HA arbiters (one per arbiter) */
  uint64_t ha_arbiter_errors;          /* ... that failed */
  uint64_t ha_elected_changes;         /* elected replica changes this distributor saw */
} dist_stats;

/* A consistent-enough snapshot (each counter read atomically). */
void dist_get_stats(const dist_distributor *d, dist_stats *out);

#endif
