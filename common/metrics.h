/* metrics.h - Ringtail's own metrics: counters, gauges, histograms and scrape-time callbacks,
 * exposed in the Prometheus text format 0.0.4 on /metrics.
 *
 * A registry holds metric families (name, help, type, label names); a family holds children,
 * one per combination of label values. Children live as long as the registry, so a caller may
 * look a child up once and keep the pointer: updating it is a few atomic operations, no lock.
 * Looking a child up takes the registry's mutex.
 *
 * The process has one default registry (rt_metrics_default()), used by every role; tests may
 * create their own. Looking up a family that exists with the same type and label names returns
 * it (several components in one process may "register" the same metric); a mismatch returns
 * NULL. Every update function accepts NULL and does nothing, so a failed lookup (out of memory,
 * mismatch) costs the metric, never the process.
 *
 * Label names are a comma-separated list ("method,route,status_code") or NULL/"" for none; the
 * label values follow as `const char *` varargs, exactly as many as there are names. */
#ifndef RT_METRICS_H
#define RT_METRICS_H

#include "common/buf.h"
#include "common/rt.h"

typedef struct rt_metrics rt_metrics;
typedef struct rt_counter rt_counter;
typedef struct rt_gauge rt_gauge;
typedef struct rt_histogram rt_histogram;

typedef enum rt_metric_type {
  RT_METRIC_COUNTER,
  RT_METRIC_GAUGE,
  RT_METRIC_HISTOGRAM,
} rt_metric_type;

/* The process-wide registry, created on first use; never destroyed (lives until exit). */
rt_metrics *rt_metrics_default(void);

/* A private registry (tests). Destroy with rt_metrics_destroy(); pointers to its children are
 * dead after that. */
rt_err rt_metrics_create(rt_metrics **out);
void rt_metrics_destroy(rt_metrics *r);

/* Finds or creates the child of a counter family. Borrows name/help/labels and the values (they
 * are copied). Returns NULL on OOM or when `name` exists with another type or other labels. */
rt_counter *rt_counter_get(rt_metrics *r, const char *name, const char *help,
                           const char *label_names, ...);
rt_gauge *rt_gauge_get(rt_metrics *r, const char *name, const char *help,
                       const char *label_names, ...);
/* Histogram buckets: upper bounds, strictly increasing, without +Inf (added implicitly);
 * NULL/0 = rt_metrics_latency_buckets. Copied when the family is created. */
rt_histogram *rt_histogram_get(rt_metrics *r, const char *name, const char *help,
                               const double *buckets, size_t nbuckets, const char *label_names,
                               ...);

/* Default latency buckets in seconds: .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10 25 50 100. */
extern const double rt_metrics_latency_buckets[];
extern const size_t rt_metrics_latency_nbuckets;

void rt_counter_inc(rt_counter *c);
void rt_counter_add(rt_counter *c, double v);   /* v < 0 is ignored (counters only go up) */
double rt_counter_value(const rt_counter *c);
void rt_gauge_set(rt_gauge *g, double v);
void rt_gauge_add(rt_gauge *g, double v);       /* v may be negative */
double rt_gauge_value(const rt_gauge *g);
void rt_histogram_observe(rt_histogram *h, double v);
uint64_t rt_histogram_count(const rt_histogram *h);
double rt_histogram_sum(const rt_histogram *h);

/* A value read at scrape time (RocksDB sizes, process RSS). `fn` is called from the scraping
 * thread, one scrape at a time; it may look up and update metrics of this registry but must
 * not add or remove callbacks (that would deadlock). Request threads are not held up while it
 * runs. type is
 * RT_METRIC_COUNTER or RT_METRIC_GAUGE. Registering the same name and label values again
 * replaces the callback. Borrows ctx until rt_metrics_remove_fn(r, ctx). */
typedef double (*rt_metric_fn)(void *ctx);
rt_err rt_metrics_add_fn(rt_metrics *r, rt_metric_type type, const char *name, const char *help,
                         rt_metric_fn fn, void *ctx, const char *label_names, ...);
/* Removes every callback registered with ctx (call before ctx dies). */
void rt_metrics_remove_fn(rt_metrics *r, void *ctx);

/* Appends the registry in the text format 0.0.4 (families sorted by name). */
void rt_metrics_expose(rt_metrics *r, rt_buf *out);
#define RT_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
