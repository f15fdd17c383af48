/* ingbench_prog.c - ingester micro-benchmark (prints figures; not a test).
 *
 *   ingbench_prog <dir> [series] [samples_per_series] [series_per_push] [threads]
 *
 * Pushes node-exporter-like data (1 s interval, mostly constant gauges and slowly growing
 * counters) straight into ing_push (no RPC, no HTTP), then reports samples/s, the resident
 * memory per active series, and the on-disk bytes per sample after the head chunks closed. */
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/log.h"
#include "ingester/ingester.h"

rt_err ing_maintain(ing_ingester *ing);

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = 0;
  while (f && fgets(line, sizeof line, f)) {
    if (!strncmp(line, "VmRSS:", 6)) {
      v = atol(line + 6);
    }
  }
  if (f) {
    fclose(f);
  }
  return v;
}

static uint64_t du(const char *path) {
  DIR *d = opendir(path);
  if (!d) {
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
  }
  uint64_t total = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) {
      continue;
    }
    char p[4096];
    if (snprintf(p, sizeof p, "%s/%s", path, e->d_name) >= (int)sizeof p) {
      continue;
    }
    total += du(p);
  }
  closedir(d);
  return total;
}

typedef struct job {
  ing_ingester *ing;
  int first, count; /* series range */
  int nsamples, per_push;
  int64_t t0;
  uint64_t accepted;
} job;

/* Value model per series kind: 0 constant gauge, 1 integer counter, 2 float counter (cpu
 * seconds), 3 noisy gauge. */
static double value_of(int series, int i) {
  int kind = series % 10 < 6 ? 0 : series % 10 < 8 ? 1 : series % 10 < 9 ? 2 : 3;
  switch (kind) {
  case 0: return (double)(series % 97);
  case 1: return (double)(series * 10 + (i * (series % 5)) / 3);
  case 2: return 12345.67 + i * 0.01 * (1 + series % 3) + ((i * 7919) % 13) * 0.001;
  default: return 1e9 + (double)((i * 2654435761u + (unsigned)series) % 100000);
  }
}

static void *run(void *arg) {
  job *j = arg;
  rt_arena *a = rt_arena_create(1 << 20);
  int nser = j->count;
  Prometheus__TimeSeries *ts = calloc((size_t)j->per_push, sizeof *ts);
  Prometheus__TimeSeries **tsp = calloc((size_t)j->per_push, sizeof *tsp);
  Prometheus__Label *lab = calloc((size_t)j->per_push * 4, sizeof *lab);
  Prometheus__Label **labp = calloc((size_t)j->per_push * 4, sizeof *labp);
  Prometheus__Sample *smp = calloc((size_t)j->per_push, sizeof *smp);
  Prometheus__Sample **smpp = calloc((size_t)j->per_push, sizeof *smpp);
  char (*names)[64] = calloc((size_t)j->per_push * 3, 64);
  for (int i = 0; i < j->nsamples; i++) {
    int64_t t = j->t0 + (int64_t)i * 1000 + (i % 10 == 9 ? 3 : 0);
    for (int s0 = 0; s0 < nser; s0 += j->per_push) {
      int n = RT_MIN(j->per_push, nser - s0);
      for (int k = 0; k < n; k++) {
        int sid = j->first + s0 + k;
        prometheus__time_series__init(&ts[k]);
        snprintf(names[k * 3], 64, "node_metric_%d", sid % 500);
        snprintf(names[k * 3 + 1], 64, "host-%d:9100", sid / 500);
        snprintf(names[k * 3 + 2], 64, "%d", sid % 16);
        const char *ln[4] = {"__name__", "cpu", "instance", "job"};
        const char *lv[4] = {names[k * 3], names[k * 3 + 2], names[k * 3 + 1], "node"};
        for (int l = 0; l < 4; l++) {
          prometheus__label__init(&lab[k * 4 + l]);
          lab[k * 4 + l].name = (char *)ln[l];
          lab[k * 4 + l].value = (char *)lv[l];
          labp[k * 4 + l] = &lab[k * 4 + l];
        }
        ts[k].labels = &labp[k * 4];
        ts[k].n_labels = 4;
        prometheus__sample__init(&smp[k]);
        smp[k].timestamp = t;
        smp[k].value = value_of(sid, i);
        smpp[k] = &smp[k];
        ts[k].samples = &smpp[k];
        ts[k].n_samples = 1;
        tsp[k] = &ts[k];
      }
      Ringtail__PushRequest req;
      ringtail__push_request__init(&req);
      req.tenant = "bench";
      req.timeseries = tsp;
      req.n_timeseries = (size_t)n;
      Ringtail__PushResponse resp;
      rt_arena_reset(a);
      if (ing_push(j->ing, &req, &resp, a) != RT_OK) {
        fprintf(stderr, "push failed\n");
        exit(1);
      }
      j->accepted += resp.samples_accepted;
    }
  }
  free(ts);
  free(tsp);
  free(lab);
  free(labp);
  free(smp);
  free(smpp);
  free(names);
  rt_arena_destroy(a);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s <dir> [series] [samples] [series_per_push] [threads] [sync]\n", argv[0]);
    return 2;
  }
  rt_log_set_level(RT_LOG_WARN);
  int nser = argc > 2 ? atoi(argv[2]) : 10000;
  int nsamp = argc > 3 ? atoi(argv[3]) : 240;
  int per = argc > 4 ? atoi(argv[4]) : 500;
  int nth = argc > 5 ? atoi(argv[5]) : 2;
  bool sync = argc > 6 ? atoi(argv[6]) != 0 : true;
  ing_config cfg = {.data_dir = argv[1], .wal_sync = sync, .chunk_max_samples = 120,
                    .chunk_max_age_ms = 2 * 3600 * 1000};
  long rss0 = rss_kib();
  ing_ingester *ing;
  if (ing_create(&cfg, &ing) != RT_OK) {
    return 1;
  }
  long rss1 = rss_kib();
  job *jobs = calloc((size_t)nth, sizeof *jobs);
  pthread_t *th = calloc((size_t)nth, sizeof *th);
  uint64_t t0 = rt_mono_ns();
  for (int i = 0; i < nth; i++) {
    jobs[i] = (job){.ing = ing, .first = i * (nser / nth), .count = nser / nth, .nsamples = nsamp,
                    .per_push = per, .t0 = 1700000000000};
    pthread_create(&th[i], NULL, run, &jobs[i]);
  }
  uint64_t acc = 0;
  for (int i = 0; i < nth; i++) {
    pthread_join(th[i], NULL);
    acc += jobs[i].accepted;
  }
  double secs = (double)(rt_mono_ns() - t0) / 1e9;
  long rss2 = rss_kib();
  ing_stats st;
  ing_get_stats(ing, &st);
  printf("pushed %llu samples of %llu series in %.2fs: %.0f samples/s (threads %d, %d series/push, sync %d)\n",
         (unsigned long long)acc, (unsigned long long)st.active_series, secs, (double)acc / secs, nth,
         per, sync);
  printf("rss: start %ld KiB, after open %ld KiB, after push %ld KiB: %.0f bytes/series\n", rss0, rss1,
         rss2, (double)(rss2 - rss1) * 1024.0 / (double)st.active_series);
  printf("chunks closed while pushing: %llu\n", (unsigned long long)st.chunks_closed);
  if (getenv("REOPEN")) {
    /* recovery time with the WAL tail not flushed */
    ing_destroy(ing);
    uint64_t r0 = rt_mono_ns();
    if (ing_create(&cfg, &ing) != RT_OK) {
      return 1;
    }
    printf("reopen (series scan + WAL replay) took %.2fs, rss %ld KiB\n",
           (double)(rt_mono_ns() - r0) / 1e9, rss_kib());
  }
  uint64_t f0 = rt_mono_ns();
  if (ing_flush(ing) != RT_OK) {
    return 1;
  }
  printf("flush took %.2fs\n", (double)(rt_mono_ns() - f0) / 1e9);
  {
    /* one select of every series over all time: closed chunks read and transcoded */
    rt_arena *a = rt_arena_create(1 << 20);
    Ringtail__SelectRequest sreq;
    ringtail__select_request__init(&sreq);
    sreq.tenant = "bench";
    Prometheus__LabelMatcher m, *mp = &m;
    prometheus__label_matcher__init(&m);
    m.name = "job";
    m.value = "node";
    sreq.matchers = &mp;
    sreq.n_matchers = 1;
    Ringtail__SelectResponse sr;
    uint64_t s0 = rt_mono_ns();
    if (ing_select(ing, &sreq, &sr, a) == RT_OK) {
      size_t nch = 0, bytes = 0;
      for (size_t i = 0; i < sr.n_series; i++) {
        nch += sr.series[i]->n_chunks;
        for (size_t c = 0; c < sr.series[i]->n_chunks; c++) {
          bytes += sr.series[i]->chunks[c]->data.len;
        }
      }
      double secs = (double)(rt_mono_ns() - s0) / 1e9;
      printf("select of %zu series, %zu chunks, %zu bytes in %.3fs (%.0f samples/s)\n", sr.n_series,
             nch, bytes, secs, (double)acc / secs);
    }
    rt_arena_destroy(a);
  }
  ing_destroy(ing);
  char db[4096];
  snprintf(db, sizeof db, "%s/db", argv[1]);
  uint64_t bytes = du(db);
  printf("on disk after close: %llu bytes, %.3f bytes/sample\n", (unsigned long long)bytes,
         (double)bytes / (double)acc);
  return 0;
}
