/* compactor.h - the data lifecycle of Ringtail: the rules that say what stays in an ingester's
 * memory (and, later, how long data is kept on disk), and the worker that applies them.
 *
 * The compactor has no storage of its own: every ingester owns one RocksDB database that only
 * its process opens, so the work on the data runs inside the ingester's process. The rules live
 * here; the worker (one thread per ingester in the process, started with -target=compactor or
 * all) calls the ingester's mechanism (ing_remove_idle) with them on a schedule. See
 * compactor/DESIGN.md. */
#ifndef RT_COMPACTOR_H
#define RT_COMPACTOR_H

#include "common/config.h"
#include "common/rt.h"
#include "ingester/ingester.h"

/* The lifecycle rules. */
typedef struct cmp_rules {
  int64_t series_idle_timeout_ms; /* -ingester.series-idle-timeout: a series without a sample for
                                     this long (data time: the tenant's newest sample), or of a
                                     tenant without a push for this long (wall clock), leaves
                                     the head; 0 = never */
  int64_t interval_ms;            /* how often the worker applies them (10 s) */
} cmp_rules;

/* The rules of a process configuration (borrows cfg). */
void cmp_rules_from_config(const rt_config *cfg, cmp_rules *out);

/* What the rules mean for an ingester opened under them: the idle timeout its open applies
 * (a series idle before the stop stays on disk). Sets the field of *ic. */
void cmp_rules_apply_to_ingester(const cmp_rules *r, ing_config *ic);

typedef struct cmp_worker cmp_worker;

/* Starts the worker for one ingester (borrowed: it must outlive the worker). Every
 * r->interval_ms it runs cmp_run_once. On success *out is new; destroy with
 * cmp_worker_destroy() before the ingester. */
rt_err cmp_worker_create(const cmp_rules *r, ing_ingester *ing, cmp_worker **out);
/* Stops the thread (waits for a round in progress) and frees w. NULL is a no-op. */
void cmp_worker_destroy(cmp_worker *w);

/* One round of the rules on ing, with now_ns as the wall clock (rt_mono_ns): idle series leave
 * its head. *removed counts them (may be NULL). Blocking; any thread. */
rt_err cmp_run_once(const cmp_rules *r, ing_ingester *ing, uint64_t now_ns, uint64_t *removed);

#endif
