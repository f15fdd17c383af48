/* loadgen.c - ringtail-loadgen: a Prometheus remote-write load generator and checker.
 *
 * Send mode (default): C connections (one thread each, raw HTTP/1.1 keep-alive) send
 * snappy-compressed prometheus.WriteRequest bodies to --url. The N series are split among the
 * connections; each connection walks its slice in requests of S samples (S/K series with K
 * consecutive samples each), then moves to the next timestamps. Per series, timestamps only grow,
 * so the data is valid for an in-order receiver. Samples never lie in the future: once the
 * generated time reaches the wall clock, a connection waits for it.
 *
 * Values are a pure function of (series index, timestamp): see sample_value(). That makes the
 * data checkable after the fact without storing it.
 *
 * --histogram-buckets B writes classic histograms instead: series i is bucket i % B of histogram
 * i / B, named P_bucket with an `le` label (the bounds of Prometheus' default buckets, the last
 * one +Inf) and job="loadgen-histogram"; bucket counts are cumulative counters, so
 * histogram_quantile() over rate() of them has a real distribution to interpolate.
 *
 * --verify-log FILE appends one line per finished request:
 *     A <series_lo> <series_hi> <ts0> <k> <step_ms>     acknowledged (2xx)
 *     U <series_lo> <series_hi> <ts0> <k> <step_ms>     sent, never acknowledged (I/O error, 5xx)
 *     R <series_lo> <series_hi> <ts0> <k> <step_ms>     rejected (4xx other than 429)
 * covering series [lo, hi) at timestamps ts0 + j*step for j < k. An A line is written only after
 * the 2xx was read.
 *
 * Check mode: `ringtail-loadgen --check LOG --dump DUMP` reads such a log and the output of
 * `ringtail dump` (lines `{labels} <ts_ms> <value>`) and verifies that every acknowledged sample
 * is present with its value, that every unacknowledged request is all-or-nothing, and that no
 * loadgen sample exists that was never sent. Exit status 0 when all hold.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <snappy-c.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/rt.h"
#include "remote.pb-c.h"

#define LG_NAMES 20          /* distinct metric names */
#define LG_PER_INSTANCE 1000 /* series per instance label value */
#define LG_MAX_LABELS 5      /* __name__, instance, job, [le,] series */

/* Upper bounds of the --histogram-buckets mode: Prometheus' default buckets, then +Inf. */
static const char *const lg_bucket_le[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                           "0.5",   "1",    "2.5",   "5",    "10"};
#define LG_MAX_BUCKETS ((int)(sizeof(lg_bucket_le) / sizeof(lg_bucket_le[0])) + 1)

typedef struct lg_opts {
  char host[256];
  char port[16];
  char path[512];
  char url[1024];
  int64_t series;
  int samples_per_request;
  int samples_per_series;  /* K: consecutive samples per series in one request */
  int concurrency;
  double duration_s;       /* 0 = until rounds are done */
  int64_t rounds;          /* samples per series to send; 0 = until duration ends */
  double rate;             /* samples/s over all connections; 0 = as fast as accepted */
  int64_t start_ts;        /* ms */
  int64_t step_ms;
  int64_t series_offset;   /* index of the first series */
  const char *tenant;
  const char *verify_log;
  int max_retries;
  int timeout_ms;
  bool quiet;
  bool dry_run;            /* build requests, send nothing: measures the generator itself */
  bool pregen;             /* build every request before sending (needs --rounds) */
  const char *metric_prefix;
  int hist_buckets;        /* 0, or B: series are the B buckets of classic histograms */
} lg_opts;

static lg_opts opt;
static FILE *verify_fp;
static pthread_mutex_t verify_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool stop_flag;
static _Atomic uint64_t deadline_ns;
static pthread_barrier_t start_barrier;
static char rt_host_header[300];

typedef struct lg_stats {
  uint64_t req_ok, req_failed, req_rejected, retries;
  uint64_t samples_ok, samples_failed, samples_rejected;
  uint64_t bytes_sent;
  double *lat_ms;
  size_t nlat, caplat;
  char last_error[256];
} lg_stats;

typedef struct lg_thread {
  pthread_t tid;
  int idx;
  int64_t series_lo, series_hi;
  lg_stats st;
} lg_thread;

/* ---------------------------------------------------------------------------------------- */
/* The data: labels and values as pure functions of the series index.                       */

/* Value of series i at ts. Four shapes: counter, slow gauge, constant, small float gauge. All are
 * exactly representable doubles, so text round trips are exact. In histogram mode, bucket b of
 * histogram h counts (b+1)(b+2)/2 * (1 + h%4) observations every 15 s: cumulative over the
 * buckets and growing with time. */
static double sample_value(int64_t i, int64_t ts) {
  if (opt.hist_buckets) {
    int64_t h = i / opt.hist_buckets, b = i % opt.hist_buckets;
    return (double)(ts / 15000) * (double)((b + 1) * (b + 2) / 2 * (1 + h % 4));
  }
  switch (i & 3) {
  case 0:
    return (double)(ts / 1000) * (double)(1 + i % 5);
  case 1:
    return (double)((i + ts / 60000) % 1000);
  case 2:
    return (double)i;
  default:
    return (double)((ts / 1000 + i) % 17) * 0.25;
  }
}

/* Label values of one series; the names (sorted) are set once in builder_init(). */
typedef struct lg_series_labels {
  char name[64], instance[32], series[24];
  const char *le; /* histogram mode only */
} lg_series_labels;

static void series_labels(int64_t i, lg_series_labels *l) {
  if (opt.hist_buckets) {
    int64_t h = i / opt.hist_buckets, b = i % opt.hist_buckets;
    snprintf(l->name, sizeof(l->name), "%s_bucket", opt.metric_prefix);
    snprintf(l->instance, sizeof(l->instance), "host-%" PRId64, h / LG_PER_INSTANCE);
    snprintf(l->series, sizeof(l->series), "%" PRId64, h);
    l->le = b == opt.hist_buckets - 1 ? "+Inf" : lg_bucket_le[b];
    return;
  }
  snprintf(l->name, sizeof(l->name), "%s_%d", opt.metric_prefix, (int)(i % LG_NAMES));
  snprintf(l->instance, sizeof(l->instance), "host-%" PRId64, i / LG_PER_INSTANCE);
  snprintf(l->series, sizeof(l->series), "%" PRId64, i);
}

/* ---------------------------------------------------------------------------------------- */

static uint64_t mono_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int64_t wall_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void sleep_ns(uint64_t ns) {
  struct timespec t = {.tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull)};
  while (nanosleep(&t, &t) != 0 && errno == EINTR) {
  }
}

static bool time_is_up(void) {
  uint64_t d = atomic_load(&deadline_ns);
  return atomic_load(&stop_flag) || (d && mono_ns() >= d);
}

static void on_signal(int sig) {
  (void)sig;
  atomic_store(&stop_flag, true);
}

static void lat_add(lg_stats *st, double ms) {
  if (st->nlat == st->caplat) {
    size_t ncap = st->caplat ? st->caplat * 2 : 4096;
    st->lat_ms = rt_realloc(st->lat_ms, st->caplat * sizeof(double), ncap * sizeof(double));
    if (!st->lat_ms) {
      fprintf(stderr, "loadgen: out of memory\n");
      exit(2);
    }
    st->caplat = ncap;
  }
  st->lat_ms[st->nlat++] = ms;
}

/* ---------------------------------------------------------------------------------------- */
/* HTTP/1.1 client over one keep-alive socket.                                              */

typedef struct lg_conn {
  int fd;
  char rbuf[16384];
  size_t rlen;
} lg_conn;

static void conn_close(lg_conn *c) {
  if (c->fd >= 0) {
    close(c->fd);
  }
  c->fd = -1;
  c->rlen = 0;
}

static bool conn_open(lg_conn *c) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
  if (getaddrinfo(opt.host, opt.port, &hints, &res) != 0) {
    return false;
  }
  c->fd = -1;
  for (ai = res; ai; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      continue;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      struct timeval tv = {.tv_sec = opt.timeout_ms / 1000, .tv_usec = (opt.timeout_ms % 1000) * 1000};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
      c->fd = fd;
      break;
    }
    close(fd);
  }
  freeaddrinfo(res);
  c->rlen = 0;
  return c->fd >= 0;
}

static bool write_all(int fd, struct iovec *iov, int n) {
  while (n > 0) {
    ssize_t w = writev(fd, iov, n);
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    while (n > 0 && (size_t)w >= iov->iov_len) {
      w -= (ssize_t)iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = (char *)iov->iov_base + w;
      iov->iov_len -= (size_t)w;
    }
  }
  return true;
}

/* Reads more bytes into c->rbuf; false on EOF/error/full buffer. */
static bool conn_fill(lg_conn *c) {
  if (c->rlen >= sizeof(c->rbuf)) {
    return false;
  }
  for (;;) {
    ssize_t r = read(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen);
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r <= 0) {
      return false;
    }
    c->rlen += (size_t)r;
    return true;
  }
}

static void conn_consume(lg_conn *c, size_t n) {
  memmove(c->rbuf, c->rbuf + n, c->rlen - n);
  c->rlen -= n;
}

/* Reads one response. Returns the status code, or -1 on an I/O or protocol error. The start of
 * the body is copied to msg. *keep is false when the server closes the connection. */
static int read_response(lg_conn *c, char *msg, size_t msglen, bool *keep) {
  char *end;
  msg[0] = 0;
  while (!(end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4))) {
    if (!conn_fill(c)) {
      return -1;
    }
  }
  size_t hlen = (size_t)(end - c->rbuf) + 4;
  int status = 0;
  if (sscanf(c->rbuf, "HTTP/1.%*d %d", &status) != 1) {
    return -1;
  }
  int64_t clen = -1;
  bool chunked = false;
  *keep = true;
  /* walk header lines */
  char *p = memchr(c->rbuf, '\n', hlen) + 1;
  while (p < c->rbuf + hlen - 2) {
    char *nl = memchr(p, '\n', (size_t)(c->rbuf + hlen - p));
    if (!nl) {
      break;
    }
    if (!strncasecmp(p, "content-length:", 15)) {
      clen = strtoll(p + 15, NULL, 10);
    } else if (!strncasecmp(p, "transfer-encoding:", 18)) {
      chunked = memmem(p, (size_t)(nl - p), "chunked", 7) != NULL;
    } else if (!strncasecmp(p, "connection:", 11)) {
      if (memmem(p, (size_t)(nl - p), "close", 5)) {
        *keep = false;
      }
    }
    p = nl + 1;
  }
  conn_consume(c, hlen);
  size_t mlen = 0;
#define KEEP_MSG(ptr, n)                                         \
  do {                                                           \
    size_t k_ = RT_MIN((size_t)(n), msglen - 1 - mlen);          \
    memcpy(msg + mlen, (ptr), k_);                               \
    mlen += k_;                                                  \
    msg[mlen] = 0;                                               \
  } while (0)
  if (chunked) {
    for (;;) {
      char *le;
      while (!(le = memmem(c->rbuf, c->rlen, "\r\n", 2))) {
        if (!conn_fill(c)) {
          return -1;
        }
      }
      size_t n = strtoul(c->rbuf, NULL, 16);
      conn_consume(c, (size_t)(le - c->rbuf) + 2);
      while (c->rlen < n + 2) {
        if (c->rlen == sizeof(c->rbuf)) { /* big chunk: keep the start, drop the rest */
          KEEP_MSG(c->rbuf, c->rlen);
          n -= c->rlen;
          c->rlen = 0;
        }
        if (!conn_fill(c)) {
          return -1;
        }
      }
      KEEP_MSG(c->rbuf, n);
      conn_consume(c, n + 2);
      if (n == 0) {
        break;
      }
    }
  } else if (clen >= 0) {
    while ((int64_t)c->rlen < clen) {
      if (c->rlen == sizeof(c->rbuf)) {
        KEEP_MSG(c->rbuf, c->rlen);
        clen -= (int64_t)c->rlen;
        c->rlen = 0;
      }
      if (!conn_fill(c)) {
        return -1;
      }
    }
    KEEP_MSG(c->rbuf, clen);
    conn_consume(c, (size_t)clen);
  } else if (status != 204 && status != 304 && status >= 200) {
    /* body until close */
    while (conn_fill(c)) {
    }
    KEEP_MSG(c->rbuf, c->rlen);
    c->rlen = 0;
    *keep = false;
  }
#undef KEEP_MSG
  return status;
}

/* ---------------------------------------------------------------------------------------- */
/* Request building.                                                                        */

typedef struct lg_builder {
  int cap_series, k;
  Prometheus__TimeSeries *ts;
  Prometheus__TimeSeries **tsp;
  int nlab;                     /* labels per series: 4, or 5 with le */
  Prometheus__Label *lab;       /* nlab per series */
  Prometheus__Label **labp;
  Prometheus__Sample *smp;      /* k per series */
  Prometheus__Sample **smpp;
  lg_series_labels *names;
  uint8_t *raw;
  size_t raw_cap;
  char *comp;
  size_t comp_cap;
} lg_builder;

static void *xalloc(size_t n) {
  void *p = rt_calloc(1, n);
  if (!p) {
    fprintf(stderr, "loadgen: out of memory\n");
    exit(2);
  }
  return p;
}

static void builder_init(lg_builder *b, int cap_series, int k) {
  b->cap_series = cap_series;
  b->k = k;
  b->ts = xalloc(sizeof(*b->ts) * (size_t)cap_series);
  b->tsp = xalloc(sizeof(*b->tsp) * (size_t)cap_series);
  b->nlab = opt.hist_buckets ? 5 : 4;
  int nl = b->nlab;
  b->lab = xalloc(sizeof(*b->lab) * (size_t)cap_series * LG_MAX_LABELS);
  b->labp = xalloc(sizeof(*b->labp) * (size_t)cap_series * LG_MAX_LABELS);
  b->smp = xalloc(sizeof(*b->smp) * (size_t)cap_series * (size_t)k);
  b->smpp = xalloc(sizeof(*b->smpp) * (size_t)cap_series * (size_t)k);
  b->names = xalloc(sizeof(*b->names) * (size_t)cap_series);
  for (int s = 0; s < cap_series; s++) {
    prometheus__time_series__init(&b->ts[s]);
    b->tsp[s] = &b->ts[s];
    Prometheus__Label *lab = &b->lab[s * nl];
    for (int j = 0; j < nl; j++) {
      prometheus__label__init(&lab[j]);
      b->labp[s * nl + j] = &lab[j];
    }
    for (int j = 0; j < k; j++) {
      prometheus__sample__init(&b->smp[s * k + j]);
      b->smpp[s * k + j] = &b->smp[s * k + j];
    }
    b->ts[s].labels = &b->labp[s * nl];
    b->ts[s].n_labels = (size_t)nl;
    b->ts[s].samples = &b->smpp[s * k];
    b->ts[s].n_samples = (size_t)k;
    lab[0].name = "__name__";
    lab[1].name = "instance";
    lab[2].name = "job";
    lab[nl - 1].name = "series";
    lab[0].value = b->names[s].name;
    lab[1].value = b->names[s].instance;
    lab[2].value = opt.hist_buckets ? "loadgen-histogram" : "loadgen";
    lab[nl - 1].value = b->names[s].series;
    if (opt.hist_buckets) {
      lab[3].name = "le";
    }
  }
}

static void builder_free(lg_builder *b) {
  size_t n = (size_t)b->cap_series, k = (size_t)b->k;
  rt_free(b->ts, sizeof(*b->ts) * n);
  rt_free(b->tsp, sizeof(*b->tsp) * n);
  rt_free(b->lab, sizeof(*b->lab) * n * LG_MAX_LABELS);
  rt_free(b->labp, sizeof(*b->labp) * n * LG_MAX_LABELS);
  rt_free(b->smp, sizeof(*b->smp) * n * k);
  rt_free(b->smpp, sizeof(*b->smpp) * n * k);
  rt_free(b->names, sizeof(*b->names) * n);
  rt_free(b->raw, b->raw_cap);
  rt_free(b->comp, b->comp_cap);
}

/* Builds the compressed body for series [lo, hi) at ts0 + j*step, j < k. Returns its length. */
static size_t builder_build(lg_builder *b, int64_t lo, int64_t hi, int64_t ts0) {
  int n = (int)(hi - lo);
  for (int s = 0; s < n; s++) {
    int64_t i = lo + s;
    series_labels(i, &b->names[s]);
    if (opt.hist_buckets) {
      b->lab[s * b->nlab + 3].value = (char *)b->names[s].le;
    }
    for (int j = 0; j < b->k; j++) {
      int64_t t = ts0 + (int64_t)j * opt.step_ms;
      b->smp[s * b->k + j].timestamp = t;
      b->smp[s * b->k + j].value = sample_value(i, t);
    }
  }
  Prometheus__WriteRequest wr;
  prometheus__write_request__init(&wr);
  wr.timeseries = b->tsp;
  wr.n_timeseries = (size_t)n;
  size_t rawlen = prometheus__write_request__get_packed_size(&wr);
  if (rawlen > b->raw_cap) {
    rt_free(b->raw, b->raw_cap);
    b->raw_cap = rawlen * 2;
    b->raw = xalloc(b->raw_cap);
  }
  prometheus__write_request__pack(&wr, b->raw);
  size_t clen = snappy_max_compressed_length(rawlen);
  if (clen > b->comp_cap) {
    rt_free(b->comp, b->comp_cap);
    b->comp_cap = clen * 2;
    b->comp = xalloc(b->comp_cap);
  }
  clen = b->comp_cap;
  if (snappy_compress((const char *)b->raw, rawlen, b->comp, &clen) != SNAPPY_OK) {
    fprintf(stderr, "loadgen: snappy_compress failed\n");
    exit(2);
  }
  return clen;
}

/* ---------------------------------------------------------------------------------------- */

static void verify_line(char kind, int64_t lo, int64_t hi, int64_t ts0) {
  if (!verify_fp) {
    return;
  }
  pthread_mutex_lock(&verify_mu);
  fprintf(verify_fp, "%c %" PRId64 " %" PRId64 " %" PRId64 " %d %" PRId64 "\n", kind, lo, hi, ts0,
          opt.samples_per_series, opt.step_ms);
  fflush(verify_fp);
  pthread_mutex_unlock(&verify_mu);
}

/* Sends one request (with retries). Returns 'A', 'U' or 'R'. */
static char send_request(lg_conn *c, lg_thread *t, const char *body, size_t blen, char *msg,
                         size_t msglen) {
  char hdr[1024];
  int hl = snprintf(hdr, sizeof(hdr),
                    "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ringtail-loadgen/0.1\r\n"
                    "Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\n"
                    "X-Prometheus-Remote-Write-Version: 0.1.0\r\n%s%s%sContent-Length: %zu\r\n\r\n",
                    opt.path, rt_host_header, opt.tenant ? "X-Scope-OrgID: " : "",
                    opt.tenant ? opt.tenant : "", opt.tenant ? "\r\n" : "", blen);
  uint64_t backoff = 20 * 1000000ull;
  if (opt.dry_run) {
    lat_add(&t->st, 0);
    t->st.bytes_sent += blen;
    return 'A';
  }
  for (int attempt = 0;; attempt++) {
    while (c->fd < 0) {
      if (conn_open(c)) {
        break;
      }
      if (time_is_up()) {
        return 0; /* nothing was sent */
      }
      sleep_ns(20 * 1000000ull);
    }
    bool sent_something = true;
    uint64_t t0 = mono_ns();
    struct iovec iov[2] = {{hdr, (size_t)hl}, {(void *)body, blen}};
    int status = -1;
    bool keep = true;
    if (write_all(c->fd, iov, 2)) {
      status = read_response(c, msg, msglen, &keep);
    }
    uint64_t t1 = mono_ns();
    if (status >= 200 && status < 300) {
      lat_add(&t->st, (double)(t1 - t0) / 1e6);
      t->st.bytes_sent += blen;
      if (!keep) {
        conn_close(c);
      }
      return 'A';
    }
    if (status < 0 || !keep) {
      conn_close(c);
    }
    if (status >= 400 && status < 500 && status != 429) {
      snprintf(t->st.last_error, sizeof(t->st.last_error), "HTTP %d: %.200s", status, msg);
      return 'R';
    }
    if (status < 0) {
      snprintf(t->st.last_error, sizeof(t->st.last_error), "I/O error: %s", strerror(errno));
    } else {
      snprintf(t->st.last_error, sizeof(t->st.last_error), "HTTP %d: %.200s", status, msg);
    }
    (void)sent_something;
    if (attempt >= opt.max_retries || time_is_up()) {
      return 'U';
    }
    t->st.retries++;
    sleep_ns(backoff);
    backoff = RT_MIN(backoff * 2, 1000 * 1000000ull);
  }
}

typedef struct lg_body {
  char *data;
  size_t len;
  int64_t lo, hi, ts0;
} lg_body;

/* Sends one built body and accounts for it. Returns false when the run is over. */
static bool send_and_count(lg_conn *c, lg_thread *t, const char *body, size_t blen, int64_t lo,
                           int64_t hi, int64_t ts0, char *msg, size_t msglen) {
  char r = send_request(c, t, body, blen, msg, msglen);
  uint64_t ns = (uint64_t)(hi - lo) * (uint64_t)opt.samples_per_series;
  if (r == 0) {
    return false;
  }
  verify_line(r, lo, hi, ts0);
  if (r == 'A') {
    t->st.req_ok++;
    t->st.samples_ok += ns;
  } else if (r == 'R') {
    t->st.req_rejected++;
    t->st.samples_rejected += ns;
  } else {
    t->st.req_failed++;
    t->st.samples_failed += ns;
  }
  return true;
}

static void pace(uint64_t start, double ns_per_sample, uint64_t nsent) {
  if (ns_per_sample > 0) {
    uint64_t due = start + (uint64_t)(ns_per_sample * (double)nsent), now = mono_ns();
    if (due > now) {
      sleep_ns(due - now);
    }
  }
}

static void *worker(void *arg) {
  lg_thread *t = arg;
  int k = opt.samples_per_series;
  int per_req = RT_MAX(1, opt.samples_per_request / k);
  lg_builder b = {0};
  builder_init(&b, per_req, k);
  lg_conn c = {.fd = -1};
  char msg[512];
  lg_body *bodies = NULL;
  size_t nbodies = 0, capbodies = 0;
  int64_t slice = t->series_hi - t->series_lo;
  if (opt.pregen && slice > 0) {
    for (int64_t round = 0; round * k < opt.rounds; round++) {
      int64_t ts0 = opt.start_ts + round * k * opt.step_ms;
      for (int64_t lo = t->series_lo; lo < t->series_hi; lo += per_req) {
        int64_t hi = RT_MIN(lo + per_req, t->series_hi);
        size_t blen = builder_build(&b, lo, hi, ts0);
        if (nbodies == capbodies) {
          size_t ncap = capbodies ? capbodies * 2 : 1024;
          bodies = rt_realloc(bodies, capbodies * sizeof(*bodies), ncap * sizeof(*bodies));
          if (!bodies) {
            fprintf(stderr, "loadgen: out of memory\n");
            exit(2);
          }
          capbodies = ncap;
        }
        bodies[nbodies] = (lg_body){.data = xalloc(blen), .len = blen, .lo = lo, .hi = hi, .ts0 = ts0};
        memcpy(bodies[nbodies].data, b.comp, blen);
        nbodies++;
      }
    }
  }
  pthread_barrier_wait(&start_barrier);
  if (slice <= 0) {
    goto out;
  }
  uint64_t start = mono_ns();
  /* pacing: a request is due when the samples sent before it match the thread's share of --rate */
  double ns_per_sample = opt.rate > 0 ? 1e9 * opt.concurrency / opt.rate : 0;
  uint64_t nsent = 0;
  if (opt.pregen) {
    for (size_t i = 0; i < nbodies && !time_is_up(); i++) {
      lg_body *bd = &bodies[i];
      pace(start, ns_per_sample, nsent);
      if (!send_and_count(&c, t, bd->data, bd->len, bd->lo, bd->hi, bd->ts0, msg, sizeof(msg))) {
        break;
      }
      nsent += (uint64_t)(bd->hi - bd->lo) * (uint64_t)k;
    }
    goto out;
  }
  for (int64_t round = 0; opt.rounds == 0 || round * k < opt.rounds; round++) {
    int64_t ts0 = opt.start_ts + round * k * opt.step_ms;
    int64_t ts_last = ts0 + (int64_t)(k - 1) * opt.step_ms;
    /* never send samples from the future */
    while (ts_last > wall_ms() && !time_is_up()) {
      sleep_ns(RT_MIN((uint64_t)(ts_last - wall_ms()), 100) * 1000000ull);
    }
    for (int64_t lo = t->series_lo; lo < t->series_hi; lo += per_req) {
      if (time_is_up()) {
        goto out;
      }
      int64_t hi = RT_MIN(lo + per_req, t->series_hi);
      pace(start, ns_per_sample, nsent);
      size_t blen = builder_build(&b, lo, hi, ts0);
      if (!send_and_count(&c, t, b.comp, blen, lo, hi, ts0, msg, sizeof(msg))) {
        goto out;
      }
      nsent += (uint64_t)(hi - lo) * (uint64_t)k;
    }
  }
out:
  for (size_t i = 0; i < nbodies; i++) {
    rt_free(bodies[i].data, bodies[i].len);
  }
  rt_free(bodies, capbodies * sizeof(*bodies));
  conn_close(&c);
  builder_free(&b);
  return NULL;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* ---------------------------------------------------------------------------------------- */
/* Check mode.                                                                              */

typedef struct ck_sample {
  int64_t ts;
  double v;
  bool seen; /* covered by some log line */
} ck_sample;

typedef struct ck_series {
  ck_sample *s;
  size_t n, cap;
} ck_series;

static int cmp_sample(const void *a, const void *b) {
  int64_t x = ((const ck_sample *)a)->ts, y = ((const ck_sample *)b)->ts;
  return x < y ? -1 : x > y;
}

static ck_sample *ck_find(ck_series *s, int64_t ts) {
  size_t lo = 0, hi = s->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (s->s[mid].ts < ts) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo < s->n && s->s[lo].ts == ts ? &s->s[lo] : NULL;
}

static bool same_value(double a, double b) {
  return a == b || (isnan(a) && isnan(b));
}

static int check_mode(const char *log_path, const char *dump_path) {
  FILE *df = strcmp(dump_path, "-") ? fopen(dump_path, "r") : stdin;
  if (!df) {
    fprintf(stderr, "check: cannot open %s: %s\n", dump_path, strerror(errno));
    return 2;
  }
  FILE *lf = fopen(log_path, "r");
  if (!lf) {
    fprintf(stderr, "check: cannot open %s: %s\n", log_path, strerror(errno));
    return 2;
  }
  /* pass 1: the log, to size the series table */
  int64_t max_series = 0;
  char line[8192];
  while (fgets(line, sizeof(line), lf)) {
    char kind;
    int64_t lo, hi, ts0, step;
    int k;
    if (sscanf(line, "%c %" SCNd64 " %" SCNd64 " %" SCNd64 " %d %" SCNd64, &kind, &lo, &hi, &ts0, &k,
               &step) == 6 &&
        hi > max_series) {
      max_series = hi;
    }
  }
  int64_t nseries = max_series + 1;
  ck_series *tab = xalloc(sizeof(ck_series) * (size_t)nseries);
  /* the dump */
  uint64_t dump_samples = 0, foreign = 0, bad_lines = 0, beyond = 0;
  char pfx[80], bare[80];
  snprintf(pfx, sizeof(pfx), "__name__=\"%s_", opt.metric_prefix);
  int barelen = snprintf(bare, sizeof(bare), "%s_", opt.metric_prefix);
  while (fgets(line, sizeof(line), df)) {
    char *open = strchr(line, '{');
    char *close = strrchr(line, '}');
    if (!open || !close || close < open) {
      continue; /* tenant headers, comments */
    }
    *close = 0;
    /* the metric name inside the braces, or before them (name{...}) */
    const char *ls = line;
    while (*ls == ' ' || *ls == '\t') {
      ls++;
    }
    bool named = strstr(open, pfx) || (ls < open && !strncmp(ls, bare, (size_t)barelen));
    if (!named || !strstr(open, "job=\"loadgen\"")) {
      foreign++;
      continue;
    }
    char *sl = strstr(open, "series=\"");
    if (!sl) {
      bad_lines++;
      continue;
    }
    int64_t idx = strtoll(sl + 8, NULL, 10);
    char *end;
    int64_t ts = strtoll(close + 1, &end, 10);
    double v = strtod(end, &end);
    if (end == close + 1) {
      bad_lines++;
      continue;
    }
    if (idx < 0 || idx >= nseries) {
      beyond++;
      if (beyond <= 5) {
        fprintf(stderr, "check: sample of series %" PRId64 " that was never sent (ts %" PRId64 ")\n",
                idx, ts);
      }
      continue;
    }
    ck_series *s = &tab[idx];
    if (s->n == s->cap) {
      size_t ncap = s->cap ? s->cap * 2 : 16;
      s->s = rt_realloc(s->s, s->cap * sizeof(ck_sample), ncap * sizeof(ck_sample));
      s->cap = ncap;
    }
    s->s[s->n++] = (ck_sample){.ts = ts, .v = v};
    dump_samples++;
  }
  for (int64_t i = 0; i < nseries; i++) {
    if (tab[i].n > 1) {
      qsort(tab[i].s, tab[i].n, sizeof(ck_sample), cmp_sample);
    }
  }
  /* pass 2: the log against the dump */
  rewind(lf);
  uint64_t nA = 0, nU = 0, nR = 0, uAll = 0, uNone = 0, errors = 0, acked_samples = 0, dups = 0;
  for (int64_t i = 0; i < nseries; i++) {
    for (size_t j = 1; j < tab[i].n; j++) {
      if (tab[i].s[j].ts == tab[i].s[j - 1].ts) {
        dups++;
        if (dups <= 5) {
          fprintf(stderr, "check: series %" PRId64 " has ts %" PRId64 " twice in the dump\n", i,
                  tab[i].s[j].ts);
        }
      }
    }
  }
  while (fgets(line, sizeof(line), lf)) {
    char kind;
    int64_t lo, hi, ts0, step;
    int k;
    if (sscanf(line, "%c %" SCNd64 " %" SCNd64 " %" SCNd64 " %d %" SCNd64, &kind, &lo, &hi, &ts0, &k,
               &step) != 6) {
      continue;
    }
    uint64_t present = 0, total = 0, wrong = 0;
    for (int64_t i = lo; i < hi; i++) {
      for (int j = 0; j < k; j++) {
        int64_t ts = ts0 + (int64_t)j * step;
        total++;
        ck_sample *cs = ck_find(&tab[i], ts);
        if (cs) {
          cs->seen = true;
          present++;
          if (!same_value(cs->v, sample_value(i, ts))) {
            wrong++;
            if (wrong == 1) {
              fprintf(stderr,
                      "check: series %" PRId64 " ts %" PRId64 ": value %.17g, expected %.17g\n", i,
                      ts, cs->v, sample_value(i, ts));
            }
          }
        } else if (kind == 'A' && total - present <= 3) {
          fprintf(stderr, "check: acknowledged sample missing: series %" PRId64 " ts %" PRId64 "\n",
                  i, ts);
        }
      }
    }
    if (wrong) {
      errors++;
    }
    if (kind == 'A') {
      nA++;
      acked_samples += total;
      if (present != total) {
        errors++;
        fprintf(stderr, "check: request %s  acknowledged, but only %" PRIu64 " of %" PRIu64
                " samples are stored\n", strtok(line, "\n"), present, total);
      }
    } else if (kind == 'U') {
      nU++;
      if (present == total) {
        uAll++;
      } else if (present == 0) {
        uNone++;
      } else {
        errors++;
        fprintf(stderr, "check: request %s  unacknowledged and half written: %" PRIu64 " of %" PRIu64
                " samples stored\n", strtok(line, "\n"), present, total);
      }
    } else if (kind == 'R') {
      nR++;
    }
  }
  uint64_t unsent = 0;
  for (int64_t i = 0; i < nseries; i++) {
    for (size_t j = 0; j < tab[i].n; j++) {
      if (!tab[i].s[j].seen) {
        unsent++;
        if (unsent <= 5) {
          fprintf(stderr, "check: stored sample that was never sent: series %" PRId64 " ts %" PRId64 "\n",
                  i, tab[i].s[j].ts);
        }
      }
    }
    rt_free(tab[i].s, tab[i].cap * sizeof(ck_sample));
  }
  rt_free(tab, sizeof(ck_series) * (size_t)nseries);
  errors += unsent + beyond + dups + bad_lines;
  printf("check: dump has %" PRIu64 " loadgen samples (%" PRIu64 " other lines)\n", dump_samples,
         foreign);
  printf("check: %" PRIu64 " acknowledged requests (%" PRIu64 " samples), %" PRIu64
         " unacknowledged (%" PRIu64 " fully stored, %" PRIu64 " not stored), %" PRIu64 " rejected\n",
         nA, acked_samples, nU, uAll, uNone, nR);
  printf("check: %" PRIu64 " stored samples never sent, %" PRIu64 " duplicates, %" PRIu64
         " unparsable lines\n", unsent + beyond, dups, bad_lines);
  printf("check: %s\n", errors ? "FAILED" : "OK");
  fclose(lf);
  if (df != stdin) {
    fclose(df);
  }
  return errors ? 1 : 0;
}

/* ---------------------------------------------------------------------------------------- */

static void usage(FILE *out) {
  fprintf(out,
          "usage: ringtail-loadgen [options]\n"
          "       ringtail-loadgen --check VERIFY_LOG --dump DUMP_FILE\n"
          "Sends Prometheus remote-write load and reports accepted samples/s and latency.\n"
          "  --url URL                  http://host:port/path (http://127.0.0.1:9009/api/v1/push)\n"
          "  --series N                 number of series (1000)\n"
          "  --series-offset I          index of the first series (0)\n"
          "  --samples-per-request S    samples per request (2000)\n"
          "  --samples-per-series K     consecutive samples of one series per request (1)\n"
          "  --concurrency C            connections, one thread each (4)\n"
          "  --duration SECONDS         stop after this long (10; 0 = until --rounds are sent)\n"
          "  --rounds R                 samples per series to send (0 = until --duration)\n"
          "  --rate SAMPLES_PER_SEC     total send rate (0 = as fast as accepted)\n"
          "  --start-ts MS              timestamp of the first samples (now - 1h)\n"
          "  --step MS                  time between consecutive samples of a series (15000)\n"
          "  --tenant ID                send X-Scope-OrgID: ID\n"
          "  --metric-prefix P          metric names are P_0 .. P_19 (loadgen)\n"
          "  --histogram-buckets B      series are the B buckets (2..12) of classic histograms\n"
          "                             named P_bucket, job=\"loadgen-histogram\", le labels\n"
          "  --max-retries R            retries after I/O errors, 5xx and 429 (3)\n"
          "  --timeout MS               per-request socket timeout (10000)\n"
          "  --verify-log FILE          append one line per finished request (see bench/loadgen.c)\n"
          "  --quiet                    print only the RESULT line\n"
          "  --dry-run                  build and compress requests but send nothing\n"
          "  --pregen                   build all --rounds requests first, then send: the timed\n"
          "                             part costs the generator almost no CPU\n");
}

static bool parse_url(const char *url) {
  snprintf(opt.url, sizeof(opt.url), "%s", url);
  const char *p = url;
  if (!strncmp(p, "http://", 7)) {
    p += 7;
  } else if (strstr(p, "://")) {
    return false;
  }
  const char *slash = strchr(p, '/');
  size_t hostport = slash ? (size_t)(slash - p) : strlen(p);
  snprintf(opt.path, sizeof(opt.path), "%s", slash ? slash : "/api/v1/push");
  char hp[256];
  if (hostport >= sizeof(hp)) {
    return false;
  }
  memcpy(hp, p, hostport);
  hp[hostport] = 0;
  snprintf(rt_host_header, sizeof(rt_host_header), "%s", hp);
  char *colon = strrchr(hp, ':');
  if (hp[0] == '[') { /* [v6]:port */
    char *rb = strchr(hp, ']');
    if (!rb) {
      return false;
    }
    *rb = 0;
    snprintf(opt.host, sizeof(opt.host), "%s", hp + 1);
    snprintf(opt.port, sizeof(opt.port), "%s", rb[1] == ':' ? rb + 2 : "80");
    return true;
  }
  if (colon) {
    *colon = 0;
    snprintf(opt.port, sizeof(opt.port), "%s", colon + 1);
  } else {
    snprintf(opt.port, sizeof(opt.port), "80");
  }
  snprintf(opt.host, sizeof(opt.host), "%s", hp);
  return true;
}

int main(int argc, char **argv) {
  const char *check_log = NULL, *dump = NULL;
  opt.series = 1000;
  opt.samples_per_request = 2000;
  opt.samples_per_series = 1;
  opt.concurrency = 4;
  opt.duration_s = 10;
  opt.step_ms = 15000;
  opt.start_ts = -1;
  opt.max_retries = 3;
  opt.timeout_ms = 10000;
  opt.metric_prefix = "loadgen";
  parse_url("http://127.0.0.1:9009/api/v1/push");
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = NULL;
    char name[64];
    const char *eq = strchr(a, '=');
    if (eq && (size_t)(eq - a) < sizeof(name)) {
      memcpy(name, a, (size_t)(eq - a));
      name[eq - a] = 0;
      v = eq + 1;
      a = name;
    }
#define ARG(n) (!strcmp(a, n) && (v || (i + 1 < argc && (v = argv[++i]))))
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "--quiet")) {
      opt.quiet = true;
    } else if (!strcmp(a, "--dry-run")) {
      opt.dry_run = true;
    } else if (!strcmp(a, "--pregen")) {
      opt.pregen = true;
    } else if (ARG("--url")) {
      if (!parse_url(v)) {
        fprintf(stderr, "loadgen: bad --url %s (want http://host:port/path)\n", v);
        return 2;
      }
    } else if (ARG("--series")) {
      opt.series = strtoll(v, NULL, 10);
    } else if (ARG("--series-offset")) {
      opt.series_offset = strtoll(v, NULL, 10);
    } else if (ARG("--samples-per-request")) {
      opt.samples_per_request = atoi(v);
    } else if (ARG("--samples-per-series")) {
      opt.samples_per_series = atoi(v);
    } else if (ARG("--concurrency")) {
      opt.concurrency = atoi(v);
    } else if (ARG("--duration")) {
      opt.duration_s = atof(v);
    } else if (ARG("--rounds")) {
      opt.rounds = strtoll(v, NULL, 10);
    } else if (ARG("--rate")) {
      opt.rate = atof(v);
    } else if (ARG("--start-ts")) {
      opt.start_ts = strtoll(v, NULL, 10);
    } else if (ARG("--step")) {
      opt.step_ms = strtoll(v, NULL, 10);
    } else if (ARG("--tenant")) {
      opt.tenant = v;
    } else if (ARG("--metric-prefix")) {
      opt.metric_prefix = v;
    } else if (ARG("--histogram-buckets")) {
      opt.hist_buckets = atoi(v);
      if (opt.hist_buckets < 2 || opt.hist_buckets > LG_MAX_BUCKETS) {
        fprintf(stderr, "loadgen: --histogram-buckets must be 2..%d\n", LG_MAX_BUCKETS);
        return 2;
      }
    } else if (ARG("--max-retries")) {
      opt.max_retries = atoi(v);
    } else if (ARG("--timeout")) {
      opt.timeout_ms = atoi(v);
    } else if (ARG("--verify-log")) {
      opt.verify_log = v;
    } else if (ARG("--check")) {
      check_log = v;
    } else if (ARG("--dump")) {
      dump = v;
    } else {
      fprintf(stderr, "loadgen: unknown or incomplete option %s\n", argv[i]);
      usage(stderr);
      return 2;
    }
#undef ARG
  }
  if (check_log || dump) {
    if (!check_log || !dump) {
      fprintf(stderr, "loadgen: --check needs --dump\n");
      return 2;
    }
    if (opt.hist_buckets) {
      fprintf(stderr, "loadgen: --check does not read --histogram-buckets data\n");
      return 2;
    }
    return check_mode(check_log, dump);
  }
  if (opt.series <= 0 || opt.samples_per_request <= 0 || opt.samples_per_series <= 0 ||
      opt.concurrency <= 0 || opt.step_ms <= 0 || opt.timeout_ms <= 0 ||
      (opt.duration_s <= 0 && opt.rounds <= 0)) {
    fprintf(stderr, "loadgen: --series, --samples-per-request, --samples-per-series, "
                    "--concurrency, --step must be > 0 and one of --duration/--rounds set\n");
    return 2;
  }
  if (opt.hist_buckets && (opt.series % opt.hist_buckets || opt.series_offset % opt.hist_buckets)) {
    fprintf(stderr, "loadgen: --series and --series-offset must be multiples of --histogram-buckets\n");
    return 2;
  }
  if (opt.concurrency > opt.series) {
    opt.concurrency = (int)opt.series;
  }
  if (opt.start_ts < 0) {
    opt.start_ts = wall_ms() - 3600 * 1000;
  }
  if (opt.verify_log) {
    verify_fp = fopen(opt.verify_log, "a");
    if (!verify_fp) {
      fprintf(stderr, "loadgen: cannot open %s: %s\n", opt.verify_log, strerror(errno));
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  if (!opt.quiet) {
    printf("loadgen: url=%s series=%" PRId64 " samples/request=%d samples/series/request=%d "
           "concurrency=%d rate=%s duration=%gs rounds=%" PRId64 " start_ts=%" PRId64 " step=%" PRId64
           "ms\n",
           opt.url, opt.series, opt.samples_per_request, opt.samples_per_series, opt.concurrency,
           opt.rate > 0 ? "limited" : "unlimited", opt.duration_s, opt.rounds, opt.start_ts,
           opt.step_ms);
    fflush(stdout);
  }
  if (opt.pregen && opt.rounds <= 0) {
    fprintf(stderr, "loadgen: --pregen needs --rounds\n");
    return 2;
  }
  lg_thread *th = xalloc(sizeof(lg_thread) * (size_t)opt.concurrency);
  pthread_barrier_init(&start_barrier, NULL, (unsigned)opt.concurrency + 1);
  for (int i = 0; i < opt.concurrency; i++) {
    th[i].idx = i;
    th[i].series_lo = opt.series_offset + opt.series * i / opt.concurrency;
    th[i].series_hi = opt.series_offset + opt.series * (i + 1) / opt.concurrency;
    if (pthread_create(&th[i].tid, NULL, worker, &th[i]) != 0) {
      fprintf(stderr, "loadgen: pthread_create failed\n");
      return 2;
    }
  }
  /* the clock starts when every connection has built what it builds up front */
  pthread_barrier_wait(&start_barrier);
  uint64_t t0 = mono_ns();
  if (opt.duration_s > 0) {
    atomic_store(&deadline_ns, t0 + (uint64_t)(opt.duration_s * 1e9));
  }
  lg_stats tot = {0};
  for (int i = 0; i < opt.concurrency; i++) {
    pthread_join(th[i].tid, NULL);
  }
  double elapsed = (double)(mono_ns() - t0) / 1e9;
  for (int i = 0; i < opt.concurrency; i++) {
    lg_stats *s = &th[i].st;
    tot.req_ok += s->req_ok;
    tot.req_failed += s->req_failed;
    tot.req_rejected += s->req_rejected;
    tot.retries += s->retries;
    tot.samples_ok += s->samples_ok;
    tot.samples_failed += s->samples_failed;
    tot.samples_rejected += s->samples_rejected;
    tot.bytes_sent += s->bytes_sent;
    for (size_t j = 0; j < s->nlat; j++) {
      lat_add(&tot, s->lat_ms[j]);
    }
    if (s->last_error[0]) {
      memcpy(tot.last_error, s->last_error, sizeof(tot.last_error));
    }
    rt_free(s->lat_ms, s->caplat * sizeof(double));
  }
  rt_free(th, sizeof(lg_thread) * (size_t)opt.concurrency);
  pthread_barrier_destroy(&start_barrier);
  if (tot.nlat > 1) {
    qsort(tot.lat_ms, tot.nlat, sizeof(double), cmp_double);
  }
  double p50 = tot.nlat ? tot.lat_ms[(size_t)(0.50 * (double)(tot.nlat - 1))] : 0;
  double p99 = tot.nlat ? tot.lat_ms[(size_t)(0.99 * (double)(tot.nlat - 1))] : 0;
  double pmax = tot.nlat ? tot.lat_ms[tot.nlat - 1] : 0;
  double sps = elapsed > 0 ? (double)tot.samples_ok / elapsed : 0;
  if (!opt.quiet) {
    printf("loadgen: requests ok=%" PRIu64 " failed=%" PRIu64 " rejected=%" PRIu64 " retries=%" PRIu64
           "\n",
           tot.req_ok, tot.req_failed, tot.req_rejected, tot.retries);
    printf("loadgen: %" PRIu64 " samples accepted in %.2fs = %.0f samples/s (%.1f MiB/s compressed)\n",
           tot.samples_ok, elapsed, sps, (double)tot.bytes_sent / elapsed / 1048576.0);
    printf("loadgen: latency ms p50=%.2f p99=%.2f max=%.2f\n", p50, p99, pmax);
    if (tot.last_error[0]) {
      printf("loadgen: last error: %s\n", tot.last_error);
    }
  }
  printf("RESULT samples_per_sec=%.0f samples_ok=%" PRIu64 " requests_ok=%" PRIu64
         " requests_failed=%" PRIu64 " requests_rejected=%" PRIu64 " p50_ms=%.3f p99_ms=%.3f "
         "elapsed_s=%.3f\n",
         sps, tot.samples_ok, tot.req_ok, tot.req_failed, tot.req_rejected, p50, p99, elapsed);
  rt_free(tot.lat_ms, tot.caplat * sizeof(double));
  if (verify_fp) {
    fclose(verify_fp);
  }
  return tot.req_ok > 0 && tot.req_failed == 0 && tot.req_rejected == 0 ? 0 : 1;
}
