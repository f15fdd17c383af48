/* fuzz_validate.c - libFuzzer target for the remote-write validator.
 *
 * The input is decoded (byte 0 picks snappy body or raw protobuf, as in fuzz_decode), byte 1
 * picks limits, and whatever decodes is validated. Afterwards every kept series must obey the
 * rules the ingester relies on, and the counts must add up. */
#include <stdlib.h>
#include <string.h>

#include "common/labels.h"
#include "distributor/distributor.h"
#include "fuzz_seeds.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_maybe_write_seeds();
  return 0;
}

static void check(bool ok) {
  if (!ok) {
    abort();
  }
}

static bool metric_name_ok(const char *s) {
  if (!*s) {
    return false;
  }
  for (size_t i = 0; s[i]; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (i && c >= '0' && c <= '9'))) {
      return false;
    }
  }
  return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) {
    return 0;
  }
  int mode = data[0] & 1;
  uint8_t flags = data[1];
  data += 2;
  size -= 2;
  dist_limits L;
  dist_limits_default(&L);
  L.max_decompressed_size = 4u << 20;
  L.utf8_names = flags & 1;
  L.reject_old_samples = !(flags & 2);
  if (flags & 4) {
    L.ooo_window_ms = 600000;
  }
  if (flags & 8) {
    L.max_label_names_per_series = 3;
    L.max_label_name_length = 8;
    L.max_label_value_length = 8;
    L.max_metadata_length = 8;
  }
  if (flags & 16) {
    L.creation_grace_period_ms = INT64_MAX; /* saturating arithmetic */
    L.reject_old_samples_max_age_ms = INT64_MAX;
  }
  rt_arena *arena = rt_arena_create(0);
  if (!arena) {
    return 0;
  }
  char err[1024];
  dist_request req;
  rt_err e = mode == FUZZ_MODE_SNAPPY ? dist_decode(data, size, &L, arena, &req, err, sizeof err)
                                      : dist_decode_proto(data, size, arena, &req, err, sizeof err);
  if (e == RT_OK) {
    if (flags & 32) {
      req.info = NULL; /* the path for requests built in memory */
      req.metadata_bad = NULL;
    }
    dist_report rep;
    size_t n_in = req.wr->n_timeseries;
    dist_validate(&req, &L, FUZZ_NOW, &rep);
    const Prometheus__WriteRequest *w = req.wr;
    size_t kept_samples = 0;
    for (size_t i = 0; i < w->n_timeseries; i++) {
      const Prometheus__TimeSeries *ts = w->timeseries[i];
      check(ts->n_samples > 0);
      check(ts->n_histograms == 0 && ts->n_exemplars == 0);
      check(L.max_label_names_per_series <= 0 || ts->n_labels <= (size_t)L.max_label_names_per_series);
      bool has_name = false;
      for (size_t j = 0; j < ts->n_labels; j++) {
        const char *n = ts->labels[j]->name, *v = ts->labels[j]->value;
        check(*v != 0);
        if (req.info) {
          /* the decoder's length table stays in step with the compacted labels */
          check(req.info[i].lens[2 * j] == strlen(n) && req.info[i].lens[2 * j + 1] == strlen(v));
        }
        check(rt_utf8_valid(n, strlen(n)) && rt_utf8_valid(v, strlen(v)));
        check(j == 0 || strcmp(ts->labels[j - 1]->name, n) < 0);
        check(strlen(n) <= (size_t)L.max_label_name_length && strlen(v) <= (size_t)L.max_label_value_length);
        if (strcmp(n, "__name__") == 0) {
          has_name = true;
          check(L.utf8_names || metric_name_ok(v));
        } else {
          check(L.utf8_names || rt_label_name_is_legacy(n, strlen(n)));
        }
      }
      check(has_name);
      for (size_t k = 0; k < ts->n_samples; k++) {
        int64_t t = ts->samples[k]->timestamp;
        check(L.creation_grace_period_ms == INT64_MAX || t <= FUZZ_NOW + L.creation_grace_period_ms);
        check(!L.reject_old_samples || L.reject_old_samples_max_age_ms == INT64_MAX ||
              t >= FUZZ_NOW - L.reject_old_samples_max_age_ms);
        check(L.ooo_window_ms > 0 || k == 0 || t >= ts->samples[k - 1]->timestamp);
      }
      kept_samples += ts->n_samples;
    }
    for (size_t i = 0; i < w->n_metadata; i++) {
      const Prometheus__MetricMetadata *m = w->metadata[i];
      check(*m->metric_family_name != 0);
      check(strlen(m->metric_family_name) <= (size_t)L.max_metadata_length);
      check(strlen(m->help) <= (size_t)L.max_metadata_length && strlen(m->unit) <= (size_t)L.max_metadata_length);
    }
    check(rep.series_total == n_in);
    check(rep.samples_total == kept_samples + rep.samples_rejected);
    check(rep.metadata_total == w->n_metadata + rep.metadata_rejected);
    /* anything dropped is reported (a problem in a series without samples is reported too) */
    check(rep.first != DIST_R_OK || (rep.samples_rejected == 0 && rep.metadata_rejected == 0 &&
                                     rep.rejected[DIST_R_NATIVE_HISTOGRAM] == 0 && rep.series_rejected == 0));
    check(rep.first == DIST_R_OK || rep.msg[0] != 0);
  }
  rt_arena_destroy(arena);
  return 0;
}
