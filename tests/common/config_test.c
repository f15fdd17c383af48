/* config_test.c - defaults, flags, YAML files, durations, sizes, dumps. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"

static rt_config cfg;
static char err[512];
static char *rest[16];
static int nrest;
static bool help;

static void setup(void) { rt_config_defaults(&cfg); }
static void teardown(void) { rt_config_free(&cfg); }

TestSuite(config, .init = setup, .fini = teardown);

static rt_err parse(int argc, const char **argv) {
  err[0] = 0;
  return rt_config_parse(&cfg, argc, (char **)argv, &help, rest, &nrest, err, sizeof err);
}

/* Writes a temporary YAML file; returns its path (static buffer). */
static const char *yaml_file(const char *text) {
  static char path[64];
  snprintf(path, sizeof path, "/tmp/rt_config_test_XXXXXX");
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  return path;
}

Test(config, defaults_need_no_file) {
  cr_assert_str_eq(cfg.target, "all");
  cr_assert_str_eq(cfg.data_dir, "./data");
  cr_assert_str_eq(cfg.http_listen_address, "0.0.0.0");
  cr_assert_eq(cfg.http_listen_port, 9009);
  cr_assert_eq(cfg.http_conn_timeout_ms, 30000);
  cr_assert_eq(cfg.max_recv_msg_size, 10 << 20);
  cr_assert_eq(cfg.max_decompressed_size, 64 << 20);
  cr_assert(cfg.reject_old_samples);
  cr_assert_eq(cfg.reject_old_samples_max_age_ms, 7LL * 24 * 3600 * 1000);
  cr_assert_eq(cfg.ooo_window_ms, 0);
  cr_assert_str_eq(cfg.wal_sync, "batch");
  cr_assert_eq(cfg.chunk_max_samples, 120);
  cr_assert_eq(cfg.chunk_max_age_ms, 2 * 3600 * 1000);
  cr_assert_eq(cfg.query_timeout_ms, 120000);
  cr_assert_eq(cfg.lookback_delta_ms, 300000);
  cr_assert_eq(cfg.max_samples, 50000000);
  cr_assert_str_eq(cfg.distributor_ingesters, "");
}

Test(config, flag_forms) {
  const char *argv[] = {"ringtail", "-ingester.data-dir=/tmp/x", "--target", "ingester",
                        "-server.http-listen-port", "0", "-validation.reject-old-samples=false",
                        "-ingester.out-of-order-time-window=1h30m", "-distributor.max-recv-msg-size",
                        "512KiB", "-ingester.chunk_max_samples=240"};
  cr_assert_eq(parse(11, argv), RT_OK, "%s", err);
  cr_assert_str_eq(cfg.data_dir, "/tmp/x");
  cr_assert_str_eq(cfg.target, "ingester");
  cr_assert_eq(cfg.http_listen_port, 0);
  cr_assert_not(cfg.reject_old_samples);
  cr_assert_eq(cfg.ooo_window_ms, 90 * 60 * 1000);
  cr_assert_eq(cfg.max_recv_msg_size, 512 * 1024);
  cr_assert_eq(cfg.chunk_max_samples, 240);
  cr_assert_eq(nrest, 0);
  cr_assert_not(help);
}

Test(config, bare_boolean_flag_is_true_and_does_not_eat_the_next_argument) {
  cfg.reject_old_samples = false;
  const char *argv[] = {"ringtail", "-validation.reject-old-samples", "dump"};
  cr_assert_eq(parse(3, argv), RT_OK, "%s", err);
  cr_assert(cfg.reject_old_samples);
  cr_assert_eq(nrest, 1);
  cr_assert_str_eq(rest[0], "dump");
}

Test(config, positional_arguments_and_double_dash) {
  const char *argv[] = {"ringtail", "dump", "-target=querier", "--", "-not-a-flag"};
  cr_assert_eq(parse(5, argv), RT_OK, "%s", err);
  cr_assert_str_eq(cfg.target, "querier");
  cr_assert_eq(nrest, 2);
  cr_assert_str_eq(rest[0], "dump");
  cr_assert_str_eq(rest[1], "-not-a-flag");
}

Test(config, help_flags) {
  const char *a1[] = {"ringtail", "-help"};
  cr_assert_eq(parse(2, a1), RT_OK);
  cr_assert(help);
  const char *a2[] = {"ringtail", "--help"};
  cr_assert_eq(parse(2, a2), RT_OK);
  cr_assert(help);
  const char *a3[] = {"ringtail", "-h"};
  cr_assert_eq(parse(2, a3), RT_OK);
  cr_assert(help);
}

Test(config, bad_flags_are_named) {
  const char *a1[] = {"ringtail", "-no.such-flag=1"};
  cr_assert_eq(parse(2, a1), RT_EINVAL);
  cr_assert(strstr(err, "-no.such-flag"), "%s", err);
  const char *a2[] = {"ringtail", "-server.http-listen-port=abc"};
  cr_assert_eq(parse(2, a2), RT_EINVAL);
  cr_assert(strstr(err, "server.http-listen-port") && strstr(err, "abc"), "%s", err);
  const char *a3[] = {"ringtail", "-querier.timeout=5 minutes"};
  cr_assert_eq(parse(2, a3), RT_EINVAL);
  cr_assert(strstr(err, "querier.timeout"), "%s", err);
  const char *a4[] = {"ringtail", "-ingester.data-dir"};
  cr_assert_eq(parse(2, a4), RT_EINVAL);
  cr_assert(strstr(err, "needs a value"), "%s", err);
  const char *a5[] = {"ringtail", "-ingester.wal-sync=sometimes"};
  cr_assert_eq(parse(2, a5), RT_EINVAL);
  cr_assert(strstr(err, "batch|none"), "%s", err);
  const char *a6[] = {"ringtail", "-validation.reject-old-samples=maybe"};
  cr_assert_eq(parse(2, a6), RT_EINVAL);
  const char *a7[] = {"ringtail", "-validation.max-length-label-name=-1"};
  cr_assert_eq(parse(2, a7), RT_EINVAL);
}

Test(config, yaml_nested_maps_and_flags_override) {
  const char *f = yaml_file(
      "# a comment\n"
      "target: distributor,ingester\n"
      "ingester:\n"
      "  data_dir: ./somewhere\n"
      "  out_of_order_time_window: 10m\n"
      "  chunk-max-samples: 60\n"
      "validation:\n"
      "  reject_old_samples: false\n"
      "  reject_old_samples_max_age: 2d\n"
      "server:\n"
      "  http_listen_port: 9100\n"
      "distributor:\n"
      "  ingester_addresses: [tcp://a:9095, tcp://b:9095]\n"
      "  max_recv_msg_size: 1MiB\n");
  char flag[128];
  snprintf(flag, sizeof flag, "-config.file=%s", f);
  const char *argv[] = {"ringtail", flag, "-server.http-listen-port=9200"};
  cr_assert_eq(parse(3, argv), RT_OK, "%s", err);
  unlink(f);
  cr_assert_str_eq(cfg.target, "distributor,ingester");
  cr_assert_str_eq(cfg.data_dir, "./somewhere");
  cr_assert_eq(cfg.ooo_window_ms, 600000);
  cr_assert_eq(cfg.chunk_max_samples, 60);
  cr_assert_not(cfg.reject_old_samples);
  cr_assert_eq(cfg.reject_old_samples_max_age_ms, 2 * 86400000LL);
  cr_assert_eq(cfg.http_listen_port, 9200, "the flag wins over the file");
  cr_assert_str_eq(cfg.distributor_ingesters, "tcp://a:9095,tcp://b:9095");
  cr_assert_eq(cfg.max_recv_msg_size, 1 << 20);
}

Test(config, yaml_flag_given_before_file_still_wins) {
  const char *f = yaml_file("log:\n  level: debug\n");
  const char *argv[] = {"ringtail", "-log.level=warn", "-config.file", f};
  cr_assert_eq(parse(4, argv), RT_OK, "%s", err);
  unlink(f);
  cr_assert_str_eq(cfg.log_level, "warn");
}

Test(config, yaml_unknown_key_is_named_with_its_line) {
  const char *f = yaml_file("ingester:\n  data_dir: x\n  data_dirr: y\n");
  char flag[128];
  snprintf(flag, sizeof flag, "-config.file=%s", f);
  const char *argv[] = {"ringtail", flag};
  cr_assert_eq(parse(2, argv), RT_EINVAL);
  unlink(f);
  cr_assert(strstr(err, "ingester.data_dirr") && strstr(err, ":3:"), "%s", err);
}

Test(config, yaml_errors) {
  const char *cases[][2] = {
      {"ingester: [1, 2\n", ""},                              /* syntax */
      {"- a\n- b\n", "top level"},                            /* not a map */
      {"server:\n  http_listen_port: many\n", "many"},       /* bad value */
      {"server:\n  http_listen_port:\n", "needs a value"},   /* missing value */
      {"config:\n  file: x.yaml\n", "unknown"},              /* flag only */
      {"server:\n  http_listen_port: [1]\n", "single value"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *f = yaml_file(cases[i][0]);
    char flag[128];
    snprintf(flag, sizeof flag, "-config.file=%s", f);
    const char *argv[] = {"ringtail", flag};
    cr_assert_eq(parse(2, argv), RT_EINVAL, "case %zu accepted", i);
    unlink(f);
    cr_assert(strstr(err, cases[i][1]), "case %zu: %s", i, err);
  }
  const char *argv[] = {"ringtail", "-config.file=/nonexistent/ringtail.yaml"};
  cr_assert_eq(parse(2, argv), RT_EINVAL);
  cr_assert(strstr(err, "/nonexistent/ringtail.yaml"), "%s", err);
}

Test(config, empty_yaml_file_is_fine) {
  const char *f = yaml_file("");
  char flag[128];
  snprintf(flag, sizeof flag, "-config.file=%s", f);
  const char *argv[] = {"ringtail", flag};
  cr_assert_eq(parse(2, argv), RT_OK, "%s", err);
  unlink(f);
  cr_assert_str_eq(cfg.target, "all");
}

Test(config, durations) {
  int64_t v;
  cr_assert(rt_parse_duration_ms("1w", &v, false));
  cr_assert_eq(v, 604800000);
  cr_assert(rt_parse_duration_ms("168h", &v, false));
  cr_assert_eq(v, 604800000);
  cr_assert(rt_parse_duration_ms("5m", &v, false));
  cr_assert_eq(v, 300000);
  cr_assert(rt_parse_duration_ms("100ms", &v, false));
  cr_assert_eq(v, 100);
  cr_assert(rt_parse_duration_ms("1h30m", &v, false));
  cr_assert_eq(v, 5400000);
  cr_assert(rt_parse_duration_ms("1d2h3m4s5ms", &v, false));
  cr_assert_eq(v, 93784005);
  cr_assert(rt_parse_duration_ms("1y", &v, false));
  cr_assert_eq(v, 365LL * 86400000);
  cr_assert(rt_parse_duration_ms("1.5s", &v, false));
  cr_assert_eq(v, 1500);
  cr_assert(rt_parse_duration_ms("0", &v, false));
  cr_assert_eq(v, 0);
  cr_assert(rt_parse_duration_ms("1.5", &v, true));
  cr_assert_eq(v, 1500);
  cr_assert_not(rt_parse_duration_ms("1.5", &v, false));
  cr_assert_not(rt_parse_duration_ms("", &v, false));
  cr_assert_not(rt_parse_duration_ms("5", &v, false));
  cr_assert_not(rt_parse_duration_ms("5x", &v, false));
  cr_assert_not(rt_parse_duration_ms("-5m", &v, false));
  cr_assert_not(rt_parse_duration_ms("m", &v, false));
  cr_assert_not(rt_parse_duration_ms("5m ", &v, false));
  cr_assert_not(rt_parse_duration_ms("999999999999y", &v, false));
}

Test(config, sizes) {
  int64_t v;
  cr_assert(rt_parse_size("1048576", &v));
  cr_assert_eq(v, 1048576);
  cr_assert(rt_parse_size("10MiB", &v));
  cr_assert_eq(v, 10 << 20);
  cr_assert(rt_parse_size("64MB", &v));
  cr_assert_eq(v, 64 << 20);
  cr_assert(rt_parse_size("512kib", &v));
  cr_assert_eq(v, 512 << 10);
  cr_assert(rt_parse_size("1GiB", &v));
  cr_assert_eq(v, 1LL << 30);
  cr_assert(rt_parse_size("1.5KiB", &v));
  cr_assert_eq(v, 1536);
  cr_assert(rt_parse_size("100B", &v));
  cr_assert_eq(v, 100);
  cr_assert_not(rt_parse_size("", &v));
  cr_assert_not(rt_parse_size("-1", &v));
  cr_assert_not(rt_parse_size("10 parsecs", &v));
  cr_assert_not(rt_parse_size("0.5", &v));
}

Test(config, dump_yaml_reads_back_to_the_same_config) {
  const char *argv[] = {"ringtail", "-ingester.data-dir=/d \"q\"", "-querier.timeout=90s",
                        "-validation.reject-old-samples.max-age=36h",
                        "-distributor.max-decompressed-size=1000"};
  cr_assert_eq(parse(5, argv), RT_OK, "%s", err);
  rt_buf b = RT_BUF_INIT;
  rt_config_dump_yaml(&cfg, &b);
  cr_assert(strstr(b.data, "ingester:\n  data_dir: \"/d \\\"q\\\"\"\n"), "%s", b.data);
  cr_assert(strstr(b.data, "  timeout: \"1m30s\"\n"), "%s", b.data);
  cr_assert(strstr(b.data, "  reject_old_samples_max_age: \"1d12h\"\n"), "%s", b.data);
  cr_assert(strstr(b.data, "target: \"all\"\n"), "%s", b.data);
  cr_assert(strncmp(b.data, "config:", 7) != 0 && !strstr(b.data, "\nconfig:") &&
                !strstr(b.data, "config_file"),
            "config.file is a flag only: %s", b.data);
  const char *f = yaml_file(b.data);
  rt_buf_free(&b);
  rt_config back;
  rt_config_defaults(&back);
  char flag[128];
  snprintf(flag, sizeof flag, "-config.file=%s", f);
  const char *a2[] = {"ringtail", flag};
  cr_assert_eq(rt_config_parse(&back, 2, (char **)a2, &help, rest, &nrest, err, sizeof err),
               RT_OK, "%s", err);
  unlink(f);
  cr_assert_str_eq(back.data_dir, "/d \"q\"");
  cr_assert_eq(back.query_timeout_ms, 90000);
  cr_assert_eq(back.reject_old_samples_max_age_ms, 36 * 3600000LL);
  cr_assert_eq(back.max_decompressed_size, 1000);
  /* both dumps are equal */
  rt_buf b1 = RT_BUF_INIT, b2 = RT_BUF_INIT;
  rt_config_dump_flags_json(&cfg, &b1);
  rt_config_dump_flags_json(&back, &b2);
  cr_assert_str_neq(b1.data, b2.data, "config.file differs");
  cr_assert(strstr(b1.data, "\"ingester.data-dir\":\"/d \\\"q\\\"\""), "%s", b1.data);
  cr_assert(strstr(b1.data, "\"querier.timeout\":\"1m30s\""), "%s", b1.data);
  rt_buf_free(&b1);
  rt_buf_free(&b2);
  rt_config_free(&back);
}

Test(config, usage_lists_every_key_with_default) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  rt_config_usage(f);
  fclose(f);
  cr_assert(strstr(text, "-ingester.data-dir string"), "%s", text);
  cr_assert(strstr(text, "(default \"./data\")"), "%s", text);
  cr_assert(strstr(text, "-validation.reject-old-samples.max-age duration"), "%s", text);
  cr_assert(strstr(text, "(default 1w)"), "%s", text);
  cr_assert(strstr(text, "-distributor.max-recv-msg-size size"), "%s", text);
  cr_assert(strstr(text, "-config.file"), "%s", text);
  free(text);
}

Test(config, out_of_memory_never_crashes_or_leaks) {
  const char *f = yaml_file("ingester:\n  data_dir: ./y\ndistributor:\n  ingester_addresses: [a, b]\n");
  char flag[128];
  snprintf(flag, sizeof flag, "-config.file=%s", f);
  const char *argv[] = {"ringtail", flag, "-target=ingester", "-querier.timeout=1m"};
  bool succeeded = false;
  for (long n = 0; n < 200 && !succeeded; n++) {
    rt_config c;
    rt_config_defaults(&c);
    rt_alloc_fail_after(n);
    rt_err rc = rt_config_parse(&c, 4, (char **)argv, &help, rest, &nrest, err, sizeof err);
    rt_alloc_fail_after(-1);
    if (rc == RT_OK) {
      succeeded = true;
      cr_assert_str_eq(c.data_dir, "./y");
      cr_assert_str_eq(c.target, "ingester");
      cr_assert_str_eq(c.distributor_ingesters, "a,b");
    } else {
      cr_assert(rc == RT_ENOMEM || rc == RT_EINVAL, "n=%ld rc=%d", n, rc);
    }
    rt_config_free(&c);
  }
  unlink(f);
  cr_assert(succeeded);
}

Test(config, yaml_flow_style_and_quoted_values) {
  const char *f = yaml_file("ingester: {data_dir: './flow dir', wal_sync: \"none\"}\n"
                            "validation: {reject_old_samples: no, max_length_label_name: 64}\n");
  char flag[128];
  snprintf(flag, sizeof flag, "-config.file=%s", f);
  const char *argv[] = {"ringtail", flag};
  cr_assert_eq(parse(2, argv), RT_OK, "%s", err);
  unlink(f);
  cr_assert_str_eq(cfg.data_dir, "./flow dir");
  cr_assert_str_eq(cfg.wal_sync, "none");
  cr_assert_not(cfg.reject_old_samples);
  cr_assert_eq(cfg.max_label_name_length, 64);
}
