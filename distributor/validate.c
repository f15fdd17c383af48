/* validate.c - the rules a remote-write series must follow, checked in one pass, in place.
 *
 * Messages follow Mimir's wording ("received a series with duplicate label name, label: ...
 * series: ..."), with Go-style quoting of the label and of the series so that a sender's log
 * line shows exactly what was received. Only the first problem is formatted; later ones are
 * counted. */
#include <stdio.h>
#include <string.h>

#include "common/auth.h"
#include "common/labels.h"
#include "common/limits.h"
#include "distributor/distributor.h"

const char *const dist_reason_names[DIST_R_COUNT] = {
    [DIST_R_OK] = "ok",
    [DIST_R_MISSING_METRIC_NAME] = "missing_metric_name",
    [DIST_R_INVALID_METRIC_NAME] = "metric_name_invalid",
    [DIST_R_INVALID_LABEL] = "label_invalid",
    [DIST_R_LABEL_NAME_TOO_LONG] = "label_name_too_long",
    [DIST_R_LABEL_VALUE_TOO_LONG] = "label_value_too_long",
    [DIST_R_INVALID_LABEL_VALUE] = "label_value_invalid",
    [DIST_R_DUPLICATE_LABEL_NAMES] = "duplicate_label_names",
    [DIST_R_LABELS_NOT_SORTED] = "labels_not_sorted",
    [DIST_R_MAX_LABEL_NAMES] = "max_label_names_per_series",
    [DIST_R_TOO_OLD] = "sample_too_old",
    [DIST_R_TOO_FAR_IN_FUTURE] = "sample_too_far_in_future",
    [DIST_R_OUT_OF_ORDER] = "sample_out_of_order",
    [DIST_R_DUPLICATE_TIMESTAMP] = "sample_duplicate_timestamp",
    [DIST_R_INGESTER_TOO_OLD] = "sample_out_of_bounds",
    [DIST_R_PER_TENANT_LIMIT] = "per_tenant_limit",
    [DIST_R_NATIVE_HISTOGRAM] = "native_histogram_unsupported",
    [DIST_R_METADATA_INVALID] = "metadata_invalid",
    [DIST_R_METADATA_TOO_LONG] = "metadata_too_long",
    [DIST_R_METADATA_PER_METRIC] = "max_metadata_per_metric",
    [DIST_R_RATE_LIMITED] = "rate_limited",
    [DIST_R_HA_DUPLICATE] = "ha_duplicate",
};

static const char *const reason_ids[DIST_R_COUNT] = {
    [DIST_R_LABEL_NAME_TOO_LONG] = "err-ringtail-label-name-too-long",
    [DIST_R_LABEL_VALUE_TOO_LONG] = "err-ringtail-label-value-too-long",
    [DIST_R_MAX_LABEL_NAMES] = "err-ringtail-max-label-names-per-series",
    [DIST_R_TOO_OLD] = "err-ringtail-sample-too-old",
    [DIST_R_TOO_FAR_IN_FUTURE] = "err-ringtail-sample-too-far-in-future",
    [DIST_R_METADATA_TOO_LONG] = "err-ringtail-metadata-too-long",
    [DIST_R_METADATA_PER_METRIC] = "err-ringtail-max-metadata-per-metric",
    [DIST_R_RATE_LIMITED] = "err-ringtail-ingestion-rate-limited",
};

const char *dist_reason_error_id(dist_reason why) {
  return why > DIST_R_OK && why < DIST_R_COUNT ? reason_ids[why] : NULL;
}

void dist_limits_apply(dist_limits *l, const rt_limits *t, const char *tenant) {
  l->reject_old_samples = t->reject_old_samples;
  l->reject_old_samples_max_age_ms = t->reject_old_samples_max_age_ms;
  l->creation_grace_period_ms = t->creation_grace_period_ms;
  l->ooo_window_ms = t->out_of_order_time_window_ms;
  l->max_label_names_per_series = t->max_label_names_per_series;
  l->max_label_name_length = t->max_label_name_length;
  l->max_label_value_length = t->max_label_value_length;
  l->max_metadata_length = t->max_metadata_length;
  l->max_metadata_per_metric = t->max_metadata_per_metric;
  l->tenant = tenant;
}

/* The part of a message that names a label or series is cut at this many bytes. */
#define DIST_QUOTE_MAX 200

void dist_limits_default(dist_limits *out) {
  memset(out, 0, sizeof *out);
  out->max_decompressed_size = 64u << 20;
  out->reject_old_samples = true;
  out->reject_old_samples_max_age_ms = 7LL * 24 * 3600 * 1000;
  out->creation_grace_period_ms = 10LL * 60 * 1000;
  out->ooo_window_ms = 0;
  out->max_label_names_per_series = 30;
  out->max_label_name_length = 1024;
  out->max_label_value_length = 2048;
  out->max_metadata_length = 1024;
  out->utf8_names = false;
}

void dist_limits_from_config(const rt_config *cfg, dist_limits *out) {
  dist_limits_default(out);
  out->max_decompressed_size = cfg->max_decompressed_size > 0 ? (size_t)cfg->max_decompressed_size : 0;
  out->reject_old_samples = cfg->reject_old_samples;
  out->reject_old_samples_max_age_ms = cfg->reject_old_samples_max_age_ms;
  out->creation_grace_period_ms = cfg->creation_grace_period_ms;
  out->ooo_window_ms = cfg->ooo_window_ms;
  out->max_label_names_per_series = cfg->max_label_names_per_series;
  out->max_label_name_length = cfg->max_label_name_length;
  out->max_label_value_length = cfg->max_label_value_length;
  out->max_metadata_length = cfg->max_metadata_length;
  out->max_metadata_per_metric = cfg->max_metadata_per_metric;
}

/* ------------------------------------------------------------- formatting */

/* Appends s (n bytes) as Go's %q would, cutting the input at `max` bytes (then "..." inside
 * the quotes). Bytes of invalid UTF-8 are written as \xNN. */
static void quote(rt_buf *b, const char *s, size_t n, size_t max) {
  bool cut = n > max;
  if (cut) {
    n = max;
    /* do not cut a UTF-8 sequence in half */
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80) {
      n--;
    }
  }
  bool utf8 = rt_utf8_valid(s, n);
  rt_buf_putc(b, '"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    switch (c) {
    case '"':
      rt_buf_puts(b, "\\\"");
      break;
    case '\\':
      rt_buf_puts(b, "\\\\");
      break;
    case '\n':
      rt_buf_puts(b, "\\n");
      break;
    case '\t':
      rt_buf_puts(b, "\\t");
      break;
    case '\r':
      rt_buf_puts(b, "\\r");
      break;
    default:
      if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) {
        rt_buf_printf(b, "\\x%02x", c);
      } else {
        rt_buf_putc(b, (char)c);
      }
    }
  }
  if (cut) {
    rt_buf_puts(b, "...");
  }
  rt_buf_putc(b, '"');
}

void dist_format_series(rt_buf *out, Prometheus__Label *const *labels, size_t n, size_t max) {
  size_t start = out->len;
  const char *name = NULL;
  size_t name_idx = SIZE_MAX;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(labels[i]->name, "__name__") == 0) {
      name = labels[i]->value;
      name_idx = i;
      break;
    }
  }
  if (name) {
    rt_buf_puts(out, name);
  }
  rt_buf_putc(out, '{');
  bool first = true;
  for (size_t i = 0; i < n; i++) {
    if (i == name_idx) {
      continue;
    }
    if (out->len - start > max) {
      rt_buf_puts(out, ",...");
      break;
    }
    if (!first) {
      rt_buf_putc(out, ',');
    }
    first = false;
    const char *ln = labels[i]->name;
    size_t lnl = strlen(ln);
    if (rt_label_name_is_legacy(ln, lnl)) {
      rt_buf_append(out, ln, lnl);
    } else {
      quote(out, ln, lnl, max);
    }
    rt_buf_putc(out, '=');
    quote(out, labels[i]->value, strlen(labels[i]->value), max);
  }
  rt_buf_putc(out, '}');
}

static void fmt_duration(char *buf, size_t len, int64_t ms) {
  int64_t s = ms / 1000;
  int64_t h = s / 3600, m = (s / 60) % 60;
  s %= 60;
  if (h) {
    snprintf(buf, len, "%lldh%lldm%llds", (long long)h, (long long)m, (long long)s);
  } else if (m) {
    snprintf(buf, len, "%lldm%llds", (long long)m, (long long)s);
  } else {
    snprintf(buf, len, "%llds", (long long)s);
  }
}

/* Sets the report's first problem: `head`, then (when label) `label: "..."`, then the
 * series. */
static void first_problem(const dist_limits *lim, dist_report *rep, dist_reason why, const char *head, const char *what,
                          const char *s, size_t slen, const Prometheus__TimeSeries *ts) {
  if (rep->first != DIST_R_OK) {
    return;
  }
  rep->first = why;
  rt_buf b = RT_BUF_INIT;
  rt_buf_puts(&b, head);
  if (what) {
    rt_buf_printf(&b, ", %s: ", what);
    quote(&b, s, slen, DIST_QUOTE_MAX);
  }
  if (ts) {
    rt_buf ser = RT_BUF_INIT;
    dist_format_series(&ser, ts->labels, ts->n_labels, DIST_QUOTE_MAX);
    rt_buf_puts(&b, what ? " series: " : ", series: ");
    quote(&b, ser.data ? ser.data : "", ser.len, DIST_QUOTE_MAX + 64);
    rt_buf_free(&ser);
  }
  const char *id = dist_reason_error_id(why);
  if (id) {
    rt_buf_puts(&b, " (tenant: ");
    quote(&b, lim->tenant ? lim->tenant : "anonymous", strlen(lim->tenant ? lim->tenant : "anonymous"), 160);
    rt_buf_printf(&b, "; see docs/errors.md#%s)", id);
  }
  snprintf(rep->msg, sizeof rep->msg, "%s", b.oom || !b.data ? head : b.data);
  rt_buf_free(&b);
}

/* ------------------------------------------------------------------ rules */

static bool metric_name_legacy(const char *s, size_t n) {
  if (n == 0) {
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) {
      return false;
    }
  }
  return true;
}

/* Checks and compacts the labels of one series. Returns DIST_R_OK or the problem, after
 * recording it as the first problem when it is. */
static dist_reason check_labels(Prometheus__TimeSeries *ts, dist_series_info *info,
                                const dist_limits *lim, dist_report *rep) {
  Prometheus__Label **ls = ts->labels;
  uint32_t *lens = info ? info->lens : NULL;
  size_t n = ts->n_labels, out = 0;
  const char *prev = NULL;
  bool has_name = false;
  char head[160];
  for (size_t i = 0; i < n; i++) {
    Prometheus__Label *l = ls[i];
    const char *name = l->name, *value = l->value;
    size_t nl = lens ? lens[2 * i] : strlen(name), vl = lens ? lens[2 * i + 1] : strlen(value);
    if (info && info->bad_label == i + 1) {
      bool in_name = info->bad_what == DIST_BAD_NAME_NUL || info->bad_what == DIST_BAD_NAME_UTF8;
      bool nul = info->bad_what == DIST_BAD_NAME_NUL || info->bad_what == DIST_BAD_VALUE_NUL;
      snprintf(head, sizeof head, "received a series with a label %s that %s", in_name ? "name" : "value",
               nul ? "holds a NUL byte" : "is not valid UTF-8");
      /* with a NUL byte the C string stops there: the message shows the part before it */
      first_problem(lim, rep, in_name ? DIST_R_INVALID_LABEL : DIST_R_INVALID_LABEL_VALUE, head,
                    "label", name, nl, ts);
      return in_name ? DIST_R_INVALID_LABEL : DIST_R_INVALID_LABEL_VALUE;
    }
    if (prev) {
      int c = strcmp(prev, name);
      if (c >= 0) {
        dist_reason why = c ? DIST_R_LABELS_NOT_SORTED : DIST_R_DUPLICATE_LABEL_NAMES;
        first_problem(lim, rep, why,
                      c ? "received a series where the label names are not sorted"
                        : "received a series with duplicate label name",
                      "label", name, nl, ts);
        return why;
      }
    }
    prev = name;
    bool is_name = nl == 8 && memcmp(name, "__name__", 8) == 0;
    if (is_name) {
      if (vl > 0) {
        has_name = true;
        if (!(lim->utf8_names ? (info || rt_utf8_valid(value, vl)) : metric_name_legacy(value, vl))) {
          first_problem(lim, rep, DIST_R_INVALID_METRIC_NAME, "received a series with invalid metric name",
                        "metric name", value, vl, ts);
          return DIST_R_INVALID_METRIC_NAME;
        }
      }
    } else if (nl == 0 || !(lim->utf8_names ? (info || rt_utf8_valid(name, nl)) : rt_label_name_is_legacy(name, nl))) {
      first_problem(lim, rep, DIST_R_INVALID_LABEL, "received a series with an invalid label", "label", name, nl, ts);
      return DIST_R_INVALID_LABEL;
    }
    if (lim->max_label_name_length > 0 && nl > (size_t)lim->max_label_name_length) {
      snprintf(head, sizeof head,
               "received a series whose label name length exceeds the limit (actual: %zu, max_label_name_length: %d)", nl,
               lim->max_label_name_length);
      first_problem(lim, rep, DIST_R_LABEL_NAME_TOO_LONG, head, "label", name, nl, ts);
      return DIST_R_LABEL_NAME_TOO_LONG;
    }
    if (lim->max_label_value_length > 0 && vl > (size_t)lim->max_label_value_length) {
      snprintf(head, sizeof head,
               "received a series whose label value length exceeds the limit (actual: %zu, max_label_value_length: %d)", vl,
               lim->max_label_value_length);
      first_problem(lim, rep, DIST_R_LABEL_VALUE_TOO_LONG, head, "label", name, nl, ts);
      return DIST_R_LABEL_VALUE_TOO_LONG;
    }
    if (!info && !rt_utf8_valid(value, vl)) {
      first_problem(lim, rep, DIST_R_INVALID_LABEL_VALUE,
                    "received a series with a label value that is not valid UTF-8", "label", name, nl, ts);
      return DIST_R_INVALID_LABEL_VALUE;
    }
    if (vl > 0) {
      out++;
    }
  }
  if (!has_name) {
    first_problem(lim, rep, DIST_R_MISSING_METRIC_NAME, "received a series without metric name", NULL, NULL, 0, ts);
    return DIST_R_MISSING_METRIC_NAME;
  }
  if (lim->max_label_names_per_series > 0 && out > (size_t)lim->max_label_names_per_series) {
    snprintf(head, sizeof head,
             "received a series whose number of labels exceeds the limit (actual: %zu, max_label_names_per_series: %d)", out,
             lim->max_label_names_per_series);
    first_problem(lim, rep, DIST_R_MAX_LABEL_NAMES, head, NULL, NULL, 0, ts);
    return DIST_R_MAX_LABEL_NAMES;
  }
  if (out != n) {
    if (info) {
      info->raw_ok = false;
    }
    /* drop empty values (an empty value means the label is absent); done only now so that a
     * message about this series shows its labels as received */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
      size_t vl = lens ? lens[2 * i + 1] : strlen(ls[i]->value);
      if (vl == 0) {
        continue;
      }
      if (lens) {
        lens[2 * k] = lens[2 * i];
        lens[2 * k + 1] = (uint32_t)vl;
      }
      ls[k++] = ls[i];
    }
  }
  ts->n_labels = out;
  return DIST_R_OK;
}

static void reject_samples(dist_report *rep, dist_reason why, size_t n) {
  rep->rejected[why] += n;
  rep->samples_rejected += n;
}

static int64_t sat_add(int64_t a, int64_t b) {
  if (b > 0 && a > INT64_MAX - b) {
    return INT64_MAX;
  }
  if (b < 0 && a < INT64_MIN - b) {
    return INT64_MIN;
  }
  return a + b;
}

static dist_reason metadata_ok(Prometheus__MetricMetadata *m, bool bad, const dist_limits *lim, dist_report *rep) {
  const char *name = m->metric_family_name;
  size_t nl = strlen(name);
  char head[200];
  if (bad) {
    first_problem(lim, rep, DIST_R_METADATA_INVALID,
                  "received a metric metadata that is not valid UTF-8 or holds a NUL byte", "metric name",
                  name, nl, NULL);
    return DIST_R_METADATA_INVALID;
  }
  if (nl == 0) {
    first_problem(lim, rep, DIST_R_METADATA_INVALID, "received a metric metadata with no metric name", NULL, NULL, 0,
                  NULL);
    return DIST_R_METADATA_INVALID;
  }
  size_t max = lim->max_metadata_length > 0 ? (size_t)lim->max_metadata_length : SIZE_MAX;
  const char *what = NULL;
  size_t len = 0;
  if (nl > max) {
    what = "metric name";
    len = nl;
  } else if ((len = strlen(m->help)) > max) {
    what = "help description";
  } else if ((len = strlen(m->unit)) > max) {
    what = "unit";
  }
  if (what) {
    snprintf(head, sizeof head,
             "received a metric metadata whose %s length exceeds the limit (actual: %zu, "
             "max_metadata_length: %zu)",
             what, len, max);
    first_problem(lim, rep, DIST_R_METADATA_TOO_LONG, head, "metric name", name, nl, NULL);
    return DIST_R_METADATA_TOO_LONG;
  }
  if (!rt_utf8_valid(name, nl) || !rt_utf8_valid(m->help, strlen(m->help)) ||
      !rt_utf8_valid(m->unit, strlen(m->unit))) {
    first_problem(lim, rep, DIST_R_METADATA_INVALID, "received a metric metadata that is not valid UTF-8",
                  "metric name", name, nl, NULL);
    return DIST_R_METADATA_INVALID;
  }
  return DIST_R_OK;
}

static bool metadata_same(const Prometheus__MetricMetadata *a, const Prometheus__MetricMetadata *b) {
  return a->type == b->type && strcmp(a->help, b->help) == 0 && strcmp(a->unit, b->unit) == 0;
}

/* max_metadata_per_metric: the distinct entries of m's metric among the kept ones
 * kept[0 .. n). Returns DIST_R_OK when m may be kept too. */
static dist_reason metadata_per_metric(Prometheus__MetricMetadata *const *kept, size_t n,
                                       const Prometheus__MetricMetadata *m, const dist_limits *lim,
                                       dist_report *rep) {
  if (lim->max_metadata_per_metric <= 0) {
    return DIST_R_OK;
  }
  int64_t distinct = 0;
  for (size_t i = 0; i < n; i++) {
    const Prometheus__MetricMetadata *k = kept[i];
    if (strcmp(k->metric_family_name, m->metric_family_name) != 0) {
      continue;
    }
    if (metadata_same(k, m)) {
      return DIST_R_OK; /* the same entry again: not a new one */
    }
    distinct++;
  }
  if (distinct < lim->max_metadata_per_metric) {
    return DIST_R_OK;
  }
  char head[200];
  snprintf(head, sizeof head,
           "received more distinct metric metadata entries for one metric than the limit allows "
           "(max_global_metadata_per_metric: %lld)",
           (long long)lim->max_metadata_per_metric);
  const char *name = m->metric_family_name;
  first_problem(lim, rep, DIST_R_METADATA_PER_METRIC, head, "metric name", name, strlen(name), NULL);
  return DIST_R_METADATA_PER_METRIC;
}

void dist_validate(dist_request *req, const dist_limits *lim, int64_t now_ms, dist_report *rep) {
  memset(rep, 0, sizeof *rep);
  Prometheus__WriteRequest *wr = req->wr;
  if (!wr) {
    return;
  }
  const int64_t min_ts = lim->reject_old_samples ? sat_add(now_ms, -lim->reject_old_samples_max_age_ms) : INT64_MIN;
  const int64_t max_ts = sat_add(now_ms, lim->creation_grace_period_ms);
  const bool check_order = lim->ooo_window_ms <= 0;
  size_t kept = 0;
  rep->series_total = wr->n_timeseries;
  for (size_t i = 0; i < wr->n_timeseries; i++) {
    Prometheus__TimeSeries *ts = wr->timeseries[i];
    dist_series_info *info = req->info ? &req->info[i] : NULL;
    size_t nh = info ? info->n_histograms : ts->n_histograms;
    size_t ns = ts->n_samples;
    rep->samples_total += ns;
    rep->histograms_total += nh;
    rep->exemplars_ignored += info ? info->n_exemplars : ts->n_exemplars;
    dist_reason why = check_labels(ts, info, lim, rep);
    if (why != DIST_R_OK) {
      reject_samples(rep, why, ns);
      rep->rejected[why] += nh;
      if (ns + nh > 0) {
        rep->series_rejected++;
      }
      continue;
    }
    if (nh) {
      rep->rejected[DIST_R_NATIVE_HISTOGRAM] += nh;
      first_problem(lim, rep, DIST_R_NATIVE_HISTOGRAM,
                    "received a native histogram sample, native histograms are not supported yet", NULL, NULL,
                    0, ts);
    }
    /* samples: keep those in [min_ts, max_ts], in order */
    Prometheus__Sample **ss = ts->samples;
    size_t out = 0;
    int64_t prev = INT64_MIN;
    bool have_prev = false;
    for (size_t k = 0; k < ns; k++) {
      int64_t t = ss[k]->timestamp;
      dist_reason sw = DIST_R_OK;
      char head[200];
      if (t < min_ts) {
        sw = DIST_R_TOO_OLD;
        if (rep->first == DIST_R_OK) {
          char d[48];
          fmt_duration(d, sizeof d, lim->reject_old_samples_max_age_ms);
          snprintf(head, sizeof head,
                   "received a sample whose timestamp is too old, timestamp: %lld (older than now - "
                   "reject_old_samples_max_age %s)",
                   (long long)t, d);
        }
      } else if (t > max_ts) {
        sw = DIST_R_TOO_FAR_IN_FUTURE;
        if (rep->first == DIST_R_OK) {
          char d[48];
          fmt_duration(d, sizeof d, lim->creation_grace_period_ms);
          snprintf(head, sizeof head,
                   "received a sample whose timestamp is too far in the future, timestamp: %lld (newer than "
                   "now + creation_grace_period %s)",
                   (long long)t, d);
        }
      } else if (check_order && have_prev && t < prev) {
        sw = DIST_R_OUT_OF_ORDER;
        if (rep->first == DIST_R_OK) {
          snprintf(head, sizeof head,
                   "out of order sample: timestamp %lld follows %lld in the same series of the request",
                   (long long)t, (long long)prev);
        }
      }
      if (sw != DIST_R_OK) {
        reject_samples(rep, sw, 1);
        first_problem(lim, rep, sw, head, NULL, NULL, 0, ts);
        continue;
      }
      prev = t;
      have_prev = true;
      ss[out++] = ss[k];
    }
    if (out != ns && info) {
      info->raw_ok = false;
    }
    ts->n_samples = out;
    /* what is not forwarded: exemplars and histograms (counted above) */
    ts->n_exemplars = 0;
    ts->exemplars = NULL;
    ts->n_histograms = 0;
    ts->histograms = NULL;
    if (out == 0) {
      if (ns + nh > 0) {
        rep->series_rejected++;
      }
      continue;
    }
    if (req->info && kept != i) {
      req->info[kept] = req->info[i];
    }
    wr->timeseries[kept++] = ts;
  }
  wr->n_timeseries = kept;

  size_t mkept = 0;
  rep->metadata_total = wr->n_metadata;
  for (size_t i = 0; i < wr->n_metadata; i++) {
    Prometheus__MetricMetadata *m = wr->metadata[i];
    dist_reason why = metadata_ok(m, req->metadata_bad && req->metadata_bad[i], lim, rep);
    if (why == DIST_R_OK) {
      why = metadata_per_metric(wr->metadata, mkept, m, lim, rep);
    }
    if (why != DIST_R_OK) {
      rep->metadata_rejected++;
      rep->rejected[why]++;
      continue;
    }
    wr->metadata[mkept++] = m;
  }
  wr->n_metadata = mkept;
}

bool dist_tenant_valid(const char *t, char *errbuf, size_t errlen) {
  return rt_tenant_valid(t, errbuf, errlen);   /* the rules of every endpoint: common/auth.c */
}
