/* compactor.h - the data lifecycle of Ringtail: the rules that say what stays in an ingester's
 * memory and how long data is kept on disk, and the worker that applies them.
 *
 * The compactor has no storage of its own: every ingester owns one RocksDB database that only
 * its process opens, so the work on the data runs inside the ingester's process. The rules live
 * here; the worker (one thread per ingester in the process, started with -target=compactor or
 * all) calls the ingester's mechanisms (ing_remove_idle, ing_apply_retention) with them on a
 * schedule. See
 * compactor/DESIGN.md. */
#ifndef RT_COMPACTOR_H
#define RT_COMPACTOR_H

#include "common/config.h"
#include "common/limits.h"
#include "common/rt.h"
#include "ingester/ingester.h"

/* The lifecycle rules. */
typedef struct cmp_rules {
  int64_t series_idle_timeout_ms; /* -ingester.series-idle-timeout: a series without a sample for
                                     this long (data time: the tenant's newest sample), or of a
                                     tenant without a push for this long (wall clock), leaves
                                     the head; 0 = never */
  int64_t retention_period_ms;    /* -compactor.retention-period: data older than this behind
                                     the tenant's data-time clock is deleted; 0 = kept forever.
                                     Per tenant: compactor_retention_period in the runtime-config
                                     file, read at every round (a change needs no restart) */
  int64_t interval_ms;            /* how often the worker applies them (10 s) */
} cmp_rules;

/* The effective limits of `tenant` under r: the per-tenant table when the process configured
 * its limits (rt_limits_active), else the built-in defaults with r's retention period. */
void cmp_tenant_limits(const cmp_rules *r, const char *tenant, rt_limits *out);

/* The step by which the deletion cutoff moves: a 24th of the period, between 1 minute and
 * 1 hour. */
int64_t cmp_retention_step(int64_t period_ms);

/* The time before which the compactor deletes a tenant's data: rt_retention_start (the
 * tenant's data-time clock minus its period) rounded down to a step, minus one step, so that
 * deletion always trails the readers' clamp by one to two steps. INT64_MIN: keep everything. */
int64_t cmp_retention_before(const rt_limits *l, int64_t newest_ms, int64_t wall_ms);

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

/* What one round did. */
typedef struct cmp_round {
  uint64_t idle_removed;           /* series that left the head as idle */
  ing_retention_stats retention;   /* what retention deleted */
} cmp_round;

/* One round of the rules on ing, with now_ns as the monotonic clock (rt_mono_ns) and wall_ms as
 * the wall clock (rt_now_ms): idle series leave its head, then data older than each tenant's
 * retention is deleted (ing_apply_retention with cmp_retention_before). *out (may be NULL) says
 * what was done. Blocking; any thread. */
rt_err cmp_run_once(const cmp_rules *r, ing_ingester *ing, uint64_t now_ns, int64_t wall_ms,
                    cmp_round *out);

#endif
