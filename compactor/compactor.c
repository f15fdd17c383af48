/* compactor.c - the lifecycle rules and the worker that applies them to an ingester in this
 * process (compactor/DESIGN.md). */
#include "compactor/compactor.h"

#include <malloc.h>
#include <pthread.h>
#include <time.h>

#include "common/log.h"

#define CMP_LOG "compactor"
#define CMP_INTERVAL_MS 10000
#define CMP_STEP_MIN_MS (60 * 1000LL)
#define CMP_STEP_MAX_MS (3600 * 1000LL)

void cmp_rules_from_config(const rt_config *cfg, cmp_rules *out) {
  out->series_idle_timeout_ms = cfg->series_idle_timeout_ms > 0 ? cfg->series_idle_timeout_ms : 0;
  out->retention_period_ms = cfg->retention_period_ms > 0 ? cfg->retention_period_ms : 0;
  out->interval_ms = CMP_INTERVAL_MS;
}

void cmp_rules_apply_to_ingester(const cmp_rules *r, ing_config *ic) {
  ic->series_idle_timeout_ms = r->series_idle_timeout_ms;
}

void cmp_tenant_limits(const cmp_rules *r, const char *tenant, rt_limits *out) {
  rt_limits_get(tenant, out);
  if (!rt_limits_active()) {
    out->compactor_retention_period_ms = r->retention_period_ms;
  }
}

int64_t cmp_retention_step(int64_t period_ms) {
  int64_t step = period_ms / 24;
  return RT_MIN(RT_MAX(step, CMP_STEP_MIN_MS), CMP_STEP_MAX_MS);
}

int64_t cmp_retention_before(const rt_limits *l, int64_t newest_ms, int64_t wall_ms) {
  int64_t start = rt_retention_start(l, newest_ms, wall_ms);
  if (start == INT64_MIN) {
    return INT64_MIN;
  }
  int64_t step = cmp_retention_step(l->compactor_retention_period_ms);
  int64_t q = start / step - (start % step < 0); /* floor */
  if (q < INT64_MIN / step + 2) {
    return INT64_MIN;
  }
  return (q - 1) * step;
}

typedef struct cmp_ret_ctx {
  const cmp_rules *r;
  int64_t wall_ms;
} cmp_ret_ctx;

static int64_t cmp_before_of(void *ctx, const char *tenant, int64_t newest_ms) {
  const cmp_ret_ctx *c = ctx;
  rt_limits l;
  cmp_tenant_limits(c->r, tenant, &l);
  return cmp_retention_before(&l, newest_ms, c->wall_ms);
}

rt_err cmp_run_once(const cmp_rules *r, ing_ingester *ing, uint64_t now_ns, int64_t wall_ms,
                    cmp_round *out) {
  cmp_round round = {0};
  rt_err err = RT_OK;
  if (r->series_idle_timeout_ms > 0) {
    err = ing_remove_idle(ing, r->series_idle_timeout_ms, now_ns, &round.idle_removed);
  }
  if (!err) {
    /* every round: per-tenant periods come from the runtime config, which may change */
    cmp_ret_ctx c = {r, wall_ms};
    err = ing_apply_retention(ing, cmp_before_of, &c, &round.retention);
  }
  if (round.idle_removed > 0 || round.retention.series > 0) {
    /* what the series held is freed all over the heap, between live allocations: hand the
     * free pages back to the system, or the process' RSS keeps the high-water mark of churn */
    malloc_trim(0);
  }
  if (out) {
    *out = round;
  }
  return err;
}

struct cmp_worker {
  cmp_rules rules;
  ing_ingester *ing;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool stop;
};

static void *cmp_main(void *arg) {
  cmp_worker *w = arg;
  pthread_mutex_lock(&w->mu);
  while (!w->stop) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)w->rules.interval_ms * 1000000u;
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    if (w->stop) {
      break;
    }
    pthread_mutex_unlock(&w->mu);
    rt_err err = cmp_run_once(&w->rules, w->ing, rt_mono_ns(), rt_now_ms(), NULL);
    if (err) {
      rt_warn(CMP_LOG, "lifecycle round failed", "err=\"%s\"", rt_strerror(err));
    }
    pthread_mutex_lock(&w->mu);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

rt_err cmp_worker_create(const cmp_rules *r, ing_ingester *ing, cmp_worker **out) {
  *out = NULL;
  if (r->interval_ms <= 0) {
    return RT_EINVAL;
  }
  cmp_worker *w = rt_calloc(1, sizeof *w);
  if (!w) {
    return RT_ENOMEM;
  }
  w->rules = *r;
  w->ing = ing;
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  if (pthread_create(&w->thread, NULL, cmp_main, w) != 0) {
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    rt_free(w, sizeof *w);
    return RT_ENOMEM;
  }
  rt_info(CMP_LOG, "lifecycle rules applied to the ingester",
          "series_idle_timeout_ms=%lld retention_period_ms=%lld", (long long)r->series_idle_timeout_ms,
          (long long)r->retention_period_ms);
  *out = w;
  return RT_OK;
}

void cmp_worker_destroy(cmp_worker *w) {
  if (!w) {
    return;
  }
  pthread_mutex_lock(&w->mu);
  w->stop = true;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
  rt_free(w, sizeof *w);
}
