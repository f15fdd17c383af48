/* http.h - the HTTP server every role shares (libmicrohttpd, one thread per connection).
 *
 * Handlers see a fully read request (body accumulated up to the route's limit; beyond it the
 * server answers 413 itself, without reading the rest) and fill in a response. */
#ifndef RT_HTTP_H
#define RT_HTTP_H

#include "common/buf.h"
#include "common/rt.h"

typedef struct rt_http_server rt_http_server;

typedef struct rt_http_kv {
  char *key;
  char *value;
} rt_http_kv;

typedef struct rt_http_req {
  const char *method;     /* "GET", "POST", ... */
  const char *path;       /* without the query string and without a "/prometheus" prefix */
  const char *raw_path;   /* as received (without query string) */
  const char *body;       /* NULL when empty; NUL-terminated */
  size_t body_len;
  rt_http_kv *params;     /* query-string parameters then form-body parameters, URL-decoded */
  size_t nparams;
  const char *tenant;     /* the request's tenant as authenticated (see rt_http_tenant) */
  unsigned rights;        /* RT_HTTP_RIGHT_* the caller holds */
  void *conn;             /* private to http.c */
  const struct rt_http_server *server; /* private to http.c */
  uint64_t start_ns;
} rt_http_req;

typedef struct rt_http_resp {
  int status;             /* default 200 */
  const char *content_type; /* static string; default "application/json" */
  rt_buf body;
  rt_buf headers;         /* extra "Name: value\n" lines */
} rt_http_resp;

typedef void (*rt_http_handler)(void *ctx, const rt_http_req *req, rt_http_resp *resp);

enum {
  RT_HTTP_PREFIX = 1u << 0,      /* match any path starting with `path` */
  RT_HTTP_PROM_API = 1u << 1,    /* also serve under "/prometheus" + path */
  /* The right a route needs (auth.mode=token checks it; 403 without it). A route with none of
   * these needs no tenant (/ready, /metrics, /ring, ...). */
  RT_HTTP_RIGHT_READ = 1u << 4,
  RT_HTTP_RIGHT_WRITE = 1u << 5,
  RT_HTTP_RIGHT_RULES = 1u << 6,
  RT_HTTP_RIGHT_ADMIN = 1u << 7,
};
#define RT_HTTP_RIGHTS (RT_HTTP_RIGHT_READ | RT_HTTP_RIGHT_WRITE | RT_HTTP_RIGHT_RULES | RT_HTTP_RIGHT_ADMIN)

typedef struct rt_http_config {
  const char *listen_addr;       /* "0.0.0.0" */
  int port;                      /* 9009 */
  size_t max_body_bytes;         /* default body limit for routes without their own */
  int conn_timeout_s;            /* idle/slow client timeout */
  int max_conns;
  struct rt_metrics *metrics;    /* request latency histograms go here; NULL = the default
                                    registry (common/metrics.h) */
  struct rt_auth *auth;          /* tenants and rights (common/auth.h); borrowed. NULL = no
                                    checks: rt_http_tenant() falls back to X-Scope-OrgID
                                    (embedded servers and tests) */
} rt_http_config;

/* Creates a server (not yet listening). Caller destroys with rt_http_server_destroy(). */
rt_err rt_http_server_create(const rt_http_config *cfg, rt_http_server **out);
/* Adds a route. method NULL = any method. max_body 0 = the server default. Routes are tried
 * in the order added; the first match wins. Borrows path (must outlive the server) and ctx. */
rt_err rt_http_route(rt_http_server *s, const char *method, const char *path, unsigned flags,
                     size_t max_body, rt_http_handler fn, void *ctx);
rt_err rt_http_server_start(rt_http_server *s);
void rt_http_server_destroy(rt_http_server *s);
int rt_http_server_port(const rt_http_server *s);  /* actual port (useful with port 0) */

/* Request accessors (borrowed results, valid during the handler). Header names are
 * case-insensitive. rt_http_param returns the first value or NULL. */
const char *rt_http_header(const rt_http_req *req, const char *name);
/* The tenant of a request as authentication resolved it (common/auth.h): "anonymous" in
 * auth.mode=none, the validated X-Scope-OrgID in header mode, the credential's workspace in
 * token mode; NULL on routes without a right flag (except in mode none). A server created
 * without an authenticator falls back to the raw X-Scope-OrgID header. Every handler that
 * touches tenant data takes its tenant from here. */
const char *rt_http_tenant(const rt_http_req *req);
const char *rt_http_param(const rt_http_req *req, const char *name);
/* All values of a repeated parameter (match[]); returns the count, stores up to max. */
size_t rt_http_params(const rt_http_req *req, const char *name, const char **out, size_t max);

/* Response helpers. */
void rt_http_resp_header(rt_http_resp *resp, const char *name, const char *value);
void rt_http_text(rt_http_resp *resp, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* {"status":"error","errorType":type,"error":msg} with the matching status code. */
void rt_http_api_error(rt_http_resp *resp, int status, const char *type, const char *msg);

#endif
