/* ingstress_prog.c - concurrent pushes, selects, label calls and maintenance on one ingester
 * (for ThreadSanitizer runs; prints a line and exits 0 when every check held).
 *
 *   ingstress_prog <data_dir> [seconds] */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/chunk.h"
#include "common/log.h"
#include "ingester/ing_int.h"

static atomic_bool stop;
static atomic_int failures;

typedef struct wk {
  ing_ingester *ing;
  int id;
  long pushes;
} wk;

static void *writer(void *arg) {
  wk *w = arg;
  rt_arena *a = rt_arena_create(0);
  Prometheus__TimeSeries ts[50], *tsp[50];
  Prometheus__Label lab[50][3], *labp[50][3];
  Prometheus__Sample smp[50], *smpp[50];
  char names[50][32];
  for (long i = 0; !atomic_load(&stop); i++) {
    rt_arena_reset(a);
    for (int s = 0; s < 50; s++) {
      snprintf(names[s], sizeof names[s], "%d", s);
      prometheus__time_series__init(&ts[s]);
      const char *ln[3] = {"__name__", "s", "w"};
      const char *lv[3] = {"stress", names[s], w->id % 2 ? "odd" : "even"};
      for (int l = 0; l < 3; l++) {
        prometheus__label__init(&lab[s][l]);
        lab[s][l].name = (char *)ln[l];
        lab[s][l].value = (char *)lv[l];
        labp[s][l] = &lab[s][l];
      }
      ts[s].labels = labp[s];
      ts[s].n_labels = 3;
      prometheus__sample__init(&smp[s]);
      /* two writers share each tenant; their samples interleave and some are out of order */
      smp[s].timestamp = i * 10 + w->id;
      smp[s].value = (double)i;
      smpp[s] = &smp[s];
      ts[s].samples = &smpp[s];
      ts[s].n_samples = 1;
      tsp[s] = &ts[s];
    }
    Ringtail__PushRequest req;
    ringtail__push_request__init(&req);
    req.tenant = w->id < 2 ? "ta" : "tb";
    req.timeseries = tsp;
    req.n_timeseries = 50;
    Ringtail__PushResponse resp;
    if (ing_push(w->ing, &req, &resp, a) != RT_OK) {
      atomic_fetch_add(&failures, 1);
    }
    w->pushes++;
  }
  rt_arena_destroy(a);
  return NULL;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static void *reader(void *arg) {
  wk *w = arg;
  rt_arena *a = rt_arena_create(0);
  while (!atomic_load(&stop)) {
    rt_arena_reset(a);
    Ringtail__SelectRequest req;
    ringtail__select_request__init(&req);
    req.tenant = w->pushes++ % 2 ? "ta" : "tb";
    Prometheus__LabelMatcher m, *mp = &m;
    prometheus__label_matcher__init(&m);
    m.name = "__name__";
    m.value = "stress";
    req.matchers = &mp;
    req.n_matchers = 1;
    Ringtail__SelectResponse resp;
    if (ing_select(w->ing, &req, &resp, a) != RT_OK) {
      atomic_fetch_add(&failures, 1);
      continue;
    }
    for (size_t i = 0; i < resp.n_series; i++) {
      /* chunks may overlap in time (out-of-order), but no timestamp may appear twice */
      size_t n = 0, cap = 1024;
      int64_t *all = malloc(cap * sizeof *all);
      for (size_t c = 0; c < resp.series[i]->n_chunks; c++) {
        rt_chunk_iter it;
        rt_chunk_iter_init(&it, resp.series[i]->chunks[c]->data.data, resp.series[i]->chunks[c]->data.len);
        int64_t t;
        double v;
        while (rt_chunk_iter_next(&it, &t, &v)) {
          if (n == cap) {
            cap *= 2;
            all = realloc(all, cap * sizeof *all);
          }
          all[n++] = t;
        }
        if (rt_chunk_iter_err(&it)) {
          atomic_fetch_add(&failures, 1);
        }
      }
      qsort(all, n, sizeof *all, cmp_i64);
      for (size_t k = 1; k < n; k++) {
        if (all[k] == all[k - 1]) {
          atomic_fetch_add(&failures, 1);
        }
      }
      free(all);
    }
    Ringtail__LabelsRequest lr;
    ringtail__labels_request__init(&lr);
    lr.tenant = "ta";
    lr.name = "s";
    Ringtail__LabelsResponse lresp;
    if (ing_label_values(w->ing, &lr, &lresp, a) != RT_OK) {
      atomic_fetch_add(&failures, 1);
    }
  }
  rt_arena_destroy(a);
  return NULL;
}

static void *maint(void *arg) {
  wk *w = arg;
  while (!atomic_load(&stop)) {
    if (ing_maintain(w->ing) != RT_OK) {
      atomic_fetch_add(&failures, 1);
    }
    ing_stats st;
    ing_get_stats(w->ing, &st);
    w->pushes++;
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s <data_dir> [seconds]\n", argv[0]);
    return 2;
  }
  rt_log_set_level(RT_LOG_WARN);
  int secs = argc > 2 ? atoi(argv[2]) : 5;
  ing_config cfg = {.data_dir = argv[1], .wal_sync = true, .chunk_max_samples = 8,
                    .chunk_max_age_ms = 200, .ooo_window_ms = 50};
  ing_ingester *ing;
  if (ing_create(&cfg, &ing) != RT_OK) {
    return 1;
  }
  wk ws[7];
  pthread_t th[7];
  for (int i = 0; i < 7; i++) {
    ws[i] = (wk){.ing = ing, .id = i};
    pthread_create(&th[i], NULL, i < 4 ? writer : i < 6 ? reader : maint, &ws[i]);
  }
  uint64_t t0 = rt_mono_ns();
  while (rt_mono_ns() - t0 < (uint64_t)secs * 1000000000ull) {
    struct timespec ts = {0, 50000000};
    nanosleep(&ts, NULL);
  }
  atomic_store(&stop, true);
  for (int i = 0; i < 7; i++) {
    pthread_join(th[i], NULL);
  }
  ing_stats st;
  ing_get_stats(ing, &st);
  ing_destroy(ing);
  printf("pushes %ld %ld %ld %ld, selects %ld %ld, maintenance rounds %ld, samples %llu, chunks %llu, "
         "failures %d\n",
         ws[0].pushes, ws[1].pushes, ws[2].pushes, ws[3].pushes, ws[4].pushes, ws[5].pushes,
         ws[6].pushes, (unsigned long long)st.samples_appended, (unsigned long long)st.chunks_closed,
         atomic_load(&failures));
  return atomic_load(&failures) ? 1 : 0;
}
