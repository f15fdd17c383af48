/* limits_test.c - per-tenant limits: defaults, overrides file, reload keeping the old table on
 * a bad file, and the reload watcher noticing a change. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/limits.h"
#include "common/reload.h"

static char path[64];

static void write_file(const char *text) {
  char tmp[80];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  cr_assert(f);
  fputs(text, f);
  fclose(f);
  cr_assert(rename(tmp, path) == 0);
}

static void setup(void) {
  snprintf(path, sizeof path, "/tmp/rt-limits-%d.yaml", (int)getpid());
}

static void teardown(void) {
  unlink(path);
  rt_limits_shutdown();
}

TestSuite(limits, .init = setup, .fini = teardown);

static rt_limits config_defaults(void) {
  rt_config cfg;
  rt_config_defaults(&cfg);
  cfg.ingestion_rate = 1000;
  rt_limits l;
  rt_limits_from_config(&cfg, &l);
  rt_config_free(&cfg);
  return l;
}

Test(limits, defaults_without_file) {
  rt_limits d = config_defaults();
  char err[256];
  cr_assert_eq(rt_limits_init(&d, "", err, sizeof err), RT_OK);
  rt_limits got;
  rt_limits_get("anyone", &got);
  cr_assert_eq(got.ingestion_rate, 1000);
  cr_assert_eq(got.max_label_names_per_series, 30);
  cr_assert_str_eq(got.ha_replica_label, "__replica__");
}

Test(limits, overrides_apply_per_tenant) {
  write_file("overrides:\n"
             "  team-a:\n"
             "    ingestion_rate: 5\n"
             "    creation_grace_period: 5m\n"
             "    max_fetched_chunk_bytes_per_query: 1MiB\n"
             "    reject_old_samples: false\n"
             "  team-b:\n");
  rt_limits d = config_defaults();
  char err[256];
  cr_assert_eq(rt_limits_init(&d, path, err, sizeof err), RT_OK, "%s", err);
  rt_limits a, b, c;
  rt_limits_get("team-a", &a);
  rt_limits_get("team-b", &b);
  rt_limits_get("team-c", &c);
  cr_assert_eq(a.ingestion_rate, 5);
  cr_assert_eq(a.creation_grace_period_ms, 300000);
  cr_assert_eq(a.max_fetched_chunk_bytes_per_query, 1 << 20);
  cr_assert_eq(a.reject_old_samples, false);
  cr_assert_eq(a.max_label_names_per_series, 30, "unset keys keep the defaults");
  cr_assert_eq(b.ingestion_rate, 1000);
  cr_assert_eq(c.ingestion_rate, 1000);
}

Test(limits, bad_file_keeps_previous) {
  write_file("overrides:\n  team-a:\n    ingestion_rate: 7\n");
  rt_limits d = config_defaults();
  char err[256];
  cr_assert_eq(rt_limits_init(&d, path, err, sizeof err), RT_OK, "%s", err);
  uint64_t gen = rt_limits_generation();
  static const char *const bad[] = {
      "overrides:\n  team-a:\n    ingestion_rat: 9\n",
      "overrides:\n  team-a:\n    ingestion_rate: -1\n",
      "overrides:\n  team-a:\n    creation_grace_period: soon\n",
      "overrides: [1, 2]\n",
      "limits:\n  team-a: {}\n",
      "overrides:\n  team-a: {ingestion_rate: 1}\n  team-a: {ingestion_rate: 2}\n",
      "overrides:\n  team-a: {ingestion_rate: [1\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    write_file(bad[i]);
    err[0] = 0;
    cr_assert_neq(rt_limits_reload(err, sizeof err), RT_OK, "accepted: %s", bad[i]);
    cr_assert(strstr(err, path) != NULL, "the message names the file: %s", err);
    rt_limits a;
    rt_limits_get("team-a", &a);
    cr_assert_eq(a.ingestion_rate, 7);
  }
  cr_assert_eq(rt_limits_generation(), gen);
  write_file("overrides:\n  team-a:\n    ingestion_rate: 8\n");
  cr_assert_eq(rt_limits_reload(err, sizeof err), RT_OK, "%s", err);
  rt_limits a;
  rt_limits_get("team-a", &a);
  cr_assert_eq(a.ingestion_rate, 8);
  cr_assert_gt(rt_limits_generation(), gen);
}

static rt_err reload_cb(void *ctx, char *err, size_t errlen) {
  (void)ctx;
  return rt_limits_reload(err, errlen);
}

Test(limits, watcher_sees_change) {
  write_file("overrides:\n  team-a:\n    ingestion_rate: 1\n");
  rt_limits d = config_defaults();
  char err[256];
  cr_assert_eq(rt_limits_init(&d, path, err, sizeof err), RT_OK, "%s", err);
  static int ctx;
  cr_assert_eq(rt_reload_register("runtime-config", path, reload_cb, &ctx), RT_OK);
  cr_assert_eq(rt_reload_start(20), RT_OK);
  write_file("overrides:\n  team-a:\n    ingestion_rate: 22\n");
  rt_limits a = {0};
  for (int i = 0; i < 500; i++) {   /* up to 5 s, polling the condition */
    rt_limits_get("team-a", &a);
    if (a.ingestion_rate == 22) {
      break;
    }
    usleep(10000);
  }
  cr_assert_eq(a.ingestion_rate, 22);
  /* rt_reload_all (SIGHUP) reloads without a change of file too */
  cr_assert_eq(rt_reload_all(), 0);
  rt_reload_stop();
  rt_reload_unregister(&ctx);
}

Test(limits, retention_period_and_its_clock) {
  write_file("overrides:\n"
             "  team-a:\n"
             "    compactor_retention_period: 30d\n");
  rt_config cfg;
  rt_config_defaults(&cfg);
  cfg.retention_period_ms = 7 * 86400000LL;
  rt_limits d;
  rt_limits_from_config(&cfg, &d);
  rt_config_free(&cfg);
  char err[256];
  cr_assert_eq(rt_limits_init(&d, path, err, sizeof err), RT_OK, "%s", err);
  rt_limits a, b;
  rt_limits_get("team-a", &a);
  rt_limits_get("team-b", &b);
  cr_assert_eq(a.compactor_retention_period_ms, 30 * 86400000LL);
  cr_assert_eq(b.compactor_retention_period_ms, 7 * 86400000LL, "-compactor.retention-period");
  const char *bad = "overrides:\n  x:\n    compactor_retention_period: soon\n";
  cr_assert_neq(rt_limits_check(bad, strlen(bad), err, sizeof err), RT_OK);
  cr_assert(strstr(err, "compactor_retention_period"), "%s", err);
  /* the clock: the newest sample, at most the creation grace period ahead of the wall clock */
  b.compactor_retention_period_ms = 1000;
  b.creation_grace_period_ms = 100;
  cr_assert_eq(rt_retention_start(&b, 5000, 10000), 4000);
  cr_assert_eq(rt_retention_start(&b, 50000, 10000), 9100, "bounded by wall + grace");
  cr_assert_eq(rt_retention_start(&b, INT64_MIN, 10000), INT64_MIN, "no sample");
  cr_assert_eq(rt_retention_start(&b, INT64_MIN + 10, 10000), INT64_MIN, "no underflow");
  b.compactor_retention_period_ms = 0;
  cr_assert_eq(rt_retention_start(&b, 5000, 10000), INT64_MIN, "0 keeps everything");
}
