/* compactor.c - the lifecycle rules and the worker that applies them to an ingester in this
 * process (compactor/DESIGN.md). */
#include "compactor/compactor.h"

#include <malloc.h>
#include <pthread.h>
#include <time.h>

#include "common/log.h"

#define CMP_LOG "compactor"
#define CMP_INTERVAL_MS 10000

void cmp_rules_from_config(const rt_config *cfg, cmp_rules *out) {
  out->series_idle_timeout_ms = cfg->series_idle_timeout_ms > 0 ? cfg->series_idle_timeout_ms : 0;
  out->interval_ms = CMP_INTERVAL_MS;
}

void cmp_rules_apply_to_ingester(const cmp_rules *r, ing_config *ic) {
  ic->series_idle_timeout_ms = r->series_idle_timeout_ms;
}

rt_err cmp_run_once(const cmp_rules *r, ing_ingester *ing, uint64_t now_ns, uint64_t *removed) {
  uint64_t n = 0;
  rt_err err = RT_OK;
  if (r->series_idle_timeout_ms > 0) {
    err = ing_remove_idle(ing, r->series_idle_timeout_ms, now_ns, &n);
  }
  if (n > 0) {
    /* what the series held is freed all over the heap, between live allocations: hand the
     * free pages back to the system, or the process' RSS keeps the high-water mark of churn */
    malloc_trim(0);
  }
  if (removed) {
    *removed = n;
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
    rt_err err = cmp_run_once(&w->rules, w->ing, rt_mono_ns(), NULL);
    if (err) {
      rt_warn(CMP_LOG, "head cleanup failed", "err=\"%s\"", rt_strerror(err));
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
  rt_info(CMP_LOG, "lifecycle rules applied to the ingester", "series_idle_timeout_ms=%lld",
          (long long)r->series_idle_timeout_ms);
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
