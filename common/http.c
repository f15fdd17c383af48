/* http.c - the HTTP server every role shares, on libmicrohttpd. See common/DESIGN.md.
 *
 * Threads: libmicrohttpd's listening thread accepts connections and starts one thread per
 * connection; handlers run on that thread and may block (RPC to ingesters). A request goes
 * through three calls of the access handler: the first (headers read) picks the route and
 * refuses early (404, 405, 413 on Content-Length), the middle ones accumulate the body up to the
 * route's limit, the last one runs the handler and queues its response. */
#include "common/http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/auth.h"
#include "common/log.h"
#include "common/metrics.h"

#define PROM_PREFIX "/prometheus"
#define PROM_PREFIX_LEN (sizeof(PROM_PREFIX) - 1)

typedef struct route {
  const char *method;
  const char *path;
  size_t path_len;
  unsigned flags;
  size_t max_body;
  rt_http_handler fn;
  void *ctx;
  char label[80];               /* route label of the latency histogram */
} route;

struct rt_http_server {
  rt_http_config cfg;
  char *listen_addr;            /* owned copy of cfg.listen_addr */
  route *routes;
  size_t nroutes;
  size_t cap;
  struct MHD_Daemon *daemon;
  int port;
  rt_metrics *metrics;
};

/* Per-request state, created by the URI callback (it sees the raw URI with its query string)
 * and freed by the completion callback. Only the connection's thread touches it. */
typedef struct req_state {
  rt_http_server *s;
  char *uri;                    /* raw request target, owned */
  bool started;                 /* the first access-handler call happened */
  bool responded;               /* a response is queued */
  const route *rt;              /* matched route */
  const char *path;             /* url with the /prometheus prefix stripped (points into url) */
  char *url;                    /* decoded path, owned */
  char *body;                   /* owned, cap bytes */
  size_t len;
  size_t cap;
  size_t max;
  uint64_t start_ns;
  rt_auth_result auth;          /* tenant and rights; holds the workspaces snapshot */
  bool auth_done;
} req_state;

/* ---------- small helpers ---------- */

static const char *status_label(int status, char *buf, size_t len) {
  snprintf(buf, len, "%d", status);
  return buf;
}

/* The method as a metric label: the usual ones, else "other" (no unbounded label values). */
static const char *method_label(const char *m) {
  static const char *const known[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"};
  for (size_t i = 0; i < RT_ARRAY_LEN(known); i++) {
    if (strcmp(m, known[i]) == 0) {
      return known[i];
    }
  }
  return "other";
}

static void observe(rt_http_server *s, const char *method, const char *route_label, int status,
                    uint64_t start_ns, const char *path) {
  char code[16];
  double secs = (double)(rt_mono_ns() - start_ns) / 1e9;
  rt_histogram *h = rt_histogram_get(
      s->metrics, "ringtail_request_duration_seconds",
      "Time (in seconds) spent serving HTTP requests.", NULL, 0, "method,route,status_code",
      method_label(method), route_label, status_label(status, code, sizeof code));
  rt_histogram_observe(h, secs);
  char p[201];
  size_t n = 0;
  for (const char *c = path ? path : ""; *c && n < sizeof p - 1; c++) {
    unsigned char u = (unsigned char)*c;
    p[n++] = (u < 0x20 || u == '"' || u == '\\' || u == 0x7f) ? '_' : (char)u;
  }
  p[n] = 0;
  rt_debug("http", "request", "method=%s path=\"%s\" status=%d duration_ms=%.3f",
           method_label(method), p, status, secs * 1e3);
}

static void free_buf_cb(void *cls) { rt_free(cls, 0); }

/* Queues a response built from resp (the body is handed over). Returns MHD_YES on success. */
static enum MHD_Result queue(struct MHD_Connection *conn, rt_http_resp *resp, bool close_conn) {
  size_t len = 0;
  char *data = NULL;
  bool oom = resp->body.oom || resp->headers.oom;
  if (resp->body.len > 0 && !oom) {
    data = rt_buf_steal(&resp->body, &len);
  }
  rt_buf_free(&resp->body);
  struct MHD_Response *r;
  if (data) {
    r = MHD_create_response_from_buffer_with_free_callback_cls(len, data, free_buf_cb, data);
  } else {
    r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  }
  if (!r) {
    if (data) {
      rt_free(data, 0);
    }
    rt_buf_free(&resp->headers);
    return MHD_NO;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                          resp->content_type ? resp->content_type : "application/json");
  if (resp->headers.len > 0) {
    char *line = resp->headers.data;
    while (line && *line) {
      char *nl = strchr(line, '\n');
      if (nl) {
        *nl = 0;
      }
      char *colon = strchr(line, ':');
      if (colon) {
        *colon = 0;
        const char *v = colon + 1;
        while (*v == ' ') {
          v++;
        }
        MHD_add_response_header(r, line, v);
      }
      line = nl ? nl + 1 : NULL;
    }
  }
  rt_buf_free(&resp->headers);
  if (close_conn) {
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
  }
  int status = resp->status ? resp->status : 200;
  if (oom) {
    status = 500;
  }
  enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
  MHD_destroy_response(r);
  return ret;
}

/* Queues a server-generated error response (404, 405, 413, 500). */
static enum MHD_Result queue_error(req_state *st, struct MHD_Connection *conn, const char *method,
                                   int status, const char *type, const char *msg,
                                   const char *extra_header, bool close_conn) {
  rt_http_resp resp = {.status = status};
  rt_http_api_error(&resp, status, type, msg);
  if (extra_header) {
    rt_buf_puts(&resp.headers, extra_header);
  }
  st->responded = true;
  observe(st->s, method, st->rt ? st->rt->label : "notfound", status, st->start_ns, st->url);
  return queue(conn, &resp, close_conn);
}

/* Writes a complete error response directly on the socket (best effort, non-blocking); used
 * where libmicrohttpd cannot queue one. The caller then drops the connection. */
static void raw_error(req_state *st, struct MHD_Connection *conn, const char *method, int status,
                      const char *reason, const char *type, const char *msg) {
  rt_buf body = RT_BUF_INIT;
  rt_http_resp resp = {.status = status};
  rt_http_api_error(&resp, status, type, msg);
  rt_buf_printf(&body,
                "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                "Connection: close\r\n\r\n",
                status, reason, resp.body.len);
  rt_buf_append(&body, resp.body.data, resp.body.len);
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  if (ci && !body.oom) {
    ssize_t w = send(ci->connect_fd, body.data, body.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w;
    shutdown(ci->connect_fd, SHUT_WR);
  }
  rt_buf_free(&body);
  rt_buf_free(&resp.body);
  st->responded = true;
  observe(st->s, method, st->rt ? st->rt->label : "notfound", status, st->start_ns, st->url);
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

/* Decodes application/x-www-form-urlencoded text ('+' is a space, %XX a byte; a malformed %
 * escape is kept as it is). Returns a new string (caller frees with rt_free) or NULL on OOM. */
static char *form_decode(const char *s, size_t n) {
  char *out = rt_alloc(n + 1);
  if (!out) {
    return NULL;
  }
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '+') {
      out[o++] = ' ';
    } else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
               hexval(s[i + 2]) >= 0) {
      out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
      i += 2;
    } else {
      out[o++] = s[i];
    }
  }
  out[o] = 0;
  return out;
}

/* Appends the pairs of `s` (key=value&...) to the request's parameters. */
static rt_err parse_params(const char *s, size_t n, rt_http_kv **kv, size_t *nkv, size_t *cap) {
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && s[j] != '&' && s[j] != ';') {
      j++;
    }
    if (j > i) {
      const char *eq = memchr(s + i, '=', j - i);
      size_t klen = eq ? (size_t)(eq - (s + i)) : j - i;
      if (*nkv == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        rt_http_kv *nv = rt_realloc(*kv, *cap * sizeof **kv, ncap * sizeof **kv);
        if (!nv) {
          return RT_ENOMEM;
        }
        *kv = nv;
        *cap = ncap;
      }
      char *k = form_decode(s + i, klen);
      char *v = eq ? form_decode(eq + 1, (size_t)(s + j - (eq + 1))) : rt_strdup("");
      if (!k || !v) {
        rt_free(k, 0);
        rt_free(v, 0);
        return RT_ENOMEM;
      }
      (*kv)[*nkv].key = k;
      (*kv)[*nkv].value = v;
      (*nkv)++;
    }
    i = j + 1;
  }
  return RT_OK;
}

static void free_params(rt_http_kv *kv, size_t n, size_t cap) {
  for (size_t i = 0; i < n; i++) {
    rt_free(kv[i].key, 0);
    rt_free(kv[i].value, 0);
  }
  rt_free(kv, cap * sizeof *kv);
}

static bool method_is(const char *want, const char *got) {
  if (!want) {
    return true;
  }
  if (strcmp(want, got) == 0) {
    return true;
  }
  return strcmp(want, "GET") == 0 && strcmp(got, "HEAD") == 0;
}

static bool path_matches(const route *r, const char *path) {
  if (r->flags & RT_HTTP_PREFIX) {
    return strncmp(path, r->path, r->path_len) == 0;
  }
  return strcmp(path, r->path) == 0;
}

/* Picks the route for (method, url). Sets *path to the path the route sees. Returns NULL when
 * nothing matches; *path_matched tells whether a route matched the path but not the method,
 * and `allow` lists the methods of such routes. */
static const route *find_route(const rt_http_server *s, const char *method, const char *url,
                               const char **path, bool *path_matched, char *allow,
                               size_t allow_len) {
  *path_matched = false;
  allow[0] = 0;
  const char *stripped = NULL;
  if (strncmp(url, PROM_PREFIX, PROM_PREFIX_LEN) == 0 && url[PROM_PREFIX_LEN] == '/') {
    stripped = url + PROM_PREFIX_LEN;
  }
  for (size_t i = 0; i < s->nroutes; i++) {
    const route *r = &s->routes[i];
    const char *p = NULL;
    if (path_matches(r, url)) {
      p = url;
    } else if (stripped && (r->flags & RT_HTTP_PROM_API) && path_matches(r, stripped)) {
      p = stripped;
    }
    if (!p) {
      continue;
    }
    if (method_is(r->method, method)) {
      *path = p;
      return r;
    }
    *path_matched = true;
    if (r->method && !strstr(allow, r->method)) {
      size_t used = strlen(allow);
      snprintf(allow + used, allow_len - used, "%s%s", used ? ", " : "", r->method);
    }
  }
  return NULL;
}

/* ---------- libmicrohttpd callbacks ---------- */

static void *uri_cb(void *cls, const char *uri, struct MHD_Connection *conn) {
  (void)conn;
  req_state *st = rt_calloc(1, sizeof *st);
  if (st) {
    st->s = cls;
    st->uri = rt_strdup(uri ? uri : "");
    st->start_ns = rt_mono_ns();
  }
  return st;
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)conn;
  req_state *st = *con_cls;
  if (!st) {
    return;
  }
  if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && toe != MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN &&
      toe != MHD_REQUEST_TERMINATED_CLIENT_ABORT) {
    rt_debug("http", "request terminated", "reason=%d uri=\"%.200s\"", (int)toe,
             st->uri ? st->uri : "");
  }
  if (st->auth_done) {
    rt_auth_release(&st->auth);
  }
  rt_free(st->uri, 0);
  rt_free(st->url, 0);
  rt_free(st->body, st->cap);
  rt_free(st, sizeof *st);
  *con_cls = NULL;
}

static enum MHD_Result run_handler(req_state *st, struct MHD_Connection *conn,
                                   const char *method) {
  rt_http_req req = {
      .method = method,
      .path = st->path,
      .raw_path = st->url,
      .body = st->len ? st->body : NULL,
      .body_len = st->len,
      .tenant = st->auth.tenant,
      .rights = st->auth.rights,
      .conn = conn,
      .start_ns = st->start_ns,
      .server = st->s,
  };
  rt_http_kv *kv = NULL;
  size_t nkv = 0;
  size_t cap = 0;
  rt_err err = RT_OK;
  const char *q = st->uri ? strchr(st->uri, '?') : NULL;
  if (q) {
    err = parse_params(q + 1, strlen(q + 1), &kv, &nkv, &cap);
  }
  const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
  if (err == RT_OK && st->len && ct &&
      strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0) {
    err = parse_params(st->body, st->len, &kv, &nkv, &cap);
  }
  if (err != RT_OK) {
    free_params(kv, nkv, cap);
    return queue_error(st, conn, method, 500, "internal", "out of memory", NULL, true);
  }
  req.params = kv;
  req.nparams = nkv;
  rt_http_resp resp = {.status = 200};
  st->rt->fn(st->rt->ctx, &req, &resp);
  free_params(kv, nkv, cap);
  st->responded = true;
  int status = resp.body.oom ? 500 : (resp.status ? resp.status : 200);
  observe(st->s, method, st->rt->label, status, st->start_ns, st->url);
  return queue(conn, &resp, false);
}

/* Resolves the tenant and rights of a request from its headers, before its body is read; answers
 * 400 / 401 / 403 itself. Routes without a right flag need no tenant (in auth.mode=none every
 * request still gets "anonymous"). */
static enum MHD_Result authenticate(req_state *st, struct MHD_Connection *conn,
                                    const char *method, bool has_body) {
  unsigned need = st->rt->flags & RT_HTTP_RIGHTS;
  rt_auth *a = st->s->cfg.auth;
  st->auth_done = true;
  if (!need && rt_auth_get_mode(a) != RT_AUTH_NONE) {
    memset(&st->auth, 0, sizeof st->auth);
    return MHD_YES;
  }
  rt_auth_check(a, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"),
                MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Scope-OrgID"), need,
                &st->auth);
  if (st->auth.status == 0) {
    return MHD_YES;
  }
  char msg[480];
  const char *type = "bad_data";
  if (st->auth.status == 401) {
    type = "unauthorized";
  } else if (st->auth.status == 403) {
    type = "forbidden";
  }
  if (st->auth.status == 403) {
    snprintf(msg, sizeof msg, "%s (%s %.200s)", st->auth.msg, method, st->url);
  } else {
    snprintf(msg, sizeof msg, "%s", st->auth.msg);
  }
  return queue_error(st, conn, method, st->auth.status, type, msg, st->auth.challenge, has_body);
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls) {
  (void)version;
  rt_http_server *s = cls;
  req_state *st = *con_cls;
  if (!st) {
    return MHD_NO;   /* the URI callback ran out of memory: drop the connection */
  }
  if (!st->started) {
    st->started = true;
    st->url = rt_strdup(url);
    if (!st->url) {
      return MHD_NO;
    }
    bool path_matched;
    char allow[64];
    st->rt = find_route(s, method, st->url, &st->path, &path_matched, allow, sizeof allow);
    if (!st->rt) {
      if (path_matched) {
        char hdr[96];
        snprintf(hdr, sizeof hdr, "Allow: %s\n", allow);
        char msg[128];
        snprintf(msg, sizeof msg, "method %s not allowed", method);
        return queue_error(st, conn, method, 405, "bad_data", msg, hdr, *upload_data_size > 0);
      }
      char msg[300];
      snprintf(msg, sizeof msg, "not found: %.256s", url);
      return queue_error(st, conn, method, 404, "not_found", msg, NULL, false);
    }
    st->max = st->rt->max_body ? st->rt->max_body : s->cfg.max_body_bytes;
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (cl) {
      char *end;
      errno = 0;
      unsigned long long n = strtoull(cl, &end, 10);
      if (errno || *end || n > st->max) {
        char msg[160];
        snprintf(msg, sizeof msg, "request body too large: %s bytes, limit %zu bytes", cl,
                 st->max);
        return queue_error(st, conn, method, 413, "bad_data", msg, NULL, true);
      }
      if (n > 0) {   /* the whole body in one allocation, no regrowth */
        st->body = rt_alloc((size_t)n + 1);
        if (!st->body) {
          return queue_error(st, conn, method, 500, "internal", "out of memory", NULL, true);
        }
        st->cap = (size_t)n + 1;
      }
    }
    if (s->cfg.auth) {
      return authenticate(st, conn, method, cl && strcmp(cl, "0") != 0);
    }
    return MHD_YES;
  }
  if (*upload_data_size > 0) {
    if (st->responded) {
      *upload_data_size = 0;   /* an early answer is out; drop what still arrives */
      return MHD_YES;
    }
    if (s->cfg.conn_timeout_s > 0 &&
        rt_mono_ns() - st->start_ns > (uint64_t)s->cfg.conn_timeout_s * 1000000000ull) {
      rt_warn("http", "request body too slow; closing the connection", "path=\"%.200s\"",
              st->url);
      return MHD_NO;
    }
    size_t n = *upload_data_size;
    if (n > st->max - st->len) {
      char msg[160];
      snprintf(msg, sizeof msg, "request body too large: over the limit of %zu bytes", st->max);
      /* libmicrohttpd cannot queue a response while a body is arriving: write the 413
       * straight to the socket and drop the connection without reading the rest. */
      raw_error(st, conn, method, 413, "Payload Too Large", "bad_data", msg);
      return MHD_NO;
    }
    if (st->len + n + 1 > st->cap) {
      size_t ncap = st->cap ? st->cap : 4096;
      while (ncap < st->len + n + 1) {
        ncap *= 2;
      }
      if (ncap > st->max + 1) {
        ncap = st->max + 1;
      }
      char *nb = rt_realloc(st->body, st->cap, ncap);
      if (!nb) {
        raw_error(st, conn, method, 500, "Internal Server Error", "internal", "out of memory");
        return MHD_NO;
      }
      st->body = nb;
      st->cap = ncap;
    }
    memcpy(st->body + st->len, upload_data, n);
    st->len += n;
    st->body[st->len] = 0;
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (st->responded) {
    return MHD_YES;
  }
  return run_handler(st, conn, method);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) {
    msg[--n] = 0;
  }
  rt_debug("http", msg, NULL);
}

/* ---------- public API ---------- */

rt_err rt_http_server_create(const rt_http_config *cfg, rt_http_server **out) {
  *out = NULL;
  rt_http_server *s = rt_calloc(1, sizeof *s);
  if (!s) {
    return RT_ENOMEM;
  }
  s->cfg = *cfg;
  s->listen_addr = rt_strdup(cfg->listen_addr && *cfg->listen_addr ? cfg->listen_addr : "0.0.0.0");
  if (!s->listen_addr) {
    rt_free(s, sizeof *s);
    return RT_ENOMEM;
  }
  s->cfg.listen_addr = s->listen_addr;
  if (s->cfg.max_body_bytes == 0) {
    s->cfg.max_body_bytes = 10u << 20;
  }
  if (s->cfg.max_conns <= 0) {
    s->cfg.max_conns = 1024;
  }
  s->metrics = cfg->metrics ? cfg->metrics : rt_metrics_default();
  *out = s;
  return RT_OK;
}

rt_err rt_http_route(rt_http_server *s, const char *method, const char *path, unsigned flags,
                     size_t max_body, rt_http_handler fn, void *ctx) {
  if (!path || path[0] != '/' || !fn || s->daemon) {
    return RT_EINVAL;
  }
  if (s->nroutes == s->cap) {
    size_t ncap = s->cap ? s->cap * 2 : 16;
    route *nr = rt_realloc(s->routes, s->cap * sizeof *nr, ncap * sizeof *nr);
    if (!nr) {
      return RT_ENOMEM;
    }
    s->routes = nr;
    s->cap = ncap;
  }
  route *r = &s->routes[s->nroutes++];
  memset(r, 0, sizeof *r);
  r->method = method;
  r->path = path;
  r->path_len = strlen(path);
  r->flags = flags;
  r->max_body = max_body;
  r->fn = fn;
  r->ctx = ctx;
  /* "/api/v1/push" -> "api_v1_push"; "/" -> "root" */
  size_t o = 0;
  for (const char *p = path; *p && o < sizeof r->label - 1; p++) {
    char c = *p;
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (alnum) {
      r->label[o++] = c;
    } else if (o > 0 && r->label[o - 1] != '_') {
      r->label[o++] = '_';
    }
  }
  while (o > 0 && r->label[o - 1] == '_') {
    o--;
  }
  r->label[o] = 0;
  if (o == 0) {
    snprintf(r->label, sizeof r->label, "root");
  }
  return RT_OK;
}

/* Binds and listens on the configured address. Returns the socket or -1 (errno set). */
static int listen_socket(const char *addr, int port, char *err, size_t errlen) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_PASSIVE};
  struct addrinfo *res = NULL;
  char portstr[16];
  snprintf(portstr, sizeof portstr, "%d", port);
  const char *host = addr;
  char tmp[256];
  if (addr[0] == '[') {   /* "[::1]" */
    snprintf(tmp, sizeof tmp, "%s", addr + 1);
    char *e = strchr(tmp, ']');
    if (e) {
      *e = 0;
    }
    host = tmp;
  }
  int rc = getaddrinfo(host, portstr, &hints, &res);
  if (rc != 0) {
    snprintf(err, errlen, "cannot resolve %s: %s", addr, gai_strerror(rc));
    return -1;
  }
  int fd = -1;
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0) {
      break;
    }
    snprintf(err, errlen, "cannot listen on %s:%d: %s", addr, port, strerror(errno));
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  return fd;
}

rt_err rt_http_server_start(rt_http_server *s) {
  if (s->daemon) {
    return RT_EINVAL;
  }
  char err[300] = "no usable address";
  int fd = listen_socket(s->cfg.listen_addr, s->cfg.port, err, sizeof err);
  if (fd < 0) {
    rt_error("http", "cannot start the HTTP server", "error=\"%s\"", err);
    return RT_EIO;
  }
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
    s->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                       : ntohs(((struct sockaddr_in *)&ss)->sin_port);
  }
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                   MHD_USE_POLL | MHD_USE_ERROR_LOG;
  s->daemon = MHD_start_daemon(
      flags, 0, NULL, NULL, access_cb, s, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
      MHD_OPTION_URI_LOG_CALLBACK, uri_cb, s, MHD_OPTION_NOTIFY_COMPLETED, completed_cb, s,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(s->cfg.conn_timeout_s > 0 ? s->cfg.conn_timeout_s : 0),
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->cfg.max_conns,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
      MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
  if (!s->daemon) {
    close(fd);
    rt_error("http", "cannot start the HTTP server", "addr=%s port=%d", s->cfg.listen_addr,
             s->cfg.port);
    return RT_EIO;
  }
  return RT_OK;
}

void rt_http_server_destroy(rt_http_server *s) {
  if (!s) {
    return;
  }
  if (s->daemon) {
    MHD_stop_daemon(s->daemon);   /* closes the listening socket, joins connection threads */
  }
  rt_free(s->routes, s->cap * sizeof *s->routes);
  rt_free(s->listen_addr, 0);
  rt_free(s, sizeof *s);
}

int rt_http_server_port(const rt_http_server *s) { return s->port; }

const char *rt_http_tenant(const rt_http_req *req) {
  if (req->tenant) {
    return req->tenant;
  }
  if (req->server && req->server->cfg.auth) {
    return NULL;   /* authentication decided: no tenant on this route */
  }
  const char *t = rt_http_header(req, "X-Scope-OrgID");
  return t && t[0] ? t : NULL;
}

const char *rt_http_header(const rt_http_req *req, const char *name) {
  return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *rt_http_param(const rt_http_req *req, const char *name) {
  for (size_t i = 0; i < req->nparams; i++) {
    if (strcmp(req->params[i].key, name) == 0) {
      return req->params[i].value;
    }
  }
  return NULL;
}

size_t rt_http_params(const rt_http_req *req, const char *name, const char **out, size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < req->nparams; i++) {
    if (strcmp(req->params[i].key, name) == 0) {
      if (n < max) {
        out[n] = req->params[i].value;
      }
      n++;
    }
  }
  return n;
}

void rt_http_resp_header(rt_http_resp *resp, const char *name, const char *value) {
  rt_buf_printf(&resp->headers, "%s: %s\n", name, value);
}

void rt_http_text(rt_http_resp *resp, int status, const char *fmt, ...) {
  resp->status = status;
  resp->content_type = "text/plain; charset=utf-8";
  rt_buf_reset(&resp->body);
  va_list ap;
  va_start(ap, fmt);
  char small[512];
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) {
    return;
  }
  if ((size_t)n < sizeof small) {
    rt_buf_append(&resp->body, small, (size_t)n);
    return;
  }
  rt_buf_reserve(&resp->body, (size_t)n + 1);
  if (resp->body.oom) {
    return;
  }
  va_start(ap, fmt);
  vsnprintf(resp->body.data, (size_t)n + 1, fmt, ap);
  va_end(ap);
  resp->body.len = (size_t)n;
}

void rt_http_api_error(rt_http_resp *resp, int status, const char *type, const char *msg) {
  resp->status = status;
  resp->content_type = "application/json";
  rt_buf_reset(&resp->body);
  rt_buf_puts(&resp->body, "{\"status\":\"error\",\"errorType\":");
  rt_buf_json_str(&resp->body, type, strlen(type));
  rt_buf_puts(&resp->body, ",\"error\":");
  rt_buf_json_str(&resp->body, msg, strlen(msg));
  rt_buf_puts(&resp->body, "}");
}
