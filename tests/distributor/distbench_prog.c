/* distbench_prog.c - decode + validate + push encoding throughput per CPU second (prints figures; not a test).
 *   distbench_prog [series per request] [samples per series] [iterations] [arena block bytes] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "distributor/dist_int.h"
#include "rw_helpers.h"

int main(int argc, char **argv) {
  size_t nseries = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000;
  size_t nsamples = argc > 2 ? strtoul(argv[2], NULL, 10) : 1;
  int iters = argc > 3 ? atoi(argv[3]) : 200;
  rt_arena *a = rt_arena_create(0);
  int64_t now = rt_now_ms();
  int64_t *ts = malloc(nsamples * sizeof *ts);
  double *vs = malloc(nsamples * sizeof *vs);
  for (size_t k = 0; k < nsamples; k++) {
    ts[k] = now - (int64_t)(nsamples - k) * 15000;
    vs[k] = (double)k * 1.5;
  }
  Prometheus__TimeSeries **s = malloc(nseries * sizeof *s);
  char (*cpu)[24] = malloc(nseries * 24);
  for (size_t i = 0; i < nseries; i++) {
    snprintf(cpu[i], 24, "%zu", i);
    const char *kv[] = {"__name__", "node_cpu_seconds_total", "cpu", cpu[i], "instance", "host-01.example:9100",
                        "job", "node", "mode", "idle", NULL};
    s[i] = rw_series(a, kv, ts, vs, nsamples);
  }
  size_t bl;
  size_t pn;
  uint8_t *p = rw_pack(rw_request(a, nseries, s), &pn);
  char *body = rw_snappy(p, pn, &bl);
  dist_limits lim;
  dist_limits_default(&lim);
  rt_arena *ra = rt_arena_create(argc > 4 ? strtoul(argv[4], NULL, 10) : 1u << 20);
  char err[512];
  struct timespec c0, c1;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
  for (int it = 0; it < iters; it++) {
    dist_request req;
    if (dist_decode(body, bl, &lim, ra, &req, err, sizeof err) != RT_OK) {
      fprintf(stderr, "decode: %s\n", err);
      return 1;
    }
    dist_report rep;
    dist_validate(&req, &lim, now, &rep);
    if (rep.first != DIST_R_OK) {
      fprintf(stderr, "validate: %s\n", rep.msg);
      return 1;
    }
    uint8_t *push;
    size_t push_len;
    if (dist_encode_push("anonymous", &req, ra, &push, &push_len) != RT_OK) {
      fprintf(stderr, "encode failed\n");
      return 1;
    }
    rt_arena_reset(ra);
  }
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
  double secs = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9; /* CPU time */
  double samples = (double)nseries * (double)nsamples * iters;
  printf("body %zu bytes (%zu decompressed), %zu series x %zu samples\n", bl, pn, nseries, nsamples);
  printf("decode+validate+encode: %.0f samples/s, %.0f series/s, %.1f MB/s decompressed, %.1f us/request\n",
         samples / secs, (double)nseries * iters / secs, (double)pn * iters / secs / 1e6, secs / iters * 1e6);
  rt_arena_destroy(ra);
  rt_arena_destroy(a);
  free(p);
  free(body);
  free(s);
  free(cpu);
  free(ts);
  free(vs);
  return 0;
}
