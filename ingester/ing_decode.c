/* ing_decode.c - a direct decoder for ringtail.PushRequest (proto/rpc.proto), the hottest RPC.
 *
 * protobuf-c's generic unpack walks field descriptors and makes one allocation per message;
 * this decoder counts the repeated fields first, then fills arrays of structs in the arena in
 * one pass. The result is the same Ringtail__PushRequest tree that
 * ringtail__push_request__unpack() builds (strings NUL-terminated copies in the arena; exemplars
 * and histograms are skipped, as the ingester stores float samples only). */
#include <string.h>

#include "ingester/ing_int.h"

typedef struct ing_pb {
  const uint8_t *p, *end;
} ing_pb;

static bool pb_varint(ing_pb *r, uint64_t *out) {
  uint64_t x = 0;
  for (unsigned s = 0; s < 64; s += 7) {
    if (r->p >= r->end) {
      return false;
    }
    uint8_t c = *r->p++;
    x |= (uint64_t)(c & 0x7f) << s;
    if (c < 0x80) {
      *out = x;
      return true;
    }
  }
  return false;
}

/* Reads a tag; false at the end (*eof) or on a malformed tag. */
static bool pb_tag(ing_pb *r, uint32_t *field, uint32_t *wt, bool *eof) {
  *eof = r->p >= r->end;
  if (*eof) {
    return false;
  }
  uint64_t t;
  if (!pb_varint(r, &t) || (t >> 3) == 0 || (t >> 3) > UINT32_MAX) {
    return false;
  }
  *field = (uint32_t)(t >> 3);
  *wt = (uint32_t)(t & 7);
  return true;
}

static bool pb_len(ing_pb *r, ing_pb *sub) {
  uint64_t n;
  if (!pb_varint(r, &n) || n > (uint64_t)(r->end - r->p)) {
    return false;
  }
  sub->p = r->p;
  sub->end = r->p + n;
  r->p += n;
  return true;
}

static bool pb_skip(ing_pb *r, uint32_t wt) {
  uint64_t v;
  ing_pb sub;
  switch (wt) {
  case 0: return pb_varint(r, &v);
  case 1:
    if (r->end - r->p < 8) {
      return false;
    }
    r->p += 8;
    return true;
  case 2: return pb_len(r, &sub);
  case 5:
    if (r->end - r->p < 4) {
      return false;
    }
    r->p += 4;
    return true;
  default: return false; /* groups (3, 4) and invalid wire types */
  }
}

/* Allocation failures are remembered so that the caller can say RT_ENOMEM, not RT_EPROTO. */
typedef struct ing_pba {
  rt_arena *arena;
  bool oom;
} ing_pba;

static void *pb_alloc(ing_pba *a, size_t n) {
  void *p = n ? rt_arena_alloc(a->arena, n) : NULL;
  if (n && !p) {
    a->oom = true;
  }
  return p;
}

static char *pb_str(ing_pba *a, const ing_pb *s) {
  char *p = rt_arena_strndup(a->arena, (const char *)s->p, (size_t)(s->end - s->p));
  if (!p) {
    a->oom = true;
  }
  return p;
}

/* Counts occurrences of LEN fields f1 and f2 in a message. */
static bool pb_count(ing_pb r, uint32_t f1, uint32_t f2, size_t *n1, size_t *n2) {
  *n1 = *n2 = 0;
  uint32_t f, wt;
  bool eof;
  while (pb_tag(&r, &f, &wt, &eof)) {
    if (wt == 2 && f == f1) {
      (*n1)++;
    } else if (wt == 2 && f == f2) {
      (*n2)++;
    }
    if (!pb_skip(&r, wt)) {
      return false;
    }
  }
  return eof;
}

static bool pb_label(ing_pba *a, ing_pb r, Prometheus__Label *l) {
  prometheus__label__init(l);
  l->name = l->value = (char *)"";
  uint32_t f, wt;
  bool eof;
  while (pb_tag(&r, &f, &wt, &eof)) {
    if (f == 1 || f == 2) {
      ing_pb s;
      if (wt != 2 || !pb_len(&r, &s)) {
        return false;
      }
      char *str = pb_str(a, &s);
      if (!str) {
        return false;
      }
      if (f == 1) {
        l->name = str;
      } else {
        l->value = str;
      }
    } else if (!pb_skip(&r, wt)) {
      return false;
    }
  }
  return eof;
}

static bool pb_sample(ing_pb r, Prometheus__Sample *s) {
  prometheus__sample__init(s);
  uint32_t f, wt;
  bool eof;
  while (pb_tag(&r, &f, &wt, &eof)) {
    if (f == 1) {
      if (wt != 1 || r.end - r.p < 8) {
        return false;
      }
      uint64_t b = 0;
      for (int i = 7; i >= 0; i--) {
        b = (b << 8) | r.p[i];
      }
      r.p += 8;
      memcpy(&s->value, &b, 8);
    } else if (f == 2) {
      uint64_t v;
      if (wt != 0 || !pb_varint(&r, &v)) {
        return false;
      }
      s->timestamp = (int64_t)v;
    } else if (!pb_skip(&r, wt)) {
      return false;
    }
  }
  return eof;
}

static bool pb_series(ing_pba *a, ing_pb r, Prometheus__TimeSeries *ts) {
  prometheus__time_series__init(ts);
  size_t nl, ns;
  if (!pb_count(r, 1, 2, &nl, &ns)) {
    return false;
  }
  Prometheus__Label *ls = pb_alloc(a, nl * sizeof *ls);
  Prometheus__Label **lp = pb_alloc(a, nl * sizeof *lp);
  Prometheus__Sample *ss = pb_alloc(a, ns * sizeof *ss);
  Prometheus__Sample **sp = pb_alloc(a, ns * sizeof *sp);
  if ((nl && (!ls || !lp)) || (ns && (!ss || !sp))) {
    return false;
  }
  ts->labels = lp;
  ts->samples = sp;
  uint32_t f, wt;
  bool eof;
  while (pb_tag(&r, &f, &wt, &eof)) {
    ing_pb sub;
    if (f == 1 || f == 2) {
      if (wt != 2 || !pb_len(&r, &sub)) {
        return false;
      }
      if (f == 1) {
        if (!pb_label(a, sub, &ls[ts->n_labels])) {
          return false;
        }
        lp[ts->n_labels] = &ls[ts->n_labels];
        ts->n_labels++;
      } else {
        if (!pb_sample(sub, &ss[ts->n_samples])) {
          return false;
        }
        sp[ts->n_samples] = &ss[ts->n_samples];
        ts->n_samples++;
      }
    } else if (f == 3 || f == 4) {
      if (wt != 2 || !pb_len(&r, &sub)) {
        return false; /* exemplars and histograms: checked for framing, not stored */
      }
    } else if (!pb_skip(&r, wt)) {
      return false;
    }
  }
  return eof;
}

static bool pb_metadata(ing_pba *a, ing_pb r, Prometheus__MetricMetadata *m) {
  prometheus__metric_metadata__init(m);
  m->metric_family_name = m->help = m->unit = (char *)"";
  uint32_t f, wt;
  bool eof;
  while (pb_tag(&r, &f, &wt, &eof)) {
    if (f == 1) {
      uint64_t v;
      if (wt != 0 || !pb_varint(&r, &v)) {
        return false;
      }
      m->type = (Prometheus__MetricMetadata__MetricType)(int32_t)v;
    } else if (f == 2 || f == 4 || f == 5) {
      ing_pb s;
      if (wt != 2 || !pb_len(&r, &s)) {
        return false;
      }
      char *str = pb_str(a, &s);
      if (!str) {
        return false;
      }
      if (f == 2) {
        m->metric_family_name = str;
      } else if (f == 4) {
        m->help = str;
      } else {
        m->unit = str;
      }
    } else if (!pb_skip(&r, wt)) {
      return false;
    }
  }
  return eof;
}

static rt_err ing_decode_push_inner(const uint8_t *data, size_t len, ing_pba *a,
                                    Ringtail__PushRequest **out) {
  ing_pb r = {data, data + len};
  size_t nts, nmd;
  if (!pb_count(r, 2, 3, &nts, &nmd)) {
    return RT_EPROTO;
  }
  Ringtail__PushRequest *req = pb_alloc(a, sizeof *req);
  Prometheus__TimeSeries *ts = pb_alloc(a, nts * sizeof *ts);
  Prometheus__TimeSeries **tsp = pb_alloc(a, nts * sizeof *tsp);
  Prometheus__MetricMetadata *md = pb_alloc(a, nmd * sizeof *md);
  Prometheus__MetricMetadata **mdp = pb_alloc(a, nmd * sizeof *mdp);
  if (!req || (nts && (!ts || !tsp)) || (nmd && (!md || !mdp))) {
    return RT_ENOMEM;
  }
  ringtail__push_request__init(req);
  req->tenant = (char *)"";
  req->timeseries = tsp;
  req->metadata = mdp;
  uint32_t f, wt;
  bool eof;
  while (pb_tag(&r, &f, &wt, &eof)) {
    ing_pb sub;
    if (f == 1 || f == 2 || f == 3) {
      if (wt != 2 || !pb_len(&r, &sub)) {
        return RT_EPROTO;
      }
      if (f == 1) {
        req->tenant = pb_str(a, &sub);
        if (!req->tenant) {
          return RT_ENOMEM;
        }
      } else if (f == 2) {
        if (!pb_series(a, sub, &ts[req->n_timeseries])) {
          return RT_EPROTO;
        }
        tsp[req->n_timeseries] = &ts[req->n_timeseries];
        req->n_timeseries++;
      } else {
        if (!pb_metadata(a, sub, &md[req->n_metadata])) {
          return RT_EPROTO;
        }
        mdp[req->n_metadata] = &md[req->n_metadata];
        req->n_metadata++;
      }
    } else if (!pb_skip(&r, wt)) {
      return RT_EPROTO;
    }
  }
  if (!eof) {
    return RT_EPROTO;
  }
  *out = req;
  return RT_OK;
}

rt_err ing_decode_push(const uint8_t *data, size_t len, rt_arena *arena, Ringtail__PushRequest **out) {
  *out = NULL;
  ing_pba a = {arena, false};
  rt_err err = ing_decode_push_inner(data, len, &a, out);
  if (err) {
    *out = NULL;
    return a.oom ? RT_ENOMEM : err;
  }
  return RT_OK;
}
