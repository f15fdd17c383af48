/* metrics.c - metric registry and the Prometheus text exposition format. See common/DESIGN.md.
 *
 * Locking: `mu` guards the family list, each family's child list and the callback fields.
 * Values are atomics updated without it; a child is never freed before the registry, so a
 * pointer handed out stays valid. `fn_mu` serializes the callback children: adding, removing
 * and calling them. A scrape calls the callbacks holding only fn_mu (so slow callbacks never
 * hold up the lookups of request threads), stores their values in the children, then renders
 * under mu. Lock order: fn_mu, then mu. */
#include "common/metrics.h"
#include "common/floatfmt.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rt_mchild {
  struct rt_mchild *next;
  char **values;                  /* nlabels label values, owned */
  _Atomic uint64_t bits;          /* counter / gauge value as double bits */
  _Atomic uint64_t *buckets;      /* histogram: nbounds + 1 non-cumulative counts, owned */
  _Atomic uint64_t sum_bits;      /* histogram sum as double bits */
  rt_metric_fn fn;                /* callback children */
  void *ctx;
} rt_mchild;

typedef struct rt_mfamily {
  struct rt_mfamily *next;
  char *name;
  char *help;
  rt_metric_type type;
  bool is_fn;
  size_t nlabels;
  char **label_names;
  double *bounds;                 /* histogram upper bounds (without +Inf) */
  size_t nbounds;
  rt_mchild *children;            /* in creation order */
  rt_mchild **tail;
} rt_mfamily;

struct rt_metrics {
  pthread_mutex_t fn_mu;
  pthread_mutex_t mu;
  rt_mfamily *families;
};

const double rt_metrics_latency_buckets[] = {.005, .01, .025, .05, .1, .25, .5,
                                             1,    2.5, 5,    10,  25,  50, 100};
const size_t rt_metrics_latency_nbuckets = RT_ARRAY_LEN(rt_metrics_latency_buckets);

/* ---------- atomics on doubles ---------- */

static inline uint64_t d2u(double v) {
  uint64_t u;
  memcpy(&u, &v, sizeof u);
  return u;
}

static inline double u2d(uint64_t u) {
  double v;
  memcpy(&v, &u, sizeof v);
  return v;
}

static void atomic_add_double(_Atomic uint64_t *p, double v) {
  uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(p, &old, d2u(u2d(old) + v), memory_order_relaxed,
                                                memory_order_relaxed)) {
  }
}

/* ---------- registry ---------- */

static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static rt_metrics *default_registry;

static void default_init(void) {
  if (rt_metrics_create(&default_registry) != RT_OK) {
    default_registry = NULL;
  }
}

rt_metrics *rt_metrics_default(void) {
  pthread_once(&default_once, default_init);
  return default_registry;
}

rt_err rt_metrics_create(rt_metrics **out) {
  *out = NULL;
  rt_metrics *r = rt_calloc(1, sizeof *r);
  if (!r) {
    return RT_ENOMEM;
  }
  pthread_mutex_init(&r->fn_mu, NULL);
  pthread_mutex_init(&r->mu, NULL);
  *out = r;
  return RT_OK;
}

static void free_strs(char **v, size_t n) {
  if (!v) {
    return;
  }
  for (size_t i = 0; i < n; i++) {
    rt_free(v[i], 0);
  }
  rt_free(v, n * sizeof *v);
}

static void child_free(rt_mfamily *f, rt_mchild *c) {
  free_strs(c->values, f->nlabels);
  if (c->buckets) {
    rt_free(c->buckets, (f->nbounds + 1) * sizeof *c->buckets);
  }
  rt_free(c, sizeof *c);
}

static void family_free(rt_mfamily *f) {
  rt_mchild *c = f->children;
  while (c) {
    rt_mchild *next = c->next;
    child_free(f, c);
    c = next;
  }
  rt_free(f->name, 0);
  rt_free(f->help, 0);
  free_strs(f->label_names, f->nlabels);
  rt_free(f->bounds, f->nbounds * sizeof(double));
  rt_free(f, sizeof *f);
}

void rt_metrics_destroy(rt_metrics *r) {
  if (!r) {
    return;
  }
  rt_mfamily *f = r->families;
  while (f) {
    rt_mfamily *next = f->next;
    family_free(f);
    f = next;
  }
  pthread_mutex_destroy(&r->mu);
  pthread_mutex_destroy(&r->fn_mu);
  rt_free(r, sizeof *r);
}

static bool name_valid(const char *s, bool metric) {
  if (!s || !*s) {
    return false;
  }
  for (const char *p = s; *p; p++) {
    char c = *p;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (metric && c == ':') || (p != s && c >= '0' && c <= '9');
    if (!ok) {
      return false;
    }
  }
  return true;
}

/* Splits "a,b,c" into owned strings. Returns false on OOM or an invalid name. */
static bool split_labels(const char *list, char ***out, size_t *n) {
  *out = NULL;
  *n = 0;
  if (!list || !*list) {
    return true;
  }
  size_t cnt = 1;
  for (const char *p = list; *p; p++) {
    cnt += (*p == ',');
  }
  char **v = rt_calloc(cnt, sizeof *v);
  if (!v) {
    return false;
  }
  const char *s = list;
  for (size_t i = 0; i < cnt; i++) {
    const char *e = strchr(s, ',');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    v[i] = rt_strndup(s, len);
    if (!v[i] || !name_valid(v[i], false) || strcmp(v[i], "le") == 0) {
      free_strs(v, cnt);
      return false;
    }
    s = e ? e + 1 : s + len;
  }
  *out = v;
  *n = cnt;
  return true;
}

static bool same_labels(const rt_mfamily *f, char **names, size_t n) {
  if (f->nlabels != n) {
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    if (strcmp(f->label_names[i], names[i]) != 0) {
      return false;
    }
  }
  return true;
}

/* Finds or creates a family. Called with r->mu held. */
static rt_mfamily *family_get(rt_metrics *r, rt_metric_type type, bool is_fn, const char *name,
                              const char *help, const double *bounds, size_t nbounds,
                              const char *label_names) {
  if (!name_valid(name, true)) {
    return NULL;
  }
  char **names;
  size_t n;
  if (!split_labels(label_names, &names, &n)) {
    return NULL;
  }
  for (rt_mfamily *f = r->families; f; f = f->next) {
    if (strcmp(f->name, name) == 0) {
      bool ok = f->type == type && f->is_fn == is_fn && same_labels(f, names, n);
      free_strs(names, n);
      return ok ? f : NULL;
    }
  }
  rt_mfamily *f = rt_calloc(1, sizeof *f);
  if (!f) {
    free_strs(names, n);
    return NULL;
  }
  f->name = rt_strdup(name);
  f->help = rt_strdup(help ? help : "");
  f->type = type;
  f->is_fn = is_fn;
  f->label_names = names;
  f->nlabels = n;
  f->tail = &f->children;
  if (type == RT_METRIC_HISTOGRAM) {
    if (!bounds || nbounds == 0) {
      bounds = rt_metrics_latency_buckets;
      nbounds = rt_metrics_latency_nbuckets;
    }
    f->bounds = rt_alloc(nbounds * sizeof(double));
    if (f->bounds) {
      memcpy(f->bounds, bounds, nbounds * sizeof(double));
      f->nbounds = nbounds;
    }
    for (size_t i = 1; i < nbounds && f->bounds; i++) {
      if (!(bounds[i] > bounds[i - 1])) {
        family_free(f);
        return NULL;
      }
    }
  }
  if (!f->name || !f->help || (type == RT_METRIC_HISTOGRAM && !f->bounds)) {
    family_free(f);
    return NULL;
  }
  f->next = r->families;
  r->families = f;
  return f;
}

/* Finds or creates the child with these label values. Called with r->mu held. */
static rt_mchild *child_get(rt_mfamily *f, va_list ap) {
  const char *vals[64];
  if (f->nlabels > RT_ARRAY_LEN(vals)) {
    return NULL;
  }
  for (size_t i = 0; i < f->nlabels; i++) {
    const char *v = va_arg(ap, const char *);
    vals[i] = v ? v : "";
  }
  for (rt_mchild *c = f->children; c; c = c->next) {
    size_t i = 0;
    while (i < f->nlabels && strcmp(c->values[i], vals[i]) == 0) {
      i++;
    }
    if (i == f->nlabels) {
      return c;
    }
  }
  rt_mchild *c = rt_calloc(1, sizeof *c);
  if (!c) {
    return NULL;
  }
  if (f->nlabels) {
    c->values = rt_calloc(f->nlabels, sizeof *c->values);
    if (!c->values) {
      rt_free(c, sizeof *c);
      return NULL;
    }
    for (size_t i = 0; i < f->nlabels; i++) {
      c->values[i] = rt_strdup(vals[i]);
      if (!c->values[i]) {
        child_free(f, c);
        return NULL;
      }
    }
  }
  if (f->type == RT_METRIC_HISTOGRAM) {
    c->buckets = rt_calloc(f->nbounds + 1, sizeof *c->buckets);
    if (!c->buckets) {
      child_free(f, c);
      return NULL;
    }
    c->ctx = f;
  }
  *f->tail = c;
  f->tail = &c->next;
  return c;
}

static rt_mchild *lookup(rt_metrics *r, rt_metric_type type, const char *name, const char *help,
                         const double *bounds, size_t nbounds, const char *label_names,
                         va_list ap) {
  if (!r) {
    return NULL;
  }
  pthread_mutex_lock(&r->mu);
  rt_mfamily *f = family_get(r, type, false, name, help, bounds, nbounds, label_names);
  rt_mchild *c = f ? child_get(f, ap) : NULL;
  pthread_mutex_unlock(&r->mu);
  return c;
}

rt_counter *rt_counter_get(rt_metrics *r, const char *name, const char *help,
                           const char *label_names, ...) {
  va_list ap;
  va_start(ap, label_names);
  rt_mchild *c = lookup(r, RT_METRIC_COUNTER, name, help, NULL, 0, label_names, ap);
  va_end(ap);
  return (rt_counter *)c;
}

rt_gauge *rt_gauge_get(rt_metrics *r, const char *name, const char *help,
                       const char *label_names, ...) {
  va_list ap;
  va_start(ap, label_names);
  rt_mchild *c = lookup(r, RT_METRIC_GAUGE, name, help, NULL, 0, label_names, ap);
  va_end(ap);
  return (rt_gauge *)c;
}

rt_histogram *rt_histogram_get(rt_metrics *r, const char *name, const char *help,
                               const double *buckets, size_t nbuckets, const char *label_names,
                               ...) {
  va_list ap;
  va_start(ap, label_names);
  rt_mchild *c = lookup(r, RT_METRIC_HISTOGRAM, name, help, buckets, nbuckets, label_names, ap);
  va_end(ap);
  return (rt_histogram *)c;
}

/* ---------- updates ---------- */

void rt_counter_inc(rt_counter *c) { rt_counter_add(c, 1); }

void rt_counter_add(rt_counter *c, double v) {
  if (c && v >= 0) {
    atomic_add_double(&((rt_mchild *)c)->bits, v);
  }
}

double rt_counter_value(const rt_counter *c) {
  return c ? u2d(atomic_load(&((rt_mchild *)c)->bits)) : 0;
}

void rt_gauge_set(rt_gauge *g, double v) {
  if (g) {
    atomic_store_explicit(&((rt_mchild *)g)->bits, d2u(v), memory_order_relaxed);
  }
}

void rt_gauge_add(rt_gauge *g, double v) {
  if (g) {
    atomic_add_double(&((rt_mchild *)g)->bits, v);
  }
}

double rt_gauge_value(const rt_gauge *g) {
  return g ? u2d(atomic_load(&((rt_mchild *)g)->bits)) : 0;
}

/* A histogram child keeps its family (for the bounds) in ctx. */
void rt_histogram_observe(rt_histogram *h, double v) {
  rt_mchild *c = (rt_mchild *)h;
  if (!c || isnan(v)) {
    return;
  }
  const rt_mfamily *f = c->ctx;
  size_t i = 0;
  while (i < f->nbounds && v > f->bounds[i]) {
    i++;
  }
  atomic_fetch_add_explicit(&c->buckets[i], 1, memory_order_relaxed);
  atomic_add_double(&c->sum_bits, v);
}

uint64_t rt_histogram_count(const rt_histogram *h) {
  const rt_mchild *c = (const rt_mchild *)h;
  if (!c) {
    return 0;
  }
  const rt_mfamily *f = c->ctx;
  uint64_t n = 0;
  for (size_t i = 0; i <= f->nbounds; i++) {
    n += atomic_load_explicit(&c->buckets[i], memory_order_relaxed);
  }
  return n;
}

double rt_histogram_sum(const rt_histogram *h) {
  return h ? u2d(atomic_load(&((rt_mchild *)h)->sum_bits)) : 0;
}

/* ---------- callbacks ---------- */

rt_err rt_metrics_add_fn(rt_metrics *r, rt_metric_type type, const char *name, const char *help,
                         rt_metric_fn fn, void *ctx, const char *label_names, ...) {
  if (!r || !fn || type == RT_METRIC_HISTOGRAM) {
    return RT_EINVAL;
  }
  va_list ap;
  va_start(ap, label_names);
  pthread_mutex_lock(&r->fn_mu);
  pthread_mutex_lock(&r->mu);
  rt_mfamily *f = family_get(r, type, true, name, help, NULL, 0, label_names);
  rt_mchild *c = f ? child_get(f, ap) : NULL;
  if (c) {
    c->fn = fn;
    c->ctx = ctx;
  }
  pthread_mutex_unlock(&r->mu);
  pthread_mutex_unlock(&r->fn_mu);
  va_end(ap);
  return c ? RT_OK : (f ? RT_ENOMEM : RT_EINVAL);
}

void rt_metrics_remove_fn(rt_metrics *r, void *ctx) {
  if (!r) {
    return;
  }
  pthread_mutex_lock(&r->fn_mu);
  pthread_mutex_lock(&r->mu);
  for (rt_mfamily *f = r->families; f; f = f->next) {
    if (!f->is_fn) {
      continue;
    }
    rt_mchild **pp = &f->children;
    while (*pp) {
      rt_mchild *c = *pp;
      if (c->ctx == ctx) {
        *pp = c->next;
        child_free(f, c);
      } else {
        pp = &c->next;
      }
    }
    f->tail = pp;
  }
  pthread_mutex_unlock(&r->mu);
  pthread_mutex_unlock(&r->fn_mu);
}

/* ---------- exposition ---------- */

static void put_escaped(rt_buf *out, const char *s, bool quote) {
  for (const char *p = s; *p; p++) {
    if (*p == '\\') {
      rt_buf_puts(out, "\\\\");
    } else if (*p == '\n') {
      rt_buf_puts(out, "\\n");
    } else if (quote && *p == '"') {
      rt_buf_puts(out, "\\\"");
    } else {
      rt_buf_putc(out, *p);
    }
  }
}

/* name{l1="v1",...[,le="x"]} value\n */
static void put_sample(rt_buf *out, const rt_mfamily *f, const rt_mchild *c, const char *suffix,
                       const char *le, double v) {
  char num[RT_FLOAT_SHORT];
  rt_buf_puts(out, f->name);
  rt_buf_puts(out, suffix);
  if (f->nlabels || le) {
    rt_buf_putc(out, '{');
    for (size_t i = 0; i < f->nlabels; i++) {
      rt_buf_printf(out, "%s%s=\"", i ? "," : "", f->label_names[i]);
      put_escaped(out, c->values[i], true);
      rt_buf_putc(out, '"');
    }
    if (le) {
      rt_buf_printf(out, "%sle=\"%s\"", f->nlabels ? "," : "", le);
    }
    rt_buf_putc(out, '}');
  }
  rt_buf_putc(out, ' ');
  rt_buf_append(out, num, rt_float_format(num, v, 'g'));
  rt_buf_putc(out, '\n');
}

static int family_cmp(const void *a, const void *b) {
  return strcmp((*(rt_mfamily *const *)a)->name, (*(rt_mfamily *const *)b)->name);
}

/* Calls every callback child and stores its value in the child's bits. Called with fn_mu
 * held (so no callback child appears or disappears meanwhile) and without mu. */
static void refresh_callbacks(rt_metrics *r) {
  pthread_mutex_lock(&r->mu);
  size_t n = 0;
  for (rt_mfamily *f = r->families; f; f = f->next) {
    for (rt_mchild *c = f->is_fn ? f->children : NULL; c; c = c->next) {
      n++;
    }
  }
  rt_mchild **v = n ? rt_calloc(n, sizeof *v) : NULL;
  size_t k = 0;
  for (rt_mfamily *f = r->families; f && v; f = f->next) {
    for (rt_mchild *c = f->is_fn ? f->children : NULL; c; c = c->next) {
      v[k++] = c;
    }
  }
  pthread_mutex_unlock(&r->mu);
  for (size_t i = 0; i < k; i++) {
    atomic_store(&v[i]->bits, d2u(v[i]->fn(v[i]->ctx)));
  }
  rt_free(v, n * sizeof *v);
}

void rt_metrics_expose(rt_metrics *r, rt_buf *out) {
  if (!r) {
    return;
  }
  pthread_mutex_lock(&r->fn_mu);
  refresh_callbacks(r);
  pthread_mutex_lock(&r->mu);
  size_t n = 0;
  for (rt_mfamily *f = r->families; f; f = f->next) {
    n++;
  }
  rt_mfamily **sorted = rt_calloc(n ? n : 1, sizeof *sorted);
  if (!sorted) {
    pthread_mutex_unlock(&r->mu);
    pthread_mutex_unlock(&r->fn_mu);
    out->oom = true;
    return;
  }
  n = 0;
  for (rt_mfamily *f = r->families; f; f = f->next) {
    sorted[n++] = f;
  }
  qsort(sorted, n, sizeof *sorted, family_cmp);
  static const char *const type_names[] = {"counter", "gauge", "histogram"};
  for (size_t k = 0; k < n; k++) {
    const rt_mfamily *f = sorted[k];
    if (!f->children) {
      continue;
    }
    rt_buf_printf(out, "# HELP %s ", f->name);
    put_escaped(out, f->help, false);
    rt_buf_printf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
    for (const rt_mchild *c = f->children; c; c = c->next) {
      if (f->type != RT_METRIC_HISTOGRAM) {   /* callback children: refreshed above */
        put_sample(out, f, c, "", NULL, u2d(atomic_load(&c->bits)));
      } else {
        uint64_t cum = 0;
        char le[RT_FLOAT_SHORT];
        for (size_t i = 0; i <= f->nbounds; i++) {
          cum += atomic_load_explicit(&c->buckets[i], memory_order_relaxed);
          if (i < f->nbounds) {
            rt_float_format(le, f->bounds[i], 'g');
          } else {
            snprintf(le, sizeof le, "+Inf");
          }
          put_sample(out, f, c, "_bucket", le, (double)cum);
        }
        put_sample(out, f, c, "_sum", NULL, u2d(atomic_load(&c->sum_bits)));
        put_sample(out, f, c, "_count", NULL, (double)cum);
      }
    }
  }
  rt_free(sorted, n * sizeof *sorted);
  pthread_mutex_unlock(&r->mu);
  pthread_mutex_unlock(&r->fn_mu);
}
