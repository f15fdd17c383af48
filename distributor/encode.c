/* encode.c - the validated request -> ringtail.PushRequest bytes.
 *
 * Written by hand instead of protobuf_c_message_pack for two reasons: protobuf-c leaves out a
 * proto3 double that compares equal to 0, so -0.0 would reach the ingester as +0.0 (we compare
 * bits instead); and the generic packer walks field descriptors and computes sizes twice. Here
 * one pass computes each series' size (kept in the arena) and a second pass writes. A series that
 * arrived holding only labels and samples and that validation left alone is copied as received
 * (the decoder and protobuf-c agree on what such bytes mean: fuzz_decode checks it). */
#include <string.h>

#include "distributor/dist_int.h"

static inline size_t vsize(uint64_t v) { return 1 + (size_t)(63 - __builtin_clzll(v | 1)) / 7; }

static inline uint8_t *vput(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

/* Size of a length-delimited field with a one-byte tag holding n bytes. */
static inline size_t ldsize(size_t n) { return 1 + vsize(n) + n; }

static inline size_t lenfield(size_t n) { return n ? ldsize(n) : 0; }
static inline size_t strfield(const char *s) { return lenfield(strlen(s)); }

static inline uint8_t *put_strn(uint8_t *p, uint8_t tag, const char *s, size_t n) {
  if (n) {
    *p++ = tag;
    p = vput(p, n);
    memcpy(p, s, n);
    p += n;
  }
  return p;
}

static inline uint8_t *put_str(uint8_t *p, uint8_t tag, const char *s) { return put_strn(p, tag, s, strlen(s)); }

/* Name and value lengths of label k: from the decoder's table when there is one. */
static inline void label_lens(const Prometheus__TimeSeries *ts, const uint32_t *lens, size_t k, size_t *nl,
                              size_t *vl) {
  if (lens) {
    *nl = lens[2 * k];
    *vl = lens[2 * k + 1];
  } else {
    *nl = strlen(ts->labels[k]->name);
    *vl = strlen(ts->labels[k]->value);
  }
}

static inline size_t sample_size(const Prometheus__Sample *s) {
  uint64_t bits;
  memcpy(&bits, &s->value, 8);
  return (bits ? 9 : 0) + (s->timestamp ? 1 + vsize((uint64_t)s->timestamp) : 0);
}

static size_t series_size(const Prometheus__TimeSeries *ts, const uint32_t *lens) {
  size_t n = 0;
  for (size_t i = 0; i < ts->n_labels; i++) {
    size_t nl, vl;
    label_lens(ts, lens, i, &nl, &vl);
    n += ldsize(lenfield(nl) + lenfield(vl));
  }
  for (size_t i = 0; i < ts->n_samples; i++) {
    n += ldsize(sample_size(ts->samples[i]));
  }
  return n;
}

static size_t metadata_size(const Prometheus__MetricMetadata *m) {
  size_t n = m->type ? 1 + vsize((uint64_t)(int64_t)m->type) : 0;
  return n + strfield(m->metric_family_name) + strfield(m->help) + strfield(m->unit);
}

rt_err dist_encode_push(const char *tenant, const dist_request *req, rt_arena *arena, uint8_t **out, size_t *len) {
  const Prometheus__WriteRequest *wr = req->wr;
  *out = NULL;
  *len = 0;
  size_t *sizes = NULL;
  if (wr->n_timeseries) {
    sizes = rt_arena_alloc(arena, wr->n_timeseries * sizeof *sizes);
    if (!sizes) {
      return RT_ENOMEM;
    }
  }
  size_t total = strfield(tenant);
  for (size_t i = 0; i < wr->n_timeseries; i++) {
    const dist_series_info *info = req->info ? &req->info[i] : NULL;
    sizes[i] = info && info->raw_ok ? info->raw_len : series_size(wr->timeseries[i], info ? info->lens : NULL);
    total += ldsize(sizes[i]);
  }
  for (size_t i = 0; i < wr->n_metadata; i++) {
    total += ldsize(metadata_size(wr->metadata[i]));
  }
  uint8_t *buf = rt_arena_alloc(arena, total ? total : 1);
  if (!buf) {
    return RT_ENOMEM;
  }
  uint8_t *p = put_str(buf, 0x0a, tenant);
  for (size_t i = 0; i < wr->n_timeseries; i++) {
    const Prometheus__TimeSeries *ts = wr->timeseries[i];
    const uint32_t *lens = req->info ? req->info[i].lens : NULL;
    *p++ = 0x12;
    p = vput(p, sizes[i]);
    if (req->info && req->info[i].raw_ok) {
      /* unchanged since it was received: the received bytes are the message */
      memcpy(p, req->info[i].raw, sizes[i]);
      p += sizes[i];
      continue;
    }
    for (size_t k = 0; k < ts->n_labels; k++) {
      const Prometheus__Label *l = ts->labels[k];
      size_t nl, vl;
      label_lens(ts, lens, k, &nl, &vl);
      *p++ = 0x0a;
      p = vput(p, lenfield(nl) + lenfield(vl));
      p = put_strn(p, 0x0a, l->name, nl);
      p = put_strn(p, 0x12, l->value, vl);
    }
    for (size_t k = 0; k < ts->n_samples; k++) {
      const Prometheus__Sample *s = ts->samples[k];
      *p++ = 0x12;
      p = vput(p, sample_size(s));
      uint64_t bits;
      memcpy(&bits, &s->value, 8);
      if (bits) {
        *p++ = 0x09;
        memcpy(p, &bits, 8); /* little-endian hosts */
        p += 8;
      }
      if (s->timestamp) {
        *p++ = 0x10;
        p = vput(p, (uint64_t)s->timestamp);
      }
    }
  }
  for (size_t i = 0; i < wr->n_metadata; i++) {
    const Prometheus__MetricMetadata *m = wr->metadata[i];
    *p++ = 0x1a;
    p = vput(p, metadata_size(m));
    if (m->type) {
      *p++ = 0x08;
      p = vput(p, (uint64_t)(int64_t)m->type);
    }
    p = put_str(p, 0x12, m->metric_family_name);
    p = put_str(p, 0x22, m->help);
    p = put_str(p, 0x2a, m->unit);
  }
  RT_ASSERT((size_t)(p - buf) == total);
  *out = buf;
  *len = total;
  return RT_OK;
}
