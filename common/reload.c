/* reload.c - the registry of reloadable files and the thread that watches them. */
#include "common/reload.h"

#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/log.h"
#include "common/metrics.h"

#define RELOAD_MAX 8

typedef struct entry {
  const char *name;
  char *path;
  rt_reload_fn fn;
  void *ctx;
  struct stat seen;   /* the file as last loaded (or last seen failing) */
  bool have_seen;
  rt_gauge *ok, *ok_time;
} entry;

static pthread_mutex_t rl_mu = PTHREAD_MUTEX_INITIALIZER;   /* the table; held while reloading */
static entry rl_tab[RELOAD_MAX];
static size_t rl_n;

static pthread_mutex_t rl_wmu = PTHREAD_MUTEX_INITIALIZER;  /* the watcher */
static pthread_cond_t rl_wcv = PTHREAD_COND_INITIALIZER;
static pthread_t rl_thread;
static bool rl_running, rl_stop;
static int64_t rl_period_ms;

static void file_stat(const char *path, struct stat *st, bool *have) {
  *have = stat(path, st) == 0;
  if (!*have) {
    memset(st, 0, sizeof *st);
  }
}

static bool same_file(const struct stat *a, const struct stat *b) {
  return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
         a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Runs one reload; rl_mu held. */
static bool run_one(entry *e) {
  file_stat(e->path, &e->seen, &e->have_seen);
  char err[512] = "";
  rt_err rc = e->fn(e->ctx, err, sizeof err);
  if (rc != RT_OK) {
    rt_error("reload", "reload failed; the previous configuration stays in force",
             "config=%s file=%s err=\"%s\"", e->name, e->path, err[0] ? err : rt_strerror(rc));
    rt_gauge_set(e->ok, 0);
    return false;
  }
  rt_info("reload", "configuration reloaded", "config=%s file=%s", e->name, e->path);
  rt_gauge_set(e->ok, 1);
  rt_gauge_set(e->ok_time, (double)rt_now_ms() / 1000.0);
  return true;
}

rt_err rt_reload_register(const char *name, const char *path, rt_reload_fn fn, void *ctx) {
  pthread_mutex_lock(&rl_mu);
  if (rl_n == RELOAD_MAX) {
    pthread_mutex_unlock(&rl_mu);
    return RT_ELIMIT;
  }
  entry *e = &rl_tab[rl_n];
  memset(e, 0, sizeof *e);
  e->path = rt_strdup(path);
  if (!e->path) {
    pthread_mutex_unlock(&rl_mu);
    return RT_ENOMEM;
  }
  e->name = name;
  e->fn = fn;
  e->ctx = ctx;
  file_stat(path, &e->seen, &e->have_seen);
  rt_metrics *m = rt_metrics_default();
  e->ok = rt_gauge_get(m, "ringtail_config_last_reload_successful",
                       "Whether the last reload of a configuration file succeeded.", "config",
                       name);
  e->ok_time = rt_gauge_get(m, "ringtail_config_last_reload_success_timestamp_seconds",
                            "When a configuration file was last loaded successfully.", "config",
                            name);
  rt_gauge_set(e->ok, 1);
  rt_gauge_set(e->ok_time, (double)rt_now_ms() / 1000.0);
  rl_n++;
  pthread_mutex_unlock(&rl_mu);
  return RT_OK;
}

void rt_reload_unregister(void *ctx) {
  pthread_mutex_lock(&rl_mu);
  for (size_t i = 0; i < rl_n;) {
    if (rl_tab[i].ctx == ctx) {
      rt_free(rl_tab[i].path, 0);
      rl_tab[i] = rl_tab[--rl_n];
    } else {
      i++;
    }
  }
  pthread_mutex_unlock(&rl_mu);
}

int rt_reload_all(void) {
  int failed = 0;
  pthread_mutex_lock(&rl_mu);
  for (size_t i = 0; i < rl_n; i++) {
    failed += !run_one(&rl_tab[i]);
  }
  pthread_mutex_unlock(&rl_mu);
  return failed;
}

static void check_changed(void) {
  pthread_mutex_lock(&rl_mu);
  for (size_t i = 0; i < rl_n; i++) {
    entry *e = &rl_tab[i];
    struct stat st;
    bool have;
    file_stat(e->path, &st, &have);
    if (have != e->have_seen || (have && !same_file(&st, &e->seen))) {
      run_one(e);
    }
  }
  pthread_mutex_unlock(&rl_mu);
}

static void *watch_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&rl_wmu);
  while (!rl_stop) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ns = (int64_t)ts.tv_nsec + (rl_period_ms % 1000) * 1000000;
    ts.tv_sec += (time_t)(rl_period_ms / 1000 + ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    pthread_cond_timedwait(&rl_wcv, &rl_wmu, &ts);
    if (rl_stop) {
      break;
    }
    pthread_mutex_unlock(&rl_wmu);
    check_changed();
    pthread_mutex_lock(&rl_wmu);
  }
  pthread_mutex_unlock(&rl_wmu);
  return NULL;
}

rt_err rt_reload_start(int64_t period_ms) {
  if (period_ms <= 0) {
    return RT_OK;
  }
  pthread_mutex_lock(&rl_wmu);
  if (rl_running) {
    pthread_mutex_unlock(&rl_wmu);
    return RT_OK;
  }
  rl_period_ms = period_ms;
  rl_stop = false;
  int rc = pthread_create(&rl_thread, NULL, watch_main, NULL);
  rl_running = rc == 0;
  pthread_mutex_unlock(&rl_wmu);
  return rc == 0 ? RT_OK : RT_ENOMEM;
}

void rt_reload_stop(void) {
  pthread_mutex_lock(&rl_wmu);
  if (!rl_running) {
    pthread_mutex_unlock(&rl_wmu);
    return;
  }
  rl_stop = true;
  pthread_cond_broadcast(&rl_wcv);
  pthread_mutex_unlock(&rl_wmu);
  pthread_join(rl_thread, NULL);
  pthread_mutex_lock(&rl_wmu);
  rl_running = false;
  pthread_mutex_unlock(&rl_wmu);
}
