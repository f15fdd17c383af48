/* querier.h - the read path: series/label/metadata APIs, fan-out to ingesters, sample fetching.
 *
 * A querier reads through a ring: the gossip ring, or a static ring it builds from a list of
 * addresses (qry_config). A read reaches every reading instance (ACTIVE or LEAVING) of as many
 * zones as ring_snapshot_read_zones() says hold every series: with the gossip ring
 * min(RF, zones) - quorum + 1 of them (2 of 3 zones with RF 3; the one ingester of a single
 * process), picked healthiest first, one more started when a zone fails or is slow (hedging);
 * with a static ring every listed ingester. The answers are merged: series de-duplicated by
 * labels, samples of the same series merged by timestamp, label names and values unioned.
 * When fewer zones than needed answer completely the read fails (RT_EUNAVAIL / HTTP 503): a
 * read never silently answers with part of the data. Deletions reach every instance of the
 * ring. See querier/DESIGN.md.
 *
 * Also here, until the PromQL module grows its own: the series-selector parser used for match[]
 * (querier/selector.c) and the Prometheus JSON number and time formatting (querier/format.c). */
#ifndef QRY_QUERIER_H
#define QRY_QUERIER_H

#include "common/labels.h"
#include "common/rt.h"

typedef struct rt_http_server rt_http_server;
struct ring;

/* ------------------------------------------------------------------ querier */

typedef struct qry_config {
  const char *ingesters;   /* without `ring`: comma list of RPC endpoints made into a static
                              ring (ring_create_static), every one read by every read; NULL or
                              "" = "inproc://ingester". Borrowed for the call of qry_create()
                              only. */
  int64_t timeout_ms;      /* per ingester call; 0 = 2 minutes */
  const char *default_tenant; /* tenant when a request has no X-Scope-OrgID; NULL =
                                 QRY_DEFAULT_TENANT. Borrowed; must outlive the querier. */
  struct ring *ring;       /* set: reads fan out to this ring's ingesters, zone by zone, and
                              `ingesters` is ignored. Borrowed; must outlive the querier. */
  int64_t hedge_ms;        /* start one more zone when the chosen ones have not all answered
                              after this long; 0 = QRY_DEFAULT_HEDGE_MS */
} qry_config;

#define QRY_DEFAULT_HEDGE_MS 1000

#define QRY_DEFAULT_TENANT "anonymous"

typedef struct qry_querier qry_querier;

/* Creates a querier over cfg->ring, or over a static ring of cfg->ingesters (RT_EINVAL /
 * RT_ELIMIT for a bad list, logged with the reason). Connections are made lazily, so the
 * ingesters need not be up yet. On success *out is new; release with qry_destroy(). */
rt_err qry_create(const qry_config *cfg, qry_querier **out);
void qry_destroy(qry_querier *q);
/* Ingesters in the ring now. */
size_t qry_ingester_count(const qry_querier *q);

/* Adds the read API routes to `s`, for GET and POST, each also under /prometheus:
 *   /api/v1/series, /api/v1/labels, /api/v1/label/<name>/values, /api/v1/metadata,
 *   /api/v1/query_exemplars.
 * Borrows q (must outlive the server). Call before rt_http_server_start(). */
rt_err qry_register(qry_querier *q, rt_http_server *s);

/* --------------------------------------------------------------- selecting */

/* One sample. */
typedef struct qry_sample {
  int64_t t;   /* milliseconds since the epoch */
  double v;    /* stale markers (RT_STALE_NAN_BITS) are kept as they are */
} qry_sample;
_Static_assert(sizeof(qry_sample) == 16, "qry_sample is 16 bytes");

/* One merged series. */
typedef struct qry_series {
  const rt_label *labels;  /* sorted by name; owned by the result */
  size_t nlabels;
  const qry_sample *samples; /* ascending, unique timestamps, all inside [mint, maxt]; owned by
                                the result; NULL when labels_only */
  size_t nsamples;
  uint64_t hash;           /* rt_series_hash(tenant, labels) */
} qry_series;

typedef struct qry_result {
  qry_series *series;      /* sorted by labels (rt_labels_cmp), no two equal */
  size_t nseries;
  size_t nsamples;         /* sum over the series */
  void *priv;              /* the arena everything lives in */
} qry_result;

/* ------------------------------------------------------------ per-query limits */

/* The read limits of one query (common/limits.h: max_fetched_series_per_query,
 * max_fetched_chunk_bytes_per_query, max_samples_per_query, max_query_lookback, max_query_length,
 * query_timeout), shared by every sub-query (split parts, shards) of that query: fetched series
 * are counted once each (by hash) however many sub-queries fetch them; chunk bytes and samples
 * add up. The first breach is kept with its message and fails every later select of the query.
 * Thread-safe. See docs/limits.md. */
typedef struct qry_budget qry_budget;

typedef enum qry_limit_kind {
  QRY_LIM_SERIES,
  QRY_LIM_CHUNK_BYTES,
  QRY_LIM_SAMPLES,
  QRY_LIM_LOOKBACK,
  QRY_LIM_LENGTH,
  QRY_LIM_TIMEOUT,
} qry_limit_kind;

/* A budget for one query of `tenant` with that tenant's limits now in force (rt_limits_get);
 * `query` (the expression or the match[] selectors) names it in messages. Starts the timeout
 * clock. NULL on OOM. */
qry_budget *qry_budget_new(const char *tenant, const char *query);
void qry_budget_free(qry_budget *b);
/* The limits copied at creation. */
const struct rt_limits *qry_budget_limits(const qry_budget *b);
/* The earliest time a query may read: now - max_query_lookback at creation, or INT64_MIN. */
int64_t qry_budget_min_time(const qry_budget *b);
/* The oldest time the query may read under its tenant's retention, once resolved for it: true
 * and *start when known. The first select of a query resolves it (qry_retention_start) and sets
 * it; every later sub-query uses the same value. qry_budget_set_retention returns the value in
 * force (the first one set wins). */
bool qry_budget_retention(qry_budget *b, int64_t *start);
int64_t qry_budget_set_retention(qry_budget *b, int64_t start);
/* Records a breach of `kind` (the first one wins) and returns RT_ELIMIT. `got` is the value
 * that broke it (shown for the length and lookback limits; ignored otherwise). */
rt_err qry_budget_fail(qry_budget *b, qry_limit_kind kind, int64_t got);
/* True after a breach; copies its message (HTTP 422, errorType execution). */
bool qry_budget_breached(qry_budget *b, char *msg, size_t len);
/* RT_ELIMIT (after recording it) when the query's time is up, or a breach happened. */
rt_err qry_budget_check(qry_budget *b);
/* Counts what one select fetched: `nhash` series hashes, chunk bytes, samples. RT_ELIMIT on a
 * breach (recorded), RT_ENOMEM. */
rt_err qry_budget_add(qry_budget *b, const uint64_t *hashes, size_t nhash, uint64_t chunk_bytes,
                      uint64_t samples);
/* Checks a query's own range before it runs: length (end - start) against max_query_length and
 * start against max_query_lookback. RT_ELIMIT (recorded) or RT_OK. */
rt_err qry_budget_check_range(qry_budget *b, int64_t start, int64_t end);
/* Formats the message of a breach, as the API answers it. `value` is the limit. */
void qry_limit_message(char *buf, size_t len, qry_limit_kind kind, int64_t value, int64_t got,
                       const char *tenant, const char *query);

typedef struct qry_select_opts {
  bool labels_only;        /* series API: no samples, no chunk transfer */
  uint64_t limit;          /* hint: stop after this many series per ingester (0 = none); the
                              result may hold more (the union), the caller truncates */
  uint32_t shard_index;    /* with shard_count > 0: only series with hash % count == index */
  uint32_t shard_count;
  uint64_t max_samples;    /* 0 = none; more samples in total -> RT_ELIMIT */
  qry_budget *budget;      /* NULL = none: the query's read limits; mint is raised to its
                              max_query_lookback, fetched series, chunk bytes and samples are
                              counted against it (RT_ELIMIT with the message kept there). With
                              or without it, mint is raised to the tenant's retention start
                              (qry_retention_start; resolved once per budget) */
} qry_select_opts;

/* The oldest sample time a read of `tenant` may return under its retention period (l, the
 * tenant's limits): rt_retention_start over the newest sample that any ingester a read reaches
 * holds of the tenant (asked with ingester.UserStats), so every replica is read from the same
 * time on, whether it has deleted the older data yet or not. INT64_MIN without retention (no
 * question asked) or when no ingester has a sample. Errors as qry_select(). */
rt_err qry_retention_start(qry_querier *q, const char *tenant, const struct rt_limits *l,
                           int64_t *out, char *errbuf, size_t errlen);

/* Fetches the series matching every matcher of `m` (n of them, borrowed) for `tenant`, with
 * their samples in [mint, maxt] (inclusive), from the ingesters a read reaches (see the top of
 * this file); merges series with equal labels and drops duplicate timestamps (the value of the
 * first answer wins, answers ordered by zone name, then instance id). opts may be NULL.
 * On RT_OK *out holds the result; release with qry_result_free(). On error *out is empty and
 * errbuf says why: RT_EUNAVAIL / RT_ETIMEDOUT when an ingester could not answer, RT_EPROTO for
 * a malformed answer or chunk, RT_ELIMIT for max_samples, RT_ENOMEM.
 * Blocking (waits for the ingesters, at most the configured timeout); thread-safe. */
rt_err qry_select(qry_querier *q, const char *tenant, const rt_matcher *m, size_t n, int64_t mint,
                  int64_t maxt, const qry_select_opts *opts, qry_result *out, char *errbuf,
                  size_t errlen);
/* The union of several selections (a series matching any of the matcher sets), merged the
 * same way. sets[i] has nm[i] matchers. */
rt_err qry_select_union(qry_querier *q, const char *tenant, const rt_matcher *const *sets,
                        const size_t *nm, size_t nsets, int64_t mint, int64_t maxt,
                        const qry_select_opts *opts, qry_result *out, char *errbuf, size_t errlen);
void qry_result_free(qry_result *r);

/* A sorted, unique list of strings (label names or values). */
typedef struct qry_strings {
  char **v;                /* owned by the list */
  size_t n;
  void *priv;
} qry_strings;

/* Label names (name == NULL) or values of `name` among the series matching any of the matcher
 * sets (nsets == 0: all series) with samples in [mint, maxt], mint raised to the tenant's
 * retention start (qry_retention_start). limit is a hint passed to the ingesters (0 = none).
 * Release with qry_strings_free(). Errors as qry_select(). */
rt_err qry_label_names(qry_querier *q, const char *tenant, const rt_matcher *const *sets,
                       const size_t *nm, size_t nsets, int64_t mint, int64_t maxt, uint64_t limit,
                       qry_strings *out, char *errbuf, size_t errlen);
rt_err qry_label_values(qry_querier *q, const char *tenant, const char *name,
                        const rt_matcher *const *sets, const size_t *nm, size_t nsets,
                        int64_t mint, int64_t maxt, uint64_t limit, qry_strings *out,
                        char *errbuf, size_t errlen);
void qry_strings_free(qry_strings *s);

/* Deletes the samples in [mint, maxt] of `tenant`'s series matching any of the matcher sets
 * (each non-empty) on EVERY ingester of the ring (every instance with an RPC address, whatever
 * its state or health, since any may hold replicas); *deleted sums the series each ingester
 * tombstoned. Fails (RT_EUNAVAIL, ...) when one cannot be reached: deletion is idempotent, so
 * the caller retries. RT_EINVAL from an ingester for bad input. */
rt_err qry_delete_series(qry_querier *q, const char *tenant, const rt_matcher *const *sets,
                         const size_t *nm, size_t nsets, int64_t mint, int64_t maxt,
                         uint64_t *deleted, char *errbuf, size_t errlen);

/* ------------------------------------------------------------ selector parser */

/* A parsed series selector: `up`, `{job="x"}`, `up{job=~"a|b",x!="y"}`, `{"my.metric"}`. */
typedef struct qry_selector {
  rt_matcher *m;           /* owned; the metric name given before the braces comes last */
  size_t n;
} qry_selector;

enum {
  /* Also apply PromQL's checks on a vector selector (as in an expression): "vector selector
   * must contain at least one non-empty matcher", "metric name must not be set twice". The
   * series API does not (it checks "match[] must contain at least one non-empty matcher"). */
  QRY_SEL_CHECK = 1u << 0,
};

/* Parses a series selector of len bytes. On RT_EINVAL writes a Prometheus-style message to errbuf
 * ("1:5: parse error: unexpected ..."). On RT_OK *out owns its matchers; release with
 * qry_selector_fini(). */
rt_err qry_selector_parse(const char *s, size_t len, unsigned flags, qry_selector *out,
                          char *errbuf, size_t errlen);
void qry_selector_fini(qry_selector *sel);
/* True when some matcher does not match the empty string. */
bool qry_selector_has_nonempty(const qry_selector *sel);

/* ------------------------------------------------------------ formatting */

/* Room for any qry_format_ts result, NUL included. */
#define QRY_TS_BUFSZ 32

/* A timestamp in ms as Prometheus' JSON writes it: whole seconds, then "." and exactly three
 * digits when ms % 1000 != 0 ("1700000000", "1700000000.123", "1.500", "-0.250"). */
size_t qry_format_ts(char *buf, int64_t ms);

/* Prometheus' default open range for the series and label APIs, in ms. */
#define QRY_MIN_TIME_MS (-9223309901257974000LL)
#define QRY_MAX_TIME_MS (9223309901257974999LL)

/* Parses an API time: Unix seconds with decimals (rounded to ms) or RFC 3339 (truncated to
 * ms), as Prometheus' parseTime. On failure writes `cannot parse "x" to a valid timestamp`. */
bool qry_parse_time(const char *s, int64_t *ms, char *errbuf, size_t errlen);

#endif
