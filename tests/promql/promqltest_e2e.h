/* promqltest_e2e.h - the end-to-end mode of promqltest_prog: load blocks go to a running
 * ringtail by remote-write (one tenant per file and `clear`), evals go through its HTTP API and
 * the JSON answers are turned back into pql_result for the same checks. Included once by
 * promqltest_prog.c. */
#include <snappy-c.h>
#include <unistd.h>

#include "remote.pb-c.h"
#include "tests/common/http_client.h"

static int e2e_port;          /* 0 = in-process engine */
static int e2e_write_port;    /* remote-write goes here (a distributor); 0 = e2e_port */
static char e2e_tenant[128];
static int e2e_seq;

static void e2e_new_tenant(const char *file) {
  snprintf(e2e_tenant, sizeof e2e_tenant, "pqt-%s-%d-%d", file, (int)getpid(), e2e_seq++);
}

/* ---- a minimal JSON reader ---- */

typedef struct jv {
  char type; /* o a s n t f z */
  char *s;
  double n;
  struct jv *kids; /* arrays and objects (objects: key in kids[i].key) */
  char **keys;
  size_t nk;
} jv;

static void jv_free(jv *v) {
  for (size_t i = 0; i < v->nk; i++) {
    jv_free(&v->kids[i]);
    if (v->keys) {
      free(v->keys[i]);
    }
  }
  free(v->kids);
  free(v->keys);
  free(v->s);
}

static const char *jws(const char *p) {
  while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') {
    p++;
  }
  return p;
}

static const char *jstr(const char *p, char **out) {
  rt_buf b = RT_BUF_INIT;
  p++;
  while (*p && *p != '"') {
    if (*p == '\\') {
      p++;
      switch (*p) {
      case 'n': rt_buf_putc(&b, '\n'); break;
      case 't': rt_buf_putc(&b, '\t'); break;
      case 'r': rt_buf_putc(&b, '\r'); break;
      case 'b': rt_buf_putc(&b, '\b'); break;
      case 'f': rt_buf_putc(&b, '\f'); break;
      case 'u': {
        char h[5] = {p[1], p[2], p[3], p[4], 0};
        unsigned cp = (unsigned)strtoul(h, NULL, 16);
        p += 4;
        if (cp < 0x80) {
          rt_buf_putc(&b, (char)cp);
        } else if (cp < 0x800) {
          rt_buf_putc(&b, (char)(0xc0 | (cp >> 6)));
          rt_buf_putc(&b, (char)(0x80 | (cp & 0x3f)));
        } else {
          rt_buf_putc(&b, (char)(0xe0 | (cp >> 12)));
          rt_buf_putc(&b, (char)(0x80 | ((cp >> 6) & 0x3f)));
          rt_buf_putc(&b, (char)(0x80 | (cp & 0x3f)));
        }
        break;
      }
      default: rt_buf_putc(&b, *p);
      }
      p++;
      continue;
    }
    rt_buf_putc(&b, *p++);
  }
  size_t len;
  *out = rt_buf_steal(&b, &len);
  if (!*out) {
    *out = rt_strdup("");
  }
  /* rt_buf memory is rt_alloc'ed; hand out a malloc copy for uniform freeing */
  char *m = strdup(*out);
  rt_free(*out, 0);
  *out = m;
  return *p ? p + 1 : p;
}

static const char *jparse(const char *p, jv *v) {
  memset(v, 0, sizeof *v);
  p = jws(p);
  if (*p == '{' || *p == '[') {
    bool obj = *p == '{';
    v->type = obj ? 'o' : 'a';
    p = jws(p + 1);
    size_t cap = 0;
    while (*p && *p != (obj ? '}' : ']')) {
      if (v->nk == cap) {
        cap = cap ? cap * 2 : 8;
        v->kids = realloc(v->kids, cap * sizeof *v->kids);
        if (obj) {
          v->keys = realloc(v->keys, cap * sizeof *v->keys);
        }
      }
      if (obj) {
        p = jstr(jws(p), &v->keys[v->nk]);
        p = jws(p);
        if (*p == ':') {
          p++;
        }
      }
      p = jparse(p, &v->kids[v->nk]);
      v->nk++;
      p = jws(p);
      if (*p == ',') {
        p = jws(p + 1);
      }
    }
    return *p ? p + 1 : p;
  }
  if (*p == '"') {
    v->type = 's';
    return jstr(p, &v->s);
  }
  if (!strncmp(p, "true", 4)) {
    v->type = 't';
    return p + 4;
  }
  if (!strncmp(p, "false", 5)) {
    v->type = 'f';
    return p + 5;
  }
  if (!strncmp(p, "null", 4)) {
    v->type = 'z';
    return p + 4;
  }
  char *end;
  v->type = 'n';
  v->n = strtod(p, &end);
  return end > p ? end : p + 1;
}

static const jv *jget(const jv *o, const char *key) {
  if (!o || o->type != 'o') {
    return NULL;
  }
  for (size_t i = 0; i < o->nk; i++) {
    if (strcmp(o->keys[i], key) == 0) {
      return &o->kids[i];
    }
  }
  return NULL;
}

static double jval(const jv *v) {
  if (!v || v->type != 's') {
    return NAN;
  }
  if (!strcmp(v->s, "+Inf")) {
    return INFINITY;
  }
  if (!strcmp(v->s, "-Inf")) {
    return -INFINITY;
  }
  if (!strcmp(v->s, "NaN")) {
    return NAN;
  }
  return strtod(v->s, NULL);
}

static int64_t jts(const jv *v) { return v && v->type == 'n' ? (int64_t)llround(v->n * 1000) : 0; }

static char *e2e_dupstr(const char *s) { return strdup(s ? s : ""); }

static void e2e_series(const jv *m, pql_series *s) {
  s->nlabels = m ? m->nk : 0;
  s->labels = calloc(s->nlabels + 1, sizeof *s->labels);
  for (size_t i = 0; i < s->nlabels; i++) {
    s->labels[i].name = e2e_dupstr(m->keys[i]);
    s->labels[i].value = e2e_dupstr(m->kids[i].s);
  }
  rt_labels_sort(s->labels, s->nlabels);
}

/* Frees a result made by e2e_query(). */
static void e2e_free(pql_result *r) {
  if (!r) {
    return;
  }
  for (size_t i = 0; i < r->nseries; i++) {
    for (size_t k = 0; k < r->series[i].nlabels; k++) {
      free((void *)r->series[i].labels[k].name);
      free((void *)r->series[i].labels[k].value);
    }
    free(r->series[i].labels);
    free(r->series[i].points);
  }
  free(r->series);
  for (size_t i = 0; i < r->nwarnings; i++) {
    free((void *)r->warnings[i]);
  }
  for (size_t i = 0; i < r->ninfos; i++) {
    free((void *)r->infos[i]);
  }
  free(r->warnings);
  free(r->infos);
  free((void *)r->str);
  free((void *)r->error);
  free((void *)r->error_type);
  free(r);
}

static void url_encode(const char *s, rt_buf *b) {
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (isalnum(*p) || strchr("-_.~", *p)) {
      rt_buf_putc(b, (char)*p);
    } else {
      rt_buf_putc(b, '%');
      rt_buf_putc(b, hex[*p >> 4]);
      rt_buf_putc(b, hex[*p & 15]);
    }
  }
}

static void put_secs(rt_buf *b, int64_t ms) {
  rt_buf_printf(b, "%s%lld.%03lld", ms < 0 ? "-" : "", (long long)(llabs(ms) / 1000), (long long)(llabs(ms) % 1000));
}

/* Runs a query over HTTP: range when step > 0. Always returns a result (errors included). */
static pql_result *e2e_query(const char *expr, int64_t start, int64_t end, int64_t step) {
  pql_result *r = calloc(1, sizeof *r);
  rt_buf body = RT_BUF_INIT;
  rt_buf_puts(&body, "query=");
  url_encode(expr, &body);
  if (step > 0) {
    rt_buf_puts(&body, "&start=");
    put_secs(&body, start);
    rt_buf_puts(&body, "&end=");
    put_secs(&body, end);
    rt_buf_puts(&body, "&step=");
    put_secs(&body, step);
  } else {
    rt_buf_puts(&body, "&time=");
    put_secs(&body, start);
  }
  rt_buf req = RT_BUF_INIT;
  rt_buf_printf(&req,
                "POST /api/v1/%s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Scope-OrgID: %s\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n\r\n",
                step > 0 ? "query_range" : "query", e2e_tenant, body.len);
  rt_buf_append(&req, body.data, body.len);
  tc_resp resp;
  memset(&resp, 0, sizeof resp);
  bool ok = tc_request(e2e_port, req.data, req.len, &resp, 60000);
  rt_buf_free(&req);
  rt_buf_free(&body);
  if (!ok || !resp.body) {
    r->error_type = strdup("internal");
    r->error = strdup("no answer from the server");
    tc_free(&resp);
    return r;
  }
  jv root;
  jparse(resp.body, &root);
  const jv *st = jget(&root, "status");
  if (!st || st->type != 's' || strcmp(st->s, "success") != 0) {
    const jv *et = jget(&root, "errorType"), *em = jget(&root, "error");
    r->error_type = strdup(et && et->s ? et->s : "internal");
    const char *msg = em && em->s ? em->s : resp.body;
    /* the HTTP API names the parameter a parse error is in, as Prometheus' does; the test files
     * hold the engine's message */
    static const char qp[] = "invalid parameter \"query\": ";
    if (strncmp(msg, qp, sizeof qp - 1) == 0) {
      msg += sizeof qp - 1;
    }
    r->error = strdup(msg);
    jv_free(&root);
    tc_free(&resp);
    return r;
  }
  const jv *w = jget(&root, "warnings"), *in = jget(&root, "infos");
  if (w && w->type == 'a') {
    r->warnings = calloc(w->nk + 1, sizeof(char *));
    for (size_t i = 0; i < w->nk; i++) {
      r->warnings[r->nwarnings++] = e2e_dupstr(w->kids[i].s);
    }
  }
  if (in && in->type == 'a') {
    r->infos = calloc(in->nk + 1, sizeof(char *));
    for (size_t i = 0; i < in->nk; i++) {
      r->infos[r->ninfos++] = e2e_dupstr(in->kids[i].s);
    }
  }
  const jv *data = jget(&root, "data");
  const jv *rt = jget(data, "resultType"), *res = jget(data, "result");
  const char *type = rt && rt->s ? rt->s : "";
  if (!strcmp(type, "scalar") && res && res->nk == 2) {
    r->type = PQL_SCALAR;
    r->t = jts(&res->kids[0]);
    r->scalar = jval(&res->kids[1]);
  } else if (!strcmp(type, "string") && res && res->nk == 2) {
    r->type = PQL_STRING;
    r->t = jts(&res->kids[0]);
    r->str = e2e_dupstr(res->kids[1].s);
  } else if (res && res->type == 'a') {
    bool vec = !strcmp(type, "vector");
    r->type = vec ? PQL_VECTOR : PQL_MATRIX;
    r->series = calloc(res->nk + 1, sizeof *r->series);
    for (size_t i = 0; i < res->nk; i++) {
      const jv *e = &res->kids[i];
      pql_series *s = &r->series[r->nseries++];
      e2e_series(jget(e, "metric"), s);
      if (vec) {
        const jv *v = jget(e, "value");
        s->points = calloc(1, sizeof *s->points);
        if (v && v->nk == 2) {
          s->points[0] = (pql_point){jts(&v->kids[0]), jval(&v->kids[1])};
          s->npoints = 1;
        }
      } else {
        const jv *vs = jget(e, "values");
        size_t n = vs ? vs->nk : 0;
        s->points = calloc(n + 1, sizeof *s->points);
        for (size_t k = 0; k < n; k++) {
          if (vs->kids[k].nk == 2) {
            s->points[s->npoints++] = (pql_point){jts(&vs->kids[k].kids[0]), jval(&vs->kids[k].kids[1])};
          }
        }
      }
    }
  }
  jv_free(&root);
  tc_free(&resp);
  return r;
}

/* ---- remote write of one load block ---- */

typedef struct e2e_block {
  Prometheus__TimeSeries **ts;
  size_t n, cap;
} e2e_block;

static void e2e_ts_free(Prometheus__TimeSeries *t) {
  for (size_t k = 0; k < t->n_labels; k++) {
    free(t->labels[k]->name);
    free(t->labels[k]->value);
    free(t->labels[k]);
  }
  for (size_t k = 0; k < t->n_samples; k++) {
    free(t->samples[k]);
  }
  free(t->labels);
  free(t->samples);
  free(t);
}

static void e2e_block_add(e2e_block *b, const lset *ls, const svals *sv, int64_t step) {
  size_t np = 0;
  for (size_t k = 0; k < sv->n; k++) {
    np += sv->v[k].present;
  }
  if (np == 0) {
    return;
  }
  Prometheus__TimeSeries *t = calloc(1, sizeof *t);
  prometheus__time_series__init(t);
  t->n_labels = ls->n;
  t->labels = calloc(ls->n + 1, sizeof *t->labels);
  for (size_t i = 0; i < ls->n; i++) {
    Prometheus__Label *l = calloc(1, sizeof *l);
    prometheus__label__init(l);
    l->name = strdup(ls->l[i].name);
    l->value = strdup(ls->l[i].value);
    t->labels[i] = l;
  }
  t->samples = calloc(np, sizeof *t->samples);
  for (size_t k = 0; k < sv->n; k++) {
    if (!sv->v[k].present) {
      continue;
    }
    Prometheus__Sample *s = calloc(1, sizeof *s);
    prometheus__sample__init(s);
    s->value = sv->v[k].v;
    s->timestamp = (int64_t)k * step;
    t->samples[t->n_samples++] = s;
  }
  /* a series listed twice in one block: the later line replaces the earlier */
  for (size_t i = 0; i < b->n; i++) {
    Prometheus__TimeSeries *o = b->ts[i];
    bool same = o->n_labels == t->n_labels;
    for (size_t k = 0; same && k < t->n_labels; k++) {
      same = !strcmp(o->labels[k]->name, t->labels[k]->name) && !strcmp(o->labels[k]->value, t->labels[k]->value);
    }
    if (same) {
      e2e_ts_free(o);
      b->ts[i] = t;
      return;
    }
  }
  if (b->n == b->cap) {
    b->cap = b->cap ? b->cap * 2 : 64;
    b->ts = realloc(b->ts, b->cap * sizeof *b->ts);
  }
  b->ts[b->n++] = t;
}

/* Sends the block; returns false (and says why) when the server did not accept it. */
static bool e2e_block_send(e2e_block *b, const char *file) {
  bool ok = true;
  if (b->n > 0) {
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    wr.n_timeseries = b->n;
    wr.timeseries = b->ts;
    size_t len = prometheus__write_request__get_packed_size(&wr);
    uint8_t *raw = malloc(len + 1);
    prometheus__write_request__pack(&wr, raw);
    size_t clen = snappy_max_compressed_length(len);
    char *comp = malloc(clen);
    snappy_compress((const char *)raw, len, comp, &clen);
    rt_buf req = RT_BUF_INIT;
    rt_buf_printf(&req,
                  "POST /api/v1/push HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Scope-OrgID: %s\r\n"
                  "Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\n"
                  "X-Prometheus-Remote-Write-Version: 0.1.0\r\nContent-Length: %zu\r\n\r\n",
                  e2e_tenant, clen);
    rt_buf_append(&req, comp, clen);
    tc_resp resp;
    memset(&resp, 0, sizeof resp);
    if (!tc_request(e2e_write_port ? e2e_write_port : e2e_port, req.data, req.len, &resp, 60000) ||
        resp.status / 100 != 2) {
      fprintf(stderr, "%s: remote-write rejected (%d): %s\n", file, resp.status, resp.body ? resp.body : "");
      ok = false;
    }
    tc_free(&resp);
    rt_buf_free(&req);
    free(raw);
    free(comp);
  }
  for (size_t i = 0; i < b->n; i++) {
    e2e_ts_free(b->ts[i]);
  }
  free(b->ts);
  memset(b, 0, sizeof *b);
  return ok;
}
