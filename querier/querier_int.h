/* querier_int.h - the querier's private pieces, shared between its files and its tests. */
#ifndef QRY_QUERIER_INT_H
#define QRY_QUERIER_INT_H

#include "common/buf.h"
#include "common/http.h"
#include "querier/querier.h"

/* The tenant used when a request names none. */
const char *qry_default_tenant(const qry_querier *q);

/* Appends Go's %q quoting of s[0..n) ("..." with Go escapes); max_runes > 0 keeps only that
 * many runes (Go's %.Nq). */
void qry_go_quote(rt_buf *b, const char *s, size_t n, size_t max_runes);

/* Decodes Prometheus 3's "U__" value-encoding escaping of a label name (`U__my_2e_name` ->
 * `my.name`, `__` -> `_`). Returns a new string (caller frees with rt_free()) that is a copy of
 * `name` when it is not escaped or not validly so; NULL on OOM. */
char *qry_unescape_name(const char *name);

/* Sorts samples by timestamp (stable) and drops later samples with an already seen timestamp.
 * Returns the new count. */
size_t qry_samples_merge(qry_sample *s, size_t n);

/* The API handlers, callable without an HTTP server: `tenant` is the request's tenant. They
 * read req->params and req->path only and fill resp (status, JSON body). */
typedef enum qry_endpoint {
  QRY_EP_SERIES,
  QRY_EP_LABELS,
  QRY_EP_LABEL_VALUES,
  QRY_EP_METADATA,
  QRY_EP_EXEMPLARS,
  QRY_EP_USER_STATS,
  QRY_EP_CARD_NAMES,
  QRY_EP_CARD_VALUES,
  QRY_EP_DELETE_SERIES,
} qry_endpoint;
void qry_api_handle(qry_querier *q, qry_endpoint ep, const char *tenant, const rt_http_req *req,
                    rt_http_resp *resp);

/* Metadata of one metric family, merged over the ingesters. */
typedef struct qry_meta {
  const char *metric;
  const char *type;   /* "counter", "gauge", ... as Prometheus' API names it */
  const char *help;
  const char *unit;
} qry_meta;
typedef struct qry_metas {
  qry_meta *v;        /* sorted by metric, type, help, unit; unique */
  size_t n;
  void *priv;
} qry_metas;
rt_err qry_metadata(qry_querier *q, const char *tenant, const char *metric, qry_metas *out,
                    char *errbuf, size_t errlen);
void qry_metas_free(qry_metas *m);

/* One answer of a fan-out that counts: its body and the copy of the data it covers: its ring
 * zone (in a static ring, each listed ingester is a zone). Answers of one copy hold each series
 * once; every copy holds (nearly) every series. */
typedef struct qry_reply {
  rt_buf body;
  size_t copy;
  const char *endpoint; /* valid while the querier lives */
} qry_reply;
/* Sends one request body to the ingesters as reads do (qry_gather: every reader of the zones a
 * read needs) and hands back the answers. Free with qry_replies_free(). */
rt_err qry_gather_copies(qry_querier *q, const char *method, const uint8_t *body, size_t len,
                         qry_reply **out, size_t *n, char *errbuf, size_t errlen);
void qry_replies_free(qry_reply *r, size_t n);

/* The tenant statistics endpoints (querier/stats.c). */
void qry_stats_handle(qry_querier *q, qry_endpoint ep, const char *tenant, const rt_http_req *req,
                      rt_http_resp *resp);

#endif
