/* merge.c - merging samples of one series that arrive from several ingesters. */
#include <stdlib.h>
#include <string.h>

#include "querier/querier.h"
#include "querier/querier_int.h"

typedef struct qry_tag {
  int64_t t;
  size_t i;
} qry_tag;

static int qry_tag_cmp(const void *a, const void *b) {
  const qry_tag *x = a, *y = b;
  if (x->t != y->t) {
    return (x->t > y->t) - (x->t < y->t);
  }
  return (x->i > y->i) - (x->i < y->i);
}

static void qry_isort(qry_sample *s, size_t n) {
  for (size_t i = 1; i < n; i++) {
    qry_sample x = s[i];
    size_t j = i;
    while (j > 0 && s[j - 1].t > x.t) {
      s[j] = s[j - 1];
      j--;
    }
    s[j] = x;
  }
}

size_t qry_samples_merge(qry_sample *s, size_t n) {
  bool sorted = true;
  for (size_t i = 1; i < n; i++) {
    if (s[i].t <= s[i - 1].t) {
      sorted = false;
      break;
    }
  }
  if (sorted) {
    return n;
  }
  /* stable, so that the first source's sample wins a tie */
  qry_tag *tags = n > 64 ? rt_alloc(n * sizeof *tags) : NULL;
  qry_sample *copy = tags ? rt_alloc(n * sizeof *copy) : NULL;
  if (!tags || !copy) {
    rt_free(tags, 0);
    qry_isort(s, n);
  } else {
    for (size_t i = 0; i < n; i++) {
      tags[i].t = s[i].t;
      tags[i].i = i;
    }
    qsort(tags, n, sizeof *tags, qry_tag_cmp);
    memcpy(copy, s, n * sizeof *copy);
    for (size_t i = 0; i < n; i++) {
      s[i] = copy[tags[i].i];
    }
    rt_free(tags, n * sizeof *tags);
    rt_free(copy, n * sizeof *copy);
  }
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (o > 0 && s[o - 1].t == s[i].t) {
      continue;
    }
    s[o++] = s[i];
  }
  return o;
}

