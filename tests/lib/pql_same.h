/* pql_same.h - whether two PromQL results are bit for bit the same (header only, for tests).
 *
 * pql_results_same() compares everything a result carries: type, error, scalar and string,
 * series labels in order, every point's time and the bits of its value (so NaN payloads, -0 and
 * stale markers count), native histograms field by field, annotations in order, and the sample
 * statistics. It is how tests hold the column evaluation of range queries to the step-by-step
 * one (pql_opts.step_by_step). */
#ifndef RT_TEST_PQL_SAME_H
#define RT_TEST_PQL_SAME_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "promql/promql.h"

static inline bool pqls_bits_eq(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

static inline bool pqls_str_eq(const char *a, const char *b) {
  return (a == NULL) == (b == NULL) && (a == NULL || strcmp(a, b) == 0);
}

static inline bool pqls_darr_eq(const double *a, const double *b, uint32_t n) {
  return n == 0 || memcmp(a, b, n * sizeof *a) == 0;
}

static inline bool pqls_hist_eq(const pql_hist *a, const pql_hist *b) {
  if ((a == NULL) != (b == NULL)) {
    return false;
  }
  if (!a) {
    return true;
  }
  return a->schema == b->schema && a->hint == b->hint && pqls_bits_eq(a->zt, b->zt) && pqls_bits_eq(a->zc, b->zc) &&
         pqls_bits_eq(a->count, b->count) && pqls_bits_eq(a->sum, b->sum) && a->np == b->np && a->nn == b->nn &&
         a->ncv == b->ncv && (a->np == 0 || memcmp(a->pi, b->pi, a->np * sizeof *a->pi) == 0) &&
         (a->nn == 0 || memcmp(a->ni, b->ni, a->nn * sizeof *a->ni) == 0) && pqls_darr_eq(a->pb, b->pb, a->np) &&
         pqls_darr_eq(a->nb, b->nb, a->nn) && pqls_darr_eq(a->cv, b->cv, a->ncv);
}

static inline bool pqls_list_eq(const char **a, size_t an, const char **b, size_t bn) {
  if (an != bn) {
    return false;
  }
  for (size_t i = 0; i < an; i++) {
    if (strcmp(a[i], b[i]) != 0) {
      return false;
    }
  }
  return true;
}

/* Returns true when a and b are the same; otherwise writes the first difference into why. */
static inline bool pql_results_same(const pql_result *a, const pql_result *b, char *why, size_t n) {
  if (!pqls_str_eq(a->error, b->error) || !pqls_str_eq(a->error_type, b->error_type)) {
    snprintf(why, n, "errors differ: %s / %s", a->error ? a->error : "(none)", b->error ? b->error : "(none)");
    return false;
  }
  if (a->type != b->type || !pqls_bits_eq(a->scalar, b->scalar) || a->t != b->t || !pqls_str_eq(a->str, b->str)) {
    snprintf(why, n, "type, scalar or string differ");
    return false;
  }
  if (a->nseries != b->nseries) {
    snprintf(why, n, "%zu series / %zu series", a->nseries, b->nseries);
    return false;
  }
  for (size_t i = 0; i < a->nseries; i++) {
    const pql_series *x = &a->series[i], *y = &b->series[i];
    bool same = x->nlabels == y->nlabels && x->npoints == y->npoints;
    for (size_t k = 0; same && k < x->nlabels; k++) {
      same = strcmp(x->labels[k].name, y->labels[k].name) == 0 && strcmp(x->labels[k].value, y->labels[k].value) == 0;
    }
    if (!same) {
      snprintf(why, n, "series %zu: labels or point count differ (%zu / %zu points)", i, x->npoints, y->npoints);
      return false;
    }
    for (size_t k = 0; k < x->npoints; k++) {
      const pql_point *p = &x->points[k], *r = &y->points[k];
      if (p->t != r->t || !pqls_bits_eq(p->v, r->v) || !pqls_hist_eq(p->h, r->h)) {
        snprintf(why, n, "series %zu point %zu: %" PRId64 " %.17g / %" PRId64 " %.17g", i, k, p->t, p->v, r->t, r->v);
        return false;
      }
    }
  }
  if (!pqls_list_eq(a->warnings, a->nwarnings, b->warnings, b->nwarnings) ||
      !pqls_list_eq(a->infos, a->ninfos, b->infos, b->ninfos)) {
    snprintf(why, n, "annotations differ (%zu/%zu warnings, %zu/%zu infos)", a->nwarnings, b->nwarnings, a->ninfos,
             b->ninfos);
    return false;
  }
  if (a->samples_total != b->samples_total || a->samples_peak != b->samples_peak) {
    snprintf(why, n, "sample statistics differ: total %" PRId64 "/%" PRId64 ", peak %" PRId64 "/%" PRId64,
             a->samples_total, b->samples_total, a->samples_peak, b->samples_peak);
    return false;
  }
  return true;
}

#endif
