/* decode.c - remote-write body -> dist_request: snappy block format, then a hand-written
 * protobuf decoder for prometheus.WriteRequest.
 *
 * Why not protobuf_c_message_unpack: it cannot tell us where or why a message is malformed, it
 * loses the length of strings (a NUL byte inside a label would silently cut it) and it would
 * check UTF-8 in a second pass. This decoder fills the same protobuf-c structs (so they can be
 * packed again into an ingester.Push), checks UTF-8 and NUL bytes while it copies each string,
 * and names the message, field and byte offset of the first framing error.
 *
 * Memory, all from the request arena: the decompressed bytes, one string pool of at most the
 * decompressed size (every copied string of n bytes plus its NUL fits in the >= n + 2 bytes of
 * its own encoding), and per series one array of labels and one of samples. No allocation per
 * sample or per string. */
#include <snappy-c.h>
#include <stdio.h>
#include <string.h>

#include "common/labels.h"
#include "distributor/distributor.h"

/* Above this declared size the compressed input is validated before the output buffer is
 * allocated, so that a small garbage body can not make us allocate a large buffer. */
#define DIST_VALIDATE_ABOVE (1u << 20)

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };

typedef struct pb_rd {
  const uint8_t *p;
  const uint8_t *end;
  const uint8_t *base;   /* start of the whole message, for offsets in errors */
} pb_rd;

typedef struct pb_dec {
  rt_arena *arena;
  char *pool;            /* string pool */
  size_t pool_used, pool_cap;
  char *errbuf;
  size_t errlen;
} pb_dec;

static inline bool pb_varint(pb_rd *r, uint64_t *out) {
  const uint8_t *p = r->p;
  if (p < r->end && *p < 0x80) { /* the common one-byte case */
    *out = *p;
    r->p = p + 1;
    return true;
  }
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 70; shift += 7) {
    if (p >= r->end) {
      return false;
    }
    uint8_t b = *p++;
    if (shift == 63 && b > 1) {
      return false; /* more than 64 bits */
    }
    v |= (uint64_t)(b & 0x7f) << shift;
    if (b < 0x80) {
      *out = v;
      r->p = p;
      return true;
    }
  }
  return false;
}

/* Reads a tag. Returns 0 at the end of input, 1 with *field / *wt, -1 on a truncated tag, -2 on
 * a field number above 2^29-1, -3 on field number 0 (protobuf forbids both). */
static inline int pb_tag(pb_rd *r, uint32_t *field, unsigned *wt) {
  if (r->p >= r->end) {
    return 0;
  }
  uint64_t t;
  if (!pb_varint(r, &t)) {
    return -1;
  }
  if ((t >> 3) == 0) {
    return -3;
  }
  if ((t >> 3) > 0x1fffffff) {
    return -2;
  }
  *field = (uint32_t)(t >> 3);
  *wt = (unsigned)(t & 7);
  return 1;
}

/* Reads the length prefix and returns the sub-reader of a length-delimited field. */
static inline bool pb_len(pb_rd *r, pb_rd *sub) {
  uint64_t n;
  if (!pb_varint(r, &n) || n > (uint64_t)(r->end - r->p)) {
    return false;
  }
  sub->p = r->p;
  sub->end = r->p + n;
  sub->base = r->base;
  r->p += n;
  return true;
}

/* Skips a field of wire type wt. */
static inline bool pb_skip(pb_rd *r, unsigned wt) {
  uint64_t v;
  pb_rd sub = {0};
  switch (wt) {
  case WT_VARINT:
    return pb_varint(r, &v);
  case WT_I64:
    if (r->end - r->p < 8) {
      return false;
    }
    r->p += 8;
    return true;
  case WT_LEN:
    return pb_len(r, &sub);
  case WT_I32:
    if (r->end - r->p < 4) {
      return false;
    }
    r->p += 4;
    return true;
  default:
    return false; /* groups (3, 4) are not part of any message here; 6 and 7 do not exist */
  }
}

/* Checks a string: 0 fine, 1 holds a NUL byte, 2 not valid UTF-8. The common case, printable
 * ASCII, is tested eight bytes at a time. */
static int str_check(const uint8_t *s, size_t n) {
  const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x;
    memcpy(&x, s + i, 8);
    /* a byte >= 0x80, or a zero byte (x - 1 borrows into its high bit) */
    if ((x | ((x - ones) & ~x)) & highs) {
      break;
    }
  }
  for (; i < n; i++) {
    if (s[i] == 0 || s[i] >= 0x80) {
      break;
    }
  }
  if (i == n) {
    return 0;
  }
  if (memchr(s + i, 0, n - i)) {
    return 1;
  }
  return rt_utf8_valid((const char *)s + i, n - i) ? 0 : 2;
}

/* Copies a string field into the pool. *check gets str_check's verdict, *len the length. */
static char *pb_str(pb_dec *d, const pb_rd *sub, int *check, uint32_t *len) {
  size_t n = (size_t)(sub->end - sub->p);
  *len = (uint32_t)n; /* n < 4 GiB: bounded by the decompressed-size limit */
  if (n == 0) {
    *check = 0;
    return (char *)"";
  }
  RT_ASSERT(d->pool_used + n + 1 <= d->pool_cap);
  char *s = d->pool + d->pool_used;
  memcpy(s, sub->p, n);
  s[n] = 0;
  d->pool_used += n + 1;
  *check = str_check(sub->p, n);
  return s;
}

static const char *wt_name(unsigned wt) {
  static const char *const names[8] = {"varint", "fixed64", "length-delimited", "start-group",
                                       "end-group", "fixed32", "invalid(6)", "invalid(7)"};
  return names[wt & 7];
}

static rt_err pb_wrong_wt(pb_dec *d, const pb_rd *r, const uint8_t *at, const char *what, unsigned wt,
                          unsigned want) {
  if (d->errbuf && d->errlen) {
    snprintf(d->errbuf, d->errlen,
             "malformed protobuf WriteRequest: %s: wire type %s, expected %s at byte %zu", what,
             wt_name(wt), wt_name(want), (size_t)(at - r->base));
  }
  return RT_EPROTO;
}

static rt_err pb_bad_tag(pb_dec *d, const pb_rd *r, const uint8_t *at, const char *what, int t) {
  if (d->errbuf && d->errlen) {
    snprintf(d->errbuf, d->errlen, "malformed protobuf WriteRequest: %s: %s at byte %zu", what,
             t == -2 ? "field number out of range" : t == -3 ? "field number 0" : "truncated field tag", (size_t)(at - r->base));
  }
  return RT_EPROTO;
}

static rt_err pb_truncated(pb_dec *d, const pb_rd *r, const uint8_t *at, const char *what, unsigned field,
                           unsigned wt) {
  if (d->errbuf && d->errlen) {
    snprintf(d->errbuf, d->errlen,
             "malformed protobuf WriteRequest: %s: field %u (%s) is truncated%s at byte %zu", what, field,
             wt_name(wt), wt == WT_VARINT ? " or longer than 64 bits" : "", (size_t)(at - r->base));
  }
  return RT_EPROTO;
}

/* ---------------------------------------------------------------- messages */

static rt_err dec_label(pb_dec *d, pb_rd *r, Prometheus__Label *l, uint32_t *lens, int *name_chk,
                        int *value_chk) {
  static const Prometheus__Label init = PROMETHEUS__LABEL__INIT;
  *l = init;
  l->name = (char *)"";
  l->value = (char *)"";
  *name_chk = *value_chk = 0;
  lens[0] = lens[1] = 0;
  uint32_t f;
  unsigned wt;
  int t;
  const uint8_t *at = r->p;
  while ((t = pb_tag(r, &f, &wt)) > 0) {
    pb_rd sub = {0};
    if (f == 1 || f == 2) {
      if (wt != WT_LEN) {
        return pb_wrong_wt(d, r, at, f == 1 ? "Label.name" : "Label.value", wt, WT_LEN);
      }
      if (!pb_len(r, &sub)) {
        return pb_truncated(d, r, at, "Label", f, wt);
      }
      if (f == 1) {
        l->name = pb_str(d, &sub, name_chk, &lens[0]);
      } else {
        l->value = pb_str(d, &sub, value_chk, &lens[1]);
      }
    } else if (!pb_skip(r, wt)) {
      return pb_truncated(d, r, at, "Label", f, wt);
    }
    at = r->p;
  }
  return t < 0 ? pb_bad_tag(d, r, at, "Label", t) : RT_OK;
}

static rt_err dec_sample(pb_dec *d, pb_rd *r, Prometheus__Sample *s) {
  static const Prometheus__Sample init = PROMETHEUS__SAMPLE__INIT;
  *s = init;
  /* the usual encoding, 09 <8 bytes> 10 <varint>, takes this path */
  const uint8_t *at = r->p;
  uint32_t f;
  unsigned wt;
  int t;
  while ((t = pb_tag(r, &f, &wt)) > 0) {
    if (f == 1) {
      if (wt != WT_I64) {
        return pb_wrong_wt(d, r, at, "Sample.value", wt, WT_I64);
      }
      if (r->end - r->p < 8) {
        return pb_truncated(d, r, at, "Sample", f, wt);
      }
      uint64_t bits;
      memcpy(&bits, r->p, 8); /* little-endian hosts only (x86-64, arm64) */
      memcpy(&s->value, &bits, 8);
      r->p += 8;
    } else if (f == 2) {
      if (wt != WT_VARINT) {
        return pb_wrong_wt(d, r, at, "Sample.timestamp", wt, WT_VARINT);
      }
      uint64_t v;
      if (!pb_varint(r, &v)) {
        return pb_truncated(d, r, at, "Sample", f, wt);
      }
      s->timestamp = (int64_t)v;
    } else if (!pb_skip(r, wt)) {
      return pb_truncated(d, r, at, "Sample", f, wt);
    }
    at = r->p;
  }
  return t < 0 ? pb_bad_tag(d, r, at, "Sample", t) : RT_OK;
}

static rt_err dec_series(pb_dec *d, pb_rd *r, Prometheus__TimeSeries *ts, dist_series_info *info) {
  static const Prometheus__TimeSeries init = PROMETHEUS__TIME_SERIES__INIT;
  *ts = init;
  memset(info, 0, sizeof *info);
  info->raw = r->p;
  info->raw_len = (size_t)(r->end - r->p);
  info->raw_ok = true;
  /* pass 1: count, check framing and wire types */
  size_t nl = 0, ns = 0;
  pb_rd scan = *r;
  uint32_t f;
  unsigned wt;
  int t;
  const uint8_t *at = scan.p;
  while ((t = pb_tag(&scan, &f, &wt)) > 0) {
    pb_rd sub = {0};
    if (f >= 1 && f <= 4) {
      if (wt != WT_LEN) {
        static const char *const what[] = {"", "TimeSeries.labels", "TimeSeries.samples",
                                           "TimeSeries.exemplars", "TimeSeries.histograms"};
        return pb_wrong_wt(d, &scan, at, what[f], wt, WT_LEN);
      }
      if (!pb_len(&scan, &sub)) {
        return pb_truncated(d, &scan, at, "TimeSeries", f, wt);
      }
      switch (f) {
      case 1:
        nl++;
        break;
      case 2:
        ns++;
        break;
      case 3:
        info->n_exemplars++;
        info->raw_ok = false;
        break;
      default:
        info->n_histograms++;
        info->raw_ok = false;
        break;
      }
    } else {
      info->raw_ok = false; /* an unknown field is not passed on */
      if (!pb_skip(&scan, wt)) {
        return pb_truncated(d, &scan, at, "TimeSeries", f, wt);
      }
    }
    at = scan.p;
  }
  if (t < 0) {
    return pb_bad_tag(d, &scan, at, "TimeSeries", t);
  }
  if (nl) {
    Prometheus__Label *ls = rt_arena_alloc(d->arena, nl * sizeof *ls);
    ts->labels = rt_arena_alloc(d->arena, nl * sizeof *ts->labels);
    info->lens = rt_arena_alloc(d->arena, 2 * nl * sizeof *info->lens);
    if (!ls || !ts->labels || !info->lens) {
      return RT_ENOMEM;
    }
    for (size_t i = 0; i < nl; i++) {
      ts->labels[i] = &ls[i];
    }
  }
  if (ns) {
    Prometheus__Sample *ss = rt_arena_alloc(d->arena, ns * sizeof *ss);
    ts->samples = rt_arena_alloc(d->arena, ns * sizeof *ts->samples);
    if (!ss || !ts->samples) {
      return RT_ENOMEM;
    }
    for (size_t i = 0; i < ns; i++) {
      ts->samples[i] = &ss[i];
    }
  }
  /* pass 2: decode labels and samples; framing is known to be sound */
  while ((t = pb_tag(r, &f, &wt)) > 0) {
    pb_rd sub = {0};
    if (f == 1 || f == 2) {
      if (RT_NEVER(!pb_len(r, &sub))) {
        return RT_EINTERNAL; /* framing was checked in pass 1 */
      }
      rt_err e;
      if (f == 1) {
        int nc, vc;
        e = dec_label(d, &sub, ts->labels[ts->n_labels], &info->lens[2 * ts->n_labels], &nc, &vc);
        ts->n_labels++;
        if (e == RT_OK && (nc || vc) && !info->bad_label) {
          info->bad_label = (uint32_t)ts->n_labels;
          info->bad_what = nc == 1   ? DIST_BAD_NAME_NUL
                           : nc == 2 ? DIST_BAD_NAME_UTF8
                           : vc == 1 ? DIST_BAD_VALUE_NUL
                                     : DIST_BAD_VALUE_UTF8;
        }
      } else {
        e = dec_sample(d, &sub, ts->samples[ts->n_samples++]);
      }
      if (e != RT_OK) {
        return e;
      }
    } else {
      pb_skip(r, wt);
    }
  }
  return RT_OK;
}

static rt_err dec_metadata(pb_dec *d, pb_rd *r, Prometheus__MetricMetadata *m, uint8_t *bad) {
  prometheus__metric_metadata__init(m);
  m->metric_family_name = (char *)"";
  m->help = (char *)"";
  m->unit = (char *)"";
  *bad = 0;
  const uint8_t *at = r->p;
  uint32_t f;
  unsigned wt;
  int t;
  while ((t = pb_tag(r, &f, &wt)) > 0) {
    pb_rd sub = {0};
    if (f == 1) {
      uint64_t v;
      if (wt != WT_VARINT) {
        return pb_wrong_wt(d, r, at, "MetricMetadata.type", wt, WT_VARINT);
      }
      if (!pb_varint(r, &v)) {
        return pb_truncated(d, r, at, "MetricMetadata", f, wt);
      }
      m->type = (Prometheus__MetricMetadata__MetricType)(int32_t)v;
    } else if (f == 2 || f == 4 || f == 5) {
      if (wt != WT_LEN) {
        return pb_wrong_wt(d, r, at,
                           f == 2   ? "MetricMetadata.metric_family_name"
                           : f == 4 ? "MetricMetadata.help"
                                    : "MetricMetadata.unit",
                           wt, WT_LEN);
      }
      if (!pb_len(r, &sub)) {
        return pb_truncated(d, r, at, "MetricMetadata", f, wt);
      }
      int chk;
      uint32_t slen;
      char *s = pb_str(d, &sub, &chk, &slen);
      if (chk) {
        *bad = 1;
      }
      if (f == 2) {
        m->metric_family_name = s;
      } else if (f == 4) {
        m->help = s;
      } else {
        m->unit = s;
      }
    } else if (!pb_skip(r, wt)) {
      return pb_truncated(d, r, at, "MetricMetadata", f, wt);
    }
    at = r->p;
  }
  return t < 0 ? pb_bad_tag(d, r, at, "MetricMetadata", t) : RT_OK;
}

rt_err dist_decode_proto(const uint8_t *buf, size_t len, rt_arena *arena, dist_request *out,
                         char *errbuf, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (errbuf && errlen) {
    errbuf[0] = 0;
  }
  pb_dec d = {.arena = arena, .errbuf = errbuf, .errlen = errlen};
  pb_rd r = {.p = buf, .end = buf + len, .base = buf};
  Prometheus__WriteRequest *wr = rt_arena_alloc(arena, sizeof *wr);
  if (!wr) {
    return RT_ENOMEM;
  }
  prometheus__write_request__init(wr);
  out->wr = wr;
  out->decompressed_len = len;

  /* pass 1: count series and metadata, check the top-level framing */
  size_t nts = 0, nmd = 0;
  pb_rd scan = r;
  uint32_t f;
  unsigned wt;
  int t;
  const uint8_t *at = scan.p;
  while ((t = pb_tag(&scan, &f, &wt)) > 0) {
    pb_rd sub = {0};
    if (f == 1 || f == 3) {
      if (wt != WT_LEN) {
        return pb_wrong_wt(&d, &scan, at, f == 1 ? "WriteRequest.timeseries" : "WriteRequest.metadata",
                           wt, WT_LEN);
      }
      if (!pb_len(&scan, &sub)) {
        return pb_truncated(&d, &scan, at, "WriteRequest", f, wt);
      }
      if (f == 1) {
        nts++;
      } else {
        nmd++;
      }
    } else if (!pb_skip(&scan, wt)) {
      return pb_truncated(&d, &scan, at, "WriteRequest", f, wt);
    }
    at = scan.p;
  }
  if (t < 0) {
    return pb_bad_tag(&d, &scan, at, "WriteRequest", t);
  }
  if (len) {
    d.pool = rt_arena_alloc(arena, len);
    if (!d.pool) {
      return RT_ENOMEM;
    }
    d.pool_cap = len;
  }
  if (nts) {
    Prometheus__TimeSeries *tss = rt_arena_alloc(arena, nts * sizeof *tss);
    wr->timeseries = rt_arena_alloc(arena, nts * sizeof *wr->timeseries);
    out->info = rt_arena_alloc(arena, nts * sizeof *out->info);
    if (!tss || !wr->timeseries || !out->info) {
      return RT_ENOMEM;
    }
    for (size_t i = 0; i < nts; i++) {
      wr->timeseries[i] = &tss[i];
    }
  }
  if (nmd) {
    Prometheus__MetricMetadata *mds = rt_arena_alloc(arena, nmd * sizeof *mds);
    wr->metadata = rt_arena_alloc(arena, nmd * sizeof *wr->metadata);
    out->metadata_bad = rt_arena_alloc(arena, nmd);
    if (!mds || !wr->metadata || !out->metadata_bad) {
      return RT_ENOMEM;
    }
    for (size_t i = 0; i < nmd; i++) {
      wr->metadata[i] = &mds[i];
    }
  }
  /* pass 2 */
  while ((t = pb_tag(&r, &f, &wt)) > 0) {
    pb_rd sub = {0};
    rt_err e = RT_OK;
    if ((f == 1 || f == 3) && RT_NEVER(!pb_len(&r, &sub))) {
      return RT_EINTERNAL; /* framing was checked in pass 1 */
    }
    if (f == 1) {
      size_t i = wr->n_timeseries++;
      e = dec_series(&d, &sub, wr->timeseries[i], &out->info[i]);
    } else if (f == 3) {
      size_t i = wr->n_metadata++;
      e = dec_metadata(&d, &sub, wr->metadata[i], &out->metadata_bad[i]);
    } else {
      pb_skip(&r, wt);
    }
    if (e != RT_OK) {
      return e;
    }
  }
  return RT_OK;
}

rt_err dist_decode(const void *body, size_t len, const dist_limits *lim, rt_arena *arena,
                   dist_request *out, char *errbuf, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (errbuf && errlen) {
    errbuf[0] = 0;
  }
  size_t ulen = 0;
  if (len == 0 || snappy_uncompressed_length(body, len, &ulen) != SNAPPY_OK) {
    snprintf(errbuf, errlen, "snappy: corrupt input (the body must be the snappy block format)");
    return RT_EPROTO;
  }
  if (lim->max_decompressed_size && ulen > lim->max_decompressed_size) {
    snprintf(errbuf, errlen,
             "decompressed message too large: the snappy header declares %zu bytes, the limit is %zu",
             ulen, lim->max_decompressed_size);
    return RT_ELIMIT;
  }
  if (ulen > DIST_VALIDATE_ABOVE && snappy_validate_compressed_buffer(body, len) != SNAPPY_OK) {
    snprintf(errbuf, errlen, "snappy: corrupt input");
    return RT_EPROTO;
  }
  char *buf = rt_arena_alloc(arena, ulen ? ulen : 1);
  if (!buf) {
    snprintf(errbuf, errlen, "out of memory decompressing %zu bytes", ulen);
    return RT_ENOMEM;
  }
  size_t got = ulen;
  if (snappy_uncompress(body, len, buf, &got) != SNAPPY_OK || got != ulen) {
    snprintf(errbuf, errlen, "snappy: corrupt input");
    return RT_EPROTO;
  }
  return dist_decode_proto((const uint8_t *)buf, ulen, arena, out, errbuf, errlen);
}
