/* ingreplay_prog.c - bytes per sample for real exposition data (prints figures; not a test).
 *
 *   ingreplay_prog <data_dir> <scrape_dir> [copies]
 *
 * <scrape_dir> holds successive scrapes of one target in the Prometheus text format (files
 * sorted by name, one per scrape interval of 1 s). Each scrape i is pushed with timestamp
 * t0 + i * 1000 ms (Prometheus aligns scrape timestamps to the interval), `copies` times with a
 * different `instance` label. Then every head chunk is closed (ing_flush) and the database
 * size is divided by the number of samples. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/arena.h"
#include "common/log.h"
#include "ingester/ingester.h"

static int cmpstr(const void *a, const void *b) { return strcmp(*(char **)a, *(char **)b); }

static uint64_t du(const char *path) {
  DIR *d = opendir(path);
  if (!d) {
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
  }
  uint64_t total = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') {
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

/* Parses `name{a="b",...} value` into the arena. Returns false for comments and junk. */
static bool parse_line(rt_arena *a, char *line, const char *instance, Prometheus__TimeSeries *ts,
                       double *value) {
  if (line[0] == '#' || line[0] == '\n' || line[0] == 0) {
    return false;
  }
  Prometheus__Label **ls = rt_arena_alloc(a, 40 * sizeof *ls);
  size_t n = 0;
  char *p = line;
  char *name_end = strpbrk(p, "{ ");
  if (!name_end) {
    return false;
  }
  Prometheus__Label *nl = rt_arena_alloc(a, sizeof *nl);
  prometheus__label__init(nl);
  nl->name = "__name__";
  nl->value = rt_arena_strndup(a, p, (size_t)(name_end - p));
  ls[n++] = nl;
  p = name_end;
  if (*p == '{') {
    p++;
    while (*p && *p != '}') {
      char *eq = strchr(p, '=');
      if (!eq || eq[1] != '"') {
        return false;
      }
      Prometheus__Label *l = rt_arena_alloc(a, sizeof *l);
      prometheus__label__init(l);
      l->name = rt_arena_strndup(a, p, (size_t)(eq - p));
      char *v = eq + 2, *w = rt_arena_alloc(a, strlen(v) + 1), *o = w;
      while (*v && *v != '"') {
        if (*v == '\\' && v[1]) {
          v++;
          *o++ = *v == 'n' ? '\n' : *v;
          v++;
        } else {
          *o++ = *v++;
        }
      }
      *o = 0;
      l->value = w;
      if (n < 38) {
        ls[n++] = l;
      }
      p = v + 1;
      if (*p == ',') {
        p++;
      }
    }
    p++;
  }
  Prometheus__Label *il = rt_arena_alloc(a, sizeof *il);
  prometheus__label__init(il);
  il->name = "instance";
  il->value = (char *)instance;
  ls[n++] = il;
  /* sort by name (insertion) */
  for (size_t i = 1; i < n; i++) {
    Prometheus__Label *x = ls[i];
    size_t j = i;
    while (j > 0 && strcmp(ls[j - 1]->name, x->name) > 0) {
      ls[j] = ls[j - 1];
      j--;
    }
    ls[j] = x;
  }
  while (*p == ' ') {
    p++;
  }
  *value = strtod(p, NULL);
  ts->labels = ls;
  ts->n_labels = n;
  return true;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s <data_dir> <scrape_dir> [copies]\n", argv[0]);
    return 2;
  }
  rt_log_set_level(RT_LOG_WARN);
  int copies = argc > 3 ? atoi(argv[3]) : 1;
  DIR *d = opendir(argv[2]);
  if (!d) {
    return 1;
  }
  char **files = NULL;
  size_t nf = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (strstr(e->d_name, ".txt")) {
      files = realloc(files, (nf + 1) * sizeof *files);
      files[nf++] = strdup(e->d_name);
    }
  }
  closedir(d);
  qsort(files, nf, sizeof *files, cmpstr);
  ing_config cfg = {.data_dir = argv[1], .wal_sync = false, .chunk_max_samples = 120,
                    .chunk_max_age_ms = 2 * 3600 * 1000};
  ing_ingester *ing;
  if (ing_create(&cfg, &ing) != RT_OK) {
    return 1;
  }
  rt_arena *a = rt_arena_create(1 << 20);
  uint64_t samples = 0, t_start = rt_mono_ns();
  for (size_t i = 0; i < nf; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", argv[2], files[i]);
    for (int c = 0; c < copies; c++) {
      FILE *f = fopen(path, "r");
      if (!f) {
        continue;
      }
      rt_arena_reset(a);
      char inst[64];
      snprintf(inst, sizeof inst, "host-%d:9100", c);
      Prometheus__TimeSeries **tss = rt_arena_alloc(a, 8192 * sizeof *tss);
      size_t nts = 0;
      char line[8192];
      while (fgets(line, sizeof line, f) && nts < 8192) {
        Prometheus__TimeSeries *ts = rt_arena_alloc(a, sizeof *ts);
        prometheus__time_series__init(ts);
        double v;
        char *copy = rt_arena_strndup(a, line, strlen(line));
        if (!parse_line(a, copy, inst, ts, &v)) {
          continue;
        }
        Prometheus__Sample *s = rt_arena_alloc(a, sizeof *s);
        Prometheus__Sample **sp = rt_arena_alloc(a, sizeof *sp);
        prometheus__sample__init(s);
        s->timestamp = 1700000000000 + (int64_t)i * 1000;
        s->value = v;
        *sp = s;
        ts->samples = sp;
        ts->n_samples = 1;
        tss[nts++] = ts;
      }
      fclose(f);
      Ringtail__PushRequest req;
      ringtail__push_request__init(&req);
      req.tenant = "replay";
      req.timeseries = tss;
      req.n_timeseries = nts;
      Ringtail__PushResponse resp;
      if (ing_push(ing, &req, &resp, a) != RT_OK) {
        return 1;
      }
      samples += resp.samples_accepted;
    }
  }
  double secs = (double)(rt_mono_ns() - t_start) / 1e9;
  ing_stats st;
  ing_get_stats(ing, &st);
  if (ing_flush(ing) != RT_OK) {
    return 1;
  }
  if (getenv("ANALYZE")) {
    /* chunk bytes per series, largest first */
    rt_arena_reset(a);
    Ringtail__SelectRequest sreq;
    ringtail__select_request__init(&sreq);
    sreq.tenant = "replay";
    Prometheus__LabelMatcher m, *mp = &m;
    prometheus__label_matcher__init(&m);
    m.name = "__name__";
    m.value = ".+";
    m.type = PROMETHEUS__LABEL_MATCHER__TYPE__RE;
    sreq.matchers = &mp;
    sreq.n_matchers = 1;
    Ringtail__SelectResponse sr;
    if (ing_select(ing, &sreq, &sr, a) == RT_OK) {
      size_t total = 0, nchunks = 0, nsamp = 0;
      size_t *sz = calloc(sr.n_series, sizeof *sz);
      for (size_t i = 0; i < sr.n_series; i++) {
        for (size_t c = 0; c < sr.series[i]->n_chunks; c++) {
          sz[i] += sr.series[i]->chunks[c]->data.len;
          nsamp += (size_t)((sr.series[i]->chunks[c]->data.data[0] << 8) | sr.series[i]->chunks[c]->data.data[1]);
          nchunks++;
        }
        total += sz[i];
      }
      printf("raw chunk bytes %zu in %zu chunks for %zu samples: %.3f bytes/sample\n", total, nchunks,
             nsamp, (double)total / (double)nsamp);
      for (int k = 0; k < 25; k++) {
        size_t best = 0;
        for (size_t i = 0; i < sr.n_series; i++) {
          if (sz[i] > sz[best]) {
            best = i;
          }
        }
        if (!sz[best]) {
          break;
        }
        printf("  %6zu bytes %s", sz[best], sr.series[best]->labels[0]->value);
        for (size_t l = 1; l < sr.series[best]->n_labels; l++) {
          if (strcmp(sr.series[best]->labels[l]->name, "instance")) {
            printf(" %s=%s", sr.series[best]->labels[l]->name, sr.series[best]->labels[l]->value);
          }
        }
        printf("\n");
        sz[best] = 0;
      }
      free(sz);
    }
  }
  ing_destroy(ing);
  char db[4096];
  snprintf(db, sizeof db, "%s/db", argv[1]);
  uint64_t bytes = du(db);
  printf("%zu scrapes x %d copies: %llu samples, %llu series, %.0f samples/s; on disk %llu bytes: "
         "%.3f bytes/sample\n",
         nf, copies, (unsigned long long)samples, (unsigned long long)st.active_series,
         (double)samples / secs, (unsigned long long)bytes, (double)bytes / (double)samples);
  for (size_t i = 0; i < nf; i++) {
    free(files[i]);
  }
  free(files);
  rt_arena_destroy(a);
  return 0;
}
